"""ddbaudit reconcile against a table on moto: a world whose table was
written change by change as its log says is clean; after writing, deleting
and changing items behind the log's back, reconcile names exactly those items
(UNLOGGED_ITEM, MISSING_ITEM, STATE_DRIFT); a key schema that differs from the
log's and a table that does not exist are refused."""
import base64
import datetime
import gzip
import hashlib
import json
import os
import shutil
from harness import run, verify_json  # noqa: F401
from ddb_world import START, DdbCase, World, create_table, key_of, image

import random


def reconcile(*args, env=None):
    status, out, err = run("reconcile", *args, "--format", "json")
    rep = json.loads(out) if status in (0, 1) and out else None
    return status, rep, err


def found(rep):
    return sorted((a["kind"], a["item"]["UserId"]["S"]) for a in rep["anomalies"]
                  if a["kind"] in ("UNLOGGED_ITEM", "MISSING_ITEM", "STATE_DRIFT"))


class ReconcileTest(DdbCase):
    def world(self, name):
        w = World()
        create_table(self.ddb, name)
        w.apply(self.ddb, name)
        return w, w.write_log(self.dir)

    def test_a_clean_world_is_clean(self):
        w, log = self.world("clean")
        out = os.path.join(self.dir, "reports", "reconcile")
        status, rep, err = reconcile(log, "--table", "ddb://clean", "--report", out)
        self.assertEqual(status, 0, err)
        with open(os.path.join(out, "report.json")) as f:
            self.assertEqual(json.load(f)["reconcile"], rep["reconcile"])
        counts = rep["reconcile"]["counts"]
        self.assertEqual(counts["table_items"], len(w.truth))
        self.assertEqual(counts["matched"] + counts["unknown_image"], counts["log_items"])
        self.assertEqual(found(rep), [])
        self.assertEqual(rep["reconcile"]["table"]["name"], "clean")
        self.assertIn("agree", err)

    def test_changes_behind_the_logs_back_are_named(self):
        w, log = self.world("drift")
        present = sorted(w.truth)
        rng = random.Random(3)
        # Written, deleted and changed without a record in the log.
        self.ddb.put_item(TableName="drift", Item=image(rng, "intruder", "act0", 1))
        gone, changed = present[0], present[1]
        self.ddb.delete_item(TableName="drift", Key=key_of(*gone))
        altered = dict(w.truth[changed], Status={"S": "TAMPERED"})
        self.ddb.put_item(TableName="drift", Item=altered)
        removed = [c for c in w.changes if c[3] == "REMOVE" and (c[1], c[2]) not in w.truth]
        self.assertTrue(removed, "the world has no removed item")
        back = removed[0]
        self.ddb.put_item(TableName="drift", Item=back[4])  # removed in the log, back here
        status, rep, err = reconcile(log, "--table", "ddb://drift", "--scan-segments", "3")
        self.assertEqual(status, 1, err)
        self.assertEqual(found(rep), sorted([("UNLOGGED_ITEM", "intruder"),
                                             ("MISSING_ITEM", gone[0]),
                                             ("STATE_DRIFT", changed[0]),
                                             ("STATE_DRIFT", back[1])]))
        drift = [a for a in rep["anomalies"] if a["kind"] == "STATE_DRIFT"
                 and a["item"]["UserId"]["S"] == changed[0]][0]
        self.assertIsNotNone(drift["expected_digest"])
        self.assertNotEqual(drift["expected_digest"], drift["found_digest"])
        # The attribute diff, log's last image against the table's item.
        self.assertEqual(list(drift["diff"]["changed"]), ["Status"], drift)
        self.assertIn("changed: Status", drift["detail"])
        self.assertIn(f"{changed[0]}-{changed[1]}.json", drift["object"]["key"])
        counts = rep["reconcile"]["counts"]
        self.assertEqual((counts["unlogged"], counts["missing"], counts["drift"]), (1, 1, 2))

    def test_an_item_changed_during_the_scan_is_read_again(self):
        """An item whose last change in the log is after the scan started is
        judged on a fresh GetItem, not on what the scan saw."""
        w, log = self.world("moving")
        user, act = sorted(w.truth)[0]
        now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
        new = dict(w.truth[(user, act)], Status={"S": "LATEST"})
        d = os.path.join(log, now.strftime("%Y/%m/%d/%H"))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{user}-{act}.json"), "w") as f:
            json.dump({"timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%f"), "eventName": "MODIFY",
                       "userId": user, "activityId": act, "oldImage": w.truth[(user, act)],
                       "newImage": new}, f)
        self.ddb.put_item(TableName="moving", Item=new)
        status, rep, err = reconcile(log, "--table", "ddb://moving", "--settle", "0m")
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["reconcile"]["counts"]["reread"], 1)
        self.assertEqual(found(rep), [])

    def write_export(self, items, when):
        """A full export in AWS's layout: data file, manifests, exportTime."""
        root = os.path.join(self.dir, "exp", "AWSDynamoDB", "01700000000000-0123abcd")
        os.makedirs(os.path.join(root, "data"))
        raw = gzip.compress("".join(json.dumps({"Item": i}) + "\n" for i in items).encode())
        with open(os.path.join(root, "data", "part0.json.gz"), "wb") as f:
            f.write(raw)
        with open(os.path.join(root, "manifest-files.json"), "w") as f:
            f.write(json.dumps({"itemCount": len(items), "md5Checksum":
                                base64.b64encode(hashlib.md5(raw).digest()).decode(),
                                "dataFileS3Key": "AWSDynamoDB/01700000000000-0123abcd/data/"
                                                 "part0.json.gz"}) + "\n")
        with open(os.path.join(root, "manifest-summary.json"), "w") as f:
            json.dump({"version": "2020-06-30", "exportType": "FULL_EXPORT",
                       "outputFormat": "DYNAMODB_JSON", "itemCount": len(items),
                       "exportTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")}, f)
        return os.path.join(self.dir, "exp")

    def test_against_an_export(self):
        w = World()
        log = w.write_log(self.dir)
        when = START + datetime.timedelta(hours=3, minutes=20)
        state = w.state_at(when)
        status, rep, err = reconcile(log, "--baseline", self.write_export(list(state.values()),
                                                                          when))
        self.assertEqual(status, 0, err)
        counts = rep["reconcile"]["counts"]
        self.assertEqual(counts["table_items"], len(state))
        # Items the log removed by then are absent from both: they agree too.
        self.assertEqual(counts["matched"], counts["log_items"])
        self.assertEqual(found(rep), [])
        # An export that disagrees with the log at its time.
        keys = sorted(state)
        items = dict(state)
        del items[keys[0]]
        items[keys[1]] = dict(items[keys[1]], Amount={"N": "-1"})
        items[("stranger", "act9")] = {"UserId": {"S": "stranger"}, "ActivityId": {"S": "act9"}}
        shutil.rmtree(os.path.join(self.dir, "exp"))
        status, rep, err = reconcile(log, "--baseline", self.write_export(list(items.values()),
                                                                          when))
        self.assertEqual(status, 1, err)
        self.assertEqual(found(rep), sorted([("MISSING_ITEM", keys[0][0]),
                                             ("STATE_DRIFT", keys[1][0]),
                                             ("UNLOGGED_ITEM", "stranger")]))
        self.assertIn("export_time", rep["reconcile"])
        # An export whose manifest does not match its data is refused.
        with open(os.path.join(self.dir, "exp", "AWSDynamoDB", "01700000000000-0123abcd",
                               "manifest-summary.json"), "r+") as f:
            doc = json.load(f)
            doc["itemCount"] += 5
            f.seek(0)
            f.truncate()
            json.dump(doc, f)
        status, _, err = reconcile(log, "--baseline", os.path.join(self.dir, "exp"))
        self.assertEqual(status, 3, err)
        self.assertIn("not whole", err)

    def test_refusals(self):
        _, log = self.world("refusals")
        status, _, err = reconcile(log, "--table", "ddb://no-such-table")
        self.assertEqual(status, 3, err)
        self.assertIn("ResourceNotFoundException", err)
        status, _, err = reconcile(log, "--table", "ddb://refusals", "--key-schema",
                                   "Pk:HASH")
        self.assertEqual(status, 2, err)
        self.assertIn("keyed by UserId,ActivityId", err)
        status, _, err = reconcile(log)
        self.assertEqual(status, 2, err)
        self.assertIn("needs --table", err)
        status, _, err = reconcile(log, "--table", "s3://bucket/x")
        self.assertEqual(status, 2, err)
        self.assertIn("is not a table", err)


if __name__ == "__main__":
    from harness import main
    main()
