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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_virtual_hosted_on_aws),
	    cmocka_unit_test(test_path_style_for_dotted_names),
	    cmocka_unit_test(test_bucket_request_with_query),
	    cmocka_unit_test(test_region_order),
	    cmocka_unit_test(test_endpoint_order),
	    cmocka_unit_test(test_bad_endpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
