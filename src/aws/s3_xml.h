/* S3's XML answers, parsed with expat as a stream: ListObjectsV2
 * (ListBucketResult), ListObjectVersions (ListVersionsResult), bucket
 * versioning and Object Lock configuration, and error bodies. Documents with
 * a DOCTYPE are refused, so no entity is ever expanded. */
#ifndef DDA_S3_XML_H
#define DDA_S3_XML_H

#include <stdbool.h>
#include "util/util.h"

struct dda_s3_entry {
	char *key;
	char *version_id; /* NULL in a ListObjectsV2 answer */
	char *etag;	  /* quotes removed */
	int64_t size;
	int64_t last_modified;
	bool is_latest;
	bool delete_marker;
	uint64_t ord; /* position in the listing (set by the caller) */
};

struct dda_s3_listing {
	struct dda_s3_entry *v;
	size_t n, cap;
	bool truncated;
	char *next_token;	   /* NextContinuationToken (V2) */
	char *next_key_marker;	   /* NextKeyMarker (versions) */
	char *next_version_marker; /* NextVersionIdMarker (versions) */
};

void dda__s3_listing_release(struct dda_s3_listing *l);

/* Parses one listing page, appending its entries to out (so pages add up).
 * With encoding-type=url, keys and markers are decoded (S3 encodes them as
 * application/x-www-form-urlencoded: '+' is a space). */
int dda__s3_parse_listing(const char *xml, size_t n, struct dda_s3_listing *out,
			  struct dda_error *err);

/* The text of the first element called name, wherever it sits, or "":
 * GetBucketVersioning's Status ("Enabled", "Suspended", or absent when
 * versioning was never enabled), GetObjectLockConfiguration's
 * ObjectLockEnabled and Mode, and the like. */
int dda__s3_parse_value(const char *xml, size_t n, const char *name, char *out, size_t cap,
			struct dda_error *err);

/* An S3 error body: its Code and Message (either may come back empty). */
void dda__s3_parse_error(const char *xml, size_t n, char *code, size_t code_cap, char *msg,
			 size_t msg_cap);

#endif
