/* Reading a bundle that may have been tampered with: gzip'd tar only, each
 * entry a plain file name of the known set, read once, within a size cap,
 * into an unlinked temporary file and hashed on the way. Anything else is
 * named in problems and left out; libarchive's own errors end the read. */
#include "evidence/evidence_impl.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>

struct source {
	FILE *f;
	struct dda__sha256 sha;
	char buf[1 << 16];
};

static la_ssize_t on_read(struct archive *a, void *ctx, const void **p)
{
	struct source *s = ctx;
	size_t got = fread(s->buf, 1, sizeof(s->buf), s->f);
	if (!got && ferror(s->f)) {
		archive_set_error(a, EIO, "%s", strerror(errno));
		return -1;
	}
	dda__sha256_update(&s->sha, s->buf, got);
	*p = s->buf;
	return (la_ssize_t)got;
}

/* Appends "<before>NAME<after>" to the problems. */
static int problem(struct dda__bundle *b, const char *before, const char *name, const char *after)
{
	struct dda_buf tmp;
	dda_buf_init(&tmp, 1024);
	/* The name as the archive holds it may be anything: shown escaped. */
	const char *shown = dda__name_text(&tmp, name ? name : "");
	int rc = dda_buf_addf(&b->problems, "%s", b->problems.len ? "; " : "");
	if (!rc)
		rc = dda_buf_addf(&b->problems, "%s%s%s", before, shown, after);
	dda_buf_release(&tmp);
	return rc ? DDA_ENOMEM : 0;
}

/* The name an entry is known by, or NULL with the reason in b->problems. */
static const char *entry_name(struct dda__bundle *b, struct archive_entry *e, int *rc)
{
	const char *name = archive_entry_pathname(e);
	*rc = 0;
	if (!name)
		return *rc = problem(b, "an entry without a name", "", ""), NULL;
	if (!strncmp(name, "./", 2))
		name += 2; /* a bundle repacked by `tar -C dir .` */
	if (archive_entry_filetype(e) != AE_IFREG)
		return *rc = problem(b, "'", name, "' is not a regular file"), NULL;
	if (strchr(name, '/') || !dda__bundle_name_known(name))
		return *rc = problem(b, "unexpected entry '", name, "'"), NULL;
	if (dda__bundle_find(b, name))
		return *rc = problem(b, "'", name, "' appears twice"), NULL;
	return name;
}

static uint64_t entry_cap(const char *name)
{
	return !strcmp(name, DDA_BUNDLE_SUMS) || !strcmp(name, DDA_BUNDLE_SIG) ||
		       !strcmp(name, DDA_BUNDLE_SIGNATURE)
		   ? DDA_BUNDLE_SMALL_MAX
		   : DDA_BUNDLE_ENTRY_MAX;
}

/* Copies the current entry's data into a temporary file; 1 when it was
 * over its cap (a problem, not kept). */
static int copy_entry(struct archive *a, struct dda__entry *en, uint64_t cap, struct dda_error *err)
{
	struct dda__sha256 h = {0};
	uint8_t d[DDA_SHA256_LEN];
	char buf[1 << 16];
	la_ssize_t got;
	en->f = tmpfile();
	if (!en->f || dda__sha256_init(&h))
		return dda_error_set(err, DDA_EIO, "cannot make a temporary file: %s",
				     strerror(errno));
	int rc = 0;
	while (!rc && (got = archive_read_data(a, buf, sizeof(buf))) > 0) {
		en->size += (uint64_t)got;
		if (en->size > cap)
			rc = 1;
		else if (fwrite(buf, 1, (size_t)got, en->f) != (size_t)got)
			rc = dda_error_set(err, DDA_EIO, "cannot write a temporary file: %s",
					   strerror(errno));
		else
			dda__sha256_update(&h, buf, (size_t)got);
	}
	if (!rc && got < 0)
		rc = dda_error_set(err, DDA_EFORMAT, "cannot read '%s' in the bundle: %s", en->name,
				   archive_error_string(a));
	dda__sha256_final(&h, d);
	dda__sha256_release(&h);
	dda__hex(d, sizeof(d), en->hex);
	if (!rc && (fflush(en->f) || fseek(en->f, 0, SEEK_SET)))
		rc = dda_error_set(err, DDA_EIO, "cannot read a temporary file back");
	return rc;
}

static int read_entries(struct dda__bundle *b, struct archive *a, struct dda_error *err)
{
	struct archive_entry *e;
	int r, rc = 0;
	size_t seen = 0;
	while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		if (++seen > DDA_BUNDLE_MAX_ENTRIES)
			return problem(b, "more than 64 entries", "", "");
		const char *name = entry_name(b, e, &rc);
		if (rc || !name)
			continue;
		struct dda__entry *en = &b->e[b->n++];
		snprintf(en->name, sizeof(en->name), "%s", name);
		uint64_t cap = entry_cap(en->name);
		if (archive_entry_size_is_set(e) && (uint64_t)archive_entry_size(e) > cap)
			rc = 1;
		else
			rc = copy_entry(a, en, cap, err);
		if (rc == 1) {
			if (en->f)
				fclose(en->f);
			b->n--;
			rc = problem(b, "'", name, "' is larger than a bundle's file may be");
		}
	}
	if (!rc && r != ARCHIVE_EOF)
		rc = dda_error_set(err, DDA_EFORMAT, "not a readable tar.gz: %s",
				   archive_error_string(a) ? archive_error_string(a)
							   : "unknown error");
	return rc;
}

static struct archive *reader_new(void)
{
	struct archive *a = archive_read_new();
	/* gzip'd tar and nothing else: no other decoder runs on these bytes. */
	if (a && (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
		  archive_read_support_format_tar(a) != ARCHIVE_OK)) {
		archive_read_free(a);
		a = NULL;
	}
	return a;
}

static void bundle_init(struct dda__bundle *b)
{
	memset(b, 0, sizeof(*b));
	dda_buf_init(&b->problems, 1 << 16);
}

int dda__bundle_read(struct dda__bundle *b, const char *path, struct dda_error *err)
{
	struct source *s = calloc(1, sizeof(*s));
	struct archive *a = reader_new();
	bundle_init(b);
	int rc = s && a ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && !(s->f = fopen(path, "rb")))
		rc = dda_error_set(err, DDA_EIO, "cannot open '%s': %s", path, strerror(errno));
	if (!rc && dda__sha256_init(&s->sha))
		rc = dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && archive_read_open(a, s, NULL, on_read, NULL) != ARCHIVE_OK)
		rc = dda_error_set(err, DDA_EFORMAT, "'%s' is not a tar.gz: %s", path,
				   archive_error_string(a));
	if (!rc)
		rc = read_entries(b, a, err);
	/* The whole file, trailing bytes included: what `sha256sum` says. */
	while (!rc && on_read(a, s, &(const void *){NULL}) > 0)
		;
	if (!rc)
		dda__sha256_final(&s->sha, b->sha);
	if (a)
		archive_read_free(a);
	if (s && s->f)
		fclose(s->f);
	if (s)
		dda__sha256_release(&s->sha);
	free(s);
	return rc;
}

int dda__bundle_read_mem(struct dda__bundle *b, const void *p, size_t n, struct dda_error *err)
{
	struct archive *a = reader_new();
	bundle_init(b);
	int rc = a ? 0 : dda_error_set(err, DDA_ENOMEM, "out of memory");
	if (!rc && archive_read_open_memory(a, p, n) != ARCHIVE_OK)
		rc = dda_error_set(err, DDA_EFORMAT, "not a tar.gz: %s", archive_error_string(a));
	if (!rc)
		rc = read_entries(b, a, err);
	if (!rc)
		dda__sha256(p, n, b->sha);
	if (a)
		archive_read_free(a);
	return rc;
}

void dda__bundle_release(struct dda__bundle *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->e[i].f)
			fclose(b->e[i].f);
	b->n = 0;
	dda_buf_release(&b->problems);
}

const struct dda__entry *dda__bundle_find(const struct dda__bundle *b, const char *name)
{
	for (size_t i = 0; i < b->n; i++)
		if (!strcmp(b->e[i].name, name))
			return &b->e[i];
	return NULL;
}

int dda__entry_slurp(const struct dda__entry *e, struct dda_buf *out, struct dda_error *err)
{
	char buf[1 << 16];
	size_t got;
	if (fseek(e->f, 0, SEEK_SET))
		return dda_error_set(err, DDA_EIO, "cannot read '%s' back", e->name);
	while ((got = fread(buf, 1, sizeof(buf), e->f)) > 0)
		if (dda_buf_add(out, buf, got))
			return dda_error_set(err, out->err, "'%s' is too large to read whole",
					     e->name);
	if (ferror(e->f) || fseek(e->f, 0, SEEK_SET))
		return dda_error_set(err, DDA_EIO, "cannot read '%s' back", e->name);
	return dda_buf_adds(out, "") ? dda_error_set(err, DDA_ENOMEM, "out of memory") : 0;
}
