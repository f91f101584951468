/* verify --bundle (--sign-key is checked with the options): the evidence bundle is written from the
 * same result and report info as --report DIR, before the reports (its manifest is still under its
 * temporary name then), and its SHA-256 goes into the state so that the next run's report links it.
 */
#include "cli/cli.h"

int dda__cli_bundle_begin(struct cli *c, struct dda__afile *man)
{
	struct dda_error err = {0};
	struct dda_buf path;
	if (!c->bundle)
		return 0;
	if (c->report_dir)
		return 0; /* the manifest is written into the report directory */
	dda_buf_init(&path, 1 << 16);
	int rc = dda_buf_addf(&path, "%s.manifest.ndjson", c->bundle)
		     ? dda_error_set(&err, DDA_ETOOBIG, "bundle path too long")
		     : dda__afile_open(man, path.ptr, &err);
	dda_buf_release(&path);
	if (rc) {
		dda__cli_error(c, "cannot write the bundle '%s': %s", c->bundle, err.msg);
		return EXIT_RUNTIME;
	}
	c->audit.manifest_path = man->tmp.ptr;
	return 0;
}

void dda__cli_bundle_info(const struct cli *c, const struct dda_state *st,
			  struct dda_report_info *info)
{
	if (!c->bundle)
		return;
	const char *slash = strrchr(c->bundle, '/');
	const struct dda_state_run *prior = st ? dda_state_prior(st) : NULL;
	info->bundle_name = slash ? slash + 1 : c->bundle;
	info->previous_bundle_sha256 =
	    prior && prior->bundle_sha256[0] ? prior->bundle_sha256 : NULL;
}

int dda__cli_bundle_write(struct cli *c, struct dda_state *st, const struct dda_report_info *info,
			  const struct dda_result *res)
{
	struct dda_error err = {0};
	char sha[2 * DDA_SHA256_LEN + 1];
	if (!c->bundle)
		return 0;
	struct dda_bundle_opts o = {
	    .path = c->bundle,
	    .sign_key = c->sign_key,
	    .aws = &c->audit.src.aws,
	    .manifest_path = c->audit.manifest_path,
	    .mtime = res->started,
	};
	if (dda_bundle_write(&o, info, res, sha, &err)) {
		dda__cli_error(c, "%s", err.msg);
		return EXIT_RUNTIME;
	}
	if (st)
		dda_state_set_bundle(st, sha);
	if (c->verbose > 0)
		fprintf(stderr, "ddbaudit: verify: bundle '%s' written, sha256 %s\n", c->bundle,
			sha);
	return 0;
}
