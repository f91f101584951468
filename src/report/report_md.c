/* The Markdown report: the verdict, the summary, anomalies by kind, the
 * top anomalies (most severe first) and the hours, readable in a terminal
 * and pasteable into a ticket. */
#include "report/report_impl.h"

#include <stdlib.h>

/* Table cells must not break the table or carry markup: '|' is escaped,
 * newlines become spaces and '<' is escaped so that no tag is ever
 * rendered. A cell is written whole, never cut. */
static void cell(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '|' || *s == '<')
			fputc('\\', out);
		fputc(*s == '\n' || *s == '\r' ? ' ' : *s, out);
	}
}

/* s as an inline code span: fenced by more backticks than it holds in a
 * row, newlines as spaces (names come escaped, so only messages have any). */
static void code(FILE *out, const char *s)
{
	size_t run = 0, longest = 0;
	for (const char *p = s; *p; p++) {
		run = *p == '`' ? run + 1 : 0;
		longest = DDA_MAX(longest, run);
	}
	for (size_t i = 0; i <= longest; i++)
		fputc('`', out);
	fputs(s[0] == '`' ? " " : "", out);
	for (const char *p = s; *p; p++)
		fputc(*p == '\n' || *p == '\r' ? ' ' : *p, out);
	fputs(*s && s[strlen(s) - 1] == '`' ? " " : "", out);
	for (size_t i = 0; i <= longest; i++)
		fputc('`', out);
}

static int cmp_severity(const void *pa, const void *pb)
{
	const struct dda_anomaly *a = *(const struct dda_anomaly *const *)pa;
	const struct dda_anomaly *b = *(const struct dda_anomaly *const *)pb;
	if (a->severity != b->severity)
		return a->severity > b->severity ? -1 : 1;
	return a < b ? -1 : a > b;
}

static void verdict_line(FILE *out, const struct dda_report_info *info,
			 const struct dda_result *res, struct dda_buf *tmp)
{
	int sev = dda_result_max_severity(res);
	int verdict = dda_result_verdict(res, info->fail_on);
	fprintf(out, "# ddbaudit report\n\n**Verdict: %s**", dda_run_verdict_name(verdict));
	if (verdict == DDA_RUN_INCOMPLETE)
		fprintf(out, ": not everything was read (%s); the findings below cover only what "
			     "was read",
			dda__text_utf8(tmp, res->fatal.msg));
	else if (sev >= 0)
		fprintf(out, " (%s found)",
			sev == DDA_SEV_ERROR	 ? "errors"
			: sev == DDA_SEV_WARNING ? "warnings"
						 : "only info findings");
	fputs("\n\n", out);
}

/* "- Label: `value`" for a name or a message, "unknown" for NULL. */
static void code_item(FILE *out, const char *label, const char *s, bool name, struct dda_buf *tmp)
{
	fprintf(out, "- %s: ", label);
	if (s)
		code(out, name ? dda__name_text(tmp, s) : dda__text_utf8(tmp, s));
	else
		fputs("unknown", out);
	fputc('\n', out);
}

static void caller_item(FILE *out, const struct dda_report_caller *c, struct dda_buf *tmp)
{
	if (!c->account) {
		fprintf(out, "- Caller: unknown (%s)\n",
			dda__text_utf8(tmp, c->reason ? c->reason : "not asked"));
		return;
	}
	fprintf(out, "- Caller: account %s, ARN ", c->account);
	code(out, c->arn ? c->arn : "");
	fputs(", user id ", out);
	code(out, c->user_id ? c->user_id : "");
	fputc('\n', out);
}

static void range_item(FILE *out, const struct dda_range *r)
{
	char from[DDA_TIME_STRLEN], to[DDA_TIME_STRLEN];
	if (r->from == DDA_TIME_NONE && r->to == DDA_TIME_NONE) {
		fprintf(out, "- Range: open: every record of the source, from the beginning\n");
		return;
	}
	fprintf(out, "- Range: from %s to %s\n",
		r->from == DDA_TIME_NONE ? "the beginning" : dda_time_format(r->from, false, from),
		r->to == DDA_TIME_NONE ? "open (the run's now)"
				       : dda_time_format(r->to, false, to));
}

static void bucket_items(FILE *out, const struct dda_source_facts *f)
{
	if (f->s3)
		fprintf(out, "- Bucket `%s`: versioning %s, Object Lock %s%s%s\n", f->bucket,
			f->versioning[0] ? f->versioning : "unknown",
			f->object_lock[0] ? f->object_lock : "unknown",
			f->retention[0] ? ", default retention " : "", f->retention);
	if (f->keys_outside_prefix)
		fprintf(out,
			"- The listing returned %llu keys outside the prefix: ignored, not read\n",
			(unsigned long long)f->keys_outside_prefix);
}

static void state_item(FILE *out, const struct dda_report_state *st, struct dda_buf *tmp)
{
	char wm[DDA_TIME_STRLEN];
	const char *prev = st->previous_report_sha256;
	if (!st->path)
		return;
	fputs("- State: ", out);
	code(out, dda__name_text(tmp, st->path));
	if (prev && *prev)
		fprintf(out, ", previous report SHA-256 `%s`", prev);
	else
		fputs(", the first run of its chain", out);
	if (st->previous_watermark != DDA_TIME_NONE)
		fprintf(out, ", audited before up to %s",
			dda_time_format(st->previous_watermark, false, wm));
	if (st->watermark != DDA_TIME_NONE)
		fprintf(out, ", now up to %s", dda_time_format(st->watermark, false, wm));
	fputc('\n', out);
}

/* "512 bytes", "24.0 KiB", "2.0 GiB". */
static const char *size_text(uint64_t n, char buf[32])
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;
	if (n < 1024) {
		snprintf(buf, 32, "%llu bytes", (unsigned long long)n);
		return buf;
	}
	for (v /= 1024; v >= 1024 && u + 1 < DDA_ARRAY_SIZE(units); u++)
		v /= 1024;
	snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

static void memory_item(FILE *out, const struct dda_run_memory *m)
{
	char limit[32], disk[32];
	const struct dda_spill_stats *s = &m->spill;
	if (!s->limit) {
		fputs("- Memory: no limit on the event table\n", out);
		return;
	}
	fprintf(out, "- Memory: event table limit %s (%s)", size_text(s->limit, limit),
		m->source && !strcmp(m->source, "option") ? "`--memory-limit`"
		: m->source && !strcmp(m->source, "cgroup")
		    ? "half the cgroup's memory limit"
		    : "half the machine's memory");
	if (s->runs)
		fprintf(out, "; %llu events spilled in %llu runs, %s on disk\n",
			(unsigned long long)s->events, (unsigned long long)s->runs,
			size_text(s->bytes, disk));
	else
		fputs("; nothing spilled\n", out);
}

/* Everything an auditor asks before reading the findings: when, by whom,
 * with what, over what, and whether all of it was read. */
static void metadata(FILE *out, const struct dda_report_info *info, const struct dda_result *res,
		     struct dda_buf *tmp)
{
	char at[DDA_TIME_STRLEN];
	int64_t gen = info->generated_at ? info->generated_at : res->finished;
	fprintf(out, "- Generated at: %s\n",
		gen == DDA_TIME_NONE ? "unknown" : dda_time_format(gen, false, at));
	code_item(out, "Command line", info->command_line, false, tmp);
	fprintf(out, "- ddbaudit %s (commit %s)\n", dda_version(),
		info->commit ? info->commit : "unknown");
	code_item(out, "Host", info->host, true, tmp);
	caller_item(out, &info->caller, tmp);
	code_item(out, "Source", info->source ? info->source : "", true, tmp);
	bucket_items(out, &res->source);
	range_item(out, &info->range);
	fprintf(out, "- Versions: %s\n",
		info->versions ? "every version of every key (`--versions`)"
			       : "the current version of each key (no `--versions`)");
	memory_item(out, &res->memory);
	if (res->fatal.code)
		fprintf(out, "- Completeness: incomplete (%s)\n",
			dda__text_utf8(tmp, res->fatal.msg));
	else
		fputs("- Completeness: complete: everything in the range was read\n", out);
	state_item(out, &info->state, tmp);
	fputc('\n', out);
}

static void summary(FILE *out, const struct dda_report_info *info, const struct dda_result *res)
{
	const struct dda_summary *s = &res->sum;
	struct dda_buf tmp;
	dda_buf_init(&tmp, 1 << 20);
	verdict_line(out, info, res, &tmp);
	metadata(out, info, res, &tmp);
	dda_buf_release(&tmp);
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

/* One line for each kind this report names (counted, ignored or
 * suppressed): what it means and what to do. */
static void legend(FILE *out, const struct dda_result *res)
{
	const struct dda_summary *s = &res->sum;
	bool any = false;
	for (int k = 0; k < DDA_K__COUNT; k++) {
		if (!s->by_kind[k] && !s->ignored[k] && !s->suppressed[k])
			continue;
		if (!any)
			fputs("## What the kinds mean\n\n", out);
		any = true;
		fprintf(out, "- **%s** (%s): %s\n", dda_kind_name(k),
			dda_severity_name(dda_kind_severity(k)), dda_kind_legend(k));
	}
	if (any)
		fputc('\n', out);
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
		cell(out, dda__report_item_text(a, item));
		fputs(" | | ", out);
		cell(out, dda__report_aggregate_detail(ag, tmp));
		fputs(" |\n", out);
		return;
	}
	cell(out, dda__report_item_text(a, item));
	fputs(" | ", out);
	cell(out, o ? dda__name_text(tmp, o->key) : "");
	if (o && a->line > 1)
		fprintf(out, ":%llu", (unsigned long long)a->line);
	fputs(" | ", out);
	cell(out, dda__text_utf8(tmp, a->detail));
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
	legend(out, res);
	if (top(out, info, res))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	hours(out, res);
	if (res->has_manifest)
		fprintf(out, "Manifest: `%s`, SHA-256 `%s`\n",
			info->manifest_name ? info->manifest_name : "manifest.ndjson",
			res->manifest_sha256);
	return 0;
}
