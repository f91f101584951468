/* The Markdown report: the verdict, the summary, anomalies by kind, the
 * top anomalies (most severe first) and the hours, readable in a terminal
 * and pasteable into a ticket. */
#include "report/report_impl.h"

#include <stdlib.h>

/* Table cells must not break the table: '|' and newlines are escaped. A
 * cell cut at max bytes is never cut inside a UTF-8 sequence. */
static void cell(FILE *out, const char *s, size_t max)
{
	size_t n = 0;
	for (; *s && (n < max || ((unsigned char)*s & 0xc0) == 0x80); s++, n++) {
		if (*s == '|')
			fputs("\\|", out);
		else if (*s == '\n' || *s == '\r')
			fputc(' ', out);
		else
			fputc(*s, out);
	}
	if (*s)
		fputs("...", out);
}

static int cmp_severity(const void *pa, const void *pb)
{
	const struct dda_anomaly *a = *(const struct dda_anomaly *const *)pa;
	const struct dda_anomaly *b = *(const struct dda_anomaly *const *)pb;
	if (a->severity != b->severity)
		return a->severity > b->severity ? -1 : 1;
	return a < b ? -1 : a > b;
}

static void summary(FILE *out, const struct dda_report_info *info, const struct dda_result *res)
{
	const struct dda_summary *s = &res->sum;
	char from[DDA_TIME_STRLEN], to[DDA_TIME_STRLEN];
	int sev = dda_result_max_severity(res);
	int verdict = dda_result_verdict(res, info->fail_on);
	struct dda_buf tmp;
	dda_buf_init(&tmp, 1 << 20);
	fprintf(out, "# ddbaudit report\n\n**Verdict: %s**", dda_run_verdict_name(verdict));
	if (verdict == DDA_RUN_INCOMPLETE)
		fprintf(out, ": not everything was read (%s); the findings below cover only what "
			     "was read",
			dda__text_utf8(&tmp, res->fatal.msg));
	else if (sev >= 0)
		fprintf(out, " (%s found)",
			sev == DDA_SEV_ERROR	 ? "errors"
			: sev == DDA_SEV_WARNING ? "warnings"
						 : "only info findings");
	fprintf(out, "\n\n- Source: `%s`\n", dda__name_text(&tmp, info->source));
	dda_buf_release(&tmp);
	if (res->source.s3)
		fprintf(out, "- Bucket `%s`: versioning %s, Object Lock %s%s%s\n",
			res->source.bucket,
			res->source.versioning[0] ? res->source.versioning : "unknown",
			res->source.object_lock[0] ? res->source.object_lock : "unknown",
			res->source.retention[0] ? ", default retention " : "",
			res->source.retention);
	if (res->source.keys_outside_prefix)
		fprintf(out,
			"- The listing returned %llu keys outside the prefix: ignored, not read\n",
			(unsigned long long)res->source.keys_outside_prefix);
	if (info->range.from == DDA_TIME_NONE && info->range.to == DDA_TIME_NONE)
		fprintf(out, "- Range: every record of the source (no range given)\n");
	else
		fprintf(out, "- Range: %s to %s\n",
			info->range.from == DDA_TIME_NONE
			    ? "the first record"
			    : dda_time_format(info->range.from, false, from),
			info->range.to == DDA_TIME_NONE ? "now"
							: dda_time_format(info->range.to, false, to));
	fprintf(out, "- ddbaudit %s\n\n", dda_version());
	fprintf(out, "| | count |\n|---|---:|\n");
	fprintf(out, "| objects | %llu |\n| bytes | %llu |\n| records | %llu |\n",
		(unsigned long long)s->objects, (unsigned long long)s->bytes,
		(unsigned long long)s->records);
	fprintf(out, "| valid | %llu |\n| invalid | %llu |\n| duplicates | %llu |\n",
		(unsigned long long)s->valid, (unsigned long long)s->invalid,
		(unsigned long long)s->duplicates);
	fprintf(out, "| items | %llu |\n| INSERT / MODIFY / REMOVE | %llu / %llu / %llu |\n",
		(unsigned long long)s->items, (unsigned long long)s->events[DDA_EV_INSERT],
		(unsigned long long)s->events[DDA_EV_MODIFY],
		(unsigned long long)s->events[DDA_EV_REMOVE]);
	if (s->states)
		fprintf(out, "| item states (full exports) | %llu |\n",
			(unsigned long long)s->states);
	fprintf(out, "| anomalies (error / warning / info) | %llu / %llu / %llu |\n\n",
		(unsigned long long)s->anomalies[DDA_SEV_ERROR],
		(unsigned long long)s->anomalies[DDA_SEV_WARNING],
		(unsigned long long)s->anomalies[DDA_SEV_INFO]);
}

static void by_kind(FILE *out, const struct dda_result *res)
{
	if (!res->nanomalies)
		return;
	fprintf(out, "## Anomalies by kind\n\n| kind | severity | count |\n|---|---|---:|\n");
	for (int k = 0; k < DDA_K__COUNT; k++)
		if (res->sum.by_kind[k])
			fprintf(out, "| %s | %s | %llu |\n", dda_kind_name(k),
				dda_severity_name(dda_kind_severity(k)),
				(unsigned long long)res->sum.by_kind[k]);
	fputc('\n', out);
}

/* What report.json and report.md do not count as findings: --ignore and
 * the baseline's work, and the baseline's own state. */
static void not_counted(FILE *out, const struct dda_result *res)
{
	const struct dda_summary *s = &res->sum;
	const struct dda_baseline_stats *b = &res->baseline;
	bool any = false;
	for (int k = 0; k < DDA_K__COUNT; k++)
		any = any || s->ignored[k] || s->suppressed[k];
	if (!any && !b->used)
		return;
	fprintf(out, "## Not counted\n\n");
	if (any)
		fprintf(out, "| kind | ignored (--ignore) | suppressed (baseline) |\n"
			     "|---|---:|---:|\n");
	for (int k = 0; k < DDA_K__COUNT; k++)
		if (s->ignored[k] || s->suppressed[k])
			fprintf(out, "| %s | %llu | %llu |\n", dda_kind_name(k),
				(unsigned long long)s->ignored[k],
				(unsigned long long)s->suppressed[k]);
	if (any)
		fputc('\n', out);
	if (b->used) {
		fprintf(out,
			"Baseline: %llu entries (SHA-256 `%s`): %llu matched, %llu expired, "
			"%llu unused",
			(unsigned long long)b->entries, b->sha256, (unsigned long long)b->matched,
			(unsigned long long)b->expired, (unsigned long long)b->unused);
		for (size_t i = 0; i < b->nunused_lines; i++)
			fprintf(out, "%s%llu", i ? ", " : " (lines ",
				(unsigned long long)b->unused_lines[i]);
		fprintf(out, "%s.\n\n",
			b->nunused_lines < b->unused ? ", ...)" : b->nunused_lines ? ")" : "");
	}
}

/* One row: an anomaly, or the entry standing for a folded kind. */
static void top_row(FILE *out, const struct dda_result *res, const struct dda_anomaly *a,
		    const struct dda__aggregate *ag, struct dda_buf *item, struct dda_buf *tmp)
{
	const struct dda_object *o =
	    a->obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, a->obj) : NULL;
	fprintf(out, "| %s | %s | ", dda_severity_name(a->severity), dda_kind_name(a->kind));
	if (dda__report_folded(a->kind)) {
		fprintf(out, "%zu items, the first ", ag->count);
		cell(out, dda__report_item_text(a, item), 80);
		fputs(" | | ", out);
		cell(out, dda__report_aggregate_detail(ag, tmp), 200);
		fputs(" |\n", out);
		return;
	}
	cell(out, dda__report_item_text(a, item), 80);
	fputs(" | ", out);
	cell(out, o ? dda__name_text(tmp, o->key) : "", 100);
	if (o && a->line > 1)
		fprintf(out, ":%llu", (unsigned long long)a->line);
	fputs(" | ", out);
	cell(out, dda__text_utf8(tmp, a->detail), 200);
	fputs(" |\n", out);
}

static int top(FILE *out, const struct dda_report_info *info, const struct dda_result *res)
{
	size_t n = 0, max = info->md_top ? info->md_top : DDA_REPORT_MD_TOP;
	struct dda__aggregate ag;
	if (!res->nanomalies)
		return 0;
	const struct dda_anomaly **order = malloc(res->nanomalies * sizeof(*order));
	if (!order)
		return DDA_ENOMEM;
	dda__report_aggregate(res, DDA_K_UNKNOWN_PRIOR, &ag);
	for (size_t i = 0; i < res->nanomalies; i++)
		if (!dda__report_folded(res->anomalies[i].kind) || i == ag.first)
			order[n++] = &res->anomalies[i];
	dda__sort(order, n, sizeof(*order), cmp_severity);
	struct dda_buf item, tmp;
	dda_buf_init(&item, 1 << 20);
	dda_buf_init(&tmp, 1 << 20);
	fprintf(out, "## Top anomalies\n\n");
	if (n > max)
		fprintf(out,
			"The %zu most severe of %zu; the JSON and CSV reports list all.\n\n", max,
			n);
	fprintf(out, "| severity | kind | item | object | detail |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < n && i < max; i++)
		top_row(out, res, order[i], &ag, &item, &tmp);
	fputc('\n', out);
	dda_buf_release(&item);
	dda_buf_release(&tmp);
	free(order);
	return 0;
}

static void hours(FILE *out, const struct dda_result *res)
{
	char t[DDA_TIME_STRLEN];
	if (!res->nhours)
		return;
	fprintf(out,
		"## Hours\n\n| hour | objects | records | anomalies |\n|---|---:|---:|---:|\n");
	bool slack = false;
	for (size_t i = 0; i < res->nhours; i++)
		slack |= !res->hours[i].in_range;
	for (size_t i = 0; i < res->nhours; i++)
		fprintf(out, "| %s%s | %llu | %llu | %llu |\n",
			dda_time_format(res->hours[i].hour, false, t),
			res->hours[i].in_range ? "" : " (slack)",
			(unsigned long long)res->hours[i].objects,
			(unsigned long long)res->hours[i].records,
			(unsigned long long)res->hours[i].anomalies);
	fputc('\n', out);
	if (slack)
		fputs("Slack hours lie outside the range and are read for records written late; "
		      "findings about them belong to the run whose range holds them.\n\n",
		      out);
}

int dda__report_md(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		   struct dda_error *err)
{
	summary(out, info, res);
	by_kind(out, res);
	not_counted(out, res);
	if (top(out, info, res))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	hours(out, res);
	if (res->has_manifest)
		fprintf(out, "Manifest: `%s`, SHA-256 `%s`\n",
			info->manifest_name ? info->manifest_name : "manifest.ndjson",
			res->manifest_sha256);
	return 0;
}
