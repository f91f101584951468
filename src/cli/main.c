/* Entry point of the ddbaudit tool: one table of subcommands, dispatched on
 * argv[1], each implemented in its own cmd_<name>.c. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static const struct command commands[] = {
    {"ls", dda__cmd_ls, OPT_RANGE | OPT_TEXT_FORMAT, "ls SOURCE [range] [--format text|json]",
     "list the audit objects of a time range",
     "0 listed, 2 usage error, 3 runtime failure (the listing\n"
     "could not be made, or ended early)."},
    {"verify", dda__cmd_verify, OPT_RANGE | OPT_REPORT | OPT_DECODE | OPT_STATE,
     "verify SOURCE [range] [--report DIR] [--format json|csv|md|html] [--fail-on LEVEL]",
     "validate every record, rebuild item histories, report anomalies",
     "0 clean, 1 anomalies at or above --fail-on, 2 usage error,\n"
     "3 runtime failure."},
    {"history", dda__cmd_history, OPT_RANGE | OPT_KEY | OPT_TEXT_FORMAT | OPT_DECODE,
     "history SOURCE --key 'UserId=u,ActivityId=a' [range] [--format text|json]",
     "show one item's timeline with its images",
     "0 shown (no error on the item), 1 an error-severity anomaly\n"
     "on the item, a --key whose attribute names no item of the log has, or no\n"
     "records in the range at all, 2 usage error, 3 runtime failure."},
    {"replay", dda__cmd_replay, OPT_RANGE | OPT_KEY | OPT_DECODE | OPT_REPLAY,
     "replay SOURCE --target TARGET [range] [selection] [delivery options]",
     "re-emit recorded changes as DynamoDB Stream events to a processor",
     "0 every record acknowledged, 1 some records went to the DLQ,\n"
     "2 usage error, 3 stopped early (runtime failure or interrupted)."},
    {"reconcile", dda__cmd_reconcile, OPT_RANGE | OPT_REPORT | OPT_DECODE | OPT_TABLE,
     "reconcile SOURCE --table ddb://TABLE [range] [--report DIR] [--format json|csv|md|html]",
     "compare each item's state in the log with the live table",
     "0 the log and the table agree (and the log is clean), 1\n"
     "findings at or above --fail-on (UNLOGGED_ITEM, MISSING_ITEM, STATE_DRIFT are\n"
     "errors), 2 usage error, 3 runtime failure (the table or the log could not be\n"
     "read whole)."},
    {"restore", dda__cmd_restore, OPT_KEY | OPT_DECODE | OPT_REPORT | OPT_RESTORE,
     "restore SOURCE --at TIME --to ddb://TABLE|DIR|- [--create] [--key KEY]",
     "rebuild each item's state as of a time from the log",
     "0 every state written (and the log clean), 1 written, but\n"
     "the log has findings at or above --fail-on (uncertain items: see the report), 2\n"
     "usage error (a table that is not empty or does not exist), 3 runtime failure\n"
     "(nothing is written from a log that could not be read whole)."},
    {"merge", dda__cmd_merge, OPT_MERGE,
     "merge DIR... [--report OUT] [--format json|csv|md|html] [--fail-on LEVEL]",
     "join the reports of the shards of one run into one",
     "0 clean, 1 anomalies at or above --fail-on, 2 usage error\n"
     "(a directory that is not a shard's report, shards of different runs, a shard\n"
     "given twice), 3 a shard is missing, a shard's run was incomplete (the merged\n"
     "report says so) or a report could not be read."},
    {"evidence", dda__cmd_evidence, OPT_EVIDENCE | OPT_TEXT_FORMAT,
     "evidence verify BUNDLE [--pubkey PEM | --kms KEY_ID] [--previous BUNDLE] [--recheck]",
     "check an evidence bundle: signature, sums, report against manifest, chain",
     "0 every check holds, 1 a check failed (each is named), 2 usage\n"
     "error, 3 a check could not be made (unreadable bundle, key or network) or a\n"
     "signature is present and no key was given to check it."},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ddbaudit <command> SOURCE [options]\n"
		     "       ddbaudit help <command> | -V | --version\n\n"
		     "Audit and replay the change logs of DynamoDB tables.\n\ncommands:\n");
	for (size_t i = 0; i < DDA_ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\nSOURCE is s3://BUCKET/PREFIX/ (S3 or an S3-compatible endpoint), a directory\n"
		"laid out like the bucket, an archive (.tar, .tar.gz, .tgz, .zip), an NDJSON\n"
		"file (.ndjson, .jsonl, optionally .gz) or '-' for NDJSON on stdin.\n\n"
		"Run 'ddbaudit help <command>' or 'ddbaudit <command> --help' for a command's\n"
		"options, and see ddbaudit(1).\n"
		"Exit status: 0 clean, 1 findings (anomalies at or above --fail-on), 2 usage\n"
		"error, 3 runtime failure.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < DDA_ARRAY_SIZE(commands); i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

/* "not a ddbaudit command", with the command a typo most likely meant. */
static int unknown_command(const char *name)
{
	const char *names[DDA_ARRAY_SIZE(commands) + 1];
	for (size_t i = 0; i < DDA_ARRAY_SIZE(commands); i++)
		names[i] = commands[i].name;
	names[DDA_ARRAY_SIZE(commands)] = "help";
	const char *near = dda__cli_nearest(name, names, DDA_ARRAY_SIZE(names));
	if (near)
		fprintf(stderr, "ddbaudit: '%s' is not a ddbaudit command; did you mean '%s'?\n",
			name, near);
	else
		fprintf(stderr, "ddbaudit: '%s' is not a ddbaudit command\n\n", name);
	if (!near)
		usage(stderr);
	return EXIT_USAGE;
}

/* ddbaudit help [COMMAND] */
static int help_command(int argc, char **argv)
{
	if (argc < 3) {
		usage(stdout);
		return EXIT_CLEAN;
	}
	const struct command *cmd = find_command(argv[2]);
	if (!cmd)
		return unknown_command(argv[2]);
	dda__cli_help(cmd);
	return EXIT_CLEAN;
}

/* Makes sure file descriptors 0, 1 and 2 are open. A closed one would be
 * handed out by the next open() (the manifest, a DLQ file) and receive what
 * was meant for stdout. A closed one is taken by /dev/null opened so that
 * its use fails (stdin write-only, stdout and stderr read-only): output to a
 * closed stdout is a write error (EBADF), as it would have been. */
static int occupy_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int got = open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) | O_NOCTTY);
		if (got < 0)
			return -1;
		/* The lowest free descriptor: fd itself, as the lower ones are open. */
		if (got != fd) {
			close(got);
			return -1;
		}
	}
	return 0;
}

/* Output that could not be written is a failure, not a success with a
 * short listing: the buffered tail is flushed and closed here, and any write
 * error on stdout, earlier or now, makes the run a runtime failure. */
static int close_stdout(int status)
{
	bool failed = ferror(stdout) != 0;
	int e = 0;
	if (fflush(stdout))
		failed = true, e = errno;
	if (fclose(stdout) && !failed)
		failed = true, e = errno;
	if (!failed)
		return status;
	/* A command that failed already said why (often this very error). */
	if (status != EXIT_RUNTIME)
		fprintf(stderr, "ddbaudit: cannot write to stdout%s%s\n", e ? ": " : "",
			e ? strerror(e) : "");
	return EXIT_RUNTIME;
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(stdout), EXIT_CLEAN;
	if (!strcmp(argv[1], "help"))
		return help_command(argc, argv);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") ||
	    !strcmp(argv[1], "version")) {
		dda__cli_print_version();
		return EXIT_CLEAN;
	}
	/* Hidden: the build generates the shell completions with it. */
	if (!strcmp(argv[1], "--completions"))
		return dda__cli_completions(argc > 2 ? argv[2] : NULL, commands,
					    DDA_ARRAY_SIZE(commands));
	const struct command *cmd = find_command(argv[1]);
	if (!cmd)
		return unknown_command(argv[1]);
	struct cli c;
	int rc = dda__cli_parse(argc - 1, argv + 1, cmd, &c);
	if (!rc)
		rc = cmd->run(argc - 1, argv + 1, &c);
	else if (rc < 0)
		rc = EXIT_CLEAN;
	dda__cli_release(&c);
	return rc;
}

int main(int argc, char **argv)
{
	if (occupy_std_fds())
		return EXIT_RUNTIME; /* no /dev/null: nowhere safe to say so either */
	return close_stdout(run(argc, argv));
}
