/* DynamoDB exports inside a source (<prefix>/AWSDynamoDB/<exportId>/): the
 * manifests are read before the data files, so that each data file carries
 * what its export says of it (full or incremental, the export's times, the
 * file's item count), and every file the manifest lists but the source does
 * not hold can be reported as not read. The metadata files themselves are
 * export bookkeeping, never audit records. */
#include "source/source_impl.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>

/* A files manifest lists one line a data file; a table has at most a few
 * thousand partitions, so this bounds a hostile manifest, not a real one. */
#define MAX_EXPORT_FILES 1000000
/* Exports a source may hold (each keeps its file list in memory). */
#define MAX_EXPORTS 4096

/* md5Checksum is the base64 of 16 bytes: 24 characters. */
#define MD5_B64_LEN 24

struct export_file {
	char *rel; /* path below the export root ("data/x.json.gz") */
	uint64_t items;
	bool seen, reported;
	char md5[MD5_B64_LEN + 1]; /* md5Checksum of the stored bytes, or "" */
};

struct export
{
	char *root; /* key prefix of the export, "" or ending in '/' */
	struct dda_export_info info;
	bool files_read; /* manifest-files.json was read: unlisted files are findings */
	struct export_file *files;
	size_t nfiles, cap;
};

struct dda__exports {
	struct export *v;
	size_t n, cap;
};

struct dda__exports *dda__exports_new(void)
{
	return calloc(1, sizeof(struct dda__exports));
}

void dda__exports_free(struct dda__exports *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n; i++) {
		for (size_t j = 0; j < x->v[i].nfiles; j++)
			free(x->v[i].files[j].rel);
		free(x->v[i].files);
		free(x->v[i].root);
	}
	free(x->v);
	free(x);
}

bool dda__export_meta_name(const char *name)
{
	static const char *const sufs[] = {".checksum", ".md5"};
	if (!strcmp(name, "_started") || !strcmp(name, "manifest-summary.json") ||
	    !strcmp(name, "manifest-files.json"))
		return true;
	size_t n = strlen(name);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(sufs); i++) {
		size_t m = strlen(sufs[i]);
		if (n > m && !strcmp(name + n - m, sufs[i]))
			return true;
	}
	return false;
}

/* The path of a listed file below its export root: manifest-files.json
 * names it by its S3 key ("<prefix>/AWSDynamoDB/<id>/data/x.json.gz"). */
static const char *rel_of_s3_key(const char *key)
{
	const char *p = strstr(key, "AWSDynamoDB/");
	const char *last = NULL;
	while (p) {
		last = p;
		p = strstr(p + 1, "AWSDynamoDB/");
	}
	if (last) {
		const char *slash = strchr(last + strlen("AWSDynamoDB/"), '/');
		if (slash)
			return slash + 1;
	}
	if (!strncmp(key, "data/", 5))
		return key;
	p = strstr(key, "/data/");
	return p ? p + 1 : key;
}

/* A manifest that is not what AWS writes: the reason goes to why. Returns
 * DDA_EFORMAT (or DDA_ENOMEM when even the reason cannot be kept). */
DDA_PRINTF(2, 3)
static int invalid(struct dda_buf *why, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(why, fmt, ap);
	va_end(ap);
	return rc == DDA_ENOMEM ? DDA_ENOMEM : DDA_EFORMAT;
}

/* An ISO-8601 member of the summary ("2020-11-04T07:28:34.028Z"). */
static int summary_time(const json_t *sum, const char *name, int64_t *out, bool required,
			struct dda_buf *why)
{
	const json_t *v = json_object_get(sum, name);
	if (!v || json_is_null(v)) {
		*out = DDA_TIME_NONE;
		return required ? invalid(why, "no '%s'", name) : 0;
	}
	if (!json_is_string(v) || dda_time_parse(json_string_value(v), json_string_length(v), out))
		return invalid(why, "'%s' is not an ISO-8601 time", name);
	return 0;
}

/* Reads the summary into e->info. Returns 0, DDA_EFORMAT (why says what
 * is wrong) or DDA_ENOMEM. */
static int parse_summary(struct export *e, const struct dda_buf *b, struct dda_buf *why)
{
	json_error_t je;
	json_t *sum = json_loadb(b->ptr ? b->ptr : "", b->len, JSON_REJECT_DUPLICATES, &je);
	int rc;
	if (!sum || !json_is_object(sum)) {
		rc = invalid(why, "not a JSON object (%s)", sum ? "another value" : je.text);
		goto out;
	}
	const json_t *type = json_object_get(sum, "exportType");
	const char *t = json_is_string(type) ? json_string_value(type) : NULL;
	bool incremental =
	    t ? !strcmp(t, "INCREMENTAL_EXPORT") : json_object_get(sum, "exportFromTime") != NULL;
	if (t && !incremental && strcmp(t, "FULL_EXPORT")) {
		rc = invalid(why, "unknown exportType '%.64s'", t);
		goto out;
	}
	const json_t *fmt = json_object_get(sum, "outputFormat");
	if (json_is_string(fmt) && strcmp(json_string_value(fmt), "DYNAMODB_JSON")) {
		rc = invalid(why, "outputFormat '%.64s' (ddbaudit reads DYNAMODB_JSON exports)",
			     json_string_value(fmt));
		goto out;
	}
	if (incremental) {
		e->info.kind = DDA_EXPORT_INCREMENTAL;
		if ((rc = summary_time(sum, "exportFromTime", &e->info.from, true, why)) ||
		    (rc = summary_time(sum, "exportToTime", &e->info.to, true, why)))
			goto out;
		/* The view as the summary names it, or as the export request did. */
		const json_t *view = json_object_get(sum, "outputView");
		if (!view)
			view = json_object_get(sum, "exportViewType");
		e->info.new_only =
		    json_is_string(view) && !strcmp(json_string_value(view), "NEW_IMAGE");
	} else {
		e->info.kind = DDA_EXPORT_FULL;
		if ((rc = summary_time(sum, "exportTime", &e->info.time, true, why)))
			goto out;
	}
	const json_t *count = json_object_get(sum, "itemCount");
	if (!json_is_integer(count) || json_integer_value(count) < 0) {
		rc = invalid(why, "no 'itemCount'");
		goto out;
	}
	e->info.items = (uint64_t)json_integer_value(count);
	rc = 0;
out:
	json_decref(sum);
	return rc;
}

static int add_file(struct export *e, const char *rel, uint64_t items, const json_t *md5)
{
	if (e->nfiles == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		struct export_file *nv = realloc(e->files, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		e->files = nv;
		e->cap = cap;
	}
	char *r = strdup(rel);
	if (!r)
		return DDA_ENOMEM;
	struct export_file *f = &e->files[e->nfiles++];
	*f = (struct export_file){.rel = r, .items = items};
	if (json_is_string(md5) && json_string_length(md5) == MD5_B64_LEN)
		memcpy(f->md5, json_string_value(md5), MD5_B64_LEN + 1);
	return 0;
}

/* Reads manifest-files.json (JSON lines) into e->files; *sum gets the total
 * of their item counts. Returns 0, DDA_EFORMAT (why) or DDA_ENOMEM. */
static int parse_files(struct export *e, const struct dda_buf *b, uint64_t *sum,
		       struct dda_buf *why)
{
	const char *p = b->ptr ? b->ptr : "", *end = p + b->len;
	uint64_t line = 0;
	*sum = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		line++;
		json_error_t je;
		json_t *v = NULL;
		bool blank = true;
		for (const char *q = p; q < le && blank; q++)
			blank = *q == ' ' || *q == '\t' || *q == '\r';
		if (!blank)
			v = json_loadb(p, (size_t)(le - p), JSON_REJECT_DUPLICATES, &je);
		p = nl ? nl + 1 : end;
		if (blank)
			continue;
		const json_t *key = json_object_get(v, "dataFileS3Key");
		const json_t *cnt = json_object_get(v, "itemCount");
		int rc = 0;
		if (!json_is_string(key) || !json_is_integer(cnt) || json_integer_value(cnt) < 0)
			rc = invalid(why, "line %llu is not a data file entry",
				     (unsigned long long)line);
		else if (e->nfiles == MAX_EXPORT_FILES)
			rc = invalid(why, "more than %d data files", MAX_EXPORT_FILES);
		else
			rc = add_file(e, rel_of_s3_key(json_string_value(key)),
				      (uint64_t)json_integer_value(cnt),
				      json_object_get(v, "md5Checksum"));
		if (!rc)
			*sum += (uint64_t)json_integer_value(cnt);
		json_decref(v);
		if (rc)
			return rc;
	}
	return 0;
}

static struct export *find(const struct dda__exports *x, const char *root)
{
	for (size_t i = 0; i < x->n; i++)
		if (!strcmp(x->v[i].root, root))
			return &x->v[i];
	return NULL;
}

bool dda__exports_known(const struct dda__exports *x, const char *root)
{
	return find(x, root) != NULL;
}

/* A problem with a manifest: the export is read on, its data files cannot
 * be checked against it, and the run says so. */
static int manifest_finding(struct dda_source *s, int fact, const char *root, const char *name,
			    const char *why)
{
	return dda__source_note(s, fact, UINT32_MAX, "DynamoDB export '%s%s': %s", root, name,
				why);
}

int dda__exports_add(struct dda__exports *x, struct dda_source *s, const char *root,
		     const struct dda_buf *summary, const struct dda_buf *files)
{
	if (find(x, root))
		return 0;
	if (x->n == MAX_EXPORTS)
		return manifest_finding(s, DDA_FACT_METADATA_UNREADABLE, root, "",
					"too many exports in one source: not checked");
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 4;
		struct export *nv = realloc(x->v, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		x->v = nv;
		x->cap = cap;
	}
	struct export *e = &x->v[x->n];
	memset(e, 0, sizeof(*e));
	if (!(e->root = strdup(root)))
		return DDA_ENOMEM;
	x->n++;
	struct dda_buf why;
	dda_buf_init(&why, 1024);
	int rc = summary ? parse_summary(e, summary, &why) : DDA_EFORMAT;
	if (rc == DDA_EFORMAT) {
		e->info.kind = DDA_EXPORT_UNKNOWN;
		rc = manifest_finding(s, DDA_FACT_METADATA_UNREADABLE, root, "manifest-summary.json",
				      summary ? (why.ptr ? why.ptr : "invalid")
					      : "missing: the export's kind and times are unknown");
	}
	dda_buf_reset(&why); /* also clears a failed (too long) reason */
	uint64_t total = 0;
	if (!rc && files) {
		rc = parse_files(e, files, &total, &why);
		e->files_read = rc == 0;
		if (rc == DDA_EFORMAT)
			rc = manifest_finding(s, DDA_FACT_METADATA_UNREADABLE, root, "manifest-files.json",
					      why.ptr ? why.ptr : "invalid");
	} else if (!rc) {
		rc = manifest_finding(s, DDA_FACT_METADATA_UNREADABLE, root, "manifest-files.json",
				      "missing: the data files cannot be checked against it");
	}
	if (!rc && e->files_read && e->info.kind != DDA_EXPORT_UNKNOWN && total != e->info.items)
		rc = dda__source_note(
		    s, DDA_FACT_METADATA_MISMATCH, UINT32_MAX,
		    "DynamoDB export '%s': manifest-summary.json counts %llu items, its data "
		    "files in manifest-files.json %llu",
		    root, (unsigned long long)e->info.items, (unsigned long long)total);
	dda_buf_release(&why);
	return rc;
}

/* The export whose root is a prefix of key (the longest, should exports
 * nest), or NULL. */
static struct export *owner(const struct dda__exports *x, const char *key)
{
	struct export *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < x->n; i++) {
		size_t n = strlen(x->v[i].root);
		if (!strncmp(key, x->v[i].root, n) && (!best || n > best_len)) {
			best = &x->v[i];
			best_len = n;
		}
	}
	return best;
}

int dda__exports_classify(struct dda__exports *x, const char *key, struct dda_export_info *info,
			  bool *unlisted)
{
	struct export *e = x ? owner(x, key) : NULL;
	*unlisted = false;
	memset(info, 0, sizeof(*info));
	if (!e)
		return DDA__EXP_OUTSIDE;
	const char *rel = key + strlen(e->root);
	if (!strchr(rel, '/') && dda__export_meta_name(rel))
		return DDA__EXP_META;
	*info = e->info;
	for (size_t i = 0; i < e->nfiles; i++) {
		if (strcmp(e->files[i].rel, rel))
			continue;
		e->files[i].seen = true;
		info->listed = true;
		info->items = e->files[i].items;
		return DDA__EXP_DATA;
	}
	info->items = 0;
	*unlisted = e->files_read;
	return DDA__EXP_DATA;
}

int dda__exports_next_missing(struct dda__exports *x, const char *root, struct dda_buf *key)
{
	for (size_t i = 0; x && i < x->n; i++) {
		struct export *e = &x->v[i];
		if (root && strcmp(e->root, root))
			continue;
		for (size_t j = 0; j < e->nfiles; j++) {
			struct export_file *f = &e->files[j];
			if (f->seen || f->reported)
				continue;
			f->reported = true;
			dda_buf_reset(key);
			if (dda_buf_adds(key, e->root) || dda_buf_adds(key, f->rel))
				return DDA_ENOMEM;
			return 1;
		}
	}
	return 0;
}

int dda__export_missing_chunk(struct dda_source *s, const char *key, struct dda_chunk *c,
			      struct dda_error *err)
{
	struct dda_object meta = {.key = key, .size = -1, .last_modified = DDA_TIME_NONE};
	int64_t id = dda_objtab_add(s->objs, &meta);
	if (id < 0)
		return dda_error_set(err, (int)id, "out of memory");
	c->obj = (uint32_t)id;
	c->kind = DDA_CHUNK_DOC;
	c->status = DDA_CHUNK_UNREADABLE;
	c->first_line = 1;
	c->last = true;
	snprintf(c->msg, sizeof(c->msg),
		 "listed in its export's manifest-files.json but missing: its items were not "
		 "read");
	return 1;
}

int dda__export_unlisted(struct dda_source *s, uint32_t obj)
{
	return dda__source_note(s, DDA_FACT_METADATA_MISMATCH, obj,
				   "data file not listed in its export's manifest-files.json");
}

int dda__exports_check_md5(struct dda__exports *x, struct dda_source *s, const char *key,
			   uint32_t obj, const struct dda_buf *stored)
{
	struct export *e = x ? owner(x, key) : NULL;
	const char *rel = e ? key + strlen(e->root) : NULL;
	for (size_t i = 0; e && i < e->nfiles; i++) {
		const struct export_file *f = &e->files[i];
		if (strcmp(f->rel, rel) || !f->md5[0])
			continue;
		unsigned char d[EVP_MAX_MD_SIZE], b64[MD5_B64_LEN + 1];
		unsigned int len = 0;
		if (EVP_Digest(stored->ptr ? stored->ptr : "", stored->len, d, &len, EVP_md5(),
			       NULL) != 1 ||
		    len != 16)
			return DDA_ENOMEM;
		EVP_EncodeBlock(b64, d, 16);
		if (!memcmp(b64, f->md5, MD5_B64_LEN))
			return 0;
		return dda__source_note(
		    s, DDA_FACT_METADATA_MISMATCH, obj,
		    "data file's MD5 %s differs from its md5Checksum %s in manifest-files.json: "
		    "not the bytes the export wrote",
		    (const char *)b64, f->md5);
	}
	return 0;
}
