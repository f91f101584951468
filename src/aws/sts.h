/* STS: the one signed POST of the query protocol that every STS call makes
 * (AssumeRole for credentials, GetCallerIdentity for the reports), and
 * GetCallerIdentity itself, which names who ran an audit. */
#ifndef DDA_AWS_STS_H
#define DDA_AWS_STS_H

#include "aws/core.h"
#include "ddbaudit/aws.h"

/* STS answers at most a few KiB. */
#define DDA_STS_ANSWER_MAX ((size_t)1 << 20)

/* One STS action, form-encoded and signed with creds (borrowed). url is the
 * endpoint, or NULL for dda__sts_url's (AWS_ENDPOINT_URL_STS,
 * AWS_ENDPOINT_URL, else the regional one). resp's body is the caller's;
 * transport failures are resp->status 0 with resp->errmsg, as
 * dda__aws_fetch gives them. */
struct dda_sts_call {
	const struct dda_env *env;
	const char *url;
	const char *region;
	const struct dda_creds *creds;
	const struct dda_kv *params; /* Action, Version and the action's own */
	size_t nparams;
	const struct dda_http_opts *opts;
};
int dda__sts_post(const struct dda_sts_call *c, struct dda_http_response *resp,
		  struct dda_error *err);

/* Who the credentials belong to, as GetCallerIdentity says. */
struct dda_sts_identity {
	char account[16]; /* twelve digits */
	char arn[2048];
	char user_id[512];
};

/* Parses a GetCallerIdentity answer (XML, DOCTYPE refused). An answer
 * without an Account of twelve digits, an Arn starting "arn:", or with a
 * control character in a value is DDA_EFORMAT, *out left empty: what the
 * report prints as the caller must be what STS said, whole. */
int dda__sts_parse_identity(const char *xml, size_t n, struct dda_sts_identity *out,
			    struct dda_error *err);

/* The caller's identity never holds a run up for long: one attempt, a
 * connection within 2 s, the answer within 4 s. */
#define DDA_STS_IDENTITY_CONNECT_MS 2000
#define DDA_STS_IDENTITY_TIMEOUT_MS 4000

/* GetCallerIdentity with the credentials an AWS client with options o
 * would use. With local (a source that made no AWS call), only credentials
 * that resolve without the network are used (the environment, then the
 * profile's static keys): none is 1, "not asked". The endpoint is
 * AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else o->endpoint_url (an
 * S3-compatible server answers for its own accounts), else the regional
 * one. Honours o->stop. 0 with *out filled, 1, or an error whose message
 * (in err) says why the identity is unknown. */
int dda__sts_caller_identity(const struct dda_aws_opts *o, bool local, struct dda_sts_identity *out,
			     struct dda_error *err);

#endif
