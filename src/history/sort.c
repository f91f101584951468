/* Sorting events into analysis order without qsort: a radix pass on the
 * top bits of the key hash (uniform, so buckets stay small), then a merge
 * sort of each bucket that compares hashes inline and calls the full order
 * (key, sequence number or time, object, position) only on equal hashes. */
#include "util/util.h"
#include "history/history_impl.h"

/* Buckets average about 2^BUCKET_AVG_SHIFT events; 2^MAX_BITS of them at
 * most (a 512 KiB count table). Small enough runs are sorted by insertion. */
#define BUCKET_AVG_SHIFT 3
#define MAX_BITS 16
#define INSERTION_MAX 16

static bool less(const struct dda__sortent *a, const struct dda__sortent *b,
		 const struct dda_objtab *objs)
{
	if (a->khash != b->khash)
		return a->khash < b->khash;
	return dda__event_cmp(objs, a->e, b->e) < 0;
}

static void insertion_sort(struct dda__sortent *v, size_t n, const struct dda_objtab *objs)
{
	for (size_t i = 1; i < n; i++) {
		struct dda__sortent x = v[i];
		size_t j = i;
		for (; j > 0 && less(&x, &v[j - 1], objs); j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Sorts v in place, tmp (as long) as its workspace. A bucket holds every
 * event of an item, and one item may have millions: no quadratic case. */
static void merge_sort(struct dda__sortent *v, struct dda__sortent *tmp, size_t n,
		       const struct dda_objtab *objs)
{
	if (n <= INSERTION_MAX) {
		insertion_sort(v, n, objs);
		return;
	}
	size_t h = n / 2;
	merge_sort(v, tmp, h, objs);
	merge_sort(v + h, tmp + h, n - h, objs);
	if (!less(&v[h], &v[h - 1], objs))
		return; /* already in order, as an item's events often are */
	memcpy(tmp, v, h * sizeof(*v));
	size_t i = 0, j = h, k = 0;
	while (i < h && j < n)
		v[k++] = less(&v[j], &tmp[i], objs) ? v[j++] : tmp[i++];
	while (i < h)
		v[k++] = tmp[i++];
}

static unsigned bucket_bits(size_t n)
{
	unsigned bits = 0;
	while (bits < MAX_BITS && (n >> (bits + BUCKET_AVG_SHIFT)) > 1)
		bits++;
	return bits;
}

int dda__events_sort(struct dda__sortent *v, struct dda__sortent *scratch, size_t n,
		     const struct dda_objtab *objs)
{
	unsigned bits = bucket_bits(n);
	if (!bits) {
		merge_sort(v, scratch, n, objs);
		return 0;
	}
	size_t nb = (size_t)1 << bits;
	unsigned shift = 64 - bits;
	size_t *start = calloc(nb + 1, sizeof(*start));
	if (!start)
		return DDA_ENOMEM;
	for (size_t i = 0; i < n; i++)
		start[(v[i].khash >> shift) + 1]++;
	for (size_t b = 0; b < nb; b++)
		start[b + 1] += start[b];
	for (size_t i = 0; i < n; i++)
		scratch[start[v[i].khash >> shift]++] = v[i];
	/* start[b] is now where bucket b ends. */
	for (size_t b = 0, from = 0; b < nb; from = start[b++])
		merge_sort(scratch + from, v + from, start[b] - from, objs);
	memcpy(v, scratch, n * sizeof(*v));
	free(start);
	return 0;
}
