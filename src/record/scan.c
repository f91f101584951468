/* The decoder's fast path for seed records (see scan.h). Two passes over a
 * flat token tape: a strict JSON tokenizer (UTF-8 checked, escapes noted,
 * no allocation per value), then the seed dialect's rules and the canonical
 * serialization of docs/canonical-form.md straight from the tape. */
#include "record/scan.h"

/* Deeper than any valid image (32 levels of M/L, two tokens per level, plus
 * the record): beyond this the jansson path decides. */
#define SCAN_MAX_DEPTH 80
/* Tokens of one record; a bigger record goes to the jansson path. */
#define SCAN_MAX_TOKENS (1u << 20)

enum tok_type { T_OBJ, T_ARR, T_STR, T_NUM, T_TRUE, T_FALSE, T_NULL };

struct tok {
	uint8_t type;
	uint8_t esc;	 /* string held escapes: decoded into strs at off */
	uint32_t count;	 /* members or elements; string length (decoded bytes) */
	uint32_t end;	 /* index just after this token's subtree */
	size_t off;	 /* decoded string's offset in strs */
	const char *ptr; /* string bytes (raw if no escapes, else in strs) */
};

/* A map entry (name, and its value's token in start) or a set element
 * (its bytes in num at start..end). */
struct span {
	const char *name;
	size_t name_len;
	size_t start, end;
};

struct dda__scanner {
	struct tok *tape;
	uint32_t ntok, cap;
	struct dda_buf strs; /* decoded strings, reset per record */
	struct dda_buf ser;  /* serialization of one image */
	struct dda_buf num;  /* number / base64 scratch */
	struct dda_buf why;
	struct span *spans;
	size_t nspans, cap_spans;
	struct dda__sha256 sha;
};

struct dda__scanner *dda__scanner_new(void)
{
	struct dda__scanner *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	dda_buf_init(&s->strs, DDA_BUF_UNLIMITED);
	dda_buf_init(&s->ser, DDA_BUF_UNLIMITED);
	dda_buf_init(&s->num, DDA_BUF_UNLIMITED);
	dda_buf_init(&s->why, 4096);
	return s;
}

void dda__scanner_free(struct dda__scanner *s)
{
	if (!s)
		return;
	free(s->tape);
	free(s->spans);
	dda_buf_release(&s->strs);
	dda_buf_release(&s->ser);
	dda_buf_release(&s->num);
	dda_buf_release(&s->why);
	dda__sha256_release(&s->sha);
	free(s);
}

/* ---- pass 1: tokenizer ---- */

struct lexer {
	struct dda__scanner *s;
	const char *p, *end;
	int depth;
	bool fail;
};

static bool grow_tape(struct lexer *lx)
{
	struct dda__scanner *s = lx->s;
	uint32_t cap = s->cap ? s->cap * 2 : 256;
	struct tok *nt = cap <= SCAN_MAX_TOKENS ? realloc(s->tape, cap * sizeof(*nt)) : NULL;
	if (!nt) {
		lx->fail = true;
		return false;
	}
	s->tape = nt;
	s->cap = cap;
	return true;
}

static inline struct tok *push(struct lexer *lx, int type)
{
	struct dda__scanner *s = lx->s;
	if (s->ntok == s->cap && !grow_tape(lx))
		return NULL;
	struct tok *t = &s->tape[s->ntok++];
	t->type = (uint8_t)type;
	t->esc = 0;
	t->count = 0;
	t->end = s->ntok;
	t->ptr = NULL;
	return t;
}

static inline void skip_ws(struct lexer *lx)
{
	while (lx->p < lx->end &&
	       (*lx->p == ' ' || *lx->p == '\n' || *lx->p == '\t' || *lx->p == '\r'))
		lx->p++;
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int h = dda__hex_value(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
	if (!n || c > 0xf4 || (size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
		return 0;
	if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
		return 0;
	return n;
}

/* The one-character escapes and what they stand for. */
static const char esc_from[] = "\"\\/bfnrt", esc_to[] = "\"\\/\b\f\n\r\t";

/* Checks one escape at p (after the backslash); returns its length. */
static size_t escape_len(const char *p, const char *end)
{
	if (p >= end)
		return 0;
	if (*p && strchr(esc_from, *p))
		return 1;
	if (*p != 'u' || end - p < 5)
		return 0;
	int u = hex4(p + 1);
	if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
		return 0;
	if (u < 0xd800 || u > 0xdbff)
		return 5;
	/* A high surrogate must be followed by a low one. */
	if (end - p < 11 || p[5] != '\\' || p[6] != 'u')
		return 0;
	int lo = hex4(p + 7);
	return lo >= 0xdc00 && lo <= 0xdfff ? 11 : 0;
}

static void put_utf8(char *out, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xc0 | cp >> 6);
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*n)++] = (char)(0xe0 | cp >> 12);
		out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*n)++] = (char)(0xf0 | cp >> 18);
		out[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* Decodes the (already checked) escapes of raw[0..n) into strs. Escapes
 * only shrink, and strs was sized for the whole record up front, so this
 * never reallocates: the token points into strs at once. */
static void unescape(struct dda_buf *strs, const char *raw, size_t n, struct tok *t)
{
	char *o = strs->ptr + strs->len;
	size_t len = 0;
	for (const char *p = raw, *end = raw + n; p < end;) {
		if (*p != '\\') {
			o[len++] = *p++;
			continue;
		}
		char e = p[1];
		p += 2;
		if (e != 'u') {
			o[len++] = esc_to[strchr(esc_from, e) - esc_from];
			continue;
		}
		unsigned cp = (unsigned)hex4(p);
		p += 4;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			unsigned lo = (unsigned)hex4(p + 2);
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			p += 6;
		}
		put_utf8(o, &len, cp);
	}
	t->off = strs->len;
	t->ptr = o;
	t->count = (uint32_t)len;
	strs->len += len;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Skips the plain bytes of a string (printable ASCII but '"' and '\'),
 * eight at a time: the first byte of each word that needs a look sets the
 * high bit of its lane, and lanes above it may be set too (borrows), so the
 * lowest set lane is exact. Stops short of the end on a partial word. */
static inline const char *skip_plain(const char *p, const char *end)
{
	while (end - p >= 8) {
		uint64_t x;
		memcpy(&x, p, 8);
		uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
		uint64_t m = (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x) &
			     HIGHS;
		if (m) {
			/* Lanes are bytes in memory order on a little-endian
			 * machine; elsewhere the byte loop finds the byte. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return p + (__builtin_ctzll(m) >> 3);
#else
			return p;
#endif
		}
		p += 8;
	}
	return p;
}

static void lex_string(struct lexer *lx)
{
	struct tok *t = push(lx, T_STR);
	if (!t)
		return;
	const char *p = ++lx->p;
	t->ptr = p;
	while (p < lx->end) {
		p = skip_plain(p, lx->end);
		if (p == lx->end)
			break;
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			t->count = (uint32_t)(p - t->ptr);
			if (t->esc)
				unescape(&lx->s->strs, t->ptr, t->count, t);
			lx->p = p + 1;
			return;
		}
		if (c == '\\') {
			size_t n = escape_len(p + 1, lx->end);
			if (!n)
				break;
			t->esc = 1;
			p += 1 + n;
		} else if (c < 0x20) {
			break;
		} else if (c < 0x80) {
			p++;
		} else {
			size_t n =
			    utf8_len((const unsigned char *)p, (const unsigned char *)lx->end);
			if (!n)
				break;
			p += n;
		}
	}
	lx->fail = true;
}

static void lex_value(struct lexer *lx);

static void lex_container(struct lexer *lx, bool obj)
{
	uint32_t at = lx->s->ntok;
	const char *start = lx->p;
	if (!push(lx, obj ? T_OBJ : T_ARR) || ++lx->depth > SCAN_MAX_DEPTH) {
		lx->fail = true;
		return;
	}
	lx->p++;
	skip_ws(lx);
	uint32_t count = 0;
	char close = obj ? '}' : ']';
	if (lx->p < lx->end && *lx->p == close) {
		lx->p++;
		goto done;
	}
	while (!lx->fail) {
		skip_ws(lx);
		if (obj) {
			if (lx->p >= lx->end || *lx->p != '"') {
				lx->fail = true;
				return;
			}
			lex_string(lx);
			skip_ws(lx);
			if (lx->fail || lx->p >= lx->end || *lx->p++ != ':') {
				lx->fail = true;
				return;
			}
		}
		lex_value(lx);
		count++;
		skip_ws(lx);
		if (lx->fail || lx->p >= lx->end)
			break;
		if (*lx->p == ',') {
			lx->p++;
			continue;
		}
		if (*lx->p == close) {
			lx->p++;
			goto done;
		}
		break;
	}
	lx->fail = true;
	return;
done:
	lx->depth--;
	lx->s->tape[at].count = count;
	lx->s->tape[at].end = lx->s->ntok;
	lx->s->tape[at].ptr = start; /* a container's text: ptr, off bytes */
	lx->s->tape[at].off = (size_t)(lx->p - start);
}

static void lex_literal(struct lexer *lx, const char *word, int type)
{
	size_t n = strlen(word);
	if ((size_t)(lx->end - lx->p) < n || memcmp(lx->p, word, n)) {
		lx->fail = true;
		return;
	}
	lx->p += n;
	push(lx, type);
}

static void lex_value(struct lexer *lx)
{
	skip_ws(lx);
	if (lx->p >= lx->end) {
		lx->fail = true;
		return;
	}
	switch (*lx->p) {
	case '{':
		lex_container(lx, true);
		return;
	case '[':
		lex_container(lx, false);
		return;
	case '"':
		lex_string(lx);
		return;
	case 't':
		lex_literal(lx, "true", T_TRUE);
		return;
	case 'f':
		lex_literal(lx, "false", T_FALSE);
		return;
	case 'n':
		lex_literal(lx, "null", T_NULL);
		return;
	}
	/* Numbers never occur in seed records (values are DynamoDB JSON
	 * strings), and jansson's range rules for them are its own. */
	lx->fail = true;
}

/* ---- pass 2: the record ---- */

/* Whether string token t is the n bytes at lit. */
static inline bool tok_is(const struct tok *t, const char *lit, size_t n)
{
	return t->type == T_STR && t->count == n && !memcmp(t->ptr, lit, n);
}

#define STR_EQ(t, lit) tok_is((t), lit, sizeof(lit) - 1)

/* The value token of member `name` of the object at o, or 0. */
static uint32_t member(const struct dda__scanner *s, uint32_t o, const char *name)
{
	size_t n = strlen(name);
	uint32_t i = o + 1;
	for (uint32_t k = 0; k < s->tape[o].count; k++) {
		if (tok_is(&s->tape[i], name, n))
			return i + 1;
		i = s->tape[i + 1].end;
	}
	return 0;
}

/* memcmp order of two names, a proper prefix first. Inline: attribute
 * names and set elements are short and mostly differ in their first bytes, where a call to
 * memcmp costs more than the comparison. */
static inline int cmp_names(const char *a, size_t an, const char *b, size_t bn)
{
	size_t n = DDA_MIN(an, bn);
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
	return an < bn ? -1 : an > bn;
}

static int cmp_slices(const void *pa, const void *pb)
{
	const dda_slice *a = pa, *b = pb;
	return cmp_names(a->ptr, a->len, b->ptr, b->len);
}

/* Objects and sets in records are small (an image has about ten
 * attributes): there, insertion sort beats qsort's calls through a pointer,
 * and pairs beat sorting for finding a duplicate. */
#define SMALL 16

static void sort_slices(dda_slice *a, size_t n)
{
	if (n > SMALL) {
		dda__sort(a, n, sizeof(*a), cmp_slices);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		dda_slice x = a[i];
		size_t j = i;
		for (; j && cmp_slices(&a[j - 1], &x) > 0; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/* Whether string token t holds a NUL: only an escape (\u0000) can put
 * one there, the tokenizer refuses raw control characters. */
static inline bool has_nul(const struct tok *t)
{
	return t->esc && memchr(t->ptr, '\0', t->count);
}

/* Whether the names of the object at tape[o] are free of NUL and
 * duplicates. */
static bool object_names_ok(const struct dda__scanner *s, uint32_t o)
{
	const struct tok *t = &s->tape[o];
	dda_slice small[SMALL];
	dda_slice *names = t->count <= SMALL ? small : malloc(t->count * sizeof(*names));
	if (!names)
		return false;
	bool ok = true;
	for (uint32_t i = o + 1, k = 0; k < t->count && ok; k++, i = s->tape[i + 1].end) {
		names[k] = dda_slice_make(s->tape[i].ptr, s->tape[i].count);
		ok = !has_nul(&s->tape[i]);
	}
	if (ok && t->count > SMALL) {
		sort_slices(names, t->count);
		for (uint32_t k = 1; k < t->count && ok; k++)
			ok = cmp_slices(&names[k - 1], &names[k]) != 0;
	} else {
		for (uint32_t k = 1; k < t->count && ok; k++)
			for (uint32_t j = 0; j < k && ok; j++)
				ok = names[j].len != names[k].len ||
				     memcmp(names[j].ptr, names[k].ptr, names[k].len);
	}
	if (names != small)
		free(names);
	return ok;
}

/* jansson refuses duplicate member names and NUL inside them: so must we,
 * for every object of the record. */
static bool names_ok(const struct dda__scanner *s)
{
	for (uint32_t o = 0; o < s->ntok; o++) {
		const struct tok *t = &s->tape[o];
		if (t->type != T_OBJ || t->count == 0)
			continue;
		if (t->count == 1 ? has_nul(&s->tape[o + 1]) : !object_names_ok(s, o))
			return false;
	}
	return true;
}

enum { OK = 0, BAIL = 1 };

/* Appends to the serialization: one copy when there is room (the common
 * case once the buffer has grown), dda_buf's checks otherwise. */
static inline int out_add(struct dda_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len > n) {
		memcpy(b->ptr + b->len, p, n);
		b->len += n;
		b->ptr[b->len] = '\0';
		return OK;
	}
	return dda_buf_add(b, p, n) ? BAIL : OK;
}

static inline int out_u32(struct dda_buf *b, size_t v)
{
	unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	return out_add(b, p, 4);
}

/* A tag byte and a u32: the head of every counted value. */
static inline int out_head(struct dda_buf *b, uint8_t tag, size_t v)
{
	unsigned char p[5] = {tag, (unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	return out_add(b, p, 5);
}

static inline int out_bytes(struct dda_buf *b, const void *p, size_t n)
{
	return out_u32(b, n) || out_add(b, p, n) ? BAIL : OK;
}

/* Spans form a stack shared by nested maps and sets. */
static int push_span(struct dda__scanner *s, struct span sp)
{
	if (s->nspans == s->cap_spans) {
		size_t cap = s->cap_spans ? s->cap_spans * 2 : 64;
		struct span *ns = realloc(s->spans, cap * sizeof(*ns));
		if (!ns)
			return BAIL;
		s->spans = ns;
		s->cap_spans = cap;
	}
	s->spans[s->nspans++] = sp;
	return OK;
}

static int ser_value(struct dda__scanner *s, uint32_t v, int depth);

/* A scalar's canonical bytes (S, N or B) appended to out. */
static int scalar_bytes(struct dda__scanner *s, const struct tok *t, char tag, struct dda_buf *out)
{
	if (t->type != T_STR)
		return BAIL;
	if (tag == 'S')
		return out_add(out, t->ptr, t->count);
	dda_buf_reset(&s->why);
	if (tag == 'N')
		return dda_number_canon(t->ptr, t->count, out, &s->why) ? BAIL : OK;
	return dda_base64_decode(t->ptr, t->count, out) ? BAIL : OK;
}

/* SS, NS, BS: elements canonicalized, sorted, no duplicates, not empty. */
static int ser_set(struct dda__scanner *s, uint32_t v, char tag, uint8_t code)
{
	const struct tok *arr = &s->tape[v];
	if (arr->type != T_ARR || arr->count == 0)
		return BAIL;
	/* Elements go to num back to back; spans index them. */
	dda_buf_reset(&s->num);
	size_t base = s->nspans;
	uint32_t i = v + 1;
	for (uint32_t k = 0; k < arr->count; k++, i = s->tape[i].end) {
		/* Empty set elements: left to the jansson path to judge. */
		if (s->tape[i].type != T_STR || s->tape[i].count == 0)
			return BAIL;
		size_t start = s->num.len;
		if (scalar_bytes(s, &s->tape[i], tag, &s->num))
			return BAIL;
		if (push_span(s, (struct span){NULL, 0, start, s->num.len}))
			return BAIL;
	}
	size_t n = s->nspans - base;
	dda_slice small[64], *el = n <= 64 ? small : malloc(n * sizeof(*el));
	if (!el)
		return BAIL;
	for (size_t k = 0; k < n; k++) {
		struct span *sp = &s->spans[base + k];
		el[k] = dda_slice_make(s->num.ptr + sp->start, sp->end - sp->start);
	}
	s->nspans = base;
	sort_slices(el, n);
	int rc = out_head(&s->ser, code, n);
	for (size_t k = 0; k < n && rc == OK; k++) {
		if (k && !cmp_slices(&el[k - 1], &el[k]))
			rc = BAIL; /* a duplicate: INVALID_VALUE, the jansson path says */
		else
			rc = out_bytes(&s->ser, el[k].ptr, el[k].len);
	}
	if (el != small)
		free(el);
	return rc;
}

static int cmp_spans(const void *pa, const void *pb)
{
	const struct span *a = pa, *b = pb;
	return cmp_names(a->name, a->name_len, b->name, b->name_len);
}

static void sort_spans(struct span *a, size_t n)
{
	if (n > SMALL) {
		dda__sort(a, n, sizeof(*a), cmp_spans);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct span x = a[i];
		size_t j = i;
		for (; j && cmp_spans(&a[j - 1], &x) > 0; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/* An M (or the image itself): the names are put in order first (a span
 * per entry, its `start` the value's token), then each entry is
 * serialized straight into place. */
static int ser_map(struct dda__scanner *s, uint32_t o, int depth)
{
	const struct tok *t = &s->tape[o];
	if (t->type != T_OBJ)
		return BAIL;
	uint32_t count = t->count;
	if (out_head(&s->ser, DDA_TAG_M, count))
		return BAIL;
	size_t base = s->nspans;
	bool sorted = true;
	for (uint32_t i = o + 1, k = 0; k < count; k++, i = s->tape[i + 1].end) {
		struct span sp = {s->tape[i].ptr, s->tape[i].count, i + 1, 0};
		if (k && sorted && cmp_spans(&s->spans[s->nspans - 1], &sp) > 0)
			sorted = false;
		if (push_span(s, sp))
			return BAIL;
	}
	if (!sorted)
		sort_spans(s->spans + base, count);
	/* Nested maps push above base + count: entries are read by index,
	 * as the stack may move. */
	for (size_t k = 0; k < count; k++) {
		const struct span *sp = &s->spans[base + k];
		uint32_t v = (uint32_t)sp->start;
		if (out_bytes(&s->ser, sp->name, sp->name_len) || ser_value(s, v, depth))
			return BAIL;
	}
	s->nspans = base;
	return OK;
}

/* One AttributeValue at nesting depth `depth` (an attribute of the item is
 * at depth 1). */
static int ser_value(struct dda__scanner *s, uint32_t v, int depth)
{
	const struct tok *av = &s->tape[v];
	if (av->type != T_OBJ || av->count != 1 || depth > DDA_MAX_NESTING)
		return BAIL;
	const struct tok *tag = &s->tape[v + 1];
	uint32_t val = v + 2;
	const struct tok *t = &s->tape[val];
	if (tag->count == 1) {
		switch (tag->ptr[0]) {
		case 'S':
			if (t->type != T_STR)
				return BAIL;
			return out_head(&s->ser, DDA_TAG_S, t->count) ||
					       out_add(&s->ser, t->ptr, t->count)
				   ? BAIL
				   : OK;
		case 'N':
		case 'B': {
			char c = tag->ptr[0];
			if (out_head(&s->ser, c == 'N' ? DDA_TAG_N : DDA_TAG_B, 0))
				return BAIL;
			size_t at = s->ser.len - 4;
			if (scalar_bytes(s, t, c, &s->ser))
				return BAIL;
			dda__patch_u32(&s->ser, at);
			return OK;
		}
		case 'M':
			return ser_map(s, val, depth + 1);
		case 'L':
			if (t->type != T_ARR || out_head(&s->ser, DDA_TAG_L, t->count))
				return BAIL;
			for (uint32_t i = val + 1, k = 0; k < t->count; k++, i = s->tape[i].end)
				if (ser_value(s, i, depth + 1))
					return BAIL;
			return OK;
		}
		return BAIL;
	}
	if (STR_EQ(tag, "SS"))
		return ser_set(s, val, 'S', DDA_TAG_SS);
	if (STR_EQ(tag, "NS"))
		return ser_set(s, val, 'N', DDA_TAG_NS);
	if (STR_EQ(tag, "BS"))
		return ser_set(s, val, 'B', DDA_TAG_BS);
	if (STR_EQ(tag, "BOOL") && (t->type == T_TRUE || t->type == T_FALSE)) {
		unsigned char b[2] = {DDA_TAG_BOOL, t->type == T_TRUE};
		return out_add(&s->ser, b, 2);
	}
	if (STR_EQ(tag, "NULL") && t->type == T_TRUE) {
		unsigned char b = DDA_TAG_NULL;
		return out_add(&s->ser, &b, 1);
	}
	return BAIL;
}

static int image_digest(struct dda__scanner *s, uint32_t img, uint8_t *out)
{
	dda_buf_reset(&s->ser);
	s->nspans = 0;
	if (ser_map(s, img, 1))
		return BAIL;
	return dda__sha256_digest(&s->sha, s->ser.ptr, s->ser.len, out) ? BAIL : OK;
}

/* The image's key attributes must be S values equal to the record's. */
static bool image_key_ok(const struct dda__scanner *s, const struct dda_decoder_opts *o,
			 uint32_t img, const struct dda__scan_out *out)
{
	for (size_t k = 0; k < o->nkeys; k++) {
		uint32_t av = member(s, img, o->key_names[k]);
		if (!av || s->tape[av].type != T_OBJ || s->tape[av].count != 1 ||
		    !STR_EQ(&s->tape[av + 1], "S"))
			return false;
		const struct tok *v = &s->tape[av + 2];
		if (v->type != T_STR || v->count != out->klen[k] ||
		    memcmp(v->ptr, out->kval[k], v->count))
			return false;
	}
	return true;
}

/* An optional image: absent or null is none, an object is one. */
static int get_image(const struct dda__scanner *s, uint32_t *img)
{
	if (!*img || s->tape[*img].type == T_NULL) {
		*img = 0;
		return OK;
	}
	return s->tape[*img].type == T_OBJ ? OK : BAIL;
}

static int event_code(const struct tok *t)
{
	if (STR_EQ(t, "INSERT"))
		return DDA_EV_INSERT;
	if (STR_EQ(t, "MODIFY"))
		return DDA_EV_MODIFY;
	if (STR_EQ(t, "REMOVE"))
		return DDA_EV_REMOVE;
	return -1;
}

/* The record's members that the seed dialect reads: value tokens, 0 when
 * absent. */
struct top {
	uint32_t ts, ev, key[DDA_MAX_KEY_ATTRS], region, source, old_img, new_img;
	bool other_dialect; /* dynamodb, Metadata or Records */
};

/* One pass over the record's members (their names are unique: names_ok). */
static void top_members(const struct dda__scanner *s, const struct dda_decoder_opts *o,
			struct top *f)
{
	size_t klen[DDA_MAX_KEY_ATTRS];
	for (size_t k = 0; k < o->nkeys; k++)
		klen[k] = strlen(o->key_fields[k]);
	memset(f, 0, sizeof(*f));
	for (uint32_t i = 1, k = 0; k < s->tape[0].count; k++, i = s->tape[i + 1].end) {
		const struct tok *n = &s->tape[i];
		uint32_t v = i + 1;
		if (STR_EQ(n, "timestamp"))
			f->ts = v;
		else if (STR_EQ(n, "eventName"))
			f->ev = v;
		else if (STR_EQ(n, "awsRegion"))
			f->region = v;
		else if (STR_EQ(n, "eventSource"))
			f->source = v;
		else if (STR_EQ(n, "oldImage"))
			f->old_img = v;
		else if (STR_EQ(n, "newImage"))
			f->new_img = v;
		else if (STR_EQ(n, "dynamodb") || STR_EQ(n, "Metadata") || STR_EQ(n, "Records"))
			f->other_dialect = true;
		for (size_t j = 0; j < o->nkeys; j++)
			if (tok_is(n, o->key_fields[j], klen[j]))
				f->key[j] = v;
	}
}

/* The seed dialect's rules, as decode.c applies them, on the tape. */
static int seed_fields(struct dda__scanner *s, const struct dda_decoder_opts *o,
		       struct dda__scan_out *out, uint32_t *old_img, uint32_t *new_img,
		       uint32_t *region)
{
	struct top f;
	if (s->tape[0].type != T_OBJ)
		return BAIL;
	top_members(s, o, &f);
	if (f.other_dialect)
		return BAIL;
	if (!f.ts || s->tape[f.ts].type != T_STR ||
	    dda_time_parse(s->tape[f.ts].ptr, s->tape[f.ts].count, &out->time))
		return BAIL;
	if (!dda_range_contains(&o->range, out->time))
		return DDA_SCAN_FILTERED;
	if (!f.ev || (out->event = event_code(&s->tape[f.ev])) < 0)
		return BAIL;
	for (size_t k = 0; k < o->nkeys; k++) {
		const struct tok *t = &s->tape[f.key[k]];
		if (!f.key[k] || t->type != T_STR || !t->count)
			return BAIL;
		out->kval[k] = t->ptr;
		out->klen[k] = t->count;
	}
	if ((f.region && s->tape[f.region].type != T_STR) ||
	    (f.source && s->tape[f.source].type != T_STR))
		return BAIL;
	*old_img = f.old_img;
	*new_img = f.new_img;
	*region = f.region;
	if (get_image(s, old_img) || get_image(s, new_img))
		return BAIL;
	/* The view is NEW_AND_OLD_IMAGES: exactly the images the event implies. */
	bool want_old = out->event != DDA_EV_INSERT, want_new = out->event != DDA_EV_REMOVE;
	if (want_old != (*old_img != 0) || want_new != (*new_img != 0))
		return BAIL;
	return OK;
}

int dda__scan_seed(struct dda__scanner *s, const struct dda_decoder_opts *opts, const char *p,
		   size_t n, bool whole, struct dda__scan_out *out)
{
	struct lexer lx = {s, p, p + n, 0, false};
	s->ntok = 0;
	dda_buf_reset(&s->strs);
	if (dda_buf_grow(&s->strs, n))
		return DDA_SCAN_NOMEM;
	memset(out, 0, sizeof(*out));
	skip_ws(&lx);
	if (lx.p >= lx.end || *lx.p != '{')
		return DDA_SCAN_FALLBACK;
	lex_value(&lx);
	if (lx.fail)
		return DDA_SCAN_FALLBACK;
	out->consumed = (size_t)(lx.p - p);
	if (whole) {
		skip_ws(&lx);
		if (lx.p != lx.end)
			return DDA_SCAN_FALLBACK;
	}
	if (!names_ok(s))
		return DDA_SCAN_FALLBACK;
	uint32_t old_img = 0, new_img = 0, region = 0;
	int rc = seed_fields(s, opts, out, &old_img, &new_img, &region);
	if (rc)
		return rc == DDA_SCAN_FILTERED ? DDA_SCAN_FILTERED : DDA_SCAN_FALLBACK;
	if (old_img &&
	    (image_digest(s, old_img, out->old_digest) || !image_key_ok(s, opts, old_img, out)))
		return DDA_SCAN_FALLBACK;
	if (old_img && opts->raw_images) {
		out->old_raw = s->tape[old_img].ptr;
		out->old_raw_len = s->tape[old_img].off;
		out->old_size = dda__canon_item_size((const uint8_t *)s->ser.ptr, s->ser.len);
	}
	if (new_img &&
	    (image_digest(s, new_img, out->new_digest) || !image_key_ok(s, opts, new_img, out)))
		return DDA_SCAN_FALLBACK;
	if (new_img && opts->raw_images) {
		out->new_raw = s->tape[new_img].ptr;
		out->new_raw_len = s->tape[new_img].off;
		out->new_size = dda__canon_item_size((const uint8_t *)s->ser.ptr, s->ser.len);
	}
	if (region && opts->raw_images) {
		out->region = s->tape[region].ptr;
		out->region_len = s->tape[region].count;
	}
	out->has_old = old_img != 0;
	out->has_new = new_img != 0;
	return DDA_SCAN_RECORD;
}

/* ---- item size from the canonical serialization ---- */

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint32_t rd_u32(struct rd *r)
{
	if (r->end - r->p < 4) {
		r->bad = true;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
		     r->p[3];
	r->p += 4;
	return v;
}

/* bytes(x): returns x's length, leaves *x at its bytes. */
static uint32_t rd_bytes(struct rd *r, const uint8_t **x)
{
	uint32_t n = rd_u32(r);
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return 0;
	}
	*x = r->p;
	r->p += n;
	return n;
}

/* A canonical decimal's size: a byte per two significant digits, plus one. */
static uint64_t canon_number_size(const uint8_t *d, uint32_t n)
{
	uint32_t first = 0, last = 0, digits = 0;
	bool seen = false;
	for (uint32_t i = 0; i < n; i++) {
		if (d[i] < '1' || d[i] > '9')
			continue;
		if (!seen)
			first = i;
		seen = true;
		last = i;
	}
	if (!seen)
		return 1; /* zero: no significant digit */
	for (uint32_t i = first; i <= last; i++)
		digits += d[i] >= '0' && d[i] <= '9';
	return (digits + 1) / 2 + 1;
}

static uint64_t canon_value_size(struct rd *r, int depth)
{
	const uint8_t *x;
	if (r->p >= r->end || depth > 64) {
		r->bad = true;
		return 0;
	}
	uint8_t tag = *r->p++;
	uint64_t n = 0;
	uint32_t count;
	switch (tag) {
	case DDA_TAG_S:
	case DDA_TAG_B:
		return rd_bytes(r, &x);
	case DDA_TAG_N: {
		uint32_t len = rd_bytes(r, &x);
		return r->bad ? 0 : canon_number_size(x, len);
	}
	case DDA_TAG_BOOL:
		r->p += r->p < r->end;
		return 1;
	case DDA_TAG_NULL:
		return 1;
	case DDA_TAG_M:
		count = rd_u32(r);
		n = 3;
		for (uint32_t i = 0; i < count && !r->bad; i++) {
			n += 1 + rd_bytes(r, &x);
			n += canon_value_size(r, depth + 1);
		}
		return n;
	case DDA_TAG_L:
		count = rd_u32(r);
		n = 3;
		for (uint32_t i = 0; i < count && !r->bad; i++)
			n += 1 + canon_value_size(r, depth + 1);
		return n;
	case DDA_TAG_SS:
	case DDA_TAG_BS:
	case DDA_TAG_NS:
		count = rd_u32(r);
		for (uint32_t i = 0; i < count && !r->bad; i++) {
			uint32_t len = rd_bytes(r, &x);
			n += tag == DDA_TAG_NS ? canon_number_size(x, len) : len;
		}
		return n;
	}
	r->bad = true;
	return 0;
}

uint64_t dda__canon_item_size(const uint8_t *ser, size_t n)
{
	struct rd r = {ser, ser + n, false};
	const uint8_t *x;
	uint64_t size = 0;
	if (!n || *r.p++ != DDA_TAG_M)
		return 0;
	uint32_t count = rd_u32(&r);
	for (uint32_t i = 0; i < count && !r.bad; i++) {
		size += rd_bytes(&r, &x);
		size += canon_value_size(&r, 1);
	}
	return r.bad ? 0 : size;
}
