/* Credential providers that ask a server: web identity (STS
 * AssumeRoleWithWebIdentity), the container credentials endpoint (ECS,
 * EKS Pod Identity) and EC2 instance metadata (IMDSv2). Each makes its own
 * short-lived HTTP engine with tight timeouts, so a machine without the
 * service fails over in about a second. */
#include "aws/creds.h"
#include "aws/core.h"
#include "aws/s3.h"
#include "util/log.h"
#include "aws/s3_xml.h"
#include "aws/sigv4.h"
#include "net/http.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>

#define IMDS_DEFAULT "http://169.254.169.254"
#define CONTAINER_HOST "http://169.254.170.2"
#define ANSWER_MAX ((size_t)1 << 20)

const char *const dda__provider_web_identity = "web identity (STS AssumeRoleWithWebIdentity)";
const char *const dda__provider_container = "container credentials endpoint";
const char *const dda__provider_imds = "EC2 instance metadata (IMDSv2)";
const char *const dda__provider_imds_v1 = "EC2 instance metadata (IMDSv1)";

static const char *env_get(const struct dda_env *env, const char *name)
{
	const char *v = env->get(env->ctx, name);
	return v && *v ? v : NULL;
}

/* ---- one request, synchronously ---- */

struct call {
	struct dda_http_response resp;
	volatile int *stop; /* the run's, from the environment */
};

/* Makes one request (with `attempts` tries) and waits for its answer. The
 * caller releases c->resp.body. Transport failures come back as status 0. */
static int fetch(struct call *c, const char *method, const char *url, const char *headers,
		 dda_slice body, int attempts, long timeout_ms, struct dda_error *err)
{
	struct dda_http_opts o;
	dda__http_opts_default(&o);
	o.concurrency = 1;
	o.max_attempts = attempts;
	o.connect_timeout_ms = timeout_ms;
	o.timeout_ms = 4 * timeout_ms;
	o.backoff_base = 50 * 1000;
	o.stop = c->stop;
	struct dda_aws_fetch f = {method, url, headers, body, &o, ANSWER_MAX};
	return dda__aws_fetch(&f, &c->resp, err);
}

static void wipe_body(struct dda_buf *b)
{
	dda__aws_wipe_buf(b);
}

/* Fills out from the four values every provider answers with. */
static int take_creds(struct dda_creds *out, const char *ak, const char *sk, const char *token,
		      const char *expiration, const char *provider, struct dda_error *err)
{
	if (!ak || !*ak || !sk || !*sk)
		return dda_error_set(err, DDA_EFORMAT, "the %s answered without credentials",
				     provider);
	memset(out, 0, sizeof(*out));
	out->provider = provider;
	out->expiration = DDA_TIME_NONE;
	if (expiration && *expiration &&
	    dda_time_parse(expiration, strlen(expiration), &out->expiration))
		return dda_error_set(err, DDA_EFORMAT,
				     "the %s answered with an unreadable Expiration", provider);
	out->access_key = strdup(ak);
	out->secret_key = strdup(sk);
	out->session_token = token && *token ? strdup(token) : NULL;
	if (!out->access_key || !out->secret_key || (token && *token && !out->session_token)) {
		dda__creds_release(out);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	return 0;
}

/* The four values from a JSON answer (container endpoint, IMDS). */
int dda__creds_parse_json(const char *body, size_t n, const char *provider, struct dda_creds *out,
			  struct dda_error *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return dda_error_set(err, DDA_EFORMAT, "the %s answered with something not JSON",
				     provider);
	}
	int rc = take_creds(out, json_string_value(json_object_get(j, "AccessKeyId")),
			    json_string_value(json_object_get(j, "SecretAccessKey")),
			    json_string_value(json_object_get(j, "Token")),
			    json_string_value(json_object_get(j, "Expiration")), provider, err);
	/* The secret's copy inside the tree goes when the tree goes. */
	json_t *s = json_object_get(j, "SecretAccessKey");
	if (json_is_string(s))
		OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
	s = json_object_get(j, "Token");
	if (json_is_string(s))
		OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
	json_decref(j);
	return rc;
}

/* The four values from an AssumeRole* answer (STS's XML). */
int dda__creds_parse_sts(const char *body, size_t n, const char *provider, struct dda_creds *out,
			 struct dda_error *err)
{
	static const char *const names[] = {"AccessKeyId", "SecretAccessKey", "SessionToken",
					    "Expiration"};
	char v[4][2048];
	int rc = 0;
	for (size_t i = 0; !rc && i < DDA_ARRAY_SIZE(names); i++)
		rc = dda__s3_parse_value(body, n, names[i], v[i], sizeof(v[i]), err);
	if (!rc)
		rc = take_creds(out, v[0], v[1], v[2], v[3], provider, err);
	OPENSSL_cleanse(v, sizeof(v));
	return rc;
}

/* Reads a small token file, trimmed. Returns a new string or NULL. */
static char *read_token(const char *path, struct dda_error *err, const char *what)
{
	FILE *f = fopen(path, "rb");
	struct dda_buf b;
	dda_buf_init(&b, 64 << 10);
	if (!f) {
		dda_error_set(err, DDA_EAUTH, "cannot read the %s '%s': %s", what, path,
			      strerror(errno));
		return NULL;
	}
	char chunk[4096];
	size_t n;
	int rc = 0;
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = dda_buf_add(&b, chunk, n);
	fclose(f);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r' ||
			 b.ptr[b.len - 1] == ' '))
		b.ptr[--b.len] = '\0';
	if (rc || !b.len) {
		dda_error_set(err, DDA_EAUTH, "the %s '%s' is %s", what, path,
			      rc ? "too large" : "empty");
		wipe_body(&b);
		return NULL;
	}
	return dda_buf_take(&b, NULL);
}

/* ---- web identity ---- */

int dda__sts_url(const struct dda_env *env, const char *region, struct dda_buf *url)
{
	const char *ep = dda__aws_endpoint_override(env, "STS", NULL);
	size_t n = ep ? strlen(ep) : 0;
	while (n && ep[n - 1] == '/')
		n--;
	return ep ? dda_buf_addf(url, "%.*s/", (int)n, ep)
		  : dda_buf_addf(url, "https://sts.%s.amazonaws.com/",
				 region ? region : "us-east-1");
}

/* AssumeRoleWithWebIdentity: unsigned, the token is the proof. */
static int assume_role(const struct dda_env *env, const char *file, const char *arn,
		       const char *name, const char *region, struct dda_creds *out,
		       struct dda_error *err)
{
	char *token = read_token(file, err, "web identity token file");
	if (!token)
		return DDA_EAUTH;
	dda__secret_add(token);
	struct dda_buf url, body;
	struct call c = {.stop = env->stop};
	char session[64];
	dda_buf_init(&url, 8192);
	dda_buf_init(&body, 256 << 10);
	snprintf(session, sizeof(session), "ddbaudit-%lld",
		 (long long)(dda_time_now() / DDA_USEC_PER_SEC));
	int rc = dda__sts_url(env, region, &url);
	struct dda_kv q[] = {{"Action", "AssumeRoleWithWebIdentity"},
			     {"RoleArn", arn},
			     {"RoleSessionName", name ? name : session},
			     {"Version", "2011-06-15"},
			     {"WebIdentityToken", token}};
	if (!rc)
		rc = dda__sigv4_query(&body, q, DDA_ARRAY_SIZE(q));
	if (!rc)
		rc = fetch(&c, "POST", url.ptr,
			   "Content-Type: application/x-www-form-urlencoded; charset=utf-8\n",
			   (dda_slice){body.ptr, body.len}, 3, 5000, err);
	if (!rc && c.resp.status != 200) {
		char why[512];
		dda__s3_describe(&c.resp, why, sizeof(why));
		rc = dda_error_set(err, DDA_EAUTH,
				   "web identity: STS AssumeRoleWithWebIdentity for role '%s' "
				   "failed: %s",
				   arn, why);
	} else if (!rc) {
		rc = dda__creds_parse_sts(c.resp.body.ptr, c.resp.body.len,
					  dda__provider_web_identity, out, err);
	}
	wipe_body(&c.resp.body);
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	wipe_body(&body);
	dda_buf_release(&url);
	return rc;
}

int dda__creds_web_identity(const struct dda_env *env, const char *profile, const char *region,
			    bool use_env, struct dda_creds *out, struct dda_error *err)
{
	const char *file = use_env ? env_get(env, "AWS_WEB_IDENTITY_TOKEN_FILE") : NULL;
	const char *arn = use_env ? env_get(env, "AWS_ROLE_ARN") : NULL;
	const char *name = use_env ? env_get(env, "AWS_ROLE_SESSION_NAME") : NULL;
	if (file && arn)
		return assume_role(env, file, arn, name, region, out, err);
	/* The profile's settings, as a set: both or neither. */
	char *pfile =
	    dda__aws_profile_get(env, profile, "web_identity_token_file", DDA_PROFILE_ANY);
	char *parn = dda__aws_profile_get(env, profile, "role_arn", DDA_PROFILE_ANY);
	char *pname = dda__aws_profile_get(env, profile, "role_session_name", DDA_PROFILE_ANY);
	int rc = pfile && parn ? assume_role(env, pfile, parn, name ? name : pname, region, out, err)
			       : 1;
	free(pfile);
	free(parn);
	free(pname);
	return rc;
}

int dda__creds_from_web_identity(const struct dda_env *env, const char *profile, const char *region,
				 struct dda_creds *out, struct dda_error *err)
{
	return dda__creds_web_identity(env, profile, region, true, out, err);
}

/* ---- container credentials ---- */

/* The SDKs accept a full URI only over https or to a loopback or the
 * container agents' link-local addresses. */
static bool full_uri_allowed(const char *uri)
{
	static const char *const hosts[] = {"127.", "localhost", "[::1]", "169.254.170.2",
					    "169.254.170.23", "[fd00:ec2::23]"};
	if (!strncmp(uri, "https://", 8))
		return true;
	if (strncmp(uri, "http://", 7))
		return false;
	const char *h = uri + 7;
	for (size_t i = 0; i < DDA_ARRAY_SIZE(hosts); i++) {
		size_t n = strlen(hosts[i]);
		if (!strncmp(h, hosts[i], n) &&
		    (hosts[i][n - 1] == '.' || h[n] == '\0' || h[n] == ':' || h[n] == '/'))
			return true;
	}
	return false;
}

int dda__creds_from_container(const struct dda_env *env, struct dda_creds *out,
			      struct dda_error *err)
{
	const char *rel = env_get(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_get(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	if (!rel && !full)
		return 1;
	if (!rel && !full_uri_allowed(full))
		return dda_error_set(err, DDA_EAUTH,
				     "AWS_CONTAINER_CREDENTIALS_FULL_URI must use https or a "
				     "loopback or container-agent address");
	struct dda_buf url, hdr;
	dda_buf_init(&url, 8192);
	dda_buf_init(&hdr, 64 << 10);
	int rc = rel ? dda_buf_addf(&url, "%s%s", CONTAINER_HOST, rel) : dda_buf_adds(&url, full);
	const char *tfile = env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *ftok = NULL;
	if (!rc && tfile) {
		ftok = read_token(tfile, err, "container authorization token file");
		rc = ftok ? 0 : DDA_EAUTH;
		tok = ftok;
	}
	dda__secret_add(tok);
	if (!rc && tok) {
		if (strpbrk(tok, "\r\n"))
			rc = dda_error_set(err, DDA_EAUTH,
					   "the container authorization token has a line break");
		else
			rc = dda_buf_addf(&hdr, "Authorization: %s\n", tok);
	}
	struct call c = {.stop = env->stop};
	if (!rc)
		rc = fetch(&c, "GET", url.ptr, hdr.ptr, (dda_slice){NULL, 0}, 3, 2000, err);
	if (!rc && c.resp.status != 200) {
		char why[512];
		dda__s3_describe(&c.resp, why, sizeof(why));
		rc = dda_error_set(err, DDA_EAUTH, "the container credentials endpoint failed: %s",
				   why);
	} else if (!rc) {
		rc = dda__creds_parse_json(c.resp.body.ptr, c.resp.body.len, dda__provider_container,
					   out, err);
	}
	wipe_body(&c.resp.body);
	wipe_body(&hdr);
	if (ftok)
		OPENSSL_cleanse(ftok, strlen(ftok));
	free(ftok);
	dda_buf_release(&url);
	return rc;
}

/* ---- EC2 instance metadata ---- */

/* botocore's defaults: one attempt, one second (AWS_METADATA_SERVICE_*). */
static void imds_limits(const struct dda_env *env, int *attempts, long *timeout_ms)
{
	const char *a = env_get(env, "AWS_METADATA_SERVICE_NUM_ATTEMPTS");
	const char *t = env_get(env, "AWS_METADATA_SERVICE_TIMEOUT");
	long v;
	char *end;
	*attempts = 1;
	*timeout_ms = 1000;
	if (a && (v = strtol(a, &end, 10)) >= 1 && !*end && v <= DDA_AWS_MAX_ATTEMPTS_LIMIT)
		*attempts = (int)v;
	if (t && (v = strtol(t, &end, 10)) >= 1 && !*end && v <= 60)
		*timeout_ms = v * 1000;
}

static bool truthy(const char *v)
{
	return v && !strcasecmp(v, "true");
}

/* The session token, as botocore's IMDSFetcher gets it: 0 with the header
 * line in hdr, 1 for "go on with IMDSv1" (refused with 403/404/405, timed
 * out, unreachable, any other status), or an error (400: a bad request is
 * not something v1 would mend). */
static int imds_token(const struct dda_env *env, const char *base, size_t bl, int attempts,
		      long tmo, struct dda_buf *hdr, struct dda_error *err)
{
	struct dda_buf url;
	struct call c = {.stop = env->stop};
	dda_buf_init(&url, 8192);
	int rc = dda_buf_addf(&url, "%.*s/latest/api/token", (int)bl, base);
	if (!rc)
		rc = fetch(&c, "PUT", url.ptr, "X-aws-ec2-metadata-token-ttl-seconds: 21600\n",
			   (dda_slice){NULL, 0}, attempts, tmo, err);
	if (!rc && c.resp.status == 400)
		rc = dda_error_set(err, DDA_EAUTH,
				   "EC2 instance metadata: the token request was refused as a bad "
				   "request (HTTP 400)");
	else if (!rc && c.resp.status != 200)
		rc = 1;
	if (!rc) {
		const char *t = c.resp.body.ptr ? c.resp.body.ptr : "";
		rc = dda_buf_addf(hdr, "X-aws-ec2-metadata-token: %.*s\n",
				  (int)strcspn(t, "\r\n"), t);
		dda__secret_add(t);
	}
	wipe_body(&c.resp.body);
	dda_buf_release(&url);
	return rc;
}

int dda__creds_from_imds(const struct dda_env *env, const char *profile, struct dda_creds *out,
			 struct dda_error *err)
{
	if (truthy(env_get(env, "AWS_EC2_METADATA_DISABLED")))
		return 1;
	const char *base = env_get(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
	if (!base)
		base = IMDS_DEFAULT;
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	int attempts;
	long tmo;
	imds_limits(env, &attempts, &tmo);
	struct dda_buf url, hdr;
	struct call c = {.stop = env->stop};
	char role[256] = "";
	const char *provider = dda__provider_imds;
	dda_buf_init(&url, 8192);
	dda_buf_init(&hdr, 8192);
	/* 1: a session token, or IMDSv1 where botocore would fall back. */
	int rc = imds_token(env, base, bl, attempts, tmo, &hdr, err);
	if (rc == 1) {
		char *off = profile ? dda__aws_profile_get(env, profile, "ec2_metadata_v1_disabled",
							   DDA_PROFILE_CONFIG)
				    : NULL;
		bool v1_off = truthy(env_get(env, "AWS_EC2_METADATA_V1_DISABLED")) || truthy(off);
		free(off);
		if (v1_off) {
			rc = dda_error_set(err, DDA_EAUTH,
					   "EC2 instance metadata: no IMDSv2 token, and IMDSv1 is "
					   "disabled (AWS_EC2_METADATA_V1_DISABLED or "
					   "ec2_metadata_v1_disabled)");
			goto out;
		}
		provider = dda__provider_imds_v1;
		rc = 0;
	}
	/* 2: the role attached to the instance. Unreachable here means "not
	 * on EC2": next provider. */
	if (!rc)
		rc = dda_buf_addf(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)bl,
				  base);
	if (!rc)
		rc = fetch(&c, "GET", url.ptr, hdr.ptr, (dda_slice){NULL, 0}, attempts, tmo, err);
	if (!rc && c.resp.status == 0) {
		rc = 1;
		goto out;
	}
	if (!rc && c.resp.status == 404) {
		rc = dda_error_set(err, DDA_EAUTH,
				   "EC2 instance metadata: the instance has no IAM role");
	} else if (!rc && c.resp.status != 200) {
		char why[512];
		dda__s3_describe(&c.resp, why, sizeof(why));
		rc = dda_error_set(err, DDA_EAUTH, "EC2 instance metadata: %s", why);
	}
	if (!rc)
		snprintf(role, sizeof(role), "%.*s",
			 (int)strcspn(c.resp.body.ptr ? c.resp.body.ptr : "", "\r\n"),
			 c.resp.body.ptr ? c.resp.body.ptr : "");
	dda_buf_release(&c.resp.body);
	if (!rc && (!role[0] || strchr(role, '/')))
		rc = dda_error_set(err, DDA_EFORMAT, "EC2 instance metadata: no usable role name");
	/* 3: the role's credentials. */
	dda_buf_reset(&url);
	if (!rc)
		rc = dda_buf_addf(&url, "%.*s/latest/meta-data/iam/security-credentials/%s",
				  (int)bl, base, role);
	if (!rc)
		rc = fetch(&c, "GET", url.ptr, hdr.ptr, (dda_slice){NULL, 0}, attempts, tmo, err);
	if (!rc && c.resp.status != 200) {
		char why[512];
		dda__s3_describe(&c.resp, why, sizeof(why));
		rc = dda_error_set(err, DDA_EAUTH, "EC2 instance metadata: role '%s': %s", role,
				   why);
	} else if (!rc) {
		rc = dda__creds_parse_json(c.resp.body.ptr, c.resp.body.len, provider, out, err);
	}
out:
	wipe_body(&c.resp.body);
	wipe_body(&hdr);
	dda_buf_release(&url);
	return rc;
}
