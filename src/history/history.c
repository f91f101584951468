/* Item histories: compact event storage, ordering, and the link-by-link
 * checks docs/anomalies.md describes (GAP, DUPLICATE, ...). An event keeps
 * its key, digests and a few fields; images are never kept, so memory grows
 * by ~150 bytes an event. A history given a budget spills past it: its
 * events are sorted into a run in a temporary file and freed, and analysis
 * merges the runs with what is still in memory, in the same order. */
#include "util/util.h"
#include "history/history_impl.h"

#include <pthread.h>
#include <stdarg.h>

/* Events live in fixed blocks so that growing never copies them. */
#define EV_BLOCK_SHIFT 14
#define EV_BLOCK (1u << EV_BLOCK_SHIFT)
/* Runs merged at once: each open run holds two blocks and an inflate state
 * (~170 KiB), so 64 of them stay near 11 MiB; more runs are first merged
 * into fewer, 64 at a time. */
#define MERGE_FANIN 64
/* What sorting costs an event against a budget: its slot in the sorted
 * order (16 bytes) and a share of the sort's workspace. Kept at what it
 * was when the order held a third field, so that a budget spills where it
 * always did. */
#define SORT_COST 24

/* What an event costs against a budget: the event, its key and sequence
 * number in the arena (rounded as the arena rounds), and its sorting. */
static uint64_t event_cost(size_t key_len, const char *seq, size_t seq_len)
{
	return sizeof(struct dda__event) + SORT_COST + ((key_len + 7) & ~(size_t)7) +
	       (seq ? ((seq_len + 8) & ~(size_t)7) : 0);
}

struct dda_history_budget {
	uint64_t limit;
	char *dir;
	const struct dda_objtab *objs;
	/* Updated with atomics by every history's thread. */
	uint64_t used;
	uint32_t nhist;
	uint64_t runs, events, bytes;
	int failed;
	/* The first failure to spill, under mu. */
	pthread_mutex_t mu;
	struct dda_error err;
};

/* Events in memory, added by one thread: their blocks, the arena holding
 * their keys and sequence numbers, and once sorted their order. */
struct evset {
	struct dda__event **blocks;
	size_t nblocks, cap_blocks;
	uint64_t n;
	struct dda__arena arena;
	struct dda__sortent *order;	     /* n entries in analysis order, or NULL */
	const struct dda_objtab *order_objs; /* what order was sorted with */
};

/* A history's own events, and those of the histories merged into it, kept
 * as they were (each sorted on its own thread) rather than copied: analysis
 * merges the sorted sets and the spilled runs in one pass. */
struct dda_history {
	struct evset mem;
	struct evset *parts;
	size_t nparts, cap_parts;
	struct dda_history_budget *budget; /* borrowed, or NULL: unbounded */
	uint64_t bytes;			   /* accounted cost of what is held */
	uint64_t published;		   /* the part of bytes added to budget->used */
	struct dda__spill_file **files;	   /* owned; runs point into them */
	size_t nfiles;
	struct dda__run *runs;
	size_t nruns, cap_runs;
};

struct dda_history_budget *dda_history_budget_new(uint64_t limit, const char *dir,
						  const struct dda_objtab *objs)
{
	struct dda_history_budget *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->limit = limit;
	b->objs = objs;
	b->dir = strdup(dir && *dir ? dir : "/tmp");
	if (!b->dir || pthread_mutex_init(&b->mu, NULL)) {
		free(b->dir);
		free(b);
		return NULL;
	}
	return b;
}

void dda_history_budget_free(struct dda_history_budget *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->dir);
	free(b);
}

void dda_history_budget_stats(const struct dda_history_budget *b, struct dda_spill_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return;
	out->limit = b->limit;
	out->runs = __atomic_load_n(&b->runs, __ATOMIC_RELAXED);
	out->events = __atomic_load_n(&b->events, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&b->bytes, __ATOMIC_RELAXED);
}

int dda_history_budget_error(struct dda_history_budget *b, struct dda_error *err)
{
	if (!b || !__atomic_load_n(&b->failed, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&b->mu);
	if (err)
		*err = b->err;
	int code = b->err.code;
	pthread_mutex_unlock(&b->mu);
	return code;
}

static void budget_fail(struct dda_history_budget *b, const struct dda_error *err)
{
	pthread_mutex_lock(&b->mu);
	if (!b->err.code)
		b->err = *err;
	pthread_mutex_unlock(&b->mu);
	__atomic_store_n(&b->failed, 1, __ATOMIC_RELEASE);
}

/* ---- sets of events ---- */

static void evset_init(struct evset *s)
{
	memset(s, 0, sizeof(*s));
	dda__arena_init(&s->arena);
}

/* Frees the events; the block table stays for more. */
static void evset_clear(struct evset *s)
{
	for (size_t i = 0; i < s->nblocks; i++)
		free(s->blocks[i]);
	s->nblocks = 0;
	s->n = 0;
	dda__arena_release(&s->arena);
	free(s->order);
	s->order = NULL;
}

static void evset_release(struct evset *s)
{
	evset_clear(s);
	free(s->blocks);
	s->blocks = NULL;
	s->cap_blocks = 0;
}

static struct dda__event *ev_at(const struct evset *s, uint64_t i)
{
	return &s->blocks[i >> EV_BLOCK_SHIFT][i & (EV_BLOCK - 1)];
}

static int push_block(struct evset *s, struct dda__event *blk)
{
	if (s->nblocks == s->cap_blocks) {
		size_t cap = s->cap_blocks ? s->cap_blocks * 2 : 16;
		struct dda__event **nb = realloc(s->blocks, cap * sizeof(*nb));
		if (!nb)
			return DDA_ENOMEM;
		s->blocks = nb;
		s->cap_blocks = cap;
	}
	s->blocks[s->nblocks++] = blk;
	return 0;
}

/* A new event at the end; an order sorted before no longer holds. */
static struct dda__event *ev_new(struct evset *s)
{
	if (s->order) {
		free(s->order);
		s->order = NULL;
	}
	if (s->n == (uint64_t)s->nblocks * EV_BLOCK) {
		struct dda__event *blk = malloc(EV_BLOCK * sizeof(*blk));
		if (!blk || push_block(s, blk)) {
			free(blk);
			return NULL;
		}
	}
	return ev_at(s, s->n++);
}

/* Sorts the set's events in analysis order by objs, unless they are. */
static int evset_sort(struct evset *s, const struct dda_objtab *objs)
{
	if ((s->order && s->order_objs == objs) || !s->n)
		return 0;
	free(s->order);
	s->order = NULL;
	struct dda__sortent *order = malloc(s->n * sizeof(*order));
	struct dda__sortent *scratch = malloc(s->n * sizeof(*scratch));
	int rc = order && scratch ? 0 : DDA_ENOMEM;
	for (uint64_t i = 0; !rc && i < s->n; i++) {
		order[i].e = ev_at(s, i);
		order[i].khash = order[i].e->khash;
	}
	if (!rc)
		rc = dda__events_sort(order, scratch, s->n, objs);
	free(scratch);
	if (rc) {
		free(order);
		return rc;
	}
	s->order = order;
	s->order_objs = objs;
	return 0;
}

/* ---- histories ---- */

struct dda_history *dda_history_new(void)
{
	return dda_history_new_bounded(NULL);
}

struct dda_history *dda_history_new_bounded(struct dda_history_budget *b)
{
	struct dda_history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	evset_init(&h->mem);
	h->budget = b;
	if (b)
		__atomic_add_fetch(&b->nhist, 1, __ATOMIC_RELAXED);
	return h;
}

/* Frees every event held in memory and what it counted. */
static void free_events(struct dda_history *h)
{
	evset_clear(&h->mem);
	for (size_t i = 0; i < h->nparts; i++)
		evset_release(&h->parts[i]);
	h->nparts = 0;
	if (h->budget)
		__atomic_sub_fetch(&h->budget->used, h->published, __ATOMIC_RELAXED);
	h->bytes = h->published = 0;
}

void dda_history_free(struct dda_history *h)
{
	if (!h)
		return;
	free_events(h);
	evset_release(&h->mem);
	free(h->parts);
	for (size_t i = 0; i < h->nfiles; i++) {
		dda__spill_file_close(h->files[i]);
		free(h->files[i]);
	}
	free(h->files);
	free(h->runs);
	if (h->budget)
		__atomic_sub_fetch(&h->budget->nhist, 1, __ATOMIC_RELAXED);
	free(h);
}

uint64_t dda_history_count(const struct dda_history *h)
{
	uint64_t n = h->mem.n;
	for (size_t i = 0; i < h->nparts; i++)
		n += h->parts[i].n;
	for (size_t i = 0; i < h->nruns; i++)
		n += h->runs[i].events;
	return n;
}

static size_t evset_bytes(const struct evset *s)
{
	return s->nblocks * EV_BLOCK * sizeof(struct dda__event) + s->arena.used;
}

size_t dda_history_bytes(const struct dda_history *h)
{
	size_t n = evset_bytes(&h->mem);
	for (size_t i = 0; i < h->nparts; i++)
		n += evset_bytes(&h->parts[i]);
	return n;
}

int dda_history_sort(struct dda_history *h, const struct dda_objtab *objs)
{
	int rc = evset_sort(&h->mem, objs);
	for (size_t i = 0; i < h->nparts && !rc; i++)
		rc = evset_sort(&h->parts[i], objs);
	return rc;
}

static int add_run(struct dda_history *h, const struct dda__run *run)
{
	if (h->nruns == h->cap_runs) {
		size_t cap = h->cap_runs ? h->cap_runs * 2 : 16;
		struct dda__run *nr = realloc(h->runs, cap * sizeof(*nr));
		if (!nr)
			return DDA_ENOMEM;
		h->runs = nr;
		h->cap_runs = cap;
	}
	h->runs[h->nruns++] = *run;
	return 0;
}

/* The file this history appends runs to, opened at its first spill. */
static int spill_file(struct dda_history *h, const char *dir, struct dda__spill_file **out,
		      struct dda_error *err)
{
	if (h->nfiles) {
		*out = h->files[0];
		return 0;
	}
	struct dda__spill_file *f = calloc(1, sizeof(*f));
	struct dda__spill_file **nf = realloc(h->files, sizeof(*nf));
	if (nf)
		h->files = nf;
	if (!f || !nf) {
		free(f);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	int rc = dda__spill_file_open(f, dir, err);
	if (rc) {
		free(f);
		return rc;
	}
	h->files[h->nfiles++] = f;
	*out = f;
	return 0;
}

/* Writes a set's events, sorted, as one run, then frees them. On failure
 * the events stay where they were. */
static int spill_set(struct dda_history *h, struct evset *s, struct dda_error *err)
{
	struct dda_history_budget *b = h->budget;
	struct dda__spill_file *f = NULL;
	struct dda__run_writer w;
	struct dda__run run;
	bool writer = false;
	int rc = evset_sort(s, b->objs);
	if (rc)
		dda_error_set(err, rc, "out of memory sorting events to spill");
	if (!rc)
		rc = spill_file(h, b->dir, &f, err);
	if (!rc) {
		rc = dda__run_writer_init(&w, f, err);
		writer = true;
	}
	for (uint64_t i = 0; i < s->n && !rc; i++)
		rc = dda__run_put(&w, s->order[i].e, err);
	if (!rc)
		rc = dda__run_finish(&w, &run, err);
	if (!rc && add_run(h, &run))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (writer)
		dda__run_writer_release(&w);
	if (rc)
		return rc; /* what was written stays unreferenced in the unlinked file */
	__atomic_add_fetch(&b->runs, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->events, run.events, __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->bytes, run.len, __ATOMIC_RELAXED);
	evset_clear(s);
	return 0;
}

/* Spills every set held (one run each: only a history added to after a
 * merge holds more than its own). What was counted is released once all
 * are out; until then a failure leaves it counted, which only spills
 * sooner. */
static int spill(struct dda_history *h, struct dda_error *err)
{
	int rc = spill_set(h, &h->mem, err);
	for (size_t i = 0; i < h->nparts && !rc; i++)
		rc = h->parts[i].n ? spill_set(h, &h->parts[i], err) : 0;
	if (!rc)
		free_events(h);
	return rc;
}

/* Publishes what the history grew by since the last time, in steps, and
 * spills when the budget is passed and this history holds a fair share of
 * it (one that holds little would only write tiny runs). */
static void account(struct dda_history *h, uint64_t cost)
{
	struct dda_history_budget *b = h->budget;
	h->bytes += cost;
	if (!b || !b->limit)
		return;
	uint64_t step = DDA_MAX(DDA_MIN(b->limit / 64, (uint64_t)1 << 20), 1024);
	if (h->bytes - h->published < step)
		return;
	uint64_t used = __atomic_add_fetch(&b->used, h->bytes - h->published, __ATOMIC_RELAXED);
	h->published = h->bytes;
	uint32_t nhist = DDA_MAX(__atomic_load_n(&b->nhist, __ATOMIC_RELAXED), 1u);
	if (used <= b->limit || h->bytes < b->limit / (2 * nhist) ||
	    __atomic_load_n(&b->failed, __ATOMIC_ACQUIRE))
		return;
	struct dda_error err = {0};
	/* The events that could not be written are kept: nothing is dropped,
	 * and the caller ends the run when it sees the failure. */
	if (spill(h, &err))
		budget_fail(b, &err);
}

int dda_history_add(struct dda_history *h, const struct dda_record *r)
{
	struct evset *s = &h->mem;
	struct dda__event *e = ev_new(s);
	if (!e)
		return DDA_ENOMEM;
	memset(e, 0, sizeof(*e));
	uint8_t *key = dda__arena_alloc(&s->arena, r->key_len);
	size_t seq_len = r->seq ? DDA_MIN(r->seq_len, DDA__SEQ_MAX) : 0;
	char *seq = r->seq ? dda__arena_strndup(&s->arena, r->seq, seq_len) : NULL;
	if (!key || (r->seq && !seq)) {
		s->n--;
		return DDA_ENOMEM;
	}
	memcpy(key, r->key, r->key_len);
	e->key = key;
	e->key_len = (uint32_t)r->key_len;
	e->khash = dda__hash64(key, r->key_len);
	e->seq = seq;
	e->seq_len = (uint16_t)seq_len;
	e->time = r->time;
	e->line = r->line;
	e->obj = r->obj;
	e->index = r->index;
	e->event = (uint8_t)r->event;
	e->flags = (r->has_old ? DDA__F_OLD : 0) | (r->has_new ? DDA__F_NEW : 0) |
		   (r->old_unknown ? DDA__F_OLD_UNKNOWN : 0) |
		   (r->new_unknown ? DDA__F_NEW_UNKNOWN : 0) | (r->ttl ? DDA__F_TTL : 0);
	if (r->has_old)
		memcpy(e->old_digest, r->old_digest, DDA_DIGEST_LEN);
	if (r->has_new)
		memcpy(e->new_digest, r->new_digest, DDA_DIGEST_LEN);
	account(h, event_cost(r->key_len, seq, seq_len));
	return 0;
}

/* Takes from's spill files and runs. */
static int take_runs(struct dda_history *into, struct dda_history *from)
{
	struct dda__spill_file **nf =
	    realloc(into->files, (into->nfiles + from->nfiles + 1) * sizeof(*nf));
	if (!nf)
		return DDA_ENOMEM;
	into->files = nf;
	for (size_t i = 0; i < from->nruns; i++)
		if (add_run(into, &from->runs[i]))
			return DDA_ENOMEM;
	for (size_t i = 0; i < from->nfiles; i++)
		into->files[into->nfiles++] = from->files[i];
	from->nfiles = from->nruns = 0;
	return 0;
}

/* Takes a set whole (its blocks, arena and order move; no event is
 * copied), leaving it empty. */
static int take_set(struct dda_history *into, struct evset *s)
{
	if (!s->n)
		return 0;
	if (into->nparts == into->cap_parts) {
		size_t cap = into->cap_parts ? into->cap_parts * 2 : 4;
		struct evset *np = realloc(into->parts, cap * sizeof(*np));
		if (!np)
			return DDA_ENOMEM;
		into->parts = np;
		into->cap_parts = cap;
	}
	into->parts[into->nparts++] = *s;
	evset_init(s);
	return 0;
}

/* What from counted against the budget is into's now. */
int dda_history_merge(struct dda_history *into, struct dda_history *from)
{
	int rc = take_runs(into, from);
	if (!rc)
		rc = take_set(into, &from->mem);
	for (size_t i = 0; i < from->nparts && !rc; i++)
		rc = take_set(into, &from->parts[i]);
	if (rc)
		return rc; /* what was not taken stays in from */
	from->nparts = 0;
	into->bytes += from->bytes;
	if (into->budget == from->budget)
		into->published += from->published;
	else if (from->budget)
		__atomic_sub_fetch(&from->budget->used, from->published, __ATOMIC_RELAXED);
	from->bytes = from->published = 0;
	return 0;
}

/* ---- ordering ---- */

uint64_t dda_history_key_hash(const uint8_t *key, size_t key_len)
{
	return dda__hash64(key, key_len);
}

int dda_history_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	uint64_t ha = dda__hash64(a, alen), hb = dda__hash64(b, blen);
	if (ha != hb)
		return ha < hb ? -1 : 1;
	int c = memcmp(a, b, DDA_MIN(alen, blen));
	if (c)
		return c < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}

static int cmp_key(const struct dda__event *a, const struct dda__event *b)
{
	if (a->khash != b->khash)
		return a->khash < b->khash ? -1 : 1;
	size_t n = DDA_MIN(a->key_len, b->key_len);
	int c = memcmp(a->key, b->key, n);
	if (c)
		return c;
	return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

/* Sequence numbers compare as decimal integers. */
static int cmp_seq(const struct dda__event *a, const struct dda__event *b)
{
	if (a->seq_len != b->seq_len)
		return a->seq_len < b->seq_len ? -1 : 1;
	return memcmp(a->seq, b->seq, a->seq_len);
}

/* The primary order: sequence number when both have one, else time. */
static int cmp_primary(const struct dda__event *a, const struct dda__event *b)
{
	if (a->seq && b->seq)
		return cmp_seq(a, b);
	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	return 0;
}

static int64_t obj_lm(const struct dda_objtab *objs, uint32_t obj)
{
	const struct dda_object *o = objs ? dda_objtab_get(objs, obj) : NULL;
	return o ? o->last_modified : DDA_TIME_NONE;
}

/* Secondary order: the object's last-modified time, then the order in which
 * objects (and versions) were listed, then the position in the object. */
static int cmp_secondary(const struct dda_objtab *objs, const struct dda__event *a,
			 const struct dda__event *b)
{
	if (a->obj != b->obj) {
		int64_t la = obj_lm(objs, a->obj), lb = obj_lm(objs, b->obj);
		if (la != lb)
			return la < lb ? -1 : 1;
		return a->obj < b->obj ? -1 : 1;
	}
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

int dda__event_cmp(const struct dda_objtab *objs, const struct dda__event *a,
		   const struct dda__event *b)
{
	int c = cmp_key(a, b);
	if (!c)
		c = cmp_primary(a, b);
	if (!c)
		c = cmp_secondary(objs, a, b);
	return c;
}

/* ---- checking ---- */

/* A set of 64-bit fingerprints, emptied per item in O(1) by generations. */
struct fpset {
	uint64_t *fp;
	uint32_t *gen;
	size_t cap, n;
	uint32_t cur;
};

static int fpset_clear(struct fpset *s)
{
	s->n = 0;
	if (++s->cur == 0 && s->cap) {
		memset(s->gen, 0, s->cap * sizeof(*s->gen));
		s->cur = 1;
	}
	if (s->cap)
		return 0;
	s->cap = 1024;
	s->fp = calloc(s->cap, sizeof(*s->fp));
	s->gen = calloc(s->cap, sizeof(*s->gen));
	return s->fp && s->gen ? 0 : DDA_ENOMEM;
}

static void fpset_release(struct fpset *s)
{
	free(s->fp);
	free(s->gen);
}

static bool fpset_has(const struct fpset *s, uint64_t fp)
{
	for (size_t i = fp & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->gen[i] != s->cur)
			return false;
		if (s->fp[i] == fp)
			return true;
	}
}

static int fpset_add(struct fpset *s, uint64_t fp);

static int fpset_grow(struct fpset *s)
{
	struct fpset big = {.cap = s->cap * 2, .cur = 1};
	big.fp = calloc(big.cap, sizeof(*big.fp));
	big.gen = calloc(big.cap, sizeof(*big.gen));
	if (!big.fp || !big.gen) {
		fpset_release(&big);
		return DDA_ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->gen[i] == s->cur)
			fpset_add(&big, s->fp[i]);
	fpset_release(s);
	*s = big;
	return 0;
}

static int fpset_add(struct fpset *s, uint64_t fp)
{
	if ((s->n + 1) * 2 > s->cap && fpset_grow(s))
		return DDA_ENOMEM;
	size_t i = fp & (s->cap - 1);
	while (s->gen[i] == s->cur) {
		if (s->fp[i] == fp)
			return 0;
		i = (i + 1) & (s->cap - 1);
	}
	s->gen[i] = s->cur;
	s->fp[i] = fp;
	s->n++;
	return 0;
}

/* The state of one item while its events are replayed. */
struct item_state {
	bool known;	  /* an event of the item has been applied */
	bool present;	  /* the item exists after the last applied event */
	bool cur_unknown; /* present, but its image is not known (no new image) */
	uint8_t cur[DDA_DIGEST_LEN];
	const struct dda__event *prev;
};

struct checker {
	const struct dda_history_opts *opts;
	struct dda_history_stats *stats;
	struct fpset changes; /* (event, old, new) fingerprints applied */
	struct fpset seqs;    /* sequence numbers seen */
	struct item_state st;
	struct dda_carried carried; /* what an earlier run left (--state) */
	uint64_t last_fp;	    /* fingerprint of the last change applied */
	struct visvec *defer;	    /* visits held for later (checking in parallel) */
	int rc;
};

static uint64_t change_fp(const struct dda__event *e)
{
	uint8_t buf[1 + 2 * DDA_DIGEST_LEN] = {e->event};
	if (e->flags & DDA__F_OLD)
		memcpy(buf + 1, e->old_digest, DDA_DIGEST_LEN);
	if (e->flags & DDA__F_NEW)
		memcpy(buf + 1 + DDA_DIGEST_LEN, e->new_digest, DDA_DIGEST_LEN);
	return dda__hash64(buf, sizeof(buf));
}

/* Whether e continues from the current state. A state (a full export's
 * item) continues it when it is that state. */
static bool links(const struct item_state *st, const struct dda__event *e)
{
	if (e->event == DDA_EV_STATE)
		return st->present &&
		       (st->cur_unknown || !memcmp(e->new_digest, st->cur, DDA_DIGEST_LEN));
	if (e->event == DDA_EV_INSERT)
		return !st->present;
	if (!st->present)
		return false;
	if (st->cur_unknown || (e->flags & DDA__F_OLD_UNKNOWN))
		return true;
	return (e->flags & DDA__F_OLD) && !memcmp(e->old_digest, st->cur, DDA_DIGEST_LEN);
}

DDA_PRINTF(4, 5)
static int report(struct checker *ck, const struct dda__event *e, int kind, const char *fmt, ...)
{
	if (ck->rc)
		return ck->rc;
	struct dda_anomaly a = {
	    .kind = kind,
	    .severity = dda_kind_severity(kind),
	    .obj = e->obj,
	    .index = e->index,
	    .line = e->line,
	    .time = e->time,
	    .prev_obj = DDA_NO_OBJECT,
	};
	bool missing =
	    kind == DDA_K_GAP || kind == DDA_K_DOUBLE_INSERT || kind == DDA_K_MODIFY_AFTER_REMOVE;
	int64_t settle = ck->opts->settle_from;
	if (missing && settle != DDA_TIME_NONE && e->time >= settle) {
		a.provisional = true;
		a.severity = DDA_SEV_WARNING;
	}
	if (ck->st.prev) {
		a.prev_obj = ck->st.prev->obj;
		a.prev_index = ck->st.prev->index;
	}
	struct dda_buf msg;
	dda_buf_init(&msg, 4096);
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (!rc && a.provisional)
		rc = dda_buf_adds(&msg, " (provisional: within the --settle window)");
	a.detail = dda_buf_take(&msg, NULL);
	a.key = malloc(e->key_len);
	if (rc || !a.detail || !a.key) {
		dda_anomaly_release(&a);
		return ck->rc = DDA_ENOMEM;
	}
	memcpy(a.key, e->key, e->key_len);
	a.key_len = e->key_len;
	if (kind == DDA_K_GAP && ck->st.present) {
		a.has_expected = a.has_found = true;
		memcpy(a.expected, ck->st.cur, DDA_DIGEST_LEN);
		memcpy(a.found, e->event == DDA_EV_STATE ? e->new_digest : e->old_digest,
		       DDA_DIGEST_LEN);
	}
	rc = ck->opts->anomaly(ck->opts->ctx, &a);
	if (rc)
		ck->rc = rc;
	return rc;
}

static bool is_duplicate(struct checker *ck, const struct dda__event *e, uint64_t fp,
			 uint64_t *seqfp)
{
	if (e->seq) {
		*seqfp = dda__hash64(e->seq, e->seq_len);
		return fpset_has(&ck->seqs, *seqfp);
	}
	/* Identical to a change already applied, and not a genuine repeat of
	 * it (a repeat would continue from the current state). */
	return fpset_has(&ck->changes, fp) && !links(&ck->st, e);
}

/* The last change applied, for messages: "MODIFY at TIME", and when an
 * earlier run left it, where that run found it. */
static const char *prev_text(const struct checker *ck, char *buf, size_t size)
{
	char t[DDA_TIME_STRLEN];
	const struct dda__event *p = ck->st.prev;
	if (p)
		snprintf(buf, size, "%s at %s", dda_event_name_str(p->event),
			 dda_time_format(p->time, true, t));
	else
		snprintf(buf, size, "%s at %s (carried by the state from '%s')",
			 dda_event_name_str(ck->carried.event),
			 dda_time_format(ck->carried.time, true, t),
			 ck->carried.object ? ck->carried.object : "");
	return buf;
}

/* A carried object name may be long; messages are bounded anyway. */
#define PREV_TEXT_MAX 1400

static void check_link(struct checker *ck, const struct dda__event *e)
{
	struct item_state *st = &ck->st;
	char pt[PREV_TEXT_MAX];
	const char *name = dda_event_name_str(e->event);
	if (e->event == DDA_EV_STATE) {
		/* A known state: never UNKNOWN_PRIOR; after other events it must
		 * be what they left, else changes before it are missing. */
		if (st->known && !links(st, e))
			report(ck, e, DDA_K_GAP,
			       st->present ? "the export's item differs from the item's state "
					     "after %s: changes are missing before the export"
					   : "the export holds the item, removed by %s: "
					     "changes are missing before the export",
			       prev_text(ck, pt, sizeof(pt)));
		return;
	}
	if (!st->known) {
		if (e->event != DDA_EV_INSERT)
			report(ck, e, DDA_K_UNKNOWN_PRIOR,
			       "first event in range is %s: the prior state is unknown", name);
		return;
	}
	if (e->event == DDA_EV_INSERT) {
		if (st->present)
			report(ck, e, DDA_K_DOUBLE_INSERT,
			       "INSERT while the item exists (last changed by %s)",
			       prev_text(ck, pt, sizeof(pt)));
		return;
	}
	if (!st->present) {
		report(ck, e, DDA_K_MODIFY_AFTER_REMOVE, "%s after the item was removed by %s",
		       name, prev_text(ck, pt, sizeof(pt)));
		return;
	}
	if (!links(st, e))
		report(ck, e, DDA_K_GAP,
		       "%s's old image differs from the item's state after %s: "
		       "changes are missing in between",
		       name, prev_text(ck, pt, sizeof(pt)));
}

static void apply(struct item_state *st, const struct dda__event *e)
{
	st->known = true;
	st->prev = e;
	if (e->event == DDA_EV_REMOVE) {
		st->present = false;
		return;
	}
	st->present = true;
	st->cur_unknown = !(e->flags & DDA__F_NEW);
	if (e->flags & DDA__F_NEW)
		memcpy(st->cur, e->new_digest, DDA_DIGEST_LEN);
}

/* Visits a part checked in parallel holds until the parts before it are
 * done: the events are the sets' own, in memory for the whole analysis. */
struct deferred {
	const struct dda__event *e;
	int verdict;
};

struct visvec {
	struct deferred *v;
	size_t n, cap;
};

static int visvec_push(struct visvec *f, const struct dda__event *e, int verdict)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 1024;
		struct deferred *nv = realloc(f->v, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		f->v = nv;
		f->cap = cap;
	}
	f->v[f->n++] = (struct deferred){e, verdict};
	return 0;
}

static int call_visit(const struct dda_history_opts *o, const struct dda__event *e, int verdict)
{
	struct dda_event_view v = {
	    .key = e->key,
	    .key_len = e->key_len,
	    .obj = e->obj,
	    .index = e->index,
	    .line = e->line,
	    .event = e->event,
	    .time = e->time,
	    .verdict = verdict,
	    .has_old = e->flags & DDA__F_OLD,
	    .has_new = e->flags & DDA__F_NEW,
	    .old_digest = e->old_digest,
	    .new_digest = e->new_digest,
	};
	return o->visit(o->ctx, &v);
}

static int visit(struct checker *ck, const struct dda__event *e, int verdict)
{
	if (!ck->opts->visit || ck->rc)
		return ck->rc;
	int rc = ck->defer ? visvec_push(ck->defer, e, verdict) : call_visit(ck->opts, e, verdict);
	if (rc)
		ck->rc = rc;
	return rc;
}

/* A change read from a late object that is no later than the state an
 * earlier run carried for its item: the chain went past it, so it cannot be
 * applied. The carried change itself, read again, is not news; any other is
 * listed (it may explain a GAP that earlier run reported). True when e was
 * taken care of here. */
static bool superseded(struct checker *ck, const struct dda__event *e, uint64_t fp)
{
	const struct dda_carried *c = &ck->carried;
	const struct dda_object *ob =
	    ck->opts->objs ? dda_objtab_get(ck->opts->objs, e->obj) : NULL;
	if (!ob || !ob->late || !c->found || ck->st.prev || e->time > c->time)
		return false;
	if (fp != c->change_fp) {
		char pt[PREV_TEXT_MAX];
		report(ck, e, DDA_K_LATE_OBJECT,
		       "%s written late is no later than the item's state, %s: not applied (it "
		       "may explain a GAP an earlier run reported)",
		       dda_event_name_str(e->event), prev_text(ck, pt, sizeof(pt)));
	}
	visit(ck, e, DDA_V_SUPERSEDED);
	return true;
}

static void process(struct checker *ck, const struct dda__event *e)
{
	uint64_t fp = change_fp(e), seqfp = 0;
	ck->stats->events++;
	if (e->event == DDA_EV_STATE)
		ck->stats->states++;
	else
		ck->stats->by_event[e->event]++;
	if (superseded(ck, e, fp))
		return;
	if (is_duplicate(ck, e, fp, &seqfp)) {
		ck->stats->duplicates++;
		report(ck, e, DDA_K_DUPLICATE, "%s recorded again%s: counted once",
		       dda_event_name_str(e->event),
		       e->seq ? " (same sequence number)" : " (same images as an earlier record)");
		visit(ck, e, DDA_V_DUPLICATE);
		return;
	}
	check_link(ck, e);
	if (e->event == DDA_EV_MODIFY && (e->flags & DDA__F_OLD) && (e->flags & DDA__F_NEW) &&
	    !memcmp(e->old_digest, e->new_digest, DDA_DIGEST_LEN))
		report(ck, e, DDA_K_NO_OP_MODIFY, "MODIFY whose old and new images are equal");
	if (fpset_add(&ck->changes, fp) || (e->seq && fpset_add(&ck->seqs, seqfp)))
		ck->rc = DDA_ENOMEM;
	ck->last_fp = fp;
	apply(&ck->st, e);
	visit(ck, e, DDA_V_APPLIED);
}

/* Events whose primary order ties are taken in chain order: first the one
 * that continues from the current state, else the earliest by the secondary
 * order (which the sort already established). */
static void process_ties(struct checker *ck, const struct dda__sortent *run, size_t n)
{
	bool done_small[64];
	bool *done = n <= 64 ? done_small : calloc(n, 1);
	if (!done) {
		ck->rc = DDA_ENOMEM;
		return;
	}
	memset(done, 0, n <= 64 ? sizeof(done_small) : 0);
	for (size_t left = n; left && !ck->rc; left--) {
		size_t pick = n;
		for (size_t i = 0; i < n && pick == n; i++)
			if (!done[i] && links(&ck->st, run[i].e))
				pick = i;
		for (size_t i = 0; i < n && pick == n; i++)
			if (!done[i])
				pick = i;
		done[pick] = true;
		process(ck, run[pick].e);
	}
	if (done != done_small)
		free(done);
}

/* Starts an item from what an earlier run left of it: its state, and its
 * last change, so that a retry of that change in this run is a DUPLICATE
 * as it would be in one run over both ranges. */
static void start_item(struct checker *ck, const struct dda__event *first)
{
	struct dda_carried *c = &ck->carried;
	memset(c, 0, sizeof(*c));
	if (!ck->opts->prior)
		return;
	int rc = ck->opts->prior(ck->opts->state_ctx, first->key, first->key_len, c);
	if (rc) {
		ck->rc = rc;
		return;
	}
	if (!c->found)
		return;
	struct item_state *st = &ck->st;
	st->known = true;
	st->present = c->present;
	st->cur_unknown = c->present && !c->digest_known;
	if (st->present && c->digest_known)
		memcpy(st->cur, c->digest, DDA_DIGEST_LEN);
	ck->last_fp = c->change_fp;
	if (c->change_fp && fpset_add(&ck->changes, c->change_fp))
		ck->rc = DDA_ENOMEM;
}

static void end_item(struct checker *ck, const struct dda__event *first)
{
	const struct item_state *st = &ck->st;
	const struct dda_carried *c = &ck->carried;
	if (!ck->opts->end || ck->rc)
		return;
	struct dda_item_end end = {
	    .key = first->key,
	    .key_len = first->key_len,
	    .present = st->present,
	    .digest_known = st->present && !st->cur_unknown,
	    .digest = st->cur,
	    .change_fp = ck->last_fp,
	    .obj = st->prev ? st->prev->obj : DDA_NO_OBJECT,
	    .index = st->prev ? st->prev->index : 0,
	};
	if (st->prev) {
		const struct dda_object *ob =
		    ck->opts->objs ? dda_objtab_get(ck->opts->objs, st->prev->obj) : NULL;
		end.event = st->prev->event;
		end.time = st->prev->time;
		end.object = ob ? ob->key : "";
	} else {
		end.event = c->event;
		end.time = c->time;
		end.object = c->object;
	}
	int rc = ck->opts->end(ck->opts->state_ctx, &end);
	if (rc)
		ck->rc = rc;
}

static void check_item(struct checker *ck, const struct dda__sortent *ev, size_t n)
{
	memset(&ck->st, 0, sizeof(ck->st));
	ck->last_fp = 0;
	if (fpset_clear(&ck->changes) || fpset_clear(&ck->seqs)) {
		ck->rc = DDA_ENOMEM;
		return;
	}
	start_item(ck, ev[0].e);
	ck->stats->items++;
	size_t b = 0;
	while (b + 1 < DDA_CHANGE_BUCKETS && n >> (b + 1))
		b++;
	ck->stats->items_by_events[b]++;
	for (size_t i = 0; i < n && !ck->rc;) {
		size_t j = i + 1;
		while (j < n && !cmp_primary(ev[i].e, ev[j].e))
			j++;
		if (j - i == 1)
			process(ck, ev[i].e);
		else
			process_ties(ck, ev + i, j - i);
		i = j;
	}
	end_item(ck, ev[0].e);
}

/* ---- merging sorted sets and spilled runs ---- */

/* Sorted events in memory: a set's order, or a slice of it. */
struct span {
	const struct dda__sortent *v;
	size_t n;
};

/* One sorted input of a merge: a run on disk, or the events in memory. */
struct msource {
	struct dda__run_reader r;
	bool is_run;
	const struct dda__sortent *mem;
	size_t mem_n, mem_at;
	const struct dda__event *cur; /* NULL when exhausted */
	uint64_t khash;		      /* cur's, read without touching cur */
};

struct merger {
	struct msource *src;
	size_t n;
	size_t *heap; /* indices into src, a min-heap by dda__event_cmp */
	size_t nheap;
	const struct dda_objtab *objs;
};

static bool heap_less(const struct merger *m, size_t a, size_t b)
{
	const struct msource *sa = &m->src[a], *sb = &m->src[b];
	if (sa->khash != sb->khash)
		return sa->khash < sb->khash;
	int c = dda__event_cmp(m->objs, sa->cur, sb->cur);
	return c ? c < 0 : a < b;
}

static void sift_down(struct merger *m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < m->nheap && heap_less(m, m->heap[l], m->heap[min]))
			min = l;
		if (r < m->nheap && heap_less(m, m->heap[r], m->heap[min]))
			min = r;
		if (min == i)
			return;
		size_t t = m->heap[i];
		m->heap[i] = m->heap[min];
		m->heap[min] = t;
		i = min;
	}
}

/* How far ahead of a set's next event its events and keys are fetched
 * into the cache: in sorted order they lie all over memory, and checking
 * an item otherwise waits on a miss for each. */
#define PREFETCH_EVENT 16
#define PREFETCH_KEY 8

static void prefetch(const struct msource *s)
{
	size_t at = s->mem_at;
	if (at + PREFETCH_EVENT < s->mem_n)
		__builtin_prefetch(s->mem[at + PREFETCH_EVENT].e);
	if (at + PREFETCH_KEY < s->mem_n)
		__builtin_prefetch(s->mem[at + PREFETCH_KEY].e->key);
}

static int source_advance(struct msource *s, struct dda_error *err)
{
	if (!s->is_run) {
		const struct dda__sortent *o = s->mem_at < s->mem_n ? &s->mem[s->mem_at++] : NULL;
		s->cur = o ? o->e : NULL;
		s->khash = o ? o->khash : 0;
		prefetch(s);
		return 0;
	}
	int rc = dda__run_next(&s->r, err);
	s->cur = rc == 1 ? &s->r.cur : NULL;
	s->khash = rc == 1 ? s->r.cur.khash : 0;
	return rc < 0 ? rc : 0;
}

static void merger_release(struct merger *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->src[i].is_run)
			dda__run_reader_release(&m->src[i].r);
	free(m->src);
	free(m->heap);
}

/* Opens a merge of runs and spans of sorted events in memory. */
static int merger_open(struct merger *m, const struct dda__run *runs, size_t nruns,
		       const struct span *spans, size_t nspans, const struct dda_objtab *objs,
		       struct dda_error *err)
{
	memset(m, 0, sizeof(*m));
	m->objs = objs;
	m->src = calloc(nruns + nspans + 1, sizeof(*m->src));
	m->heap = calloc(nruns + nspans + 1, sizeof(*m->heap));
	if (!m->src || !m->heap)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < nruns && !rc; i++) {
		m->src[i].is_run = true;
		rc = dda__run_reader_init(&m->src[i].r, &runs[i], err);
		m->n++;
	}
	for (size_t i = 0; i < nspans; i++)
		m->src[m->n++] = (struct msource){.mem = spans[i].v, .mem_n = spans[i].n};
	for (size_t i = 0; i < m->n && !rc; i++) {
		rc = source_advance(&m->src[i], err);
		if (!rc && m->src[i].cur)
			m->heap[m->nheap++] = i;
	}
	for (size_t i = m->nheap / 2; i-- > 0 && !rc;)
		sift_down(m, i);
	return rc;
}

/* The smallest event left (borrowed until merger_pop), or NULL. *stable
 * tells whether it lives as long as the sets in memory do (else only
 * until merger_pop: a run reader's). */
static const struct dda__event *merger_top(const struct merger *m, bool *stable)
{
	if (!m->nheap)
		return NULL;
	const struct msource *s = &m->src[m->heap[0]];
	*stable = !s->is_run;
	return s->cur;
}

static int merger_pop(struct merger *m, struct dda_error *err)
{
	struct msource *s = &m->src[m->heap[0]];
	int rc = source_advance(s, err);
	if (rc)
		return rc;
	if (!s->cur)
		m->heap[0] = m->heap[--m->nheap];
	sift_down(m, 0);
	return 0;
}

/* Merges n runs into one, appended to the history's first spill file. */
static int merge_runs(struct dda_history *h, const struct dda__run *runs, size_t n,
		      const struct dda_objtab *objs, struct dda__run *out, struct dda_error *err)
{
	struct merger m;
	struct dda__run_writer w;
	int rc = merger_open(&m, runs, n, NULL, 0, objs, err);
	bool writer = !rc && !(rc = dda__run_writer_init(&w, h->files[0], err));
	const struct dda__event *e;
	bool stable;
	while (!rc && (e = merger_top(&m, &stable)) != NULL) {
		rc = dda__run_put(&w, e, err);
		if (!rc)
			rc = merger_pop(&m, err);
	}
	if (!rc)
		rc = dda__run_finish(&w, out, err);
	if (writer)
		dda__run_writer_release(&w);
	merger_release(&m);
	return rc;
}

/* Merges runs, MERGE_FANIN at a time, until one more input still fits in
 * a merge (the sets in memory cost a merge nothing). */
static int reduce_runs(struct dda_history *h, const struct dda_objtab *objs, struct dda_error *err)
{
	while (h->nruns + 1 > MERGE_FANIN) {
		struct dda__run merged;
		int rc = merge_runs(h, h->runs, MERGE_FANIN, objs, &merged, err);
		if (rc)
			return rc;
		memmove(h->runs, h->runs + MERGE_FANIN,
			(h->nruns - MERGE_FANIN) * sizeof(*h->runs));
		h->nruns -= MERGE_FANIN;
		h->runs[h->nruns++] = merged;
	}
	return 0;
}

/* One item's events as they come out of a merge. An event of a set in
 * memory is pointed to; one of a run is copied, as a run reader's event
 * lives only until it moves on. */
struct item {
	struct dda__sortent *order;
	uint32_t *copy; /* per event: its index in ev, or UINT32_MAX (in memory) */
	size_t n, cap;
	struct dda__event *ev;
	uint32_t *seq_off; /* where each copy's sequence number is in bytes, or UINT32_MAX */
	size_t nev;
	uint64_t khash;
	uint32_t key_len;
	uint8_t *bytes; /* the key, then the copies' sequence numbers */
	size_t len, cap_bytes;
};

static int item_bytes(struct item *it, const void *p, size_t n)
{
	if (it->len + n > it->cap_bytes) {
		size_t cap = DDA_MAX(it->len + n, 2 * it->cap_bytes + 256);
		uint8_t *nb = realloc(it->bytes, cap);
		if (!nb)
			return DDA_ENOMEM;
		it->bytes = nb;
		it->cap_bytes = cap;
	}
	memcpy(it->bytes + it->len, p, n);
	it->len += n;
	return 0;
}

static int item_grow(struct item *it)
{
	size_t cap = it->cap ? 2 * it->cap : 64;
	struct dda__event *ev = realloc(it->ev, cap * sizeof(*ev));
	if (ev)
		it->ev = ev;
	uint32_t *so = realloc(it->seq_off, cap * sizeof(*so));
	if (so)
		it->seq_off = so;
	struct dda__sortent *o = realloc(it->order, cap * sizeof(*o));
	if (o)
		it->order = o;
	uint32_t *cp = realloc(it->copy, cap * sizeof(*cp));
	if (cp)
		it->copy = cp;
	if (!ev || !so || !o || !cp || cap > UINT32_MAX)
		return DDA_ENOMEM;
	it->cap = cap;
	return 0;
}

static bool item_same(const struct item *it, const struct dda__event *e)
{
	return it->khash == e->khash && it->key_len == e->key_len &&
	       !memcmp(it->bytes, e->key, e->key_len);
}

static int item_add(struct item *it, const struct dda__event *e, bool stable)
{
	if (it->n == it->cap && item_grow(it))
		return DDA_ENOMEM;
	if (!it->n) {
		it->khash = e->khash;
		it->key_len = e->key_len;
		if (item_bytes(it, e->key, e->key_len))
			return DDA_ENOMEM;
	}
	it->order[it->n] = (struct dda__sortent){e->khash, e};
	it->copy[it->n] = UINT32_MAX;
	if (!stable) {
		it->seq_off[it->nev] = e->seq ? (uint32_t)it->len : UINT32_MAX;
		if (e->seq && item_bytes(it, e->seq, e->seq_len))
			return DDA_ENOMEM;
		it->copy[it->n] = (uint32_t)it->nev;
		it->ev[it->nev++] = *e;
	}
	it->n++;
	return 0;
}

static void item_check(struct checker *ck, struct item *it)
{
	for (size_t i = 0; i < it->n; i++) {
		if (it->copy[i] == UINT32_MAX)
			continue;
		struct dda__event *e = &it->ev[it->copy[i]];
		uint32_t so = it->seq_off[it->copy[i]];
		e->key = it->bytes;
		e->seq = so == UINT32_MAX ? NULL : (const char *)it->bytes + so;
		it->order[i].e = e;
	}
	check_item(ck, it->order, it->n);
	it->n = it->nev = it->len = 0;
}

static void item_release(struct item *it)
{
	free(it->ev);
	free(it->seq_off);
	free(it->order);
	free(it->copy);
	free(it->bytes);
}

/* Checks every item over a merge of the runs (h may be NULL: none) and the
 * spans of sorted events in memory: the same events, in the same order, as
 * one sort of them all would give. An item is checked once its last event
 * is out, so a run that cannot be read leaves no item checked with events
 * missing. */
static int check_merged(struct checker *ck, struct dda_history *h, const struct span *spans,
			size_t nspans, struct dda_error *err)
{
	const struct dda_objtab *objs = ck->opts->objs;
	struct merger m;
	struct item it = {0};
	int rc = h ? reduce_runs(h, objs, err) : 0;
	if (!rc)
		rc = merger_open(&m, h ? h->runs : NULL, h ? h->nruns : 0, spans, nspans, objs,
				 err);
	else
		memset(&m, 0, sizeof(m));
	const struct dda__event *e;
	bool stable;
	while (!rc && !ck->rc && (e = merger_top(&m, &stable)) != NULL) {
		if (it.n && !item_same(&it, e))
			item_check(ck, &it);
		if (item_add(&it, e, stable))
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
		if (!rc)
			rc = merger_pop(&m, err);
	}
	if (!rc && !ck->rc && it.n)
		item_check(ck, &it);
	item_release(&it);
	merger_release(&m);
	return rc;
}

/* Checks the items of one span, in place. */
static void check_span(struct checker *ck, const struct span *s)
{
	const struct dda__sortent *order = s->v;
	for (size_t i = 0; i < s->n && !ck->rc;) {
		size_t j = i + 1;
		while (j < s->n && order[j].khash == order[i].khash &&
		       !cmp_key(order[i].e, order[j].e))
			j++;
		for (size_t k = i; k < j && k + PREFETCH_EVENT < s->n; k++)
			__builtin_prefetch(order[k + PREFETCH_EVENT].e);
		check_item(ck, order + i, j - i);
		i = j;
	}
}

/* The history order of two events whose keys are known to be the same. */
static int cmp_order(const struct dda_objtab *objs, const struct dda__event *a,
		     const struct dda__event *b)
{
	int c = cmp_primary(a, b);
	return c ? c : cmp_secondary(objs, a, b);
}

/* Merges g[0..a) and g[a..n), each in order, through tmp: ties go to the
 * first part, as a merge of sets gives them to the earlier set. */
static void merge_parts(const struct dda_objtab *objs, struct dda__sortent *g, size_t a,
			size_t n, struct dda__sortent *tmp, bool same_key)
{
	memcpy(tmp, g, a * sizeof(*g));
	size_t i = 0, j = a, k = 0;
	while (i < a && j < n) {
		int c = same_key ? cmp_order(objs, g[j].e, tmp[i].e)
				 : dda__event_cmp(objs, g[j].e, tmp[i].e);
		g[k++] = c < 0 ? g[j++] : tmp[i++];
	}
	while (i < a)
		g[k++] = tmp[i++];
}

/* Checks the items of several spans of sorted events in memory. The events
 * of one key hash lie in one stretch of each span, so they are taken hash
 * by hash: from one span alone they are in order already; from several,
 * the stretches are merged, comparing keys only to find whether they are
 * all one item's (hashes of different keys can be equal). The same order
 * as a merge event by event through a heap, without comparing each event
 * twice and its key each time. */
static int check_groups(struct checker *ck, const struct span *spans, size_t nspans,
			struct dda_error *err)
{
	const struct dda_objtab *objs = ck->opts->objs;
	size_t *at = calloc(nspans, sizeof(*at)), *stop = calloc(nspans, sizeof(*stop));
	struct dda__sortent *g = NULL, *tmp = NULL;
	size_t cap = 0;
	int rc = at && stop ? 0 : DDA_ENOMEM;
	while (!rc && !ck->rc) {
		bool any = false;
		uint64_t h = 0;
		for (size_t j = 0; j < nspans; j++)
			if (at[j] < spans[j].n && (!any || spans[j].v[at[j]].khash < h)) {
				h = spans[j].v[at[j]].khash;
				any = true;
			}
		if (!any)
			break;
		size_t m = 0, srcs = 0, only = 0;
		for (size_t j = 0; j < nspans; j++) {
			const struct dda__sortent *v = spans[j].v;
			size_t b = at[j];
			for (; b < spans[j].n && v[b].khash == h; b++)
				if (b + PREFETCH_EVENT < spans[j].n)
					__builtin_prefetch(v[b + PREFETCH_EVENT].e);
			stop[j] = b;
			if (b > at[j]) {
				srcs++;
				only = j;
				m += b - at[j];
			}
		}
		if (srcs == 1) {
			check_span(ck, &(struct span){spans[only].v + at[only], m});
		} else {
			if (m > cap) {
				size_t ncap = DDA_MAX(m, 2 * cap);
				struct dda__sortent *ng = realloc(g, ncap * sizeof(*g));
				if (ng)
					g = ng;
				struct dda__sortent *nt = ng ? realloc(tmp, ncap * sizeof(*tmp)) : NULL;
				if (nt)
					tmp = nt;
				if (!ng || !nt) {
					rc = DDA_ENOMEM;
					break;
				}
				cap = ncap;
			}
			size_t k = 0, done = 0;
			bool same_key = true;
			for (size_t j = 0; j < nspans; j++) {
				for (size_t b = at[j]; b < stop[j]; b++) {
					g[k] = spans[j].v[b];
					same_key = same_key && (!k || !cmp_key(g[0].e, g[k].e));
					k++;
				}
				if (done && k > done)
					merge_parts(objs, g, done, k, tmp, same_key);
				done = k;
			}
			check_span(ck, &(struct span){g, m});
		}
		for (size_t j = 0; j < nspans; j++)
			at[j] = stop[j];
	}
	free(at);
	free(stop);
	free(g);
	free(tmp);
	return rc ? dda_error_set(err, rc, "out of memory") : 0;
}

static int check_spans(struct checker *ck, struct dda_history *h, const struct span *spans,
		       size_t nspans, struct dda_error *err)
{
	if (h && h->nruns)
		return check_merged(ck, h, spans, nspans, err);
	if (nspans > 1)
		return check_groups(ck, spans, nspans, err);
	if (nspans)
		check_span(ck, &spans[0]);
	return 0;
}

/* ---- checking in parallel ---- */

/* Below this many events a second thread costs more than it saves. */
#define PAR_MIN_EVENTS ((uint64_t)1 << 16)
#define PAR_MAX 64

/* The anomalies a part found, held until the parts before it are done. */
struct anvec {
	struct dda_anomaly *v;
	size_t n, cap;
};

static int anvec_push(void *ctx, struct dda_anomaly *a)
{
	struct anvec *f = ctx;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 64;
		struct dda_anomaly *nv = realloc(f->v, cap * sizeof(*nv));
		if (!nv) {
			dda_anomaly_release(a);
			return DDA_ENOMEM;
		}
		f->v = nv;
		f->cap = cap;
	}
	f->v[f->n++] = *a;
	return 0;
}

/* The items whose key hash is in one range, with the slice of each set
 * that holds them. */
struct part {
	struct dda_history_opts opts;
	struct dda_history_stats stats;
	struct anvec found;
	struct visvec visits;
	struct span *spans;
	size_t nspans;
	bool done; /* under the queue's lock */
	int rc;
};

static void *part_main(void *arg)
{
	struct part *p = arg;
	struct checker ck = {
	    .opts = &p->opts, .stats = &p->stats, .defer = p->opts.visit ? &p->visits : NULL};
	struct dda_error err = {0};
	int rc = check_spans(&ck, NULL, p->spans, p->nspans, &err);
	fpset_release(&ck.changes);
	fpset_release(&ck.seqs);
	p->rc = rc ? rc : ck.rc;
	return NULL;
}

/* The first position in s whose key hash is at least khash. */
static size_t lower_bound(const struct span *s, uint64_t khash)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].khash < khash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void stats_add(struct dda_history_stats *into, const struct dda_history_stats *s)
{
	into->items += s->items;
	for (size_t i = 0; i < DDA_CHANGE_BUCKETS; i++)
		into->items_by_events[i] += s->items_by_events[i];
	into->events += s->events;
	into->duplicates += s->duplicates;
	for (size_t i = 0; i < DDA_ARRAY_SIZE(s->by_event); i++)
		into->by_event[i] += s->by_event[i];
	into->states += s->states;
}

/* Parts a thread checks, about: with more parts than threads, the calling
 * thread hands over a part's visits while the other threads check later
 * parts, instead of all of them after all the checking. */
#define PARTS_PER_THREAD 4

/* The parts, taken in order by whichever thread is free. */
struct part_queue {
	pthread_mutex_t mu;
	pthread_cond_t done_cv;
	struct part *parts;
	size_t nparts, next;
};

/* Takes the next part and checks it; false when none is left. */
static bool take_part(struct part_queue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t t = q->next < q->nparts ? q->next++ : q->nparts;
	pthread_mutex_unlock(&q->mu);
	if (t == q->nparts)
		return false;
	part_main(&q->parts[t]);
	pthread_mutex_lock(&q->mu);
	q->parts[t].done = true;
	pthread_cond_broadcast(&q->done_cv);
	pthread_mutex_unlock(&q->mu);
	return true;
}

static void *checker_main(void *arg)
{
	while (take_part(arg))
		;
	return NULL;
}

/* Waits for part t, checking parts meanwhile while any is left. */
static void wait_part(struct part_queue *q, size_t t)
{
	for (;;) {
		pthread_mutex_lock(&q->mu);
		while (!q->parts[t].done && q->next == q->nparts)
			pthread_cond_wait(&q->done_cv, &q->mu);
		bool done = q->parts[t].done;
		pthread_mutex_unlock(&q->mu);
		if (done)
			return;
		take_part(q); /* none left by now: the loop waits */
	}
}

/* Splits the key hashes into ranges (an item's events share one hash, so
 * no item is split), checks them on nthreads threads, the calling one
 * included, and hands over the anomalies and visits range by range as
 * each is done: in the order one thread would have made them. Not with
 * prior and end, whose calls must come one at a time in item order, nor
 * with spilled runs, whose events do not stay where a held visit could
 * point. */
static int check_parallel(const struct span *all, size_t nall, const struct dda_history_opts *opts,
			  struct dda_history_stats *stats, size_t nthreads)
{
	size_t nparts = nthreads * PARTS_PER_THREAD;
	struct part *parts = calloc(nparts, sizeof(*parts));
	struct span *spans = calloc(nparts * nall, sizeof(*spans));
	pthread_t *tids = calloc(nthreads, sizeof(*tids));
	struct part_queue q = {.parts = parts, .nparts = nparts};
	bool mu = false, cv = false;
	if (!parts || !spans || !tids || !(mu = !pthread_mutex_init(&q.mu, NULL)) ||
	    !(cv = !pthread_cond_init(&q.done_cv, NULL))) {
		if (mu)
			pthread_mutex_destroy(&q.mu);
		free(parts);
		free(spans);
		free(tids);
		return DDA_ENOMEM;
	}
	uint64_t width = UINT64_MAX / nparts;
	for (size_t t = 0; t < nparts; t++) {
		struct part *p = &parts[t];
		p->opts = *opts;
		p->opts.anomaly = anvec_push;
		p->opts.ctx = &p->found;
		p->spans = spans + t * nall;
		for (size_t j = 0; j < nall; j++) {
			size_t from = t ? lower_bound(&all[j], t * width) : 0;
			size_t to = t + 1 < nparts ? lower_bound(&all[j], (t + 1) * width) : all[j].n;
			if (to > from)
				p->spans[p->nspans++] = (struct span){all[j].v + from, to - from};
		}
	}
	/* Without the threads to be had, the calling thread checks alone. */
	size_t started = 0;
	while (started + 1 < nthreads &&
	       !pthread_create(&tids[started], NULL, checker_main, &q))
		started++;
	int rc = 0;
	for (size_t t = 0; t < nparts; t++) {
		struct part *p = &parts[t];
		wait_part(&q, t);
		stats_add(stats, &p->stats);
		for (size_t i = 0; i < p->found.n; i++)
			if (!rc)
				rc = opts->anomaly(opts->ctx, &p->found.v[i]);
			else
				dda_anomaly_release(&p->found.v[i]);
		for (size_t i = 0; i < p->visits.n && !rc; i++) {
			/* The events lie all over memory, in visit order. */
			if (i + PREFETCH_EVENT < p->visits.n)
				__builtin_prefetch(p->visits.v[i + PREFETCH_EVENT].e);
			rc = call_visit(opts, p->visits.v[i].e, p->visits.v[i].verdict);
		}
		if (!rc)
			rc = p->rc;
		free(p->found.v);
		free(p->visits.v);
		p->found.v = NULL;
		p->visits.v = NULL;
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_cond_destroy(&q.done_cv);
	pthread_mutex_destroy(&q.mu);
	free(tids);
	free(spans);
	free(parts);
	return rc;
}

int dda_history_analyze(struct dda_history *h, const struct dda_history_opts *opts,
			struct dda_history_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	struct span *spans = malloc((h->nparts + 1) * sizeof(*spans));
	if (!spans || dda_history_sort(h, opts->objs)) {
		free(spans);
		return DDA_ENOMEM;
	}
	size_t nspans = 0;
	uint64_t total = 0;
	for (size_t i = 0; i <= h->nparts; i++) {
		const struct evset *s = i ? &h->parts[i - 1] : &h->mem;
		if (s->n)
			spans[nspans++] = (struct span){s->order, s->n};
		total += s->n;
	}
	int rc = 0;
	if (opts->threads > 1 && !opts->prior && !opts->end && !h->nruns &&
	    total >= PAR_MIN_EVENTS) {
		rc = check_parallel(spans, nspans, opts, stats, DDA_MIN(opts->threads, PAR_MAX));
	} else {
		struct checker ck = {.opts = opts, .stats = stats};
		struct dda_error local = {0};
		rc = check_spans(&ck, h, spans, nspans, opts->err ? opts->err : &local);
		fpset_release(&ck.changes);
		fpset_release(&ck.seqs);
		rc = rc ? rc : ck.rc;
	}
	free(spans);
	return rc;
}
