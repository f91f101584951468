/* The signing client for AWS JSON APIs (see api.h). */
#include "aws/api.h"
#include "aws/core.h"

#include <ctype.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dda_aws_api {
	char service[32];
	struct dda_aws_endpoint ep;
	char *base; /* scheme://host[:port][/prefix] */
	char *region;
	char *profile_flag; /* --profile, or NULL: the environment's */
	struct dda_env env;
	pthread_mutex_t mu; /* creds */
	struct dda_creds creds;
	struct dda_http_opts retry; /* attempts and backoff from the AWS settings */
};

int dda__aws_api_new(struct dda_aws_api **out, const char *service, const struct dda_aws_opts *o,
		     const char *endpoint, const char *fallback, const char *region_hint,
		     const struct dda_env *env, struct dda_error *err)
{
	struct dda_aws_api *a = calloc(1, sizeof(*a));
	char id[32], url[512];
	*out = NULL;
	if (!a)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (pthread_mutex_init(&a->mu, NULL)) {
		free(a);
		return dda_error_set(err, DDA_EINTERNAL, "cannot make a mutex");
	}
	snprintf(a->service, sizeof(a->service), "%s", service);
	a->env = *env;
	if (!a->env.stop && o)
		a->env.stop = o->stop;
	const char *flag = o && o->profile && *o->profile ? o->profile : NULL;
	a->profile_flag = flag ? strdup(flag) : NULL;
	a->region = dda__aws_region(env, dda__aws_profile(env, flag), o ? o->region : NULL);
	if (!a->region)
		a->region = strdup(region_hint && *region_hint ? region_hint : "us-east-1");
	int rc = (a->profile_flag || !flag) && a->region
		     ? 0
		     : dda_error_set(err, DDA_ENOMEM, "out of memory");
	/* AWS_ENDPOINT_URL_<SERVICE>: the service id upper-cased. */
	int n = snprintf(id, sizeof(id), "%s", service);
	for (int i = 0; i < n && i < (int)sizeof(id); i++)
		id[i] = (char)toupper((unsigned char)id[i]);
	const char *ep = dda__aws_endpoint_override(env, id, endpoint);
	if (!ep || !*ep)
		ep = fallback;
	if (!ep || !*ep) {
		snprintf(url, sizeof(url), "https://%s.%s.amazonaws.com", service,
			 a->region ? a->region : "us-east-1");
		ep = url;
	}
	if (!rc)
		rc = dda__aws_endpoint_parse(ep, service, &a->ep, err);
	if (!rc) {
		size_t bl = strlen(a->ep.scheme_host) + strlen(a->ep.prefix) + 1;
		a->base = malloc(bl);
		if (a->base)
			snprintf(a->base, bl, "%s%s", a->ep.scheme_host, a->ep.prefix);
		else
			rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	dda__http_opts_default(&a->retry);
	a->retry.stop = a->env.stop;
	if (!rc)
		rc = dda__aws_retry_opts(env, dda__aws_profile(env, flag), &a->retry, err);
	if (!rc)
		rc = dda__creds_resolve(&a->env, a->profile_flag, a->region, &a->creds, err);
	if (rc) {
		dda__aws_api_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void dda__aws_api_free(struct dda_aws_api *a)
{
	if (!a)
		return;
	free(a->base);
	dda__aws_endpoint_release(&a->ep);
	free(a->region);
	free(a->profile_flag);
	dda__creds_release(&a->creds);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

const char *dda__aws_api_base(const struct dda_aws_api *a)
{
	return a->base;
}

const char *dda__aws_api_region(const struct dda_aws_api *a)
{
	return a->region;
}

const struct dda_http_opts *dda__aws_api_retry(const struct dda_aws_api *a)
{
	return &a->retry;
}

int dda__aws_api_sign(struct dda_aws_api *a, const char *method, const char *path,
		      const char *query, const struct dda_kv *extra, size_t nextra,
		      const void *body, size_t len, struct dda_buf *headers, struct dda_error *err)
{
	uint8_t digest[32];
	char hash[65];
	dda__sha256(body ? body : "", len, digest);
	dda__hex(digest, 32, hash);
	int64_t now = dda_time_now();
	struct dda_aws_sign_req sr = {method, a->ep.host, path,	      query ? query : "",
				      extra,  nextra,	  hash,	      a->region,
				      a->service, false,  now};
	pthread_mutex_lock(&a->mu);
	int rc = dda__creds_refresh(&a->env, a->profile_flag, a->region, &a->creds, now, err);
	if (!rc)
		rc = dda__aws_sign(&sr, &a->creds, headers);
	pthread_mutex_unlock(&a->mu);
	if (rc && !err->code)
		dda_error_set(err, rc, "cannot sign the %s request: %s", a->service,
			      dda_strerror(rc));
	return rc;
}

void dda__aws_api_free_headers(struct curl_slist *hl)
{
	for (struct curl_slist *h = hl; h; h = h->next)
		if (h->data)
			OPENSSL_cleanse(h->data, strlen(h->data));
	curl_slist_free_all(hl);
}

struct curl_slist *dda__aws_api_curl_headers(struct dda_aws_api *a, const char *method,
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
	if (!dda__aws_api_sign(a, method, path, query, extra, nextra, body, len, &lines, err)) {
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
	if (lines.ptr)
		OPENSSL_cleanse(lines.ptr, lines.len); /* the session token */
	dda_buf_release(&lines);
	return hl;
}
