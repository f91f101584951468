/* libFuzzer target for a DynamoDB export's manifests (export.c): the input
 * is manifest-summary.json, a NUL byte, then manifest-files.json. Whatever
 * they hold, registering the export never crashes, a broken manifest is a
 * finding (never an error but running out of memory), the keys it lists
 * classify as its data files, and each is reported missing exactly once. */
#include "fuzz_check.h"
#include <stdlib.h>
#include <string.h>

#include "ddbaudit/record.h"
#include "source/source_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t n1 = nul ? (size_t)(nul - data) : size;
	struct dda_buf sum, files, key;
	dda_buf_init(&sum, size + 1);
	dda_buf_init(&files, size + 1);
	dda_buf_init(&key, 1 << 16);
	CHECK(dda_buf_add(&sum, data, n1) == 0);
	if (nul)
		CHECK(dda_buf_add(&files, nul + 1, size - n1 - 1) == 0);
	struct dda_source s;
	memset(&s, 0, sizeof(s));
	struct dda__exports *x = dda__exports_new();
	CHECK(x);
	CHECK(dda__exports_add(x, &s, "p/AWSDynamoDB/e/", &sum, nul ? &files : NULL) == 0);
	CHECK(dda__exports_known(x, "p/AWSDynamoDB/e/"));
	struct dda_export_info info;
	bool unlisted;
	CHECK(dda__exports_classify(x, "p/AWSDynamoDB/e/_started", &info, &unlisted) ==
	      DDA__EXP_META);
	CHECK(dda__exports_classify(x, "q/x.json", &info, &unlisted) == DDA__EXP_OUTSIDE);
	/* Every file still missing is named once, under the export's root. */
	int rc, missing = 0;
	while ((rc = dda__exports_next_missing(x, NULL, &key)) == 1) {
		CHECK(!strncmp(key.ptr, "p/AWSDynamoDB/e/", 16));
		CHECK(dda__exports_classify(x, key.ptr, &info, &unlisted) == DDA__EXP_DATA ||
		      dda__export_meta_name(key.ptr + 16));
		missing++;
	}
	CHECK(rc == 0);
	CHECK(dda__exports_next_missing(x, NULL, &key) == 0);
	for (size_t i = 0; i < s.nnotes; i++) {
		CHECK(s.notes[i].detail != NULL);
		free(s.notes[i].detail);
	}
	free(s.notes);
	dda__exports_free(x);
	dda_buf_release(&sum);
	dda_buf_release(&files);
	dda_buf_release(&key);
	return 0;
}
