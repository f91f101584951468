/* The interface each target kind implements (target_file.c, target_http.c,
 * target_exec.c); target.c picks one from the --target spec. */
#ifndef DDA_TARGET_IMPL_H
#define DDA_TARGET_IMPL_H

#include "replay/replay.h"

/* Bytes of a target's answer read for ReportBatchItemFailures and messages.
 * Answer buffers keep one byte more (DDA_TARGET_ANSWER_KEEP), which tells an
 * answer over the cap: that one is a failed batch, never an acknowledgement. */
#define DDA_TARGET_MAX_ANSWER (1 << 20)
#define DDA_TARGET_ANSWER_KEEP (DDA_TARGET_MAX_ANSWER + 1)

struct dda_target {
	int (*send)(struct dda_target *t, const char *body, size_t len,
		    struct dda_send_result *res);
	void (*free)(struct dda_target *t);
};

/* The HTTP targets (http, lambda) share these: a curl handle for url with
 * the target's timeouts and TLS settings writing the answer into answer,
 * and the outcome of a completed request. */
struct dda_buf;
void *dda__target_curl_new(const struct dda_target_opts *o, const char *url,
			   struct dda_buf *answer);
void dda__target_http_outcome(long status, const struct dda_buf *answer, const char *what,
			      struct dda_send_result *res);
/* The default --target-timeout for a target: 900 s (Lambda's longest
 * function timeout) for lambda:, 60 s otherwise. */
long dda__target_timeout_ms(const struct dda_target_opts *o);

int dda__target_http_preflight(const struct dda_target_opts *o, struct dda_error *err);
int dda__target_lambda_preflight(const struct dda_target_opts *o, struct dda_target_info *info,
				 struct dda_error *err);
int dda__target_exec_preflight(const struct dda_target_opts *o, struct dda_error *err);
/* A transport error's fault: CONFIG for what a retry cannot fix (name
 * resolution, refused connections, TLS verification), else TRANSPORT. */
int dda__curl_fault(int curl_code);
/* Reads a Retry-After header line into *retry_after (microseconds). */
void dda__header_retry_after(const char *line, size_t len, int64_t *retry_after);

int dda__target_file_new(struct dda_target **out, const char *path, struct dda_error *err);
/* Appends p and a newline to fd as one whole line or nothing: a failed
 * write (no space, a closed descriptor) takes back what it wrote of the
 * line on a regular file, which is also synced (fdatasync) before it
 * counts. 0, or -1 with errno. */
int dda__append_line(int fd, bool regular, const char *p, size_t n);
int dda__target_http_new(struct dda_target **out, const struct dda_target_opts *o,
			 struct dda_error *err);
int dda__target_lambda_new(struct dda_target **out, const struct dda_target_opts *o,
			   struct dda_error *err);
int dda__target_exec_new(struct dda_target **out, const struct dda_target_opts *o, int lane,
			 struct dda_error *err);

#endif
