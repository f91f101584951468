/* The on-failure destination: file:PATH (a line a message, appended whole
 * or not at all, and synced) or sqs:QUEUE_URL (SendMessage, AWS's JSON protocol, its MD5
 * checked as the SDKs check it). A message is written before the records
 * it holds are counted as done, so a failure here stops the run instead
 * of losing them. */
#include "replay/dlq.h"
#include "aws/api.h"
#include "aws/core.h"
#include "replay/target_impl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dda_dlq {
	const char *spec;
	int fd; /* file:, or -1 */
	bool regular;
	struct dda_aws_api *api;
	CURL *easy;
	char *queue_url;
	char *url; /* where SendMessage is POSTed */
	char *path;
	size_t max_message; /* the queue's MaximumMessageSize */
	struct dda_buf answer;
};

int dda__dlq_check(const char *spec, struct dda_error *err)
{
	if ((!strncmp(spec, "file:", 5) && spec[5]) ||
	    ((!strncmp(spec, "sqs:http://", 11) || !strncmp(spec, "sqs:https://", 12)) &&
	     strchr(strstr(spec, "://") + 3, '/')))
		return 0;
	return dda_error_set(err, DDA_EINVAL,
			     "invalid --dlq '%s' (file:PATH or sqs:https://QUEUE_URL)", spec);
}

static int sqs_check_queue(struct dda_dlq *d, struct dda_error *err);

static int open_sqs(struct dda_dlq *d, const struct dda_target_opts *t, struct dda_error *err)
{
	char origin[1024], region[64];
	const char *url = d->spec + 4;
	const char *host = strstr(url, "://") + 3;
	const char *slash = strchr(host, '/');
	snprintf(origin, sizeof(origin), "%.*s", (int)(slash - url), url);
	dda__aws_region_of(url, region, sizeof(region));
	/* An AWS queue lives in the region its URL names, whatever --region
	 * says (that is for the source); a custom endpoint's queue is signed
	 * for the configured region. */
	struct dda_aws_opts aws = t->aws ? *t->aws : (struct dda_aws_opts){0};
	if (region[0])
		aws.region = region;
	struct dda_env env = {dda__process_env, NULL, NULL};
	int rc = dda__aws_api_new(&d->api, "sqs", &aws, NULL, origin, region, &env, err);
	if (rc)
		return rc;
	const char *base = dda__aws_api_base(d->api);
	const char *pfx = strchr(strstr(base, "://") + 3, '/');
	d->queue_url = strdup(url);
	size_t ulen = strlen(base) + 2;
	d->url = malloc(ulen);
	d->path = strdup(pfx ? pfx : "/");
	dda_buf_init(&d->answer, 65536);
	if (d->url)
		snprintf(d->url, ulen, "%s%s", base, pfx ? "" : "/");
	d->easy = d->url ? dda__target_curl_new(t, d->url, &d->answer) : NULL;
	if (!d->queue_url || !d->url || !d->path || !d->easy)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, 30000L);
	return sqs_check_queue(d, err);
}

int dda__dlq_open(struct dda_dlq **out, const char *spec, const struct dda_target_opts *t,
		  struct dda_error *err)
{
	*out = NULL;
	if (!spec)
		return 0;
	if (dda__dlq_check(spec, err))
		return err->code;
	struct dda_dlq *d = calloc(1, sizeof(*d));
	if (!d)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	d->spec = spec;
	d->fd = -1;
	int rc = 0;
	if (!strncmp(spec, "file:", 5)) {
		struct stat st;
		d->fd = open(spec + 5, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (d->fd < 0)
			rc = dda_error_set(err, DDA_EIO, "cannot open the DLQ '%s': %s", spec + 5,
					   strerror(errno));
		else
			d->regular = !fstat(d->fd, &st) && S_ISREG(st.st_mode);
	} else {
		rc = open_sqs(d, t, err);
	}
	if (rc) {
		dda__dlq_close(d, NULL);
		return rc;
	}
	*out = d;
	return 0;
}

size_t dda__dlq_max(const struct dda_dlq *d)
{
	return d && d->api ? d->max_message : SIZE_MAX;
}

static void md5_hex(const char *s, size_t n, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (EVP_Digest(s, n, md, &len, EVP_md5(), NULL) != 1 || len != 16) {
		out[0] = '\0';
		return;
	}
	dda__hex(md, 16, out);
}

/* One call of the SQS JSON API: action with req (stolen); *answer is the
 * parsed answer. 0, or why it failed in msg. */
static int sqs_call(struct dda_dlq *d, const char *action, json_t *req, json_t **answer,
		    char *msg, size_t cap)
{
	char target[64];
	snprintf(target, sizeof(target), "AmazonSQS.%s", action);
	const struct dda_kv hdrs[] = {
	    {"Content-Type", "application/x-amz-json-1.0"},
	    {"X-Amz-Target", target},
	};
	struct dda_error err = {0};
	long status = 0;
	*answer = NULL;
	dda_buf_reset(&d->answer);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body) {
		snprintf(msg, cap, "out of memory (or the message is not UTF-8)");
		return DDA_ENOMEM;
	}
	struct curl_slist *hl = dda__aws_api_curl_headers(
	    d->api, "POST", d->path, "", hdrs, DDA_ARRAY_SIZE(hdrs), body, strlen(body), &err);
	if (!hl) {
		free(body);
		snprintf(msg, cap, "%s", err.msg);
		return err.code ? err.code : DDA_ENOMEM;
	}
	curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	CURLcode cc = curl_easy_perform(d->easy);
	curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, NULL);
	dda__aws_api_free_headers(hl);
	free(body);
	if (cc != CURLE_OK) {
		snprintf(msg, cap, "%s", curl_easy_strerror(cc));
		return DDA_EIO;
	}
	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(msg, cap, "%s: HTTP %ld: %.300s", action, status,
			 d->answer.len ? d->answer.ptr : "");
		return DDA_EIO;
	}
	*answer = json_loadb(d->answer.ptr ? d->answer.ptr : "", d->answer.len, 0, NULL);
	return 0;
}

/* One SendMessage, its MD5 checked; 0, or why it failed in msg. */
static int sqs_send_once(struct dda_dlq *d, const char *text, size_t len, char *msg, size_t cap)
{
	json_t *ans;
	int rc = sqs_call(d, "SendMessage",
			  json_pack("{ssss%}", "QueueUrl", d->queue_url, "MessageBody", text, len),
			  &ans, msg, cap);
	if (rc)
		return rc;
	char want[33];
	md5_hex(text, len, want);
	const char *got = json_string_value(json_object_get(ans, "MD5OfMessageBody"));
	rc = got && !strcmp(got, want) ? 0 : DDA_EIO;
	if (rc)
		snprintf(msg, cap,
			 "SendMessage: MD5OfMessageBody %s does not match the message (%s)",
			 got ? got : "missing", want);
	json_decref(ans);
	return rc;
}

/* The queue must exist before anything is read; its MaximumMessageSize
 * (256 KiB by default, up to 1 MiB) bounds a message. */
static int sqs_check_queue(struct dda_dlq *d, struct dda_error *err)
{
	char msg[512];
	json_t *ans;
	int rc = sqs_call(d, "GetQueueAttributes",
			  json_pack("{sss[s]}", "QueueUrl", d->queue_url, "AttributeNames",
				    "MaximumMessageSize"),
			  &ans, msg, sizeof(msg));
	if (rc)
		return dda_error_set(err, rc, "cannot use the DLQ %s: %s", d->queue_url, msg);
	const char *max = json_string_value(
	    json_object_get(json_object_get(ans, "Attributes"), "MaximumMessageSize"));
	long long n = max ? strtoll(max, NULL, 10) : 0;
	d->max_message = n >= 1024 && n <= 16 * 1024 * 1024 ? (size_t)n : DDA_DLQ_SQS_MAX;
	json_decref(ans);
	return 0;
}

int dda__dlq_put(struct dda_dlq *d, const char *text, size_t len, struct dda_error *err)
{
	if (d->fd >= 0)
		return dda__append_line(d->fd, d->regular, text, len)
			   ? dda_error_set(err, DDA_EIO,
					   "cannot write the DLQ '%s': %s; the records of the "
					   "failed batch are not acknowledged",
					   d->spec + 5, strerror(errno))
			   : 0;
	/* A few tries, spaced out: a throttled or restarting queue is common. */
	char msg[512] = "";
	int rc = 0;
	for (int attempt = 0; attempt < 4; attempt++) {
		if (attempt)
			usleep((useconds_t)(200000u << attempt));
		rc = sqs_send_once(d, text, len, msg, sizeof(msg));
		if (!rc || rc == DDA_ENOMEM)
			break;
	}
	return rc ? dda_error_set(err, rc, "cannot send to the DLQ %s: %s", d->spec + 4, msg) : 0;
}

int dda__dlq_close(struct dda_dlq *d, struct dda_error *err)
{
	int rc = 0;
	if (!d)
		return 0;
	if (d->fd >= 0 && close(d->fd) && err)
		rc = dda_error_set(err, DDA_EIO, "cannot write the DLQ: %s", strerror(errno));
	if (d->easy)
		curl_easy_cleanup(d->easy);
	dda__aws_api_free(d->api);
	free(d->queue_url);
	free(d->url);
	free(d->path);
	dda_buf_release(&d->answer);
	free(d);
	return rc;
}
