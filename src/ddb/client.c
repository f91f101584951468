/* The DynamoDB client's transport: signing, sending, throttling, retries and
 * pacing (see ddb.h). */
#include "ddb/ddb.h"
#include "aws/core.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_ANSWER ((size_t)32 << 20)
/* Throttling waits grow from this to the cap, with jitter. */
#define THROTTLE_BASE_US (50 * 1000)
#define THROTTLE_CAP_US (5 * DDA_USEC_PER_SEC)

struct pace {
	double rate;	  /* units a second, 0 = none */
	double debt;	  /* units used beyond what the rate has paid for */
	int64_t last;	  /* when debt was last paid down */
};

struct dda_ddb {
	struct dda_aws_api *api;
	char table[DDA_DDB_NAME_MAX];
	char *url;  /* endpoint base + "/" */
	char *path; /* the signed path: the endpoint's prefix + "/" */
	size_t max_answer;
	volatile int *stop;
	pthread_mutex_t mu; /* pace and stats */
	struct pace read, write;
	struct dda_ddb_stats stats;
};

struct dda_ddb_conn {
	struct dda_ddb *d;
	CURL *easy;
	struct dda_buf answer;
	uint64_t rng;
};

int dda__ddb_parse_uri(const char *uri, char name[DDA_DDB_NAME_MAX], char region[32],
		       struct dda_error *err)
{
	const char *n = NULL;
	region[0] = '\0';
	if (!strncmp(uri, "ddb://", 6)) {
		n = uri + 6;
	} else if (!strncmp(uri, "arn:", 4)) {
		/* arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME */
		const char *p = uri;
		for (int i = 0; i < 5 && p; i++)
			p = strchr(p + (i ? 1 : 0), ':');
		if (p && strstr(uri, ":dynamodb:") && !strncmp(p + 1, "table/", 6)) {
			n = p + 7;
			if (!dda__aws_region_of(uri, region, 32))
				region[0] = '\0';
		}
	}
	/* DynamoDB table names: 3 to 255 of [A-Za-z0-9_.-]. */
	size_t len = n ? strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_.-")
		       : 0;
	if (!n || len < 3 || len > 255 || n[len]) {
		return dda_error_set(err, DDA_EINVAL,
				     "'%s' is not a table: give ddb://TABLE or a table ARN "
				     "(arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE); a table name is "
				     "3 to 255 letters, digits, '_', '-' or '.'",
				     uri);
	}
	memcpy(name, n, len + 1);
	return 0;
}

int dda__ddb_new(struct dda_ddb **out, const char *uri, const struct dda_ddb_opts *o,
		 const struct dda_env *env, struct dda_error *err)
{
	char region[32];
	*out = NULL;
	struct dda_ddb *d = calloc(1, sizeof(*d));
	if (!d)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (pthread_mutex_init(&d->mu, NULL)) {
		free(d);
		return dda_error_set(err, DDA_EINTERNAL, "cannot make a mutex");
	}
	int rc = dda__ddb_parse_uri(uri, d->table, region, err);
	struct dda_aws_opts aws = o->aws;
	if (!rc && region[0] && !(aws.region && *aws.region))
		aws.region = region;
	if (!rc)
		rc = dda__aws_api_new(&d->api, "dynamodb", &aws, o->endpoint, NULL, NULL, env, err);
	if (!rc) {
		const char *base = dda__aws_api_base(d->api);
		const char *pfx = strstr(base, "://");
		pfx = pfx ? strchr(pfx + 3, '/') : NULL;
		size_t bl = strlen(base) + 2, pl = (pfx ? strlen(pfx) : 0) + 2;
		d->url = malloc(bl);
		d->path = malloc(pl);
		if (d->url && d->path) {
			snprintf(d->url, bl, "%s/", base);
			snprintf(d->path, pl, "%s/", pfx ? pfx : "");
		} else {
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
		}
	}
	if (rc) {
		dda__ddb_free(d);
		return rc;
	}
	d->max_answer = o->max_answer ? o->max_answer : DEFAULT_MAX_ANSWER;
	d->stop = o->aws.stop;
	d->read.rate = o->max_rcu;
	d->write.rate = o->max_wcu;
	*out = d;
	return 0;
}

void dda__ddb_free(struct dda_ddb *d)
{
	if (!d)
		return;
	dda__aws_api_free(d->api);
	free(d->url);
	free(d->path);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

const char *dda__ddb_table_name(const struct dda_ddb *d)
{
	return d->table;
}

void dda__ddb_stats(struct dda_ddb *d, struct dda_ddb_stats *out)
{
	pthread_mutex_lock(&d->mu);
	*out = d->stats;
	pthread_mutex_unlock(&d->mu);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct dda_buf *b = ctx;
	size_t len = size * n;
	return dda_buf_add(b, p, len) ? 0 : len; /* past the cap: the transfer fails */
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct dda_ddb *d = ctx;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return d->stop && *d->stop;
}

struct dda_ddb_conn *dda__ddb_conn_new(struct dda_ddb *d)
{
	struct dda_ddb_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->d = d;
	c->rng = (uint64_t)dda_time_now() ^ (uint64_t)(uintptr_t)c;
	dda_buf_init(&c->answer, d->max_answer);
	c->easy = curl_easy_init();
	if (!c->easy) {
		free(c);
		return NULL;
	}
	CURL *e = c->easy;
	curl_easy_setopt(e, CURLOPT_URL, d->url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->answer);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	/* A Scan page is at most 1 MB: a minute is generous. */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)d);
	return c;
}

void dda__ddb_conn_free(struct dda_ddb_conn *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->easy);
	dda_buf_release(&c->answer);
	free(c);
}

static bool stopped(const struct dda_ddb *d)
{
	return d->stop && *d->stop;
}

bool dda__ddb_stopped(const struct dda_ddb *d)
{
	return stopped(d);
}

struct dda_ddb *dda__ddb_conn_client(struct dda_ddb_conn *c)
{
	return c->d;
}

void dda__ddb_note_unprocessed(struct dda_ddb *d)
{
	pthread_mutex_lock(&d->mu);
	d->stats.unprocessed_retries++;
	pthread_mutex_unlock(&d->mu);
}

void dda__ddb_nap(const struct dda_ddb *d, int64_t us)
{
	while (us > 0 && !stopped(d)) {
		int64_t step = DDA_MIN(us, 50000);
		struct timespec ts = {step / 1000000, (long)(step % 1000000) * 1000};
		nanosleep(&ts, NULL);
		us -= step;
	}
}

/* How long to wait before the next call so that the capacity used stays
 * within the rate: the debt not yet paid down, at the rate. */
static int64_t pace_wait(struct pace *p, int64_t now)
{
	if (p->rate <= 0)
		return 0;
	if (p->last)
		p->debt -= p->rate * (double)(now - p->last) / DDA_USEC_PER_SEC;
	if (p->debt < 0)
		p->debt = 0;
	p->last = now;
	return p->debt > 0 ? (int64_t)(p->debt / p->rate * DDA_USEC_PER_SEC) : 0;
}

/* Sums ConsumedCapacity (an object, or an array of them for batches). */
static double consumed(json_t *answer)
{
	json_t *cc = json_object_get(answer, "ConsumedCapacity");
	double sum = 0;
	size_t i;
	json_t *v;
	if (json_is_object(cc))
		return json_number_value(json_object_get(cc, "CapacityUnits"));
	json_array_foreach(cc, i, v) sum += json_number_value(json_object_get(v, "CapacityUnits"));
	return sum;
}

static void account(struct dda_ddb *d, bool write, json_t *answer, int retries, int throttles)
{
	double used = consumed(answer);
	pthread_mutex_lock(&d->mu);
	d->stats.calls++;
	d->stats.retries += (uint64_t)retries;
	d->stats.throttles += (uint64_t)throttles;
	if (write)
		d->stats.wcu += used;
	else
		d->stats.rcu += used;
	struct pace *p = write ? &d->write : &d->read;
	if (p->rate > 0)
		p->debt += used;
	pthread_mutex_unlock(&d->mu);
}

static bool throttled(long status, const char *type)
{
	return status == 429 || status == 503 ||
	       !strcmp(type, "ProvisionedThroughputExceededException") ||
	       !strcmp(type, "ThrottlingException") || !strcmp(type, "RequestLimitExceeded") ||
	       !strcmp(type, "LimitExceededException");
}

/* What a refusal means: a request DynamoDB found invalid, a table or key
 * that is not there, credentials refused, or another failure. */
static int error_code(long status, const char *type)
{
	if (!strcmp(type, "ValidationException") || !strcmp(type, "SerializationException"))
		return DDA_EINVAL;
	if (!strcmp(type, "ResourceNotFoundException"))
		return DDA_ENOTFOUND;
	if (status == 403 || strstr(type, "AccessDenied") || strstr(type, "Signature") ||
	    strstr(type, "Token") || !strcmp(type, "UnrecognizedClientException"))
		return DDA_EAUTH;
	return DDA_EIO;
}

/* One attempt: sends body, fills c->answer; returns the HTTP status, or 0
 * with msg set for a transport failure. */
static long send_once(struct dda_ddb_conn *c, const char *target, const char *body, size_t len,
		      char *msg, size_t mcap)
{
	struct dda_ddb *d = c->d;
	struct dda_error err = {0};
	const struct dda_kv hdrs[] = {
	    {"Content-Type", "application/x-amz-json-1.0"},
	    {"X-Amz-Target", target},
	};
	dda_buf_reset(&c->answer);
	struct curl_slist *hl = dda__aws_api_curl_headers(d->api, "POST", d->path, "", hdrs,
							  DDA_ARRAY_SIZE(hdrs), body, len, &err);
	if (!hl) {
		snprintf(msg, mcap, "%s", err.msg);
		return -1; /* no credentials: nothing can be sent */
	}
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode cc = curl_easy_perform(c->easy);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
	dda__aws_api_free_headers(hl);
	if (cc != CURLE_OK) {
		snprintf(msg, mcap, "%s%s", curl_easy_strerror(cc),
			 cc == CURLE_WRITE_ERROR ? " (the answer is over the size cap)" : "");
		return 0;
	}
	long status = 0;
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

int dda__ddb_call(struct dda_ddb_conn *c, const char *op, json_t *req, bool write, json_t **resp,
		  struct dda_error *err)
{
	struct dda_ddb *d = c->d;
	const struct dda_http_opts *retry = dda__aws_api_retry(d->api);
	char target[96], type[128], msg[512];
	*resp = NULL;
	snprintf(target, sizeof(target), "DynamoDB_20120810.%s", op);
	struct pace *pace = write ? &d->write : &d->read;
	if (pace->rate > 0 && !json_object_get(req, "ReturnConsumedCapacity") &&
	    strcmp(op, "DescribeTable") && strcmp(op, "CreateTable"))
		json_object_set_new(req, "ReturnConsumedCapacity", json_string("TOTAL"));
	char *body = json_dumps(req, JSON_COMPACT);
	if (!body)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int attempts = 0, throttles = 0, rc = 0;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		int64_t wait = pace_wait(pace, dda_time_now());
		pthread_mutex_unlock(&d->mu);
		dda__ddb_nap(d, wait);
		if (stopped(d)) {
			rc = dda_error_set(err, DDA_EINTR, "%s: interrupted", op);
			break;
		}
		attempts++;
		long status = send_once(c, target, body, strlen(body), msg, sizeof(msg));
		if (status < 0) {
			rc = dda_error_set(err, DDA_EAUTH, "%s: %s", op, msg);
			break;
		}
		type[0] = '\0';
		if (status == 200) {
			json_error_t je;
			*resp = json_loadb(c->answer.ptr ? c->answer.ptr : "", c->answer.len, 0, &je);
			if (*resp && json_is_object(*resp)) {
				account(d, write, *resp, attempts - 1, throttles);
				break;
			}
			json_decref(*resp);
			*resp = NULL;
			snprintf(msg, sizeof(msg), "the answer is not a JSON object: %s", je.text);
			status = 0; /* a damaged answer: retried as a transport failure */
		} else if (status) {
			dda__ddb_parse_error(c->answer.ptr, c->answer.len, type, sizeof(type), msg,
					     sizeof(msg));
		}
		if (status && throttled(status, type)) {
			/* Waited out, never counted as an attempt. */
			attempts--;
			throttles++;
			dda__ddb_nap(d, dda__http_backoff(
				   &(struct dda_http_opts){.backoff_base = THROTTLE_BASE_US,
							   .backoff_cap = THROTTLE_CAP_US},
				   &c->rng, DDA_MIN(throttles, 16), -1));
			continue;
		}
		if (status && status < 500) {
			rc = dda_error_set(err, error_code(status, type),
					   "%s: HTTP %ld %s: %s", op, status, type[0] ? type : "",
					   msg);
			break;
		}
		if (attempts >= retry->max_attempts) {
			rc = dda_error_set(err, DDA_EIO, "%s: %s%s after %d attempts", op,
					   status ? "HTTP error " : "", status ? type : msg, attempts);
			break;
		}
		dda__ddb_nap(d, dda__http_backoff(retry, &c->rng, attempts, -1));
	}
	free(body);
	return rc;
}
