/* Synthetic DynamoDB Stream records, in the shape a Lambda function gets,
 * built from decoded audit records: deterministic eventID, images projected
 * by the view, SizeBytes by DynamoDB's item size rules. */
#include "replay/replay.h"

#include <string.h>

static const char *const view_names[] = {"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE",
					 "NEW_AND_OLD_IMAGES"};

int dda__view_parse(const char *s)
{
	for (size_t i = 0; i < DDA_ARRAY_SIZE(view_names); i++)
		if (!strcmp(s, view_names[i]))
			return (int)i;
	return -1;
}

const char *dda__view_name(int view)
{
	return view >= 0 && view < (int)DDA_ARRAY_SIZE(view_names) ? view_names[view] : "?";
}

/* Decimal digits of v into out (at least 21 bytes), without printf: the
 * records of a replay carry several numbers each. Returns the length. */
static size_t u64_dec(char *out, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static size_t i64_dec(char *out, int64_t v)
{
	if (v >= 0)
		return u64_dec(out, (uint64_t)v);
	out[0] = '-';
	return 1 + u64_dec(out + 1, -(uint64_t)v);
}

static int add_u64(struct dda_buf *out, uint64_t v)
{
	char b[24];
	return dda__buf_put(out, b, u64_dec(b, v));
}

/* A number's size: one byte per two significant digits, plus one. */
static uint64_t number_size_n(const char *s, size_t n)
{
	const char *p = s + (n && (*s == '-' || *s == '+')), *end = s + n;
	size_t digits = 0, zeros = 0;
	bool leading = true;
	for (; p < end && *p != 'e' && *p != 'E'; p++) {
		if (*p < '0' || *p > '9')
			continue;
		if (leading && *p == '0')
			continue;
		leading = false;
		digits++;
		zeros = *p == '0' ? zeros + 1 : 0;
	}
	digits -= zeros; /* trailing zeros are not stored either */
	return (digits + 1) / 2 + 1;
}

static uint64_t number_size(const char *s)
{
	return number_size_n(s, strlen(s));
}

/* Decoded length of base64 text. */
static uint64_t b64_size(const char *s)
{
	size_t n = strlen(s), pad = 0;
	while (n > pad && s[n - 1 - pad] == '=')
		pad++;
	return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) - (n % 4 ? 0 : pad);
}

static uint64_t value_size(const json_t *av, int depth);

static uint64_t set_size(const json_t *arr, uint64_t (*one)(const char *))
{
	uint64_t n = 0;
	size_t i;
	const json_t *v;
	json_array_foreach(arr, i, v) if (json_is_string(v)) n += one(json_string_value(v));
	return n;
}

static uint64_t str_size(const char *s)
{
	return strlen(s);
}

static uint64_t value_size(const json_t *av, int depth)
{
	const char *t;
	const json_t *v;
	if (!json_is_object(av) || depth > 64)
		return 0;
	json_object_foreach((json_t *)av, t, v)
	{
		if (!strcmp(t, "S"))
			return json_is_string(v) ? json_string_length(v) : 0;
		if (!strcmp(t, "N"))
			return json_is_string(v) ? number_size(json_string_value(v)) : 0;
		if (!strcmp(t, "B"))
			return json_is_string(v) ? b64_size(json_string_value(v)) : 0;
		if (!strcmp(t, "SS"))
			return set_size(v, str_size);
		if (!strcmp(t, "NS"))
			return set_size(v, number_size);
		if (!strcmp(t, "BS"))
			return set_size(v, b64_size);
		if (!strcmp(t, "BOOL") || !strcmp(t, "NULL"))
			return 1;
		if (!strcmp(t, "M")) {
			uint64_t n = 3;
			const char *k;
			const json_t *e;
			json_object_foreach((json_t *)v, k, e) n += 1 + strlen(k) + value_size(e, depth + 1);
			return n;
		}
		if (!strcmp(t, "L")) {
			uint64_t n = 3;
			size_t i;
			const json_t *e;
			json_array_foreach(v, i, e) n += 1 + value_size(e, depth + 1);
			return n;
		}
	}
	return 0;
}

uint64_t dda__item_size(const json_t *map)
{
	uint64_t n = 0;
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)map, k, v) n += strlen(k) + value_size(v, 0);
	return n;
}

/* The same object and position always give the same ID, so a target can
 * de-duplicate a replay that was resumed or run again: SHA-256 of
 * "KEY\0VERSION\0INDEX" (or "#OBJ\0INDEX"), hashed piecewise so that no
 * buffer can fail, its first 16 bytes in hex. */
#define DDA_EVENT_ID_MAX 129
static int event_id_with(struct dda__eid_hash *c, const struct dda_object *ob, uint32_t obj,
			 uint32_t index, char out[DDA_EVENT_ID_LEN + 1])
{
	uint8_t d[32];
	char num[48];
	/* An object's records come together: its part is hashed once. */
	if (!c->pre_ok || c->ob != ob || c->obj != obj) {
		c->pre_ok = false;
		if (dda__sha256_init(&c->pre))
			return DDA_EINTERNAL;
		if (ob) {
			const char *v = ob->version ? ob->version : "";
			dda__sha256_update(&c->pre, ob->key, strlen(ob->key) + 1);
			dda__sha256_update(&c->pre, v, strlen(v) + 1);
		} else {
			num[0] = '#';
			num[1 + u64_dec(num + 1, obj)] = '\0';
			dda__sha256_update(&c->pre, num, strlen(num) + 1);
		}
		c->ob = ob;
		c->obj = obj;
		c->pre_ok = true;
	}
	if (dda__sha256_copy(&c->h, &c->pre))
		return DDA_EINTERNAL;
	dda__sha256_update(&c->h, num, u64_dec(num, index));
	dda__sha256_final(&c->h, d);
	dda__hex(d, DDA_EVENT_ID_LEN / 2, out);
	return 0;
}

void dda__eid_hash_release(struct dda__eid_hash *c)
{
	dda__sha256_release(&c->h);
	dda__sha256_release(&c->pre);
	memset(c, 0, sizeof(*c));
}

static void event_id(const struct dda_object *ob, uint32_t obj, uint32_t index,
		     char out[DDA_EVENT_ID_MAX])
{
	struct dda__eid_hash c = {0};
	if (event_id_with(&c, ob, obj, index, out))
		snprintf(out, DDA_EVENT_ID_MAX, "%u-%u", obj, index);
	dda__eid_hash_release(&c);
}

/* Keys: the key attributes with their values as the image tree wrote them
 * (the canonical key normalizes numbers); without image trees, the
 * canonical key itself, numbers as DynamoDB stores them. */
json_t *dda__synth_keys(const struct dda_record *r)
{
	json_t *keys = dda_canon_to_json(r->key, r->key_len);
	const json_t *img = r->new_image ? r->new_image : r->old_image;
	const char *name;
	json_t *v;
	if (!keys || !img)
		return keys;
	json_object_foreach(keys, name, v)
	{
		json_t *orig = json_object_get(img, name);
		if (orig)
			json_object_set(keys, name, orig);
	}
	return keys;
}

/* The region the change happened in is the record's own (the writer keeps
 * awsRegion); --region says where ddbaudit reads and sends, not where the
 * table lives, so it only stands in for records that carry none (an empty
 * slice here). A raw record's region is not NUL-terminated; text stops at
 * a NUL as a C string would. */
static dda_slice record_region(const struct dda_record *r)
{
	const char *reg = json_string_value(json_object_get(r->raw, "awsRegion"));
	if (reg)
		return dda_slice_make(reg, strlen(reg));
	if (r->region && r->region_len && r->region_len < 64)
		return dda_slice_make(r->region, strnlen(r->region, r->region_len));
	return dda_slice_make("", 0);
}

static void source_arn(const struct dda_synth_opts *o, dda_slice region, char *arn, size_t cap)
{
	if (o->stream_arn)
		snprintf(arn, cap, "%s", o->stream_arn);
	else
		snprintf(arn, cap, "arn:aws:dynamodb:%.*s:000000000000:table/%s/stream/replay",
			 (int)DDA_MIN(region.len, cap), region.ptr, o->table ? o->table : "replay");
}

static int write_string(struct dda_buf *out, const char *s, size_t n);

/* The eventSourceARN as a JSON string, and the awsRegion's, for the last
 * options and region a thread synthesized for (a run's records nearly all
 * share one region): building them is several times the rest of a record's
 * fixed parts. The strings the options point to do not change while their
 * records are synthesized. */
#define ARN_MAX 1024
#define ARN_REGION_MAX 128
struct arn_cache {
	const struct dda_synth_opts *o;
	const char *stream_arn, *table, *def;
	char region[ARN_REGION_MAX];
	size_t region_len;
	char arn[6 * ARN_MAX + 2], reg[6 * ARN_REGION_MAX + 2]; /* written, escaped */
	size_t arn_len, reg_len;
};
static _Thread_local struct arn_cache arn_tl;

/* The cache for o and region (in->region, or the default), or NULL when
 * the region is too long to cache (the caller builds them itself). */
static const struct arn_cache *arn_for(const struct dda_synth_opts *o, dda_slice in_region)
{
	const char *def = o->region && *o->region ? o->region : "us-east-1";
	dda_slice region = in_region.len ? in_region : dda_slice_make(def, strlen(def));
	struct arn_cache *c = &arn_tl;
	if (region.len > ARN_REGION_MAX)
		return NULL;
	if (c->o == o && c->stream_arn == o->stream_arn && c->table == o->table && c->def == def &&
	    c->region_len == region.len && !memcmp(c->region, region.ptr, region.len))
		return c;
	char arn[ARN_MAX];
	struct dda_buf b;
	c->o = NULL;
	source_arn(o, region, arn, sizeof(arn));
	dda_buf_init(&b, DDA_BUF_UNLIMITED);
	int rc = write_string(&b, arn, strlen(arn));
	if (!rc && b.len <= sizeof(c->arn)) {
		memcpy(c->arn, b.ptr, b.len);
		c->arn_len = b.len;
		dda_buf_reset(&b);
		rc = write_string(&b, region.ptr, region.len);
	} else {
		rc = DDA_ENOMEM;
	}
	if (!rc && b.len <= sizeof(c->reg)) {
		memcpy(c->reg, b.ptr, b.len);
		c->reg_len = b.len;
		memcpy(c->region, region.ptr, region.len);
		c->region_len = region.len;
		c->o = o;
		c->stream_arn = o->stream_arn;
		c->table = o->table;
		c->def = def;
	}
	dda_buf_release(&b);
	return c->o ? c : NULL;
}

/* Appends a string literal without measuring it each time. */
#define ADD_LIT(b, lit) dda__buf_put((b), "" lit, sizeof(lit) - 1)

/* ---- a compact JSON writer, several times faster than json_dumps on
 * stream records; the same bytes as json_dumps(JSON_COMPACT) ---- */

static int write_string(struct dda_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF"; /* as jansson writes \u00XX */
	int rc = dda__buf_putc(out, '"');
	size_t run = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		rc = dda__buf_put(out, s + run, i - run);
		run = i + 1;
		const char *esc = c == '"'    ? "\\\""
				  : c == '\\' ? "\\\\"
				  : c == '\n' ? "\\n"
				  : c == '\r' ? "\\r"
				  : c == '\t' ? "\\t"
				  : c == '\b' ? "\\b"
				  : c == '\f' ? "\\f"
					      : NULL;
		if (!rc && esc)
			rc = dda_buf_adds(out, esc);
		else if (!rc) {
			char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
			rc = dda_buf_adds(out, u);
		}
	}
	if (!rc)
		rc = dda__buf_put(out, s + run, n - run);
	return rc ? rc : dda__buf_putc(out, '"');
}

int dda__json_write(struct dda_buf *out, const json_t *v, int depth)
{
	const char *k;
	json_t *e;
	size_t i;
	int rc = 0;
	if (depth > 2048)
		return DDA_EINVAL;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		rc = dda__buf_putc(out, '{');
		i = 0;
		json_object_foreach((json_t *)v, k, e)
		{
			if (!rc && i++)
				rc = dda__buf_putc(out, ',');
			if (!rc)
				rc = write_string(out, k, strlen(k));
			if (!rc)
				rc = dda__buf_putc(out, ':');
			if (!rc)
				rc = dda__json_write(out, e, depth + 1);
		}
		return rc ? rc : dda__buf_putc(out, '}');
	case JSON_ARRAY:
		rc = dda__buf_putc(out, '[');
		json_array_foreach(v, i, e)
		{
			if (!rc && i)
				rc = dda__buf_putc(out, ',');
			if (!rc)
				rc = dda__json_write(out, e, depth + 1);
		}
		return rc ? rc : dda__buf_putc(out, ']');
	case JSON_STRING:
		return write_string(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return dda_buf_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_TRUE:
		return ADD_LIT(out, "true");
	case JSON_FALSE:
		return ADD_LIT(out, "false");
	case JSON_NULL:
		return ADD_LIT(out, "null");
	default: { /* JSON_REAL: rare in stream records; jansson's own form */
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		rc = s ? dda_buf_adds(out, s) : DDA_ENOMEM;
		free(s);
		return rc;
	}
	}
}

/* Raw JSON text (valid: the decoder checked it) without the whitespace
 * between tokens, written straight into room made for all of it. A byte
 * at a time: strings in images are short, and word-at-a-time scanning
 * measured slower on them. */
int dda__json_compact(struct dda_buf *out, const char *p, size_t n)
{
	if (dda_buf_grow(out, n))
		return DDA_ENOMEM;
	char *d = out->ptr + out->len;
	const char *s = p, *end = p + n;
	while (s < end) {
		char c = *s++;
		if (c == '"') {
			*d++ = c;
			while (s < end) {
				c = *s++;
				*d++ = c;
				if (c == '\\' && s < end)
					*d++ = *s++;
				else if (c == '"')
					break;
			}
		} else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
			*d++ = c;
		}
	}
	out->len = (size_t)(d - out->ptr);
	out->ptr[out->len] = '\0';
	return 0;
}

/* ---- Keys straight from the canonical key ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends Keys rendered from the canonical key k[0..n): the bytes
 * dda__json_write writes of dda_canon_to_json's tree (names in canonical
 * order, numbers canonical, binary base64), without building the tree.
 * *size is their item size; [*pk_at, *pk_end) in out is what the lane hash
 * is taken of: hash_key's value, or the whole Keys object (as jansson would
 * dump it sorted, which is canonical order). 1 when the key is not one this
 * renders (anything but S, N, B, a name with a NUL, text that is not
 * UTF-8): the caller takes the tree path, which decides. */
static int keys_from_canon(const uint8_t *k, size_t n, const char *hash_key,
			   struct dda_buf *out, uint64_t *size, size_t *pk_at, size_t *pk_end)
{
	static const char *const types[] = {[DDA_TAG_S] = "{\"S\":", [DDA_TAG_N] = "{\"N\":",
					    [DDA_TAG_B] = "{\"B\":"};
	size_t start = out->len, at = 5, hk = hash_key ? strlen(hash_key) : 0;
	bool pk = false;
	if (n < 5 || k[0] != DDA_TAG_M)
		return 1;
	uint32_t count = be32(k + 1);
	*size = 0;
	int rc = dda__buf_putc(out, '{');
	for (uint32_t i = 0; i < count && !rc; i++) {
		if (n - at < 4 || be32(k + at) > n - at - 4)
			return 1;
		const char *name = (const char *)k + at + 4;
		size_t nlen = be32(k + at);
		at += 4 + nlen;
		if (n - at < 5 || memchr(name, '\0', nlen) || !dda__utf8_valid(name, nlen))
			return 1;
		uint8_t tag = k[at];
		size_t vlen = be32(k + at + 1);
		const char *val = (const char *)k + at + 5;
		if ((tag != DDA_TAG_S && tag != DDA_TAG_N && tag != DDA_TAG_B) || vlen > n - at - 5 ||
		    (tag == DDA_TAG_S && !dda__utf8_valid(val, vlen)))
			return 1;
		at += 5 + vlen;
		if (i)
			rc = dda__buf_putc(out, ',');
		if (!rc)
			rc = write_string(out, name, nlen);
		if (!rc)
			rc = dda__buf_putc(out, ':');
		bool is_pk = hash_key && nlen == hk && !memcmp(name, hash_key, hk);
		if (is_pk)
			*pk_at = out->len;
		if (!rc)
			rc = dda_buf_adds(out, types[tag]);
		*size += nlen;
		if (!rc && tag == DDA_TAG_B) {
			struct dda_buf enc;
			dda_buf_init(&enc, DDA_BUF_UNLIMITED);
			rc = dda_base64_encode(val, vlen, &enc);
			if (!rc)
				rc = write_string(out, enc.ptr ? enc.ptr : "", enc.len);
			dda_buf_release(&enc);
			*size += vlen;
		} else if (!rc) {
			rc = write_string(out, val, vlen);
			*size += tag == DDA_TAG_S ? vlen : 0;
		}
		if (!rc && tag == DDA_TAG_N)
			*size += number_size_n(val, vlen);
		if (!rc)
			rc = dda__buf_putc(out, '}');
		if (is_pk) {
			*pk_end = out->len;
			pk = true;
		}
	}
	if (at != n)
		return 1;
	if (!pk) {
		*pk_at = start;
		*pk_end = out->len + 1;
	}
	return rc ? rc : dda__buf_putc(out, '}');
}

/* ---- what a record is made from, and the record itself ---- */

/* The serialized form: flags, the event, then varints (the change time
 * in whole seconds, all a record shows of it, zigzagged; SizeBytes; the
 * five lengths), then the five strings. It never leaves the process. */
enum { IN_NEW = 1, IN_OLD = 2, IN_TTL = 4, IN_OWN_ID = 8, IN_TIME = 16 };
#define IN_VARINT_MAX 10

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static bool get_varint(const char *p, size_t n, size_t *at, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *at < n; shift += 7) {
		uint8_t b = (uint8_t)p[(*at)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

static int add_image(struct dda_buf *out, const json_t *img, const char *raw, size_t n,
		     bool compact)
{
	if (!raw)
		return dda__json_write(out, img, 0);
	return compact ? dda__buf_put(out, raw, n) : dda__json_compact(out, raw, n);
}

/* The lane hash: of the partition key's value (hash_key), or of all the
 * Keys, as compact JSON with sorted names. */
static uint64_t partition_hash(const struct dda_synth_opts *o, const json_t *keys)
{
	const json_t *pk = o->hash_key ? json_object_get(keys, o->hash_key) : NULL;
	char *s = json_dumps(pk ? pk : keys, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	uint64_t h = s ? dda__hash64(s, strlen(s)) : 0;
	free(s);
	return h;
}

/* Appends Keys (keys, or rendered from the record: straight from its
 * canonical key when it carries no image trees, else through jansson),
 * with their item size and the lane hash. */
static int in_keys(const struct dda_synth_opts *o, const struct dda_record *r, const json_t *keys,
		   struct dda_buf *out, uint64_t *size, uint64_t *part)
{
	size_t at = out->len, pk_at = 0, pk_end = 0;
	if (!keys && !r->new_image && !r->old_image) {
		int rc = keys_from_canon(r->key, r->key_len, o->hash_key, out, size, &pk_at, &pk_end);
		if (rc != 1) {
			*part = rc ? 0 : dda__hash64(out->ptr + pk_at, pk_end - pk_at);
			return rc;
		}
		out->len = at; /* the tree decides */
	}
	json_t *own = keys ? NULL : dda__synth_keys(r);
	const json_t *k = keys ? keys : own;
	int rc = k ? dda__json_write(out, k, 0) : DDA_ENOMEM;
	if (!rc) {
		*size = dda__item_size(k);
		*part = partition_hash(o, k);
	}
	json_decref(own);
	return rc;
}

/* The strings after the header: their lengths go into the header. */
static int in_strings(struct dda_buf *out, const struct dda_synth_opts *o,
		      const struct dda_record *r, const json_t *keys, dda_slice eid,
		      dda_slice region, bool has_new, bool has_old, size_t len[5], uint64_t *size,
		      uint64_t *part)
{
	size_t from = out->len;
	int rc = dda__buf_put(out, eid.ptr, eid.len);
	len[0] = out->len - from;
	if (!rc)
		rc = dda__buf_put(out, region.ptr, region.len);
	len[1] = out->len - from - len[0];
	if (!rc)
		rc = in_keys(o, r, keys, out, size, part);
	len[2] = out->len - from - len[0] - len[1];
	if (!rc && has_new)
		rc = add_image(out, r->new_image, r->new_raw, r->new_raw_len, r->new_raw_compact);
	len[3] = out->len - from - len[0] - len[1] - len[2];
	if (!rc && has_old)
		rc = add_image(out, r->old_image, r->old_raw, r->old_raw_len, r->old_raw_compact);
	len[4] = out->len - from - len[0] - len[1] - len[2] - len[3];
	return rc;
}

int dda__synth_in_write(const struct dda_synth_opts *o, const struct dda_record *r,
			const json_t *keys, struct dda_buf *out, uint64_t *part)
{
	bool want_new = o->view == DDA_VIEW_NEW_IMAGE || o->view == DDA_VIEW_NEW_AND_OLD;
	bool want_old = o->view == DDA_VIEW_OLD_IMAGE || o->view == DDA_VIEW_NEW_AND_OLD;
	bool has_new = want_new && r->has_new && (r->new_raw || r->new_image);
	bool has_old = want_old && r->has_old && (r->old_raw || r->old_image);
	/* A stream record (a DLQ being re-driven) keeps its identity. */
	bool own_id = r->event_id && r->event_id_len && r->event_id_len < DDA_EVENT_ID_MAX;
	dda_slice eid = own_id ? dda_slice_make(r->event_id, strnlen(r->event_id, r->event_id_len))
			       : dda_slice_make("", 0);
	dda_slice region = record_region(r);
	bool timed = r->time != DDA_TIME_NONE;
	int64_t secs = timed ? r->time / DDA_USEC_PER_SEC : 0;
	uint8_t head[2 + 7 * IN_VARINT_MAX];
	head[0] = (uint8_t)((has_new ? IN_NEW : 0) | (has_old ? IN_OLD : 0) |
			    (r->ttl ? IN_TTL : 0) | (own_id ? IN_OWN_ID : 0) |
			    (timed ? IN_TIME : 0));
	head[1] = (uint8_t)r->event;
	size_t hn = 2, len[5];
	uint64_t size = 0, part_local;
	hn += put_varint(head + hn, ((uint64_t)secs << 1) ^ (uint64_t)(secs >> 63));
	/* The strings go to a scratch place first, for their lengths. */
	size_t at = out->len;
	int rc = in_strings(out, o, r, keys, eid, region, has_new, has_old, len, &size,
			    part ? part : &part_local);
	size_t slen = out->len - at;
	if (has_new)
		size += r->new_raw ? r->new_size : dda__item_size(r->new_image);
	if (has_old)
		size += r->old_raw ? r->old_size : dda__item_size(r->old_image);
	hn += put_varint(head + hn, size);
	for (int i = 0; !rc && i < 5; i++)
		hn += put_varint(head + hn, len[i]);
	/* Header before the strings: move them up by its size. */
	if (!rc)
		rc = dda_buf_grow(out, hn);
	if (rc)
		return rc;
	memmove(out->ptr + at + hn, out->ptr + at, slen);
	memcpy(out->ptr + at, head, hn);
	out->len += hn;
	out->ptr[out->len] = '\0';
	return 0;
}

int dda__synth_in_read(struct dda_synth_in *in, const char *p, size_t n, size_t *used)
{
	uint64_t secs, len[5];
	size_t at = 2;
	if (n < 2)
		return DDA_EFORMAT;
	memset(in, 0, sizeof(*in));
	in->has_new = p[0] & IN_NEW;
	in->has_old = p[0] & IN_OLD;
	in->ttl = p[0] & IN_TTL;
	in->own_id = p[0] & IN_OWN_ID;
	in->event = (uint8_t)p[1];
	if (!get_varint(p, n, &at, &secs) || !get_varint(p, n, &at, &in->size))
		return DDA_EFORMAT;
	int64_t s = (int64_t)(secs >> 1) ^ -(int64_t)(secs & 1);
	in->time = p[0] & IN_TIME ? s * DDA_USEC_PER_SEC : DDA_TIME_NONE;
	for (int i = 0; i < 5; i++)
		if (!get_varint(p, n, &at, &len[i]))
			return DDA_EFORMAT;
	dda_slice *s5[5] = {&in->event_id, &in->region, &in->keys, &in->new_image, &in->old_image};
	for (int i = 0; i < 5; i++) {
		if (len[i] > n - at)
			return DDA_EFORMAT;
		*s5[i] = dda_slice_make(p + at, (size_t)len[i]);
		at += (size_t)len[i];
	}
	*used = at;
	return 0;
}

/* The "replay" marker up to its index, as json_pack would build it and
 * dda__json_write write it: a name that is not UTF-8 cannot be a JSON
 * string there, and fails the record as it did there. */
static int marker_head(struct dda_buf *out, const struct dda_synth_opts *o,
		       const struct dda_object *ob)
{
	const char *key = ob ? ob->key : "";
	const char *ver = ob ? ob->version : NULL, *etag = ob ? ob->etag : NULL;
	if (!dda__utf8_valid(key, strlen(key)) || (ver && !dda__utf8_valid(ver, strlen(ver))) ||
	    (etag && !dda__utf8_valid(etag, strlen(etag))))
		return DDA_ENOMEM;
	int rc = ADD_LIT(out, ",\"replay\":{\"runId\":");
	if (!rc)
		rc = write_string(out, o->run_id, strlen(o->run_id));
	if (!rc)
		rc = ADD_LIT(out, ",\"object\":{\"key\":");
	if (!rc)
		rc = write_string(out, key, strlen(key));
	if (!rc)
		rc = ADD_LIT(out, ",\"versionId\":");
	if (!rc)
		rc = ver ? write_string(out, ver, strlen(ver)) : ADD_LIT(out, "null");
	if (!rc)
		rc = ADD_LIT(out, ",\"etag\":");
	if (!rc)
		rc = etag ? write_string(out, etag, strlen(etag)) : ADD_LIT(out, "null");
	return rc ? rc : ADD_LIT(out, "},\"index\":");
}

/* The marker's head for the last object a thread wrote one for (an
 * object's records come together): the same for all of them. */
#define MARK_NAME_MAX 1024
struct marker_cache {
	const struct dda_synth_opts *o;
	char run_id[sizeof(((struct dda_synth_opts *)0)->run_id)];
	char key[MARK_NAME_MAX], ver[MARK_NAME_MAX], etag[MARK_NAME_MAX];
	bool has_ob, has_ver, has_etag;
	int rc; /* marker_head's */
	char text[6 * 3 * MARK_NAME_MAX + 256];
	size_t len;
};
static _Thread_local struct marker_cache mark_tl;

static bool same_name(const char *cached, bool has, const char *s)
{
	return s ? has && !strcmp(cached, s) : !has;
}

static bool keep_name(char *dst, bool *has, const char *s)
{
	*has = s != NULL;
	if (s && strlen(s) >= MARK_NAME_MAX)
		return false;
	snprintf(dst, MARK_NAME_MAX, "%s", s ? s : "");
	return true;
}

/* The cached head for o and ob, or NULL when it cannot be cached (names
 * too long): the caller writes it itself. */
static const struct marker_cache *marker_for(const struct dda_synth_opts *o,
					     const struct dda_object *ob)
{
	struct marker_cache *c = &mark_tl;
	const char *key = ob ? ob->key : NULL;
	if (c->o == o && !strcmp(c->run_id, o->run_id) && same_name(c->key, c->has_ob, key) &&
	    same_name(c->ver, c->has_ver, ob ? ob->version : NULL) &&
	    same_name(c->etag, c->has_etag, ob ? ob->etag : NULL))
		return c;
	c->o = NULL;
	if (!keep_name(c->key, &c->has_ob, key) ||
	    !keep_name(c->ver, &c->has_ver, ob ? ob->version : NULL) ||
	    !keep_name(c->etag, &c->has_etag, ob ? ob->etag : NULL))
		return NULL;
	struct dda_buf b;
	dda_buf_init(&b, sizeof(c->text));
	c->rc = marker_head(&b, o, ob);
	if (c->rc == DDA_ETOOBIG) {
		dda_buf_release(&b);
		return NULL;
	}
	memcpy(c->text, b.ptr ? b.ptr : "", b.len);
	c->len = c->rc ? 0 : b.len;
	dda_buf_release(&b);
	memcpy(c->run_id, o->run_id, sizeof(c->run_id));
	c->o = o;
	return c;
}

static int write_marker(struct dda_buf *out, const struct dda_synth_opts *o,
			const struct dda_object *ob, uint32_t index)
{
	const struct marker_cache *c = marker_for(o, ob);
	int rc = c ? c->rc : marker_head(out, o, ob);
	if (!rc && c)
		rc = dda__buf_put(out, c->text, c->len);
	if (!rc)
		rc = add_u64(out, index);
	return rc ? rc : dda__buf_putc(out, '}');
}

int dda__synth_emit(const struct dda_synth_opts *o, const struct dda_object *ob, uint32_t obj,
		    uint32_t index, const struct dda_synth_in *in, struct dda__eid_hash *h,
		    struct dda_buf *out, size_t *seq_at)
{
	char id[DDA_EVENT_ID_MAX + 2], num[24];
	const struct arn_cache *c = arn_for(o, in->region);
	int rc = ADD_LIT(out, "{\"eventID\":");
	if (!rc && in->own_id) {
		rc = write_string(out, in->event_id.ptr, in->event_id.len);
	} else if (!rc) {
		/* Between quotes, with nothing to escape: hex, or two numbers. */
		id[0] = '"';
		if (!h || event_id_with(h, ob, obj, index, id + 1))
			event_id(ob, obj, index, id + 1);
		size_t n = 1 + strlen(id + 1);
		id[n++] = '"';
		rc = dda__buf_put(out, id, n);
	}
	if (!rc)
		rc = ADD_LIT(out, ",\"eventName\":\"");
	if (!rc)
		rc = dda_buf_adds(out, dda_event_name_str(in->event));
	if (!rc)
		rc = ADD_LIT(out, "\",\"eventVersion\":\"1.1\",\"eventSource\":"
				       "\"aws:dynamodb\",\"awsRegion\":");
	if (!rc && c) {
		rc = dda__buf_put(out, c->reg, c->reg_len);
	} else if (!rc) {
		const char *def = o->region && *o->region ? o->region : "us-east-1";
		dda_slice region = in->region.len ? in->region : dda_slice_make(def, strlen(def));
		rc = write_string(out, region.ptr, region.len);
	}
	/* A stream record without a time (Lambda's own example events have
	 * none) is sent without one, as it came, rather than with a made-up
	 * one. */
	if (!rc && in->time != DDA_TIME_NONE) {
		rc = ADD_LIT(out, ",\"dynamodb\":{\"ApproximateCreationDateTime\":");
		if (!rc)
			rc = dda__buf_put(out, num, i64_dec(num, in->time / DDA_USEC_PER_SEC));
		if (!rc)
			rc = ADD_LIT(out, ",\"Keys\":");
	} else if (!rc) {
		rc = ADD_LIT(out, ",\"dynamodb\":{\"Keys\":");
	}
	if (!rc)
		rc = dda__buf_put(out, in->keys.ptr, in->keys.len);
	if (!rc && in->has_new)
		rc = ADD_LIT(out, ",\"NewImage\":");
	if (!rc && in->has_new)
		rc = dda__buf_put(out, in->new_image.ptr, in->new_image.len);
	if (!rc && in->has_old)
		rc = ADD_LIT(out, ",\"OldImage\":");
	if (!rc && in->has_old)
		rc = dda__buf_put(out, in->old_image.ptr, in->old_image.len);
	if (!rc)
		rc = ADD_LIT(out, ",\"SequenceNumber\":\"");
	*seq_at = out->len;
	if (!rc)
		rc = ADD_LIT(out, "000000000000000000000\",\"SizeBytes\":");
	if (!rc)
		rc = add_u64(out, in->size);
	if (!rc)
		rc = ADD_LIT(out, ",\"StreamViewType\":\"");
	if (!rc)
		rc = dda_buf_adds(out, dda__view_name(o->view));
	if (!rc)
		rc = ADD_LIT(out, "\"},\"eventSourceARN\":");
	if (!rc && c) {
		rc = dda__buf_put(out, c->arn, c->arn_len);
	} else if (!rc) {
		char arn[ARN_MAX];
		const char *def = o->region && *o->region ? o->region : "us-east-1";
		source_arn(o, in->region.len ? in->region : dda_slice_make(def, strlen(def)), arn,
			   sizeof(arn));
		rc = write_string(out, arn, strlen(arn));
	}
	if (!rc && in->ttl)
		rc = ADD_LIT(out, ",\"userIdentity\":{\"type\":\"Service\",\"principalId\":"
				       "\"dynamodb.amazonaws.com\"}");
	if (!rc && o->marker)
		rc = write_marker(out, o, ob, index);
	return rc ? rc : dda__buf_putc(out, '}');
}

int dda__synth_write(const struct dda_synth_opts *o, const struct dda_record *r,
		     const json_t *keys, struct dda_buf *out, size_t *seq_at)
{
	struct dda_buf tmp;
	struct dda_synth_in in;
	size_t used;
	dda_buf_init(&tmp, out->max);
	int rc = dda__synth_in_write(o, r, keys, &tmp, NULL);
	if (!rc)
		rc = dda__synth_in_read(&in, tmp.ptr, tmp.len, &used);
	if (!rc)
		rc = dda__synth_emit(o, r->object, r->obj, r->index, &in, NULL, out, seq_at);
	dda_buf_release(&tmp);
	return rc;
}

/* ---- the length of a record, without writing it ---- */

/* Bytes write_string writes for s[0..n). */
static size_t string_len(const char *s, size_t n)
{
	size_t len = 2 + n;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		bool short_esc = c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' ||
				 c == '\b' || c == '\f';
		len += short_esc ? 1 : 5;
	}
	return len;
}

static size_t cstring_len(const char *s)
{
	return string_len(s, strlen(s));
}

static size_t digits(int64_t v)
{
	char b[24];
	return i64_dec(b, v);
}

static size_t udigits(uint64_t v)
{
	char b[24];
	return u64_dec(b, v);
}

#define LIT(s) (sizeof(s) - 1)

int dda__synth_len(const struct dda_synth_opts *o, const struct dda_object *ob, uint32_t index,
		   const struct dda_synth_in *in, size_t *len, size_t *seq_at)
{
	char arn[ARN_MAX];
	const char *def = o->region && *o->region ? o->region : "us-east-1";
	dda_slice region = in->region.len ? in->region : dda_slice_make(def, strlen(def));
	const struct arn_cache *c = arn_for(o, in->region);
	if (!c)
		source_arn(o, region, arn, sizeof(arn));
	size_t n = LIT("{\"eventID\":");
	n += in->own_id ? string_len(in->event_id.ptr, in->event_id.len) : 2 + DDA_EVENT_ID_LEN;
	n += LIT(",\"eventName\":\"\",\"eventVersion\":\"1.1\",\"eventSource\":"
		 "\"aws:dynamodb\",\"awsRegion\":") +
	     strlen(dda_event_name_str(in->event));
	n += c ? c->reg_len : string_len(region.ptr, region.len);
	if (in->time != DDA_TIME_NONE)
		n += LIT(",\"dynamodb\":{\"ApproximateCreationDateTime\":,\"Keys\":") +
		     digits(in->time / DDA_USEC_PER_SEC);
	else
		n += LIT(",\"dynamodb\":{\"Keys\":");
	n += in->keys.len;
	if (in->has_new)
		n += LIT(",\"NewImage\":") + in->new_image.len;
	if (in->has_old)
		n += LIT(",\"OldImage\":") + in->old_image.len;
	n += LIT(",\"SequenceNumber\":\"");
	*seq_at = n;
	n += LIT("000000000000000000000\",\"SizeBytes\":,\"StreamViewType\":\"\"},"
		 "\"eventSourceARN\":") +
	     udigits(in->size) + strlen(dda__view_name(o->view));
	n += c ? c->arn_len : cstring_len(arn);
	if (in->ttl)
		n += LIT(",\"userIdentity\":{\"type\":\"Service\",\"principalId\":"
			 "\"dynamodb.amazonaws.com\"}");
	const struct marker_cache *mc = o->marker ? marker_for(o, ob) : NULL;
	if (mc && mc->rc)
		return mc->rc; /* as write_marker */
	if (mc) {
		n += mc->len + udigits(index) + LIT("}");
	} else if (o->marker) {
		const char *key = ob ? ob->key : "";
		const char *ver = ob ? ob->version : NULL, *etag = ob ? ob->etag : NULL;
		if (!dda__utf8_valid(key, strlen(key)) ||
		    (ver && !dda__utf8_valid(ver, strlen(ver))) ||
		    (etag && !dda__utf8_valid(etag, strlen(etag))))
			return DDA_ENOMEM; /* as write_marker */
		n += LIT(",\"replay\":{\"runId\":,\"object\":{\"key\":,\"versionId\":,\"etag\":},"
			 "\"index\":}") +
		     cstring_len(o->run_id) + cstring_len(key) + (ver ? cstring_len(ver) : 4) +
		     (etag ? cstring_len(etag) : 4) + udigits(index);
	}
	*len = n + 1;
	return 0;
}
