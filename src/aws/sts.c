/* STS calls (see sts.h): the query protocol's signed POST, and
 * GetCallerIdentity for the reports' run metadata. */
#include "aws/sts.h"
#include "aws/s3.h"
#include "aws/s3_xml.h"

#include <stdlib.h>

int dda__sts_post(const struct dda_sts_call *c, struct dda_http_response *resp,
		  struct dda_error *err)
{
	static const char ctype[] = "application/x-www-form-urlencoded; charset=utf-8";
	struct dda_buf url, body, hdrs;
	struct dda_aws_endpoint ep = {0};
	uint8_t digest[32];
	char hash[65], path[2048];
	dda_buf_init(&url, 8192);
	dda_buf_init(&body, 64 << 10);
	dda_buf_init(&hdrs, 64 << 10);
	memset(resp, 0, sizeof(*resp));
	int rc = c->url ? dda_buf_adds(&url, c->url) : dda__sts_url(c->env, c->region, &url);
	if (!rc)
		rc = dda__aws_endpoint_parse(url.ptr, "STS", &ep, err);
	if (!rc)
		rc = dda__sigv4_query(&body, c->params, c->nparams);
	if (!rc) {
		struct dda_kv extra = {"content-type", ctype};
		dda__sha256(body.ptr, body.len, digest);
		dda__hex(digest, 32, hash);
		snprintf(path, sizeof(path), "%s/", ep.prefix);
		struct dda_aws_sign_req sr = {"POST", ep.host,	 path,	"",    &extra,	      1,
					      hash,   c->region, "sts", false, dda_time_now()};
		rc = dda_buf_addf(&hdrs, "Content-Type: %s\n", ctype);
		if (!rc)
			rc = dda__aws_sign(&sr, c->creds, &hdrs);
	}
	if (!rc) {
		struct dda_aws_fetch f = {"POST",   url.ptr,
					  hdrs.ptr, (dda_slice){body.ptr, body.len},
					  c->opts,  DDA_STS_ANSWER_MAX};
		rc = dda__aws_fetch(&f, resp, err);
	}
	if (rc && !err->code)
		dda_error_set(err, rc, "cannot call STS: %s", dda_strerror(rc));
	dda__aws_wipe_buf(&hdrs);
	dda__aws_wipe_buf(&body);
	dda_buf_release(&url);
	dda__aws_endpoint_release(&ep);
	return rc;
}

/* ---- GetCallerIdentity ---- */

static bool all_digits(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int dda__sts_parse_identity(const char *xml, size_t n, struct dda_sts_identity *out,
			    struct dda_error *err)
{
	struct dda_error perr = {0};
	memset(out, 0, sizeof(*out));
	int rc = dda__s3_parse_value(xml, n, "Account", out->account, sizeof(out->account), &perr);
	if (!rc)
		rc = dda__s3_parse_value(xml, n, "Arn", out->arn, sizeof(out->arn), &perr);
	if (!rc)
		rc = dda__s3_parse_value(xml, n, "UserId", out->user_id, sizeof(out->user_id),
					 &perr);
	if (rc) {
		memset(out, 0, sizeof(*out));
		return dda_error_set(err, DDA_EFORMAT,
				     "unreadable STS GetCallerIdentity answer: %s", perr.msg);
	}
	/* snprintf into a full buffer cuts: a value that fills it may be cut. */
	if (!all_digits(out->account, 12) || strncmp(out->arn, "arn:", 4) ||
	    strlen(out->arn) + 1 >= sizeof(out->arn) ||
	    strlen(out->user_id) + 1 >= sizeof(out->user_id) || !printable(out->arn) ||
	    !printable(out->user_id)) {
		memset(out, 0, sizeof(*out));
		return dda_error_set(err, DDA_EFORMAT,
				     "STS GetCallerIdentity answered without a valid Account, Arn "
				     "and UserId");
	}
	return 0;
}

/* Credentials found without the network: the environment (unless a
 * profile was named), then the profile's static keys. */
static int local_creds(const struct dda_env *env, const char *profile_flag, struct dda_creds *out,
		       struct dda_error *err)
{
	const char *profile = dda__aws_profile(env, profile_flag);
	int rc = 1;
	if (!profile_flag || !*profile_flag)
		rc = dda__creds_from_env(env, out, err);
	if (rc == 1)
		rc = dda__creds_from_credentials_file(env, profile, out, err);
	if (rc == 1)
		rc = dda__creds_from_config_file(env, profile, out, err);
	return rc;
}

static void identity_opts(const struct dda_aws_opts *o, struct dda_http_opts *h)
{
	dda__http_opts_default(h);
	h->concurrency = 1;
	h->max_attempts = 1;
	h->connect_timeout_ms = DDA_STS_IDENTITY_CONNECT_MS;
	h->timeout_ms = DDA_STS_IDENTITY_TIMEOUT_MS;
	h->no_verify_ssl = o->no_verify_ssl;
	h->ca_bundle = o->ca_bundle && *o->ca_bundle ? o->ca_bundle : NULL;
	h->stop = o->stop;
}

static int ask(const struct dda_aws_opts *o, const struct dda_env *env, const char *region,
	       const struct dda_creds *creds, struct dda_sts_identity *out, struct dda_error *err)
{
	static const struct dda_kv q[] = {{"Action", "GetCallerIdentity"},
					  {"Version", "2011-06-15"}};
	struct dda_http_opts h;
	struct dda_http_response resp;
	char why[512];
	const char *url = dda__aws_endpoint_override(env, "STS", NULL);
	if (!url && o->endpoint_url && *o->endpoint_url)
		url = o->endpoint_url;
	identity_opts(o, &h);
	struct dda_sts_call c = {env, url, region, creds, q, DDA_ARRAY_SIZE(q), &h};
	int rc = dda__sts_post(&c, &resp, err);
	if (rc == DDA_EINTR) {
		dda_error_clear(err);
		dda_error_set(err, rc, "interrupted while asking STS GetCallerIdentity");
	}
	if (!rc && resp.status != 200) {
		dda__s3_describe(&resp, why, sizeof(why));
		rc = dda_error_set(err, resp.status ? DDA_EAUTH : DDA_EIO,
				   "STS GetCallerIdentity failed: %s", why);
	} else if (!rc) {
		rc = dda__sts_parse_identity(resp.body.ptr, resp.body.len, out, err);
	}
	dda_buf_release(&resp.body);
	return rc;
}

int dda__sts_caller_identity(const struct dda_aws_opts *o, bool local, struct dda_sts_identity *out,
			     struct dda_error *err)
{
	struct dda_env env = {dda__process_env, NULL, o->stop};
	struct dda_creds creds = {0};
	memset(out, 0, sizeof(*out));
	if (o->stop && *o->stop)
		return dda_error_set(err, DDA_EINTR, "interrupted before STS was asked");
	const char *profile = dda__aws_profile(&env, o->profile);
	char *region = dda__aws_region(&env, profile, o->region);
	const char *r = region && dda__aws_region_valid(region) ? region : "us-east-1";
	int rc = local ? local_creds(&env, o->profile, &creds, err)
		       : dda__creds_resolve(&env, o->profile, r, &creds, err);
	if (!rc)
		rc = ask(o, &env, r, &creds, out, err);
	else if (rc < 0) {
		char why[sizeof(err->msg)];
		snprintf(why, sizeof(why), "%s", err->msg);
		dda_error_clear(err);
		dda_error_set(err, rc, "no credentials to ask STS with: %s", why);
	}
	dda__creds_release(&creds);
	free(region);
	return rc;
}
