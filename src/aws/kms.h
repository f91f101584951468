/* A small AWS KMS client for evidence bundles: Sign (an ECDSA_SHA_256
 * signature) and GetPublicKey, over
 * the JSON 1.1 protocol (X-Amz-Target TrentService.*). The endpoint is
 * AWS_ENDPOINT_URL_KMS, else AWS_ENDPOINT_URL, else kms.<region>.amazonaws.com. */
#ifndef DDA_AWS_KMS_H
#define DDA_AWS_KMS_H

#include <jansson.h>
#include "aws/api.h"

/* A KMS signature is a DER ECDSA-Sig-Value: at most 72 bytes for P-256;
 * answers are small JSON documents. */
#define DDA_KMS_ANSWER_MAX (64 * 1024)

struct dda_kms;

int dda__kms_new(struct dda_kms **out, const struct dda_aws_opts *o, struct dda_error *err);
void dda__kms_free(struct dda_kms *k);

/* KMS signs a RAW message of at most this many bytes itself. */
#define DDA_KMS_RAW_MAX 4096

/* Sign with ECDSA_SHA_256: msg as MessageType RAW (KMS hashes it) when it
 * is at most DDA_KMS_RAW_MAX bytes, else its SHA-256 as MessageType DIGEST;
 * the signature is the same either way. *answer is the parsed answer (new
 * reference: Signature, KeyId, SigningAlgorithm; base64 left to the
 * caller); *message_type says which was sent. */
int dda__kms_sign(struct dda_kms *k, const char *key_id, const void *msg, size_t n, json_t **answer,
		  const char **message_type, struct dda_error *err);
/* GetPublicKey: *answer (new reference) holds PublicKey (base64 DER
 * SubjectPublicKeyInfo), KeySpec, KeyUsage and SigningAlgorithms. */
int dda__kms_public_key(struct dda_kms *k, const char *key_id, json_t **answer,
			struct dda_error *err);

#endif
