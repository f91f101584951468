/* Times are int64 microseconds since the Unix epoch, UTC. Ranges are
 * half-open [from, to). DDA_TIME_NONE marks an unknown time or open bound. */
#ifndef DDBAUDIT_TIME_H
#define DDBAUDIT_TIME_H

#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/common.h"

#define DDA_TIME_NONE INT64_MIN
#define DDA_USEC_PER_SEC INT64_C(1000000)
#define DDA_USEC_PER_HOUR (INT64_C(3600) * DDA_USEC_PER_SEC)

/* How far a record's time may lie outside its hour prefix before it is
 * PREFIX_SKEW, and how far beyond a range the hour prefixes are opened: the
 * writer names objects by its processing time, which trails the change and
 * can cross an hour boundary between taking the timestamp and the key. */
#define DDA_PREFIX_SLACK DDA_USEC_PER_HOUR

/* Parses ISO-8601 UTC: YYYY-MM-DD, optionally followed by 'T' or ' ' and
 * HH:MM[:SS[.fraction]], optionally followed by 'Z' or an offset (+HH:MM).
 * Years 1970..9999. Fractions beyond microseconds are truncated.
 * Returns 0 and stores *out, or DDA_EFORMAT. */
DDA_API int dda_time_parse(const char *s, size_t n, int64_t *out);

/* Formats t as "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" into out (at least 32 bytes):
 * with frac, microseconds are always printed. Returns out. */
#define DDA_TIME_STRLEN 32
DDA_API char *dda_time_format(int64_t t, bool frac, char *out);

/* Parses a duration such as "36h", "90m", "2d", "1w", "45s" or a plain number
 * of seconds. Returns 0 or DDA_EFORMAT. */
DDA_API int dda_duration_parse(const char *s, int64_t *out);

/* Seconds since the epoch for a civil UTC date-time (no range checks). */
DDA_API int64_t dda_time_from_civil(int y, int mon, int d, int h, int mi, int s);
/* Splits t into its civil fields (UTC). */
DDA_API void dda_time_to_civil(int64_t t, int *y, int *mon, int *d, int *h, int *mi, int *s,
			       int *usec);

/* Current time. */
DDA_API int64_t dda_time_now(void);

struct dda_range {
	int64_t from; /* inclusive, or DDA_TIME_NONE */
	int64_t to;   /* exclusive, or DDA_TIME_NONE */
};

/* True when t lies in the range (an unknown t lies in every range). */
DDA_API bool dda_range_contains(const struct dda_range *r, int64_t t);
/* True when a key prefix covering [start, end) can hold records of the range,
 * allowing DDA_PREFIX_SLACK on each side. Sources call it for year, month,
 * day and hour prefixes to decide what to open or list. */
DDA_API bool dda_range_wants(const struct dda_range *r, int64_t start, int64_t end);

#endif
