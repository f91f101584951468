/* Option parsing shared by every command, --help text, messages, progress
 * line and signal handling. */
#include "cli/cli.h"
#include "replay/replay.h"
#include "util/log.h"

#include <errno.h>
#include <sys/stat.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>

enum {
	O_FROM = 256,
	O_TO,
	O_SINCE,
	O_KEY_SCHEMA,
	O_MAX_OBJECT_BYTES,
	O_THREADS,
	O_PROGRESS,
	O_NOW,
	O_SETTLE,
	O_VERSIONS,
	O_REPORT,
	O_FORMAT,
	O_FAIL_ON,
	O_NO_DIFF,
	O_KEY,
	O_LINES,
	O_ENDPOINT_URL,
	O_REGION,
	O_PROFILE,
	O_CONCURRENCY,
	O_NO_VERIFY_SSL,
	O_CA_BUNDLE,
	O_ALLOW_EMPTY,
	O_EXPECT_EVERY,
	O_METRICS,
	O_IGNORE,
	O_BASELINE,
	O_WRITE_BASELINE,
	O_STATE,
	O_SINCE_STATE,
	O_LATE_WINDOW,
	O_BUNDLE,
	O_SIGN_KEY,
	O_PUBKEY,
	O_KMS,
	O_PREVIOUS,
	O_RECHECK,
	O_MEMORY_LIMIT,
	O_TMP_DIR,
	O_SHARD,
	O_SHARD_COUNT,
	O_TARGET,
	O_PARALLELISM,
	O_BATCH_SIZE,
	O_MAX_RETRIES,
	O_MAX_RECORD_AGE,
	O_BISECT,
	O_DLQ,
	O_ON_FAILURE,
	O_CHECKPOINT,
	O_VIEW,
	O_STREAM_ARN,
	O_TABLE,
	O_NO_MARKER,
	O_EVENT_TYPES,
	O_MAX_RPS,
	O_TARGET_TIMEOUT,
	O_FILTER,
	O_MAX_BATCHING_WINDOW,
	O_MAX_INFLIGHT,
	O_DRY_RUN,
	O_LAMBDA_ENDPOINT_URL,
	O_SCAN_SEGMENTS,
	O_CONSISTENT_READ,
	O_MAX_RCU,
	O_AT,
	O_CREATE,
	O_OVERWRITE,
	O_MAX_WCU,
	O_KEYS_FILE,
	O_UNDO_SINCE,
};

static const struct option long_opts[] = {
    {"from", required_argument, NULL, O_FROM},
    {"to", required_argument, NULL, O_TO},
    {"since", required_argument, NULL, O_SINCE},
    {"key-schema", required_argument, NULL, O_KEY_SCHEMA},
    {"max-object-bytes", required_argument, NULL, O_MAX_OBJECT_BYTES},
    {"threads", required_argument, NULL, O_THREADS},
    {"memory-limit", required_argument, NULL, O_MEMORY_LIMIT},
    {"tmp-dir", required_argument, NULL, O_TMP_DIR},
    {"progress", required_argument, NULL, O_PROGRESS},
    {"now", required_argument, NULL, O_NOW},
    {"settle", required_argument, NULL, O_SETTLE},
    {"versions", no_argument, NULL, O_VERSIONS},
    {"report", required_argument, NULL, O_REPORT},
    {"format", required_argument, NULL, O_FORMAT},
    {"fail-on", required_argument, NULL, O_FAIL_ON},
    {"no-diff", no_argument, NULL, O_NO_DIFF},
    {"key", required_argument, NULL, O_KEY},
    {"lines", no_argument, NULL, O_LINES},
    {"endpoint-url", required_argument, NULL, O_ENDPOINT_URL},
    {"region", required_argument, NULL, O_REGION},
    {"profile", required_argument, NULL, O_PROFILE},
    {"concurrency", required_argument, NULL, O_CONCURRENCY},
    {"no-verify-ssl", no_argument, NULL, O_NO_VERIFY_SSL},
    {"ca-bundle", required_argument, NULL, O_CA_BUNDLE},
    {"allow-empty", no_argument, NULL, O_ALLOW_EMPTY},
    {"expect-every", required_argument, NULL, O_EXPECT_EVERY},
    {"metrics", required_argument, NULL, O_METRICS},
    {"ignore", required_argument, NULL, O_IGNORE},
    {"baseline", required_argument, NULL, O_BASELINE},
    {"write-baseline", required_argument, NULL, O_WRITE_BASELINE},
    {"state", required_argument, NULL, O_STATE},
    {"since-state", no_argument, NULL, O_SINCE_STATE},
    {"late-window", required_argument, NULL, O_LATE_WINDOW},
    {"bundle", required_argument, NULL, O_BUNDLE},
    {"sign-key", required_argument, NULL, O_SIGN_KEY},
    {"pubkey", required_argument, NULL, O_PUBKEY},
    {"kms", required_argument, NULL, O_KMS},
    {"previous", required_argument, NULL, O_PREVIOUS},
    {"recheck", no_argument, NULL, O_RECHECK},
    {"shard", required_argument, NULL, O_SHARD},
    {"shard-count", required_argument, NULL, O_SHARD_COUNT},
    {"target", required_argument, NULL, O_TARGET},
    {"parallelism", required_argument, NULL, O_PARALLELISM},
    {"batch-size", required_argument, NULL, O_BATCH_SIZE},
    {"max-retries", required_argument, NULL, O_MAX_RETRIES},
    {"max-record-age", required_argument, NULL, O_MAX_RECORD_AGE},
    {"bisect-on-error", no_argument, NULL, O_BISECT},
    {"dlq", required_argument, NULL, O_DLQ},
    {"on-failure", required_argument, NULL, O_ON_FAILURE},
    {"checkpoint", required_argument, NULL, O_CHECKPOINT},
    {"view", required_argument, NULL, O_VIEW},
    {"stream-arn", required_argument, NULL, O_STREAM_ARN},
    {"table", required_argument, NULL, O_TABLE},
    {"scan-segments", required_argument, NULL, O_SCAN_SEGMENTS},
    {"consistent-read", no_argument, NULL, O_CONSISTENT_READ},
    {"max-rcu", required_argument, NULL, O_MAX_RCU},
    {"at", required_argument, NULL, O_AT},
    {"create", no_argument, NULL, O_CREATE},
    {"overwrite", no_argument, NULL, O_OVERWRITE},
    {"max-wcu", required_argument, NULL, O_MAX_WCU},
    {"keys-file", required_argument, NULL, O_KEYS_FILE},
    {"undo-since", required_argument, NULL, O_UNDO_SINCE},
    {"no-replay-marker", no_argument, NULL, O_NO_MARKER},
    {"event-types", required_argument, NULL, O_EVENT_TYPES},
    {"max-rps", required_argument, NULL, O_MAX_RPS},
    {"target-timeout", required_argument, NULL, O_TARGET_TIMEOUT},
    {"filter", required_argument, NULL, O_FILTER},
    {"max-batching-window", required_argument, NULL, O_MAX_BATCHING_WINDOW},
    {"max-inflight", required_argument, NULL, O_MAX_INFLIGHT},
    {"dry-run", no_argument, NULL, O_DRY_RUN},
    {"lambda-endpoint-url", required_argument, NULL, O_LAMBDA_ENDPOINT_URL},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

DDA_PRINTF(3, 0)
static void vmsg(const struct cli *c, const char *level, const char *fmt, va_list ap)
{
	fprintf(stderr, "ddbaudit: %s%s%s", c->cmd ? c->cmd : "", c->cmd ? ": " : "", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void dda__cli_error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(c, "error: ", fmt, ap);
	va_end(ap);
}

void dda__cli_warn(const struct cli *c, const char *fmt, ...)
{
	if (c->verbose < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg(c, "warning: ", fmt, ap);
	va_end(ap);
}

int dda__cli_exit_for(int err)
{
	return err == DDA_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
}

void dda__cli_help(const struct command *cmd)
{
	printf("usage: ddbaudit %s\n\n%s.\n\n", cmd->usage, cmd->summary);
	if (cmd->opts & OPT_MERGE) {
		printf("DIR... are the report directories of every shard of one verify run\n"
		       "split into shards, in any order, or the one directory all the shards of\n"
		       "an array job were given, holding their shard-K-of-N/ (docs/shards.md).\n\n"
		       "report:\n"
		       "  --report DIR           write report.json, anomalies.csv, report.md,\n"
		       "                         report.html and manifest.ndjson into DIR, as one\n"
		       "                         run would have (created if missing)\n"
		       "  --format json|csv|md|html\n"
		       "                         write one report to stdout (default: md when no\n"
		       "                         --report is given)\n"
		       "  --fail-on LEVEL        exit 1 when anomalies at or above LEVEL exist:\n"
		       "                         error, warning, info or never (default: the\n"
		       "                         shards')\n"
		       "source (read again only for items a shard checked without a record\n"
		       "another shard read: SHARD_SPLIT; docs/shards.md):\n"
		       "  --endpoint-url URL     S3 endpoint (else AWS_ENDPOINT_URL_S3,\n"
		       "                         AWS_ENDPOINT_URL)\n"
		       "  --region REGION        else AWS_REGION, AWS_DEFAULT_REGION, the profile\n"
		       "  --profile NAME         credentials and region from this profile\n"
		       "  --concurrency N        transfers in flight (default 64)\n"
		       "  --no-verify-ssl        do not verify TLS certificates\n"
		       "  --ca-bundle FILE       CA certificates to verify TLS with\n"
		       "general:\n"
		       "  -q, --quiet            no summary line\n"
		       "  -v, --verbose          more detail on stderr\n"
		       "  -h, --help             this help\n"
		       "  -V, --version          the version\n\n"
		       "Exit status: %s\nSee ddbaudit(1).\n",
		       cmd->exit_status);
		return;
	}
	if (cmd->opts & OPT_RANGE)
	printf("range:\n"
	       "  --from TIME            start of the range, ISO-8601: 2025-07-12,\n"
	       "                         2025-07-12T08:00 (UTC; 'Z' optional) or with an\n"
	       "                         offset, 2025-07-12T10:00+02:00\n"
	       "  --to TIME              end of the range (exclusive), in the same forms\n"
	       "  --since DURATION       the last DURATION before now: a number and its unit,\n"
	       "                         s, m, h, d or w (36h, 90m, 2d, 1w)\n"
	       "                         Only hour prefixes that can hold records of the range\n"
	       "                         are opened (one hour of slack each side).\n");
	if (cmd->opts & OPT_KEY)
		printf(
		    "item:\n"
		    "  --key KEY              the item: 'UserId=user123,ActivityId=activity001'\n"
		    "                         (values are S; write N:5 or B:base64 for other\n"
		    "                         types; a control character is \\xHH, as shown)\n"
		    "                         or DynamoDB JSON "
		    "'{\"UserId\":{\"S\":\"u\"}}'\n");
	if (cmd->opts & OPT_REPORT)
		printf("report:\n"
		       "  --report DIR           write report.json, anomalies.csv, report.md,\n"
		       "                         report.html and manifest.ndjson into DIR\n"
		       "                         (created if missing)\n"
		       "  --format json|csv|md|html\n"
		       "                         write one report to stdout (default: md when no\n"
		       "                         --report is given)\n"
		       "  --fail-on LEVEL        exit 1 when anomalies at or above LEVEL exist:\n"
		       "                         error (default), warning, info or never\n"
		       "  --no-diff              do not re-read objects to show GAP attribute "
		       "diffs\n"
		       "completeness:\n"
		       "  --allow-empty          a range without records is not EMPTY_RANGE\n"
		       "                         (quiet tables)\n"
		       "  --expect-every HOURS   each slot of HOURS (1h, 6h, 1d: whole hours) of\n"
		       "                         the range without an object is MISSING_HOUR\n"
		       "noise control:\n"
		       "  --ignore KIND[,KIND]   findings of these kinds leave the report and the\n"
		       "                         verdict, counted in summary.ignored; kinds that\n"
		       "                         mean lost input (UNREADABLE, INVALID_RECORD,\n"
		       "                         INVALID_VALUE, EMPTY_RANGE, MISSING_HOUR) are\n"
		       "                         refused\n");
	if ((cmd->opts & OPT_REPORT) && !(cmd->opts & (OPT_RESTORE | OPT_TABLE)))
		printf("  --baseline FILE        known findings to suppress (NDJSON: kind, item,\n"
		       "                         object, expires, reason a line), counted in\n"
		       "                         summary.suppressed; an expired entry is\n"
		       "                         BASELINE_EXPIRED\n");
	if (cmd->opts & OPT_STATE)
		printf("  --write-baseline FILE  write a baseline accepting this run's findings\n"
		       "                         (and the live entries of --baseline), expiring\n"
		       "                         in 30 days: edit the reasons\n"
		       "monitoring:\n"
		       "  --metrics FILE|emf     write the run's metrics: FILE in Prometheus text\n"
		       "                         format (for node_exporter's textfile collector;\n"
		       "                         counters carry on from the previous FILE), or emf:\n"
		       "                         one CloudWatch Embedded Metric Format line on\n"
		       "                         stderr; written for failed runs too\n"
		       "state across runs (cron):\n"
		       "  --state PATH           carry each item's state from run to run in PATH\n"
		       "                         (gzip'd NDJSON, rewritten atomically after the\n"
		       "                         report; locked: a concurrent run is refused):\n"
		       "                         a change lost across runs is a GAP, and\n"
		       "                         UNKNOWN_PRIOR is only for items never seen\n"
		       "                         PATH may be s3://BUCKET/KEY (lock object KEY.lock,\n"
		       "                         conditional PUT)\n"
		       "  --since-state          audit from the state's watermark to now minus\n"
		       "                         --settle, in whole hours (catches up missed\n"
		       "                         runs); the first run gives --from instead\n"
		       "  --late-window DURATION look back this far before the range (default 24h;\n"
		       "                         0 = never) for objects written into hours an\n"
		       "                         earlier run audited: LATE_OBJECT, their changes\n"
		       "                         folded into the chains\n"
		       "evidence:\n"
		       "  --bundle FILE.tar.gz   also write the reports, manifest.ndjson and\n"
		       "                         SHA256SUMS as one archive (docs/evidence.md);\n"
		       "                         with --state, report.json links the previous\n"
		       "                         run's bundle by its SHA-256\n"
		       "  --sign-key PEM|kms:KEY_ID  sign SHA256SUMS into SHA256SUMS.sig: an\n"
		       "                         Ed25519 PEM private key, or an AWS KMS key\n"
		       "                         (ECC_NIST_P256, ECDSA_SHA_256)\n");
	if (cmd->opts & OPT_REPLAY)
		printf(
		    "replay:\n"
		    "  --target TARGET        where batches go: file:PATH or - (NDJSON, a batch a\n"
		    "                         line), http(s)://URL (POST; 2xx is success),\n"
		    "                         lambda:FUNCTION[:QUALIFIER] (Invoke, signed),\n"
		    "                         exec:COMMAND (batch on stdin, stdout the answer;\n"
		    "                         exit 0 is success)\n"
		    "  --lambda-endpoint-url URL  Lambda endpoint (else AWS_ENDPOINT_URL_LAMBDA)\n"
		    "  --key KEY              only this item\n"
		    "  --event-types LIST     INSERT,MODIFY,REMOVE (default all)\n"
		    "  --filter FILE          Lambda filter criteria ({\"Filters\":[...]} or a\n"
		    "                         pattern), matched against each record as sent;\n"
		    "                         numeric also matches N and NS values\n"
		    "  --view VIEW            KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or\n"
		    "                         NEW_AND_OLD_IMAGES (default)\n"
		    "  --table NAME           table name in the synthesized eventSourceARN\n"
		    "  --stream-arn ARN       eventSourceARN to use instead\n"
		    "  --no-replay-marker     leave out the top-level \"replay\" object\n"
		    "  --parallelism N        lanes by partition key (default 1); an item's\n"
		    "                         changes always go in order through one lane\n"
		    "  --batch-size N         records a batch, 1 to 10000 (default 100; a batch\n"
		    "                         also stops at 6 MB)\n"
		    "  --max-retries N        retries of a failing batch (default 3; -1: until\n"
		    "                         --max-record-age)\n"
		    "  --max-record-age AGE   stop retrying a record after AGE (e.g. 1h; -1 none)\n"
		    "  --bisect-on-error      split a batch whose function fails (not one that\n"
		    "                         timed out) to isolate bad records\n"
		    "  --on-failure MODE      what failed records do: skip (into --dlq; the\n"
		    "                         default with one), hold-item (into --dlq with\n"
		    "                         every later change of their item), stop (the\n"
		    "                         default without --dlq: exit 3, resumable) or\n"
		    "                         drop (discarded and counted; exit 1)\n"
		    "  --dlq file:PATH|sqs:QUEUE_URL  failed records, re-drivable: replay PATH\n"
		    "  --checkpoint FILE      save progress after every batch; resume from it\n"
		    "                         (refused, naming the argument, when they differ);\n"
		    "                         with --shard, {shard} in FILE, in a --dlq file:\n"
		    "                         PATH or a file: target becomes shard-K-of-N: each\n"
		    "                         shard resumes from its own (needed for FILE and a\n"
		    "                         file DLQ with --shard auto)\n"
		    "  --max-rps N            records per second at most, over all lanes\n"
		    "  --max-batching-window SECS  under --max-rps, close a batch after SECS\n"
		    "  --max-inflight N       batches at the target at once, over all lanes\n"
		    "  --dry-run              print batches, bytes, requests and their cost;\n"
		    "                         send nothing\n"		    "  --allow-empty          a range without records is not an error (exit 0;\n"
		    "                         nothing is sent)\n"
		    "  --target-timeout SECS  per batch (default 900 for lambda:, else 60)\n"
		    "  --report DIR           write report.json (the delivery summary) into DIR;\n"
		    "                         a path ending in .json is the file itself\n"
		    "  --metrics FILE|emf     write the run's metrics (records by outcome,\n"
		    "                         retries, latency): FILE in Prometheus text format,\n"
		    "                         counters carried on from the previous FILE, or\n"
		    "                         emf: one CloudWatch EMF line on stderr; written for\n"
		    "                         failed runs too, not for --dry-run\n"
		    "Before the source is read (also with --dry-run) the target, the DLQ and\n"
		    "every output are checked; a configuration error (refused, DNS, 401/403,\n"
		    "404, 413) stops the run at once with exit 3. Throttles (429, 503) are\n"
		    "waited out and never count as retries.\n");
	if (cmd->opts & OPT_EVIDENCE)
		printf("checks:\n"
		       "  --pubkey PEM           check SHA256SUMS.sig with this Ed25519 public key\n"
		       "  --kms KEY_ID           check it with this KMS key's public key\n"
		       "                         (GetPublicKey; AWS_ENDPOINT_URL_KMS)\n"
		       "  --previous BUNDLE      check that report.json links BUNDLE as the\n"
		       "                         previous run's bundle\n"
		       "  --recheck              read every object of the manifest again (by\n"
		       "                         versionId when recorded) from the run's source\n"
		       "                         and check its SHA-256\n"
		       "output:\n"
		       "  --format text|json     a line a check (default), or one JSON document\n");
	else if (cmd->opts & OPT_TEXT_FORMAT)
		printf("output:\n"
		       "  --format text|json     %s\n",
		       cmd->run == dda__cmd_ls
			   ? "a line an object as text (default), or JSON: one\n"
			     "                         object a line (key, version, etag, size,\n"
			     "                         last_modified, hour)"
			   : "the timeline as text (default) or JSON with full\n"
			     "                         oldImage/newImage of every event");
	if (cmd->opts & OPT_DECODE)
		printf(
		    "records:\n"
		    "  --key-schema SPEC      key attributes of seed records: "
		    "NAME:HASH[,NAME:RANGE]\n"
		    "                         (default UserId:HASH,ActivityId:RANGE)\n"
		    "  --settle DURATION      the newest part still being written (default 15m;\n"
		    "                         a plain number means minutes): missing changes "
		    "found\n"
		    "                         only there are provisional warnings\n"
		    "  --now TIME             take TIME as now (for %s--settle)\n"
		    "  --threads N            decoding threads (default: one per core); they\n"
		    "                         also sort the events, and the histories are\n"
		    "                         checked on as many (one, carrying a state)\n"
		    "memory:\n"
		    "  --memory-limit SIZE    bytes the event table may hold (K, M, G, T: powers\n"
		    "                         of 1024; 0 or off: no limit); past it, sorted runs\n"
		    "                         of events spill to --tmp-dir, compressed, and are\n"
		    "                         merged back: the same report, more disk and time.\n"
		    "                         Default: half the memory the process may use (its\n"
		    "                         cgroup's limit when set, else the machine's);\n"
		    "                         replay keeps its spool within a quarter of it\n"
		    "  --tmp-dir DIR          where runs spill (default $TMPDIR, else /tmp); an\n"
		    "                         event takes about 70 bytes there. replay's spool\n"
		    "                         goes there too\n"
		    "shards (docs/shards.md):\n"
		    "  --shard K/N            be shard K (0..N-1) of N processes: read only this\n"
		    "                         shard's objects of the YYYY/MM/DD/HH/ layout (by\n"
		    "                         a hash of their names) and keep only its items;\n"
		    "                         every shard lists everything. Join the reports\n"
		    "                         with ddbaudit merge. A shard exits 0 when it read\n"
		    "                         its share (merge judges findings), 3 if it did not\n"
		    "  --shard auto           K from AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array\n"
		    "                         job) or JOB_COMPLETION_INDEX (Kubernetes Indexed\n"
		    "                         Job), N from --shard-count; reports then go to a\n"
		    "                         shard-K-of-N/ directory inside the one given\n"
		    "  --shard-count N        the number of shards, with --shard auto\n",
		    cmd->opts & OPT_RANGE ? "--since and " : "");
	if (cmd->opts & OPT_RESTORE)
		printf("restore:\n"
		       "  --at TIME              each item's state as of TIME (its changes at or\n"
		       "                         before TIME, from the empty table)\n"
		       "  --baseline EXPORT      start from a full DynamoDB export (a directory or\n"
		       "                         s3:// prefix holding AWSDynamoDB/<id>/): its items\n"
		       "                         at its exportTime, then the log's changes after it;\n"
		       "                         or ddb://TABLE, scanned now\n"
		       "  --to DEST              ddb://TABLE (or a table ARN): BatchWriteItem; a\n"
		       "                         directory: DynamoDB export format (data/*.json.gz\n"
		       "                         of {\"Item\":...} lines, manifests) for ImportTable;\n"
		       "                         - : {\"Item\":...} lines on stdout\n"
		       "  --create               create a table that does not exist (on demand,\n"
		       "                         keyed as --key-schema)\n"
		       "  --overwrite            write into a table that holds items; items the\n"
		       "                         log has removed by TIME are deleted from it\n"
		       "  --key KEY              only this item\n"
		       "  --keys-file FILE       only the items of FILE, a --key a line\n"
		       "  --undo-since TIME      with --to ddb://TABLE and chosen keys: write each\n"
		       "                         item back to its state at TIME, on condition that\n"
		       "                         the live item still is what the log says it is\n"
		       "                         now (else REFUSED, left as it is)\n"
		       "  --dry-run              write nothing: print PUT KEY / DELETE KEY a line\n"
		       "                         (with --undo-since, with the attribute diff)\n"
		       "  --max-wcu N            write capacity units a second at most\n"
		       "  --checkpoint FILE      into a table: progress kept in FILE (every 1,000\n"
		       "                         items); the same command goes on where it stopped\n");
	if (cmd->opts & OPT_TABLE)
		printf("table:\n"
		       "  --table ddb://TABLE    the live table (or a table ARN); its endpoint is\n"
		       "                         AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL\n"
		       "  --baseline EXPORT      instead of a table: a full DynamoDB export (a\n"
		       "                         directory or s3:// prefix holding AWSDynamoDB/<id>/),\n"
		       "                         compared with the log's states at its exportTime\n"
		       "  --scan-segments N      parallel Scan segments (default 4, at most 64)\n"
		       "  --consistent-read      strongly consistent Scan (twice the read capacity)\n"
		       "  --max-rcu N            read capacity units a second at most (default:\n"
		       "                         unpaced; throttling is always waited out)\n");
	if (!(cmd->opts & OPT_EVIDENCE))
		printf("input:\n"
		       "  --max-object-bytes N   larger objects (and NDJSON lines) are reported\n"
		       "                         UNREADABLE, not read (default 16777216)\n"
		       "  --lines                read a plain file as NDJSON (one record a line)\n"
		       "  --versions             read every version of every object (S3 "
		       "sources)\n");
	printf(
	    "aws (s3://BUCKET/PREFIX/ sources):\n"
	    "  --endpoint-url URL     S3 endpoint (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL);\n"
	    "                         custom endpoints use path-style addressing\n"
	    "  --region REGION        else AWS_REGION, AWS_DEFAULT_REGION, the profile\n"
	    "  --profile NAME         credentials and region from this profile (AWS_PROFILE,\n"
	    "                         AWS_DEFAULT_PROFILE); outranks AWS_ACCESS_KEY_ID\n"
	    "  --concurrency N        most transfers in flight (default 256): the window\n"
	    "                         starts at 16, doubles while throughput grows,\n"
	    "                         halves on 503 SlowDown and other throttling\n"
	    "  --no-verify-ssl        do not verify TLS certificates (never by default)\n"
	    "  --ca-bundle FILE       CA certificates to verify TLS with\n"
	    "general:\n"
	    "  -q, --quiet            no summary line, no warnings\n"
	    "  -v, --verbose          more detail on stderr: prefixes listed, requests\n"
	    "                         retried (-v -v: every request)\n"
	    "  --progress WHEN        progress line on stderr: auto (on a terminal, for runs\n"
	    "                         over a second), always, never\n"
	    "  -h, --help             this help\n"
	    "  -V, --version          the version\n\n");
	printf("Exit status: %s\nSee ddbaudit(1).\n", cmd->exit_status);
}

static int parse_time_arg(struct cli *c, const char *name, const char *arg, int64_t *out)
{
	if (!dda_time_parse(arg, strlen(arg), out))
		return 0;
	dda__cli_error(c,
		       "invalid %s '%s' (ISO-8601: 2025-07-12, 2025-07-12T08:00Z, "
		       "2025-07-12T10:00:00+02:00)",
		       name, arg);
	return EXIT_USAGE;
}

/* A duration and its unit. A bare number is refused, not guessed at: an
 * operator who types --since 24 means hours, the parser would read seconds. */
static int parse_duration_arg(struct cli *c, const char *name, const char *arg, int64_t *out)
{
	size_t digits = strspn(arg, "0123456789");
	if (digits && !arg[digits]) {
		dda__cli_error(c,
			       "invalid %s '%s': a duration needs a unit, s, m, h, d or w "
			       "(did you mean %sh?)",
			       name, arg, arg);
		return EXIT_USAGE;
	}
	if (!dda_duration_parse(arg, out))
		return 0;
	dda__cli_error(c, "invalid %s '%s' (a number and a unit, s, m, h, d or w: 36h, 90m, 2d)",
		       name, arg);
	return EXIT_USAGE;
}

static int parse_count(struct cli *c, const char *name, const char *arg, long long min,
		       long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(arg, &end, 10);
	if (errno || end == arg || *end || v < min) {
		dda__cli_error(c, "invalid %s '%s'", name, arg);
		return EXIT_USAGE;
	}
	*out = v;
	return 0;
}

static int parse_settle(struct cli *c, const char *arg)
{
	char *end;
	long long m = strtoll(arg, &end, 10);
	if (end != arg && !*end && m >= 0) {
		c->audit.settle = m * 60 * DDA_USEC_PER_SEC;
		return 0;
	}
	if (!dda_duration_parse(arg, &c->audit.settle))
		return 0;
	dda__cli_error(c, "invalid --settle '%s' (minutes, or a duration like 15m)", arg);
	return EXIT_USAGE;
}

/* "INSERT,MODIFY,REMOVE" into a mask of enum dda_event_name bits. */
static int parse_event_types(struct cli *c, const char *arg)
{
	static const char *const names[] = {"INSERT", "MODIFY", "REMOVE"};
	unsigned mask = 0;
	for (const char *p = arg; *p;) {
		size_t n = strcspn(p, ",");
		size_t i = 0;
		while (i < 3 && (strlen(names[i]) != n || strncmp(p, names[i], n)))
			i++;
		if (i == 3 || !n) {
			dda__cli_error(
			    c,
			    "invalid --event-types '%s' (INSERT, MODIFY, REMOVE, comma-separated)",
			    arg);
			return EXIT_USAGE;
		}
		mask |= 1u << i;
		p += n + (p[n] == ',');
	}
	c->replay.event_mask = mask;
	return 0;
}

/* Whole seconds or a duration like 500ms or 1h, into microseconds. */
static bool parse_secs(const char *arg, int64_t *out)
{
	char *end;
	long long secs = strtoll(arg, &end, 10);
	if (end != arg && !*end && secs >= 0 && secs < INT64_MAX / DDA_USEC_PER_SEC) {
		*out = secs * DDA_USEC_PER_SEC;
		return true;
	}
	return !dda_duration_parse(arg, out) && *out >= 0;
}

static int parse_age(struct cli *c, const char *arg)
{
	if (!strcmp(arg, "-1")) {
		c->replay.max_record_age = -1;
		return 0;
	}
	if (parse_secs(arg, &c->replay.max_record_age))
		return 0;
	dda__cli_error(c, "invalid --max-record-age '%s' (seconds, a duration like 1h, or -1)",
		       arg);
	return EXIT_USAGE;
}

/* A rate above 0 ("--max-rcu 500"). */
static int parse_rate(struct cli *c, const char *name, const char *what, const char *arg,
		      double *out)
{
	char *end;
	*out = strtod(arg, &end);
	if (end != arg && !*end && *out > 0)
		return 0;
	dda__cli_error(c, "invalid %s '%s' (%s a second, above 0)", name, arg, what);
	return EXIT_USAGE;
}

static int set_replay_option(struct cli *c, int opt, const char *arg)
{
	struct replay_args *r = &c->replay;
	long long n = 0;
	char *end;
	switch (opt) {
	case O_TARGET:
		r->target = arg;
		return 0;
	case O_PARALLELISM:
		if (parse_count(c, "--parallelism", arg, 1, &n) || n > DDA_REPLAY_MAX_LANES)
			return n > DDA_REPLAY_MAX_LANES
				   ? (dda__cli_error(c, "--parallelism is at most %d",
						     DDA_REPLAY_MAX_LANES),
				      EXIT_USAGE)
				   : EXIT_USAGE;
		r->parallelism = (int)n;
		return 0;
	case O_BATCH_SIZE:
		if (parse_count(c, "--batch-size", arg, 1, &n) || n > DDA_REPLAY_MAX_BATCH) {
			dda__cli_error(c, "--batch-size is from 1 to %d", DDA_REPLAY_MAX_BATCH);
			return EXIT_USAGE;
		}
		r->batch_size = (int)n;
		return 0;
	case O_MAX_RETRIES:
		if (parse_count(c, "--max-retries", arg, -1, &n))
			return EXIT_USAGE;
		r->max_retries = (int)DDA_MIN(n, 10000);
		return 0;
	case O_MAX_RECORD_AGE:
		return parse_age(c, arg);
	case O_BISECT:
		r->bisect = true;
		return 0;
	case O_DLQ:
		r->dlq = arg;
		return 0;
	case O_ON_FAILURE:
		r->on_failure = !strcmp(arg, "skip")	    ? DDA_FAIL_SKIP
				: !strcmp(arg, "hold-item") ? DDA_FAIL_HOLD_ITEM
				: !strcmp(arg, "stop")	    ? DDA_FAIL_STOP
				: !strcmp(arg, "drop")	    ? DDA_FAIL_DROP
							    : -1;
		if (r->on_failure >= 0)
			return 0;
		dda__cli_error(c, "invalid --on-failure '%s' (skip, hold-item, stop or drop)", arg);
		return EXIT_USAGE;
	case O_CHECKPOINT:
		r->checkpoint = arg;
		return 0;
	case O_VIEW:
		r->view = dda__view_parse(arg);
		if (r->view >= 0)
			return 0;
		dda__cli_error(c,
			       "invalid --view '%s' (KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or "
			       "NEW_AND_OLD_IMAGES)",
			       arg);
		return EXIT_USAGE;
	case O_STREAM_ARN:
		r->stream_arn = arg;
		return 0;
	case O_TABLE:
		r->table = arg;
		return 0;
	case O_NO_MARKER:
		r->no_marker = true;
		return 0;
	case O_EVENT_TYPES:
		return parse_event_types(c, arg);
	case O_AT:
		return parse_time_arg(c, "--at", arg, &c->restore.at);
	case O_UNDO_SINCE:
		return parse_time_arg(c, "--undo-since", arg, &c->restore.undo_since);
	case O_CREATE:
		c->restore.create = true;
		return 0;
	case O_OVERWRITE:
		c->restore.overwrite = true;
		return 0;
	case O_KEYS_FILE:
		c->restore.keys_file = arg;
		return 0;
	case O_MAX_WCU:
		return parse_rate(c, "--max-wcu", "write capacity units", arg, &c->restore.max_wcu);
	case O_SCAN_SEGMENTS:
		if (parse_count(c, "--scan-segments", arg, 1, &n))
			return EXIT_USAGE;
		if (n > 64) {
			dda__cli_error(c, "invalid --scan-segments '%s' (1 to 64)", arg);
			return EXIT_USAGE;
		}
		c->table.segments = (int)n;
		return 0;
	case O_CONSISTENT_READ:
		c->table.consistent = true;
		return 0;
	case O_MAX_RCU:
		return parse_rate(c, "--max-rcu", "read capacity units", arg, &c->table.max_rcu);
	case O_MAX_RPS:
		r->max_rps = strtod(arg, &end);
		if (end != arg && !*end && r->max_rps > 0)
			return 0;
		dda__cli_error(c, "invalid --max-rps '%s' (records per second, above 0)", arg);
		return EXIT_USAGE;
	case O_TARGET_TIMEOUT:
		if (parse_count(c, "--target-timeout", arg, 1, &n))
			return EXIT_USAGE;
		r->timeout_ms = (long)DDA_MIN(n, 3600) * 1000;
		return 0;
	case O_FILTER:
		r->filter = arg;
		return 0;
	case O_MAX_BATCHING_WINDOW:
		/* Lambda's MaximumBatchingWindowInSeconds: 0 to 300 seconds. */
		if (parse_secs(arg, &r->batch_window) && r->batch_window <= 300 * DDA_USEC_PER_SEC)
			return 0;
		dda__cli_error(c,
			       "invalid --max-batching-window '%s' (seconds or a duration, 0 to "
			       "300s)",
			       arg);
		return EXIT_USAGE;
	case O_MAX_INFLIGHT:
		if (parse_count(c, "--max-inflight", arg, 1, &n))
			return EXIT_USAGE;
		r->max_inflight = (int)DDA_MIN(n, DDA_REPLAY_MAX_LANES);
		return 0;
	case O_DRY_RUN:
		r->dry_run = true;
		return 0;
	case O_LAMBDA_ENDPOINT_URL:
		r->lambda_endpoint = arg;
		return 0;
	}
	return EXIT_USAGE;
}

/* --format: report formats for verify, text or json for ls and history
 * (DDA_FMT__COUNT stands for text). */
static int parse_format(struct cli *c, const char *arg)
{
	bool report = c->command->opts & (OPT_REPORT | OPT_MERGE);
	if (!report)
		c->format = !strcmp(arg, "text")   ? DDA_FMT__COUNT
			    : !strcmp(arg, "json") ? DDA_FMT_JSON
						   : -1;
	else
		c->format = dda_report_format_parse(arg);
	if (c->format >= 0)
		return 0;
	dda__cli_error(c, "invalid --format '%s' (%s)", arg,
		       report ? "json, csv, md or html" : "text or json");
	return EXIT_USAGE;
}

static int set_option(struct cli *c, int opt, const char *arg, int64_t *now_arg)
{
	if (opt >= O_TARGET)
		return set_replay_option(c, opt, arg);
	struct dda_audit_opts *a = &c->audit;
	long long n;
	struct dda_error err = {0};
	switch (opt) {
	case O_FROM:
		return parse_time_arg(c, "--from", arg, &a->src.range.from);
	case O_TO:
		if (c->command->opts & OPT_RESTORE) {
			c->restore.to = arg;
			return 0;
		}
		return parse_time_arg(c, "--to", arg, &a->src.range.to);
	case O_SINCE:
		c->since = arg;
		return 0;
	case O_NOW:
		return parse_time_arg(c, "--now", arg, now_arg);
	case O_KEY_SCHEMA:
		if (!dda_key_schema_parse(arg, &a->dec, &err))
			return 0;
		dda__cli_error(c, "%s", err.msg);
		return EXIT_USAGE;
	case O_MAX_OBJECT_BYTES:
		if (parse_count(c, "--max-object-bytes", arg, 1, &n))
			return EXIT_USAGE;
		a->src.max_object_bytes = (size_t)n;
		return 0;
	case O_THREADS:
		if (parse_count(c, "--threads", arg, 1, &n))
			return EXIT_USAGE;
		a->threads = (int)DDA_MIN(n, 64);
		return 0;
	case O_MEMORY_LIMIT:
		if (dda__cli_parse_size(arg, &a->memory_limit)) {
			dda__cli_error(c,
				       "invalid --memory-limit '%s' (bytes, or a number with K, M, G "
				       "or T: 512M, 2G; 0 or off for no limit)",
				       arg);
			return EXIT_USAGE;
		}
		a->memory_limit_source = "option";
		return 0;
	case O_TMP_DIR:
		if (!*arg) {
			dda__cli_error(c, "invalid --tmp-dir '' (a directory)");
			return EXIT_USAGE;
		}
		a->tmp_dir = arg;
		return 0;
	case O_PROGRESS:
		c->progress = !strcmp(arg, "never")    ? 0
			      : !strcmp(arg, "always") ? 1
			      : !strcmp(arg, "auto")   ? 2
						       : -1;
		if (c->progress >= 0)
			return 0;
		dda__cli_error(c, "invalid --progress '%s' (auto, always or never)", arg);
		return EXIT_USAGE;
	case O_SETTLE:
		return parse_settle(c, arg);
	case O_SHARD:
		c->shard_arg = arg;
		return 0;
	case O_SHARD_COUNT:
		if (parse_count(c, "--shard-count", arg, 1, &n))
			return EXIT_USAGE;
		c->shard_count = n;
		return 0;
	case O_VERSIONS:
		c->versions = true;
		a->src.aws.versions = true;
		return 0;
	case O_REPORT:
		c->report_dir = arg;
		return 0;
	case O_FORMAT:
		return parse_format(c, arg);
	case O_FAIL_ON:
		c->fail_on_given = true;
		c->fail_on = !strcmp(arg, "never") ? DDA_SEV__COUNT : dda_severity_parse(arg);
		if (c->fail_on >= 0)
			return 0;
		dda__cli_error(c, "invalid --fail-on '%s' (error, warning, info or never)", arg);
		return EXIT_USAGE;
	case O_NO_DIFF:
		a->diffs = false;
		return 0;
	case O_KEY:
		c->key_text = arg;
		return 0;
	case O_LINES:
		a->src.lines = true;
		return 0;
	case O_ENDPOINT_URL:
		a->src.aws.endpoint_url = arg;
		return 0;
	case O_REGION:
		a->src.aws.region = arg;
		return 0;
	case O_PROFILE:
		a->src.aws.profile = arg;
		return 0;
	case O_CONCURRENCY:
		if (parse_count(c, "--concurrency", arg, 1, &n))
			return EXIT_USAGE;
		a->src.aws.concurrency = (int)DDA_MIN(n, 1024);
		return 0;
	case O_NO_VERIFY_SSL:
		a->src.aws.no_verify_ssl = true;
		return 0;
	case O_CA_BUNDLE:
		a->src.aws.ca_bundle = arg;
		return 0;
	case O_ALLOW_EMPTY:
		a->allow_empty = true;
		return 0;
	case O_METRICS:
		c->metrics = arg;
		return 0;
	case O_STATE:
		c->state_path = arg;
		return 0;
	case O_SINCE_STATE:
		c->since_state = true;
		return 0;
	case O_LATE_WINDOW:
		c->late_window_given = true;
		c->late_window = 0;
		if (strcmp(arg, "0") && parse_duration_arg(c, "--late-window", arg, &c->late_window))
			return EXIT_USAGE;
		return 0;
	case O_EXPECT_EVERY: {
		int64_t d;
		if (!dda_duration_parse(arg, &d) && d > 0 && d % DDA_USEC_PER_HOUR == 0 &&
		    d <= 366 * 24 * DDA_USEC_PER_HOUR) {
			a->expect_every = d;
			return 0;
		}
		dda__cli_error(c, "invalid --expect-every '%s' (whole hours: 1h, 6h, 1d)", arg);
		return EXIT_USAGE;
	}
	case O_IGNORE:
		if (!dda_ignore_parse(arg, &a->ignore, &err))
			return 0;
		dda__cli_error(c, "%s", err.msg);
		return EXIT_USAGE;
	case O_BASELINE:
		/* restore's baseline is an export to start from; verify's, known
		 * findings. */
		if (c->command->opts & (OPT_RESTORE | OPT_TABLE))
			c->restore.baseline = arg;
		else
			c->baseline_path = arg;
		return 0;
	case O_BUNDLE:
		c->bundle = arg;
		return 0;
	case O_SIGN_KEY:
		c->sign_key = arg;
		return 0;
	case O_PUBKEY:
		c->evidence.pubkey = arg;
		return 0;
	case O_KMS:
		c->evidence.kms_key = arg;
		return 0;
	case O_PREVIOUS:
		c->evidence.previous = arg;
		return 0;
	case O_RECHECK:
		c->evidence.recheck = true;
		return 0;
	case O_WRITE_BASELINE:
		c->write_baseline = arg;
		return 0;
	case 'q':
		c->verbose = -1;
		return 0;
	case 'v':
		c->verbose++;
		return 0;
	}
	return EXIT_USAGE;
}

/* An option's name as typed ("settle", or the letter of a short one). */
static const char *opt_name(int opt)
{
	static char letter[2];
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == opt && opt >= 256)
			return o->name;
	letter[0] = (char)opt;
	return letter;
}

/* Option and command names are short; longer words are not worth comparing. */
#define NAME_MAX_COMPARE 64

/* Edit distance with adjacent transpositions counted as one edit, the
 * typos people make ("--fromat"). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	size_t d[NAME_MAX_COMPARE + 1][NAME_MAX_COMPARE + 1];
	if (n > NAME_MAX_COMPARE || m > NAME_MAX_COMPARE)
		return SIZE_MAX;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			best = DDA_MIN(best, d[i - 1][j] + 1);
			best = DDA_MIN(best, d[i][j - 1] + 1);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				best = DDA_MIN(best, d[i - 2][j - 2] + 1);
			d[i][j] = best;
		}
	}
	return d[n][m];
}

const char *dda__cli_nearest(const char *typed, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		size_t d = edit_distance(typed, names[i]);
		/* A known name followed by more ("--report-dir") is close too. */
		if (!strncmp(typed, names[i], len) && typed[len] == '-')
			d = DDA_MIN(d, 1);
		/* Up to a third of the name may be wrong, at least one letter. */
		if (d <= DDA_MAX(len / 3, 1) && d < best_d) {
			best = names[i];
			best_d = d;
		}
	}
	return best;
}

/* Options that only some commands take. */
static bool allowed(const struct command *cmd, int opt)
{
	if (cmd->opts & OPT_MERGE)
		return opt < 256 || opt == O_REPORT || opt == O_FORMAT || opt == O_FAIL_ON ||
		       opt == O_ENDPOINT_URL || opt == O_REGION || opt == O_PROFILE ||
		       opt == O_CONCURRENCY || opt == O_NO_VERIFY_SSL || opt == O_CA_BUNDLE;
	switch (opt) {
	case O_FAIL_ON:
	case O_NO_DIFF:
	case O_EXPECT_EVERY:
	case O_IGNORE:
	case O_BASELINE:
		return cmd->opts & OPT_REPORT;
	case O_WRITE_BASELINE:
	case O_STATE:
	case O_SINCE_STATE:
	case O_LATE_WINDOW:
	case O_BUNDLE:
	case O_SIGN_KEY:
		return cmd->opts & OPT_STATE;
	case O_PUBKEY:
	case O_KMS:
	case O_PREVIOUS:
	case O_RECHECK:
		return cmd->opts & OPT_EVIDENCE;
	case O_LINES:
	case O_MAX_OBJECT_BYTES:
	case O_VERSIONS:
		return !(cmd->opts & OPT_EVIDENCE);
	case O_METRICS:
		return cmd->opts & (OPT_STATE | OPT_REPLAY);
	case O_ALLOW_EMPTY:
		return cmd->opts & (OPT_REPORT | OPT_REPLAY);
	case O_FORMAT:
		return cmd->opts & (OPT_REPORT | OPT_TEXT_FORMAT);
	case O_KEY:
		return cmd->opts & OPT_KEY;
	case O_REPORT:
		return cmd->opts & (OPT_REPORT | OPT_REPLAY);
	case O_KEY_SCHEMA:
	case O_SETTLE:
	case O_NOW:
	case O_THREADS:
	case O_MEMORY_LIMIT:
	case O_TMP_DIR:
	case O_SHARD:
	case O_SHARD_COUNT:
		return cmd->opts & OPT_DECODE;
	case O_FROM:
	case O_SINCE:
		return cmd->opts & OPT_RANGE;
	case O_TO:
		return cmd->opts & (OPT_RANGE | OPT_RESTORE);
	case O_AT:
	case O_CREATE:
	case O_OVERWRITE:
	case O_MAX_WCU:
	case O_KEYS_FILE:
	case O_UNDO_SINCE:
		return cmd->opts & OPT_RESTORE;
	case O_DRY_RUN:
	case O_CHECKPOINT:
		return cmd->opts & (OPT_REPLAY | OPT_RESTORE);
	case O_TABLE:
		return cmd->opts & (OPT_REPLAY | OPT_TABLE);
	case O_SCAN_SEGMENTS:
	case O_CONSISTENT_READ:
	case O_MAX_RCU:
		return cmd->opts & OPT_TABLE;
	}
	if (opt >= O_TARGET)
		return cmd->opts & OPT_REPLAY;
	return true;
}

void dda__cli_each_option(const struct command *cmd,
			  void (*fn)(void *ctx, const char *name, bool takes_arg), void *ctx)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (allowed(cmd, o->val))
			fn(ctx, o->name, o->has_arg == required_argument);
}

/* An unknown long option: the options of cmd it abbreviates, else the one
 * nearest to it. */
static void unknown_long_option(struct cli *c, const char *word)
{
	char typed[NAME_MAX_COMPARE + 1];
	const char *names[DDA_ARRAY_SIZE(long_opts)], *prefixed[DDA_ARRAY_SIZE(long_opts)];
	size_t n = 0, np = 0;
	snprintf(typed, sizeof(typed), "%.*s", (int)strcspn(word + 2, "="), word + 2);
	for (const struct option *o = long_opts; o->name; o++) {
		if (!allowed(c->command, o->val))
			continue;
		names[n++] = o->name;
		if (*typed && !strncmp(o->name, typed, strlen(typed)))
			prefixed[np++] = o->name;
	}
	if (np > 1) {
		struct dda_buf list;
		dda_buf_init(&list, 4096);
		int rc = 0;
		for (size_t i = 0; i < np && !rc; i++)
			rc = dda_buf_addf(&list, "%s--%s", i ? ", " : "", prefixed[i]);
		dda__cli_error(c, "option '--%s' is ambiguous: %s", typed, rc ? "..." : list.ptr);
		dda_buf_release(&list);
		return;
	}
	const char *near = np ? prefixed[0] : dda__cli_nearest(typed, names, n);
	if (near)
		dda__cli_error(c, "unknown option '--%s'; did you mean '--%s'?", typed, near);
	else
		dda__cli_error(c, "unknown option '--%s' (see ddbaudit %s --help)", typed, c->cmd);
}

/* What getopt's '?' or ':' meant, said as precisely as it can be. */
static int bad_option(struct cli *c, int opt, const char *word)
{
	/* getopt leaves optopt 0 for an unknown long option, the option's value
	 * for a long one given a value it does not take, the letter for an
	 * unknown short one; a long option always consumes its whole word. */
	if (opt == ':')
		dda__cli_error(c, "option '%s' needs a value (see ddbaudit %s --help)", word,
			       c->cmd);
	else if (!optopt)
		unknown_long_option(c, word);
	else if ((optopt >= 256 || strchr("qvhV", optopt)) && !allowed(c->command, optopt))
		dda__cli_error(c, "option '%.*s' does not apply to %s", (int)strcspn(word, "="),
			       word, c->cmd);
	else if (optopt >= 256 || strchr("qvhV", optopt))
		dda__cli_error(c, "option '%.*s' takes no value", (int)strcspn(word, "="), word);
	else
		dda__cli_error(c, "unknown option '-%c' (see ddbaudit %s --help)", optopt, c->cmd);
	return EXIT_USAGE;
}

/* The noise options in effect: the kinds ignored, the baseline file. */
static void noise_json(json_t *j, const struct cli *c)
{
	json_t *ignore = json_array();
	for (int k = 0; ignore && k < DDA_K__COUNT; k++)
		if ((c->audit.ignore >> k) & 1)
			json_array_append_new(ignore, json_string(dda_kind_name(k)));
	struct dda_buf tmp;
	dda_buf_init(&tmp, DDA_BUF_UNLIMITED);
	json_object_set_new(j, "ignore", ignore);
	json_object_set_new(j, "baseline",
			    c->baseline_path ? json_string(dda__name_text(&tmp, c->baseline_path))
					     : json_null());
	dda_buf_release(&tmp);
}

static json_t *options_json(const struct cli *c)
{
	char t[DDA_TIME_STRLEN];
	const struct dda_audit_opts *a = &c->audit;
	json_t *ks = json_array();
	for (size_t i = 0; i < a->dec.nkeys; i++)
		json_array_append_new(ks, json_pack("{ssss}", "name", a->dec.key_names[i], "role",
						    i ? "RANGE" : "HASH"));
	return json_pack(
	    "{sosIsIsssbsbsosbsoss}", "since", c->since ? json_string(c->since) : json_null(),
	    "max_object_bytes", (json_int_t)a->src.max_object_bytes, "settle_seconds",
	    (json_int_t)(a->settle / DDA_USEC_PER_SEC), "now", dda_time_format(a->now, false, t),
	    "versions", c->versions, "diffs", a->diffs, "key_schema", ks, "allow_empty",
	    a->allow_empty, "expect_every_hours",
	    a->expect_every ? json_integer((json_int_t)(a->expect_every / DDA_USEC_PER_HOUR))
			    : json_null(),
	    "fail_on", c->fail_on >= DDA_SEV__COUNT ? "never" : dda_severity_name(c->fail_on));
}

/* -v: the library's detail lines, on stderr like every message. */
static void log_line(void *ctx, int level, const char *line)
{
	const struct cli *c = ctx;
	(void)level;
	fprintf(stderr, "ddbaudit: %s: %s\n", c->cmd, line);
}

/* Sends the library's detail to stderr when -v asked for it, and says
 * which range the options came to (--since is relative to now). */
static void start_verbose(struct cli *c)
{
	char from[DDA_TIME_STRLEN], to[DDA_TIME_STRLEN];
	const struct dda_range *r = &c->audit.src.range;
	if (c->verbose <= 0)
		return;
	c->audit.src.log = (struct dda_log){log_line, c, c->verbose};
	dda__log(&c->audit.src.log, DDA_LOG_INFO, "range: from %s to %s",
		 r->from == DDA_TIME_NONE ? "the start" : dda_time_format(r->from, false, from),
		 r->to == DDA_TIME_NONE ? "the end" : dda_time_format(r->to, false, to));
}

/* A baseline that cannot be read or parsed is a usage error: exit 2 with
 * the file and line, before anything is read. */
static int load_baseline(struct cli *c)
{
	struct dda_error err = {0};
	if (!c->baseline_path)
		return 0;
	int rc = dda_baseline_load(c->baseline_path, &c->baseline, &err);
	if (!rc) {
		c->audit.baseline = c->baseline;
		return 0;
	}
	dda__cli_error(c, "%s", err.msg);
	return dda__cli_exit_for(rc);
}

/* Cross-option checks once everything is parsed. */
static int finish_options(struct cli *c, int64_t now_arg)
{
	struct dda_audit_opts *a = &c->audit;
	struct dda_error err = {0};
	if (now_arg != DDA_TIME_NONE)
		a->now = now_arg;
	if (c->since) {
		int64_t d;
		if (a->src.range.from != DDA_TIME_NONE) {
			dda__cli_error(c, "--since and --from cannot be combined");
			return EXIT_USAGE;
		}
		if (parse_duration_arg(c, "--since", c->since, &d))
			return EXIT_USAGE;
		a->src.range.from = a->now - d;
	}
	if (c->late_window_given && !c->state_path) {
		dda__cli_error(c, "--late-window needs --state PATH (late objects are found "
				  "against the previous run)");
		return EXIT_USAGE;
	}
	if (c->sign_key && !c->bundle) {
		dda__cli_error(c, "--sign-key signs a bundle: it needs --bundle FILE.tar.gz");
		return EXIT_USAGE;
	}
	if (c->sign_key && dda_bundle_check_key(c->sign_key, &err)) {
		dda__cli_error(c, "%s", err.msg);
		return EXIT_USAGE;
	}
	if (c->evidence.pubkey && c->evidence.kms_key) {
		dda__cli_error(c, "--pubkey and --kms cannot be combined: give the one key the "
				  "bundle was signed with");
		return EXIT_USAGE;
	}
	if (c->since_state && (!c->state_path || c->since || a->src.range.from != DDA_TIME_NONE ||
			       a->src.range.to != DDA_TIME_NONE)) {
		dda__cli_error(c, c->state_path ? "--since-state takes the range from the state: "
						  "it cannot be combined with --from, --to or --since"
						: "--since-state needs --state PATH");
		return EXIT_USAGE;
	}
	if (a->src.range.from != DDA_TIME_NONE && a->src.range.to != DDA_TIME_NONE &&
	    a->src.range.from >= a->src.range.to) {
		dda__cli_error(c, "the range is empty: --from must be before --to");
		return EXIT_USAGE;
	}
	if (dda__cli_shard_resolve(c))
		return EXIT_USAGE;
	a->dec.range = a->src.range;
	a->src.now = a->now; /* an open range ends at the run's now */
	if (!a->memory_limit_source && (c->command->opts & OPT_DECODE))
		dda__cli_default_memory(&a->memory_limit, &a->memory_limit_source);
	if (!a->tmp_dir)
		a->tmp_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	start_verbose(c);
	if (c->versions && c->source && strncmp(c->source, "s3://", 5))
		dda__cli_warn(c, "--versions only applies to S3 sources; a local copy holds one "
				 "version per key");
	c->options = options_json(c);
	if (c->options)
		noise_json(c->options, c);
	if (c->options)
		json_object_set_new(c->options, "shard",
				    a->src.shard.count
					? json_pack("{sIsI}", "index", (json_int_t)a->src.shard.index,
						    "count", (json_int_t)a->src.shard.count)
					: json_null());
	return load_baseline(c);
}

/* SOURCE, or for evidence its action and the bundle; merge takes every
 * operand. */
static bool needs_operand(const struct cli *c)
{
	return !c->source || ((c->command->opts & OPT_EVIDENCE) && !c->operand) ||
	       (c->command->opts & OPT_MERGE);
}

static void take_operand(struct cli *c, const char *arg)
{
	if (c->command->opts & OPT_MERGE)
		c->dirs[c->ndirs++] = arg; /* room for every word of argv */
	if (!c->source)
		c->source = arg;
	else
		c->operand = arg;
}

int dda__cli_parse(int argc, char **argv, const struct command *cmd, struct cli *c)
{
	memset(c, 0, sizeof(*c));
	c->prog = "ddbaudit";
	c->cmd = cmd->name;
	c->command = cmd;
	c->format = -1;
	c->fail_on = DDA_SEV_ERROR;
	c->progress = 2;
	c->late_window = 24 * DDA_USEC_PER_HOUR;
	c->is_tty = isatty(2);
	dda_audit_opts_default(&c->audit);
	c->replay = (struct replay_args){.view = DDA_VIEW_NEW_AND_OLD, .event_mask = 7,
					 .parallelism = 1, .batch_size = 100, .max_retries = 3,
					 .max_record_age = -1, .on_failure = DDA_FAIL_DEFAULT};
	c->table = (struct table_args){.segments = 4};
	c->restore.at = c->restore.undo_since = DDA_TIME_NONE;
	if ((cmd->opts & OPT_MERGE) && !(c->dirs = calloc((size_t)argc, sizeof(*c->dirs)))) {
		dda__cli_error(c, "out of memory");
		return EXIT_RUNTIME;
	}
	int64_t now_arg = DDA_TIME_NONE;
	int opt;
	optind = 1;
	opterr = 0;
	for (;;) {
		opt = getopt_long(argc, argv, "+:qvhV", long_opts, NULL);
		if (opt == -1) {
			/* Options may follow SOURCE: take it and keep parsing. */
			if (optind < argc && needs_operand(c) && strcmp(argv[optind - 1], "--")) {
				take_operand(c, argv[optind++]);
				continue;
			}
			break;
		}
		if (opt == 'h') {
			dda__cli_help(cmd);
			return -1;
		}
		if (opt == 'V') {
			dda__cli_print_version();
			return -1;
		}
		if (opt == '?' || opt == ':')
			return bad_option(c, opt, argv[optind - 1]);
		if (!allowed(cmd, opt)) {
			dda__cli_error(c, "option '%s%s' does not apply to %s",
				       opt < 256 ? "-" : "--", opt_name(opt), cmd->name);
			return EXIT_USAGE;
		}
		int rc = set_option(c, opt, optarg, &now_arg);
		if (rc)
			return rc;
	}
	while (optind < argc && needs_operand(c))
		take_operand(c, argv[optind++]);
	if (optind < argc) {
		dda__cli_error(c, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!c->source) {
		dda__cli_error(c, "no %s given (usage: ddbaudit %s)",
			       cmd->opts & OPT_EVIDENCE ? "action"
			       : cmd->opts & OPT_MERGE	? "DIR"
							: "SOURCE",
			       cmd->usage);
		return EXIT_USAGE;
	}
	c->audit.source = c->source;
	return finish_options(c, now_arg);
}

void dda__cli_release(struct cli *c)
{
	free(c->dirs);
	c->dirs = NULL;
	for (char **d = c->shard_dirs; d && *d; d++)
		free(*d);
	free(c->shard_dirs);
	c->shard_dirs = NULL;
	free(c->shard_report_dir);
	c->shard_report_dir = NULL;
	json_decref(c->options);
	c->options = NULL;
	dda_baseline_free(c->baseline);
	c->baseline = NULL;
	c->audit.baseline = NULL;
}

void dda__cli_progress(void *ctx, const struct dda_progress *p)
{
	struct cli *c = ctx;
	bool show = c->progress == 1 || (c->progress == 2 && c->is_tty && c->verbose >= 0);
	if (!show || (!p->done && p->elapsed < DDA_USEC_PER_SEC))
		return;
	double secs = (double)p->elapsed / 1e6;
	if (p->done) {
		if (c->is_tty)
			fputs("\r\033[K", stderr);
		else if (c->progress == 1)
			fprintf(stderr, "progress: done in %.1fs\n", secs);
		return;
	}
	fprintf(stderr, "%s%llu objects  %llu records  %.0f records/s  %.1fs%s",
		c->is_tty ? "\r\033[K" : "", (unsigned long long)p->objects,
		(unsigned long long)p->records, secs > 0 ? (double)p->records / secs : 0.0, secs,
		c->is_tty ? "" : "\n");
}

void dda__cli_print_version(void)
{
	printf("ddbaudit %s (commit %s)\n", dda_version(), dda__cli_commit());
}

int dda__cli_verdict(const struct cli *c, const struct dda_result *res)
{
	if (res->fatal.code)
		return EXIT_RUNTIME;
	/* A shard's findings are merge's to judge: exit 1 would fail an AWS
	 * Batch array child (and the merge job waiting on it) or a Kubernetes
	 * index, for what is the normal outcome of an audit. */
	if (c->audit.src.shard.count)
		return EXIT_CLEAN;
	int sev = dda_result_max_severity(res);
	return sev >= 0 && sev >= c->fail_on ? EXIT_ANOMALIES : EXIT_CLEAN;
}

/* A signal handler may only touch a volatile sig_atomic_t-like flag. */
static volatile int *stop_flag;
static volatile int stop_storage;

static void on_signal(int sig)
{
	(void)sig;
	if (stop_flag)
		*stop_flag = 1;
}

void dda__cli_catch_signals(struct cli *c)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	stop_flag = &stop_storage;
	/* The audit polls it between chunks; every request to AWS (S3, STS,
	 * SSO, Lambda, SQS) polls it while it waits on the network. */
	c->audit.stop = stop_flag;
	c->audit.src.aws.stop = stop_flag;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int dda__cli_make_dir(const char *path, struct dda_error *err)
{
	return dda__make_dir(path, err);
}
