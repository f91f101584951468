"""Hostile and broken input: every case gives an anomaly or a clear error with
the documented exit status, never a crash or a hang, and what was read before
the damage is still counted."""
import gzip
import json
import os
import zlib
from harness import Case, main, run, verify_json

HOUR = "audit-logs/2025/07/12/08/"


def seed(user, act, version=1, ts="2025-07-12T08:10:00.000001"):
    img = {"UserId": {"S": user}, "ActivityId": {"S": act}, "Version": {"N": str(version)}}
    return {"timestamp": ts, "eventName": "INSERT", "userId": user, "activityId": act,
            "awsRegion": "us-east-1", "eventSource": "aws:dynamodb", "newImage": img}


class MalformedTest(Case):
    def kinds(self, rep):
        return sorted(a["kind"] for a in rep["anomalies"])

    def audit_one(self, name, data):
        """Writes a good object and a bad one; returns the report."""
        self.write(HOUR + "good-1.json", json.dumps(seed("good", "1")))
        self.write(HOUR + name, data)
        status, rep, err = verify_json(os.path.join(self.dir, "audit-logs"), timeout=300)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        self.assertEqual(rep["summary"]["valid"], 1, "the good object must still count")
        self.assertEqual(rep["summary"]["objects"], 2)
        return rep

    def test_truncated_json(self):
        rep = self.audit_one("u-a.json", json.dumps(seed("u", "a"))[:60])
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])
        self.assertIn(HOUR + "u-a.json", rep["anomalies"][0]["object"]["key"])

    def test_binary_garbage(self):
        rep = self.audit_one("u-a.json", bytes(range(256)) * 40)
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])

    def test_invalid_utf8(self):
        raw = json.dumps(seed("u", "a")).encode().replace(b'"u"', b'"u\xff\xfe"', 1)
        rep = self.audit_one("u-a.json", raw)
        self.assertEqual(self.kinds(rep), ["INVALID_VALUE"])

    def test_deep_nesting(self):
        deep = "[" * 10000 + "]" * 10000
        rep = self.audit_one("u-a.json", deep)
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])
        # Within JSON's limits but beyond DynamoDB's 32 levels: INVALID_VALUE.
        nested = {"S": "x"}
        for _ in range(40):
            nested = {"L": [nested]}
        rec = seed("v", "b")
        rec["newImage"]["Deep"] = nested
        self.write(HOUR + "v-b.json", json.dumps(rec))
        status, rep, err = verify_json(os.path.join(self.dir, "audit-logs"))
        self.assertNoCrash(status, err)
        self.assertIn("INVALID_VALUE", self.kinds(rep))

    def test_100mb_object(self):
        self.write(HOUR + "good-1.json", json.dumps(seed("good", "1")))
        p = self.path(HOUR + "huge-1.json")
        with open(p, "wb") as f:
            f.truncate(100 << 20)
        status, rep, err = verify_json(os.path.join(self.dir, "audit-logs"))
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1)
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])
        self.assertIn("cap", rep["anomalies"][0]["detail"])
        self.assertEqual(rep["summary"]["valid"], 1)

    def test_gzip_bomb(self):
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunk = b" " * (1 << 20)
        parts = [comp.compress(chunk) for _ in range(256)]  # 256 MiB of spaces
        bomb = b"".join(parts) + comp.flush()
        self.assertLess(len(bomb), 1 << 20)
        rep = self.audit_one("bomb-1.json.gz", bomb)
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])

    def test_damaged_gzip(self):
        data = gzip.compress(json.dumps(seed("u", "a")).encode())
        rep = self.audit_one("u-a.json.gz", data[: len(data) // 2])
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])

    def test_truncated_gzip_ndjson_keeps_the_lines_before(self):
        """A gzip NDJSON stream cut short: every complete line before the
        damage is a record, the rest one UNREADABLE finding, never a runtime
        failure (once reported as "out of memory" with exit 3)."""
        lines = "".join(json.dumps(seed(f"u{i}", "a")) + "\n" for i in range(50))
        data = gzip.compress(lines.encode(), compresslevel=1)
        p = self.write("x.ndjson.gz", data[: len(data) * 3 // 4])
        status, rep, err = verify_json(p, "--max-object-bytes", "100000")
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        self.assertGreater(rep["summary"]["valid"], 0)
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])

    def gz_ndjson_finding(self, data):
        """Verifies data as a gzip NDJSON file: (report, its one finding's detail)."""
        p = self.write("x.ndjson.gz", data)
        status, rep, err = verify_json(p)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        self.assertEqual(self.kinds(rep), ["UNREADABLE"])
        return rep, rep["anomalies"][0]["detail"]

    def test_gzip_ndjson_wrong_crc_and_length(self):
        """The reader checks a member's CRC-32 and length itself (zlib only
        inflates): a wrong one is the finding zlib's own check gave, the CRC
        before the length, and the member's records are not counted past it."""
        lines = "".join(json.dumps(seed(f"u{i}", "a")) + "\n" for i in range(20)).encode()
        good = gzip.compress(lines, compresslevel=6)
        crc = bytearray(good)
        crc[-8] ^= 0x01
        rep, detail = self.gz_ndjson_finding(bytes(crc))
        self.assertIn("gzip stream is damaged: incorrect data check", detail)
        size = bytearray(good)
        size[-4] ^= 0x01
        rep, detail = self.gz_ndjson_finding(bytes(size))
        self.assertIn("gzip stream is damaged: incorrect length check", detail)
        both = bytearray(size)
        both[-8] ^= 0x01
        rep, detail = self.gz_ndjson_finding(bytes(both))
        self.assertIn("incorrect data check", detail)
        # A good second member after the first still counts its records.
        p = self.write("y.ndjson.gz", good + gzip.compress(lines))
        status, rep, err = verify_json(p)
        self.assertNoCrash(status, err)
        self.assertEqual(rep["summary"]["valid"], 40, err)

    def test_gzip_ndjson_header_fields(self):
        """Members whose headers carry a name, a comment, an extra field and a
        header CRC (all read by the reader, not zlib) decode in full; a header
        CRC or a compression method that is wrong is zlib's finding."""
        lines = "".join(json.dumps(seed(f"u{i}", "a")) + "\n" for i in range(10)).encode()
        body = zlib.compressobj(6, zlib.DEFLATED, -15)
        deflated = body.compress(lines) + body.flush()
        flags = 0x02 | 0x04 | 0x08 | 0x10
        head = bytes([0x1F, 0x8B, 8, flags, 0, 0, 0, 0, 0, 3]) + b"\x03\x00abc" + b"n.json\0" \
            + b"a comment\0"
        head += (zlib.crc32(head) & 0xFFFF).to_bytes(2, "little")
        tail = zlib.crc32(lines).to_bytes(4, "little") + len(lines).to_bytes(4, "little")
        p = self.write("h.ndjson.gz", head + deflated + tail + gzip.compress(lines))
        status, rep, err = verify_json(p)
        self.assertNoCrash(status, err)
        self.assertEqual((status, rep["summary"]["valid"]), (0, 20), err)
        bad = bytearray(head)
        bad[-1] ^= 0xFF
        rep, detail = self.gz_ndjson_finding(bytes(bad) + deflated + tail)
        self.assertIn("gzip stream is damaged: header crc mismatch", detail)
        bad = bytearray(head)
        bad[2] = 7
        rep, detail = self.gz_ndjson_finding(bytes(bad) + deflated + tail)
        self.assertIn("gzip stream is damaged: unknown compression method", detail)

    def test_ndjson_bad_line_keeps_the_rest(self):
        lines = [json.dumps(seed(f"u{i}", "a")) for i in range(5)]
        lines[2] = '{"timestamp": "2025-07-12T08:00:00", "eventName": '
        p = self.write("x.ndjson", "\n".join(lines) + "\n")
        status, rep, err = verify_json(p)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1)
        self.assertEqual(rep["summary"]["valid"], 4)
        self.assertEqual(rep["summary"]["invalid"], 1)
        self.assertEqual(rep["anomalies"][0]["line"], 3)

    def test_empty_and_non_record_values(self):
        for name, data in [("e-1.json", b""), ("n-1.json", b"null"), ("a-1.json", b"[1,2]"),
                           ("s-1.json", b'"text"'), ("o-1.json", b"{}")]:
            self.write(HOUR + name, data)
        status, rep, err = verify_json(os.path.join(self.dir, "audit-logs"))
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1)
        self.assertEqual(rep["summary"]["invalid"], 5)


if __name__ == "__main__":
    main()
