"""A DynamoDB proxy that throttles, for the end-to-end tests: it forwards to
an upstream (moto_server), and makes BatchWriteItem hard: every third call is
refused with 400 ProvisionedThroughputExceededException, and of the others
only the first half of the writes is forwarded, the rest answered as
UnprocessedItems, as DynamoDB does under load. It counts what it did."""
import http.client
import http.server
import json
import socketserver
import threading
import urllib.parse


class ThrottleProxy:
    """fail_after: after that many BatchWriteItem calls are let through, every
    later one is refused with a 400 ValidationException (a run that dies
    half way); throttle=False lets the others through untouched."""

    def __init__(self, upstream, fail_after=None, throttle=True):
        self.fail_after, self.throttle, self.passed = fail_after, throttle, 0
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.batches = self.refused = self.unprocessed = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                if target.endswith(".BatchWriteItem"):
                    status, answer = proxy.batch(body, dict(self.headers))
                else:
                    status, answer = proxy.forward(body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, body, headers):
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        conn.request("POST", "/", body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    def batch(self, body, headers):
        with self.lock:
            self.batches += 1
            n = self.batches
            if self.fail_after is not None and self.passed >= self.fail_after:
                return 400, json.dumps({
                    "__type": "com.amazon.coral.validate#ValidationException",
                    "message": "injected: the run dies here"}).encode()
            self.passed += 1
        if not self.throttle:
            return self.forward(body, headers)
        if n % 3 == 1:
            with self.lock:
                self.refused += 1
            return 400, json.dumps({
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was "
                           "exceeded."}).encode()
        req = json.loads(body)
        (table, writes), = req["RequestItems"].items()
        keep, rest = writes[:max(1, len(writes) // 2)], writes[max(1, len(writes) // 2):]
        req["RequestItems"][table] = keep
        status, data = self.forward(json.dumps(req).encode(), headers)
        if status != 200 or not rest:
            return status, data
        with self.lock:
            self.unprocessed += len(rest)
        answer = json.loads(data)
        answer["UnprocessedItems"] = {table: rest}
        return 200, json.dumps(answer).encode()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
