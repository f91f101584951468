/* The run's metadata for a report (docs/report.md, "The run"): when, the
 * command line with its secrets redacted, the build, the host, and who ran
 * it as STS GetCallerIdentity says, never fatal. */
#include "cli/cli.h"
#include "util/log.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <unistd.h>

/* A word as a POSIX shell reads it back: as is when it holds only
 * characters no shell treats specially, else in single quotes. */
static int shell_word(struct dda_buf *b, const char *w)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789_-./:=@%+,";
	if (*w && strspn(w, plain) == strlen(w))
		return dda_buf_adds(b, w);
	int rc = dda_buf_addc(b, '\'');
	for (; !rc && *w; w++)
		rc = *w == '\'' ? dda_buf_adds(b, "'\\''") : dda_buf_addc(b, *w);
	return rc ? rc : dda_buf_addc(b, '\'');
}

/* A word of the command line as the report shows it: registered secrets
 * redacted (dda__redact), and the user:password of a URL (an endpoint or
 * a target given with credentials in it) replaced by "***". */
static int public_word(struct dda_buf *b, const char *w)
{
	size_t n = strlen(w), cap = n + sizeof(DDA_REDACTED) + 8;
	char *copy = malloc(cap);
	if (!copy)
		return DDA_ENOMEM;
	snprintf(copy, cap, "%s", w);
	char *auth = strstr(copy, "://");
	if (auth) {
		auth += 3;
		char *at = memchr(auth, '@', strcspn(auth, "/?#"));
		if (at)
			memmove(auth + 3, at, strlen(at) + 1), memcpy(auth, "***", 3);
	}
	dda__redact(copy, cap);
	int rc = shell_word(b, copy);
	OPENSSL_cleanse(copy, cap);
	free(copy);
	return rc;
}

/* The command line for the report: "ddbaudit" and argv, shell-quoted. The
 * AWS secrets of the environment are registered first, so that a value
 * typed on the command line too is redacted even when no request used it. */
static char *command_line(int argc, char **argv)
{
	struct dda_buf b;
	dda_buf_init(&b, 1 << 20);
	dda__secret_add(getenv("AWS_SECRET_ACCESS_KEY"));
	dda__secret_add(getenv("AWS_SESSION_TOKEN"));
	int rc = dda_buf_adds(&b, "ddbaudit");
	for (int i = 0; !rc && i < argc; i++) {
		rc = dda_buf_addc(&b, ' ');
		if (!rc)
			rc = public_word(&b, argv[i]);
	}
	if (rc) {
		dda_buf_release(&b);
		return NULL;
	}
	return dda_buf_take(&b, NULL);
}

void dda__cli_run_meta(struct cli *c, int argc, char **argv, bool aws, struct dda__cli_run_meta *m,
		       struct dda_report_info *info)
{
	bool local = !aws && strncmp(c->source, "s3://", 5) != 0;
	m->command_line = command_line(argc, argv);
	info->generated_at = dda_time_now();
	info->command_line = m->command_line;
	info->commit = dda__cli_commit();
	if (!gethostname(m->host, sizeof(m->host) - 1))
		info->host = m->host;
	info->versions = c->versions;
	int rc = dda__sts_caller_identity(&c->audit.src.aws, local, &m->id, &m->why);
	if (!rc) {
		info->caller =
		    (struct dda_report_caller){m->id.account, m->id.arn, m->id.user_id, NULL};
		return;
	}
	info->caller.reason = rc == 1 ? "local source: no AWS call made" : m->why.msg;
	if (rc < 0 && c->verbose > 0)
		dda__cli_warn(c, "the caller's identity is unknown: %s", m->why.msg);
}

void dda__cli_run_meta_release(struct dda__cli_run_meta *m)
{
	free(m->command_line);
	m->command_line = NULL;
}
