/* Basic vocabulary shared by every part of libddbaudit: error codes and the
 * error record, borrowed byte views (slices) and owned, bounded buffers. */
#ifndef DDBAUDIT_COMMON_H
#define DDBAUDIT_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define DDA_API __attribute__((visibility("default")))
#define DDA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DDA_API
#define DDA_PRINTF(f, a)
#endif

/* Error codes: 0 is success, failures are negative. New codes are only ever
 * added at the end so that numeric values stay stable. */
enum dda_err {
	DDA_OK = 0,
	DDA_ENOMEM = -1,       /* allocation failed */
	DDA_EIO = -2,	       /* reading or writing a file or stream failed */
	DDA_EINVAL = -3,       /* bad argument or option (a usage error) */
	DDA_EFORMAT = -4,      /* input bytes are not in the expected format */
	DDA_ETOOBIG = -5,      /* a size limit was reached */
	DDA_ENOTFOUND = -6,    /* no such file, key or item */
	DDA_EUNSUPPORTED = -7, /* recognised but not supported here */
	DDA_EINTERNAL = -8,    /* a broken invariant: a bug in ddbaudit */
	DDA_EINTR = -9,	       /* interrupted by a signal */
	DDA_EAUTH = -10,       /* credentials missing, broken, refused or expired */
};

/* Human-readable name of an error code; never NULL. */
DDA_API const char *dda_strerror(int code);

/* Where a failing function leaves the detail: the code it returned and a
 * message naming the object, file or position involved. Messages are
 * lowercase without a full stop, like "cannot open 'x': No such file". */
#define DDA_ERROR_MSG_MAX 512
struct dda_error {
	int code;
	char msg[DDA_ERROR_MSG_MAX];
};

/* Records code and formatted message in err (which may be NULL) and returns
 * code, so that callers can write `return dda_error_set(err, DDA_EIO, ...)`. */
DDA_API int dda_error_set(struct dda_error *err, int code, const char *fmt, ...) DDA_PRINTF(3, 4);
DDA_API void dda_error_clear(struct dda_error *err);

/* A borrowed view of bytes: never owns, never frees, not NUL-terminated. */
typedef struct dda_slice {
	const char *ptr;
	size_t len;
} dda_slice;

static inline dda_slice dda_slice_make(const void *p, size_t n)
{
	dda_slice s = {(const char *)p, n};
	return s;
}

/* An owned, growable buffer with a maximum size. Invariants: ptr is NULL or
 * holds len bytes followed by a NUL (so text can be passed to libc);
 * len < cap <= max + 1. A failed append (no memory, or len would exceed max)
 * frees the contents, leaves the buffer empty and makes the failure sticky:
 * every later append fails with the same code until dda_buf_reset or
 * dda_buf_release, so a partial result can never be mistaken for a whole one
 * (the result of every append must be used, and checking the last one is
 * enough to know that all of them held). */
struct dda_buf {
	char *ptr;
	size_t len;
	size_t cap;
	size_t max;
	int err; /* 0, or the dda_err of the first failed append */
};

#define DDA_BUF_UNLIMITED ((size_t)-1 / 2)

#if defined(__GNUC__)
#define DDA_MUST_USE __attribute__((warn_unused_result))
#else
#define DDA_MUST_USE
#endif

/* Prepares an empty buffer that may hold at most max bytes. */
DDA_API void dda_buf_init(struct dda_buf *b, size_t max);
/* Frees the contents and clears a failure; the buffer keeps its maximum and
 * can be reused. */
DDA_API void dda_buf_release(struct dda_buf *b);
/* Empties the buffer, clears a failure, keeps its memory for reuse. */
DDA_API void dda_buf_reset(struct dda_buf *b);
/* Appends n bytes; returns 0, DDA_ENOMEM or DDA_ETOOBIG (or the earlier
 * failure of this buffer, which is sticky). */
DDA_API DDA_MUST_USE int dda_buf_add(struct dda_buf *b, const void *p, size_t n);
DDA_API DDA_MUST_USE int dda_buf_addc(struct dda_buf *b, char c);
DDA_API DDA_MUST_USE int dda_buf_adds(struct dda_buf *b, const char *s);
DDA_API DDA_MUST_USE int dda_buf_addf(struct dda_buf *b, const char *fmt, ...) DDA_PRINTF(2, 3);
DDA_API DDA_MUST_USE int dda_buf_vaddf(struct dda_buf *b, const char *fmt, va_list ap)
    DDA_PRINTF(2, 0);
/* Makes room for n more bytes without changing len; returns 0 or an error
 * (on error the buffer is freed and the failure is sticky, as for a failed
 * append). */
DDA_API DDA_MUST_USE int dda_buf_grow(struct dda_buf *b, size_t n);
/* The buffer's sticky failure: 0, DDA_ENOMEM or DDA_ETOOBIG. */
static inline int dda_buf_error(const struct dda_buf *b)
{
	return b->err;
}
/* Hands the contents over to the caller (who frees them with free()); the
 * buffer is left empty. Returns NULL for an empty or failed buffer. */
DDA_API char *dda_buf_take(struct dda_buf *b, size_t *len);

static inline dda_slice dda_buf_slice(const struct dda_buf *b)
{
	return dda_slice_make(b->ptr, b->len);
}

/* Version string of the library, e.g. "0.1.0". */
DDA_API const char *dda_version(void);

#endif
