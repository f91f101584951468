/* Replay: recorded changes re-emitted as synthetic DynamoDB Stream records
 * (docs/replay.md) and delivered to a target the way Lambda's event
 * source mapping delivers a stream: lanes by partition key, batches, retries,
 * bisection, partial batch failures, an on-failure destination, plus
 * per-item holds and crash-safe checkpoints. The plan (what to send, in
 * which order) is built from an audit run; delivery runs one thread a lane. */
#ifndef DDA_REPLAY_H
#define DDA_REPLAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "util/util.h"
#include "ddbaudit/audit.h"

/* Lambda's synchronous invocation payload limit: a batch never exceeds it. */
#define DDA_REPLAY_MAX_PAYLOAD (6 * 1024 * 1024)
#define DDA_REPLAY_MAX_BATCH 10000
#define DDA_REPLAY_MAX_LANES 256
/* SequenceNumbers are 21 digits: 10^20 + the record's rank in the plan,
 * plus, for shard K of N, K * 10^(19 - w), w the digits of N - 1: the shard
 * index sits in the digits after "10" and each shard numbers its own ranks
 * below it (docs/replay.md). Unsharded (and shard 0) numbers are 10^20 +
 * rank. */
#define DDA_SEQ_DIGITS 21

enum dda_view { DDA_VIEW_KEYS_ONLY, DDA_VIEW_NEW_IMAGE, DDA_VIEW_OLD_IMAGE, DDA_VIEW_NEW_AND_OLD };
/* Returns the view for its StreamViewType name, or -1. */
int dda__view_parse(const char *s);
const char *dda__view_name(int view);

/* What happens to records whose retries are spent. DEFAULT is resolved by
 * the caller: SKIP (into the DLQ) with a DLQ, else STOP, because a change is
 * never dropped unless --on-failure drop says so. */
enum dda_on_failure {
	DDA_FAIL_SKIP,
	DDA_FAIL_HOLD_ITEM,
	DDA_FAIL_STOP,
	DDA_FAIL_DROP,
	DDA_FAIL_DEFAULT
};

/* What the synthetic records look like and which records are replayed. */
struct dda_synth_opts {
	int view;		/* enum dda_view */
	const char *region;	/* awsRegion of records that carry none (else us-east-1) */
	const char *stream_arn; /* eventSourceARN; synthesized from table when NULL */
	const char *table;
	bool marker;		/* the top-level "replay" object */
	char run_id[37];	/* in the marker */
	unsigned event_mask;	/* 1 << enum dda_event_name */
	const char *hash_key;	/* partition key attribute name (lanes) */
	const struct dda_filter *filter; /* --filter, NULL for none */
	uint64_t seq_base;		 /* added to every rank: the shard's block of numbers */
	const char *tmp_dir;		 /* where the spool goes (--tmp-dir); NULL: TMPDIR */
};

/* Lambda's filter criteria ({"Filters":[{"Pattern":"..."}]} or a bare
 * pattern). Parse fails with DDA_EINVAL saying where the pattern is wrong. */
struct dda_filter;
int dda__filter_parse(struct dda_filter **out, const char *text, size_t len,
		      struct dda_error *err);
/* True when one of the filters matches the synthetic record (or no filter). */
bool dda__filter_match(const struct dda_filter *f, const json_t *record);
void dda__filter_free(struct dda_filter *f);

/* A record of the plan is sent as it is synthesized from its synthesis
 * input: read again from its source object (blk == DDA_PLAN_REREAD), or
 * from the spool (block blk, at byte at of it inflated). */
#define DDA_PLAN_REREAD UINT32_MAX
struct dda_planned {
	uint32_t blk, at; /* where the synthesis input is */
	uint32_t len;	  /* bytes of the serialized record */
	uint32_t seq_at;  /* offset of the SequenceNumber digits in the record */
	uint32_t obj, index;
	uint64_t item;	  /* hash of the item key: holds, grouping */
	int64_t time;	  /* change time */
	union {		  /* (64 bytes in all: a record moves as one cache line) */
		uint64_t ord; /* until dda__plan_finish: position in history order,
			       * UINT64_MAX = not an event */
		uint64_t seq; /* after: rank-based sequence number */
	};
	uint64_t body; /* hash of the synthesis input and of the object's name, ETag, size */
	uint16_t lane;
	uint8_t event;
};

/* The spool (spool.c): synthesis inputs of records whose source cannot be
 * read again, as deflated blocks in an unlinked file of dir (NULL: TMPDIR,
 * else /tmp), a stream
 * of blocks a lane. Adding is thread-safe through one writer a thread;
 * reading is, once adding ended (dda__spool_flush), through one reader a
 * thread. */
struct dda__spool;
struct dda__spool_reader;
int dda__spool_new(struct dda__spool **out, int lanes, const char *dir, struct dda_error *err);
void dda__spool_free(struct dda__spool *s);
/* A thread that adds records has its own writer (its open blocks, one a
 * lane), made once by dda__spool_writer_new; the spool frees it. */
struct dda__spool_writer;
int dda__spool_writer_new(struct dda__spool *s, struct dda__spool_writer **out);
/* Appends n bytes to lane's blocks of w; *blk and *at say where they went.
 * Only w's thread adds through w. */
int dda__spool_add(struct dda__spool *s, struct dda__spool_writer *w, int lane, const void *p,
		   size_t n, uint32_t *blk, uint32_t *at, struct dda_error *err);
/* Writes the blocks still open of every writer, once adding ended: the
 * spool is complete and read-only. */
int dda__spool_flush(struct dda__spool *s, struct dda_error *err);
/* Bytes in the spool file. */
uint64_t dda__spool_bytes(const struct dda__spool *s);
/* Blocks stay in memory, not deflated, while they take at most bytes
 * (allocated room counted); the rest go to the file. 0 (the default):
 * every block goes to the file. Set before the first add. */
void dda__spool_set_memory(struct dda__spool *s, uint64_t bytes);
/* Bytes of blocks held in memory. */
uint64_t dda__spool_memory(const struct dda__spool *s);
/* A reader's cache shares SPOOL_CACHE_BYTES with the others of readers. */
int dda__spool_reader_new(struct dda__spool_reader **out, const struct dda__spool *s,
			  int readers);
void dda__spool_reader_free(struct dda__spool_reader *r);
/* The bytes from at in block blk (to the block's end), borrowed until the
 * reader's next call. *held says whether the block is one held in memory
 * (the bytes planned, untouched since) rather than read back from the file. */
int dda__spool_get(struct dda__spool_reader *r, uint32_t blk, uint32_t at, dda_slice *out,
		   bool *held, struct dda_error *err);

struct dda_audit_fetch;
/* A history visit held until its group is applied (plan.c). */
struct dda__visit {
	uint32_t obj, index;
	uint64_t ord;
	bool duplicate;
};
/* The plan: every record to send, sorted by lane then delivery order. */
struct dda_plan {
	struct dda_synth_opts synth;
	pthread_mutex_t mu; /* on_record runs on every decoding thread */
	bool mu_ready;
	struct dda__spool *spool;
	int spool_lanes;    /* lanes the spool (and the plan) is split into */
	/* Records of objects of at most DDA_REREAD_MAX bytes are read again
	 * from the source instead of spooled (a directory source). */
	bool reread;
	struct dda_decoder_opts dec; /* how the audit decoded: the same again */
	const struct dda_objtab *objs;	/* the audit's objects, for synthesis */
	struct dda_audit_fetch *fetch;	/* while the source is open (reread) */
	struct dda_planned *v;
	size_t n, cap;
	struct dda_planned *spare; /* where the plan moves to when it is sorted */
	size_t spare_cap;
	bool sorted_by_obj;
	size_t *obj_first; /* sorted by object: where object o's records start */
	struct dda__rkey *rk; /* sort keys: two a record, kept from one sort to the next */
	size_t rk_n;	      /* records rk has room for */
	size_t nobj;
	struct dda__visit pend[64]; /* visits not applied yet */
	size_t npend;
	uint64_t visits;
	bool visited; /* the last item visited, to make its times monotonic */
	uint64_t last_item;
	int64_t last_time;
	uint64_t selected, duplicates, filtered;
	uint64_t spooled, reread_records; /* how the plan's records are kept */
	size_t lane_start[DDA_REPLAY_MAX_LANES + 1];
	int lanes;
	uint8_t digest[32]; /* of every record's sequence, lane, item, length and body */
	bool digest_ok;	    /* digest made (when a checkpoint was loaded) */
	struct dda_error err;
	uint64_t gen;			  /* this plan among the process's plans */
	struct dda__plan_thread *threads; /* what each decoding thread holds */
};
/* Objects up to this size are read again rather than spooled: reading one
 * again for each of its records stays cheap. */
#define DDA_REREAD_MAX (64 * 1024)

/* Sets up an empty plan of lanes lanes and its spool (in o->tmp_dir). */
int dda__plan_init(struct dda_plan *p, const struct dda_synth_opts *o, int lanes,
		   struct dda_error *err);
void dda__plan_release(struct dda_plan *p);
/* The audit callbacks: pass the plan as ctx. */
int dda__plan_on_record(void *ctx, const struct dda_record *r);
int dda__plan_visit(void *ctx, const struct dda_event_view *e);
/* Drops what is not an event to send, assigns lanes and sequence numbers,
 * applies --filter. */
int dda__plan_finish(struct dda_plan *p, struct dda_error *err);
/* The finished plan's digest: what a checkpoint names, to refuse resuming a
 * different plan (made when a checkpoint is loaded: a run without one does
 * not pay for it). 0 or DDA_ENOMEM. */
int dda__plan_digest(const struct dda_plan *p, uint8_t out[32]);
/* Reads records back, one reader a thread (readers: how many there are). */
struct dda_plan_reader;
int dda__plan_reader_new(struct dda_plan_reader **out, struct dda_plan *p, int readers,
			 struct dda_error *err);
void dda__plan_reader_free(struct dda_plan_reader *rd);
/* Appends record i's bytes, with its SequenceNumber filled in, to out:
 * synthesized again and checked against what was planned (a source that
 * changed since it was read is DDA_EIO). */
int dda__plan_read(struct dda_plan_reader *rd, size_t i, struct dda_buf *out,
		   struct dda_error *err);
/* The decimal SequenceNumber of a record. */
void dda__seq_format(uint64_t seq, char out[DDA_SEQ_DIGITS + 1]);

/* What a synthetic record is made from: the parts of a decoded record it
 * shows, the images as the view keeps them. Views borrowed. */
struct dda_synth_in {
	int event;
	bool ttl, has_new, has_old;
	bool own_id;	     /* event_id is the record's own (a stream record) */
	int64_t time;	     /* change time, or DDA_TIME_NONE */
	uint64_t size;	     /* SizeBytes */
	dda_slice event_id;  /* with own_id */
	dda_slice region;    /* the record's awsRegion, or empty */
	dda_slice keys;	     /* Keys, compact JSON */
	dda_slice new_image; /* compact JSON, with has_new */
	dda_slice old_image;
};
/* Appends the synthesis input of r in its serialized form. keys:
 * dda__synth_keys(r), or NULL to have them rendered here (straight from the
 * canonical key when r carries no image trees: the same bytes, without
 * jansson). *part, when part is not NULL, receives the lane hash of the
 * partition key (o->hash_key; all the Keys without one). */
int dda__synth_in_write(const struct dda_synth_opts *o, const struct dda_record *r,
			const json_t *keys, struct dda_buf *out, uint64_t *part);
/* Reads one serialized synthesis input from p[0..n): 0 (*used bytes) or
 * DDA_EFORMAT. */
int dda__synth_in_read(struct dda_synth_in *in, const char *p, size_t n, size_t *used);
/* Hashes eventIDs: the digest of the object's part is kept for the
 * records of the same object that follow (dda__synth_emit). Zero it to
 * start; dda__eid_hash_release frees it. */
struct dda__eid_hash {
	struct dda__sha256 h, pre;
	const struct dda_object *ob;
	uint32_t obj;
	bool pre_ok;
};
void dda__eid_hash_release(struct dda__eid_hash *c);
/* Appends the synthetic stream record of in, whose source is record index
 * of object obj (ob, NULL when unknown), as dda__synth_write does. h, when
 * not NULL, is reused to hash the eventID (making a context costs more
 * than the hashing). */
#define DDA_EVENT_ID_LEN 32
/* The length of the record dda__synth_emit writes, and where its
 * SequenceNumber digits start, without writing it (the eventID it hashes
 * has DDA_EVENT_ID_LEN digits). DDA_ENOMEM where emit would fail. */
int dda__synth_len(const struct dda_synth_opts *o, const struct dda_object *ob, uint32_t index,
		   const struct dda_synth_in *in, size_t *len, size_t *seq_at);
int dda__synth_emit(const struct dda_synth_opts *o, const struct dda_object *ob, uint32_t obj,
		    uint32_t index, const struct dda_synth_in *in, struct dda__eid_hash *h,
		    struct dda_buf *out, size_t *seq_at);

/* The record's Keys: the key attributes with their values as the image
 * wrote them (new reference, NULL on allocation failure). */
json_t *dda__synth_keys(const struct dda_record *r);
/* Appends the synthetic stream record of r as compact JSON, straight from
 * its images (trees or raw text), in the shape a Lambda function gets. Its
 * SequenceNumber is 21 zeros at *seq_at, to be replaced when the plan is
 * complete. keys is dda__synth_keys(r). */
int dda__synth_write(const struct dda_synth_opts *o, const struct dda_record *r,
		     const json_t *keys, struct dda_buf *out, size_t *seq_at);
/* Appends v as compact JSON, the bytes json_dumps(JSON_COMPACT) writes
 * (objects in insertion order), several times faster. */
int dda__json_write(struct dda_buf *out, const json_t *v, int depth);
/* Appends JSON text p[0..n), valid, without the whitespace between its
 * tokens (strings are copied as they are, escapes included). */
int dda__json_compact(struct dda_buf *out, const char *p, size_t n);
/* DynamoDB's item size of an attribute map (names + values), as SizeBytes. */
uint64_t dda__item_size(const json_t *map);

/* A target receives batches: {"Records":[...]} as bytes. OK means the
 * target took the batch (2xx, exit 0, written); its answer may still name
 * failed records (ReportBatchItemFailures), which the caller reads with
 * dda__parse_item_failures, as only it knows the batch. */
enum dda_send_outcome { DDA_SEND_OK, DDA_SEND_FAILED, DDA_SEND_PARTIAL };
/* Why a batch failed, which decides what happens next:
 * FUNCTION  the processor ran and failed (function error, a processor's
 *           error status, a non-zero exit, a partial failure): retried,
 *           counted, bisected with --bisect-on-error, as Lambda does;
 * TRANSPORT it never got a verdict (timeout, reset, 502/504): retried and
 *           counted, never bisected (halves would fail the same way);
 * THROTTLE  429, TooManyRequestsException, 503: waited out (Retry-After),
 *           never counted against --max-retries, bounded by
 *           --max-record-age only;
 * CONFIG    nothing will work until someone fixes it (refused, DNS, TLS
 *           verification, 401/403/404/413, a command not found): the run
 *           stops at once, before anything goes to a DLQ;
 * WRITE     a file: target (or stdout) cannot be written (no space, a
 *           closed descriptor, a reader gone): stops the run at once too. */
enum dda_fault { DDA_FAULT_NONE, DDA_FAULT_FUNCTION, DDA_FAULT_TRANSPORT, DDA_FAULT_THROTTLE,
		 DDA_FAULT_CONFIG, DDA_FAULT_WRITE };
struct dda_send_result {
	int outcome;
	int fault;			       /* enum dda_fault, FAILED only */
	char first_failed[DDA_SEQ_DIGITS + 8]; /* PARTIAL: lowest failed itemIdentifier */
	char msg[512];			       /* why it failed, for the DLQ and logs */
	long status;			       /* HTTP status or exit status, -1 none */
	int64_t retry_after;		       /* THROTTLE: microseconds asked for, or -1 */
	bool function_error;		       /* X-Amz-Function-Error */
	char executed_version[64];	       /* X-Amz-Executed-Version */
	const char *answer;		       /* OK: the answer, borrowed until next send */
	size_t answer_len;
};

struct dda_target;
struct dda_aws_api;
struct dda_dlq;
struct dda_target_opts {
	const char *spec;	/* file:PATH, -, http(s)://URL, exec:COMMAND, lambda:F[:Q] */
	long timeout_ms;	/* per attempt; 0: 900 s for lambda:, else 60 s */
	bool no_verify_ssl;
	const char *ca_bundle;
	const struct dda_aws_opts *aws; /* region, profile: Lambda and SQS */
	const char *lambda_endpoint;	/* --lambda-endpoint-url */
	struct dda_aws_api *lambda;	/* set by dda__replay_run for lambda: */
	volatile int *stop;		/* set by dda__replay_run: a signal stops the run */
	/* Set by dda__replay_run once a stopped run has let the sends in
	 * flight drain for DDA_REPLAY_DRAIN_US: they are cut short then (a
	 * target that never answers holds no one). NULL: never. */
	volatile int *abort;
};
/* How long a stopped replay waits for its sends in flight to be answered
 * (and acknowledged, so that a resume does not send them again) before it
 * cuts them short. */
#define DDA_REPLAY_DRAIN_US (2 * DDA_USEC_PER_SEC)
/* For lambda: targets, resolves the endpoint and credentials into
 * o->lambda (the caller frees it with dda__aws_api_free); 0 otherwise. */
int dda__target_lambda_api(struct dda_target_opts *o, struct dda_error *err);
/* A target handle for one lane (file targets share their FILE). */
int dda__target_new(struct dda_target **out, const struct dda_target_opts *o, int lane,
		    struct dda_error *err);
void dda__target_free(struct dda_target *t);
int dda__target_send(struct dda_target *t, const char *body, size_t len,
		     struct dda_send_result *res);
/* Reads a target's answer for ReportBatchItemFailures into res (outcome
 * OK, PARTIAL with the lowest failed identifier, or FAILED). known(ctx, id)
 * says whether an identifier is a record of the batch: an unknown one
 * anywhere fails the whole batch, as in Lambda. */
void dda__parse_item_failures(const char *body, size_t len,
			      bool (*known)(void *ctx, const char *id), void *ctx,
			      struct dda_send_result *res);
/* Classifies a failed HTTP answer (status, Retry-After) into res->fault. */
void dda__http_fault(long status, struct dda_send_result *res);
/* Parses a Retry-After value (seconds or an HTTP date) into microseconds
 * from now, or -1. */
int64_t dda__retry_after_parse(const char *v, size_t n, int64_t now);
/* Checks a --target spec without opening it; 0 or DDA_EINVAL with why. */
int dda__target_check(const char *spec, struct dda_error *err);

/* What the preflight learnt about the target. */
struct dda_target_info {
	char function_arn[512]; /* lambda: GetFunction's FunctionArn, else the spec */
	char version[64];	/* lambda: the version GetFunction names */
	char note[512];		/* a warning to show (the check could not be made) */
};
/* Proves, before anything is read, that the target can answer: an HTTP
 * target answers an OPTIONS request (any status: the host is there), a
 * Lambda function exists (GetFunction with the qualifier), an exec
 * command is found and executable, a file target can be opened. A
 * configuration error is DDA_EIO naming the target; DDA_EINVAL for a
 * spec that cannot work. */
int dda__target_preflight(const struct dda_target_opts *o, struct dda_target_info *info,
			  struct dda_error *err);
/* Cuts a torn last line (bytes after the last newline: an earlier run
 * stopped mid-write) from a file a replay appends to, so the next line
 * does not continue it; *cut says how many bytes went. A missing file or
 * one that is not regular is left alone. 0 or DDA_EIO. */
int dda__file_cut_torn_tail(const char *path, uint64_t *cut, struct dda_error *err);
/* --target -: stdout must be open for writing (0, or DDA_EIO saying why). */
int dda__target_stdout_check(struct dda_error *err);
/* Checks that path can be written (created in its directory, or
 * replaced): 0 or DDA_EIO saying which output (what) and why. */
int dda__output_check(const char *what, const char *path, struct dda_error *err);

/* Delivery. */
struct dda_replay_stats;
struct dda_replay_opts {
	struct dda_target_opts target;
	int batch_size;		  /* --batch-size */
	int64_t batch_window;	  /* --max-batching-window, microseconds */
	int max_retries;	  /* -1: until max_record_age */
	int64_t max_record_age;	  /* microseconds, -1 for none */
	bool bisect;		  /* --bisect-on-error */
	int on_failure;		  /* enum dda_on_failure */
	const char *dlq;	  /* file:PATH, sqs:QUEUE_URL or NULL */
	struct dda_dlq *dlq_open; /* dlq, opened by the caller (who closes it), or NULL */
	const char *checkpoint;	  /* path or NULL */
	double max_rps;		  /* records per second over all lanes, 0 = no limit */
	int max_inflight;	  /* batches at the target at once, 0 = one a lane */
	int64_t backoff_base;	  /* microseconds */
	int64_t backoff_cap;
	const json_t *arguments;  /* what shapes the plan: a checkpoint resumes the same */
	const char *function_arn; /* for the DLQ's requestContext (preflight), or NULL */
	struct dda_shard shard;	  /* --shard (count 0: none), named in DLQ lines */
	volatile int *stop;
	/* Called about every 500 ms while lanes deliver (records, acked, dlq,
	 * seconds so far), and once with done set. */
	void (*progress)(void *ctx, const struct dda_replay_stats *st, bool done);
	void *progress_ctx;
	/* With -v: one line per failed send (lane, records, why, what next),
	 * called from lane threads without the delivery lock; NULL for none. */
	void (*log)(void *ctx, const char *line);
};

struct dda_replay_stats {
	uint64_t records, sent, acked, batches, retries, bisections, dlq, held;
	uint64_t dropped;   /* --on-failure drop: discarded, counted */
	uint64_t throttles; /* throttled sends, never counted as retries */
	uint64_t resumed; /* records already acknowledged by an earlier run */
	uint64_t partial; /* partial batch failures reported by the target */
	double p50_ms, p99_ms;
	double seconds;	  /* delivery, from the first lane's start to the last's end */
	bool stopped;	  /* on-failure stop, a configuration error or a signal */
	bool interrupted; /* by a signal */
};

/* The run id stored in a checkpoint, so a resumed run marks its records
 * as the same run. Returns 1 when found. */
int dda__checkpoint_run_id(const char *path, char out[37]);

/* Refuses a checkpoint written with other arguments (DDA_EINVAL naming
 * the first argument that differs, with both values), before the source
 * is read; a missing file is a fresh start. */
int dda__checkpoint_check_args(const char *path, const json_t *arguments,
			       struct dda_error *err);
/* Restores lane positions and held items from a checkpoint (a missing
 * file is a fresh start); refuses one written for other arguments or
 * another plan (DDA_EINVAL, saying why). held is new. */
int dda__checkpoint_load(const char *path, struct dda_plan *p, const struct dda_replay_opts *o,
			 size_t *lane_pos, uint64_t **held, size_t *nheld, struct dda_error *err);
int dda__checkpoint_save(const char *path, const struct dda_plan *p,
			 const struct dda_replay_opts *o, const size_t *lane_pos,
			 const uint64_t *held, size_t nheld, struct dda_error *err);

/* Where the batch that starts at a ends (at most limit): --batch-size,
 * the 6 MB payload cap, and --max-batching-window under --max-rps. */
size_t dda__batch_end(const struct dda_plan *p, const struct dda_replay_opts *o, size_t a,
		      size_t limit);

/* Delivers the plan. Returns 0 (see stats for what happened) or an error
 * that prevented delivery (checkpoint mismatch, DLQ unwritable, ...). */
int dda__replay_run(struct dda_plan *p, const struct dda_replay_opts *o,
		    struct dda_replay_stats *st, struct dda_error *err);

#endif
