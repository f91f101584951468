/* libFuzzer target for the NDJSON source (line splitting, the line cap,
 * gzip detection and damaged gzip streams) feeding the decoder: arbitrary
 * bytes as a file, with a small cap so overlong lines are common. Chunk line
 * numbers must only ever grow, and exactly one chunk must end the object. */
#include "fuzz_check.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddbaudit/record.h"
#include "ddbaudit/source.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_record(void *ctx, const struct dda_record *r)
{
	(void)ctx;
	(void)r;
	return 0;
}

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	(void)ctx;
	dda_anomaly_release(a);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/dda-fuzz-XXXXXX.ndjson");
		int fd = mkstemps(path, 7);
		CHECK(fd >= 0);
		close(fd);
	}
	FILE *f = fopen(path, "wb");
	CHECK(f);
	fwrite(data, 1, size, f);
	fclose(f);
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source *src;
	struct dda_error err = {0};
	struct dda_source_opts o = {.range = {DDA_TIME_NONE, DDA_TIME_NONE}, .max_object_bytes = 64};
	CHECK(dda_source_open(&src, path, t, &o, &err) == 0);
	struct dda_decoder_opts dopts;
	dda_decoder_opts_default(&dopts);
	struct dda_decoder *d = dda_decoder_new(&dopts, t);
	const struct dda_decode_sink sink = {NULL, on_record, on_anomaly};
	struct dda_chunk c;
	dda_chunk_init(&c);
	uint64_t line = 0;
	int lasts = 0, rc;
	while ((rc = dda_source_next(src, &c, &err)) > 0) {
		struct dda_decode_counts counts = {0};
		CHECK(c.first_line >= line);
		line = c.first_line;
		lasts += c.last;
		dda_decode_chunk(d, &c, &sink, &counts);
	}
	CHECK(rc == 0 && lasts == 1);
	dda_chunk_release(&c);
	dda_decoder_free(d);
	dda_source_free(src);
	dda_objtab_free(t);
	return 0;
}
