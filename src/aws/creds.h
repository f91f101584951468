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
const char *dda__process_env(void *ctx, const char *name);

struct dda_env {
	dda_getenv_fn get;
	void *ctx;
	/* The run's stop flag, or NULL: requests made for credentials (STS,
	 * SSO, the container endpoint, instance metadata) end when it is set.
	 * Borrowed. */
	volatile int *stop;
};

/* A set of credentials. Strings are owned; release wipes the secrets. */
struct dda_creds {
	char *access_key;
	char *secret_key;
	char *session_token;  /* or NULL */
	int64_t expiration;   /* DDA_TIME_NONE for long-term credentials */
	const char *provider; /* static string naming where they came from */
};

void dda__creds_release(struct dda_creds *c);
/* Registers c's secret key and session token as secrets no message may
 * show (see dda__redact). */
void dda__creds_register(const struct dda_creds *c);

/* Each provider returns 0 with *out filled, 1 when it is not configured
 * (try the next one), or a negative error (detail in err) when it is
 * configured but broken: the chain stops there, as the SDKs do. */
int dda__creds_from_env(const struct dda_env *env, struct dda_creds *out, struct dda_error *err);
int dda__creds_from_profile(const struct dda_env *env, const char *profile, struct dda_creds *out,
			    struct dda_error *err);

/* Providers that ask a server (creds_remote.c). Web identity reads
 * AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (or the profile's
 * web_identity_token_file + role_arn) and calls STS AssumeRoleWithWebIdentity
 * (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL, else the regional endpoint);
 * container reads AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE); IMDS is IMDSv2 at
 * AWS_EC2_METADATA_SERVICE_ENDPOINT unless AWS_EC2_METADATA_DISABLED=true,
 * falling back to IMDSv1 as botocore does when the token PUT is refused
 * (403, 404, 405), times out or cannot connect; a 400 is an error, and so
 * is any fallback when AWS_EC2_METADATA_V1_DISABLED / the profile's
 * ec2_metadata_v1_disabled is true (unreachable means "not configured"). */
int dda__creds_from_web_identity(const struct dda_env *env, const char *profile, const char *region,
				 struct dda_creds *out, struct dda_error *err);
int dda__creds_from_container(const struct dda_env *env, struct dda_creds *out,
			      struct dda_error *err);
int dda__creds_from_imds(const struct dda_env *env, const char *profile, struct dda_creds *out,
			 struct dda_error *err);

/* Web identity from the profile alone when use_env is false (a source
 * profile's chain reads no environment, as botocore's does). */
int dda__creds_web_identity(const struct dda_env *env, const char *profile, const char *region,
			    bool use_env, struct dda_creds *out, struct dda_error *err);
/* STS's URL ("https://sts.REGION.amazonaws.com/" or the override). */
int dda__sts_url(const struct dda_env *env, const char *region, struct dda_buf *url);

/* A profile with role_arn (and no web_identity_token_file): STS AssumeRole
 * with credentials from its source_profile (chained through any number of
 * profiles, at most DDA_CREDS_MAX_HOPS) or its credential_source
 * (Environment, Ec2InstanceMetadata, EcsContainer), passing external_id,
 * role_session_name (default "botocore-session-<unix seconds>", as the CLI
 * names it) and duration_seconds. mfa_serial is refused: there is no
 * terminal to ask for a code. Returns 1 when the profile has no role_arn. */
int dda__creds_assume_role(const struct dda_env *env, const char *profile, const char *region,
			   struct dda_creds *out, struct dda_error *err);
#define DDA_CREDS_MAX_HOPS 16

/* credential_process (creds_process.c): the command split into words as
 * botocore splits it (POSIX shell quoting, no shell), run with its stderr
 * passed through; stdout is the JSON answer (Version 1). A failure is an
 * error naming the profile. Output over 64 KiB or a run over 60 s fails. */
int dda__creds_from_process(const struct dda_env *env, const char *profile, struct dda_creds *out,
			    struct dda_error *err);
#define DDA_CREDS_PROCESS_MAX_OUTPUT ((size_t)64 << 10)
#define DDA_CREDS_PROCESS_TIMEOUT_MS 60000
/* Splits cmd into words as POSIX shlex does (quotes, backslashes, no
 * expansion). Returns a new NULL-terminated vector (free each, then it),
 * or NULL with err set for an unterminated quote or too many words. */
char **dda__shell_split(const char *cmd, struct dda_error *err);
void dda__argv_free(char **argv);
/* Runs argv (PATH searched, no shell) in a process group of its own,
 * collecting its stdout into out (bounded by out's maximum) for at most
 * timeout_ms; past either, the whole group is killed and an error naming
 * the profile returned. 0 with *status the wait status otherwise. */
int dda__creds_process_run(const char *profile, char **argv, long timeout_ms, struct dda_buf *out,
			   int *status, struct dda_error *err);
int dda__creds_parse_process(const char *body, size_t n, struct dda_creds *out,
			     struct dda_error *err);

/* SSO profiles (creds_sso.c): sso_session (with its [sso-session NAME]
 * section) or the legacy sso_start_url form, plus sso_account_id and
 * sso_role_name. The cached token is ~/.aws/sso/cache/<sha1>.json (sha1 of
 * the session name, or of the start URL for the legacy form); an expired
 * or missing token asks for `aws sso login`. Then SSO GetRoleCredentials at
 * AWS_ENDPOINT_URL_SSO, else https://portal.sso.REGION.amazonaws.com.
 * Returns 1 when the profile is not an SSO profile. */
int dda__creds_from_sso(const struct dda_env *env, const char *profile, struct dda_creds *out,
			struct dda_error *err);
/* The token of a cache file ("accessToken", "expiresAt"); now in usec. */
int dda__sso_parse_token(const char *body, size_t n, int64_t now, char **token,
			 struct dda_error *err);
/* GetRoleCredentials' answer ("roleCredentials", expiration in ms). */
int dda__creds_parse_sso(const char *body, size_t n, struct dda_creds *out, struct dda_error *err);

/* Answers of those servers (exposed for tests and fuzzing). */
int dda__creds_parse_json(const char *body, size_t n, const char *provider, struct dda_creds *out,
			  struct dda_error *err);
int dda__creds_parse_sts(const char *body, size_t n, const char *provider, struct dda_creds *out,
			 struct dda_error *err);

extern const char *const dda__provider_web_identity;
extern const char *const dda__provider_container;
extern const char *const dda__provider_imds;
extern const char *const dda__provider_imds_v1;
extern const char *const dda__provider_assume_role;
extern const char *const dda__provider_process;
extern const char *const dda__provider_sso;

/* The whole chain in botocore's order: the environment (skipped when the
 * profile was named explicitly, as with --profile), assume role, web
 * identity, SSO, the shared credentials file, credential_process, the
 * config file, the container endpoint, instance metadata. profile_flag is
 * --profile or NULL (then AWS_PROFILE, AWS_DEFAULT_PROFILE, "default").
 * Returns 0, or DDA_EAUTH naming every provider tried when none is
 * configured, or the first configured provider's failure. */
int dda__creds_resolve(const struct dda_env *env, const char *profile_flag, const char *region,
		       struct dda_creds *out, struct dda_error *err);

/* Temporary credentials within this long of their expiration are renewed
 * before the next request is signed (the SDKs allow 5 to 15 minutes). */
#define DDA_CREDS_REFRESH_BEFORE (5 * 60 * DDA_USEC_PER_SEC)

/* Renews c from the provider that supplied it when it expires within
 * DDA_CREDS_REFRESH_BEFORE of now. Returns 0 (c unchanged when no renewal
 * was due or the renewal failed while c is still valid), or an error when c
 * has expired and cannot be renewed. profile_flag as for resolve. */
int dda__creds_refresh(const struct dda_env *env, const char *profile_flag, const char *region,
		       struct dda_creds *c, int64_t now, struct dda_error *err);

/* The profile in effect: the flag, else AWS_PROFILE, else
 * AWS_DEFAULT_PROFILE (the CLI's order; boto3 reads them the other way
 * round), else "default". */
const char *dda__aws_profile(const struct dda_env *env, const char *flag);

/* The region: the flag, AWS_REGION, AWS_DEFAULT_REGION, the profile's region
 * in the config file. Returns a new string, or NULL when none is set. */
char *dda__aws_region(const struct dda_env *env, const char *profile, const char *flag);

/* A value of a profile's section in an INI file (the config file names
 * sections "profile NAME" except "default"; the credentials file "NAME").
 * Returns a new string or NULL. Nested settings (indented under a key with
 * no value) are not values of the profile. */
char *dda__ini_get(const char *path, const char *section, const char *key);

/* Whether a section exists in an INI file. */
bool dda__ini_has_section(const char *path, const char *section);

/* A profile's setting as botocore merges the two files: the credentials
 * file's [NAME] over the config file's [profile NAME] (DDA_PROFILE_ANY), or
 * the config file alone (DDA_PROFILE_CONFIG). New string or NULL. */
enum { DDA_PROFILE_ANY, DDA_PROFILE_CONFIG };
char *dda__aws_profile_get(const struct dda_env *env, const char *profile, const char *key,
			   int where);
/* Whether the profile exists in either file. */
bool dda__aws_profile_exists(const struct dda_env *env, const char *profile);

/* The shared files' paths: AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE,
 * else ~/.aws/credentials and ~/.aws/config. New strings, or NULL. */
char *dda__aws_credentials_file(const struct dda_env *env);
char *dda__aws_config_file(const struct dda_env *env);

/* The two static-key providers of the chain, apart (credential_process
 * comes between them). */
int dda__creds_from_credentials_file(const struct dda_env *env, const char *profile,
				     struct dda_creds *out, struct dda_error *err);
int dda__creds_from_config_file(const struct dda_env *env, const char *profile,
				struct dda_creds *out, struct dda_error *err);

/* Fills out with copies of the values (token may be NULL); expiration as
 * given. Internal to the providers. */
int dda__creds_fill(struct dda_creds *out, const char *ak, const char *sk, const char *token,
		    int64_t expiration, const char *provider, struct dda_error *err);
/* Frees a string after wiping it (NULL is fine). */
void dda__wipe_free(char *s);

#endif
