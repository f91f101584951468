/* Shards of a run (--shard K/N): which shard reads an object of the seed
 * layout, and the listing every shard shares, kept so that shards can
 * prove they listed the same objects and merge can restore one run's order. */
#include "source/source_impl.h"

/* Ordinals of objects this shard reads, in listing order, until the source
 * registers them (an S3 source lists ahead of what it has fetched). */
struct pending {
	uint64_t ord;
	char *key;
};

struct dda__shard_track {
	struct dda__sha256 sha;
	struct pending *v;
	size_t head, n, cap;
	bool ended;
};

uint32_t dda_shard_of_name(const char *name, size_t n, uint32_t count)
{
	if (count <= 1)
		return 0;
	if (n >= 3 && !memcmp(name + n - 3, ".gz", 3))
		n -= 3; /* a gzip'd object is filed under its item's name */
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)name[i]) * UINT64_C(0x100000001b3);
	h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return (uint32_t)(h % count);
}

int dda__shard_track_new(struct dda_source *s)
{
	s->shard = calloc(1, sizeof(*s->shard));
	if (!s->shard || dda__sha256_init(&s->shard->sha)) {
		free(s->shard);
		s->shard = NULL;
		return DDA_ENOMEM;
	}
	return 0;
}

void dda__shard_track_free(struct dda__shard_track *t)
{
	if (!t)
		return;
	for (size_t i = t->head; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	dda__sha256_release(&t->sha);
	free(t);
}

static int push(struct dda__shard_track *t, uint64_t ord, const char *key)
{
	if (t->head && t->head == t->n)
		t->head = t->n = 0;
	if (t->n == t->cap) {
		if (t->head) { /* reuse the room of entries already taken */
			memmove(t->v, t->v + t->head, (t->n - t->head) * sizeof(*t->v));
			t->n -= t->head;
			t->head = 0;
		}
		if (t->n == t->cap) {
			size_t cap = t->cap ? 2 * t->cap : 64;
			struct pending *nv = realloc(t->v, cap * sizeof(*nv));
			if (!nv)
				return DDA_ENOMEM;
			t->v = nv;
			t->cap = cap;
		}
	}
	char *k = strdup(key);
	if (!k)
		return DDA_ENOMEM;
	t->v[t->n++] = (struct pending){ord, k};
	return 0;
}

/* The name that decides an object's shard, or NULL for an object every
 * shard reads (no hour prefix: exports, NDJSON streams, loose files). */
static const char *owner_name(const char *key)
{
	int64_t hour;
	uint32_t off;
	return dda_key_hour(key, strlen(key), &hour, &off) ? key + off : NULL;
}

bool dda__shard_listed(struct dda_source *s, const char *key)
{
	struct dda__shard_track *t = s->shard;
	const struct dda_shard *sh = &s->opts.shard;
	uint64_t ord = ++s->facts.listed;
	dda__sha256_update(&t->sha, key, strlen(key) + 1); /* the NUL separates keys */
	const char *name = owner_name(key);
	if (name && dda_shard_of_name(name, strlen(name), sh->count) != sh->index) {
		s->facts.other_shards++;
		return false;
	}
	/* Out of memory only loses the ordinal: merge then refuses the shard. */
	(void)push(t, ord, key);
	return true;
}

uint64_t dda__shard_ordinal(struct dda_source *s, const char *key)
{
	struct dda__shard_track *t = s->shard;
	/* Entries before the one registered were listed but never became
	 * objects (an export's bookkeeping files). */
	for (size_t i = t->head; i < t->n; i++) {
		if (strcmp(t->v[i].key, key))
			continue;
		uint64_t ord = t->v[i].ord;
		for (size_t k = t->head; k <= i; k++)
			free(t->v[k].key);
		t->head = i + 1;
		return ord;
	}
	return 0;
}

void dda__shard_track_end(struct dda_source *s)
{
	struct dda__shard_track *t = s->shard;
	if (!t || t->ended)
		return;
	uint8_t d[DDA_SHA256_LEN];
	dda__sha256_final(&t->sha, d);
	dda__hex(d, sizeof(d), s->facts.listing_sha256);
	t->ended = true;
}
