"""Noise control for nightly runs: UNKNOWN_PRIOR folded into one finding,
--ignore KIND, --baseline FILE (with expiry) and --write-baseline."""
import csv
import io
import json
import os
import shutil
import tarfile
from harness import ROOT, Case, main, run, verify_json
from moto import MotoCase, upload_tree

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
# What the samples hold when read whole (samples/expected.json lists them).
SAMPLE_KINDS = {"UNREADABLE": 1, "INVALID_VALUE": 1, "KEY_MISMATCH": 1, "GAP": 1,
                "DUPLICATE": 1}
LOSS_KINDS = ["UNREADABLE", "INVALID_RECORD", "INVALID_VALUE", "EMPTY_RANGE", "MISSING_HOUR"]


def seed(user, t, old, new):
    """One seed-dialect MODIFY of item (user, a1): Version old -> new."""
    def image(v):
        return {"UserId": {"S": user}, "ActivityId": {"S": "a1"}, "Version": {"N": str(v)}}
    return {"timestamp": t, "eventName": "MODIFY", "userId": user, "activityId": "a1",
            "awsRegion": "us-east-1", "eventSource": "aws:dynamodb",
            "oldImage": image(old), "newImage": image(new)}


def twelve_hours(items):
    """12 hours of clean changes: each item changed twice, chained, its first
    change a MODIFY (so every item's prior state is unknown to this run)."""
    lines = []
    for i in range(items):
        sec = (i * 7) % (6 * 3600)
        for n, hours in enumerate((0, 6)):
            s = sec + hours * 3600
            t = "2025-07-12T%02d:%02d:%02d.000001" % (s // 3600, s // 60 % 60, s % 60)
            lines.append(json.dumps(seed("u%05d" % i, t, n + 1, n + 2)))
    return "\n".join(lines) + "\n"


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def listed(rep):
    """Findings the JSON list stands for: a folded entry counts as its count."""
    return sum(a.get("count", 1) for a in rep["anomalies"])


class UnknownPriorTest(Case):
    def test_twelve_clean_hours_over_5000_items_give_a_small_report(self):
        log = self.write("day.ndjson", twelve_hours(5000))
        out = self.path("report", "x")
        status, _, err = run("verify", log, "--from", "2025-07-12T00:00Z", "--to",
                             "2025-07-12T12:00Z", "--report", os.path.dirname(out))
        self.assertEqual(status, 0, err)
        rdir = os.path.dirname(out)
        with open(os.path.join(rdir, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual(rep["run"]["verdict"], "clean")
        s = rep["summary"]
        # The summary counts one finding per item, as the CSV lists them.
        self.assertEqual(s["by_kind"], {"UNKNOWN_PRIOR": 5000})
        self.assertEqual(s["anomalies"], {"error": 0, "warning": 0, "info": 5000})
        self.assertEqual(s["events"]["MODIFY"], 10000)
        # The JSON list holds one entry standing for all of them.
        self.assertEqual(len(rep["anomalies"]), 1)
        agg = rep["anomalies"][0]
        self.assertEqual((agg["kind"], agg["severity"], agg["count"]),
                         ("UNKNOWN_PRIOR", "info", 5000))
        self.assertEqual(len(agg["sample"]), 10)
        self.assertEqual(agg["sample"][0]["item"],
                         {"UserId": {"S": "u00000"}, "ActivityId": {"S": "a1"}})
        self.assertIsNone(agg["item"])
        self.assertIn("5000 items", agg["detail"])
        rows = csv_rows(os.path.join(rdir, "anomalies.csv"))
        self.assertEqual(len(rows), 5000)
        self.assertEqual({r["kind"] for r in rows}, {"UNKNOWN_PRIOR"})
        self.assertEqual(len({r["item"] for r in rows}), 5000)
        self.assertEqual(listed(rep), sum(s["anomalies"].values()))
        # Small: before folding, the JSON report listed 5000 findings (2.8 MB; now 7 KB).
        self.assertLess(os.path.getsize(os.path.join(rdir, "report.json")), 16 * 1024)
        self.assertLess(os.path.getsize(os.path.join(rdir, "report.md")), 8 * 1024)
        with open(os.path.join(rdir, "report.md")) as f:
            md = f.read()
        self.assertIn("| info | UNKNOWN_PRIOR | 5000 items, the first ", md)
        self.assertEqual(md.count("UNKNOWN_PRIOR"), 3, md)  # by kind, the legend, the one row

    def test_folded_entry_sits_among_the_other_findings(self):
        """Other kinds stay listed one by one; the counts of the list, the
        summary and the CSV agree."""
        status, out, err = run("verify", SAMPLES, "--from", "2025-07-12T08:00Z", "--to",
                               "2025-07-12T12:00Z", "--format", "json")
        self.assertEqual(status, 1, err)
        rep = json.loads(out)
        folded = [a for a in rep["anomalies"] if a["kind"] == "UNKNOWN_PRIOR"]
        self.assertLessEqual(len(folded), 1)
        n = rep["summary"]["by_kind"].get("UNKNOWN_PRIOR", 0)
        self.assertEqual(sum(a["count"] for a in folded), n)
        status, out, _ = run("verify", SAMPLES, "--from", "2025-07-12T08:00Z", "--to",
                             "2025-07-12T12:00Z", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(out.decode())))
        self.assertEqual(len(rows), sum(rep["summary"]["anomalies"].values()))
        self.assertEqual(listed(rep), len(rows))


class IgnoreTest(Case):
    def test_ignored_kinds_leave_the_verdict_but_are_counted(self):
        status, rep, err = verify_json(SAMPLES, "--ignore", "GAP")
        self.assertEqual(status, 1, err)  # UNREADABLE and others remain
        self.assertEqual(rep["summary"]["ignored"], {"GAP": 1})
        self.assertNotIn("GAP", rep["summary"]["by_kind"])
        self.assertNotIn("GAP", [a["kind"] for a in rep["anomalies"]])
        self.assertEqual(rep["run"]["options"]["ignore"], ["GAP"])
        self.assertIn("1 ignored", err)
        # Only ignorable findings: the run is clean, and says what it did not count.
        log = self.write("dup.ndjson", "".join(
            json.dumps(r) + "\n" for r in [seed("u1", "2025-07-12T08:00:00", 1, 2),
                                           seed("u1", "2025-07-12T08:10:00", 1, 2),
                                           seed("u1", "2025-07-12T08:20:00", 5, 6)]))
        status, rep, err = verify_json(log, "--fail-on", "info")
        self.assertEqual(status, 1, err)
        self.assertEqual(rep["summary"]["by_kind"],
                         {"GAP": 1, "UNKNOWN_PRIOR": 1, "DUPLICATE": 1})
        status, rep, err = verify_json(log, "--fail-on", "info",
                                       "--ignore", "GAP,UNKNOWN_PRIOR,DUPLICATE")
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["run"]["verdict"], "clean")
        self.assertEqual(rep["anomalies"], [])
        self.assertEqual(rep["summary"]["anomalies"], {"error": 0, "warning": 0, "info": 0})
        self.assertEqual(rep["summary"]["ignored"],
                         {"GAP": 1, "UNKNOWN_PRIOR": 1, "DUPLICATE": 1})
        status, out, _ = run("verify", log, "--ignore", "GAP,UNKNOWN_PRIOR,DUPLICATE",
                             "--format", "md")
        self.assertIn(b"## Not counted", out)
        self.assertIn(b"| GAP | 1 | 0 |", out)

    def test_unknown_and_loss_kinds_are_refused(self):
        for kinds in ("GAPP", "GAP,", "gap", "GAP,NOPE", ""):
            status, _, err = run("verify", SAMPLES, "--ignore", kinds)
            self.assertEqual(status, 2, f"{kinds}: {err}")
            self.assertIn("unknown kind", err)
        for kind in LOSS_KINDS:
            status, _, err = run("verify", SAMPLES, "--ignore", "GAP," + kind)
            self.assertEqual(status, 2, f"{kind}: {err}")
            self.assertIn(f"--ignore {kind} refused", err)

    def test_ignore_never_makes_an_incomplete_run_clean(self):
        # A damaged archive: the run is incomplete (exit 3) whatever is ignored.
        tgz = self.path("logs.tar.gz")
        with tarfile.open(tgz, "w:gz") as t:
            t.add(SAMPLES, arcname="audit-logs")
        with open(tgz, "rb") as f:
            data = f.read()
        self.write("cut.tar.gz", data[: len(data) // 2])
        every = ",".join(k for k in ("PREFIX_SKEW", "GAP", "UNKNOWN_PRIOR", "DUPLICATE",
                                     "NO_OP_MODIFY", "OVERWRITTEN", "UNVERSIONED_BUCKET",
                                     "KEY_MISMATCH", "IMAGE_MISMATCH", "DOUBLE_INSERT",
                                     "MODIFY_AFTER_REMOVE", "EXPORT_MISMATCH",
                                     "BASELINE_EXPIRED"))
        status, out, err = run("verify", self.path("cut.tar.gz"), "--ignore", every,
                               "--fail-on", "never", "--format", "json")
        self.assertEqual(status, 3, err)
        self.assertEqual(json.loads(out)["run"]["verdict"], "incomplete")


class BaselineTest(Case):
    def baseline(self, *entries, name="known.ndjson"):
        return self.write(name, "".join(
            (e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries))

    def test_write_then_suppress_then_expire(self):
        base = self.path("b", "known.ndjson")
        status, _, err = run("verify", SAMPLES, "--now", "2026-01-01T00:00Z",
                             "--write-baseline", base, "-q")
        self.assertEqual(status, 1, err)  # the run itself still reports its findings
        self.assertEqual(os.listdir(os.path.dirname(base)), ["known.ndjson"])
        with open(base) as f:
            lines = [json.loads(x) for x in f if not x.startswith("#")]
        self.assertEqual(sorted(e["kind"] for e in lines), sorted(SAMPLE_KINDS))
        for e in lines:
            self.assertEqual(sorted(e), ["expires", "item", "kind", "object", "reason"])
            self.assertEqual(e["expires"], "2026-01-31T00:00:00Z")
            self.assertTrue(e["object"].startswith("audit-logs/2025/07/12/"), e)
        # Next night: the same findings are known and suppressed.
        status, rep, err = verify_json(SAMPLES, "--now", "2026-01-02T00:00Z",
                                       "--baseline", base)
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["run"]["verdict"], "clean")
        self.assertEqual(rep["anomalies"], [])
        self.assertEqual(rep["summary"]["suppressed"], SAMPLE_KINDS)
        b = rep["run"]["baseline"]
        self.assertEqual((b["entries"], b["matched"], b["expired"], b["unused"]), (5, 5, 0, 0))
        self.assertEqual(len(b["sha256"]), 64)
        self.assertIn("5 suppressed", err)
        # After the expiry: the findings are back, and each entry says it expired.
        status, rep, err = verify_json(SAMPLES, "--now", "2026-02-01T00:00Z",
                                       "--baseline", base)
        self.assertEqual(status, 1, err)
        kinds = rep["summary"]["by_kind"]
        self.assertEqual(kinds.pop("BASELINE_EXPIRED"), 5)
        self.assertEqual(kinds, SAMPLE_KINDS)
        self.assertEqual(rep["summary"]["suppressed"], {})
        expired = [a for a in rep["anomalies"] if a["kind"] == "BASELINE_EXPIRED"]
        self.assertEqual({a["severity"] for a in expired}, {"warning"})
        self.assertTrue(all("expired at 2026-01-31T00:00:00Z" in a["detail"] for a in expired))
        # --fail-on warning fails on an expired entry alone.
        status, _, err = run("verify", SAMPLES, "--now", "2026-02-01T00:00Z", "--baseline",
                             base, "--ignore", "GAP,KEY_MISMATCH,DUPLICATE", "--fail-on",
                             "warning", "-q")
        self.assertEqual(status, 1, err)

    def test_globs_comments_dates_and_stale_entries(self):
        base = self.baseline(
            "# known since the migration",
            "",
            {"kind": "GAP", "item": "*UserId=user900", "object": "audit-logs/2025/07/12/09/*",
             "expires": "2026-01-01", "reason": "INC-1 overwritten before versioning"},
            {"kind": "DUPLICATE", "item": "*", "object": "*", "expires": "2026-01-01",
             "reason": "retries are expected"},
            {"kind": "GAP", "item": "*UserId=nobody", "object": "*", "expires": "2026-01-01",
             "reason": "stale"})
        status, rep, err = verify_json(SAMPLES, "--baseline", base, "--now",
                                       "2026-01-01T23:59:59Z")
        self.assertEqual(status, 1, err)  # the UNREADABLE object and others remain
        self.assertEqual(rep["summary"]["suppressed"], {"GAP": 1, "DUPLICATE": 1})
        b = rep["run"]["baseline"]
        self.assertEqual((b["matched"], b["unused"], b["unused_lines"]), (2, 1, [5]))
        self.assertEqual(rep["run"]["options"]["baseline"], base)
        # A date alone lasts to the end of its day.
        status, rep, _ = verify_json(SAMPLES, "--baseline", base, "--now", "2026-01-02")
        self.assertEqual(rep["summary"]["by_kind"]["BASELINE_EXPIRED"], 3)
        self.assertEqual(rep["summary"]["suppressed"], {})
        # An exact object (brackets quoted) suppresses an UNREADABLE object.
        status, rep, _ = verify_json(SAMPLES, "--now", "2025-08-01", "--write-baseline",
                                     self.path("w.ndjson"))
        unreadable = [a for a in rep["anomalies"] if a["kind"] == "UNREADABLE"][0]
        base = self.baseline({"kind": "UNREADABLE", "item": "",
                              "object": unreadable["object"]["key"],
                              "expires": "2026-01-01", "reason": "cut by the writer"},
                             name="u.ndjson")
        status, rep, _ = verify_json(SAMPLES, "--baseline", base, "--now", "2025-08-01")
        self.assertEqual(rep["summary"]["suppressed"], {"UNREADABLE": 1})

    def test_malformed_baseline_is_a_usage_error_with_its_line(self):
        good = {"kind": "GAP", "item": "*", "object": "*", "expires": "2026-01-01",
                "reason": "r"}
        cases = {
            "not json": ("{oops", 3, "not JSON"),
            "array": ("[1]", 3, "JSON object"),
            "unknown member": (dict(good, expiry="2026"), 3, "unknown member \"expiry\""),
            "unknown kind": (dict(good, kind="GAPS"), 3, "unknown kind 'GAPS'"),
            "no kind": ({k: v for k, v in good.items() if k != "kind"}, 3, "\"kind\""),
            "bad time": (dict(good, expires="soon"), 3, "\"expires\" is not a time"),
            "no expiry": ({k: v for k, v in good.items() if k != "expires"}, 3,
                          "\"expires\" is missing"),
            "no reason": (dict(good, reason=""), 3, "\"reason\" must be non-empty"),
            "item not text": (dict(good, item=5), 3, "\"item\" must be a string"),
            "empty range": (dict(good, kind="EMPTY_RANGE"), 3, "cannot be in a baseline"),
            "loss glob": (dict(good, kind="UNREADABLE"), 3, "must name one object exactly"),
            "duplicate member": ('{"kind":"GAP","kind":"GAP"}', 3, "not JSON"),
        }
        for name, (bad, line, why) in cases.items():
            path = self.baseline("# header", good, bad, good, name=name.replace(" ", "_"))
            status, out, err = run("verify", SAMPLES, "--baseline", path)
            self.assertEqual(status, 2, f"{name}: {err}")
            self.assertIn(f"{path}:{line}: ", err, name)
            self.assertIn(why, err, name)
            self.assertEqual(out, b"", name)
        status, _, err = run("verify", SAMPLES, "--baseline", self.path("missing.ndjson"))
        self.assertEqual(status, 2, err)
        self.assertIn("--baseline: cannot open", err)

    def test_write_baseline_keeps_live_entries_and_drops_expired(self):
        base = self.baseline(
            {"kind": "GAP", "item": "*", "object": "*", "expires": "2026-06-01",
             "reason": "kept"},
            {"kind": "DUPLICATE", "item": "*", "object": "*", "expires": "2025-12-01",
             "reason": "expired"})
        out = self.path("new.ndjson")
        status, rep, err = verify_json(SAMPLES, "--now", "2026-01-01", "--baseline", base,
                                       "--write-baseline", out)
        self.assertEqual(status, 1, err)
        with open(out) as f:
            text = f.read()
        entries = [json.loads(x) for x in text.splitlines() if not x.startswith("#")]
        # A date alone lasts through its day: written as the next midnight.
        self.assertIn({"kind": "GAP", "item": "*", "object": "*",
                       "expires": "2026-06-02T00:00:00Z", "reason": "kept"}, entries)
        self.assertNotIn("expired", text)
        # The DUPLICATE is listed again (its entry expired), so it gets a new entry.
        self.assertIn("DUPLICATE", [e["kind"] for e in entries])
        self.assertNotIn("BASELINE_EXPIRED", text)
        # What it wrote is a valid baseline that makes the run clean.
        status, rep, err = verify_json(SAMPLES, "--now", "2026-01-02", "--baseline", out)
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["anomalies"], [])

    def test_names_with_glob_characters_match_only_themselves(self):
        # Two items whose names differ only where a glob would match both.
        recs = [seed("u[1]", "2025-07-12T08:00:00", 1, 2), seed("u1", "2025-07-12T08:00:00", 1, 2),
                seed("u*", "2025-07-12T08:00:00", 1, 2)]
        log = self.write("g.ndjson", "".join(json.dumps(r) + "\n" for r in recs))
        out = self.path("g-base.ndjson")
        status, rep, err = verify_json(log, "--write-baseline", out)
        self.assertEqual(status, 0, err)
        with open(out) as f:
            items = sorted(json.loads(x)["item"] for x in f if not x.startswith("#"))
        self.assertEqual(items, ["ActivityId=a1,UserId=u1", "ActivityId=a1,UserId=u\\*",
                                 "ActivityId=a1,UserId=u\\[1]"])
        status, rep, err = verify_json(log, "--baseline", out, "--fail-on", "info")
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["summary"]["suppressed"], {"UNKNOWN_PRIOR": 3})

        def only(item):
            return self.baseline({"kind": "UNKNOWN_PRIOR", "item": item, "object": "*",
                                  "expires": "2030-01-01", "reason": "r"}, name="one.ndjson")
        # The written (quoted) form matches its own item only ...
        status, rep, err = verify_json(log, "--baseline", only("ActivityId=a1,UserId=u\\[1]"))
        self.assertEqual(rep["summary"]["suppressed"], {"UNKNOWN_PRIOR": 1})
        self.assertEqual(rep["anomalies"][0]["count"], 2)
        self.assertNotIn({"UserId": {"S": "u[1]"}, "ActivityId": {"S": "a1"}},
                         [x["item"] for x in rep["anomalies"][0]["sample"]])
        # ... where the bare glob is a character class, matching u1 instead.
        status, rep, err = verify_json(log, "--baseline", only("ActivityId=a1,UserId=u[1]"))
        self.assertNotIn({"UserId": {"S": "u1"}, "ActivityId": {"S": "a1"}},
                         [x["item"] for x in rep["anomalies"][0]["sample"]])
        status, rep, err = verify_json(log, "--baseline", only("*"))
        self.assertEqual(rep["summary"]["suppressed"], {"UNKNOWN_PRIOR": 3})


class UnversionedAlongTheStateChainTest(MotoCase):
    """UNVERSIONED_BUCKET is said when a --state chain first sees the setting
    and when it changes, not every night; without --state, every run says it."""

    def setUp(self):
        super().setUp()
        self.s3.create_bucket(Bucket="chain")
        upload_tree(self.s3, "chain", SAMPLES, "audit-logs/")
        self.state = self.path("state", "audit.state")

    def night(self, hour, *extra):
        status, rep, err = verify_json(
            "s3://chain/audit-logs/", "--endpoint-url", self.moto.url, "--settle", "0",
            "--now", "2025-07-14T00:00Z", "--from", "2025-07-12T%02d:00Z" % hour,
            "--to", "2025-07-12T%02d:00Z" % (hour + 1), "--allow-empty", "--fail-on", "never",
            *extra)
        self.assertEqual(status, 0, err)
        return rep

    def said(self, rep):
        return rep["summary"]["by_kind"].get("UNVERSIONED_BUCKET", 0)

    def test_said_when_first_seen_and_when_changed(self):
        rep = self.night(8, "--state", self.state)
        self.assertEqual(self.said(rep), 1)
        self.assertEqual(rep["summary"]["suppressed"], {})
        # The same setting the next night: counted, not listed.
        rep = self.night(9, "--state", self.state)
        self.assertEqual(self.said(rep), 0)
        self.assertEqual(rep["summary"]["suppressed"], {"UNVERSIONED_BUCKET": 1})
        self.assertEqual(rep["run"]["bucket"]["versioning"], "Disabled")
        self.assertNotIn("UNVERSIONED_BUCKET", [a["kind"] for a in rep["anomalies"]])
        # Without the state, a run knows nothing of earlier ones: it says it.
        self.assertEqual(self.said(self.night(9)), 1)
        # Versioning on: nothing to say. Then suspended: a change, said again.
        self.s3.put_bucket_versioning(Bucket="chain",
                                      VersioningConfiguration={"Status": "Enabled"})
        rep = self.night(10, "--state", self.state)
        self.assertEqual(self.said(rep), 0)
        self.assertEqual(rep["summary"]["suppressed"], {})
        self.s3.put_bucket_versioning(Bucket="chain",
                                      VersioningConfiguration={"Status": "Suspended"})
        rep = self.night(11, "--state", self.state)
        self.assertEqual(rep["run"]["bucket"]["versioning"], "Suspended")
        self.assertEqual(self.said(rep), 1)
        found = [a for a in rep["anomalies"] if a["kind"] == "UNVERSIONED_BUCKET"][0]
        self.assertIn("changed: the state's last run saw versioning Enabled", found["detail"])
        rep = self.night(12, "--state", self.state)
        self.assertEqual(self.said(rep), 0)
        self.assertEqual(rep["summary"]["suppressed"], {"UNVERSIONED_BUCKET": 1})


if __name__ == "__main__":
    main()
