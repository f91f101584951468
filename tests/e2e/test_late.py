"""Late objects (verify --state): an object written into an hour that an
earlier run already audited is read by the next run (LATE_OBJECT, info) and
its change folded into its item's chain, so that it is never lost and never
turns into a false GAP; a late change older than the state carried for its
item is listed, not applied; --late-window 0 turns the look-back off."""
import math
import os
import shutil
import time
from harness import main, verify_json
from moto import MotoCase, upload_tree
from test_state import NOW, RUNS, SAMPLES, StateCase, findings, records


def pick(events, where):
    """The first (item, k) whose k-th change satisfies where(evs, k): a MODIFY
    between two MODIFYs, each in its own object."""
    for item, evs in sorted(events.items()):
        names = [rel for _, _, rel in evs]
        for k in range(1, len(evs) - 1):
            if (evs[k][1] == "MODIFY" and evs[k + 1][1] == "MODIFY" and evs[k - 1][1] != "REMOVE"
                    and names.count(evs[k][2]) == 1 and where(evs, k)):
                return item, k
    return None


def key(source, rel):
    """An object's key as a directory source names it: under the root's name."""
    return os.path.basename(source) + "/" + rel


def hour(t):
    return t[11:13]


class LateTest(StateCase):
    def hold_back(self, where):
        """A copy of the samples without one change (kept aside): returns the
        source, the change's relative path and its bytes, and the item's events."""
        source = self.copy_samples()
        events = records(source)
        found = pick(events, where)
        self.assertIsNotNone(found, "the samples hold no change of that shape")
        item, k = found
        rel = events[item][k][2]
        path = os.path.join(source, rel)
        with open(path, "rb") as f:
            data = f.read()
        os.remove(path)
        return source, rel, data, events[item], k

    def audit(self, source, state, rng, *extra):
        status, rep, err = verify_json(source, "--from", rng[0], "--to", rng[1], "--state", state,
                                       *NOW, *extra)
        self.assertIn(status, (0, 1), err)
        return rep

    def test_a_late_change_joins_the_chain(self):
        # The item's last change of the first run (07:xx) is written only
        # after that run; its next change is in the second run.
        source, rel, data, evs, k = self.hold_back(
            lambda evs, k: hour(evs[k][0]) == "07" and hour(evs[k - 1][0]) >= "06"
            and "08" <= hour(evs[k + 1][0]) < "10")
        state = os.path.join(self.dir, "state.ndjson.gz")
        first = self.audit(source, state, RUNS[0])
        self.assertNotIn(rel, [(a.get("object") or {}).get("key") for a in first["anomalies"]])
        with open(os.path.join(source, rel), "wb") as f:  # written late, mtime now
            f.write(data)
        second = self.audit(source, state, RUNS[1])
        late = [a for a in second["anomalies"] if a["kind"] == "LATE_OBJECT"]
        self.assertEqual([a["object"]["key"] for a in late], [key(source, rel)],
                         second["anomalies"])
        self.assertEqual(late[0]["severity"], "info")
        self.assertIn("folded into their items' chains", late[0]["detail"])
        # No GAP at the item's next change: the late change continued it.
        nxt = key(source, evs[k + 1][2])
        self.assertNotIn(("GAP", nxt), [(a["kind"], a["object"]["key"])
                                        for a in second["anomalies"]])
        # The third run and the whole chain find what one run over the
        # complete log finds, plus the LATE_OBJECT.
        third = self.audit(source, state, RUNS[2])
        got = sorted(findings(first) + findings(second) + findings(third))
        got.remove(("LATE_OBJECT", "null", key(source, rel)))
        self.assertEqual(got, self.one_run(source))

    def test_without_the_look_back_the_late_change_is_a_gap(self):
        source, rel, data, evs, k = self.hold_back(
            lambda evs, k: hour(evs[k][0]) == "07" and hour(evs[k - 1][0]) >= "06"
            and "08" <= hour(evs[k + 1][0]) < "10")
        state = os.path.join(self.dir, "state.ndjson.gz")
        self.audit(source, state, RUNS[0])
        with open(os.path.join(source, rel), "wb") as f:
            f.write(data)
        second = self.audit(source, state, RUNS[1], "--late-window", "0")
        kinds = [(a["kind"], a["object"]["key"]) for a in second["anomalies"]]
        self.assertIn(("GAP", key(source, evs[k + 1][2])), kinds)
        self.assertNotIn("LATE_OBJECT", [kd for kd, _ in kinds])
        self.assertEqual(second["run"]["options"].get("late_window_seconds"), 0)

    def test_a_late_change_older_than_the_state_is_listed_not_applied(self):
        # A change in the middle of the first run (its neighbours too): the
        # first run reports the GAP it leaves; written late, it is older
        # than what the state carries for the item.
        source, rel, data, evs, k = self.hold_back(
            lambda evs, k: "06" <= hour(evs[k - 1][0]) and hour(evs[k + 1][0]) < "09")
        state = os.path.join(self.dir, "state.ndjson.gz")
        first = self.audit(source, state, ("2025-07-12T06:00Z", "2025-07-12T09:00Z"))
        self.assertIn(("GAP", key(source, evs[k + 1][2])),
                      [(a["kind"], (a.get("object") or {}).get("key")) for a in first["anomalies"]])
        with open(os.path.join(source, rel), "wb") as f:
            f.write(data)
        second = self.audit(source, state, ("2025-07-12T09:00Z", "2025-07-12T12:00Z"))
        late = [a for a in second["anomalies"] if a["kind"] == "LATE_OBJECT"]
        self.assertEqual(len(late), 2, late)  # the object, and its change not applied
        self.assertTrue(all(a["object"]["key"].endswith("/" + rel) for a in late))
        self.assertEqual(sum("not applied" in a["detail"] for a in late), 1)
        mine = {key(source, r) for _, _, r in evs}
        self.assertEqual([a for a in second["anomalies"] if a["kind"] == "GAP"
                          and a["object"]["key"] in mine], [])

    def test_objects_written_before_the_last_run_are_not_late(self):
        state = os.path.join(self.dir, "state.ndjson.gz")
        got, reports = self.chained(SAMPLES, state)
        self.assertNotIn("LATE_OBJECT", [k for k, _, _ in got])
        # The look-back hours were listed but not read.
        self.assertEqual(reports[1]["run"]["options"]["late_window_seconds"], 24 * 3600)

    def test_late_window_needs_a_state(self):
        from harness import run
        status, _, err = run("verify", SAMPLES, "--from", RUNS[0][0], "--late-window", "2h")
        self.assertEqual(status, 2, err)
        self.assertIn("--late-window needs --state", err)


class S3LateTest(MotoCase):
    def test_a_late_object_in_s3(self):
        """On S3, LastModified (whole seconds) decides: an object put after
        the first run is read by the second as late, and joins its chain."""
        source = os.path.join(self.dir, "audit-logs")
        shutil.copytree(SAMPLES, source)
        events = records(source)
        item, k = pick(events, lambda evs, k: hour(evs[k][0]) == "07"
                       and hour(evs[k - 1][0]) >= "06" and "08" <= hour(evs[k + 1][0]) < "10")
        rel = events[item][k][2]
        with open(os.path.join(source, rel), "rb") as f:
            data = f.read()
        os.remove(os.path.join(source, rel))
        self.s3.create_bucket(Bucket="late")
        upload_tree(self.s3, "late", source, "audit-logs/")
        # S3 keeps LastModified in whole seconds: an object put in the second
        # the first run starts in cannot be told from one put after it, and
        # would be read as late (never lost). Start in a later second.
        uploaded = math.floor(time.time())
        while math.floor(time.time()) == uploaded:
            time.sleep(0.05)
        state = os.path.join(self.dir, "state.ndjson.gz")

        def audit(rng):
            status, rep, err = verify_json("s3://late/audit-logs/", "--from", rng[0], "--to",
                                           rng[1], "--state", state, "--endpoint-url",
                                           self.moto.url, *NOW)
            self.assertIn(status, (0, 1), err)
            return rep
        audit(RUNS[0])
        self.s3.put_object(Bucket="late", Key="audit-logs/" + rel, Body=data)
        rep = audit(RUNS[1])
        late = [a["object"]["key"] for a in rep["anomalies"] if a["kind"] == "LATE_OBJECT"]
        self.assertEqual(late, ["audit-logs/" + rel])
        self.assertNotIn(("GAP", "audit-logs/" + events[item][k + 1][2]),
                         [(a["kind"], (a.get("object") or {}).get("key"))
                          for a in rep["anomalies"]])


if __name__ == "__main__":
    main()
