/* libFuzzer target for the credential inputs that come from outside the
 * process: credential_process output, the SSO token cache file and the SSO
 * portal's answer, the credential_process command line as split into
 * words, and regions read from ARNs and queue URLs. Arbitrary bytes must
 * never crash, leak, or give credentials without both keys. */
#include <stdlib.h>

#include "aws/core.h"
#include "aws/creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct dda_creds *c)
{
	if (!c->access_key || !*c->access_key || !c->secret_key || !*c->secret_key)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct dda_error err = {0};
	struct dda_creds c;
	char *tok = NULL;
	if (!dda__creds_parse_process(p, size, &c, &err)) {
		check(&c);
		dda__creds_release(&c);
	}
	if (!dda__creds_parse_sso(p, size, &c, &err)) {
		check(&c);
		dda__creds_release(&c);
	}
	if (!dda__sso_parse_token(p, size, 0, &tok, &err) && (!tok || !*tok))
		__builtin_trap();
	free(tok);
	/* The command line and ARNs are text: a terminated copy. */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char **argv = dda__shell_split(s, &err);
	if (argv && !argv[0])
		__builtin_trap();
	dda__argv_free(argv);
	char region[32];
	if (dda__aws_region_of(s, region, sizeof(region)) && strlen(region) < 6)
		__builtin_trap();
	free(s);
	return 0;
}
