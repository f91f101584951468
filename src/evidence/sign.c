/* Signatures of SHA256SUMS through OpenSSL's EVP interface: Ed25519 with a
 * PEM key (pure Ed25519: the message itself is signed, no digest first, as
 * `openssl pkeyutl -rawin` checks it), and the check of an ECDSA P-256
 * signature made by KMS (over SHA-256 of the same bytes). */
#include "evidence/evidence_impl.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* Keys are read without a passphrase: an encrypted key fails instead of
 * prompting on a terminal a cron job does not have. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* The key's name for messages and SIGNATURE.json: SHA-256 of its public
 * half as DER SubjectPublicKeyInfo, what `openssl pkey -pubout -outform DER
 * | sha256sum` prints. */
static int key_id(EVP_PKEY *k, char keyid[65])
{
	unsigned char *der = NULL;
	uint8_t d[DDA_SHA256_LEN];
	int n = i2d_PUBKEY(k, &der);
	if (n <= 0)
		return DDA_ENOMEM;
	dda__sha256(der, (size_t)n, d);
	OPENSSL_free(der);
	dda__hex(d, sizeof(d), keyid);
	return 0;
}

static EVP_PKEY *read_key(const char *path, bool private_key, struct dda_error *err)
{
	BIO *bio = BIO_new_file(path, "r");
	if (!bio) {
		dda_error_set(err, DDA_EINVAL, "cannot open the key '%s'", path);
		return NULL;
	}
	EVP_PKEY *k = private_key ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
				  : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!k)
		dda_error_set(err, DDA_EINVAL, "'%s' is not an unencrypted PEM %s key", path,
			      private_key ? "private" : "public");
	else if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		dda_error_set(err, DDA_EINVAL, "'%s' is not an Ed25519 key", path);
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

int dda__sign_ed25519(const char *pem_path, const void *msg, size_t n, uint8_t sig[64],
		      char keyid[65], struct dda_error *err)
{
	EVP_PKEY *k = read_key(pem_path, true, err);
	if (!k)
		return err ? err->code : DDA_EINVAL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = 64;
	int rc = ctx ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
		    EVP_DigestSign(ctx, sig, &siglen, msg, n) != 1 || siglen != 64))
		rc = dda_error_set(err, DDA_EINTERNAL, "cannot sign with '%s'", pem_path);
	if (!rc && key_id(k, keyid))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k); /* OpenSSL clears private key material as it frees it */
	return rc;
}

/* 0 when sig is a signature of msg by k (md NULL for Ed25519). */
static int verify_with(EVP_PKEY *k, const EVP_MD *md, const void *msg, size_t n, const void *sig,
		       size_t siglen, struct dda_error *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = DDA_EFORMAT;
	if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, k) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, msg, n) == 1)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int dda__verify_pem(const char *pem_path, const void *msg, size_t n, const void *sig, size_t siglen,
		    char keyid[65], struct dda_error *err)
{
	EVP_PKEY *k = read_key(pem_path, false, err);
	if (!k)
		return err ? err->code : DDA_EINVAL;
	int rc = key_id(k, keyid) ? dda_error_set(err, DDA_ENOMEM, "out of memory") : 0;
	if (!rc)
		rc = verify_with(k, NULL, msg, n, sig, siglen, err);
	EVP_PKEY_free(k);
	return rc;
}

int dda__verify_der(const void *der, size_t derlen, const void *msg, size_t n, const void *sig,
		    size_t siglen, char keyid[65], struct dda_error *err)
{
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)derlen);
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) {
		EVP_PKEY_free(k);
		return dda_error_set(err, DDA_EFORMAT, "the KMS public key is not an EC key");
	}
	int rc = key_id(k, keyid) ? dda_error_set(err, DDA_ENOMEM, "out of memory") : 0;
	if (!rc)
		rc = verify_with(k, EVP_sha256(), msg, n, sig, siglen, err);
	EVP_PKEY_free(k);
	return rc;
}
