"""A small HTTP proxy for the end-to-end tests, run in the test's own process:
it forwards every request to an upstream server (moto_server), keeps a log of
what was asked (method, path, query), and injects faults on request: a status
code (500, 503 SlowDown), a dropped connection or a corrupted body, for the
first N attempts of the requests a rule matches, or an upstream answer rewritten
by a function (a listing that lies). Given an ssl.SSLContext, it serves
HTTPS."""
import http.client
import http.server
import socket
import socketserver
import threading
import urllib.parse


class Rule:
    """Fails requests whose method and path match: `times` attempts per
    distinct request (method + path + query), with `status`; when status is
    None, by dropping the connection before answering; when it is "corrupt",
    by changing one byte of the upstream's body (headers, ETag included, left
    as they are); when it is "rewrite", by passing the upstream's body and the
    request's query (a dict) through `rewrite`, which returns the new body; when
    it is "hold", by holding the request (its `arrived` event set) until the
    test sets `release`, then forwarding it as it came: a test pauses a client
    there and lets another go ahead, without sleeping."""

    def __init__(self, method, path_contains, status, times, every=1, rewrite=None):
        self.method, self.path_contains = method, path_contains
        self.status, self.times, self.every = status, times, every
        self.rewrite = rewrite
        self.arrived, self.release = threading.Event(), threading.Event()
        self.seen = {}      # request -> attempts failed so far
        self.matched = 0    # distinct requests matched

    def applies(self, method, target):
        if method != self.method or self.path_contains not in target:
            return False
        if target not in self.seen:
            self.matched += 1
            # Only every n-th distinct request is made to fail.
            self.seen[target] = 0 if (self.matched - 1) % self.every == 0 else self.times
        if self.seen[target] >= self.times:
            return False
        self.seen[target] += 1
        return True


class FaultProxy:
    def __init__(self, upstream, tls=None):
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.log = []          # (method, path, query dict)
        self.rules = []
        self.injected = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                split = urllib.parse.urlsplit(self.path)
                with proxy.lock:
                    proxy.log.append((self.command, urllib.parse.unquote(split.path),
                                      dict(urllib.parse.parse_qsl(split.query,
                                                                  keep_blank_values=True))))
                    rule = next((r for r in proxy.rules if r.applies(self.command, self.path)),
                                None)
                    if rule:
                        proxy.injected += 1
                if rule and rule.status == "hold":
                    rule.arrived.set()
                    rule.release.wait(120)  # a bound, should the test die first
                    rule = None
                if rule and rule.status is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if rule and rule.status not in ("corrupt", "rewrite"):
                    code = "SlowDown" if rule.status == 503 else "InternalError"
                    msg = (f"<?xml version=\"1.0\"?><Error><Code>{code}</Code>"
                           f"<Message>injected</Message></Error>").encode()
                    self.send_response(rule.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if rule and rule.status == "rewrite":
                    data = rule.rewrite(data, dict(urllib.parse.parse_qsl(
                        split.query, keep_blank_values=True)))
                elif rule and data:
                    data = bytes([data[0] ^ 0x20]) + data[1:]
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                         "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 256  # the default 5 drops SYNs of 64 parallel connects

            def handle_error(self, request, client_address):
                pass  # dropped connections are what this proxy is for

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.log.clear()
            self.rules.clear()
            self.injected = 0

    def listings(self, bucket):
        """The prefixes of the bucket's listing requests, in order."""
        with self.lock:
            return [q.get("prefix", "") for m, p, q in self.log
                    if m == "GET" and p.strip("/") == bucket
                    and ("list-type" in q or "versions" in q)]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
