/* libFuzzer target for the DynamoDB client's answer parsers: arbitrary bytes
 * as an error answer, and (when they are JSON) as a DescribeTable answer and
 * a Scan page. Each either parses or fails with DDA_EFORMAT; what parses is
 * within its bounds (one or two key attributes of type S, N or B, names
 * terminated; Items an array of objects). */
#include "fuzz_check.h"
#include <string.h>

#include "ddb/ddb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char type[128], msg[512];
	dda__ddb_parse_error((const char *)data, size, type, sizeof(type), msg, sizeof(msg));
	CHECK(memchr(type, 0, sizeof(type)) && memchr(msg, 0, sizeof(msg)));
	for (const char *p = msg; *p; p++)
		CHECK((unsigned char)*p >= 0x20);
	json_error_t je;
	json_t *j = json_loadb((const char *)data, size, 0, &je);
	if (!j)
		return 0;
	struct dda_ddb_table t;
	struct dda_error err = {0};
	int rc = dda__ddb_parse_table(j, &t, &err);
	CHECK(rc == 0 || rc == DDA_EFORMAT);
	if (!rc) {
		CHECK(t.nkeys == 1 || t.nkeys == 2);
		for (size_t k = 0; k < t.nkeys; k++) {
			CHECK(t.key_names[k][0] && memchr(t.key_names[k], 0, DDA_DDB_NAME_MAX));
			CHECK(strchr("SNB", t.key_types[k][0]) && !t.key_types[k][1]);
		}
	}
	json_t *items, *lek;
	rc = dda__ddb_parse_page(j, &items, &lek, &err);
	CHECK(rc == 0 || rc == DDA_EFORMAT);
	if (!rc) {
		CHECK(json_is_array(items));
		CHECK(!lek || json_is_object(lek));
	}
	json_decref(j);
	return 0;
}
