/* Writes a state of N items for bench/state-run, through the public API
 * (dda_state_*), as a run would: keys sorted in the state's order, one
 * item line each. Keys are "bench-item-NNNNNNNNN" bytes, not real item
 * keys: a run carries them through without ever matching one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddbaudit/ddbaudit.h"

struct ent {
	uint64_t h;
	uint32_t i;
};

static int key_of(uint32_t i, char *out, size_t size)
{
	return snprintf(out, size, "bench-item-%09u", i);
}

static int cmp_ent(const void *pa, const void *pb)
{
	const struct ent *a = pa, *b = pb;
	char ka[32], kb[32];
	if (a->h != b->h)
		return a->h < b->h ? -1 : 1;
	int la = key_of(a->i, ka, sizeof(ka)), lb = key_of(b->i, kb, sizeof(kb));
	return dda_history_key_cmp((const uint8_t *)ka, (size_t)la, (const uint8_t *)kb,
				   (size_t)lb);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: state-gen N PATH SOURCE WATERMARK\n");
		return 2;
	}
	uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
	int64_t wm;
	if (dda_time_parse(argv[4], strlen(argv[4]), &wm))
		return 2;
	struct ent *e = malloc((size_t)n * sizeof(*e));
	if (!e)
		return 3;
	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		int l = key_of(i, k, sizeof(k));
		e[i] = (struct ent){dda_history_key_hash((const uint8_t *)k, (size_t)l), i};
	}
	qsort(e, n, sizeof(*e), cmp_ent);
	struct dda_state_identity id = {.source = argv[3], .nkeys = 2};
	id.key_names[0] = "UserId";
	id.key_names[1] = "ActivityId";
	struct dda_state *s;
	struct dda_error err = {0};
	unlink(argv[2]);
	if (dda_state_open(&s, argv[2], &id, &err) || dda_state_begin(s, wm, wm, &err)) {
		fprintf(stderr, "state-gen: %s\n", err.msg);
		return 3;
	}
	uint8_t digest[DDA_DIGEST_LEN];
	for (uint32_t j = 0; j < n; j++) {
		char k[32];
		int l = key_of(e[j].i, k, sizeof(k));
		memset(digest, (int)(e[j].i & 0xff), sizeof(digest));
		memcpy(digest, &e[j].i, sizeof(e[j].i));
		char obj[96];
		snprintf(obj, sizeof(obj), "audit-logs/2025/07/12/05/user%u-activity%u.json",
			 e[j].i / 10, e[j].i % 10);
		struct dda_item_end end = {.key = (const uint8_t *)k,
					   .key_len = (size_t)l,
					   .present = e[j].i % 10 != 9,
					   .digest_known = true,
					   .digest = digest,
					   .event =
					       e[j].i % 10 != 9 ? DDA_EV_MODIFY : DDA_EV_REMOVE,
					   .time = wm - 1 - (int64_t)e[j].i,
					   .object = obj,
					   .change_fp = 0x9e3779b97f4a7c15u * (e[j].i + 1)};
		if (dda_state_end_hook(s, &end)) {
			fprintf(stderr, "state-gen: %s\n", dda_state_error(s)->msg);
			return 3;
		}
	}
	if (dda_state_drain(s, &err) || dda_state_commit(s, "", "", "", &err)) {
		fprintf(stderr, "state-gen: %s\n", err.msg);
		return 3;
	}
	dda_state_free(s);
	free(e);
	return 0;
}
