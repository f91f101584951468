/* Where S3 requests go, as the AWS CLI chooses: virtual-hosted addressing
 * on AWS for DNS-compatible bucket names, path-style for the others and for
 * custom endpoints; the endpoint from --endpoint-url, AWS_ENDPOINT_URL_S3,
 * AWS_ENDPOINT_URL in that order; the region from --region, AWS_REGION,
 * AWS_DEFAULT_REGION, else us-east-1; keys encoded once, '/' kept. Nothing is
 * sent: the requests are built and dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "aws/s3.h"
#include "aws/creds.h"
#include "util/log.h"
#include "unit/fake_env.h"


static void noop(struct dda_s3_call *c, struct dda_http_response *r)
{
	(void)c;
	(void)r;
}

struct want {
	const char *url, *host, *path, *query;
};

/* Builds a GET of bucket/key (query q) with the given options and extra
 * variables, and checks what it would ask. */
static void check(const struct dda_aws_opts *o, const char *var1, const char *var2,
		  const char *bucket, const char *key, const struct dda_kv *q, size_t nq,
		  struct want w)
{
	struct fake_env fe = {{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret",
			       "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials",
			       "AWS_CONFIG_FILE=/nonexistent/config", var1, var2, NULL}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_error err = {0};
	struct dda_s3 *s3;
	struct dda_s3_call c;
	assert_int_equal(dda__s3_new(&s3, o, &env, &err), 0);
	assert_string_equal(dda__s3_provider(s3), "environment");
	assert_int_equal(dda__s3_submit(&c, s3, "GET", bucket, key, q, nq, 1024, noop, NULL), 0);
	assert_string_equal(c.url, w.url);
	assert_string_equal(c.host, w.host);
	assert_string_equal(c.path, w.path);
	assert_string_equal(c.query, w.query);
	dda__s3_free(s3);
	dda__s3_call_release(&c);
}

static void test_virtual_hosted_on_aws(void **state)
{
	struct dda_aws_opts o = {.region = "eu-west-1"};
	check(&o, NULL, NULL, "audit-bucket", "audit-logs/2025/07/12/08/a b+c=%~'\"é.json", NULL, 0,
	      (struct want){"https://audit-bucket.s3.eu-west-1.amazonaws.com/audit-logs/2025/07/12/"
			    "08/a%20b%2Bc%3D%25~%27%22%C3%A9.json",
			    "audit-bucket.s3.eu-west-1.amazonaws.com",
			    "/audit-logs/2025/07/12/08/a%20b%2Bc%3D%25~%27%22%C3%A9.json", ""});
}

static void test_path_style_for_dotted_names(void **state)
{
	struct dda_aws_opts o = {.region = "eu-west-1"};
	check(&o, NULL, NULL, "audit.example.com", "k", NULL, 0,
	      (struct want){"https://s3.eu-west-1.amazonaws.com/audit.example.com/k",
			    "s3.eu-west-1.amazonaws.com", "/audit.example.com/k", ""});
}

static void test_bucket_request_with_query(void **state)
{
	struct dda_aws_opts o = {0};
	struct dda_kv q[] = {{"prefix", "audit-logs/2025/"}, {"list-type", "2"},
			     {"encoding-type", "url"}};
	/* No region anywhere: us-east-1, as the CLI's S3 commands. */
	check(&o, NULL, NULL, "b1", NULL, q, 3,
	      (struct want){"https://b1.s3.us-east-1.amazonaws.com/"
			    "?encoding-type=url&list-type=2&prefix=audit-logs%2F2025%2F",
			    "b1.s3.us-east-1.amazonaws.com", "/",
			    "encoding-type=url&list-type=2&prefix=audit-logs%2F2025%2F"});
}

static void test_region_order(void **state)
{
	struct dda_aws_opts o = {0};
	struct want w = {"https://b.s3.ap-south-1.amazonaws.com/k", "b.s3.ap-south-1.amazonaws.com",
			 "/k", ""};
	check(&o, "AWS_DEFAULT_REGION=ap-south-1", NULL, "b", "k", NULL, 0, w);
	w = (struct want){"https://b.s3.sa-east-1.amazonaws.com/k", "b.s3.sa-east-1.amazonaws.com",
			  "/k", ""};
	check(&o, "AWS_DEFAULT_REGION=ap-south-1", "AWS_REGION=sa-east-1", "b", "k", NULL, 0, w);
	o.region = "ca-central-1";
	w = (struct want){"https://b.s3.ca-central-1.amazonaws.com/k",
			  "b.s3.ca-central-1.amazonaws.com", "/k", ""};
	check(&o, "AWS_DEFAULT_REGION=ap-south-1", "AWS_REGION=sa-east-1", "b", "k", NULL, 0, w);
}

static void test_endpoint_order(void **state)
{
	struct dda_aws_opts o = {0};
	struct want general = {"http://127.0.0.1:9000/b/k", "127.0.0.1:9000", "/b/k", ""};
	struct want s3 = {"https://minio.internal/base/b/k", "minio.internal", "/base/b/k", ""};
	check(&o, "AWS_ENDPOINT_URL=http://127.0.0.1:9000", NULL, "b", "k", NULL, 0, general);
	/* The service's own variable beats the general one; a base path and a
	 * trailing slash are kept and dropped. */
	check(&o, "AWS_ENDPOINT_URL=http://127.0.0.1:9000",
	      "AWS_ENDPOINT_URL_S3=https://minio.internal/base/", "b", "k", NULL, 0, s3);
	o.endpoint_url = "http://localhost:4566";
	check(&o, "AWS_ENDPOINT_URL=http://127.0.0.1:9000",
	      "AWS_ENDPOINT_URL_S3=https://minio.internal/base/", "b", "k", NULL, 0,
	      (struct want){"http://localhost:4566/b/k", "localhost:4566", "/b/k", ""});
}

static void test_bad_endpoint(void **state)
{
	struct fake_env fe = {{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret",
			       NULL}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_aws_opts o = {.endpoint_url = "localhost:9000"};
	struct dda_error err = {0};
	struct dda_s3 *s3 = NULL;
	assert_int_equal(dda__s3_new(&s3, &o, &env, &err), DDA_EINVAL);
	assert_null(s3);
	assert_non_null(strstr(err.msg, "invalid S3 endpoint 'localhost:9000'"));
}

/* Secrets registered by the credential layer never reach a message: raw,
 * URI-encoded, JSON-escaped, cut short at the end of a message, and any
 * X-Amz-Security-Token value whoever it belongs to. */
static void test_redaction(void **state)
{
	static const char key[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
	static const char token[] = "IQoJb3JpZ2luX2VjEPz//////////wEaCXVz+abc==";
	struct dda_creds c = {.secret_key = (char *)key, .session_token = (char *)token};
	char m[512];
	dda__secrets_clear();
	dda__creds_register(&c);
	snprintf(m, sizeof(m), "a %s b %s c", key, token);
	dda__redact(m, sizeof(m));
	assert_string_equal(m, "a [redacted] b [redacted] c");
	snprintf(m, sizeof(m), "q=IQoJb3JpZ2luX2VjEPz%%2F%%2F%%2F%%2F%%2F%%2F%%2F%%2F%%2F%%2FwEaCXVz%%2Babc%%3D%%3D&x");
	dda__redact(m, sizeof(m));
	assert_string_equal(m, "q=[redacted]&x");
	snprintf(m, sizeof(m), "{\"k\": \"wJalrXUtnFEMI\\/K7MDENG\\/bPxRfiCYEXAMPLEKEY\"}");
	dda__redact(m, sizeof(m));
	assert_string_equal(m, "{\"k\": \"[redacted]\"}");
	/* Cut short by a "%.20s": the start of the secret at the end. */
	snprintf(m, sizeof(m), "HTTP 403: %.20s", token);
	dda__redact(m, sizeof(m));
	assert_string_equal(m, "HTTP 403: [redacted]");
	/* Someone else's token in a presigned URL, a header or an element. */
	snprintf(m, sizeof(m), "u?X-Amz-Security-Token=other-token&a=1 x-amz-security-token: t2 "
			       "<X-Amz-Security-Token>abcdefghijkl</X-Amz-Security-Token>");
	dda__redact(m, sizeof(m));
	assert_string_equal(m, "u?X-Amz-Security-Token=[redacted]&a=1 x-amz-security-token: ** "
			       "<X-Amz-Security-Token>[redacted]</X-Amz-Security-Token>");
	/* Short values are no secrets (they would redact ordinary words). */
	dda__secret_add("testing");
	snprintf(m, sizeof(m), "testing");
	dda__redact(m, sizeof(m));
	assert_string_equal(m, "testing");
	/* An S3 error's message is described redacted. */
	struct dda_http_response r = {.status = 403};
	dda_buf_init(&r.body, 1 << 16);
	assert_int_equal(dda_buf_addf(&r.body,
				      "<Error><Code>AccessDenied</Code><Message>sent %s</Message></Error>",
				      token),
			 0);
	dda__s3_describe(&r, m, sizeof(m));
	assert_string_equal(m, "HTTP 403 AccessDenied: sent [redacted]");
	dda_buf_release(&r.body);
	struct dda_error err = {0};
	dda_error_set(&err, DDA_EIO, "cannot: %s", key);
	assert_string_equal(err.msg, "cannot: [redacted]");
	dda__secrets_clear();
	snprintf(m, sizeof(m), "%s", key);
	dda__redact(m, sizeof(m));
	assert_string_equal(m, key); /* forgotten */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_virtual_hosted_on_aws),
	    cmocka_unit_test(test_path_style_for_dotted_names),
	    cmocka_unit_test(test_bucket_request_with_query),
	    cmocka_unit_test(test_region_order),
	    cmocka_unit_test(test_endpoint_order),
	    cmocka_unit_test(test_bad_endpoint),
	    cmocka_unit_test(test_redaction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
