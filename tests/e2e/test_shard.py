"""Shards (--shard K/N, --shard auto): every object of the seed layout is read
by exactly one shard (checked on a directory from the manifests, and on S3
from the requests the server received), each shard's report carries the
spec, and `ddbaudit merge` joins the shards' reports into the report and
manifest one run would have written, refusing shards that do not belong
together."""
import json
import os
import shutil
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
                self.assertIn(status, (0, 1), err)
                sh = report(out)["shard"]
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
