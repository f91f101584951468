/* Noise control for repeated runs: --ignore KIND and --baseline FILE. A
 * baseline names known findings (kind, item glob, object glob) with an
 * expiry and a reason; what it suppresses or what --ignore drops is counted
 * by kind in the summary, and an expired entry is a finding of its own. */
#include "audit/audit_impl.h"

#include <errno.h>
#include <fnmatch.h>

/* Kinds that say some input could not be used: ignoring them wholesale
 * would let a run that lost data look clean (docs/noise.md). */
static const int loss_kinds[] = {DDA_K_UNREADABLE, DDA_K_INVALID_RECORD, DDA_K_INVALID_VALUE,
				 DDA_K_EMPTY_RANGE, DDA_K_MISSING_HOUR};

_Static_assert(DDA_K__COUNT <= 64, "--ignore keeps one bit per kind");

struct entry {
	int kind;
	char *item, *object, *reason; /* glob, glob, text */
	int64_t expires;
	uint64_t line;
};

struct dda_baseline {
	struct entry *v; /* sorted by kind, then line */
	size_t n;
	size_t start[DDA_K__COUNT + 1]; /* entries of kind k: v[start[k] .. start[k+1]) */
	char sha256[2 * DDA_SHA256_LEN + 1];
};

bool dda_kind_means_loss(int kind)
{
	for (size_t i = 0; i < DDA_ARRAY_SIZE(loss_kinds); i++)
		if (loss_kinds[i] == kind)
			return true;
	return false;
}

/* Kinds with no item and no object of their own: a baseline entry could
 * only match every one of them, which --allow-empty, --expect-every or
 * --ignore say more plainly. */
static bool baselinable(int kind)
{
	return kind != DDA_K_EMPTY_RANGE && kind != DDA_K_MISSING_HOUR &&
	       kind != DDA_K_BASELINE_EXPIRED;
}

int dda_ignore_parse(const char *list, uint64_t *mask, struct dda_error *err)
{
	char name[64];
	for (const char *p = list;; p++) {
		size_t n = strcspn(p, ",");
		if (n >= sizeof(name))
			return dda_error_set(err, DDA_EINVAL, "unknown kind '%.*s' in --ignore",
					     (int)DDA_MIN(n, 64), p);
		memcpy(name, p, n);
		name[n] = '\0';
		int k = dda_kind_parse(name);
		if (k < 0)
			return dda_error_set(err, DDA_EINVAL,
					     "unknown kind '%s' in --ignore (see ddbaudit(1), "
					     "ANOMALIES)",
					     name);
		if (dda_kind_means_loss(k))
			return dda_error_set(err, DDA_EINVAL,
					     "--ignore %s refused: it means input that could not "
					     "be used; list the known objects in a --baseline",
					     name);
		*mask |= (uint64_t)1 << k;
		p += n;
		if (!*p)
			return 0;
	}
}

/* ---- parsing ---- */

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* A string member of e, copied; NULL with why when missing or not text. */
static int get_text(json_t *e, const char *member, bool allow_empty, char **out, char *why,
		    size_t whylen)
{
	json_t *v = json_object_get(e, member);
	if (!json_is_string(v)) {
		snprintf(why, whylen, "\"%s\" %s", member, v ? "must be a string" : "is missing");
		return DDA_EINVAL;
	}
	size_t n = json_string_length(v);
	if (n > DDA_BASELINE_MAX_FIELD || (!n && !allow_empty)) {
		snprintf(why, whylen, "\"%s\" must be %s", member,
			 n ? "at most 4096 bytes" : "non-empty");
		return DDA_EINVAL;
	}
	*out = strdup(json_string_value(v));
	return *out ? 0 : DDA_ENOMEM;
}

/* "2026-12-31" alone means the whole of that day: it expires at the next
 * midnight (UTC), which is what a person writing a date expects. */
static int get_expiry(json_t *e, int64_t *out, char *why, size_t whylen)
{
	json_t *v = json_object_get(e, "expires");
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;
	if (!s || dda_time_parse(s, n, out)) {
		snprintf(why, whylen, "\"expires\" %s",
			 !v  ? "is missing"
			 : s ? "is not a time (2026-12-31 or 2026-12-31T12:00:00Z)"
			     : "must be a string");
		return DDA_EINVAL;
	}
	/* The last time a report can write (and read back) is 9999-12-31. */
	int64_t last = dda_time_from_civil(9999, 12, 31, 23, 59, 59) * DDA_USEC_PER_SEC;
	if (n == 10)
		*out = DDA_MIN(*out + 24 * DDA_USEC_PER_HOUR, last);
	return 0;
}

static void entry_release(struct entry *e)
{
	free(e->item);
	free(e->object);
	free(e->reason);
}

static int parse_entry(json_t *j, struct entry *e, char *why, size_t whylen)
{
	static const char *const members[] = {"kind", "item", "object", "expires", "reason"};
	const char *name;
	json_t *v;
	if (!json_is_object(j)) {
		snprintf(why, whylen, "an entry is a JSON object");
		return DDA_EINVAL;
	}
	json_object_foreach(j, name, v)
	{
		size_t i = 0;
		while (i < DDA_ARRAY_SIZE(members) && strcmp(name, members[i]))
			i++;
		if (i == DDA_ARRAY_SIZE(members)) {
			snprintf(why, whylen,
				 "unknown member \"%.64s\" (kind, item, object, expires, reason)",
				 name);
			return DDA_EINVAL;
		}
	}
	const char *kind = json_string_value(json_object_get(j, "kind"));
	e->kind = kind ? dda_kind_parse(kind) : -1;
	if (!kind)
		snprintf(why, whylen, "\"kind\" is missing or not a string");
	else if (e->kind < 0)
		snprintf(why, whylen, "unknown kind '%.64s'", kind);
	else if (!baselinable(e->kind))
		snprintf(why, whylen, "%s cannot be in a baseline (it names no item or object)",
			 kind);
	if (e->kind < 0 || !baselinable(e->kind))
		return DDA_EINVAL;
	int rc = get_text(j, "item", true, &e->item, why, whylen);
	if (!rc)
		rc = get_text(j, "object", true, &e->object, why, whylen);
	if (!rc)
		rc = get_text(j, "reason", false, &e->reason, why, whylen);
	if (!rc)
		rc = get_expiry(j, &e->expires, why, whylen);
	if (!rc && dda_kind_means_loss(e->kind) && (!*e->object || has_glob(e->object))) {
		snprintf(why, whylen, "a %s entry must name one object exactly (no * ? [)", kind);
		rc = DDA_EINVAL;
	}
	return rc;
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return a->line < b->line ? -1 : a->line > b->line;
}

static int add_line(struct dda_baseline *b, const char *p, size_t n, uint64_t line, size_t *cap,
		    char *why, size_t whylen)
{
	json_error_t jerr;
	if (b->n == DDA_BASELINE_MAX_ENTRIES) {
		snprintf(why, whylen, "more than %d entries", DDA_BASELINE_MAX_ENTRIES);
		return DDA_EINVAL;
	}
	if (b->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct entry *nv = realloc(b->v, ncap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		b->v = nv;
		*cap = ncap;
	}
	/* Without JSON_ALLOW_NUL, strings hold no NUL: they are C strings. */
	json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(why, whylen, "not JSON: %s", jerr.text);
		return DDA_EINVAL;
	}
	struct entry *e = &b->v[b->n];
	memset(e, 0, sizeof(*e));
	e->line = line;
	int rc = parse_entry(j, e, why, whylen);
	json_decref(j);
	if (rc)
		entry_release(e);
	else
		b->n++;
	return rc;
}

static void index_kinds(struct dda_baseline *b)
{
	dda__sort(b->v, b->n, sizeof(*b->v), cmp_entry);
	size_t i = 0;
	for (int k = 0; k <= DDA_K__COUNT; k++) {
		while (i < b->n && b->v[i].kind < k)
			i++;
		b->start[k] = i;
	}
}

int dda_baseline_parse(const char *data, size_t len, const char *name, struct dda_baseline **out,
		       struct dda_error *err)
{
	char why[256] = "";
	uint64_t line = 0;
	size_t cap = 0;
	int rc = 0;
	struct dda_baseline *b = calloc(1, sizeof(*b));
	*out = NULL;
	if (!b)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (len > DDA_BASELINE_MAX_BYTES) {
		rc = DDA_EINVAL;
		snprintf(why, sizeof(why), "larger than %zu bytes", DDA_BASELINE_MAX_BYTES);
	}
	for (size_t pos = 0; !rc && pos < len; line++) {
		const char *p = data + pos, *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;
		pos += n + (nl != NULL);
		if (n && p[n - 1] == '\r')
			n--;
		size_t lead = 0;
		while (lead < n && (p[lead] == ' ' || p[lead] == '\t'))
			lead++;
		if (lead == n || p[lead] == '#')
			continue;
		rc = add_line(b, p, n, line + 1, &cap, why, sizeof(why));
	}
	if (rc == DDA_ENOMEM) {
		dda_baseline_free(b);
		return dda_error_set(err, rc, "out of memory reading baseline '%s'", name);
	}
	if (rc) {
		dda_baseline_free(b);
		return dda_error_set(err, DDA_EINVAL, "%s:%llu: %s", name,
				     (unsigned long long)(line ? line : 1), why);
	}
	uint8_t d[DDA_SHA256_LEN];
	dda__sha256(data, len, d);
	dda__hex(d, sizeof(d), b->sha256);
	index_kinds(b);
	*out = b;
	return 0;
}

int dda_baseline_load(const char *path, struct dda_baseline **out, struct dda_error *err)
{
	struct dda_buf text;
	dda_buf_init(&text, DDA_BASELINE_MAX_BYTES + 1);
	*out = NULL;
	int rc = dda__read_file(path, &text, err);
	if (rc == DDA_ENOTFOUND || rc == DDA_ETOOBIG) {
		char msg[DDA_ERROR_MSG_MAX];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		dda_error_clear(err);
		rc = dda_error_set(err, DDA_EINVAL, "--baseline: %s", msg);
	} else if (!rc)
		rc = dda_baseline_parse(text.ptr ? text.ptr : "", text.len, path, out, err);
	dda_buf_release(&text);
	return rc;
}

void dda_baseline_free(struct dda_baseline *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		entry_release(&b->v[i]);
	free(b->v);
	free(b);
}

size_t dda_baseline_size(const struct dda_baseline *b)
{
	return b ? b->n : 0;
}

/* ---- applying ---- */

static bool live(const struct entry *e, int64_t now)
{
	return e->expires > now;
}

/* The live entry that matches a finding, or SIZE_MAX. Items and objects
 * are matched in their text form, the one the CSV report shows. */
static size_t match(const struct dda_baseline *b, int kind, const char *item, const char *object,
		    int64_t now)
{
	for (size_t i = b->start[kind]; i < b->start[kind + 1]; i++) {
		const struct entry *e = &b->v[i];
		if (live(e, now) && !fnmatch(e->item, item, 0) && !fnmatch(e->object, object, 0))
			return i;
	}
	return SIZE_MAX;
}

static int push_expired(struct dda__anomaly_vec *all, const struct entry *e)
{
	char t[DDA_TIME_STRLEN];
	struct dda_buf d;
	dda_buf_init(&d, 1 << 16);
	int rc = dda_buf_addf(&d,
			      "baseline entry at line %llu expired at %s (%s, item '%s', object "
			      "'%s', reason: %s): what it matched is reported again",
			      (unsigned long long)e->line, dda_time_format(e->expires, false, t),
			      dda_kind_name(e->kind), e->item, e->object, e->reason);
	struct dda_anomaly an = {.kind = DDA_K_BASELINE_EXPIRED,
				 .severity = dda_kind_severity(DDA_K_BASELINE_EXPIRED),
				 .obj = DDA_NO_OBJECT,
				 .time = DDA_TIME_NONE,
				 .detail = dda_buf_take(&d, NULL),
				 .prev_obj = DDA_NO_OBJECT};
	dda_buf_release(&d);
	if (rc || !an.detail) {
		free(an.detail);
		return DDA_ENOMEM;
	}
	return dda__anomaly_push(all, &an);
}

/* True when a baseline entry matches the finding (and counts it). */
static bool suppressed(struct dda__audit_ctx *x, const struct dda_anomaly *an, uint64_t *hits,
		       struct dda_buf *item, struct dda_buf *tmp)
{
	const struct dda_baseline *b = x->o->baseline;
	if (!b || b->start[an->kind] == b->start[an->kind + 1])
		return false;
	const struct dda_object *ob =
	    an->obj != DDA_NO_OBJECT ? dda_objtab_get(x->res->objs, an->obj) : NULL;
	dda_buf_reset(item);
	if (an->key && (dda_canon_key_text(an->key, an->key_len, item) || !item->ptr))
		return false;
	size_t i = match(b, an->kind, an->key ? item->ptr : "",
			 ob ? dda__name_text(tmp, ob->key) : "", x->o->now);
	if (i == SIZE_MAX)
		return false;
	hits[i]++;
	return true;
}

static void baseline_stats(struct dda__audit_ctx *x, const uint64_t *hits)
{
	const struct dda_baseline *b = x->o->baseline;
	struct dda_baseline_stats *s = &x->res->baseline;
	s->used = true;
	memcpy(s->sha256, b->sha256, sizeof(s->sha256));
	s->entries = b->n;
	for (size_t i = 0; i < b->n; i++) {
		if (!live(&b->v[i], x->o->now))
			s->expired++;
		else if (hits[i])
			s->matched++;
		else if (s->unused++ < DDA_BASELINE_UNUSED_SHOWN)
			s->unused_lines[s->nunused_lines++] = b->v[i].line;
	}
	/* Entries are held by kind; the report lists lines in file order. */
	for (size_t i = 1; i < s->nunused_lines; i++)
		for (size_t j = i; j > 0 && s->unused_lines[j - 1] > s->unused_lines[j]; j--) {
			uint64_t t = s->unused_lines[j];
			s->unused_lines[j] = s->unused_lines[j - 1];
			s->unused_lines[j - 1] = t;
		}
}

int dda__noise_filter(struct dda__audit_ctx *x)
{
	const struct dda_baseline *b = x->o->baseline;
	struct dda__anomaly_vec *all = x->all;
	struct dda_summary *sum = &x->res->sum;
	uint64_t *hits = NULL;
	struct dda_buf item, tmp;
	int rc = 0;
	if (!b && !x->o->ignore)
		return 0;
	if (b && !(hits = calloc(b->n + 1, sizeof(*hits))))
		return DDA_ENOMEM;
	for (size_t i = 0; b && !rc && i < b->n; i++)
		if (!live(&b->v[i], x->o->now))
			rc = push_expired(all, &b->v[i]);
	dda_buf_init(&item, 1 << 20);
	dda_buf_init(&tmp, 1 << 20);
	size_t kept = 0;
	for (size_t i = 0; !rc && i < all->n; i++) {
		struct dda_anomaly *an = &all->v[i];
		bool ignored = (x->o->ignore >> an->kind) & 1;
		if (ignored || suppressed(x, an, hits, &item, &tmp)) {
			if (ignored)
				sum->ignored[an->kind]++;
			else
				sum->suppressed[an->kind]++;
			dda_anomaly_release(an);
			continue;
		}
		all->v[kept++] = *an;
	}
	if (!rc) {
		all->n = kept;
		if (b)
			baseline_stats(x, hits);
	}
	dda_buf_release(&item);
	dda_buf_release(&tmp);
	free(hits);
	return rc;
}

static struct dda_hour_stat *hour_of(struct dda_result *res, const struct dda_anomaly *an)
{
	const struct dda_object *ob =
	    an->obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, an->obj) : NULL;
	int64_t hour = ob ? ob->hour : an->kind == DDA_K_MISSING_HOUR ? an->time : DDA_TIME_NONE;
	for (size_t i = 0; hour != DDA_TIME_NONE && i < res->nhours; i++)
		if (res->hours[i].hour == hour)
			return &res->hours[i];
	return NULL;
}

size_t dda_result_suppress_kind(struct dda_result *res, int kind)
{
	size_t kept = 0, taken = 0;
	if (kind < 0 || kind >= DDA_K__COUNT)
		return 0;
	for (size_t i = 0; i < res->nanomalies; i++) {
		struct dda_anomaly *an = &res->anomalies[i];
		if (an->kind != kind) {
			res->anomalies[kept++] = *an;
			continue;
		}
		struct dda_hour_stat *h = hour_of(res, an);
		if (h && h->anomalies)
			h->anomalies--;
		if (res->sum.anomalies[an->severity])
			res->sum.anomalies[an->severity]--;
		if (res->sum.by_kind[kind])
			res->sum.by_kind[kind]--;
		res->sum.suppressed[kind]++;
		dda_anomaly_release(an);
		taken++;
	}
	res->nanomalies = kept;
	return taken;
}

int dda_result_add(struct dda_result *res, struct dda_anomaly *v, size_t n)
{
	if (!n)
		return 0;
	struct dda_anomaly *nv = realloc(res->anomalies, (res->nanomalies + n) * sizeof(*nv));
	if (!nv) {
		for (size_t i = 0; i < n; i++)
			dda_anomaly_release(&v[i]);
		return DDA_ENOMEM;
	}
	res->anomalies = nv;
	for (size_t i = 0; i < n; i++) {
		struct dda_hour_stat *h = hour_of(res, &v[i]);
		if (h)
			h->anomalies++;
		res->sum.anomalies[v[i].severity]++;
		res->sum.by_kind[v[i].kind]++;
		res->anomalies[res->nanomalies++] = v[i];
	}
	qsort(res->anomalies, res->nanomalies, sizeof(*nv), dda__anomaly_cmp);
	return 0;
}

/* ---- writing ---- */

/* A name as a glob that matches only itself. */
static int glob_escape(struct dda_buf *out, const char *s)
{
	int rc = 0;
	for (; !rc && *s; s++) {
		if (strchr("*?[\\", *s))
			rc = dda_buf_addc(out, '\\');
		if (!rc)
			rc = dda_buf_addc(out, *s);
	}
	return rc ? rc : dda_buf_adds(out, "");
}

struct lines {
	char **v;
	size_t n, cap;
};

static int lines_add(struct lines *l, const char *kind, const char *item, const char *object,
		     int64_t expires, const char *reason)
{
	char t[DDA_TIME_STRLEN];
	struct dda_buf tmp;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	dda_buf_init(&tmp, DDA_BUF_UNLIMITED);
	json_t *j = json_pack("{ssssssssso}", "kind", kind, "item", item, "object", object,
			      "expires", dda_time_format(expires, false, t), "reason",
			      json_string(dda__text_utf8(&tmp, reason)));
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	dda_buf_release(&tmp);
	if (!s)
		return DDA_ENOMEM;
	l->v[l->n++] = s;
	return 0;
}

static int cmp_str(const void *pa, const void *pb)
{
	return strcmp(*(char *const *)pa, *(char *const *)pb);
}

/* One entry for a finding of res, if a baseline can hold it. */
static int add_finding(struct lines *l, const struct dda_result *res, const struct dda_anomaly *an,
		       int64_t expires, const char *reason)
{
	struct dda_buf item, text, obj, tmp;
	const struct dda_object *ob =
	    an->obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, an->obj) : NULL;
	if (!baselinable(an->kind) || (dda_kind_means_loss(an->kind) && !ob))
		return 0;
	dda_buf_init(&item, 1 << 20);
	dda_buf_init(&text, 1 << 20);
	dda_buf_init(&obj, 1 << 20);
	dda_buf_init(&tmp, 1 << 20);
	int rc = an->key ? dda_canon_key_text(an->key, an->key_len, &text) : 0;
	if (!rc)
		rc = glob_escape(&item, text.ptr ? text.ptr : "");
	if (!rc)
		rc = glob_escape(&obj, ob ? dda__name_text(&tmp, ob->key) : "");
	if (!rc)
		rc = lines_add(l, dda_kind_name(an->kind), item.ptr, obj.ptr, expires, reason);
	dda_buf_release(&item);
	dda_buf_release(&text);
	dda_buf_release(&obj);
	dda_buf_release(&tmp);
	return rc;
}

static int write_lines(struct lines *l, int64_t now, const char *path, struct dda_error *err)
{
	char t[DDA_TIME_STRLEN];
	struct dda__afile a;
	dda__afile_init(&a);
	int rc = dda__afile_open(&a, path, err);
	FILE *f = rc ? NULL : dda__afile_stream(&a, err);
	if (!rc && !f)
		rc = DDA_EIO;
	if (!rc)
		fprintf(f,
			"# ddbaudit baseline, written %s: one known finding a line (kind, item "
			"and object globs, expiry, reason); see ddbaudit(1) --baseline\n",
			dda_time_format(now, false, t));
	for (size_t i = 0; !rc && i < l->n; i++)
		if (!i || strcmp(l->v[i], l->v[i - 1]))
			fprintf(f, "%s\n", l->v[i]);
	if (!rc)
		rc = dda__afile_commit(&a, err);
	dda__afile_discard(&a);
	return rc;
}

int dda_baseline_write(const struct dda_baseline *prev, const struct dda_result *res, int64_t now,
		       int64_t expires, const char *reason, const char *path, struct dda_error *err)
{
	struct lines l = {0};
	int rc = 0;
	for (size_t i = 0; prev && !rc && i < prev->n; i++) {
		const struct entry *e = &prev->v[i];
		if (live(e, now))
			rc = lines_add(&l, dda_kind_name(e->kind), e->item, e->object, e->expires,
				       e->reason);
	}
	for (size_t i = 0; !rc && i < res->nanomalies; i++)
		rc = add_finding(&l, res, &res->anomalies[i], expires, reason);
	if (rc)
		rc = dda_error_set(err, rc, "out of memory writing baseline '%s'", path);
	dda__sort(l.v, l.n, sizeof(*l.v), cmp_str);
	if (!rc)
		rc = write_lines(&l, now, path, err);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return rc;
}
