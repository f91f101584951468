/* SHA-256 (OpenSSL), hex, a fast 64-bit hash, and the arena. */
#include "util/util.h"

/* A record's digests are of a few hundred bytes, where EVP's dispatch
 * (provider lookup, context set-up) costs about 100 ns a digest more than
 * the digest functions themselves, measured on this project's machine:
 * about a third of a seed record's hashing. OpenSSL 3 deprecates those
 * functions but keeps them (the same assembly, SHA extensions included);
 * a build that compiles them out takes the EVP path. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#if !defined(OPENSSL_NO_DEPRECATED_3_0)
#define DDA_SHA_LOW 1

int dda__sha256_init(struct dda__sha256 *h)
{
	if (!h->ctx && !(h->ctx = malloc(sizeof(SHA256_CTX))))
		return DDA_ENOMEM;
	return SHA256_Init(h->ctx) == 1 ? 0 : DDA_EINTERNAL;
}

void dda__sha256_update(struct dda__sha256 *h, const void *p, size_t n)
{
	SHA256_Update(h->ctx, p, n);
}

void dda__sha256_final(struct dda__sha256 *h, uint8_t out[DDA_SHA256_LEN])
{
	SHA256_Final(out, h->ctx);
}

int dda__sha256_copy(struct dda__sha256 *dst, const struct dda__sha256 *src)
{
	if (!dst->ctx && !(dst->ctx = malloc(sizeof(SHA256_CTX))))
		return DDA_ENOMEM;
	memcpy(dst->ctx, src->ctx, sizeof(SHA256_CTX));
	return 0;
}

void dda__sha256_release(struct dda__sha256 *h)
{
	if (h->ctx)
		OPENSSL_cleanse(h->ctx, sizeof(SHA256_CTX));
	free(h->ctx);
	h->ctx = NULL;
}
#else
int dda__sha256_init(struct dda__sha256 *h)
{
	if (!h->ctx && !(h->ctx = EVP_MD_CTX_new()))
		return DDA_ENOMEM;
	if (!h->md && !(h->md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return DDA_EINTERNAL;
	if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1)
		return DDA_EINTERNAL;
	return 0;
}

void dda__sha256_update(struct dda__sha256 *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->ctx, p, n);
}

void dda__sha256_final(struct dda__sha256 *h, uint8_t out[DDA_SHA256_LEN])
{
	unsigned int len = 0;
	EVP_DigestFinal_ex(h->ctx, out, &len);
}

int dda__sha256_copy(struct dda__sha256 *dst, const struct dda__sha256 *src)
{
	if (!dst->ctx && !(dst->ctx = EVP_MD_CTX_new()))
		return DDA_ENOMEM;
	return EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) == 1 ? 0 : DDA_EINTERNAL;
}

void dda__sha256_release(struct dda__sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	h->ctx = NULL;
	h->md = NULL;
}
#endif

int dda__sha256_digest(struct dda__sha256 *h, const void *p, size_t n, uint8_t out[DDA_SHA256_LEN])
{
	int rc = dda__sha256_init(h);
	if (rc)
		return rc;
	dda__sha256_update(h, p, n);
	dda__sha256_final(h, out);
	return 0;
}

void dda__sha256(const void *p, size_t n, uint8_t out[DDA_SHA256_LEN])
{
#ifdef DDA_SHA_LOW
	SHA256(p, n, out);
#else
	unsigned int len = 0;
	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
#endif
}

void dda__hex(const uint8_t *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int dda__hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* FNV-1a over 8-byte words with a final avalanche (splitmix64's mixer):
 * fast, and good enough for hash tables keyed by item keys. */
uint64_t dda__hash64(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325) ^ n;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * UINT64_C(0x100000001b3);
		h ^= h >> 29;
		s += 8;
		n -= 8;
	}
	while (n--)
		h = (h ^ *s++) * UINT64_C(0x100000001b3);
	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return h;
}

uint64_t dda__hash64_wide(const void *p, size_t n)
{
	const unsigned char *s = p;
	if (n < 64)
		return dda__hash64(p, n);
	/* Four lanes of dda__hash64's step, independent of each other. */
	uint64_t h[4] = {UINT64_C(0xcbf29ce484222325) ^ n, UINT64_C(0x9e3779b97f4a7c15),
			 UINT64_C(0xc2b2ae3d27d4eb4f), UINT64_C(0x165667b19e3779f9)};
	while (n >= 32) {
		for (int i = 0; i < 4; i++) {
			uint64_t w;
			memcpy(&w, s + 8 * i, 8);
			h[i] = (h[i] ^ w) * UINT64_C(0x100000001b3);
			h[i] ^= h[i] >> 29;
		}
		s += 32;
		n -= 32;
	}
	uint64_t tail = dda__hash64(s, n);
	uint64_t all[5] = {h[0], h[1], h[2], h[3], tail};
	return dda__hash64(all, sizeof(all));
}

/* Blocks of 1 MiB; larger requests get a block of their own. */
#define DDA_ARENA_BLOCK (1u << 20)

struct dda__arena_block {
	struct dda__arena_block *next;
	size_t used, size;
	_Alignas(8) unsigned char data[];
};

void dda__arena_init(struct dda__arena *a)
{
	a->head = NULL;
	a->used = 0;
}

void dda__arena_release(struct dda__arena *a)
{
	struct dda__arena_block *b = a->head;
	while (b) {
		struct dda__arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
	a->used = 0;
}

void *dda__arena_alloc(struct dda__arena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct dda__arena_block *b = a->head;
	if (!b || b->size - b->used < n) {
		size_t size = n > DDA_ARENA_BLOCK / 4 ? n : DDA_ARENA_BLOCK;
		struct dda__arena_block *nb = malloc(sizeof(*nb) + size);
		if (!nb)
			return NULL;
		nb->size = size;
		nb->used = 0;
		if (size == n && b) {
			/* Keep filling the current block; the big one goes behind it. */
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = b;
			a->head = nb;
		}
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += n;
	a->used += n;
	return p;
}

void dda__arena_splice(struct dda__arena *into, struct dda__arena *from)
{
	struct dda__arena_block *tail = from->head;
	if (!tail)
		return;
	while (tail->next)
		tail = tail->next;
	/* Behind the current block, so `into` keeps filling the one it has. */
	if (into->head) {
		tail->next = into->head->next;
		into->head->next = from->head;
	} else {
		into->head = from->head;
	}
	into->used += from->used;
	from->head = NULL;
	from->used = 0;
}

char *dda__arena_strndup(struct dda__arena *a, const char *s, size_t n)
{
	char *p = dda__arena_alloc(a, n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
