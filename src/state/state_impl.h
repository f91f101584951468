/* Internal to the state module: the lock beside a local state. */
#ifndef DDA_STATE_IMPL_H
#define DDA_STATE_IMPL_H

#include "util/util.h"
#include "ddbaudit/state.h"

/* Takes the exclusive lock path.lock without waiting; *fd holds it. A held
 * lock is DDA_EIO with its holder named in err. */
int dda__state_lock(const char *path, int *fd, struct dda_error *err);
void dda__state_unlock(int fd);

#endif
