/* libFuzzer target for what replay reads from outside: a target's answer
 * (ReportBatchItemFailures), a --filter file (parsed, then matched against
 * stream records) and a checkpoint file. The first byte picks the parser.
 * Arbitrary bytes must never crash, hang or leak. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "replay/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const records[] = {
    "{\"eventName\":\"MODIFY\",\"dynamodb\":{\"Keys\":{\"Id\":{\"N\":\"101\"}},"
    "\"NewImage\":{\"Id\":{\"N\":\"101\"},\"Amount\":{\"N\":\"-1.5e3\"},\"Tags\":{\"SS\":[\"a\","
    "\"b\"]},\"M\":{\"M\":{\"x\":{\"NULL\":true}}}}}}",
    "{\"a\":null,\"b\":\"\",\"c\":[1,\"x\",{\"d\":true}],\"N\":\"12\"}",
};

/* Half the identifiers are "in the batch". */
static bool any_id(void *ctx, const char *id)
{
	(void)ctx;
	return strlen(id) % 2 == 0;
}

static void filter(const char *text, size_t len)
{
	struct dda_filter *f = NULL;
	struct dda_error err = {0};
	if (dda__filter_parse(&f, text, len, &err))
		return;
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
		json_t *r = json_loads(records[i], 0, NULL);
		CHECK(dda__filter_match(f, r) == dda__filter_match(f, r)); /* no state */
		json_decref(r);
	}
	dda__filter_free(f);
}

/* A two-lane plan of 5 and 3 records whose arguments and plan digests are
 * all zeros, so the corpus can reach the lane and held-item parsing. */
static void checkpoint(const uint8_t *data, size_t size)
{
	int fd = memfd_create("checkpoint", 0);
	if (fd < 0)
		return;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (write(fd, data, size) == (ssize_t)size) {
		struct dda_plan p;
		struct dda_replay_opts o;
		size_t pos[DDA_REPLAY_MAX_LANES];
		uint64_t *held = NULL;
		size_t nheld = 0;
		struct dda_error err = {0};
		char run_id[37];
		memset(&p, 0, sizeof(p));
		memset(&o, 0, sizeof(o));
		p.lanes = 2;
		p.lane_start[1] = 5;
		p.lane_start[2] = 8;
		p.n = 8;
		p.digest_ok = true; /* all zeros, without records to make it of */
		dda__checkpoint_run_id(path, run_id);
		if (!dda__checkpoint_load(path, &p, &o, pos, &held, &nheld, &err)) {
			/* Positions restored are inside their lanes. */
			CHECK(pos[0] <= 5 && pos[1] <= 3);
			CHECK(!nheld || held);
		} else {
			CHECK(err.code && err.msg[0]);
		}
		json_t *args = json_pack("{sisn}", "--parallelism", 2, "--key", NULL);
		err.code = 0;
		dda__checkpoint_check_args(path, args, &err);
		json_decref(args);
		free(held);
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 3) {
	case 0: {
		struct dda_send_result res = {0};
		dda__parse_item_failures(text, len, any_id, NULL, &res);
		/* A partial failure names a record of the batch to retry from. */
		CHECK(res.outcome == DDA_SEND_OK || res.outcome == DDA_SEND_PARTIAL ||
		      res.outcome == DDA_SEND_FAILED);
		CHECK(res.outcome != DDA_SEND_PARTIAL ||
		      (res.first_failed[0] && any_id(NULL, res.first_failed)));
		CHECK(res.outcome != DDA_SEND_FAILED || res.msg[0]);
		break;
	}
	case 1:
		filter(text, len);
		break;
	default:
		checkpoint(data + 1, len);
		break;
	}
	return 0;
}
