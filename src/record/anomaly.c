/* Names and severities of anomaly kinds, dialects and event names. */
#include "util/util.h"
#include "ddbaudit/record.h"

/* The legend of each kind, in the words of docs/anomalies.md made short:
 * what it means, then what to do. Every report that explains a kind takes
 * the text from here, so the formats never tell two stories. */
#define K(name, sev, meaning, action) {name, sev, meaning, action, meaning " What to do: " action}

static const struct {
	const char *name;
	int severity;
	const char *meaning;
	const char *action;
	const char *legend;
} kinds[DDA_K__COUNT] = {
    [DDA_K_UNREADABLE] = K("UNREADABLE", DDA_SEV_ERROR,
			   "An object could not be read as audit records: not JSON, not valid "
			   "gzip, larger than --max-object-bytes, or a file an export lists is "
			   "missing.",
			   "inspect the object (a truncated write or a stray file); copy an export "
			   "whole."),
    [DDA_K_INVALID_RECORD] = K("INVALID_RECORD", DDA_SEV_ERROR,
			       "A record lacks a required field or has a mistyped one, an unknown "
			       "eventName, a bad timestamp or a repeated member.",
			       "find the writer that produced it and fix it."),
    [DDA_K_INVALID_VALUE] = K("INVALID_VALUE", DDA_SEV_ERROR,
			      "An attribute value breaks DynamoDB's rules (type tag, number "
			      "syntax or range, base64, sets, nesting, UTF-8, empty key).",
			      "the record cannot have come from DynamoDB as written: find who "
			      "wrote it."),
    [DDA_K_IMAGE_MISMATCH] = K("IMAGE_MISMATCH", DDA_SEV_ERROR,
			       "The images contradict the event: an INSERT with an old image, a "
			       "REMOVE with a new one, a MODIFY without both.",
			       "a writer bug: check the stream processor."),
    [DDA_K_KEY_MISMATCH] = K("KEY_MISMATCH", DDA_SEV_ERROR,
			     "The key inside an image differs from the record's key, or a record "
			     "sits under an object named after another item.",
			     "a misfiled or tampered object: compare it with the table and the "
			     "bucket's CloudTrail."),
    [DDA_K_PREFIX_SKEW] = K("PREFIX_SKEW", DDA_SEV_WARNING,
			    "A record's time lies more than an hour outside its object's "
			    "YYYY/MM/DD/HH prefix.",
			    "check the writer's clock; the record is filed under an unexpected "
			    "hour."),
    [DDA_K_GAP] = K("GAP", DDA_SEV_ERROR,
		    "An event's old image differs from the state the previous event left: "
		    "changes are missing in between (the diff shows expected against found).",
		    "changes were lost: look for overwritten or deleted objects and failed "
		    "writes; enable bucket versioning."),
    [DDA_K_UNKNOWN_PRIOR] = K("UNKNOWN_PRIOR", DDA_SEV_INFO,
			      "An item's first event in the range is a MODIFY or REMOVE, so its "
			      "earlier state is not known to this run.",
			      "nothing: normal at the start of a range (listed once, with a "
			      "count)."),
    [DDA_K_DOUBLE_INSERT] = K("DOUBLE_INSERT", DDA_SEV_ERROR,
			      "An INSERT for an item that already exists.",
			      "a REMOVE is missing: look for a lost or deleted object."),
    [DDA_K_MODIFY_AFTER_REMOVE] = K("MODIFY_AFTER_REMOVE", DDA_SEV_ERROR,
				    "A MODIFY or REMOVE for an item already removed.",
				    "an INSERT is missing: look for a lost or deleted object."),
    [DDA_K_DUPLICATE] = K("DUPLICATE", DDA_SEV_INFO,
			  "The same change was recorded again; it is counted once, never as a "
			  "GAP.",
			  "nothing: normal with at-least-once delivery."),
    [DDA_K_NO_OP_MODIFY] = K("NO_OP_MODIFY", DDA_SEV_INFO,
			     "A MODIFY whose old and new images are equal.",
			     "nothing, unless the application should not write such updates."),
    [DDA_K_OVERWRITTEN] = K("OVERWRITTEN", DDA_SEV_WARNING,
			    "One object key holds several versions, or a delete marker hides a "
			    "key (S3 with --versions).",
			    "every version was read, so nothing is lost; for a delete marker, find "
			    "who deleted the object (CloudTrail)."),
    [DDA_K_UNVERSIONED_BUCKET] = K("UNVERSIONED_BUCKET", DDA_SEV_WARNING,
				   "The bucket's versioning is off or suspended: an object written "
				   "again replaces the earlier one without a trace.",
				   "enable versioning (and Object Lock for tamper evidence), then "
				   "audit with --versions."),
    [DDA_K_EXPORT_MISMATCH] = K("EXPORT_MISMATCH", DDA_SEV_ERROR,
				"A DynamoDB export's data disagrees with its manifests: item "
				"counts, checksums, unlisted files or lines outside its window.",
				"the export was altered, copied in part or mixed with another: "
				"copy it again or re-export."),
    [DDA_K_EMPTY_RANGE] = K("EMPTY_RANGE", DDA_SEV_ERROR,
			    "The range (or, without a range, the whole source) holds no records.",
			    "check the source and prefix, the writer and lifecycle rules; "
			    "--allow-empty accepts a table that can be quiet."),
    [DDA_K_MISSING_HOUR] = K("MISSING_HOUR", DDA_SEV_ERROR,
			     "With --expect-every, a slot of the range's hours has no object at "
			     "all.",
			     "the writer stopped or its objects were deleted: check the stream "
			     "processor and the bucket's CloudTrail for that slot."),
    [DDA_K_BASELINE_EXPIRED] = K("BASELINE_EXPIRED", DDA_SEV_WARNING,
				 "A --baseline entry is past its expiry: the findings it matched "
				 "are reported again.",
				 "review it: renew it with a new expiry and reason, or delete it."),
    [DDA_K_LATE_OBJECT] = K("LATE_OBJECT", DDA_SEV_INFO,
			    "An object was written into an hour an earlier --state run had "
			    "already audited; its changes are folded in now.",
			    "a writer that delivers late: raise --settle to its worst delay."),
    [DDA_K_UNLOGGED_ITEM] = K("UNLOGGED_ITEM", DDA_SEV_ERROR,
			      "reconcile: the table holds an item the log has no change of.",
			      "find who writes the table behind the stream; for items older "
			      "than the log, reconcile against an export taken when it began."),
    [DDA_K_MISSING_ITEM] = K("MISSING_ITEM", DDA_SEV_ERROR,
			     "reconcile: the log says the item exists; the table does not have "
			     "it.",
			     "restore the item, and find the delete that left no record."),
    [DDA_K_STATE_DRIFT] = K("STATE_DRIFT", DDA_SEV_ERROR,
			    "reconcile: the item's image in the table differs from the log's "
			    "last one (or the log removed it and the table still has it).",
			    "compare with ddbaudit history --key: a change the log lost, or a "
			    "write behind the stream."),
    [DDA_K_SHARD_SPLIT] = K("SHARD_SPLIT", DDA_SEV_WARNING,
			    "--shard: a record filed under another shard's object name belongs to "
			    "an item whose history that shard checks without it.",
			    "the item's findings may differ from one run's: check it with "
			    "ddbaudit history --key, or audit without --shard."),
};

#undef K

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

const char *dda_kind_meaning(int kind)
{
	return kind < 0 || kind >= DDA_K__COUNT ? "An anomaly kind this version does not know."
						 : kinds[kind].meaning;
}

const char *dda_kind_action(int kind)
{
	return kind < 0 || kind >= DDA_K__COUNT ? "upgrade ddbaudit." : kinds[kind].action;
}

const char *dda_kind_legend(int kind)
{
	return kind < 0 || kind >= DDA_K__COUNT
		   ? "An anomaly kind this version does not know. What to do: upgrade ddbaudit."
		   : kinds[kind].legend;
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
