/* Opening a source by what SOURCE names: stdin, a directory, an archive, an
 * NDJSON file or a single object file. */
#include "source/source_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcasecmp(s + n - m, suf);
}

static bool ndjson_name(const char *path)
{
	static const char *const sufs[] = {".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(sufs); i++)
		if (has_suffix(path, sufs[i]))
			return true;
	return false;
}

static bool archive_name(const char *path)
{
	static const char *const sufs[] = {".tar", ".tar.gz", ".tgz", ".zip"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(sufs); i++)
		if (has_suffix(path, sufs[i]))
			return true;
	return false;
}

/* Archive magic: "ustar" at 257 (tar) or a local file header (zip). */
static bool archive_magic(const char *path)
{
	unsigned char b[262];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	if (n >= 4 && !memcmp(b, "PK\3\4", 4))
		return true;
	return n >= 262 && !memcmp(b + 257, "ustar", 5);
}

int dda_source_open(struct dda_source **out, const char *spec, struct dda_objtab *objs,
		    const struct dda_source_opts *opts, struct dda_error *err)
{
	struct stat st;
	int rc;
	*out = NULL;
	if (!strncmp(spec, "s3://", 5)) {
		struct dda_source_opts o = *opts;
		if (!o.max_object_bytes)
			o.max_object_bytes = DDA_DEFAULT_MAX_OBJECT_BYTES;
		rc = dda__s3_open(out, spec, &o, err);
	} else if (!strcmp(spec, "-")) {
		rc = dda__ndjson_open(out, spec, err);
	} else if (stat(spec, &st)) {
		return dda_error_set(err, errno == ENOENT ? DDA_ENOTFOUND : DDA_EIO,
				     "cannot open '%s': %s", spec, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		rc = dda__dir_open(out, spec, err);
	} else if (opts->lines || ndjson_name(spec)) {
		rc = dda__ndjson_open(out, spec, err);
	} else if (archive_name(spec) || archive_magic(spec)) {
		rc = dda__archive_open(out, spec, err);
	} else {
		rc = dda__file_open(out, spec, err);
	}
	if (rc)
		return rc;
	if (opts->shard.count && dda__shard_track_new(*out)) {
		(*out)->ops->free(*out);
		*out = NULL;
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	(*out)->objs = objs;
	(*out)->opts = *opts;
	if (!(*out)->opts.max_object_bytes)
		(*out)->opts.max_object_bytes = DDA_DEFAULT_MAX_OBJECT_BYTES;
	return 0;
}

int dda_source_next(struct dda_source *s, struct dda_chunk *c, struct dda_error *err)
{
	dda_chunk_release(c);
	int rc = s->ops->next(s, c, err);
	if (!rc && s->shard)
		dda__shard_track_end(s); /* the listing ended: its digest is final */
	return rc;
}

int dda__source_note(struct dda_source *s, int fact, uint32_t obj, const char *fmt, ...)
{
	if (s->nnotes == s->notes_cap) {
		size_t cap = s->notes_cap ? 2 * s->notes_cap : 16;
		struct dda_source_note *nv = realloc(s->notes, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		s->notes = nv;
		s->notes_cap = cap;
	}
	struct dda_buf d;
	va_list ap;
	dda_buf_init(&d, 4096);
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(&d, fmt, ap);
	va_end(ap);
	if (rc || !d.ptr) {
		dda_buf_release(&d);
		return DDA_ENOMEM;
	}
	s->notes[s->nnotes++] = (struct dda_source_note){fact, obj, dda_buf_take(&d, NULL)};
	return 0;
}

void dda_source_free(struct dda_source *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nnotes; i++)
		free(s->notes[i].detail);
	free(s->notes);
	dda__shard_track_free(s->shard);
	s->ops->free(s);
}

struct dda_range dda__list_range(const struct dda_source_opts *o)
{
	struct dda_range r = o->range;
	if (o->late && r.from != DDA_TIME_NONE && o->late_from < r.from)
		r.from = o->late_from + DDA_PREFIX_SLACK; /* slack added back by the listers */
	return r;
}

/* Whether an object was written after the previous run started. S3 gives
 * LastModified in whole seconds (truncated), so a whole-second time may be
 * up to a second later than it says: such an object is taken as late rather
 * than risk losing its change. */
static bool written_after(int64_t lm, int64_t after)
{
	if (lm % DDA_USEC_PER_SEC == 0)
		lm += DDA_USEC_PER_SEC - 1;
	return lm > after;
}

static enum dda__use key_use(const struct dda_source_opts *o, const char *key, int64_t lm)
{
	struct dda_range listed = dda__list_range(o);
	int64_t hour;
	uint32_t off;
	if (dda__key_pruned(&listed, key))
		return DDA__USE_SKIP;
	/* Only hours wholly before the range can hold late objects. */
	if (!o->late || o->range.from == DDA_TIME_NONE ||
	    !dda_key_hour(key, strlen(key), &hour, &off) ||
	    hour + DDA_USEC_PER_HOUR > o->range.from)
		return DDA__USE_READ;
	if (lm != DDA_TIME_NONE && written_after(lm, o->late_after))
		return DDA__USE_LATE;
	/* Not late: read only in the slack hour before the range. */
	return dda__key_pruned(&o->range, key) ? DDA__USE_SKIP : DDA__USE_READ;
}

enum dda__use dda__object_use(struct dda_source *s, const char *key, int64_t lm)
{
	enum dda__use use = key_use(&s->opts, key, lm);
	if (use != DDA__USE_SKIP && s->opts.want && !s->opts.want(s->opts.want_ctx, key))
		use = DDA__USE_SKIP;
	if (use == DDA__USE_SKIP)
		s->objects_skipped++;
	else if (s->shard && !dda__shard_listed(s, key))
		use = DDA__USE_SKIP; /* another shard's: listed, not skipped */
	return use;
}

bool dda__late_key(const struct dda_source_opts *o, const char *key, int64_t lm)
{
	return key_use(o, key, lm) == DDA__USE_LATE;
}

int64_t dda__object_add(struct dda_source *s, const struct dda_object *meta)
{
	struct dda_object m = *meta;
	if (s->shard)
		m.listing = dda__shard_ordinal(s, meta->key);
	int64_t id = dda_objtab_add(s->objs, &m);
	if (id < 0 || !meta->late)
		return id;
	const struct dda_object *ob = dda_objtab_get(s->objs, (uint32_t)id);
	char lm[DDA_TIME_STRLEN], started[DDA_TIME_STRLEN], hour[DDA_TIME_STRLEN];
	int rc = dda__source_note(
	    s, DDA_FACT_LATE, (uint32_t)id,
	    "written at %s into the hour of %s, which an earlier run audited (the last run "
	    "started at %s): read now, its changes are folded into their items' chains",
	    dda_time_format(ob->last_modified, true, lm), dda_time_format(ob->hour, false, hour),
	    dda_time_format(s->opts.late_after, false, started));
	return rc ? rc : id;
}
