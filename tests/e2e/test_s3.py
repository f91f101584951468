"""`ddbaudit verify s3://...` against moto_server: the same report as the same
objects in a local directory; pagination past 1,000 keys and of version
listings; keys that need encoding; gzip objects; range pruning; injected
faults, corrupted bodies, the size cap, TLS verification; errors naming the
credential provider."""
import json
import os
import sys
from harness import Case, ROOT, main, run, verify_json
from fault_proxy import FaultProxy, Rule
from moto import Moto, MotoCase, require_moto, upload_tree

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")


class S3Test(MotoCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3.create_bucket(Bucket="audit")
        cls.count = upload_tree(cls.s3, "audit", SAMPLES, "audit-logs/")

    def proxied(self):
        return ["--endpoint-url", self.proxy.url, "--settle", "0"]

    def s3args(self):
        return ["--endpoint-url", self.moto.url, "--settle", "0"]

    def test_same_report_as_the_directory(self):
        status, local, err = verify_json(SAMPLES, "--settle", "0")
        self.assertEqual(status, 1, err)
        status, remote, err = verify_json("s3://audit/audit-logs/", *self.s3args())
        self.assertEqual(status, 1, err)
        self.assertEqual(remote["summary"]["objects"], self.count)
        # The bucket is not versioned: said once, as a warning, on top of
        # exactly what the directory gives.
        found = [a for a in remote["anomalies"] if a["kind"] == "UNVERSIONED_BUCKET"]
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["severity"], "warning")
        self.assertIn("versioning off", found[0]["detail"])
        self.assertEqual(remote["run"]["bucket"]["versioning"], "Disabled")
        self.assertEqual(remote["run"]["bucket"]["object_lock"], "Disabled")
        del remote["summary"]["by_kind"]["UNVERSIONED_BUCKET"]
        remote["summary"]["anomalies"]["warning"] -= 1
        for k in ("objects", "records", "valid", "invalid", "items", "duplicates", "events",
                  "by_kind", "anomalies"):
            self.assertEqual(remote["summary"][k], local["summary"][k], k)
        strip = lambda rep: sorted((a["kind"], a["object"]["key"], a["item"] and json.dumps(a["item"]),
                                    a["detail"])
                                   for a in rep["anomalies"] if a["kind"] != "UNVERSIONED_BUCKET")
        self.assertEqual(strip(remote), strip(local))
        self.assertNotIn("bucket", local["run"])
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

    def test_range_lists_only_its_hour_prefixes(self):
        """What was listed, from the server's side: the range's hours and one
        hour of slack each side, each on its own, never the whole bucket."""
        status, rep, err = verify_json("s3://audit/audit-logs/", *self.proxied(),
                                       "--from", "2025-07-12T11:00:00Z",
                                       "--to", "2025-07-12T12:00:00Z")
        self.assertIn(status, (0, 1), err)
        listed = self.proxy.listings("audit")
        self.assertEqual(sorted(listed), [f"audit-logs/2025/07/12/{h}/" for h in (10, 11, 12)])
        gets = {p for m, p, q in self.proxy.log if m == "GET" and not q}
        self.assertEqual(len(gets), rep["summary"]["objects"])
        for p in gets:
            self.assertRegex(p, r"^/audit/audit-logs/2025/07/12/1[012]/")

    def test_ls_lists_without_fetching(self):
        """ls is aws s3 ls: one line per object, from the listing alone."""
        status, out, err = run("ls", "s3://audit/audit-logs/", "--endpoint-url", self.proxy.url)
        self.assertEqual(status, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), self.count)
        self.assertTrue(all(" audit-logs/2025/07/12/" in line for line in lines))
        object_gets = [p for m, p, q in self.proxy.log if m == "GET" and not q]
        self.assertEqual(object_gets, [])

    def test_recovers_from_injected_faults(self):
        """503 SlowDown, 500 and dropped connections on listings and on one
        GET in three: retried, and the report is the same as without them."""
        status, clean, err = verify_json("s3://audit/audit-logs/", *self.proxied())
        self.assertEqual(status, 1, err)
        self.proxy.reset()
        self.proxy.rules += [Rule("GET", "list-type=2", 503, 2),
                             Rule("GET", "/audit/audit-logs/", 503, 1, every=3),
                             Rule("GET", "/audit/audit-logs/", 500, 1, every=3),
                             Rule("GET", "/audit/audit-logs/", None, 1, every=5)]
        status, rep, err = verify_json("s3://audit/audit-logs/", *self.proxied())
        self.assertEqual(status, 1, err)
        self.assertGreater(self.proxy.injected, 50)
        for k in ("objects", "records", "valid", "invalid", "items", "events", "by_kind"):
            self.assertEqual(rep["summary"][k], clean["summary"][k], k)
        self.assertEqual(rep["run"]["complete"], True)

    def test_body_that_disagrees_with_its_etag(self):
        """Bodies changed in transit (one byte, the ETag left alone) are
        UNREADABLE objects, named, and the rest of the run goes on."""
        hour = os.path.join(SAMPLES, "2025", "07", "12", "10")
        changed = sum(len(f) for _, _, f in os.walk(hour))
        self.proxy.rules.append(Rule("GET", "/audit/audit-logs/2025/07/12/10/", "corrupt", 100))
        status, rep, err = verify_json("s3://audit/audit-logs/", *self.proxied())
        self.assertEqual(status, 1, err)
        bad = [a for a in rep["anomalies"] if "MD5 differs from its ETag" in a["detail"]]
        self.assertEqual(len(bad), changed)
        for a in bad:
            self.assertEqual(a["kind"], "UNREADABLE")
            self.assertIn("/2025/07/12/10/", a["object"]["key"])
        self.assertEqual(rep["summary"]["objects"], self.count)

    def test_objects_over_the_size_cap_are_reported_not_read(self):
        sizes = sorted(os.path.getsize(os.path.join(d, f))
                       for d, _, files in os.walk(SAMPLES) for f in files)
        cap = sizes[len(sizes) // 2]
        over = sum(n > cap for n in sizes)
        self.assertGreater(over, 0)
        status, rep, err = verify_json("s3://audit/audit-logs/", *self.proxied(),
                                       "--max-object-bytes", str(cap))
        self.assertIn(status, (0, 1), err)
        big = [a for a in rep["anomalies"] if "--max-object-bytes" in a["detail"]]
        self.assertEqual(len(big), over)
        self.assertTrue(all(a["kind"] == "UNREADABLE" for a in big))
        # The big ones were never fetched (GAP diffs fetch some objects twice).
        gets = {p for m, p, q in self.proxy.log if m == "GET" and not q}
        self.assertEqual(len(gets), self.count - over)
        for a in big:
            self.assertNotIn("/audit/" + a["object"]["key"], gets)
        self.assertEqual(rep["summary"]["objects"], self.count)

    def test_tls_verification(self):
        """HTTPS to a server with a self-signed certificate: refused by
        default, accepted with --ca-bundle or AWS_CA_BUNDLE naming it, or with
        --no-verify-ssl."""
        import shutil
        import ssl
        import subprocess
        if not shutil.which("openssl"):
            print("SKIPPED: test_tls_verification needs the openssl command", file=sys.stderr)
            self.fail("openssl not found")
        cert, key = self.path("cert.pem"), self.path("key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        proxy = FaultProxy(self.moto.url, tls=ctx)
        try:
            args = ("s3://audit/audit-logs/", "--endpoint-url", proxy.url, "--settle", "0",
                    "--from", "2025-07-12T10:00:00Z", "--to", "2025-07-12T11:00:00Z")
            status, _, err = verify_json(*args)
            self.assertEqual(status, 3, err)
            self.assertIn("certificate", err)
            self.assertEqual(proxy.log, [])  # nothing was sent over the unverified connection
            status, rep, err = verify_json(*args, "--ca-bundle", cert)
            self.assertIn(status, (0, 1), err)
            self.assertGreater(rep["summary"]["objects"], 0)
            os.environ["AWS_CA_BUNDLE"] = cert
            try:
                status, rep2, err = verify_json(*args)
            finally:
                del os.environ["AWS_CA_BUNDLE"]
            self.assertIn(status, (0, 1), err)
            self.assertEqual(rep2["summary"], rep["summary"])
            status, rep3, err = verify_json(*args, "--no-verify-ssl")
            self.assertIn(status, (0, 1), err)
            self.assertEqual(rep3["summary"], rep["summary"])
        finally:
            proxy.stop()

    def test_persistent_failure_is_a_runtime_error(self):
        """An object that fails every attempt ends the run with exit 3 after
        the retries, naming the object and the answer."""
        self.proxy.rules.append(Rule("GET", "/audit/audit-logs/2025/07/12/09/", 500, 100))
        status, out, err = run("verify", "s3://audit/audit-logs/", *self.proxied(),
                               "--format", "json")
        self.assertEqual(status, 3, err)
        self.assertIn("audit-logs/2025/07/12/09/", err)
        self.assertIn("HTTP 500 InternalError", err)
        failed = [p for m, p, q in self.proxy.log if "/2025/07/12/09/" in p]
        self.assertGreaterEqual(len(failed), 5)  # the first attempt and four retries

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
            extra = {}
            if i % 100 == 0:  # a gzip object
                body, key = gzip.compress(body), key + ".gz"
            elif i % 100 == 50:  # stored compressed, served with Content-Encoding: gzip
                body, extra = gzip.compress(body), {"ContentEncoding": "gzip"}
            self.s3.put_object(Bucket="many", Key=key, Body=body, **extra)
        status, rep, err = verify_json("s3://many/audit-logs/", *self.s3args())
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["summary"]["objects"], 1100)
        self.assertEqual(rep["summary"]["valid"], 1100)
        self.assertEqual(rep["summary"]["items"], 1100)

    def test_versions_recover_overwritten_changes(self):
        """A versioned bucket where the writer put several changes of one item
        under one hour's key: without --versions the lost changes are GAPs
        with the overwrite hint; with --versions every change is read, no GAP,
        each overwritten key is OVERWRITTEN, and a deleted key is reported."""
        self.s3.create_bucket(Bucket="ver", ObjectLockEnabledForBucket=True)
        self.s3.put_object_lock_configuration(
            Bucket="ver", ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
        changes, keys = 0, {}
        for u in range(3):
            user, act, old = f"u{u}", "a", None
            # Four changes an hour over three hours: three of each four are
            # overwritten under the hour's key.
            for n in range(12):
                hour, minute = 8 + n // 4, (n % 4) * 10 + u
                new = {"UserId": {"S": user}, "ActivityId": {"S": act}, "Version": {"N": str(n + 1)}}
                rec = {"timestamp": f"2025-07-12T{hour:02d}:{minute:02d}:00.000001",
                       "eventName": "INSERT" if old is None else "MODIFY", "userId": user,
                       "activityId": act, "awsRegion": "us-east-1",
                       "eventSource": "aws:dynamodb", "newImage": new}
                if old is not None:
                    rec["oldImage"] = old
                key = f"audit-logs/2025/07/12/{hour:02d}/{user}-{act}.json"
                self.s3.put_object(Bucket="ver", Key=key, Body=json.dumps(rec).encode())
                keys[key] = keys.get(key, 0) + 1
                old, changes = new, changes + 1
        # One key deleted: its versions stay behind a delete marker.
        deleted = "audit-logs/2025/07/12/09/u1-a.json"
        self.s3.delete_object(Bucket="ver", Key=deleted)

        status, rep, err = verify_json("s3://ver/audit-logs/", *self.s3args())
        self.assertEqual(status, 1, err)
        gaps = [a for a in rep["anomalies"] if a["kind"] == "GAP"]
        self.assertTrue(gaps)
        for g in gaps:
            self.assertIn("changes lost to an overwrite; enable bucket versioning and use "
                          "--versions", g["detail"])
        self.assertLess(sum(rep["summary"]["events"].values()), changes)
        self.assertEqual(rep["run"]["bucket"]["versioning"], "Enabled")
        self.assertEqual(rep["run"]["bucket"]["object_lock"], "Enabled")
        self.assertEqual(rep["run"]["bucket"]["default_retention"], "GOVERNANCE 30 days")
        self.assertNotIn("UNVERSIONED_BUCKET", rep["summary"]["by_kind"])

        out = os.path.join(self.dir, "rep")
        os.makedirs(out)
        status, _, err = run("verify", "s3://ver/audit-logs/", "--versions", *self.s3args(),
                             "--report", out)
        self.assertEqual(status, 0, err)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        s = rep["summary"]
        self.assertEqual(sum(s["events"].values()), changes)
        self.assertEqual(s["objects"], changes)
        for kind in ("GAP", "DOUBLE_INSERT", "MODIFY_AFTER_REMOVE", "UNREADABLE"):
            self.assertNotIn(kind, s["by_kind"])
        over = [a for a in rep["anomalies"] if a["kind"] == "OVERWRITTEN"]
        written = {k for k, n in keys.items() if n > 1}
        self.assertEqual({a["object"]["key"] for a in over if "written" in a["detail"]}, written)
        dels = [a for a in over if "deleted" in a["detail"]]
        self.assertEqual([a["object"]["key"] for a in dels], [deleted])
        self.assertTrue(dels[0]["object"]["version"])
        self.assertEqual(rep["run"]["bucket"]["delete_markers"], 1)
        self.assertEqual(rep["run"]["bucket"]["overwritten_keys"], len(written))
        # The manifest names every version read, with its ETag, size and time.
        with open(os.path.join(out, "manifest.ndjson")) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(len(lines), changes)
        self.assertEqual(len({(m["key"], m["versionId"]) for m in lines}), changes)
        for m in lines:
            self.assertTrue(m["etag"] and m["size"] > 0 and m["lastModified"])

    def test_errors_name_the_provider(self):
        status, _, err = run("verify", "s3://no-such-bucket/x/", *self.s3args())
        self.assertEqual(status, 3, err)
        self.assertIn("NoSuchBucket", err)
        self.assertIn("credentials from environment", err)
        self.assertNotIn("testing", err)  # the secret (and the key id, the same here)


# Item ids that need encoding in a URL, a query and a listing's XML; '/' is
# left out because it would make another level of the key layout.
ODD_USERS = ["plain", "with space", "plus+sign", "eq=sign", "pct%41", "tilde~", "semi;colon",
             'quote"d', "apos'", "amp&lt;", "ünïcödé", "日本", "a*b(c)!"]


def chained(user, hour, n, old):
    new = {"UserId": {"S": user}, "ActivityId": {"S": "a"}, "Version": {"N": str(n)}}
    rec = {"timestamp": f"2025-07-12T{hour:02d}:{n:02d}:00.000001",
           "eventName": "INSERT" if old is None else "MODIFY", "userId": user,
           "activityId": "a", "awsRegion": "us-east-1", "eventSource": "aws:dynamodb",
           "newImage": new}
    if old is not None:
        rec["oldImage"] = old
    return rec, new


class S3SmallPagesTest(MotoCase):
    """moto answering seven keys a listing page, so that every listing is
    paginated and version listings break in the middle of a key's versions;
    keys with characters that must be encoded, in the request path, in the
    markers sent back and in the listing's XML."""
    MOTO_ENV = {"MOTO_S3_DEFAULT_MAX_KEYS": "7"}

    def verify(self, *args):
        out = os.path.join(self.dir, "rep")
        status, _, err = run("verify", *args, "--endpoint-url", self.proxy.url, "--settle", "0",
                             "--report", out)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        with open(os.path.join(out, "manifest.ndjson")) as f:
            manifest = [json.loads(line) for line in f]
        return status, rep, manifest, err

    def test_odd_keys_over_many_pages(self):
        self.s3.create_bucket(Bucket="odd")
        keys = set()
        for user in ODD_USERS:
            old = None
            for hour in (8, 9):
                rec, old = chained(user, hour, hour - 7, old)
                key = f"audit-logs/2025/07/12/{hour:02d}/{user}-a.json"
                self.s3.put_object(Bucket="odd", Key=key, Body=json.dumps(rec).encode())
                keys.add(key)
        status, rep, manifest, err = self.verify("s3://odd/audit-logs/")
        self.assertEqual(status, 0, err)
        self.assertEqual({m["key"] for m in manifest}, keys)
        s = rep["summary"]
        self.assertEqual((s["objects"], s["valid"], s["items"]), (len(keys), len(keys), len(ODD_USERS)))
        self.assertEqual(set(s["by_kind"]), {"UNVERSIONED_BUCKET"})
        # Seven keys a page: every page after the first asked with the
        # continuation token of the one before.
        pages = [q for m, p, q in self.proxy.log if "list-type" in q]
        self.assertEqual(len(pages), (len(keys) + 6) // 7)
        self.assertEqual(sum("continuation-token" in q for q in pages), len(pages) - 1)

    def test_versions_paginated_inside_a_key(self):
        """Three versions of each key, seven versions a page: pages end in the
        middle of a key, and the next page starts from the key and version-id
        markers. Every version is read, oldest first, and no change is lost."""
        self.s3.create_bucket(Bucket="oddver")
        self.s3.put_bucket_versioning(Bucket="oddver",
                                      VersioningConfiguration={"Status": "Enabled"})
        versions = {}
        for user in ODD_USERS:
            old = None
            key = f"audit-logs/2025/07/12/08/{user}-a.json"
            for n in range(1, 4):
                rec, old = chained(user, 8, n, old)
                r = self.s3.put_object(Bucket="oddver", Key=key, Body=json.dumps(rec).encode())
                versions.setdefault(key, []).append(r["VersionId"])
        deleted = f"audit-logs/2025/07/12/08/{ODD_USERS[2]}-a.json"
        self.s3.delete_object(Bucket="oddver", Key=deleted)
        total = sum(len(v) for v in versions.values())

        status, rep, manifest, err = self.verify("s3://oddver/audit-logs/", "--versions")
        self.assertEqual(status, 0, err)
        s = rep["summary"]
        self.assertEqual(sum(s["events"].values()), total)
        for kind in ("GAP", "DOUBLE_INSERT", "UNREADABLE", "UNVERSIONED_BUCKET"):
            self.assertNotIn(kind, s["by_kind"])
        got = {}
        for m in manifest:
            got.setdefault(m["key"], []).append(m["versionId"])
        self.assertEqual({k: sorted(v) for k, v in got.items()},
                         {k: sorted(v) for k, v in versions.items()})
        self.assertEqual(rep["run"]["bucket"]["delete_markers"], 1)
        self.assertEqual(rep["run"]["bucket"]["overwritten_keys"], len(versions))
        pages = [q for m, p, q in self.proxy.log if "versions" in q]
        self.assertGreaterEqual(len(pages), (total + 1) // 7)
        marked = [q for q in pages if "version-id-marker" in q]
        self.assertEqual(len(marked), len(pages) - 1)
        for q in marked:  # markers decoded from the listing and sent back intact
            self.assertIn(q["key-marker"], versions)
        # The version GETs name the versions.
        gets = [q["versionId"] for m, p, q in self.proxy.log if m == "GET" and "versionId" in q]
        self.assertEqual(sorted(gets), sorted(v for vs in versions.values() for v in vs))


if __name__ == "__main__":
    main()
