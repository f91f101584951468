/* Joining the report directories of the shards of one run (--shard K/N)
 * into the result one unsharded run would have produced: objects in listing
 * order, findings in the run's order, summary and hours added up, and the
 * completeness findings only the whole can decide (docs/shards.md). */
#ifndef DDBAUDIT_MERGE_H
#define DDBAUDIT_MERGE_H

#include <stdio.h>
#include "ddbaudit/audit.h"

/* What the shards agreed on, for the merged report. Owned; released by
 * dda_merge_info_release. */
struct dda_merge_info {
	uint32_t count;	  /* N */
	char *source;	  /* run.source */
	struct dda_range range;
	json_t *options;  /* run.options, its "shard" member null */
	int fail_on;	  /* the shards' --fail-on (a severity, or DDA_SEV__COUNT) */
	bool versions;	  /* run.versions */
};

DDA_API void dda_merge_info_release(struct dda_merge_info *mi);

/* Reads DIR/report.json and DIR/manifest.ndjson of each of the n shard
 * directories and fills res (released by the caller with
 * dda_result_release, whatever this returns) and mi; the merged manifest is
 * written to manifest (may be NULL) and its digest kept in res. Refuses,
 * naming the directory or the shard: a directory that is not a shard's
 * report, two shards with one index, shards of another count, listing,
 * assignment, source, range or options (DDA_EINVAL); a damaged report or
 * manifest (DDA_EFORMAT); a shard missing from the set (DDA_ENOTFOUND). A
 * shard whose run was incomplete makes the merged result incomplete
 * (res->fatal names it); the call still returns 0.
 *
 * Items with a SHARD_SPLIT finding were checked by their shard without a
 * record another shard read. With recheck (AWS settings and threads; the
 * rest is taken from the shards' options), the source is read again for
 * those items' objects only, and their findings and figures become those of
 * one run; without it, or when the source cannot be read (recheck_err says
 * why), the SHARD_SPLIT findings stay and name the difference. */
DDA_API int dda_merge_shards(const char *const *dirs, size_t n, FILE *manifest,
			     const struct dda_audit_opts *recheck, struct dda_merge_info *mi,
			     struct dda_result *res, struct dda_error *recheck_err,
			     struct dda_error *err);

#endif
