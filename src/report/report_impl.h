/* Internal interface of the report writers: one function per format. */
#ifndef DDA_REPORT_IMPL_H
#define DDA_REPORT_IMPL_H

#include "util/util.h"
#include "ddbaudit/report.h"

int dda__report_json(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		     struct dda_error *err);
int dda__report_csv(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		    struct dda_error *err);
int dda__report_md(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		   struct dda_error *err);
int dda__report_html(const struct dda_report_info *info, const struct dda_result *res, FILE *out,
		     struct dda_error *err);

/* The item of an anomaly as text ("UserId=u,ActivityId=a"), or "" if none;
 * the result lives in b. */
const char *dda__report_item_text(const struct dda_anomaly *a, struct dda_buf *b);

/* Sets obj[member] to a name (an object key, a version, a file name) as
 * docs/report.md shows names: as is when valid UTF-8, else escaped (see
 * dda__name_escape) with obj[member + "_b64"] holding its exact bytes; null
 * for NULL. Returns 0 or DDA_ENOMEM. */
int dda__report_set_name(json_t *obj, const char *member, const char *s);
/* Free text (a message) as a JSON string (new), escaped when it is not
 * valid UTF-8: jansson refuses such strings, which would drop the member. */
json_t *dda__report_text(const char *s);

/* UNKNOWN_PRIOR is expected of every item a run meets for the first time,
 * so report.json and report.md list it as one finding standing for all of
 * them (count, a sample); the CSV and the summary counts keep one per item
 * (docs/noise.md). */
#define DDA_REPORT_SAMPLE 10
struct dda__aggregate {
	size_t count;	/* findings of the kind */
	size_t first;	/* index in res->anomalies of the first, where the list shows it */
	size_t sample[DDA_REPORT_SAMPLE]; /* indexes of the first few */
	size_t nsample;
	bool provisional; /* every one of them is provisional */
};
/* True for a kind the JSON and Markdown lists fold into one entry. */
bool dda__report_folded(int kind);
void dda__report_aggregate(const struct dda_result *res, int kind, struct dda__aggregate *ag);
/* The folded entry's one-line detail, in tmp. */
const char *dda__report_aggregate_detail(const struct dda__aggregate *ag, struct dda_buf *tmp);

#endif
