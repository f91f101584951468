/* Library-side logging through the caller's callback (see util/log.h). */
#include "util/log.h"
#include "util/util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>

#include <openssl/crypto.h>

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
	dda__redact(line, sizeof(line));
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

/* ---- secrets ---- */

/* Each registered secret is kept in up to three forms (raw, URI-encoded,
 * JSON-escaped), each a slot. */
static pthread_mutex_t secrets_mu = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[DDA_SECRETS_MAX * 3];
static size_t secrets_next; /* the slot the next form takes (a ring) */

static void forget(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Takes form (owned) into the ring unless it is there already. */
static void keep(char *form)
{
	if (!form)
		return;
	for (size_t i = 0; i < DDA_ARRAY_SIZE(secrets); i++) {
		if (secrets[i] && !strcmp(secrets[i], form)) {
			forget(form);
			return;
		}
	}
	forget(secrets[secrets_next]);
	secrets[secrets_next] = form;
	secrets_next = (secrets_next + 1) % DDA_ARRAY_SIZE(secrets);
}

/* s with every byte outside RFC 3986's unreserved set as %XX, as a query
 * string carries it; NULL when that changes nothing (or out of memory). */
static char *uri_form(const char *s)
{
	size_t n = strlen(s), k = 0;
	char *out = malloc(3 * n + 1);
	bool changed = false;
	for (size_t i = 0; out && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			out[k++] = (char)c;
			continue;
		}
		snprintf(out + k, 4, "%%%02X", c);
		k += 3;
		changed = true;
	}
	if (out)
		out[k] = '\0';
	if (!changed) {
		free(out);
		return NULL;
	}
	return out;
}

/* s with '/' written "\/", as some JSON encoders echo it; NULL when s has
 * none. */
static char *json_form(const char *s)
{
	size_t n = strlen(s), k = 0;
	if (!strchr(s, '/'))
		return NULL;
	char *out = malloc(2 * n + 1);
	for (size_t i = 0; out && i < n; i++) {
		if (s[i] == '/')
			out[k++] = '\\';
		out[k++] = s[i];
	}
	if (out)
		out[k] = '\0';
	return out;
}

void dda__secret_add(const char *s)
{
	if (!s || strlen(s) < DDA_SECRET_MIN)
		return;
	char *raw = strdup(s), *uri = uri_form(s), *json = json_form(s);
	pthread_mutex_lock(&secrets_mu);
	keep(raw);
	keep(uri);
	keep(json);
	pthread_mutex_unlock(&secrets_mu);
}

void dda__secrets_clear(void)
{
	pthread_mutex_lock(&secrets_mu);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(secrets); i++) {
		forget(secrets[i]);
		secrets[i] = NULL;
	}
	secrets_next = 0;
	pthread_mutex_unlock(&secrets_mu);
}

/* Replaces the n bytes at p (inside the string s) with DDA_REDACTED, or
 * with as many '*' when they are fewer: the string never grows. Returns
 * where scanning goes on. */
static char *replace(char *p, size_t n)
{
	size_t m = sizeof(DDA_REDACTED) - 1;
	if (n < m) {
		memset(p, '*', n);
		return p + n;
	}
	memcpy(p, DDA_REDACTED, m);
	memmove(p + m, p + n, strlen(p + n) + 1);
	return p + m;
}

/* Every occurrence of the value after an X-Amz-Security-Token name: the
 * name is followed by '=', ':', '>' (XML) or "%3D", maybe quoted or spaced,
 * and its value runs to the next delimiter. */
static void redact_token_values(char *s)
{
	static const char name[] = "x-amz-security-token";
	const size_t nl = sizeof(name) - 1;
	for (char *p = s; *p; p++) {
		if (strncasecmp(p, name, nl))
			continue;
		char *v = p + nl;
		for (int i = 0; i < 4 && *v && strchr("\"' :=>", *v); i++)
			v++;
		if (!strncasecmp(v, "%3D", 3))
			v += 3;
		size_t n = strcspn(v, "&\"'<>,; \t\r\n");
		p = (n ? replace(v, n) : v) - 1;
	}
}

/* A message cut short (snprintf's "%.200s") may end in the first bytes of
 * a secret: at least this many of them are redacted too. */
#define SECRET_TAIL_MIN (DDA_SECRET_MIN / 2)

static void redact_secret(char *s, const char *secret)
{
	size_t n = strlen(secret);
	char *p = s;
	for (; (p = strstr(p, secret)) != NULL;)
		p = replace(p, n);
	size_t len = strlen(s);
	for (size_t i = len > n ? len - n + 1 : 0; i + SECRET_TAIL_MIN <= len; i++) {
		if (s[i] == secret[0] && !strncmp(s + i, secret, len - i)) {
			replace(s + i, len - i);
			return;
		}
	}
}

void dda__redact(char *s, size_t cap)
{
	if (!s || !cap)
		return;
	s[cap - 1] = '\0';
	pthread_mutex_lock(&secrets_mu);
	for (size_t i = 0; i < DDA_ARRAY_SIZE(secrets); i++)
		if (secrets[i])
			redact_secret(s, secrets[i]);
	pthread_mutex_unlock(&secrets_mu);
	redact_token_values(s);
}
