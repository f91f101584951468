/* How fast dda_gunzip inflates gzip objects (libdeflate, zlib deciding what
 * it refuses) against zlib alone, on the bytes of an NDJSON file: as one
 * member, and cut into objects of N lines each gzipped on its own (the audit
 * objects of S3, a directory or an archive). Prints CPU seconds and MB/s of
 * output for each way; checks that both give the same bytes.
 *
 * build: cc -O2 -Iinclude -Isrc bench/gunzip-bench.c build/libddbaudit.a \
 *          $(pkg-config --libs libdeflate zlib libcrypto) -o /tmp/gunzip-bench
 * usage: zcat records.ndjson.gz | head -200000 | /tmp/gunzip-bench LINES_PER_OBJECT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "source/source_impl.h"

static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* p[0..n) as one gzip member at level 6, appended to out. */
static void gz(struct dda_buf *out, const char *p, size_t n)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		exit(1);
	size_t cap = deflateBound(&z, (uLong)n) + 64;
	if (dda_buf_grow(out, cap))
		exit(1);
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out->ptr + out->len;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		exit(1);
	out->len += cap - z.avail_out;
	deflateEnd(&z);
}

typedef int (*gunzip_fn)(const void *, size_t, struct dda_buf *, struct dda_error *);

/* Inflates every object; returns CPU seconds, adds the output to *bytes. */
static double run(gunzip_fn f, struct dda_buf *objs, size_t n, size_t *bytes,
		  struct dda_buf *check)
{
	double t0 = cpu();
	for (size_t i = 0; i < n; i++) {
		struct dda_buf out;
		struct dda_error err = {0};
		dda_buf_init(&out, (size_t)1 << 30);
		if (f(objs[i].ptr, objs[i].len, &out, &err))
			exit(2);
		*bytes += out.len;
		if (check && dda_buf_add(check, out.ptr, out.len))
			exit(1);
		dda_buf_release(&out);
	}
	return cpu() - t0;
}

int main(int argc, char **argv)
{
	long per = argc > 1 ? atol(argv[1]) : 1;
	struct dda_buf text;
	dda_buf_init(&text, DDA_BUF_UNLIMITED);
	char line[1 << 16];
	size_t nobj = 0, cap = 0, lines = 0;
	struct dda_buf *objs = NULL;
	size_t start = 0;
	while (fgets(line, sizeof(line), stdin)) {
		if (dda_buf_adds(&text, line))
			return 1;
		if (++lines % (size_t)per)
			continue;
		if (nobj == cap && !(objs = realloc(objs, (cap = cap ? 2 * cap : 1024) * sizeof(*objs))))
			return 1;
		dda_buf_init(&objs[nobj], DDA_BUF_UNLIMITED);
		gz(&objs[nobj++], text.ptr + start, text.len - start);
		start = text.len;
	}
	size_t a = 0, b = 0;
	struct dda_buf ca, cb;
	dda_buf_init(&ca, DDA_BUF_UNLIMITED);
	dda_buf_init(&cb, DDA_BUF_UNLIMITED);
	double tz = run(dda__gunzip_zlib, objs, nobj, &a, &ca);
	double tf = run(dda_gunzip, objs, nobj, &b, &cb);
	if (a != b || ca.len != cb.len || memcmp(ca.ptr, cb.ptr, ca.len))
		return 3;
	printf("%zu objects of %ld lines, %.1f MB: zlib %.3f CPU s (%.0f MB/s), dda_gunzip %.3f "
	       "CPU s (%.0f MB/s), %.2fx\n",
	       nobj, per, a / 1e6, tz, a / 1e6 / tz, tf, b / 1e6 / tf, tz / tf);
	return 0;
}
