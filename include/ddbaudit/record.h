/* Decoding audit records (four dialects, detected per record), validating
 * them, and the anomaly model shared by every stage. */
#ifndef DDBAUDIT_RECORD_H
#define DDBAUDIT_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/common.h"
#include "ddbaudit/canon.h"
#include "ddbaudit/source.h"

/* Anomaly kinds (docs/anomalies.md says when each fires). New kinds are added at the end. */
enum dda_kind {
	DDA_K_UNREADABLE,
	DDA_K_INVALID_RECORD,
	DDA_K_INVALID_VALUE,
	DDA_K_IMAGE_MISMATCH,
	DDA_K_KEY_MISMATCH,
	DDA_K_PREFIX_SKEW,
	DDA_K_GAP,
	DDA_K_UNKNOWN_PRIOR,
	DDA_K_DOUBLE_INSERT,
	DDA_K_MODIFY_AFTER_REMOVE,
	DDA_K_DUPLICATE,
	DDA_K_NO_OP_MODIFY,
	DDA_K_OVERWRITTEN,
	DDA_K_UNVERSIONED_BUCKET,
	DDA_K_EXPORT_MISMATCH, /* an export's data disagrees with its manifests */
	DDA_K_EMPTY_RANGE,  /* the range or source holds no records */
	DDA_K_MISSING_HOUR, /* --expect-every: a slot of the range without an object */
	DDA_K_BASELINE_EXPIRED, /* a --baseline entry past its expiry */
	DDA_K_LATE_OBJECT, /* written into an hour an earlier run audited (--state) */
	DDA_K_UNLOGGED_ITEM, /* reconcile: in the table, never in the log */
	DDA_K_MISSING_ITEM,  /* reconcile: the log says it exists, the table lacks it */
	DDA_K_STATE_DRIFT,   /* reconcile: in both, with different images */
	DDA_K_SHARD_SPLIT,   /* --shard: a record of another shard's item in this one's object */
	DDA_K__COUNT
};

enum dda_severity { DDA_SEV_INFO, DDA_SEV_WARNING, DDA_SEV_ERROR, DDA_SEV__COUNT };

DDA_API const char *dda_kind_name(int kind);
/* Returns the kind named name ("GAP"), or -1. */
DDA_API int dda_kind_parse(const char *name);
DDA_API int dda_kind_severity(int kind);
/* The legend of a kind for readers of a report (static strings): what it
 * means (one sentence), what to do (a lowercase clause), and both as one
 * line ("MEANING What to do: ACTION"). An unknown kind gets a line that
 * says so. */
DDA_API const char *dda_kind_meaning(int kind);
DDA_API const char *dda_kind_action(int kind);
DDA_API const char *dda_kind_legend(int kind);
DDA_API const char *dda_severity_name(int sev);
/* Returns the severity for "error", "warning", "info"; -1 otherwise. */
DDA_API int dda_severity_parse(const char *s);

#define DDA_NO_OBJECT UINT32_MAX

/* One finding. Heap fields are owned by the anomaly. */
struct dda_anomaly {
	int kind;	  /* enum dda_kind */
	int severity;	  /* usually dda_kind_severity(kind) */
	bool provisional; /* found among still-settling events */
	uint32_t obj;	  /* object id, or DDA_NO_OBJECT */
	uint32_t index;	  /* ordinal of the record in its object */
	uint64_t line;	  /* 1-based line of the record in its object, 0 unknown */
	int64_t time;	  /* record time, or DDA_TIME_NONE */
	uint8_t *key;	  /* item key serialization, or NULL */
	uint32_t key_len;
	char *detail; /* one line, for humans */
	bool has_expected, has_found;
	uint8_t expected[DDA_DIGEST_LEN];
	uint8_t found[DDA_DIGEST_LEN];
	json_t *diff;	   /* attribute diff (GAP), or NULL */
	uint32_t prev_obj; /* object of the previous event (GAP), or DDA_NO_OBJECT */
	uint32_t prev_index;
};

DDA_API void dda_anomaly_release(struct dda_anomaly *a);

/* DDA_DIALECT_EXPORT is an incremental export's change line; a full
 * export's {"Item":...} line is DDA_DIALECT_EXPORT_FULL. */
enum dda_dialect {
	DDA_DIALECT_SEED,
	DDA_DIALECT_STREAM,
	DDA_DIALECT_EXPORT,
	DDA_DIALECT_EXPORT_FULL,
};
/* DDA_EV_STATE is not a change: the item's whole state at the record's
 * time, as a full export holds it (new image only; never replayed). */
enum dda_event_name { DDA_EV_INSERT, DDA_EV_MODIFY, DDA_EV_REMOVE, DDA_EV_STATE };

DDA_API const char *dda_dialect_name(int d);
DDA_API const char *dda_event_name_str(int ev);

/* A decoded, valid record as handed to a sink. Pointers are borrowed and
 * valid only during the callback. */
struct dda_record {
	uint32_t obj;
	const struct dda_object *object; /* its object, when the decoder knows the table */
	uint32_t index;
	uint64_t line;
	int dialect;	 /* enum dda_dialect */
	int event;	 /* enum dda_event_name */
	int64_t time;	 /* change time (seed: the writer's timestamp) */
	const char *seq; /* SequenceNumber digits, or NULL */
	size_t seq_len;
	const char *event_id; /* eventID, or NULL */
	size_t event_id_len;
	const uint8_t *key; /* canonical item key */
	size_t key_len;
	bool has_old, has_new;
	uint8_t old_digest[DDA_DIGEST_LEN];
	uint8_t new_digest[DDA_DIGEST_LEN];
	bool old_unknown;	 /* the view carries no old image (NEW_IMAGE, KEYS_ONLY) */
	bool new_unknown;	 /* the view carries no new image (OLD_IMAGE, KEYS_ONLY) */
	bool ttl;		 /* a TTL delete (userIdentity dynamodb.amazonaws.com) */
	const json_t *old_image; /* the images themselves */
	const json_t *new_image;
	const json_t *raw; /* the whole record */
	/* With dda_decoder_opts.raw_images, records of the fast path carry no
	 * trees: their images' JSON text (NULL when old_image/new_image are
	 * set instead), item sizes and awsRegion. */
	const char *old_raw, *new_raw;
	size_t old_raw_len, new_raw_len;
	/* The text is compact already: no whitespace between its tokens. */
	bool old_raw_compact, new_raw_compact;
	uint64_t old_size, new_size;
	const char *region;
	size_t region_len;
};

/* Where the decoder delivers its results. `record` is called for each valid
 * record in range; `anomaly` for each finding (it takes ownership of the
 * anomaly's heap fields). Either returning nonzero stops decoding with that
 * code. `counts` receive what was seen. */
struct dda_decode_counts {
	uint64_t records; /* records found (valid + invalid), in range */
	uint64_t valid;
	uint64_t invalid;
	uint64_t filtered; /* records outside the time range */
	uint64_t values;   /* JSON values read */
};

struct dda_decode_sink {
	void *ctx;
	int (*record)(void *ctx, const struct dda_record *r);
	int (*anomaly)(void *ctx, struct dda_anomaly *a);
};

#define DDA_MAX_KEY_ATTRS 2  /* a DynamoDB key is a HASH and an optional RANGE */
#define DDA_KEY_NAME_MAX 256 /* key attribute names are at most 255 bytes */
struct dda_decoder_opts {
	/* Key schema for the seed dialect: attribute names, HASH first, and the
	 * record fields holding them ("userId", "activityId"). */
	char key_names[DDA_MAX_KEY_ATTRS][DDA_KEY_NAME_MAX];
	const char *key_fields[DDA_MAX_KEY_ATTRS];
	size_t nkeys;
	struct dda_range range;
	/* Records of late objects (dda_object.late) are taken from late_from
	 * on, before the range: their changes belong to earlier hours. */
	int64_t late_from;
	bool check_prefix; /* PREFIX_SKEW and object-name KEY_MISMATCH checks */
	/* Always take the jansson path: records then carry their images (the
	 * fast path for seed records computes digests without them). */
	bool need_images;
	/* Without need_images: give the fast path's records their images as
	 * JSON text (dda_record.old_raw/new_raw) instead. */
	bool raw_images;
};

/* Parses "UserId:HASH,ActivityId:RANGE" into opts (fields default to the
 * seed writer's userId / activityId by position). Returns 0 or DDA_EINVAL. */
DDA_API int dda_key_schema_parse(const char *spec, struct dda_decoder_opts *opts,
				 struct dda_error *err);
/* Fills opts with the defaults: UserId:HASH,ActivityId:RANGE, open range. */
DDA_API void dda_decoder_opts_default(struct dda_decoder_opts *opts);

/* A decoder keeps scratch buffers; use one per thread. */
struct dda_decoder;
DDA_API struct dda_decoder *dda_decoder_new(const struct dda_decoder_opts *opts,
					    const struct dda_objtab *objs);
DDA_API void dda_decoder_free(struct dda_decoder *d);

/* Decodes every record of a chunk. Returns 0 or the first nonzero value a
 * sink callback returned (or DDA_ENOMEM). Bad input is never an error here:
 * it becomes an anomaly. */
DDA_API int dda_decode_chunk(struct dda_decoder *d, const struct dda_chunk *c,
			     const struct dda_decode_sink *sink, struct dda_decode_counts *counts);

#endif
