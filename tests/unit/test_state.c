/* The state file: written and read back through the hooks the history
 * calls, items of an earlier run copied through in order, the lock, and
 * every way a state is refused (truncated, out of order, foreign, newer).
 * The key hash is pinned: states are sorted by it, so changing it breaks
 * every state already written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>
#include <zlib.h>

#include "util/util.h"
#include "ddbaudit/state.h"

#define T0 (INT64_C(1752300000) * DDA_USEC_PER_SEC)

static char dir[] = "/tmp/dda_state_XXXXXX";
static char path[256];

static int cmp_keys(const void *a, const void *b);
static const char *keys[8];

static int setup(void **st)
{
	(void)st;
	qsort(keys, 8, sizeof(keys[0]), cmp_keys);
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/state.gz", dir);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct dda_state_identity ident(const char *source)
{
	struct dda_state_identity id = {.source = source, .nkeys = 2};
	id.key_names[0] = "UserId";
	id.key_names[1] = "ActivityId";
	return id;
}

/* Keys "k0".."k(n-1)" sorted in the state's order. */
static int cmp_keys(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return dda_history_key_cmp((const uint8_t *)*x, strlen(*x), (const uint8_t *)*y,
				   strlen(*y));
}

static const char *keys[8] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};

static void end_item(struct dda_state *s, const char *key, bool present, uint8_t d, int64_t t)
{
	uint8_t digest[DDA_DIGEST_LEN];
	memset(digest, d, sizeof(digest));
	struct dda_item_end e = {.key = (const uint8_t *)key,
				 .key_len = strlen(key),
				 .present = present,
				 .digest_known = present,
				 .digest = digest,
				 .event = present ? DDA_EV_MODIFY : DDA_EV_REMOVE,
				 .time = t,
				 .object = "audit-logs/2025/07/12/06/x.json",
				 .change_fp = 0x1122334455667788u};
	assert_int_equal(dda_state_end_hook(s, &e), 0);
}

/* A first run writing every other key. */
static void write_first(void)
{
	struct dda_state *s;
	struct dda_error err = {0};
	struct dda_state_identity id = ident("samples/audit-logs/");
	unlink(path);
	assert_int_equal(dda_state_open(&s, path, &id, &err), 0);
	assert_null(dda_state_prior(s));
	assert_int_equal(dda_state_begin(s, T0 + 2 * DDA_USEC_PER_HOUR, T0, &err), 0);
	for (int i = 0; i < 8; i += 2) {
		struct dda_carried c;
		assert_int_equal(dda_state_prior_hook(s, (const uint8_t *)keys[i], 2, &c), 0);
		assert_false(c.found);
		end_item(s, keys[i], i != 4, (uint8_t)i, T0 + i);
	}
	assert_int_equal(dda_state_drain(s, &err), 0);
	assert_int_equal(dda_state_commit(s, "aa", "Enabled", "Disabled", &err), 0);
	dda_state_free(s);
}

static void test_round_trip(void **st)
{
	(void)st;
	struct dda_state *s;
	struct dda_error err = {0};
	struct dda_state_identity id = ident("samples/audit-logs");
	write_first();
	/* A second run: every key, the odd ones new. */
	assert_int_equal(dda_state_open(&s, path, &id, &err), 0);
	const struct dda_state_run *p = dda_state_prior(s);
	assert_non_null(p);
	assert_int_equal(p->watermark, T0 + 2 * DDA_USEC_PER_HOUR);
	assert_int_equal(dda_state_begin(s, T0 + 4 * DDA_USEC_PER_HOUR, T0 + 1, &err), 0);
	for (int i = 0; i < 8; i++) {
		struct dda_carried c;
		assert_int_equal(dda_state_prior_hook(s, (const uint8_t *)keys[i], 2, &c), 0);
		assert_int_equal(c.found, i % 2 == 0);
		if (c.found) {
			assert_int_equal(c.present, i != 4);
			assert_int_equal(c.digest_known, i != 4);
			assert_int_equal(c.time, T0 + i);
			assert_int_equal(c.event, i != 4 ? DDA_EV_MODIFY : DDA_EV_REMOVE);
			assert_string_equal(c.object, "audit-logs/2025/07/12/06/x.json");
			assert_true(c.change_fp == 0x1122334455667788u);
			if (c.present)
				assert_int_equal(c.digest[5], i);
		}
		if (i % 2)
			end_item(s, keys[i], true, 0x70, T0 + 100);
		else
			end_item(s, keys[i], c.present, c.digest[0], c.time);
	}
	assert_int_equal(dda_state_drain(s, &err), 0);
	assert_string_equal(p->report_sha256, "aa");
	assert_string_equal(p->versioning, "Enabled");
	assert_string_equal(p->object_lock, "Disabled");
	assert_int_equal(p->items, 4);
	assert_int_equal(dda_state_commit(s, "bb", "", "", &err), 0);
	assert_int_equal(dda_state_items(s), 8);
	dda_state_free(s);
}

/* A run that sees only one item copies the others through, in order. */
static void test_copy_through(void **st)
{
	(void)st;
	struct dda_state *s;
	struct dda_error err = {0};
	struct dda_state_identity id = ident("samples/audit-logs");
	write_first();
	assert_int_equal(dda_state_open(&s, path, &id, &err), 0);
	assert_int_equal(dda_state_begin(s, T0 + 3 * DDA_USEC_PER_HOUR, T0, &err), 0);
	struct dda_carried c;
	assert_int_equal(dda_state_prior_hook(s, (const uint8_t *)keys[3], 2, &c), 0);
	assert_false(c.found);
	end_item(s, keys[3], true, 3, T0 + 3);
	assert_int_equal(dda_state_drain(s, &err), 0);
	assert_int_equal(dda_state_commit(s, "cc", "", "", &err), 0);
	assert_int_equal(dda_state_items(s), 5);
	dda_state_free(s);
	/* Read back: five items, in order (a disorder would be refused). */
	assert_int_equal(dda_state_open(&s, path, &id, &err), 0);
	assert_int_equal(dda_state_begin(s, T0 + 4 * DDA_USEC_PER_HOUR, T0, &err), 0);
	assert_int_equal(dda_state_drain(s, &err), 0);
	assert_int_equal(dda_state_prior(s)->items, 5);
	assert_string_equal(dda_state_prior(s)->prev_report_sha256, "aa");
	dda_state_free(s);
}

/* Not committed: the old state stays, no temporary file is left. */
static void test_uncommitted_leaves_state(void **st)
{
	(void)st;
	struct dda_state *s;
	struct dda_error err = {0};
	struct dda_state_identity id = ident("samples/audit-logs");
	write_first();
	FILE *f = fopen(path, "rb");
	char before[4096], after[4096];
	size_t nb = fread(before, 1, sizeof(before), f);
	fclose(f);
	assert_int_equal(dda_state_open(&s, path, &id, &err), 0);
	assert_int_equal(dda_state_begin(s, T0 + 3 * DDA_USEC_PER_HOUR, T0, &err), 0);
	end_item(s, "zz", true, 1, T0);
	dda_state_free(s);
	f = fopen(path, "rb");
	size_t na = fread(after, 1, sizeof(after), f);
	fclose(f);
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, na);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep tmp)\"", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_lock_refuses_second(void **st)
{
	(void)st;
	struct dda_state *a, *b;
	struct dda_error err = {0};
	struct dda_state_identity id = ident("samples/audit-logs");
	write_first();
	assert_int_equal(dda_state_open(&a, path, &id, &err), 0);
	assert_int_equal(dda_state_open(&b, path, &id, &err), DDA_EIO);
	assert_non_null(strstr(err.msg, "in use by another run (pid "));
	dda_state_free(a);
	dda_error_clear(&err);
	assert_int_equal(dda_state_open(&b, path, &id, &err), 0);
	dda_state_free(b);
}

static void write_gz(const char *text, struct dda_error *err)
{
	dda_error_clear(err);
	gzFile g = gzopen(path, "wb");
	gzputs(g, text);
	gzclose(g);
}

static void test_refusals(void **st)
{
	(void)st;
	struct dda_state *s;
	struct dda_error err = {0};
	struct dda_state_identity id = ident("samples/audit-logs");
	write_gz("{\"format\":\"other\",\"version\":1}\n", &err);
	assert_int_equal(dda_state_open(&s, path, &id, &err), DDA_EFORMAT);
	assert_non_null(strstr(err.msg, "is not a ddbaudit state"));
	write_gz("{\"format\":\"ddbaudit.state\",\"version\":2,\"tool\":\"ddbaudit 9\"}\n", &err);
	assert_int_equal(dda_state_open(&s, path, &id, &err), DDA_EFORMAT);
	assert_non_null(strstr(err.msg, "newer ddbaudit (ddbaudit 9, format version 2"));
	write_gz("{\"format\":\"ddbaudit.state\",\"version\":1,\"table\":{\"source\":\"x\","
		 "\"key_schema\":[\"UserId\",\"ActivityId\"]},\"watermark_us\":1,"
		 "\"started_us\":1}\n",
		 &err);
	assert_int_equal(dda_state_open(&s, path, &id, &err), DDA_EFORMAT);
	assert_non_null(strstr(err.msg, "belongs to another table (source 'x')"));
	/* Items out of order. */
	char text[2048];
	snprintf(
	    text, sizeof(text),
	    "{\"format\":\"ddbaudit.state\",\"version\":1,\"table\":{\"source\":"
	    "\"samples/audit-logs\",\"key_schema\":[\"UserId\",\"ActivityId\"]},"
	    "\"watermark_us\":1,\"started_us\":1}\n"
	    "{\"k\":\"a2E=\",\"p\":false,\"e\":\"REMOVE\",\"t\":1,\"o\":\"x\",\"c\":\"00\"}\n"
	    "{\"k\":\"a2E=\",\"p\":false,\"e\":\"REMOVE\",\"t\":1,\"o\":\"x\",\"c\":\"00\"}\n");
	write_gz(text, &err);
	int rc = dda_state_open(&s, path, &id, &err);
	if (!rc) {
		assert_int_equal(dda_state_begin(s, 2, 1, &err), 0);
		rc = dda_state_drain(s, &err);
		dda_state_free(s);
	}
	assert_int_equal(rc, DDA_EFORMAT);
	assert_non_null(strstr(err.msg, "not in key order"));
	/* No trailer. */
	*strrchr(text, '{') = '\0';
	write_gz(text, &err);
	assert_int_equal(dda_state_open(&s, path, &id, &err), 0);
	assert_int_equal(dda_state_begin(s, 2, 1, &err), 0);
	assert_int_equal(dda_state_drain(s, &err), DDA_EFORMAT);
	assert_non_null(strstr(err.msg, "trailer is missing"));
	dda_state_free(s);
}

/* States are sorted by this hash: its values are part of the format. */
static void test_key_hash_is_pinned(void **st)
{
	(void)st;
	assert_true(dda_history_key_hash((const uint8_t *)"", 0) == 0xf52a15e9a9b5e89bu);
	assert_true(dda_history_key_hash((const uint8_t *)"user123/activity001", 19) ==
		    0xc4037225442ce586u);
	assert_true(dda_history_key_cmp((const uint8_t *)"a", 1, (const uint8_t *)"a", 1) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_copy_through),
	    cmocka_unit_test(test_uncommitted_leaves_state),
	    cmocka_unit_test(test_lock_refuses_second),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_key_hash_is_pinned),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
