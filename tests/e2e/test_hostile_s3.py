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

from harness import BINARY, ROOT, Case, main

# How long a stalled answer is held: far past every wait of the test, so
# that only the signal can end the run.
HOLD_SECONDS = 600
# A bound on "ends within a second or two", generous for loaded machines.
WAIT = 30

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


class HostileS3:
    """A one-bucket S3 on loopback whose listing (`list_mode`) or object GET
    (`get_mode`) is answered "ok", "silent" (the request is read, nothing is
    ever answered), "trickle" (headers, then one body byte a second) or, for
    listings, "endless" (every page truncated, with a new token). `stalled`
    is set once a stalled answer has begun (or, endless, after 3 pages)."""

    def __init__(self, list_mode="ok", get_mode="ok"):
        self.list_mode, self.get_mode = list_mode, get_mode
        self.stalled = threading.Event()
        self.closing = threading.Event()
        self.pages = 0
        self.requests = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, body, ctype="application/xml"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
                if "versioning" in q:
                    return self.send(200, b"<VersioningConfiguration>"
                                          b"<Status>Enabled</Status></VersioningConfiguration>")
                if "object-lock" in q:
                    return self.send(404, b"<Error><Code>ObjectLockConfigurationNotFoundError"
                                          b"</Code></Error>")
                if "list-type" in q or "versions" in q:
                    return self.list(q)
                if srv.get_mode != "ok":
                    return self.stall(srv.get_mode, len(RECORD))
                self.send(200, RECORD, "application/json")

            def list(self, q):
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
                self.send(200, b"")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

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


if __name__ == "__main__":
    main()
