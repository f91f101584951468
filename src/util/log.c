/* Library-side logging through the caller's callback (see util/log.h). */
#include "util/log.h"
#include "util/util.h"

#include <stdarg.h>

/* One line: a request line with its URL fits several times over. */
#define LOG_LINE_MAX 1024

void dda__log(const struct dda_log *l, int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	va_list ap;
	if (!dda__log_on(l, level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l->fn(l->ctx, level, line);
}

void dda__log_url(const char *url, char *out, size_t cap)
{
	const char *auth = strstr(url, "://");
	const char *host = auth ? auth + 3 : url;
	size_t authority = strcspn(host, "/?#");
	const char *at = memchr(host, '@', authority);
	if (at)
		snprintf(out, cap, "%.*s%s", (int)(host - url), url, at + 1);
	else
		snprintf(out, cap, "%s", url);
}
