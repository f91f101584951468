"""Local stand-ins run in the test's own process: the container credentials
endpoint and EC2 instance metadata (IMDSv2, and IMDSv1 when the token PUT is
made to fail with `token_status`), an SSO portal (GetRoleCredentials), and a
recording proxy that forwards to an upstream server (moto) and keeps each
request's headers and body. They hand out the keys they were given, check
the Authorization header (container), the session token (IMDS) and the
bearer token (SSO), and log every request so tests can assert the
protocol's order."""
import datetime
import http.client
import http.server
import json
import socketserver
import threading
import urllib.parse


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 64


class CredServer:
    def __init__(self, access_key, secret_key, token="session-token-xyz",
                 auth="Bearer container-auth-secret", lifetime_s=3600):
        self.creds = (access_key, secret_key, token)
        self.auth, self.lifetime_s = auth, lifetime_s
        self.log = []  # (method, path, headers dict)
        self.imds_token = "imds-session-token-123"
        # None: IMDSv2 as EC2 serves it; a status: the token PUT fails with it
        # and the metadata is served without a token (IMDSv1).
        self.token_status = None
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
                if server.token_status:
                    return self.answer(server.token_status, "", "text/plain")
                if self.path == "/latest/api/token" and \
                        self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self.answer(200, server.imds_token, "text/plain")
                self.answer(400, "bad token request", "text/plain")

            def do_GET(self):
                server.log.append(("GET", self.path, dict(self.headers)))
                if self.path.startswith("/latest/meta-data/"):
                    token = self.headers.get("X-aws-ec2-metadata-token")
                    if token != (None if server.token_status else server.imds_token):
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

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SsoPortal:
    """GetRoleCredentials of the SSO portal: GET /federation/credentials
    ?account_id=&role_name= with the x-amz-sso_bearer_token header. Answers
    the keys it was given for the one token, account and role it knows; 401
    for another token, 403 for another account or role."""

    def __init__(self, access_key, secret_key, token, account, role,
                 session_token="sso-session-token", lifetime_s=3600):
        self.creds = (access_key, secret_key, session_token)
        self.token, self.account, self.role = token, account, role
        self.lifetime_s = lifetime_s
        self.log = []  # (path, query dict, headers dict)
        portal = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                portal.log.append((u.path, q, dict(self.headers)))
                if u.path != "/federation/credentials":
                    return self.answer(404, {"message": "no such operation"})
                if self.headers.get("x-amz-sso_bearer_token") != portal.token:
                    return self.answer(401, {"message": "Session token not found or invalid"})
                if q.get("account_id") != portal.account or q.get("role_name") != portal.role:
                    return self.answer(403, {"message": "No access"})
                ak, sk, st = portal.creds
                exp_ms = int((datetime.datetime.now(datetime.timezone.utc).timestamp()
                              + portal.lifetime_s) * 1000)
                self.answer(200, {"roleCredentials": {
                    "accessKeyId": ak, "secretAccessKey": sk, "sessionToken": st,
                    "expiration": exp_ms}})

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class RecordingProxy:
    """Forwards every request to upstream unchanged and records it as
    (method, path, headers dict, body bytes): for checking what a client
    sent to STS while moto still answers it. `intercept`, when set, is
    called with (method, path, headers) and may answer instead, returning
    (status, headers dict, body bytes), or None to forward."""

    def __init__(self, upstream):
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.log = []
        self.intercept = None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                proxy.log.append((self.command, self.path, dict(self.headers), body))
                own = proxy.intercept and proxy.intercept(self.command, self.path,
                                                          dict(self.headers))
                if own:
                    status, headers, data = own
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                conn.request(self.command, self.path, body=body or None,
                             headers={k: v for k, v in self.headers.items()
                                      if k.lower() not in ("connection", "keep-alive")})
                resp = conn.getresponse()
                data = resp.read()
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

            do_GET = do_PUT = do_POST = do_HEAD = handle_any

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forms(self):
        """The form bodies of the POSTs, decoded, with the access key id of
        the Authorization header that signed each one."""
        out = []
        for m, p, h, b in self.log:
            if m != "POST":
                continue
            auth = h.get("Authorization", "")
            key = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""
            out.append((dict(urllib.parse.parse_qsl(b.decode())), key, auth))
        return out

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
