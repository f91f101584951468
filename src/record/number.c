/* DynamoDB numbers: validation by DynamoDB's rules (38 significant digits,
 * magnitude 1E-130 .. 9.99..E+125) and the canonical decimal form. */
#include "util/util.h"
#include "ddbaudit/canon.h"

#include <ctype.h>

/* Exponents beyond this are out of range whatever the digits (inputs are
 * bounded by the object cap, so digit counts stay far below it). */
#define EXP_CLAMP INT64_C(1000000000)

struct parsed {
	bool neg;
	const char *int_p, *frac_p;
	size_t int_n, frac_n;
	int64_t exp;
};

static size_t run_digits(const char *p, const char *end)
{
	const char *q = p;
	while (q < end && isdigit((unsigned char)*q))
		q++;
	return (size_t)(q - p);
}

static int parse(const char *s, size_t n, struct parsed *x)
{
	const char *p = s, *end = s + n;
	memset(x, 0, sizeof(*x));
	if (p < end && (*p == '+' || *p == '-'))
		x->neg = *p++ == '-';
	x->int_p = p;
	x->int_n = run_digits(p, end);
	p += x->int_n;
	if (p < end && *p == '.') {
		x->frac_p = ++p;
		x->frac_n = run_digits(p, end);
		p += x->frac_n;
	}
	if (!x->int_n && !x->frac_n)
		return DDA_EFORMAT;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		int sign = 1;
		if (p < end && (*p == '+' || *p == '-'))
			sign = *p++ == '-' ? -1 : 1;
		size_t nd = run_digits(p, end);
		if (!nd)
			return DDA_EFORMAT;
		for (size_t i = 0; i < nd; i++) {
			x->exp = x->exp * 10 + (p[i] - '0');
			if (x->exp > EXP_CLAMP)
				x->exp = EXP_CLAMP;
		}
		x->exp *= sign;
		p += nd;
	}
	return p == end ? 0 : DDA_EFORMAT;
}

/* Digits of a number short enough to be gathered on the stack (every
 * valid one: 38 significant digits, and a few zeros around them). */
#define SMALL_DIGITS 64

/* The integer and fraction digits, back to back, in small when they fit
 * or else in digits; *e is the power of ten of the last of them. Returns
 * them, or NULL when out of memory. */
static const char *significant(const struct parsed *x, char *small, struct dda_buf *digits,
			       int64_t *e)
{
	*e = x->exp - (int64_t)x->frac_n;
	if (x->int_n + x->frac_n <= SMALL_DIGITS) {
		if (x->int_n)
			memcpy(small, x->int_p, x->int_n);
		if (x->frac_n)
			memcpy(small + x->int_n, x->frac_p, x->frac_n);
		return small;
	}
	if (dda_buf_add(digits, x->int_p, x->int_n) ||
	    (x->frac_n && dda_buf_add(digits, x->frac_p, x->frac_n)))
		return NULL;
	return digits->ptr;
}

/* Whether s[0..n) is a plain integer that is its own canonical form (no
 * sign, no leading zero, at most 38 digits): most numbers in images. */
static bool plain_integer(const char *s, size_t n)
{
	if (!n || n > DDA_NUMBER_MAX_DIGITS || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int dda_number_canon(const char *s, size_t n, struct dda_buf *out, struct dda_buf *why)
{
	if (plain_integer(s, n))
		return dda_buf_add(out, s, n);
	struct parsed x;
	if (parse(s, n, &x))
		return dda__explain(why, "'%.*s' is not a number", (int)DDA_MIN(n, 64), s);
	struct dda_buf dig;
	dda_buf_init(&dig, n + 1);
	int64_t e;
	char small[SMALL_DIGITS];
	const char *d = significant(&x, small, &dig, &e);
	if (!d) {
		dda_buf_release(&dig);
		return DDA_ENOMEM;
	}
	size_t len = x.int_n + x.frac_n;
	while (len && *d == '0') {
		d++;
		len--;
	}
	while (len && d[len - 1] == '0') {
		len--;
		e++;
	}
	int rc = 0;
	if (!len) {
		rc = dda_buf_addc(out, '0');
		goto out;
	}
	int64_t sci = e + (int64_t)len - 1;
	if (len > DDA_NUMBER_MAX_DIGITS) {
		rc = dda__explain(why, "'%.*s' has %zu significant digits (at most 38)",
				  (int)DDA_MIN(n, 64), s, len);
		goto out;
	}
	if (sci < DDA_NUMBER_MIN_EXP || sci > DDA_NUMBER_MAX_EXP) {
		rc = dda__explain(why,
				  "'%.*s' is out of range (1E-130 to "
				  "9.9999999999999999999999999999999999999E+125)",
				  (int)DDA_MIN(n, 64), s);
		goto out;
	}
	if (x.neg)
		rc = dda_buf_addc(out, '-');
	if (!rc && e >= 0) {
		rc = dda_buf_add(out, d, len);
		for (int64_t i = 0; i < e && !rc; i++)
			rc = dda_buf_addc(out, '0');
	} else if (!rc) {
		int64_t point = (int64_t)len + e; /* digits before the point */
		if (point > 0) {
			rc = dda_buf_add(out, d, (size_t)point);
			if (!rc)
				rc = dda_buf_addc(out, '.');
			if (!rc)
				rc = dda_buf_add(out, d + point, len - (size_t)point);
		} else {
			rc = dda_buf_add(out, "0.", 2);
			for (int64_t i = 0; i < -point && !rc; i++)
				rc = dda_buf_addc(out, '0');
			if (!rc)
				rc = dda_buf_add(out, d, len);
		}
	}
out:
	dda_buf_release(&dig);
	return rc;
}
