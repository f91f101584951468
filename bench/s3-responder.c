/* A fast local S3 endpoint for bench/s3-run and the concurrency tests: it
 * answers like S3 after a first-byte delay (default 20 ms, what S3 takes for
 * a GET at p90), so that a client is measured against S3's latency rather
 * than against loopback. Enough of S3 to measure a client, not S3.
 *
 * ROOT holds one directory per bucket; every file under it is an object,
 * loaded into memory at start with its MD5 as the ETag (as S3 gives for
 * single-part uploads). Path-style requests only:
 *   GET/HEAD /BUCKET/KEY                       the object (404 NoSuchKey)
 *   GET /BUCKET?list-type=2                    ListObjectsV2: prefix,
 *       continuation-token, start-after, max-keys (at most 1,000),
 *       encoding-type=url (no delimiter)
 *   GET /BUCKET?versioning                     versioning never enabled
 *   GET /BUCKET?object-lock                    404 ObjectLockConfigurationNotFoundError
 * Anything else is 501 NotImplemented. No signature check.
 *
 * Throttling, for the clients' backoff: --slowdown-rate R answers that
 * fraction of requests (drawn from a fixed seed) 503 SlowDown, and
 * --slowdown-above N answers 503 SlowDown to a request that arrives while N
 * others are waiting for their answer (as S3 does past a prefix's request
 * rate). Both are answered after the same delay.
 *
 * One thread, epoll, HTTP/1.1 keep-alive; requests waiting out their delay
 * are a FIFO (one delay for all, so it is sorted by due time). At SIGTERM or
 * SIGINT it prints its counters on stderr and exits: requests, GETs of
 * objects, listings, 503s, the most connections open at once and the most
 * requests in flight at once (received, not yet answered).
 *
 * usage: s3-responder ROOT [--port P] [--delay-ms D] [--slowdown-rate R]
 *                         [--slowdown-above N]   (prints "port P" once listening) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* A request head larger than this closes the connection: S3's own limit is 8 KiB. */
#define MAX_HEAD (64 << 10)
#define MAX_KEYS 1000

struct object {
	char *key; /* without the bucket */
	char *data;
	size_t size;
	char md5[33];
	char modified[32]; /* ISO 8601, as listings give it */
	char http_date[40];
};

struct bucket {
	char *name;
	struct object *v;
	size_t n, cap;
};

struct buf {
	char *p;
	size_t len, cap;
};

struct conn {
	int fd;
	struct buf in, out;
	size_t out_off;
	const char *body; /* borrowed from an object, sent after out */
	size_t body_len;
	bool waiting;	  /* in the delay queue */
	bool close_after; /* Connection: close */
	int64_t due;
	struct conn *next_due;
};

static struct bucket *buckets;
static size_t nbuckets;
static int64_t delay_ns = 20 * 1000000LL;
static double slowdown_rate;
static long slowdown_above = -1;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static struct conn *due_head, *due_tail;
static long in_flight, open_conns;
static unsigned long long n_requests, n_gets, n_lists, n_slowdowns, peak_conns, peak_in_flight;

static void die(const char *what)
{
	perror(what);
	exit(3);
}

static void buf_need(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	if (!(b->p = realloc(b->p, cap)))
		die("s3-responder");
	b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_need(b, n + 1);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_need(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static uint64_t next_rand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

/* ---- the objects ---- */

static void add_file(struct bucket *b, const char *path, const char *key)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		die(path);
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 1024;
		if (!(b->v = realloc(b->v, b->cap * sizeof(*b->v))))
			die("s3-responder");
	}
	struct object *o = &b->v[b->n++];
	memset(o, 0, sizeof(*o));
	o->key = strdup(key);
	o->size = (size_t)st.st_size;
	o->data = malloc(o->size + 1);
	if (!o->key || !o->data)
		die("s3-responder");
	for (size_t got = 0; got < o->size;) {
		ssize_t r = read(fd, o->data + got, o->size - got);
		if (r <= 0)
			die(path);
		got += (size_t)r;
	}
	close(fd);
	unsigned char d[16];
	unsigned int dl = 0;
	EVP_Digest(o->data, o->size, d, &dl, EVP_md5(), NULL);
	for (int i = 0; i < 16; i++)
		snprintf(o->md5 + 2 * i, 3, "%02x", d[i]);
	struct tm tm;
	gmtime_r(&st.st_mtime, &tm);
	strftime(o->modified, sizeof(o->modified), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	strftime(o->http_date, sizeof(o->http_date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void walk(struct bucket *b, const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	if (!d)
		die(dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096], key[2048];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(key, sizeof(key), "%s%s", prefix, e->d_name);
		struct stat st;
		if (stat(path, &st))
			die(path);
		if (S_ISDIR(st.st_mode)) {
			strncat(key, "/", sizeof(key) - strlen(key) - 1);
			walk(b, path, key);
		} else if (S_ISREG(st.st_mode)) {
			add_file(b, path, key);
		}
	}
	closedir(d);
}

static int cmp_object(const void *a, const void *b)
{
	return strcmp(((const struct object *)a)->key, ((const struct object *)b)->key);
}

static void load(const char *root)
{
	DIR *d = opendir(root);
	if (!d)
		die(root);
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
		if (e->d_name[0] == '.' || stat(path, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (!(buckets = realloc(buckets, (nbuckets + 1) * sizeof(*buckets))))
			die("s3-responder");
		struct bucket *b = &buckets[nbuckets++];
		memset(b, 0, sizeof(*b));
		b->name = strdup(e->d_name);
		walk(b, path, "");
		qsort(b->v, b->n, sizeof(*b->v), cmp_object);
	}
	closedir(d);
}

static struct bucket *find_bucket(const char *name, size_t len)
{
	for (size_t i = 0; i < nbuckets; i++)
		if (strlen(buckets[i].name) == len && !memcmp(buckets[i].name, name, len))
			return &buckets[i];
	return NULL;
}

/* The first object whose key is >= key (strictly > when after). */
static size_t lower_bound(const struct bucket *b, const char *key, bool after)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(b->v[mid].key, key);
		if (c < 0 || (after && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- requests ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s + n) into out (cap bytes, NUL-terminated); '+' stays. */
static bool unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int h = i + 2 < n ? hexval(s[i + 1]) : -1;
			int l = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (h < 0 || l < 0)
				return false;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* The value of query parameter name (decoded into out), or false. */
static bool query_get(const char *q, size_t qn, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = q, *end = q + qn;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *kend = eq ? eq : stop;
		if ((size_t)(kend - p) == nl && !memcmp(p, name, nl)) {
			if (!eq) {
				if (cap)
					out[0] = '\0';
				return true;
			}
			return unescape(eq + 1, (size_t)(stop - eq - 1), out, cap);
		}
		p = stop + 1;
	}
	return false;
}

static void error_answer(struct conn *c, int status, const char *reason, const char *code)
{
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
			 "<Message>%s</Message></Error>",
			 code, code);
	buf_printf(&c->out,
		   "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
		   "x-amz-request-id: bench\r\n\r\n%s",
		   status, reason, n, body);
}

/* Adds s to the listing, escaped as the request asked. */
static void add_listed(struct buf *o, const char *s, bool url)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char ch = *p;
		if (url && !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || strchr("-_.~/", ch))) {
			buf_printf(o, "%%%02X", ch);
		} else if (!url && strchr("&<>\"'", ch)) {
			buf_printf(o, "&#%d;", ch);
		} else {
			buf_add(o, (const char *)p, 1);
		}
	}
}

static void list_v2(struct conn *c, const struct bucket *b, const char *q, size_t qn)
{
	char prefix[2048] = "", after[2048] = "", maxk[16] = "", enc[16] = "", tmp[8];
	query_get(q, qn, "prefix", prefix, sizeof(prefix));
	bool token = query_get(q, qn, "continuation-token", after, sizeof(after));
	if (!token)
		query_get(q, qn, "start-after", after, sizeof(after));
	if (query_get(q, qn, "delimiter", tmp, sizeof(tmp)))
		return error_answer(c, 501, "Not Implemented", "NotImplemented");
	query_get(q, qn, "max-keys", maxk, sizeof(maxk));
	query_get(q, qn, "encoding-type", enc, sizeof(enc));
	bool url = !strcmp(enc, "url");
	long max = maxk[0] ? strtol(maxk, NULL, 10) : MAX_KEYS;
	if (max < 0 || max > MAX_KEYS)
		max = MAX_KEYS;
	size_t plen = strlen(prefix);
	size_t i = after[0] ? lower_bound(b, after, true) : lower_bound(b, prefix, false);
	if (i < b->n && strcmp(b->v[i].key, prefix) < 0)
		i = lower_bound(b, prefix, false);
	struct buf body = {0};
	size_t n = 0;
	const char *last = "";
	struct buf items = {0};
	for (; i < b->n && n < (size_t)max && !strncmp(b->v[i].key, prefix, plen); i++, n++) {
		const struct object *o = &b->v[i];
		buf_add(&items, "<Contents><Key>", 15);
		add_listed(&items, o->key, url);
		buf_printf(&items,
			   "</Key><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
			   "<Size>%zu</Size><StorageClass>STANDARD</StorageClass></Contents>",
			   o->modified, o->md5, o->size);
		last = o->key;
	}
	bool truncated = i < b->n && !strncmp(b->v[i].key, prefix, plen);
	buf_printf(&body,
		   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
		   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>%s</Name><Prefix>",
		   b->name);
	add_listed(&body, prefix, url);
	buf_printf(&body, "</Prefix><KeyCount>%zu</KeyCount><MaxKeys>%ld</MaxKeys>"
			  "<IsTruncated>%s</IsTruncated>%s",
		   n, max, truncated ? "true" : "false",
		   url ? "<EncodingType>url</EncodingType>" : "");
	if (truncated) {
		buf_add(&body, "<NextContinuationToken>", 23);
		add_listed(&body, last, false);
		buf_add(&body, "</NextContinuationToken>", 24);
	}
	if (items.len)
		buf_add(&body, items.p, items.len);
	buf_add(&body, "</ListBucketResult>", 19);
	buf_printf(&c->out,
		   "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\n"
		   "x-amz-request-id: bench\r\n\r\n",
		   body.len);
	buf_add(&c->out, body.p, body.len);
	free(body.p);
	free(items.p);
	n_lists++;
}

static void object(struct conn *c, const struct bucket *b, const char *key, bool head)
{
	size_t i = lower_bound(b, key, false);
	if (i == b->n || strcmp(b->v[i].key, key))
		return error_answer(c, 404, "Not Found", "NoSuchKey");
	const struct object *o = &b->v[i];
	buf_printf(&c->out,
		   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		   "ETag: \"%s\"\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n"
		   "x-amz-request-id: bench\r\n\r\n",
		   o->size, o->md5, o->http_date);
	if (!head) {
		c->body = o->data;
		c->body_len = o->size;
	}
	n_gets++;
}

/* Answers the request whose head is [p, p + n) into c->out. */
static void dispatch(struct conn *c, const char *p, size_t n)
{
	const char *sp1 = memchr(p, ' ', n);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p)) : NULL;
	if (!sp2 || sp1[1] != '/')
		return error_answer(c, 400, "Bad Request", "InvalidRequest");
	bool get = sp1 - p == 3 && !memcmp(p, "GET", 3);
	bool head = sp1 - p == 4 && !memcmp(p, "HEAD", 4);
	const char *target = sp1 + 1, *qm = memchr(target, '?', (size_t)(sp2 - target));
	const char *path_end = qm ? qm : sp2;
	const char *q = qm ? qm + 1 : sp2;
	size_t qn = (size_t)(sp2 - q);
	const char *slash = memchr(target + 1, '/', (size_t)(path_end - target - 1));
	const char *bend = slash ? slash : path_end;
	struct bucket *b = find_bucket(target + 1, (size_t)(bend - target - 1));
	if (slowdown_rate > 0 && (double)(next_rand() >> 11) / 9007199254740992.0 < slowdown_rate)
		return n_slowdowns++, error_answer(c, 503, "Slow Down", "SlowDown");
	if (slowdown_above >= 0 && in_flight > slowdown_above)
		return n_slowdowns++, error_answer(c, 503, "Slow Down", "SlowDown");
	if (!b)
		return error_answer(c, 404, "Not Found", "NoSuchBucket");
	if (!get && !head)
		return error_answer(c, 501, "Not Implemented", "NotImplemented");
	if (slash && slash + 1 < path_end) {
		char key[2048];
		if (!unescape(slash + 1, (size_t)(path_end - slash - 1), key, sizeof(key)))
			return error_answer(c, 400, "Bad Request", "InvalidURI");
		return object(c, b, key, head);
	}
	char v[8];
	if (query_get(q, qn, "versioning", v, sizeof(v))) {
		static const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
					   "<VersioningConfiguration "
					   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>";
		buf_printf(&c->out,
			   "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
			   "Content-Length: %zu\r\n\r\n%s",
			   sizeof(body) - 1, body);
		return;
	}
	if (query_get(q, qn, "object-lock", v, sizeof(v)))
		return error_answer(c, 404, "Not Found", "ObjectLockConfigurationNotFoundError");
	if (query_get(q, qn, "list-type", v, sizeof(v)) && !strcmp(v, "2"))
		return list_v2(c, b, q, qn);
	error_answer(c, 501, "Not Implemented", "NotImplemented");
}

/* ---- connections ---- */

static int ep;

static void conn_close(struct conn *c)
{
	if (c->waiting)
		return; /* closed when its turn comes */
	close(c->fd);
	free(c->in.p);
	free(c->out.p);
	free(c);
	open_conns--;
}

/* Writes what is pending; true when all of it went. */
static bool flush(struct conn *c)
{
	while (c->out_off < c->out.len + c->body_len) {
		struct iovec iov[2];
		int k = 0;
		size_t off = c->out_off;
		if (off < c->out.len) {
			iov[k++] = (struct iovec){c->out.p + off, c->out.len - off};
			off = 0;
		} else {
			off -= c->out.len;
		}
		if (c->body_len > off)
			iov[k++] = (struct iovec){(char *)c->body + off, c->body_len - off};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (w <= 0) {
			c->close_after = true;
			c->out.len = c->body_len = c->out_off = 0;
			return true;
		}
		c->out_off += (size_t)w;
	}
	c->out.len = c->body_len = c->out_off = 0;
	c->body = NULL;
	return true;
}

/* Takes the next whole request from the input into the delay queue. */
static bool take_request(struct conn *c)
{
	if (c->waiting || c->out.len || c->body_len)
		return false;
	char *eoh = c->in.len ? memmem(c->in.p, c->in.len, "\r\n\r\n", 4) : NULL;
	if (!eoh) {
		if (c->in.len > MAX_HEAD)
			c->close_after = true;
		return false;
	}
	size_t head = (size_t)(eoh - c->in.p) + 4, len = 0;
	for (char *l = memchr(c->in.p, '\n', head); l && l < c->in.p + head;
	     l = memchr(l, '\n', (size_t)(c->in.p + head - l))) {
		l++;
		if (!strncasecmp(l, "Content-Length:", 15))
			len = strtoul(l + 15, NULL, 10);
		else if (!strncasecmp(l, "Connection:", 11) && strstr(l, "close") &&
			 strstr(l, "close") < (char *)memchr(l, '\n', (size_t)(c->in.p + head - l)))
			c->close_after = true;
	}
	if (c->in.len < head + len)
		return false;
	n_requests++;
	dispatch(c, c->in.p, head);
	memmove(c->in.p, c->in.p + head + len, c->in.len - head - len);
	c->in.len -= head + len;
	c->waiting = true;
	c->due = now_ns() + delay_ns;
	c->next_due = NULL;
	if (due_tail)
		due_tail->next_due = c;
	else
		due_head = c;
	due_tail = c;
	if (++in_flight > (long)peak_in_flight)
		peak_in_flight = (unsigned long long)in_flight;
	return true;
}

/* Reads what arrived; false when the peer is gone. */
static bool receive(struct conn *c)
{
	for (;;) {
		buf_need(&c->in, 16384);
		ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (r <= 0)
			return false;
		c->in.len += (size_t)r;
	}
}

static void on_event(struct conn *c, uint32_t ev)
{
	bool alive = !(ev & (EPOLLERR | EPOLLHUP));
	if (alive && (ev & EPOLLIN))
		alive = receive(c);
	if (alive && (c->out.len || c->body_len) && !c->waiting) {
		if (!flush(c))
			return;
		if (c->close_after)
			alive = false;
	}
	if (!alive) {
		c->close_after = true;
		conn_close(c);
		return;
	}
	take_request(c);
}

/* Answers the requests whose delay is over. */
static void answer_due(void)
{
	int64_t now = now_ns();
	while (due_head && due_head->due <= now) {
		struct conn *c = due_head;
		due_head = c->next_due;
		if (!due_head)
			due_tail = NULL;
		c->waiting = false;
		in_flight--;
		if (flush(c) && c->close_after) {
			conn_close(c);
			continue;
		}
		if (!c->out.len && !c->body_len)
			take_request(c);
	}
}

static void accept_all(int ls)
{
	for (;;) {
		int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c)
			die("s3-responder");
		c->fd = fd;
		struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP,
					.data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e))
			die("epoll_ctl");
		if (++open_conns > (long)peak_conns)
			peak_conns = (unsigned long long)open_conns;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: s3-responder ROOT [--port P] [--delay-ms D] [--slowdown-rate R] "
			"[--slowdown-above N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int port = 0;
	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--delay-ms"))
			delay_ns = (int64_t)(strtod(argv[++i], NULL) * 1e6);
		else if (!strcmp(argv[i], "--slowdown-rate"))
			slowdown_rate = strtod(argv[++i], NULL);
		else if (!strcmp(argv[i], "--slowdown-above"))
			slowdown_above = strtol(argv[++i], NULL, 10);
		else
			usage();
	}
	load(argv[1]);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (sfd < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096) ||
	    getsockname(ls, (struct sockaddr *)&a, &al))
		die("s3-responder");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	static int listen_tag, signal_tag;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = &listen_tag};
	struct epoll_event se = {.events = EPOLLIN, .data.ptr = &signal_tag};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e) || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &se))
		die("epoll_ctl");
	size_t objects = 0;
	for (size_t i = 0; i < nbuckets; i++)
		objects += buckets[i].n;
	printf("port %d\n", ntohs(a.sin_port));
	fprintf(stderr, "s3-responder: %zu objects in %zu buckets, %.1f ms delay\n", objects,
		nbuckets, (double)delay_ns / 1e6);
	fflush(stdout);
	struct epoll_event evs[256];
	for (;;) {
		int timeout = -1;
		if (due_head) {
			int64_t left = due_head->due - now_ns();
			timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
		}
		int n = epoll_wait(ep, evs, 256, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &listen_tag) {
				accept_all(ls);
			} else if (evs[i].data.ptr == &signal_tag) {
				fprintf(stderr,
					"s3-responder: requests %llu gets %llu lists %llu slowdowns "
					"%llu peak_connections %llu peak_in_flight %llu\n",
					n_requests, n_gets, n_lists, n_slowdowns, peak_conns,
					peak_in_flight);
				fflush(stderr);
				_exit(0);
			} else {
				on_event(evs[i].data.ptr, evs[i].events);
			}
		}
		answer_due();
	}
}
