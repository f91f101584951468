/* file:PATH and -: one batch a line (NDJSON), appended. Lanes share the
 * stream, so a process-wide lock keeps lines whole; a regular file is
 * synced before the batch counts as delivered. The file DLQ appends the
 * same way (dda__append_line). A resume depends on these files, so an
 * append is a whole line or nothing, and a torn line an earlier run left
 * (killed, or out of space, mid-write) is cut before anything is added. */
#define _GNU_SOURCE /* memrchr */
#include "replay/target_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* One lock for every file target: lines from lanes must not interleave. */
static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER;

struct file_target {
	struct dda_target base;
	const char *path; /* NULL: stdout */
	int fd;
	bool own, regular;
};

/* Writes every byte of iov (of a line), waiting out a non-blocking
 * descriptor's EAGAIN; -1 with errno on failure. */
static int write_iov(int fd, struct iovec *iov, int n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = {fd, POLLOUT, 0};
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -1;
			continue;
		}
		if (w <= 0) {
			if (!w)
				errno = EIO;
			return -1;
		}
		size_t k = (size_t)w;
		while (n && k >= iov->iov_len) {
			k -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= k;
		}
	}
	return 0;
}

int dda__append_line(int fd, bool regular, const char *p, size_t n)
{
	struct iovec iov[2] = {{(void *)p, n}, {"\n", 1}};
	off_t start = regular ? lseek(fd, 0, SEEK_END) : 0;
	if (start < 0)
		return -1;
	if (!write_iov(fd, iov, 2) && (!regular || !fdatasync(fd)))
		return 0;
	/* Whole or nothing: what was written of the line goes again, so the
	 * next line does not continue a torn one. (A pipe cannot take back
	 * what it took.) */
	int e = errno;
	if (regular && ftruncate(fd, start) == 0)
		fdatasync(fd);
	errno = e;
	return -1;
}

int dda__file_cut_torn_tail(const char *path, uint64_t *cut, struct dda_error *err)
{
	char buf[65536];
	struct stat st;
	int rc = 0;
	*cut = 0;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : dda_error_set(err, DDA_EIO, "cannot open '%s': %s", path,
						       strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !st.st_size)
		goto out; /* nothing to cut, or not a file that can be cut */
	off_t at = st.st_size;
	while (at > 0) {
		size_t n = (size_t)DDA_MIN((off_t)sizeof(buf), at);
		if (pread(fd, buf, n, at - (off_t)n) != (ssize_t)n) {
			rc = dda_error_set(err, DDA_EIO, "cannot read '%s': %s", path,
					   strerror(errno));
			goto out;
		}
		const char *nl = memrchr(buf, '\n', n);
		if (nl) {
			at = at - (off_t)n + (nl - buf) + 1;
			break;
		}
		at -= (off_t)n;
	}
	if (at < st.st_size && (ftruncate(fd, at) || fsync(fd)))
		rc = dda_error_set(err, DDA_EIO, "cannot cut the torn last line of '%s': %s", path,
				   strerror(errno));
	else
		*cut = (uint64_t)(st.st_size - at);
out:
	close(fd);
	return rc;
}

static int file_send(struct dda_target *t, const char *body, size_t len,
		     struct dda_send_result *res)
{
	struct file_target *f = (struct file_target *)t;
	pthread_mutex_lock(&file_mu);
	int rc = dda__append_line(f->fd, f->regular, body, len);
	int e = errno;
	pthread_mutex_unlock(&file_mu);
	res->outcome = rc ? DDA_SEND_FAILED : DDA_SEND_OK;
	/* A full disk, a closed stdout, a reader gone: retrying will not help,
	 * and the next batches would fail the same way. */
	res->fault = rc ? DDA_FAULT_WRITE : DDA_FAULT_NONE;
	if (rc)
		snprintf(res->msg, sizeof(res->msg), "cannot write %s%s%s: %s",
			 f->path ? "'" : "stdout", f->path ? f->path : "", f->path ? "'" : "",
			 strerror(e));
	return 0;
}

static void file_free(struct dda_target *t)
{
	struct file_target *f = (struct file_target *)t;
	if (f->own)
		close(f->fd);
	free(f);
}

int dda__target_file_new(struct dda_target **out, const char *path, struct dda_error *err)
{
	struct file_target *f = calloc(1, sizeof(*f));
	struct stat st;
	if (!f)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	f->base.send = file_send;
	f->base.free = file_free;
	f->path = path;
	f->fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : 1;
	f->own = path != NULL;
	if (f->fd < 0) {
		int e = errno;
		free(f);
		return dda_error_set(err, DDA_EIO, "cannot open target '%s': %s", path,
				     strerror(e));
	}
	f->regular = !fstat(f->fd, &st) && S_ISREG(st.st_mode);
	*out = &f->base;
	return 0;
}

/* stdout must be open for writing: a closed one would be whatever file
 * got descriptor 1 next. */
int dda__target_stdout_check(struct dda_error *err)
{
	int fl = fcntl(1, F_GETFL);
	if (fl < 0)
		return dda_error_set(err, DDA_EIO, "cannot write the target -: stdout is closed");
	if ((fl & O_ACCMODE) == O_RDONLY)
		return dda_error_set(err, DDA_EIO,
				     "cannot write the target -: stdout is not open for writing");
	return 0;
}
