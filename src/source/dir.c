/* A directory laid out like the bucket (what `aws s3 sync` writes): walked
 * depth-first in bytewise name order, so runs are reproducible, with year,
 * month, day and hour directories outside the range never opened. */
#include "source/source_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper trees than this are not audit logs (and symlinked directories are
 * never followed, so there are no cycles to bound). */
#define MAX_DEPTH 64

/* Which part of a YYYY/MM/DD/HH prefix a directory is. */
enum date_state { D_NONE, D_YEAR, D_MONTH, D_DAY, D_HOUR };

struct frame {
	int fd;
	char **names;
	size_t n, i;
	size_t path_len; /* length of the relative path of this directory */
	int state;
	int y, m, d;	   /* date so far */
	bool checked;	   /* looked for an export's manifests */
	char *export_root; /* key prefix of the export this directory holds */
};

/* The writer's top-level prefix: a directory of that name keeps it as the
 * first key component, so that `aws s3 sync s3://B/audit-logs audit-logs`
 * followed by `ddbaudit verify audit-logs` reports the bucket's own keys. */
#define LAYOUT_TOP "audit-logs"

struct dir_source {
	struct dda_source base;
	struct dda__sha256 sha;
	char *root;
	size_t prefix_len; /* bytes of LAYOUT_TOP "/" kept in keys, or 0 */
	struct frame stack[MAX_DEPTH];
	int depth;
	struct dda_buf path; /* relative path of the current entry */
	struct dda__exports *exports;
	struct dda_buf missing; /* key of a listed export file not found */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void frame_release(struct frame *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->export_root);
	f->export_root = NULL;
}

/* Lists a directory's entries (no dot files), sorted. Takes fd. */
static int frame_open(struct frame *f, int fd, struct dda_error *err, const char *what)
{
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	DIR *d = fdopendir(dup(fd));
	if (!d)
		return dda_error_set(err, DDA_EIO, "cannot read '%s': %s", what, strerror(errno));
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while (!rc && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (f->n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(f->names, cap * sizeof(*nn));
			if (!nn) {
				rc = DDA_ENOMEM;
				break;
			}
			f->names = nn;
		}
		if (!(f->names[f->n] = strdup(e->d_name)))
			rc = DDA_ENOMEM;
		else
			f->n++;
	}
	closedir(d);
	if (rc)
		return dda_error_set(err, rc, "out of memory listing '%s'", what);
	dda__sort(f->names, f->n, sizeof(char *), cmp_str);
	return 0;
}

static int digits(const char *s, size_t n)
{
	int v = 0;
	if (strlen(s) != n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Classifies a subdirectory of parent and gives the interval it covers. */
static int classify(const struct frame *parent, const char *name, struct frame *child,
		    int64_t *start, int64_t *end)
{
	int v;
	child->y = parent->y;
	child->m = parent->m;
	child->d = parent->d;
	switch (parent->state) {
	case D_NONE:
	case D_HOUR:
		break;
	case D_YEAR:
		if ((v = digits(name, 2)) >= 1 && v <= 12) {
			child->m = v;
			*start = dda_time_from_civil(child->y, v, 1, 0, 0, 0);
			*end = v == 12 ? dda_time_from_civil(child->y + 1, 1, 1, 0, 0, 0)
				       : dda_time_from_civil(child->y, v + 1, 1, 0, 0, 0);
			return D_MONTH;
		}
		break;
	case D_MONTH:
		if ((v = digits(name, 2)) >= 1 && v <= 31) {
			child->d = v;
			*start = dda_time_from_civil(child->y, child->m, v, 0, 0, 0);
			*end = *start + 86400;
			return D_DAY;
		}
		break;
	case D_DAY:
		if ((v = digits(name, 2)) >= 0 && v <= 23) {
			*start = dda_time_from_civil(child->y, child->m, child->d, v, 0, 0);
			*end = *start + 3600;
			return D_HOUR;
		}
		break;
	}
	/* Below an hour directory names are userIds, never dates. */
	if (parent->state != D_HOUR && (v = digits(name, 4)) >= 1970) {
		child->y = v;
		*start = dda_time_from_civil(v, 1, 1, 0, 0, 0);
		*end = dda_time_from_civil(v + 1, 1, 1, 0, 0, 0);
		return D_YEAR;
	}
	return parent->state == D_HOUR ? D_HOUR : D_NONE;
}

/* Emits an UNREADABLE chunk for an object that could not be read. */
DDA_PRINTF(3, 4)
static int unreadable(struct dda_chunk *c, struct dda_object *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	c->status = DDA_CHUNK_UNREADABLE;
	c->kind = DDA_CHUNK_DOC;
	c->first_line = 1;
	c->last = true;
	(void)o;
	return 1;
}

static int read_fd(int fd, size_t size, struct dda_buf *b)
{
	int rc = dda_buf_grow(b, size);
	while (!rc) {
		if (b->cap - 1 == b->len && (rc = dda_buf_grow(b, 65536)))
			break;
		ssize_t n = read(fd, b->ptr + b->len, b->cap - 1 - b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return DDA_EIO;
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	if (b->ptr)
		b->ptr[b->len] = '\0';
	return rc;
}

/* Reads one file into a chunk, registering its object. */
static int emit_file(struct dir_source *s, int dirfd, const char *name, bool late,
		     struct dda_chunk *c, struct dda_error *err)
{
	size_t max = s->base.opts.max_object_bytes;
	struct dda_object meta = {
	    .key = s->path.ptr, .size = -1, .last_modified = DDA_TIME_NONE, .late = late};
	bool unlisted = false;
	if (dda__exports_classify(s->exports, s->path.ptr, &meta.exp, &unlisted) == DDA__EXP_META)
		return 0; /* export bookkeeping, not an object */
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int saved = errno;
	if (fd >= 0 && !fstat(fd, &st)) {
		meta.size = st.st_size;
		meta.last_modified =
		    (int64_t)st.st_mtim.tv_sec * DDA_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
	}
	int64_t id = dda__object_add(&s->base, &meta);
	if (id < 0) {
		if (fd >= 0)
			close(fd);
		return dda_error_set(err, (int)id, "out of memory");
	}
	struct dda_object *o = dda_objtab_get(s->base.objs, (uint32_t)id);
	c->obj = (uint32_t)id;
	if (unlisted && dda__export_unlisted(&s->base, (uint32_t)id)) {
		if (fd >= 0)
			close(fd);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	if (fd < 0)
		return unreadable(c, o, "cannot open: %s", strerror(saved));
	if (meta.size > (int64_t)max) {
		close(fd);
		return unreadable(c, o,
				  "object is %lld bytes, over the %zu-byte cap "
				  "(--max-object-bytes)",
				  (long long)meta.size, max);
	}
	struct dda_buf stored;
	dda_buf_init(&stored, max);
	int rc = read_fd(fd, (size_t)meta.size, &stored);
	close(fd);
	if (rc) {
		dda_buf_release(&stored);
		return unreadable(c, o, "cannot read: %s",
				  rc == DDA_ETOOBIG ? "it grew beyond the cap while being read"
						    : strerror(errno));
	}
	if (o->exp.listed &&
	    dda__exports_check_md5(s->exports, &s->base, o->key, (uint32_t)id, &stored)) {
		dda_buf_release(&stored);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	dda__object_finish(c, o, &stored, max, &s->sha);
	dda_buf_release(&stored);
	return 1;
}

static int push_dir(struct dir_source *s, int parentfd, const char *name, int state,
		    const struct frame *child_date, struct dda_error *err)
{
	if (s->depth == MAX_DEPTH)
		return 0;
	int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0; /* unreadable directories hold nothing we can read */
	struct frame *f = &s->stack[s->depth];
	int rc = frame_open(f, fd, err, s->path.ptr);
	if (rc) {
		frame_release(f);
		return rc;
	}
	f->path_len = s->path.len;
	f->state = state;
	f->y = child_date->y;
	f->m = child_date->m;
	f->d = child_date->d;
	s->depth++;
	return 0;
}

static bool frame_has(const struct frame *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->names[i], name))
			return true;
	return false;
}

/* Reads a manifest of the directory, or leaves *got NULL when it is absent
 * or unreadable (the export then reports it missing). */
static int read_manifest(struct dir_source *s, const struct frame *f, const char *name,
			 struct dda_buf *b, const struct dda_buf **got)
{
	*got = NULL;
	if (!frame_has(f, name))
		return 0;
	int fd = openat(f->fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	int rc = read_fd(fd, 0, b);
	close(fd);
	if (!rc)
		*got = b;
	return rc == DDA_ENOMEM ? rc : 0;
}

/* A directory holding manifest-summary.json (or manifest-files.json) is a
 * DynamoDB export: its manifests are read before anything below it. */
static int check_export(struct dir_source *s, struct frame *f, struct dda_error *err)
{
	f->checked = true;
	if (!frame_has(f, "manifest-summary.json") && !frame_has(f, "manifest-files.json"))
		return 0;
	size_t max = s->base.opts.max_object_bytes;
	struct dda_buf root, sum, files;
	const struct dda_buf *got_sum, *got_files;
	dda_buf_init(&root, 1 << 16);
	dda_buf_init(&sum, max);
	dda_buf_init(&files, max);
	int rc = dda_buf_add(&root, s->path.ptr, f->path_len);
	if (!rc && f->path_len)
		rc = dda_buf_addc(&root, '/');
	if (!rc)
		rc = dda_buf_adds(&root, "");
	if (!rc)
		rc = read_manifest(s, f, "manifest-summary.json", &sum, &got_sum);
	if (!rc)
		rc = read_manifest(s, f, "manifest-files.json", &files, &got_files);
	if (!rc)
		rc = dda__exports_add(s->exports, &s->base, root.ptr, got_sum, got_files);
	if (!rc)
		f->export_root = dda_buf_take(&root, NULL);
	if (!rc && !f->export_root)
		rc = DDA_ENOMEM;
	dda_buf_release(&root);
	dda_buf_release(&sum);
	dda_buf_release(&files);
	return rc ? dda_error_set(err, DDA_ENOMEM, "out of memory reading an export's manifests")
		  : 0;
}

static int dir_next(struct dda_source *src, struct dda_chunk *c, struct dda_error *err)
{
	struct dir_source *s = (struct dir_source *)src;
	struct dda_range listed = dda__list_range(&src->opts);
	while (s->depth > 0) {
		struct frame *f = &s->stack[s->depth - 1];
		if (!f->checked) {
			s->path.len = f->path_len;
			int rc = check_export(s, f, err);
			if (rc)
				return rc;
		}
		if (f->i == f->n && f->export_root) {
			/* What the manifest lists and the directory lacks: not read. */
			int rc = dda__exports_next_missing(s->exports, f->export_root, &s->missing);
			if (rc < 0)
				return dda_error_set(err, rc, "out of memory");
			if (rc)
				return dda__export_missing_chunk(src, s->missing.ptr, c, err);
		}
		if (f->i == f->n) {
			frame_release(f);
			s->depth--;
			continue;
		}
		const char *name = f->names[f->i++];
		s->path.len = f->path_len;
		if (s->path.len && dda_buf_addc(&s->path, '/'))
			return dda_error_set(err, DDA_ENOMEM, "path too long");
		if (dda_buf_adds(&s->path, name))
			return dda_error_set(err, DDA_ENOMEM, "path too long");
		struct stat st;
		if (fstatat(f->fd, name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			struct frame child;
			int64_t start = 0, end = 0;
			int state = classify(f, name, &child, &start, &end);
			/* start != end only for a year, month, day or hour directory. */
			if (start != end &&
			    !dda_range_wants(&listed, start * DDA_USEC_PER_SEC,
					     end * DDA_USEC_PER_SEC)) {
				src->prefixes_skipped++;
				continue;
			}
			int rc = push_dir(s, f->fd, name, state, &child, err);
			if (rc)
				return rc;
			continue;
		}
		/* Symlinks to files are read; to directories, never followed. */
		if (S_ISLNK(st.st_mode) && (fstatat(f->fd, name, &st, 0) || !S_ISREG(st.st_mode)))
			continue;
		if (!S_ISREG(st.st_mode))
			continue;
		enum dda__use use = dda__object_use(
		    src, s->path.ptr,
		    (int64_t)st.st_mtim.tv_sec * DDA_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000);
		if (use == DDA__USE_SKIP)
			continue;
		int rc = emit_file(s, f->fd, name, use == DDA__USE_LATE, c, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int dir_reread(struct dda_source *src, uint32_t obj, struct dda_buf *out,
		      struct dda_error *err)
{
	struct dir_source *s = (struct dir_source *)src;
	const struct dda_object *o = dda_objtab_get(src->objs, obj);
	struct dda_buf path, stored;
	if (!o)
		return DDA_ENOTFOUND;
	dda_buf_init(&path, 1 << 16);
	dda_buf_init(&stored, src->opts.max_object_bytes);
	int rc = dda_buf_addf(&path, "%s/%s", s->root, o->key + s->prefix_len);
	if (!rc)
		rc = dda__read_file(path.ptr, &stored, err);
	if (!rc)
		rc = dda__object_bytes(&stored, out, src->opts.max_object_bytes, err);
	dda_buf_release(&stored);
	dda_buf_release(&path);
	return rc;
}

static void dir_free(struct dda_source *src)
{
	struct dir_source *s = (struct dir_source *)src;
	while (s->depth > 0)
		frame_release(&s->stack[--s->depth]);
	dda_buf_release(&s->path);
	dda_buf_release(&s->missing);
	dda__exports_free(s->exports);
	dda__sha256_release(&s->sha);
	free(s->root);
	free(s);
}

static const struct dda_source_ops dir_ops = {"dir", dir_next, dir_reread, dir_free};

int dda__dir_open(struct dda_source **out, const char *path, struct dda_error *err)
{
	struct dir_source *s = calloc(1, sizeof(*s));
	if (!s || !(s->root = strdup(path))) {
		free(s);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	s->base.ops = &dir_ops;
	dda_buf_init(&s->path, 1 << 16);
	dda_buf_init(&s->missing, 1 << 16);
	/* path.ptr is a string from here on */
	if (!(s->exports = dda__exports_new()) || dda_buf_adds(&s->path, "")) {
		dda__exports_free(s->exports);
		dda_buf_release(&s->path);
		free(s->root);
		free(s);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 ? dda_error_set(err, DDA_ENOTFOUND, "cannot open '%s': %s", path,
					strerror(errno))
			: frame_open(&s->stack[0], fd, err, path);
	if (rc) {
		if (fd >= 0)
			frame_release(&s->stack[0]);
		dda_buf_release(&s->path);
		dda__exports_free(s->exports);
		free(s->root);
		free(s);
		return rc;
	}
	s->stack[0].state = D_NONE;
	s->depth = 1;
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	size_t top = strlen(LAYOUT_TOP);
	if (n >= top && !memcmp(path + n - top, LAYOUT_TOP, top) &&
	    (n == top || path[n - top - 1] == '/')) {
		if (dda_buf_adds(&s->path, LAYOUT_TOP)) {
			dir_free(&s->base);
			return dda_error_set(err, DDA_ENOMEM, "out of memory");
		}
		s->stack[0].path_len = s->path.len;
		s->prefix_len = top + 1;
	}
	*out = &s->base;
	return 0;
}
