/* The HTML report: one self-contained page (inline CSS and SVG, no script,
 * nothing fetched: its Content-Security-Policy forbids it) for an auditor.
 * Its figures come from the tree report.json is written from, its rows
 * from the result; every text that comes from data is HTML-escaped. */
#include "report/report_impl.h"

#include <errno.h>
#include <inttypes.h>

/* Nested objects of the run metadata are shown to this depth, deeper ones
 * as JSON text: the page stays readable whatever a later schema adds. */
#define HTML_MAX_DEPTH 4
/* Bars of the hourly charts: the viewBox is stretched to the page width. */
#define CHART_H 160
#define CHART_BAR 10
/* A kind's list starts open up to this many rows; longer ones start closed
 * (the browser's find still opens them). */
#define HTML_OPEN_ROWS 200
/* Long lists are cut into chunks of this many rows, each its own table in
 * a box the browser lays out only when it comes into view
 * (content-visibility: auto): opening a list of 50,000 rows took 47 s as
 * one table. Find in page still searches every chunk. */
#define HTML_CHUNK 500

struct html {
	FILE *out;
	const struct dda_report_info *info;
	const struct dda_result *res;
	const json_t *report; /* the report.json tree */
	struct dda_buf tmp, item;
	/* Per anomaly: the number of its item's timeline + 1, or 0 for none. */
	uint32_t *timeline;
};

/* One colour per kind, in kind order; kinds added later reuse the palette. */
static const char *const palette[] = {
    "#b2182b", "#d6604d", "#f4a582", "#8c510a", "#bf812d", "#dfc27d", "#e31a1c",
    "#92c5de", "#762a83", "#9970ab", "#4393c3", "#5aae61", "#fdb863", "#2166ac",
    "#c51b7d", "#878787", "#e08214", "#1b7837", "#35978f",
};

/* HTML text of valid UTF-8 (the caller makes it so): '&', '<' and '>' as
 * references, and in an attribute value (quoted with '"') the quotes too;
 * control characters as \xHH like names. */
static void esc_utf8(FILE *out, const char *s, size_t n, bool attr)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		default:
			if (attr && (c == '"' || c == '\''))
				fputs(c == '"' ? "&quot;" : "&#39;", out);
			else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
				fprintf(out, "\\x%02X", c);
			else
				fputc(c, out);
		}
	}
}

/* Free text (a message, a JSON string) as HTML element content. */
static void esc(struct html *h, const char *s)
{
	s = dda__text_utf8(&h->tmp, s ? s : "");
	esc_utf8(h->out, s, strlen(s), false);
}

/* The same, for an attribute value in double quotes. */
static void esc_attr(struct html *h, const char *s)
{
	s = dda__text_utf8(&h->tmp, s ? s : "");
	esc_utf8(h->out, s, strlen(s), true);
}

/* A name (an object key, a version) as HTML, escaped as every output shows
 * names that are not plain text. */
static void esc_name(struct html *h, const char *s)
{
	s = dda__name_text(&h->tmp, s ? s : "");
	esc_utf8(h->out, s, strlen(s), false);
}

static uint64_t num(const json_t *obj, const char *member)
{
	json_int_t v = json_integer_value(json_object_get(obj, member));
	return v > 0 ? (uint64_t)v : 0;
}

#define NCOLORS ((int)DDA_ARRAY_SIZE(palette))

static void head(struct html *h, const char *verdict)
{
	FILE *out = h->out;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
	      "base-uri 'none'\">\n"
	      "<meta name=\"referrer\" content=\"no-referrer\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
	      out);
	fprintf(out, "<meta name=\"generator\" content=\"ddbaudit %s\">\n", dda_version());
	fprintf(out, "<title>ddbaudit report: %s</title>\n<style>\n", verdict);
	fputs("body{font:14px/1.4 sans-serif;margin:1em 2em;color:#222}\n"
	      "h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ccc;"
	      "margin-top:1.6em}\n"
	      "table{border-collapse:collapse;margin:.4em 0}\n"
	      "th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}\n"
	      "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	      "table.f,table.o{width:100%;table-layout:fixed;margin:0}\n"
	      ".ch{content-visibility:auto;contain-intrinsic-size:auto 20000px}\n"
	      "table.f td:nth-child(2),table.f td:nth-child(3),table.o td,table.diff td{"
	      "font-family:monospace;word-break:break-all}\n"
	      "table.f td:nth-child(5){white-space:pre-wrap;word-break:break-word}\n"
	      "table.diff td:first-child{font-family:inherit;word-break:normal}\n"
	      "table.f tr>:nth-child(1){width:6em}table.f tr>:nth-child(4){width:14em}"
	      "table.f tr>:nth-child(5){width:35%}\n"
	      "table.o tr>:nth-child(3){width:6em}table.o tr>:nth-child(4){width:11em}"
	      "table.o tr>:nth-child(5){width:5em}table.o tr>:nth-child(6){width:25%}"
	      "table.o td:nth-child(3){text-align:right}\n"
	      "table.kv>tbody>tr>th{background:#f4f4f4;font-weight:normal}\n"
	      "code,.m{font-family:monospace;word-break:break-all}\n"
	      ".d{white-space:pre-wrap;word-break:break-word}\n"
	      ".verdict{font-size:1.3em;font-weight:bold;padding:.4em .8em;display:inline-block}\n"
	      ".clean{background:#d9f0d3}.findings{background:#fddbc7}"
	      ".incomplete{background:#b2182b;color:#fff}\n"
	      ".error{color:#b2182b;font-weight:bold}.warning{color:#8c510a}.info{color:#2166ac}\n"
	      "details{margin:.3em 0}summary{cursor:pointer}\n"
	      "details.kind>summary{font-weight:bold}h4{margin:.8em 0 .2em}\n"
	      ".chart{width:100%;height:160px;border:1px solid #ddd;display:block}\n"
	      ".hist{width:100%;max-width:720px;display:block}\n"
	      ".axis{display:flex;justify-content:space-between;font-size:.85em;color:#555}\n"
	      ".rec{fill:#878787}.slack{opacity:.45}\n"
	      ".sw{display:inline-block;width:.8em;height:.8em;margin-right:.3em}\n"
	      "ol.tl>li{margin:.3em 0}\n"
	      ".add{background:#e6f5d0}.del{background:#fde0ef}.chg{background:#fff7bc}\n",
	      h->out);
	for (int k = 0; k < DDA_K__COUNT; k++)
		fprintf(out, ".k%d{fill:%s;background:%s}\n", k, palette[k % NCOLORS],
			palette[k % NCOLORS]);
	fputs("@media print{body{margin:0;color:#000;font-size:10.5px}*{background:none!important}"
	      ".verdict{border:2px solid #000}"
	      "details::details-content{display:block;content-visibility:visible}"
	      ".ch{content-visibility:visible}"
	      "summary{list-style:none}"
	      "svg rect{print-color-adjust:exact;-webkit-print-color-adjust:exact}"
	      "tr{break-inside:avoid}}\n</style></head>\n<body>\n",
	      out);
}

/* A JSON value of the run metadata, whatever its shape. */
static void value(struct html *h, const json_t *v, int depth);

static void kv_table(struct html *h, const json_t *obj, int depth)
{
	const char *k;
	const json_t *v;
	fputs("<table class=\"kv\"><tbody>", h->out);
	json_object_foreach((json_t *)obj, k, v)
	{
		fputs("<tr><th>", h->out);
		esc(h, k);
		fputs("</th><td>", h->out);
		value(h, v, depth + 1);
		fputs("</td></tr>\n", h->out);
	}
	fputs("</tbody></table>", h->out);
}

static void value(struct html *h, const json_t *v, int depth)
{
	if (json_is_string(v)) {
		esc(h, json_string_value(v));
	} else if (json_is_null(v)) {
		fputs("<i>none</i>", h->out);
	} else if (json_is_object(v) && depth < HTML_MAX_DEPTH) {
		kv_table(h, v, depth);
	} else if (json_is_array(v) && !json_array_size(v)) {
		fputs("<i>none</i>", h->out);
	} else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		fputs(json_is_array(v) || json_is_object(v) ? "<code>" : "", h->out);
		esc(h, s ? s : "?");
		fputs(json_is_array(v) || json_is_object(v) ? "</code>" : "", h->out);
		free(s);
	}
}

static const char *time_text(int64_t t, char *buf)
{
	return t == DDA_TIME_NONE ? "" : dda_time_format(t, false, buf);
}

static void verdict(struct html *h, const json_t *run)
{
	const char *v = json_string_value(json_object_get(run, "verdict"));
	char from[DDA_TIME_STRLEN], to[DDA_TIME_STRLEN];
	const struct dda_range *r = &h->info->range;
	v = v ? v : "unknown";
	fputs("<h1>ddbaudit report</h1>\n<p><span class=\"verdict ", h->out);
	esc_attr(h, v);
	fputs("\" id=\"verdict\" data-verdict=\"", h->out);
	esc_attr(h, v);
	fputs("\">Verdict: ", h->out);
	esc(h, v);
	fputs("</span></p>\n", h->out);
	if (json_is_string(json_object_get(run, "error"))) {
		fputs("<p class=\"error\">Not everything was read: ", h->out);
		esc(h, json_string_value(json_object_get(run, "error")));
		fputs(". The findings below cover only what was read.</p>\n", h->out);
	}
	fputs("<p>Source <code>", h->out);
	esc(h, json_string_value(json_object_get(run, "source")));
	if (r->from == DDA_TIME_NONE && r->to == DDA_TIME_NONE)
		fputs("</code>, every record of the source (no range given)", h->out);
	else
		fprintf(h->out, "</code>, range %s to %s",
			r->from == DDA_TIME_NONE ? "the first record" : time_text(r->from, from),
			r->to == DDA_TIME_NONE ? "now" : time_text(r->to, to));
	fprintf(h->out, "; ddbaudit %s.</p>\n", dda_version());
}

static void metadata(struct html *h, const json_t *run)
{
	fputs("<h2 id=\"run\">Run</h2>\n", h->out);
	value(h, run, 0);
	fputc('\n', h->out);
}

/* The summary with an id on every figure ("sum-records",
 * "sum-anomalies-error", "sum-by_kind-GAP"), for readers and tests. */
static void summary_rows(struct html *h, const json_t *obj, const char *prefix)
{
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)obj, k, v)
	{
		fputs("<tr><th>", h->out);
		esc(h, prefix);
		esc(h, k);
		if (json_is_object(v)) {
			fputs(json_object_size(v) ? "</th><td></td></tr>\n"
						  : "</th><td><i>none</i></td></tr>\n",
			      h->out);
			char sub[128];
			snprintf(sub, sizeof(sub), "%s%s ", prefix, k);
			summary_rows(h, v, sub);
			continue;
		}
		fputs("</th><td class=\"n\" id=\"sum-", h->out);
		for (const char *p = prefix; *p; p++)
			fputc(*p == ' ' ? '-' : *p, h->out);
		esc(h, k);
		fputs("\">", h->out);
		value(h, v, HTML_MAX_DEPTH);
		fputs("</td></tr>\n", h->out);
	}
}

static void summary(struct html *h, const json_t *sum)
{
	fputs("<h2 id=\"summary\">Summary</h2>\n<table class=\"kv\"><tbody>\n", h->out);
	summary_rows(h, sum, "");
	fputs("</tbody></table>\n", h->out);
}

/* Kinds from the most severe, in kind order within a severity. */
static int kind_at(int i)
{
	int n = 0;
	for (int sev = DDA_SEV__COUNT - 1; sev >= 0; sev--)
		for (int k = 0; k < DDA_K__COUNT; k++)
			if (dda_kind_severity(k) == sev && n++ == i)
				return k;
	return -1;
}

static void legend(struct html *h, const json_t *by_kind)
{
	if (!json_object_size(by_kind))
		return;
	fputs("<h2 id=\"legend\">What the findings mean</h2>\n<table class=\"legend\"><thead>"
	      "<tr><th>kind</th><th>severity</th><th>count</th><th>meaning</th>"
	      "<th>what to do</th></tr></thead><tbody>\n",
	      h->out);
	for (int i = 0; i < DDA_K__COUNT; i++) {
		int k = kind_at(i);
		uint64_t n = num(by_kind, dda_kind_name(k));
		if (!n)
			continue;
		fprintf(h->out,
			"<tr><th><span class=\"sw k%d\"></span><a href=\"#kind-%s\">%s</a></th>"
			"<td class=\"%s\">%s</td><td class=\"n\">%" PRIu64 "</td><td>",
			k, dda_kind_name(k), dda_kind_name(k),
			dda_severity_name(dda_kind_severity(k)),
			dda_severity_name(dda_kind_severity(k)), n);
		esc(h, dda_kind_meaning(k));
		fputs("</td><td>", h->out);
		esc(h, dda_kind_action(k));
		fputs("</td></tr>\n", h->out);
	}
	fputs("</tbody></table>\n", h->out);
}

/* The hour row a finding counts in, as the audit counts it: its object's
 * hour, or the hour a MISSING_HOUR names. -1 for none. */
static long hour_index(const struct dda_result *res, const struct dda_anomaly *an)
{
	const struct dda_object *ob =
	    an->obj != DDA_NO_OBJECT ? dda_objtab_get(res->objs, an->obj) : NULL;
	int64_t hour = ob ? ob->hour : an->kind == DDA_K_MISSING_HOUR ? an->time : DDA_TIME_NONE;
	size_t lo = 0, hi = res->nhours;
	if (hour == DDA_TIME_NONE)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (res->hours[mid].hour < hour)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < res->nhours && res->hours[lo].hour == hour ? (long)lo : -1;
}

/* hours x kinds counts of findings; NULL when there are no hours. */
static uint64_t *hour_kinds(const struct dda_result *res)
{
	uint64_t *m = calloc(res->nhours ? res->nhours * DDA_K__COUNT : 1, sizeof(*m));
	for (size_t i = 0; m && i < res->nanomalies; i++) {
		long hi = hour_index(res, &res->anomalies[i]);
		if (hi >= 0)
			m[(size_t)hi * DDA_K__COUNT + (size_t)res->anomalies[i].kind]++;
	}
	return m;
}

/* An hour of the report's hours array ("" should it be null). */
static const char *hour_of(const json_t *hr)
{
	const char *s = json_string_value(json_object_get(hr, "hour"));
	return s ? s : "";
}

static void chart_axis(struct html *h, const json_t *hours, uint64_t max, const char *what)
{
	const char *first = hour_of(json_array_get(hours, 0));
	const char *last = hour_of(json_array_get(hours, json_array_size(hours) - 1));
	fprintf(h->out,
		"<div class=\"axis\"><span>%s</span><span>%s per hour, highest %" PRIu64
		"; faded bars: slack hours</span><span>%s</span></div>\n",
		first, what, max, last);
}

static void records_chart(struct html *h, const json_t *hours)
{
	size_t n = json_array_size(hours);
	uint64_t max = 1;
	for (size_t i = 0; i < n; i++)
		max = DDA_MAX(max, num(json_array_get(hours, i), "records"));
	fprintf(h->out,
		"<h3>Records per hour</h3>\n<svg class=\"chart\" id=\"chart-records\" "
		"viewBox=\"0 0 %zu %d\" preserveAspectRatio=\"none\" role=\"img\" "
		"aria-label=\"records per hour\">\n",
		n * CHART_BAR, CHART_H);
	for (size_t i = 0; i < n; i++) {
		const json_t *hr = json_array_get(hours, i);
		uint64_t r = num(hr, "records");
		double bh = (double)r * CHART_H / (double)max;
		fprintf(h->out,
			"<rect class=\"rec%s\" x=\"%zu\" y=\"%.2f\" width=\"%d\" height=\"%.2f\" "
			"data-hour=\"%s\" data-records=\"%" PRIu64 "\"><title>%s: %" PRIu64
			" records</title></rect>\n",
			json_is_true(json_object_get(hr, "in_range")) ? "" : " slack",
			i * CHART_BAR, CHART_H - bh, CHART_BAR - 1, bh, hour_of(hr), r, hour_of(hr),
			r);
	}
	fputs("</svg>\n", h->out);
	chart_axis(h, hours, max, "records");
}

/* One hour's stacked bar: a rect per kind present, from the bottom. */
static void anomaly_bar(struct html *h, const json_t *hr, size_t i, const uint64_t *counts,
			uint64_t max)
{
	const char *hour = hour_of(hr);
	double y = CHART_H;
	fprintf(h->out,
		"<g class=\"hour%s\" data-hour=\"%s\" data-records=\"%" PRIu64
		"\" data-anomalies=\"%" PRIu64 "\">",
		json_is_true(json_object_get(hr, "in_range")) ? "" : " slack", hour,
		num(hr, "records"), num(hr, "anomalies"));
	for (int k = 0; k < DDA_K__COUNT; k++) {
		if (!counts[k])
			continue;
		double bh = (double)counts[k] * CHART_H / (double)max;
		y -= bh;
		fprintf(h->out,
			"<rect class=\"k%d\" x=\"%zu\" y=\"%.2f\" width=\"%d\" height=\"%.2f\" "
			"data-kind=\"%s\" data-n=\"%" PRIu64 "\"><title>%s: %" PRIu64
			" %s</title></rect>",
			k, i * CHART_BAR, y, CHART_BAR - 1, bh, dda_kind_name(k), counts[k], hour,
			counts[k], dda_kind_name(k));
	}
	fputs("</g>\n", h->out);
}

static int anomalies_chart(struct html *h, const json_t *hours)
{
	const struct dda_result *res = h->res;
	size_t n = json_array_size(hours);
	uint64_t max = 1;
	if (n != res->nhours)
		return DDA_EINVAL;
	uint64_t *m = hour_kinds(res);
	if (!m)
		return DDA_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t sum = 0;
		for (int k = 0; k < DDA_K__COUNT; k++)
			sum += m[i * DDA_K__COUNT + (size_t)k];
		max = DDA_MAX(max, sum);
	}
	fprintf(h->out,
		"<h3>Findings per hour, by kind</h3>\n<svg class=\"chart\" id=\"chart-anomalies\" "
		"viewBox=\"0 0 %zu %d\" preserveAspectRatio=\"none\" role=\"img\" "
		"aria-label=\"findings per hour by kind\">\n",
		n * CHART_BAR, CHART_H);
	for (size_t i = 0; i < n; i++)
		anomaly_bar(h, json_array_get(hours, i), i, m + i * DDA_K__COUNT, max);
	fputs("</svg>\n", h->out);
	chart_axis(h, hours, max, "findings");
	free(m);
	return 0;
}

static void hours_table(struct html *h, const json_t *hours)
{
	fputs("<details id=\"hours\"><summary>The hours as a table</summary><table><thead>"
	      "<tr><th>hour</th><th>objects</th><th>records</th><th>findings</th></tr>"
	      "</thead><tbody>\n",
	      h->out);
	for (size_t i = 0; i < json_array_size(hours); i++) {
		const json_t *hr = json_array_get(hours, i);
		fprintf(h->out,
			"<tr><td>%s%s</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64
			"</td><td class=\"n\">%" PRIu64 "</td></tr>\n",
			hour_of(hr),
			json_is_true(json_object_get(hr, "in_range")) ? "" : " (slack)",
			num(hr, "objects"), num(hr, "records"), num(hr, "anomalies"));
	}
	fputs("</tbody></table></details>\n", h->out);
}

/* Items by number of events, on power-of-two buckets. */
static void histogram(struct html *h)
{
	const uint64_t *b = h->res->sum.items_by_events;
	uint64_t max = 1;
	const int w = 60, top = 16, bottom = 20;
	for (int i = 0; i < DDA_CHANGE_BUCKETS; i++)
		max = DDA_MAX(max, b[i]);
	fprintf(h->out,
		"<h3>Items by number of events</h3>\n<svg class=\"hist\" id=\"chart-items\" "
		"viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"items by number of events\" "
		"font-size=\"10\" text-anchor=\"middle\">\n",
		w * DDA_CHANGE_BUCKETS, CHART_H + top + bottom);
	for (int i = 0; i < DDA_CHANGE_BUCKETS; i++) {
		double bh = (double)b[i] * CHART_H / (double)max;
		uint64_t lo = (uint64_t)1 << i, hi = ((uint64_t)1 << (i + 1)) - 1;
		char label[48];
		if (i == DDA_CHANGE_BUCKETS - 1)
			snprintf(label, sizeof(label), "%" PRIu64 "+", lo);
		else if (lo == hi)
			snprintf(label, sizeof(label), "%" PRIu64, lo);
		else
			snprintf(label, sizeof(label), "%" PRIu64 "-%" PRIu64, lo, hi);
		fprintf(h->out,
			"<rect class=\"rec\" x=\"%d\" y=\"%.2f\" width=\"%d\" height=\"%.2f\" "
			"data-bucket=\"%s\" data-items=\"%" PRIu64 "\"><title>%" PRIu64
			" items with %s events</title></rect>"
			"<text x=\"%d\" y=\"%.2f\">%" PRIu64 "</text>"
			"<text x=\"%d\" y=\"%d\">%s</text>\n",
			i * w + 2, top + CHART_H - bh, w - 4, bh, label, b[i], b[i], label,
			i * w + w / 2, top + CHART_H - bh - 3, b[i], i * w + w / 2,
			top + CHART_H + 14, label);
	}
	fputs("</svg>\n<div class=\"axis\"><span>events of an item in this run (its "
	      "records, duplicates included)</span></div>\n",
	      h->out);
}

static int charts(struct html *h, const json_t *hours)
{
	fputs("<h2 id=\"charts\">Charts</h2>\n", h->out);
	if (json_array_size(hours)) {
		records_chart(h, hours);
		int rc = anomalies_chart(h, hours);
		if (rc)
			return rc;
		hours_table(h, hours);
	} else {
		fputs("<p>No object had an hour prefix: no hourly chart.</p>\n", h->out);
	}
	histogram(h);
	return 0;
}

static void digest(struct html *h, const char *label, bool has, const uint8_t *d)
{
	char hex[2 * DDA_DIGEST_LEN + 1];
	if (!has)
		return;
	dda__hex(d, DDA_DIGEST_LEN, hex);
	fprintf(h->out, "\n%s %s", label, hex);
}

/* An object as "key:line (version V)", in <code> when code is set. The
 * markup of the rows is lean (unquoted attributes, end tags the parser
 * implies left out, text lines rather than elements in a cell): a report
 * holds one row per finding, 100,000 of them at times, and the browser's
 * load time follows the number of elements. */
static void object_ref(struct html *h, uint32_t obj, uint64_t line, bool code)
{
	const struct dda_object *o =
	    obj != DDA_NO_OBJECT ? dda_objtab_get(h->res->objs, obj) : NULL;
	if (!o)
		return;
	fputs(code ? "<code>" : "", h->out);
	esc_name(h, o->key);
	if (line)
		fprintf(h->out, ":%" PRIu64, line);
	if (o->version) {
		fputs(" (version ", h->out);
		esc_name(h, o->version);
		fputc(')', h->out);
	}
	fputs(code ? "</code>" : "", h->out);
}

static void item_text(struct html *h, const struct dda_anomaly *a)
{
	esc(h, dda__report_item_text(a, &h->item));
}

/* One finding: its row has the id f<index> the timelines link to. */
static void anomaly_row(struct html *h, size_t i)
{
	const struct dda_anomaly *a = &h->res->anomalies[i];
	char t[DDA_TIME_STRLEN];
	const char *sev = dda_severity_name(a->severity);
	fprintf(h->out, "<tr id=f%zu><td class=%s>%s%s<td>", i, sev, sev,
		a->provisional ? " (provisional)" : "");
	item_text(h, a);
	if (h->timeline && h->timeline[i])
		fprintf(h->out, " <a href=#item-%" PRIu32 ">timeline</a>", h->timeline[i]);
	fputs("<td>", h->out);
	object_ref(h, a->obj, a->line, false);
	fprintf(h->out, "<td>%s<td>",
		a->time == DDA_TIME_NONE ? "" : dda_time_format(a->time, true, t));
	esc(h, a->detail);
	digest(h, "expected", a->has_expected, a->expected);
	digest(h, "found", a->has_found, a->found);
	if (a->prev_obj != DDA_NO_OBJECT) {
		fputs("\nafter ", h->out);
		object_ref(h, a->prev_obj, 0, false);
		fprintf(h->out, " record %" PRIu32, a->prev_index);
	}
	fputc('\n', h->out);
}

/* Before row n of a chunked list: closes the previous chunk and opens the
 * next every HTML_CHUNK rows. */
static void chunk_next(struct html *h, uint64_t n, const char *table_class)
{
	if (n % HTML_CHUNK)
		return;
	if (n)
		fputs("</table></div>\n", h->out);
	fprintf(h->out, "<div class=ch><table class=%s>\n", table_class);
}

static void chunk_end(struct html *h, uint64_t n)
{
	if (n)
		fputs("</table></div>\n", h->out);
}

static void kind_group(struct html *h, int k, uint64_t count)
{
	const char *sev = dda_severity_name(dda_kind_severity(k));
	fprintf(
	    h->out,
	    "<details class=\"kind\" id=\"kind-%s\" data-kind=\"%s\" data-count=\"%" PRIu64
	    "\"%s><summary><span class=\"sw k%d\"></span>%s <span class=\"%s\">%s</span>: %" PRIu64
	    "</summary>\n<table "
	    "class=f><thead><tr><th>severity</th><th>item</th><th>object:line</th>"
	    "<th>time</th><th>detail</th></tr></thead></table>\n",
	    dda_kind_name(k), dda_kind_name(k), count, count <= HTML_OPEN_ROWS ? " open" : "", k,
	    dda_kind_name(k), sev, sev, count);
	uint64_t n = 0;
	for (size_t i = 0; i < h->res->nanomalies; i++) {
		if (h->res->anomalies[i].kind != k)
			continue;
		chunk_next(h, n++, "f");
		anomaly_row(h, i);
	}
	chunk_end(h, n);
	fputs("</details>\n", h->out);
}

static void anomalies(struct html *h, const json_t *sum)
{
	const json_t *by_kind = json_object_get(sum, "by_kind");
	fprintf(h->out, "<h2 id=\"anomalies\">Findings: %zu</h2>\n", h->res->nanomalies);
	if (!h->res->nanomalies) {
		fputs("<p>None.</p>\n", h->out);
		return;
	}
	fputs("<p>Every finding, grouped by kind (each group opens and closes; the browser's "
	      "find searches closed groups too).</p>\n",
	      h->out);
	for (int i = 0; i < DDA_K__COUNT; i++) {
		int k = kind_at(i);
		uint64_t n = num(by_kind, dda_kind_name(k));
		if (n)
			kind_group(h, k, n);
	}
}

/* ---- timelines of the items with an error ---- */

static int cmp_item(const void *pa, const void *pb)
{
	const struct dda_anomaly *a = *(const struct dda_anomaly *const *)pa;
	const struct dda_anomaly *b = *(const struct dda_anomaly *const *)pb;
	size_t n = DDA_MIN(a->key_len, b->key_len);
	int c = memcmp(a->key, b->key, n);
	if (c || a->key_len != b->key_len)
		return c ? c : a->key_len < b->key_len ? -1 : 1;
	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	return a < b ? -1 : a > b;
}

static bool same_item(const struct dda_anomaly *a, const struct dda_anomaly *b)
{
	return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

static void json_cell(struct html *h, const json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	fputs("<td>", h->out);
	esc(h, s ? s : "");
	free(s);
}

/* The attributes of one part of a diff, a row each: name, expected, found. */
static void diff_part(struct html *h, const json_t *diff, const char *part, const char *cls)
{
	const char *name;
	const json_t *v;
	json_object_foreach(json_object_get(diff, part), name, v)
	{
		fprintf(h->out, "<tr class=%s><td>%s<td>", cls, part);
		esc(h, name);
		bool changed = !strcmp(part, "changed"), added = !strcmp(part, "added");
		json_cell(h, changed ? json_object_get(v, "expected") : added ? NULL : v);
		json_cell(h, changed ? json_object_get(v, "found") : added ? v : NULL);
		fputc('\n', h->out);
	}
}

/* A diff's table, its header saying what was compared: for a GAP the
 * previous event's new image against this event's old one, for a
 * STATE_DRIFT (reconcile) the log's last image against the table's item. */
static void diff_table(struct html *h, int kind, const json_t *diff)
{
	bool gap = kind == DDA_K_GAP, drift = kind == DDA_K_STATE_DRIFT;
	fprintf(h->out, "<table class=diff>\n<tr><th><th>attribute<th>expected%s<th>found%s\n",
		gap	? ": the previous event's new image"
		: drift ? ": the log's last image"
			: "",
		gap	? ": this event's old image"
		: drift ? ": the table's item"
			: "");
	diff_part(h, diff, "removed", "del");
	diff_part(h, diff, "added", "add");
	diff_part(h, diff, "changed", "chg");
	fputs("</table>", h->out);
}

/* A finding in its item's timeline, linked to its row; one with a diff (a
 * GAP, a STATE_DRIFT) with its diff (its detail says the same in words: the
 * row has it), anything else with
 * its detail. */
static void timeline_entry(struct html *h, const struct dda_anomaly *a)
{
	char t[DDA_TIME_STRLEN];
	fprintf(h->out, "<li><a href=#f%zu class=%s>%s</a> %s ", (size_t)(a - h->res->anomalies),
		dda_severity_name(a->severity), dda_kind_name(a->kind),
		a->time == DDA_TIME_NONE ? "" : dda_time_format(a->time, true, t));
	object_ref(h, a->obj, a->line, true);
	if (a->prev_obj != DDA_NO_OBJECT) {
		fputs(", expected from ", h->out);
		object_ref(h, a->prev_obj, 0, true);
		fprintf(h->out, " record %" PRIu32, a->prev_index);
	}
	if (a->diff) {
		diff_table(h, a->kind, a->diff);
	} else if (a->kind == DDA_K_GAP) {
		fputs("<div><i>no diff</i></div>", h->out);
	} else {
		fputs("<div class=d>", h->out);
		esc(h, a->detail);
		fputs("</div>", h->out);
	}
	fputc('\n', h->out);
}

/* Numbers the groups of idx[0..n) that hold an error into h->timeline;
 * returns how many. */
static uint32_t number_items(struct html *h, const struct dda_anomaly **idx, size_t n)
{
	const struct dda_anomaly *base = h->res->anomalies;
	uint32_t items = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		bool error = false;
		for (; j < n && same_item(idx[i], idx[j]); j++)
			error = error || idx[j]->severity == DDA_SEV_ERROR;
		if (error)
			items++;
		for (size_t x = i; error && x < j; x++)
			h->timeline[idx[x] - base] = items;
		i = j;
	}
	return items;
}

static void timelines_write(struct html *h, const struct dda_anomaly **idx, size_t n,
			    uint32_t items)
{
	const struct dda_anomaly *base = h->res->anomalies;
	fprintf(
	    h->out,
	    "<h2 id=\"timelines\">Items with an error: %" PRIu32 "</h2>\n<p>Each item's "
	    "findings in time order, each linked to its row above. A GAP's table shows, "
	    "attribute by attribute, what the previous event left (expected) against what "
	    "this event started from (found); a STATE_DRIFT's, the log's last image against "
	    "the table's item: <span class=del>removed</span> (expected, not "
	    "found), <span class=add>added</span> (found, not expected), "
	    "<span class=chg>changed</span>. A GAP has no diff with --no-diff, from a source that "
	    "cannot be read again (stdin, an NDJSON stream), or past the run's 10,000 "
	    "diffs.</p>\n",
	    items);
	if (!items)
		return;
	/* One <details> for them all, not one an item: each costs the browser a
	 * shadow tree, and 50,000 of them took most of the page's load time. */
	fprintf(h->out, "<details id=\"timelines-list\"%s><summary>%" PRIu32 " item%s</summary>\n",
		items <= HTML_OPEN_ROWS ? " open" : "", items, items == 1 ? "" : "s");
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && same_item(idx[i], idx[j]))
			j++;
		uint32_t no = h->timeline[idx[i] - base];
		if (no && no % (HTML_CHUNK / 5) == 1)
			fputs(no > 1 ? "</div>\n<div class=ch>\n" : "<div class=ch>\n", h->out);
		if (no) {
			fprintf(h->out, "<h4 id=item-%" PRIu32 "><code>", no);
			item_text(h, idx[i]);
			fprintf(h->out, "</code> (%zu finding%s)</h4><ol class=tl>\n", j - i,
				j - i == 1 ? "" : "s");
			for (size_t x = i; x < j; x++)
				timeline_entry(h, idx[x]);
			fputs("</ol>\n", h->out);
		}
		i = j;
	}
	fputs("</div></details>\n", h->out);
}

/* Sorts the findings that name an item by (item, time) and marks those of
 * items with an error; the timelines are written after the lists, which
 * link to them. */
static int timelines_prepare(struct html *h, const struct dda_anomaly ***idx, size_t *n,
			     uint32_t *items)
{
	const struct dda_result *res = h->res;
	*n = 0;
	*items = 0;
	*idx = malloc((res->nanomalies ? res->nanomalies : 1) * sizeof(**idx));
	h->timeline = calloc(res->nanomalies ? res->nanomalies : 1, sizeof(*h->timeline));
	if (!*idx || !h->timeline)
		return DDA_ENOMEM;
	for (size_t i = 0; i < res->nanomalies; i++)
		if (res->anomalies[i].key)
			(*idx)[(*n)++] = &res->anomalies[i];
	dda__sort(*idx, *n, sizeof(**idx), cmp_item);
	*items = number_items(h, *idx, *n);
	return 0;
}

/* ---- objects ---- */

static void object_row(struct html *h, const struct dda_object *o)
{
	char t[DDA_TIME_STRLEN], hex[2 * DDA_SHA256_LEN + 1];
	bool in = dda_object_in_range(o, &h->info->range);
	fputs("<tr><td>", h->out);
	esc_name(h, o->key);
	fputs("<td>", h->out);
	if (o->version)
		esc_name(h, o->version);
	fprintf(h->out, "<td>%" PRId64 "<td>%s<td>%s%s", o->size, time_text(o->last_modified, t),
		in ? "range" : "slack", o->late ? ", late" : "");
	if (o->sha_valid)
		dda__hex(o->sha256, DDA_SHA256_LEN, hex);
	fprintf(h->out, "<td>%s\n", o->sha_valid ? hex : "not read");
}

static void objects(struct html *h)
{
	uint32_t n = h->res->objs ? dda_objtab_count(h->res->objs) : 0, in = 0;
	for (uint32_t i = 0; i < n; i++)
		in += dda_object_in_range(dda_objtab_get(h->res->objs, i), &h->info->range);
	fprintf(h->out,
		"<h2 id=\"objects\">Objects read</h2>\n<details id=\"objects-table\" "
		"data-count=\"%" PRIu32 "\"><summary>%" PRIu32 " objects: %" PRIu32
		" in the range, %" PRIu32 " in slack hours</summary>\n<table class=o><thead><tr>"
		"<th>key</th><th>version</th><th>bytes</th><th>last modified</th><th>hour</th>"
		"<th>SHA-256 of the stored bytes</th></tr></thead></table>\n",
		n, n, in, n - in);
	for (uint32_t i = 0; i < n; i++) {
		chunk_next(h, i, "o");
		object_row(h, dda_objtab_get(h->res->objs, i));
	}
	chunk_end(h, n);
	fputs("</details>\n", h->out);
	const json_t *man = json_object_get(h->report, "manifest");
	if (json_is_object(man)) {
		fputs("<p>Manifest <code>", h->out);
		esc(h, json_string_value(json_object_get(man, "path")));
		fputs("</code>, SHA-256 <code id=\"manifest-sha256\">", h->out);
		esc(h, json_string_value(json_object_get(man, "sha256")));
		fputs("</code>.</p>\n", h->out);
	}
}

static int body(struct html *h)
{
	const json_t *run = json_object_get(h->report, "run");
	const json_t *sum = json_object_get(h->report, "summary");
	const struct dda_anomaly **idx = NULL;
	size_t n = 0;
	uint32_t items = 0;
	int rc = timelines_prepare(h, &idx, &n, &items);
	if (rc)
		goto out;
	verdict(h, run);
	fputs("<nav><a href=\"#run\">Run</a> · <a href=\"#summary\">Summary</a> · "
	      "<a href=\"#legend\">Legend</a> · <a href=\"#charts\">Charts</a> · "
	      "<a href=\"#anomalies\">Findings</a> · <a href=\"#timelines\">Items with an "
	      "error</a> · <a href=\"#objects\">Objects</a></nav>\n",
	      h->out);
	metadata(h, run);
	summary(h, sum);
	legend(h, json_object_get(sum, "by_kind"));
	rc = charts(h, json_object_get(h->report, "hours"));
	if (rc)
		goto out;
	anomalies(h, sum);
	timelines_write(h, idx, n, items);
	objects(h);
	fprintf(h->out, "<footer><p>Written by ddbaudit %s (schema %s).</p></footer>\n",
		dda_version(), DDA_REPORT_SCHEMA);
	fputs("</body></html>\n", h->out);
out:
	free((void *)idx);
	return rc;
}

int dda__report_html(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		     struct dda_error *err)
{
	json_t *j = dda_report_json(info, res);
	if (!j)
		return dda_error_set(err, DDA_ENOMEM, "cannot build the report");
	struct html h = {.out = out, .info = info, .res = res, .report = j};
	dda_buf_init(&h.tmp, DDA_BUF_UNLIMITED);
	dda_buf_init(&h.item, DDA_BUF_UNLIMITED);
	const char *v = json_string_value(json_object_get(json_object_get(j, "run"), "verdict"));
	head(&h, v ? v : "unknown");
	int rc = body(&h);
	free(h.timeline);
	dda_buf_release(&h.tmp);
	dda_buf_release(&h.item);
	json_decref(j);
	if (rc == DDA_ENOMEM)
		return dda_error_set(err, rc, "out of memory writing the HTML report");
	if (rc)
		return dda_error_set(err, rc, "the result's hours do not match its report");
	if (ferror(out))
		return dda_error_set(err, DDA_EIO, "cannot write the HTML report: %s",
				     strerror(errno));
	return 0;
}
