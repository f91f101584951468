/* The adaptive window (src/net/window.c) driven with made-up clocks: it
 * doubles while a latency-bound server answers faster as it grows, stops
 * and gives the growth back where throughput does not follow, halves once
 * per round of throttled answers and grows back one a round, and never
 * grows while it is not full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "net/window.h"

#define MS 1000 /* the window's clock is in microseconds */

/* One round of answers from a server that answers every request latency
 * after it was sent, the window full: the rate is the window over the
 * latency. Returns the events seen. */
static int latency_round(struct dda_window *w, int64_t *now, int64_t latency, int *plateaus)
{
	int n = w->cur;
	for (int i = 0; i < n; i++) {
		*now += latency / n;
		if (dda__window_answer(w, *now, *now - latency, false, true) == DDA_WINDOW_PLATEAU)
			(*plateaus)++;
	}
	return n;
}

/* A server (or a client CPU) that gives a fixed number of answers a
 * second whatever the window. */
static void fixed_rate_answers(struct dda_window *w, int64_t *now, int count, int64_t gap,
			       int *plateaus)
{
	for (int i = 0; i < count; i++) {
		*now += gap;
		if (dda__window_answer(w, *now, *now - 20 * MS, false, true) == DDA_WINDOW_PLATEAU)
			(*plateaus)++;
	}
}

static void test_grows_to_the_maximum_while_latency_bound(void **state)
{
	struct dda_window w;
	int64_t now = 1000000;
	int plateaus = 0;
	dda__window_init(&w, 256, now);
	assert_int_equal(w.cur, DDA_WINDOW_START);
	int rounds = 0;
	while (w.cur < 256 && rounds < 10) {
		latency_round(&w, &now, 20 * MS, &plateaus);
		rounds++;
	}
	/* 16 -> 32 -> 64 -> 128 -> 256: one doubling a round. */
	assert_int_equal(w.cur, 256);
	assert_int_equal(rounds, 4);
	assert_int_equal(w.peak, 256);
	assert_int_equal(plateaus, 0);
	/* And it stays there: the maximum is a ceiling. */
	for (int i = 0; i < 20; i++)
		latency_round(&w, &now, 20 * MS, &plateaus);
	assert_int_equal(w.cur, 256);
	assert_int_equal(plateaus, 0);
}

static void test_stops_where_throughput_stops(void **state)
{
	struct dda_window w;
	int64_t now = 1000000;
	int plateaus = 0;
	dda__window_init(&w, 1024, now);
	/* 5,000 answers a second whatever the window: the first doubling
	 * brings nothing, so the window goes back to where it was measured
	 * and holds; probes later find the same and give it back each time. */
	fixed_rate_answers(&w, &now, 20000, 200, &plateaus);
	assert_true(plateaus >= 2);
	assert_true(w.cur <= 2 * DDA_WINDOW_START);
	assert_true(w.peak <= 4 * DDA_WINDOW_START);
}

static void test_grows_again_when_the_server_speeds_up(void **state)
{
	struct dda_window w;
	int64_t now = 1000000;
	int plateaus = 0;
	dda__window_init(&w, 512, now);
	fixed_rate_answers(&w, &now, 5000, 200, &plateaus);
	assert_true(plateaus >= 1);
	assert_true(w.cur <= 2 * DDA_WINDOW_START);
	/* Now latency is all that limits: the next probe pays, growth goes on. */
	for (int i = 0; i < 60 && w.cur < 512; i++)
		latency_round(&w, &now, 20 * MS, &plateaus);
	assert_int_equal(w.cur, 512);
}

static void test_throttling_halves_once_per_round(void **state)
{
	struct dda_window w;
	int64_t now = 1000000;
	int plateaus = 0;
	dda__window_init(&w, 256, now);
	for (int i = 0; i < 3; i++)
		latency_round(&w, &now, 20 * MS, &plateaus);
	assert_int_equal(w.cur, 128);
	int64_t sent = now - 20 * MS;
	now += MS;
	assert_int_equal(dda__window_answer(&w, now, sent, true, true), DDA_WINDOW_CUT);
	assert_int_equal(w.cur, 64);
	assert_int_equal(w.cuts, 1);
	/* The other requests sent before the cut were sent at the old rate:
	 * their 503s do not cut again, nor do their successes grow it. */
	for (int i = 0; i < 50; i++) {
		now += 10;
		assert_int_equal(dda__window_answer(&w, now, sent, i % 2 == 0, true),
				 DDA_WINDOW_SAME);
	}
	assert_int_equal(w.cur, 64);
	assert_int_equal(w.cuts, 1);
	/* A request sent after the cut and throttled too: halved again. */
	now += MS;
	assert_int_equal(dda__window_answer(&w, now, now - 10, true, true), DDA_WINDOW_CUT);
	assert_int_equal(w.cur, 32);
	assert_int_equal(w.cuts, 2);
	/* Recovery is one transfer a round, not a doubling (for requests sent
	 * after the cut). */
	now += 20 * MS;
	latency_round(&w, &now, 20 * MS, &plateaus);
	assert_int_equal(w.cur, 33);
	latency_round(&w, &now, 20 * MS, &plateaus);
	assert_int_equal(w.cur, 34);
	/* Down to one at the least, never zero. */
	for (int i = 0; i < 20; i++) {
		now += MS;
		dda__window_answer(&w, now, now - 1, true, true);
	}
	assert_int_equal(w.cur, 1);
	assert_int_equal(w.peak, 128);
}

static void test_no_growth_while_not_full(void **state)
{
	struct dda_window w;
	int64_t now = 1000000;
	dda__window_init(&w, 256, now);
	for (int i = 0; i < 1000; i++) {
		now += MS;
		dda__window_answer(&w, now, now - 20 * MS, false, false);
	}
	assert_int_equal(w.cur, DDA_WINDOW_START);
	assert_int_equal(w.peak, DDA_WINDOW_START);
}

static void test_small_maximum(void **state)
{
	struct dda_window w;
	int64_t now = 1000000;
	int plateaus = 0;
	dda__window_init(&w, 4, now);
	assert_int_equal(w.cur, 4);
	for (int i = 0; i < 10; i++)
		latency_round(&w, &now, 20 * MS, &plateaus);
	assert_int_equal(w.cur, 4);
	dda__window_init(&w, 0, now);
	assert_int_equal(w.cur, 1);
	assert_int_equal(dda__window_answer(&w, now + 1, now, true, true), DDA_WINDOW_CUT);
	assert_int_equal(w.cur, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grows_to_the_maximum_while_latency_bound),
	    cmocka_unit_test(test_stops_where_throughput_stops),
	    cmocka_unit_test(test_grows_again_when_the_server_speeds_up),
	    cmocka_unit_test(test_throttling_halves_once_per_round),
	    cmocka_unit_test(test_no_growth_while_not_full),
	    cmocka_unit_test(test_small_maximum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
