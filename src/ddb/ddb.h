/* A DynamoDB client on the AWS core: the JSON 1.0 protocol (POST /,
 * X-Amz-Target: DynamoDB_20120810.<Operation>), signed with SigV4 from the
 * credential chain, the endpoint from the options, AWS_ENDPOINT_URL_DYNAMODB
 * or AWS_ENDPOINT_URL. One client is shared by
 * threads; each thread calls through a connection of its own (one kept-alive
 * curl handle).
 *
 * Failures: throttling (ProvisionedThroughputExceededException,
 * ThrottlingException, RequestLimitExceeded, HTTP 429/503) is waited out
 * with a growing backoff and never counts as an attempt; a 5xx or a
 * transport failure is retried as AWS_MAX_ATTEMPTS / AWS_RETRY_MODE say;
 * any other 4xx fails the call with the error's type and message. The stop
 * flag ends every wait. With a pace (--max-rcu / --max-wcu), each call asks
 * for ConsumedCapacity and the client holds later calls until the capacity
 * used is within the rate. */
#ifndef DDA_DDB_H
#define DDA_DDB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/api.h"
#include "ddbaudit/aws.h"
#include "ddbaudit/common.h"

struct dda_ddb_opts {
	/* region, profile, stop; its endpoint_url is S3's and is not used */
	struct dda_aws_opts aws;
	/* The DynamoDB endpoint, else AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL. */
	const char *endpoint;
	double max_rcu;		 /* read capacity units a second, 0 = unpaced */
	double max_wcu;		 /* write capacity units a second, 0 = unpaced */
	size_t max_answer;	 /* 0 = 32 MiB */
};

/* What DescribeTable says, as far as ddbaudit needs it. */
#define DDA_DDB_NAME_MAX 256
struct dda_ddb_table {
	char name[DDA_DDB_NAME_MAX];
	char arn[2048];
	char status[32]; /* ACTIVE, CREATING, ... */
	size_t nkeys;	 /* 1 or 2: HASH first */
	char key_names[2][DDA_DDB_NAME_MAX];
	char key_types[2][2]; /* "S", "N" or "B" */
	int64_t item_count;   /* approximate, -1 unknown */
	bool on_demand;	      /* BillingMode PAY_PER_REQUEST */
};

struct dda_ddb;
struct dda_ddb_conn;

/* The table a URI names: "ddb://TABLE" or a table ARN
 * (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME, whose region then applies).
 * Writes the name (and the ARN's region, or "") and returns 0, else
 * DDA_EINVAL with err set. */
int dda__ddb_parse_uri(const char *uri, char name[DDA_DDB_NAME_MAX], char region[32],
		       struct dda_error *err);

int dda__ddb_new(struct dda_ddb **out, const char *uri, const struct dda_ddb_opts *o,
		 const struct dda_env *env, struct dda_error *err);
void dda__ddb_free(struct dda_ddb *d);
const char *dda__ddb_table_name(const struct dda_ddb *d);

/* Counters of the client's life, for reports and tests. */
struct dda_ddb_stats {
	uint64_t calls, retries, throttles, unprocessed_retries;
	double rcu, wcu; /* capacity consumed, as the answers said */
};
void dda__ddb_stats(struct dda_ddb *d, struct dda_ddb_stats *out);

struct dda_ddb_conn *dda__ddb_conn_new(struct dda_ddb *d);
void dda__ddb_conn_free(struct dda_ddb_conn *c);
struct dda_ddb *dda__ddb_conn_client(struct dda_ddb_conn *c);
/* Sleeps us microseconds, waking early when the run is stopped. */
void dda__ddb_nap(const struct dda_ddb *d, int64_t us);
/* The run's stop flag is set. */
bool dda__ddb_stopped(const struct dda_ddb *d);
/* Counts a round of UnprocessedItems (stats). */
void dda__ddb_note_unprocessed(struct dda_ddb *d);

/* One call of operation op ("Scan") with request body req (borrowed; the
 * table name is the caller's to set). On success *resp is the answer (a new
 * reference). write says which pace applies. */
int dda__ddb_call(struct dda_ddb_conn *c, const char *op, json_t *req, bool write, json_t **resp,
		  struct dda_error *err);

int dda__ddb_describe(struct dda_ddb_conn *c, struct dda_ddb_table *t, struct dda_error *err);

/* Scans the table in `segments` parallel segments (one thread each, at
 * most 64), calling on_item for every item (borrowed; from several threads
 * at once, with the segment number). A nonzero return from on_item stops
 * the scan and is returned. */
int dda__ddb_scan(struct dda_ddb *d, int segments, bool consistent,
		  int (*on_item)(void *ctx, int segment, json_t *item), void *ctx,
		  struct dda_error *err);

/* GetItem: *item is the item (a new reference) or NULL when there is none. */
int dda__ddb_get(struct dda_ddb_conn *c, json_t *key, bool consistent, json_t **item,
		 struct dda_error *err);

/* BatchWriteItem of up to 25 requests ({"PutRequest":{"Item":...}} or
 * {"DeleteRequest":{"Key":...}}, borrowed), retrying UnprocessedItems with
 * backoff until all are written. */
#define DDA_DDB_BATCH_MAX 25
int dda__ddb_batch_write(struct dda_ddb_conn *c, json_t *requests, struct dda_error *err);

/* PutItem of item, or DeleteItem of key (item NULL), under a condition
 * (cond: a ConditionExpression with its names and values, all borrowed, or
 * NULL). *refused is set when the condition failed (nothing was written). */
struct dda_ddb_cond {
	const char *expression;
	json_t *names;	/* ExpressionAttributeNames, or NULL */
	json_t *values; /* ExpressionAttributeValues, or NULL */
};
int dda__ddb_put_if(struct dda_ddb_conn *c, json_t *item, json_t *key,
		    const struct dda_ddb_cond *cond, bool *refused, struct dda_error *err);

/* CreateTable on demand with t's key schema, then waits until it is ACTIVE. */
int dda__ddb_create(struct dda_ddb_conn *c, const struct dda_ddb_table *t, struct dda_error *err);

/* The answer parsers, separate for the fuzz target: the error type and
 * message of an error answer (type without its "namespace#" prefix),
 * DescribeTable's table, and a Scan page's items and LastEvaluatedKey
 * (borrowed from page; NULL when absent). Each returns 0 or DDA_EFORMAT
 * with err set. */
void dda__ddb_parse_error(const char *body, size_t len, char *type, size_t tcap, char *msg,
			  size_t mcap);
int dda__ddb_parse_table(json_t *answer, struct dda_ddb_table *t, struct dda_error *err);
int dda__ddb_parse_page(json_t *page, json_t **items, json_t **last_key, struct dda_error *err);

#endif
