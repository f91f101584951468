/* Standard base64 (RFC 4648 section 4), as DynamoDB JSON writes B values:
 * '=' padding required, no whitespace. Non-zero bits in the last character
 * are tolerated, as common decoders do; values compare by decoded bytes. */
#include "util/util.h"
#include "ddbaudit/canon.h"

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int dda_base64_decode(const char *s, size_t n, struct dda_buf *out)
{
	if (n % 4)
		return DDA_EFORMAT;
	int rc = dda_buf_grow(out, n / 4 * 3);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)s[i + (size_t)k];
			if (c == '=' && i + 4 == n && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64val(c)) < 0)
				return DDA_EFORMAT;
		}
		unsigned w = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		char b[3] = {(char)(w >> 16), (char)(w >> 8), (char)w};
		rc = dda_buf_add(out, b, 3 - pad);
		if (rc)
			return rc;
	}
	return 0;
}

int dda_base64_encode(const void *p, size_t n, struct dda_buf *out)
{
	return dda__base64_encode(p, n, out);
}
