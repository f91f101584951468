/* Sharded runs (--shard K/N): which shard owns an item, and what a shard
 * keeps of what it decodes, so that the shards' reports add up to one run's
 * (docs/shards.md). */
#include "audit/audit_impl.h"

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The S or N value of attribute name in a canonical item key (an M
 * serialization, docs/canonical-form.md), as text. */
static bool key_text(const uint8_t *p, size_t n, const char *name, const uint8_t **v,
		     uint32_t *vn)
{
	size_t want = strlen(name), at = 5;
	if (n < 5 || p[0] != 0x06)
		return false;
	for (uint32_t i = 0, cnt = get_u32(p + 1); i < cnt; i++) {
		if (n - at < 4 || n - at - 4 < get_u32(p + at))
			return false;
		uint32_t nl = get_u32(p + at);
		const uint8_t *nm = p + at + 4;
		at += 4 + (size_t)nl;
		if (n - at < 5)
			return false;
		uint8_t tag = p[at];
		uint32_t len = get_u32(p + at + 1);
		if (n - at - 5 < len)
			return false;
		if (nl == want && !memcmp(nm, name, nl)) {
			*v = p + at + 5;
			*vn = len;
			return tag == 0x01 || tag == 0x02;
		}
		at += 5 + (size_t)len;
	}
	return false;
}

int dda__item_seed_name(const uint8_t *key, size_t n, const struct dda_decoder_opts *dec,
			struct dda_buf *out)
{
	const uint8_t *h, *r;
	uint32_t hn, rn;
	dda_buf_reset(out);
	if (dec->nkeys != 2 || !key_text(key, n, dec->key_names[0], &h, &hn) ||
	    !key_text(key, n, dec->key_names[1], &r, &rn))
		return 1;
	if (dda_buf_add(out, h, hn) || dda_buf_addc(out, '-') || dda_buf_add(out, r, rn) ||
	    dda_buf_adds(out, ".json"))
		return DDA_ENOMEM;
	return 0;
}

uint32_t dda_shard_of_item(const uint8_t *key, size_t n, const struct dda_decoder_opts *dec,
			   uint32_t count)
{
	if (count <= 1)
		return 0;
	/* The name the seed writer files the item under, so that an item and
	 * its objects fall into one shard. */
	struct dda_buf name;
	dda_buf_init(&name, n + 8);
	uint32_t s = dda__item_seed_name(key, n, dec, &name)
			 ? dda_shard_of_name((const char *)key, n, count)
			 : dda_shard_of_name(name.ptr, name.len, count);
	dda_buf_release(&name);
	return s;
}

/* Objects under an hour prefix are read by one shard (the source decides
 * by their names); every shard reads the others. */
static bool read_by_all(const struct dda_object *ob)
{
	return !ob || ob->hour == DDA_TIME_NONE;
}

bool dda__shard_counts(const struct dda_audit_opts *o, const struct dda_object *ob)
{
	return !o->src.shard.count || !read_by_all(ob) || o->src.shard.index == 0;
}

bool dda__shard_keeps_finding(const struct dda_audit_opts *o, const struct dda_object *ob,
			      const struct dda_anomaly *an)
{
	const struct dda_shard *sh = &o->src.shard;
	if (o->want_item && an->key && !o->want_item(o->want_item_ctx, an->key, an->key_len))
		return false;
	if (!sh->count || !read_by_all(ob))
		return true;
	if (!an->key)
		return sh->index == 0;
	return dda_shard_of_item(an->key, an->key_len, &o->dec, sh->count) == sh->index;
}

int dda__shard_record(const struct dda_audit_opts *o, const struct dda_record *r,
		      struct dda__anomaly_vec *out)
{
	const struct dda_shard *sh = &o->src.shard;
	if (o->want_item && !o->want_item(o->want_item_ctx, r->key, r->key_len))
		return 0;
	if (!sh->count)
		return 1;
	uint32_t owner = dda_shard_of_item(r->key, r->key_len, &o->dec, sh->count);
	if (owner == sh->index)
		return 1;
	if (read_by_all(r->object))
		return 0; /* the owner reads this object too */
	struct dda_buf d;
	dda_buf_init(&d, 4096);
	struct dda_anomaly an = {.kind = DDA_K_SHARD_SPLIT,
				 .severity = dda_kind_severity(DDA_K_SHARD_SPLIT),
				 .obj = r->obj,
				 .index = r->index,
				 .line = r->line,
				 .time = r->time,
				 .key = malloc(r->key_len ? r->key_len : 1),
				 .key_len = (uint32_t)r->key_len,
				 .prev_obj = DDA_NO_OBJECT};
	if (dda_buf_addf(&d,
			 "the item belongs to shard %u of %u, which never reads this object: "
			 "its history there lacks this %s, so its findings may differ from "
			 "one unsharded run's",
			 owner, sh->count, dda_event_name_str(r->event)) ||
	    !an.key) {
		free(an.key);
		dda_buf_release(&d);
		return DDA_ENOMEM;
	}
	memcpy(an.key, r->key, r->key_len);
	an.detail = dda_buf_take(&d, NULL);
	int rc = dda__anomaly_push(out, &an);
	return rc ? rc : 0;
}
