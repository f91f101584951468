/* Sources: directory walk order and keys, hour prefixes and pruning, gzip
 * objects and bombs, oversize objects, archives equal to the directory,
 * NDJSON chunking and line numbers, damaged streams. Fixtures are built in
 * a temporary directory at run time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/util.h"
#include "ddbaudit/source.h"
#include "source/ndjson.h"

static char root[256];

static void mkdirs(const char *path)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0777);
		*p = '/';
	}
}

static void put(const char *rel, const void *data, size_t n)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	mkdirs(path);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void puts_(const char *rel, const char *text)
{
	put(rel, text, strlen(text));
}

static size_t gzip_bytes(const void *in, size_t n, void *out, size_t cap)
{
	z_stream z = {0};
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t len = cap - z.avail_out;
	deflateEnd(&z);
	return len;
}

struct seen {
	char keys[64][256];
	char data[64][256];
	int status[64];
	int n;
	uint64_t lines[64];
};

static int collect(const char *spec, const struct dda_source_opts *o, struct seen *s,
		   struct dda_source **keep, struct dda_objtab *t)
{
	struct dda_source *src;
	struct dda_error err = {0};
	struct dda_chunk c;
	memset(s, 0, sizeof(*s));
	int rc = dda_source_open(&src, spec, t, o, &err);
	if (rc)
		return rc;
	dda_chunk_init(&c);
	while ((rc = dda_source_next(src, &c, &err)) > 0) {
		if (s->n < 64) {
			snprintf(s->keys[s->n], 256, "%s", dda_objtab_get(t, c.obj)->key);
			snprintf(s->data[s->n], 256, "%.*s", (int)DDA_MIN(c.data.len, 255),
				 c.data.ptr ? c.data.ptr : "");
			s->status[s->n] = c.status;
			s->lines[s->n] = c.first_line;
		}
		s->n++;
	}
	dda_chunk_release(&c);
	if (keep)
		*keep = src;
	else
		dda_source_free(src);
	return rc;
}

static struct dda_source_opts opts(void)
{
	struct dda_source_opts o = {.range = {DDA_TIME_NONE, DDA_TIME_NONE}};
	return o;
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/dda-source-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_key_hour(void **state)
{
	int64_t h, want;
	uint32_t off;
	const char *k = "audit-logs/2025/07/12/08/user 7-act.json";
	assert_true(dda_key_hour(k, strlen(k), &h, &off));
	dda_time_parse("2025-07-12T08:00", 16, &want);
	assert_int_equal(h, want);
	assert_string_equal(k + off, "user 7-act.json");
	k = "audit-logs/2025/07/12/08/team/a-b.json";
	assert_true(dda_key_hour(k, strlen(k), &h, &off));
	assert_string_equal(k + off, "team/a-b.json");
	k = "x/2024/01/01/00/2025/07/12/09/n.json"; /* the last run wins */
	assert_true(dda_key_hour(k, strlen(k), &h, &off));
	assert_string_equal(k + off, "n.json");
	const char *none[] = {"plain.json",
			      "audit-logs/2025/13/12/08/a.json",
			      "audit-logs/2025/07/12/24/a.json",
			      "audit-logs/2025/07/12/08/",
			      "audit-logs/2025/02/30/08/a.json",
			      "2025/07/12/8/a.json"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(none); i++)
		assert_false(dda_key_hour(none[i], strlen(none[i]), &h, &off));
}

static void test_dir_order_keys_and_gzip(void **state)
{
	char gz[256];
	puts_("tree/audit-logs/2025/07/12/09/b-1.json", "{\"b\":1}");
	puts_("tree/audit-logs/2025/07/12/08/z z-1.json", "{\"z\":1}");
	puts_("tree/audit-logs/2025/07/12/08/team/a-1.json", "{\"t\":1}");
	puts_("tree/audit-logs/2025/07/12/08/Jos\xc3\xa9+\"q\"-1.json", "{\"j\":1}");
	puts_("tree/audit-logs/.hidden", "x");
	size_t n = gzip_bytes("{\"g\":1}", 7, gz, sizeof(gz));
	put("tree/audit-logs/2025/07/12/08/g-1.json.gz", gz, n);
	char spec[512];
	snprintf(spec, sizeof(spec), "%s/tree/audit-logs", root);
	struct seen s;
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source_opts o = opts();
	assert_int_equal(collect(spec, &o, &s, NULL, t), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.keys[0], "audit-logs/2025/07/12/08/Jos\xc3\xa9+\"q\"-1.json");
	assert_string_equal(s.keys[1], "audit-logs/2025/07/12/08/g-1.json.gz");
	assert_string_equal(s.data[1], "{\"g\":1}");
	assert_string_equal(s.keys[2], "audit-logs/2025/07/12/08/team/a-1.json");
	assert_string_equal(s.keys[3], "audit-logs/2025/07/12/08/z z-1.json");
	assert_string_equal(s.keys[4], "audit-logs/2025/07/12/09/b-1.json");
	const struct dda_object *g = dda_objtab_get(t, 1);
	assert_true(g->gzip);
	assert_int_equal(g->size, (int64_t)n);
	uint8_t d[32];
	dda__sha256(gz, n, d);
	assert_memory_equal(d, g->sha256, 32);
	dda_objtab_free(t);
	/* Relative to any other directory, keys are relative to it. */
	snprintf(spec, sizeof(spec), "%s/tree/audit-logs/2025", root);
	t = dda_objtab_new();
	assert_int_equal(collect(spec, &o, &s, NULL, t), 0);
	assert_string_equal(s.keys[4], "07/12/09/b-1.json");
	dda_objtab_free(t);
}

static void test_dir_pruning(void **state)
{
	const char *hours[] = {"05", "06", "07", "08", "09", "10", "11"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(hours); i++) {
		char rel[256];
		snprintf(rel, sizeof(rel), "prune/audit-logs/2025/07/12/%s/u-a.json", hours[i]);
		puts_(rel, "{}");
	}
	puts_("prune/audit-logs/2024/12/31/23/u-a.json", "{}");
	puts_("prune/audit-logs/2025/06/30/23/u-a.json", "{}");
	char spec[512];
	snprintf(spec, sizeof(spec), "%s/prune/audit-logs", root);
	struct dda_source_opts o = opts();
	dda_time_parse("2025-07-12T08:00", 16, &o.range.from);
	dda_time_parse("2025-07-12T10:00", 16, &o.range.to);
	struct seen s;
	struct dda_source *src;
	struct dda_objtab *t = dda_objtab_new();
	assert_int_equal(collect(spec, &o, &s, &src, t), 0);
	/* 07 .. 10 with one hour of slack each side; 05, 06, 11, the other day,
	 * month and year are never opened. */
	assert_int_equal(s.n, 4);
	assert_string_equal(s.keys[0], "audit-logs/2025/07/12/07/u-a.json");
	assert_string_equal(s.keys[3], "audit-logs/2025/07/12/10/u-a.json");
	assert_int_equal(src->prefixes_skipped, 5);
	dda_source_free(src);
	dda_objtab_free(t);
}

static void test_oversize_and_bomb(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/big/audit-logs/2025/07/12/08/huge-1.json", root);
	mkdirs(path);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 100 << 20), 0);
	close(fd);
	size_t zn = 64 << 20;
	char *zeros = calloc(1, zn), *bomb = malloc(1 << 20);
	size_t bn = gzip_bytes(zeros, zn, bomb, 1 << 20);
	free(zeros);
	snprintf(path, sizeof(path), "big/audit-logs/2025/07/12/08/bomb-1.json.gz");
	put(path, bomb, bn);
	put("big/audit-logs/2025/07/12/08/broken-1.json.gz", bomb, bn / 2);
	put("big/audit-logs/2025/07/12/08/fake-1.json.gz", "{}", 2);
	free(bomb);
	char spec[512];
	snprintf(spec, sizeof(spec), "%s/big", root);
	struct dda_source_opts o = opts();
	struct seen s;
	struct dda_objtab *t = dda_objtab_new();
	assert_int_equal(collect(spec, &o, &s, NULL, t), 0);
	assert_int_equal(s.n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(s.status[i], DDA_CHUNK_UNREADABLE);
	dda_objtab_free(t);
}

/* Writes the tree of test_dir_order as an archive with libarchive. */
static void write_archive(const char *name, int format, int filter)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	struct archive *a = archive_write_new();
	archive_write_set_format(a, format);
	if (filter)
		archive_write_add_filter(a, filter);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	const char *files[][2] = {{"./audit-logs/2025/07/12/08/a-1.json", "{\"a\":1}"},
				  {"audit-logs/2025/07/12/09/b-1.json", "{\"b\":1}"},
				  {"audit-logs/2025/07/12/06/c-1.json", "{\"c\":1}"}};
	for (size_t i = 0; i < 3; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, files[i][0]);
		archive_entry_set_size(e, (la_int64_t)strlen(files[i][1]));
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_mtime(e, 1752300000, 0);
		archive_write_header(a, e);
		archive_write_data(a, files[i][1], strlen(files[i][1]));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static void test_archives(void **state)
{
	write_archive("x.tar", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, 0);
	write_archive("x.tar.gz", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP);
	write_archive("x.zip", ARCHIVE_FORMAT_ZIP, 0);
	write_archive("noext", ARCHIVE_FORMAT_TAR_USTAR, 0);
	const char *names[] = {"x.tar", "x.tar.gz", "x.zip", "noext"};
	for (size_t i = 0; i < DDA_ARRAY_SIZE(names); i++) {
		char spec[512];
		snprintf(spec, sizeof(spec), "%s/%s", root, names[i]);
		struct seen s;
		struct dda_objtab *t = dda_objtab_new();
		struct dda_source_opts o = opts();
		dda_time_parse("2025-07-12T08:00", 16, &o.range.from);
		struct dda_source *src;
		assert_int_equal(collect(spec, &o, &s, &src, t), 0);
		assert_int_equal(s.n, 2);
		assert_string_equal(s.keys[0], "audit-logs/2025/07/12/08/a-1.json");
		assert_string_equal(s.data[0], "{\"a\":1}");
		assert_string_equal(s.keys[1], "audit-logs/2025/07/12/09/b-1.json");
		assert_int_equal(src->objects_skipped, 1);
		struct dda_buf again;
		struct dda_error err = {0};
		dda_buf_init(&again, 0);
		assert_int_equal(src->ops->reread(src, 1, &again, &err), 0);
		assert_int_equal(again.len, 7);
		assert_memory_equal(again.ptr, "{\"b\":1}", 7);
		dda_buf_release(&again);
		dda_source_free(src);
		dda_objtab_free(t);
	}
}

static void add_entry(struct archive *a, const char *name, const char *data, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, link ? 0 : (la_int64_t)strlen(data));
	if (link)
		archive_entry_set_hardlink(e, link);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (!link)
		assert_int_equal(archive_write_data(a, data, strlen(data)),
				 (la_ssize_t)strlen(data));
	archive_entry_free(e);
}

/* Entries are objects by position: two of one name are read again each as
 * itself; a hard link reads as the last entry of its target's name before
 * it; a link to nothing is UNREADABLE. */
static void test_archive_duplicates_and_links(void **state)
{
	char spec[512];
	snprintf(spec, sizeof(spec), "%s/dup.tar", root);
	struct archive *a = archive_write_new();
	archive_write_set_format(a, ARCHIVE_FORMAT_TAR_USTAR);
	assert_int_equal(archive_write_open_filename(a, spec), ARCHIVE_OK);
	add_entry(a, "x/a.json", "{\"v\":1}", NULL);
	add_entry(a, "x/a.json", "{\"v\":2}", NULL);
	add_entry(a, "x/b.json", NULL, "x/a.json");
	add_entry(a, "x/a.json", "{\"v\":3}", NULL);
	add_entry(a, "x/c.json", NULL, "x/b.json");
	add_entry(a, "x/d.json", NULL, "x/none.json");
	archive_write_close(a);
	archive_write_free(a);
	struct seen s;
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source_opts o = opts();
	struct dda_source *src;
	assert_int_equal(collect(spec, &o, &s, &src, t), 0);
	assert_int_equal(s.n, 6);
	const char *want[] = {"{\"v\":1}", "{\"v\":2}", "{\"v\":2}", "{\"v\":3}", "{\"v\":2}"};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(s.status[i], DDA_CHUNK_OK);
		assert_string_equal(s.data[i], want[i]);
		struct dda_buf again;
		struct dda_error err = {0};
		dda_buf_init(&again, 0);
		assert_int_equal(src->ops->reread(src, (uint32_t)i, &again, &err), 0);
		assert_int_equal(again.len, strlen(want[i]));
		assert_memory_equal(again.ptr, want[i], again.len);
		dda_buf_release(&again);
	}
	assert_int_equal(s.status[5], DDA_CHUNK_UNREADABLE);
	dda_source_free(src);
	dda_objtab_free(t);
}

static void test_damaged_archive(void **state)
{
	/* Enough incompressible entries that the damage comes well after the
	 * first ones. */
	char path[512];
	snprintf(path, sizeof(path), "%s/d.tar.gz", root);
	struct archive *a = archive_write_new();
	archive_write_set_format(a, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_write_add_filter(a, ARCHIVE_FILTER_GZIP);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	uint64_t x = 88172645463325252u;
	for (int i = 0; i < 200; i++) {
		char name[64], body[4096];
		snprintf(name, sizeof(name), "audit-logs/2025/07/12/08/u%03d-a.json", i);
		for (size_t k = 0; k < sizeof(body); k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			body[k] = (char)('a' + x % 26);
		}
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, name);
		archive_entry_set_size(e, sizeof(body));
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_write_header(a, e);
		archive_write_data(a, body, sizeof(body));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	struct stat st;
	stat(path, &st);
	assert_int_equal(truncate(path, st.st_size / 2), 0);
	struct seen s;
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source_opts o = opts();
	int rc = collect(path, &o, &s, NULL, t);
	/* The entries before the damage were handed out; then a fatal error. */
	assert_true(rc < 0);
	assert_true(s.n >= 32);
	assert_true(s.n < 200);
	dda_objtab_free(t);
}

static void test_ndjson_chunks(void **state)
{
	/* ~3 MiB of lines: several chunks, lines never split, numbers right. */
	struct dda_buf text;
	dda_buf_init(&text, DDA_BUF_UNLIMITED);
	for (int i = 1; i <= 30000; i++)
		assert_int_equal(dda_buf_addf(&text, "{\"n\":%d,\"pad\":\"%090d\"}\n", i, 0), 0);
	assert_int_equal(dda_buf_adds(&text, "\n{\"n\":\"last, no newline\"}"), 0);
	put("big.ndjson", text.ptr, text.len);
	char *gz = malloc(text.len);
	size_t gn = gzip_bytes(text.ptr, text.len, gz, text.len);
	put("big.ndjson.gz", gz, gn);
	const char *names[] = {"big.ndjson", "big.ndjson.gz"};
	for (size_t k = 0; k < 2; k++) {
		char spec[512];
		snprintf(spec, sizeof(spec), "%s/%s", root, names[k]);
		struct dda_objtab *t = dda_objtab_new();
		struct dda_source *src;
		struct dda_error err = {0};
		struct dda_source_opts o = opts();
		assert_int_equal(dda_source_open(&src, spec, t, &o, &err), 0);
		struct dda_chunk c;
		dda_chunk_init(&c);
		uint64_t line = 1;
		int chunks = 0, last = 0;
		struct dda_buf all;
		dda_buf_init(&all, DDA_BUF_UNLIMITED);
		while (dda_source_next(src, &c, &err) > 0) {
			assert_int_equal(c.kind, DDA_CHUNK_LINES);
			assert_int_equal(c.first_line, line);
			for (size_t i = 0; i < c.data.len; i++)
				line += c.data.ptr[i] == '\n';
			if (c.data.len && !c.last)
				assert_int_equal(c.data.ptr[c.data.len - 1], '\n');
			assert_int_equal(
			    dda_buf_add(&all, c.data.ptr ? c.data.ptr : "", c.data.len), 0);
			chunks++;
			last += c.last;
		}
		assert_true(chunks >= 3);
		assert_int_equal(last, 1);
		assert_int_equal(all.len, text.len);
		assert_memory_equal(all.ptr, text.ptr, text.len);
		const struct dda_object *ob = dda_objtab_get(t, 0);
		uint8_t d[32];
		dda__sha256(k ? gz : text.ptr, k ? gn : text.len, d);
		assert_true(ob->sha_valid);
		assert_memory_equal(d, ob->sha256, 32);
		dda_buf_release(&all);
		dda_chunk_release(&c);
		dda_source_free(src);
		dda_objtab_free(t);
	}
	/* Truncated gzip: complete lines before the damage are still handed out. */
	put("cut.ndjson.gz", gz, gn / 2);
	char spec[512];
	snprintf(spec, sizeof(spec), "%s/cut.ndjson.gz", root);
	struct seen s;
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source_opts o = opts();
	assert_int_equal(collect(spec, &o, &s, NULL, t), 0);
	assert_int_equal(s.status[s.n - 1], DDA_CHUNK_UNREADABLE);
	assert_true(s.n >= 2);
	dda_objtab_free(t);
	free(gz);
	dda_buf_release(&text);
}

static void test_ndjson_long_line(void **state)
{
	struct dda_buf text;
	dda_buf_init(&text, DDA_BUF_UNLIMITED);
	assert_int_equal(dda_buf_adds(&text, "{\"a\":1}\n"), 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(dda_buf_adds(&text, "xxxxxxxxxx"), 0);
	assert_int_equal(dda_buf_adds(&text, "\n{\"b\":2}\n"), 0);
	put("long.ndjson", text.ptr, text.len);
	char spec[512];
	snprintf(spec, sizeof(spec), "%s/long.ndjson", root);
	struct seen s;
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source_opts o = opts();
	o.max_object_bytes = 100;
	assert_int_equal(collect(spec, &o, &s, NULL, t), 0);
	int unreadable = 0;
	bool saw_b = false;
	for (int i = 0; i < s.n; i++) {
		if (s.status[i] == DDA_CHUNK_UNREADABLE) {
			unreadable++;
			assert_int_equal(s.lines[i], 2);
		}
		saw_b = saw_b || strstr(s.data[i], "\"b\"");
	}
	assert_int_equal(unreadable, 1);
	assert_true(saw_b);
	dda_objtab_free(t);
	dda_buf_release(&text);
}

/* Lines of the cap's length and one byte over it, the long one both whole
 * in the first read and running past it: every other line is handed out,
 * numbered right, and the long one is one finding naming its line. */
static void test_ndjson_lines_around_the_cap(void **state)
{
	const size_t cap = 3000000; /* over the 1 MiB chunk target */
	struct dda_buf text;
	dda_buf_init(&text, DDA_BUF_UNLIMITED);
	assert_int_equal(dda_buf_adds(&text, "{\"line\":1}\n{\"line\":2}\n"), 0);
	for (int k = 0; k < 3; k++) { /* lines 3, 4, 5: cap - 1, cap, cap + 1 */
		size_t n = cap - 1 + (size_t)k;
		assert_int_equal(dda_buf_grow(&text, n + 1), 0);
		memset(text.ptr + text.len, 'x', n);
		text.len += n;
		assert_int_equal(dda_buf_addc(&text, '\n'), 0);
	}
	assert_int_equal(dda_buf_adds(&text, "{\"line\":6}\r\n{\"line\":7}"), 0);
	put("cap.ndjson", text.ptr, text.len);
	char spec[512];
	snprintf(spec, sizeof(spec), "%s/cap.ndjson", root);
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source *src;
	struct dda_error err = {0};
	struct dda_source_opts o = opts();
	o.max_object_bytes = cap;
	assert_int_equal(dda_source_open(&src, spec, t, &o, &err), 0);
	struct dda_chunk c;
	dda_chunk_init(&c);
	uint64_t line = 1, lines_read = 0;
	int unreadable = 0;
	while (dda_source_next(src, &c, &err) > 0) {
		assert_int_equal(c.first_line, line);
		if (c.status == DDA_CHUNK_UNREADABLE) {
			unreadable++;
			assert_int_equal(c.first_line, 5);
			assert_non_null(
			    strstr(c.msg, "line 5 is longer than the 3000000-byte cap"));
			line++;
		}
		for (size_t i = 0; i < c.data.len; i++)
			line += c.data.ptr[i] == '\n';
		lines_read += c.data.len ? 1 : 0;
		dda_chunk_release(&c);
	}
	assert_int_equal(unreadable, 1);
	assert_int_equal(line, 7); /* the last line has no newline */
	assert_true(lines_read >= 2);
	dda_source_free(src);
	dda_objtab_free(t);
	dda_buf_release(&text);
}

/* The positions a line takes: one per record, at least as many as a
 * batch's records, none for a blank line. */
static void test_ndjson_line_slots(void **state)
{
	const char *rec = "{\"eventName\":\"INSERT\",\"newImage\":{\"L\":{\"L\":[1,2,3]}}}";
	assert_int_equal(dda__ndjson_line_slots(rec, strlen(rec)), 1);
	assert_int_equal(dda__ndjson_line_slots(" \t\r", 3), 0);
	const char *batch =
	    "{\"Records\":[{\"a\":[1,2],\"b\":\"x,y\"},{\"c\":1},{\"d\":\"\\\"]\"}]}";
	assert_true(dda__ndjson_line_slots(batch, strlen(batch)) >= 3);
	const char *dlq = "{\"DDBStreamBatchInfo\":{},\"ddbaudit\":{\"Records\":[{},{},{},{}]}}";
	assert_true(dda__ndjson_line_slots(dlq, strlen(dlq)) >= 4);
	const char *esc = "{\"Rec\\u006frds\":[{},{}]}";
	assert_true(dda__ndjson_line_slots(esc, strlen(esc)) >= 2);
}

static void test_gunzip(void **state)
{
	char a[128], b[128], both[256];
	size_t na = gzip_bytes("hello ", 6, a, sizeof(a)),
	       nb = gzip_bytes("world", 5, b, sizeof(b));
	memcpy(both, a, na);
	memcpy(both + na, b, nb);
	struct dda_buf out;
	struct dda_error err = {0};
	dda_buf_init(&out, 1024);
	assert_int_equal(dda_gunzip(both, na + nb, &out, &err), 0);
	assert_string_equal(out.ptr, "hello world");
	dda_buf_release(&out);
	dda_buf_init(&out, 8);
	assert_int_equal(dda_gunzip(both, na + nb, &out, &err), DDA_ETOOBIG);
	dda_buf_release(&out);
	dda_buf_init(&out, 11); /* exactly fits */
	assert_int_equal(dda_gunzip(both, na + nb, &out, &err), 0);
	dda_buf_release(&out);
	dda_buf_init(&out, 1024);
	assert_int_equal(dda_gunzip(a, na - 4, &out, &err), DDA_EFORMAT);
	dda_buf_release(&out);
	assert_true(dda_is_gzip(a, na));
	assert_false(dda_is_gzip("{}", 2));
}

static void test_open_errors(void **state)
{
	struct dda_source *src;
	struct dda_error err = {0};
	struct dda_objtab *t = dda_objtab_new();
	struct dda_source_opts o = opts();
	assert_int_equal(dda_source_open(&src, "/nonexistent/x", t, &o, &err), DDA_ENOTFOUND);
	assert_non_null(strstr(err.msg, "cannot open"));
	dda_error_clear(&err);
	assert_int_equal(dda_source_open(&src, "s3:///x/", t, &o, &err), DDA_EINVAL);
	assert_non_null(strstr(err.msg, "s3://BUCKET/PREFIX/"));
	dda_objtab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_hour),
	    cmocka_unit_test(test_dir_order_keys_and_gzip),
	    cmocka_unit_test(test_dir_pruning),
	    cmocka_unit_test(test_oversize_and_bomb),
	    cmocka_unit_test(test_archives),
	    cmocka_unit_test(test_damaged_archive),
	    cmocka_unit_test(test_archive_duplicates_and_links),
	    cmocka_unit_test(test_ndjson_chunks),
	    cmocka_unit_test(test_ndjson_long_line),
	    cmocka_unit_test(test_ndjson_lines_around_the_cap),
	    cmocka_unit_test(test_ndjson_line_slots),
	    cmocka_unit_test(test_gunzip),
	    cmocka_unit_test(test_open_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
