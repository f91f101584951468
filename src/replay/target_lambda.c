/* lambda:FUNCTION[:QUALIFIER]: each batch is one synchronous Invoke
 * (RequestResponse), signed with SigV4 from the credential chain. A 2xx
 * answer without X-Amz-Function-Error is success and its payload may
 * report partial failures; a function error or any other status is a
 * failed batch. One connection per lane, kept alive. */
#include "replay/target_impl.h"
#include "aws/api.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lambda_target {
	struct dda_target base;
	struct dda_aws_api *api; /* shared by the lanes */
	CURL *easy;
	char *url, *path, *query;
	struct dda_buf answer;
	char function_error[64];
	char executed_version[64];
	char error_type[128];
	int64_t retry_after;
};

/* The value of header `name` (lower case, with its colon) in a header
 * line, copied into out; false when the line is another header. */
static bool header_value(const char *p, size_t len, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(p, name, nl))
		return false;
	const char *v = p + nl;
	size_t vl = len - nl;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	snprintf(out, cap, "%.*s", (int)vl, v);
	return true;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct lambda_target *l = ctx;
	size_t len = size * n;
	if (!header_value(p, len, "x-amz-function-error:", l->function_error,
			  sizeof(l->function_error)) &&
	    !header_value(p, len, "x-amz-executed-version:", l->executed_version,
			  sizeof(l->executed_version)) &&
	    !header_value(p, len, "x-amzn-errortype:", l->error_type, sizeof(l->error_type)))
		dda__header_retry_after(p, len, &l->retry_after);
	return len;
}

/* Lambda's answers: 429 TooManyRequestsException, 409 (the function is
 * being updated) and 503 are waited out; any other 4xx is a request that
 * cannot succeed as it is (no such function, access denied, bad
 * signature, payload too large); 5xx are the service's failures. */
static void lambda_fault(struct lambda_target *l, long status, struct dda_send_result *res)
{
	if (status == 429 || status == 409 || status == 503)
		res->fault = DDA_FAULT_THROTTLE;
	else if (status >= 400 && status < 500)
		res->fault = DDA_FAULT_CONFIG;
	else
		res->fault = DDA_FAULT_TRANSPORT;
	if (l->error_type[0]) {
		char msg[sizeof(res->msg)];
		snprintf(msg, sizeof(msg), "%s", res->msg);
		snprintf(res->msg, sizeof(res->msg), "%.100s: %.400s", l->error_type, msg);
	}
}

static int lambda_send(struct dda_target *t, const char *body, size_t len,
		       struct dda_send_result *res)
{
	struct lambda_target *l = (struct lambda_target *)t;
	struct dda_error err = {0};
	static const struct dda_kv signed_hdrs[] = {
	    {"Content-Type", "application/json"},
	    {"X-Amz-Invocation-Type", "RequestResponse"},
	};
	long status = 0;
	dda_buf_reset(&l->answer);
	l->function_error[0] = l->executed_version[0] = l->error_type[0] = '\0';
	l->retry_after = -1;
	struct curl_slist *hl =
	    dda__aws_api_curl_headers(l->api, "POST", l->path, l->query, signed_hdrs,
				     DDA_ARRAY_SIZE(signed_hdrs), body, len, &err);
	if (!hl) {
		res->outcome = DDA_SEND_FAILED;
		res->fault = DDA_FAULT_CONFIG; /* no credentials: nothing can be sent */
		snprintf(res->msg, sizeof(res->msg), "%s", err.msg);
		return 0;
	}
	curl_easy_setopt(l->easy, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(l->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(l->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode cc = curl_easy_perform(l->easy);
	curl_easy_setopt(l->easy, CURLOPT_HTTPHEADER, NULL);
	dda__aws_api_free_headers(hl);
	if (cc != CURLE_OK) {
		res->outcome = DDA_SEND_FAILED;
		res->fault = dda__curl_fault(cc);
		snprintf(res->msg, sizeof(res->msg), "%s", curl_easy_strerror(cc));
		return 0;
	}
	curl_easy_getinfo(l->easy, CURLINFO_RESPONSE_CODE, &status);
	snprintf(res->executed_version, sizeof(res->executed_version), "%s",
		 l->executed_version);
	res->retry_after = l->retry_after;
	if (l->function_error[0]) {
		res->status = status;
		/* The function failed: its payload is the error object. */
		res->outcome = DDA_SEND_FAILED;
		res->fault = DDA_FAULT_FUNCTION;
		res->function_error = true;
		snprintf(res->msg, sizeof(res->msg), "function error (%s): %.300s",
			 l->function_error, l->answer.len ? l->answer.ptr : "");
		return 0;
	}
	dda__target_http_outcome(status, &l->answer, "Invoke: HTTP", res);
	if (res->outcome == DDA_SEND_FAILED)
		lambda_fault(l, status, res);
	return 0;
}

static void lambda_free(struct dda_target *t)
{
	struct lambda_target *l = (struct lambda_target *)t;
	curl_easy_cleanup(l->easy);
	free(l->url);
	free(l->path);
	free(l->query);
	dda_buf_release(&l->answer);
	free(l);
}

/* FUNCTION[:QUALIFIER]: a name, a partial ARN (123456789012:function:f)
 * or a full ARN, which Invoke takes as they are (an ARN may hold the
 * qualifier itself); a plain name may end with :QUALIFIER. */
static int split_function(const char *spec, struct dda_buf *name, struct dda_buf *qual)
{
	const char *colon = strrchr(spec, ':');
	if (!strncmp(spec, "arn:", 4) || strstr(spec, ":function:") || !colon)
		return dda_buf_adds(name, spec);
	int rc = dda_buf_add(name, spec, (size_t)(colon - spec));
	return rc ? rc : dda_buf_adds(qual, colon + 1);
}

/* The Invoke (or GetFunction) path and query of the function, and its
 * URL: path is what is signed (with the endpoint's own path prefix). */
static int function_paths(struct dda_aws_api *api, const char *spec, const char *tail,
			  char **path_out, char **query_out, char **url_out)
{
	struct dda_buf name, qual, path, query, url;
	dda_buf_init(&name, 4096);
	dda_buf_init(&qual, 4096);
	dda_buf_init(&path, 1 << 14);
	dda_buf_init(&query, 1 << 14);
	dda_buf_init(&url, 1 << 15);
	int rc = split_function(spec + strlen("lambda:"), &name, &qual);
	const char *base = dda__aws_api_base(api);
	const char *pfx = strstr(base, "://");
	pfx = pfx ? strchr(pfx + 3, '/') : NULL;
	if (!rc)
		rc = dda_buf_addf(&path, "%s/2015-03-31/functions/", pfx ? pfx : "");
	if (!rc)
		rc = dda__uri_encode(&path, name.ptr ? name.ptr : "", name.len, false);
	if (!rc)
		rc = dda_buf_adds(&path, tail);
	if (!rc && qual.len) {
		struct dda_kv q = {"Qualifier", qual.ptr};
		rc = dda__sigv4_query(&query, &q, 1);
	}
	if (!rc)
		rc = dda_buf_addf(&url, "%.*s%s%s%s", (int)(pfx ? (size_t)(pfx - base) : strlen(base)),
				  base, path.ptr, query.len ? "?" : "", query.len ? query.ptr : "");
	if (!rc) {
		*path_out = strdup(path.ptr);
		*query_out = strdup(query.len ? query.ptr : "");
		*url_out = strdup(url.ptr);
		if (!*path_out || !*query_out || !*url_out)
			rc = DDA_ENOMEM;
	}
	dda_buf_release(&name);
	dda_buf_release(&qual);
	dda_buf_release(&path);
	dda_buf_release(&query);
	dda_buf_release(&url);
	return rc;
}

int dda__target_lambda_new(struct dda_target **out, const struct dda_target_opts *o,
			   struct dda_error *err)
{
	struct lambda_target *l = calloc(1, sizeof(*l));
	if (!l)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	l->base.send = lambda_send;
	l->base.free = lambda_free;
	l->api = o->lambda;
	dda_buf_init(&l->answer, DDA_TARGET_ANSWER_KEEP);
	int rc = function_paths(l->api, o->spec, "/invocations", &l->path, &l->query, &l->url);
	if (!rc) {
		l->easy = dda__target_curl_new(o, l->url, &l->answer);
		rc = l->easy ? 0 : DDA_ENOMEM;
	}
	if (rc) {
		lambda_free(&l->base);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	curl_easy_setopt(l->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(l->easy, CURLOPT_HEADERDATA, l);
	*out = &l->base;
	return 0;
}

/* GetFunction with the qualifier: the function exists (a missing one stops
 * the run here, not batch by batch into a DLQ), and its ARN is the one the
 * DLQ records name. A role allowed to invoke but not to read the function
 * (AccessDeniedException) is not stopped: the first Invoke will tell. */
int dda__target_lambda_preflight(const struct dda_target_opts *o, struct dda_target_info *info,
				 struct dda_error *err)
{
	struct lambda_target l;
	struct dda_send_result res;
	memset(&l, 0, sizeof(l));
	memset(&res, 0, sizeof(res));
	l.api = o->lambda;
	l.retry_after = -1;
	dda_buf_init(&l.answer, DDA_TARGET_ANSWER_KEEP);
	int rc = function_paths(l.api, o->spec, "", &l.path, &l.query, &l.url);
	struct curl_slist *hl = NULL;
	if (!rc && !(l.easy = dda__target_curl_new(o, l.url, &l.answer)))
		rc = DDA_ENOMEM;
	if (rc) {
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
		goto out;
	}
	hl = dda__aws_api_curl_headers(l.api, "GET", l.path, l.query, NULL, 0, "", 0, err);
	if (!hl) {
		rc = err->code ? err->code : DDA_ENOMEM;
		goto out;
	}
	curl_easy_setopt(l.easy, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(l.easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(l.easy, CURLOPT_HEADERDATA, &l);
	curl_easy_setopt(l.easy, CURLOPT_TIMEOUT_MS, 30000L);
	CURLcode cc = curl_easy_perform(l.easy);
	long status = 0;
	if (cc != CURLE_OK) {
		rc = dda_error_set(err, DDA_EIO, "target %s: GetFunction: %s", o->spec,
				   curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(l.easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200) {
		json_t *doc = json_loadb(l.answer.ptr ? l.answer.ptr : "", l.answer.len, 0, NULL);
		json_t *cfg = json_object_get(doc, "Configuration");
		const char *arn = json_string_value(json_object_get(cfg, "FunctionArn"));
		const char *ver = json_string_value(json_object_get(cfg, "Version"));
		if (arn)
			snprintf(info->function_arn, sizeof(info->function_arn), "%s", arn);
		if (ver)
			snprintf(info->version, sizeof(info->version), "%s", ver);
		json_decref(doc);
		goto out;
	}
	dda__target_http_outcome(status, &l.answer, "GetFunction: HTTP", &res);
	lambda_fault(&l, status, &res);
	if (res.fault == DDA_FAULT_CONFIG && strcmp(l.error_type, "AccessDeniedException"))
		rc = dda_error_set(err, DDA_EIO, "target %s: %s", o->spec, res.msg);
	else
		snprintf(info->note, sizeof(info->note),
			 "cannot check that %s exists (%.400s); the first batch will tell", o->spec,
			 res.msg);
out:
	dda__aws_api_free_headers(hl);
	if (l.easy)
		curl_easy_cleanup(l.easy);
	free(l.url);
	free(l.path);
	free(l.query);
	dda_buf_release(&l.answer);
	return rc;
}
