/* http(s)://URL: each batch is one POST; a 2xx answer is success, and its
 * body may report partial failures. One connection per lane, kept alive. */
#include "replay/target_impl.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct http_target {
	struct dda_target base;
	CURL *easy;
	struct curl_slist *headers;
	struct dda_buf answer;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct dda_buf *b = ctx;
	size_t len = size * n;
	size_t room = DDA_TARGET_MAX_ANSWER - DDA_MIN(b->len, DDA_TARGET_MAX_ANSWER);
	/* Past the cap the rest is not needed; running out of memory aborts the
	 * transfer, which fails the batch rather than reading no answer. */
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
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode cc = curl_easy_perform(h->easy);
	if (cc != CURLE_OK) {
		res->outcome = DDA_SEND_FAILED;
		snprintf(res->msg, sizeof(res->msg), "%s", curl_easy_strerror(cc));
		return 0;
	}
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	dda__target_http_outcome(status, &h->answer, "HTTP", res);
	return 0;
}

void dda__target_http_outcome(long status, const struct dda_buf *answer, const char *what,
			      struct dda_send_result *res)
{
	res->status = status;
	if (status < 200 || status > 299) {
		res->outcome = DDA_SEND_FAILED;
		snprintf(res->msg, sizeof(res->msg), "%s %ld%s%.300s", what, status,
			 answer->len ? ": " : "", answer->len ? answer->ptr : "");
		return;
	}
	dda__parse_item_failures(answer->ptr, answer->len, res);
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
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 60000L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->no_verify_ssl ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->no_verify_ssl ? 0L : 2L);
	if (o->ca_bundle)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_bundle);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
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
	dda_buf_init(&h->answer, DDA_TARGET_MAX_ANSWER);
	h->easy = dda__target_curl_new(o, o->spec, &h->answer);
	h->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (h->headers)
		h->headers = curl_slist_append(h->headers, "Expect:");
	if (!h->easy || !h->headers) {
		http_free(&h->base);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
	*out = &h->base;
	return 0;
}
