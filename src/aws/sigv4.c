/* AWS Signature Version 4: canonical request, string to sign, signing key
 * derivation and signature (docs: "Create a signed AWS API request"). */
#include "aws/sigv4.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Canonical headers are few; more than this is a bug in the caller. */
#define MAX_SIGNED_HEADERS 32

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int dda__uri_encode(struct dda_buf *out, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = dda_buf_grow(out, n);
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			rc = dda_buf_addc(out, (char)c);
			continue;
		}
		char e[3] = {'%', hex[c >> 4], hex[c & 15]};
		rc = dda_buf_add(out, e, 3);
	}
	return rc;
}

struct enc_pair {
	char *name, *value;
};

static int cmp_pair(const void *pa, const void *pb)
{
	const struct enc_pair *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);
	return c ? c : strcmp(a->value, b->value);
}

static char *encoded(const char *s)
{
	struct dda_buf b;
	dda_buf_init(&b, DDA_BUF_UNLIMITED);
	if (dda_buf_adds(&b, "") || dda__uri_encode(&b, s, strlen(s), false))
		return NULL;
	return dda_buf_take(&b, NULL);
}

int dda__sigv4_query(struct dda_buf *out, const struct dda_kv *params, size_t n)
{
	struct enc_pair *p = n ? calloc(n, sizeof(*p)) : NULL;
	int rc = n && !p ? DDA_ENOMEM : 0;
	for (size_t i = 0; i < n && !rc; i++) {
		p[i].name = encoded(params[i].name);
		p[i].value = encoded(params[i].value ? params[i].value : "");
		if (!p[i].name || !p[i].value)
			rc = DDA_ENOMEM;
	}
	if (!rc)
		dda__sort(p, n, sizeof(*p), cmp_pair);
	for (size_t i = 0; i < n && !rc; i++)
		rc = dda_buf_addf(out, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
	for (size_t i = 0; i < n && p; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
	return rc;
}

struct header {
	char name[64];
	const char *value;
};

static int cmp_header(const void *pa, const void *pb)
{
	return strcmp(((const struct header *)pa)->name, ((const struct header *)pb)->name);
}

/* A header value as signed: trimmed, runs of spaces made one. */
static int add_value(struct dda_buf *b, const char *v)
{
	int rc = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < n && !rc; i++) {
		bool space = v[i] == ' ' || v[i] == '\t';
		if (space && i && (v[i - 1] == ' ' || v[i - 1] == '\t'))
			continue;
		rc = dda_buf_addc(b, space ? ' ' : v[i]);
	}
	return rc;
}

/* Canonical headers and the signed-headers list. */
static int canonical_headers(const struct dda_sigv4_request *r, struct dda_buf *cr,
			     struct dda_buf *signed_names)
{
	struct header h[MAX_SIGNED_HEADERS + 1];
	size_t n = 0;
	if (r->nheaders > MAX_SIGNED_HEADERS)
		return DDA_EINVAL;
	memcpy(h[n].name, "host", 5);
	h[n++].value = r->host;
	for (size_t i = 0; i < r->nheaders; i++, n++) {
		size_t len = strlen(r->headers[i].name);
		if (len >= sizeof(h[n].name))
			return DDA_EINVAL;
		for (size_t k = 0; k <= len; k++)
			h[n].name[k] = (char)tolower((unsigned char)r->headers[i].name[k]);
		h[n].value = r->headers[i].value;
	}
	dda__sort(h, n, sizeof(*h), cmp_header);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		rc = dda_buf_addf(cr, "%s:", h[i].name);
		if (!rc)
			rc = add_value(cr, h[i].value);
		if (!rc)
			rc = dda_buf_addc(cr, '\n');
		if (!rc)
			rc = dda_buf_addf(signed_names, "%s%s", i ? ";" : "", h[i].name);
	}
	return rc;
}

static int canonical_request(const struct dda_sigv4_request *r, struct dda_buf *cr,
			     struct dda_buf *signed_names)
{
	int rc = dda_buf_addf(cr, "%s\n", r->method);
	if (!rc && r->s3)
		rc = dda_buf_adds(cr, r->path);
	else if (!rc)
		rc = dda__uri_encode(cr, r->path, strlen(r->path), true);
	if (!rc)
		rc = dda_buf_addf(cr, "\n%s\n", r->query ? r->query : "");
	if (!rc)
		rc = canonical_headers(r, cr, signed_names);
	if (!rc)
		rc = dda_buf_addf(cr, "\n%s\n%s", signed_names->ptr, r->payload_sha256);
	return rc;
}

/* SHA-256's block: HMAC keys are padded (or hashed) to it. */
#define SHA256_BLOCK 64

/* HMAC-SHA256 (RFC 2104) on the caller's digest context, reused for the
 * five MACs of a signature: OpenSSL 3's one-shot HMAC() fetches the digest
 * and allocates a MAC context per call, which was a third of the
 * allocations of every S3 GET. False when the digest fails. */
static bool hmac(EVP_MD_CTX *md, const EVP_MD *sha, const void *key, size_t klen, const char *msg,
		 uint8_t out[32])
{
	uint8_t k[SHA256_BLOCK] = {0}, pad[SHA256_BLOCK], inner[32];
	unsigned int len = 0;
	bool ok = true;
	if (klen > SHA256_BLOCK)
		ok = EVP_Digest(key, klen, k, &len, sha, NULL);
	else
		memcpy(k, key, klen);
	for (size_t i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	ok = ok && EVP_DigestInit_ex(md, sha, NULL) && EVP_DigestUpdate(md, pad, sizeof(pad)) &&
	     EVP_DigestUpdate(md, msg, strlen(msg)) && EVP_DigestFinal_ex(md, inner, &len);
	for (size_t i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	ok = ok && EVP_DigestInit_ex(md, sha, NULL) && EVP_DigestUpdate(md, pad, sizeof(pad)) &&
	     EVP_DigestUpdate(md, inner, sizeof(inner)) && EVP_DigestFinal_ex(md, out, &len);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(inner, sizeof(inner));
	return ok;
}

int dda__sigv4_sign(const struct dda_sigv4_request *r, const char *access_key,
		    const char *secret_key, struct dda_buf *out, struct dda_buf *canonical)
{
	struct dda_buf cr, names, key, sts;
	uint8_t k[32], digest[32];
	char date[9], hex[65];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_MD *sha = EVP_MD_fetch(NULL, "SHA256", NULL);
	dda_buf_init(&cr, 1 << 20);
	dda_buf_init(&names, 4096);
	dda_buf_init(&key, 1024);
	dda_buf_init(&sts, 4096);
	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	int rc = md && sha ? canonical_request(r, &cr, &names) : DDA_ENOMEM;
	if (!rc && canonical)
		rc = dda_buf_add(canonical, cr.ptr, cr.len);
	if (rc)
		goto out;
	dda__sha256(cr.ptr, cr.len, digest);
	dda__hex(digest, 32, hex);
	rc = dda_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", r->amz_date,
			  date, r->region, r->service, hex);
	if (!rc)
		rc = dda_buf_addf(&key, "AWS4%s", secret_key);
	if (rc)
		goto out;
	if (!hmac(md, sha, key.ptr, key.len, date, k) || !hmac(md, sha, k, 32, r->region, k) ||
	    !hmac(md, sha, k, 32, r->service, k) || !hmac(md, sha, k, 32, "aws4_request", k) ||
	    !hmac(md, sha, k, 32, sts.ptr, digest)) {
		rc = DDA_EINTERNAL;
		goto out;
	}
	dda__hex(digest, 32, hex);
	rc = dda_buf_addf(out,
			  "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
			  "SignedHeaders=%s, Signature=%s",
			  access_key, date, r->region, r->service, names.ptr, hex);
out:
	/* The derived key signs any request of the day: it must not linger. */
	OPENSSL_cleanse(k, sizeof(k));
	if (key.ptr)
		OPENSSL_cleanse(key.ptr, key.len);
	dda_buf_release(&cr);
	dda_buf_release(&names);
	dda_buf_release(&key);
	dda_buf_release(&sts);
	EVP_MD_CTX_free(md);
	EVP_MD_free(sha);
	return rc;
}

void dda__amz_date(int64_t t, char out[17])
{
	char iso[DDA_TIME_STRLEN]; /* YYYY-MM-DDTHH:MM:SSZ */
	dda_time_format(t, false, iso);
	const int pick[] = {0, 1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 14, 15, 17, 18, 19};
	for (int i = 0; i < 16; i++)
		out[i] = iso[pick[i]];
	out[16] = '\0';
}
