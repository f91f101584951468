/* Decoding audit records: splits a chunk into JSON values, detects each
 * record's dialect (seed, stream, export), validates it by DynamoDB's rules
 * and hands valid records and every anomaly to a sink. Bad input never stops
 * the decoder: it becomes an anomaly naming the object and position. */
#include "util/util.h"
#include "ddbaudit/record.h"
#include "record/scan.h"
#include "source/ndjson.h"

#include <ctype.h>
#include <stdarg.h>

/* jansson flags: NUL is legal inside DynamoDB strings; duplicate member names
 * would make an image ambiguous, so they are refused. */
#define DDA_JSON_FLAGS (JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)

enum view { VIEW_KEYS_ONLY, VIEW_NEW_IMAGE, VIEW_OLD_IMAGE, VIEW_NEW_AND_OLD };

enum outcome { OUT_VALID, OUT_INVALID, OUT_FILTERED };

struct dda_decoder {
	struct dda_decoder_opts opts;
	const struct dda_objtab *objs;
	size_t sorted[DDA_MAX_KEY_ATTRS]; /* seed key attributes in name order */
	struct dda_buf key, ikey, why, tmp;
	struct dda__scanner *scan; /* the fast path, or NULL */
};

/* What a dialect parser extracts before the common checks. */
struct fields {
	int dialect;
	int event;
	int64_t time;
	const json_t *keys; /* Keys object, NULL for the seed dialect */
	const char *kval[DDA_MAX_KEY_ATTRS];
	size_t klen[DDA_MAX_KEY_ATTRS];
	const json_t *old_img, *new_img;
	const char *old_name, *new_name;
	int view;
	const char *seq, *event_id;
	size_t seq_len, event_id_len;
	bool ttl;
};

/* Per-chunk state. */
struct run {
	struct dda_decoder *d;
	const struct dda_chunk *c;
	const struct dda_object *o;
	const struct dda_decode_sink *sink;
	struct dda_decode_counts *counts;
	uint32_t index;
	uint64_t line;
	int rc; /* first error from the sink */
};

void dda_decoder_opts_default(struct dda_decoder_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	memcpy(opts->key_names[0], "UserId", sizeof("UserId"));
	memcpy(opts->key_names[1], "ActivityId", sizeof("ActivityId"));
	opts->key_fields[0] = "userId";
	opts->key_fields[1] = "activityId";
	opts->nkeys = 2;
	opts->range.from = DDA_TIME_NONE;
	opts->range.to = DDA_TIME_NONE;
	opts->late_from = DDA_TIME_NONE;
	opts->check_prefix = true;
}

struct dda_decoder *dda_decoder_new(const struct dda_decoder_opts *opts,
				    const struct dda_objtab *objs)
{
	struct dda_decoder *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->opts = *opts;
	d->objs = objs;
	/* At most two names: order them as the serialization does. */
	d->sorted[0] = 0;
	d->sorted[1] = 1;
	if (opts->nkeys == 2 && strcmp(opts->key_names[0], opts->key_names[1]) > 0) {
		d->sorted[0] = 1;
		d->sorted[1] = 0;
	}
	/* Keys are small; images are bounded by the object cap. */
	dda_buf_init(&d->key, 64 << 10);
	dda_buf_init(&d->ikey, 64 << 10);
	dda_buf_init(&d->why, 4096);
	dda_buf_init(&d->tmp, DDA_BUF_UNLIMITED);
	if (!opts->need_images && !(d->scan = dda__scanner_new())) {
		free(d);
		return NULL;
	}
	return d;
}

void dda_decoder_free(struct dda_decoder *d)
{
	if (!d)
		return;
	dda_buf_release(&d->key);
	dda_buf_release(&d->ikey);
	dda_buf_release(&d->why);
	dda_buf_release(&d->tmp);
	dda__scanner_free(d->scan);
	free(d);
}

/* Reports one anomaly for the current record. key may be NULL. */
DDA_PRINTF(5, 6)
static int emit(struct run *r, int kind, int64_t time, const struct dda_buf *key, const char *fmt,
		...)
{
	if (r->rc)
		return r->rc;
	struct dda_anomaly a = {
	    .kind = kind,
	    .severity = dda_kind_severity(kind),
	    .obj = r->c->obj,
	    .index = r->index,
	    .line = r->line,
	    .time = time,
	    .prev_obj = DDA_NO_OBJECT,
	};
	struct dda_buf msg;
	dda_buf_init(&msg, 4096);
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (rc == DDA_ETOOBIG)
		rc = dda_buf_adds(&msg, "(detail too long)");
	a.detail = dda_buf_take(&msg, NULL);
	if (key && key->len) {
		a.key = malloc(key->len);
		if (a.key) {
			memcpy(a.key, key->ptr, key->len);
			a.key_len = (uint32_t)key->len;
		}
	}
	if (rc || !a.detail || (key && key->len && !a.key)) {
		dda_anomaly_release(&a);
		return r->rc = DDA_ENOMEM;
	}
	rc = r->sink->anomaly(r->sink->ctx, &a);
	if (rc)
		r->rc = rc;
	return rc;
}

/* A string member, or NULL when absent or not a string (*bad says which). */
static const char *get_str(const json_t *obj, const char *name, size_t *len, bool *bad)
{
	const json_t *v = json_object_get(obj, name);
	*bad = false;
	if (!v)
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	*len = json_string_length(v);
	return json_string_value(v);
}

static int parse_event_name(const char *s, size_t n)
{
	static const char *const names[] = {"INSERT", "MODIFY", "REMOVE"};
	for (int i = 0; i < 3; i++)
		if (n == strlen(names[i]) && !memcmp(s, names[i], n))
			return i;
	return -1;
}

/* Records outside the range are dropped before any other check, so that
 * findings are only ever about records of the range. Returns 1 to drop. */
static int out_of_range(struct run *r, const struct fields *f)
{
	struct dda_range range = r->d->opts.range;
	int64_t late_from = r->d->opts.late_from;
	if (r->o && r->o->late && late_from != DDA_TIME_NONE && late_from < range.from)
		range.from = late_from;
	return !dda_range_contains(&range, f->time);
}

/* Shared by the dialects: eventName must be present and known. */
static int need_event_name(struct run *r, const json_t *rec, struct fields *f)
{
	bool bad;
	size_t n = 0;
	const char *s = get_str(rec, "eventName", &n, &bad);
	if (!s) {
		emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "%s field 'eventName'",
		     bad ? "mistyped" : "missing");
		return -1;
	}
	f->event = parse_event_name(s, n);
	if (f->event < 0) {
		emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "unknown eventName '%.64s'", s);
		return -1;
	}
	return 0;
}

/* An optional image member: absent is fine, anything but an object is not. */
static int get_image(struct run *r, const json_t *obj, const char *name, const json_t **out,
		     int64_t time)
{
	const json_t *v = json_object_get(obj, name);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		emit(r, DDA_K_INVALID_RECORD, time, NULL, "field '%s' is not an object", name);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seed(struct run *r, const json_t *rec, struct fields *f)
{
	struct dda_decoder *d = r->d;
	bool bad;
	size_t n = 0;
	const char *ts = get_str(rec, "timestamp", &n, &bad);
	f->dialect = DDA_DIALECT_SEED;
	f->time = DDA_TIME_NONE;
	if (!ts)
		return emit(r, DDA_K_INVALID_RECORD, DDA_TIME_NONE, NULL, "%s field 'timestamp'",
			    bad ? "mistyped" : "missing"),
		       -1;
	if (dda_time_parse(ts, n, &f->time))
		return emit(r, DDA_K_INVALID_RECORD, DDA_TIME_NONE, NULL,
			    "timestamp '%.64s' is not ISO-8601", ts),
		       -1;
	if (out_of_range(r, f))
		return 1;
	if (need_event_name(r, rec, f))
		return -1;
	for (size_t i = 0; i < d->opts.nkeys; i++) {
		f->kval[i] = get_str(rec, d->opts.key_fields[i], &f->klen[i], &bad);
		if (!f->kval[i])
			return emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "%s field '%s'",
				    bad ? "mistyped" : "missing", d->opts.key_fields[i]),
			       -1;
		if (!f->klen[i])
			return emit(r, DDA_K_INVALID_VALUE, f->time, NULL,
				    "key field '%s' is empty", d->opts.key_fields[i]),
			       -1;
	}
	static const char *const opt_str[] = {"awsRegion", "eventSource"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(opt_str); i++) {
		get_str(rec, opt_str[i], &n, &bad);
		if (bad)
			return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
				    "field '%s' is not a string", opt_str[i]),
			       -1;
	}
	f->old_name = "oldImage";
	f->new_name = "newImage";
	f->view = VIEW_NEW_AND_OLD; /* the seed writer's table streams both images */
	if (get_image(r, rec, "oldImage", &f->old_img, f->time) ||
	    get_image(r, rec, "newImage", &f->new_img, f->time))
		return -1;
	return 0;
}

static int parse_view(const char *s)
{
	static const char *const names[] = {"KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE",
					    "NEW_AND_OLD_IMAGES"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static bool all_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Epoch seconds (integer or fractional) as a JSON number. */
static int epoch_seconds(const json_t *v, int64_t *out)
{
	double s;
	if (json_is_integer(v))
		s = (double)json_integer_value(v);
	else if (json_is_real(v))
		s = json_real_value(v);
	else
		return -1;
	/* 1970..9999: beyond that the field is garbage, not a time. */
	if (!(s >= 0 && s < 253402300800.0))
		return -1;
	*out = (int64_t)(s * 1e6 + 0.5);
	return 0;
}

static int parse_stream_meta(struct run *r, const json_t *rec, const json_t *db, struct fields *f)
{
	bool bad;
	size_t n = 0;
	f->seq = get_str(db, "SequenceNumber", &f->seq_len, &bad);
	if (bad || (f->seq && !all_digits(f->seq, f->seq_len)))
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "dynamodb.SequenceNumber is not a decimal string"),
		       -1;
	f->event_id = get_str(rec, "eventID", &f->event_id_len, &bad);
	if (bad)
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "field 'eventID' is not a string"),
		       -1;
	const char *vt = get_str(db, "StreamViewType", &n, &bad);
	f->view = vt ? parse_view(vt) : VIEW_NEW_AND_OLD;
	if (bad || f->view < 0)
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "unknown dynamodb.StreamViewType"),
		       -1;
	const json_t *ui = json_object_get(rec, "userIdentity");
	const json_t *pid = json_object_get(ui, "principalId");
	f->ttl = json_is_string(pid) && !strcmp(json_string_value(pid), "dynamodb.amazonaws.com");
	return 0;
}

static int parse_stream(struct run *r, const json_t *rec, struct fields *f)
{
	const json_t *db = json_object_get(rec, "dynamodb");
	f->dialect = DDA_DIALECT_STREAM;
	f->time = DDA_TIME_NONE;
	if (!json_is_object(db))
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "field 'dynamodb' is not an object"),
		       -1;
	/* Optional, as in the Lambda documentation's own example event: such a
	 * record is ordered by its SequenceNumber alone, and no range drops it
	 * (a record of unknown time is never silently left out). */
	const json_t *t = json_object_get(db, "ApproximateCreationDateTime");
	if (t && !json_is_null(t) && epoch_seconds(t, &f->time)) {
		f->time = DDA_TIME_NONE;
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "dynamodb.ApproximateCreationDateTime is not epoch seconds"),
		       -1;
	}
	if (out_of_range(r, f))
		return 1;
	if (need_event_name(r, rec, f))
		return -1;
	f->keys = json_object_get(db, "Keys");
	if (!json_is_object(f->keys))
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "%s field 'dynamodb.Keys'",
			    f->keys ? "mistyped" : "missing"),
		       -1;
	f->old_name = "OldImage";
	f->new_name = "NewImage";
	if (get_image(r, db, "OldImage", &f->old_img, f->time) ||
	    get_image(r, db, "NewImage", &f->new_img, f->time))
		return -1;
	if (parse_stream_meta(r, rec, db, f))
		return -1;
	if (f->time == DDA_TIME_NONE && !f->seq)
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "neither dynamodb.ApproximateCreationDateTime nor "
			    "dynamodb.SequenceNumber: the record cannot be ordered"),
		       -1;
	return 0;
}

/* Microseconds since the epoch as DynamoDB writes them in an export: an N
 * value of plain digits ({"N":"1752308870412608"}). The bare JSON integer
 * that no export ever holds is refused, so a foreign producer is noticed. */
static int export_micros(const json_t *wt, int64_t *out)
{
	const json_t *n =
	    json_is_object(wt) && json_object_size(wt) == 1 ? json_object_get(wt, "N") : NULL;
	if (!json_is_string(n))
		return -1;
	const char *s = json_string_value(n);
	size_t len = json_string_length(n);
	/* Up to the year 9999 (2.5e17 microseconds): 18 digits. */
	if (!all_digits(s, len) || len > 18)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (s[i] - '0');
	if (v >= (int64_t)253402300800 * DDA_USEC_PER_SEC)
		return -1;
	*out = v;
	return 0;
}

static int parse_export(struct run *r, const json_t *rec, struct fields *f)
{
	const json_t *meta = json_object_get(rec, "Metadata");
	const json_t *wt = json_object_get(meta, "WriteTimestampMicros");
	f->dialect = DDA_DIALECT_EXPORT;
	f->time = DDA_TIME_NONE;
	if (!wt || export_micros(wt, &f->time)) {
		f->time = DDA_TIME_NONE;
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "%s",
			    wt ? "Metadata.WriteTimestampMicros is not an N value of "
				 "microseconds ({\"N\":\"1752308870412608\"})"
			       : "missing field 'Metadata.WriteTimestampMicros'"),
		       -1;
	}
	if (out_of_range(r, f))
		return 1;
	f->keys = json_object_get(rec, "Keys");
	if (!json_is_object(f->keys))
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "%s field 'Keys'",
			    f->keys ? "mistyped" : "missing"),
		       -1;
	f->old_name = "OldImage";
	f->new_name = "NewImage";
	if (get_image(r, rec, "OldImage", &f->old_img, f->time) ||
	    get_image(r, rec, "NewImage", &f->new_img, f->time))
		return -1;
	/* An export line has no event name: the images say what happened. In
	 * an export of view NEW_IMAGE a new image alone is an insert or an
	 * update, which cannot be told apart: a MODIFY of unknown old image. */
	bool new_only = r->o && r->o->exp.kind == DDA_EXPORT_INCREMENTAL && r->o->exp.new_only;
	f->view = new_only ? VIEW_NEW_IMAGE : VIEW_NEW_AND_OLD;
	if (f->old_img && f->new_img)
		f->event = DDA_EV_MODIFY;
	else if (f->new_img)
		f->event = new_only ? DDA_EV_MODIFY : DDA_EV_INSERT;
	else
		f->event = DDA_EV_REMOVE;
	if (!f->old_img && !f->new_img)
		f->view = VIEW_KEYS_ONLY;
	return 0;
}

/* A full export's line {"Item":{...}}: the item's state at the export's
 * time, which only the export's manifest-summary.json gives. The key is
 * the --key-schema attributes of the item. */
static int parse_full(struct run *r, const json_t *rec, struct fields *f)
{
	const struct dda_object *o = r->o;
	f->dialect = DDA_DIALECT_EXPORT_FULL;
	f->event = DDA_EV_STATE;
	f->time = DDA_TIME_NONE;
	if (!o || o->exp.kind != DDA_EXPORT_FULL)
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "a full export's item outside a full export (its "
			    "manifest-summary.json gives the time of the item)"),
		       -1;
	f->time = o->exp.time;
	if (out_of_range(r, f))
		return 1;
	f->new_name = "Item";
	f->view = VIEW_NEW_IMAGE;
	if (get_image(r, rec, "Item", &f->new_img, f->time))
		return -1;
	if (!f->new_img)
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "field 'Item' is null"), -1;
	if (json_object_size(rec) != 1)
		return emit(r, DDA_K_INVALID_RECORD, f->time, NULL,
			    "a full export's line holds 'Item' alone"),
		       -1;
	return 0;
}

/* The seed dialect's key: S values from the record fields, serialized as in
 * docs/canonical-form.md (an M of the key attributes, sorted by name). */
static int seed_key(struct dda_decoder *d, const struct fields *f, struct dda_buf *out)
{
	int rc = dda_buf_addc(out, DDA_TAG_M);
	if (!rc)
		rc = dda__put_u32(out, d->opts.nkeys);
	for (size_t i = 0; i < d->opts.nkeys && !rc; i++) {
		size_t fi = d->sorted[i];
		const char *name = d->opts.key_names[fi];
		rc = dda__put_u32(out, strlen(name));
		if (!rc)
			rc = dda_buf_adds(out, name);
		if (!rc)
			rc = dda_buf_addc(out, DDA_TAG_S);
		if (!rc)
			rc = dda__put_u32(out, f->klen[fi]);
		if (!rc)
			rc = dda_buf_add(out, f->kval[fi], f->klen[fi]);
	}
	return rc;
}

/* A full export's key: the --key-schema attributes of its item. */
static int item_key(struct run *r, struct fields *f)
{
	struct dda_decoder *d = r->d;
	const char *names[DDA_MAX_KEY_ATTRS];
	for (size_t i = 0; i < d->opts.nkeys; i++)
		names[i] = d->opts.key_names[i];
	int rc = dda_canon_key(f->new_img, names, d->opts.nkeys, "Item", &d->key, &d->why);
	if (rc == DDA_EFORMAT) {
		emit(r, DDA_K_KEY_MISMATCH, f->time, NULL,
		     "%s (the key attributes are "
		     "--key-schema's)",
		     d->why.ptr ? d->why.ptr : "Item");
		return -1;
	}
	return rc ? (r->rc = rc) : 0;
}

/* Builds the record's item key into d->key. */
static int build_key(struct run *r, struct fields *f)
{
	struct dda_decoder *d = r->d;
	dda_buf_reset(&d->key);
	dda_buf_reset(&d->why);
	if (f->dialect == DDA_DIALECT_EXPORT_FULL)
		return item_key(r, f);
	if (!f->keys) {
		if (seed_key(d, f, &d->key))
			return r->rc = DDA_ENOMEM;
		return 0;
	}
	const char *path = f->dialect == DDA_DIALECT_STREAM ? "dynamodb.Keys" : "Keys";
	int rc = dda_canon_key(f->keys, NULL, 0, path, &d->key, &d->why);
	if (rc == DDA_EFORMAT) {
		emit(r, DDA_K_INVALID_VALUE, f->time, NULL, "%s", d->why.ptr ? d->why.ptr : path);
		return -1;
	}
	if (rc)
		return r->rc = rc;
	if (json_object_size(f->keys) == 0) {
		emit(r, DDA_K_INVALID_RECORD, f->time, NULL, "%s is empty", path);
		return -1;
	}
	return 0;
}

/* Validates an image and computes its digest. */
static int image_digest(struct run *r, struct fields *f, const json_t *img, const char *name,
			uint8_t *out)
{
	struct dda_decoder *d = r->d;
	dda_buf_reset(&d->why);
	int rc = dda_canon_digest(img, name, out, &d->why);
	if (rc == DDA_EFORMAT) {
		emit(r, DDA_K_INVALID_VALUE, f->time, &d->key, "%s",
		     d->why.ptr ? d->why.ptr : name);
		return -1;
	}
	if (rc)
		return r->rc = rc;
	return 0;
}

/* The key attributes inside an image must be the record's key. */
static int check_image_key(struct run *r, struct fields *f, const json_t *img, const char *name)
{
	struct dda_decoder *d = r->d;
	const char *names[DDA_MAX_KEY_ATTRS * 4];
	size_t n = 0;
	if (f->dialect == DDA_DIALECT_EXPORT_FULL)
		return 0; /* the key was taken from this very image */
	if (f->keys) {
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)f->keys, k, v)
		{
			if (n < DDA_ARRAY_SIZE(names))
				names[n++] = k;
		}
	} else {
		for (size_t i = 0; i < d->opts.nkeys; i++)
			names[n++] = d->opts.key_names[i];
	}
	dda_buf_reset(&d->ikey);
	dda_buf_reset(&d->why);
	int rc = dda_canon_key(img, names, n, name, &d->ikey, &d->why);
	if (rc && rc != DDA_EFORMAT)
		return r->rc = rc;
	if (!rc && d->ikey.len == d->key.len && !memcmp(d->ikey.ptr, d->key.ptr, d->key.len))
		return 0;
	dda_buf_reset(&d->tmp);
	if (rc) {
		emit(r, DDA_K_KEY_MISMATCH, f->time, &d->key, "%s", d->why.ptr ? d->why.ptr : name);
		return -1;
	}
	if (dda_canon_key_text(d->ikey.ptr, d->ikey.len, &d->tmp))
		return r->rc = DDA_ENOMEM;
	emit(r, DDA_K_KEY_MISMATCH, f->time, &d->key, "key attributes in %s (%s) differ from %s",
	     name, d->tmp.ptr, f->keys ? "the record's Keys" : "the record's key fields");
	return -1;
}

/* Which images the view and event call for; reports IMAGE_MISMATCH. */
static int check_images(struct run *r, struct fields *f)
{
	if (f->event == DDA_EV_STATE)
		return 0; /* parse_full required the item */
	bool want_old =
	    f->event != DDA_EV_INSERT && (f->view == VIEW_OLD_IMAGE || f->view == VIEW_NEW_AND_OLD);
	bool want_new =
	    f->event != DDA_EV_REMOVE && (f->view == VIEW_NEW_IMAGE || f->view == VIEW_NEW_AND_OLD);
	const char *what = NULL;
	if (f->event == DDA_EV_INSERT && f->old_img)
		what = "INSERT carries an old image";
	else if (f->event == DDA_EV_REMOVE && f->new_img)
		what = "REMOVE carries a new image";
	else if (want_old && !f->old_img)
		what = f->event == DDA_EV_MODIFY ? "MODIFY lacks its old image"
						 : "REMOVE lacks its old image";
	else if (want_new && !f->new_img)
		what = f->event == DDA_EV_MODIFY ? "MODIFY lacks its new image"
						 : "INSERT lacks its new image";
	if (!what)
		return 0;
	emit(r, DDA_K_IMAGE_MISMATCH, f->time, &r->d->key, "%s", what);
	return -1;
}

/* Appends p[0..n) for a message, control characters (NUL included) as
 * "\xHH", as item keys are shown everywhere. */
static int add_shown(struct dda_buf *b, const char *p, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)p[i];
		rc = c < 0x20 || c == 0x7f ? dda_buf_addf(b, "\\x%02X", c) : dda_buf_addc(b, p[i]);
	}
	return rc;
}

/* The seed writer names an object "<userId>-<activityId>.json" under its
 * hour prefix; a record filed under another name is KEY_MISMATCH. */
static int check_object_name(struct run *r, struct fields *f)
{
	const struct dda_object *o = r->o;
	struct dda_decoder *d = r->d;
	if (f->dialect != DDA_DIALECT_SEED || !o || o->hour == DDA_TIME_NONE || d->opts.nkeys != 2)
		return 0;
	const char *name = o->key + o->name_off;
	size_t n = strlen(name);
	size_t a = f->klen[0], b = f->klen[1];
	if (n > 5 + a + b && !memcmp(name, f->kval[0], a) && name[a] == '-' &&
	    !memcmp(name + a + 1, f->kval[1], b)) {
		const char *ext = name + a + 1 + b;
		if (!strcmp(ext, ".json") || !strcmp(ext, ".json.gz"))
			return 0;
	}
	/* Key values are not NUL-terminated (they may point into the input)
	 * and may hold a NUL: they are shown escaped, not cut. */
	struct dda_buf want;
	dda_buf_init(&want, 1024);
	if (add_shown(&want, f->kval[0], DDA_MIN(a, 100)) || dda_buf_addc(&want, '-') ||
	    add_shown(&want, f->kval[1], DDA_MIN(b, 100))) {
		dda_buf_release(&want);
		return r->rc = DDA_ENOMEM;
	}
	int rc = emit(r, DDA_K_KEY_MISMATCH, f->time, &d->key,
		      "object name '%.200s' does not match the record's key (expected "
		      "'%s.json')",
		      name, want.ptr);
	dda_buf_release(&want);
	return rc;
}

static int check_prefix_skew(struct run *r, struct fields *f)
{
	const struct dda_object *o = r->o;
	if (!o || o->hour == DDA_TIME_NONE || f->dialect != DDA_DIALECT_SEED)
		return 0;
	if (f->time >= o->hour - DDA_PREFIX_SLACK &&
	    f->time < o->hour + DDA_USEC_PER_HOUR + DDA_PREFIX_SLACK)
		return 0;
	char t1[DDA_TIME_STRLEN], t2[DDA_TIME_STRLEN];
	return emit(r, DDA_K_PREFIX_SKEW, f->time, &r->d->key,
		    "record time %s is outside its hour prefix %s (beyond 1h of slack)",
		    dda_time_format(f->time, true, t1), dda_time_format(o->hour, false, t2));
}

/* An incremental export holds the changes written in [exportFromTime,
 * exportToTime): a line outside it contradicts the manifest. */
static int check_export_window(struct run *r, struct fields *f)
{
	const struct dda_object *o = r->o;
	if (f->dialect != DDA_DIALECT_EXPORT || !o || o->exp.kind != DDA_EXPORT_INCREMENTAL)
		return 0;
	if (f->time >= o->exp.from && f->time < o->exp.to)
		return 0;
	char t1[DDA_TIME_STRLEN], t2[DDA_TIME_STRLEN], t3[DDA_TIME_STRLEN];
	return emit(r, DDA_K_EXPORT_MISMATCH, f->time, &r->d->key,
		    "written at %s, outside its export's window [%s, %s) "
		    "(manifest-summary.json)",
		    dda_time_format(f->time, true, t1), dda_time_format(o->exp.from, true, t2),
		    dda_time_format(o->exp.to, true, t3));
}

static int detect_dialect(const json_t *rec)
{
	if (json_object_get(rec, "dynamodb"))
		return DDA_DIALECT_STREAM;
	if (json_object_get(rec, "Metadata"))
		return DDA_DIALECT_EXPORT;
	if (json_object_get(rec, "eventName") || json_object_get(rec, "timestamp"))
		return DDA_DIALECT_SEED;
	if (json_object_get(rec, "Item"))
		return DDA_DIALECT_EXPORT_FULL;
	return -1;
}

static int extract(struct run *r, const json_t *rec, struct fields *f)
{
	if (!json_is_object(rec)) {
		emit(r, DDA_K_INVALID_RECORD, DDA_TIME_NONE, NULL,
		     "expected a JSON object, found %s",
		     json_is_array(rec) ? "an array" : "a scalar");
		return -1;
	}
	switch (detect_dialect(rec)) {
	case DDA_DIALECT_SEED:
		return parse_seed(r, rec, f);
	case DDA_DIALECT_STREAM:
		return parse_stream(r, rec, f);
	case DDA_DIALECT_EXPORT:
		return parse_export(r, rec, f);
	case DDA_DIALECT_EXPORT_FULL:
		return parse_full(r, rec, f);
	}
	emit(r, DDA_K_INVALID_RECORD, DDA_TIME_NONE, NULL,
	     "not an audit record (no eventName, dynamodb, Metadata or Item field)");
	return -1;
}

static int validate(struct run *r, struct fields *f, struct dda_record *out)
{
	if (build_key(r, f))
		return -1;
	if (f->old_img && (image_digest(r, f, f->old_img, f->old_name, out->old_digest) ||
			   check_image_key(r, f, f->old_img, f->old_name)))
		return -1;
	if (f->new_img && (image_digest(r, f, f->new_img, f->new_name, out->new_digest) ||
			   check_image_key(r, f, f->new_img, f->new_name)))
		return -1;
	if (check_images(r, f))
		return -1;
	return 0;
}

static void count(struct run *r, enum outcome o)
{
	switch (o) {
	case OUT_VALID:
		r->counts->records++;
		r->counts->valid++;
		break;
	case OUT_INVALID:
		r->counts->records++;
		r->counts->invalid++;
		break;
	case OUT_FILTERED:
		r->counts->filtered++;
		break;
	}
}

/* The checks that only add findings, then the record goes to the sink. */
static enum outcome finish_record(struct run *r, struct fields *f, struct dda_record *out)
{
	struct dda_decoder *d = r->d;
	if (d->opts.check_prefix && (check_object_name(r, f) || check_prefix_skew(r, f)))
		return OUT_INVALID; /* only a sink error gets here */
	if (check_export_window(r, f))
		return OUT_INVALID;
	out->dialect = f->dialect;
	out->event = f->event;
	out->time = f->time;
	out->seq = f->seq;
	out->seq_len = f->seq_len;
	out->event_id = f->event_id;
	out->event_id_len = f->event_id_len;
	out->key = (const uint8_t *)d->key.ptr;
	out->key_len = d->key.len;
	/* A state has no old image by nature, not for want of one. */
	out->old_unknown = !out->has_old && f->event != DDA_EV_INSERT && f->event != DDA_EV_STATE;
	out->new_unknown = !out->has_new && f->event != DDA_EV_REMOVE;
	out->ttl = f->ttl;
	int rc = r->sink->record(r->sink->ctx, out);
	if (rc && !r->rc)
		r->rc = rc;
	return OUT_VALID;
}

/* Decodes one record value; returns its outcome. */
static enum outcome decode_record(struct run *r, const json_t *rec)
{
	struct fields f = {.time = DDA_TIME_NONE};
	struct dda_record out = {
	    .obj = r->c->obj, .object = r->o, .index = r->index, .line = r->line};
	int x = extract(r, rec, &f);
	if (x)
		return x > 0 ? OUT_FILTERED : OUT_INVALID;
	if (validate(r, &f, &out))
		return OUT_INVALID;
	out.has_old = f.old_img != NULL;
	out.has_new = f.new_img != NULL;
	out.old_image = f.old_img;
	out.new_image = f.new_img;
	out.raw = rec;
	return finish_record(r, &f, &out);
}

/* The fast path (scan.h) for one value at p[0..n). Returns true when it
 * decided the value (a record or a filtered one); *used is its length. */
static bool try_fast(struct run *r, const char *p, size_t n, bool whole, size_t *used)
{
	struct dda_decoder *d = r->d;
	struct dda__scan_out so;
	/* The fast path knows the range alone: late objects (rare) take the
	 * full path, which reaches back to late_from for them. */
	if (!d->scan || (r->o && r->o->late))
		return false;
	int sr = dda__scan_seed(d->scan, &d->opts, p, n, whole, &so);
	if (sr != DDA_SCAN_RECORD && sr != DDA_SCAN_FILTERED)
		return false;
	*used = so.consumed;
	r->counts->values++;
	if (sr == DDA_SCAN_FILTERED) {
		count(r, OUT_FILTERED);
		r->index++;
		return true;
	}
	struct fields f = {.dialect = DDA_DIALECT_SEED,
			   .event = so.event,
			   .time = so.time,
			   .view = VIEW_NEW_AND_OLD};
	memcpy(f.kval, so.kval, sizeof(f.kval));
	memcpy(f.klen, so.klen, sizeof(f.klen));
	struct dda_record out = {.obj = r->c->obj,
				 .object = r->o,
				 .index = r->index,
				 .line = r->line,
				 .has_old = so.has_old,
				 .has_new = so.has_new,
				 .old_raw = so.old_raw,
				 .new_raw = so.new_raw,
				 .old_raw_len = so.old_raw_len,
				 .new_raw_len = so.new_raw_len,
				 .old_raw_compact = so.old_raw_compact,
				 .new_raw_compact = so.new_raw_compact,
				 .old_size = so.old_size,
				 .new_size = so.new_size,
				 .region = so.region,
				 .region_len = so.region_len};
	memcpy(out.old_digest, so.old_digest, DDA_DIGEST_LEN);
	memcpy(out.new_digest, so.new_digest, DDA_DIGEST_LEN);
	dda_buf_reset(&d->key);
	if (seed_key(d, &f, &d->key)) {
		r->rc = DDA_ENOMEM;
		return true;
	}
	count(r, finish_record(r, &f, &out));
	r->index++;
	return true;
}

/* One JSON value: a record, or a Lambda event holding several. */
static void decode_value(struct run *r, const json_t *v)
{
	const json_t *recs = json_is_object(v) ? json_object_get(v, "Records") : NULL;
	if (!recs && json_is_object(v) && json_object_get(v, "DDBStreamBatchInfo"))
		recs = json_object_get(json_object_get(v, "ddbaudit"), "Records"); /* a DLQ line */
	r->counts->values++;
	if (json_is_array(recs) && !json_object_get(v, "eventName")) {
		size_t i;
		const json_t *rec;
		json_array_foreach(recs, i, rec)
		{
			count(r, decode_record(r, rec));
			r->index++;
			if (r->rc)
				return;
		}
		return;
	}
	count(r, decode_record(r, v));
	r->index++;
}

/* The first byte of p[0..n) that JSON text never holds, not even inside a
 * string (a control character but tab, newline and carriage return), or -1:
 * such bytes mean binary data (an image, compressed or random bytes). */
static long binary_at(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return (long)i;
	}
	return -1;
}

/* A value at p[0..n) that is not JSON. Binary data is UNREADABLE (not
 * text), invalid UTF-8 in text INVALID_VALUE (as docs/anomalies.md says), a
 * duplicate member name INVALID_RECORD, anything else UNREADABLE. */
static void parse_failed(struct run *r, const json_error_t *je, const char *p, size_t n)
{
	int kind = DDA_K_UNREADABLE;
	long bin = binary_at(p, n);
	if (bin < 0 && json_error_code(je) == json_error_invalid_utf8)
		kind = DDA_K_INVALID_VALUE;
	else if (bin < 0 && json_error_code(je) == json_error_duplicate_key)
		kind = DDA_K_INVALID_RECORD;
	r->counts->records++;
	r->counts->invalid++;
	if (bin >= 0) {
		emit(r, kind, DDA_TIME_NONE, NULL,
		     "not text: byte 0x%02x at offset %ld of the value at line %llu is a control "
		     "character, which JSON never holds (binary data, not JSON)",
		     (unsigned char)p[bin], bin, (unsigned long long)r->line);
		r->index++;
		return;
	}
	int line = je->line > 0 ? (int)(r->line + (uint64_t)je->line - 1) : (int)r->line;
	emit(r, kind, DDA_TIME_NONE, NULL, "%s at line %d, column %d: %s",
	     kind == DDA_K_INVALID_VALUE ? "invalid UTF-8" : "not valid JSON", line, je->column,
	     je->text);
	r->index++;
}

static size_t count_lines(const char *p, size_t n)
{
	size_t lines = 0;
	const char *end = p + n;
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		lines++;
		p++;
	}
	return lines;
}

static size_t skip_space(const char *p, size_t pos, size_t n, uint64_t *line)
{
	while (pos < n && (p[pos] == ' ' || p[pos] == '\t' || p[pos] == '\n' || p[pos] == '\r')) {
		if (p[pos] == '\n')
			(*line)++;
		pos++;
	}
	return pos;
}

/* A whole object: one or more JSON values. After a broken value the decoder
 * resumes at the next line only when the object is line-structured (the bad
 * value began on its own line and others came before); otherwise the rest of
 * the object is one UNREADABLE finding. */
static void decode_doc(struct run *r)
{
	const char *p = r->c->data.ptr;
	size_t n = r->c->data.len, pos = 0;
	if (!p) {
		p = "";
		n = 0;
	}
	pos = skip_space(p, pos, n, &r->line);
	/* An export writes an empty data file for an empty partition. */
	if (pos == n && r->o && r->o->exp.kind != DDA_EXPORT_NONE)
		return;
	if (pos == n) {
		r->counts->records++;
		r->counts->invalid++;
		emit(r, DDA_K_UNREADABLE, DDA_TIME_NONE, NULL, "object is empty");
		return;
	}
	while (pos < n && !r->rc) {
		size_t used;
		if (try_fast(r, p + pos, n - pos, false, &used)) {
			r->line += count_lines(p + pos, used);
			pos = skip_space(p, pos + used, n, &r->line);
			continue;
		}
		json_error_t je;
		json_t *v =
		    json_loadb(p + pos, n - pos, DDA_JSON_FLAGS | JSON_DISABLE_EOF_CHECK, &je);
		if (!v) {
			parse_failed(r, &je, p + pos, n - pos);
			const char *nl = r->index > 1 ? memchr(p + pos, '\n', n - pos) : NULL;
			if (!nl || je.line > 1)
				return;
			r->line++;
			pos = skip_space(p, (size_t)(nl - p) + 1, n, &r->line);
			continue;
		}
		decode_value(r, v);
		json_decref(v);
		r->line += count_lines(p + pos, (size_t)je.position);
		pos = skip_space(p, pos + (size_t)je.position, n, &r->line);
	}
}

/* Complete NDJSON lines: each non-blank line is one value. A line's
 * records are numbered from the line's first position, as the reader
 * counts them, so a chunk's numbers never run into the next chunk's. */
static void decode_lines(struct run *r)
{
	const char *p = r->c->data.ptr;
	if (!p)
		return;
	const char *end = p + r->c->data.len;
	/* The reader has looked already when it says plain (the common case);
	 * otherwise (a chunk it could not say so of, or made elsewhere) look. */
	bool plain = r->c->plain || dda__ndjson_plain(p, r->c->data.len);
	while (p < end && !r->rc) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t len = (size_t)(le - p);
		size_t s = skip_space(p, 0, len, &(uint64_t){0});
		uint64_t next =
		    (uint64_t)r->index + (plain ? s < len : dda__ndjson_line_slots(p, len));
		size_t used;
		if (s < len && !try_fast(r, p, len, true, &used)) {
			json_error_t je;
			json_t *v = json_loadb(p, len, DDA_JSON_FLAGS, &je);
			if (v) {
				decode_value(r, v);
				json_decref(v);
			} else {
				parse_failed(r, &je, p, len);
			}
		}
		r->index = next > UINT32_MAX ? UINT32_MAX : (uint32_t)next;
		r->line++;
		p = nl ? nl + 1 : end;
	}
}

/* A whole data file of an export holds as many items as its line in
 * manifest-files.json says: fewer or more is EXPORT_MISMATCH. */
static void check_export_count(struct run *r)
{
	const struct dda_object *o = r->o;
	const struct dda_chunk *c = r->c;
	if (r->rc || !o || !o->exp.listed || !c->last || c->first_index)
		return;
	uint64_t n = r->index - c->first_index;
	if (n != o->exp.items)
		emit(r, DDA_K_EXPORT_MISMATCH, DDA_TIME_NONE, NULL,
		     "the data file holds %llu items, its export's manifest-files.json %llu",
		     (unsigned long long)n, (unsigned long long)o->exp.items);
}

int dda_decode_chunk(struct dda_decoder *d, const struct dda_chunk *c,
		     const struct dda_decode_sink *sink, struct dda_decode_counts *counts)
{
	struct run r = {
	    .d = d,
	    .c = c,
	    .o = d->objs ? dda_objtab_get(d->objs, c->obj) : NULL,
	    .sink = sink,
	    .counts = counts,
	    .index = c->first_index,
	    .line = c->first_line ? c->first_line : 1,
	};
	if (c->status != DDA_CHUNK_OK) {
		counts->records++;
		counts->invalid++;
		emit(&r, DDA_K_UNREADABLE, DDA_TIME_NONE, NULL, "%s", c->msg);
		return r.rc;
	}
	if (c->kind == DDA_CHUNK_LINES)
		decode_lines(&r);
	else
		decode_doc(&r);
	check_export_count(&r);
	return r.rc;
}

int dda_key_schema_parse(const char *spec, struct dda_decoder_opts *opts, struct dda_error *err)
{
	static const char *const fields[] = {"userId", "activityId"};
	static const char *const roles[] = {"HASH", "RANGE"};
	const char *p = spec;
	size_t nk = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *colon = memchr(p, ':', len);
		size_t nlen = colon ? (size_t)(colon - p) : len;
		bool role_ok =
		    !colon || ((size_t)(p + len - colon - 1) == strlen(roles[nk < 2 ? nk : 0]) &&
			       !memcmp(colon + 1, roles[nk < 2 ? nk : 0], len - nlen - 1));
		/* DynamoDB attribute names are UTF-8; a name that is not could
		 * match no record and could not be written in the report. */
		if (nk >= DDA_MAX_KEY_ATTRS || !nlen || nlen >= DDA_KEY_NAME_MAX || !role_ok ||
		    !dda__utf8_valid(p, nlen))
			return dda_error_set(
			    err, DDA_EINVAL,
			    "invalid --key-schema '%s' (expected NAME:HASH[,NAME:RANGE])", spec);
		memcpy(opts->key_names[nk], p, nlen);
		opts->key_names[nk][nlen] = '\0';
		opts->key_fields[nk] = fields[nk];
		nk++;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!nk)
		return dda_error_set(err, DDA_EINVAL, "invalid --key-schema '%s'", spec);
	opts->nkeys = nk;
	return 0;
}
