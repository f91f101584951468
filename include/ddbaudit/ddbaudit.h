/* libddbaudit: read, validate and reconstruct DynamoDB change audit logs.
 * Umbrella header; include this one. */
#ifndef DDBAUDIT_H
#define DDBAUDIT_H

#include "ddbaudit/common.h"
#include "ddbaudit/time.h"
#include "ddbaudit/log.h"
#include "ddbaudit/canon.h"
#include "ddbaudit/aws.h"
#include "ddbaudit/source.h"
#include "ddbaudit/record.h"
#include "ddbaudit/history.h"
#include "ddbaudit/state.h"
#include "ddbaudit/report.h"
#include "ddbaudit/audit.h"
#include "ddbaudit/baseline.h"
#include "ddbaudit/reconcile.h"
#include "ddbaudit/restore.h"
#include "ddbaudit/evidence.h"
#include "ddbaudit/merge.h"

#endif
