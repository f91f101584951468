/* ddbaudit merge: the report directories of the shards of one run joined
 * into the result the unsharded run would have had. Shards write their
 * manifests in listing order, so the manifests are merged as sorted streams
 * (one line of each in memory); findings come in full from each report's
 * shard section and are sorted as a run sorts them. */
#include "audit/audit_impl.h"
#include "ddbaudit/merge.h"

#include <errno.h>
#include <unistd.h>

/* A manifest line holds one object's key (at most 1024 bytes, escaped and
 * in base64 when not UTF-8) and a few fields: far below this. */
#define MAX_MANIFEST_LINE ((size_t)64 << 10)
/* The schema a shard's report.json declares (DDA_REPORT_SCHEMA: the report
 * writers sit above the audit and are not included here). */
#define REPORT_SCHEMA "ddbaudit.report/v1"
/* A settle of ten years, an --expect-every of a hundred years. */
#define MAX_SETTLE_SECONDS ((uint64_t)10 * 366 * 24 * 3600)
#define MAX_EVERY_HOURS ((uint64_t)100 * 366 * 24)
/* More shards than any array job engine runs (AWS Batch: 10,000). */
#define MAX_SHARDS 100000

struct shard {
	const char *dir;
	json_t *rep;	    /* report.json */
	const json_t *sec;  /* its "shard" section */
	uint32_t index;
	FILE *man;
	struct dda_buf line; /* the current manifest line, "listing" cut off */
	uint64_t ord;	    /* the current line's listing ordinal, 0 at the end */
	uint64_t lineno;
};

/* An object a finding names that no manifest lists (a delete marker). */
struct named {
	uint64_t ord;
	const json_t *obj;
};

struct merge {
	struct shard *s;
	size_t n;
	struct dda_result *res;
	struct dda_merge_info *mi;
	FILE *out;
	struct dda__sha256 sha;
	uint64_t *ords; /* the listing ordinal of each object id */
	size_t nords, ords_cap;
	struct named *named;
	size_t nnamed, named_cap;
	struct dda__anomaly_vec all;
	struct dda__hour_vec hours;
	struct dda_error *err;
	const struct dda_audit_opts *recheck; /* borrowed, or NULL */
	struct dda_error *recheck_err;
};

static const json_t *member(const json_t *o, const char *path)
{
	char name[64];
	while (o && *path) {
		size_t n = strcspn(path, ".");
		snprintf(name, sizeof(name), "%.*s", (int)n, path);
		o = json_object_get(o, name);
		path += n + (path[n] == '.');
	}
	return o;
}

static const char *text(const json_t *o, const char *path)
{
	return json_string_value(member(o, path));
}

static uint64_t count(const json_t *o, const char *path)
{
	json_int_t v = json_integer_value(member(o, path));
	return v > 0 ? (uint64_t)v : 0;
}

static int64_t time_of(const json_t *v)
{
	int64_t t;
	const char *s = json_string_value(v);
	return s && !dda_time_parse(s, strlen(s), &t) ? t : DDA_TIME_NONE;
}

/* ---- loading and checking the set ---- */

static int load(struct merge *m, struct shard *s)
{
	struct dda_buf path;
	json_error_t je;
	dda_buf_init(&path, 4096);
	if (dda_buf_addf(&path, "%s/report.json", s->dir)) {
		dda_buf_release(&path);
		return dda_error_set(m->err, DDA_EINVAL, "'%s': path too long", s->dir);
	}
	s->rep = json_load_file(path.ptr, JSON_REJECT_DUPLICATES, &je);
	int saved = errno;
	dda_buf_release(&path);
	if (!s->rep && access(s->dir, F_OK))
		return dda_error_set(m->err, DDA_EINVAL, "'%s': %s", s->dir, strerror(saved));
	if (!s->rep && je.position == 0 && je.line <= 1)
		return dda_error_set(m->err, DDA_EINVAL,
				     "'%s' holds no report.json (give each shard's --report DIR)",
				     s->dir);
	if (!s->rep)
		return dda_error_set(m->err, DDA_EFORMAT, "'%s/report.json' is damaged: %s (line %d)",
				     s->dir, je.text, je.line);
	s->sec = json_object_get(s->rep, "shard");
	const char *schema = text(s->rep, "schema");
	if (!schema || strcmp(schema, REPORT_SCHEMA) || !json_is_object(s->sec))
		return dda_error_set(m->err, DDA_EINVAL,
				     "'%s/report.json' is not the report of a shard (run verify "
				     "with --shard K/N)",
				     s->dir);
	json_int_t k = json_integer_value(json_object_get(s->sec, "index"));
	json_int_t n = json_integer_value(json_object_get(s->sec, "count"));
	if (n < 1 || n > MAX_SHARDS || k < 0 || k >= n || !json_is_array(member(s->sec, "findings")))
		return dda_error_set(m->err, DDA_EFORMAT,
				     "'%s/report.json': its shard section is damaged", s->dir);
	s->index = (uint32_t)k;
	return 0;
}

/* Two shards disagree on a member of their reports. */
static bool differ(const struct shard *a, const struct shard *b, const char *path)
{
	const json_t *x = member(a->rep, path), *y = member(b->rep, path);
	return !x || !y || !json_equal(x, y);
}

static int mismatch(struct merge *m, const struct shard *a, const struct shard *b,
		    const char *what)
{
	return dda_error_set(m->err, DDA_EINVAL,
			     "shard %u ('%s') and shard %u ('%s') are not of one run: %s differ",
			     a->index, a->dir, b->index, b->dir, what);
}

static int check_set(struct merge *m)
{
	static const struct {
		const char *path, *what;
	} agree[] = {
	    {"shard.count", "their shard counts"},
	    {"shard.assignment", "their assignments"},
	    {"run.source", "their sources"},
	    {"run.range", "their ranges (give each shard the same --from and --to)"},
	    {"shard.options_sha256", "their options"},
	};
	const struct shard *first = &m->s[0];
	for (size_t i = 1; i < m->n; i++)
		for (size_t a = 0; a < DDA_ARRAY_SIZE(agree); a++)
			if (differ(first, &m->s[i], agree[a].path))
				return mismatch(m, first, &m->s[i], agree[a].what);
	uint32_t n = (uint32_t)count(first->rep, "shard.count");
	uint8_t *seen = calloc(n, 1);
	if (!seen)
		return dda_error_set(m->err, DDA_ENOMEM, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < m->n && !rc; i++) {
		const struct shard *s = &m->s[i];
		if (seen[s->index]++) {
			size_t j = 0;
			while (m->s[j].index != s->index)
				j++;
			rc = dda_error_set(m->err, DDA_EINVAL, "shard %u of %u is given twice: '%s' and '%s'",
					   s->index, n, m->s[j].dir, s->dir);
		}
	}
	for (uint32_t k = 0; k < n && !rc; k++)
		if (!seen[k])
			rc = dda_error_set(m->err, DDA_ENOTFOUND,
					   "shard %u of %u is missing: the merge needs all %u "
					   "shards' report directories",
					   k, n, n);
	free(seen);
	/* A listing that did not end has no digest: the shard is incomplete,
	 * which the merged result says; complete shards must agree on it. */
	for (size_t i = 0; i < m->n && !rc; i++) {
		const struct shard *s = &m->s[i];
		const char *d = text(s->rep, "shard.listing_sha256");
		bool whole = json_is_true(member(s->rep, "run.complete"));
		for (size_t j = 0; j < i && !rc && whole; j++)
			if (json_is_true(member(m->s[j].rep, "run.complete")) &&
			    differ(&m->s[j], s, "shard.listing_sha256"))
				rc = mismatch(m, &m->s[j], s,
					      "their listings (the source changed between them)");
		if (!rc && whole && (!d || !*d))
			rc = dda_error_set(m->err, DDA_EFORMAT,
					   "'%s/report.json': a complete shard without its listing's "
					   "digest",
					   s->dir);
	}
	return rc;
}

static const struct shard *shard_zero(const struct merge *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->s[i].index == 0)
			return &m->s[i];
	return &m->s[0];
}

static int take_info(struct merge *m)
{
	const json_t *rep = shard_zero(m)->rep;
	struct dda_merge_info *mi = m->mi;
	const char *fail_on = text(rep, "run.options.fail_on");
	mi->count = (uint32_t)count(rep, "shard.count");
	mi->source = strdup(text(rep, "run.source") ? text(rep, "run.source") : "");
	mi->range.from = time_of(member(rep, "run.range.from"));
	mi->range.to = time_of(member(rep, "run.range.to"));
	mi->options = json_deep_copy(member(rep, "run.options"));
	mi->fail_on = !fail_on || !strcmp(fail_on, "never") ? DDA_SEV__COUNT
							    : dda_severity_parse(fail_on);
	mi->versions = json_is_true(member(rep, "run.versions"));
	if (mi->fail_on < 0)
		mi->fail_on = DDA_SEV_ERROR;
	if (!mi->source || !json_is_object(mi->options) ||
	    json_object_set_new(mi->options, "shard", json_null()))
		return dda_error_set(m->err, DDA_ENOMEM, "out of memory");
	return 0;
}

/* ---- objects: the manifests merged in listing order ---- */

/* Reads the shard's next manifest line into s->line, its listing cut off. */
static int next_line(struct merge *m, struct shard *s)
{
	static const char tag[] = ",\"listing\":";
	s->ord = 0;
	if (!s->man)
		return 0;
	dda_buf_reset(&s->line);
	int ch;
	while ((ch = getc(s->man)) != EOF && ch != '\n')
		if (dda_buf_addc(&s->line, (char)ch))
			return dda_error_set(m->err, DDA_EFORMAT,
					     "'%s/manifest.ndjson' line %llu is too long", s->dir,
					     (unsigned long long)s->lineno + 1);
	if (ferror(s->man))
		return dda_error_set(m->err, DDA_EIO, "cannot read '%s/manifest.ndjson': %s",
				     s->dir, strerror(errno));
	if (ch == EOF && !s->line.len)
		return 0;
	s->lineno++;
	const char *p = s->line.ptr ? s->line.ptr : "";
	const char *at = NULL;
	for (const char *q = strstr(p, tag); q; q = strstr(q + 1, tag))
		at = q;
	char *end;
	unsigned long long ord = at ? strtoull(at + strlen(tag), &end, 10) : 0;
	if (!at || !ord || strcmp(end, "}"))
		return dda_error_set(m->err, DDA_EFORMAT,
				     "'%s/manifest.ndjson' line %llu has no listing ordinal "
				     "(not a shard's manifest)",
				     s->dir, (unsigned long long)s->lineno);
	s->line.len = (size_t)(at - p);
	if (dda_buf_adds(&s->line, "}\n"))
		return dda_error_set(m->err, DDA_ENOMEM, "out of memory");
	s->ord = ord;
	return 0;
}

static int open_manifest(struct merge *m, struct shard *s)
{
	struct dda_buf path;
	dda_buf_init(&path, 4096);
	dda_buf_init(&s->line, MAX_MANIFEST_LINE);
	int rc = dda_buf_addf(&path, "%s/manifest.ndjson", s->dir);
	if (!rc && !(s->man = fopen(path.ptr, "rb")))
		rc = dda_error_set(m->err, DDA_EINVAL, "'%s' holds no manifest.ndjson: %s", s->dir,
				   strerror(errno));
	dda_buf_release(&path);
	return rc ? rc : next_line(m, s);
}

static int name_of(const json_t *o, const char *field, struct dda_buf *out)
{
	char b64[64];
	snprintf(b64, sizeof(b64), "%s_b64", field);
	const json_t *raw = json_object_get(o, b64), *v = json_object_get(o, field);
	int rc = 0;
	dda_buf_reset(out);
	if (json_is_string(raw))
		rc = dda_base64_decode(json_string_value(raw), json_string_length(raw), out);
	else if (json_is_string(v))
		rc = dda_buf_add(out, json_string_value(v), json_string_length(v));
	else
		return 0; /* null: none */
	if (!rc && !(rc = dda_buf_addc(out, '\0')))
		out->len--; /* a C string from here on */
	return rc;
}

static int digest_of(const json_t *v, bool *has, uint8_t out[DDA_DIGEST_LEN])
{
	const char *h = json_string_value(v);
	*has = false;
	if (json_is_null(v))
		return 0;
	if (!h || strlen(h) != 2 * DDA_DIGEST_LEN)
		return DDA_EFORMAT;
	for (size_t i = 0; i < DDA_DIGEST_LEN; i++) {
		int a = dda__hex_value(h[2 * i]), b = dda__hex_value(h[2 * i + 1]);
		if (a < 0 || b < 0)
			return DDA_EFORMAT;
		out[i] = (uint8_t)(a << 4 | b);
	}
	*has = true;
	return 0;
}

/* Registers an object from a manifest line or a finding's object. */
static int add_object(struct merge *m, uint64_t ord, const json_t *o, bool from_manifest)
{
	struct dda_buf key, version, etag;
	dda_buf_init(&key, 1 << 16);
	dda_buf_init(&version, 4096);
	dda_buf_init(&etag, 4096);
	int rc = name_of(o, "key", &key);
	if (!rc)
		rc = name_of(o, from_manifest ? "versionId" : "version", &version);
	if (!rc)
		rc = name_of(o, "etag", &etag);
	if (!rc && (!key.ptr || memchr(key.ptr, '\0', key.len) ||
		    (version.ptr && memchr(version.ptr, '\0', version.len))))
		rc = DDA_EFORMAT;
	struct dda_object meta = {
	    .key = key.ptr,
	    .version = version.ptr,
	    .etag = etag.ptr,
	    .size = json_is_integer(json_object_get(o, "size"))
			? json_integer_value(json_object_get(o, "size"))
			: -1,
	    .last_modified = time_of(json_object_get(o, "lastModified")),
	    .late = json_is_true(json_object_get(o, "late")),
	};
	if (!rc && json_is_string(json_object_get(o, "sha256")))
		rc = digest_of(json_object_get(o, "sha256"), &meta.sha_valid, meta.sha256);
	int64_t id = rc ? rc : dda_objtab_add(m->res->objs, &meta);
	dda_buf_release(&key);
	dda_buf_release(&version);
	dda_buf_release(&etag);
	if (id < 0)
		return dda_error_set(m->err, id == DDA_ENOMEM ? DDA_ENOMEM : DDA_EFORMAT,
				     "object %llu of the listing cannot be read back",
				     (unsigned long long)ord);
	if (m->nords == m->ords_cap) {
		size_t cap = m->ords_cap ? 2 * m->ords_cap : 1024;
		uint64_t *nv = realloc(m->ords, cap * sizeof(*nv));
		if (!nv)
			return dda_error_set(m->err, DDA_ENOMEM, "out of memory");
		m->ords = nv;
		m->ords_cap = cap;
	}
	m->ords[m->nords++] = ord;
	if (!from_manifest)
		return 0;
	struct dda_summary *sum = &m->res->sum;
	const struct dda_object *ob = dda_objtab_get(m->res->objs, (uint32_t)id);
	sum->objects++;
	if (ob->size > 0)
		sum->bytes += (uint64_t)ob->size;
	return 0;
}

/* The line of the lowest ordinal among the shards' heads; an object every
 * shard reads is in every manifest, once each, with the same line. */
static int take_line(struct merge *m, uint64_t ord)
{
	const struct dda_buf *line = NULL;
	for (size_t i = 0; i < m->n; i++) {
		struct shard *s = &m->s[i];
		if (s->ord != ord)
			continue;
		if (line && (line->len != s->line.len || memcmp(line->ptr, s->line.ptr, line->len)))
			return dda_error_set(m->err, DDA_EINVAL,
					     "'%s/manifest.ndjson' line %llu differs from another "
					     "shard's line for object %llu of the listing",
					     s->dir, (unsigned long long)s->lineno,
					     (unsigned long long)ord);
		line = &s->line;
	}
	json_error_t je;
	json_t *o = json_loadb(line->ptr, line->len, 0, &je);
	int rc = o ? add_object(m, ord, o, true)
		   : dda_error_set(m->err, DDA_EFORMAT, "a manifest line of object %llu is damaged",
				   (unsigned long long)ord);
	json_decref(o);
	if (!rc && m->out && fwrite(line->ptr, 1, line->len, m->out) != line->len)
		rc = dda_error_set(m->err, DDA_EIO, "cannot write the manifest: %s",
				   strerror(errno));
	if (!rc)
		dda__sha256_update(&m->sha, line->ptr, line->len);
	for (size_t i = 0; i < m->n && !rc; i++)
		if (m->s[i].ord == ord)
			rc = next_line(m, &m->s[i]);
	return rc;
}

static int cmp_named(const void *pa, const void *pb)
{
	const struct named *a = pa, *b = pb;
	return a->ord < b->ord ? -1 : a->ord > b->ord;
}

/* The objects the findings name, so that one no manifest lists (a delete
 * marker) still takes its place in the table. */
static int collect_named(struct merge *m)
{
	for (size_t i = 0; i < m->n; i++) {
		size_t k;
		const json_t *f;
		json_array_foreach(member(m->s[i].sec, "findings"), k, f)
		{
			const json_t *objs[2] = {json_object_get(f, "object"),
						 member(f, "previous.object")};
			for (int j = 0; j < 2; j++) {
				uint64_t ord = count(objs[j], "listing");
				if (!ord)
					continue;
				if (m->nnamed == m->named_cap) {
					size_t cap = m->named_cap ? 2 * m->named_cap : 64;
					struct named *nv = realloc(m->named, cap * sizeof(*nv));
					if (!nv)
						return dda_error_set(m->err, DDA_ENOMEM,
								     "out of memory");
					m->named = nv;
					m->named_cap = cap;
				}
				m->named[m->nnamed++] = (struct named){ord, objs[j]};
			}
		}
	}
	dda__sort(m->named, m->nnamed, sizeof(*m->named), cmp_named);
	return 0;
}

static int merge_objects(struct merge *m)
{
	size_t nx = 0;
	int rc = collect_named(m);
	for (size_t i = 0; i < m->n && !rc; i++)
		rc = open_manifest(m, &m->s[i]);
	uint64_t last = 0;
	while (!rc) {
		uint64_t ord = UINT64_MAX;
		for (size_t i = 0; i < m->n; i++)
			if (m->s[i].ord && m->s[i].ord < ord)
				ord = m->s[i].ord;
		while (nx < m->nnamed && m->named[nx].ord <= last)
			nx++;
		if (nx < m->nnamed && m->named[nx].ord < ord) {
			last = m->named[nx].ord;
			rc = add_object(m, last, m->named[nx].obj, false);
			continue;
		}
		if (ord == UINT64_MAX)
			break;
		if (ord <= last)
			return dda_error_set(m->err, DDA_EFORMAT,
					     "a shard's manifest is out of listing order at object "
					     "%llu",
					     (unsigned long long)ord);
		last = ord;
		rc = take_line(m, ord);
	}
	return rc;
}

/* The object id of a listing ordinal (ids follow the listing). */
static uint32_t object_id(const struct merge *m, uint64_t ord)
{
	size_t lo = 0, hi = m->nords;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->ords[mid] < ord)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nords && m->ords[lo] == ord ? (uint32_t)lo : DDA_NO_OBJECT;
}

/* ---- findings ---- */

static int object_ref(const struct merge *m, const json_t *o, uint32_t *out)
{
	*out = DDA_NO_OBJECT;
	if (json_is_null(o) || !o)
		return 0;
	*out = object_id(m, count(o, "listing"));
	return *out == DDA_NO_OBJECT ? DDA_EFORMAT : 0;
}

/* One finding of a shard's section back into an anomaly (pushed to m->all). */
static int finding(struct merge *m, const json_t *f)
{
	struct dda_anomaly an = {.obj = DDA_NO_OBJECT, .prev_obj = DDA_NO_OBJECT};
	struct dda_buf key, why;
	const char *kind = text(f, "kind"), *sev = text(f, "severity"), *detail = text(f, "detail");
	const json_t *item = json_object_get(f, "item"), *prev = json_object_get(f, "previous");
	dda_buf_init(&key, 1 << 20);
	dda_buf_init(&why, 4096);
	an.kind = kind ? dda_kind_parse(kind) : -1;
	an.severity = sev ? dda_severity_parse(sev) : -1;
	int rc = an.kind < 0 || an.severity < 0 || !detail ? DDA_EFORMAT : 0;
	if (!rc && json_is_object(item))
		rc = dda_canon_image(item, "item", &key, &why);
	if (!rc)
		rc = object_ref(m, json_object_get(f, "object"), &an.obj);
	if (!rc && json_is_object(prev))
		rc = object_ref(m, json_object_get(prev, "object"), &an.prev_obj);
	if (!rc)
		rc = digest_of(json_object_get(f, "expected_digest"), &an.has_expected, an.expected);
	if (!rc)
		rc = digest_of(json_object_get(f, "found_digest"), &an.has_found, an.found);
	an.time = time_of(json_object_get(f, "time"));
	an.line = count(f, "line");
	an.index = (uint32_t)count(f, "index");
	an.prev_index = (uint32_t)count(prev, "index");
	an.provisional = json_is_true(json_object_get(f, "provisional"));
	if (!rc && json_is_object(item)) {
		an.key_len = (uint32_t)key.len;
		an.key = (uint8_t *)dda_buf_take(&key, NULL);
	}
	an.detail = !rc ? strdup(detail) : NULL;
	an.diff = json_incref(json_object_get(f, "diff"));
	dda_buf_release(&key);
	dda_buf_release(&why);
	if (!rc && (!an.detail || (json_is_object(item) && !an.key)))
		rc = DDA_ENOMEM;
	if (rc) {
		dda_anomaly_release(&an);
		return rc;
	}
	return dda__anomaly_push(&m->all, &an);
}

static int take_findings(struct merge *m)
{
	for (size_t i = 0; i < m->n; i++) {
		size_t k;
		const json_t *f;
		json_array_foreach(member(m->s[i].sec, "findings"), k, f)
		{
			int rc = finding(m, f);
			if (rc == DDA_ENOMEM)
				return dda_error_set(m->err, rc, "out of memory");
			if (rc)
				return dda_error_set(m->err, DDA_EFORMAT,
						     "'%s/report.json': finding %zu of its shard "
						     "section is damaged",
						     m->s[i].dir, k + 1);
		}
	}
	return 0;
}

/* ---- figures ---- */

static void add_kinds(uint64_t *into, const json_t *by_kind)
{
	const char *name;
	const json_t *v;
	json_object_foreach((json_t *)by_kind, name, v)
	{
		int k = dda_kind_parse(name);
		if (k >= 0 && json_integer_value(v) > 0)
			into[k] += (uint64_t)json_integer_value(v);
	}
}

static void add_summary(struct dda_summary *s, const json_t *rep)
{
	const json_t *sum = json_object_get(rep, "summary");
	static const char *const ev[] = {"INSERT", "MODIFY", "REMOVE"};
	s->records += count(sum, "records");
	s->valid += count(sum, "valid");
	s->invalid += count(sum, "invalid");
	s->filtered += count(sum, "filtered");
	s->duplicates += count(sum, "duplicates");
	s->items += count(sum, "items");
	s->deferred += count(sum, "deferred");
	s->states += count(sum, "states");
	for (int e = 0; e < 3; e++)
		s->events[e] += count(json_object_get(sum, "events"), ev[e]);
	add_kinds(s->ignored, json_object_get(sum, "ignored"));
	add_kinds(s->suppressed, json_object_get(sum, "suppressed"));
	size_t i;
	const json_t *v;
	json_array_foreach(member(rep, "shard.items_by_events"), i, v)
		if (i < DDA_CHANGE_BUCKETS && json_integer_value(v) > 0)
			s->items_by_events[i] += (uint64_t)json_integer_value(v);
}

/* Appends the shard's hour rows; coalesce_hours adds up those of one hour. */
static int add_hours(struct merge *m, const json_t *rep)
{
	size_t i;
	const json_t *h;
	json_array_foreach(json_object_get(rep, "hours"), i, h)
	{
		int64_t t = time_of(json_object_get(h, "hour"));
		if (t == DDA_TIME_NONE)
			continue;
		if (m->hours.n == m->hours.cap) {
			size_t cap = m->hours.cap ? 2 * m->hours.cap : 64;
			struct dda_hour_stat *nv = realloc(m->hours.v, cap * sizeof(*nv));
			if (!nv)
				return dda_error_set(m->err, DDA_ENOMEM, "out of memory");
			m->hours.v = nv;
			m->hours.cap = cap;
		}
		m->hours.v[m->hours.n++] = (struct dda_hour_stat){
		    .hour = t, .objects = count(h, "objects"), .records = count(h, "records")};
	}
	return 0;
}

static int cmp_hour(const void *pa, const void *pb)
{
	const struct dda_hour_stat *a = pa, *b = pb;
	return a->hour < b->hour ? -1 : a->hour > b->hour;
}

static void coalesce_hours(struct merge *m)
{
	size_t n = 0;
	dda__sort(m->hours.v, m->hours.n, sizeof(*m->hours.v), cmp_hour);
	for (size_t i = 0; i < m->hours.n; i++) {
		struct dda_hour_stat *h = &m->hours.v[i];
		if (n && m->hours.v[n - 1].hour == h->hour) {
			m->hours.v[n - 1].objects += h->objects;
			m->hours.v[n - 1].records += h->records;
		} else {
			m->hours.v[n++] = *h;
		}
	}
	m->hours.n = n;
}

/* The row of an hour among the sorted rows, or NULL. */
static struct dda_hour_stat *hour_row(struct merge *m, int64_t hour)
{
	size_t lo = 0, hi = m->hours.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->hours.v[mid].hour < hour)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->hours.n && m->hours.v[lo].hour == hour ? &m->hours.v[lo] : NULL;
}

static void take_bucket(struct merge *m)
{
	const json_t *b0 = member(shard_zero(m)->rep, "run.bucket");
	struct dda_source_facts *f = &m->res->source;
	if (!json_is_object(b0))
		return;
	f->s3 = true;
	snprintf(f->bucket, sizeof(f->bucket), "%s", text(b0, "name") ? text(b0, "name") : "");
	snprintf(f->prefix, sizeof(f->prefix), "%s", text(b0, "prefix") ? text(b0, "prefix") : "");
	snprintf(f->versioning, sizeof(f->versioning), "%s",
		 text(b0, "versioning") ? text(b0, "versioning") : "");
	snprintf(f->object_lock, sizeof(f->object_lock), "%s",
		 text(b0, "object_lock") ? text(b0, "object_lock") : "");
	snprintf(f->retention, sizeof(f->retention), "%s",
		 text(b0, "default_retention") ? text(b0, "default_retention") : "");
	f->versions = json_is_true(json_object_get(b0, "versions_listed"));
	/* Every shard lists every key; each key's versions are one shard's. */
	f->keys_outside_prefix = count(b0, "keys_outside_prefix");
	for (size_t i = 0; i < m->n; i++) {
		f->overwritten_keys += count(m->s[i].rep, "run.bucket.overwritten_keys");
		f->delete_markers += count(m->s[i].rep, "run.bucket.delete_markers");
	}
}

static void take_figures(struct merge *m)
{
	struct dda_result *res = m->res;
	const json_t *r0 = shard_zero(m)->rep;
	res->sum.prefixes_skipped = count(r0, "summary.prefixes_skipped");
	res->sum.objects_skipped = count(r0, "summary.objects_skipped");
	res->started = res->finished = DDA_TIME_NONE;
	for (size_t i = 0; i < m->n; i++) {
		const json_t *rep = m->s[i].rep;
		int64_t a = time_of(member(rep, "run.started")), b = time_of(member(rep, "run.finished"));
		add_summary(&res->sum, rep);
		if (a != DDA_TIME_NONE && (res->started == DDA_TIME_NONE || a < res->started))
			res->started = a;
		if (b != DDA_TIME_NONE && (res->finished == DDA_TIME_NONE || b > res->finished))
			res->finished = b;
		if (!res->fatal.code && !json_is_true(member(rep, "run.complete")))
			dda_error_set(&res->fatal, DDA_EIO,
				      "shard %u of %u ('%s') is incomplete: %s", m->s[i].index,
				      m->mi->count, m->s[i].dir,
				      text(rep, "run.error") ? text(rep, "run.error") : "its run failed");
	}
	take_bucket(m);
}

/* What only the whole can decide (EMPTY_RANGE, MISSING_HOUR), then the
 * findings in a run's order and counted as a run counts them. */
static int complete(struct merge *m)
{
	struct dda_audit_opts o;
	const json_t *opt = m->mi->options;
	dda_audit_opts_default(&o);
	o.src.range = m->mi->range;
	o.now = time_of(json_object_get(opt, "now"));
	uint64_t settle = count(opt, "settle_seconds"), every = count(opt, "expect_every_hours");
	/* Bounds far past any real setting keep the arithmetic in range. */
	if (o.now == DDA_TIME_NONE || settle > MAX_SETTLE_SECONDS || every > MAX_EVERY_HOURS)
		return dda_error_set(m->err, DDA_EFORMAT,
				     "'%s/report.json': run.options has no usable now, "
				     "settle_seconds or expect_every_hours",
				     shard_zero(m)->dir);
	o.settle = (int64_t)settle * DDA_USEC_PER_SEC;
	o.expect_every = (int64_t)every * DDA_USEC_PER_HOUR;
	o.allow_empty = json_is_true(json_object_get(opt, "allow_empty"));
	coalesce_hours(m);
	struct dda__audit_ctx x = {&o, m->res, &m->all, &m->hours};
	if (dda__complete(&x))
		return dda_error_set(m->err, DDA_ENOMEM, "out of memory");
	dda__sort(m->all.v, m->all.n, sizeof(*m->all.v), dda__anomaly_cmp);
	struct dda_result *res = m->res;
	for (size_t i = 0; i < m->hours.n; i++)
		m->hours.v[i].anomalies = 0;
	for (size_t i = 0; i < m->all.n; i++) {
		const struct dda_anomaly *an = &m->all.v[i];
		res->sum.anomalies[an->severity]++;
		res->sum.by_kind[an->kind]++;
		const struct dda_object *ob =
		    an->obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, an->obj) : NULL;
		struct dda_hour_stat *h = hour_row(m, ob				? ob->hour
						      : an->kind == DDA_K_MISSING_HOUR ? an->time
										       : DDA_TIME_NONE);
		if (h)
			h->anomalies++;
	}
	res->anomalies = m->all.v;
	res->nanomalies = m->all.n;
	res->hours = m->hours.v;
	res->nhours = m->hours.n;
	m->all = (struct dda__anomaly_vec){0};
	m->hours = (struct dda__hour_vec){0};
	return 0;
}

/* ---- items split across shards: read again ---- */

struct split_item {
	uint8_t *key; /* owned: the findings it came from are released */
	uint32_t len, owner;
};

struct split {
	struct split_item *v;
	size_t n, cap;
	char **names; /* the items' seed names and the objects holding their records */
	size_t nnames, names_cap;
	uint32_t only; /* keep the items of this owner, or UINT32_MAX for all */
};

static struct split_item *split_find(const struct split *sp, const uint8_t *key, size_t n)
{
	for (size_t i = 0; i < sp->n; i++)
		if (sp->v[i].len == n && !memcmp(sp->v[i].key, key, n))
			return &sp->v[i];
	return NULL;
}

static bool want_item(void *ctx, const uint8_t *key, size_t n)
{
	const struct split *sp = ctx;
	const struct split_item *it = split_find(sp, key, n);
	return it && (sp->only == UINT32_MAX || it->owner == sp->only);
}

/* An object holding (or named for) a split item's records, or one every
 * shard reads. */
static bool want_object(void *ctx, const char *key)
{
	const struct split *sp = ctx;
	int64_t hour;
	uint32_t off;
	if (!dda_key_hour(key, strlen(key), &hour, &off))
		return true;
	const char *name = key + off;
	size_t n = strlen(name);
	if (n > 3 && !strcmp(name + n - 3, ".gz"))
		n -= 3;
	for (size_t i = 0; i < sp->nnames; i++)
		if (!strcmp(sp->names[i], key) ||
		    (strlen(sp->names[i]) == n && !memcmp(sp->names[i], name, n)))
			return true;
	return false;
}

static int split_name(struct split *sp, const char *name)
{
	if (sp->nnames == sp->names_cap) {
		size_t cap = sp->names_cap ? 2 * sp->names_cap : 16;
		char **nv = realloc(sp->names, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		sp->names = nv;
		sp->names_cap = cap;
	}
	return (sp->names[sp->nnames] = strdup(name)) ? (sp->nnames++, 0) : DDA_ENOMEM;
}

static void split_release(struct split *sp)
{
	for (size_t i = 0; i < sp->nnames; i++)
		free(sp->names[i]);
	for (size_t i = 0; i < sp->n; i++)
		free(sp->v[i].key);
	free(sp->names);
	free(sp->v);
}

/* The items of the SHARD_SPLIT findings, with their seed names and the
 * objects their findings name. */
static int split_collect(struct merge *m, const struct dda_decoder_opts *dec, struct split *sp)
{
	int rc = 0;
	for (size_t i = 0; i < m->all.n && !rc; i++) {
		const struct dda_anomaly *an = &m->all.v[i];
		if (an->kind != DDA_K_SHARD_SPLIT || !an->key || split_find(sp, an->key, an->key_len))
			continue;
		if (sp->n == sp->cap) {
			size_t cap = sp->cap ? 2 * sp->cap : 16;
			struct split_item *nv = realloc(sp->v, cap * sizeof(*nv));
			if (!nv)
				return DDA_ENOMEM;
			sp->v = nv;
			sp->cap = cap;
		}
		uint8_t *key = malloc(an->key_len ? an->key_len : 1);
		if (!key)
			return DDA_ENOMEM;
		memcpy(key, an->key, an->key_len);
		sp->v[sp->n++] = (struct split_item){
		    key, an->key_len, dda_shard_of_item(an->key, an->key_len, dec, m->mi->count)};
		struct dda_buf name;
		dda_buf_init(&name, (size_t)an->key_len + 8);
		int got = dda__item_seed_name(an->key, an->key_len, dec, &name);
		rc = got < 0 ? got : got ? 0 : split_name(sp, name.ptr);
		dda_buf_release(&name);
	}
	for (size_t i = 0; i < m->all.n && !rc; i++) {
		const struct dda_anomaly *an = &m->all.v[i];
		if (an->key && an->obj != DDA_NO_OBJECT && split_find(sp, an->key, an->key_len))
			rc = split_name(sp, dda_objtab_get(m->res->objs, an->obj)->key);
	}
	return rc;
}

/* The options the shards ran with, for reading their source again. */
static int recheck_opts(struct merge *m, struct dda_audit_opts *o, struct dda_error *err)
{
	const json_t *opt = m->mi->options, *ks = json_object_get(opt, "key_schema"), *v;
	struct dda_buf spec;
	size_t i;
	*o = *m->recheck;
	o->source = m->mi->source;
	o->src.range = o->dec.range = m->mi->range;
	o->now = o->src.now = time_of(json_object_get(opt, "now"));
	o->settle = (int64_t)DDA_MIN(count(opt, "settle_seconds"), MAX_SETTLE_SECONDS) *
		    DDA_USEC_PER_SEC;
	o->src.max_object_bytes = count(opt, "max_object_bytes");
	o->src.aws.versions = json_is_true(json_object_get(opt, "versions"));
	o->diffs = json_is_true(json_object_get(opt, "diffs"));
	o->ignore = 0;
	json_array_foreach(json_object_get(opt, "ignore"), i, v)
	{
		int k = json_string_value(v) ? dda_kind_parse(json_string_value(v)) : -1;
		if (k >= 0)
			o->ignore |= UINT64_C(1) << k;
	}
	o->allow_empty = true;
	o->expect_every = 0;
	o->manifest_path = NULL;
	dda_buf_init(&spec, 4096);
	int rc = 0;
	json_array_foreach(ks, i, v)
	{
		if (!rc)
			rc = dda_buf_addf(&spec, "%s%s:%s", i ? "," : "",
					  text(v, "name") ? text(v, "name") : "",
					  text(v, "role") ? text(v, "role") : "");
	}
	if (!rc && spec.ptr)
		rc = dda_key_schema_parse(spec.ptr, &o->dec, err);
	dda_buf_release(&spec);
	if (!rc && o->now == DDA_TIME_NONE)
		rc = dda_error_set(err, DDA_EFORMAT, "the shards' options have no now");
	return rc;
}

/* One run of the audit over the split items' objects: as shard `owner` saw
 * them (owner < count), or as one run sees them. */
static int recheck_run(struct merge *m, struct dda_audit_opts *o, struct split *sp,
		       uint32_t owner, struct dda_result *r, struct dda_error *err)
{
	sp->only = owner;
	o->src.shard = owner == UINT32_MAX ? (struct dda_shard){0, 0}
					   : (struct dda_shard){owner, m->mi->count};
	o->src.want = want_object;
	o->src.want_ctx = sp;
	o->want_item = want_item;
	o->want_item_ctx = sp;
	int rc = dda_audit_run(o, r, err);
	if (!rc && r->fatal.code)
		rc = dda_error_set(err, r->fatal.code, "%s", r->fatal.msg);
	return rc;
}

/* The history's figures of r, added (sign 1) or taken away (-1). */
static void add_history(struct dda_summary *s, const struct dda_result *r, int sign)
{
	uint64_t k = (uint64_t)(int64_t)sign;
	s->items += k * r->sum.items;
	s->duplicates += k * r->sum.duplicates;
	s->states += k * r->sum.states;
	for (int e = 0; e < 3; e++)
		s->events[e] += k * r->sum.events[e];
	for (int b = 0; b < DDA_CHANGE_BUCKETS; b++)
		s->items_by_events[b] += k * r->sum.items_by_events[b];
}

/* The merged table's id of an object of another run's table. */
static uint32_t same_object(const struct merge *m, const struct dda_result *r, uint32_t obj)
{
	const struct dda_object *o = obj != DDA_NO_OBJECT ? dda_objtab_get(r->objs, obj) : NULL;
	if (!o)
		return DDA_NO_OBJECT;
	for (uint32_t i = 0; i < dda_objtab_count(m->res->objs); i++) {
		const struct dda_object *x = dda_objtab_get(m->res->objs, i);
		if (!strcmp(x->key, o->key) && !x->version == !o->version &&
		    (!x->version || !strcmp(x->version, o->version)))
			return i;
	}
	return UINT32_MAX - 1; /* not in the merged table */
}

/* The split items' findings of the whole run replace those of the shards. */
static int substitute(struct merge *m, struct split *sp, struct dda_result *whole)
{
	for (size_t i = 0; i < whole->nanomalies; i++) {
		struct dda_anomaly *an = &whole->anomalies[i];
		uint32_t o = same_object(m, whole, an->obj), p = same_object(m, whole, an->prev_obj);
		if (an->key && (o == UINT32_MAX - 1 || p == UINT32_MAX - 1))
			return DDA_EFORMAT; /* read an object the shards did not list */
	}
	size_t kept = 0;
	for (size_t i = 0; i < m->all.n; i++) {
		struct dda_anomaly *an = &m->all.v[i];
		if (an->key && split_find(sp, an->key, an->key_len)) {
			dda_anomaly_release(an);
			continue;
		}
		m->all.v[kept++] = *an;
	}
	m->all.n = kept;
	for (size_t i = 0; i < whole->nanomalies; i++) {
		struct dda_anomaly an = whole->anomalies[i];
		if (!an.key)
			continue;
		an.obj = same_object(m, whole, an.obj);
		an.prev_obj = same_object(m, whole, an.prev_obj);
		memset(&whole->anomalies[i], 0, sizeof(whole->anomalies[i]));
		int rc = dda__anomaly_push(&m->all, &an);
		if (rc)
			return rc;
	}
	return 0;
}

static int recheck_split(struct merge *m, struct split *sp, struct dda_error *why)
{
	struct dda_audit_opts o;
	struct dda_result part, whole;
	struct dda_summary fig = m->res->sum;
	memset(&whole, 0, sizeof(whole));
	int rc = recheck_opts(m, &o, why);
	/* As each owner checked its split items (to take away), then as one
	 * run checks them all (to add). */
	for (uint32_t owner = 0; !rc && owner < m->mi->count; owner++) {
		bool any = false;
		for (size_t i = 0; i < sp->n; i++)
			any = any || sp->v[i].owner == owner;
		if (!any)
			continue;
		rc = recheck_run(m, &o, sp, owner, &part, why);
		if (!rc)
			add_history(&fig, &part, -1);
		dda_result_release(&part);
	}
	if (!rc)
		rc = recheck_run(m, &o, sp, UINT32_MAX, &whole, why);
	if (!rc)
		add_history(&fig, &whole, 1);
	if (!rc && (rc = substitute(m, sp, &whole)) == DDA_EFORMAT)
		dda_error_set(why, rc, "the source no longer holds what the shards listed");
	if (!rc)
		m->res->sum = fig;
	dda_result_release(&whole);
	return rc;
}

/* Items checked without a record another shard read: with the source at
 * hand, read again as one run reads them. */
static int recheck(struct merge *m)
{
	struct split sp = {0};
	struct dda_decoder_opts dec;
	struct dda_error why = {0};
	if (!m->recheck || m->res->fatal.code)
		return 0;
	int rc = 0;
	dda_decoder_opts_default(&dec);
	/* The split items' owners, by the shards' key schema. */
	struct dda_audit_opts o;
	if (recheck_opts(m, &o, &why))
		rc = why.code;
	else
		dec = o.dec;
	if (!rc)
		rc = split_collect(m, &dec, &sp);
	if (!rc && sp.n)
		rc = recheck_split(m, &sp, &why);
	split_release(&sp);
	if (rc == DDA_ENOMEM)
		return dda_error_set(m->err, rc, "out of memory");
	if (rc && m->recheck_err)
		dda_error_set(m->recheck_err, rc, "%s", why.msg[0] ? why.msg : dda_strerror(rc));
	return 0; /* the SHARD_SPLIT findings stay and say what differs */
}

/* ---- the whole ---- */

void dda_merge_info_release(struct dda_merge_info *mi)
{
	free(mi->source);
	json_decref(mi->options);
	memset(mi, 0, sizeof(*mi));
}

static int run(struct merge *m, const char *const *dirs)
{
	int rc = 0;
	for (size_t i = 0; i < m->n && !rc; i++) {
		m->s[i].dir = dirs[i];
		rc = load(m, &m->s[i]);
	}
	if (!rc)
		rc = check_set(m);
	if (!rc)
		rc = take_info(m);
	if (!rc && dda__sha256_init(&m->sha))
		rc = dda_error_set(m->err, DDA_ENOMEM, "out of memory");
	if (!rc)
		rc = merge_objects(m);
	if (!rc) {
		uint8_t d[DDA_SHA256_LEN];
		dda__sha256_final(&m->sha, d);
		dda__hex(d, sizeof(d), m->res->manifest_sha256);
		m->res->has_manifest = m->out != NULL;
	}
	if (!rc)
		rc = take_findings(m);
	for (size_t i = 0; i < m->n && !rc; i++)
		rc = add_hours(m, m->s[i].rep);
	if (!rc)
		take_figures(m);
	if (!rc)
		rc = recheck(m);
	return rc ? rc : complete(m);
}

int dda_merge_shards(const char *const *dirs, size_t n, FILE *manifest,
		     const struct dda_audit_opts *recheck, struct dda_merge_info *mi,
		     struct dda_result *res, struct dda_error *recheck_err, struct dda_error *err)
{
	struct merge m = {.n = n,
			  .res = res,
			  .mi = mi,
			  .out = manifest,
			  .err = err,
			  .recheck = recheck,
			  .recheck_err = recheck_err};
	memset(res, 0, sizeof(*res));
	memset(mi, 0, sizeof(*mi));
	if (!n || n > MAX_SHARDS)
		return dda_error_set(err, DDA_EINVAL, "merge needs the report directories of the "
						      "shards (at most %d)",
				     MAX_SHARDS);
	m.s = calloc(n, sizeof(*m.s));
	res->objs = dda_objtab_new();
	int rc = m.s && res->objs ? run(&m, dirs) : dda_error_set(err, DDA_ENOMEM, "out of memory");
	for (size_t i = 0; m.s && i < n; i++) {
		json_decref(m.s[i].rep);
		if (m.s[i].man)
			fclose(m.s[i].man);
		dda_buf_release(&m.s[i].line);
	}
	for (size_t i = 0; i < m.all.n; i++)
		dda_anomaly_release(&m.all.v[i]);
	free(m.all.v);
	free(m.hours.v);
	free(m.s);
	free(m.ords);
	free(m.named);
	dda__sha256_release(&m.sha);
	return rc;
}
