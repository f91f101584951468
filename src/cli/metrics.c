/* --metrics: what a run of verify or replay did, for monitoring. A
 * Prometheus text file for node_exporter's textfile collector (written whole
 * or not at all), or one CloudWatch Embedded Metric Format line on stderr.
 * docs/operations.md lists every metric. */
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

/* A replay's run outcomes, by exit status as verify's verdicts are: every
 * record acknowledged; records dead-lettered, dropped, or none to send; a
 * run that stopped early or could not start. */
static const char *const replay_outcomes[] = {"clean", "failures", "incomplete"};

/* What one run amounts to: a verify's result or a replay's figures. */
struct run {
	const char *prefix; /* of the run's metric names: "ddbaudit", "ddbaudit_replay" */
	const struct dda_summary *sum;		  /* verify, else NULL */
	const struct dda__cli_replay_figures *rf; /* replay, else NULL */
	uint64_t by_kind_sev[DDA_K__COUNT][DDA_SEV__COUNT];
	int verdict; /* enum dda_run_verdict; for a replay, replay_outcomes' index */
	int status;  /* exit status */
	int64_t started, finished;
};

/* The name of the verdict (verify) or outcome (replay) v. */
static const char *verdict_name(const struct run *r, int v)
{
	return r->rf ? replay_outcomes[v] : dda_run_verdict_name(v);
}

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

/* Metric names are PREFIX_NAME; ours are short. */
#define METRIC_NAME_MAX 96

/* A counter over all runs and a gauge for the last one, by label: the
 * counter PREFIX_WHAT_total and the gauge PREFIX_last_run_WHAT, one series
 * each per label value (label NULL: one series, of values[0]). */
static int amounts(struct out *o, const struct run *r, const char *what, const char *label,
		   const char *const *names, const uint64_t *values, int n, const char *help)
{
	char total[METRIC_NAME_MAX], last[METRIC_NAME_MAX], h[192], l[96];
	snprintf(total, sizeof(total), "%s_%s_total", r->prefix, what);
	snprintf(last, sizeof(last), "%s_last_run_%s", r->prefix, what);
	snprintf(h, sizeof(h), "%s, over every run that wrote this file.", help);
	int rc = family(o, total, "counter", h);
	for (int i = 0; i < n && !rc; i++) {
		snprintf(l, sizeof(l), "%s=\"%s\"", label ? label : "", label ? names[i] : "");
		rc = counter(o, total, label ? l : NULL, values[i]);
	}
	snprintf(h, sizeof(h), "%s by the last run.", help);
	if (!rc)
		rc = family(o, last, "gauge", h);
	for (int i = 0; i < n && !rc; i++) {
		snprintf(l, sizeof(l), "%s=\"%s\"", label ? label : "", label ? names[i] : "");
		rc = gauge(o, last, label ? l : NULL, (double)values[i]);
	}
	return rc;
}

/* The amounts without a label: a counter over all runs and a gauge. */
static int amount(struct out *o, const struct run *r, const char *what, uint64_t v,
		  const char *help)
{
	return amounts(o, r, what, NULL, NULL, &v, 1, help);
}

/* PREFIX_runs_total and PREFIX_last_run_verdict (verify) or
 * PREFIX_last_run_outcome (replay), by the verdict's name. */
static int verdicts(struct out *o, const struct run *r)
{
	const char *what = r->rf ? "outcome" : "verdict";
	char name[METRIC_NAME_MAX], l[64], h[128];
	snprintf(name, sizeof(name), "%s_runs_total", r->prefix);
	snprintf(h, sizeof(h), "Runs that wrote this file, by %s.", what);
	int rc = family(o, name, "counter", h);
	for (int v = DDA_RUN_CLEAN; v <= DDA_RUN_INCOMPLETE && !rc; v++) {
		snprintf(l, sizeof(l), "%s=\"%s\"", what, verdict_name(r, v));
		rc = counter(o, name, l, v == r->verdict);
	}
	snprintf(name, sizeof(name), "%s_last_run_%s", r->prefix, what);
	snprintf(h, sizeof(h), "The last run's %s: 1 for the %s it had, 0 for the others.", what,
		 what);
	if (!rc)
		rc = family(o, name, "gauge", h);
	for (int v = DDA_RUN_CLEAN; v <= DDA_RUN_INCOMPLETE && !rc; v++) {
		snprintf(l, sizeof(l), "%s=\"%s\"", what, verdict_name(r, v));
		rc = gauge(o, name, l, v == r->verdict);
	}
	return rc;
}

/* A gauge family of one series without labels beyond the base ones. */
static int single(struct out *o, const struct run *r, const char *what, const char *help, double v)
{
	char name[METRIC_NAME_MAX];
	snprintf(name, sizeof(name), "%s_%s", r->prefix, what);
	int rc = family(o, name, "gauge", help);
	return rc ? rc : gauge(o, name, NULL, v);
}

/* A run succeeded when it did everything it had to (verify: read
 * everything, clean or findings; replay: every planned record acknowledged
 * or parked as asked); otherwise the previous success is carried over, 0
 * when there was none. */
static int times(struct out *o, const struct run *r)
{
	char name[METRIC_NAME_MAX];
	double fin = (double)r->finished / 1e6;
	int rc = single(o, r, "last_run_timestamp_seconds",
			"When the last run ended, in seconds since the epoch.", fin);
	snprintf(name, sizeof(name), "%s_last_success_timestamp_seconds", r->prefix);
	if (!rc)
		rc =
		    family(o, name, "gauge",
			   r->rf ? "When the last complete run (outcome clean or failures) ended."
				 : "When the last complete run (verdict clean or findings) ended.");
	if (!rc)
		rc = series_key(o, name, NULL);
	double last = r->verdict == DDA_RUN_INCOMPLETE ? old_value(o, o->key.ptr) : fin;
	if (!rc)
		rc = gauge(o, name, NULL, DDA_MAX(last, 0));
	if (!rc)
		rc = single(o, r, "last_run_duration_seconds", "How long the last run took.",
			    (double)(r->finished - r->started) / 1e6);
	if (!rc)
		rc = single(o, r, "last_run_exit_code",
			    r->rf ? "The last run's exit status (0 clean, 1 failures, 3 failure)."
				  : "The last run's exit status (0 clean, 1 findings, 3 failure).",
			    r->status);
	return rc;
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

/* The families every run writes first: who wrote the file, how the run
 * ended, and what it read. */
static int run_head(struct out *o, const struct run *r, uint64_t objects, uint64_t bytes)
{
	int rc = build_info(o);
	if (!rc)
		rc = verdicts(o, r);
	if (!rc)
		rc = times(o, r);
	if (!rc)
		rc = amount(o, r, "objects", objects, "Audit objects read");
	return rc ? rc : amount(o, r, "read_bytes", bytes, "Bytes of audit objects read");
}

static int verify_text(struct out *o, const struct run *r)
{
	const struct dda_summary *s = r->sum;
	int rc = run_head(o, r, s->objects, s->bytes);
	if (!rc)
		rc = amount(o, r, "records", s->records, "Records decoded");
	if (!rc)
		rc = amount(o, r, "items", s->items, "Items whose history was checked");
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

/* The records a replay planned, by what became of them; "failed" are the
 * ones neither acknowledged nor parked (the run stopped), which a resume
 * sends. */
static const char *const record_outcomes[] = {"delivered", "resumed", "dead_lettered", "dropped",
					      "failed"};
static const char *const skip_reasons[] = {"duplicate", "filtered"};

static int replay_records(struct out *o, const struct run *r)
{
	const struct dda__cli_replay_figures *f = r->rf;
	uint64_t done = f->acknowledged + f->resumed + f->dead_lettered + f->dropped;
	const uint64_t by_outcome[] = {f->acknowledged, f->resumed, f->dead_lettered, f->dropped,
				       f->planned > done ? f->planned - done : 0};
	const uint64_t skipped[] = {f->duplicates, f->filtered};
	int rc = amounts(o, r, "records", "outcome", record_outcomes, by_outcome,
			 DDA_ARRAY_SIZE(by_outcome), "Planned stream records by outcome");
	if (!rc)
		rc = amounts(o, r, "skipped_records", "reason", skip_reasons, skipped,
			     DDA_ARRAY_SIZE(skipped), "Changes left out of the plan by reason");
	return rc;
}

/* Batch latency: the time a target took to answer a batch, as quantiles
 * of the last run (gauges, not a summary: they are not kept across runs). */
static int replay_latency(struct out *o, const struct run *r)
{
	char name[METRIC_NAME_MAX];
	snprintf(name, sizeof(name), "%s_last_run_batch_latency_seconds", r->prefix);
	int rc = family(o, name, "gauge",
			"Quantiles of the time the target took to answer a batch, last run.");
	if (!rc)
		rc = gauge(o, name, "quantile=\"0.5\"", r->rf->p50_seconds);
	return rc ? rc : gauge(o, name, "quantile=\"0.99\"", r->rf->p99_seconds);
}

static int replay_text(struct out *o, const struct run *r)
{
	const struct dda__cli_replay_figures *f = r->rf;
	int rc = run_head(o, r, f->objects, f->read_bytes);
	if (!rc)
		rc = replay_records(o, r);
	if (!rc)
		rc = amount(o, r, "record_bytes", f->planned_bytes,
			    "Bytes of the planned stream records");
	if (!rc)
		rc = amount(o, r, "batches", f->batches, "Batch requests sent, retries included");
	if (!rc)
		rc = amount(o, r, "retries", f->retries, "Batch requests that were retries");
	if (!rc)
		rc = amount(o, r, "throttles", f->throttles,
			    "Batch requests the target throttled (429, 503)");
	if (!rc)
		rc = amount(o, r, "bisections", f->bisections,
			    "Failing batches split to isolate a bad record");
	if (!rc)
		rc = single(o, r, "last_run_delivery_seconds",
			    "How long the last run's delivery took (reading not included).",
			    f->delivery_seconds);
	return rc ? rc : replay_latency(o, r);
}

static void run_of(struct run *r, const struct cli *c, const struct dda_result *res, int status,
		   int64_t started)
{
	memset(r, 0, sizeof(*r));
	r->prefix = "ddbaudit";
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
		rc = r->rf ? replay_text(&o, r) : verify_text(&o, r);
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

static void emf_verify(json_t *defs, json_t *root, const struct run *r)
{
	const struct dda_summary *s = r->sum;
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
}

static void emf_replay(json_t *defs, json_t *root, const struct run *r)
{
	const struct dda__cli_replay_figures *f = r->rf;
	uint64_t done = f->acknowledged + f->resumed + f->dead_lettered + f->dropped;
	emf_metric(defs, root, "Objects", "Count", (double)f->objects);
	emf_metric(defs, root, "Bytes", "Bytes", (double)f->read_bytes);
	emf_metric(defs, root, "Records", "Count", (double)f->planned);
	emf_metric(defs, root, "RecordBytes", "Bytes", (double)f->planned_bytes);
	emf_metric(defs, root, "Delivered", "Count", (double)f->acknowledged);
	emf_metric(defs, root, "Resumed", "Count", (double)f->resumed);
	emf_metric(defs, root, "DeadLettered", "Count", (double)f->dead_lettered);
	emf_metric(defs, root, "Dropped", "Count", (double)f->dropped);
	emf_metric(defs, root, "Failed", "Count",
		   (double)(f->planned > done ? f->planned - done : 0));
	emf_metric(defs, root, "DuplicatesSkipped", "Count", (double)f->duplicates);
	emf_metric(defs, root, "FilteredOut", "Count", (double)f->filtered);
	emf_metric(defs, root, "Batches", "Count", (double)f->batches);
	emf_metric(defs, root, "Retries", "Count", (double)f->retries);
	emf_metric(defs, root, "Throttles", "Count", (double)f->throttles);
	emf_metric(defs, root, "Bisections", "Count", (double)f->bisections);
	emf_metric(defs, root, "DeliveryDuration", "Seconds", f->delivery_seconds);
	emf_metric(defs, root, "BatchLatencyP50", "Seconds", f->p50_seconds);
	emf_metric(defs, root, "BatchLatencyP99", "Seconds", f->p99_seconds);
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
				 "Metrics", defs, "Command", c->cmd, "Source", source,
				 r->rf ? "Outcome" : "Verdict", verdict_name(r, r->verdict),
				 "Version", dda_version(), "Commit", dda__cli_commit());
	dda_buf_release(&tmp);
	if (!root)
		return dda_error_set(err, DDA_ENOMEM, "cannot build the metrics line");
	emf_metric(defs, root, "Success", "Count", r->verdict != DDA_RUN_INCOMPLETE);
	emf_metric(defs, root, "ExitCode", "None", r->status);
	emf_metric(defs, root, "Duration", "Seconds", (double)(r->finished - r->started) / 1e6);
	if (r->rf)
		emf_replay(defs, root, r);
	else
		emf_verify(defs, root, r);
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

/* Writes r where --metrics says; the exit status the run ends with. */
static int write_run(struct cli *c, struct dda__cli_metrics *m, const struct run *r)
{
	struct dda_error err = {0};
	int rc = !strcmp(m->path, "emf") ? write_emf(c, r, &err) : write_prometheus(c, m, r, &err);
	if (!rc)
		return r->status;
	dda__cli_error(c, "--metrics: %s", err.msg);
	return EXIT_RUNTIME;
}

int dda__cli_metrics_end(struct cli *c, struct dda__cli_metrics *m, const struct dda_result *res,
			 int status)
{
	struct run r;
	if (!m->path)
		return status;
	run_of(&r, c, res, status, m->started);
	return write_run(c, m, &r);
}

int dda__cli_metrics_replay_end(struct cli *c, struct dda__cli_metrics *m,
				const struct dda__cli_replay_figures *f, int status)
{
	struct run r;
	if (!m->path)
		return status;
	memset(&r, 0, sizeof(r));
	r.prefix = "ddbaudit_replay";
	r.rf = f;
	r.status = status;
	r.verdict = status == EXIT_CLEAN       ? DDA_RUN_CLEAN
		    : status == EXIT_ANOMALIES ? DDA_RUN_FINDINGS
					       : DDA_RUN_INCOMPLETE;
	r.started = m->started;
	r.finished = dda_time_now();
	return write_run(c, m, &r);
}

void dda__cli_metrics_release(struct dda__cli_metrics *m)
{
	dda__afile_discard(&m->file);
}
