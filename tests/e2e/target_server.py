"""A stream processor for the replay tests, run in the test's own process:
it accepts POSTed batches ({"Records": [...]}) and records, in arrival
order, every record it accepted. It can be told to fail: the first N
attempts of every batch (a status code), every batch holding a poison
sequence number (500), or a partial failure (batchItemFailures) naming a
sequence number the first time it is seen; and to take a while per batch."""
import http.server
import json
import socketserver
import threading
import time


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
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body=b""):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                records = json.loads(self.rfile.read(n))["Records"]
                if server.delay:
                    time.sleep(server.delay)
                with server.lock:
                    server.batches += 1
                    if server.fail_first > 0:
                        server.fail_first -= 1
                        return self.reply(server.fail_status, b"injected")
                    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
                    if server.poison & set(seqs):
                        return self.reply(500, b"poison record")
                    failed = [s for s in seqs if s in server.partial_once]
                    if failed:
                        server.partial_once -= set(failed)
                        first = seqs.index(min(failed))
                        server.accepted += records[:first]
                        body = json.dumps({"batchItemFailures": [
                            {"itemIdentifier": s} for s in failed]}).encode()
                        return self.reply(200, body)
                    server.accepted += records
                return self.reply(200, b"")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                pass  # a client killed mid-request is what one test does

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
