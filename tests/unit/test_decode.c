/* The record decoder: the four dialects, every validation rule, object
 * names and hour prefixes, time filtering, and recovery inside objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "util/util.h"
#include "ddbaudit/record.h"
#include "record/scan.h"

#define MAXN 32

struct got {
	int nrec, nano;
	int kinds[MAXN];
	char details[MAXN][256];
	uint64_t lines[MAXN];
	struct dda_record rec[MAXN];
	uint8_t keys[MAXN][256];
	json_t *new_images[MAXN];
	struct dda_decode_counts counts;
};

static int on_record(void *ctx, const struct dda_record *r)
{
	struct got *g = ctx;
	if (g->nrec < MAXN) {
		g->rec[g->nrec] = *r;
		memcpy(g->keys[g->nrec], r->key, DDA_MIN(r->key_len, 256));
		g->rec[g->nrec].key = g->keys[g->nrec];
		g->rec[g->nrec].seq = NULL; /* borrowed: gone after the callback */
		g->new_images[g->nrec] = r->new_image ? json_deep_copy(r->new_image) : NULL;
		g->nrec++;
	}
	return 0;
}

static int on_anomaly(void *ctx, struct dda_anomaly *a)
{
	struct got *g = ctx;
	if (g->nano < MAXN) {
		g->kinds[g->nano] = a->kind;
		g->lines[g->nano] = a->line;
		snprintf(g->details[g->nano], 256, "%s", a->detail);
		g->nano++;
	}
	dda_anomaly_release(a);
	return 0;
}

static void got_release(struct got *g)
{
	for (int i = 0; i < g->nrec; i++)
		json_decref(g->new_images[i]);
}

/* Decodes text as one object named key, which is an export's data file as
 * exp says (NULL: none). */
static void decode_exp(struct got *g, const char *text, int kind, const char *key,
		       const struct dda_decoder_opts *opts, const struct dda_export_info *exp)
{
	struct dda_objtab *t = dda_objtab_new();
	struct dda_object o = {
	    .key = key ? key : "x.json", .size = -1, .last_modified = DDA_TIME_NONE};
	if (exp)
		o.exp = *exp;
	int64_t id = dda_objtab_add(t, &o);
	assert_true(id >= 0);
	struct dda_decoder_opts def;
	dda_decoder_opts_default(&def);
	struct dda_decoder *d = dda_decoder_new(opts ? opts : &def, t);
	struct dda_chunk c;
	dda_chunk_init(&c);
	c.obj = (uint32_t)id;
	c.kind = kind;
	c.first_line = 1;
	c.last = true;
	dda_buf_init(&c.data, DDA_BUF_UNLIMITED);
	assert_int_equal(dda_buf_adds(&c.data, text), 0);
	memset(g, 0, sizeof(*g));
	const struct dda_decode_sink sink = {g, on_record, on_anomaly};
	assert_int_equal(dda_decode_chunk(d, &c, &sink, &g->counts), 0);
	assert_int_equal(g->counts.valid + g->counts.invalid, g->counts.records);
	dda_chunk_release(&c);
	dda_decoder_free(d);
	dda_objtab_free(t);
}

static void decode_as(struct got *g, const char *text, int kind, const char *key,
		      const struct dda_decoder_opts *opts)
{
	decode_exp(g, text, kind, key, opts, NULL);
}

static void decode(struct got *g, const char *text)
{
	decode_as(g, text, DDA_CHUNK_DOC, NULL, NULL);
}

#define IMG(u, a, extra) "{\"UserId\":{\"S\":\"" u "\"},\"ActivityId\":{\"S\":\"" a "\"}" extra "}"
#define SEED(ev, ts, u, a, images)                                                                 \
	"{\"timestamp\":\"" ts "\",\"eventName\":\"" ev "\",\"userId\":\"" u                       \
	"\",\"activityId\":\"" a                                                                   \
	"\",\"awsRegion\":\"us-east-1\",\"eventSource\":\"aws:dynamodb\"" images "}"

static void expect_one(const char *text, int kind, const char *needle)
{
	struct got g;
	decode(&g, text);
	assert_int_equal(g.nrec, 0);
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], kind);
	if (needle && !strstr(g.details[0], needle))
		fail_msg("detail '%s' lacks '%s'", g.details[0], needle);
	assert_int_equal(g.counts.invalid, 1);
	got_release(&g);
}

/* The fast path must take the writer's records (a fallback is silent: only
 * the speed shows it) and digest them as the jansson path does: images in
 * any attribute order, sets unsorted, nested maps and lists, escapes, more
 * attributes than its small-object sort handles, as json.dumps spaces them. */
static void test_fast_path_takes_writer_records(void **state)
{
	static const char *const recs[] = {
	    "{\"timestamp\": \"2025-07-12T00:01:01.089965\", \"eventName\": \"MODIFY\", "
	    "\"userId\": \"user017382\", \"activityId\": \"act-19\", \"awsRegion\": "
	    "\"us-east-1\", \"eventSource\": \"aws:dynamodb\", \"oldImage\": {\"UserId\": "
	    "{\"S\": \"user017382\"}, \"ActivityId\": {\"S\": \"act-19\"}, \"Version\": {\"N\": "
	    "\"1\"}, \"Tags\": {\"SS\": [\"beta\", \"eu\", \"web\"]}}, \"newImage\": {\"UserId\": "
	    "{\"S\": \"user017382\"}, \"ActivityId\": {\"S\": \"act-19\"}, \"ActivityType\": "
	    "{\"S\": \"SEARCH\"}, \"Timestamp\": {\"N\": \"1752278461\"}, \"Version\": {\"N\": "
	    "\"3\"}, \"IPAddress\": {\"S\": \"10.78.254.193\"}, \"Amount\": {\"N\": \"119.040\"}, "
	    "\"Tags\": {\"SS\": [\"web\", \"beta\", \"eu\"]}, \"Details\": {\"M\": {\"device\": "
	    "{\"S\": \"ios\"}, \"verified\": {\"BOOL\": true}, \"steps\": {\"L\": [{\"N\": "
	    "\"1\"}, {\"N\": \"2\"}]}}}, \"Nothing\": {\"NULL\": true}, \"Blob\": {\"B\": "
	    "\"AAEC\"}, \"Nums\": {\"NS\": [\"10\", \"9.50\"]}}}",
	    SEED("INSERT", "2025-07-12T08:27:50Z", "u\\u00e9\\\"", "a",
		 ",\"newImage\":" IMG("u\\u00e9\\\"", "a",
					",\"Quote\\\"d\":{\"S\":\"\\ud83d\\ude00 tab\\t\"}")),
	    SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
		 ",\"newImage\":" IMG("u", "a",
					",\"a1\":{\"S\":\"1\"},\"z2\":{\"S\":\"2\"},"
					"\"b3\":{\"S\":\"3\"},\"y4\":{\"S\":\"4\"},"
					"\"c5\":{\"S\":\"5\"},\"x6\":{\"S\":\"6\"},"
					"\"d7\":{\"S\":\"7\"},\"w8\":{\"S\":\"8\"},"
					"\"e9\":{\"S\":\"9\"},\"v10\":{\"S\":\"10\"},"
					"\"f11\":{\"S\":\"11\"},\"u12\":{\"S\":\"12\"},"
					"\"g13\":{\"S\":\"13\"},\"t14\":{\"S\":\"14\"},"
					"\"h15\":{\"S\":\"15\"},\"s16\":{\"S\":\"16\"},"
					"\"i17\":{\"S\":\"17\"},\"r18\":{\"S\":\"18\"}")),
	    /* Members in any order (the images before the key fields they
	     * must match), members the dialect does not read (validated and
	     * skipped), maps nested in lists, an escaped type name. */
	    "{\"newImage\":" IMG("u", "a", ",\"L\":{\"L\":[{\"M\":{\"z\":{\"S\":\"1\"},"
					   "\"a\":{\"NULL\":true}}},{\"\\u0053\":\"x\"}]}") ","
	    "\"extra\":{\"b\":[true,false,null,\"s\",{}],\"a\":{\"c\":[]}},\"userId\":\"u\","
	    "\"activityId\":\"a\",\"eventName\":\"INSERT\",\"timestamp\":\"2025-07-12T08:27:50Z\"}",
	};
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	struct dda__scanner *sc = dda__scanner_new();
	assert_non_null(sc);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(recs); i++) {
		struct dda__scan_out so;
		int rc = dda__scan_seed(sc, &o, recs[i], strlen(recs[i]), true, &so);
		if (rc != DDA_SCAN_RECORD)
			fail_msg("record %zu: the fast path did not take it (%d)", i, rc);
		struct got g;
		struct dda_decoder_opts slow = o;
		slow.need_images = true;
		decode_as(&g, recs[i], DDA_CHUNK_DOC, NULL, &slow);
		assert_int_equal(g.nrec, 1);
		assert_int_equal(g.nano, 0);
		assert_memory_equal(so.new_digest, g.rec[0].new_digest, DDA_DIGEST_LEN);
		if (so.has_old)
			assert_memory_equal(so.old_digest, g.rec[0].old_digest, DDA_DIGEST_LEN);
		got_release(&g);
	}
	/* A duplicate name in a map is for the jansson path to report. */
	const char *dup = SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
			       ",\"newImage\":" IMG("u", "a", ",\"x\":{\"S\":\"1\"},\"x\":{\"S\":\"2\"}"));
	struct dda__scan_out so;
	assert_int_equal(dda__scan_seed(sc, &o, dup, strlen(dup), true, &so), DDA_SCAN_FALLBACK);
	/* So is one in a member the dialect does not read, or among those
	 * members, and a key attribute that is not an S. */
	static const char *const others[] = {
	    SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
		 ",\"x\":{\"k\":1,\"k\":2},\"newImage\":" IMG("u", "a", "")),
	    SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
		 ",\"x\":{\"k\":true,\"k\":false},\"newImage\":" IMG("u", "a", "")),
	    SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
		 ",\"x\":true,\"x\":null,\"newImage\":" IMG("u", "a", "")),
	    SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
		 ",\"newImage\":{\"UserId\":{\"N\":\"1\"},\"ActivityId\":{\"S\":\"a\"}}"),
	    SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
		 ",\"newImage\":" IMG("u", "a", "") ",\"newImage\":" IMG("u", "a", "")),
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(others); i++)
		if (dda__scan_seed(sc, &o, others[i], strlen(others[i]), true, &so) !=
		    DDA_SCAN_FALLBACK)
			fail_msg("case %zu: the fast path took it", i);
	/* Outside the range: filtered, as the jansson path would. */
	o.range.from = INT64_C(1752400000) * DDA_USEC_PER_SEC;
	const char *early = SEED("INSERT", "2025-07-12T08:27:50Z", "u", "a",
				 ",\"newImage\":" IMG("u", "a", ""));
	assert_int_equal(dda__scan_seed(sc, &o, early, strlen(early), true, &so),
			 DDA_SCAN_FILTERED);
	dda__scanner_free(sc);
}

static void test_seed_valid(void **state)
{
	struct got g, fast;
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	o.need_images = true;
	const char *text = SEED(
	    "MODIFY", "2025-07-12T08:27:50.412608", "user 7", "act-39",
	    ",\"oldImage\":" IMG("user 7", "act-39", ",\"V\":{\"N\":\"1\"}") ",\"newImage\":" IMG(
		"user 7", "act-39", ",\"V\":{\"N\":\"2\"}"));
	decode_as(&g, text, DDA_CHUNK_DOC, NULL, &o);
	decode_as(&fast, text, DDA_CHUNK_DOC, NULL, NULL);
	/* The fast path (no images) agrees with the jansson path. */
	assert_int_equal(fast.nrec, 1);
	assert_null(fast.new_images[0]);
	assert_memory_equal(fast.rec[0].new_digest, g.rec[0].new_digest, DDA_DIGEST_LEN);
	assert_memory_equal(fast.rec[0].old_digest, g.rec[0].old_digest, DDA_DIGEST_LEN);
	assert_memory_equal(fast.keys[0], g.keys[0], g.rec[0].key_len);
	got_release(&fast);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 1);
	struct dda_record *r = &g.rec[0];
	assert_int_equal(r->dialect, DDA_DIALECT_SEED);
	assert_int_equal(r->event, DDA_EV_MODIFY);
	assert_int_equal(r->time, INT64_C(1752308870412608));
	assert_true(r->has_old && r->has_new);
	/* The key equals the canonical key of the image's key attributes. */
	struct dda_buf k, why;
	dda_buf_init(&k, 4096);
	dda_buf_init(&why, 4096);
	const char *names[] = {"UserId", "ActivityId"};
	assert_int_equal(dda_canon_key(g.new_images[0], names, 2, "x", &k, &why), 0);
	assert_int_equal(k.len, r->key_len);
	assert_memory_equal(k.ptr, r->key, k.len);
	uint8_t d[DDA_DIGEST_LEN];
	assert_int_equal(dda_canon_digest(g.new_images[0], "x", d, &why), 0);
	assert_memory_equal(d, r->new_digest, DDA_DIGEST_LEN);
	assert_memory_not_equal(r->old_digest, r->new_digest, DDA_DIGEST_LEN);
	dda_buf_release(&k);
	dda_buf_release(&why);
	got_release(&g);
}

static void test_invalid_records(void **state)
{
	expect_one("{\"eventName\":\"INSERT\",\"userId\":\"u\",\"activityId\":\"a\"}",
		   DDA_K_INVALID_RECORD, "timestamp");
	expect_one(SEED("INSERT", "yesterday", "u", "a", ",\"newImage\":" IMG("u", "a", "")),
		   DDA_K_INVALID_RECORD, "ISO-8601");
	expect_one(SEED("UPSERT", "2025-07-12T08:00:00", "u", "a", ""), DDA_K_INVALID_RECORD,
		   "UPSERT");
	expect_one("{\"timestamp\":\"2025-07-12T08:00:00\",\"eventName\":\"INSERT\",\"userId\":5,"
		   "\"activityId\":\"a\"}",
		   DDA_K_INVALID_RECORD, "userId");
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "u", "a", ",\"newImage\":[1]"),
		   DDA_K_INVALID_RECORD, "newImage");
	expect_one("[1,2,3]", DDA_K_INVALID_RECORD, "array");
	expect_one("{\"hello\":\"world\"}", DDA_K_INVALID_RECORD, "not an audit record");
	expect_one("{\"a\":1,\"a\":2}", DDA_K_INVALID_RECORD, "duplicate");
}

static void test_invalid_values(void **state)
{
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "u", "a",
			",\"newImage\":" IMG("u", "a", ",\"P\":{\"N\":\"1.2.3\"}")),
		   DDA_K_INVALID_VALUE, "P");
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "u", "a",
			",\"newImage\":" IMG("u", "a", ",\"P\":{\"S\":\"x\",\"N\":\"1\"}")),
		   DDA_K_INVALID_VALUE, NULL);
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "u", "a",
			",\"newImage\":" IMG("u", "a", ",\"T\":{\"SS\":[]}")),
		   DDA_K_INVALID_VALUE, NULL);
	expect_one("{\"timestamp\":\"2025-07-12T08:00:00\",\"eventName\":\"INSERT\","
		   "\"userId\":\"u\xff\",\"activityId\":\"a\"}",
		   DDA_K_INVALID_VALUE, "UTF-8");
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "", "a", ""), DDA_K_INVALID_VALUE,
		   "empty");
	/* Bytes JSON never holds mean binary data: UNREADABLE, not text. */
	expect_one("\x89PNG\r\n\x1a\n\x01\xff", DDA_K_UNREADABLE, "not text");
	expect_one("{\"a\":\"\x01\xff\"}", DDA_K_UNREADABLE, "not text");
}

static void test_image_mismatch(void **state)
{
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "u", "a",
			",\"oldImage\":" IMG("u", "a", "") ",\"newImage\":" IMG("u", "a", "")),
		   DDA_K_IMAGE_MISMATCH, "INSERT");
	expect_one(
	    SEED("REMOVE", "2025-07-12T08:00:00", "u", "a", ",\"newImage\":" IMG("u", "a", "")),
	    DDA_K_IMAGE_MISMATCH, "REMOVE");
	expect_one(
	    SEED("MODIFY", "2025-07-12T08:00:00", "u", "a", ",\"newImage\":" IMG("u", "a", "")),
	    DDA_K_IMAGE_MISMATCH, "old image");
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "u", "a", ""), DDA_K_IMAGE_MISMATCH,
		   "new image");
}

static void test_key_mismatch_in_image(void **state)
{
	expect_one(
	    SEED("INSERT", "2025-07-12T08:00:00", "u", "a", ",\"newImage\":" IMG("v", "a", "")),
	    DDA_K_KEY_MISMATCH, "newImage");
	expect_one(SEED("INSERT", "2025-07-12T08:00:00", "u", "a",
			",\"newImage\":{\"UserId\":{\"S\":\"u\"}}"),
		   DDA_K_KEY_MISMATCH, NULL);
}

/* The object name is evidence: a record filed under another name is
 * KEY_MISMATCH but is still applied; names may hold '-', '/', spaces. */
static void test_object_name(void **state)
{
	struct got g;
	const char *rec = SEED("INSERT", "2025-07-12T08:10:00", "team/a b-c", "x-1",
			       ",\"newImage\":" IMG("team/a b-c", "x-1", ""));
	decode_as(&g, rec, DDA_CHUNK_DOC, "audit-logs/2025/07/12/08/team/a b-c-x-1.json", NULL);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 1);
	got_release(&g);
	decode_as(&g, rec, DDA_CHUNK_DOC, "audit-logs/2025/07/12/08/team/a b-c-x-1.json.gz", NULL);
	assert_int_equal(g.nano, 0);
	got_release(&g);
	decode_as(&g, rec, DDA_CHUNK_DOC, "audit-logs/2025/07/12/08/other-x-1.json", NULL);
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], DDA_K_KEY_MISMATCH);
	assert_int_equal(g.nrec, 1);
	assert_int_equal(g.counts.valid, 1);
	got_release(&g);
	/* A NUL in a key value is shown escaped, not cut. */
	rec = SEED("INSERT", "2025-07-12T08:10:00", "a\\u0000b", "x",
		   ",\"newImage\":" IMG("a\\u0000b", "x", ""));
	decode_as(&g, rec, DDA_CHUNK_DOC, "audit-logs/2025/07/12/08/a-x.json", NULL);
	assert_int_equal(g.nano, 1);
	assert_non_null(strstr(g.details[0], "(expected 'a\\x00b-x.json')"));
	got_release(&g);
}

static void test_prefix_skew(void **state)
{
	struct got g;
	/* Processing crossed the hour between timestamp and key: normal. */
	decode_as(
	    &g,
	    SEED("INSERT", "2025-07-12T08:59:59.999", "u", "a", ",\"newImage\":" IMG("u", "a", "")),
	    DDA_CHUNK_DOC, "audit-logs/2025/07/12/09/u-a.json", NULL);
	assert_int_equal(g.nano, 0);
	got_release(&g);
	decode_as(
	    &g, SEED("INSERT", "2025-07-12T05:30:00", "u", "a", ",\"newImage\":" IMG("u", "a", "")),
	    DDA_CHUNK_DOC, "audit-logs/2025/07/12/09/u-a.json", NULL);
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], DDA_K_PREFIX_SKEW);
	assert_int_equal(g.nrec, 1);
	got_release(&g);
}

#define STREAM(id, ev, t, seq, view, images)                                                       \
	"{\"eventID\":\"" id "\",\"eventName\":\"" ev "\",\"eventVersion\":\"1.1\","               \
	"\"eventSource\":\"aws:dynamodb\",\"awsRegion\":\"us-east-1\",\"dynamodb\":{"              \
	"\"ApproximateCreationDateTime\":" t ",\"Keys\":{\"Id\":{\"N\":\"101\"}}" images           \
	",\"SequenceNumber\":\"" seq "\",\"SizeBytes\":26,\"StreamViewType\":\"" view "\"}}"

static void test_stream_dialect(void **state)
{
	struct got g;
	decode(&g, "{\"Records\":[" STREAM(
		       "e1", "INSERT", "1752308870", "100", "NEW_AND_OLD_IMAGES",
		       ",\"NewImage\":{\"Id\":{\"N\":\"101\"},\"V\":{\"S\":\"a\"}"
		       "}") "," STREAM("e2", "MODIFY", "1752308871.5", "200", "NEW_IMAGE",
				       ",\"NewImage\":{\"Id\":{\"N\":\"101\"},"
				       "\"V\":{\"S\":\"b\"}}") "]}");
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 2);
	assert_int_equal(g.rec[0].dialect, DDA_DIALECT_STREAM);
	assert_int_equal(g.rec[0].index, 0);
	assert_int_equal(g.rec[1].index, 1);
	assert_int_equal(g.rec[1].time, INT64_C(1752308871500000));
	assert_true(g.rec[1].old_unknown);
	assert_int_equal(g.rec[1].seq_len, 3);
	got_release(&g);
	expect_one(STREAM("e3", "MODIFY", "\"x\"", "1", "NEW_IMAGE", ""), DDA_K_INVALID_RECORD,
		   "ApproximateCreationDateTime");
	/* Neither a time nor a sequence number: nothing to order it by. */
	expect_one("{\"eventName\":\"REMOVE\",\"dynamodb\":{\"Keys\":{\"Id\":{\"S\":\"k\"}},"
		   "\"OldImage\":{\"Id\":{\"S\":\"k\"}}}}",
		   DDA_K_INVALID_RECORD, "cannot be ordered");
	expect_one(STREAM("e3", "MODIFY", "1", "12a", "NEW_IMAGE", ",\"NewImage\":{}"),
		   DDA_K_INVALID_RECORD, "SequenceNumber");
	expect_one(STREAM("e4", "REMOVE", "1", "1", "NEW_AND_OLD_IMAGES",
			  ",\"OldImage\":{\"Id\":{\"N\":\"102\"}}"),
		   DDA_K_KEY_MISMATCH, NULL);
}

static void test_stream_ttl(void **state)
{
	struct got g;
	decode(&g,
	       "{\"eventName\":\"REMOVE\",\"userIdentity\":{\"type\":\"Service\","
	       "\"principalId\":\"dynamodb.amazonaws.com\"},\"dynamodb\":{"
	       "\"ApproximateCreationDateTime\":1752308870,\"Keys\":{\"Id\":{\"S\":\"k\"}},"
	       "\"OldImage\":{\"Id\":{\"S\":\"k\"}},\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"}}");
	assert_int_equal(g.nrec, 1);
	assert_true(g.rec[0].ttl);
	got_release(&g);
}

static void test_export_dialect(void **state)
{
	struct got g;
	decode_as(&g,
		  "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"1752308870000001\"}},\"Keys\":{"
		  "\"pk\":{"
		  "\"S\":\"x\"}},"
		  "\"NewImage\":{\"pk\":{\"S\":\"x\"},\"n\":{\"N\":\"1\"}}}\n"
		  "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"1752308870000002\"}},\"Keys\":{"
		  "\"pk\":{"
		  "\"S\":\"x\"}},"
		  "\"OldImage\":{\"pk\":{\"S\":\"x\"},\"n\":{\"N\":\"1\"}},"
		  "\"NewImage\":{\"pk\":{\"S\":\"x\"},\"n\":{\"N\":\"2\"}}}\n"
		  "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"1752308870000003\"}},\"Keys\":{"
		  "\"pk\":{"
		  "\"S\":\"x\"}}}\n",
		  DDA_CHUNK_LINES, "export.json", NULL);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 3);
	assert_int_equal(g.rec[0].event, DDA_EV_INSERT);
	assert_int_equal(g.rec[1].event, DDA_EV_MODIFY);
	assert_int_equal(g.rec[2].event, DDA_EV_REMOVE);
	assert_true(g.rec[2].old_unknown);
	assert_int_equal(g.rec[2].line, 3);
	got_release(&g);
}

/* The Lambda developer guide's example DynamoDB event: no
 * ApproximateCreationDateTime, ordered by SequenceNumber; a range never
 * drops a record whose time is unknown. */
#define LAMBDA_DOCS_EVENT                                                                          \
	"{\"Records\":[{\"eventID\":\"1\",\"eventVersion\":\"1.0\",\"dynamodb\":{\"Keys\":{"       \
	"\"Id\":{\"N\":\"101\"}},\"NewImage\":{\"Message\":{\"S\":\"New item!\"},\"Id\":{\"N\":"   \
	"\"101\"}},\"StreamViewType\":\"NEW_AND_OLD_IMAGES\",\"SequenceNumber\":\"111\","          \
	"\"SizeBytes\":26},\"awsRegion\":\"us-west-2\",\"eventName\":\"INSERT\","                  \
	"\"eventSourceARN\":"                                                                      \
	"\"arn:aws:dynamodb:us-west-2:111122223333:table/TestTable/stream/"                        \
	"2015-05-11T21:21:33.291\","                                                               \
	"\"eventSource\":\"aws:dynamodb\"},{\"eventID\":\"2\",\"eventVersion\":\"1.0\","           \
	"\"dynamodb\":{"                                                                           \
	"\"OldImage\":{\"Message\":{\"S\":\"New "                                                  \
	"item!\"},\"Id\":{\"N\":\"101\"}},\"SequenceNumber\":"                                     \
	"\"222\",\"Keys\":{\"Id\":{\"N\":\"101\"}},\"SizeBytes\":59,\"NewImage\":{\"Message\":{"   \
	"\"S\":\"This item has changed\"},\"Id\":{\"N\":\"101\"}},\"StreamViewType\":"             \
	"\"NEW_AND_OLD_IMAGES\"},\"awsRegion\":\"us-west-2\",\"eventName\":\"MODIFY\","            \
	"\"eventSourceARN\":\"arn:aws:dynamodb:us-west-2:111122223333:table/TestTable/stream/"     \
	"2015-05-11T21:21:33.291\",\"eventSource\":\"aws:dynamodb\"},{\"eventID\":\"3\","          \
	"\"eventVersion\":\"1.0\",\"dynamodb\":{\"Keys\":{\"Id\":{\"N\":\"101\"}},\"SizeBytes\":"  \
	"38,"                                                                                      \
	"\"SequenceNumber\":\"333\",\"OldImage\":{\"Message\":{\"S\":\"This item has changed\"},"  \
	"\"Id\":{\"N\":\"101\"}},\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"},\"awsRegion\":"        \
	"\"us-west-2\",\"eventName\":\"REMOVE\",\"eventSourceARN\":\"arn:aws:dynamodb:us-west-2:"  \
	"111122223333:table/TestTable/stream/2015-05-11T21:21:33.291\",\"eventSource\":"           \
	"\"aws:dynamodb\"}]}"

static void test_stream_without_time(void **state)
{
	struct got g;
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	o.range.from = INT64_C(1752300000000000);
	o.range.to = INT64_C(1752400000000000);
	decode_as(&g, LAMBDA_DOCS_EVENT, DDA_CHUNK_DOC, "event.json", &o);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 3);
	assert_int_equal(g.counts.filtered, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g.rec[i].dialect, DDA_DIALECT_STREAM);
		assert_true(g.rec[i].time == DDA_TIME_NONE);
		assert_int_equal(g.rec[i].seq_len, 3);
	}
	assert_int_equal(g.rec[0].event, DDA_EV_INSERT);
	assert_int_equal(g.rec[1].event, DDA_EV_MODIFY);
	assert_int_equal(g.rec[2].event, DDA_EV_REMOVE);
	got_release(&g);
}

#define EXPORT_LINE(micros, rest)                                                                  \
	"{\"Metadata\":{\"WriteTimestampMicros\":" micros "},\"Keys\":{\"pk\":{\"S\":\"x\"}}" rest \
	"}\n"

/* WriteTimestampMicros is an N value, as AWS writes it; a bare integer, a
 * negative or fractional N and a time past the year 9999 are refused. */
static void test_export_time_forms(void **state)
{
	struct got g;
	decode_as(&g, EXPORT_LINE("{\"N\":\"1752308870412608\"}", ""), DDA_CHUNK_LINES, NULL, NULL);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 1);
	assert_true(g.rec[0].time == INT64_C(1752308870412608));
	got_release(&g);
	static const char *const bad[] = {"1752308870412608", "\"1752308870412608\"",
					  "{\"N\":\"-1\"}",   "{\"N\":\"1.5\"}",
					  "{\"N\":\"\"}",     "{\"N\":\"999999999999999999\"}",
					  "{\"S\":\"1\"}",    "{\"N\":\"1\",\"S\":\"1\"}",
					  "{\"N\":1}"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++) {
		char line[256];
		snprintf(
		    line, sizeof(line),
		    "{\"Metadata\":{\"WriteTimestampMicros\":%s},\"Keys\":{\"pk\":{\"S\":\"x\"}}}",
		    bad[i]);
		expect_one(line, DDA_K_INVALID_RECORD, "WriteTimestampMicros");
	}
}

/* An incremental export's data file: lines outside the export's window and
 * a line count other than the manifest's are EXPORT_MISMATCH; in a
 * NEW_IMAGE export a new image alone is a MODIFY of unknown old image. */
static void test_export_manifest_checks(void **state)
{
	struct got g;
	struct dda_export_info exp = {.kind = DDA_EXPORT_INCREMENTAL,
				      .listed = true,
				      .items = 2,
				      .from = INT64_C(1752308870000000),
				      .to = INT64_C(1752308880000000)};
	const char *two =
	    EXPORT_LINE("{\"N\":\"1752308870000000\"}", ",\"NewImage\":{\"pk\":{\"S\":\"x\"}}")
		EXPORT_LINE("{\"N\":\"1752308879999999\"}", ",\"OldImage\":{\"pk\":{\"S\":\"x\"}}");
	decode_exp(&g, two, DDA_CHUNK_DOC, "AWSDynamoDB/e/data/a.json.gz", NULL, &exp);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 2);
	assert_int_equal(g.rec[0].event, DDA_EV_INSERT);
	got_release(&g);

	exp.items = 3;
	decode_exp(&g, two, DDA_CHUNK_DOC, "AWSDynamoDB/e/data/a.json.gz", NULL, &exp);
	assert_int_equal(g.nrec, 2);
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], DDA_K_EXPORT_MISMATCH);
	assert_non_null(strstr(g.details[0], "holds 2 items"));
	got_release(&g);

	exp.items = 1;
	exp.new_only = true;
	decode_exp(
	    &g, EXPORT_LINE("{\"N\":\"1752308880000000\"}", ",\"NewImage\":{\"pk\":{\"S\":\"x\"}}"),
	    DDA_CHUNK_DOC, "AWSDynamoDB/e/data/a.json.gz", NULL, &exp);
	assert_int_equal(g.nrec, 1);
	assert_int_equal(g.rec[0].event, DDA_EV_MODIFY);
	assert_true(g.rec[0].old_unknown);
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], DDA_K_EXPORT_MISMATCH);
	assert_non_null(strstr(g.details[0], "outside its export's window"));
	got_release(&g);

	/* An empty data file (an empty partition) is no finding. */
	exp.items = 0;
	decode_exp(&g, "", DDA_CHUNK_DOC, "AWSDynamoDB/e/data/b.json.gz", NULL, &exp);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.counts.records, 0);
}

/* A full export's {"Item":...} line is the item's state at exportTime,
 * keyed by --key-schema; outside a full export it has no time. */
static void test_export_full(void **state)
{
	struct got g;
	struct dda_export_info exp = {
	    .kind = DDA_EXPORT_FULL, .listed = true, .items = 2, .time = INT64_C(1752308870028000)};
	const char *items = "{\"Item\":" IMG(
	    "u1", "a1",
	    ",\"V\":{\"N\":\"1\"}") "}\n"
				    "{\"Item\":" IMG("u2", "a2",
						     ",\"Tags\":{\"SS\":[\"b\",\"a\"]}") "}\n";
	decode_exp(&g, items, DDA_CHUNK_DOC, "AWSDynamoDB/f/data/x.json.gz", NULL, &exp);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g.rec[i].dialect, DDA_DIALECT_EXPORT_FULL);
		assert_int_equal(g.rec[i].event, DDA_EV_STATE);
		assert_true(g.rec[i].time == exp.time);
		assert_true(g.rec[i].has_new);
		assert_false(g.rec[i].has_old);
		assert_false(g.rec[i].old_unknown);
		assert_false(g.rec[i].new_unknown);
		assert_non_null(g.new_images[i]);
	}
	got_release(&g);
	/* Its key is the seed records' key for the same item. */
	struct got s;
	decode(&s, SEED("INSERT", "2025-07-12T08:00:00", "u1", "a1",
			",\"newImage\":" IMG("u1", "a1", ",\"V\":{\"N\":\"1\"}")));
	decode_exp(&g, items, DDA_CHUNK_DOC, "AWSDynamoDB/f/data/x.json.gz", NULL, &exp);
	assert_int_equal(s.nrec, 1);
	assert_int_equal(g.rec[0].key_len, s.rec[0].key_len);
	assert_memory_equal(g.keys[0], s.keys[0], s.rec[0].key_len);
	assert_memory_equal(g.rec[0].new_digest, s.rec[0].new_digest, DDA_DIGEST_LEN);
	got_release(&g);
	got_release(&s);

	expect_one("{\"Item\":" IMG("u1", "a1", "") "}", DDA_K_INVALID_RECORD, "full export");
	decode_exp(&g,
		   "{\"Item\":{\"UserId\":{\"S\":\"u\"}}}\n{\"Item\":3}\n"
		   "{\"Item\":" IMG("u", "a", "") ",\"x\":1}\n",
		   DDA_CHUNK_DOC, "AWSDynamoDB/f/data/y.json.gz", NULL, &exp);
	assert_int_equal(g.nrec, 0);
	assert_int_equal(g.nano, 4);
	assert_int_equal(g.kinds[0], DDA_K_KEY_MISMATCH);
	assert_int_equal(g.kinds[1], DDA_K_INVALID_RECORD);
	assert_int_equal(g.kinds[2], DDA_K_INVALID_RECORD);
	assert_int_equal(g.kinds[3], DDA_K_EXPORT_MISMATCH);
	got_release(&g);

	/* A range that excludes the export time filters its states. */
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	o.range.from = exp.time + 1;
	o.range.to = DDA_TIME_NONE;
	decode_exp(&g, items, DDA_CHUNK_DOC, "AWSDynamoDB/f/data/x.json.gz", &o, &exp);
	assert_int_equal(g.nrec, 0);
	assert_int_equal(g.counts.filtered, 2);
	assert_int_equal(g.nano, 0);
	got_release(&g);
}

static void test_range_filter(void **state)
{
	struct got g;
	struct dda_decoder_opts o;
	dda_decoder_opts_default(&o);
	assert_int_equal(dda_time_parse("2025-07-12T08:00", 16, &o.range.from), 0);
	assert_int_equal(dda_time_parse("2025-07-12T09:00", 16, &o.range.to), 0);
	decode_as(
	    &g,
	    SEED("INSERT", "2025-07-12T07:59:59.999999", "u", "a",
		 ",\"newImage\":" IMG(
		     "u", "a",
		     "")) "\n" SEED("INSERT", "2025-07-12T08:00:00", "u", "b",
				    ",\"newImage\":" IMG(
					"u", "b",
					"")) "\n" SEED("INSERT", "2025-07-12T09:00:00", "u", "c",
						       ",\"newImage\":" IMG(
							   "u", "c",
							   "")) "\n" SEED("BOGUS",
									  "2025-07-12T10:00:00",
									  "u", "d", "") "\n",
	    DDA_CHUNK_LINES, "x.ndjson", &o);
	assert_int_equal(g.nrec, 1);
	assert_int_equal(g.counts.filtered, 3);
	assert_int_equal(g.counts.records, 1);
	assert_int_equal(g.nano, 0);
	got_release(&g);
}

/* Several values in one object; a broken line in a line-structured object
 * is one finding and the next line is read. */
static void test_doc_recovery(void **state)
{
	struct got g;
	decode(&g, SEED("INSERT", "2025-07-12T08:00:00", "u", "a",
			",\"newImage\":" IMG("u", "a",
					     "")) "\n"
						  "{\"timestamp\": oops}\n" SEED(
						      "INSERT", "2025-07-12T08:00:01", "u", "b",
						      ",\"newImage\":" IMG("u", "b", "")) "\n");
	assert_int_equal(g.nrec, 2);
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], DDA_K_UNREADABLE);
	assert_int_equal(g.lines[0], 2);
	assert_int_equal(g.rec[1].line, 3);
	got_release(&g);
	/* A pretty-printed object cut short is one UNREADABLE. */
	decode(&g, "{\n  \"timestamp\": \"2025-07-12T08:00:00\",\n  \"eventName\": ");
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], DDA_K_UNREADABLE);
	got_release(&g);
	decode(&g, "  \n ");
	assert_int_equal(g.nano, 1);
	assert_int_equal(g.kinds[0], DDA_K_UNREADABLE);
	got_release(&g);
}

static void test_key_schema(void **state)
{
	struct dda_decoder_opts o;
	struct dda_error err = {0};
	dda_decoder_opts_default(&o);
	assert_int_equal(dda_key_schema_parse("Pk:HASH,Sk:RANGE", &o, &err), 0);
	assert_string_equal(o.key_names[0], "Pk");
	assert_string_equal(o.key_names[1], "Sk");
	assert_int_equal(o.nkeys, 2);
	assert_int_equal(dda_key_schema_parse("Pk", &o, &err), 0);
	assert_int_equal(o.nkeys, 1);
	assert_int_equal(dda_key_schema_parse("Pk:RANGE", &o, &err), DDA_EINVAL);
	assert_int_equal(dda_key_schema_parse("A,B,C", &o, &err), DDA_EINVAL);
	assert_int_equal(dda_key_schema_parse("", &o, &err), DDA_EINVAL);
	struct got g;
	dda_key_schema_parse("Pk:HASH,Sk:RANGE", &o, &err);
	decode_as(&g,
		  SEED("INSERT", "2025-07-12T08:00:00", "u", "a",
		       ",\"newImage\":{\"Pk\":{\"S\":\"u\"},\"Sk\":{\"S\":\"a\"}}"),
		  DDA_CHUNK_DOC, NULL, &o);
	assert_int_equal(g.nano, 0);
	assert_int_equal(g.nrec, 1);
	got_release(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seed_valid),
	    cmocka_unit_test(test_invalid_records),
	    cmocka_unit_test(test_invalid_values),
	    cmocka_unit_test(test_image_mismatch),
	    cmocka_unit_test(test_key_mismatch_in_image),
	    cmocka_unit_test(test_object_name),
	    cmocka_unit_test(test_prefix_skew),
	    cmocka_unit_test(test_stream_dialect),
	    cmocka_unit_test(test_stream_ttl),
	    cmocka_unit_test(test_export_dialect),
	    cmocka_unit_test(test_stream_without_time),
	    cmocka_unit_test(test_export_time_forms),
	    cmocka_unit_test(test_export_manifest_checks),
	    cmocka_unit_test(test_export_full),
	    cmocka_unit_test(test_range_filter),
	    cmocka_unit_test(test_doc_recovery),
	    cmocka_unit_test(test_key_schema),
	    cmocka_unit_test(test_fast_path_takes_writer_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
