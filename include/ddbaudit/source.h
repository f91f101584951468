/* Sources of audit objects: a directory laid out like the bucket, an archive
 * of such a tree, NDJSON files or stdin (and, later, S3). Each kind sits
 * behind one interface that yields chunks of object bytes in a deterministic
 * order, registering each object's metadata in a shared object table. */
#ifndef DDBAUDIT_SOURCE_H
#define DDBAUDIT_SOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/aws.h"
#include "ddbaudit/common.h"
#include "ddbaudit/log.h"
#include "ddbaudit/time.h"

/* Default cap on the bytes of one object after decompression (and on one
 * NDJSON line): larger objects are reported UNREADABLE, not read, so that
 * one huge object or a gzip bomb cannot exhaust memory. */
#define DDA_DEFAULT_MAX_OBJECT_BYTES ((size_t)16 << 20)

/* What a DynamoDB export's manifests say about one of its data files
 * (<prefix>/AWSDynamoDB/<exportId>/data/...), read by the source before the
 * file itself. All zero for an object outside an export. */
enum dda_export_kind {
	DDA_EXPORT_NONE,
	DDA_EXPORT_FULL,	/* lines {"Item":...}: item states at `time` */
	DDA_EXPORT_INCREMENTAL, /* change lines written in [from, to) */
	DDA_EXPORT_UNKNOWN,	/* under an export whose summary could not be read */
};
struct dda_export_info {
	uint8_t kind;	  /* enum dda_export_kind */
	bool new_only;	  /* incremental export of view NEW_IMAGE */
	bool listed;	  /* manifest-files.json lists the file: items is its count */
	uint64_t items;	  /* itemCount of the file in manifest-files.json */
	int64_t time;	  /* full: exportTime */
	int64_t from, to; /* incremental: exportFromTime (inclusive), exportToTime */
};

/* What is known about one object. Strings are owned by the object table. */
struct dda_object {
	const char *key;       /* path relative to the source root, '/'-separated */
	const char *version;   /* S3 versionId, or NULL */
	const char *etag;      /* S3 ETag (with quotes stripped), or NULL */
	int64_t size;	       /* bytes as stored (compressed if gzip), -1 unknown */
	int64_t last_modified; /* microseconds, DDA_TIME_NONE unknown */
	int64_t hour;	       /* start of the YYYY/MM/DD/HH prefix in key, or NONE */
	uint32_t name_off;     /* offset in key of the name after the hour prefix */
	bool gzip;	       /* stored gzip-compressed */
	uint8_t sha256[32];    /* of the stored bytes; valid once the object ended */
	bool sha_valid;
	struct dda_export_info exp; /* an export's data file, or zero */
	/* Where the object sits in its source when its key does not say it
	 * alone: an archive's entry number (1-based; archives may hold several
	 * entries of one name). 0 when the key is enough. */
	uint64_t pos;
	/* Written into an hour before the range after an earlier run audited
	 * that hour (dda_source_opts.late): read for its late changes. */
	bool late;
	/* Sharded runs (dda_source_opts.shard): the object's 1-based ordinal
	 * in the listing every shard shares, so that merge can put the objects
	 * of several shards back in one run's order. 0 when not sharded. */
	uint64_t listing;
};

/* The object table: objects get dense ids in the order they are added.
 * Entries never move, so a reader may keep pointers; adding is not
 * thread-safe, reading entries added before a synchronisation point is. */
struct dda_objtab;
DDA_API struct dda_objtab *dda_objtab_new(void);
DDA_API void dda_objtab_free(struct dda_objtab *t);
/* Adds an object, copying its strings; fills hour/name_off from the key.
 * Returns the id (>= 0) or DDA_ENOMEM. */
DDA_API int64_t dda_objtab_add(struct dda_objtab *t, const struct dda_object *o);
DDA_API struct dda_object *dda_objtab_get(const struct dda_objtab *t, uint32_t id);
DDA_API uint32_t dda_objtab_count(const struct dda_objtab *t);

/* Finds the hour prefix in an object key: the last "YYYY/MM/DD/HH/" run of
 * path components that is followed by a name. Returns true and stores the
 * hour start and the offset of the name. */
DDA_API bool dda_key_hour(const char *key, size_t n, int64_t *hour, uint32_t *name_off);

enum dda_chunk_kind {
	DDA_CHUNK_DOC,	 /* a whole object: one or more JSON values */
	DDA_CHUNK_LINES, /* complete NDJSON lines of a larger stream */
};

enum dda_chunk_status {
	DDA_CHUNK_OK,
	DDA_CHUNK_UNREADABLE, /* bytes could not be read: see msg */
};

/* A unit of work handed from a source to the decoder. */
struct dda_chunk {
	uint32_t obj;	      /* object id in the table */
	int kind;	      /* enum dda_chunk_kind */
	int status;	      /* enum dda_chunk_status */
	uint64_t first_line;  /* 1-based line number of the first byte */
	uint32_t first_index; /* ordinal of the chunk's first value in the object */
	bool last;	      /* the object's last chunk: its metadata is final */
	struct dda_buf data;  /* owned: decompressed bytes */
	char msg[256];	      /* why the chunk is UNREADABLE */
	/* DDA_CHUNK_LINES: the reader found no line naming "Records" and no
	 * backslash, so each non-blank line is one record position (false:
	 * not known, the decoder looks). */
	bool plain;
};

DDA_API void dda_chunk_init(struct dda_chunk *c);
DDA_API void dda_chunk_release(struct dda_chunk *c);

/* A shard of a run split over several processes (--shard K/N): count 0 is
 * an unsharded run. An object under an hour prefix (the seed layout) is
 * read by one shard only, dda_shard_of_name of its name; every other object
 * is read by every shard, which keeps the items of its own (the audit's
 * dda_shard_of_item). */
struct dda_shard {
	uint32_t index, count;
};

/* The shard (0..count-1) of an object name below its hour prefix, or of an
 * item's seed name ("<hash key>-<range key>.json"): FNV-1a (64-bit) over
 * the bytes, a trailing ".gz" left out, mixed by SplitMix64's finalizer,
 * modulo count. Fixed across versions and machines: shards of one run may
 * run different builds. */
DDA_API uint32_t dda_shard_of_name(const char *name, size_t n, uint32_t count);

struct dda_source_opts {
	struct dda_range range;	 /* prune hour prefixes outside it (with slack) */
	size_t max_object_bytes; /* 0 means DDA_DEFAULT_MAX_OBJECT_BYTES */
	bool lines;		 /* force NDJSON line mode for a plain file */
	bool list_only;		 /* S3: objects without their bytes (ls) */
	struct dda_aws_opts aws; /* for s3:// sources */
	struct dda_log log;	 /* prefixes listed, requests retried (-v) */
	/* The run's now (--now), where an open range ends; DDA_TIME_NONE or 0
	 * means the clock's. */
	int64_t now;
	/* Late objects (verify --state): the hours from late_from up to the
	 * range are listed too, and their objects last modified after
	 * late_after (when the previous run started) are read as late objects
	 * (dda_object.late, noted DDA_FACT_LATE); the others there are not. */
	bool late;
	int64_t late_from, late_after;
	struct dda_shard shard; /* --shard K/N, or count 0 */
	/* Only the objects want says yes to are read (merge's re-check of some
	 * items reads only their objects); NULL reads every object. */
	bool (*want)(void *ctx, const char *key);
	void *want_ctx;
};

/* What a source learnt about where its objects live, for the report. For
 * S3: the bucket's versioning and Object Lock settings. */
struct dda_source_facts {
	bool s3;
	char bucket[64];      /* S3 bucket names are at most 63 bytes */
	char prefix[1025];    /* keys at most 1024 */
	char versioning[16];  /* "Enabled", "Suspended", "Disabled", "unknown" */
	char object_lock[16]; /* "Enabled", "Disabled", "unknown" */
	char retention[48];   /* default retention, "COMPLIANCE 365 days", or "" */
	bool versions;	      /* every version of every key was listed */
	uint64_t versions_read;	   /* versions beyond a key's first that were read */
	uint64_t delete_markers;   /* seen in a versions listing, never read */
	uint64_t overwritten_keys; /* keys holding more than one version */
	/* Keys a listing returned outside the prefix it was asked for: a peer
	 * that lies. They are ignored (never read), and counted here. */
	uint64_t keys_outside_prefix;
	/* Sharded runs: the objects of the listing every shard shares (those
	 * the range does not prune), the ones left to other shards, and the
	 * SHA-256 (hex) of the listing's keys in order, once it ended. Shards
	 * of one run must agree on it. */
	uint64_t listed, other_shards;
	char listing_sha256[2 * 32 + 1];
};

/* What a source learns beside the objects' bytes: facts about where they
 * live or about objects as a whole. The source layer knows no anomaly kinds;
 * the audit names these (UNVERSIONED_BUCKET, OVERWRITTEN, UNREADABLE,
 * EXPORT_MISMATCH) and decides their severity. */
enum dda_source_fact {
	DDA_FACT_UNVERSIONED,	      /* the bucket's versioning is off or suspended */
	DDA_FACT_VERSIONING_UNKNOWN,  /* the versioning status could not be read */
	DDA_FACT_OVERWRITTEN,	      /* a key holds several versions, or a delete marker */
	DDA_FACT_METADATA_UNREADABLE, /* export metadata missing or broken */
	DDA_FACT_METADATA_MISMATCH,   /* data disagrees with its export's metadata */
	DDA_FACT_LATE,		      /* written into an hour an earlier run audited */
};

/* One fact, about an object (obj) or the whole source (UINT32_MAX). */
struct dda_source_note {
	int fact;     /* enum dda_source_fact */
	uint32_t obj; /* the object it concerns, or UINT32_MAX for none */
	char *detail; /* owned: one line for humans */
};

struct dda_source;
struct dda_source_ops {
	const char *kind; /* "dir", "archive", "ndjson", "s3" */
	/* Fills *c (initialised by the caller) with the next chunk. Returns 1
	 * for a chunk, 0 at the end, or a negative dda_err for a failure that
	 * ends the run (the detail in err). A damaged object is not a failure:
	 * it is a chunk with status DDA_CHUNK_UNREADABLE. */
	int (*next)(struct dda_source *s, struct dda_chunk *c, struct dda_error *err);
	/* Reads one object again in full (for diffs of anomalies), into out.
	 * Optional: NULL when the source cannot be re-read. */
	int (*reread)(struct dda_source *s, uint32_t obj, struct dda_buf *out,
		      struct dda_error *err);
	void (*free)(struct dda_source *s);
};

struct dda_source {
	const struct dda_source_ops *ops;
	struct dda_objtab *objs; /* borrowed: where objects are registered */
	struct dda_source_opts opts;
	uint64_t prefixes_skipped; /* hour prefixes pruned by the range */
	uint64_t objects_skipped;  /* objects pruned by the range */
	struct dda_source_facts facts;
	struct dda_source_note *notes; /* owned; the audit takes them */
	size_t nnotes, notes_cap;
	struct dda__shard_track *shard; /* owned: the shared listing (sharded runs) */
};

/* Opens SOURCE as given on the command line: "-" (NDJSON on stdin), a
 * directory, an archive (.tar, .tar.gz, .tgz, .zip, or archive magic), or a
 * file (.ndjson/.jsonl and their .gz read as lines; anything else read as one
 * object). objs is borrowed and must outlive the source. */
DDA_API int dda_source_open(struct dda_source **out, const char *spec, struct dda_objtab *objs,
			    const struct dda_source_opts *opts, struct dda_error *err);
/* Two sources read as one: every object of `first` (a baseline export),
 * then every object of `second` (the log), in one object table. */
DDA_API int dda_source_open_chain(struct dda_source **out, const char *first, const char *second,
				  struct dda_objtab *objs, const struct dda_source_opts *opts,
				  struct dda_error *err);
DDA_API int dda_source_next(struct dda_source *s, struct dda_chunk *c, struct dda_error *err);
DDA_API void dda_source_free(struct dda_source *s);

/* Inflates gzip data (one or more members) into out, failing with
 * DDA_ETOOBIG once more than out->max bytes would result and with
 * DDA_EFORMAT for damaged data. */
DDA_API int dda_gunzip(const void *p, size_t n, struct dda_buf *out, struct dda_error *err);
/* True when p starts with the gzip magic bytes. */
DDA_API bool dda_is_gzip(const void *p, size_t n);

#endif
