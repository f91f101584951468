/* Two sources read as one (a baseline export, then the log): every object
 * of the first, then every object of the second, in one object table. What
 * the parts learn (notes, bucket facts, pruning counts) becomes the chain's;
 * an object is read again through the part that yielded it. */
#include "source/source_impl.h"

#include <stdlib.h>
#include <string.h>

struct chain_source {
	struct dda_source base;
	struct dda_source *part[2];
	int cur;
	uint8_t *owner; /* object id -> the part that yielded it */
	size_t owner_cap;
};

static int take_notes(struct chain_source *s, struct dda_source *p)
{
	for (size_t i = 0; i < p->nnotes; i++) {
		struct dda_source_note *n = &p->notes[i];
		int rc = dda__source_note(&s->base, n->fact, n->obj, "%s", n->detail);
		free(n->detail);
		n->detail = NULL;
		if (rc) {
			for (size_t j = i + 1; j < p->nnotes; j++)
				free(p->notes[j].detail);
			p->nnotes = 0;
			return rc;
		}
	}
	p->nnotes = 0;
	s->base.prefixes_skipped = s->part[0]->prefixes_skipped + s->part[1]->prefixes_skipped;
	s->base.objects_skipped = s->part[0]->objects_skipped + s->part[1]->objects_skipped;
	/* Where the objects live: the log's bucket, else the baseline's. */
	s->base.facts = s->part[1]->facts.s3 ? s->part[1]->facts : s->part[0]->facts;
	return 0;
}

static int note_owner(struct chain_source *s, uint32_t obj, int part)
{
	if (obj >= s->owner_cap) {
		size_t cap = s->owner_cap ? s->owner_cap : 1024;
		while (cap <= obj)
			cap *= 2;
		uint8_t *nv = realloc(s->owner, cap);
		if (!nv)
			return DDA_ENOMEM;
		memset(nv + s->owner_cap, 0, cap - s->owner_cap);
		s->owner = nv;
		s->owner_cap = cap;
	}
	s->owner[obj] = (uint8_t)part;
	return 0;
}

static int chain_next(struct dda_source *src, struct dda_chunk *c, struct dda_error *err)
{
	struct chain_source *s = (struct chain_source *)src;
	while (s->cur < 2) {
		struct dda_source *p = s->part[s->cur];
		int rc = p->ops->next(p, c, err);
		if (take_notes(s, p) && rc >= 0)
			return dda_error_set(err, DDA_ENOMEM, "out of memory");
		if (rc > 0 && note_owner(s, c->obj, s->cur))
			return dda_error_set(err, DDA_ENOMEM, "out of memory");
		if (rc)
			return rc;
		s->cur++;
	}
	return 0;
}

static int chain_reread(struct dda_source *src, uint32_t obj, struct dda_buf *out,
			struct dda_error *err)
{
	struct chain_source *s = (struct chain_source *)src;
	struct dda_source *p = s->part[obj < s->owner_cap ? s->owner[obj] : 1];
	if (!p->ops->reread)
		return dda_error_set(err, DDA_EUNSUPPORTED, "this source cannot be read again");
	return p->ops->reread(p, obj, out, err);
}

static void chain_free(struct dda_source *src)
{
	struct chain_source *s = (struct chain_source *)src;
	dda_source_free(s->part[0]);
	dda_source_free(s->part[1]);
	free(s->owner);
	free(s);
}

static const struct dda_source_ops chain_ops = {"chain", chain_next, chain_reread, chain_free};

int dda_source_open_chain(struct dda_source **out, const char *first, const char *second,
			  struct dda_objtab *objs, const struct dda_source_opts *opts,
			  struct dda_error *err)
{
	struct chain_source *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = dda_source_open(&s->part[0], first, objs, opts, err);
	if (!rc)
		rc = dda_source_open(&s->part[1], second, objs, opts, err);
	if (rc) {
		dda_source_free(s->part[0]);
		free(s);
		return rc;
	}
	s->base.ops = &chain_ops;
	s->base.objs = objs;
	s->base.opts = s->part[1]->opts;
	*out = &s->base;
	return 0;
}
