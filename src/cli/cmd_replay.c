/* ddbaudit replay: check that the target, the DLQ and every output can be
 * used, audit the source, plan every selected change as a synthetic stream
 * record in per-item order, deliver the plan to the target, and say what
 * happened. Exit 0 when every record was acknowledged, 1 when some went to
 * the DLQ (or were dropped, as --on-failure drop asked), 3 when the replay
 * stopped early or could not start. */
#include "cli/cli.h"
#include "replay/dlq.h"
#include "aws/api.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The files a run locks: the file: target, a file DLQ, the checkpoint. */
#define REPLAY_LOCKS 3

static void new_run_id(char out[37])
{
	uint8_t b[32];
	char hex[33];
	if (RAND_bytes(b, 16) != 1) { /* no entropy: the clock is unique enough for a marker */
		int64_t now = dda_time_now();
		dda__sha256(&now, sizeof(now), b);
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	dda__hex(b, 16, hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
}

/* What shapes the plan and its delivery, by option name: a checkpoint only
 * resumes a run with the same, and a refusal names the one that differs. */
static json_t *arguments_json(const struct cli *c, const struct dda_buf *filter)
{
	const struct replay_args *r = &c->replay;
	const struct dda_audit_opts *a = &c->audit;
	char from[DDA_TIME_STRLEN], to[DDA_TIME_STRLEN], hex[65] = "";
	json_t *keys = json_array();
	for (size_t i = 0; keys && i < a->dec.nkeys; i++)
		json_array_append_new(keys, json_string(a->dec.key_names[i]));
	if (filter->len) {
		uint8_t h[32];
		dda__sha256(filter->ptr, filter->len, h);
		dda__hex(h, 32, hex);
	}
	json_t *args =
	    json_pack("{sssssssosisssososbsisbsssoso}", "SOURCE", c->source, "--from",
		      dda_time_format(a->src.range.from, true, from), "--to",
		      dda_time_format(a->src.range.to, true, to), "--key",
		      c->key_text ? json_string(c->key_text) : json_null(), "--event-types",
		      (int)r->event_mask, "--view", dda__view_name(r->view), "--table",
		      r->table ? json_string(r->table) : json_null(), "--stream-arn",
		      r->stream_arn ? json_string(r->stream_arn) : json_null(),
		      "--no-replay-marker", r->no_marker, "--parallelism", r->parallelism,
		      "--versions", c->versions, "--target", r->target, "--key-schema", keys,
		      "--filter (sha256)", hex[0] ? json_string(hex) : json_null());
	/* A shard's checkpoint is its own: resumed as another shard, it would
	 * skip records that shard never sent. Unsharded arguments stay as they
	 * were, so their checkpoints resume as before. */
	const struct dda_shard *sh = &a->src.shard;
	if (args && sh->count &&
	    json_object_set_new(args, "--shard", json_sprintf("%u/%u", sh->index, sh->count))) {
		json_decref(args);
		return NULL;
	}
	return args;
}

/* The block of SequenceNumbers of shard K of N: the rank of a record in its
 * shard's plan plus K * 10^(19 - w), w the digits of N - 1, so that the 21
 * digits read 1, 0, K in w digits, then the rank (docs/replay.md). Ranks
 * stay below seq_room; an unsharded run (and shard 0) numbers as before. */
static uint64_t seq_room(const struct dda_shard *sh)
{
	uint64_t room = UINT64_C(10000000000000000000); /* 10^19 */
	for (uint32_t k = sh->count > 1 ? sh->count - 1 : 1; k; k /= 10)
		room /= 10;
	return sh->count ? room : UINT64_MAX;
}

static uint64_t seq_base(const struct dda_shard *sh)
{
	return sh->count ? sh->index * seq_room(sh) : 0;
}

/* {shard} in --checkpoint, a --dlq file: path or a file: target is this
 * shard's name, shard-K-of-N: every child of an array job gets the same
 * arguments, and each needs a checkpoint (and a file) of its own. Under
 * --shard auto a checkpoint or file DLQ without it would be every shard's,
 * and is refused. owned holds the strings made. */
static int shard_paths(struct cli *c, char *owned[3])
{
	struct replay_args *r = &c->replay;
	const struct dda_shard *sh = &c->audit.src.shard;
	bool is_auto = c->shard_arg && !strcmp(c->shard_arg, "auto");
	struct {
		const char *opt, **val;
		bool must; /* refused under --shard auto without {shard} */
	} v[3] = {
	    {"--checkpoint", &r->checkpoint, true},
	    {"--dlq", &r->dlq, r->dlq && !strncmp(r->dlq, "file:", 5)},
	    {"--target", &r->target, false},
	};
	char name[64];
	snprintf(name, sizeof(name), "shard-%u-of-%u", sh->index, sh->count);
	for (int i = 0; i < 3; i++) {
		const char *val = *v[i].val, *at = val ? strstr(val, "{shard}") : NULL;
		if (val && !at && is_auto && v[i].must) {
			dda__cli_error(c,
				       "--shard auto gives every shard the same arguments: put "
				       "{shard} in %s '%s' (it becomes shard-K-of-N) so that each "
				       "shard has its own",
				       v[i].opt, val);
			return EXIT_USAGE;
		}
		if (!at)
			continue;
		if (!sh->count) {
			dda__cli_error(
			    c,
			    "%s '%s': {shard} names the shard of a sharded run, and this "
			    "run has no --shard",
			    v[i].opt, val);
			return EXIT_USAGE;
		}
		struct dda_buf b;
		const char *p = val;
		int rc = 0;
		dda_buf_init(&b, 1 << 16);
		for (; at && !rc; p = at + 7, at = strstr(p, "{shard}"))
			rc = dda_buf_add(&b, p, (size_t)(at - p)) || dda_buf_adds(&b, name);
		if (rc || dda_buf_adds(&b, p) || !b.ptr) {
			dda_buf_release(&b);
			dda__cli_error(c, "out of memory");
			return EXIT_RUNTIME;
		}
		owned[i] = b.ptr;
		*v[i].val = b.ptr;
	}
	return 0;
}

static json_t *stats_json(const struct dda_plan *p, const struct dda_replay_stats *st,
			  const char *error, json_t *shard)
{
	uint64_t done = st->acked + st->resumed + st->dlq + st->dropped;
	json_t *doc = json_pack(
	    "{sssssisIsIsIsIsIsIsIsIsIsIsIsIsIsIsfsfsfsbsbso}", "schema", "ddbaudit.replay/v1",
	    "runId", p->synth.run_id, "lanes", p->lanes, "records", (json_int_t)st->records,
	    "acknowledged", (json_int_t)st->acked, "resumed", (json_int_t)st->resumed, "sent",
	    (json_int_t)st->sent, "batches", (json_int_t)st->batches, "retries",
	    (json_int_t)st->retries, "throttled", (json_int_t)st->throttles, "bisections",
	    (json_int_t)st->bisections, "partial_failures", (json_int_t)st->partial, "dlq",
	    (json_int_t)st->dlq, "dropped", (json_int_t)st->dropped, "held_items",
	    (json_int_t)st->held, "duplicates_skipped", (json_int_t)p->duplicates, "filtered_out",
	    (json_int_t)p->filtered, "latency_p50_ms", st->p50_ms, "latency_p99_ms", st->p99_ms,
	    "delivery_seconds", st->seconds, "stopped", st->stopped, "complete",
	    !st->stopped && done == st->records, "error",
	    error && *error ? json_string(error) : json_null());
	/* Where the records' synthesis inputs were kept (docs/replay.md). */
	json_t *spool = json_pack("{sIsIsIsI}", "records", (json_int_t)p->spooled, "memory_bytes",
				  (json_int_t)dda__spool_memory(p->spool), "disk_bytes",
				  (json_int_t)dda__spool_bytes(p->spool), "reread_records",
				  (json_int_t)p->reread_records);
	if (!doc || !spool || json_object_set_new(doc, "spool", spool)) {
		json_decref(doc);
		json_decref(doc ? NULL : spool);
		return NULL;
	}
	if (doc && shard && json_object_set(doc, "shard", shard)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* --report: a directory (created, report.json inside) as verify's, or a
 * path ending in .json, the file itself. */
static int report_path(const struct cli *c, struct dda_buf *out)
{
	const char *r = c->report_dir;
	size_t n = r ? strlen(r) : 0;
	if (!r)
		return 0;
	if (n > 5 && !strcmp(r + n - 5, ".json"))
		return dda_buf_adds(out, r) ? EXIT_RUNTIME : 0;
	struct dda_error err = {0};
	int rc = 0;
	if (dda__cli_make_dir(r, &err)) {
		dda__cli_error(c, "cannot create the report directory: %s", err.msg);
		rc = EXIT_RUNTIME;
	}
	if (!rc && dda_buf_addf(out, "%s%sreport.json", r, r[n - 1] == '/' ? "" : "/"))
		rc = EXIT_RUNTIME;
	return rc;
}

/* Whole or absent, as verify's reports: a unique temporary file beside it,
 * fsynced and renamed over it (two runs never share a temporary name). */
static int write_report(const struct cli *c, const char *path, json_t *doc)
{
	if (!path || !doc)
		return 0;
	struct dda_error err = {0};
	struct dda__afile a;
	int rc = dda__afile_open(&a, path, &err);
	FILE *f = rc ? NULL : dda__afile_stream(&a, &err);
	if (f && (json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
		  fputc('\n', f) == EOF))
		rc = dda_error_set(&err, DDA_EIO, "cannot write '%s': %s", path, strerror(errno));
	if (!rc && !f)
		rc = DDA_EIO;
	if (!rc)
		rc = dda__afile_commit(&a, &err);
	dda__afile_discard(&a);
	if (rc)
		dda__cli_error(c, "cannot write the report: %s", err.msg);
	return rc ? EXIT_RUNTIME : 0;
}

static void summary(const struct cli *c, const struct dda_plan *p,
		    const struct dda_replay_stats *st)
{
	if (c->verbose < 0)
		return;
	fprintf(stderr,
		"replay: %llu records in %d lane%s: %llu acknowledged, %llu resumed, %llu to the "
		"DLQ, %llu dropped; %llu batches, %llu retries, %llu throttled, %llu bisections; "
		"latency p50 %.1f ms, p99 %.1f ms%s\n",
		(unsigned long long)st->records, p->lanes, p->lanes == 1 ? "" : "s",
		(unsigned long long)st->acked, (unsigned long long)st->resumed,
		(unsigned long long)st->dlq, (unsigned long long)st->dropped,
		(unsigned long long)st->batches, (unsigned long long)st->retries,
		(unsigned long long)st->throttles, (unsigned long long)st->bisections, st->p50_ms,
		st->p99_ms, st->stopped ? " (stopped early)" : "");
}

/* What reading the source took, for --dry-run's estimate. */
struct source_use {
	bool s3;
	uint64_t objects, keys, hours;
	uint64_t listed; /* keys every shard lists (--shard), else 0 */
	uint64_t bytes; /* of the audit objects read */
	bool empty;	/* EMPTY_RANGE: the range holds no records */
	json_t *shard;	/* report.json's "shard" section (--shard), or NULL */
	uint64_t split; /* records of other shards' items read here: sent by none */
};

/* List prices (US East, N. Virginia, November 2026) for the estimate. */
#define PRICE_S3_GET_PER_1K 0.0004
#define PRICE_S3_LIST_PER_1K 0.005
#define PRICE_LAMBDA_PER_1M 0.20
#define PRICE_SQS_PER_1M 0.40

/* --dry-run: the batches each lane would send, and what the run costs in
 * requests; nothing is sent. */
static int dry_run(const struct cli *c, const struct dda_plan *p, const struct dda_replay_opts *o,
		   const struct source_use *use, const char *report)
{
	uint64_t total_batches = 0, total_bytes = 0, largest = 0;
	json_t *lanes = json_array();
	printf("dry run: nothing is sent\n%-6s %10s %10s %14s\n", "lane", "batches",
		       "records", "bytes");
	for (int l = 0; l < p->lanes; l++) {
		uint64_t batches = 0, bytes = 0;
		for (size_t a = p->lane_start[l], b; a < p->lane_start[l + 1]; a = b) {
			b = dda__batch_end(p, o, a, p->lane_start[l + 1]);
			uint64_t n = 14; /* {"Records":[ ... ]} */
			for (size_t i = a; i < b; i++)
				n += p->v[i].len + (i > a);
			bytes += n;
			largest = DDA_MAX(largest, n);
			batches++;
		}
		size_t records = p->lane_start[l + 1] - p->lane_start[l];
		printf("%-6d %10llu %10zu %14llu\n", l, (unsigned long long)batches, records,
			       (unsigned long long)bytes);
		json_array_append_new(lanes, json_pack("{sisIsIsI}", "lane", l, "batches",
						       (json_int_t)batches, "records",
						       (json_int_t)records, "bytes", (json_int_t)bytes));
		total_batches += batches;
		total_bytes += bytes;
	}
	/* Listing: a page of up to 1,000 keys, and at least one an hour prefix. */
	uint64_t gets = use->s3 ? use->objects : 0;
	/* A shard lists every key of the range, not only its own. */
	uint64_t listed = DDA_MAX(use->keys, use->listed);
	uint64_t lists = use->s3 ? DDA_MAX(use->hours, (listed + 999) / 1000) : 0;
	double s3_cost = (double)gets / 1e3 * PRICE_S3_GET_PER_1K +
			 (double)lists / 1e3 * PRICE_S3_LIST_PER_1K;
	bool lambda = !strncmp(o->target.spec, "lambda:", 7);
	double target_cost = lambda ? (double)total_batches / 1e6 * PRICE_LAMBDA_PER_1M : 0;
	printf("total: %zu records in %llu batches, %llu bytes (largest batch %llu bytes)\n",
	       p->n, (unsigned long long)total_batches, (unsigned long long)total_bytes,
	       (unsigned long long)largest);
	if (use->s3)
		printf("source: %llu GET and about %llu LIST requests to S3: $%.4f at list "
		       "prices (US East)\n",
		       (unsigned long long)gets, (unsigned long long)lists, s3_cost);
	else
		printf("source: local, no requests\n");
	printf("target: %llu requests to %s", (unsigned long long)total_batches,
	       o->target.spec);
	if (lambda)
		printf(": $%.4f in Lambda requests at list prices, plus the function's "
		       "duration\n",
		       target_cost);
	else
		printf(" (no AWS charge)\n");
	if (o->dlq && !strncmp(o->dlq, "sqs:", 4))
		printf("dlq: one SQS request a failed batch ($%.2f per million)\n",
		       PRICE_SQS_PER_1M);
	json_t *doc = json_pack(
	    "{sssbsosIsIsIsIs{sbsIsIsf}s{sssIsf}}", "schema", "ddbaudit.replay/v1", "dryRun", 1,
	    "lanes", lanes, "records", (json_int_t)p->n, "batches", (json_int_t)total_batches,
	    "bytes", (json_int_t)total_bytes, "largest_batch_bytes", (json_int_t)largest, "source",
	    "s3", use->s3, "get_requests", (json_int_t)gets, "list_requests", (json_int_t)lists,
	    "estimated_cost_usd", s3_cost, "target", "spec", o->target.spec, "requests",
	    (json_int_t)total_batches, "estimated_request_cost_usd", target_cost);
	if (doc && use->shard && json_object_set(doc, "shard", use->shard)) {
		json_decref(doc);
		doc = NULL;
	}
	int status = report && !doc ? (dda__cli_error(c, "out of memory"), EXIT_RUNTIME)
				    : write_report(c, report, doc);
	json_decref(doc);
	return status;
}

/* The progress line while delivering (same rules as the reading line:
 * --progress, a terminal, not -q). */
static void delivery_progress(void *ctx, const struct dda_replay_stats *st, bool done)
{
	const struct cli *c = ctx;
	bool show = c->progress == 1 || (c->progress == 2 && c->is_tty && c->verbose >= 0);
	if (!show || (!done && st->seconds < 1))
		return;
	if (done) {
		if (c->is_tty)
			fputs("\r\033[K", stderr);
		return;
	}
	uint64_t finished = st->acked + st->resumed + st->dlq + st->dropped;
	double rate = st->seconds > 0 ? (double)st->acked / st->seconds : 0;
	double left = rate > 0 ? (double)(st->records - DDA_MIN(finished, st->records)) / rate : 0;
	fprintf(stderr,
		"%sreplay: %llu of %llu records done (%.1f%%), %.0f records/s, %llu to the DLQ, "
		"%llu retries, about %.0fs left%s",
		c->is_tty ? "\r\033[K" : "", (unsigned long long)finished,
		(unsigned long long)st->records,
		st->records ? 100.0 * (double)finished / (double)st->records : 100.0, rate,
		(unsigned long long)st->dlq, (unsigned long long)st->retries, left,
		c->is_tty ? "" : "\n");
}

/* -v: each failed send on stderr, as it happens (one fprintf a line, so
 * lines from lanes do not interleave). */
static void delivery_log(void *ctx, const char *line)
{
	const struct cli *c = ctx;
	if (c->verbose > 0)
		fprintf(stderr, "ddbaudit: replay: %s\n", line);
}

/* --filter FILE: Lambda's filter criteria, checked before anything is read. */
static int load_filter(const struct cli *c, struct dda_buf *text, struct dda_filter **out)
{
	struct dda_error err = {0};
	if (dda__read_file(c->replay.filter, text, &err) ||
	    dda__filter_parse(out, text->ptr ? text->ptr : "", text->len, &err)) {
		dda__cli_error(c, "--filter %s: %s", c->replay.filter, err.msg);
		dda_buf_release(text);
		return EXIT_USAGE;
	}
	return 0;
}

/* What happens once the source is read: the result checked, the plan
 * finished, then a dry run or the delivery. With a source read again
 * (directory), it runs in the audit's finished hook, while the source is
 * open; otherwise after the audit. */
struct after {
	struct cli *c;
	struct dda_plan *p;
	struct dda_replay_opts *ro;
	const char *report;
	struct dda__cli_replay_figures *fig;
	struct source_use use;
	int status;
	bool done;
};

/* The items of the SHARD_SPLIT findings, each once, as --key takes them:
 * a replay of each without --shard sends what no shard sent. NULL when
 * memory ran out. */
static json_t *split_keys(const struct dda_result *res)
{
	json_t *keys = json_array(), *k;
	struct dda_buf t;
	size_t j;
	int rc = keys ? 0 : DDA_ENOMEM;
	dda_buf_init(&t, 1 << 16);
	for (size_t i = 0; !rc && i < res->nanomalies; i++) {
		const struct dda_anomaly *an = &res->anomalies[i];
		if (an->kind != DDA_K_SHARD_SPLIT || !an->key)
			continue;
		dda_buf_reset(&t);
		rc = dda_canon_key_text(an->key, an->key_len, &t);
		json_t *s = rc ? NULL : json_stringn(t.ptr ? t.ptr : "", t.len);
		bool seen = false;
		json_array_foreach(keys, j, k) seen = seen || json_equal(k, s);
		if (!rc && (!s || (!seen && json_array_append(keys, s))))
			rc = DDA_ENOMEM;
		json_decref(s);
	}
	dda_buf_release(&t);
	if (rc) {
		json_decref(keys);
		return NULL;
	}
	return keys;
}

/* A sharded replay's "shard" section: verify's fields, with the options
 * digest taken over the arguments that shape the plan (the shard aside),
 * where its SequenceNumbers start, and the records this shard read that
 * belong to another shard's item (SHARD_SPLIT findings): no shard sends
 * those (docs/shards.md). */
static json_t *shard_section(const struct after *x, const struct dda_result *res, uint64_t *split)
{
	const struct dda_shard *sh = &x->c->audit.src.shard;
	char opts[2 * DDA_SHA256_LEN + 1], first[DDA_SEQ_DIGITS + 1];
	uint8_t d[DDA_SHA256_LEN];
	json_t *args = json_deep_copy(x->ro->arguments);
	json_object_del(args, "--shard");
	char *text = args ? json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(args);
	if (!text)
		return NULL;
	dda__sha256(text, strlen(text), d);
	free(text);
	dda__hex(d, sizeof(d), opts);
	json_t *all = dda_report_findings_json(res), *list = json_array(), *f;
	size_t i;
	json_array_foreach(all, i, f)
	{
		const char *kind = json_string_value(json_object_get(f, "kind"));
		if (list && kind && !strcmp(kind, "SHARD_SPLIT"))
			json_array_append(list, f);
	}
	json_decref(all);
	*split = json_array_size(list);
	dda__seq_format(seq_base(sh) + 1, first);
	json_t *keys = split_keys(res);
	json_t *sec = all && list && keys ? dda__cli_shard_base_json(x->c, res, opts) : NULL;
	if (!sec ||
	    json_object_set_new(sec, "first_sequence_number", json_string(first)) |
		json_object_set_new(sec, "split_records", json_integer((json_int_t)*split)) |
		json_object_set_new(sec, "split", list) | json_object_set_new(sec, "split_keys", keys)) {
		json_decref(sec);
		if (!sec) {
			json_decref(list);
			json_decref(keys);
		}
		return NULL;
	}
	return sec;
}

/* The records no shard sends, said on stderr with the first item to
 * replay without --shard. */
static void split_warning(const struct cli *c, const struct source_use *use)
{
	const json_t *keys = json_object_get(use->shard, "split_keys");
	size_t n = json_array_size(keys);
	const char *first = json_string_value(json_array_get(keys, 0));
	dda__cli_warn(c,
		      "%llu record%s read by this shard belong%s to items of other shards "
		      "(SHARD_SPLIT: filed under another item's name): no shard replays %s. "
		      "Replay %s without --shard: --key '%s'%s (report.json's shard.split_keys; "
		      "docs/shards.md)",
		      (unsigned long long)use->split, use->split == 1 ? "" : "s",
		      use->split == 1 ? "s" : "", use->split == 1 ? "it" : "them",
		      n == 1 ? "its item" : "each item", first ? first : "?",
		      n > 1 ? " and the others" : "");
}

static void check_result(struct after *x, const struct dda_result *res)
{
	struct cli *c = x->c;
	struct source_use *use = &x->use;
	if (res->fatal.code) {
		/* A partial read would replay a partial history: refuse. */
		dda__cli_error(c, "%s; nothing was replayed", res->fatal.msg);
		x->status = EXIT_RUNTIME;
	} else if (res->sum.by_kind[DDA_K_EMPTY_RANGE]) {
		/* A recovery that sends nothing is most often a wrong source,
		 * prefix or range: say so, and fail like verify does. */
		use->empty = true;
		for (size_t i = 0; i < res->nanomalies; i++)
			if (res->anomalies[i].kind == DDA_K_EMPTY_RANGE)
				dda__cli_error(c, "nothing to replay: %s", res->anomalies[i].detail);
	} else if (res->sum.anomalies[DDA_SEV_ERROR] && c->verbose >= 0) {
		dda__cli_warn(
		    c,
		    "the source has %llu error findings (run 'ddbaudit verify' to see them); "
		    "replaying what is there",
		    (unsigned long long)res->sum.anomalies[DDA_SEV_ERROR]);
	}
	if (!x->status && c->audit.src.shard.count &&
	    !(use->shard = shard_section(x, res, &use->split))) {
		dda__cli_error(c, "out of memory");
		x->status = EXIT_RUNTIME;
	}
	/* A shard cannot tell an empty range from a share without records,
	 * but the listing every shard makes is the whole range's: nothing
	 * listed and nothing read (a stream is read by every shard) is nothing
	 * to replay in any shard, and there is no merge to say so. */
	if (!x->status && c->audit.src.shard.count && !res->source.listed && !res->sum.objects &&
	    !c->audit.allow_empty) {
		use->empty = true;
		dda__cli_error(c, "nothing to replay: the range holds no object for any shard (the "
				  "listing every shard makes is empty): a wrong source or prefix "
				  "reads nothing; --allow-empty accepts an empty range");
	}
	if (use->split)
		split_warning(c, use);
	use->s3 = res->source.s3;
	use->objects = res->sum.objects + res->source.versions_read;
	use->hours = res->nhours;
	use->keys = res->sum.objects;
	use->listed = res->source.listed;
	use->bytes = res->sum.bytes;
}

static int deliver_plan(struct after *x);

static void after_audit(struct after *x, struct dda_audit_fetch *f, struct dda_result *res)
{
	struct dda_error err = {0};
	x->done = true;
	check_result(x, res);
	x->fig->objects = x->use.keys;
	x->fig->read_bytes = x->use.bytes;
	x->p->objs = res->objs;
	x->p->fetch = f;
	if (!x->status && dda__plan_finish(x->p, &err)) {
		dda__cli_error(x->c, "%s", err.msg);
		x->status = EXIT_RUNTIME;
	}
	const struct dda_shard *sh = &x->c->audit.src.shard;
	if (!x->status && x->p->n + x->p->filtered >= seq_room(sh)) {
		dda__cli_error(x->c,
			       "shard %u/%u plans %zu records, more than its %llu SequenceNumbers: "
			       "use fewer shards",
			       sh->index, sh->count, x->p->n + (size_t)x->p->filtered,
			       (unsigned long long)seq_room(sh) - 1);
		x->status = EXIT_RUNTIME;
	}
	if (!x->status)
		x->status = deliver_plan(x);
	x->p->fetch = NULL;
}

static int finished_hook(void *ctx, struct dda_audit_fetch *f, struct dda_result *res)
{
	struct after *x = ctx;
	if (!f) {
		x->done = true;
		dda__cli_error(x->c, "out of memory");
		x->status = EXIT_RUNTIME;
		return DDA_ENOMEM;
	}
	after_audit(x, f, res);
	return 0;
}

static int plan_run(struct after *x, struct dda_buf *key)
{
	struct cli *c = x->c;
	struct dda_result res;
	struct dda_error err = {0};
	if (c->key_text) {
		struct dda_buf why;
		dda_buf_init(&why, 4096);
		if (dda_canon_key_parse(c->key_text, key, &why)) {
			dda__cli_error(c, "invalid --key '%s': %s", c->key_text,
				       why.ptr ? why.ptr : "");
			dda_buf_release(&why);
			return EXIT_USAGE;
		}
		dda_buf_release(&why);
		c->audit.only_key = (const uint8_t *)key->ptr;
		c->audit.only_key_len = key->len;
	}
	c->audit.progress = dda__cli_progress;
	c->audit.progress_ctx = c;
	c->audit.on_record = dda__plan_on_record;
	c->audit.on_record_concurrent = true;
	c->audit.on_record_raw = true;
	c->audit.visit = dda__plan_visit;
	c->audit.ctx = x->p;
	c->audit.diffs = false;
	/* Records are read again as the audit's workers decoded them. */
	x->p->dec = c->audit.dec;
	x->p->dec.raw_images = true;
	if (x->p->reread) {
		c->audit.finished = finished_hook;
		c->audit.finished_ctx = x;
	}
	int rc = dda_audit_run(&c->audit, &res, &err);
	if (rc) {
		dda__cli_error(c, "%s", err.msg);
		dda_result_release(&res);
		return dda__cli_exit_for(rc);
	}
	if (!x->done)
		after_audit(x, NULL, &res);
	dda_result_release(&res);
	return x->status;
}

/* Usage errors, before anything else: what the options cannot mean. */
static int check_options(struct cli *c)
{
	struct replay_args *r = &c->replay;
	struct dda_error err = {0};
	if (!r->target) {
		dda__cli_error(c, "--target is required (file:PATH, -, http(s)://URL, "
				  "lambda:FUNCTION[:QUALIFIER] or exec:COMMAND)");
		return EXIT_USAGE;
	}
	if (dda__target_check(r->target, &err) || (r->dlq && dda__dlq_check(r->dlq, &err))) {
		dda__cli_error(c, "%s", err.msg);
		return EXIT_USAGE;
	}
	/* A change is never dropped unless the user says so: skip and
	 * hold-item park failed records in a DLQ, and without one a failure
	 * stops the run where a resume picks it up. */
	if (r->on_failure == DDA_FAIL_DEFAULT)
		r->on_failure = r->dlq ? DDA_FAIL_SKIP : DDA_FAIL_STOP;
	if (!r->dlq && (r->on_failure == DDA_FAIL_SKIP || r->on_failure == DDA_FAIL_HOLD_ITEM)) {
		dda__cli_error(c,
			       "--on-failure %s needs --dlq to keep the failed records; to discard "
			       "them, say --on-failure drop",
			       r->on_failure == DDA_FAIL_SKIP ? "skip" : "hold-item");
		return EXIT_USAGE;
	}
	if (r->dlq && r->on_failure == DDA_FAIL_DROP) {
		dda__cli_error(c,
			       "--on-failure drop discards failed records: it cannot be combined "
			       "with --dlq");
		return EXIT_USAGE;
	}
	return 0;
}

/* The files a replay appends to and a resume depends on (the file:
 * target, a file DLQ) must end with a whole line: a line torn by an
 * earlier run (killed, or out of space, while writing it) is cut, and
 * said so, before anything is appended. Its records were never
 * acknowledged, so the resume sends them again. */
static int cut_torn_tails(const struct cli *c, struct dda_error *err)
{
	const struct replay_args *r = &c->replay;
	const char *paths[2][2] = {
	    {"target", !strncmp(r->target, "file:", 5) ? r->target + 5 : NULL},
	    {"DLQ", r->dlq && !strncmp(r->dlq, "file:", 5) ? r->dlq + 5 : NULL},
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(paths); i++) {
		uint64_t cut = 0;
		if (!paths[i][1])
			continue;
		if (dda__file_cut_torn_tail(paths[i][1], &cut, err))
			return err->code;
		if (cut)
			dda__cli_warn(c,
				      "the %s '%s' ended with a torn line (%llu bytes without a "
				      "newline, left by a run that stopped while writing it): it "
				      "was cut, and its records are sent again",
				      paths[i][0], paths[i][1], (unsigned long long)cut);
	}
	return 0;
}

/* One run at a time on the files a replay appends to and on its
 * checkpoint: a second one (cron overlapping itself) would send every
 * record again, interleave its lines, and its torn-line cut could cut a
 * line this run is writing. Each is locked (flock, released when the
 * process ends, however it ends) for the run; the checkpoint through
 * CHECKPOINT.lock beside it, as the checkpoint itself is replaced by a
 * rename after every batch. A run that finds one locked is refused. */
static int lock_outputs(const struct cli *c, int locks[REPLAY_LOCKS], struct dda_error *err)
{
	const struct replay_args *r = &c->replay;
	struct dda_buf ck;
	dda_buf_init(&ck, 8192);
	if (r->checkpoint && dda_buf_addf(&ck, "%s.lock", r->checkpoint))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	const char *paths[REPLAY_LOCKS][2] = {
	    {"target", !strncmp(r->target, "file:", 5) ? r->target + 5 : NULL},
	    {"DLQ", r->dlq && !strncmp(r->dlq, "file:", 5) ? r->dlq + 5 : NULL},
	    {"checkpoint", r->checkpoint ? ck.ptr : NULL},
	};
	int rc = 0;
	for (size_t i = 0; !rc && i < REPLAY_LOCKS; i++) {
		const char *path = paths[i][1];
		if (!path)
			continue;
		locks[i] = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0644);
		struct stat st;
		if (locks[i] < 0)
			rc = dda_error_set(err, DDA_EIO, "cannot open the %s '%s': %s", paths[i][0],
					   path, strerror(errno));
		else if (!fstat(locks[i], &st) && !S_ISREG(st.st_mode))
			continue; /* a FIFO or a device: nothing to lock or cut */
		else if (flock(locks[i], LOCK_EX | LOCK_NB))
			rc = dda_error_set(err, DDA_EIO,
					   "the %s '%s' is in use by another replay (locked): one "
					   "run at a time; wait for it, or stop it",
					   paths[i][0], path);
	}
	dda_buf_release(&ck);
	return rc;
}

/* Everything that can be checked before the source is read (and in a dry
 * run): the target answers, the DLQ exists, every output can be written,
 * a checkpoint belongs to these arguments. */
static int preflight(struct cli *c, struct dda_replay_opts *ro, struct dda_target_info *info,
		     const char *report, int locks[REPLAY_LOCKS], bool *busy)
{
	struct replay_args *r = &c->replay;
	struct dda_error err = {0};
	int rc = 0;
	/* Local files first: nothing goes over the network for a run whose
	 * report could not be written. */
	if (!strcmp(r->target, "-"))
		rc = dda__target_stdout_check(&err);
	if (!rc && report)
		rc = dda__output_check("report", report, &err);
	if (!rc && r->checkpoint)
		rc = dda__output_check("checkpoint", r->checkpoint, &err);
	if (!rc && r->checkpoint)
		rc = dda__checkpoint_check_args(r->checkpoint, ro->arguments, &err);
	if (!rc && r->dlq && !strncmp(r->dlq, "file:", 5))
		rc = dda__output_check("DLQ", r->dlq + 5, &err);
	if (!rc)
		rc = dda__target_lambda_api(&ro->target, &err);
	if (!rc)
		rc = dda__target_preflight(&ro->target, info, &err);
	if (!rc && info->note[0])
		dda__cli_warn(c, "%s", info->note);
	/* Only a run that can start takes the files it appends to. */
	if (!rc && !r->dry_run) {
		rc = lock_outputs(c, locks, &err);
		*busy = rc != 0;
	}
	if (!rc && !r->dry_run)
		rc = cut_torn_tails(c, &err);
	/* The DLQ is opened now (an SQS queue must exist); a dry run closes it
	 * again having written nothing. */
	if (!rc && r->dlq && (!r->dry_run || !strncmp(r->dlq, "sqs:", 4)))
		rc = dda__dlq_open(&ro->dlq_open, r->dlq, &ro->target, &err);
	if (!rc && r->dry_run && ro->dlq_open) {
		rc = dda__dlq_close(ro->dlq_open, &err);
		ro->dlq_open = NULL;
	}
	if (rc && c->audit.stop && *c->audit.stop) {
		dda__cli_error(c, "interrupted before the replay started, nothing was sent (%s)",
			       err.msg);
		return EXIT_RUNTIME;
	}
	if (rc) {
		dda__cli_error(c, "%s", err.msg);
		return dda__cli_exit_for(rc);
	}
	return 0;
}

/* --metrics: what the source, the plan and the delivery amounted to. */
static void plan_figures(struct dda__cli_replay_figures *f, const struct dda_plan *p,
			 const struct source_use *use)
{
	f->objects = use->keys;
	f->read_bytes = use->bytes;
	f->planned = p->n;
	f->duplicates = p->duplicates;
	f->filtered = p->filtered;
	for (size_t i = 0; i < p->n; i++)
		f->planned_bytes += p->v[i].len;
}

static void delivery_figures(struct dda__cli_replay_figures *f, const struct dda_replay_stats *st)
{
	f->acknowledged = st->acked;
	f->resumed = st->resumed;
	f->dead_lettered = st->dlq;
	f->dropped = st->dropped;
	f->batches = st->batches;
	f->retries = st->retries;
	f->throttles = st->throttles;
	f->bisections = st->bisections;
	f->p50_seconds = st->p50_ms / 1e3;
	f->p99_seconds = st->p99_ms / 1e3;
	f->delivery_seconds = st->seconds;
}

/* The plan, once finished: a dry run, or the delivery and its summary. */
static int deliver_plan(struct after *x)
{
	struct cli *c = x->c;
	struct dda_plan *p = x->p;
	struct dda_replay_opts *ro = x->ro;
	struct dda_replay_stats st = {0};
	struct dda_error err = {0};
	int status = 0;
	plan_figures(x->fig, p, &x->use);
	if (c->verbose > 0)
		fprintf(stderr,
			"ddbaudit: replay: %zu records planned: %llu spooled (%llu bytes on disk, "
			"%.1f a record; %llu bytes in memory, %.1f a record), %llu to be read "
			"again from the source\n",
			p->n, (unsigned long long)p->spooled,
			(unsigned long long)dda__spool_bytes(p->spool),
			p->spooled ? (double)dda__spool_bytes(p->spool) / (double)p->spooled : 0.0,
			(unsigned long long)dda__spool_memory(p->spool),
			p->spooled ? (double)dda__spool_memory(p->spool) / (double)p->spooled : 0.0,
			(unsigned long long)p->reread_records);
	if (c->replay.dry_run) {
		status = dry_run(c, p, ro, &x->use, x->report);
		if (!status && (x->use.empty || x->use.split))
			status = EXIT_ANOMALIES;
		return status;
	}
	if (dda__replay_run(p, ro, &st, &err)) {
		dda__cli_error(c, "%s", err.msg);
		delivery_figures(x->fig, &st);
		return dda__cli_exit_for(err.code);
	}
	delivery_figures(x->fig, &st);
	if (err.code)
		dda__cli_error(c, "%s", err.msg);
	if (st.interrupted)
		dda__cli_error(c, "interrupted; run again with the same arguments to resume");
	else if (st.stopped)
		dda__cli_error(c,
			       "stopped: nothing was acknowledged past the records that failed; %s",
			       ro->checkpoint ? "run again with the same arguments to resume there"
					      : "run again (with --checkpoint to resume where a run "
						"stops)");
	summary(c, p, &st);
	json_t *doc = stats_json(p, &st, err.code ? err.msg : NULL, x->use.shard);
	status = x->report && !doc ? (dda__cli_error(c, "out of memory"), EXIT_RUNTIME)
				   : write_report(c, x->report, doc);
	json_decref(doc);
	if (!status)
		status = st.stopped						? EXIT_RUNTIME
			 : st.dlq || st.dropped || x->use.empty || x->use.split ? EXIT_ANOMALIES
										: EXIT_CLEAN;
	return status;
}

/* The run itself, once everything is checked: read, plan, deliver. A
 * directory source is read again for its records' bytes; any other is
 * spooled (docs/replay.md says why). */
static int run(struct cli *c, struct dda_synth_opts *so, struct dda_replay_opts *ro,
	       const char *report, struct dda__cli_replay_figures *fig)
{
	struct dda_plan plan;
	struct dda_error err = {0};
	struct dda_buf key;
	struct stat sb;
	if (dda__plan_init(&plan, so, c->replay.parallelism, &err)) {
		dda__cli_error(c, "%s", err.msg);
		dda__plan_release(&plan);
		return EXIT_RUNTIME;
	}
	plan.reread = !stat(c->source, &sb) && S_ISDIR(sb.st_mode);
	/* A quarter of --memory-limit holds spool blocks as they are (the
	 * histories keep the rest); "off" bounds neither. */
	uint64_t limit = c->audit.memory_limit;
	dda__spool_set_memory(plan.spool, limit ? limit / 4 : UINT64_MAX);
	c->audit.memory_limit = limit - limit / 4;
	dda_buf_init(&key, 1 << 16);
	struct after x = {.c = c, .p = &plan, .ro = ro, .report = report, .fig = fig};
	int status = plan_run(&x, &key);
	json_decref(x.use.shard);
	dda__plan_release(&plan);
	dda_buf_release(&key);
	return status;
}

int dda__cmd_replay(int argc, char **argv, struct cli *c)
{
	struct replay_args *r = &c->replay;
	struct dda_synth_opts so = {.view = r->view,
				    .region = c->audit.src.aws.region,
				    .stream_arn = r->stream_arn,
				    .table = r->table,
				    .marker = !r->no_marker,
				    .event_mask = r->event_mask,
				    .hash_key = c->audit.dec.key_names[0],
				    .seq_base = seq_base(&c->audit.src.shard),
				    .tmp_dir = c->audit.tmp_dir};
	struct dda_replay_opts ro = {.target = {r->target, r->timeout_ms,
						c->audit.src.aws.no_verify_ssl,
						c->audit.src.aws.ca_bundle, &c->audit.src.aws,
						r->lambda_endpoint, NULL, NULL, NULL},
				     .batch_size = r->batch_size,
				     .max_retries = r->max_retries,
				     .max_record_age = r->max_record_age,
				     .bisect = r->bisect,
				     .dlq = r->dlq,
				     .checkpoint = r->checkpoint,
				     .max_rps = r->max_rps,
				     .max_inflight = r->max_inflight,
				     .batch_window = r->batch_window,
				     .backoff_base = 100 * 1000,
				     .backoff_cap = 20 * DDA_USEC_PER_SEC,
				     .progress = delivery_progress,
				     .progress_ctx = c,
				     .shard = c->audit.src.shard,
				     .log = delivery_log};
	struct dda_target_info info;
	struct dda_buf filter_text, report;
	struct dda_filter *filter = NULL;
	int locks[REPLAY_LOCKS] = {-1, -1, -1};
	struct dda__cli_metrics met;
	struct dda__cli_replay_figures fig = {0};
	bool busy = false;
	char *owned[3] = {NULL, NULL, NULL};
	(void)argc;
	(void)argv;
	int status = shard_paths(c, owned);
	if (!status)
		status = check_options(c);
	if (status) {
		for (size_t i = 0; i < DDA_ARRAY_SIZE(owned); i++)
			free(owned[i]);
		return status;
	}
	/* As {shard} made them. */
	ro.target.spec = r->target;
	ro.dlq = r->dlq;
	ro.checkpoint = r->checkpoint;
	ro.on_failure = r->on_failure;
	dda__cli_metrics_init(&met);
	dda_buf_init(&filter_text, 1 << 20);
	dda_buf_init(&report, 1 << 16);
	if (r->filter && (status = load_filter(c, &filter_text, &filter)))
		goto out;
	json_t *args = arguments_json(c, &filter_text);
	ro.arguments = args;
	status =
	    args ? report_path(c, &report) : (dda__cli_error(c, "out of memory"), EXIT_RUNTIME);
	/* Signals are caught before the preflight, which may wait on the
	 * network (OPTIONS, GetFunction, the SQS queue): a SIGTERM there ends
	 * the run with status 3, and with nothing in flight to drain, the
	 * preflight's requests are cut short at once. */
	dda__cli_catch_signals(c);
	ro.stop = c->audit.stop;
	ro.target.abort = c->audit.stop;
	/* A dry run delivers nothing: metrics of it would count a run that
	 * did not happen and move the last success. */
	if (!status && c->metrics && r->dry_run)
		dda__cli_warn(c, "--metrics: a dry run writes no metrics");
	else if (!status)
		status = dda__cli_metrics_begin(c, &met);
	if (!status)
		status = preflight(c, &ro, &info, report.ptr, locks, &busy);
	ro.target.abort = NULL; /* the delivery sets its own, after the drain */
	if (!status && *ro.stop) {
		dda__cli_error(c, "interrupted before the replay started: nothing was sent");
		status = EXIT_RUNTIME;
	}
	if (!status) {
		ro.function_arn = info.function_arn;
		so.filter = filter;
		if (!r->checkpoint || !dda__checkpoint_run_id(r->checkpoint, so.run_id))
			new_run_id(so.run_id);
		signal(SIGPIPE, SIG_IGN); /* a processor that exits early is a failed batch */
		status = run(c, &so, &ro, report.ptr, &fig);
	}
	json_decref(args);
out:
	dda__filter_free(filter);
	dda__aws_api_free(ro.target.lambda);
	struct dda_error cerr = {0};
	if (dda__dlq_close(ro.dlq_open, &cerr)) {
		dda__cli_error(c, "%s", cerr.msg);
		status = EXIT_RUNTIME;
	}
	/* A run refused because another holds the files it would append to
	 * leaves that run's metrics alone. */
	if (met.path && !busy)
		status = dda__cli_metrics_replay_end(c, &met, &fig, status);
	dda__cli_metrics_release(&met);
	dda_buf_release(&filter_text);
	dda_buf_release(&report);
	for (size_t i = 0; i < REPLAY_LOCKS; i++)
		if (locks[i] >= 0)
			close(locks[i]); /* the locks go with them */
	for (size_t i = 0; i < DDA_ARRAY_SIZE(owned); i++)
		free(owned[i]);
	return status;
}
