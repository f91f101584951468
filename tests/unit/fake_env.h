/* A fake environment for the unit tests: NAME=VALUE strings, looked up as
 * getenv would, so that tests never depend on the machine's variables. */
#ifndef DDA_TEST_FAKE_ENV_H
#define DDA_TEST_FAKE_ENV_H

#include <string.h>

struct fake_env {
	const char *vars[16];
};

static inline const char *fake_get(void *ctx, const char *name)
{
	struct fake_env *e = ctx;
	size_t n = strlen(name);
	for (int i = 0; i < 16 && e->vars[i]; i++)
		if (!strncmp(e->vars[i], name, n) && e->vars[i][n] == '=')
			return e->vars[i] + n + 1;
	return NULL;
}

#endif
