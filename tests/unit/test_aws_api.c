/* The JSON API client (Lambda, SQS) on the client core: endpoint and region
 * as the CLI finds them, the retry settings it hands to its callers, and
 * headers signed with the profile's credentials for the client's region.
 * Nothing is sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/api.h"
#include "unit/fake_env.h"

static void test_endpoint_region_retry(void **state)
{
	(void)state;
	struct fake_env fe = {{"AWS_ACCESS_KEY_ID=AKIDAPI", "AWS_SECRET_ACCESS_KEY=apisecret",
			       "AWS_SESSION_TOKEN=apitoken", "AWS_REGION=eu-north-1",
			       "AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:4010/prefix/",
			       "AWS_ENDPOINT_URL=http://127.0.0.1:9999", "AWS_MAX_ATTEMPTS=2",
			       "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/c",
			       "AWS_CONFIG_FILE=/nonexistent/f"}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_error err = {0};
	struct dda_aws_api *a;
	assert_int_equal(dda__aws_api_new(&a, "lambda", NULL, NULL, NULL, NULL, &env, &err), 0);
	assert_string_equal(dda__aws_api_base(a), "http://127.0.0.1:4010/prefix");
	assert_string_equal(dda__aws_api_region(a), "eu-north-1");
	assert_int_equal(dda__aws_api_retry(a)->max_attempts, 2);
	struct dda_buf h;
	dda_buf_init(&h, 1 << 16);
	struct dda_kv extra = {"content-type", "application/json"};
	assert_int_equal(dda__aws_api_sign(a, "POST", "/prefix/2015-03-31/functions/f/invocations",
					   "", &extra, 1, "{}", 2, &h, &err),
			 0);
	assert_non_null(strstr(h.ptr, "Host: 127.0.0.1:4010\n"));
	assert_non_null(strstr(h.ptr, "X-Amz-Security-Token: apitoken\n"));
	assert_non_null(strstr(h.ptr, "Credential=AKIDAPI/"));
	assert_non_null(strstr(h.ptr, "/eu-north-1/lambda/aws4_request, "
				      "SignedHeaders=content-type;host;x-amz-date;"
				      "x-amz-security-token, Signature="));
	assert_null(strstr(h.ptr, "apisecret"));
	dda_buf_release(&h);
	dda__aws_api_free(a);
	/* The SQS client reads AWS_ENDPOINT_URL; AWS's endpoint otherwise. */
	assert_int_equal(dda__aws_api_new(&a, "sqs", NULL, NULL, NULL, NULL, &env, &err), 0);
	assert_string_equal(dda__aws_api_base(a), "http://127.0.0.1:9999");
	dda__aws_api_free(a);
	struct fake_env bare = {{"AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=S",
				 "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/c",
				 "AWS_CONFIG_FILE=/nonexistent/f", "AWS_RETRY_MODE=standard"}};
	env.ctx = &bare;
	assert_int_equal(dda__aws_api_new(&a, "sqs", NULL, NULL, NULL, "ap-east-1", &env, &err), 0);
	assert_string_equal(dda__aws_api_base(a), "https://sqs.ap-east-1.amazonaws.com");
	assert_int_equal(dda__aws_api_retry(a)->max_attempts, 3);
	dda__aws_api_free(a);
	/* A bad retry setting fails the client. */
	struct fake_env badretry = {
	    {"AWS_ACCESS_KEY_ID=A", "AWS_SECRET_ACCESS_KEY=S", "AWS_MAX_ATTEMPTS=many"}};
	env.ctx = &badretry;
	err = (struct dda_error){0};
	assert_int_equal(dda__aws_api_new(&a, "sqs", NULL, NULL, NULL, NULL, &env, &err),
			 DDA_EINVAL);
	assert_non_null(strstr(err.msg, "AWS_MAX_ATTEMPTS"));
}

/* --profile: the profile's keys, not the environment's. */
static void test_explicit_profile(void **state)
{
	(void)state;
	char dir[] = "/tmp/dda-api-XXXXXX", path[64], var[96];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/credentials", dir);
	snprintf(var, sizeof(var), "AWS_SHARED_CREDENTIALS_FILE=%s", path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("[ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = opssecret\n", f);
	fclose(f);
	struct fake_env fe = {{"AWS_ACCESS_KEY_ID=AKIDENV", "AWS_SECRET_ACCESS_KEY=envsecret", var,
			       "AWS_CONFIG_FILE=/nonexistent/f", "AWS_EC2_METADATA_DISABLED=true"}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_aws_opts o = {.profile = "ops", .region = "us-west-2"};
	struct dda_error err = {0};
	struct dda_aws_api *a;
	assert_int_equal(dda__aws_api_new(&a, "lambda", &o, NULL, NULL, NULL, &env, &err), 0);
	struct dda_buf h;
	dda_buf_init(&h, 1 << 16);
	assert_int_equal(dda__aws_api_sign(a, "GET", "/", "", NULL, 0, NULL, 0, &h, &err), 0);
	assert_non_null(strstr(h.ptr, "Credential=AKIDOPS/"));
	assert_non_null(strstr(h.ptr, "/us-west-2/lambda/"));
	dda_buf_release(&h);
	dda__aws_api_free(a);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_endpoint_region_retry),
	    cmocka_unit_test(test_explicit_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
