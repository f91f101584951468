/* ddbaudit merge: the reports of the shards of one run (verify --shard K/N)
 * joined into the reports and manifest one run would have written. */
#include "cli/cli.h"

static void summary_line(const struct cli *c, const struct dda_merge_info *mi,
			 const struct dda_result *res, int fail_on, int status)
{
	const struct dda_summary *s = &res->sum;
	if (c->verbose < 0)
		return;
	fprintf(stderr,
		"ddbaudit: merge: %s: %u shards, %llu objects, %llu records (%llu valid, %llu "
		"invalid), %llu items; anomalies: %llu error, %llu warning, %llu info; exit %d\n",
		dda_run_verdict_name(dda_result_verdict(res, fail_on)), mi->count,
		(unsigned long long)s->objects, (unsigned long long)s->records,
		(unsigned long long)s->valid, (unsigned long long)s->invalid,
		(unsigned long long)s->items, (unsigned long long)s->anomalies[DDA_SEV_ERROR],
		(unsigned long long)s->anomalies[DDA_SEV_WARNING],
		(unsigned long long)s->anomalies[DDA_SEV_INFO], status);
}

int dda__cmd_merge(int argc, char **argv, struct cli *c)
{
	struct dda_error err = {0};
	struct dda_result res;
	struct dda_merge_info mi;
	struct dda__afile man;
	struct dda__cli_run_meta meta = {0};
	FILE *mf = NULL;
	dda__afile_init(&man);
	if (c->format == DDA_FMT__COUNT) {
		dda__cli_error(c, "--format text applies to history; use json, csv, md or html");
		return EXIT_USAGE;
	}
	if (dda__cli_shard_dirs(c))
		return EXIT_USAGE;
	if (c->report_dir && dda__cli_report_manifest(c, &man))
		return EXIT_RUNTIME;
	if (c->report_dir && !(mf = dda__afile_stream(&man, &err))) {
		dda__cli_error(c, "%s", err.msg);
		dda__afile_discard(&man);
		return EXIT_RUNTIME;
	}
	struct dda_error why = {0};
	dda__cli_catch_signals(c);
	int rc = dda_merge_shards(c->dirs, c->ndirs, mf, &c->audit, &mi, &res, &why, &err);
	if (!rc && why.code)
		dda__cli_warn(c, "cannot read the source again for the items a shard checked "
				 "without a record another shard read (%s): their SHARD_SPLIT "
				 "findings stay",
			      why.msg);
	if (!rc && c->report_dir)
		rc = dda__afile_finish(&man, &err);
	if (rc) {
		dda__cli_error(c, "%s", err.msg);
		dda_result_release(&res);
		dda_merge_info_release(&mi);
		dda__afile_discard(&man);
		return dda__cli_exit_for(rc);
	}
	if (res.fatal.code)
		dda__cli_error(c, "%s; the merged audit is incomplete", res.fatal.msg);
	/* The verdict the shards were run for, unless --fail-on says otherwise. */
	if (!c->fail_on_given)
		c->fail_on = mi.fail_on;
	struct dda_report_info info = {
	    .source = mi.source,
	    .range = mi.range,
	    .options = mi.options,
	    .manifest_name = "manifest.ndjson",
	    .manifest_tmp = c->report_dir ? man.tmp.ptr : NULL,
	    .fail_on = c->fail_on,
	};
	dda__cli_run_meta(c, argc, argv, false, &meta, &info);
	info.versions = mi.versions;
	int status = dda__cli_write_reports(c, &info, &res);
	if (!status)
		status = dda__cli_verdict(c, &res);
	summary_line(c, &mi, &res, c->fail_on, status);
	dda__cli_run_meta_release(&meta);
	dda_result_release(&res);
	dda_merge_info_release(&mi);
	dda__afile_discard(&man);
	c->audit.manifest_path = NULL;
	return status;
}
