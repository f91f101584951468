"""The S3 reader's adaptive window of transfers in flight (issue 14).

Against bench/s3-responder (a C S3 endpoint that answers after a first-byte
delay, and answers 503 SlowDown past a number of requests in flight): the
window grows past the old fixed 64 when the server is slow, as seen from the
server's own count of requests in flight and from the client's -v summary;
throttled, it is cut and the run still GETs every object exactly once (the
server counts the GETs it answered 200) with the same report. Through the
fault proxy in front of moto_server: 503 SlowDown on half of the objects' first
GETs cuts the window, every object is read once, and the report is the one
of an unthrottled run. Nothing here asserts a time: growth is checked as a
figure the run reached, not how fast."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

from harness import ROOT, Case, main, run, verify_json
from fault_proxy import Rule
from moto import MotoCase, upload_tree

RESPONDER = os.environ.get("DDA_S3_RESPONDER") or os.path.join(
    os.environ.get("DDA_BUILD_DIR") or os.path.join(ROOT, "build"), "tests", "s3-responder")
SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
RANGE = ["--from", "2025-07-12T00:00Z", "--to", "2025-07-13T00:00Z", "--settle", "0"]
PEAK = re.compile(r"window of transfers in flight peaked at (\d+), ended at (\d+), "
                  r"cut by throttling (\d+) times")


def require_responder():
    if not os.access(RESPONDER, os.X_OK):
        print(f"SKIPPED: needs bench/s3-responder built (not found at {RESPONDER}; "
              "cmake --build builds it)", file=sys.stderr)
        sys.exit(1)


def generate(root, n):
    """n audit objects over the 24 hours of 2025-07-12, one INSERT each."""
    for i in range(n):
        h = i % 24
        d = os.path.join(root, "bench", "audit-logs", "2025", "07", "12", f"{h:02d}")
        os.makedirs(d, exist_ok=True)
        user = f"user{i}"
        rec = {"timestamp": f"2025-07-12T{h:02d}:{(i // 24) % 60:02d}:00.{i:06d}",
               "eventName": "INSERT", "userId": user, "activityId": "a",
               "awsRegion": "us-east-1", "eventSource": "aws:dynamodb",
               "newImage": {"UserId": {"S": user}, "ActivityId": {"S": "a"},
                            "N": {"N": str(i)}}}
        with open(os.path.join(d, f"{user}-a.json"), "w") as f:
            json.dump(rec, f)


class Responder:
    """bench/s3-responder on a free port; stop() returns its counters."""

    def __init__(self, root, *args):
        self.proc = subprocess.Popen([RESPONDER, root, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"s3-responder did not start: {self.proc.stderr.read()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        m = re.search(r"requests (\d+) gets (\d+) lists (\d+) slowdowns (\d+) "
                      r"peak_connections (\d+) peak_in_flight (\d+)", err)
        if not m:
            raise RuntimeError(f"s3-responder gave no counters: {err}")
        keys = ("requests", "gets", "lists", "slowdowns", "peak_connections", "peak_in_flight")
        return dict(zip(keys, map(int, m.groups())))


def window(err):
    m = PEAK.search(err)
    if not m:
        raise AssertionError(f"no window summary in the -v output: {err[-2000:]}")
    return tuple(map(int, m.groups()))


def comparable(rep):
    """The report's findings and counts, without what differs by run."""
    return (rep["summary"]["objects"], rep["summary"]["records"], rep["summary"]["items"],
            rep["summary"]["by_kind"], rep["summary"]["anomalies"],
            sorted((a["kind"], (a.get("object") or {}).get("key"), a["detail"])
                   for a in rep["anomalies"]))


class SlowServer(Case):
    OBJECTS = 4000

    @classmethod
    def setUpClass(cls):
        require_responder()
        cls.root = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"dda-conc-{os.getpid()}")
        generate(cls.root, cls.OBJECTS)
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
        os.environ.pop("AWS_PROFILE", None)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def verify(self, *server_args, extra=()):
        srv = Responder(self.root, *server_args)
        try:
            status, rep, err = verify_json("s3://bench/audit-logs/", "--endpoint-url", srv.url,
                                           *RANGE, "-v", *extra)
        finally:
            counts = srv.stop()
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["summary"]["objects"], self.OBJECTS)
        self.assertTrue(rep["run"]["complete"])
        return rep, err, counts

    def test_window_grows_past_64_when_the_server_is_slow(self):
        """100 ms before every answer: throughput is the window over the
        latency, so the window keeps doubling past the old fixed 64."""
        rep, err, counts = self.verify("--delay-ms", "100")
        peak, _, cuts = window(err)
        self.assertGreater(peak, 64, err[-2000:])
        self.assertLessEqual(peak, 256)  # the default maximum
        self.assertEqual(cuts, 0)
        # The server saw it: more than 64 requests waiting for it at once,
        # on reused connections (one per transfer, not one per GET).
        self.assertGreater(counts["peak_in_flight"], 64, counts)
        self.assertLessEqual(counts["peak_connections"], 256, counts)
        self.assertEqual(counts["gets"], self.OBJECTS)

    def test_concurrency_is_the_maximum(self):
        """--concurrency N caps the window: the server never sees more."""
        rep, err, counts = self.verify("--delay-ms", "50", extra=("--concurrency", "24"))
        peak, _, _ = window(err)
        self.assertLessEqual(peak, 24)
        self.assertLessEqual(counts["peak_in_flight"], 24, counts)
        self.assertLessEqual(counts["peak_connections"], 24, counts)
        self.assertEqual(counts["gets"], self.OBJECTS)

    def test_throttled_window_backs_off_and_reads_each_object_once(self):
        """Past 24 requests in flight the server answers 503 SlowDown: the
        window is cut (and grows back), every object is GET exactly once
        with a 200, and the report is the one of an unthrottled run."""
        clean, _, _ = self.verify("--delay-ms", "5")
        rep, err, counts = self.verify("--delay-ms", "20", "--slowdown-above", "24")
        _, _, cuts = window(err)
        self.assertGreater(counts["slowdowns"], 0, counts)
        self.assertGreaterEqual(cuts, 1, err[-2000:])
        self.assertIn("throttled (HTTP 503): at most", err)
        self.assertEqual(counts["gets"], self.OBJECTS)
        self.assertEqual(comparable(rep), comparable(clean))


class ThrottlingProxy(MotoCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3.create_bucket(Bucket="audit")
        cls.count = upload_tree(cls.s3, "audit", SAMPLES, "audit-logs/")

    def test_slowdown_from_the_proxy_cuts_the_window(self):
        # --no-diff: GAP diffs read two objects again after the audit.
        args = ["s3://audit/audit-logs/", "--endpoint-url", self.proxy.url, "--settle", "0",
                "--no-diff"]
        status, clean, err = verify_json(*args)
        self.assertEqual(status, 1, err)
        self.proxy.reset()
        self.proxy.rules.append(Rule("GET", "/audit/audit-logs/", 503, 1, every=2))
        status, rep, err = verify_json(*args, "-v")
        self.assertEqual(status, 1, err)
        self.assertGreater(self.proxy.injected, self.count // 3)
        _, _, cuts = window(err)
        self.assertGreaterEqual(cuts, 1, err[-2000:])
        self.assertIn("throttled (HTTP 503): at most", err)
        # Every object read, each answered 200 once: its GETs are one more
        # than the 503s it was given.
        gets = [p for m, p, q in self.proxy.log if m == "GET" and not q]
        self.assertEqual(len(set(gets)), self.count)
        self.assertEqual(len(gets), self.count + self.proxy.injected)
        self.assertEqual(comparable(rep), comparable(clean))
        self.assertTrue(rep["run"]["complete"])


if __name__ == "__main__":
    main()
