/* Restore: each item's state as of a time T, rebuilt from the log (from
 * the empty table, for logs that start at the table's creation), and
 * written to a table, to a directory in DynamoDB's export format, or as
 * NDJSON. The log is audited as verify audits it up to T; each item's state
 * is the new image of its last change at or before T (or absent after a
 * REMOVE); a change whose old image disagrees with the state it meets is a
 * GAP, and the item is uncertain. Images are read again from their objects
 * once the states are known (in object order), so memory holds keys and
 * positions, never images. */
#ifndef DDBAUDIT_RESTORE_H
#define DDBAUDIT_RESTORE_H

#include <stdio.h>
#include "ddbaudit/audit.h"

struct dda_restore_opts {
	int64_t at;	/* the states as of this time (changes at or before it) */
	const char *to; /* ddb://TABLE or a table ARN, a directory, or "-" */
	/* A full DynamoDB export (a directory or s3:// prefix holding
	 * AWSDynamoDB/<id>/, or that export itself) to start from instead of the
	 * empty table: its items at its exportTime, then the log's changes after
	 * it. NULL: none. */
	const char *baseline;
	bool create;	/* a table that does not exist is created (on demand) */
	bool overwrite; /* a table that holds items is written anyway; the log's
			   items absent at T are deleted from it */
	bool dry_run;	/* write nothing: print each PUT / DELETE on dry_out */
	/* Undo (with chosen keys, into a table): write each item back to its
	 * state at undo_since, on condition that the live item still equals
	 * the state the log says it has now; an item changed since is refused
	 * and reported, never clobbered. DDA_TIME_NONE: a plain restore. */
	int64_t undo_since;
	FILE *dry_out;
	FILE *ndjson_out; /* for "-" */
	double max_wcu;	  /* write capacity a second, 0 = unpaced */
	/* Into a table: progress kept in this file (rewritten atomically every
	 * 1,000 items written and at the end); a run with the same arguments
	 * goes on after the last item it records. NULL: none. */
	const char *checkpoint;
	/* Called about every 1,000 items written, and once at the end. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total, bool finished);
	void *progress_ctx;
	/* Only these items (canonical key serializations), or all when n is 0. */
	const uint8_t *const *keys;
	const size_t *key_lens;
	size_t nkeys;
};

struct dda_restore_stats {
	uint64_t items;	    /* items the log knows (selected) */
	uint64_t present;   /* of them, existing at T */
	uint64_t written;   /* puts done (or printed, dry run) */
	uint64_t deleted;   /* deletes done (overwrite) */
	uint64_t uncertain; /* items whose history up to T has an error */
	uint64_t files;	    /* data files written (directory) */
	uint64_t throttles;
	char table[256];
	bool created;
	int64_t baseline_time; /* the export's exportTime, or DDA_TIME_NONE */
	uint64_t undone, unchanged, refused; /* undo: items written back, equal, refused */
	uint64_t resumed;		     /* items a checkpoint said were written already */
	bool restarted; /* a checkpoint did not match the items' order: all written again */
};

/* Runs the restore: ao as for dda_audit_run (its range ends after `at`;
 * its hooks are the restore's). res is the audit's result (its findings are
 * the log's). Returns 0 when everything was written, else an error with
 * err set (a write that failed, a table refused); res is filled either way
 * once the log was read. */
DDA_API int dda_restore_run(struct dda_audit_opts *ao, const struct dda_restore_opts *ro,
			    struct dda_result *res, struct dda_restore_stats *st,
			    struct dda_error *err);

#endif
