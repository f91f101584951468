#!/usr/bin/env python3
"""An independent implementation of docs/canonical-form.md, used to write
tests/data/canon_vectors.json (image -> serialization and SHA-256), which
tests/unit/test_canon.c checks the C implementation against.

usage: tests/data/canon_reference.py > tests/data/canon_vectors.json
"""
import base64
import hashlib
import json
import re
import struct
import sys

U32 = struct.Struct(">I")
NUM = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$")


def number(s):
    m = NUM.match(s)
    assert m and (m.group(2) or m.group(3)), s
    sign, ip, fp, ex = m.group(1), m.group(2) or "", m.group(3) or "", int(m.group(4) or 0)
    digits, e = (ip + fp).lstrip("0"), ex - len(fp)
    if not digits:
        return "0"
    e += len(digits) - len(digits.rstrip("0"))
    digits = digits.rstrip("0")
    if e >= 0:
        out = digits + "0" * e
    elif len(digits) + e > 0:
        out = digits[: len(digits) + e] + "." + digits[len(digits) + e:]
    else:
        out = "0." + "0" * -(len(digits) + e) + digits
    return ("-" if sign == "-" else "") + out


def lp(b):
    return U32.pack(len(b)) + b


def value(av):
    (t, v), = av.items()
    if t == "S":
        return b"\x01" + lp(v.encode())
    if t == "N":
        return b"\x02" + lp(number(v).encode())
    if t == "B":
        return b"\x03" + lp(base64.b64decode(v))
    if t == "BOOL":
        return b"\x04" + bytes([1 if v else 0])
    if t == "NULL":
        return b"\x05"
    if t == "M":
        return image(v)
    if t == "L":
        return b"\x07" + U32.pack(len(v)) + b"".join(value(x) for x in v)
    conv = {"SS": lambda x: x.encode(), "NS": lambda x: number(x).encode(),
            "BS": base64.b64decode}[t]
    tag = {"SS": 8, "NS": 9, "BS": 10}[t]
    els = sorted(set(conv(x) for x in v))
    return bytes([tag]) + U32.pack(len(els)) + b"".join(lp(x) for x in els)


def image(m):
    entries = sorted((k.encode(), value(v)) for k, v in m.items())
    return b"\x06" + U32.pack(len(entries)) + b"".join(lp(k) + v for k, v in entries)


IMAGES = [
    {"UserId": {"S": "user123"}, "ActivityId": {"S": "activity001"}},
    {"UserId": {"S": "user123"}, "ActivityId": {"S": "activity001"},
     "ActivityType": {"S": "LOGIN"}, "Timestamp": {"N": "1752308870"},
     "Amount": {"N": "99.990"}},
    {"id": {"N": "-0.000"}, "big": {"N": "1E+125"}, "small": {"N": "-15E-131"}},
    {"k": {"S": "José 用户 \"q\" \\ /"}, "b": {"B": "AAEC/w=="}, "t": {"BOOL": True},
     "f": {"BOOL": False}, "z": {"NULL": True}, "e": {"S": ""}},
    {"s": {"SS": ["b", "a", ""]}, "n": {"NS": ["10", "1.5", "-2"]}, "bs": {"BS": ["AQ==", "AA=="]}},
    {"m": {"M": {"z": {"L": [{"N": "1"}, {"S": "1"}, {"M": {}}]}, "a": {"L": []}}}},
]

if __name__ == "__main__":
    out = []
    for img in IMAGES:
        ser = image(img)
        out.append({"image": img, "serialization": ser.hex(),
                    "sha256": hashlib.sha256(ser).hexdigest()})
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
