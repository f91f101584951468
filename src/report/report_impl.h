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

/* The item of an anomaly as text ("UserId=u,ActivityId=a"), or "" if none;
 * the result lives in b. */
const char *dda__report_item_text(const struct dda_anomaly *a, struct dda_buf *b);

#endif
