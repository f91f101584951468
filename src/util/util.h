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
	void *ctx; /* EVP_MD_CTX */
	void *md;  /* EVP_MD, fetched once */
};
int dda__sha256_init(struct dda__sha256 *h);
void dda__sha256_update(struct dda__sha256 *h, const void *p, size_t n);
void dda__sha256_final(struct dda__sha256 *h, uint8_t out[DDA_SHA256_LEN]);
void dda__sha256_release(struct dda__sha256 *h);
/* init + update + final with a reusable context. */
int dda__sha256_digest(struct dda__sha256 *h, const void *p, size_t n, uint8_t out[DDA_SHA256_LEN]);
/* One-shot digest (fetches the algorithm each time: not for hot paths). */
void dda__sha256(const void *p, size_t n, uint8_t out[DDA_SHA256_LEN]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void dda__hex(const uint8_t *p, size_t n, char *out);

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

/* 64-bit non-cryptographic hash for hash tables and lane sharding. */
uint64_t dda__hash64(const void *p, size_t n);

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

#include "util/banned.h"

#endif
