/* NDJSON files and stdin (plain or gzip, detected by magic), streamed in
 * chunks of whole lines; and single object files. An NDJSON file is one
 * object in the table: its chunks carry line numbers. */
#include "source/source_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* About this much text per chunk: big enough to amortize the queue, small
 * enough to spread over the workers. */
#define CHUNK_TARGET ((size_t)1 << 20)
/* A line longer than the cap is skipped; if no newline comes within this
 * many caps, the rest of the file is given up (a gzip bomb of one line). */
#define SKIP_CAPS 64

struct ndjson_source {
	struct dda_source base;
	char *path;
	int fd;
	struct dda__instream *in;
	struct dda_buf pending; /* bytes read after the last complete line */
	uint64_t line;		/* number of the first line in pending */
	uint32_t values;	/* non-blank lines so far */
	uint32_t obj;
	bool eof, done, registered;
};

/* The last newline in p[0..n), or NULL (memrchr is not portable). */
static const char *last_nl(const char *p, size_t n)
{
	while (n--)
		if (p[n] == '\n')
			return p + n;
	return NULL;
}

static uint32_t count_values(const char *p, size_t n)
{
	uint32_t v = 0;
	bool blank = true;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			v += !blank;
			blank = true;
		} else if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
			blank = false;
		}
	}
	return v + !blank;
}

static uint64_t count_nl(const char *p, size_t n)
{
	uint64_t k = 0;
	if (!n)
		return 0;
	const char *end = p + n;
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		k++;
		p++;
	}
	return k;
}

static int register_object(struct ndjson_source *s, struct dda_error *err)
{
	struct stat st;
	struct dda_object meta = {.key = s->path, .size = -1, .last_modified = DDA_TIME_NONE};
	if (s->fd != 0 && !fstat(s->fd, &st))
		meta.last_modified =
		    (int64_t)st.st_mtim.tv_sec * DDA_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
	int64_t id = dda_objtab_add(s->base.objs, &meta);
	if (id < 0)
		return dda_error_set(err, (int)id, "out of memory");
	s->obj = (uint32_t)id;
	s->registered = true;
	return 0;
}

/* The end of the stream: final metadata on the last chunk. */
static void finish(struct ndjson_source *s, struct dda_chunk *c)
{
	struct dda_object *o = dda_objtab_get(s->base.objs, s->obj);
	dda__instream_sha256(s->in, o->sha256);
	o->sha_valid = true;
	o->size = (int64_t)dda__instream_stored(s->in);
	c->last = true;
	s->done = true;
}

static void unreadable(struct ndjson_source *s, struct dda_chunk *c, const char *msg)
{
	c->status = DDA_CHUNK_UNREADABLE;
	snprintf(c->msg, sizeof(c->msg), "%.250s", msg);
	c->first_line = s->line;
}

/* Skips the rest of an overlong line. Returns true if a newline was found. */
static bool skip_line(struct ndjson_source *s, struct dda_error *err)
{
	uint64_t skipped = 0, limit = (uint64_t)SKIP_CAPS * s->base.opts.max_object_bytes;
	char buf[65536];
	while (skipped < limit) {
		long n = dda__instream_read(s->in, buf, sizeof(buf), err);
		if (n <= 0)
			return false;
		const char *nl = memchr(buf, '\n', (size_t)n);
		if (nl) {
			dda_buf_reset(&s->pending);
			/* A failure here is sticky and the next fill reports it. */
			return !dda_buf_add(&s->pending, nl + 1, (size_t)(buf + n - nl - 1));
		}
		skipped += (uint64_t)n;
	}
	return false;
}

/* Reads until pending holds at least one complete line and about a chunk,
 * or the stream ends. Returns 0, or 1 for a line over the cap. */
static int fill_pending(struct ndjson_source *s, struct dda_error *err, int *fail)
{
	size_t max = s->base.opts.max_object_bytes;
	*fail = 0;
	while (!s->eof && s->pending.len < CHUNK_TARGET) {
		const char *nl = last_nl(s->pending.ptr, s->pending.len);
		size_t tail =
		    nl ? s->pending.len - (size_t)(nl - s->pending.ptr) - 1 : s->pending.len;
		if (tail > max)
			return 1;
		if (nl && s->pending.len >= CHUNK_TARGET / 2)
			break;
		if (dda_buf_grow(&s->pending, 256 << 10)) {
			*fail = DDA_ENOMEM;
			return 0;
		}
		long n = dda__instream_read(s->in, s->pending.ptr + s->pending.len,
					    s->pending.cap - 1 - s->pending.len, err);
		if (n < 0) {
			*fail = (int)n;
			return 0;
		}
		if (n == 0)
			s->eof = true;
		s->pending.len += (size_t)n;
		s->pending.ptr[s->pending.len] = '\0';
	}
	return 0;
}

/* Offset of the first line in p[0..n) longer than max, or n. */
static size_t find_long_line(const char *p, size_t n, size_t max)
{
	size_t start = 0;
	while (start < n) {
		const char *nl = memchr(p + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - p) : n;
		if (end - start > max)
			return start;
		start = end + 1;
	}
	return n;
}

/* The line at the start of pending is over the cap: one UNREADABLE chunk
 * for it, and it is dropped. */
static int long_line(struct ndjson_source *s, struct dda_chunk *c, size_t take)
{
	const char *nl = memchr(s->pending.ptr, '\n', take);
	size_t end = nl ? (size_t)(nl - s->pending.ptr) + 1 : take;
	char msg[200];
	snprintf(msg, sizeof(msg), "line %llu is longer than the %zu-byte cap (--max-object-bytes)",
		 (unsigned long long)s->line, s->base.opts.max_object_bytes);
	unreadable(s, c, msg);
	memmove(s->pending.ptr, s->pending.ptr + end, s->pending.len - end);
	s->pending.len -= end;
	s->line++;
	s->values++;
	if (s->eof && !s->pending.len)
		finish(s, c);
	return 1;
}

static int ndjson_next(struct dda_source *src, struct dda_chunk *c, struct dda_error *err)
{
	struct ndjson_source *s = (struct ndjson_source *)src;
	if (s->done)
		return 0;
	if (!s->registered && register_object(s, err))
		return DDA_ENOMEM;
	c->obj = s->obj;
	c->kind = DDA_CHUNK_LINES;
	c->first_line = s->line;
	c->first_index = s->values;
	struct dda_error rerr = {0};
	int fail;
	if (fill_pending(s, &rerr, &fail)) {
		char msg[200];
		snprintf(msg, sizeof(msg),
			 "line %llu is longer than the %zu-byte cap "
			 "(--max-object-bytes)",
			 (unsigned long long)s->line, src->opts.max_object_bytes);
		unreadable(s, c, msg);
		/* Whatever complete lines precede it were already handed out. */
		if (!skip_line(s, &rerr)) {
			snprintf(c->msg, sizeof(c->msg),
				 "%.120s; no end of line within %d times "
				 "the cap: the rest of the file is skipped",
				 msg, SKIP_CAPS);
			finish(s, c);
		}
		s->line++;
		s->values++;
		return 1;
	}
	if (fail == DDA_ENOMEM)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (fail) {
		/* Damaged or truncated gzip: complete lines before it still count. */
		const char *nl = s->pending.len ? last_nl(s->pending.ptr, s->pending.len) : NULL;
		if (nl && nl > s->pending.ptr) {
			size_t take = (size_t)(nl - s->pending.ptr) + 1;
			dda_buf_init(&c->data, take + 1); /* a chunk's buffer starts with no room */
			if (dda_buf_add(&c->data, s->pending.ptr, take))
				return dda_error_set(err, DDA_ENOMEM, "out of memory");
			s->values += count_values(s->pending.ptr, take);
			s->line += count_nl(s->pending.ptr, take);
			memmove(s->pending.ptr, s->pending.ptr + take, s->pending.len - take);
			s->pending.len -= take;
			return 1;
		}
		char msg[DDA_ERROR_MSG_MAX + 64];
		snprintf(msg, sizeof(msg), "%s after line %llu", rerr.msg,
			 (unsigned long long)(s->line - 1));
		unreadable(s, c, msg);
		finish(s, c);
		return 1;
	}
	/* Hand out every complete line (all of it at the end of the stream),
	 * stopping before a line over the cap, which gets a finding of its own. */
	const char *nl = s->pending.len ? last_nl(s->pending.ptr, s->pending.len) : NULL;
	size_t take = s->eof ? s->pending.len : nl ? (size_t)(nl - s->pending.ptr) + 1 : 0;
	size_t long_at = find_long_line(s->pending.ptr, take, src->opts.max_object_bytes);
	if (long_at == 0 && take)
		return long_line(s, c, take);
	if (long_at < take)
		take = long_at;
	dda_buf_init(&c->data, take + 1);
	if (take && dda_buf_add(&c->data, s->pending.ptr, take))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	s->values += count_values(c->data.ptr, take);
	s->line += count_nl(c->data.ptr, take);
	memmove(s->pending.ptr, s->pending.ptr + take, s->pending.len - take);
	s->pending.len -= take;
	if (s->eof && !s->pending.len)
		finish(s, c);
	return 1;
}

static void ndjson_free(struct dda_source *src)
{
	struct ndjson_source *s = (struct ndjson_source *)src;
	dda__instream_close(s->in);
	if (s->fd > 0)
		close(s->fd);
	dda_buf_release(&s->pending);
	free(s->path);
	free(s);
}

static const struct dda_source_ops ndjson_ops = {"ndjson", ndjson_next, NULL, ndjson_free};

int dda__ndjson_open(struct dda_source **out, const char *path, struct dda_error *err)
{
	struct ndjson_source *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	s->fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (s->fd < 0) {
		int rc = dda_error_set(err, errno == ENOENT ? DDA_ENOTFOUND : DDA_EIO,
				       "cannot open '%s': %s", path, strerror(errno));
		free(s->path);
		free(s);
		return rc;
	}
	if (dda__instream_open(&s->in, s->fd, err)) {
		ndjson_free(&s->base);
		return DDA_ENOMEM;
	}
	dda_buf_init(&s->pending, DDA_BUF_UNLIMITED);
	s->line = 1;
	s->base.ops = &ndjson_ops;
	*out = &s->base;
	return 0;
}
