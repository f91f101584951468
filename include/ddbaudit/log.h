/* Detail for an operator who asked for it (ddbaudit -v). The library never
 * prints: where it has something worth telling (the prefixes it lists, a
 * request it retries, with more detail every request it makes) it hands one
 * line to the caller's callback, which decides where it goes. */
#ifndef DDBAUDIT_LOG_H
#define DDBAUDIT_LOG_H

enum dda_log_level {
	DDA_LOG_INFO = 1,  /* what a run is doing: prefixes listed, requests retried */
	DDA_LOG_DEBUG = 2, /* every request and its answer */
};

/* Called with one line (no trailing newline), borrowed for the call, from
 * whichever thread did the work: the callback serializes its output if it
 * needs to. Lines never hold a secret (keys, tokens, signatures). */
typedef void (*dda_log_fn)(void *ctx, int level, const char *line);

/* A logging target, embedded in options. Zeroed, nothing is logged. */
struct dda_log {
	dda_log_fn fn;
	void *ctx;
	int level; /* lines above this level are not even formatted */
};

#endif
