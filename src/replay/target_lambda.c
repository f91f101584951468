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
};

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct lambda_target *l = ctx;
	size_t len = size * n;
	static const char name[] = "x-amz-function-error:";
	if (len > sizeof(name) - 1 && !strncasecmp(p, name, sizeof(name) - 1)) {
		const char *v = p + sizeof(name) - 1;
		size_t vl = len - (sizeof(name) - 1);
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		snprintf(l->function_error, sizeof(l->function_error), "%.*s", (int)vl, v);
	}
	return len;
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
	l->function_error[0] = '\0';
	struct curl_slist *hl =
	    dda__aws_api_curl_headers(l->api, "POST", l->path, l->query, signed_hdrs,
				      DDA_ARRAY_SIZE(signed_hdrs), body, len, &err);
	if (!hl) {
		res->outcome = DDA_SEND_FAILED;
		snprintf(res->msg, sizeof(res->msg), "%s", err.msg);
		return 0;
	}
	curl_easy_setopt(l->easy, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(l->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(l->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode cc = curl_easy_perform(l->easy);
	curl_easy_setopt(l->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	if (cc != CURLE_OK) {
		res->outcome = DDA_SEND_FAILED;
		snprintf(res->msg, sizeof(res->msg), "%s", curl_easy_strerror(cc));
		return 0;
	}
	curl_easy_getinfo(l->easy, CURLINFO_RESPONSE_CODE, &status);
	if (l->function_error[0]) {
		res->status = status;
		/* The function failed: its payload is the error object. */
		res->outcome = DDA_SEND_FAILED;
		res->function_error = true;
		snprintf(res->msg, sizeof(res->msg), "function error (%s): %.300s",
			 l->function_error, l->answer.len ? l->answer.ptr : "");
		return 0;
	}
	dda__target_http_outcome(status, &l->answer, "Invoke: HTTP", res);
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

int dda__target_lambda_new(struct dda_target **out, const struct dda_target_opts *o,
			   struct dda_error *err)
{
	struct lambda_target *l = calloc(1, sizeof(*l));
	struct dda_buf name, qual, path, query, url;
	if (!l)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	l->base.send = lambda_send;
	l->base.free = lambda_free;
	l->api = o->lambda;
	dda_buf_init(&l->answer, DDA_TARGET_MAX_ANSWER);
	dda_buf_init(&name, 4096);
	dda_buf_init(&qual, 4096);
	dda_buf_init(&path, 1 << 14);
	dda_buf_init(&query, 1 << 14);
	dda_buf_init(&url, 1 << 15);
	int rc = split_function(o->spec + strlen("lambda:"), &name, &qual);
	if (!rc)
		rc = dda_buf_adds(&path, "/2015-03-31/functions/");
	if (!rc)
		rc = dda__uri_encode(&path, name.ptr ? name.ptr : "", name.len, false);
	if (!rc)
		rc = dda_buf_adds(&path, "/invocations");
	if (!rc && qual.len) {
		struct dda_kv q = {"Qualifier", qual.ptr};
		rc = dda__sigv4_query(&query, &q, 1);
	}
	if (!rc)
		rc = dda_buf_addf(&url, "%s%s%s%s", dda__aws_api_base(l->api), path.ptr,
				  query.len ? "?" : "", query.len ? query.ptr : "");
	if (!rc) { /* the path signed includes the endpoint's own path prefix */
		const char *base = dda__aws_api_base(l->api);
		const char *pfx = strstr(base, "://");
		pfx = pfx ? strchr(pfx + 3, '/') : NULL;
		size_t n = (pfx ? strlen(pfx) : 0) + path.len + 1;
		l->path = malloc(n);
		if (l->path)
			snprintf(l->path, n, "%s%s", pfx ? pfx : "", path.ptr);
		l->query = strdup(query.len ? query.ptr : "");
		l->url = strdup(url.ptr);
		l->easy = dda__target_curl_new(o, l->url, &l->answer);
		if (!l->path || !l->query || !l->url || !l->easy)
			rc = DDA_ENOMEM;
	}
	dda_buf_release(&name);
	dda_buf_release(&qual);
	dda_buf_release(&path);
	dda_buf_release(&query);
	dda_buf_release(&url);
	if (rc) {
		lambda_free(&l->base);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	curl_easy_setopt(l->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(l->easy, CURLOPT_HEADERDATA, l);
	*out = &l->base;
	return 0;
}
