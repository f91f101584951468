/* libFuzzer target for the record decoder: arbitrary bytes as a whole object
 * and as NDJSON lines. Besides not crashing, every valid record's key must
 * survive serialization -> JSON -> serialization unchanged. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ddbaudit/record.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	(void)ctx;
	assert(a->detail != NULL);
	dda_anomaly_release(a);
	return 0;
}

static int on_record(void *ctx, const struct dda_record *r)
{
	(void)ctx;
	json_t *j = dda_canon_to_json(r->key, r->key_len);
	assert(j != NULL);
	struct dda_buf again, why;
	dda_buf_init(&again, 1 << 20);
	dda_buf_init(&why, 4096);
	int rc = dda_canon_key(j, NULL, 0, "key", &again, &why);
	assert(rc == 0);
	assert(again.len == r->key_len && !memcmp(again.ptr, r->key, r->key_len));
	dda_buf_release(&again);
	dda_buf_release(&why);
	json_decref(j);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dda_decoder_opts opts;
	dda_decoder_opts_default(&opts);
	struct dda_decoder *d = dda_decoder_new(&opts, NULL);
	const struct dda_decode_sink sink = {NULL, on_record, on_anomaly};
	for (int kind = DDA_CHUNK_DOC; kind <= DDA_CHUNK_LINES; kind++) {
		struct dda_chunk c;
		struct dda_decode_counts counts = {0};
		dda_chunk_init(&c);
		c.kind = kind;
		c.first_line = 1;
		c.last = true;
		dda_buf_init(&c.data, size + 1);
		if (dda_buf_add(&c.data, data, size))
			__builtin_trap(); /* the buffer was sized for it */
		dda_decode_chunk(d, &c, &sink, &counts);
		assert(counts.valid + counts.invalid == counts.records);
		dda_chunk_release(&c);
	}
	dda_decoder_free(d);
	return 0;
}
