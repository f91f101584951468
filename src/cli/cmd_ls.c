/* ddbaudit ls: list the objects of a range, as `aws s3 ls --recursive`
 * does: last-modified time, size, key (and versionId when known); with
 * --format json, one JSON object a line, so a listing of any length streams. */
#include "cli/cli.h"

static void print_object(const struct dda_object *o)
{
	char t[DDA_TIME_STRLEN] = "-";
	if (o->last_modified != DDA_TIME_NONE) {
		int y, mo, d, h, mi, s;
		dda_time_to_civil(o->last_modified, &y, &mo, &d, &h, &mi, &s, NULL);
		snprintf(t, sizeof(t), "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s);
	}
	printf("%-19s %10lld %s%s%s\n", t, (long long)o->size, o->key, o->version ? "  " : "",
	       o->version ? o->version : "");
}

static json_t *time_or_null(int64_t t)
{
	char text[DDA_TIME_STRLEN];
	return t == DDA_TIME_NONE ? json_null() : json_string(dda_time_format(t, false, text));
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* {"key", "version", "etag", "size", "last_modified", "hour"}: unknown
 * values are null. */
static int print_object_json(const struct dda_object *o, struct dda_error *err)
{
	json_t *j = json_pack("{sosososososo}", "key", json_string(o->key), "version",
			      string_or_null(o->version), "etag", string_or_null(o->etag), "size",
			      o->size >= 0 ? json_integer(o->size) : json_null(), "last_modified",
			      time_or_null(o->last_modified), "hour", time_or_null(o->hour));
	int rc = !j || json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) ||
		 fputc('\n', stdout) == EOF;
	json_decref(j);
	return rc ? dda_error_set(err, DDA_EIO, "cannot write the listing to stdout") : 0;
}

int dda__cmd_ls(int argc, char **argv, struct cli *c)
{
	struct dda_error err = {0};
	struct dda_objtab *objs = dda_objtab_new();
	struct dda_source *src = NULL;
	struct dda_chunk chunk;
	uint64_t n = 0, bytes = 0;
	int status = EXIT_CLEAN;
	(void)argc;
	(void)argv;
	dda_chunk_init(&chunk);
	if (!objs) {
		dda__cli_error(c, "out of memory");
		return EXIT_RUNTIME;
	}
	struct dda_source_opts so = c->audit.src;
	so.list_only = true; /* as aws s3 ls: list, never fetch */
	int rc = dda_source_open(&src, c->source, objs, &so, &err);
	while (!rc) {
		int got = dda_source_next(src, &chunk, &err);
		if (got <= 0) {
			rc = got;
			break;
		}
		if (chunk.last) {
			const struct dda_object *o = dda_objtab_get(objs, chunk.obj);
			if (c->format == DDA_FMT_JSON)
				rc = print_object_json(o, &err);
			else
				print_object(o);
			n++;
			bytes += o->size > 0 ? (uint64_t)o->size : 0;
		}
		dda_chunk_release(&chunk);
	}
	if (rc) {
		dda__cli_error(c, "%s", err.msg[0] ? err.msg : dda_strerror(rc));
		status = dda__cli_exit_for(rc);
	}
	if (c->verbose >= 0)
		fprintf(stderr, "ddbaudit: ls: %llu objects, %llu bytes%s\n", (unsigned long long)n,
			(unsigned long long)bytes,
			src && src->prefixes_skipped ? " (range pruned)" : "");
	dda_chunk_release(&chunk);
	dda_source_free(src);
	dda_objtab_free(objs);
	return status;
}
