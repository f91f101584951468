/* The AWS client core shared by every service client (S3, STS, SSO, Lambda,
 * SQS): endpoint resolution, SigV4 header signing from a credential set,
 * the retry settings the SDKs read (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE) and a
 * synchronous one-request helper for the small calls (STS, SSO, metadata).
 * A service client is a small file on top of these. */
#ifndef DDA_AWS_CORE_H
#define DDA_AWS_CORE_H

#include "aws/creds.h"
#include "aws/sigv4.h"
#include "net/http.h"

/* An endpoint URL split into its parts. Strings are owned. */
struct dda_aws_endpoint {
	char *scheme_host; /* "https://host[:port]" */
	char *host;	   /* the Host header: host[:port] */
	char *prefix;	   /* path prefix without a trailing '/', usually "" */
};

/* Splits "http(s)://host[:port][/prefix]"; what names the service in the
 * message. Returns 0 or DDA_EINVAL / DDA_ENOMEM with err set. */
int dda__aws_endpoint_parse(const char *url, const char *what, struct dda_aws_endpoint *out,
			    struct dda_error *err);
void dda__aws_endpoint_release(struct dda_aws_endpoint *e);

/* The endpoint override in effect for a service, as the SDKs read it:
 * explicit (a flag) when set, else AWS_ENDPOINT_URL_<ENV_ID> (env_id as
 * "S3", "STS", "SSO", "LAMBDA", "SQS"), else AWS_ENDPOINT_URL. Borrowed;
 * NULL when none is set. */
const char *dda__aws_endpoint_override(const struct dda_env *env, const char *env_id,
				       const char *explicit_url);

/* Appends the signed header lines ("Name: value\n") of one request: Host,
 * X-Amz-Date, x-amz-content-sha256 (S3 only), the session token and
 * Authorization, signing the extra headers too (which the caller sends
 * itself). payload_sha256 is the body's hex SHA-256. Secrets never leave
 * the signature. */
struct dda_aws_sign_req {
	const char *method;
	const char *host;
	const char *path;  /* as sent, encoded */
	const char *query; /* canonical (dda__sigv4_query), "" for none */
	const struct dda_kv *extra;
	size_t nextra;
	const char *payload_sha256;
	const char *region;
	const char *service;
	bool s3; /* S3's path rules and its x-amz-content-sha256 header */
	int64_t now;
};
int dda__aws_sign(const struct dda_aws_sign_req *r, const struct dda_creds *c,
		  struct dda_buf *headers);

/* Retries as the SDKs configure them: AWS_MAX_ATTEMPTS / AWS_RETRY_MODE,
 * else the profile's max_attempts / retry_mode in the config file.
 *   legacy:   5 attempts, waits of up to 1 s doubling (no cap past 5)
 *   standard: 3 attempts, waits of up to 1 s doubling, capped at 20 s
 *   adaptive: as standard (the SDKs' client-side rate limiter is not built)
 * With neither set, ddbaudit's own default: 5 attempts, waits of up to
 * 100 ms doubling to 20 s (many parallel GETs recover faster that way).
 * Adjusts o's max_attempts and backoff; DDA_EINVAL with err set for a value
 * that is not one of those. */
#define DDA_AWS_MAX_ATTEMPTS_LIMIT 20 /* more only multiplies a dead endpoint's wait */
int dda__aws_retry_opts(const struct dda_env *env, const char *profile, struct dda_http_opts *o,
			struct dda_error *err);

/* The region of an ARN ("arn:aws:lambda:eu-west-1:123:function:f") or of
 * an SQS queue URL ("https://sqs.eu-west-1.amazonaws.com/123/q", also
 * "https://eu-west-1.queue.amazonaws.com/..."). Writes it to out and
 * returns true; false (out empty) when s names no region (a local
 * endpoint, a bare function name). */
bool dda__aws_region_of(const char *s, char *out, size_t cap);

/* Whether s can be a region name (lower-case letters, digits, '-'; at
 * most 31 bytes): it goes into host names and signatures. */
bool dda__aws_region_valid(const char *s);

/* One request made synchronously on a short-lived engine of its own:
 * headers are "Name: value\n" lines or NULL; the answer's body is the
 * caller's (release it with dda__aws_wipe_buf when it may hold secrets).
 * Transport failures come back as resp->status 0 with resp->errmsg. */
struct dda_aws_fetch {
	const char *method;
	const char *url;
	const char *headers;
	dda_slice body;
	const struct dda_http_opts *opts; /* attempts, timeouts, backoff, stop flag */
	size_t max_body;
};
int dda__aws_fetch(const struct dda_aws_fetch *f, struct dda_http_response *resp,
		   struct dda_error *err);

/* Wipes a buffer that held secrets, then releases it. */
void dda__aws_wipe_buf(struct dda_buf *b);

#endif
