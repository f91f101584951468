/* A state in S3 (s3://BUCKET/KEY): downloaded to a temporary file and read
 * from there as a local state is; written to a temporary file and PUT with
 * a condition, If-Match the ETag read (If-None-Match: * when there was
 * none), so two runs can never both commit. A lock object KEY.lock,
 * created with If-None-Match: *, refuses a concurrent run at the start
 * rather than at its commit; it is deleted when the run ends. */
#include "state/state_impl.h"
#include "aws/s3.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* The compressed state is held in memory while it is transferred (the
 * merge itself streams): about 60 bytes an item, so 4 GiB is ~70M items. */
#define REMOTE_MAX_BYTES ((size_t)4 << 30)
#define LOCK_MAX_BYTES 4096

struct dda__state_remote {
	struct dda_s3 *s3;
	char *bucket, *key, *lock_key;
	char etag[130]; /* quoted, as If-Match wants it; "" when none was read */
	bool locked;
	volatile int *stop;
};

struct answer {
	long status;
	char etag[128];
	char last_modified[64];
	char *body; /* NUL-terminated */
	size_t body_len;
	char what[300];
};

static void on_done(struct dda_s3_call *c, struct dda_http_response *r)
{
	struct answer *a = c->ctx;
	a->status = r->err ? 0 : r->status;
	snprintf(a->etag, sizeof(a->etag), "%s", r->etag);
	snprintf(a->last_modified, sizeof(a->last_modified), "%s", r->last_modified);
	dda__s3_describe(r, a->what, sizeof(a->what));
	free(a->body);
	a->body = dda_buf_take(&r->body, &a->body_len);
}

/* One request, run to its end. 0 when an answer arrived (any status). */
static int request(struct dda__state_remote *r, const char *method, const char *key,
		   const struct dda_kv *extra, size_t nextra, dda_slice body, size_t max,
		   struct answer *a, struct dda_error *err)
{
	struct dda_s3_call call;
	memset(a, 0, sizeof(*a));
	int rc = dda__s3_submit_body(&call, r->s3, method, r->bucket, key, extra, nextra, body, max,
				     on_done, a);
	if (rc)
		return dda_error_set(err, rc, "cannot reach s3://%s/%s: %s", r->bucket, key,
				     dda_strerror(rc));
	rc = dda__http_run(dda__s3_http(r->s3), r->stop, err);
	dda__s3_call_release(&call);
	if (!rc && !a->status)
		rc = dda_error_set(err, DDA_EIO, "s3://%s/%s: %s", r->bucket, key, a->what);
	return rc;
}

static void answer_release(struct answer *a)
{
	free(a->body);
	a->body = NULL;
}

static int parse_url(struct dda__state_remote *r, const char *url)
{
	const char *b = url + 5, *slash = strchr(b, '/');
	if (!slash || slash == b || !slash[1])
		return DDA_EINVAL;
	r->bucket = strndup(b, (size_t)(slash - b));
	r->key = strdup(slash + 1);
	size_t n = strlen(r->key) + sizeof(".lock");
	r->lock_key = malloc(n);
	if (!r->bucket || !r->key || !r->lock_key)
		return DDA_ENOMEM;
	snprintf(r->lock_key, n, "%s.lock", r->key);
	return 0;
}

static int take_lock(struct dda__state_remote *r, const char *holder, struct dda_error *err)
{
	struct answer a;
	/* A type of its own: without one, curl calls the body a form and a
	 * server may parse it as one. */
	const struct dda_kv hdrs[] = {{"Content-Type", "text/plain"}, {"If-None-Match", "*"}};
	dda_slice body = {holder, strlen(holder)};
	int rc = request(r, "PUT", r->lock_key, hdrs, 2, body, LOCK_MAX_BYTES, &a, err);
	if (!rc && a.status / 100 == 2)
		r->locked = true;
	else if (!rc && (a.status == 412 || a.status == 409)) {
		struct answer h;
		dda_slice empty = {NULL, 0};
		bool got =
		    !request(r, "GET", r->lock_key, NULL, 0, empty, LOCK_MAX_BYTES, &h, NULL) &&
		    h.status == 200 && h.body;
		if (got)
			h.body[strcspn(h.body, "\n")] = '\0';
		rc = dda_error_set(err, DDA_EIO,
				   "the state 's3://%s/%s' is in use by another run (%s, lock "
				   "written %s); if that run is gone, delete 's3://%s/%s'",
				   r->bucket, r->key, got ? h.body : "holder unknown",
				   got && h.last_modified[0] ? h.last_modified
							     : "at an unknown time",
				   r->bucket, r->lock_key);
		answer_release(&h);
	} else if (!rc)
		rc = dda_error_set(err, DDA_EIO, "cannot lock the state 's3://%s/%s': %s",
				   r->bucket, r->key, a.what);
	answer_release(&a);
	return rc;
}

int dda__state_remote_open(struct dda__state_remote **out, const char *url,
			   const struct dda_aws_opts *aws, const char *holder,
			   struct dda_error *err)
{
	struct dda__state_remote *r = calloc(1, sizeof(*r));
	struct dda_env env = {dda__process_env, NULL, NULL};
	*out = NULL;
	if (!r)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	int rc = parse_url(r, url);
	if (rc == DDA_EINVAL)
		rc = dda_error_set(err, rc, "invalid state '%s' (s3://BUCKET/KEY)", url);
	else if (rc)
		rc = dda_error_set(err, rc, "out of memory");
	r->stop = aws ? aws->stop : NULL;
	if (!rc)
		rc = dda__s3_new(&r->s3, aws, &env, err);
	if (!rc)
		rc = take_lock(r, holder, err);
	if (rc) {
		dda__state_remote_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return DDA_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int dda__state_remote_fetch(struct dda__state_remote *r, const char *path, bool *exists,
			    struct dda_error *err)
{
	struct answer a;
	dda_slice empty = {NULL, 0};
	*exists = false;
	int rc = request(r, "GET", r->key, NULL, 0, empty, REMOTE_MAX_BYTES, &a, err);
	if (!rc && a.status == 404) {
		answer_release(&a);
		return 0;
	}
	if (!rc && a.status != 200)
		rc = dda_error_set(err, DDA_EIO, "cannot read the state 's3://%s/%s': %s",
				   r->bucket, r->key, a.what);
	if (!rc) {
		snprintf(r->etag, sizeof(r->etag), "%s%s%s", a.etag[0] == '"' ? "" : "\"", a.etag,
			 a.etag[0] == '"' ? "" : "\"");
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write_all(fd, a.body ? a.body : "", a.body_len) || fsync(fd))
			rc = dda_error_set(err, DDA_EIO, "cannot write '%s': %s", path,
					   strerror(errno));
		if (fd >= 0)
			close(fd);
		*exists = !rc;
	}
	answer_release(&a);
	return rc;
}

static int read_file(const char *path, struct dda_buf *out)
{
	char block[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return DDA_EIO;
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, block, sizeof(block));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? DDA_EIO : 0;
			break;
		}
		rc = dda_buf_add(out, block, (size_t)n);
		if (rc)
			break;
	}
	close(fd);
	return rc;
}

int dda__state_remote_put(struct dda__state_remote *r, const char *path, struct dda_error *err)
{
	struct dda_buf data;
	struct answer a;
	struct dda_kv hdrs[] = {{"Content-Type", "application/gzip"},
				r->etag[0] ? (struct dda_kv){"If-Match", r->etag}
					   : (struct dda_kv){"If-None-Match", "*"}};
	dda_buf_init(&data, REMOTE_MAX_BYTES);
	int rc = read_file(path, &data);
	if (rc) {
		dda_buf_release(&data);
		return dda_error_set(err, rc, "cannot read '%s': %s", path, dda_strerror(rc));
	}
	dda_slice body = {data.ptr ? data.ptr : "", data.len};
	rc = request(r, "PUT", r->key, hdrs, 2, body, 1 << 20, &a, err);
	if (!rc && (a.status == 412 || a.status == 409))
		rc = dda_error_set(err, DDA_EIO,
				   "the state 's3://%s/%s' changed since this run read it (another "
				   "run wrote it): this run's state is not written",
				   r->bucket, r->key);
	else if (!rc && a.status / 100 != 2)
		rc = dda_error_set(err, DDA_EIO, "cannot write the state 's3://%s/%s': %s",
				   r->bucket, r->key, a.what);
	answer_release(&a);
	dda_buf_release(&data);
	return rc;
}

void dda__state_remote_free(struct dda__state_remote *r)
{
	if (!r)
		return;
	if (r->locked) {
		struct answer a;
		/* Released even when the run was stopped by a signal. */
		r->stop = NULL;
		dda_slice empty = {NULL, 0};
		/* A lock left behind (the delete failed) is named by the next
		 * run's refusal, with how to remove it. */
		if (!request(r, "DELETE", r->lock_key, NULL, 0, empty, 1 << 20, &a, NULL))
			answer_release(&a);
	}
	dda__s3_free(r->s3);
	free(r->bucket);
	free(r->key);
	free(r->lock_key);
	free(r);
}
