/* Report writers against golden files. The result is built by hand with
 * fixed times, so the output is byte-for-byte stable. Regenerate the golden
 * files after an intended change with DDA_UPDATE_GOLDEN=1 and review the diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <unistd.h>

#include "util/util.h"
#include "ddbaudit/report.h"
#include "ddbaudit/canon.h"
#include "report_fixture.h"

#define GOLDEN DDA_TEST_DATA "/golden/"

static void build(struct dda_result *res)
{
	memset(res, 0, sizeof(*res));
	res->objs = dda_objtab_new();
	struct dda_object o1 = {.key = "audit-logs/2025/07/12/08/u 1-a|b.json",
				.size = 420,
				.last_modified = t("2025-07-12T08:30:00Z"),
				.etag = "abc123"};
	struct dda_object o2 = {.key = "audit-logs/2025/07/12/09/bad-1.json",
				.size = 60,
				.last_modified = t("2025-07-12T09:00:01Z")};
	assert_int_equal(dda_objtab_add(res->objs, &o1), 0);
	assert_int_equal(dda_objtab_add(res->objs, &o2), 1);
	res->started = t("2025-07-13T02:00:00Z");
	res->finished = t("2025-07-13T02:00:04Z");
	res->nanomalies = 3;
	res->anomalies = calloc(3, sizeof(*res->anomalies));
	struct dda_anomaly *a = res->anomalies;
	a[0] = (struct dda_anomaly){.kind = DDA_K_GAP,
				    .severity = DDA_SEV_ERROR,
				    .obj = 0,
				    .index = 0,
				    .line = 1,
				    .time = t("2025-07-12T08:29:59.123456Z"),
				    .has_expected = true,
				    .has_found = true,
				    .prev_obj = 0,
				    .prev_index = 0};
	key_of(&a[0], "UserId=u 1,ActivityId=a|b");
	memset(a[0].expected, 0xab, DDA_DIGEST_LEN);
	memset(a[0].found, 0x01, DDA_DIGEST_LEN);
	a[0].detail = strdup("MODIFY's old image differs, \"quoted\", with | and\nnewline");
	a[0].diff = json_pack("{s{}s{}s{s{s{ss}s{ss}}}}", "added", "removed", "changed", "Version",
			      "expected", "N", "3", "found", "N", "4");
	a[1] = (struct dda_anomaly){.kind = DDA_K_UNREADABLE,
				    .severity = DDA_SEV_ERROR,
				    .obj = 1,
				    .line = 1,
				    .time = DDA_TIME_NONE,
				    .prev_obj = DDA_NO_OBJECT};
	a[1].detail = strdup("not valid JSON at line 1, column 60: premature end of input");
	a[2] = (struct dda_anomaly){.kind = DDA_K_DUPLICATE,
				    .severity = DDA_SEV_INFO,
				    .obj = 0,
				    .index = 1,
				    .line = 2,
				    .time = t("2025-07-12T08:31:00Z"),
				    .prev_obj = DDA_NO_OBJECT};
	key_of(&a[2], "UserId=u 1,ActivityId=a|b");
	a[2].detail =
	    strdup("MODIFY recorded again (same images as an earlier record): counted once");
	struct dda_summary *s = &res->sum;
	s->objects = 2;
	s->bytes = 480;
	s->records = 3;
	s->valid = 2;
	s->invalid = 1;
	s->duplicates = 1;
	s->items = 1;
	s->events[DDA_EV_MODIFY] = 2;
	s->anomalies[DDA_SEV_ERROR] = 2;
	s->anomalies[DDA_SEV_INFO] = 1;
	s->by_kind[DDA_K_GAP] = 1;
	s->by_kind[DDA_K_UNREADABLE] = 1;
	s->by_kind[DDA_K_DUPLICATE] = 1;
	res->nhours = 2;
	res->hours = calloc(2, sizeof(*res->hours));
	res->hours[0] = (struct dda_hour_stat){t("2025-07-12T08:00Z"), 1, 2, 2, true};
	res->hours[1] = (struct dda_hour_stat){t("2025-07-12T09:00Z"), 1, 1, 1, true};
	res->has_manifest = true;
	/* An event table past its --memory-limit: the run metadata says so. */
	res->memory.source = "option";
	res->memory.spill = (struct dda_spill_stats){.limit = (uint64_t)2 << 30, .runs = 12,
						     .events = 30000000, .bytes = 1932735283};
	memset(res->manifest_sha256, 'f', 64);
}

/* The golden files hold @VERSION@ where the tool's version is written,
 * so that a release does not change them. */
static void unversion(char **out, size_t *len)
{
	const char *v = dda_version();
	size_t vn = strlen(v);
	struct dda_buf b;
	dda_buf_init(&b, DDA_BUF_UNLIMITED);
	for (size_t i = 0; i < *len;) {
		if (*len - i >= vn && !memcmp(*out + i, v, vn)) {
			assert_int_equal(dda_buf_adds(&b, "@VERSION@"), 0);
			i += vn;
		} else {
			assert_int_equal(dda_buf_addc(&b, (*out)[i]), 0);
			i++;
		}
	}
	assert_int_equal(dda_buf_adds(&b, ""), 0);
	free(*out);
	*len = b.len;
	*out = dda_buf_take(&b, NULL);
}

static void check(int format, const char *name)
{
	struct dda_result res;
	struct dda_error err = {0};
	build(&res);
	json_t *opts = json_pack("{sb}", "diffs", 1);
	struct dda_report_info info = {
	    .source = "samples/audit-logs",
	    .range = {t("2025-07-12T00:00Z"), t("2025-07-13T00:00Z")},
	    .options = opts,
	    .manifest_name = "manifest.ndjson",
	    .fail_on = DDA_SEV_ERROR,
	    .generated_at = t("2025-07-13T02:00:05Z"),
	    .command_line = "ddbaudit verify samples/audit-logs --from 2025-07-12 --to "
			    "2025-07-13 --state 'st ate.gz' --report 'out|`x`'",
	    .commit = "0123abcd",
	    .host = "auditor-1",
	    .caller = {.account = "123456789012",
		       .arn = "arn:aws:iam::123456789012:user/auditor",
		       .user_id = "AIDAEXAMPLE"},
	    .state = {.path = "st ate.gz",
		      .previous_report_sha256 = "9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e"
						"9e9e9e9e9e9e",
		      .previous_watermark = t("2025-07-12T00:00Z"),
		      .watermark = t("2025-07-13T00:00Z")},
	};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	assert_int_equal(dda_report_write(format, &info, &res, f, &err), 0);
	fclose(f);
	unversion(&out, &len);
	char path[4096];
	snprintf(path, sizeof(path), GOLDEN "%s", name);
	if (getenv("DDA_UPDATE_GOLDEN")) {
		FILE *g = fopen(path, "wb");
		assert_non_null(g);
		fwrite(out, 1, len, g);
		fclose(g);
	}
	struct dda_buf want;
	dda_buf_init(&want, 1 << 20);
	assert_int_equal(dda__read_file(path, &want, &err), 0);
	if (want.len != len || memcmp(want.ptr, out, len))
		fail_msg("%s differs from the golden file:\n--- got ---\n%s", name, out);
	dda_buf_release(&want);
	free(out);
	json_decref(opts);
	dda_result_release(&res);
}

static void test_json_golden(void **state)
{
	check(DDA_FMT_JSON, "report.json");
}

static void test_csv_golden(void **state)
{
	check(DDA_FMT_CSV, "anomalies.csv");
}

static void test_md_golden(void **state)
{
	check(DDA_FMT_MD, "report.md");
}

/* The JSON report parses and carries the schema, counts and diff. */
static void test_json_content(void **state)
{
	struct dda_result res;
	build(&res);
	struct dda_report_info info = {.source = "s", .range = {DDA_TIME_NONE, DDA_TIME_NONE}};
	json_t *j = dda_report_json(&info, &res);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "schema")), "ddbaudit.report/v1");
	json_t *an = json_object_get(j, "anomalies");
	assert_int_equal(json_array_size(an), 3);
	json_t *gap = json_array_get(an, 0);
	assert_string_equal(json_string_value(json_object_get(gap, "kind")), "GAP");
	json_t *item = json_object_get(gap, "item");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(item, "UserId"), "S")), "u 1");
	json_t *ch = json_object_get(json_object_get(gap, "diff"), "changed");
	assert_non_null(json_object_get(ch, "Version"));
	assert_true(json_is_null(json_object_get(json_array_get(an, 1), "item")));
	json_decref(j);
	dda_result_release(&res);
}

static void test_formats(void **state)
{
	assert_int_equal(dda_report_format_parse("json"), DDA_FMT_JSON);
	assert_int_equal(dda_report_format_parse("csv"), DDA_FMT_CSV);
	assert_int_equal(dda_report_format_parse("md"), DDA_FMT_MD);
	assert_int_equal(dda_report_format_parse("xml"), -1);
	assert_string_equal(dda_report_file_name(DDA_FMT_CSV), "anomalies.csv");
}

/* The verdict: clean only when everything was read and nothing at or above
 * the failing severity was found. */
static void test_verdict(void **state)
{
	(void)state;
	struct dda_result res;
	memset(&res, 0, sizeof(res));
	assert_int_equal(dda_result_verdict(&res, DDA_SEV_ERROR), DDA_RUN_CLEAN);
	res.sum.anomalies[DDA_SEV_WARNING] = 1;
	assert_int_equal(dda_result_verdict(&res, DDA_SEV_ERROR), DDA_RUN_CLEAN);
	assert_int_equal(dda_result_verdict(&res, DDA_SEV_WARNING), DDA_RUN_FINDINGS);
	assert_int_equal(dda_result_verdict(&res, DDA_SEV__COUNT), DDA_RUN_CLEAN);
	dda_error_set(&res.fatal, DDA_EIO, "listing failed");
	assert_int_equal(dda_result_verdict(&res, DDA_SEV__COUNT), DDA_RUN_INCOMPLETE);
	assert_string_equal(dda_run_verdict_name(DDA_RUN_INCOMPLETE), "incomplete");
	assert_string_equal(dda_run_verdict_name(DDA_RUN_FINDINGS), "findings");
	/* An hour prefix is in a range when it overlaps it. */
	struct dda_range r = {t("2025-07-12T08:30Z"), t("2025-07-12T10:00Z")};
	struct dda_object o = {.hour = t("2025-07-12T08:00Z")};
	assert_true(dda_object_in_range(&o, &r));
	o.hour = t("2025-07-12T07:00Z");
	assert_false(dda_object_in_range(&o, &r));
	o.hour = t("2025-07-12T10:00Z");
	assert_false(dda_object_in_range(&o, &r));
	o.hour = DDA_TIME_NONE;
	assert_true(dda_object_in_range(&o, &r));
	struct dda_range open = {DDA_TIME_NONE, DDA_TIME_NONE};
	o.hour = t("2000-01-01T00:00Z");
	assert_true(dda_object_in_range(&o, &open));
}

static char *to_text(int format, const struct dda_report_info *info,
		     const struct dda_result *res)
{
	struct dda_error err = {0};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	assert_int_equal(dda_report_write(format, info, res, f, &err), 0);
	fclose(f);
	assert_true(dda__utf8_valid(out, len));
	return out;
}

/* Names that are not UTF-8 are in every format, escaped; JSON carries the
 * exact bytes in *_b64. Before, the anomaly was left out of report.json. */
static void test_names_not_utf8(void **state)
{
	(void)state;
	struct dda_result res;
	build(&res);
	struct dda_object o3 = {.key = "logs/2025/07/12/08/bad-\xff\\.json",
				.version = "v\xe2\x82",
				.size = 3,
				.last_modified = t("2025-07-12T08:00:01Z")};
	assert_int_equal(dda_objtab_add(res.objs, &o3), 2);
	res.anomalies[1].obj = 2;
	free(res.anomalies[1].detail);
	res.anomalies[1].detail = strdup("cannot read 'bad-\xff\\.json'");
	struct dda_report_info info = {.source = "dir-\xfe", .range = {DDA_TIME_NONE, DDA_TIME_NONE}};
	json_t *j = dda_report_json(&info, &res);
	assert_non_null(j);
	json_t *run = json_object_get(j, "run");
	assert_string_equal(json_string_value(json_object_get(run, "source")), "dir-\\xFE");
	assert_string_equal(json_string_value(json_object_get(run, "source_b64")), "ZGlyLf4=");
	json_t *an = json_object_get(j, "anomalies");
	assert_int_equal(json_array_size(an), 3);
	json_t *obj = json_object_get(json_array_get(an, 1), "object");
	assert_string_equal(json_string_value(json_object_get(obj, "key")),
			    "logs/2025/07/12/08/bad-\\xFF\\\\.json");
	struct dda_buf b64;
	dda_buf_init(&b64, 4096);
	assert_int_equal(dda_base64_encode(o3.key, strlen(o3.key), &b64), 0);
	assert_string_equal(json_string_value(json_object_get(obj, "key_b64")), b64.ptr);
	assert_string_equal(json_string_value(json_object_get(obj, "version")), "v\\xE2\\x82");
	assert_non_null(json_object_get(obj, "version_b64"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(an, 1), "detail")),
			    "cannot read 'bad-\\xFF\\\\.json'");
	/* Valid names have no *_b64 member. */
	json_t *obj0 = json_object_get(json_array_get(an, 0), "object");
	assert_null(json_object_get(obj0, "key_b64"));
	json_decref(j);
	char *csv = to_text(DDA_FMT_CSV, &info, &res);
	assert_non_null(strstr(csv, ",logs/2025/07/12/08/bad-\\xFF\\\\.json,v\\xE2\\x82,"));
	free(csv);
	char *md = to_text(DDA_FMT_MD, &info, &res);
	assert_non_null(strstr(md, "| logs/2025/07/12/08/bad-\\xFF\\\\.json |"));
	assert_non_null(strstr(md, "`dir-\\xFE`"));
	free(md);
	dda_buf_release(&b64);
	dda_result_release(&res);
}

/* Details, items and keys are printed whole (a long detail was cut at
 * "..." once), with the markup that would break a table escaped, and an
 * open range and an unknown caller said in words. */
static void test_md_whole_and_escaped(void **state)
{
	(void)state;
	struct dda_result res;
	build(&res);
	free(res.anomalies[1].detail);
	char long_detail[1024] = "x";
	for (size_t i = 1; i + 2 < sizeof(long_detail); i += 2)
		memcpy(long_detail + i, "\xc3\xa9", 2);
	res.anomalies[1].detail = strdup(long_detail);
	free(res.anomalies[2].detail);
	res.anomalies[2].detail = strdup("a <script>|b\nc");
	struct dda_report_info info = {.source = "s",
				       .range = {DDA_TIME_NONE, DDA_TIME_NONE},
				       .caller = {.reason = "local source: no AWS call made"}};
	char *md = to_text(DDA_FMT_MD, &info, &res);
	assert_non_null(strstr(md, long_detail));
	assert_non_null(strstr(md, "| a \\<script>\\|b c |"));
	assert_null(strstr(md, "..."));
	assert_non_null(strstr(md, "- Range: open: every record of the source, from the beginning\n"));
	assert_non_null(strstr(md, "- Caller: unknown (local source: no AWS call made)\n"));
	assert_non_null(strstr(md, "- Versions: the current version of each key"));
	assert_null(strstr(md, "- State:"));
	/* The legend names each kind found, once, in the words of the catalogue. */
	assert_non_null(strstr(md, dda_kind_legend(DDA_K_GAP)));
	assert_non_null(strstr(md, dda_kind_legend(DDA_K_DUPLICATE)));
	assert_null(strstr(md, dda_kind_legend(DDA_K_UNKNOWN_PRIOR)));
	free(md);
	info.range.from = t("2025-07-12T00:00Z");
	md = to_text(DDA_FMT_MD, &info, &res);
	assert_non_null(strstr(md, "- Range: from 2025-07-12T00:00:00Z to open (the run's now)\n"));
	free(md);
	info.range = (struct dda_range){DDA_TIME_NONE, t("2025-07-12T00:00Z")};
	md = to_text(DDA_FMT_MD, &info, &res);
	assert_non_null(strstr(md, "- Range: from the beginning to 2025-07-12T00:00:00Z\n"));
	free(md);
	/* JSON: an unknown caller with its reason, no state link, null range ends. */
	json_t *j = dda_report_json(&info, &res);
	json_t *run = json_object_get(j, "run");
	assert_string_equal(json_string_value(json_object_get(json_object_get(run, "caller"),
							       "status")),
			    "unknown");
	assert_null(json_object_get(run, "state"));
	assert_true(json_is_null(json_object_get(json_object_get(run, "range"), "from")));
	json_decref(j);
	dda_result_release(&res);
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.' || !strcmp(e->d_name, ".lock");
	closedir(d);
	return n;
}

/* --report DIR: the set is renamed into place with the manifest; a failed
 * rename phase leaves no temporary file and no final name. */
static void test_write_dir(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/dda-report-XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	struct dda_result res;
	struct dda_error err = {0};
	build(&res);
	char man[512], path[600];
	snprintf(man, sizeof(man), "%s/.manifest.tmp", dir);
	struct dda_report_info info = {.source = "s",
				       .range = {DDA_TIME_NONE, DDA_TIME_NONE},
				       .manifest_name = "manifest.ndjson",
				       .manifest_tmp = man};
	/* No manifest to rename: nothing lands. */
	assert_int_equal(dda_report_write_dir(&info, &res, dir, &err), DDA_EIO);
	assert_non_null(strstr(err.msg, ".manifest.tmp"));
	assert_int_equal(entries(dir), 1); /* .lock */
	FILE *f = fopen(man, "wb");
	assert_non_null(f);
	fputs("{}\n", f);
	fclose(f);
	dda_error_clear(&err);
	assert_int_equal(dda_report_write_dir(&info, &res, dir, &err), 0);
	assert_int_equal(entries(dir), 6);
	snprintf(path, sizeof(path), "%s/manifest.ndjson", dir);
	struct dda_buf got;
	dda_buf_init(&got, 1 << 20);
	assert_int_equal(dda__read_file(path, &got, &err), 0);
	assert_string_equal(got.ptr, "{}\n");
	static const char *const names[] = {"manifest.ndjson", "report.json", "report.md",
					    "report.html", "anomalies.csv", ".lock"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(rmdir(dir), 0);
	dda_buf_release(&got);
	dda_result_release(&res);
}

/* Every kind has a legend, one line that a Markdown table cell or an HTML
 * paragraph can hold as is, made of its meaning and what to do. */
static void test_kind_legend(void **state)
{
	char want[1024];
	(void)state;
	for (int k = 0; k < DDA_K__COUNT; k++) {
		const char *m = dda_kind_meaning(k), *a = dda_kind_action(k);
		assert_true(strlen(m) > 20 && strlen(a) > 5);
		assert_true(m[strlen(m) - 1] == '.' && a[strlen(a) - 1] == '.');
		snprintf(want, sizeof(want), "%s What to do: %s", m, a);
		assert_string_equal(dda_kind_legend(k), want);
		assert_null(strpbrk(want, "|\n\r<>&`"));
	}
	assert_non_null(strstr(dda_kind_legend(DDA_K__COUNT), "does not know"));
	assert_non_null(strstr(dda_kind_legend(-1), "does not know"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_golden), cmocka_unit_test(test_csv_golden),
	    cmocka_unit_test(test_md_golden),	cmocka_unit_test(test_json_content),
	    cmocka_unit_test(test_formats),	cmocka_unit_test(test_verdict),
	    cmocka_unit_test(test_names_not_utf8), cmocka_unit_test(test_md_whole_and_escaped),
	    cmocka_unit_test(test_write_dir),	cmocka_unit_test(test_kind_legend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
