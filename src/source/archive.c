/* Archives (.tar, .tar.gz, .tgz, .zip) of a bucket tree, read entry by entry
 * with libarchive, in archive order, never extracted to disk. */
#include "source/source_impl.h"

#include <archive.h>
#include <archive_entry.h>

#define ARCHIVE_BLOCK (1u << 20)

struct archive_source {
	struct dda_source base;
	struct dda__sha256 sha;
	char *path;
	struct archive *a;
	uint64_t entries;
	bool done;
	bool damaged; /* an entry's data was damaged: the next call fails */
};

static struct archive *open_archive(const char *path, struct dda_error *err)
{
	struct archive *a = archive_read_new();
	if (!a) {
		dda_error_set(err, DDA_ENOMEM, "out of memory");
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	archive_read_support_format_zip(a);
	if (archive_read_open_filename(a, path, ARCHIVE_BLOCK) != ARCHIVE_OK) {
		dda_error_set(err, DDA_EFORMAT, "cannot open archive '%s': %s", path,
			      archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static const char *entry_key(struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	if (!name)
		return NULL;
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	while (*name == '/')
		name++;
	return name;
}

/* Reads the current entry's data into b (bounded by b->max). */
static int read_data(struct archive *a, struct dda_buf *b, int64_t size)
{
	int rc = size > 0 ? dda_buf_grow(b, (size_t)size) : 0;
	char block[65536];
	la_ssize_t n = 0;
	while (!rc && (n = archive_read_data(a, block, sizeof(block))) > 0)
		rc = dda_buf_add(b, block, (size_t)n);
	if (!rc && n < 0)
		return DDA_EFORMAT;
	return rc;
}

static int damaged(struct archive_source *s, struct dda_error *err)
{
	s->done = true;
	return dda_error_set(err, DDA_EFORMAT, "archive '%s' is damaged after %llu entries: %s",
			     s->path, (unsigned long long)s->entries, archive_error_string(s->a));
}

static int archive_next(struct dda_source *src, struct dda_chunk *c, struct dda_error *err)
{
	struct archive_source *s = (struct archive_source *)src;
	size_t max = src->opts.max_object_bytes;
	struct archive_entry *e;
	if (s->damaged)
		return damaged(s, err);
	while (!s->done) {
		int r = archive_read_next_header(s->a, &e);
		if (r == ARCHIVE_EOF) {
			s->done = true;
			return 0;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return damaged(s, err);
		s->entries++;
		const char *key = entry_key(e);
		if (archive_entry_filetype(e) != AE_IFREG || !key || !*key)
			continue;
		if (dda__key_pruned(&src->opts.range, key)) {
			src->objects_skipped++;
			continue;
		}
		int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
		struct dda_object meta = {.key = key, .size = size, .last_modified = DDA_TIME_NONE};
		if (archive_entry_mtime_is_set(e))
			meta.last_modified = (int64_t)archive_entry_mtime(e) * DDA_USEC_PER_SEC +
					     archive_entry_mtime_nsec(e) / 1000;
		int64_t id = dda_objtab_add(src->objs, &meta);
		if (id < 0)
			return dda_error_set(err, (int)id, "out of memory");
		struct dda_object *o = dda_objtab_get(src->objs, (uint32_t)id);
		c->obj = (uint32_t)id;
		c->kind = DDA_CHUNK_DOC;
		c->first_line = 1;
		c->last = true;
		if (size > (int64_t)max) {
			c->status = DDA_CHUNK_UNREADABLE;
			snprintf(c->msg, sizeof(c->msg),
				 "object is %lld bytes, over the %zu-byte "
				 "cap (--max-object-bytes)",
				 (long long)size, max);
			return 1;
		}
		struct dda_buf stored;
		dda_buf_init(&stored, max);
		int rc = read_data(s->a, &stored, size);
		if (rc == DDA_EFORMAT) {
			dda_buf_release(&stored);
			c->status = DDA_CHUNK_UNREADABLE;
			snprintf(c->msg, sizeof(c->msg), "archive entry is damaged: %.200s",
				 archive_error_string(s->a));
			s->damaged = true; /* the stream cannot be trusted past this */
			return 1;
		}
		if (rc) {
			dda_buf_release(&stored);
			c->status = DDA_CHUNK_UNREADABLE;
			snprintf(c->msg, sizeof(c->msg),
				 "object is over the %zu-byte cap "
				 "(--max-object-bytes)",
				 max);
			return 1;
		}
		dda__object_finish(c, o, &stored, max, &s->sha);
		dda_buf_release(&stored);
		return 1;
	}
	return 0;
}

/* Re-reads one entry by scanning the archive again: slow, used only for
 * the handful of objects a GAP diff needs. */
static int archive_reread(struct dda_source *src, uint32_t obj, struct dda_buf *out,
			  struct dda_error *err)
{
	struct archive_source *s = (struct archive_source *)src;
	const struct dda_object *o = dda_objtab_get(src->objs, obj);
	if (!o)
		return DDA_ENOTFOUND;
	struct archive *a = open_archive(s->path, err);
	if (!a)
		return DDA_EFORMAT;
	struct archive_entry *e;
	int rc = DDA_ENOTFOUND;
	int r;
	/* ARCHIVE_WARN comes with names in another charset: still an entry. */
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *key = entry_key(e);
		if (!key || strcmp(key, o->key))
			continue;
		struct dda_buf stored;
		dda_buf_init(&stored, src->opts.max_object_bytes);
		rc = read_data(a, &stored, archive_entry_size(e));
		if (!rc)
			rc = dda__object_bytes(&stored, out, src->opts.max_object_bytes, err);
		dda_buf_release(&stored);
		break;
	}
	archive_read_free(a);
	return rc;
}

static void archive_free_source(struct dda_source *src)
{
	struct archive_source *s = (struct archive_source *)src;
	archive_read_free(s->a);
	dda__sha256_release(&s->sha);
	free(s->path);
	free(s);
}

static const struct dda_source_ops archive_ops = {"archive", archive_next, archive_reread,
						  archive_free_source};

int dda__archive_open(struct dda_source **out, const char *path, struct dda_error *err)
{
	struct archive_source *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	s->a = open_archive(path, err);
	if (!s->a) {
		free(s->path);
		free(s);
		return err ? err->code : DDA_EFORMAT;
	}
	s->base.ops = &archive_ops;
	*out = &s->base;
	return 0;
}
