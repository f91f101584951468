/* http(s)://URL: each batch is one POST; a 2xx answer is success, and its
 * body may report partial failures. One connection per lane, kept alive. */
#include "replay/target_impl.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_target {
	struct dda_target base;
	CURL *easy;
	struct curl_slist *headers;
	struct dda_buf answer;
	int64_t retry_after;
};

void dda__header_retry_after(const char *p, size_t len, int64_t *retry_after)
{
	static const char name[] = "retry-after:";
	if (len <= sizeof(name) - 1 || strncasecmp(p, name, sizeof(name) - 1))
		return;
	const char *v = p + sizeof(name) - 1;
	size_t vl = len - (sizeof(name) - 1);
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	*retry_after = dda__retry_after_parse(v, vl, dda_time_now());
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct http_target *h = ctx;
	dda__header_retry_after(p, size * n, &h->retry_after);
	return size * n;
}

int dda__curl_fault(int cc)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return DDA_FAULT_CONFIG;
	}
	return DDA_FAULT_TRANSPORT;
}

long dda__target_timeout_ms(const struct dda_target_opts *o)
{
	if (o->timeout_ms > 0)
		return o->timeout_ms;
	return !strncmp(o->spec, "lambda:", 7) ? 900000L : 60000L;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct dda_buf *b = ctx;
	size_t len = size * n;
	size_t room = b->max - DDA_MIN(b->len, b->max);
	/* Past the buffer's maximum the rest is not needed (one byte over the
	 * answer cap already fails the batch); running out of memory aborts
	 * the transfer, which fails the batch rather than reading no answer. */
	if (room && dda_buf_add(b, p, DDA_MIN(len, room)))
		return 0;
	return len;
}

static int http_send(struct dda_target *t, const char *body, size_t len,
		     struct dda_send_result *res)
{
	struct http_target *h = (struct http_target *)t;
	long status = 0;
	dda_buf_reset(&h->answer);
	h->retry_after = -1;
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode cc = curl_easy_perform(h->easy);
	if (cc != CURLE_OK) {
		res->outcome = DDA_SEND_FAILED;
		res->fault = dda__curl_fault(cc);
		snprintf(res->msg, sizeof(res->msg), "%s", curl_easy_strerror(cc));
		return 0;
	}
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	dda__target_http_outcome(status, &h->answer, "HTTP", res);
	res->retry_after = h->retry_after;
	return 0;
}

void dda__target_http_outcome(long status, const struct dda_buf *answer, const char *what,
			      struct dda_send_result *res)
{
	res->status = status;
	if (status < 200 || status > 299) {
		res->outcome = DDA_SEND_FAILED;
		dda__http_fault(status, res);
		snprintf(res->msg, sizeof(res->msg), "%s %ld%s%.300s", what, status,
			 answer->len ? ": " : "", answer->len ? answer->ptr : "");
		return;
	}
	res->outcome = DDA_SEND_OK;
	res->answer = answer->ptr;
	res->answer_len = answer->len;
}

/* curl asks this at least once a second, also while a peer is silent: a
 * nonzero answer aborts the transfer, once a stopped run's drain is over. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct dda_target_opts *o = ctx;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return o->abort && *o->abort;
}

void *dda__target_curl_new(const struct dda_target_opts *o, const char *url,
			   struct dda_buf *answer)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, dda__target_timeout_ms(o));
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->no_verify_ssl ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->no_verify_ssl ? 0L : 2L);
	if (o->ca_bundle)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_bundle);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* o outlives the handle (the run's target options). */
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)o);
	return e;
}

static void http_free(struct dda_target *t)
{
	struct http_target *h = (struct http_target *)t;
	curl_easy_cleanup(h->easy);
	curl_slist_free_all(h->headers);
	dda_buf_release(&h->answer);
	free(h);
}

int dda__target_http_new(struct dda_target **out, const struct dda_target_opts *o,
			 struct dda_error *err)
{
	struct http_target *h = calloc(1, sizeof(*h));
	if (!h)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	h->base.send = http_send;
	h->base.free = http_free;
	dda_buf_init(&h->answer, DDA_TARGET_ANSWER_KEEP);
	h->easy = dda__target_curl_new(o, o->spec, &h->answer);
	h->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (h->headers)
		h->headers = curl_slist_append(h->headers, "Expect:");
	if (!h->easy || !h->headers) {
		http_free(&h->base);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, h);
	*out = &h->base;
	return 0;
}

/* An OPTIONS request proves that the host resolves, accepts connections
 * and speaks HTTP (with a certificate that verifies): any status will do,
 * since a processor may not implement OPTIONS. Whether it takes POST is
 * known at the first batch, whose 401/403/404/413 stops the run at once. */
int dda__target_http_preflight(const struct dda_target_opts *o, struct dda_error *err)
{
	struct dda_buf answer;
	dda_buf_init(&answer, 4096);
	CURL *e = dda__target_curl_new(o, o->spec, &answer);
	if (!e) {
		dda_buf_release(&answer);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "OPTIONS");
	curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	CURLcode cc = curl_easy_perform(e);
	int rc = 0;
	if (cc != CURLE_OK)
		rc = dda_error_set(err, DDA_EIO, "target %s does not answer: %s", o->spec,
				   curl_easy_strerror(cc));
	curl_easy_cleanup(e);
	dda_buf_release(&answer);
	return rc;
}
