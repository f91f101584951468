/* libFuzzer target for the spilled-run reader: arbitrary bytes as a run in
 * a spill file (the first four bytes, little endian, are the count of events
 * the run says it holds). Reading either yields events whose keys and
 * sequence numbers lie within what was read, then ends, or fails with
 * DDA_EFORMAT, DDA_EIO or DDA_ENOMEM; never anything else. Whatever decodes
 * is written again as a run and must read back as the same events. */
#include "fuzz_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"
#include "history/history_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs are the reader's, not a user's: a bound keeps a run of many tiny
 * events from making one input slow. */
#define MAX_EVENTS 4096

struct copy {
	struct dda__event e;
	uint8_t key[256];
	char seq[DDA__SEQ_MAX];
};

static bool same(const struct dda__event *a, const struct copy *c)
{
	const struct dda__event *b = &c->e;
	return a->khash == b->khash && a->key_len == b->key_len &&
	       !memcmp(a->key, c->key, a->key_len) && a->time == b->time && a->line == b->line &&
	       a->obj == b->obj && a->index == b->index && a->event == b->event &&
	       a->flags == b->flags && !a->seq == !b->seq && a->seq_len == b->seq_len &&
	       (!a->seq || !memcmp(a->seq, c->seq, a->seq_len)) &&
	       !memcmp(a->old_digest, b->old_digest, DDA_DIGEST_LEN) &&
	       !memcmp(a->new_digest, b->new_digest, DDA_DIGEST_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64];
	static struct copy got[MAX_EVENTS];
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/dda-fuzz-spill-XXXXXX");
		CHECK(mkdtemp(dir));
	}
	if (size < 4)
		return 0;
	struct dda__spill_file f;
	struct dda_error err = {0};
	CHECK(!dda__spill_file_open(&f, dir, &err));
	CHECK(pwrite(f.fd, data + 4, size - 4, 0) == (ssize_t)(size - 4));
	f.size = size - 4;
	uint32_t count = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
			 (uint32_t)data[3] << 24;
	struct dda__run run = {&f, 0, size - 4, count};
	struct dda__run_reader r;
	CHECK(!dda__run_reader_init(&r, &run, &err));
	size_t n = 0;
	int rc;
	while ((rc = dda__run_next(&r, &err)) == 1 && n < MAX_EVENTS) {
		const struct dda__event *e = &r.cur;
		/* Borrowed bytes lie in the reader's decoded block. */
		CHECK(e->key >= r.raw && e->key + e->key_len <= r.raw + r.raw_len);
		CHECK(!e->seq || ((const uint8_t *)e->seq >= r.raw &&
				  (const uint8_t *)e->seq + e->seq_len <= r.raw + r.raw_len));
		CHECK(e->seq_len <= DDA__SEQ_MAX && e->event <= DDA_EV_STATE);
		if (e->key_len > sizeof(got[n].key))
			break;
		got[n].e = *e;
		memcpy(got[n].key, e->key, e->key_len);
		if (e->seq)
			memcpy(got[n].seq, e->seq, e->seq_len);
		n++;
	}
	CHECK(rc == 0 || rc == 1 || rc == DDA_EFORMAT || rc == DDA_EIO || rc == DDA_ENOMEM);
	dda__run_reader_release(&r);
	/* What decoded, written again, reads back the same. */
	struct dda__run_writer w;
	struct dda__run again;
	CHECK(!dda__run_writer_init(&w, &f, &err));
	for (size_t i = 0; i < n; i++) {
		struct dda__event e = got[i].e;
		e.key = got[i].key;
		e.seq = e.seq ? got[i].seq : NULL;
		CHECK(!dda__run_put(&w, &e, &err));
	}
	CHECK(!dda__run_finish(&w, &again, &err));
	dda__run_writer_release(&w);
	CHECK(again.events == n);
	CHECK(!dda__run_reader_init(&r, &again, &err));
	for (size_t i = 0; i < n; i++) {
		CHECK(dda__run_next(&r, &err) == 1);
		CHECK(same(&r.cur, &got[i]));
	}
	CHECK(dda__run_next(&r, &err) == 0);
	dda__run_reader_release(&r);
	dda__spill_file_close(&f);
	return 0;
}
