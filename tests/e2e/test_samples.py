"""The bundled samples end to end: the directory and the tarball give the same
figures, and those figures and findings are the ones samples/expected.json
(written by scripts/gen-samples, which knows the planted damage) says."""
import json
import os
from harness import Case, ROOT, main, run, verify_json

SAMPLES = os.path.join(ROOT, "samples")


def item_of(anomaly):
    item = anomaly.get("item") or {}
    return {k: list(v.values())[0] for k, v in item.items()}


class SamplesTest(Case):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(SAMPLES, "expected.json")) as f:
            cls.expected = json.load(f)

    def audit(self, source):
        status, rep, err = verify_json(source, "--settle", "0")
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, f"the samples hold errors: {err}")
        return rep

    def check_summary(self, rep):
        s, e = rep["summary"], self.expected
        for field in ("objects", "records", "valid", "invalid", "items", "duplicates"):
            self.assertEqual(s[field], e[field], field)
        self.assertEqual(s["events"], e["events"])
        self.assertEqual(s["by_kind"], e["by_kind"])

    def check_findings(self, rep):
        got = sorted((a["kind"], a["object"]["key"] if a["object"] else None)
                     for a in rep["anomalies"])
        want = sorted((a["kind"], a["key"]) for a in self.expected["anomalies"])
        self.assertEqual(got, want)
        for want_a in self.expected["anomalies"]:
            if not want_a.get("item"):
                continue
            match = [a for a in rep["anomalies"] if a["kind"] == want_a["kind"]
                     and a["object"]["key"] == want_a["key"]]
            self.assertEqual(item_of(match[0]), want_a["item"], want_a)

    def test_directory(self):
        rep = self.audit(os.path.join(SAMPLES, "audit-logs"))
        self.check_summary(rep)
        self.check_findings(rep)
        gaps = [a for a in rep["anomalies"] if a["kind"] == "GAP"]
        for gap in gaps:
            self.assertTrue(gap["diff"]["changed"] or gap["diff"]["added"] or
                            gap["diff"]["removed"], "a GAP shows what differs")

    def test_tarball_matches_directory(self):
        d = self.audit(os.path.join(SAMPLES, "audit-logs"))
        t = self.audit(os.path.join(SAMPLES, "audit-logs.tar.gz"))
        self.check_summary(t)
        self.assertEqual(d["summary"], t["summary"])
        strip = lambda rep: [(a["kind"], a["object"]["key"] if a["object"] else None,
                              a["detail"]) for a in rep["anomalies"]]
        self.assertEqual(strip(d), strip(t))

    def test_thread_counts_agree(self):
        src = os.path.join(SAMPLES, "audit-logs")
        one = self.audit_args(src, "--threads", "1")
        four = self.audit_args(src, "--threads", "4")
        self.assertEqual(one["summary"], four["summary"])
        self.assertEqual(one["anomalies"], four["anomalies"])

    def audit_args(self, *args):
        status, rep, err = verify_json(*args, "--settle", "0")
        self.assertEqual(status, 1, err)
        return rep

    def test_history_of_an_awkward_key(self):
        keyed = [a for a in self.expected["anomalies"] if a.get("item")]
        item = keyed[0]["item"]
        status, out, err = run("history", os.path.join(SAMPLES, "audit-logs"), "--key",
                               json.dumps({k: {"S": v} for k, v in item.items()}),
                               "--format", "json")
        # The item's GAP is an error on it: history exits 1.
        self.assertEqual(keyed[0]["kind"], "GAP")
        self.assertEqual(status, 1, err)
        doc = json.loads(out)
        self.assertGreater(len(doc["events"]), 0)
        times = [e["time"] for e in doc["events"]]
        self.assertEqual(times, sorted(times))
        for e in doc["events"]:
            self.assertIn(e["eventName"], ("INSERT", "MODIFY", "REMOVE"))
            self.assertIn("oldImage", e)
            self.assertIn("newImage", e)

    def test_range_prunes_hours(self):
        src = os.path.join(SAMPLES, "audit-logs")
        full = self.audit(src)
        hours = [h["hour"] for h in full["hours"]]
        self.assertGreaterEqual(len(hours), 4)
        # Audit only the last hour: earlier prefixes (beyond the slack) are not opened.
        start = hours[-1]
        status, rep, err = verify_json(src, "--from", start, "--settle", "0")
        self.assertNoCrash(status, err)
        self.assertGreater(rep["summary"]["prefixes_skipped"], 0)
        self.assertLess(rep["summary"]["objects"], full["summary"]["objects"])
        self.assertLess(rep["summary"]["records"], full["summary"]["records"])

    def test_settle_makes_the_late_gap_provisional(self):
        # Taking "now" as 09:45 with 30 minutes still settling, the GAP found
        # at 09:40 may yet be filled: a provisional warning, not an error.
        src = os.path.join(SAMPLES, "audit-logs")
        status, rep, err = verify_json(src, "--now", "2025-07-12T09:45:00Z", "--settle", "30")
        self.assertNoCrash(status, err)
        gap = [a for a in rep["anomalies"] if a["kind"] == "GAP"][0]
        self.assertTrue(gap["provisional"])
        self.assertEqual(gap["severity"], "warning")
        self.assertIn("provisional", gap["detail"])
        self.assertEqual(rep["summary"]["anomalies"]["error"], 3)
        # A settle window that ends before the GAP leaves it an error.
        status, rep, err = verify_json(src, "--now", "2025-07-12T09:45:00Z", "--settle", "1")
        gap = [a for a in rep["anomalies"] if a["kind"] == "GAP"][0]
        self.assertFalse(gap["provisional"])
        self.assertEqual(gap["severity"], "error")

    def test_since_is_relative_to_now(self):
        src = os.path.join(SAMPLES, "audit-logs")
        status, rep, err = verify_json(src, "--now", "2025-07-12T12:00:00Z", "--since", "90m",
                                       "--settle", "0")
        self.assertNoCrash(status, err)
        self.assertEqual(rep["run"]["range"]["from"], "2025-07-12T10:30:00Z")
        self.assertGreater(rep["summary"]["filtered"], 0)
        # The GAP at 09:40 is out of range; the UNREADABLE and the others after 10:30 remain.
        kinds = {a["kind"] for a in rep["anomalies"]}
        self.assertNotIn("GAP", kinds)

    def test_ls_lists_the_range(self):
        src = os.path.join(SAMPLES, "audit-logs")
        status, out, err = run("ls", src, "--from", "2025-07-12T11:00Z")
        self.assertEqual(status, 0, err)
        keys = [line.split(None, 3)[3] for line in out.decode().splitlines()]
        self.assertTrue(keys)
        # One hour of slack: hour 10 is listed too, earlier hours are not.
        self.assertTrue(all(k.startswith(("audit-logs/2025/07/12/10/", "audit-logs/2025/07/12/11/"))
                            for k in keys), keys[:3])
        self.assertIn("audit-logs/2025/07/12/11/user906-badnumber.json", keys)

    def test_history_text_shows_the_gap(self):
        src = os.path.join(SAMPLES, "audit-logs")
        status, out, err = run("history", src, "--key", "UserId=user900,ActivityId=overwrite",
                               "--settle", "0")
        self.assertEqual(status, 1, err)  # the GAP is an error on the item
        text = out.decode()
        self.assertIn("! GAP (error)", text)
        self.assertIn("~ Version:", text)
        self.assertRegex(text, r"item .*UserId=user900: 5 events")


if __name__ == "__main__":
    main()
