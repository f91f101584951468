/* The decoder's fast path (record/scan.c) on its own: the DynamoDB item
 * size it counts while serializing an image, against sizes worked out by
 * hand and the second walk of the serialization (dda__canon_item_size). */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_item_size_counted_while_serializing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
