/* --metrics: what a run did, for monitoring. A Prometheus text file for
 * node_exporter's textfile collector (written whole or not at all), or one
 * CloudWatch Embedded Metric Format line on stderr. docs/operations.md
 * lists every metric. */
#include "cli/cli.h"

#include <math.h>

/* The previous file is read for the counters and the last success it
 * carries; ours are a few kilobytes, so anything larger is not ours. */
#define METRICS_OLD_MAX (1u << 20)
/* Our file: about 120 lines of at most a few hundred bytes each, plus the
 * source name (bounded by the command line). */
#define METRICS_OUT_MAX (1u << 22)
/* CloudWatch refuses dimension values longer than this. */
#define EMF_DIMENSION_MAX 1024

/* What one run amounts to. */
struct run {
	const struct dda_summary *sum;
	uint64_t by_kind_sev[DDA_K__COUNT][DDA_SEV__COUNT];
	int verdict; /* enum dda_run_verdict */
	int status;  /* exit status */
	int64_t started, finished;
};

/* The labels every series of one run carries, already escaped. */
struct out {
	struct dda_buf b;
	struct dda_buf old;  /* the previous file, or empty */
	struct dda_buf base; /* command="...",source="..." */
	struct dda_buf key;  /* scratch: a series' name and labels */
};

/* A label value in the exposition format: valid UTF-8, with backslash,
 * double quote and line feed escaped. */
static int add_label_value(struct dda_buf *b, const char *s)
{
	struct dda_buf tmp;
	dda_buf_init(&tmp, DDA_BUF_UNLIMITED);
	const char *u = dda__text_utf8(&tmp, s);
	int rc = 0;
	for (; *u && !rc; u++) {
		if (*u == '\\')
			rc = dda_buf_adds(b, "\\\\");
		else if (*u == '"')
			rc = dda_buf_adds(b, "\\\"");
		else if (*u == '\n')
			rc = dda_buf_adds(b, "\\n");
		else
			rc = dda_buf_addc(b, *u);
	}
	dda_buf_release(&tmp);
	return rc;
}

static int family(struct out *o, const char *name, const char *type, const char *help)
{
	return dda_buf_addf(&o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The series key "name{labels}" in o->key: the base labels, then extra
 * ones ("kind=\"GAP\"", already escaped), comma-separated. */
static int series_key(struct out *o, const char *name, const char *extra)
{
	dda_buf_reset(&o->key);
	return dda_buf_addf(&o->key, "%s{%s%s%s}", name, o->base.ptr, extra ? "," : "",
			    extra ? extra : "");
}

/* The value the previous file gave a series, or -1 when it has none. A
 * counter's carried value must be a whole number we could have written. */
static double old_value(const struct out *o, const char *key)
{
	size_t n = strlen(key);
	for (const char *p = o->old.ptr; p && *p;) {
		if (!strncmp(p, key, n) && p[n] == ' ') {
			char *end;
			double v = strtod(p + n + 1, &end);
			if (end != p + n + 1 && (*end == '\n' || !*end) && isfinite(v) && v >= 0)
				return v;
			return -1;
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return -1;
}

static int gauge(struct out *o, const char *name, const char *extra, double v)
{
	int rc = series_key(o, name, extra);
	return rc ? rc : dda_buf_addf(&o->b, "%s %.15g\n", o->key.ptr, v);
}

/* A counter over every run that wrote this file: the previous value plus
 * this run's. A file that is missing or not ours starts it again, which
 * Prometheus reads as a counter reset. */
static int counter(struct out *o, const char *name, const char *extra, uint64_t add)
{
	int rc = series_key(o, name, extra);
	if (rc)
		return rc;
	double prev = old_value(o, o->key.ptr);
	uint64_t total = add;
	if (prev >= 0 && prev < 9e15 && prev == floor(prev))
		total += (uint64_t)prev;
	return dda_buf_addf(&o->b, "%s %llu\n", o->key.ptr, (unsigned long long)total);
}

static int kind_labels(struct dda_buf *b, int kind, int sev)
{
	dda_buf_reset(b);
	return dda_buf_addf(b, "kind=\"%s\",severity=\"%s\"", dda_kind_name(kind),
			    dda_severity_name(sev));
}

/* Every kind at its usual severity, so that each series exists from the
 * first run (an alert on a series that does not exist yet never fires),
 * and any other severity a kind was found at. */
static bool kind_series(const struct run *r, int k, int s)
{
	return s == dda_kind_severity(k) || r->by_kind_sev[k][s];
}

static int anomalies(struct out *o, const struct run *r, bool total)
{
	struct dda_buf labels;
	dda_buf_init(&labels, 256);
	int rc = total ? family(o, "ddbaudit_anomalies_total", "counter",
				"Anomalies found, over every run that wrote this file.")
		       : family(o, "ddbaudit_last_run_anomalies", "gauge",
				"Anomalies found by the last run.");
	for (int k = 0; k < DDA_K__COUNT && !rc; k++) {
		for (int s = 0; s < DDA_SEV__COUNT && !rc; s++) {
			if (!kind_series(r, k, s))
				continue;
			rc = kind_labels(&labels, k, s);
			if (!rc && total)
				rc = counter(o, "ddbaudit_anomalies_total", labels.ptr,
					     r->by_kind_sev[k][s]);
			else if (!rc)
				rc = gauge(o, "ddbaudit_last_run_anomalies", labels.ptr,
					   (double)r->by_kind_sev[k][s]);
		}
	}
	dda_buf_release(&labels);
	return rc;
}

/* The amounts: a counter over all runs and a gauge for the last one. */
static int amount(struct out *o, const char *what, const char *unit, uint64_t v, const char *help)
{
	char total[96], last[96];
	snprintf(total, sizeof(total), "ddbaudit_%s%s_total", what, unit);
	snprintf(last, sizeof(last), "ddbaudit_last_run_%s%s", what, unit);
	char h[160];
	snprintf(h, sizeof(h), "%s, over every run that wrote this file.", help);
	int rc = family(o, total, "counter", h);
	if (!rc)
		rc = counter(o, total, NULL, v);
	snprintf(h, sizeof(h), "%s by the last run.", help);
	if (!rc)
		rc = family(o, last, "gauge", h);
	return rc ? rc : gauge(o, last, NULL, (double)v);
}

static int verdicts(struct out *o, const struct run *r)
{
	char l[64];
	int rc =
	    family(o, "ddbaudit_runs_total", "counter", "Runs that wrote this file, by verdict.");
	for (int v = DDA_RUN_CLEAN; v <= DDA_RUN_INCOMPLETE && !rc; v++) {
		snprintf(l, sizeof(l), "verdict=\"%s\"", dda_run_verdict_name(v));
		rc = counter(o, "ddbaudit_runs_total", l, v == r->verdict);
	}
	if (!rc)
		rc = family(o, "ddbaudit_last_run_verdict", "gauge",
			    "The last run's verdict: 1 for the verdict it had, 0 for the others.");
	for (int v = DDA_RUN_CLEAN; v <= DDA_RUN_INCOMPLETE && !rc; v++) {
		snprintf(l, sizeof(l), "verdict=\"%s\"", dda_run_verdict_name(v));
		rc = gauge(o, "ddbaudit_last_run_verdict", l, v == r->verdict);
	}
	return rc;
}

/* A run succeeded when it read everything it had to (clean or findings);
 * otherwise the previous success is carried over, 0 when there was none. */
static int times(struct out *o, const struct run *r)
{
	double fin = (double)r->finished / 1e6;
	int rc = family(o, "ddbaudit_last_run_timestamp_seconds", "gauge",
			"When the last run ended, in seconds since the epoch.");
	if (!rc)
		rc = gauge(o, "ddbaudit_last_run_timestamp_seconds", NULL, fin);
	if (!rc)
		rc = family(o, "ddbaudit_last_success_timestamp_seconds", "gauge",
			    "When the last complete run (verdict clean or findings) ended.");
	if (!rc)
		rc = series_key(o, "ddbaudit_last_success_timestamp_seconds", NULL);
	double last = r->verdict == DDA_RUN_INCOMPLETE ? old_value(o, o->key.ptr) : fin;
	if (!rc)
		rc = gauge(o, "ddbaudit_last_success_timestamp_seconds", NULL, DDA_MAX(last, 0));
	if (!rc)
		rc = family(o, "ddbaudit_last_run_duration_seconds", "gauge",
			    "How long the last run took.");
	if (!rc)
		rc = gauge(o, "ddbaudit_last_run_duration_seconds", NULL,
			   (double)(r->finished - r->started) / 1e6);
	if (!rc)
		rc = family(o, "ddbaudit_last_run_exit_code", "gauge",
			    "The last run's exit status (0 clean, 1 findings, 3 failure).");
	return rc ? rc : gauge(o, "ddbaudit_last_run_exit_code", NULL, r->status);
}

static int build_info(struct out *o)
{
	int rc = family(o, "ddbaudit_build_info", "gauge",
			"The ddbaudit that wrote this file (always 1).");
	if (!rc)
		rc = dda_buf_addf(&o->b, "ddbaudit_build_info{version=\"%s\",commit=\"%s\"} 1\n",
				  dda_version(), dda__cli_commit());
	return rc;
}

/* Findings left out of the report by --ignore or a --baseline entry: a
 * series per kind that had any, so that hidden findings stay visible. */
static int hidden(struct out *o, const char *name, const char *help, const uint64_t *by_kind)
{
	char l[96];
	int rc = family(o, name, "gauge", help);
	for (int k = 0; k < DDA_K__COUNT && !rc; k++) {
		if (!by_kind[k])
			continue;
		snprintf(l, sizeof(l), "kind=\"%s\"", dda_kind_name(k));
		rc = gauge(o, name, l, (double)by_kind[k]);
	}
	return rc;
}

static int prometheus_text(struct out *o, const struct run *r)
{
	const struct dda_summary *s = r->sum;
	int rc = build_info(o);
	if (!rc)
		rc = verdicts(o, r);
	if (!rc)
		rc = times(o, r);
	if (!rc)
		rc = amount(o, "objects", "", s->objects, "Audit objects read");
	if (!rc)
		rc = amount(o, "records", "", s->records, "Records decoded");
	if (!rc)
		rc = amount(o, "read", "_bytes", s->bytes, "Bytes of audit objects read");
	if (!rc)
		rc = amount(o, "items", "", s->items, "Items whose history was checked");
	if (!rc)
		rc = anomalies(o, r, true);
	if (!rc)
		rc = anomalies(o, r, false);
	if (!rc)
		rc = hidden(o, "ddbaudit_last_run_ignored_anomalies",
			    "Findings of the last run left out by --ignore, by kind.", s->ignored);
	if (!rc)
		rc = hidden(o, "ddbaudit_last_run_suppressed_anomalies",
			    "Findings of the last run matched by a --baseline entry, by kind.",
			    s->suppressed);
	return rc;
}

static void run_of(struct run *r, const struct cli *c, const struct dda_result *res, int status,
		   int64_t started)
{
	memset(r, 0, sizeof(*r));
	r->sum = &res->sum;
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		if (a->kind >= 0 && a->kind < DDA_K__COUNT && a->severity >= 0 &&
		    a->severity < DDA_SEV__COUNT)
			r->by_kind_sev[a->kind][a->severity]++;
	}
	r->status = status;
	r->verdict = status == EXIT_RUNTIME || status == EXIT_USAGE
			 ? DDA_RUN_INCOMPLETE
			 : dda_result_verdict(res, c->fail_on);
	r->started = started;
	r->finished = dda_time_now();
}

static int write_prometheus(struct cli *c, struct dda__cli_metrics *m, const struct run *r,
			    struct dda_error *err)
{
	struct out o;
	dda_buf_init(&o.b, METRICS_OUT_MAX);
	dda_buf_init(&o.old, METRICS_OLD_MAX);
	dda_buf_init(&o.base, METRICS_OUT_MAX / 4);
	dda_buf_init(&o.key, METRICS_OUT_MAX / 4);
	struct dda_error ignored = {0};
	/* A previous file that cannot be read starts the counters again. */
	if (dda__read_file(m->path, &o.old, &ignored))
		dda_buf_reset(&o.old);
	int rc = dda_buf_addf(&o.base, "command=\"%s\",source=\"", c->cmd);
	if (!rc)
		rc = add_label_value(&o.base, c->source ? c->source : "");
	if (!rc)
		rc = dda_buf_addc(&o.base, '"');
	if (!rc)
		rc = prometheus_text(&o, r);
	if (rc) {
		rc = dda_error_set(err, rc, "cannot build the metrics: %s", dda_strerror(rc));
		goto out;
	}
	FILE *f = dda__afile_stream(&m->file, err);
	if (!f) {
		rc = DDA_EIO;
		goto out;
	}
	fwrite(o.b.ptr, 1, o.b.len, f);
	rc = dda__afile_commit(&m->file, err);
out:
	dda_buf_release(&o.b);
	dda_buf_release(&o.old);
	dda_buf_release(&o.base);
	dda_buf_release(&o.key);
	return rc;
}

static void emf_metric(json_t *defs, json_t *root, const char *name, const char *unit, double v)
{
	json_array_append_new(defs, json_pack("{ssss}", "Name", name, "Unit", unit));
	json_object_set_new(root, name, json_real(v));
}

/* One line of CloudWatch's Embedded Metric Format: metric values as
 * members of the object, described by the _aws metadata. */
static int write_emf(struct cli *c, const struct run *r, struct dda_error *err)
{
	struct dda_buf tmp;
	dda_buf_init(&tmp, DDA_BUF_UNLIMITED);
	char source[EMF_DIMENSION_MAX + 1];
	const char *u = dda__text_utf8(&tmp, c->source ? c->source : "");
	size_t cut = strlen(u);
	if (cut > EMF_DIMENSION_MAX) /* cut before a character, not inside one */
		for (cut = EMF_DIMENSION_MAX; cut && (u[cut] & 0xC0) == 0x80; cut--)
			;
	snprintf(source, sizeof(source), "%.*s", (int)cut, u);
	const char *ns = getenv("AWS_EMF_NAMESPACE");
	json_t *defs = json_array();
	json_t *root = json_pack("{s{sIs[{sss[[ss]]so}]}ssssssssss}", "_aws", "Timestamp",
				 (json_int_t)(r->finished / 1000), "CloudWatchMetrics", "Namespace",
				 ns && *ns ? ns : "ddbaudit", "Dimensions", "Command", "Source",
				 "Metrics", defs, "Command", c->cmd, "Source", source, "Verdict",
				 dda_run_verdict_name(r->verdict), "Version", dda_version(),
				 "Commit", dda__cli_commit());
	dda_buf_release(&tmp);
	if (!root)
		return dda_error_set(err, DDA_ENOMEM, "cannot build the metrics line");
	const struct dda_summary *s = r->sum;
	emf_metric(defs, root, "Success", "Count", r->verdict != DDA_RUN_INCOMPLETE);
	emf_metric(defs, root, "ExitCode", "None", r->status);
	emf_metric(defs, root, "Duration", "Seconds", (double)(r->finished - r->started) / 1e6);
	emf_metric(defs, root, "Objects", "Count", (double)s->objects);
	emf_metric(defs, root, "Records", "Count", (double)s->records);
	emf_metric(defs, root, "Bytes", "Bytes", (double)s->bytes);
	emf_metric(defs, root, "Items", "Count", (double)s->items);
	static const char *const sev_names[] = {"InfoAnomalies", "WarningAnomalies",
						"ErrorAnomalies"};
	for (int v = 0; v < DDA_SEV__COUNT; v++)
		emf_metric(defs, root, sev_names[v], "Count", (double)s->anomalies[v]);
	uint64_t ignored = 0, suppressed = 0;
	for (int k = 0; k < DDA_K__COUNT; k++) {
		ignored += s->ignored[k];
		suppressed += s->suppressed[k];
	}
	emf_metric(defs, root, "IgnoredAnomalies", "Count", (double)ignored);
	emf_metric(defs, root, "SuppressedAnomalies", "Count", (double)suppressed);
	for (int k = 0; k < DDA_K__COUNT; k++) {
		uint64_t n = 0;
		for (int v = 0; v < DDA_SEV__COUNT; v++)
			n += r->by_kind_sev[k][v];
		emf_metric(defs, root, dda_kind_name(k), "Count", (double)n);
	}
	char *line = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!line)
		return dda_error_set(err, DDA_ENOMEM, "cannot build the metrics line");
	fprintf(stderr, "%s\n", line);
	free(line);
	return 0;
}

void dda__cli_metrics_init(struct dda__cli_metrics *m)
{
	memset(m, 0, sizeof(*m));
	dda__afile_init(&m->file);
}

int dda__cli_metrics_begin(struct cli *c, struct dda__cli_metrics *m)
{
	struct dda_error err = {0};
	m->started = dda_time_now();
	m->path = c->metrics;
	if (!m->path || !strcmp(m->path, "emf"))
		return 0;
	/* Opened before the run, so that a path that cannot be written stops
	 * the run before it reads anything, not after hours of reading. */
	if (dda__afile_open(&m->file, m->path, &err)) {
		dda__cli_error(c, "--metrics: %s", err.msg);
		return EXIT_RUNTIME;
	}
	return 0;
}

int dda__cli_metrics_end(struct cli *c, struct dda__cli_metrics *m, const struct dda_result *res,
			 int status)
{
	struct dda_error err = {0};
	struct run r;
	if (!m->path)
		return status;
	run_of(&r, c, res, status, m->started);
	int rc =
	    !strcmp(m->path, "emf") ? write_emf(c, &r, &err) : write_prometheus(c, m, &r, &err);
	if (!rc)
		return status;
	dda__cli_error(c, "--metrics: %s", err.msg);
	return EXIT_RUNTIME;
}

void dda__cli_metrics_release(struct dda__cli_metrics *m)
{
	dda__afile_discard(&m->file);
}
