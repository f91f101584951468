/* Differential libFuzzer target for gzip. Whole objects (dda_gunzip): the
 * libdeflate path with zlib deciding what it refuses must give exactly what
 * zlib alone gives (status, message, bytes), for any input and cap.
 * Streams (the NDJSON reader): reading the gzip wrapper and checking the
 * CRC ourselves must give, read by read, exactly what zlib reading them
 * gives (count, bytes, message), with reads of the file and of the output
 * small enough that headers, trailers and members straddle them. The first
 * byte chooses how the rest is used: as it is, or compressed into one to
 * four members (header CRC, name, extra field, comment or not) and then
 * truncated, damaged in one byte, or followed by garbage, so valid,
 * multi-member, truncated and corrupt streams are all common. The second
 * byte chooses the cap and the read sizes. */
#include "fuzz_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "source/source_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Appends p[0..n) as one gzip member (level 1 to 9, a header CRC and a
 * name when hcrc, an extra field and a comment when extra) to out. */
static void member(struct dda_buf *out, const uint8_t *p, size_t n, int level, bool hcrc,
		   bool extra)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	CHECK(deflateInit2(&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	gz_header h;
	memset(&h, 0, sizeof(h));
	h.hcrc = hcrc;
	h.name = (Bytef *)(hcrc ? "n.json" : NULL);
	h.extra = (Bytef *)(extra ? "ab\0cd" : NULL);
	h.extra_len = extra ? 5 : 0;
	h.comment = (Bytef *)(extra ? "a comment" : NULL);
	CHECK(deflateSetHeader(&z, &h) == Z_OK);
	size_t cap = deflateBound(&z, (uLong)n) + 64;
	CHECK(!dda_buf_grow(out, cap));
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out->ptr + out->len;
	z.avail_out = (uInt)cap;
	CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
	out->len += cap - z.avail_out;
	deflateEnd(&z);
}

/* The input as the first byte says: raw, or members and a mutation. */
static void build(const uint8_t *data, size_t size, struct dda_buf *in)
{
	uint8_t mode = data[0];
	const uint8_t *p = data + 2;
	size_t n = size - 2;
	if (!(mode & 1)) {
		CHECK(!dda_buf_add(in, p, n));
		return;
	}
	size_t members = 1 + (mode >> 1 & 3), at = 0;
	for (size_t m = 0; m < members; m++) {
		size_t part = m + 1 == members ? n - at : n / members;
		member(in, p + at, part, 1 + (mode >> 3 & 7) % 9, (mode >> 5 & 1) && m == 0,
		       (data[1] & 2) && m == 0);
		at += part;
	}
	size_t where = in->len ? (size_t)data[1] * 7919 % in->len : 0;
	switch (mode >> 6) {
	case 1: /* truncated */
		in->len = where;
		break;
	case 2: /* one byte damaged */
		if (in->len)
			in->ptr[where] ^= (char)(1 + (data[1] & 0x7f));
		break;
	case 3: /* trailing garbage, or the start of another member */
		CHECK(!dda_buf_add(in, data[1] & 1 ? "\x1f\x8b\x08" : "junk", data[1] & 1 ? 3 : 4));
		break;
	}
}

/* A stream over a copy of p[0..n) in a temporary file, open as *fd. */
static struct dda__instream *stream_of(const void *p, size_t n, bool zlib_checks,
				       size_t read_size, int *fd_out)
{
	FILE *f = tmpfile();
	CHECK(f && fwrite(p, 1, n, f) == n && !fflush(f));
	int fd = dup(fileno(f));
	fclose(f);
	CHECK(fd >= 0 && lseek(fd, 0, SEEK_SET) == 0);
	*fd_out = fd;
	struct dda__instream *s;
	struct dda_error err = {0};
	CHECK(!dda__instream_open(&s, fd, &err));
	dda__instream_configure(s, zlib_checks, read_size);
	return s;
}

/* The streaming reader against its reference, read by read. */
static void stream_check(const struct dda_buf *in, uint8_t knob)
{
	size_t read_size = knob == 0xff ? 0 : 1 + (size_t)knob * 13 % 97;
	size_t out_size = knob == 0xff ? 1 << 16 : 1 + (size_t)knob * 7 % 509;
	const char *p = in->ptr ? in->ptr : "";
	int fa, fb;
	struct dda__instream *a = stream_of(p, in->len, false, read_size, &fa);
	struct dda__instream *b = stream_of(p, in->len, true, read_size, &fb);
	char *ba = malloc(out_size), *bb = malloc(out_size);
	CHECK(ba && bb);
	for (;;) {
		struct dda_error ea = {0}, eb = {0};
		long na = dda__instream_read(a, ba, out_size, &ea);
		long nb = dda__instream_read(b, bb, out_size, &eb);
		CHECK(na == nb);
		if (na <= 0) {
			CHECK(!strcmp(ea.msg, eb.msg));
			break;
		}
		CHECK(!memcmp(ba, bb, (size_t)na));
	}
	free(ba);
	free(bb);
	dda__instream_close(a);
	dda__instream_close(b);
	close(fa);
	close(fb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct dda_buf in, fast, slow;
	dda_buf_init(&in, DDA_BUF_UNLIMITED);
	build(data, size, &in);
	/* Caps around the sizes the inputs inflate to, and a large one. */
	size_t cap = data[1] == 0xff ? (size_t)1 << 24 : (size_t)data[1] * 37;
	dda_buf_init(&fast, cap);
	dda_buf_init(&slow, cap);
	struct dda_error ef = {0}, es = {0};
	int rf = dda_gunzip(in.ptr ? in.ptr : "", in.len, &fast, &ef);
	int rs = dda__gunzip_zlib(in.ptr ? in.ptr : "", in.len, &slow, &es);
	CHECK(rf == rs);
	CHECK(!strcmp(ef.msg, es.msg));
	CHECK(fast.len == slow.len && (!fast.len || !memcmp(fast.ptr, slow.ptr, fast.len)));
	CHECK(rf || fast.len <= cap);
	stream_check(&in, data[1]);
	dda_buf_release(&in);
	dda_buf_release(&fast);
	dda_buf_release(&slow);
	return 0;
}
