/* gzip: whole objects inflated under a cap (a gzip bomb stops at the cap,
 * not at the end of memory), by libdeflate member by member with zlib
 * deciding whatever libdeflate refuses; and a streaming reader (zlib) for
 * NDJSON files that are gzip or plain, hashing the stored bytes as it goes. */
#include "source/source_impl.h"

#include <errno.h>
#include <libdeflate.h>
#include <unistd.h>
#include <zlib.h>

#define IN_CHUNK (256u << 10)

bool dda_is_gzip(const void *p, size_t n)
{
	const unsigned char *b = p;
	return n >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

static int too_big(struct dda_error *err, size_t max)
{
	return dda_error_set(err, DDA_ETOOBIG,
			     "gzip data inflates beyond the %zu-byte cap (--max-object-bytes)",
			     max);
}

int dda__gunzip_zlib(const void *p, size_t n, struct dda_buf *out, struct dda_error *err)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return dda_error_set(err, DDA_ENOMEM, "cannot start zlib");
	z.next_in = (unsigned char *)p;
	z.avail_in = (uInt)DDA_MIN(n, (size_t)UINT32_MAX);
	int rc = 0;
	for (;;) {
		/* At the cap, inflate into one spare byte: any output is too much. */
		unsigned char probe;
		size_t room = out->max - out->len;
		if (room && (rc = dda_buf_grow(out, DDA_MIN((size_t)64 << 10, room))))
			break;
		z.next_out = room ? (unsigned char *)out->ptr + out->len : &probe;
		z.avail_out = room ? (uInt)(out->cap - out->len - 1) : 1;
		int zr = inflate(&z, Z_NO_FLUSH);
		if (!room && !z.avail_out) {
			rc = too_big(err, out->max);
			break;
		}
		if (room) {
			out->len = out->cap - 1 - z.avail_out;
			out->ptr[out->len] = '\0';
		}
		if (zr == Z_STREAM_END) {
			/* Another member may follow (concatenated gzip). */
			if (!z.avail_in)
				break;
			if (!dda_is_gzip(z.next_in, z.avail_in)) {
				rc = dda_error_set(err, DDA_EFORMAT,
						   "trailing garbage after gzip data");
				break;
			}
			inflateReset(&z);
			continue;
		}
		if (zr == Z_BUF_ERROR && !z.avail_in) {
			rc = dda_error_set(err, DDA_EFORMAT, "gzip data is truncated");
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			rc = dda_error_set(err, DDA_EFORMAT, "gzip data is damaged: %s",
					   z.msg ? z.msg : "inflate failed");
			break;
		}
	}
	inflateEnd(&z);
	return rc;
}

/* A gzip header flag: the header carries a CRC of its own, which zlib
 * checks and libdeflate skips. */
#define GZ_FHCRC 0x02
/* A member's smallest size: 10 bytes of header and 8 of trailer. */
#define GZ_MIN_MEMBER 18
/* DEFLATE never inflates more than 1032 times its size: a bound on the
 * room to offer a member whose trailer claims more. */
#define DEFLATE_MAX_RATIO 1032

/* The room to offer the member at p[0..n) first: the ISIZE of the input's
 * last member (exact for a single member, the common case), bounded by
 * what its compressed size can inflate to. */
static size_t first_guess(const unsigned char *p, size_t n)
{
	size_t isize = (size_t)p[n - 4] | (size_t)p[n - 3] << 8 | (size_t)p[n - 2] << 16 |
		       (size_t)p[n - 1] << 24;
	size_t bound = n <= SIZE_MAX / DEFLATE_MAX_RATIO ? n * DEFLATE_MAX_RATIO : SIZE_MAX;
	return DDA_MAX(DDA_MIN(isize, bound), (size_t)4096);
}

/* One member at p[0..n) into out by libdeflate, offering more room until
 * it fits or the cap is reached. Returns the member's compressed size, or
 * 0 when zlib must decide (damage, truncation, the cap, no memory). */
static size_t member_fast(struct libdeflate_decompressor *d, const unsigned char *p, size_t n,
			  struct dda_buf *out)
{
	size_t room = out->max - out->len;
	for (size_t want = DDA_MIN(first_guess(p, n), room);; want = DDA_MIN(want * 2, room)) {
		if (dda_buf_grow(out, want))
			return 0;
		size_t used = 0, made = 0;
		enum libdeflate_result r = libdeflate_gzip_decompress_ex(
		    d, p, n, out->ptr + out->len, out->cap - out->len - 1, &used, &made);
		if (r == LIBDEFLATE_SUCCESS) {
			out->len += made;
			out->ptr[out->len] = '\0';
			return used;
		}
		if (r != LIBDEFLATE_INSUFFICIENT_SPACE || out->cap - out->len - 1 >= room)
			return 0;
	}
}

/* Every member by libdeflate. Returns 0 when all of p[0..n) was gzip
 * members inflated within the cap, -1 when zlib must decide (out is then
 * as it was). */
static int gunzip_fast(const unsigned char *p, size_t n, struct dda_buf *out)
{
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	size_t len = out->len, pos = 0;
	int rc = -1;
	while (d && n - pos >= GZ_MIN_MEMBER && dda_is_gzip(p + pos, n - pos) &&
	       !(p[pos + 3] & GZ_FHCRC)) {
		size_t used = member_fast(d, p + pos, n - pos, out);
		if (!used)
			break;
		pos += used;
		if (pos == n) {
			rc = 0;
			break;
		}
	}
	libdeflate_free_decompressor(d);
	if (rc && !out->err) {
		out->len = len;
		if (out->ptr)
			out->ptr[len] = '\0';
	}
	return rc;
}

int dda_gunzip(const void *p, size_t n, struct dda_buf *out, struct dda_error *err)
{
	/* libdeflate is about twice as fast; anything it does not accept is
	 * left to zlib, so findings and messages are zlib's. */
	if (!gunzip_fast(p, n, out))
		return 0;
	return dda__gunzip_zlib(p, n, out, err);
}

struct dda__instream {
	int fd;
	bool gzip, eof, started, ended;
	z_stream z;
	unsigned char in[IN_CHUNK];
	size_t in_len, in_pos;
	uint64_t stored;
	struct dda__sha256 sha;
};

static long fill(struct dda__instream *s, struct dda_error *err)
{
	ssize_t n;
	do
		n = read(s->fd, s->in, sizeof(s->in));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return dda_error_set(err, DDA_EIO, "read failed: %s", strerror(errno));
	s->in_len = (size_t)n;
	s->in_pos = 0;
	s->stored += (uint64_t)n;
	dda__sha256_update(&s->sha, s->in, (size_t)n);
	if (!n)
		s->eof = true;
	return n;
}

int dda__instream_open(struct dda__instream **out, int fd, struct dda_error *err)
{
	struct dda__instream *s = calloc(1, sizeof(*s));
	if (!s || dda__sha256_init(&s->sha)) {
		free(s);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	s->fd = fd;
	*out = s;
	return 0;
}

/* The first read decides: gzip magic means inflate, anything else is
 * taken as plain text. */
static int start(struct dda__instream *s, struct dda_error *err)
{
	s->started = true;
	long n = fill(s, err);
	if (n < 0)
		return (int)n;
	s->gzip = dda_is_gzip(s->in, s->in_len);
	if (s->gzip && inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
		return dda_error_set(err, DDA_ENOMEM, "cannot start zlib");
	return 0;
}

static long read_plain(struct dda__instream *s, void *p, size_t n, struct dda_error *err)
{
	if (s->in_pos == s->in_len && !s->eof) {
		long r = fill(s, err);
		if (r <= 0)
			return r;
	}
	size_t take = DDA_MIN(n, s->in_len - s->in_pos);
	memcpy(p, s->in + s->in_pos, take);
	s->in_pos += take;
	return (long)take;
}

static long read_gzip(struct dda__instream *s, void *p, size_t n, struct dda_error *err)
{
	s->z.next_out = p;
	s->z.avail_out = (uInt)DDA_MIN(n, (size_t)1 << 30);
	while (s->z.avail_out == (uInt)DDA_MIN(n, (size_t)1 << 30) && !s->ended) {
		if (s->in_pos == s->in_len && !s->eof) {
			long r = fill(s, err);
			if (r < 0)
				return r;
		}
		if (s->in_pos == s->in_len && s->eof)
			return dda_error_set(err, DDA_EFORMAT, "gzip stream is truncated");
		s->z.next_in = s->in + s->in_pos;
		s->z.avail_in = (uInt)(s->in_len - s->in_pos);
		int zr = inflate(&s->z, Z_NO_FLUSH);
		s->in_pos = s->in_len - s->z.avail_in;
		if (zr == Z_STREAM_END) {
			/* Look for another member. */
			if (s->in_pos == s->in_len && !s->eof && fill(s, err) < 0)
				return DDA_EIO;
			if (s->in_pos == s->in_len)
				s->ended = true;
			else if (dda_is_gzip(s->in + s->in_pos, s->in_len - s->in_pos))
				inflateReset(&s->z);
			else
				return dda_error_set(err, DDA_EFORMAT,
						     "trailing garbage after gzip data");
		} else if (zr != Z_OK && zr != Z_BUF_ERROR) {
			return dda_error_set(err, DDA_EFORMAT, "gzip stream is damaged: %s",
					     s->z.msg ? s->z.msg : "inflate failed");
		}
	}
	return (long)(DDA_MIN(n, (size_t)1 << 30) - s->z.avail_out);
}

long dda__instream_read(struct dda__instream *s, void *p, size_t n, struct dda_error *err)
{
	if (!s->started) {
		int rc = start(s, err);
		if (rc)
			return rc;
	}
	return s->gzip ? read_gzip(s, p, n, err) : read_plain(s, p, n, err);
}

uint64_t dda__instream_stored(const struct dda__instream *s)
{
	return s->stored;
}

void dda__instream_sha256(struct dda__instream *s, uint8_t out[32])
{
	/* Hash what is left unread too, so the digest covers the whole file. */
	struct dda_error err = {0};
	while (!s->eof && fill(s, &err) > 0)
		;
	dda__sha256_final(&s->sha, out);
}

void dda__instream_close(struct dda__instream *s)
{
	if (!s)
		return;
	if (s->gzip)
		inflateEnd(&s->z);
	dda__sha256_release(&s->sha);
	free(s);
}
