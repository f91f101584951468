/* Noise control for runs that repeat (cron): kinds a run ignores, and a
 * baseline of known findings, each with an expiry and a reason, that a run
 * suppresses. Both are counted, never dropped silently (docs/noise.md). */
#ifndef DDBAUDIT_BASELINE_H
#define DDBAUDIT_BASELINE_H

#include <stdbool.h>
#include <stdint.h>
#include "ddbaudit/common.h"
#include "ddbaudit/record.h"

/* A baseline file is read whole; these bound what a hostile or mistaken
 * file can make a run hold. A real baseline is hundreds of lines. */
#define DDA_BASELINE_MAX_BYTES ((size_t)64 << 20)
#define DDA_BASELINE_MAX_ENTRIES 1000000
#define DDA_BASELINE_MAX_FIELD 4096 /* an item, object or reason */
/* How many unused entries the report names by line. */
#define DDA_BASELINE_UNUSED_SHOWN 20

/* True for kinds that say some input could not be used (an unreadable
 * object, an invalid record, an empty range, a missing hour): --ignore
 * refuses them, and a baseline entry for one must name its exact object. */
DDA_API bool dda_kind_means_loss(int kind);

/* Parses --ignore's "KIND[,KIND]" into a mask (bit 1 << kind), added to
 * *mask. DDA_EINVAL with the reason for an unknown kind or one that means
 * lost input. */
DDA_API int dda_ignore_parse(const char *list, uint64_t *mask, struct dda_error *err);

/* A parsed baseline: NDJSON, one entry a line,
 * {"kind":K,"item":GLOB,"object":GLOB,"expires":TIME,"reason":TEXT};
 * blank lines and lines starting with '#' are skipped. */
struct dda_baseline;

/* Parses data[0..len); name is shown in messages. Returns 0 and a new
 * baseline in *out, or DDA_EINVAL with "NAME:LINE: what is wrong" in err. */
DDA_API int dda_baseline_parse(const char *data, size_t len, const char *name,
			       struct dda_baseline **out, struct dda_error *err);
/* Reads and parses the file at path. A file that cannot be opened is
 * DDA_EINVAL (the option names it); a failed read DDA_EIO. */
DDA_API int dda_baseline_load(const char *path, struct dda_baseline **out, struct dda_error *err);
DDA_API void dda_baseline_free(struct dda_baseline *b);
DDA_API size_t dda_baseline_size(const struct dda_baseline *b);

/* What a run made of its baseline, for the report. */
struct dda_baseline_stats {
	bool used;
	char sha256[2 * 32 + 1]; /* of the file's bytes */
	uint64_t entries;
	uint64_t matched; /* entries that suppressed at least one finding */
	uint64_t expired; /* entries past their expiry (each a BASELINE_EXPIRED) */
	uint64_t unused;  /* live entries that matched nothing in this run */
	uint64_t unused_lines[DDA_BASELINE_UNUSED_SHOWN];
	size_t nunused_lines;
};

struct dda_result;
/* Takes the findings of kind out of a finished result, as a baseline would
 * have: out of the list, the severity, kind and hour counts, into
 * sum.suppressed. For findings an earlier run of a --state chain already
 * reported (UNVERSIONED_BUCKET while the bucket's setting is unchanged).
 * Returns how many were taken. */
DDA_API size_t dda_result_suppress_kind(struct dda_result *res, int kind);

/* Writes a baseline that accepts the findings of res: the live (unexpired
 * at now) entries of prev (may be NULL) as they are, then one entry for
 * each finding listed in res that a baseline can hold, sorted and without
 * repeats, expiring at expires, with reason. Whole or absent. */
DDA_API int dda_baseline_write(const struct dda_baseline *prev, const struct dda_result *res,
			       int64_t now, int64_t expires, const char *reason, const char *path,
			       struct dda_error *err);

#endif
