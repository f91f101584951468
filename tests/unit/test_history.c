/* Item histories: ordering, tie-breaks by chain linkage, and every chain
 * anomaly, including the retried-duplicate-is-not-a-gap case. Images are
 * stood in for by digests of labels ("v1", "v2", ...). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/util.h"
#include "ddbaudit/history.h"

#define T0 (INT64_C(1752300000) * DDA_USEC_PER_SEC)
#define SEC DDA_USEC_PER_SEC

struct found {
	int kinds[64];
	int sev[64];
	bool provisional[64];
	uint32_t obj[64];
	int n;
	int verdicts[64];
	uint32_t order[64];
	int nvisits;
};

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	struct found *f = ctx;
	if (f->n < 64) {
		f->kinds[f->n] = a->kind;
		f->sev[f->n] = a->severity;
		f->provisional[f->n] = a->provisional;
		f->obj[f->n] = a->obj;
		f->n++;
	}
	dda_anomaly_release(a);
	return 0;
}

static int on_visit(void *ctx, const struct dda_event_view *e)
{
	struct found *f = ctx;
	if (f->nvisits < 64) {
		f->verdicts[f->nvisits] = e->verdict;
		f->order[f->nvisits++] = e->obj;
	}
	return 0;
}

/* Adds an event; old/new are labels or NULL. obj doubles as an identifier. */
static void add(struct dda_history *h, const char *key, int ev, int64_t t, const char *old,
		const char *new, uint32_t obj, const char *seq)
{
	struct dda_record r = {0};
	r.key = (const uint8_t *)key;
	r.key_len = strlen(key);
	r.event = ev;
	r.time = t;
	r.obj = obj;
	r.seq = seq;
	r.seq_len = seq ? strlen(seq) : 0;
	if (old) {
		r.has_old = true;
		dda__sha256(old, strlen(old), r.old_digest);
	}
	if (new) {
		r.has_new = true;
		dda__sha256(new, strlen(new), r.new_digest);
	}
	assert_int_equal(dda_history_add(h, &r), 0);
}

static struct dda_history_stats run(struct dda_history *h, struct found *f, int64_t settle)
{
	struct dda_history_opts o = {
	    .settle_from = settle, .ctx = f, .anomaly = on_anomaly, .visit = on_visit};
	struct dda_history_stats st;
	memset(f, 0, sizeof(*f));
	assert_int_equal(dda_history_analyze(h, &o, &st), 0);
	return st;
}

static void test_clean_chain(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_MODIFY, T0 + 2 * SEC, "v1", "v2", 2, NULL);
	add(h, "k", DDA_EV_INSERT, T0, NULL, "v1", 1, NULL);
	add(h, "k", DDA_EV_REMOVE, T0 + 3 * SEC, "v2", NULL, 3, NULL);
	add(h, "k", DDA_EV_INSERT, T0 + 4 * SEC, NULL, "v9", 4, NULL);
	struct dda_history_stats st = run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 0);
	assert_int_equal(st.items, 1);
	assert_int_equal(st.events, 4);
	assert_int_equal(st.by_event[DDA_EV_INSERT], 2);
	assert_int_equal(f.nvisits, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f.order[i], i + 1);
	dda_history_free(h);
}

/* Items are counted by their number of events on power-of-two buckets: 1,
 * 2-3, 4-7, ...; the last bucket takes everything above. */
static void test_items_by_events(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	static const int events[] = {1, 2, 3, 5, 4096};
	char key[16], v[32], w[32];
	(void)state;
	for (size_t i = 0; i < DDA_ARRAY_SIZE(events); i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		add(h, key, DDA_EV_INSERT, T0, NULL, "v0", 1, NULL);
		for (int e = 1; e < events[i]; e++) {
			snprintf(v, sizeof(v), "v%d", e - 1);
			snprintf(w, sizeof(w), "v%d", e);
			add(h, key, DDA_EV_MODIFY, T0 + e * SEC, v, w, 1, NULL);
		}
	}
	struct dda_history_stats st = run(h, &f, DDA_TIME_NONE);
	assert_int_equal(st.items, 5);
	assert_int_equal(st.items_by_events[0], 1);
	assert_int_equal(st.items_by_events[1], 2);
	assert_int_equal(st.items_by_events[2], 1);
	assert_int_equal(st.items_by_events[DDA_CHANGE_BUCKETS - 1], 1);
	uint64_t sum = 0;
	for (int b = 0; b < DDA_CHANGE_BUCKETS; b++)
		sum += st.items_by_events[b];
	assert_int_equal(sum, st.items);
	dda_history_free(h);
}

static void test_gap(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_INSERT, T0, NULL, "v1", 1, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + SEC, "v2", "v3", 2, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + 2 * SEC, "v3", "v4", 3, NULL);
	run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.kinds[0], DDA_K_GAP);
	assert_int_equal(f.sev[0], DDA_SEV_ERROR);
	assert_int_equal(f.obj[0], 2);
	dda_history_free(h);
}

/* A retried batch re-writes v1->v2 later, after the item moved on: one
 * DUPLICATE, no GAP, and the state is unaffected. */
static void test_retry_duplicate_is_not_gap(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_INSERT, T0, NULL, "v1", 1, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + SEC, "v1", "v2", 2, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + 2 * SEC, "v2", "v3", 3, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + 120 * SEC, "v1", "v2", 4, NULL);
	add(h, "k", DDA_EV_INSERT, T0 + 121 * SEC, NULL, "v1", 5, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + 200 * SEC, "v3", "v4", 6, NULL);
	struct dda_history_stats st = run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.kinds[0], DDA_K_DUPLICATE);
	assert_int_equal(f.kinds[1], DDA_K_DUPLICATE);
	assert_int_equal(st.duplicates, 2);
	assert_int_equal(f.verdicts[3], DDA_V_DUPLICATE);
	assert_int_equal(f.verdicts[5], DDA_V_APPLIED);
	dda_history_free(h);
}

/* A value toggled back and forth repeats a change genuinely. */
static void test_toggle_is_applied(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_INSERT, T0, NULL, "a", 1, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + SEC, "a", "b", 2, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + 2 * SEC, "b", "a", 3, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + 3 * SEC, "a", "b", 4, NULL);
	struct dda_history_stats st = run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 0);
	assert_int_equal(st.duplicates, 0);
	dda_history_free(h);
}

static void test_lifecycle_anomalies(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "a", DDA_EV_MODIFY, T0, "x", "y", 1, NULL);	  /* UNKNOWN_PRIOR */
	add(h, "a", DDA_EV_INSERT, T0 + SEC, NULL, "z", 2, NULL); /* DOUBLE_INSERT */
	add(h, "a", DDA_EV_REMOVE, T0 + 2 * SEC, "z", NULL, 3, NULL);
	add(h, "a", DDA_EV_MODIFY, T0 + 3 * SEC, "z", "w", 4, NULL); /* MODIFY_AFTER_REMOVE */
	add(h, "a", DDA_EV_MODIFY, T0 + 4 * SEC, "w", "w", 5, NULL); /* NO_OP_MODIFY */
	run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 4);
	assert_int_equal(f.kinds[0], DDA_K_UNKNOWN_PRIOR);
	assert_int_equal(f.sev[0], DDA_SEV_INFO);
	assert_int_equal(f.kinds[1], DDA_K_DOUBLE_INSERT);
	assert_int_equal(f.kinds[2], DDA_K_MODIFY_AFTER_REMOVE);
	assert_int_equal(f.kinds[3], DDA_K_NO_OP_MODIFY);
	assert_int_equal(f.sev[3], DDA_SEV_INFO);
	dda_history_free(h);
}

/* Equal times: the event that continues the chain goes first, whatever the
 * object order says. */
static void test_tie_broken_by_chain(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_INSERT, T0, NULL, "v1", 1, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + SEC, "v2", "v3", 2, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + SEC, "v1", "v2", 3, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + SEC, "v3", "v4", 4, NULL);
	run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.order[1], 3);
	assert_int_equal(f.order[2], 2);
	assert_int_equal(f.order[3], 4);
	dda_history_free(h);
}

/* Without a chain to follow, ties fall back to the object order. */
static void test_tie_without_chain_uses_object_order(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_MODIFY, T0, "p", "q", 7, NULL);
	add(h, "k", DDA_EV_MODIFY, T0, "r", "s", 5, NULL);
	run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.order[0], 5);
	assert_int_equal(f.order[1], 7);
	assert_int_equal(f.kinds[0], DDA_K_UNKNOWN_PRIOR);
	assert_int_equal(f.kinds[1], DDA_K_GAP);
	dda_history_free(h);
}

/* Sequence numbers order events (as integers) regardless of time, and a
 * repeated sequence number is a duplicate. */
static void test_sequence_numbers(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_MODIFY, T0, "v1", "v2", 2, "1000");
	add(h, "k", DDA_EV_INSERT, T0 + 50 * SEC, NULL, "v1", 1, "999");
	add(h, "k", DDA_EV_MODIFY, T0 + 60 * SEC, "v1", "v2", 3, "1000");
	struct dda_history_stats st = run(h, &f, DDA_TIME_NONE);
	assert_int_equal(f.order[0], 1);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.kinds[0], DDA_K_DUPLICATE);
	assert_int_equal(st.duplicates, 1);
	dda_history_free(h);
}

static void test_settle_makes_gap_provisional(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	add(h, "k", DDA_EV_INSERT, T0, NULL, "v1", 1, NULL);
	add(h, "k", DDA_EV_MODIFY, T0 + 100 * SEC, "v2", "v3", 2, NULL);
	add(h, "j", DDA_EV_INSERT, T0, NULL, "v1", 3, NULL);
	add(h, "j", DDA_EV_MODIFY, T0 + 10 * SEC, "v2", "v3", 4, NULL);
	run(h, &f, T0 + 50 * SEC);
	assert_int_equal(f.n, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f.kinds[i], DDA_K_GAP);
		bool late = f.obj[i] == 2;
		assert_int_equal(f.provisional[i], late);
		assert_int_equal(f.sev[i], late ? DDA_SEV_WARNING : DDA_SEV_ERROR);
	}
	dda_history_free(h);
}

/* Many interleaved items, split across two histories and merged: every item
 * stays one history and the merged result equals the single one. */
/* A full export's item state is a known state: no UNKNOWN_PRIOR after it,
 * a change whose old image differs from it is a GAP, and a state that
 * differs from what the changes before it left (or shows a removed item)
 * is a GAP. States are counted apart from changes. */
static void test_states(void **state)
{
	struct dda_history *h = dda_history_new();
	struct found f;
	/* "a": state, then a change from it: clean. */
	add(h, "a", DDA_EV_STATE, T0, NULL, "v1", 1, NULL);
	add(h, "a", DDA_EV_MODIFY, T0 + SEC, "v1", "v2", 2, NULL);
	/* "b": a change from another state than the export's: GAP. */
	add(h, "b", DDA_EV_STATE, T0, NULL, "v1", 3, NULL);
	add(h, "b", DDA_EV_MODIFY, T0 + SEC, "v5", "v6", 4, NULL);
	/* "c": the log's state before the export differs from it: GAP. */
	add(h, "c", DDA_EV_INSERT, T0 - SEC, NULL, "v1", 5, NULL);
	add(h, "c", DDA_EV_STATE, T0, NULL, "v2", 6, NULL);
	/* "d": removed before the export, which still holds it: GAP. */
	add(h, "d", DDA_EV_INSERT, T0 - 2 * SEC, NULL, "v1", 7, NULL);
	add(h, "d", DDA_EV_REMOVE, T0 - SEC, "v1", NULL, 8, NULL);
	add(h, "d", DDA_EV_STATE, T0, NULL, "v1", 9, NULL);
	/* "e": the log agrees with the export; then an INSERT of an existing
	 * item is DOUBLE_INSERT. */
	add(h, "e", DDA_EV_INSERT, T0 - SEC, NULL, "v1", 10, NULL);
	add(h, "e", DDA_EV_STATE, T0, NULL, "v1", 11, NULL);
	add(h, "e", DDA_EV_INSERT, T0 + SEC, NULL, "v3", 12, NULL);
	struct dda_history_stats st = run(h, &f, DDA_TIME_NONE);
	assert_int_equal(st.items, 5);
	assert_int_equal(st.states, 5);
	assert_int_equal(st.events, 12);
	assert_int_equal(st.by_event[DDA_EV_INSERT] + st.by_event[DDA_EV_MODIFY] +
			     st.by_event[DDA_EV_REMOVE],
			 7);
	int gaps = 0, doubles = 0;
	for (int i = 0; i < f.n; i++) {
		assert_int_not_equal(f.kinds[i], DDA_K_UNKNOWN_PRIOR);
		if (f.kinds[i] == DDA_K_GAP) {
			gaps++;
			assert_true(f.obj[i] == 4 || f.obj[i] == 6 || f.obj[i] == 9);
		}
		doubles += f.kinds[i] == DDA_K_DOUBLE_INSERT;
	}
	assert_int_equal(gaps, 3);
	assert_int_equal(doubles, 1);
	assert_int_equal(f.n, 4);
	dda_history_free(h);
}

static void test_merge_and_grouping(void **state)
{
	struct dda_history *one = dda_history_new(), *a = dda_history_new(), *b = dda_history_new();
	char key[32], v0[16], v1[16];
	for (int step = 0; step < 5; step++) {
		for (int item = 0; item < 7000; item++) {
			snprintf(key, sizeof(key), "item-%d", item);
			snprintf(v0, sizeof(v0), "%d-%d", item, step - 1);
			snprintf(v1, sizeof(v1), "%d-%d", item, step);
			int ev = step ? DDA_EV_MODIFY : DDA_EV_INSERT;
			uint32_t obj = (uint32_t)(step * 7000 + item);
			int64_t t = T0 + step * SEC;
			add(one, key, ev, t, step ? v0 : NULL, v1, obj, NULL);
			add((item + step) % 2 ? a : b, key, ev, t, step ? v0 : NULL, v1, obj, NULL);
		}
	}
	assert_int_equal(dda_history_merge(a, b), 0);
	assert_int_equal(dda_history_count(a), 35000);
	assert_int_equal(dda_history_count(b), 0);
	struct found f;
	struct dda_history_stats s1 = run(one, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 0);
	struct dda_history_stats s2 = run(a, &f, DDA_TIME_NONE);
	assert_int_equal(f.n, 0);
	assert_int_equal(s1.items, 7000);
	assert_int_equal(s2.items, 7000);
	assert_int_equal(s2.events, 35000);
	/* Per-event memory stays small: digests and a key, not images. */
	assert_true(dda_history_bytes(a) / 35000 < 256);
	dda_history_free(one);
	dda_history_free(a);
	dda_history_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clean_chain),
	    cmocka_unit_test(test_gap),
	    cmocka_unit_test(test_retry_duplicate_is_not_gap),
	    cmocka_unit_test(test_toggle_is_applied),
	    cmocka_unit_test(test_lifecycle_anomalies),
	    cmocka_unit_test(test_tie_broken_by_chain),
	    cmocka_unit_test(test_tie_without_chain_uses_object_order),
	    cmocka_unit_test(test_sequence_numbers),
	    cmocka_unit_test(test_settle_makes_gap_provisional),
	    cmocka_unit_test(test_merge_and_grouping),
	    cmocka_unit_test(test_states),
	    cmocka_unit_test(test_items_by_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
