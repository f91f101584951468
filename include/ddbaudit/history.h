/* Item histories: events grouped by canonical item key, ordered, and checked
 * link by link (GAP, UNKNOWN_PRIOR, DOUBLE_INSERT, MODIFY_AFTER_REMOVE,
 * DUPLICATE, NO_OP_MODIFY). Per-event state is a key, two digests and a few
 * fields, never whole images, so a million events fit in a few hundred MB. */
#ifndef DDBAUDIT_HISTORY_H
#define DDBAUDIT_HISTORY_H

#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/common.h"
#include "ddbaudit/record.h"
#include "ddbaudit/source.h"

/* A collection of events. Adding is not thread-safe: give each thread its
 * own history and merge them when the threads are done. */
struct dda_history;
DDA_API struct dda_history *dda_history_new(void);
DDA_API void dda_history_free(struct dda_history *h);

/* Records the event of a valid record (copying what it keeps). */
DDA_API int dda_history_add(struct dda_history *h, const struct dda_record *r);
/* Moves every event of `from` into `into`; `from` is left empty. */
DDA_API int dda_history_merge(struct dda_history *into, struct dda_history *from);
DDA_API uint64_t dda_history_count(const struct dda_history *h);
/* Bytes held, for memory accounting and the benchmark. */
DDA_API size_t dda_history_bytes(const struct dda_history *h);

/* What happened to each event when its item's history was replayed. */
enum dda_verdict {
	DDA_V_APPLIED,	 /* the event changed the item's state */
	DDA_V_DUPLICATE, /* the same change recorded again: counted once */
};

/* A view of one event, in history order. */
struct dda_event_view {
	const uint8_t *key;
	uint32_t key_len;
	uint32_t obj;
	uint32_t index;
	uint64_t line;
	int event; /* enum dda_event_name */
	int64_t time;
	int verdict; /* enum dda_verdict */
	bool has_old, has_new;
	const uint8_t *old_digest, *new_digest;
};

struct dda_history_stats {
	uint64_t items;
	uint64_t events;
	uint64_t duplicates;
	uint64_t by_event[3]; /* INSERT, MODIFY, REMOVE */
	uint64_t states;      /* item states (full exports), among events */
};

struct dda_history_opts {
	/* Events at or after this time are still settling: a missing change
	 * found among them is provisional (warning). DDA_TIME_NONE: none. */
	int64_t settle_from;
	/* Looks up object metadata for tie-breaks (last-modified, version). */
	const struct dda_objtab *objs;
	/* Called with each anomaly (taking ownership of its heap fields). */
	void *ctx;
	int (*anomaly)(void *ctx, struct dda_anomaly *a);
	/* Optional: called for each event in history order. */
	int (*visit)(void *ctx, const struct dda_event_view *e);
};

/* Orders every item's events and checks each link. Returns 0 or the first
 * nonzero value of a callback (or DDA_ENOMEM). */
DDA_API int dda_history_analyze(struct dda_history *h, const struct dda_history_opts *opts,
				struct dda_history_stats *stats);

#endif
