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

/* Writes through "<name>.tmp" and renames, so a reader (or a crash) never
 * sees half a report. */
static int write_one(int format, const struct dda_report_info *info, const struct dda_result *res,
		     const char *dir, struct dda_error *err)
{
	struct dda_buf path, tmp;
	dda_buf_init(&path, 4096);
	dda_buf_init(&tmp, 4096);
	int rc = dda_buf_addf(&path, "%s/%s", dir, formats[format].file);
	if (!rc)
		rc = dda_buf_addf(&tmp, "%s.tmp", path.ptr);
	if (rc) {
		rc = dda_error_set(err, rc, "report path too long");
		goto out;
	}
	FILE *f = fopen(tmp.ptr, "wb");
	if (!f) {
		rc =
		    dda_error_set(err, DDA_EIO, "cannot create '%s': %s", tmp.ptr, strerror(errno));
		goto out;
	}
	rc = dda_report_write(format, info, res, f, err);
	if (fclose(f) && !rc)
		rc = dda_error_set(err, DDA_EIO, "cannot write '%s': %s", tmp.ptr, strerror(errno));
	if (!rc && rename(tmp.ptr, path.ptr))
		rc =
		    dda_error_set(err, DDA_EIO, "cannot rename '%s': %s", tmp.ptr, strerror(errno));
	if (rc)
		unlink(tmp.ptr);
out:
	dda_buf_release(&path);
	dda_buf_release(&tmp);
	return rc;
}

int dda_report_write_dir(const struct dda_report_info *info, const struct dda_result *res,
			 const char *dir, struct dda_error *err)
{
	for (int f = 0; f < DDA_FMT__COUNT; f++) {
		int rc = write_one(f, info, res, dir, err);
		if (rc)
			return rc;
	}
	return 0;
}

const char *dda__report_item_text(const struct dda_anomaly *a, struct dda_buf *b)
{
	dda_buf_reset(b);
	if (!a->key || dda_canon_key_text(a->key, a->key_len, b) || !b->ptr)
		return "";
	return b->ptr;
}
