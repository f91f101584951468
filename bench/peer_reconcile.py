#!/usr/bin/env python3
"""Peer of `ddbaudit reconcile` for bench/reconcile-run: boto3 + orjson, what a
team would write. Reads the log's last image of every item (kept as a SHA-256
of its sorted-key JSON dump), scans the table in SEGMENTS parallel segments
(a thread each), digests every item the same way and compares: matched,
drift, unlogged, missing. Prints the counts as JSON; exit 1 on any finding.

usage: peer_reconcile.py LOG TABLE [SEGMENTS]   (endpoint from AWS_ENDPOINT_URL_DYNAMODB)
"""
import concurrent.futures
import hashlib
import sys

import boto3
import orjson

from peer_common import final_images


def digest(image):
    return hashlib.sha256(orjson.dumps(image, option=orjson.OPT_SORT_KEYS)).digest()


def main():
    log, table = sys.argv[1], sys.argv[2]
    segments = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    want = {k: None if v is None else digest(v) for k, v in final_images(log).items()}
    client = boto3.client("dynamodb")

    def scan(segment):
        counts = {"table_items": 0, "matched": 0, "drift": 0, "unlogged": 0}
        pages = client.get_paginator("scan").paginate(TableName=table, Segment=segment,
                                                      TotalSegments=segments)
        for page in pages:
            for item in page["Items"]:
                counts["table_items"] += 1
                d = want.pop((item["UserId"]["S"], item["ActivityId"]["S"]), False)
                if d is False:
                    counts["unlogged"] += 1
                elif d == digest(item):
                    counts["matched"] += 1
                else:
                    counts["drift"] += 1
        return counts

    total = {"table_items": 0, "matched": 0, "drift": 0, "unlogged": 0}
    with concurrent.futures.ThreadPoolExecutor(segments) as pool:
        for counts in pool.map(scan, range(segments)):
            for k, v in counts.items():
                total[k] += v
    total["missing"] = sum(1 for d in want.values() if d is not None)
    print(orjson.dumps(total).decode())
    return 1 if total["drift"] or total["unlogged"] or total["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
