"""`ddbaudit replay --shard K/N`: N shards replaying into one target send
what one unsharded replay sends (the same records by eventID, byte for byte
apart from SequenceNumber, every item's records in the same order), with
SequenceNumbers unique across the shards; on S3 every object of the hour
layout is fetched by one shard only; a shard stopped mid-run resumes from
its own checkpoint ({shard} in --checkpoint) and sends each record once; a
checkpoint resumed as another shard is refused; DLQ lines and the report
name the shard; a record filed under another shard's item is named, never
silently dropped; the spool goes to --tmp-dir."""
import json
import os
import re
import signal
import subprocess
from harness import BINARY, ROOT, main
from moto import MotoCase, upload_tree
from target_server import TargetServer
from test_shard import generated_world

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
SEQ = re.compile(r"^1\d{20}$")


def item_of(rec):
    return json.dumps(rec["dynamodb"]["Keys"], sort_keys=True)


def without_seq(rec):
    """The record's bytes as sent (keys in order), its SequenceNumber blanked."""
    rec = json.loads(json.dumps(rec))
    rec["dynamodb"]["SequenceNumber"] = ""
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False)


def file_records(path):
    with open(path) as f:
        return [r for line in f for r in json.loads(line)["Records"]]


class ReplayShardTest(MotoCase):
    def setUp(self):
        super().setUp()
        self.target = TargetServer()
        self.world = generated_world(self.path("world"))

    def tearDown(self):
        self.target.stop()
        super().tearDown()

    def args(self, source, *extra, quiet=True):
        return ["replay", source, "--settle", "0", *(["-q"] if quiet else []),
                "--no-replay-marker", *extra]

    def replay(self, source, *extra, env=None, quiet=True):
        p = subprocess.run([BINARY, *self.args(source, *extra, quiet=quiet)],
                           capture_output=True,
                           env={**os.environ, **(env or {})}, timeout=600)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def reference(self, source, *extra):
        """One unsharded replay, one lane, into a file: every record in rank order."""
        out = self.path("ref.ndjson")
        if os.path.exists(out):
            os.unlink(out)
        status, err = self.replay(source, "--target", "file:" + out, "--batch-size", "10000",
                                  *extra)
        self.assertEqual(status, 0, err)
        return file_records(out)

    def report(self, path):
        with open(path) as f:
            return json.load(f)

    def assertSameRecords(self, got, ref):
        """The same records, each once, byte for byte apart from
        SequenceNumber, each item's in the reference's order."""
        self.assertEqual(len(got), len(ref))
        self.assertEqual({r["eventID"]: without_seq(r) for r in got},
                         {r["eventID"]: without_seq(r) for r in ref})
        want, have = {}, {}
        for r in ref:
            want.setdefault(item_of(r), []).append(r["eventID"])
        for r in got:
            have.setdefault(item_of(r), []).append(r["eventID"])
        self.assertEqual(have, want)

    def assertShardSequenceNumbers(self, got, n):
        """Unique, 21 digits, the shard's index after "10", and increasing
        along every item (an item stays in one lane of one shard)."""
        seqs = [r["dynamodb"]["SequenceNumber"] for r in got]
        self.assertEqual(len(set(seqs)), len(seqs), "a SequenceNumber sent twice")
        width = len(str(n - 1))
        last = {}
        for r, s in zip(got, seqs):
            self.assertRegex(s, SEQ)
            self.assertEqual(s[1], "0")
            item = item_of(r)
            if item in last:
                self.assertGreater(int(s), int(last[item][1]), item)
                self.assertEqual(s[2:2 + width], last[item][0], "an item in two shards")
            last[item] = (s[2:2 + width], s)

    def test_three_shards_at_once_into_one_target_send_one_run(self):
        ref = self.reference(self.world)
        # Unsharded numbers are as they always were: 1, then the rank.
        self.assertEqual([r["dynamodb"]["SequenceNumber"] for r in ref],
                         ["1%020d" % (i + 1) for i in range(len(ref))])
        procs = []
        for k in range(3):
            args = self.args(self.world, "--target", self.target.url, "--shard", f"{k}/3",
                             "--parallelism", "2", "--batch-size", "7",
                             "--report", self.path(f"s{k}", "report.json"))
            procs.append(subprocess.Popen([BINARY, *args], stderr=subprocess.PIPE))
        for p in procs:
            err = p.stderr.read().decode()
            p.stderr.close()
            self.assertEqual(p.wait(), 0, err)
        got = self.target.accepted
        self.assertSameRecords(got, ref)
        self.assertShardSequenceNumbers(got, 3)
        listing = options = None
        for k in range(3):
            rep = self.report(self.path(f"s{k}", "report.json"))
            sh = rep["shard"]
            self.assertEqual((sh["index"], sh["count"]), (k, 3))
            self.assertEqual(sh["read"] + sh["other_shards"], sh["listed"])
            self.assertEqual(sh["first_sequence_number"], "10%d%018d" % (k, 1))
            self.assertEqual((sh["split_records"], sh["split"]), (0, []))
            listing = listing or sh["listing_sha256"]
            options = options or sh["options_sha256"]
            self.assertEqual((sh["listing_sha256"], sh["options_sha256"]), (listing, options))
            mine = [r for r in got if r["dynamodb"]["SequenceNumber"][2] == str(k)]
            self.assertEqual(rep["acknowledged"], len(mine))
            self.assertGreater(len(mine), 0)

    def test_one_and_eight_shards_one_after_another_into_one_file(self):
        ref = self.reference(self.world)
        for n in (1, 8):
            with self.subTest(n=n):
                out = self.path(f"n{n}.ndjson")
                for k in range(n):
                    status, err = self.replay(self.world, "--target", "file:" + out,
                                              "--shard", f"{k}/{n}", "--parallelism", "3")
                    self.assertEqual(status, 0, err)
                got = file_records(out)
                self.assertSameRecords(got, ref)
                self.assertShardSequenceNumbers(got, n)
                if n == 1:  # shard 0 of 1 numbers as an unsharded run does
                    self.assertEqual(sorted(r["dynamodb"]["SequenceNumber"] for r in got),
                                     [r["dynamodb"]["SequenceNumber"] for r in ref])

    def test_each_object_fetched_by_one_shard_on_s3(self):
        self.s3.create_bucket(Bucket="rshard")
        count = upload_tree(self.s3, "rshard", os.path.dirname(self.world), "")
        source = "s3://rshard/audit-logs/"
        extra = ("--endpoint-url", self.proxy.url)
        ref = self.reference(source, *extra)
        out = self.path("sharded.ndjson")
        gets = {}
        for k in range(3):
            self.proxy.reset()
            status, err = self.replay(source, "--target", "file:" + out, "--shard", f"{k}/3",
                                      *extra)
            self.assertEqual(status, 0, err)
            for method, path, query in self.proxy.log:
                if method == "GET" and "list-type" not in query and "versioning" not in query \
                        and path.startswith("/rshard/audit-logs/"):
                    gets.setdefault(path, []).append(k)
        self.assertEqual(len(gets), count, "some object was never fetched")
        for path, ks in gets.items():
            if "/unfiled/" in path:  # outside the hour layout: every shard reads it
                self.assertEqual(ks, [0, 1, 2], path)
            else:
                self.assertEqual(len(ks), 1, f"{path} fetched by shards {ks}")
        self.assertSameRecords(file_records(out), ref)
        # The dry run's estimate: a shard GETs its own objects (and those
        # outside the layout) and LISTs as much as one replay.
        costs = []
        for shard in ([], ["--shard", "1/3"]):
            rep = self.path("dry.json")
            status, err = self.replay(source, "--target", "file:" + out, "--dry-run",
                                      "--report", rep, *shard, *extra)
            self.assertEqual(status, 0, err)
            costs.append(self.report(rep)["source"])
        mine = sum(1 for ks in gets.values() if 1 in ks)
        self.assertEqual((costs[0]["get_requests"], costs[1]["get_requests"]), (count, mine))
        self.assertEqual(costs[1]["list_requests"], costs[0]["list_requests"])

    def test_a_stopped_shard_resumes_from_its_own_checkpoint(self):
        ref = self.reference(self.world)
        ck = self.path("ck", "x")  # the directory the checkpoints go to
        common = ["--target", self.target.url, "--shard", "auto", "--shard-count", "3",
                  "--batch-size", "3", "--parallelism", "2",
                  "--checkpoint", os.path.join(os.path.dirname(ck), "{shard}.json"),
                  "--report", self.path("run")]
        for k in (0, 2):
            status, err = self.replay(self.world, *common, env={"JOB_COMPLETION_INDEX": str(k)})
            self.assertEqual(status, 0, err)
        before = len(self.target.accepted)
        # Shard 1 (an Indexed Job's pod) is stopped part way, then resumed.
        self.target.delay = 0.02
        p = subprocess.Popen([BINARY, *self.args(self.world, *common)], stderr=subprocess.PIPE,
                             env={**os.environ, "JOB_COMPLETION_INDEX": "1"})
        self.target.kill_after(p, before + 12, sig=signal.SIGTERM)
        err = p.stderr.read().decode()
        p.stderr.close()
        self.target.delay = 0
        self.assertEqual(p.returncode, 3, err)
        self.assertLess(len(self.target.accepted), len(ref))
        mine = os.path.join(os.path.dirname(ck), "shard-1-of-3.json")
        with open(mine) as f:
            self.assertEqual(json.load(f)["arguments"]["--shard"], "1/3")
        # Resumed as another shard: refused before the source is read.
        sent = len(self.target.accepted)
        status, err = self.replay(self.world, "--target", self.target.url, "--shard", "2/3",
                                  "--batch-size", "3", "--parallelism", "2",
                                  "--checkpoint", mine)
        self.assertEqual(status, 2, err)
        self.assertIn("written by shard 1/3 and this run is shard 2/3", err)
        status, err = self.replay(self.world, "--target", self.target.url,
                                  "--batch-size", "3", "--parallelism", "2",
                                  "--checkpoint", mine)
        self.assertEqual(status, 2, err)
        self.assertIn("written by shard 1/3 and this run has no --shard", err)
        self.assertEqual(len(self.target.accepted), sent)
        status, err = self.replay(self.world, *common, env={"JOB_COMPLETION_INDEX": "1"})
        self.assertEqual(status, 0, err)
        # SIGTERM let the batches in flight be answered and saved: each
        # record went to the target exactly once.
        self.assertSameRecords(self.target.accepted, ref)
        self.assertEqual(sorted(os.listdir(self.path("run"))),
                         ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"])
        rep = self.report(self.path("run", "shard-1-of-3", "report.json"))
        self.assertEqual(rep["resumed"] + rep["acknowledged"], rep["records"])
        self.assertGreater(rep["resumed"], 0)

    def test_a_killed_shard_resends_at_most_its_batches_in_flight(self):
        """SIGKILL leaves no time to save what was answered: the resume sends
        again at most the batches in flight (one a lane), and nothing else."""
        ref = self.reference(self.world)
        ck = self.path("{shard}.json")
        common = ["--target", self.target.url, "--batch-size", "3", "--parallelism", "2",
                  "--checkpoint", ck]
        for k in (0, 2):
            status, err = self.replay(self.world, *common, "--shard", f"{k}/3")
            self.assertEqual(status, 0, err)
        before = len(self.target.accepted)
        self.target.delay = 0.02
        p = subprocess.Popen([BINARY, *self.args(self.world, *common, "--shard", "1/3")],
                             stderr=subprocess.DEVNULL)
        self.target.kill_after(p, before + 12, sig=signal.SIGKILL)
        self.target.delay = 0
        self.assertEqual(p.returncode, -signal.SIGKILL)
        status, err = self.replay(self.world, *common, "--shard", "1/3")
        self.assertEqual(status, 0, err)
        got = self.target.accepted
        self.assertLessEqual(len(got) - len(ref), 2 * 3)
        once, seen = [], set()
        for r in got:  # each record's first arrival, in order
            if r["eventID"] not in seen:
                seen.add(r["eventID"])
                once.append(r)
        self.assertSameRecords(once, ref)

    def test_dlq_lines_name_the_shard(self):
        status, err = self.replay(self.world, "--target", self.target.url, "--shard", "1/3")
        self.assertEqual(status, 0, err)
        poison = self.target.accepted[4]
        self.target.accepted.clear()
        self.target.poison = {poison["dynamodb"]["SequenceNumber"]}
        dlq = self.path("dlq-{shard}.ndjson")
        status, err = self.replay(self.world, "--target", self.target.url, "--shard", "1/3",
                                  "--batch-size", "1", "--max-retries", "0",
                                  "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        with open(self.path("dlq-shard-1-of-3.ndjson")) as f:
            (line,) = [json.loads(x) for x in f]
        self.assertEqual(line["DDBStreamBatchInfo"]["shardId"], "shard-1-of-3-lane-0")
        self.assertEqual(line["ddbaudit"]["shard"], {"index": 1, "count": 3})
        self.assertEqual(line["ddbaudit"]["Records"], [poison])
        self.assertEqual(line["DDBStreamBatchInfo"]["startSequenceNumber"],
                         poison["dynamodb"]["SequenceNumber"])
        # The shard's DLQ re-drives as any DLQ does: the record keeps its eventID.
        self.target.poison.clear()
        self.target.accepted.clear()
        status, err = self.replay(self.path("dlq-shard-1-of-3.ndjson"), "--target",
                                  self.target.url)
        self.assertEqual(status, 0, err)
        self.assertEqual([r["eventID"] for r in self.target.accepted], [poison["eventID"]])

    def test_a_record_filed_under_another_shard_s_item_is_named(self):
        """Damage 4 of the samples: a change filed under another item's name
        is read by the shard of that name, and its item is another shard's.
        No shard sends it: the shard that read it says so (exit 1, a warning,
        report.json's shard.split), and replaying the item unsharded sends it."""
        ref = self.reference(SAMPLES)
        out = self.path("sharded.ndjson")
        split = []
        for k in range(3):
            rep = self.path(f"s{k}.json")
            status, err = self.replay(SAMPLES, "--target", "file:" + out, "--shard", f"{k}/3",
                                      "--report", rep, quiet=False)
            sh = self.report(rep)["shard"]
            self.assertEqual(sh["split_records"], len(sh["split"]))
            self.assertEqual(status, 1 if sh["split"] else 0, err)
            if sh["split"]:
                self.assertIn("no shard replays it", err)
                self.assertEqual(sh["split_keys"], ["ActivityId=act1,UserId=user904"])
                self.assertIn("--key 'ActivityId=act1,UserId=user904'", err)
                key = sh["split_keys"][0]
            split += sh["split"]
        self.assertEqual(len(split), 1)
        self.assertEqual(split[0]["item"], {"ActivityId": {"S": "act1"},
                                            "UserId": {"S": "user904"}})
        got = {r["eventID"] for r in file_records(out)}
        missing = [r for r in ref if r["eventID"] not in got]
        self.assertEqual([item_of(r) for r in missing],
                         [item_of({"dynamodb": {"Keys": split[0]["item"]}})])
        self.assertEqual(len(got), len(ref) - 1)
        again = self.path("again.ndjson")
        status, err = self.replay(SAMPLES, "--target", "file:" + again,
                                  "--key", key)
        self.assertEqual(status, 0, err)
        self.assertIn(missing[0]["eventID"], {r["eventID"] for r in file_records(again)})

    def test_the_spool_goes_to_tmp_dir(self):
        log = self.path("log.ndjson")  # a stream, which is spooled
        with open(log, "w") as f:
            for r in self.reference(self.world):
                f.write(json.dumps(r) + "\n")
        tmp = os.path.dirname(self.path("tmp", "x"))
        missing = os.path.join(self.dir, "missing")
        out = self.path("out.ndjson")
        status, err = self.replay(log, "--target", "file:" + out, "--tmp-dir", tmp,
                                  env={"TMPDIR": missing})
        self.assertEqual(status, 0, err)
        status, err = self.replay(log, "--target", "file:" + out, "--tmp-dir", missing)
        self.assertEqual(status, 3, err)
        self.assertIn("cannot create a spool file in " + missing, err)

    def test_shard_in_a_file_target(self):
        """{shard} in a file: target gives each shard a file of its own (and
        each resumes into its own): together they hold one replay's records."""
        ref = self.reference(self.world)
        got = []
        for k in range(3):
            status, err = self.replay(self.world, "--target",
                                      "file:" + self.path("out-{shard}.ndjson"),
                                      "--shard", f"{k}/3")
            self.assertEqual(status, 0, err)
            got += file_records(self.path(f"out-shard-{k}-of-3.ndjson"))
        self.assertEqual(len(got), len(ref))
        self.assertEqual({r["eventID"] for r in got}, {r["eventID"] for r in ref})

    def test_a_dry_run_names_the_shard(self):
        rep = self.path("dry.json")
        status, err = self.replay(self.world, "--target", self.target.url, "--shard", "2/3",
                                  "--dry-run", "--report", rep)
        self.assertEqual(status, 0, err)
        doc = self.report(rep)
        self.assertTrue(doc["dryRun"])
        self.assertEqual((doc["shard"]["index"], doc["shard"]["count"]), (2, 3))
        self.assertEqual(doc["shard"]["first_sequence_number"], "102000000000000000001")
        self.assertEqual(self.target.accepted, [])

    def test_an_empty_range_is_nothing_to_replay_in_every_shard(self):
        """No merge follows a sharded replay: a shard whose shared listing is
        empty (a wrong source, prefix or range) and that read nothing says the
        range is empty, as one replay does (exit 1)."""
        empty = ("--from", "2030-01-01T00:00Z", "--to", "2030-01-02T00:00Z")
        for k in range(3):
            status, err = self.replay(SAMPLES, "--target", self.target.url, *empty,
                                      "--shard", f"{k}/3")
            self.assertEqual(status, 1, err)
            self.assertIn("nothing to replay", err)
        status, err = self.replay(SAMPLES, "--target", self.target.url, *empty,
                                  "--shard", "1/3", "--allow-empty")
        self.assertEqual(status, 0, err)
        # A shard with no records of its own in a range that has some is not
        # empty: its hour is listed, and its records are other shards.
        rep = self.path("few.json")
        status, err = self.replay(SAMPLES, "--target", self.target.url, "--from",
                                  "2025-07-12T06:00Z", "--to", "2025-07-12T06:05Z",
                                  "--shard", "7/8", "--report", rep)
        self.assertEqual(status, 0, err)
        sh = self.report(rep)["shard"]
        self.assertGreater(sh["listed"], 0)
        self.assertEqual(self.report(rep)["records"], 0)

    def test_usage_errors(self):
        ck = self.path("ck.json")
        cases = [
            (["--shard", "auto", "--shard-count", "3", "--checkpoint", ck],
             "put {shard} in --checkpoint"),
            (["--shard", "auto", "--shard-count", "3", "--dlq", "file:" + ck],
             "put {shard} in --dlq"),
            (["--checkpoint", self.path("{shard}.json")], "this run has no --shard"),
            (["--dlq", "file:" + self.path("{shard}.ndjson")], "this run has no --shard"),
        ]
        for extra, want in cases:
            with self.subTest(extra=extra):
                status, err = self.replay(self.world, "--target", self.target.url, *extra,
                                          env={"AWS_BATCH_JOB_ARRAY_INDEX": "1"})
                self.assertEqual(status, 2, err)
                self.assertIn(want, err)
        self.assertEqual(self.target.accepted, [])
        self.assertEqual(self.target.options, 0)  # refused before the preflight


if __name__ == "__main__":
    main()
