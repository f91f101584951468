/* Differential libFuzzer target for whole-object gzip (dda_gunzip): the
 * libdeflate path with zlib deciding what it refuses must give exactly what
 * zlib alone gives (status, message, bytes), for any input and cap. The
 * first byte chooses how the rest is used: as it is, or compressed into one
 * to four members (header CRC or not) and then truncated, damaged in one
 * byte, or followed by garbage, so valid, multi-member, truncated and
 * corrupt streams are all common. The second byte chooses the cap. */
#include "fuzz_check.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "source/source_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Appends p[0..n) as one gzip member (level 1 to 9, a header CRC when
 * hcrc) to out. */
static void member(struct dda_buf *out, const uint8_t *p, size_t n, int level, bool hcrc)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	CHECK(deflateInit2(&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	gz_header h;
	memset(&h, 0, sizeof(h));
	h.hcrc = hcrc;
	h.name = (Bytef *)(hcrc ? "n.json" : NULL);
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
		member(in, p + at, part, 1 + (mode >> 3 & 7) % 9, (mode >> 5 & 1) && m == 0);
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
	dda_buf_release(&in);
	dda_buf_release(&fast);
	dda_buf_release(&slow);
	return 0;
}
