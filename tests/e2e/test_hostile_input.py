"""Hostile input, end to end (issue 10, cases 1, 11 and 12): NDJSON lines of
megabytes (read whole up to --max-object-bytes, one finding past it, never a
hang), replay reading back its own file: target and DLQ, a NUL inside a key,
binary objects, and archives with duplicate entry names or hard links."""
import csv
import gzip
import io
import json
import os
import random
import subprocess
import tarfile
import threading
import warnings
import zipfile
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


class KeysAndBinaryTest(Case):
    """Case 11: a NUL inside a key value; objects that are not text."""

    def test_a_nul_in_a_key_is_escaped_not_cut(self):
        self.write(HOUR + "x-1.json", json.dumps(seed("a\u0000b", "1")))
        src = os.path.join(self.dir, "audit-logs")
        status, rep, err = verify_json(src, "--settle", "0")
        self.assertEqual(status, 1, err)  # the name cannot match a key holding a NUL
        [a] = rep["anomalies"]
        self.assertEqual(a["kind"], "KEY_MISMATCH")
        self.assertEqual(a["item"]["UserId"], {"S": "a\u0000b"})
        self.assertIn("expected 'a\\x00b-1.json'", a["detail"])
        status, out, err = run("verify", src, "--settle", "0", "--format", "csv")
        self.assertEqual(status, 1, err)
        rows = list(csv.DictReader(io.StringIO(out.decode())))
        self.assertEqual(rows[0]["item"], "ActivityId=1,UserId=a\\x00b")
        status, out, err = run("verify", src, "--settle", "0", "--format", "md")
        self.assertIn(b"UserId=a\\x00b", out)
        self.assertNotIn(b"\0", out)
        # history finds the item by the escaped text and shows it so.
        for key in ("UserId=a\\x00b,ActivityId=1",
                    '{"UserId":{"S":"a\\u0000b"},"ActivityId":{"S":"1"}}'):
            status, out, err = run("history", src, "--settle", "0", "--key", key)
            self.assertEqual(status, 1, err)
            self.assertIn(b"item ActivityId=1,UserId=a\\x00b: 1 events", out)
            self.assertNotIn(b"\0", out)
        status, out, err = run("history", src, "--settle", "0", "--key", "UserId=a,ActivityId=1")
        self.assertIn(b": 0 events", out, "a key cut at the NUL is another item")

    def test_binary_objects_are_unreadable(self):
        rnd = random.Random(10)
        noise = bytes(rnd.getrandbits(8) for _ in range(4096))
        png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
               b"\x00\x00\x00\x1f\x15\xc4\x89" + noise[:200])
        self.write(HOUR + "good-1.json", json.dumps(seed("good", "1")))
        self.write(HOUR + "r-1.json", noise)
        self.write(HOUR + "p-1.json", png)
        self.write(HOUR + "z-1.json.gz", gzip.compress(noise))
        text = b"\0" + noise[:300].replace(b"\n", b"")
        self.write(HOUR + "nd.ndjson", line(seed("n")) + text + b"\n" + line(seed("m")))
        status, rep, err = verify_json(os.path.join(self.dir, "audit-logs"), "--settle", "0")
        self.assertEqual(status, 1, err)
        got = {a["object"]["key"][len(HOUR):]: a for a in rep["anomalies"]
               if a["kind"] != "KEY_MISMATCH"}
        self.assertEqual(sorted(got), ["nd.ndjson", "p-1.json", "r-1.json", "z-1.json.gz"])
        for name, a in got.items():
            self.assertEqual(a["kind"], "UNREADABLE", name)
            self.assertIn("not text", a["detail"], name)
        self.assertEqual(got["nd.ndjson"]["line"], 2)
        # Text that is JSON but for a bad byte in a string stays INVALID_VALUE.
        raw = json.dumps(seed("v", "1")).encode().replace(b'"v"', b'"v\xff"', 1)
        self.write(HOUR + "v-1.json", raw)
        status, rep, err = verify_json(os.path.join(self.dir, "audit-logs"), "--settle", "0")
        bad = [a for a in rep["anomalies"] if a["object"]["key"].endswith("v-1.json")]
        self.assertEqual([a["kind"] for a in bad], ["INVALID_VALUE"])


class ArchiveEntriesTest(Case):
    """Case 12: entries are objects by position, not by name."""

    def entries(self):
        """Two entries named u-a.json: the second continues the first with
        a gap (Version 2 is missing)."""
        first = line(seed("u", "a", 1, "2025-07-12T08:10:00.000001"))
        second = line(seed("u", "a", 3, "2025-07-12T08:20:00.000001", old=2, event="MODIFY"))
        return [(HOUR + "u-a.json", first), (HOUR + "u-a.json", second)]

    def make_tar(self, name, entries, mode="w"):
        path = self.path(name)
        with tarfile.open(path, mode) as t:
            for n, data in entries:
                info = tarfile.TarInfo(n)
                info.size = len(data)
                info.mtime = 1752307200
                t.addfile(info, io.BytesIO(data))
        return path

    def make_zip(self, name, entries):
        path = self.path(name)
        with zipfile.ZipFile(path, "w") as z:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Duplicate name": on purpose
                for n, data in entries:
                    z.writestr(n, data)
        return path

    def test_a_gap_diff_rereads_the_entry_it_is_about(self):
        archives = [self.make_tar("dup.tar", self.entries()),
                    self.make_tar("dup.tar.gz", self.entries(), "w:gz"),
                    self.make_zip("dup.zip", self.entries())]
        for path in archives:
            with self.subTest(os.path.basename(path)):
                status, rep, err = verify_json(path, "--settle", "0")
                self.assertEqual(status, 1, err)
                self.assertEqual(rep["summary"]["objects"], 2)
                [gap] = [a for a in rep["anomalies"] if a["kind"] == "GAP"]
                self.assertEqual(gap["diff"]["changed"]["Version"],
                                 {"expected": {"N": "1"}, "found": {"N": "2"}}, gap)

    def test_hard_links_are_read_as_the_linked_entry(self):
        path = self.path("links.tar")
        data = line(seed("u", "a"))
        with tarfile.open(path, "w") as t:
            info = tarfile.TarInfo(HOUR + "u-a.json")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("audit-logs/2025/07/12/09/u-a.json")
            link.type = tarfile.LNKTYPE
            link.linkname = HOUR + "u-a.json"
            t.addfile(link)
        status, rep, err = verify_json(path, "--settle", "0")
        self.assertNoCrash(status, err)
        self.assertEqual(rep["summary"]["objects"], 2)
        self.assertEqual(rep["summary"]["records"], 2, rep["anomalies"])
        kinds = sorted(a["kind"] for a in rep["anomalies"])
        # The same change filed twice: a duplicate, and outside its hour.
        self.assertNotIn("UNREADABLE", kinds)
        self.assertEqual(rep["summary"]["duplicates"], 1, rep["anomalies"])


if __name__ == "__main__":
    main()
