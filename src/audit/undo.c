/* restore --undo-since T for chosen keys (restore.h): each item back to its
 * state at T, on condition that the live item still is what the log says it
 * is now. The live item is read first (a consistent GetItem) and compared
 * digest against digest, which also sees attributes added behind the log's
 * back; the write then carries a condition that every attribute still has
 * the value the log says, so a change made between the read and the write
 * is refused by DynamoDB itself. */
#include "audit/restore_impl.h"
#include "ddbaudit/canon.h"

#include <stdlib.h>
#include <string.h>

static int cmp_undo(const void *pa, const void *pb)
{
	const struct dda__undo_item *a = pa, *b = pb;
	if (a->khash != b->khash)
		return a->khash < b->khash ? -1 : 1;
	int c = memcmp(a->key, b->key, DDA_MIN(a->key_len, b->key_len));
	return c ? c : a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

int dda__undo_init(struct dda__undo *u, const struct dda_restore_opts *ro)
{
	memset(u, 0, sizeof(*u));
	u->v = calloc(ro->nkeys ? ro->nkeys : 1, sizeof(*u->v));
	if (!u->v)
		return DDA_ENOMEM;
	for (size_t i = 0; i < ro->nkeys; i++) {
		struct dda__undo_item *it = &u->v[u->n++];
		it->key = ro->keys[i];
		it->key_len = ro->key_lens[i];
		it->khash = dda_history_key_hash(it->key, it->key_len);
	}
	qsort(u->v, u->n, sizeof(*u->v), cmp_undo);
	u->since = ro->undo_since;
	return 0;
}

void dda__undo_release(struct dda__undo *u)
{
	free(u->v);
	memset(u, 0, sizeof(*u));
}

/* The history's visit hook: per chosen item, its last change at or before
 * T and its last change of all. */
int dda__undo_visit(void *ctx, const struct dda_event_view *e)
{
	struct dda__undo *u = ctx;
	struct dda__undo_item probe = {.key = e->key, .key_len = e->key_len,
				       .khash = dda_history_key_hash(e->key, e->key_len)};
	struct dda__undo_item *it = bsearch(&probe, u->v, u->n, sizeof(*u->v), cmp_undo);
	if (!it || e->verdict != DDA_V_APPLIED)
		return 0;
	struct dda__undo_end *end = &it->now;
	end->seen = true;
	end->present = e->event != DDA_EV_REMOVE;
	end->obj = e->obj;
	end->index = e->index;
	end->digest_known = end->present && e->has_new;
	if (end->digest_known)
		memcpy(end->digest, e->new_digest, DDA_DIGEST_LEN);
	if (e->time <= u->since)
		it->then = *end;
	return 0;
}

static json_t *image_of(struct dda_audit_fetch *f, const struct dda__undo_end *end, int *rc)
{
	json_t *old = NULL, *img = NULL;
	*rc = end->seen && end->present ? dda_audit_fetch(f, end->obj, end->index, &old, &img) : 0;
	json_decref(old);
	if (!*rc && end->seen && end->present && !img)
		*rc = DDA_EFORMAT; /* no new image: nothing to write back */
	return img;
}

/* A condition that the item still has every attribute of img, or, for no
 * img, that it does not exist. */
static int condition(json_t *img, const char *hash_key, struct dda_ddb_cond *c)
{
	struct dda_buf expr;
	const char *name;
	json_t *av;
	size_t i = 0;
	dda_buf_init(&expr, 1 << 20);
	c->names = json_object();
	c->values = json_object();
	int rc = c->names && c->values ? 0 : DDA_ENOMEM;
	if (!img) {
		json_object_set_new(c->names, "#k", json_string(hash_key));
		rc = rc ? rc : dda_buf_adds(&expr, "attribute_not_exists(#k)");
	}
	json_object_foreach(img, name, av)
	{
		char n[32], v[32];
		snprintf(n, sizeof(n), "#a%zu", i);
		snprintf(v, sizeof(v), ":v%zu", i++);
		json_object_set_new(c->names, n, json_string(name));
		json_object_set(c->values, v, av);
		if (!rc)
			rc = dda_buf_addf(&expr, "%s%s = %s", i > 1 ? " AND " : "", n, v);
	}
	c->expression = rc ? NULL : dda_buf_take(&expr, NULL);
	dda_buf_release(&expr);
	return rc ? rc : c->expression ? 0 : DDA_ENOMEM;
}

static void cond_release(struct dda_ddb_cond *c)
{
	free((char *)c->expression);
	json_decref(c->names);
	json_decref(c->values);
}

static int say(FILE *out, const char *what, const struct dda__undo_item *it, const char *why,
	       json_t *diff)
{
	struct dda_buf text;
	dda_buf_init(&text, 1 << 20);
	int rc = dda_canon_key_text(it->key, it->key_len, &text);
	char *d = diff ? json_dumps(diff, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!rc && fprintf(out, "%s %s%s%s%s%s\n", what, text.ptr ? text.ptr : "", why ? ": " : "",
			   why ? why : "", d ? " " : "", d ? d : "") < 0)
		rc = DDA_EIO;
	free(d);
	dda_buf_release(&text);
	return rc;
}

static int undo_one(struct dda__undo *u, struct dda__undo_ctx *x, struct dda__undo_item *it)
{
	struct dda_restore_stats *st = x->st;
	int rc = 0;
	if (!it->now.seen) {
		st->refused++;
		return say(x->out, "REFUSED", it, "the log has no change of the item", NULL);
	}
	bool same = it->then.present == it->now.present &&
		    (!it->now.present || (it->then.digest_known && it->now.digest_known &&
					  !memcmp(it->then.digest, it->now.digest, DDA_DIGEST_LEN)));
	if (same) {
		st->unchanged++;
		return say(x->out, "UNCHANGED", it, "no change since the undo time", NULL);
	}
	json_t *then = image_of(x->fetch, &it->then, &rc), *now = NULL, *live = NULL;
	if (!rc)
		now = image_of(x->fetch, &it->now, &rc);
	json_t *key = rc ? NULL : dda_canon_to_json(it->key, it->key_len);
	if (!rc && !key)
		rc = DDA_ENOMEM;
	if (!rc && !x->dry_run)
		rc = dda__ddb_get(x->conn, key, true, &live, x->err);
	/* What the table holds must be what the log says the item is now. */
	bool matches = !rc && !x->dry_run;
	if (matches && (live != NULL) != (now != NULL))
		matches = false;
	if (matches && live) {
		uint8_t a[DDA_DIGEST_LEN], b[DDA_DIGEST_LEN];
		struct dda_buf why;
		dda_buf_init(&why, 4096);
		matches = !dda_canon_digest(live, "Item", a, &why) &&
			  !dda_canon_digest(now, "Item", b, &why) && !memcmp(a, b, DDA_DIGEST_LEN);
		dda_buf_release(&why);
	}
	json_t *empty = json_object();
	json_t *diff = !rc && empty ? dda_canon_diff(now ? now : empty, then ? then : empty) : NULL;
	json_decref(empty);
	if (!rc && x->dry_run) {
		st->undone++;
		rc = say(x->out, then ? "PUT" : "DELETE", it, "(dry run) back to its state then", diff);
	} else if (!rc && !matches) {
		st->refused++;
		rc = say(x->out, "REFUSED", it,
			 "the table's item is not what the log says it is now (changed since, or "
			 "behind the log): left as it is",
			 NULL);
	} else if (!rc) {
		struct dda_ddb_cond cond = {0};
		bool refused = false;
		rc = condition(now, x->hash_key, &cond);
		if (!rc)
			rc = dda__ddb_put_if(x->conn, then, then ? NULL : key, &cond, &refused, x->err);
		cond_release(&cond);
		if (!rc && refused)
			st->refused++;
		else if (!rc)
			st->undone++;
		if (!rc)
			rc = say(x->out, refused ? "REFUSED" : then ? "PUT" : "DELETE", it,
				 refused ? "changed between the read and the write: left as it is"
					 : "back to its state then",
				 refused ? NULL : diff);
	}
	json_decref(diff);
	json_decref(then);
	json_decref(now);
	json_decref(live);
	json_decref(key);
	(void)u;
	return rc;
}

int dda__undo_run(struct dda__undo *u, struct dda__undo_ctx *x)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < u->n; i++)
		rc = undo_one(u, x, &u->v[i]);
	if (rc && !x->err->code)
		dda_error_set(x->err, rc, "undo: %s", dda_strerror(rc));
	return rc;
}
