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

/* A memory budget shared by the histories of one run (--memory-limit):
 * each history counts what its events cost against it (with atomics, so
 * histories on different threads share one). Past the limit, a history
 * holding a fair share of it sorts its events in analysis order, writes
 * them as a compressed run to an unlinked file in dir and frees them;
 * dda_history_analyze merges the runs with the rest. objs is the table
 * analysis is given (the order breaks ties by object); it and the budget
 * are borrowed and must outlive the histories. limit 0: never spill. */
struct dda_history_budget;
DDA_API struct dda_history_budget *dda_history_budget_new(uint64_t limit, const char *dir,
							  const struct dda_objtab *objs);
DDA_API void dda_history_budget_free(struct dda_history_budget *b);
/* A history that counts against b (NULL: unbounded, as dda_history_new). */
DDA_API struct dda_history *dda_history_new_bounded(struct dda_history_budget *b);

struct dda_spill_stats {
	uint64_t limit;	 /* bytes; 0 = unlimited */
	uint64_t runs;	 /* runs written while events were added */
	uint64_t events; /* events in them */
	uint64_t bytes;	 /* compressed bytes in them */
};
DDA_API void dda_history_budget_stats(const struct dda_history_budget *b,
				      struct dda_spill_stats *out);
/* The first failure to spill (a tmp dir that cannot be written, a full
 * disk), or 0. After one, histories spill no more and keep their events:
 * nothing is lost, but memory is no longer bounded, so the caller should
 * stop adding. err (may be NULL) gets the message, which names dir. */
DDA_API int dda_history_budget_error(struct dda_history_budget *b, struct dda_error *err);

/* Records the event of a valid record (copying what it keeps). */
DDA_API int dda_history_add(struct dda_history *h, const struct dda_record *r);
/* Moves every event (and spilled run) of `from` into `into`; `from` is left
 * empty. No event is copied: `into` keeps what it takes as a separate
 * sorted set, and analysis merges the sets (sorting there any that were
 * not sorted yet). */
DDA_API int dda_history_merge(struct dda_history *into, struct dda_history *from);
/* Sorts the events held in memory in analysis order by objs (borrowed; the
 * table dda_history_analyze will be given, complete: no object added or
 * changed afterwards), so that the thread that added them, idle once its
 * input ends, does the sorting rather than the thread that analyzes. An
 * event added afterwards undoes it. 0 or DDA_ENOMEM (the events are then
 * left unsorted: analysis sorts them, or fails the same way). */
DDA_API int dda_history_sort(struct dda_history *h, const struct dda_objtab *objs);
DDA_API uint64_t dda_history_count(const struct dda_history *h);
/* Bytes held, for memory accounting and the benchmark. */
DDA_API size_t dda_history_bytes(const struct dda_history *h);

/* What happened to each event when its item's history was replayed. */
enum dda_verdict {
	DDA_V_APPLIED,	 /* the event changed the item's state */
	DDA_V_DUPLICATE, /* the same change recorded again: counted once */
	/* A change of a late object (dda_object.late) no later than the state
	 * an earlier run carried for its item: that state is past it, so it is
	 * not applied. */
	DDA_V_SUPERSEDED,
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

/* Items by number of events: bucket i holds the items with 2^i to 2^(i+1)-1
 * events, the last one those with more (the report's histogram). */
#define DDA_CHANGE_BUCKETS 12

struct dda_history_stats {
	uint64_t items;
	uint64_t items_by_events[DDA_CHANGE_BUCKETS];
	uint64_t events;
	uint64_t duplicates;
	uint64_t by_event[3]; /* INSERT, MODIFY, REMOVE */
	uint64_t states;      /* item states (full exports), among events */
};

/* The order in which items are checked and a state file is sorted: by
 * dda_history_key_hash, then by key bytes (memcmp, the shorter first). The
 * hash is fixed (docs/state.md specifies it): a state written by one
 * version is read by the next in the same order. */
DDA_API uint64_t dda_history_key_hash(const uint8_t *key, size_t key_len);
DDA_API int dda_history_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* An item's state as an earlier run left it. Borrowed pointers, valid
 * until the next call of prior. */
struct dda_carried {
	bool found;	    /* the item was seen by an earlier run */
	bool present;	    /* it exists (false after a REMOVE) */
	bool digest_known;  /* present, and the digest of its image is known */
	uint8_t digest[DDA_DIGEST_LEN];
	int event;	    /* enum dda_event_name of its last change */
	int64_t time;	    /* that change's time */
	const char *object; /* the object that held it */
	uint64_t change_fp; /* fingerprint of that change (retries across runs) */
};

/* An item's state after this run. object is borrowed for the call. */
struct dda_item_end {
	const uint8_t *key;
	size_t key_len;
	bool present, digest_known;
	const uint8_t *digest;
	int event;
	int64_t time;
	const char *object;
	uint64_t change_fp;
	/* The last change's object id and position in this run, or
	 * DDA_NO_OBJECT when it is the one an earlier run carried. */
	uint32_t obj, index;
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
	/* Optional, for state carried across runs (--state). Items are checked
	 * in dda_history_key_order; prior is called once with each item's key,
	 * in that order, before its events, and fills *out with what an
	 * earlier run left (out->found false: never seen). end is called once
	 * with each item's state after its events. Both share state_ctx. */
	void *state_ctx;
	int (*prior)(void *state_ctx, const uint8_t *key, size_t key_len,
		     struct dda_carried *out);
	int (*end)(void *state_ctx, const struct dda_item_end *end);
	/* Optional: the detail of a failure to read spilled runs back. */
	struct dda_error *err;
	/* Threads the check may use (0 or 1: the calling thread alone). Used
	 * without prior and end (their calls come one at a time in item order)
	 * and without spilled runs; items are then checked by ranges of key
	 * hash at once, and anomaly and visit are still called from the
	 * calling thread, in the order one thread gives. */
	unsigned threads;
};

/* Orders every item's events and checks each link. Returns 0 or the first
 * nonzero value of a callback (or DDA_ENOMEM). With spilled runs, DDA_EIO
 * or DDA_EFORMAT when one cannot be read back (detail in opts->err): the
 * items checked before it were whole, the rest are not checked. */
DDA_API int dda_history_analyze(struct dda_history *h, const struct dda_history_opts *opts,
				struct dda_history_stats *stats);

#endif
