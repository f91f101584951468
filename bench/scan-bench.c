/* How much CPU the decoder's fast path (dda__scan_seed: validate, serialize
 * and digest a seed record) spends a record, alone: no reading thread, no
 * queue, no history. Reads NDJSON lines from stdin into memory, scans each
 * of them `repeat` times over, prints records, how many the fast path took,
 * and CPU ns a record. Deterministic enough under valgrind's callgrind to
 * compare two builds on a busy machine by instructions (bench/scan-run).
 *
 * build: cc -O2 -Iinclude -Isrc bench/scan-bench.c build/libddbaudit.a \
 *          $(pkg-config --libs jansson libarchive libdeflate zlib libcurl expat libcrypto) \
 *          -lpthread -lm -o /tmp/scan-bench
 * usage: zcat records.ndjson.gz | head -100000 | /tmp/scan-bench [REPEAT] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record/scan.h"

static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	int repeat = argc > 1 ? atoi(argv[1]) : 1;
	struct dda_buf in;
	dda_buf_init(&in, DDA_BUF_UNLIMITED);
	char block[1 << 16];
	size_t n;
	while ((n = fread(block, 1, sizeof(block), stdin)) > 0)
		if (dda_buf_add(&in, block, n)) {
			fprintf(stderr, "scan-bench: out of memory\n");
			return 1;
		}
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	struct dda__scanner *s = dda__scanner_new();
	if (!s || !in.len)
		return 1;
	unsigned long recs = 0, taken = 0;
	double t = cpu();
	for (int r = 0; r < repeat; r++) {
		const char *p = in.ptr, *end = in.ptr + in.len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			struct dda__scan_out so;
			int rc = dda__scan_seed(s, &o, p, (size_t)(le - p), true, &so);
			recs++;
			taken += rc == DDA_SCAN_RECORD;
			p = le + 1;
		}
	}
	t = cpu() - t;
	printf("%lu records, %lu taken by the fast path, %.0f CPU ns a record\n", recs, taken,
	       t * 1e9 / (double)recs);
	dda__scanner_free(s);
	dda_buf_release(&in);
	return taken == recs ? 0 : 2;
}
