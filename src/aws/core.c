/* The AWS client core (see core.h): what every service client shares. */
#include "aws/core.h"
#include "util/log.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdlib.h>

int dda__aws_endpoint_parse(const char *url, const char *what, struct dda_aws_endpoint *out,
			    struct dda_error *err)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return dda_error_set(err, DDA_EINVAL,
				     "invalid %s endpoint '%s' (expected http(s)://host[:port])",
				     what, url);
	const char *host = strstr(url, "://") + 3, *slash = strchr(host, '/');
	size_t hlen = slash ? (size_t)(slash - host) : strlen(host);
	if (!hlen)
		return dda_error_set(err, DDA_EINVAL, "invalid %s endpoint '%s' (no host)", what,
				     url);
	out->scheme_host = strndup(url, (size_t)(host - url) + hlen);
	out->host = strndup(host, hlen);
	out->prefix = strdup(slash ? slash : "");
	if (!out->scheme_host || !out->host || !out->prefix) {
		dda__aws_endpoint_release(out);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	size_t pl = strlen(out->prefix);
	while (pl && out->prefix[pl - 1] == '/')
		out->prefix[--pl] = '\0';
	return 0;
}

void dda__aws_endpoint_release(struct dda_aws_endpoint *e)
{
	free(e->scheme_host);
	free(e->host);
	free(e->prefix);
	memset(e, 0, sizeof(*e));
}

static const char *env_get(const struct dda_env *env, const char *name)
{
	const char *v = env->get(env->ctx, name);
	return v && *v ? v : NULL;
}

const char *dda__aws_endpoint_override(const struct dda_env *env, const char *env_id,
				       const char *explicit_url)
{
	char var[64];
	if (explicit_url && *explicit_url)
		return explicit_url;
	snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", env_id);
	const char *v = env_get(env, var);
	return v ? v : env_get(env, "AWS_ENDPOINT_URL");
}

int dda__aws_sign(const struct dda_aws_sign_req *r, const struct dda_creds *c,
		  struct dda_buf *headers)
{
	char date[17];
	struct dda_kv h[20];
	size_t nh = 0;
	if (r->nextra > DDA_ARRAY_SIZE(h) - 3)
		return DDA_EINVAL;
	if (!c->access_key || !c->secret_key)
		return DDA_EAUTH;
	/* Whatever is signed with may come back in an answer: from now on no
	 * message shows it. */
	dda__creds_register(c);
	dda__amz_date(r->now, date);
	for (size_t i = 0; i < r->nextra; i++)
		h[nh++] = r->extra[i];
	if (r->s3)
		h[nh++] = (struct dda_kv){"x-amz-content-sha256", r->payload_sha256};
	h[nh++] = (struct dda_kv){"x-amz-date", date};
	if (c->session_token)
		h[nh++] = (struct dda_kv){"x-amz-security-token", c->session_token};
	struct dda_sigv4_request sr = {r->method,     r->host,	 r->path,    r->query ? r->query : "",
				       h,	      nh,	 r->payload_sha256, r->region,
				       r->service,    date,	 r->s3};
	int rc = dda_buf_addf(headers, "Host: %s\n", r->host);
	if (!rc && r->s3)
		rc = dda_buf_addf(headers, "x-amz-content-sha256: %s\n", r->payload_sha256);
	if (!rc)
		rc = dda_buf_addf(headers, "X-Amz-Date: %s\n", date);
	if (!rc && c->session_token)
		rc = dda_buf_addf(headers, "X-Amz-Security-Token: %s\n", c->session_token);
	if (!rc)
		rc = dda_buf_adds(headers, "Authorization: ");
	if (!rc)
		rc = dda__sigv4_sign(&sr, c->access_key, c->secret_key, headers, NULL);
	if (!rc)
		rc = dda_buf_addc(headers, '\n');
	return rc;
}

/* ---- retries ---- */

static char *setting(const struct dda_env *env, const char *profile, const char *var,
		     const char *key)
{
	const char *v = env_get(env, var);
	if (v)
		return strdup(v);
	return profile ? dda__aws_profile_get(env, profile, key, DDA_PROFILE_CONFIG) : NULL;
}

int dda__aws_retry_opts(const struct dda_env *env, const char *profile, struct dda_http_opts *o,
			struct dda_error *err)
{
	char *mode = setting(env, profile, "AWS_RETRY_MODE", "retry_mode");
	char *attempts = setting(env, profile, "AWS_MAX_ATTEMPTS", "max_attempts");
	int rc = 0;
	if (mode) {
		bool legacy = !strcmp(mode, "legacy");
		if (!legacy && strcmp(mode, "standard") && strcmp(mode, "adaptive")) {
			rc = dda_error_set(err, DDA_EINVAL,
					   "unknown retry mode '%s' (AWS_RETRY_MODE or retry_mode: "
					   "legacy, standard or adaptive)",
					   mode);
			goto out;
		}
		o->max_attempts = legacy ? 5 : 3;
		o->backoff_base = DDA_USEC_PER_SEC;
		o->backoff_cap = 20 * DDA_USEC_PER_SEC;
	}
	if (attempts) {
		char *end;
		long n = strtol(attempts, &end, 10);
		if (end == attempts || *end || n < 1 || n > DDA_AWS_MAX_ATTEMPTS_LIMIT) {
			rc = dda_error_set(err, DDA_EINVAL,
					   "AWS_MAX_ATTEMPTS or max_attempts must be a whole number "
					   "from 1 to %d, not '%s'",
					   DDA_AWS_MAX_ATTEMPTS_LIMIT, attempts);
			goto out;
		}
		o->max_attempts = (int)n;
	}
out:
	free(mode);
	free(attempts);
	return rc;
}

/* ---- regions of ARNs and queue URLs ---- */

bool dda__aws_region_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 31)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool region_like(const char *s, size_t n)
{
	/* "us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1" */
	if (n < 6 || n > 32 || !isdigit((unsigned char)s[n - 1]) || s[n - 2] != '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return islower((unsigned char)s[0]);
}

static bool put_region(const char *s, size_t n, char *out, size_t cap)
{
	if (!region_like(s, n) || n >= cap)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

bool dda__aws_region_of(const char *s, char *out, size_t cap)
{
	if (cap)
		out[0] = '\0';
	if (!s || !cap)
		return false;
	if (!strncmp(s, "arn:", 4)) {
		/* arn:PARTITION:SERVICE:REGION:ACCOUNT:... */
		const char *p = s + 4;
		for (int field = 0; field < 2; field++) {
			p = strchr(p, ':');
			if (!p)
				return false;
			p++;
		}
		return put_region(p, strcspn(p, ":"), out, cap);
	}
	const char *h = strstr(s, "://");
	if (!h)
		return false;
	h += 3;
	size_t hl = strcspn(h, "/:");
	/* sqs.REGION.amazonaws.com[.cn] or REGION.queue.amazonaws.com */
	if (!strncmp(h, "sqs.", 4)) {
		/* Only AWS's own host: sqs.localhost.localstack.cloud names none. */
		const char *r = h + 4;
		size_t rl = strcspn(r, ".");
		const char *rest = r + rl + 1;
		if (r + rl < h + hl && (size_t)(h + hl - rest) >= 13 &&
		    !strncmp(rest, "amazonaws.com", 13))
			return put_region(r, rl, out, cap);
	}
	const char *q = strstr(h, ".queue.amazonaws.com");
	if (q && q < h + hl)
		return put_region(h, (size_t)(q - h), out, cap);
	return false;
}

/* ---- one synchronous request ---- */

struct one {
	const char *headers;
	struct dda_http_response *resp;
	bool done;
};

static int one_prepare(void *ctx, const struct dda_http_request *r, struct dda_buf *hdrs)
{
	struct one *c = ctx;
	(void)r;
	return c->headers ? dda_buf_adds(hdrs, c->headers) : 0;
}

static void one_done(void *ctx, struct dda_http_request *r, struct dda_http_response *resp)
{
	struct one *c = ctx;
	(void)r;
	*c->resp = *resp;
	dda_buf_init(&resp->body, 0); /* the body is the caller's now */
	c->done = true;
}

int dda__aws_fetch(const struct dda_aws_fetch *f, struct dda_http_response *resp,
		   struct dda_error *err)
{
	struct dda_http *h;
	struct one c = {f->headers, resp, false};
	struct dda_http_request req = {f->method,    f->url,	 f->body, f->max_body,
				       one_prepare, one_done, &c};
	memset(resp, 0, sizeof(*resp));
	int rc = dda__http_new(&h, f->opts, err);
	if (rc)
		return rc;
	rc = dda__http_submit(h, &req);
	if (!rc)
		rc = dda__http_run(h, f->opts->stop, err);
	dda__http_free(h);
	if (!rc && !c.done)
		rc = dda_error_set(err, DDA_EINTERNAL, "a request to '%s' never finished", f->url);
	return rc;
}

void dda__aws_wipe_buf(struct dda_buf *b)
{
	if (b->ptr)
		OPENSSL_cleanse(b->ptr, b->len);
	dda_buf_release(b);
}
