/* The adaptive window of transfers in flight (window.h says how it moves). */
#include "net/window.h"

#include <string.h>

/* Rounds the window stays put once growth stopped buying throughput, before
 * it probes again: long enough not to thrash, short enough (a few seconds at
 * S3's latency) to follow a server that speeds up. */
#define HOLD_ROUNDS 16
/* A round is compared with the reference once its window is a quarter
 * larger. Where latency is the bottleneck, throughput grows as the window
 * does (Little's law); growth goes on while it brings at least half of
 * that (a doubled window 1.5 times the answers a second), a bar that noise
 * in one round's rate seldom clears. A larger window that brought less is
 * given back: the server or the client's CPU is the bottleneck, and more
 * connections would only cost. The rate it is measured against after a
 * hold is the whole hold's, not one round's. */
#define GROWN_NUM 5
#define GROWN_DEN 4

static void new_round(struct dda_window *w, int64_t now)
{
	w->round_window = w->cur;
	w->round_done = 0;
	w->round_full = false;
	w->round_start = now;
}

void dda__window_init(struct dda_window *w, int max, int64_t now)
{
	memset(w, 0, sizeof(*w));
	w->max = max < 1 ? 1 : max;
	w->cur = w->max < DDA_WINDOW_START ? w->max : DDA_WINDOW_START;
	w->ssthresh = w->max;
	w->peak = w->cur;
	w->last_cut = INT64_MIN;
	new_round(w, now);
}

static void grow(struct dda_window *w)
{
	if (w->hold || w->cur >= w->max)
		return;
	if (w->cur < w->ssthresh) {
		w->cur++; /* one per answer: doubles in a round */
	} else if (++w->acc >= w->cur) {
		w->acc = 0;
		w->cur++;
	}
	if (w->cur > w->peak)
		w->peak = w->cur;
}

static void set_reference(struct dda_window *w, double rate)
{
	w->ref_window = w->round_window;
	w->ref_rate = rate;
}

/* A round ended: was the last growth worth it? */
static enum dda_window_event end_round(struct dda_window *w, int64_t now)
{
	enum dda_window_event ev = DDA_WINDOW_SAME;
	int64_t took = now - w->round_start;
	double rate = took > 0 ? (double)w->round_done * 1e6 / (double)took : 0;
	if (w->hold) {
		if (w->round_full && took > 0) {
			w->hold_done += w->round_done;
			w->hold_time += took;
		}
		if (--w->hold == 0) {
			w->ssthresh = w->max; /* probe again, doubling */
			if (w->hold_time > 0)
				set_reference(w, (double)w->hold_done * 1e6 / (double)w->hold_time);
		}
	} else if (w->round_full && rate > 0) {
		if (!w->ref_window || w->round_window < w->ref_window) {
			set_reference(w, rate);
		} else if ((int64_t)w->round_window * GROWN_DEN >=
			   (int64_t)w->ref_window * GROWN_NUM) {
			double grown = (double)w->round_window / (double)w->ref_window;
			if (rate >= w->ref_rate * (1 + (grown - 1) / 2)) {
				set_reference(w, rate);
			} else {
				w->cur = w->ref_window;
				w->ssthresh = w->cur;
				w->acc = 0;
				w->hold = HOLD_ROUNDS;
				w->hold_done = 0;
				w->hold_time = 0;
				ev = DDA_WINDOW_PLATEAU;
			}
		}
	}
	new_round(w, now);
	return ev;
}

enum dda_window_event dda__window_answer(struct dda_window *w, int64_t now, int64_t sent,
					 bool throttled, bool full)
{
	bool before_cut = sent < w->last_cut;
	if (throttled) {
		if (before_cut)
			return DDA_WINDOW_SAME; /* sent at the old rate: already counted */
		w->cur = w->cur / 2 > 0 ? w->cur / 2 : 1;
		w->ssthresh = w->cur;
		w->acc = 0;
		w->hold = 0;
		w->ref_window = 0;
		w->last_cut = now;
		w->cuts++;
		new_round(w, now);
		return DDA_WINDOW_CUT;
	}
	w->round_done++;
	if (full && !before_cut) {
		w->round_full = true;
		grow(w);
	}
	return w->round_done >= w->round_window ? end_round(w, now) : DDA_WINDOW_SAME;
}
