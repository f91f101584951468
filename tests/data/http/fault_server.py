#!/usr/bin/env python3
"""A small HTTP/1.1 server that fails on purpose, for the HTTP layer's tests.
Prints its port on the first line of stdout, then serves until stdin closes.

Paths (ID keeps per-request-family counters):
  /ok                         200 "hello"
  /fail/STATUS/N/ID           STATUS for the first N requests, then 200 "ok ID"
  /retry-after/SECS/ID        503 with Retry-After: SECS once, then 200
  /drop/N/ID                  close the connection without answering N times, then 200
  /truncate/N/ID              promise 100 bytes, send 10 and close, N times, then 200
  /s3timeout/ID               400 with an S3 RequestTimeout error once, then 200
  /big/N                      N bytes
  /trickle                    promise 1000 bytes, send one every 0.1 s (100 s in all)
  /headers                    the request headers, as text
  /count/ID                   how many requests ID has had
  /connections                how many TCP connections were accepted
"""
import os
import http.server
import socketserver
import sys
import threading
import time

counts = {}
connections = 0
lock = threading.Lock()


def seen(key):
    with lock:
        counts[key] = counts.get(key, 0) + 1
        return counts[key]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        global connections
        with lock:
            connections += 1
        super().setup()

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        self.do_GET()

    def do_GET(self):
        p = self.path.strip("/").split("/")
        if p[0] == "ok":
            return self.reply(200, b"hello", [("ETag", '"abc"'), ("x-amz-version-id", "v1"),
                                              ("Last-Modified", "Sat, 12 Jul 2025 08:27:50 GMT")])
        if p[0] == "fail":
            status, n, key = int(p[1]), int(p[2]), "/".join(p)
            if seen(key) <= n:
                return self.reply(status, b"<Error><Code>InternalError</Code></Error>")
            return self.reply(200, ("ok " + p[3]).encode())
        if p[0] == "retry-after":
            if seen("/".join(p)) == 1:
                return self.reply(503, b"slow down", [("Retry-After", p[1])])
            return self.reply(200, b"ok")
        if p[0] == "drop":
            if seen("/".join(p)) <= int(p[1]):
                self.close_connection = True
                return
            return self.reply(200, b"ok")
        if p[0] == "truncate":
            if seen("/".join(p)) <= int(p[1]):
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"0123456789")
                self.wfile.flush()
                self.close_connection = True
                return
            return self.reply(200, b"x" * 100)
        if p[0] == "s3timeout":
            if seen("/".join(p)) == 1:
                return self.reply(400, b"<Error><Code>RequestTimeout</Code></Error>")
            return self.reply(200, b"ok")
        if p[0] == "trickle":
            # Fast enough for any low-speed floor of a byte a second, far
            # too slow to finish: only a whole-attempt limit ends it.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"t")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the client gave up, as it should
            self.close_connection = True
            return
        if p[0] == "big":
            return self.reply(200, b"b" * int(p[1]))
        if p[0] == "headers":
            return self.reply(200, str(self.headers).encode())
        if p[0] == "count":
            with lock:
                return self.reply(200, str(counts.get(p[1], 0)).encode())
        if p[0] == "connections":
            with lock:
                return self.reply(200, str(connections).encode())
        return self.reply(404, b"no such path")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops SYNs of 64 parallel connects

    def handle_error(self, request, client_address):
        pass  # clients dropping connections is what these tests do


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    os.write(1, b"%d\n" % srv.server_address[1])  # one write: the reader stops at the newline
    sys.stdin.read()  # the test closes our stdin when done


if __name__ == "__main__":
    main()
