"""Hostile S3 peers (issue 10, cases 2, 3, 13 and 14).

Signals during network I/O: against a local S3 that accepts and never
answers, one that trickles a byte a second, and one whose listing never ends
(a new continuation token on every page), SIGTERM and SIGINT end verify, ls,
history and replay with exit 3, and verify's report says the run is
incomplete because it was interrupted. The signal is sent once the server has
seen the request it is stalling (an Event the server sets, not a sleep); the
generous wait afterwards is a bound on a hang, not a timing assertion."""
import json
import os
import signal
import socket
import subprocess
import threading
import http.server
import socketserver
import urllib.parse
from xml.sax.saxutils import escape as xml_escape

from harness import BINARY, ROOT, Case, main
from moto import MotoCase

# How long a stalled answer is held: far past every wait of the test, so
# that only the signal can end the run.
HOLD_SECONDS = 600
# A bound on "ends within a second or two", generous for loaded machines.
WAIT = 30

# Realistic secrets: long, with '/', '+' and '=' that a query string encodes.
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SESSION_TOKEN = ("IQoJb3JpZ2luX2VjEPz//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+sessiontoken"
                 "+Wl2Ff8bXJ0a2VuZXhhbXBsZQ==")
OTHER_TOKEN = "FwoGZXIvYXdzEPresignedTokenOfSomeoneElse"

RECORD = json.dumps({
    "timestamp": "2025-07-12T08:00:00.000001", "eventName": "INSERT", "userId": "u1",
    "activityId": "a", "awsRegion": "us-east-1", "eventSource": "aws:dynamodb",
    "newImage": {"UserId": {"S": "u1"}, "ActivityId": {"S": "a"}}}).encode()
KEY = "audit-logs/2025/07/12/08/u1-a.json"
RANGE = ["--from", "2025-07-12T08:00Z", "--to", "2025-07-12T09:00Z", "--settle", "0"]


def listing(keys, token=None, next_token=None):
    items = "".join(
        f"<Contents><Key>{k}</Key><LastModified>2025-07-12T08:00:01.000Z</LastModified>"
        f"<ETag>&quot;x&quot;</ETag><Size>{len(RECORD)}</Size>"
        f"<StorageClass>STANDARD</StorageClass></Contents>" for k in keys)
    more = (f"<IsTruncated>true</IsTruncated>"
            f"<NextContinuationToken>{next_token}</NextContinuationToken>"
            if next_token else "<IsTruncated>false</IsTruncated>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
            f"<Name>b</Name><Prefix></Prefix><KeyCount>{len(keys)}</KeyCount>"
            f"<MaxKeys>1000</MaxKeys>{more}{items}</ListBucketResult>").encode()


class QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body, ctype="application/xml", length=None):
        """An answer whose Content-Length is `length` when given (a body
        that ends early), else the body's."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)


    def bucket_settings(self, q):
        """Answers the bucket's versioning (on) and Object Lock (none)
        questions; False for any other request."""
        if "versioning" in q:
            self.send(200, b"<VersioningConfiguration><Status>Enabled</Status>"
                           b"</VersioningConfiguration>")
        elif "object-lock" in q:
            self.send(404, b"<Error><Code>ObjectLockConfigurationNotFoundError</Code></Error>")
        else:
            return False
        return True


def serve(handler):
    """Starts a threaded server for handler on a free loopback port: (server, url)."""
    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # dropped and stalled connections are what these servers are for

    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class HostileS3:
    """A one-bucket S3 on loopback whose listing (`list_mode`) or object GET
    (`get_mode`) is answered "ok", "silent" (the request is read, nothing is
    ever answered), "trickle" (headers, then one body byte a second) or, for
    listings, "endless" (every page truncated, with a new token). `stalled`
    is set once a stalled answer has begun (or, endless, after 3 pages)."""

    def __init__(self, list_mode="ok", get_mode="ok", options_mode="ok"):
        self.list_mode, self.get_mode = list_mode, get_mode
        self.options_mode = options_mode  # a replay target's preflight
        self.stalled = threading.Event()
        self.closing = threading.Event()
        self.pages = 0
        self.requests = []
        srv = self

        class Handler(QuietHandler):

            def echo(self, status, code, q):
                """An error that echoes what was asked: a secret among the
                request's headers or query comes back in the body, with a
                presigned URL's token and the secret key for good measure."""
                heads = "; ".join(f"{k}: {v}" for k, v in self.headers.items())
                # S3's messages are read up to 255 bytes: what comes last is
                # cut, leaving the start of a secret at the end.
                text = (f"X-Amz-Security-Token={OTHER_TOKEN} token "
                        f"{self.headers.get('X-Amz-Security-Token')} secret {SECRET_KEY} "
                        f"url X-Amz-Security-Token%3D{urllib.parse.quote(SESSION_TOKEN, safe='')}"
                        f"&X-Amz-Credential=AKIDEXAMPLE json {json.dumps({'k': SECRET_KEY})} "
                        f"asked {self.path} with {heads}")
                body = (f"<?xml version=\"1.0\"?><Error><Code>{code}</Code>"
                        f"<Message>{xml_escape(text)}</Message></Error>").encode()
                self.send(status, body)

            def stall(self, mode, length):
                if mode == "silent":
                    srv.stalled.set()
                    srv.closing.wait(HOLD_SECONDS)
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(b"<")
                self.wfile.flush()
                srv.stalled.set()
                while not srv.closing.wait(1):
                    try:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    except OSError:
                        break
                self.close_connection = True

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
                srv.requests.append((self.path, dict(self.headers)))
                if self.bucket_settings(q):
                    return
                if "list-type" in q or "versions" in q:
                    return self.list(q)
                if srv.get_mode == "echo":
                    return self.echo(404, "NoSuchKey", q)
                if srv.get_mode != "ok":
                    return self.stall(srv.get_mode, len(RECORD))
                self.send(200, RECORD, "application/json")

            def list(self, q):
                if srv.list_mode == "echo":
                    return self.echo(403, "AccessDenied", q)
                if srv.list_mode in ("silent", "trickle"):
                    return self.stall(srv.list_mode, 1 << 20)
                if srv.list_mode == "endless":
                    n = int(q.get("continuation-token", "t0")[1:])
                    srv.pages += 1
                    if srv.pages >= 3:
                        srv.stalled.set()
                    return self.send(200, listing([], next_token=f"t{n + 1}"))
                prefix = q.get("prefix", "")
                self.send(200, listing([KEY] if KEY.startswith(prefix) else []))

            def do_POST(self):  # STS, or a replay target
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                srv.requests.append((self.path, dict(self.headers)))
                self.stall("silent", 0)

            def do_OPTIONS(self):  # a replay target's preflight
                if srv.options_mode != "ok":
                    return self.stall(srv.options_mode, 0)
                self.send(200, b"")

        self.server, self.url = serve(Handler)

    def stop(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def aws_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-k3y",
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                "HOME": "/nonexistent"})
    env.update(extra)
    return env


class SignalTest(Case):
    def start(self, *args, env=None):
        return subprocess.Popen([BINARY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env or aws_env())

    def interrupt(self, server, proc, sig=signal.SIGTERM):
        """Waits until the server stalls the run, signals it, and returns
        (exit status, stdout, stderr) once it has ended."""
        if not server.stalled.wait(WAIT):
            proc.kill()
            out, err = proc.communicate()
            self.fail(f"the server never saw the request it stalls: {err.decode()}")
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail(f"{signal.Signals(sig).name} did not end the run within {WAIT} s "
                      f"(it was waiting on the network): {err.decode()}")
        return proc.returncode, out, err.decode("utf-8", "replace")

    def hostile(self, **modes):
        server = HostileS3(**modes)
        self.addCleanup(server.stop)
        return server

    def verify_interrupted(self, server, sig=signal.SIGTERM, doing="listing"):
        report = os.path.join(self.dir, "report")
        proc = self.start("verify", "s3://b/audit-logs/", *RANGE, "--endpoint-url", server.url,
                          "--report", report)
        status, _, err = self.interrupt(server, proc, sig)
        self.assertEqual(status, 3, err)
        self.assertIn(f"interrupted while {doing} s3://b/audit-logs/", err)
        with open(os.path.join(report, "report.json")) as f:
            rep = json.load(f)
        self.assertFalse(rep["run"]["complete"])
        self.assertEqual(rep["run"]["verdict"], "incomplete")
        self.assertIn("interrupted", rep["run"]["error"])
        return rep

    def test_verify_silent_listing_sigterm(self):
        self.verify_interrupted(self.hostile(list_mode="silent"))

    def test_verify_silent_listing_sigint(self):
        self.verify_interrupted(self.hostile(list_mode="silent"), signal.SIGINT)

    def test_verify_trickled_listing(self):
        self.verify_interrupted(self.hostile(list_mode="trickle"))

    def test_verify_endless_listing(self):
        """Case 2: a listing that never ends (a new token on every page) is
        bounded only by a page count far beyond any real prefix: the signal
        must end it."""
        server = self.hostile(list_mode="endless")
        self.verify_interrupted(server)
        self.assertGreaterEqual(server.pages, 3)

    def test_verify_silent_object(self):
        rep = self.verify_interrupted(self.hostile(get_mode="silent"), doing="reading")
        self.assertIn(KEY, rep["run"]["error"])

    def test_verify_trickled_object(self):
        self.verify_interrupted(self.hostile(get_mode="trickle"), doing="reading")

    def test_ls_silent_listing(self):
        server = self.hostile(list_mode="silent")
        proc = self.start("ls", "s3://b/audit-logs/", *RANGE[:4], "--endpoint-url", server.url)
        status, out, err = self.interrupt(server, proc)
        self.assertEqual(status, 3, err)
        self.assertIn("interrupted", err)
        self.assertEqual(out, b"")

    def test_ls_endless_listing_sigint(self):
        server = self.hostile(list_mode="endless")
        proc = self.start("ls", "s3://b/audit-logs/", "--endpoint-url", server.url)
        status, _, err = self.interrupt(server, proc, signal.SIGINT)
        self.assertEqual(status, 3, err)
        self.assertIn("interrupted", err)

    def test_history_trickled_object(self):
        server = self.hostile(get_mode="trickle")
        proc = self.start("history", "s3://b/audit-logs/", *RANGE, "--key",
                          "UserId=u1,ActivityId=a", "--endpoint-url", server.url)
        status, _, err = self.interrupt(server, proc)
        self.assertEqual(status, 3, err)
        self.assertIn("interrupted", err)

    def test_replay_silent_object(self):
        server = self.hostile(get_mode="silent")
        out = os.path.join(self.dir, "out.ndjson")
        proc = self.start("replay", "s3://b/audit-logs/", *RANGE, "--endpoint-url", server.url,
                          "--target", "file:" + out)
        status, _, err = self.interrupt(server, proc)
        self.assertEqual(status, 3, err)
        self.assertIn("interrupted", err)
        self.assertFalse(os.path.exists(out) and os.path.getsize(out))

    def test_replay_target_that_never_answers(self):
        """An HTTP target (Lambda's client is the same) that takes the batch
        and never answers: the send is cut short, and its records are not
        failed by the interrupt: none lands in the DLQ, a resume sends them."""
        server = self.hostile()
        dlq = os.path.join(self.dir, "dlq.ndjson")
        proc = self.start("replay", os.path.join(ROOT, "samples", "audit-logs"), "--settle", "0",
                          "--target", server.url + "/invoke", "--dlq", "file:" + dlq,
                          "--max-retries", "0")
        status, _, err = self.interrupt(server, proc)
        self.assertEqual(status, 3, err)
        self.assertIn("interrupted", err)
        self.assertFalse(os.path.exists(dlq) and os.path.getsize(dlq), err)

    def test_replay_preflight_that_never_answers(self):
        """The target's preflight (OPTIONS) happens before anything is read:
        a signal there ends the run with status 3, not by the signal's
        default action, and nothing is sent or written."""
        server = self.hostile(options_mode="silent")
        dlq = os.path.join(self.dir, "dlq.ndjson")
        proc = self.start("replay", os.path.join(ROOT, "samples", "audit-logs"), "--settle", "0",
                          "--target", server.url + "/invoke", "--dlq", "file:" + dlq)
        status, _, err = self.interrupt(server, proc)
        self.assertEqual(status, 3, err)
        self.assertIn("interrupted", err)
        self.assertFalse(any(p == "/invoke" for p, _ in server.requests), server.requests)
        self.assertFalse(os.path.exists(dlq) and os.path.getsize(dlq), err)

    def test_sts_that_never_answers(self):
        """Credentials are asked for before anything is listed: a silent STS
        (web identity) holds the run in the credential layer."""
        server = self.hostile()
        token = self.write("token", "eyJ.web.identity")
        env = aws_env(AWS_ENDPOINT_URL_STS=server.url, AWS_ROLE_ARN="arn:aws:iam::1:role/r",
                      AWS_WEB_IDENTITY_TOKEN_FILE=token)
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        proc = self.start("verify", "s3://b/audit-logs/", *RANGE, "--endpoint-url", server.url,
                          env=env)
        status, _, err = self.interrupt(server, proc)
        self.assertEqual(status, 3, err)
        self.assertIn("interrupted", err)
        self.assertTrue(any(p == "/" for p, _ in server.requests), server.requests)


class SecretTest(Case):
    """Case 14: a server that echoes the request's headers and query string
    (the session token among them), a presigned URL's token and the secret
    key into its errors: none of them reaches stderr, the -v log, stdout or
    any report file."""

    def setUp(self):
        super().setUp()
        self.env = aws_env(AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_SESSION_TOKEN=SESSION_TOKEN)

    def forms(self):
        for s in (SECRET_KEY, SESSION_TOKEN):
            yield s
            yield urllib.parse.quote(s, safe="")
            yield s.replace("/", "\\/")
            yield s[:20]
        yield OTHER_TOKEN

    def assertNoSecret(self, *texts):
        for text in texts:
            for form in self.forms():
                self.assertNotIn(form.encode() if isinstance(text, bytes) else form, text)

    def run_cli(self, *args):
        p = subprocess.run([BINARY, *args], capture_output=True, env=self.env, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def report_files(self, report):
        for name in sorted(os.listdir(report)):
            with open(os.path.join(report, name), "rb") as f:
                yield name, f.read()

    def test_listing_error_echoes_secrets(self):
        server = HostileS3(list_mode="echo")
        self.addCleanup(server.stop)
        report = os.path.join(self.dir, "report")
        status, out, err = self.run_cli("verify", "s3://b/audit-logs/", *RANGE, "-v", "-v",
                                        "--endpoint-url", server.url, "--report", report)
        self.assertEqual(status, 3, err)
        # The request did carry the token: the echo had something to leak.
        self.assertTrue(any(h.get("X-Amz-Security-Token") == SESSION_TOKEN
                            for _, h in server.requests), server.requests)
        self.assertIn(b"AccessDenied", err)
        self.assertIn(b"[redacted]", err)
        self.assertNoSecret(out, err)
        files = dict(self.report_files(report))
        self.assertIn("report.json", files)
        self.assertIn(b"[redacted]", files["report.json"])
        for name, data in files.items():
            with self.subTest(file=name):
                self.assertNoSecret(data)

    def test_object_error_echoes_secrets(self):
        """A 404 for a listed object is an UNREADABLE finding whose detail
        quotes S3's message: it lands in every report format."""
        server = HostileS3(get_mode="echo")
        self.addCleanup(server.stop)
        report = os.path.join(self.dir, "report")
        status, out, err = self.run_cli("verify", "s3://b/audit-logs/", *RANGE, "-v", "-v",
                                        "--endpoint-url", server.url, "--report", report,
                                        "--format", "json")
        self.assertIn(status, (1, 3), err)
        self.assertNoSecret(out, err)
        files = dict(self.report_files(report))
        rep = json.loads(files["report.json"])
        gone = [a for a in rep["anomalies"] if a["kind"] == "UNREADABLE"]
        self.assertTrue(gone, rep["anomalies"])
        self.assertIn("NoSuchKey", gone[0]["detail"])
        self.assertIn("[redacted]", gone[0]["detail"])
        for name, data in files.items():
            with self.subTest(file=name):
                self.assertNoSecret(data)

    def test_ls_and_history_echo(self):
        server = HostileS3(list_mode="echo")
        self.addCleanup(server.stop)
        for args in (("ls", "s3://b/audit-logs/", "--format", "json"),
                     ("history", "s3://b/audit-logs/", *RANGE, "--key", "UserId=u1,ActivityId=a",
                      "--format", "json")):
            with self.subTest(command=args[0]):
                status, out, err = self.run_cli(*args, "-v", "--endpoint-url", server.url)
                self.assertEqual(status, 3, err)
                self.assertIn(b"[redacted]", err)
                self.assertNoSecret(out, err)


def sigv4_matches(method, base, raw_path, headers, secret, region="us-east-1"):
    """Whether the request's Authorization is what botocore signs for the
    same path, query and signed headers: botocore is the oracle."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    auth = headers.get("Authorization", "")
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    want = auth.split("Signature=")[1]
    lower = {k.lower(): v for k, v in headers.items()}
    req = AWSRequest(method=method, url=base + raw_path,
                     headers={h: lower[h] for h in signed if h in lower})
    req.context["timestamp"] = lower["x-amz-date"]
    signer = S3SigV4Auth(Credentials("AKIDEXAMPLE", secret), "s3", region)
    canonical = signer.canonical_request(req)
    return signer.signature(signer.string_to_sign(req, canonical), req) == want


class KeyedS3:
    """An S3 whose listing (encoding-type=url, as asked) holds `keys` and, when
    given, `foreign` keys outside the prefix asked for; an object GET finds
    its key from the raw path (so a path curl normalised finds nothing) and
    checks the signature with botocore. `short` keys answer with a body that
    ends early: Content-Length says the whole object, the connection closes
    after a few bytes."""

    def __init__(self, keys, foreign=(), short=()):
        self.keys, self.foreign, self.short = dict(keys), list(foreign), set(short)
        self.gets = []          # (raw path, key found or None, signature ok)
        srv = self

        class Handler(QuietHandler):
            def do_GET(self):
                raw, _, query = self.path.partition("?")
                q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                if self.bucket_settings(q):
                    return
                if "list-type" in q:
                    prefix = q.get("prefix", "")
                    keys = [k for k in sorted(srv.keys) if k.startswith(prefix)]
                    keys += srv.foreign if keys else []
                    items = "".join(
                        f"<Contents><Key>{urllib.parse.quote(k, safe='/')}</Key>"
                        f"<LastModified>2025-07-12T08:00:01.000Z</LastModified>"
                        f"<ETag>&quot;x&quot;</ETag><Size>{len(srv.keys.get(k, b''))}</Size>"
                        f"</Contents>" for k in keys)
                    return self.send(200, (
                        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                        f"<Name>b</Name><EncodingType>url</EncodingType>"
                        f"<IsTruncated>false</IsTruncated>{items}</ListBucketResult>").encode())
                key = urllib.parse.unquote(raw[len("/b/"):]) if raw.startswith("/b/") else None
                ok = sigv4_matches("GET", srv.url, self.path, dict(self.headers), SECRET_KEY)
                srv.gets.append((raw, key if key in srv.keys else None, ok))
                if key not in srv.keys or not ok:
                    return self.send(404 if ok else 403,
                                     b"<Error><Code>NoSuchKey</Code></Error>" if ok else
                                     b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
                body = srv.keys[key]
                if key in srv.short:
                    self.send(200, body[:10], length=len(body))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send(200, body)

        self.server, self.url = serve(Handler)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def record(user):
    return json.dumps({
        "timestamp": "2025-07-12T08:00:00.000001", "eventName": "INSERT", "userId": user,
        "activityId": "a", "awsRegion": "us-east-1", "eventSource": "aws:dynamodb",
        "newImage": {"UserId": {"S": user}, "ActivityId": {"S": "a"}}}).encode()


class KeyTest(Case):
    """Case 13: what a listing returns is taken as listed, and only under the
    prefix asked for; a body that ends early says so."""
    HOUR = "audit-logs/2025/07/12/08/"

    def verify(self, server, *extra):
        report = os.path.join(self.dir, "report")
        p = subprocess.run([BINARY, "verify", "s3://b/audit-logs/", *RANGE, "--endpoint-url",
                            server.url, "--report", report, *extra], capture_output=True,
                           env=aws_env(AWS_SECRET_ACCESS_KEY=SECRET_KEY), timeout=120)
        err = p.stderr.decode("utf-8", "replace")
        with open(os.path.join(report, "report.json")) as f:
            return p.returncode, json.load(f), err

    def serve(self, **kw):
        server = KeyedS3(**kw)
        self.addCleanup(server.stop)
        return server

    def test_dot_segments_and_odd_keys_are_fetched_as_listed(self):
        """curl used to squash "/../" and "/./" in the path: the GET asked
        for another key than the one listed (or one whose signature did not
        fit) and the object was reported gone."""
        odd = [self.HOUR + "x/../u1-a.json", self.HOUR + "./u2-a.json",
               self.HOUR + "x//u3-a.json", self.HOUR + "u4%2Fa.json",
               self.HOUR + "x/./../u5 a+b.json"]
        keys = {k: record(f"u{i + 1}") for i, k in enumerate(odd)}
        server = self.serve(keys=keys)
        status, rep, err = self.verify(server)
        # Read, every one: the only findings are the names, which are not
        # the writer's <userId>-<activityId>.json.
        self.assertEqual(status, 1, err)
        self.assertEqual({a["kind"] for a in rep["anomalies"]}, {"KEY_MISMATCH"}, err)
        self.assertEqual(rep["summary"]["objects"], len(odd))
        self.assertEqual(rep["summary"]["valid"], len(odd), rep["summary"])
        self.assertEqual(sorted(k for _, k, _ in server.gets), sorted(odd), server.gets)
        self.assertTrue(all(ok for _, _, ok in server.gets), server.gets)

    def test_keys_outside_the_prefix_are_ignored_and_counted(self):
        keys = {self.HOUR + "u1-a.json": record("u1")}
        foreign = ["other/2025/07/12/08/u9-a.json", "audit-logsX/2025/07/12/08/u8-a.json",
                   "../audit-logs/2025/07/12/08/u7-a.json"]
        server = self.serve(keys=keys, foreign=foreign)
        status, rep, err = self.verify(server, "--format", "md")
        self.assertEqual(status, 0, err)
        self.assertEqual(rep["summary"]["objects"], 1)
        # Each hour prefix listed answers the same foreign keys.
        self.assertGreaterEqual(rep["run"]["bucket"]["keys_outside_prefix"], len(foreign))
        self.assertEqual([k for _, k, _ in server.gets], [self.HOUR + "u1-a.json"])
        with open(os.path.join(self.dir, "report", "report.md")) as f:
            self.assertIn("keys outside the prefix: ignored", f.read())

    def test_a_body_that_ends_early_says_so(self):
        """It used to be reported as "HTTP 200"."""
        key = self.HOUR + "u1-a.json"
        server = self.serve(keys={key: record("u1")}, short=[key])
        status, rep, err = self.verify(server)
        self.assertEqual(status, 3, err)
        n = len(record("u1"))
        self.assertIn(f"the body ended after 10 of {n} bytes", err)
        self.assertIn(f"the body ended after 10 of {n} bytes", rep["run"]["error"])
        self.assertFalse(rep["run"]["complete"])
        self.assertEqual(rep["run"]["verdict"], "incomplete")


class MotoKeyTest(MotoCase):
    """The same keys stored by a real S3 implementation (moto): put with
    boto3, listed and fetched by ddbaudit, every object's own bytes."""

    def test_dot_segment_keys_round_trip(self):
        hour = "audit-logs/2025/07/12/08/"
        odd = [hour + "x/../u1-a.json", hour + "./u2-a.json", hour + "x//u3-a.json",
               hour + "u4%2Fa.json"]
        self.s3.create_bucket(Bucket="odd-keys")
        for i, k in enumerate(odd):
            self.s3.put_object(Bucket="odd-keys", Key=k, Body=record(f"u{i + 1}"))
        p = subprocess.run([BINARY, "verify", "s3://odd-keys/audit-logs/", *RANGE,
                            "--endpoint-url", self.moto.url, "--format", "json"],
                           capture_output=True, timeout=120)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 1, err)
        rep = json.loads(p.stdout)
        self.assertEqual(rep["summary"]["objects"], len(odd), err)
        self.assertEqual(rep["summary"]["valid"], len(odd), rep["anomalies"])
        self.assertEqual({a["kind"] for a in rep["anomalies"]},
                         {"KEY_MISMATCH", "UNVERSIONED_BUCKET"}, rep["anomalies"])


if __name__ == "__main__":
    main()
