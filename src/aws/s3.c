/* The S3 client: URLs (path-style for custom endpoints and dotted bucket
 * names, virtual-hosted for AWS), SigV4 headers made per attempt, and the
 * credential chain. */
#include "aws/s3.h"
#include "aws/s3_xml.h"

#include <ctype.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct dda_s3 {
	struct dda_http *http;
	char *scheme_host; /* "https://s3.us-east-1.amazonaws.com" or the endpoint */
	char *host;	   /* Host header for path-style requests */
	char *base_path;   /* endpoint path prefix, "" usually */
	bool custom;	   /* an endpoint was given: path-style always */
	char *region;
	char *profile;
	struct dda_env env;	   /* where the providers read their settings */
	struct dda_creds creds;
	struct dda_error cred_err; /* why renewing the credentials failed */
};

static const char *first_set(const struct dda_env *env, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = env->get(env->ctx, names[i]);
		if (v && *v)
			return v;
	}
	return NULL;
}

/* Splits "scheme://host[:port][/path]". */
static int parse_endpoint(struct dda_s3 *s, const char *url, struct dda_error *err)
{
	const char *p = strstr(url, "://");
	if (!p || p == url)
		return dda_error_set(err, DDA_EINVAL,
				     "invalid endpoint '%s' (expected http(s)://host[:port])", url);
	const char *host = p + 3, *slash = strchr(host, '/');
	size_t hlen = slash ? (size_t)(slash - host) : strlen(host);
	if (!hlen)
		return dda_error_set(err, DDA_EINVAL, "invalid endpoint '%s' (no host)", url);
	s->scheme_host = strndup(url, (size_t)(host - url) + hlen);
	s->host = strndup(host, hlen);
	s->base_path = strdup(slash ? slash : "");
	size_t bl = s->base_path ? strlen(s->base_path) : 0;
	while (bl && s->base_path[bl - 1] == '/')
		s->base_path[--bl] = '\0';
	return s->scheme_host && s->host && s->base_path ? 0 : DDA_ENOMEM;
}

static int find_creds(struct dda_s3 *s, const struct dda_aws_opts *o, const struct dda_env *env,
		      struct dda_error *err)
{
	s->env = *env;
	s->profile = strdup(dda_aws_profile(env, o->profile));
	if (!s->profile)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	return dda_creds_resolve(env, s->profile, s->region, &s->creds, err);
}

int dda_s3_new(struct dda_s3 **out, const struct dda_aws_opts *o, const struct dda_env *env,
	       struct dda_error *err)
{
	static const char *const endpoint_vars[] = {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"};
	struct dda_s3 *s = calloc(1, sizeof(*s));
	struct dda_http_opts ho;
	if (!s)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	const char *profile = dda_aws_profile(env, o->profile);
	s->region = dda_aws_region(env, profile, o->region);
	if (!s->region)
		s->region = strdup("us-east-1"); /* as the CLI's S3 commands default */
	const char *endpoint = o->endpoint_url && *o->endpoint_url
				   ? o->endpoint_url
				   : first_set(env, endpoint_vars, DDA_ARRAY_SIZE(endpoint_vars));
	int rc = s->region ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && endpoint) {
		s->custom = true;
		rc = parse_endpoint(s, endpoint, err);
	}
	if (!rc)
		rc = find_creds(s, o, env, err);
	dda_http_opts_default(&ho);
	if (o->concurrency > 0)
		ho.concurrency = o->concurrency;
	ho.no_verify_ssl = o->no_verify_ssl;
	ho.ca_bundle = o->ca_bundle && *o->ca_bundle ? o->ca_bundle : env->get(env->ctx, "AWS_CA_BUNDLE");
	if (!rc)
		rc = dda_http_new(&s->http, &ho, err);
	if (rc) {
		dda_s3_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void dda_s3_free(struct dda_s3 *s)
{
	if (!s)
		return;
	dda_http_free(s->http);
	free(s->scheme_host);
	free(s->host);
	free(s->base_path);
	free(s->region);
	free(s->profile);
	dda_creds_release(&s->creds);
	free(s);
}

struct dda_http *dda_s3_http(struct dda_s3 *s)
{
	return s->http;
}

const char *dda_s3_provider(const struct dda_s3 *s)
{
	return s->creds.provider ? s->creds.provider : "none";
}

static int prepare(void *ctx, const struct dda_http_request *r, struct dda_buf *hdrs)
{
	struct dda_s3_call *c = ctx;
	struct dda_s3 *s = c->s3;
	char date[17];
	int64_t now = dda_time_now();
	if (dda_creds_refresh(&s->env, s->profile, s->region, &s->creds, now, &s->cred_err))
		return DDA_EAUTH;
	dda_amz_date(now, date);
	struct dda_kv h[3] = {{"x-amz-content-sha256", EMPTY_SHA256}, {"x-amz-date", date}};
	size_t nh = 2;
	if (s->creds.session_token)
		h[nh++] = (struct dda_kv){"x-amz-security-token", s->creds.session_token};
	struct dda_sigv4_request sr = {r->method,    c->host,	c->path, c->query, h,	nh,
				       EMPTY_SHA256, s->region, "s3",	 date,	   true};
	int rc = dda_buf_addf(hdrs, "Host: %s\nx-amz-content-sha256: %s\nx-amz-date: %s\n", c->host,
			      EMPTY_SHA256, date);
	if (!rc && s->creds.session_token)
		rc = dda_buf_addf(hdrs, "x-amz-security-token: %s\n", s->creds.session_token);
	if (!rc)
		rc = dda_buf_adds(hdrs, "Authorization: ");
	if (!rc)
		rc = dda_sigv4_sign(&sr, s->creds.access_key, s->creds.secret_key, hdrs, NULL);
	if (!rc)
		rc = dda_buf_addc(hdrs, '\n');
	return rc;
}

static void call_done(void *ctx, struct dda_http_request *r, struct dda_http_response *resp)
{
	struct dda_s3_call *c = ctx;
	(void)r;
	if (!resp->status && resp->err == DDA_EAUTH && c->s3->cred_err.code)
		snprintf(resp->errmsg, sizeof(resp->errmsg), "%.255s", c->s3->cred_err.msg);
	c->done(c, resp);
}

static bool dns_bucket(const char *b)
{
	for (const char *p = b; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
			return false;
	return *b != '\0';
}

int dda_s3_submit(struct dda_s3_call *c, struct dda_s3 *s3, const char *method, const char *bucket,
		  const char *key, const struct dda_kv *q, size_t nq, size_t max_body,
		  dda_s3_done_fn done, void *ctx)
{
	struct dda_buf path, query, url, host;
	memset(c, 0, sizeof(*c));
	dda_buf_init(&path, 1 << 16);
	dda_buf_init(&query, 1 << 16);
	dda_buf_init(&url, 1 << 17);
	dda_buf_init(&host, 1024);
	bool vhost = !s3->custom && dns_bucket(bucket);
	int rc = 0;
	if (vhost) {
		rc = dda_buf_addf(&host, "%s.s3.%s.amazonaws.com", bucket, s3->region);
		if (!rc)
			rc = dda_buf_addc(&path, '/');
	} else {
		rc = s3->custom ? dda_buf_adds(&host, s3->host)
				: dda_buf_addf(&host, "s3.%s.amazonaws.com", s3->region);
		if (!rc)
			rc = dda_buf_addf(&path, "%s/", s3->custom ? s3->base_path : "");
		if (!rc)
			rc = dda_uri_encode(&path, bucket, strlen(bucket), false);
		if (!rc && key)
			rc = dda_buf_addc(&path, '/');
	}
	if (!rc && key)
		rc = dda_uri_encode(&path, key, strlen(key), true);
	if (!rc)
		rc = dda_sigv4_query(&query, q, nq);
	if (!rc)
		rc = dda_buf_addf(&url, "%s%s%s%s", s3->custom ? s3->scheme_host : "https://",
				  s3->custom ? "" : host.ptr, path.ptr, query.len ? "?" : "");
	if (!rc && query.len)
		rc = dda_buf_adds(&url, query.ptr);
	if (rc) {
		dda_buf_release(&path);
		dda_buf_release(&query);
		dda_buf_release(&url);
		dda_buf_release(&host);
		return rc;
	}
	c->s3 = s3;
	c->path = dda_buf_take(&path, NULL);
	c->query = query.ptr ? dda_buf_take(&query, NULL) : strdup("");
	c->url = dda_buf_take(&url, NULL);
	c->host = dda_buf_take(&host, NULL);
	c->done = done;
	c->ctx = ctx;
	c->http =
	    (struct dda_http_request){method, c->url, {NULL, 0}, max_body, prepare, call_done, c};
	if (!c->query)
		return DDA_ENOMEM;
	return dda_http_submit(s3->http, &c->http);
}

void dda_s3_call_release(struct dda_s3_call *c)
{
	free(c->url);
	free(c->host);
	free(c->path);
	free(c->query);
	c->url = c->host = c->path = c->query = NULL;
}

void dda_s3_describe(const struct dda_http_response *r, char *out, size_t cap)
{
	char code[64], msg[256];
	if (!r->status) {
		snprintf(out, cap, "%s", r->errmsg[0] ? r->errmsg : "no answer");
		return;
	}
	dda_s3_parse_error(r->body.ptr, r->body.len, code, sizeof(code), msg, sizeof(msg));
	snprintf(out, cap, "HTTP %ld%s%s%s%s", r->status, code[0] ? " " : "", code,
		 msg[0] ? ": " : "", msg);
}
