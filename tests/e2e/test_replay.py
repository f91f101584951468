"""`ddbaudit replay` end to end: synthetic records in Lambda's shape, every
change once and in per-item order under parallelism, retries, partial batch
failures, bisection of a poison record into a re-drivable DLQ, hold-item,
resuming after SIGKILL from a checkpoint; and the failure rules: no change
is ever dropped unless asked, a preflight before the source is read,
configuration errors stop at once, throttles are waited out."""
import json
import os
import signal
import socket
import subprocess
import time
from harness import BINARY, Case, ROOT, main, run, verify_json
from target_server import TargetServer

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")


def item_of(rec):
    return json.dumps(rec["dynamodb"]["Keys"], sort_keys=True)


class ReplayTest(Case):
    @classmethod
    def setUpClass(cls):
        status, rep, err = verify_json(SAMPLES, "--settle", "0")
        s = rep["summary"]
        cls.changes = sum(s["events"].values()) - s["duplicates"]

    def setUp(self):
        super().setUp()
        self.target = TargetServer()

    def tearDown(self):
        self.target.stop()
        super().tearDown()

    def replay(self, *args, source=SAMPLES):
        return run("replay", source, "--settle", "0", "-q", *args)

    def reference(self):
        """The plan as one lane writes it to a file: every record in order."""
        out = self.path("ref.ndjson")
        if os.path.exists(out):
            os.unlink(out)  # file targets append
        status, _, err = self.replay("--target", "file:" + out, "--batch-size", "10000")
        self.assertEqual(status, 0, err)
        with open(out) as f:
            return [r for line in f for r in json.loads(line)["Records"]]

    def assertPerItemOrder(self, got, ref):
        want = {}
        for r in ref:
            want.setdefault(item_of(r), []).append(r["eventID"])
        have = {}
        for r in got:
            have.setdefault(item_of(r), []).append(r["eventID"])
        self.assertEqual(have, want)

    def test_an_empty_range_is_nothing_to_replay(self):
        """A recovery that finds no records (a wrong prefix or range) used to
        exit 0 having sent nothing; it fails, in a dry run too, unless
        --allow-empty says the quiet range is expected."""
        out = self.path("sent.ndjson")
        empty = ("--from", "2025-07-13T00:00Z", "--to", "2025-07-14T00:00Z")
        status, _, err = run("replay", SAMPLES, *empty, "--target", "file:" + out)
        self.assertEqual(status, 1, err)
        self.assertIn("nothing to replay: no records from 2025-07-13T00:00:00Z", err)
        status, _, err = run("replay", SAMPLES, *empty, "--target", "file:" + out,
                             "--dry-run")
        self.assertEqual(status, 1, err)
        status, _, err = run("replay", SAMPLES, *empty, "--target", "file:" + out,
                             "--allow-empty")
        self.assertEqual(status, 0, err)
        self.assertNotIn("nothing to replay", err)
        self.assertFalse(os.path.exists(out) and os.path.getsize(out))

    def test_records_have_lambdas_shape(self):
        ref = self.reference()
        self.assertEqual(len(ref), self.changes)
        self.assertEqual(len({r["eventID"] for r in ref}), len(ref))
        seqs = [r["dynamodb"]["SequenceNumber"] for r in ref]
        self.assertTrue(all(len(s) == 21 and s.isdigit() for s in seqs))
        self.assertEqual(seqs, sorted(seqs))
        for r in ref:
            self.assertEqual((r["eventVersion"], r["eventSource"]), ("1.1", "aws:dynamodb"))
            d = r["dynamodb"]
            self.assertEqual(d["StreamViewType"], "NEW_AND_OLD_IMAGES")
            self.assertEqual("NewImage" in d, r["eventName"] != "REMOVE")
            self.assertEqual("OldImage" in d, r["eventName"] != "INSERT")
            self.assertIsInstance(d["ApproximateCreationDateTime"], int)
            self.assertGreater(d["SizeBytes"], 0)
            self.assertTrue(r["eventSourceARN"].startswith("arn:aws:dynamodb:"))
            self.assertTrue(r["replay"]["object"]["key"].startswith("audit-logs/"))
        # The same replay gives the same IDs and sequence numbers.
        again = self.reference()
        self.assertEqual([(r["eventID"], r["dynamodb"]["SequenceNumber"]) for r in again],
                         [(r["eventID"], r["dynamodb"]["SequenceNumber"]) for r in ref])

    def test_view_and_marker(self):
        """awsRegion is where the change happened (the records'), never
        --region, which says where ddbaudit works."""
        out = self.path("keys.ndjson")
        status, _, err = self.replay("--target", "file:" + out, "--view", "KEYS_ONLY",
                                     "--no-replay-marker", "--event-types", "REMOVE",
                                     "--table", "Activities", "--region", "eu-west-1")
        self.assertEqual(status, 0, err)
        with open(out) as f:
            recs = [r for line in f for r in json.loads(line)["Records"]]
        self.assertTrue(recs)
        for r in recs:
            self.assertEqual(r["eventName"], "REMOVE")
            self.assertNotIn("replay", r)
            self.assertNotIn("NewImage", r["dynamodb"])
            self.assertNotIn("OldImage", r["dynamodb"])
            self.assertEqual(r["awsRegion"], "us-east-1")
            self.assertTrue(r["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:"))
            self.assertIn(":table/Activities/stream/", r["eventSourceARN"])

    def test_filter_criteria(self):
        """Lambda's filter criteria pick records; numeric matching also reads
        DynamoDB N strings."""
        ref = self.reference()

        def amount(r):
            n = r["dynamodb"].get("NewImage", {}).get("Amount", {}).get("N")
            return float(n) if n is not None else None
        want = [r["eventID"] for r in ref
                if r["eventName"] == "REMOVE"
                or (r["eventName"] == "MODIFY" and amount(r) is not None and amount(r) > 300)]
        self.assertTrue(0 < len(want) < len(ref))
        pattern = {"$or": [{"eventName": ["REMOVE"]},
                           {"eventName": ["MODIFY"],
                            "dynamodb": {"NewImage": {"Amount": {"N": [{"numeric": [">", 300]}]}}}}]}
        flt = self.path("filter.json")
        with open(flt, "w") as f:
            json.dump({"Filters": [{"Pattern": json.dumps(pattern)}]}, f)
        report = self.path("replay.json")
        status, _, err = self.replay("--target", self.target.url, "--filter", flt,
                                     "--report", report)
        self.assertEqual(status, 0, err)
        self.assertEqual([r["eventID"] for r in self.target.accepted], want)
        with open(report) as f:
            self.assertEqual(json.load(f)["filtered_out"], len(ref) - len(want))
        # The record is matched exactly as sent, its SequenceNumber included;
        # the records filtered out keep theirs (gaps, as in a filtered stream).
        with open(flt, "w") as f:
            json.dump({"dynamodb": {"SequenceNumber": [ref[5]["dynamodb"]["SequenceNumber"],
                                                       ref[9]["dynamodb"]["SequenceNumber"]]}}, f)
        self.target.accepted.clear()
        status, _, err = self.replay("--target", self.target.url, "--filter", flt)
        self.assertEqual(status, 0, err)
        self.assertEqual([r["eventID"] for r in self.target.accepted],
                         [ref[5]["eventID"], ref[9]["eventID"]])
        self.assertEqual([r["dynamodb"]["SequenceNumber"] for r in self.target.accepted],
                         [ref[5]["dynamodb"]["SequenceNumber"],
                          ref[9]["dynamodb"]["SequenceNumber"]])
        self.target.accepted[:] = [r for r in ref if r["eventID"] in want]
        # A pattern Lambda would refuse is refused before anything is read.
        with open(flt, "w") as f:
            json.dump({"eventName": [{"wildcard": "MOD*"}]}, f)
        status, _, err = self.replay("--target", self.target.url, "--filter", flt)
        self.assertEqual(status, 2, err)
        self.assertIn("unknown operator", err)
        self.assertEqual(len(self.target.accepted), len(want))

    def test_dry_run_sends_nothing_and_counts_what_would_go(self):
        report = self.path("dry.json")
        args = ("--parallelism", "3", "--batch-size", "9")
        status, out, err = self.replay("--target", self.target.url, "--dry-run", "--report",
                                       report, *args)
        self.assertEqual(status, 0, err)
        self.assertEqual(self.target.batches, 0)
        with open(report) as f:
            dry = json.load(f)
        # What a real run sends, one batch a line, with the same arguments.
        sent = self.path("sent.ndjson")
        status, _, err = self.replay("--target", "file:" + sent, *args)
        self.assertEqual(status, 0, err)
        with open(sent, "rb") as f:
            lines = f.read().splitlines()
        self.assertEqual(dry["batches"], len(lines))
        self.assertEqual(dry["bytes"], sum(len(line) for line in lines))
        self.assertEqual(dry["records"], self.changes)
        self.assertEqual(sum(lane["records"] for lane in dry["lanes"]), self.changes)
        self.assertEqual([lane["batches"] for lane in dry["lanes"]],
                         [-(-lane["records"] // 9) for lane in dry["lanes"]])
        self.assertEqual(dry["target"]["estimated_request_cost_usd"], 0)
        self.assertIn(b"nothing is sent", out)

    def test_batching_window_closes_rate_limited_batches(self):
        # At 40 records/s over 2 lanes, a lane gathers 10 records in a
        # 500 ms window: batches close at 10 records, not at --batch-size.
        report = self.path("dry.json")
        status, _, err = self.replay("--target", self.target.url, "--dry-run", "--report",
                                     report, "--parallelism", "2", "--max-rps", "40",
                                     "--max-batching-window", "0.5s", "--batch-size", "100")
        self.assertEqual(status, 2, err)  # durations are whole seconds, as Lambda's
        status, _, err = self.replay("--target", self.target.url, "--dry-run", "--report",
                                     report, "--parallelism", "2", "--max-rps", "20",
                                     "--max-batching-window", "1", "--batch-size", "100")
        self.assertEqual(status, 0, err)
        with open(report) as f:
            dry = json.load(f)
        self.assertEqual([lane["batches"] for lane in dry["lanes"]],
                         [-(-lane["records"] // 10) for lane in dry["lanes"]])
        # A real run at 200 records/s: a lane's batches close at 100 records,
        # and the records after the first batch take their time.
        out = self.path("window.ndjson")
        started = time.monotonic()
        status, _, err = self.replay("--target", "file:" + out, "--max-rps", "200",
                                     "--max-batching-window", "1", "--batch-size", "1000",
                                     "--parallelism", "2")
        self.assertEqual(status, 0, err)
        self.assertGreaterEqual(time.monotonic() - started, (self.changes - 100) / 200)
        with open(out) as f:
            sizes = [len(json.loads(line)["Records"]) for line in f]
        self.assertEqual(sum(sizes), self.changes)
        self.assertEqual(max(sizes), 100)

    def test_target_timeout_fails_the_batch(self):
        self.target.delay = 1.5
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", self.target.url, "--event-types", "REMOVE",
                                     "--target-timeout", "1", "--max-retries", "0",
                                     "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        with open(dlq) as f:
            line = json.loads(f.readline())
        self.assertIn("imeout", line["ddbaudit"]["errorMessage"])
        self.assertEqual(line["DDBStreamBatchInfo"]["batchSize"], len(line["ddbaudit"]["Records"]))

    def interrupted_run(self, sig):
        """A slow checkpointed replay, signalled after 60 records: its args."""
        self.target.delay = 0.02
        args = ["replay", SAMPLES, "--settle", "0", "-q", "--target", self.target.url,
                "--batch-size", "5", "--parallelism", "2", "--checkpoint", self.path("ck.json")]
        p = subprocess.Popen([BINARY, *args], stderr=subprocess.PIPE)
        self.target.kill_after(p, 60, sig=sig)
        self.proc_err = p.stderr.read().decode()
        p.stderr.close()
        self.proc_status = p.returncode
        self.target.delay = 0
        return args

    def test_sigterm_drains_then_resume_sends_each_record_once(self):
        ref = self.reference()
        args = self.interrupted_run(signal.SIGTERM)
        self.assertEqual(self.proc_status, 3, self.proc_err)
        self.assertIn("interrupted", self.proc_err)
        self.assertLess(len(self.target.accepted), len(ref))
        status, _, err = run(*args)
        self.assertEqual(status, 0, err)
        # In-flight batches were acknowledged before it stopped: nothing twice.
        self.assertEqual(sorted(r["eventID"] for r in self.target.accepted),
                         sorted(r["eventID"] for r in ref))
        self.assertPerItemOrder(self.target.accepted, ref)

    def test_exec_target(self):
        """exec: one process a batch, the batch on stdin, DDBAUDIT_LANE set; a
        non-zero exit fails the batch and a batchItemFailures answer on stdout
        is a partial failure."""
        ref = self.reference()
        out, fail_once, crash_once = (self.path("exec.ndjson"), self.path("fail-once"),
                                      self.path("crash-once"))
        script = self.write("processor.py", f"""
import json, os, sys
batch = json.load(sys.stdin)
seqs = [r["dynamodb"]["SequenceNumber"] for r in batch["Records"]]
if os.path.exists({crash_once!r}):
    os.unlink({crash_once!r})
    sys.exit(7)
failed = None
if os.path.exists({fail_once!r}):
    seq = open({fail_once!r}).read()
    if seq in seqs:
        os.unlink({fail_once!r})
        failed = seq
with open({out!r}, "a") as f:
    for r in batch["Records"]:
        if r["dynamodb"]["SequenceNumber"] == failed:
            break
        f.write(json.dumps({{"lane": os.environ["DDBAUDIT_LANE"], "r": r}}) + "\\n")
if failed:
    print(json.dumps({{"batchItemFailures": [{{"itemIdentifier": failed}}]}}))
""")
        with open(fail_once, "w") as f:
            f.write(ref[50]["dynamodb"]["SequenceNumber"])
        open(crash_once, "w").close()
        report = self.path("replay.json")
        status, _, err = self.replay("--target", f"exec:python3 {script}", "--batch-size", "20",
                                     "--parallelism", "2", "--report", report)
        self.assertEqual(status, 0, err)
        with open(out) as f:
            got = [json.loads(line) for line in f]
        self.assertEqual({g["lane"] for g in got}, {"0", "1"})
        self.assertPerItemOrder([g["r"] for g in got], ref)
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual((rep["partial_failures"], rep["retries"] >= 2), (1, True))
        self.assertFalse(os.path.exists(fail_once) or os.path.exists(crash_once))

    def test_progress_while_delivering(self):
        self.target.delay = 0.1
        status, _, err = run("replay", SAMPLES, "--settle", "0", "--target", self.target.url,
                             "--batch-size", "10", "--progress", "always")
        self.assertEqual(status, 0, err)
        done = [int(line.split()[1]) for line in err.splitlines()
                if line.startswith("replay: ") and " records done " in line]
        self.assertTrue(done, err)
        self.assertEqual(done, sorted(done))
        self.assertLess(done[-1], self.changes)

    def test_max_inflight(self):
        self.target.delay = 0.05
        status, _, err = self.replay("--target", self.target.url, "--parallelism", "4",
                                     "--batch-size", "10")
        self.assertEqual(status, 0, err)
        self.assertGreater(self.target.max_active, 1)  # lanes do overlap...
        self.target.max_active = 0
        status, _, err = self.replay("--target", self.target.url, "--parallelism", "4",
                                     "--batch-size", "10", "--max-inflight", "1")
        self.assertEqual(status, 0, err)
        self.assertEqual(self.target.max_active, 1)  # ...unless told not to

    def test_http_parallel_lanes_keep_item_order(self):
        ref = self.reference()
        status, _, err = self.replay("--target", self.target.url, "--parallelism", "4",
                                     "--batch-size", "7")
        self.assertEqual(status, 0, err)
        self.assertEqual(len(self.target.accepted), len(ref))
        self.assertPerItemOrder(self.target.accepted, ref)

    def test_retries_and_partial_failures(self):
        ref = self.reference()
        self.target.fail_first = 3
        self.target.partial_once = {ref[5]["dynamodb"]["SequenceNumber"],
                                    ref[40]["dynamodb"]["SequenceNumber"]}
        report = self.path("replay.json")
        status, _, err = self.replay("--target", self.target.url, "--batch-size", "25",
                                     "--max-retries", "5", "--report", report)
        self.assertEqual(status, 0, err)
        self.assertPerItemOrder(self.target.accepted, ref)
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual(rep["acknowledged"], len(ref))
        self.assertEqual(rep["partial_failures"], 2)
        self.assertGreaterEqual(rep["retries"], 5)
        self.assertTrue(rep["complete"])

    def test_poison_record_bisected_into_the_dlq_and_redriven(self):
        ref = self.reference()
        poison = ref[33]
        self.target.poison = {poison["dynamodb"]["SequenceNumber"]}
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", self.target.url, "--batch-size", "50",
                                     "--max-retries", "1", "--bisect-on-error",
                                     "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        got = [r["eventID"] for r in self.target.accepted]
        self.assertEqual(sorted(got), sorted(r["eventID"] for r in ref if r is not poison))
        with open(dlq) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["requestContext"]["condition"], "RetryAttemptsExhausted")
        self.assertEqual(lines[0]["DDBStreamBatchInfo"]["batchSize"], 1)
        self.assertEqual([r["eventID"] for r in lines[0]["ddbaudit"]["Records"]],
                         [poison["eventID"]])
        # The DLQ is a source: re-driven once the processor is fixed.
        self.target.poison.clear()
        self.target.accepted.clear()
        status, _, err = self.replay("--target", self.target.url, source=dlq)
        self.assertEqual(status, 0, err)
        self.assertEqual([r["eventID"] for r in self.target.accepted], [poison["eventID"]])

    def test_hold_item_keeps_later_changes_out(self):
        ref = self.reference()
        counts = {}
        for r in ref:
            counts[item_of(r)] = counts.get(item_of(r), 0) + 1
        victim = next(r for r in ref if counts[item_of(r)] >= 3)
        item = item_of(victim)
        later = [r["eventID"] for r in ref if item_of(r) == item]
        later = later[later.index(victim["eventID"]):]
        self.target.poison = {victim["dynamodb"]["SequenceNumber"]}
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", self.target.url, "--batch-size", "10",
                                     "--max-retries", "0", "--bisect-on-error",
                                     "--on-failure", "hold-item", "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        self.assertFalse([r for r in self.target.accepted if r["eventID"] in later])
        with open(dlq) as f:
            parked = [r["eventID"] for line in f
                      for r in json.loads(line)["ddbaudit"]["Records"]]
        self.assertEqual(parked, later)
        self.assertEqual(len(self.target.accepted) + len(parked), len(ref))

    def test_no_dlq_stops_the_run_and_a_resume_sends_the_record_again(self):
        """Reproduction: a failing record without --dlq used to end "220 to
        the DLQ" with exit 1 and the records gone. Now its lane and the run
        stop (exit 3) with the checkpoint before it, and a resume sends it."""
        ref = self.reference()
        self.target.poison = {ref[70]["dynamodb"]["SequenceNumber"]}
        ck, report = self.path("ck.json"), self.path("out", "replay.json")
        args = ("--target", self.target.url, "--batch-size", "10", "--max-retries", "1",
                "--checkpoint", ck, "--report", report)
        status, _, err = self.replay(*args)
        self.assertEqual(status, 3, err)
        self.assertIn("no --dlq to keep them", err)
        self.assertIn("resume", err)
        self.assertEqual([r["eventID"] for r in self.target.accepted],
                         [r["eventID"] for r in ref[:70]])
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual((rep["dlq"], rep["dropped"], rep["stopped"], rep["complete"]),
                         (0, 0, True, False))
        with open(ck) as f:
            self.assertEqual(json.load(f)["lanes"], [70])
        self.target.poison.clear()
        status, _, err = self.replay(*args)
        self.assertEqual(status, 0, err)
        self.assertEqual([r["eventID"] for r in self.target.accepted],
                         [r["eventID"] for r in ref])

    def test_discarding_must_be_spelled_drop_and_is_counted(self):
        ref = self.reference()
        for mode in ("skip", "hold-item"):
            status, _, err = self.replay("--target", self.target.url, "--on-failure", mode)
            self.assertEqual(status, 2, err)
            self.assertIn("--on-failure drop", err)
        status, _, err = self.replay("--target", self.target.url, "--on-failure", "drop",
                                     "--dlq", "file:" + self.path("dlq.ndjson"))
        self.assertEqual(status, 2, err)
        self.assertEqual(self.target.batches, 0)
        self.target.poison = {ref[3]["dynamodb"]["SequenceNumber"]}
        report = self.path("replay.json")
        status, _, err = self.replay("--target", self.target.url, "--batch-size", "1",
                                     "--max-retries", "0", "--on-failure", "drop",
                                     "--report", report)
        self.assertEqual(status, 1, err)
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual((rep["dropped"], rep["acknowledged"], rep["complete"]),
                         (1, len(ref) - 1, True))

    def closed_port_url(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return "http://127.0.0.1:%d/" % s.getsockname()[1]

    def test_an_unreachable_target_stops_before_the_source_is_read(self):
        dlq = self.path("dlq.ndjson")
        missing = self.path("no-such-source")
        for url in (self.closed_port_url(), "http://no-such-host.invalid/"):
            for dry in ((), ("--dry-run",)):
                status, _, err = run("replay", missing, "--target", url, "--dlq",
                                     "file:" + dlq, *dry)
                self.assertEqual(status, 3, err)
                self.assertIn("target %s does not answer" % url, err)
                self.assertNotIn("no-such-source", err)  # never opened
        self.assertFalse(os.path.exists(dlq))
        # A reachable one is asked with OPTIONS, which sends no record.
        status, _, err = self.replay("--target", self.target.url, "--dry-run")
        self.assertEqual(status, 0, err)
        self.assertEqual((self.target.options, self.target.batches), (1, 0))

    def test_a_configuration_error_mid_run_stops_at_once(self):
        for code in (401, 403, 404, 413):
            self.target.fail_first, self.target.fail_status = 10 ** 9, code
            self.target.batches = 0
            dlq, ck = self.path("dlq%d.ndjson" % code), self.path("ck%d.json" % code)
            status, _, err = self.replay("--target", self.target.url, "--parallelism", "1",
                                         "--dlq", "file:" + dlq, "--checkpoint", ck,
                                         "--bisect-on-error")
            self.assertEqual(status, 3, err)
            self.assertIn("target %s: HTTP %d" % (self.target.url, code), err)
            self.assertIn("configuration error", err)
            self.assertEqual(self.target.batches, 1)  # not retried, not bisected
            self.assertEqual(os.path.getsize(dlq), 0)  # nothing parked
            self.assertFalse(os.path.exists(ck) and sum(json.load(open(ck))["lanes"]))

    def test_unwritable_outputs_fail_before_anything_is_sent(self):
        bad = self.path("file")  # a file where a directory is needed
        open(bad, "w").close()
        for args in (("--report", os.path.join(bad, "r.json")),
                     ("--report", os.path.join(bad, "dir")),
                     ("--checkpoint", os.path.join(bad, "ck.json")),
                     ("--dlq", "file:" + os.path.join(bad, "dlq.ndjson"))):
            for dry in ((), ("--dry-run",)):
                status, _, err = self.replay("--target", self.target.url, *args, *dry)
                self.assertEqual(status, 3, (args, err))
                self.assertIn(bad, err)
        self.assertEqual(self.target.batches, 0)
        # --report DIR holds report.json, as verify's does.
        status, _, err = self.replay("--target", self.target.url, "--report",
                                     self.path("reports", "run1"))
        self.assertEqual(status, 0, err)
        with open(self.path("reports", "run1", "report.json")) as f:
            self.assertEqual(json.load(f)["acknowledged"], self.target.batches and len(
                self.target.accepted))

    def test_a_missing_exec_command_stops_before_reading(self):
        for cmd in ("no-such-command-ddbaudit --x", self.path("nope.sh"),
                    "FOO=1 no-such-command-ddbaudit"):
            status, _, err = run("replay", self.path("no-such-source"), "--target",
                                 "exec:" + cmd, "--dry-run")
            self.assertEqual(status, 3, err)
            self.assertIn("exec:" + cmd, err)
            self.assertNotIn("no-such-source", err)
        # Found at run time instead (a command the preflight cannot read):
        # exit 127 is a configuration error, not a record's failure.
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", "exec:\"no-such-command-ddbaudit\"",
                                     "--dlq", "file:" + dlq)
        self.assertEqual(status, 3, err)
        self.assertIn("configuration error", err)
        self.assertEqual(os.path.getsize(dlq), 0)

    def test_throttles_are_waited_out_and_never_count_as_retries(self):
        ref = self.reference()
        self.target.throttle_first, self.target.retry_after = 4, "1"
        report = self.path("replay.json")
        started = time.monotonic()
        status, _, err = self.replay("--target", self.target.url, "--max-retries", "0",
                                     "--batch-size", "50", "--report", report)
        self.assertEqual(status, 0, err)
        self.assertGreaterEqual(time.monotonic() - started, 4)  # Retry-After: 1, four times
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual((rep["throttled"], rep["retries"], rep["acknowledged"]),
                         (4, 0, len(ref)))
        # Throttled past --max-record-age: the record is given up as too old.
        self.target.throttle_first, self.target.retry_after = 10 ** 9, None
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", self.target.url, "--event-types", "REMOVE",
                                     "--max-record-age", "1", "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        with open(dlq) as f:
            self.assertEqual(json.loads(f.readline())["requestContext"]["condition"],
                             "RecordAgeExceeded")

    def test_verbose_says_what_happened_to_each_failed_send(self):
        self.target.throttle_first, self.target.retry_after = 1, "0"
        self.target.fail_first = 1
        args = ("replay", SAMPLES, "--settle", "0", "--target", self.target.url,
                "--event-types", "REMOVE", "--progress", "never")
        status, _, err = run(*args, "-v")
        self.assertEqual(status, 0, err)
        lines = [line for line in err.splitlines() if line.startswith("ddbaudit: replay: lane 0:")]
        self.assertEqual(len(lines), 2, err)
        self.assertIn("HTTP 429", lines[0])
        self.assertIn("(throttled); waiting (not a retry) in 0.0 s", lines[0])
        self.assertIn("HTTP 500: injected (function error); retrying in", lines[1])
        self.target.throttle_first, self.target.fail_first = 1, 1
        status, _, err = run(*args)
        self.assertEqual(status, 0, err)
        self.assertNotIn("lane 0:", err)

    def test_bisection_splits_on_function_errors_only(self):
        # 502: the processor never gave a verdict; halves would fail alike.
        self.target.fail_first, self.target.fail_status = 10 ** 9, 502
        dlq, report = self.path("dlq.ndjson"), self.path("replay.json")
        status, _, err = self.replay("--target", self.target.url, "--event-types", "REMOVE",
                                     "--batch-size", "100", "--max-retries", "0",
                                     "--bisect-on-error", "--dlq", "file:" + dlq,
                                     "--report", report)
        self.assertEqual(status, 1, err)
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual(rep["bisections"], 0)
        with open(dlq) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["DDBStreamBatchInfo"]["batchSize"], rep["records"])

    def test_dlq_line_has_lambdas_on_failure_shape(self):
        ref = self.reference()
        self.target.poison = {ref[10]["dynamodb"]["SequenceNumber"]}
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", self.target.url, "--batch-size", "1",
                                     "--max-retries", "0", "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        with open(dlq) as f:
            line = json.loads(f.readline())
        self.assertEqual(list(line), ["requestContext", "responseContext", "version",
                                      "timestamp", "DDBStreamBatchInfo", "ddbaudit"])
        self.assertEqual(list(line["requestContext"]),
                         ["requestId", "functionArn", "condition", "approximateInvokeCount"])
        self.assertEqual(line["responseContext"],
                         {"statusCode": 500, "executedVersion": "$LATEST",
                          "functionError": None})
        self.assertRegex(line["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        info = line["DDBStreamBatchInfo"]
        self.assertEqual(list(info), ["shardId", "startSequenceNumber", "endSequenceNumber",
                                      "approximateArrivalOfFirstRecord",
                                      "approximateArrivalOfLastRecord", "batchSize",
                                      "streamArn"])
        seq = ref[10]["dynamodb"]["SequenceNumber"]
        self.assertEqual((info["startSequenceNumber"], info["endSequenceNumber"]), (seq, seq))
        when = ref[10]["dynamodb"]["ApproximateCreationDateTime"]
        self.assertEqual(info["approximateArrivalOfFirstRecord"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)))
        self.assertEqual(info["streamArn"], ref[10]["eventSourceARN"])
        self.assertIn("poison record", line["ddbaudit"]["errorMessage"])
        got = line["ddbaudit"]["Records"]
        for r in got + [ref[10]]:
            r.pop("replay")  # its runId is the run's
        self.assertEqual(got, [ref[10]])

    def test_on_failure_stop_then_resume(self):
        ref = self.reference()
        self.target.poison = {ref[60]["dynamodb"]["SequenceNumber"]}
        ck = self.path("ck.json")
        args = ("--target", self.target.url, "--batch-size", "20", "--max-retries", "0",
                "--on-failure", "stop", "--checkpoint", ck)
        status, _, err = self.replay(*args)
        self.assertEqual(status, 3, err)
        self.assertEqual(len(self.target.accepted), 60)
        self.target.poison.clear()
        status, _, err = self.replay(*args)
        self.assertEqual(status, 0, err)
        self.assertEqual([r["eventID"] for r in self.target.accepted],
                         [r["eventID"] for r in ref])
        # Other arguments do not resume from this checkpoint: the refusal
        # names the argument and comes before the source is read.
        status, _, err = run("replay", SAMPLES, "--settle", "0", *args, "--parallelism", "2")
        self.assertEqual(status, 2, err)
        self.assertIn("written with --parallelism 1 and this run has --parallelism 2", err)
        self.assertNotIn("error findings", err)  # the source's warning: it was not read
        status, _, err = self.replay(*args, "--view", "KEYS_ONLY")
        self.assertEqual(status, 2, err)
        self.assertIn("--view 'NEW_AND_OLD_IMAGES' and this run has --view 'KEYS_ONLY'", err)

    def test_sigkill_and_resume_lose_nothing(self):
        ref = self.reference()
        args = self.interrupted_run(signal.SIGKILL)
        before = [r["eventID"] for r in self.target.accepted]
        self.assertGreaterEqual(len(before), 60)
        self.assertLess(len(before), len(ref))
        status, _, err = run(*args)
        self.assertEqual(status, 0, err)
        got = [r["eventID"] for r in self.target.accepted]
        self.assertEqual(set(got), {r["eventID"] for r in ref})
        # Resent: at most the batches that were in flight, one a lane.
        self.assertLessEqual(len(got) - len(ref), 2 * 5)
        self.assertPerItemOrder(
            [r for i, r in enumerate(self.target.accepted) if r["eventID"] not in got[:i]],
            ref)


if __name__ == "__main__":
    main()
