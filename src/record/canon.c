/* AttributeValues: validation by DynamoDB's rules and the canonical
 * serialization of docs/canonical-form.md (tagged, length-prefixed, maps and
 * sets sorted), digests, item keys, key text and attribute diffs. */
#include "util/util.h"
#include "ddbaudit/canon.h"

/* How deep dda_canon_to_json follows a serialization it is handed: enough
 * for any valid item, bounded against crafted bytes. */
#define TO_JSON_MAX_DEPTH (DDA_MAX_NESTING + 2)

/* Where a value sits, for messages: built only when something is wrong. */
struct path {
	const struct path *up;
	const char *name; /* attribute or map key, or NULL for a list index */
	size_t index;
};

/* Explanations are written into `why` on the way out of a failure; one that
 * does not fit leaves `why` failed (sticky), which its reader sees as an
 * empty message, so the result of these appends is deliberately only
 * passed on. */
static int path_print(struct dda_buf *why, const struct path *p)
{
	if (!p)
		return 0;
	int rc = path_print(why, p->up);
	if (rc)
		return rc;
	if (p->name)
		return dda_buf_addf(why, "%s%s", p->up ? "." : "", p->name);
	return dda_buf_addf(why, "[%zu]", p->index);
}

DDA_PRINTF(3, 4)
static int invalid(struct dda_buf *why, const struct path *p, const char *fmt, ...)
{
	if (!why || path_print(why, p) || dda_buf_adds(why, ": "))
		return DDA_EFORMAT;
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(why, fmt, ap);
	va_end(ap);
	return rc == DDA_ENOMEM ? rc : DDA_EFORMAT;
}

/* The bytes of an S, N or B scalar, appended to out. */
static int scalar(const json_t *v, char type, const struct path *p, struct dda_buf *out,
		  struct dda_buf *why)
{
	if (!json_is_string(v))
		return invalid(why, p, "%c value is not a string", type);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (type == 'S')
		return dda_buf_add(out, s, n);
	if (type == 'N') {
		struct dda_buf msg;
		dda_buf_init(&msg, 512);
		int rc = dda_number_canon(s, n, out, &msg);
		if (rc == DDA_EFORMAT)
			invalid(why, p, "N %s", msg.ptr ? msg.ptr : "is invalid");
		dda_buf_release(&msg);
		return rc;
	}
	int rc = dda_base64_decode(s, n, out);
	if (rc == DDA_EFORMAT)
		return invalid(why, p, "B value is not valid base64");
	return rc;
}

struct span {
	const char *name;
	size_t name_len;
	size_t start, end;
};

static int cmp_span(const void *pa, const void *pb)
{
	const struct span *a = pa, *b = pb;
	int c = memcmp(a->name, b->name, DDA_MIN(a->name_len, b->name_len));
	if (c)
		return c;
	return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* SS, NS, BS: not empty, every element valid, no duplicates by value;
 * written sorted. Empty strings and binaries are allowed inside a set (the
 * DynamoDB Developer Guide, "Data types", Sets: "DynamoDB does not support
 * empty sets, however, empty string and binary values are allowed within a
 * set"). */
static int set_value(const json_t *arr, char type, enum dda_av_tag tag, const struct path *p,
		     struct dda_buf *out, struct dda_buf *why)
{
	size_t n = json_array_size(arr);
	if (!json_is_array(arr))
		return invalid(why, p, "%cS value is not an array", type);
	if (!n)
		return invalid(why, p, "empty %cS (sets must have at least one element)", type);
	struct dda_buf tmp;
	struct span *el = calloc(n, sizeof(*el));
	dda_buf_init(&tmp, DDA_BUF_UNLIMITED);
	int rc = el ? 0 : DDA_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		struct path here = {p, NULL, i};
		el[i].start = tmp.len;
		rc = scalar(json_array_get(arr, i), type, &here, &tmp, why);
		el[i].end = tmp.len;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		el[i].name = tmp.ptr ? tmp.ptr + el[i].start : "";
		el[i].name_len = el[i].end - el[i].start;
	}
	if (!rc)
		dda__sort(el, n, sizeof(*el), cmp_span);
	for (size_t i = 1; i < n && !rc; i++)
		if (!cmp_span(&el[i - 1], &el[i]))
			rc = invalid(why, p, "duplicate element in %cS", type);
	if (!rc)
		rc = dda_buf_addc(out, (char)tag);
	if (!rc)
		rc = dda__put_u32(out, n);
	for (size_t i = 0; i < n && !rc; i++)
		rc = dda__put_bytes(out, el[i].name, el[i].name_len);
	free(el);
	dda_buf_release(&tmp);
	return rc;
}

static int value(const json_t *av, int depth, const struct path *p, struct dda_buf *out,
		 struct dda_buf *why);

/* A map (an M value or an item image): entries sorted by name. Each value
 * is serialized into its own scratch buffer and copied out in order. */
static int map_value(const json_t *obj, int depth, const struct path *p, struct dda_buf *out,
		     struct dda_buf *why)
{
	size_t n = json_object_size(obj), i = 0;
	struct span *el = n ? calloc(n, sizeof(*el)) : NULL;
	struct dda_buf tmp;
	dda_buf_init(&tmp, DDA_BUF_UNLIMITED);
	int rc = n && !el ? DDA_ENOMEM : 0;
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)obj, name, v)
	{
		if (rc)
			break;
		struct path here = {p, name, 0};
		el[i].name = name;
		el[i].name_len = strlen(name);
		el[i].start = tmp.len;
		rc = value(v, depth, &here, &tmp, why);
		el[i++].end = tmp.len;
	}
	if (!rc && n > 1)
		dda__sort(el, n, sizeof(*el), cmp_span);
	if (!rc)
		rc = dda_buf_addc(out, DDA_TAG_M);
	if (!rc)
		rc = dda__put_u32(out, n);
	for (i = 0; i < n && !rc; i++) {
		rc = dda__put_bytes(out, el[i].name, el[i].name_len);
		if (!rc)
			rc = dda_buf_add(out, tmp.ptr + el[i].start, el[i].end - el[i].start);
	}
	free(el);
	dda_buf_release(&tmp);
	return rc;
}

static int list_value(const json_t *arr, int depth, const struct path *p, struct dda_buf *out,
		      struct dda_buf *why)
{
	if (!json_is_array(arr))
		return invalid(why, p, "L value is not an array");
	size_t n = json_array_size(arr);
	int rc = dda_buf_addc(out, DDA_TAG_L);
	if (!rc)
		rc = dda__put_u32(out, n);
	for (size_t i = 0; i < n && !rc; i++) {
		struct path here = {p, NULL, i};
		rc = value(json_array_get(arr, i), depth + 1, &here, out, why);
	}
	return rc;
}

static int value(const json_t *av, int depth, const struct path *p, struct dda_buf *out,
		 struct dda_buf *why)
{
	if (depth > DDA_MAX_NESTING)
		return invalid(why, p, "nested deeper than %d levels", DDA_MAX_NESTING);
	if (!json_is_object(av) || json_object_size(av) != 1)
		return invalid(why, p,
			       "an AttributeValue must be an object with exactly one "
			       "type member");
	void *it = json_object_iter((json_t *)av);
	const char *tag = json_object_iter_key(it);
	const json_t *v = json_object_iter_value(it);
	if (!strcmp(tag, "S") || !strcmp(tag, "N") || !strcmp(tag, "B")) {
		static const enum dda_av_tag tags[] = {
		    ['S'] = DDA_TAG_S, ['N'] = DDA_TAG_N, ['B'] = DDA_TAG_B};
		int rc = dda_buf_addc(out, (char)tags[(unsigned char)tag[0]]);
		size_t at = out->len;
		if (!rc)
			rc = dda__put_u32(out, 0);
		if (!rc)
			rc = scalar(v, tag[0], p, out, why);
		if (!rc)
			dda__patch_u32(out, at);
		return rc;
	}
	if (!strcmp(tag, "BOOL")) {
		if (!json_is_boolean(v))
			return invalid(why, p, "BOOL value is not true or false");
		int rc = dda_buf_addc(out, DDA_TAG_BOOL);
		return rc ? rc : dda_buf_addc(out, json_is_true(v) ? 1 : 0);
	}
	if (!strcmp(tag, "NULL")) {
		if (!json_is_true(v))
			return invalid(why, p, "NULL value must be true");
		return dda_buf_addc(out, DDA_TAG_NULL);
	}
	if (!strcmp(tag, "M")) {
		if (!json_is_object(v))
			return invalid(why, p, "M value is not an object");
		return map_value(v, depth + 1, p, out, why);
	}
	if (!strcmp(tag, "L"))
		return list_value(v, depth, p, out, why);
	if (!strcmp(tag, "SS"))
		return set_value(v, 'S', DDA_TAG_SS, p, out, why);
	if (!strcmp(tag, "NS"))
		return set_value(v, 'N', DDA_TAG_NS, p, out, why);
	if (!strcmp(tag, "BS"))
		return set_value(v, 'B', DDA_TAG_BS, p, out, why);
	return invalid(why, p, "unknown type '%.32s'", tag);
}

int dda_canon_value(const json_t *av, int depth, const char *path, struct dda_buf *out,
		    struct dda_buf *why)
{
	struct path p = {NULL, path, 0};
	return value(av, depth, &p, out, why);
}

int dda_canon_image(const json_t *image, const char *path, struct dda_buf *out, struct dda_buf *why)
{
	struct path p = {NULL, path, 0};
	if (!json_is_object(image))
		return invalid(why, &p, "an image must be an object");
	return map_value(image, 1, &p, out, why);
}

int dda_canon_digest(const json_t *image, const char *path, uint8_t out[DDA_DIGEST_LEN],
		     struct dda_buf *why)
{
	struct dda_buf ser;
	dda_buf_init(&ser, DDA_BUF_UNLIMITED);
	int rc = dda_canon_image(image, path, &ser, why);
	if (!rc)
		dda__sha256(ser.ptr, ser.len, out);
	dda_buf_release(&ser);
	return rc;
}

int dda_canon_key(const json_t *keys, const char *const *names, size_t nnames, const char *path,
		  struct dda_buf *out, struct dda_buf *why)
{
	struct path p = {NULL, path, 0};
	if (!json_is_object(keys))
		return invalid(why, &p, "keys must be an object");
	json_t *sel = names ? json_object() : (json_t *)keys;
	int rc = sel ? 0 : DDA_ENOMEM;
	for (size_t i = 0; names && i < nnames && !rc; i++) {
		json_t *v = json_object_get(keys, names[i]);
		if (!v)
			rc = invalid(why, &p, "key attribute '%s' is missing", names[i]);
		else
			rc = json_object_set(sel, names[i], v) ? DDA_ENOMEM : 0;
	}
	const char *name;
	json_t *v;
	json_object_foreach(sel, name, v)
	{
		if (rc)
			break;
		struct path here = {&p, name, 0};
		json_t *s = json_object_get(v, "S"), *b = json_object_get(v, "B");
		if (json_object_size(v) != 1 || !(s || b || json_object_get(v, "N")))
			rc = invalid(why, &here, "key attributes must be S, N or B");
		else if ((s && json_is_string(s) && !json_string_length(s)) ||
			 (b && json_is_string(b) && !json_string_length(b)))
			rc = invalid(why, &here, "key attributes must not be empty");
	}
	if (!rc)
		rc = map_value(sel, 1, &p, out, why);
	if (names)
		json_decref(sel);
	return rc;
}

/* ---- reading a serialization back ---- */

struct reader {
	const uint8_t *p, *end;
};

static bool get_u32(struct reader *r, uint32_t *v)
{
	if (r->end - r->p < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return true;
}

static bool get_bytes(struct reader *r, const uint8_t **b, uint32_t *n)
{
	if (!get_u32(r, n) || (size_t)(r->end - r->p) < *n)
		return false;
	*b = r->p;
	r->p += *n;
	return true;
}

/* A scalar's bytes as JSON text: B back to base64. */
static json_t *scalar_json(uint8_t tag, const uint8_t *b, uint32_t n)
{
	if (tag != DDA_TAG_B && tag != DDA_TAG_BS)
		return json_stringn((const char *)b, n);
	struct dda_buf enc;
	dda_buf_init(&enc, DDA_BUF_UNLIMITED);
	json_t *j =
	    dda_base64_encode(b, n, &enc) ? NULL : json_stringn(enc.ptr ? enc.ptr : "", enc.len);
	dda_buf_release(&enc);
	return j;
}

static json_t *read_value(struct reader *r, int depth);

static json_t *read_map(struct reader *r, int depth)
{
	uint32_t n, len;
	const uint8_t *name;
	json_t *m = json_object();
	if (!m || !get_u32(r, &n))
		goto bad;
	for (uint32_t i = 0; i < n; i++) {
		if (!get_bytes(r, &name, &len) || memchr(name, '\0', len))
			goto bad;
		json_t *v = read_value(r, depth + 1);
		char *key = v ? strndup((const char *)name, len) : NULL;
		int rc = key ? json_object_set_new(m, key, v) : -1;
		if (!key)
			json_decref(v);
		free(key);
		if (rc)
			goto bad;
	}
	return m;
bad:
	json_decref(m);
	return NULL;
}

static const char *const type_names[] = {
    [DDA_TAG_S] = "S",	     [DDA_TAG_N] = "N",	  [DDA_TAG_B] = "B", [DDA_TAG_BOOL] = "BOOL",
    [DDA_TAG_NULL] = "NULL", [DDA_TAG_M] = "M",	  [DDA_TAG_L] = "L", [DDA_TAG_SS] = "SS",
    [DDA_TAG_NS] = "NS",     [DDA_TAG_BS] = "BS",
};

static json_t *read_inner(struct reader *r, uint8_t tag, int depth)
{
	uint32_t n;
	const uint8_t *b;
	switch (tag) {
	case DDA_TAG_S:
	case DDA_TAG_N:
	case DDA_TAG_B:
		return get_bytes(r, &b, &n) ? scalar_json(tag, b, n) : NULL;
	case DDA_TAG_BOOL:
		if (r->p >= r->end || *r->p > 1)
			return NULL;
		return json_boolean(*r->p++);
	case DDA_TAG_NULL:
		return json_true();
	case DDA_TAG_M:
		return read_map(r, depth);
	}
	uint32_t count;
	json_t *arr = json_array();
	if (!arr || !get_u32(r, &count))
		goto bad;
	for (uint32_t i = 0; i < count; i++) {
		json_t *v;
		if (tag == DDA_TAG_L)
			v = read_value(r, depth + 1);
		else
			v = get_bytes(r, &b, &n) ? scalar_json(tag, b, n) : NULL;
		if (!v || json_array_append_new(arr, v))
			goto bad;
	}
	return arr;
bad:
	json_decref(arr);
	return NULL;
}

static json_t *read_value(struct reader *r, int depth)
{
	if (r->p >= r->end || depth > TO_JSON_MAX_DEPTH)
		return NULL;
	uint8_t tag = *r->p++;
	if (tag < DDA_TAG_S || tag > DDA_TAG_BS)
		return NULL;
	json_t *inner = read_inner(r, tag, depth);
	return inner ? json_pack("{so}", type_names[tag], inner) : NULL;
}

json_t *dda_canon_to_json(const void *ser, size_t n)
{
	struct reader r = {ser, (const uint8_t *)ser + n};
	if (!n || *r.p != DDA_TAG_M)
		return NULL;
	r.p++;
	json_t *m = read_map(&r, 0);
	if (m && r.p != r.end) {
		json_decref(m);
		return NULL;
	}
	return m;
}

/* ---- key text ---- */

static bool special(char c)
{
	return c == ',' || c == '=' || c == ':' || c == '\\';
}

/* Control characters (a NUL above all) are written "\xHH": the text is
 * shown on terminals, in CSV and Markdown, and held in C strings, where a
 * raw NUL would cut it and a raw newline forge a line. */
static int add_escaped(struct dda_buf *out, const char *s, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			rc = dda_buf_addf(out, "\\x%02X", c);
			continue;
		}
		if (special(s[i]))
			rc = dda_buf_addc(out, '\\');
		if (!rc)
			rc = dda_buf_addc(out, s[i]);
	}
	return rc;
}

int dda_canon_key_text(const void *ser, size_t n, struct dda_buf *out)
{
	struct reader r = {ser, (const uint8_t *)ser + n};
	uint32_t count, len, vlen;
	const uint8_t *name, *val;
	if (!n || *r.p++ != DDA_TAG_M || !get_u32(&r, &count))
		return DDA_EFORMAT;
	int rc = dda_buf_grow(out, n);
	for (uint32_t i = 0; i < count && !rc; i++) {
		if (!get_bytes(&r, &name, &len) || r.p >= r.end)
			return DDA_EFORMAT;
		uint8_t tag = *r.p++;
		if ((tag != DDA_TAG_S && tag != DDA_TAG_N && tag != DDA_TAG_B) ||
		    !get_bytes(&r, &val, &vlen))
			return DDA_EFORMAT;
		if (i)
			rc = dda_buf_addc(out, ',');
		if (!rc)
			rc = add_escaped(out, (const char *)name, len);
		if (!rc)
			rc = dda_buf_addc(out, '=');
		if (!rc && tag != DDA_TAG_S)
			rc = dda_buf_adds(out, tag == DDA_TAG_N ? "N:" : "B:");
		if (!rc && tag == DDA_TAG_B)
			rc = dda_base64_encode(val, vlen, out);
		else if (!rc)
			rc = add_escaped(out, (const char *)val, vlen);
	}
	return rc ? rc : r.p == r.end ? 0 : DDA_EFORMAT;
}

/* Copies text up to the first unescaped `stop` (or the end), unescaping.
 * Returns the position after the stop character or the end; out's sticky
 * error says whether all of it fitted. */
static const char *unescape_until(const char *p, const char *end, char stop, struct dda_buf *out,
				  bool *found)
{
	*found = false;
	while (p < end) {
		if (*p == '\\' && p + 3 < end && p[1] == 'x' && dda__hex_value(p[2]) >= 0 &&
		    dda__hex_value(p[3]) >= 0) {
			if (dda_buf_addc(out, (char)(dda__hex_value(p[2]) * 16 + dda__hex_value(p[3]))))
				return end;
			p += 4;
			continue;
		}
		if (*p == '\\' && p + 1 < end) {
			if (dda_buf_addc(out, p[1]))
				return end;
			p += 2;
			continue;
		}
		if (*p == stop) {
			*found = true;
			return p + 1;
		}
		if (dda_buf_addc(out, *p++))
			return end;
	}
	return p;
}

/* One "name=value" pair into a JSON AttributeValue member of keys. */
static int parse_pair(const char *p, const char *end, json_t *keys, struct dda_buf *why)
{
	struct dda_buf name, val;
	bool found;
	dda_buf_init(&name, 4096);
	dda_buf_init(&val, 1 << 16);
	const char *v = unescape_until(p, end, '=', &name, &found);
	int rc = 0;
	if (dda_buf_error(&name)) {
		rc = dda_buf_error(&name) == DDA_ENOMEM
			 ? DDA_ENOMEM
			 : dda__explain(why, "attribute name longer than %zu bytes", name.max);
		goto out;
	}
	if (!found || !name.len) {
		rc = dda__explain(why, "expected NAME=VALUE, found '%.*s'", (int)(end - p), p);
		goto out;
	}
	const char *type = "S";
	if (end - v >= 2 && v[1] == ':' && (v[0] == 'S' || v[0] == 'N' || v[0] == 'B')) {
		type = v[0] == 'S' ? "S" : v[0] == 'N' ? "N" : "B";
		v += 2;
	}
	unescape_until(v, end, '\0', &val, &found);
	if (dda_buf_error(&val)) {
		rc = dda_buf_error(&val) == DDA_ENOMEM
			 ? DDA_ENOMEM
			 : dda__explain(why, "value of '%s' longer than %zu bytes", name.ptr,
					val.max);
		goto out;
	}
	if (json_object_get(keys, name.ptr)) {
		rc = dda__explain(why, "attribute '%s' given twice", name.ptr);
		goto out;
	}
	json_t *s = json_stringn(val.ptr ? val.ptr : "", val.len);
	if (!s || json_object_set_new(keys, name.ptr, json_pack("{so}", type, s)))
		rc = DDA_ENOMEM;
out:
	dda_buf_release(&name);
	dda_buf_release(&val);
	return rc;
}

int dda_canon_key_parse(const char *text, struct dda_buf *out, struct dda_buf *why)
{
	json_t *keys;
	if (*text == '{') {
		json_error_t je;
		keys = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
		if (!keys)
			return dda__explain(why, "not valid JSON: %s", je.text);
	} else {
		keys = json_object();
		if (!keys)
			return DDA_ENOMEM;
		const char *p = text, *end = text + strlen(text);
		while (p < end) {
			/* Find the next unescaped ','. */
			const char *q = p;
			while (q < end && *q != ',')
				q += *q == '\\' && q + 1 < end ? 2 : 1;
			int rc = parse_pair(p, q, keys, why);
			if (rc) {
				json_decref(keys);
				return rc;
			}
			p = q + 1;
		}
	}
	int rc = json_object_size(keys) ? dda_canon_key(keys, NULL, 0, "key", out, why)
					: dda__explain(why, "no key attributes");
	json_decref(keys);
	return rc;
}

/* ---- diff ---- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Equal by canonical form (values that do not validate compare as JSON). */
static bool same_value(const json_t *a, const json_t *b)
{
	struct dda_buf x, y;
	dda_buf_init(&x, DDA_BUF_UNLIMITED);
	dda_buf_init(&y, DDA_BUF_UNLIMITED);
	bool eq;
	if (!dda_canon_value(a, 1, "", &x, NULL) && !dda_canon_value(b, 1, "", &y, NULL))
		eq = x.len == y.len && !memcmp(x.ptr, y.ptr, x.len);
	else
		eq = json_equal((json_t *)a, (json_t *)b);
	dda_buf_release(&x);
	dda_buf_release(&y);
	return eq;
}

json_t *dda_canon_diff(const json_t *expected, const json_t *found)
{
	json_t *added = json_object(), *removed = json_object(), *changed = json_object();
	size_t n = json_object_size(expected) + json_object_size(found), k = 0;
	const char **names = n ? calloc(n, sizeof(*names)) : NULL;
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)expected, name, v)
	{
		if (names)
			names[k++] = name;
	}
	json_object_foreach((json_t *)found, name, v)
	{
		if (names && !json_object_get(expected, name))
			names[k++] = name;
	}
	if (names)
		dda__sort(names, k, sizeof(*names), cmp_names);
	for (size_t i = 0; names && i < k; i++) {
		json_t *e = json_object_get(expected, names[i]),
		       *f = json_object_get(found, names[i]);
		if (!e)
			json_object_set(added, names[i], f);
		else if (!f)
			json_object_set(removed, names[i], e);
		else if (!same_value(e, f))
			json_object_set_new(changed, names[i],
					    json_pack("{sOsO}", "expected", e, "found", f));
	}
	free(names);
	if (n && !names) {
		json_decref(added);
		json_decref(removed);
		json_decref(changed);
		return NULL;
	}
	return json_pack("{sososo}", "added", added, "removed", removed, "changed", changed);
}
