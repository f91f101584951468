/* ddbaudit history: one item's timeline, in history order, with the verdict
 * on each event, the anomalies found on it, and (as JSON) its full images.
 * Exit 1 when an error was found on the item, or when no item of the log has
 * the key's attribute names (a --key typo must not look like a quiet item). */
#include "cli/cli.h"
#include "report/report_impl.h"

#include <errno.h>

/* DynamoDB keys are at most 2048 + 1024 bytes of values with 255-byte names:
 * a serialized key fits with room to spare. */
#define KEY_MAX_BYTES (1 << 16)

struct kept {
	uint32_t obj, index;
	uint64_t line;
	int event;
	int64_t time;
	json_t *old_image, *new_image;
	int verdict;
};

struct hist {
	struct kept *v;
	size_t n, cap;
	uint32_t *order; /* indexes into v, in history order */
	size_t norder;
	/* The key of the first other item seen: a table has one key schema, so
	 * one item shows which attribute names the log's keys use. */
	struct dda_buf other_key;
	bool other_key_failed;
};

static struct kept *find(struct hist *h, uint32_t obj, uint32_t index)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].obj == obj && h->v[i].index == index)
			return &h->v[i];
	return NULL;
}

static int on_record(void *ctx, const struct dda_record *r)
{
	struct hist *h = ctx;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct kept *nv = realloc(h->v, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		h->v = nv;
		h->cap = cap;
	}
	struct kept *k = &h->v[h->n++];
	memset(k, 0, sizeof(*k));
	k->obj = r->obj;
	k->index = r->index;
	k->line = r->line;
	k->event = r->event;
	k->time = r->time;
	k->old_image = r->old_image ? json_deep_copy(r->old_image) : NULL;
	k->new_image = r->new_image ? json_deep_copy(r->new_image) : NULL;
	return 0;
}

static int on_visit(void *ctx, const struct dda_event_view *e)
{
	struct hist *h = ctx;
	struct kept *k = find(h, e->obj, e->index);
	if (!k) {
		/* An event of another item. Its key is only a hint: failing to
		 * keep it leaves the hint out, nothing else. */
		if (!h->other_key.len && !h->other_key_failed)
			h->other_key_failed = dda_buf_add(&h->other_key, e->key, e->key_len) != 0;
		return 0;
	}
	k->verdict = e->verdict;
	uint32_t *no = realloc(h->order, (h->norder + 1) * sizeof(*no));
	if (!no)
		return DDA_ENOMEM;
	h->order = no;
	h->order[h->norder++] = (uint32_t)(k - h->v);
	return 0;
}

static bool on_event(const struct dda_anomaly *a, const struct dda_buf *key, const struct kept *k)
{
	return a->key && a->key_len == key->len && !memcmp(a->key, key->ptr, key->len) &&
	       a->obj == k->obj && a->index == k->index;
}

/* The object's key as text (docs/report.md: names that are not UTF-8). */
static const char *object_key(const struct dda_result *res, uint32_t obj, struct dda_buf *tmp)
{
	const struct dda_object *o = dda_objtab_get(res->objs, obj);
	return o ? dda__name_text(tmp, o->key) : "";
}

static json_t *event_json(const struct dda_result *res, const struct dda_buf *key,
			  const struct kept *k)
{
	char t[DDA_TIME_STRLEN];
	const struct dda_object *o = dda_objtab_get(res->objs, k->obj);
	json_t *anomalies = json_array();
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		if (!on_event(a, key, k))
			continue;
		json_t *j = json_pack("{ssssso}", "kind", dda_kind_name(a->kind), "severity",
				      dda_severity_name(a->severity), "detail",
				      dda__report_text(a->detail ? a->detail : ""));
		if (j && a->diff)
			json_object_set(j, "diff", a->diff);
		json_array_append_new(anomalies, j);
	}
	json_t *obj = json_object();
	if (obj && (dda__report_set_name(obj, "key", o ? o->key : "") ||
		    dda__report_set_name(obj, "version", o ? o->version : NULL))) {
		json_decref(obj);
		obj = NULL;
	}
	return json_pack("{sssssosIsIsssOsOso}", "eventName", dda_event_name_str(k->event), "time",
			 dda_time_format(k->time, true, t), "object", obj, "line",
			 (json_int_t)k->line, "index", (json_int_t)k->index, "verdict",
			 k->verdict == DDA_V_DUPLICATE ? "duplicate" : "applied", "oldImage",
			 k->old_image ? k->old_image : json_null(), "newImage",
			 k->new_image ? k->new_image : json_null(), "anomalies", anomalies);
}

static int print_json(const struct cli *c, const struct dda_result *res,
		      const struct dda_buf *key, struct hist *h)
{
	json_t *events = json_array();
	for (size_t i = 0; events && i < h->norder; i++) {
		json_t *e = event_json(res, key, &h->v[h->order[i]]);
		/* A timeline never leaves an event out silently. */
		if (!e || json_array_append_new(events, e)) {
			json_decref(events);
			events = NULL;
		}
	}
	json_t *item = dda_canon_to_json(key->ptr, key->len);
	json_t *doc = json_pack("{sososI}", "item", item ? item : json_null(), "events", events,
				"count", (json_int_t)h->norder);
	if (!doc) {
		dda__cli_error(c, "out of memory");
		return EXIT_RUNTIME;
	}
	int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	fputc('\n', stdout);
	return rc ? EXIT_RUNTIME : 0; /* the write error is said by the caller */
}

/* One line per changed attribute: "  ~ Version: {"N":"1"} -> {"N":"2"}". */
static void print_changes(const struct kept *k)
{
	json_t *d = dda_canon_diff(k->old_image, k->new_image);
	const char *sect[] = {"added", "removed", "changed"};
	const char mark[] = {'+', '-', '~'};
	for (int s = 0; d && s < 3; s++) {
		const char *name;
		json_t *v;
		json_object_foreach(json_object_get(d, sect[s]), name, v)
		{
			char *text = json_dumps(s == 2 ? json_object_get(v, "found") : v,
						JSON_COMPACT | JSON_ENCODE_ANY);
			char *was = s == 2 ? json_dumps(json_object_get(v, "expected"),
							JSON_COMPACT | JSON_ENCODE_ANY)
					   : NULL;
			if (was)
				printf("      %c %s: %s -> %s\n", mark[s], name, was,
				       text ? text : "");
			else
				printf("      %c %s: %s\n", mark[s], name, text ? text : "");
			free(text);
			free(was);
		}
	}
	json_decref(d);
}

static void print_text(const struct dda_result *res, const struct dda_buf *key, struct hist *h)
{
	struct dda_buf text, tmp;
	char t[DDA_TIME_STRLEN];
	dda_buf_init(&text, 1 << 16);
	dda_buf_init(&tmp, 1 << 20);
	dda_canon_key_text(key->ptr, key->len, &text);
	printf("item %s: %zu events\n", text.ptr ? text.ptr : "", h->norder);
	for (size_t i = 0; i < h->norder; i++) {
		const struct kept *k = &h->v[h->order[i]];
		printf("  %s  %-6s  %s%s\n", dda_time_format(k->time, true, t),
		       dda_event_name_str(k->event), object_key(res, k->obj, &tmp),
		       k->verdict == DDA_V_DUPLICATE ? "  (duplicate)" : "");
		if (k->verdict != DDA_V_DUPLICATE)
			print_changes(k);
		for (size_t j = 0; j < res->nanomalies; j++) {
			const struct dda_anomaly *a = &res->anomalies[j];
			if (on_event(a, key, k))
				printf("      ! %s (%s): %s\n", dda_kind_name(a->kind),
				       dda_severity_name(a->severity),
				       dda__text_utf8(&tmp, a->detail));
		}
	}
	dda_buf_release(&text);
	dda_buf_release(&tmp);
}

static int describe_attr(struct dda_buf *out, const char *name, const json_t *av)
{
	const char *type = json_object_iter_key(json_object_iter((json_t *)av));
	return dda_buf_addf(out, "%s%s (%s)", out->len ? ", " : "", name, type ? type : "?");
}

/* "UserId (S), ActivityId (S)": the --key-schema's names first, in its
 * order (HASH, RANGE), then any others as the key holds them. */
static int describe_key(const struct cli *c, const json_t *key, struct dda_buf *out)
{
	const struct dda_decoder_opts *dec = &c->audit.dec;
	const char *name;
	json_t *av;
	int rc = 0;
	for (size_t i = 0; i < dec->nkeys && !rc; i++) {
		av = json_object_get(key, dec->key_names[i]);
		if (av)
			rc = describe_attr(out, dec->key_names[i], av);
	}
	json_object_foreach((json_t *)key, name, av)
	{
		bool listed = false;
		for (size_t i = 0; i < dec->nkeys; i++)
			listed = listed || !strcmp(name, dec->key_names[i]);
		if (!rc && !listed)
			rc = describe_attr(out, name, av);
	}
	return rc;
}

/* What the wanted key has that no key of the log has: an attribute name,
 * a type, or a different number of attributes. Empty when they match. */
static int key_mismatch(const json_t *want, const json_t *have, struct dda_buf *why)
{
	const char *name;
	json_t *av;
	json_object_foreach((json_t *)want, name, av)
	{
		json_t *other = json_object_get(have, name);
		const char *type = json_object_iter_key(json_object_iter(av));
		if (!other)
			return dda_buf_addf(why, "no item has key attribute '%s'", name);
		if (type && !json_object_get(other, type))
			return dda_buf_addf(why, "no item has key attribute '%s' of type %s", name,
					    type);
	}
	if (json_object_size(want) != json_object_size(have))
		return dda_buf_adds(why, "no item is keyed by these attributes alone");
	return 0;
}

/* With no event for the key: says so, and when its attribute names match no
 * key of the log, which names the log uses. Returns the exit status. */
static int no_events(struct cli *c, const struct dda_buf *key, const struct hist *h)
{
	json_t *want = dda_canon_to_json(key->ptr, key->len);
	json_t *have =
	    h->other_key.len ? dda_canon_to_json(h->other_key.ptr, h->other_key.len) : NULL;
	struct dda_buf why, names;
	int status = EXIT_CLEAN;
	dda_buf_init(&why, 4096);
	dda_buf_init(&names, 4096);
	if (want && have && (key_mismatch(want, have, &why) || describe_key(c, have, &names))) {
		dda__cli_error(c, "out of memory");
		status = EXIT_RUNTIME;
	} else if (why.len) {
		dda__cli_error(c, "%s; the log's items are keyed by %s", why.ptr, names.ptr);
		status = EXIT_ANOMALIES;
	} else {
		dda__cli_warn(c, "no events for this item in the range");
	}
	dda_buf_release(&why);
	dda_buf_release(&names);
	json_decref(want);
	json_decref(have);
	return status;
}

/* Errors that concern no item: objects that could not be read (they may
 * have held the item's changes), an empty range. Says what they mean for
 * this item's history; returns EXIT_ANOMALIES when nothing was there to
 * read at all, which must not pass for a quiet item. */
static int run_errors(struct cli *c, const struct dda_result *res)
{
	uint64_t unread = 0;
	bool empty = false;
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		if (a->key || a->severity != DDA_SEV_ERROR)
			continue;
		if (a->kind == DDA_K_EMPTY_RANGE)
			empty = true;
		else
			unread++;
	}
	if (unread)
		dda__cli_warn(c,
			      "%llu error%s name%s no item (such as an object that could not be "
			      "read): this item's history may miss changes; 'ddbaudit verify' "
			      "lists them",
			      (unsigned long long)unread, unread == 1 ? "" : "s",
			      unread == 1 ? "s" : "");
	if (!empty)
		return EXIT_CLEAN;
	dda__cli_error(c, "no records in the range: the source or prefix holds nothing to show "
			  "(EMPTY_RANGE)");
	return EXIT_ANOMALIES;
}

/* Whether an error-severity anomaly concerns the item. */
static bool item_has_error(const struct dda_result *res, const struct dda_buf *key)
{
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		if (a->severity == DDA_SEV_ERROR && a->key && a->key_len == key->len &&
		    !memcmp(a->key, key->ptr, key->len))
			return true;
	}
	return false;
}

static void hist_release(struct hist *h)
{
	for (size_t i = 0; i < h->n; i++) {
		json_decref(h->v[i].old_image);
		json_decref(h->v[i].new_image);
	}
	free(h->v);
	free(h->order);
	dda_buf_release(&h->other_key);
}

int dda__cmd_history(int argc, char **argv, struct cli *c)
{
	struct dda_buf key, why;
	struct dda_error err = {0};
	struct dda_result res;
	struct hist h = {0};
	int status = EXIT_CLEAN;
	dda_buf_init(&h.other_key, KEY_MAX_BYTES);
	(void)argc;
	(void)argv;
	if (!c->key_text) {
		dda__cli_error(
		    c, "--key is required (e.g. --key 'UserId=user123,ActivityId=activity001')");
		return EXIT_USAGE;
	}
	if (c->format >= 0 && c->format != DDA_FMT_JSON && c->format != DDA_FMT__COUNT) {
		dda__cli_error(c, "--format must be text or json");
		return EXIT_USAGE;
	}
	dda_buf_init(&key, KEY_MAX_BYTES);
	dda_buf_init(&why, 4096);
	if (dda_canon_key_parse(c->key_text, &key, &why)) {
		dda__cli_error(c, "invalid --key '%s': %s", c->key_text, why.ptr ? why.ptr : "");
		dda_buf_release(&why);
		return EXIT_USAGE;
	}
	c->audit.only_key = (const uint8_t *)key.ptr;
	c->audit.only_key_len = key.len;
	c->audit.on_record = on_record;
	c->audit.visit = on_visit;
	c->audit.ctx = &h;
	dda__cli_catch_signals(c);
	int rc = dda_audit_run(&c->audit, &res, &err);
	if (rc) {
		dda__cli_error(c, "%s", err.msg);
		status = dda__cli_exit_for(rc);
	} else {
		if (res.fatal.code)
			dda__cli_error(c, "%s", res.fatal.msg);
		if (c->format == DDA_FMT_JSON)
			status = print_json(c, &res, &key, &h);
		else
			print_text(&res, &key, &h);
		/* A timeline cut short (stdout full or closed) is a failure, never
		 * a quiet item. */
		if (fflush(stdout) || ferror(stdout)) {
			dda__cli_error(c, "cannot write the history to stdout: %s",
				       strerror(errno));
			status = EXIT_RUNTIME;
		}
		if (!status)
			status = run_errors(c, &res);
		if (!status && !h.norder)
			status = no_events(c, &key, &h);
		if (!status && item_has_error(&res, &key))
			status = EXIT_ANOMALIES;
		if (res.fatal.code || ferror(stdout))
			status = EXIT_RUNTIME;
	}
	dda_result_release(&res);
	hist_release(&h);
	dda_buf_release(&key);
	dda_buf_release(&why);
	return status;
}
