#!/usr/bin/env python3
"""Writes the fuzz seeds for the DynamoDB dialects into the decode and scan
corpora: an incremental export line (WriteTimestampMicros as the N value
AWS writes), full-export items, a NEW_IMAGE export line, and the Lambda
documentation's example event (no ApproximateCreationDateTime); and
fuzz_export's export manifests; fuzz_gzip's gzip streams. Run from anywhere; the other seeds in those
corpora are kept as they are."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def seeds():
    export_line = json.dumps({"Metadata": {"WriteTimestampMicros": {"N": "1752308870412608"}},
                              "Keys": {"pk": {"S": "x"}},
                              "NewImage": {"pk": {"S": "x"}, "n": {"N": "-0.000"}}})
    full = "".join(json.dumps({"Item": it}) + "\n" for it in [
        {"UserId": {"S": "user 7"}, "ActivityId": {"S": "act-39"}, "Version": {"N": "2"},
         "Tags": {"SS": ["b", "a"]}},
        {"UserId": {"S": "u"}, "ActivityId": {"S": "a"},
         "M": {"M": {"x": {"L": [{"NULL": True}, {"B": "AAEC"}]}}}}])
    new_image = json.dumps({"Metadata": {"WriteTimestampMicros": {"N": "1752308870412608"}},
                            "Keys": {"pk": {"S": "x"}},
                            "NewImage": {"pk": {"S": "x"}, "n": {"N": "1"}}}) + "\n"
    a = {"Message": {"S": "New item!"}, "Id": {"N": "101"}}
    b = {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}}

    def rec(i, ev, seq, old=None, new=None):
        db = {"Keys": {"Id": {"N": "101"}}, "SequenceNumber": seq, "SizeBytes": 26,
              "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if old:
            db["OldImage"] = old
        if new:
            db["NewImage"] = new
        return {"eventID": str(i), "eventVersion": "1.0", "dynamodb": db,
                "awsRegion": "us-west-2", "eventName": ev,
                "eventSourceARN": "arn:aws:dynamodb:us-west-2:111122223333:table/TestTable/"
                                  "stream/2015-05-11T21:21:33.291",
                "eventSource": "aws:dynamodb"}
    event = json.dumps({"Records": [rec(1, "INSERT", "111", new=a),
                                    rec(2, "MODIFY", "222", old=a, new=b),
                                    rec(3, "REMOVE", "333", old=b)]})
    # A seed record the fast path takes in one pass although its members come
    # in another order, one of them it does not read (nested), a list holds
    # maps, and a type name is escaped.
    shapes = ('{"newImage": {"ActivityId": {"S": "a"}, "UserId": {"S": "u"}, '
              '"L": {"L": [{"M": {"z": {"S": "1"}, "a": {"NULL": true}}}, {"\\u0053": "x"}]}, '
              '"Tags": {"SS": ["b", "a"]}}, "extra": {"b": [true, null, "s", {}], "a": {}}, '
              '"userId": "u", "activityId": "a", "eventName": "INSERT", '
              '"timestamp": "2025-07-12T08:27:50Z"}\n')
    return {"export_line.json": export_line, "export_full.ndjson": full,
            "export_new_image.ndjson": new_image, "lambda_docs_event.json": event,
            "seed_shapes.ndjson": shapes}


def manifests():
    """fuzz_export's inputs: manifest-summary.json, NUL, manifest-files.json."""
    root = "p/AWSDynamoDB/01752309000000-0f0f0f0f/"
    full = {"version": "2020-06-30", "exportTime": "2025-07-12T08:30:00.000Z",
            "itemCount": 3, "outputFormat": "DYNAMODB_JSON", "exportType": "FULL_EXPORT",
            "manifestFilesS3Key": root + "manifest-files.json"}
    incr = {"version": "2023-08-01", "exportFromTime": "2025-07-12T09:00:00.000Z",
            "exportToTime": "2025-07-12T10:00:00.000Z", "itemCount": 1,
            "outputFormat": "DYNAMODB_JSON", "outputView": "NEW_IMAGE",
            "exportType": "INCREMENTAL_EXPORT"}
    files = "".join(json.dumps({"itemCount": n, "md5Checksum": "sQMSpEILNgoQmarvDFonGQ==",
                                "etag": "af83d6f217c19b8b0fff8023d8ca4716-1",
                                "dataFileS3Key": root + "data/" + name}) + "\n"
                    for name, n in (("a.json.gz", 2), ("b.json.gz", 1)))
    return {"full": json.dumps(full) + "\0" + files,
            "incremental": json.dumps(incr) + "\0" + files,
            "summary_only": json.dumps(full)}


def ndjson_cap_seeds():
    """fuzz_ndjson's inputs: a byte choosing the cap (1 + 4 * b), a byte whose
    low bit gzips the rest, then lines of the cap's length -1, 0 and +1 (LF and
    CRLF), a batch line, and a last line without a newline."""
    cap = 1 + 4 * 25
    rec = json.dumps({"timestamp": "2025-07-12T08:00:00", "eventName": "INSERT",
                      "userId": "u", "activityId": "a"})
    lines = ["x" * (cap - 1), "y" * cap, "z" * (cap + 1), "w" * (cap - 1) + "\r",
             "v" * cap + "\r", rec, json.dumps({"Records": [{"a": 1}, {"b": [1, 2]}, 3]})]
    text = "\n".join(lines) + "\n" + "t" * (cap + 7)
    out = {}
    for flags in (0, 1):
        out["cap-%d" % flags] = bytes([25, flags]) + text.encode()
    out["cap-endless"] = bytes([0, 0]) + b"q" * 300
    return out


def gzip_seeds():
    """fuzz_gzip's inputs: a mode byte (low bit: compress the rest into 1 + (b >> 1 & 3)
    members at level 1 + (b >> 3 & 7), a header CRC on the first when bit 5 is set, then
    by b >> 6 truncate, damage a byte or append garbage; clear: the rest as it is), a
    cap byte (37 bytes a step, 0xff for 16 MiB; bit 1 also puts an extra field and a
    comment in the first member's header; it sets the streaming reader's read sizes too),
    then the text or the raw gzip bytes."""
    import gzip
    text = "".join(json.dumps({"timestamp": "2025-07-12T08:00:%02d" % i, "eventName": "INSERT",
                               "userId": "u%d" % i, "activityId": "a"}) + "\n"
                   for i in range(12)).encode()
    two = gzip.compress(text[:300], mtime=0) + gzip.compress(text[300:], mtime=0)
    return {"members3": bytes([1 | 2 << 1 | 5 << 3, 0xff]) + text,
            "hcrc": bytes([1 | 1 << 5, 0xff]) + text,
            "truncated": bytes([1 | 1 << 6, 0x40]) + text,
            "damaged": bytes([1 | 2 << 6, 0x41]) + text,
            "garbage": bytes([1 | 3 << 6, 0x02]) + text,
            "capped": bytes([1, 3]) + text,
            "header_fields": bytes([1 | 1 << 1 | 1 << 5, 0x42]) + text,
            "small_reads": bytes([1 | 3 << 1, 0x02]) + text,
            "raw_two_members": bytes([0, 0xff]) + two,
            "raw_not_gzip": bytes([0, 0xff]) + text[:40]}


def baselines():
    """--baseline files: entries with globs, comments, dates, a loss kind."""
    gap = {"kind": "GAP", "item": "ActivityId=a1,UserId=u\\*1", "object": "audit-logs/2025/*",
           "expires": "2026-12-31", "reason": "INC-1"}
    bad = {"kind": "UNREADABLE", "item": "", "object": "audit-logs/2025/07/12/10/x.json",
           "expires": "2026-12-31T12:00:00Z", "reason": "cut"}
    return {"entries": "# known\n\n" + json.dumps(gap) + "\r\n" + json.dumps(bad) + "\n",
            "one": json.dumps(dict(gap, kind="DUPLICATE", item="*", object="*")),
            "bad_member": json.dumps(dict(gap, extra=1)) + "\n"}


def main():
    os.makedirs(os.path.join(HERE, "corpus", "ndjson"), exist_ok=True)
    for name, data in ndjson_cap_seeds().items():
        with open(os.path.join(HERE, "corpus", "ndjson", name), "wb") as f:
            f.write(data)
    for corpus in ("decode", "scan"):
        for name, text in seeds().items():
            with open(os.path.join(HERE, "corpus", corpus, name), "w") as f:
                f.write(text)
    os.makedirs(os.path.join(HERE, "corpus", "export"), exist_ok=True)
    for name, text in manifests().items():
        with open(os.path.join(HERE, "corpus", "export", name), "w") as f:
            f.write(text)
    os.makedirs(os.path.join(HERE, "corpus", "gzip"), exist_ok=True)
    for name, data in gzip_seeds().items():
        with open(os.path.join(HERE, "corpus", "gzip", name), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(HERE, "corpus", "baseline"), exist_ok=True)
    for name, text in baselines().items():
        with open(os.path.join(HERE, "corpus", "baseline", name), "w") as f:
            f.write(text)
    os.makedirs(os.path.join(HERE, "corpus", "spill"), exist_ok=True)
    for name, data in spill_runs().items():
        with open(os.path.join(HERE, "corpus", "spill", name), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(HERE, "corpus", "merge"), exist_ok=True)
    for name, text in merge_seeds().items():
        with open(os.path.join(HERE, "corpus", "merge", name), "w") as f:
            f.write(text)
    os.makedirs(os.path.join(HERE, "corpus", "state"), exist_ok=True)
    for name, text in states().items():
        with open(os.path.join(HERE, "corpus", "state", name), "w") as f:
            f.write(text)


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7f | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def spill_runs():
    """Inputs of fuzz_spill: the count of events a run holds (4 bytes, little
    endian), then the run: blocks of two little-endian lengths (deflated,
    raw) and a zlib stream of encoded events (src/history/spill.c)."""
    import struct
    import zlib

    def event(key=None, khash_delta=0, ev=1, flags=3, time_delta=0, line=1, obj=0, index=0,
              seq=None, old=b"o" * 32, new=b"n" * 32, old_is_prev=False):
        h = (1 if key is None else 0) | (2 if old_is_prev else 0) | (4 if seq is not None else 0)
        out = bytes([h, ev, flags])
        if key is not None:
            out += varint(khash_delta) + varint(len(key)) + key
        out += varint((time_delta << 1) ^ (time_delta >> 63) & (2**64 - 1))
        out += varint(line) + varint(obj) + varint(index)
        if seq is not None:
            out += varint(len(seq)) + seq
        if flags & 1 and not old_is_prev:
            out += old
        if flags & 2:
            out += new
        return out

    def block(raw):
        z = zlib.compress(raw, 1)
        return struct.pack("<II", len(z), len(raw)) + z

    one = event(key=b"user1", khash_delta=12345, ev=0, flags=2, time_delta=1752300000000000)
    chain = one + event(ev=1, time_delta=1000000, old=b"n" * 32, new=b"m" * 32,
                        old_is_prev=True) + event(ev=2, flags=1, time_delta=5, old_is_prev=True)
    seqs = event(key=b"k", seq=b"100", flags=0) + event(seq=b"101", flags=16, line=7)
    return {"one_event": struct.pack("<I", 1) + block(one),
            "chain": struct.pack("<I", 3) + block(chain),
            "two_blocks": struct.pack("<I", 5) + block(chain) + block(seqs),
            "count_wrong": struct.pack("<I", 4) + block(chain),
            "empty": struct.pack("<I", 0)}


def merge_seeds():
    """fuzz_merge's inputs: a one-shard report.json, NUL, its manifest.ndjson;
    and variants (a finding naming an object no manifest lists, no shard
    section)."""
    obj = {"key": "audit-logs/2025/07/12/09/u-a.json", "etag": "e", "listing": 1}
    gap = {"kind": "GAP", "severity": "error", "item": {"UserId": {"S": "u"},
           "ActivityId": {"S": "a"}}, "object": obj, "time": "2025-07-12T09:10:00.000001Z",
           "line": 1, "index": 0, "detail": "old image differs", "expected_digest": "ab" * 32,
           "found_digest": "cd" * 32, "provisional": False,
           "diff": {"changed": {"V": {"expected": {"N": "1"}, "found": {"N": "2"}}}},
           "previous": {"object": dict(obj, listing=2, key="audit-logs/2025/07/12/08/u-a.json"),
                        "index": 0}}
    prior = dict(gap, kind="UNKNOWN_PRIOR", severity="info", diff=None, previous=None,
                 expected_digest=None, found_digest=None)
    del prior["diff"], prior["previous"]
    rep = {"schema": "ddbaudit.report/v1",
           "run": {"source": "audit-logs", "range": {"from": "2025-07-12T08:00:00Z",
                   "to": None}, "complete": True, "verdict": "findings",
                   "started": "2025-07-12T10:00:00Z", "finished": "2025-07-12T10:00:01Z",
                   "options": {"now": "2025-07-12T12:00:00Z", "settle_seconds": 900,
                               "expect_every_hours": 1, "allow_empty": False,
                               "fail_on": "error", "shard": {"index": 0, "count": 1}}},
           "summary": {"records": 2, "valid": 2, "items": 1, "events": {"MODIFY": 2},
                       "ignored": {"GAP": 1}},
           "hours": [{"hour": "2025-07-12T09:00:00Z", "objects": 1, "records": 1}],
           "shard": {"index": 0, "count": 1, "assignment": "seed-name-fnv1a64/v1",
                     "listing_sha256": "00" * 32, "options_sha256": "11" * 32,
                     "items_by_events": [0, 1], "findings": [prior, gap]}}
    lines = [{"key": "audit-logs/2025/07/12/08/u-a.json", "size": 10,
              "lastModified": "2025-07-12T08:10:00Z", "sha256": "ef" * 32, "in_range": True},
             {"key": "audit-logs/2025/07/12/09/u-a.json", "size": 12, "in_range": True}]
    man = "".join(json.dumps(x, separators=(",", ":"))[:-1] + ',"listing":%d}\n' % (i + 2)
                  for i, x in enumerate(lines))
    marker = dict(rep, shard=dict(rep["shard"], findings=[dict(gap, object=dict(obj,
                  listing=9))]))
    return {"valid": json.dumps(rep) + "\0" + man,
            "named_only": json.dumps(marker) + "\0" + man,
            "not_a_shard": json.dumps({"schema": "ddbaudit.report/v1"}) + "\0"}


def states():
    """--state files (plain NDJSON, which the reader takes as gzip does): a
    valid one-item state with its trailer's SHA-256, and damaged variants."""
    import base64
    import hashlib
    head = ('{"format":"ddbaudit.state","version":1,"tool":"ddbaudit 0.1.0","table":'
            '{"source":"src","key_schema":["UserId","ActivityId"]},'
            '"watermark_us":1752314400000000,"started_us":1752314400000000}\n')
    item = ('{"k":"%s","p":true,"d":"%s","e":"MODIFY","t":1752310000000000,'
            '"o":"audit-logs/2025/07/12/09/user1-a.json","c":"0595756ff56df9a5"}\n'
            % (base64.b64encode(b"user1").decode(), "ab" * 32))
    body = head + item
    trailer = ('{"trailer":true,"items":1,"report_sha256":"","previous_report_sha256":"",'
               '"bucket":{"versioning":"","object_lock":""},"sha256":"%s"}\n'
               % hashlib.sha256(body.encode()).hexdigest())
    return {"valid": body + trailer, "no_trailer": body,
            "newer": head.replace('"version":1', '"version":2') + item + trailer,
            "empty_items": head + trailer.replace('"items":1', '"items":0')}


if __name__ == "__main__":
    main()
