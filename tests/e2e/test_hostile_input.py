"""Hostile input, end to end (issue 10, case 1): NDJSON lines of megabytes
(read whole up to --max-object-bytes, one finding past it, never a hang) and
replay reading back its own file: target and DLQ."""
import gzip
import json
import os
import subprocess
import threading
from harness import BINARY, Case, main, run, verify_json
from target_server import TargetServer

HOUR = "audit-logs/2025/07/12/08/"
MIB = 1 << 20
# Generous: a hang ends the test, it is not a timing assertion (lower it to
# check quickly that an old build hangs).
WAIT = int(os.environ.get("DDA_HANG_WAIT", "120"))


def seed(user, act="a", version=1, ts="2025-07-12T08:10:00.000001", pad=0, old=None,
         event="INSERT"):
    img = {"UserId": {"S": user}, "ActivityId": {"S": act}, "Version": {"N": str(version)}}
    if pad:
        img["Pad"] = {"S": "p" * pad}
    rec = {"timestamp": ts, "eventName": event, "userId": user, "activityId": act,
           "awsRegion": "us-east-1", "eventSource": "aws:dynamodb", "newImage": img}
    if old is not None:
        rec["oldImage"] = {"UserId": {"S": user}, "ActivityId": {"S": act},
                           "Version": {"N": str(old)}}
    return rec


def line(rec):
    return (json.dumps(rec) + "\n").encode()


def records_of(path):
    with open(path) as f:
        return [r for ln in f for r in json.loads(ln)["Records"]]


class LongLinesTest(Case):
    """Case 1: lines over 1 MiB (plain, gzip, stdin) and over the cap."""

    def sources(self, data):
        """The same NDJSON as a plain file, a .gz file and stdin."""
        plain = self.write("in.ndjson", data)
        gz = self.write("in.ndjson.gz", gzip.compress(data, 1))
        return [("plain", (plain,), None), ("gzip", (gz,), None), ("stdin", ("-",), data)]

    def test_lines_of_megabytes_are_read_whole(self):
        data = (line(seed("a")) + line(seed("b", pad=1200000)) + line(seed("c", pad=3000000)) +
                line(seed("d")))
        for name, args, stdin in self.sources(data):
            with self.subTest(name):
                status, rep, err = verify_json(*args, "--settle", "0", stdin=stdin,
                                               timeout=WAIT)
                self.assertEqual(status, 0, err)
                self.assertEqual(rep["summary"]["valid"], 4)
                self.assertEqual(rep["anomalies"], [])

    def test_a_line_over_the_cap_is_one_finding_and_nothing_else_is_lost(self):
        # Lines 1, 2, 4, 5 fit a 2 MB cap, line 3 (3 MB) does not; the last
        # line ends the stream without a newline.
        data = (line(seed("a")) + line(seed("b", pad=1500000)) + line(seed("c", pad=3000000)) +
                line(seed("d")) + line(seed("e"))[:-1])
        for name, args, stdin in self.sources(data):
            with self.subTest(name):
                status, rep, err = verify_json(*args, "--settle", "0", "--max-object-bytes",
                                               "2000000", stdin=stdin, timeout=WAIT)
                self.assertEqual(status, 1, err)
                self.assertEqual(rep["summary"]["valid"], 4, "the lines around it count")
                self.assertEqual(rep["summary"]["items"], 4)
                self.assertEqual([a["kind"] for a in rep["anomalies"]], ["UNREADABLE"])
                a = rep["anomalies"][0]
                self.assertEqual(a["line"], 3)
                self.assertIn("line 3 is longer than the 2000000-byte cap", a["detail"])

    def test_the_last_line_over_the_cap(self):
        data = line(seed("a")) + line(seed("b")) + json.dumps(seed("c", pad=5000)).encode()
        path = self.write("in.ndjson", data)
        status, rep, err = verify_json(path, "--settle", "0", "--max-object-bytes", "4096",
                                       timeout=WAIT)
        self.assertEqual(status, 1, err)
        self.assertEqual(rep["summary"]["valid"], 2)
        self.assertEqual([(a["kind"], a["line"]) for a in rep["anomalies"]],
                         [("UNREADABLE", 3)])

    def wait_measured(self, proc, writer):
        """Waits for proc (at most WAIT seconds); returns its status and
        peak resident size in bytes."""
        timer = threading.Timer(WAIT, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        writer.join()
        return proc.returncode, usage.ru_maxrss * 1024

    def feed(self, proc, total):
        """Writes `total` bytes of 'x' (forever when None) to proc's stdin,
        stopping when it closes."""
        def go():
            block = b"x" * MIB
            sent = 0
            try:
                while total is None or sent < total:
                    proc.stdin.write(block)
                    sent += len(block)
                proc.stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass
        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t

    def test_stdin_of_100_mb_without_a_newline(self):
        out = self.path("rep")
        proc = subprocess.Popen([BINARY, "verify", "-", "--report", out],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        status, rss = self.wait_measured(proc, self.feed(proc, 100 * MIB))
        err = proc.stderr.read().decode()
        self.assertEqual(status, 1, err)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual([(a["kind"], a["line"]) for a in rep["anomalies"]],
                         [("UNREADABLE", 1)])
        self.assertIn("longer than the 16777216-byte cap", rep["anomalies"][0]["detail"])
        # Bounded by the 16 MiB cap, not by the 100 MB line.
        self.assertLess(rss, 96 * MIB, "memory grew with the line")

    def test_stdin_that_never_ends_a_line_is_given_up(self):
        out = self.path("rep")
        proc = subprocess.Popen([BINARY, "verify", "-", "--report", out,
                                 "--max-object-bytes", "1048576"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        status, rss = self.wait_measured(proc, self.feed(proc, None))
        err = proc.stderr.read().decode()
        self.assertEqual(status, 1, err)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual([a["kind"] for a in rep["anomalies"]], ["UNREADABLE"])
        self.assertIn("no end of line within 64 times the cap", rep["anomalies"][0]["detail"])
        self.assertLess(rss, 64 * MIB, "memory grew with the line")


class ReplayReadsItsOwnOutputTest(Case):
    """Case 1: replay's file: target and DLQ hold lines of ~1.3 MB (100
    records each); both are sources replay reads back, losing nothing."""

    RECORDS = 230

    def setUp(self):
        super().setUp()
        with open(self.path("in.ndjson"), "wb") as f:
            for i in range(self.RECORDS):
                ts = "2025-07-12T08:%02d:%02d.%06d" % (i // 60, i % 60, i)
                f.write(line(seed("u%d" % i, ts=ts, pad=12400)))
        self.src = self.path("in.ndjson")

    def replay(self, source, *args):
        return run("replay", source, "--settle", "0", "-q", "--batch-size", "100", *args,
                   timeout=WAIT)

    def assertBigLines(self, path):
        with open(path, "rb") as f:
            sizes = [len(ln) for ln in f]
        self.assertEqual(len(sizes), 3, "batches of 100, 100 and 30")
        self.assertGreater(min(sizes[:2]), 1250000)

    def assertSameRecords(self, got, want):
        self.assertEqual(len(got), self.RECORDS)
        self.assertEqual(sorted(r["eventID"] for r in got), sorted(r["eventID"] for r in want))

    def test_file_target_output_is_a_source(self):
        out = self.path("out.ndjson")
        status, _, err = self.replay(self.src, "--target", "file:" + out)
        self.assertEqual(status, 0, err)
        self.assertBigLines(out)
        first = records_of(out)
        self.assertEqual(len(first), self.RECORDS)
        status, rep, err = verify_json(out, "--settle", "0", timeout=WAIT)
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["summary"]["valid"], self.RECORDS)
        again = self.path("again.ndjson")
        status, _, err = self.replay(out, "--target", "file:" + again)
        self.assertEqual(status, 0, err)
        self.assertSameRecords(records_of(again), first)

    def test_dlq_file_is_redriven_whole(self):
        target = TargetServer()
        try:
            target.fail_first = 10 ** 6  # every batch fails
            dlq = self.path("dlq.ndjson")
            status, _, err = self.replay(self.src, "--target", target.url, "--max-retries",
                                         "0", "--dlq", "file:" + dlq)
        finally:
            target.stop()
        self.assertEqual(status, 1, err)
        self.assertBigLines(dlq)
        with open(dlq) as f:
            parked = [r for ln in f for r in json.loads(ln)["ddbaudit"]["Records"]]
        out = self.path("out.ndjson")
        status, _, err = self.replay(dlq, "--target", "file:" + out)
        self.assertEqual(status, 0, err)
        self.assertSameRecords(records_of(out), parked)


if __name__ == "__main__":
    main()
