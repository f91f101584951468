/* Internal to src/history: the compact event every history holds, and the
 * codec that writes sorted runs of them to a spill file and reads them back
 * (spill.c), for histories bounded by a memory budget. */
#ifndef DDA_HISTORY_IMPL_H
#define DDA_HISTORY_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "ddbaudit/history.h"

/* A sequence number is a decimal string of at most 40 digits in practice;
 * the bound keeps a hostile one from bloating every event. */
#define DDA__SEQ_MAX 64

enum dda__ev_flags {
	DDA__F_OLD = 1,
	DDA__F_NEW = 2,
	DDA__F_OLD_UNKNOWN = 4,
	DDA__F_NEW_UNKNOWN = 8,
	DDA__F_TTL = 16,
	DDA__F_ALL = 31,
};

/* One event. key and seq are borrowed from whoever holds the bytes: the
 * history's arena, or the block a run reader decoded last. seq is NULL
 * when the record had no sequence number; absent digests are zero. */
struct dda__event {
	uint64_t khash;
	const uint8_t *key;
	const char *seq;
	int64_t time;
	uint64_t line;
	uint32_t key_len;
	uint32_t obj;
	uint32_t index;
	uint16_t seq_len;
	uint8_t event;
	uint8_t flags;
	uint8_t old_digest[DDA_DIGEST_LEN];
	uint8_t new_digest[DDA_DIGEST_LEN];
};

/* An event's place in an ordering: its key hash, copied so that most
 * comparisons never touch the event. */
struct dda__sortent {
	uint64_t khash;
	const struct dda__event *e;
};

/* The order of analysis: key hash, key bytes, then sequence number when
 * both events have one (else time), then the object's last-modified time,
 * the object's id and the position in it. objs (may be NULL) is borrowed. */
int dda__event_cmp(const struct dda_objtab *objs, const struct dda__event *a,
		   const struct dda__event *b);
/* Sorts v (n entries, khash set) into that order (sort.c); scratch is
 * workspace of n entries. 0, or DDA_ENOMEM with v unchanged. */
int dda__events_sort(struct dda__sortent *v, struct dda__sortent *scratch, size_t n,
		     const struct dda_objtab *objs);

/* An unlinked temporary file that runs are appended to. dir is borrowed,
 * for messages. */
struct dda__spill_file {
	int fd;
	uint64_t size;
	const char *dir;
};

/* Creates the file in dir (made and unlinked at once, so nothing is left
 * behind whatever happens to the process). 0 or DDA_EIO with err set. */
int dda__spill_file_open(struct dda__spill_file *f, const char *dir, struct dda_error *err);
void dda__spill_file_close(struct dda__spill_file *f);

/* Where a run lies in its file. */
struct dda__run {
	struct dda__spill_file *file;
	uint64_t off, len;
	uint64_t events;
};

/* Writes one run: events go into blocks of about DDA__RUN_BLOCK bytes, each
 * deflated on its own and appended to the file with its two lengths. Within
 * a block, an event of the same item as the one before leaves its key out,
 * and its old digest when that is the previous event's new digest; hashes,
 * times and numbers are varints (the hash and time as deltas). */
#define DDA__RUN_BLOCK ((size_t)64 << 10)
struct dda__run_writer {
	struct dda__spill_file *file;
	uint64_t start, events;
	uint8_t *raw;
	size_t raw_len, raw_cap;
	uint8_t *z;
	size_t z_cap;
	z_stream zs;
	bool zs_ready;
	struct dda__event prev; /* block-local delta state (key not kept) */
	size_t prev_key_off;	/* where prev's key was written in raw */
	bool have_prev;
};

int dda__run_writer_init(struct dda__run_writer *w, struct dda__spill_file *f,
			 struct dda_error *err);
/* Appends an event (copied). 0, DDA_ENOMEM or DDA_EIO (err set). */
int dda__run_put(struct dda__run_writer *w, const struct dda__event *e, struct dda_error *err);
/* Flushes the last block and describes the run in *out. */
int dda__run_finish(struct dda__run_writer *w, struct dda__run *out, struct dda_error *err);
void dda__run_writer_release(struct dda__run_writer *w);

/* Reads a run back, event by event. */
struct dda__run_reader {
	struct dda__run run;
	uint64_t pos; /* next block's offset within the run */
	uint8_t *raw, *z;
	size_t raw_len, raw_cap, z_cap, at;
	z_stream zs;
	bool zs_ready;
	struct dda__event cur;
	bool have_prev;
	uint64_t events; /* decoded so far, checked against the run's count */
};

int dda__run_reader_init(struct dda__run_reader *r, const struct dda__run *run,
			 struct dda_error *err);
/* The next event into r->cur (its key and seq borrowed from the reader
 * until the next call). 1: an event; 0: the end of the run; DDA_EIO (a short
 * read), DDA_EFORMAT (bytes that are no run) or DDA_ENOMEM with err set. */
int dda__run_next(struct dda__run_reader *r, struct dda_error *err);
void dda__run_reader_release(struct dda__run_reader *r);

#endif
