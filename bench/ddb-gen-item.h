/* The synthetic items of the restore and reconcile benchmarks, shared by
 * bench/ddb-log-gen.c (which writes their history) and bench/ddb-responder.c
 * (which serves their final states as a table): item I at version V (1 for
 * the INSERT, 2 for the MODIFY, the final state) as DynamoDB JSON, a pure
 * function of I and V. Keys: UserId "user%09u", ActivityId "act-%02u". */
#ifndef DDB_GEN_ITEM_H
#define DDB_GEN_ITEM_H

#include <stdint.h>
#include <stdio.h>

#define BENCH_BASE_TIME 1752278400u /* 2025-07-12T00:00:00Z */

static const char *const bench_types[] = {"LOGIN", "LOGOUT", "PURCHASE", "VIEW", "SEARCH", "SHARE"};
static const char *const bench_tags[] = {"mobile", "web", "eu", "us", "beta", "vip", "new", "returning"};

/* Writes item i's key attributes' values into user (>= 16 bytes) and act (>= 8). */
static inline void bench_key(uint32_t i, char *user, char *act)
{
	snprintf(user, 16, "user%09u", i);
	snprintf(act, 8, "act-%02u", i % 97);
}

/* Writes the image; returns its length (< size, which must be >= 512). */
static inline int bench_item(uint32_t i, unsigned version, char *out, size_t size)
{
	uint32_t h = (i + 1) * 2654435761u ^ version * 40503u;
	char user[16], act[8];
	bench_key(i, user, act);
	int n = snprintf(out, size,
			 "{\"UserId\":{\"S\":\"%s\"},\"ActivityId\":{\"S\":\"%s\"},"
			 "\"ActivityType\":{\"S\":\"%s\"},\"Timestamp\":{\"N\":\"%u\"},"
			 "\"Version\":{\"N\":\"%u\"},\"IPAddress\":{\"S\":\"10.%u.%u.%u\"},"
			 "\"Amount\":{\"N\":\"%u.%02u\"},\"Tags\":{\"SS\":[\"%s\",\"%s\",\"%s\"]}",
			 user, act, bench_types[(i + version) % 6], BENCH_BASE_TIME + version * 3600 + i % 3600,
			 version, h >> 24, (h >> 16) & 0xff, 1 + (h >> 8) % 254, 1 + h % 99999 / 100,
			 1 + h % 99, bench_tags[h % 8], bench_tags[(h % 8 + 1 + (h >> 3) % 3) % 8],
			 bench_tags[(h % 8 + 4 + (h >> 5) % 3) % 8]);
	if (i % 3 == 0)
		n += snprintf(out + n, size - (size_t)n,
			      ",\"Details\":{\"M\":{\"device\":{\"S\":\"%s\"},\"verified\":{\"BOOL\":true},"
			      "\"steps\":{\"L\":[{\"N\":\"1\"},{\"N\":\"%u\"}]}}}",
			      (const char *const[]){"ios", "android", "web"}[h % 3], version);
	out[n++] = '}';
	out[n] = 0;
	return n;
}

#endif
