/* SSO profiles (IAM Identity Center): the access token `aws sso login`
 * cached under ~/.aws/sso/cache, then GetRoleCredentials on the SSO portal
 * for the profile's account and role. ddbaudit never logs in itself nor
 * renews the token: an expired one asks the user to log in again. */
#include "aws/core.h"
#include "aws/creds.h"
#include "aws/s3.h"
#include "util/log.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>

const char *const dda__provider_sso = "SSO (GetRoleCredentials)";

/* A cached token file or a portal answer is a few KiB. */
#define SSO_FILE_MAX ((size_t)1 << 20)

static void cleanse_member(json_t *o, const char *k)
{
	json_t *s = json_object_get(o, k);
	if (json_is_string(s))
		OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
}

int dda__sso_parse_token(const char *body, size_t n, int64_t now, char **token,
			 struct dda_error *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, &jerr);
	const char *t = json_string_value(json_object_get(j, "accessToken"));
	const char *e = json_string_value(json_object_get(j, "expiresAt"));
	int64_t exp = 0;
	int rc = 0;
	*token = NULL;
	if (!json_is_object(j) || !t || !*t || !e)
		rc = dda_error_set(err, DDA_EFORMAT,
				   "the cached SSO token has no accessToken and expiresAt");
	else if (dda_time_parse(e, strlen(e), &exp))
		rc = dda_error_set(err, DDA_EFORMAT, "the cached SSO token's expiresAt is unreadable");
	else if (exp <= now)
		rc = dda_error_set(err, DDA_EAUTH, "the cached SSO token expired at %s", e);
	else if (!(*token = strdup(t)))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (json_is_object(j)) {
		cleanse_member(j, "accessToken");
		cleanse_member(j, "refreshToken");
		cleanse_member(j, "clientSecret");
	}
	json_decref(j);
	return rc;
}

int dda__creds_parse_sso(const char *body, size_t n, struct dda_creds *out, struct dda_error *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, &jerr);
	json_t *rc_ = json_object_get(j, "roleCredentials");
	const char *ak = json_string_value(json_object_get(rc_, "accessKeyId"));
	const char *sk = json_string_value(json_object_get(rc_, "secretAccessKey"));
	const char *tok = json_string_value(json_object_get(rc_, "sessionToken"));
	json_t *exp = json_object_get(rc_, "expiration");
	int rc = 0;
	if (!json_is_object(rc_) || !ak || !*ak || !sk || !*sk)
		rc = dda_error_set(err, DDA_EFORMAT,
				   "SSO GetRoleCredentials answered without credentials");
	else if (exp && (!json_is_integer(exp) || json_integer_value(exp) < 0 ||
			 json_integer_value(exp) > INT64_MAX / 1000))
		rc = dda_error_set(err, DDA_EFORMAT,
				   "SSO GetRoleCredentials answered with an unreadable expiration");
	if (!rc)
		rc = dda__creds_fill(out, ak, sk, tok && *tok ? tok : NULL,
				     exp ? (int64_t)json_integer_value(exp) * 1000 : DDA_TIME_NONE,
				     dda__provider_sso, err);
	if (json_is_object(rc_)) {
		cleanse_member(rc_, "secretAccessKey");
		cleanse_member(rc_, "sessionToken");
	}
	json_decref(j);
	return rc;
}

/* The settings of an SSO profile, from the profile and its sso-session. */
struct sso {
	char *session, *start_url, *region, *account, *role;
};

static void sso_release(struct sso *s)
{
	free(s->session);
	free(s->start_url);
	free(s->region);
	free(s->account);
	free(s->role);
}

static char *cget(const struct dda_env *env, const char *profile, const char *key)
{
	return dda__aws_profile_get(env, profile, key, DDA_PROFILE_CONFIG);
}

/* 1 for "not an SSO profile", 0, or an error naming what is missing. */
static int load_settings(const struct dda_env *env, const char *profile, struct sso *s,
			 struct dda_error *err)
{
	memset(s, 0, sizeof(*s));
	s->session = cget(env, profile, "sso_session");
	s->account = cget(env, profile, "sso_account_id");
	s->role = cget(env, profile, "sso_role_name");
	if (s->session) {
		char section[512], *conf = dda__aws_config_file(env);
		snprintf(section, sizeof(section), "sso-session %s", s->session);
		s->start_url = dda__ini_get(conf, section, "sso_start_url");
		s->region = dda__ini_get(conf, section, "sso_region");
		bool found = dda__ini_has_section(conf, section);
		free(conf);
		if (!found)
			return dda_error_set(err, DDA_EAUTH,
					     "profile '%s' names sso_session '%s', which has no "
					     "[sso-session %s] section in the config file",
					     profile, s->session, s->session);
	} else {
		s->start_url = cget(env, profile, "sso_start_url");
		s->region = cget(env, profile, "sso_region");
	}
	if (!s->session && !s->start_url && !s->account && !s->role)
		return 1;
	const char *missing = !s->start_url ? "sso_start_url"
			      : !s->region  ? "sso_region"
			      : !s->account ? "sso_account_id"
			      : !s->role    ? "sso_role_name"
					    : NULL;
	if (missing)
		return dda_error_set(err, DDA_EAUTH, "SSO profile '%s' does not set %s", profile,
				     missing);
	return 0;
}

/* ~/.aws/sso/cache/<sha1 of key>.json */
static int cache_path(const struct dda_env *env, const char *key, struct dda_buf *path)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	const char *home = env->get(env->ctx, "HOME");
	if (!home || !*home || !EVP_Digest(key, strlen(key), md, &n, EVP_sha1(), NULL))
		return DDA_ENOTFOUND;
	dda__hex(md, n, hex);
	return dda_buf_addf(path, "%s/.aws/sso/cache/%s.json", home, hex);
}

static int read_token(const struct dda_env *env, const char *profile, const struct sso *s,
		      char **token, struct dda_error *err)
{
	struct dda_buf path, body;
	struct dda_error ferr = {0};
	dda_buf_init(&path, 8192);
	dda_buf_init(&body, SSO_FILE_MAX);
	int rc = cache_path(env, s->session ? s->session : s->start_url, &path);
	if (!rc)
		rc = dda__read_file(path.ptr, &body, &ferr);
	if (!rc)
		rc = dda__sso_parse_token(body.ptr, body.len, dda_time_now(), token, &ferr);
	if (rc && rc != DDA_ENOMEM)
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': no valid SSO token (%s): run `aws sso login "
				   "--profile %s`",
				   profile, ferr.code ? ferr.msg : "no home directory", profile);
	else if (rc)
		rc = dda_error_set(err, rc, "out of memory");
	dda__aws_wipe_buf(&body);
	dda_buf_release(&path);
	return rc;
}

static int get_role_credentials(const struct dda_env *env, const char *profile,
				const struct sso *s, const char *token, struct dda_creds *out,
				struct dda_error *err)
{
	struct dda_buf url, hdr;
	struct dda_http_response resp = {0};
	struct dda_http_opts o;
	struct dda_kv q[] = {{"account_id", s->account}, {"role_name", s->role}};
	const char *ep = dda__aws_endpoint_override(env, "SSO", NULL);
	dda_buf_init(&url, 8192);
	dda_buf_init(&hdr, 64 << 10);
	size_t el = ep ? strlen(ep) : 0;
	while (el && ep[el - 1] == '/')
		el--;
	int rc = ep ? dda_buf_addf(&url, "%.*s/federation/credentials?", (int)el, ep)
		    : dda_buf_addf(&url,
				   "https://portal.sso.%s.amazonaws.com/federation/credentials?",
				   s->region);
	if (!rc)
		rc = dda__sigv4_query(&url, q, DDA_ARRAY_SIZE(q));
	if (!rc && strpbrk(token, "\r\n"))
		rc = dda_error_set(err, DDA_EAUTH, "the cached SSO token has a line break");
	if (!rc)
		rc = dda_buf_addf(&hdr, "x-amz-sso_bearer_token: %s\n", token);
	dda__secret_add(token);
	dda__http_opts_default(&o);
	o.concurrency = 1;
	o.connect_timeout_ms = 5000;
	o.timeout_ms = 30000;
	o.stop = env->stop;
	if (!rc)
		rc = dda__aws_retry_opts(env, profile, &o, err);
	if (!rc) {
		struct dda_aws_fetch f = {"GET", url.ptr, hdr.ptr, {NULL, 0}, &o, SSO_FILE_MAX};
		rc = dda__aws_fetch(&f, &resp, err);
	}
	/* 401 is the token (UnauthorizedException); 403 the account or role
	 * (ForbiddenException), which logging in again does not mend. */
	if (!rc && resp.status == 401) {
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': the SSO portal refused the cached token (HTTP "
				   "401): run `aws sso login --profile %s`",
				   profile, profile);
	} else if (!rc && resp.status != 200) {
		char why[512];
		dda__s3_describe(&resp, why, sizeof(why));
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': SSO GetRoleCredentials for account %s role '%s' "
				   "failed: %s",
				   profile, s->account, s->role, why);
	} else if (!rc) {
		rc = dda__creds_parse_sso(resp.body.ptr, resp.body.len, out, err);
	}
	dda__aws_wipe_buf(&resp.body);
	dda__aws_wipe_buf(&hdr);
	dda_buf_release(&url);
	return rc;
}

int dda__creds_from_sso(const struct dda_env *env, const char *profile, struct dda_creds *out,
			struct dda_error *err)
{
	struct sso s;
	char *token = NULL;
	int rc = load_settings(env, profile, &s, err);
	if (!rc)
		rc = read_token(env, profile, &s, &token, err);
	if (!rc)
		rc = get_role_credentials(env, profile, &s, token, out, err);
	dda__wipe_free(token);
	sso_release(&s);
	return rc;
}
