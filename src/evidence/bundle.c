/* Writing an evidence bundle: the reports are written to unlinked
 * temporary files, hashed, listed in SHA256SUMS, which is signed; then all
 * of it goes into one ustar archive, gzip'd, written beside its final name
 * and renamed over it. */
#include "evidence/evidence_impl.h"
#include "aws/kms.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <unistd.h>

/* A file of the bundle, before it is archived. */
struct part {
	const char *name;
	FILE *f;
	uint64_t size;
	uint8_t sha[DDA_SHA256_LEN];
};

/* Report formats, the manifest, SIGNATURE.json, SHA256SUMS, the signature. */
#define MAX_PARTS (DDA_FMT__COUNT + 4)

struct writer {
	struct part parts[MAX_PARTS];
	size_t n;
	struct dda__afile out;
	struct dda__sha256 sha; /* of the bundle's bytes, as written */
	int write_errno;
};

int dda__hash_stream(FILE *f, uint8_t sha[DDA_SHA256_LEN], uint64_t *size)
{
	struct dda__sha256 h = {0};
	char buf[1 << 16];
	size_t got;
	uint64_t total = 0;
	if (fseek(f, 0, SEEK_SET) || dda__sha256_init(&h))
		return DDA_EIO;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		dda__sha256_update(&h, buf, got);
		total += got;
	}
	dda__sha256_final(&h, sha);
	dda__sha256_release(&h);
	if (ferror(f) || fseek(f, 0, SEEK_SET))
		return DDA_EIO;
	if (size)
		*size = total;
	return 0;
}

/* Adds a part from an open stream (taken), hashing it. */
static int add_stream(struct writer *w, const char *name, FILE *f, struct dda_error *err)
{
	struct part *p = &w->parts[w->n++];
	p->name = name;
	p->f = f;
	if (fflush(f) || dda__hash_stream(f, p->sha, &p->size))
		return dda_error_set(err, DDA_EIO, "cannot write '%s': %s", name, strerror(errno));
	return 0;
}

static int add_bytes(struct writer *w, const char *name, const void *p, size_t n,
		     struct dda_error *err)
{
	FILE *f = tmpfile();
	if (!f)
		return dda_error_set(err, DDA_EIO, "cannot make a temporary file: %s",
				     strerror(errno));
	if (n && fwrite(p, 1, n, f) != n) {
		fclose(f);
		return dda_error_set(err, DDA_EIO, "cannot write '%s': %s", name, strerror(errno));
	}
	return add_stream(w, name, f, err);
}

static int add_reports(struct writer *w, const struct dda_report_info *info,
		       const struct dda_result *res, struct dda_error *err)
{
	/* Every format --report DIR writes, whatever formats there are. */
	for (int fmt = 0; fmt < DDA_FMT__COUNT; fmt++) {
		FILE *f = tmpfile();
		if (!f)
			return dda_error_set(err, DDA_EIO, "cannot make a temporary file: %s",
					     strerror(errno));
		int rc = dda_report_write(fmt, info, res, f, err);
		if (rc) {
			fclose(f);
			return rc;
		}
		rc = add_stream(w, dda_report_file_name(fmt), f, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int add_manifest(struct writer *w, const char *path, struct dda_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return dda_error_set(err, DDA_EIO, "cannot open the manifest '%s': %s", path,
				     strerror(errno));
	return add_stream(w, DDA_BUNDLE_MANIFEST, f, err);
}

static int cmp_part(const void *a, const void *b)
{
	return strcmp(((const struct part *)a)->name, ((const struct part *)b)->name);
}

/* SHA256SUMS over the parts so far, sorted by name. */
static int make_sums(struct writer *w, struct dda_buf *sums)
{
	dda__sort(w->parts, w->n, sizeof(w->parts[0]), cmp_part);
	int rc = 0;
	for (size_t i = 0; !rc && i < w->n; i++)
		rc = dda__sums_line(sums, w->parts[i].name, w->parts[i].sha);
	return rc;
}

/* ---- signing ---- */

static int signature_json(struct writer *w, json_t *sig, struct dda_error *err)
{
	char *text = json_dumps(sig, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	struct dda_buf b;
	json_decref(sig);
	dda_buf_init(&b, DDA_BUNDLE_SMALL_MAX);
	int rc = text && !dda_buf_addf(&b, "%s\n", text)
		     ? add_bytes(w, DDA_BUNDLE_SIGNATURE, b.ptr, b.len, err)
		     : dda_error_set(err, DDA_ENOMEM, "out of memory");
	free(text);
	dda_buf_release(&b);
	return rc;
}

/* The key's public half, read before signing so that SIGNATURE.json (which
 * SHA256SUMS covers) can name it: SHA-256 of its DER SubjectPublicKeyInfo. */
static int ed25519_describe(struct writer *w, const char *pem, struct dda_error *err)
{
	uint8_t sig[64];
	char keyid[65];
	int rc = dda__sign_ed25519(pem, "", 0, sig, keyid, err);
	if (rc)
		return rc;
	return signature_json(
	    w,
	    json_pack("{sssssssss{ss}}", "algorithm", "Ed25519", "signed_file", DDA_BUNDLE_SUMS,
		      "signature_file", DDA_BUNDLE_SIG, "signature_format",
		      "raw 64-byte Ed25519 signature of the file's exact bytes (RFC 8032)", "key",
		      "public_key_sha256", keyid),
	    err);
}

static int ed25519_sign(const char *pem, const struct dda_buf *sums, struct dda_buf *sig,
			struct dda_error *err)
{
	uint8_t s[64];
	char keyid[65];
	int rc = dda__sign_ed25519(pem, sums->ptr, sums->len, s, keyid, err);
	if (!rc && dda_buf_add(sig, s, sizeof(s)))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	return rc;
}

static int kms_describe(struct writer *w, struct dda_kms *kms, const char *key_id, size_t sums_len,
			struct dda_buf *der, struct dda_error *err)
{
	json_t *ans = NULL;
	char keyid[65];
	int rc = dda__kms_public_key(kms, key_id, &ans, err);
	const char *pub = rc ? NULL : json_string_value(json_object_get(ans, "PublicKey"));
	const char *kid = rc ? NULL : json_string_value(json_object_get(ans, "KeyId"));
	if (!rc && (!pub || dda_base64_decode(pub, strlen(pub), der) || !der->len))
		rc =
		    dda_error_set(err, DDA_EFORMAT, "KMS GetPublicKey: no PublicKey in the answer");
	if (!rc) {
		uint8_t d[DDA_SHA256_LEN];
		dda__sha256(der->ptr, der->len, d); /* the DER SubjectPublicKeyInfo */
		dda__hex(d, sizeof(d), keyid);
	}
	if (!rc)
		rc = signature_json(
		    w,
		    json_pack("{sssssssssssss{ssssss}}", "algorithm", "ECDSA_SHA_256",
			      "signed_file", DDA_BUNDLE_SUMS, "signature_file", DDA_BUNDLE_SIG,
			      "signature_format",
			      "DER ECDSA-Sig-Value over SHA-256 of the file's exact bytes",
			      "signer", "aws-kms", "message_type",
			      sums_len <= DDA_KMS_RAW_MAX ? "RAW" : "DIGEST", "key", "key_id",
			      key_id, "kms_key_id", kid ? kid : "", "public_key_sha256", keyid),
		    err);
	json_decref(ans);
	return rc;
}

static int kms_sign(struct dda_kms *kms, const char *key_id, const struct dda_buf *der,
		    const struct dda_buf *sums, struct dda_buf *sig, struct dda_error *err)
{
	char keyid[65];
	json_t *ans = NULL;
	const char *type;
	int rc = dda__kms_sign(kms, key_id, sums->ptr, sums->len, &ans, &type, err);
	const char *s = rc ? NULL : json_string_value(json_object_get(ans, "Signature"));
	if (!rc && (!s || dda_base64_decode(s, strlen(s), sig) || !sig->len))
		rc = dda_error_set(err, DDA_EFORMAT, "KMS Sign: no Signature in the answer");
	/* What an auditor will check, checked now: a signature that does not
	 * verify with the key's public half is never shipped. */
	if (!rc && dda__verify_der(der->ptr, der->len, sums->ptr, sums->len, sig->ptr, sig->len,
				   keyid, err))
		rc = dda_error_set(err, DDA_EFORMAT,
				   "KMS Sign (MessageType %s): the signature does not verify with "
				   "the key's public key",
				   type);
	json_decref(ans);
	return rc;
}

/* SIGNATURE.json, SHA256SUMS and the signature. */
static int sign_parts(struct writer *w, const struct dda_bundle_opts *o, struct dda_error *err)
{
	struct dda_buf sums, sig, der;
	struct dda_kms *kms = NULL;
	const char *key = o->sign_key;
	bool use_kms = key && !strncmp(key, DDA_BUNDLE_KMS_PREFIX, strlen(DDA_BUNDLE_KMS_PREFIX));
	const char *key_id = use_kms ? key + strlen(DDA_BUNDLE_KMS_PREFIX) : NULL;
	dda_buf_init(&sums, DDA_BUNDLE_SMALL_MAX);
	dda_buf_init(&sig, 1024);
	dda_buf_init(&der, 8192);
	int rc = 0;
	if (use_kms)
		rc = dda__kms_new(&kms, o->aws, err);
	/* SHA256SUMS's length is known before it is made: a line a file. */
	size_t sums_len = 0;
	for (size_t i = 0; i < w->n; i++)
		sums_len += 2 * DDA_SHA256_LEN + 3 + strlen(w->parts[i].name);
	sums_len += 2 * DDA_SHA256_LEN + 3 + strlen(DDA_BUNDLE_SIGNATURE);
	if (!rc && use_kms)
		rc = kms_describe(w, kms, key_id, sums_len, &der, err);
	else if (!rc && key)
		rc = ed25519_describe(w, key, err);
	if (!rc && make_sums(w, &sums))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && use_kms)
		rc = kms_sign(kms, key_id, &der, &sums, &sig, err);
	else if (!rc && key)
		rc = ed25519_sign(key, &sums, &sig, err);
	if (!rc)
		rc = add_bytes(w, DDA_BUNDLE_SUMS, sums.ptr, sums.len, err);
	if (!rc && key)
		rc = add_bytes(w, DDA_BUNDLE_SIG, sig.ptr, sig.len, err);
	dda__kms_free(kms);
	dda_buf_release(&sums);
	dda_buf_release(&sig);
	dda_buf_release(&der);
	return rc;
}

int dda_bundle_check_key(const char *sign_key, struct dda_error *err)
{
	uint8_t sig[64];
	char keyid[65];
	if (!sign_key)
		return 0;
	if (!strncmp(sign_key, DDA_BUNDLE_KMS_PREFIX, strlen(DDA_BUNDLE_KMS_PREFIX)))
		return sign_key[strlen(DDA_BUNDLE_KMS_PREFIX)]
			   ? 0
			   : dda_error_set(err, DDA_EINVAL, "--sign-key kms: needs a key id");
	struct dda_error why = {0};
	if (!dda__sign_ed25519(sign_key, "", 0, sig, keyid, &why))
		return 0;
	return dda_error_set(err, DDA_EINVAL, "--sign-key: %s", why.msg);
}

/* ---- the archive ---- */

static la_ssize_t on_write(struct archive *a, void *ctx, const void *p, size_t n)
{
	struct writer *w = ctx;
	const char *c = p;
	size_t left = n;
	while (left) {
		ssize_t got = write(w->out.fd, c, left);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			w->write_errno = got < 0 ? errno : EIO;
			archive_set_error(a, w->write_errno, "%s", strerror(w->write_errno));
			return -1;
		}
		dda__sha256_update(&w->sha, c, (size_t)got);
		c += got;
		left -= (size_t)got;
	}
	return (la_ssize_t)n;
}

static int archive_part(struct archive *a, struct archive_entry *e, const struct part *p,
			int64_t mtime)
{
	char buf[1 << 16];
	size_t got;
	archive_entry_clear(e);
	archive_entry_set_pathname(e, p->name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)p->size);
	archive_entry_set_mtime(e, (time_t)(mtime / DDA_USEC_PER_SEC), 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK || fseek(p->f, 0, SEEK_SET))
		return DDA_EIO;
	uint64_t total = 0;
	while ((got = fread(buf, 1, sizeof(buf), p->f)) > 0) {
		if (archive_write_data(a, buf, got) != (la_ssize_t)got)
			return DDA_EIO;
		total += got;
	}
	/* A part that changed size since it was hashed would be a torn entry. */
	return ferror(p->f) || total != p->size ? DDA_EIO : 0;
}

static int write_archive(struct writer *w, const struct dda_bundle_opts *o, struct dda_error *err)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	int rc = a && e ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	/* ustar: read by every tar; gzip without a timestamp or a name, so that
	 * the same inputs give the same bytes. */
	if (!rc && (archive_write_set_format_ustar(a) != ARCHIVE_OK ||
		    archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
		    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
		    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
		    archive_write_open2(a, w, NULL, on_write, NULL, NULL) != ARCHIVE_OK))
		rc = dda_error_set(err, DDA_EIO, "cannot start the archive: %s",
				   archive_error_string(a));
	dda__sort(w->parts, w->n, sizeof(w->parts[0]), cmp_part);
	for (size_t i = 0; !rc && i < w->n; i++)
		if (archive_part(a, e, &w->parts[i], o->mtime))
			rc = dda_error_set(
			    err, DDA_EIO, "cannot archive '%s': %s", w->parts[i].name,
			    archive_error_string(a) ? archive_error_string(a) : strerror(errno));
	if (!rc && archive_write_close(a) != ARCHIVE_OK)
		rc = dda_error_set(err, DDA_EIO, "cannot finish the archive: %s",
				   archive_error_string(a));
	archive_entry_free(e);
	if (a)
		archive_write_free(a);
	return rc;
}

int dda_bundle_write(const struct dda_bundle_opts *o, const struct dda_report_info *info,
		     const struct dda_result *res, char sha256[65], struct dda_error *err)
{
	struct writer w;
	uint8_t d[DDA_SHA256_LEN];
	memset(&w, 0, sizeof(w));
	dda__afile_init(&w.out);
	int rc = dda__sha256_init(&w.sha) ? dda_error_set(err, DDA_ENOMEM, "out of memory") : 0;
	if (!rc)
		rc = add_reports(&w, info, res, err);
	if (!rc && o->manifest_path)
		rc = add_manifest(&w, o->manifest_path, err);
	if (!rc)
		rc = sign_parts(&w, o, err);
	if (!rc)
		rc = dda__afile_open(&w.out, o->path, err);
	if (!rc)
		rc = write_archive(&w, o, err);
	if (!rc)
		rc = dda__afile_commit(&w.out, err);
	if (!rc) {
		dda__sha256_final(&w.sha, d);
		dda__hex(d, sizeof(d), sha256);
	}
	if (rc && err) {
		char why[DDA_ERROR_MSG_MAX];
		snprintf(why, sizeof(why), "%s", err->msg);
		dda_error_clear(err);
		dda_error_set(err, rc, "cannot write the bundle '%s': %s", o->path, why);
	}
	dda__afile_discard(&w.out);
	dda__sha256_release(&w.sha);
	for (size_t i = 0; i < w.n; i++)
		fclose(w.parts[i].f);
	return rc;
}
