"""Outputs under hostile conditions (issue 10, cases 6, 7 and 10): report sets
that are whole or absent on a full disk and consistent under concurrent runs,
write errors on stdout (full or closed) that fail the run, and names that are
not UTF-8 reported losslessly in every format."""
import base64
import csv
import fcntl
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import tarfile
import time
from harness import BINARY, ROOT, Case, main, run

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
SET = {"report.json", "report.md", "report.html", "anomalies.csv", "manifest.ndjson"}
HOUR = b"2025/07/12/08/"


def record(user, act, ts="2025-07-12T08:10:00.000001"):
    img = {"UserId": {"S": user}, "ActivityId": {"S": act}, "Version": {"N": "1"}}
    return json.dumps({"timestamp": ts, "eventName": "INSERT", "userId": user,
                       "activityId": act, "awsRegion": "us-east-1",
                       "eventSource": "aws:dynamodb", "newImage": img}).encode()


def escape(name):
    """The documented escape of a name (docs/report.md): backslashes doubled,
    bytes outside valid UTF-8 and control characters as \\xHH, other valid
    UTF-8 as is."""
    out, i = [], 0
    while i < len(name):
        for n in (1, 2, 3, 4):
            try:
                ch = name[i:i + n].decode("utf-8")
                break
            except UnicodeDecodeError:
                ch = None
        if ch is None or ch < " " or ch == "\x7f":
            out.append("\\x%02X" % name[i])
            i += 1
        else:
            out.append("\\\\" if ch == "\\" else ch)
            i += len(ch.encode())
    return "".join(out)


class OutputCase(Case):
    def read(self, rdir, name):
        with open(os.path.join(rdir, name), "rb") as f:
            return f.read()

    def check_set(self, rdir):
        """A --report DIR holds one run's whole set: report.json names the
        manifest's SHA-256, every line of every file is complete, counts agree.
        Returns the report."""
        names = set(os.listdir(rdir))
        self.assertEqual(names - {".lock"}, SET, "temporary or missing files in the set")
        with open(os.path.join(rdir, "report.json"), "rb") as f:
            data = f.read()
        self.assertTrue(data.endswith(b"}\n"), "report.json is cut")
        rep = json.loads(data)
        with open(os.path.join(rdir, "manifest.ndjson"), "rb") as f:
            man = f.read()
        self.assertEqual(rep["manifest"]["sha256"], hashlib.sha256(man).hexdigest(),
                         "report.json names another manifest")
        self.assertTrue(man.endswith(b"\n"), "the manifest ends in a torn line")
        lines = [json.loads(line) for line in man.splitlines()]
        self.assertEqual(len(lines), rep["summary"]["objects"])
        with open(os.path.join(rdir, "anomalies.csv"), "rb") as f:
            rows = list(csv.reader(io.StringIO(f.read().decode("utf-8"))))
        # One CSV row per finding; report.json folds UNKNOWN_PRIOR into one entry
        # whose count says how many findings it stands for (docs/noise.md).
        listed = sum(a.get("count", 1) for a in rep["anomalies"])
        self.assertEqual(len(rows) - 1, listed)
        self.assertTrue(all(len(r) == len(rows[0]) for r in rows), "a torn CSV row")
        self.assertEqual(listed, sum(rep["summary"]["anomalies"].values()))
        with open(os.path.join(rdir, "report.md"), "rb") as f:
            md = f.read().decode("utf-8")
        self.assertTrue(md.endswith("\n"))
        self.assertIn(rep["manifest"]["sha256"], md, "report.md is from another run")
        with open(os.path.join(rdir, "report.html"), "rb") as f:
            html = f.read().decode("utf-8")
        self.assertTrue(html.endswith("</html>\n"), "report.html is cut")
        self.assertIn(rep["manifest"]["sha256"], html, "report.html is from another run")
        return rep


class ConcurrentRunsTest(OutputCase):
    """Case 6: two runs on one --report DIR leave one run's whole set."""

    def test_25_concurrent_pairs_leave_a_consistent_set(self):
        # Two sources with different manifests: the sample log and one hour of it.
        small = os.path.join(self.dir, "small")
        shutil.copytree(os.path.join(SAMPLES, "2025", "07", "12", "08"),
                        os.path.join(small, "2025", "07", "12", "08"))
        rdir = os.path.join(self.dir, "rep")
        for trial in range(25):
            procs = [subprocess.Popen([BINARY, "verify", src, "--report", rdir, "-q"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for src in (SAMPLES, small)]
            for p in procs:
                _, err = p.communicate(timeout=120)
                self.assertIn(p.returncode, (0, 1), f"trial {trial}: {err.decode()}")
            with self.subTest(trial=trial):
                rep = self.check_set(rdir)
                self.assertIn(rep["run"]["source"], (SAMPLES, small))


class LockTest(OutputCase):
    """Case 6: the rename phase holds DIR/.lock; waiting for it can be
    interrupted (a stop is never swallowed) and leaves nothing behind."""

    def blocked_on_lock(self, p):
        """Waits until p is queued for an flock (/proc/locks marks a waiter
        with '->'), so that what follows happens while it waits."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open("/proc/locks") as f:
                if any("->" in line and f" {p.pid} " in line for line in f):
                    return
            self.assertIsNone(p.poll(), "the run ended instead of waiting for the lock")
            time.sleep(0.01)
        self.fail("the run never waited for DIR/.lock")

    def start_locked(self):
        rdir = os.path.join(self.dir, "rep")
        os.makedirs(rdir)
        lock = os.open(os.path.join(rdir, ".lock"), os.O_RDWR | os.O_CREAT)
        self.addCleanup(os.close, lock)
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = subprocess.Popen([BINARY, "verify", SAMPLES, "--report", rdir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(p.kill)
        self.blocked_on_lock(p)
        # Written and waiting: only temporary files so far.
        self.assertFalse(SET & set(os.listdir(rdir)))
        return rdir, lock, p

    def test_the_set_lands_once_the_lock_is_free(self):
        rdir, lock, p = self.start_locked()
        fcntl.flock(lock, fcntl.LOCK_UN)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 1, err)
        self.check_set(rdir)

    def test_a_signal_ends_the_wait(self):
        rdir, lock, p = self.start_locked()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 3, err)
        self.assertIn("interrupted while waiting for the lock", err.decode())
        self.assertEqual(os.listdir(rdir), [".lock"], "temporary files left behind")


class FullDiskTest(OutputCase):
    """Case 6: a full disk leaves no truncated file under a final name; the
    previous run's set stays whole."""

    def setUp(self):
        super().setUp()
        self.mnt = os.path.join(self.dir, "mnt")
        os.makedirs(self.mnt)
        self.mounted = False

    def tearDown(self):
        if self.mounted:
            subprocess.run(["umount", self.mnt], check=False)
        super().tearDown()

    def mount(self, size):
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", self.mnt],
                           capture_output=True)
        self.mounted = p.returncode == 0
        return self.mounted

    def fill(self, size, limit):
        """A previous small run's set, then the sample log's run, which does
        not fit: on a tmpfs of `size` bytes, or (mount refused: not root)
        with RLIMIT_FSIZE `limit` in the child, SIGXFSZ ignored so writes
        fail with EFBIG."""
        small = os.path.join(self.dir, "small")
        os.makedirs(os.path.join(small, "2025/07/12/08"))
        with open(os.path.join(small, "2025/07/12/08/u-a.json"), "wb") as f:
            f.write(record("u", "a"))
        rdir = os.path.join(self.mnt, "rep")
        preexec = None
        if not self.mount(size):
            # Per-file limit: the manifest, the largest file, is the one that fails.
            print(f"NOTE: tmpfs mount refused (not root?); RLIMIT_FSIZE={limit} stands in "
                  "for a full disk, and it is the manifest's write that fails")

            def preexec():
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        status, _, err = run("verify", small, "--report", rdir)
        self.assertIn(status, (0, 1), err)
        before = {n: self.read(rdir, n) for n in SET}
        self.check_set(rdir)
        p = subprocess.run([BINARY, "verify", SAMPLES, "--report", rdir], capture_output=True,
                           timeout=120, preexec_fn=preexec)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 3, err)
        self.assertRegex(err, "No space left on device|File too large")
        after = {n: self.read(rdir, n) for n in SET}
        self.assertEqual(before, after, "a final name was touched by the failed run")
        self.check_set(rdir)

    def test_manifest_does_not_fit(self):
        # 8 pages: the small set takes 4, the sample log's manifest needs 11.
        self.fill("32k", 20000)

    def test_reports_do_not_fit(self):
        # 16 pages: the manifest fits, report.json does not.
        self.fill("64k", 40000)


class StdoutTest(OutputCase):
    """Case 7: write errors on stdout (full, closed) are exit 3 with a message,
    and no file opened later ever gets file descriptor 1."""

    def run_to(self, args, where):
        if where == "full":
            with open("/dev/full", "wb") as full:
                p = subprocess.run([BINARY, *args], stdout=full, stderr=subprocess.PIPE,
                                   timeout=120)
        else:
            p = subprocess.run([BINARY, *args], stderr=subprocess.PIPE, timeout=120,
                               preexec_fn=lambda: os.close(1))
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def test_ls_history_verify_to_a_full_or_closed_stdout(self):
        key = "UserId=user001,ActivityId=activity001"
        cases = [["ls", SAMPLES], ["ls", SAMPLES, "--format", "json"],
                 ["history", SAMPLES, "--key", key],
                 ["history", SAMPLES, "--key", key, "--format", "json"],
                 ["verify", SAMPLES, "--format", "json"], ["verify", SAMPLES],
                 ["--version"]]
        for args in cases:
            for where, why in (("full", "No space left on device"),
                               ("closed", "Bad file descriptor")):
                with self.subTest(args=args, stdout=where):
                    status, err = self.run_to(args, where)
                    self.assertEqual(status, 3, err)
                    self.assertIn(why, err)

    def test_closed_stdout_never_reaches_the_report_files(self):
        rdir = os.path.join(self.dir, "rep")
        status, err = self.run_to(["verify", SAMPLES, "--report", rdir, "--format", "json"],
                                  "closed")
        self.assertEqual(status, 3, err)
        self.check_set(rdir)


class NotUtf8Test(OutputCase):
    """Case 10: names that are not UTF-8 are reported, escaped losslessly, in
    every format; counts agree everywhere."""

    NAMES = [b"bad-\xff.json", b"cut-\xe2\x82.json", b"back\\slash-\xfe.json",
             "caf\u00e9-ok.json".encode(), b"new\nline\ttab.json"]

    def tree(self, root):
        """Writes one good record under each name and a planted UNREADABLE
        object under a name with \\xff; returns the planted object's key."""
        for name in self.NAMES:
            with open(os.path.join(root, HOUR + name), "wb") as f:
                f.write(record("u", "a"))
        planted = HOUR + b"planted-\xff\xc3.json"
        with open(os.path.join(root, planted), "wb") as f:
            f.write(b"{garbage")
        return planted

    def check_outputs(self, source, planted_key):
        rdir = os.path.join(self.dir, "rep")
        p = subprocess.run([BINARY, "verify", source, "--report", rdir, "--format", "csv"],
                           capture_output=True, timeout=120)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 1, err)
        rep = self.check_set(rdir)
        self.assertTrue(rep["run"]["complete"])
        self.assertEqual(rep["summary"]["objects"], len(self.NAMES) + 1)
        # The planted anomaly is in the report, its key escaped and exact in _b64.
        unreadable = [a for a in rep["anomalies"] if a["kind"] == "UNREADABLE"]
        self.assertEqual(len(unreadable), 1, rep["anomalies"])
        obj = unreadable[0]["object"]
        self.assertEqual(base64.b64decode(obj["key_b64"]), planted_key)
        self.assertEqual(obj["key"], escape(planted_key))
        # The manifest names every object; its keys decode to the exact bytes.
        with open(os.path.join(rdir, "manifest.ndjson"), "rb") as f:
            man = [json.loads(line) for line in f]
        keys = {base64.b64decode(m["key_b64"]) if "key_b64" in m else m["key"].encode()
                for m in man}
        self.assertIn(planted_key, keys)
        for m in man:
            if "key_b64" in m:
                self.assertEqual(m["key"], escape(base64.b64decode(m["key_b64"])))
        # CSV (file and stdout) and Markdown show the escape.
        csv_text = self.read(rdir, "anomalies.csv").decode("utf-8")
        self.assertEqual(p.stdout.decode("utf-8"), csv_text)
        rows = list(csv.DictReader(io.StringIO(csv_text)))
        self.assertIn(escape(planted_key), [r["object_key"] for r in rows])
        md = self.read(rdir, "report.md").decode("utf-8")
        self.assertIn(escape(planted_key).replace("|", "\\|"), md)
        return rep, keys

    def test_directory_source_named_with_invalid_utf8(self):
        source = os.path.join(self.dir.encode(), b"logs-\xfe\\")
        os.makedirs(os.path.join(source, HOUR))
        planted = self.tree(source)
        rep, keys = self.check_outputs(source, planted)
        self.assertEqual(base64.b64decode(rep["run"]["source_b64"]), source)
        self.assertEqual(keys, {HOUR + n for n in self.NAMES} | {planted})
        # ls as text and JSON, history as JSON: valid UTF-8, the same escape.
        status, out, err = run("ls", source)
        self.assertEqual(status, 0, err)
        self.assertIn(escape(planted), out.decode("utf-8"))
        # One line per object: the newline in a name is escaped, not written.
        self.assertEqual(len(out.splitlines()), len(keys), out)
        self.assertIn(escape(HOUR + b"new\nline\ttab.json"), out.decode("utf-8"))
        status, out, err = run("ls", source, "--format", "json")
        self.assertEqual(status, 0, err)
        listed = [json.loads(line) for line in out.splitlines()]
        self.assertEqual({base64.b64decode(j["key_b64"]) if "key_b64" in j
                          else j["key"].encode() for j in listed}, keys)
        status, out, err = run("history", source, "--key", "UserId=u,ActivityId=a",
                               "--format", "json")
        self.assertEqual(status, 1, err)  # the planted error names no item; KEY_MISMATCH does
        events = json.loads(out)["events"]
        self.assertEqual(len(events), len(self.NAMES))
        self.assertIn(b"bad-\xff.json", {base64.b64decode(e["object"].get("key_b64", ""))
                                         .split(b"/")[-1] for e in events})
        status, out, err = run("history", source, "--key", "UserId=u,ActivityId=a")
        self.assertIn(escape(HOUR + b"bad-\xff.json"), out.decode("utf-8"))

    def test_key_schema_name_not_utf8_is_refused(self):
        # An attribute name is UTF-8 in DynamoDB; one that is not would match
        # no record and could not be written in report.json's run.options.
        status, _, err = run("verify", SAMPLES.encode(), "--key-schema",
                             b"bad\xff:HASH")
        self.assertEqual(status, 2, err)
        self.assertIn("--key-schema", err)

    def test_tar_archive_with_invalid_utf8_entry_names(self):
        tree = os.path.join(self.dir.encode(), b"tree")
        os.makedirs(os.path.join(tree, HOUR))
        planted = self.tree(tree)
        tar = os.path.join(self.dir, "logs.tar")
        with tarfile.open(tar, "w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                          errors="surrogateescape") as t:
            for name in sorted(os.listdir(os.path.join(tree, HOUR))):
                t.add(os.path.join(tree, HOUR, name).decode("utf-8", "surrogateescape"),
                      arcname=(HOUR + name).decode("utf-8", "surrogateescape"))
        rep, keys = self.check_outputs(tar, planted)
        self.assertEqual(keys, {HOUR + n for n in self.NAMES} | {planted})


if __name__ == "__main__":
    main()
