/* Signed requests to the JSON APIs of AWS services other than S3 (Lambda
 * Invoke, SQS SendMessage): endpoint, region and credentials found as the
 * CLI finds them, one client shared by threads, each request signed afresh
 * with its body's hash. The caller sends it (one curl handle a thread). */
#ifndef DDA_AWS_API_H
#define DDA_AWS_API_H

#include "aws/creds.h"
#include "aws/sigv4.h"
#include "net/http.h"
#include "ddbaudit/aws.h"

struct dda_aws_api;

/* service: the signing name ("lambda", "sqs"). The endpoint is endpoint
 * when given, else AWS_ENDPOINT_URL_<SERVICE> then AWS_ENDPOINT_URL, else
 * fallback when given, else https://<service>.<region>.amazonaws.com. The
 * region is o->region, AWS_REGION, AWS_DEFAULT_REGION, the profile's, else
 * region_hint, else us-east-1. */
int dda__aws_api_new(struct dda_aws_api **out, const char *service, const struct dda_aws_opts *o,
		     const char *endpoint, const char *fallback, const char *region_hint,
		     const struct dda_env *env, struct dda_error *err);
void dda__aws_api_free(struct dda_aws_api *a);

/* "scheme://host[:port]" plus the endpoint's path prefix (no trailing /). */
const char *dda__aws_api_base(const struct dda_aws_api *a);
const char *dda__aws_api_region(const struct dda_aws_api *a);

/* The attempts and backoff AWS_MAX_ATTEMPTS / AWS_RETRY_MODE (or the
 * profile's max_attempts / retry_mode) ask for: max_attempts, backoff_base
 * and backoff_cap, for dda__http_backoff. Borrowed. */
const struct dda_http_opts *dda__aws_api_retry(const struct dda_aws_api *a);

/* Header lines ("Name: value\n") for a request: Host, X-Amz-Date, the
 * session token and Authorization, signing the extra headers too (which
 * the caller also sends). path is as sent (encoded), query canonical. */
int dda__aws_api_sign(struct dda_aws_api *a, const char *method, const char *path,
		      const char *query, const struct dda_kv *extra, size_t nextra,
		      const void *body, size_t len, struct dda_buf *headers, struct dda_error *err);

/* The same as a curl header list, with the extra headers themselves and
 * "Expect:" (no 100-continue round trip). NULL with err set on failure. */
struct curl_slist;
struct curl_slist *dda__aws_api_curl_headers(struct dda_aws_api *a, const char *method,
					     const char *path, const char *query,
					     const struct dda_kv *extra, size_t nextra,
					     const void *body, size_t len, struct dda_error *err);
/* Frees a header list from dda__aws_api_curl_headers, wiping each line
 * first: they hold the session token and the signature. */
void dda__aws_api_free_headers(struct curl_slist *hl);

#endif
