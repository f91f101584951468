/* Streaming parsers for S3's XML answers (see s3_xml.h). Element text is
 * collected per element; only the handful of element names each answer uses
 * are looked at, wherever they sit. */
#include "aws/s3_xml.h"

#include <expat.h>

/* Element text longer than this is not something S3 sends (keys are at most
 * 1024 bytes, encoded three times that). */
#define TEXT_MAX (16u << 10)

struct parse {
	XML_Parser p;
	struct dda_buf text;
	int depth;
	bool in_entry, url_encoded, refused;
	struct dda_s3_entry cur;
	struct dda_s3_listing *out;
	const char *want; /* dda__s3_parse_value: the element wanted */
	char *value;
	size_t value_cap;
	bool found;
	int rc;
};

static void on_doctype(void *ctx, const XML_Char *name, const XML_Char *sysid,
		       const XML_Char *pubid, int internal)
{
	struct parse *ps = ctx;
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)internal;
	ps->refused = true;
	XML_StopParser(ps->p, XML_FALSE);
}

static void on_text(void *ctx, const XML_Char *s, int len)
{
	struct parse *ps = ctx;
	if (dda_buf_add(&ps->text, s, (size_t)len)) {
		ps->rc = DDA_ETOOBIG;
		XML_StopParser(ps->p, XML_FALSE);
	}
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Form-decodes s in place ('+' is a space, %XX a byte), as S3 encodes keys
 * for encoding-type=url. */
static void form_decode(char *s)
{
	char *o = s;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%' && s[i + 1] && s[i + 2] && hexv(s[i + 1]) >= 0 &&
			   hexv(s[i + 2]) >= 0) {
			*o++ = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
}

/* A copy of the collected text. */
static char *take_text(struct parse *ps)
{
	return strndup(ps->text.ptr ? ps->text.ptr : "", ps->text.len);
}

static bool is(const XML_Char *name, const char *want)
{
	return !strcmp(name, want);
}

static void on_start(void *ctx, const XML_Char *name, const XML_Char **attrs)
{
	struct parse *ps = ctx;
	(void)attrs;
	ps->depth++;
	dda_buf_reset(&ps->text);
	if (ps->out && (is(name, "Contents") || is(name, "Version") || is(name, "DeleteMarker"))) {
		/* A nested or repeated start drops the unfinished entry. */
		free(ps->cur.key);
		free(ps->cur.version_id);
		free(ps->cur.etag);
		memset(&ps->cur, 0, sizeof(ps->cur));
		ps->cur.last_modified = DDA_TIME_NONE;
		ps->cur.delete_marker = is(name, "DeleteMarker");
		ps->in_entry = true;
	}
}

static void set_str(struct parse *ps, char **dst)
{
	free(*dst);
	*dst = take_text(ps);
	if (!*dst)
		ps->rc = DDA_ENOMEM;
}

static void entry_field(struct parse *ps, const XML_Char *name)
{
	struct dda_s3_entry *e = &ps->cur;
	const char *t = ps->text.ptr ? ps->text.ptr : "";
	if (is(name, "Key")) {
		set_str(ps, &e->key);
	} else if (is(name, "VersionId")) {
		set_str(ps, &e->version_id);
	} else if (is(name, "ETag")) {
		set_str(ps, &e->etag);
		size_t n = e->etag ? strlen(e->etag) : 0;
		if (n >= 2 && e->etag[0] == '"' && e->etag[n - 1] == '"') {
			memmove(e->etag, e->etag + 1, n - 2);
			e->etag[n - 2] = '\0';
		}
	} else if (is(name, "Size")) {
		e->size = strtoll(t, NULL, 10);
	} else if (is(name, "LastModified")) {
		if (dda_time_parse(t, ps->text.len, &e->last_modified))
			e->last_modified = DDA_TIME_NONE;
	} else if (is(name, "IsLatest")) {
		e->is_latest = !strcmp(t, "true");
	}
}

static void push_entry(struct parse *ps)
{
	struct dda_s3_listing *l = ps->out;
	ps->in_entry = false;
	if (!l || !ps->cur.key) {
		free(ps->cur.key);
		free(ps->cur.version_id);
		free(ps->cur.etag);
		memset(&ps->cur, 0, sizeof(ps->cur));
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct dda_s3_entry *nv = realloc(l->v, cap * sizeof(*nv));
		if (!nv) {
			ps->rc = DDA_ENOMEM;
			return;
		}
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = ps->cur;
	memset(&ps->cur, 0, sizeof(ps->cur));
}

static void on_end(void *ctx, const XML_Char *name)
{
	struct parse *ps = ctx;
	ps->depth--;
	struct dda_s3_listing *l = ps->out;
	if (ps->in_entry &&
	    (is(name, "Contents") || is(name, "Version") || is(name, "DeleteMarker")))
		push_entry(ps);
	else if (ps->in_entry)
		entry_field(ps, name);
	else if (l && is(name, "IsTruncated"))
		l->truncated = ps->text.ptr && !strcmp(ps->text.ptr, "true");
	else if (l && is(name, "NextContinuationToken"))
		set_str(ps, &l->next_token);
	else if (l && is(name, "NextKeyMarker"))
		set_str(ps, &l->next_key_marker);
	else if (l && is(name, "NextVersionIdMarker"))
		set_str(ps, &l->next_version_marker);
	else if (is(name, "EncodingType"))
		ps->url_encoded = ps->text.ptr && !strcmp(ps->text.ptr, "url");
	else if (ps->want && !ps->found && is(name, ps->want)) {
		snprintf(ps->value, ps->value_cap, "%s", ps->text.ptr ? ps->text.ptr : "");
		ps->found = true;
	}
	dda_buf_reset(&ps->text);
}

static int run(struct parse *ps, const char *xml, size_t n, struct dda_error *err)
{
	ps->p = XML_ParserCreate("UTF-8");
	if (!ps->p)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	dda_buf_init(&ps->text, TEXT_MAX);
	XML_SetUserData(ps->p, ps);
	XML_SetElementHandler(ps->p, on_start, on_end);
	XML_SetCharacterDataHandler(ps->p, on_text);
	XML_SetStartDoctypeDeclHandler(ps->p, on_doctype);
	enum XML_Status st = XML_Parse(ps->p, xml, (int)DDA_MIN(n, (size_t)INT32_MAX), XML_TRUE);
	int rc = ps->rc;
	if (!rc && ps->refused)
		rc = dda_error_set(err, DDA_EFORMAT, "refusing an S3 answer with a DOCTYPE");
	else if (!rc && st != XML_STATUS_OK)
		rc = dda_error_set(err, DDA_EFORMAT, "malformed S3 XML at line %lu: %s",
				   (unsigned long)XML_GetCurrentLineNumber(ps->p),
				   XML_ErrorString(XML_GetErrorCode(ps->p)));
	else if (rc)
		dda_error_set(err, rc, "cannot parse the S3 answer: %s", dda_strerror(rc));
	free(ps->cur.key);
	free(ps->cur.version_id);
	free(ps->cur.etag);
	dda_buf_release(&ps->text);
	XML_ParserFree(ps->p);
	return rc;
}

int dda__s3_parse_listing(const char *xml, size_t n, struct dda_s3_listing *out,
			  struct dda_error *err)
{
	struct parse ps = {.out = out};
	size_t first = out->n;
	out->truncated = false;
	free(out->next_token);
	free(out->next_key_marker);
	free(out->next_version_marker);
	out->next_token = out->next_key_marker = out->next_version_marker = NULL;
	int rc = run(&ps, xml, n, err);
	/* EncodingType may come after the entries (it does in some servers),
	 * so keys are decoded once the page is read. */
	for (size_t i = first; ps.url_encoded && i < out->n; i++)
		form_decode(out->v[i].key);
	if (ps.url_encoded && out->next_key_marker)
		form_decode(out->next_key_marker);
	return rc;
}

int dda__s3_parse_value(const char *xml, size_t n, const char *name, char *out, size_t cap,
			struct dda_error *err)
{
	struct parse ps = {.want = name, .value = out, .value_cap = cap};
	out[0] = '\0';
	return run(&ps, xml, n, err);
}

void dda__s3_parse_error(const char *xml, size_t n, char *code, size_t code_cap, char *msg,
			 size_t msg_cap)
{
	code[0] = msg[0] = '\0';
	/* Error bodies are small and flat: find the two elements by hand. */
	const char *tags[] = {"<Code>", "<Message>"};
	char *outs[] = {code, msg};
	size_t caps[] = {code_cap, msg_cap};
	for (int i = 0; i < 2; i++) {
		const char *s = xml ? strstr(xml, tags[i]) : NULL;
		if (!s || (size_t)(s - xml) >= n)
			continue;
		s += strlen(tags[i]);
		const char *e = strchr(s, '<');
		if (e)
			snprintf(outs[i], caps[i], "%.*s", (int)(e - s), s);
	}
}

void dda__s3_listing_release(struct dda_s3_listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].version_id);
		free(l->v[i].etag);
	}
	free(l->v);
	free(l->next_token);
	free(l->next_key_marker);
	free(l->next_version_marker);
	memset(l, 0, sizeof(*l));
}
