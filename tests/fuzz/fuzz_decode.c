/* libFuzzer target for the record decoder: arbitrary bytes as a whole object
 * and as NDJSON lines. Besides not crashing, every valid record's key must
 * survive serialization -> JSON -> serialization unchanged. */
#include "fuzz_check.h"
#include <stdlib.h>
#include <string.h>

#include "ddbaudit/record.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	(void)ctx;
	CHECK(a->detail != NULL);
	dda_anomaly_release(a);
	return 0;
}

static int on_record(void *ctx, const struct dda_record *r)
{
	(void)ctx;
	json_t *j = dda_canon_to_json(r->key, r->key_len);
	CHECK(j != NULL);
	struct dda_buf again, why;
	dda_buf_init(&again, 1 << 20);
	dda_buf_init(&why, 4096);
	int rc = dda_canon_key(j, NULL, 0, "key", &again, &why);
	CHECK(rc == 0);
	CHECK(again.len == r->key_len && !memcmp(again.ptr, r->key, r->key_len));
	dda_buf_release(&again);
	dda_buf_release(&why);
	json_decref(j);
	return 0;
}

/* The input as a plain object (0), a full export's data file (1) and an
 * incremental NEW_IMAGE export's (2), so that export lines and item states
 * are decoded with their manifests' facts too. */
static struct dda_objtab *objects(void)
{
	struct dda_objtab *t = dda_objtab_new();
	struct dda_object o = {.key = "x.json", .size = -1, .last_modified = DDA_TIME_NONE};
	CHECK(t && dda_objtab_add(t, &o) == 0);
	o.key = "AWSDynamoDB/f/data/a.json.gz";
	o.exp = (struct dda_export_info){
	    .kind = DDA_EXPORT_FULL, .listed = true, .items = 1, .time = 1752308870028000};
	CHECK(dda_objtab_add(t, &o) == 1);
	o.key = "AWSDynamoDB/i/data/a.json.gz";
	o.exp = (struct dda_export_info){.kind = DDA_EXPORT_INCREMENTAL,
					 .new_only = true,
					 .listed = true,
					 .items = 2,
					 .from = 1752308870000000,
					 .to = 1752312470000000};
	CHECK(dda_objtab_add(t, &o) == 2);
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dda_decoder_opts opts;
	dda_decoder_opts_default(&opts);
	struct dda_objtab *t = objects();
	struct dda_decoder *d = dda_decoder_new(&opts, t);
	CHECK(d);
	const struct dda_decode_sink sink = {NULL, on_record, on_anomaly};
	for (uint32_t obj = 0; obj < 3; obj++) {
		for (int kind = DDA_CHUNK_DOC; kind <= DDA_CHUNK_LINES; kind++) {
			struct dda_chunk c;
			struct dda_decode_counts counts = {0};
			dda_chunk_init(&c);
			c.obj = obj;
			c.kind = kind;
			c.first_line = 1;
			c.last = true;
			dda_buf_init(&c.data, size + 1);
			CHECK(dda_buf_add(&c.data, data, size) == 0);
			dda_decode_chunk(d, &c, &sink, &counts);
			CHECK(counts.valid + counts.invalid == counts.records);
			dda_chunk_release(&c);
		}
	}
	dda_decoder_free(d);
	dda_objtab_free(t);
	return 0;
}
