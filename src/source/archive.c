/* Archives (.tar, .tar.gz, .tgz, .zip) of a bucket tree, read entry by entry
 * with libarchive, in archive order, never extracted to disk. Only those
 * formats and the gzip filter are enabled: libarchive would otherwise run
 * external programs (lzop, lrzip, grzip, ...) on whatever bytes it is given. */
#include "source/source_impl.h"

#include <archive.h>
#include <archive_entry.h>

#define ARCHIVE_BLOCK (1u << 20)
/* Directories looked at for an export's manifests (see load_export). */
#define MAX_CHECKED_ROOTS 4096
/* Tar hard links are read as the entry they name, found by reading the
 * archive again from the start: a bound on how many such passes one run
 * makes, and on a chain of links to links. */
#define MAX_LINKS 1024
#define MAX_LINK_DEPTH 8

/* What ddbaudit documents it reads, for the refusal of anything else. */
#define ARCHIVE_FORMATS "tar, gzip-compressed tar and zip archives"

struct archive_source {
	struct dda_source base;
	struct dda__sha256 sha;
	char *path;
	struct archive *a;
	uint64_t entries;
	bool done;
	bool eof;     /* the last entry was read: only missing files are left */
	bool damaged; /* an entry's data was damaged: the next call fails */
	struct dda__exports *exports;
	char **checked; /* candidate export roots already looked for */
	size_t nchecked;
	struct dda_buf missing; /* key of a listed export file not found */
	uint32_t links;		/* hard links followed (MAX_LINKS) */
};

static struct archive *open_archive(const char *path, struct dda_error *err)
{
	struct archive *a = archive_read_new();
	if (!a) {
		dda_error_set(err, DDA_ENOMEM, "out of memory");
		return NULL;
	}
	/* ARCHIVE_WARN from the gzip filter means "through an external gzip
	 * program": refused like every other external program. */
	if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_support_format_zip(a) != ARCHIVE_OK) {
		dda_error_set(err, DDA_EFORMAT,
			      "cannot open archive '%s': this libarchive lacks built-in "
			      "gzip, tar or zip support",
			      path);
		archive_read_free(a);
		return NULL;
	}
	if (archive_read_open_filename(a, path, ARCHIVE_BLOCK) != ARCHIVE_OK) {
		dda_error_set(err, DDA_EFORMAT, "cannot open archive '%s': %s (ddbaudit reads %s)",
			      path, archive_error_string(a), ARCHIVE_FORMATS);
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* A path as stored in an archive, without "./" and leading '/'. */
static const char *clean_path(const char *name)
{
	if (!name)
		return NULL;
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	while (*name == '/')
		name++;
	return name;
}

static const char *entry_key(struct archive_entry *e)
{
	return clean_path(archive_entry_pathname(e));
}

/* The entry a tar hard link names, for an entry that is one (a link that
 * carries data of its own, as pax allows, is read as it is). */
static const char *link_target(struct archive_entry *e)
{
	const char *t = clean_path(archive_entry_hardlink(e));
	if (!t || !*t || (archive_entry_size_is_set(e) && archive_entry_size(e) > 0))
		return NULL;
	return t;
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

/* Opens the archive again at entry pos (1-based): *e is that entry and the
 * handle is ready to read its data. NULL on failure (err set). */
static struct archive *seek_entry(struct archive_source *s, uint64_t pos, struct archive_entry **e,
				  struct dda_error *err)
{
	if (!pos) {
		dda_error_set(err, DDA_ENOTFOUND, "no such entry");
		return NULL;
	}
	struct archive *a = open_archive(s->path, err);
	for (uint64_t i = 0; a && i < pos; i++) {
		int r = archive_read_next_header(a, e);
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			dda_error_set(err, DDA_EFORMAT, "archive '%s' no longer has entry %llu",
				      s->path, (unsigned long long)pos);
			archive_read_free(a);
			a = NULL;
		}
	}
	return a;
}

/* The position of the entry a hard link at entry `before` names: the last
 * entry of that name before it, links followed. Returns 0 or an error. */
static int resolve_link(struct archive_source *s, const char *target, uint64_t before,
			uint64_t *pos, struct dda_error *err)
{
	char name[4096], next[4096];
	snprintf(name, sizeof(name), "%s", target);
	for (int depth = 0; depth < MAX_LINK_DEPTH; depth++) {
		if (s->links == MAX_LINKS)
			return dda_error_set(err, DDA_ETOOBIG,
					     "hard link not followed: more than %d in the archive",
					     MAX_LINKS);
		s->links++;
		struct archive *a = open_archive(s->path, err);
		if (!a)
			return err->code;
		struct archive_entry *e;
		uint64_t found = 0;
		for (uint64_t i = 1; i < before; i++) {
			int r = archive_read_next_header(a, &e);
			if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
				break;
			const char *k = entry_key(e), *t = link_target(e);
			if (!k || strcmp(k, name) || (archive_entry_filetype(e) != AE_IFREG && !t))
				continue;
			found = i;
			snprintf(next, sizeof(next), "%s", t ? t : "");
		}
		archive_read_free(a);
		if (!found)
			return dda_error_set(
			    err, DDA_ENOTFOUND,
			    "hard link to '%.200s', which no entry before it holds", name);
		if (!*next) {
			*pos = found;
			return 0;
		}
		memcpy(name, next, sizeof(name));
		before = found;
	}
	return dda_error_set(err, DDA_ETOOBIG, "hard link not followed: a chain of more than %d",
			     MAX_LINK_DEPTH);
}

/* Reads the data of entry pos (of the entry it links to, for a hard link)
 * into stored. Returns 0 or an error with its message in err. */
static int read_at(struct archive_source *s, uint64_t pos, struct dda_buf *stored,
		   struct dda_error *err)
{
	struct archive_entry *e;
	struct archive *a = seek_entry(s, pos, &e, err);
	if (!a)
		return err->code;
	const char *t = link_target(e);
	if (t) {
		char name[4096];
		uint64_t at = 0;
		snprintf(name, sizeof(name), "%s", t);
		archive_read_free(a);
		int rc = resolve_link(s, name, pos, &at, err);
		if (rc)
			return rc;
		if (!(a = seek_entry(s, at, &e, err)))
			return err->code;
	}
	int rc = read_data(a, stored, archive_entry_size_is_set(e) ? archive_entry_size(e) : -1);
	if (rc == DDA_EFORMAT)
		dda_error_set(err, rc, "archive entry is damaged: %.200s", archive_error_string(a));
	else if (rc == DDA_ETOOBIG)
		dda_error_set(err, rc, "object is over the %zu-byte cap (--max-object-bytes)",
			      stored->max);
	else if (rc)
		dda_error_set(err, rc, "out of memory");
	archive_read_free(a);
	return rc;
}

/* The export root a key would belong to: the directory of an export's
 * metadata file, or the directory above a "data/" one. Returns its length
 * in key, or -1 when the key cannot be an export's. */
static long candidate_root(const char *key)
{
	const char *slash = strrchr(key, '/');
	const char *base = slash ? slash + 1 : key;
	if (dda__export_meta_name(base))
		return (long)(base - key);
	if (!slash)
		return -1;
	size_t dir = (size_t)(slash - key);
	if (dir == 4 && !memcmp(key, "data", 4))
		return 0;
	if (dir > 4 && !memcmp(slash - 5, "/data", 5))
		return (long)dir - 4;
	return -1;
}

/* Reads the entry's bytes when it is root + name, one of the manifests. */
static int take_manifest(struct archive *a, const char *key, const char *root, const char *name,
			 struct dda_buf *b, bool *got)
{
	size_t n = strlen(root);
	if (*got || strncmp(key, root, n) || strcmp(key + n, name))
		return 0;
	*got = true;
	int64_t size = 0;
	int rc = read_data(a, b, size);
	return rc == DDA_ENOMEM ? rc : 0;
}

/* Archive order is arbitrary: a data file may come before its export's
 * manifests. The first entry that could be an export's sends one extra
 * pass over the archive for that root's manifests (headers and the two
 * manifests only), so exports cost one more read and other trees none. */
static int load_export(struct archive_source *s, const char *root, struct dda_error *err)
{
	for (size_t i = 0; i < s->nchecked; i++)
		if (!strcmp(s->checked[i], root))
			return 0;
	if (s->nchecked == MAX_CHECKED_ROOTS)
		return 0;
	char **nv = realloc(s->checked, (s->nchecked + 1) * sizeof(*nv));
	if (!nv || !(nv[s->nchecked] = strdup(root))) {
		if (nv)
			s->checked = nv;
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	s->checked = nv;
	s->nchecked++;
	size_t max = s->base.opts.max_object_bytes;
	struct dda_buf sum, files;
	bool got_sum = false, got_files = false;
	struct archive *a = open_archive(s->path, err);
	if (!a)
		return err->code;
	dda_buf_init(&sum, max);
	dda_buf_init(&files, max);
	struct archive_entry *e;
	int r, rc = 0;
	while (!rc && (!got_sum || !got_files) &&
	       ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)) {
		const char *key = entry_key(e);
		if (!key || archive_entry_filetype(e) != AE_IFREG)
			continue;
		rc = take_manifest(a, key, root, "manifest-summary.json", &sum, &got_sum);
		if (!rc)
			rc = take_manifest(a, key, root, "manifest-files.json", &files, &got_files);
	}
	archive_read_free(a);
	if (!rc && (got_sum || got_files))
		rc = dda__exports_add(s->exports, &s->base, root, got_sum ? &sum : NULL,
				      got_files ? &files : NULL);
	dda_buf_release(&sum);
	dda_buf_release(&files);
	return rc ? dda_error_set(err, rc, "out of memory reading an export's manifests") : 0;
}

/* The export facts of an entry (loading its export first if need be).
 * Returns DDA__EXP_*, or a negative error. */
static int export_facts(struct archive_source *s, const char *key, struct dda_export_info *info,
			bool *unlisted, struct dda_error *err)
{
	long n = candidate_root(key);
	if (n >= 0) {
		char root[4096];
		if ((size_t)n >= sizeof(root))
			return DDA__EXP_OUTSIDE;
		memcpy(root, key, (size_t)n);
		root[n] = '\0';
		int rc = load_export(s, root, err);
		if (rc)
			return rc;
	}
	return dda__exports_classify(s->exports, key, info, unlisted);
}

static int damaged(struct archive_source *s, struct dda_error *err)
{
	s->done = true;
	return dda_error_set(err, DDA_EFORMAT, "archive '%s' is damaged after %llu entries: %s",
			     s->path, (unsigned long long)s->entries, archive_error_string(s->a));
}

/* A hard link's object: the bytes of the entry it names (read again from
 * the archive), or UNREADABLE saying why not. Takes stored. */
static int read_link(struct archive_source *s, struct dda_chunk *c, struct dda_object *o,
		     struct dda_buf *stored, struct dda_error *err)
{
	struct dda_error lerr = {0};
	int rc = read_at(s, o->pos, stored, &lerr);
	if (rc == DDA_ENOMEM) {
		dda_buf_release(stored);
		return dda_error_set(err, rc, "out of memory");
	}
	if (rc) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg), "%.250s", lerr.msg);
	} else {
		dda__object_finish(c, o, stored, s->base.opts.max_object_bytes, &s->sha);
	}
	dda_buf_release(stored);
	return 1;
}

static int archive_next(struct dda_source *src, struct dda_chunk *c, struct dda_error *err)
{
	struct archive_source *s = (struct archive_source *)src;
	size_t max = src->opts.max_object_bytes;
	struct archive_entry *e;
	if (s->damaged)
		return damaged(s, err);
	while (!s->done) {
		int r = s->eof ? ARCHIVE_EOF : archive_read_next_header(s->a, &e);
		if (r == ARCHIVE_EOF) {
			s->eof = true;
			/* What the exports' manifests list and the archive lacks. */
			int m = dda__exports_next_missing(s->exports, NULL, &s->missing);
			if (m < 0)
				return dda_error_set(err, m, "out of memory");
			if (m)
				return dda__export_missing_chunk(src, s->missing.ptr, c, err);
			s->done = true;
			return 0;
		}
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return damaged(s, err);
		s->entries++;
		const char *key = entry_key(e);
		bool link = link_target(e) != NULL;
		if ((archive_entry_filetype(e) != AE_IFREG && !link) || !key || !*key)
			continue;
		int64_t mtime = archive_entry_mtime_is_set(e)
				    ? (int64_t)archive_entry_mtime(e) * DDA_USEC_PER_SEC +
					  archive_entry_mtime_nsec(e) / 1000
				    : DDA_TIME_NONE;
		enum dda__use use = dda__object_use(src, key, mtime);
		if (use == DDA__USE_SKIP)
			continue;
		int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
		struct dda_object meta = {.key = key,
					  .size = size,
					  .last_modified = mtime,
					  .pos = s->entries,
					  .late = use == DDA__USE_LATE};
		bool unlisted = false;
		int x = export_facts(s, key, &meta.exp, &unlisted, err);
		if (x < 0)
			return x;
		if (x == DDA__EXP_META)
			continue; /* export bookkeeping, not an object */
		int64_t id = dda__object_add(src, &meta);
		if (id < 0)
			return dda_error_set(err, (int)id, "out of memory");
		struct dda_object *o = dda_objtab_get(src->objs, (uint32_t)id);
		c->obj = (uint32_t)id;
		if (unlisted && dda__export_unlisted(src, (uint32_t)id))
			return dda_error_set(err, DDA_ENOMEM, "out of memory");
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
		if (link)
			return read_link(s, c, o, &stored, err);
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
		if (o->exp.listed &&
		    dda__exports_check_md5(s->exports, src, o->key, (uint32_t)id, &stored)) {
			dda_buf_release(&stored);
			return dda_error_set(err, DDA_ENOMEM, "out of memory");
		}
		dda__object_finish(c, o, &stored, max, &s->sha);
		dda_buf_release(&stored);
		return 1;
	}
	return 0;
}

/* Re-reads one entry, by its position (names may repeat), by scanning the
 * archive again: slow, used only for the handful of objects a GAP diff
 * needs. */
static int archive_reread(struct dda_source *src, uint32_t obj, struct dda_buf *out,
			  struct dda_error *err)
{
	struct archive_source *s = (struct archive_source *)src;
	const struct dda_object *o = dda_objtab_get(src->objs, obj);
	if (!o || !o->pos)
		return DDA_ENOTFOUND;
	struct dda_buf stored;
	dda_buf_init(&stored, src->opts.max_object_bytes);
	int rc = read_at(s, o->pos, &stored, err);
	if (!rc)
		rc = dda__object_bytes(&stored, out, src->opts.max_object_bytes, err);
	dda_buf_release(&stored);
	return rc;
}

static void archive_free_source(struct dda_source *src)
{
	struct archive_source *s = (struct archive_source *)src;
	archive_read_free(s->a);
	dda__exports_free(s->exports);
	for (size_t i = 0; i < s->nchecked; i++)
		free(s->checked[i]);
	free(s->checked);
	dda_buf_release(&s->missing);
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
	if (!s->a || !(s->exports = dda__exports_new())) {
		int rc = err ? err->code : DDA_EFORMAT;
		if (s->a)
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
		archive_read_free(s->a);
		free(s->path);
		free(s);
		return rc;
	}
	dda_buf_init(&s->missing, 1 << 16);
	s->base.ops = &archive_ops;
	*out = &s->base;
	return 0;
}
