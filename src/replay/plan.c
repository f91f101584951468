/* The replay plan: a compact event for each selected record (where its
 * synthesis input is, its item, lane, time, size and digest), its synthesis
 * input spooled compressed when its source cannot be read again (images are
 * never all held in memory); the history analysis then gives each item's
 * order, and the plan is sorted into lanes in delivery order with
 * deterministic sequence numbers. A record is synthesized again from its
 * source bytes when its batch is built. */
#include "replay/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dda__seq_format(uint64_t seq, char out[DDA_SEQ_DIGITS + 1])
{
	/* "1" followed by 20 digits of seq (every uint64_t has at most 20):
	 * 10^20 + seq without overflowing, and without printf per record. */
	out[0] = '1';
	for (int i = DDA_SEQ_DIGITS - 1; i > 0; i--, seq /= 10)
		out[i] = (char)('0' + seq % 10);
	out[DDA_SEQ_DIGITS] = '\0';
}

/* What a decoding thread holds of the plan while it reads: its own spool
 * writer, its synthesis buffer, and planned records not yet in the plan.
 * They join the plan a batch at a time, so that the plan's lock is off the
 * path of a record. */
#define PLAN_THREAD_BATCH 1024
struct dda__plan_thread {
	struct dda__plan_thread *next;
	struct dda__spool_writer *w;
	struct dda_buf in;
	struct dda_planned v[PLAN_THREAD_BATCH];
	size_t n;
	uint64_t spooled, reread;
};

/* Plans are numbered, so that a thread's part of one plan is never taken
 * for its part of another made later at the same address. */
static uint64_t plan_gen;
static _Thread_local struct {
	uint64_t gen;
	struct dda__plan_thread *t;
} tl_plan;

int dda__plan_init(struct dda_plan *p, const struct dda_synth_opts *o, int lanes,
		   struct dda_error *err)
{
	memset(p, 0, sizeof(*p));
	p->gen = __atomic_add_fetch(&plan_gen, 1, __ATOMIC_RELAXED);
	p->synth = *o;
	p->spool_lanes = lanes;
	if (pthread_mutex_init(&p->mu, NULL))
		return dda_error_set(err, DDA_ENOMEM, "cannot create a lock");
	p->mu_ready = true;
	return dda__spool_new(&p->spool, lanes, o->tmp_dir, err);
}

void dda__plan_release(struct dda_plan *p)
{
	for (struct dda__plan_thread *t = p->threads, *next; t; t = next) {
		next = t->next;
		dda_buf_release(&t->in);
		free(t);
	}
	dda__spool_free(p->spool);
	free(p->v);
	free(p->obj_first);
	free(p->rk);
	free(p->spare);
	if (p->mu_ready)
		pthread_mutex_destroy(&p->mu);
	memset(p, 0, sizeof(*p));
}

static bool selected(const struct dda_plan *p, const struct dda_record *r)
{
	return p->synth.event_mask & (1u << r->event);
}

/* Room for extra more planned records. */
static int grow(struct dda_plan *p, size_t extra)
{
	if (extra <= p->cap - p->n)
		return 0;
	size_t cap = p->cap ? p->cap * 2 : 1024;
	while (cap - p->n < extra)
		cap *= 2;
	struct dda_planned *nv = realloc(p->v, cap * sizeof(*nv));
	if (!nv)
		return DDA_ENOMEM;
	p->v = nv;
	p->cap = cap;
	return 0;
}


/* What a checkpoint keeps of a record: its length, and a digest of what it
 * is made from and of the object it came from as stored, once the object
 * is whole (a stream's size is known at its end): a changed object is
 * another source, even where the record's bytes happen to be the same. The
 * record's bytes are a function of these and of the arguments, which the
 * checkpoint names. */
struct obj_sig {
	uint32_t obj; /* whose signature this is, DDA_NO_OBJECT for none yet */
	uint64_t etag, size, name;
};

static void object_sig(struct obj_sig *s, const struct dda_object *ob, uint32_t obj)
{
	s->obj = obj;
	s->name = s->etag = s->size = 0;
	if (!ob)
		return;
	const char *v = ob->version ? ob->version : "";
	uint64_t kv[2] = {dda__hash64(ob->key, strlen(ob->key)), dda__hash64(v, strlen(v))};
	s->name = dda__hash64(kv, sizeof(kv));
	s->etag = ob->etag ? dda__hash64(ob->etag, strlen(ob->etag)) : 0;
	s->size = (uint64_t)ob->size;
}

/* with_object for object obj, through a one-object cache (records of one
 * object come together). */
static uint64_t with_object(uint64_t in, const struct dda_plan *p, struct obj_sig *cache,
			    uint32_t obj, uint32_t index)
{
	if (cache->obj != obj || obj == DDA_NO_OBJECT)
		object_sig(cache, p->objs ? dda_objtab_get(p->objs, obj) : NULL, obj);
	uint64_t body[5] = {in, cache->etag, cache->size, cache->name, index};
	return dda__hash64(body, sizeof(body));
}

static bool reread_object(const struct dda_plan *p, const struct dda_object *ob)
{
	return p->reread && ob && ob->size >= 0 && ob->size <= DDA_REREAD_MAX;
}

/* Builds the record's synthesis input and measures the record it makes
 * (without making it: that waits for its batch). */
static int plan_one(struct dda_plan *p, const struct dda_record *r, struct dda_buf *in_buf,
		    struct dda_planned *e, uint64_t *part)
{
	struct dda_synth_in in;
	size_t used, len = 0, seq_at = 0;
	/* The partition key's bytes decide the lane, as DynamoDB's shards do: all
	 * changes of one item (and of one partition) stay in one lane. */
	int rc = dda__synth_in_write(&p->synth, r, NULL, in_buf, part);
	if (!rc)
		rc = dda__synth_in_read(&in, in_buf->ptr, in_buf->len, &used);
	if (!rc)
		rc = dda__synth_len(&p->synth, r->object, r->index, &in, &len, &seq_at);
	/* Room for the {"Records":[...]} around it: a record fits in a batch. */
	if (!rc && len > DDA_REPLAY_MAX_PAYLOAD - 16)
		rc = DDA_ETOOBIG;
	e->len = (uint32_t)len;
	e->seq_at = (uint32_t)seq_at;
	e->body = dda__hash64_wide(in_buf->ptr, in_buf->len);
	return rc;
}

/* The calling thread's part of the plan, made on its first record. */
static struct dda__plan_thread *plan_thread(struct dda_plan *p)
{
	if (tl_plan.gen == p->gen && tl_plan.t)
		return tl_plan.t;
	struct dda__plan_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (dda__spool_writer_new(p->spool, &t->w)) {
		free(t);
		return NULL;
	}
	dda_buf_init(&t->in, DDA_REPLAY_MAX_PAYLOAD);
	pthread_mutex_lock(&p->mu);
	t->next = p->threads;
	p->threads = t;
	pthread_mutex_unlock(&p->mu);
	tl_plan.gen = p->gen;
	tl_plan.t = t;
	return t;
}

/* Moves t's planned records into the plan, with p->mu held. */
static int drain(struct dda_plan *p, struct dda__plan_thread *t)
{
	if (grow(p, t->n))
		return DDA_ENOMEM;
	if (t->n)
		memcpy(p->v + p->n, t->v, t->n * sizeof(*t->v));
	p->n += t->n;
	p->spooled += t->spooled;
	p->reread_records += t->reread;
	t->n = t->spooled = t->reread = 0;
	return 0;
}

/* Every thread's planned records into the plan, once reading ended. */
static int collect(struct dda_plan *p)
{
	int rc = 0;
	for (struct dda__plan_thread *t = p->threads; t && !rc; t = t->next)
		rc = drain(p, t);
	return rc;
}

/* Runs on every decoding thread at once, each on its own part of the plan
 * and its own spool writer: a record takes no lock. */
int dda__plan_on_record(void *ctx, const struct dda_record *r)
{
	struct dda_plan *p = ctx;
	struct dda_planned e = {.obj = r->obj, .index = r->index, .ord = UINT64_MAX};
	struct dda_error err = {0};
	uint64_t part = 0;
	if (!selected(p, r))
		return 0;
	struct dda__plan_thread *t = plan_thread(p);
	if (!t)
		return DDA_ENOMEM;
	t->in.len = 0;
	/* Room for the images and Keys at once, rather than growing to it. */
	size_t guess = r->new_raw_len + r->old_raw_len + 2 * r->key_len + 256;
	if (dda_buf_grow(&t->in, DDA_MIN(guess, (size_t)1 << 20)))
		return DDA_ENOMEM;
	int rc = plan_one(p, r, &t->in, &e, &part);
	if (rc) {
		/* The buffer is clean for the next record whatever happened. */
		dda_buf_release(&t->in);
		dda_buf_init(&t->in, DDA_REPLAY_MAX_PAYLOAD);
		if (rc != DDA_ETOOBIG)
			return DDA_ENOMEM;
		pthread_mutex_lock(&p->mu);
		dda_error_set(&p->err, DDA_ETOOBIG, "a record of %s is over the 6 MB payload limit",
			      r->object ? r->object->key : "?");
		pthread_mutex_unlock(&p->mu);
		return DDA_ETOOBIG;
	}
	e.item = dda__hash64(r->key, r->key_len);
	e.time = r->time;
	e.event = (uint8_t)r->event;
	e.lane = (uint16_t)(part % (uint64_t)p->spool_lanes);
	e.blk = DDA_PLAN_REREAD;
	bool spool = !reread_object(p, r->object);
	if (spool)
		rc = dda__spool_add(p->spool, t->w, e.lane, t->in.ptr, t->in.len, &e.blk, &e.at,
				    &err);
	if (rc) {
		pthread_mutex_lock(&p->mu);
		if (!p->err.code)
			p->err = err;
		pthread_mutex_unlock(&p->mu);
		return rc;
	}
	t->v[t->n++] = e;
	t->spooled += spool;
	t->reread += !spool;
	if (t->n == PLAN_THREAD_BATCH) {
		pthread_mutex_lock(&p->mu);
		rc = drain(p, t);
		pthread_mutex_unlock(&p->mu);
	}
	return rc;
}

static void sort_keys_free(struct dda_plan *p)
{
	free(p->rk);
	p->rk = NULL;
	p->rk_n = 0;
}

/* Two sort keys a record: the same memory for each sort of the plan, as
 * pages a process touches first cost more than the sort itself. */
static struct dda__rkey *sort_keys(struct dda_plan *p)
{
	if (p->rk_n < p->n) {
		sort_keys_free(p);
		if ((p->rk = malloc(2 * p->n * sizeof(*p->rk))) != NULL)
			p->rk_n = p->n;
	}
	return p->rk;
}

/* How far ahead of a pass in sorted order the plan's records are fetched. */
#define PREFETCH_AHEAD 16

/* A slice of a move of the plan, for one thread. */
struct move {
	const struct dda_planned *from;
	struct dda_planned *to;
	const struct dda__rkey *k;
	size_t a, b;
};

static void *move_main(void *arg)
{
	const struct move *m = arg;
	for (size_t j = m->a; j < m->b; j++) {
		if (j + PREFETCH_AHEAD < m->b)
			__builtin_prefetch(&m->from[m->k[j + PREFETCH_AHEAD].at]);
		m->to[j] = m->from[m->k[j].at];
	}
	return NULL;
}

/* Below this many records a second thread costs more than it saves. */
#define MOVE_PAR_MIN ((size_t)1 << 16)

/* Puts the plan in the order of k: its n records become those at k[j].at.
 * Into a second array, kept for the next move (pages a process touches
 * first cost more here than the copy), reading ahead of a pass that is all
 * over the plan, on two threads when the plan is large: the other
 * decoding or checking threads are done by then. */
static int gather(struct dda_plan *p, const struct dda__rkey *k, size_t n)
{
	if (p->spare_cap < p->n) {
		free(p->spare);
		p->spare_cap = 0;
		if (!(p->spare = malloc(DDA_MAX(p->n, (size_t)1) * sizeof(*p->spare))))
			return DDA_ENOMEM;
		p->spare_cap = p->n;
	}
	struct move m[2] = {{p->v, p->spare, k, 0, n / 2}, {p->v, p->spare, k, n / 2, n}};
	pthread_t tid;
	bool two = n >= MOVE_PAR_MIN && !pthread_create(&tid, NULL, move_main, &m[1]);
	if (!two)
		m[0].b = n;
	move_main(&m[0]);
	if (two)
		pthread_join(tid, NULL);
	struct dda_planned *v = p->v;
	size_t cap = p->cap;
	p->v = p->spare;
	p->cap = p->spare_cap;
	p->spare = v;
	p->spare_cap = cap;
	p->n = n;
	return 0;
}

/* Sorts the plan by object and position in it (records arrive from every
 * decoding thread at once), and notes where each object's records start,
 * for the history visit to find a record without searching. */
static int sort_by_obj(struct dda_plan *p)
{
	struct dda__rkey *k = p->n > 1 ? sort_keys(p) : NULL;
	int rc = 0;
	if (p->n > 1 && !k)
		return DDA_ENOMEM;
	for (size_t i = 0; k && i < p->n; i++)
		k[i] = (struct dda__rkey){(uint64_t)p->v[i].obj << 32 | p->v[i].index, i};
	if (k) {
		dda__radix_sort(k, k + p->n, p->n);
		rc = gather(p, k, p->n);
	}
	p->nobj = p->n ? (size_t)p->v[p->n - 1].obj + 1 : 0;
	if (!rc && p->nobj &&
	    !(p->obj_first = malloc((p->nobj + 1) * sizeof(*p->obj_first))))
		rc = DDA_ENOMEM;
	for (size_t i = 0, o = 0; !rc && p->obj_first && o <= p->nobj; o++) {
		while (i < p->n && p->v[i].obj < o)
			i++;
		p->obj_first[o] = i;
	}
	return rc;
}

/* [*a, *b): the plan's records of object obj, when one could be at
 * position index. */
static bool obj_range(const struct dda_plan *p, uint32_t obj, uint32_t index, size_t *a,
		      size_t *b)
{
	if (obj >= p->nobj)
		return false;
	*a = p->obj_first[obj];
	*b = p->obj_first[obj + 1];
	return *a < *b && index >= p->v[*a].index;
}

/* The planned record of position index in object obj, or NULL (a record
 * not selected). Positions of an object's records are usually dense. */
static struct dda_planned *find(struct dda_plan *p, uint32_t obj, uint32_t index)
{
	size_t a, b;
	if (!obj_range(p, obj, index, &a, &b))
		return NULL;
	size_t guess = a + (index - p->v[a].index);
	if (guess < b && p->v[guess].index == index)
		return &p->v[guess];
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (p->v[m].index == index)
			return &p->v[m];
		if (p->v[m].index < index)
			a = m + 1;
		else
			b = m;
	}
	return NULL;
}

/* Where find looks first for position index of object obj, to prefetch:
 * the planned records a history visits are scattered over the plan, each
 * a likely cache miss. */
static const struct dda_planned *find_guess(const struct dda_plan *p, uint32_t obj,
					    uint32_t index)
{
	size_t a, b;
	if (!obj_range(p, obj, index, &a, &b))
		return NULL;
	size_t guess = a + (index - p->v[a].index);
	return guess < b ? &p->v[guess] : NULL;
}

/* Applies the visits held, in their order: their records are prefetched
 * first, so that their cache misses overlap. */
static void flush_visits(struct dda_plan *p)
{
	for (size_t i = 0; i < p->npend; i++) {
		const struct dda_planned *g = find_guess(p, p->pend[i].obj, p->pend[i].index);
		if (g)
			__builtin_prefetch(g, 1);
	}
	for (size_t i = 0; i < p->npend; i++) {
		const struct dda__visit *v = &p->pend[i];
		struct dda_planned *hit = find(p, v->obj, v->index);
		if (!hit)
			continue; /* not selected */
		if (v->duplicate) {
			p->duplicates++;
			continue;
		}
		hit->ord = v->ord;
		if (p->visited && hit->item == p->last_item && hit->time < p->last_time)
			hit->time = p->last_time;
		p->visited = true;
		p->last_item = hit->item;
		p->last_time = hit->time;
	}
	p->npend = 0;
}

/* History order arrives item by item; a duplicate is the same change
 * recorded twice and is sent once. An item's change time is made monotonic
 * on the way (a change never goes before the one it follows). Visits are
 * held and applied in groups (flush_visits), in the same order. */
int dda__plan_visit(void *ctx, const struct dda_event_view *e)
{
	struct dda_plan *p = ctx;
	if (!p->sorted_by_obj) {
		if (collect(p) || sort_by_obj(p))
			return DDA_ENOMEM;
		p->sorted_by_obj = true;
	}
	p->pend[p->npend++] = (struct dda__visit){e->obj, e->index, p->visits++,
						  e->verdict == DDA_V_DUPLICATE};
	if (p->npend == DDA_ARRAY_SIZE(p->pend))
		flush_visits(p);
	return 0;
}

/* --filter, matched against each record exactly as it will be sent, its
 * SequenceNumber included: so sequence numbers are given first, and a
 * record filtered out leaves a gap, as in a filtered stream. The plan is in
 * lane order by then, so that each lane's records are read in order. */
static int apply_filter(struct dda_plan *p, struct dda_error *err)
{
	if (!p->synth.filter)
		return 0;
	struct dda_plan_reader *rd = NULL;
	struct dda_buf text;
	dda_buf_init(&text, DDA_REPLAY_MAX_PAYLOAD);
	size_t kept = 0;
	int rc = dda__plan_reader_new(&rd, p, 1, err);
	for (size_t i = 0; i < p->n && !rc; i++) {
		dda_buf_reset(&text);
		rc = dda__plan_read(rd, i, &text, err);
		json_t *rec = rc ? NULL : json_loadb(text.ptr, text.len, JSON_ALLOW_NUL, NULL);
		if (!rc && !rec)
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
		if (!rc && dda__filter_match(p->synth.filter, rec))
			p->v[kept++] = p->v[i];
		else if (!rc)
			p->filtered++;
		json_decref(rec);
	}
	dda__plan_reader_free(rd);
	dda_buf_release(&text);
	if (!rc)
		p->n = kept;
	return rc;
}

_Static_assert(sizeof(struct dda_planned) <= 64, "a planned record is one cache line");

/* Puts the records that are events (their history position set) in
 * delivery order, in one move of the plan: by change time, then history
 * position (two stable passes, the second on the time with its sign bit
 * flipped, so that unsigned order is signed order), numbered in that one
 * global order, so that sequence numbers increase along every lane whatever
 * the parallelism; then split into lanes (lane_start holds where each
 * starts), stable, so that a lane's order is the global order. The rest
 * (records no visit reached: duplicates, out of range) are dropped. */
static int order_plan(struct dda_plan *p)
{
	p->lanes = p->spool_lanes;
	memset(p->lane_start, 0, sizeof(p->lane_start));
	if (!p->n)
		return 0;
	struct dda__rkey *k = sort_keys(p);
	if (!k)
		return DDA_ENOMEM;
	size_t kept = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].ord != UINT64_MAX)
			k[kept++] = (struct dda__rkey){p->v[i].ord, i};
	/* The passes in sorted order reach the plan all over: its records are
	 * fetched ahead. */
	dda__radix_sort(k, k + kept, kept);
	for (size_t i = 0; i < kept; i++) {
		if (i + PREFETCH_AHEAD < kept)
			__builtin_prefetch(&p->v[k[i + PREFETCH_AHEAD].at]);
		k[i].key = (uint64_t)p->v[k[i].at].time ^ (UINT64_C(1) << 63);
	}
	dda__radix_sort(k, k + kept, kept);
	struct obj_sig sig = {.obj = DDA_NO_OBJECT};
	for (size_t i = 0; i < kept; i++) {
		if (i + PREFETCH_AHEAD < kept)
			__builtin_prefetch(&p->v[k[i + PREFETCH_AHEAD].at], 1);
		struct dda_planned *e = &p->v[k[i].at];
		e->seq = p->synth.seq_base + i + 1;
		e->body = with_object(e->body, p, &sig, e->obj, e->index);
		p->lane_start[e->lane + 1]++;
		k[i].key = e->lane; /* the time has done its work */
	}
	size_t at[DDA_REPLAY_MAX_LANES];
	for (int l = 0; l < p->lanes; l++)
		at[l] = p->lane_start[l + 1] += p->lane_start[l];
	for (int l = p->lanes; l-- > 0;)
		at[l] = p->lane_start[l];
	/* k[kept + j]: the position that goes to place j. */
	for (size_t i = 0; i < kept; i++)
		k[kept + at[k[i].key]++].at = k[i].at;
	int rc = gather(p, k + kept, kept);
	sort_keys_free(p);
	return rc;
}

int dda__plan_finish(struct dda_plan *p, struct dda_error *err)
{
	if (p->err.code)
		return dda_error_set(err, p->err.code, "%s", p->err.msg);
	if (collect(p))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = dda__spool_flush(p->spool, err);
	if (rc)
		return rc;
	flush_visits(p);
	if (!p->sorted_by_obj) /* no history visit at all: nothing in range */
		for (size_t i = 0; i < p->n; i++)
			p->v[i].ord = UINT64_MAX;
	if (order_plan(p))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	free(p->spare); /* moves are over */
	p->spare = NULL;
	p->spare_cap = 0;
	rc = apply_filter(p, err);
	if (rc)
		return rc;
	if (p->synth.filter) { /* the lanes lost what was filtered out */
		memset(p->lane_start, 0, sizeof(p->lane_start));
		for (size_t i = 0; i < p->n; i++)
			p->lane_start[p->v[i].lane + 1]++;
		for (int l = 0; l < p->lanes; l++)
			p->lane_start[l + 1] += p->lane_start[l];
	}
	p->selected = p->n;
	p->spooled = p->reread_records = 0;
	for (size_t i = 0; i < p->n; i++) {
		p->spooled += p->v[i].blk != DDA_PLAN_REREAD;
		p->reread_records += p->v[i].blk == DDA_PLAN_REREAD;
	}
	p->digest_ok = false;
	return 0;
}

int dda__plan_digest(const struct dda_plan *p, uint8_t out[32])
{
	struct dda__sha256 h = {0};
	if (dda__sha256_init(&h))
		return DDA_ENOMEM;
	for (size_t i = 0; i < p->n; i++) {
		uint64_t f[5] = {p->v[i].seq, p->v[i].lane, p->v[i].item, (uint64_t)p->v[i].len,
				 p->v[i].body};
		dda__sha256_update(&h, f, sizeof(f));
	}
	dda__sha256_final(&h, out);
	dda__sha256_release(&h);
	return 0;
}

/* ---- reading records back ---- */

/* One object's records read again: their synthesis inputs, by index. */
struct reread_rec {
	uint32_t index;
	size_t at, len;
};

struct dda_plan_reader {
	struct dda_plan *p;
	struct dda__spool_reader *spool;
	struct dda_decoder *dec; /* for records read again */
	uint32_t obj;		 /* whose records recs holds, or DDA_NO_OBJECT */
	struct dda_buf recs;
	struct reread_rec *idx;
	size_t nidx, cap;
	struct dda__eid_hash eid;
	struct obj_sig sig;	/* of the last object a record came from */
};

int dda__plan_reader_new(struct dda_plan_reader **out, struct dda_plan *p, int readers,
			 struct dda_error *err)
{
	struct dda_plan_reader *rd = calloc(1, sizeof(*rd));
	*out = rd;
	if (!rd)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	rd->p = p;
	rd->obj = DDA_NO_OBJECT;
	rd->sig.obj = DDA_NO_OBJECT;
	dda_buf_init(&rd->recs, DDA_BUF_UNLIMITED);
	if (dda__spool_reader_new(&rd->spool, p->spool, readers))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (p->reread_records && !(rd->dec = dda_decoder_new(&p->dec, p->objs)))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	return 0;
}

void dda__plan_reader_free(struct dda_plan_reader *rd)
{
	if (!rd)
		return;
	dda__spool_reader_free(rd->spool);
	dda_decoder_free(rd->dec);
	dda_buf_release(&rd->recs);
	dda__eid_hash_release(&rd->eid);
	free(rd->idx);
	free(rd);
}

/* Every record of the object read again, as synthesis inputs. */
static int reread_record(void *ctx, const struct dda_record *r)
{
	struct dda_plan_reader *rd = ctx;
	if (rd->nidx == rd->cap) {
		size_t cap = rd->cap ? 2 * rd->cap : 16;
		struct reread_rec *nv = realloc(rd->idx, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		rd->idx = nv;
		rd->cap = cap;
	}
	size_t at = rd->recs.len;
	int rc = dda__synth_in_write(&rd->p->synth, r, NULL, &rd->recs, NULL);
	if (!rc)
		rd->idx[rd->nidx++] = (struct reread_rec){r->index, at, rd->recs.len - at};
	return rc;
}

static int reread_get(struct dda_plan_reader *rd, const struct dda_planned *e, dda_slice *out,
		      struct dda_error *err)
{
	const struct dda_object *ob = rd->p->objs ? dda_objtab_get(rd->p->objs, e->obj) : NULL;
	if (rd->obj != e->obj) {
		const struct dda_decode_sink sink = {rd, reread_record, NULL};
		rd->obj = DDA_NO_OBJECT;
		rd->nidx = 0;
		dda_buf_reset(&rd->recs);
		int rc = dda_audit_fetch_decode(rd->p->fetch, rd->dec, e->obj, &sink, err);
		if (rc)
			return dda_error_set(err, rc, "cannot read '%s' again: %s",
					     ob ? ob->key : "?", err->msg);
		rd->obj = e->obj;
	}
	for (size_t i = 0; i < rd->nidx; i++) {
		if (rd->idx[i].index != e->index)
			continue;
		*out = dda_slice_make(rd->recs.ptr + rd->idx[i].at, rd->idx[i].len);
		return 0;
	}
	return dda_error_set(err, DDA_EIO, "'%s' changed since it was read: its record %u is gone",
			     ob ? ob->key : "?", e->index);
}

int dda__plan_read(struct dda_plan_reader *rd, size_t i, struct dda_buf *out,
		   struct dda_error *err)
{
	const struct dda_plan *p = rd->p;
	const struct dda_planned *e = &p->v[i];
	const struct dda_object *ob = p->objs ? dda_objtab_get(p->objs, e->obj) : NULL;
	struct dda_synth_in in;
	char seq[DDA_SEQ_DIGITS + 1];
	dda_slice src;
	size_t used, at = out->len;
	bool held = false;
	int rc = e->blk == DDA_PLAN_REREAD
		     ? reread_get(rd, e, &src, err)
		     : dda__spool_get(rd->spool, e->blk, e->at, &src, &held, err);
	if (rc)
		return rc;
	if (dda__synth_in_read(&in, src.ptr, src.len, &used))
		return dda_error_set(err, DDA_EIO, "the spool file is damaged (record %zu)", i);
	/* What was read again, or back from the file, is checked against the
	 * plan; a block held in memory is the very bytes planned. */
	if (!held &&
	    with_object(dda__hash64_wide(src.ptr, used), p, &rd->sig, e->obj, e->index) != e->body)
		return dda_error_set(err, DDA_EIO,
				     "'%s' changed since it was read (its record %u is not what "
				     "was planned): nothing from there on is sent",
				     ob ? ob->key : "?", e->index);
	rc = dda__synth_emit(&p->synth, ob, e->obj, e->index, &in, &rd->eid, out, &used);
	if (rc)
		return dda_error_set(err, rc, "cannot build record %zu: %s", i, dda_strerror(rc));
	if (out->len - at != e->len || used - at != e->seq_at)
		return dda_error_set(err, DDA_EINTERNAL,
				     "record %u of '%s' came out %zu bytes long, %u were planned",
				     e->index, ob ? ob->key : "?", out->len - at, e->len);
	dda__seq_format(e->seq, seq);
	memcpy(out->ptr + used, seq, DDA_SEQ_DIGITS);
	return 0;
}
