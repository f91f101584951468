/* util: bounded buffers, time parsing/formatting, durations, ranges, arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/util.h"
#include "util/log.h"

static void test_buf_bounds(void **state)
{
	struct dda_buf b;
	dda_buf_init(&b, 8);
	assert_int_equal(dda_buf_adds(&b, "abcd"), 0);
	assert_int_equal(dda_buf_addf(&b, "%d", 1234), 0);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.ptr, "abcd1234");
	/* One byte over the maximum: the buffer is freed, not truncated. */
	assert_int_equal(dda_buf_addc(&b, 'x'), DDA_ETOOBIG);
	assert_null(b.ptr);
	assert_int_equal(b.len, 0);
	/* The failure is sticky: later appends fail too, so what follows can
	 * never pass for the whole text. */
	assert_int_equal(dda_buf_adds(&b, "ok"), DDA_ETOOBIG);
	assert_int_equal(dda_buf_addf(&b, "%d", 1), DDA_ETOOBIG);
	assert_int_equal(dda_buf_grow(&b, 0), DDA_ETOOBIG);
	assert_int_equal(dda_buf_error(&b), DDA_ETOOBIG);
	assert_null(b.ptr);
	assert_null(dda_buf_take(&b, NULL));
	/* Until the buffer is explicitly reused. */
	dda_buf_reset(&b);
	assert_int_equal(dda_buf_error(&b), 0);
	assert_int_equal(dda_buf_adds(&b, "ok"), 0);
	size_t n;
	char *p = dda_buf_take(&b, &n);
	assert_int_equal(n, 2);
	assert_string_equal(p, "ok");
	assert_null(b.ptr);
	free(p);
	dda_buf_release(&b);
}

static void test_buf_long_format(void **state)
{
	struct dda_buf b;
	dda_buf_init(&b, DDA_BUF_UNLIMITED);
	char big[1000];
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(dda_buf_addf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 1001);
	assert_int_equal(b.ptr[1000], '>');
	dda_buf_release(&b);
}

static int64_t parse(const char *s)
{
	int64_t t = 0;
	assert_int_equal(dda_time_parse(s, strlen(s), &t), 0);
	return t;
}

static void test_time_parse(void **state)
{
	assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse("2025-07-12T08:27:50.412608"),
			 INT64_C(1752308870) * DDA_USEC_PER_SEC + 412608);
	assert_int_equal(parse("2025-07-12T08:27:50.412608Z"), parse("2025-07-12 08:27:50.412608"));
	assert_int_equal(parse("2025-07-12T10:27:50+02:00"), parse("2025-07-12T08:27:50Z"));
	assert_int_equal(parse("2025-07-12"), parse("2025-07-12T00:00"));
	assert_int_equal(parse("2024-02-29T00:00:00.5"), parse("2024-02-29T00:00:00.500000"));
	/* Nanoseconds are truncated to microseconds. */
	assert_int_equal(parse("2025-01-01T00:00:00.123456789Z") % DDA_USEC_PER_SEC, 123456);
	const char *bad[] = {"",
			     "2025",
			     "2025-13-01",
			     "2025-02-29",
			     "2025-07-12T24:00",
			     "2025-07-12T08:60",
			     "2025-07-12T08:00:00.",
			     "2025-07-12X",
			     "1969-12-31",
			     "2025-07-12T08:00:00Zjunk",
			     "2025-7-12"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++) {
		int64_t t;
		assert_int_equal(dda_time_parse(bad[i], strlen(bad[i]), &t), DDA_EFORMAT);
	}
}

static void test_time_format(void **state)
{
	char buf[DDA_TIME_STRLEN];
	int64_t t = parse("2025-07-12T08:27:50.000042Z");
	assert_string_equal(dda_time_format(t, true, buf), "2025-07-12T08:27:50.000042Z");
	assert_string_equal(dda_time_format(t, false, buf), "2025-07-12T08:27:50Z");
	assert_string_equal(dda_time_format(parse("2000-02-29T23:59:59Z"), false, buf),
			    "2000-02-29T23:59:59Z");
	/* Round trip over many days, leap years included. */
	for (int64_t d = 0; d < 20000; d += 37) {
		int64_t x = d * 86400 * DDA_USEC_PER_SEC + 12345;
		dda_time_format(x, true, buf);
		assert_int_equal(parse(buf), x);
	}
}

static void test_duration(void **state)
{
	int64_t d;
	assert_int_equal(dda_duration_parse("36h", &d), 0);
	assert_int_equal(d, 36 * DDA_USEC_PER_HOUR);
	assert_int_equal(dda_duration_parse("90m", &d), 0);
	assert_int_equal(d, 90 * 60 * DDA_USEC_PER_SEC);
	assert_int_equal(dda_duration_parse("2d", &d), 0);
	assert_int_equal(d, 48 * DDA_USEC_PER_HOUR);
	assert_int_equal(dda_duration_parse("45", &d), 0);
	assert_int_equal(d, 45 * DDA_USEC_PER_SEC);
	assert_int_equal(dda_duration_parse("h", &d), DDA_EFORMAT);
	assert_int_equal(dda_duration_parse("5x", &d), DDA_EFORMAT);
	assert_int_equal(dda_duration_parse("5hh", &d), DDA_EFORMAT);
	assert_int_equal(dda_duration_parse("99999999999999h", &d), DDA_EFORMAT);
}

static void test_range(void **state)
{
	struct dda_range r = {parse("2025-07-12T08:00Z"), parse("2025-07-12T10:00Z")};
	assert_true(dda_range_contains(&r, parse("2025-07-12T08:00Z")));
	assert_false(dda_range_contains(&r, parse("2025-07-12T10:00Z")));
	assert_true(dda_range_contains(&r, DDA_TIME_NONE));
	int64_t h = DDA_USEC_PER_HOUR;
	/* One hour of slack each side: 07 and 10 are opened, 06 and 11 are not. */
	assert_false(dda_range_wants(&r, parse("2025-07-12T06:00Z"), parse("2025-07-12T07:00Z")));
	assert_true(
	    dda_range_wants(&r, parse("2025-07-12T07:00Z"), parse("2025-07-12T07:00Z") + h));
	assert_true(
	    dda_range_wants(&r, parse("2025-07-12T10:00Z"), parse("2025-07-12T10:00Z") + h));
	assert_false(
	    dda_range_wants(&r, parse("2025-07-12T11:00Z"), parse("2025-07-12T11:00Z") + h));
	struct dda_range open = {DDA_TIME_NONE, DDA_TIME_NONE};
	assert_true(dda_range_wants(&open, 0, h));
}

static void test_arena(void **state)
{
	struct dda__arena a, b;
	dda__arena_init(&a);
	dda__arena_init(&b);
	char *first = dda__arena_strndup(&a, "hello", 5);
	char *big = dda__arena_alloc(&b, 3 << 20);
	assert_non_null(big);
	memset(big, 1, 3 << 20);
	for (int i = 0; i < 100000; i++)
		assert_non_null(dda__arena_alloc(&b, 24));
	dda__arena_splice(&a, &b);
	assert_null(b.head);
	assert_string_equal(first, "hello");
	assert_int_equal(big[(3 << 20) - 1], 1);
	dda__arena_release(&a);
}

static void test_json_quote(void **state)
{
	struct dda_buf b;
	dda_buf_init(&b, 1024);
	assert_int_equal(dda__json_quote(&b, "a\"b\\c\n\x01z", 8), 0);
	assert_string_equal(b.ptr, "\"a\\\"b\\\\c\\n\\u0001z\"");
	dda_buf_release(&b);
}

struct log_seen {
	int calls, level;
	char line[64];
};

static void log_collect(void *ctx, int level, const char *line)
{
	struct log_seen *seen = ctx;
	seen->calls++;
	seen->level = level;
	snprintf(seen->line, sizeof(seen->line), "%s", line);
}

/* Lines above the caller's level are dropped before formatting; no callback
 * means nothing is logged; URLs lose any user:password@. */
static void test_log(void **state)
{
	(void)state;
	struct log_seen seen = {0};
	struct dda_log l = {log_collect, &seen, DDA_LOG_INFO};
	char url[64];
	dda__log(&l, DDA_LOG_INFO, "listing %s", "p/");
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.level, DDA_LOG_INFO);
	assert_string_equal(seen.line, "listing p/");
	dda__log(&l, DDA_LOG_DEBUG, "every request");
	assert_int_equal(seen.calls, 1);
	dda__log(NULL, DDA_LOG_INFO, "nowhere");
	dda__log(&(struct dda_log){0}, DDA_LOG_INFO, "nowhere");
	assert_int_equal(seen.calls, 1);
	dda__log_url("http://AKIA:s3cret@host:9000/b?x=a@b", url, sizeof(url));
	assert_string_equal(url, "http://host:9000/b?x=a@b");
	dda__log_url("https://host/b/k@1", url, sizeof(url));
	assert_string_equal(url, "https://host/b/k@1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_bounds), cmocka_unit_test(test_buf_long_format),
	    cmocka_unit_test(test_time_parse), cmocka_unit_test(test_time_format),
	    cmocka_unit_test(test_duration),   cmocka_unit_test(test_range),
	    cmocka_unit_test(test_arena),      cmocka_unit_test(test_json_quote),
	    cmocka_unit_test(test_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
