/* file:PATH and -: one batch a line (NDJSON), appended. Lanes share the
 * stream, so a process-wide lock keeps lines whole; a regular file is
 * synced before the batch counts as delivered. */
#include "replay/target_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One lock for every file target: lines from lanes must not interleave. */
static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER;

struct file_target {
	struct dda_target base;
	int fd;
	bool own, sync;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int file_send(struct dda_target *t, const char *body, size_t len,
		     struct dda_send_result *res)
{
	struct file_target *f = (struct file_target *)t;
	pthread_mutex_lock(&file_mu);
	int rc = write_all(f->fd, body, len) || write_all(f->fd, "\n", 1) ||
		 (f->sync && fdatasync(f->fd));
	pthread_mutex_unlock(&file_mu);
	res->outcome = rc ? DDA_SEND_FAILED : DDA_SEND_OK;
	res->fault = rc ? DDA_FAULT_TRANSPORT : DDA_FAULT_NONE;
	if (rc)
		snprintf(res->msg, sizeof(res->msg), "cannot write: %s", strerror(errno));
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
	f->fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : 1;
	f->own = path != NULL;
	if (f->fd < 0) {
		int e = errno;
		free(f);
		return dda_error_set(err, DDA_EIO, "cannot open target '%s': %s", path,
				     strerror(e));
	}
	f->sync = !fstat(f->fd, &st) && S_ISREG(st.st_mode);
	*out = &f->base;
	return 0;
}
