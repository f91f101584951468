#!/usr/bin/env python3
"""--memory-limit: an event table spilled to disk in sorted runs and merged
back gives the report an unlimited run gives, byte for byte outside the run
metadata, on the samples and on a generated world with every kind of damage
(gaps, duplicates, ties on time and on sequence number, REMOVEs, re-inserts,
one object holding several records); so do the state, `history` and
`restore`. A tmp dir that cannot be written makes the run incomplete
(exit 3) with a message naming it."""
import datetime as dt
import gzip
import json
import os
import random
import resource
import signal
import subprocess

from harness import BINARY, ROOT, Case, main, run

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
START = dt.datetime(2025, 7, 12, 0, 0, 0)
NOW = "2025-07-20T00:00Z"
# Small enough that a world of a few thousand events spills dozens of runs.
TINY = "24K"
SMALL = "256K"


def image(rng, user, act, version):
    return {"UserId": {"S": user}, "ActivityId": {"S": act}, "Version": {"N": str(version)},
            "Amount": {"N": str(rng.randrange(1, 10000))},
            "Tags": {"SS": rng.sample(["a", "b", "c", "d", "e"], 2)}}


def seed(when, name, user, act, old, new):
    rec = {"timestamp": when.isoformat(timespec="microseconds"), "eventName": name,
           "userId": user, "activityId": act, "awsRegion": "us-east-1",
           "eventSource": "aws:dynamodb"}
    if old is not None:
        rec["oldImage"] = old
    if new is not None:
        rec["newImage"] = new
    return rec


def stream(when, name, seq, user, act, old, new):
    db = {"ApproximateCreationDateTime": int(when.replace(tzinfo=dt.timezone.utc).timestamp()),
          "Keys": {"UserId": {"S": user}, "ActivityId": {"S": act}}, "SequenceNumber": seq,
          "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if old is not None:
        db["OldImage"] = old
    if new is not None:
        db["NewImage"] = new
    return {"eventID": seq, "eventName": name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": db}


def world(seed_items=300, stream_items=60, rng_seed=14):
    """{object key: [records]} of a damaged log, and every record in time
    order (for the NDJSON form)."""
    rng = random.Random(rng_seed)
    objects, flat = {}, []

    def put(key, rec, when):
        objects.setdefault(key, []).append(rec)
        flat.append((when, len(flat), rec))

    for i in range(seed_items):
        user, act = f"user{i:04d}", f"act-{i % 13}"
        h0, old, present = rng.randrange(24), None, False
        for k in range(rng.randrange(3, 26)):
            when = START + dt.timedelta(hours=h0 + k, seconds=rng.randrange(60, 3500))
            key = f"audit-logs/{when:%Y/%m/%d/%H}/{user}-{act}.json"
            roll = rng.random()
            if not present:
                name, new = "INSERT", image(rng, user, act, k + 1)
                old = None if roll > 0.05 else old  # a DOUBLE_INSERT now and then
            elif roll < 0.08:
                name, new = "REMOVE", None
            else:
                name, new = "MODIFY", image(rng, user, act, k + 1)
            if roll > 0.97 and not present:
                name = "MODIFY"  # MODIFY_AFTER_REMOVE / UNKNOWN_PRIOR
            rec = seed(when, name, user, act, old if name != "INSERT" else None, new)
            lost = rng.random() < 0.04  # the next change shows a GAP
            if not lost:
                put(key, rec, when)
                if rng.random() < 0.04:
                    put(key, rec, when)  # written twice: DUPLICATE
            if name == "MODIFY" and not lost and rng.random() < 0.06:
                # Two changes at the same time, the later one first (in the
                # object and in the stream): taken in chain order.
                nxt = image(rng, user, act, 100 + k)
                tie = seed(when, "MODIFY", user, act, new, nxt)
                objects[key].insert(0, tie)
                flat.append((when, -len(flat), tie))
                new = nxt
            old, present = new, name != "REMOVE"
    seq = 10**20
    for i in range(stream_items):
        user, act = f"streamer{i:03d}", "s"
        old = None
        for k in range(rng.randrange(2, 15)):
            seq += rng.randrange(1, 1000)
            when = START + dt.timedelta(hours=rng.randrange(30), seconds=rng.randrange(3600))
            name = "INSERT" if k == 0 else "MODIFY"
            new = image(rng, user, act, k)
            rec = stream(when, name, str(seq), user, act, old, new)
            key = f"audit-logs/{when:%Y/%m/%d/%H}/stream-{i % 7}.json"
            put(key, rec, when)
            if rng.random() < 0.1:
                put(key, rec, when)  # the same sequence number again
            old = new
    flat.sort(key=lambda t: (t[0], t[1]))
    return objects, [r for _, _, r in flat]


def write_world(base, objects):
    for key, recs in objects.items():
        path = os.path.join(base, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        streams = [r for r in recs if "dynamodb" in r]
        seeds = [r for r in recs if "dynamodb" not in r]
        with open(path, "w") as f:
            if streams:
                f.write(json.dumps({"Records": streams}))
            for r in seeds:
                f.write(json.dumps(r) + "\n")


def without_run_lines(md):
    return [line for line in md.decode().splitlines()
            if not line.startswith(("- Generated at", "- Command line", "- Memory"))]


class SpillTest(Case):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.world_tmp = tempfile.TemporaryDirectory()
        objects, flat = world()
        cls.world = os.path.join(cls.world_tmp.name, "w", "audit-logs")
        write_world(os.path.dirname(cls.world), objects)
        cls.ndjson = os.path.join(cls.world_tmp.name, "world.ndjson")
        with open(cls.ndjson, "w") as f:
            for r in flat:
                if "dynamodb" not in r:
                    f.write(json.dumps(r) + "\n")
        cls.events = sum(len(v) for v in objects.values())

    @classmethod
    def tearDownClass(cls):
        cls.world_tmp.cleanup()

    def verify(self, source, out, *extra, stdin=None):
        status, _, err = run("verify", source, "--report", out, "--now", NOW, "-q", *extra,
                             stdin=stdin)
        self.assertNoCrash(status, err)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        return status, rep, err

    def assertSameReports(self, a, b):
        with open(os.path.join(a, "report.json")) as fa, \
                open(os.path.join(b, "report.json")) as fb:
            ra, rb = json.load(fa), json.load(fb)
        ra.pop("run")
        rb.pop("run")
        self.assertEqual(ra, rb)
        for name in ("anomalies.csv", "manifest.ndjson"):
            with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), name)
        with open(os.path.join(a, "report.md"), "rb") as fa, \
                open(os.path.join(b, "report.md"), "rb") as fb:
            self.assertEqual(without_run_lines(fa.read()), without_run_lines(fb.read()))

    def compare(self, source, limit, *extra, stdin=None, min_runs=2):
        base, spilled = self.path("base", "x"), self.path("spilled", "x")
        s1, r1, e1 = self.verify(source, os.path.dirname(base), "--memory-limit", "off", *extra,
                                 stdin=stdin)
        s2, r2, e2 = self.verify(source, os.path.dirname(spilled), "--memory-limit", limit,
                                 "--tmp-dir", self.dir, *extra, stdin=stdin)
        self.assertEqual((s1, s2), (1, 1), e1 + e2)
        self.assertIsNone(r1["run"]["memory"]["limit"])
        self.assertEqual(r1["run"]["memory"]["spilled"]["runs"], 0)
        spill = r2["run"]["memory"]["spilled"]
        self.assertEqual(r2["run"]["memory"]["limit_source"], "option")
        self.assertGreaterEqual(spill["runs"], min_runs, spill)
        self.assertGreater(spill["bytes"], 0)
        self.assertAlmostEqual(spill["events"], r1["summary"]["valid"],
                               delta=r1["summary"]["valid"] // 2)
        self.assertSameReports(os.path.dirname(base), os.path.dirname(spilled))
        # Nothing is left behind in the tmp dir: runs live in unlinked files.
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith("ddbaudit-spill")], [])
        return r1, spill

    def test_samples(self):
        rep, spill = self.compare(SAMPLES, "4K")
        self.assertGreater(rep["summary"]["anomalies"]["error"], 0)

    def test_world_directory_two_threads(self):
        rep, spill = self.compare(self.world, TINY, "--threads", "2")
        kinds = {a["kind"] for a in rep["anomalies"]}
        for k in ("GAP", "DUPLICATE", "DOUBLE_INSERT", "UNKNOWN_PRIOR"):
            self.assertIn(k, kinds)
        self.assertGreater(rep["summary"]["events"]["REMOVE"], 0)

    def test_world_directory_one_thread(self):
        self.compare(self.world, SMALL, "--threads", "1")

    def test_world_directory_many_runs(self):
        """One thread spills at the same events every time: more runs than
        are merged at once, so some are merged into fewer first."""
        self.compare(self.world, "12K", "--threads", "1", min_runs=65)

    def test_world_ndjson_file(self):
        self.compare(self.ndjson, TINY)

    def test_world_ndjson_stdin(self):
        with open(self.ndjson, "rb") as f:
            data = f.read()
        self.compare("-", SMALL, stdin=data)

    def test_state_identical(self):
        states = []
        for limit in ("off", TINY):
            st = self.path(f"state-{limit}.gz")
            out = self.path(f"st-{limit}", "x")
            status, _, err = run("verify", self.world, "--from", "2025-07-12", "--to",
                                 "2025-07-14", "--state", st, "--report", os.path.dirname(out),
                                 "--now", NOW, "--memory-limit", limit, "--tmp-dir", self.dir,
                                 "-q")
            self.assertEqual(status, 1, err)
            with gzip.open(st, "rb") as f:
                lines = f.read().splitlines()
            # The header and trailer carry the run (its report's digest,
            # times); every item line must be the same.
            items = [ln for ln in lines if ln.startswith(b'{"k":')]
            self.assertGreater(len(items), 300)
            states.append(items)
        self.assertEqual(states[0], states[1])

    def test_history_identical(self):
        outs = []
        for limit in ("off", "8K"):
            status, out, err = run("history", self.world, "--key",
                                   "UserId=user0007,ActivityId=act-7", "--format", "json",
                                   "--memory-limit", limit, "--tmp-dir", self.dir)
            self.assertNoCrash(status, err)
            outs.append(out)
        self.assertEqual(outs[0], outs[1])
        self.assertGreater(len(json.loads(outs[0])["events"]), 2)

    def test_restore_identical(self):
        outs = []
        for limit in ("off", TINY):
            status, out, err = run("restore", self.world, "--at", "2025-07-13T06:00Z", "--to",
                                   "-", "--memory-limit", limit, "--tmp-dir", self.dir, "-q")
            self.assertNoCrash(status, err)
            outs.append(out)
        self.assertEqual(outs[0], outs[1])
        self.assertGreater(outs[0].count(b"\n"), 100)

    def test_tmp_dir_missing_is_incomplete(self):
        missing = os.path.join(self.dir, "no", "such", "dir")
        status, rep, err = self.verify(self.world, self.path("r", "x").rsplit("/", 1)[0],
                                       "--memory-limit", TINY, "--tmp-dir", missing)
        self.assertEqual(status, 3, err)
        self.assertIn(missing, err)
        self.assertFalse(rep["run"]["complete"])
        self.assertIn(missing, rep["run"]["error"])

    def test_tmp_dir_is_a_file(self):
        f = self.write("plain-file", "x")
        status, rep, err = self.verify(self.world, self.path("r", "x").rsplit("/", 1)[0],
                                       "--memory-limit", TINY, "--tmp-dir", f)
        self.assertEqual(status, 3, err)
        self.assertIn(f, err)
        self.assertFalse(rep["run"]["complete"])

    def test_disk_full_is_incomplete(self):
        """Writes past RLIMIT_FSIZE fail with EFBIG, as a full disk fails
        with ENOSPC: the first spill fails; the report (on stdout, a pipe,
        which the limit does not bind) is incomplete and says where. The
        limit is a byte, so that the spill fails whenever it happens: how
        many runs are written before a larger limit is passed depends on
        when the histories pass their budget, which timing moves."""
        def limit_files():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))
        p = subprocess.run([BINARY, "verify", self.world, "--format", "json", "--now", NOW,
                            "--memory-limit", TINY, "--tmp-dir", self.dir, "-q"],
                           capture_output=True, preexec_fn=limit_files, timeout=600)
        err = p.stderr.decode()
        self.assertNoCrash(p.returncode, err)
        self.assertEqual(p.returncode, 3, err)
        self.assertIn(f"'{self.dir}'", err)
        self.assertIn("File too large", err)
        rep = json.loads(p.stdout)
        self.assertFalse(rep["run"]["complete"])
        self.assertIn(self.dir, rep["run"]["error"])

    def test_bad_limit_is_usage_error(self):
        for bad in ("12Q", "-5", "", "1.5G", "99999999999T"):
            status, out, err = run("verify", SAMPLES, "--memory-limit", bad)
            self.assertEqual(status, 2, (bad, err))
            self.assertIn("--memory-limit", err)
        status, out, err = run("ls", SAMPLES, "--memory-limit", "1G")
        self.assertEqual(status, 2, err)

    def test_default_limit_reported(self):
        status, rep, err = self.verify(SAMPLES, self.path("d", "x").rsplit("/", 1)[0])
        mem = rep["run"]["memory"]
        self.assertIn(mem["limit_source"], ("cgroup", "memtotal"))
        self.assertGreater(mem["limit"], 1 << 20)
        self.assertEqual(mem["spilled"]["runs"], 0)


if __name__ == "__main__":
    main()
