/* The HTTP engine: a queue of transfers fed into one curl multi handle, a
 * retry schedule kept as due times, and epoll to wait for either
 * sockets or the next due retry. */
#include "net/http.h"
#include "net/window.h"
#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

/* How long one poll may sleep when nothing is due: short enough to notice
 * a stop request promptly. */
#define POLL_MS 200

struct xfer {
	struct dda_http_request *req;
	CURL *easy;
	struct curl_slist *hdrs;
	struct dda_buf hdr_text;
	struct dda_http_response resp;
	int64_t retry_after; /* microseconds the server asked for, or -1 */
	int64_t due;
	int64_t started; /* when the attempt began, for the window */
	struct xfer *next;	/* in the pending list */
	struct xfer *next_live, *prev_live; /* in the list of transfers in curl */
	char curl_err[CURL_ERROR_SIZE];
};

struct dda_http {
	CURLM *multi;
	struct dda_http_opts o;
	struct xfer *pending; /* waiting to start, sorted by due time */
	struct xfer *pending_tail;
	struct xfer *live;    /* started, in the multi handle */
	struct xfer *spare;   /* finished, kept with their easy handles for reuse */
	int active, npending, nspare;
	/* Every slot of the window was busy when this step's answers came, so
	 * a larger window would have been used: what lets it grow. */
	bool full;
	/* curl's sockets are watched here (curl_multi_socket_action): with
	 * hundreds of transfers in flight, curl_multi_perform visited every
	 * one and curl_multi_poll polled every socket on each answer. */
	int epfd;
	int64_t curl_due; /* when curl asked to be called for its timeouts, or -1 */
	struct dda_window win;
	uint64_t rng;
	struct dda_http_stats stats;
};

void dda__http_opts_default(struct dda_http_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->concurrency = DDA_HTTP_CONCURRENCY;
	o->connect_timeout_ms = 10000;
	o->low_speed_seconds = 30;
	o->attempt_base_ms = 60000;
	o->max_attempts = 5;
	o->backoff_base = 100 * 1000;
	o->backoff_cap = 20 * DDA_USEC_PER_SEC;
}

static int global_init(struct dda_error *err)
{
	/* curl_global_init is idempotent past the first call and thread-safe
	 * in libcurl >= 7.84, which Debian 12 ships. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return dda_error_set(err, DDA_EINTERNAL, "cannot initialise libcurl");
	return 0;
}

/* curl says which sockets to watch for what; they are watched by epoll. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct dda_http *h = userp;
	struct epoll_event ev = {.data.fd = fd};
	(void)e;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, fd, &ev) && errno == ENOENT)
		return epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) ? -1 : 0;
	return 0;
}

/* curl's timeouts (connects, stalls, the transfers just added) are kept as
 * one due time, checked on every step. */
static int on_timer(CURLM *m, long ms, void *userp)
{
	struct dda_http *h = userp;
	(void)m;
	h->curl_due = ms < 0 ? -1 : dda_time_now() + (int64_t)ms * 1000;
	return 0;
}

int dda__http_new(struct dda_http **out, const struct dda_http_opts *o, struct dda_error *err)
{
	int rc = global_init(err);
	if (rc)
		return rc;
	struct dda_http *h = calloc(1, sizeof(*h));
	if (!h || !(h->multi = curl_multi_init())) {
		free(h);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	h->curl_due = -1;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd < 0) {
		curl_multi_cleanup(h->multi);
		free(h);
		return dda_error_set(err, DDA_EIO, "cannot create an epoll instance: %s",
				     strerror(errno));
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	h->o = *o;
	if (h->o.concurrency < 1)
		h->o.concurrency = 1;
	if (h->o.max_attempts < 1)
		h->o.max_attempts = 1;
	h->rng = o->seed ? o->seed : (uint64_t)dda_time_now() | 1;
	dda__window_init(&h->win, h->o.concurrency, dda_time_now());
	/* The connection cache holds one connection per transfer the window
	 * may ever allow, so that a window that grew and shrank reuses them
	 * rather than closing and opening connections as it moves. */
	curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)h->o.concurrency);
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->o.concurrency);
	*out = h;
	return 0;
}

/* Header lines carry session tokens: wiped before their memory goes back. */
static void free_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static void wipe_text(struct dda_buf *b)
{
	if (b->ptr)
		OPENSSL_cleanse(b->ptr, b->len);
}

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	free_headers(x->hdrs);
	wipe_text(&x->hdr_text);
	dda_buf_release(&x->hdr_text);
	dda_buf_release(&x->resp.body);
	free(x);
}

/* A finished transfer keeps its easy handle (and through it nothing of the
 * request: curl_easy_reset clears the options, the multi handle keeps the
 * connections) and its header buffer for the next request, up to one a
 * transfer the window may allow: no allocation storm per GET. */
static void xfer_recycle(struct dda_http *h, struct xfer *x)
{
	free_headers(x->hdrs);
	x->hdrs = NULL;
	wipe_text(&x->hdr_text);
	dda_buf_reset(&x->hdr_text);
	dda_buf_release(&x->resp.body);
	if (h->nspare >= h->o.concurrency) {
		xfer_free(x);
		return;
	}
	x->next = h->spare;
	h->spare = x;
	h->nspare++;
}

static struct xfer *xfer_get(struct dda_http *h)
{
	struct xfer *x = h->spare;
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (x)
			dda_buf_init(&x->hdr_text, 1 << 16);
		return x;
	}
	h->spare = x->next;
	h->nspare--;
	CURL *easy = x->easy;
	struct dda_buf hdr_text = x->hdr_text;
	memset(x, 0, sizeof(*x));
	x->easy = easy;
	x->hdr_text = hdr_text;
	return x;
}

void dda__http_free(struct dda_http *h)
{
	if (!h)
		return;
	while (h->pending) {
		struct xfer *x = h->pending;
		h->pending = x->next;
		xfer_free(x);
	}
	while (h->spare) {
		struct xfer *x = h->spare;
		h->spare = x->next;
		xfer_free(x);
	}
	/* Transfers cut short by the caller: taken out of curl, never done. */
	while (h->live) {
		struct xfer *x = h->live;
		h->live = x->next_live;
		curl_multi_remove_handle(h->multi, x->easy);
		xfer_free(x);
	}
	curl_multi_cleanup(h->multi);
	close(h->epfd); /* after curl, which says REMOVE for its sockets to the end */
	free(h);
}

void dda__http_set_log(struct dda_http *h, const struct dda_log *log)
{
	h->o.log = log;
}

const struct dda_log *dda__http_log(const struct dda_http *h)
{
	return h->o.log;
}

/* Why an attempt failed, for the log: the transport error or the status. */
static void attempt_outcome(const struct xfer *x, CURLcode code, char *out, size_t cap)
{
	if (code != CURLE_OK)
		snprintf(out, cap, "%s", x->curl_err[0] ? x->curl_err : curl_easy_strerror(code));
	else
		snprintf(out, cap, "HTTP %ld, %zu bytes", x->resp.status, x->resp.body.len);
}

static void log_attempt(const struct dda_http *h, const struct xfer *x, CURLcode code, int level,
			int64_t wait)
{
	char url[512], outcome[CURL_ERROR_SIZE + 64];
	if (!dda__log_on(h->o.log, level))
		return;
	dda__log_url(x->req->url, url, sizeof(url));
	attempt_outcome(x, code, outcome, sizeof(outcome));
	if (wait >= 0)
		dda__log(h->o.log, level, "%s %s: %s; retrying in %.1f s (attempt %d of %d)",
			 x->req->method, url, outcome, (double)wait / 1e6, x->resp.attempts + 1,
			 h->o.max_attempts);
	else
		dda__log(h->o.log, level, "%s %s: %s (%d attempt%s)", x->req->method, url, outcome,
			 x->resp.attempts, x->resp.attempts == 1 ? "" : "s");
}

void dda__http_stats(const struct dda_http *h, struct dda_http_stats *out)
{
	*out = h->stats;
	out->window = h->win.cur;
	out->window_peak = h->win.peak;
	out->window_cuts = h->win.cuts;
}

int dda__http_room(const struct dda_http *h)
{
	int room = h->win.cur - h->active - h->npending;
	return room > 0 ? room : 0;
}

/* Keeps the pending list sorted by due time (retries go behind new work);
 * new work is due now, after everything queued, so it goes at the tail at
 * once. */
static void enqueue(struct dda_http *h, struct xfer *x)
{
	h->npending++;
	if (!h->pending || h->pending_tail->due <= x->due) {
		x->next = NULL;
		if (h->pending_tail)
			h->pending_tail->next = x;
		else
			h->pending = x;
		h->pending_tail = x;
		return;
	}
	struct xfer **p = &h->pending;
	while (*p && (*p)->due <= x->due)
		p = &(*p)->next;
	x->next = *p;
	*p = x;
}

static struct xfer *dequeue(struct dda_http *h)
{
	struct xfer *x = h->pending;
	h->pending = x->next;
	if (!h->pending)
		h->pending_tail = NULL;
	h->npending--;
	return x;
}

int dda__http_submit(struct dda_http *h, struct dda_http_request *r)
{
	struct xfer *x = xfer_get(h);
	if (!x)
		return DDA_ENOMEM;
	x->req = r;
	x->due = dda_time_now();
	dda_buf_init(&x->resp.body, r->max_body ? r->max_body : DDA_BUF_UNLIMITED);
	h->stats.requests++;
	enqueue(h, x);
	return 0;
}

/* xorshift64*: jitter only needs to spread clients apart. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

int64_t dda__http_backoff(const struct dda_http_opts *o, uint64_t *rng, int n, int64_t retry_after)
{
	int64_t ceiling = o->backoff_base;
	for (int i = 1; i < n && ceiling < o->backoff_cap; i++)
		ceiling *= 2;
	if (ceiling > o->backoff_cap)
		ceiling = o->backoff_cap;
	int64_t wait = ceiling > 0 ? (int64_t)(next_rand(rng) % (uint64_t)(ceiling + 1)) : 0;
	if (retry_after > wait)
		wait = DDA_MIN(retry_after, o->backoff_cap);
	return wait;
}

bool dda__http_retryable(int curl_code, long status, const struct dda_buf *body)
{
	switch (curl_code) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
	if (status == 429 || status == 500 || status == 502 || status == 503 || status == 504)
		return true;
	/* S3 answers an idle upload or a throttled request this way too. */
	if (status == 400 && body && body->ptr)
		return strstr(body->ptr, "<Code>RequestTimeout</Code>") ||
		       strstr(body->ptr, "<Code>SlowDown</Code>");
	return false;
}

/* S3 and the JSON APIs ask a client to slow down with these codes. */
static const char *const throttle_codes[] = {
    "<Code>SlowDown</Code>",	     "<Code>Throttling</Code>",
    "<Code>RequestLimitExceeded</Code>", "ThrottlingException",
    "TooManyRequestsException",	     "ProvisionedThroughputExceededException",
    "RequestThrottled",
};

bool dda__http_throttled(int curl_code, long status, const struct dda_buf *body)
{
	if (curl_code != CURLE_OK)
		return false;
	if (status == 429 || status == 503)
		return true;
	if (status != 400 || !body || !body->ptr)
		return false;
	for (size_t i = 0; i < DDA_ARRAY_SIZE(throttle_codes); i++)
		if (strstr(body->ptr, throttle_codes[i]))
			return true;
	return false;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct xfer *x = ctx;
	size_t len = size * n;
	if (dda_buf_add(&x->resp.body, p, len)) {
		x->resp.err = DDA_ETOOBIG;
		return 0; /* aborts the transfer */
	}
	return len;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	snprintf(dst, cap, "%.*s", (int)n, v);
}

static bool header_is(const char *line, size_t n, const char *name, const char **value,
		      size_t *vlen)
{
	size_t k = strlen(name);
	if (n <= k || line[k] != ':' || strncasecmp(line, name, k))
		return false;
	*value = line + k + 1;
	*vlen = n - k - 1;
	return true;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct xfer *x = ctx;
	size_t len = size * n;
	const char *v;
	size_t vn;
	char tmp[32];
	if (len > 5 && !strncmp(p, "HTTP/", 5)) {
		/* A new response (after 100-continue or a redirect). */
		x->resp.etag[0] = x->resp.version_id[0] = x->resp.last_modified[0] = '\0';
		x->resp.content_encoding[0] = x->resp.bucket_region[0] = '\0';
		x->retry_after = -1;
	} else if (header_is(p, len, "ETag", &v, &vn)) {
		copy_value(x->resp.etag, sizeof(x->resp.etag), v, vn);
	} else if (header_is(p, len, "x-amz-version-id", &v, &vn)) {
		copy_value(x->resp.version_id, sizeof(x->resp.version_id), v, vn);
	} else if (header_is(p, len, "Last-Modified", &v, &vn)) {
		copy_value(x->resp.last_modified, sizeof(x->resp.last_modified), v, vn);
	} else if (header_is(p, len, "Content-Encoding", &v, &vn)) {
		copy_value(x->resp.content_encoding, sizeof(x->resp.content_encoding), v, vn);
	} else if (header_is(p, len, "x-amz-bucket-region", &v, &vn)) {
		copy_value(x->resp.bucket_region, sizeof(x->resp.bucket_region), v, vn);
	} else if (header_is(p, len, "Retry-After", &v, &vn)) {
		copy_value(tmp, sizeof(tmp), v, vn);
		char *end;
		long secs = strtol(tmp, &end, 10);
		if (end != tmp && !*end && secs >= 0)
			x->retry_after = (int64_t)secs * DDA_USEC_PER_SEC;
	}
	return len;
}

/* Builds the curl_slist from "Name: value\n" lines. */
static int make_headers(struct xfer *x)
{
	free_headers(x->hdrs);
	x->hdrs = NULL;
	wipe_text(&x->hdr_text);
	dda_buf_reset(&x->hdr_text);
	int rc = x->req->prepare ? x->req->prepare(x->req->ctx, x->req, &x->hdr_text) : 0;
	if (rc)
		return rc;
	/* Expect: 100-continue costs a round trip on every PUT. */
	x->hdrs = curl_slist_append(NULL, "Expect:");
	char *line = x->hdr_text.ptr;
	while (line && *line && x->hdrs) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line)
			x->hdrs = curl_slist_append(x->hdrs, line);
		line = nl ? nl + 1 : NULL;
	}
	return x->hdrs ? 0 : DDA_ENOMEM;
}

/* The whole-attempt limit of a request: the engine's, else one scaled to the
 * largest body the request accepts, else none (the low-speed floor only). */
static long attempt_limit_ms(const struct dda_http_opts *o, size_t max_body)
{
	if (o->timeout_ms > 0)
		return o->timeout_ms;
	if (o->min_bytes_per_second <= 0 || !max_body)
		return 0;
	uint64_t ms = (uint64_t)max_body / (uint64_t)o->min_bytes_per_second * 1000 +
		      (uint64_t)max_body % (uint64_t)o->min_bytes_per_second * 1000 /
			  (uint64_t)o->min_bytes_per_second;
	ms += (uint64_t)DDA_MAX(o->attempt_base_ms, 0);
	return (long)DDA_MIN(ms, (uint64_t)LONG_MAX);
}

static int start(struct dda_http *h, struct xfer *x)
{
	const struct dda_http_opts *o = &h->o;
	dda_buf_reset(&x->resp.body);
	x->resp.status = 0;
	x->resp.err = 0;
	x->retry_after = -1;
	x->curl_err[0] = '\0';
	int rc = make_headers(x);
	if (rc)
		return rc;
	CURL *e = x->easy ? x->easy : curl_easy_init();
	if (!e)
		return DDA_ENOMEM;
	curl_easy_reset(e);
	x->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, x->req->url);
	/* The path is sent as it was built and signed: curl would otherwise
	 * squash "/../" and "/./" (an S3 key may hold them), fetching another
	 * object than the one listed, or one whose signature no longer fits. */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->req->method);
	if (!strcmp(x->req->method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (x->req->body.len || !strcmp(x->req->method, "POST") || !strcmp(x->req->method, "PUT")) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req->body.ptr ? x->req->body.ptr : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req->body.len);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o->low_speed_seconds);
	long limit = attempt_limit_ms(o, x->req->max_body);
	if (limit > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, limit);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->no_verify_ssl ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->no_verify_ssl ? 0L : 2L);
	if (o->ca_bundle)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_bundle);
	x->resp.attempts++;
	x->started = dda_time_now();
	h->stats.attempts++;
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
		return DDA_EINTERNAL;
	x->next_live = h->live;
	x->prev_live = NULL;
	if (h->live)
		h->live->prev_live = x;
	h->live = x;
	h->active++;
	return 0;
}

/* An answer moves the window; a cut is said (at -v), a plateau at -v -v. */
static void move_window(struct dda_http *h, struct xfer *x, CURLcode code, bool full)
{
	int was = h->win.cur;
	bool throttled = dda__http_throttled(code, x->resp.status, &x->resp.body);
	enum dda_window_event ev =
	    dda__window_answer(&h->win, dda_time_now(), x->started, throttled, full);
	char url[512];
	if (ev == DDA_WINDOW_SAME || !dda__log_on(h->o.log, DDA_LOG_INFO))
		return;
	dda__log_url(x->req->url, url, sizeof(url));
	if (ev == DDA_WINDOW_CUT)
		dda__log(h->o.log, DDA_LOG_INFO,
			 "%s %s: throttled (HTTP %ld): at most %d transfers in flight from now "
			 "(was %d)",
			 x->req->method, url, x->resp.status, h->win.cur, was);
	else
		dda__log(h->o.log, DDA_LOG_DEBUG,
			 "throughput stopped growing with the window: %d transfers in flight "
			 "(was %d)",
			 h->win.cur, was);
}

/* The attempt ended: retry it later, or hand the response over. */
static void finish(struct dda_http *h, struct xfer *x, CURLcode code)
{
	long conns = 0;
	curl_multi_remove_handle(h->multi, x->easy);
	/* Unlinked in O(1): at hundreds of transfers in flight a walk per
	 * answer would show in the profile. */
	if (x->prev_live)
		x->prev_live->next_live = x->next_live;
	else
		h->live = x->next_live;
	if (x->next_live)
		x->next_live->prev_live = x->prev_live;
	h->active--;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->resp.status);
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
		h->stats.connects += (uint64_t)conns;
	h->stats.bytes += x->resp.body.len;
	move_window(h, x, code, h->full);
	bool again = !x->resp.err && dda__http_retryable(code, x->resp.status, &x->resp.body) &&
		     x->resp.attempts < h->o.max_attempts;
	if (again) {
		h->stats.retries++;
		int64_t wait = dda__http_backoff(&h->o, &h->rng, x->resp.attempts, x->retry_after);
		log_attempt(h, x, code, DDA_LOG_INFO, wait);
		x->due = dda_time_now() + wait;
		enqueue(h, x);
		return;
	}
	log_attempt(h, x, code, DDA_LOG_DEBUG, -1);
	if (!x->resp.err && code != CURLE_OK)
		x->resp.err = DDA_EIO;
	curl_off_t expected = -1;
	if (code == CURLE_PARTIAL_FILE &&
	    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected) == CURLE_OK &&
	    expected >= 0)
		/* Said plainly: the status line alone (200) would read as success. */
		snprintf(x->resp.errmsg, sizeof(x->resp.errmsg),
			 "HTTP %ld, but the body ended after %zu of %lld bytes (%d attempt%s)",
			 x->resp.status, x->resp.body.len, (long long)expected, x->resp.attempts,
			 x->resp.attempts == 1 ? "" : "s");
	else if (code != CURLE_OK)
		snprintf(x->resp.errmsg, sizeof(x->resp.errmsg), "%s",
			 x->curl_err[0] ? x->curl_err : curl_easy_strerror(code));
	else if (x->resp.err == DDA_ETOOBIG)
		snprintf(x->resp.errmsg, sizeof(x->resp.errmsg), "response over %zu bytes",
			 x->resp.body.max);
	x->req->done(x->req->ctx, x->req, &x->resp);
	xfer_recycle(h, x);
}

/* Starts what is due while the window has room. */
static int start_due(struct dda_http *h, int64_t now)
{
	while (h->pending && h->active < h->win.cur && h->pending->due <= now) {
		struct xfer *x = dequeue(h);
		int rc = start(h, x);
		if (rc) {
			x->resp.err = rc;
			snprintf(x->resp.errmsg, sizeof(x->resp.errmsg),
				 "cannot prepare the request: %s", dda_strerror(rc));
			x->req->done(x->req->ctx, x->req, &x->resp);
			xfer_recycle(h, x);
		}
	}
	return 0;
}

static bool stopped(const volatile int *stop)
{
	return stop && *stop;
}

int dda__http_step(struct dda_http *h, int timeout_ms, struct dda_error *err)
{
	if (stopped(h->o.stop))
		return dda_error_set(err, DDA_EINTR, "interrupted");
	start_due(h, dda_time_now());
	int running;
	if (h->curl_due >= 0 && h->curl_due <= dda_time_now()) {
		h->curl_due = -1;
		if (curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running) !=
		    CURLM_OK)
			return dda_error_set(err, DDA_EINTERNAL, "curl_multi_socket_action failed");
	}
	CURLMsg *m;
	int left;
	h->full = h->active >= h->win.cur;
	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct xfer *x = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		finish(h, x, m->data.result);
	}
	int64_t now = dda_time_now(), until = (int64_t)timeout_ms * 1000;
	if (h->pending && h->active < h->win.cur)
		until = DDA_MIN(until, h->pending->due - now);
	if (h->curl_due >= 0)
		until = DDA_MIN(until, h->curl_due - now);
	/* Rounded up: a wait cut short would spin until the due time. */
	int wait = until <= 0 ? 0 : (int)((until + 999) / 1000);
	if (!h->active && !h->pending)
		return 0;
	struct epoll_event evs[64];
	int n = epoll_wait(h->epfd, evs, (int)DDA_ARRAY_SIZE(evs), wait);
	for (int i = 0; i < n; i++) {
		int flags = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
			    ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
			    ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
		if (curl_multi_socket_action(h->multi, evs[i].data.fd, flags, &running) != CURLM_OK)
			return dda_error_set(err, DDA_EINTERNAL, "curl_multi_socket_action failed");
	}
	return h->active + h->npending;
}

int dda__http_run(struct dda_http *h, volatile int *stop, struct dda_error *err)
{
	if (!stop)
		stop = h->o.stop;
	for (;;) {
		if (stopped(stop))
			return dda_error_set(err, DDA_EINTR, "interrupted");
		int left = dda__http_step(h, POLL_MS, err);
		if (left <= 0)
			return left;
	}
}
