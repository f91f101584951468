/* The decoder's fast path (record/scan.c) on its own: the DynamoDB item
 * size it counts while serializing an image, against sizes worked out by
 * hand and the second walk of the serialization (dda__canon_item_size);
 * maps put in order by the shapes the scanner has seen, against a scanner
 * that has seen none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/util.h"
#include "ddbaudit/record.h"
#include "record/scan.h"

#define IMG(u, a, extra) "{\"UserId\":{\"S\":\"" u "\"},\"ActivityId\":{\"S\":\"" a "\"}" extra "}"
#define SEED(ev, u, a, images)                                                                     \
	"{\"timestamp\":\"2025-07-12T08:27:50Z\",\"eventName\":\"" ev "\",\"userId\":\"" u        \
	"\",\"activityId\":\"" a "\",\"eventSource\":\"aws:dynamodb\"" images "}"

/* The key attributes of IMG("u", "a", ...): "UserId" and "u", "ActivityId"
 * and "a". */
#define KEYS_SIZE (6 + 1 + 10 + 1)

/* What the image hook saw: each image's counted size, and the reference
 * size of its serialization. */
struct seen {
	int n;
	uint64_t counted[2], walked[2];
};

static void on_image(void *ctx, const uint8_t *ser, size_t n, uint64_t size)
{
	struct seen *s = ctx;
	assert_true(s->n < 2);
	s->counted[s->n] = size;
	s->walked[s->n] = dda__canon_item_size(ser, n);
	s->n++;
}

/* Scans one record with raw images; it must be taken. */
static void scan_one(struct dda__scanner *sc, const char *rec, struct dda__scan_out *out,
		     struct seen *seen)
{
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	o.raw_images = true;
	memset(seen, 0, sizeof(*seen));
	dda__scanner_on_image(sc, on_image, seen);
	int rc = dda__scan_seed(sc, &o, rec, strlen(rec), true, out);
	if (rc != DDA_SCAN_RECORD)
		fail_msg("the fast path did not take %s (%d)", rec, rc);
}

static void test_item_size_counted_while_serializing(void **state)
{
	(void)state;
	static const struct {
		const char *attrs;
		uint64_t size; /* of the attributes, by hand */
	} cases[] = {
	    {"", 0},
	    /* 120.5: digits 1 to 5, four of them: 4/2 rounded up, plus one. */
	    {",\"n\":{\"N\":\"00120.500\"}", 1 + 3},
	    /* -0.0123: 123, three digits. */
	    {",\"n\":{\"N\":\"-0.000123e2\"}", 1 + 3},
	    /* 1500: the trailing zeros are not significant. */
	    {",\"n\":{\"N\":\"1.5E3\"}", 1 + 2},
	    {",\"n\":{\"N\":\"-0.0\"}", 1 + 1},
	    /* 101: the zero between significant digits counts. */
	    {",\"n\":{\"N\":\"1.01e2\"}", 1 + 3},
	    {",\"n\":{\"N\":\"12345678901234567890\"}", 1 + 11},
	    {",\"s\":{\"S\":\"h\\u00e9llo\"}", 1 + 6},
	    {",\"b\":{\"B\":\"aGVsbG8=\"}", 1 + 5},
	    {",\"t\":{\"BOOL\":false},\"z\":{\"NULL\":true}", 2 + 2},
	    /* A set is its elements; numbers by their digits. */
	    {",\"ss\":{\"SS\":[\"b\",\"aa\"]}", 2 + 3},
	    {",\"ns\":{\"NS\":[\"100\",\"-2.50\",\"7E-3\"]}", 2 + 2 + 2 + 2},
	    {",\"bs\":{\"BS\":[\"AAEC\",\"AA==\"]}", 2 + 3 + 1},
	    /* M and L: 3 bytes, and one for each entry or element. */
	    {",\"m\":{\"M\":{}}", 1 + 3},
	    {",\"l\":{\"L\":[]}", 1 + 3},
	    {",\"m\":{\"M\":{\"b\":{\"BOOL\":true},\"a\":{\"L\":[{\"NULL\":true},{\"S\":\"xyz\"},"
	     "{\"M\":{}}]}}}",
	     1 + 3 + (1 + 1 + 1) + (1 + 1 + 3 + (1 + 1) + (1 + 3) + (1 + 3))},
	    {",\"l\":{\"L\":[{\"L\":[{\"N\":\"10\"}]},{\"M\":{\"q\":{\"NS\":[\"0.5\"]}}}]}",
	     1 + 3 + (1 + 3 + (1 + 2)) + (1 + 3 + (1 + 1 + 2))},
	};
	struct dda__scanner *sc = dda__scanner_new();
	assert_non_null(sc);
	char rec[1024];
	for (size_t i = 0; i < DDA_ARRAY_SIZE(cases); i++) {
		struct dda__scan_out out;
		struct seen seen;
		snprintf(rec, sizeof(rec), SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", "%s")),
			 cases[i].attrs);
		scan_one(sc, rec, &out, &seen);
		assert_int_equal(seen.n, 1);
		if (out.new_size != KEYS_SIZE + cases[i].size || seen.walked[0] != out.new_size ||
		    seen.counted[0] != out.new_size)
			fail_msg("case %zu: counted %llu, walked %llu, by hand %llu", i,
				 (unsigned long long)out.new_size,
				 (unsigned long long)seen.walked[0],
				 (unsigned long long)(KEYS_SIZE + cases[i].size));
	}
	/* Both images of a change, each its own size. */
	struct dda__scan_out out;
	struct seen seen;
	scan_one(sc,
		 SEED("MODIFY", "u", "a",
		      ",\"oldImage\":" IMG("u", "a", ",\"v\":{\"N\":\"1\"}") ",\"newImage\":" IMG(
			  "u", "a", ",\"v\":{\"N\":\"2\"},\"w\":{\"SS\":[\"x\"]}")),
		 &out, &seen);
	assert_int_equal(seen.n, 2);
	assert_int_equal(out.old_size, KEYS_SIZE + 1 + 2);
	assert_int_equal(out.new_size, KEYS_SIZE + 1 + 2 + 1 + 1);
	assert_int_equal(seen.walked[0], out.old_size);
	assert_int_equal(seen.walked[1], out.new_size);
	dda__scanner_free(sc);
}

/* Scans rec with sc (which has seen the records before it) and with a new
 * scanner (which has seen none, so sorts every map): the same result, and
 * for a record the same digests and sizes. Returns the result. */
static int scan_both(struct dda__scanner *sc, const char *rec)
{
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	o.raw_images = true;
	struct dda__scanner *fresh = dda__scanner_new();
	assert_non_null(fresh);
	struct dda__scan_out a, b;
	dda__scanner_on_image(sc, NULL, NULL);
	int rc = dda__scan_seed(sc, &o, rec, strlen(rec), true, &a);
	int rc_fresh = dda__scan_seed(fresh, &o, rec, strlen(rec), true, &b);
	if (rc != rc_fresh)
		fail_msg("%d after others, %d alone: %s", rc, rc_fresh, rec);
	if (rc == DDA_SCAN_RECORD) {
		assert_int_equal(a.has_old, b.has_old);
		assert_memory_equal(a.new_digest, b.new_digest, DDA_DIGEST_LEN);
		assert_int_equal(a.new_size, b.new_size);
		if (a.has_old) {
			assert_memory_equal(a.old_digest, b.old_digest, DDA_DIGEST_LEN);
			assert_int_equal(a.old_size, b.old_size);
		}
	}
	dda__scanner_free(fresh);
	return rc;
}

#define ATTRS(a, b, c) ",\"" a "\":{\"S\":\"1\"},\"" b "\":{\"N\":\"2\"},\"" c "\":{\"BOOL\":true}"

static void test_map_shapes(void **state)
{
	(void)state;
	static const struct {
		const char *rec;
		int rc;
	} seq[] = {
	    /* A shape, again, and with other values. */
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "m", "b"))),
	     DDA_SCAN_RECORD},
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "m", "b"))),
	     DDA_SCAN_RECORD},
	    {SEED("MODIFY", "u", "a",
		  ",\"oldImage\":" IMG("u", "a", ATTRS("z", "m", "b")) ",\"newImage\":" IMG(
		      "u", "a", ",\"z\":{\"S\":\"9\"},\"m\":{\"N\":\"-8\"},\"b\":{\"NULL\":true}")),
	     DDA_SCAN_RECORD},
	    /* One name different: another order. */
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "m", "0"))),
	     DDA_SCAN_RECORD},
	    /* One name longer, one shorter, by a byte at their end. */
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "mm", "b"))),
	     DDA_SCAN_RECORD},
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "", "b"))),
	     DDA_SCAN_RECORD},
	    /* The same names, in another order. */
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("m", "z", "b"))),
	     DDA_SCAN_RECORD},
	    /* The first shape with a name repeated, in place of the one that
	     * differs, and as one entry more: refused, as always. */
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "m", "m"))),
	     DDA_SCAN_FALLBACK},
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "m", "b") ",\"b\":{\"S\":\"x\"}")),
	     DDA_SCAN_FALLBACK},
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "m", "b"))),
	     DDA_SCAN_RECORD},
	    /* An escaped name decodes to the known shape's. */
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "\\u006d", "b"))),
	     DDA_SCAN_RECORD},
	    /* Nested maps, the same shape in a list and in maps of other
	     * shapes: more shapes than the scanner keeps, over and over. */
	    {SEED("INSERT", "u", "a",
		  ",\"newImage\":" IMG("u", "a", ",\"l\":{\"L\":[{\"M\":{\"y\":{\"S\":\"1\"},\"x\":{\"S\":\"2\"}}},"
					  "{\"M\":{\"y\":{\"S\":\"3\"},\"x\":{\"S\":\"4\"}}},"
					  "{\"M\":{\"y\":{\"S\":\"5\"},\"w\":{\"S\":\"6\"}}},"
					  "{\"M\":{\"y\":{\"S\":\"7\"},\"v\":{\"S\":\"8\"},\"u\":{\"S\":\"8\"}}},"
					  "{\"M\":{\"c\":{\"M\":{\"q\":{\"S\":\"1\"},\"p\":{\"S\":\"2\"}}},"
					  "\"b\":{\"S\":\"2\"}}},"
					  "{\"M\":{\"y\":{\"S\":\"3\"},\"x\":{\"S\":\"4\"}}}]}")),
	     DDA_SCAN_RECORD},
	    /* A known nested shape with a duplicate in its place. */
	    {SEED("INSERT", "u", "a",
		  ",\"newImage\":" IMG("u", "a", ",\"m\":{\"M\":{\"y\":{\"S\":\"1\"},\"y\":{\"S\":\"2\"}}}")),
	     DDA_SCAN_FALLBACK},
	    {SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", ATTRS("z", "m", "b"))),
	     DDA_SCAN_RECORD},
	};
	struct dda__scanner *sc = dda__scanner_new();
	assert_non_null(sc);
	/* Twice over: the second time every shape has been seen before. */
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < DDA_ARRAY_SIZE(seq); i++)
			if (scan_both(sc, seq[i].rec) != seq[i].rc)
				fail_msg("record %zu, round %d: not %d", i, round, seq[i].rc);
	dda__scanner_free(sc);
}

/* Maps of SMALL entries (the most a shape holds) and one more, names out
 * of order, and one with names too long to keep: each seen twice. */
static void test_map_shape_bounds(void **state)
{
	(void)state;
	struct dda__scanner *sc = dda__scanner_new();
	assert_non_null(sc);
	static const size_t counts[] = {16, 17, 15, 2};
	char rec[4096];
	for (int round = 0; round < 2; round++) {
		for (size_t c = 0; c < DDA_ARRAY_SIZE(counts); c++) {
			for (int longer = 0; longer < 2; longer++) {
				char attrs[3072];
				size_t at = 0;
				/* Entries in reverse name order (the keys come
				 * before them): every map out of order. */
				for (size_t k = counts[c]; k-- > 0;)
					at += (size_t)snprintf(attrs + at, sizeof(attrs) - at,
							       ",\"%c%.*s%02zu\":{\"N\":\"%zu\"}",
							       longer ? 'x' : 'b', longer ? 40 : 0,
							       "----------------------------------------",
							       k, k);
				snprintf(rec, sizeof(rec),
					 SEED("INSERT", "u", "a", ",\"newImage\":" IMG("u", "a", "%s")),
					 attrs);
				assert_int_equal(scan_both(sc, rec), DDA_SCAN_RECORD);
			}
		}
	}
	dda__scanner_free(sc);
}

/* A string's bytes that need a look (a quote ends it, a backslash starts
 * an escape, UTF-8 is checked, control bytes are refused), at every place
 * in the first 40 bytes of a key value: the scanner steps over plain bytes
 * sixteen or eight at a time, so each place falls differently in a step. */
static void test_string_bytes_at_every_place(void **state)
{
	(void)state;
	static const struct {
		const char *text, *decoded; /* as written, as decoded (NULL: refused) */
	} specials[] = {
	    {"\\\"", "\""}, {"\\n", "\n"}, {"\\u00e9", "\xc3\xa9"}, {"\xc3\xa9", "\xc3\xa9"},
	    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"}, {"~", "~"}, {" ", " "},
	    {"\x01", NULL}, {"\x1f", NULL}, {"\x7f", "\x7f"}, {"\xff", NULL}, {"\xc3", NULL},
	};
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	struct dda__scanner *sc = dda__scanner_new();
	assert_non_null(sc);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(specials); i++) {
		for (int at = 0; at <= 40; at++) {
			char text[128], want[128], rec[1024];
			snprintf(text, sizeof(text), "%.*s%s%.*s", at,
				 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP", specials[i].text,
				 40 - at, "0123456789012345678901234567890123456789");
			snprintf(want, sizeof(want), "%.*s%s%.*s", at,
				 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP",
				 specials[i].decoded ? specials[i].decoded : "", 40 - at,
				 "0123456789012345678901234567890123456789");
			snprintf(rec, sizeof(rec),
				 SEED("INSERT", "%s", "a", ",\"newImage\":" IMG("%s", "a", "")), text,
				 text);
			struct dda__scan_out out;
			int rc = dda__scan_seed(sc, &o, rec, strlen(rec), true, &out);
			if (!specials[i].decoded) {
				if (rc != DDA_SCAN_FALLBACK)
					fail_msg("special %zu at %d: taken", i, at);
				continue;
			}
			if (rc != DDA_SCAN_RECORD)
				fail_msg("special %zu at %d: not taken (%d)", i, at, rc);
			assert_int_equal(out.klen[0], strlen(want));
			assert_memory_equal(out.kval[0], want, strlen(want));
		}
	}
	dda__scanner_free(sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_item_size_counted_while_serializing),
	    cmocka_unit_test(test_map_shapes),
	    cmocka_unit_test(test_map_shape_bounds),
	    cmocka_unit_test(test_string_bytes_at_every_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
