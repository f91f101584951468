/* ddbaudit reconcile: the log's current item states against the live
 * table (see reconcile.h). */
#include "audit/audit_impl.h"
#include "ddb/ddb.h"
#include "ddbaudit/canon.h"
#include "ddbaudit/reconcile.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The exportTime of a baseline: that of the first full-export data file
 * its source yields (the source reads the export's summary first). */
int dda__baseline_time(const struct dda_audit_opts *ao, const char *spec, int64_t *out,
			struct dda_error *err)
{
	struct dda_objtab *objs = dda_objtab_new();
	struct dda_source *src = NULL;
	struct dda_source_opts so = ao->src;
	struct dda_chunk c;
	so.range.from = so.range.to = DDA_TIME_NONE;
	so.list_only = true;
	so.late = false;
	if (!so.aws.stop)
		so.aws.stop = ao->stop;
	*out = DDA_TIME_NONE;
	dda_chunk_init(&c);
	int rc = objs ? dda_source_open(&src, spec, objs, &so, err)
		      : dda_error_set(err, DDA_ENOMEM, "out of memory");
	while (!rc && *out == DDA_TIME_NONE) {
		int n = dda_source_next(src, &c, err);
		if (n <= 0) {
			rc = n;
			break;
		}
		const struct dda_object *ob = dda_objtab_get(objs, c.obj);
		if (ob && ob->exp.kind == DDA_EXPORT_FULL)
			*out = ob->exp.time;
	}
	if (!rc && *out == DDA_TIME_NONE)
		rc = dda_error_set(err, DDA_EINVAL,
				   "--baseline '%s' holds no full DynamoDB export (AWSDynamoDB/<id>/ "
				   "with a FULL_EXPORT manifest-summary.json and data files)",
				   spec);
	dda_chunk_release(&c);
	dda_source_free(src);
	dda_objtab_free(objs);
	return rc;
}

/* One item of either side: its key (in an arena), key hash and digest. */
struct entry {
	uint64_t khash;
	size_t key_off; /* into the side's arena until resolved */
	const uint8_t *key;
	uint32_t key_len;
	bool present, digest_known;
	uint8_t digest[DDA_DIGEST_LEN];
	int64_t time;	       /* log: the last change's time */
	uint32_t obj, index;   /* log: where the last change is */
	int event;	       /* log: the last change's event */
};

struct side {
	struct entry *v;
	size_t n, cap;
	struct dda_buf keys;
};

struct scan_ctx {
	const struct dda_ddb_table *t;
	struct side seg[64];
	struct dda_error err; /* first item that could not be read */
	pthread_mutex_t mu;
	volatile int *stop;
};

static int side_push(struct side *s, const struct entry *e, const void *key, size_t key_len)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		struct entry *nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	struct entry *d = &s->v[s->n];
	*d = *e;
	d->key_off = s->keys.len;
	d->key_len = (uint32_t)key_len;
	if (dda_buf_add(&s->keys, key, key_len))
		return DDA_ENOMEM;
	s->n++;
	return 0;
}

static void side_release(struct side *s)
{
	free(s->v);
	dda_buf_release(&s->keys);
	memset(s, 0, sizeof(*s));
}

static void side_resolve(struct side *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->v[i].key = (const uint8_t *)s->keys.ptr + s->v[i].key_off;
}

static int cmp_key(const uint8_t *ak, size_t al, uint64_t ah, const uint8_t *bk, size_t bl,
		   uint64_t bh)
{
	if (ah != bh)
		return ah < bh ? -1 : 1;
	int c = memcmp(ak, bk, DDA_MIN(al, bl));
	return c ? c : al < bl ? -1 : al > bl;
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	return cmp_key(a->key, a->key_len, a->khash, b->key, b->key_len, b->khash);
}

/* The key and digest of a table item. */
static int table_entry(const struct dda_ddb_table *t, json_t *item, struct entry *e,
		       struct dda_buf *key, struct dda_buf *why)
{
	const char *names[2] = {t->key_names[0], t->key_names[1]};
	dda_buf_reset(key);
	int rc = dda_canon_key(item, names, t->nkeys, "Item", key, why);
	if (!rc)
		rc = dda_canon_digest(item, "Item", e->digest, why);
	if (rc)
		return rc;
	e->khash = dda_history_key_hash((const uint8_t *)key->ptr, key->len);
	e->present = e->digest_known = true;
	return 0;
}

static int on_item(void *ctx, int segment, json_t *item)
{
	struct scan_ctx *x = ctx;
	struct entry e = {0};
	struct dda_buf key, why;
	dda_buf_init(&key, 1 << 20);
	dda_buf_init(&why, 4096);
	int rc = table_entry(x->t, item, &e, &key, &why);
	if (!rc)
		rc = side_push(&x->seg[segment], &e, key.ptr, key.len);
	else if (rc == DDA_EFORMAT) {
		pthread_mutex_lock(&x->mu);
		if (!x->err.code)
			dda_error_set(&x->err, DDA_EFORMAT, "a table item is not valid: %s",
				      why.ptr ? why.ptr : "");
		pthread_mutex_unlock(&x->mu);
	}
	dda_buf_release(&key);
	dda_buf_release(&why);
	if (x->stop && *x->stop)
		return DDA_EINTR;
	return rc;
}

/* The table's items, sorted in key-hash order, into *out. */
static int scan_table(struct dda_ddb *d, const struct dda_ddb_table *t,
		      const struct dda_reconcile_opts *ro, volatile int *stop, struct side *out,
		      struct dda_error *err)
{
	struct scan_ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	x->t = t;
	x->stop = stop;
	pthread_mutex_init(&x->mu, NULL);
	for (int s = 0; s < 64; s++)
		dda_buf_init(&x->seg[s].keys, SIZE_MAX / 2);
	dda_buf_init(&out->keys, SIZE_MAX / 2);
	int rc = dda__ddb_scan(d, ro->segments, ro->consistent, on_item, x, err);
	if (!rc && x->err.code)
		rc = dda_error_set(err, x->err.code, "%s", x->err.msg);
	for (int s = 0; !rc && s < 64; s++) {
		side_resolve(&x->seg[s]);
		for (size_t i = 0; !rc && i < x->seg[s].n; i++)
			rc = side_push(out, &x->seg[s].v[i], x->seg[s].v[i].key,
				       x->seg[s].v[i].key_len);
	}
	if (rc == DDA_ENOMEM && !err->code)
		dda_error_set(err, rc, "out of memory holding the table's keys");
	for (int s = 0; s < 64; s++)
		side_release(&x->seg[s]);
	pthread_mutex_destroy(&x->mu);
	free(x);
	if (!rc) {
		side_resolve(out);
		qsort(out->v, out->n, sizeof(*out->v), cmp_entry);
	}
	return rc;
}

static int on_end(void *ctx, const struct dda_item_end *end);

/* The export's items (its states, already in key-hash order), read by an
 * audit of the export alone: its item counts and checksums are checked as
 * verify checks them, and an export that is not whole is refused. */
static int read_export(const struct dda_audit_opts *ao, const char *spec, struct side *out,
		       struct dda_error *err)
{
	struct dda_audit_opts eo = *ao;
	struct dda_result er;
	eo.source = spec;
	eo.baseline_source = NULL;
	eo.src.range.from = eo.src.range.to = DDA_TIME_NONE;
	eo.dec.range = eo.src.range;
	eo.src.late = false;
	eo.manifest_path = NULL;
	eo.diffs = false;
	eo.progress = NULL;
	eo.visit = NULL;
	eo.finished = NULL;
	eo.ignore = 0;
	eo.baseline = NULL;
	eo.state_ctx = out;
	eo.prior = NULL; /* nothing carried: every item starts empty */
	eo.end = on_end;
	dda_buf_init(&out->keys, SIZE_MAX / 2);
	int rc = dda_audit_run(&eo, &er, err);
	if (!rc && er.fatal.code)
		rc = dda_error_set(err, er.fatal.code, "the export '%s' could not be read whole: %s",
				   spec, er.fatal.msg);
	for (size_t i = 0; !rc && i < er.nanomalies; i++)
		if (er.anomalies[i].severity == DDA_SEV_ERROR)
			rc = dda_error_set(err, DDA_EFORMAT, "the export '%s' is not whole: %s: %s",
					   spec, dda_kind_name(er.anomalies[i].kind),
					   er.anomalies[i].detail ? er.anomalies[i].detail : "");
	if (!rc && er.sum.states != out->n)
		rc = dda_error_set(err, DDA_EFORMAT,
				   "the export '%s' holds %llu item states for %zu items: an item "
				   "twice",
				   spec, (unsigned long long)er.sum.states, out->n);
	dda_result_release(&er);
	if (!rc)
		side_resolve(out);
	return rc;
}

/* The history's end hook: what the log says of each item, already in
 * key-hash order. */
static int on_end(void *ctx, const struct dda_item_end *end)
{
	struct side *log = ctx;
	struct entry e = {
	    .khash = dda_history_key_hash(end->key, end->key_len),
	    .present = end->present,
	    .digest_known = end->digest_known,
	    .time = end->time,
	    .obj = end->obj,
	    .index = end->index,
	    .event = end->event,
	};
	if (end->digest_known)
		memcpy(e.digest, end->digest, DDA_DIGEST_LEN);
	return side_push(log, &e, end->key, end->key_len);
}

struct finder {
	struct dda__anomaly_vec found;
	uint64_t *uncertain; /* key hashes of items with an error in the log, sorted */
	size_t nuncertain;
	struct dda_reconcile_stats *st;
	struct dda_ddb_conn *conn;
	const struct dda_ddb_table *t;
	int rc;
	struct dda_error err;
};

static int cmp_u64(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	return a < b ? -1 : a > b;
}

uint64_t *dda__error_key_hashes(const struct dda_result *res, size_t *n)
{
	uint64_t *v = malloc((res->nanomalies + 1) * sizeof(uint64_t));
	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		if (a->key && a->severity == DDA_SEV_ERROR)
			v[(*n)++] = dda_history_key_hash(a->key, a->key_len);
	}
	qsort(v, *n, sizeof(uint64_t), cmp_u64);
	return v;
}

bool dda__key_hash_listed(const uint64_t *v, size_t n, uint64_t khash)
{
	return n && bsearch(&khash, v, n, sizeof(uint64_t), cmp_u64);
}

static int collect_uncertain(struct finder *f, const struct dda_result *res)
{
	f->uncertain = dda__error_key_hashes(res, &f->nuncertain);
	return f->uncertain ? 0 : DDA_ENOMEM;
}

static bool uncertain(const struct finder *f, uint64_t khash)
{
	return dda__key_hash_listed(f->uncertain, f->nuncertain, khash);
}

DDA_PRINTF(4, 5)
static void finding(struct finder *f, int kind, const struct entry *e, const char *fmt, ...)
{
	if (f->rc)
		return;
	struct dda_anomaly a = {.kind = kind,
				.severity = dda_kind_severity(kind),
				.obj = e->obj,
				.index = e->index,
				.time = e->time,
				.prev_obj = DDA_NO_OBJECT};
	struct dda_buf d;
	dda_buf_init(&d, 1 << 16);
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(&d, fmt, ap);
	va_end(ap);
	if (!rc && kind != DDA_K_UNLOGGED_ITEM && uncertain(f, e->khash))
		rc = dda_buf_adds(&d, "; the log's own history of the item has errors (see its "
				      "findings): the log's state is uncertain");
	a.detail = dda_buf_take(&d, NULL);
	a.key = malloc(e->key_len ? e->key_len : 1);
	dda_buf_release(&d);
	if (rc || !a.detail || !a.key) {
		dda_anomaly_release(&a);
		f->rc = DDA_ENOMEM;
		return;
	}
	memcpy(a.key, e->key, e->key_len);
	a.key_len = e->key_len;
	f->rc = dda__anomaly_push(&f->found, &a);
}

/* The table's item of key now (a consistent GetItem), as an entry: present
 * false when there is none. */
static int reread(struct finder *f, const struct entry *log, struct entry *out)
{
	json_t *key = dda_canon_to_json(log->key, log->key_len), *item = NULL;
	struct dda_buf kb, why;
	if (!key)
		return DDA_ENOMEM;
	int rc = dda__ddb_get(f->conn, key, true, &item, &f->err);
	json_decref(key);
	memset(out, 0, sizeof(*out));
	out->key = log->key;
	out->key_len = log->key_len;
	out->khash = log->khash;
	f->st->reread++;
	if (rc || !item)
		return rc;
	dda_buf_init(&kb, 1 << 20);
	dda_buf_init(&why, 4096);
	rc = table_entry(f->t, item, out, &kb, &why);
	if (rc == DDA_EFORMAT)
		dda_error_set(&f->err, rc, "a table item is not valid: %s", why.ptr ? why.ptr : "");
	dda_buf_release(&kb);
	dda_buf_release(&why);
	json_decref(item);
	return rc;
}

static void judge(struct finder *f, const struct entry *log, const struct entry *tab)
{
	char d1[2 * DDA_DIGEST_LEN + 1], d2[2 * DDA_DIGEST_LEN + 1];
	if (!log) {
		f->st->unlogged++;
		finding(f, DDA_K_UNLOGGED_ITEM, tab,
			"the table holds the item; the log has no change of it");
		return;
	}
	bool in_table = tab && tab->present;
	if (log->present && !in_table) {
		f->st->missing++;
		finding(f, DDA_K_MISSING_ITEM, log,
			"the log's last change (%s) leaves the item in the table; the table does "
			"not have it",
			dda_event_name_str(log->event));
		return;
	}
	if (!log->present && in_table) {
		f->st->drift++;
		finding(f, DDA_K_STATE_DRIFT, log,
			"the log's last change is a REMOVE; the table still has the item");
		return;
	}
	if (!log->present) {
		f->st->matched++;
		return;
	}
	if (!log->digest_known) {
		f->st->unknown++; /* no new image in the log: presence is all there is */
		return;
	}
	if (!memcmp(log->digest, tab->digest, DDA_DIGEST_LEN)) {
		f->st->matched++;
		return;
	}
	f->st->drift++;
	dda__hex(log->digest, DDA_DIGEST_LEN, d1);
	dda__hex(tab->digest, DDA_DIGEST_LEN, d2);
	finding(f, DDA_K_STATE_DRIFT, log,
		"the table's item differs from the image of the log's last change (%s): "
		"log %.16s, table %.16s",
		dda_event_name_str(log->event), d1, d2);
	if (!f->rc) {
		struct dda_anomaly *a = &f->found.v[f->found.n - 1];
		a->has_expected = a->has_found = true;
		memcpy(a->expected, log->digest, DDA_DIGEST_LEN);
		memcpy(a->found, tab->digest, DDA_DIGEST_LEN);
	}
}

/* Merge-joins the two sides, both in key-hash order. */
static void merge(struct finder *f, const struct side *log, const struct side *tab,
		  int64_t scan_started)
{
	size_t i = 0, j = 0;
	while (!f->rc && (i < log->n || j < tab->n)) {
		const struct entry *l = i < log->n ? &log->v[i] : NULL;
		const struct entry *t = j < tab->n ? &tab->v[j] : NULL;
		int c = !l ? 1 : !t ? -1 : cmp_entry(l, t);
		if (c > 0) {
			judge(f, NULL, t);
			j++;
			continue;
		}
		if (c == 0)
			j++;
		i++;
		if (l->time != DDA_TIME_NONE && l->time >= scan_started) {
			/* Changed while the table was read: judge what it is now. */
			struct entry now;
			f->rc = reread(f, l, &now);
			if (!f->rc)
				judge(f, l, &now);
			continue;
		}
		judge(f, l, c == 0 ? t : NULL);
	}
}

/* The attribute diff of each STATE_DRIFT between two images (the log's
 * last new image, the table's item now), bounded like verify's GAP diffs. */
static void drift_diffs(struct finder *f, struct dda_audit_fetch *fetch)
{
	size_t done = 0;
	for (size_t i = 0; i < f->found.n && done < DDA_MAX_DIFFS; i++) {
		struct dda_anomaly *an = &f->found.v[i];
		json_t *old = NULL, *img = NULL, *live = NULL, *key = NULL;
		if (an->kind != DDA_K_STATE_DRIFT || !an->has_expected || an->obj == DDA_NO_OBJECT)
			continue;
		done++;
		if (!dda_audit_fetch(fetch, an->obj, an->index, &old, &img) && img && f->conn &&
		    (key = dda_canon_to_json(an->key, an->key_len)) &&
		    !dda__ddb_get(f->conn, key, true, &live, &f->err) && live) {
			an->diff = dda_canon_diff(img, live);
			dda__describe_diff(an);
		}
		json_decref(old);
		json_decref(img);
		json_decref(live);
		json_decref(key);
		f->err.code = 0; /* a diff that cannot be made is only a diff less */
		f->err.msg[0] = '\0';
	}
}

/* The audit's finished hook: the log's states are known and its objects can
 * still be read, so the join is made here, with the drifts' diffs. */
struct join {
	struct side *log, *tab;
	struct finder *f;
	struct dda_reconcile_stats *st;
	int rc;
};

static int join_finished(void *ctx, struct dda_audit_fetch *fetch, struct dda_result *res)
{
	struct join *j = ctx;
	struct finder *f = j->f;
	side_resolve(j->log);
	j->st->log_items = j->log->n;
	/* An incomplete log cannot say what the table should hold. */
	if (res->fatal.code)
		return 0;
	int rc = collect_uncertain(f, res);
	if (!rc) {
		merge(f, j->log, j->tab, j->st->scan_started);
		rc = f->rc;
	}
	if (!rc && fetch)
		drift_diffs(f, fetch);
	if (!rc) {
		rc = dda_result_add(res, f->found.v, f->found.n);
		f->found.n = 0;
	}
	return j->rc = rc;
}

int dda_reconcile_run(struct dda_audit_opts *ao, const struct dda_reconcile_opts *ro,
		      struct dda_result *res, struct dda_reconcile_stats *st,
		      struct dda_error *err)
{
	struct dda_env env = {dda__process_env, NULL, NULL};
	struct dda_ddb_opts dopts = {.aws = ao->src.aws, .max_rcu = ro->max_rcu};
	struct dda_ddb *d = NULL;
	struct dda_ddb_table t;
	struct side log = {0}, tab = {0};
	struct finder f = {.st = st};
	memset(st, 0, sizeof(*st));
	memset(res, 0, sizeof(*res));
	if (!dopts.aws.stop)
		dopts.aws.stop = ao->stop;
	int rc = 0;
	st->export_time = DDA_TIME_NONE;
	if (ro->export) {
		rc = dda__baseline_time(ao, ro->export, &st->export_time, err);
		if (!rc)
			rc = read_export(ao, ro->export, &tab, err);
		if (rc) {
			side_release(&tab);
			return rc;
		}
		snprintf(st->table, sizeof(st->table), "%s", ro->export);
		st->table_items = tab.n;
		/* The log's states at the export's time; no item is read again. */
		st->scan_started = st->scan_finished = INT64_MAX;
		ao->src.range.to = ao->dec.range.to = st->export_time + 1;
		goto audit;
	}
	rc = dda__ddb_new(&d, ro->table, &dopts, &env, err);
	if (!rc && !(f.conn = dda__ddb_conn_new(d)))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc)
		rc = dda__ddb_describe(f.conn, &t, err);
	if (!rc) {
		snprintf(st->table, sizeof(st->table), "%s", t.name);
		snprintf(st->table_arn, sizeof(st->table_arn), "%s", t.arn);
		bool same = t.nkeys == ao->dec.nkeys;
		for (size_t k = 0; same && k < t.nkeys; k++)
			same = !strcmp(t.key_names[k], ao->dec.key_names[k]);
		if (!same)
			rc = dda_error_set(
			    err, DDA_EINVAL,
			    "table '%s' is keyed by %s%s%s, the log by --key-schema %s%s%s", t.name,
			    t.key_names[0], t.nkeys > 1 ? "," : "", t.nkeys > 1 ? t.key_names[1] : "",
			    ao->dec.key_names[0], ao->dec.nkeys > 1 ? "," : "",
			    ao->dec.nkeys > 1 ? ao->dec.key_names[1] : "");
	}
	if (!rc) {
		st->scan_started = dda_time_now();
		rc = scan_table(d, &t, ro, ao->stop, &tab, err);
		st->scan_finished = dda_time_now();
		st->table_items = tab.n;
	}
	if (rc)
		goto out;
audit:
	dda_buf_init(&log.keys, SIZE_MAX / 2);
	f.t = &t;
	struct join j = {.log = &log, .tab = &tab, .f = &f, .st = st};
	ao->state_ctx = &log;
	ao->prior = NULL; /* nothing carried: every item starts empty */
	ao->end = on_end;
	ao->finished = join_finished;
	ao->finished_ctx = &j;
	rc = dda_audit_run(ao, res, err);
	ao->state_ctx = ao->finished_ctx = NULL;
	ao->prior = NULL;
	ao->end = NULL;
	ao->finished = NULL;
	if (rc)
		goto out;
	if (j.rc) {
		/* A result was produced: the failure makes it incomplete. */
		if (f.err.code)
			*err = f.err;
		else
			dda_error_set(err, j.rc, "comparing the log with the table failed: %s",
				      dda_strerror(j.rc));
		if (!res->fatal.code)
			res->fatal = *err;
	}
out:
	if (d) {
		struct dda_ddb_stats ds;
		dda__ddb_stats(d, &ds);
		st->rcu = ds.rcu;
		st->throttles = ds.throttles;
	}
	for (size_t i = 0; i < f.found.n; i++)
		dda_anomaly_release(&f.found.v[i]);
	free(f.found.v);
	free(f.uncertain);
	side_release(&log);
	side_release(&tab);
	dda__ddb_conn_free(f.conn);
	dda__ddb_free(d);
	return rc;
}
