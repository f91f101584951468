/* libFuzzer target for the --baseline parser: arbitrary bytes as a file.
 * A parse either fails with a message naming a line, or yields a baseline
 * whose entries write back into a file that parses to the same count. */
#include "fuzz_check.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddbaudit/ddbaudit.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct dda_baseline *b = NULL, *back = NULL;
	struct dda_error err = {0};
	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/dda-fuzz-XXXXXX.ndjson");
		int fd = mkstemps(path, 7);
		CHECK(fd >= 0);
		close(fd);
	}
	int rc = dda_baseline_parse((const char *)data, size, "f", &b, &err);
	if (rc) {
		CHECK(rc == DDA_EINVAL || rc == DDA_ENOMEM);
		CHECK(!b);
		CHECK(rc == DDA_ENOMEM || !strncmp(err.msg, "f:", 2));
		return 0;
	}
	/* Written back with every entry live (now = 0), it parses again. */
	struct dda_result res;
	memset(&res, 0, sizeof(res));
	CHECK(!dda_baseline_write(b, &res, 0, 0, "r", path, &err));
	struct dda_buf text;
	dda_buf_init(&text, DDA_BASELINE_MAX_BYTES);
	CHECK(!dda__read_file(path, &text, &err));
	CHECK(!dda_baseline_parse(text.ptr ? text.ptr : "", text.len, "f", &back, &err));
	/* Repeated lines are written once, so never more entries than read. */
	CHECK(dda_baseline_size(back) <= dda_baseline_size(b));
	dda_buf_release(&text);
	dda_baseline_free(back);
	dda_baseline_free(b);
	return 0;
}
