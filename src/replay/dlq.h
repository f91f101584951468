/* Where records that failed for good go (--dlq): see dlq.c. */
#ifndef DDA_REPLAY_DLQ_H
#define DDA_REPLAY_DLQ_H

#include "replay/replay.h"

/* SQS's default message size limit (256 KiB), used when a queue does not
 * say its own MaximumMessageSize. */
#define DDA_DLQ_SQS_MAX (256 * 1024)

struct dda_dlq;
/* Checks a --dlq spec without opening it. */
int dda__dlq_check(const char *spec, struct dda_error *err);
/* Opens the destination (NULL spec: none, *out NULL). */
int dda__dlq_open(struct dda_dlq **out, const char *spec, const struct dda_target_opts *t,
		  struct dda_error *err);
/* The largest message the destination takes. */
size_t dda__dlq_max(const struct dda_dlq *d);
/* Stores one message durably (file: synced; SQS: acknowledged). */
int dda__dlq_put(struct dda_dlq *d, const char *text, size_t len, struct dda_error *err);
int dda__dlq_close(struct dda_dlq *d, struct dda_error *err);

#endif
