/* Delivery: one thread a lane, one batch in flight a lane (as Lambda reads
 * a shard), so an item's changes arrive in order. A batch is retried with
 * backoff; a partial failure is retried from its lowest failed record;
 * throttles are waited out without counting; batches whose function keeps
 * failing are bisected (when asked) down to the records that fail, which
 * then go to the DLQ (with hold-item, taking every later change of their
 * item with them), are dropped when --on-failure drop says so, or stop the
 * lane and the run, as a shard without an on-failure destination blocks.
 * A configuration error stops the run at once. Every acknowledged batch
 * moves the lane's checkpoint. */
#include "replay/dlq.h"
#include "aws/api.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


struct shared {
	struct dda_plan *p;
	const struct dda_replay_opts *o;
	pthread_mutex_t mu; /* everything below */
	struct dda_replay_stats *st;
	size_t lane_pos[DDA_REPLAY_MAX_LANES];
	uint64_t *held; /* item hashes held back (hold-item) */
	size_t nheld, held_cap;
	struct dda_dlq *dlq;
	int64_t next_free; /* rate limit: when the next record may go */
	double *lat;	   /* milliseconds per send */
	size_t nlat, lat_cap;
	struct dda_error fail;
	atomic_int stop; /* read by every lane without the lock */
	volatile int abort; /* the drain is over: sends in flight are cut short */
	pthread_cond_t slot; /* --max-inflight: a send finished */
	int inflight;
	pthread_cond_t lane_done; /* a lane thread ended */
	int lanes_running;
};

struct lane {
	struct shared *sh;
	int id;
	size_t pos, end;
	struct dda_target *t;
	struct dda_plan_reader *rd;
	struct dda_buf batch;
	size_t built_a, built_b; /* the records batch holds, when built_b > built_a */
	uint64_t rng;
};

static bool stopping(struct shared *sh)
{
	return atomic_load(&sh->stop) || (sh->o->stop && *sh->o->stop);
}

/* Sleeps up to us microseconds, waking early when the run is stopping. */
static void nap(struct shared *sh, int64_t us)
{
	while (us > 0 && !stopping(sh)) {
		int64_t step = DDA_MIN(us, 50000);
		struct timespec ts = {step / 1000000, (long)(step % 1000000) * 1000};
		nanosleep(&ts, NULL);
		us -= step;
	}
}

static bool is_held(struct shared *sh, uint64_t item)
{
	bool hit = false;
	pthread_mutex_lock(&sh->mu);
	for (size_t i = 0; i < sh->nheld && !hit; i++)
		hit = sh->held[i] == item;
	pthread_mutex_unlock(&sh->mu);
	return hit;
}

static int hold(struct shared *sh, uint64_t item)
{
	for (size_t i = 0; i < sh->nheld; i++)
		if (sh->held[i] == item)
			return 0;
	if (sh->nheld == sh->held_cap) {
		size_t cap = sh->held_cap ? sh->held_cap * 2 : 64;
		uint64_t *nv = realloc(sh->held, cap * sizeof(*nv));
		if (!nv)
			return DDA_ENOMEM;
		sh->held = nv;
		sh->held_cap = cap;
	}
	sh->held[sh->nheld++] = item;
	sh->st->held++;
	return 0;
}

/* Records [a, b) as one {"Records":[...]} payload, each synthesized again
 * from its source (a retry of the same records reuses the bytes). */
static int build(struct lane *ln, size_t a, size_t b, struct dda_error *err)
{
	struct dda_buf *out = &ln->batch;
	if (ln->built_a == a && ln->built_b == b && b > a && out->len)
		return 0;
	ln->built_a = ln->built_b = 0;
	dda_buf_reset(out);
	if (dda_buf_adds(out, "{\"Records\":["))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	for (size_t i = a; i < b; i++) {
		if ((i > a && dda_buf_addc(out, ',')) ||
		    dda__plan_read(ln->rd, i, out, err))
			return err->code ? err->code : dda_error_set(err, DDA_ENOMEM, "out of memory");
	}
	if (dda_buf_adds(out, "]}"))
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	ln->built_a = a;
	ln->built_b = b;
	return 0;
}

/* How many records a batch takes at most: --batch-size, or fewer under
 * --max-rps with --max-batching-window, where records "arrive" at the lane's
 * share of the rate and a batch closes when the window is over, as Lambda
 * closes a batch at MaximumBatchingWindowInSeconds. */
static size_t batch_cap(const struct dda_plan *p, const struct dda_replay_opts *o)
{
	size_t cap = (size_t)o->batch_size;
	if (o->batch_window > 0 && o->max_rps > 0) {
		double share = o->max_rps / (p->lanes > 0 ? p->lanes : 1);
		double n = share * (double)o->batch_window / 1e6;
		cap = n < 1 ? 1 : n < (double)cap ? (size_t)n : cap;
	}
	return cap;
}

size_t dda__batch_end(const struct dda_plan *p, const struct dda_replay_opts *o, size_t a,
		      size_t limit)
{
	size_t bytes = 16, b = a, cap = batch_cap(p, o);
	while (b < limit && b - a < cap) {
		bytes += p->v[b].len + 1;
		if (b > a && bytes > DDA_REPLAY_MAX_PAYLOAD)
			break;
		b++;
	}
	return b;
}

static void take_tokens(struct shared *sh, size_t n)
{
	if (sh->o->max_rps <= 0)
		return;
	pthread_mutex_lock(&sh->mu);
	int64_t now = dda_time_now();
	int64_t start = DDA_MAX(now, sh->next_free);
	sh->next_free = start + (int64_t)((double)n * 1e6 / sh->o->max_rps);
	pthread_mutex_unlock(&sh->mu);
	nap(sh, start - now);
}

/* --max-inflight: at most that many batches at the target at once. */
static void enter(struct shared *sh)
{
	if (sh->o->max_inflight <= 0)
		return;
	pthread_mutex_lock(&sh->mu);
	while (sh->inflight >= sh->o->max_inflight)
		pthread_cond_wait(&sh->slot, &sh->mu);
	sh->inflight++;
	pthread_mutex_unlock(&sh->mu);
}

/* Called with sh->mu held. */
static void leave(struct shared *sh)
{
	if (sh->o->max_inflight <= 0)
		return;
	sh->inflight--;
	pthread_cond_signal(&sh->slot);
}

static void note_latency(struct shared *sh, double ms)
{
	if (sh->nlat == sh->lat_cap) {
		size_t cap = sh->lat_cap ? sh->lat_cap * 2 : 1024;
		double *nv = realloc(sh->lat, cap * sizeof(*nv));
		if (!nv)
			return;
		sh->lat = nv;
		sh->lat_cap = cap;
	}
	sh->lat[sh->nlat++] = ms;
}

/* Full jitter over min(cap, base * 2^(n-1)), as the AWS SDKs back off. */
static int64_t backoff(int64_t base, int64_t cap, uint64_t *rng, int n)
{
	int64_t ceil = base;
	for (int i = 1; i < n && ceil < cap; i++)
		ceil *= 2;
	ceil = DDA_MIN(ceil, cap);
	*rng ^= *rng >> 12;
	*rng ^= *rng << 25;
	*rng ^= *rng >> 27;
	return ceil > 0 ? (int64_t)((*rng * UINT64_C(2685821657736338717)) % (uint64_t)ceil) : 0;
}

/* Done with everything before b (acknowledged by the target, or in the DLQ
 * when delivered is false): the lane's position moves and is saved. */
static int ack(struct lane *ln, size_t b, bool delivered, struct dda_error *err)
{
	struct shared *sh = ln->sh;
	int rc = 0;
	pthread_mutex_lock(&sh->mu);
	if (delivered)
		sh->st->acked += b - ln->pos;
	ln->pos = b;
	sh->lane_pos[ln->id] = b - sh->p->lane_start[ln->id];
	if (sh->o->checkpoint)
		rc = dda__checkpoint_save(sh->o->checkpoint, sh->p, sh->o, sh->lane_pos, sh->held,
					  sh->nheld, err);
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

static int write_dlq(struct lane *ln, size_t a, size_t b, const char *condition, int attempts,
		     const struct dda_send_result *res, struct dda_error *err);

/* Ends the run without acknowledging [a, b): a resume sends them again. */
static int halt(struct lane *ln, size_t a, size_t b, const char *why, int attempts,
		const struct dda_send_result *res)
{
	struct shared *sh = ln->sh;
	size_t base = sh->p->lane_start[ln->id];
	pthread_mutex_lock(&sh->mu);
	atomic_store(&sh->stop, 1);
	sh->st->stopped = true;
	if (!sh->fail.code && res->fault == DDA_FAULT_WRITE)
		dda_error_set(&sh->fail, DDA_EIO,
			      "target %s: %s (the run stops at once, lane %d at record %zu; nothing "
			      "from there on is acknowledged: make room or fix it, and run again)",
			      sh->o->target.spec, res->msg, ln->id, a - base);
	else if (!sh->fail.code && res->fault == DDA_FAULT_CONFIG)
		dda_error_set(&sh->fail, DDA_EIO,
			      "target %s: %s (a configuration error: the run stops at once, "
			      "lane %d at record %zu; fix it and run again)",
			      sh->o->target.spec, res->msg, ln->id, a - base);
	else if (!sh->fail.code)
		dda_error_set(&sh->fail, DDA_EIO,
			      "lane %d: records %zu to %zu %s after %d attempt%s: %s", ln->id,
			      a - base, b - 1 - base, why, attempts, attempts == 1 ? "" : "s",
			      res->msg);
	pthread_mutex_unlock(&sh->mu);
	return 1;
}

/* Records [a, b) failed for good (or belong to a held item). */
static int give_up(struct lane *ln, size_t a, size_t b, const char *condition, int attempts,
		   const struct dda_send_result *res, struct dda_error *err)
{
	struct shared *sh = ln->sh;
	bool held_item = !strcmp(condition, "ItemHeld");
	int mode = sh->o->on_failure;
	if (mode == DDA_FAIL_STOP && !held_item)
		return halt(ln, a, b, sh->dlq ? "failed" : "failed, and there is no --dlq to keep them",
			    attempts, res);
	if (mode == DDA_FAIL_DROP) {
		pthread_mutex_lock(&sh->mu);
		sh->st->dropped += b - a;
		pthread_mutex_unlock(&sh->mu);
		return ack(ln, b, false, err); /* discarded, as --on-failure drop asked */
	}
	if (!sh->dlq) /* skip and hold-item need a DLQ: never drop by default */
		return halt(ln, a, b, "failed, and there is no --dlq to keep them", attempts, res);
	int rc = write_dlq(ln, a, b, condition, attempts, res, err);
	if (rc)
		return rc;
	bool new_hold = mode == DDA_FAIL_HOLD_ITEM && !held_item;
	pthread_mutex_lock(&sh->mu);
	sh->st->dlq += b - a;
	for (size_t i = a; new_hold && i < b && !rc; i++)
		rc = hold(sh, sh->p->v[i].item);
	pthread_mutex_unlock(&sh->mu);
	if (rc)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	return ack(ln, b, false, err); /* past them: the DLQ holds them now */
}

/* Where record seq sits in [a, b), or b. */
static size_t find_seq(const struct dda_plan *p, size_t a, size_t b, const char *seq)
{
	char s[DDA_SEQ_DIGITS + 1];
	for (size_t i = a; i < b; i++) {
		dda__seq_format(p->v[i].seq, s);
		if (!strcmp(s, seq))
			return i;
	}
	return b;
}

/* The batch being answered, for ReportBatchItemFailures identifiers. */
struct batch_ref {
	const struct dda_plan *p;
	size_t a, b;
};

static bool in_batch(void *ctx, const char *id)
{
	const struct batch_ref *r = ctx;
	return find_seq(r->p, r->a, r->b, id) < r->b;
}

static int deliver(struct lane *ln, size_t a, size_t b, struct dda_error *err);

/* One send of [a, b) and what the target said, with the statistics. */
static void send_batch(struct lane *ln, size_t a, size_t b, bool retry,
		       struct dda_send_result *res)
{
	struct shared *sh = ln->sh;
	take_tokens(sh, b - a);
	enter(sh);
	int64_t t0 = dda_time_now();
	dda__target_send(ln->t, ln->batch.ptr, ln->batch.len, res);
	if (res->outcome == DDA_SEND_OK) {
		struct batch_ref ref = {sh->p, a, b};
		dda__parse_item_failures(res->answer, res->answer_len, in_batch, &ref, res);
	}
	/* The target's words go to the DLQ, the logs and the report: an answer
	 * that echoes a signed request's secrets must not take them there. */
	dda__redact(res->msg, sizeof(res->msg));
	pthread_mutex_lock(&sh->mu);
	leave(sh);
	note_latency(sh, (double)(dda_time_now() - t0) / 1000.0);
	sh->st->batches++;
	sh->st->sent += b - a;
	sh->st->retries += retry;
	sh->st->partial += res->outcome == DDA_SEND_PARTIAL;
	sh->st->throttles += res->outcome == DDA_SEND_FAILED && res->fault == DDA_FAULT_THROTTLE;
	pthread_mutex_unlock(&sh->mu);
}

/* How long a throttled batch waits: what the target asked for, else the
 * backoff of the throttles so far; never past the record age limit. */
static int64_t throttle_wait(const struct shared *sh, struct lane *ln,
			     const struct dda_send_result *res, int throttles, int64_t first)
{
	const struct dda_replay_opts *o = sh->o;
	int64_t wait = res->retry_after >= 0
			   ? res->retry_after
			   : backoff(o->backoff_base, o->backoff_cap, &ln->rng, throttles);
	if (o->max_record_age >= 0)
		wait = DDA_MIN(wait, DDA_MAX(0, first + o->max_record_age - dda_time_now()));
	return wait;
}

static const char *const fault_names[] = {"", "function error", "transport failure",
					  "throttled", "configuration error", "write error"};

/* -v: what happened to a send that did not succeed, and what comes next. */
static void note_failure(struct lane *ln, size_t a, size_t b, const struct dda_send_result *res,
			 const char *next, int64_t wait)
{
	const struct dda_replay_opts *o = ln->sh->o;
	char line[900], seq[DDA_SEQ_DIGITS + 1];
	if (!o->log)
		return;
	dda__seq_format(ln->sh->p->v[a].seq, seq);
	int f = res->fault >= 0 && res->fault < (int)DDA_ARRAY_SIZE(fault_names) ? res->fault : 0;
	snprintf(line, sizeof(line), "lane %d: %zu record%s from %s: %s (%s); %s", ln->id, b - a,
		 b - a == 1 ? "" : "s", seq, res->msg,
		 res->outcome == DDA_SEND_PARTIAL ? "partial failure" : fault_names[f], next);
	if (wait >= 0) {
		size_t n = strlen(line);
		snprintf(line + n, sizeof(line) - n, " in %.1f s", (double)wait / 1e6);
	}
	o->log(o->progress_ctx, line);
}

/* Sends [a, b) until acknowledged, retrying; on giving up, bisects or hands
 * the records to give_up. Returns 0, 1 when the run must stop, or an error. */
static int attempt(struct lane *ln, size_t a, size_t b, struct dda_error *err)
{
	struct shared *sh = ln->sh;
	const struct dda_replay_opts *o = sh->o;
	struct dda_send_result res;
	int64_t first = dda_time_now();
	int tries = 0, throttles = 0;
	for (;;) {
		if (stopping(sh))
			return 1;
		int rc = build(ln, a, b, err);
		if (rc)
			return rc;
		send_batch(ln, a, b, tries > 0, &res);
		size_t upto = res.outcome == DDA_SEND_OK ? b : a;
		if (res.outcome == DDA_SEND_PARTIAL)
			upto = find_seq(sh->p, a, b, res.first_failed);
		if (upto > a && (rc = ack(ln, upto, true, err)))
			return rc;
		a = upto;
		if (a == b)
			return 0;
		/* A send that failed while the run stops (an exec: batch ended
		 * by the signal, an HTTP or Lambda send cut short after the
		 * drain) is neither retried nor parked: the resume sends it
		 * again. */
		if (stopping(sh))
			return 1;
		if (res.fault == DDA_FAULT_CONFIG || res.fault == DDA_FAULT_WRITE) {
			note_failure(ln, a, b, &res, "the run stops", -1);
			return halt(ln, a, b, "were refused", tries + throttles + 1, &res);
		}
		bool aged = o->max_record_age >= 0 && dda_time_now() - first >= o->max_record_age;
		if (res.fault == DDA_FAULT_THROTTLE && !aged) {
			int64_t wait = throttle_wait(sh, ln, &res, ++throttles, first);
			note_failure(ln, a, b, &res, "waiting (not a retry)", wait);
			nap(sh, wait);
			continue;
		}
		tries += res.fault != DDA_FAULT_THROTTLE;
		bool spent = o->max_retries >= 0 && tries > o->max_retries;
		if (aged || spent) {
			/* Lambda bisects on function errors only: halves of a batch
			 * that timed out or was throttled fail the same way. */
			bool split = res.fault == DDA_FAULT_FUNCTION || res.outcome == DDA_SEND_PARTIAL;
			if (o->bisect && split && b - a > 1) {
				note_failure(ln, a, b, &res, "bisecting", -1);
				pthread_mutex_lock(&sh->mu);
				sh->st->bisections++;
				pthread_mutex_unlock(&sh->mu);
				size_t mid = a + (b - a) / 2;
				rc = deliver(ln, a, mid, err);
				return rc ? rc : deliver(ln, mid, b, err);
			}
			note_failure(ln, a, b, &res, aged ? "too old to retry" : "retries spent", -1);
			return give_up(ln, a, b, aged ? "RecordAgeExceeded" : "RetryAttemptsExhausted",
				       tries + throttles, &res, err);
		}
		int64_t wait = backoff(o->backoff_base, o->backoff_cap, &ln->rng, tries);
		note_failure(ln, a, b, &res, "retrying", wait);
		nap(sh, wait);
	}
}

/* Delivers [a, b) in order, sending held items' records to the DLQ. */
static int deliver(struct lane *ln, size_t a, size_t b, struct dda_error *err)
{
	struct shared *sh = ln->sh;
	struct dda_send_result held = {.status = -1};
	snprintf(held.msg, sizeof(held.msg), "an earlier change of the item failed");
	while (a < b) {
		if (stopping(sh))
			return 1;
		size_t h = a;
		while (h < b && !is_held(sh, sh->p->v[h].item))
			h++;
		int rc = 0;
		if (h == a)
			rc = give_up(ln, a, a + 1, "ItemHeld", 0, &held, err);
		else
			rc = attempt(ln, a, h, err);
		if (rc)
			return rc;
		a = h == a ? a + 1 : h;
	}
	return 0;
}

static void *lane_main(void *arg)
{
	struct lane *ln = arg;
	struct shared *sh = ln->sh;
	struct dda_error err = {0};
	int rc = 0;
	while (!rc && ln->pos < ln->end && !stopping(sh)) {
		size_t b = dda__batch_end(sh->p, sh->o, ln->pos, ln->end);
		rc = deliver(ln, ln->pos, b, &err);
	}
	pthread_mutex_lock(&sh->mu);
	if (rc < 0) {
		/* A DLQ or checkpoint that cannot be written: the run stops
		 * with what it did so far reported, as any stop is. */
		atomic_store(&sh->stop, 1);
		sh->st->stopped = true;
		if (!sh->fail.code)
			sh->fail = err;
	}
	sh->lanes_running--;
	pthread_cond_signal(&sh->lane_done);
	pthread_mutex_unlock(&sh->mu);
	return NULL;
}

/* The calling thread waits for the lanes, reporting progress about every
 * 500 ms when asked to. */
static void watch(struct shared *sh, int64_t t0)
{
	const struct dda_replay_opts *o = sh->o;
	int64_t stopped_at = 0;
	pthread_mutex_lock(&sh->mu);
	while (sh->lanes_running > 0) {
		/* A stopped run lets its sends in flight be answered, for a
		 * while: then they are cut short, whatever the target does. */
		if (!stopped_at && stopping(sh))
			stopped_at = dda_time_now();
		if (stopped_at && dda_time_now() - stopped_at >= DDA_REPLAY_DRAIN_US)
			sh->abort = 1;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 500 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&sh->lane_done, &sh->mu, &ts);
		if (o->progress && sh->lanes_running > 0) {
			struct dda_replay_stats snap = *sh->st;
			snap.seconds = (double)(dda_time_now() - t0) / 1e6;
			pthread_mutex_unlock(&sh->mu);
			o->progress(o->progress_ctx, &snap, false);
			pthread_mutex_lock(&sh->mu);
		}
	}
	pthread_mutex_unlock(&sh->mu);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void percentiles(struct shared *sh)
{
	if (!sh->nlat)
		return;
	qsort(sh->lat, sh->nlat, sizeof(double), cmp_double);
	sh->st->p50_ms = sh->lat[(sh->nlat - 1) / 2];
	sh->st->p99_ms = sh->lat[(size_t)((double)(sh->nlat - 1) * 0.99)];
}

/* lambda: targets share one signing client: credentials are resolved once
 * (by the caller, or here). */
int dda__target_lambda_api(struct dda_target_opts *t, struct dda_error *err)
{
	if (strncmp(t->spec, "lambda:", 7) || t->lambda)
		return 0;
	struct dda_env env = {dda__process_env, NULL, NULL};
	return dda__aws_api_new(&t->lambda, "lambda", t->aws, t->lambda_endpoint, NULL, NULL, &env,
				err);
}

int dda__replay_run(struct dda_plan *p, const struct dda_replay_opts *o,
		    struct dda_replay_stats *st, struct dda_error *err)
{
	struct shared sh = {.p = p, .o = o, .st = st};
	struct dda_target_opts topts = o->target;
	topts.stop = o->stop; /* an exec: batch ends with the run */
	topts.abort = &sh.abort;
	struct lane lanes[DDA_REPLAY_MAX_LANES];
	pthread_t th[DDA_REPLAY_MAX_LANES];
	int started = 0, rc = 0;
	memset(st, 0, sizeof(*st));
	memset(lanes, 0, sizeof(lanes));
	st->records = p->n;
	atomic_init(&sh.stop, 0);
	if (pthread_mutex_init(&sh.mu, NULL))
		return dda_error_set(err, DDA_ENOMEM, "cannot create a lock");
	if (pthread_cond_init(&sh.slot, NULL)) {
		pthread_mutex_destroy(&sh.mu);
		return dda_error_set(err, DDA_ENOMEM, "cannot create a condition variable");
	}
	if (pthread_cond_init(&sh.lane_done, NULL)) {
		pthread_cond_destroy(&sh.slot);
		pthread_mutex_destroy(&sh.mu);
		return dda_error_set(err, DDA_ENOMEM, "cannot create a condition variable");
	}
	if (o->checkpoint)
		rc = dda__checkpoint_load(o->checkpoint, p, o, sh.lane_pos, &sh.held, &sh.nheld,
					  err);
	sh.held_cap = sh.nheld;
	if (!rc)
		rc = o->dlq_open ? (sh.dlq = o->dlq_open, 0)
				 : dda__dlq_open(&sh.dlq, o->dlq, &o->target, err);
	if (!rc)
		rc = dda__target_lambda_api(&topts, err);
	for (int l = 0; !rc && l < p->lanes; l++) {
		struct lane *ln = &lanes[l];
		ln->sh = &sh;
		ln->id = l;
		ln->pos = p->lane_start[l] + sh.lane_pos[l];
		ln->end = p->lane_start[l + 1];
		ln->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(l + 1) ^ (uint64_t)dda_time_now();
		st->resumed += sh.lane_pos[l];
		dda_buf_init(&ln->batch, DDA_REPLAY_MAX_PAYLOAD + 64);
		rc = dda__plan_reader_new(&ln->rd, p, p->lanes, err);
		if (!rc)
			rc = dda__target_new(&ln->t, &topts, l, err);
	}
	int64_t t0 = dda_time_now();
	for (int l = 0; !rc && l < p->lanes; l++) {
		pthread_mutex_lock(&sh.mu);
		sh.lanes_running++;
		pthread_mutex_unlock(&sh.mu);
		if (pthread_create(&th[l], NULL, lane_main, &lanes[l])) {
			rc = dda_error_set(err, DDA_ENOMEM, "cannot start lane %d", l);
			pthread_mutex_lock(&sh.mu);
			sh.lanes_running--;
			atomic_store(&sh.stop, 1);
			pthread_mutex_unlock(&sh.mu);
			break;
		}
		started++;
	}
	watch(&sh, t0);
	for (int l = 0; l < started; l++)
		pthread_join(th[l], NULL);
	st->seconds = (double)(dda_time_now() - t0) / 1e6;
	if (o->progress)
		o->progress(o->progress_ctx, st, true);
	if (!rc && sh.fail.code && !st->stopped)
		rc = dda_error_set(err, sh.fail.code, "%s", sh.fail.msg);
	else if (!rc && sh.fail.code)
		*err = sh.fail;
	st->interrupted = o->stop && *o->stop;
	st->stopped = st->stopped || st->interrupted;
	percentiles(&sh);
	for (int l = 0; l < p->lanes; l++) {
		dda__target_free(lanes[l].t);
		dda__plan_reader_free(lanes[l].rd);
		dda_buf_release(&lanes[l].batch);
	}
	struct dda_error cerr = {0};
	if (sh.dlq != o->dlq_open && dda__dlq_close(sh.dlq, &cerr) && !rc)
		rc = dda_error_set(err, cerr.code, "%s", cerr.msg);
	if (topts.lambda != o->target.lambda)
		dda__aws_api_free(topts.lambda);
	free(sh.held);
	free(sh.lat);
	pthread_cond_destroy(&sh.slot);
	pthread_cond_destroy(&sh.lane_done);
	pthread_mutex_destroy(&sh.mu);
	return rc;
}

/* The DLQ line: Lambda's on-failure record for a stream batch, field for
 * field (requestContext, responseContext, version, timestamp with
 * milliseconds, DDBStreamBatchInfo with whole-second arrival times), and
 * ddbaudit's additions under "ddbaudit": the error text and the records
 * themselves, so that the DLQ is itself a replay source. */
static json_t *dlq_line(struct lane *ln, size_t a, size_t b, const char *condition,
			int attempts, const struct dda_send_result *res, json_t *records)
{
	struct shared *sh = ln->sh;
	const struct dda_plan *p = sh->p;
	char first[DDA_SEQ_DIGITS + 1], last[DDA_SEQ_DIGITS + 1], now[DDA_TIME_STRLEN];
	char t1[DDA_TIME_STRLEN], t2[DDA_TIME_STRLEN], shard[64];
	int64_t ms = dda_time_now() / 1000 * 1000;
	dda__seq_format(p->v[a].seq, first);
	dda__seq_format(p->v[b - 1].seq, last);
	/* The lanes of the shards of one run are distinct streams into one DLQ. */
	const struct dda_shard *sp = &sh->o->shard;
	if (sp->count)
		snprintf(shard, sizeof(shard), "shard-%u-of-%u-lane-%d", sp->index, sp->count,
			 ln->id);
	else
		snprintf(shard, sizeof(shard), "lane-%d", ln->id);
	dda_time_format(ms, true, now);
	char *dot = strchr(now, '.'); /* microseconds to Lambda's milliseconds */
	if (dot && strlen(dot) > 4)
		memcpy(dot + 4, "Z", 2);
	const char *arn = sh->o->function_arn ? sh->o->function_arn : sh->o->target.spec;
	const char *version = res->executed_version[0] ? res->executed_version : "$LATEST";
	const char *stream = json_string_value(
	    json_object_get(json_array_get(records, 0), "eventSourceARN"));
	json_t *line = json_pack(
	    "{s{sssssssi}s{sIssso}sssss{sssssssssssiss?}s{sssIsO}}", "requestContext",
	    "requestId", p->synth.run_id, "functionArn", arn, "condition", condition,
	    "approximateInvokeCount", attempts, "responseContext", "statusCode",
	    (json_int_t)(res->status >= 0 ? res->status : 0), "executedVersion", version,
	    "functionError", res->function_error ? json_string("Unhandled") : json_null(),
	    "version", "1.0", "timestamp", now, "DDBStreamBatchInfo", "shardId", shard,
	    "startSequenceNumber", first, "endSequenceNumber", last,
	    "approximateArrivalOfFirstRecord", dda_time_format(p->v[a].time, false, t1),
	    "approximateArrivalOfLastRecord", dda_time_format(p->v[b - 1].time, false, t2),
	    "batchSize", (int)(b - a), "streamArn", stream, "ddbaudit", "errorMessage",
	    res->msg, "status", (json_int_t)res->status, "Records", records);
	/* A sharded run's lines say which shard parked them (ddbaudit's own). */
	if (line && sp->count)
		json_object_set_new(json_object_get(line, "ddbaudit"), "shard",
				    json_pack("{sIsI}", "index", (json_int_t)sp->index, "count",
					      (json_int_t)sp->count));
	return line;
}

static int write_dlq(struct lane *ln, size_t a, size_t b, const char *condition, int attempts,
		     const struct dda_send_result *res, struct dda_error *err)
{
	struct shared *sh = ln->sh;
	int rc = build(ln, a, b, err);
	if (rc)
		return rc;
	json_t *batch = json_loadb(ln->batch.ptr, ln->batch.len, 0, NULL);
	json_t *line = dlq_line(ln, a, b, condition, attempts, res, json_object_get(batch, "Records"));
	json_decref(batch);
	char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(line);
	if (!text)
		return dda_error_set(err, DDA_ENOMEM, "out of memory");
	size_t len = strlen(text);
	if (len > dda__dlq_max(sh->dlq)) {
		/* Too big for one message: halves, each a whole on-failure record. */
		free(text);
		if (b - a == 1)
			return dda_error_set(err, DDA_ETOOBIG,
					     "a failed record is %zu bytes with its on-failure "
					     "record, over the DLQ's %zu byte message limit; use "
					     "--dlq file:PATH",
					     len, dda__dlq_max(sh->dlq));
		size_t mid = a + (b - a) / 2;
		rc = write_dlq(ln, a, mid, condition, attempts, res, err);
		return rc ? rc : write_dlq(ln, mid, b, condition, attempts, res, err);
	}
	/* The DLQ (one file, or one SQS connection) is shared by the lanes. */
	pthread_mutex_lock(&sh->mu);
	rc = dda__dlq_put(sh->dlq, text, len, err);
	pthread_mutex_unlock(&sh->mu);
	free(text);
	return rc;
}
