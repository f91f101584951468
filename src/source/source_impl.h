/* Internal interface shared by the source kinds. */
#ifndef DDA_SOURCE_IMPL_H
#define DDA_SOURCE_IMPL_H

#include "util/util.h"
#include "ddbaudit/source.h"

/* Readers for one stored object's bytes: inflate when gzip (by name or
 * magic) with the cap, else take them as they are. Fills c->data and, on
 * failure, marks c UNREADABLE with a message. The object's sha256 is over
 * the stored bytes. */
void dda__object_finish(struct dda_chunk *c, struct dda_object *o, struct dda_buf *stored,
			size_t max, struct dda__sha256 *sha);

/* An object's bytes for reading again: inflated into out when gzip, else
 * moved from stored to out. */
int dda__object_bytes(struct dda_buf *stored, struct dda_buf *out, size_t max,
		      struct dda_error *err);

/* True for a key the range excludes (its hour prefix is outside it). */
bool dda__key_pruned(const struct dda_range *r, const char *key);

/* Records a finding about the source (printf-style detail). Returns 0 or
 * DDA_ENOMEM. */
int dda__source_finding(struct dda_source *s, int kind, int severity, uint32_t obj,
			const char *fmt, ...) DDA_PRINTF(5, 6);

/* Streaming gzip-or-plain reader over a file descriptor (NDJSON). */
struct dda__instream;
int dda__instream_open(struct dda__instream **out, int fd, struct dda_error *err);
/* Reads up to n decompressed bytes; returns the count, 0 at the end, or a
 * negative error (DDA_EFORMAT for damaged gzip, DDA_EIO). */
long dda__instream_read(struct dda__instream *s, void *p, size_t n, struct dda_error *err);
/* Stored (compressed) bytes read so far, and their SHA-256 at the end. */
uint64_t dda__instream_stored(const struct dda__instream *s);
void dda__instream_sha256(struct dda__instream *s, uint8_t out[32]);
void dda__instream_close(struct dda__instream *s);

int dda__dir_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__archive_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__ndjson_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__file_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__s3_open(struct dda_source **out, const char *spec, const struct dda_source_opts *opts,
		 struct dda_error *err);

#endif
