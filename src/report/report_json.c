/* The JSON report, schema ddbaudit.report/v1 (docs/report.md). Field
 * names are stable; later versions only add fields. */
#include "report/report_impl.h"

#include <errno.h>

static json_t *time_or_null(int64_t t, bool frac)
{
	char buf[DDA_TIME_STRLEN];
	return t == DDA_TIME_NONE ? json_null() : json_string(dda_time_format(t, frac, buf));
}

static json_t *digest_or_null(bool has, const uint8_t *d)
{
	char hex[2 * DDA_DIGEST_LEN + 1];
	if (!has)
		return json_null();
	dda__hex(d, DDA_DIGEST_LEN, hex);
	return json_string(hex);
}

/* Counts by kind name, kinds with none left out. */
static json_t *kind_counts(const uint64_t *by_kind)
{
	json_t *j = json_object();
	for (int k = 0; j && k < DDA_K__COUNT; k++)
		if (by_kind[k])
			json_object_set_new(j, dda_kind_name(k),
					    json_integer((json_int_t)by_kind[k]));
	return j;
}

static json_t *summary_base(const struct dda_summary *s)
{
	json_t *by_kind = kind_counts(s->by_kind);
	/* One key and value a line, as the schema reads. */
	/* clang-format off */
	return json_pack("{sIsIsIsIsIsIsIsIs{sIsIsI}s{sIsIsI}sosIsI}",
			 "objects", (json_int_t)s->objects,
			 "bytes", (json_int_t)s->bytes,
			 "records", (json_int_t)s->records,
			 "valid", (json_int_t)s->valid,
			 "invalid", (json_int_t)s->invalid,
			 "filtered", (json_int_t)s->filtered,
			 "duplicates", (json_int_t)s->duplicates,
			 "items", (json_int_t)s->items,
			 "events",
			 "INSERT", (json_int_t)s->events[DDA_EV_INSERT],
			 "MODIFY", (json_int_t)s->events[DDA_EV_MODIFY],
			 "REMOVE", (json_int_t)s->events[DDA_EV_REMOVE],
			 "anomalies",
			 "error", (json_int_t)s->anomalies[DDA_SEV_ERROR],
			 "warning", (json_int_t)s->anomalies[DDA_SEV_WARNING],
			 "info", (json_int_t)s->anomalies[DDA_SEV_INFO],
			 "by_kind", by_kind,
			 "prefixes_skipped", (json_int_t)s->prefixes_skipped,
			 "objects_skipped", (json_int_t)s->objects_skipped);
	/* clang-format on */
}

/* Counters added to v1 after its first fields. */
static json_t *summary_more(json_t *j, const struct dda_summary *s)
{
	if (j)
		json_object_set_new(j, "deferred", json_integer((json_int_t)s->deferred));
	if (j)
		json_object_set_new(j, "states", json_integer((json_int_t)s->states));
	/* Findings that --ignore or a baseline took out of the list and the
	 * verdict: counted here, never gone without a trace. */
	if (j)
		json_object_set_new(j, "ignored", kind_counts(s->ignored));
	if (j)
		json_object_set_new(j, "suppressed", kind_counts(s->suppressed));
	return j;
}

static json_t *summary_json(const struct dda_summary *s)
{
	return summary_more(summary_base(s), s);
}

static json_t *hours_json(const struct dda_result *res)
{
	json_t *a = json_array();
	for (size_t i = 0; i < res->nhours; i++) {
		const struct dda_hour_stat *h = &res->hours[i];
		json_array_append_new(
		    a, json_pack("{sosIsIsIsb}", "hour", time_or_null(h->hour, false), "objects",
				 (json_int_t)h->objects, "records", (json_int_t)h->records,
				 "anomalies", (json_int_t)h->anomalies, "in_range", h->in_range));
	}
	return a;
}

static json_t *object_json(const struct dda_result *res, uint32_t obj)
{
	const struct dda_object *o = obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, obj) : NULL;
	if (!o)
		return json_null();
	json_t *j = json_object();
	if (j && (dda__report_set_name(j, "key", o->key) ||
		  dda__report_set_name(j, "version", o->version) ||
		  dda__report_set_name(j, "etag", o->etag))) {
		json_decref(j);
		j = NULL;
	}
	/* A shard's objects carry their place in the shared listing. */
	if (j && o->listing &&
	    json_object_set_new(j, "listing", json_integer((json_int_t)o->listing))) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static json_t *anomaly_json(const struct dda_result *res, const struct dda_anomaly *a)
{
	json_t *item = a->key ? dda_canon_to_json(a->key, a->key_len) : NULL;
	json_t *j =
	    json_pack("{sssssosososIsIsosososb}", "kind", dda_kind_name(a->kind), "severity",
		      dda_severity_name(a->severity), "item", item ? item : json_null(), "object",
		      object_json(res, a->obj), "time", time_or_null(a->time, true), "line",
		      (json_int_t)a->line, "index", (json_int_t)a->index, "detail",
		      dda__report_text(a->detail ? a->detail : ""), "expected_digest",
		      digest_or_null(a->has_expected, a->expected), "found_digest",
		      digest_or_null(a->has_found, a->found), "provisional", a->provisional);
	if (j && a->diff)
		json_object_set(j, "diff", a->diff);
	if (j && a->prev_obj != DDA_NO_OBJECT)
		json_object_set_new(j, "previous",
				    json_pack("{sosI}", "object", object_json(res, a->prev_obj),
					      "index", (json_int_t)a->prev_index));
	return j;
}

/* The one entry that stands for every finding of a folded kind: the fields
 * of any anomaly (item and object null), its count and a sample. */
static json_t *aggregate_json(const struct dda_result *res, int kind,
			      const struct dda__aggregate *ag)
{
	struct dda_buf tmp;
	json_t *sample = json_array();
	for (size_t i = 0; sample && i < ag->nsample; i++) {
		const struct dda_anomaly *a = &res->anomalies[ag->sample[i]];
		json_t *item = a->key ? dda_canon_to_json(a->key, a->key_len) : NULL;
		json_t *s = json_pack("{sosososI}", "item", item ? item : json_null(), "object",
				      object_json(res, a->obj), "time", time_or_null(a->time, true),
				      "line", (json_int_t)a->line);
		if (!s || json_array_append_new(sample, s)) {
			json_decref(sample);
			sample = NULL;
		}
	}
	dda_buf_init(&tmp, 4096);
	json_t *j = json_pack(
	    "{sssssosososIsIsssososbsIso}", "kind", dda_kind_name(kind), "severity",
	    dda_severity_name(dda_kind_severity(kind)), "item", json_null(), "object",
	    json_null(), "time", json_null(), "line", (json_int_t)0, "index", (json_int_t)0,
	    "detail", dda__report_aggregate_detail(ag, &tmp), "expected_digest", json_null(),
	    "found_digest", json_null(), "provisional", ag->provisional, "count",
	    (json_int_t)ag->count, "sample", sample);
	dda_buf_release(&tmp);
	return j;
}

/* The anomalies as report.json lists them: UNKNOWN_PRIOR once, where its
 * first finding is. An entry that cannot be built fails the list. */
static json_t *anomalies_json(const struct dda_result *res)
{
	struct dda__aggregate ag;
	json_t *list = json_array();
	dda__report_aggregate(res, DDA_K_UNKNOWN_PRIOR, &ag);
	for (size_t i = 0; list && i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		json_t *j;
		if (!dda__report_folded(a->kind))
			j = anomaly_json(res, a);
		else if (i == ag.first)
			j = aggregate_json(res, a->kind, &ag);
		else
			continue;
		if (!j || json_array_append_new(list, j)) {
			json_decref(list);
			list = NULL;
		}
	}
	return list;
}

json_t *dda_report_findings_json(const struct dda_result *res)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < res->nanomalies; i++) {
		json_t *j = anomaly_json(res, &res->anomalies[i]);
		if (!j || json_array_append_new(list, j)) {
			json_decref(list);
			list = NULL;
		}
	}
	return list;
}

/* The bucket's settings that decide whether audit objects can be lost. */
static json_t *bucket_json(const struct dda_source_facts *f)
{
	return json_pack("{sssosssssosbsIsIsI}", "name", f->bucket, "prefix",
			 dda__report_text(f->prefix),
			 "versioning", f->versioning[0] ? f->versioning : "unknown",
			 "object_lock", f->object_lock[0] ? f->object_lock : "unknown",
			 "default_retention", f->retention[0] ? json_string(f->retention) : json_null(),
			 "versions_listed", f->versions, "overwritten_keys",
			 (json_int_t)f->overwritten_keys, "delete_markers",
			 (json_int_t)f->delete_markers, "keys_outside_prefix",
			 (json_int_t)f->keys_outside_prefix);
}

/* What the run made of its --baseline: which file (by digest), and which
 * entries are stale (matched nothing here) so they can be pruned. */
static json_t *baseline_json(const struct dda_baseline_stats *b)
{
	json_t *lines = json_array();
	for (size_t i = 0; lines && i < b->nunused_lines; i++)
		json_array_append_new(lines, json_integer((json_int_t)b->unused_lines[i]));
	return json_pack("{sssIsIsIsIso}", "sha256", b->sha256, "entries", (json_int_t)b->entries,
			 "matched", (json_int_t)b->matched, "expired", (json_int_t)b->expired,
			 "unused", (json_int_t)b->unused, "unused_lines", lines);
}

static json_t *string_or_null(const char *s)
{
	return s ? dda__report_text(s) : json_null();
}

/* Who ran the audit, as STS said, or why that is not known. */
static json_t *caller_json(const struct dda_report_caller *c)
{
	if (c->account)
		return json_pack("{sssososo}", "status", "known", "account",
				 string_or_null(c->account), "arn", string_or_null(c->arn),
				 "user_id", string_or_null(c->user_id));
	return json_pack("{ssso}", "status", "unknown", "reason",
			 dda__report_text(c->reason ? c->reason : "not asked"));
}

/* The link of a --state chain: which state, the report before this one. */
static json_t *state_json(const struct dda_report_state *st)
{
	const char *prev = st->previous_report_sha256;
	json_t *j = json_pack("{sososo}", "previous_report_sha256",
			      prev && *prev ? json_string(prev) : json_null(), "previous_watermark",
			      time_or_null(st->previous_watermark, false), "watermark",
			      time_or_null(st->watermark, false));
	if (j && dda__report_set_name(j, "path", st->path)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* The event table's memory limit and what spilling past it did: the one
 * part of a report that differs between a spilled run and one that was
 * not. */
static json_t *memory_json(const struct dda_run_memory *m)
{
	const struct dda_spill_stats *s = &m->spill;
	return json_pack("{sosos{sIsIsI}}", "limit",
			 s->limit ? json_integer((json_int_t)s->limit) : json_null(), "limit_source",
			 string_or_null(m->source), "spilled", "runs", (json_int_t)s->runs, "events",
			 (json_int_t)s->events, "bytes", (json_int_t)s->bytes);
}

/* The run's metadata added to v1 after its first fields (docs/report.md). */
static void run_metadata(json_t *run, const struct dda_report_info *info,
			 const struct dda_result *res)
{
	int64_t at = info->generated_at ? info->generated_at : res->finished;
	json_object_set_new(run, "generated_at", time_or_null(at, false));
	json_object_set_new(run, "command_line", string_or_null(info->command_line));
	json_object_set_new(run, "tool",
			    json_pack("{ssso}", "version", dda_version(), "commit",
				      string_or_null(info->commit)));
	if (dda__report_set_name(run, "host", info->host))
		json_object_set_new(run, "host", json_null());
	json_object_set_new(run, "caller", caller_json(&info->caller));
	json_object_set_new(run, "versions", json_boolean(info->versions));
	json_object_set_new(run, "memory", memory_json(&res->memory));
	if (info->state.path)
		json_object_set_new(run, "state", state_json(&info->state));
}

/* The bundle this report is part of, and the link to the previous one of
 * its --state chain (null for the first, or without a state). */
static json_t *evidence_json(const struct dda_report_info *info)
{
	const char *prev = info->previous_bundle_sha256;
	return json_pack("{ssso}", "bundle", info->bundle_name, "previous_bundle_sha256",
			 prev && *prev ? json_string(prev) : json_null());
}

json_t *dda_report_json(const struct dda_report_info *info, const struct dda_result *res)
{
	/* An anomaly that cannot be built fails the report: a report must never
	 * count a finding its list leaves out. */
	json_t *anomalies = anomalies_json(res);
	json_t *options = info->options ? json_deep_copy(info->options) : json_object();
	json_t *run = json_pack("{sososo}", "started", time_or_null(res->started, false),
				"finished", time_or_null(res->finished, false), "source",
				json_null());
	if (run && dda__report_set_name(run, "source", info->source ? info->source : "")) {
		json_decref(run);
		run = NULL;
	}
	if (run)
		json_object_set_new(run, "range",
				    json_pack("{soso}", "from", time_or_null(info->range.from, false),
					      "to", time_or_null(info->range.to, false)));
	if (run) {
		json_object_set_new(run, "options", options);
		json_object_set_new(run, "complete", json_boolean(!res->fatal.code));
	} else {
		json_decref(options);
	}
	if (run)
		json_object_set_new(
		    run, "verdict",
		    json_string(dda_run_verdict_name(dda_result_verdict(res, info->fail_on))));
	if (run && res->fatal.code)
		json_object_set_new(run, "error", dda__report_text(res->fatal.msg));
	if (run && res->source.s3)
		json_object_set_new(run, "bucket", bucket_json(&res->source));
	if (run && res->baseline.used)
		json_object_set_new(run, "baseline", baseline_json(&res->baseline));
	if (run)
		run_metadata(run, info, res);
	json_t *manifest = json_null();
	if (res->has_manifest)
		manifest = json_pack("{ssss}", "path",
				     info->manifest_name ? info->manifest_name : "manifest.ndjson",
				     "sha256", res->manifest_sha256);
	json_t *j = json_pack("{sss{ssss}sososososo}", "schema", DDA_REPORT_SCHEMA, "tool", "name",
			      "ddbaudit", "version", dda_version(), "run", run, "summary",
			      summary_json(&res->sum), "hours", hours_json(res), "anomalies",
			      anomalies, "manifest", manifest);
	/* A command's own section (reconcile's), beside the others. */
	if (j && info->extra && json_object_update_missing(j, (json_t *)info->extra)) {
		json_decref(j);
		j = NULL;
	}
	if (j && info->bundle_name && json_object_set_new(j, "evidence", evidence_json(info))) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

int dda__report_json(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		     struct dda_error *err)
{
	json_t *j = dda_report_json(info, res);
	if (!j)
		return dda_error_set(err, DDA_ENOMEM, "cannot build the JSON report");
	int rc = json_dumpf(j, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(j);
	if (rc || fputc('\n', out) == EOF)
		return dda_error_set(err, DDA_EIO, "cannot write the JSON report: %s",
				     strerror(errno));
	return 0;
}
