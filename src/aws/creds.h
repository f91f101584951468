/* AWS credentials and settings, found as the AWS SDKs and CLI find them:
 * explicit values, then the environment, then the shared credentials and
 * config files for the profile; web identity, container and instance
 * metadata providers join the chain with the HTTP layer. The environment is
 * read through a callback so that tests (and embedders) supply their own. */
#ifndef DDA_CREDS_H
#define DDA_CREDS_H

#include <stdbool.h>
#include "util/util.h"

/* Looks up an environment variable; NULL when unset. */
typedef const char *(*dda_getenv_fn)(void *ctx, const char *name);
/* The process environment. */
const char *dda_process_env(void *ctx, const char *name);

struct dda_env {
	dda_getenv_fn get;
	void *ctx;
};

/* A set of credentials. Strings are owned; release wipes the secrets. */
struct dda_creds {
	char *access_key;
	char *secret_key;
	char *session_token;  /* or NULL */
	int64_t expiration;   /* DDA_TIME_NONE for long-term credentials */
	const char *provider; /* static string naming where they came from */
};

void dda_creds_release(struct dda_creds *c);

/* Each provider returns 0 with *out filled, 1 when it is not configured
 * (try the next one), or a negative error (detail in err) when it is
 * configured but broken: the chain stops there, as the SDKs do. */
int dda_creds_from_env(const struct dda_env *env, struct dda_creds *out, struct dda_error *err);
int dda_creds_from_profile(const struct dda_env *env, const char *profile, struct dda_creds *out,
			   struct dda_error *err);

/* Providers that ask a server (creds_remote.c). Web identity reads
 * AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (or the profile's
 * web_identity_token_file + role_arn) and calls STS AssumeRoleWithWebIdentity
 * (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL, else the regional endpoint);
 * container reads AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE); IMDS is IMDSv2 at
 * AWS_EC2_METADATA_SERVICE_ENDPOINT unless AWS_EC2_METADATA_DISABLED=true
 * (unreachable means "not configured"). */
int dda_creds_from_web_identity(const struct dda_env *env, const char *profile,
				const char *region, struct dda_creds *out, struct dda_error *err);
int dda_creds_from_container(const struct dda_env *env, struct dda_creds *out,
			     struct dda_error *err);
int dda_creds_from_imds(const struct dda_env *env, struct dda_creds *out, struct dda_error *err);

/* Answers of those servers (exposed for tests and fuzzing). */
int dda_creds_parse_json(const char *body, size_t n, const char *provider, struct dda_creds *out,
			 struct dda_error *err);
int dda_creds_parse_sts(const char *body, size_t n, struct dda_creds *out, struct dda_error *err);

extern const char *const dda_provider_web_identity;
extern const char *const dda_provider_container;
extern const char *const dda_provider_imds;

/* The whole chain in the SDKs' order: environment, shared credentials and
 * config files, web identity, container, instance metadata. Returns 0, or
 * DDA_EINVAL naming every provider tried when none is configured, or the
 * first configured provider's failure. */
int dda_creds_resolve(const struct dda_env *env, const char *profile, const char *region,
		      struct dda_creds *out, struct dda_error *err);

/* Temporary credentials within this long of their expiration are renewed
 * before the next request is signed (the SDKs allow 5 to 15 minutes). */
#define DDA_CREDS_REFRESH_BEFORE (5 * 60 * DDA_USEC_PER_SEC)

/* Renews c from the provider that supplied it when it expires within
 * DDA_CREDS_REFRESH_BEFORE of now. Returns 0 (c unchanged when no renewal
 * was due or the renewal failed while c is still valid), or an error when c
 * has expired and cannot be renewed. */
int dda_creds_refresh(const struct dda_env *env, const char *profile, const char *region,
		      struct dda_creds *c, int64_t now, struct dda_error *err);

/* The profile in effect: the flag, else AWS_PROFILE, else "default". */
const char *dda_aws_profile(const struct dda_env *env, const char *flag);

/* The region: the flag, AWS_REGION, AWS_DEFAULT_REGION, the profile's region
 * in the config file. Returns a new string, or NULL when none is set. */
char *dda_aws_region(const struct dda_env *env, const char *profile, const char *flag);

/* A value of a profile's section in an INI file (the config file names
 * sections "profile NAME" except "default"; the credentials file "NAME").
 * Returns a new string or NULL. Nested settings (indented under a key with
 * no value) are not values of the profile. */
char *dda_ini_get(const char *path, const char *section, const char *key);

/* The shared files' paths: AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE,
 * else ~/.aws/credentials and ~/.aws/config. New strings, or NULL. */
char *dda_aws_credentials_file(const struct dda_env *env);
char *dda_aws_config_file(const struct dda_env *env);

#endif
