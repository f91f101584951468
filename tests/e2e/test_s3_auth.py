"""Signatures checked by the server: moto_server with
INITIAL_NO_AUTH_ACTION_COUNT verifies SigV4 against the IAM access keys it
knows. The right key reads the bucket; a wrong secret is exit 3 with a
message naming the provider that supplied the key; and no secret or session
token ever appears in output, messages or reports, at any verbosity.

moto's own check mishandles a '/' in query values (boto3's signed
ListObjectsV2 with Prefix="audit-logs/" fails there too), so these objects
sit at the bucket's root and are listed with an empty prefix; awkward keys
are covered by the botocore vectors and by moto without signature checks."""
import json
import os
import subprocess
from harness import BINARY, Case, main
from moto import Moto, put_inserts, require_moto

BUCKET = "signed"
# IAM calls made before signatures are checked: user, policy, attachment, key.
FREE_CALLS = 4


class AuthTest(Case):
    @classmethod
    def setUpClass(cls):
        require_moto()
        cls.moto = Moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(FREE_CALLS)})
        iam = cls.moto.client("iam")
        iam.create_user(UserName="auditor")
        arn = iam.create_policy(PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="auditor", PolicyArn=arn)
        key = iam.create_access_key(UserName="auditor")["AccessKey"]
        cls.key_id, cls.secret = key["AccessKeyId"], key["SecretAccessKey"]
        import boto3
        s3 = boto3.client("s3", endpoint_url=cls.moto.url, region_name="us-east-1",
                          aws_access_key_id=cls.key_id, aws_secret_access_key=cls.secret)
        s3.create_bucket(Bucket=BUCKET)
        put_inserts(s3, BUCKET, "", 3, user="user-", activity="act")

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def setUp(self):
        super().setUp()
        empty = self.write("empty", "")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update({"AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_CONFIG_FILE": empty,
                         "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
                         "AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret})

    def ddbaudit(self, *args):
        p = subprocess.run([BINARY, *args, "--endpoint-url", self.moto.url], env=self.env,
                           capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace")

    def report_texts(self, d):
        texts = []
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
        return "\n".join(texts)

    def test_right_key_reads_the_bucket(self):
        out_dir = self.path("report", "x")
        out_dir = os.path.dirname(out_dir)
        status, out, err = self.ddbaudit("verify", f"s3://{BUCKET}/", "--settle", "0",
                                         "--report", out_dir, "-v", "-v")
        self.assertEqual(status, 0, err)
        with open(os.path.join(out_dir, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual(rep["summary"]["objects"], 3)
        self.assertEqual(rep["summary"]["valid"], 3)
        self.assertNotIn(self.secret, out + err + self.report_texts(out_dir))

    def test_wrong_secret_is_exit_3_naming_the_provider(self):
        wrong = "wrong/secret+KEY=forged0123456789abcdef"
        token = "FQoGZXIvYXdzSESSIONTOKENxyz"
        self.env["AWS_SECRET_ACCESS_KEY"] = wrong
        out_dir = os.path.dirname(self.path("report", "x"))
        runs = (["ls", f"s3://{BUCKET}/", "-v", "-v"],
                ["verify", f"s3://{BUCKET}/", "-v", "-v", "--report", out_dir],
                ["verify", f"s3://{BUCKET}/", "--format", "json"])
        for args in runs:
            status, out, err = self.ddbaudit(*args)
            self.assertEqual(status, 3, f"{args}: {err}")
            self.assertIn("credentials from environment", err)
            self.assertIn("HTTP 403 SignatureDoesNotMatch", err)
            everything = out + err + self.report_texts(out_dir)
            for secret in (wrong, self.secret, "forged0123456789"):
                self.assertNotIn(secret, everything, args)
        # With a session token the server refuses the token instead; it is
        # never shown either.
        self.env["AWS_SESSION_TOKEN"] = token
        for args in runs:
            status, out, err = self.ddbaudit(*args)
            self.assertEqual(status, 3, f"{args}: {err}")
            self.assertIn("credentials from environment", err)
            everything = out + err + self.report_texts(out_dir)
            for secret in (wrong, token, self.secret):
                self.assertNotIn(secret, everything, args)

    def test_unknown_key_id(self):
        self.env["AWS_ACCESS_KEY_ID"] = "AKIANOTAKEYMOTOKNOWS"
        status, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/")
        self.assertEqual(status, 3, err)
        self.assertIn("credentials from environment", err)
        self.assertNotIn(self.secret, err)


if __name__ == "__main__":
    main()
