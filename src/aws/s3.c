/* The S3 client: URLs (path-style for custom endpoints and dotted bucket
 * names, virtual-hosted for AWS), SigV4 headers made per attempt, and the
 * credential chain. */
#include "aws/s3.h"
#include "aws/core.h"
#include "util/log.h"
#include "aws/s3_xml.h"

#include <ctype.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct dda_s3 {
	struct dda_http *http;
	struct dda_aws_endpoint ep; /* the endpoint given, when custom */
	bool custom;		    /* an endpoint was given: path-style always */
	char *region;
	char *profile_flag; /* --profile, or NULL: the environment's */
	struct dda_env env; /* where the providers read their settings */
	struct dda_creds creds;
	struct dda_error cred_err; /* why renewing the credentials failed */
	/* Buckets S3 said are elsewhere, for the rest of the run. A run reads
	 * one bucket; a few more slots cost nothing. */
	struct {
		char bucket[64];
		char region[32];
	} moved[8];
	int nmoved;
};

/* How many buckets' regions are remembered. */
#define MOVED_MAX 8

int dda__s3_new(struct dda_s3 **out, const struct dda_aws_opts *o, const struct dda_env *env,
		struct dda_error *err)
{
	struct dda_s3 *s = calloc(1, sizeof(*s));
	struct dda_http_opts ho;
	if (!s)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	const char *profile = dda__aws_profile(env, o->profile);
	s->env = *env;
	if (!s->env.stop)
		s->env.stop = o->stop;
	s->region = dda__aws_region(env, profile, o->region);
	if (!s->region)
		s->region = strdup("us-east-1"); /* as the CLI's S3 commands default */
	s->profile_flag = o->profile && *o->profile ? strdup(o->profile) : NULL;
	const char *endpoint = dda__aws_endpoint_override(env, "S3", o->endpoint_url);
	int rc = s->region && (s->profile_flag || !(o->profile && *o->profile))
		     ? 0
		     : dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && endpoint) {
		s->custom = true;
		rc = dda__aws_endpoint_parse(endpoint, "S3", &s->ep, err);
	}
	dda__http_opts_default(&ho);
	if (o->concurrency > 0)
		ho.concurrency = o->concurrency;
	ho.no_verify_ssl = o->no_verify_ssl;
	ho.stop = o->stop;
	/* A GET or a listing page ends within a minute plus its size at 64 KiB/s
	 * (about 5 minutes for a 16 MiB object), then is retried: a peer that
	 * trickles bytes cannot hold a cron run forever. */
	ho.min_bytes_per_second = 64 << 10;
	ho.ca_bundle = o->ca_bundle && *o->ca_bundle ? o->ca_bundle : env->get(env->ctx, "AWS_CA_BUNDLE");
	if (!rc)
		rc = dda__aws_retry_opts(env, profile, &ho, err);
	if (!rc)
		rc = dda__creds_resolve(&s->env, s->profile_flag, s->region, &s->creds, err);
	if (!rc)
		rc = dda__http_new(&s->http, &ho, err);
	if (rc) {
		dda__s3_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void dda__s3_free(struct dda_s3 *s)
{
	if (!s)
		return;
	dda__http_free(s->http);
	dda__aws_endpoint_release(&s->ep);
	free(s->region);
	free(s->profile_flag);
	dda__creds_release(&s->creds);
	free(s);
}

struct dda_http *dda__s3_http(struct dda_s3 *s)
{
	return s->http;
}

const char *dda__s3_provider(const struct dda_s3 *s)
{
	return s->creds.provider ? s->creds.provider : "none";
}

static int prepare(void *ctx, const struct dda_http_request *r, struct dda_buf *hdrs)
{
	struct dda_s3_call *c = ctx;
	struct dda_s3 *s = c->s3;
	int64_t now = dda_time_now();
	if (dda__creds_refresh(&s->env, s->profile_flag, s->region, &s->creds, now, &s->cred_err))
		return DDA_EAUTH;
	struct dda_aws_sign_req sr = {r->method,
				      c->host,
				      c->path,
				      c->query,
				      c->extra,
				      c->nextra,
				      c->payload_sha256[0] ? c->payload_sha256 : EMPTY_SHA256,
				      c->region,
				      "s3",
				      true,
				      now};
	int rc = dda__aws_sign(&sr, &s->creds, hdrs);
	for (size_t i = 0; !rc && i < c->nextra; i++)
		rc = dda_buf_addf(hdrs, "%s: %s\n", c->extra[i].name, c->extra[i].value);
	return rc;
}

const char *dda__s3_bucket_region(const struct dda_s3 *s, const char *bucket)
{
	for (int i = 0; i < s->nmoved; i++)
		if (!strcmp(s->moved[i].bucket, bucket))
			return s->moved[i].region;
	return s->region;
}

static void remember_region(struct dda_s3 *s, const char *bucket, const char *region)
{
	int i = 0;
	while (i < s->nmoved && strcmp(s->moved[i].bucket, bucket))
		i++;
	if (i == MOVED_MAX)
		i = MOVED_MAX - 1; /* the newest wins the last slot */
	else if (i == s->nmoved)
		s->nmoved++;
	snprintf(s->moved[i].bucket, sizeof(s->moved[i].bucket), "%s", bucket);
	snprintf(s->moved[i].region, sizeof(s->moved[i].region), "%s", region);
}

/* The region a wrong-region answer names, as botocore's redirector reads
 * it: x-amz-bucket-region, else the error's <Region>. */
static bool wrong_region(const struct dda_http_response *r, char *region, size_t cap)
{
	char code[64], msg[8];
	region[0] = '\0';
	if (r->status != 301 && r->status != 302 && r->status != 307 && r->status != 400)
		return false;
	dda__s3_parse_error(r->body.ptr, r->body.len, code, sizeof(code), msg, sizeof(msg));
	/* A 400 is a wrong region only when S3 says so (or, to a HEAD, which
	 * has no body, with the header alone). */
	if (r->status == 400 && strcmp(code, "AuthorizationHeaderMalformed") &&
	    (code[0] || !r->bucket_region[0]))
		return false;
	if (r->bucket_region[0])
		snprintf(region, cap, "%s", r->bucket_region);
	else if (r->body.ptr)
		dda__s3_parse_value(r->body.ptr, r->body.len, "Region", region, cap, NULL);
	return dda__aws_region_valid(region);
}

static int build(struct dda_s3_call *c);

static void call_done(void *ctx, struct dda_http_request *r, struct dda_http_response *resp)
{
	struct dda_s3_call *c = ctx;
	struct dda_s3 *s = c->s3;
	char region[32];
	(void)r;
	if (!resp->status && resp->err == DDA_EAUTH && s->cred_err.code)
		snprintf(resp->errmsg, sizeof(resp->errmsg), "%.255s", s->cred_err.msg);
	/* Once, and only to another region: a second wrong-region answer is
	 * the caller's to report. */
	if (!c->redirected && wrong_region(resp, region, sizeof(region)) &&
	    strcmp(region, c->region)) {
		remember_region(s, c->bucket, region);
		c->redirected = true;
		dda__log(dda__http_log(s->http), DDA_LOG_INFO,
			 "s3://%s is in %s, not %s (HTTP %ld): asking there, and signing for it "
			 "from now on",
			 c->bucket, region, c->region, resp->status);
		if (!build(c) && !dda__http_submit(s->http, &c->http))
			return;
	}
	c->done(c, resp);
}

static bool dns_bucket(const char *b)
{
	for (const char *p = b; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
			return false;
	return *b != '\0';
}

/* (Re)makes the call's URL, Host and path for its bucket's region. */
static int build(struct dda_s3_call *c)
{
	struct dda_s3 *s3 = c->s3;
	struct dda_buf path, url, host;
	dda_buf_init(&path, 1 << 16);
	dda_buf_init(&url, 1 << 17);
	dda_buf_init(&host, 1024);
	free(c->url);
	free(c->host);
	free(c->path);
	c->url = c->host = c->path = NULL;
	snprintf(c->region, sizeof(c->region), "%s", dda__s3_bucket_region(s3, c->bucket));
	bool vhost = !s3->custom && dns_bucket(c->bucket);
	int rc = 0;
	if (vhost) {
		rc = dda_buf_addf(&host, "%s.s3.%s.amazonaws.com", c->bucket, c->region);
		if (!rc)
			rc = dda_buf_addc(&path, '/');
	} else {
		rc = s3->custom ? dda_buf_adds(&host, s3->ep.host)
				: dda_buf_addf(&host, "s3.%s.amazonaws.com", c->region);
		if (!rc)
			rc = dda_buf_addf(&path, "%s/", s3->custom ? s3->ep.prefix : "");
		if (!rc)
			rc = dda__uri_encode(&path, c->bucket, strlen(c->bucket), false);
		if (!rc && c->key)
			rc = dda_buf_addc(&path, '/');
	}
	if (!rc && c->key)
		rc = dda__uri_encode(&path, c->key, strlen(c->key), true);
	if (!rc)
		rc = dda_buf_addf(&url, "%s%s%s%s", s3->custom ? s3->ep.scheme_host : "https://",
				  s3->custom ? "" : host.ptr, path.ptr, c->query[0] ? "?" : "");
	if (!rc && c->query[0])
		rc = dda_buf_adds(&url, c->query);
	if (rc) {
		dda_buf_release(&path);
		dda_buf_release(&url);
		dda_buf_release(&host);
		return rc;
	}
	c->path = dda_buf_take(&path, NULL);
	c->url = dda_buf_take(&url, NULL);
	c->host = dda_buf_take(&host, NULL);
	c->http.url = c->url;
	return 0;
}

int dda__s3_submit(struct dda_s3_call *c, struct dda_s3 *s3, const char *method, const char *bucket,
		   const char *key, const struct dda_kv *q, size_t nq, size_t max_body,
		   dda_s3_done_fn done, void *ctx)
{
	struct dda_buf query;
	memset(c, 0, sizeof(*c));
	dda_buf_init(&query, 1 << 16);
	int rc = dda__sigv4_query(&query, q, nq);
	c->s3 = s3;
	c->query = query.ptr ? dda_buf_take(&query, NULL) : strdup("");
	c->bucket = strdup(bucket);
	c->key = key ? strdup(key) : NULL;
	c->done = done;
	c->ctx = ctx;
	c->http = (struct dda_http_request){method, NULL, {NULL, 0}, max_body, prepare, call_done, c};
	if (!rc && (!c->query || !c->bucket || (key && !c->key)))
		rc = DDA_ENOMEM;
	if (!rc)
		rc = build(c);
	if (rc) {
		dda_buf_release(&query);
		dda__s3_call_release(c);
		return rc;
	}
	return dda__http_submit(s3->http, &c->http);
}

int dda__s3_submit_body(struct dda_s3_call *c, struct dda_s3 *s3, const char *method,
			const char *bucket, const char *key, const struct dda_kv *extra,
			size_t nextra, dda_slice body, size_t max_body, dda_s3_done_fn done,
			void *ctx)
{
	uint8_t d[DDA_SHA256_LEN];
	char hex[2 * DDA_SHA256_LEN + 1];
	dda__sha256(body.ptr ? body.ptr : "", body.len, d);
	dda__hex(d, sizeof(d), hex);
	/* Queued at once: the body and headers go in before the engine runs,
	 * which happens only after this returns. */
	int rc = dda__s3_submit(c, s3, method, bucket, key, NULL, 0, max_body, done, ctx);
	if (rc)
		return rc;
	c->extra = extra;
	c->nextra = nextra;
	memcpy(c->payload_sha256, hex, sizeof(hex));
	c->http.body = body;
	return 0;
}

void dda__s3_call_release(struct dda_s3_call *c)
{
	free(c->url);
	free(c->host);
	free(c->path);
	free(c->query);
	free(c->bucket);
	free(c->key);
	c->url = c->host = c->path = c->query = c->bucket = c->key = NULL;
}

void dda__s3_describe(const struct dda_http_response *r, char *out, size_t cap)
{
	char code[64], msg[256];
	/* A transfer that failed after its status line (a body cut short) is
	 * told by its error, not by the status it began with. */
	if (!r->status || (r->err && r->errmsg[0])) {
		snprintf(out, cap, "%s", r->errmsg[0] ? r->errmsg : "no answer");
		dda__redact(out, cap);
		return;
	}
	dda__s3_parse_error(r->body.ptr, r->body.len, code, sizeof(code), msg, sizeof(msg));
	/* A peer's words may echo the request's secrets: redacted before the
	 * message is cut to size in out, and again after. */
	dda__redact(code, sizeof(code));
	dda__redact(msg, sizeof(msg));
	snprintf(out, cap, "HTTP %ld%s%s%s%s%s%s%s", r->status, code[0] ? " " : "", code,
		 msg[0] ? ": " : "", msg, r->bucket_region[0] ? " (the bucket is in " : "",
		 r->bucket_region, r->bucket_region[0] ? ")" : "");
	dda__redact(out, cap);
}
