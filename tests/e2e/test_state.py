"""State across runs (--state, --since-state): a day audited in chained runs
finds what one run over the day finds, gaps across the runs' boundaries
included and no UNKNOWN_PRIOR for items seen earlier; a state that is corrupt,
truncated, of another table or of a newer format is exit 3 and left as it
was; so is the state of a run that fails; a concurrent run is refused."""
import fcntl
import gzip
import json
import os
import shutil
import subprocess
import urllib.parse
from fault_proxy import FaultProxy, Rule
from harness import BINARY, Case, ROOT, main, run, verify_json
from moto import MotoCase, upload_tree

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
NOW = ["--now", "2026-01-01T00:00Z"]
RUNS = [("2025-07-12T06:00Z", "2025-07-12T08:00Z"),
        ("2025-07-12T08:00Z", "2025-07-12T10:00Z"),
        ("2025-07-12T10:00Z", "2025-07-12T12:00Z")]


def findings(report):
    return sorted((a["kind"], json.dumps(a.get("item"), sort_keys=True),
                   (a.get("object") or {}).get("key")) for a in report["anomalies"])


def records(source):
    """Every seed record of a tree: {(user, activity): [(time, event, relpath)]},
    each item's list in time order."""
    events = {}
    for dirpath, _, names in os.walk(source):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    rec = json.loads(f.read())
            except ValueError:
                continue
            if not isinstance(rec, dict) or "timestamp" not in rec:
                continue
            events.setdefault((rec["userId"], rec["activityId"]), []).append(
                (rec["timestamp"], rec["eventName"], os.path.relpath(path, source)))
    for evs in events.values():
        evs.sort()
    return events


def read_state(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_state(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")


class StateCase(Case):
    def copy_samples(self):
        dst = os.path.join(self.dir, "audit-logs")
        shutil.copytree(SAMPLES, dst)
        return dst

    def chained(self, source, state, *extra):
        """The three two-hour runs; returns their findings and reports."""
        got, reports = [], []
        for frm, to in RUNS:
            status, rep, err = verify_json(source, "--from", frm, "--to", to, "--state", state,
                                           *NOW, *extra)
            self.assertIn(status, (0, 1), err)
            got += findings(rep)
            reports.append(rep)
        return sorted(got), reports

    def one_run(self, source):
        status, rep, err = verify_json(source, "--from", RUNS[0][0], "--to", RUNS[-1][1], *NOW)
        self.assertIn(status, (0, 1), err)
        return findings(rep)

    def made_state(self, source=SAMPLES):
        """A state after the first two runs, and its bytes."""
        state = os.path.join(self.dir, "state.ndjson.gz")
        for frm, to in RUNS[:2]:
            status, _, err = verify_json(source, "--from", frm, "--to", to, "--state", state,
                                         *NOW)
            self.assertIn(status, (0, 1), err)
        with open(state, "rb") as f:
            return state, f.read()

    def assertRefused(self, state, before, text, *args):
        """The third run exits 3 naming the problem; the state is unchanged."""
        status, out, err = run("verify", SAMPLES, "--from", RUNS[2][0], "--to", RUNS[2][1],
                               "--state", state, *NOW, *args)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 3, err)
        self.assertIn(text, err)
        with open(state, "rb") as f:
            self.assertEqual(f.read(), before)
        leftovers = [n for n in os.listdir(os.path.dirname(state)) if n.endswith(".tmp")]
        self.assertEqual(leftovers, [])


class ChainTest(StateCase):
    def test_three_runs_find_what_one_run_finds(self):
        state = os.path.join(self.dir, "state.ndjson.gz")
        got, reports = self.chained(SAMPLES, state)
        self.assertEqual(got, self.one_run(SAMPLES))
        self.assertNotIn("UNKNOWN_PRIOR", [k for k, _, _ in got])
        # user901's retry at 08:00:30 repeats a change of the first run: a
        # DUPLICATE, as in one run, never a GAP or an UNKNOWN_PRIOR.
        dup = [f for f in findings(reports[1]) if f[0] == "DUPLICATE"]
        self.assertEqual(len(dup), 1)
        self.assertIn("user901", dup[0][1])

    def test_without_state_the_boundary_forgets(self):
        """The issue's symptom: each run alone calls carried items unknown."""
        status, rep, err = verify_json(SAMPLES, "--from", RUNS[1][0], "--to", RUNS[1][1],
                                       *NOW)
        self.assertIn(status, (0, 1), err)
        self.assertIn("UNKNOWN_PRIOR", [k for k, _, _ in findings(rep)])

    def lose_a_change_at_the_boundary(self, source):
        """Deletes an item's last change of the first run whose next change
        is in the second; returns (deleted key, the key carried, the GAP's key)."""
        events = records(source)
        for item, evs in sorted(events.items()):
            for k in range(1, len(evs) - 1):
                t, name, rel = evs[k]
                if (name == "MODIFY" and "T07:" in t and evs[k - 1][0] >= "2025-07-12T06"
                        and "T08:" <= evs[k + 1][0][10:14] < "T10:"
                        and evs[k + 1][1] == "MODIFY" and evs[k - 1][1] != "REMOVE"):
                    os.remove(os.path.join(source, rel))
                    return rel, evs[k - 1][2], evs[k + 1][2]
        self.fail("no item with a change to lose at 08:00 in the samples")

    def test_a_change_lost_across_the_boundary_is_a_gap(self):
        source = self.copy_samples()
        lost, carried, after = self.lose_a_change_at_the_boundary(source)
        state = os.path.join(self.dir, "state.ndjson.gz")
        got, reports = self.chained(source, state)
        self.assertEqual(got, self.one_run(source))
        gaps = [a for a in reports[1]["anomalies"] if a["kind"] == "GAP"
                and a["object"]["key"].endswith(after)]
        self.assertEqual(len(gaps), 1, reports[1]["anomalies"])
        # The detail names what the state carried: the first run's object.
        self.assertIn("carried by the state from", gaps[0]["detail"])
        self.assertIn(carried, gaps[0]["detail"])

    def test_the_state_file(self):
        state, _ = self.made_state()
        lines = read_state(state)
        head, items, trailer = lines[0], lines[1:-1], lines[-1]
        self.assertEqual(head["format"], "ddbaudit.state")
        self.assertEqual(head["version"], 1)
        self.assertEqual(head["watermark"], "2025-07-12T10:00:00.000000Z")
        self.assertEqual(head["table"]["key_schema"], ["UserId", "ActivityId"])
        self.assertEqual(trailer["items"], len(items))
        self.assertTrue(trailer["trailer"])
        self.assertEqual(len(trailer["report_sha256"]), 64)
        self.assertEqual(len(trailer["previous_report_sha256"]), 64)
        self.assertTrue(all(set(i) >= {"k", "p", "e", "t", "o", "c"} for i in items))
        # Removed items are absent and carry no digest.
        self.assertTrue(all(("d" in i) == i["p"] for i in items))

    def test_the_run_chain_links_reports(self):
        state = os.path.join(self.dir, "state.ndjson.gz")
        report = os.path.join(self.dir, "report")
        digests = []
        for frm, to in RUNS[:2]:
            status, _, err = run("verify", SAMPLES, "--from", frm, "--to", to, "--state", state,
                                 "--report", report, *NOW)
            self.assertIn(status, (0, 1), err)
            with open(os.path.join(report, "report.json"), "rb") as f:
                import hashlib
                digests.append(hashlib.sha256(f.read()).hexdigest())
            trailer = read_state(state)[-1]
            self.assertEqual(trailer["report_sha256"], digests[-1])
        self.assertEqual(trailer["previous_report_sha256"], digests[0])


class SinceStateTest(StateCase):
    def test_since_state_catches_up(self):
        state, _ = self.made_state()
        # A run at 12:20 with the default 15m settle audits 10:00 to 12:00.
        status, rep, err = verify_json(SAMPLES, "--state", state, "--since-state",
                                       "--now", "2025-07-12T12:20Z")
        self.assertIn(status, (0, 1), err)
        self.assertEqual(rep["run"]["range"]["from"], "2025-07-12T10:00:00Z")
        self.assertEqual(rep["run"]["range"]["to"], "2025-07-12T12:00:00Z")
        self.assertEqual(read_state(state)[0]["watermark"], "2025-07-12T12:00:00.000000Z")
        # Nothing new has settled: exit 0, the state untouched.
        with open(state, "rb") as f:
            before = f.read()
        status, _, err = run("verify", SAMPLES, "--state", state, "--since-state",
                             "--now", "2025-07-12T12:50Z")
        self.assertEqual(status, 0, err)
        self.assertIn("nothing to audit", err)
        with open(state, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_since_state_needs_a_state(self):
        state = os.path.join(self.dir, "none.gz")
        status, _, err = run("verify", SAMPLES, "--state", state, "--since-state")
        self.assertEqual(status, 2, err)
        self.assertIn("--from", err)
        status, _, err = run("verify", SAMPLES, "--since-state")
        self.assertEqual(status, 2, err)
        self.assertIn("--since-state needs --state", err)

    def test_a_range_before_the_watermark_is_refused(self):
        state, before = self.made_state()
        status, _, err = run("verify", SAMPLES, "--from", RUNS[0][0], "--to", RUNS[0][1],
                             "--state", state, *NOW)
        self.assertEqual(status, 2, err)
        self.assertIn("watermark 2025-07-12T10:00:00Z", err)
        with open(state, "rb") as f:
            self.assertEqual(f.read(), before)


class RefusalTest(StateCase):
    def test_corrupt_state(self):
        state, _ = self.made_state()
        with open(state, "wb") as f:
            f.write(b"this is not a state\n")
        self.assertRefused(state, b"this is not a state\n", "is not a ddbaudit state")

    def test_garbage_gzip(self):
        state, before = self.made_state()
        data = bytearray(before)
        data[len(data) // 2] ^= 0xFF
        with open(state, "wb") as f:
            f.write(bytes(data))
        self.assertRefused(state, bytes(data), "corrupt")

    def test_truncated_state(self):
        state, before = self.made_state()
        cut = before[: len(before) * 2 // 3]
        with open(state, "wb") as f:
            f.write(cut)
        self.assertRefused(state, cut, "'" + state + "'")

    def test_truncated_at_a_line(self):
        """Whole lines lost (a gzip stream that ends cleanly): the trailer says so."""
        state, _ = self.made_state()
        lines = read_state(state)
        write_state(state, lines[:-3] + lines[-1:])
        with open(state, "rb") as f:
            before = f.read()
        self.assertRefused(state, before, "counts other items")
        write_state(state, lines[:-1])
        with open(state, "rb") as f:
            before = f.read()
        self.assertRefused(state, before, "trailer is missing")

    def test_altered_item(self):
        state, _ = self.made_state()
        lines = read_state(state)
        lines[3]["p"] = not lines[3]["p"]
        write_state(state, lines)
        with open(state, "rb") as f:
            before = f.read()
        self.assertRefused(state, before, "SHA-256 does not match")

    def test_foreign_table(self):
        state, before = self.made_state()
        self.assertRefused(state, before, "belongs to another table", "--key-schema",
                           "UserId:HASH")
        lines = read_state(state)
        lines[0]["table"]["source"] = "s3://another-bucket/audit-logs"
        write_state(state, lines)
        with open(state, "rb") as f:
            before = f.read()
        self.assertRefused(state, before, "belongs to another table")

    def test_newer_version(self):
        state, _ = self.made_state()
        lines = read_state(state)
        lines[0]["version"] = 99
        write_state(state, lines)
        with open(state, "rb") as f:
            before = f.read()
        self.assertRefused(state, before, "written by a newer ddbaudit")

    def test_a_failed_run_leaves_the_state(self):
        """The reports cannot be written (report.json is a directory): exit 3,
        and the state is the one before the run."""
        state, before = self.made_state()
        report = os.path.join(self.dir, "report")
        os.makedirs(os.path.join(report, "report.json"))
        self.assertRefused(state, before, "report.json", "--report", report)

    def test_a_concurrent_run_is_refused(self):
        state, before = self.made_state()
        with open(state + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock.write("pid 4242 on testhost since 2025-07-12T12:00:00Z\n")
            lock.flush()
            self.assertRefused(state, before, "in use by another run (pid 4242 on testhost")
        # Released: the run goes ahead.
        status, _, err = run("verify", SAMPLES, "--from", RUNS[2][0], "--to", RUNS[2][1],
                             "--state", state, *NOW)
        self.assertEqual(status, 1, err)


class HoldStatePut(Rule):
    """Holds the first PUT of exactly the state object (not its lock object,
    whose name begins with the state's)."""

    def __init__(self, key):
        super().__init__("PUT", key, "hold", 1)
        self.key = key

    def applies(self, method, target):
        path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
        if method != "PUT" or not path.endswith("/" + self.key) or self.matched:
            return False
        self.matched = 1
        return True


class S3StateTest(MotoCase):
    """A state in S3: the chain works the same, the lock object refuses a
    concurrent run, the commit is conditional on the ETag read."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3.create_bucket(Bucket="audit")
        upload_tree(cls.s3, "audit", SAMPLES, "audit-logs/")
        cls.s3.create_bucket(Bucket="states")

    def aws(self):
        return ["--endpoint-url", self.moto.url]

    def state_url(self):
        return "s3://states/" + self._testMethodName + "/orders.state.gz"

    def state_key(self):
        return self._testMethodName + "/orders.state.gz"

    def run_range(self, frm, to, *extra):
        return verify_json("s3://audit/audit-logs/", "--from", frm, "--to", to, "--state",
                           self.state_url(), *self.aws(), *NOW, *extra)

    def test_chain_through_s3(self):
        # UNVERSIONED_BUCKET is about the bucket, said by every run here.
        def items(rep):
            return [f for f in findings(rep) if f[0] != "UNVERSIONED_BUCKET"]
        got = []
        for frm, to in RUNS:
            status, rep, err = self.run_range(frm, to)
            self.assertIn(status, (0, 1), err)
            got += items(rep)
        status, rep, err = verify_json("s3://audit/audit-logs/", "--from", RUNS[0][0], "--to",
                                       RUNS[-1][1], *self.aws(), *NOW)
        self.assertIn(status, (0, 1), err)
        self.assertEqual(sorted(got), items(rep))
        self.assertNotIn("UNKNOWN_PRIOR", [k for k, _, _ in got])
        body = self.s3.get_object(Bucket="states", Key=self.state_key())["Body"].read()
        lines = [json.loads(x) for x in gzip.decompress(body).decode().splitlines()]
        self.assertEqual(lines[0]["watermark"], "2025-07-12T12:00:00.000000Z")
        self.assertEqual(lines[-1]["bucket"]["versioning"] in ("Disabled", "unknown", ""), True)
        # The lock object is gone once the runs ended.
        listed = self.s3.list_objects_v2(Bucket="states", Prefix=self._testMethodName)
        self.assertEqual([o["Key"] for o in listed.get("Contents", [])], [self.state_key()])

    def test_a_concurrent_run_is_refused(self):
        status, _, err = self.run_range(*RUNS[0])
        self.assertIn(status, (0, 1), err)
        before = self.s3.get_object(Bucket="states", Key=self.state_key())["Body"].read()
        # Another run holds the lock object.
        self.s3.put_object(Bucket="states", Key=self.state_key() + ".lock",
                           Body=b"pid 4242 on otherhost since 2025-07-13T02:15:00Z\n")
        status, out, err = run("verify", "s3://audit/audit-logs/", "--from", RUNS[1][0],
                               "--to", RUNS[1][1], "--state", self.state_url(), *self.aws(),
                               *NOW)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 3, err)
        self.assertIn("in use by another run (pid 4242 on otherhost", err)
        self.assertIn(self.state_key() + ".lock", err)
        after = self.s3.get_object(Bucket="states", Key=self.state_key())["Body"].read()
        self.assertEqual(after, before)
        # The holder's lock is not ours to remove.
        self.s3.head_object(Bucket="states", Key=self.state_key() + ".lock")
        self.s3.delete_object(Bucket="states", Key=self.state_key() + ".lock")
        status, _, err = self.run_range(*RUNS[1])
        self.assertIn(status, (0, 1), err)

    def test_two_runs_that_read_the_same_state_cannot_both_commit(self):
        """The conditional PUT behind the lock: run A reads the state (ETag E)
        and is held by a proxy at its commit; its lock object is removed (an
        operator who took it for a stale one); run B reads the same state,
        commits with If-Match E and ends; then A's commit, with If-Match E
        too, gets 412: A exits 3 saying so, and B's state stays."""
        status, _, err = self.run_range(*RUNS[0])
        self.assertIn(status, (0, 1), err)
        etag = self.s3.head_object(Bucket="states", Key=self.state_key())["ETag"]
        proxy = FaultProxy(self.moto.url)
        self.addCleanup(proxy.stop)
        hold = HoldStatePut(self.state_key())
        proxy.rules.append(hold)
        self.addCleanup(hold.release.set)
        args = ["verify", "s3://audit/audit-logs/", "--from", RUNS[1][0], "--to", RUNS[1][1],
                "--state", self.state_url(), *NOW, "--format", "json"]
        a = subprocess.Popen([BINARY, *args, "--endpoint-url", proxy.url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: a.poll() is None and a.kill())
        self.assertTrue(hold.arrived.wait(120), "run A never committed its state")
        self.assertIsNone(a.poll())
        # A has read E and written its reports: its lock is there, the state is E.
        self.s3.head_object(Bucket="states", Key=self.state_key() + ".lock")
        self.assertEqual(self.s3.head_object(Bucket="states", Key=self.state_key())["ETag"],
                         etag)
        self.s3.delete_object(Bucket="states", Key=self.state_key() + ".lock")

        status, out, err = run(*args, *self.aws())
        self.assertIn(status, (0, 1), err)
        b_state = self.s3.get_object(Bucket="states", Key=self.state_key())
        self.assertNotEqual(b_state["ETag"], etag)
        b_bytes = b_state["Body"].read()

        hold.release.set()
        _, a_err = a.communicate(timeout=120)
        a_err = a_err.decode("utf-8", "replace")
        self.assertNoCrash(a.returncode, a_err)
        self.assertEqual(a.returncode, 3, a_err)
        self.assertIn("the state '" + self.state_url() + "' changed since this run read it "
                      "(another run wrote it): this run's state is not written", a_err)
        # A sent its PUT once, through the proxy: S3 (moto) answered it 412.
        puts = [p for m, p, _ in proxy.log if m == "PUT" and p.endswith("/" + self.state_key())]
        self.assertEqual(len(puts), 1)
        after = self.s3.get_object(Bucket="states", Key=self.state_key())
        self.assertEqual(after["ETag"], b_state["ETag"])
        self.assertEqual(after["Body"].read(), b_bytes)
        lines = [json.loads(x) for x in gzip.decompress(b_bytes).decode().splitlines()]
        self.assertEqual(lines[0]["watermark"], "2025-07-12T10:00:00.000000Z")
        # The chain goes on from B's state.
        status, _, err = self.run_range(*RUNS[2])
        self.assertIn(status, (0, 1), err)

    def test_a_corrupt_state_in_s3_is_refused(self):
        self.s3.put_object(Bucket="states", Key=self.state_key(), Body=b"garbage\n")
        status, _, err = run("verify", "s3://audit/audit-logs/", "--from", RUNS[0][0], "--to",
                             RUNS[0][1], "--state", self.state_url(), *self.aws(), *NOW)
        self.assertEqual(status, 3, err)
        self.assertIn("is not a ddbaudit state", err)
        body = self.s3.get_object(Bucket="states", Key=self.state_key())["Body"].read()
        self.assertEqual(body, b"garbage\n")


if __name__ == "__main__":
    main()
