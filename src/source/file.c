/* A single object file (x.json, x.json.gz): one object, one chunk. A file
 * in an archive or compression format ddbaudit does not read is refused at
 * open, by name, rather than reported as a JSON object that does not parse. */
#include "source/source_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Magic numbers of formats that are not JSON, gzip, tar or zip. */
static const struct {
	const char *name;
	size_t off, len;
	const char *magic;
} foreign[] = {
    {"a zstd-compressed file", 0, 4, "\x28\xb5\x2f\xfd"},
    {"an xz-compressed file", 0, 6,
     "\xfd"
     "7zXZ\0"},
    {"a bzip2-compressed file", 0, 3, "BZh"},
    {"an lz4-compressed file", 0, 4, "\x04\x22\x4d\x18"},
    {"an lzip-compressed file", 0, 4, "LZIP"},
    {"an lzop-compressed file", 0, 4, "\x89LZO"},
    {"a compress (.Z) file", 0, 2, "\x1f\x9d"},
    {"a 7z archive", 0, 6, "7z\xbc\xaf\x27\x1c"},
    {"a RAR archive", 0, 4, "Rar!"},
    {"a cpio archive", 0, 5, "07070"},
    {"a cpio archive", 0, 2, "\xc7\x71"},
    {"an ar archive", 0, 7, "!<arch>"},
};

/* Names the format of a file's first bytes when it is one of the above. */
static const char *foreign_format(const char *path)
{
	unsigned char b[16];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	for (size_t i = 0; n > 0 && i < DDA_ARRAY_SIZE(foreign); i++)
		if ((size_t)n >= foreign[i].off + foreign[i].len &&
		    !memcmp(b + foreign[i].off, foreign[i].magic, foreign[i].len))
			return foreign[i].name;
	return NULL;
}

struct file_source {
	struct dda_source base;
	struct dda__sha256 sha;
	char *path;
	bool done;
};

static int file_next(struct dda_source *src, struct dda_chunk *c, struct dda_error *err)
{
	struct file_source *s = (struct file_source *)src;
	size_t max = src->opts.max_object_bytes;
	struct stat st;
	if (s->done)
		return 0;
	s->done = true;
	struct dda_object meta = {.key = s->path, .size = -1, .last_modified = DDA_TIME_NONE};
	if (!stat(s->path, &st)) {
		meta.size = st.st_size;
		meta.last_modified =
		    (int64_t)st.st_mtim.tv_sec * DDA_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
	}
	int64_t id = dda_objtab_add(src->objs, &meta);
	if (id < 0)
		return dda_error_set(err, (int)id, "out of memory");
	c->obj = (uint32_t)id;
	c->kind = DDA_CHUNK_DOC;
	c->first_line = 1;
	c->last = true;
	if (meta.size > (int64_t)max) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg),
			 "object is %lld bytes, over the %zu-byte cap (--max-object-bytes)",
			 (long long)meta.size, max);
		return 1;
	}
	struct dda_buf stored;
	struct dda_error rerr = {0};
	dda_buf_init(&stored, max);
	if (dda__read_file(s->path, &stored, &rerr)) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg), "%.250s", rerr.msg);
	} else {
		dda__object_finish(c, dda_objtab_get(src->objs, (uint32_t)id), &stored, max,
				   &s->sha);
	}
	dda_buf_release(&stored);
	return 1;
}

static int file_reread(struct dda_source *src, uint32_t obj, struct dda_buf *out,
		       struct dda_error *err)
{
	struct file_source *s = (struct file_source *)src;
	struct dda_buf stored;
	(void)obj;
	dda_buf_init(&stored, src->opts.max_object_bytes);
	int rc = dda__read_file(s->path, &stored, err);
	if (!rc)
		rc = dda__object_bytes(&stored, out, src->opts.max_object_bytes, err);
	dda_buf_release(&stored);
	return rc;
}

static void file_free(struct dda_source *src)
{
	struct file_source *s = (struct file_source *)src;
	dda__sha256_release(&s->sha);
	free(s->path);
	free(s);
}

static const struct dda_source_ops file_ops = {"file", file_next, file_reread, file_free};

int dda__file_open(struct dda_source **out, const char *path, struct dda_error *err)
{
	const char *fmt = foreign_format(path);
	if (fmt)
		return dda_error_set(err, DDA_EFORMAT,
				     "cannot read '%s': it is %s; ddbaudit reads JSON and NDJSON "
				     "(plain or gzip-compressed) and tar, gzip-compressed tar and "
				     "zip archives",
				     path, fmt);
	struct file_source *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	s->base.ops = &file_ops;
	*out = &s->base;
	return 0;
}
