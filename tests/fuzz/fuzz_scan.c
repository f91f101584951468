/* Differential libFuzzer target: the decoder with its fast path (scan.c)
 * and without it must produce exactly the same records (keys, digests,
 * events, times, positions, and for replay the images and their DynamoDB
 * item sizes, raw text against trees) and the same anomalies, for any
 * input, as a whole object and as NDJSON lines. And the item size the
 * scanner counts while it serializes an image must be the one a second
 * walk of the serialization gives, for every image it serializes. */
#include "fuzz_check.h"
#include <stdlib.h>
#include <string.h>

#include "ddbaudit/record.h"
#include "util/util.h"
#include "record/scan.h"
#include "replay/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The comparison buffers are unbounded: an append can only fail for lack of
 * memory, which must not pass as a difference or a match. */
#define MUST(x)                                                                                    \
	do {                                                                                       \
		if (x)                                                                             \
			__builtin_trap();                                                          \
	} while (0)

/* An image as its sorted JSON and item size, from a tree or raw text.
 * Raw text said to be compact has no whitespace between its tokens: the
 * compactor leaves it as it is. */
static void image(struct dda_buf *b, const json_t *tree, const char *raw, size_t len, uint64_t size,
		  bool compact)
{
	if (raw && compact) {
		struct dda_buf c;
		dda_buf_init(&c, DDA_BUF_UNLIMITED);
		MUST(dda__json_compact(&c, raw, len));
		CHECK(c.len == len && !memcmp(c.ptr, raw, len));
		dda_buf_release(&c);
	}
	json_t *parsed = raw ? json_loadb(raw, len, JSON_ALLOW_NUL, NULL) : NULL;
	const json_t *img = raw ? parsed : tree;
	CHECK(!raw || parsed);
	char *text = img ? json_dumps(img, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	MUST(dda_buf_addf(b, " %llu %s",
			  (unsigned long long)(raw   ? size
					       : img ? dda__item_size(img)
						     : 0),
			  text ? text : "-"));
	free(text);
	json_decref(parsed);
}

/* Everything a sink sees, flattened into bytes for comparison. */
static int on_record(void *ctx, const struct dda_record *r)
{
	struct dda_buf *b = ctx;
	MUST(dda_buf_addf(b, "R %u %u %llu %d %d %lld %d%d%d%d %d|", r->obj, r->index,
			  (unsigned long long)r->line, r->dialect, r->event, (long long)r->time,
			  r->has_old, r->has_new, r->old_unknown, r->new_unknown, r->ttl));
	MUST(dda_buf_add(b, r->key, r->key_len));
	if (r->has_old)
		MUST(dda_buf_add(b, r->old_digest, DDA_DIGEST_LEN));
	if (r->has_new)
		MUST(dda_buf_add(b, r->new_digest, DDA_DIGEST_LEN));
	image(b, r->old_image, r->old_raw, r->old_raw_len, r->old_size, r->old_raw_compact);
	image(b, r->new_image, r->new_raw, r->new_raw_len, r->new_size, r->new_raw_compact);
	MUST(dda_buf_addc(b, '\n'));
	return 0;
}

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	struct dda_buf *b = ctx;
	MUST(dda_buf_addf(b, "A %d %d %u %u %llu %lld %s|", a->kind, a->severity, a->obj, a->index,
			  (unsigned long long)a->line, (long long)a->time, a->detail));
	if (a->key)
		MUST(dda_buf_add(b, a->key, a->key_len));
	MUST(dda_buf_addc(b, '\n'));
	dda_anomaly_release(a);
	return 0;
}

static void run(const uint8_t *data, size_t size, int kind, bool fast, struct dda_buf *out,
		struct dda_decode_counts *counts)
{
	struct dda_decoder_opts opts;
	dda_decoder_opts_default(&opts);
	opts.need_images = !fast;
	opts.raw_images = fast;
	struct dda_decoder *d = dda_decoder_new(&opts, NULL);
	const struct dda_decode_sink sink = {out, on_record, on_anomaly};
	struct dda_chunk c;
	dda_chunk_init(&c);
	c.kind = kind;
	c.first_line = 1;
	c.last = true;
	dda_buf_init(&c.data, size + 1);
	MUST(dda_buf_add(&c.data, data, size));
	memset(counts, 0, sizeof(*counts));
	dda_decode_chunk(d, &c, &sink, counts);
	dda_chunk_release(&c);
	dda_decoder_free(d);
}

static void check_size(void *ctx, const uint8_t *ser, size_t n, uint64_t size)
{
	unsigned long *images = ctx;
	CHECK(size == dda__canon_item_size(ser, n));
	(*images)++;
}

/* The scanner alone, on the input as one value and as lines, checking the
 * size of every image it serializes (taken or not, in range or not). */
static void scan_sizes(const uint8_t *data, size_t size)
{
	struct dda_decoder_opts opts;
	dda_decoder_opts_default(&opts);
	opts.raw_images = true;
	struct dda__scanner *s = dda__scanner_new();
	MUST(!s);
	unsigned long images = 0;
	dda__scanner_on_image(s, check_size, &images);
	struct dda__scan_out out;
	const char *p = (const char *)data, *end = p + size;
	int rc = dda__scan_seed(s, &opts, p, size, false, &out);
	MUST(rc == DDA_SCAN_NOMEM);
	/* A record taken has had each of its images checked. */
	CHECK(rc != DDA_SCAN_RECORD || images >= (unsigned long)(out.has_old + out.has_new));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		MUST(dda__scan_seed(s, &opts, p, (size_t)(le - p), true, &out) == DDA_SCAN_NOMEM);
		p = le + 1;
	}
	dda__scanner_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scan_sizes(data, size);
	for (int kind = DDA_CHUNK_DOC; kind <= DDA_CHUNK_LINES; kind++) {
		struct dda_buf a, b;
		struct dda_decode_counts ca, cb;
		dda_buf_init(&a, DDA_BUF_UNLIMITED);
		dda_buf_init(&b, DDA_BUF_UNLIMITED);
		run(data, size, kind, true, &a, &ca);
		run(data, size, kind, false, &b, &cb);
		CHECK(a.len == b.len && (!a.len || !memcmp(a.ptr, b.ptr, a.len)));
		CHECK(!memcmp(&ca, &cb, sizeof(ca)));
		dda_buf_release(&a);
		dda_buf_release(&b);
	}
	return 0;
}
