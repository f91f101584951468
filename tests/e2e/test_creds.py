"""The credential chain end to end: each provider supplies the keys that
`ddbaudit` signs its S3 requests with (moto_server for S3 and STS; a local
server for the container endpoint and IMDSv2), temporary credentials are
renewed before they expire, and failures say which provider failed without
ever printing a secret."""
import json
import os
import socket
import subprocess
from cred_server import CredServer
from fault_proxy import FaultProxy, Rule
from harness import BINARY, Case, main
from moto import Moto, put_inserts, require_moto

BUCKET = "creds"


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CredsTest(Case):
    @classmethod
    def setUpClass(cls):
        require_moto()
        cls.moto = Moto()
        s3 = cls.moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        put_inserts(s3, BUCKET, "audit-logs/", 3)

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def setUp(self):
        super().setUp()
        self.servers = []
        empty = self.write("empty", "")
        # Nothing from the outside world: only what a test sets up.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update({"AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_CONFIG_FILE": empty,
                         "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
                         "HOME": self.dir})

    def tearDown(self):
        for s in self.servers:
            s.stop()
        super().tearDown()

    def server(self, **kw):
        s = CredServer("AKIDCONTAINER", "container-secret-key-1234", **kw)
        self.servers.append(s)
        return s

    def ddbaudit(self, *args, timeout=60):
        p = subprocess.run([BINARY, *args, "--endpoint-url", self.moto.url], env=self.env,
                           capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace")

    def assertProvider(self, provider):
        """A failing request names the provider that supplied the keys."""
        status, _, err = self.ddbaudit("ls", "s3://no-such-bucket/x/")
        self.assertEqual(status, 3, err)
        self.assertIn(f"credentials from {provider}", err)
        return err

    def assertNoSecrets(self, text, *secrets):
        for s in secrets:
            self.assertNotIn(s, text)

    def test_container_endpoint(self):
        srv = self.server()
        self.env.update({"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/creds/v2",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN": srv.auth})
        status, out, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/", "-v")
        self.assertEqual(status, 0, err)
        self.assertEqual(len(out.splitlines()), 3)
        asked = [h for m, p, h in srv.log if p == "/creds/v2"]
        self.assertTrue(asked)
        self.assertEqual(asked[0].get("Authorization"), srv.auth)
        err = self.assertProvider("container credentials endpoint")
        self.assertNoSecrets(out + err, "container-secret-key-1234", srv.auth)

    def test_container_token_file_and_refusals(self):
        srv = self.server()
        tok = self.write("token", srv.auth + "\n")
        self.env.update({"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/creds",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tok})
        status, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(status, 0, err)
        # A wrong token: the endpoint's refusal, and the token never shown.
        self.write("token", "Bearer wrong-token-value")
        status, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(status, 3, err)
        self.assertIn("container credentials endpoint failed: HTTP 403", err)
        self.assertNoSecrets(err, "wrong-token-value")
        # A plain-http full URI to anywhere but loopback or the agent is refused.
        self.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://192.0.2.1/creds"
        status, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(status, 3, err)
        self.assertIn("must use https or a loopback", err)

    def test_imds_v2(self):
        srv = self.server()
        del self.env["AWS_EC2_METADATA_DISABLED"]
        self.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = srv.url
        status, out, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(status, 0, err)
        self.assertEqual(len(out.splitlines()), 3)
        steps = [(m, p) for m, p, h in srv.log]
        self.assertEqual(steps[:3], [("PUT", "/latest/api/token"),
                                     ("GET", "/latest/meta-data/iam/security-credentials/"),
                                     ("GET", "/latest/meta-data/iam/security-credentials/audit-role")])
        for m, p, h in srv.log[1:3]:
            self.assertEqual(h.get("X-aws-ec2-metadata-token"), srv.imds_token)
        self.assertProvider("EC2 instance metadata")

    def test_imds_v1_fallback(self):
        """botocore goes on without a token when the PUT is refused with 403,
        404 or 405; a 400 is an error, and so is any fallback when IMDSv1 is
        disabled."""
        srv = self.server()
        del self.env["AWS_EC2_METADATA_DISABLED"]
        self.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = srv.url
        for status in (403, 404, 405):
            srv.log.clear()
            srv.token_status = status
            code, out, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
            self.assertEqual(code, 0, f"{status}: {err}")
            self.assertEqual(len(out.splitlines()), 3)
            self.assertEqual([(m, p) for m, p, h in srv.log][:2],
                             [("PUT", "/latest/api/token"),
                              ("GET", "/latest/meta-data/iam/security-credentials/")])
            self.assertNotIn("X-aws-ec2-metadata-token", srv.log[1][2])
        self.assertProvider("EC2 instance metadata (IMDSv1)")
        srv.token_status = 400
        code, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(code, 3, err)
        self.assertIn("token request was refused as a bad request (HTTP 400)", err)
        srv.token_status = 403
        self.env["AWS_EC2_METADATA_V1_DISABLED"] = "true"
        code, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(code, 3, err)
        self.assertIn("IMDSv1 is disabled", err)

    def test_role_from_the_container_endpoint(self):
        """credential_source = EcsContainer: the container's keys sign STS
        AssumeRole (moto), and the role's keys sign S3."""
        srv = self.server()
        cfg = self.write("config", "[profile auditor]\n"
                         "role_arn = arn:aws:iam::123456789012:role/auditor\n"
                         "credential_source = EcsContainer\n")
        self.env.update({"AWS_CONFIG_FILE": cfg, "AWS_ENDPOINT_URL_STS": self.moto.url,
                         "AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/creds",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN": srv.auth})
        status, out, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/", "--profile",
                                         "auditor")
        self.assertEqual(status, 0, err)
        self.assertEqual(len(out.splitlines()), 3)
        self.assertTrue([1 for m, p, h in srv.log if p == "/creds"])
        self.env["AWS_PROFILE"] = "auditor"
        self.assertProvider("assume role")

    def test_retry_settings(self):
        """AWS_MAX_ATTEMPTS and AWS_RETRY_MODE (or the profile's max_attempts
        and retry_mode) set how often a failing S3 request is tried."""
        proxy = FaultProxy(self.moto.url)
        self.servers.append(proxy)
        self.env.update({"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"})

        def ls(*extra):
            p = subprocess.run([BINARY, "ls", f"s3://{BUCKET}/audit-logs/", "--endpoint-url",
                                proxy.url, *extra], env=self.env, capture_output=True,
                               timeout=120)
            return p.returncode, p.stderr.decode("utf-8", "replace")

        def fail_listing(times):
            proxy.reset()
            proxy.rules.append(Rule("GET", "list-type", 500, times))

        # Two failures: the default five attempts get through...
        fail_listing(2)
        status, err = ls()
        self.assertEqual(status, 0, err)
        # ...two attempts do not, from the environment or the config file.
        fail_listing(2)
        self.env["AWS_MAX_ATTEMPTS"] = "2"
        status, err = ls()
        self.assertEqual(status, 3, err)
        self.assertIn("HTTP 500", err)
        self.assertEqual(proxy.injected, 2)
        del self.env["AWS_MAX_ATTEMPTS"]
        cfg = self.write("config", "[default]\nmax_attempts = 2\n")
        self.env["AWS_CONFIG_FILE"] = cfg
        fail_listing(2)
        status, err = ls()
        self.assertEqual(status, 3, err)
        self.assertEqual(proxy.injected, 2)
        # standard mode's three attempts get through two failures.
        self.write("config", "[default]\nretry_mode = standard\n")
        fail_listing(2)
        status, err = ls()
        self.assertEqual(status, 0, err)
        self.assertEqual(proxy.injected, 2)
        self.env["AWS_RETRY_MODE"] = "eager"
        status, err = ls()
        self.assertEqual(status, 2, err)  # a usage error, as a bad flag is
        self.assertIn("unknown retry mode 'eager'", err)

    def test_expiring_credentials_are_renewed(self):
        """Credentials that expire within five minutes are renewed before a
        request is signed: with one-minute credentials, every request asks."""
        srv = self.server(lifetime_s=60)
        self.env.update({"AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/creds",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN": srv.auth})
        status, out, err = self.ddbaudit("verify", f"s3://{BUCKET}/audit-logs/",
                                         "--format", "json", "--settle", "0")
        self.assertEqual(status, 0, err)
        self.assertEqual(json.loads(out)["summary"]["objects"], 3)
        # The first fetch, then one per signed request: a listing, two bucket
        # questions and three GETs.
        self.assertGreaterEqual(len([1 for m, p, h in srv.log if p == "/creds"]), 7)
        # Long-lived ones are fetched once by the audit, and once more for
        # the report's caller identity (STS GetCallerIdentity), after it.
        srv.log.clear()
        srv.lifetime_s = 6 * 3600
        status, out, err = self.ddbaudit("verify", f"s3://{BUCKET}/audit-logs/",
                                         "--format", "json", "--settle", "0")
        self.assertEqual(status, 0, err)
        self.assertEqual(len([1 for m, p, h in srv.log if p == "/creds"]), 2)

    def test_web_identity_through_sts(self):
        tok = self.write("wi-token", "eyJhbGciOiJSUzI1NiJ9.web-identity-token.sig")
        self.env.update({"AWS_WEB_IDENTITY_TOKEN_FILE": tok,
                         "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/auditor",
                         "AWS_ENDPOINT_URL_STS": self.moto.url})
        status, out, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(status, 0, err)
        self.assertEqual(len(out.splitlines()), 3)
        err = self.assertProvider("web identity")
        self.assertNoSecrets(err, "web-identity-token")

    def test_web_identity_from_the_profile(self):
        tok = self.write("wi-token", "profile-web-identity-token")
        cfg = self.write("config", "[profile auditor]\n"
                         f"web_identity_token_file = {tok}\n"
                         "role_arn = arn:aws:iam::123456789012:role/auditor\n")
        self.env.update({"AWS_CONFIG_FILE": cfg, "AWS_PROFILE": "auditor",
                         "AWS_ENDPOINT_URL_STS": self.moto.url})
        status, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(status, 0, err)
        self.assertProvider("web identity")

    def test_environment_comes_first(self):
        srv = self.server()
        self.env.update({"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret",
                         "AWS_CONTAINER_CREDENTIALS_FULL_URI": srv.url + "/creds"})
        self.assertProvider("environment")
        self.assertEqual(srv.log, [])

    def test_no_provider_configured(self):
        status, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/")
        self.assertEqual(status, 3, err)
        self.assertIn("no AWS credentials found", err)
        for name in ("environment", "shared credentials", "web identity", "SSO",
                     "credential_process", "config file", "container",
                     "EC2 instance metadata"):
            self.assertIn(name, err)

    def test_unreachable_imds_fails_over(self):
        """Off EC2, instance metadata does not answer: the chain ends with the
        same message instead of hanging (the subprocess timeout would fail)."""
        del self.env["AWS_EC2_METADATA_DISABLED"]
        self.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
        status, _, err = self.ddbaudit("ls", f"s3://{BUCKET}/audit-logs/", timeout=30)
        self.assertEqual(status, 3, err)
        self.assertIn("no AWS credentials found", err)


if __name__ == "__main__":
    main()
