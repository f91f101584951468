/* The order of analysis, as the radix-and-merge sort and the merge of
 * several sorted sets and spilled runs produce it, against a reference:
 * qsort with the comparator written out here from the documented order
 * (key hash, key bytes with the shorter first, sequence number by length
 * then digits or else time, the object's last-modified time, the object,
 * the position). Keys are made to share hashes, one item is hot (a bucket
 * far past the insertion sort), and ties on time fall to the objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/util.h"
#include "history/history_impl.h"

/* A small deterministic generator (xorshift), so a failure reproduces. */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/* ---- the reference order ---- */

/* qsort takes no context: the table the reference compares with. */
static const struct dda_objtab *ref_objs;

static int64_t ref_lm(uint32_t obj)
{
	const struct dda_object *o = ref_objs ? dda_objtab_get(ref_objs, obj) : NULL;
	return o ? o->last_modified : DDA_TIME_NONE;
}

static int sign(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int ref_cmp(const void *pa, const void *pb)
{
	const struct dda__event *a = ((const struct dda__sortent *)pa)->e;
	const struct dda__event *b = ((const struct dda__sortent *)pb)->e;
	if (a->khash != b->khash)
		return a->khash < b->khash ? -1 : 1;
	int c = memcmp(a->key, b->key, DDA_MIN(a->key_len, b->key_len));
	if (c || a->key_len != b->key_len)
		return c ? c : sign(a->key_len, b->key_len);
	if (a->seq && b->seq) {
		if (a->seq_len != b->seq_len)
			return sign(a->seq_len, b->seq_len);
		if ((c = memcmp(a->seq, b->seq, a->seq_len)) != 0)
			return c;
	} else if (a->time != b->time) {
		return sign(a->time, b->time);
	}
	if (a->obj != b->obj) {
		int64_t la = ref_lm(a->obj), lb = ref_lm(b->obj);
		return la != lb ? sign(la, lb) : sign(a->obj, b->obj);
	}
	return sign(a->index, b->index);
}

/* ---- events made to collide ---- */

struct keyed {
	uint8_t key[16];
	uint32_t key_len;
	uint64_t khash;
	bool seq; /* every event of the item has a sequence number */
};

struct world {
	struct keyed *items;
	uint32_t nitems;
	struct dda__event *ev;
	char (*seqs)[8];
	size_t n;
	struct dda_objtab *objs;
};

/* nhashes distinct hashes shared by the items (0: each its own); keys are
 * the items' numbers, so some are prefixes of others ("1", "12"). */
static void make_items(struct world *w, uint32_t nitems, uint32_t nhashes)
{
	w->items = calloc(nitems, sizeof(*w->items));
	assert_non_null(w->items);
	w->nitems = nitems;
	for (uint32_t i = 0; i < nitems; i++) {
		struct keyed *k = &w->items[i];
		k->key_len = (uint32_t)snprintf((char *)k->key, sizeof(k->key), "%u", i);
		k->khash = nhashes ? (rnd_below(nhashes) + 1) * 0x9e3779b97f4a7c15ull
				   : dda__hash64(k->key, k->key_len);
		k->seq = rnd_below(2);
	}
}

/* n events; a share `hot_pct` of them on item 0; times over a small range
 * (ties); positions unique, so the order is total. */
static void make_events(struct world *w, size_t n, uint32_t hot_pct)
{
	w->ev = calloc(n ? n : 1, sizeof(*w->ev));
	w->seqs = calloc(n ? n : 1, sizeof(*w->seqs));
	assert_non_null(w->ev);
	assert_non_null(w->seqs);
	w->n = n;
	for (size_t i = 0; i < n; i++) {
		struct dda__event *e = &w->ev[i];
		const struct keyed *k =
		    &w->items[rnd_below(100) < hot_pct ? 0 : rnd_below(w->nitems)];
		e->key = k->key;
		e->key_len = k->key_len;
		e->khash = k->khash;
		e->time = (int64_t)rnd_below(50);
		e->obj = rnd_below(dda_objtab_count(w->objs));
		e->index = (uint32_t)i;
		if (k->seq) {
			int len = snprintf(w->seqs[i], sizeof(w->seqs[i]), "%u", rnd_below(3000));
			e->seq = w->seqs[i];
			e->seq_len = (uint16_t)len;
		}
	}
}

/* Objects whose last-modified times repeat, so ties go on to the ids. */
static struct dda_objtab *make_objs(uint32_t n)
{
	struct dda_objtab *t = dda_objtab_new();
	assert_non_null(t);
	for (uint32_t i = 0; i < n; i++) {
		char key[32];
		snprintf(key, sizeof(key), "o/%u.json", i);
		struct dda_object o = {.key = key, .size = 1, .last_modified = rnd_below(7) * 1000};
		assert_true(dda_objtab_add(t, &o) >= 0);
	}
	return t;
}

static void world_free(struct world *w)
{
	free(w->items);
	free(w->ev);
	free(w->seqs);
	dda_objtab_free(w->objs);
}

/* Sorts the world both ways and asserts the same sequence of events. */
static void assert_sorts_as_reference(struct world *w)
{
	size_t n = w->n;
	struct dda__sortent *got = calloc(n + 1, sizeof(*got));
	struct dda__sortent *scratch = calloc(n + 1, sizeof(*scratch));
	struct dda__sortent *want = calloc(n + 1, sizeof(*want));
	assert_non_null(got);
	assert_non_null(scratch);
	assert_non_null(want);
	for (size_t i = 0; i < n; i++)
		got[i] = want[i] = (struct dda__sortent){w->ev[i].khash, &w->ev[i]};
	ref_objs = w->objs;
	dda__sort(want, n, sizeof(*want), ref_cmp);
	assert_int_equal(dda__events_sort(got, scratch, n, w->objs), 0);
	for (size_t i = 0; i < n; i++)
		if (got[i].e != want[i].e)
			fail_msg("event %zu of %zu: index %u where the reference has %u", i, n,
				 got[i].e->index, want[i].e->index);
	free(got);
	free(scratch);
	free(want);
}

static void check_world(uint64_t seed, size_t n, uint32_t nitems, uint32_t nhashes,
			uint32_t hot_pct)
{
	struct world w = {0};
	rnd_state = seed;
	w.objs = make_objs(40);
	make_items(&w, nitems, nhashes);
	make_events(&w, n, hot_pct);
	assert_sorts_as_reference(&w);
	world_free(&w);
}

static void test_small_sizes(void **state)
{
	(void)state;
	size_t sizes[] = {0, 1, 2, 3, 15, 16, 17, 33, 100};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(sizes); i++)
		check_world(0x1234 + i, sizes[i], 7, 3, 20);
}

/* Hashes shared by many keys: most comparisons fall through to the keys. */
static void test_colliding_hashes(void **state)
{
	(void)state;
	check_world(77, 20000, 500, 1, 0);    /* one hash: a single bucket */
	check_world(78, 20000, 2000, 16, 10); /* sixteen hashes */
	check_world(79, 50000, 20000, 0, 30); /* real hashes, a hot item */
}

/* Enough events for the widest radix pass, one item a third of them. */
static void test_large_with_hot_item(void **state)
{
	(void)state;
	check_world(4242, 600000, 100000, 0, 33);
}

/* ---- histories: sets sorted on their threads, merged, spilled ---- */

struct visits {
	char *text;
	size_t len, cap;
};

static void visits_add(struct visits *v, const uint8_t *key, size_t key_len, uint32_t obj,
		       uint32_t index)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%.*s %u %u\n", (int)key_len, (const char *)key, obj,
			 index);
	if (v->len + (size_t)n + 1 > v->cap) {
		v->cap = 2 * v->cap + (size_t)n + 4096;
		v->text = realloc(v->text, v->cap);
		assert_non_null(v->text);
	}
	memcpy(v->text + v->len, line, (size_t)n + 1);
	v->len += (size_t)n;
}

static int on_visit(void *ctx, const struct dda_event_view *e)
{
	visits_add(ctx, e->key, e->key_len, e->obj, e->index);
	return 0;
}

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	(void)ctx;
	dda_anomaly_release(a);
	return 0;
}

/* Anomalies as lines of kind, key, object and position. */
static int keep_anomaly(void *ctx, struct dda_anomaly *a)
{
	struct visits *v = ctx;
	visits_add(v, a->key, a->key_len, a->obj, a->index * 16 + (uint32_t)a->kind);
	dda_anomaly_release(a);
	return 0;
}

/* Records of ITEMS items over OBJECTS objects: an item's times (or
 * sequence numbers) are distinct, so the visit order is the sort order. */
#define ITEMS 8000
#define PER_ITEM 9
#define NREC (ITEMS * PER_ITEM)

struct rec {
	char key[16];
	char seq[16];
	struct dda_record r;
};

static struct rec *make_records(void)
{
	struct rec *v = calloc(NREC, sizeof(*v));
	assert_non_null(v);
	rnd_state = 99;
	for (uint32_t i = 0; i < NREC; i++) {
		uint32_t item = i % ITEMS, nth = i / ITEMS;
		struct rec *x = &v[i];
		int n = snprintf(x->key, sizeof(x->key), "user-%u", item);
		x->r.key = (const uint8_t *)x->key;
		x->r.key_len = (size_t)n;
		x->r.event = nth ? DDA_EV_MODIFY : DDA_EV_INSERT;
		/* Shuffled within the item: the sort, not the input, orders. */
		uint32_t rank = (nth * 5 + item) % PER_ITEM;
		x->r.time = (int64_t)rank * DDA_USEC_PER_SEC;
		if (item % 3 == 0) {
			x->r.seq_len = (size_t)snprintf(x->seq, sizeof(x->seq), "%u", 95 + rank);
			x->r.seq = x->seq; /* 95..103: lengths differ */
		}
		x->r.obj = rnd_below(50);
		x->r.index = i;
		x->r.line = i + 1;
		x->r.has_new = true;
		x->r.has_old = nth != 0;
		memset(x->r.new_digest, (int)rnd(), DDA_DIGEST_LEN);
		memset(x->r.old_digest, (int)rnd(), DDA_DIGEST_LEN);
	}
	return v;
}

/* The reference: the records as events, sorted by ref_cmp. */
static void reference_visits(const struct rec *v, struct visits *out)
{
	struct dda__event *ev = calloc(NREC, sizeof(*ev));
	struct dda__sortent *order = calloc(NREC, sizeof(*order));
	assert_non_null(ev);
	assert_non_null(order);
	for (uint32_t i = 0; i < NREC; i++) {
		const struct dda_record *r = &v[i].r;
		ev[i] = (struct dda__event){.khash = dda_history_key_hash(r->key, r->key_len),
					    .key = r->key,
					    .key_len = (uint32_t)r->key_len,
					    .seq = r->seq,
					    .seq_len = (uint16_t)r->seq_len,
					    .time = r->time,
					    .obj = r->obj,
					    .index = r->index};
		order[i] = (struct dda__sortent){ev[i].khash, &ev[i]};
	}
	ref_objs = NULL;
	dda__sort(order, NREC, sizeof(*order), ref_cmp);
	for (uint32_t i = 0; i < NREC; i++)
		visits_add(out, order[i].e->key, order[i].e->key_len, order[i].e->obj,
			   order[i].e->index);
	free(ev);
	free(order);
}

/* Three histories as three workers would fill them (the first sorted at
 * its end, the second never, the third sorted and then added to), merged
 * into the first and analyzed. */
static void analyze_three(const struct rec *v, struct dda_history_budget *b, struct visits *out)
{
	struct dda_history *h[3];
	for (int i = 0; i < 3; i++)
		assert_non_null(h[i] = dda_history_new_bounded(b));
	for (uint32_t i = 0; i < NREC; i++)
		if (i != NREC - 1)
			assert_int_equal(dda_history_add(h[i * 7 % 3], &v[i].r), 0);
	assert_int_equal(dda_history_sort(h[0], NULL), 0);
	assert_int_equal(dda_history_sort(h[2], NULL), 0);
	assert_int_equal(dda_history_add(h[2], &v[NREC - 1].r), 0);
	assert_int_equal(dda_history_merge(h[0], h[1]), 0);
	assert_int_equal(dda_history_merge(h[0], h[2]), 0);
	assert_int_equal(dda_history_count(h[0]), NREC);
	assert_int_equal(dda_history_count(h[1]) + dda_history_count(h[2]), 0);
	struct dda_error err = {0};
	struct dda_history_opts o = {.settle_from = DDA_TIME_NONE,
				     .ctx = out,
				     .anomaly = on_anomaly,
				     .visit = on_visit,
				     .err = &err};
	struct dda_history_stats st;
	assert_int_equal(dda_history_analyze(h[0], &o, &st), 0);
	assert_int_equal(st.events, NREC);
	assert_int_equal(st.items, ITEMS);
	for (int i = 0; i < 3; i++)
		dda_history_free(h[i]);
}

static void test_merged_sets_visit_in_reference_order(void **state)
{
	(void)state;
	struct rec *v = make_records();
	struct visits want = {0}, sets = {0}, spilled = {0};
	reference_visits(v, &want);
	analyze_three(v, NULL, &sets);
	assert_string_equal(sets.text, want.text);
	/* A budget small enough for many runs, mixed with sets in memory;
	 * spill files are unlinked at once, so the directory empties. */
	char dir[] = "/tmp/dda-test-hsort-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct dda_history_budget *b = dda_history_budget_new(64 << 10, dir, NULL);
	assert_non_null(b);
	analyze_three(v, b, &spilled);
	struct dda_spill_stats sp;
	dda_history_budget_stats(b, &sp);
	assert_true(sp.runs > 3);
	assert_true(sp.events > 0 && sp.events < NREC);
	assert_int_equal(dda_history_budget_error(b, NULL), 0);
	dda_history_budget_free(b);
	assert_int_equal(rmdir(dir), 0);
	assert_string_equal(spilled.text, want.text);
	free(v);
	free(want.text);
	free(sets.text);
	free(spilled.text);
}

/* The line at l, without its newline (a static copy). */
static const char *strndup_line(const char *l)
{
	static char line[96];
	size_t n = (size_t)(strchr(l, '\n') - l);
	assert_true(n < sizeof(line));
	memcpy(line, l, n);
	line[n] = '\0';
	return line;
}

/* Visits as lines of key, object and position with the verdict. */
static int keep_visit(void *ctx, const struct dda_event_view *e)
{
	visits_add(ctx, e->key, e->key_len, e->obj, e->index * 8 + (uint32_t)e->verdict);
	return 0;
}

/* Anomalies and visits of the records checked by `threads` threads, over
 * two merged sets; the first DUPS records are recorded twice. */
#define DUPS 500
static void analyze_more(const struct rec *v, const struct rec *extra, size_t nextra,
			 unsigned threads, struct visits *found, struct visits *visited,
			 struct dda_history_stats *st)
{
	struct dda_history *h0 = dda_history_new(), *h1 = dda_history_new();
	assert_non_null(h0);
	assert_non_null(h1);
	for (uint32_t i = 0; i < NREC; i++)
		assert_int_equal(dda_history_add(i % 4 ? h0 : h1, &v[i].r), 0);
	for (size_t i = 0; i < nextra; i++)
		assert_int_equal(dda_history_add(i % 2 ? h0 : h1, &extra[i].r), 0);
	for (uint32_t i = 0; i < DUPS; i++)
		assert_int_equal(dda_history_add(i % 2 ? h0 : h1, &v[i].r), 0);
	assert_int_equal(dda_history_sort(h1, NULL), 0);
	assert_int_equal(dda_history_merge(h0, h1), 0);
	struct dda_history_opts o = {.settle_from = DDA_TIME_NONE,
				     .ctx = found,
				     .anomaly = keep_anomaly,
				     .visit = visited ? keep_visit : NULL,
				     .threads = threads};
	/* visit shares ctx with anomaly: with visits, only they are kept. */
	if (visited) {
		o.ctx = visited;
		o.anomaly = on_anomaly;
	}
	assert_int_equal(dda_history_analyze(h0, &o, st), 0);
	dda_history_free(h1);
	dda_history_free(h0);
}

static void analyze_checked(const struct rec *v, unsigned threads, struct visits *found,
			    struct visits *visited, struct dda_history_stats *st)
{
	analyze_more(v, NULL, 0, threads, found, visited, st);
}

/* Records of one item, HOT of them: the range that holds it takes far
 * longer to check than the others. */
#define HOT 60000
static struct rec *make_hot(void)
{
	struct rec *v = calloc(HOT, sizeof(*v));
	assert_non_null(v);
	for (uint32_t i = 0; i < HOT; i++) {
		struct rec *x = &v[i];
		x->r.key_len = (size_t)snprintf(x->key, sizeof(x->key), "hot-item");
		x->r.key = (const uint8_t *)x->key;
		x->r.event = i ? DDA_EV_MODIFY : DDA_EV_INSERT;
		x->r.time = (int64_t)(HOT - i) * DDA_USEC_PER_SEC; /* against the input's order */
		x->r.obj = i % 50;
		x->r.index = NREC + i;
		x->r.line = NREC + i + 1;
		x->r.has_new = true;
		x->r.has_old = i != 0;
		memset(x->r.new_digest, (int)(i % 251), DDA_DIGEST_LEN);
		memset(x->r.old_digest, (int)((i + 1) % 251), DDA_DIGEST_LEN);
	}
	return v;
}

/* Checked by ranges of key hash on several threads, the anomalies and the
 * visits come in the same order, and the counts add up to what one thread
 * finds. */
static void test_parallel_check_same_findings(void **state)
{
	(void)state;
	struct rec *v = make_records();
	struct visits one = {0}, three = {0}, many = {0};
	struct visits v_one = {0}, v_three = {0}, v_many = {0}, unused = {0};
	struct dda_history_stats a, b, c, d;
	analyze_checked(v, 1, &one, NULL, &a);
	analyze_checked(v, 3, &three, NULL, &b);
	analyze_checked(v, 64, &many, NULL, &c);
	assert_true(one.len > 0);
	assert_int_equal(a.events, NREC + DUPS);
	assert_true(a.duplicates >= DUPS); /* and those the random digests repeat */
	assert_string_equal(three.text, one.text);
	assert_string_equal(many.text, one.text);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_memory_equal(&a, &c, sizeof(a));
	/* With visits: every event once, in the order one thread gives. */
	analyze_checked(v, 1, &unused, &v_one, &d);
	assert_memory_equal(&a, &d, sizeof(a));
	analyze_checked(v, 3, &unused, &v_three, &d);
	assert_memory_equal(&a, &d, sizeof(a));
	analyze_checked(v, 64, &unused, &v_many, &d);
	assert_memory_equal(&a, &d, sizeof(a));
	size_t lines = 0, dups = 0;
	for (const char *l = v_one.text; *l; l = strchr(l, '\n') + 1) {
		unsigned long pos = strtoul(strrchr(strndup_line(l), ' ') + 1, NULL, 10);
		lines++;
		dups += pos % 8 == DDA_V_DUPLICATE;
	}
	assert_int_equal(lines, NREC + DUPS);
	assert_int_equal(dups, a.duplicates);
	assert_string_equal(v_three.text, v_one.text);
	assert_string_equal(v_many.text, v_one.text);
	/* Two threads over and over: the calling one takes ranges while it
	 * waits for the one it hands over next, and must still wait for a range
	 * the other thread is checking when none is left to take. */
	struct rec *hot = make_hot();
	struct visits h_one = {0};
	struct dda_history_stats e;
	analyze_more(v, hot, HOT, 1, &unused, &h_one, &e);
	assert_int_equal(e.events, NREC + DUPS + HOT);
	for (int round = 0; round < 20; round++) {
		struct visits v_two = {0};
		analyze_more(v, hot, HOT, 2, &unused, &v_two, &d);
		assert_memory_equal(&e, &d, sizeof(e));
		assert_string_equal(v_two.text, h_one.text);
		free(v_two.text);
	}
	free(hot);
	free(h_one.text);
	free(v);
	free(one.text);
	free(three.text);
	free(many.text);
	free(v_one.text);
	free(v_three.text);
	free(v_many.text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_sizes),
	    cmocka_unit_test(test_colliding_hashes),
	    cmocka_unit_test(test_large_with_hot_item),
	    cmocka_unit_test(test_merged_sets_visit_in_reference_order),
	    cmocka_unit_test(test_parallel_check_same_findings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
