/* Helpers for tests that build a dda_result by hand: times and item keys
 * from their text forms. Include after cmocka.h. */
#ifndef DDA_TEST_REPORT_FIXTURE_H
#define DDA_TEST_REPORT_FIXTURE_H

#include "util/util.h"
#include "ddbaudit/canon.h"
#include "ddbaudit/record.h"

static inline int64_t t(const char *s)
{
	int64_t v;
	assert_int_equal(dda_time_parse(s, strlen(s), &v), 0);
	return v;
}

/* Gives a the item key written as history --key takes it. */
static inline void key_of(struct dda_anomaly *a, const char *text)
{
	struct dda_buf k, why;
	dda_buf_init(&k, 4096);
	dda_buf_init(&why, 4096);
	assert_int_equal(dda_canon_key_parse(text, &k, &why), 0);
	size_t n;
	a->key = (uint8_t *)dda_buf_take(&k, &n);
	a->key_len = (uint32_t)n;
	dda_buf_release(&why);
}

#endif
