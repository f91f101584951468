/* The replay plan: each selected record's synthetic form is serialized into a
 * spool file as it is decoded (images are never all held in memory), the
 * history analysis then gives each item's order, and the plan is sorted into
 * lanes in delivery order with deterministic sequence numbers. */
#include "replay/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dda__seq_format(uint64_t seq, char out[DDA_SEQ_DIGITS + 1])
{
	/* "1" followed by 20 digits of seq: 10^20 + seq without overflowing. */
	snprintf(out, DDA_SEQ_DIGITS + 1, "1%020llu", (unsigned long long)seq);
}

int dda__plan_init(struct dda_plan *p, const struct dda_synth_opts *o, struct dda_error *err)
{
	memset(p, 0, sizeof(*p));
	p->synth = *o;
	if (pthread_mutex_init(&p->mu, NULL))
		return dda_error_set(err, DDA_ENOMEM, "cannot create a lock");
	p->mu_ready = true;
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/ddbaudit-replay-XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		return dda_error_set(err, DDA_EIO, "cannot create a spool file in %s: %s",
				     dir && *dir ? dir : "/tmp", strerror(errno));
	unlink(path); /* gone when closed, whatever happens */
	p->spool = fdopen(fd, "w+b");
	if (!p->spool) {
		close(fd);
		return dda_error_set(err, DDA_EIO, "cannot open the spool file: %s",
				     strerror(errno));
	}
	return 0;
}

void dda__plan_release(struct dda_plan *p)
{
	if (p->spool)
		fclose(p->spool);
	free(p->v);
	if (p->mu_ready)
		pthread_mutex_destroy(&p->mu);
	memset(p, 0, sizeof(*p));
}

/* The partition key's bytes decide the lane, as DynamoDB's shards do: all
 * changes of one item (and of one partition) stay in one lane. */
static uint64_t partition_hash(const struct dda_synth_opts *o, const json_t *keys)
{
	const json_t *pk = o->hash_key ? json_object_get(keys, o->hash_key) : NULL;
	char *s = json_dumps(pk ? pk : keys, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	uint64_t h = s ? dda__hash64(s, strlen(s)) : 0;
	free(s);
	return h;
}

static bool selected(const struct dda_plan *p, const struct dda_record *r)
{
	return p->synth.event_mask & (1u << r->event);
}

static int grow(struct dda_plan *p)
{
	if (p->n < p->cap)
		return 0;
	size_t cap = p->cap ? p->cap * 2 : 1024;
	struct dda_planned *nv = realloc(p->v, cap * sizeof(*nv));
	if (!nv)
		return DDA_ENOMEM;
	p->v = nv;
	p->cap = cap;
	return 0;
}


/* Runs on every decoding thread at once: the record is built and
 * serialized outside the lock, only appending it to the plan is locked. */
int dda__plan_on_record(void *ctx, const struct dda_record *r)
{
	struct dda_plan *p = ctx;
	struct dda_planned e = {.obj = r->obj, .index = r->index, .ord = UINT64_MAX};
	int rc;
	if (!selected(p, r))
		return 0;
	json_t *keys = dda__synth_keys(r);
	if (!keys)
		return DDA_ENOMEM;
	struct dda_buf text;
	/* Room for the {"Records":[...]} around it: a record fits in a batch. */
	dda_buf_init(&text, DDA_REPLAY_MAX_PAYLOAD - 16);
	size_t seq_at = 0;
	int wrc = dda__synth_write(&p->synth, r, keys, &text, &seq_at);
	e.part = partition_hash(&p->synth, keys);
	json_decref(keys);
	if (wrc) {
		dda_buf_release(&text);
		if (wrc != DDA_ETOOBIG)
			return DDA_ENOMEM;
		pthread_mutex_lock(&p->mu);
		dda_error_set(&p->err, DDA_ETOOBIG, "a record of %s is over the 6 MB payload limit",
			      r->object ? r->object->key : "?");
		pthread_mutex_unlock(&p->mu);
		return DDA_ETOOBIG;
	}
	size_t len = text.len;
	/* What a checkpoint must find unchanged: the bytes sent, and the
	 * object they came from as stored (a changed object is another
	 * source, even where the record's bytes happen to be the same). */
	const struct dda_object *ob = r->object;
	uint64_t body[3] = {dda__hash64(text.ptr, len),
			    ob && ob->etag ? dda__hash64(ob->etag, strlen(ob->etag)) : 0,
			    ob ? (uint64_t)ob->size : 0};
	e.body = dda__hash64(body, sizeof(body));
	e.len = (uint32_t)len;
	e.seq_at = (uint32_t)seq_at;
	e.item = dda__hash64(r->key, r->key_len);
	e.time = r->time;
	e.event = (uint8_t)r->event;
	pthread_mutex_lock(&p->mu);
	rc = grow(p);
	if (!rc) {
		e.off = (uint64_t)ftello(p->spool);
		if (fwrite(text.ptr, 1, len, p->spool) != len)
			rc = dda_error_set(&p->err, DDA_EIO, "cannot write the spool file: %s",
					   strerror(errno));
		else
			p->v[p->n++] = e;
	}
	pthread_mutex_unlock(&p->mu);
	dda_buf_release(&text);
	return rc;
}

static int by_obj(const void *a, const void *b)
{
	const struct dda_planned *x = a, *y = b;
	if (x->obj != y->obj)
		return x->obj < y->obj ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* History order arrives item by item; a duplicate is the same change
 * recorded twice and is sent once. */
int dda__plan_visit(void *ctx, const struct dda_event_view *e)
{
	struct dda_plan *p = ctx;
	if (!p->sorted_by_obj) {
		dda__sort(p->v, p->n, sizeof(*p->v), by_obj);
		p->sorted_by_obj = true;
	}
	struct dda_planned key = {.obj = e->obj, .index = e->index};
	struct dda_planned *hit = bsearch(&key, p->v, p->n, sizeof(*p->v), by_obj);
	uint64_t ord = p->visits++;
	if (!hit)
		return 0; /* not selected */
	if (e->verdict == DDA_V_DUPLICATE) {
		p->duplicates++;
		return 0;
	}
	hit->ord = ord;
	return 0;
}

/* Delivery order inside a lane is the global order. */
static int by_lane_seq(const void *a, const void *b)
{
	const struct dda_planned *x = a, *y = b;
	if (x->lane != y->lane)
		return x->lane < y->lane ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_ord(const void *a, const void *b)
{
	const struct dda_planned *x = a, *y = b;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* --filter, matched against each record exactly as it will be sent, its
 * SequenceNumber included: so sequence numbers are given first, and a
 * record filtered out leaves a gap, as in a filtered stream. */
static int apply_filter(struct dda_plan *p, struct dda_error *err)
{
	if (!p->synth.filter)
		return 0;
	if (fflush(p->spool))
		return dda_error_set(err, DDA_EIO, "cannot write the spool file: %s",
				     strerror(errno));
	struct dda_buf text;
	dda_buf_init(&text, DDA_REPLAY_MAX_PAYLOAD);
	size_t kept = 0;
	int rc = 0;
	for (size_t i = 0; i < p->n && !rc; i++) {
		dda_buf_reset(&text);
		rc = dda__plan_read(p, i, &text, err);
		json_t *rec = rc ? NULL : json_loadb(text.ptr, text.len, JSON_ALLOW_NUL, NULL);
		if (!rc && !rec)
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
		if (!rc && dda__filter_match(p->synth.filter, rec))
			p->v[kept++] = p->v[i];
		else if (!rc)
			p->filtered++;
		json_decref(rec);
	}
	dda_buf_release(&text);
	if (!rc)
		p->n = kept;
	return rc;
}

static int by_time_ord(const void *a, const void *b)
{
	const struct dda_planned *x = a, *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

int dda__plan_finish(struct dda_plan *p, int lanes, struct dda_error *err)
{
	if (p->err.code)
		return dda_error_set(err, p->err.code, "%s", p->err.msg);
	if (!p->sorted_by_obj) /* no history visit at all: nothing in range */
		p->n = 0;
	/* Keep the events in history order; make each item's times monotonic. */
	dda__sort(p->v, p->n, sizeof(*p->v), by_ord);
	while (p->n && p->v[p->n - 1].ord == UINT64_MAX)
		p->n--;
	for (size_t i = 1; i < p->n; i++)
		if (p->v[i].item == p->v[i - 1].item && p->v[i].time < p->v[i - 1].time)
			p->v[i].time = p->v[i - 1].time;
	/* Sequence numbers follow one global order (change time, where an item's
	 * time never runs backwards, then history position), so they increase
	 * along every lane whatever the parallelism. */
	dda__sort(p->v, p->n, sizeof(*p->v), by_time_ord);
	p->lanes = lanes;
	for (size_t i = 0; i < p->n; i++) {
		p->v[i].seq = i + 1;
		p->v[i].lane = (uint16_t)(p->v[i].part % (uint64_t)lanes);
	}
	int rc = apply_filter(p, err);
	if (rc)
		return rc;
	dda__sort(p->v, p->n, sizeof(*p->v), by_lane_seq);
	memset(p->lane_start, 0, sizeof(p->lane_start));
	for (size_t i = 0; i < p->n; i++)
		p->lane_start[p->v[i].lane + 1]++;
	for (int l = 0; l < lanes; l++)
		p->lane_start[l + 1] += p->lane_start[l];
	p->selected = p->n;
	/* What was planned, to refuse resuming a different plan. */
	struct dda__sha256 h = {0};
	if (dda__sha256_init(&h))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++) {
		uint64_t f[5] = {p->v[i].seq, p->v[i].lane, p->v[i].item, (uint64_t)p->v[i].len,
				 p->v[i].body};
		dda__sha256_update(&h, f, sizeof(f));
	}
	dda__sha256_final(&h, p->digest);
	dda__sha256_release(&h);
	if (fflush(p->spool))
		return dda_error_set(err, DDA_EIO, "cannot write the spool file: %s",
				     strerror(errno));
	return 0;
}

int dda__plan_read(struct dda_plan *p, size_t i, struct dda_buf *out, struct dda_error *err)
{
	const struct dda_planned *e = &p->v[i];
	char seq[DDA_SEQ_DIGITS + 1];
	size_t at = out->len;
	if (dda_buf_grow(out, e->len))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (pread(fileno(p->spool), out->ptr + at, e->len, (off_t)e->off) != (ssize_t)e->len)
		return dda_error_set(err, DDA_EIO, "cannot read the spool file: %s",
				     strerror(errno));
	dda__seq_format(e->seq, seq);
	memcpy(out->ptr + at + e->seq_at, seq, DDA_SEQ_DIGITS);
	out->len += e->len;
	out->ptr[out->len] = '\0';
	return 0;
}
