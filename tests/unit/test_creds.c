/* Credentials and settings as the AWS tools find them: environment, shared
 * credentials and config files, profiles, region precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <unistd.h>

#include "aws/creds.h"

/* A fake environment: NAME=VALUE strings. */
struct fake_env {
	const char *vars[16];
};

static const char *fake_get(void *ctx, const char *name)
{
	struct fake_env *e = ctx;
	size_t n = strlen(name);
	for (int i = 0; i < 16 && e->vars[i]; i++)
		if (!strncmp(e->vars[i], name, n) && e->vars[i][n] == '=')
			return e->vars[i] + n + 1;
	return NULL;
}

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
	struct dda_env env = {fake_get, &fe};
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda_creds_from_env(&env, &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDENV");
	assert_string_equal(c.secret_key, "secretenv");
	assert_string_equal(c.session_token, "tok");
	assert_string_equal(c.provider, "environment");
	dda_creds_release(&c);
	struct fake_env none = {{"HOME=/nonexistent"}};
	env.ctx = &none;
	assert_int_equal(dda_creds_from_env(&env, &c, &err), 1);
	struct fake_env half = {{"AWS_ACCESS_KEY_ID=AKIDENV"}};
	env.ctx = &half;
	assert_int_equal(dda_creds_from_env(&env, &c, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "AWS_SECRET_ACCESS_KEY"));
	/* The message names the variable, never a value. */
	assert_null(strstr(err.msg, "AKIDENV"));
}

static void test_profiles(void **state)
{
	struct fake_env fe = {{cred_var, conf_var}};
	struct dda_env env = {fake_get, &fe};
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda_creds_from_profile(&env, "default", &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDDEFAULT");
	assert_string_equal(c.provider, "shared-credentials-file");
	assert_null(c.session_token);
	dda_creds_release(&c);
	assert_int_equal(dda_creds_from_profile(&env, "dev", &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDDEV");
	assert_string_equal(c.session_token, "tokendev");
	assert_string_equal(c.provider, "config-file");
	dda_creds_release(&c);
	/* The credentials file wins over the config file. */
	assert_int_equal(dda_creds_from_profile(&env, "both", &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDFROMCREDS");
	dda_creds_release(&c);
	assert_int_equal(dda_creds_from_profile(&env, "nosuch", &c, &err), 1);
	assert_int_equal(dda_creds_from_profile(&env, "half", &c, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "aws_secret_access_key"));
}

static void test_default_paths_from_home(void **state)
{
	struct fake_env fe = {{"HOME=/home/someone"}};
	struct dda_env env = {fake_get, &fe};
	char *p = dda_aws_credentials_file(&env), *q = dda_aws_config_file(&env);
	assert_string_equal(p, "/home/someone/.aws/credentials");
	assert_string_equal(q, "/home/someone/.aws/config");
	free(p);
	free(q);
}

static void test_region_and_profile(void **state)
{
	struct fake_env fe = {{cred_var, conf_var}};
	struct dda_env env = {fake_get, &fe};
	char *r = dda_aws_region(&env, "default", NULL);
	assert_string_equal(r, "eu-west-1");
	free(r);
	r = dda_aws_region(&env, "dev", NULL);
	assert_string_equal(r, "ap-south-1");
	free(r);
	assert_null(dda_aws_region(&env, "both", NULL));
	r = dda_aws_region(&env, "dev", "us-west-2");
	assert_string_equal(r, "us-west-2");
	free(r);
	struct fake_env fe2 = {{conf_var, "AWS_DEFAULT_REGION=sa-east-1"}};
	env.ctx = &fe2;
	r = dda_aws_region(&env, "dev", NULL);
	assert_string_equal(r, "sa-east-1");
	free(r);
	struct fake_env fe3 = {{conf_var, "AWS_DEFAULT_REGION=sa-east-1", "AWS_REGION=ca-central-1",
				"AWS_PROFILE=dev"}};
	env.ctx = &fe3;
	r = dda_aws_region(&env, "dev", NULL);
	assert_string_equal(r, "ca-central-1");
	free(r);
	assert_string_equal(dda_aws_profile(&env, NULL), "dev");
	assert_string_equal(dda_aws_profile(&env, "ops"), "ops");
	env.ctx = &fe2;
	assert_string_equal(dda_aws_profile(&env, NULL), "default");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_environment),
	    cmocka_unit_test(test_profiles),
	    cmocka_unit_test(test_default_paths_from_home),
	    cmocka_unit_test(test_region_and_profile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
