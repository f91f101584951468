/* AWS Signature Version 4 (the request-signing scheme of every AWS API),
 * with OpenSSL's SHA-256 and HMAC. Checked against botocore's signatures in
 * tests/unit/test_sigv4.c (vectors in tests/data/sigv4/). */
#ifndef DDA_SIGV4_H
#define DDA_SIGV4_H

#include <stdbool.h>
#include "util/util.h"

struct dda_kv {
	const char *name;
	const char *value;
};

/* Appends s[0..n) URI-encoded as SigV4 wants it: the unreserved characters
 * A-Z a-z 0-9 - . _ ~ as they are, every other byte as %XX (upper case);
 * with keep_slash, '/' is kept too (object keys in S3 paths). */
int dda__uri_encode(struct dda_buf *out, const char *s, size_t n, bool keep_slash);

/* Appends the canonical query string of params (decoded names and values):
 * each encoded, sorted by name then value, joined with '&'. It is also the
 * query to send. */
int dda__sigv4_query(struct dda_buf *out, const struct dda_kv *params, size_t n);

struct dda_sigv4_request {
	const char *method;
	const char *host;	      /* the Host header: host[:port] */
	const char *path;	      /* the path as sent, already encoded */
	const char *query;	      /* the canonical query string (dda__sigv4_query) */
	const struct dda_kv *headers; /* more headers to sign (not host), any case */
	size_t nheaders;
	const char *payload_sha256; /* hex SHA-256 of the body, or UNSIGNED-PAYLOAD */
	const char *region;
	const char *service;
	const char *amz_date; /* YYYYMMDDTHHMMSSZ, also sent as X-Amz-Date */
	bool s3;	      /* S3 signs the path as sent; others encode it again */
};

/* Appends the Authorization header's value to out; with canonical set, the
 * canonical request is appended there too (for tests and -vv). Secrets are
 * wiped from memory before returning. */
int dda__sigv4_sign(const struct dda_sigv4_request *r, const char *access_key,
		    const char *secret_key, struct dda_buf *out, struct dda_buf *canonical);

/* Formats t (microseconds) as an X-Amz-Date: YYYYMMDDTHHMMSSZ (17 bytes). */
void dda__amz_date(int64_t t, char out[17]);

#endif
