"""Run metadata in every report (docs/report.md, "The run"): when, the command
line (secrets never), version and commit, host, the caller's identity from STS
GetCallerIdentity ("unknown" with a reason offline or for a local source
without credentials, never fatal), source, range (null and "open" when not
given), --versions, completeness and the --state link; report.md's legend
of the kinds found and its details printed whole."""
import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
from datetime import datetime, timezone

from harness import BINARY, Case, ROOT, main
from moto import MotoCase, upload_tree

SAMPLES = os.path.join(ROOT, "samples", "audit-logs")
DAY = ["--from", "2025-07-12T00:00Z", "--to", "2025-07-13T00:00Z"]
ACCOUNT = "123456789012"  # moto's
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def clean_env(tmp, **extra):
    """The environment without any AWS setting, the shared files pointed at
    nothing, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = os.path.join(tmp, "no-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(tmp, "no-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.update(extra)
    return env


def ddbaudit(args, env, timeout=120):
    p = subprocess.run([BINARY, *args], capture_output=True, env=env, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def now():
    return datetime.now(timezone.utc).replace(microsecond=0)


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


class Silent:
    """A TCP server that accepts and never answers: STS that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.connected.set()

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


class MetaChecks:
    """What every test here checks of a report (mixed into a Case)."""

    def verify(self, *args, env=None, rdir="report"):
        out = os.path.join(self.dir, rdir)
        before = now()
        status, err = ddbaudit(["verify", *args, "--report", out],
                               env if env is not None else clean_env(self.dir))
        after = now()
        self.assertIn(status, (0, 1), err)
        with open(os.path.join(out, "report.json"), "rb") as f:
            raw = f.read()
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            md = f.read()
        rep = json.loads(raw)
        gen = parse_time(rep["run"]["generated_at"])
        self.assertTrue(before <= gen <= after, (before, gen, after))
        self.assertIn("- Generated at: %s\n" % rep["run"]["generated_at"], md)
        return rep, md, raw, out

    def check_tool_and_host(self, run, md):
        version = subprocess.run([BINARY, "--version"], capture_output=True,
                                 text=True).stdout.strip()
        m = re.fullmatch(r"ddbaudit (\S+) \(commit (\S+)\)", version)
        self.assertIsNotNone(m, version)
        self.assertEqual(run["tool"], {"version": m.group(1), "commit": m.group(2)})
        self.assertIn("- %s\n" % version, md)
        self.assertEqual(run["host"], socket.gethostname())
        self.assertIn("- Host: `%s`\n" % socket.gethostname(), md)

    def check_legend_and_details(self, rep, md):
        kinds = set(rep["summary"]["by_kind"]) | set(rep["summary"]["ignored"]) | set(
            rep["summary"]["suppressed"])
        legend = re.findall(r"^- \*\*([A-Z_]+)\*\* \((\w+)\): (.+ What to do: .+)$", md, re.M)
        self.assertEqual({k for k, _, _ in legend}, kinds, md)
        self.assertEqual(len(legend), len(kinds))
        self.assertNotIn("...", md)
        for a in rep["anomalies"]:
            if "count" in a:
                continue
            cell = a["detail"].replace("|", "\\|").replace("<", "\\<").replace("\n", " ")
            self.assertIn(" | %s |\n" % cell, md)


class LocalTest(MetaChecks, Case):
    def test_every_field_of_a_local_run_without_credentials(self):
        args = [SAMPLES, *DAY, "--settle", "0"]
        rep, md, _, out = self.verify(*args, rdir="the auditor's report")
        run = rep["run"]
        # Quoted as a shell reads it back.
        self.assertEqual(shlex.split(run["command_line"]),
                         ["ddbaudit", "verify", *args, "--report", out])
        self.assertIn("'\\''", run["command_line"])
        self.assertIn("- Command line: `%s`\n" % run["command_line"], md)
        self.check_tool_and_host(run, md)
        self.assertEqual(run["caller"], {"status": "unknown",
                                         "reason": "local source: no AWS call made"})
        self.assertIn("- Caller: unknown (local source: no AWS call made)\n", md)
        self.assertEqual(run["source"], SAMPLES)
        self.assertEqual(run["range"], {"from": "2025-07-12T00:00:00Z",
                                        "to": "2025-07-13T00:00:00Z"})
        self.assertIn("- Range: from 2025-07-12T00:00:00Z to 2025-07-13T00:00:00Z\n", md)
        self.assertIs(run["versions"], False)
        self.assertIn("- Versions: the current version of each key (no `--versions`)\n", md)
        self.assertIs(run["complete"], True)
        self.assertIn("- Completeness: complete: everything in the range was read\n", md)
        self.assertNotIn("state", run)
        self.assertNotIn("bucket", run)
        self.assertNotIn("- State:", md)
        self.check_legend_and_details(rep, md)

    def test_an_open_range_is_null_and_said_open(self):
        rep, md, _, _ = self.verify(SAMPLES, "--settle", "0")
        self.assertEqual(rep["run"]["range"], {"from": None, "to": None})
        self.assertIn("- Range: open: every record of the source, from the beginning\n", md)
        rep, md, _, _ = self.verify(SAMPLES, "--settle", "0", "--from", "2025-07-12T10:00Z")
        self.assertEqual(rep["run"]["range"], {"from": "2025-07-12T10:00:00Z", "to": None})
        self.assertIn("- Range: from 2025-07-12T10:00:00Z to open (the run's now)\n", md)
        self.assertNotIn(" - to -", md)

    def test_an_sts_that_never_answers_leaves_the_caller_unknown(self):
        """Credentials in the environment: a local source asks STS, which
        hangs; the run still reports, with the reason (the request's own
        time limit ends it, well within the subprocess timeout)."""
        silent = Silent()
        self.addCleanup(silent.stop)
        env = clean_env(self.dir, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY=SECRET,
                        AWS_ENDPOINT_URL_STS=silent.url)
        rep, md, raw, _ = self.verify(SAMPLES, *DAY, "--settle", "0", env=env)
        caller = rep["run"]["caller"]
        self.assertEqual(caller["status"], "unknown")
        self.assertIn("STS GetCallerIdentity failed", caller["reason"])
        self.assertIn("- Caller: unknown (STS GetCallerIdentity failed", md)
        self.assertGreater(len(silent.conns), 0, "STS was never asked")
        self.assertNotIn(SECRET.encode(), raw)

    def test_sigterm_ends_the_wait_for_sts(self):
        """SIGTERM while STS hangs (the audit itself done) ends the wait at
        once: the reports are written, the caller unknown, interrupted."""
        silent = Silent()
        self.addCleanup(silent.stop)
        env = clean_env(self.dir, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY=SECRET,
                        AWS_ENDPOINT_URL_STS=silent.url)
        out = os.path.join(self.dir, "report")
        p = subprocess.Popen([BINARY, "verify", SAMPLES, *DAY, "--settle", "0", "--report",
                              out], env=env, stderr=subprocess.PIPE)
        self.addCleanup(p.kill)
        self.assertTrue(silent.connected.wait(60), "STS was never asked")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 1, err)
        with open(os.path.join(out, "report.json")) as f:
            caller = json.load(f)["run"]["caller"]
        self.assertEqual(caller, {"status": "unknown",
                                  "reason": "interrupted while asking STS GetCallerIdentity"})

    def test_static_keys_of_the_profile_are_used_for_a_local_source(self):
        creds = os.path.join(self.dir, "credentials")
        with open(creds, "w") as f:
            f.write("[auditor]\naws_access_key_id = AKIDPROFILE\n"
                    "aws_secret_access_key = %s\n" % SECRET)
        silent = Silent()
        self.addCleanup(silent.stop)
        env = clean_env(self.dir, AWS_SHARED_CREDENTIALS_FILE=creds, AWS_PROFILE="auditor",
                        AWS_ENDPOINT_URL_STS=silent.url)
        rep, _, raw, _ = self.verify(SAMPLES, *DAY, "--settle", "0", env=env)
        self.assertTrue(silent.connected.is_set(), "STS was never asked")
        self.assertEqual(rep["run"]["caller"]["status"], "unknown")
        self.assertNotIn(SECRET.encode(), raw)

    def test_broken_credentials_leave_the_caller_unknown(self):
        env = clean_env(self.dir, AWS_ACCESS_KEY_ID="AKIDONLY")
        rep, md, _, _ = self.verify(SAMPLES, *DAY, "--settle", "0", env=env)
        reason = ("no credentials to ask STS with: the environment sets AWS_ACCESS_KEY_ID "
                  "but not AWS_SECRET_ACCESS_KEY")
        self.assertEqual(rep["run"]["caller"], {"status": "unknown", "reason": reason})
        self.assertIn("- Caller: unknown (%s)\n" % reason, md)

    def test_an_unreachable_sts_leaves_the_caller_unknown(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = "http://127.0.0.1:%d" % s.getsockname()[1]
        env = clean_env(self.dir, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY=SECRET,
                        AWS_ENDPOINT_URL_STS=closed)
        rep, _, _, _ = self.verify(SAMPLES, *DAY, "--settle", "0", env=env)
        self.assertEqual(rep["run"]["caller"]["status"], "unknown")
        self.assertIn("STS GetCallerIdentity failed", rep["run"]["caller"]["reason"])

    def test_the_state_link(self):
        """Chained runs: the second names the first's report by its SHA-256
        and both watermarks; the first is the start of its chain."""
        state = os.path.join(self.dir, "state.gz")
        first, md, raw, _ = self.verify(SAMPLES, "--settle", "0", "--now", "2026-01-01T00:00Z",
                                        "--from", "2025-07-12T06:00Z", "--to",
                                        "2025-07-12T09:00Z", "--state", state, rdir="r1")
        self.assertEqual(first["run"]["state"], {
            "path": state, "previous_report_sha256": None, "previous_watermark": None,
            "watermark": "2025-07-12T09:00:00Z"})
        self.assertIn("- State: `%s`, the first run of its chain, now up to "
                      "2025-07-12T09:00:00Z\n" % state, md)
        second, md, _, _ = self.verify(SAMPLES, "--settle", "0", "--now", "2026-01-01T00:00Z",
                                       "--from", "2025-07-12T09:00Z", "--to",
                                       "2025-07-12T12:00Z", "--state", state, rdir="r2")
        digest = hashlib.sha256(raw).hexdigest()
        self.assertEqual(second["run"]["state"], {
            "path": state, "previous_report_sha256": digest,
            "previous_watermark": "2025-07-12T09:00:00Z", "watermark": "2025-07-12T12:00:00Z"})
        self.assertIn("previous report SHA-256 `%s`, audited before up to "
                      "2025-07-12T09:00:00Z, now up to 2025-07-12T12:00:00Z\n" % digest, md)


class SecretTest(MetaChecks, MotoCase):
    """Secrets never reach a report: the environment's secret key typed on
    the command line, a password in a URL."""

    def test_secrets_never_appear(self):
        env = clean_env(self.dir, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY=SECRET,
                        AWS_REGION="us-east-1", AWS_ENDPOINT_URL_STS=self.moto.url)
        rdir = "report-" + SECRET
        password = "pa55-word-not-for-reports"
        endpoint = self.moto.url.replace("http://", "http://auditor:%s@" % password)
        rep, md, raw, out = self.verify(SAMPLES, *DAY, "--settle", "0", "--endpoint-url",
                                        endpoint, env=env, rdir=rdir)
        line = rep["run"]["command_line"]
        self.assertIn("report-[redacted]", line)
        self.assertIn("'http://***@127.0.0.1:%d'" % self.moto.port, line)
        for name in os.listdir(out):
            with open(os.path.join(out, name), "rb") as f:
                data = f.read()
            self.assertNotIn(SECRET.encode(), data, name)
            self.assertNotIn(password.encode(), data, name)
        # A local source with credentials in the environment asks STS.
        self.assertEqual(rep["run"]["caller"]["status"], "known")
        self.assertEqual(rep["run"]["caller"]["account"], ACCOUNT)


class S3MetaTest(MetaChecks, MotoCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3.create_bucket(Bucket="audit")
        upload_tree(cls.s3, "audit", SAMPLES, "audit-logs/")

    def env(self):
        return clean_env(self.dir, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                         AWS_SECRET_ACCESS_KEY="testing-secret", AWS_REGION="us-east-1")

    def test_every_field_of_an_s3_run(self):
        args = ["s3://audit/audit-logs/", "--endpoint-url", self.moto.url, *DAY, "--settle",
                "0", "--versions"]
        rep, md, _, out = self.verify(*args, env=self.env())
        run = rep["run"]
        self.assertEqual(run["command_line"],
                         shlex.join(["ddbaudit", "verify", *args, "--report", out]))
        self.check_tool_and_host(run, md)
        caller = run["caller"]
        self.assertEqual(caller["status"], "known")
        self.assertEqual(caller["account"], ACCOUNT)
        self.assertTrue(caller["arn"].startswith("arn:aws:"), caller)
        self.assertIn(ACCOUNT, caller["arn"])
        self.assertTrue(caller["user_id"])
        self.assertIn("- Caller: account %s, ARN `%s`, user id `%s`\n"
                      % (ACCOUNT, caller["arn"], caller["user_id"]), md)
        self.assertIs(run["versions"], True)
        self.assertIn("- Versions: every version of every key (`--versions`)\n", md)
        self.assertEqual(run["bucket"]["name"], "audit")
        self.assertIn("- Bucket `audit`: versioning %s, Object Lock %s"
                      % (run["bucket"]["versioning"], run["bucket"]["object_lock"]), md)
        self.assertIn("- Source: `s3://audit/audit-logs/`\n", md)
        self.assertEqual(run["verdict"], "findings")
        self.check_legend_and_details(rep, md)
        self.assertIn("UNVERSIONED_BUCKET", {k for k in rep["summary"]["by_kind"]})

    def test_sts_refusing_is_not_fatal(self):
        """An STS endpoint that answers an error: the S3 audit reports
        anyway, the caller unknown with STS's answer as the reason."""
        silent_env = {**self.env(), "AWS_ENDPOINT_URL_STS": self.moto.url + "/no-such-sts"}
        rep, md, _, _ = self.verify("s3://audit/audit-logs/", "--endpoint-url", self.moto.url,
                                    *DAY, "--settle", "0", env=silent_env)
        self.assertEqual(rep["run"]["caller"]["status"], "unknown")
        self.assertIn("STS GetCallerIdentity", rep["run"]["caller"]["reason"])
        self.assertEqual(rep["summary"]["objects"] > 0, True)


class ReconcileMetaTest(MetaChecks, MotoCase):
    def test_reconcile_reports_carry_the_run_too(self):
        """reconcile reads the live table with AWS credentials: its report
        names the caller even for a local log."""
        from ddb_world import World, create_table
        ddb = self.moto.client("dynamodb")
        w = World()
        create_table(ddb, "meta")
        w.apply(ddb, "meta")
        log = w.write_log(self.dir)
        env = clean_env(self.dir, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                        AWS_SECRET_ACCESS_KEY="testing-secret", AWS_REGION="us-east-1",
                        AWS_ENDPOINT_URL=self.moto.url)
        out = os.path.join(self.dir, "report")
        os.makedirs(out)  # reconcile --report does not make DIR (verify does)
        args = ["reconcile", log, "--table", "ddb://meta", "--report", out]
        status, err = ddbaudit(args, env)
        self.assertEqual(status, 0, err)
        with open(os.path.join(out, "report.json")) as f:
            run = json.load(f)["run"]
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        self.assertEqual(shlex.split(run["command_line"]), ["ddbaudit", *args])
        self.assertEqual(run["caller"]["status"], "known", run["caller"])
        self.assertEqual(run["caller"]["account"], ACCOUNT)
        self.check_tool_and_host(run, md)


if __name__ == "__main__":
    main()
