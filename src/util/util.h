/* Internal helpers with no dependencies on the rest of ddbaudit: hashing,
 * an append-only arena, and the banned-function list. */
#ifndef DDA_UTIL_H
#define DDA_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddbaudit/common.h"
#include "ddbaudit/time.h"

#define DDA_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DDA_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DDA_MAX(a, b) ((a) > (b) ? (a) : (b))

/* SHA-256 through OpenSSL's EVP interface. A context is reusable and keeps
 * the fetched algorithm: fetching it per digest takes a lock in OpenSSL 3,
 * which shows in profiles when every small object is hashed. Zero-init. */
#define DDA_SHA256_LEN 32
struct dda__sha256 {
	void *ctx; /* the digest's state (SHA256_CTX, or an EVP_MD_CTX) */
	void *md;  /* EVP_MD, fetched once (the EVP path only) */
};
int dda__sha256_init(struct dda__sha256 *h);
void dda__sha256_update(struct dda__sha256 *h, const void *p, size_t n);
void dda__sha256_final(struct dda__sha256 *h, uint8_t out[DDA_SHA256_LEN]);
void dda__sha256_release(struct dda__sha256 *h);
/* dst takes src's state (a digest of a common prefix, continued twice). */
int dda__sha256_copy(struct dda__sha256 *dst, const struct dda__sha256 *src);
/* init + update + final with a reusable context. */
int dda__sha256_digest(struct dda__sha256 *h, const void *p, size_t n, uint8_t out[DDA_SHA256_LEN]);
/* One-shot digest (fetches the algorithm each time: not for hot paths). */
void dda__sha256(const void *p, size_t n, uint8_t out[DDA_SHA256_LEN]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void dda__hex(const uint8_t *p, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int dda__hex_value(char c);

/* Writes the explanation of a rejected input into why (which may be NULL)
 * and returns DDA_EFORMAT, or DDA_ENOMEM when memory ran out. An explanation
 * too long for why leaves it failed (sticky), never a cut message passed as
 * whole. */
int dda__explain(struct dda_buf *why, const char *fmt, ...) DDA_PRINTF(2, 3);

/* qsort that accepts an empty (even NULL) array: qsort(NULL, 0, ...) is
 * undefined behaviour. */
static inline void dda__sort(void *base, size_t n, size_t size,
			     int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, size, cmp);
}

/* Sorts v[0..n) by key, stably (equal keys keep their order), in O(n);
 * tmp is scratch room for n pairs. at is the caller's: typically the
 * element's position, so that one gather orders the elements themselves. */
struct dda__rkey {
	uint64_t key;
	uint64_t at;
};
void dda__radix_sort(struct dda__rkey *v, struct dda__rkey *tmp, size_t n);

/* 64-bit non-cryptographic hash for hash tables and lane sharding. */
uint64_t dda__hash64(const void *p, size_t n);
/* Another 64-bit hash, for a few hundred bytes and more: four times the
 * words a step of dda__hash64 takes (its steps wait on each other). */
uint64_t dda__hash64_wide(const void *p, size_t n);

/* dda_buf_add and dda_buf_addc, inline while the buffer has room (cap
 * never passes max + 1, so room means the bound holds): for the writers
 * that append a few bytes at a time, where the call costs more than the
 * copy. */
static inline int dda__buf_put(struct dda_buf *b, const void *p, size_t n)
{
	if (b->err || n >= b->cap - b->len || !b->ptr)
		return dda_buf_add(b, p, n);
	memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

static inline int dda__buf_putc(struct dda_buf *b, char c)
{
	if (b->err || b->cap - b->len < 2 || !b->ptr)
		return dda_buf_addc(b, c);
	b->ptr[b->len++] = c;
	b->ptr[b->len] = '\0';
	return 0;
}

/* Append-only arena: blocks never move, so pointers into it stay valid
 * until dda__arena_release. Not thread-safe; one arena per thread. */
struct dda__arena_block;
struct dda__arena {
	struct dda__arena_block *head;
	size_t used; /* bytes handed out, for memory accounting */
};
void dda__arena_init(struct dda__arena *a);
void dda__arena_release(struct dda__arena *a);
/* Returns n bytes aligned to 8, or NULL when out of memory. */
void *dda__arena_alloc(struct dda__arena *a, size_t n);
/* Moves every block of `from` into `into`; `from` is left empty. Pointers
 * into either stay valid. */
void dda__arena_splice(struct dda__arena *into, struct dda__arena *from);
/* Copies n bytes plus a NUL terminator; NULL when out of memory. */
char *dda__arena_strndup(struct dda__arena *a, const char *s, size_t n);

/* Reads a whole file into b (bounded by b->max). Returns 0, DDA_ENOTFOUND,
 * DDA_EIO or DDA_ETOOBIG, with the detail in err. */
int dda__read_file(const char *path, struct dda_buf *b, struct dda_error *err);

/* The canonical serialization's length prefixes (docs/canonical-form.md):
 * a 4-byte big-endian length, alone or before the bytes it counts. */
int dda__put_u32(struct dda_buf *b, size_t v);
int dda__put_bytes(struct dda_buf *b, const void *p, size_t n);
/* Rewrites the u32 placeholder at `at` with the number of bytes after it. */
void dda__patch_u32(struct dda_buf *b, size_t at);

/* Appends s as a JSON string literal (with quotes) to b. */
int dda__json_quote(struct dda_buf *b, const char *s, size_t n);

/* Names (object keys, file names, version ids) are bytes; outputs are UTF-8.
 * The escape is lossless: each backslash doubled, each byte that is not part
 * of valid UTF-8 (RFC 3629) as the text \xHH (uppercase hex), valid UTF-8
 * as is (docs/report.md, "Names that are not UTF-8"). */
bool dda__utf8_valid(const char *s, size_t n);
/* Whether a name is shown as is in text outputs: valid UTF-8, no backslash. */
bool dda__name_plain(const char *s, size_t n);
/* Appends the escape of s[0..n) to out (NUL-terminated, even when empty). */
int dda__name_escape(struct dda_buf *out, const char *s, size_t n);
/* A name for a text output (CSV, Markdown, listings): s itself when plain,
 * else its escape, built in tmp; "" for NULL or when tmp failed. The result
 * is borrowed from s or tmp. */
const char *dda__name_text(struct dda_buf *tmp, const char *s);
/* Free text (messages that may quote a name) made valid UTF-8: s itself when
 * valid, else its escape in tmp. Borrowed from s or tmp. */
const char *dda__text_utf8(struct dda_buf *tmp, const char *s);
/* Appends `"member":"..."` for a name to a JSON object being built: the name
 * as is when it is valid UTF-8, else its escape followed by
 * `,"member_b64":"..."`, the exact bytes in base64. */
int dda__json_name(struct dda_buf *out, const char *member, const char *s, size_t n);
/* Appends the standard base64 (RFC 4648, '=' padded) of p[0..n) to out. */
int dda__base64_encode(const void *p, size_t n, struct dda_buf *out);

/* An output file that is whole or absent (git's lockfile): written under a
 * unique temporary name (".NAME.RANDOM.tmp", created O_EXCL) in the final
 * name's directory, fsynced, then renamed over the final name and the
 * directory fsynced. Until the rename, the final name is untouched; a failed
 * or discarded file leaves nothing behind. Usage: open, write (through
 * dda__afile_stream, or by the temporary path, tmp.ptr), then commit (or
 * finish now and rename later, as a set does), and always discard. */
struct dda__afile {
	int fd;		     /* the temporary file, -1 once closed */
	FILE *f;	     /* stdio over fd, once asked for */
	struct dda_buf tmp;  /* the temporary path */
	struct dda_buf path; /* the final path */
	bool finished;	     /* flushed, fsynced and closed */
	bool renamed;
};
/* An empty handle: discard is then a no-op. open initializes too. */
void dda__afile_init(struct dda__afile *a);
int dda__afile_open(struct dda__afile *a, const char *path, struct dda_error *err);
/* A stdio stream over the temporary file (owned by a), or NULL. */
FILE *dda__afile_stream(struct dda__afile *a, struct dda_error *err);
/* Flushes, fsyncs and closes the temporary file: every write error, the
 * deferred ones of close included, is reported here. */
int dda__afile_finish(struct dda__afile *a, struct dda_error *err);
/* Renames a finished file over its final name (no directory sync). */
int dda__afile_rename(struct dda__afile *a, struct dda_error *err);
/* finish (unless done), rename, then fsync the directory. */
int dda__afile_commit(struct dda__afile *a, struct dda_error *err);
/* Closes, removes the temporary file unless renamed, frees; the handle is
 * left as dda__afile_init leaves it. */
void dda__afile_discard(struct dda__afile *a);
/* fsyncs the directory that holds path, so that a rename in it lasts. */
/* mkdir -p: creates path and its missing parents. 0, or DDA_EIO (or
 * DDA_ENOMEM) with the directory that could not be made in err. */
int dda__make_dir(const char *path, struct dda_error *err);
int dda__dir_sync(const char *path, struct dda_error *err);
/* Takes an exclusive flock on DIR/.lock (created if missing), waiting for
 * another holder; *fd gets the lock, released by dda__dir_unlock. A signal
 * during the wait (a handler without SA_RESTART) gives DDA_EINTR. */
int dda__dir_lock(const char *dir, int *fd, struct dda_error *err);
void dda__dir_unlock(int fd);

#include "util/banned.h"

#endif
