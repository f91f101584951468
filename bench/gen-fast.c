/* Writes a clean audit log as seed-format NDJSON on stdout, fast enough to
 * feed ddbaudit 100M records without a file on disk: N records over M items
 * (default N/10), each item an INSERT, then MODIFYs, one an hour from hour
 * i % 16 of 2025-07-12, every tenth item ending with a REMOVE: the shape of
 * bench/gen-bench's records, and like them an audit finds nothing. Every
 * image is a pure function of (item, version), so a MODIFY's old image is
 * written again rather than remembered and memory stays constant. Records
 * come out hour by hour (not sorted within an hour: the audit sorts).
 * usage: gen-fast -n N [-m ITEMS] */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BASE_TIME 1752278400 /* 2025-07-12T00:00:00Z */
#define START_HOURS 16	     /* items start in the first 16 hours */
#define OUT_BUF (1u << 20)

static const char *const types[] = {"LOGIN", "LOGOUT", "PURCHASE", "VIEW", "SEARCH", "SHARE"};
static const char *const tags[] = {"mobile", "web", "eu", "us", "beta", "vip", "new", "returning"};
static const char *const devices[] = {"ios", "android", "web"};

static char out[OUT_BUF + 8192];
static size_t out_len;

static void flush_out(void)
{
	if (out_len && fwrite(out, 1, out_len, stdout) != out_len) {
		perror("gen-fast: stdout");
		exit(3);
	}
	out_len = 0;
}

static inline uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static inline char *put(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

static inline char *put_u(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Zero-padded to width digits. */
static inline char *put_w(char *p, uint64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

static char *put_key(char *p, uint32_t i, bool attr)
{
	p = put(p, attr ? "\"UserId\":{\"S\":\"user" : "\"userId\":\"user");
	p = put_w(p, i, 9);
	p = put(p, attr ? "\"},\"ActivityId\":{\"S\":\"act-" : "\",\"activityId\":\"act-");
	p = put_w(p, i % 97, 2);
	return put(p, attr ? "\"}" : "\"");
}

/* Item i at version v (1 = the INSERT). */
static char *put_image(char *p, uint32_t i, uint32_t v)
{
	uint64_t h = mix((uint64_t)i << 20 ^ v);
	*p++ = '{';
	p = put_key(p, i, true);
	p = put(p, ",\"ActivityType\":{\"S\":\"");
	p = put(p, types[(i + v) % 6]);
	p = put(p, "\"},\"Timestamp\":{\"N\":\"");
	p = put_u(p, BASE_TIME + (uint64_t)(i % START_HOURS + v - 1) * 3600 + h % 3600);
	p = put(p, "\"},\"Version\":{\"N\":\"");
	p = put_u(p, v);
	p = put(p, "\"},\"IPAddress\":{\"S\":\"10.");
	p = put_u(p, h >> 56);
	*p++ = '.';
	p = put_u(p, (h >> 48) & 0xff);
	*p++ = '.';
	p = put_u(p, 1 + (h >> 40) % 254);
	p = put(p, "\"},\"Amount\":{\"N\":\"");
	p = put_u(p, 1 + (h >> 20) % 999);
	*p++ = '.';
	/* Two decimals never ending in 0, as a number is written canonically. */
	uint64_t cents = 1 + (h >> 10) % 99;
	p = put_w(p, cents % 10 ? cents : cents + 1, 2);
	p = put(p, "\"},\"Tags\":{\"SS\":[\"");
	unsigned t = (unsigned)(h % 8);
	p = put(p, tags[t]);
	p = put(p, "\",\"");
	p = put(p, tags[(t + 1 + (h >> 3) % 3) % 8]);
	p = put(p, "\",\"");
	p = put(p, tags[(t + 4 + (h >> 5) % 3) % 8]);
	p = put(p, "\"]}");
	if (v % 3 == 0) {
		p = put(p, ",\"Details\":{\"M\":{\"device\":{\"S\":\"");
		p = put(p, devices[h % 3]);
		p = put(
		    p,
		    "\"},\"verified\":{\"BOOL\":true},\"steps\":{\"L\":[{\"N\":\"1\"},{\"N\":\"");
		p = put_u(p, v);
		p = put(p, "\"}]}}}");
	}
	*p++ = '}';
	return p;
}

/* The record of item i's change k (0 = INSERT) in an hour whose date and
 * hour are already formatted as "2025-07-12T05:". */
static void record(uint32_t i, uint32_t k, bool remove, const char *hour_prefix)
{
	char *p = out + out_len;
	uint64_t h = mix((uint64_t)i << 24 ^ k ^ 0x5bd1e995u);
	uint64_t secs = 60 + h % 3480, us = (h >> 32) % 1000000;
	p = put(p, "{\"timestamp\":\"");
	p = put(p, hour_prefix);
	p = put_w(p, secs / 60, 2);
	*p++ = ':';
	p = put_w(p, secs % 60, 2);
	*p++ = '.';
	p = put_w(p, us, 6);
	p = put(p, "\",\"eventName\":\"");
	p = put(p, k == 0 ? "INSERT" : remove ? "REMOVE" : "MODIFY");
	p = put(p, "\",");
	p = put_key(p, i, false);
	p = put(p, ",\"awsRegion\":\"us-east-1\",\"eventSource\":\"aws:dynamodb\"");
	if (k > 0) {
		p = put(p, ",\"oldImage\":");
		p = put_image(p, i, k);
	}
	if (!remove) {
		p = put(p, ",\"newImage\":");
		p = put_image(p, i, k + 1);
	}
	p = put(p, "}\n");
	out_len = (size_t)(p - out);
	if (out_len >= OUT_BUF)
		flush_out();
}

static int usage(void)
{
	fprintf(stderr, "usage: gen-fast -n RECORDS [-m ITEMS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t n = 0, m = 0;
	for (int a = 1; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "-n"))
			n = strtoull(argv[a + 1], NULL, 10);
		else if (!strcmp(argv[a], "-m"))
			m = strtoull(argv[a + 1], NULL, 10);
		else
			return usage();
	}
	if (argc % 2 == 0 || !n || n > 100000000000u)
		return usage();
	if (!m)
		m = n / 10 ? n / 10 : 1;
	if (m > n || m > 999999999u) {
		fprintf(stderr, "gen-fast: ITEMS must be 1 to min(RECORDS, 999999999)\n");
		return 2;
	}
	/* Item i has per or per + 1 changes: exactly n in all. */
	uint64_t per = n / m, extra = n % m;
	uint64_t hours = START_HOURS + per + (extra ? 1 : 0);
	for (uint64_t hr = 0; hr < hours; hr++) {
		char prefix[32];
		time_t t = (time_t)(BASE_TIME + hr * 3600);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:", &tm);
		for (uint32_t start = 0; start < START_HOURS && start <= hr; start++) {
			uint64_t k = hr - start;
			for (uint64_t i = start; i < m; i += START_HOURS) {
				uint64_t count = per + (i < extra);
				if (k >= count)
					continue;
				bool last = k == count - 1 && k > 0 && i % 10 == 0;
				record((uint32_t)i, (uint32_t)k, last, prefix);
			}
		}
	}
	flush_out();
	return fflush(stdout) ? 3 : 0;
}
