/* The object table (dense ids, entries that never move), hour prefixes in
 * keys, chunks, and the shared "finish one object" step of the sources. */
#include "source/source_impl.h"

/* Pages of 4096 entries under a directory that is allocated once and never
 * moves: worker threads read entries while the reading thread adds more, so
 * nothing they can reach may be reallocated. 65536 pages hold 268 million
 * objects; the directory costs 512 KiB. */
#define PAGE_SHIFT 12
#define PAGE (1u << PAGE_SHIFT)
#define MAX_PAGES (1u << 16)

struct dda_objtab {
	struct dda_object **pages; /* MAX_PAGES slots */
	size_t npages;
	uint32_t n; /* read by other threads: accessed atomically */
	struct dda__arena strings;
};

struct dda_objtab *dda_objtab_new(void)
{
	struct dda_objtab *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pages = calloc(MAX_PAGES, sizeof(*t->pages));
	if (!t->pages) {
		free(t);
		return NULL;
	}
	dda__arena_init(&t->strings);
	return t;
}

void dda_objtab_free(struct dda_objtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->npages; i++)
		free(t->pages[i]);
	free(t->pages);
	dda__arena_release(&t->strings);
	free(t);
}

uint32_t dda_objtab_count(const struct dda_objtab *t)
{
	return __atomic_load_n(&t->n, __ATOMIC_ACQUIRE);
}

struct dda_object *dda_objtab_get(const struct dda_objtab *t, uint32_t id)
{
	if (!t || id >= dda_objtab_count(t))
		return NULL;
	return &t->pages[id >> PAGE_SHIFT][id & (PAGE - 1)];
}

static const char *copy(struct dda_objtab *t, const char *s, bool *fail)
{
	if (!s)
		return NULL;
	char *c = dda__arena_strndup(&t->strings, s, strlen(s));
	if (!c)
		*fail = true;
	return c;
}

int64_t dda_objtab_add(struct dda_objtab *t, const struct dda_object *o)
{
	if ((t->n >> PAGE_SHIFT) == MAX_PAGES)
		return DDA_ETOOBIG;
	if ((t->n >> PAGE_SHIFT) == t->npages) {
		if (!(t->pages[t->npages] = malloc(PAGE * sizeof(struct dda_object))))
			return DDA_ENOMEM;
		t->npages++;
	}
	struct dda_object *e = &t->pages[t->n >> PAGE_SHIFT][t->n & (PAGE - 1)];
	bool fail = false;
	*e = *o;
	e->key = copy(t, o->key ? o->key : "", &fail);
	e->version = copy(t, o->version, &fail);
	e->etag = copy(t, o->etag, &fail);
	if (fail)
		return DDA_ENOMEM;
	if (!dda_key_hour(e->key, strlen(e->key), &e->hour, &e->name_off)) {
		e->hour = DDA_TIME_NONE;
		e->name_off = 0;
	}
	uint32_t id = t->n;
	__atomic_store_n(&t->n, id + 1, __ATOMIC_RELEASE);
	return id;
}

/* Reads a fixed-width decimal component [p, p+n) followed by '/'. */
static int component(const char *p, const char *end, int n)
{
	int v = 0;
	if (end - p < n + 1 || p[n] != '/')
		return -1;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static bool valid_date(int y, int m, int d, int h)
{
	static const int dm[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1970 || m < 1 || m > 12 || d < 1 || h < 0 || h > 23 || d > dm[m - 1])
		return false;
	return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/* Tries "YYYY/MM/DD/HH/" at p (p is the start of a path component). */
static bool hour_at(const char *p, const char *end, int64_t *hour)
{
	int y = component(p, end, 4);
	int m = y < 0 ? -1 : component(p + 5, end, 2);
	int d = m < 0 ? -1 : component(p + 8, end, 2);
	int h = d < 0 ? -1 : component(p + 11, end, 2);
	if (h < 0 || !valid_date(y, m, d, h) || p + 14 >= end)
		return false;
	*hour = dda_time_from_civil(y, m, d, h, 0, 0) * DDA_USEC_PER_SEC;
	return true;
}

bool dda_key_hour(const char *key, size_t n, int64_t *hour, uint32_t *name_off)
{
	const char *end = key + n;
	bool found = false;
	/* Every component start; the last match wins. */
	for (const char *p = key; p < end;) {
		int64_t h;
		if (hour_at(p, end, &h)) {
			*hour = h;
			*name_off = (uint32_t)(p + 14 - key);
			found = true;
		}
		const char *slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			break;
		p = slash + 1;
	}
	return found;
}

bool dda__key_pruned(const struct dda_range *r, const char *key)
{
	int64_t hour;
	uint32_t off;
	if (!dda_key_hour(key, strlen(key), &hour, &off))
		return false;
	return !dda_range_wants(r, hour, hour + DDA_USEC_PER_HOUR);
}

void dda_chunk_init(struct dda_chunk *c)
{
	memset(c, 0, sizeof(*c));
	dda_buf_init(&c->data, 0);
}

void dda_chunk_release(struct dda_chunk *c)
{
	dda_buf_release(&c->data);
	memset(c, 0, sizeof(*c));
	dda_buf_init(&c->data, 0);
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !memcmp(s + n - m, suf, m);
}

void dda__object_finish(struct dda_chunk *c, struct dda_object *o, struct dda_buf *stored,
			size_t max, struct dda__sha256 *sha)
{
	struct dda_error err = {0};
	o->sha_valid =
	    !dda__sha256_digest(sha, stored->ptr ? stored->ptr : "", stored->len, o->sha256);
	o->size = (int64_t)stored->len;
	c->kind = DDA_CHUNK_DOC;
	c->first_line = 1;
	c->last = true;
	o->gzip = dda_is_gzip(stored->ptr, stored->len);
	if (!o->gzip && has_suffix(o->key, ".gz") && stored->len) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg), "'.gz' object is not gzip data");
		return;
	}
	if (!o->gzip) {
		/* Hand the bytes over instead of copying them. */
		c->data = *stored;
		dda_buf_init(stored, stored->max);
		return;
	}
	dda_buf_init(&c->data, max);
	int rc = dda_gunzip(stored->ptr, stored->len, &c->data, &err);
	if (rc) {
		c->status = DDA_CHUNK_UNREADABLE;
		snprintf(c->msg, sizeof(c->msg), "%.250s", err.msg);
		dda_buf_release(&c->data);
	}
}

int dda__object_bytes(struct dda_buf *stored, struct dda_buf *out, size_t max,
		      struct dda_error *err)
{
	if (dda_is_gzip(stored->ptr, stored->len)) {
		dda_buf_init(out, max);
		return dda_gunzip(stored->ptr, stored->len, out, err);
	}
	*out = *stored;
	dda_buf_init(stored, 0);
	return 0;
}
