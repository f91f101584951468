/* Sorted runs of events on disk: the spill file a bounded history writes
 * when it passes its memory budget, and the block codec its runs are
 * written in (history_impl.h describes the format). */
#include "util/util.h"
#include "history/history_impl.h"

#include <errno.h>
#include <unistd.h>

/* Bounds a reader applies to a block header, so that bytes that are no run
 * are refused instead of allocated for: a writer never makes a block over
 * DDA__RUN_BLOCK plus one event, and an event is at most a key (DynamoDB
 * keys are a few KiB; the bound is generous) and fixed fields. */
#define BLOCK_RAW_MAX ((size_t)16 << 20)
#define BLOCK_Z_MAX (BLOCK_RAW_MAX + (BLOCK_RAW_MAX >> 6) + 1024)
#define BLOCK_HEADER 8

/* The header byte of an encoded event. */
enum {
	H_SAME_KEY = 1,	   /* the key is the previous event's */
	H_OLD_IS_PREV = 2, /* the old digest is the previous event's new digest */
	H_SEQ = 4,	   /* a sequence number follows */
	H_ALL = 7,
};

/* Fixed fields of an event at their largest: header, event, flags, five
 * varints, two lengths and two digests. */
#define EVENT_FIXED_MAX (3 + 5 * 10 + 2 * 5 + 2 * DDA_DIGEST_LEN)

int dda__spill_file_open(struct dda__spill_file *f, const char *dir, struct dda_error *err)
{
	struct dda_buf path;
	f->fd = -1;
	f->size = 0;
	f->dir = dir;
	dda_buf_init(&path, 8192);
	if (dda_buf_addf(&path, "%s/ddbaudit-spill-XXXXXX", dir)) {
		dda_buf_release(&path);
		return dda_error_set(err, DDA_EIO,
				     "cannot create a spill file in '%s': path too long", dir);
	}
	f->fd = mkstemp(path.ptr);
	int saved = errno;
	if (f->fd >= 0)
		unlink(path.ptr);
	dda_buf_release(&path);
	if (f->fd < 0)
		return dda_error_set(err, DDA_EIO, "cannot create a spill file in '%s': %s", dir,
				     strerror(saved));
	return 0;
}

void dda__spill_file_close(struct dda__spill_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int write_at(struct dda__spill_file *f, const uint8_t *p, size_t n, struct dda_error *err)
{
	uint64_t off = f->size;
	while (n) {
		ssize_t w = pwrite(f->fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return dda_error_set(err, DDA_EIO,
					     "cannot write to the spill file in '%s': %s", f->dir,
					     w < 0 ? strerror(errno) : "nothing written");
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	f->size = off;
	return 0;
}

static int read_at(const struct dda__spill_file *f, uint8_t *p, size_t n, uint64_t off,
		   struct dda_error *err)
{
	while (n) {
		ssize_t r = pread(f->fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return dda_error_set(err, DDA_EIO, "cannot read the spill file in '%s': %s",
					     f->dir, r < 0 ? strerror(errno) : "short read");
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t cap2 = DDA_MAX(need, *cap * 2);
	uint8_t *np = realloc(*p, cap2);
	if (!np)
		return DDA_ENOMEM;
	*p = np;
	*cap = cap2;
	return 0;
}

/* ---- varints ---- */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A cursor over a decoded block; any read past its end fails it. */
struct cur {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t get_varint(struct cur *c)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (c->p == c->end)
			break;
		uint8_t b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static const uint8_t *get_bytes(struct cur *c, uint64_t n)
{
	if (c->bad || n > (uint64_t)(c->end - c->p)) {
		c->bad = true;
		return NULL;
	}
	const uint8_t *p = c->p;
	c->p += n;
	return p;
}

static uint32_t get_u32(struct cur *c)
{
	uint64_t v = get_varint(c);
	if (v > UINT32_MAX)
		c->bad = true;
	return (uint32_t)v;
}

/* ---- writing ---- */

int dda__run_writer_init(struct dda__run_writer *w, struct dda__spill_file *f,
			 struct dda_error *err)
{
	memset(w, 0, sizeof(*w));
	w->file = f;
	w->start = f->size;
	w->raw_cap = DDA__RUN_BLOCK + EVENT_FIXED_MAX + 4096;
	w->raw = malloc(w->raw_cap);
	/* Speed over ratio: the digests, most of an event, do not compress. */
	if (w->raw && deflateInit(&w->zs, 1) == Z_OK)
		w->zs_ready = true;
	if (!w->zs_ready)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	return 0;
}

void dda__run_writer_release(struct dda__run_writer *w)
{
	if (w->zs_ready)
		deflateEnd(&w->zs);
	free(w->raw);
	free(w->z);
	memset(w, 0, sizeof(*w));
}

static int flush_block(struct dda__run_writer *w, struct dda_error *err)
{
	if (!w->raw_len)
		return 0;
	uLong bound = deflateBound(&w->zs, (uLong)w->raw_len);
	if (grow(&w->z, &w->z_cap, BLOCK_HEADER + bound))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	deflateReset(&w->zs);
	w->zs.next_in = w->raw;
	w->zs.avail_in = (uInt)w->raw_len;
	w->zs.next_out = w->z + BLOCK_HEADER;
	w->zs.avail_out = (uInt)bound;
	if (deflate(&w->zs, Z_FINISH) != Z_STREAM_END)
		return dda_error_set(err, DDA_EINTERNAL, "compressing a spilled run failed");
	size_t zlen = bound - w->zs.avail_out;
	uint32_t lens[2] = {(uint32_t)zlen, (uint32_t)w->raw_len};
	for (int i = 0; i < 2; i++)
		for (int b = 0; b < 4; b++)
			w->z[4 * i + b] = (uint8_t)(lens[i] >> (8 * b));
	int rc = write_at(w->file, w->z, BLOCK_HEADER + zlen, err);
	w->raw_len = 0;
	w->have_prev = false;
	return rc;
}

int dda__run_put(struct dda__run_writer *w, const struct dda__event *e, struct dda_error *err)
{
	const struct dda__event *p = &w->prev;
	size_t need = w->raw_len + EVENT_FIXED_MAX + e->key_len + e->seq_len;
	if (grow(&w->raw, &w->raw_cap, need))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	/* The previous key is in this block, at prev_key_off (the buffer may
	 * have moved). */
	bool same = w->have_prev && p->khash == e->khash && p->key_len == e->key_len &&
		    !memcmp(w->raw + w->prev_key_off, e->key, e->key_len);
	bool old_prev = same && (p->flags & DDA__F_NEW) && (e->flags & DDA__F_OLD) &&
			!memcmp(p->new_digest, e->old_digest, DDA_DIGEST_LEN);
	uint8_t *o = w->raw + w->raw_len;
	*o++ = (uint8_t)((same ? H_SAME_KEY : 0) | (old_prev ? H_OLD_IS_PREV : 0) |
			 (e->seq ? H_SEQ : 0));
	*o++ = e->event;
	*o++ = e->flags;
	if (!same) {
		o = put_varint(o, e->khash - (w->have_prev ? p->khash : 0));
		o = put_varint(o, e->key_len);
		w->prev_key_off = (size_t)(o - w->raw);
		memcpy(o, e->key, e->key_len);
		o += e->key_len;
	}
	o = put_varint(
	    o, zigzag((int64_t)((uint64_t)e->time - (w->have_prev ? (uint64_t)p->time : 0))));
	o = put_varint(o, e->line);
	o = put_varint(o, e->obj);
	o = put_varint(o, e->index);
	if (e->seq) {
		o = put_varint(o, e->seq_len);
		memcpy(o, e->seq, e->seq_len);
		o += e->seq_len;
	}
	if ((e->flags & DDA__F_OLD) && !old_prev) {
		memcpy(o, e->old_digest, DDA_DIGEST_LEN);
		o += DDA_DIGEST_LEN;
	}
	if (e->flags & DDA__F_NEW) {
		memcpy(o, e->new_digest, DDA_DIGEST_LEN);
		o += DDA_DIGEST_LEN;
	}
	w->prev = *e;
	w->prev.key = NULL;
	w->prev.seq = NULL;
	w->have_prev = true;
	w->raw_len = (size_t)(o - w->raw);
	w->events++;
	return w->raw_len >= DDA__RUN_BLOCK ? flush_block(w, err) : 0;
}

int dda__run_finish(struct dda__run_writer *w, struct dda__run *out, struct dda_error *err)
{
	int rc = flush_block(w, err);
	if (rc)
		return rc;
	*out = (struct dda__run){w->file, w->start, w->file->size - w->start, w->events};
	return 0;
}

/* ---- reading ---- */

int dda__run_reader_init(struct dda__run_reader *r, const struct dda__run *run,
			 struct dda_error *err)
{
	memset(r, 0, sizeof(*r));
	r->run = *run;
	if (inflateInit(&r->zs) != Z_OK)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	r->zs_ready = true;
	return 0;
}

void dda__run_reader_release(struct dda__run_reader *r)
{
	if (r->zs_ready)
		inflateEnd(&r->zs);
	free(r->raw);
	free(r->z);
	memset(r, 0, sizeof(*r));
}

static int corrupt(const struct dda__run_reader *r, struct dda_error *err, const char *what)
{
	return dda_error_set(err, DDA_EFORMAT, "a spilled run in '%s' is damaged: %s",
			     r->run.file->dir, what);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int load_block(struct dda__run_reader *r, struct dda_error *err)
{
	uint8_t h[BLOCK_HEADER];
	const struct dda__spill_file *f = r->run.file;
	if (r->run.len - r->pos < BLOCK_HEADER)
		return corrupt(r, err, "a block header is cut short");
	int rc = read_at(f, h, sizeof(h), r->run.off + r->pos, err);
	if (rc)
		return rc;
	size_t zlen = le32(h), rawlen = le32(h + 4);
	if (!zlen || !rawlen || zlen > BLOCK_Z_MAX || rawlen > BLOCK_RAW_MAX ||
	    zlen > r->run.len - r->pos - BLOCK_HEADER)
		return corrupt(r, err, "a block's lengths are out of bounds");
	if (grow(&r->z, &r->z_cap, zlen) || grow(&r->raw, &r->raw_cap, rawlen))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	rc = read_at(f, r->z, zlen, r->run.off + r->pos + BLOCK_HEADER, err);
	if (rc)
		return rc;
	inflateReset(&r->zs);
	r->zs.next_in = r->z;
	r->zs.avail_in = (uInt)zlen;
	r->zs.next_out = r->raw;
	r->zs.avail_out = (uInt)rawlen;
	if (inflate(&r->zs, Z_FINISH) != Z_STREAM_END || r->zs.avail_out || r->zs.avail_in)
		return corrupt(r, err, "a block does not inflate to its length");
	r->pos += BLOCK_HEADER + zlen;
	r->raw_len = rawlen;
	r->at = 0;
	r->have_prev = false;
	return 0;
}

/* Decodes the event at c into e, whose fields hold the previous event of
 * the block when have_prev. False when the bytes are no event. */
static bool decode_event(struct cur *c, struct dda__event *e, bool have_prev)
{
	const uint8_t *head = get_bytes(c, 3);
	if (!head)
		return false;
	uint8_t h = head[0], prev_flags = e->flags;
	bool same = h & H_SAME_KEY, old_prev = h & H_OLD_IS_PREV;
	if ((h & ~H_ALL) || head[1] > DDA_EV_STATE || (head[2] & ~DDA__F_ALL) ||
	    (same && !have_prev) || (old_prev && !same))
		return false;
	e->event = head[1];
	e->flags = head[2];
	if (old_prev && (!(prev_flags & DDA__F_NEW) || !(e->flags & DDA__F_OLD)))
		return false;
	if (!same) {
		e->khash = get_varint(c) + (have_prev ? e->khash : 0);
		e->key_len = get_u32(c);
		e->key = get_bytes(c, e->key_len);
	}
	e->time =
	    (int64_t)((uint64_t)unzigzag(get_varint(c)) + (have_prev ? (uint64_t)e->time : 0));
	e->line = get_varint(c);
	e->obj = get_u32(c);
	e->index = get_u32(c);
	e->seq = NULL;
	e->seq_len = 0;
	if (h & H_SEQ) {
		uint64_t n = get_varint(c);
		e->seq = (const char *)get_bytes(c, n);
		e->seq_len = (uint16_t)n;
		if (n > DDA__SEQ_MAX)
			c->bad = true;
	}
	if (old_prev)
		memcpy(e->old_digest, e->new_digest, DDA_DIGEST_LEN);
	else if (e->flags & DDA__F_OLD) {
		const uint8_t *d = get_bytes(c, DDA_DIGEST_LEN);
		if (d)
			memcpy(e->old_digest, d, DDA_DIGEST_LEN);
	} else {
		memset(e->old_digest, 0, DDA_DIGEST_LEN);
	}
	if (e->flags & DDA__F_NEW) {
		const uint8_t *d = get_bytes(c, DDA_DIGEST_LEN);
		if (d)
			memcpy(e->new_digest, d, DDA_DIGEST_LEN);
	} else {
		memset(e->new_digest, 0, DDA_DIGEST_LEN);
	}
	return !c->bad && e->key;
}

int dda__run_next(struct dda__run_reader *r, struct dda_error *err)
{
	if (r->at == r->raw_len) {
		if (r->pos == r->run.len) {
			if (r->events != r->run.events)
				return corrupt(r, err, "it holds fewer events than were written");
			return 0;
		}
		int rc = load_block(r, err);
		if (rc)
			return rc;
	}
	struct cur c = {r->raw + r->at, r->raw + r->raw_len, false};
	if (!decode_event(&c, &r->cur, r->have_prev))
		return corrupt(r, err, "an event cannot be decoded");
	r->at = (size_t)(c.p - r->raw);
	r->have_prev = true;
	if (++r->events > r->run.events)
		return corrupt(r, err, "it holds more events than were written");
	return 1;
}
