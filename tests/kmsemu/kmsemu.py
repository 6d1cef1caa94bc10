#!/usr/bin/python3
"""kmsemu - a test emulator of IBM Key Protect's HTTP API and of the IBM Cloud
IAM token endpoint, for keyd's integration tests.

It is a test double, never a KMS: key material lives in process memory, the
admin API under /_emu/ has no authentication, and it listens on 127.0.0.1 only.

Start
-----
    /usr/bin/python3 tests/kmsemu/kmsemu.py --pki DIR [--port N]
                     [--port-file FILE] [--token-ttl SECONDS] [--quiet]
    /usr/bin/python3 tests/kmsemu/kmsemu.py --make-ca DIR

Options
-------
  --pki DIR         directory with ca.pem/ca.key/server.pem/server.key; what is
                    missing is generated (a throwaway EC P-256 CA, and a server
                    certificate for DNS:localhost + IP:127.0.0.1 signed by it).
                    Clients trust DIR/ca.pem.
  --port N          TCP port on 127.0.0.1 (default 0 = ephemeral).
  --port-file FILE  once listening, write the port number here (temp + rename).
  --token-ttl S     lifetime of IAM access tokens in seconds (default 3600).
  --quiet           no per-request lines on stderr.
  --make-ca DIR     only create a separate CA + server certificate in DIR and
                    exit (for "untrusted CA" tests).

SIGTERM or SIGINT stops it cleanly (exit status 0).

Served on one HTTPS port (TLS >= 1.2)
-------------------------------------
  POST /identity/token                         IAM: API key -> bearer token
  POST /api/v2/keys/<id>/actions/wrap|unwrap|rewrap   (also ?action=<a>)
  GET  /api/v2/keys/<id>                       key (root keys: no payload)
  GET  /api/v2/keys/<id>/metadata              key metadata

Admin / test control (no auth; JSON bodies and replies)
-------------------------------------------------------
  GET    /_emu/health                      {"ok": true}
  POST   /_emu/apikeys   {"apikey": s, "instances": [s...]}
  DELETE /_emu/apikeys/<apikey>
  POST   /_emu/keys      {"instance": s, "id"?: s, "name"?: s, "material"?: b64}
  GET    /_emu/keys, GET /_emu/keys/<id>   (never the key material)
  POST   /_emu/keys/<id>/rotate  {"force"?: bool}  new key version
  POST   /_emu/keys/<id>/state   {"state": 1|2|3|5}
  GET|POST /_emu/config  {"token_ttl": seconds}
  GET|POST|DELETE /_emu/faults
         {"path_prefix": "/api/v2/keys", "kind": "status"|"delay"|"drop"|
          "garbage"|"truncated", "status": 503, "retry_after": 2,
          "seconds": 1.5, "count": N}
  GET|DELETE /_emu/log  (GET accepts ?since=<unix time>)
  GET    /_emu/stats
  POST   /_emu/reset     forget everything (keys, API keys, faults, log, stats)

See tests/kmsemu/README.md for the documented Key Protect / IAM behaviour this
follows, the sources, and where it deliberately simplifies.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - reported to the caller
    sys.stderr.write("kmsemu: python3-cryptography is required "
                     "(apt-get install python3-cryptography)\n")
    sys.exit(3)

import ipaddress

MORE_INFO = "https://cloud.ibm.com/apidocs/key-protect"
KEY_ACTION_CT = "application/vnd.ibm.kms.key_action+json"
ERROR_CT = "application/vnd.ibm.kms.error+json"
KEY_CT = "application/vnd.ibm.kms.key+json"
REGION = "local"
ACCOUNT = "kmsemu0000000000000000000000000"
MAX_BODY = 1 << 20
# Limits from IBM's Key Protect OpenAPI definition (KeyAction schema):
# plaintext maxLength 4096 (applied to the base64 string, the stricter reading),
# aad maxItems 126, each item maxLength 255.
MAX_PLAINTEXT_B64 = 4096
MAX_AAD_ITEMS = 126
MAX_AAD_LEN = 255
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
STATES = {1: "Active", 2: "Suspended", 3: "Deactivated", 5: "Destroyed"}
FAULT_KINDS = ("status", "delay", "drop", "garbage", "truncated")


# ----------------------------------------------------------------- helpers

def b64e(data):
    return base64.b64encode(data).decode("ascii")


def b64d_strict(text):
    """Standard base64 with padding, nothing else (like Go's StdEncoding)."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    return base64.b64decode(text.encode("ascii"), validate=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def jdump(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# ----------------------------------------------------------------- PKI

def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_pki(d):
    """Create what is missing of ca.pem/ca.key/server.pem/server.key in d."""
    os.makedirs(d, exist_ok=True)
    ca_pem, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    srv_pem, srv_key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    now = datetime.datetime.now(datetime.timezone.utc)
    nb, na = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=825)
    if not os.path.exists(ca_pem):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kmsemu test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME,
                               "kmsemu throwaway CA " + uuid.uuid4().hex[:8])])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False), True)
                .add_extension(ski, False)
                .sign(key, hashes.SHA256()))
        _write_private(ca_key, _key_pem(key))
        with open(ca_pem + ".tmp", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        os.replace(ca_pem + ".tmp", ca_pem)
        for p in (srv_pem, srv_key):  # a new CA invalidates an old server cert
            if os.path.exists(p):
                os.unlink(p)
    if not (os.path.exists(srv_pem) and os.path.exists(srv_key)):
        with open(ca_pem, "rb") as f:
            ca_cert = x509.load_pem_x509_certificate(f.read())
        with open(ca_key, "rb") as f:
            ca_priv = serialization.load_pem_private_key(f.read(), None)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kmsemu"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False,
                    key_agreement=True, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False), True)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH]), False)
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                    key.public_key()), False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_priv.public_key()), False)
                .sign(ca_priv, hashes.SHA256()))
        _write_private(srv_key, _key_pem(key))
        with open(srv_pem + ".tmp", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        os.replace(srv_pem + ".tmp", srv_pem)
    return srv_pem, srv_key


# ----------------------------------------------------------------- errors

class KPError(Exception):
    """A Key Protect error reply (application/vnd.ibm.kms.error+json)."""

    PHRASES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
               404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
               410: "Gone", 413: "Request Entity Too Large",
               422: "Unprocessable Entity", 429: "Too Many Requests",
               500: "Internal Server Error", 502: "Bad Gateway",
               503: "Service Unavailable", 504: "Gateway Timeout"}

    def __init__(self, status, code=None, message=None, context=None,
                 target=None, error_msg=None, headers=None):
        super().__init__(code or error_msg or str(status))
        self.status, self.code, self.message = status, code, message
        self.context, self.target = context, target
        self.error_msg, self.headers = error_msg, headers or {}

    def body(self):
        phrase = self.PHRASES.get(self.status, "Error")
        if self.error_msg is not None:
            msg = self.error_msg
        elif self.code:
            msg = "%s: %s: Please see `reasons` for more details (%s)" % (
                phrase, self.context or "Action could not be performed on key",
                self.code)
        else:
            msg = "%s: %s" % (phrase, self.context or phrase)
        res = {"errorMsg": msg}
        if self.code:
            reason = {"code": self.code, "message": self.message or phrase,
                      "status": self.status, "moreInfo": MORE_INFO}
            if self.target:
                reason["target"] = {"type": "field", "name": self.target}
            res["reasons"] = [reason]
        return {"metadata": {"collectionType": ERROR_CT, "collectionTotal": 1},
                "resources": [res]}


def unauthorized():
    # Documented (error-messages, UNAUTHORIZED_ERR): 401 with errorMsg only.
    return KPError(401, error_msg="Unauthorized: The user does not have access "
                   "to the specified resource")


def iam_error(status, code, message, details=None, req_id=None):
    now = time.time()
    body = {"errorCode": code, "errorMessage": message,
            "context": {"requestId": req_id or uuid.uuid4().hex,
                        "requestType": "incoming.Identity_Token",
                        "url": "https://iam.cloud.ibm.com",
                        "host": "kmsemu", "locale": "en_US",
                        "startTime": time.strftime("%d.%m.%Y %H:%M:%S GMT",
                                                   time.gmtime(now)),
                        "endTime": time.strftime("%d.%m.%Y %H:%M:%S GMT",
                                                 time.gmtime(now)),
                        "elapsedTime": "0", "clusterName": "kmsemu"}}
    if details:
        body["errorDetails"] = details
    return status, {"Content-Type": "application/json"}, jdump(body)


# ----------------------------------------------------------------- state

class State:
    def __init__(self, token_ttl):
        self.lock = threading.RLock()
        self.jwt_secret = secrets.token_bytes(32)
        self.token_ttl = float(token_ttl)
        self.reset()

    def reset(self):
        with self.lock:
            self.apikeys = {}   # apikey -> {"id", "instances", "iam_id", "ims_user_id"}
            self.keys = {}      # key id -> key dict
            self.faults = []
            self.fault_seq = 0
            self.log = []
            self.stats = {"tokens_issued": 0, "tokens_by_apikey": {},
                          "token_failures": 0, "requests": 0, "iam_requests": 0,
                          "kp_requests": 0, "faults_applied": 0,
                          "actions": {"wrap": 0, "unwrap": 0, "rewrap": 0},
                          "rewrapped_on_unwrap": 0, "auth": {}}

    # --- faults
    def take_fault(self, path):
        with self.lock:
            for rule in self.faults:
                if rule["remaining"] > 0 and path.startswith(rule["path_prefix"]):
                    rule["remaining"] -= 1
                    rule["applied"] += 1
                    self.stats["faults_applied"] += 1
                    out = dict(rule)
                    if rule["remaining"] <= 0:
                        self.faults.remove(rule)
                    return out
        return None

    # --- tokens (stateless HS256 JWTs; the secret never leaves the process)
    def issue_token(self, apikey):
        with self.lock:
            rec = self.apikeys[apikey]
            ttl = self.token_ttl
            self.stats["tokens_issued"] += 1
            by = self.stats["tokens_by_apikey"]
            by[apikey] = by.get(apikey, 0) + 1
        now = time.time()
        exp = now + ttl
        header = {"kid": "kmsemu", "alg": "HS256", "typ": "JWT"}
        payload = {"iam_id": rec["iam_id"], "id": rec["iam_id"],
                   "sub": rec["iam_id"], "sub_type": "ServiceId",
                   "realmid": "iam",
                   "account": {"valid": True, "bss": ACCOUNT},
                   "iat": int(now), "exp": int(exp),
                   "iss": "https://iam.cloud.ibm.com/identity",
                   "grant_type": "urn:ibm:params:oauth:grant-type:apikey",
                   "scope": "ibm openid", "client_id": "default",
                   "acr": 1, "amr": ["pwd"],
                   "jti": uuid.uuid4().hex,
                   # emulator-private claims
                   "kmsemu_key": rec["id"], "kmsemu_exp": exp}
        signing = b64url(jdump(header)) + "." + b64url(jdump(payload))
        sig = hmac.new(self.jwt_secret, signing.encode(), hashlib.sha256).digest()
        return signing + "." + b64url(sig), rec, ttl, exp

    def check_token(self, token):
        """-> ("valid", apikey record) | ("expired", None) | ("invalid", None)
        | ("malformed", None)  (not a JWT at all: no subject can be extracted)."""
        parts = token.split(".")
        if len(parts) != 3:
            return "malformed", None
        try:
            payload = json.loads(b64url_d(parts[1]))
            if not isinstance(payload, dict) or "sub" not in payload:
                return "malformed", None
            sig = b64url_d(parts[2])
        except (ValueError, binascii.Error):
            return "malformed", None
        want = hmac.new(self.jwt_secret, (parts[0] + "." + parts[1]).encode(),
                        hashlib.sha256).digest()
        if not hmac.compare_digest(sig, want):
            return "invalid", None
        try:
            exp = float(payload["kmsemu_exp"])
        except (KeyError, TypeError, ValueError):
            return "invalid", None
        if time.time() >= exp:
            return "expired", None
        with self.lock:
            for rec in self.apikeys.values():
                if rec["id"] == payload.get("kmsemu_key"):
                    return "valid", rec
        # API key deleted since: token still cryptographically valid, no access.
        return "valid", {"id": None, "instances": set()}


def new_version(material=None, vid=None):
    now = time.time()
    return {"id": vid or str(uuid.uuid4()),
            "material": material or os.urandom(32),
            "created": now, "creationDate": rfc3339(now)}


def version_ref(v):
    return {"id": v["id"], "creationDate": v["creationDate"]}


def key_resource(k):
    latest = k["versions"][-1]
    res = {"type": KEY_CT, "id": k["id"], "name": k["name"],
           "state": k["state"], "extractable": False,
           "crn": "crn:v1:bluemix:public:kms:%s:a/%s:%s:key:%s" % (
               REGION, ACCOUNT, k["instance"], k["id"]),
           "imported": k["imported"],
           "creationDate": rfc3339(k["created"]),
           "createdBy": "kmsemu-admin",
           "algorithmType": "AES",
           "algorithmMetadata": {"bitLength": str(8 * len(latest["material"])),
                                 "mode": "CBC_PAD"},
           "algorithmBitSize": 8 * len(latest["material"]),
           "algorithmMode": "CBC_PAD",
           "lastUpdateDate": rfc3339(k["updated"]),
           "keyVersion": version_ref(latest),
           "dualAuthDelete": {"enabled": False},
           "keyRingID": "default",
           "deleted": k["state"] == 5}
    if k.get("description"):
        res["description"] = k["description"]
    if k.get("rotated"):
        res["lastRotateDate"] = rfc3339(k["rotated"])
    if k["state"] == 5:
        res["deletionDate"] = rfc3339(k["deleted_at"])
        res["deletedBy"] = "kmsemu-admin"
    return res


def key_summary(k):
    return {"id": k["id"], "instance": k["instance"], "name": k["name"],
            "state": k["state"], "stateName": STATES.get(k["state"]),
            "keyVersion": version_ref(k["versions"][-1]),
            "versions": [version_ref(v) for v in k["versions"]],
            "lastRotateDate": rfc3339(k["rotated"]) if k.get("rotated") else None}


# ----------------------------------------------------------------- crypto

def _ad(key_id, aad):
    return jdump({"kmsemu": 1, "key": key_id, "aad": list(aad)})


def seal(k, plaintext, aad):
    v = k["versions"][-1]
    iv = os.urandom(12)
    ct = AESGCM(v["material"]).encrypt(iv, plaintext, _ad(k["id"], aad))
    blob = {"ciphertext": b64e(ct), "iv": b64e(iv), "version": "kmsemu-1",
            "handle": v["id"]}
    return b64e(jdump(blob)), v


def open_blob(k, ciphertext, aad, ctx):
    bad = KPError(400, "INVALID_FIELD_ERR",
                  "The field `ciphertext` must be: the original base64 encoded "
                  "ciphertext from the wrap operation", ctx, target="ciphertext")
    try:
        blob = json.loads(b64d_strict(ciphertext))
        handle = blob["handle"]
        iv = b64d_strict(blob["iv"])
        ct = b64d_strict(blob["ciphertext"])
        if not isinstance(handle, str) or len(iv) != 12 or len(ct) < 16:
            raise ValueError("shape")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise bad
    v = next((x for x in k["versions"] if x["id"] == handle), None)
    if v is None:
        raise KPError(422, "UNPROCESSABLE_CIPHERTEXT_ERR",
                      "The provided ciphertext is invalid or corrupted", ctx)
    try:
        pt = AESGCM(v["material"]).decrypt(iv, ct, _ad(k["id"], aad))
    except InvalidTag:
        raise bad  # wrong aad or tampered ciphertext: what KP answers (see README)
    return pt, v


# ----------------------------------------------------------------- server

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, sslctx, state, quiet):
        self.sslctx, self.state, self.quiet = sslctx, state, quiet
        super().__init__(addr, handler)

    def server_bind(self):
        # HTTPServer.server_bind() calls getfqdn(), which may block on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        # TLS handshake in the worker thread, so a stalled client cannot block
        # the accept loop.
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.sslctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            if not self.quiet:
                sys.stderr.write("kmsemu: TLS handshake failed from %s: %s\n"
                                 % (client_address[0], e))
            return
        try:
            tls.settimeout(IDLE_TIMEOUT)
            self.RequestHandlerClass(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kmsemu/1.0"

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("kmsemu: %s\n" % (fmt % args))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    # --- plumbing
    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    raise ValueError("body too large")
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        # Headers and body in one write (one TLS record where possible).
        self._headers_buffer.append(b"\r\n")
        data = b"".join(self._headers_buffer)
        self._headers_buffer = []
        if self.command != "HEAD":
            data += body
        self.wfile.write(data)
        self.wfile.flush()

    def drop(self):
        # SSLSocket.shutdown() drops the TLS object first: no close_notify,
        # no HTTP reply; the peer just sees the TCP connection end.
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def dispatch(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query)
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.send(413, {"Content-Type": "application/json"},
                      jdump({"error": "request body too large or malformed"}))
            return
        if path == "/_emu" or path.startswith("/_emu/"):
            status, headers, out = self.admin(self.command, path, query, body)
            self.send(status, headers, out)
            return

        iam = path == "/identity/token" or path.startswith("/identity/")
        corr = self.headers.get("Correlation-Id") or str(uuid.uuid4())
        entry = {"t": time.time(), "method": self.command, "path": path,
                 "status": None, "fault": None,
                 "instance": self.headers.get("Bluemix-Instance"),
                 "auth": "none", "iam": iam, "correlation_id": corr,
                 "content_type": self.headers.get("Content-Type")}
        self.auth_verdict = ("none", None)
        if not iam:
            self.auth_verdict = self.classify_auth()
            v = self.auth_verdict[0]
            entry["auth"] = "invalid" if v == "malformed" else v
        with st.lock:
            st.stats["requests"] += 1
            st.stats["iam_requests" if iam else "kp_requests"] += 1
        fault = st.take_fault(path)
        try:
            if fault:
                entry["fault"] = fault["kind"]
                kind = fault["kind"]
                if kind == "drop":
                    self.drop()
                    return
                if kind == "status":
                    status, headers, out = self.fault_reply(fault, iam)
                    entry["status"] = status
                    self.send(status, headers, out)
                    return
                if kind == "garbage":
                    entry["status"] = 200
                    self.send(200, {"Content-Type": "application/json"},
                              b"<html><body>502 upstream garbage \x00\xff"
                              b"</body></html>")
                    return
                if kind == "delay":
                    time.sleep(max(0.0, float(fault.get("seconds", 1.0))))
            if iam:
                status, headers, out = self.iam(path, body, entry)
            else:
                status, headers, out = self.kp(path, query, body, entry)
            headers.setdefault("Correlation-Id", corr)
            if fault and fault["kind"] == "truncated":
                out = out[:max(1, len(out) // 2)]
                status = 200
            entry["status"] = status
            self.send(status, headers, out)
        finally:
            with st.lock:
                st.stats["auth"][entry["auth"]] = \
                    st.stats["auth"].get(entry["auth"], 0) + 1
                st.log.append(entry)
            self.log_message('"%s %s" %s fault=%s auth=%s', self.command, path,
                             entry["status"], entry["fault"], entry["auth"])

    def log_request(self, code="-", size="-"):
        pass  # one line per request is written by dispatch()

    def fault_reply(self, fault, iam):
        status = int(fault.get("status") or 503)
        headers = {"Content-Type": "application/json"}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        if iam:
            s, h, out = iam_error(status, "KMSEMU_INJECTED_FAULT",
                                  "Injected fault (kmsemu): HTTP %d" % status)
            h.update(headers)
            return s, h, out
        texts = {429: "Too Many Requests: Please wait a few minutes and try again.",
                 500: "Internal Server Error: IBM Key Protect is currently "
                      "unavailable. Your request could not be processed. "
                      "Please try again later."}
        msg = texts.get(status, "%s: Injected fault (kmsemu)" %
                        KPError.PHRASES.get(status, "Error"))
        return status, headers, jdump(KPError(status, error_msg=msg).body())

    # --- IAM
    def iam(self, path, body, entry):
        st = self.server.state
        if path != "/identity/token":
            return iam_error(404, "BXNIM0102E", "Not found.")
        if self.command != "POST":
            return iam_error(405, "BXNIM0060E", "Web application exception "
                             "'javax.ws.rs.ClientErrorException' during request "
                             "processing.", "HTTP 405 Method Not Allowed")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form = {}
        if ctype == "application/x-www-form-urlencoded":
            try:
                form = urllib.parse.parse_qs(body.decode("utf-8"),
                                             keep_blank_values=True)
            except UnicodeDecodeError:
                form = {}
        grant = (form.get("grant_type") or [""])[0]
        apikey = (form.get("apikey") or [""])[0]
        if not grant:
            return iam_error(400, "BXNIM0109E", "Property missing or empty.",
                             "Property 'grant_type' is missing or empty.")
        if grant != "urn:ibm:params:oauth:grant-type:apikey":
            return iam_error(400, "KMSEMU_UNSUPPORTED_GRANT_TYPE",
                             "Only the apikey grant type is emulated.")
        if not apikey:
            return iam_error(400, "BXNIM0109E", "Property missing or empty.",
                             "Property 'apikey' is missing or empty.")
        with st.lock:
            known = apikey in st.apikeys
            if not known:
                st.stats["token_failures"] += 1
        if not known:
            return iam_error(400, "BXNIM0415E",
                             "Provided API key could not be found.")
        token, rec, ttl, exp = st.issue_token(apikey)
        out = {"access_token": token, "refresh_token": "not_supported",
               "ims_user_id": rec["ims_user_id"], "token_type": "Bearer",
               "expires_in": int(ttl), "expiration": int(exp),
               "scope": "ibm openid"}
        return 200, {"Content-Type": "application/json",
                     "Cache-Control": "no-store"}, jdump(out)

    # --- Key Protect
    def kp(self, path, query, body, entry):
        try:
            return self.kp_inner(path, query, body, entry)
        except KPError as e:
            h = {"Content-Type": "application/json"}
            h.update(e.headers)
            entry["error_code"] = e.code
            return e.status, h, jdump(e.body())

    def classify_auth(self):
        """-> (kind, apikey record): kind is "none", "invalid" (not a bearer
        JWT, or not issued here), "malformed" (no subject can be extracted),
        "expired" or "valid"."""
        hdr = self.headers.get("Authorization")
        if not hdr or not hdr.strip():
            return "none", None
        parts = hdr.strip().split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return "malformed", None
        return self.server.state.check_token(parts[1].strip())

    def authorize(self, entry):
        """-> the request's instance if the bearer token may use it, or raise."""
        st = self.server.state
        verdict, rec = self.auth_verdict
        if verdict == "none":
            raise unauthorized()
        if verdict == "malformed":
            raise KPError(400, "BEARER_SUB_EXTRACTION_ERR",
                          "Extracting the subject from the bearer token failed: "
                          "Make sure the bearer token passed is the correct one "
                          "(and correct format) and is allowed to perform "
                          "requested actions",
                          "Bearer token could not be processed")
        if verdict != "valid":
            raise unauthorized()
        inst = self.headers.get("Bluemix-Instance")
        with st.lock:
            allowed = inst is not None and inst in rec["instances"]
        if not allowed:
            raise unauthorized()
        return inst

    def kp_inner(self, path, query, body, entry):
        st = self.server.state
        prefix = "/api/v2/keys/"
        if not path.startswith(prefix):
            raise KPError(404, error_msg="Not Found: The requested resource "
                          "could not be found (kmsemu emulates only "
                          "/api/v2/keys/<id>)")
        rest = [urllib.parse.unquote(p) for p in path[len(prefix):].split("/")]
        key_id = rest[0]
        entry["key_id"] = key_id
        action, is_action, is_metadata = None, False, False
        if len(rest) == 1 and self.command == "POST" and "action" in query:
            action, is_action = query["action"][0], True
        elif len(rest) == 3 and rest[1] == "actions" and self.command == "POST":
            action, is_action = rest[2], True
        elif len(rest) == 2 and rest[1] == "metadata" and self.command in ("GET", "HEAD"):
            is_metadata = True
        elif len(rest) == 1 and self.command in ("GET", "HEAD"):
            pass
        else:
            raise KPError(405 if len(rest) <= 3 and rest[0] else 404,
                          error_msg="%s: %s %s is not emulated by kmsemu" % (
                              "Method Not Allowed" if len(rest) <= 3 else
                              "Not Found", self.command, path))
        entry["action"] = action if is_action else ("metadata" if is_metadata
                                                    else "get")
        inst = self.authorize(entry)
        ctx = {"wrap": "Wrap with key could not be performed",
               "unwrap": "Unwrap with key could not be performed",
               "rewrap": "Rewrap with key could not be performed"}.get(
                   action, "Key could not be retrieved")
        with st.lock:
            k = st.keys.get(key_id)
            if k is None or k["instance"] != inst or not key_id:
                raise KPError(404, "KEY_NOT_FOUND_ERR", "key does not exist", ctx)
            if not is_action:
                res = key_resource(k)
                return 200, {"Content-Type": "application/json"}, jdump(
                    {"metadata": {"collectionType": KEY_CT, "collectionTotal": 1},
                     "resources": [res]})
            if action not in ("wrap", "unwrap", "rewrap"):
                raise KPError(400, "KMSEMU_UNSUPPORTED_ACTION",
                              "kmsemu emulates only wrap, unwrap and rewrap; "
                              "use the /_emu/ admin API for lifecycle changes",
                              "Action could not be performed on key")
            req = self.parse_action_body(action, body, ctx)
            state = k["state"]
            if state == 5:
                raise KPError(410, "KEY_DELETED_ERR",
                              "Key has already been deleted: Please delete "
                              "references to this key", ctx)
            allowed = {"wrap": (1,), "unwrap": (1, 3), "rewrap": (1, 3)}[action]
            if state not in allowed:
                raise KPError(409, "KEY_ACTION_INVALID_STATE_ERR",
                              "Key is not in a valid state",
                              "Key is not in active state: " + ctx)
            st.stats["actions"][action] += 1
            aad = req.get("aad") or []
            if action == "wrap":
                generated = "plaintext" not in req
                pt = os.urandom(32) if generated else req["plaintext_bytes"]
                ct, v = seal(k, pt, aad)
                out = {"ciphertext": ct, "keyVersion": version_ref(v)}
                if generated:
                    out = {"plaintext": b64e(pt), **out}
                return 200, {"Content-Type": "application/json"}, jdump(out)
            pt, v = open_blob(k, req["ciphertext"], aad, ctx)
            latest = k["versions"][-1]
            if action == "unwrap":
                out = {"plaintext": b64e(pt), "keyVersion": version_ref(v)}
                if v["id"] != latest["id"]:
                    ct, _ = seal(k, pt, aad)
                    out["ciphertext"] = ct
                    out["rewrappedKeyVersion"] = version_ref(latest)
                    st.stats["rewrapped_on_unwrap"] += 1
                return 200, {"Content-Type": "application/json"}, jdump(out)
            ct, _ = seal(k, pt, aad)
            out = {"ciphertext": ct, "keyVersion": version_ref(v),
                   "rewrappedKeyVersion": version_ref(latest)}
            return 200, {"Content-Type": "application/json"}, jdump(out)

    def parse_action_body(self, action, body, ctx):
        if not body.strip():
            if action == "wrap":
                return {}  # documented: empty body -> KP generates a DEK
            raise KPError(400, "NO_BODY_ERR", "Missing body in request",
                          "Action could not be performed on key")
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise KPError(400, "BAD_BODY_ERR",
                          "Invalid body data was passed: Please ensure the data "
                          "passed had valid formatting with no invalid "
                          "characters: %s" % e.__class__.__name__, ctx)
        if not isinstance(req, dict):
            raise KPError(400, "BAD_BODY_ERR", "Invalid body data was passed: "
                          "Please ensure the data passed had valid formatting "
                          "with no invalid characters", ctx)
        fields = {"wrap": ("plaintext", "aad"), "unwrap": ("ciphertext", "aad"),
                  "rewrap": ("ciphertext", "aad")}[action]
        for f in req:
            if f not in fields:
                raise KPError(400, "BAD_BODY_ERR",
                              "Invalid body data was passed: Please ensure the "
                              "data passed had valid formatting with no invalid "
                              "characters: json: unknown field \"%s\"" % f, ctx)
        if "aad" in req and req["aad"] is not None:
            aad = req["aad"]
            if not isinstance(aad, list) or not all(isinstance(a, str) for a in aad):
                raise KPError(400, "BAD_BODY_ERR", "Invalid body data was passed: "
                              "`aad` must be an array of strings", ctx)
            if len(aad) > MAX_AAD_ITEMS or any(len(a) > MAX_AAD_LEN for a in aad):
                raise KPError(400, "INVALID_FIELD_ERR",
                              "The field `aad` must be: at most %d strings of at "
                              "most %d characters" % (MAX_AAD_ITEMS, MAX_AAD_LEN),
                              ctx, target="aad")
        if action == "wrap":
            if "plaintext" in req:
                p = req["plaintext"]
                if not isinstance(p, str):
                    raise KPError(400, "BAD_BODY_ERR", "Invalid body data was "
                                  "passed: `plaintext` must be a string", ctx)
                try:
                    raw = b64d_strict(p)
                except (ValueError, binascii.Error, UnicodeError):
                    raise KPError(400, "INVALID_FIELD_ERR",
                                  "The field `plaintext` must be: a base64 "
                                  "encoded key material: illegal base64 data",
                                  ctx, target="plaintext")
                if not raw or len(p) > MAX_PLAINTEXT_B64:
                    raise KPError(400, "INVALID_FIELD_ERR",
                                  "The field `plaintext` must be: a base64 "
                                  "encoded key material of 1 to %d base64 "
                                  "characters" % MAX_PLAINTEXT_B64,
                                  ctx, target="plaintext")
                req["plaintext_bytes"] = raw
        else:
            c = req.get("ciphertext")
            if not isinstance(c, str) or not c:
                raise KPError(400, "INVALID_FIELD_ERR",
                              "The field `ciphertext` must be: the original "
                              "base64 encoded ciphertext from the wrap operation",
                              ctx, target="ciphertext")
        return req

    # --- admin
    def admin(self, method, path, query, body):
        st = self.server.state
        ok = {"Content-Type": "application/json"}

        def reply(status, obj):
            return status, ok, jdump(obj)

        def fail(status, msg):
            return reply(status, {"error": msg})

        req = {}
        if body.strip():
            try:
                req = json.loads(body)
            except ValueError:
                return fail(400, "body is not JSON")
            if not isinstance(req, dict):
                return fail(400, "body must be a JSON object")
        parts = [urllib.parse.unquote(p) for p in path.split("/")[2:]]
        head = parts[0] if parts else ""

        if head == "health" and method == "GET":
            return reply(200, {"ok": True, "port": self.server.server_port})
        if head == "reset" and method == "POST":
            st.reset()
            return reply(200, {"ok": True})

        if head == "apikeys":
            if method == "POST" and len(parts) == 1:
                ak, insts = req.get("apikey"), req.get("instances", [])
                if not isinstance(ak, str) or not ak:
                    return fail(400, "apikey (non-empty string) is required")
                if not isinstance(insts, list) or not all(
                        isinstance(i, str) for i in insts):
                    return fail(400, "instances must be an array of strings")
                with st.lock:
                    rec = st.apikeys.get(ak)
                    if rec is None:
                        rec = {"id": uuid.uuid4().hex,
                               "iam_id": "iam-ServiceId-" + str(uuid.uuid4()),
                               "ims_user_id": 1000000 + len(st.apikeys)}
                        st.apikeys[ak] = rec
                    rec["instances"] = set(insts)
                    return reply(201, {"apikey": ak, "instances": sorted(insts),
                                       "iam_id": rec["iam_id"]})
            if method == "DELETE" and len(parts) == 2:
                with st.lock:
                    if st.apikeys.pop(parts[1], None) is None:
                        return fail(404, "no such apikey")
                return reply(200, {"deleted": True})
            return fail(405, "use POST /_emu/apikeys or DELETE /_emu/apikeys/<k>")

        if head == "keys":
            if len(parts) == 1 and method == "POST":
                inst = req.get("instance")
                if not isinstance(inst, str) or not inst:
                    return fail(400, "instance (non-empty string) is required")
                kid = req.get("id") or str(uuid.uuid4())
                if not isinstance(kid, str) or "/" in kid:
                    return fail(400, "id must be a string without '/'")
                material = None
                if req.get("material") is not None:
                    try:
                        material = b64d_strict(req["material"])
                    except (ValueError, binascii.Error):
                        return fail(400, "material must be base64")
                    if len(material) not in (16, 24, 32):
                        return fail(400, "material must be 16, 24 or 32 bytes")
                now = time.time()
                with st.lock:
                    if kid in st.keys:
                        return fail(409, "key id already exists")
                    # Key Protect's first key version carries the key's own id.
                    k = {"id": kid, "instance": inst,
                         "name": req.get("name") or "kmsemu-" + kid[:8],
                         "description": req.get("description"),
                         "state": 1, "created": now, "updated": now,
                         "rotated": None, "deleted_at": None,
                         "imported": material is not None,
                         "versions": [new_version(material, kid)]}
                    st.keys[kid] = k
                    return reply(201, key_summary(k))
            if len(parts) == 1 and method == "GET":
                with st.lock:
                    return reply(200, [key_summary(k) for k in st.keys.values()])
            with st.lock:
                k = st.keys.get(parts[1]) if len(parts) >= 2 else None
                if k is None:
                    return fail(404, "no such key")
                if len(parts) == 2 and method == "GET":
                    return reply(200, key_summary(k))
                if len(parts) == 3 and parts[2] == "rotate" and method == "POST":
                    if k["state"] not in (1, 3) and not req.get("force"):
                        return fail(409, "Key Protect rotates only Active (1) or "
                                    "Deactivated (3) keys; pass force=true")
                    material = None
                    if req.get("material") is not None:
                        try:
                            material = b64d_strict(req["material"])
                        except (ValueError, binascii.Error):
                            return fail(400, "material must be base64")
                    k["versions"].append(new_version(material))
                    k["rotated"] = k["updated"] = time.time()
                    return reply(200, key_summary(k))
                if len(parts) == 3 and parts[2] == "state" and method == "POST":
                    s = req.get("state")
                    if s not in STATES or isinstance(s, bool):
                        return fail(400, "state must be 1, 2, 3 or 5")
                    now = time.time()
                    k["state"] = s
                    k["updated"] = now
                    k["deleted_at"] = now if s == 5 else None
                    return reply(200, key_summary(k))
            return fail(405, "unsupported /_emu/keys request")

        if head == "config":
            if method == "POST":
                if "token_ttl" in req:
                    ttl = req["token_ttl"]
                    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) \
                            or ttl <= 0:
                        return fail(400, "token_ttl must be a positive number")
                    with st.lock:
                        st.token_ttl = float(ttl)
                unknown = set(req) - {"token_ttl"}
                if unknown:
                    return fail(400, "unknown config keys: %s" % sorted(unknown))
            if method in ("GET", "POST"):
                return reply(200, {"token_ttl": st.token_ttl})
            return fail(405, "GET or POST /_emu/config")

        if head == "faults":
            if method == "DELETE":
                with st.lock:
                    st.faults = []
                return reply(200, {"cleared": True})
            if method == "GET":
                with st.lock:
                    return reply(200, list(st.faults))
            if method == "POST":
                kind = req.get("kind")
                if kind not in FAULT_KINDS:
                    return fail(400, "kind must be one of %s" % (FAULT_KINDS,))
                count = req.get("count", 1)
                if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                    return fail(400, "count must be a positive integer")
                prefix = req.get("path_prefix", "")
                if not isinstance(prefix, str):
                    return fail(400, "path_prefix must be a string")
                rule = {"path_prefix": prefix, "kind": kind, "count": count,
                        "remaining": count, "applied": 0}
                if kind == "status":
                    s = req.get("status", 503)
                    if isinstance(s, bool) or not isinstance(s, int) or \
                            not 100 <= s <= 599:
                        return fail(400, "status must be an HTTP status code")
                    rule["status"] = s
                if req.get("retry_after") is not None:
                    rule["retry_after"] = req["retry_after"]
                if kind == "delay":
                    sec = req.get("seconds", 1.0)
                    if isinstance(sec, bool) or not isinstance(sec, (int, float)) \
                            or sec < 0:
                        return fail(400, "seconds must be a number >= 0")
                    rule["seconds"] = float(sec)
                with st.lock:
                    st.fault_seq += 1
                    rule["id"] = st.fault_seq
                    st.faults.append(rule)
                return reply(201, rule)
            return fail(405, "GET, POST or DELETE /_emu/faults")

        if head == "log":
            if method == "DELETE":
                with st.lock:
                    st.log = []
                return reply(200, {"cleared": True})
            if method == "GET":
                since = None
                if "since" in query:
                    try:
                        since = float(query["since"][0])
                    except ValueError:
                        return fail(400, "since must be a number")
                with st.lock:
                    out = [e for e in st.log if since is None or e["t"] >= since]
                return reply(200, out)
            return fail(405, "GET or DELETE /_emu/log")

        if head == "stats" and method == "GET":
            with st.lock:
                return reply(200, json.loads(jdump(st.stats)))

        return fail(404, "unknown admin endpoint")


# ----------------------------------------------------------------- main

def write_port_file(path, port):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".kmsemu-port.", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="kmsemu", description="IBM Key Protect + IAM token API test "
        "emulator (HTTPS on 127.0.0.1).")
    ap.add_argument("--pki", metavar="DIR",
                    help="CA/server certificate directory (created if missing)")
    ap.add_argument("--port", type=int, default=0,
                    help="port on 127.0.0.1 (0 = ephemeral, default)")
    ap.add_argument("--port-file", metavar="FILE",
                    help="write the bound port here once listening")
    ap.add_argument("--token-ttl", type=float, default=3600.0, metavar="S",
                    help="IAM access token lifetime in seconds (default 3600)")
    ap.add_argument("--quiet", action="store_true",
                    help="no per-request lines on stderr")
    ap.add_argument("--make-ca", metavar="DIR",
                    help="only create a CA + server certificate in DIR, exit")
    a = ap.parse_args(argv)

    if a.make_ca:
        ensure_pki(a.make_ca)
        return 0
    if not a.pki:
        ap.error("--pki DIR is required (or --make-ca DIR)")
    if a.token_ttl <= 0:
        ap.error("--token-ttl must be > 0")
    cert, key = ensure_pki(a.pki)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)

    state = State(a.token_ttl)
    try:
        srv = Server(("127.0.0.1", a.port), Handler, ctx, state, a.quiet)
    except OSError as e:
        sys.stderr.write("kmsemu: cannot listen on 127.0.0.1:%d: %s\n"
                         % (a.port, e))
        return 2
    port = srv.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.port_file:
        write_port_file(a.port_file, port)
    if not a.quiet:
        sys.stderr.write("kmsemu: listening on https://127.0.0.1:%d (CA %s)\n"
                         % (port, os.path.join(a.pki, "ca.pem")))
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    if not a.quiet:
        sys.stderr.write("kmsemu: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
