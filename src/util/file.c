/* Output files that are whole or absent, as git's lockfile.c makes them: a
 * unique temporary name in the final file's directory, written, fsynced and
 * renamed over the final name, then the directory fsynced. */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

/* Names are random: a name taken (another run, a crash's leftover) is
 * retried a bounded number of times, then the error is reported. */
#define AFILE_TRIES 64

static int set_paths(struct dda__afile *a, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	uint8_t rnd[8];
	char hex[2 * sizeof(rnd) + 1];
	if (getentropy(rnd, sizeof(rnd)))
		return DDA_EIO;
	dda__hex(rnd, sizeof(rnd), hex);
	dda_buf_reset(&a->tmp);
	int rc = dda_buf_add(&a->tmp, path, dirlen);
	if (!rc)
		rc = dda_buf_addf(&a->tmp, ".%s.%s.tmp", path + dirlen, hex);
	return rc;
}

void dda__afile_init(struct dda__afile *a)
{
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	dda_buf_init(&a->tmp, 8192);
	dda_buf_init(&a->path, 8192);
}

int dda__afile_open(struct dda__afile *a, const char *path, struct dda_error *err)
{
	dda__afile_init(a);
	int rc = dda_buf_adds(&a->path, path);
	for (int i = 0; !rc && a->fd < 0 && i < AFILE_TRIES; i++) {
		rc = set_paths(a, path);
		if (rc)
			break;
		/* 0666 as fopen would, less the umask: a report is not a secret. */
		a->fd = open(a->tmp.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (a->fd < 0 && errno != EEXIST)
			rc = DDA_EIO;
	}
	if (!rc && a->fd < 0)
		rc = DDA_EIO;
	if (rc) {
		int e = errno;
		dda__afile_discard(a);
		return dda_error_set(err, rc, "cannot create a temporary file beside '%s': %s",
				     path, rc == DDA_EIO ? strerror(e) : dda_strerror(rc));
	}
	return 0;
}

FILE *dda__afile_stream(struct dda__afile *a, struct dda_error *err)
{
	if (a->f)
		return a->f;
	a->f = fdopen(a->fd, "wb");
	if (!a->f)
		dda_error_set(err, DDA_EIO, "cannot write '%s': %s", a->tmp.ptr, strerror(errno));
	return a->f;
}

int dda__afile_finish(struct dda__afile *a, struct dda_error *err)
{
	int rc = 0, e = 0;
	if (a->f) {
		if (fflush(a->f) || ferror(a->f))
			rc = DDA_EIO, e = errno;
	}
	if (!rc && a->fd >= 0 && fsync(a->fd))
		rc = DDA_EIO, e = errno;
	/* fclose closes fd too; its error (a deferred write error on NFS) counts. */
	if (a->f ? fclose(a->f) : a->fd >= 0 ? close(a->fd) : 0) {
		if (!rc)
			rc = DDA_EIO, e = errno;
	}
	a->f = NULL;
	a->fd = -1;
	if (rc)
		return dda_error_set(err, rc, "cannot write '%s': %s", a->path.ptr,
				     strerror(e ? e : EIO));
	a->finished = true;
	return 0;
}

int dda__dir_sync(const char *path, struct dda_error *err)
{
	const char *slash = strrchr(path, '/');
	struct dda_buf dir;
	dda_buf_init(&dir, 8192);
	int rc = slash ? dda_buf_add(&dir, path, slash == path ? 1 : (size_t)(slash - path))
		       : dda_buf_adds(&dir, ".");
	if (rc) {
		dda_buf_release(&dir);
		return dda_error_set(err, rc, "path too long: '%s'", path);
	}
	int fd = open(dir.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		rc = dda_error_set(err, DDA_EIO, "cannot sync the directory '%s': %s", dir.ptr,
				   strerror(errno));
	if (fd >= 0)
		close(fd);
	dda_buf_release(&dir);
	return rc;
}

int dda__afile_rename(struct dda__afile *a, struct dda_error *err)
{
	if (!a->finished)
		return dda_error_set(err, DDA_EINTERNAL, "'%s' renamed before it was written",
				     a->path.ptr);
	if (rename(a->tmp.ptr, a->path.ptr))
		return dda_error_set(err, DDA_EIO, "cannot rename '%s' to '%s': %s", a->tmp.ptr,
				     a->path.ptr, strerror(errno));
	a->renamed = true;
	return 0;
}

int dda__afile_commit(struct dda__afile *a, struct dda_error *err)
{
	int rc = a->finished ? 0 : dda__afile_finish(a, err);
	if (!rc)
		rc = dda__afile_rename(a, err);
	if (!rc)
		rc = dda__dir_sync(a->path.ptr, err);
	return rc;
}

void dda__afile_discard(struct dda__afile *a)
{
	if (a->f)
		fclose(a->f);
	else if (a->fd >= 0)
		close(a->fd);
	a->f = NULL;
	a->fd = -1;
	if (!a->renamed && a->tmp.ptr && a->tmp.len)
		unlink(a->tmp.ptr);
	dda_buf_release(&a->tmp);
	dda_buf_release(&a->path);
	dda__afile_init(a);
}

int dda__dir_lock(const char *dir, int *fd, struct dda_error *err)
{
	struct dda_buf path;
	dda_buf_init(&path, 8192);
	*fd = -1;
	int rc = dda_buf_addf(&path, "%s/.lock", dir);
	if (rc) {
		dda_buf_release(&path);
		return dda_error_set(err, rc, "path too long: '%s'", dir);
	}
	*fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	/* flock waits for another run's rename phase (a few renames and fsyncs)
	 * or a reader's shared lock. A signal ends the wait (the CLI's handlers
	 * do not restart calls): a stop asked for is never swallowed here. */
	int r = *fd >= 0 ? flock(*fd, LOCK_EX) : -1;
	if (r) {
		if (errno == EINTR)
			rc = dda_error_set(err, DDA_EINTR,
					   "interrupted while waiting for the lock '%s'", path.ptr);
		else
			rc = dda_error_set(err, DDA_EIO, "cannot lock '%s': %s", path.ptr,
					   strerror(errno));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
	dda_buf_release(&path);
	return rc;
}

void dda__dir_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

/* mkdir -p. */
int dda__make_dir(const char *path, struct dda_error *err)
{
	struct dda_buf p;
	dda_buf_init(&p, 1 << 16);
	int rc = dda_buf_adds(&p, path);
	for (size_t i = 1; !rc && i <= p.len; i++) {
		if (p.ptr[i] != '/' && p.ptr[i] != '\0')
			continue;
		char save = p.ptr[i];
		p.ptr[i] = '\0';
		if (mkdir(p.ptr, 0777) && errno != EEXIST)
			rc = dda_error_set(err, DDA_EIO, "cannot create '%s': %s", p.ptr,
					   strerror(errno));
		p.ptr[i] = save;
	}
	dda_buf_release(&p);
	return rc;
}
