"""A bucket in another region than the one configured: S3 answers a request
signed for the wrong region with 301 PermanentRedirect and
x-amz-bucket-region (or 400 AuthorizationHeaderMalformed naming the region
in its body). ddbaudit follows it once, re-signed for the bucket's region,
and signs every later request of the run for that region at once. A local
server in front of moto plays S3's part: it answers every request whose
signature scope names another region than the bucket's."""
import json
import os
import re
import subprocess
from cred_server import RecordingProxy
from harness import BINARY, Case, main
from moto import Moto, put_inserts, require_moto

BUCKET = "far-away"
HOME_REGION = "eu-west-1"


def scope_region(headers):
    m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request",
                  headers.get("Authorization", ""))
    return m.group(1) if m else None


class RegionTest(Case):
    @classmethod
    def setUpClass(cls):
        require_moto()
        cls.moto = Moto()
        s3 = cls.moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        put_inserts(s3, BUCKET, "audit-logs/", 4, region=HOME_REGION)

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def setUp(self):
        super().setUp()
        self.proxy = RecordingProxy(self.moto.url)
        empty = self.write("empty", "")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update({"AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_CONFIG_FILE": empty,
                         "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
                         "AWS_ACCESS_KEY_ID": "AKIDREGION", "AWS_SECRET_ACCESS_KEY": "s"})

    def tearDown(self):
        self.proxy.stop()
        super().tearDown()

    def wrong_region(self, style):
        def answer(method, path, headers):
            if scope_region(headers) == HOME_REGION:
                return None
            if style == 301:
                body = (b"<?xml version=\"1.0\"?><Error><Code>PermanentRedirect</Code>"
                        b"<Message>The bucket you are attempting to access must be addressed "
                        b"using the specified endpoint.</Message></Error>")
                return 301, {"x-amz-bucket-region": HOME_REGION,
                             "Content-Type": "application/xml"}, body
            body = (b"<?xml version=\"1.0\"?><Error><Code>AuthorizationHeaderMalformed</Code>"
                    b"<Message>the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message>"
                    b"<Region>" + HOME_REGION.encode() + b"</Region></Error>")
            return 400, {"Content-Type": "application/xml"}, body
        self.proxy.intercept = answer

    def run_verify(self):
        p = subprocess.run([BINARY, "verify", f"s3://{BUCKET}/audit-logs/", "--format", "json",
                            "--settle", "0", "--endpoint-url", self.proxy.url, "-v"],
                           env=self.env, capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace")

    def s3_log(self):
        """The proxy's log without the report's STS GetCallerIdentity (sent to
        the same endpoint after the audit, signed for STS)."""
        return [e for e in self.proxy.log if b"Action=GetCallerIdentity" not in (e[3] or b"")]

    def check_followed(self):
        status, out, err = self.run_verify()
        self.assertEqual(status, 0, err)
        self.assertEqual(json.loads(out)["summary"]["objects"], 4)
        # -v says so.
        self.assertIn(f"s3://{BUCKET} is in {HOME_REGION}, not us-east-1", err)
        regions = [(m, p.split("?")[0], scope_region(h)) for m, p, h, b in self.s3_log()]
        wrong = [r for r in regions if r[2] != HOME_REGION]
        # Only the first requests, sent together before any answer came,
        # went to the wrong region: the listing and the two bucket settings.
        self.assertTrue(1 <= len(wrong) <= 3, wrong)
        self.assertTrue(all(p == f"/{BUCKET}" for m, p, r in wrong), wrong)
        # Each was followed once, and every object was fetched signed for
        # the bucket's region at once.
        gets = [r for r in regions if r[1].startswith(f"/{BUCKET}/audit-logs/")]
        self.assertEqual(len(gets), 4, regions)
        self.assertTrue(all(r[2] == HOME_REGION for r in gets), gets)
        self.assertEqual(len(regions), len(wrong) + len([r for r in regions
                                                         if r[2] == HOME_REGION]))

    def test_301_with_bucket_region(self):
        self.wrong_region(301)
        self.check_followed()

    def test_400_authorization_header_malformed(self):
        self.wrong_region(400)
        self.check_followed()

    def test_followed_only_once(self):
        """A server that keeps saying the bucket is elsewhere is reported,
        not chased: the answer names the region it gave."""
        def answer(method, path, headers):
            other = "ap-south-1" if scope_region(headers) == HOME_REGION else HOME_REGION
            return 301, {"x-amz-bucket-region": other}, b""
        self.proxy.intercept = answer
        status, _, err = self.run_verify()
        self.assertEqual(status, 3, err)
        self.assertIn("HTTP 301", err)
        self.assertIn("the bucket is in ap-south-1", err)
        listings = [1 for m, p, h, b in self.proxy.log if "list-type" in p]
        self.assertEqual(len(listings), 2)

    def test_right_region_is_not_redirected(self):
        self.wrong_region(301)
        self.env["AWS_REGION"] = HOME_REGION
        status, out, err = self.run_verify()
        self.assertEqual(status, 0, err)
        self.assertTrue(all(scope_region(h) == HOME_REGION for m, p, h, b in self.s3_log()))


if __name__ == "__main__":
    main()
