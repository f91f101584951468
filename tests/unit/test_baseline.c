/* Noise control: kind names, --ignore lists, baseline parsing (every error
 * names its line), writing, and the folded UNKNOWN_PRIOR entry of the JSON
 * report. Matching inside a run is covered end to end (test_noise.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <unistd.h>

#include "util/util.h"
#include "ddbaudit/ddbaudit.h"

static int64_t t(const char *s)
{
	int64_t v;
	assert_int_equal(dda_time_parse(s, strlen(s), &v), 0);
	return v;
}

static void test_kind_names(void **state)
{
	(void)state;
	for (int k = 0; k < DDA_K__COUNT; k++)
		assert_int_equal(dda_kind_parse(dda_kind_name(k)), k);
	assert_int_equal(dda_kind_parse("gap"), -1);
	assert_int_equal(dda_kind_parse(""), -1);
	assert_int_equal(dda_kind_parse("UNKNOWN"), -1);
	assert_string_equal(dda_kind_name(DDA_K_BASELINE_EXPIRED), "BASELINE_EXPIRED");
	assert_int_equal(dda_kind_severity(DDA_K_BASELINE_EXPIRED), DDA_SEV_WARNING);
	assert_true(dda_kind_means_loss(DDA_K_UNREADABLE));
	assert_true(dda_kind_means_loss(DDA_K_EMPTY_RANGE));
	assert_true(dda_kind_means_loss(DDA_K_MISSING_HOUR));
	assert_false(dda_kind_means_loss(DDA_K_GAP));
	assert_false(dda_kind_means_loss(DDA_K_UNVERSIONED_BUCKET));
}

static void test_ignore_parse(void **state)
{
	(void)state;
	struct dda_error err = {0};
	uint64_t mask = 0;
	assert_int_equal(dda_ignore_parse("GAP,UNKNOWN_PRIOR", &mask, &err), 0);
	assert_int_equal(mask, ((uint64_t)1 << DDA_K_GAP) | ((uint64_t)1 << DDA_K_UNKNOWN_PRIOR));
	/* Options add up: --ignore A --ignore B. */
	assert_int_equal(dda_ignore_parse("DUPLICATE", &mask, &err), 0);
	assert_true(mask & ((uint64_t)1 << DDA_K_DUPLICATE));
	static const char *const bad[] = {
	    "",
	    "GAP,",
	    ",GAP",
	    "GAPP",
	    "gap",
	    "GAP,,DUPLICATE",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++) {
		dda_error_clear(&err);
		assert_int_equal(dda_ignore_parse(bad[i], &mask, &err), DDA_EINVAL);
		assert_non_null(strstr(err.msg, "unknown kind"));
	}
	dda_error_clear(&err);
	assert_int_equal(dda_ignore_parse("GAP,UNREADABLE", &mask, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "--ignore UNREADABLE refused"));
}

static struct dda_baseline *parse_ok(const char *text)
{
	struct dda_baseline *b = NULL;
	struct dda_error err = {0};
	int rc = dda_baseline_parse(text, strlen(text), "b", &b, &err);
	if (rc)
		fail_msg("%s", err.msg);
	return b;
}

static void parse_bad(const char *text, const char *where, const char *why)
{
	struct dda_baseline *b = (struct dda_baseline *)1;
	struct dda_error err = {0};
	assert_int_equal(dda_baseline_parse(text, strlen(text), "b", &b, &err), DDA_EINVAL);
	assert_null(b);
	if (strncmp(err.msg, where, strlen(where)) || !strstr(err.msg, why))
		fail_msg("'%s' does not start with '%s' and hold '%s'", err.msg, where, why);
}

#define GOOD                                                                                       \
	"{\"kind\":\"GAP\",\"item\":\"*\",\"object\":\"*\",\"expires\":\"2026-01-01\","            \
	"\"reason\":\"r\"}"

static void test_parse(void **state)
{
	(void)state;
	struct dda_baseline *b = parse_ok("");
	assert_int_equal(dda_baseline_size(b), 0);
	dda_baseline_free(b);
	b = parse_ok("# c\n\n   \r\n" GOOD "\r\n  # indented comment\n" GOOD);
	assert_int_equal(dda_baseline_size(b), 2);
	dda_baseline_free(b);
	dda_baseline_free(NULL);
	assert_int_equal(dda_baseline_size(NULL), 0);
	/* Each error names the line, counted from 1 with comments and blanks. */
	parse_bad("#\n" GOOD "\n{", "b:3: ", "not JSON");
	parse_bad(GOOD "\n\n[]", "b:3: ", "JSON object");
	parse_bad("{\"kind\":\"GAP\"}", "b:1: ", "\"item\" is missing");
	parse_bad("{\"kind\":\"GAP\",\"item\":\"*\",\"object\":\"*\",\"reason\":\"r\"}",
		  "b:1: ", "\"expires\" is missing");
	parse_bad("{\"kind\":\"GAP\",\"item\":\"*\",\"object\":\"*\",\"expires\":\"x\","
		  "\"reason\":\"r\"}",
		  "b:1: ", "is not a time");
	parse_bad("{\"kind\":\"GAP\",\"item\":\"*\",\"object\":\"*\",\"expires\":1,"
		  "\"reason\":\"r\"}",
		  "b:1: ", "must be a string");
	parse_bad("{\"kind\":\"GAP\",\"item\":\"*\",\"object\":\"*\",\"expires\":\"2026-01-01\"}",
		  "b:1: ", "\"reason\" is missing");
	parse_bad("{\"kind\":\"GAP\",\"item\":\"*\",\"object\":\"*\",\"expires\":\"2026-01-01\","
		  "\"reason\":\"\"}",
		  "b:1: ", "non-empty");
	parse_bad("{\"kind\":\"NOPE\"}", "b:1: ", "unknown kind 'NOPE'");
	parse_bad("{\"kind\":1}", "b:1: ", "\"kind\" is missing or not a string");
	parse_bad("{\"kind\":\"MISSING_HOUR\"}", "b:1: ", "cannot be in a baseline");
	parse_bad("{\"kind\":\"BASELINE_EXPIRED\"}", "b:1: ", "cannot be in a baseline");
	parse_bad("{\"kind\":\"GAP\",\"extra\":1}", "b:1: ", "unknown member \"extra\"");
	parse_bad("{\"kind\":\"GAP\",\"kind\":\"GAP\"}", "b:1: ", "not JSON");
	parse_bad("{\"kind\":\"UNREADABLE\",\"item\":\"\",\"object\":\"a/*\",\"expires\":"
		  "\"2026-01-01\",\"reason\":\"r\"}",
		  "b:1: ", "must name one object exactly");
	parse_bad("{\"kind\":\"GAP\",\"item\":\"a\\u0000b\",\"object\":\"*\",\"expires\":"
		  "\"2026-01-01\",\"reason\":\"r\"}",
		  "b:1: ", "not JSON");
	/* Bounded: a field longer than DDA_BASELINE_MAX_FIELD is refused. */
	struct dda_buf big;
	dda_buf_init(&big, DDA_BUF_UNLIMITED);
	assert_int_equal(dda_buf_adds(&big, "{\"kind\":\"GAP\",\"item\":\""), 0);
	for (int i = 0; i <= DDA_BASELINE_MAX_FIELD; i++)
		assert_int_equal(dda_buf_addc(&big, 'x'), 0);
	assert_int_equal(dda_buf_adds(&big, "\",\"object\":\"*\",\"expires\":\"2026-01-01\","
					    "\"reason\":\"r\"}"),
			 0);
	parse_bad(big.ptr, "b:1: ", "at most 4096 bytes");
	dda_buf_release(&big);
}

static void test_load(void **state)
{
	(void)state;
	char dir[] = "/tmp/dda-baseline-XXXXXX", path[256];
	struct dda_baseline *b = NULL;
	struct dda_error err = {0};
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(dda_baseline_load(path, &b, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "--baseline: cannot open"));
	snprintf(path, sizeof(path), "%s/b.ndjson", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(GOOD "\n", f);
	fclose(f);
	dda_error_clear(&err);
	assert_int_equal(dda_baseline_load(path, &b, &err), 0);
	assert_int_equal(dda_baseline_size(b), 1);
	dda_baseline_free(b);
	unlink(path);
	rmdir(dir);
}

/* A result with two findings of one object, built by hand. */
static void build(struct dda_result *res, int kind, size_t n)
{
	memset(res, 0, sizeof(*res));
	res->objs = dda_objtab_new();
	struct dda_object o = {.key = "audit-logs/2025/07/12/08/u*1-a.json", .size = 1};
	assert_int_equal(dda_objtab_add(res->objs, &o), 0);
	res->anomalies = calloc(n, sizeof(*res->anomalies));
	res->nanomalies = n;
	for (size_t i = 0; i < n; i++) {
		struct dda_anomaly *a = &res->anomalies[i];
		struct dda_buf k, why;
		char text[64];
		*a = (struct dda_anomaly){.kind = kind,
					  .severity = dda_kind_severity(kind),
					  .obj = 0,
					  .index = (uint32_t)i,
					  .line = i + 1,
					  .time = t("2025-07-12T08:00Z"),
					  .prev_obj = DDA_NO_OBJECT};
		snprintf(text, sizeof(text), "UserId=u*%zu,ActivityId=a", i);
		dda_buf_init(&k, 4096);
		dda_buf_init(&why, 4096);
		assert_int_equal(dda_canon_key_parse(text, &k, &why), 0);
		size_t len;
		a->key = (uint8_t *)dda_buf_take(&k, &len);
		a->key_len = (uint32_t)len;
		a->detail = strdup("x");
		dda_buf_release(&why);
		res->sum.anomalies[a->severity]++;
		res->sum.by_kind[kind]++;
	}
}

static char *slurp(const char *path)
{
	struct dda_buf b;
	struct dda_error err = {0};
	dda_buf_init(&b, 1 << 20);
	assert_int_equal(dda__read_file(path, &b, &err), 0);
	assert_int_equal(dda_buf_adds(&b, ""), 0);
	return dda_buf_take(&b, NULL);
}

static void test_write(void **state)
{
	(void)state;
	char dir[] = "/tmp/dda-baseline-XXXXXX", path[256];
	struct dda_result res;
	struct dda_error err = {0};
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/w.ndjson", dir);
	build(&res, DDA_K_GAP, 2);
	struct dda_baseline *prev =
	    parse_ok(GOOD "\n{\"kind\":\"DUPLICATE\",\"item\":\"*\",\"object\":\"*\",\"expires\":"
			  "\"2027-01-01\",\"reason\":\"kept\"}");
	assert_int_equal(
	    dda_baseline_write(prev, &res, t("2026-06-01"), t("2026-07-01"), "why", path, &err), 0);
	char *text = slurp(path);
	/* The expired GAP entry is gone, the live one kept, globs in names quoted. */
	assert_null(strstr(text, "2026-01-02"));
	assert_non_null(strstr(text,
			       "{\"kind\":\"DUPLICATE\",\"item\":\"*\",\"object\":\"*\","
			       "\"expires\":\"2027-01-02T00:00:00Z\",\"reason\":\"kept\"}\n"));
	assert_non_null(strstr(text, "{\"kind\":\"GAP\",\"item\":\"ActivityId=a,UserId=u\\\\*0\","
				     "\"object\":\"audit-logs/2025/07/12/08/u\\\\*1-a.json\","
				     "\"expires\":\"2026-07-01T00:00:00Z\",\"reason\":\"why\"}\n"));
	/* It parses back: three entries (one per item, and the kept one). */
	struct dda_baseline *back = parse_ok(text);
	assert_int_equal(dda_baseline_size(back), 3);
	dda_baseline_free(back);
	free(text);
	/* Findings that name nothing are not written; repeats are written once. */
	dda_result_release(&res);
	build(&res, DDA_K_MISSING_HOUR, 1);
	assert_int_equal(
	    dda_baseline_write(NULL, &res, t("2026-06-01"), t("2026-07-01"), "why", path, &err), 0);
	text = slurp(path);
	assert_null(strstr(text, "MISSING_HOUR"));
	free(text);
	/* A directory that does not exist: an error, nothing written. */
	snprintf(path, sizeof(path), "%s/no/such/dir/w.ndjson", dir);
	assert_int_not_equal(dda_baseline_write(NULL, &res, 0, 0, "r", path, &err), 0);
	dda_result_release(&res);
	dda_baseline_free(prev);
	snprintf(path, sizeof(path), "%s/w.ndjson", dir);
	unlink(path);
	rmdir(dir);
}

/* report.json lists UNKNOWN_PRIOR once: count, a sample of ten, the
 * summary still one per item. */
static void test_report_folds_unknown_prior(void **state)
{
	(void)state;
	struct dda_result res;
	build(&res, DDA_K_UNKNOWN_PRIOR, 25);
	struct dda_report_info info = {.source = "s", .range = {DDA_TIME_NONE, DDA_TIME_NONE}};
	json_t *j = dda_report_json(&info, &res);
	assert_non_null(j);
	json_t *an = json_object_get(j, "anomalies");
	assert_int_equal(json_array_size(an), 1);
	json_t *a = json_array_get(an, 0);
	assert_string_equal(json_string_value(json_object_get(a, "kind")), "UNKNOWN_PRIOR");
	assert_int_equal(json_integer_value(json_object_get(a, "count")), 25);
	assert_int_equal(json_array_size(json_object_get(a, "sample")), 10);
	assert_true(json_is_null(json_object_get(a, "item")));
	json_t *by_kind = json_object_get(json_object_get(j, "summary"), "by_kind");
	assert_int_equal(json_integer_value(json_object_get(by_kind, "UNKNOWN_PRIOR")), 25);
	json_decref(j);
	/* The CSV keeps one row per item. */
	char *out = NULL;
	size_t len = 0, rows = 0;
	struct dda_error err = {0};
	FILE *f = open_memstream(&out, &len);
	assert_int_equal(dda_report_write(DDA_FMT_CSV, &info, &res, f, &err), 0);
	fclose(f);
	for (size_t i = 0; i < len; i++)
		rows += out[i] == '\n';
	assert_int_equal(rows, 26);
	free(out);
	dda_result_release(&res);
}

/* A finding an earlier run of the state chain reported leaves the list and
 * every count but summary.suppressed. */
static void test_suppress_kind(void **state)
{
	(void)state;
	struct dda_result res;
	build(&res, DDA_K_UNVERSIONED_BUCKET, 2);
	assert_int_equal(dda_result_suppress_kind(&res, DDA_K_GAP), 0);
	assert_int_equal(res.nanomalies, 2);
	assert_int_equal(dda_result_suppress_kind(&res, DDA_K_UNVERSIONED_BUCKET), 2);
	assert_int_equal(res.nanomalies, 0);
	assert_int_equal(res.sum.by_kind[DDA_K_UNVERSIONED_BUCKET], 0);
	assert_int_equal(res.sum.anomalies[DDA_SEV_WARNING], 0);
	assert_int_equal(res.sum.suppressed[DDA_K_UNVERSIONED_BUCKET], 2);
	assert_int_equal(dda_result_verdict(&res, DDA_SEV_WARNING), DDA_RUN_CLEAN);
	assert_int_equal(dda_result_suppress_kind(&res, DDA_K__COUNT), 0);
	dda_result_release(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_names),	  cmocka_unit_test(test_ignore_parse),
	    cmocka_unit_test(test_parse),	  cmocka_unit_test(test_load),
	    cmocka_unit_test(test_write),	  cmocka_unit_test(test_report_folds_unknown_prior),
	    cmocka_unit_test(test_suppress_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
