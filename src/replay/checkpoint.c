/* The checkpoint: each lane's acknowledged position and the held items,
 * replaced atomically (temporary file, fsync, rename, fsync of the
 * directory) after every acknowledged batch, so a replay killed at any
 * moment resumes without resending what was acknowledged. It names the
 * arguments and the plan it belongs to, and refuses any other. */
#include "replay/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* v2 names its arguments one by one, so a refusal can say which differs;
 * v3's plan digest also covers the bytes of every record and the size and
 * ETag of its object, so a source that changed in place is refused; v4's
 * covers what each record is made from (its synthesis input) and its
 * object's name, version, ETag and size instead of the bytes, which are
 * made only when they are sent; v5's hashes a record's synthesis input
 * four words a step (dda__hash64_wide), so v4's digests no longer match. */
#define CHECKPOINT_FORMAT "ddbaudit.checkpoint/v5"

static const char *str(const json_t *doc, const char *name)
{
	const char *s = json_string_value(json_object_get(doc, name));
	return s ? s : "";
}

static void show(const json_t *v, char *out, size_t cap);

/* A count in a checkpoint: a JSON integer from 0 to max. A real (1e300),
 * a string or a negative number is never read as 0, which would resend
 * what was acknowledged. */
static bool count_ok(const json_t *v, json_int_t max)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max;
}

static bool hex_ok(const json_t *v, size_t digits)
{
	const char *s = json_string_value(v);
	return s && strlen(s) == digits && strspn(s, "0123456789abcdef") == digits;
}

/* Every field a resume reads, checked before any is used: what is wrong,
 * or NULL. why holds the message's detail. */
static const char *check_fields(const json_t *doc, char *why, size_t cap)
{
	const json_t *lanes = json_object_get(doc, "lanes"), *held = json_object_get(doc, "held");
	const json_t *v;
	size_t i;
	const char *id = json_string_value(json_object_get(doc, "runId"));
	if (!id || strlen(id) != 36)
		return "its runId is not a run id";
	if (!json_is_object(json_object_get(doc, "arguments")))
		return "it does not name its arguments";
	if (!hex_ok(json_object_get(doc, "plan"), 64))
		return "its plan digest is not 64 hex digits";
	if (!count_ok(json_object_get(doc, "records"), (json_int_t)1 << 53)) {
		show(json_object_get(doc, "records"), why, cap);
		return "its record count is not an integer in range";
	}
	if (!json_is_array(lanes) || !json_array_size(lanes) ||
	    json_array_size(lanes) > DDA_REPLAY_MAX_LANES)
		return "its lanes are not a list of 1 to 256 positions";
	json_array_foreach(lanes, i, v)
	{
		if (!count_ok(v, (json_int_t)1 << 53)) {
			char val[200];
			show(v, val, sizeof(val));
			snprintf(why, cap, "lane %zu is %s", i, val);
			return "a lane position is not an integer in range";
		}
	}
	if (!json_is_array(held))
		return "its held items are not a list";
	json_array_foreach(held, i, v)
	{
		if (!hex_ok(v, 16)) {
			show(v, why, cap);
			return "a held item is not 16 hex digits";
		}
	}
	return NULL;
}

static json_t *load(const char *path, struct dda_error *err, bool *missing)
{
	json_error_t je;
	*missing = false;
	if (access(path, F_OK) && errno == ENOENT) {
		*missing = true;
		return NULL;
	}
	json_t *doc = json_load_file(path, 0, &je);
	if (!doc || !json_is_object(doc) ||
	    strcmp(str(doc, "format"), CHECKPOINT_FORMAT)) {
		bool older = doc && !strncmp(str(doc, "format"), "ddbaudit.checkpoint/", 20);
		dda_error_set(err, DDA_EINVAL,
			      "cannot resume from '%s': %s (%s)", path,
			      older ? "written by another version of ddbaudit"
				    : "not a ddbaudit checkpoint",
			      doc ? str(doc, "format") : je.text);
		json_decref(doc);
		return NULL;
	}
	char why[256] = "";
	const char *bad = check_fields(doc, why, sizeof(why));
	if (bad) {
		dda_error_set(err, DDA_EINVAL,
			      "cannot resume from '%s': %s%s%s%s; it is damaged: remove it to start "
			      "over",
			      path, bad, why[0] ? " (" : "", why, why[0] ? ")" : "");
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* A value for a message: strings as they are, the rest as JSON. */
static void show(const json_t *v, char *out, size_t cap)
{
	if (!v) {
		snprintf(out, cap, "(none)");
	} else if (json_is_string(v)) {
		snprintf(out, cap, "'%.200s'", json_string_value(v));
	} else {
		char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		snprintf(out, cap, "%.200s", t ? t : "?");
		free(t);
	}
}

/* A checkpoint of another shard (or of an unsharded run): that shard's
 * lanes are not this one's, so resuming would skip records never sent. */
static int shard_differs(const char *path, const json_t *had, const json_t *want,
			 struct dda_error *err)
{
	char a[64], b[64];
	const char *h = json_string_value(had), *w = json_string_value(want);
	snprintf(a, sizeof(a), "%s%.40s", h ? "by shard " : "without --shard", h ? h : "");
	snprintf(b, sizeof(b), "%s%.40s", w ? "is shard " : "has no --shard", w ? w : "");
	return dda_error_set(err, DDA_EINVAL,
			     "cannot resume from '%s': it was written %s and this run %s; "
			     "each shard resumes from its own checkpoint (put {shard} in "
			     "--checkpoint), or remove it to start over",
			     path, a, b);
}

/* The first argument whose value differs between the checkpoint's and
 * this run's: 0 when none does. */
static int compare_args(const char *path, const json_t *had, const json_t *want,
			struct dda_error *err)
{
	const char *k;
	json_t *v;
	char a[256], b[256];
	if (!json_is_object(had))
		return dda_error_set(err, DDA_EINVAL,
				     "cannot resume from '%s': it does not name its arguments", path);
	for (int pass = 0; pass < 2; pass++) {
		json_object_foreach((json_t *)(pass ? had : want), k, v)
		{
			const json_t *h = json_object_get(had, k), *w = json_object_get(want, k);
			if (h && w && json_equal((json_t *)h, (json_t *)w))
				continue;
			if (!strcmp(k, "--shard"))
				return shard_differs(path, h, w, err);
			show(h, a, sizeof(a));
			show(w, b, sizeof(b));
			return dda_error_set(err, DDA_EINVAL,
					     "cannot resume from '%s': it was written with %s %s and "
					     "this run has %s %s; run with the same arguments, or "
					     "remove it to start over",
					     path, k, a, k, b);
		}
	}
	return 0;
}

int dda__checkpoint_check_args(const char *path, const json_t *arguments,
			       struct dda_error *err)
{
	bool missing;
	json_t *doc = load(path, err, &missing);
	if (!doc)
		return missing ? 0 : err->code;
	int rc = compare_args(path, json_object_get(doc, "arguments"), arguments, err);
	json_decref(doc);
	return rc;
}

int dda__checkpoint_run_id(const char *path, char out[37])
{
	struct dda_error err = {0};
	bool missing;
	json_t *doc = load(path, &err, &missing);
	const char *id = json_string_value(json_object_get(doc, "runId"));
	int found = id && strlen(id) < 37;
	if (found)
		snprintf(out, 37, "%s", id);
	json_decref(doc);
	return found;
}

int dda__checkpoint_load(const char *path, struct dda_plan *p, const struct dda_replay_opts *o,
			 size_t *lane_pos, uint64_t **held, size_t *nheld, struct dda_error *err)
{
	char plan[65];
	bool missing;
	if (!p->digest_ok && dda__plan_digest(p, p->digest))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	p->digest_ok = true;
	json_t *doc = load(path, err, &missing);
	if (!doc)
		return missing ? 0 : err->code;
	dda__hex(p->digest, 32, plan);
	json_t *lanes = json_object_get(doc, "lanes");
	json_t *hl = json_object_get(doc, "held");
	int rc = o->arguments ? compare_args(path, json_object_get(doc, "arguments"),
					     o->arguments, err)
			      : 0;
	json_int_t then = json_integer_value(json_object_get(doc, "records"));
	if (!rc && strcmp(str(doc, "plan"), plan) && (size_t)then != p->n)
		rc = dda_error_set(err, DDA_EINVAL,
				   "cannot resume from '%s': the source changed since it was "
				   "written (%lld records planned then, %zu now); remove it to "
				   "start over",
				   path, (long long)then, p->n);
	else if (!rc && strcmp(str(doc, "plan"), plan))
		rc = dda_error_set(err, DDA_EINVAL,
				   "cannot resume from '%s': the source changed since it was "
				   "written (the same %zu records, but their bytes or their "
				   "objects' sizes or ETags differ); remove it to start over",
				   path, p->n);
	else if (!rc && json_array_size(lanes) != (size_t)p->lanes)
		rc = dda_error_set(err, DDA_EINVAL, "cannot resume from '%s': wrong lane count",
				   path);
	for (int l = 0; !rc && l < p->lanes; l++) {
		json_int_t pos = json_integer_value(json_array_get(lanes, (size_t)l));
		size_t len = p->lane_start[l + 1] - p->lane_start[l];
		if (pos < 0 || (size_t)pos > len)
			rc = dda_error_set(err, DDA_EINVAL,
					   "cannot resume from '%s': lane %d is at %lld, past its %zu "
					   "records; it is damaged: remove it to start over",
					   path, l, (long long)pos, len);
		else
			lane_pos[l] = (size_t)pos;
	}
	size_t n = json_array_size(hl);
	*held = !rc && n ? calloc(n, sizeof(**held)) : NULL;
	if (!rc && n && !*held)
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++) /* 16 hex digits: load() checked */
		(*held)[i] = strtoull(json_string_value(json_array_get(hl, i)), NULL, 16);
	*nheld = rc ? 0 : n;
	json_decref(doc);
	return rc;
}

int dda__checkpoint_save(const char *path, const struct dda_plan *p,
			 const struct dda_replay_opts *o, const size_t *lane_pos,
			 const uint64_t *held, size_t nheld, struct dda_error *err)
{
	char plan[65], h[17];
	uint8_t d[32];
	if (p->digest_ok) /* made when the checkpoint was loaded */
		memcpy(d, p->digest, sizeof(d));
	else if (dda__plan_digest(p, d))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	dda__hex(d, 32, plan);
	json_t *lanes = json_array(), *hl = json_array();
	for (int l = 0; l < p->lanes; l++)
		json_array_append_new(lanes, json_integer((json_int_t)lane_pos[l]));
	for (size_t i = 0; i < nheld; i++) {
		snprintf(h, sizeof(h), "%016llx", (unsigned long long)held[i]);
		json_array_append_new(hl, json_string(h));
	}
	json_t *args = o->arguments ? json_deep_copy(o->arguments) : json_object();
	json_t *doc = json_pack("{sssssosssIsoso}", "format", CHECKPOINT_FORMAT, "runId",
				p->synth.run_id, "arguments", args, "plan", plan, "records",
				(json_int_t)p->n, "lanes", lanes, "held", hl);
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	/* A unique temporary name: two runs (or a crash's leftover) never
	 * write into one another's file before the rename. */
	struct dda__afile a;
	struct dda_error why = {0};
	int rc = dda__afile_open(&a, path, &why);
	FILE *f = rc ? NULL : dda__afile_stream(&a, &why);
	if (!rc && (!f || fputs(text, f) < 0 || fputc('\n', f) < 0))
		rc = dda_error_set(&why, DDA_EIO, "%s", strerror(errno));
	if (!rc)
		rc = dda__afile_commit(&a, &why);
	dda__afile_discard(&a);
	free(text);
	return rc ? dda_error_set(err, DDA_EIO, "cannot write the checkpoint '%s': %s", path,
				  why.msg)
		  : 0;
}
