/* Library-side logging: formats a line for the caller's dda_log callback,
 * only when the caller asked for that level. */
#ifndef DDA_UTIL_LOG_H
#define DDA_UTIL_LOG_H

#include <stdbool.h>
#include "ddbaudit/common.h"
#include "ddbaudit/log.h"

/* Whether lines of this level are wanted (to skip work that only logs). */
static inline bool dda__log_on(const struct dda_log *l, int level)
{
	return l && l->fn && level <= l->level;
}

/* Formats one line and hands it to l->fn; lines longer than 1 KiB are cut. */
void dda__log(const struct dda_log *l, int level, const char *fmt, ...) DDA_PRINTF(3, 4);

/* Copies url into out (cap bytes) without any user:password@ part, so that
 * an endpoint given with credentials in it is never logged with them. */
void dda__log_url(const char *url, char *out, size_t cap);

#endif
