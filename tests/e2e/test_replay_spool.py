"""Where `ddbaudit replay` gets a record's bytes when it sends it: a
directory's objects are read again, any other source's records are kept in
a spool, held in memory within a quarter of --memory-limit and compressed
on disk past it. Every way gives the same bytes; a resume after SIGKILL
from the spool loses nothing and sends nothing twice but the batches in
flight; a record whose object changed after it was read is never sent."""
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
from harness import BINARY, Case, ROOT, main, run
from target_server import TargetServer

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
PLANNED = re.compile(r"(\d+) records planned: (\d+) spooled \((\d+) bytes on disk, [0-9.]+ a "
                     r"record; (\d+) bytes in memory, [0-9.]+ a record\), (\d+) to be read again")
# The samples' spool (about 70 KB as it is) outgrows a quarter of 300K: a
# block stays in memory and the rest goes to disk. A quarter of 8K holds
# no block: all of it goes to disk.
MIXED = ("--memory-limit", "300K")
SMALL = ("--memory-limit", "8K")
RUN_ID = re.compile(rb'"runId":"[0-9a-f-]{36}"')


def item_of(rec):
    return json.dumps(rec["dynamodb"]["Keys"], sort_keys=True)


class ReplaySpoolTest(Case):
    def setUp(self):
        super().setUp()
        self.target = TargetServer()

    def tearDown(self):
        self.target.stop()
        super().tearDown()

    def tarball(self):
        """The samples as a tar archive: the same object names, in the order a
        directory is read."""
        out = self.path("samples.tar")
        names = []
        for d, _, files in os.walk(SAMPLES):
            names += [os.path.join(d, f) for f in files]
        with tarfile.open(out, "w") as t:
            for n in sorted(names):
                t.add(n, arcname=os.path.relpath(n, os.path.dirname(SAMPLES)))
        return out

    def ndjson(self):
        """The samples as one NDJSON file: every object's record on a line."""
        out = self.path("samples.ndjson")
        names = sorted(os.path.join(d, f) for d, _, fs in os.walk(SAMPLES) for f in fs)
        with open(out, "w") as o:
            for n in names:
                with open(n) as f:
                    text = f.read().strip()
                try:
                    o.write(json.dumps(json.loads(text)) + "\n")
                except ValueError:
                    o.write(text.replace("\n", " ") + "\n")  # broken on purpose: kept
        return out

    def sent(self, source, *args):
        """Replays source into a file with -v: (its batches, the run id made
        constant, how the plan kept its records). Lanes write their lines as
        they go, so the batches are compared in sorted order: their
        interleaving is not the plan's."""
        out = self.path("sent-%d.ndjson" % len(os.listdir(self.dir)))
        report = out + ".report.json"
        status, _, err = run("replay", source, "--settle", "0", "-v", "--progress", "never",
                             "--target", "file:" + out, "--table", "T", "--report", report,
                             *args)
        self.assertEqual(status, 0, err)
        m = PLANNED.search(err)
        self.assertIsNotNone(m, err)
        with open(report) as f:
            spool = json.load(f)["spool"]
        _, spooled, disk, mem, reread = (int(x) for x in m.groups())
        self.assertEqual(spool, {"records": spooled, "memory_bytes": mem, "disk_bytes": disk,
                                 "reread_records": reread})
        with open(out, "rb") as f:
            data = RUN_ID.sub(b'"runId":"-"', f.read())
        return sorted(data.splitlines()), tuple(int(x) for x in m.groups())

    def test_spool_and_reread_send_the_same_bytes(self):
        tar = self.tarball()
        for args in ((), ("--parallelism", "3", "--batch-size", "7"),
                     ("--view", "NEW_IMAGE", "--event-types", "MODIFY,REMOVE"),
                     ("--view", "KEYS_ONLY", "--no-replay-marker", "--parallelism", "2")):
            with self.subTest(args=args):
                again, (n, spooled, disk, mem, reread) = self.sent(SAMPLES, *args)
                self.assertGreater(n, 0)
                self.assertEqual((spooled, reread, disk, mem), (0, n, 0, 0))  # read again
                spool, (n2, spooled, disk, mem, reread) = self.sent(tar, *args)
                self.assertEqual((n2, spooled, reread, disk), (n, n, 0, 0))  # in memory
                self.assertGreater(mem, 0)
                self.assertEqual(spool, again)
                ondisk, (n3, spooled, disk, mem, reread) = self.sent(tar, *SMALL, *args)
                self.assertEqual((n3, spooled, reread, mem), (n, n, 0, 0))  # on disk
                self.assertGreater(disk, 0)
                self.assertEqual(ondisk, again)
                mixed, (n4, spooled, disk, mem, reread) = self.sent(tar, *MIXED, *args)
                self.assertEqual((n4, spooled, reread), (n, n, 0))
                self.assertLessEqual(mem, 300 * 1024 // 4)
                self.assertEqual(mixed, again)

    def test_the_spool_on_disk_is_compressed(self):
        for lanes in ("1", "4"):
            data, (n, spooled, disk, mem, _) = self.sent(self.ndjson(), *SMALL,
                                                         "--parallelism", lanes)
            self.assertEqual((spooled, mem), (n, 0))
            self.assertGreater(disk, 0)
            self.assertLess(disk * 3, sum(len(b) for b in data))

    def test_memory_limit_off_keeps_the_spool_in_memory(self):
        data, (n, spooled, disk, mem, _) = self.sent(self.ndjson(), "--memory-limit", "off")
        self.assertEqual((spooled, disk), (n, 0))
        self.assertGreater(mem, 0)

    def test_sigkill_and_resume_from_the_spool_lose_nothing(self):
        src = self.ndjson()
        ref_out = self.path("ref.ndjson")
        status, _, err = run("replay", src, "--settle", "0", "-q", "--target", "file:" + ref_out,
                             "--batch-size", "10000")
        self.assertEqual(status, 0, err)
        with open(ref_out) as f:
            ref = [r for line in f for r in json.loads(line)["Records"]]
        self.target.delay = 0.02
        args = ["replay", src, "--settle", "0", "-q", "--target", self.target.url,
                "--batch-size", "5", "--parallelism", "2", "--checkpoint", self.path("ck.json"),
                *MIXED]  # blocks both in memory and on disk
        p = subprocess.Popen([BINARY, *args], stderr=subprocess.PIPE)
        self.target.kill_after(p, 60, sig=signal.SIGKILL)
        p.stderr.read()
        p.stderr.close()
        self.target.delay = 0
        before = len(self.target.accepted)
        self.assertGreaterEqual(before, 60)
        self.assertLess(before, len(ref))
        status, _, err = run(*args)
        self.assertEqual(status, 0, err)
        got = [r["eventID"] for r in self.target.accepted]
        self.assertEqual(set(got), {r["eventID"] for r in ref})
        self.assertLessEqual(len(got) - len(ref), 2 * 5)  # the batches in flight
        firsts = [r for i, r in enumerate(self.target.accepted) if r["eventID"] not in got[:i]]
        want, have = {}, {}
        for r in ref:
            want.setdefault(item_of(r), []).append(r["eventID"])
        for r in firsts:
            have.setdefault(item_of(r), []).append(r["eventID"])
        self.assertEqual(have, want)

    def test_an_object_changed_since_it_was_read_is_not_sent(self):
        """A directory's object is read again when its record is sent: one
        that changed in between stops the run (exit 3), nothing of it sent."""
        world = self.path("world", "audit-logs")
        shutil.copytree(SAMPLES, world)
        ref_out = self.path("ref.ndjson")
        status, _, err = run("replay", world, "--settle", "0", "-q", "--target",
                             "file:" + ref_out, "--batch-size", "10000")
        self.assertEqual(status, 0, err)
        with open(ref_out) as f:
            last = [r for line in f for r in json.loads(line)["Records"]][-1]
        victim = os.path.join(os.path.dirname(world), last["replay"]["object"]["key"])
        with open(victim) as f:
            text = f.read()

        def change(records):
            with open(victim, "w") as f:
                f.write(text.replace('"S": "', '"S": "changed ', 1))
        self.target.processor = change
        status, _, err = run("replay", world, "--settle", "0", "-q", "--target",
                             self.target.url, "--batch-size", "5")
        self.assertEqual(status, 3, err)
        self.assertIn("changed since it was read", err)
        self.assertIn(last["replay"]["object"]["key"], err)
        self.assertNotIn(last["eventID"], [r["eventID"] for r in self.target.accepted])
        self.assertGreater(len(self.target.accepted), 0)


if __name__ == "__main__":
    main()
