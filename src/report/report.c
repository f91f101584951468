/* Report dispatch: format names, --report DIR, shared helpers. */
#include "report/report_impl.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static const struct {
	const char *name;
	const char *file;
	int (*write)(const struct dda_report_info *, const struct dda_result *, FILE *,
		     struct dda_error *);
} formats[DDA_FMT__COUNT] = {
    [DDA_FMT_JSON] = {"json", "report.json", dda__report_json},
    [DDA_FMT_CSV] = {"csv", "anomalies.csv", dda__report_csv},
    [DDA_FMT_MD] = {"md", "report.md", dda__report_md},
    [DDA_FMT_HTML] = {"html", "report.html", dda__report_html},
};

int dda_report_format_parse(const char *s)
{
	for (int i = 0; i < DDA_FMT__COUNT; i++)
		if (!strcmp(s, formats[i].name))
			return i;
	if (!strcmp(s, "markdown"))
		return DDA_FMT_MD;
	return -1;
}

const char *dda_report_file_name(int format)
{
	return format >= 0 && format < DDA_FMT__COUNT ? formats[format].file : NULL;
}

int dda_report_write(int format, const struct dda_report_info *info, const struct dda_result *res,
		     FILE *out, struct dda_error *err)
{
	if (format < 0 || format >= DDA_FMT__COUNT)
		return dda_error_set(err, DDA_EINVAL, "unknown report format");
	int rc = formats[format].write(info, res, out, err);
	if (!rc && (fflush(out) || ferror(out)))
		rc = dda_error_set(err, DDA_EIO, "cannot write the %s report: %s",
				   formats[format].name, strerror(errno));
	return rc;
}

/* Writes one report into a temporary file beside its final name; the caller
 * renames it (with the rest of the set) or discards it. */
static int write_tmp(int format, const struct dda_report_info *info, const struct dda_result *res,
		     const char *dir, struct dda__afile *a, struct dda_error *err)
{
	struct dda_buf path;
	dda_buf_init(&path, 4096);
	int rc = dda_buf_addf(&path, "%s/%s", dir, formats[format].file);
	if (rc) {
		dda_buf_release(&path);
		return dda_error_set(err, rc, "report path too long");
	}
	rc = dda__afile_open(a, path.ptr, err);
	FILE *f = rc ? NULL : dda__afile_stream(a, err);
	if (!rc && !f)
		rc = DDA_EIO;
	if (!rc)
		rc = dda_report_write(format, info, res, f, err);
	if (!rc)
		rc = dda__afile_finish(a, err);
	dda_buf_release(&path);
	return rc;
}

/* The rename phase, under DIR/.lock so that of two runs on one directory
 * the last one's whole set stands: the manifest first and report.json (which
 * holds the manifest's digest) last. */
static int rename_set(const struct dda_report_info *info, const char *dir,
		      struct dda__afile *files, struct dda_error *err)
{
	static const int order[] = {DDA_FMT_CSV, DDA_FMT_MD, DDA_FMT_HTML, DDA_FMT_JSON};
	struct dda_buf man;
	int lock = -1;
	dda_buf_init(&man, 4096);
	int rc = dda__dir_lock(dir, &lock, err);
	if (!rc && info->manifest_tmp) {
		rc = dda_buf_addf(&man, "%s/%s", dir,
				  info->manifest_name ? info->manifest_name : "manifest.ndjson");
		if (rc)
			rc = dda_error_set(err, rc, "report path too long");
		else if (rename(info->manifest_tmp, man.ptr))
			rc = dda_error_set(err, DDA_EIO, "cannot rename '%s' to '%s': %s",
					   info->manifest_tmp, man.ptr, strerror(errno));
	}
	for (size_t i = 0; !rc && i < DDA_ARRAY_SIZE(order); i++)
		rc = dda__afile_rename(&files[order[i]], err);
	if (!rc)
		rc = dda__dir_sync(files[DDA_FMT_JSON].path.ptr, err);
	dda__dir_unlock(lock);
	dda_buf_release(&man);
	return rc;
}

int dda_report_write_dir(const struct dda_report_info *info, const struct dda_result *res,
			 const char *dir, struct dda_error *err)
{
	struct dda__afile files[DDA_FMT__COUNT];
	int rc = 0;
	for (int f = 0; f < DDA_FMT__COUNT; f++)
		dda__afile_init(&files[f]);
	for (int f = 0; !rc && f < DDA_FMT__COUNT; f++)
		rc = write_tmp(f, info, res, dir, &files[f], err);
	if (!rc)
		rc = rename_set(info, dir, files, err);
	for (int f = 0; f < DDA_FMT__COUNT; f++)
		dda__afile_discard(&files[f]);
	return rc;
}

const char *dda__report_item_text(const struct dda_anomaly *a, struct dda_buf *b)
{
	dda_buf_reset(b);
	if (!a->key || dda_canon_key_text(a->key, a->key_len, b) || !b->ptr)
		return "";
	return b->ptr;
}

int dda__report_set_name(json_t *obj, const char *member, const char *s)
{
	if (!s)
		return json_object_set_new(obj, member, json_null()) ? DDA_ENOMEM : 0;
	size_t n = strlen(s);
	if (dda__utf8_valid(s, n))
		return json_object_set_new(obj, member, json_stringn(s, n)) ? DDA_ENOMEM : 0;
	struct dda_buf text, b64, name;
	dda_buf_init(&text, DDA_BUF_UNLIMITED);
	dda_buf_init(&b64, DDA_BUF_UNLIMITED);
	dda_buf_init(&name, 256);
	int rc = dda__name_escape(&text, s, n);
	if (!rc)
		rc = dda__base64_encode(s, n, &b64);
	if (!rc)
		rc = dda_buf_addf(&name, "%s_b64", member);
	if (!rc && (json_object_set_new(obj, member, json_stringn(text.ptr, text.len)) ||
		    json_object_set_new(obj, name.ptr, json_stringn(b64.ptr, b64.len))))
		rc = DDA_ENOMEM;
	dda_buf_release(&text);
	dda_buf_release(&b64);
	dda_buf_release(&name);
	return rc;
}

json_t *dda__report_text(const char *s)
{
	struct dda_buf tmp;
	dda_buf_init(&tmp, DDA_BUF_UNLIMITED);
	json_t *j = json_string(dda__text_utf8(&tmp, s));
	dda_buf_release(&tmp);
	return j;
}

bool dda__report_folded(int kind)
{
	return kind == DDA_K_UNKNOWN_PRIOR;
}

void dda__report_aggregate(const struct dda_result *res, int kind, struct dda__aggregate *ag)
{
	memset(ag, 0, sizeof(*ag));
	ag->first = SIZE_MAX;
	ag->provisional = true;
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		if (a->kind != kind)
			continue;
		if (!ag->count++)
			ag->first = i;
		if (ag->nsample < DDA_REPORT_SAMPLE)
			ag->sample[ag->nsample++] = i;
		ag->provisional = ag->provisional && a->provisional;
	}
	if (!ag->count)
		ag->provisional = false;
}

const char *dda__report_aggregate_detail(const struct dda__aggregate *ag, struct dda_buf *tmp)
{
	dda_buf_reset(tmp);
	if (dda_buf_addf(tmp,
			 "%zu item%s whose first event in the run is a MODIFY or REMOVE: the "
			 "prior state is unknown (one finding for all; anomalies.csv lists "
			 "each)",
			 ag->count, ag->count == 1 ? "" : "s"))
		return "";
	return tmp->ptr;
}
