/* The state file: gzip'd NDJSON, a header line, one line an item sorted in
 * the history's key order, and a trailer with the count and the SHA-256 of
 * every line before it. The old state is read as a stream while the new one
 * is written as a stream: items this run did not touch are copied through
 * as bytes, so memory does not grow with the number of items. */
#include "state/state_impl.h"
#include "ddbaudit/canon.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

/* Reads happen in blocks this large; a line may not exceed the buffer. */
#define READ_BLOCK (256 * 1024)
#define BUF_CAP (READ_BLOCK + 2 * DDA_STATE_LINE_MAX)
/* Level 1: a state is rewritten every run, speed matters more than bytes. */
#define GZ_MODE "wb1"
#define ITEM_PREFIX "{\"k\":\""
#define TRAILER_PREFIX "{\"trailer\":"

struct reader {
	gzFile gz;
	char *buf;
	size_t start, end;
	bool eof;
	uint64_t lineno;
	struct dda__sha256 sha;
	/* The current item: its line (into buf) and decoded key. */
	bool have;
	dda_slice line;
	struct dda_buf key, prev_key;
	bool trailer_seen;
	uint64_t items;
};

struct dda_state {
	char *path;
	int lock_fd;
	struct dda__state_remote *remote; /* an s3:// state, or NULL */
	char *read_path;		  /* the local file read: path, or a download */
	bool tmpdir;			  /* read_path is in a directory of our own */
	struct dda_state_identity id;
	char *source_norm; /* id.source without a trailing '/' */
	bool exists;
	struct dda_state_run prior;
	struct reader r;
	/* The new state. */
	struct dda__afile af;
	gzFile out;
	struct dda__sha256 wsha;
	uint64_t written;
	struct dda_buf line;
	struct dda_buf carried_obj;
	struct dda_error err;
	char bundle_sha256[65]; /* this run's bundle, "" for none */
	bool committed;
};

static const struct dda_state_run no_run = {.watermark = DDA_TIME_NONE, .started = DDA_TIME_NONE};

static int fail(struct dda_state *s, int code, const char *what)
{
	if (!s->err.code)
		dda_error_set(&s->err, code, "the state '%s' %s", s->path, what);
	return code;
}

/* ---- reading ---- */

/* The next line (without its '\n') in *line, valid until the next call:
 * 1, or 0 at the end, or DDA_EFORMAT (a torn last line, a line too long,
 * bytes that do not inflate). */
static int next_line(struct reader *r, dda_slice *line)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl) {
			line->ptr = r->buf + r->start;
			line->len = (size_t)(nl - line->ptr);
			r->start += line->len + 1;
			r->lineno++;
			return 1;
		}
		if (r->eof)
			return r->start == r->end ? 0 : DDA_EFORMAT;
		if (r->end - r->start > DDA_STATE_LINE_MAX)
			return DDA_EFORMAT;
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
		int n = gzread(r->gz, r->buf + r->end, READ_BLOCK);
		int zerr = Z_OK;
		gzerror(r->gz, &zerr);
		if (n < 0 || (zerr != Z_OK && zerr != Z_STREAM_END))
			return DDA_EFORMAT;
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
	}
}

static int hex_decode(const char *s, size_t n, uint8_t *out, size_t outlen)
{
	if (n != 2 * outlen)
		return DDA_EFORMAT;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return DDA_EFORMAT;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
	}
	return 0;
}

/* The key of an item line, read without parsing the rest: it is the first
 * member, written so by every writer of the format. */
static int line_key(const dda_slice *line, struct dda_buf *key)
{
	size_t pl = strlen(ITEM_PREFIX);
	if (line->len < pl || memcmp(line->ptr, ITEM_PREFIX, pl))
		return DDA_EFORMAT;
	const char *k = line->ptr + pl;
	const char *q = memchr(k, '"', line->len - pl);
	if (!q)
		return DDA_EFORMAT;
	dda_buf_reset(key);
	return dda_base64_decode(k, (size_t)(q - k), key) ? DDA_EFORMAT : 0;
}

static int read_trailer(struct dda_state *s, const dda_slice *line);

/* Moves to the next item; at the trailer, reads and checks it. */
static int advance(struct dda_state *s)
{
	struct reader *r = &s->r;
	dda_slice line;
	if (r->have) {
		struct dda_buf t = r->prev_key;
		r->prev_key = r->key;
		r->key = t;
	}
	r->have = false;
	int got = next_line(r, &line);
	if (got == 0)
		return fail(s, DDA_EFORMAT, "is truncated: its trailer is missing");
	if (got < 0)
		return fail(s, DDA_EFORMAT, "is corrupt or truncated (gzip data or a line)");
	if (line.len >= strlen(TRAILER_PREFIX) &&
	    !memcmp(line.ptr, TRAILER_PREFIX, strlen(TRAILER_PREFIX)))
		return read_trailer(s, &line);
	if (line_key(&line, &r->key))
		return fail(s, DDA_EFORMAT, "is corrupt: an item line without a key");
	if (r->items && dda_history_key_cmp((const uint8_t *)r->prev_key.ptr, r->prev_key.len,
					    (const uint8_t *)r->key.ptr, r->key.len) >= 0)
		return fail(s, DDA_EFORMAT, "is corrupt: its items are not in key order");
	dda__sha256_update(&r->sha, line.ptr, line.len + 1);
	r->items++;
	r->line = line;
	r->have = true;
	return 0;
}

static void copy_str(char *dst, size_t size, json_t *v)
{
	const char *t = json_string_value(v);
	snprintf(dst, size, "%s", t ? t : "");
}

static int read_trailer(struct dda_state *s, const dda_slice *line)
{
	struct reader *r = &s->r;
	uint8_t d[DDA_SHA256_LEN];
	char hex[2 * DDA_SHA256_LEN + 1];
	dda_slice rest;
	dda__sha256_final(&r->sha, d);
	dda__hex(d, sizeof(d), hex);
	json_t *t = json_loadb(line->ptr, line->len, 0, NULL);
	json_t *items = json_object_get(t, "items");
	const char *sha = json_string_value(json_object_get(t, "sha256"));
	int rc = 0;
	if (!t || !json_is_integer(items) || !sha)
		rc = fail(s, DDA_EFORMAT, "is corrupt: its trailer is unreadable");
	else if ((uint64_t)json_integer_value(items) != r->items)
		rc = fail(s, DDA_EFORMAT, "is corrupt: its trailer counts other items");
	else if (strcmp(sha, hex))
		rc = fail(s, DDA_EFORMAT, "is corrupt: its SHA-256 does not match its trailer");
	else if (next_line(r, &rest) != 0)
		rc = fail(s, DDA_EFORMAT, "is corrupt: data follows its trailer");
	if (!rc) {
		json_t *b = json_object_get(t, "bucket");
		copy_str(s->prior.report_sha256, sizeof(s->prior.report_sha256),
			 json_object_get(t, "report_sha256"));
		copy_str(s->prior.prev_report_sha256, sizeof(s->prior.prev_report_sha256),
			 json_object_get(t, "previous_report_sha256"));
		/* Absent from the states of runs without a bundle, and from
		 * those written before bundles existed: "". */
		copy_str(s->prior.bundle_sha256, sizeof(s->prior.bundle_sha256),
			 json_object_get(t, "bundle_sha256"));
		copy_str(s->prior.versioning, sizeof(s->prior.versioning),
			 json_object_get(b, "versioning"));
		copy_str(s->prior.object_lock, sizeof(s->prior.object_lock),
			 json_object_get(b, "object_lock"));
		s->prior.items = r->items;
		r->trailer_seen = true;
	}
	json_decref(t);
	return rc;
}

static bool key_names_equal(const struct dda_state_identity *id, json_t *ks)
{
	if (!json_is_array(ks) || json_array_size(ks) != id->nkeys)
		return false;
	for (size_t i = 0; i < id->nkeys; i++) {
		const char *n = json_string_value(json_array_get(ks, i));
		if (!n || strcmp(n, id->key_names[i]))
			return false;
	}
	return true;
}

static int check_header(struct dda_state *s, json_t *h, struct dda_error *err)
{
	const char *fmt = json_string_value(json_object_get(h, "format"));
	json_t *ver = json_object_get(h, "version");
	json_t *table = json_object_get(h, "table");
	const char *src = json_string_value(json_object_get(table, "source"));
	if (!fmt || strcmp(fmt, DDA_STATE_FORMAT) || !json_is_integer(ver))
		return dda_error_set(err, DDA_EFORMAT, "'%s' is not a ddbaudit state", s->path);
	if (json_integer_value(ver) > DDA_STATE_VERSION)
		return dda_error_set(err, DDA_EFORMAT,
				     "the state '%s' was written by a newer ddbaudit (%s, format "
				     "version %lld; this one reads up to %d)",
				     s->path, json_string_value(json_object_get(h, "tool")),
				     (long long)json_integer_value(ver), DDA_STATE_VERSION);
	if (json_integer_value(ver) < 1)
		return dda_error_set(err, DDA_EFORMAT, "'%s' is not a ddbaudit state", s->path);
	if (!src || strcmp(src, s->source_norm) ||
	    !key_names_equal(&s->id, json_object_get(table, "key_schema")))
		return dda_error_set(err, DDA_EFORMAT,
				     "the state '%s' belongs to another table (source '%s'); "
				     "this run audits '%s'",
				     s->path, src ? src : "?", s->source_norm);
	json_t *wm = json_object_get(h, "watermark_us");
	json_t *st = json_object_get(h, "started_us");
	if (!json_is_integer(wm) || !json_is_integer(st))
		return dda_error_set(err, DDA_EFORMAT, "the state '%s' is corrupt: no watermark",
				     s->path);
	s->prior.watermark = json_integer_value(wm);
	s->prior.started = json_integer_value(st);
	copy_str(s->prior.tool, sizeof(s->prior.tool), json_object_get(h, "tool"));
	return 0;
}

static int open_reader(struct dda_state *s, struct dda_error *err)
{
	struct reader *r = &s->r;
	dda_slice line;
	int fd = open(s->read_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return dda_error_set(err, DDA_EIO, "cannot open the state '%s': %s", s->path,
				     strerror(errno));
	r->gz = gzdopen(fd, "rb");
	r->buf = malloc(BUF_CAP);
	if (!r->gz || !r->buf || dda__sha256_init(&r->sha)) {
		if (!r->gz)
			close(fd);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	s->exists = true;
	int got = next_line(r, &line);
	if (got <= 0)
		return dda_error_set(err, DDA_EFORMAT,
				     "'%s' is not a ddbaudit state, or it is corrupt (%s)", s->path,
				     got ? "unreadable" : "empty");
	json_t *h = json_loadb(line.ptr, line.len, 0, NULL);
	int rc = h ? check_header(s, h, err)
		   : dda_error_set(err, DDA_EFORMAT, "'%s' is not a ddbaudit state", s->path);
	json_decref(h);
	if (!rc)
		dda__sha256_update(&r->sha, line.ptr, line.len + 1);
	if (!rc && advance(s))
		rc = dda_error_set(err, s->err.code, "%s", s->err.msg);
	return rc;
}

static char *copy_bytes(const char *src, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, src, n);
		p[n] = '\0';
	}
	return p;
}

static char *normalize_source(const char *src)
{
	size_t n = strlen(src);
	while (n > 1 && src[n - 1] == '/')
		n--;
	return copy_bytes(src, n);
}

static int open_local(struct dda_state *s, struct dda_error *err)
{
	s->read_path = copy_bytes(s->path, strlen(s->path));
	if (!s->read_path)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	return dda__state_lock(s->path, &s->lock_fd, err);
}

/* Where an S3 state is downloaded to and its successor written: a private
 * temporary directory's file, so names never collide. */
static int open_remote(struct dda_state *s, struct dda_error *err)
{
	char holder[256];
	bool exists = false;
	const char *tmp = getenv("TMPDIR");
	struct dda_buf p;
	dda_buf_init(&p, 8192);
	int rc = dda_buf_addf(&p, "%s/ddbaudit-state-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!rc && !mkdtemp(p.ptr))
		rc = dda_error_set(err, DDA_EIO, "cannot create a temporary directory '%s': %s",
				   p.ptr, strerror(errno));
	else if (rc)
		rc = dda_error_set(err, rc, "TMPDIR too long");
	if (!rc && dda_buf_adds(&p, "/state.gz"))
		rc = dda_error_set(err, DDA_ETOOBIG, "TMPDIR too long");
	s->read_path = rc ? NULL : dda_buf_take(&p, NULL);
	dda_buf_release(&p);
	if (rc)
		return rc;
	s->tmpdir = true;
	dda__state_holder(holder, sizeof(holder));
	rc = dda__state_remote_open(&s->remote, s->path, s->id.aws, holder, err);
	if (!rc)
		rc = dda__state_remote_fetch(s->remote, s->read_path, &exists, err);
	return rc;
}

int dda_state_open(struct dda_state **out, const char *path, const struct dda_state_identity *id,
		   struct dda_error *err)
{
	struct dda_state *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	s->lock_fd = -1;
	s->id = *id;
	s->prior = no_run;
	dda__afile_init(&s->af);
	dda_buf_init(&s->r.key, DDA_STATE_LINE_MAX);
	dda_buf_init(&s->r.prev_key, DDA_STATE_LINE_MAX);
	dda_buf_init(&s->line, 2 * DDA_STATE_LINE_MAX);
	dda_buf_init(&s->carried_obj, DDA_STATE_LINE_MAX);
	s->path = copy_bytes(path, strlen(path));
	s->source_norm = normalize_source(id->source);
	int rc = 0;
	if (!s->path || !s->source_norm)
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc)
		rc = strncmp(path, "s3://", 5) ? open_local(s, err) : open_remote(s, err);
	if (!rc)
		rc = open_reader(s, err);
	if (rc) {
		dda_state_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

const struct dda_state_run *dda_state_prior(const struct dda_state *s)
{
	return s->exists ? &s->prior : NULL;
}

const struct dda_error *dda_state_error(const struct dda_state *s)
{
	return &s->err;
}

uint64_t dda_state_items(const struct dda_state *s)
{
	return s->written;
}

/* ---- writing ---- */

static int put_line(struct dda_state *s, const char *p, size_t n, bool hash)
{
	if (hash)
		dda__sha256_update(&s->wsha, p, n);
	if (n && gzwrite(s->out, p, (unsigned)n) != (int)n)
		return fail(s, DDA_EIO, "cannot be written (compressing the new state failed)");
	return 0;
}

/* A JSON string of bytes that may not be UTF-8: escaped when they are not
 * (src/util/name.c), so the header always parses. */
static json_t *json_text(const char *p)
{
	size_t n = strlen(p);
	if (dda__utf8_valid(p, n))
		return json_stringn(p, n);
	struct dda_buf b;
	dda_buf_init(&b, 1 << 16);
	json_t *v = dda__name_escape(&b, p, n) ? NULL : json_stringn(b.ptr, b.len);
	dda_buf_release(&b);
	return v;
}

static char *header_text(const struct dda_state *s, int64_t watermark, int64_t started)
{
	char wt[DDA_TIME_STRLEN], st[DDA_TIME_STRLEN];
	char tool[64];
	json_t *ks = json_array();
	for (size_t i = 0; i < s->id.nkeys; i++)
		json_array_append_new(ks, json_text(s->id.key_names[i]));
	snprintf(tool, sizeof(tool), "ddbaudit %s", dda_version());
	json_t *h = json_pack(
	    "{sssisss{soso}sssssIsssI}", "format", DDA_STATE_FORMAT, "version", DDA_STATE_VERSION,
	    "tool", tool, "table", "source", json_text(s->source_norm), "key_schema", ks, "order",
	    "key-hash-then-bytes", "watermark", dda_time_format(watermark, true, wt),
	    "watermark_us", (json_int_t)watermark, "started", dda_time_format(started, true, st),
	    "started_us", (json_int_t)started);
	char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
	json_decref(h);
	return text;
}

int dda_state_begin(struct dda_state *s, int64_t watermark, int64_t started, struct dda_error *err)
{
	/* A local state is written beside itself (so the rename is atomic),
	 * an S3 one beside its download. */
	int rc = dda__afile_open(&s->af, s->remote ? s->read_path : s->path, err);
	if (rc)
		return rc;
	int fd = dup(s->af.fd);
	s->out = fd >= 0 ? gzdopen(fd, GZ_MODE) : NULL;
	if (!s->out) {
		if (fd >= 0)
			close(fd);
		return dda_error_set(err, DDA_EIO, "cannot write the state '%s'", s->path);
	}
	if (dda__sha256_init(&s->wsha))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	char *h = header_text(s, watermark, started);
	if (!h)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	rc = put_line(s, h, strlen(h), true);
	if (!rc)
		rc = put_line(s, "\n", 1, true);
	free(h);
	return rc ? dda_error_set(err, rc, "%s", s->err.msg) : 0;
}

/* Copies the current old item through, as bytes, and moves on. */
static int copy_through(struct dda_state *s)
{
	int rc = put_line(s, s->r.line.ptr, s->r.line.len + 1, true);
	s->written++;
	return rc ? rc : advance(s);
}

static int cmp_current(const struct dda_state *s, const uint8_t *key, size_t key_len)
{
	return dda_history_key_cmp((const uint8_t *)s->r.key.ptr, s->r.key.len, key, key_len);
}

static int parse_item(struct dda_state *s, struct dda_carried *c)
{
	json_t *j = json_loadb(s->r.line.ptr, s->r.line.len, 0, NULL);
	json_t *p = json_object_get(j, "p"), *t = json_object_get(j, "t");
	const char *d = json_string_value(json_object_get(j, "d"));
	const char *e = json_string_value(json_object_get(j, "e"));
	const char *o = json_string_value(json_object_get(j, "o"));
	const char *ob = json_string_value(json_object_get(j, "o_b64"));
	const char *fp = json_string_value(json_object_get(j, "c"));
	int rc = 0;
	uint8_t fpb[8] = {0};
	if (!json_is_boolean(p) || !json_is_integer(t) || !e || !o ||
	    (d && hex_decode(d, strlen(d), c->digest, DDA_DIGEST_LEN)) ||
	    (fp && hex_decode(fp, strlen(fp), fpb, sizeof(fpb))))
		rc = DDA_EFORMAT;
	c->event = -1;
	for (int ev = DDA_EV_INSERT; !rc && ev <= DDA_EV_STATE; ev++)
		if (!strcmp(e, dda_event_name_str(ev)))
			c->event = ev;
	if (!rc && c->event < 0)
		rc = DDA_EFORMAT;
	dda_buf_reset(&s->carried_obj);
	if (!rc && ob)
		rc = dda_base64_decode(ob, strlen(ob), &s->carried_obj) ? DDA_EFORMAT : 0;
	else if (!rc)
		rc = dda_buf_adds(&s->carried_obj, o) ? DDA_EFORMAT : 0;
	if (!rc) {
		c->found = true;
		c->present = json_is_true(p);
		c->digest_known = c->present && d;
		c->time = json_integer_value(t);
		c->object = s->carried_obj.ptr ? s->carried_obj.ptr : "";
		c->change_fp = 0;
		for (size_t i = 0; i < sizeof(fpb); i++)
			c->change_fp = c->change_fp << 8 | fpb[i];
	}
	json_decref(j);
	return rc ? fail(s, rc, "is corrupt: an item line is unreadable") : 0;
}

int dda_state_prior_hook(void *ctx, const uint8_t *key, size_t key_len, struct dda_carried *out)
{
	struct dda_state *s = ctx;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	while (!rc && s->r.have && cmp_current(s, key, key_len) < 0)
		rc = copy_through(s);
	if (rc || !s->r.have || cmp_current(s, key, key_len))
		return rc;
	rc = parse_item(s, out);
	/* The old line is replaced by the one the end hook writes. */
	return rc ? rc : advance(s);
}

int dda_state_end_hook(void *ctx, const struct dda_item_end *e)
{
	struct dda_state *s = ctx;
	struct dda_buf *b = &s->line;
	char hex[2 * DDA_DIGEST_LEN + 1];
	dda_buf_reset(b);
	int rc = dda_buf_adds(b, ITEM_PREFIX);
	if (!rc)
		rc = dda_base64_encode(e->key, e->key_len, b);
	if (!rc)
		rc = dda_buf_addf(b, "\",\"p\":%s", e->present ? "true" : "false");
	if (!rc && e->present && e->digest_known) {
		dda__hex(e->digest, DDA_DIGEST_LEN, hex);
		rc = dda_buf_addf(b, ",\"d\":\"%s\"", hex);
	}
	if (!rc)
		rc = dda_buf_addf(b, ",\"e\":\"%s\",\"t\":%lld,", dda_event_name_str(e->event),
				  (long long)e->time);
	const char *o = e->object ? e->object : "";
	if (!rc)
		rc = dda__json_name(b, "o", o, strlen(o));
	if (!rc)
		rc = dda_buf_addf(b, ",\"c\":\"%016llx\"}\n", (unsigned long long)e->change_fp);
	if (rc)
		return fail(s, DDA_ETOOBIG, "cannot hold an item (its line is too long)");
	s->written++;
	return put_line(s, b->ptr, b->len, true);
}

int dda_state_drain(struct dda_state *s, struct dda_error *err)
{
	int rc = s->err.code;
	while (!rc && s->r.have)
		rc = copy_through(s);
	if (!rc && s->exists && !s->r.trailer_seen)
		rc = fail(s, DDA_EFORMAT, "is truncated: its trailer is missing");
	return rc ? dda_error_set(err, rc, "%s", s->err.msg) : 0;
}

int dda_state_commit(struct dda_state *s, const char *report_sha256, const char *versioning,
		     const char *object_lock, struct dda_error *err)
{
	uint8_t d[DDA_SHA256_LEN];
	char hex[2 * DDA_SHA256_LEN + 1];
	dda__sha256_final(&s->wsha, d);
	dda__hex(d, sizeof(d), hex);
	json_t *t =
	    json_pack("{sbsIsssss{ssss}ss}", "trailer", 1, "items", (json_int_t)s->written,
		      "report_sha256", report_sha256, "previous_report_sha256",
		      s->prior.report_sha256, "bucket", "versioning", versioning ? versioning : "",
		      "object_lock", object_lock ? object_lock : "", "sha256", hex);
	/* Only when this run wrote a bundle: a state without one reads as
	 * before, by this version and by older ones. */
	if (t && s->bundle_sha256[0] &&
	    json_object_set_new(t, "bundle_sha256", json_string(s->bundle_sha256))) {
		json_decref(t);
		t = NULL;
	}
	char *text = t ? json_dumps(t, JSON_COMPACT) : NULL;
	json_decref(t);
	int rc = text ? put_line(s, text, strlen(text), false) : DDA_ENOMEM;
	if (!rc)
		rc = put_line(s, "\n", 1, false);
	free(text);
	int zrc = gzclose(s->out);
	s->out = NULL;
	if (rc)
		return dda_error_set(err, rc, "%s", s->err.msg);
	if (zrc != Z_OK)
		return dda_error_set(err, DDA_EIO, "cannot write the state '%s'", s->path);
	if (s->remote) {
		rc = dda__afile_finish(&s->af, err);
		if (!rc)
			rc = dda__state_remote_put(s->remote, s->af.tmp.ptr, err);
	} else {
		rc = dda__afile_commit(&s->af, err);
	}
	if (!rc)
		s->committed = true;
	return rc;
}

void dda_state_set_bundle(struct dda_state *s, const char *bundle_sha256)
{
	snprintf(s->bundle_sha256, sizeof(s->bundle_sha256), "%s", bundle_sha256);
}

void dda_state_free(struct dda_state *s)
{
	if (!s)
		return;
	if (s->out)
		gzclose(s->out);
	dda__afile_discard(&s->af);
	if (s->r.gz)
		gzclose(s->r.gz);
	free(s->r.buf);
	dda__sha256_release(&s->r.sha);
	dda__sha256_release(&s->wsha);
	dda_buf_release(&s->r.key);
	dda_buf_release(&s->r.prev_key);
	dda_buf_release(&s->line);
	dda_buf_release(&s->carried_obj);
	dda__state_unlock(s->lock_fd);
	if (s->tmpdir) {
		/* The download and its directory; the new state's temporary file
		 * went with the discard above. */
		unlink(s->read_path);
		char *slash = strrchr(s->read_path, '/');
		*slash = '\0';
		rmdir(s->read_path);
	}
	dda__state_remote_free(s->remote);
	free(s->read_path);
	free(s->path);
	free(s->source_norm);
	free(s);
}
