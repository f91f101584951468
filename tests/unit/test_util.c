/* util: bounded buffers, time parsing/formatting, durations, ranges, arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

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

static void test_utf8_valid(void **state)
{
	(void)state;
	assert_true(dda__utf8_valid("", 0));
	assert_true(dda__utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	assert_false(dda__utf8_valid("\xff", 1));
	assert_false(dda__utf8_valid("\xe2\x82", 2));	  /* cut short */
	assert_false(dda__utf8_valid("\xc0\xaf", 2));	  /* overlong '/' */
	assert_false(dda__utf8_valid("\xed\xa0\x80", 3)); /* a surrogate */
	assert_false(dda__utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	assert_true(dda__name_plain("a/b c", 5));
	assert_false(dda__name_plain("a\\b", 3));
	/* A control character would split a listing's line: not plain. */
	assert_false(dda__name_plain("a\nb", 3));
	assert_false(dda__name_plain("a\x7f", 2));
	assert_true(dda__name_plain("a\xc2\x85", 3)); /* U+0085 is valid UTF-8 text */
}

static void test_name_escape(void **state)
{
	(void)state;
	struct dda_buf b;
	dda_buf_init(&b, 1 << 10);
	/* Invalid bytes as \xHH, backslashes doubled, valid UTF-8 as is. */
	assert_int_equal(dda__name_escape(&b, "a\\x\xff\xe2\x82-\xc3\xa9", 9), 0);
	assert_string_equal(b.ptr, "a\\\\x\\xFF\\xE2\\x82-\xc3\xa9");
	dda_buf_reset(&b);
	assert_int_equal(dda__name_escape(&b, "", 0), 0);
	assert_non_null(b.ptr);
	assert_string_equal(b.ptr, "");
	/* Control characters as \xHH too: one name stays on one line. */
	assert_int_equal(dda__name_escape(&b, "a\nb\tc\x1b", 6), 0);
	assert_string_equal(b.ptr, "a\\x0Ab\\x09c\\x1B");
	dda_buf_reset(&b);
	/* Plain names are not copied; others are, and NULL is "". */
	const char *plain = "2025/07/12/08/u-a.json";
	assert_ptr_equal(dda__name_text(&b, plain), plain);
	assert_string_equal(dda__name_text(&b, "k\\\xfe"), "k\\\\\\xFE");
	assert_string_equal(dda__name_text(&b, NULL), "");
	/* Messages keep their backslashes unless they must be escaped. */
	const char *msg = "cannot read 'a\\b'";
	assert_ptr_equal(dda__text_utf8(&b, msg), msg);
	assert_string_equal(dda__text_utf8(&b, "'\xff'"), "'\\xFF'");
	dda_buf_release(&b);
}

static void test_json_name(void **state)
{
	(void)state;
	struct dda_buf b;
	dda_buf_init(&b, 1 << 10);
	assert_int_equal(dda__json_name(&b, "key", "a\"\\b", 4), 0);
	assert_string_equal(b.ptr, "\"key\":\"a\\\"\\\\b\"");
	dda_buf_reset(&b);
	assert_int_equal(dda__json_name(&b, "key", "x\xff", 2), 0);
	assert_string_equal(b.ptr, "\"key\":\"x\\\\xFF\",\"key_b64\":\"eP8=\"");
	dda_buf_reset(&b);
	assert_int_equal(dda__base64_encode("ab", 2, &b), 0);
	assert_string_equal(b.ptr, "YWI=");
	dda_buf_release(&b);
}

static char *temp_dir(void)
{
	char tmpl[] = "/tmp/dda-afile-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void test_afile(void **state)
{
	(void)state;
	char *dir = temp_dir();
	char path[512];
	struct dda_error err = {0};
	struct dda__afile a;
	snprintf(path, sizeof(path), "%s/out.txt", dir);
	/* The final name is untouched until the rename. */
	FILE *old = fopen(path, "wb");
	assert_non_null(old);
	fputs("old\n", old);
	fclose(old);
	assert_int_equal(dda__afile_open(&a, path, &err), 0);
	assert_non_null(strstr(a.tmp.ptr, "/.out.txt."));
	FILE *f = dda__afile_stream(&a, &err);
	assert_non_null(f);
	fputs("new\n", f);
	assert_int_equal(dda__afile_finish(&a, &err), 0);
	struct dda_buf got;
	dda_buf_init(&got, 1 << 10);
	assert_int_equal(dda__read_file(path, &got, &err), 0);
	assert_string_equal(got.ptr, "old\n");
	assert_int_equal(dda__afile_commit(&a, &err), 0);
	dda__afile_discard(&a);
	dda_buf_reset(&got);
	assert_int_equal(dda__read_file(path, &got, &err), 0);
	assert_string_equal(got.ptr, "new\n");
	assert_int_equal(dir_entries(dir), 1);
	/* Discarded before the rename: nothing is left, the old file stands. */
	assert_int_equal(dda__afile_open(&a, path, &err), 0);
	assert_int_equal(dir_entries(dir), 2);
	dda__afile_discard(&a);
	assert_int_equal(dir_entries(dir), 1);
	dda__afile_discard(&a); /* again: a no-op */
	/* A directory that does not exist: an error naming the file. */
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/no/such/file", dir);
	assert_int_equal(dda__afile_open(&a, missing, &err), DDA_EIO);
	assert_non_null(strstr(err.msg, "no/such/file"));
	dda__afile_discard(&a);
	/* The lock is a file beside the set; it can be taken again once released. */
	int lock;
	assert_int_equal(dda__dir_lock(dir, &lock, &err), 0);
	dda__dir_unlock(lock);
	assert_int_equal(dda__dir_lock(dir, &lock, &err), 0);
	dda__dir_unlock(lock);
	assert_int_equal(dir_entries(dir), 2);
	char lockpath[600];
	snprintf(lockpath, sizeof(lockpath), "%s/.lock", dir);
	unlink(lockpath);
	unlink(path);
	rmdir(dir);
	dda_buf_release(&got);
	free(dir);
}

static void test_afile_full_disk(void **state)
{
	(void)state;
	/* A full disk in a unit test: the temporary file's fd is swapped for
	 * /dev/full (the e2e test uses a tiny tmpfs). */
	struct dda__afile a;
	struct dda_error err = {0};
	char *dir = temp_dir();
	char path[512];
	snprintf(path, sizeof(path), "%s/out.txt", dir);
	assert_int_equal(dda__afile_open(&a, path, &err), 0);
	/* The write error surfaces at finish; discard still removes the
	 * temporary file. */
	int full = open("/dev/full", O_WRONLY);
	if (full < 0) {
		print_message("SKIPPED part: /dev/full is missing\n");
	} else {
		dup2(full, a.fd);
		close(full);
		FILE *f = dda__afile_stream(&a, &err);
		assert_non_null(f);
		fputs("data", f);
		assert_int_equal(dda__afile_finish(&a, &err), DDA_EIO);
		assert_non_null(strstr(err.msg, "No space left on device"));
		assert_int_not_equal(dda__afile_rename(&a, &err), 0);
	}
	dda__afile_discard(&a);
	assert_int_equal(dir_entries(dir), 0);
	rmdir(dir);
	free(dir);
}

/* The radix sort against a stable insertion order on keys that share
 * digits (skipped passes), differ in every byte, and repeat (stability). */
static int cmp_rkey(const void *a, const void *b)
{
	const struct dda__rkey *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* The wide hash: a function of the bytes and their length only, and every
 * byte counts (a flipped bit anywhere, the tail after the last 32-byte step
 * included, changes it); short inputs are dda__hash64's. */
static void test_hash64_wide(void **state)
{
	(void)state;
	unsigned char a[400], b[400];
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (unsigned char)(i * 131 + 7);
	assert_int_equal(dda__hash64_wide(a, 10), dda__hash64(a, 10));
	const size_t lens[] = {63, 64, 65, 95, 96, 97, 333, 400};
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		size_t n = lens[l];
		memcpy(b, a, n);
		uint64_t h = dda__hash64_wide(a, n);
		assert_int_equal(dda__hash64_wide(b, n), h);
		for (size_t i = 0; i < n; i++) {
			b[i] ^= 0x10;
			assert_int_not_equal(dda__hash64_wide(b, n), h);
			b[i] ^= 0x10;
		}
		if (n > 64)
			assert_int_not_equal(dda__hash64_wide(a, n - 1), h);
	}
}

static void test_radix_sort(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct dda__rkey *v = malloc(N * sizeof(*v)), *want = malloc(N * sizeof(*v)),
			 *tmp = malloc(N * sizeof(*v));
	assert_non_null(v);
	assert_non_null(want);
	assert_non_null(tmp);
	uint64_t x = 88172645463325252ull;
	for (int shape = 0; shape < 4; shape++) {
		for (size_t i = 0; i < N; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			uint64_t k = shape == 0 ? x : shape == 1 ? (x % 7) << 40 | 0xabcd
				   : shape == 2 ? x % 3 : (uint64_t)(N - i);
			v[i] = (struct dda__rkey){k, i};
		}
		memcpy(want, v, N * sizeof(*v));
		qsort(want, N, sizeof(*want), cmp_rkey); /* at breaks ties: a stable order */
		dda__radix_sort(v, tmp, N);
		for (size_t i = 0; i < N; i++) {
			assert_int_equal(v[i].key, want[i].key);
			assert_int_equal(v[i].at, want[i].at);
		}
	}
	dda__radix_sort(v, tmp, 0);
	v[0] = (struct dda__rkey){5, 9};
	dda__radix_sort(v, tmp, 1);
	assert_int_equal(v[0].at, 9);
	free(v);
	free(want);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_bounds), cmocka_unit_test(test_buf_long_format),
	    cmocka_unit_test(test_time_parse), cmocka_unit_test(test_time_format),
	    cmocka_unit_test(test_duration),   cmocka_unit_test(test_range),
	    cmocka_unit_test(test_arena),      cmocka_unit_test(test_json_quote),
	    cmocka_unit_test(test_log),        cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_name_escape), cmocka_unit_test(test_json_name),
	    cmocka_unit_test(test_afile),      cmocka_unit_test(test_afile_full_disk),
	    cmocka_unit_test(test_radix_sort),  cmocka_unit_test(test_hash64_wide),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
