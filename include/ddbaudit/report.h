/* Reports of an audit result: JSON (schema ddbaudit.report/v1,
 * docs/report.md), CSV (one anomaly a row), Markdown (summary and the top
 * anomalies) and HTML (one self-contained page with everything, for an
 * auditor). One writer per format behind dda_report_write. */
#ifndef DDBAUDIT_REPORT_H
#define DDBAUDIT_REPORT_H

#include <jansson.h>
#include <stdio.h>
#include "ddbaudit/audit.h"

#define DDA_REPORT_SCHEMA "ddbaudit.report/v1"
/* Markdown lists this many anomalies by default: a ticket, not a dump. */
#define DDA_REPORT_MD_TOP 25

enum dda_report_format { DDA_FMT_JSON, DDA_FMT_CSV, DDA_FMT_MD, DDA_FMT_HTML, DDA_FMT__COUNT };

/* Returns the format for "json", "csv", "md", "html"; -1 otherwise. */
DDA_API int dda_report_format_parse(const char *s);
/* The file name --report DIR uses for a format: report.json, anomalies.csv,
 * report.md, report.html. */
DDA_API const char *dda_report_file_name(int format);

/* What the result does not know about its run. Pointers are borrowed. */
struct dda_report_info {
	const char *source;
	struct dda_range range;
	const json_t *options;	   /* the options in effect, as a JSON object */
	size_t md_top;		   /* 0 = DDA_REPORT_MD_TOP */
	const char *manifest_name; /* file name of the manifest, or NULL */
	/* A manifest already written and fsynced under a temporary name in the
	 * report directory, renamed to manifest_name by dda_report_write_dir
	 * with the reports; NULL when there is none to rename. */
	const char *manifest_tmp;
	/* The severity at which findings fail the run (--fail-on), or
	 * DDA_SEV__COUNT for never: it decides the verdict. */
	int fail_on;
	/* Members a command adds at the top of report.json ("reconcile"), or
	 * NULL. */
	const json_t *extra;

	/* Run metadata, so that a report stands on its own (docs/report.md,
	 * "The run"). Each is given once: the report's bytes depend only on
	 * info and the result. */
	int64_t generated_at;	  /* 0: res->finished */
	const char *command_line; /* shell-quoted argv, secrets redacted; NULL unknown */
	const char *commit;	  /* the build's commit; NULL unknown */
	const char *host;	  /* NULL unknown */
	bool versions;		  /* --versions */
	struct dda_report_caller {
		/* Who ran it (STS GetCallerIdentity): account, arn and user_id
		 * all set, or account NULL and reason saying why not known. */
		const char *account, *arn, *user_id;
		const char *reason;
	} caller;
	struct dda_report_state {
		const char *path; /* --state; NULL when none was used */
		/* The report of the run that wrote the state, "" or NULL for the
		 * first run of a chain. */
		const char *previous_report_sha256;
		int64_t previous_watermark; /* DDA_TIME_NONE for the first run */
		int64_t watermark;	    /* the one this run writes */
	} state;
	/* With --bundle: the bundle's file name, and the SHA-256 (hex) of the
	 * bundle the previous run of the --state chain wrote, or NULL. They
	 * make report.json's "evidence" object. */
	const char *bundle_name;
	const char *previous_bundle_sha256;
};

DDA_API int dda_report_write(int format, const struct dda_report_info *info,
			     const struct dda_result *res, FILE *out, struct dda_error *err);

/* Writes report.json, anomalies.csv, report.md and report.html into dir
 * (which must exist) as one set: each is written to a temporary file and
 * fsynced; then, holding an flock on dir/.lock, info->manifest_tmp (if any),
 * the CSV, the Markdown, the HTML and report.json are renamed into place, in
 * that order, and dir
 * is fsynced. On failure no final name was touched unless the rename phase
 * itself failed, and no temporary report file is left (the manifest's stays
 * the caller's). Of two runs on one dir, the set of the later rename phase
 * stands whole. */
DDA_API int dda_report_write_dir(const struct dda_report_info *info, const struct dda_result *res,
				 const char *dir, struct dda_error *err);

/* Builds the JSON report as a tree (a new reference), or NULL. */
DDA_API json_t *dda_report_json(const struct dda_report_info *info, const struct dda_result *res);

/* Every finding of res as report.json writes one, none folded (UNKNOWN_PRIOR
 * one by one): a shard's report carries them so that merge can rebuild the
 * whole list. A new reference, or NULL when memory ran out. */
DDA_API json_t *dda_report_findings_json(const struct dda_result *res);

#endif
