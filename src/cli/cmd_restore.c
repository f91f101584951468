/* ddbaudit restore: each item's state as of a time, from the log
 * (include/ddbaudit/restore.h). */
#include "cli/cli.h"

#include <errno.h>

struct keys {
	struct dda_buf *v;
	const uint8_t **ptrs;
	size_t *lens;
	size_t n;
};

static void keys_release(struct keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		dda_buf_release(&k->v[i]);
	free(k->v);
	free(k->ptrs);
	free(k->lens);
}

static int add_key(struct cli *c, struct keys *k, const char *text, const char *where)
{
	struct dda_buf why;
	struct dda_buf *nv = realloc(k->v, (k->n + 1) * sizeof(*nv));
	if (!nv)
		return EXIT_RUNTIME;
	k->v = nv;
	dda_buf_init(&k->v[k->n], 1 << 20);
	dda_buf_init(&why, 4096);
	int rc = dda_canon_key_parse(text, &k->v[k->n], &why);
	if (rc) {
		dda__cli_error(c, "invalid key%s '%s': %s", where, text, why.ptr ? why.ptr : "");
		dda_buf_release(&k->v[k->n]);
	} else {
		k->n++;
	}
	dda_buf_release(&why);
	return rc ? EXIT_USAGE : 0;
}

/* --key and --keys-file (a key a line; blank lines and '#' comments skipped). */
static int load_keys(struct cli *c, struct keys *k)
{
	int status = c->key_text ? add_key(c, k, c->key_text, "") : 0;
	if (!status && c->restore.keys_file) {
		FILE *f = fopen(c->restore.keys_file, "r");
		char *line = NULL, where[64];
		size_t cap = 0;
		ssize_t len;
		if (!f) {
			dda__cli_error(c, "cannot read --keys-file '%s': %s", c->restore.keys_file,
				       strerror(errno));
			return EXIT_USAGE;
		}
		for (unsigned long no = 1; !status && (len = getline(&line, &cap, f)) >= 0; no++) {
			while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
				line[--len] = '\0';
			if (!len || line[0] == '#')
				continue;
			snprintf(where, sizeof(where), " on line %lu of --keys-file", no);
			status = add_key(c, k, line, where);
		}
		free(line);
		fclose(f);
	}
	if (!status && k->n) {
		k->ptrs = calloc(k->n, sizeof(*k->ptrs));
		k->lens = calloc(k->n, sizeof(*k->lens));
		if (!k->ptrs || !k->lens)
			return EXIT_RUNTIME;
		for (size_t i = 0; i < k->n; i++) {
			k->ptrs[i] = (const uint8_t *)k->v[i].ptr;
			k->lens[i] = k->v[i].len;
		}
	}
	return status;
}

/* The write phase's progress line, as the reading phase's. */
static void write_progress(void *ctx, uint64_t done, uint64_t total, bool finished)
{
	struct cli *c = ctx;
	bool show = c->progress == 1 || (c->progress == 2 && c->is_tty && c->verbose >= 0);
	if (!show)
		return;
	if (finished && c->is_tty)
		fputs("\r\033[K", stderr);
	else if (!finished)
		fprintf(stderr, "%swriting: %llu of %llu items%s", c->is_tty ? "\r\033[K" : "",
			(unsigned long long)done, (unsigned long long)total, c->is_tty ? "" : "\n");
}

static int check_args(struct cli *c)
{
	bool undo = c->restore.undo_since != DDA_TIME_NONE;
	if ((c->restore.at == DDA_TIME_NONE) == !undo || !c->restore.to) {
		dda__cli_error(c, "restore needs --at TIME (or, for chosen keys, --undo-since "
				  "TIME) and --to ddb://TABLE, a directory or -");
		return EXIT_USAGE;
	}
	if (undo && !c->key_text && !c->restore.keys_file) {
		dda__cli_error(c, "--undo-since writes chosen items back: give --key or --keys-file");
		return EXIT_USAGE;
	}
	if (!strcmp(c->restore.to, "-") && (c->format >= 0)) {
		dda__cli_error(c, "--to - writes the items on stdout: write the report with "
				  "--report DIR instead of --format");
		return EXIT_USAGE;
	}
	if (c->format == DDA_FMT__COUNT) {
		dda__cli_error(c, "--format text applies to history; use json, csv or md");
		return EXIT_USAGE;
	}
	return 0;
}

int dda__cmd_restore(int argc, char **argv, struct cli *c)
{
	struct dda_error err = {0};
	struct dda_result res;
	struct dda_restore_stats st;
	struct keys keys = {0};
	struct dda__cli_run_meta meta = {0};
	char t[DDA_TIME_STRLEN];
	int status = check_args(c);
	if (!status)
		status = load_keys(c, &keys);
	if (status) {
		keys_release(&keys);
		return status;
	}
	/* Every change at or before --at; for an undo, every change there is. */
	bool undo = c->restore.undo_since != DDA_TIME_NONE;
	if (!undo)
		c->audit.src.range.to = c->restore.at + 1;
	c->audit.dec.range = c->audit.src.range;
	struct dda_restore_opts ro = {.at = undo ? c->audit.now : c->restore.at,
				      .undo_since = c->restore.undo_since,
				      .to = c->restore.to,
				      .baseline = c->restore.baseline,
				      .create = c->restore.create,
				      .overwrite = c->restore.overwrite,
				      .dry_run = c->replay.dry_run,
				      .dry_out = stdout,
				      .ndjson_out = stdout,
				      .max_wcu = c->restore.max_wcu,
				      .checkpoint = c->replay.checkpoint,
				      .progress = write_progress,
				      .progress_ctx = c,
				      .keys = keys.ptrs,
				      .key_lens = keys.lens,
				      .nkeys = keys.n};
	c->audit.progress = dda__cli_progress;
	c->audit.ctx = c;
	dda__cli_catch_signals(c);
	int rc = dda_restore_run(&c->audit, &ro, &res, &st, &err);
	if (rc)
		dda__cli_error(c, "%s", err.msg);
	status = rc ? dda__cli_exit_for(rc) : 0;
	/* The log's findings: with --report DIR, or --format on stdout. */
	if (res.objs && (c->report_dir || c->format >= 0)) {
		json_t *extra = json_pack(
		    "{s{sssssIsIsIsIsIsIsb}}", "restore", "at", dda_time_format(ro.at, true, t), "to",
		    ro.to, "items", (json_int_t)st.items, "present", (json_int_t)st.present,
		    "written", (json_int_t)st.written, "deleted", (json_int_t)st.deleted,
		    "uncertain", (json_int_t)st.uncertain, "files", (json_int_t)st.files, "dry_run",
		    ro.dry_run);
		struct dda_report_info info = {.source = c->source,
					       .range = c->audit.src.range,
					       .options = c->options,
					       .fail_on = c->fail_on,
					       .extra = extra};
		/* A table was written with AWS credentials: the caller is asked. */
		bool table = !strncmp(ro.to, "ddb://", 6) || !strncmp(ro.to, "arn:", 4);
		dda__cli_run_meta(c, argc, argv, table, &meta, &info);
		int s = dda__cli_write_reports(c, &info, &res);
		dda__cli_run_meta_release(&meta);
		if (!status)
			status = s;
		json_decref(extra);
	}
	if (!status)
		status = dda__cli_verdict(c, &res);
	if (st.resumed && c->verbose >= 0)
		fprintf(stderr, "ddbaudit: restore: resumed from the checkpoint: %llu items were "
				"written by an earlier run\n",
			(unsigned long long)st.resumed);
	if (st.restarted)
		dda__cli_warn(c, "the checkpoint did not match the items' order (the log changed): "
				 "every item was written again");
	if (undo && !rc && st.refused && !status)
		status = EXIT_ANOMALIES; /* an item changed since was left as it is */
	if (undo && c->verbose >= 0)
		fprintf(stderr,
			"ddbaudit: restore: undo since %s: %llu items chosen; %llu written back, "
			"%llu unchanged, %llu refused (changed since: left as they are); exit %d\n",
			dda_time_format(ro.undo_since, true, t), (unsigned long long)st.items,
			(unsigned long long)st.undone, (unsigned long long)st.unchanged,
			(unsigned long long)st.refused, status);
	else if (c->verbose >= 0)
		fprintf(stderr,
			"ddbaudit: restore: as of %s: %llu items in the log, %llu present; %llu "
			"%s, %llu deleted%s%s; %llu uncertain (errors in their history)%s; exit %d\n",
			dda_time_format(ro.at, true, t), (unsigned long long)st.items,
			(unsigned long long)st.present, (unsigned long long)st.written,
			ro.dry_run ? "to put (dry run)" : "written", (unsigned long long)st.deleted,
			st.created ? ", table created" : "", st.files ? ", in data files" : "",
			(unsigned long long)st.uncertain, rc ? " (not finished)" : "", status);
	dda_result_release(&res);
	keys_release(&keys);
	return status;
}
