/* Evidence bundles below the CLI: the SHA256SUMS format both ways, the
 * names a bundle may hold, Ed25519 signing and checking (a changed byte of
 * the message or the signature fails), and the reader's caps on a hostile
 * archive. tests/e2e/test_evidence.py covers the commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "evidence/evidence_impl.h"

static char dir[] = "/tmp/dda_evidence_XXXXXX";
static char priv[300], pub[300];

static int setup(void **st)
{
	(void)st;
	if (!mkdtemp(dir))
		return -1;
	snprintf(priv, sizeof(priv), "%s/key.pem", dir);
	snprintf(pub, sizeof(pub), "%s/pub.pem", dir);
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	FILE *a = fopen(priv, "w"), *b = fopen(pub, "w");
	int ok = k && a && b && PEM_write_PrivateKey(a, k, NULL, NULL, 0, NULL, NULL) &&
		 PEM_write_PUBKEY(b, k);
	if (a)
		fclose(a);
	if (b)
		fclose(b);
	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	unlink(priv);
	unlink(pub);
	rmdir(dir);
	return 0;
}

static void test_sums_round_trip(void **st)
{
	(void)st;
	struct dda_buf b;
	struct dda__sum s[DDA_SUMS_MAX_LINES];
	uint8_t d[DDA_SHA256_LEN];
	size_t n = 0;
	dda_buf_init(&b, 4096);
	dda__sha256("x", 1, d);
	assert_int_equal(dda__sums_line(&b, "report.json", d), 0);
	assert_int_equal(dda__sums_line(&b, "report.md", d), 0);
	assert_memory_equal(b.ptr + 64, "  report.json\n", 14);
	assert_int_equal(dda__sums_parse(dda_slice_make(b.ptr, b.len), s, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(s[1].name, "report.md");
	assert_memory_equal(s[0].hex, b.ptr, 64);
	dda_buf_release(&b);
}

static void refused(const char *text, const char *why_part)
{
	struct dda__sum s[DDA_SUMS_MAX_LINES];
	struct dda_buf why;
	size_t n;
	dda_buf_init(&why, 1024);
	assert_int_equal(dda__sums_parse(dda_slice_make(text, strlen(text)), s, &n, &why),
			 DDA_EFORMAT);
	if (!why.ptr || !strstr(why.ptr, why_part))
		print_error("%s: got '%s'\n", why_part, why.ptr ? why.ptr : "(null)");
	assert_non_null(why.ptr);
	assert_non_null(strstr(why.ptr, why_part));
	dda_buf_release(&why);
}

static void test_sums_refusals(void **st)
{
	(void)st;
	char line[200];
	refused("", "empty");
	refused("abc  x\n", "too short");
	snprintf(line, sizeof(line), "%064d  x", 0);
	refused(line, "newline");
	snprintf(line, sizeof(line), "%063dg  x\n", 0);
	refused(line, "64 hex digits");
	snprintf(line, sizeof(line), "%064d xy\n", 0);
	refused(line, "two spaces");
	snprintf(line, sizeof(line), "%064d  ../x\n", 0);
	refused(line, "plain name");
	snprintf(line, sizeof(line), "%064d  a\tb\n", 0);
	refused(line, "plain name");
	snprintf(line, sizeof(line), "%064d  x\n%064d *x\n", 0, 1);
	refused(line, "lists 'x' again");
	/* Uppercase digests are read as sha256sum reads them. */
	struct dda__sum s[1];
	size_t n;
	snprintf(line, sizeof(line), "%s  x\n",
		 "ABCDEF0000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(dda__sums_parse(dda_slice_make(line, strlen(line)), s, &n, NULL), 0);
	assert_string_equal(s[0].hex,
			    "abcdef0000000000000000000000000000000000000000000000000000000000");
}

static void test_known_names(void **st)
{
	(void)st;
	assert_true(dda__bundle_name_known("report.json"));
	assert_true(dda__bundle_name_known("anomalies.csv"));
	assert_true(dda__bundle_name_known("manifest.ndjson"));
	assert_true(dda__bundle_name_known("SHA256SUMS.sig"));
	assert_false(dda__bundle_name_known("../report.json"));
	assert_false(dda__bundle_name_known("report.json/"));
	assert_false(dda__bundle_name_known(""));
}

static void test_ed25519(void **st)
{
	(void)st;
	uint8_t sig[64];
	char id1[65], id2[65];
	struct dda_error err = {0};
	const char msg[] = "0123  report.json\n";
	assert_int_equal(dda__sign_ed25519(priv, msg, sizeof(msg) - 1, sig, id1, &err), 0);
	assert_int_equal(dda__verify_pem(pub, msg, sizeof(msg) - 1, sig, 64, id2, &err), 0);
	assert_string_equal(id1, id2);
	char bad[sizeof(msg)];
	memcpy(bad, msg, sizeof(msg));
	bad[3] ^= 1;
	assert_int_equal(dda__verify_pem(pub, bad, sizeof(msg) - 1, sig, 64, id2, &err),
			 DDA_EFORMAT);
	sig[10] ^= 1;
	assert_int_equal(dda__verify_pem(pub, msg, sizeof(msg) - 1, sig, 64, id2, &err),
			 DDA_EFORMAT);
	assert_int_equal(dda__verify_pem(pub, msg, sizeof(msg) - 1, sig, 63, id2, &err),
			 DDA_EFORMAT);
	assert_int_equal(err.code, 0);
	/* A public key is not a signing key, and the reverse. */
	assert_int_equal(dda__sign_ed25519(pub, msg, 1, sig, id1, &err), DDA_EINVAL);
	dda_error_clear(&err);
	assert_int_equal(dda_bundle_check_key(pub, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "--sign-key"));
	assert_int_equal(dda_bundle_check_key(priv, NULL), 0);
	assert_int_equal(dda_bundle_check_key("kms:alias/x", NULL), 0);
	assert_int_equal(dda_bundle_check_key("kms:", NULL), DDA_EINVAL);
}

/* A tar.gz in memory of (name, type, size, bytes) entries. */
struct ent {
	const char *name;
	int type;
	const char *data;
};

static size_t make_tar(const struct ent *e, size_t n, char *out, size_t cap)
{
	struct archive *a = archive_write_new();
	struct archive_entry *en = archive_entry_new();
	size_t used = 0;
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_memory(a, out, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		archive_entry_clear(en);
		archive_entry_set_pathname(en, e[i].name);
		archive_entry_set_filetype(en, e[i].type);
		archive_entry_set_perm(en, 0644);
		archive_entry_set_size(en,
				       e[i].type == AE_IFREG ? (la_int64_t)strlen(e[i].data) : 0);
		if (e[i].type == AE_IFLNK)
			archive_entry_set_symlink(en, "/etc/passwd");
		assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
		if (e[i].type == AE_IFREG)
			archive_write_data(a, e[i].data, strlen(e[i].data));
	}
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(en);
	return used;
}

static void test_reader_caps(void **st)
{
	(void)st;
	static char tar[1 << 20];
	static struct dda__bundle b;
	struct dda_error err = {0};
	char *big = malloc(DDA_BUNDLE_SMALL_MAX + 2);
	memset(big, ' ', DDA_BUNDLE_SMALL_MAX + 1);
	big[DDA_BUNDLE_SMALL_MAX + 1] = '\0';
	const struct ent e[] = {
	    {"report.md", AE_IFREG, "# r\n"},  {"./report.json", AE_IFREG, "{}"},
	    {"../evil", AE_IFREG, "x"},	       {"report.md", AE_IFREG, "again"},
	    {"anomalies.csv", AE_IFLNK, ""},   {"dir/report.md", AE_IFREG, "x"},
	    {"SIGNATURE.json", AE_IFREG, big},
	};
	size_t n = make_tar(e, DDA_ARRAY_SIZE(e), tar, sizeof(tar));
	free(big);
	assert_int_equal(dda__bundle_read_mem(&b, tar, n, &err), 0);
	assert_int_equal(b.n, 2);
	assert_non_null(dda__bundle_find(&b, "report.md"));
	assert_non_null(dda__bundle_find(&b, "report.json")); /* "./" is the same name */
	assert_null(dda__bundle_find(&b, "SIGNATURE.json"));
	const char *p = b.problems.ptr;
	assert_non_null(strstr(p, "unexpected entry '../evil'"));
	assert_non_null(strstr(p, "'report.md' appears twice"));
	assert_non_null(strstr(p, "'anomalies.csv' is not a regular file"));
	assert_non_null(strstr(p, "unexpected entry 'dir/report.md'"));
	assert_non_null(strstr(p, "'SIGNATURE.json' is larger"));
	struct dda_buf got;
	dda_buf_init(&got, 100);
	assert_int_equal(dda__entry_slurp(dda__bundle_find(&b, "report.md"), &got, &err), 0);
	assert_string_equal(got.ptr, "# r\n");
	dda_buf_release(&got);
	dda__bundle_release(&b);
	/* Not a tar.gz at all: an error, not a list of problems. */
	assert_int_equal(dda__bundle_read_mem(&b, "garbage", 7, &err), DDA_EFORMAT);
	dda__bundle_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sums_round_trip), cmocka_unit_test(test_sums_refusals),
	    cmocka_unit_test(test_known_names),	    cmocka_unit_test(test_ed25519),
	    cmocka_unit_test(test_reader_caps),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
