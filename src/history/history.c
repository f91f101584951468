/* Item histories: compact event storage, ordering, and the link-by-link
 * checks docs/anomalies.md describes (GAP, DUPLICATE, ...). An event keeps its key, digests and a few
 * fields; images are never kept, so memory grows by ~150 bytes an event. */
#include "util/util.h"
#include "ddbaudit/history.h"

#include <stdarg.h>

/* Events live in fixed blocks so that growing never copies them. */
#define EV_BLOCK_SHIFT 14
#define EV_BLOCK (1u << EV_BLOCK_SHIFT)
/* A sequence number is a decimal string of at most 40 digits in practice;
 * the bound keeps a hostile one from bloating every event. */
#define SEQ_MAX 64

enum ev_flags {
	F_OLD = 1,
	F_NEW = 2,
	F_OLD_UNKNOWN = 4,
	F_NEW_UNKNOWN = 8,
	F_TTL = 16,
};

struct event {
	uint64_t khash;
	const uint8_t *key;
	const char *seq;
	int64_t time;
	uint64_t line;
	uint32_t key_len;
	uint32_t obj;
	uint32_t index;
	uint16_t seq_len;
	uint8_t event;
	uint8_t flags;
	uint8_t old_digest[DDA_DIGEST_LEN];
	uint8_t new_digest[DDA_DIGEST_LEN];
};

struct dda_history {
	struct event **blocks;
	size_t nblocks, cap_blocks;
	uint64_t n;
	struct dda__arena arena;
};

struct dda_history *dda_history_new(void)
{
	struct dda_history *h = calloc(1, sizeof(*h));
	if (h)
		dda__arena_init(&h->arena);
	return h;
}

void dda_history_free(struct dda_history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nblocks; i++)
		free(h->blocks[i]);
	free(h->blocks);
	dda__arena_release(&h->arena);
	free(h);
}

uint64_t dda_history_count(const struct dda_history *h)
{
	return h->n;
}

size_t dda_history_bytes(const struct dda_history *h)
{
	return h->nblocks * EV_BLOCK * sizeof(struct event) + h->arena.used;
}

static struct event *ev_at(const struct dda_history *h, uint64_t i)
{
	return &h->blocks[i >> EV_BLOCK_SHIFT][i & (EV_BLOCK - 1)];
}

static int push_block(struct dda_history *h, struct event *blk)
{
	if (h->nblocks == h->cap_blocks) {
		size_t cap = h->cap_blocks ? h->cap_blocks * 2 : 16;
		struct event **nb = realloc(h->blocks, cap * sizeof(*nb));
		if (!nb)
			return DDA_ENOMEM;
		h->blocks = nb;
		h->cap_blocks = cap;
	}
	h->blocks[h->nblocks++] = blk;
	return 0;
}

static struct event *ev_new(struct dda_history *h)
{
	if (h->n == (uint64_t)h->nblocks * EV_BLOCK) {
		struct event *blk = malloc(EV_BLOCK * sizeof(*blk));
		if (!blk || push_block(h, blk)) {
			free(blk);
			return NULL;
		}
	}
	return ev_at(h, h->n++);
}

int dda_history_add(struct dda_history *h, const struct dda_record *r)
{
	struct event *e = ev_new(h);
	if (!e)
		return DDA_ENOMEM;
	memset(e, 0, sizeof(*e));
	uint8_t *key = dda__arena_alloc(&h->arena, r->key_len);
	size_t seq_len = r->seq ? DDA_MIN(r->seq_len, SEQ_MAX) : 0;
	char *seq = r->seq ? dda__arena_strndup(&h->arena, r->seq, seq_len) : NULL;
	if (!key || (r->seq && !seq)) {
		h->n--;
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
	e->flags = (r->has_old ? F_OLD : 0) | (r->has_new ? F_NEW : 0) |
		   (r->old_unknown ? F_OLD_UNKNOWN : 0) | (r->new_unknown ? F_NEW_UNKNOWN : 0) |
		   (r->ttl ? F_TTL : 0);
	if (r->has_old)
		memcpy(e->old_digest, r->old_digest, DDA_DIGEST_LEN);
	if (r->has_new)
		memcpy(e->new_digest, r->new_digest, DDA_DIGEST_LEN);
	return 0;
}

/* Copies block by block, freeing each source block at once, so merging
 * needs one block of memory beyond what both histories hold. */
int dda_history_merge(struct dda_history *into, struct dda_history *from)
{
	int rc = 0;
	for (size_t b = 0; b < from->nblocks; b++) {
		uint64_t first = (uint64_t)b * EV_BLOCK;
		uint64_t n = DDA_MIN((uint64_t)EV_BLOCK, from->n - first);
		for (uint64_t i = 0; i < n && !rc; i++) {
			struct event *e = ev_new(into);
			if (e)
				*e = from->blocks[b][i];
			else
				rc = DDA_ENOMEM;
		}
		free(from->blocks[b]);
		from->blocks[b] = NULL;
	}
	from->nblocks = 0;
	from->n = 0;
	dda__arena_splice(&into->arena, &from->arena);
	return rc;
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

struct sort_ctx {
	const struct dda_history *h;
	const struct dda_objtab *objs;
};

static int cmp_key(const struct event *a, const struct event *b)
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
static int cmp_seq(const struct event *a, const struct event *b)
{
	if (a->seq_len != b->seq_len)
		return a->seq_len < b->seq_len ? -1 : 1;
	return memcmp(a->seq, b->seq, a->seq_len);
}

/* The primary order: sequence number when both have one, else time. */
static int cmp_primary(const struct event *a, const struct event *b)
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
static int cmp_secondary(const struct dda_objtab *objs, const struct event *a,
			 const struct event *b)
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

/* qsort has no context argument; the sort is given one through a slot in
 * each element instead of a global. */
struct sortent {
	uint64_t khash; /* a copy, so most comparisons never touch the event */
	const struct event *e;
	const struct dda_objtab *objs;
};

static int cmp_sortent(const void *pa, const void *pb)
{
	const struct sortent *sa = pa, *sb = pb;
	if (sa->khash != sb->khash)
		return sa->khash < sb->khash ? -1 : 1;
	const struct event *a = sa->e, *b = sb->e;
	int c = cmp_key(a, b);
	if (!c)
		c = cmp_primary(a, b);
	if (!c)
		c = cmp_secondary(sa->objs, a, b);
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
	const struct event *prev;
};

struct checker {
	const struct dda_history_opts *opts;
	struct dda_history_stats *stats;
	struct fpset changes; /* (event, old, new) fingerprints applied */
	struct fpset seqs;    /* sequence numbers seen */
	struct item_state st;
	struct dda_carried carried; /* what an earlier run left (--state) */
	uint64_t last_fp;	    /* fingerprint of the last change applied */
	int rc;
};

static uint64_t change_fp(const struct event *e)
{
	uint8_t buf[1 + 2 * DDA_DIGEST_LEN] = {e->event};
	if (e->flags & F_OLD)
		memcpy(buf + 1, e->old_digest, DDA_DIGEST_LEN);
	if (e->flags & F_NEW)
		memcpy(buf + 1 + DDA_DIGEST_LEN, e->new_digest, DDA_DIGEST_LEN);
	return dda__hash64(buf, sizeof(buf));
}

/* Whether e continues from the current state. A state (a full export's
 * item) continues it when it is that state. */
static bool links(const struct item_state *st, const struct event *e)
{
	if (e->event == DDA_EV_STATE)
		return st->present &&
		       (st->cur_unknown || !memcmp(e->new_digest, st->cur, DDA_DIGEST_LEN));
	if (e->event == DDA_EV_INSERT)
		return !st->present;
	if (!st->present)
		return false;
	if (st->cur_unknown || (e->flags & F_OLD_UNKNOWN))
		return true;
	return (e->flags & F_OLD) && !memcmp(e->old_digest, st->cur, DDA_DIGEST_LEN);
}

DDA_PRINTF(4, 5)
static int report(struct checker *ck, const struct event *e, int kind, const char *fmt, ...)
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

static bool is_duplicate(struct checker *ck, const struct event *e, uint64_t fp, uint64_t *seqfp)
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
	const struct event *p = ck->st.prev;
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

static void check_link(struct checker *ck, const struct event *e)
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

static void apply(struct item_state *st, const struct event *e)
{
	st->known = true;
	st->prev = e;
	if (e->event == DDA_EV_REMOVE) {
		st->present = false;
		return;
	}
	st->present = true;
	st->cur_unknown = !(e->flags & F_NEW);
	if (e->flags & F_NEW)
		memcpy(st->cur, e->new_digest, DDA_DIGEST_LEN);
}

static int visit(struct checker *ck, const struct event *e, int verdict)
{
	if (!ck->opts->visit || ck->rc)
		return ck->rc;
	struct dda_event_view v = {
	    .key = e->key,
	    .key_len = e->key_len,
	    .obj = e->obj,
	    .index = e->index,
	    .line = e->line,
	    .event = e->event,
	    .time = e->time,
	    .verdict = verdict,
	    .has_old = e->flags & F_OLD,
	    .has_new = e->flags & F_NEW,
	    .old_digest = e->old_digest,
	    .new_digest = e->new_digest,
	};
	int rc = ck->opts->visit(ck->opts->ctx, &v);
	if (rc)
		ck->rc = rc;
	return rc;
}

/* A change read from a late object that is no later than the state an
 * earlier run carried for its item: the chain went past it, so it cannot be
 * applied. The carried change itself, read again, is not news; any other is
 * listed (it may explain a GAP that earlier run reported). True when e was
 * taken care of here. */
static bool superseded(struct checker *ck, const struct event *e, uint64_t fp)
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

static void process(struct checker *ck, const struct event *e)
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
	if (e->event == DDA_EV_MODIFY && (e->flags & F_OLD) && (e->flags & F_NEW) &&
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
static void process_ties(struct checker *ck, const struct sortent *run, size_t n)
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
static void start_item(struct checker *ck, const struct event *first)
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

static void end_item(struct checker *ck, const struct event *first)
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

static void check_item(struct checker *ck, const struct sortent *ev, size_t n)
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

int dda_history_analyze(struct dda_history *h, const struct dda_history_opts *opts,
			struct dda_history_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	struct sortent *order = h->n ? malloc(h->n * sizeof(*order)) : NULL;
	if (h->n && !order)
		return DDA_ENOMEM;
	for (uint64_t i = 0; i < h->n; i++) {
		order[i].e = ev_at(h, i);
		order[i].khash = order[i].e->khash;
		order[i].objs = opts->objs;
	}
	dda__sort(order, h->n, sizeof(*order), cmp_sortent);
	struct checker ck = {.opts = opts, .stats = stats};
	for (uint64_t i = 0; i < h->n && !ck.rc;) {
		uint64_t j = i + 1;
		while (j < h->n && !cmp_key(order[i].e, order[j].e))
			j++;
		check_item(&ck, order + i, (size_t)(j - i));
		i = j;
	}
	fpset_release(&ck.changes);
	fpset_release(&ck.seqs);
	free(order);
	return ck.rc;
}
