/* A stable LSD radix sort of (key, position) pairs: the large arrays of
 * replay's plan are ordered by integer keys, where qsort's comparisons and
 * its moves of whole elements cost several times more. */
#include "util/util.h"

#define DIGITS 8

void dda__radix_sort(struct dda__rkey *v, struct dda__rkey *tmp, size_t n)
{
	size_t count[DIGITS][256];
	if (n < 2)
		return;
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++)
		for (int d = 0; d < DIGITS; d++)
			count[d][(v[i].key >> (8 * d)) & 0xff]++;
	struct dda__rkey *src = v, *dst = tmp;
	for (int d = 0; d < DIGITS; d++) {
		size_t *c = count[d], sum = 0;
		if (c[(v[0].key >> (8 * d)) & 0xff] == n)
			continue; /* every key has this digit: the pass would change nothing */
		for (int b = 0; b < 256; b++) {
			size_t k = c[b];
			c[b] = sum;
			sum += k;
		}
		for (size_t i = 0; i < n; i++)
			dst[c[(src[i].key >> (8 * d)) & 0xff]++] = src[i];
		struct dda__rkey *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
}
