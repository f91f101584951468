/* One audit run: source -> decode + validate (on worker threads) -> item
 * histories -> findings, with the manifest of every object read. This is
 * what `ddbaudit verify` and `ddbaudit history` drive; reports are written
 * from the result. */
#ifndef DDBAUDIT_AUDIT_H
#define DDBAUDIT_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/baseline.h"
#include "ddbaudit/common.h"
#include "ddbaudit/history.h"
#include "ddbaudit/record.h"
#include "ddbaudit/source.h"

/* GAP diffs need the images back, so their objects are read again; this
 * bounds the extra reads for a badly damaged log. */
#define DDA_MAX_DIFFS 10000

struct dda_progress {
	uint64_t objects;
	uint64_t records;
	uint64_t bytes;
	int64_t elapsed; /* microseconds */
	bool done;
};

/* Reads records of a finished run again (dda_audit_opts.finished). */
struct dda_audit_fetch;
/* The images of the record at (obj, index), new references (NULL when the
 * record has none); DDA_ENOTFOUND when there is no such record,
 * DDA_EUNSUPPORTED when the source cannot be read again (stdin). Fetching
 * in object order reads each object once. */
DDA_API int dda_audit_fetch(struct dda_audit_fetch *f, uint32_t obj, uint32_t index,
			    json_t **old_image, json_t **new_image);
/* Reads object obj again and decodes it with dec (the caller's, made with
 * the options the run decoded with: one a thread), handing its records to
 * sink (findings are dropped). Safe from several threads at once for
 * directory and file sources; DDA_EUNSUPPORTED when the source cannot be
 * read again. Detail in err. */
DDA_API int dda_audit_fetch_decode(struct dda_audit_fetch *f, struct dda_decoder *dec, uint32_t obj,
				   const struct dda_decode_sink *sink, struct dda_error *err);

struct dda_audit_opts {
	const char *source; /* as given on the command line */
	/* Read before source, as part of it: a baseline (a full export) whose
	 * item states start the histories (restore --baseline). NULL: none. */
	const char *baseline_source;
	struct dda_source_opts src;
	struct dda_decoder_opts dec;
	int threads;		   /* decoding threads; 0 = one per core */
	int64_t now;		   /* the run's notion of now */
	int64_t settle;		   /* microseconds still settling before now */
	const char *manifest_path; /* write manifest.ndjson here, or NULL */
	bool diffs;		   /* compute GAP diffs (re-reads objects) */
	/* An empty range is not EMPTY_RANGE (quiet tables). */
	bool allow_empty;
	/* Whole hours, or 0: every slot of this length in the range without an
	 * object under its hour prefixes is MISSING_HOUR. */
	int64_t expect_every;
	/* Called from the reading thread about every 200 ms, and once at the end. */
	void (*progress)(void *ctx, const struct dda_progress *p);
	void *progress_ctx; /* progress's ctx when it is not ctx */
	/* Called for each valid record in range whose item key equals
	 * only_key (when set), serialized by the run; images are borrowed. */
	const uint8_t *only_key;
	size_t only_key_len;
	int (*on_record)(void *ctx, const struct dda_record *r);
	/* on_record is thread-safe: call it from every decoding thread at once
	 * instead of one at a time. */
	bool on_record_concurrent;
	/* on_record takes images as JSON text when the fast path has them
	 * (dda_record.old_raw/new_raw), which saves building trees. */
	bool on_record_raw;
	/* Called for each event in history order (see dda_history_opts). */
	int (*visit)(void *ctx, const struct dda_event_view *e);
	void *ctx;
	/* Set from a signal handler to stop reading early (what was read is
	 * still analysed and reported, res->fatal says DDA_EINTR). It also
	 * ends an S3 source's requests in flight, unless src.aws.stop names
	 * another flag. */
	volatile int *stop;
	/* Noise control (docs/noise.md): findings of the kinds in ignore (bit
	 * 1 << kind) and those a live baseline entry matches leave the list and
	 * the verdict, counted in dda_summary.ignored and .suppressed. */
	uint64_t ignore;
	const struct dda_baseline *baseline; /* borrowed, or NULL */
	/* Only the records and findings of the items want_item says yes to are
	 * kept (merge's re-check of some items); findings that name no item
	 * stay. NULL keeps every item. */
	bool (*want_item)(void *ctx, const uint8_t *key, size_t n);
	void *want_item_ctx;
	/* State carried across runs (--state): passed to the history as
	 * dda_history_opts describes. */
	void *state_ctx;
	int (*prior)(void *state_ctx, const uint8_t *key, size_t key_len,
		     struct dda_carried *out);
	int (*end)(void *state_ctx, const struct dda_item_end *end);
	/* Called once the result is complete, while the source is still open
	 * (restore writes the images of item states through it), with
	 * finished_ctx; f is NULL when memory ran out. What it returns is the
	 * caller's to keep: the run's result stands either way. */
	int (*finished)(void *ctx, struct dda_audit_fetch *f, struct dda_result *res);
	void *finished_ctx;
	/* Bytes the event table may hold before it spills sorted runs into
	 * tmp_dir (NULL: /tmp); 0: unbounded. memory_limit_source says where
	 * the figure came from, for the report ("option", "cgroup", ...). */
	uint64_t memory_limit;
	const char *memory_limit_source;
	const char *tmp_dir;
};

DDA_API void dda_audit_opts_default(struct dda_audit_opts *o);

struct dda_summary {
	uint64_t objects;
	uint64_t bytes;
	uint64_t records;
	uint64_t valid;
	uint64_t invalid;
	uint64_t filtered;
	uint64_t duplicates;
	uint64_t items;
	uint64_t items_by_events[DDA_CHANGE_BUCKETS]; /* see dda_history_stats */
	uint64_t events[3];
	uint64_t anomalies[DDA_SEV__COUNT];
	uint64_t by_kind[DDA_K__COUNT];
	uint64_t prefixes_skipped;
	uint64_t objects_skipped;
	/* Findings on objects of slack hours (outside the range) about records
	 * whose time is not in the range: the run whose range holds them
	 * reports them, so adjacent runs never report one finding twice. */
	uint64_t deferred;
	uint64_t states; /* item states read from full exports (not changes) */
	uint64_t ignored[DDA_K__COUNT];	   /* by kind: --ignore */
	uint64_t suppressed[DDA_K__COUNT]; /* by kind: matched by a baseline entry */
};

struct dda_hour_stat {
	int64_t hour;
	uint64_t objects;
	uint64_t records;
	uint64_t anomalies;
	bool in_range; /* false for a slack hour, read only for processing delay */
};

struct dda_result {
	struct dda_summary sum;
	struct dda_hour_stat *hours; /* sorted by hour */
	size_t nhours;
	struct dda_anomaly *anomalies; /* sorted by object, position, kind */
	size_t nanomalies;
	struct dda_objtab *objs;
	int64_t started, finished;
	bool has_manifest;
	char manifest_sha256[2 * 32 + 1];
	/* A failure that ended reading early: what was read is still in the
	 * result, but the run is incomplete (exit status 3). */
	struct dda_error fatal;
	size_t peak_history_bytes;
	/* The memory limit the run had and what spilling it did (limit 0:
	 * unbounded); source is borrowed from dda_audit_opts. */
	struct dda_run_memory {
		const char *source;
		struct dda_spill_stats spill;
	} memory;
	struct dda_source_facts source; /* where the objects came from (S3 bucket) */
	struct dda_baseline_stats baseline;
};

/* Runs an audit. Returns 0 when a result was produced (which may carry a
 * fatal error in res->fatal after a partial read), or a negative error when
 * nothing could be read at all (detail in err). res must be released with
 * dda_result_release either way. */
DDA_API int dda_audit_run(const struct dda_audit_opts *o, struct dda_result *res,
			  struct dda_error *err);
DDA_API void dda_result_release(struct dda_result *res);

/* The highest severity among the anomalies, or -1 when there are none. */
DDA_API int dda_result_max_severity(const struct dda_result *res);

/* What a run can say: everything was read and nothing at or above the
 * failing severity was found; something was; or not everything was read (a
 * runtime failure, a listing that ended early, an interrupted run), whatever
 * was found in the rest. */
enum dda_run_verdict { DDA_RUN_CLEAN, DDA_RUN_FINDINGS, DDA_RUN_INCOMPLETE };
/* fail_on is a severity, or DDA_SEV__COUNT for "never". */
DDA_API int dda_result_verdict(const struct dda_result *res, int fail_on);
DDA_API const char *dda_run_verdict_name(int verdict);

/* Adds findings to a finished result (taking them; released on failure),
 * in the result's order, counted as the run's own. 0 or DDA_ENOMEM. */
DDA_API int dda_result_add(struct dda_result *res, struct dda_anomaly *v, size_t n);

/* The shard (0..count-1) that owns an item under --shard K/N: that of the
 * name the seed writer files it under (dda_shard_of_name of
 * "<hash key>-<range key>.json", the key schema's S or N values), or, for a
 * key that has no such name, dda_shard_of_name over the canonical key's
 * bytes. key is a canonical item key. */
DDA_API uint32_t dda_shard_of_item(const uint8_t *key, size_t n, const struct dda_decoder_opts *dec,
				   uint32_t count);

/* True when an object belongs to the range: its hour prefix overlaps it,
 * or it has no hour prefix, or the range is open. Objects of the slack
 * hours around a range are read for processing delay but are not in it. */
DDA_API bool dda_object_in_range(const struct dda_object *ob, const struct dda_range *r);

#endif
