/* ddbaudit evidence verify BUNDLE: the checks of an evidence bundle, one
 * line each ("NAME: ok|FAIL|ERROR: detail") or one JSON document. */
#include "cli/cli.h"

/* 1 when a check failed (a proven problem outranks one left unproven), 3
 * when one could not be made, else 0. */
static int status_of(const struct dda_checks *k)
{
	bool fail = false, error = false;
	for (size_t i = 0; i < k->n; i++) {
		fail = fail || k->v[i].status == DDA_CHECK_FAIL;
		error = error || k->v[i].status == DDA_CHECK_ERROR;
	}
	return fail ? EXIT_ANOMALIES : error ? EXIT_RUNTIME : EXIT_CLEAN;
}

static const char *verdict_of(int status)
{
	return status == EXIT_CLEAN ? "ok" : status == EXIT_ANOMALIES ? "fail" : "error";
}

static void print_text(const struct dda_checks *k)
{
	static const char *const word[] = {"ok", "FAIL", "ERROR"};
	for (size_t i = 0; i < k->n; i++)
		printf("%s: %s: %s\n", k->v[i].name, word[k->v[i].status], k->v[i].detail);
}

static int print_json(const char *bundle, const struct dda_checks *k, int status)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < k->n; i++)
		if (json_array_append_new(list,
					  json_pack("{ssssss}", "check", k->v[i].name, "status",
						    dda_check_status_name(k->v[i].status), "detail",
						    k->v[i].detail))) {
			json_decref(list);
			list = NULL;
		}
	json_t *doc =
	    list ? json_pack("{sssssissso}", "schema", "ddbaudit.evidence-verify/v1", "bundle",
			     bundle, "exit", status, "result", verdict_of(status), "checks", list)
		 : NULL;
	if (!doc)
		return -1;
	int rc = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(doc);
	return rc || putchar('\n') == EOF ? -1 : 0;
}

int dda__cmd_evidence(int argc, char **argv, struct cli *c)
{
	struct dda_checks k = {0};
	struct dda_error err = {0};
	(void)argc, (void)argv;
	if (strcmp(c->source, "verify")) {
		dda__cli_error(c, "unknown action '%s' (usage: ddbaudit %s)", c->source,
			       c->command->usage);
		return EXIT_USAGE;
	}
	if (!c->operand) {
		dda__cli_error(c, "no BUNDLE given (usage: ddbaudit %s)", c->command->usage);
		return EXIT_USAGE;
	}
	if (c->format >= 0 && c->format != DDA_FMT_JSON && c->format != DDA_FMT__COUNT) {
		dda__cli_error(c, "--format: text or json");
		return EXIT_USAGE;
	}
	dda__cli_catch_signals(c);
	c->evidence.bundle = c->operand;
	c->evidence.aws = c->audit.src.aws;
	if (dda_evidence_verify(&c->evidence, &k, &err)) {
		dda__cli_error(c, "%s", err.msg);
		dda_checks_release(&k);
		return EXIT_RUNTIME;
	}
	int status = status_of(&k);
	if (c->format == DDA_FMT_JSON) {
		if (print_json(c->operand, &k, status)) {
			dda__cli_error(c, "cannot write the JSON result");
			status = EXIT_RUNTIME;
		}
	} else {
		print_text(&k);
	}
	if (c->verbose >= 0)
		fprintf(stderr, "ddbaudit: evidence: %s: %s (exit %d)\n", c->operand,
			status == EXIT_CLEAN	   ? "every check holds"
			: status == EXIT_ANOMALIES ? "a check failed"
						   : "a check could not be made",
			status);
	dda_checks_release(&k);
	return status;
}
