/* ISO-8601 parsing and formatting, durations and range tests, all in UTC
 * microseconds without touching the process's time zone. */
#include "util/util.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int64_t dda_time_from_civil(int y, int mon, int d, int h, int mi, int s)
{
	return days_from_civil(y, (unsigned)mon, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
}

void dda_time_to_civil(int64_t t, int *y, int *mon, int *d, int *h, int *mi, int *s, int *usec)
{
	int64_t secs = t / DDA_USEC_PER_SEC, us = t % DDA_USEC_PER_SEC;
	if (us < 0) {
		us += DDA_USEC_PER_SEC;
		secs--;
	}
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	/* civil_from_days, the inverse of days_from_civil. */
	int64_t z = days + 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	const unsigned dd = doy - (153 * mp + 2) / 5 + 1;
	const unsigned mm = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)((int64_t)yoe + era * 400 + (mm <= 2));
	*mon = (int)mm;
	*d = (int)dd;
	*h = (int)(rem / 3600);
	*mi = (int)(rem / 60 % 60);
	*s = (int)(rem % 60);
	if (usec)
		*usec = (int)us;
}

/* Reads exactly n digits at *p (bounded by end); returns -1 if absent. */
static int digits(const char **p, const char *end, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (*p >= end || !isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	return v;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static int parse_offset(const char **pp, const char *end, int64_t *off)
{
	const char *p = *pp;
	int sign = *p == '-' ? -1 : 1;
	p++;
	int oh = digits(&p, end, 2);
	if (p < end && *p == ':')
		p++;
	int om = digits(&p, end, 2);
	if (oh < 0 || om < 0 || oh > 23 || om > 59)
		return DDA_EFORMAT;
	*off = sign * (int64_t)(oh * 3600 + om * 60) * DDA_USEC_PER_SEC;
	*pp = p;
	return 0;
}

int dda_time_parse(const char *s, size_t n, int64_t *out)
{
	const char *p = s, *end = s + n;
	int y = digits(&p, end, 4);
	if (y < 1970 || p >= end || *p++ != '-')
		return DDA_EFORMAT;
	int mon = digits(&p, end, 2);
	if (mon < 1 || mon > 12 || p >= end || *p++ != '-')
		return DDA_EFORMAT;
	int d = digits(&p, end, 2);
	if (d < 1 || d > days_in_month(y, mon))
		return DDA_EFORMAT;
	int h = 0, mi = 0, sec = 0;
	int64_t us = 0, off = 0;
	if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
		p++;
		h = digits(&p, end, 2);
		if (h < 0 || h > 23 || p >= end || *p++ != ':')
			return DDA_EFORMAT;
		mi = digits(&p, end, 2);
		if (mi < 0 || mi > 59)
			return DDA_EFORMAT;
		if (p < end && *p == ':') {
			p++;
			sec = digits(&p, end, 2);
			if (sec < 0 || sec > 59)
				return DDA_EFORMAT;
			if (p < end && (*p == '.' || *p == ',')) {
				p++;
				int nd = 0;
				while (p < end && isdigit((unsigned char)*p)) {
					if (nd < 6)
						us = us * 10 + (*p - '0');
					nd++;
					p++;
				}
				if (nd == 0)
					return DDA_EFORMAT;
				for (; nd < 6; nd++)
					us *= 10;
			}
		}
		if (p < end && (*p == 'Z' || *p == 'z'))
			p++;
		else if (p < end && (*p == '+' || *p == '-') && parse_offset(&p, end, &off))
			return DDA_EFORMAT;
	} else if (p < end && (*p == 'Z' || *p == 'z')) {
		p++;
	}
	if (p != end)
		return DDA_EFORMAT;
	*out = dda_time_from_civil(y, mon, d, h, mi, sec) * DDA_USEC_PER_SEC + us - off;
	return 0;
}

char *dda_time_format(int64_t t, bool frac, char *out)
{
	int y, mon, d, h, mi, s, us;
	if (t == DDA_TIME_NONE) {
		memcpy(out, "-", 2);
		return out;
	}
	dda_time_to_civil(t, &y, &mon, &d, &h, &mi, &s, &us);
	/* Room for any int in every field, so that no compiler sees a possible
	 * truncation; the fields are in range, and the text fits out. */
	char text[96];
	if (frac)
		snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, mon, d, h, mi,
			 s, us);
	else
		snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mon, d, h, mi, s);
	size_t n = strnlen(text, DDA_TIME_STRLEN - 1);
	memcpy(out, text, n);
	out[n] = '\0';
	return out;
}

int dda_duration_parse(const char *s, int64_t *out)
{
	int64_t v = 0;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return DDA_EFORMAT;
	while (isdigit((unsigned char)*p)) {
		if (v > INT64_C(100000000))
			return DDA_EFORMAT; /* over three thousand years */
		v = v * 10 + (*p++ - '0');
	}
	int64_t unit;
	switch (*p) {
	case '\0':
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	case 'w':
		unit = 7 * 86400;
		break;
	default:
		return DDA_EFORMAT;
	}
	if (*p && p[1])
		return DDA_EFORMAT;
	*out = v * unit * DDA_USEC_PER_SEC;
	return 0;
}

int64_t dda_time_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * DDA_USEC_PER_SEC + ts.tv_nsec / 1000;
}

bool dda_range_contains(const struct dda_range *r, int64_t t)
{
	if (t == DDA_TIME_NONE)
		return true;
	if (r->from != DDA_TIME_NONE && t < r->from)
		return false;
	if (r->to != DDA_TIME_NONE && t >= r->to)
		return false;
	return true;
}

bool dda_range_wants(const struct dda_range *r, int64_t start, int64_t end)
{
	if (r->from != DDA_TIME_NONE && end <= r->from - DDA_PREFIX_SLACK)
		return false;
	if (r->to != DDA_TIME_NONE && start >= r->to + DDA_PREFIX_SLACK)
		return false;
	return true;
}
