/* verify --state and --since-state: open and lock the state, take the
 * range from its watermark, hook it into the audit, and commit the new state
 * once the reports are written. A run that fails leaves the state as it was. */
#include "cli/cli.h"

#include <errno.h>

/* Objects written into already-audited hours after the previous run
 * started are looked for over --late-window before the range: read as late
 * objects, their changes are folded into the chains (docs/state.md). */
static void late_window(struct cli *c, const struct dda_state_run *prior)
{
	struct dda_source_opts *src = &c->audit.src;
	if (!prior || c->late_window <= 0 || src->range.from == DDA_TIME_NONE)
		return;
	int64_t from = src->range.from - c->late_window;
	src->late = true;
	src->late_from = from - (((from % DDA_USEC_PER_HOUR) + DDA_USEC_PER_HOUR) % DDA_USEC_PER_HOUR);
	src->late_after = prior->started;
	c->audit.dec.late_from = src->late_from;
}

/* The range a state allows: it starts at the watermark (earlier changes
 * are in the state already; applying them twice would report them as
 * GAPs or DUPLICATEs). */
static int state_range(struct cli *c, const struct dda_state_run *prior)
{
	struct dda_range *r = &c->audit.src.range;
	char wt[DDA_TIME_STRLEN], ft[DDA_TIME_STRLEN];
	if (c->since_state) {
		if (!prior) {
			dda__cli_error(c,
				       "--since-state: the state '%s' does not exist yet; give "
				       "the first run its range with --from",
				       c->state_path);
			return EXIT_USAGE;
		}
		int64_t to = c->audit.now - c->audit.settle;
		to -= ((to % DDA_USEC_PER_HOUR) + DDA_USEC_PER_HOUR) % DDA_USEC_PER_HOUR;
		r->from = prior->watermark;
		r->to = to;
		if (to <= r->from) {
			if (c->verbose >= 0)
				fprintf(stderr,
					"ddbaudit: verify: nothing to audit: the state is audited "
					"up to %s, and the next hour has not settled yet\n",
					dda_time_format(prior->watermark, false, wt));
			return -1;
		}
	} else if (prior && (r->from == DDA_TIME_NONE || r->from < prior->watermark)) {
		dda__cli_error(
		    c,
		    "the range must start at or after the state's watermark %s (changes "
		    "before it are in the state already); use --since-state or --from %s",
		    dda_time_format(prior->watermark, false, wt),
		    dda_time_format(prior->watermark, false, ft));
		return EXIT_USAGE;
	} else if (prior && r->from > prior->watermark) {
		dda__cli_warn(c,
			      "the changes from %s to %s are not audited; an item changed then "
			      "will show a GAP",
			      dda_time_format(prior->watermark, false, wt),
			      dda_time_format(r->from, false, ft));
	}
	c->audit.dec.range = *r;
	late_window(c, prior);
	return 0;
}

int dda__cli_state_start(struct cli *c, struct dda_state **out)
{
	struct dda_error err = {0};
	struct dda_state *st = NULL;
	struct dda_state_identity id = {
	    .source = c->source, .nkeys = c->audit.dec.nkeys, .aws = &c->audit.src.aws};
	for (size_t i = 0; i < id.nkeys && i < DDA_MAX_KEY_ATTRS; i++)
		id.key_names[i] = c->audit.dec.key_names[i];
	*out = NULL;
	if (dda_state_open(&st, c->state_path, &id, &err)) {
		dda__cli_error(c, "%s", err.msg);
		return EXIT_RUNTIME;
	}
	int status = state_range(c, dda_state_prior(st));
	if (status) {
		dda_state_free(st);
		return status; /* -1: nothing to audit yet */
	}
	const struct dda_range *r = &c->audit.src.range;
	int64_t watermark = r->to != DDA_TIME_NONE ? r->to : c->audit.now;
	c->state_watermark = watermark;
	if (dda_state_begin(st, watermark, dda_time_now(), &err)) {
		dda__cli_error(c, "%s", err.msg);
		dda_state_free(st);
		return EXIT_RUNTIME;
	}
	if (c->options) {
		json_object_set_new(c->options, "state", json_string(c->state_path));
		json_object_set_new(c->options, "late_window_seconds",
				    json_integer(c->late_window / DDA_USEC_PER_SEC));
	}
	c->audit.state_ctx = st;
	c->audit.prior = dda_state_prior_hook;
	c->audit.end = dda_state_end_hook;
	*out = st;
	return 0;
}

int dda__cli_state_drain(struct cli *c, struct dda_state *st)
{
	struct dda_error err = {0};
	if (!dda_state_drain(st, &err))
		return 0;
	dda__cli_error(c, "%s; the state is left as it was", err.msg);
	return EXIT_RUNTIME;
}

/* The SHA-256 of the JSON report this run would write (the same bytes
 * --format json prints), the link of the state's run chain. */
static int report_digest(const struct dda_report_info *info, const struct dda_result *res,
			 char hex[2 * DDA_SHA256_LEN + 1], struct dda_error *err)
{
	char *text = NULL;
	size_t len = 0;
	uint8_t d[DDA_SHA256_LEN];
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = dda_report_write(DDA_FMT_JSON, info, res, f, err);
	if (fclose(f) && !rc)
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc) {
		dda__sha256(text, len, d);
		dda__hex(d, sizeof(d), hex);
	}
	free(text);
	return rc;
}

int dda__cli_state_commit(struct cli *c, struct dda_state *st, const struct dda_report_info *info,
			  const struct dda_result *res)
{
	struct dda_error err = {0};
	char hex[2 * DDA_SHA256_LEN + 1];
	const struct dda_source_facts *f = &res->source;
	int rc = report_digest(info, res, hex, &err);
	if (!rc)
		rc = dda_state_commit(st, hex, f->s3 ? f->versioning : "",
				      f->s3 ? f->object_lock : "", &err);
	if (!rc)
		return 0;
	dda__cli_error(c, "%s; the state is left as it was", err.msg);
	return EXIT_RUNTIME;
}
