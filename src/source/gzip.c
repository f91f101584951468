/* gzip: whole objects inflated under a cap (a gzip bomb stops at the cap,
 * not at the end of memory), by libdeflate member by member with zlib
 * deciding whatever libdeflate refuses; and a streaming reader for NDJSON
 * files that are gzip or plain (zlib inflating, the gzip wrapper and its
 * CRC-32 read and checked here), hashing the stored bytes as it goes. */
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

/* Where the streaming reader is in a gzip member. zlib inflates the raw
 * DEFLATE data; the header and trailer are read here, so that the member's
 * CRC-32 is computed by libdeflate (several times faster than zlib's, which
 * was a fifth of the reading thread's time) and still checked. The header's
 * fields are read, and checked, in the order and with the words zlib uses. */
enum gz_phase { GZ_HEADER, GZ_DATA, GZ_TRAILER };

/* The other gzip header flags (RFC 1952; GZ_FHCRC above) and the one
 * compression method. */
#define GZ_FLG_EXTRA 0x04
#define GZ_FLG_NAME 0x08
#define GZ_FLG_COMMENT 0x10
#define GZ_FLG_RESERVED 0xe0
#define GZ_CM_DEFLATE 8
/* Magic, CM, FLG, MTIME, XFL, OS. */
#define GZ_FIXED_HEADER 10

struct gz_member {
	enum gz_phase phase;
	unsigned stage;	 /* header: bytes of the fixed part read */
	unsigned flags;	 /* FLG */
	uint32_t xlen;	 /* FEXTRA bytes left (after its two length bytes) */
	uint32_t hcrc;	 /* CRC-32 of the header bytes so far */
	uint32_t crc;	 /* CRC-32 of the member's output so far */
	uint32_t isize;	 /* its length, modulo 2^32 */
	unsigned got;	 /* bytes of the current field read */
	uint32_t field;	 /* their value, little-endian */
};

struct dda__instream {
	int fd;
	bool gzip, eof, started, ended;
	bool zlib_checks; /* the reference reader: zlib reads header and trailer */
	size_t read_size; /* bytes asked of read() at a time (0: all of in) */
	z_stream z;
	struct gz_member m;
	unsigned char in[IN_CHUNK];
	size_t in_len, in_pos;
	uint64_t stored;
	struct dda__sha256 sha;
};

static long fill(struct dda__instream *s, struct dda_error *err)
{
	ssize_t n;
	do
		n = read(s->fd, s->in, s->read_size ? s->read_size : sizeof(s->in));
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

void dda__instream_configure(struct dda__instream *s, bool zlib_checks, size_t read_size)
{
	s->zlib_checks = zlib_checks;
	s->read_size = DDA_MIN(read_size, sizeof(s->in));
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
	int bits = s->zlib_checks ? 16 + MAX_WBITS : -MAX_WBITS;
	if (s->gzip && inflateInit2(&s->z, bits) != Z_OK)
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

static int damaged(struct dda_error *err, const char *why)
{
	return dda_error_set(err, DDA_EFORMAT, "gzip stream is damaged: %s", why);
}

/* After a member's end: another member, the end, or garbage. */
static int next_member(struct dda__instream *s, struct dda_error *err)
{
	if (s->in_pos == s->in_len && !s->eof && fill(s, err) < 0)
		return DDA_EIO;
	if (s->in_pos == s->in_len)
		s->ended = true;
	else if (dda_is_gzip(s->in + s->in_pos, s->in_len - s->in_pos))
		inflateReset(&s->z);
	else
		return dda_error_set(err, DDA_EFORMAT, "trailing garbage after gzip data");
	memset(&s->m, 0, sizeof(s->m));
	return 0;
}

/* Takes one header byte into the running header CRC. */
static unsigned hbyte(struct dda__instream *s)
{
	unsigned char c = s->in[s->in_pos++];
	s->m.hcrc = (uint32_t)libdeflate_crc32(s->m.hcrc, &c, 1);
	return c;
}

/* Reads what is there of a member's header, checking it as zlib does and
 * in the same order (so a damaged header gets zlib's words). Returns 0
 * (the header is done when the phase moved on) or DDA_EFORMAT. */
static int header_step(struct dda__instream *s, struct dda_error *err)
{
	struct gz_member *m = &s->m;
	while (s->in_pos < s->in_len && m->phase == GZ_HEADER) {
		if (m->stage < GZ_FIXED_HEADER) {
			unsigned c = hbyte(s);
			if (m->stage == 2)
				m->field = c; /* CM: zlib judges it with FLG */
			if (m->stage == 3 && m->field != GZ_CM_DEFLATE)
				return damaged(err, "unknown compression method");
			if (m->stage == 3 && (m->flags = c) & GZ_FLG_RESERVED)
				return damaged(err, "unknown header flags set");
			if (m->stage == 3)
				m->field = 0;
			m->stage++;
		} else if (m->flags & GZ_FLG_EXTRA) {
			if (m->got < 2) {
				m->xlen |= hbyte(s) << (8 * m->got++);
				continue;
			}
			size_t take = DDA_MIN((size_t)m->xlen, s->in_len - s->in_pos);
			m->hcrc = (uint32_t)libdeflate_crc32(m->hcrc, s->in + s->in_pos, take);
			s->in_pos += take;
			m->xlen -= (uint32_t)take;
			if (!m->xlen) {
				m->flags &= ~GZ_FLG_EXTRA;
				m->got = 0;
			}
		} else if (m->flags & (GZ_FLG_NAME | GZ_FLG_COMMENT)) {
			if (!hbyte(s))
				m->flags &= m->flags & GZ_FLG_NAME ? ~GZ_FLG_NAME : ~GZ_FLG_COMMENT;
		} else if (m->flags & GZ_FHCRC) {
			uint32_t want = m->hcrc & 0xffff;
			m->field |= (uint32_t)s->in[s->in_pos++] << (8 * m->got++);
			if (m->got < 2)
				continue;
			if (m->field != want)
				return damaged(err, "header crc mismatch");
			m->phase = GZ_DATA;
		} else {
			m->phase = GZ_DATA;
		}
	}
	if (m->phase == GZ_HEADER && m->stage == GZ_FIXED_HEADER &&
	    !(m->flags & (GZ_FLG_EXTRA | GZ_FLG_NAME | GZ_FLG_COMMENT | GZ_FHCRC)))
		m->phase = GZ_DATA;
	m->got = m->phase == GZ_DATA ? 0 : m->got;
	m->field = m->phase == GZ_DATA ? 0 : m->field;
	return 0;
}

/* Reads what is there of a member's trailer: its CRC-32, then its length,
 * each checked as soon as it is whole, as zlib does. Returns 0 (the member
 * is done when got reached 8) or DDA_EFORMAT. */
static int trailer_step(struct dda__instream *s, struct dda_error *err)
{
	struct gz_member *m = &s->m;
	while (s->in_pos < s->in_len && m->got < 8) {
		m->field |= (uint32_t)s->in[s->in_pos++] << (8 * (m->got++ & 3));
		if (m->got == 4 && m->field != m->crc)
			return damaged(err, "incorrect data check");
		if (m->got == 8 && m->field != m->isize)
			return damaged(err, "incorrect length check");
		if (m->got == 4)
			m->field = 0;
	}
	return 0;
}

/* One step of a member on what input there is: header, data or trailer. */
static int member_step(struct dda__instream *s, struct dda_error *err)
{
	struct gz_member *m = &s->m;
	if (m->phase == GZ_HEADER)
		return header_step(s, err);
	if (m->phase == GZ_DATA) {
		unsigned char *out = s->z.next_out;
		s->z.next_in = s->in + s->in_pos;
		s->z.avail_in = (uInt)(s->in_len - s->in_pos);
		int zr = inflate(&s->z, Z_NO_FLUSH);
		s->in_pos = s->in_len - s->z.avail_in;
		size_t made = (size_t)(s->z.next_out - out);
		m->crc = (uint32_t)libdeflate_crc32(m->crc, out, made);
		m->isize += (uint32_t)made;
		if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END)
			return damaged(err, s->z.msg ? s->z.msg : "inflate failed");
		if (zr != Z_STREAM_END)
			return 0;
		m->phase = GZ_TRAILER;
	}
	int rc = trailer_step(s, err);
	if (rc || m->got < 8)
		return rc;
	return next_member(s, err);
}

/* The reference (dda__instream_configure): zlib reads the gzip wrapper and
 * checks its CRC. tests/fuzz/fuzz_gzip.c holds both to the same bytes and
 * messages. */
static int zlib_step(struct dda__instream *s, struct dda_error *err)
{
	s->z.next_in = s->in + s->in_pos;
	s->z.avail_in = (uInt)(s->in_len - s->in_pos);
	int zr = inflate(&s->z, Z_NO_FLUSH);
	s->in_pos = s->in_len - s->z.avail_in;
	if (zr == Z_STREAM_END)
		return next_member(s, err);
	if (zr != Z_OK && zr != Z_BUF_ERROR)
		return damaged(err, s->z.msg ? s->z.msg : "inflate failed");
	return 0;
}

static long read_gzip(struct dda__instream *s, void *p, size_t n, struct dda_error *err)
{
	size_t want = DDA_MIN(n, (size_t)1 << 30);
	s->z.next_out = p;
	s->z.avail_out = (uInt)want;
	while (s->z.avail_out == want && !s->ended) {
		if (s->in_pos == s->in_len && !s->eof) {
			long r = fill(s, err);
			if (r < 0)
				return r;
		}
		if (s->in_pos == s->in_len && s->eof)
			return dda_error_set(err, DDA_EFORMAT, "gzip stream is truncated");
		int rc = s->zlib_checks ? zlib_step(s, err) : member_step(s, err);
		if (rc)
			return rc;
	}
	return (long)(want - s->z.avail_out);
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
