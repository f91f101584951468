/* Internal to the audit pipeline: the growable vectors it collects findings
 * and hour statistics in, shared by audit.c and complete.c. */
#ifndef DDA_AUDIT_IMPL_H
#define DDA_AUDIT_IMPL_H

#include "util/util.h"
#include "ddbaudit/audit.h"

struct dda__anomaly_vec {
	struct dda_anomaly *v;
	size_t n, cap;
};

struct dda__hour_vec {
	struct dda_hour_stat *v;
	size_t n, cap;
};

/* The order of a result's findings: by object, position, kind, time. */
int dda__anomaly_cmp(const void *pa, const void *pb);

/* Appends a (taken: on failure it is released); 0 or DDA_ENOMEM. */
int dda__anomaly_push(struct dda__anomaly_vec *v, struct dda_anomaly *a);

/* A finished run on its way to the result. Borrowed pointers. */
struct dda__audit_ctx {
	const struct dda_audit_opts *o;
	struct dda_result *res;
	struct dda__anomaly_vec *all;
	struct dda__hour_vec *hours; /* sorted by hour */
};

/* Completeness findings (EMPTY_RANGE, MISSING_HOUR), rows for the empty
 * hours of the range, and slack-hour findings deferred to the run that owns
 * them. Runs before severities are counted. 0 or DDA_ENOMEM; a check that
 * cannot be made leaves res->fatal set. */
int dda__complete(struct dda__audit_ctx *x);

/* Noise control (baseline.c): adds a BASELINE_EXPIRED finding for each
 * expired entry, then takes the ignored and baseline-matched findings out
 * of x->all, counting them by kind. Runs before severities are counted.
 * 0 or DDA_ENOMEM. */
int dda__noise_filter(struct dda__audit_ctx *x);

/* Appends the attribute names of an->diff to its detail, for humans:
 * "... (changed: Timestamp, Version; added: Tags)". */
void dda__describe_diff(struct dda_anomaly *an);

/* The key hashes of the items with an error among a result's findings,
 * sorted (malloc'd; *n of them), or NULL when memory ran out; and whether a
 * hash is among them. */
uint64_t *dda__error_key_hashes(const struct dda_result *res, size_t *n);
bool dda__key_hash_listed(const uint64_t *v, size_t n, uint64_t khash);

/* Sharded runs (shard.c). Whether this shard counts the records of an
 * object (one every shard reads is counted by shard 0); whether it keeps a
 * decoding finding on an object (one every shard reads: the shard of its
 * item, or shard 0 for a finding without one); and what it does with a
 * valid record: 1 apply it, 0 leave it to the shard of its item, which
 * reads its object too, or 0 after adding a SHARD_SPLIT finding to out
 * when that shard never reads the object. A negative error otherwise. */
/* The name the seed writer files an item under, "<hash>-<range>.json",
 * into out (a string): 0, 1 when the key has no such name, or DDA_ENOMEM. */
int dda__item_seed_name(const uint8_t *key, size_t n, const struct dda_decoder_opts *dec,
			struct dda_buf *out);
bool dda__shard_counts(const struct dda_audit_opts *o, const struct dda_object *ob);
bool dda__shard_keeps_finding(const struct dda_audit_opts *o, const struct dda_object *ob,
			      const struct dda_anomaly *an);
int dda__shard_record(const struct dda_audit_opts *o, const struct dda_record *r,
		      struct dda__anomaly_vec *out);

/* The exportTime of a baseline (a full DynamoDB export under spec): that
 * of the first full-export data file its source yields. DDA_EINVAL when
 * spec holds no full export. */
int dda__baseline_time(const struct dda_audit_opts *ao, const char *spec, int64_t *out,
		       struct dda_error *err);

#endif
