/* Spilled runs: the block codec round-trips every field of an event (keys
 * left out and old digests elided within an item, sequence numbers, keys
 * longer than a block, negative and decreasing times), several runs share
 * a file, and a cut or damaged file is refused with an error rather than
 * read wrong. A history bounded by a tiny budget spills many runs (more
 * than a merge takes at once) and analysis sees the events in exactly the
 * order an unbounded history gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/util.h"
#include "history/history_impl.h"

static char tmpdir[] = "/tmp/dda-test-spill-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

/* A pseudo-random event of item `item` (keys of varied length). */
static void make_event(struct dda__event *e, uint8_t *keybuf, char *seqbuf, uint32_t item,
		       uint32_t i, size_t key_len)
{
	memset(e, 0, sizeof(*e));
	for (size_t k = 0; k < key_len; k++)
		keybuf[k] = (uint8_t)(item * 31 + k);
	e->key = keybuf;
	e->key_len = (uint32_t)key_len;
	e->khash = dda__hash64(keybuf, key_len);
	e->time = (int64_t)(i % 7) * -1000003 + (int64_t)item * 77;
	e->line = i * 3 + 1;
	e->obj = i * 11 + item;
	e->index = i % 5;
	e->event = (uint8_t)(i % 4);
	e->flags = (uint8_t)(i % 32);
	if (i % 3) {
		int n = snprintf(seqbuf, 64, "%u%u", item, i);
		e->seq = seqbuf;
		e->seq_len = (uint16_t)n;
	}
	if (e->flags & DDA__F_OLD)
		memset(e->old_digest, (int)(i - 1), DDA_DIGEST_LEN); /* often prev's new */
	if (e->flags & DDA__F_NEW)
		memset(e->new_digest, (int)i, DDA_DIGEST_LEN);
}

static void assert_same_event(const struct dda__event *a, const struct dda__event *b)
{
	assert_int_equal(a->khash, b->khash);
	assert_int_equal(a->key_len, b->key_len);
	assert_memory_equal(a->key, b->key, a->key_len);
	assert_int_equal(a->time, b->time);
	assert_int_equal(a->line, b->line);
	assert_int_equal(a->obj, b->obj);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->event, b->event);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->seq != NULL, b->seq != NULL);
	assert_int_equal(a->seq_len, b->seq_len);
	if (a->seq)
		assert_memory_equal(a->seq, b->seq, a->seq_len);
	assert_memory_equal(a->old_digest, b->old_digest, DDA_DIGEST_LEN);
	assert_memory_equal(a->new_digest, b->new_digest, DDA_DIGEST_LEN);
}

/* The size of the i-th item's key: a few huge ones cross block bounds. */
static size_t key_size(uint32_t item)
{
	return item % 97 == 5 ? 3 * DDA__RUN_BLOCK : 8 + item % 40;
}

#define ITEMS 400
#define PER_ITEM 25

static void write_run(struct dda__spill_file *f, struct dda__run *run, uint32_t salt)
{
	struct dda__run_writer w;
	struct dda_error err = {0};
	uint8_t *key = malloc(3 * DDA__RUN_BLOCK);
	char seq[64];
	struct dda__event e;
	assert_int_equal(dda__run_writer_init(&w, f, &err), 0);
	for (uint32_t item = 0; item < ITEMS; item++)
		for (uint32_t i = 0; i < PER_ITEM; i++) {
			make_event(&e, key, seq, item + salt, i, key_size(item));
			assert_int_equal(dda__run_put(&w, &e, &err), 0);
		}
	assert_int_equal(dda__run_finish(&w, run, &err), 0);
	dda__run_writer_release(&w);
	free(key);
	assert_int_equal(run->events, ITEMS * PER_ITEM);
}

static void check_run(const struct dda__run *run, uint32_t salt)
{
	struct dda__run_reader r;
	struct dda_error err = {0};
	uint8_t *key = malloc(3 * DDA__RUN_BLOCK);
	char seq[64];
	struct dda__event e;
	assert_int_equal(dda__run_reader_init(&r, run, &err), 0);
	for (uint32_t item = 0; item < ITEMS; item++)
		for (uint32_t i = 0; i < PER_ITEM; i++) {
			make_event(&e, key, seq, item + salt, i, key_size(item));
			assert_int_equal(dda__run_next(&r, &err), 1);
			assert_same_event(&e, &r.cur);
		}
	assert_int_equal(dda__run_next(&r, &err), 0);
	dda__run_reader_release(&r);
	free(key);
}

static void test_roundtrip(void **state)
{
	struct dda__spill_file f;
	struct dda_error err = {0};
	struct dda__run a, b;
	(void)state;
	assert_int_equal(dda__spill_file_open(&f, tmpdir, &err), 0);
	write_run(&f, &a, 0);
	write_run(&f, &b, 1000);
	assert_int_equal(b.off, a.off + a.len);
	/* Items repeat their key and chain their digests: the run is smaller
	 * than the events' fixed fields alone. */
	assert_true(a.len < (uint64_t)ITEMS * PER_ITEM * 2 * DDA_DIGEST_LEN);
	check_run(&b, 1000);
	check_run(&a, 0);
	dda__spill_file_close(&f);
}

/* Reads a run to its end: the first error, or 0. */
static int read_all(const struct dda__run *run, struct dda_error *err)
{
	struct dda__run_reader r;
	int rc = dda__run_reader_init(&r, run, err);
	while (!rc && (rc = dda__run_next(&r, err)) == 1)
		rc = 0;
	dda__run_reader_release(&r);
	return rc;
}

static void test_cut_file_is_an_error(void **state)
{
	struct dda__spill_file f;
	struct dda_error err = {0};
	struct dda__run a;
	(void)state;
	assert_int_equal(dda__spill_file_open(&f, tmpdir, &err), 0);
	write_run(&f, &a, 0);
	assert_int_equal(ftruncate(f.fd, (off_t)(a.len / 2)), 0);
	assert_int_equal(read_all(&a, &err), DDA_EIO);
	assert_non_null(strstr(err.msg, tmpdir));
	assert_non_null(strstr(err.msg, "short read"));
	/* A run said to hold more events than it does. */
	write_run(&f, &a, 0);
	a.off = (uint64_t)(a.len / 2); /* nonsense: points into the cut part */
	assert_true(read_all(&a, &err) < 0);
	dda__spill_file_close(&f);
}

static void test_damaged_bytes_are_refused(void **state)
{
	struct dda__spill_file f;
	struct dda_error err = {0};
	struct dda__run a;
	(void)state;
	assert_int_equal(dda__spill_file_open(&f, tmpdir, &err), 0);
	write_run(&f, &a, 0);
	/* Every byte of the first 4 KiB flipped in turn: zlib's checksum or
	 * the decoder's checks refuse it; nothing crashes or reads wrong
	 * silently into a run of the same count. */
	for (off_t at = 0; at < 4096; at += 7) {
		uint8_t b, x;
		assert_int_equal(pread(f.fd, &b, 1, (off_t)a.off + at), 1);
		x = b ^ 0x5a;
		assert_int_equal(pwrite(f.fd, &x, 1, (off_t)a.off + at), 1);
		int rc = read_all(&a, &err);
		assert_true(rc == DDA_EFORMAT || rc == DDA_EIO);
		assert_int_equal(pwrite(f.fd, &b, 1, (off_t)a.off + at), 1);
	}
	assert_int_equal(read_all(&a, &err), 0);
	struct dda__run wrong = a;
	wrong.events++;
	assert_int_equal(read_all(&wrong, &err), DDA_EFORMAT);
	wrong.events -= 2;
	assert_int_equal(read_all(&wrong, &err), DDA_EFORMAT);
	dda__spill_file_close(&f);
}

/* ---- a bounded history against an unbounded one ---- */

struct seen {
	char *text;
	size_t len, cap;
	uint64_t anomalies;
};

DDA_PRINTF(2, 3)
static void seen_add(struct seen *s, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->len + (size_t)n + 1 > s->cap) {
		s->cap = 2 * s->cap + (size_t)n + 1024;
		s->text = realloc(s->text, s->cap);
		assert_non_null(s->text);
	}
	memcpy(s->text + s->len, line, (size_t)n + 1);
	s->len += (size_t)n;
}

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	struct seen *s = ctx;
	s->anomalies++;
	seen_add(s, "A %d %u %u\n", a->kind, a->obj, a->index);
	dda_anomaly_release(a);
	return 0;
}

static int on_visit(void *ctx, const struct dda_event_view *e)
{
	seen_add(ctx, "V %.*s %u %u %d\n", (int)e->key_len, (const char *)e->key, e->obj, e->index,
		 e->verdict);
	return 0;
}

/* Adds the same damaged log to h: items with chains, time ties, retries
 * and sequence numbers, spread over two histories as two threads would. */
static void fill(struct dda_history *h0, struct dda_history *h1)
{
	char key[32], old[32], new[32], seq[32];
	for (uint32_t item = 0; item < 600; item++) {
		int n = snprintf(key, sizeof(key), "item-%u", item * 7919 % 1000);
		for (uint32_t i = 0; i < 12; i++) {
			struct dda_record r = {0};
			r.key = (const uint8_t *)key;
			r.key_len = (size_t)n;
			r.event = i == 0 ? DDA_EV_INSERT : i == 11 ? DDA_EV_REMOVE : DDA_EV_MODIFY;
			/* Ties on time every third event; a gap every 13th item. */
			r.time = (int64_t)(i - i % 3) * DDA_USEC_PER_SEC;
			r.obj = (item * 12 + (11 - i)) % 997;
			r.index = i;
			snprintf(old, sizeof(old), "%u-%u", item, i - (item % 13 == 0 && i == 5));
			snprintf(new, sizeof(new), "%u-%u", item, i + 1);
			if (item % 2) {
				r.seq_len =
				    (size_t)snprintf(seq, sizeof(seq), "%u", 100 + i - (i == 7));
				r.seq = seq;
			}
			r.has_old = r.event != DDA_EV_INSERT;
			r.has_new = r.event != DDA_EV_REMOVE;
			dda__sha256(old, strlen(old), r.old_digest);
			dda__sha256(new, strlen(new), r.new_digest);
			assert_int_equal(dda_history_add((item + i) % 2 ? h1 : h0, &r), 0);
		}
	}
}

static void analyze(struct dda_history_budget *b, struct seen *s, struct dda_history_stats *st)
{
	struct dda_history *h0 = dda_history_new_bounded(b), *h1 = dda_history_new_bounded(b);
	struct dda_error err = {0};
	fill(h0, h1);
	assert_int_equal(dda_history_merge(h0, h1), 0);
	struct dda_history_opts o = {.settle_from = DDA_TIME_NONE,
				     .ctx = s,
				     .anomaly = on_anomaly,
				     .visit = on_visit,
				     .err = &err};
	assert_int_equal(dda_history_analyze(h0, &o, st), 0);
	dda_history_free(h1);
	dda_history_free(h0);
}

static void test_bounded_history_same_order(void **state)
{
	struct seen plain = {0}, bounded = {0};
	struct dda_history_stats a, b;
	struct dda_spill_stats sp;
	(void)state;
	analyze(NULL, &plain, &a);
	struct dda_history_budget *budget = dda_history_budget_new(16 << 10, tmpdir, NULL);
	assert_non_null(budget);
	analyze(budget, &bounded, &b);
	dda_history_budget_stats(budget, &sp);
	/* More runs than one merge takes: some were merged first. */
	assert_true(sp.runs > 64);
	assert_true(sp.events > 6000);
	assert_int_equal(dda_history_budget_error(budget, NULL), 0);
	dda_history_budget_free(budget);
	assert_true(plain.anomalies > 0);
	assert_int_equal(plain.len, bounded.len);
	assert_string_equal(plain.text, bounded.text);
	assert_memory_equal(&a, &b, sizeof(a));
	free(plain.text);
	free(bounded.text);
}

static void test_unwritable_dir_keeps_events(void **state)
{
	struct seen plain = {0}, failed = {0};
	struct dda_history_stats a, b;
	struct dda_error err = {0};
	(void)state;
	analyze(NULL, &plain, &a);
	struct dda_history_budget *budget =
	    dda_history_budget_new(16 << 10, "/nonexistent/dda-spill", NULL);
	analyze(budget, &failed, &b);
	assert_int_equal(dda_history_budget_error(budget, &err), DDA_EIO);
	assert_non_null(strstr(err.msg, "'/nonexistent/dda-spill'"));
	dda_history_budget_free(budget);
	/* Nothing was dropped: the events stayed in memory. */
	assert_string_equal(plain.text, failed.text);
	free(plain.text);
	free(failed.text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_cut_file_is_an_error),
	    cmocka_unit_test(test_damaged_bytes_are_refused),
	    cmocka_unit_test(test_bounded_history_same_order),
	    cmocka_unit_test(test_unwritable_dir_keeps_events),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
