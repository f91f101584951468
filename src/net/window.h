/* How many transfers the HTTP engine keeps in flight: a window that adapts.
 * With S3 answering a GET in about 20 ms, throughput is the window over the
 * latency, so a fixed window caps a run whatever the CPU; a large one
 * spends connections on a server that is the bottleneck, or that throttles.
 *
 * The window starts small and doubles every round (a round ends after as
 * many answers as the window held when it began) while it is full, as long
 * as each doubling buys throughput: once a round with a window at least a
 * quarter larger than the last one measured brings less than half the gain
 * a latency-bound run would (Little's law), growth stops for HOLD_ROUNDS
 * rounds at the smaller window, then probes again. A throttling answer (503 SlowDown, 429) halves
 * it, once for all the requests sent before the cut, and growth resumes one transfer a round from
 * there. Pure arithmetic on the times given, so tests drive it without a clock. */
#ifndef DDA_NET_WINDOW_H
#define DDA_NET_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

/* The window's first size (or the maximum, when smaller). */
#define DDA_WINDOW_START 16

struct dda_window {
	int cur;	  /* transfers allowed in flight now */
	int max;	  /* the most ever allowed (--concurrency) */
	int ssthresh;	  /* below it the window doubles a round, from it grows one a round */
	int acc;	  /* answers counted toward the next +1 above ssthresh */
	int hold;	  /* rounds left before growth is probed again */
	int peak;	  /* the largest window reached */
	uint64_t cuts;	  /* times throttling halved it */
	int64_t last_cut; /* answers to requests sent before this do not cut again */
	/* The round in progress, and the last one measured while full. */
	int round_window, round_done;
	bool round_full;
	int64_t round_start;
	int ref_window;
	double ref_rate;
	uint64_t hold_done; /* answers and time of the full rounds of a hold */
	int64_t hold_time;
};

void dda__window_init(struct dda_window *w, int max, int64_t now);

enum dda_window_event {
	DDA_WINDOW_SAME,
	DDA_WINDOW_CUT,	    /* throttled: halved */
	DDA_WINDOW_PLATEAU, /* growth stopped buying throughput: held */
};

/* One answer arrived at now, to a request sent at sent (its attempt's
 * start). throttled: the answer asks to slow down. full: the window was
 * full when it arrived (every slot busy), so a larger one would have been
 * used. Returns what changed, for the log. */
enum dda_window_event dda__window_answer(struct dda_window *w, int64_t now, int64_t sent,
					 bool throttled, bool full);

#endif
