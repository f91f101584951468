/* Entry point of the ddbaudit tool: one table of subcommands, dispatched on
 * argv[1], each implemented in its own cmd_<name>.c. */
#include "cli/cli.h"

static const struct command commands[] = {
    {"ls", dda__cmd_ls, OPT_RANGE | OPT_TEXT_FORMAT, "ls SOURCE [range] [--format text|json]",
     "list the audit objects of a time range",
     "0 listed, 2 usage error, 3 runtime failure (the listing\n"
     "could not be made, or ended early)."},
    {"verify", dda__cmd_verify, OPT_RANGE | OPT_REPORT | OPT_DECODE,
     "verify SOURCE [range] [--report DIR] [--format json|csv|md] [--fail-on LEVEL]",
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

int main(int argc, char **argv)
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
		printf("ddbaudit %s\n", dda_version());
		return EXIT_CLEAN;
	}
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
