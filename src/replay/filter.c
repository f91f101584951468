/* Lambda's event filtering (filter criteria) applied to synthetic stream
 * records: a pattern is an object whose leaves are arrays of matchers; a
 * record passes when every field of the pattern matches (AND), a field
 * matches when one of its matchers does (OR), "$or" takes alternative
 * sub-patterns, and a record passes the criteria when any filter matches.
 * As in Lambda, "exists" looks at leaf nodes only, and number literals
 * compare by their text. One extension: numeric matchers also accept
 * DynamoDB "N" strings (and the strings of an "NS"), which Lambda compares
 * as text only. */
#include "replay/replay.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dda_filter {
	json_t *patterns; /* array of pattern objects */
};

#define MAX_DEPTH 32

/* ---- validation: a bad pattern is a usage error, said with its path ---- */

static int bad(struct dda_error *err, const char *path, const char *why)
{
	return dda_error_set(err, DDA_EINVAL, "invalid filter at '%s': %s", path, why);
}

static bool numeric_op(const char *op)
{
	return !strcmp(op, "=") || !strcmp(op, "<") || !strcmp(op, "<=") || !strcmp(op, ">") ||
	       !strcmp(op, ">=");
}

static int check_numeric(const json_t *v, const char *path, struct dda_error *err)
{
	size_t n = json_is_array(v) ? json_array_size(v) : 0;
	if (n == 0 || n % 2 || n > 4)
		return bad(err, path, "\"numeric\" takes one or two operator/number pairs");
	for (size_t i = 0; i < n; i += 2) {
		const json_t *op = json_array_get(v, i), *num = json_array_get(v, i + 1);
		if (!json_is_string(op) || !numeric_op(json_string_value(op)))
			return bad(err, path, "a \"numeric\" operator is one of = < <= > >=");
		if (!json_is_number(num))
			return bad(err, path, "a \"numeric\" operand is a number");
	}
	if (n == 4 && !strcmp(json_string_value(json_array_get(v, 0)), "="))
		return bad(err, path, "\"numeric\" with \"=\" takes one number");
	return 0;
}

/* A non-empty list whose elements all pass is(). */
static bool list_of(const json_t *v, int (*is)(const json_t *))
{
	size_t i;
	const json_t *e;
	if (!json_is_array(v) || !json_array_size(v))
		return false;
	json_array_foreach(v, i, e) if (!is(e)) return false;
	return true;
}

static int is_string(const json_t *v)
{
	return json_is_string(v);
}

static int is_number(const json_t *v)
{
	return json_is_number(v);
}

/* The forms the documentation gives: a string or a number, a list of
 * strings or of numbers, a single non-empty prefix or suffix (not a
 * list), equals-ignore-case with a string or a list of strings. */
static int check_anything_but(const json_t *v, const char *path, struct dda_error *err)
{
	if (json_is_string(v) || json_is_number(v) || list_of(v, is_string) ||
	    list_of(v, is_number))
		return 0;
	if (json_is_object(v) && json_object_size(v) == 1) {
		const char *op = json_object_iter_key(json_object_iter((json_t *)v));
		const json_t *arg = json_object_iter_value(json_object_iter((json_t *)v));
		if ((!strcmp(op, "prefix") || !strcmp(op, "suffix")) && json_is_string(arg) &&
		    json_string_length(arg))
			return 0;
		if (!strcmp(op, "equals-ignore-case") &&
		    (json_is_string(arg) || list_of(arg, is_string)))
			return 0;
	}
	return bad(err, path,
		   "\"anything-but\" takes a string, a number, a list of strings or of numbers, "
		   "{\"prefix\": S}, {\"suffix\": S} or {\"equals-ignore-case\": S or [S, ...]}");
}

static int check_matcher(const json_t *m, const char *path, struct dda_error *err)
{
	if (!json_is_object(m))
		return json_is_array(m) ? bad(err, path, "matchers cannot be nested lists") : 0;
	if (json_object_size(m) != 1)
		return bad(err, path, "a matcher object has exactly one operator");
	const char *op = json_object_iter_key(json_object_iter((json_t *)m));
	const json_t *v = json_object_iter_value(json_object_iter((json_t *)m));
	if (!strcmp(op, "prefix") || !strcmp(op, "suffix") || !strcmp(op, "equals-ignore-case"))
		return json_is_string(v) ? 0 : bad(err, path, "this operator takes a string");
	if (!strcmp(op, "exists"))
		return json_is_boolean(v) ? 0 : bad(err, path, "\"exists\" takes true or false");
	if (!strcmp(op, "numeric"))
		return check_numeric(v, path, err);
	if (!strcmp(op, "anything-but"))
		return check_anything_but(v, path, err);
	char why[160];
	snprintf(why, sizeof(why), "unknown operator \"%.64s\"", op);
	return bad(err, path, why);
}

static int check_pattern(const json_t *pat, const char *path, int depth, struct dda_error *err)
{
	const char *k;
	const json_t *v;
	if (!json_is_object(pat) || !json_object_size(pat))
		return bad(err, path, "a pattern is a non-empty JSON object");
	if (depth > MAX_DEPTH)
		return bad(err, path, "nested too deeply");
	json_object_foreach((json_t *)pat, k, v)
	{
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		if (!strcmp(k, "$or")) {
			size_t i;
			const json_t *alt;
			if (!json_is_array(v) || json_array_size(v) < 2)
				return bad(err, sub, "\"$or\" lists at least two patterns");
			json_array_foreach(v, i, alt)
			{
				int rc = check_pattern(alt, sub, depth + 1, err);
				if (rc)
					return rc;
			}
		} else if (json_is_object(v)) {
			int rc = check_pattern(v, sub, depth + 1, err);
			if (rc)
				return rc;
		} else if (json_is_array(v)) {
			size_t i;
			const json_t *m;
			if (!json_array_size(v))
				return bad(err, sub, "an empty list matches nothing");
			json_array_foreach(v, i, m)
			{
				int rc = check_matcher(m, sub, err);
				if (rc)
					return rc;
			}
		} else {
			return bad(err, sub, "a field's matchers are a list, e.g. [\"INSERT\"]");
		}
	}
	return 0;
}

/* ---- matching ---- */

/* A number from the record: a JSON number, or (the extension) the string
 * of a DynamoDB "N" value. */
static bool as_number(const json_t *v, bool n_value, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	if (!n_value || !json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	return end != s && !*end && !errno && !isspace((unsigned char)*s) && isfinite(*out);
}

static bool numeric_match(const json_t *spec, double x)
{
	for (size_t i = 0; i + 1 < json_array_size(spec); i += 2) {
		const char *op = json_string_value(json_array_get(spec, i));
		double y = json_number_value(json_array_get(spec, i + 1));
		bool ok = !strcmp(op, "=")    ? x == y
			  : !strcmp(op, "<")  ? x < y
			  : !strcmp(op, "<=") ? x <= y
			  : !strcmp(op, ">")  ? x > y
					      : x >= y;
		if (!ok)
			return false;
	}
	return true;
}

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static bool has_suffix(const char *s, const char *p)
{
	size_t n = strlen(s), m = strlen(p);
	return n >= m && !memcmp(s + n - m, p, m);
}

/* A number's text as jansson keeps it: 300 and 300.0 differ, as in Lambda,
 * which compares numbers by their string representation. */
static bool same_number_text(const json_t *a, const json_t *b)
{
	if (!json_is_number(a) || !json_is_number(b))
		return false;
	if (json_is_integer(a) || json_is_integer(b))
		return json_is_integer(a) && json_is_integer(b) &&
		       json_integer_value(a) == json_integer_value(b);
	char *x = json_dumps(a, JSON_ENCODE_ANY), *y = json_dumps(b, JSON_ENCODE_ANY);
	bool same = x && y && !strcmp(x, y);
	free(x);
	free(y);
	return same;
}

/* A literal: strings equal as text, numbers by their text, true/false/null. */
static bool literal_match(const json_t *lit, const json_t *v)
{
	if (json_is_string(lit))
		return json_is_string(v) && !strcmp(json_string_value(lit), json_string_value(v));
	if (json_is_number(lit))
		return same_number_text(lit, v);
	if (json_is_null(lit))
		return json_is_null(v);
	if (json_is_boolean(lit))
		return json_is_boolean(v) && json_is_true(lit) == json_is_true(v);
	return false;
}

static bool string_op(const char *op, const char *arg, const json_t *v)
{
	if (!json_is_string(v) || !arg)
		return false;
	const char *s = json_string_value(v);
	if (!strcmp(op, "prefix"))
		return has_prefix(s, arg);
	if (!strcmp(op, "suffix"))
		return has_suffix(s, arg);
	return !strcasecmp(s, arg); /* equals-ignore-case */
}

static bool anything_but(const json_t *arg, const json_t *v)
{
	size_t i;
	const json_t *e;
	if (json_is_object(arg)) {
		const char *op = json_object_iter_key(json_object_iter((json_t *)arg));
		const json_t *a = json_object_iter_value(json_object_iter((json_t *)arg));
		if (!json_is_string(v))
			return false;
		if (json_is_array(a)) { /* equals-ignore-case with a list */
			json_array_foreach(a, i, e) if (string_op(op, json_string_value(e), v))
				return false;
			return true;
		}
		return !string_op(op, json_string_value(a), v);
	}
	if (json_is_array(arg)) {
		json_array_foreach(arg, i, e) if (literal_match(e, v)) return false;
		return true;
	}
	return !literal_match(arg, v);
}

/* One matcher against one present scalar value. */
static bool matcher_match(const json_t *m, const json_t *v, bool n_value)
{
	if (!json_is_object(m))
		return literal_match(m, v);
	const char *op = json_object_iter_key(json_object_iter((json_t *)m));
	const json_t *arg = json_object_iter_value(json_object_iter((json_t *)m));
	double x;
	if (!strcmp(op, "numeric"))
		return as_number(v, n_value, &x) && numeric_match(arg, x);
	if (!strcmp(op, "anything-but"))
		return anything_but(arg, v);
	if (!strcmp(op, "exists"))
		return json_is_true(arg);
	return string_op(op, json_string_value(arg), v);
}

/* A field's list of matchers against the record's value there (NULL when
 * absent). A list in the record matches when one of its elements does.
 * "exists" sees leaf nodes only: an object there is not a leaf, so
 * {"exists": true} does not match it (and {"exists": false} does). */
static bool field_match(const json_t *matchers, const json_t *v, bool n_value)
{
	size_t i, j;
	const json_t *m, *e;
	json_array_foreach(matchers, i, m)
	{
		if (json_is_object(m) && json_object_get(m, "exists")) {
			bool leaf = v && !json_is_object(v);
			if (leaf == json_is_true(json_object_get(m, "exists")))
				return true;
			continue;
		}
		if (!v)
			continue;
		if (!json_is_array(v)) {
			if (matcher_match(m, v, n_value))
				return true;
			continue;
		}
		json_array_foreach(v, j, e) if (matcher_match(m, e, n_value)) return true;
	}
	return false;
}

static bool pattern_match(const json_t *pat, const json_t *rec)
{
	const char *k;
	const json_t *want;
	json_object_foreach((json_t *)pat, k, want)
	{
		bool ok;
		if (!strcmp(k, "$or")) {
			size_t i;
			const json_t *alt;
			ok = false;
			json_array_foreach(want, i, alt) if (pattern_match(alt, rec))
			{
				ok = true;
				break;
			}
		} else {
			const json_t *v = json_is_object(rec) ? json_object_get(rec, k) : NULL;
			if (json_is_object(want))
				ok = pattern_match(want, json_is_object(v) ? v : NULL);
			else
				ok = field_match(want, v, !strcmp(k, "N") || !strcmp(k, "NS"));
		}
		if (!ok)
			return false;
	}
	return true;
}

/* ---- loading ---- */

static int add_pattern(struct dda_filter *f, json_t *pat, const char *where, struct dda_error *err)
{
	json_t *owned = NULL;
	if (json_is_string(pat)) { /* Lambda's form: the pattern is JSON text */
		json_error_t je;
		owned = json_loads(json_string_value(pat), JSON_REJECT_DUPLICATES, &je);
		if (!owned)
			return dda_error_set(err, DDA_EINVAL, "invalid filter %s: %s (column %d)",
					     where, je.text, je.column);
		pat = owned;
	}
	int rc = check_pattern(pat, "", 0, err);
	if (!rc && json_array_append(f->patterns, pat))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	json_decref(owned);
	return rc;
}

int dda__filter_parse(struct dda_filter **out, const char *text, size_t len, struct dda_error *err)
{
	json_error_t je;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	*out = NULL;
	if (!doc)
		return dda_error_set(err, DDA_EINVAL, "invalid filter: %s (line %d)", je.text,
				     je.line);
	struct dda_filter *f = calloc(1, sizeof(*f));
	int rc = f && (f->patterns = json_array()) ? 0 : DDA_ENOMEM;
	if (rc) {
		dda_error_set(err, DDA_ENOMEM, "out of memory");
	} else if (json_is_object(doc) && json_object_get(doc, "Filters")) {
		const json_t *list = json_object_get(doc, "Filters");
		size_t i;
		json_t *flt;
		if (!json_is_array(list) || !json_array_size(list))
			rc = dda_error_set(err, DDA_EINVAL,
					   "invalid filter: \"Filters\" is a non-empty list");
		json_array_foreach(list, i, flt)
		{
			json_t *pat = json_is_object(flt) ? json_object_get(flt, "Pattern") : NULL;
			char where[64];
			snprintf(where, sizeof(where), "Filters[%zu].Pattern", i);
			if (rc)
				break;
			rc = pat ? add_pattern(f, pat, where, err)
				 : dda_error_set(err, DDA_EINVAL,
						 "invalid filter: Filters[%zu] has no \"Pattern\"",
						 i);
		}
	} else {
		rc = add_pattern(f, doc, "pattern", err);
	}
	json_decref(doc);
	if (rc) {
		dda__filter_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

bool dda__filter_match(const struct dda_filter *f, const json_t *record)
{
	size_t i;
	const json_t *pat;
	if (!f)
		return true;
	json_array_foreach(f->patterns, i, pat) if (pattern_match(pat, record)) return true;
	return false;
}

void dda__filter_free(struct dda_filter *f)
{
	if (!f)
		return;
	json_decref(f->patterns);
	free(f);
}
