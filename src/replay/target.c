/* Targets by kind, and the ReportBatchItemFailures answer they share. */
#include "replay/target_impl.h"

#include <string.h>

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

int dda__target_send(struct dda_target *t, const char *body, size_t len,
		     struct dda_send_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = -1;
	return t->send(t, body, len, res);
}

/* Lambda's rules: no answer, or no (or an empty) batchItemFailures list, is
 * success; a list names the failed records, and the batch is retried from
 * the lowest; an entry without a usable itemIdentifier fails the batch. */
void dda__parse_item_failures(const char *body, size_t len, struct dda_send_result *res)
{
	json_t *doc = len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	json_t *list = json_object_get(doc, "batchItemFailures");
	size_t i;
	json_t *f;
	res->outcome = DDA_SEND_OK;
	if (!json_is_array(list) || !json_array_size(list)) {
		json_decref(doc);
		return;
	}
	res->outcome = DDA_SEND_PARTIAL;
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
		size_t cur = strlen(res->first_failed);
		if (!cur || n < cur || (n == cur && strcmp(id, res->first_failed) < 0))
			memcpy(res->first_failed, id, n + 1);
	}
	if (res->outcome == DDA_SEND_PARTIAL)
		snprintf(res->msg, sizeof(res->msg), "%zu records reported failed, from %s",
			 json_array_size(list), res->first_failed);
	json_decref(doc);
}
