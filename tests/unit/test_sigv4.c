/* SigV4 against botocore: every vector in tests/data/sigv4/vectors.json (made
 * by gen_vectors.py from botocore's own signing, with keys holding spaces,
 * '+', '=', '%', '~', '/', ';', quotes and non-ASCII) is rebuilt from its
 * parts and must get botocore's exact Authorization header and path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>

#include "aws/sigv4.h"

#define ACCESS "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* The path and query of a URL, as sent. */
static void split_url(const char *url, char *path, size_t n)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	const char *q = p ? strchr(p, '?') : NULL;
	size_t len = p ? (q ? (size_t)(q - p) : strlen(p)) : 0;
	snprintf(path, n, "%.*s", (int)len, p ? p : "");
}

static void check_vector(const json_t *v)
{
	const char *service = json_string_value(json_object_get(v, "service"));
	const char *url = json_string_value(json_object_get(v, "url"));
	const char *decoded = json_string_value(json_object_get(v, "path"));
	bool s3 = !strcmp(service, "s3");
	char wire[4096];
	split_url(url, wire, sizeof(wire));
	/* S3 object paths: our encoding of the key is exactly what botocore sent. */
	if (s3) {
		struct dda_buf p;
		dda_buf_init(&p, 1 << 16);
		assert_int_equal(dda__uri_encode(&p, decoded, strlen(decoded), true), 0);
		assert_string_equal(p.ptr, wire);
		dda_buf_release(&p);
	}
	json_t *q = json_object_get(v, "query");
	struct dda_kv params[16];
	size_t np = json_array_size(q);
	assert_true(np <= 16);
	for (size_t i = 0; i < np; i++) {
		params[i].name = json_string_value(json_array_get(json_array_get(q, i), 0));
		params[i].value = json_string_value(json_array_get(json_array_get(q, i), 1));
	}
	struct dda_buf query, auth, canonical;
	dda_buf_init(&query, 1 << 16);
	dda_buf_init(&auth, 4096);
	dda_buf_init(&canonical, 1 << 16);
	assert_int_equal(dda__sigv4_query(&query, params, np), 0);
	json_t *hs = json_object_get(v, "headers");
	struct dda_kv headers[16];
	size_t nh = 0;
	const char *name;
	json_t *val;
	json_object_foreach(hs, name, val)
	{
		headers[nh].name = name;
		headers[nh++].value = json_string_value(val);
	}
	char payload[65];
	const json_t *sha = json_object_get(hs, "x-amz-content-sha256");
	if (sha) {
		snprintf(payload, sizeof(payload), "%s", json_string_value(sha));
	} else {
		uint8_t d[32];
		const char *body = json_string_value(json_object_get(v, "body"));
		dda__sha256(body, strlen(body), d);
		dda__hex(d, 32, payload);
	}
	struct dda_sigv4_request r = {
	    .method = json_string_value(json_object_get(v, "method")),
	    .host = json_string_value(json_object_get(v, "host")),
	    .path = wire,
	    .query = query.ptr ? query.ptr : "",
	    .headers = headers,
	    .nheaders = nh,
	    .payload_sha256 = payload,
	    .region = "us-east-1",
	    .service = service,
	    .amz_date = json_string_value(json_object_get(hs, "x-amz-date")),
	    .s3 = s3,
	};
	assert_int_equal(dda__sigv4_sign(&r, ACCESS, SECRET, &auth, &canonical), 0);
	const char *want = json_string_value(json_object_get(v, "authorization"));
	if (strcmp(auth.ptr, want))
		fail_msg("%s %s\n got  %s\n want %s\n canonical request:\n%s", r.method, url,
			 auth.ptr, want, canonical.ptr);
	dda_buf_release(&query);
	dda_buf_release(&auth);
	dda_buf_release(&canonical);
}

static void test_botocore_vectors(void **state)
{
	json_error_t je;
	json_t *all = json_load_file(DDA_TEST_DATA "/sigv4/vectors.json", 0, &je);
	assert_non_null(all);
	assert_true(json_array_size(all) >= 20);
	size_t i;
	json_t *v;
	json_array_foreach(all, i, v)
	{
		check_vector(v);
	}
	json_decref(all);
}

/* A wrong secret gives a different signature (the test above could not
 * tell a constant from a signature otherwise). */
static void test_secret_matters(void **state)
{
	struct dda_kv h[] = {{"X-Amz-Date", "20250712T082750Z"}};
	struct dda_sigv4_request r = {
	    "GET", "example.com",      "/", "", h, 1, "UNSIGNED-PAYLOAD", "us-east-1",
	    "s3",  "20250712T082750Z", true};
	struct dda_buf a, b;
	dda_buf_init(&a, 4096);
	dda_buf_init(&b, 4096);
	dda__sigv4_sign(&r, ACCESS, SECRET, &a, NULL);
	dda__sigv4_sign(&r, ACCESS, "another-secret", &b, NULL);
	assert_string_not_equal(a.ptr, b.ptr);
	assert_null(strstr(a.ptr, SECRET));
	dda_buf_release(&a);
	dda_buf_release(&b);
}

static void test_encoding(void **state)
{
	struct dda_buf b;
	dda_buf_init(&b, 4096);
	dda__uri_encode(&b, "a b+c/d~e%f", 11, false);
	assert_string_equal(b.ptr, "a%20b%2Bc%2Fd~e%25f");
	dda_buf_reset(&b);
	dda__uri_encode(&b, "x/\xc3\xa9", 4, true);
	assert_string_equal(b.ptr, "x/%C3%A9");
	dda_buf_reset(&b);
	struct dda_kv q[] = {{"prefix", "a/b c"}, {"list-type", "2"}, {"versioning", ""}};
	dda__sigv4_query(&b, q, 3);
	assert_string_equal(b.ptr, "list-type=2&prefix=a%2Fb%20c&versioning=");
	char d[17];
	int64_t t;
	dda_time_parse("2025-07-12T08:27:50Z", 20, &t);
	dda__amz_date(t, d);
	assert_string_equal(d, "20250712T082750Z");
	dda_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_botocore_vectors),
	    cmocka_unit_test(test_secret_matters),
	    cmocka_unit_test(test_encoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
