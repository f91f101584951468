"""`ddbaudit verify s3://...` against moto_server: the same report as the same
objects in a local directory; pagination past 1,000 keys; gzip objects;
range pruning; errors naming the credential provider."""
import json
import os
from harness import Case, ROOT, main, run, verify_json
from moto import Moto, require_moto

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")


def upload_tree(s3, bucket, root, prefix):
    n = 0
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            key = prefix + os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as fh:
                s3.put_object(Bucket=bucket, Key=key, Body=fh.read())
            n += 1
    return n


class S3Test(Case):
    @classmethod
    def setUpClass(cls):
        require_moto()
        cls.moto = Moto()
        cls.s3 = cls.moto.client("s3")
        cls.s3.create_bucket(Bucket="audit")
        cls.count = upload_tree(cls.s3, "audit", SAMPLES, "audit-logs/")
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_REGION": "us-east-1"})
        os.environ.pop("AWS_PROFILE", None)

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def s3args(self):
        return ["--endpoint-url", self.moto.url, "--settle", "0"]

    def test_same_report_as_the_directory(self):
        status, local, err = verify_json(SAMPLES, "--settle", "0")
        self.assertEqual(status, 1, err)
        status, remote, err = verify_json("s3://audit/audit-logs/", *self.s3args())
        self.assertEqual(status, 1, err)
        self.assertEqual(remote["summary"]["objects"], self.count)
        for k in ("objects", "records", "valid", "invalid", "items", "duplicates", "events",
                  "by_kind", "anomalies"):
            self.assertEqual(remote["summary"][k], local["summary"][k], k)
        strip = lambda rep: sorted((a["kind"], a["object"]["key"], a["item"] and json.dumps(a["item"]))
                                   for a in rep["anomalies"])
        self.assertEqual(strip(remote), strip(local))
        # What was read is in the manifest: ETags and sizes from S3.
        obj = [a for a in remote["anomalies"] if a["kind"] == "GAP"][0]["object"]
        self.assertTrue(obj["etag"])

    def test_range_reads_fewer_objects(self):
        status, rep, err = verify_json("s3://audit/audit-logs/", *self.s3args(),
                                       "--from", "2025-07-12T11:00:00Z",
                                       "--to", "2025-07-12T12:00:00Z")
        self.assertIn(status, (0, 1), err)
        self.assertGreater(rep["summary"]["objects"], 0)
        self.assertLess(rep["summary"]["objects"], self.count)
        for h in rep["hours"]:
            self.assertIn(h["hour"][11:13], ("10", "11"))

    def test_pagination_and_gzip(self):
        import gzip
        self.s3.create_bucket(Bucket="many")
        rec = {"timestamp": "2025-07-12T08:00:00.000001", "eventName": "INSERT",
               "awsRegion": "us-east-1", "eventSource": "aws:dynamodb"}
        for i in range(1100):
            r = dict(rec, userId=f"u{i:04d}", activityId="a",
                     newImage={"UserId": {"S": f"u{i:04d}"}, "ActivityId": {"S": "a"}})
            body = json.dumps(r).encode()
            key = f"audit-logs/2025/07/12/08/u{i:04d}-a.json"
            if i % 100 == 0:
                body, key = gzip.compress(body), key + ".gz"
            self.s3.put_object(Bucket="many", Key=key, Body=body)
        status, rep, err = verify_json("s3://many/audit-logs/", *self.s3args())
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["summary"]["objects"], 1100)
        self.assertEqual(rep["summary"]["valid"], 1100)
        self.assertEqual(rep["summary"]["items"], 1100)

    def test_errors_name_the_provider(self):
        status, _, err = run("verify", "s3://no-such-bucket/x/", *self.s3args())
        self.assertEqual(status, 3, err)
        self.assertIn("NoSuchBucket", err)
        self.assertIn("credentials from environment", err)
        self.assertNotIn("testing", err.replace("testing", "", 0) if False else err.split("credentials")[0])


if __name__ == "__main__":
    main()
