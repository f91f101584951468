/* Names and severities of anomaly kinds, dialects and event names. */
#include "util/util.h"
#include "ddbaudit/record.h"

static const struct {
	const char *name;
	int severity;
} kinds[DDA_K__COUNT] = {
    [DDA_K_UNREADABLE] = {"UNREADABLE", DDA_SEV_ERROR},
    [DDA_K_INVALID_RECORD] = {"INVALID_RECORD", DDA_SEV_ERROR},
    [DDA_K_INVALID_VALUE] = {"INVALID_VALUE", DDA_SEV_ERROR},
    [DDA_K_IMAGE_MISMATCH] = {"IMAGE_MISMATCH", DDA_SEV_ERROR},
    [DDA_K_KEY_MISMATCH] = {"KEY_MISMATCH", DDA_SEV_ERROR},
    [DDA_K_PREFIX_SKEW] = {"PREFIX_SKEW", DDA_SEV_WARNING},
    [DDA_K_GAP] = {"GAP", DDA_SEV_ERROR},
    [DDA_K_UNKNOWN_PRIOR] = {"UNKNOWN_PRIOR", DDA_SEV_INFO},
    [DDA_K_DOUBLE_INSERT] = {"DOUBLE_INSERT", DDA_SEV_ERROR},
    [DDA_K_MODIFY_AFTER_REMOVE] = {"MODIFY_AFTER_REMOVE", DDA_SEV_ERROR},
    [DDA_K_DUPLICATE] = {"DUPLICATE", DDA_SEV_INFO},
    [DDA_K_NO_OP_MODIFY] = {"NO_OP_MODIFY", DDA_SEV_INFO},
    [DDA_K_OVERWRITTEN] = {"OVERWRITTEN", DDA_SEV_WARNING},
    [DDA_K_UNVERSIONED_BUCKET] = {"UNVERSIONED_BUCKET", DDA_SEV_WARNING},
    [DDA_K_EXPORT_MISMATCH] = {"EXPORT_MISMATCH", DDA_SEV_ERROR},
    [DDA_K_EMPTY_RANGE] = {"EMPTY_RANGE", DDA_SEV_ERROR},
    [DDA_K_MISSING_HOUR] = {"MISSING_HOUR", DDA_SEV_ERROR},
    [DDA_K_BASELINE_EXPIRED] = {"BASELINE_EXPIRED", DDA_SEV_WARNING},
    [DDA_K_LATE_OBJECT] = {"LATE_OBJECT", DDA_SEV_INFO},
};

const char *dda_kind_name(int kind)
{
	if (kind < 0 || kind >= DDA_K__COUNT)
		return "UNKNOWN";
	return kinds[kind].name;
}

int dda_kind_severity(int kind)
{
	if (kind < 0 || kind >= DDA_K__COUNT)
		return DDA_SEV_ERROR;
	return kinds[kind].severity;
}

int dda_kind_parse(const char *name)
{
	for (int k = 0; k < DDA_K__COUNT; k++)
		if (!strcmp(name, kinds[k].name))
			return k;
	return -1;
}

const char *dda_severity_name(int sev)
{
	static const char *const names[] = {"info", "warning", "error"};
	if (sev < 0 || sev >= DDA_SEV__COUNT)
		return "error";
	return names[sev];
}

int dda_severity_parse(const char *s)
{
	for (int i = 0; i < DDA_SEV__COUNT; i++)
		if (!strcmp(s, dda_severity_name(i)))
			return i;
	return -1;
}

const char *dda_dialect_name(int d)
{
	static const char *const names[] = {"seed", "stream", "export", "export-full"};
	return d >= 0 && d <= DDA_DIALECT_EXPORT_FULL ? names[d] : "unknown";
}

const char *dda_event_name_str(int ev)
{
	static const char *const names[] = {"INSERT", "MODIFY", "REMOVE", "STATE"};
	return ev >= 0 && ev <= DDA_EV_STATE ? names[ev] : "UNKNOWN";
}

void dda_anomaly_release(struct dda_anomaly *a)
{
	free(a->key);
	free(a->detail);
	json_decref(a->diff);
	a->key = NULL;
	a->detail = NULL;
	a->diff = NULL;
}
