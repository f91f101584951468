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

/* Redaction of secrets from every message. The credential layer registers
 * each secret it holds or sends (secret access keys, session tokens, bearer
 * and metadata tokens); error messages (dda_error_set), log lines and
 * descriptions of a peer's answer pass through dda__redact before anyone
 * sees them, so a server that echoes a request's headers or query string
 * back in its error cannot make ddbaudit print a secret.
 *
 * The registry is process-wide, like curl_global_init's state: an error
 * message is formatted far from any context that could carry it, and a
 * secret leaked by one run's message is as bad as by another's. */

/* Values shorter than this are not registered: they would redact ordinary
 * words (real secret keys are 40 bytes, tokens hundreds). */
#define DDA_SECRET_MIN 16
/* Secrets remembered at once; the oldest is forgotten first (credentials
 * renewed many times over a long run). */
#define DDA_SECRETS_MAX 64
/* What a secret is replaced with. */
#define DDA_REDACTED "[redacted]"

/* Registers s (copied), its URI-encoded form and its JSON form (with '/'
 * escaped) as secrets. NULL, short or already known values are ignored;
 * thread-safe. */
void dda__secret_add(const char *s);

/* Replaces, in the NUL-terminated string s, every registered secret and the
 * value after any "X-Amz-Security-Token" name (a query parameter, a header
 * line or an XML element, as a server may echo them) by DDA_REDACTED. The
 * string never grows past its cap bytes. Thread-safe. */
void dda__redact(char *s, size_t cap);

/* Forgets every registered secret, wiping the copies (tests). */
void dda__secrets_clear(void);

#endif
