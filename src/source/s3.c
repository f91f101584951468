/* S3 sources (s3://BUCKET/PREFIX/): list only the hour prefixes a range can
 * hold (concurrently, page by page), then fetch objects many at a time and
 * hand them out in key order, as the directory source does. With versions,
 * every version of every key is read, oldest first. */
#include "source/source_impl.h"
#include "aws/s3.h"
#include "aws/s3_xml.h"
#include "util/log.h"

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
	uint64_t pages;
	bool more; /* the last page said more follow */
};

struct slot {
	struct dda_s3_call call;
	struct s3_source *s;
	size_t idx;
	bool busy, done;
	bool skip;   /* not read: a folder, outside the range */
	bool marker; /* a delete marker: reported, not read */
	struct dda_buf body;
	long status;
	int err;
	char msg[256];
};

/* A question about the bucket itself (versioning, Object Lock). */
struct bucket_query {
	struct dda_s3_call call;
	struct s3_source *s;
	const char *param; /* "versioning" or "object-lock" */
	char why[256];	   /* why it was not answered */
};

struct s3_source {
	struct dda_source base;
	struct bucket_query queries[2];
	struct dda_s3 *s3;
	char *bucket, *prefix;
	struct dda_s3_listing all;
	uint64_t listed_n; /* entries appended so far: their listing order */
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
	struct dda__exports *exports; /* DynamoDB exports under the prefix */
	struct dda_buf missing;	      /* key of a listed export file not found */
};

static int submit_list(struct list_job *j);
static int next_page(struct list_job *j, const struct dda_s3_listing *page);

static void list_done(struct dda_s3_call *c, struct dda_http_response *r)
{
	struct list_job *j = c->ctx;
	struct s3_source *s = j->s;
	dda__s3_call_release(c);
	if (r->status != 200) {
		char why[512];
		dda__s3_describe(r, why, sizeof(why));
		dda_error_set(&s->fail, DDA_EIO, "cannot list s3://%s/%s: %s (credentials from %s)",
			      s->bucket, j->prefix, why, dda__s3_provider(s->s3));
		s->listing_left--;
		return;
	}
	struct dda_s3_listing page = {0};
	/* Parse into a page of our own: markers belong to this job. */
	int rc = dda__s3_parse_listing(r->body.ptr, r->body.len, &page, &s->fail);
	size_t plen = strlen(j->prefix);
	for (size_t i = 0; !rc && i < page.n; i++) {
		if (strncmp(page.v[i].key, j->prefix, plen)) {
			/* Not under the prefix asked for: not the source's, whatever
			 * the peer says. Left in the page, released with it. */
			if (!s->base.facts.keys_outside_prefix++)
				dda__log(&s->base.opts.log, DDA_LOG_INFO,
					 "the listing of s3://%s/%s returned a key outside its "
					 "prefix ('%.200s'): ignored (keys outside the prefix are "
					 "counted in the report)",
					 s->bucket, j->prefix, page.v[i].key);
			continue;
		}
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
		page.v[i].ord = s->listed_n++;
		s->all.v[s->all.n++] = page.v[i];
		memset(&page.v[i], 0, sizeof(page.v[i]));
	}
	if (!rc)
		rc = next_page(j, &page);
	dda__s3_listing_release(&page);
	if (!rc && j->more && !submit_list(j))
		return;
	if (!rc && j->more)
		dda_error_set(&s->fail, DDA_ENOMEM, "cannot list s3://%s/%s: out of memory",
			      s->bucket, j->prefix);
	s->listing_left--;
}

/* Pages per prefix at most: an hour prefix holds a few thousand keys, a
 * whole bucket's listing a few billion at 1,000 a page. A peer that keeps
 * answering past this is not listing anything. */
#define MAX_PAGES_PER_PREFIX ((uint64_t)10 << 20)

/* Takes the continuation of a listed page. A listing that would end early
 * is a failure, never a shorter complete listing: a truncated page without
 * a token or marker, a token equal to the one just used (a peer that
 * repeats itself would be listed forever), or too many pages. */
static int next_page(struct list_job *j, const struct dda_s3_listing *page)
{
	struct s3_source *s = j->s;
	const char *why = NULL;
	j->more = page->truncated;
	if (j->more && !page->next_token && !page->next_key_marker)
		why = "the answer is truncated but gives no continuation token or marker";
	else if (j->more &&
		 ((page->next_token && j->token && !strcmp(page->next_token, j->token)) ||
		  (!page->next_token && page->next_key_marker && j->key_marker &&
		   !strcmp(page->next_key_marker, j->key_marker) &&
		   !strcmp(page->next_version_marker ? page->next_version_marker : "",
			   j->version_marker ? j->version_marker : ""))))
		why = "the answer repeats the continuation token it was asked with";
	else if (j->more && ++j->pages >= MAX_PAGES_PER_PREFIX)
		why = "the listing goes on past any real prefix's number of pages";
	if (why)
		return dda_error_set(&s->fail, DDA_EFORMAT,
				     "cannot list s3://%s/%s: %s; the listing is incomplete",
				     s->bucket, j->prefix, why);
	free(j->token);
	free(j->key_marker);
	free(j->version_marker);
	j->token = page->next_token ? strdup(page->next_token) : NULL;
	j->key_marker = page->next_key_marker ? strdup(page->next_key_marker) : NULL;
	j->version_marker =
	    page->next_version_marker ? strdup(page->next_version_marker) : NULL;
	if ((page->next_token && !j->token) || (page->next_key_marker && !j->key_marker) ||
	    (page->next_version_marker && !j->version_marker))
		return dda_error_set(&s->fail, DDA_ENOMEM, "out of memory");
	return 0;
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
	return dda__s3_submit(&j->call, s->s3, "GET", s->bucket, NULL, q, n, LIST_MAX_BODY,
			      list_done, j);
}

/* The prefixes to list: one per hour the range can hold (with slack), or
 * the whole prefix when the range is open or the prefix names no
 * directory to put hours under. */
static int plan_prefixes(struct s3_source *s, char ***out, size_t *n)
{
	const struct dda_range listed = dda__list_range(&s->base.opts);
	const struct dda_range *r = &listed;
	size_t plen = strlen(s->prefix);
	int64_t hour = DDA_USEC_PER_HOUR;
	/* A DynamoDB export is not laid out by hour: its data is listed whole
	 * and its lines are checked against the range instead. */
	bool export = strstr(s->prefix, "AWSDynamoDB/") != NULL;
	bool by_hour = r->from != DDA_TIME_NONE && plen && s->prefix[plen - 1] == '/' && !export;
	int64_t from = 0, to = 0;
	if (by_hour) {
		int64_t now = s->base.opts.now > 0 ? s->base.opts.now : dda_time_now();
		int64_t end = r->to != DDA_TIME_NONE ? r->to : now;
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
		int rc = dda_buf_adds(&b, s->prefix);
		if (by_hour) {
			dda_time_to_civil(from + (int64_t)i * hour, &y, &mo, &d, &h, &mi, &sec,
					  NULL);
			rc = dda_buf_addf(&b, "%04d/%02d/%02d/%02d/", y, mo, d, h);
		}
		/* A prefix that could not be built fails the run: an empty one
		 * would silently widen the listing to the whole bucket. */
		v[i] = rc ? NULL : b.len ? dda_buf_take(&b, NULL) : strdup("");
		dda_buf_release(&b); /* an empty prefix may still hold memory */
		if (!v[i]) {
			while (i)
				free(v[--i]);
			free(v);
			return rc ? rc : DDA_ENOMEM;
		}
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
	/* Versions of one key: S3 lists them newest first (a key's versions
	 * come from one prefix's pages, in order), and they are read oldest
	 * first, so the latest is read last. Listing order, not LastModified,
	 * decides: versions written in the same millisecond keep their order. */
	return a->ord > b->ord ? -1 : a->ord < b->ord;
}

static void bucket_done(struct dda_s3_call *c, struct dda_http_response *r)
{
	struct bucket_query *q = c->ctx;
	struct dda_source_facts *f = &q->s->base.facts;
	struct dda_error perr = {0};
	char v[32], mode[32], days[16], years[16];
	dda__s3_call_release(c);
	bool ok = r->status == 200 && !r->err;
	if (!strcmp(q->param, "versioning")) {
		ok = ok &&
		     !dda__s3_parse_value(r->body.ptr, r->body.len, "Status", v, sizeof(v), &perr);
		snprintf(f->versioning, sizeof(f->versioning), "%.15s",
			 !ok ? "unknown" : v[0] ? v : "Disabled");
		if (!ok)
			dda__s3_describe(r, q->why, sizeof(q->why));
		return;
	}
	if (r->status == 404) {
		/* Only this error says the bucket has no lock; a bucket that does
		 * not exist (NoSuchBucket) has no settings to report. */
		char code[64], msg[8];
		dda__s3_parse_error(r->body.ptr, r->body.len, code, sizeof(code), msg, sizeof(msg));
		snprintf(f->object_lock, sizeof(f->object_lock), "%s",
			 !strcmp(code, "ObjectLockConfigurationNotFoundError") ? "Disabled"
									      : "unknown");
		return;
	}
	const char *b = r->body.ptr;
	size_t n = r->body.len;
	ok = ok && !dda__s3_parse_value(b, n, "ObjectLockEnabled", v, sizeof(v), &perr) &&
	     !dda__s3_parse_value(b, n, "Mode", mode, sizeof(mode), &perr) &&
	     !dda__s3_parse_value(b, n, "Days", days, sizeof(days), &perr) &&
	     !dda__s3_parse_value(b, n, "Years", years, sizeof(years), &perr);
	snprintf(f->object_lock, sizeof(f->object_lock), "%.15s",
		 !ok ? "unknown" : v[0] ? v : "Disabled");
	if (ok && mode[0])
		snprintf(f->retention, sizeof(f->retention), "%.16s %.10s %s", mode,
			 days[0] ? days : years, days[0] ? "days" : "years");
}

/* Asks the bucket whether it keeps versions and locks objects, alongside
 * the listings. */
static void query_bucket(struct s3_source *s)
{
	static const char *const params[] = {"versioning", "object-lock"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(params); i++) {
		struct bucket_query *q = &s->queries[i];
		struct dda_kv kv = {params[i], ""};
		q->s = s;
		q->param = params[i];
		if (dda__s3_submit(&q->call, s->s3, "GET", s->bucket, NULL, &kv, 1, 1 << 20,
				   bucket_done, q))
			snprintf(i ? s->base.facts.object_lock : s->base.facts.versioning,
				 sizeof(s->base.facts.versioning), "unknown");
	}
}

/* One finding about versioning, unless it is on: audit objects written
 * again under one key replace the earlier ones without a trace. */
static int versioning_finding(struct s3_source *s)
{
	const struct dda_source_facts *f = &s->base.facts;
	const char *lock = !strcmp(f->object_lock, "Enabled")   ? "on"
			   : !strcmp(f->object_lock, "unknown") ? "unknown"
								: "off";
	if (!strcmp(f->versioning, "Enabled"))
		return 0;
	if (!strcmp(f->versioning, "unknown"))
		return dda__source_note(
		    &s->base, DDA_FACT_VERSIONING_UNKNOWN, UINT32_MAX,
		    "cannot read the versioning status of bucket '%s' (%s): whether audit "
		    "objects can be lost to overwrites is not known; Object Lock: %s",
		    s->bucket, s->queries[0].why, lock);
	return dda__source_note(
	    &s->base, DDA_FACT_UNVERSIONED, UINT32_MAX,
	    "bucket '%s' has versioning %s: an audit object written again under the same key "
	    "replaces the earlier one, so changes can be lost to overwrites without a trace "
	    "(enable versioning and use --versions); Object Lock: %s",
	    s->bucket, !strcmp(f->versioning, "Suspended") ? "suspended" : "off (never enabled)",
	    lock);
}

/* Runs the engine until its requests are done or the run's stop flag is
 * set (a signal): an interrupted run names what it was doing. */
static int run(struct s3_source *s, const char *doing, const char *key, struct dda_error *err)
{
	struct dda_error e = {0};
	int rc = dda__http_run(dda__s3_http(s->s3), s->base.opts.aws.stop, &e);
	if (rc == DDA_EINTR)
		return dda_error_set(err, rc, "interrupted while %s s3://%s/%s", doing, s->bucket,
				     key);
	return rc ? dda_error_set(err, rc, "%s", e.msg) : 0;
}

static void get_done(struct dda_s3_call *c, struct dda_http_response *r);
static bool md5_matches(const struct dda_buf *body, const char *etag);

/* One object's bytes (by its version, when versions were listed), fetched
 * alone: before the window opens, or after reading ended. */
static int get_sync(struct s3_source *s, const char *key, const char *version, const char *etag,
		    struct dda_buf *out, struct dda_error *err)
{
	size_t max = s->base.opts.max_object_bytes;
	struct slot sl = {.s = s};
	struct dda_kv q = {"versionId", version};
	int rc = dda__s3_submit(&sl.call, s->s3, "GET", s->bucket, key, &q,
				version && s->base.opts.aws.versions ? 1 : 0, max + 1, get_done,
				&sl);
	if (!rc)
		rc = run(s, "reading", key, err);
	else
		dda_error_set(err, rc, "out of memory");
	if (!rc && (sl.status != 200 || sl.err))
		rc = dda_error_set(err, DDA_EIO, "cannot read s3://%s/%s: %s", s->bucket, key,
				   sl.msg);
	if (!rc && !md5_matches(&sl.body, etag))
		rc = dda_error_set(err, DDA_EFORMAT, "s3://%s/%s: body's MD5 differs from its ETag",
				   s->bucket, key);
	if (!rc)
		rc = dda__object_bytes(&sl.body, out, max, err);
	dda__s3_call_release(&sl.call);
	dda_buf_release(&sl.body);
	return rc;
}

/* The latest listed version of key, or NULL (absent, or deleted). */
static const struct dda_s3_entry *find_latest(const struct s3_source *s, const char *key)
{
	size_t lo = 0, hi = s->all.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(s->all.v[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct dda_s3_entry *found = NULL;
	for (; lo < s->all.n && !strcmp(s->all.v[lo].key, key); lo++)
		found = &s->all.v[lo]; /* a key's versions are sorted oldest first */
	return found && !found->delete_marker ? found : NULL;
}

/* Reads one manifest of the export at root into out; *got stays NULL when
 * the export has none or it cannot be read (the export then says so). */
static int read_manifest(struct s3_source *s, const char *root, const char *name,
			 struct dda_buf *out, const struct dda_buf **got, struct dda_error *err)
{
	char key[2048];
	*got = NULL;
	if ((size_t)snprintf(key, sizeof(key), "%s%s", root, name) >= sizeof(key))
		return 0;
	const struct dda_s3_entry *e = find_latest(s, key);
	if (!e)
		return 0;
	struct dda_error gerr = {0};
	int rc = get_sync(s, key, e->version_id, e->etag, out, &gerr);
	if (rc == DDA_ENOMEM || rc == DDA_EINTR || rc == DDA_EAUTH)
		return dda_error_set(err, rc, "%s", gerr.msg);
	if (!rc)
		*got = out;
	return 0;
}

/* DynamoDB exports under the prefix (a key prefix holding manifest-summary.json
 * or manifest-files.json): their manifests are read before any data file, so
 * that every data file is checked against them as it is read, as the
 * directory source does. */
static int load_exports(struct s3_source *s, struct dda_error *err)
{
	size_t max = s->base.opts.max_object_bytes;
	int rc = 0;
	for (size_t i = 0; !rc && i < s->all.n; i++) {
		const char *key = s->all.v[i].key, *slash = strrchr(key, '/');
		const char *name = slash ? slash + 1 : key;
		if (strcmp(name, "manifest-summary.json") && strcmp(name, "manifest-files.json"))
			continue;
		char root[2048];
		size_t n = (size_t)(name - key);
		if (n >= sizeof(root))
			continue;
		memcpy(root, key, n);
		root[n] = '\0';
		if (dda__exports_known(s->exports, root))
			continue;
		struct dda_buf sum, files;
		const struct dda_buf *got_sum, *got_files = NULL;
		dda_buf_init(&sum, max);
		dda_buf_init(&files, max);
		rc = read_manifest(s, root, "manifest-summary.json", &sum, &got_sum, err);
		if (!rc)
			rc = read_manifest(s, root, "manifest-files.json", &files, &got_files, err);
		if (!rc && dda__exports_add(s->exports, &s->base, root, got_sum, got_files))
			rc = dda_error_set(err, DDA_ENOMEM,
					   "out of memory reading an export's manifests");
		dda_buf_release(&sum);
		dda_buf_release(&files);
	}
	return rc;
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
	}
	if (!s->jobs) {
		for (size_t i = 0; i < n; i++)
			free(prefixes[i]);
		free(prefixes);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	free(prefixes);
	/* A prefix that cannot be asked for is a listing that would end
	 * early: the run fails rather than read less than the range. */
	for (size_t i = 0; i < n; i++) {
		dda__log(&s->base.opts.log, DDA_LOG_INFO, "listing s3://%s/%s", s->bucket,
			 s->jobs[i].prefix);
		rc = submit_list(&s->jobs[i]);
		if (rc)
			return dda_error_set(err, rc, "cannot list s3://%s/%s: %s", s->bucket,
					     s->jobs[i].prefix, dda_strerror(rc));
		s->listing_left++;
	}
	query_bucket(s);
	rc = run(s, "listing", s->prefix, err);
	if (!rc && s->fail.code)
		rc = dda_error_set(err, s->fail.code, "%s", s->fail.msg);
	if (!rc && versioning_finding(s))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (rc)
		return rc;
	dda__sort(s->all.v, s->all.n, sizeof(*s->all.v), cmp_entry);
	dda__log(&s->base.opts.log, DDA_LOG_INFO, "listed %zu %s under %zu prefix%s", s->all.n,
		 s->base.opts.aws.versions ? "versions" : "objects", s->njobs,
		 s->njobs == 1 ? "" : "es");
	rc = load_exports(s, err);
	if (rc)
		return rc;
	s->listed = true;
	s->base.prefixes_skipped = 0;
	return 0;
}

static void get_done(struct dda_s3_call *c, struct dda_http_response *r)
{
	struct slot *sl = c->ctx;
	dda__s3_call_release(c);
	sl->done = true;
	sl->status = r->status;
	sl->err = r->err;
	if (r->status == 200 && !r->err) {
		sl->body = r->body;
		dda_buf_init(&r->body, 0);
	} else {
		dda__s3_describe(r, sl->msg, sizeof(sl->msg));
	}
}

enum entry_use { USE_READ, USE_SKIP, USE_MARKER };

/* What becomes of a listed entry: read it, or skip it (folder placeholders
 * and keys outside the range's hours), or report it (delete markers). */
static enum entry_use entry_use(struct s3_source *s, const struct dda_s3_entry *e)
{
	size_t n = strlen(e->key);
	if (!n || e->key[n - 1] == '/')
		return USE_SKIP;
	struct dda_export_info info;
	bool unlisted;
	const char *slash = strrchr(e->key, '/');
	/* Classifying a metadata name marks nothing, so it can be asked here. */
	if (dda__export_meta_name(slash ? slash + 1 : e->key) &&
	    dda__exports_classify(s->exports, e->key, &info, &unlisted) == DDA__EXP_META)
		return USE_SKIP; /* export bookkeeping, not an object */
	if (dda__object_use(&s->base, e->key, e->last_modified) == DDA__USE_SKIP)
		return USE_SKIP;
	return e->delete_marker ? USE_MARKER : USE_READ;
}

/* Starts GETs for the entries after the last one started, while the
 * engine's window has room (it grows and shrinks with throughput and
 * throttling) and the slots ahead of the next object to hand out last. */
static void fill_window(struct s3_source *s)
{
	size_t max = s->base.opts.max_object_bytes;
	struct dda_http *http = dda__s3_http(s->s3);
	while (s->next_fetch < s->all.n && s->next_fetch - s->next_yield < s->nslots &&
	       dda__http_room(http) > 0) {
		const struct dda_s3_entry *e = &s->all.v[s->next_fetch];
		size_t size = e->size > 0 ? (size_t)e->size : 0;
		if (s->bytes_in_flight && s->bytes_in_flight + size > MAX_BYTES_IN_FLIGHT)
			return;
		struct slot *sl = &s->slots[s->next_fetch % s->nslots];
		memset(sl, 0, sizeof(*sl));
		sl->s = s;
		sl->idx = s->next_fetch++;
		sl->busy = true;
		enum entry_use use = entry_use(s, e);
		sl->skip = use == USE_SKIP;
		sl->marker = use == USE_MARKER;
		if (use != USE_READ || size > max || s->base.opts.list_only) {
			sl->done = true; /* nothing to fetch */
			continue;
		}
		s->bytes_in_flight += size;
		struct dda_kv q[1];
		size_t nq = 0;
		if (e->version_id && s->base.opts.aws.versions)
			q[nq++] = (struct dda_kv){"versionId", e->version_id};
		if (dda__s3_submit(&sl->call, s->s3, "GET", s->bucket, e->key, q, nq, max + 1,
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

static int64_t add_object(struct s3_source *s, const struct dda_s3_entry *e,
			  const struct dda_export_info *exp)
{
	struct dda_object meta = {.key = e->key,
				  .version = e->version_id,
				  .etag = e->etag,
				  .size = e->size,
				  .last_modified = e->last_modified};
	if (exp)
		meta.exp = *exp;
	meta.late = dda__late_key(&s->base.opts, e->key, e->last_modified);
	return dda__object_add(&s->base, &meta);
}

/* The versions listed for entry i's key: [*first, *end) in s->all, and how
 * many of them are versions rather than delete markers. */
static size_t key_versions(const struct s3_source *s, size_t i, size_t *first, size_t *end)
{
	size_t a = i, b = i + 1, n = 0;
	while (a > 0 && !strcmp(s->all.v[a - 1].key, s->all.v[i].key))
		a--;
	while (b < s->all.n && !strcmp(s->all.v[b].key, s->all.v[i].key))
		b++;
	for (size_t k = a; k < b; k++)
		n += !s->all.v[k].delete_marker;
	*first = a;
	*end = b;
	return n;
}

/* With --versions, a key written more than once is reported (OVERWRITTEN)
 * at its last version, once all of them were read. */
static int overwrite_finding(struct s3_source *s, size_t idx, uint32_t obj)
{
	size_t first, end, n = key_versions(s, idx, &first, &end);
	for (size_t k = idx + 1; k < end; k++)
		if (!s->all.v[k].delete_marker)
			return 0; /* not the key's last version */
	if (n < 2)
		return 0;
	s->base.facts.overwritten_keys++;
	s->base.facts.versions_read += n - 1;
	return dda__source_note(&s->base, DDA_FACT_OVERWRITTEN, obj,
				   "key was written %zu times: all %zu versions were read, "
				   "oldest first",
				   n, n);
}

/* A delete marker hides its key: registered as an object (never read) so
 * that the report names its key and version. */
static int marker_finding(struct s3_source *s, size_t idx, struct dda_error *err)
{
	const struct dda_s3_entry *e = &s->all.v[idx];
	size_t first, end, n = key_versions(s, idx, &first, &end);
	char t[DDA_TIME_STRLEN];
	int64_t id = add_object(s, e, NULL);
	s->base.facts.delete_markers++;
	if (id < 0 ||
	    dda__source_note(&s->base, DDA_FACT_OVERWRITTEN, (uint32_t)id,
				"key was deleted (a delete marker of %s%s); %zu earlier "
				"version%s of it %s read",
				e->last_modified != DDA_TIME_NONE
				    ? dda_time_format(e->last_modified, false, t)
				    : "unknown time",
				e->is_latest ? ", the key's latest version" : "", n,
				n == 1 ? "" : "s", n == 1 ? "was" : "were"))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	return 0;
}

static int emit(struct s3_source *s, struct slot *sl, struct dda_chunk *c, struct dda_error *err)
{
	const struct dda_s3_entry *e = &s->all.v[sl->idx];
	size_t max = s->base.opts.max_object_bytes;
	struct dda_export_info exp = {0};
	bool unlisted = false;
	dda__exports_classify(s->exports, e->key, &exp, &unlisted);
	int64_t id = add_object(s, e, &exp);
	if (id < 0 || (s->base.opts.aws.versions && overwrite_finding(s, sl->idx, (uint32_t)id)) ||
	    (unlisted && dda__export_unlisted(&s->base, (uint32_t)id)))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	struct dda_object *o = dda_objtab_get(s->base.objs, (uint32_t)id);
	c->obj = (uint32_t)id;
	c->kind = DDA_CHUNK_DOC;
	c->first_line = 1;
	c->last = true;
	s->bytes_in_flight -= DDA_MIN(s->bytes_in_flight, (size_t)DDA_MAX(e->size, 0));
	if (s->base.opts.list_only)
		return 1; /* listed, not read */
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
				     e->key, sl->msg, dda__s3_provider(s->s3));
	if (!md5_matches(&sl->body, e->etag)) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg), "body's MD5 differs from its ETag \"%.40s\"",
			 e->etag);
		dda_buf_release(&sl->body);
		return 1;
	}
	if (o->exp.listed &&
	    dda__exports_check_md5(s->exports, &s->base, o->key, (uint32_t)id, &sl->body))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
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
		if (s->next_yield == s->all.n) {
			/* What an export's manifest lists and the bucket lacks. */
			rc = dda__exports_next_missing(s->exports, NULL, &s->missing);
			if (rc < 0)
				return dda_error_set(err, rc, "out of memory");
			return rc ? dda__export_missing_chunk(src, s->missing.ptr, c, err) : 0;
		}
		struct slot *sl = &s->slots[s->next_yield % s->nslots];
		const struct dda_s3_entry *e = &s->all.v[s->next_yield];
		/* Nothing started yet (the window is full of other requests): the
		 * slot holds an earlier object's state, so wait for room. */
		if (s->next_yield == s->next_fetch || !sl->done) {
			struct dda_error serr = {0};
			rc = dda__http_step(dda__s3_http(s->s3), 200, &serr);
			if (rc == DDA_EINTR)
				return dda_error_set(err, rc, "interrupted while reading s3://%s/%s",
						     s->bucket, e->key);
			if (rc < 0)
				return dda_error_set(err, rc, "%s", serr.msg);
			continue;
		}
		s->next_yield++;
		if (sl->marker && (rc = marker_finding(s, sl->idx, err)))
			return rc;
		if (sl->skip || sl->marker)
			continue;
		return emit(s, sl, c, err);
	}
}

static void s3_free(struct dda_source *src)
{
	struct s3_source *s = (struct s3_source *)src;
	if (s->s3 && dda__log_on(&src->opts.log, DDA_LOG_INFO)) {
		struct dda_http_stats st;
		dda__http_stats(dda__s3_http(s->s3), &st);
		dda__log(&src->opts.log, DDA_LOG_INFO,
			 "s3://%s: %llu requests, %llu retried, %llu bytes received; %llu "
			 "connections opened; window of transfers in flight peaked at %d, ended "
			 "at %d, cut by throttling %llu times",
			 s->bucket, (unsigned long long)st.requests, (unsigned long long)st.retries,
			 (unsigned long long)st.bytes, (unsigned long long)st.connects,
			 st.window_peak, st.window, (unsigned long long)st.window_cuts);
	}
	/* Transfers still in flight point at slots and jobs: end them first. */
	dda__s3_free(s->s3);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(s->queries); i++)
		dda__s3_call_release(&s->queries[i].call);
	for (size_t i = 0; i < s->njobs; i++) {
		dda__s3_call_release(&s->jobs[i].call);
		free(s->jobs[i].prefix);
		free(s->jobs[i].token);
		free(s->jobs[i].key_marker);
		free(s->jobs[i].version_marker);
	}
	for (size_t i = 0; s->slots && i < s->nslots; i++) {
		dda__s3_call_release(&s->slots[i].call);
		dda_buf_release(&s->slots[i].body);
	}
	free(s->jobs);
	free(s->slots);
	dda__s3_listing_release(&s->all);
	dda__sha256_release(&s->sha);
	dda__exports_free(s->exports);
	dda_buf_release(&s->missing);
	free(s->bucket);
	free(s->prefix);
	free(s);
}

/* One object again (GAP diffs), by its version when versions were listed.
 * Reading is over by then, so the engine runs this request alone. */
static int s3_reread(struct dda_source *src, uint32_t obj, struct dda_buf *out,
		     struct dda_error *err)
{
	struct s3_source *s = (struct s3_source *)src;
	const struct dda_object *o = dda_objtab_get(src->objs, obj);
	if (!o)
		return DDA_ENOTFOUND;
	int rc = get_sync(s, o->key, o->version, o->etag, out, err);
	if (rc == DDA_EFORMAT)
		return dda_error_set(err, rc, "s3://%s/%s changed since it was read", s->bucket,
				     o->key);
	return rc;
}

static const struct dda_source_ops s3_ops = {"s3", s3_next, s3_reread, s3_free};

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
	struct dda_env env = {dda__process_env, NULL, NULL};
	int rc = s->bucket && s->prefix ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc)
		rc = dda__s3_new(&s->s3, &opts->aws, &env, err);
	/* Twice the most transfers in flight: an object that is slow to come
	 * (a retry waiting out its backoff) holds back handing out, not the
	 * fetching of the objects behind it, until the ring is full. */
	s->nslots = 2 * (size_t)(opts->aws.concurrency > 0 ? opts->aws.concurrency
							   : DDA_HTTP_CONCURRENCY);
	if (!rc && !(s->slots = calloc(s->nslots, sizeof(*s->slots))))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && !(s->exports = dda__exports_new()))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	dda_buf_init(&s->missing, 1 << 16);
	s->base.ops = &s3_ops;
	s->base.opts = *opts;
	if (!rc) {
		dda__http_set_log(dda__s3_http(s->s3), &s->base.opts.log);
		dda__log(&s->base.opts.log, DDA_LOG_INFO, "s3://%s: credentials from %s", s->bucket,
			 dda__s3_provider(s->s3));
	}
	struct dda_source_facts *f = &s->base.facts;
	f->s3 = true;
	f->versions = opts->aws.versions;
	snprintf(f->bucket, sizeof(f->bucket), "%.*s", (int)DDA_MIN(blen, 63), b);
	snprintf(f->prefix, sizeof(f->prefix), "%s", slash ? slash + 1 : "");
	if (rc) {
		s3_free(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
