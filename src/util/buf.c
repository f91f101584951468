/* The bounded growable buffer (struct dda_buf) and the error record. */
#include "util/util.h"
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>

#define DDA_BUF_MIN_ALLOC 64

void dda_buf_init(struct dda_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = 0;
}

/* A failed append frees the contents and remembers why, so that the appends
 * after it fail too instead of building a shorter result. */
static int buf_fail(struct dda_buf *b, int code)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = code;
	return code;
}

void dda_buf_release(struct dda_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
}

void dda_buf_reset(struct dda_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

int dda_buf_grow(struct dda_buf *b, size_t n)
{
	if (b->err)
		return b->err;
	if (n > b->max || b->len > b->max - n)
		return buf_fail(b, DDA_ETOOBIG);
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : DDA_BUF_MIN_ALLOC;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	char *p = realloc(b->ptr, cap);
	if (!p)
		return buf_fail(b, DDA_ENOMEM);
	b->ptr = p;
	b->cap = cap;
	return 0;
}

int dda_buf_add(struct dda_buf *b, const void *p, size_t n)
{
	int rc = dda_buf_grow(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

int dda_buf_addc(struct dda_buf *b, char c)
{
	return dda_buf_add(b, &c, 1);
}

int dda_buf_adds(struct dda_buf *b, const char *s)
{
	return dda_buf_add(b, s, strlen(s));
}

int dda_buf_vaddf(struct dda_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	char small[256];
	int n = vsnprintf(small, sizeof(small), fmt, cp);
	va_end(cp);
	if (b->err)
		return b->err;
	if (n < 0)
		return buf_fail(b, DDA_EINTERNAL);
	if ((size_t)n < sizeof(small))
		return dda_buf_add(b, small, (size_t)n);
	int rc = dda_buf_grow(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int dda_buf_addf(struct dda_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int dda__explain(struct dda_buf *why, const char *fmt, ...)
{
	if (!why)
		return DDA_EFORMAT;
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(why, fmt, ap);
	va_end(ap);
	return rc == DDA_ENOMEM ? rc : DDA_EFORMAT;
}

char *dda_buf_take(struct dda_buf *b, size_t *len)
{
	char *p = b->ptr;
	if (len)
		*len = b->len;
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = 0;
	return p;
}

int dda_error_set(struct dda_error *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	/* Keep the first error: it is the cause, later ones are consequences. */
	if (err->code && err->msg[0])
		return code;
	va_list ap;
	va_start(ap, fmt);
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/* Messages carry what peers answered, which may echo a secret. */
	dda__redact(err->msg, sizeof(err->msg));
	return code;
}

void dda_error_clear(struct dda_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

const char *dda_strerror(int code)
{
	switch (code) {
	case DDA_OK:
		return "success";
	case DDA_ENOMEM:
		return "out of memory";
	case DDA_EIO:
		return "input/output error";
	case DDA_EINVAL:
		return "invalid argument";
	case DDA_EFORMAT:
		return "malformed input";
	case DDA_ETOOBIG:
		return "size limit exceeded";
	case DDA_ENOTFOUND:
		return "not found";
	case DDA_EUNSUPPORTED:
		return "not supported";
	case DDA_EINTERNAL:
		return "internal error";
	case DDA_EINTR:
		return "interrupted";
	case DDA_EAUTH:
		return "credentials missing, refused or expired";
	}
	return "unknown error";
}

const char *dda_version(void)
{
	return DDA_VERSION;
}

int dda__read_file(const char *path, struct dda_buf *b, struct dda_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return dda_error_set(err, errno == ENOENT ? DDA_ENOTFOUND : DDA_EIO,
				     "cannot open '%s': %s", path, strerror(errno));
	int rc = 0;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rc = dda_buf_add(b, chunk, n);
		if (rc) {
			dda_error_set(err, rc, "cannot read '%s': %s", path, dda_strerror(rc));
			goto out;
		}
	}
	if (ferror(f))
		rc = dda_error_set(err, DDA_EIO, "cannot read '%s': %s", path, strerror(errno));
out:
	fclose(f);
	return rc;
}

int dda__put_u32(struct dda_buf *b, size_t v)
{
	unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	return dda_buf_add(b, p, 4);
}

int dda__put_bytes(struct dda_buf *b, const void *p, size_t n)
{
	int rc = dda__put_u32(b, n);
	return rc ? rc : dda_buf_add(b, p, n);
}

void dda__patch_u32(struct dda_buf *b, size_t at)
{
	size_t len = b->len - at - 4;
	unsigned char *p = (unsigned char *)b->ptr + at;
	p[0] = (unsigned char)(len >> 24);
	p[1] = (unsigned char)(len >> 16);
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
}

int dda__json_quote(struct dda_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	int rc = dda_buf_grow(b, n + 2);
	if (rc)
		return rc;
	rc = dda_buf_addc(b, '"');
	size_t start = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		rc = dda_buf_add(b, s + start, i - start);
		start = i + 1;
		if (rc)
			break;
		char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
		switch (c) {
		case '"':
			rc = dda_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			rc = dda_buf_add(b, "\\\\", 2);
			break;
		case '\n':
			rc = dda_buf_add(b, "\\n", 2);
			break;
		case '\r':
			rc = dda_buf_add(b, "\\r", 2);
			break;
		case '\t':
			rc = dda_buf_add(b, "\\t", 2);
			break;
		default:
			rc = dda_buf_add(b, esc, 6);
		}
	}
	if (!rc)
		rc = dda_buf_add(b, s + start, n - start);
	if (!rc)
		rc = dda_buf_addc(b, '"');
	return rc;
}
