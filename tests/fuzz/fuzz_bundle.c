/* libFuzzer target for what `evidence verify` reads from an untrusted
 * bundle: the same bytes as SHA256SUMS text and as a tar.gz. The parser
 * either refuses (DDA_EFORMAT with a reason) or returns at most 32 lines of
 * plain, distinct names with lowercase 64-digit digests; the reader either
 * refuses the archive or keeps only known names, once each, within their
 * size caps, each hashed as it is. */
#include "fuzz_check.h"
#include <stdio.h>
#include <string.h>

#include "evidence/evidence_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sums(const uint8_t *data, size_t size)
{
	struct dda__sum sums[DDA_SUMS_MAX_LINES];
	struct dda_buf why;
	size_t n = 99;
	dda_buf_init(&why, 1024);
	int rc = dda__sums_parse(dda_slice_make(data, size), sums, &n, &why);
	if (rc) {
		CHECK(rc == DDA_EFORMAT || rc == DDA_ENOMEM);
		CHECK(rc == DDA_ENOMEM || why.err || (why.ptr && why.len));
	} else {
		CHECK(n >= 1 && n <= DDA_SUMS_MAX_LINES);
		for (size_t i = 0; i < n; i++) {
			CHECK(strlen(sums[i].hex) == 64);
			CHECK(strspn(sums[i].hex, "0123456789abcdef") == 64);
			CHECK(sums[i].name[0] && !strchr(sums[i].name, '/'));
			for (size_t j = 0; j < i; j++)
				CHECK(strcmp(sums[i].name, sums[j].name));
		}
	}
	dda_buf_release(&why);
}

static void check_bundle(const uint8_t *data, size_t size)
{
	static struct dda__bundle b;
	struct dda_error err = {0};
	uint8_t d[DDA_SHA256_LEN];
	char hex[65];
	int rc = dda__bundle_read_mem(&b, data, size, &err);
	if (rc)
		CHECK(rc == DDA_EFORMAT || rc == DDA_ENOMEM || rc == DDA_EIO);
	CHECK(b.n <= DDA_BUNDLE_MAX_ENTRIES);
	for (size_t i = 0; i < b.n; i++) {
		const struct dda__entry *e = &b.e[i];
		CHECK(dda__bundle_name_known(e->name));
		CHECK(dda__bundle_find(&b, e->name) == e);
		CHECK(e->size <= DDA_BUNDLE_ENTRY_MAX);
		if (rc)
			continue; /* the entry being read when the archive broke */
		CHECK(!dda__hash_stream(e->f, d, NULL));
		dda__hex(d, sizeof(d), hex);
		CHECK(!strcmp(hex, e->hex));
	}
	dda__bundle_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_sums(data, size);
	check_bundle(data, size);
	return 0;
}
