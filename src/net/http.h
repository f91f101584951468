/* HTTP for the AWS clients: one libcurl multi handle drives many transfers
 * at once over reused keep-alive connections, retrying what the AWS SDKs
 * retry (5xx, 429, throttling, timeouts, dropped connections, truncated
 * bodies) with exponential backoff and full jitter, honouring Retry-After. */
#ifndef DDA_HTTP_H
#define DDA_HTTP_H

#include <stdbool.h>
#include "util/util.h"
#include "ddbaudit/log.h"

/* The most transfers in flight by default: S3 answers a GET in about 20 ms,
 * so 256 allow about 12,000 a second; the window starts lower and grows
 * only while throughput grows (net/window.h). */
#define DDA_HTTP_CONCURRENCY 256

struct dda_http_opts {
	/* The most transfers in flight (default DDA_HTTP_CONCURRENCY): the
	 * window adapts below it, doubling while throughput grows, halving on
	 * throttling (503 SlowDown, 429). */
	int concurrency;
	long connect_timeout_ms; /* default 10 s */
	long low_speed_seconds;	 /* abort a transfer stalled this long (default 30) */
	long timeout_ms;	 /* whole-attempt limit, 0 for none (the default) */
	/* Without timeout_ms, a request with a max_body gets a whole-attempt
	 * limit of attempt_base_ms plus max_body at this many bytes a second,
	 * so a peer that trickles just above the low-speed floor cannot hold a
	 * run forever; 0 for no such limit (the default). */
	long min_bytes_per_second;
	long attempt_base_ms; /* default 60 s */
	int max_attempts;	 /* attempts per request, the first included (default 5) */
	int64_t backoff_base;	 /* first backoff ceiling, microseconds (default 100 ms) */
	int64_t backoff_cap;	 /* largest backoff, microseconds (default 20 s) */
	bool no_verify_ssl;	 /* only when asked for explicitly */
	const char *ca_bundle;	 /* or NULL for the system's */
	uint64_t seed;		 /* jitter seed; 0 picks one from the clock */
	const struct dda_log *log; /* retries, and every request at DEBUG; borrowed */
	/* The run's stop flag (set by a signal handler), or NULL: once it is
	 * nonzero, run and step end at once with DDA_EINTR, whatever the
	 * transfers in flight are doing (a peer that never answers, or trickles
	 * a byte at a time, holds no one). Borrowed. */
	volatile int *stop;
};

void dda__http_opts_default(struct dda_http_opts *o);

struct dda_http_response {
	long status;	     /* HTTP status, 0 when none arrived */
	struct dda_buf body; /* owned by the response */
	char etag[128];
	char version_id[256];
	char last_modified[64];
	char content_encoding[32];
	char bucket_region[32]; /* S3's x-amz-bucket-region, for wrong-region answers */
	int attempts;
	int err; /* 0, or the error of the last attempt */
	char errmsg[256];
};

struct dda_http_request;

/* Called before every attempt: appends "Name: value\n" header lines to
 * hdrs (signatures carry the time, so they are made afresh each attempt).
 * Returns 0 or an error that fails the request without retrying. */
typedef int (*dda_http_prepare_fn)(void *ctx, const struct dda_http_request *r,
				   struct dda_buf *hdrs);
/* Called once when the request is finished (success, HTTP error, or given
 * up). The response is borrowed; take its body with dda_buf_take if needed.
 * May submit more requests. */
typedef void (*dda_http_done_fn)(void *ctx, struct dda_http_request *r,
				 struct dda_http_response *resp);

struct dda_http_request {
	const char *method;
	const char *url;
	dda_slice body;
	size_t max_body; /* responses larger are an error (DDA_ETOOBIG) */
	dda_http_prepare_fn prepare;
	dda_http_done_fn done;
	void *ctx;
};

struct dda_http;
int dda__http_new(struct dda_http **out, const struct dda_http_opts *o, struct dda_error *err);
void dda__http_free(struct dda_http *h);

/* Queues a request; it stays borrowed until its done callback has run. */
int dda__http_submit(struct dda_http *h, struct dda_http_request *r);

/* Runs until every queued request is done, or until *stop (or the engine's
 * own opts.stop, when stop is NULL) becomes nonzero: then DDA_EINTR, with
 * the transfers in flight left for dda__http_free to end. Returns 0 or
 * DDA_EINTR / an internal curl failure. */
int dda__http_run(struct dda_http *h, volatile int *stop, struct dda_error *err);

/* One turn of the engine: starts what is due, moves transfers on, calls
 * done callbacks, and waits at most timeout_ms for something to happen.
 * Returns the number of requests not yet done, or a negative error
 * (DDA_EINTR once opts.stop is set). For callers that consume results as
 * they come (the S3 source). */
int dda__http_step(struct dda_http *h, int timeout_ms, struct dda_error *err);

/* Where retries (and, at DDA_LOG_DEBUG, every request) are logged from now
 * on; log is borrowed and must outlive h, NULL for nowhere. */
void dda__http_set_log(struct dda_http *h, const struct dda_log *log);
/* The engine's log, for its clients' own lines (NULL when none is set). */
const struct dda_log *dda__http_log(const struct dda_http *h);

/* Counters for reports and tests. */
struct dda_http_stats {
	uint64_t requests, attempts, retries, bytes;
	uint64_t connects;    /* connections opened: reused ones are not counted again */
	int window;	      /* transfers allowed in flight now */
	int window_peak;      /* the most ever allowed in this engine's life */
	uint64_t window_cuts; /* times throttling halved the window */
};
void dda__http_stats(const struct dda_http *h, struct dda_http_stats *out);

/* How many more requests would start at once: the window less the
 * transfers in flight and those queued. For callers that keep the engine
 * fed without queueing far ahead of it (the S3 source). */
int dda__http_room(const struct dda_http *h);

/* Whether an answer asks the client to slow down (503, 429, a 400 with a
 * throttling code): the window is halved (exposed for tests). */
bool dda__http_throttled(int curl_code, long status, const struct dda_buf *body);

/* Whether a finished attempt should be tried again (exposed for tests). */
bool dda__http_retryable(int curl_code, long status, const struct dda_buf *body);

/* The backoff before attempt n (1 = first retry): full jitter over
 * min(cap, base * 2^(n-1)), at least retry_after when the server asked. */
int64_t dda__http_backoff(const struct dda_http_opts *o, uint64_t *rng, int n, int64_t retry_after);

#endif
