/* --shard K/N and --shard auto: which shard of a run this process is, and
 * the "shard" section its report carries so that merge can check that the
 * shards belong together (docs/shards.md). */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

/* How objects and items are assigned (dda_shard_of_name and
 * dda_shard_of_item); shards of one run must use the same. */
#define SHARD_ASSIGNMENT "seed-name-fnv1a64/v1"

static bool parse_index(const char *s, size_t n, unsigned long long *out)
{
	if (!n || n > 9 || strspn(s, "0123456789") < n)
		return false;
	char tmp[16];
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*out = strtoull(tmp, NULL, 10);
	return true;
}

/* The index an array job engine gives this process: AWS Batch's or a
 * Kubernetes Indexed Job's. */
static int auto_index(struct cli *c, unsigned long long *out)
{
	static const char *const vars[] = {"AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX"};
	const char *val[2];
	bool have[2];
	unsigned long long v[2];
	for (int i = 0; i < 2; i++) {
		val[i] = getenv(vars[i]);
		have[i] = val[i] && *val[i];
		if (have[i] && !parse_index(val[i], strlen(val[i]), &v[i])) {
			dda__cli_error(c, "--shard auto: %s is '%.40s', not a shard index", vars[i],
				       val[i]);
			return 1;
		}
	}
	if (!have[0] && !have[1]) {
		dda__cli_error(c, "--shard auto takes the index from AWS_BATCH_JOB_ARRAY_INDEX "
				  "(an AWS Batch array job) or JOB_COMPLETION_INDEX (a Kubernetes "
				  "Indexed Job): neither is set");
		return 1;
	}
	if (have[0] && have[1] && v[0] != v[1]) {
		dda__cli_error(c,
			       "--shard auto: AWS_BATCH_JOB_ARRAY_INDEX is %llu and "
			       "JOB_COMPLETION_INDEX is %llu; unset the one that is not meant",
			       v[0], v[1]);
		return 1;
	}
	*out = have[0] ? v[0] : v[1];
	return 0;
}

/* What a sharded run cannot take yet: each would need merge to join more
 * than reports and manifests. */
static int refuse_options(struct cli *c)
{
	const char *what = c->state_path		    ? "--state"
			   : c->baseline_path		    ? "--baseline"
			   : c->write_baseline		    ? "--write-baseline"
			   : c->bundle			    ? "--bundle"
			   : c->restore.baseline	    ? "restore --baseline"
			   : (c->command->opts & OPT_TABLE) ? "reconcile"
							    : NULL;
	if (!what)
		return 0;
	dda__cli_error(c, "--shard cannot be combined with %s yet (docs/shards.md)", what);
	return 1;
}

int dda__cli_shard_resolve(struct cli *c)
{
	unsigned long long k = 0, n = 0;
	if (!c->shard_arg) {
		if (!c->shard_count)
			return 0;
		dda__cli_error(c, "--shard-count N goes with --shard auto");
		return 1;
	}
	const char *slash = strchr(c->shard_arg, '/');
	if (!strcmp(c->shard_arg, "auto")) {
		if (!c->shard_count) {
			dda__cli_error(c,
				       "--shard auto needs --shard-count N (the array job's size)");
			return 1;
		}
		n = (unsigned long long)c->shard_count;
		if (auto_index(c, &k))
			return 1;
	} else if (!slash || !parse_index(c->shard_arg, (size_t)(slash - c->shard_arg), &k) ||
		   !parse_index(slash + 1, strlen(slash + 1), &n) || n < 1) {
		dda__cli_error(c, "invalid --shard '%s' (K/N with 0 <= K < N, or auto)",
			       c->shard_arg);
		return 1;
	} else if (c->shard_count && (unsigned long long)c->shard_count != n) {
		dda__cli_error(c, "--shard %s and --shard-count %lld disagree", c->shard_arg,
			       c->shard_count);
		return 1;
	}
	if (n > UINT32_MAX || k >= n) {
		dda__cli_error(c,
			       "--shard: index %llu is not below the count %llu (shards are "
			       "numbered from 0)",
			       k, n);
		return 1;
	}
	if (refuse_options(c))
		return 1;
	c->audit.src.shard = (struct dda_shard){(uint32_t)k, (uint32_t)n};
	/* An array job gives every shard the same arguments: --report names
	 * the run's directory and each shard writes its own inside it, where
	 * `merge DIR` finds them. */
	if (!strcmp(c->shard_arg, "auto") && c->report_dir) {
		size_t len = strlen(c->report_dir);
		while (len > 1 && c->report_dir[len - 1] == '/')
			len--;
		struct dda_buf p;
		dda_buf_init(&p, 1 << 16);
		if (dda_buf_addf(&p, "%.*s/shard-%llu-of-%llu", (int)len, c->report_dir, k, n)) {
			dda_buf_release(&p);
			dda__cli_error(c, "out of memory");
			return 1;
		}
		free(c->shard_report_dir);
		c->shard_report_dir = p.ptr;
		c->report_dir = p.ptr;
	}
	return 0;
}

/* "shard-K-of-N" exactly, K < N. */
static bool shard_dir_name(const char *name)
{
	unsigned long long k, n;
	const char *of = strstr(name, "-of-");
	if (strncmp(name, "shard-", 6) || !of)
		return false;
	return parse_index(name + 6, (size_t)(of - name - 6), &k) &&
	       parse_index(of + 4, strlen(of + 4), &n) && k < n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One directory of merge's arguments: a shard's report directory as it is,
 * or a run's directory (no report.json of its own) holding shard-K-of-N/
 * subdirectories, which stand for it, in name order. */
static int expand_dir(const char *dir, char ***out, size_t *n, size_t *cap)
{
	struct dda_buf p;
	dda_buf_init(&p, 1 << 16);
	struct stat st;
	size_t first = *n;
	int rc = dda_buf_addf(&p, "%s/report.json", dir);
	DIR *d = NULL;
	if (!rc && stat(p.ptr, &st) && (d = opendir(dir))) {
		struct dirent *e;
		while (!rc && (e = readdir(d))) {
			if (!shard_dir_name(e->d_name))
				continue;
			p.len = 0;
			if (*n == *cap) {
				size_t ncap = *cap ? *cap * 2 : 16;
				char **nv = realloc(*out, ncap * sizeof(*nv));
				if (!nv) {
					rc = DDA_ENOMEM;
					break;
				}
				*out = nv;
				*cap = ncap;
			}
			if ((rc = dda_buf_addf(&p, "%s/%s", dir, e->d_name)))
				break;
			if (!((*out)[*n] = strdup(p.ptr)))
				rc = DDA_ENOMEM;
			else
				(*n)++;
		}
		closedir(d);
		if (*n > first)
			qsort(*out + first, *n - first, sizeof(**out), cmp_str);
	}
	dda_buf_release(&p);
	return rc;
}

int dda__cli_shard_dirs(struct cli *c)
{
	char **found = NULL;
	size_t n = 0, cap = 0, ndirs = 0;
	const char **dirs = NULL;
	int rc = 0;
	for (size_t i = 0; !rc && i < c->ndirs; i++) {
		size_t before = n;
		rc = expand_dir(c->dirs[i], &found, &n, &cap);
		if (!rc && n == before) /* a shard's own directory: kept, first */
			c->dirs[ndirs++] = c->dirs[i];
	}
	/* found keeps room for a terminating NULL: c->shard_dirs owns them. */
	char **own = rc ? NULL : realloc(found, (n + 1) * sizeof(*own));
	if (own)
		found = own;
	if (own && n && (dirs = calloc(ndirs + n, sizeof(*dirs)))) {
		memcpy(dirs, c->dirs, ndirs * sizeof(*dirs));
		memcpy(dirs + ndirs, found, n * sizeof(*dirs));
	}
	if (!own || (n && !dirs)) {
		for (size_t i = 0; i < n; i++)
			free(found[i]);
		free(found);
		dda__cli_error(c, "out of memory");
		return 1;
	}
	own[n] = NULL;
	c->shard_dirs = own;
	if (dirs) {
		free(c->dirs);
		c->dirs = dirs;
	}
	c->ndirs = ndirs + n;
	return 0;
}

int dda__cli_options_digest(const json_t *options, char out[2 * 32 + 1])
{
	json_t *o = options ? json_deep_copy(options) : json_object();
	if (!o)
		return DDA_ENOMEM;
	/* The shard is what differs; now and since are each process's clock
	 * (the range they give is compared on its own). */
	json_object_del(o, "shard");
	json_object_del(o, "now");
	json_object_del(o, "since");
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!text)
		return DDA_ENOMEM;
	uint8_t d[DDA_SHA256_LEN];
	dda__sha256(text, strlen(text), d);
	dda__hex(d, sizeof(d), out);
	free(text);
	return 0;
}

json_t *dda__cli_shard_base_json(const struct cli *c, const struct dda_result *res,
				 const char *options_sha256)
{
	const struct dda_shard *sh = &c->audit.src.shard;
	const struct dda_source_facts *f = &res->source;
	return json_pack("{sIsIsssIsIsIssss}", "index", (json_int_t)sh->index, "count",
			 (json_int_t)sh->count, "assignment", SHARD_ASSIGNMENT, "listed",
			 (json_int_t)f->listed, "read", (json_int_t)res->sum.objects,
			 "other_shards", (json_int_t)f->other_shards, "listing_sha256",
			 f->listing_sha256, "options_sha256", options_sha256);
}

json_t *dda__cli_shard_json(const struct cli *c, const struct dda_result *res)
{
	char opts[2 * DDA_SHA256_LEN + 1];
	if (!c->audit.src.shard.count || dda__cli_options_digest(c->options, opts))
		return NULL;
	json_t *base = dda__cli_shard_base_json(c, res, opts);
	json_t *findings = dda_report_findings_json(res);
	json_t *buckets = json_array();
	for (int i = 0; buckets && i < DDA_CHANGE_BUCKETS; i++)
		json_array_append_new(buckets,
				      json_integer((json_int_t)res->sum.items_by_events[i]));
	/* items_by_events is not in the summary; report.html draws it. */
	if (!base || !findings || !buckets) {
		json_decref(base);
		json_decref(findings);
		json_decref(buckets);
		return NULL;
	}
	/* Each set takes its value, even when it fails: both are made. */
	if (json_object_set_new(base, "items_by_events", buckets) |
	    json_object_set_new(base, "findings", findings)) {
		json_decref(base);
		return NULL;
	}
	return json_pack("{so}", "shard", base);
}
