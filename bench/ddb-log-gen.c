/* Writes the audit log of the restore and reconcile benchmarks: N items,
 * each an INSERT (version 1) then a MODIFY to version 2, as seed-format
 * records ordered by time (all INSERTs from 2025-07-12T00:00Z one
 * microsecond apart, then all MODIFYs from 01:00Z), as DIR/vV-NNNNN.json.gz,
 * 10,000 records an object (one JSON record a line; not under an hour
 * prefix, where the seed layout wants one object an item). Restore needs
 * objects it can read again, which an NDJSON stream is not. The MODIFYs' new images are the
 * items bench/ddb-responder.c serves, so a reconcile of the two is clean.
 * usage: ddb-log-gen N DIR [GZIP_LEVEL] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "ddb-gen-item.h"

#define OBJECT_RECORDS 10000

static int stamp(uint32_t hour, uint32_t i, char *out)
{
	uint32_t s = i / 1000000, us = i % 1000000;
	return snprintf(out, 32, "2025-07-12T%02u:%02u:%02u.%06u", hour + s / 3600, s / 60 % 60,
			s % 60, us);
}

static void close_or_exit(gzFile f)
{
	if (gzclose(f) != Z_OK) {
		fprintf(stderr, "ddb-log-gen: write failed\n");
		exit(3);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: ddb-log-gen N DIR [GZIP_LEVEL]\n");
		return 2;
	}
	uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
	if (n == 0 || n > 1000000000u) {
		fprintf(stderr, "ddb-log-gen: N must be 1 to 1,000,000,000\n");
		return 2;
	}
	char mode[8], path[4096];
	snprintf(mode, sizeof(mode), "wb%s", argc == 4 ? argv[3] : "1");
	size_t at = (size_t)snprintf(path, sizeof(path), "%s", argv[2]);
	if (mkdir(path, 0755)) {
		perror(path);
		return 3;
	}
	gzFile f = NULL;
	static char line[4096];
	char img[1024], old[1024], ts[32], user[16], act[8];
	for (unsigned version = 1; version <= 2; version++) {
		for (uint32_t i = 0; i < n; i++) {
			if (i % OBJECT_RECORDS == 0) {
				if (f)
					close_or_exit(f);
				snprintf(path + at, sizeof(path) - at, "/v%u-%05u.json.gz", version,
					 i / OBJECT_RECORDS);
				f = gzopen(path, mode);
				if (!f || gzbuffer(f, 1 << 20)) {
					fprintf(stderr, "ddb-log-gen: cannot write %s\n", path);
					return 3;
				}
			}
			stamp(version - 1, i, ts);
			bench_key(i, user, act);
			bench_item(i, version, img, sizeof(img));
			int len;
			if (version == 1) {
				len = snprintf(line, sizeof(line),
					       "{\"timestamp\":\"%s\",\"eventName\":\"INSERT\",\"userId\":\"%s\","
					       "\"activityId\":\"%s\",\"awsRegion\":\"us-east-1\","
					       "\"eventSource\":\"aws:dynamodb\",\"newImage\":%s}\n",
					       ts, user, act, img);
			} else {
				bench_item(i, 1, old, sizeof(old));
				len = snprintf(line, sizeof(line),
					       "{\"timestamp\":\"%s\",\"eventName\":\"MODIFY\",\"userId\":\"%s\","
					       "\"activityId\":\"%s\",\"awsRegion\":\"us-east-1\","
					       "\"eventSource\":\"aws:dynamodb\",\"oldImage\":%s,\"newImage\":%s}\n",
					       ts, user, act, old, img);
			}
			if (gzwrite(f, line, (unsigned)len) != len) {
				fprintf(stderr, "ddb-log-gen: write failed\n");
				return 3;
			}
		}
		close_or_exit(f);
		f = NULL;
	}
	return 0;
}
