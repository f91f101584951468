"""Completeness: what a run did not see is a finding. An empty range or source
is EMPTY_RANGE; with --expect-every, an hour of the range without objects is
MISSING_HOUR; the verdict is clean, findings or incomplete and never "clean"
over what was not read; a listing that ends early (truncated without a token,
a repeated token) fails the run; findings about slack hours are reported by the
run whose range holds them, once."""
import json
import os
import shutil
from harness import Case, ROOT, main, run, verify_json
from fault_proxy import Rule
from moto import MotoCase, upload_tree

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
DAY = ["--from", "2025-07-12T06:00Z", "--to", "2025-07-12T12:00Z", "--settle", "0"]


def seed(ts, user, act, version):
    img = {"UserId": {"S": user}, "ActivityId": {"S": act}, "Version": {"N": str(version)}}
    rec = {"timestamp": ts, "eventName": "INSERT" if version == 1 else "MODIFY",
           "userId": user, "activityId": act, "awsRegion": "us-east-1",
           "eventSource": "aws:dynamodb", "newImage": img}
    if version > 1:
        rec["oldImage"] = {**img, "Version": {"N": str(version - 1)}}
    return json.dumps(rec)


def kinds(report, kind):
    return [a for a in report["anomalies"] if a["kind"] == kind]


class LocalTest(Case):
    def copy_samples(self):
        dst = os.path.join(self.dir, "audit-logs")
        shutil.copytree(SAMPLES, dst)
        return dst

    def test_empty_range_is_an_error(self):
        """A day without objects used to exit 0 with a warning on stderr."""
        status, rep, err = verify_json(SAMPLES, "--from", "2025-07-13", "--to", "2025-07-14",
                                       "--settle", "0")
        self.assertEqual(status, 1, err)
        found = kinds(rep, "EMPTY_RANGE")
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["severity"], "error")
        self.assertIn("no records from 2025-07-13T00:00:00Z", found[0]["detail"])
        self.assertEqual(rep["run"]["verdict"], "findings")
        # Every hour of the range has its row, empty.
        self.assertEqual(len(rep["hours"]), 24)
        self.assertTrue(all(h["objects"] == 0 and h["in_range"] for h in rep["hours"]))

    def test_allow_empty_accepts_a_quiet_table(self):
        status, rep, err = verify_json(SAMPLES, "--from", "2025-07-13", "--to", "2025-07-14",
                                       "--settle", "0", "--allow-empty")
        self.assertEqual(status, 0, err)
        self.assertEqual(kinds(rep, "EMPTY_RANGE"), [])
        self.assertEqual(rep["run"]["verdict"], "clean")
        self.assertTrue(rep["run"]["options"]["allow_empty"])

    def test_empty_source_without_range(self):
        os.makedirs(os.path.join(self.dir, "audit-logs"))
        status, rep, err = verify_json(os.path.join(self.dir, "audit-logs"))
        self.assertEqual(status, 1, err)
        self.assertIn("the source holds no records", kinds(rep, "EMPTY_RANGE")[0]["detail"])
        status, rep, err = verify_json("-", stdin=b"")
        self.assertEqual(status, 1, err)
        self.assertEqual(len(kinds(rep, "EMPTY_RANGE")), 1)

    def test_missing_hour_in_the_middle(self):
        """Deleting every object of one hour used to exit 0, the Hours table
        leaving the row out."""
        tree = self.copy_samples()
        shutil.rmtree(os.path.join(tree, "2025", "07", "12", "09"))
        status, rep, err = verify_json(tree, *DAY, "--expect-every", "1h")
        self.assertEqual(status, 1, err)
        missing = kinds(rep, "MISSING_HOUR")
        self.assertEqual(len(missing), 1, missing)
        self.assertIn("2025/07/12/09/", missing[0]["detail"])
        self.assertEqual(missing[0]["time"], "2025-07-12T09:00:00.000000Z")
        row = [h for h in rep["hours"] if h["hour"] == "2025-07-12T09:00:00Z"]
        self.assertEqual(row, [{"hour": "2025-07-12T09:00:00Z", "objects": 0, "records": 0,
                                "anomalies": 1, "in_range": True}])
        self.assertEqual([h["hour"][11:13] for h in rep["hours"]],
                         ["06", "07", "08", "09", "10", "11"])
        # Without --expect-every the hour still has its (empty) row, and the
        # Markdown shows it.
        status, out, err = run("verify", tree, *DAY, "--format", "md")
        self.assertIn(b"| 2025-07-12T09:00:00Z | 0 | 0 | 0 |", out)
        self.assertNotIn(b"MISSING_HOUR", out)

    def test_expect_every_slots_of_several_hours(self):
        tree = self.copy_samples()
        for h in ("08", "09"):
            shutil.rmtree(os.path.join(tree, "2025", "07", "12", h))
        # Slots 06-07, 08-09, 10-11: only the middle one is empty.
        status, rep, err = verify_json(tree, *DAY, "--expect-every", "2h")
        self.assertEqual(status, 1, err)
        missing = kinds(rep, "MISSING_HOUR")
        self.assertEqual(len(missing), 1)
        self.assertIn("2025/07/12/08/ to 2025/07/12/09/", missing[0]["detail"])
        # Slots 06-08, 09-11: each holds an object.
        status, rep, err = verify_json(tree, *DAY, "--expect-every", "3h")
        self.assertEqual(kinds(rep, "MISSING_HOUR"), [])
        for bad in ("90m", "0h", "x", "1"):
            status, _, err = run("verify", tree, "--expect-every", bad)
            self.assertEqual(status, 2, bad)
            self.assertIn("--expect-every", err)

    def test_unsettled_hours_are_not_yet_missing(self):
        """The hour still being written is not expected to hold objects yet."""
        tree = self.copy_samples()
        shutil.rmtree(os.path.join(tree, "2025", "07", "12", "11"))
        status, rep, err = verify_json(tree, "--from", "2025-07-12T06:00Z", "--to",
                                       "2025-07-12T12:00Z", "--now", "2025-07-12T12:05Z",
                                       "--settle", "15m", "--expect-every", "1h")
        self.assertEqual(kinds(rep, "MISSING_HOUR"), [], err)
        status, rep, err = verify_json(tree, "--from", "2025-07-12T06:00Z", "--to",
                                       "2025-07-12T12:00Z", "--now", "2025-07-12T12:20Z",
                                       "--settle", "15m", "--expect-every", "1h")
        self.assertEqual([a["time"][11:13] for a in kinds(rep, "MISSING_HOUR")], ["11"])

    def test_expect_every_needs_hour_prefixes(self):
        """NDJSON has no hour prefixes: the check cannot be made, which is an
        incomplete run, not a pass."""
        lines = "\n".join(seed(f"2025-07-12T0{h}:10:00.000000", "u", "a", h - 5)
                          for h in (6, 7, 8)).encode()
        status, out, err = run("verify", "-", "--expect-every", "1h", "--format", "json",
                               stdin=lines)
        self.assertEqual(status, 3, err)
        self.assertIn("cannot check --expect-every", err)
        self.assertEqual(json.loads(out)["run"]["verdict"], "incomplete")

    def test_slack_findings_are_reported_once(self):
        """Two adjacent hourly runs read each other's hours as slack; a
        finding about an object of hour 09 belongs to the 09 run only, and a
        record of 08:59 written under 09 to the 08 run only."""
        base = os.path.join(self.dir, "audit-logs", "2025", "07", "12")
        self.write(os.path.join(base, "08", "u1-a.json"), seed("2025-07-12T08:10:00.000000",
                                                               "u1", "a", 1))
        self.write(os.path.join(base, "09", "u2-a.json"), seed("2025-07-12T08:59:59.000000",
                                                               "u2", "a", 1))
        self.write(os.path.join(base, "09", "u3-a.json"), "{not json")
        self.write(os.path.join(base, "09", "u4-a.json"), seed("2025-07-12T09:20:00.000000",
                                                               "u4", "a", 1))
        tree = os.path.join(self.dir, "audit-logs")
        reports = {}
        for h in ("08", "09"):
            out = os.path.join(self.dir, "out" + h)
            status, _, err = run("verify", tree, "--from", f"2025-07-12T{h}:00Z", "--to",
                                 f"2025-07-12T{int(h) + 1:02d}:00Z", "--settle", "0",
                                 "--report", out)
            with open(os.path.join(out, "report.json")) as f:
                reports[h] = json.load(f)
            with open(os.path.join(out, "manifest.ndjson")) as f:
                reports[h]["manifest"] = [json.loads(line) for line in f]
        early, late = reports["08"], reports["09"]
        self.assertEqual(kinds(early, "UNREADABLE"), [])
        self.assertEqual(early["summary"]["deferred"], 1)
        self.assertEqual(len(kinds(late, "UNREADABLE")), 1)
        self.assertEqual(late["summary"]["deferred"], 0)
        # Counts cover everything read: u1, u2 (08:59:59) and the unreadable
        # slack object, whose finding is the 09 run's.
        self.assertEqual(early["summary"]["records"], 3)
        self.assertEqual(early["summary"]["valid"], 2)
        self.assertEqual(late["summary"]["valid"], 1)  # u4
        # The manifest says which objects were in range and which were slack.
        in_range = {m["key"].split("/", 4)[4]: m["in_range"] for m in early["manifest"]}
        self.assertEqual(in_range, {"08/u1-a.json": True, "09/u2-a.json": False,
                                    "09/u3-a.json": False, "09/u4-a.json": False})
        slack = [h for h in early["hours"] if not h["in_range"]]
        self.assertEqual([h["hour"] for h in slack], ["2025-07-12T09:00:00Z"])


class S3CompletenessTest(MotoCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3.create_bucket(Bucket="audit")
        upload_tree(cls.s3, "audit", SAMPLES, "audit-logs/")

    def test_prefix_typo_is_an_empty_range(self):
        """s3://audit/audit-log/ (one letter short) used to exit 0."""
        status, rep, err = verify_json("s3://audit/audit-log/", "--endpoint-url",
                                       self.moto.url, *DAY)
        self.assertEqual(status, 1, err)
        self.assertEqual(len(kinds(rep, "EMPTY_RANGE")), 1)
        self.assertEqual(rep["summary"]["objects"], 0)

    def test_missing_bucket_is_incomplete_with_unknown_settings(self):
        """NoSuchBucket used to write "Verdict: clean (incomplete ...)" and
        "Object Lock Disabled" for a bucket that does not exist."""
        out = os.path.join(self.dir, "out")
        status, _, err = run("verify", "s3://no-such-bucket/audit-logs/", "--endpoint-url",
                             self.moto.url, *DAY, "--report", out)
        self.assertEqual(status, 3, err)
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        self.assertIn("**Verdict: incomplete**", md)
        self.assertNotIn("clean", md.split("\n")[2])
        self.assertNotIn("Disabled", md)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual(rep["run"]["verdict"], "incomplete")
        self.assertFalse(rep["run"]["complete"])
        self.assertEqual(rep["run"]["bucket"]["object_lock"], "unknown")
        self.assertEqual(rep["run"]["bucket"]["versioning"], "unknown")

    def test_open_range_ends_at_the_runs_now(self):
        """--since with --now in the past lists the hours before that now, not
        every hour up to the clock's now (which used to pass the bound on hour
        prefixes and list the whole bucket)."""
        status, rep, err = verify_json("s3://audit/audit-logs/", "--endpoint-url",
                                       self.proxy.url, "--now", "2025-07-12T10:30Z",
                                       "--since", "2h", "--settle", "0")
        self.assertIn(status, (0, 1), err)
        hours = sorted({p.rsplit("/", 2)[-2] for p in self.proxy.listings("audit")})
        self.assertEqual(hours, ["07", "08", "09", "10", "11"])
        self.assertGreater(rep["summary"]["records"], 0)

    def lying_listing(self, rewrite):
        self.proxy.rules.append(Rule("GET", "list-type=2", "rewrite", 1000, rewrite=rewrite))
        return run("verify", "s3://audit/audit-logs/", "--endpoint-url", self.proxy.url, *DAY,
                   "--format", "json", timeout=60)

    def test_truncated_listing_without_token_fails(self):
        def truncate(body, query):
            return body.replace(b"<IsTruncated>false</IsTruncated>",
                                b"<IsTruncated>true</IsTruncated>")
        status, out, err = self.lying_listing(truncate)
        self.assertEqual(status, 3, err)
        self.assertIn("truncated but gives no continuation token", err)
        self.assertEqual(json.loads(out)["run"]["verdict"], "incomplete")

    def test_repeated_continuation_token_fails(self):
        def repeat(body, query):
            return body.replace(b"<IsTruncated>false</IsTruncated>",
                                b"<IsTruncated>true</IsTruncated>"
                                b"<NextContinuationToken>again</NextContinuationToken>")
        status, out, err = self.lying_listing(repeat)
        self.assertEqual(status, 3, err)
        self.assertIn("repeats the continuation token", err)
        asked = [q for m, p, q in self.proxy.log if q.get("continuation-token") == "again"]
        self.assertGreater(len(asked), 0)  # the run ended (within the timeout) after it


if __name__ == "__main__":
    main()
