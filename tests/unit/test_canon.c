/* Canonical form: the reference vectors (tests/data/canon_reference.py),
 * equal-by-value and unequal pairs, every validation rule, nesting, keys and
 * their text form, rendering back to JSON, and diffs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/util.h"
#include "ddbaudit/canon.h"

static json_t *J(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		fail_msg("bad test JSON '%s': %s", text, je.text);
	return j;
}

static int digest_of(const char *image, uint8_t out[DDA_DIGEST_LEN], struct dda_buf *why)
{
	json_t *j = J(image);
	int rc = dda_canon_digest(j, "img", out, why);
	json_decref(j);
	return rc;
}

static void same(const char *a, const char *b)
{
	uint8_t da[DDA_DIGEST_LEN], db[DDA_DIGEST_LEN];
	assert_int_equal(digest_of(a, da, NULL), 0);
	assert_int_equal(digest_of(b, db, NULL), 0);
	if (memcmp(da, db, DDA_DIGEST_LEN))
		fail_msg("expected equal digests:\n  %s\n  %s", a, b);
}

static void differ(const char *a, const char *b)
{
	uint8_t da[DDA_DIGEST_LEN], db[DDA_DIGEST_LEN];
	assert_int_equal(digest_of(a, da, NULL), 0);
	assert_int_equal(digest_of(b, db, NULL), 0);
	if (!memcmp(da, db, DDA_DIGEST_LEN))
		fail_msg("expected different digests:\n  %s\n  %s", a, b);
}

static void invalid(const char *image, const char *needle)
{
	uint8_t d[DDA_DIGEST_LEN];
	struct dda_buf why;
	dda_buf_init(&why, 4096);
	assert_int_equal(digest_of(image, d, &why), DDA_EFORMAT);
	if (needle && (!why.ptr || !strstr(why.ptr, needle)))
		fail_msg("%s: reason '%s' lacks '%s'", image, why.ptr ? why.ptr : "", needle);
	dda_buf_release(&why);
}

static void test_reference_vectors(void **state)
{
	json_error_t je;
	json_t *v = json_load_file(DDA_TEST_DATA "/canon_vectors.json", 0, &je);
	assert_non_null(v);
	assert_true(json_array_size(v) >= 5);
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x)
	{
		struct dda_buf ser, why;
		char hex[2 * DDA_DIGEST_LEN + 1];
		uint8_t d[DDA_DIGEST_LEN];
		dda_buf_init(&ser, 1 << 20);
		dda_buf_init(&why, 4096);
		assert_int_equal(dda_canon_image(json_object_get(x, "image"), "i", &ser, &why), 0);
		char *shex = malloc(2 * ser.len + 1);
		dda__hex((const uint8_t *)ser.ptr, ser.len, shex);
		assert_string_equal(shex, json_string_value(json_object_get(x, "serialization")));
		assert_int_equal(dda_canon_digest(json_object_get(x, "image"), "i", d, &why), 0);
		dda__hex(d, sizeof(d), hex);
		assert_string_equal(hex, json_string_value(json_object_get(x, "sha256")));
		free(shex);
		dda_buf_release(&ser);
		dda_buf_release(&why);
	}
	json_decref(v);
}

static void test_equal_by_value(void **state)
{
	same("{\"a\":{\"N\":\"1.50\"}}", "{\"a\":{\"N\":\"1.5\"}}");
	same("{\"a\":{\"N\":\"1.5\"}}", "{\"a\":{\"N\":\"15E-1\"}}");
	same("{\"a\":{\"N\":\"-0\"}}", "{\"a\":{\"N\":\"0.00\"}}");
	same("{\"s\":{\"SS\":[\"x\",\"y\",\"z\"]}}", "{\"s\":{\"SS\":[\"z\",\"x\",\"y\"]}}");
	same("{\"n\":{\"NS\":[\"1\",\"2.50\"]}}", "{\"n\":{\"NS\":[\"2.5\",\"1.0\"]}}");
	same("{\"b\":{\"BS\":[\"AQ==\",\"AA==\"]}}", "{\"b\":{\"BS\":[\"AA==\",\"AQ==\"]}}");
	same("{\"a\":{\"S\":\"1\"},\"b\":{\"N\":\"2\"}}",
	     "{\"b\":{\"N\":\"2\"},\"a\":{\"S\":\"1\"}}");
	same("{\"m\":{\"M\":{\"x\":{\"N\":\"1\"},\"y\":{\"M\":{\"q\":{\"S\":\"\"},\"p\":{\"BOOL\":"
	     "true}}}}}}",
	     "{\"m\":{\"M\":{\"y\":{\"M\":{\"p\":{\"BOOL\":true},\"q\":{\"S\":\"\"}}},\"x\":{\"N\":"
	     "\"1.0\"}}}}");
	/* Names sort by bytes: a proper prefix first. */
	same("{\"ab\":{\"S\":\"1\"},\"a\":{\"S\":\"2\"}}",
	     "{\"a\":{\"S\":\"2\"},\"ab\":{\"S\":\"1\"}}");
}

static void test_unequal(void **state)
{
	differ("{\"a\":{\"S\":\"1\"}}", "{\"a\":{\"N\":\"1\"}}");
	differ("{\"a\":{\"N\":\"1.5\"}}", "{\"a\":{\"N\":\"1.50001\"}}");
	differ("{\"a\":{\"SS\":[\"x\"]}}", "{\"a\":{\"L\":[{\"S\":\"x\"}]}}");
	differ("{\"a\":{\"L\":[{\"N\":\"1\"},{\"N\":\"2\"}]}}",
	       "{\"a\":{\"L\":[{\"N\":\"2\"},{\"N\":\"1\"}]}}");
	differ("{\"a\":{\"M\":{\"b\":{\"S\":\"x\"}}}}",
	       "{\"a\":{\"M\":{\"b\":{\"M\":{\"b\":{\"S\":\"x\"}}}}}}");
	differ("{\"a\":{\"S\":\"x\"}}", "{\"a\":{\"S\":\"x\"},\"b\":{\"NULL\":true}}");
	differ("{\"a\":{\"S\":\"ab\"},\"b\":{\"S\":\"\"}}",
	       "{\"a\":{\"S\":\"a\"},\"b\":{\"S\":\"b\"}}");
	differ("{\"a\":{\"BOOL\":true}}", "{\"a\":{\"BOOL\":false}}");
	differ("{\"a\":{\"B\":\"AA==\"}}", "{\"a\":{\"S\":\"AA==\"}}");
}

static void test_validation(void **state)
{
	invalid("{\"a\":{}}", "exactly one");
	invalid("{\"a\":{\"S\":\"x\",\"N\":\"1\"}}", "exactly one");
	invalid("{\"a\":{\"X\":\"1\"}}", "unknown type");
	invalid("{\"a\":\"plain\"}", "exactly one");
	invalid("{\"a\":{\"S\":1}}", "not a string");
	invalid("{\"a\":{\"N\":\"1.2.3\"}}", "img.a: N");
	invalid("{\"a\":{\"N\":1}}", "not a string");
	invalid("{\"a\":{\"B\":\"AQ=\"}}", "base64");
	invalid("{\"a\":{\"B\":\"A Q==\"}}", "base64");
	invalid("{\"a\":{\"BOOL\":\"true\"}}", "BOOL");
	invalid("{\"a\":{\"NULL\":false}}", "NULL");
	invalid("{\"a\":{\"M\":[]}}", "M value");
	invalid("{\"a\":{\"L\":{}}}", "L value");
	invalid("{\"a\":{\"SS\":[]}}", "empty");
	invalid("{\"a\":{\"SS\":[\"x\",\"x\"]}}", "duplicate");
	invalid("{\"a\":{\"NS\":[\"1\",\"1.0\"]}}", "duplicate");
	invalid("{\"a\":{\"BS\":[\"AQ==\",\"AQ==\"]}}", "duplicate");
	invalid("{\"a\":{\"NS\":[\"x\"]}}", "a[0]");
	invalid("{\"a\":{\"SS\":\"x\"}}", "not an array");
	invalid("{\"a\":{\"L\":[{\"S\":\"ok\"},{\"M\":{\"deep\":{\"N\":\"oops\"}}}]}}",
		"a[1].deep");
	/* Empty strings and binaries inside sets are allowed. */
	same("{\"a\":{\"SS\":[\"\",\"x\"]}}", "{\"a\":{\"SS\":[\"x\",\"\"]}}");
}

static char *nested(int levels)
{
	struct dda_buf b;
	dda_buf_init(&b, DDA_BUF_UNLIMITED);
	assert_int_equal(dda_buf_adds(&b, "{\"a\":"), 0);
	for (int i = 1; i < levels; i++)
		assert_int_equal(dda_buf_adds(&b, "{\"L\":["), 0);
	assert_int_equal(dda_buf_adds(&b, "{\"S\":\"x\"}"), 0);
	for (int i = 1; i < levels; i++)
		assert_int_equal(dda_buf_adds(&b, "]}"), 0);
	assert_int_equal(dda_buf_adds(&b, "}"), 0);
	return dda_buf_take(&b, NULL);
}

static void test_nesting(void **state)
{
	uint8_t d[DDA_DIGEST_LEN];
	char *ok = nested(DDA_MAX_NESTING), *bad = nested(DDA_MAX_NESTING + 1);
	assert_int_equal(digest_of(ok, d, NULL), 0);
	invalid(bad, "nested deeper");
	free(ok);
	free(bad);
}

static void key_of(const char *text, struct dda_buf *out)
{
	struct dda_buf why;
	dda_buf_init(&why, 4096);
	dda_buf_reset(out);
	if (dda_canon_key_parse(text, out, &why))
		fail_msg("key '%s': %s", text, why.ptr ? why.ptr : "");
	dda_buf_release(&why);
}

static void test_keys(void **state)
{
	struct dda_buf k, k2, text, why;
	dda_buf_init(&k, 1 << 16);
	dda_buf_init(&k2, 1 << 16);
	dda_buf_init(&text, 1 << 16);
	dda_buf_init(&why, 4096);
	const char *awkward[] = {
	    "UserId=user 7,ActivityId=act-39",
	    "UserId=a+b/c,ActivityId=q\"uote's",
	    "UserId=Jos\xc3\xa9 \xe7\x94\xa8\xe6\x88\xb7,ActivityId=100%",
	    "UserId=x\\,y\\=z\\:w\\\\v,ActivityId=N\\:5",
	    "Count=N:5,Name=S:N:5",
	    "Blob=B:AAEC",
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(awkward); i++) {
		key_of(awkward[i], &k);
		dda_buf_reset(&text);
		assert_int_equal(dda_canon_key_text(k.ptr, k.len, &text), 0);
		key_of(text.ptr, &k2);
		assert_int_equal(k.len, k2.len);
		assert_memory_equal(k.ptr, k2.ptr, k.len);
		/* And through JSON. */
		json_t *j = dda_canon_to_json(k.ptr, k.len);
		assert_non_null(j);
		char *js = json_dumps(j, 0);
		key_of(js, &k2);
		assert_memory_equal(k.ptr, k2.ptr, k.len);
		free(js);
		json_decref(j);
	}
	/* Control characters, a NUL above all, are "\xHH" in the text, which
	 * parses back to the same key; the JSON form takes "\u0000". */
	key_of("{\"UserId\":{\"S\":\"a\\u0000b\\n\"},\"ActivityId\":{\"S\":\"x\\\\x41\"}}", &k);
	dda_buf_reset(&text);
	assert_int_equal(dda_canon_key_text(k.ptr, k.len, &text), 0);
	assert_int_equal(strlen(text.ptr), text.len);
	assert_string_equal(text.ptr, "ActivityId=x\\\\x41,UserId=a\\x00b\\x0A");
	key_of(text.ptr, &k2);
	assert_int_equal(k.len, k2.len);
	assert_memory_equal(k.ptr, k2.ptr, k.len);
	key_of("UserId=\\x00\\x4a\\xzz", &k2);
	key_of("{\"UserId\":{\"S\":\"\\u0000Jxzz\"}}", &k);
	assert_int_equal(k.len, k2.len);
	assert_memory_equal(k.ptr, k2.ptr, k.len);
	/* Order of the attributes does not matter; types do. */
	key_of("ActivityId=a,UserId=u", &k);
	key_of("UserId=u,ActivityId=a", &k2);
	assert_memory_equal(k.ptr, k2.ptr, k.len);
	key_of("UserId=N:05", &k);
	key_of("UserId=N:5.0", &k2);
	assert_memory_equal(k.ptr, k2.ptr, k.len);
	key_of("UserId=05", &k2);
	assert_memory_not_equal(k.ptr, k2.ptr, DDA_MIN(k.len, k2.len));
	dda_buf_reset(&text);
	key_of("Count=N:5,Name=S:N:5", &k);
	dda_canon_key_text(k.ptr, k.len, &text);
	assert_string_equal(text.ptr, "Count=N:5,Name=N\\:5");
	const char *bad[] = {"UserId",
			     "=x",
			     "UserId=",
			     "UserId=a,UserId=b",
			     "UserId=N:abc",
			     "{\"UserId\":{\"BOOL\":true}}",
			     "{\"UserId\":{\"S\":\"\"}}",
			     "{bad"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++) {
		dda_buf_reset(&why);
		dda_buf_reset(&k);
		assert_int_equal(dda_canon_key_parse(bad[i], &k, &why), DDA_EFORMAT);
		assert_non_null(why.ptr);
	}
	/* A value too long to hold is refused whole: a buffer that failed half
	 * way never yields its last few thousand characters as the key. */
	size_t n = 70000;
	char *huge = malloc(n + 8);
	assert_non_null(huge);
	memcpy(huge, "UserId=", 7);
	memset(huge + 7, 'u', n);
	huge[7 + n] = '\0';
	dda_buf_reset(&why);
	dda_buf_reset(&k);
	assert_int_equal(dda_canon_key_parse(huge, &k, &why), DDA_EFORMAT);
	assert_int_equal(k.len, 0);
	assert_non_null(strstr(why.ptr, "longer than"));
	free(huge);
	/* Selected key attributes of an image. */
	json_t *img =
	    J("{\"UserId\":{\"S\":\"u\"},\"ActivityId\":{\"S\":\"a\"},\"V\":{\"N\":\"1\"}}");
	const char *names[] = {"UserId", "ActivityId"};
	dda_buf_reset(&k);
	assert_int_equal(dda_canon_key(img, names, 2, "img", &k, &why), 0);
	key_of("UserId=u,ActivityId=a", &k2);
	assert_memory_equal(k.ptr, k2.ptr, k.len);
	const char *missing[] = {"UserId", "Nope"};
	dda_buf_reset(&why);
	assert_int_equal(dda_canon_key(img, missing, 2, "img", &k, &why), DDA_EFORMAT);
	assert_non_null(strstr(why.ptr, "Nope"));
	json_decref(img);
	dda_buf_release(&k);
	dda_buf_release(&k2);
	dda_buf_release(&text);
	dda_buf_release(&why);
}

static void test_to_json_roundtrip_and_garbage(void **state)
{
	json_t *v = json_load_file(DDA_TEST_DATA "/canon_vectors.json", 0, NULL);
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x)
	{
		struct dda_buf a, b;
		dda_buf_init(&a, 1 << 20);
		dda_buf_init(&b, 1 << 20);
		assert_int_equal(dda_canon_image(json_object_get(x, "image"), "i", &a, NULL), 0);
		json_t *back = dda_canon_to_json(a.ptr, a.len);
		assert_non_null(back);
		assert_int_equal(dda_canon_image(back, "i", &b, NULL), 0);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.ptr, b.ptr, a.len);
		/* Every truncation is rejected without reading out of bounds. */
		for (size_t n = 0; n < a.len; n++) {
			json_t *t = dda_canon_to_json(a.ptr, n);
			assert_null(t);
		}
		json_decref(back);
		dda_buf_release(&a);
		dda_buf_release(&b);
	}
	json_decref(v);
	const uint8_t junk[] = {0x06, 0xff, 0xff, 0xff, 0xff, 0x00};
	assert_null(dda_canon_to_json(junk, sizeof(junk)));
	const uint8_t badtag[] = {0x06, 0, 0, 0, 1, 0, 0, 0, 1, 'a', 0x42};
	assert_null(dda_canon_to_json(badtag, sizeof(badtag)));
}

static void test_diff(void **state)
{
	json_t *e = J("{\"a\":{\"N\":\"1.50\"},\"b\":{\"S\":\"x\"},\"c\":{\"SS\":[\"p\",\"q\"]},"
		      "\"gone\":{\"BOOL\":true}}");
	json_t *f = J("{\"a\":{\"N\":\"1.5\"},\"b\":{\"S\":\"y\"},\"c\":{\"SS\":[\"q\",\"p\"]},"
		      "\"new\":{\"NULL\":true}}");
	json_t *d = dda_canon_diff(e, f);
	char *s = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(
	    s, "{\"added\":{\"new\":{\"NULL\":true}},\"removed\":{\"gone\":{\"BOOL\":true}},"
	       "\"changed\":{\"b\":{\"expected\":{\"S\":\"x\"},\"found\":{\"S\":\"y\"}}}}");
	free(s);
	json_decref(d);
	d = dda_canon_diff(NULL, f);
	assert_int_equal(json_object_size(json_object_get(d, "added")), 4);
	json_decref(d);
	d = dda_canon_diff(e, e);
	s = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(s, "{\"added\":{},\"removed\":{},\"changed\":{}}");
	free(s);
	json_decref(d);
	json_decref(e);
	json_decref(f);
}

static void test_base64(void **state)
{
	struct dda_buf out;
	dda_buf_init(&out, 1024);
	const char *ok[] = {"", "AA==", "AAA=", "AAAA", "/+/+", "aGVsbG8="};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(ok); i++) {
		dda_buf_reset(&out);
		assert_int_equal(dda_base64_decode(ok[i], strlen(ok[i]), &out), 0);
	}
	dda_buf_reset(&out);
	dda_base64_decode("aGVsbG8=", 8, &out);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.ptr, "hello", 5);
	const char *bad[] = {"A", "AA", "AAA", "A===", "AA=A", "=AAA", "AA==AA==", "AA\n=", "AA-_"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++) {
		dda_buf_reset(&out);
		assert_int_equal(dda_base64_decode(bad[i], strlen(bad[i]), &out), DDA_EFORMAT);
	}
	dda_buf_reset(&out);
	dda_base64_encode("\x00\x01\xff", 3, &out);
	assert_string_equal(out.ptr, "AAH/");
	dda_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reference_vectors),
	    cmocka_unit_test(test_equal_by_value),
	    cmocka_unit_test(test_unequal),
	    cmocka_unit_test(test_validation),
	    cmocka_unit_test(test_nesting),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_to_json_roundtrip_and_garbage),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
