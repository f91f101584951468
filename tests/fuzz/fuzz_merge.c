/* libFuzzer target for merge's reader of a shard's report directory:
 * arbitrary bytes as report.json, then (after a NUL) as manifest.ndjson, of
 * a one-shard set. The merge either refuses with DDA_EINVAL, DDA_EFORMAT,
 * DDA_ENOTFOUND or DDA_ENOMEM, or gives a result whose findings name only
 * objects of its table, in the run's order, counted as they are listed;
 * and the merged result can be written as every report format. */
#include "fuzz_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddbaudit/ddbaudit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f);
	CHECK(fwrite(p, 1, n, f) == n);
	CHECK(!fclose(f));
}

static void check_result(const struct dda_result *res, const struct dda_merge_info *mi)
{
	uint64_t by_sev = 0, by_kind = 0;
	uint32_t nobj = dda_objtab_count(res->objs);
	for (int s = 0; s < DDA_SEV__COUNT; s++)
		by_sev += res->sum.anomalies[s];
	for (int k = 0; k < DDA_K__COUNT; k++)
		by_kind += res->sum.by_kind[k];
	CHECK(by_sev == res->nanomalies && by_kind == res->nanomalies);
	for (size_t i = 0; i < res->nanomalies; i++) {
		const struct dda_anomaly *a = &res->anomalies[i];
		CHECK(a->obj == DDA_NO_OBJECT || a->obj < nobj);
		CHECK(a->prev_obj == DDA_NO_OBJECT || a->prev_obj < nobj);
		CHECK(a->kind >= 0 && a->kind < DDA_K__COUNT);
		CHECK(a->detail);
		if (i && a->obj != DDA_NO_OBJECT && res->anomalies[i - 1].obj != DDA_NO_OBJECT)
			CHECK(res->anomalies[i - 1].obj <= a->obj);
	}
	CHECK(res->sum.objects <= nobj);
	/* A range of years gives thousands of MISSING_HOUR: the writers' time,
	 * not the reader's, which is what this target is for. */
	if (res->nanomalies > 1000)
		return;
	FILE *null = fopen("/dev/null", "wb");
	CHECK(null);
	struct dda_report_info info = {.source = mi->source, .range = mi->range,
				       .options = mi->options, .fail_on = mi->fail_on};
	for (int f = 0; f < DDA_FMT__COUNT; f++) {
		struct dda_error err = {0};
		int rc = dda_report_write(f, &info, res, null, &err);
		CHECK(!rc || rc == DDA_ENOMEM);
	}
	fclose(null);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64], rep[96], man[96];
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/dda-fuzz-merge-XXXXXX");
		CHECK(mkdtemp(dir));
		snprintf(rep, sizeof(rep), "%s/report.json", dir);
		snprintf(man, sizeof(man), "%s/manifest.ndjson", dir);
	}
	const uint8_t *nul = memchr(data, 0, size);
	size_t n = nul ? (size_t)(nul - data) : size;
	put(rep, data, n);
	put(man, nul ? nul + 1 : data, nul ? size - n - 1 : 0);
	const char *dirs[1] = {dir};
	struct dda_result res;
	struct dda_merge_info mi;
	struct dda_error err = {0};
	FILE *out = fopen("/dev/null", "wb");
	CHECK(out);
	int rc = dda_merge_shards(dirs, 1, out, NULL, &mi, &res, NULL, &err);
	fclose(out);
	if (rc)
		CHECK(rc == DDA_EINVAL || rc == DDA_EFORMAT || rc == DDA_ENOTFOUND ||
		      rc == DDA_ENOMEM);
	else
		check_result(&res, &mi);
	dda_result_release(&res);
	dda_merge_info_release(&mi);
	return 0;
}
