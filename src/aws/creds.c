/* Credentials from the environment and the shared files, the profile and
 * region in effect, and a small reader for the AWS INI files. */
#include "aws/creds.h"
#include "util/log.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdlib.h>

/* A line of an INI file longer than this is not one the AWS tools wrote. */
#define INI_LINE_MAX 4096

const char *dda__process_env(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static const char *env_get(const struct dda_env *env, const char *name)
{
	const char *v = env->get(env->ctx, name);
	return v && *v ? v : NULL;
}

void dda__wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void dda__creds_release(struct dda_creds *c)
{
	dda__wipe_free(c->access_key);
	dda__wipe_free(c->secret_key);
	dda__wipe_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

void dda__creds_register(const struct dda_creds *c)
{
	dda__secret_add(c->secret_key);
	dda__secret_add(c->session_token);
}

int dda__creds_fill(struct dda_creds *out, const char *ak, const char *sk, const char *token,
		    int64_t expiration, const char *provider, struct dda_error *err)
{
	memset(out, 0, sizeof(*out));
	out->expiration = expiration;
	out->provider = provider;
	out->access_key = strdup(ak);
	out->secret_key = strdup(sk);
	out->session_token = token ? strdup(token) : NULL;
	if (!out->access_key || !out->secret_key || (token && !out->session_token)) {
		dda__creds_release(out);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	return 0;
}

int dda__creds_from_env(const struct dda_env *env, struct dda_creds *out, struct dda_error *err)
{
	const char *ak = env_get(env, "AWS_ACCESS_KEY_ID");
	const char *sk = env_get(env, "AWS_SECRET_ACCESS_KEY");
	if (!ak && !sk)
		return 1;
	if (!ak || !sk)
		return dda_error_set(err, DDA_EAUTH, "the environment sets %s but not %s",
				     ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
				     ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	const char *tok = env_get(env, "AWS_SESSION_TOKEN");
	if (!tok)
		tok = env_get(env, "AWS_SECURITY_TOKEN"); /* boto2's name, still read */
	return dda__creds_fill(out, ak, sk, tok, DDA_TIME_NONE, "environment", err);
}

const char *dda__aws_profile(const struct dda_env *env, const char *flag)
{
	if (flag && *flag)
		return flag;
	const char *p = env_get(env, "AWS_PROFILE");
	if (!p)
		p = env_get(env, "AWS_DEFAULT_PROFILE");
	return p ? p : "default";
}

static char *home_file(const struct dda_env *env, const char *var, const char *rel)
{
	const char *v = env_get(env, var);
	if (v)
		return strdup(v);
	const char *home = env_get(env, "HOME");
	if (!home)
		return NULL;
	struct dda_buf b;
	dda_buf_init(&b, 4096);
	if (dda_buf_addf(&b, "%s/%s", home, rel))
		return NULL;
	return dda_buf_take(&b, NULL);
}

char *dda__aws_credentials_file(const struct dda_env *env)
{
	return home_file(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
}

char *dda__aws_config_file(const struct dda_env *env)
{
	return home_file(env, "AWS_CONFIG_FILE", ".aws/config");
}

/* Trims spaces at both ends in place. */
static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Whether the line "[ ... ]" names `section` (spaces inside are free). */
static bool is_section(char *line, const char *section)
{
	char *end = strrchr(line, ']');
	if (line[0] != '[' || !end)
		return false;
	*end = '\0';
	char *name = trim(line + 1);
	/* "profile   x" has one or more spaces after the word. */
	if (!strncmp(name, "profile", 7) && isspace((unsigned char)name[7]) &&
	    !strncmp(section, "profile ", 8))
		return !strcmp(trim(name + 7), section + 8);
	return !strcmp(name, section);
}

char *dda__ini_get(const char *path, const char *section, const char *key)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return NULL;
	char line[INI_LINE_MAX];
	bool in = false;
	char *found = NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		bool nested = line[0] == ' ' || line[0] == '\t';
		char *s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			in = is_section(s, section);
			continue;
		}
		char *eq = strchr(s, '=');
		if (!in || nested || !eq)
			continue;
		*eq = '\0';
		if (!strcmp(trim(s), key) && *trim(eq + 1))
			found = strdup(trim(eq + 1));
	}
	fclose(f);
	OPENSSL_cleanse(line, sizeof(line));
	return found;
}

bool dda__ini_has_section(const char *path, const char *section)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return false;
	char line[INI_LINE_MAX];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *s = trim(line);
		found = *s == '[' && is_section(s, section);
	}
	fclose(f);
	OPENSSL_cleanse(line, sizeof(line));
	return found;
}

/* The config file's section for a profile. */
static void config_section(const char *profile, char *out, size_t n)
{
	if (!strcmp(profile, "default"))
		snprintf(out, n, "default");
	else
		snprintf(out, n, "profile %s", profile);
}

/* Static keys of the profile in one file. */
static int profile_keys(const char *path, const char *section, const char *provider,
			struct dda_creds *out, struct dda_error *err)
{
	char *ak = dda__ini_get(path, section, "aws_access_key_id");
	char *sk = dda__ini_get(path, section, "aws_secret_access_key");
	char *tok = dda__ini_get(path, section, "aws_session_token");
	int rc = 1;
	if (ak && sk)
		rc = dda__creds_fill(out, ak, sk, tok, DDA_TIME_NONE, provider, err);
	else if (ak || sk)
		rc =
		    dda_error_set(err, DDA_EAUTH, "profile '%s' in '%s' sets %s but not %s",
				  section, path, ak ? "aws_access_key_id" : "aws_secret_access_key",
				  ak ? "aws_secret_access_key" : "aws_access_key_id");
	dda__wipe_free(ak);
	dda__wipe_free(sk);
	dda__wipe_free(tok);
	return rc;
}

char *dda__aws_profile_get(const struct dda_env *env, const char *profile, const char *key,
			   int where)
{
	char section[512];
	char *v = NULL;
	if (where == DDA_PROFILE_ANY) {
		char *cred = dda__aws_credentials_file(env);
		v = dda__ini_get(cred, profile, key);
		free(cred);
	}
	if (!v) {
		char *conf = dda__aws_config_file(env);
		config_section(profile, section, sizeof(section));
		v = dda__ini_get(conf, section, key);
		free(conf);
	}
	return v;
}

bool dda__aws_profile_exists(const struct dda_env *env, const char *profile)
{
	char section[512];
	char *cred = dda__aws_credentials_file(env), *conf = dda__aws_config_file(env);
	config_section(profile, section, sizeof(section));
	bool found = dda__ini_has_section(cred, profile) || dda__ini_has_section(conf, section);
	free(cred);
	free(conf);
	return found;
}

int dda__creds_from_credentials_file(const struct dda_env *env, const char *profile,
				     struct dda_creds *out, struct dda_error *err)
{
	char *cred = dda__aws_credentials_file(env);
	int rc = profile_keys(cred, profile, "shared-credentials-file", out, err);
	free(cred);
	return rc;
}

int dda__creds_from_config_file(const struct dda_env *env, const char *profile,
				struct dda_creds *out, struct dda_error *err)
{
	char section[512], *conf = dda__aws_config_file(env);
	config_section(profile, section, sizeof(section));
	int rc = profile_keys(conf, section, "config-file", out, err);
	free(conf);
	return rc;
}

int dda__creds_from_profile(const struct dda_env *env, const char *profile, struct dda_creds *out,
			    struct dda_error *err)
{
	char section[512];
	char *cred = dda__aws_credentials_file(env), *conf = dda__aws_config_file(env);
	int rc = profile_keys(cred, profile, "shared-credentials-file", out, err);
	if (rc == 1) {
		config_section(profile, section, sizeof(section));
		rc = profile_keys(conf, section, "config-file", out, err);
	}
	free(cred);
	free(conf);
	return rc;
}

char *dda__aws_region(const struct dda_env *env, const char *profile, const char *flag)
{
	if (flag && *flag)
		return strdup(flag);
	const char *r = env_get(env, "AWS_REGION");
	if (!r)
		r = env_get(env, "AWS_DEFAULT_REGION");
	if (r)
		return strdup(r);
	char section[512], *conf = dda__aws_config_file(env);
	config_section(profile, section, sizeof(section));
	char *v = dda__ini_get(conf, section, "region");
	free(conf);
	return v;
}
