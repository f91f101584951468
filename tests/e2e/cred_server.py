"""A local stand-in for the container credentials endpoint and EC2 instance
metadata (IMDSv2), run in the test's own process. It hands out the keys it
was given, checks the Authorization header (container) and the session token
(IMDS), and logs every request so tests can assert the protocol's order."""
import datetime
import http.server
import json
import socketserver
import threading


class CredServer:
    def __init__(self, access_key, secret_key, token="session-token-xyz",
                 auth="Bearer container-auth-secret", lifetime_s=3600):
        self.creds = (access_key, secret_key, token)
        self.auth, self.lifetime_s = auth, lifetime_s
        self.log = []  # (method, path, headers dict)
        self.imds_token = "imds-session-token-123"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def answer(self, status, body, ctype="application/json"):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def creds_json(self):
                exp = (datetime.datetime.now(datetime.timezone.utc)
                       + datetime.timedelta(seconds=server.lifetime_s))
                ak, sk, tok = server.creds
                return json.dumps({"Code": "Success", "AccessKeyId": ak, "SecretAccessKey": sk,
                                   "Token": tok, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")})

            def do_PUT(self):
                server.log.append(("PUT", self.path, dict(self.headers)))
                if self.path == "/latest/api/token" and \
                        self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self.answer(200, server.imds_token, "text/plain")
                self.answer(400, "bad token request", "text/plain")

            def do_GET(self):
                server.log.append(("GET", self.path, dict(self.headers)))
                if self.path.startswith("/latest/meta-data/"):
                    if self.headers.get("X-aws-ec2-metadata-token") != server.imds_token:
                        return self.answer(401, "", "text/plain")
                    if self.path == "/latest/meta-data/iam/security-credentials/":
                        return self.answer(200, "audit-role\n", "text/plain")
                    if self.path == "/latest/meta-data/iam/security-credentials/audit-role":
                        return self.answer(200, self.creds_json())
                    return self.answer(404, "", "text/plain")
                if self.path.startswith("/creds"):
                    if self.headers.get("Authorization") != server.auth:
                        return self.answer(403, '{"message":"denied"}')
                    return self.answer(200, self.creds_json())
                self.answer(404, "", "text/plain")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 64

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
