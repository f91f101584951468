/* Internal pieces of evidence bundles: the SHA256SUMS format, signatures,
 * and the capped reader of an untrusted bundle. */
#ifndef DDA_EVIDENCE_IMPL_H
#define DDA_EVIDENCE_IMPL_H

#include "util/util.h"
#include "ddbaudit/evidence.h"

/* A bundle holds a handful of files: SHA256SUMS lists at most this many. */
#define DDA_SUMS_MAX_LINES 32
/* File names in a bundle are short, fixed names. */
#define DDA_BUNDLE_NAME_MAX 64
/* SHA256SUMS, the signature and SIGNATURE.json are small: a larger one is
 * not ours. */
#define DDA_BUNDLE_SMALL_MAX (64 * 1024)
/* Reports and the manifest of a large run: 10M objects at ~250 bytes a
 * manifest line is 2.5 GB; an entry beyond this is refused. */
#define DDA_BUNDLE_ENTRY_MAX ((uint64_t)64 << 30)
/* Entries read from a bundle before it is called malformed. */
#define DDA_BUNDLE_MAX_ENTRIES 64

/* One line of SHA256SUMS. */
struct dda__sum {
	char name[DDA_BUNDLE_NAME_MAX];
	char hex[2 * DDA_SHA256_LEN + 1];
};

/* Parses SHA256SUMS as sha256sum writes it: "HEX  NAME\n" (or "HEX *NAME"
 * for binary mode), lowercase or uppercase hex, no escaped names. A name
 * with '/' or a control character, a repeated name, or more than
 * DDA_SUMS_MAX_LINES lines is refused. DDA_EFORMAT with the line in why. */
int dda__sums_parse(dda_slice text, struct dda__sum *out, size_t *n, struct dda_buf *why);
/* Appends "HEX  NAME\n". */
int dda__sums_line(struct dda_buf *b, const char *name, const uint8_t sha[DDA_SHA256_LEN]);

/* Whether name may be an entry of a bundle: a report file name, the
 * manifest, SHA256SUMS, its signature or SIGNATURE.json. */
bool dda__bundle_name_known(const char *name);

/* Ed25519 signing with a PEM private key; sig gets 64 bytes. keyid gets
 * the SHA-256 of the public key's DER SubjectPublicKeyInfo (hex). */
int dda__sign_ed25519(const char *pem_path, const void *msg, size_t n, uint8_t sig[64],
		      char keyid[65], struct dda_error *err);
/* Verifies a signature of msg with a PEM public key (Ed25519) or a DER
 * SubjectPublicKeyInfo (ECDSA with SHA-256 when der is set). 0 when it
 * holds, DDA_EFORMAT when it does not, another code (and err) when the key
 * cannot be used. keyid as above. */
int dda__verify_pem(const char *pem_path, const void *msg, size_t n, const void *sig, size_t siglen,
		    char keyid[65], struct dda_error *err);
int dda__verify_der(const void *der, size_t derlen, const void *msg, size_t n, const void *sig,
		    size_t siglen, char keyid[65], struct dda_error *err);

/* A bundle read into unlinked temporary files, entry by entry, with the
 * caps above. Problems of its structure (an unknown, repeated, oversized or
 * non-regular entry) are not errors: they are listed in problems, and the
 * entry is left out. */
struct dda__entry {
	char name[DDA_BUNDLE_NAME_MAX];
	FILE *f; /* the bytes, rewound */
	uint64_t size;
	char hex[2 * DDA_SHA256_LEN + 1];
};
struct dda__bundle {
	struct dda__entry e[DDA_BUNDLE_MAX_ENTRIES];
	size_t n;
	struct dda_buf problems;     /* "; "-separated */
	uint8_t sha[DDA_SHA256_LEN]; /* of the whole bundle file */
};
/* Reads path (or, when fd >= 0, the file open there). DDA_EIO or
 * DDA_EFORMAT when it is not a readable tar.gz at all. */
int dda__bundle_read(struct dda__bundle *b, const char *path, struct dda_error *err);
/* The same from bytes in memory (the fuzz target). */
int dda__bundle_read_mem(struct dda__bundle *b, const void *p, size_t n, struct dda_error *err);
void dda__bundle_release(struct dda__bundle *b);
const struct dda__entry *dda__bundle_find(const struct dda__bundle *b, const char *name);
/* Reads an entry whole into out (bounded by out->max). */
int dda__entry_slurp(const struct dda__entry *e, struct dda_buf *out, struct dda_error *err);

/* SHA-256 of a stream from its start; rewinds it after. */
int dda__hash_stream(FILE *f, uint8_t sha[DDA_SHA256_LEN], uint64_t *size);

#endif
