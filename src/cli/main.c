/* Entry point of the ddbaudit tool: one table of subcommands, dispatched on
 * argv[1], each implemented in its own cmd_<name>.c. */
#include "cli/cli.h"

static const struct command commands[] = {
    {"ls", cmd_ls, OPT_RANGE, "ls SOURCE [range] [options]",
     "list the audit objects of a time range"},
    {"verify", cmd_verify, OPT_RANGE | OPT_REPORT | OPT_DECODE,
     "verify SOURCE [range] [--report DIR] [--format json|csv|md] [--fail-on LEVEL]",
     "validate every record, rebuild item histories, report anomalies"},
    {"history", cmd_history, OPT_RANGE | OPT_KEY | OPT_HISTORY_FORMAT | OPT_DECODE,
     "history SOURCE --key 'UserId=u,ActivityId=a' [range] [--format text|json]",
     "show one item's timeline with its images"},
    {"replay", cmd_replay, OPT_RANGE | OPT_KEY | OPT_DECODE | OPT_REPLAY,
     "replay SOURCE --target TARGET [range] [selection] [delivery options]",
     "re-emit recorded changes as DynamoDB Stream events to a processor"},
};

const struct command *cli_commands(size_t *n);
const struct command *cli_commands(size_t *n)
{
	*n = DDA_ARRAY_SIZE(commands);
	return commands;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: ddbaudit <command> SOURCE [options]\n\n"
		     "Audit and replay the change logs of DynamoDB tables.\n\ncommands:\n");
	for (size_t i = 0; i < DDA_ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\nSOURCE is a directory laid out like the bucket, an archive (.tar, .tar.gz,\n"
		".tgz, .zip), an NDJSON file (.ndjson, .jsonl, optionally .gz) or '-' for\n"
		"NDJSON on stdin.\n\n"
		"Run 'ddbaudit <command> --help' for a command's options.\n"
		"Exit status: 0 clean, 1 anomalies at or above --fail-on, 2 usage error,\n"
		"3 runtime failure.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_CLEAN;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("ddbaudit %s\n", dda_version());
		return EXIT_CLEAN;
	}
	for (size_t i = 0; i < DDA_ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		struct cli c;
		int rc = cli_parse(argc - 1, argv + 1, &commands[i], &c);
		if (!rc)
			rc = commands[i].run(argc - 1, argv + 1, &c);
		else if (rc < 0)
			rc = EXIT_CLEAN;
		cli_release(&c);
		return rc;
	}
	fprintf(stderr, "ddbaudit: '%s' is not a ddbaudit command\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
