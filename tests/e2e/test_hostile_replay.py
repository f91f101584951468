"""`ddbaudit replay` against hostile targets and faults (issue 10, cases 4,
5, 8 and 9): an exec: batch that times out or is interrupted ends with its
whole process group, grandchildren included; the file: target and the file
DLQ stay whole lines on a full disk and a resume delivers every record
exactly once; stdout closed is a failure, never a write into another file;
a 2xx answer that is not JSON, or a partial-failure answer over the answer
cap, is a failed batch; a checkpoint whose fields are not integers in range,
or whose source changed in place, is refused."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from harness import BINARY, Case, ROOT, main
from target_server import TargetServer

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
# Every subprocess gets this long: "ends within a second or two" is checked
# as "ends", the exit status and the report, never as a duration.
PATIENCE = 60
ANSWER_CAP = 1 << 20


def alive(pid):
    """True while pid runs (a zombie waiting to be reaped has ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


class HostileReplayTest(Case):
    def setUp(self):
        super().setUp()
        self.target = TargetServer()
        self.mounts = []
        self.pids = []

    def tearDown(self):
        self.target.stop()
        for pid in self.pids:  # what a failing test left running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for m in self.mounts:
            subprocess.run(["umount", m], check=False)
        super().tearDown()

    def replay(self, *args, source=SAMPLES, env=None, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        p = subprocess.run([BINARY, "replay", source, "--settle", "0", *args],
                           stderr=subprocess.PIPE, timeout=PATIENCE, env=env, **kw)
        err = p.stderr.decode("utf-8", "replace")
        self.assertNotIn("AddressSanitizer", err)
        self.assertNotIn("runtime error", err)
        return p.returncode, p.stdout, err

    def reference(self):
        out = self.path("ref.ndjson")
        if os.path.exists(out):
            os.unlink(out)
        status, _, err = self.replay("-q", "--target", "file:" + out, "--batch-size", "10000")
        self.assertEqual(status, 0, err)
        return self.whole_records(out)

    def acked(self, ck):
        """Records a checkpoint says were acknowledged (none written: 0)."""
        if not os.path.exists(ck):
            return 0
        with open(ck) as f:
            return sum(json.load(f)["lanes"])

    def report(self, path):
        with open(path) as f:
            return json.load(f)

    # -- case 4: exec: batches end with their process group --------------

    def exec_script(self, pids, then):
        """A processor that starts two `sleep 3600` grandchildren (which
        inherit its stdout and stderr), writes their pids, then `then`."""
        return self.write("proc.py", f"""
import os, subprocess, sys, time
kids = [subprocess.Popen(["sleep", "3600"]).pid for _ in range(2)]
with open({pids!r} + ".tmp", "w") as f:
    f.write(" ".join(map(str, kids)))
os.rename({pids!r} + ".tmp", {pids!r})
sys.stdin.read()
{then}
""")

    def read_pids(self, path):
        with open(path) as f:
            pids = [int(p) for p in f.read().split()]
        self.pids += pids
        return pids

    def ends(self, p, pids, why):
        """Reads p's output to its end (as `| cat` does): it must end, with
        exit 3, and no grandchild listed in pids may survive. The output."""
        try:
            out, _ = p.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            # What holds the output: the run's session (ddbaudit, and its
            # batch processes where they share its group), the grandchildren.
            os.killpg(p.pid, signal.SIGKILL)
            for pid in self.read_pids(pids) if os.path.exists(pids) else ():
                os.kill(pid, signal.SIGKILL)
            p.communicate()
            self.fail(why)
        text = out.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 3, text)
        for pid in self.read_pids(pids):
            self.assertFalse(alive(pid), "grandchild %d survived" % pid)
        return text

    def test_a_timed_out_exec_batch_is_killed_with_its_grandchildren(self):
        """Reproduction: a processor that exits leaving `sleep 3600`
        grandchildren on its stdout made the batch time out, and only the
        shell was killed: the grandchildren kept ddbaudit's stderr open, so
        `ddbaudit replay ... 2>&1 | cat` never ended."""
        pids = self.path("pids")
        script = self.exec_script(pids, "sys.exit(0)")
        report = self.path("report.json")
        p = subprocess.Popen([BINARY, "replay", SAMPLES, "--settle", "0", "--event-types",
                              "REMOVE", "--target", f"exec:python3 {script}",
                              "--target-timeout", "2", "--max-retries", "0",
                              "--report", report], start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = self.ends(p, pids, "the output never ended: grandchildren of the exec "
                         "batch hold it")
        self.assertIn("killed with its process group", text)
        self.assertEqual(self.report(report)["acknowledged"], 0)

    def test_an_exec_batch_that_closes_stdout_and_hangs_is_killed(self):
        """Reproduction: a processor that closed its stdout and went on
        running was waited for without a timeout: the run never ended."""
        pids = self.path("pids")
        cmd = f"cat >/dev/null; exec >&-; echo $$ >{pids}; exec sleep 3600"
        p = subprocess.Popen([BINARY, "replay", SAMPLES, "--settle", "0", "--event-types",
                              "REMOVE", "--target", "exec:" + cmd, "--target-timeout", "2",
                              "--max-retries", "0"], start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = self.ends(p, pids, "the run never ended: it waited for the processor "
                         "without a timeout")
        self.assertIn("killed with its process group", text)

    def test_a_signal_ends_a_hung_exec_batch_and_its_group(self):
        """SIGTERM while an exec batch hangs (timeout 10 minutes): the run
        ends with the batch unacknowledged (exit 3) and nothing it started
        is left running."""
        pids = self.path("pids")
        script = self.exec_script(pids, "time.sleep(3600)")
        ck = self.path("ck.json")
        p = subprocess.Popen([BINARY, "replay", SAMPLES, "--settle", "0", "--event-types",
                              "REMOVE", "--target", f"exec:python3 {script}",
                              "--target-timeout", "600", "--checkpoint", ck],
                             start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + PATIENCE
        while not os.path.exists(pids) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for the processor to start, not for a race
        self.assertTrue(os.path.exists(pids), "the processor never started")
        p.send_signal(signal.SIGTERM)
        text = self.ends(p, pids, "SIGTERM did not end the run: the exec batch kept it "
                         "waiting")
        self.assertIn("interrupted", text)
        self.assertEqual(self.acked(ck), 0)

    # -- case 5: whole lines on a full disk, exactly once after a resume --

    def small_disk(self, size="64k"):
        """A tmpfs of size bytes (unmounted in tearDown), or None where
        mounting is refused (not root)."""
        d = self.path("disk")
        os.makedirs(d)
        if os.environ.get("DDA_TEST_NO_TMPFS"):  # to exercise the fallback as root
            return None
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", d],
                           capture_output=True)
        if p.returncode:
            return None
        self.mounts.append(d)
        return d

    def grow_disk(self, d):
        subprocess.run(["mount", "-o", "remount,size=8m", d], check=True)

    def full_disk_run(self, out_path, *args):
        """Runs the replay on a disk that fills up: on a tmpfs when it can be
        mounted, else (not root) with RLIMIT_FSIZE in the child, SIGXFSZ
        ignored, so that writes past the limit fail with EFBIG. The limit
        sits above a 400 KB pre-filled line, so the spool (in TMPDIR) and
        the checkpoint (in the test's directory) stay under it."""
        disk = os.path.dirname(out_path)
        if disk in self.mounts:
            return self.replay(*args)
        print("note: tmpfs could not be mounted (not root, or DDA_TEST_NO_TMPFS set): "
              "RLIMIT_FSIZE instead",
              file=sys.stderr)
        import resource
        with open(out_path, "ab") as f:
            f.write(b"{" + b" " * 400000 + b"}\n")
        limit = os.path.getsize(out_path) + 64 * 1024

        def limited():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return self.replay(*args, preexec_fn=limited)

    def full_disk_dir(self):
        d = self.small_disk()
        if d is None:
            d = self.path("disk")
            os.makedirs(d, exist_ok=True)
        return d

    def grow(self, d):
        if d in self.mounts:
            self.grow_disk(d)

    def test_file_target_on_a_full_disk_stays_whole_and_resumes_exactly_once(self):
        ref = self.reference()
        disk = self.full_disk_dir()
        out, ck, report = (os.path.join(disk, "out.ndjson"), self.path("ck.json"),
                           self.path("report.json"))
        args = ("-q", "--target", "file:" + out, "--batch-size", "10", "--checkpoint", ck,
                "--report", report)
        status, _, err = self.full_disk_run(out, *args)
        self.assertEqual(status, 3, err)
        got = self.whole_records(out)
        self.assertIn("cannot write '%s'" % out, err)
        self.assertLess(len(got), len(ref))
        with open(ck) as f:
            self.assertEqual(json.load(f)["lanes"], [len(got)])  # moved after the write only
        rep = self.report(report)
        self.assertEqual((rep["acknowledged"], rep["stopped"]), (len(got), True))
        self.grow(disk)
        status, _, err = self.replay(*args)
        self.assertEqual(status, 0, err)
        got = self.whole_records(out)
        self.assertEqual(sorted(r["eventID"] for r in got), sorted(r["eventID"] for r in ref))

    def whole_records(self, path, member=None):
        """Records of whole lines, skipping the RLIMIT fallback's filler."""
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(not data or data.endswith(b"\n"),
                        "torn last line: %r" % data[-80:])
        out = []
        for n, line in enumerate(data.splitlines(), 1):
            try:
                doc = json.loads(line)
            except ValueError:
                self.fail("line %d is not whole JSON: %r" % (n, line[:80]))
            if doc:
                out += (doc[member] if member else doc)["Records"]
        return out

    def test_dlq_on_a_full_disk_stays_whole_and_a_resume_parks_each_record_once(self):
        """Reproduction: on a full disk the DLQ got a torn line, the resume
        appended to it, and re-reading the DLQ found 210 of the 220 records."""
        ref = self.reference()
        self.target.fail_first = 10 ** 9  # the processor fails every batch
        disk = self.full_disk_dir()
        dlq, ck, report = (os.path.join(disk, "dlq.ndjson"), self.path("ck.json"),
                           self.path("report.json"))
        args = ("-q", "--target", self.target.url, "--batch-size", "10", "--max-retries", "0",
                "--dlq", "file:" + dlq, "--checkpoint", ck, "--report", report)
        status, _, err = self.full_disk_run(dlq, *args)
        self.assertEqual(status, 3, err)
        self.assertIn("cannot write the DLQ", err)
        parked = self.whole_records(dlq, "ddbaudit")
        self.assertLess(len(parked), len(ref))
        with open(ck) as f:
            self.assertEqual(json.load(f)["lanes"], [len(parked)])
        self.assertEqual(self.report(report)["dlq"], len(parked))
        self.grow(disk)
        status, _, err = self.replay(*args)
        self.assertEqual(status, 1, err)
        parked = self.whole_records(dlq, "ddbaudit")
        self.assertEqual(sorted(r["eventID"] for r in parked),
                         sorted(r["eventID"] for r in ref))
        # The DLQ is a source: re-driven, every record arrives once.
        self.target.fail_first = 0
        status, _, err = self.replay("-q", "--target", self.target.url, source=dlq)
        self.assertEqual(status, 0, err)
        self.assertEqual(sorted(r["eventID"] for r in self.target.accepted),
                         sorted(r["eventID"] for r in ref))

    def test_a_torn_last_line_is_cut_before_appending(self):
        """A run killed mid-write leaves a line without its newline: the next
        run cuts it (and says so) instead of continuing it."""
        ref = self.reference()
        out = self.path("out.ndjson")
        whole = json.dumps({"Records": ref[:3]})
        torn = json.dumps({"Records": ref[3:6]})[:-40]
        with open(out, "w") as f:
            f.write(whole + "\n" + torn)
        status, _, err = self.replay("--target", "file:" + out, "--event-types", "REMOVE")
        self.assertEqual(status, 0, err)
        self.assertIn("torn line (%d bytes" % len(torn), err)
        got = self.whole_records(out)
        removes = [r for r in ref if r["eventName"] == "REMOVE"]
        self.assertEqual([r["eventID"] for r in got],
                         [r["eventID"] for r in ref[:3] + removes])
        # The same for a file DLQ.
        dlq = self.path("dlq.ndjson")
        with open(dlq, "w") as f:
            f.write('{"ddbaudit":{"Records":[')
        self.target.fail_first = 10 ** 9
        status, _, err = self.replay("--target", self.target.url, "--event-types", "REMOVE",
                                     "--max-retries", "0", "--dlq", "file:" + dlq)
        self.assertEqual(status, 1, err)
        self.assertIn("the DLQ '%s' ended with a torn line" % dlq, err)
        self.assertEqual(len(self.whole_records(dlq, "ddbaudit")), len(removes))

    def test_stdout_closed_fails_and_writes_nothing_elsewhere(self):
        """Reproduction: with stdout closed, `--target -` wrote its batches
        into the DLQ file, which had got descriptor 1, and exited 0."""
        dlq = self.path("dlq.ndjson")
        status, _, err = self.replay("--target", "-", "--dlq", "file:" + dlq,
                                     stdout=None, preexec_fn=lambda: os.close(1))
        self.assertEqual(status, 3, err)
        self.assertIn("stdout", err)
        self.assertFalse(os.path.exists(dlq) and os.path.getsize(dlq),
                         "batches went into the DLQ file")
        # A stdout open for reading only (as a closed one may be plugged) fails too.
        with open(os.devnull, "rb") as ro:
            status, _, err = self.replay("--target", "-", "--dlq", "file:" + dlq,
                                         stdout=ro)
        self.assertEqual(status, 3, err)
        self.assertIn("stdout", err)
        self.assertFalse(os.path.exists(dlq) and os.path.getsize(dlq))

    def test_a_second_run_on_the_same_files_is_refused_while_one_runs(self):
        """Two replays with one checkpoint (cron overlapping itself) would
        both send every record, and the second one's torn-line cut could cut
        the line the first is writing: the second is refused (exit 3) before
        it touches anything, and the first goes on undisturbed."""
        started, gate, out = self.path("started"), self.path("gate"), self.path("out.ndjson")
        script = self.write("gate.py", f"""
import os, sys, time
batch = sys.stdin.read()
open({started!r}, "w").close()
deadline = time.monotonic() + {PATIENCE}
while not os.path.exists({gate!r}) and time.monotonic() < deadline:
    time.sleep(0.01)
with open({out!r}, "a") as f:
    f.write(batch + "\\n")
""")
        ck, dlq = self.path("ck.json"), self.path("dlq.ndjson")
        args = [BINARY, "replay", SAMPLES, "--settle", "0", "-q", "--target",
                f"exec:python3 {script}", "--batch-size", "50", "--checkpoint", ck,
                "--dlq", "file:" + dlq]
        first = subprocess.Popen(args, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + PATIENCE
            while not os.path.exists(started) and first.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.01)  # waiting for the first batch to be at the target
            self.assertTrue(os.path.exists(started), "the first run never sent a batch")
            second = subprocess.run(args, capture_output=True, timeout=PATIENCE)
            err = second.stderr.decode()
            self.assertEqual(second.returncode, 3, err)
            self.assertIn("in use by another replay", err)
        finally:
            open(gate, "w").close()
            _, first_err = first.communicate(timeout=PATIENCE)
        self.assertEqual(first.returncode, 0, first_err.decode())
        with open(out) as f:
            got = [r["eventID"] for line in f if line.strip()
                   for r in json.loads(line)["Records"]]
        self.assertEqual(sorted(got), sorted(r["eventID"] for r in self.reference()))

    # -- case 8: answers that must not be trusted --------------------------

    def test_a_2xx_answer_that_is_not_json_fails_the_batch(self):
        ref = self.reference()
        self.target.answer = b"OK, thanks"
        dlq, report = self.path("dlq.ndjson"), self.path("report.json")
        status, _, err = self.replay("-q", "--target", self.target.url, "--batch-size", "50",
                                     "--max-retries", "0", "--dlq", "file:" + dlq,
                                     "--report", report)
        self.assertEqual(status, 1, err)
        rep = self.report(report)
        self.assertEqual((rep["acknowledged"], rep["dlq"]), (0, len(ref)))
        with open(dlq) as f:
            lines = [json.loads(line) for line in f]
        self.assertIn("not JSON", lines[0]["ddbaudit"]["errorMessage"])
        # An empty answer (a function with no return value) stays success.
        self.target.answer = b""
        status, _, err = self.replay("-q", "--target", self.target.url, "--report", report)
        self.assertEqual(status, 0, err)
        self.assertEqual(self.report(report)["acknowledged"], len(ref))

    def padded_partial_failure(self, records):
        """The first record reported failed, after padding past the cap."""
        seq = records[0]["dynamodb"]["SequenceNumber"]
        return (b'{"pad":"' + b"x" * (ANSWER_CAP + 4096) + b'","batchItemFailures":' +
                json.dumps([{"itemIdentifier": seq}]).encode() + b"}")

    def test_a_partial_failure_over_the_answer_cap_is_not_an_acknowledgement(self):
        """Reproduction: a 1 MiB+ padded partial-failure answer acknowledged
        all 220 records."""
        ref = self.reference()
        self.target.answer = self.padded_partial_failure
        ck, report = self.path("ck.json"), self.path("report.json")
        status, _, err = self.replay("-q", "--target", self.target.url, "--batch-size", "1000",
                                     "--max-retries", "1", "--checkpoint", ck,
                                     "--report", report)
        self.assertEqual(status, 3, err)
        self.assertIn("over %d bytes" % ANSWER_CAP, err)
        rep = self.report(report)
        self.assertEqual((rep["acknowledged"], rep["complete"]), (0, False))
        self.assertEqual(self.acked(ck), 0)
        self.assertEqual(len(ref), rep["records"])

    def test_lambda_and_exec_answers_are_held_to_the_same_rule(self):
        creds = ("AKIDHOSTILE", "hostile/secret", "")
        self.target.lambda_creds = creds
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": creds[0], "AWS_SECRET_ACCESS_KEY": creds[1],
                    "AWS_REGION": "eu-west-1", "AWS_CONFIG_FILE": self.path("none"),
                    "AWS_SHARED_CREDENTIALS_FILE": self.path("none"),
                    "AWS_EC2_METADATA_DISABLED": "true"})
        report = self.path("report.json")
        for answer in (b"<html>gateway says hi</html>", self.padded_partial_failure):
            self.target.answer = answer
            status, _, err = self.replay("-q", "--target", "lambda:fn",
                                         "--lambda-endpoint-url", self.target.url,
                                         "--event-types", "REMOVE", "--max-retries", "0",
                                         "--report", report, env=env)
            self.assertEqual(status, 3, err)
            self.assertEqual(self.report(report)["acknowledged"], 0)
            self.assertEqual(self.target.bad_signatures, [])
        # The function returned nothing: Lambda answers null, a success.
        self.target.answer = None
        status, _, err = self.replay("-q", "--target", "lambda:fn", "--lambda-endpoint-url",
                                     self.target.url, "--event-types", "REMOVE",
                                     "--report", report, env=env)
        self.assertEqual(status, 0, err)
        # exec: stdout is the answer, held to the same rule.
        status, _, err = self.replay("-q", "--target", "exec:cat >/dev/null; echo processed",
                                     "--event-types", "REMOVE", "--max-retries", "0",
                                     "--report", report)
        self.assertEqual(status, 3, err)
        self.assertIn("not JSON", err)
        status, _, err = self.replay("-q", "--target", "exec:cat >/dev/null",
                                     "--event-types", "REMOVE", "--report", report)
        self.assertEqual(status, 0, err)

    # -- case 9: a checkpoint is read strictly ------------------------------

    def stopped_run(self, source=SAMPLES):
        """A run stopped at record 60 (a poison record, no DLQ) with a
        checkpoint: its arguments."""
        ref = self.reference()
        self.target.poison = {ref[60]["dynamodb"]["SequenceNumber"]}
        ck = self.path("ck.json")
        args = ("-q", "--target", self.target.url, "--batch-size", "20", "--max-retries", "0",
                "--checkpoint", ck)
        status, _, err = self.replay(*args, source=source)
        self.assertEqual(status, 3, err)
        with open(ck) as f:
            self.assertEqual(json.load(f)["lanes"], [60])
        self.target.poison.clear()
        return ck, args

    def test_checkpoint_lanes_must_be_integers_in_range(self):
        """Reproduction: a lane of 1e300 or "x" was read as 0 and the 60
        acknowledged records were sent again."""
        ck, args = self.stopped_run()
        with open(ck) as f:
            good = f.read()
        for lane, says in (("1e300", "lane 0 is 1"), ('"x"', "lane 0 is 'x'"),
                           ("-5", "lane 0 is -5"), ("60.5", "lane 0 is 60.5")):
            with open(ck, "w") as f:
                f.write(good.replace('"lanes":[60]', '"lanes":[%s]' % lane))
            sent = self.target.batches
            status, _, err = self.replay(*args)
            self.assertEqual(status, 2, err)
            self.assertIn("not an integer in range", err)
            self.assertIn(says, err)
            self.assertEqual(self.target.batches, sent, "records were sent again")
        with open(ck, "w") as f:
            f.write(good.replace('"lanes":[60]', '"lanes":[100000]'))
        status, _, err = self.replay(*args)
        self.assertEqual(status, 2, err)
        self.assertIn("lane 0 is at 100000, past its", err)
        with open(ck, "w") as f:
            f.write(good)
        status, _, err = self.replay(*args)
        self.assertEqual(status, 0, err)
        self.assertEqual(len(self.target.accepted), len(self.reference()))

    def test_a_source_changed_in_place_is_refused(self):
        """docs/replay.md: a checkpoint for a source that has changed since
        is refused. An object edited in place (same size, other bytes) used
        to resume, sending the new bytes as if they were the planned ones."""
        src = self.path("src")
        shutil.copytree(SAMPLES, src)
        ck, args = self.stopped_run(source=src)
        # An object with a record past the checkpoint, one of whose values
        # changes (a digit of an address: the size stays the same).
        key = next(r["replay"]["object"]["key"] for r in self.reference()[100:]
                   if "IPAddress" in json.dumps(r["dynamodb"]))
        victim = os.path.join(src, key.split("/", 1)[1])
        with open(victim) as f:
            text = f.read()
        at = text.index('"IPAddress": {"S": "') + len('"IPAddress": {"S": "')
        edited = text[:at] + ("8" if text[at] != "8" else "9") + text[at + 1:]
        self.assertEqual(len(edited), len(text))
        with open(victim, "w") as f:
            f.write(edited)
        sent = self.target.batches
        status, _, err = self.replay(*args, source=src)
        self.assertEqual(status, 2, err)
        self.assertIn("the source changed since it was written", err)
        self.assertEqual(self.target.batches, sent)
        # Put back as it was, it resumes.
        with open(victim, "w") as f:
            f.write(text)
        status, _, err = self.replay(*args, source=src)
        self.assertEqual(status, 0, err)


if __name__ == "__main__":
    main()
