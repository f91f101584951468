/* The decoder's fast path for seed records (see scan.h), in one pass over
 * the record's bytes: a strict JSON scanner (UTF-8 checked, escapes
 * decoded, duplicate names refused, as jansson would) that serializes each
 * image as docs/canonical-form.md defines it while it reads it, entries in
 * the order they come, then put in name order as each map closes; the
 * image's digest follows at once. No token tape, no second walk, no
 * allocation per record once the buffers have grown. */
#include "record/scan.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Nesting of JSON outside the images (an unknown member's value) that the
 * scanner follows; deeper goes to the jansson path. Images are bounded by
 * DDA_MAX_NESTING. */
#define SCAN_MAX_DEPTH 80

/* A member name or a set element being ordered: its bytes, and for a map
 * entry the entry's serialization at ser[start..end). */
struct span {
	const char *name;
	size_t name_len;
	size_t start, end;
};

/* Maps and sets in records are small (an image has about ten attributes):
 * there, insertion sort beats qsort's calls through a pointer. */
#define SMALL 16

/* Images come in few shapes: the same attribute names in the same order,
 * record after record. The scanner keeps the last SHAPES shapes of maps of
 * at most SMALL entries whose names were out of order, with the order they
 * sort into, so a map of a known shape is put in order without sorting.
 * Names of more than SHAPE_BYTES bytes in all are sorted every time. */
#define SHAPES 4
#define SHAPE_BYTES 256

struct shape {
	uint8_t n; /* entries; 0: an empty slot */
	uint8_t perm[SMALL]; /* the entry at each place in name order */
	uint16_t len[SMALL]; /* the names' lengths, as they came */
	char names[SHAPE_BYTES]; /* and their bytes, back to back */
};

struct dda__scanner {
	struct dda_buf strs; /* decoded strings, reset per record */
	struct dda_buf ser;  /* serialization of one image */
	struct dda_buf num;  /* set elements */
	struct dda_buf tmp;  /* a map's entries while they are put in order */
	struct dda_buf why;
	struct span *spans;
	size_t nspans, cap_spans;
	struct dda__sha256 sha;
	dda__scan_image_fn *on_image;
	void *on_image_ctx;
	struct shape shapes[SHAPES];
	unsigned next_shape; /* the slot the next new shape takes */
};

struct dda__scanner *dda__scanner_new(void)
{
	struct dda__scanner *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	dda_buf_init(&s->strs, DDA_BUF_UNLIMITED);
	dda_buf_init(&s->ser, DDA_BUF_UNLIMITED);
	dda_buf_init(&s->num, DDA_BUF_UNLIMITED);
	dda_buf_init(&s->tmp, DDA_BUF_UNLIMITED);
	dda_buf_init(&s->why, 4096);
	return s;
}

void dda__scanner_free(struct dda__scanner *s)
{
	if (!s)
		return;
	free(s->spans);
	dda_buf_release(&s->strs);
	dda_buf_release(&s->ser);
	dda_buf_release(&s->num);
	dda_buf_release(&s->tmp);
	dda_buf_release(&s->why);
	dda__sha256_release(&s->sha);
	free(s);
}

void dda__scanner_on_image(struct dda__scanner *s, dda__scan_image_fn *fn, void *ctx)
{
	s->on_image = fn;
	s->on_image_ctx = ctx;
}

enum { OK = 0, BAIL = 1 };

/* A decoded string: its bytes (in the input, or in strs when it held
 * escapes). */
struct str {
	const char *ptr;
	size_t len;
	bool esc;
};

/* The record's members that the seed dialect reads. */
enum top_field { F_TS, F_EV, F_REGION, F_SOURCE, F_KEY0 };

/* One image as scanned: present, its text, digest, item size and the S
 * values of its key attributes. */
struct image {
	bool seen, present;
	const char *raw;
	size_t raw_len;
	bool compact; /* raw has no whitespace between tokens */
	uint8_t digest[DDA_DIGEST_LEN];
	uint64_t size;
	struct str key[DDA_MAX_KEY_ATTRS];
	bool has_key[DDA_MAX_KEY_ATTRS];
};

/* Runs of whitespace between the tokens of one image, at most this many:
 * taking them out gives the image's compact text without another pass over
 * its bytes. Past it, the image's text is given as it is. */
#define GAPS_MAX 256

struct scan {
	struct dda__scanner *s;
	const struct dda_decoder_opts *o;
	const char *p, *end;
	bool fail;
	bool sizes; /* item sizes are wanted (numbers' cost a scan) */
	const char *gap_base; /* the image being scanned for its gaps, or NULL */
	size_t ngaps;
	bool gaps_over;
	uint32_t gap[GAPS_MAX][2]; /* offset from gap_base, length */
	unsigned seen; /* bit per enum top_field */
	struct str field[F_KEY0 + DDA_MAX_KEY_ATTRS];
	struct image img[2]; /* old, new */
	size_t key_name_len[DDA_MAX_KEY_ATTRS];
};

static void note_gap(struct scan *sc, const char *start)
{
	if (sc->ngaps == GAPS_MAX) {
		sc->gaps_over = true;
		return;
	}
	sc->gap[sc->ngaps][0] = (uint32_t)(start - sc->gap_base);
	sc->gap[sc->ngaps][1] = (uint32_t)(sc->p - start);
	sc->ngaps++;
}

static inline void skip_ws(struct scan *sc)
{
	const char *start = sc->p;
	while (sc->p < sc->end &&
	       (*sc->p == ' ' || *sc->p == '\n' || *sc->p == '\t' || *sc->p == '\r'))
		sc->p++;
	if (sc->p != start && sc->gap_base)
		note_gap(sc, start);
}

/* Skips whitespace and takes the byte c, or fails. */
static inline bool expect(struct scan *sc, char c)
{
	skip_ws(sc);
	if (sc->p < sc->end && *sc->p == c) {
		sc->p++;
		return true;
	}
	sc->fail = true;
	return false;
}

/* Skips whitespace and takes the byte c if it is next. */
static inline bool take(struct scan *sc, char c)
{
	skip_ws(sc);
	if (sc->p < sc->end && *sc->p == c) {
		sc->p++;
		return true;
	}
	return false;
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
 * never reallocates: pointers into strs stay valid for the record. */
static void unescape(struct dda_buf *strs, const char *raw, size_t n, struct str *t)
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
	t->ptr = o;
	t->len = len;
	strs->len += len;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Skips the plain bytes of a string (printable ASCII but '"' and '\'),
 * eight at a time: the first byte of each word that needs a look sets the
 * high bit of its lane, and lanes above it may be set too (borrows), so the
 * lowest set lane is exact. Stops short of the end on a partial word. */
static inline const char *skip_plain8(const char *p, const char *end)
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

#ifdef __SSE2__
/* The same, sixteen bytes a step: a signed compare with 0x20 finds the
 * control bytes and the bytes of 0x80 and above (negative) at once. */
static inline const char *skip_plain(const char *p, const char *end)
{
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
		      space = _mm_set1_epi8(0x20);
	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
						      _mm_cmpeq_epi8(x, bslash)),
					 _mm_cmplt_epi8(x, space));
		unsigned bits = (unsigned)_mm_movemask_epi8(m);
		if (bits)
			return p + __builtin_ctz(bits);
		p += 16;
	}
	return skip_plain8(p, end);
}
#else
#define skip_plain skip_plain8
#endif

/* A string at sc->p (after whitespace), decoded into t. */
static bool scan_string(struct scan *sc, struct str *t)
{
	skip_ws(sc);
	if (sc->p >= sc->end || *sc->p != '"') {
		sc->fail = true;
		return false;
	}
	const char *start = ++sc->p, *p = start;
	bool esc = false;
	while (p < sc->end) {
		p = skip_plain(p, sc->end);
		if (p == sc->end)
			break;
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			t->ptr = start;
			t->len = (size_t)(p - start);
			t->esc = esc;
			if (esc)
				unescape(&sc->s->strs, start, t->len, t);
			sc->p = p + 1;
			return true;
		}
		if (c == '\\') {
			size_t n = escape_len(p + 1, sc->end);
			if (!n)
				break;
			esc = true;
			p += 1 + n;
		} else if (c < 0x20) {
			break;
		} else if (c < 0x80) {
			p++;
		} else {
			size_t n =
			    utf8_len((const unsigned char *)p, (const unsigned char *)sc->end);
			if (!n)
				break;
			p += n;
		}
	}
	sc->fail = true;
	return false;
}

/* A member name and its colon. jansson refuses NUL in names (only an
 * escape can put one there: raw control characters are refused). */
static bool scan_name(struct scan *sc, struct str *t)
{
	if (!scan_string(sc, t) || (t->esc && memchr(t->ptr, '\0', t->len)) || !expect(sc, ':')) {
		sc->fail = true;
		return false;
	}
	return true;
}

static inline bool str_is(const struct str *t, const char *lit, size_t n)
{
	return t->len == n && !memcmp(t->ptr, lit, n);
}

#define STR_EQ(t, lit) str_is((t), lit, sizeof(lit) - 1)

/* memcmp order of two names, a proper prefix first. Inline: attribute
 * names and set elements are short and mostly differ in their first bytes,
 * where a call to memcmp costs more than the comparison. */
static inline int cmp_names(const char *a, size_t an, const char *b, size_t bn)
{
	size_t n = DDA_MIN(an, bn);
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
	return an < bn ? -1 : an > bn;
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

/* Puts spans[base..nspans) in name order; sorted says they are already
 * strictly increasing. Returns BAIL on a duplicate. */
static int order_spans(struct dda__scanner *s, size_t base, bool sorted)
{
	size_t n = s->nspans - base;
	if (sorted || n < 2)
		return OK;
	struct span *a = s->spans + base;
	sort_spans(a, n);
	for (size_t k = 1; k < n; k++)
		if (!cmp_spans(&a[k - 1], &a[k]))
			return BAIL;
	return OK;
}

/* The known shape of the n (2 to SMALL) entries at a: same names, same
 * order. Such a map has no duplicate names: its shape was learnt from one
 * that had none. */
static const struct shape *find_shape(const struct dda__scanner *s, const struct span *a,
				      size_t n)
{
	for (size_t i = 0; i < SHAPES; i++) {
		const struct shape *sh = &s->shapes[i];
		if (sh->n != n)
			continue;
		const char *p = sh->names;
		size_t k = 0;
		for (; k < n && a[k].name_len == sh->len[k] && !memcmp(a[k].name, p, sh->len[k]);
		     k++)
			p += sh->len[k];
		if (k == n)
			return sh;
	}
	return NULL;
}

/* Sorts the n (2 to SMALL) entries at a into perm (the entry at each
 * place) and keeps their shape when the names fit. BAIL on a duplicate. */
static int learn_shape(struct dda__scanner *s, const struct span *a, size_t n, uint8_t *perm)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		for (; j && cmp_spans(&a[perm[j - 1]], &a[i]) > 0; j--)
			perm[j] = perm[j - 1];
		perm[j] = (uint8_t)i;
	}
	size_t bytes = 0;
	for (size_t k = 0; k < n; k++) {
		if (k && !cmp_spans(&a[perm[k - 1]], &a[perm[k]]))
			return BAIL;
		bytes += a[k].name_len;
	}
	if (bytes > SHAPE_BYTES)
		return OK;
	struct shape *sh = &s->shapes[s->next_shape++ % SHAPES];
	char *p = sh->names;
	for (size_t k = 0; k < n; k++) {
		sh->len[k] = (uint16_t)a[k].name_len;
		memcpy(p, a[k].name, a[k].name_len);
		p += a[k].name_len;
	}
	memcpy(sh->perm, perm, n);
	sh->n = (uint8_t)n;
	return OK;
}

/* Puts a map's entries, spans[base..nspans), in name order, by their
 * shape's order when it is known; sorted says they already are in order.
 * Returns BAIL on a duplicate name, as order_spans does. */
static int order_map(struct dda__scanner *s, size_t base, bool sorted)
{
	size_t n = s->nspans - base;
	if (sorted || n < 2 || n > SMALL)
		return order_spans(s, base, sorted);
	struct span *a = s->spans + base, was[SMALL];
	uint8_t learnt[SMALL];
	const struct shape *sh = find_shape(s, a, n);
	const uint8_t *perm = sh ? sh->perm : learnt;
	if (!sh && learn_shape(s, a, n, learnt))
		return BAIL;
	memcpy(was, a, n * sizeof(*a));
	for (size_t k = 0; k < n; k++)
		a[k] = was[perm[k]];
	return OK;
}

/* Spans form a stack shared by nested maps, sets and objects. */
static int grow_spans(struct dda__scanner *s)
{
	size_t cap = s->cap_spans ? s->cap_spans * 2 : 64;
	struct span *ns = realloc(s->spans, cap * sizeof(*ns));
	if (!ns)
		return BAIL;
	s->spans = ns;
	s->cap_spans = cap;
	return OK;
}

/* Pushes a span, noting (with sorted) whether the names since base are
 * still strictly in order. Fields are stored one by one: a span built
 * whole from a name just written costs a store-forwarding stall per entry
 * (measured: a third of the map's time). */
static inline int push_span(struct dda__scanner *s, size_t base, const char *name, size_t len,
			    size_t start, size_t end, bool *sorted)
{
	if (s->nspans == s->cap_spans && grow_spans(s))
		return BAIL;
	struct span *sp = &s->spans[s->nspans];
	sp->name = name;
	sp->name_len = len;
	sp->start = start;
	sp->end = end;
	if (sorted && *sorted && s->nspans > base && cmp_spans(sp - 1, sp) >= 0)
		*sorted = false;
	s->nspans++;
	return OK;
}

/* ---- JSON the seed dialect does not read: validated and skipped ---- */

static void skip_value(struct scan *sc, int depth);

static void skip_container(struct scan *sc, bool obj, int depth)
{
	struct dda__scanner *s = sc->s;
	size_t base = s->nspans;
	bool sorted = true;
	char close = obj ? '}' : ']';
	sc->p++;
	if (depth > SCAN_MAX_DEPTH) {
		sc->fail = true;
		return;
	}
	if (take(sc, close))
		return;
	do {
		if (obj) {
			struct str name;
			if (!scan_name(sc, &name) ||
			    push_span(s, base, name.ptr, name.len, 0, 0, &sorted)) {
				sc->fail = true;
				return;
			}
		}
		skip_value(sc, depth + 1);
	} while (!sc->fail && take(sc, ','));
	if (!sc->fail && expect(sc, close) && obj && order_spans(s, base, sorted))
		sc->fail = true;
	s->nspans = base;
}

static void skip_literal(struct scan *sc, const char *word, size_t n)
{
	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, word, n))
		sc->fail = true;
	else
		sc->p += n;
}

static void skip_value(struct scan *sc, int depth)
{
	struct str t;
	skip_ws(sc);
	if (sc->p >= sc->end) {
		sc->fail = true;
		return;
	}
	switch (*sc->p) {
	case '{':
		skip_container(sc, true, depth);
		return;
	case '[':
		skip_container(sc, false, depth);
		return;
	case '"':
		scan_string(sc, &t);
		return;
	case 't':
		skip_literal(sc, "true", 4);
		return;
	case 'f':
		skip_literal(sc, "false", 5);
		return;
	case 'n':
		skip_literal(sc, "null", 4);
		return;
	}
	/* Numbers never occur in seed records (values are DynamoDB JSON
	 * strings), and jansson's range rules for them are its own. */
	sc->fail = true;
}

/* ---- images, serialized as they are read ---- */

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

/* Rewrites the u32 at `at` (after a tag) with v. */
static inline void set_u32(struct dda_buf *b, size_t at, size_t v)
{
	unsigned char *p = (unsigned char *)b->ptr + at;
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* An N's size (canon_number_size's rule) from the canonical text the
 * scanner has just written: there, only the point can stand between the
 * first and the last significant digit, and nothing follows the last but
 * zeros. */
static inline uint64_t number_size(const uint8_t *d, size_t n)
{
	size_t i = 0, j = n, digits = 0;
	while (i < n && (d[i] == '-' || d[i] == '0' || d[i] == '.'))
		i++;
	if (i == n)
		return 1; /* zero */
	while (d[j - 1] == '0')
		j--;
	for (size_t k = i; k < j; k++)
		digits += d[k] != '.';
	return (digits + 1) / 2 + 1;
}

/* A scalar's canonical bytes (S, N or B) appended to out. */
static int scalar_bytes(struct dda__scanner *s, const struct str *t, char tag, struct dda_buf *out)
{
	if (tag == 'S')
		return out_add(out, t->ptr, t->len);
	dda_buf_reset(&s->why);
	if (tag == 'N')
		return dda_number_canon(t->ptr, t->len, out, &s->why) ? BAIL : OK;
	return dda_base64_decode(t->ptr, t->len, out) ? BAIL : OK;
}

/* SS, NS, BS: elements canonicalized, sorted, no duplicates, not empty.
 * The set's item size goes to *size. */
static int ser_set(struct scan *sc, char tag, uint8_t code, uint64_t *size)
{
	struct dda__scanner *s = sc->s;
	if (!expect(sc, '[') || take(sc, ']'))
		return BAIL; /* an empty set: the jansson path says */
	/* Elements go to num back to back; spans index them. */
	dda_buf_reset(&s->num);
	size_t base = s->nspans;
	bool sorted = true;
	do {
		struct str t;
		/* Empty set elements: left to the jansson path to judge. */
		if (!scan_string(sc, &t) || !t.len)
			return BAIL;
		size_t start = s->num.len;
		if (scalar_bytes(s, &t, tag, &s->num))
			return BAIL;
		/* Names are set when the elements are in place: num may move. */
		if (push_span(s, base, NULL, 0, start, s->num.len, NULL))
			return BAIL;
	} while (take(sc, ','));
	if (!expect(sc, ']'))
		return BAIL;
	size_t n = s->nspans - base;
	for (size_t k = base; k < s->nspans; k++) {
		struct span *sp = &s->spans[k];
		sp->name = s->num.ptr + sp->start;
		sp->name_len = sp->end - sp->start;
		if (k > base && sorted && cmp_spans(&s->spans[k - 1], sp) >= 0)
			sorted = false;
	}
	/* A duplicate: INVALID_VALUE, the jansson path says. */
	int rc = order_spans(s, base, sorted) || out_head(&s->ser, code, n) ? BAIL : OK;
	uint64_t sz = 0;
	for (size_t k = base; k < s->nspans && rc == OK; k++) {
		const struct span *sp = &s->spans[k];
		sz += tag != 'N' ? sp->name_len
		      : sc->sizes ? number_size((const uint8_t *)sp->name, sp->name_len) : 0;
		rc = out_bytes(&s->ser, sp->name, sp->name_len);
	}
	s->nspans = base;
	*size = sz;
	return rc;
}

static int ser_value(struct scan *sc, int depth, uint64_t *size);

/* Moves the entries of the map whose head is at ser[head] into name order:
 * they were appended as they came, each a span (name, bytes). */
static int place_entries(struct dda__scanner *s, size_t base, size_t head)
{
	size_t first = head + 5, len = s->ser.len - first;
	dda_buf_reset(&s->tmp);
	if (out_add(&s->tmp, s->ser.ptr + first, len))
		return BAIL;
	char *o = s->ser.ptr + first;
	for (size_t k = base; k < s->nspans; k++) {
		const struct span *sp = &s->spans[k];
		size_t n = sp->end - sp->start;
		memcpy(o, s->tmp.ptr + (sp->start - first), n);
		o += n;
	}
	return OK;
}

/* If name is a key attribute of the image, its value (serialized at
 * ser[value..]) must be an S; its bytes are kept in strs, as ser moves. */
static int note_key(struct scan *sc, struct image *img, const struct str *name, size_t value)
{
	struct dda__scanner *s = sc->s;
	for (size_t k = 0; k < sc->o->nkeys; k++) {
		if (!str_is(name, sc->o->key_names[k], sc->key_name_len[k]))
			continue;
		size_t len = s->ser.len - value - 5;
		if ((uint8_t)s->ser.ptr[value] != DDA_TAG_S || s->strs.cap - s->strs.len <= len)
			return BAIL;
		memcpy(s->strs.ptr + s->strs.len, s->ser.ptr + value + 5, len);
		img->has_key[k] = true;
		img->key[k].ptr = s->strs.ptr + s->strs.len;
		img->key[k].len = len;
		s->strs.len += len;
	}
	return OK;
}

/* An M (or the image itself), at sc->p: entries are serialized as they
 * come, then put in name order. With keys, the S values of the image's
 * key attributes are noted in it. Its item size goes to *size: names and
 * values, and inside the item (depth > 1) 3 bytes for the M and one for
 * each entry, as DynamoDB counts them. */
static int ser_map(struct scan *sc, int depth, struct image *keys, uint64_t *size)
{
	struct dda__scanner *s = sc->s;
	if (!expect(sc, '{'))
		return BAIL;
	size_t head = s->ser.len, base = s->nspans;
	bool sorted = true;
	uint64_t sz = 0;
	if (out_head(&s->ser, DDA_TAG_M, 0))
		return BAIL;
	if (!take(sc, '}')) {
		do {
			struct str name;
			size_t start = s->ser.len;
			if (!scan_name(sc, &name) || out_bytes(&s->ser, name.ptr, name.len))
				return BAIL;
			size_t value = s->ser.len;
			uint64_t vsz;
			if (ser_value(sc, depth, &vsz))
				return BAIL;
			sz += name.len + vsz;
			if (push_span(s, base, name.ptr, name.len, start, s->ser.len, &sorted))
				return BAIL;
			if (keys && note_key(sc, keys, &name, value))
				return BAIL;
		} while (take(sc, ','));
		if (!expect(sc, '}'))
			return BAIL;
	}
	size_t count = s->nspans - base;
	set_u32(&s->ser, head + 1, count);
	if (order_map(s, base, sorted) || (!sorted && place_entries(s, base, head)))
		return BAIL;
	s->nspans = base;
	*size = depth > 1 ? sz + 3 + count : sz;
	return OK;
}

/* An L; its item size (3 bytes, one an element, the elements) to *size. */
static int ser_list(struct scan *sc, int depth, uint64_t *size)
{
	struct dda__scanner *s = sc->s;
	size_t head = s->ser.len, count = 0;
	uint64_t sz = 3;
	if (!expect(sc, '[') || out_head(&s->ser, DDA_TAG_L, 0))
		return BAIL;
	if (!take(sc, ']')) {
		do {
			uint64_t vsz;
			if (ser_value(sc, depth + 1, &vsz))
				return BAIL;
			sz += 1 + vsz;
			count++;
		} while (take(sc, ','));
		if (!expect(sc, ']'))
			return BAIL;
	}
	set_u32(&s->ser, head + 1, count);
	*size = sz;
	return OK;
}

static int ser_literal(struct scan *sc, uint8_t tag, bool null)
{
	skip_ws(sc);
	if (sc->p < sc->end && *sc->p == 't') {
		skip_literal(sc, "true", 4);
		unsigned char b[2] = {tag, 1};
		return sc->fail || out_add(&sc->s->ser, b, null ? 1 : 2) ? BAIL : OK;
	}
	if (sc->p < sc->end && *sc->p == 'f' && !null) {
		skip_literal(sc, "false", 5);
		unsigned char b[2] = {tag, 0};
		return sc->fail || out_add(&sc->s->ser, b, 2) ? BAIL : OK;
	}
	return BAIL;
}

/* A string AttributeValue: S, N or B; its item size to *size (an N's from
 * its canonical text). */
static int ser_scalar(struct scan *sc, char c, uint64_t *size)
{
	struct dda__scanner *s = sc->s;
	struct str t;
	if (!scan_string(sc, &t))
		return BAIL;
	if (c == 'S') {
		*size = t.len;
		return out_head(&s->ser, DDA_TAG_S, t.len) || out_add(&s->ser, t.ptr, t.len) ? BAIL
											: OK;
	}
	if (out_head(&s->ser, c == 'N' ? DDA_TAG_N : DDA_TAG_B, 0))
		return BAIL;
	size_t at = s->ser.len - 4;
	if (scalar_bytes(s, &t, c, &s->ser))
		return BAIL;
	dda__patch_u32(&s->ser, at);
	const uint8_t *v = (const uint8_t *)s->ser.ptr + at + 4;
	uint32_t n = (uint32_t)(s->ser.len - at - 4);
	*size = c != 'N' ? n : sc->sizes ? number_size(v, n) : 0;
	return OK;
}

/* An AttributeValue's type name and its colon. Most are one letter (S, N,
 * M, L, B), taken without the string scanner: one printable ASCII byte
 * that is neither a quote nor a backslash is a whole, valid string. */
static bool scan_tag(struct scan *sc, struct str *tag)
{
	skip_ws(sc);
	const char *q = sc->p;
	if (sc->end - q < 3 || q[0] != '"' || q[2] != '"' || q[1] <= ' ' || q[1] > '~' ||
	    q[1] == '"' || q[1] == '\\')
		return scan_name(sc, tag);
	tag->ptr = q + 1;
	tag->len = 1;
	tag->esc = false;
	sc->p = q + 3;
	return expect(sc, ':');
}

/* One AttributeValue ({"TYPE": value}) at nesting depth `depth` (an
 * attribute of the item is at depth 1). */
static int ser_value(struct scan *sc, int depth, uint64_t *size)
{
	struct str tag;
	if (depth > DDA_MAX_NESTING || !expect(sc, '{') || !scan_tag(sc, &tag))
		return BAIL;
	int rc = BAIL;
	if (tag.len == 1) {
		switch (tag.ptr[0]) {
		case 'S':
		case 'N':
		case 'B':
			rc = ser_scalar(sc, tag.ptr[0], size);
			break;
		case 'M':
			rc = ser_map(sc, depth + 1, NULL, size);
			break;
		case 'L':
			rc = ser_list(sc, depth, size);
			break;
		}
	} else if (STR_EQ(&tag, "SS")) {
		rc = ser_set(sc, 'S', DDA_TAG_SS, size);
	} else if (STR_EQ(&tag, "NS")) {
		rc = ser_set(sc, 'N', DDA_TAG_NS, size);
	} else if (STR_EQ(&tag, "BS")) {
		rc = ser_set(sc, 'B', DDA_TAG_BS, size);
	} else if (STR_EQ(&tag, "BOOL")) {
		rc = ser_literal(sc, DDA_TAG_BOOL, false);
		*size = 1;
	} else if (STR_EQ(&tag, "NULL")) {
		rc = ser_literal(sc, DDA_TAG_NULL, true);
		*size = 1;
	}
	/* One member only: a second one is the jansson path's to judge. */
	return rc || !expect(sc, '}') ? BAIL : OK;
}

/* The image's text without the whitespace between its tokens, in strs
 * (sized for it: strs never moves while a record is scanned), unless it
 * had too many runs of it to note. */
static void compact_image(struct scan *sc, struct image *img)
{
	struct dda_buf *strs = &sc->s->strs;
	if (sc->gaps_over)
		return;
	img->compact = true;
	if (!sc->ngaps)
		return;
	if (img->raw_len >= strs->cap - strs->len) {
		img->compact = false;
		return;
	}
	char *d = strs->ptr + strs->len, *start = d;
	size_t at = 0;
	for (size_t i = 0; i < sc->ngaps; i++) {
		size_t to = sc->gap[i][0];
		memcpy(d, img->raw + at, to - at);
		d += to - at;
		at = to + sc->gap[i][1];
	}
	memcpy(d, img->raw + at, img->raw_len - at);
	d += img->raw_len - at;
	strs->len += (size_t)(d - start);
	img->raw = start;
	img->raw_len = (size_t)(d - start);
}

/* An image member's value: null (none) or an image, digested at once. */
static int scan_image(struct scan *sc, struct image *img)
{
	struct dda__scanner *s = sc->s;
	if (img->seen)
		return BAIL; /* a duplicate member */
	img->seen = true;
	skip_ws(sc);
	if (sc->p < sc->end && *sc->p == 'n') {
		skip_literal(sc, "null", 4);
		return sc->fail ? BAIL : OK;
	}
	img->raw = sc->p;
	dda_buf_reset(&s->ser);
	if (sc->o->raw_images && (size_t)(sc->end - sc->p) <= UINT32_MAX) {
		sc->gap_base = sc->p;
		sc->ngaps = 0;
		sc->gaps_over = false;
	}
	int rc = ser_map(sc, 1, img, &img->size);
	sc->gap_base = NULL;
	if (rc)
		return BAIL;
	img->raw_len = (size_t)(sc->p - img->raw);
	img->present = true;
	if (s->on_image)
		s->on_image(s->on_image_ctx, (const uint8_t *)s->ser.ptr, s->ser.len, img->size);
	if (sc->o->raw_images)
		compact_image(sc, img);
	for (size_t k = 0; k < sc->o->nkeys; k++)
		if (!img->has_key[k])
			return BAIL;
	return dda__sha256_digest(&s->sha, s->ser.ptr, s->ser.len, img->digest) ? BAIL : OK;
}

/* ---- the record ---- */

/* A string member the seed dialect reads; anything but a string, or a
 * second one, is the jansson path's to judge. */
static int scan_field(struct scan *sc, unsigned f)
{
	if (sc->seen & 1u << f)
		return BAIL;
	sc->seen |= 1u << f;
	return scan_string(sc, &sc->field[f]) ? OK : BAIL;
}

/* Which of the seed dialect's members a name is: a field, an image (-2 for
 * old, -3 for new), another dialect's (-4), or none (-1). */
static int known_member(const struct scan *sc, const struct str *n)
{
	switch (n->len ? n->ptr[0] : 0) {
	case 't':
		return STR_EQ(n, "timestamp") ? F_TS : -1;
	case 'e':
		return STR_EQ(n, "eventName") ? F_EV : STR_EQ(n, "eventSource") ? F_SOURCE : -1;
	case 'a':
		if (STR_EQ(n, "awsRegion"))
			return F_REGION;
		break;
	case 'o':
		if (STR_EQ(n, "oldImage"))
			return -2;
		break;
	case 'n':
		if (STR_EQ(n, "newImage"))
			return -3;
		break;
	case 'd':
	case 'M':
	case 'R':
		if (STR_EQ(n, "dynamodb") || STR_EQ(n, "Metadata") || STR_EQ(n, "Records"))
			return -4;
		break;
	}
	for (size_t k = 0; k < sc->o->nkeys; k++)
		if (str_is(n, sc->o->key_fields[k], strlen(sc->o->key_fields[k])))
			return F_KEY0 + (int)k;
	return -1;
}

/* The record object: every member read once, the ones the seed dialect
 * does not read validated and skipped (their names checked for
 * duplicates). */
static int scan_record(struct scan *sc)
{
	struct dda__scanner *s = sc->s;
	size_t base = s->nspans;
	bool sorted = true;
	sc->p++; /* '{' */
	if (take(sc, '}'))
		return OK;
	do {
		struct str name;
		if (!scan_name(sc, &name))
			return BAIL;
		int f = known_member(sc, &name);
		int rc = OK;
		if (f >= 0)
			rc = scan_field(sc, (unsigned)f);
		else if (f == -2 || f == -3)
			rc = scan_image(sc, &sc->img[f == -2 ? 0 : 1]);
		else if (f == -4)
			return BAIL; /* another dialect: the jansson path */
		else if (push_span(s, base, name.ptr, name.len, 0, 0, &sorted))
			return BAIL;
		else
			skip_value(sc, 2);
		if (rc || sc->fail)
			return BAIL;
	} while (take(sc, ','));
	int rc = expect(sc, '}') && !order_spans(s, base, sorted) ? OK : BAIL;
	s->nspans = base;
	return rc;
}

static int event_code(const struct str *t)
{
	if (STR_EQ(t, "INSERT"))
		return DDA_EV_INSERT;
	if (STR_EQ(t, "MODIFY"))
		return DDA_EV_MODIFY;
	if (STR_EQ(t, "REMOVE"))
		return DDA_EV_REMOVE;
	return -1;
}

/* The image's key attributes must be S values equal to the record's. */
static bool image_key_ok(const struct scan *sc, const struct image *img,
			 const struct dda__scan_out *out)
{
	for (size_t k = 0; k < sc->o->nkeys; k++)
		if (img->key[k].len != out->klen[k] ||
		    memcmp(img->key[k].ptr, out->kval[k], out->klen[k]))
			return false;
	return true;
}

/* The seed dialect's rules, as decode.c applies them. */
static int seed_fields(struct scan *sc, struct dda__scan_out *out)
{
	const struct dda_decoder_opts *o = sc->o;
	const struct str *ts = &sc->field[F_TS];
	if (!(sc->seen & 1u << F_TS) || dda_time_parse(ts->ptr, ts->len, &out->time))
		return DDA_SCAN_FALLBACK;
	if (!dda_range_contains(&o->range, out->time))
		return DDA_SCAN_FILTERED;
	if (!(sc->seen & 1u << F_EV) || (out->event = event_code(&sc->field[F_EV])) < 0)
		return DDA_SCAN_FALLBACK;
	for (size_t k = 0; k < o->nkeys; k++) {
		const struct str *t = &sc->field[F_KEY0 + k];
		if (!(sc->seen & 1u << (F_KEY0 + k)) || !t->len)
			return DDA_SCAN_FALLBACK;
		out->kval[k] = t->ptr;
		out->klen[k] = t->len;
	}
	/* The view is NEW_AND_OLD_IMAGES: exactly the images the event implies. */
	bool want_old = out->event != DDA_EV_INSERT, want_new = out->event != DDA_EV_REMOVE;
	const struct image *old_img = &sc->img[0], *new_img = &sc->img[1];
	if (want_old != old_img->present || want_new != new_img->present)
		return DDA_SCAN_FALLBACK;
	if ((old_img->present && !image_key_ok(sc, old_img, out)) ||
	    (new_img->present && !image_key_ok(sc, new_img, out)))
		return DDA_SCAN_FALLBACK;
	return DDA_SCAN_RECORD;
}

static void fill_out(const struct scan *sc, struct dda__scan_out *out)
{
	const struct image *old_img = &sc->img[0], *new_img = &sc->img[1];
	out->has_old = old_img->present;
	out->has_new = new_img->present;
	if (old_img->present)
		memcpy(out->old_digest, old_img->digest, DDA_DIGEST_LEN);
	if (new_img->present)
		memcpy(out->new_digest, new_img->digest, DDA_DIGEST_LEN);
	if (!sc->o->raw_images)
		return;
	if (old_img->present) {
		out->old_raw = old_img->raw;
		out->old_raw_len = old_img->raw_len;
		out->old_raw_compact = old_img->compact;
		out->old_size = old_img->size;
	}
	if (new_img->present) {
		out->new_raw = new_img->raw;
		out->new_raw_len = new_img->raw_len;
		out->new_raw_compact = new_img->compact;
		out->new_size = new_img->size;
	}
	if (sc->seen & 1u << F_REGION) {
		out->region = sc->field[F_REGION].ptr;
		out->region_len = sc->field[F_REGION].len;
	}
}

int dda__scan_seed(struct dda__scanner *s, const struct dda_decoder_opts *opts, const char *p,
		   size_t n, bool whole, struct dda__scan_out *out)
{
	struct scan sc;
	sc.s = s;
	sc.o = opts;
	sc.p = p;
	sc.end = p + n;
	sc.fail = false;
	sc.sizes = opts->raw_images || s->on_image;
	sc.gap_base = NULL;
	sc.seen = 0;
	memset(sc.img, 0, sizeof(sc.img));
	for (size_t k = 0; k < opts->nkeys; k++)
		sc.key_name_len[k] = strlen(opts->key_names[k]);
	s->nspans = 0;
	dda_buf_reset(&s->strs);
	/* Decoded strings never need more than the record's bytes, nor do
	 * the images' key values (distinct strings of it), nor the images'
	 * compact text: strs never moves while the record is scanned, so
	 * pointers into it stay valid. */
	if (n > SIZE_MAX / 3 - 1 || dda_buf_grow(&s->strs, 3 * n + 1))
		return DDA_SCAN_NOMEM;
	memset(out, 0, sizeof(*out));
	skip_ws(&sc);
	if (sc.p >= sc.end || *sc.p != '{')
		return DDA_SCAN_FALLBACK;
	if (scan_record(&sc) || sc.fail)
		return DDA_SCAN_FALLBACK;
	out->consumed = (size_t)(sc.p - p);
	if (whole) {
		skip_ws(&sc);
		if (sc.p != sc.end)
			return DDA_SCAN_FALLBACK;
	}
	int rc = seed_fields(&sc, out);
	if (rc == DDA_SCAN_RECORD)
		fill_out(&sc, out);
	return rc;
}

/* ---- item size from the canonical serialization: the reference the
 * sizes counted while serializing are checked against ---- */

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
