/* The CSV report: one anomaly a row, RFC 4180 quoting, a header line.
 * Names that are not plain UTF-8 are escaped (docs/report.md). */
#include "report/report_impl.h"

static void field(FILE *out, const char *s, bool last)
{
	bool quote =
	    strpbrk(s, ",\"\r\n") != NULL || (*s == ' ' || (*s && s[strlen(s) - 1] == ' '));
	if (!quote) {
		fputs(s, out);
	} else {
		fputc('"', out);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', out);
			fputc(*s, out);
		}
		fputc('"', out);
	}
	fputc(last ? '\n' : ',', out);
}

int dda__report_csv(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		    struct dda_error *err)
{
	struct dda_buf item, tmp;
	char t[DDA_TIME_STRLEN], num[32], hex[2 * DDA_DIGEST_LEN + 1], hex2[sizeof(hex)];
	dda_buf_init(&item, 1 << 20);
	dda_buf_init(&tmp, 1 << 20);
	fputs("kind,severity,provisional,item,object_key,object_version,line,time,detail,"
	      "expected_digest,found_digest\n",
	      out);
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		const struct dda_object *o =
		    a->obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, a->obj) : NULL;
		field(out, dda_kind_name(a->kind), false);
		field(out, dda_severity_name(a->severity), false);
		field(out, a->provisional ? "true" : "false", false);
		field(out, dda__report_item_text(a, &item), false);
		field(out, o ? dda__name_text(&tmp, o->key) : "", false);
		field(out, o ? dda__name_text(&tmp, o->version) : "", false);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)a->line);
		field(out, a->line ? num : "", false);
		field(out, a->time == DDA_TIME_NONE ? "" : dda_time_format(a->time, true, t),
		      false);
		field(out, dda__text_utf8(&tmp, a->detail), false);
		if (a->has_expected)
			dda__hex(a->expected, DDA_DIGEST_LEN, hex);
		if (a->has_found)
			dda__hex(a->found, DDA_DIGEST_LEN, hex2);
		field(out, a->has_expected ? hex : "", false);
		field(out, a->has_found ? hex2 : "", true);
	}
	dda_buf_release(&item);
	dda_buf_release(&tmp);
	(void)info;
	(void)err;
	return 0;
}
