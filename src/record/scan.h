/* The fast path of the decoder: a single-pass scanner for the audit writer's
 * (seed) records that validates JSON, canonicalizes and hashes the images
 * without building a jansson tree. It only ever accepts: anything it is not
 * certain about (another dialect, any rule broken, any JSON it does not
 * handle) is handed back to the jansson path, which then decides and
 * reports. tests/fuzz/fuzz_scan.c checks that both paths agree. */
#ifndef DDA_SCAN_H
#define DDA_SCAN_H

#include "util/util.h"
#include "ddbaudit/record.h"

enum dda_scan_result {
	DDA_SCAN_FALLBACK, /* use the jansson path for this value */
	DDA_SCAN_RECORD,   /* a valid seed record: see the output fields */
	DDA_SCAN_FILTERED, /* valid JSON, a seed record outside the range */
	DDA_SCAN_NOMEM,
};

struct dda__scan_out {
	int event;
	int64_t time;
	const char *kval[DDA_MAX_KEY_ATTRS]; /* decoded key fields (scratch) */
	size_t klen[DDA_MAX_KEY_ATTRS];
	bool has_old, has_new;
	uint8_t old_digest[DDA_DIGEST_LEN];
	uint8_t new_digest[DDA_DIGEST_LEN];
	size_t consumed; /* bytes of the value, from the start of the input */
	/* With raw_images: the images' JSON text, their DynamoDB item sizes,
	 * and awsRegion (decoded), all valid until the next scan. The text is
	 * compact (no whitespace between tokens) where *_raw_compact says so,
	 * else as it is in the input. */
	const char *old_raw, *new_raw;
	size_t old_raw_len, new_raw_len;
	bool old_raw_compact, new_raw_compact;
	uint64_t old_size, new_size;
	const char *region;
	size_t region_len;
};

struct dda__scanner;
struct dda__scanner *dda__scanner_new(void);
void dda__scanner_free(struct dda__scanner *s);

/* Scans one JSON value at p[0..n) (leading whitespace allowed). With
 * `whole`, only whitespace may follow it (an NDJSON line); otherwise the
 * value's end is returned in out->consumed. */
int dda__scan_seed(struct dda__scanner *s, const struct dda_decoder_opts *opts, const char *p,
		   size_t n, bool whole, struct dda__scan_out *out);

/* DynamoDB's item size (as stream records' SizeBytes count it) of an image
 * from its canonical serialization (docs/canonical-form.md). The scanner
 * counts the same size while it serializes; this second walk is the
 * reference tests hold that count to. */
uint64_t dda__canon_item_size(const uint8_t *ser, size_t n);

/* For tests: fn is called with each image the scanner serializes (its
 * canonical serialization, borrowed for the call, and the item size counted
 * while serializing it), whether or not the record is then taken. NULL
 * stops the calls. */
typedef void dda__scan_image_fn(void *ctx, const uint8_t *ser, size_t n, uint64_t size);
void dda__scanner_on_image(struct dda__scanner *s, dda__scan_image_fn *fn, void *ctx);

#endif
