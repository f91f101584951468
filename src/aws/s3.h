/* A small S3 client on the HTTP engine: endpoint and addressing as the AWS
 * CLI chooses them, credentials from the SDKs' chain, every request signed
 * afresh per attempt. */
#ifndef DDA_S3_H
#define DDA_S3_H

#include "aws/creds.h"
#include "aws/sigv4.h"
#include "net/http.h"
#include "ddbaudit/aws.h"

struct dda_s3;

/* Resolves endpoint, region and credentials (env is where variables come
 * from). Fails with DDA_EINVAL when no credentials are found, saying which
 * providers were tried. */
int dda__s3_new(struct dda_s3 **out, const struct dda_aws_opts *o, const struct dda_env *env,
		struct dda_error *err);
void dda__s3_free(struct dda_s3 *s);
struct dda_http *dda__s3_http(struct dda_s3 *s);
/* Which provider supplied the credentials (for messages; never the keys). */
const char *dda__s3_provider(const struct dda_s3 *s);

struct dda_s3_call;
typedef void (*dda_s3_done_fn)(struct dda_s3_call *c, struct dda_http_response *r);

/* One request. Embed it; it must stay put until done has run. */
struct dda_s3_call {
	struct dda_http_request http;
	struct dda_s3 *s3;
	char *url, *host, *path, *query;
	char *bucket, *key;
	char region[32]; /* the region the request is signed for */
	bool redirected; /* a wrong-region answer was followed once */
	const struct dda_kv *extra; /* headers signed and sent, borrowed */
	size_t nextra;
	char payload_sha256[65];
	dda_s3_done_fn done;
	void *ctx;
};

/* Prepares a call to bucket (and key, when not NULL) with query params and
 * queues it. max_body caps the answer. A wrong-region answer (301, 302 or
 * 307 with x-amz-bucket-region or a <Region>, 400
 * AuthorizationHeaderMalformed) is followed once, re-signed for the
 * bucket's region, before done runs; the bucket's region is remembered for
 * the client's later requests. */
int dda__s3_submit(struct dda_s3_call *c, struct dda_s3 *s3, const char *method, const char *bucket,
		   const char *key, const struct dda_kv *q, size_t nq, size_t max_body,
		   dda_s3_done_fn done, void *ctx);
/* As dda__s3_submit, with a request body and extra headers (If-Match,
 * If-None-Match, ...), both borrowed until done has run: for PUTs. */
int dda__s3_submit_body(struct dda_s3_call *c, struct dda_s3 *s3, const char *method,
			const char *bucket, const char *key, const struct dda_kv *extra,
			size_t nextra, dda_slice body, size_t max_body, dda_s3_done_fn done,
			void *ctx);
void dda__s3_call_release(struct dda_s3_call *c);

/* The region requests to bucket are signed for: the one S3 named in a
 * wrong-region answer, else the client's. Borrowed. */
const char *dda__s3_bucket_region(const struct dda_s3 *s, const char *bucket);

/* "HTTP 403 SignatureDoesNotMatch: ..." or the transport error, for messages. */
void dda__s3_describe(const struct dda_http_response *r, char *out, size_t cap);

#endif
