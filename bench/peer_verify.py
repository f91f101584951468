#!/usr/bin/env python3
"""The peer in bench/run: a plain Python + orjson implementation of the checks
`ddbaudit verify` makes on seed-format records, so that the benchmark compares
like with like. Single-threaded, as a straightforward script would be.

Reads a .ndjson(.gz) or a .tar.gz of audit objects; validates every record and
AttributeValue by DynamoDB's rules; canonicalizes images (the serialization of
docs/canonical-form.md) and hashes them with SHA-256; groups events by item
key, orders them by time and checks each link. Prints the counts as JSON.

usage: bench/peer_verify.py INPUT
"""
import base64
import binascii
import datetime as dt
import gzip
import hashlib
import re
import struct
import sys
import tarfile
import time
from collections import defaultdict

import orjson

NUM = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$")
U32 = struct.Struct(">I")
KEYS = ("UserId", "ActivityId")


class Invalid(Exception):
    pass


def canon_number(s):
    m = NUM.match(s)
    if not m or not (m.group(2) or m.group(3)):
        raise Invalid("not a number")
    sign, ip, fp, ex = m.group(1), m.group(2) or "", m.group(3) or "", int(m.group(4) or 0)
    digits = (ip + fp).lstrip("0")
    e = ex - len(fp)
    if not digits:
        return "0"
    stripped = digits.rstrip("0")
    e += len(digits) - len(stripped)
    digits = stripped
    if len(digits) > 38 or not -130 <= e + len(digits) - 1 <= 125:
        raise Invalid("number out of range")
    if e >= 0:
        out = digits + "0" * e
    elif len(digits) + e > 0:
        out = digits[:len(digits) + e] + "." + digits[len(digits) + e:]
    else:
        out = "0." + "0" * (-(len(digits) + e)) + digits
    return ("-" if sign == "-" else "") + out


def b64(s):
    if len(s) % 4:
        raise Invalid("bad base64")
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error:
        raise Invalid("bad base64")


def lp(b):
    return U32.pack(len(b)) + b


def ser_set(tag, vals, conv):
    if not isinstance(vals, list) or not vals:
        raise Invalid("empty set")
    els = sorted(conv(v) for v in vals)
    if len(set(els)) != len(els):
        raise Invalid("duplicate in set")
    return bytes([tag]) + U32.pack(len(els)) + b"".join(lp(x) for x in els)


def ser(av, depth):
    if depth > 32:
        raise Invalid("too deep")
    if not isinstance(av, dict) or len(av) != 1:
        raise Invalid("not an AttributeValue")
    (t, v), = av.items()
    if t == "S" and isinstance(v, str):
        return b"\x01" + lp(v.encode())
    if t == "N" and isinstance(v, str):
        return b"\x02" + lp(canon_number(v).encode())
    if t == "B" and isinstance(v, str):
        return b"\x03" + lp(b64(v))
    if t == "BOOL" and isinstance(v, bool):
        return b"\x04" + (b"\x01" if v else b"\x00")
    if t == "NULL" and v is True:
        return b"\x05"
    if t == "M" and isinstance(v, dict):
        return ser_map(v, depth + 1)
    if t == "L" and isinstance(v, list):
        return b"\x07" + U32.pack(len(v)) + b"".join(ser(x, depth + 1) for x in v)
    str_only = lambda f: (lambda x: f(x) if isinstance(x, str) else (_ for _ in ()).throw(Invalid("set")))
    if t == "SS":
        return ser_set(8, v, str_only(lambda x: x.encode()))
    if t == "NS":
        return ser_set(9, v, str_only(lambda x: canon_number(x).encode()))
    if t == "BS":
        return ser_set(10, v, str_only(b64))
    raise Invalid("bad type")


def ser_map(m, depth):
    parts = sorted((k.encode(), ser(v, depth)) for k, v in m.items())
    return b"\x06" + U32.pack(len(parts)) + b"".join(lp(k) + v for k, v in parts)


def digest(img):
    return hashlib.sha256(ser_map(img, 1)).digest()


def decode(rec):
    """Returns (key, time, event, old digest, new digest) or raises Invalid."""
    if not isinstance(rec, dict):
        raise Invalid("not an object")
    ts, ev = rec.get("timestamp"), rec.get("eventName")
    if not isinstance(ts, str) or ev not in ("INSERT", "MODIFY", "REMOVE"):
        raise Invalid("record")
    try:
        t = dt.datetime.fromisoformat(ts)
    except ValueError:
        raise Invalid("timestamp")
    user, act = rec.get("userId"), rec.get("activityId")
    if not isinstance(user, str) or not isinstance(act, str) or not user or not act:
        raise Invalid("key")
    key = (user, act)
    old, new = rec.get("oldImage"), rec.get("newImage")
    if (ev == "INSERT") != (old is None) or (ev == "REMOVE") != (new is None):
        raise Invalid("image mismatch")
    for img in (old, new):
        if img is not None:
            if not isinstance(img, dict):
                raise Invalid("image")
            for k, v in zip(KEYS, key):
                if img.get(k) != {"S": v}:
                    raise Invalid("key mismatch")
    return key, t, ev, digest(old) if old else None, digest(new) if new else None


def read_records(path):
    if path.endswith(".tar.gz") or path.endswith(".tgz"):
        with tarfile.open(path, "r|gz") as tar:
            for m in tar:
                if m.isfile():
                    yield tar.extractfile(m).read()
    else:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            for line in f:
                if line.strip():
                    yield line


def check(events, counts):
    """Chain checks over one item's events (sorted by time)."""
    present, cur, known, applied = False, None, False, set()
    for _, ev, old, new in events:
        fp = (ev, old, new)
        links = (not present) if ev == "INSERT" else (present and old == cur)
        if fp in applied and not links:
            counts["DUPLICATE"] += 1
            continue
        if not known:
            if ev != "INSERT":
                counts["UNKNOWN_PRIOR"] += 1
        elif ev == "INSERT":
            if present:
                counts["DOUBLE_INSERT"] += 1
        elif not present:
            counts["MODIFY_AFTER_REMOVE"] += 1
        elif old != cur:
            counts["GAP"] += 1
        if ev == "MODIFY" and old == new:
            counts["NO_OP_MODIFY"] += 1
        applied.add(fp)
        known, present, cur = True, ev != "REMOVE", new


def main():
    t0 = time.perf_counter()
    items = defaultdict(list)
    counts = defaultdict(int)
    records = valid = 0
    for raw in read_records(sys.argv[1]):
        records += 1
        try:
            key, t, ev, old, new = decode(orjson.loads(raw))
        except (Invalid, orjson.JSONDecodeError):
            counts["INVALID"] += 1
            continue
        valid += 1
        items[key].append((t, ev, old, new))
    for evs in items.values():
        evs.sort(key=lambda e: e[0])
        check(evs, counts)
    secs = time.perf_counter() - t0
    print(orjson.dumps({"records": records, "valid": valid, "items": len(items),
                        "anomalies": counts, "seconds": round(secs, 3),
                        "records_per_second": round(records / secs)}).decode())


if __name__ == "__main__":
    main()
