"""DynamoDB exports end to end through `ddbaudit verify`: a full export and an
incremental export laid out exactly as AWS writes them (AWSDynamoDB/<id>/
with _started, manifest-summary.json, manifest-files.json, their checksum
files and gzip-compressed JSON-lines data files), beside the audit writer's
log, as a directory and as a tar.gz. The fixtures are made by this script.
Also the Lambda documentation's example event, whose records have no
ApproximateCreationDateTime."""
import gzip
import hashlib
import base64
import json
import os
import tarfile
from harness import Case, main, run, verify_json
from moto import MotoCase, upload_tree

FULL = "AWSDynamoDB/01752309000000-0f0f0f0f/"
INCR = "AWSDynamoDB/01752312600000-1e1e1e1e/"
PREFIX = "exports/"


def img(user, act, v):
    return {"UserId": {"S": user}, "ActivityId": {"S": act}, "V": {"N": str(v)}}


def keys(user, act):
    return {"UserId": {"S": user}, "ActivityId": {"S": act}}


def seed(ev, ts, user, act, old=None, new=None):
    r = {"timestamp": ts, "eventName": ev, "userId": user, "activityId": act,
         "awsRegion": "us-east-1", "eventSource": "aws:dynamodb"}
    if old is not None:
        r["oldImage"] = old
    if new is not None:
        r["newImage"] = new
    return r


def micros(iso):
    """2025-07-12T09:15:00 (UTC) in microseconds, as an export's N value."""
    import datetime
    t = datetime.datetime.fromisoformat(iso).replace(tzinfo=datetime.timezone.utc)
    return {"N": str(int(t.timestamp()) * 1000000 + t.microsecond)}


class ExportTest(Case):
    def export(self, root, summary, files):
        """Writes one export: data files (name -> list of line objects), the
        manifests as AWS lays them out, and returns nothing."""
        base = PREFIX + root
        self.write(base + "_started", b"")
        entries, total = [], 0
        for name, lines in files.items():
            raw = gzip.compress("".join(json.dumps(l) + "\n" for l in lines).encode())
            key = base + "data/" + name
            self.write(key, raw)
            entries.append({"itemCount": len(lines), "md5Checksum":
                            base64.b64encode(hashlib.md5(raw).digest()).decode(),
                            "etag": hashlib.md5(raw).hexdigest(),
                            "dataFileS3Key": "p/" + root + "data/" + name})
            total += len(lines)
        summary = dict(summary)
        summary.setdefault("itemCount", total)
        summary.update({"version": "2023-08-01", "s3Bucket": "b", "s3Prefix": "p",
                        "s3SseAlgorithm": "AES256", "s3SseKmsKeyId": None,
                        "manifestFilesS3Key": "p/" + root + "manifest-files.json",
                        "billedSizeBytes": 0, "outputFormat": "DYNAMODB_JSON",
                        "tableArn": "arn:aws:dynamodb:us-east-1:111122223333:table/T",
                        "tableId": "t", "startTime": "2025-07-12T08:30:00.000Z",
                        "endTime": "2025-07-12T08:36:00.000Z"})
        s = json.dumps(summary).encode()
        m = "".join(json.dumps(e) + "\n" for e in entries).encode()
        self.write(base + "manifest-summary.json", s)
        self.write(base + "manifest-summary.md5", base64.b64encode(hashlib.md5(s).digest()))
        self.write(base + "manifest-files.json", m)
        self.write(base + "manifest-files.md5", base64.b64encode(hashlib.md5(m).digest()))

    def log(self, hour, user, act, rec):
        self.write(f"audit-logs/2025/07/12/{hour}/{user}-{act}.json", json.dumps(rec))

    def full_export(self, items=None):
        items = items or [img("u1", "a1", 1), img("u2", "a2", 5)]
        self.export(FULL, {"exportType": "FULL_EXPORT",
                           "exportTime": "2025-07-12T08:30:00.000Z"},
                    {"p0.json.gz": [{"Item": i} for i in items], "p1.json.gz": []})

    def incremental_export(self, lines, **extra):
        summary = {"exportType": "INCREMENTAL_EXPORT", "outputView": "NEW_AND_OLD_IMAGES",
                   "exportFromTime": "2025-07-12T09:00:00.000Z",
                   "exportToTime": "2025-07-12T10:00:00.000Z"}
        summary.update(extra)
        self.export(INCR, summary, {"i0.json.gz": lines})

    def clean_tree(self):
        # u1 and u2 are in the export at 08:30; the log changes them after.
        self.full_export()
        self.log("08", "u1", "a1", seed("MODIFY", "2025-07-12T08:40:00", "u1", "a1",
                                        img("u1", "a1", 1), img("u1", "a1", 2)))
        self.log("08", "u2", "a2", seed("MODIFY", "2025-07-12T08:45:00", "u2", "a2",
                                        img("u2", "a2", 5), img("u2", "a2", 6)))
        self.incremental_export([
            {"Metadata": {"WriteTimestampMicros": micros("2025-07-12T09:15:00")},
             "Keys": keys("u1", "a1"), "OldImage": img("u1", "a1", 2),
             "NewImage": img("u1", "a1", 3)},
            {"Metadata": {"WriteTimestampMicros": micros("2025-07-12T09:20:00.000123")},
             "Keys": keys("u3", "a3"), "NewImage": img("u3", "a3", 1)},
        ])

    def kinds(self, rep):
        return sorted(a["kind"] for a in rep["anomalies"])

    def test_full_and_incremental_clean(self):
        """States are known states: no UNKNOWN_PRIOR for the items the full
        export holds; metadata files are no findings; every record counted."""
        self.clean_tree()
        status, rep, err = verify_json(self.dir)
        self.assertNoCrash(status, err)
        self.assertEqual(self.kinds(rep), [], err)
        self.assertEqual(status, 0, err)
        # 2 states + 2 log changes + 2 incremental lines.
        self.assertEqual(rep["summary"]["valid"], 6)
        self.assertEqual(rep["summary"]["states"], 2)
        # Two logs and three data files (one empty): no metadata file.
        self.assertEqual(rep["summary"]["objects"], 5)

    def test_full_and_incremental_in_a_tar_gz(self):
        self.clean_tree()
        tgz = os.path.join(self.dir, "all.tar.gz")
        with tarfile.open(tgz, "w:gz") as t:
            # Data files before the manifests, as a plain `tar` may order them.
            names = []
            for d, _, fs in os.walk(self.dir):
                for f in fs:
                    p = os.path.join(d, f)
                    if p != tgz:
                        names.append(os.path.relpath(p, self.dir))
            names.sort(key=lambda n: ("manifest" in n, n))
            for n in names:
                t.add(os.path.join(self.dir, n), arcname=n)
        status, rep, err = verify_json(tgz)
        self.assertNoCrash(status, err)
        self.assertEqual(self.kinds(rep), [], err)
        self.assertEqual(rep["summary"]["valid"], 6)

    def test_gaps_around_the_export(self):
        """A change whose old image is not the export's state, and a log
        state before the export that the export contradicts, are GAPs."""
        self.full_export([img("u1", "a1", 1), img("u2", "a2", 5), img("u3", "a3", 7)])
        self.log("08", "u2", "a2", seed("MODIFY", "2025-07-12T08:50:00", "u2", "a2",
                                        img("u2", "a2", 4), img("u2", "a2", 6)))
        self.log("08", "u3", "a3", seed("INSERT", "2025-07-12T08:10:00", "u3", "a3",
                                        None, img("u3", "a3", 6)))
        status, rep, err = verify_json(self.dir)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        self.assertEqual(self.kinds(rep), ["GAP", "GAP"], err)
        details = " ".join(a["detail"] for a in rep["anomalies"])
        self.assertIn("missing before the export", details)

    def test_missing_data_file_and_mismatches(self):
        """A data file the manifest lists but the export lacks is UNREADABLE
        (not read); a line outside the incremental window, a summary count
        other than the files' are EXPORT_MISMATCH."""
        self.clean_tree()
        os.remove(os.path.join(self.dir, PREFIX + FULL + "data/p0.json.gz"))
        status, rep, err = verify_json(self.dir)
        self.assertNoCrash(status, err)
        self.assertNotEqual(status, 0)
        unread = [a for a in rep["anomalies"] if a["kind"] == "UNREADABLE"]
        self.assertEqual(len(unread), 1, rep["anomalies"])
        self.assertIn("p0.json.gz", json.dumps(unread[0]))
        self.assertIn("missing", unread[0]["detail"])

        self.tmp.cleanup()
        os.makedirs(self.dir)
        self.full_export()
        self.incremental_export([
            {"Metadata": {"WriteTimestampMicros": micros("2025-07-12T10:00:00")},
             "Keys": keys("u1", "a1"), "OldImage": img("u1", "a1", 1),
             "NewImage": img("u1", "a1", 3)}], itemCount=5)
        status, rep, err = verify_json(self.dir)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        self.assertEqual(self.kinds(rep), ["EXPORT_MISMATCH", "EXPORT_MISMATCH"], err)
        details = " ".join(a["detail"] for a in rep["anomalies"])
        self.assertIn("outside its export's window", details)
        self.assertIn("counts 5 items", details)

    def test_altered_data_file(self):
        """A data file whose bytes are not those manifest-files.json's
        md5Checksum names (same item count, one value changed) is
        EXPORT_MISMATCH, in a directory and in a tar.gz."""
        self.full_export()
        key = PREFIX + FULL + "data/p0.json.gz"
        altered = [{"Item": img("u1", "a1", 1)}, {"Item": img("u2", "a2", 9)}]
        self.write(key, gzip.compress("".join(json.dumps(l) + "\n" for l in altered).encode()))
        status, rep, err = verify_json(self.dir)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        self.assertEqual(self.kinds(rep), ["EXPORT_MISMATCH"], err)
        self.assertIn("md5Checksum", rep["anomalies"][0]["detail"])
        tgz = os.path.join(self.dir, "e.tgz")
        with tarfile.open(tgz, "w:gz") as t:
            t.add(os.path.join(self.dir, "exports"), arcname="exports")
        status, rep, err = verify_json(tgz)
        self.assertNoCrash(status, err)
        self.assertEqual(self.kinds(rep), ["EXPORT_MISMATCH"], err)

    def test_bare_integer_timestamp_refused(self):
        """An export line's WriteTimestampMicros is a DynamoDB N value; the
        bare integer no export writes is INVALID_RECORD, named."""
        self.full_export()
        self.incremental_export([
            {"Metadata": {"WriteTimestampMicros": 1752311700000000},
             "Keys": keys("u1", "a1"), "OldImage": img("u1", "a1", 1),
             "NewImage": img("u1", "a1", 3)}])
        status, rep, err = verify_json(self.dir)
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        self.assertEqual(self.kinds(rep), ["INVALID_RECORD"], err)
        self.assertIn('{"N":', rep["anomalies"][0]["detail"])

    def test_lambda_docs_event_without_times(self):
        """The Lambda documentation's example DynamoDB event has no
        ApproximateCreationDateTime: read, ordered by SequenceNumber (the
        records are written out of order here), clean."""
        def rec(i, ev, seq, old=None, new=None):
            db = {"Keys": {"Id": {"N": "101"}}, "SequenceNumber": seq, "SizeBytes": 26,
                  "StreamViewType": "NEW_AND_OLD_IMAGES"}
            if old:
                db["OldImage"] = old
            if new:
                db["NewImage"] = new
            return {"eventID": str(i), "eventVersion": "1.0", "dynamodb": db,
                    "awsRegion": "us-west-2", "eventName": ev, "eventSource": "aws:dynamodb",
                    "eventSourceARN": "arn:aws:dynamodb:us-west-2:111122223333:table/"
                                      "TestTable/stream/2015-05-11T21:21:33.291"}
        a = {"Message": {"S": "New item!"}, "Id": {"N": "101"}}
        b = {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}}
        event = {"Records": [rec(3, "REMOVE", "333", old=b), rec(1, "INSERT", "111", new=a),
                             rec(2, "MODIFY", "222", old=a, new=b)]}
        path = self.write("event.json", json.dumps(event))
        status, rep, err = verify_json(path)
        self.assertNoCrash(status, err)
        self.assertEqual(self.kinds(rep), [], err)
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["summary"]["valid"], 3)
        status, out, err = run("history", path, "--key", "Id=N:101", "--format", "json")
        self.assertNoCrash(status, err)
        # Replayed in SequenceNumber order, without a made-up time.
        out = os.path.join(self.dir, "sent.ndjson")
        status, _, err = run("replay", path, "--target", "file:" + out, "--key-schema", "Id:HASH")
        self.assertEqual(status, 0, err)
        with open(out) as f:
            sent = [r for line in f for r in json.loads(line)["Records"]]
        self.assertEqual([r["eventName"] for r in sent], ["INSERT", "MODIFY", "REMOVE"])
        self.assertTrue(all("ApproximateCreationDateTime" not in r["dynamodb"] for r in sent))


class S3ExportTest(MotoCase, ExportTest):
    """The same exports read from S3, where a listing comes in byte order
    (data/ before the manifests): the manifests are read first all the same,
    metadata files are no objects, a listed data file the bucket lacks is
    UNREADABLE, and the report equals the directory's."""

    def upload(self, bucket):
        self.s3.create_bucket(Bucket=bucket)
        upload_tree(self.s3, bucket, self.dir, "")

    def remote(self, bucket, prefix, *args):
        return verify_json(f"s3://{bucket}/{prefix}", "--endpoint-url", self.moto.url,
                           "--settle", "0", *args)

    def test_exports_in_s3_as_in_a_directory(self):
        self.clean_tree()
        self.upload("exports-clean")
        # Without the audit log between them, the incremental export's first
        # change of u1 does not follow the full export's state: one GAP, the
        # same from the directory and from the bucket.
        status, local, err = verify_json(os.path.join(self.dir, "exports"), "--settle", "0")
        self.assertEqual(status, 1, err)
        self.assertEqual([a["kind"] for a in local["anomalies"]], ["GAP"])
        status, rep, err = self.remote("exports-clean", "exports/")
        self.assertNoCrash(status, err)
        kinds = [a["kind"] for a in rep["anomalies"] if a["kind"] != "UNVERSIONED_BUCKET"]
        self.assertEqual(kinds, ["GAP"], err)
        for k in ("valid", "invalid", "states", "records"):
            self.assertEqual(rep["summary"][k], local["summary"][k], k)
        self.assertEqual(rep["summary"]["states"], 2)
        # Only the data files are objects (the empty one too); with a range
        # the export is listed whole, not by hour, and its lines are ranged.
        self.assertEqual(rep["summary"]["objects"], 3)
        status, rep, err = self.remote("exports-clean", PREFIX + FULL, "--from", "2025-07-12T08:00Z",
                                       "--to", "2025-07-12T09:00Z")
        self.assertNoCrash(status, err)
        self.assertEqual(rep["summary"]["states"], 2, err)

    def test_missing_and_altered_data_files_in_s3(self):
        self.clean_tree()
        os.remove(os.path.join(self.dir, PREFIX + FULL + "data/p0.json.gz"))
        self.write(PREFIX + INCR + "data/i0.json.gz", gzip.compress(b"{}\n"))
        self.upload("exports-damaged")
        status, rep, err = self.remote("exports-damaged", "exports/")
        self.assertNoCrash(status, err)
        self.assertEqual(status, 1, err)
        kinds = sorted(a["kind"] for a in rep["anomalies"]
                       if a["kind"] not in ("UNVERSIONED_BUCKET", "UNKNOWN_PRIOR"))
        self.assertIn("UNREADABLE", kinds, rep["anomalies"])
        self.assertIn("EXPORT_MISMATCH", kinds, rep["anomalies"])
        missing = [a for a in rep["anomalies"] if a["kind"] == "UNREADABLE"]
        self.assertIn("p0.json.gz", json.dumps(missing))
        self.assertNotIn("manifest-summary.json", json.dumps(rep["anomalies"]))

    # The directory-only cases are not repeated against S3.
    test_full_and_incremental_clean = None
    test_full_and_incremental_in_a_tar_gz = None
    test_gaps_around_the_export = None
    test_missing_data_file_and_mismatches = None
    test_altered_data_file = None
    test_bare_integer_timestamp_refused = None
    test_lambda_docs_event_without_times = None


if __name__ == "__main__":
    main()
