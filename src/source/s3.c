/* S3 sources (s3://BUCKET/PREFIX/): list only the hour prefixes a range can
 * hold (concurrently, page by page), then fetch objects many at a time and
 * hand them out in key order, as the directory source does. With versions,
 * every version of every key is read, oldest first. */
#include "source/source_impl.h"
#include "aws/s3.h"
#include "aws/s3_xml.h"

#include <openssl/evp.h>

/* A listing answer is a page of at most 1,000 keys; far below this. */
#define LIST_MAX_BODY ((size_t)64 << 20)
/* Bytes fetched but not yet handed out, across all transfers in flight. */
#define MAX_BYTES_IN_FLIGHT ((size_t)256 << 20)
/* Beyond this many hour prefixes a range is listed whole instead. */
#define MAX_HOUR_PREFIXES (24 * 400)

struct s3_source;

struct list_job {
	struct dda_s3_call call;
	struct s3_source *s;
	char *prefix;
	char *token, *key_marker, *version_marker;
};

struct slot {
	struct dda_s3_call call;
	struct s3_source *s;
	size_t idx;
	bool busy, done;
	bool skip; /* not read: a delete marker, a folder, outside the range */
	struct dda_buf body;
	long status;
	int err;
	char msg[256];
};

struct s3_source {
	struct dda_source base;
	struct dda_s3 *s3;
	char *bucket, *prefix;
	struct dda_s3_listing all;
	struct list_job *jobs;
	size_t njobs;
	int listing_left;
	bool listed;
	struct dda_error fail;
	size_t next_fetch, next_yield;
	struct slot *slots;
	size_t nslots;
	size_t bytes_in_flight;
	struct dda__sha256 sha;
};

static int submit_list(struct list_job *j);

static void list_done(struct dda_s3_call *c, struct dda_http_response *r)
{
	struct list_job *j = c->ctx;
	struct s3_source *s = j->s;
	dda_s3_call_release(c);
	if (r->status != 200) {
		char why[512];
		dda_s3_describe(r, why, sizeof(why));
		dda_error_set(&s->fail, DDA_EIO, "cannot list s3://%s/%s: %s (credentials from %s)",
			      s->bucket, j->prefix, why, dda_s3_provider(s->s3));
		s->listing_left--;
		return;
	}
	struct dda_s3_listing page = {0};
	/* Parse into a page of our own: markers belong to this job. */
	int rc = dda_s3_parse_listing(r->body.ptr, r->body.len, &page, &s->fail);
	for (size_t i = 0; !rc && i < page.n; i++) {
		if (s->all.n == s->all.cap) {
			size_t cap = s->all.cap ? s->all.cap * 2 : 4096;
			struct dda_s3_entry *nv = realloc(s->all.v, cap * sizeof(*nv));
			if (!nv) {
				rc = dda_error_set(&s->fail, DDA_ENOMEM, "out of memory");
				break;
			}
			s->all.v = nv;
			s->all.cap = cap;
		}
		s->all.v[s->all.n++] = page.v[i];
		memset(&page.v[i], 0, sizeof(page.v[i]));
	}
	bool more = !rc && page.truncated;
	free(j->token);
	free(j->key_marker);
	free(j->version_marker);
	j->token = page.next_token ? strdup(page.next_token) : NULL;
	j->key_marker = page.next_key_marker ? strdup(page.next_key_marker) : NULL;
	j->version_marker = page.next_version_marker ? strdup(page.next_version_marker) : NULL;
	dda_s3_listing_release(&page);
	if (more && (j->token || j->key_marker) && !submit_list(j))
		return;
	s->listing_left--;
}

static int submit_list(struct list_job *j)
{
	struct s3_source *s = j->s;
	struct dda_kv q[6];
	size_t n = 0;
	q[n++] = (struct dda_kv){"encoding-type", "url"};
	q[n++] = (struct dda_kv){"prefix", j->prefix};
	if (s->base.opts.aws.versions) {
		q[n++] = (struct dda_kv){"versions", ""};
		if (j->key_marker)
			q[n++] = (struct dda_kv){"key-marker", j->key_marker};
		if (j->version_marker)
			q[n++] = (struct dda_kv){"version-id-marker", j->version_marker};
	} else {
		q[n++] = (struct dda_kv){"list-type", "2"};
		if (j->token)
			q[n++] = (struct dda_kv){"continuation-token", j->token};
	}
	return dda_s3_submit(&j->call, s->s3, "GET", s->bucket, NULL, q, n, LIST_MAX_BODY,
			     list_done, j);
}

/* The prefixes to list: one per hour the range can hold (with slack), or
 * the whole prefix when the range is open or the prefix names no
 * directory to put hours under. */
static int plan_prefixes(struct s3_source *s, char ***out, size_t *n)
{
	const struct dda_range *r = &s->base.opts.range;
	size_t plen = strlen(s->prefix);
	int64_t hour = DDA_USEC_PER_HOUR;
	bool by_hour = r->from != DDA_TIME_NONE && plen && s->prefix[plen - 1] == '/';
	int64_t from = 0, to = 0;
	if (by_hour) {
		int64_t end = r->to != DDA_TIME_NONE ? r->to : dda_time_now();
		from = (r->from - DDA_PREFIX_SLACK) / hour * hour;
		to = end + DDA_PREFIX_SLACK;
		by_hour = (to - from) / hour <= MAX_HOUR_PREFIXES;
	}
	size_t count = by_hour ? (size_t)((to - from + hour - 1) / hour) : 1;
	char **v = calloc(count, sizeof(*v));
	if (!v)
		return DDA_ENOMEM;
	for (size_t i = 0; i < count; i++) {
		struct dda_buf b;
		dda_buf_init(&b, 4096);
		int y, mo, d, h, mi, sec;
		dda_buf_adds(&b, s->prefix);
		if (by_hour) {
			dda_time_to_civil(from + (int64_t)i * hour, &y, &mo, &d, &h, &mi, &sec,
					  NULL);
			dda_buf_addf(&b, "%04d/%02d/%02d/%02d/", y, mo, d, h);
		}
		v[i] = b.ptr ? dda_buf_take(&b, NULL) : strdup("");
	}
	*out = v;
	*n = count;
	return 0;
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct dda_s3_entry *a = pa, *b = pb;
	int c = strcmp(a->key, b->key);
	if (c)
		return c;
	/* Versions of one key: oldest first, the latest last. */
	if (a->last_modified != b->last_modified)
		return a->last_modified < b->last_modified ? -1 : 1;
	return (int)a->is_latest - (int)b->is_latest;
}

static int list_all(struct s3_source *s, struct dda_error *err)
{
	char **prefixes;
	size_t n;
	int rc = plan_prefixes(s, &prefixes, &n);
	if (rc)
		return dda_error_set(err, rc, "out of memory");
	s->jobs = calloc(n, sizeof(*s->jobs));
	s->njobs = n;
	for (size_t i = 0; s->jobs && i < n; i++) {
		s->jobs[i].s = s;
		s->jobs[i].prefix = prefixes[i];
		if (!submit_list(&s->jobs[i]))
			s->listing_left++;
	}
	free(prefixes);
	if (!s->jobs)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	rc = dda_http_run(dda_s3_http(s->s3), NULL, err);
	if (!rc && s->fail.code)
		rc = dda_error_set(err, s->fail.code, "%s", s->fail.msg);
	if (rc)
		return rc;
	dda__sort(s->all.v, s->all.n, sizeof(*s->all.v), cmp_entry);
	s->listed = true;
	s->base.prefixes_skipped = 0;
	return 0;
}

static void get_done(struct dda_s3_call *c, struct dda_http_response *r)
{
	struct slot *sl = c->ctx;
	dda_s3_call_release(c);
	sl->done = true;
	sl->status = r->status;
	sl->err = r->err;
	if (r->status == 200 && !r->err) {
		sl->body = r->body;
		dda_buf_init(&r->body, 0);
	} else {
		dda_s3_describe(r, sl->msg, sizeof(sl->msg));
	}
}

/* Whether an entry is read at all (delete markers, folder placeholders and
 * keys outside the range's hours are not). */
static bool wanted(struct s3_source *s, const struct dda_s3_entry *e)
{
	size_t n = strlen(e->key);
	if (e->delete_marker || !n || e->key[n - 1] == '/')
		return false;
	if (dda__key_pruned(&s->base.opts.range, e->key)) {
		s->base.objects_skipped++;
		return false;
	}
	return true;
}

/* Starts GETs for the entries after the last one started, while there is
 * room in the window. */
static void fill_window(struct s3_source *s)
{
	size_t max = s->base.opts.max_object_bytes;
	while (s->next_fetch < s->all.n && s->next_fetch - s->next_yield < s->nslots) {
		const struct dda_s3_entry *e = &s->all.v[s->next_fetch];
		size_t size = e->size > 0 ? (size_t)e->size : 0;
		if (s->bytes_in_flight && s->bytes_in_flight + size > MAX_BYTES_IN_FLIGHT)
			return;
		struct slot *sl = &s->slots[s->next_fetch % s->nslots];
		memset(sl, 0, sizeof(*sl));
		sl->s = s;
		sl->idx = s->next_fetch++;
		sl->busy = true;
		sl->skip = !wanted(s, e);
		if (sl->skip || size > max) {
			sl->done = true; /* nothing to fetch */
			continue;
		}
		s->bytes_in_flight += size;
		struct dda_kv q[1];
		size_t nq = 0;
		if (e->version_id && s->base.opts.aws.versions)
			q[nq++] = (struct dda_kv){"versionId", e->version_id};
		if (dda_s3_submit(&sl->call, s->s3, "GET", s->bucket, e->key, q, nq, max + 1,
				  get_done, sl)) {
			sl->done = true;
			sl->err = DDA_ENOMEM;
			snprintf(sl->msg, sizeof(sl->msg), "out of memory");
		}
	}
}

static bool md5_matches(const struct dda_buf *body, const char *etag)
{
	if (!etag || strlen(etag) != 32 || strchr(etag, '-'))
		return true; /* not a plain MD5 ETag (multipart, SSE-KMS): nothing to check */
	uint8_t d[16];
	unsigned int len = 0;
	char hex[33];
	EVP_Digest(body->ptr ? body->ptr : "", body->len, d, &len, EVP_md5(), NULL);
	dda__hex(d, 16, hex);
	return !strcasecmp(hex, etag);
}

static int emit(struct s3_source *s, struct slot *sl, struct dda_chunk *c, struct dda_error *err)
{
	const struct dda_s3_entry *e = &s->all.v[sl->idx];
	size_t max = s->base.opts.max_object_bytes;
	struct dda_object meta = {.key = e->key,
				  .version = e->version_id,
				  .etag = e->etag,
				  .size = e->size,
				  .last_modified = e->last_modified};
	int64_t id = dda_objtab_add(s->base.objs, &meta);
	if (id < 0)
		return dda_error_set(err, (int)id, "out of memory");
	struct dda_object *o = dda_objtab_get(s->base.objs, (uint32_t)id);
	c->obj = (uint32_t)id;
	c->kind = DDA_CHUNK_DOC;
	c->first_line = 1;
	c->last = true;
	s->bytes_in_flight -= DDA_MIN(s->bytes_in_flight, (size_t)DDA_MAX(e->size, 0));
	if (e->size > (int64_t)max) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg),
			 "object is %lld bytes, over the %zu-byte cap (--max-object-bytes)",
			 (long long)e->size, max);
		return 1;
	}
	if (sl->status == 404) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg), "object was listed but is gone: %.200s", sl->msg);
		return 1;
	}
	if (sl->status != 200 || sl->err)
		return dda_error_set(err, DDA_EIO,
				     "cannot read s3://%s/%s: %s (credentials from %s)", s->bucket,
				     e->key, sl->msg, dda_s3_provider(s->s3));
	if (!md5_matches(&sl->body, e->etag)) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg), "body's MD5 differs from its ETag \"%.40s\"",
			 e->etag);
		dda_buf_release(&sl->body);
		return 1;
	}
	dda__object_finish(c, o, &sl->body, max, &s->sha);
	dda_buf_release(&sl->body);
	return 1;
}

static int s3_next(struct dda_source *src, struct dda_chunk *c, struct dda_error *err)
{
	struct s3_source *s = (struct s3_source *)src;
	int rc = s->listed ? 0 : list_all(s, err);
	if (rc)
		return rc;
	for (;;) {
		fill_window(s);
		if (s->next_yield == s->all.n)
			return 0;
		struct slot *sl = &s->slots[s->next_yield % s->nslots];
		const struct dda_s3_entry *e = &s->all.v[s->next_yield];
		if (!sl->done) {
			rc = dda_http_step(dda_s3_http(s->s3), 200, err);
			if (rc < 0)
				return rc;
			continue;
		}
		s->next_yield++;
		(void)e;
		if (sl->skip)
			continue;
		return emit(s, sl, c, err);
	}
}

static void s3_free(struct dda_source *src)
{
	struct s3_source *s = (struct s3_source *)src;
	/* Transfers still in flight point at slots and jobs: end them first. */
	dda_s3_free(s->s3);
	for (size_t i = 0; i < s->njobs; i++) {
		dda_s3_call_release(&s->jobs[i].call);
		free(s->jobs[i].prefix);
		free(s->jobs[i].token);
		free(s->jobs[i].key_marker);
		free(s->jobs[i].version_marker);
	}
	for (size_t i = 0; s->slots && i < s->nslots; i++) {
		dda_s3_call_release(&s->slots[i].call);
		dda_buf_release(&s->slots[i].body);
	}
	free(s->jobs);
	free(s->slots);
	dda_s3_listing_release(&s->all);
	dda__sha256_release(&s->sha);
	free(s->bucket);
	free(s->prefix);
	free(s);
}

/* Re-reading needs a GET of one object; the diffs of S3 GAPs come with the
 * S3 issue's later work. */
static const struct dda_source_ops s3_ops = {"s3", s3_next, NULL, s3_free};

int dda__s3_open(struct dda_source **out, const char *spec, const struct dda_source_opts *opts,
		 struct dda_error *err)
{
	const char *b = spec + 5, *slash = strchr(b, '/');
	size_t blen = slash ? (size_t)(slash - b) : strlen(b);
	if (!blen)
		return dda_error_set(err, DDA_EINVAL,
				     "invalid S3 source '%s' (s3://BUCKET/PREFIX/)", spec);
	struct s3_source *s = calloc(1, sizeof(*s));
	if (!s)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	s->bucket = strndup(b, blen);
	s->prefix = strdup(slash ? slash + 1 : "");
	struct dda_env env = {dda_process_env, NULL};
	int rc = s->bucket && s->prefix ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc)
		rc = dda_s3_new(&s->s3, &opts->aws, &env, err);
	s->nslots = opts->aws.concurrency > 0 ? (size_t)opts->aws.concurrency : 64;
	if (!rc && !(s->slots = calloc(s->nslots, sizeof(*s->slots))))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	s->base.ops = &s3_ops;
	s->base.opts = *opts;
	if (rc) {
		s3_free(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
