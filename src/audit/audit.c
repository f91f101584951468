/* The audit pipeline: the calling thread reads chunks from the source and
 * writes the manifest; worker threads decode and validate, each into its own
 * history and anomaly list; at the end the histories are merged and checked,
 * GAP diffs are computed from re-read objects, and findings are sorted into
 * a deterministic order whatever the thread interleaving was. */
#include "audit/audit_impl.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

/* Chunks travel in batches: one object is often a few hundred bytes, and
 * handing each to a thread on its own costs more than decoding it. A batch
 * closes at BATCH_CHUNKS chunks or BATCH_BYTES bytes. The queue holds enough
 * batches to keep every core busy, bounded so a fast reader cannot run ahead
 * by gigabytes. */
#define BATCH_CHUNKS 256
#define BATCH_BYTES ((size_t)1 << 20)
#define QUEUE_SLOTS 32
#define PROGRESS_EVERY (DDA_USEC_PER_SEC / 5)
#define MAX_THREADS 64

struct batch {
	struct dda_chunk c[BATCH_CHUNKS];
	size_t n, bytes;
};

struct queue {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	struct batch *slot[QUEUE_SLOTS];
	size_t head, n;
	bool closed;
};

struct audit;

struct worker {
	struct audit *a;
	pthread_t tid;
	struct dda_decoder *dec;
	struct dda_history *hist;
	struct dda__anomaly_vec anomalies;
	struct dda__hour_vec hours;
	struct dda_decode_counts counts;
	int64_t cur_hour;
	int rc;
};

struct audit {
	const struct dda_audit_opts *o;
	struct dda_result *res;
	struct queue q;
	pthread_mutex_t hook_mu; /* serializes on_record */
	struct worker w[MAX_THREADS];
	int nworkers;
	uint64_t records_done; /* atomically updated by workers */
	struct dda_source *src;
	struct dda_history_budget *budget; /* --memory-limit, or NULL */
};

/* ---- queue ---- */

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		dda_chunk_release(&b->c[i]);
	free(b);
}

static int queue_init(struct queue *q)
{
	memset(q, 0, sizeof(*q));
	if (pthread_mutex_init(&q->mu, NULL))
		return DDA_ENOMEM;
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	return 0;
}

static void queue_destroy(struct queue *q)
{
	for (size_t i = 0; i < q->n; i++)
		batch_free(q->slot[(q->head + i) % QUEUE_SLOTS]);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
}

/* Takes the batch. */
static void queue_push(struct queue *q, struct batch *b)
{
	pthread_mutex_lock(&q->mu);
	while (q->n == QUEUE_SLOTS)
		pthread_cond_wait(&q->not_full, &q->mu);
	q->slot[(q->head + q->n) % QUEUE_SLOTS] = b;
	q->n++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
}

static struct batch *queue_pop(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	while (!q->n && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->mu);
	struct batch *b = NULL;
	if (q->n) {
		b = q->slot[q->head];
		q->head = (q->head + 1) % QUEUE_SLOTS;
		q->n--;
		pthread_cond_signal(&q->not_full);
	}
	pthread_mutex_unlock(&q->mu);
	return b;
}

static void queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
}

/* ---- per-worker collections ---- */

int dda__anomaly_push(struct dda__anomaly_vec *v, struct dda_anomaly *a)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct dda_anomaly *nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv) {
			dda_anomaly_release(a);
			return DDA_ENOMEM;
		}
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = *a;
	return 0;
}

static struct dda_hour_stat *hour_get(struct dda__hour_vec *v, int64_t hour)
{
	for (size_t i = v->n; i-- > 0;)
		if (v->v[i].hour == hour)
			return &v->v[i];
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 32;
		struct dda_hour_stat *nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		v->v = nv;
		v->cap = cap;
	}
	struct dda_hour_stat *h = &v->v[v->n++];
	memset(h, 0, sizeof(*h));
	h->hour = hour;
	return h;
}

/* ---- workers ---- */

static int sink_anomaly(void *ctx, struct dda_anomaly *an)
{
	struct worker *w = ctx;
	const struct dda_object *ob =
	    an->obj != DDA_NO_OBJECT ? dda_objtab_get(w->a->res->objs, an->obj) : NULL;
	if (!dda__shard_keeps_finding(w->a->o, ob, an)) {
		dda_anomaly_release(an);
		return 0;
	}
	return dda__anomaly_push(&w->anomalies, an);
}

static int sink_record(void *ctx, const struct dda_record *r)
{
	struct worker *w = ctx;
	const struct dda_audit_opts *o = w->a->o;
	int rc = dda__shard_record(o, r, &w->anomalies);
	if (rc <= 0)
		return rc; /* another shard's item */
	rc = dda_history_add(w->hist, r);
	if (rc || !o->on_record)
		return rc;
	if (o->only_key &&
	    (r->key_len != o->only_key_len || memcmp(r->key, o->only_key, r->key_len)))
		return 0;
	if (o->on_record_concurrent)
		return o->on_record(o->ctx, r);
	pthread_mutex_lock(&w->a->hook_mu);
	rc = o->on_record(o->ctx, r);
	pthread_mutex_unlock(&w->a->hook_mu);
	return rc;
}

static void decode_one(struct worker *w, const struct dda_chunk *c,
		       const struct dda_decode_sink *sink)
{
	struct dda_decode_counts before = w->counts;
	const struct dda_object *ob = dda_objtab_get(w->a->res->objs, c->obj);
	if (!w->rc)
		w->rc = dda_decode_chunk(w->dec, c, sink, &w->counts);
	if (!dda__shard_counts(w->a->o, ob))
		w->counts = before; /* shard 0 counts what every shard reads */
	uint64_t done = w->counts.records - before.records;
	if (ob && ob->hour != DDA_TIME_NONE && done) {
		struct dda_hour_stat *h = hour_get(&w->hours, ob->hour);
		if (!h)
			w->rc = DDA_ENOMEM;
		else
			h->records += done;
	}
	__atomic_add_fetch(&w->a->records_done, done, __ATOMIC_RELAXED);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct dda_decode_sink sink = {w, sink_record, sink_anomaly};
	struct batch *b;
	while ((b = queue_pop(&w->a->q)) != NULL) {
		for (size_t i = 0; i < b->n; i++)
			decode_one(w, &b->c[i], &sink);
		batch_free(b);
	}
	/* Input has ended and every object is listed: sort this thread's
	 * events here, in parallel with the other workers, so that analysis
	 * only merges. Out of memory leaves them unsorted: analysis sorts
	 * them again and reports a failure there. */
	if (!w->rc)
		(void)dda_history_sort(w->hist, w->a->res->objs);
	return NULL;
}

/* ---- reading ---- */

static int manifest_line(struct dda_buf *line, const struct dda_object *ob,
			 const struct dda_range *range)
{
	char t[DDA_TIME_STRLEN], hex[2 * DDA_SHA256_LEN + 1];
	/* Names that are not UTF-8 are escaped, with their bytes in "key_b64"
	 * (docs/report.md): every line stays JSON. */
	int rc = dda_buf_addc(line, '{');
	if (!rc)
		rc = dda__json_name(line, "key", ob->key, strlen(ob->key));
	if (!rc && ob->version) {
		rc = dda_buf_addc(line, ',');
		if (!rc)
			rc = dda__json_name(line, "versionId", ob->version, strlen(ob->version));
	}
	if (!rc && ob->etag) {
		rc = dda_buf_addc(line, ',');
		if (!rc)
			rc = dda__json_name(line, "etag", ob->etag, strlen(ob->etag));
	}
	if (!rc)
		rc = dda_buf_addf(line, ",\"size\":%lld", (long long)ob->size);
	if (!rc && ob->last_modified != DDA_TIME_NONE)
		rc = dda_buf_addf(line, ",\"lastModified\":\"%s\"",
				  dda_time_format(ob->last_modified, false, t));
	if (!rc && ob->sha_valid) {
		dda__hex(ob->sha256, DDA_SHA256_LEN, hex);
		rc = dda_buf_addf(line, ",\"sha256\":\"%s\"", hex);
	}
	if (!rc)
		rc = dda_buf_adds(line, dda_object_in_range(ob, range) ? ",\"in_range\":true"
								       : ",\"in_range\":false");
	if (!rc && ob->late)
		rc = dda_buf_adds(line, ",\"late\":true");
	/* Last, so that merge restores one run's line by cutting it off. */
	if (!rc && ob->listing)
		rc = dda_buf_addf(line, ",\"listing\":%llu", (unsigned long long)ob->listing);
	if (!rc)
		rc = dda_buf_adds(line, "}\n");
	return rc;
}

struct manifest {
	FILE *f;
	struct dda__sha256 sha;
	struct dda_buf line;
};

static int manifest_write(struct manifest *m, const struct dda_object *ob,
			  const struct dda_range *range, struct dda_error *err)
{
	if (!m->f)
		return 0;
	dda_buf_reset(&m->line);
	if (manifest_line(&m->line, ob, range))
		return dda_error_set(err, DDA_ENOMEM, "out of memory writing the manifest");
	dda__sha256_update(&m->sha, m->line.ptr, m->line.len);
	if (fwrite(m->line.ptr, 1, m->line.len, m->f) != m->line.len)
		return dda_error_set(err, DDA_EIO, "cannot write the manifest: %s",
				     strerror(errno));
	return 0;
}

static void progress(struct audit *a, int64_t start, int64_t *last, bool done)
{
	const struct dda_audit_opts *o = a->o;
	int64_t now = dda_time_now();
	if (!o->progress || (!done && now - *last < PROGRESS_EVERY))
		return;
	*last = now;
	struct dda_progress p = {
	    .objects = a->res->sum.objects,
	    .records = __atomic_load_n(&a->records_done, __ATOMIC_RELAXED),
	    .bytes = a->res->sum.bytes,
	    .elapsed = now - start,
	    .done = done,
	};
	o->progress(o->progress_ctx ? o->progress_ctx : o->ctx, &p);
}

static int count_object(struct audit *a, const struct dda_object *ob, struct dda__hour_vec *hours)
{
	a->res->sum.objects++;
	if (ob->size > 0)
		a->res->sum.bytes += (uint64_t)ob->size;
	if (ob->hour == DDA_TIME_NONE)
		return 0;
	struct dda_hour_stat *h = hour_get(hours, ob->hour);
	if (!h)
		return DDA_ENOMEM;
	h->objects++;
	return 0;
}

/* Hands the open batch (if any) to the workers. */
static void flush(struct audit *a, struct batch **b)
{
	if (*b && (*b)->n)
		queue_push(&a->q, *b);
	else
		free(*b);
	*b = NULL;
}

/* Reads every chunk into the queue. A source failure is kept in res->fatal
 * (what was read stays in the result); a manifest failure ends the run. */
static int read_all(struct audit *a, struct manifest *m, struct dda__hour_vec *hours,
		    struct dda_error *err)
{
	struct batch *b = NULL;
	int64_t start = dda_time_now(), last = start;
	int rc = 0;
	for (;;) {
		struct dda_error spill_err;
		if (dda_history_budget_error(a->budget, &spill_err)) {
			dda_error_set(&a->res->fatal, spill_err.code,
				      "%s: the event table cannot spill (--memory-limit, --tmp-dir), "
				      "reading stopped: the report covers only what was read",
				      spill_err.msg);
			break;
		}
		if (a->o->stop && *a->o->stop) {
			dda_error_set(&a->res->fatal, DDA_EINTR,
				      "interrupted: the report covers "
				      "only what was read");
			break;
		}
		if (!b && !(b = calloc(1, sizeof(*b)))) {
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
			break;
		}
		struct dda_chunk *c = &b->c[b->n];
		dda_chunk_init(c);
		int got = dda_source_next(a->src, c, &a->res->fatal);
		if (got <= 0) {
			dda_chunk_release(c);
			if (got < 0 && !a->res->fatal.code)
				dda_error_set(&a->res->fatal, got, "reading the source failed: %s",
					      dda_strerror(got));
			break;
		}
		if (c->last) {
			const struct dda_object *ob = dda_objtab_get(a->res->objs, c->obj);
			rc = manifest_write(m, ob, &a->o->src.range, err);
			if (!rc && count_object(a, ob, hours))
				rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
			if (rc) {
				dda_chunk_release(c);
				break;
			}
		}
		b->n++;
		b->bytes += c->data.len;
		if (b->n == BATCH_CHUNKS || b->bytes >= BATCH_BYTES) {
			flush(a, &b);
			progress(a, start, &last, false);
		}
	}
	flush(a, &b);
	queue_close(&a->q);
	return rc;
}

/* ---- after reading ---- */

static int merge_hours(struct dda_result *res, struct dda__hour_vec *into,
		       const struct dda__hour_vec *from)
{
	for (size_t i = 0; i < from->n; i++) {
		struct dda_hour_stat *h = hour_get(into, from->v[i].hour);
		if (!h)
			return DDA_ENOMEM;
		h->objects += from->v[i].objects;
		h->records += from->v[i].records;
	}
	(void)res;
	return 0;
}

static int cmp_hour(const void *pa, const void *pb)
{
	const struct dda_hour_stat *a = pa, *b = pb;
	return a->hour < b->hour ? -1 : a->hour > b->hour;
}

int dda__anomaly_cmp(const void *pa, const void *pb)
{
	const struct dda_anomaly *a = pa, *b = pb;
	if (a->obj != b->obj)
		return a->obj < b->obj ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	/* Findings of no object (MISSING_HOUR) in time order. */
	return a->time < b->time ? -1 : a->time > b->time;
}

struct collect {
	struct dda__anomaly_vec *all;
	const struct dda_audit_opts *o;
};

static int history_anomaly(void *ctx, struct dda_anomaly *an)
{
	struct collect *c = ctx;
	return dda__anomaly_push(c->all, an);
}

static int history_visit(void *ctx, const struct dda_event_view *e)
{
	struct collect *c = ctx;
	return c->o->visit(c->o->ctx, e);
}

/* Captures the images of the record at one position of an object. */
struct capture {
	uint32_t index;
	json_t *old_image, *new_image;
	bool found;
};

static int capture_record(void *ctx, const struct dda_record *r)
{
	struct capture *cap = ctx;
	if (r->index != cap->index || cap->found)
		return 0;
	cap->found = true;
	/* A state (full export) is compared as a whole: its item is what it
	 * says the item was, where a change's old image would be. */
	const json_t *old = r->event == DDA_EV_STATE ? r->new_image : r->old_image;
	cap->old_image = old ? json_deep_copy(old) : NULL;
	cap->new_image = r->new_image ? json_deep_copy(r->new_image) : NULL;
	return 0;
}

static int capture_anomaly(void *ctx, struct dda_anomaly *an)
{
	dda_anomaly_release(an);
	return 0;
}

static int fetch_images(struct audit *a, struct dda_decoder *dec, uint32_t obj, uint32_t index,
			struct capture *cap)
{
	struct dda_chunk c;
	struct dda_error err = {0};
	struct dda_decode_counts counts = {0};
	const struct dda_decode_sink sink = {cap, capture_record, capture_anomaly};
	memset(cap, 0, sizeof(*cap));
	cap->index = index;
	dda_chunk_init(&c);
	c.obj = obj;
	c.last = true;
	c.first_line = 1;
	int rc = a->src->ops->reread(a->src, obj, &c.data, &err);
	if (!rc)
		rc = dda_decode_chunk(dec, &c, &sink, &counts);
	dda_chunk_release(&c);
	return rc ? rc : cap->found ? 0 : DDA_ENOTFOUND;
}

/* Every record of one object, kept while the object is the one fetched. */
struct fetched {
	uint32_t index;
	json_t *old_image, *new_image;
};

struct dda_audit_fetch {
	struct audit *a;
	struct dda_decoder *dec;
	uint32_t obj; /* whose records are held, or DDA_NO_OBJECT */
	struct fetched *v;
	size_t n, cap;
	int rc;
};

static void fetch_drop(struct dda_audit_fetch *f)
{
	for (size_t i = 0; i < f->n; i++) {
		json_decref(f->v[i].old_image);
		json_decref(f->v[i].new_image);
	}
	f->n = 0;
	f->obj = DDA_NO_OBJECT;
}

static int fetch_record(void *ctx, const struct dda_record *r)
{
	struct dda_audit_fetch *f = ctx;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct fetched *nv = realloc(f->v, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		f->v = nv;
		f->cap = cap;
	}
	f->v[f->n++] = (struct fetched){r->index, r->old_image ? json_deep_copy(r->old_image) : NULL,
					r->new_image ? json_deep_copy(r->new_image) : NULL};
	return 0;
}

int dda_audit_fetch(struct dda_audit_fetch *f, uint32_t obj, uint32_t index, json_t **old_image,
		    json_t **new_image)
{
	*old_image = *new_image = NULL;
	if (!f)
		return DDA_ENOMEM;
	if (!f->a->src->ops->reread)
		return DDA_EUNSUPPORTED;
	if (obj != f->obj) {
		struct dda_chunk c;
		struct dda_error err = {0};
		struct dda_decode_counts counts = {0};
		const struct dda_decode_sink sink = {f, fetch_record, capture_anomaly};
		fetch_drop(f);
		dda_chunk_init(&c);
		c.obj = obj;
		c.last = true;
		c.first_line = 1;
		int rc = f->a->src->ops->reread(f->a->src, obj, &c.data, &err);
		if (!rc)
			rc = dda_decode_chunk(f->dec, &c, &sink, &counts);
		dda_chunk_release(&c);
		if (rc) {
			fetch_drop(f);
			return rc;
		}
		f->obj = obj;
	}
	for (size_t i = 0; i < f->n; i++) {
		if (f->v[i].index != index)
			continue;
		*old_image = json_incref(f->v[i].old_image);
		*new_image = json_incref(f->v[i].new_image);
		return 0;
	}
	return DDA_ENOTFOUND;
}

int dda_audit_fetch_decode(struct dda_audit_fetch *f, struct dda_decoder *dec, uint32_t obj,
			   const struct dda_decode_sink *sink, struct dda_error *err)
{
	if (!f || !f->a->src->ops->reread)
		return dda_error_set(err, DDA_EUNSUPPORTED, "the source cannot be read again");
	struct dda_chunk c;
	struct dda_decode_counts counts = {0};
	const struct dda_decode_sink s = {sink->ctx, sink->record, capture_anomaly};
	dda_chunk_init(&c);
	c.obj = obj;
	c.last = true;
	c.first_line = 1;
	int rc = f->a->src->ops->reread(f->a->src, obj, &c.data, err);
	if (!rc)
		rc = dda_decode_chunk(dec, &c, &s, &counts);
	dda_chunk_release(&c);
	return rc && !err->code ? dda_error_set(err, rc, "%s", dda_strerror(rc)) : rc;
}

/* The caller's finishing step; what it returns is its own business (the
 * result is complete either way). */
static void run_finished(struct audit *a)
{
	struct dda_decoder_opts dopts = a->o->dec;
	dopts.range.from = dopts.range.to = DDA_TIME_NONE;
	dopts.check_prefix = false;
	dopts.need_images = true;
	struct dda_audit_fetch f = {.a = a, .obj = DDA_NO_OBJECT};
	f.dec = dda_decoder_new(&dopts, a->res->objs);
	a->o->finished(a->o->finished_ctx, f.dec ? &f : NULL, a->res);
	fetch_drop(&f);
	free(f.v);
	dda_decoder_free(f.dec);
}

/* Appends the names in a diff to the anomaly's detail, for humans:
 * "... (changed: Timestamp, Version; added: Tags)". */
void dda__describe_diff(struct dda_anomaly *an)
{
	static const char *const parts[] = {"changed", "added", "removed"};
	struct dda_buf d;
	bool any = false;
	dda_buf_init(&d, 4096);
	int rc = dda_buf_adds(&d, an->detail);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(parts); i++) {
		json_t *names = json_object_get(an->diff, parts[i]);
		const char *name;
		json_t *v;
		bool first = true;
		if (!json_object_size(names))
			continue;
		if (!rc)
			rc = dda_buf_addf(&d, "%s%s: ", any ? "; " : " (", parts[i]);
		any = true;
		json_object_foreach(names, name, v)
		{
			if (!rc)
				rc = dda_buf_addf(&d, "%s%s", first ? "" : ", ", name);
			first = false;
		}
	}
	if (!rc && any && !dda_buf_addc(&d, ')')) {
		free(an->detail);
		an->detail = dda_buf_take(&d, NULL);
	}
	dda_buf_release(&d);
}

/* Adds the attribute diff to each GAP: expected is the previous event's new
 * image, found is this event's old image. Objects are read again, so this
 * is bounded by DDA_MAX_DIFFS and skipped where the source cannot re-read. */
static void add_diffs(struct audit *a, struct dda__anomaly_vec *all)
{
	if (!a->o->diffs || !a->src->ops->reread)
		return;
	struct dda_decoder_opts dopts = a->o->dec;
	dopts.range.from = dopts.range.to = DDA_TIME_NONE;
	dopts.check_prefix = false;
	dopts.need_images = true;
	struct dda_decoder *dec = dda_decoder_new(&dopts, a->res->objs);
	size_t done = 0;
	for (size_t i = 0; dec && i < all->n && done < DDA_MAX_DIFFS; i++) {
		struct dda_anomaly *an = &all->v[i];
		if (an->kind != DDA_K_GAP || an->prev_obj == DDA_NO_OBJECT)
			continue;
		struct capture prev, cur;
		done++;
		if (!fetch_images(a, dec, an->prev_obj, an->prev_index, &prev) &&
		    !fetch_images(a, dec, an->obj, an->index, &cur)) {
			an->diff = dda_canon_diff(prev.new_image, cur.old_image);
			dda__describe_diff(an);
		}
		json_decref(prev.old_image);
		json_decref(prev.new_image);
		json_decref(cur.old_image);
		json_decref(cur.new_image);
	}
	dda_decoder_free(dec);
}

static int analyze(struct audit *a, struct dda__anomaly_vec *all, struct dda_error *err)
{
	const struct dda_audit_opts *o = a->o;
	struct dda_history *h = a->w[0].hist;
	for (int i = 1; i < a->nworkers; i++)
		if (dda_history_merge(h, a->w[i].hist))
			return dda_error_set(err, DDA_ENOMEM, "out of memory merging histories");
	a->res->peak_history_bytes = dda_history_bytes(h);
	struct dda_error spill_err = {0};
	struct collect c = {all, o};
	struct dda_history_opts ho = {
	    .settle_from = o->settle > 0 ? o->now - o->settle : DDA_TIME_NONE,
	    .objs = a->res->objs,
	    .ctx = &c,
	    .anomaly = history_anomaly,
	    .visit = o->visit ? history_visit : NULL,
	    .state_ctx = o->state_ctx,
	    .prior = o->prior,
	    .end = o->end,
	    .err = &spill_err,
	    .threads = (unsigned)a->nworkers,
	};
	struct dda_history_stats st;
	int rc = dda_history_analyze(h, &ho, &st);
	dda_history_budget_stats(a->budget, &a->res->memory.spill);
	/* A spilled run that cannot be read back: the items before it were
	 * checked whole, the run is incomplete. */
	if (rc && spill_err.code) {
		if (!a->res->fatal.code)
			dda_error_set(&a->res->fatal, rc, "%s: histories were checked only in part",
				      spill_err.msg);
	} else if (rc) {
		return dda_error_set(err, rc, "checking histories failed: %s", dda_strerror(rc));
	}
	a->res->sum.items = st.items;
	memcpy(a->res->sum.items_by_events, st.items_by_events, sizeof(st.items_by_events));
	a->res->sum.duplicates = st.duplicates;
	memcpy(a->res->sum.events, st.by_event, sizeof(st.by_event));
	a->res->sum.states = st.states;
	return 0;
}

/* What the source learnt becomes anomalies of the run: the source layer
 * states facts, the audit names them. */
static const struct {
	int kind, severity;
} fact_kinds[] = {
    [DDA_FACT_UNVERSIONED] = {DDA_K_UNVERSIONED_BUCKET, DDA_SEV_WARNING},
    /* Not knowing whether objects can be lost is worth a note, not an alert. */
    [DDA_FACT_VERSIONING_UNKNOWN] = {DDA_K_UNVERSIONED_BUCKET, DDA_SEV_INFO},
    [DDA_FACT_OVERWRITTEN] = {DDA_K_OVERWRITTEN, DDA_SEV_WARNING},
    [DDA_FACT_METADATA_UNREADABLE] = {DDA_K_UNREADABLE, DDA_SEV_ERROR},
    [DDA_FACT_METADATA_MISMATCH] = {DDA_K_EXPORT_MISMATCH, DDA_SEV_ERROR},
    [DDA_FACT_LATE] = {DDA_K_LATE_OBJECT, DDA_SEV_INFO},
};

static int take_findings(struct audit *a, struct dda__anomaly_vec *all)
{
	struct dda_source *src = a->src;
	int rc = 0;
	for (size_t i = 0; i < src->nnotes; i++) {
		struct dda_source_note *f = &src->notes[i];
		size_t fact = (size_t)f->fact;
		bool known = fact < DDA_ARRAY_SIZE(fact_kinds);
		struct dda_anomaly an = {.kind = known ? fact_kinds[fact].kind : DDA_K_UNREADABLE,
					 .severity = known ? fact_kinds[fact].severity
							   : DDA_SEV_ERROR,
					 .obj = f->obj,
					 .time = DDA_TIME_NONE,
					 .detail = f->detail,
					 .prev_obj = DDA_NO_OBJECT};
		f->detail = NULL;
		const struct dda_object *ob =
		    an.obj != DDA_NO_OBJECT ? dda_objtab_get(a->res->objs, an.obj) : NULL;
		if (!dda__shard_keeps_finding(a->o, ob, &an)) /* about the source: shard 0's */
			free(an.detail);
		else if (!rc)
			rc = dda__anomaly_push(all, &an);
		else
			free(an.detail);
	}
	src->nnotes = 0;
	return rc;
}

/* Without every version, a GAP before an object named for its item (the
 * writer's <userId>-<activityId>.json under an hour) is most likely a
 * change that was written under the same name in the same hour and then
 * replaced: say so, and how to get it back. */
static void overwrite_hints(struct audit *a, struct dda__anomaly_vec *all)
{
	if (a->o->src.aws.versions)
		return;
	for (size_t i = 0; i < all->n; i++) {
		struct dda_anomaly *an = &all->v[i];
		if (an->kind != DDA_K_GAP || an->prev_obj == DDA_NO_OBJECT ||
		    an->obj == DDA_NO_OBJECT)
			continue;
		const struct dda_object *cur = dda_objtab_get(a->res->objs, an->obj);
		const struct dda_object *prev = dda_objtab_get(a->res->objs, an->prev_obj);
		if (cur->hour == DDA_TIME_NONE || prev->hour == DDA_TIME_NONE ||
		    strcmp(cur->key + cur->name_off, prev->key + prev->name_off))
			continue;
		struct dda_buf d;
		dda_buf_init(&d, 1 << 16);
		if (!dda_buf_addf(&d,
				  "%s; hint: changes lost to an overwrite; enable bucket "
				  "versioning and use --versions",
				  an->detail)) {
			free(an->detail);
			an->detail = dda_buf_take(&d, NULL);
		}
		dda_buf_release(&d);
	}
}

/* The row of an hour in the sorted hours, or NULL. */
static struct dda_hour_stat *hour_find(struct dda__hour_vec *v, int64_t hour)
{
	size_t lo = 0, hi = v->n;
	if (hour == DDA_TIME_NONE)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->v[mid].hour < hour)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n && v->v[lo].hour == hour ? &v->v[lo] : NULL;
}

static int finish(struct audit *a, struct dda__anomaly_vec *all, struct dda__hour_vec *hours)
{
	struct dda_result *res = a->res;
	res->source = a->src->facts;
	res->sum.prefixes_skipped = a->src->prefixes_skipped;
	res->sum.objects_skipped = a->src->objects_skipped;
	overwrite_hints(a, all);
	dda__sort(hours->v, hours->n, sizeof(*hours->v), cmp_hour);
	struct dda__audit_ctx x = {a->o, res, all, hours};
	int rc = dda__complete(&x);
	if (!rc)
		rc = dda__noise_filter(&x);
	if (rc)
		return rc;
	dda__sort(all->v, all->n, sizeof(*all->v), dda__anomaly_cmp);
	for (size_t i = 0; i < all->n; i++) {
		const struct dda_anomaly *an = &all->v[i];
		res->sum.anomalies[an->severity]++;
		res->sum.by_kind[an->kind]++;
		const struct dda_object *ob =
		    an->obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, an->obj) : NULL;
		/* A finding counts in its object's hour; one about an hour
		 * itself (MISSING_HOUR) in that hour. */
		struct dda_hour_stat *h =
		    hour_find(hours, ob				      ? ob->hour
				     : an->kind == DDA_K_MISSING_HOUR ? an->time
								      : DDA_TIME_NONE);
		if (h)
			h->anomalies++;
	}
	res->anomalies = all->v;
	res->nanomalies = all->n;
	res->hours = hours->v;
	res->nhours = hours->n;
	return 0;
}

static int start_workers(struct audit *a, int n, struct dda_error *err)
{
	for (int i = 0; i < n; i++) {
		struct worker *w = &a->w[i];
		w->a = a;
		struct dda_decoder_opts dopts = a->o->dec;
		dopts.need_images = dopts.need_images || (a->o->on_record && !a->o->on_record_raw);
		dopts.raw_images = a->o->on_record && a->o->on_record_raw;
		w->dec = dda_decoder_new(&dopts, a->res->objs);
		w->hist = dda_history_new_bounded(a->budget);
		if (!w->dec || !w->hist) {
			dda_decoder_free(w->dec);
			dda_history_free(w->hist);
			return dda_error_set(err, DDA_ENOMEM, "out of memory");
		}
		if (pthread_create(&w->tid, NULL, worker_main, w)) {
			dda_decoder_free(w->dec);
			dda_history_free(w->hist);
			return dda_error_set(err, DDA_ENOMEM, "cannot start a thread");
		}
		a->nworkers++;
	}
	return 0;
}

/* Joins the workers and gathers their anomalies, hours and counts. */
static int join_workers(struct audit *a, struct dda__anomaly_vec *all, struct dda__hour_vec *hours)
{
	int rc = 0;
	for (int i = 0; i < a->nworkers; i++) {
		struct worker *w = &a->w[i];
		pthread_join(w->tid, NULL);
		if (w->rc && !rc)
			rc = w->rc;
		for (size_t k = 0; k < w->anomalies.n; k++)
			if (!rc && dda__anomaly_push(all, &w->anomalies.v[k]))
				rc = DDA_ENOMEM;
			else if (rc)
				dda_anomaly_release(&w->anomalies.v[k]);
		w->anomalies.n = 0;
		if (!rc && merge_hours(a->res, hours, &w->hours))
			rc = DDA_ENOMEM;
		struct dda_summary *s = &a->res->sum;
		s->records += w->counts.records;
		s->valid += w->counts.valid;
		s->invalid += w->counts.invalid;
		s->filtered += w->counts.filtered;
	}
	return rc;
}

static void free_workers(struct audit *a)
{
	for (int i = 0; i < a->nworkers; i++) {
		struct worker *w = &a->w[i];
		dda_decoder_free(w->dec);
		dda_history_free(w->hist);
		for (size_t k = 0; k < w->anomalies.n; k++)
			dda_anomaly_release(&w->anomalies.v[k]);
		free(w->anomalies.v);
		free(w->hours.v);
	}
}

static int manifest_open(struct manifest *m, const char *path, struct dda_error *err)
{
	memset(m, 0, sizeof(*m));
	dda_buf_init(&m->line, 1 << 20);
	if (!path)
		return 0;
	m->f = fopen(path, "wb");
	if (!m->f)
		return dda_error_set(err, DDA_EIO, "cannot create '%s': %s", path, strerror(errno));
	return dda__sha256_init(&m->sha);
}

static int manifest_close(struct manifest *m, struct dda_result *res, struct dda_error *err)
{
	int rc = 0;
	if (m->f) {
		uint8_t d[DDA_SHA256_LEN];
		dda__sha256_final(&m->sha, d);
		dda__hex(d, sizeof(d), res->manifest_sha256);
		res->has_manifest = true;
		if (fclose(m->f))
			rc = dda_error_set(err, DDA_EIO, "cannot write the manifest: %s",
					   strerror(errno));
		m->f = NULL;
	}
	dda__sha256_release(&m->sha);
	dda_buf_release(&m->line);
	return rc;
}

static int worker_count(const struct dda_audit_opts *o)
{
	long n = o->threads > 0 ? o->threads : sysconf(_SC_NPROCESSORS_ONLN);
	return (int)DDA_MAX(1, DDA_MIN(n, MAX_THREADS));
}

int dda_audit_run(const struct dda_audit_opts *o, struct dda_result *res, struct dda_error *err)
{
	struct audit *a = calloc(1, sizeof(*a));
	struct dda__anomaly_vec all = {0};
	struct dda__hour_vec hours = {0};
	struct manifest m = {0}; /* all of it: an early failure releases m.sha */
	memset(res, 0, sizeof(*res));
	res->started = dda_time_now();
	res->objs = dda_objtab_new();
	dda_buf_init(&m.line, 0);
	if (!a || !res->objs || queue_init(&a->q)) {
		free(a);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	a->o = o;
	a->res = res;
	res->memory.source = o->memory_limit_source;
	res->memory.spill.limit = o->memory_limit;
	if (o->memory_limit &&
	    !(a->budget = dda_history_budget_new(o->memory_limit, o->tmp_dir, res->objs))) {
		queue_destroy(&a->q);
		free(a);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&a->hook_mu, NULL);
	/* The run's stop flag also ends the source's network waits. */
	struct dda_source_opts so = o->src;
	if (!so.aws.stop)
		so.aws.stop = o->stop;
	int rc = o->baseline_source ? dda_source_open_chain(&a->src, o->baseline_source, o->source,
							    res->objs, &so, err)
				    : dda_source_open(&a->src, o->source, res->objs, &so, err);
	if (!rc)
		rc = manifest_open(&m, o->manifest_path, err);
	if (!rc)
		rc = start_workers(a, worker_count(o), err);
	if (!rc)
		rc = read_all(a, &m, &hours, err);
	else
		queue_close(&a->q);
	int wrc = join_workers(a, &all, &hours);
	if (!rc && wrc)
		rc = dda_error_set(err, wrc, "decoding failed: %s", dda_strerror(wrc));
	if (!rc)
		rc = manifest_close(&m, res, err);
	if (!rc)
		rc = analyze(a, &all, err);
	if (!rc)
		add_diffs(a, &all);
	if (!rc && take_findings(a, &all))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && finish(a, &all, &hours))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (o->progress && !rc) {
		int64_t last = 0;
		progress(a, res->started, &last, true);
	}
	if (!rc && o->finished)
		run_finished(a);
	if (rc) {
		for (size_t i = 0; i < all.n; i++)
			dda_anomaly_release(&all.v[i]);
		free(all.v);
		free(hours.v);
	}
	if (m.f)
		fclose(m.f);
	dda__sha256_release(&m.sha);
	dda_buf_release(&m.line);
	free_workers(a);
	dda_history_budget_free(a->budget);
	dda_source_free(a->src);
	queue_destroy(&a->q);
	pthread_mutex_destroy(&a->hook_mu);
	free(a);
	res->finished = dda_time_now();
	return rc;
}

void dda_result_release(struct dda_result *res)
{
	for (size_t i = 0; i < res->nanomalies; i++)
		dda_anomaly_release(&res->anomalies[i]);
	free(res->anomalies);
	free(res->hours);
	dda_objtab_free(res->objs);
	memset(res, 0, sizeof(*res));
}

int dda_result_max_severity(const struct dda_result *res)
{
	for (int s = DDA_SEV__COUNT - 1; s >= 0; s--)
		if (res->sum.anomalies[s])
			return s;
	return -1;
}

void dda_audit_opts_default(struct dda_audit_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->src.range.from = o->src.range.to = DDA_TIME_NONE;
	o->src.max_object_bytes = DDA_DEFAULT_MAX_OBJECT_BYTES;
	dda_decoder_opts_default(&o->dec);
	o->now = dda_time_now();
	o->settle = 15 * 60 * DDA_USEC_PER_SEC;
	o->diffs = true;
}
