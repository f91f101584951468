/* libFuzzer target for STS GetCallerIdentity answers: whatever a server
 * sends, the parser never crashes, and what it accepts is what a report may
 * print as the caller (an account of twelve digits, an ARN, no control
 * character), or nothing at all. */
#include <ctype.h>

#include "aws/sts.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	CHECK(n < cap);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dda_sts_identity id;
	struct dda_error err = {0};
	int rc = dda__sts_parse_identity((const char *)data, size, &id, &err);
	if (rc) {
		CHECK(rc == DDA_EFORMAT && err.code == rc && err.msg[0]);
		CHECK(!id.account[0] && !id.arn[0] && !id.user_id[0]);
		return 0;
	}
	CHECK(strlen(id.account) == 12);
	for (size_t i = 0; i < 12; i++)
		CHECK(isdigit((unsigned char)id.account[i]));
	CHECK(!strncmp(id.arn, "arn:", 4));
	check_text(id.arn, sizeof(id.arn));
	check_text(id.user_id, sizeof(id.user_id));
	return 0;
}
