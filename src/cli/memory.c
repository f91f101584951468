/* --memory-limit and --tmp-dir: the size an audit's event table may reach
 * before it spills to disk, and its default, a share of the memory the
 * process may use (its cgroup's limit where one is set, as AWS Batch and
 * Kubernetes set one, else the machine's). */
#include "cli/cli.h"

#include <errno.h>

/* The default takes half: the rest is for the decoders, the queue of
 * chunks in flight, the object table and the findings. */
#define DEFAULT_SHARE_DIVISOR 2
/* A cgroup path is short; this bounds what is read from /proc. */
#define CGROUP_FILE_MAX 65536

int dda__cli_parse_size(const char *arg, uint64_t *out)
{
	char *end;
	if (!strcmp(arg, "off")) {
		*out = 0;
		return 0;
	}
	if (!*arg || !strchr("0123456789", *arg))
		return DDA_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno)
		return DDA_EINVAL;
	static const char units[] = "KMGT";
	unsigned shift = 0;
	if (*end) {
		const char *u = strchr(units, *end >= 'a' ? *end - 'a' + 'A' : *end);
		if (!u || !*u)
			return DDA_EINVAL;
		shift = 10 * (unsigned)(u - units + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return DDA_EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A number from a one-line file ("max" and unreadable files are none). */
static uint64_t read_number(const char *path)
{
	char line[64];
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	bool got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	char *end;
	unsigned long long v = got ? strtoull(line, &end, 10) : 0;
	return got && end != line ? (uint64_t)v : 0;
}

/* The smallest limit set on the cgroup at root/rel or on any of its
 * ancestors (a parent's limit binds its children too); 0 when none is. */
static uint64_t cgroup_limit(const char *root, const char *rel, const char *file)
{
	char dir[4096], path[4200];
	uint64_t best = 0;
	size_t root_len = strlen(root);
	if ((size_t)snprintf(dir, sizeof(dir), "%s%s", root, rel) >= sizeof(dir))
		return 0;
	for (;;) {
		size_t len = strlen(dir);
		while (len > root_len && dir[len - 1] == '/')
			dir[--len] = '\0';
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		uint64_t v = read_number(path);
		if (v && (!best || v < best))
			best = v;
		char *slash = strrchr(dir, '/');
		if (len <= root_len || !slash || (size_t)(slash - dir) < root_len)
			break;
		*slash = '\0';
	}
	return best;
}

/* The memory limit of this process's cgroup (v2 memory.max, v1
 * memory.limit_in_bytes), or 0 when none is set. */
static uint64_t process_cgroup_limit(void)
{
	struct dda_buf text;
	struct dda_error err = {0};
	uint64_t best = 0;
	dda_buf_init(&text, CGROUP_FILE_MAX);
	if (dda__read_file("/proc/self/cgroup", &text, &err)) {
		dda_buf_release(&text);
		return 0;
	}
	for (char *line = text.ptr, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		/* "ID:CONTROLLERS:PATH"; v2 is "0::PATH". */
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctl = c1 + 1, *rel = c2 + 1;
		uint64_t v = 0;
		if (!*ctl) {
			v = cgroup_limit("/sys/fs/cgroup", rel, "memory.max");
			if (!v)
				v = cgroup_limit("/sys/fs/cgroup/unified", rel, "memory.max");
		} else if (strstr(ctl, "memory")) {
			v = cgroup_limit("/sys/fs/cgroup/memory", rel, "memory.limit_in_bytes");
		}
		if (v && (!best || v < best))
			best = v;
	}
	dda_buf_release(&text);
	return best;
}

static uint64_t mem_total(void)
{
	char line[256];
	uint64_t kib = 0;
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "MemTotal:", 9)) {
			kib = strtoull(line + 9, NULL, 10);
			break;
		}
	fclose(f);
	return kib << 10;
}

void dda__cli_default_memory(uint64_t *limit, const char **source)
{
	uint64_t total = mem_total(), cg = process_cgroup_limit();
	/* v1 reports "no limit" as a number near 2^63. */
	if (cg && (!total || cg < total)) {
		*limit = cg / DEFAULT_SHARE_DIVISOR;
		*source = "cgroup";
	} else if (total) {
		*limit = total / DEFAULT_SHARE_DIVISOR;
		*source = "memtotal";
	} else {
		*limit = 0;
		*source = "unknown";
	}
}
