/* Internal to the state module: the lock beside a local state. */
#ifndef DDA_STATE_IMPL_H
#define DDA_STATE_IMPL_H

#include "util/util.h"
#include "ddbaudit/state.h"

/* Takes the exclusive lock path.lock without waiting; *fd holds it. A held
 * lock is DDA_EIO with its holder named in err. */
int dda__state_lock(const char *path, int *fd, struct dda_error *err);
void dda__state_unlock(int fd);
/* "pid 123 on HOST since TIME": who holds a lock, for a refusal's message. */
void dda__state_holder(char *out, size_t size);

/* A state in S3 (remote.c). open takes the lock object (refused when it
 * exists, naming its holder); fetch downloads the state to path (*exists
 * false when there is none); put uploads path with If-Match the ETag
 * fetched (If-None-Match: * when none); free deletes the lock object. */
struct dda__state_remote;
struct dda_aws_opts;
int dda__state_remote_open(struct dda__state_remote **out, const char *url,
			   const struct dda_aws_opts *aws, const char *holder,
			   struct dda_error *err);
int dda__state_remote_fetch(struct dda__state_remote *r, const char *path, bool *exists,
			    struct dda_error *err);
int dda__state_remote_put(struct dda__state_remote *r, const char *path, struct dda_error *err);
void dda__state_remote_free(struct dda__state_remote *r);

#endif
