/* Replay building blocks: Lambda filter criteria (every operator, with the
 * examples of Lambda's documentation), synthetic records against AWS's
 * documented stream records, and a target's ReportBatchItemFailures answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "replay/replay.h"
#include "replay/target_impl.h"
#include "ddbaudit/canon.h"
#include "ddbaudit/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A record in the shape of the operator examples of Lambda's docs. */
#define PLAIN_RECORD                                                                               \
	"{\"UserID\":null,\"LastName\":\"\",\"Name\":\"Alice\",\"Location\":\"New York\","         \
	"\"Day\":\"Monday\",\"PaymentType\":\"Credit\",\"Weather\":\"Sunny\",\"Price\":100,"       \
	"\"ProductName\":\"Widget\",\"Region\":\"us-east-1\",\"FileName\":\"cat.png\","            \
	"\"Tags\":[\"red\",\"blue\"],\"Ratio\":2.5,\"person\":{\"address\":{\"city\":\"X\"}}}"

/* A synthetic DynamoDB stream record (AWS's MODIFY example, plus Amount). */
#define STREAM_RECORD                                                                              \
	"{\"eventID\":\"1\",\"eventName\":\"MODIFY\",\"eventSource\":\"aws:dynamodb\","            \
	"\"dynamodb\":{\"Keys\":{\"Id\":{\"N\":\"101\"}},"                                         \
	"\"NewImage\":{\"Message\":{\"S\":\"This item has changed\"},\"Id\":{\"N\":\"101\"},"      \
	"\"Amount\":{\"N\":\"250.5\"},\"Active\":{\"BOOL\":true},\"Sizes\":{\"NS\":[\"3\",\"40\"]}},"    \
	"\"OldImage\":{\"Message\":{\"S\":\"New item!\"},\"Id\":{\"N\":\"101\"}},"                 \
	"\"StreamViewType\":\"NEW_AND_OLD_IMAGES\"}}"

struct filter_case {
	const char *what;
	const char *record;
	const char *pattern;
	bool match;
};

#define P PLAIN_RECORD
#define S STREAM_RECORD
static const struct filter_case cases[] = {
    /* Null */
    {"null", P, "{\"UserID\":[null]}", true},
    {"null: a string is not null", P, "{\"Name\":[null]}", false},
    {"null: an absent field is not null", P, "{\"Nope\":[null]}", false},
    /* Empty */
    {"empty", P, "{\"LastName\":[\"\"]}", true},
    {"empty: a value is not empty", P, "{\"Name\":[\"\"]}", false},
    /* Equals */
    {"equals", P, "{\"Name\":[\"Alice\"]}", true},
    {"equals is case-sensitive", P, "{\"Name\":[\"alice\"]}", false},
    {"equals: a number is not its string", P, "{\"Price\":[\"100\"]}", false},
    {"equals: a number literal", P, "{\"Price\":[100]}", true},
    /* Equals and ignore case */
    {"equals-ignore-case", P, "{\"Name\":[{\"equals-ignore-case\":\"alice\"}]}", true},
    {"equals-ignore-case: other text", P, "{\"Name\":[{\"equals-ignore-case\":\"bob\"}]}", false},
    /* And */
    {"and", P, "{\"Location\":[\"New York\"],\"Day\":[\"Monday\"]}", true},
    {"and: one field differs", P, "{\"Location\":[\"New York\"],\"Day\":[\"Tuesday\"]}", false},
    /* Or within a field */
    {"or", P, "{\"PaymentType\":[\"Credit\",\"Debit\"]}", true},
    {"or: none", P, "{\"PaymentType\":[\"Cash\",\"Debit\"]}", false},
    /* $or across fields */
    {"$or", P, "{\"$or\":[{\"Location\":[\"Boston\"]},{\"Day\":[\"Monday\"]}]}", true},
    {"$or: none", P, "{\"$or\":[{\"Location\":[\"Boston\"]},{\"Day\":[\"Friday\"]}]}", false},
    {"$or and a field", P,
     "{\"Name\":[\"Bob\"],\"$or\":[{\"Location\":[\"New York\"]},{\"Day\":[\"Monday\"]}]}", false},
    /* Not */
    {"anything-but list", P, "{\"Weather\":[{\"anything-but\":[\"Raining\"]}]}", true},
    {"anything-but list: excluded", P, "{\"Weather\":[{\"anything-but\":[\"Raining\",\"Sunny\"]}]}",
     false},
    {"anything-but value", P, "{\"Weather\":[{\"anything-but\":\"Sunny\"}]}", false},
    {"anything-but number", P, "{\"Price\":[{\"anything-but\":[100,200]}]}", false},
    {"anything-but prefix", P, "{\"Region\":[{\"anything-but\":{\"prefix\":\"us-\"}}]}", false},
    {"anything-but prefix: other", P, "{\"Region\":[{\"anything-but\":{\"prefix\":\"eu-\"}}]}",
     true},
    {"anything-but needs the field", P, "{\"Nope\":[{\"anything-but\":[\"x\"]}]}", false},
    /* Numeric (equals) */
    {"numeric =", P, "{\"Price\":[{\"numeric\":[\"=\",100]}]}", true},
    {"numeric = other", P, "{\"Price\":[{\"numeric\":[\"=\",101]}]}", false},
    /* Numeric (range) */
    {"numeric range", P, "{\"Price\":[{\"numeric\":[\">\",10,\"<=\",100]}]}", true},
    {"numeric range: out", P, "{\"Price\":[{\"numeric\":[\">\",100,\"<=\",200]}]}", false},
    {"numeric < on a string field", P, "{\"Name\":[{\"numeric\":[\"<\",5]}]}", false},
    /* Exists / does not exist */
    {"exists", P, "{\"ProductName\":[{\"exists\":true}]}", true},
    {"exists: absent", P, "{\"Nope\":[{\"exists\":true}]}", false},
    {"does not exist: present", P, "{\"ProductName\":[{\"exists\":false}]}", false},
    {"does not exist", P, "{\"Nope\":[{\"exists\":false}]}", true},
    /* Begins with / ends with */
    {"prefix", P, "{\"Region\":[{\"prefix\":\"us-\"}]}", true},
    {"prefix: other", P, "{\"Region\":[{\"prefix\":\"eu-\"}]}", false},
    {"suffix", P, "{\"FileName\":[{\"suffix\":\".png\"}]}", true},
    {"suffix: other", P, "{\"FileName\":[{\"suffix\":\".jpg\"}]}", false},
    /* A list in the record matches when one element does */
    {"list element", P, "{\"Tags\":[\"blue\"]}", true},
    {"list element: none", P, "{\"Tags\":[\"green\"]}", false},
    /* DynamoDB stream records, as Lambda filters them */
    {"eventName", S, "{\"eventName\":[\"MODIFY\"]}", true},
    {"eventName: other", S, "{\"eventName\":[\"INSERT\",\"REMOVE\"]}", false},
    {"key as text", S, "{\"dynamodb\":{\"Keys\":{\"Id\":{\"N\":[\"101\"]}}}}", true},
    {"image prefix", S,
     "{\"dynamodb\":{\"NewImage\":{\"Message\":{\"S\":[{\"prefix\":\"This\"}]}}}}", true},
    {"image BOOL", S, "{\"dynamodb\":{\"NewImage\":{\"Active\":{\"BOOL\":[true]}}}}", true},
    {"image BOOL false", S, "{\"dynamodb\":{\"NewImage\":{\"Active\":{\"BOOL\":[false]}}}}", false},
    {"absent attribute", S, "{\"dynamodb\":{\"NewImage\":{\"Gone\":{\"S\":[{\"exists\":false}]}}}}",
     true},
    {"absent attribute, exists", S,
     "{\"dynamodb\":{\"NewImage\":{\"Gone\":{\"S\":[{\"exists\":true}]}}}}", false},
    {"old image only", S, "{\"dynamodb\":{\"OldImage\":{\"Message\":{\"S\":[\"New item!\"]}}}}",
     true},
    /* The extension: numeric matching on DynamoDB N strings */
    {"numeric on N", S,
     "{\"eventName\":[\"MODIFY\"],\"dynamodb\":{\"NewImage\":{\"Amount\":{\"N\":[{\"numeric\":[\">"
     "\","
     "200]}]}}}}",
     true},
    {"numeric on N: out of range", S,
     "{\"dynamodb\":{\"NewImage\":{\"Amount\":{\"N\":[{\"numeric\":[\"<\",200]}]}}}}", false},
    {"numeric = on N", S, "{\"dynamodb\":{\"Keys\":{\"Id\":{\"N\":[{\"numeric\":[\"=\",101]}]}}}}",
     true},
    /* number literals compare as Lambda compares them: by their text */
    {"number literal on N is not its string", S,
     "{\"dynamodb\":{\"Keys\":{\"Id\":{\"N\":[101]}}}}", false},
    {"number literal: 100.0 is not 100", P, "{\"Price\":[100.0]}", false},
    {"number literal: 2.5", P, "{\"Ratio\":[2.5]}", true},
    {"anything-but number literal: 100.0", P, "{\"Price\":[{\"anything-but\":[100.0]}]}",
     true},
    /* exists sees leaf nodes only (Lambda's own example) */
    {"exists on an intermediate node", P, "{\"person\":{\"address\":[{\"exists\":true}]}}",
     false},
    {"exists on the leaf", P,
     "{\"person\":{\"address\":{\"city\":[{\"exists\":true}]}}}", true},
    {"does not exist: an intermediate node is no leaf", P,
     "{\"person\":{\"address\":[{\"exists\":false}]}}", true},
    {"exists on an attribute's object", S,
     "{\"dynamodb\":{\"NewImage\":{\"Message\":[{\"exists\":true}]}}}", false},
    /* anything-but forms */
    {"anything-but suffix", P, "{\"FileName\":[{\"anything-but\":{\"suffix\":\".png\"}}]}",
     false},
    {"anything-but equals-ignore-case list", P,
     "{\"Name\":[{\"anything-but\":{\"equals-ignore-case\":[\"bob\",\"ALICE\"]}}]}", false},
    {"anything-but equals-ignore-case", P,
     "{\"Name\":[{\"anything-but\":{\"equals-ignore-case\":\"bob\"}}]}", true},
    /* the extension applies to NS too */
    {"numeric on NS", S,
     "{\"dynamodb\":{\"NewImage\":{\"Sizes\":{\"NS\":[{\"numeric\":[\">\",30]}]}}}}", true},
    {"numeric on NS: none", S,
     "{\"dynamodb\":{\"NewImage\":{\"Sizes\":{\"NS\":[{\"numeric\":[\">\",50]}]}}}}", false},
    {"numeric on S is no number", S,
     "{\"dynamodb\":{\"NewImage\":{\"Message\":{\"S\":[{\"numeric\":[\">\",0]}]}}}}", false},
    /* Filter criteria: any filter passes the record */
    {"Filters: one of two", S,
     "{\"Filters\":[{\"Pattern\":\"{\\\"eventName\\\":[\\\"INSERT\\\"]}\"},"
     "{\"Pattern\":\"{\\\"eventName\\\":[\\\"MODIFY\\\"]}\"}]}",
     true},
    {"Filters: none", S,
     "{\"Filters\":[{\"Pattern\":\"{\\\"eventName\\\":[\\\"INSERT\\\"]}\"},"
     "{\"Pattern\":\"{\\\"eventName\\\":[\\\"REMOVE\\\"]}\"}]}",
     false},
};
#undef P
#undef S

static void test_filter_operators(void **state)
{
	(void)state;
	for (size_t i = 0; i < DDA_ARRAY_SIZE(cases); i++) {
		const struct filter_case *c = &cases[i];
		struct dda_filter *f = NULL;
		struct dda_error err = {0};
		json_t *rec = json_loads(c->record, 0, NULL);
		assert_non_null(rec);
		if (dda__filter_parse(&f, c->pattern, strlen(c->pattern), &err))
			fail_msg("%s: pattern rejected: %s", c->what, err.msg);
		if (dda__filter_match(f, rec) != c->match)
			fail_msg("%s: %s should %smatch", c->what, c->pattern,
				 c->match ? "" : "not ");
		dda__filter_free(f);
		json_decref(rec);
	}
}

static void test_filter_rejects(void **state)
{
	static const struct {
		const char *pattern, *why;
	} bad[] = {
	    {"{\"Name\":\"Alice\"}", "Name"},
	    {"{\"Name\":[{\"wildcard\":\"A*\"}]}", "unknown operator"},
	    {"{\"Price\":[{\"numeric\":[\"!=\",1]}]}", "operator"},
	    {"{\"Price\":[{\"numeric\":[\">\",\"1\"]}]}", "number"},
	    {"{\"Price\":[{\"numeric\":[\"=\",1,\"<\",2]}]}", "one number"},
	    {"{\"$or\":[{\"a\":[\"b\"]}]}", "$or"},
	    {"{\"a\":[]}", "empty list"},
	    {"{\"a\":[{\"exists\":\"yes\"}]}", "exists"},
	    /* anything-but only in the forms Lambda (EventBridge) documents */
	    {"{\"a\":[{\"anything-but\":{\"prefix\":[\"x\",\"y\"]}}]}", "anything-but"},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":\"\"}}]}", "anything-but"},
	    {"{\"a\":[{\"anything-but\":{\"suffix\":1}}]}", "anything-but"},
	    {"{\"a\":[{\"anything-but\":{\"wildcard\":\"x*\"}}]}", "anything-but"},
	    {"{\"a\":[{\"anything-but\":[\"x\",1]}]}", "anything-but"},
	    {"{\"a\":[{\"anything-but\":[]}]}", "anything-but"},
	    {"{\"a\":[{\"anything-but\":{\"prefix\":{\"equals-ignore-case\":\"x\"}}}]}",
	     "anything-but"},
	    {"{\"a\":[{\"prefix\":\"x\",\"suffix\":\"y\"}]}", "exactly one"},
	    {"{}", "non-empty"},
	    {"[]", "non-empty"},
	    {"{\"Filters\":[{}]}", "Pattern"},
	    {"{\"Filters\":[]}", "non-empty"},
	    {"{\"Filters\":[{\"Pattern\":\"{nope\"}]}", "Filters[0].Pattern"},
	    {"{\"dynamodb\":{\"Keys\":{\"Id\":{\"N\":[{\"bogus\":1}]}}}}", "dynamodb.Keys.Id.N"},
	    {"not json", "invalid filter"},
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++) {
		struct dda_filter *f = (struct dda_filter *)&f; /* must come back NULL */
		struct dda_error err = {0};
		assert_int_equal(
		    dda__filter_parse(&f, bad[i].pattern, strlen(bad[i].pattern), &err),
		    DDA_EINVAL);
		assert_null(f);
		if (!strstr(err.msg, bad[i].why))
			fail_msg("%s: message '%s' lacks '%s'", bad[i].pattern, err.msg,
				 bad[i].why);
	}
}

/* The record dda__synth_write writes, parsed, after checking that seq_at
 * is where its SequenceNumber is. */
static json_t *written(const struct dda_synth_opts *so, const struct dda_record *r)
{
	struct dda_buf out;
	size_t seq_at = 0;
	json_t *keys = dda__synth_keys(r);
	dda_buf_init(&out, 1 << 20);
	assert_int_equal(dda__synth_write(so, r, keys, &out, &seq_at), 0);
	assert_memory_equal(out.ptr + seq_at, "000000000000000000000", 21);
	memcpy(out.ptr + seq_at, "123456789012345678901", 21);
	json_t *rec = json_loadb(out.ptr, out.len, JSON_ALLOW_NUL, NULL);
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "dynamodb"),
							       "SequenceNumber")),
			    "123456789012345678901");
	json_decref(keys);
	dda_buf_release(&out);
	return rec;
}

/* A decoded record for the synthesizer, from a stream record's parts. */
static json_t *synth(const char *event, const char *keys, const char *new_img, const char *old_img,
		     int view)
{
	struct dda_buf key, why;
	json_t *k = json_loads(keys, 0, NULL);
	json_t *n = new_img ? json_loads(new_img, 0, NULL) : NULL;
	json_t *o = old_img ? json_loads(old_img, 0, NULL) : NULL;
	dda_buf_init(&key, 1 << 16);
	dda_buf_init(&why, 4096);
	assert_int_equal(dda_canon_key(k, NULL, 0, "Keys", &key, &why), 0);
	struct dda_record r = {.event = !strcmp(event, "INSERT")   ? DDA_EV_INSERT
					: !strcmp(event, "MODIFY") ? DDA_EV_MODIFY
								   : DDA_EV_REMOVE,
			       .time = INT64_C(1700000000) * DDA_USEC_PER_SEC,
			       .key = (const uint8_t *)key.ptr,
			       .key_len = key.len,
			       .has_new = n != NULL,
			       .has_old = o != NULL,
			       .new_image = n,
			       .old_image = o,
			       .index = 3};
	struct dda_synth_opts so = {.view = view, .table = "T", .marker = false, .event_mask = 7};
	json_t *rec = written(&so, &r);
	json_decref(k);
	json_decref(n);
	json_decref(o);
	dda_buf_release(&key);
	dda_buf_release(&why);
	assert_non_null(rec);
	return rec;
}

static json_int_t size_bytes(const json_t *rec)
{
	return json_integer_value(json_object_get(json_object_get(rec, "dynamodb"), "SizeBytes"));
}

/* The INSERT and MODIFY records of DynamoDB's stream documentation carry
 * SizeBytes 26 and 59. */
static void test_size_bytes_documented(void **state)
{
	(void)state;
	const char *keys = "{\"Id\":{\"N\":\"101\"}}";
	json_t *ins =
	    synth("INSERT", keys, "{\"Message\":{\"S\":\"New item!\"},\"Id\":{\"N\":\"101\"}}",
		  NULL, DDA_VIEW_NEW_AND_OLD);
	assert_int_equal(size_bytes(ins), 26);
	json_t *mod = synth(
	    "MODIFY", keys,
	    "{\"Message\":{\"S\":\"This item has changed\"},\"Id\":{\"N\":\"101\"}}",
	    "{\"Message\":{\"S\":\"New item!\"},\"Id\":{\"N\":\"101\"}}", DDA_VIEW_NEW_AND_OLD);
	assert_int_equal(size_bytes(mod), 59);
	const json_t *d = json_object_get(mod, "dynamodb");
	assert_string_equal(json_string_value(json_object_get(mod, "eventName")), "MODIFY");
	assert_string_equal(json_string_value(json_object_get(mod, "eventVersion")), "1.1");
	assert_string_equal(json_string_value(json_object_get(d, "StreamViewType")),
			    "NEW_AND_OLD_IMAGES");
	assert_int_equal(json_integer_value(json_object_get(d, "ApproximateCreationDateTime")),
			 1700000000);
	/* KEYS_ONLY: no images, and SizeBytes counts the keys alone. */
	json_t *ko =
	    synth("MODIFY", keys, "{\"Message\":{\"S\":\"x\"},\"Id\":{\"N\":\"101\"}}",
		  "{\"Message\":{\"S\":\"y\"},\"Id\":{\"N\":\"101\"}}", DDA_VIEW_KEYS_ONLY);
	d = json_object_get(ko, "dynamodb");
	assert_null(json_object_get(d, "NewImage"));
	assert_null(json_object_get(d, "OldImage"));
	assert_int_equal(size_bytes(ko), 5);
	json_decref(ins);
	json_decref(mod);
	json_decref(ko);
}

/* Item size rules: numbers take a byte per two significant digits plus
 * one, binary its decoded length, maps and lists 3 bytes plus 1 an element. */
static void test_item_size_rules(void **state)
{
	(void)state;
	static const struct {
		const char *map;
		uint64_t size;
	} v[] = {
	    {"{\"a\":{\"N\":\"12345\"}}", 1 + 4},
	    {"{\"a\":{\"N\":\"1000\"}}", 1 + 2},
	    {"{\"a\":{\"N\":\"-0.0012\"}}", 1 + 2},
	    {"{\"a\":{\"B\":\"AAEC\"}}", 1 + 3},
	    {"{\"a\":{\"B\":\"AAE=\"}}", 1 + 2},
	    {"{\"a\":{\"BOOL\":false}}", 1 + 1},
	    {"{\"a\":{\"NULL\":true}}", 1 + 1},
	    {"{\"a\":{\"SS\":[\"xy\",\"z\"]}}", 1 + 3},
	    {"{\"a\":{\"M\":{\"bb\":{\"S\":\"ccc\"}}}}", 1 + 3 + 1 + 2 + 3},
	    {"{\"a\":{\"L\":[{\"S\":\"x\"},{\"N\":\"1\"}]}}", 1 + 3 + 2 + 3},
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(v); i++) {
		json_t *m = json_loads(v[i].map, 0, NULL);
		assert_non_null(m);
		if (dda__item_size(m) != v[i].size)
			fail_msg("%s: %llu bytes, want %llu", v[i].map,
				 (unsigned long long)dda__item_size(m),
				 (unsigned long long)v[i].size);
		json_decref(m);
	}
}

/* The batch of test_item_failures: identifiers ending in 777 are not in it. */
static bool known_id(void *ctx, const char *id)
{
	(void)ctx;
	size_t n = strlen(id);
	return n < 3 || strcmp(id + n - 3, "777");
}

static void test_item_failures(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		int outcome;
		const char *first;
	} v[] = {
	    {"", DDA_SEND_OK, NULL},
	    {"null", DDA_SEND_OK, NULL},
	    {"{\"batchItemFailures\":[]}", DDA_SEND_OK, NULL},
	    {"{\"statusCode\":200}", DDA_SEND_OK, NULL},
	    {" \r\n\t", DDA_SEND_OK, NULL},
	    {"{\"batchItemFailures\":null}", DDA_SEND_OK, NULL},
	    /* issue 10: a 2xx answer that is not JSON is a failure, as Lambda
	     * treats "an invalid JSON response" */
	    {"not json at all", DDA_SEND_FAILED, NULL},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"1", DDA_SEND_FAILED, NULL},
	    {"{\"batchItemFailures\":\"100000000000000000004\"}", DDA_SEND_FAILED, NULL},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"100000000000000000009\"},"
	     "{\"itemIdentifier\":\"100000000000000000004\"}]}",
	     DDA_SEND_PARTIAL, "100000000000000000004"},
	    /* a shorter decimal string is a smaller number */
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"100000000000000000010\"},"
	     "{\"itemIdentifier\":\"99\"}]}",
	     DDA_SEND_PARTIAL, "99"},
	    /* Lambda: a missing or empty itemIdentifier fails the whole batch */
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}", DDA_SEND_FAILED, NULL},
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":null}]}", DDA_SEND_FAILED, NULL},
	    {"{\"batchItemFailures\":[{}]}", DDA_SEND_FAILED, NULL},
	    /* an identifier that is not a record of the batch, even after a
	     * good one, fails the whole batch */
	    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"100000000000000000004\"},"
	     "{\"itemIdentifier\":\"100000000000000000777\"}]}",
	     DDA_SEND_FAILED, NULL},
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(v); i++) {
		struct dda_send_result r = {0};
		dda__parse_item_failures(v[i].body, strlen(v[i].body), known_id, NULL, &r);
		if (r.outcome != v[i].outcome)
			fail_msg("'%s': outcome %d, want %d", v[i].body, r.outcome, v[i].outcome);
		if (v[i].first)
			assert_string_equal(r.first_failed, v[i].first);
		if (r.outcome == DDA_SEND_FAILED && (!r.msg[0] || r.fault != DDA_FAULT_FUNCTION))
			fail_msg("'%s': a failure without a message or a function fault", v[i].body);
	}
}

/* issue 10: a partial-failure answer padded past the cap cannot be read
 * whole, so it fails the batch instead of acknowledging every record. */
static void test_item_failures_over_the_cap(void **state)
{
	(void)state;
	static const char head[] =
	    "{\"batchItemFailures\":[{\"itemIdentifier\":\"100000000000000000004\"}],\"pad\":\"";
	size_t n = DDA_TARGET_ANSWER_KEEP;
	char *body = malloc(n + 1);
	assert_non_null(body);
	memset(body, 'x', n);
	memcpy(body, head, sizeof(head) - 1);
	body[n] = '\0';
	struct dda_send_result r = {0};
	dda__parse_item_failures(body, n, known_id, NULL, &r);
	assert_int_equal(r.outcome, DDA_SEND_FAILED);
	assert_int_equal(r.fault, DDA_FAULT_FUNCTION);
	assert_non_null(strstr(r.msg, "over"));
	/* At the cap exactly it is read (and here, not JSON: still failed). */
	memset(&r, 0, sizeof(r));
	dda__parse_item_failures(body, DDA_TARGET_MAX_ANSWER, known_id, NULL, &r);
	assert_int_equal(r.outcome, DDA_SEND_FAILED);
	assert_non_null(strstr(r.msg, "not JSON"));
	free(body);
}

/* The fast writer gives json_dumps's bytes, escapes included. */
static void test_json_write_matches_jansson(void **state)
{
	(void)state;
	static const char *const docs[] = {
	    "{}",
	    "[]",
	    "{\"a\":[1,-2,true,false,null,\"x\"],\"b\":{\"c\":{}}}",
	    "{\"q\":\"quote \\\" back \\\\ slash / nl \\n cr \\r tab \\t bs \\b ff \\f\"}",
	    "{\"ctl\":\"\\u0001\\u001f\\u007f\",\"utf8\":\"Jos\u00e9 \u7528\u6237 \\ud83d\\ude00\"}",
	    "{\"zeta\":1,\"alpha\":2,\"mid\":{\"S\":\"\"}}",
	    "{\"big\":9223372036854775807,\"neg\":-9223372036854775807,\"real\":1.5}",
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(docs); i++) {
		json_error_t je;
		json_t *v = json_loads(docs[i], JSON_DECODE_ANY, &je);
		if (!v)
			fail_msg("doc %zu: %s", i, je.text);
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		struct dda_buf got;
		dda_buf_init(&got, 1 << 20);
		assert_int_equal(dda__json_write(&got, v, 0), 0);
		assert_non_null(got.ptr);
		assert_string_equal(got.ptr, want);
		free(want);
		dda_buf_release(&got);
		json_decref(v);
	}
	/* A record over the limit is refused, not truncated. */
	json_t *s = json_pack("{ss}", "S", "0123456789");
	struct dda_buf small;
	dda_buf_init(&small, 8);
	assert_int_equal(dda__json_write(&small, s, 0), DDA_ETOOBIG);
	dda_buf_release(&small);
	json_decref(s);
}

/* Seed records decoded on the fast path (images as raw text, sizes from
 * the canonical form) and on the tree path give the same stream record. */
struct synth_got {
	struct dda_synth_opts so;
	json_t *recs[8];
	int n;
	int raw; /* records that carried raw images */
};

static int synth_on_record(void *ctx, const struct dda_record *r)
{
	struct synth_got *g = ctx;
	g->raw += r->new_raw || r->old_raw;
	if (g->n < 8)
		g->recs[g->n++] = written(&g->so, r);
	return 0;
}

static int synth_on_anomaly(void *ctx, struct dda_anomaly *a)
{
	(void)ctx;
	fail_msg("unexpected anomaly: %s", a->detail);
	return 0;
}

/* Decodes NDJSON text as one object named key, handing records to sink. */
static void decode_into(const char *text, bool raw, const char *key,
			const struct dda_decode_sink *sink)
{
	struct dda_objtab *t = dda_objtab_new();
	struct dda_object o = {.key = key, .size = -1, .last_modified = DDA_TIME_NONE};
	if (strstr(key, ".json") != key + strlen(key) - 5) { /* a versioned object */
		o.etag = "e\"tag";
		o.version = "v1";
		o.size = 10;
	}
	int64_t id = dda_objtab_add(t, &o);
	struct dda_decoder_opts opts;
	dda_decoder_opts_default(&opts);
	opts.raw_images = raw;
	opts.need_images = !raw;
	struct dda_decoder *d = dda_decoder_new(&opts, t);
	struct dda_chunk c;
	dda_chunk_init(&c);
	c.obj = (uint32_t)id;
	c.kind = DDA_CHUNK_LINES;
	c.first_line = 1;
	c.last = true;
	dda_buf_init(&c.data, DDA_BUF_UNLIMITED);
	assert_int_equal(dda_buf_adds(&c.data, text), 0);
	struct dda_decode_counts counts = {0};
	assert_int_equal(dda_decode_chunk(d, &c, sink, &counts), 0);
	dda_chunk_release(&c);
	dda_decoder_free(d);
	dda_objtab_free(t);
}

static void synth_decode(const char *text, bool raw, struct synth_got *g)
{
	const struct dda_decode_sink sink = {g, synth_on_record, synth_on_anomaly};
	decode_into(text, raw, "audit-logs/2025/07/12/11/José-a.json", &sink);
}

static void test_raw_and_tree_records_agree(void **state)
{
	(void)state;
	const char *text =
	    "{\"timestamp\": \"2025-07-12T11:00:00.000001\", \"eventName\": \"INSERT\", "
	    "\"userId\": \"Jos\\u00e9\", \"activityId\": \"a\", \"awsRegion\": \"eu-west-1\", "
	    "\"eventSource\": \"aws:dynamodb\", \"newImage\": {\"UserId\": {\"S\": \"Jos\\u00e9\"}, "
	    "\"ActivityId\": {\"S\": \"a\"}, \"Q\": {\"S\": \"say \\\"hi\\\"\\n\"}, "
	    "\"Amount\": {\"N\": \"1.50\"}, \"Zero\": {\"N\": \"0\"}, \"Big\": {\"N\": \"1000\"}, "
	    "\"Bin\": {\"B\": \"AAEC\"}, \"Set\": {\"NS\": [\"1\", \"22.5\"]}, "
	    "\"Bs\": {\"BS\": [\"AA==\"]}, \"Ss\": {\"SS\": [\"x\", \"y\"]}, "
	    "\"M\": {\"M\": {\"l\": {\"L\": [{\"NULL\": true}, {\"BOOL\": false}, "
	    "{\"S\": \"\"}]}}}}}\n"
	    "{\"timestamp\": \"2025-07-12T11:00:01.000001\", \"eventName\": \"MODIFY\", "
	    "\"userId\": \"Jos\\u00e9\", \"activityId\": \"a\", \"awsRegion\": \"eu-west-1\", "
	    "\"eventSource\": \"aws:dynamodb\", \"oldImage\": {\"UserId\": {\"S\": \"Jos\\u00e9\"}, "
	    "\"ActivityId\": {\"S\": \"a\"}}, \"newImage\": {\"ActivityId\": {\"S\": \"a\"}, "
	    "\"UserId\": {\"S\": \"Jos\\u00e9\"}, \"N\": {\"N\": \"-0.0012\"}}}\n";
	struct synth_got raw = {.so = {.view = DDA_VIEW_NEW_AND_OLD, .marker = true, .event_mask = 7}};
	struct synth_got tree = raw;
	synth_decode(text, true, &raw);
	synth_decode(text, false, &tree);
	assert_int_equal(raw.n, 2);
	assert_int_equal(tree.n, 2);
	assert_int_equal(raw.raw, 2); /* the fast path took both */
	assert_int_equal(tree.raw, 0);
	for (int i = 0; i < 2; i++) {
		assert_non_null(raw.recs[i]);
		if (!json_equal(raw.recs[i], tree.recs[i])) {
			char *a = json_dumps(raw.recs[i], JSON_COMPACT);
			char *b = json_dumps(tree.recs[i], JSON_COMPACT);
			fail_msg("record %d differs:\nraw  %s\ntree %s", i, a, b);
		}
		json_decref(raw.recs[i]);
		json_decref(tree.recs[i]);
	}
}

/* The fast path gives an image's text compact, as dda__json_compact makes
 * it, with the whitespace between its tokens noted as it scans: spaces,
 * tabs and carriage returns around every kind of token, none inside
 * strings taken out; text already compact as it is; and an image with more
 * runs of whitespace than are noted, as it is in the input. */
struct compact_got {
	int n;
	char *text[4];
	bool compact[4];
};

static int compact_on_record(void *ctx, const struct dda_record *r)
{
	struct compact_got *g = ctx;
	assert_true(g->n < 4);
	assert_non_null(r->new_raw);
	g->text[g->n] = strndup(r->new_raw, r->new_raw_len);
	g->compact[g->n++] = r->new_raw_compact;
	return 0;
}

static void test_raw_images_compact(void **state)
{
	(void)state;
	struct dda_buf many, text;
	dda_buf_init(&many, DDA_BUF_UNLIMITED);
	dda_buf_init(&text, DDA_BUF_UNLIMITED);
	assert_int_equal(dda_buf_adds(&many, "{\"UserId\": {\"S\": \"u\"}, "
					     "\"ActivityId\": {\"S\": \"a\"}"),
			 0);
	for (int i = 0; i < 300; i++)
		assert_int_equal(dda_buf_addf(&many, ", \"A%d\": {\"N\": \"%d\"}", i, i), 0);
	assert_int_equal(dda_buf_adds(&many, "}"), 0);
	const char *images[4] = {
	    "{\"UserId\": {\"S\": \"u\"},\t\"ActivityId\" :{ \"S\":\"a\" } ,"
	    "\"Q\": {\"S\": \" say \\\"hi\\\" \\\\ \"}}",
	    "{\"UserId\":{\"S\":\"u\"},\"ActivityId\":{\"S\":\"a\"}}",
	    "{ \"UserId\" : { \"S\" : \"u\" } ,\r\"ActivityId\" : { \"S\" : \"a\" } , "
	    "\"L\" : { \"L\" : [ { \"N\" : \"1\" } , { \"BOOL\" : true } , "
	    "{ \"NULL\" : true } , { \"SS\" : [ \"x y\" , \"\\t\" ] } ] } , "
	    "\"M\" : { \"M\" : { } } , \"E\" : { \"L\" : [ ] } }",
	    many.ptr};
	for (int i = 0; i < 4; i++)
		assert_int_equal(dda_buf_addf(&text,
					      "{\"timestamp\": \"2025-07-12T11:00:0%d.000001\", "
					      "\"eventName\": \"%s\", \"userId\": \"u\", "
					      "\"activityId\": \"a\", \"newImage\": %s}\n",
					      i, "INSERT", images[i]),
				 0);
	struct compact_got g = {0};
	const struct dda_decode_sink sink = {&g, compact_on_record, synth_on_anomaly};
	decode_into(text.ptr, true, "audit-logs/2025/07/12/11/u-a.json", &sink);
	assert_int_equal(g.n, 4);
	for (int i = 0; i < 4; i++) {
		struct dda_buf want;
		dda_buf_init(&want, DDA_BUF_UNLIMITED);
		if (i < 3)
			assert_int_equal(dda__json_compact(&want, images[i], strlen(images[i])), 0);
		else
			assert_int_equal(dda_buf_adds(&want, images[i]), 0);
		assert_int_equal(g.compact[i], i < 3);
		assert_string_equal(g.text[i], want.ptr);
		dda_buf_release(&want);
		free(g.text[i]);
	}
	dda_buf_release(&many);
	dda_buf_release(&text);
}

/* The length a record is planned with (dda__synth_len) is the length it is
 * written with, for every view, with and without the marker, for stream
 * records with their own eventID, without a time, TTL deletes, and names
 * and regions that need escaping. */
struct len_check {
	int n;
};

static int len_on_record(void *ctx, const struct dda_record *r)
{
	struct len_check *lc = ctx;
	/* The last is longer than the eventSourceARN cache keeps. */
	static const char *const regions[] = {
	    NULL, "eu-\"west\"\n-1",
	    "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"
	    "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"};
	for (int view = DDA_VIEW_KEYS_ONLY; view <= DDA_VIEW_NEW_AND_OLD; view++) {
		for (int m = 0; m < 6; m++) {
			struct dda_synth_opts so = {.view = view, .marker = m & 1,
						    .region = regions[m >> 1], .table = "T\tx",
						    .event_mask = 15};
			snprintf(so.run_id, sizeof(so.run_id), "%s",
				 "00000000-0000-4000-8000-00000000000\"");
			struct dda_buf in_buf, out;
			struct dda_synth_in in;
			size_t used, len = 0, seq_at = 0, seq_written = 0;
			json_t *keys = dda__synth_keys(r);
			uint64_t part_tree = 1, part_own = 2;
			so.hash_key = m & 2 ? NULL : m & 1 ? "UserId" : "Id";
			dda_buf_init(&in_buf, 1 << 20);
			dda_buf_init(&out, 1 << 20);
			assert_int_equal(dda__synth_in_write(&so, r, keys, &in_buf, &part_tree), 0);
			/* Keys rendered without a tree (straight from the canonical
			 * key, for a record without image trees): the same bytes and
			 * the same lane. */
			struct dda_buf own;
			dda_buf_init(&own, 1 << 20);
			assert_int_equal(dda__synth_in_write(&so, r, NULL, &own, &part_own), 0);
			assert_int_equal(own.len, in_buf.len);
			assert_memory_equal(own.ptr, in_buf.ptr, own.len);
			assert_int_equal(part_own, part_tree);
			dda_buf_release(&own);
			assert_int_equal(dda__synth_in_read(&in, in_buf.ptr, in_buf.len, &used), 0);
			assert_int_equal(used, in_buf.len);
			assert_int_equal(dda__synth_len(&so, r->object, r->index, &in, &len, &seq_at), 0);
			assert_int_equal(dda__synth_emit(&so, r->object, r->obj, r->index, &in, NULL,
							 &out, &seq_written),
					 0);
			assert_int_equal(len, out.len);
			assert_int_equal(seq_at, seq_written);
			/* The same bytes as the record written in one go. */
			struct dda_buf whole;
			size_t at2 = 0;
			dda_buf_init(&whole, 1 << 20);
			assert_int_equal(dda__synth_write(&so, r, keys, &whole, &at2), 0);
			assert_int_equal(whole.len, out.len);
			assert_memory_equal(whole.ptr, out.ptr, out.len);
			dda_buf_release(&whole);
			dda_buf_release(&in_buf);
			dda_buf_release(&out);
			json_decref(keys);
		}
	}
	lc->n++;
	return 0;
}

static void len_decode(const char *text, bool raw, const char *key, struct len_check *lc)
{
	const struct dda_decode_sink sink = {lc, len_on_record, synth_on_anomaly};
	decode_into(text, raw, key, &sink);
}

static void test_planned_length_is_written_length(void **state)
{
	(void)state;
	const char *seed =
	    "{\"timestamp\": \"2025-07-12T11:00:00.000001\", \"eventName\": \"MODIFY\", "
	    "\"userId\": \"Jos\\u00e9\", \"activityId\": \"a\", \"awsRegion\": \"eu-west-1\", "
	    "\"oldImage\": {\"UserId\": {\"S\": \"Jos\\u00e9\"}, \"ActivityId\": {\"S\": \"a\"}}, "
	    "\"newImage\": {\"UserId\": {\"S\": \"Jos\\u00e9\"}, \"ActivityId\": {\"S\": \"a\"}, "
	    "\"Q\": {\"S\": \"say \\\"hi\\\"\\n\\u0001\"}, \"N\": {\"N\": \"1.50\"}}}\n";
	const char *stream =
	    "{\"eventID\":\"own-id-\\\"7\\\"\",\"eventName\":\"REMOVE\",\"awsRegion\":\"ap\\tx\","
	    "\"userIdentity\":{\"type\":\"Service\",\"principalId\":\"dynamodb.amazonaws.com\"},"
	    "\"dynamodb\":{\"Keys\":{\"UserId\":{\"S\":\"u\"},\"ActivityId\":{\"S\":\"a\"}},"
	    "\"OldImage\":{\"UserId\":{\"S\":\"u\"},\"ActivityId\":{\"S\":\"a\"},"
	    "\"L\":{\"L\":[{\"N\":\"1e3\"},{\"B\":\"AA==\"}]}},\"SequenceNumber\":\"100\","
	    "\"StreamViewType\":\"OLD_IMAGE\"}}\n";
	struct len_check lc = {0};
	len_decode(seed, true, "audit-logs/2025/07/12/11/Jos\u00e9-a.json", &lc);
	len_decode(seed, false, "audit-logs/2025/07/12/11/Jos\u00e9-a.json.gz", &lc);
	len_decode(stream, false, "a\\b\x01.json", &lc);
	assert_int_equal(lc.n, 3);
}

/* Keys rendered straight from a canonical key are the bytes (and the lane
 * hash, and the item size) the jansson tree gives, for every key type,
 * names and values to escape, a partition key present or not. */
static void test_keys_without_tree(void **state)
{
	(void)state;
	static const char *const keys[] = {
	    "{\"UserId\":{\"S\":\"Jos\\u00e9 \\\"q\\\"\\n\\u0001\"},\"ActivityId\":{\"S\":\"a\"}}",
	    "{\"Id\":{\"N\":\"-01.50e1\"},\"Bin\":{\"B\":\"AAE=\"}}",
	    "{\"b\\tc\":{\"B\":\"AA==\"},\"Z\":{\"N\":\"12345678901234567890\"}}",
	    "{\"UserId\":{\"N\":\"0.000\"}}",
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(keys); i++) {
		json_t *k = json_loads(keys[i], 0, NULL);
		assert_non_null(k);
		struct dda_buf canon, tree, own;
		dda_buf_init(&canon, DDA_BUF_UNLIMITED);
		dda_buf_init(&tree, DDA_BUF_UNLIMITED);
		dda_buf_init(&own, DDA_BUF_UNLIMITED);
		assert_int_equal(dda_canon_key(k, NULL, 0, "Keys", &canon, NULL), 0);
		struct dda_record r = {.event = DDA_EV_INSERT, .time = DDA_TIME_NONE,
				       .key = (const uint8_t *)canon.ptr, .key_len = canon.len};
		for (int hk = 0; hk < 3; hk++) {
			struct dda_synth_opts so = {.view = DDA_VIEW_KEYS_ONLY,
						    .hash_key = hk == 0 ? NULL : hk == 1 ? "UserId" : "Id"};
			uint64_t p1 = 1, p2 = 2;
			json_t *t = dda__synth_keys(&r);
			assert_non_null(t);
			dda_buf_reset(&tree);
			dda_buf_reset(&own);
			assert_int_equal(dda__synth_in_write(&so, &r, t, &tree, &p1), 0);
			assert_int_equal(dda__synth_in_write(&so, &r, NULL, &own, &p2), 0);
			assert_int_equal(own.len, tree.len);
			assert_memory_equal(own.ptr, tree.ptr, own.len);
			assert_int_equal(p1, p2);
			json_decref(t);
		}
		dda_buf_release(&canon);
		dda_buf_release(&tree);
		dda_buf_release(&own);
		json_decref(k);
	}
}

/* Whitespace removal against a byte-at-a-time reference, on random JSON
 * with whitespace everywhere it may be and strings holding escapes, quotes
 * and long runs (the word-at-a-time paths and their edges). */
static void put(struct dda_buf *b, const char *t)
{
	assert_int_equal(dda_buf_adds(b, t), 0);
}

static void putch(struct dda_buf *b, char c)
{
	assert_int_equal(dda_buf_addc(b, c), 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

static void gen_ws(struct dda_buf *b)
{
	static const char ws[] = " \t\n\r";
	for (unsigned k = rnd(4) == 0 ? rnd(12) : 0; k > 0; k--)
		putch(b, ws[rnd(4)]);
}

static void gen_string(struct dda_buf *b)
{
	static const char *const parts[] = {"a", "\\\"", "\\\\", "\\n", "\\u00e9", "xyzw", " ",
					    "0123456789abcdef", ":", "{", "\xc3\xa9"};
	putch(b, '"');
	for (unsigned k = rnd(10); k > 0; k--)
		put(b, parts[rnd(DDA_ARRAY_SIZE(parts))]);
	putch(b, '"');
}

static void gen_value(struct dda_buf *b, int depth)
{
	unsigned kind = depth > 3 ? rnd(3) : rnd(5);
	gen_ws(b);
	if (kind == 0)
		gen_string(b);
	else if (kind == 1)
		put(b, rnd(2) ? "12345678.5e-3" : "true");
	else if (kind == 2)
		put(b, "null");
	else {
		bool obj = kind == 3;
		putch(b, obj ? '{' : '[');
		for (unsigned k = rnd(5), i = 0; i < k; i++) {
			if (i)
				putch(b, ',');
			if (obj) {
				gen_ws(b);
				gen_string(b);
				gen_ws(b);
				putch(b, ':');
			}
			gen_value(b, depth + 1);
		}
		gen_ws(b);
		putch(b, obj ? '}' : ']');
	}
	gen_ws(b);
}

static void compact_reference(struct dda_buf *out, const char *p, size_t n)
{
	bool in = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (in) {
			putch(out, c);
			if (c == '\\')
				putch(out, p[++i]);
			else if (c == '"')
				in = false;
		} else if (c == '"') {
			in = true;
			putch(out, c);
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			putch(out, c);
		}
	}
}

static void test_json_compact(void **state)
{
	(void)state;
	struct dda_buf in, want, got;
	dda_buf_init(&in, DDA_BUF_UNLIMITED);
	dda_buf_init(&want, DDA_BUF_UNLIMITED);
	dda_buf_init(&got, DDA_BUF_UNLIMITED);
	for (int i = 0; i < 3000; i++) {
		dda_buf_reset(&in);
		dda_buf_reset(&want);
		dda_buf_reset(&got);
		gen_value(&in, 0);
		json_error_t jerr;
		json_t *v = json_loadb(in.ptr, in.len, JSON_DECODE_ANY, &jerr);
		assert_non_null(v); /* the generator writes valid JSON */
		json_decref(v);
		compact_reference(&want, in.ptr, in.len);
		put(&got, "pre"); /* appended after what is there */
		assert_int_equal(dda__json_compact(&got, in.ptr, in.len), 0);
		assert_int_equal(got.len, want.len + 3);
		assert_memory_equal(got.ptr + 3, want.ptr, want.len);
	}
	dda_buf_release(&in);
	dda_buf_release(&want);
	dda_buf_release(&got);
}

/* SequenceNumbers: "1" then 20 digits, for every 64-bit rank. */
static void test_seq_format(void **state)
{
	(void)state;
	char out[DDA_SEQ_DIGITS + 1];
	dda__seq_format(0, out);
	assert_string_equal(out, "100000000000000000000");
	dda__seq_format(42, out);
	assert_string_equal(out, "100000000000000000042");
	dda__seq_format(UINT64_MAX, out);
	assert_string_equal(out, "118446744073709551615");
}

/* The synthesis input of an INSERT of item {"UserId":"u"} without a time,
 * under so (in points into in_buf). */
static void keys_only_input(const struct dda_synth_opts *so, struct dda_buf *canon,
			    struct dda_buf *in_buf, struct dda_synth_in *in)
{
	size_t used;
	json_t *k = json_loads("{\"UserId\":{\"S\":\"u\"}}", 0, NULL);
	assert_int_equal(dda_canon_key(k, NULL, 0, "Keys", canon, NULL), 0);
	json_decref(k);
	struct dda_record r = {.event = DDA_EV_INSERT, .time = DDA_TIME_NONE,
			       .key = (const uint8_t *)canon->ptr, .key_len = canon->len};
	assert_int_equal(dda__synth_in_write(so, &r, NULL, in_buf, NULL), 0);
	assert_int_equal(dda__synth_in_read(in, in_buf->ptr, in_buf->len, &used), 0);
}

/* The marker's head is cached per object: names longer than the cache
 * holds, names that are not UTF-8, and objects alternating between records
 * give what the uncached writer gives, and the length planned. */
static void test_marker_cache(void **state)
{
	(void)state;
	static char long_key[3000];
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	const struct dda_object objs[] = {
	    {.key = "a/b.json", .size = -1},
	    {.key = long_key, .version = "v\"1", .etag = "e", .size = 3},
	    {.key = "bad\xff.json", .size = -1},
	    {.key = "a/b.json", .version = "v2", .size = -1},
	};
	struct dda_buf canon, in_buf, out;
	dda_buf_init(&canon, DDA_BUF_UNLIMITED);
	dda_buf_init(&in_buf, DDA_BUF_UNLIMITED);
	dda_buf_init(&out, DDA_BUF_UNLIMITED);
	struct dda_synth_opts so = {.view = DDA_VIEW_KEYS_ONLY, .marker = true};
	snprintf(so.run_id, sizeof(so.run_id), "%s", "00000000-0000-4000-8000-000000000001");
	struct dda_synth_in in;
	keys_only_input(&so, &canon, &in_buf, &in);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < DDA_ARRAY_SIZE(objs); i++) {
			size_t len = 0, seq_at = 0, seq_w = 0;
			int rc = dda__synth_len(&so, &objs[i], 42, &in, &len, &seq_at);
			dda_buf_reset(&out);
			int rc2 = dda__synth_emit(&so, &objs[i], (uint32_t)i, 42, &in, NULL, &out, &seq_w);
			assert_int_equal(rc, rc2);
			if (i == 2) { /* not UTF-8: no record, as jansson would refuse it */
				assert_int_not_equal(rc, 0);
				continue;
			}
			assert_int_equal(rc, 0);
			assert_int_equal(len, out.len);
			json_t *rec = json_loadb(out.ptr, out.len, 0, NULL);
			assert_non_null(rec);
			json_t *m = json_object_get(rec, "replay");
			assert_string_equal(json_string_value(json_object_get(
						json_object_get(m, "object"), "key")),
					    objs[i].key);
			assert_int_equal(json_integer_value(json_object_get(m, "index")), 42);
			const char *v = json_string_value(
			    json_object_get(json_object_get(m, "object"), "versionId"));
			if (objs[i].version)
				assert_string_equal(v, objs[i].version);
			else
				assert_null(v);
			json_decref(rec);
		}
	dda_buf_release(&canon);
	dda_buf_release(&in_buf);
	dda_buf_release(&out);
}

/* The eventID is the first 16 bytes of SHA-256("KEY\0VERSION\0INDEX"), or
 * of "#OBJ\0INDEX" without an object, in hex, whatever records came before
 * it through the same hasher (which keeps an object's part between them). */
static void expected_event_id(const struct dda_object *ob, uint32_t obj, uint32_t index,
			      char out[DDA_EVENT_ID_LEN + 1])
{
	char msg[256];
	int n = ob ? snprintf(msg, sizeof(msg), "%s%c%s%c%u", ob->key, 0,
			      ob->version ? ob->version : "", 0, index)
		   : snprintf(msg, sizeof(msg), "#%u%c%u", obj, 0, index);
	uint8_t d[DDA_SHA256_LEN];
	dda__sha256(msg, (size_t)n, d);
	dda__hex(d, DDA_EVENT_ID_LEN / 2, out);
}

static void test_event_id_across_objects(void **state)
{
	(void)state;
	const struct dda_object objs[] = {
	    {.key = "2025/07/12/00/a.json", .size = -1},
	    {.key = "2025/07/12/00/a.json", .version = "v2", .size = -1},
	    {.key = "b.json", .size = -1},
	};
	/* Object, position: objects alternate, and come back. */
	const struct {
		int ob; /* -1: no object */
		uint32_t obj, index;
	} seq[] = {{0, 0, 0}, {0, 0, 1}, {1, 1, 0}, {0, 0, 7}, {2, 2, 3}, {-1, 5, 9},
		   {-1, 6, 9}, {2, 2, 4}, {0, 0, 123456}};
	struct dda_buf canon, in_buf, out;
	dda_buf_init(&canon, DDA_BUF_UNLIMITED);
	dda_buf_init(&in_buf, DDA_BUF_UNLIMITED);
	dda_buf_init(&out, DDA_BUF_UNLIMITED);
	struct dda_synth_opts so = {.view = DDA_VIEW_KEYS_ONLY};
	struct dda_synth_in in;
	size_t seq_at;
	keys_only_input(&so, &canon, &in_buf, &in);
	struct dda__eid_hash h = {0};
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < DDA_ARRAY_SIZE(seq); i++) {
			const struct dda_object *ob = seq[i].ob < 0 ? NULL : &objs[seq[i].ob];
			char want[DDA_EVENT_ID_LEN + 1];
			expected_event_id(ob, seq[i].obj, seq[i].index, want);
			dda_buf_reset(&out);
			/* Through the shared hasher, and without one. */
			for (int shared = 0; shared < 2; shared++) {
				dda_buf_reset(&out);
				assert_int_equal(dda__synth_emit(&so, ob, seq[i].obj, seq[i].index,
								 &in, shared ? &h : NULL, &out,
								 &seq_at),
						 0);
				json_t *rec = json_loadb(out.ptr, out.len, 0, NULL);
				assert_non_null(rec);
				assert_string_equal(
				    json_string_value(json_object_get(rec, "eventID")), want);
				json_decref(rec);
			}
		}
	dda__eid_hash_release(&h);
	dda_buf_release(&canon);
	dda_buf_release(&in_buf);
	dda_buf_release(&out);
}

/* Retry-After: seconds or an HTTP date, relative to now; junk is -1. */
static void test_retry_after(void **state)
{
	(void)state;
	/* Wed, 21 Oct 2015 07:28:00 GMT */
	int64_t at = INT64_C(1445412480) * DDA_USEC_PER_SEC;
	assert_int_equal(dda__retry_after_parse("5", 1, at), 5 * DDA_USEC_PER_SEC);
	assert_int_equal(dda__retry_after_parse("0", 1, at), 0);
	assert_int_equal(dda__retry_after_parse("-3", 2, at), -1);
	assert_int_equal(dda__retry_after_parse("soon", 4, at), -1);
	assert_int_equal(dda__retry_after_parse("", 0, at), -1);
	const char *date = "Wed, 21 Oct 2015 07:28:00 GMT";
	assert_int_equal(dda__retry_after_parse(date, strlen(date), at - 3 * DDA_USEC_PER_SEC),
			 3 * DDA_USEC_PER_SEC);
	assert_int_equal(dda__retry_after_parse(date, strlen(date), at + DDA_USEC_PER_SEC), 0);
	/* a day at most: a broken header cannot park a lane for a year */
	assert_int_equal(dda__retry_after_parse("99999999", 8, at), 86400 * DDA_USEC_PER_SEC);
	int64_t got = -2;
	const char line[] = "Retry-After: 2\r\n";
	dda__header_retry_after(line, sizeof(line) - 1, &got);
	assert_int_equal(got, 2 * DDA_USEC_PER_SEC);
}

/* The documented rule for HTTP answers. */
static void test_http_fault(void **state)
{
	(void)state;
	static const struct {
		long status;
		int fault;
	} v[] = {
	    {400, DDA_FAULT_FUNCTION},	{401, DDA_FAULT_CONFIG},    {403, DDA_FAULT_CONFIG},
	    {404, DDA_FAULT_CONFIG},	{405, DDA_FAULT_CONFIG},    {408, DDA_FAULT_TRANSPORT},
	    {409, DDA_FAULT_FUNCTION},	{410, DDA_FAULT_CONFIG},    {413, DDA_FAULT_CONFIG},
	    {422, DDA_FAULT_FUNCTION},	{429, DDA_FAULT_THROTTLE},  {500, DDA_FAULT_FUNCTION},
	    {501, DDA_FAULT_CONFIG},	{502, DDA_FAULT_TRANSPORT}, {503, DDA_FAULT_THROTTLE},
	    {504, DDA_FAULT_TRANSPORT},
	};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(v); i++) {
		struct dda_send_result r = {0};
		dda__http_fault(v[i].status, &r);
		if (r.fault != v[i].fault)
			fail_msg("HTTP %ld: fault %d, want %d", v[i].status, r.fault, v[i].fault);
	}
}

static void test_target_timeout(void **state)
{
	(void)state;
	struct dda_target_opts o = {.spec = "lambda:fn"};
	assert_int_equal(dda__target_timeout_ms(&o), 900000);
	o.spec = "http://127.0.0.1:1/";
	assert_int_equal(dda__target_timeout_ms(&o), 60000);
	o.timeout_ms = 5000;
	assert_int_equal(dda__target_timeout_ms(&o), 5000);
}

static void test_output_check(void **state)
{
	(void)state;
	char dir[] = "/tmp/ddbaudit-test-XXXXXX", path[256];
	struct dda_error err = {0};
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/new.json", dir);
	assert_int_equal(dda__output_check("report", path, &err), 0);
	assert_int_equal(dda__output_check("report", dir, &err), DDA_EIO);
	/* an error keeps its first message: each check gets a fresh one */
	assert_non_null(strstr(err.msg, "directory"));
	snprintf(path, sizeof(path), "%s/missing/new.json", dir);
	err = (struct dda_error){0};
	assert_int_equal(dda__output_check("checkpoint", path, &err), DDA_EIO);
	assert_non_null(strstr(err.msg, "checkpoint"));
	rmdir(dir);
}

/* A checkpoint refused for other arguments names the one that differs;
 * one of another format version says so. */
#define RUN_ID "0b6a8c2e-1f3d-4e5a-9b7c-2d4e6f8a0b1c"

/* Writes text as the checkpoint at path. */
static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* A shard's checkpoint resumed by another shard, by an unsharded run, or
 * an unsharded one by a shard: refused, naming both; a "--shard" that is
 * not a string reads as no shard, never as a match. */
static void test_checkpoint_of_another_shard(void **state)
{
	(void)state;
	char dir[] = "/tmp/ddbaudit-test-XXXXXX", path[256];
	struct dda_error err = {0};
	struct dda_plan p;
	struct dda_replay_opts o;
	size_t pos[1] = {0};
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ck.json", dir);
	memset(&p, 0, sizeof(p));
	memset(&o, 0, sizeof(o));
	p.lanes = 1;
	snprintf(p.synth.run_id, sizeof(p.synth.run_id), "%s", RUN_ID);
	json_t *one = json_pack("{ssss}", "SOURCE", "s3://b/p/", "--shard", "1/3");
	json_t *two = json_pack("{ssss}", "SOURCE", "s3://b/p/", "--shard", "2/3");
	json_t *none = json_pack("{ss}", "SOURCE", "s3://b/p/");
	json_t *odd = json_pack("{sssi}", "SOURCE", "s3://b/p/", "--shard", 1);
	o.arguments = one;
	assert_int_equal(dda__checkpoint_save(path, &p, &o, pos, NULL, 0, &err), 0);
	assert_int_equal(dda__checkpoint_check_args(path, one, &err), 0);
	assert_int_equal(dda__checkpoint_check_args(path, two, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "written by shard 1/3 and this run is shard 2/3"));
	err = (struct dda_error){0};
	assert_int_equal(dda__checkpoint_check_args(path, none, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "written by shard 1/3 and this run has no --shard"));
	err = (struct dda_error){0};
	assert_int_equal(dda__checkpoint_check_args(path, odd, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "this run has no --shard"));
	o.arguments = none;
	assert_int_equal(dda__checkpoint_save(path, &p, &o, pos, NULL, 0, &err), 0);
	err = (struct dda_error){0};
	assert_int_equal(dda__checkpoint_check_args(path, two, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "written without --shard and this run is shard 2/3"));
	json_decref(one);
	json_decref(two);
	json_decref(none);
	json_decref(odd);
	unlink(path);
	rmdir(dir);
}

/* issue 10: every field a resume reads is checked; a lane position of
 * 1e300 or "x" used to be read as 0, resending what was acknowledged. */
static void test_checkpoint_fields_are_strict(void **state)
{
	(void)state;
	char dir[] = "/tmp/ddbaudit-test-XXXXXX", path[256], text[1024];
	static const char *const bad[][2] = {
	    {"\"lanes\":[1e300,0]", "lane 0 is 1"},
	    {"\"lanes\":[\"x\",0]", "lane 0 is 'x'"},
	    {"\"lanes\":[0,-1]", "lane 1 is -1"},
	    {"\"lanes\":[2.0,0]", "lane 0 is 2.0"},
	    {"\"lanes\":[]", "lanes are not a list"},
	    {"\"lanes\":[0,0],\"records\":\"8\"", "record count"},
	    {"\"lanes\":[0,0],\"held\":[\"00ff\"]", "held item"},
	    {"\"lanes\":[0,0],\"held\":[\"00FF00FF00FF00FZ\"]", "held item"},
	};
	static const char head[] =
	    "{\"format\":\"ddbaudit.checkpoint/v5\",\"runId\":\"" RUN_ID "\",\"arguments\":{},"
	    "\"plan\":\"0000000000000000000000000000000000000000000000000000000000000000\",";
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ck.json", dir);
	json_t *args = json_object();
	/* A sound one passes, and its positions are read. */
	snprintf(text, sizeof(text), "%s\"records\":8,\"lanes\":[3,1],\"held\":[]}", head);
	put_file(path, text);
	struct dda_error err = {0};
	assert_int_equal(dda__checkpoint_check_args(path, args, &err), 0);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(bad); i++) {
		/* the later "records" and "held" keys win in jansson: last one read */
		snprintf(text, sizeof(text), "%s\"records\":8,\"held\":[],%s}", head, bad[i][0]);
		put_file(path, text);
		err = (struct dda_error){0};
		if (dda__checkpoint_check_args(path, args, &err) != DDA_EINVAL)
			fail_msg("%s: accepted", bad[i][0]);
		if (!strstr(err.msg, bad[i][1]) || !strstr(err.msg, "damaged"))
			fail_msg("%s: '%s' does not say '%s'", bad[i][0], err.msg, bad[i][1]);
	}
	json_decref(args);
	unlink(path);
	rmdir(dir);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? -1 : st.st_size;
}

/* issue 10: a torn last line (no newline) is cut before anything is
 * appended; whole lines are left alone. */
static void test_cut_torn_tail(void **state)
{
	(void)state;
	char dir[] = "/tmp/ddbaudit-test-XXXXXX", path[256];
	static const struct {
		const char *text;
		uint64_t cut;
	} v[] = {{"", 0}, {"{\"a\":1}\n", 0}, {"{\"a\":1}\n{\"b\":", 5}, {"no newline", 10}};
	struct dda_error err = {0};
	uint64_t cut = 99;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.ndjson", dir);
	assert_int_equal(dda__file_cut_torn_tail(path, &cut, &err), 0); /* missing */
	assert_int_equal(cut, 0);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(v); i++) {
		put_file(path, v[i].text);
		assert_int_equal(dda__file_cut_torn_tail(path, &cut, &err), 0);
		assert_int_equal(cut, v[i].cut);
		assert_int_equal(file_size(path), (off_t)(strlen(v[i].text) - v[i].cut));
	}
	unlink(path);
	rmdir(dir);
}

/* issue 10: an append that runs out of room takes back what it wrote, so
 * the file still ends with a whole line. A child process, as the file size
 * limit (EFBIG, SIGXFSZ ignored) stands in for a full disk. */
static void test_append_line_whole_or_nothing(void **state)
{
	(void)state;
	char dir[] = "/tmp/ddbaudit-test-XXXXXX", path[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.ndjson", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(dda__append_line(fd, true, "0123", 4), 0);
	assert_int_equal(file_size(path), 5);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {12, 12};
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(2);
		int rc = dda__append_line(fd, true, "abcdefghij", 10);
		_exit(rc == -1 && errno == EFBIG ? 0 : 1);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(file_size(path), 5); /* the partial "abcdefg" was taken back */
	/* A descriptor that cannot be written fails (EBADF), never pretends. */
	int ro = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	errno = 0;
	assert_int_equal(dda__append_line(ro, true, "x", 1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(file_size(path), 5);
	close(ro);
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void test_checkpoint_arguments(void **state)
{
	(void)state;
	char dir[] = "/tmp/ddbaudit-test-XXXXXX", path[256];
	struct dda_error err = {0};
	struct dda_plan p;
	struct dda_replay_opts o;
	size_t pos[1] = {0};
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ck.json", dir);
	assert_int_equal(dda__checkpoint_check_args(path, NULL, &err), 0); /* missing: fresh */
	memset(&p, 0, sizeof(p));
	memset(&o, 0, sizeof(o));
	p.lanes = 1;
	snprintf(p.synth.run_id, sizeof(p.synth.run_id), "%s", RUN_ID);
	json_t *had = json_pack("{sssisn}", "SOURCE", "s3://b/p/", "--parallelism", 1, "--key");
	json_t *same = json_deep_copy(had);
	json_t *other = json_pack("{sssisn}", "SOURCE", "s3://b/p/", "--parallelism", 2, "--key");
	json_t *more = json_pack("{sssisnss}", "SOURCE", "s3://b/p/", "--parallelism", 1, "--key",
				 "--table", "T");
	o.arguments = had;
	assert_int_equal(dda__checkpoint_save(path, &p, &o, pos, NULL, 0, &err), 0);
	assert_int_equal(dda__checkpoint_check_args(path, same, &err), 0);
	assert_int_equal(dda__checkpoint_check_args(path, other, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "written with --parallelism 1 and this run has "
					"--parallelism 2"));
	err = (struct dda_error){0};
	assert_int_equal(dda__checkpoint_check_args(path, more, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "--table (none)"));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"format\":\"ddbaudit.checkpoint/v1\",\"arguments\":\"00\"}", f);
	fclose(f);
	err = (struct dda_error){0};
	assert_int_equal(dda__checkpoint_check_args(path, same, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "another version"));
	json_decref(had);
	json_decref(same);
	json_decref(other);
	json_decref(more);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_filter_operators),	  cmocka_unit_test(test_filter_rejects),
	    cmocka_unit_test(test_size_bytes_documented), cmocka_unit_test(test_item_size_rules),
	    cmocka_unit_test(test_item_failures),
	    cmocka_unit_test(test_item_failures_over_the_cap),
	    cmocka_unit_test(test_json_write_matches_jansson),
	    cmocka_unit_test(test_raw_and_tree_records_agree),
	    cmocka_unit_test(test_raw_images_compact),
	    cmocka_unit_test(test_planned_length_is_written_length),
	    cmocka_unit_test(test_keys_without_tree),
	    cmocka_unit_test(test_seq_format),
	    cmocka_unit_test(test_marker_cache),
	    cmocka_unit_test(test_event_id_across_objects),
	    cmocka_unit_test(test_json_compact),
	    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_http_fault),
	    cmocka_unit_test(test_target_timeout),
	    cmocka_unit_test(test_output_check),
	    cmocka_unit_test(test_checkpoint_arguments),
	    cmocka_unit_test(test_checkpoint_of_another_shard),
	    cmocka_unit_test(test_checkpoint_fields_are_strict),
	    cmocka_unit_test(test_cut_torn_tail),
	    cmocka_unit_test(test_append_line_whole_or_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
