/* The credential chain in botocore's order, and the assume-role provider:
 * a profile's role_arn assumed with STS AssumeRole from its source_profile
 * (itself resolved the same way, hop by hop) or its credential_source. */
#include "aws/core.h"
#include "aws/creds.h"
#include "aws/s3.h"
#include "aws/sts.h"

#include <stdlib.h>

const char *const dda__provider_assume_role = "assume role (STS AssumeRole)";

struct chain {
	const struct dda_env *env;
	const char *region;
	char *visited[DDA_CREDS_MAX_HOPS];
	int nvisited;
};

static void chain_release(struct chain *ch)
{
	for (int i = 0; i < ch->nvisited; i++)
		free(ch->visited[i]);
}

static char *pget(const struct chain *ch, const char *profile, const char *key)
{
	return dda__aws_profile_get(ch->env, profile, key, DDA_PROFILE_ANY);
}

static bool has_key(const struct chain *ch, const char *profile, const char *key)
{
	char *v = pget(ch, profile, key);
	bool set = v != NULL;
	dda__wipe_free(v);
	return set;
}

static bool has_static(const struct chain *ch, const char *profile)
{
	return has_key(ch, profile, "aws_access_key_id") ||
	       has_key(ch, profile, "aws_secret_access_key");
}

/* role_arn without web_identity_token_file (that pair is web identity). */
static bool has_role(const struct chain *ch, const char *profile)
{
	return has_key(ch, profile, "role_arn") && !has_key(ch, profile, "web_identity_token_file");
}

/* botocore's profile providers: web identity, SSO, the credentials file,
 * credential_process, the config file. */
static int profile_providers(const struct dda_env *env, const char *profile, const char *region,
			     bool use_env, struct dda_creds *out, struct dda_error *err)
{
	int rc = dda__creds_web_identity(env, profile, region, use_env, out, err);
	if (rc == 1)
		rc = dda__creds_from_sso(env, profile, out, err);
	if (rc == 1)
		rc = dda__creds_from_credentials_file(env, profile, out, err);
	if (rc == 1)
		rc = dda__creds_from_process(env, profile, out, err);
	if (rc == 1)
		rc = dda__creds_from_config_file(env, profile, out, err);
	return rc;
}

/* ---- STS AssumeRole ---- */

struct role {
	const char *profile;
	char *arn, *session, *external_id, *duration;
};

static int sts_assume(const struct chain *ch, const struct role *r, const struct dda_creds *src,
		      struct dda_creds *out, struct dda_error *err)
{
	struct dda_http_response resp = {0};
	struct dda_http_opts o;
	char session[64];
	const char *region = ch->region ? ch->region : "us-east-1";
	snprintf(session, sizeof(session), "botocore-session-%lld",
		 (long long)(dda_time_now() / DDA_USEC_PER_SEC));
	struct dda_kv q[6] = {{"Action", "AssumeRole"},
			      {"RoleArn", r->arn},
			      {"RoleSessionName", r->session ? r->session : session},
			      {"Version", "2011-06-15"}};
	size_t nq = 4;
	if (r->external_id)
		q[nq++] = (struct dda_kv){"ExternalId", r->external_id};
	if (r->duration)
		q[nq++] = (struct dda_kv){"DurationSeconds", r->duration};
	dda__http_opts_default(&o);
	o.concurrency = 1;
	o.connect_timeout_ms = 5000;
	o.timeout_ms = 30000;
	o.stop = ch->env->stop;
	int rc = dda__aws_retry_opts(ch->env, r->profile, &o, err);
	if (!rc) {
		struct dda_sts_call c = {ch->env, NULL, region, src, q, nq, &o};
		rc = dda__sts_post(&c, &resp, err);
	}
	if (!rc && resp.status != 200) {
		char why[512];
		dda__s3_describe(&resp, why, sizeof(why));
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': STS AssumeRole of '%s' failed: %s", r->profile,
				   r->arn, why);
	} else if (!rc) {
		rc = dda__creds_parse_sts(resp.body.ptr, resp.body.len, dda__provider_assume_role,
					  out, err);
	}
	if (rc && !err->code)
		dda_error_set(err, rc, "profile '%s': cannot call STS AssumeRole: %s", r->profile,
			      dda_strerror(rc));
	dda__aws_wipe_buf(&resp.body);
	return rc;
}

/* ---- the assume-role provider ---- */

static int assume(struct chain *ch, const char *profile, struct dda_creds *out,
		  struct dda_error *err);

/* The credentials a credential_source names. */
static int from_source(struct chain *ch, const char *profile, const char *source,
		       struct dda_creds *out, struct dda_error *err)
{
	int rc;
	if (!strcmp(source, "Environment"))
		rc = dda__creds_from_env(ch->env, out, err);
	else if (!strcmp(source, "Ec2InstanceMetadata"))
		rc = dda__creds_from_imds(ch->env, profile, out, err);
	else if (!strcmp(source, "EcsContainer"))
		rc = dda__creds_from_container(ch->env, out, err);
	else
		return dda_error_set(err, DDA_EAUTH,
				     "profile '%s': credential_source '%s' is not supported (use "
				     "Environment, Ec2InstanceMetadata or EcsContainer)",
				     profile, source);
	if (rc == 1)
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': no credentials found in credential_source '%s'",
				   profile, source);
	return rc;
}

static bool visited(const struct chain *ch, const char *profile)
{
	for (int i = 0; i < ch->nvisited; i++)
		if (!strcmp(ch->visited[i], profile))
			return true;
	return false;
}

/* The credentials a source_profile gives, as botocore resolves them: its
 * own keys (or other non-role providers) before its own role_arn. */
static int from_source_profile(struct chain *ch, const char *profile, const char *src,
			       struct dda_creds *out, struct dda_error *err)
{
	if (!dda__aws_profile_exists(ch->env, src))
		return dda_error_set(err, DDA_EAUTH,
				     "the source_profile '%s' named in profile '%s' does not exist",
				     src, profile);
	bool stat = has_static(ch, src);
	if (visited(ch, src) && (strcmp(src, profile) || !stat))
		return dda_error_set(err, DDA_EAUTH,
				     "profile '%s': source_profile '%s' makes a loop of role "
				     "profiles",
				     profile, src);
	if (!stat && has_role(ch, src))
		return assume(ch, src, out, err);
	int rc = profile_providers(ch->env, src, ch->region, false, out, err);
	if (rc == 1)
		rc = dda_error_set(err, DDA_EAUTH,
				   "the source_profile '%s' named in profile '%s' has no credentials",
				   src, profile);
	return rc;
}

static int check_duration(const char *profile, const char *d, struct dda_error *err)
{
	char *end;
	long v = d ? strtol(d, &end, 10) : 0;
	if (d && (end == d || *end || v < 900 || v > 43200))
		return dda_error_set(err, DDA_EAUTH,
				     "profile '%s': duration_seconds must be a whole number of "
				     "seconds from 900 to 43200, not '%s'",
				     profile, d);
	return 0;
}

static int assume(struct chain *ch, const char *profile, struct dda_creds *out,
		  struct dda_error *err)
{
	struct role r = {profile, pget(ch, profile, "role_arn"), pget(ch, profile, "role_session_name"),
			 pget(ch, profile, "external_id"), pget(ch, profile, "duration_seconds")};
	char *src = pget(ch, profile, "source_profile");
	char *cs = pget(ch, profile, "credential_source");
	char *mfa = pget(ch, profile, "mfa_serial");
	struct dda_creds base = {0};
	int rc = 0;
	if (ch->nvisited >= DDA_CREDS_MAX_HOPS)
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': more than %d role profiles in a chain", profile,
				   DDA_CREDS_MAX_HOPS);
	else if (mfa)
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s' sets mfa_serial: ddbaudit cannot ask for an MFA "
				   "code (it never prompts); use credentials that need none, e.g. "
				   "from `aws sts get-session-token` or a credential_process",
				   profile);
	else if (src && cs)
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s' sets both source_profile and credential_source",
				   profile);
	else if (!src && !cs)
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s' sets role_arn but neither source_profile nor "
				   "credential_source",
				   profile);
	if (!rc)
		rc = check_duration(profile, r.duration, err);
	if (!rc) {
		ch->visited[ch->nvisited] = strdup(profile);
		rc = ch->visited[ch->nvisited++] ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	if (!rc)
		rc = cs ? from_source(ch, profile, cs, &base, err)
			: from_source_profile(ch, profile, src, &base, err);
	if (!rc)
		rc = sts_assume(ch, &r, &base, out, err);
	dda__creds_release(&base);
	free(r.arn);
	free(r.session);
	free(r.external_id);
	free(r.duration);
	free(src);
	free(cs);
	free(mfa);
	return rc;
}

int dda__creds_assume_role(const struct dda_env *env, const char *profile, const char *region,
			   struct dda_creds *out, struct dda_error *err)
{
	struct chain ch = {env, region, {0}, 0};
	if (!has_role(&ch, profile))
		return 1;
	int rc = assume(&ch, profile, out, err);
	chain_release(&ch);
	return rc;
}

/* ---- the chain ---- */

int dda__creds_resolve(const struct dda_env *env, const char *profile_flag, const char *region,
		       struct dda_creds *out, struct dda_error *err)
{
	bool named = profile_flag && *profile_flag;
	const char *profile = dda__aws_profile(env, profile_flag);
	memset(out, 0, sizeof(*out));
	/* An explicit profile outranks keys in the environment (the CLI's
	 * rule); a profile that exists nowhere is an error, as there. */
	int rc = named ? 1 : dda__creds_from_env(env, out, err);
	if (rc == 1 && strcmp(profile, "default") && !dda__aws_profile_exists(env, profile))
		return dda_error_set(err, DDA_EAUTH,
				     "the profile '%s' is in neither the config nor the "
				     "credentials file",
				     profile);
	if (rc == 1)
		rc = dda__creds_assume_role(env, profile, region, out, err);
	if (rc == 1)
		rc = profile_providers(env, profile, region, true, out, err);
	if (rc == 1)
		rc = dda__creds_from_container(env, out, err);
	if (rc == 1)
		rc = dda__creds_from_imds(env, profile, out, err);
	if (rc == 1)
		rc = dda_error_set(err, DDA_EAUTH,
				   "no AWS credentials found (tried %sprofile '%s' (role_arn, web "
				   "identity, SSO, the shared credentials file, credential_process, "
				   "the config file), the container credentials endpoint and EC2 "
				   "instance metadata)",
				   named ? "" : "the environment, ", profile);
	if (!rc)
		dda__creds_register(out);
	return rc;
}

int dda__creds_refresh(const struct dda_env *env, const char *profile_flag, const char *region,
		       struct dda_creds *c, int64_t now, struct dda_error *err)
{
	if (c->expiration == DDA_TIME_NONE || now < c->expiration - DDA_CREDS_REFRESH_BEFORE)
		return 0;
	const char *profile = dda__aws_profile(env, profile_flag);
	struct dda_creds fresh;
	struct dda_error ferr = {0};
	int rc = c->provider == dda__provider_web_identity
		     ? dda__creds_from_web_identity(env, profile, region, &fresh, &ferr)
		 : c->provider == dda__provider_container
		     ? dda__creds_from_container(env, &fresh, &ferr)
		 : c->provider == dda__provider_imds || c->provider == dda__provider_imds_v1
		     ? dda__creds_from_imds(env, profile, &fresh, &ferr)
		     : dda__creds_resolve(env, profile_flag, region, &fresh, &ferr);
	if (rc == 0) {
		dda__creds_register(&fresh);
		dda__creds_release(c);
		*c = fresh;
		return 0;
	}
	if (rc == 1)
		dda_error_set(&ferr, DDA_EAUTH, "the provider is no longer configured");
	if (now < c->expiration)
		return 0; /* still valid: try again at the next request */
	return dda_error_set(err, DDA_EAUTH,
			     "credentials from %s expired and could not be renewed: %s",
			     c->provider, ferr.msg);
}
