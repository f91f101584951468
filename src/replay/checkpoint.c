/* The checkpoint: each lane's acknowledged position and the held items,
 * replaced atomically (temporary file, fsync, rename, fsync of the
 * directory) after every acknowledged batch, so a replay killed at any
 * moment resumes without resending what was acknowledged. It names the
 * arguments and the plan it belongs to, and refuses any other. */
#include "replay/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECKPOINT_FORMAT "ddbaudit.checkpoint/v1"

static const char *str(const json_t *doc, const char *name)
{
	const char *s = json_string_value(json_object_get(doc, name));
	return s ? s : "";
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
		dda_error_set(err, DDA_EINVAL,
			      "cannot resume from '%s': not a ddbaudit checkpoint (%s)", path,
			      doc ? "unknown format" : je.text);
		json_decref(doc);
		return NULL;
	}
	return doc;
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
	char args[65], plan[65];
	bool missing;
	json_t *doc = load(path, err, &missing);
	if (!doc)
		return missing ? 0 : err->code;
	dda__hex(o->fingerprint, 32, args);
	dda__hex(p->digest, 32, plan);
	json_t *lanes = json_object_get(doc, "lanes");
	json_t *hl = json_object_get(doc, "held");
	int rc = 0;
	if (strcmp(str(doc, "arguments"), args))
		rc = dda_error_set(err, DDA_EINVAL,
				   "cannot resume from '%s': it was written by a replay with other "
				   "arguments (source, range, selection, view, parallelism or "
				   "target); run with the same arguments, or remove it to start "
				   "over",
				   path);
	else if (strcmp(str(doc, "plan"), plan))
		rc = dda_error_set(err, DDA_EINVAL,
				   "cannot resume from '%s': the source changed since it was "
				   "written (%lld records planned then, %zu now); remove it to "
				   "start over",
				   path, (long long)json_integer_value(json_object_get(doc, "records")),
				   p->n);
	else if (json_array_size(lanes) != (size_t)p->lanes)
		rc = dda_error_set(err, DDA_EINVAL, "cannot resume from '%s': wrong lane count",
				   path);
	for (int l = 0; !rc && l < p->lanes; l++) {
		json_int_t pos = json_integer_value(json_array_get(lanes, (size_t)l));
		if (pos < 0 || (size_t)pos > p->lane_start[l + 1] - p->lane_start[l])
			rc = dda_error_set(err, DDA_EINVAL,
					   "cannot resume from '%s': lane %d is out of range", path,
					   l);
		else
			lane_pos[l] = (size_t)pos;
	}
	size_t n = json_array_size(hl);
	*held = !rc && n ? calloc(n, sizeof(**held)) : NULL;
	if (!rc && n && !*held)
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < n; i++)
		(*held)[i] = strtoull(json_is_string(json_array_get(hl, i))
					  ? json_string_value(json_array_get(hl, i))
					  : "0",
				      NULL, 16);
	*nheld = rc ? 0 : n;
	json_decref(doc);
	return rc;
}

static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -1;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int dda__checkpoint_save(const char *path, const struct dda_plan *p,
			 const struct dda_replay_opts *o, const size_t *lane_pos,
			 const uint64_t *held, size_t nheld, struct dda_error *err)
{
	char args[65], plan[65], tmp[4200], h[17];
	dda__hex(o->fingerprint, 32, args);
	dda__hex(p->digest, 32, plan);
	json_t *lanes = json_array(), *hl = json_array();
	for (int l = 0; l < p->lanes; l++)
		json_array_append_new(lanes, json_integer((json_int_t)lane_pos[l]));
	for (size_t i = 0; i < nheld; i++) {
		snprintf(h, sizeof(h), "%016llx", (unsigned long long)held[i]);
		json_array_append_new(hl, json_string(h));
	}
	json_t *doc = json_pack("{sssssssssIsoso}", "format", CHECKPOINT_FORMAT, "runId",
				p->synth.run_id, "arguments", args, "plan", plan, "records",
				(json_int_t)p->n, "lanes", lanes, "held", hl);
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	bool bad = !f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fflush(f) ||
		   fsync(fileno(f));
	int e = errno;
	free(text);
	if (f && fclose(f))
		bad = true;
	if (bad || rename(tmp, path) || sync_dir(path))
		return dda_error_set(err, DDA_EIO, "cannot write the checkpoint '%s': %s", path,
				     strerror(bad ? e : errno));
	return 0;
}
