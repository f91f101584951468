/* The credential chain's profile rules as botocore applies them, checked
 * without a network: explicit profiles and environment keys, the profile
 * variables, role profiles refused before any call, credential_process
 * (words, answer, exit status, limits), SSO answers and cached tokens, and
 * the client core's retry settings and regions of ARNs and queue URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aws/core.h"
#include "aws/creds.h"
#include "unit/fake_env.h"

static char dir[64];
static char cred_path[128], conf_path[128], script[128], big[128], fail[128];
static char cred_var[160], conf_var[160], home_var[128];

static void write_file(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

static int setup(void **state)
{
	char text[4096];
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/dda-chain-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", dir);
	snprintf(script, sizeof(script), "%s/creds tool", dir);
	snprintf(big, sizeof(big), "%s/big", dir);
	snprintf(fail, sizeof(fail), "%s/fail", dir);
	snprintf(cred_var, sizeof(cred_var), "AWS_SHARED_CREDENTIALS_FILE=%s", cred_path);
	snprintf(conf_var, sizeof(conf_var), "AWS_CONFIG_FILE=%s", conf_path);
	snprintf(home_var, sizeof(home_var), "HOME=%s", dir);
	/* Prints its arguments back as the session token. */
	write_file(script,
		   "#!/bin/sh\n"
		   "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
		   "\"SecretAccessKey\": \"procsecret\", \"SessionToken\": \"%s|%s\", "
		   "\"Expiration\": \"2099-01-01T00:00:00Z\"}' \"$1\" \"$2\"\n",
		   0755);
	write_file(big, "#!/bin/sh\nhead -c 70000 /dev/zero | tr '\\0' x\n", 0755);
	write_file(fail, "#!/bin/sh\necho 'no such account' >&2\nexit 7\n", 0755);
	write_file(cred_path, "[default]\n"
			      "aws_access_key_id = AKIDDEFAULT\n"
			      "aws_secret_access_key = secretdefault\n"
			      "[dev]\n"
			      "aws_access_key_id = AKIDDEV\n"
			      "aws_secret_access_key = secretdev\n"
			      "[merged]\n"
			      "region = from-credentials-file\n",
		   0600);
	snprintf(text, sizeof(text),
		 "[profile merged]\n"
		 "region = from-config\n"
		 "retry_mode = legacy\n"
		 "[profile proc]\n"
		 "credential_process = \"%s\" 'one two' three\\ four\n"
		 "aws_access_key_id = AKIDCONFIGLOSES\n"
		 "aws_secret_access_key = secretconfig\n"
		 "[profile big]\n"
		 "credential_process = %s\n"
		 "[profile fail]\n"
		 "credential_process = %s\n"
		 "[profile mfa]\n"
		 "role_arn = arn:aws:iam::123456789012:role/r\n"
		 "source_profile = dev\n"
		 "mfa_serial = arn:aws:iam::123456789012:mfa/me\n"
		 "[profile both]\n"
		 "role_arn = arn:aws:iam::123456789012:role/r\n"
		 "source_profile = dev\n"
		 "credential_source = Environment\n"
		 "[profile neither]\n"
		 "role_arn = arn:aws:iam::123456789012:role/r\n"
		 "[profile loop-a]\n"
		 "role_arn = arn:aws:iam::123456789012:role/a\n"
		 "source_profile = loop-b\n"
		 "[profile loop-b]\n"
		 "role_arn = arn:aws:iam::123456789012:role/b\n"
		 "source_profile = loop-a\n"
		 "[profile ghost]\n"
		 "role_arn = arn:aws:iam::123456789012:role/r\n"
		 "source_profile = nowhere\n"
		 "[profile odd-source]\n"
		 "role_arn = arn:aws:iam::123456789012:role/r\n"
		 "credential_source = Ec2Metadata\n"
		 "[profile env-source]\n"
		 "role_arn = arn:aws:iam::123456789012:role/r\n"
		 "credential_source = Environment\n"
		 "[profile long]\n"
		 "role_arn = arn:aws:iam::123456789012:role/r\n"
		 "source_profile = dev\n"
		 "duration_seconds = 50000\n"
		 "[profile sso-half]\n"
		 "sso_start_url = https://example.awsapps.com/start\n"
		 "sso_region = eu-west-1\n"
		 "sso_account_id = 123456789012\n"
		 "[profile sso-lost]\n"
		 "sso_session = nosuch\n"
		 "sso_account_id = 123456789012\n"
		 "sso_role_name = Reader\n"
		 "[profile sso-nologin]\n"
		 "sso_start_url = https://example.awsapps.com/start\n"
		 "sso_region = eu-west-1\n"
		 "sso_account_id = 123456789012\n"
		 "sso_role_name = Reader\n",
		 script, big, fail);
	write_file(conf_path, text, 0600);
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* AWS_DEFAULT_PROFILE is AWS_PROFILE's fallback, as the CLI reads them. */
static void test_profile_variables(void **state)
{
	(void)state;
	struct fake_env a = {{"AWS_DEFAULT_PROFILE=ops"}};
	struct fake_env b = {{"AWS_DEFAULT_PROFILE=ops", "AWS_PROFILE=dev"}};
	struct dda_env env = {fake_get, &a, NULL};
	assert_string_equal(dda__aws_profile(&env, NULL), "ops");
	env.ctx = &b;
	assert_string_equal(dda__aws_profile(&env, NULL), "dev");
	assert_string_equal(dda__aws_profile(&env, "flag"), "flag");
}

/* The credentials file's [NAME] outranks the config file's [profile NAME]. */
static void test_profile_merge(void **state)
{
	(void)state;
	struct fake_env fe = {{cred_var, conf_var}};
	struct dda_env env = {fake_get, &fe, NULL};
	char *v = dda__aws_profile_get(&env, "merged", "region", DDA_PROFILE_ANY);
	assert_string_equal(v, "from-credentials-file");
	free(v);
	v = dda__aws_profile_get(&env, "merged", "region", DDA_PROFILE_CONFIG);
	assert_string_equal(v, "from-config");
	free(v);
	assert_true(dda__aws_profile_exists(&env, "dev"));
	assert_true(dda__aws_profile_exists(&env, "proc"));
	assert_false(dda__aws_profile_exists(&env, "nowhere"));
}

/* --profile outranks keys in the environment; AWS_PROFILE does not. */
static void test_explicit_profile_ignores_env_keys(void **state)
{
	(void)state;
	struct fake_env fe = {{cred_var, conf_var, home_var, "AWS_ACCESS_KEY_ID=AKIDENV",
			       "AWS_SECRET_ACCESS_KEY=envsecret", "AWS_PROFILE=dev",
			       "AWS_EC2_METADATA_DISABLED=true"}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda__creds_resolve(&env, NULL, NULL, &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDENV");
	dda__creds_release(&c);
	assert_int_equal(dda__creds_resolve(&env, "dev", NULL, &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDDEV");
	dda__creds_release(&c);
	/* A profile that exists nowhere is an error, not the default. */
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_resolve(&env, "nowhere", NULL, &c, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "'nowhere'"));
}

/* botocore's order puts credential_process before the config file's keys. */
static void test_process(void **state)
{
	(void)state;
	struct fake_env fe = {{cred_var, conf_var, home_var, "AWS_EC2_METADATA_DISABLED=true"}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda__creds_resolve(&env, "proc", NULL, &c, &err), 0);
	assert_string_equal(c.access_key, "AKIDPROC");
	assert_string_equal(c.session_token, "one two|three four");
	assert_ptr_equal(c.provider, dda__provider_process);
	assert_true(c.expiration == dda_time_from_civil(2099, 1, 1, 0, 0, 0) * DDA_USEC_PER_SEC);
	dda__creds_release(&c);
	/* Output past the limit, and a failed exit naming the profile. */
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_resolve(&env, "big", NULL, &c, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "more than"));
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_resolve(&env, "fail", NULL, &c, &err), DDA_EAUTH);
	if (!strstr(err.msg, "profile 'fail'")) fail_msg("%s", err.msg);
	assert_non_null(strstr(err.msg, "status 7"));
}

/* A process past its time is killed with everything it started: the
 * grandchild holding stdout open does not keep the run waiting. */
static void test_process_time_limit(void **state)
{
	(void)state;
	char *argv[] = {"/bin/sh", "-c", "sleep 30 & sleep 30", NULL};
	struct dda_buf out;
	struct dda_error err = {0};
	int status = 0;
	dda_buf_init(&out, 1024);
	assert_int_equal(dda__creds_process_run("slow", argv, 300, &out, &status, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "profile 'slow'"));
	assert_non_null(strstr(err.msg, "was killed"));
	assert_true(WIFSIGNALED(status));
	/* One that closes its output and goes on running is bounded too. */
	char *quiet[] = {"/bin/sh", "-c", "exec >/dev/null; sleep 30", NULL};
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_process_run("quiet", quiet, 300, &out, &status, &err),
			 DDA_EAUTH);
	assert_non_null(strstr(err.msg, "was killed"));
	dda_buf_release(&out);
	char *missing[] = {"/nonexistent/creds-tool", NULL};
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_process_run("gone", missing, 1000, &out, &status, &err),
			 DDA_EAUTH);
	assert_non_null(strstr(err.msg, "cannot run credential_process '/nonexistent/creds-tool'"));
}

static void test_shell_split(void **state)
{
	(void)state;
	static const struct {
		const char *cmd;
		const char *words[5];
	} cases[] = {
	    {"aws-vault exec prod --json", {"aws-vault", "exec", "prod", "--json"}},
	    {"  'a b'  \"c \\\" d\" e\\ f ", {"a b", "c \" d", "e f"}},
	    {"x '' \"\"", {"x", "", ""}},
	    {"a\"b\"'c'd", {"abcd"}},
	    {"\"keep \\n and \\$\"", {"keep \\n and \\$"}},
	};
	struct dda_error err = {0};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char **argv = dda__shell_split(cases[i].cmd, &err);
		assert_non_null(argv);
		size_t n = 0;
		for (; cases[i].words[n]; n++)
			assert_string_equal(argv[n], cases[i].words[n]);
		assert_null(argv[n]);
		dda__argv_free(argv);
	}
	assert_null(dda__shell_split("a 'b", &err));
	assert_non_null(strstr(err.msg, "quote"));
	assert_null(dda__shell_split("   ", &err));
}

static void test_process_answer(void **state)
{
	(void)state;
	struct dda_creds c;
	struct dda_error err = {0};
	const char *ok = "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}";
	assert_int_equal(dda__creds_parse_process(ok, strlen(ok), &c, &err), 0);
	assert_null(c.session_token);
	assert_true(c.expiration == DDA_TIME_NONE);
	dda__creds_release(&c);
	static const char *const bad[] = {
	    "", "[]", "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}",
	    "{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}",
	    "{\"Version\":\"1\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}",
	    "{\"Version\":1,\"AccessKeyId\":\"A\"}",
	    "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":7}",
	    "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"SessionToken\":1}",
	    "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"x\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = (struct dda_error){0};
		assert_int_equal(dda__creds_parse_process(bad[i], strlen(bad[i]), &c, &err),
				 DDA_EFORMAT);
		assert_null(strstr(err.msg, "\"S\""));
	}
}

/* Role profiles that botocore refuses are refused before any request. */
static void test_role_profile_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *profile, *says;
	} cases[] = {
	    {"mfa", "mfa_serial"},
	    {"both", "both source_profile and credential_source"},
	    {"neither", "neither source_profile nor credential_source"},
	    {"loop-a", "loop"},
	    {"ghost", "'nowhere'"},
	    {"odd-source", "Ec2InstanceMetadata"},
	    {"env-source", "no credentials found in credential_source 'Environment'"},
	    {"long", "duration_seconds"},
	};
	/* STS would be a closed port: none of these may get that far. */
	struct fake_env fe = {{cred_var, conf_var, home_var, "AWS_ENDPOINT_URL_STS=http://127.0.0.1:9",
			       "AWS_EC2_METADATA_DISABLED=true"}};
	struct dda_env env = {fake_get, &fe, NULL};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dda_creds c;
		struct dda_error err = {0};
		assert_int_equal(dda__creds_resolve(&env, cases[i].profile, NULL, &c, &err),
				 DDA_EAUTH);
		if (!strstr(err.msg, cases[i].says))
			fail_msg("%s: %s", cases[i].profile, err.msg);
		assert_int_equal(dda__creds_assume_role(&env, "dev", NULL, &c, &err), 1);
	}
}

static void test_sso_settings(void **state)
{
	(void)state;
	struct fake_env fe = {{cred_var, conf_var, home_var, "AWS_EC2_METADATA_DISABLED=true"}};
	struct dda_env env = {fake_get, &fe, NULL};
	struct dda_creds c;
	struct dda_error err = {0};
	assert_int_equal(dda__creds_from_sso(&env, "dev", &c, &err), 1);
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_from_sso(&env, "sso-half", &c, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "sso_role_name"));
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_from_sso(&env, "sso-lost", &c, &err), DDA_EAUTH);
	if (!strstr(err.msg, "[sso-session nosuch]")) fail_msg("%s", err.msg);
	err = (struct dda_error){0};
	assert_int_equal(dda__creds_from_sso(&env, "sso-nologin", &c, &err), DDA_EAUTH);
	assert_non_null(strstr(err.msg, "aws sso login --profile sso-nologin"));
}

static void test_sso_answers(void **state)
{
	(void)state;
	struct dda_creds c;
	struct dda_error err = {0};
	char *tok;
	int64_t now = dda_time_from_civil(2026, 1, 1, 0, 0, 0) * DDA_USEC_PER_SEC;
	const char *t = "{\"accessToken\":\"tok\",\"expiresAt\":\"2026-01-01T01:00:00Z\"}";
	assert_int_equal(dda__sso_parse_token(t, strlen(t), now, &tok, &err), 0);
	assert_string_equal(tok, "tok");
	free(tok);
	/* Expired an hour later. */
	err = (struct dda_error){0};
	assert_int_equal(
	    dda__sso_parse_token(t, strlen(t), now + 3600 * DDA_USEC_PER_SEC, &tok, &err),
	    DDA_EAUTH);
	assert_non_null(strstr(err.msg, "expired"));
	assert_null(strstr(err.msg, "tok\""));
	const char *nt = "{\"expiresAt\":\"2026-01-01T01:00:00Z\"}";
	err = (struct dda_error){0};
	assert_int_equal(dda__sso_parse_token(nt, strlen(nt), now, &tok, &err), DDA_EFORMAT);

	const char *a = "{\"roleCredentials\":{\"accessKeyId\":\"ASIASSO\",\"secretAccessKey\":"
			"\"ssosecret\",\"sessionToken\":\"ssotok\",\"expiration\":1767229200000}}";
	assert_int_equal(dda__creds_parse_sso(a, strlen(a), &c, &err), 0);
	assert_string_equal(c.access_key, "ASIASSO");
	assert_true(c.expiration == 1767229200000LL * 1000);
	assert_ptr_equal(c.provider, dda__provider_sso);
	dda__creds_release(&c);
	static const char *const bad[] = {
	    "{}", "{\"roleCredentials\":{\"accessKeyId\":\"A\"}}",
	    ("{\"roleCredentials\":{\"accessKeyId\":\"A\",\"secretAccessKey\":\"S\","
	     "\"expiration\":\"soon\"}}")};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = (struct dda_error){0};
		assert_int_equal(dda__creds_parse_sso(bad[i], strlen(bad[i]), &c, &err),
				 DDA_EFORMAT);
	}
}

static void test_retry_settings(void **state)
{
	(void)state;
	struct dda_http_opts o;
	struct dda_error err = {0};
	struct fake_env none = {{"HOME=/nonexistent"}};
	struct dda_env env = {fake_get, &none, NULL};
	dda__http_opts_default(&o);
	assert_int_equal(dda__aws_retry_opts(&env, "default", &o, &err), 0);
	assert_int_equal(o.max_attempts, 5);
	assert_true(o.backoff_base == 100 * 1000);
	struct fake_env std = {{"AWS_RETRY_MODE=standard"}};
	env.ctx = &std;
	assert_int_equal(dda__aws_retry_opts(&env, "default", &o, &err), 0);
	assert_int_equal(o.max_attempts, 3);
	assert_true(o.backoff_base == DDA_USEC_PER_SEC);
	assert_true(o.backoff_cap == 20 * DDA_USEC_PER_SEC);
	struct fake_env both = {{"AWS_RETRY_MODE=adaptive", "AWS_MAX_ATTEMPTS=7"}};
	env.ctx = &both;
	assert_int_equal(dda__aws_retry_opts(&env, "default", &o, &err), 0);
	assert_int_equal(o.max_attempts, 7);
	/* The config file's forms, for the profile. */
	struct fake_env cfg = {{conf_var, cred_var}};
	env.ctx = &cfg;
	dda__http_opts_default(&o);
	assert_int_equal(dda__aws_retry_opts(&env, "merged", &o, &err), 0);
	assert_int_equal(o.max_attempts, 5);
	assert_true(o.backoff_base == DDA_USEC_PER_SEC);
	static const char *const bad[] = {"AWS_RETRY_MODE=fast", "AWS_MAX_ATTEMPTS=0",
					  "AWS_MAX_ATTEMPTS=3x", "AWS_MAX_ATTEMPTS=21"};
	for (size_t i = 0; i < 4; i++) {
		struct fake_env b = {{bad[i]}};
		env.ctx = &b;
		err = (struct dda_error){0};
		assert_int_equal(dda__aws_retry_opts(&env, "default", &o, &err), DDA_EINVAL);
	}
}

static void test_region_of(void **state)
{
	(void)state;
	static const struct {
		const char *s, *region;
	} cases[] = {
	    {"arn:aws:lambda:eu-west-1:123456789012:function:f", "eu-west-1"},
	    {"arn:aws:lambda:eu-west-1:123456789012:function:f:live", "eu-west-1"},
	    {"arn:aws-us-gov:sqs:us-gov-west-1:123:q", "us-gov-west-1"},
	    {"arn:aws:iam::123456789012:role/r", ""},
	    {"https://sqs.ap-southeast-2.amazonaws.com/123456789012/dlq", "ap-southeast-2"},
	    {"https://sqs.cn-north-1.amazonaws.com.cn/123/dlq", "cn-north-1"},
	    {"https://eu-central-1.queue.amazonaws.com/123/dlq", "eu-central-1"},
	    {"http://127.0.0.1:4566/000000000000/dlq", ""},
	    {"http://localhost:9324/queue/sqs.evil", ""},
	    {"https://sqs.localhost.localstack.cloud:4566/000000000000/dlq", ""},
	    {"my-function", ""},
	    {"arn:aws:lambda:EU-WEST-1:1:function:f", ""},
	};
	char r[32];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool found = dda__aws_region_of(cases[i].s, r, sizeof(r));
		assert_int_equal(found, cases[i].region[0] != '\0');
		assert_string_equal(r, cases[i].region);
	}
}

static void test_endpoints(void **state)
{
	(void)state;
	struct dda_aws_endpoint ep;
	struct dda_error err = {0};
	assert_int_equal(dda__aws_endpoint_parse("http://127.0.0.1:5000/base/", "STS", &ep, &err), 0);
	assert_string_equal(ep.scheme_host, "http://127.0.0.1:5000");
	assert_string_equal(ep.host, "127.0.0.1:5000");
	assert_string_equal(ep.prefix, "/base");
	dda__aws_endpoint_release(&ep);
	err = (struct dda_error){0};
	assert_int_equal(dda__aws_endpoint_parse("ftp://x", "STS", &ep, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "STS"));
	struct fake_env fe = {{"AWS_ENDPOINT_URL=http://all", "AWS_ENDPOINT_URL_SSO=http://sso"}};
	struct dda_env env = {fake_get, &fe, NULL};
	assert_string_equal(dda__aws_endpoint_override(&env, "SSO", NULL), "http://sso");
	assert_string_equal(dda__aws_endpoint_override(&env, "STS", NULL), "http://all");
	assert_string_equal(dda__aws_endpoint_override(&env, "STS", "http://flag"), "http://flag");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_profile_variables),
	    cmocka_unit_test(test_profile_merge),
	    cmocka_unit_test(test_explicit_profile_ignores_env_keys),
	    cmocka_unit_test(test_process),
	    cmocka_unit_test(test_process_time_limit),
	    cmocka_unit_test(test_shell_split),
	    cmocka_unit_test(test_process_answer),
	    cmocka_unit_test(test_role_profile_refusals),
	    cmocka_unit_test(test_sso_settings),
	    cmocka_unit_test(test_sso_answers),
	    cmocka_unit_test(test_retry_settings),
	    cmocka_unit_test(test_region_of),
	    cmocka_unit_test(test_endpoints),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
