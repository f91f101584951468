/* The HTTP layer against a local server that fails on purpose
 * (tests/data/http/fault_server.py): retries on 5xx, 429, S3 throttling and
 * timeouts, dropped connections and truncated bodies; no retry on 4xx; the
 * body cap; Retry-After; headers made afresh per attempt; connection reuse;
 * many transfers at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/http.h"

static pid_t server_pid;
static int server_in = -1;
static int port;

static int start_server(void **state)
{
	int in[2], out[2];
	if (pipe(in) || pipe(out))
		return -1;
	server_pid = fork();
	if (server_pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execlp("python3", "python3", DDA_TEST_DATA "/http/fault_server.py", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	server_in = in[1];
	/* Read up to the newline: the port may arrive in more than one write. */
	char line[32] = {0};
	size_t len = 0;
	while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
		ssize_t n = read(out[0], line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(out[0]);
	port = memchr(line, '\n', len) ? atoi(line) : 0;
	if (!port) {
		fprintf(stderr, "SKIPPED: the fault server (python3 %s) did not start\n",
			DDA_TEST_DATA "/http/fault_server.py");
		return -1;
	}
	return 0;
}

static int stop_server(void **state)
{
	if (server_in >= 0)
		close(server_in);
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
	return 0;
}

struct call {
	struct dda_http_request req;
	char url[256];
	long status;
	int attempts, err;
	char body[256];
	char etag[128], version[256];
	int prepared;
};

static int prepare(void *ctx, const struct dda_http_request *r, struct dda_buf *hdrs)
{
	struct call *c = ctx;
	c->prepared++;
	return dda_buf_addf(hdrs, "X-Attempt: %d\nX-Test: yes\n", c->prepared);
}

static void done(void *ctx, struct dda_http_request *r, struct dda_http_response *resp)
{
	struct call *c = ctx;
	c->status = resp->status;
	c->attempts = resp->attempts;
	c->err = resp->err;
	snprintf(c->body, sizeof(c->body), "%.*s", (int)DDA_MIN(resp->body.len, 255),
		 resp->body.ptr ? resp->body.ptr : "");
	snprintf(c->etag, sizeof(c->etag), "%s", resp->etag);
	snprintf(c->version, sizeof(c->version), "%s", resp->version_id);
}

static struct dda_http *client(int concurrency)
{
	struct dda_http_opts o;
	struct dda_http *h;
	struct dda_error err = {0};
	dda__http_opts_default(&o);
	o.concurrency = concurrency;
	o.backoff_base = 1000; /* 1 ms: retries without slowing the suite */
	o.backoff_cap = 50 * 1000;
	o.seed = 42;
	assert_int_equal(dda__http_new(&h, &o, &err), 0);
	return h;
}

static void get(struct dda_http *h, struct call *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d%s", port, path);
	c->req = (struct dda_http_request){"GET", c->url, {NULL, 0}, 1 << 20, prepare, done, c};
	assert_int_equal(dda__http_submit(h, &c->req), 0);
}

static void run(struct dda_http *h)
{
	struct dda_error err = {0};
	assert_int_equal(dda__http_run(h, NULL, &err), 0);
}

static void test_ok_and_headers(void **state)
{
	struct dda_http *h = client(4);
	struct call c, hd;
	get(h, &c, "/ok");
	get(h, &hd, "/headers");
	run(h);
	assert_int_equal(c.status, 200);
	assert_string_equal(c.body, "hello");
	assert_string_equal(c.etag, "\"abc\"");
	assert_string_equal(c.version, "v1");
	assert_int_equal(c.attempts, 1);
	assert_non_null(strstr(hd.body, "X-Test: yes"));
	dda__http_free(h);
}

static void test_retries(void **state)
{
	struct dda_http *h = client(8);
	struct call c[8];
	get(h, &c[0], "/fail/503/2/a");
	get(h, &c[1], "/fail/500/1/b");
	get(h, &c[2], "/fail/429/3/c");
	get(h, &c[3], "/drop/2/d");
	get(h, &c[4], "/truncate/1/e");
	get(h, &c[5], "/s3timeout/f");
	get(h, &c[6], "/fail/404/1/g");
	get(h, &c[7], "/fail/503/9/h");
	run(h);
	const int attempts[] = {3, 2, 4, 3, 2, 2, 1, 5};
	int total = 0;
	for (int i = 0; i < 6; i++) {
		assert_int_equal(c[i].status, 200);
		assert_int_equal(c[i].err, 0);
		/* A connection dropped while being reused is retried once by curl
		 * itself, so the drop case may take one attempt of ours less. */
		if (i == 3)
			assert_true(c[i].attempts == 2 || c[i].attempts == 3);
		else
			assert_int_equal(c[i].attempts, attempts[i]);
		/* Headers were made afresh for every attempt. */
		assert_int_equal(c[i].prepared, c[i].attempts);
		total += c[i].attempts - 1;
	}
	assert_int_equal(c[4].body[0], 'x');
	/* A 404 is an answer, not a failure to retry. */
	assert_int_equal(c[6].status, 404);
	assert_int_equal(c[6].attempts, 1);
	/* Giving up after max_attempts returns the last answer. */
	assert_int_equal(c[7].status, 503);
	assert_int_equal(c[7].attempts, 5);
	struct dda_http_stats st;
	dda__http_stats(h, &st);
	assert_int_equal(st.retries, total + 4);
	dda__http_free(h);
}

static void test_retry_after_and_cap(void **state)
{
	struct dda_http *h = client(2);
	struct call c, big;
	get(h, &c, "/retry-after/1/r");
	get(h, &big, "/big/2000000");
	run(h);
	assert_int_equal(c.status, 200);
	assert_int_equal(c.attempts, 2);
	assert_int_equal(big.err, DDA_ETOOBIG);
	assert_int_equal(big.attempts, 1);
	dda__http_free(h);
}

static void test_connection_refused(void **state)
{
	struct dda_http *h = client(1);
	struct call c;
	memset(&c, 0, sizeof(c));
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:1/nothing");
	c.req = (struct dda_http_request){"GET", c.url, {NULL, 0}, 1024, prepare, done, &c};
	dda__http_submit(h, &c.req);
	run(h);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.err, DDA_EIO);
	assert_int_equal(c.attempts, 5);
	dda__http_free(h);
}

/* Many requests over few connections: keep-alive reuse, all complete. */
static void test_many_and_reuse(void **state)
{
	struct dda_http *h = client(4);
	struct call *c = calloc(200, sizeof(*c));
	struct call conns;
	get(h, &conns, "/connections");
	run(h);
	int before = atoi(conns.body);
	for (int i = 0; i < 200; i++)
		get(h, &c[i], "/ok");
	run(h);
	for (int i = 0; i < 200; i++)
		assert_int_equal(c[i].status, 200);
	get(h, &conns, "/connections");
	run(h);
	assert_true(atoi(conns.body) - before <= 8);
	/* The client's own count agrees: connections follow the window (at
	 * most 4 here), not the requests. */
	struct dda_http_stats st;
	dda__http_stats(h, &st);
	assert_true(st.connects >= 1 && st.connects <= 8);
	assert_true(st.window_peak <= 4);
	assert_int_equal(st.window_cuts, 0);
	free(c);
	dda__http_free(h);
}

/* Answers that ask to slow down (and halve the window), and those that
 * do not. */
static void test_throttled(void **state)
{
	struct dda_buf b;
	dda_buf_init(&b, 4096);
	assert_true(dda__http_throttled(0, 503, &b));
	assert_true(dda__http_throttled(0, 429, NULL));
	assert_false(dda__http_throttled(0, 500, &b));
	assert_false(dda__http_throttled(0, 400, &b));
	assert_false(dda__http_throttled(7 /* couldn't connect */, 0, &b));
	assert_int_equal(dda_buf_adds(&b, "<Error><Code>SlowDown</Code></Error>"), 0);
	assert_true(dda__http_throttled(0, 400, &b));
	dda_buf_reset(&b);
	assert_int_equal(dda_buf_adds(&b, "{\"__type\":\"ThrottlingException\"}"), 0);
	assert_true(dda__http_throttled(0, 400, &b));
	dda_buf_reset(&b);
	assert_int_equal(dda_buf_adds(&b, "<Error><Code>RequestTimeout</Code></Error>"), 0);
	assert_false(dda__http_throttled(0, 400, &b));
	dda_buf_release(&b);
}

/* 503 SlowDown halves the window: a client allowed 8 in flight that is
 * throttled on its first answers ends with fewer, every request done. */
static void test_slowdown_cuts_the_window(void **state)
{
	struct dda_http *h = client(8);
	struct call *c = calloc(32, sizeof(*c));
	char path[64];
	for (int i = 0; i < 32; i++) {
		snprintf(path, sizeof(path), "/fail/503/1/cut%d", i);
		get(h, &c[i], path);
	}
	run(h);
	for (int i = 0; i < 32; i++)
		assert_int_equal(c[i].status, 200);
	struct dda_http_stats st;
	dda__http_stats(h, &st);
	assert_true(st.window_cuts >= 1);
	assert_true(st.window < 8);
	free(c);
	dda__http_free(h);
}

/* The stop flag ends a run whose peer never answers: a listening socket
 * nobody accepts from holds the connection open forever. The flag is set
 * once the request is being made (from its prepare callback), as a signal
 * would; run returns DDA_EINTR with the request not done, and freeing the
 * engine ends the transfer. */
static volatile int stop_flag;

static int prepare_then_stop(void *ctx, const struct dda_http_request *r, struct dda_buf *hdrs)
{
	stop_flag = 1;
	return prepare(ctx, r, hdrs);
}

static void test_stop_flag_ends_a_silent_peer(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	struct dda_http_opts o;
	struct dda_http *h;
	struct dda_error err = {0};
	dda__http_opts_default(&o);
	o.stop = &stop_flag;
	stop_flag = 0;
	assert_int_equal(dda__http_new(&h, &o, &err), 0);
	struct call c;
	memset(&c, 0, sizeof(c));
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/never", ntohs(a.sin_port));
	c.req = (struct dda_http_request){"GET", c.url, {NULL, 0}, 1024, prepare_then_stop, done,
					  &c};
	assert_int_equal(dda__http_submit(h, &c.req), 0);
	assert_int_equal(dda__http_run(h, NULL, &err), DDA_EINTR);
	assert_string_equal(err.msg, "interrupted");
	assert_int_equal(c.prepared, 1);
	assert_int_equal(c.status, 0); /* never done */
	struct dda_error serr = {0};
	assert_int_equal(dda__http_step(h, 200, &serr), DDA_EINTR);
	dda__http_free(h);
	close(fd);
}

/* A peer trickling above the low-speed floor is ended by the attempt limit
 * scaled to the request's max_body, then retried, then given up. */
static void test_attempt_limit_ends_a_trickle(void **state)
{
	struct dda_http_opts o;
	struct dda_http *h;
	struct dda_error err = {0};
	dda__http_opts_default(&o);
	o.min_bytes_per_second = 64 << 10;
	o.attempt_base_ms = 300;
	o.max_attempts = 2;
	o.backoff_base = 1000;
	assert_int_equal(dda__http_new(&h, &o, &err), 0);
	struct call c;
	memset(&c, 0, sizeof(c));
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:%d/trickle", port);
	/* 300 ms + 1024 B at 64 KiB/s: about 316 ms an attempt. */
	c.req = (struct dda_http_request){"GET", c.url, {NULL, 0}, 1024, prepare, done, &c};
	assert_int_equal(dda__http_submit(h, &c.req), 0);
	run(h);
	assert_int_equal(c.attempts, 2);
	assert_int_not_equal(c.err, 0);
	dda__http_free(h);
}

static void test_backoff_bounds(void **state)
{
	struct dda_http_opts o;
	dda__http_opts_default(&o);
	uint64_t rng = 7;
	for (int n = 1; n < 12; n++) {
		int64_t ceiling = DDA_MIN(o.backoff_base << (n - 1), o.backoff_cap);
		for (int k = 0; k < 50; k++) {
			int64_t w = dda__http_backoff(&o, &rng, n, -1);
			assert_true(w >= 0 && w <= ceiling);
		}
	}
	/* Retry-After raises the wait, up to the cap. */
	assert_true(dda__http_backoff(&o, &rng, 1, 3 * DDA_USEC_PER_SEC) >= 3 * DDA_USEC_PER_SEC);
	assert_true(dda__http_backoff(&o, &rng, 1, 3600 * DDA_USEC_PER_SEC) <= o.backoff_cap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok_and_headers),	cmocka_unit_test(test_retries),
	    cmocka_unit_test(test_retry_after_and_cap), cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_many_and_reuse),	cmocka_unit_test(test_backoff_bounds),
	    cmocka_unit_test(test_stop_flag_ends_a_silent_peer),
	    cmocka_unit_test(test_attempt_limit_ends_a_trickle),
	    cmocka_unit_test(test_throttled),
	    cmocka_unit_test(test_slowdown_cuts_the_window),
	};
	return cmocka_run_group_tests(tests, start_server, stop_server);
}
