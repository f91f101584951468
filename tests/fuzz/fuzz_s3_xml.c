/* libFuzzer target for what AWS servers answer: the S3 XML parsers
 * (listings, bucket settings, errors) and the credential providers' answers
 * (STS XML, container and IMDS JSON). Arbitrary bytes from a server must
 * never crash or leak. */
#include <stdlib.h>

#include "aws/creds.h"
#include "aws/s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dda_s3_listing l = {0};
	struct dda_error err = {0};
	char st[32], code[64], msg[128];
	dda__s3_parse_listing((const char *)data, size, &l, &err);
	dda__s3_listing_release(&l);
	dda__s3_parse_value((const char *)data, size, "Status", st, sizeof(st), &err);
	struct dda_creds c;
	if (!dda__creds_parse_sts((const char *)data, size, dda__provider_web_identity, &c, &err))
		dda__creds_release(&c);
	if (!dda__creds_parse_json((const char *)data, size, "fuzz", &c, &err))
		dda__creds_release(&c);
	/* The error scanner wants text: give it a terminated copy. */
	char *s = malloc(size + 1);
	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
		dda__s3_parse_error(s, size, code, sizeof(code), msg, sizeof(msg));
		free(s);
	}
	return 0;
}
