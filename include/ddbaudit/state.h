/* State carried from one audit run to the next (--state): per item the
 * digest of its last known image (or "absent"), its last change's time and
 * object; the watermark (every change before it was audited), the chain of
 * report digests and the bucket settings last seen. The file is gzip'd
 * NDJSON sorted in dda_history_key_order, read as a stream and merge-joined
 * with a run's items, so a run never holds the whole state in memory.
 * docs/state.md specifies the format.
 *
 * A run: dda_state_open (lock, header) -> dda_state_begin (new file) ->
 * the audit, with dda_state_prior_hook / dda_state_end_hook in its options
 * -> dda_state_drain (the rest of the old state, its trailer checked) ->
 * reports -> dda_state_commit (trailer, rename). dda_state_free without a
 * commit leaves the old state as it was. */
#ifndef DDBAUDIT_STATE_H
#define DDBAUDIT_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/common.h"
#include "ddbaudit/aws.h"
#include "ddbaudit/history.h"

#define DDA_STATE_FORMAT "ddbaudit.state"
#define DDA_STATE_VERSION 1
/* A line of the state: an item's key (at most a few KB in DynamoDB), its
 * object's name (at most 1 KB, escaped at most fourfold) and a few fields. */
#define DDA_STATE_LINE_MAX (64 * 1024)

/* Which table a state belongs to: a state of another table is refused. */
struct dda_state_identity {
	const char *source;			  /* SOURCE as given; a trailing '/' is ignored */
	const char *key_names[DDA_MAX_KEY_ATTRS]; /* borrowed */
	size_t nkeys;
	/* Not part of the identity: how to reach an s3:// state (borrowed,
	 * may be NULL for a local one). */
	const struct dda_aws_opts *aws;
};

/* What a state says of the run that wrote it. */
struct dda_state_run {
	int64_t watermark; /* every change before this time was audited */
	int64_t started;   /* when that run started, before it listed objects */
	char tool[64];
	/* From the trailer: known once dda_state_drain has read it. */
	char report_sha256[65];	     /* that run's JSON report */
	char prev_report_sha256[65]; /* the run before it, "" for the first */
	char bundle_sha256[65];	     /* that run's evidence bundle, "" for none */
	char versioning[16];	     /* bucket settings as last seen, "" unknown */
	char object_lock[16];
	uint64_t items;
};

struct dda_state;

/* Opens the state at path for one run: a local file, locked by path.lock,
 * or s3://BUCKET/KEY, locked by the object KEY.lock and downloaded to a
 * temporary file. The lock is taken at once or the open fails (DDA_EIO
 * naming the holder). Reads the header of the state when one exists. A state that is not one, of a
 * newer format version or of another table is DDA_EFORMAT. *out is new, freed with dda_state_free.
 */
DDA_API int dda_state_open(struct dda_state **out, const char *path,
			   const struct dda_state_identity *id, struct dda_error *err);
/* The previous run, or NULL when there is no state yet (borrowed). */
DDA_API const struct dda_state_run *dda_state_prior(const struct dda_state *s);
/* Starts the new state (a temporary file beside path): this run's
 * watermark and start time. */
DDA_API int dda_state_begin(struct dda_state *s, int64_t watermark, int64_t started,
			    struct dda_error *err);
/* Hooks for dda_audit_opts.prior / .end, with state_ctx the state. A
 * failure's detail is in dda_state_error. */
DDA_API int dda_state_prior_hook(void *s, const uint8_t *key, size_t key_len,
				 struct dda_carried *out);
DDA_API int dda_state_end_hook(void *s, const struct dda_item_end *end);
/* The detail of a hook's failure (borrowed). */
DDA_API const struct dda_error *dda_state_error(const struct dda_state *s);
/* After the audit: copies the items of the old state this run did not see
 * and checks the old state's trailer (count and digest: a truncated or
 * altered state is DDA_EFORMAT). */
DDA_API int dda_state_drain(struct dda_state *s, struct dda_error *err);
/* After the reports: writes the trailer (this run's report digest, the
 * bucket settings seen, "" when unknown) and renames the new state over
 * the old one, atomically. */
DDA_API int dda_state_commit(struct dda_state *s, const char *report_sha256, const char *versioning,
			     const char *object_lock, struct dda_error *err);
/* Before the commit: the SHA-256 (hex) of the evidence bundle this run
 * wrote, recorded in the trailer so that the next run's report links it. */
DDA_API void dda_state_set_bundle(struct dda_state *s, const char *bundle_sha256);
/* Items written to the new state so far. */
DDA_API uint64_t dda_state_items(const struct dda_state *s);
/* Discards an uncommitted new state, releases the lock; NULL is a no-op. */
DDA_API void dda_state_free(struct dda_state *s);

#endif
