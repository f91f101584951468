/* The replay spool: what each planned record is made from (its synthesis
 * input, dda__synth_in_write), for sources that cannot be read again, in
 * blocks of about 64 KiB, one stream of blocks a lane and writer (each
 * decoding thread has its writer, so adding takes no lock). Blocks stay in
 * memory as they are while the spool's share of the memory limit allows
 * (deflating and inflating them costs more CPU than the rest of a record's
 * planning); past it they go to a temporary file deflated. A lane delivers
 * its records in time order, close to the order they were read in, so it
 * reads the file's blocks nearly in order through a small cache and
 * inflates each about once. */
#include "replay/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <sys/mman.h>
#include <unistd.h>

/* Large enough for deflate to find the structure records repeat (names,
 * types, the shape of an image), small enough that a lane's cache of a few
 * blocks stays small. */
#define SPOOL_BLOCK (64 * 1024)
/* Fast deflate (libdeflate, whole blocks): the spool is written as fast as
 * the source is decoded. */
#define SPOOL_LEVEL 1
/* The cache of inflated blocks: this many a lane, at most, and at least 2. */
#define SPOOL_CACHE_BYTES ((size_t)16 << 20)
#define SPOOL_SLOTS_MAX 8

struct block {
	uint64_t off;	    /* in the file */
	uint32_t clen, rlen; /* deflated, inflated */
	char *mem;	    /* the block itself when held in memory (rlen bytes) */
};

/* A block being filled: in place in its writer's slab while the spool's
 * share of memory has room (mem, len of SPOOL_BLOCK reserved), else in raw
 * until it is full. */
struct open_block {
	struct dda_buf raw;
	char *mem;
	size_t len;
	uint32_t blk;
	bool used;
};

/* Each adding thread has its own open blocks, so that adding a record
 * takes no lock: only opening and closing a block do. */
struct dda__spool_writer {
	struct dda__spool_writer *next; /* the spool's writers */
	struct open_block *open;	/* one a lane */
	char *slab;			/* where its full blocks held in memory go */
	size_t slab_used, slab_cap;
};

struct dda__spool {
	int fd;
	pthread_mutex_t mu;
	struct block *blocks;
	size_t nblocks, cap;
	struct dda__spool_writer *writers;
	int lanes;
	uint64_t end; /* bytes written (or reserved) */
	uint64_t raw;
	uint64_t mem_limit, mem_used; /* blocks held in memory */
	uint64_t mem_room;	      /* and the slabs they are held in */
	void **slabs;
	size_t nslabs, slabs_cap;
};

int dda__spool_new(struct dda__spool **out, int lanes, const char *dir, struct dda_error *err)
{
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	char path[4096];
	struct dda__spool *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	s->lanes = lanes;
	s->fd = -1;
	if (pthread_mutex_init(&s->mu, NULL)) {
		free(s);
		return dda_error_set(err, DDA_ENOMEM, "cannot create a lock");
	}
	*out = s;
	snprintf(path, sizeof(path), "%s/ddbaudit-replay-XXXXXX", dir && *dir ? dir : "/tmp");
	s->fd = mkstemp(path);
	if (s->fd < 0)
		return dda_error_set(err, DDA_EIO, "cannot create a spool file in %s: %s",
				     dir && *dir ? dir : "/tmp", strerror(errno));
	unlink(path); /* gone when closed, whatever happens */
	return 0;
}

void dda__spool_free(struct dda__spool *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	for (size_t i = 0; i < s->nslabs; i++)
		free(s->slabs[i]);
	free(s->slabs);
	for (struct dda__spool_writer *w = s->writers, *next; w; w = next) {
		next = w->next;
		for (int l = 0; l < s->lanes; l++)
			dda_buf_release(&w->open[l].raw);
		free(w->open);
		free(w);
	}
	free(s->blocks);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

uint64_t dda__spool_bytes(const struct dda__spool *s)
{
	return s ? s->end : 0;
}

void dda__spool_set_memory(struct dda__spool *s, uint64_t bytes)
{
	s->mem_limit = bytes;
}

uint64_t dda__spool_memory(const struct dda__spool *s)
{
	return s ? s->mem_used : 0;
}

/* A new block id, with s->mu held. */
static int new_block(struct dda__spool *s, uint32_t *blk)
{
	if (s->nblocks == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		struct block *nv = realloc(s->blocks, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		s->blocks = nv;
		s->cap = cap;
	}
	if (s->nblocks >= UINT32_MAX - 1)
		return DDA_ETOOBIG;
	memset(&s->blocks[s->nblocks], 0, sizeof(*s->blocks));
	*blk = (uint32_t)s->nblocks++;
	return 0;
}

/* Blocks held in memory live in slabs, large and aligned so that the
 * kernel can back them with huge pages: a spool of a million records is
 * about 600 MB, and in 4 KiB pages it costs more in page faults than a
 * copy does. A block is filled in place in its slab (SPOOL_BLOCK reserved
 * when it opens, the rest of which a full block leaves unused: less than a
 * record); one opened without room there is filled in its open buffer, and
 * copied to a slab when full if there is room by then. */
#define SLAB_BYTES ((size_t)8 << 20)
#define SLAB_ALIGN ((size_t)2 << 20)

/* Room for n bytes in w's slab: a new slab when the spool's share of
 * memory allows one. */
static char *slab_room(struct dda__spool *s, struct dda__spool_writer *w, size_t n)
{
	if (w->slab && n <= w->slab_cap - w->slab_used)
		return w->slab + w->slab_used;
	size_t cap = DDA_MAX(SLAB_BYTES, (n + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN);
	bool room = false;
	pthread_mutex_lock(&s->mu);
	if (s->nslabs == s->slabs_cap) {
		size_t ncap = s->slabs_cap ? 2 * s->slabs_cap : 64;
		void **nv = realloc(s->slabs, ncap * sizeof(*nv));
		if (nv) {
			s->slabs = nv;
			s->slabs_cap = ncap;
		}
	}
	if (s->nslabs < s->slabs_cap && cap <= s->mem_limit - s->mem_room &&
	    s->mem_room <= s->mem_limit) {
		s->mem_room += cap;
		room = true;
	}
	pthread_mutex_unlock(&s->mu);
	if (!room)
		return NULL;
	char *slab = aligned_alloc(SLAB_ALIGN, cap);
	pthread_mutex_lock(&s->mu);
	if (slab)
		s->slabs[s->nslabs++] = slab;
	else
		s->mem_room -= cap;
	pthread_mutex_unlock(&s->mu);
	if (!slab)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(slab, cap, MADV_HUGEPAGE); /* a hint: without it, small pages */
#endif
	w->slab = slab;
	w->slab_used = 0;
	w->slab_cap = cap;
	return slab;
}

/* Keeps a full block in memory, a copy in w's slab, when the spool's share
 * of memory has room for it; raw is left empty for the next block. */
static bool keep_block(struct dda__spool *s, struct dda__spool_writer *w, uint32_t blk,
		       struct dda_buf *raw)
{
	size_t n = raw->len;
	char *mem = slab_room(s, w, n);
	if (!mem)
		return false;
	memcpy(mem, raw->ptr, n);
	w->slab_used += n;
	pthread_mutex_lock(&s->mu);
	s->mem_used += n;
	s->raw += n;
	s->blocks[blk] = (struct block){.rlen = (uint32_t)n, .mem = mem};
	pthread_mutex_unlock(&s->mu);
	raw->len = 0;
	return true;
}

/* Deflates a full block and writes it (outside the lock: only reserving
 * its place in the file and noting where it went are locked), unless it
 * stays in memory. */
static int write_block(struct dda__spool *s, struct dda__spool_writer *w, uint32_t blk,
		       struct dda_buf *raw, struct dda_error *err)
{
	if (keep_block(s, w, blk, raw))
		return 0;
	struct libdeflate_compressor *z = libdeflate_alloc_compressor(SPOOL_LEVEL);
	size_t bound = z ? libdeflate_deflate_compress_bound(z, raw->len) : 0;
	unsigned char *c = z ? malloc(bound) : NULL;
	int rc = 0;
	if (!c) {
		libdeflate_free_compressor(z);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	size_t clen = libdeflate_deflate_compress(z, raw->ptr, raw->len, c, bound);
	libdeflate_free_compressor(z);
	if (!clen)
		rc = dda_error_set(err, DDA_EINTERNAL, "cannot compress the spool");
	pthread_mutex_lock(&s->mu);
	uint64_t off = s->end;
	if (!rc)
		s->end += clen;
	pthread_mutex_unlock(&s->mu);
	for (size_t done = 0; !rc && done < clen;) {
		ssize_t put = pwrite(s->fd, c + done, clen - done, (off_t)(off + done));
		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0)
			rc = dda_error_set(err, DDA_EIO, "cannot write the spool file: %s",
					   put < 0 ? strerror(errno) : "no space");
		else
			done += (size_t)put;
	}
	free(c);
	if (!rc) {
		pthread_mutex_lock(&s->mu);
		s->blocks[blk] = (struct block){off, (uint32_t)clen, (uint32_t)raw->len, NULL};
		s->raw += raw->len;
		pthread_mutex_unlock(&s->mu);
	}
	return rc;
}

int dda__spool_writer_new(struct dda__spool *s, struct dda__spool_writer **out)
{
	struct dda__spool_writer *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (!w || !(w->open = calloc((size_t)s->lanes, sizeof(*w->open)))) {
		free(w);
		return DDA_ENOMEM;
	}
	for (int l = 0; l < s->lanes; l++)
		dda_buf_init(&w->open[l].raw, DDA_REPLAY_MAX_PAYLOAD + SPOOL_BLOCK);
	pthread_mutex_lock(&s->mu);
	w->next = s->writers;
	s->writers = w;
	pthread_mutex_unlock(&s->mu);
	*out = w;
	return 0;
}

/* Ends the open block: one filled in its slab is kept there as it is. */
static int close_block(struct dda__spool *s, struct dda__spool_writer *w, struct open_block *ob,
		       struct dda_error *err)
{
	int rc = 0;
	if (ob->mem) {
		pthread_mutex_lock(&s->mu);
		s->mem_used += ob->len;
		s->raw += ob->len;
		s->blocks[ob->blk] = (struct block){.rlen = (uint32_t)ob->len, .mem = ob->mem};
		pthread_mutex_unlock(&s->mu);
	} else if (ob->raw.len) {
		rc = write_block(s, w, ob->blk, &ob->raw, err);
	}
	ob->raw.len = 0;
	ob->mem = NULL;
	ob->len = 0;
	ob->used = false;
	return rc;
}

int dda__spool_add(struct dda__spool *s, struct dda__spool_writer *w, int lane, const void *p,
		   size_t n, uint32_t *blk, uint32_t *at, struct dda_error *err)
{
	struct open_block *ob = &w->open[lane];
	size_t len = ob->mem ? ob->len : ob->raw.len;
	int rc = 0;
	if (ob->used && len && len + n > SPOOL_BLOCK) {
		rc = close_block(s, w, ob, err);
		if (rc)
			return rc;
	}
	if (!ob->used) {
		pthread_mutex_lock(&s->mu);
		rc = new_block(s, &ob->blk);
		pthread_mutex_unlock(&s->mu);
		ob->used = !rc;
		if (!rc && n <= SPOOL_BLOCK && (ob->mem = slab_room(s, w, SPOOL_BLOCK)) != NULL) {
			w->slab_used += SPOOL_BLOCK;
			ob->len = 0;
		} else if (!rc) {
			/* Room for a whole block at once: no growing (and
			 * copying) by doubling on the way. */
			rc = dda_buf_grow(&ob->raw, DDA_MAX(n, (size_t)SPOOL_BLOCK));
		}
	}
	if (!rc) {
		*blk = ob->blk;
		if (ob->mem) {
			*at = (uint32_t)ob->len;
			memcpy(ob->mem + ob->len, p, n);
			ob->len += n;
		} else {
			*at = (uint32_t)ob->raw.len;
			rc = dda_buf_add(&ob->raw, p, n);
		}
	}
	return rc ? dda_error_set(err, rc, "out of memory") : 0;
}

int dda__spool_flush(struct dda__spool *s, struct dda_error *err)
{
	int rc = 0;
	for (struct dda__spool_writer *w = s ? s->writers : NULL; !rc && w; w = w->next)
		for (int l = 0; !rc && l < s->lanes; l++) {
			struct open_block *ob = &w->open[l];
			if (ob->used)
				rc = close_block(s, w, ob, err);
			dda_buf_release(&ob->raw);
		}
	return rc;
}

/* ---- reading ---- */

struct slot {
	uint32_t blk;
	uint64_t used; /* when last used, for eviction */
	struct dda_buf raw;
};

struct dda__spool_reader {
	const struct dda__spool *s;
	struct slot slot[SPOOL_SLOTS_MAX];
	int nslots;
	uint64_t tick;
	struct dda_buf comp;
	uint64_t inflated; /* blocks inflated, for the figures */
};

int dda__spool_reader_new(struct dda__spool_reader **out, const struct dda__spool *s,
			  int readers)
{
	struct dda__spool_reader *r = calloc(1, sizeof(*r));
	*out = r;
	if (!r)
		return DDA_ENOMEM;
	r->s = s;
	size_t per = SPOOL_CACHE_BYTES / SPOOL_BLOCK / (size_t)(readers > 0 ? readers : 1);
	r->nslots = (int)DDA_MAX(2, DDA_MIN(per, SPOOL_SLOTS_MAX));
	for (int i = 0; i < r->nslots; i++) {
		r->slot[i].blk = UINT32_MAX;
		dda_buf_init(&r->slot[i].raw, DDA_REPLAY_MAX_PAYLOAD + SPOOL_BLOCK);
	}
	dda_buf_init(&r->comp, DDA_BUF_UNLIMITED);
	return 0;
}

void dda__spool_reader_free(struct dda__spool_reader *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->nslots; i++)
		dda_buf_release(&r->slot[i].raw);
	dda_buf_release(&r->comp);
	free(r);
}

static int inflate_block(struct dda__spool_reader *r, const struct block *b, struct slot *sl,
			 struct dda_error *err)
{
	dda_buf_reset(&r->comp);
	dda_buf_reset(&sl->raw);
	if (dda_buf_grow(&r->comp, b->clen) || dda_buf_grow(&sl->raw, b->rlen))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	for (size_t done = 0; done < b->clen;) {
		ssize_t n = pread(r->s->fd, r->comp.ptr + done, b->clen - done,
				  (off_t)(b->off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return dda_error_set(err, DDA_EIO, "cannot read the spool file: %s",
					     n < 0 ? strerror(errno) : "it is shorter than written");
		done += (size_t)n;
	}
	struct libdeflate_decompressor *z = libdeflate_alloc_decompressor();
	if (!z)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	size_t got = 0;
	enum libdeflate_result zr =
	    libdeflate_deflate_decompress(z, r->comp.ptr, b->clen, sl->raw.ptr, b->rlen, &got);
	libdeflate_free_decompressor(z);
	if (zr != LIBDEFLATE_SUCCESS || got != b->rlen)
		return dda_error_set(err, DDA_EIO, "the spool file is damaged (block at %llu)",
				     (unsigned long long)b->off);
	sl->raw.len = got;
	r->inflated++;
	return 0;
}

int dda__spool_get(struct dda__spool_reader *r, uint32_t blk, uint32_t at, dda_slice *out,
		   bool *held, struct dda_error *err)
{
	*held = false;
	struct slot *sl = NULL, *old = &r->slot[0];
	if (blk >= r->s->nblocks)
		return dda_error_set(err, DDA_EINTERNAL, "no block %u in the spool", blk);
	const struct block *b = &r->s->blocks[blk];
	if (b->mem) {
		if (at > b->rlen)
			return dda_error_set(err, DDA_EINTERNAL, "no record at %u of spool block %u",
					     at, blk);
		*out = dda_slice_make(b->mem + at, b->rlen - at);
		*held = true;
		return 0;
	}
	for (int i = 0; i < r->nslots && !sl; i++) {
		if (r->slot[i].blk == blk)
			sl = &r->slot[i];
		else if (r->slot[i].used < old->used)
			old = &r->slot[i];
	}
	if (!sl) {
		sl = old;
		sl->blk = UINT32_MAX;
		int rc = inflate_block(r, &r->s->blocks[blk], sl, err);
		if (rc)
			return rc;
		sl->blk = blk;
	}
	sl->used = ++r->tick;
	if (at > sl->raw.len)
		return dda_error_set(err, DDA_EINTERNAL, "no record at %u of spool block %u", at,
				     blk);
	*out = dda_slice_make(sl->raw.ptr + at, sl->raw.len - at);
	return 0;
}
