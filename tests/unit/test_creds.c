/* Credentials and settings as the AWS tools find them: environment, shared
 * credentials and config files, profiles, region precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <unistd.h>

#include "aws/creds.h"
#include "unit/fake_env.h"


static char dir[64];
static char cred_path[128], conf_path[128];
static char cred_var[160], conf_var[160];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/dda-creds-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", dir);
	snprintf(cred_var, sizeof(cred_var), "AWS_SHARED_CREDENTIALS_FILE=%s", cred_path);
	snprintf(conf_var, sizeof(conf_var), "AWS_CONFIG_FILE=%s", conf_path);
	write_file(cred_path, "# keys\n"
			      "[default]\n"
			      "aws_access_key_id = AKIDDEFAULT\n"
			      "aws_secret_access_key=secretdefault\n"
			      "\n"
			      "[both]\n"
			      "aws_access_key_id = AKIDFROMCREDS\n"
			      "aws_secret_access_key = secretcreds\n"
			      "[half]\n"
			      "aws_access_key_id = AKIDHALF\n");
	write_file(conf_path, "[default]\n"
			      "region = eu-west-1\n"
			      "s3 =\n"
			      "  region = nested-not-this\n"
			      "[profile  dev]\n"
			      "region=ap-south-1\n"
			      "aws_access_key_id = AKIDDEV\n"
			      "aws_secret_access_key = secretdev\n"
			      "aws_session_token = tokendev\n"
			      "; comment\n"
			      "[profile both]\n"
			      "aws_access_key_id = AKIDFROMCONFIG\n"
			      "aws_secret_access_key = secretconfig\n"
			      "[dev]\n"
			      "region = wrong-section-name\n");
	return 0;
}

static int teardown(void **state)
{
	unlink(cred_path);
	unlink(conf_path);
	rmdir(dir);
	return 0;
}

static void test_environment(void **state)
{
	struct fake_env fe = {{"AWS_ACCESS_KEY_ID=AKIDENV", "AWS_SECRET_ACCESS_KEY=secretenv",
			       "AWS_SESSION_TOKEN=tok"}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda__creds_from_env(&env, &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDENV");
	assert_string_equal(c.secret_key, "secretenv");
	assert_string_equal(c.session_token, "tok");
	assert_string_equal(c.provider, "environment");
	dda__creds_release(&c);
	struct fake_env none = {{"HOME=/nonexistent"}};
	env.ctx = &none;
	assert_int_equal(dda__creds_from_env(&env, &c, &err), 1);
	struct fake_env half = {{"AWS_ACCESS_KEY_ID=AKIDENV"}};
	env.ctx = &half;
	assert_int_equal(dda__creds_from_env(&env, &c, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "AWS_SECRET_ACCESS_KEY"));
	/* The message names the variable, never a value. */
	assert_null(strstr(err.msg, "AKIDENV"));
}

static void test_profiles(void **state)
{
	struct fake_env fe = {{cred_var, conf_var}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda__creds_from_profile(&env, "default", &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDDEFAULT");
	assert_string_equal(c.provider, "shared-credentials-file");
	assert_null(c.session_token);
	dda__creds_release(&c);
	assert_int_equal(dda__creds_from_profile(&env, "dev", &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDDEV");
	assert_string_equal(c.session_token, "tokendev");
	assert_string_equal(c.provider, "config-file");
	dda__creds_release(&c);
	/* The credentials file wins over the config file. */
	assert_int_equal(dda__creds_from_profile(&env, "both", &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDFROMCREDS");
	dda__creds_release(&c);
	assert_int_equal(dda__creds_from_profile(&env, "nosuch", &c, &err), 1);
	assert_int_equal(dda__creds_from_profile(&env, "half", &c, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "aws_secret_access_key"));
}

static void test_default_paths_from_home(void **state)
{
	struct fake_env fe = {{"HOME=/home/someone"}};
	struct dda_env env = {fake_get, &fe, NULL};
	char *p = dda__aws_credentials_file(&env), *q = dda__aws_config_file(&env);
	assert_string_equal(p, "/home/someone/.aws/credentials");
	assert_string_equal(q, "/home/someone/.aws/config");
	free(p);
	free(q);
}

static void test_region_and_profile(void **state)
{
	struct fake_env fe = {{cred_var, conf_var}};
	struct dda_env env = {fake_get, &fe, NULL};
	char *r = dda__aws_region(&env, "default", NULL);
	assert_string_equal(r, "eu-west-1");
	free(r);
	r = dda__aws_region(&env, "dev", NULL);
	assert_string_equal(r, "ap-south-1");
	free(r);
	assert_null(dda__aws_region(&env, "both", NULL));
	r = dda__aws_region(&env, "dev", "us-west-2");
	assert_string_equal(r, "us-west-2");
	free(r);
	struct fake_env fe2 = {{conf_var, "AWS_DEFAULT_REGION=sa-east-1"}};
	env.ctx = &fe2;
	r = dda__aws_region(&env, "dev", NULL);
	assert_string_equal(r, "sa-east-1");
	free(r);
	struct fake_env fe3 = {{conf_var, "AWS_DEFAULT_REGION=sa-east-1", "AWS_REGION=ca-central-1",
				"AWS_PROFILE=dev"}};
	env.ctx = &fe3;
	r = dda__aws_region(&env, "dev", NULL);
	assert_string_equal(r, "ca-central-1");
	free(r);
	assert_string_equal(dda__aws_profile(&env, NULL), "dev");
	assert_string_equal(dda__aws_profile(&env, "ops"), "ops");
	env.ctx = &fe2;
	assert_string_equal(dda__aws_profile(&env, NULL), "default");
}

/* STS's answer to AssumeRoleWithWebIdentity, and its error answer. */
static void test_sts_answer(void **state)
{
	const char *ok =
	    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	    "<AssumeRoleWithWebIdentityResult><Credentials>"
	    "<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>wJalr/secret</SecretAccessKey>"
	    "<SessionToken>FwoGZXIvYXdzEXAMPLE</SessionToken>"
	    "<Expiration>2026-11-24T12:00:00Z</Expiration></Credentials>"
	    "<AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>"
	    "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda__creds_parse_sts(ok, strlen(ok), dda__provider_web_identity, &c, &err),
			 0);
	assert_string_equal(c.access_key, "ASIAEXAMPLE");
	assert_string_equal(c.secret_key, "wJalr/secret");
	assert_string_equal(c.session_token, "FwoGZXIvYXdzEXAMPLE");
	assert_true(c.expiration == dda_time_from_civil(2026, 11, 24, 12, 0, 0) * DDA_USEC_PER_SEC);
	assert_ptr_equal(c.provider, dda__provider_web_identity);
	dda__creds_release(&c);
	/* An answer without credentials is an error that names the provider. */
	const char *bad = "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>";
	assert_int_equal(
	    dda__creds_parse_sts(bad, strlen(bad), dda__provider_web_identity, &c, &err),
	    DDA_EFORMAT);
	assert_non_null(strstr(err.msg, "web identity"));
	assert_int_equal(dda__creds_parse_sts("<a", 2, dda__provider_web_identity, &c, &err),
			 DDA_EFORMAT);
}

/* The container endpoint's and IMDS's JSON. */
static void test_json_answer(void **state)
{
	const char *ok = "{\"AccessKeyId\":\"ASIAC\",\"SecretAccessKey\":\"s3cr3t\","
			 "\"Token\":\"tok\",\"Expiration\":\"2026-11-24T12:30:00Z\"}";
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda__creds_parse_json(ok, strlen(ok), "x", &c, &err), 0);
	assert_string_equal(c.access_key, "ASIAC");
	assert_string_equal(c.session_token, "tok");
	assert_true(c.expiration == dda_time_from_civil(2026, 11, 24, 12, 30, 0) * DDA_USEC_PER_SEC);
	dda__creds_release(&c);
	static const char *const bad[] = {
	    "", "[]", "{\"AccessKeyId\":\"A\"}", "{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\"}",
	    "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"soon\"}",
	    "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\",\"SecretAccessKey\":\"s\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    dda__creds_parse_json(bad[i], strlen(bad[i]), "container", &c, &err),
		    DDA_EFORMAT);
		assert_non_null(strstr(err.msg, "container"));
		/* Nothing of the answer is echoed back. */
		assert_null(strstr(err.msg, "\"s\""));
	}
}

/* Renewal: never for long-term keys; for expiring ones from the provider
 * that gave them, and an expired set that cannot be renewed is an error. */
static void test_refresh(void **state)
{
	struct fake_env fe = {{"AWS_ACCESS_KEY_ID=AKIDNEW", "AWS_SECRET_ACCESS_KEY=new"}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_error err = {0};
	struct dda_creds c;
	int64_t now = dda_time_from_civil(2026, 11, 24, 12, 0, 0) * DDA_USEC_PER_SEC;
	assert_int_equal(dda__creds_from_env(&env, &c, &err), 0);
	assert_int_equal(dda__creds_refresh(&env, "default", NULL, &c, now, &err), 0);
	assert_string_equal(c.access_key, "AKIDNEW");
	dda__creds_release(&c);

	/* Container credentials ten minutes from expiry: kept. */
	struct dda_env none = {fake_get, &(struct fake_env){{"HOME=/nonexistent", NULL}}, NULL};
	const char *j = "{\"AccessKeyId\":\"OLD\",\"SecretAccessKey\":\"old\"}";
	assert_int_equal(dda__creds_parse_json(j, strlen(j), dda__provider_container, &c, &err), 0);
	c.expiration = now + 10 * 60 * DDA_USEC_PER_SEC;
	assert_int_equal(dda__creds_refresh(&none, "default", NULL, &c, now, &err), 0);
	assert_string_equal(c.access_key, "OLD");
	/* Two minutes from expiry, with the endpoint gone: kept while valid... */
	c.expiration = now + 2 * 60 * DDA_USEC_PER_SEC;
	assert_int_equal(dda__creds_refresh(&none, "default", NULL, &c, now, &err), 0);
	assert_string_equal(c.access_key, "OLD");
	/* ...and an error once expired, naming the provider. */
	c.expiration = now - 1;
	assert_int_equal(dda__creds_refresh(&none, "default", NULL, &c, now, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "container credentials endpoint"));
	assert_null(strstr(err.msg, "old"));
	dda__creds_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_environment),
	    cmocka_unit_test(test_profiles),
	    cmocka_unit_test(test_default_paths_from_home),
	    cmocka_unit_test(test_region_and_profile),
	    cmocka_unit_test(test_sts_answer),
	    cmocka_unit_test(test_json_answer),
	    cmocka_unit_test(test_refresh),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
