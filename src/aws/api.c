/* The signing client for AWS JSON APIs (see api.h). */
#include "aws/api.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dda_aws_api {
	char service[32];
	char *base; /* scheme://host[:port][/prefix] */
	char *host; /* Host header */
	char *prefix;
	char *region;
	char *profile;
	struct dda_env env;
	pthread_mutex_t mu; /* creds */
	struct dda_creds creds;
};

static int split_endpoint(struct dda_aws_api *a, const char *url, struct dda_error *err)
{
	const char *p = strstr(url, "://");
	if (!p || p == url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
		return dda_error_set(err, DDA_EINVAL,
				     "invalid %s endpoint '%s' (expected http(s)://host[:port])",
				     a->service, url);
	const char *host = p + 3, *slash = strchr(host, '/');
	size_t hlen = slash ? (size_t)(slash - host) : strlen(host);
	if (!hlen)
		return dda_error_set(err, DDA_EINVAL, "invalid %s endpoint '%s' (no host)",
				     a->service, url);
	a->host = strndup(host, hlen);
	a->prefix = strdup(slash ? slash : "");
	size_t pl = a->prefix ? strlen(a->prefix) : 0;
	while (pl && a->prefix[pl - 1] == '/')
		a->prefix[--pl] = '\0';
	if (a->host && a->prefix) {
		size_t n = (size_t)(host - url) + hlen + pl + 1;
		a->base = malloc(n);
		if (a->base)
			snprintf(a->base, n, "%.*s%s", (int)((size_t)(host - url) + hlen), url,
				 a->prefix);
	}
	return a->base ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
}

int dda_aws_api_new(struct dda_aws_api **out, const char *service, const struct dda_aws_opts *o,
		    const char *endpoint, const char *fallback, const char *region_hint,
		    const struct dda_env *env, struct dda_error *err)
{
	struct dda_aws_api *a = calloc(1, sizeof(*a));
	char var[64], url[512];
	*out = NULL;
	if (!a)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	pthread_mutex_init(&a->mu, NULL);
	snprintf(a->service, sizeof(a->service), "%s", service);
	a->env = *env;
	a->profile = strdup(dda_aws_profile(env, o ? o->profile : NULL));
	a->region = dda_aws_region(env, a->profile ? a->profile : "default", o ? o->region : NULL);
	if (!a->region)
		a->region = strdup(region_hint && *region_hint ? region_hint : "us-east-1");
	int rc = a->profile && a->region ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	/* AWS_ENDPOINT_URL_<SERVICE>: the service id upper-cased. */
	int n = snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", service);
	for (int i = 0; i < n; i++)
		var[i] = (char)toupper((unsigned char)var[i]);
	const char *ep = endpoint && *endpoint ? endpoint : env->get(env->ctx, var);
	if (!ep || !*ep)
		ep = env->get(env->ctx, "AWS_ENDPOINT_URL");
	if (!ep || !*ep)
		ep = fallback;
	if (!ep || !*ep) {
		snprintf(url, sizeof(url), "https://%s.%s.amazonaws.com", service,
			 a->region ? a->region : "us-east-1");
		ep = url;
	}
	if (!rc)
		rc = split_endpoint(a, ep, err);
	if (!rc)
		rc = dda_creds_resolve(env, a->profile, a->region, &a->creds, err);
	if (rc) {
		dda_aws_api_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void dda_aws_api_free(struct dda_aws_api *a)
{
	if (!a)
		return;
	free(a->base);
	free(a->host);
	free(a->prefix);
	free(a->region);
	free(a->profile);
	dda_creds_release(&a->creds);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

const char *dda_aws_api_base(const struct dda_aws_api *a)
{
	return a->base;
}

const char *dda_aws_api_region(const struct dda_aws_api *a)
{
	return a->region;
}

int dda_aws_api_sign(struct dda_aws_api *a, const char *method, const char *path, const char *query,
		     const struct dda_kv *extra, size_t nextra, const void *body, size_t len,
		     struct dda_buf *headers, struct dda_error *err)
{
	uint8_t digest[32];
	char hash[65], date[17];
	struct dda_kv h[16];
	size_t nh = 0;
	if (nextra > DDA_ARRAY_SIZE(h) - 2)
		return dda_error_set(err, DDA_EINVAL, "too many headers to sign");
	dda__sha256(body ? body : "", len, digest);
	dda__hex(digest, 32, hash);
	int64_t now = dda_time_now();
	dda_amz_date(now, date);
	pthread_mutex_lock(&a->mu);
	int rc = dda_creds_refresh(&a->env, a->profile, a->region, &a->creds, now, err);
	for (size_t i = 0; i < nextra; i++)
		h[nh++] = extra[i];
	h[nh++] = (struct dda_kv){"x-amz-date", date};
	if (a->creds.session_token)
		h[nh++] = (struct dda_kv){"x-amz-security-token", a->creds.session_token};
	struct dda_sigv4_request sr = {method,	   a->host, path, query ? query : "",
				       h,	   nh,	    hash, a->region,
				       a->service, date,    false};
	if (!rc)
		rc = dda_buf_addf(headers, "Host: %s\nX-Amz-Date: %s\n", a->host, date);
	if (!rc && a->creds.session_token)
		rc = dda_buf_addf(headers, "X-Amz-Security-Token: %s\n", a->creds.session_token);
	if (!rc)
		rc = dda_buf_adds(headers, "Authorization: ");
	if (!rc)
		rc = dda_sigv4_sign(&sr, a->creds.access_key, a->creds.secret_key, headers, NULL);
	if (!rc)
		rc = dda_buf_addc(headers, '\n');
	pthread_mutex_unlock(&a->mu);
	if (rc && !err->code)
		dda_error_set(err, rc, "cannot sign the %s request: %s", a->service,
			      dda_strerror(rc));
	return rc;
}

struct curl_slist *dda_aws_api_curl_headers(struct dda_aws_api *a, const char *method,
					    const char *path, const char *query,
					    const struct dda_kv *extra, size_t nextra,
					    const void *body, size_t len, struct dda_error *err)
{
	struct dda_buf lines;
	dda_buf_init(&lines, 1 << 16);
	for (size_t i = 0; i < nextra; i++)
		if (dda_buf_addf(&lines, "%s: %s\n", extra[i].name, extra[i].value))
			break;
	struct curl_slist *hl = NULL;
	if (!dda_aws_api_sign(a, method, path, query, extra, nextra, body, len, &lines, err)) {
		hl = curl_slist_append(NULL, "Expect:");
		for (char *s = lines.ptr, *nl; hl && s && (nl = strchr(s, '\n')); s = nl + 1) {
			*nl = '\0';
			struct curl_slist *more = curl_slist_append(hl, s);
			if (!more)
				curl_slist_free_all(hl);
			hl = more;
		}
		if (!hl)
			dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	dda_buf_release(&lines);
	return hl;
}
