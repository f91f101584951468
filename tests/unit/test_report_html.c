/* The HTML report against hostile data: object keys, versions, details,
 * item keys and diff attributes carrying markup, quotes, control
 * characters and bytes that are not UTF-8 never reach the page as markup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/util.h"
#include "ddbaudit/report.h"
#include "ddbaudit/canon.h"
#include "report_fixture.h"

#define HOSTILE "<script>alert(1)</script>\"'&amp;<img src=x onerror=y>"

static void build(struct dda_result *res)
{
	memset(res, 0, sizeof(*res));
	res->objs = dda_objtab_new();
	struct dda_object o1 = {.key = "logs/2025/07/12/08/" HOSTILE ".json",
				.version = "v<b>\xff\"",
				.size = 10,
				.last_modified = t("2025-07-12T08:30:00Z"),
				.sha_valid = true};
	struct dda_object o2 = {.key = "logs/2025/07/12/09/bad-\xfe\x01<x>.json",
				.size = 5,
				.last_modified = t("2025-07-12T09:00:01Z")};
	assert_int_equal(dda_objtab_add(res->objs, &o1), 0);
	assert_int_equal(dda_objtab_add(res->objs, &o2), 1);
	res->nanomalies = 2;
	res->anomalies = calloc(2, sizeof(*res->anomalies));
	struct dda_anomaly *a = res->anomalies;
	a[0] = (struct dda_anomaly){.kind = DDA_K_GAP,
				    .severity = DDA_SEV_ERROR,
				    .obj = 0,
				    .line = 1,
				    .time = t("2025-07-12T08:29:59Z"),
				    .prev_obj = 1};
	key_of(&a[0], "UserId=<script>,ActivityId=\\x01\"'");
	a[0].detail = strdup("detail " HOSTILE " \xff\x1b[31m");
	a[0].diff = json_pack("{s{s{ss}}s{}s{s{s{ss}s{ss}}}}", "added", "<a href=x>", "S", HOSTILE,
			      "removed", "changed", "\"><svg onload=1>", "expected", "S",
			      "</td></tr></table><script>", "found", "N", "1");
	a[1] = (struct dda_anomaly){.kind = DDA_K_UNREADABLE,
				    .severity = DDA_SEV_ERROR,
				    .obj = 1,
				    .time = DDA_TIME_NONE,
				    .prev_obj = DDA_NO_OBJECT};
	a[1].detail = strdup("cannot read 'bad-\xfe\x01<x>.json'");
	res->sum.objects = 2;
	res->sum.records = 1;
	res->sum.items = 1;
	res->sum.items_by_events[0] = 1;
	res->sum.anomalies[DDA_SEV_ERROR] = 2;
	res->sum.by_kind[DDA_K_GAP] = 1;
	res->sum.by_kind[DDA_K_UNREADABLE] = 1;
	res->nhours = 2;
	res->hours = calloc(2, sizeof(*res->hours));
	res->hours[0] = (struct dda_hour_stat){t("2025-07-12T08:00Z"), 1, 1, 1, true};
	res->hours[1] = (struct dda_hour_stat){t("2025-07-12T09:00Z"), 1, 0, 1, false};
	dda_error_set(&res->fatal, DDA_EIO, "listing failed at '%s'", HOSTILE "\xff");
}

static char *to_html(const struct dda_report_info *info, const struct dda_result *res)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct dda_error err = {0};
	assert_non_null(f);
	assert_int_equal(dda_report_write(DDA_FMT_HTML, info, res, f, &err), 0);
	fclose(f);
	return buf;
}

/* Every '<' opens or closes one of the elements the writer itself uses. */
static void only_own_markup(const char *html)
{
	static const char *const tags[] = {
	    "!DOCTYPE", "html", "head", "meta",	 "title", "style",   "body",	"h1",	 "h2",
	    "h3",	"h4",	"p",	"span",	 "nav",	  "a",	     "table",	"thead", "tbody",
	    "tr",	"th",	"td",	"i",	 "code",  "details", "summary", "svg",	 "rect",
	    "g",	"text", "div",	"small", "ol",	  "li",	     "footer"};
	for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
		const char *q = p[1] == '/' ? p + 2 : p + 1;
		size_t n =
		    strspn(q, "!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
		bool ok = false;
		for (size_t i = 0; i < DDA_ARRAY_SIZE(tags) && !ok; i++)
			ok = strlen(tags[i]) == n && !strncmp(q, tags[i], n);
		if (!ok || !strchr(" >/", q[n]))
			fail_msg("unexpected markup at: %.40s", p);
	}
}

static void test_hostile_data_is_text(void **state)
{
	(void)state;
	struct dda_result res;
	build(&res);
	struct dda_report_info info = {.source = "src-<b>\xfe",
				       .range = {DDA_TIME_NONE, DDA_TIME_NONE},
				       .fail_on = DDA_SEV_ERROR};
	char *html = to_html(&info, &res);
	only_own_markup(html);
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "onerror=y>"));
	assert_true(dda__utf8_valid(html, strlen(html)));
	/* No raw control character but newline and tab. */
	for (const char *p = html; *p; p++)
		assert_true((unsigned char)*p >= 0x20 || *p == '\n' || *p == '\t');
	/* The data is there, escaped. */
	assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;\"'&amp;amp;"));
	assert_non_null(strstr(html, "bad-\\xFE\\x01&lt;x&gt;.json"));
	assert_non_null(strstr(html, "v&lt;b&gt;\\xFF\""));
	assert_non_null(strstr(html, "src-&lt;b&gt;\\xFE"));
	assert_non_null(strstr(html, "\"&gt;&lt;svg onload=1&gt;"));
	assert_non_null(strstr(html, "\\x1B[31m"));
	/* The page is self-contained: no URL of any kind. */
	assert_null(strstr(html, "http:"));
	assert_null(strstr(html, "https:"));
	assert_null(strstr(html, "url("));
	assert_non_null(strstr(html, "content=\"default-src 'none'; style-src 'unsafe-inline';"));
	assert_true(strlen(html) > 7 && !strcmp(html + strlen(html) - 8, "</html>\n"));
	free(html);
	dda_result_release(&res);
}

/* The figures of the page are the result's: per hour and kind, in data
 * attributes, and the timeline of the item with an error holds its diff. */
static void test_figures(void **state)
{
	(void)state;
	struct dda_result res;
	build(&res);
	dda_error_clear(&res.fatal);
	struct dda_report_info info = {.source = "s",
				       .range = {t("2025-07-12T08:00Z"), t("2025-07-12T09:00Z")},
				       .fail_on = DDA_SEV_ERROR};
	char *html = to_html(&info, &res);
	assert_non_null(strstr(html, "data-verdict=\"findings\""));
	assert_non_null(strstr(html, "id=\"sum-records\">1<"));
	assert_non_null(strstr(html, "id=\"sum-by_kind-GAP\">1<"));
	assert_non_null(strstr(html, "data-hour=\"2025-07-12T08:00:00Z\" data-records=\"1\" "
				     "data-anomalies=\"1\""));
	assert_non_null(strstr(html, "<g class=\"hour slack\" data-hour=\"2025-07-12T09:00:00Z\""));
	assert_non_null(strstr(html, "data-kind=\"GAP\" data-n=\"1\""));
	assert_non_null(strstr(html, "data-kind=\"UNREADABLE\" data-n=\"1\""));
	assert_non_null(strstr(html, "data-bucket=\"1\" data-items=\"1\""));
	assert_non_null(strstr(html, "<h4 id=item-1><code>"));
	assert_non_null(strstr(html,
			       "<table class=diff>\n<tr><th><th>attribute<th>expected: the "
			       "previous event's new image<th>found: this event's old image"));
	assert_non_null(strstr(html, "<tr class=add><td>added<td>"));
	assert_non_null(strstr(html, "2 objects: 1 in the range, 1 in slack hours"));
	/* One object was never hashed: said so, not an empty cell. */
	assert_non_null(strstr(html, "<td>not read\n"));
	free(html);
	dda_result_release(&res);
}

/* The format is named html and written as report.html. */
static void test_format_name(void **state)
{
	(void)state;
	assert_int_equal(dda_report_format_parse("html"), DDA_FMT_HTML);
	assert_string_equal(dda_report_file_name(DDA_FMT_HTML), "report.html");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostile_data_is_text),
	    cmocka_unit_test(test_figures),
	    cmocka_unit_test(test_format_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
