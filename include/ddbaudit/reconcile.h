/* Reconcile: the state the log says each item has now, compared with the
 * live table, digest against digest. The table is scanned first (in
 * parallel segments), then the log is audited as verify audits it; both
 * sides are taken in key-hash order and merge-joined: an item only in the
 * table is UNLOGGED_ITEM, one the log says exists and the table lacks is
 * MISSING_ITEM, one in both with different images (or removed in the log
 * and present in the table) is STATE_DRIFT. An item whose last change in
 * the log is at or after the scan started was changed while the table was
 * read: it is read again (consistent GetItem) before it is judged. Memory
 * per item is its key and digest, never its image. */
#ifndef DDBAUDIT_RECONCILE_H
#define DDBAUDIT_RECONCILE_H

#include "ddbaudit/audit.h"

struct dda_reconcile_opts {
	const char *table; /* ddb://TABLE or a table ARN, or NULL with export */
	/* Instead of a table: a full DynamoDB export (as restore --baseline
	 * takes it), compared with the log's states at its exportTime. */
	const char *export;
	int segments;	   /* parallel Scan segments (1..64) */
	bool consistent;   /* strongly consistent Scan */
	double max_rcu;	   /* read capacity a second, 0 = unpaced */
};

struct dda_reconcile_stats {
	char table[256];
	char table_arn[2048];
	uint64_t table_items; /* items the scan returned */
	uint64_t log_items;   /* items the log has a history of */
	uint64_t matched;     /* equal on both sides */
	uint64_t unknown;     /* present in both; the log's image is not known */
	uint64_t reread;      /* changed during the scan: read again */
	uint64_t unlogged, missing, drift;
	double rcu;	      /* capacity the reads consumed */
	uint64_t throttles;
	int64_t scan_started, scan_finished;
	int64_t export_time; /* with an export: its exportTime, else DDA_TIME_NONE */
};

/* Runs the reconcile: ao as for dda_audit_run (its prior/end hooks are
 * the reconcile's own), res as dda_audit_run fills it plus the reconcile's
 * findings. Returns 0 when a result was produced, else an error with err
 * set (no table, no access, a key schema that differs from ao's). */
DDA_API int dda_reconcile_run(struct dda_audit_opts *ao, const struct dda_reconcile_opts *ro,
			      struct dda_result *res, struct dda_reconcile_stats *st,
			      struct dda_error *err);

#endif
