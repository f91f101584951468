/* libFuzzer target for the state reader (--state): arbitrary bytes as a
 * state file (gzip or plain: zlib reads both). Opening, merging a few keys
 * and draining either succeed or fail with DDA_EFORMAT, never anything
 * else, and a failure leaves no partial new state behind (never committed
 * here). */
#include "fuzz_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddbaudit/ddbaudit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const probe_keys[] = {"", "a", "user1", "zzzzzzzzzzzzzzzz"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64], path[96];
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/dda-fuzz-state-XXXXXX");
		CHECK(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/state", dir);
	}
	FILE *f = fopen(path, "wb");
	CHECK(f);
	CHECK(fwrite(data, 1, size, f) == size);
	CHECK(!fclose(f));
	struct dda_state_identity id = {.source = "src", .nkeys = 2};
	id.key_names[0] = "UserId";
	id.key_names[1] = "ActivityId";
	struct dda_state *s = NULL;
	struct dda_error err = {0};
	int rc = dda_state_open(&s, path, &id, &err);
	if (rc) {
		CHECK(rc == DDA_EFORMAT || rc == DDA_ENOMEM);
		CHECK(!s);
		return 0;
	}
	CHECK(!dda_state_begin(s, 2, 1, &err));
	/* Keys in the state's order, as the history asks for them. */
	const char *keys[4];
	memcpy(keys, probe_keys, sizeof(keys));
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			if (dda_history_key_cmp((const uint8_t *)keys[j], strlen(keys[j]),
						(const uint8_t *)keys[i], strlen(keys[i])) < 0) {
				const char *t = keys[i];
				keys[i] = keys[j];
				keys[j] = t;
			}
	rc = 0;
	for (int i = 0; i < 4 && !rc; i++) {
		struct dda_carried c;
		rc = dda_state_prior_hook(s, (const uint8_t *)keys[i], strlen(keys[i]), &c);
		if (!rc && c.found)
			CHECK(c.object && c.event >= DDA_EV_INSERT && c.event <= DDA_EV_STATE);
	}
	if (!rc)
		rc = dda_state_drain(s, &err);
	CHECK(rc == 0 || rc == DDA_EFORMAT || rc == DDA_ENOMEM);
	dda_state_free(s);
	return 0;
}
