/* DynamoDB operations on the client (see ddb.h): DescribeTable, parallel
 * Scan, GetItem, BatchWriteItem, conditional PutItem / DeleteItem,
 * CreateTable, and the parsers of their answers. */
#include "ddb/ddb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS 64
/* UnprocessedItems: waits grow from this to the cap while nothing gets
 * through; a batch that makes no progress for this many rounds fails. */
#define UNPROCESSED_BASE_US (50 * 1000)
#define UNPROCESSED_CAP_US (5 * DDA_USEC_PER_SEC)
#define UNPROCESSED_MAX_ROUNDS 1000

void dda__ddb_parse_error(const char *body, size_t len, char *type, size_t tcap, char *msg,
			  size_t mcap)
{
	json_error_t je;
	json_t *j = body && len ? json_loadb(body, len, 0, &je) : NULL;
	const char *t = json_string_value(json_object_get(j, "__type"));
	const char *m = json_string_value(json_object_get(j, "message"));
	if (!m)
		m = json_string_value(json_object_get(j, "Message"));
	const char *hash = t ? strrchr(t, '#') : NULL;
	snprintf(type, tcap, "%s", hash ? hash + 1 : t ? t : "");
	if (m)
		snprintf(msg, mcap, "%s", m);
	else
		snprintf(msg, mcap, "%.*s", (int)DDA_MIN(len, 200), body && len ? body : "");
	/* The message goes into one line of a report. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	json_decref(j);
}

static int copy_name(char *out, size_t cap, json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || !*s || strlen(s) >= cap)
		return DDA_EFORMAT;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int dda__ddb_parse_table(json_t *answer, struct dda_ddb_table *t, struct dda_error *err)
{
	json_t *tab = json_object_get(answer, "Table");
	json_t *ks = json_object_get(tab, "KeySchema");
	json_t *defs = json_object_get(tab, "AttributeDefinitions");
	memset(t, 0, sizeof(*t));
	t->item_count = -1;
	if (!json_is_object(tab) || copy_name(t->name, sizeof(t->name), json_object_get(tab, "TableName")))
		return dda_error_set(err, DDA_EFORMAT, "DescribeTable: no TableName in the answer");
	const char *arn = json_string_value(json_object_get(tab, "TableArn"));
	const char *st = json_string_value(json_object_get(tab, "TableStatus"));
	snprintf(t->arn, sizeof(t->arn), "%s", arn ? arn : "");
	snprintf(t->status, sizeof(t->status), "%s", st ? st : "");
	json_t *n = json_object_get(tab, "ItemCount");
	if (json_is_integer(n))
		t->item_count = json_integer_value(n);
	const char *mode = json_string_value(
	    json_object_get(json_object_get(tab, "BillingModeSummary"), "BillingMode"));
	t->on_demand = mode && !strcmp(mode, "PAY_PER_REQUEST");
	size_t i;
	json_t *k;
	if (!json_is_array(ks) || json_array_size(ks) < 1 || json_array_size(ks) > 2)
		return dda_error_set(err, DDA_EFORMAT, "DescribeTable: the key schema of '%s' is "
						       "not one or two attributes", t->name);
	json_array_foreach(ks, i, k)
	{
		const char *role = json_string_value(json_object_get(k, "KeyType"));
		size_t at = role && !strcmp(role, "HASH") ? 0 : 1;
		if (!role || (strcmp(role, "HASH") && strcmp(role, "RANGE")) || t->key_names[at][0] ||
		    copy_name(t->key_names[at], sizeof(t->key_names[at]),
			      json_object_get(k, "AttributeName")))
			return dda_error_set(err, DDA_EFORMAT,
					     "DescribeTable: a key schema entry of '%s' is broken",
					     t->name);
	}
	t->nkeys = json_array_size(ks);
	if (!t->key_names[0][0] || (t->nkeys == 2 && !t->key_names[1][0]))
		return dda_error_set(err, DDA_EFORMAT, "DescribeTable: '%s' has no HASH key",
				     t->name);
	for (size_t j = 0; j < t->nkeys; j++) {
		json_array_foreach(defs, i, k)
		{
			const char *name = json_string_value(json_object_get(k, "AttributeName"));
			const char *type = json_string_value(json_object_get(k, "AttributeType"));
			if (name && type && !strcmp(name, t->key_names[j]) &&
			    (!strcmp(type, "S") || !strcmp(type, "N") || !strcmp(type, "B")))
				memcpy(t->key_types[j], type, 2);
		}
		if (!t->key_types[j][0])
			return dda_error_set(err, DDA_EFORMAT,
					     "DescribeTable: no S, N or B definition for key "
					     "attribute '%s'",
					     t->key_names[j]);
	}
	return 0;
}

int dda__ddb_parse_page(json_t *page, json_t **items, json_t **last_key, struct dda_error *err)
{
	*items = json_object_get(page, "Items");
	*last_key = json_object_get(page, "LastEvaluatedKey");
	if (*last_key && json_is_null(*last_key))
		*last_key = NULL;
	if (!json_is_array(*items) || (*last_key && !json_is_object(*last_key)))
		return dda_error_set(err, DDA_EFORMAT, "Scan: the answer has no Items array");
	size_t i;
	json_t *it;
	json_array_foreach(*items, i, it) if (!json_is_object(it)) return dda_error_set(
	    err, DDA_EFORMAT, "Scan: item %zu of a page is not an object", i);
	return 0;
}

static json_t *table_req(struct dda_ddb *d)
{
	return json_pack("{ss}", "TableName", dda__ddb_table_name(d));
}

int dda__ddb_describe(struct dda_ddb_conn *c, struct dda_ddb_table *t, struct dda_error *err)
{
	struct dda_ddb *d = dda__ddb_conn_client(c);
	json_t *req = table_req(d), *resp = NULL;
	if (!req)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = dda__ddb_call(c, "DescribeTable", req, false, &resp, err);
	if (!rc)
		rc = dda__ddb_parse_table(resp, t, err);
	json_decref(req);
	json_decref(resp);
	return rc;
}

struct scan_job {
	struct dda_ddb *d;
	int segment, segments;
	bool consistent;
	int (*on_item)(void *ctx, int segment, json_t *item);
	void *ctx;
	volatile int *failed; /* set by the first segment that fails */
	pthread_mutex_t *mu;
	struct dda_error err;
	int rc;
};

static void *scan_segment(void *arg)
{
	struct scan_job *j = arg;
	struct dda_ddb_conn *c = dda__ddb_conn_new(j->d);
	json_t *req = table_req(j->d);
	if (!c || !req) {
		j->rc = dda_error_set(&j->err, DDA_ENOMEM, "out of memory");
		goto out;
	}
	if (j->segments > 1) {
		json_object_set_new(req, "Segment", json_integer(j->segment));
		json_object_set_new(req, "TotalSegments", json_integer(j->segments));
	}
	if (j->consistent)
		json_object_set_new(req, "ConsistentRead", json_true());
	while (!j->rc && !*j->failed) {
		json_t *page = NULL, *items, *lek;
		j->rc = dda__ddb_call(c, "Scan", req, false, &page, &j->err);
		if (!j->rc)
			j->rc = dda__ddb_parse_page(page, &items, &lek, &j->err);
		size_t i;
		json_t *it;
		json_array_foreach(j->rc ? NULL : items, i, it)
		{
			if (*j->failed || (j->rc = j->on_item(j->ctx, j->segment, it)))
				break;
		}
		if (!j->rc && !lek) {
			json_decref(page);
			break;
		}
		if (!j->rc)
			json_object_set(req, "ExclusiveStartKey", lek);
		json_decref(page);
	}
out:
	if (j->rc) {
		pthread_mutex_lock(j->mu);
		*j->failed = 1;
		pthread_mutex_unlock(j->mu);
	}
	json_decref(req);
	dda__ddb_conn_free(c);
	return NULL;
}

int dda__ddb_scan(struct dda_ddb *d, int segments, bool consistent,
		  int (*on_item)(void *ctx, int segment, json_t *item), void *ctx,
		  struct dda_error *err)
{
	if (segments < 1 || segments > MAX_SEGMENTS)
		return dda_error_set(err, DDA_EINVAL, "--scan-segments must be 1 to %d",
				     MAX_SEGMENTS);
	struct scan_job jobs[MAX_SEGMENTS];
	pthread_t threads[MAX_SEGMENTS];
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	volatile int failed = 0;
	int started = 0, rc = 0;
	for (int s = 0; s < segments; s++) {
		jobs[s] = (struct scan_job){.d = d,
					    .segment = s,
					    .segments = segments,
					    .consistent = consistent,
					    .on_item = on_item,
					    .ctx = ctx,
					    .failed = &failed,
					    .mu = &mu};
		if (segments == 1) {
			scan_segment(&jobs[0]);
			started = 1;
			break;
		}
		if (pthread_create(&threads[s], NULL, scan_segment, &jobs[s])) {
			failed = 1;
			rc = dda_error_set(err, DDA_ENOMEM, "cannot start a scan thread");
			break;
		}
		started++;
	}
	for (int s = 0; s < started; s++) {
		if (segments > 1)
			pthread_join(threads[s], NULL);
		if (!rc && jobs[s].rc) {
			rc = jobs[s].rc;
			*err = jobs[s].err;
		}
	}
	return rc;
}

int dda__ddb_get(struct dda_ddb_conn *c, json_t *key, bool consistent, json_t **item,
		 struct dda_error *err)
{
	struct dda_ddb *d = dda__ddb_conn_client(c);
	json_t *req = table_req(d), *resp = NULL;
	*item = NULL;
	if (!req)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	json_object_set(req, "Key", key);
	if (consistent)
		json_object_set_new(req, "ConsistentRead", json_true());
	int rc = dda__ddb_call(c, "GetItem", req, false, &resp, err);
	if (!rc) {
		json_t *it = json_object_get(resp, "Item");
		if (it && !json_is_object(it))
			rc = dda_error_set(err, DDA_EFORMAT, "GetItem: Item is not an object");
		else if (it)
			*item = json_incref(it);
	}
	json_decref(req);
	json_decref(resp);
	return rc;
}

int dda__ddb_batch_write(struct dda_ddb_conn *c, json_t *requests, struct dda_error *err)
{
	struct dda_ddb *d = dda__ddb_conn_client(c);
	if (!json_array_size(requests))
		return 0;
	if (json_array_size(requests) > DDA_DDB_BATCH_MAX)
		return dda_error_set(err, DDA_EINTERNAL, "a batch of more than %d writes",
				     DDA_DDB_BATCH_MAX);
	json_t *req = json_object(), *items = json_object();
	json_t *pending = json_incref(requests);
	int rc = req && items ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	int64_t wait = UNPROCESSED_BASE_US;
	for (int round = 0; !rc && json_array_size(pending); round++) {
		json_t *resp = NULL;
		json_object_set(items, dda__ddb_table_name(d), pending);
		json_object_set(req, "RequestItems", items);
		rc = dda__ddb_call(c, "BatchWriteItem", req, true, &resp, err);
		if (rc)
			break;
		json_t *un = json_object_get(json_object_get(resp, "UnprocessedItems"),
					     dda__ddb_table_name(d));
		size_t left = json_is_array(un) ? json_array_size(un) : 0;
		size_t before = json_array_size(pending);
		json_decref(pending);
		pending = left ? json_incref(un) : NULL;
		json_decref(resp);
		if (!left)
			break;
		dda__ddb_note_unprocessed(d);
		if (left >= before && round >= UNPROCESSED_MAX_ROUNDS) {
			rc = dda_error_set(err, DDA_EIO,
					   "BatchWriteItem: %zu writes still unprocessed after %d "
					   "rounds",
					   left, round + 1);
			break;
		}
		/* Unprocessed writes are throttling: back off, then grow. */
		dda__ddb_nap(d, wait);
		wait = left < before ? UNPROCESSED_BASE_US : DDA_MIN(wait * 2, UNPROCESSED_CAP_US);
		if (dda__ddb_stopped(d))
			rc = dda_error_set(err, DDA_EINTR, "BatchWriteItem: interrupted with %zu "
							   "writes not done",
					   left);
	}
	json_decref(pending);
	json_decref(items);
	json_decref(req);
	return rc;
}

int dda__ddb_put_if(struct dda_ddb_conn *c, json_t *item, json_t *key,
		    const struct dda_ddb_cond *cond, bool *refused, struct dda_error *err)
{
	struct dda_ddb *d = dda__ddb_conn_client(c);
	json_t *req = table_req(d), *resp = NULL;
	*refused = false;
	if (!req)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	json_object_set(req, item ? "Item" : "Key", item ? item : key);
	if (cond && cond->expression) {
		json_object_set_new(req, "ConditionExpression", json_string(cond->expression));
		if (cond->names && json_object_size(cond->names))
			json_object_set(req, "ExpressionAttributeNames", cond->names);
		if (cond->values && json_object_size(cond->values))
			json_object_set(req, "ExpressionAttributeValues", cond->values);
	}
	int rc = dda__ddb_call(c, item ? "PutItem" : "DeleteItem", req, true, &resp, err);
	if (rc && strstr(err->msg, " ConditionalCheckFailedException: ")) {
		*refused = true;
		rc = 0;
		err->msg[0] = '\0';
	}
	json_decref(req);
	json_decref(resp);
	return rc;
}

int dda__ddb_create(struct dda_ddb_conn *c, const struct dda_ddb_table *t, struct dda_error *err)
{
	struct dda_ddb *d = dda__ddb_conn_client(c);
	json_t *ks = json_array(), *defs = json_array(), *resp = NULL;
	for (size_t i = 0; i < t->nkeys; i++) {
		json_array_append_new(ks, json_pack("{ssss}", "AttributeName", t->key_names[i],
						    "KeyType", i ? "RANGE" : "HASH"));
		json_array_append_new(defs, json_pack("{ssss}", "AttributeName", t->key_names[i],
						      "AttributeType", t->key_types[i]));
	}
	json_t *req = json_pack("{sssososs}", "TableName", dda__ddb_table_name(d), "KeySchema", ks,
				"AttributeDefinitions", defs, "BillingMode", "PAY_PER_REQUEST");
	if (!req)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = dda__ddb_call(c, "CreateTable", req, true, &resp, err);
	json_decref(req);
	json_decref(resp);
	/* Wait for ACTIVE: a few seconds on AWS, at once locally. */
	for (int i = 0; !rc && i < 600; i++) {
		struct dda_ddb_table now;
		rc = dda__ddb_describe(c, &now, err);
		if (rc || !strcmp(now.status, "ACTIVE"))
			break;
		if (dda__ddb_stopped(d))
			return dda_error_set(err, DDA_EINTR, "interrupted waiting for '%s'",
					     now.name);
		dda__ddb_nap(d, 500 * 1000);
		if (i == 599)
			rc = dda_error_set(err, DDA_EIO, "table '%s' is still %s after 5 minutes",
					   now.name, now.status);
	}
	return rc;
}
