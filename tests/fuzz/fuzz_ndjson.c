/* libFuzzer target for the NDJSON source (line splitting, the line cap,
 * gzip detection and damaged gzip streams) feeding the decoder. The first
 * byte picks the cap (1 to 1021 bytes, so lines around it are common), the
 * second whether the rest is given gzip-compressed; the rest is the file.
 * Checked against a plain split of the bytes: every line within the cap is
 * handed out, whole and in order, under its own line number; every line over
 * it is exactly one UNREADABLE chunk naming that line; nothing is lost before
 * or after a long line; chunks end the object once; and record indexes never
 * run into the next chunk's (replay tells records apart by them). */
#include "fuzz_check.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "ddbaudit/record.h"
#include "ddbaudit/source.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The highest index a chunk's records and findings used. */
struct seen_index {
	int64_t max;
};

static int on_record(void *ctx, const struct dda_record *r)
{
	struct seen_index *s = ctx;
	s->max = DDA_MAX(s->max, (int64_t)r->index);
	return 0;
}

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	struct seen_index *s = ctx;
	if (a->obj != DDA_NO_OBJECT)
		s->max = DDA_MAX(s->max, (int64_t)a->index);
	dda_anomaly_release(a);
	return 0;
}

/* The rest of the input as a gzip file, or NULL when it does not fit. */
static unsigned char *gzip_of(const uint8_t *p, size_t n, size_t *out)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&z, (uLong)n) + 64;
	unsigned char *b = malloc(cap);
	z.next_in = (unsigned char *)p;
	z.avail_in = (uInt)n;
	z.next_out = b;
	z.avail_out = (uInt)cap;
	if (!b || deflate(&z, Z_FINISH) != Z_STREAM_END) {
		free(b);
		b = NULL;
	}
	*out = cap - z.avail_out;
	deflateEnd(&z);
	return b;
}

/* What the reader must hand out for text p[0..n) with the cap: the lines
 * within it (want) and the numbers of those over it (bad). */
static void reference(const uint8_t *p, size_t n, size_t cap, struct dda_buf *want, uint64_t *bad,
		      size_t *nbad, size_t maxbad)
{
	uint64_t line = 1;
	size_t start = 0;
	*nbad = 0;
	while (start < n) {
		const uint8_t *nl = memchr(p + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - p) : n;
		if (end - start > cap) {
			if (*nbad < maxbad)
				bad[(*nbad)++] = line;
		} else {
			CHECK(!dda_buf_add(want, p + start, end - start + (nl ? 1 : 0)));
		}
		line++;
		start = end + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	if (size < 2)
		return 0;
	size_t cap = 1 + (size_t)data[0] * 4;
	bool gz = data[1] & 1;
	const uint8_t *text = data + 2;
	size_t tn = size - 2;
	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/dda-fuzz-XXXXXX.ndjson");
		int fd = mkstemps(path, 7);
		CHECK(fd >= 0);
		close(fd);
	}
	size_t zn = 0;
	unsigned char *z = gz ? gzip_of(text, tn, &zn) : NULL;
	if (gz && !z)
		return 0;
	FILE *f = fopen(path, "wb");
	CHECK(f);
	fwrite(gz ? z : text, 1, gz ? zn : tn, f);
	fclose(f);
	free(z);
	/* Plain bytes that start like gzip are read as (damaged) gzip. */
	bool exact = gz || !dda_is_gzip(text, tn);

	struct dda_objtab *t = dda_objtab_new();
	struct dda_source *src;
	struct dda_error err = {0};
	struct dda_source_opts o = {.range = {DDA_TIME_NONE, DDA_TIME_NONE},
				    .max_object_bytes = cap};
	CHECK(dda_source_open(&src, path, t, &o, &err) == 0);
	struct dda_decoder_opts dopts;
	dda_decoder_opts_default(&dopts);
	struct dda_decoder *d = dda_decoder_new(&dopts, t);
	struct seen_index seen = {-1};
	const struct dda_decode_sink sink = {&seen, on_record, on_anomaly};
	struct dda_chunk c;
	dda_chunk_init(&c);
	struct dda_buf got;
	dda_buf_init(&got, DDA_BUF_UNLIMITED);
	uint64_t bad[64], line = 1;
	size_t nbad = 0;
	int lasts = 0, rc;
	bool gave_up = false;
	int64_t index = -1;
	while ((rc = dda_source_next(src, &c, &err)) > 0) {
		struct dda_decode_counts counts = {0};
		CHECK(!lasts);
		CHECK(c.first_line == line);
		/* No index of an earlier chunk reaches this one's. */
		CHECK((int64_t)c.first_index > seen.max);
		CHECK((int64_t)c.first_index >= index);
		index = c.first_index;
		lasts += c.last;
		if (c.status == DDA_CHUNK_UNREADABLE) {
			gave_up =
			    gave_up || strstr(c.msg, "no end of line") || !strstr(c.msg, "cap");
			if (nbad < DDA_ARRAY_SIZE(bad))
				bad[nbad++] = c.first_line;
			line++;
		} else {
			CHECK(!dda_buf_add(&got, c.data.ptr ? c.data.ptr : "", c.data.len));
			for (size_t i = 0; i < c.data.len; i++)
				line += c.data.ptr[i] == '\n';
		}
		dda_decode_chunk(d, &c, &sink, &counts);
		dda_chunk_release(&c);
	}
	CHECK(rc == 0 && lasts == 1);
	if (exact && !gave_up) {
		struct dda_buf want;
		uint64_t wbad[64];
		size_t nwbad;
		dda_buf_init(&want, DDA_BUF_UNLIMITED);
		reference(text, tn, cap, &want, wbad, &nwbad, DDA_ARRAY_SIZE(wbad));
		CHECK(got.len == want.len && (!got.len || !memcmp(got.ptr, want.ptr, got.len)));
		CHECK(nbad == nwbad && !memcmp(bad, wbad, nbad * sizeof(*bad)));
		dda_buf_release(&want);
	}
	dda_buf_release(&got);
	dda_chunk_release(&c);
	dda_decoder_free(d);
	dda_source_free(src);
	dda_objtab_free(t);
	return 0;
}
