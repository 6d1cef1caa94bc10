"""kmsemu_metadata - the instance metadata services that hand out role credentials, on plain
HTTP as on the real hosts: AWS EC2's IMDSv2 (PUT /latest/api/token, then
/latest/meta-data/iam/security-credentials/<role> with X-aws-ec2-metadata-token) and Tencent
Cloud CVM's (/latest/meta-data/cam/security-credentials/<role>). Credentials come from the
emulated accounts (kmsemu_aws.AwsKms.role_credentials, kmsemu_tencent.TencentKms...), so the
KMS accepts exactly what the metadata service handed out.
"""

import http.server
import json
import secrets
import socketserver
import sys
import threading
import time

IMDS_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
IMDS_TOKEN_HEADER = "X-aws-ec2-metadata-token"
IMDS_TTL_MAX = 21600
AWS_CREDS = "/latest/meta-data/iam/security-credentials/"
TENCENT_CREDS = "/latest/meta-data/cam/security-credentials/"


class MetadataServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, quiet):
        self.state, self.quiet = state, quiet
        self.tokens = {}
        self.tokens_lock = threading.Lock()
        super().__init__(addr, MetadataHandler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class MetadataHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("kmsemu-metadata: %s\n" % (fmt % args))

    def do_GET(self):
        self.dispatch()

    do_PUT = do_POST = do_DELETE = do_GET

    def reply(self, status, body, ctype="text/plain", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        return status

    def dispatch(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(min(n, 65536))
        path = self.path.split("?", 1)[0]
        entry = {"t": time.time(), "method": self.command, "path": path, "metadata": True,
                 "status": None, "fault": None, "auth": "none"}
        try:
            if path.startswith("/latest/api/token") or path.startswith(AWS_CREDS) or \
                    path.rstrip("/") == AWS_CREDS.rstrip("/"):
                entry["status"] = self.aws(path, entry)
            elif path.startswith(TENCENT_CREDS) or path.rstrip("/") == TENCENT_CREDS.rstrip("/"):
                entry["status"] = self.tencent(path, entry)
            else:
                entry["status"] = self.reply(404, "Not Found")
        finally:
            st = self.server.state
            with st.lock:
                st.log.append(entry)

    # --- AWS IMDSv2
    def aws(self, path, entry):
        aws = self.server.state.aws
        if path == "/latest/api/token":
            if self.command != "PUT":
                return self.reply(405, "Method Not Allowed")
            if self.headers.get("X-Forwarded-For"):
                return self.reply(403, "Forbidden")
            ttl = self.headers.get(IMDS_TTL_HEADER)
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= IMDS_TTL_MAX:
                return self.reply(400, "Bad Request")
            tok = secrets.token_urlsafe(42)
            with self.server.tokens_lock:
                self.server.tokens[tok] = time.monotonic() + int(ttl)
            entry["action"] = "token"
            return self.reply(200, tok, headers={IMDS_TTL_HEADER: ttl})
        if self.command != "GET":
            return self.reply(405, "Method Not Allowed")
        tok = self.headers.get(IMDS_TOKEN_HEADER)
        if tok is not None:
            with self.server.tokens_lock:
                exp = self.server.tokens.get(tok)
            entry["auth"] = "valid" if exp and time.monotonic() < exp else "invalid"
            if entry["auth"] != "valid":
                return self.reply(401, "Unauthorized")
        elif aws.imdsv2_required:
            return self.reply(401, "Unauthorized")
        with aws.lock:
            role = aws.role
        if role is None:
            return self.reply(404, "Not Found")
        if path.rstrip("/") == AWS_CREDS.rstrip("/"):
            return self.reply(200, role["name"])
        if path[len(AWS_CREDS):] != role["name"]:
            return self.reply(404, "Not Found")
        entry["action"] = "credentials"
        return self.reply(200, json.dumps(aws.role_credentials(), indent=2))

    # --- Tencent Cloud CVM
    def tencent(self, path, entry):
        tc = self.server.state.tencent
        if self.command != "GET":
            return self.reply(405, "Method Not Allowed")
        with tc.lock:
            role = tc.role
        if role is None:
            return self.reply(404, "Not Found")
        if path.rstrip("/") == TENCENT_CREDS.rstrip("/"):
            return self.reply(200, role["name"])
        if path[len(TENCENT_CREDS):] != role["name"]:
            return self.reply(404, "Not Found")
        entry["action"] = "credentials"
        return self.reply(200, json.dumps(tc.role_credentials()), "application/json")


def start(state, port, quiet):
    srv = MetadataServer(("127.0.0.1", port), state, quiet)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                     daemon=True).start()
    return srv
