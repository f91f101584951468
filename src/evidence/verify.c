/* `ddbaudit evidence verify`: the checks an auditor's trust rests on, each
 * one a named result: the bundle's shape, the signature over SHA256SUMS,
 * every file against SHA256SUMS, the report against the manifest, the link
 * to the previous bundle, and (asked for) every object read again. */
#include "evidence/evidence_impl.h"
#include "aws/kms.h"
#include "aws/s3.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

/* A manifest line holds a key (at most 1 KB in S3, escaped at most
 * fourfold) and a few fields. */
#define MANIFEST_LINE_MAX (64 * 1024)

struct ctx {
	const struct dda_evidence_opts *o;
	struct dda_checks *out;
	struct dda__bundle b;
	json_t *report; /* report.json, once read */
	int oom;
};

void dda_checks_release(struct dda_checks *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].name);
		free(c->v[i].detail);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}

const char *dda_check_status_name(int status)
{
	return status == DDA_CHECK_OK ? "ok" : status == DDA_CHECK_FAIL ? "fail" : "error";
}

DDA_PRINTF(4, 5)
static void add(struct ctx *x, const char *name, int status, const char *fmt, ...)
{
	struct dda_checks *c = x->out;
	struct dda_buf d;
	va_list ap;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct dda_check *v = realloc(c->v, cap * sizeof(*v));
		if (!v) {
			x->oom = 1;
			return;
		}
		c->v = v;
		c->cap = cap;
	}
	dda_buf_init(&d, 1 << 16);
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(&d, fmt, ap);
	va_end(ap);
	struct dda_check *k = &c->v[c->n];
	k->name = strdup(name);
	k->status = status;
	k->detail = rc ? NULL : dda_buf_take(&d, NULL);
	dda_buf_release(&d);
	if (!k->name || !k->detail) {
		free(k->name);
		free(k->detail);
		x->oom = 1;
		return;
	}
	c->n++;
}

/* ---- signature ---- */

static int read_small(struct ctx *x, const char *name, struct dda_buf *b)
{
	struct dda_error err = {0};
	const struct dda__entry *e = dda__bundle_find(&x->b, name);
	dda_buf_init(b, DDA_BUNDLE_SMALL_MAX);
	if (!e)
		return DDA_ENOTFOUND;
	if (dda__entry_slurp(e, b, &err)) {
		add(x, name, DDA_CHECK_ERROR, "%s", err.msg);
		return DDA_EIO;
	}
	return 0;
}

static void check_kms(struct ctx *x, const struct dda_buf *sums, const struct dda_buf *sig)
{
	struct dda_error err = {0};
	struct dda_kms *kms = NULL;
	json_t *ans = NULL;
	struct dda_buf der;
	char keyid[65];
	dda_buf_init(&der, 8192);
	int rc = dda__kms_new(&kms, &x->o->aws, &err);
	if (!rc)
		rc = dda__kms_public_key(kms, x->o->kms_key, &ans, &err);
	const char *pub = rc ? NULL : json_string_value(json_object_get(ans, "PublicKey"));
	if (rc)
		add(x, "signature", DDA_CHECK_ERROR,
		    "cannot get the public key of KMS key '%s': %s", x->o->kms_key, err.msg);
	else if (!pub || dda_base64_decode(pub, strlen(pub), &der))
		add(x, "signature", DDA_CHECK_ERROR,
		    "KMS GetPublicKey: no PublicKey in the answer");
	else if ((rc = dda__verify_der(der.ptr, der.len, sums->ptr, sums->len, sig->ptr, sig->len,
				       keyid, &err)) == DDA_EFORMAT &&
		 !err.code)
		add(x, "signature", DDA_CHECK_FAIL,
		    "SHA256SUMS.sig is not an ECDSA_SHA_256 signature of SHA256SUMS by KMS key "
		    "'%s'",
		    x->o->kms_key);
	else if (rc)
		add(x, "signature", DDA_CHECK_FAIL, "%s", err.msg);
	else
		add(x, "signature", DDA_CHECK_OK,
		    "ECDSA_SHA_256 by KMS key '%s' (public key sha256 %s)", x->o->kms_key, keyid);
	json_decref(ans);
	dda__kms_free(kms);
	dda_buf_release(&der);
}

static void check_pem(struct ctx *x, const struct dda_buf *sums, const struct dda_buf *sig)
{
	struct dda_error err = {0};
	char keyid[65];
	int rc =
	    dda__verify_pem(x->o->pubkey, sums->ptr, sums->len, sig->ptr, sig->len, keyid, &err);
	if (rc == DDA_EFORMAT && !err.code)
		add(x, "signature", DDA_CHECK_FAIL,
		    "SHA256SUMS.sig is not an Ed25519 signature of SHA256SUMS by '%s'",
		    x->o->pubkey);
	else if (rc)
		add(x, "signature", DDA_CHECK_ERROR, "%s", err.msg);
	else
		add(x, "signature", DDA_CHECK_OK, "Ed25519 by '%s' (public key sha256 %s)",
		    x->o->pubkey, keyid);
}

static void check_signature(struct ctx *x, const struct dda_buf *sums)
{
	struct dda_buf sig;
	bool keyed = x->o->pubkey || x->o->kms_key;
	int rc = read_small(x, DDA_BUNDLE_SIG, &sig);
	if (rc == DDA_ENOTFOUND && keyed)
		add(x, "signature", DDA_CHECK_FAIL, "the bundle is not signed (no %s)",
		    DDA_BUNDLE_SIG);
	else if (rc == DDA_ENOTFOUND)
		add(x, "signature", DDA_CHECK_OK,
		    "none: the bundle is not signed, SHA256SUMS is not authenticated");
	else if (rc)
		; /* said by read_small */
	else if (!keyed)
		add(x, "signature", DDA_CHECK_ERROR,
		    "present, not checked: give --pubkey PEM or --kms KEY_ID");
	else if (x->o->kms_key)
		check_kms(x, sums, &sig);
	else
		check_pem(x, sums, &sig);
	dda_buf_release(&sig);
}

/* ---- SHA256SUMS ---- */

static bool is_sums_or_sig(const char *name)
{
	return !strcmp(name, DDA_BUNDLE_SUMS) || !strcmp(name, DDA_BUNDLE_SIG);
}

static void check_sums(struct ctx *x, const struct dda_buf *text)
{
	struct dda__sum sums[DDA_SUMS_MAX_LINES];
	struct dda_buf why;
	size_t n = 0;
	char name[DDA_BUNDLE_NAME_MAX + 8];
	dda_buf_init(&why, 1024);
	if (dda__sums_parse(dda_slice_make(text->ptr, text->len), sums, &n, &why)) {
		add(x, DDA_BUNDLE_SUMS, DDA_CHECK_FAIL, "not in sha256sum's format: %s",
		    why.ptr ? why.ptr : "");
		dda_buf_release(&why);
		return;
	}
	dda_buf_release(&why);
	for (size_t i = 0; i < n; i++) {
		const struct dda__entry *e = dda__bundle_find(&x->b, sums[i].name);
		snprintf(name, sizeof(name), "sha256 %.63s", sums[i].name);
		if (!e)
			add(x, name, DDA_CHECK_FAIL,
			    "listed in SHA256SUMS, missing from the bundle");
		else if (strcmp(e->hex, sums[i].hex))
			add(x, name, DDA_CHECK_FAIL,
			    "differs: the file hashes to %s, SHA256SUMS says %s", e->hex,
			    sums[i].hex);
		else
			add(x, name, DDA_CHECK_OK, "%s", e->hex);
	}
	for (size_t i = 0; i < x->b.n; i++) {
		const char *en = x->b.e[i].name;
		bool listed = false;
		for (size_t j = 0; j < n && !listed; j++)
			listed = !strcmp(sums[j].name, en);
		snprintf(name, sizeof(name), "sha256 %.63s", en);
		if (!listed && !is_sums_or_sig(en))
			add(x, name, DDA_CHECK_FAIL, "in the bundle, not listed in SHA256SUMS");
	}
	static const char *const required[] = {"report.json", DDA_BUNDLE_MANIFEST};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(required); i++) {
		bool listed = false;
		for (size_t j = 0; j < n && !listed; j++)
			listed = !strcmp(sums[j].name, required[i]);
		snprintf(name, sizeof(name), "sha256 %.63s", required[i]);
		if (!listed)
			add(x, name, DDA_CHECK_FAIL,
			    "a bundle must hold it; SHA256SUMS does not list it");
	}
}

/* ---- report <-> manifest ---- */

struct manifest_line {
	const char *key, *version, *sha256; /* the exact bytes of names */
	json_int_t size;
};

/* A name of a manifest line: its exact bytes from "<member>_b64" when the
 * name is not UTF-8 (docs/report.md), else the string itself. */
static const char *line_name(json_t *j, const char *member, struct dda_buf *tmp)
{
	char b64[32];
	snprintf(b64, sizeof(b64), "%s_b64", member);
	const char *raw = json_string_value(json_object_get(j, b64));
	if (!raw)
		return json_string_value(json_object_get(j, member));
	dda_buf_reset(tmp);
	if (dda_base64_decode(raw, strlen(raw), tmp) || dda_buf_adds(tmp, "") ||
	    memchr(tmp->ptr, '\0', tmp->len))
		return NULL;
	return tmp->ptr;
}

/* Calls fn for every line of the manifest; a line that is not an object
 * with a key (or longer than any manifest line) is a failure named by its
 * number, and ends the walk. */
static int each_line(struct ctx *x, const struct dda__entry *e,
		     int (*fn)(struct ctx *, size_t, const struct manifest_line *, void *),
		     void *arg)
{
	char *line = malloc(MANIFEST_LINE_MAX + 2);
	struct dda_buf key, ver;
	size_t lineno = 0;
	int rc = line ? 0 : (x->oom = 1);
	dda_buf_init(&key, MANIFEST_LINE_MAX);
	dda_buf_init(&ver, MANIFEST_LINE_MAX);
	fseek(e->f, 0, SEEK_SET);
	while (!rc && fgets(line, MANIFEST_LINE_MAX + 2, e->f)) {
		size_t len = strlen(line);
		lineno++;
		bool whole = len && (line[len - 1] == '\n' || feof(e->f));
		json_t *j = whole ? json_loadb(line, len, 0, NULL) : NULL;
		struct manifest_line m = {
		    .key = line_name(j, "key", &key),
		    .version = line_name(j, "versionId", &ver),
		    .sha256 = json_string_value(json_object_get(j, "sha256")),
		    .size = json_integer_value(json_object_get(j, "size")),
		};
		if (!m.key) {
			char name[48];
			snprintf(name, sizeof(name), "manifest line %zu", lineno);
			add(x, name, DDA_CHECK_FAIL,
			    whole ? "not a manifest line (a JSON object with a key)"
				  : "longer than any manifest line");
			rc = 1;
		} else {
			rc = fn(x, lineno, &m, arg);
		}
		json_decref(j);
	}
	free(line);
	dda_buf_release(&key);
	dda_buf_release(&ver);
	fseek(e->f, 0, SEEK_SET);
	return rc;
}

struct counts {
	uint64_t objects, bytes;
};

static int count_line(struct ctx *x, size_t lineno, const struct manifest_line *m, void *arg)
{
	struct counts *c = arg;
	(void)x, (void)lineno;
	c->objects++;
	if (m->size > 0)
		c->bytes += (uint64_t)m->size;
	return 0;
}

static void check_report(struct ctx *x)
{
	const struct dda__entry *rep = dda__bundle_find(&x->b, "report.json");
	const struct dda__entry *man = dda__bundle_find(&x->b, DDA_BUNDLE_MANIFEST);
	json_error_t jerr;
	if (!rep || !man) {
		add(x, "report", DDA_CHECK_FAIL, "report.json or manifest.ndjson is missing");
		return;
	}
	fseek(rep->f, 0, SEEK_SET);
	x->report = json_loadf(rep->f, 0, &jerr);
	if (!json_is_object(x->report)) {
		add(x, "report", DDA_CHECK_FAIL, "report.json is not JSON: %s (line %d)", jerr.text,
		    jerr.line);
		return;
	}
	const char *schema = json_string_value(json_object_get(x->report, "schema"));
	const char *msha =
	    json_string_value(json_object_get(json_object_get(x->report, "manifest"), "sha256"));
	if (!schema || strcmp(schema, DDA_REPORT_SCHEMA))
		add(x, "report", DDA_CHECK_FAIL, "report.json is not a %s report",
		    DDA_REPORT_SCHEMA);
	else if (!msha)
		add(x, "report manifest_sha256", DDA_CHECK_FAIL,
		    "report.json records no manifest digest");
	else if (strcmp(msha, man->hex))
		add(x, "report manifest_sha256", DDA_CHECK_FAIL,
		    "report.json records manifest sha256 %s, manifest.ndjson hashes to %s", msha,
		    man->hex);
	else
		add(x, "report manifest_sha256", DDA_CHECK_OK, "%s", msha);
	struct counts c = {0};
	if (each_line(x, man, count_line, &c))
		return;
	json_t *sum = json_object_get(x->report, "summary");
	json_int_t objects = json_integer_value(json_object_get(sum, "objects"));
	json_int_t bytes = json_integer_value(json_object_get(sum, "bytes"));
	if ((uint64_t)objects != c.objects || (uint64_t)bytes != c.bytes)
		add(x, "report counts", DDA_CHECK_FAIL,
		    "report.json counts %lld objects, %lld bytes; manifest.ndjson lists %llu "
		    "objects, %llu bytes",
		    (long long)objects, (long long)bytes, (unsigned long long)c.objects,
		    (unsigned long long)c.bytes);
	else
		add(x, "report counts", DDA_CHECK_OK, "%llu objects, %llu bytes",
		    (unsigned long long)c.objects, (unsigned long long)c.bytes);
}

/* ---- the chain ---- */

static void check_chain(struct ctx *x)
{
	uint8_t d[DDA_SHA256_LEN];
	char hex[2 * DDA_SHA256_LEN + 1];
	FILE *f = fopen(x->o->previous, "rb");
	if (!f) {
		add(x, "chain", DDA_CHECK_ERROR, "cannot open the previous bundle '%s': %s",
		    x->o->previous, strerror(errno));
		return;
	}
	int rc = dda__hash_stream(f, d, NULL);
	fclose(f);
	if (rc) {
		add(x, "chain", DDA_CHECK_ERROR, "cannot read the previous bundle '%s'",
		    x->o->previous);
		return;
	}
	dda__hex(d, sizeof(d), hex);
	const char *prev = json_string_value(
	    json_object_get(json_object_get(x->report, "evidence"), "previous_bundle_sha256"));
	if (!prev)
		add(x, "chain", DDA_CHECK_FAIL,
		    "report.json records no previous bundle (evidence.previous_bundle_sha256)");
	else if (strcmp(prev, hex))
		add(x, "chain", DDA_CHECK_FAIL,
		    "report.json records previous bundle sha256 %s, '%s' hashes to %s", prev,
		    x->o->previous, hex);
	else
		add(x, "chain", DDA_CHECK_OK, "'%s' is the previous bundle (sha256 %s)",
		    x->o->previous, hex);
}

/* ---- --recheck ---- */

/* Objects are fetched one at a time and held whole while hashed: an audit
 * object is small; one larger than this is not read back. */
#define RECHECK_MAX_OBJECT ((size_t)1 << 30)

struct recheck {
	struct dda_s3 *s3;
	char *bucket;
	const char *root; /* a local source: the directory or file */
	size_t strip;	  /* bytes of "audit-logs/" a directory's keys carry */
	bool file;	  /* the source is one file */
	uint64_t ok, unhashed;
	bool stopped;
};

struct fetched {
	long status;
	struct dda_buf body;
	char what[300];
};

static void on_fetched(struct dda_s3_call *c, struct dda_http_response *r)
{
	struct fetched *f = c->ctx;
	f->status = r->err ? 0 : r->status;
	dda__s3_describe(r, f->what, sizeof(f->what));
	dda_buf_release(&f->body);
	f->body = r->body;
	dda_buf_init(&r->body, 0);
}

/* The object's bytes hashed into hex; 0, or a status for the check with
 * the reason in why. */
static int fetch_s3(struct ctx *x, struct recheck *r, const struct manifest_line *m, char hex[65],
		    char *why, size_t cap)
{
	struct dda_s3_call call;
	struct fetched f = {0};
	struct dda_error err = {0};
	struct dda_kv q[] = {{"versionId", m->version}};
	uint8_t d[DDA_SHA256_LEN];
	size_t max = m->size >= 0 && (uint64_t)m->size < RECHECK_MAX_OBJECT / 2
			 ? DDA_MAX((size_t)m->size * 2, (size_t)1 << 20)
			 : RECHECK_MAX_OBJECT;
	int rc = dda__s3_submit(&call, r->s3, "GET", r->bucket, m->key, q, m->version ? 1 : 0, max,
				on_fetched, &f);
	if (!rc)
		rc = dda__http_run(dda__s3_http(r->s3), x->o->aws.stop, &err);
	if (!rc)
		dda__s3_call_release(&call);
	int status = DDA_CHECK_OK;
	if (rc)
		status = DDA_CHECK_ERROR,
		snprintf(why, cap, "%s", err.code ? err.msg : "cannot send");
	else if (f.status == 404 || f.status == 403)
		status = DDA_CHECK_FAIL, snprintf(why, cap, "cannot be read back: %s", f.what);
	else if (f.status != 200)
		status = DDA_CHECK_ERROR, snprintf(why, cap, "%s", f.what);
	else {
		dda__sha256(f.body.ptr ? f.body.ptr : "", f.body.len, d);
		dda__hex(d, sizeof(d), hex);
	}
	dda_buf_release(&f.body);
	return status;
}

static int fetch_local(struct recheck *r, const struct manifest_line *m, char hex[65], char *why,
		       size_t cap)
{
	uint8_t d[DDA_SHA256_LEN];
	struct dda_buf path;
	size_t klen = strlen(m->key);
	dda_buf_init(&path, 1 << 16);
	const char *rel = m->key;
	/* The manifest is untrusted: a key that climbs out of the source is
	 * never opened. */
	if (strstr(m->key, "/../") || !strncmp(m->key, "../", 3) || m->key[0] == '/' ||
	    (klen >= 3 && !strcmp(m->key + klen - 3, "/.."))) {
		snprintf(why, cap, "the key leaves the source: not read");
		return DDA_CHECK_FAIL;
	}
	if (r->file && strcmp(m->key, r->root)) {
		snprintf(why, cap, "not the source file '%s'", r->root);
		return DDA_CHECK_FAIL;
	}
	if (!r->file && r->strip && !strncmp(rel, "audit-logs/", r->strip))
		rel += r->strip;
	int rc =
	    r->file ? dda_buf_adds(&path, r->root) : dda_buf_addf(&path, "%s/%s", r->root, rel);
	FILE *f = rc ? NULL : fopen(path.ptr, "rb");
	if (!f) {
		int e = rc ? ENAMETOOLONG : errno;
		snprintf(why, cap, "cannot be read back from '%s': %s", rc ? "" : path.ptr,
			 strerror(e));
		dda_buf_release(&path);
		return e == ENOENT || e == EACCES || e == ENOTDIR ? DDA_CHECK_FAIL
								  : DDA_CHECK_ERROR;
	}
	rc = dda__hash_stream(f, d, NULL);
	fclose(f);
	dda_buf_release(&path);
	if (rc) {
		snprintf(why, cap, "cannot be read");
		return DDA_CHECK_ERROR;
	}
	dda__hex(d, sizeof(d), hex);
	return DDA_CHECK_OK;
}

static int recheck_line(struct ctx *x, size_t lineno, const struct manifest_line *m, void *arg)
{
	struct recheck *r = arg;
	char hex[65] = "", why[DDA_ERROR_MSG_MAX + 100] = "", name[80];
	struct dda_buf tmp;
	if (!m->sha256) {
		r->unhashed++;
		return 0;
	}
	int st = r->s3 ? fetch_s3(x, r, m, hex, why, sizeof(why))
		       : fetch_local(r, m, hex, why, sizeof(why));
	if (st == DDA_CHECK_OK && !strcmp(hex, m->sha256)) {
		r->ok++;
		return 0;
	}
	if (st == DDA_CHECK_OK) {
		st = DDA_CHECK_FAIL;
		snprintf(why, sizeof(why), "its bytes hash to %s, the manifest recorded %s", hex,
			 m->sha256);
	}
	dda_buf_init(&tmp, 1 << 16);
	snprintf(name, sizeof(name), "recheck line %zu", lineno);
	add(x, name, st, "'%s'%s%s: %s", dda__name_text(&tmp, m->key),
	    m->version ? " version " : "", m->version ? m->version : "", why);
	dda_buf_release(&tmp);
	/* An unreachable S3 would time out once per object: stop at the first. */
	if (st == DDA_CHECK_ERROR)
		r->stopped = true;
	return st == DDA_CHECK_ERROR;
}

static bool is_archive_name(const char *s)
{
	static const char *const ext[] = {".tar", ".tar.gz", ".tgz", ".zip"};
	size_t n = strlen(s);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(ext); i++) {
		size_t e = strlen(ext[i]);
		if (n >= e && !strcmp(s + n - e, ext[i]))
			return true;
	}
	return false;
}

/* Where the objects are: the run's source, as report.json records it. */
static int recheck_open(struct ctx *x, struct recheck *r, const char *src)
{
	struct dda_error err = {0};
	struct stat st;
	if (!strncmp(src, "s3://", 5)) {
		struct dda_env env = {dda__process_env, NULL, NULL};
		const char *b = src + 5;
		size_t n = strcspn(b, "/");
		r->bucket = n ? strndup(b, n) : NULL;
		if (!r->bucket) {
			add(x, "recheck", DDA_CHECK_ERROR, "the source '%s' names no bucket", src);
			return -1;
		}
		if (dda__s3_new(&r->s3, &x->o->aws, &env, &err)) {
			add(x, "recheck", DDA_CHECK_ERROR, "%s", err.msg);
			return -1;
		}
		return 0;
	}
	if (!strcmp(src, "-") || stat(src, &st)) {
		add(x, "recheck", DDA_CHECK_ERROR, "the source '%s' cannot be read again%s%s", src,
		    strcmp(src, "-") ? ": " : " (stdin)", strcmp(src, "-") ? strerror(errno) : "");
		return -1;
	}
	if (S_ISREG(st.st_mode) && is_archive_name(src)) {
		add(x, "recheck", DDA_CHECK_ERROR,
		    "the source '%s' is an archive: extract it and verify the directory", src);
		return -1;
	}
	r->root = src;
	r->file = S_ISREG(st.st_mode);
	size_t n = strlen(src);
	while (n > 1 && src[n - 1] == '/')
		n--;
	/* A directory named audit-logs keeps its name in the keys. */
	if (!r->file && n >= 10 && !strncmp(src + n - 10, "audit-logs", 10) &&
	    (n == 10 || src[n - 11] == '/'))
		r->strip = strlen("audit-logs/");
	return 0;
}

static void recheck(struct ctx *x, const struct dda__entry *man)
{
	struct recheck r = {0};
	const char *src =
	    json_string_value(json_object_get(json_object_get(x->report, "run"), "source"));
	if (!src)
		add(x, "recheck", DDA_CHECK_FAIL, "report.json records no source");
	else if (!recheck_open(x, &r, src)) {
		size_t before = x->out->n;
		each_line(x, man, recheck_line, &r);
		if (r.stopped)
			add(x, "recheck", DDA_CHECK_ERROR,
			    "stopped at the first object that could not be fetched; %llu matched "
			    "before it",
			    (unsigned long long)r.ok);
		else if (x->out->n == before)
			add(x, "recheck", DDA_CHECK_OK,
			    "%llu objects of '%s' read again, each hashes as recorded; %llu "
			    "without a digest (unreadable in the run) not checked",
			    (unsigned long long)r.ok, src, (unsigned long long)r.unhashed);
		else
			add(x, "recheck", DDA_CHECK_FAIL,
			    "%llu objects hash as recorded, %zu do not (listed above)",
			    (unsigned long long)r.ok, x->out->n - before);
	}
	dda__s3_free(r.s3);
	free(r.bucket);
}

int dda_evidence_verify(const struct dda_evidence_opts *o, struct dda_checks *out,
			struct dda_error *err)
{
	struct ctx x = {.o = o, .out = out};
	struct dda_error rerr = {0};
	struct dda_buf sums;
	dda_buf_init(&sums, DDA_BUNDLE_SMALL_MAX);
	if (dda__bundle_read(&x.b, o->bundle, &rerr)) {
		add(&x, "bundle", DDA_CHECK_ERROR, "%s", rerr.msg);
		goto out;
	}
	if (x.b.problems.len || x.b.problems.err)
		add(&x, "bundle", DDA_CHECK_FAIL, "%s",
		    x.b.problems.ptr ? x.b.problems.ptr : "too many problems to list");
	else
		add(&x, "bundle", DDA_CHECK_OK, "%zu files", x.b.n);
	int rc = read_small(&x, DDA_BUNDLE_SUMS, &sums);
	if (rc == DDA_ENOTFOUND)
		add(&x, DDA_BUNDLE_SUMS, DDA_CHECK_FAIL, "missing from the bundle");
	if (!rc) {
		check_signature(&x, &sums);
		check_sums(&x, &sums);
	}
	check_report(&x);
	if (o->previous && x.report)
		check_chain(&x);
	const struct dda__entry *man = dda__bundle_find(&x.b, DDA_BUNDLE_MANIFEST);
	if (o->recheck && x.report && man)
		recheck(&x, man);
	else if (o->recheck)
		add(&x, "recheck", DDA_CHECK_ERROR, "no readable report and manifest to recheck");
out:
	json_decref(x.report);
	dda__bundle_release(&x.b);
	dda_buf_release(&sums);
	if (x.oom)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	return 0;
}
