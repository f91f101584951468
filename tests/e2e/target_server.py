"""A stream processor for the replay tests, run in the test's own process:
it accepts POSTed batches ({"Records": [...]}) and records, in arrival
order, every record it accepted. It can be told to fail: the first N
attempts of every batch (a status code), every batch holding a poison
sequence number (500), or a partial failure (batchItemFailures) naming a
sequence number the first time it is seen; and to take a while per batch.

It can also throttle the first N batches (429 with a Retry-After), and it
counts the OPTIONS requests a preflight sends. A hostile processor answers
its batches with whatever `answer` gives (bytes, or a function of the
batch's records): text that is not JSON, a padded partial failure.

As a Lambda endpoint (lambda_creds set) it answers the Invoke API: every
request's SigV4 signature is recomputed with botocore from the headers it
signed, a mismatch is a 403, and a poison record is a function error
(X-Amz-Function-Error); answers name the executed version. GetFunction
answers for the functions it knows (all, unless `functions` lists them).
A processor callback sees each accepted batch.

As an SQS endpoint (sqs_creds set) it takes GetQueueAttributes and
SendMessage (AWS's JSON protocol), checks each signature with botocore,
and keeps the region each request was signed for and the messages."""
import hashlib
import http.server
import json
import re
import signal
import socketserver
import threading
import time
import urllib.parse

AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def check_sigv4(method, path, headers, body, creds, service):
    """Recomputes the request's signature with botocore; returns None when it
    matches, else why not."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    m = AUTH_RE.match(headers.get("Authorization", ""))
    if not m:
        return "no SigV4 Authorization header"
    key, date, region, svc, signed, sig = m.groups()
    if key != creds[0] or svc != service:
        return f"credential scope names {key} and {svc}"
    names = signed.split(";")
    for need in ("host", "x-amz-date"):
        if need not in names:
            return f"{need} is not signed"
    if creds[2] and "x-amz-security-token" not in names:
        return "the session token is not signed"
    hdrs = {n: headers[n] for n in names}
    req = AWSRequest(method=method, url="http://" + headers["Host"] + path, data=body,
                     headers=hdrs)
    req.context["timestamp"] = headers["X-Amz-Date"]
    if not headers["X-Amz-Date"].startswith(date):
        return "X-Amz-Date is not the credential's date"
    auth = SigV4Auth(Credentials(*creds), service, region)
    auth._modify_request_before_signing(req)
    want = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
    return None if want == sig else f"signature {sig} != botocore's {want}"


class TargetServer:
    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = []      # records, in the order they were accepted
        self.batches = 0        # POSTs received
        self.fail_first = 0     # fail the first N POSTs with fail_status
        self.fail_status = 500
        self.poison = set()     # sequence numbers that fail their whole batch
        self.partial_once = set()  # sequence numbers reported failed once
        self.delay = 0.0
        self.lambda_creds = None  # (key, secret, token): act as Lambda's Invoke API
        self.invocations = []     # (function, qualifier, invocation type) per Invoke
        self.bad_signatures = []  # why, per rejected request
        self.processor = None     # called with each accepted list of records
        self.processor_on_failure = None  # called once, at the first injected failure
        self.active = 0           # requests being handled now, and the most at once
        self.max_active = 0
        self.throttle_first = 0   # answer the first N batches 429...
        self.retry_after = None   # ...with this Retry-After
        self.options = 0          # OPTIONS requests (preflights)
        self.functions = None     # Lambda: the functions that exist (None: any)
        self.executed_version = "7"
        self.account = "123456789012"
        self.sqs_creds = None     # (key, secret, token): act as SQS
        self.sqs_regions = []     # the region each SQS request was signed for
        self.sqs_messages = []
        self.answer = None        # the 2xx body for accepted batches: bytes or f(records)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for h in headers:
                    self.send_header(*h)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_OPTIONS(self):
                with server.lock:
                    server.options += 1
                self.reply(204)

            def function_arn(self, name, qualifier):
                if name.startswith("arn:"):
                    return name
                region = AUTH_RE.match(self.headers.get("Authorization", "")).group(3)
                arn = f"arn:aws:lambda:{region}:{server.account}:function:{name}"
                return arn + (":" + qualifier if qualifier else "")

            def do_GET(self):
                """Lambda's GetFunction."""
                url = urllib.parse.urlsplit(self.path)
                m = re.match(r"^/2015-03-31/functions/([^/]+)$", url.path)
                if not server.lambda_creds or not m:
                    return self.reply(404, b'{"message":"unknown path"}')
                why = check_sigv4("GET", self.path, self.headers, b"", server.lambda_creds,
                                  "lambda")
                if why:
                    with server.lock:
                        server.bad_signatures.append(why)
                    return self.reply(403, json.dumps({"message": why}).encode(),
                                      [("x-amzn-ErrorType", "InvalidSignatureException")])
                name = urllib.parse.unquote(m.group(1))
                q = urllib.parse.parse_qs(url.query).get("Qualifier", [None])[0]
                if server.functions is not None and (name, q) not in server.functions:
                    msg = {"Type": "User", "message": f"Function not found: {name}"}
                    return self.reply(404, json.dumps(msg).encode(),
                                      [("x-amzn-ErrorType", "ResourceNotFoundException")])
                cfg = {"FunctionName": name, "FunctionArn": self.function_arn(name, q),
                       "Version": server.executed_version if q else "$LATEST"}
                self.reply(200, json.dumps({"Configuration": cfg}).encode())

            def sqs(self, body):
                """GetQueueAttributes and SendMessage, signed."""
                why = check_sigv4("POST", self.path, self.headers, body, server.sqs_creds, "sqs")
                if why:
                    with server.lock:
                        server.bad_signatures.append(why)
                    return self.reply(403, json.dumps({"message": why}).encode())
                region = AUTH_RE.match(self.headers["Authorization"]).group(3)
                req = json.loads(body)
                with server.lock:
                    server.sqs_regions.append(region)
                action = self.headers["X-Amz-Target"].split(".", 1)[1]
                if action == "GetQueueAttributes":
                    answer = {"Attributes": {"MaximumMessageSize": "262144"}}
                else:
                    text = req["MessageBody"]
                    with server.lock:
                        server.sqs_messages.append(text)
                    answer = {"MessageId": "m%d" % len(server.sqs_messages),
                              "MD5OfMessageBody": hashlib.md5(text.encode()).hexdigest()}
                self.reply(200, json.dumps(answer).encode())

            def invoke(self, body):
                """Lambda's Invoke: checks the path and the signature; False
                when it answered with an error."""
                url = urllib.parse.urlsplit(self.path)
                m = re.match(r"^/2015-03-31/functions/([^/]+)/invocations$", url.path)
                if not m:
                    self.reply(404, b'{"message":"unknown path"}')
                    return False
                why = check_sigv4("POST", self.path, self.headers, body, server.lambda_creds,
                                  "lambda")
                if why:
                    with server.lock:
                        server.bad_signatures.append(why)
                    self.reply(403, json.dumps({"message": why}).encode())
                    return False
                q = urllib.parse.parse_qs(url.query).get("Qualifier", [None])[0]
                name = urllib.parse.unquote(m.group(1))
                if server.functions is not None and (name, q) not in server.functions:
                    msg = {"Type": "User", "message": f"Function not found: {name}"}
                    self.reply(404, json.dumps(msg).encode(),
                               [("x-amzn-ErrorType", "ResourceNotFoundException")])
                    return False
                with server.lock:
                    server.invocations.append((urllib.parse.unquote(m.group(1)), q,
                                               self.headers.get("X-Amz-Invocation-Type")))
                return True

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if server.sqs_creds and self.headers.get("X-Amz-Target", "").startswith("AmazonSQS."):
                    return self.sqs(body)
                if server.lambda_creds and not self.invoke(body):
                    return
                records = json.loads(body)["Records"]
                with server.lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    answer = self.handle_batch(records)
                finally:
                    with server.lock:  # done before answering: the client may go on
                        server.active -= 1
                self.reply(*answer)

            def handle_batch(self, records):
                if server.delay:
                    time.sleep(server.delay)
                with server.lock:
                    server.batches += 1
                    if server.throttle_first > 0:
                        server.throttle_first -= 1
                        hdrs = [("Retry-After", server.retry_after)] if server.retry_after else []
                        if server.lambda_creds:
                            hdrs.append(("x-amzn-ErrorType", "TooManyRequestsException"))
                        return (429, b'{"message":"Rate exceeded"}', hdrs)
                    if server.fail_first > 0:
                        server.fail_first -= 1
                        hook, server.processor_on_failure = server.processor_on_failure, None
                        if hook:
                            hook()
                        return (server.fail_status, b"injected")
                    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
                    if server.poison & set(seqs) and server.lambda_creds:
                        err = b'{"errorMessage":"poison record","errorType":"ValueError"}'
                        return (200, err, [("X-Amz-Function-Error", "Unhandled"),
                                           ("X-Amz-Executed-Version", server.executed_version)])
                    if server.poison & set(seqs):
                        return (500, b"poison record")
                    failed = [s for s in seqs if s in server.partial_once]
                    if failed:
                        server.partial_once -= set(failed)
                        first = seqs.index(min(failed))
                        server.accepted += records[:first]
                        body = json.dumps({"batchItemFailures": [
                            {"itemIdentifier": s} for s in failed]}).encode()
                        return (200, body)
                    if server.processor:
                        try:
                            server.processor(records)
                        except Exception as e:  # the processor failed: so does the batch
                            return (500, str(e).encode())
                    server.accepted += records
                    answer = server.answer
                if answer is not None:
                    body = answer(records) if callable(answer) else answer
                    hdrs = [("X-Amz-Executed-Version", server.executed_version)]
                    return (200, body, hdrs if server.lambda_creds else [])
                if server.lambda_creds:
                    return (200, b"null", [("X-Amz-Executed-Version", server.executed_version)])
                return (200, b"")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                pass  # a client killed mid-request is what one test does

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill_after(self, proc, n, timeout=60, sig=signal.SIGKILL):
        """Signals proc (SIGKILL) once n records were accepted (or it ended,
        or the timeout passed), and waits for it."""
        deadline = time.time() + timeout
        while len(self.accepted) < n and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(sig)
        proc.wait()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
