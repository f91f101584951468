/* The interface each target kind implements (target_file.c, target_http.c,
 * target_exec.c); target.c picks one from the --target spec. */
#ifndef DDA_TARGET_IMPL_H
#define DDA_TARGET_IMPL_H

#include "replay/replay.h"

/* Bytes of a target's answer kept for ReportBatchItemFailures and messages. */
#define DDA_TARGET_MAX_ANSWER (1 << 20)

struct dda_target {
	int (*send)(struct dda_target *t, const char *body, size_t len,
		    struct dda_send_result *res);
	void (*free)(struct dda_target *t);
};

int dda__target_file_new(struct dda_target **out, const char *path, struct dda_error *err);
int dda__target_http_new(struct dda_target **out, const struct dda_target_opts *o,
			 struct dda_error *err);
int dda__target_exec_new(struct dda_target **out, const struct dda_target_opts *o, int lane,
			 struct dda_error *err);

#endif
