"""ddbaudit restore on moto: a world's table restored at a time T in the
middle equals the table's true state at T item for item (the world records
it), into a new table, a directory in export format and NDJSON; a non-empty
table is refused unless --overwrite, which then also deletes what the log
removed; --key restores one item; a throttling proxy (refusals and
UnprocessedItems) loses no write."""
import datetime
import glob
import gzip
import json
import os
import subprocess
from harness import BINARY, run
from ddb_world import DdbCase, START, World, create_table
from ddb_throttle import ThrottleProxy


def scan(ddb, table):
    items, kw = {}, {}
    while True:
        page = ddb.scan(TableName=table, **kw)
        for it in page["Items"]:
            items[(it["UserId"]["S"], it["ActivityId"]["S"])] = it
        if "LastEvaluatedKey" not in page:
            return items
        kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def canon(state):
    return {k: json.dumps(v, sort_keys=True) for k, v in state.items()}


def at(hours, minutes=0):
    t = START + datetime.timedelta(hours=hours, minutes=minutes)
    return t, t.strftime("%Y-%m-%dT%H:%M:%SZ")


class RestoreTest(DdbCase):
    def setUp(self):
        super().setUp()
        self.w = World(items=40)
        self.log = self.w.write_log(self.dir)

    def restore(self, *args):
        status, out, err = run("restore", self.log, *args)
        self.assertNoCrash(status, err)
        return status, out, err

    def test_a_new_table_equals_the_state_at_t(self):
        t, text = at(3, 17)
        want = self.w.state_at(t)
        self.assertTrue(0 < len(want) < len(self.w.truth) + 40)
        status, _, err = self.restore("--at", text, "--to", "ddb://restored", "--create")
        self.assertEqual(status, 0, err)
        self.assertIn("table created", err)
        self.assertEqual(canon(scan(self.ddb, "restored")), canon(want))
        # Not empty any more: refused, and left as it was.
        status, _, err = self.restore("--at", text, "--to", "ddb://restored")
        self.assertEqual(status, 2, err)
        self.assertIn("not empty", err)
        # --overwrite to a later time: puts and deletes make it that state.
        t2, text2 = at(5, 40)
        status, _, err = self.restore("--at", text2, "--to", "ddb://restored", "--overwrite")
        self.assertEqual(status, 0, err)
        self.assertEqual(canon(scan(self.ddb, "restored")), canon(self.w.state_at(t2)))

    def test_a_missing_table_needs_create(self):
        status, _, err = self.restore("--at", at(2)[1], "--to", "ddb://absent")
        self.assertEqual(status, 2, err)
        self.assertIn("--create", err)

    def test_export_directory_and_ndjson(self):
        t, text = at(2, 30)
        want = canon(self.w.state_at(t))
        out = os.path.join(self.dir, "export")
        status, _, err = self.restore("--at", text, "--to", out)
        self.assertEqual(status, 0, err)
        got = {}
        for path in glob.glob(os.path.join(out, "data", "*.json.gz")):
            with gzip.open(path, "rt") as f:
                for line in f:
                    it = json.loads(line)["Item"]
                    got[(it["UserId"]["S"], it["ActivityId"]["S"])] = it
        self.assertEqual(canon(got), want)
        with open(os.path.join(out, "manifest-summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["itemCount"], len(want))
        self.assertEqual(summary["outputFormat"], "DYNAMODB_JSON")
        status, stdout, err = self.restore("--at", text, "--to", "-")
        self.assertEqual(status, 0, err)
        lines = [json.loads(x)["Item"] for x in stdout.decode().splitlines()]
        self.assertEqual(canon({(i["UserId"]["S"], i["ActivityId"]["S"]): i for i in lines}),
                         want)
        # An existing export directory is never written into.
        status, _, err = self.restore("--at", text, "--to", out)
        self.assertEqual(status, 3, err)
        self.assertIn("exists already", err)

    def test_from_a_full_export_plus_the_log_after_it(self):
        # A full export of the state at T0 (written by restore itself, in
        # DynamoDB's export layout), then the log after it, up to T.
        t0, text0 = at(2, 10)
        export = os.path.join(self.dir, "exports", "AWSDynamoDB", "01700000000000-abcdef12")
        status, _, err = self.restore("--at", text0, "--to", export)
        self.assertEqual(status, 0, err)
        status, rep, err = run("verify", os.path.join(self.dir, "exports"), "--format", "json")
        self.assertIn(status, (0, 1), err)
        self.assertEqual(json.loads(rep)["summary"]["states"], len(self.w.state_at(t0)))
        t, text = at(4, 45)
        status, _, err = self.restore("--at", text, "--baseline", os.path.join(self.dir, "exports"),
                                      "--to", "ddb://from-export", "--create")
        self.assertEqual(status, 0, err)
        self.assertEqual(canon(scan(self.ddb, "from-export")), canon(self.w.state_at(t)))
        # A log whose changes before the export are gone gives the same.
        trimmed = os.path.join(self.dir, "trimmed")
        w2 = World(items=40)
        w2.changes = [c for c in w2.changes if c[0] >= t0]
        log2 = w2.write_log(trimmed)
        status, out, err = run("restore", log2, "--at", text, "--baseline", export, "--to", "-")
        self.assertEqual(status, 0, err)
        got = {(i["UserId"]["S"], i["ActivityId"]["S"]): i
               for i in (json.loads(x)["Item"] for x in out.decode().splitlines())}
        self.assertEqual(canon(got), canon(self.w.state_at(t)))
        # A baseline taken after --at is refused.
        status, _, err = self.restore("--at", at(1)[1], "--baseline", export, "--to", "-")
        self.assertEqual(status, 2, err)
        self.assertIn("after --at", err)

    def test_undo_chosen_keys_and_refuse_one_changed_since(self):
        create_table(self.ddb, "live")
        self.w.apply(self.ddb, "live")
        t, text = at(4, 30)
        then, now = self.w.state_at(t), self.w.truth
        changed = [k for k in sorted(now) if k in then and then[k] != now[k]]
        born = [k for k in sorted(now) if k not in then]
        same = [k for k in sorted(now) if then.get(k) == now[k]]
        self.assertTrue(len(changed) >= 2 and born and same, "the world lacks a case")
        back, tampered, new, kept = changed[0], changed[1], born[0], same[0]
        altered = dict(now[tampered], Status={"S": "BEHIND-THE-LOG"})
        self.ddb.put_item(TableName="live", Item=altered)
        keys = os.path.join(self.dir, "keys.txt")
        with open(keys, "w") as f:
            f.write("# items to undo\n")
            for u, a in (back, tampered, new, kept):
                f.write(f"UserId={u},ActivityId={a}\n")
        before = scan(self.ddb, "live")
        status, out, err = self.restore("--undo-since", text, "--to", "ddb://live",
                                        "--keys-file", keys, "--dry-run")
        self.assertEqual(status, 0, err)
        self.assertEqual(scan(self.ddb, "live"), before)
        self.assertIn('"changed"', out.decode())
        status, out, err = self.restore("--undo-since", text, "--to", "ddb://live",
                                        "--keys-file", keys)
        self.assertEqual(status, 1, err)
        # A line an item: what was done, its key (attributes by name), why.
        lines = {line.split(" ", 2)[1].rstrip(":"): line.split(" ", 1)[0]
                 for line in out.decode().splitlines()}

        def k(item):
            return f"ActivityId={item[1]},UserId={item[0]}"
        self.assertEqual(lines, {k(back): "PUT", k(tampered): "REFUSED", k(new): "DELETE",
                                 k(kept): "UNCHANGED"})
        live = scan(self.ddb, "live")
        self.assertEqual(live[back], then[back])
        self.assertEqual(live[tampered], altered)      # never clobbered
        self.assertNotIn(new, live)
        self.assertEqual(live[kept], now[kept])
        self.assertIn("1 refused", err)

    def test_a_stopped_restore_resumes_from_its_checkpoint(self):
        w = World(items=1300, hours=2, seed=11)
        log = w.write_log(os.path.join(self.dir, "big"))
        t, text = at(2)
        want = canon(w.state_at(t))
        self.assertGreater(len(want), 1000)
        ckpt = os.path.join(self.dir, "restore.ckpt")
        create_table(self.ddb, "resumed")
        proxy = ThrottleProxy(self.moto.url, fail_after=41, throttle=False)
        try:
            env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=proxy.url)
            p = subprocess.run([BINARY, "restore", log, "--at", text, "--to", "ddb://resumed",
                                "--checkpoint", ckpt], capture_output=True, env=env,
                               timeout=600)
        finally:
            proxy.stop()
        self.assertEqual(p.returncode, 3, p.stderr.decode())
        self.assertIn("injected", p.stderr.decode())
        with open(ckpt) as f:
            saved = json.load(f)
        self.assertFalse(saved["finished"])
        self.assertGreaterEqual(saved["written"], 1000)
        partial = scan(self.ddb, "resumed")
        self.assertLess(len(partial), len(want))
        # The same command goes on: the table is not empty, and that is fine.
        status, _, err = self.restore_log(log, "--at", text, "--to", "ddb://resumed",
                                          "--checkpoint", ckpt)
        self.assertEqual(status, 0, err)
        self.assertIn(f"{saved['written']} items were written by an earlier run", err)
        self.assertEqual(canon(scan(self.ddb, "resumed")), want)
        # A checkpoint of another restore is refused.
        status, _, err = self.restore_log(log, "--at", at(1)[1], "--to", "ddb://resumed",
                                          "--checkpoint", ckpt)
        self.assertEqual(status, 2, err)
        self.assertIn("another restore", err)

    def test_from_a_live_table_plus_the_log_after_its_scan(self):
        """--baseline ddb://TABLE: the table as scanned now, then the log's
        changes after the scan started."""
        create_table(self.ddb, "base")
        items = {k: v for k, v in sorted(self.w.truth.items())[:5]}
        for it in items.values():
            self.ddb.put_item(TableName="base", Item=it)
        (a, img_a), (b, img_b) = list(items.items())[:2]
        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
        new_a = dict(img_a, Status={"S": "AFTER"})
        c = ("late-user", "act0")
        img_c = {"UserId": {"S": c[0]}, "ActivityId": {"S": c[1]}, "Version": {"N": "1"}}
        log = os.path.join(self.dir, "after", "audit-logs")
        for i, (key, ev, old, new) in enumerate([(a, "MODIFY", img_a, new_a),
                                                 (b, "REMOVE", img_b, None),
                                                 (c, "INSERT", None, img_c)]):
            t = later + datetime.timedelta(seconds=i)
            d = os.path.join(log, t.strftime("%Y/%m/%d/%H"))
            os.makedirs(d, exist_ok=True)
            rec = {"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%f"), "eventName": ev,
                   "userId": key[0], "activityId": key[1]}
            if old:
                rec["oldImage"] = old
            if new:
                rec["newImage"] = new
            with open(os.path.join(d, f"{key[0]}-{key[1]}.json"), "w") as f:
                json.dump(rec, f)
        until = (later + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, out, err = self.restore_log(log, "--at", until, "--baseline", "ddb://base",
                                            "--to", "-")
        self.assertEqual(status, 0, err)
        got = {(i["UserId"]["S"], i["ActivityId"]["S"]): i
               for i in (json.loads(x)["Item"] for x in out.decode().splitlines())}
        want = dict(items)
        want[a] = new_a
        del want[b]
        want[c] = img_c
        self.assertEqual(canon(got), canon(want))
        leftovers = [n for n in os.listdir(os.environ.get("TMPDIR", "/tmp"))
                     if n.startswith("ddbaudit-baseline-")]
        self.assertEqual(leftovers, [])

    def restore_log(self, log, *args):
        status, out, err = run("restore", log, *args)
        self.assertNoCrash(status, err)
        return status, out, err

    def test_one_key_and_a_dry_run(self):
        t, text = at(4)
        state = self.w.state_at(t)
        (user, act), image = sorted(state.items())[0]
        key = f"UserId={user},ActivityId={act}"
        status, stdout, err = self.restore("--at", text, "--to", "-", "--key", key)
        self.assertEqual(status, 0, err)
        self.assertEqual([json.loads(x)["Item"] for x in stdout.decode().splitlines()], [image])
        status, stdout, err = self.restore("--at", text, "--to", "ddb://dry", "--create",
                                           "--dry-run")
        self.assertEqual(status, 0, err)
        self.assertEqual(len(stdout.decode().splitlines()), len(state))
        self.assertTrue(stdout.decode().startswith("PUT "))
        self.assertNotIn("dry", self.ddb.list_tables()["TableNames"])

    def test_throttling_loses_no_write(self):
        proxy = ThrottleProxy(self.moto.url)
        try:
            create_table(self.ddb, "throttled")
            t, text = at(6)
            env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=proxy.url)
            p = subprocess.run([BINARY, "restore", self.log, "--at", text, "--to",
                                "ddb://throttled"], capture_output=True, env=env, timeout=600)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 0, err)
            self.assertGreater(proxy.refused, 0)
            self.assertGreater(proxy.unprocessed, 0)
            self.assertEqual(canon(scan(self.ddb, "throttled")), canon(self.w.state_at(t)))
        finally:
            proxy.stop()


if __name__ == "__main__":
    from harness import main
    main()
