/* credential_process: a profile names a command whose standard output is
 * the credentials (JSON, Version 1). It runs without a shell, split into
 * words as botocore splits it, in a process group of its own so that a
 * run past the time limit is killed whole. Its stderr is the user's. */
#include "aws/core.h"
#include "aws/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const dda__provider_process = "credential_process";

/* A command line longer than this, or with more words, is not one a
 * person wrote into a config file. */
#define CMD_WORDS_MAX 256

extern char **environ;

void dda__argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/* POSIX shlex: quotes group, '...' is literal, "..." lets a backslash
 * escape only '"' and '\', a backslash outside quotes escapes anything. */
char **dda__shell_split(const char *cmd, struct dda_error *err)
{
	char **argv = calloc(CMD_WORDS_MAX + 1, sizeof(*argv));
	struct dda_buf w;
	int n = 0, rc = 0;
	bool in_word = false;
	char quote = 0;
	dda_buf_init(&w, 64 << 10);
	if (!argv)
		goto nomem;
	for (const char *p = cmd; !rc && *p; p++) {
		char c = *p;
		if (quote == '\'') {
			rc = c == '\'' ? (quote = 0, 0) : dda_buf_addc(&w, c);
		} else if (quote == '"') {
			if (c == '\\' && (p[1] == '"' || p[1] == '\\'))
				rc = dda_buf_addc(&w, *++p);
			else
				rc = c == '"' ? (quote = 0, 0) : dda_buf_addc(&w, c);
		} else if (c == '\'' || c == '"') {
			quote = c;
			in_word = true;
		} else if (c == '\\' && p[1]) {
			rc = dda_buf_addc(&w, *++p);
			in_word = true;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (!in_word)
				continue;
			if (n == CMD_WORDS_MAX) {
				rc = DDA_ETOOBIG;
				break;
			}
			argv[n] = w.ptr ? dda_buf_take(&w, NULL) : strdup("");
			rc = argv[n++] ? 0 : DDA_ENOMEM;
			dda_buf_init(&w, 64 << 10);
			in_word = false;
		} else {
			rc = dda_buf_addc(&w, c);
			in_word = true;
		}
	}
	if (!rc && quote)
		rc = DDA_EFORMAT;
	if (!rc && in_word) {
		if (n == CMD_WORDS_MAX) {
			rc = DDA_ETOOBIG;
		} else {
			argv[n] = w.ptr ? dda_buf_take(&w, NULL) : strdup("");
			rc = argv[n++] ? 0 : DDA_ENOMEM;
		}
	}
	if (!rc && !n)
		rc = DDA_EFORMAT;
	dda_buf_release(&w);
	if (!rc)
		return argv;
	dda__argv_free(argv);
	if (rc == DDA_ENOMEM)
		goto nomem;
	dda_error_set(err, DDA_EAUTH, "credential_process is %s",
		      rc == DDA_ETOOBIG ? "too long"
		      : quote		? "missing a closing quote"
					: "empty");
	return NULL;
nomem:
	dda_error_set(err, DDA_ENOMEM, "out of memory");
	return NULL;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void cleanse_member(json_t *o, const char *k)
{
	json_t *s = json_object_get(o, k);
	if (json_is_string(s))
		OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
}

int dda__creds_parse_process(const char *body, size_t n, struct dda_creds *out,
			     struct dda_error *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, &jerr);
	int rc = 0;
	int64_t exp = DDA_TIME_NONE;
	const char *ak = jstr(j, "AccessKeyId"), *sk = jstr(j, "SecretAccessKey");
	const char *tok = jstr(j, "SessionToken"), *e = jstr(j, "Expiration");
	json_t *v = json_object_get(j, "Version");
	if (!json_is_object(j))
		rc = dda_error_set(err, DDA_EFORMAT, "credential_process printed something not JSON");
	else if (!json_is_integer(v) || json_integer_value(v) != 1)
		rc = dda_error_set(err, DDA_EFORMAT,
				   "credential_process printed no \"Version\": 1 (the only version "
				   "there is)");
	else if (!ak || !*ak || !sk || !*sk)
		rc = dda_error_set(err, DDA_EFORMAT,
				   "credential_process printed no AccessKeyId and SecretAccessKey");
	else if (json_object_get(j, "SessionToken") && !tok)
		rc = dda_error_set(err, DDA_EFORMAT,
				   "credential_process printed a SessionToken that is not a string");
	else if ((json_object_get(j, "Expiration") && !e) ||
		 (e && dda_time_parse(e, strlen(e), &exp)))
		rc = dda_error_set(err, DDA_EFORMAT,
				   "credential_process printed an unreadable Expiration");
	if (!rc)
		rc = dda__creds_fill(out, ak, sk, tok && *tok ? tok : NULL, exp,
				     dda__provider_process, err);
	if (json_is_object(j)) {
		cleanse_member(j, "SecretAccessKey");
		cleanse_member(j, "SessionToken");
	}
	json_decref(j);
	return rc;
}

/* Reads the child's stdout until it ends, the limit is passed or the
 * deadline comes. Returns 0, DDA_ETOOBIG or DDA_EINTR (time). */
static int read_all(int fd, struct dda_buf *out, int64_t deadline)
{
	char chunk[4096];
	for (;;) {
		int64_t left = (deadline - dda_time_now()) / 1000;
		if (left <= 0)
			return DDA_EINTR;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)DDA_MIN(left, (int64_t)1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return DDA_EIO;
		if (r == 0)
			continue;
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dda_buf_add(out, chunk, (size_t)n)) {
			OPENSSL_cleanse(chunk, sizeof(chunk));
			return DDA_ETOOBIG;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return 0;
}

int dda__creds_process_run(const char *profile, char **argv, long timeout_ms, struct dda_buf *out,
			   int *status, struct dda_error *err)
{
	int fds[2];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	pid_t pid;
	if (pipe(fds))
		return dda_error_set(err, DDA_EIO, "cannot make a pipe: %s", strerror(errno));
	/* Other threads' children must not inherit it (they would hold the
	 * write end open past this child's exit). */
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	/* Its own process group, so a timeout kills everything it started. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	int e = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(fds[1]);
	if (e) {
		close(fds[0]);
		return dda_error_set(err, DDA_EAUTH,
				     "profile '%s': cannot run credential_process '%s': %s", profile,
				     argv[0], strerror(e));
	}
	int64_t deadline = dda_time_now() + (int64_t)timeout_ms * 1000;
	int rc = read_all(fds[0], out, deadline);
	close(fds[0]);
	/* Closing stdout is not exiting: the time limit holds until it has. */
	while (!rc) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (dda_time_now() >= deadline)
			rc = DDA_EINTR;
		else
			poll(NULL, 0, 10);
	}
	if (rc) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, status, 0) < 0 && errno == EINTR)
			;
	}
	if (rc == DDA_EINTR)
		return dda_error_set(
		    err, DDA_EAUTH,
		    "profile '%s': credential_process ran for more than %ld ms and "
		    "was killed",
		    profile, timeout_ms);
	if (rc == DDA_ETOOBIG)
		return dda_error_set(err, DDA_EAUTH,
				     "profile '%s': credential_process printed more than %zu bytes",
				     profile, DDA_CREDS_PROCESS_MAX_OUTPUT);
	if (rc)
		return dda_error_set(err, DDA_EAUTH,
				     "profile '%s': cannot read credential_process's output",
				     profile);
	return 0;
}

int dda__creds_from_process(const struct dda_env *env, const char *profile, struct dda_creds *out,
			    struct dda_error *err)
{
	char *cmd = dda__aws_profile_get(env, profile, "credential_process", DDA_PROFILE_ANY);
	if (!cmd)
		return 1;
	struct dda_buf o;
	int status = 0;
	dda_buf_init(&o, DDA_CREDS_PROCESS_MAX_OUTPUT);
	char **argv = dda__shell_split(cmd, err);
	int rc = argv ? dda__creds_process_run(profile, argv, DDA_CREDS_PROCESS_TIMEOUT_MS, &o,
					       &status, err)
		      : DDA_EAUTH;
	if (!rc && WIFSIGNALED(status))
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': credential_process was killed by signal %d",
				   profile, WTERMSIG(status));
	else if (!rc && WEXITSTATUS(status))
		rc = dda_error_set(err, DDA_EAUTH,
				   "profile '%s': credential_process exited with status %d (its "
				   "messages are above)",
				   profile, WEXITSTATUS(status));
	if (!rc) {
		struct dda_error perr = {0};
		rc = dda__creds_parse_process(o.ptr, o.len, out, &perr);
		if (rc)
			rc = dda_error_set(err, DDA_EAUTH, "profile '%s': %s", profile, perr.msg);
	}
	dda__argv_free(argv);
	dda__aws_wipe_buf(&o);
	free(cmd);
	return rc;
}
