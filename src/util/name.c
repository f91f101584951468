/* Names (object keys, file names, version ids) as text: S3 keys and file
 * names are bytes, reports are UTF-8. The escaping is lossless and the same in
 * every output (docs/report.md, "Names that are not UTF-8"). */
#include "util/util.h"

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when p starts none. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t avail = (size_t)(end - p);
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))
			return 0; /* overlong, or a surrogate */
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
			return 0; /* overlong, or above U+10FFFF */
		return 4;
	}
	return 0;
}

bool dda__utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		size_t k = utf8_seq(p, end);
		if (!k)
			return false;
		p += k;
	}
	return true;
}

/* A control character (a newline, a tab, an escape) would break a listing's
 * one line per name or a terminal: escaped like a byte that is not UTF-8. */
static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

bool dda__name_plain(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\\' || is_control((unsigned char)s[i]))
			return false;
	return dda__utf8_valid(s, n);
}

int dda__name_escape(struct dda_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	int rc = 0;
	while (p < end && !rc) {
		size_t k = utf8_seq(p, end);
		if (k == 1 && *p == '\\') {
			rc = dda_buf_add(out, "\\\\", 2);
		} else if (k && !(k == 1 && is_control(*p))) {
			rc = dda_buf_add(out, p, k);
		} else {
			char esc[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
			rc = dda_buf_add(out, esc, 4);
			k = 1;
		}
		p += k;
	}
	return rc ? rc : dda_buf_grow(out, 0); /* a NUL-terminated ptr, even when empty */
}

/* s itself when keep says so, else its escape in tmp ("" when tmp failed). */
static const char *shown(struct dda_buf *tmp, const char *s, bool (*keep)(const char *, size_t))
{
	if (!s)
		return "";
	size_t n = strlen(s);
	if (keep(s, n))
		return s;
	dda_buf_reset(tmp);
	if (dda__name_escape(tmp, s, n) || !tmp->ptr)
		return "";
	return tmp->ptr;
}

const char *dda__name_text(struct dda_buf *tmp, const char *s)
{
	return shown(tmp, s, dda__name_plain);
}

const char *dda__text_utf8(struct dda_buf *tmp, const char *s)
{
	return shown(tmp, s, dda__utf8_valid);
}

int dda__base64_encode(const void *p, size_t n, struct dda_buf *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	int rc = dda_buf_grow(out, (n + 2) / 3 * 4);
	for (size_t i = 0; i < n && !rc; i += 3) {
		unsigned w = (unsigned)s[i] << 16;
		if (i + 1 < n)
			w |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			w |= s[i + 2];
		char q[4] = {tab[w >> 18 & 63], tab[w >> 12 & 63],
			     i + 1 < n ? tab[w >> 6 & 63] : '=', i + 2 < n ? tab[w & 63] : '='};
		rc = dda_buf_add(out, q, 4);
	}
	return rc;
}

int dda__json_name(struct dda_buf *out, const char *member, const char *s, size_t n)
{
	int rc = dda_buf_addf(out, "\"%s\":", member);
	if (rc)
		return rc;
	if (dda__utf8_valid(s, n))
		return dda__json_quote(out, s, n);
	/* The escaped text is ASCII-safe UTF-8, quoted after it is built. */
	struct dda_buf text;
	dda_buf_init(&text, out->max);
	rc = dda__name_escape(&text, s, n);
	if (!rc)
		rc = dda__json_quote(out, text.ptr, text.len);
	dda_buf_release(&text);
	if (!rc)
		rc = dda_buf_addf(out, ",\"%s_b64\":\"", member);
	if (!rc)
		rc = dda__base64_encode(s, n, out);
	return rc ? rc : dda_buf_addc(out, '"');
}
