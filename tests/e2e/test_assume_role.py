"""The principal ddbaudit runs as, proved by the server: moto_server checks
every signature and every IAM policy (INITIAL_NO_AUTH_ACTION_COUNT), so a
listing succeeds only when it is signed with credentials allowed to read.

- "base" may only call sts:AssumeRole; "admin" may do anything; the role
  "reader" may do anything; the role "hop" may only assume roles.
- A role profile on an instance whose metadata hands out base's keys must
  assume "reader" (a listing with base's own keys is refused), as botocore
  does; before this, ddbaudit fell through to the instance's keys.
- STS requests pass through a recording proxy, so the tests also see which
  key signed each AssumeRole and what it asked for.

Objects sit at the bucket's root: moto's signature check mishandles a '/'
in query values (see test_s3_auth.py)."""
import hashlib
import json
import os
import re
import subprocess
from cred_server import CredServer, RecordingProxy, SsoPortal
from harness import BINARY, Case, main
from moto import Moto, put_inserts, require_moto

BUCKET = "assumed"
FREE_CALLS = 4  # create_user, create_policy, attach_user_policy, create_access_key
ACCOUNT = "123456789012"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"},
     "Action": "sts:AssumeRole"}]})


def policy(action):
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})


class AssumeRoleTest(Case):
    @classmethod
    def setUpClass(cls):
        require_moto()
        import boto3
        cls.moto = Moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(FREE_CALLS)})
        iam = cls.moto.client("iam")
        iam.create_user(UserName="admin")
        all_arn = iam.create_policy(PolicyName="all", PolicyDocument=policy("*"))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="admin", PolicyArn=all_arn)
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        cls.admin = (key["AccessKeyId"], key["SecretAccessKey"])

        def client(service):
            return boto3.client(service, endpoint_url=cls.moto.url, region_name="us-east-1",
                                aws_access_key_id=cls.admin[0],
                                aws_secret_access_key=cls.admin[1])
        iam = client("iam")
        iam.create_user(UserName="base")
        assume_arn = iam.create_policy(PolicyName="assume-only",
                                       PolicyDocument=policy("sts:AssumeRole"))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="base", PolicyArn=assume_arn)
        key = iam.create_access_key(UserName="base")["AccessKey"]
        cls.base = (key["AccessKeyId"], key["SecretAccessKey"])
        cls.reader = iam.create_role(RoleName="reader",
                                     AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName="reader", PolicyArn=all_arn)
        cls.hop = iam.create_role(RoleName="hop", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName="hop", PolicyArn=assume_arn)
        s3 = client("s3")
        s3.create_bucket(Bucket=BUCKET)
        put_inserts(s3, BUCKET, "", 3, user="user-", activity="act")

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def setUp(self):
        super().setUp()
        self.servers = []
        self.sts = self.serve(RecordingProxy(self.moto.url))
        self.creds_file = self.write("credentials", "")
        self.config_file = self.write("config", "")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update({"AWS_SHARED_CREDENTIALS_FILE": self.creds_file,
                         "AWS_CONFIG_FILE": self.config_file,
                         "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
                         "AWS_ENDPOINT_URL_STS": self.sts.url, "HOME": self.dir})

    def tearDown(self):
        for s in self.servers:
            s.stop()
        super().tearDown()

    def serve(self, server):
        self.servers.append(server)
        return server

    def files(self, credentials="", config=""):
        self.write("credentials", credentials)
        self.write("config", config)

    def keys(self, name, pair):
        return (f"[{name}]\naws_access_key_id = {pair[0]}\n"
                f"aws_secret_access_key = {pair[1]}\n")

    def ddbaudit(self, *args):
        p = subprocess.run([BINARY, *args, "--endpoint-url", self.moto.url], env=self.env,
                           capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace")

    def assertLists(self, *args):
        status, out, err = self.ddbaudit("ls", f"s3://{BUCKET}/", *args)
        self.assertEqual(status, 0, err)
        self.assertEqual(len(out.splitlines()), 3, out)
        return err

    def assertRefused(self, *args):
        status, out, err = self.ddbaudit("ls", f"s3://{BUCKET}/", *args)
        self.assertEqual(status, 3, err)
        return err

    def test_role_profile_on_an_instance_assumes_the_role(self):
        imds = self.serve(CredServer(*self.base, token=None))  # long-term keys
        del self.env["AWS_EC2_METADATA_DISABLED"]
        self.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url
        self.files(config="[profile auditor]\n"
                   f"role_arn = {self.reader}\n"
                   "credential_source = Ec2InstanceMetadata\n")
        # The instance's own keys may not read the bucket...
        err = self.assertRefused()
        self.assertIn("HTTP 403", err)
        self.assertIn("EC2 instance metadata", err)
        self.assertEqual(self.sts.forms(), [])
        # ...the role profile assumes the role with them, and reads it.
        self.env["AWS_PROFILE"] = "auditor"
        self.assertLists()
        forms = self.sts.forms()
        self.assertEqual(len(forms), 1)
        form, signer, _ = forms[0]
        self.assertEqual(form["Action"], "AssumeRole")
        self.assertEqual(form["RoleArn"], self.reader)
        self.assertEqual(signer, self.base[0])
        # botocore's session name; no external id or duration unless set.
        self.assertRegex(form["RoleSessionName"], r"^botocore-session-\d{10}$")
        self.assertNotIn("ExternalId", form)
        self.assertNotIn("DurationSeconds", form)
        # Failures name the assumed role as the provider.
        status, _, err = self.ddbaudit("ls", "s3://no-such-bucket/")
        self.assertEqual(status, 3, err)
        self.assertIn("credentials from assume role", err)
        self.assertNotIn(self.base[1], err)

    def test_chained_source_profiles(self):
        """auditor -> hop -> base: hop is assumed with base's keys, reader
        with hop's temporary ones."""
        self.files(credentials=self.keys("base", self.base),
                   config="[profile auditor]\n"
                   f"role_arn = {self.reader}\nsource_profile = hop\n"
                   "[profile hop]\n"
                   f"role_arn = {self.hop}\nsource_profile = base\n")
        self.assertLists("--profile", "auditor")
        forms = self.sts.forms()
        self.assertEqual([f["RoleArn"] for f, _, _ in forms], [self.hop, self.reader])
        self.assertEqual(forms[0][1], self.base[0])
        self.assertNotIn(forms[1][1], (self.base[0], self.admin[0]))
        self.assertTrue(forms[1][2])
        # hop alone may not read.
        self.assertRefused("--profile", "hop")

    def test_source_profile_keys_come_before_its_own_role(self):
        """A source profile with both keys and role_arn gives its keys (the
        role it names does not exist: assuming it would fail)."""
        self.files(credentials=self.keys("base", self.base) +
                   f"role_arn = arn:aws:iam::{ACCOUNT}:role/does-not-exist\n"
                   "source_profile = base\n",
                   config="[profile auditor]\n"
                   f"role_arn = {self.reader}\nsource_profile = base\n")
        self.assertLists("--profile", "auditor")
        self.assertEqual([f["RoleArn"] for f, _, _ in self.sts.forms()], [self.reader])

    def test_role_options_are_sent(self):
        self.files(credentials=self.keys("base", self.base),
                   config="[profile auditor]\n"
                   f"role_arn = {self.reader}\nsource_profile = base\n"
                   "external_id = shared-secret-id\nrole_session_name = nightly-audit\n"
                   "duration_seconds = 1800\n")
        self.assertLists("--profile", "auditor")
        form = self.sts.forms()[0][0]
        self.assertEqual(form["ExternalId"], "shared-secret-id")
        self.assertEqual(form["RoleSessionName"], "nightly-audit")
        self.assertEqual(form["DurationSeconds"], "1800")

    def test_mfa_serial_is_refused_clearly(self):
        self.files(credentials=self.keys("base", self.base),
                   config="[profile auditor]\n"
                   f"role_arn = {self.reader}\nsource_profile = base\n"
                   f"mfa_serial = arn:aws:iam::{ACCOUNT}:mfa/someone\n")
        err = self.assertRefused("--profile", "auditor")
        self.assertIn("profile 'auditor' sets mfa_serial", err)
        self.assertIn("cannot ask for an MFA code", err)
        self.assertEqual(self.sts.forms(), [])

    def test_explicit_profile_ignores_keys_in_the_environment(self):
        self.files(credentials=self.keys("admin", self.admin))
        self.env.update({"AWS_ACCESS_KEY_ID": self.base[0],
                         "AWS_SECRET_ACCESS_KEY": self.base[1]})
        self.assertLists("--profile", "admin")
        # AWS_PROFILE does not outrank the keys: base's are used, and refused.
        self.env["AWS_PROFILE"] = "admin"
        err = self.assertRefused()
        self.assertIn("credentials from environment", err)

    def test_default_profile_variable(self):
        self.files(credentials=self.keys("admin", self.admin) + self.keys("base", self.base))
        self.env["AWS_DEFAULT_PROFILE"] = "admin"
        self.assertLists()
        # AWS_PROFILE comes first.
        self.env["AWS_PROFILE"] = "base"
        self.assertRefused()

    def test_credential_process(self):
        tool = self.write("creds-tool", "#!/bin/sh\n"
                          "echo \"fetching for $1\" >&2\n"
                          f"printf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", "
                          "\"SecretAccessKey\": \"%s\"}' "
                          f"'{self.admin[0]}' '{self.admin[1]}'\n")
        os.chmod(tool, 0o755)
        broken = self.write("broken", "#!/bin/sh\necho 'vault is sealed' >&2\nexit 2\n")
        os.chmod(broken, 0o755)
        self.files(config="[profile proc]\n"
                   f"credential_process = {tool} 'the auditor'\n"
                   "[profile broken]\n"
                   f"credential_process = {broken}\n")
        err = self.assertLists("--profile", "proc")
        self.assertIn("fetching for the auditor", err)  # its stderr is passed through
        err = self.assertRefused("--profile", "broken")
        self.assertIn("vault is sealed", err)
        self.assertIn("profile 'broken': credential_process exited with status 2", err)
        self.assertNotIn(self.admin[1], err)

    def sso_cache(self, key, token, expires):
        d = os.path.join(self.dir, ".aws", "sso", "cache")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, hashlib.sha1(key.encode()).hexdigest() + ".json"), "w") as f:
            json.dump({"accessToken": token, "expiresAt": expires, "region": "eu-west-1",
                       "startUrl": "https://d-123.awsapps.com/start"}, f)

    def test_sso_profiles(self):
        portal = self.serve(SsoPortal(*self.admin, token="sso-access-token-abc",
                                      account=ACCOUNT, role="AuditReader",
                                      session_token=None))  # admin's long-term keys
        self.env["AWS_ENDPOINT_URL_SSO"] = portal.url
        start = "https://d-123.awsapps.com/start"
        self.files(config="[profile modern]\nsso_session = corp\n"
                   f"sso_account_id = {ACCOUNT}\nsso_role_name = AuditReader\n"
                   "[sso-session corp]\n"
                   f"sso_start_url = {start}\nsso_region = eu-west-1\n"
                   "[profile legacy]\n"
                   f"sso_start_url = {start}\nsso_region = eu-west-1\n"
                   f"sso_account_id = {ACCOUNT}\nsso_role_name = AuditReader\n"
                   "[profile other-role]\nsso_session = corp\n"
                   f"sso_account_id = {ACCOUNT}\nsso_role_name = Admin\n")
        # No login yet.
        err = self.assertRefused("--profile", "modern")
        self.assertIn("aws sso login --profile modern", err)
        # sso-session: the cache file is named by the session's name.
        self.sso_cache("corp", "sso-access-token-abc", "2099-01-01T00:00:00Z")
        self.assertLists("--profile", "modern")
        path, q, h = portal.log[-1]
        self.assertEqual(q, {"account_id": ACCOUNT, "role_name": "AuditReader"})
        self.assertEqual(h.get("x-amz-sso_bearer_token"), "sso-access-token-abc")
        # Legacy: by the start URL.
        err = self.assertRefused("--profile", "legacy")
        self.assertIn("aws sso login", err)
        self.sso_cache(start, "sso-access-token-abc", "2099-01-01T00:00:00Z")
        self.assertLists("--profile", "legacy")
        # The portal's refusal, and an expired token.
        err = self.assertRefused("--profile", "other-role")
        self.assertIn("SSO GetRoleCredentials", err)
        self.assertIn("HTTP 403", err)
        self.sso_cache("corp", "sso-access-token-abc", "2020-01-01T00:00:00Z")
        n = len(portal.log)
        err = self.assertRefused("--profile", "modern")
        self.assertIn("expired", err)
        self.assertIn("aws sso login --profile modern", err)
        self.assertEqual(len(portal.log), n)
        self.assertNotIn("sso-access-token-abc", err)


if __name__ == "__main__":
    main()
