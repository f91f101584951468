/* SHA256SUMS: written as sha256sum writes it, parsed as untrusted bytes. */
#include "evidence/evidence_impl.h"

#include <ctype.h>

int dda__sums_line(struct dda_buf *b, const char *name, const uint8_t sha[DDA_SHA256_LEN])
{
	char hex[2 * DDA_SHA256_LEN + 1];
	dda__hex(sha, DDA_SHA256_LEN, hex);
	return dda_buf_addf(b, "%s  %s\n", hex, name);
}

bool dda__bundle_name_known(const char *name)
{
	static const char *const fixed[] = {DDA_BUNDLE_SUMS, DDA_BUNDLE_SIG, DDA_BUNDLE_SIGNATURE,
					    DDA_BUNDLE_MANIFEST};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(fixed); i++)
		if (!strcmp(name, fixed[i]))
			return true;
	for (int f = 0; f < DDA_FMT__COUNT; f++)
		if (!strcmp(name, dda_report_file_name(f)))
			return true;
	return false;
}

/* A file name as a bundle may list it: printable ASCII, no '/'. */
static bool plain_name(const char *p, size_t n)
{
	if (!n || n >= DDA_BUNDLE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '/' || p[i] == '\\' || !isprint((unsigned char)p[i]))
			return false;
	return true;
}

static int parse_line(const char *p, size_t len, struct dda__sum *s, struct dda_buf *why,
		      size_t lineno)
{
	const size_t hexlen = 2 * DDA_SHA256_LEN;
	if (len < hexlen + 3)
		return dda__explain(why, "line %zu is too short", lineno);
	for (size_t i = 0; i < hexlen; i++) {
		int v = dda__hex_value(p[i]);
		if (v < 0)
			return dda__explain(why, "line %zu: the digest is not 64 hex digits",
					    lineno);
		s->hex[i] = "0123456789abcdef"[v];
	}
	s->hex[hexlen] = '\0';
	if (p[hexlen] != ' ' || (p[hexlen + 1] != ' ' && p[hexlen + 1] != '*'))
		return dda__explain(why, "line %zu: expected two spaces after the digest", lineno);
	const char *name = p + hexlen + 2;
	size_t n = len - hexlen - 2;
	if (!plain_name(name, n))
		return dda__explain(why, "line %zu: the file name is not a plain name", lineno);
	memcpy(s->name, name, n);
	s->name[n] = '\0';
	return 0;
}

int dda__sums_parse(dda_slice text, struct dda__sum *out, size_t *n, struct dda_buf *why)
{
	size_t pos = 0, lineno = 0;
	*n = 0;
	while (pos < text.len) {
		const char *p = text.ptr + pos;
		const char *nl = memchr(p, '\n', text.len - pos);
		lineno++;
		if (!nl)
			return dda__explain(why, "line %zu does not end with a newline", lineno);
		size_t len = (size_t)(nl - p);
		pos += len + 1;
		if (*n == DDA_SUMS_MAX_LINES)
			return dda__explain(why, "more than %d lines", DDA_SUMS_MAX_LINES);
		int rc = parse_line(p, len, &out[*n], why, lineno);
		if (rc)
			return rc;
		for (size_t i = 0; i < *n; i++)
			if (!strcmp(out[i].name, out[*n].name))
				return dda__explain(why, "line %zu lists '%s' again", lineno,
						    out[*n].name);
		(*n)++;
	}
	if (!*n)
		return dda__explain(why, "it is empty");
	return 0;
}
