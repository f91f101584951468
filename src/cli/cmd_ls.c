/* ddbaudit ls: list the objects of a range, as `aws s3 ls --recursive`
 * does: last-modified time, size, key (and versionId when known); with
 * --format json, one JSON object a line, so a listing of any length streams. */
#include "cli/cli.h"

#include <errno.h>

static int write_failed(struct dda_error *err)
{
	return dda_error_set(err, DDA_EIO, "cannot write the listing to stdout: %s",
			     strerror(errno));
}

/* Key and version as text (docs/report.md: names that are not UTF-8). */
static int print_object(const struct dda_object *o, struct dda_buf *tmp, struct dda_error *err)
{
	char t[DDA_TIME_STRLEN] = "-";
	if (o->last_modified != DDA_TIME_NONE) {
		int y, mo, d, h, mi, s;
		dda_time_to_civil(o->last_modified, &y, &mo, &d, &h, &mi, &s, NULL);
		snprintf(t, sizeof(t), "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s);
	}
	int rc = printf("%-19s %10lld %s", t, (long long)o->size, dda__name_text(tmp, o->key));
	if (rc >= 0 && o->version)
		rc = printf("  %s", dda__name_text(tmp, o->version));
	if (rc >= 0)
		rc = putchar('\n');
	return rc < 0 || ferror(stdout) ? write_failed(err) : 0;
}

static int add_time(struct dda_buf *line, const char *name, int64_t t)
{
	char text[DDA_TIME_STRLEN];
	if (t == DDA_TIME_NONE)
		return dda_buf_addf(line, ",\"%s\":null", name);
	return dda_buf_addf(line, ",\"%s\":\"%s\"", name, dda_time_format(t, false, text));
}

/* {"key", "version", "etag", "size", "last_modified", "hour"}: unknown
 * values are null; a key or version that is not UTF-8 is escaped, its bytes
 * in "key_b64" / "version_b64" (docs/report.md). */
static int print_object_json(const struct dda_object *o, struct dda_buf *line,
			     struct dda_error *err)
{
	dda_buf_reset(line);
	int rc = dda_buf_addc(line, '{');
	if (!rc)
		rc = dda__json_name(line, "key", o->key, strlen(o->key));
	if (!rc)
		rc = dda_buf_addc(line, ',');
	if (!rc)
		rc = o->version ? dda__json_name(line, "version", o->version, strlen(o->version))
				: dda_buf_adds(line, "\"version\":null");
	if (!rc)
		rc = dda_buf_adds(line, ",");
	if (!rc)
		rc = o->etag ? dda__json_name(line, "etag", o->etag, strlen(o->etag))
			     : dda_buf_adds(line, "\"etag\":null");
	if (!rc)
		rc = o->size >= 0 ? dda_buf_addf(line, ",\"size\":%lld", (long long)o->size)
				  : dda_buf_adds(line, ",\"size\":null");
	if (!rc)
		rc = add_time(line, "last_modified", o->last_modified);
	if (!rc)
		rc = add_time(line, "hour", o->hour);
	if (!rc)
		rc = dda_buf_adds(line, "}\n");
	if (rc)
		return dda_error_set(err, rc, "cannot list '%s': %s", o->key, dda_strerror(rc));
	if (fwrite(line->ptr, 1, line->len, stdout) != line->len || ferror(stdout))
		return write_failed(err);
	return 0;
}

int dda__cmd_ls(int argc, char **argv, struct cli *c)
{
	struct dda_error err = {0};
	struct dda_objtab *objs = dda_objtab_new();
	struct dda_source *src = NULL;
	struct dda_chunk chunk;
	struct dda_buf tmp;
	uint64_t n = 0, bytes = 0;
	int status = EXIT_CLEAN;
	(void)argc;
	(void)argv;
	dda_chunk_init(&chunk);
	dda_buf_init(&tmp, 1 << 20);
	if (!objs) {
		dda__cli_error(c, "out of memory");
		return EXIT_RUNTIME;
	}
	dda__cli_catch_signals(c); /* a listing that never ends can be stopped */
	struct dda_source_opts so = c->audit.src;
	so.list_only = true; /* as aws s3 ls: list, never fetch */
	int rc = dda_source_open(&src, c->source, objs, &so, &err);
	while (!rc) {
		if (*c->audit.stop) {
			rc = dda_error_set(&err, DDA_EINTR, "interrupted: the listing is incomplete");
			break;
		}
		int got = dda_source_next(src, &chunk, &err);
		if (got <= 0) {
			rc = got;
			break;
		}
		if (chunk.last) {
			const struct dda_object *o = dda_objtab_get(objs, chunk.obj);
			rc = c->format == DDA_FMT_JSON ? print_object_json(o, &tmp, &err)
						       : print_object(o, &tmp, &err);
			n++;
			bytes += o->size > 0 ? (uint64_t)o->size : 0;
		}
		dda_chunk_release(&chunk);
	}
	/* The buffered tail too: a listing cut short must not exit 0. */
	if (!rc && fflush(stdout))
		rc = write_failed(&err);
	if (rc) {
		dda__cli_error(c, "%s", err.msg[0] ? err.msg : dda_strerror(rc));
		status = dda__cli_exit_for(rc);
	}
	if (c->verbose >= 0)
		fprintf(stderr, "ddbaudit: ls: %llu objects, %llu bytes%s\n", (unsigned long long)n,
			(unsigned long long)bytes,
			src && src->prefixes_skipped ? " (range pruned)" : "");
	dda_chunk_release(&chunk);
	dda_buf_release(&tmp);
	dda_source_free(src);
	dda_objtab_free(objs);
	return status;
}
