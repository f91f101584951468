/* NDJSON files and stdin (plain or gzip, detected by magic), streamed in
 * chunks of whole lines; and single object files. An NDJSON file is one
 * object in the table: its chunks carry line numbers. */
#include "source/source_impl.h"
#include "source/ndjson.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* About this much text per chunk: big enough to amortize the queue, small
 * enough to spread over the workers. */
#define CHUNK_TARGET ((size_t)1 << 20)
/* Bytes asked of the stream at a time: what pending may outgrow its bound
 * by (a gzip stream would otherwise inflate into all the room there is). */
#define READ_STEP ((size_t)256 << 10)
/* A line longer than the cap is skipped; if no newline comes within this
 * many caps, the rest of the stream is given up (a gzip bomb of one line,
 * or stdin that never ends a line). */
#define SKIP_CAPS 64

struct ndjson_source {
	struct dda_source base;
	char *path;
	int fd;
	struct dda__instream *in;
	/* Bytes read after the last line handed out. Holds at most about
	 * max(cap, CHUNK_TARGET) + READ_STEP: a partial line is never read
	 * past the cap. */
	struct dda_buf pending;
	size_t nl_end;	 /* pending[0..nl_end) are complete lines (0: none) */
	size_t scanned;	 /* pending[0..scanned) was searched for newlines */
	uint64_t line;	 /* number of the first line in pending */
	uint64_t values; /* record positions so far (dda__ndjson_line_slots) */
	uint32_t obj;
	int rfail; /* the stream failed (sticky): rmsg says how */
	char rmsg[DDA_ERROR_MSG_MAX];
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

/* Whether p[0..n) holds `what` (at least two bytes long). memchr finds the
 * candidates: this runs on every line, twice (reader and decoder). */
static bool has(const char *p, size_t n, const char *what)
{
	size_t m = strlen(what);
	const char *end = p + n;
	while ((size_t)(end - p) >= m) {
		const char *c = memchr(p, what[0], (size_t)(end - p) - m + 1);
		if (!c)
			return false;
		if (!memcmp(c + 1, what + 1, m - 1))
			return true;
		p = c + 1;
	}
	return false;
}

bool dda__ndjson_plain(const char *p, size_t n)
{
	return !memchr(p, '\\', n) && !has(p, n, "Records");
}

/* A batch's records are the elements of an array at nesting depth 2 (the
 * top-level "Records") or 3 (a DLQ line's "ddbaudit"."Records"): one more
 * than the commas directly inside arrays at those depths bounds their
 * count. Only lines that name "Records" (or could, through a \u escape)
 * are counted, so that ordinary records keep dense indexes. */
uint32_t dda__ndjson_line_slots(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	if (i == n)
		return 0;
	if (!has(p, n, "Records") && !has(p, n, "\\u"))
		return 1;
	uint64_t slots = 1;
	unsigned depth = 0, arrays = 0; /* bit d-1 of arrays: depth d is an array */
	bool str = false;
	for (; i < n; i++) {
		char ch = p[i];
		if (str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				str = false;
		} else if (ch == '"') {
			str = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth <= 3 && ch == '[')
				arrays |= 1u << (depth - 1);
		} else if (ch == ']' || ch == '}') {
			if (depth && depth <= 3)
				arrays &= ~(1u << (depth - 1));
			depth -= depth > 0;
		} else if (ch == ',' && (depth == 2 || depth == 3) &&
			   (arrays & (1u << (depth - 1)))) {
			slots++;
		}
	}
	return slots > UINT32_MAX ? UINT32_MAX : (uint32_t)slots;
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* Counts the lines of p[0..n) and the positions they take (see
 * dda__ndjson_line_slots), stopping before the first line longer than max.
 * Returns the bytes counted: n, or the start of that line; *plain says
 * whether all of p[0..n) is plain (dda__ndjson_plain). */
static size_t count_lines(const char *p, size_t n, size_t max, uint64_t *lines,
			  uint64_t *values, bool *plain_out)
{
	bool plain = *plain_out = dda__ndjson_plain(p, n);
	size_t start = 0;
	while (start < n) {
		const char *nl = memchr(p + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - p) : n;
		if (end - start > max)
			return start;
		*lines += nl != NULL;
		*values += plain ? !blank(p + start, end - start)
				 : dda__ndjson_line_slots(p + start, end - start);
		start = end + 1;
	}
	return n;
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
	/* The options arrive after open: the bound on pending is known now. */
	s->pending.max = DDA_MAX(s->base.opts.max_object_bytes, CHUNK_TARGET) + 2 * READ_STEP;
	return 0;
}

/* The end of the stream: final metadata on the last chunk. The digest
 * covers the whole stored file, so the rest is read for it, unless the
 * stream was given up (it may never end): then there is no digest. */
static void finish(struct ndjson_source *s, struct dda_chunk *c, bool given_up)
{
	struct dda_object *o = dda_objtab_get(s->base.objs, s->obj);
	if (!given_up)
		dda__instream_sha256(s->in, o->sha256);
	o->sha_valid = !given_up;
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

static void too_long_msg(const struct ndjson_source *s, char *msg, size_t n)
{
	snprintf(msg, n, "line %llu is longer than the %zu-byte cap (--max-object-bytes)",
		 (unsigned long long)s->line, s->base.opts.max_object_bytes);
}

/* Drops pending[0..n), keeping what is known about the rest. */
static void consume(struct ndjson_source *s, size_t n)
{
	memmove(s->pending.ptr, s->pending.ptr + n, s->pending.len - n);
	s->pending.len -= n;
	s->nl_end = s->nl_end > n ? s->nl_end - n : 0;
	s->scanned = s->scanned > n ? s->scanned - n : 0;
}

/* Reads one step of the stream into pending. Returns 0, or a negative error
 * (DDA_ENOMEM, or a read failure kept in rfail/rmsg). */
static int read_step(struct ndjson_source *s)
{
	struct dda_error rerr = {0};
	if (dda_buf_grow(&s->pending, READ_STEP))
		return DDA_ENOMEM;
	long n = dda__instream_read(s->in, s->pending.ptr + s->pending.len, READ_STEP, &rerr);
	if (n < 0) {
		s->rfail = (int)n;
		snprintf(s->rmsg, sizeof(s->rmsg), "%s", rerr.msg);
		return (int)n;
	}
	if (n == 0)
		s->eof = true;
	s->pending.len += (size_t)n;
	s->pending.ptr[s->pending.len] = '\0';
	/* Only the new bytes are searched: a long line costs one pass. */
	const char *nl = last_nl(s->pending.ptr + s->scanned, s->pending.len - s->scanned);
	if (nl)
		s->nl_end = (size_t)(nl - s->pending.ptr) + 1;
	s->scanned = s->pending.len;
	return 0;
}

/* Reads until pending holds about a chunk of complete lines, or a partial
 * line already over the cap, or the stream ends or fails. Lines up to the
 * cap are read whole, however long. Returns 0 or DDA_ENOMEM. */
static int fill_pending(struct ndjson_source *s)
{
	size_t max = s->base.opts.max_object_bytes;
	while (!s->eof && !s->rfail) {
		if (s->pending.len - s->nl_end > max)
			break; /* the partial line is over the cap: no need for more */
		if (s->nl_end && s->pending.len >= CHUNK_TARGET / 2)
			break;
		int rc = read_step(s);
		if (rc == DDA_ENOMEM)
			return rc;
	}
	return 0;
}

/* The line at the start of pending is over the cap and whole in pending:
 * one UNREADABLE chunk for it, and it is dropped. */
static int long_line(struct ndjson_source *s, struct dda_chunk *c, size_t avail)
{
	const char *nl = memchr(s->pending.ptr, '\n', avail);
	size_t end = nl ? (size_t)(nl - s->pending.ptr) + 1 : avail;
	char msg[200];
	too_long_msg(s, msg, sizeof(msg));
	unreadable(s, c, msg);
	consume(s, end);
	s->line++;
	s->values++;
	if (s->eof && !s->pending.len)
		finish(s, c, false);
	return 1;
}

/* Reads past the end of a line that is over the cap and not whole in
 * pending (what is in pending is all of it so far). Returns 1 when a
 * newline was found (pending then holds what follows it), 0 at the end of
 * the stream, -1 when the stream failed, -2 when no newline came within
 * SKIP_CAPS caps, or DDA_ENOMEM. */
static int skip_line(struct ndjson_source *s)
{
	uint64_t skipped = s->pending.len;
	uint64_t limit = (uint64_t)SKIP_CAPS * s->base.opts.max_object_bytes;
	dda_buf_reset(&s->pending);
	s->nl_end = s->scanned = 0;
	while (skipped < limit) {
		int rc = read_step(s);
		if (rc)
			return rc == DDA_ENOMEM ? rc : -1;
		if (s->eof && !s->pending.len)
			return 0;
		const char *nl = memchr(s->pending.ptr, '\n', s->pending.len);
		if (nl) {
			consume(s, (size_t)(nl - s->pending.ptr) + 1);
			return 1;
		}
		skipped += s->pending.len;
		dda_buf_reset(&s->pending);
		s->nl_end = s->scanned = 0;
	}
	return -2;
}

/* The partial line at the start of pending is over the cap: one
 * UNREADABLE chunk for it, reading on after its end. */
static int overlong(struct ndjson_source *s, struct dda_chunk *c, struct dda_error *err)
{
	char msg[200];
	too_long_msg(s, msg, sizeof(msg));
	unreadable(s, c, msg);
	int r = skip_line(s);
	if (r == DDA_ENOMEM)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	s->line++;
	s->values++;
	if (r == -2) {
		snprintf(c->msg, sizeof(c->msg),
			 "%.120s; no end of line within %d times the cap: the rest of the "
			 "input is not read",
			 msg, SKIP_CAPS);
		finish(s, c, true);
	} else if (r == -1) {
		snprintf(c->msg, sizeof(c->msg), "%.120s; then: %.120s", msg, s->rmsg);
		finish(s, c, false);
	} else if (r == 0) {
		finish(s, c, false);
	}
	return 1;
}

/* Hands out pending[0..take) as a chunk of lines, `lines` newlines and
 * `values` positions; plain when the bytes are (the decoder then need not
 * look again). */
static int hand_out(struct ndjson_source *s, struct dda_chunk *c, size_t take, uint64_t lines,
		    uint64_t values, bool plain, struct dda_error *err)
{
	c->plain = plain;
	/* A copy: handing pending's buffer over instead costs a fresh buffer's
	 * page faults on every chunk, more than the copy (measured). */
	dda_buf_init(&c->data, take + 1); /* a chunk's buffer starts with no room */
	if (take && dda_buf_add(&c->data, s->pending.ptr, take))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	s->values += values;
	s->line += lines;
	consume(s, take);
	if (s->eof && !s->pending.len)
		finish(s, c, false);
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
	c->first_index = s->values > UINT32_MAX ? UINT32_MAX : (uint32_t)s->values;
	if (fill_pending(s))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	/* Every complete line first (all of it at the end of the stream),
	 * stopping before a line over the cap, which gets a finding of its
	 * own; the lines before a damaged part of the stream still count. */
	size_t avail = s->eof ? s->pending.len : s->nl_end;
	if (avail) {
		uint64_t lines = 0, values = 0;
		bool plain;
		size_t take = count_lines(s->pending.ptr, avail, src->opts.max_object_bytes, &lines,
					  &values, &plain);
		if (take == 0)
			return long_line(s, c, avail);
		/* What was plain over avail is plain over its first take bytes. */
		return hand_out(s, c, take, lines, values, plain, err);
	}
	if (s->eof) /* the end: no bytes, the final metadata */
		return hand_out(s, c, 0, 0, 0, true, err);
	if (s->rfail) {
		char msg[DDA_ERROR_MSG_MAX + 64];
		snprintf(msg, sizeof(msg), "%s after line %llu", s->rmsg,
			 (unsigned long long)(s->line - 1));
		unreadable(s, c, msg);
		finish(s, c, false);
		return 1;
	}
	return overlong(s, c, err);
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
