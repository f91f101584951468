/* The lock that keeps two runs off one local state: an exclusive flock on
 * PATH.lock, taken without waiting (a cron run that finds another one still
 * going should say so, not queue behind it), with the holder written into
 * the file so that the refusal can name it. The kernel drops a flock when
 * its holder dies, so a crash never leaves a stale lock behind. */
#include "state/state_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

/* What a holder writes: "pid 123 on host since 2025-07-12T08:00:00Z". */
#define HOLDER_MAX 256

void dda__state_holder(char *out, size_t size)
{
	char host[128] = "";
	char t[DDA_TIME_STRLEN];
	gethostname(host, sizeof(host) - 1);
	snprintf(out, size, "pid %ld on %s since %s", (long)getpid(), host,
		 dda_time_format(dda_time_now(), false, t));
}

int dda__state_lock(const char *path, int *fd, struct dda_error *err)
{
	struct dda_buf lp;
	char holder[HOLDER_MAX];
	dda_buf_init(&lp, 8192);
	*fd = -1;
	int rc = dda_buf_addf(&lp, "%s.lock", path);
	if (rc) {
		dda_buf_release(&lp);
		return dda_error_set(err, rc, "state path too long: '%s'", path);
	}
	int f = open(lp.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (f < 0) {
		rc = dda_error_set(err, DDA_EIO, "cannot open the state lock '%s': %s", lp.ptr,
				   strerror(errno));
		goto out;
	}
	if (flock(f, LOCK_EX | LOCK_NB)) {
		int e = errno;
		ssize_t n = pread(f, holder, sizeof(holder) - 1, 0);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			rc = dda_error_set(err, DDA_EIO,
					   "the state '%s' is in use by another run (%s); "
					   "refusing to run concurrently",
					   path, *holder ? holder : "holder unknown");
		else
			rc = dda_error_set(err, DDA_EIO, "cannot lock '%s': %s", lp.ptr,
					   strerror(e));
		close(f);
		goto out;
	}
	dda__state_holder(holder, sizeof(holder));
	size_t hl = strlen(holder);
	holder[hl++] = '\n';
	/* The holder's name is a courtesy for the message above: failing to
	 * write it does not weaken the lock. */
	if (ftruncate(f, 0) == 0 && pwrite(f, holder, hl, 0) < 0)
		hl = 0;
	*fd = f;
out:
	dda_buf_release(&lp);
	return rc;
}

void dda__state_unlock(int fd)
{
	if (fd < 0)
		return;
	/* Emptied, not removed: removing would let a second run lock a new
	 * file of the same name while a third still waits on the old one. */
	if (ftruncate(fd, 0)) {
		/* Nothing to do: the close below releases the lock anyway. */
	}
	close(fd);
}
