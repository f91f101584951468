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

/* The range whose hours a source lists: its range, reaching back to
 * late_from when late objects are looked for. */
struct dda_range dda__list_range(const struct dda_source_opts *o);

/* What a source does with an object, from its key and LastModified (lm,
 * DDA_TIME_NONE unknown): read it, read it as a late object, or skip it
 * (outside the listed hours, or an object of the look-back hours that was
 * not written late; counted in objects_skipped). A sharded run also skips
 * the objects of other shards (counted in facts.other_shards instead). */
enum dda__use { DDA__USE_READ, DDA__USE_LATE, DDA__USE_SKIP };
enum dda__use dda__object_use(struct dda_source *s, const char *key, int64_t lm);
/* The same decision without counting: true for a late object. */
bool dda__late_key(const struct dda_source_opts *o, const char *key, int64_t lm);

/* Sharded runs (shard.c). dda__shard_listed takes a listed object the
 * range keeps into the shared listing (its ordinal and the listing's
 * digest) and says whether this shard reads it; dda__shard_ordinal gives a
 * registered object its ordinal (0 when it was never listed); the digest is
 * final once dda__shard_track_end ran at the end of the source. */
int dda__shard_track_new(struct dda_source *s);
void dda__shard_track_free(struct dda__shard_track *t);
bool dda__shard_listed(struct dda_source *s, const char *key);
uint64_t dda__shard_ordinal(struct dda_source *s, const char *key);
void dda__shard_track_end(struct dda_source *s);

/* Adds an object to the table; a late one (meta->late) is noted
 * DDA_FACT_LATE. Returns the id (>= 0) or DDA_ENOMEM. */
int64_t dda__object_add(struct dda_source *s, const struct dda_object *meta);

/* Records a fact about the source or an object (enum dda_source_fact, with
 * a printf-style detail) for the audit to report. Returns 0 or DDA_ENOMEM. */
int dda__source_note(struct dda_source *s, int fact, uint32_t obj, const char *fmt, ...)
	DDA_PRINTF(4, 5);

/* dda_gunzip through zlib alone: what decides every input that libdeflate
 * does not take (tests/fuzz/fuzz_gzip.c checks that both agree). */
int dda__gunzip_zlib(const void *p, size_t n, struct dda_buf *out, struct dda_error *err);

/* Streaming gzip-or-plain reader over a file descriptor (NDJSON). */
struct dda__instream;
int dda__instream_open(struct dda__instream **out, int fd, struct dda_error *err);
/* For tests, before the first read: with zlib_checks, zlib reads the gzip
 * wrapper and checks the CRC itself (the reference the reader is held to
 * by tests/fuzz/fuzz_gzip.c); read_size bounds each read() (0: the
 * buffer's size), so that members and fields straddle reads. */
void dda__instream_configure(struct dda__instream *s, bool zlib_checks, size_t read_size);
/* Reads up to n decompressed bytes; returns the count, 0 at the end, or a
 * negative error (DDA_EFORMAT for damaged gzip, DDA_EIO). */
long dda__instream_read(struct dda__instream *s, void *p, size_t n, struct dda_error *err);
/* Stored (compressed) bytes read so far, and their SHA-256 at the end. */
uint64_t dda__instream_stored(const struct dda__instream *s);
void dda__instream_sha256(struct dda__instream *s, uint8_t out[32]);
void dda__instream_close(struct dda__instream *s);

/* DynamoDB exports met by a source (export.c). An export is rooted at a
 * key prefix ("" or ending in '/') holding manifest-summary.json. */
struct dda__exports;
struct dda__exports *dda__exports_new(void);
void dda__exports_free(struct dda__exports *x);
/* True for a name an export writes beside its data: _started, the two
 * manifests, *.checksum, *.md5. */
bool dda__export_meta_name(const char *name);
bool dda__exports_known(const struct dda__exports *x, const char *root);
/* Registers the export at root from its manifests' bytes (NULL: missing).
 * A missing or broken manifest and a summary whose item count is not the
 * sum of the files' are notes on s. Returns 0 or DDA_ENOMEM. */
int dda__exports_add(struct dda__exports *x, struct dda_source *s, const char *root,
		     const struct dda_buf *summary, const struct dda_buf *files);
enum { DDA__EXP_OUTSIDE, DDA__EXP_META, DDA__EXP_DATA };
/* What key is: outside any export, an export's metadata file (not an
 * object), or one of its data files (info filled, the file marked seen;
 * *unlisted when the files manifest was read and does not list it). */
int dda__exports_classify(struct dda__exports *x, const char *key, struct dda_export_info *info,
			  bool *unlisted);
/* The next listed data file never seen (of the export at root, or of any
 * export with root NULL), its key in key. Returns 1, 0 when none is left,
 * or DDA_ENOMEM. Each is returned once. */
int dda__exports_next_missing(struct dda__exports *x, const char *root, struct dda_buf *key);
/* Registers a missing data file as an object and fills c as UNREADABLE. */
int dda__export_missing_chunk(struct dda_source *s, const char *key, struct dda_chunk *c,
			      struct dda_error *err);
/* A listed data file's stored bytes against the md5Checksum its manifest
 * gives: a difference is an EXPORT_MISMATCH finding on obj. Returns 0 or
 * DDA_ENOMEM. */
int dda__exports_check_md5(struct dda__exports *x, struct dda_source *s, const char *key,
			   uint32_t obj, const struct dda_buf *stored);
/* The EXPORT_MISMATCH finding for a data file the manifest does not list. */
int dda__export_unlisted(struct dda_source *s, uint32_t obj);

int dda__dir_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__archive_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__ndjson_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__file_open(struct dda_source **out, const char *path, struct dda_error *err);
int dda__s3_open(struct dda_source **out, const char *spec, const struct dda_source_opts *opts,
		 struct dda_error *err);

#endif
