/* Targets by kind, and the ReportBatchItemFailures answer they share. */
#define _GNU_SOURCE /* strptime, timegm */
#include "replay/target_impl.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int dda__target_check(const char *spec, struct dda_error *err)
{
	if (!strcmp(spec, "-") || (!strncmp(spec, "file:", 5) && spec[5]) ||
	    (!strncmp(spec, "exec:", 5) && spec[5]) || (!strncmp(spec, "lambda:", 7) && spec[7]) ||
	    !strncmp(spec, "http://", 7) ||
	    !strncmp(spec, "https://", 8))
		return 0;
	return dda_error_set(err, DDA_EINVAL,
			     "invalid --target '%s' (file:PATH, -, http(s)://URL, "
			     "lambda:FUNCTION[:QUALIFIER] or exec:COMMAND)",
			     spec);
}

int dda__target_new(struct dda_target **out, const struct dda_target_opts *o, int lane,
		    struct dda_error *err)
{
	const char *s = o->spec;
	if (dda__target_check(s, err))
		return err->code;
	if (!strcmp(s, "-"))
		return dda__target_file_new(out, NULL, err);
	if (!strncmp(s, "file:", 5))
		return dda__target_file_new(out, s + 5, err);
	if (!strncmp(s, "exec:", 5))
		return dda__target_exec_new(out, o, lane, err);
	if (!strncmp(s, "lambda:", 7))
		return dda__target_lambda_new(out, o, err);
	return dda__target_http_new(out, o, err);
}

void dda__target_free(struct dda_target *t)
{
	if (t)
		t->free(t);
}

/* Messages quote what targets answered: bytes that are not printable
 * ASCII become '?', so that a message is always valid UTF-8 (the DLQ line
 * and the report are JSON) and never moves a terminal's cursor. */
static void printable(char *msg)
{
	for (unsigned char *p = (unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

int dda__target_send(struct dda_target *t, const char *body, size_t len,
		     struct dda_send_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = -1;
	int rc = t->send(t, body, len, res);
	printable(res->msg);
	return rc;
}

/* Lambda's rules: no answer (empty, or only white space), JSON null, or no
 * (or an empty) batchItemFailures list is success; a list names the failed
 * records, and the batch is retried from the lowest; an entry without a
 * usable itemIdentifier, or naming a record that is not in the batch, fails
 * the whole batch, and so does an answer that is not JSON ("an invalid JSON
 * response" is a complete failure for Lambda too). An answer over the cap
 * cannot be read whole: whatever it says, it is a failure, never a success
 * (a padded partial-failure answer must not acknowledge the batch). */
void dda__parse_item_failures(const char *body, size_t len,
			      bool (*known)(void *ctx, const char *id), void *ctx,
			      struct dda_send_result *res)
{
	json_error_t je;
	size_t i, sp = 0;
	json_t *f;
	res->outcome = DDA_SEND_OK;
	while (sp < len && body[sp] && strchr(" \t\r\n", body[sp]))
		sp++;
	if (sp == len)
		return;
	res->outcome = DDA_SEND_FAILED;
	res->fault = DDA_FAULT_FUNCTION;
	if (len > DDA_TARGET_MAX_ANSWER) {
		snprintf(res->msg, sizeof(res->msg),
			 "the answer is over %d bytes (the cap on an answer): it cannot be read "
			 "as an acknowledgement",
			 DDA_TARGET_MAX_ANSWER);
		return;
	}
	json_t *doc = json_loadb(body, len, JSON_DECODE_ANY, &je);
	if (!doc) {
		snprintf(res->msg, sizeof(res->msg), "the answer is not JSON (%s at byte %d)",
			 je.text, je.position);
		printable(res->msg);
		return;
	}
	json_t *list = json_object_get(doc, "batchItemFailures");
	if (list && !json_is_array(list) && !json_is_null(list)) {
		snprintf(res->msg, sizeof(res->msg), "batchItemFailures is not a list");
		json_decref(doc);
		return;
	}
	res->outcome = DDA_SEND_OK;
	res->fault = DDA_FAULT_NONE;
	if (!json_array_size(list)) {
		json_decref(doc);
		return;
	}
	res->outcome = DDA_SEND_PARTIAL;
	res->fault = DDA_FAULT_FUNCTION;
	res->first_failed[0] = '\0';
	json_array_foreach(list, i, f)
	{
		const char *id = json_string_value(json_object_get(f, "itemIdentifier"));
		size_t n = id ? strlen(id) : 0;
		if (!n || n >= sizeof(res->first_failed)) {
			res->outcome = DDA_SEND_FAILED;
			snprintf(res->msg, sizeof(res->msg),
				 "batchItemFailures entry %zu has no usable itemIdentifier", i);
			break;
		}
		if (known && !known(ctx, id)) {
			res->outcome = DDA_SEND_FAILED;
			snprintf(res->msg, sizeof(res->msg),
				 "batchItemFailures entry %zu names %.40s, not a record of the batch",
				 i, id);
			break;
		}
		size_t cur = strlen(res->first_failed);
		if (!cur || n < cur || (n == cur && strcmp(id, res->first_failed) < 0))
			memcpy(res->first_failed, id, n + 1);
	}
	if (res->outcome == DDA_SEND_PARTIAL)
		snprintf(res->msg, sizeof(res->msg), "%zu records reported failed, from %s",
			 json_array_size(list), res->first_failed);
	json_decref(doc);
}

/* The documented rule for HTTP answers (docs/replay.md): what a status says
 * about the target. */
void dda__http_fault(long status, struct dda_send_result *res)
{
	switch (status) {
	case 401: /* credentials refused */
	case 403:
	case 404: /* no such path or function */
	case 405: /* the URL does not take POST */
	case 410:
	case 413: /* a batch too large for it: every batch will be */
	case 501:
		res->fault = DDA_FAULT_CONFIG;
		return;
	case 429: /* throttled */
	case 503: /* slow down */
		res->fault = DDA_FAULT_THROTTLE;
		return;
	case 408: /* no verdict: a gateway or the network failed */
	case 502:
	case 504:
		res->fault = DDA_FAULT_TRANSPORT;
		return;
	}
	res->fault = DDA_FAULT_FUNCTION; /* the processor ran and said no */
}

int64_t dda__retry_after_parse(const char *v, size_t n, int64_t now)
{
	char buf[64];
	if (!n || n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	char *end;
	long long secs = strtoll(buf, &end, 10);
	if (end != buf && !*end)
		return secs < 0 ? -1 : (int64_t)DDA_MIN(secs, 86400LL) * DDA_USEC_PER_SEC;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	int64_t at = (int64_t)timegm(&tm) * DDA_USEC_PER_SEC;
	return at > now ? DDA_MIN(at - now, (int64_t)86400 * DDA_USEC_PER_SEC) : 0;
}

int dda__target_preflight(const struct dda_target_opts *o, struct dda_target_info *info,
			  struct dda_error *err)
{
	const char *s = o->spec;
	memset(info, 0, sizeof(*info));
	snprintf(info->function_arn, sizeof(info->function_arn), "%s", s);
	if (dda__target_check(s, err))
		return err->code;
	if (!strcmp(s, "-"))
		return 0;
	if (!strncmp(s, "file:", 5))
		return dda__output_check("target", s + 5, err);
	if (!strncmp(s, "exec:", 5))
		return dda__target_exec_preflight(o, err);
	if (!strncmp(s, "lambda:", 7))
		return dda__target_lambda_preflight(o, info, err);
	return dda__target_http_preflight(o, err);
}

int dda__output_check(const char *what, const char *path, struct dda_error *err)
{
	struct stat st;
	if (!stat(path, &st)) {
		if (S_ISDIR(st.st_mode))
			return dda_error_set(err, DDA_EIO, "cannot write the %s '%s': it is a directory",
					     what, path);
		if (access(path, W_OK))
			return dda_error_set(err, DDA_EIO, "cannot write the %s '%s': %s", what,
					     path, strerror(errno));
		return 0;
	}
	if (errno != ENOENT)
		return dda_error_set(err, DDA_EIO, "cannot write the %s '%s': %s", what, path,
				     strerror(errno));
	char *copy = strdup(path);
	if (!copy)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	const char *dir = dirname(copy);
	int rc = 0;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK))
		rc = dda_error_set(err, DDA_EIO, "cannot write the %s '%s': %s", what, path,
				   errno ? strerror(errno) : "its directory is not a directory");
	free(copy);
	return rc;
}
