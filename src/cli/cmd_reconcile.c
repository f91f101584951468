/* ddbaudit reconcile: the log's current item states against the live table
 * (include/ddbaudit/reconcile.h). */
#include "cli/cli.h"

static json_t *stats_json(const struct dda_reconcile_stats *st, const struct dda_reconcile_opts *ro)
{
	char a[DDA_TIME_STRLEN], b[DDA_TIME_STRLEN];
	bool exp = st->export_time != DDA_TIME_NONE;
	json_t *j = json_pack(
	    "{s{sssssisbsf}s{sIsIsIsIsIsIsIsIsf sI}}", "table", "name", st->table, "arn",
	    st->table_arn, "scan_segments", ro->segments, "consistent_read", ro->consistent,
	    "max_rcu", ro->max_rcu, "counts", "table_items", (json_int_t)st->table_items,
	    "log_items", (json_int_t)st->log_items, "matched", (json_int_t)st->matched,
	    "unknown_image", (json_int_t)st->unknown, "reread", (json_int_t)st->reread,
	    "unlogged", (json_int_t)st->unlogged, "missing", (json_int_t)st->missing, "drift",
	    (json_int_t)st->drift, "read_capacity_units", st->rcu, "throttled",
	    (json_int_t)st->throttles);
	if (j && exp)
		json_object_set_new(j, "export_time",
				    json_string(dda_time_format(st->export_time, true, a)));
	else if (j) {
		json_object_set_new(j, "scan_started",
				    json_string(dda_time_format(st->scan_started, false, a)));
		json_object_set_new(j, "scan_finished",
				    json_string(dda_time_format(st->scan_finished, false, b)));
	}
	return j;
}

static int refuse_options(struct cli *c)
{
	if (!c->replay.table == !c->restore.baseline) {
		dda__cli_error(c, "reconcile needs --table ddb://TABLE (the live table) or "
				  "--baseline EXPORT (a full export), one of them");
		return EXIT_USAGE;
	}
	if (c->format == DDA_FMT__COUNT) {
		dda__cli_error(c, "--format text applies to history; use json, csv, md or html");
		return EXIT_USAGE;
	}
	return 0;
}

int dda__cmd_reconcile(int argc, char **argv, struct cli *c)
{
	struct dda_error err = {0};
	struct dda_result res;
	struct dda_reconcile_stats st;
	struct dda__cli_run_meta meta = {0};
	int status = refuse_options(c);
	if (status)
		return status;
	struct dda_reconcile_opts ro = {.table = c->replay.table,
					.export = c->restore.baseline,
					.segments = c->table.segments,
					.consistent = c->table.consistent,
					.max_rcu = c->table.max_rcu};
	c->audit.progress = dda__cli_progress;
	c->audit.ctx = c;
	dda__cli_catch_signals(c);
	int rc = dda_reconcile_run(&c->audit, &ro, &res, &st, &err);
	if (rc) {
		dda__cli_error(c, "%s", err.msg);
		dda_result_release(&res);
		return rc == DDA_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
	}
	if (res.fatal.code)
		dda__cli_error(c, "%s; the reconcile is incomplete", res.fatal.msg);
	json_t *extra = json_pack("{so}", "reconcile", stats_json(&st, &ro));
	if (c->options)
		json_object_set_new(c->options, c->replay.table ? "table" : "baseline",
				    json_string(c->replay.table ? c->replay.table : c->restore.baseline));
	struct dda_report_info info = {
	    .source = c->source,
	    .range = c->audit.src.range,
	    .options = c->options,
	    .fail_on = c->fail_on,
	    .extra = extra,
	};
	/* The live table was read with AWS credentials: the caller is asked. */
	dda__cli_run_meta(c, argc, argv, true, &meta, &info);
	status = extra ? dda__cli_write_reports(c, &info, &res) : EXIT_RUNTIME;
	dda__cli_run_meta_release(&meta);
	if (!status)
		status = dda__cli_verdict(c, &res);
	if (c->verbose >= 0)
		fprintf(stderr,
			"ddbaudit: reconcile: %s: table %s: %llu items scanned, %llu items in the "
			"log; %llu agree, %llu unlogged, %llu missing, %llu drifted, %llu read "
			"again; exit %d\n",
			dda_run_verdict_name(dda_result_verdict(&res, c->fail_on)), st.table,
			(unsigned long long)st.table_items, (unsigned long long)st.log_items,
			(unsigned long long)st.matched, (unsigned long long)st.unlogged,
			(unsigned long long)st.missing, (unsigned long long)st.drift,
			(unsigned long long)st.reread, status);
	if (st.unknown)
		dda__cli_warn(c,
			      "%llu items could only be checked for presence: the log holds no new "
			      "image of their last change (a KEYS_ONLY or OLD_IMAGE stream)",
			      (unsigned long long)st.unknown);
	json_decref(extra);
	dda_result_release(&res);
	return status;
}
