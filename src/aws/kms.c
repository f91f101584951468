/* The KMS client of evidence bundles (see kms.h): two JSON 1.1 calls,
 * signed by the shared API client, each sent on its own easy handle and
 * retried like the other JSON clients when KMS throttles or fails. */
#include "aws/kms.h"
#include "aws/core.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dda_kms {
	struct dda_aws_api *api;
	const struct dda_aws_opts *o; /* borrowed */
	char *url;
	const char *path;
};

int dda__kms_new(struct dda_kms **out, const struct dda_aws_opts *o, struct dda_error *err)
{
	struct dda_env env = {dda__process_env, NULL, NULL};
	struct dda_kms *k = calloc(1, sizeof(*k));
	*out = NULL;
	if (!k)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	k->o = o;
	/* --endpoint-url is the S3 source's: KMS takes its own variable. */
	int rc = dda__aws_api_new(&k->api, "kms", o, NULL, NULL, NULL, &env, err);
	if (!rc) {
		const char *base = dda__aws_api_base(k->api);
		const char *pfx = strchr(strstr(base, "://") + 3, '/');
		size_t n = strlen(base) + 2;
		k->url = malloc(n);
		if (!k->url)
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
		else
			snprintf(k->url, n, "%s%s", base, pfx ? "" : "/");
		k->path = pfx ? pfx : "/";
	}
	if (rc) {
		dda__kms_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

void dda__kms_free(struct dda_kms *k)
{
	if (!k)
		return;
	dda__aws_api_free(k->api);
	free(k->url);
	free(k);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	return dda_buf_add(ctx, p, size * n) ? 0 : size * n;
}

static int on_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	volatile int *stop = ctx;
	(void)a, (void)b, (void)c, (void)d;
	return stop && *stop;
}

/* One attempt: 0 with the status in *status and the body in answer. */
static int attempt(struct dda_kms *k, CURL *e, const char *target, const char *body,
		   struct dda_buf *answer, long *status, struct dda_error *err)
{
	const struct dda_kv hdrs[] = {
	    {"Content-Type", "application/x-amz-json-1.1"},
	    {"X-Amz-Target", target},
	};
	dda_buf_reset(answer);
	struct curl_slist *hl = dda__aws_api_curl_headers(
	    k->api, "POST", k->path, "", hdrs, DDA_ARRAY_SIZE(hdrs), body, strlen(body), err);
	if (!hl)
		return err && err->code ? err->code : DDA_ENOMEM;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	CURLcode cc = curl_easy_perform(e);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	dda__aws_api_free_headers(hl);
	if (cc != CURLE_OK)
		return dda_error_set(err, DDA_EIO, "KMS %s: %s", target, curl_easy_strerror(cc));
	if (answer->err)
		return dda_error_set(err, DDA_ETOOBIG, "KMS %s: the answer is too large", target);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

static CURL *easy_new(struct dda_kms *k, const char *body, struct dda_buf *answer)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, k->url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	bool insecure = k->o && k->o->no_verify_ssl;
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
	if (k->o && k->o->ca_bundle)
		curl_easy_setopt(e, CURLOPT_CAINFO, k->o->ca_bundle);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)(k->o ? k->o->stop : NULL));
	return e;
}

/* Waits usec, in slices short enough that a stop is seen at once;
 * nonzero when stopped. */
static int pause_for(int64_t usec, volatile int *stop)
{
	while (usec > 0 && !(stop && *stop)) {
		int64_t slice = usec < 100000 ? usec : 100000;
		struct timespec ts = {0, (long)slice * 1000};
		nanosleep(&ts, NULL);
		usec -= slice;
	}
	return stop && *stop;
}

/* One call of action with req (stolen); *answer the parsed 200 answer. A
 * throttle or a 5xx is retried with the backoff the AWS settings ask for. */
static int call(struct dda_kms *k, const char *action, json_t *req, json_t **answer,
		struct dda_error *err)
{
	char target[64];
	struct dda_buf ans;
	long status = 0;
	uint64_t rng = (uint64_t)(uintptr_t)k ^ (uint64_t)dda_time_now();
	const struct dda_http_opts *retry = dda__aws_api_retry(k->api);
	snprintf(target, sizeof(target), "TrentService.%s", action);
	*answer = NULL;
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	dda_buf_init(&ans, DDA_KMS_ANSWER_MAX);
	CURL *e = body ? easy_new(k, body, &ans) : NULL;
	int rc = e ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	for (int n = 1; !rc; n++) {
		rc = attempt(k, e, target, body, &ans, &status, err);
		if (rc || status == 200 || n >= retry->max_attempts ||
		    !dda__http_retryable(CURLE_OK, status, &ans))
			break;
		int64_t wait = dda__http_backoff(retry, &rng, n, -1);
		if (pause_for(wait, k->o ? k->o->stop : NULL))
			rc = dda_error_set(err, DDA_EINTR, "KMS %s: interrupted", action);
	}
	if (!rc && status != 200)
		rc = dda_error_set(err, status == 400 || status == 403 ? DDA_EAUTH : DDA_EIO,
				   "KMS %s: HTTP %ld: %.300s", action, status,
				   ans.len ? ans.ptr : "");
	if (!rc) {
		*answer = json_loadb(ans.ptr ? ans.ptr : "", ans.len, 0, NULL);
		if (!json_is_object(*answer)) {
			json_decref(*answer);
			*answer = NULL;
			rc = dda_error_set(err, DDA_EFORMAT, "KMS %s: the answer is not JSON",
					   action);
		}
	}
	if (e)
		curl_easy_cleanup(e);
	free(body);
	dda_buf_release(&ans);
	return rc;
}

int dda__kms_sign(struct dda_kms *k, const char *key_id, const void *msg, size_t n, json_t **answer,
		  const char **message_type, struct dda_error *err)
{
	struct dda_buf b64;
	uint8_t d[32];
	/* RAW where KMS allows it: its result equals DIGEST's over SHA-256 of
	 * the bytes, and KMS implementations that only know RAW (moto) sign it
	 * right. */
	bool raw = n <= DDA_KMS_RAW_MAX;
	if (!raw)
		dda__sha256(msg, n, d);
	*message_type = raw ? "RAW" : "DIGEST";
	dda_buf_init(&b64, 2 * DDA_KMS_RAW_MAX);
	int rc = raw ? dda__base64_encode(msg, n, &b64) : dda__base64_encode(d, sizeof(d), &b64);
	if (rc)
		return dda_error_set(err, rc, "out of memory");
	json_t *req = json_pack("{ssssssss}", "KeyId", key_id, "Message", b64.ptr, "MessageType",
				*message_type, "SigningAlgorithm", "ECDSA_SHA_256");
	dda_buf_release(&b64);
	if (!req)
		return dda_error_set(err, DDA_EINVAL, "invalid KMS key id");
	return call(k, "Sign", req, answer, err);
}

int dda__kms_public_key(struct dda_kms *k, const char *key_id, json_t **answer,
			struct dda_error *err)
{
	json_t *req = json_pack("{ss}", "KeyId", key_id);
	if (!req)
		return dda_error_set(err, DDA_EINVAL, "invalid KMS key id");
	return call(k, "GetPublicKey", req, answer, err);
}
