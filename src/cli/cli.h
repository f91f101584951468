/* The ddbaudit command line: shared option parsing, progress and summary
 * output. The CLI is the only part of ddbaudit that prints or exits. */
#ifndef DDA_CLI_H
#define DDA_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include "util/util.h"
#include "ddbaudit/ddbaudit.h"
#include "aws/sts.h"

/* Exit statuses, as ddbaudit(1) documents them. */
enum {
	EXIT_CLEAN = 0,
	EXIT_ANOMALIES = 1,
	EXIT_USAGE = 2,
	EXIT_RUNTIME = 3,
};

/* Which options a command takes, for parsing and for its --help. */
enum {
	OPT_RANGE = 1 << 0,
	OPT_REPORT = 1 << 1,
	OPT_KEY = 1 << 2,
	OPT_TEXT_FORMAT = 1 << 3, /* --format text|json */
	OPT_DECODE = 1 << 4,
	OPT_REPLAY = 1 << 5,
	OPT_TABLE = 1 << 7, /* reconcile: --table ddb://, scan options */
	OPT_STATE = 1 << 8, /* verify's cron options: --state, --metrics, --write-baseline */
	OPT_RESTORE = 1 << 9, /* restore: --at, --to DEST, ... */
	OPT_EVIDENCE = 1 << 10, /* evidence ACTION BUNDLE and its checks */
	OPT_MERGE = 1 << 11,	/* merge DIR...: --report, --format, --fail-on only */
};

/* replay's own options, as given. */
struct replay_args {
	const char *target, *dlq, *checkpoint, *stream_arn, *table;
	const char *filter, *lambda_endpoint;
	int view, on_failure, max_inflight;
	int64_t batch_window; /* microseconds */
	unsigned event_mask;
	int parallelism, batch_size, max_retries;
	int64_t max_record_age; /* microseconds, -1 none */
	long timeout_ms;
	double max_rps;
	bool bisect, no_marker, dry_run;
};

/* reconcile's own options. */
struct table_args {
	int segments;
	bool consistent;
	double max_rcu;
};

/* restore's own options. */
struct restore_args {
	int64_t at, undo_since;
	const char *to, *keys_file, *baseline;
	bool create, overwrite;
	double max_wcu;
};

struct command;

struct cli {
	const char *prog;
	const char *cmd;
	const struct command *command;
	const char *source;
	struct dda_audit_opts audit;
	const char *report_dir;
	int format;   /* report format for stdout, -1 = default */
	int fail_on;  /* severity, or DDA_SEV__COUNT for never */
	int verbose;  /* -1 quiet, 0 normal, 1+ verbose */
	int progress; /* 0 never, 1 always, 2 auto */
	const char *key_text;
	bool versions;
	const char *since;
	const char *metrics; /* --metrics FILE or "emf", or NULL */
	struct replay_args replay;
	struct table_args table; /* reconcile; the table itself is replay.table */
	struct restore_args restore;
	const char *state_path; /* --state */
	bool since_state;	/* --since-state */
	int64_t state_watermark; /* the watermark this run writes into the state */
	int64_t late_window;	/* --late-window, microseconds (0: none) */
	bool late_window_given;
	json_t *options; /* options in effect, for the report */
	const char *shard_arg;	/* --shard K/N or auto, as given */
	const char **dirs;	/* merge: the shards' report directories (argv's) */
	size_t ndirs;
	char *shard_report_dir; /* --shard auto: DIR/shard-K-of-N, owned */
	char **shard_dirs;	/* merge: shard directories found under a run's DIR */
	bool fail_on_given;	/* --fail-on was given */
	long long shard_count;	/* --shard-count, 0 when not given */
	const char *baseline_path;    /* --baseline */
	struct dda_baseline *baseline; /* loaded from baseline_path, owned */
	const char *write_baseline;   /* --write-baseline */
	const char *bundle;	      /* --bundle */
	const char *sign_key;	      /* --sign-key */
	const char *operand;	      /* evidence: the bundle after the action */
	struct dda_evidence_opts evidence; /* evidence verify's checks */
	bool is_tty;
};

struct command {
	const char *name;
	int (*run)(int argc, char **argv, struct cli *c);
	unsigned opts;
	const char *usage;
	const char *summary;
	const char *exit_status; /* the --help footer */
};

/* Prints cmd's --help on stdout. */
void dda__cli_help(const struct command *cmd);

/* The name among names nearest to typed (a typo's likely meaning), or NULL
 * when none is near enough to suggest. */
const char *dda__cli_nearest(const char *typed, const char *const *names, size_t n);

/* Parses the options of a command (argv[0] is the command name) into c.
 * Returns 0, or an exit status (EXIT_USAGE after printing why, or
 * EXIT_CLEAN after printing --help). */
int dda__cli_parse(int argc, char **argv, const struct command *cmd, struct cli *c);
void dda__cli_release(struct cli *c);

/* Messages on stderr: "ddbaudit: <cmd>: ..." */
void dda__cli_error(const struct cli *c, const char *fmt, ...) DDA_PRINTF(2, 3);
void dda__cli_warn(const struct cli *c, const char *fmt, ...) DDA_PRINTF(2, 3);

/* The progress callback for dda_audit_opts (ctx is the struct cli). */
void dda__cli_progress(void *ctx, const struct dda_progress *p);

/* --memory-limit (memory.c): a size in bytes with an optional K, M, G or T
 * (powers of 1024; "KiB" and "KB" read the same), "off" or 0 for none.
 * 0 or DDA_EINVAL. */
int dda__cli_parse_size(const char *arg, uint64_t *out);
/* The default limit, half the memory the process may use, and where that
 * came from: "cgroup", "memtotal", or "unknown" (limit 0: none). */
void dda__cli_default_memory(uint64_t *limit, const char **source);

/* Maps a library error to an exit status. */
int dda__cli_exit_for(int err);
/* mkdir -p: creates path and its missing parents. 0, or DDA_EIO (or
 * DDA_ENOMEM) with the directory that could not be made in err. */
int dda__cli_make_dir(const char *path, struct dda_error *err);

int dda__cmd_ls(int argc, char **argv, struct cli *c);
int dda__cmd_verify(int argc, char **argv, struct cli *c);
int dda__cmd_history(int argc, char **argv, struct cli *c);
int dda__cmd_replay(int argc, char **argv, struct cli *c);
int dda__cmd_reconcile(int argc, char **argv, struct cli *c);
int dda__cmd_restore(int argc, char **argv, struct cli *c);

/* --report DIR: the manifest is written under a temporary name in DIR
 * (c->audit.manifest_path) and renamed with the reports. 0 or an exit
 * status, after saying why. */
int dda__cli_report_manifest(struct cli *c, struct dda__afile *man);

/* The reports of a finished run: --report DIR and/or stdout (--format, by
 * default Markdown when there is no DIR). 0 or an exit status. */
int dda__cli_write_reports(struct cli *c, const struct dda_report_info *info,
			   const struct dda_result *res);
int dda__cmd_evidence(int argc, char **argv, struct cli *c);
int dda__cmd_merge(int argc, char **argv, struct cli *c);

/* Shards (cli_shard.c). Resolves --shard K/N, or --shard auto with
 * --shard-count from AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX, into
 * c->audit.src.shard, and refuses the options a sharded run cannot take
 * yet; 0, or 1 after printing why (a usage error). */
int dda__cli_shard_resolve(struct cli *c);
/* merge: a run's directory among c->dirs (one without a report.json of its
 * own) stands for the shard-K-of-N/ directories in it, as `--shard auto
 * --report DIR` writes them. 0, or 1 after printing why. */
int dda__cli_shard_dirs(struct cli *c);
/* report.json's "shard" section of a sharded run (NULL when not sharded),
 * a new reference. */
json_t *dda__cli_shard_json(const struct cli *c, const struct dda_result *res);
/* The fields every sharded command's "shard" section has (index, count,
 * assignment, listed, read, other_shards, listing_sha256, and
 * options_sha256 as given): a new object, or NULL. */
json_t *dda__cli_shard_base_json(const struct cli *c, const struct dda_result *res,
				 const char *options_sha256);
/* The options that must agree across the shards of one run: SHA-256 (hex)
 * of options (a report's run.options) without the shard and the clock. */
int dda__cli_options_digest(const json_t *options, char out[2 * 32 + 1]);

/* --bundle (cli_bundle.c). begin, before the audit: without --report, has
 * the audit write its manifest to a temporary file beside the bundle
 * (man). info: the bundle's name and the previous bundle of the --state
 * chain (st may be NULL) for report.json. write, after the audit and
 * before the reports: the bundle, its SHA-256 handed to the state. Each
 * returns 0 or an exit status, having said why. */
int dda__cli_bundle_begin(struct cli *c, struct dda__afile *man);
void dda__cli_bundle_info(const struct cli *c, const struct dda_state *st,
			  struct dda_report_info *info);
int dda__cli_bundle_write(struct cli *c, struct dda_state *st, const struct dda_report_info *info,
			  const struct dda_result *res);

/* Exit status of a finished run: runtime failure, anomalies at or above
 * --fail-on, or clean. */
int dda__cli_verdict(const struct cli *c, const struct dda_result *res);

/* --metrics (metrics.c): begin before the run (opens FILE, so that an
 * unwritable path fails first), end after the reports with the run's exit
 * status, which end returns, or EXIT_RUNTIME when the metrics could not be
 * written. res may be an empty result (nothing could be read). */
struct dda__cli_metrics {
	const char *path; /* borrowed from struct cli */
	struct dda__afile file;
	int64_t started;
};
void dda__cli_metrics_init(struct dda__cli_metrics *m);
int dda__cli_metrics_begin(struct cli *c, struct dda__cli_metrics *m);
int dda__cli_metrics_end(struct cli *c, struct dda__cli_metrics *m,
			 const struct dda_result *res, int status);
void dda__cli_metrics_release(struct dda__cli_metrics *m);
/* What a replay did, for its metrics: zero where the run never got. */
struct dda__cli_replay_figures {
	uint64_t objects, read_bytes;	 /* the source read */
	uint64_t planned, planned_bytes; /* records in the plan, serialized */
	uint64_t duplicates, filtered;	 /* changes left out of the plan */
	uint64_t acknowledged, resumed, dead_lettered, dropped; /* planned records */
	uint64_t batches, retries, throttles, bisections;
	double p50_seconds, p99_seconds, delivery_seconds;
};
/* As dda__cli_metrics_end, for a replay: its outcome follows status (0
 * clean, 1 failures, else incomplete). */
int dda__cli_metrics_replay_end(struct cli *c, struct dda__cli_metrics *m,
				const struct dda__cli_replay_figures *f, int status);

/* The git commit the binary was built from, or "unknown" (generated by
 * CMake at configure time). */
const char *dda__cli_commit(void);
/* Calls fn for every long option cmd takes, in the option table's order. */
void dda__cli_each_option(const struct command *cmd,
			  void (*fn)(void *ctx, const char *name, bool takes_arg), void *ctx);
/* The hidden `--completions bash|zsh`: the script on stdout; an exit status. */
int dda__cli_completions(const char *shell, const struct command *cmds, size_t n);
/* --version: "ddbaudit VERSION (commit COMMIT)" on stdout. */
void dda__cli_print_version(void);

/* --state (cli_state.c): opens and locks the state, sets the range from
 * it and hooks it into c->audit; *st is NULL without --state. Returns 0, an
 * exit status, or -1 when there is nothing to audit yet (--since-state
 * before the next hour has settled): the run ends there, with status 0. */
int dda__cli_state_start(struct cli *c, struct dda_state **st);
/* After the audit: the rest of the old state; 0 or EXIT_RUNTIME. */
int dda__cli_state_drain(struct cli *c, struct dda_state *st);
/* After the reports: the new state replaces the old; 0 or EXIT_RUNTIME. */
int dda__cli_state_commit(struct cli *c, struct dda_state *st,
			  const struct dda_report_info *info, const struct dda_result *res);

/* The run's metadata for a report (run_meta.c): generated_at, the
 * command line ("ddbaudit" and argv shell-quoted, registered secrets and a
 * URL's user:password redacted), commit, host, --versions and the caller.
 * The caller is asked of STS with the credentials AWS clients use when the
 * source is s3:// or aws says the run called AWS anyway; otherwise only
 * with credentials found without the network (none: "local source: no AWS
 * call made"). Never fatal; bounded by DDA_STS_IDENTITY_TIMEOUT_MS. info's
 * pointers borrow from m, zero-initialised by the caller and released with
 * dda__cli_run_meta_release after the reports. */
struct dda__cli_run_meta {
	char *command_line;
	char host[256];
	struct dda_sts_identity id;
	struct dda_error why;
};
void dda__cli_run_meta(struct cli *c, int argc, char **argv, bool aws, struct dda__cli_run_meta *m,
		       struct dda_report_info *info);
void dda__cli_run_meta_release(struct dda__cli_run_meta *m);

/* Installs SIGINT/SIGTERM handlers that set c->audit.stop. */
void dda__cli_catch_signals(struct cli *c);

#endif
