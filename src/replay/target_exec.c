/* exec:COMMAND: one process per batch (/bin/sh -c COMMAND), the batch on its
 * stdin, its stdout read as the answer; exit status 0 is success. stderr is
 * left to the processor (it reaches ours). DDBAUDIT_LANE tells it its lane.
 * Each batch's process runs in a process group of its own, so that a batch
 * that times out (or a run stopped by a signal) ends with everything it
 * started: a grandchild left running would hold our pipes (and the stderr
 * we share with it) open for ever. */
#define _GNU_SOURCE /* pipe2: close-on-exec from the start, as lanes fork at once */
#include "replay/target_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a batch's process group has between SIGTERM and SIGKILL. */
#define EXEC_KILL_GRACE_MS 5000
/* How often a running batch looks at the stop flag. */
#define EXEC_POLL_MS 100

struct exec_target {
	struct dda_target base;
	const char *command;
	long timeout_ms;
	volatile int *stop; /* set by SIGINT/SIGTERM: the batch is ended */
	char lane[32];
	char **envp; /* the environment plus DDBAUDIT_LANE, made once */
	struct dda_buf answer;
};

extern char **environ;

static pid_t spawn(struct exec_target *x, int *in, int *out)
{
	int a[2], b[2];
	if (pipe2(a, O_CLOEXEC))
		return -1;
	if (pipe2(b, O_CLOEXEC)) {
		close(a[0]);
		close(a[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec. Its own
		 * process group, set on both sides so that neither order of
		 * the two processes running leaves a window. */
		setpgid(0, 0);
		dup2(a[0], 0);
		dup2(b[1], 1);
		execve("/bin/sh", (char *[]){"sh", "-c", (char *)x->command, NULL}, x->envp);
		_exit(127);
	}
	if (pid > 0)
		setpgid(pid, pid);
	close(a[0]);
	close(b[1]);
	if (pid < 0) {
		close(a[1]);
		close(b[0]);
		return -1;
	}
	*in = a[1];
	*out = b[0];
	return pid;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Feeds stdin and drains stdout together, so a processor that answers while
 * it reads cannot deadlock with us. Closes both pipes. Returns 0, -1 on
 * timeout, or -2 when the run is stopping. */
static int pump(struct exec_target *x, int in, int out, const char *body, size_t len,
		int64_t deadline)
{
	size_t sent = 0;
	char buf[65536];
	fcntl(in, F_SETFL, O_NONBLOCK);
	while (out >= 0) {
		struct pollfd p[2] = {{out, POLLIN, 0}, {in, POLLOUT, 0}};
		int64_t left = deadline - now_ms();
		bool stop = x->stop && *x->stop;
		int n = left > 0 && !stop ? poll(p, in >= 0 ? 2 : 1, (int)DDA_MIN(left, EXEC_POLL_MS))
					  : -1;
		if (stop || left <= 0 || (n < 0 && errno != EINTR)) {
			if (in >= 0)
				close(in);
			close(out);
			return stop ? -2 : -1;
		}
		if (n <= 0)
			continue;
		if (in >= 0 && p[1].revents) {
			ssize_t w = write(in, body + sent, len - sent);
			if (w > 0)
				sent += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == len) {
				close(in); /* done, or the processor stopped reading */
				in = -1;
			}
		}
		if (p[0].revents) {
			ssize_t r = read(out, buf, sizeof(buf));
			if (r > 0) {
				size_t room = DDA_TARGET_ANSWER_KEEP - x->answer.len;
				/* Past the cap (and the byte that tells it) the rest
				 * is not needed: an answer over the cap fails the
				 * batch; a failed append is sticky and checked once
				 * the command ended. */
				if (room && dda_buf_add(&x->answer, buf, DDA_MIN((size_t)r, room)))
					continue;
			} else if (r == 0 || errno != EINTR) {
				close(out);
				out = -1;
			}
		}
	}
	if (in >= 0)
		close(in);
	return 0;
}

/* Waits for the shell to end, without reaping it, until the deadline or
 * the stop flag (NULL: none): a processor that closed its stdout may still
 * run for ever. Returns 0 once it ended, -1 on timeout, -2 on stop. */
static int wait_exit(volatile int *stop, pid_t pid, int64_t deadline)
{
	long step_ms = 1;
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (!waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == pid)
			return 0;
		if (stop && *stop)
			return -2;
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -1;
		/* Most processors end as they close stdout: look again soon,
		 * then less often, never past the deadline. */
		long ms = (long)DDA_MIN((int64_t)step_ms, left);
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		step_ms = DDA_MIN(step_ms * 2, (long)EXEC_POLL_MS);
	}
}

/* Ends a batch's process group: SIGTERM, then SIGKILL once the shell has
 * ended or the grace period is over. The shell is not reaped before the
 * SIGKILL: as a zombie it keeps its process group id from being reused by
 * an unrelated process. A group that could not be made (setpgid failed in
 * both processes) is the shell alone. */
static void kill_group(pid_t pid)
{
	if (kill(-pid, SIGTERM) && errno == ESRCH) {
		kill(pid, SIGKILL);
		return;
	}
	wait_exit(NULL, pid, now_ms() + EXEC_KILL_GRACE_MS);
	kill(-pid, SIGKILL);
}

static int exec_send(struct dda_target *t, const char *body, size_t len,
		     struct dda_send_result *res)
{
	struct exec_target *x = (struct exec_target *)t;
	int in, out, st = 0;
	dda_buf_reset(&x->answer);
	pid_t pid = spawn(x, &in, &out);
	if (pid < 0) {
		res->outcome = DDA_SEND_FAILED;
		res->fault = DDA_FAULT_TRANSPORT;
		snprintf(res->msg, sizeof(res->msg), "cannot start '%s': %s", x->command,
			 strerror(errno));
		return 0;
	}
	int64_t deadline = now_ms() + x->timeout_ms;
	int ended = pump(x, in, out, body, len, deadline);
	if (!ended)
		ended = wait_exit(x->stop, pid, deadline);
	if (ended)
		kill_group(pid);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (ended) {
		res->outcome = DDA_SEND_FAILED;
		res->fault = DDA_FAULT_TRANSPORT;
		if (ended == -2)
			snprintf(res->msg, sizeof(res->msg),
				 "'%s' was ended with its process group: the run is stopping",
				 x->command);
		else
			snprintf(res->msg, sizeof(res->msg),
				 "'%s' took over %ld ms and was killed with its process group",
				 x->command, x->timeout_ms);
		return 0;
	}
	res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		res->outcome = DDA_SEND_FAILED;
		/* The shell's 126 and 127: not executable, not found. */
		bool missing = WIFEXITED(st) && (WEXITSTATUS(st) == 126 || WEXITSTATUS(st) == 127);
		res->fault = missing ? DDA_FAULT_CONFIG : DDA_FAULT_FUNCTION;
		snprintf(res->msg, sizeof(res->msg), "'%s' exited with status %ld%s", x->command,
			 res->status, missing ? " (command not found or not executable)" : "");
		return 0;
	}
	if (dda_buf_error(&x->answer)) {
		res->outcome = DDA_SEND_FAILED;
		res->fault = DDA_FAULT_TRANSPORT;
		snprintf(res->msg, sizeof(res->msg), "out of memory reading the answer of '%s'",
			 x->command);
		return 0;
	}
	res->outcome = DDA_SEND_OK;
	res->answer = x->answer.ptr;
	res->answer_len = x->answer.len;
	return 0;
}

static void exec_free(struct dda_target *t)
{
	struct exec_target *x = (struct exec_target *)t;
	dda_buf_release(&x->answer);
	free(x->envp);
	free(x);
}

int dda__target_exec_new(struct dda_target **out, const struct dda_target_opts *o, int lane,
			 struct dda_error *err)
{
	struct exec_target *x = calloc(1, sizeof(*x));
	if (!x)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	x->base.send = exec_send;
	x->base.free = exec_free;
	x->command = o->spec + 5;
	x->timeout_ms = dda__target_timeout_ms(o);
	x->stop = o->stop;
	snprintf(x->lane, sizeof(x->lane), "DDBAUDIT_LANE=%d", lane);
	dda_buf_init(&x->answer, DDA_TARGET_ANSWER_KEEP);
	size_t n = 0;
	while (environ && environ[n])
		n++;
	x->envp = calloc(n + 2, sizeof(*x->envp));
	if (!x->envp) {
		exec_free(&x->base);
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "DDBAUDIT_LANE=", 14))
			x->envp[k++] = environ[i];
	x->envp[k] = x->lane;
	*out = &x->base;
	return 0;
}

/* Shell words that are not programs to look up. */
static bool shell_builtin(const char *w, size_t n)
{
	static const char *const names[] = {".", ":", "cd", "command", "env", "eval", "exec",
					    "exit", "export", "set", "test", "[", "true",
					    "false", "ulimit", "umask", "if", "for", "while",
					    "case", "{", "(", "!", "nice", "nohup", "timeout"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == n && !memcmp(names[i], w, n))
			return true;
	return false;
}

/* The command's first word (after VAR=value assignments) must be a
 * builtin, an executable path, or found on PATH, as the shell will look
 * for it. A command line too clever to read (quotes, expansions) is left
 * to the first batch, whose exit status 127 stops the run. */
int dda__target_exec_preflight(const struct dda_target_opts *o, struct dda_error *err)
{
	const char *p = o->spec + 5, *w;
	size_t n;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		w = p;
		n = strcspn(p, " \t;&|<>");
		if (!n)
			return dda_error_set(err, DDA_EINVAL, "invalid --target '%s': no command",
					     o->spec);
		if (!memchr(w, '=', n) || memchr(w, '/', (size_t)((char *)memchr(w, '=', n) - w)))
			break;
		p += n; /* an assignment */
	}
	if (strcspn(w, "'\"$`\\*?~") < n || shell_builtin(w, n))
		return 0;
	char word[4096];
	if (n >= sizeof(word))
		return 0;
	memcpy(word, w, n);
	word[n] = '\0';
	if (strchr(word, '/')) {
		if (!access(word, X_OK))
			return 0;
		return dda_error_set(err, DDA_EIO, "target %s: cannot run '%s': %s", o->spec, word,
				     strerror(errno));
	}
	const char *path = getenv("PATH");
	for (const char *d = path ? path : "/usr/bin:/bin"; *d;) {
		size_t dl = strcspn(d, ":");
		char full[8192];
		snprintf(full, sizeof(full), "%.*s/%s", (int)(dl ? dl : 1), dl ? d : ".", word);
		struct stat st;
		if (!stat(full, &st) && S_ISREG(st.st_mode) && !access(full, X_OK))
			return 0;
		d += dl + (d[dl] == ':');
	}
	return dda_error_set(err, DDA_EIO, "target %s: '%s' is not found on PATH", o->spec, word);
}
