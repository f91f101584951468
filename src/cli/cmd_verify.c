/* ddbaudit verify: audit a source and report. */
#include "cli/cli.h"

static void summary_line(const struct cli *c, const struct dda_result *res, int status)
{
	const struct dda_summary *s = &res->sum;
	if (c->verbose < 0)
		return;
	fprintf(stderr,
		"ddbaudit: verify: %s: %llu objects, %llu records (%llu valid, %llu invalid), "
		"%llu items; anomalies: %llu error, %llu warning, %llu info; exit %d\n",
		dda_run_verdict_name(dda_result_verdict(res, c->fail_on)),
		(unsigned long long)s->objects, (unsigned long long)s->records,
		(unsigned long long)s->valid, (unsigned long long)s->invalid,
		(unsigned long long)s->items, (unsigned long long)s->anomalies[DDA_SEV_ERROR],
		(unsigned long long)s->anomalies[DDA_SEV_WARNING],
		(unsigned long long)s->anomalies[DDA_SEV_INFO], status);
	uint64_t ignored = 0, suppressed = 0;
	for (int k = 0; k < DDA_K__COUNT; k++) {
		ignored += s->ignored[k];
		suppressed += s->suppressed[k];
	}
	if (ignored || suppressed || res->baseline.expired)
		fprintf(stderr,
			"ddbaudit: verify: not counted: %llu ignored, %llu suppressed by the "
			"baseline; %llu baseline entries expired\n",
			(unsigned long long)ignored, (unsigned long long)suppressed,
			(unsigned long long)res->baseline.expired);
}

/* New baseline entries expire: a known finding is re-examined, not
 * forgotten. */
#define WRITE_BASELINE_TTL (30 * 24 * DDA_USEC_PER_HOUR)

static int write_baseline(const struct cli *c, const struct dda_result *res)
{
	struct dda_error err = {0};
	char t[DDA_TIME_STRLEN], reason[96];
	int64_t now = c->audit.now;
	snprintf(reason, sizeof(reason),
		 "accepted by --write-baseline at %s: replace with the real reason",
		 dda_time_format(now, false, t));
	if (!dda_baseline_write(c->baseline, res, now, now + WRITE_BASELINE_TTL, reason,
				c->write_baseline, &err))
		return 0;
	dda__cli_error(c, "%s", err.msg);
	return EXIT_RUNTIME;
}

int dda__cli_write_reports(struct cli *c, const struct dda_report_info *info,
			   const struct dda_result *res)
{
	struct dda_error err = {0};
	/* verify made DIR for its manifest already; reconcile and restore here. */
	if (c->report_dir && (dda__cli_make_dir(c->report_dir, &err) ||
			      dda_report_write_dir(info, res, c->report_dir, &err))) {
		dda__cli_error(c, "%s", err.msg);
		return EXIT_RUNTIME;
	}
	int format = c->format;
	if (format < 0 && !c->report_dir)
		format = DDA_FMT_MD;
	if (format == DDA_FMT__COUNT) {
		dda__cli_error(c, "--format text applies to history; use json, csv, md or html");
		return EXIT_USAGE;
	}
	if (format >= 0 && dda_report_write(format, info, res, stdout, &err)) {
		dda__cli_error(c, "%s", err.msg);
		return EXIT_RUNTIME;
	}
	return 0;
}

int dda__cli_report_manifest(struct cli *c, struct dda__afile *man)
{
	struct dda_error err = {0};
	struct dda_buf path;
	dda_buf_init(&path, 4096);
	int rc = dda__cli_make_dir(c->report_dir, &err);
	if (!rc && dda_buf_addf(&path, "%s/manifest.ndjson", c->report_dir))
		rc = dda_error_set(&err, DDA_ETOOBIG, "report path too long");
	if (!rc)
		rc = dda__afile_open(man, path.ptr, &err);
	if (rc)
		dda__cli_error(c, "%s", err.msg);
	else
		c->audit.manifest_path = man->tmp.ptr;
	dda_buf_release(&path);
	return rc ? EXIT_RUNTIME : 0;
}

/* UNVERSIONED_BUCKET once per --state chain: listed when the chain first
 * sees the bucket's versioning setting and when it changes, counted in
 * summary.suppressed while it stays the same (docs/noise.md). A setting
 * that could not be read is never the same as the last one. */
static void known_bucket_setting(const struct dda_state *st, struct dda_result *res)
{
	const struct dda_state_run *prior = dda_state_prior(st);
	const struct dda_source_facts *f = &res->source;
	if (!prior || !f->s3 || !f->versioning[0] || !prior->versioning[0])
		return;
	if (!strcmp(prior->versioning, f->versioning)) {
		dda_result_suppress_kind(res, DDA_K_UNVERSIONED_BUCKET);
		return;
	}
	for (size_t i = 0; i < res->nanomalies; i++) {
		struct dda_anomaly *an = &res->anomalies[i];
		struct dda_buf d;
		if (an->kind != DDA_K_UNVERSIONED_BUCKET)
			continue;
		dda_buf_init(&d, 1 << 16);
		if (!dda_buf_addf(&d, "%s (changed: the state's last run saw versioning %s)",
				  an->detail ? an->detail : "", prior->versioning)) {
			free(an->detail);
			an->detail = dda_buf_take(&d, NULL);
		}
		dda_buf_release(&d);
	}
}

static void state_link(const struct cli *c, const struct dda_state *st,
		       struct dda_report_info *info)
{
	const struct dda_state_run *prior = st ? dda_state_prior(st) : NULL;
	if (!st)
		return;
	info->state =
	    (struct dda_report_state){c->state_path, prior ? prior->report_sha256 : NULL,
				      prior ? prior->watermark : DDA_TIME_NONE, c->state_watermark};
}

int dda__cmd_verify(int argc, char **argv, struct cli *c)
{
	struct dda_error err = {0};
	struct dda_result res;
	struct dda__afile man;
	struct dda__cli_metrics met;
	struct dda_state *st = NULL;
	struct dda__cli_run_meta meta = {0};
	dda__afile_init(&man);
	dda__cli_metrics_init(&met);
	if (c->format == DDA_FMT__COUNT) {
		dda__cli_error(c, "--format text applies to history; use json, csv, md or html");
		return EXIT_USAGE;
	}
	/* Before the metrics: a run refused by the state's lock must not
	 * overwrite the metrics of the run that holds it. */
	if (c->state_path) {
		/* Nothing to audit yet is not a run: no audit, no report, no
		 * metrics (it used to go on and audit an empty range). */
		int s = dda__cli_state_start(c, &st);
		if (s)
			return s < 0 ? EXIT_CLEAN : s;
	}
	if (dda__cli_metrics_begin(c, &met)) {
		dda_state_free(st);
		return EXIT_RUNTIME;
	}
	if ((c->report_dir && dda__cli_report_manifest(c, &man)) || dda__cli_bundle_begin(c, &man)) {
		dda__cli_metrics_release(&met);
		dda_state_free(st);
		return EXIT_RUNTIME;
	}
	c->audit.progress = dda__cli_progress;
	c->audit.ctx = c;
	dda__cli_catch_signals(c);
	int rc = dda_audit_run(&c->audit, &res, &err);
	if (!rc && (c->report_dir || c->bundle))
		rc = dda__afile_finish(&man, &err);
	if (rc) {
		const struct dda_error *se = st ? dda_state_error(st) : NULL;
		dda__cli_error(c, "%s", se && se->code ? se->msg : err.msg);
		/* A run that read nothing is still a run the monitoring sees. */
		int status = dda__cli_metrics_end(c, &met, &res, dda__cli_exit_for(rc));
		dda_result_release(&res);
		dda__afile_discard(&man);
		dda__cli_metrics_release(&met);
		dda_state_free(st);
		return status;
	}
	if (res.fatal.code)
		dda__cli_error(c, "%s; the audit is incomplete%s", res.fatal.msg,
			       st ? " and the state is left as it was" : "");
	/* An incomplete run never advances the state: the next run must
	 * audit what this one could not read. */
	int status = 0;
	if (st && !res.fatal.code)
		status = dda__cli_state_drain(c, st);
	if (!status && st && !res.fatal.code)
		known_bucket_setting(st, &res);
	struct dda_report_info info = {
	    .source = c->source,
	    .range = c->audit.src.range,
	    .options = c->options,
	    .manifest_name = "manifest.ndjson",
	    .manifest_tmp = c->report_dir ? man.tmp.ptr : NULL,
	    .fail_on = c->fail_on,
	};
	dda__cli_bundle_info(c, st, &info);
	json_t *shard = dda__cli_shard_json(c, &res);
	info.extra = shard;
	if (!status && c->audit.src.shard.count && !shard) {
		dda__cli_error(c, "out of memory building the shard section");
		status = EXIT_RUNTIME;
	}
	if (!status) {
		dda__cli_run_meta(c, argc, argv, false, &meta, &info);
		state_link(c, st, &info);
		status = dda__cli_bundle_write(c, st, &info, &res);
	}
	if (!status)
		status = dda__cli_write_reports(c, &info, &res);
	if (!status && c->write_baseline)
		status = write_baseline(c, &res);
	/* Findings (exit 1) are what the run is for, not a failure: the state
	 * advances past them. */
	if (!status && st && !res.fatal.code)
		status = dda__cli_state_commit(c, st, &info, &res);
	if (!status)
		status = dda__cli_verdict(c, &res);
	status = dda__cli_metrics_end(c, &met, &res, status);
	summary_line(c, &res, status);
	json_decref(shard);
	dda__cli_run_meta_release(&meta);
	dda_result_release(&res);
	dda__afile_discard(&man);
	dda__cli_metrics_release(&met);
	dda_state_free(st);
	c->audit.manifest_path = NULL;
	return status;
}
