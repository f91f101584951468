#!/usr/bin/env python3
"""The peer of `ddbaudit replay` in bench/replay-run: what a team would write
in Python to re-drive an audit log into an HTTP processor. Reads seed-format
records from NDJSON(.gz) with orjson, orders them by change time, builds
Lambda-shaped stream records (eventID, Keys, images, SequenceNumber, an
approximate SizeBytes), splits them into lanes by partition key and POSTs
batches on one keep-alive connection a lane, one thread a lane. It checks
nothing and retries nothing. Prints: records batches.

usage: peer_replay.py SOURCE URL [--batch-size 100] [--lanes 4]
"""
import argparse
import gzip
import hashlib
import http.client
import threading
import urllib.parse

import orjson


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("url")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lanes", type=int, default=4)
    args = ap.parse_args()
    recs = load(args.source)
    recs.sort(key=lambda r: r["timestamp"])
    lanes = [[] for _ in range(args.lanes)]
    for i, r in enumerate(recs):
        keys = {"UserId": {"S": r["userId"]}, "ActivityId": {"S": r["activityId"]}}
        ddb = {"ApproximateCreationDateTime": 0, "Keys": keys,
               "SequenceNumber": "1%020d" % (i + 1), "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if "newImage" in r:
            ddb["NewImage"] = r["newImage"]
        if "oldImage" in r:
            ddb["OldImage"] = r["oldImage"]
        ddb["SizeBytes"] = len(orjson.dumps(ddb))
        rec = {"eventID": hashlib.sha256(b"%d" % i).hexdigest()[:32],
               "eventName": r["eventName"], "eventVersion": "1.1",
               "eventSource": "aws:dynamodb", "awsRegion": r.get("awsRegion", "us-east-1"),
               "dynamodb": ddb}
        lane = int(hashlib.md5(r["userId"].encode()).hexdigest(), 16) % args.lanes
        lanes[lane].append(rec)
    u = urllib.parse.urlsplit(args.url)
    sent = [0]
    lock = threading.Lock()

    def run(records):
        conn = http.client.HTTPConnection(u.hostname, u.port)
        n = 0
        for a in range(0, len(records), args.batch_size):
            body = orjson.dumps({"Records": records[a:a + args.batch_size]})
            conn.request("POST", u.path or "/", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status // 100 != 2:
                raise SystemExit(f"HTTP {resp.status}")
            n += 1
        with lock:
            sent[0] += n

    threads = [threading.Thread(target=run, args=(lane,)) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(len(recs), sent[0])


if __name__ == "__main__":
    main()
