"""Shards (--shard K/N, --shard auto): every object of the seed layout is read
by exactly one shard (checked on a directory from the manifests, and on S3
from the requests the server received), each shard's report carries the
spec, and `ddbaudit merge` joins the shards' reports into the report and
manifest one run would have written, refusing shards that do not belong
together."""
import json
import os
import random
import re
import shutil
from datetime import datetime, timedelta
from harness import ROOT, main, run
from moto import MotoCase, upload_tree

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
NOW = "2025-07-13T00:00Z"


def manifest(d):
    with open(os.path.join(d, "manifest.ndjson"), "rb") as f:
        return f.read().splitlines()


def without_listing(line):
    """A shard's manifest line as one run writes it: "listing" comes last."""
    obj = json.loads(line)
    del obj["listing"]
    return obj


def report(d):
    with open(os.path.join(d, "report.json")) as f:
        return json.load(f)


# The run's own metadata: when and how it was run, not what it found.
METADATA = ("started", "finished", "generated_at", "command_line", "caller", "host", "tool",
            "memory")


def comparable(d):
    """A report directory's files with the run's metadata taken out."""
    rep = report(d)
    for k in METADATA:
        rep["run"].pop(k, None)
    out = {"report.json": rep}
    for name in ("anomalies.csv", "manifest.ndjson"):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = f.read()
    meta = re.compile(rb"generated_at|command_line|Command line|Generated|commit|Caller|caller"
                      rb"|Memory|<th>(started|finished|host|account|arn|user_id|status|reason)</th>"
                      rb"|<th>(memory|limit|limit_source)</th>")
    for name in ("report.md", "report.html"):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = [x for x in f.read().splitlines() if not meta.search(x)]
    return out


def record(t, event, user, act, old=None, new=None):
    rec = {"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%f"), "eventName": event,
           "userId": user, "activityId": act, "awsRegion": "us-east-1",
           "eventSource": "aws:dynamodb"}
    if old is not None:
        rec["oldImage"] = old
    if new is not None:
        rec["newImage"] = new
    return rec


def image(user, act, v, amount="1"):
    return {"UserId": {"S": user}, "ActivityId": {"S": act}, "Version": {"N": str(v)},
            "Amount": {"N": amount}}


def generated_world(root, items=60, seed=14):
    """A log of `items` items over 06:00-14:00 with damage of every kind a
    shard must keep straight: a lost change (GAP), a re-delivered change in the
    next hour (DUPLICATE), an item first seen with a MODIFY (UNKNOWN_PRIOR), a
    truncated object (UNREADABLE), a bad number (INVALID_VALUE), an empty hour,
    and an object outside the hour layout holding several items' changes (read
    by every shard)."""
    rnd = random.Random(seed)
    base = datetime(2025, 7, 12, 6, 0)
    files = {}

    def put(t, user, act, rec, raw=None):
        rel = f"audit-logs/{t:%Y/%m/%d/%H}/{user}-{act}.json"
        files[rel] = raw if raw is not None else json.dumps(rec).encode()

    for i in range(items):
        user, act = f"user{i}", f"act{i % 7}"
        t = base + timedelta(minutes=rnd.randint(0, 55), seconds=rnd.random())
        n = rnd.randint(1, 6)
        prev = None
        for v in range(n):
            if t.hour == 11:  # an hour without objects: MISSING_HOUR with --expect-every
                t += timedelta(hours=1)
            new = image(user, act, v, str(rnd.randint(1, 999)))
            if v == 0 and i % 13 == 5:
                rec = record(t, "MODIFY", user, act, image(user, act, -1), new)
            elif v == 0:
                rec = record(t, "INSERT", user, act, None, new)
            elif v == n - 1 and i % 4 == 0:
                rec, new = record(t, "REMOVE", user, act, prev, None), None
            else:
                rec = record(t, "MODIFY", user, act, prev, new)
            if i % 11 == 3 and v == 2:
                pass  # lost: the next change's old image is not the state
            elif i % 17 == 9 and v == n - 1:
                put(t, user, act, rec, json.dumps(rec).encode()[:40])
            elif i % 19 == 7 and v == 1 and new is not None:
                new["Amount"] = {"N": "1.2.3"}
                put(t, user, act, rec)
            else:
                put(t, user, act, rec)
            if i % 10 == 6 and v == 1 and t.hour < 13:
                put(t + timedelta(hours=1), user, act, rec)  # re-delivered
            prev = new
            t += timedelta(minutes=rnd.randint(61, 80))
    extra = [record(base + timedelta(minutes=5 + k), "INSERT", f"batch{k}", "x", None,
                    image(f"batch{k}", "x", 0)) for k in range(6)]
    files["audit-logs/unfiled/batch.ndjson"] = b"".join(json.dumps(r).encode() + b"\n"
                                                        for r in extra)
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return os.path.join(root, "audit-logs")


class ShardCase(MotoCase):
    def verify(self, source, out, *extra, env=None):
        args = ["verify", source, "--now", NOW, "--report", out, "-q", *extra]
        if env is None:
            return run(*args)
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            return run(*args)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def shards(self, source, n, *extra):
        outs = []
        for k in range(n):
            out = os.path.join(self.dir, f"s{k}of{n}")
            status, _, err = self.verify(source, out, "--shard", f"{k}/{n}", *extra)
            self.assertIn(status, (0, 1), err)
            outs.append(out)
        return outs

    def check_partition(self, source, n, *extra):
        """The shards' manifests split one run's manifest: each object once."""
        single = os.path.join(self.dir, "single")
        status, _, err = self.verify(source, single, *extra)
        self.assertIn(status, (0, 1), err)
        whole = [json.loads(x) for x in manifest(single)]
        seen = {}
        listing = None
        for k, out in enumerate(self.shards(source, n, *extra)):
            rep = report(out)
            sh = rep["shard"]
            self.assertEqual((sh["index"], sh["count"]), (k, n))
            self.assertEqual(sh["listed"], len(whole))
            self.assertEqual(sh["read"] + sh["other_shards"], len(whole))
            listing = listing or sh["listing_sha256"]
            self.assertEqual(sh["listing_sha256"], listing, "shards listed differently")
            for line in manifest(out):
                obj = json.loads(line)
                self.assertNotIn(obj["listing"], seen, f"{obj['key']} read by two shards")
                seen[obj["listing"]] = without_listing(line)
        self.assertEqual([seen[i] for i in sorted(seen)], whole)
        return whole


class MergeTest(ShardCase):
    def merge(self, dirs, out, *extra):
        return run("merge", *dirs, "--report", out, *extra)

    def check_merge(self, source, n, *extra):
        single = os.path.join(self.dir, f"single{n}")
        status, _, err = self.verify(source, single, *extra)
        self.assertIn(status, (0, 1), err)
        outs = [os.path.join(self.dir, f"m{n}s{k}") for k in range(n)]
        for k, out in enumerate(outs):
            status_k, _, err = self.verify(source, out, "--shard", f"{k}/{n}", *extra)
            self.assertIn(status_k, (0, 1), err)
            self.assertEqual([f["kind"] for f in report(out)["shard"]["findings"]
                              if f["kind"] == "SHARD_SPLIT"], [])
        merged = os.path.join(self.dir, f"merged{n}")
        got, _, err = self.merge(list(reversed(outs)), merged)
        self.assertEqual(got, status, err)
        want, have = comparable(single), comparable(merged)
        for name in want:
            self.assertEqual(have[name], want[name], f"{name} differs from one run's (N={n})")
        return report(merged)

    def test_merged_equals_one_run_on_a_directory(self):
        source = generated_world(self.path("world"))
        extra = ("--from", "2025-07-12T06:00Z", "--to", "2025-07-12T14:00Z",
                 "--expect-every", "1h")
        kinds = set()
        for n in (1, 3, 8):
            with self.subTest(n=n):
                rep = self.check_merge(source, n, *extra)
                kinds |= {a["kind"] for a in rep["anomalies"]}
        self.assertTrue({"GAP", "DUPLICATE", "UNKNOWN_PRIOR", "UNREADABLE", "INVALID_VALUE",
                         "MISSING_HOUR"} <= kinds, kinds)

    def test_merged_equals_one_run_on_s3(self):
        self.s3.create_bucket(Bucket="world")
        upload_tree(self.s3, "world", generated_world(self.path("world")), "audit-logs/")
        for n in (1, 3, 8):
            with self.subTest(n=n):
                self.check_merge("s3://world/audit-logs/", n, "--endpoint-url", self.proxy.url,
                                 "--from", "2025-07-12T06:00Z", "--to", "2025-07-12T14:00Z")

    def test_one_format_on_stdout(self):
        outs = self.shards(SAMPLES, 2)
        merged = self.path("merged")
        self.assertEqual(self.merge(outs, merged)[0], 1)
        status, out, err = run("merge", *outs, "--format", "csv", "--fail-on", "never")
        self.assertEqual(status, 0, err)
        with open(os.path.join(merged, "anomalies.csv"), "rb") as f:
            self.assertEqual(out, f.read())

    def test_an_empty_range_is_decided_by_merge(self):
        extra = ("--from", "2025-08-01T00:00Z", "--to", "2025-08-02T00:00Z")
        outs = self.shards(SAMPLES, 3, *extra)
        for out in outs:
            self.assertNotIn("EMPTY_RANGE", [a["kind"] for a in report(out)["anomalies"]])
        status, _, err = self.merge(outs, self.path("merged"))
        self.assertEqual(status, 1, err)
        self.assertEqual([a["kind"] for a in report(self.path("merged"))["anomalies"]],
                         ["EMPTY_RANGE"])

    def test_a_record_filed_under_another_shard_s_name_is_checked_again(self):
        """Damage 4 of the samples: user904's INSERT in user903-act1.json. The
        shard of user903-act1.json says SHARD_SPLIT; merge reads the item's
        objects again and the merged report is one run's, on a directory and
        on S3."""
        self.s3.create_bucket(Bucket="split")
        upload_tree(self.s3, "split", SAMPLES, "audit-logs/")
        for source, extra in ((SAMPLES, ()),
                              ("s3://split/audit-logs/", ("--endpoint-url", self.proxy.url))):
            single = self.path("single", source.replace("/", "_"))
            status, _, err = self.verify(source, single, *extra)
            self.assertEqual(status, 1, err)
            for n in (3, 8):
                with self.subTest(source=source, n=n):
                    outs = []
                    for k in range(n):
                        out = self.path(f"split{n}", source.replace("/", "_"), str(k))
                        self.assertIn(self.verify(source, out, "--shard", f"{k}/{n}",
                                                  *extra)[0], (0, 1))
                        outs.append(out)
                    kinds = [f["kind"] for o in outs for f in report(o)["shard"]["findings"]]
                    self.assertEqual(kinds.count("SHARD_SPLIT"), 1)
                    merged = self.path(f"merged{n}", source.replace("/", "_"))
                    got, _, err = self.merge(outs, merged, *extra)
                    self.assertEqual(got, 1, err)
                    want, have = comparable(single), comparable(merged)
                    for name in want:
                        self.assertEqual(have[name], want[name], f"{name} (N={n})")

    def test_a_split_item_stays_named_when_the_source_is_gone(self):
        source = self.path("copy")
        shutil.copytree(SAMPLES, source)
        outs = self.shards(source, 3)
        shutil.rmtree(source)
        merged = self.path("merged")
        status, _, err = self.merge(outs, merged)
        self.assertEqual(status, 1, err)
        self.assertIn("SHARD_SPLIT findings stay", err)
        splits = [a for a in report(merged)["anomalies"] if a["kind"] == "SHARD_SPLIT"]
        self.assertEqual(len(splits), 1)
        self.assertEqual(splits[0]["item"]["UserId"], {"S": "user904"})
        self.assertTrue(splits[0]["object"]["key"].endswith("user903-act1.json"))

    def test_refusals(self):
        outs = self.shards(SAMPLES, 3)
        other = self.shards(SAMPLES, 2)
        ranged = os.path.join(self.dir, "ranged")
        status, _, err = self.verify(SAMPLES, ranged, "--shard", "2/3",
                                     "--from", "2025-07-12T08:00Z")
        self.assertIn(status, (0, 1), err)
        cases = [
            (outs[:2], 3, "shard 2 of 3 is missing"),
            (outs + [outs[1]], 2, "shard 1 of 3 is given twice"),
            (outs[:2] + [other[1]], 2, "shard counts"),
            (outs[:2] + [ranged], 2, "ranges"),
            (outs[:2] + [self.path("nothing")], 2, "nothing"),
        ]
        # A directory that is neither a shard's report nor holds shard-K-of-N/.
        empty = os.path.join(self.dir, "emptyrun")
        os.makedirs(os.path.join(empty, "merged"))
        cases.append((outs[:2] + [empty], 2, "emptyrun"))
        single = self.path("single")
        self.verify(SAMPLES, single)
        cases.append((outs[:2] + [single], 2, "not the report of a shard"))
        for dirs, want_status, want in cases:
            with self.subTest(want=want):
                out = self.path("m", want.replace(" ", "_"))
                status, _, err = self.merge(dirs, out)
                self.assertEqual(status, want_status, err)
                self.assertIn(want, err)
                self.assertFalse(os.path.exists(os.path.join(out, "report.json")))

    def test_a_changed_listing_is_refused(self):
        source = self.path("copy")
        shutil.copytree(SAMPLES, source)
        outs = [os.path.join(self.dir, "c0")]
        self.assertIn(self.verify(source, outs[0], "--shard", "0/2")[0], (0, 1))
        os.remove(os.path.join(source, "2025", "07", "12", "06", os.listdir(
            os.path.join(source, "2025", "07", "12", "06"))[0]))
        outs.append(os.path.join(self.dir, "c1"))
        self.assertIn(self.verify(source, outs[1], "--shard", "1/2")[0], (0, 1))
        status, _, err = self.merge(outs, self.path("m"))
        self.assertEqual(status, 2, err)
        self.assertIn("listings", err)

    def test_an_incomplete_shard_makes_an_incomplete_merge(self):
        outs = self.shards(SAMPLES, 2)
        rep = report(outs[1])
        rep["run"]["complete"] = False
        rep["run"]["verdict"] = "incomplete"
        rep["run"]["error"] = "cannot read s3://b/k: connection reset"
        with open(os.path.join(outs[1], "report.json"), "w") as f:
            json.dump(rep, f)
        merged = self.path("merged")
        status, _, err = self.merge(outs, merged)
        self.assertEqual(status, 3, err)
        self.assertIn("shard 1 of 2", err)
        run_ = report(merged)["run"]
        self.assertEqual(run_["verdict"], "incomplete")
        self.assertIn("connection reset", run_["error"])


class ShardTest(ShardCase):
    def test_each_object_read_by_one_shard_on_a_directory(self):
        for n in (1, 3, 8):
            with self.subTest(n=n):
                self.check_partition(SAMPLES, n)
                shutil.rmtree(self.dir)
                os.makedirs(self.dir)

    def test_each_object_fetched_by_one_shard_on_s3(self):
        self.s3.create_bucket(Bucket="shards")
        count = upload_tree(self.s3, "shards", SAMPLES, "audit-logs/")
        source = "s3://shards/audit-logs/"
        extra = ("--endpoint-url", self.proxy.url)
        gets = {}
        for k in range(3):
            self.proxy.reset()
            status, _, err = self.verify(source, os.path.join(self.dir, f"s{k}"),
                                         "--shard", f"{k}/3", *extra)
            self.assertIn(status, (0, 1), err)
            for method, path, query in self.proxy.log:
                if method == "GET" and "list-type" not in query and "versioning" not in query \
                        and path.startswith("/shards/audit-logs/"):
                    gets.setdefault(path, set()).add(k)  # GAP diffs read again
        self.assertEqual(len(gets), count, "some object was never fetched")
        twice = {p: ks for p, ks in gets.items() if len(ks) != 1}
        self.assertEqual(twice, {}, "objects fetched by more than one shard")

    def test_shard_auto_from_the_array_job_index(self):
        for var in ("AWS_BATCH_JOB_ARRAY_INDEX", "JOB_COMPLETION_INDEX"):
            with self.subTest(var=var):
                out = os.path.join(self.dir, var)
                env = {"AWS_BATCH_JOB_ARRAY_INDEX": "", "JOB_COMPLETION_INDEX": "", var: "2"}
                status, _, err = self.verify(SAMPLES, out, "--shard", "auto",
                                             "--shard-count", "3", env=env)
                # Every child gets the same arguments, so each writes its
                # own directory inside --report's; findings are merge's to
                # judge: a shard that read its share exits 0.
                self.assertEqual(status, 0, err)
                self.assertEqual(os.listdir(out), ["shard-2-of-3"])
                sh = report(os.path.join(out, "shard-2-of-3"))["shard"]
                self.assertEqual((sh["index"], sh["count"]), (2, 3))

    def test_usage_errors(self):
        out = os.path.join(self.dir, "x")
        cases = [
            (["--shard", "3/3"], {}, "not below the count"),
            (["--shard", "1"], {}, "invalid --shard"),
            (["--shard", "a/3"], {}, "invalid --shard"),
            (["--shard", "0/0"], {}, "invalid --shard"),
            (["--shard", "auto"], {"AWS_BATCH_JOB_ARRAY_INDEX": "1"}, "needs --shard-count"),
            (["--shard", "auto", "--shard-count", "4"],
             {"AWS_BATCH_JOB_ARRAY_INDEX": "", "JOB_COMPLETION_INDEX": ""}, "neither is set"),
            (["--shard", "auto", "--shard-count", "4"],
             {"AWS_BATCH_JOB_ARRAY_INDEX": "1", "JOB_COMPLETION_INDEX": "2"}, "unset the one"),
            (["--shard", "auto", "--shard-count", "4"],
             {"AWS_BATCH_JOB_ARRAY_INDEX": "4", "JOB_COMPLETION_INDEX": ""}, "not below"),
            (["--shard", "auto", "--shard-count", "4"],
             {"AWS_BATCH_JOB_ARRAY_INDEX": "x", "JOB_COMPLETION_INDEX": ""}, "not a shard index"),
            (["--shard-count", "4"], {}, "goes with --shard auto"),
            (["--shard", "1/3", "--shard-count", "4"], {}, "disagree"),
            (["--shard", "1/3", "--state", os.path.join(self.dir, "st.gz")], {}, "--state"),
        ]
        for args, env, want in cases:
            with self.subTest(args=args, env=env):
                status, _, err = self.verify(SAMPLES, out, *args, env=env)
                self.assertEqual(status, 2, err)
                self.assertIn(want, err)
                self.assertFalse(os.path.exists(os.path.join(out, "report.json")))


if __name__ == "__main__":
    main()
