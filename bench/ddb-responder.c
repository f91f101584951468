/* A fast local DynamoDB endpoint for the restore and reconcile benchmarks:
 * enough of the JSON 1.0 protocol to measure a client, not DynamoDB.
 *
 * Table TABLE (default "items") holds N items, item I being bench_item(I, 2)
 * of bench/ddb-gen-item.h (the final states bench/ddb-log-gen.c writes);
 * every other table name is an empty table that takes writes and keeps
 * nothing. Operations: DescribeTable (UserId HASH S, ActivityId RANGE S),
 * Scan (Segment/TotalSegments: segment S holds the items I with
 * I % TotalSegments == S, in index order; ExclusiveStartKey; pages of about
 * 1 MB or Limit items; ConsumedCapacity when asked), GetItem and
 * BatchWriteItem (counted: puts, deletes and the sum of the put items'
 * indexes, printed on stderr at SIGTERM/SIGINT, so a driver can check that
 * every item arrived). No signature check, no persistence. HTTP/1.1 with
 * keep-alive, one thread a connection, Content-Length bodies only.
 *
 * usage: ddb-responder N [PORT] [TABLE]   (prints "port P" once listening) */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ddb-gen-item.h"

#define PAGE_BYTES (1u << 20)

static uint32_t n_items;
static const char *table = "items";
static atomic_ullong n_puts, n_deletes, put_index_sum, n_requests, n_scanned;

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_need(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (!b->p) {
		perror("ddb-responder");
		exit(3);
	}
	b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_need(b, n + 1);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define BUF_LIT(b, s) buf_add((b), (s), sizeof(s) - 1)

static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool answer(int fd, int status, const struct buf *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/x-amz-json-1.0\r\n"
			 "x-amzn-RequestId: bench\r\nContent-Length: %zu\r\n\r\n",
			 status, status == 200 ? "OK" : "Bad Request", body->len);
	return send_all(fd, head, (size_t)n) && send_all(fd, body->p, body->len);
}

static void fail(struct buf *out, const char *type, const char *msg)
{
	out->len = 0;
	char s[512];
	int n = snprintf(s, sizeof(s), "{\"__type\":\"com.amazonaws.dynamodb.v20120810#%s\",\"message\":\"%s\"}",
			 type, msg);
	buf_add(out, s, (size_t)n);
}

/* The index of the item keyed by key ({"UserId":{"S":..},"ActivityId":..}),
 * or -1 when it is not one of the table's. */
static int64_t key_index(json_t *key)
{
	const char *u = json_string_value(json_object_get(json_object_get(key, "UserId"), "S"));
	const char *a = json_string_value(json_object_get(json_object_get(key, "ActivityId"), "S"));
	if (!u || !a || strncmp(u, "user", 4) || strlen(u) != 13)
		return -1;
	char *end;
	unsigned long i = strtoul(u + 4, &end, 10);
	char user[16], act[8];
	if (*end || i >= n_items)
		return -1;
	bench_key((uint32_t)i, user, act);
	return strcmp(act, a) ? -1 : (int64_t)i;
}

static bool is_items(json_t *req)
{
	const char *t = json_string_value(json_object_get(req, "TableName"));
	return t && !strcmp(t, table);
}

static int describe(json_t *req, struct buf *out)
{
	const char *t = json_string_value(json_object_get(req, "TableName"));
	if (!t)
		return fail(out, "ValidationException", "TableName is required"), 400;
	char s[1024];
	int n = snprintf(s, sizeof(s),
			 "{\"Table\":{\"TableName\":\"%s\",\"TableArn\":\"arn:aws:dynamodb:us-east-1:"
			 "123456789012:table/%s\",\"TableStatus\":\"ACTIVE\",\"KeySchema\":["
			 "{\"AttributeName\":\"UserId\",\"KeyType\":\"HASH\"},{\"AttributeName\":"
			 "\"ActivityId\",\"KeyType\":\"RANGE\"}],\"AttributeDefinitions\":["
			 "{\"AttributeName\":\"UserId\",\"AttributeType\":\"S\"},{\"AttributeName\":"
			 "\"ActivityId\",\"AttributeType\":\"S\"}],\"ItemCount\":%u,"
			 "\"BillingModeSummary\":{\"BillingMode\":\"PAY_PER_REQUEST\"},"
			 "\"CreationDateTime\":1752278400}}",
			 t, t, is_items(req) ? n_items : 0);
	buf_add(out, s, (size_t)n);
	return 200;
}

static int scan(json_t *req, struct buf *out)
{
	json_int_t seg = json_integer_value(json_object_get(req, "Segment"));
	json_int_t segs = json_object_get(req, "TotalSegments")
			      ? json_integer_value(json_object_get(req, "TotalSegments"))
			      : 1;
	json_int_t limit = json_integer_value(json_object_get(req, "Limit"));
	if (segs < 1 || segs > 1000000 || seg < 0 || seg >= segs || limit < 0)
		return fail(out, "ValidationException", "bad Segment, TotalSegments or Limit"), 400;
	uint64_t i = (uint64_t)seg;
	json_t *esk = json_object_get(req, "ExclusiveStartKey");
	if (esk) {
		int64_t at = key_index(esk);
		if (at < 0 || (uint64_t)at % (uint64_t)segs != (uint64_t)seg)
			return fail(out, "ValidationException", "bad ExclusiveStartKey"), 400;
		i = (uint64_t)at + (uint64_t)segs;
	}
	uint64_t end = is_items(req) ? n_items : 0, count = 0, last = 0;
	BUF_LIT(out, "{\"Items\":[");
	size_t start = out->len;
	for (; i < end; i += (uint64_t)segs) {
		if (count)
			BUF_LIT(out, ",");
		buf_need(out, 1024);
		out->len += (size_t)bench_item((uint32_t)i, 2, out->p + out->len, 1024);
		last = i;
		count++;
		if ((limit && count == (uint64_t)limit) || out->len - start >= PAGE_BYTES)
			break;
	}
	size_t bytes = out->len - start;
	n_scanned += count;
	char s[256];
	int n = snprintf(s, sizeof(s), "],\"Count\":%llu,\"ScannedCount\":%llu", (unsigned long long)count,
			 (unsigned long long)count);
	buf_add(out, s, (size_t)n);
	if (i < end && i + (uint64_t)segs < end) {
		char user[16], act[8];
		bench_key((uint32_t)last, user, act);
		n = snprintf(s, sizeof(s),
			     ",\"LastEvaluatedKey\":{\"UserId\":{\"S\":\"%s\"},\"ActivityId\":{\"S\":\"%s\"}}",
			     user, act);
		buf_add(out, s, (size_t)n);
	}
	if (json_object_get(req, "ReturnConsumedCapacity")) {
		double units = (double)((bytes + 4095) / 4096) / (json_is_true(json_object_get(req, "ConsistentRead")) ? 1 : 2);
		n = snprintf(s, sizeof(s), ",\"ConsumedCapacity\":{\"TableName\":\"%s\",\"CapacityUnits\":%.1f}",
			     json_string_value(json_object_get(req, "TableName")), units);
		buf_add(out, s, (size_t)n);
	}
	BUF_LIT(out, "}");
	return 200;
}

static int get_item(json_t *req, struct buf *out)
{
	int64_t i = is_items(req) ? key_index(json_object_get(req, "Key")) : -1;
	if (i < 0) {
		BUF_LIT(out, "{}");
		return 200;
	}
	BUF_LIT(out, "{\"Item\":");
	buf_need(out, 1024);
	out->len += (size_t)bench_item((uint32_t)i, 2, out->p + out->len, 1024);
	BUF_LIT(out, "}");
	return 200;
}

static int batch_write(json_t *req, struct buf *out)
{
	json_t *all = json_object_get(req, "RequestItems");
	const char *name;
	json_t *reqs;
	if (!json_is_object(all))
		return fail(out, "ValidationException", "RequestItems is required"), 400;
	json_object_foreach (all, name, reqs) {
		size_t k;
		json_t *r;
		json_array_foreach (reqs, k, r) {
			json_t *put = json_object_get(json_object_get(r, "PutRequest"), "Item");
			if (put) {
				int64_t i = key_index(put);
				n_puts++;
				put_index_sum += i < 0 ? 0 : (unsigned long long)i;
			} else if (json_object_get(r, "DeleteRequest")) {
				n_deletes++;
			} else {
				return fail(out, "ValidationException", "neither a PutRequest nor a DeleteRequest"), 400;
			}
		}
	}
	BUF_LIT(out, "{\"UnprocessedItems\":{}}");
	return 200;
}

static int dispatch(const char *op, const char *body, size_t len, struct buf *out)
{
	json_error_t e;
	json_t *req = json_loadb(body, len, 0, &e);
	if (!json_is_object(req)) {
		json_decref(req);
		return fail(out, "SerializationException", "the body is not a JSON object"), 400;
	}
	int status;
	if (!strcmp(op, "DescribeTable"))
		status = describe(req, out);
	else if (!strcmp(op, "Scan"))
		status = scan(req, out);
	else if (!strcmp(op, "GetItem"))
		status = get_item(req, out);
	else if (!strcmp(op, "BatchWriteItem"))
		status = batch_write(req, out);
	else
		status = (fail(out, "UnknownOperationException", "not served by ddb-responder"), 400);
	json_decref(req);
	return status;
}

/* The value of header name in the head [p, p + n) (NUL-terminated into
 * val), or false. */
static bool header(const char *p, size_t n, const char *name, char *val, size_t size)
{
	size_t nl = strlen(name);
	for (const char *line = memchr(p, '\n', n); line && line < p + n; line = memchr(line, '\n', (size_t)(p + n - line))) {
		line++;
		if ((size_t)(p + n - line) > nl + 1 && !strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1, *e = memchr(v, '\r', (size_t)(p + n - v));
			while (v < e && *v == ' ')
				v++;
			size_t l = (size_t)(e - v) < size - 1 ? (size_t)(e - v) : size - 1;
			memcpy(val, v, l);
			val[l] = 0;
			return true;
		}
	}
	return false;
}

/* Reads what comes (room for at least want bytes); false at the end of the
 * connection. */
static bool receive(int fd, struct buf *in, size_t want)
{
	buf_need(in, want);
	for (;;) {
		ssize_t r = recv(fd, in->p + in->len, in->cap - in->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		in->len += (size_t)r;
		return true;
	}
}

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct buf in = {0}, out = {0};
	for (;;) {
		char *eoh = NULL;
		while (!(in.len && (eoh = memmem(in.p, in.len, "\r\n\r\n", 4))))
			if (!receive(fd, &in, 65536))
				goto done;
		size_t head = (size_t)(eoh - in.p) + 4;
		char val[128], op[128] = "";
		if (header(in.p, head, "Transfer-Encoding", val, sizeof(val)))
			goto done; /* chunked bodies are not served */
		size_t len = header(in.p, head, "Content-Length", val, sizeof(val)) ? strtoul(val, NULL, 10) : 0;
		if (header(in.p, head, "X-Amz-Target", val, sizeof(val))) {
			const char *dot = strrchr(val, '.');
			snprintf(op, sizeof(op), "%s", dot ? dot + 1 : val);
		}
		if (header(in.p, head, "Expect", val, sizeof(val)) && !strcasecmp(val, "100-continue") &&
		    !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			goto done;
		while (in.len < head + len)
			if (!receive(fd, &in, head + len - in.len))
				goto done;
		n_requests++;
		out.len = 0;
		int status = dispatch(op, in.p + head, len, &out);
		if (!answer(fd, status, &out))
			goto done;
		memmove(in.p, in.p + head + len, in.len - head - len);
		in.len -= head + len;
	}
done:
	close(fd);
	free(in.p);
	free(out.p);
	return NULL;
}

static void *report_at_signal(void *arg)
{
	sigset_t *set = arg;
	int sig;
	sigwait(set, &sig);
	fprintf(stderr, "ddb-responder: requests %llu scanned %llu puts %llu deletes %llu put_index_sum %llu\n",
		(unsigned long long)n_requests, (unsigned long long)n_scanned, (unsigned long long)n_puts,
		(unsigned long long)n_deletes, (unsigned long long)put_index_sum);
	fflush(stderr);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: ddb-responder N [PORT] [TABLE]\n");
		return 2;
	}
	n_items = (uint32_t)strtoul(argv[1], NULL, 10);
	int port = argc > 2 ? atoi(argv[2]) : 0;
	if (argc > 3)
		table = argv[3];
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t t;
	pthread_create(&t, NULL, report_at_signal, &set);
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 256) ||
	    getsockname(s, (struct sockaddr *)&a, &al)) {
		perror("ddb-responder");
		return 3;
	}
	printf("port %d\n", ntohs(a.sin_port));
	fflush(stdout);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pthread_create(&t, &attr, serve, (void *)(intptr_t)c))
			close(c);
	}
}
