/* Completeness: what a run did not see is a finding. Hours of the range
 * without objects get rows of their own, an empty range is EMPTY_RANGE, a
 * slot without an object under --expect-every is MISSING_HOUR, and findings
 * about the slack hours around the range are left to the run that owns
 * them. */
#include "audit/audit_impl.h"

/* Hours filled into the hours table (and checked by --expect-every) at
 * most: 400 days, well past any nightly or monthly run. A longer range keeps
 * only the hours that hold objects. */
#define MAX_FILLED_HOURS (24 * 400)

static int64_t floor_hour(int64_t t)
{
	int64_t h = DDA_USEC_PER_HOUR;
	return t >= 0 ? t / h * h : -((-t + h - 1) / h) * h;
}

bool dda_object_in_range(const struct dda_object *ob, const struct dda_range *r)
{
	if (!ob || ob->hour == DDA_TIME_NONE)
		return true;
	if (r->from != DDA_TIME_NONE && ob->hour + DDA_USEC_PER_HOUR <= r->from)
		return false;
	return r->to == DDA_TIME_NONE || ob->hour < r->to;
}

static bool hour_in_range(int64_t hour, const struct dda_range *r)
{
	struct dda_object ob = {.hour = hour};
	return dda_object_in_range(&ob, r);
}

int dda_result_verdict(const struct dda_result *res, int fail_on)
{
	if (res->fatal.code)
		return DDA_RUN_INCOMPLETE;
	int sev = dda_result_max_severity(res);
	return sev >= 0 && sev >= fail_on ? DDA_RUN_FINDINGS : DDA_RUN_CLEAN;
}

const char *dda_run_verdict_name(int verdict)
{
	static const char *const names[] = {"clean", "findings", "incomplete"};
	return verdict >= 0 && verdict <= DDA_RUN_INCOMPLETE ? names[verdict] : "incomplete";
}

/* A finding about an object of a slack hour belongs to this run only when
 * its record's time is in the range; anything else (an unreadable object, a
 * record without a time, an overwritten key) is reported by the run whose
 * range holds that hour. A late object's findings are this run's: the run
 * that audited its hour never saw it. */
static void defer_slack(struct dda__audit_ctx *x)
{
	const struct dda_range *r = &x->o->src.range;
	struct dda__anomaly_vec *all = x->all;
	size_t kept = 0;
	for (size_t i = 0; i < all->n; i++) {
		struct dda_anomaly *an = &all->v[i];
		const struct dda_object *ob =
		    an->obj != DDA_NO_OBJECT ? dda_objtab_get(x->res->objs, an->obj) : NULL;
		if (ob && !ob->late && !dda_object_in_range(ob, r) &&
		    (an->time == DDA_TIME_NONE || !dda_range_contains(r, an->time))) {
			dda_anomaly_release(an);
			x->res->sum.deferred++;
			continue;
		}
		all->v[kept++] = *an;
	}
	all->n = kept;
}

/* The hours the range covers, [*first, *end): from the range where it is
 * given, else from the hours that hold objects of the range (an open end
 * with a start runs to now). False when there is nothing to span. */
static bool span(const struct dda__audit_ctx *x, int64_t *first, int64_t *end)
{
	const struct dda_range *r = &x->o->src.range;
	const struct dda__hour_vec *h = x->hours;
	int64_t lo = DDA_TIME_NONE, hi = DDA_TIME_NONE;
	for (size_t i = 0; i < h->n; i++) {
		if (!h->v[i].in_range)
			continue;
		if (lo == DDA_TIME_NONE || h->v[i].hour < lo)
			lo = h->v[i].hour;
		if (hi == DDA_TIME_NONE || h->v[i].hour + DDA_USEC_PER_HOUR > hi)
			hi = h->v[i].hour + DDA_USEC_PER_HOUR;
	}
	if (r->from != DDA_TIME_NONE)
		lo = floor_hour(r->from);
	if (r->to != DDA_TIME_NONE)
		hi = floor_hour(r->to - 1) + DDA_USEC_PER_HOUR;
	else if (r->from != DDA_TIME_NONE)
		hi = floor_hour(x->o->now - 1) + DDA_USEC_PER_HOUR;
	if (lo == DDA_TIME_NONE || hi == DDA_TIME_NONE || hi <= lo)
		return false;
	*first = lo;
	*end = hi;
	return true;
}

/* Adds a zero row for every hour of [first, end) that has none; the vector
 * stays sorted. */
static int fill_hours(struct dda__hour_vec *h, int64_t first, int64_t end)
{
	size_t want = (size_t)((end - first) / DDA_USEC_PER_HOUR);
	size_t cap = h->n + want;
	struct dda_hour_stat *v = calloc(cap ? cap : 1, sizeof(*v));
	if (!v)
		return DDA_ENOMEM;
	size_t n = 0, i = 0;
	for (int64_t t = first; t < end; t += DDA_USEC_PER_HOUR) {
		while (i < h->n && h->v[i].hour < t)
			v[n++] = h->v[i++];
		if (i < h->n && h->v[i].hour == t) {
			v[n++] = h->v[i++];
			continue;
		}
		v[n].hour = t;
		v[n++].in_range = true;
	}
	while (i < h->n)
		v[n++] = h->v[i++];
	free(h->v);
	h->v = v;
	h->n = n;
	h->cap = cap;
	return 0;
}

static int add_finding(struct dda__audit_ctx *x, int kind, int64_t time, char *detail)
{
	if (!detail)
		return DDA_ENOMEM;
	struct dda_anomaly an = {.kind = kind,
				 .severity = dda_kind_severity(kind),
				 .obj = DDA_NO_OBJECT,
				 .time = time,
				 .detail = detail,
				 .prev_obj = DDA_NO_OBJECT};
	return dda__anomaly_push(x->all, &an);
}

static char *format(const char *fmt, ...) DDA_PRINTF(1, 2);
static char *format(const char *fmt, ...)
{
	struct dda_buf b;
	dda_buf_init(&b, 4096);
	va_list ap;
	va_start(ap, fmt);
	int rc = dda_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return rc ? NULL : dda_buf_take(&b, NULL);
}

static void hour_prefix(int64_t t, char out[16])
{
	int y, mo, d, h, mi, s;
	dda_time_to_civil(t, &y, &mo, &d, &h, &mi, &s, NULL);
	snprintf(out, 16, "%04d/%02d/%02d/%02d/", y % 10000, mo, d, h);
}

static int empty_range(struct dda__audit_ctx *x)
{
	const struct dda_summary *s = &x->res->sum;
	const struct dda_range *r = &x->o->src.range;
	if (x->o->allow_empty || s->records || x->res->fatal.code)
		return 0;
	char from[DDA_TIME_STRLEN], to[DDA_TIME_STRLEN];
	char *d;
	if (r->from == DDA_TIME_NONE && r->to == DDA_TIME_NONE)
		d = format("the source holds no records (%llu objects read): a wrong source or "
			   "prefix reads nothing; --allow-empty accepts an empty source",
			   (unsigned long long)s->objects);
	else
		d = format("no records from %s to %s (%llu objects read, %llu records outside "
			   "the range, %llu hour prefixes and %llu objects skipped by it): a "
			   "wrong source or prefix reads nothing; --allow-empty accepts an "
			   "empty range",
			   dda_time_format(r->from, false, from), dda_time_format(r->to, false, to),
			   (unsigned long long)s->objects, (unsigned long long)s->filtered,
			   (unsigned long long)s->prefixes_skipped,
			   (unsigned long long)s->objects_skipped);
	return add_finding(x, DDA_K_EMPTY_RANGE, DDA_TIME_NONE, d);
}

/* Objects under the hour prefixes of [from, to), for slots asked in
 * increasing order: *at is where the previous slot's rows began (the rows
 * are sorted), so a long range costs one pass, not one per slot. */
static uint64_t objects_between(const struct dda__hour_vec *h, size_t *at, int64_t from,
				int64_t to)
{
	uint64_t n = 0;
	while (*at < h->n && h->v[*at].hour < from)
		(*at)++;
	for (size_t i = *at; i < h->n && h->v[i].hour < to; i++)
		n += h->v[i].objects;
	return n;
}

/* --expect-every D: each D-long slot of the range's hours that has ended
 * (and settled) needs an object under one of its hour prefixes. */
static int missing_hours(struct dda__audit_ctx *x, bool have_span, int64_t first, int64_t end)
{
	const struct dda_audit_opts *o = x->o;
	int64_t every = o->expect_every;
	if (every <= 0 || x->res->fatal.code)
		return 0;
	bool any_hour = false;
	for (uint32_t i = 0; i < dda_objtab_count(x->res->objs) && !any_hour; i++)
		any_hour = dda_objtab_get(x->res->objs, i)->hour != DDA_TIME_NONE;
	if (x->res->sum.objects && !any_hour) {
		dda_error_set(&x->res->fatal, DDA_EUNSUPPORTED,
			      "cannot check --expect-every: no object of the source is under an "
			      "hour prefix (YYYY/MM/DD/HH/), so missing hours cannot be told");
		return 0;
	}
	if (!have_span)
		return 0;
	if ((end - first) / DDA_USEC_PER_HOUR > MAX_FILLED_HOURS) {
		dda_error_set(&x->res->fatal, DDA_EUNSUPPORTED,
			      "cannot check --expect-every over more than %d hours",
			      MAX_FILLED_HOURS);
		return 0;
	}
	int64_t settled = o->settle > 0 ? o->now - o->settle : o->now;
	int rc = 0;
	size_t at = 0;
	for (int64_t s = first; !rc && s + every <= end && s + every <= settled; s += every) {
		if (objects_between(x->hours, &at, s, s + every))
			continue;
		char a[16], b[16], dur[32];
		hour_prefix(s, a);
		hour_prefix(s + every - DDA_USEC_PER_HOUR, b);
		snprintf(dur, sizeof(dur), "%lldh", (long long)(every / DDA_USEC_PER_HOUR));
		char *d =
		    every == DDA_USEC_PER_HOUR
			? format("no object under the hour prefix %s (--expect-every %s)", a, dur)
			: format("no object under the hour prefixes %s to %s "
				 "(--expect-every %s)",
				 a, b, dur);
		rc = add_finding(x, DDA_K_MISSING_HOUR, s, d);
	}
	return rc;
}

int dda__complete(struct dda__audit_ctx *x)
{
	const struct dda_range *r = &x->o->src.range;
	struct dda__hour_vec *h = x->hours;
	for (size_t i = 0; i < h->n; i++)
		h->v[i].in_range = hour_in_range(h->v[i].hour, r);
	defer_slack(x);
	int64_t first = 0, end = 0;
	bool have_span = span(x, &first, &end);
	int rc = 0;
	if (have_span && (end - first) / DDA_USEC_PER_HOUR <= MAX_FILLED_HOURS)
		rc = fill_hours(h, first, end);
	/* A shard sees part of the range: merge decides these for the whole. */
	if (x->o->src.shard.count)
		return rc;
	if (!rc)
		rc = empty_range(x);
	if (!rc)
		rc = missing_hours(x, have_span, first, end);
	return rc;
}
