/* ddbaudit restore: item states as of a time, from the log (restore.h). */
#include "audit/restore_impl.h"
#include "ddbaudit/canon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Items a data file of a directory restore holds at most. */
#define ITEMS_PER_FILE 100000

struct item {
	uint64_t khash;
	size_t key_off;
	uint32_t key_len;
	bool present;
	uint32_t obj, index;
};

enum out_kind { OUT_NDJSON, OUT_DIR, OUT_TABLE };

struct restore {
	const struct dda_restore_opts *ro;
	struct dda_restore_stats *st;
	struct item *v;
	size_t n, cap;
	struct dda_buf keys;
	int kind;
	/* table */
	struct dda_ddb *ddb;
	struct dda_ddb_conn *conn;
	struct dda_ddb_table t;
	bool exists;
	const struct dda_audit_opts *ao;
	json_t *batch;
	/* directory */
	gzFile gz;
	uint64_t in_file;
	json_t *files; /* manifest-files.json lines */
	struct dda__undo undo;
	/* checkpoint */
	json_t *ckpt_id;      /* what the checkpoint is of */
	uint64_t ckpt_done;   /* items written, by a run before */
	uint64_t ckpt_khash;  /* the key hash of the last of them */
	uint64_t ckpt_saved;  /* items written when last saved */
	struct dda_error err;
	int rc;
};

#define CHECKPOINT_EVERY 1000

static int save_checkpoint(struct restore *r, uint64_t done, uint64_t khash, bool finished)
{
	struct dda__afile a;
	char hex[17];
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)khash);
	json_t *doc = json_pack("{sOsIsssb}", "restore", r->ckpt_id, "written", (json_int_t)done,
				"last_key_hash", hex, "finished", finished);
	dda__afile_init(&a);
	FILE *f = NULL;
	int rc = doc ? dda__afile_open(&a, r->ro->checkpoint, &r->err) : DDA_ENOMEM;
	if (!rc && !(f = dda__afile_stream(&a, &r->err)))
		rc = DDA_EIO;
	if (!rc && (json_dumpf(doc, f, JSON_COMPACT) || fputc('\n', f) == EOF))
		rc = dda_error_set(&r->err, DDA_EIO, "cannot write the checkpoint '%s'",
				   r->ro->checkpoint);
	if (!rc)
		rc = dda__afile_commit(&a, &r->err);
	dda__afile_discard(&a);
	json_decref(doc);
	if (!rc)
		r->ckpt_saved = done;
	return rc;
}

/* A checkpoint of the same restore: where it stopped. One of another
 * restore is refused; none yet is a fresh start. */
static int load_checkpoint(struct restore *r, const struct dda_audit_opts *ao,
			   struct dda_error *err)
{
	char at[DDA_TIME_STRLEN];
	r->ckpt_id = json_pack("{sssssssI}", "source", ao->source, "to", r->ro->to, "at",
			       dda_time_format(r->ro->at, true, at), "keys",
			       (json_int_t)r->ro->nkeys);
	if (!r->ckpt_id)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (r->ro->baseline)
		json_object_set_new(r->ckpt_id, "baseline", json_string(r->ro->baseline));
	json_error_t je;
	FILE *f = fopen(r->ro->checkpoint, "r");
	if (!f && errno == ENOENT)
		return 0;
	json_t *doc = f ? json_loadf(f, 0, &je) : NULL;
	if (f)
		fclose(f);
	const char *hex = json_string_value(json_object_get(doc, "last_key_hash"));
	json_t *n = json_object_get(doc, "written");
	int rc = 0;
	if (!doc || !hex || !json_is_integer(n) || json_integer_value(n) < 0)
		rc = dda_error_set(err, DDA_EFORMAT, "the checkpoint '%s' is not one of ddbaudit "
						     "restore's",
				   r->ro->checkpoint);
	else if (!json_equal(json_object_get(doc, "restore"), r->ckpt_id))
		rc = dda_error_set(err, DDA_EINVAL,
				   "the checkpoint '%s' is of another restore (source, --to, --at, "
				   "--baseline or keys differ): give another file or delete it",
				   r->ro->checkpoint);
	else {
		r->ckpt_done = (uint64_t)json_integer_value(n);
		r->ckpt_khash = strtoull(hex, NULL, 16);
	}
	json_decref(doc);
	return rc;
}

static bool selected(const struct restore *r, const uint8_t *key, size_t len)
{
	if (!r->ro->nkeys)
		return true;
	for (size_t i = 0; i < r->ro->nkeys; i++)
		if (r->ro->key_lens[i] == len && !memcmp(r->ro->keys[i], key, len))
			return true;
	return false;
}

static int on_end(void *ctx, const struct dda_item_end *end)
{
	struct restore *r = ctx;
	if (!selected(r, end->key, end->key_len))
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 1024;
		struct item *nv = realloc(r->v, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		r->v = nv;
		r->cap = cap;
	}
	r->v[r->n] = (struct item){.khash = dda_history_key_hash(end->key, end->key_len),
				   .key_off = r->keys.len,
				   .key_len = (uint32_t)end->key_len,
				   .present = end->present,
				   .obj = end->obj,
				   .index = end->index};
	if (dda_buf_add(&r->keys, end->key, end->key_len))
		return DDA_ENOMEM;
	r->n++;
	return 0;
}

static int cmp_position(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;
	if (a->obj != b->obj)
		return a->obj < b->obj ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

static const uint8_t *key_of(const struct restore *r, const struct item *it)
{
	return (const uint8_t *)r->keys.ptr + it->key_off;
}

/* ---- table ---- */

static int flush_batch(struct restore *r)
{
	int rc = 0;
	if (json_array_size(r->batch))
		rc = dda__ddb_batch_write(r->conn, r->batch, &r->err);
	json_array_clear(r->batch);
	return rc;
}

/* The key attribute types of a new table, from the first item written. */
static int create_table(struct restore *r, json_t *item)
{
	struct dda_ddb_table *t = &r->t;
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", dda__ddb_table_name(r->ddb));
	t->nkeys = r->ao->dec.nkeys;
	for (size_t k = 0; k < t->nkeys; k++) {
		snprintf(t->key_names[k], sizeof(t->key_names[k]), "%s", r->ao->dec.key_names[k]);
		json_t *av = json_object_get(item, t->key_names[k]);
		const char *type = json_object_size(av) == 1 ? json_object_iter_key(json_object_iter(av))
							     : "S";
		memcpy(t->key_types[k], type, 1);
	}
	int rc = dda__ddb_create(r->conn, t, &r->err);
	if (!rc) {
		r->exists = true;
		r->st->created = true;
	}
	return rc;
}

static int table_write(struct restore *r, json_t *item, json_t *key)
{
	if (!r->exists && item) {
		int rc = create_table(r, item);
		if (rc)
			return rc;
	}
	if (!r->exists)
		return 0; /* nothing to delete from a table that does not exist */
	json_t *req = item ? json_pack("{s{sO}}", "PutRequest", "Item", item)
			   : json_pack("{s{sO}}", "DeleteRequest", "Key", key);
	if (!req || json_array_append_new(r->batch, req))
		return DDA_ENOMEM;
	return json_array_size(r->batch) == DDA_DDB_BATCH_MAX ? flush_batch(r) : 0;
}

/* Before reading the log: the table must exist (or be allowed to be
 * created) and be empty (or be allowed to be overwritten). */
static int table_open(struct restore *r, const struct dda_audit_opts *ao, struct dda_error *err)
{
	struct dda_env env = {dda__process_env, NULL, NULL};
	struct dda_ddb_opts o = {.aws = ao->src.aws, .max_wcu = r->ro->max_wcu};
	if (!o.aws.stop)
		o.aws.stop = ao->stop;
	int rc = dda__ddb_new(&r->ddb, r->ro->to, &o, &env, err);
	if (!rc && !(r->conn = dda__ddb_conn_new(r->ddb)))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (rc)
		return rc;
	snprintf(r->st->table, sizeof(r->st->table), "%s", dda__ddb_table_name(r->ddb));
	rc = dda__ddb_describe(r->conn, &r->t, err);
	if (rc == DDA_ENOTFOUND) {
		memset(err, 0, sizeof(*err));
		if (r->ro->create || r->ro->dry_run)
			return 0;
		return dda_error_set(err, DDA_EINVAL,
				     "table '%s' does not exist: give --create to make it (on "
				     "demand, keyed as --key-schema)",
				     r->st->table);
	}
	if (rc)
		return rc;
	r->exists = true;
	bool same = r->t.nkeys == ao->dec.nkeys;
	for (size_t k = 0; same && k < r->t.nkeys; k++)
		same = !strcmp(r->t.key_names[k], ao->dec.key_names[k]);
	if (!same)
		return dda_error_set(err, DDA_EINVAL, "table '%s' is not keyed as --key-schema says",
				     r->t.name);
	if (r->ro->overwrite || r->ro->undo_since != DDA_TIME_NONE || r->ckpt_done)
		return 0; /* undo writes item by item; a resumed restore wrote these */
	json_t *req = json_pack("{sssi}", "TableName", r->t.name, "Limit", 1), *page = NULL;
	rc = req ? dda__ddb_call(r->conn, "Scan", req, false, &page, err) : DDA_ENOMEM;
	if (!rc && json_array_size(json_object_get(page, "Items")))
		rc = dda_error_set(err, DDA_EINVAL,
				   "table '%s' is not empty: restore into an empty table, or give "
				   "--overwrite to write over what it holds",
				   r->t.name);
	json_decref(req);
	json_decref(page);
	return rc;
}

/* ---- directory (DynamoDB export format: data files of {"Item":...} lines) ---- */

static int dir_path(struct restore *r, const char *name, struct dda_buf *p)
{
	dda_buf_reset(p);
	return dda_buf_addf(p, "%s/%s", r->ro->to, name);
}

static int dir_close_file(struct restore *r)
{
	if (!r->gz)
		return 0;
	int rc = gzclose(r->gz) == Z_OK ? 0 : DDA_EIO;
	r->gz = NULL;
	if (rc)
		return dda_error_set(&r->err, DDA_EIO, "cannot write a data file under '%s'",
				     r->ro->to);
	json_t *last = json_array_get(r->files, json_array_size(r->files) - 1);
	json_object_set_new(last, "itemCount", json_integer((json_int_t)r->in_file));
	return 0;
}

static int dir_put(struct restore *r, json_t *item)
{
	if (!r->gz || r->in_file == ITEMS_PER_FILE) {
		char name[64];
		struct dda_buf p;
		int rc = dir_close_file(r);
		if (rc)
			return rc;
		snprintf(name, sizeof(name), "data/%05llu.json.gz",
			 (unsigned long long)r->st->files);
		dda_buf_init(&p, 1 << 16);
		if (!dir_path(r, name, &p))
			r->gz = gzopen(p.ptr, "wbx");
		if (!r->gz)
			rc = dda_error_set(&r->err, DDA_EIO, "cannot create '%s': %s",
					   p.ptr ? p.ptr : name, strerror(errno));
		dda_buf_release(&p);
		if (rc)
			return rc;
		r->st->files++;
		r->in_file = 0;
		json_array_append_new(r->files, json_pack("{ss}", "dataFileS3Key", name));
	}
	json_t *line = json_pack("{sO}", "Item", item);
	char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (!text)
		return DDA_ENOMEM;
	size_t len = strlen(text);
	int ok = gzwrite(r->gz, text, (unsigned)len) == (int)len && gzputc(r->gz, '\n') == '\n';
	free(text);
	r->in_file++;
	return ok ? 0 : dda_error_set(&r->err, DDA_EIO, "cannot write a data file under '%s'",
				      r->ro->to);
}

static int write_json_file(struct restore *r, const char *name, json_t *doc, bool lines)
{
	struct dda_buf p;
	dda_buf_init(&p, 1 << 16);
	FILE *f = dir_path(r, name, &p) ? NULL : fopen(p.ptr, "wx");
	int ok = f != NULL;
	size_t i;
	json_t *v;
	if (f && lines) {
		json_array_foreach(doc, i, v) ok = ok && !json_dumpf(v, f, JSON_COMPACT) &&
						  fputc('\n', f) == '\n';
	} else if (f) {
		ok = !json_dumpf(doc, f, JSON_INDENT(2)) && fputc('\n', f) == '\n';
	}
	if (f && fclose(f))
		ok = 0;
	int rc = ok ? 0
		    : dda_error_set(&r->err, DDA_EIO, "cannot write '%s': %s",
				    p.ptr ? p.ptr : name, strerror(errno));
	dda_buf_release(&p);
	return rc;
}

static int dir_open(struct restore *r, struct dda_error *err)
{
	struct dda_buf p;
	dda_buf_init(&p, 1 << 16);
	int rc = dda_buf_addf(&p, "%s/data", r->ro->to);
	if (!rc)
		rc = dda__make_dir(r->ro->to, err);
	if (!rc && mkdir(p.ptr, 0777))
		rc = dda_error_set(err, DDA_EIO,
				   errno == EEXIST ? "'%s' exists already: restore into a new "
						     "directory"
						   : "cannot create '%s': %s",
				   p.ptr, strerror(errno));
	dda_buf_release(&p);
	r->files = json_array();
	return rc ? rc : r->files ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
}

static int dir_close(struct restore *r)
{
	char t[DDA_TIME_STRLEN];
	int rc = dir_close_file(r);
	json_t *sum = json_pack("{sssssssIsIsss{ss}}", "version", "2020-06-30", "exportType",
				"FULL_EXPORT", "outputFormat", "DYNAMODB_JSON", "itemCount",
				(json_int_t)r->st->written, "dataFiles", (json_int_t)r->st->files,
				"exportTime", dda_time_format(r->ro->at, true, t), "ddbaudit",
				"restoredFrom", "the audit log, by ddbaudit restore");
	if (!rc)
		rc = write_json_file(r, "manifest-files.json", r->files, true);
	if (!rc)
		rc = sum ? write_json_file(r, "manifest-summary.json", sum, false) : DDA_ENOMEM;
	json_decref(sum);
	return rc;
}

/* ---- writing the states ---- */

static int dry_line(struct restore *r, const char *what, const struct item *it)
{
	struct dda_buf text;
	dda_buf_init(&text, 1 << 20);
	int rc = dda_canon_key_text(key_of(r, it), it->key_len, &text);
	if (!rc && fprintf(r->ro->dry_out, "%s %s\n", what, text.ptr ? text.ptr : "") < 0)
		rc = DDA_EIO;
	dda_buf_release(&text);
	return rc;
}

static int write_state(struct restore *r, struct dda_audit_fetch *f, const struct item *it)
{
	if (!it->present) {
		if (r->kind != OUT_TABLE || !r->ro->overwrite)
			return 0; /* absent at T: nothing to write into an empty place */
		r->st->deleted++;
		if (r->ro->dry_run)
			return dry_line(r, "DELETE", it);
		json_t *key = dda_canon_to_json(key_of(r, it), it->key_len);
		int rc = key ? table_write(r, NULL, key) : DDA_ENOMEM;
		json_decref(key);
		return rc;
	}
	if (r->ro->dry_run) {
		r->st->written++;
		return dry_line(r, "PUT", it);
	}
	json_t *old = NULL, *img = NULL;
	int rc = dda_audit_fetch(f, it->obj, it->index, &old, &img);
	json_decref(old);
	if (!rc && !img)
		rc = dda_error_set(&r->err, DDA_EFORMAT,
				   "the last change of an item before the restore time has no new "
				   "image (a log without NEW_IMAGE cannot be restored from)");
	else if (rc && !r->err.code)
		dda_error_set(&r->err, rc, "cannot read a change again: %s",
			      rc == DDA_EUNSUPPORTED
				  ? "restore reads each item's last change again from its object, "
				    "which an NDJSON stream or stdin cannot give: give a directory, an "
				    "archive or s3:// (or unpack the stream into files)"
				  : dda_strerror(rc));
	if (!rc) {
		r->st->written++;
		if (r->kind == OUT_TABLE)
			rc = table_write(r, img, NULL);
		else if (r->kind == OUT_DIR)
			rc = dir_put(r, img);
		else {
			json_t *line = json_pack("{sO}", "Item", img);
			rc = line && !json_dumpf(line, r->ro->ndjson_out, JSON_COMPACT) &&
				     fputc('\n', r->ro->ndjson_out) == '\n'
				 ? 0
				 : dda_error_set(&r->err, DDA_EIO, "cannot write the items");
			json_decref(line);
		}
	}
	json_decref(img);
	return rc;
}

/* Items with an error among the log's findings: their states are uncertain. */
static int count_uncertain(struct restore *r, const struct dda_result *res)
{
	size_t n;
	uint64_t *err = dda__error_key_hashes(res, &n);
	if (!err)
		return DDA_ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		r->st->uncertain += dda__key_hash_listed(err, n, r->v[i].khash);
	free(err);
	return 0;
}

static int on_undo_finished(void *ctx, struct dda_audit_fetch *f, struct dda_result *res)
{
	struct restore *r = ctx;
	r->st->items = r->undo.n;
	if (res->fatal.code) {
		r->rc = dda_error_set(&r->err, res->fatal.code,
				      "the log could not be read whole (%s): nothing was written",
				      res->fatal.msg);
		return r->rc;
	}
	struct dda__undo_ctx x = {.fetch = f,
				  .conn = r->conn,
				  .hash_key = r->ao->dec.key_names[0],
				  .dry_run = r->ro->dry_run,
				  .out = r->ro->dry_out,
				  .st = r->st,
				  .err = &r->err};
	return r->rc = dda__undo_run(&r->undo, &x);
}

static int on_finished(void *ctx, struct dda_audit_fetch *f, struct dda_result *res)
{
	struct restore *r = ctx;
	r->st->items = r->n;
	if (res->fatal.code) {
		/* A log not read whole gives states that may be wrong: none are written. */
		r->rc = dda_error_set(&r->err, res->fatal.code,
				      "the log could not be read whole (%s): nothing was written",
				      res->fatal.msg);
		return r->rc;
	}
	if (count_uncertain(r, res))
		return r->rc = dda_error_set(&r->err, DDA_ENOMEM, "out of memory");
	qsort(r->v, r->n, sizeof(*r->v), cmp_position);
	size_t start = 0;
	if (r->ckpt_done) {
		/* The same items in the same order as the run that stopped: go on
		 * after its last; else write them all again (puts are idempotent). */
		if (r->ckpt_done <= r->n && r->v[r->ckpt_done - 1].khash == r->ckpt_khash)
			start = (size_t)r->ckpt_done;
		else
			r->st->restarted = true;
	}
	r->st->resumed = start;
	int rc = 0;
	for (size_t i = 0; i < r->n; i++)
		r->st->present += r->v[i].present;
	for (size_t i = start; !rc && i < r->n; i++) {
		rc = write_state(r, f, &r->v[i]);
		bool flushed = r->kind == OUT_TABLE && !json_array_size(r->batch);
		if (!rc && r->ro->checkpoint && flushed && i + 1 - r->ckpt_saved >= CHECKPOINT_EVERY)
			rc = save_checkpoint(r, i + 1, r->v[i].khash, false);
		if (r->ro->progress && (i + 1) % CHECKPOINT_EVERY == 0)
			r->ro->progress(r->ro->progress_ctx, i + 1, r->n, false);
	}
	if (!rc && r->kind == OUT_TABLE && !r->ro->dry_run)
		rc = flush_batch(r);
	if (!rc && r->ro->checkpoint && r->n)
		rc = save_checkpoint(r, r->n, r->v[r->n - 1].khash, true);
	if (r->ro->progress)
		r->ro->progress(r->ro->progress_ctx, r->n, r->n, true);
	if (!rc && r->kind == OUT_DIR && !r->ro->dry_run)
		rc = dir_close(r);
	if (rc && !r->err.code)
		dda_error_set(&r->err, rc, "%s", dda_strerror(rc));
	/* A write refused half way is a failure of the run, not of its usage. */
	if (rc == DDA_EINVAL)
		rc = r->err.code = DDA_EIO;
	return r->rc = rc;
}

/* A live table as a baseline: its items, scanned, written as a full export
 * (exportTime: when the scan started) into a temporary directory that the
 * restore then takes as its baseline. */
struct snapshot {
	struct restore w; /* the export writer */
	pthread_mutex_t mu;
};

static int snapshot_item(void *ctx, int segment, json_t *item)
{
	struct snapshot *sn = ctx;
	(void)segment;
	pthread_mutex_lock(&sn->mu);
	int rc = dir_put(&sn->w, item);
	if (!rc)
		sn->w.st->written++;
	pthread_mutex_unlock(&sn->mu);
	return rc;
}

static int snapshot_table(const struct dda_audit_opts *ao, const char *uri, const char *dir,
			  struct dda_error *err)
{
	struct dda_env env = {dda__process_env, NULL, NULL};
	struct dda_ddb_opts o = {.aws = ao->src.aws};
	struct dda_ddb *d = NULL;
	struct dda_restore_stats st = {0};
	struct dda_restore_opts wo = {.to = dir};
	struct snapshot sn = {.w = {.ro = &wo, .st = &st, .kind = OUT_DIR}};
	if (!o.aws.stop)
		o.aws.stop = ao->stop;
	pthread_mutex_init(&sn.mu, NULL);
	int rc = dda__ddb_new(&d, uri, &o, &env, err);
	if (!rc)
		rc = dir_open(&sn.w, err);
	if (!rc) {
		wo.at = dda_time_now();
		rc = dda__ddb_scan(d, 4, true, snapshot_item, &sn, err);
		if (rc && sn.w.err.code)
			*err = sn.w.err;
	}
	if (!rc && (rc = dir_close(&sn.w)))
		*err = sn.w.err;
	if (sn.w.gz)
		gzclose(sn.w.gz);
	json_decref(sn.w.files);
	pthread_mutex_destroy(&sn.mu);
	dda__ddb_free(d);
	return rc;
}

/* Removes a snapshot directory: its data files, manifests, itself. */
static void remove_snapshot(const char *dir)
{
	struct dda_buf p;
	dda_buf_init(&p, 1 << 16);
	for (unsigned n = 0; n < 100000; n++) {
		dda_buf_reset(&p);
		if (dda_buf_addf(&p, "%s/data/%05u.json.gz", dir, n) || unlink(p.ptr))
			break;
	}
	const char *const names[] = {"manifest-files.json", "manifest-summary.json", "data", ""};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(names); i++) {
		dda_buf_reset(&p);
		if (!dda_buf_addf(&p, "%s/%s", dir, names[i]))
			remove(p.ptr);
	}
	dda_buf_release(&p);
}

int dda_restore_run(struct dda_audit_opts *ao, const struct dda_restore_opts *ro,
		    struct dda_result *res, struct dda_restore_stats *st, struct dda_error *err)
{
	struct restore r = {.ro = ro, .st = st, .ao = ao};
	memset(st, 0, sizeof(*st));
	memset(res, 0, sizeof(*res));
	dda_buf_init(&r.keys, SIZE_MAX / 2);
	r.kind = !strcmp(ro->to, "-")					 ? OUT_NDJSON
		 : !strncmp(ro->to, "ddb://", 6) || !strncmp(ro->to, "arn:", 4) ? OUT_TABLE
										 : OUT_DIR;
	r.batch = json_array();
	int rc = r.batch ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	st->baseline_time = DDA_TIME_NONE;
	const char *baseline = ro->baseline;
	char snap[4096] = "";
	if (!rc && baseline && (!strncmp(baseline, "ddb://", 6) || !strncmp(baseline, "arn:", 4))) {
		const char *tmp = getenv("TMPDIR");
		snprintf(snap, sizeof(snap), "%s/ddbaudit-baseline-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(snap)) {
			rc = dda_error_set(err, DDA_EIO, "cannot make a directory under '%s': %s",
					   tmp && *tmp ? tmp : "/tmp", strerror(errno));
			snap[0] = '\0';
		} else {
			rc = snapshot_table(ao, baseline, snap, err);
			baseline = snap;
		}
	}
	if (!rc && baseline) {
		rc = dda__baseline_time(ao, baseline, &st->baseline_time, err);
		if (!rc && st->baseline_time > ro->at) {
			char a[DDA_TIME_STRLEN], b[DDA_TIME_STRLEN];
			rc = dda_error_set(err, DDA_EINVAL,
					   "the baseline was exported at %s, after --at %s",
					   dda_time_format(st->baseline_time, true, a),
					   dda_time_format(ro->at, true, b));
		}
		/* The log's changes after the export: the export holds the rest. */
		ao->src.range.from = ao->dec.range.from = st->baseline_time;
		ao->baseline_source = baseline;
	}
	bool undo = ro->undo_since != DDA_TIME_NONE;
	if (!rc && undo && (r.kind != OUT_TABLE || !ro->nkeys))
		rc = dda_error_set(err, DDA_EINVAL,
				   "--undo-since writes chosen items back into their table: give "
				   "--to ddb://TABLE and --key or --keys-file");
	if (!rc && undo)
		rc = dda__undo_init(&r.undo, ro) ? dda_error_set(err, DDA_ENOMEM, "out of memory")
						 : 0;
	if (!rc && ro->checkpoint && (r.kind != OUT_TABLE || undo || ro->dry_run))
		rc = dda_error_set(err, DDA_EINVAL,
				   "--checkpoint applies to a restore into a table (--to ddb://)");
	if (!rc && ro->checkpoint)
		rc = load_checkpoint(&r, ao, err);
	if (!rc && r.kind == OUT_TABLE)
		rc = table_open(&r, ao, err);
	else if (!rc && r.kind == OUT_DIR && !ro->dry_run)
		rc = dir_open(&r, err);
	if (!rc) {
		void *ctx = ao->ctx;
		ao->state_ctx = &r;
		ao->prior = NULL; /* nothing carried: every item starts empty */
		ao->end = undo ? NULL : on_end;
		ao->finished = undo ? on_undo_finished : on_finished;
		ao->finished_ctx = &r;
		if (undo) {
			ao->visit = dda__undo_visit;
			ao->progress_ctx = ao->progress_ctx ? ao->progress_ctx : ctx;
			ao->ctx = &r.undo;
		}
		rc = dda_audit_run(ao, res, err);
		ao->visit = NULL;
		ao->ctx = ctx;
		ao->state_ctx = ao->finished_ctx = NULL;
		ao->baseline_source = NULL;
		ao->prior = NULL;
		ao->end = NULL;
		ao->finished = NULL;
		if (!rc && r.rc) {
			rc = r.rc;
			*err = r.err;
		}
	}
	if (r.ddb) {
		struct dda_ddb_stats ds;
		dda__ddb_stats(r.ddb, &ds);
		st->throttles = ds.throttles + ds.unprocessed_retries;
	}
	if (r.gz)
		gzclose(r.gz);
	json_decref(r.files);
	json_decref(r.batch);
	json_decref(r.ckpt_id);
	if (snap[0])
		remove_snapshot(snap);
	free(r.v);
	dda__undo_release(&r.undo);
	dda_buf_release(&r.keys);
	dda__ddb_conn_free(r.conn);
	dda__ddb_free(r.ddb);
	return rc;
}
