/* Internal to restore: the --undo-since step (undo.c). */
#ifndef DDA_RESTORE_IMPL_H
#define DDA_RESTORE_IMPL_H

#include <stdio.h>
#include "audit/audit_impl.h"
#include "ddb/ddb.h"
#include "ddbaudit/restore.h"

/* An item's last change (at or before T, or of all). */
struct dda__undo_end {
	bool seen, present, digest_known;
	uint32_t obj, index;
	uint8_t digest[DDA_DIGEST_LEN];
};

struct dda__undo_item {
	const uint8_t *key; /* borrowed from the options */
	size_t key_len;
	uint64_t khash;
	struct dda__undo_end then, now;
};

struct dda__undo {
	struct dda__undo_item *v; /* sorted by key hash, key */
	size_t n;
	int64_t since;
};

struct dda__undo_ctx {
	struct dda_audit_fetch *fetch;
	struct dda_ddb_conn *conn;
	const char *hash_key; /* the table's HASH attribute */
	bool dry_run;
	FILE *out;
	struct dda_restore_stats *st;
	struct dda_error *err;
};

int dda__undo_init(struct dda__undo *u, const struct dda_restore_opts *ro);
void dda__undo_release(struct dda__undo *u);
int dda__undo_visit(void *ctx, const struct dda_event_view *e);
int dda__undo_run(struct dda__undo *u, struct dda__undo_ctx *x);

#endif
