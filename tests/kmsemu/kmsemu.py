#!/usr/bin/python3
"""kmsemu - a test emulator of IBM Key Protect's HTTP API, of the IBM Cloud IAM
token endpoint and of HashiCorp Vault (token and AppRole auth, Transit), for
keyd's integration tests.

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
  POST /api/v2/keys                            create a root key (201)
  POST /api/v2/keys/<id>/actions/wrap|unwrap|rewrap|rotate   (also ?action=<a>)
  GET  /api/v2/keys/<id>                       key (root keys: no payload)
  GET  /api/v2/keys/<id>/metadata              key metadata
  POST /api/v2/event_ack                       adopter's event acknowledgement
  GET  /v1/sys/health, /v1/sys/seal-status     Vault (unauthenticated)
  POST /v1/auth/<approle mount>/login          AppRole login
  GET  /v1/auth/token/lookup-self, POST /v1/auth/token/renew-self
  POST /v1/<mount>/encrypt|decrypt|rewrap/<key>
  GET|POST|DELETE /v1/<mount>/keys/<key>, POST .../rotate, POST .../config

Admin / test control (no auth; JSON bodies and replies)
-------------------------------------------------------
  GET    /_emu/health                      {"ok": true}
  POST   /_emu/apikeys   {"apikey": s, "instances": [s...]}
  DELETE /_emu/apikeys/<apikey>
  POST   /_emu/keys      {"instance": s, "id"?: s, "name"?: s, "material"?: b64}
  GET    /_emu/keys, GET /_emu/keys/<id>   (never the key material)
  POST   /_emu/keys/<id>/rotate  {"force"?: bool}  new key version
  POST   /_emu/keys/<id>/state   {"state": 1|2|3|5}
  GET|POST /_emu/config  {"token_ttl": seconds, "kp_rate_limit": r/s or null,
                         "kp_burst": n}  (429 + Retry-After beyond it)
  GET|POST|DELETE /_emu/faults
         {"path_prefix": "/api/v2/keys", "kind": "status"|"delay"|"drop"|
          "garbage"|"truncated", "status": 503, "retry_after": 2,
          "seconds": 1.5, "count": N}
  GET|DELETE /_emu/log  (GET accepts ?since=<unix time>)
  GET    /_emu/stats
  GET|DELETE /_emu/event_acks
  POST   /_emu/reset     forget everything (keys, API keys, faults, log, stats,
                         Vault state)
  Vault (namespace and mount in the body or query; defaults "" and transit):
  POST   /_emu/vault/keys {"name": s, "type"?: s, "derived"?: bool}
  GET    /_emu/vault/keys[/<name>]; DELETE /_emu/vault/keys/<name>
  POST   /_emu/vault/keys/<name>/rotate | /config {"min_decryption_version"...}
  POST   /_emu/vault/mounts, /_emu/vault/policies {"name", "paths": {...}}
  POST   /_emu/vault/tokens {"policies", "ttl", "renewable", "explicit_max_ttl"}
  GET    /_emu/vault/tokens; DELETE /_emu/vault/tokens/<token>
  POST   /_emu/vault/approles {"role", "policies", "token_ttl"}
  POST   /_emu/vault/approles/<role>/secret-id {"num_uses"?, "ttl"?}
  POST   /_emu/vault/seal | /unseal | /ha {"mode": "active"|"standby"|"perfstandby"}

See tests/kmsemu/README.md for the documented Key Protect / IAM / Vault
behaviour this follows, the sources, and where it deliberately simplifies.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import http.server
import json
import math
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
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - reported to the caller
    sys.stderr.write("kmsemu: python3-cryptography is required "
                     "(apt-get install python3-cryptography)\n")
    sys.exit(3)

import ipaddress

import kmsemu_aws
import kmsemu_metadata
import kmsemu_tencent

MORE_INFO = "https://cloud.ibm.com/apidocs/key-protect"
KEY_ACTION_CT = "application/vnd.ibm.kms.key_action+json"
ERROR_CT = "application/vnd.ibm.kms.error+json"
KEY_CT = "application/vnd.ibm.kms.key+json"
EVENT_ACK_CT = "application/vnd.ibm.kms.event_acknowledge+json"
# Fields of one acknowledgement: the documented curl example (eventId, adopterKeyState,
# timestamp, keyStateData) and the API/CLI table (deleteRegistration).
EVENT_ACK_FIELDS = ("eventId", "adopterKeyState", "timestamp", "keyStateData",
                    "deleteRegistration")
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
                    # A name under .localhost (RFC 6761) for clients that derive something
                    # from the host name: Tencent's SDK takes the service from its first label.
                    x509.DNSName("kms.localhost"),
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
        self.vault = Vault()
        self.aws = kmsemu_aws.AwsKms()
        self.tencent = kmsemu_tencent.TencentKms()
        self.reset()

    def reset(self):
        with self.lock:
            self.apikeys = {}   # apikey -> {"id", "instances", "iam_id", "ims_user_id"}
            self.keys = {}      # key id -> key dict
            self.faults = []
            self.fault_seq = 0
            self.log = []
            self.event_acks = []
            self.vault.reset()
            self.aws.reset()
            self.tencent.reset()
            self.kp_throttle_reset()
            self.stats = {"tokens_issued": 0, "tokens_by_apikey": {},
                          "token_failures": 0, "requests": 0, "iam_requests": 0,
                          "kp_requests": 0, "vault_requests": 0, "aws_requests": 0,
                          "tencent_requests": 0, "faults_applied": 0,
                          "actions": {"wrap": 0, "unwrap": 0, "rewrap": 0, "rotate": 0},
                          "rewrapped_on_unwrap": 0, "event_acks": 0, "auth": {},
                          "vault": {"encrypt": 0, "decrypt": 0, "rewrap": 0,
                                    "read": 0, "rotate": 0, "login": 0, "renew": 0,
                                    "lookup": 0, "tokens_issued": 0}}

    # --- Key Protect throttling: a token bucket per instance on /api/v2 (README, "Rate limit")
    def kp_throttle_reset(self):
        self.kp_rate = None     # requests per second and instance; None = no limit
        self.kp_burst = 0.0
        self.kp_buckets = {}    # instance -> [tokens, last refill (monotonic)]
        self.kp_throttled = 0

    def kp_throttle_take(self, inst):
        """-> None if the request may go ahead, else the seconds until a token is back."""
        with self.lock:
            if self.kp_rate is None:
                return None
            now = time.monotonic()
            b = self.kp_buckets.setdefault(inst, [self.kp_burst, now])
            b[0] = min(self.kp_burst, b[0] + (now - b[1]) * self.kp_rate)
            b[1] = now
            if b[0] >= 1.0:
                b[0] -= 1.0
                return None
            self.kp_throttled += 1
            return (1.0 - b[0]) / self.kp_rate

    def kp_throttle_config(self, req):
        """/_emu/config's kp_rate_limit (null = off) and kp_burst; -> an error text or None."""
        if "kp_rate_limit" not in req and "kp_burst" not in req:
            return None
        rate = req.get("kp_rate_limit", self.kp_rate)
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                                 or rate <= 0):
            return "kp_rate_limit must be a positive number or null"
        burst = req.get("kp_burst", rate if "kp_rate_limit" in req else self.kp_burst)
        if rate is not None and (isinstance(burst, bool) or not isinstance(burst, (int, float))
                                 or burst < 1):
            return "kp_burst must be a number >= 1"
        with self.lock:
            self.kp_rate = None if rate is None else float(rate)
            self.kp_burst = 0.0 if rate is None else float(burst)
            self.kp_buckets = {}
        return None

    def kp_throttle_view(self):
        return {"kp_rate_limit": self.kp_rate, "kp_burst": self.kp_burst,
                "kp_throttled": self.kp_throttled}

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


def key_payload(value, ctx):
    """The key material of an imported key (create, rotate): 128, 192 or 256 bits."""
    try:
        material = b64d_strict(value)
    except (ValueError, binascii.Error, UnicodeError, TypeError):
        material = b""
    if len(material) not in (16, 24, 32):
        raise KPError(400, "INVALID_FIELD_ERR", "The field `payload` must be: a base64 "
                      "encoded key of 128, 192 or 256 bits", ctx, target="payload")
    return material


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
        # Wrong aad or tampered ciphertext: IBM's API reference answers an unwrap or rewrap
        # whose ciphertext this key cannot open with 422 (see README).
        raise KPError(422, "UNPROCESSABLE_CIPHERTEXT_ERR",
                      "The provided ciphertext is invalid or corrupted", ctx)
    return pt, v


# ----------------------------------------------------------------- Vault

VAULT_VERSION = "1.15.0+kmsemu"
VAULT_TOKEN_DEFAULT_TTL = 768 * 3600   # Vault's default max lease TTL (32 days)
VAULT_AEAD_TYPES = ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305")
VAULT_KEY_TYPES = VAULT_AEAD_TYPES + ("ed25519",)
VAULT_TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
VAULT_DERIVED = ("missing 'context' for key derivation; the key was created using a "
                 "derived key, which means additional, per-request information must "
                 "be included in order to perform operations with the key")
VAULT_DEFAULT_POLICY = {
    "auth/token/lookup-self": ["read"],
    "auth/token/renew-self": ["update"],
    "auth/token/revoke-self": ["update"],
    "sys/capabilities-self": ["update"],
}
B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class VaultError(Exception):
    """A Vault error reply: {"errors": [...]} (an empty list for a plain 404)."""

    def __init__(self, status, *errors, headers=None):
        super().__init__(errors[0] if errors else str(status))
        self.status, self.errors, self.headers = status, list(errors), headers or {}


def vault_denied():
    return VaultError(403, "permission denied")


def vault_id(prefix="", n=24):
    return prefix + "".join(secrets.choice(B62) for _ in range(n))


def vault_path_match(pattern, path):
    """Vault ACL globs: '+' is one whole path segment, a trailing '*' any suffix."""
    glob = pattern.endswith("*")
    pp = (pattern[:-1] if glob else pattern).split("/")
    sp = path.split("/")
    if not glob:
        return len(pp) == len(sp) and all(a in ("+", b) for a, b in zip(pp, sp))
    if len(sp) < len(pp) or not all(a in ("+", b) for a, b in zip(pp[:-1], sp)):
        return False
    return pp[-1] == "+" or "/".join(sp[len(pp) - 1:]).startswith(pp[-1])


def vault_priority(pattern):
    """Higher is more specific (Vault's "priority matching", simplified)."""
    first = min([i for i, c in enumerate(pattern) if c in "+*"] or [len(pattern)])
    return (first, not pattern.endswith("*"), -pattern.count("+"), len(pattern), pattern)


class Vault:
    """HashiCorp Vault's token and AppRole auth and the Transit engine, per namespace."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.sealed = False
            self.ha_mode = "active"          # "active" | "standby" | "perfstandby"
            self.active_addr = "https://vault-active.invalid:8200"
            self.policies = {}               # (ns, name) -> {pattern: [caps]}
            self.tokens = {}                 # token id -> record
            self.approles = {}               # (ns, mount, role) -> record
            self.mounts = {}                 # (ns, path) -> {"keys": {name: key}}

    # --- tokens
    def new_token(self, ns, policies, ttl, renewable=True, explicit_max_ttl=0,
                  path="auth/token/create", meta=None, token_id=None, no_default=False):
        now = time.time()
        pols = sorted(set(policies) | (set() if no_default or "root" in policies
                                       else {"default"}))
        tok = {"id": token_id or vault_id("hvs."), "accessor": vault_id(),
               "policies": pols, "namespace": ns, "ttl": int(ttl),
               "explicit_max_ttl": int(explicit_max_ttl), "renewable": bool(renewable),
               "issue_time": now, "creation_time": int(now),
               "expire": now + ttl if ttl else None, "path": path,
               "meta": meta or {}, "renewals": 0,
               "display_name": path.split("/")[1] if "/" in path else "token"}
        with self.lock:
            self.tokens[tok["id"]] = tok
        return tok

    def classify(self, header):
        """-> ("none"|"invalid"|"expired"|"valid", token record or None)."""
        if not header:
            return "none", None
        with self.lock:
            tok = self.tokens.get(header.strip())
        if tok is None:
            return "invalid", None
        if tok["expire"] is not None and time.time() >= tok["expire"]:
            return "expired", tok
        return "valid", tok

    def token_data(self, tok):
        now = time.time()
        ttl = 0 if tok["expire"] is None else max(0, int(tok["expire"] - now))
        return {"accessor": tok["accessor"], "creation_time": tok["creation_time"],
                "creation_ttl": tok["ttl"], "display_name": tok["display_name"],
                "entity_id": "", "expire_time": None if tok["expire"] is None else
                datetime.datetime.fromtimestamp(tok["expire"], datetime.timezone.utc)
                .isoformat(), "explicit_max_ttl": tok["explicit_max_ttl"],
                "id": tok["id"], "issue_time": datetime.datetime.fromtimestamp(
                    tok["issue_time"], datetime.timezone.utc).isoformat(),
                "meta": tok["meta"] or None, "num_uses": 0, "orphan": True,
                "path": tok["path"], "policies": tok["policies"],
                "renewable": tok["renewable"], "ttl": ttl, "type": "service",
                "namespace_path": tok["namespace"] + "/" if tok["namespace"] else ""}

    def token_auth(self, tok):
        rem = 0 if tok["expire"] is None else max(0, int(round(tok["expire"] - time.time())))
        return {"client_token": tok["id"], "accessor": tok["accessor"],
                "policies": tok["policies"], "token_policies": tok["policies"],
                "metadata": tok["meta"] or None, "lease_duration": rem,
                "renewable": tok["renewable"], "entity_id": "", "token_type": "service",
                "orphan": True, "mfa_requirement": None, "num_uses": 0}

    # --- ACL
    def allowed(self, tok, path, cap):
        if "root" in tok["policies"]:
            return True
        found = []
        with self.lock:
            for name in tok["policies"]:
                rules = (VAULT_DEFAULT_POLICY if name == "default" else
                         self.policies.get((tok["namespace"], name), {}))
                for pattern, caps in rules.items():
                    if vault_path_match(pattern, path):
                        found.append((pattern, caps))
        if not found:
            return False
        best = max(found, key=lambda pc: vault_priority(pc[0]))[0]
        caps = set()
        for pattern, c in found:
            if pattern == best:
                caps |= set(c)
        return "deny" not in caps and cap in caps

    # --- transit
    def new_key(self, ktype="aes256-gcm96", derived=False, material=None):
        k = {"type": ktype, "derived": bool(derived), "deletion_allowed": False,
             "exportable": False, "min_decryption_version": 1,
             "min_encryption_version": 0, "versions": {}, "latest": 0,
             "auto_rotate_period": 0}
        self.rotate_key(k, material)
        return k

    @staticmethod
    def rotate_key(k, material=None):
        size = 16 if k["type"] == "aes128-gcm96" else 32
        k["latest"] += 1
        k["versions"][k["latest"]] = {"material": material or os.urandom(size),
                                      "time": int(time.time())}

    @staticmethod
    def key_data(name, k):
        aead = k["type"] in VAULT_AEAD_TYPES
        if aead:
            keys = {str(v): e["time"] for v, e in k["versions"].items()}
        else:
            keys = {str(v): {"name": k["type"], "public_key": "",
                             "creation_time": datetime.datetime.fromtimestamp(
                                 e["time"], datetime.timezone.utc).isoformat()}
                    for v, e in k["versions"].items()}
        data = {"name": name, "type": k["type"], "derived": k["derived"],
                "deletion_allowed": k["deletion_allowed"], "min_available_version": 0,
                "min_decryption_version": k["min_decryption_version"],
                "min_encryption_version": k["min_encryption_version"],
                "latest_version": k["latest"], "exportable": k["exportable"],
                "allow_plaintext_backup": False, "supports_encryption": aead,
                "supports_decryption": aead, "supports_signing": not aead,
                "supports_derivation": True, "auto_rotate_period": 0,
                "imported_key": False, "keys": keys}
        if k["derived"]:
            data["kdf"] = "hkdf_sha256"
            data["convergent_encryption"] = False
        return data

    @staticmethod
    def cipher(k, version, context):
        material = k["versions"][version]["material"]
        if k["derived"]:
            if not context:
                raise VaultError(400, VAULT_DERIVED)
            material = HKDF(algorithm=hashes.SHA256(), length=len(material), salt=None,
                            info=context).derive(material)
        if k["type"] == "chacha20-poly1305":
            return ChaCha20Poly1305(material)
        return AESGCM(material)

    def seal_data(self, k, plaintext, ad, context, version=0):
        if k["type"] not in VAULT_AEAD_TYPES:
            raise VaultError(400, "key type %s does not support encryption" % k["type"])
        if version == 0:
            version = k["latest"]
        elif version > k["latest"]:
            raise VaultError(400, "requested version for encryption is higher than the "
                             "latest key version")
        if k["min_encryption_version"] and version < k["min_encryption_version"]:
            raise VaultError(400, "requested version for encryption is less than the "
                             "minimum encryption key version")
        nonce = os.urandom(12)
        ct = self.cipher(k, version, context).encrypt(nonce, plaintext, ad or None)
        return "vault:v%d:%s" % (version, b64e(nonce + ct)), version

    def open_data(self, k, value, ad, context):
        """The steps and error texts of Vault's keysutil Policy.Decrypt."""
        if k["type"] not in VAULT_AEAD_TYPES:
            raise VaultError(400, "message decryption not supported for key type %s"
                             % k["type"])
        if not value.startswith("vault:v"):
            raise VaultError(400, "invalid ciphertext: no prefix")
        parts = value[len("vault:v"):].split(":", 1)
        if len(parts) != 2:
            raise VaultError(400, "invalid ciphertext: wrong number of fields")
        try:
            ver = int(parts[0])
        except ValueError:
            raise VaultError(400, "invalid ciphertext: version number could not be decoded")
        ver = ver or 1
        if ver > k["latest"]:
            raise VaultError(400, "invalid ciphertext: version is too new")
        if k["min_decryption_version"] and ver < k["min_decryption_version"]:
            raise VaultError(400, VAULT_TOO_OLD)
        try:
            raw = b64d_strict(parts[1])
        except (ValueError, binascii.Error, UnicodeError):
            raise VaultError(400, "invalid ciphertext: could not decode base64")
        if len(raw) < 12 + 16:
            raise VaultError(400, "invalid ciphertext: could not decode base64")
        try:
            pt = self.cipher(k, ver, context).decrypt(raw[:12], raw[12:], ad or None)
        except InvalidTag:
            raise VaultError(400, "cipher: message authentication failed")
        return pt, ver


def vault_body(body):
    """A Vault request body: a JSON object (empty: {})."""
    if not body.strip():
        return {}
    try:
        req = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise VaultError(400, "failed to parse JSON input: invalid character")
    if not isinstance(req, dict):
        raise VaultError(400, "failed to parse JSON input: not an object")
    return req


def vault_b64_field(req, name, what=None):
    v = req.get(name)
    if v is None or v == "":
        return b""
    if not isinstance(v, str):
        raise VaultError(400, "failed to base64-decode %s" % (what or name))
    try:
        return b64d_strict(v)
    except (ValueError, binascii.Error, UnicodeError):
        raise VaultError(400, "failed to base64-decode %s" % (what or name))


def vault_int_field(req, name):
    v = req.get(name, 0)
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise VaultError(400, "%s: expected a non-negative integer" % name)
    return v


class VaultHandlerMixin:
    """The /v1/ routes of Handler (Vault's HTTP API)."""

    def vault(self, path, query, body, entry):
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        try:
            status, out = self.vault_inner(path, query, body, entry)
            resp = {"request_id": entry["correlation_id"], "lease_id": "",
                    "renewable": False, "lease_duration": 0, "data": None,
                    "wrap_info": None, "warnings": None, "auth": None}
            if out is None:
                return status, headers, b""
            if "_raw" in out:
                return status, headers, jdump(out["_raw"])
            resp.update(out)
            return status, headers, jdump(resp)
        except VaultError as e:
            entry["error"] = e.errors[0] if e.errors else None
            headers.update(e.headers)
            if e.status == 307:
                return 307, headers, b""
            return e.status, headers, jdump({"errors": e.errors})

    def vault_inner(self, path, query, body, entry):
        st = self.server.state
        vs = st.vault
        rel = path[len("/v1/"):].strip("/")
        ns = (self.headers.get("X-Vault-Namespace") or "").strip("/")
        entry["namespace"] = ns or None
        method = self.command
        write = method in ("POST", "PUT")

        if rel == "sys/health" and method in ("GET", "HEAD"):
            return self.vault_health(query)
        if rel == "sys/seal-status" and method == "GET":
            with vs.lock:
                sealed = vs.sealed
            return 200, {"_raw": {"type": "shamir", "initialized": True, "sealed": sealed,
                                  "t": 1, "n": 1, "progress": 0, "nonce": "",
                                  "version": VAULT_VERSION, "migration": False,
                                  "recovery_seal": False, "storage_type": "inmem"}}
        with vs.lock:
            sealed, mode, active = vs.sealed, vs.ha_mode, vs.active_addr
        if sealed:
            raise VaultError(503, "Vault is sealed")
        if mode == "standby":
            # Documented client redirection of a standby node (no request forwarding).
            raise VaultError(307, headers={"Location": active + path})

        verdict, tok = self.vault_verdict
        if rel.startswith("auth/") and rel.endswith("/login") and len(rel.split("/")) == 3:
            if not write:
                raise VaultError(405, "unsupported operation")
            return self.vault_login(ns, rel.split("/")[1], body, entry)

        # Everything else needs a live token of this namespace.
        if verdict != "valid" or tok["namespace"] != ns:
            raise vault_denied()

        def need(p, cap):
            if not vs.allowed(tok, p, cap):
                raise vault_denied()

        if rel == "auth/token/lookup-self":
            if method not in ("GET", "POST", "PUT"):
                raise VaultError(405, "unsupported operation")
            need(rel, "read")
            entry["action"] = "lookup-self"
            with st.lock:
                st.stats["vault"]["lookup"] += 1
            with vs.lock:
                return 200, {"data": vs.token_data(tok)}
        if rel == "auth/token/renew-self":
            if not write:
                raise VaultError(405, "unsupported operation")
            need(rel, "update")
            entry["action"] = "renew-self"
            return self.vault_renew(tok, vault_body(body))

        # Transit: <mount>/{encrypt,decrypt,rewrap}/<name>, <mount>/keys/<name>[/rotate|/config]
        with vs.lock:
            mounts = [m for (n, m) in vs.mounts if n == ns]
        mount = next((m for m in sorted(mounts, key=len, reverse=True)
                      if rel.startswith(m + "/")), None)
        if mount is None:
            raise VaultError(404, "no handler for route \"%s\". route entry not found."
                             % rel)
        sub = rel[len(mount) + 1:].split("/")
        entry["mount"] = mount
        if len(sub) >= 2:
            entry["key_id"] = sub[1]
        op = sub[0]
        if op in ("encrypt", "decrypt", "rewrap") and len(sub) == 2:
            if not write:
                raise VaultError(405, "unsupported operation")
            return self.vault_crypt(ns, mount, op, sub[1], vault_body(body), need, entry)
        if op == "keys" and len(sub) in (2, 3):
            return self.vault_keys(ns, mount, sub, method, vault_body(body), need, entry)
        raise VaultError(404, "no handler for route \"%s\". route entry not found." % rel)

    def vault_health(self, query):
        vs = self.server.state.vault
        with vs.lock:
            sealed, mode = vs.sealed, vs.ha_mode

        def qbool(name):
            return (query.get(name) or ["false"])[0].lower() in ("", "1", "true")

        def qcode(name, default):
            try:
                return int((query.get(name) or [default])[0])
            except ValueError:
                return default
        if sealed:
            status = qcode("sealedcode", 503)
        elif mode == "standby":
            status = qcode("activecode", 200) if qbool("standbyok") else \
                qcode("standbycode", 429)
        elif mode == "perfstandby":
            status = qcode("activecode", 200) if qbool("perfstandbyok") else \
                qcode("performancestandbycode", 473)
        else:
            status = qcode("activecode", 200)
        return status, {"_raw": {
            "initialized": True, "sealed": sealed, "standby": mode != "active",
            "performance_standby": mode == "perfstandby",
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled", "server_time_utc": int(time.time()),
            "version": VAULT_VERSION, "cluster_name": "kmsemu",
            "cluster_id": "00000000-0000-4000-8000-00000000c1d5"}}

    def vault_login(self, ns, amount, body, entry):
        st = self.server.state
        vs = st.vault
        entry["action"] = "login"
        req = vault_body(body)
        role_id, secret_id = req.get("role_id"), req.get("secret_id")
        if not isinstance(role_id, str) or not role_id:
            raise VaultError(400, "missing role_id")
        with vs.lock:
            role = next((r for (n, m, _), r in vs.approles.items()
                         if n == ns and m == amount and r["role_id"] == role_id), None)
            if role is None:
                if not any(n == ns and m == amount for (n, m, _) in vs.approles):
                    raise VaultError(404, "no handler for route \"auth/%s/login\". "
                                     "route entry not found." % amount)
                raise VaultError(400, "invalid role or secret ID")
            if not isinstance(secret_id, str) or not secret_id:
                raise VaultError(400, "missing secret_id")
            sid = role["secret_ids"].get(secret_id)
            now = time.time()
            if sid is None or (sid["expire"] and now >= sid["expire"]):
                role["secret_ids"].pop(secret_id, None)
                raise VaultError(400, "invalid role or secret ID")
            if sid["num_uses"]:
                sid["uses_left"] -= 1
                if sid["uses_left"] <= 0:
                    del role["secret_ids"][secret_id]
        tok = vs.new_token(ns, role["policies"], role["token_ttl"],
                           explicit_max_ttl=role["token_max_ttl"],
                           path="auth/%s/login" % amount,
                           meta={"role_name": role["name"]})
        with st.lock:
            st.stats["vault"]["login"] += 1
            st.stats["vault"]["tokens_issued"] += 1
        with vs.lock:
            return 200, {"auth": vs.token_auth(tok)}

    def vault_renew(self, tok, req):
        st = self.server.state
        vs = st.vault
        inc = vault_int_field(req, "increment")
        with vs.lock:
            if not tok["renewable"]:
                raise VaultError(400, "lease is not renewable")
            now = time.time()
            ttl = inc or tok["ttl"] or VAULT_TOKEN_DEFAULT_TTL
            new = now + ttl
            cap = tok["issue_time"] + (tok["explicit_max_ttl"] or VAULT_TOKEN_DEFAULT_TTL)
            warnings = None
            if new > cap:
                new = cap
                warnings = ["TTL of \"%ds\" exceeded the effective max_ttl of \"%ds\"; "
                            "TTL value is capped accordingly" % (ttl, int(cap - now))]
            if tok["expire"] is not None:
                tok["expire"] = new
            tok["renewals"] += 1
            out = {"auth": vs.token_auth(tok), "warnings": warnings}
        with st.lock:
            st.stats["vault"]["renew"] += 1
        return 200, out

    def vault_crypt(self, ns, mount, op, name, req, need, entry):
        st = self.server.state
        vs = st.vault
        p = "%s/%s/%s" % (mount, op, name)
        entry["action"] = op
        if "batch_input" in req:
            raise VaultError(400, "kmsemu: batch_input is not emulated")
        ad = vault_b64_field(req, "associated_data")
        context = vault_b64_field(req, "context")
        entry["associated_data"] = bool(ad)
        with vs.lock:
            keys = vs.mounts[(ns, mount)]["keys"]
            k = keys.get(name)
            if op == "encrypt":
                # Transit's existence check: a missing key needs "create" and is made.
                need(p, "update" if k else "create")
                if "plaintext" not in req:
                    raise VaultError(400, "missing plaintext to encrypt")
                pt = vault_b64_field(req, "plaintext", "plaintext")
                if k is None:
                    ktype = req.get("type") or "aes256-gcm96"
                    if ktype not in VAULT_KEY_TYPES:
                        raise VaultError(400, "unknown key type %s" % ktype)
                    k = keys[name] = vs.new_key(ktype, bool(context))
                    entry["upserted"] = True
                ct, ver = vs.seal_data(k, pt, ad, context,
                                       vault_int_field(req, "key_version"))
                out = {"data": {"ciphertext": ct, "key_version": ver}}
            else:
                need(p, "update")
                if k is None:
                    raise VaultError(400, "encryption key not found")
                c = req.get("ciphertext")
                if not isinstance(c, str) or not c:
                    raise VaultError(400, "missing ciphertext to decrypt")
                if op == "decrypt":
                    pt, _ = vs.open_data(k, c, ad, context)
                    out = {"data": {"plaintext": b64e(pt)}}
                else:
                    # Transit's rewrap has no associated_data: it decrypts with none.
                    pt, _ = vs.open_data(k, c, b"", context)
                    ct, ver = vs.seal_data(k, pt, b"", context,
                                           vault_int_field(req, "key_version"))
                    out = {"data": {"ciphertext": ct, "key_version": ver}}
        with st.lock:
            st.stats["vault"][op] += 1
        return 200, out

    def vault_keys(self, ns, mount, sub, method, req, need, entry):
        st = self.server.state
        vs = st.vault
        name = sub[1]
        base = "%s/keys/%s" % (mount, name)
        with vs.lock:
            keys = vs.mounts[(ns, mount)]["keys"]
            k = keys.get(name)
            if len(sub) == 2:
                if method in ("GET", "HEAD"):
                    need(base, "read")
                    entry["action"] = "read"
                    with st.lock:
                        st.stats["vault"]["read"] += 1
                    if k is None:
                        raise VaultError(404)
                    return 200, {"data": vs.key_data(name, k)}
                if method in ("POST", "PUT"):
                    need(base, "update")
                    entry["action"] = "create"
                    warnings = None
                    if k is None:
                        ktype = req.get("type") or "aes256-gcm96"
                        if ktype not in VAULT_KEY_TYPES:
                            raise VaultError(400, "unknown key type %s" % ktype)
                        k = keys[name] = vs.new_key(ktype, bool(req.get("derived")))
                    else:
                        warnings = ["key %s already existed" % name]
                    return 200, {"data": vs.key_data(name, k), "warnings": warnings}
                if method == "DELETE":
                    need(base, "delete")
                    entry["action"] = "delete"
                    if k is None:
                        return 204, None
                    if not k["deletion_allowed"]:
                        raise VaultError(400, "error deleting policy %s: deletion is not "
                                         "allowed for this key" % name)
                    del keys[name]
                    return 204, None
                raise VaultError(405, "unsupported operation")
            if method not in ("POST", "PUT"):
                raise VaultError(405, "unsupported operation")
            if sub[2] == "rotate":
                need(base + "/rotate", "update")
                entry["action"] = "rotate"
                if k is None:
                    raise VaultError(400, "key not found")
                vs.rotate_key(k)
                with st.lock:
                    st.stats["vault"]["rotate"] += 1
                return 200, {"data": vs.key_data(name, k)}
            if sub[2] == "config":
                need(base + "/config", "update")
                entry["action"] = "config"
                if k is None:
                    raise VaultError(400, "no existing key named %s could be found" % name)
                self.vault_key_config(k, req)
                return 200, {"data": vs.key_data(name, k)}
        raise VaultError(404, "no handler for route \"%s\". route entry not found."
                         % "/".join([mount] + sub))

    @staticmethod
    def vault_key_config(k, req):
        """POST <mount>/keys/<name>/config, with Vault's checks."""
        if "min_decryption_version" in req:
            v = vault_int_field(req, "min_decryption_version")
            if v > k["latest"]:
                raise VaultError(400, "cannot set min decryption version of %d, latest "
                                 "key version is %d" % (v, k["latest"]))
            k["min_decryption_version"] = v or 1
        if "min_encryption_version" in req:
            v = vault_int_field(req, "min_encryption_version")
            if v > k["latest"]:
                raise VaultError(400, "cannot set min encryption version of %d, latest "
                                 "key version is %d" % (v, k["latest"]))
            k["min_encryption_version"] = v
        if k["min_encryption_version"] and \
                k["min_encryption_version"] < k["min_decryption_version"]:
            raise VaultError(400, "minimum decryption version cannot be greater than "
                             "minimum encryption version")
        if "deletion_allowed" in req:
            k["deletion_allowed"] = bool(req["deletion_allowed"])
        if "exportable" in req and req["exportable"]:
            k["exportable"] = True

    # --- admin: /_emu/vault/...
    def vault_admin(self, method, parts, query, req, reply, fail):
        st = self.server.state
        vs = st.vault
        head = parts[0] if parts else ""
        ns = req.get("namespace") or (query.get("namespace") or [""])[0] or ""
        ns = ns.strip("/")
        mount = (req.get("mount") or (query.get("mount") or ["transit"])[0]).strip("/")

        if head in ("seal", "unseal") and method == "POST":
            with vs.lock:
                vs.sealed = head == "seal"
            return reply(200, {"sealed": head == "seal"})
        if head == "ha" and method == "POST":
            mode = req.get("mode")
            if mode not in ("active", "standby", "perfstandby"):
                return fail(400, "mode must be active, standby or perfstandby")
            with vs.lock:
                vs.ha_mode = mode
                if req.get("active_addr"):
                    vs.active_addr = req["active_addr"]
            return reply(200, {"mode": mode})
        if head == "policies" and method == "POST" and len(parts) == 1:
            name, paths = req.get("name"), req.get("paths")
            if not isinstance(name, str) or not name or name in ("root", "default"):
                return fail(400, "name (not root or default) is required")
            if not isinstance(paths, dict) or not all(
                    isinstance(c, list) and all(isinstance(x, str) for x in c)
                    for c in paths.values()):
                return fail(400, "paths must map path patterns to capability lists")
            with vs.lock:
                vs.policies[(ns, name)] = {p.strip("/"): list(c) for p, c in paths.items()}
            return reply(201, {"name": name, "namespace": ns})
        if head == "tokens" and method == "POST" and len(parts) == 1:
            pols = req.get("policies", ["root"])
            ttl = req.get("ttl", 0)
            if not isinstance(pols, list) or isinstance(ttl, bool) or \
                    not isinstance(ttl, (int, float)) or ttl < 0:
                return fail(400, "policies (list) and ttl (seconds >= 0) expected")
            tok = vs.new_token(ns, pols, ttl, req.get("renewable", True),
                               req.get("explicit_max_ttl", 0), token_id=req.get("token"),
                               no_default=req.get("no_default_policy", False))
            with st.lock:
                st.stats["vault"]["tokens_issued"] += 1
            return reply(201, {"token": tok["id"], "accessor": tok["accessor"],
                               "policies": tok["policies"], "ttl": tok["ttl"]})
        if head == "tokens" and method == "GET":
            with vs.lock:
                out = [{"accessor": t["accessor"], "namespace": t["namespace"],
                        "policies": t["policies"], "ttl": t["ttl"],
                        "renewable": t["renewable"], "renewals": t["renewals"],
                        "path": t["path"],
                        "expires_in": None if t["expire"] is None else
                        round(t["expire"] - time.time(), 3)}
                       for t in vs.tokens.values()]
            return reply(200, out)
        if head == "tokens" and method == "DELETE" and len(parts) == 2:
            with vs.lock:
                gone = vs.tokens.pop(parts[1], None)
            return reply(200, {"revoked": gone is not None})
        if head == "approles" and method == "POST":
            amount = (req.get("auth_mount") or "approle").strip("/")
            if len(parts) == 1:
                role = req.get("role")
                if not isinstance(role, str) or not role:
                    return fail(400, "role (name) is required")
                rec = {"name": role, "role_id": req.get("role_id") or str(uuid.uuid4()),
                       "policies": req.get("policies", []),
                       "token_ttl": int(req.get("token_ttl", 3600)),
                       "token_max_ttl": int(req.get("token_max_ttl", 0)),
                       "secret_ids": {}}
                with vs.lock:
                    vs.approles[(ns, amount, role)] = rec
                return reply(201, {"role": role, "role_id": rec["role_id"]})
            if len(parts) == 3 and parts[2] == "secret-id":
                with vs.lock:
                    rec = vs.approles.get((ns, amount, parts[1]))
                    if rec is None:
                        return fail(404, "no such role")
                    sid = req.get("secret_id") or str(uuid.uuid4())
                    uses = int(req.get("num_uses", 0))
                    ttl = float(req.get("ttl", 0))
                    rec["secret_ids"][sid] = {"num_uses": uses, "uses_left": uses,
                                              "expire": time.time() + ttl if ttl else None}
                return reply(201, {"secret_id": sid, "num_uses": uses})
            return fail(405, "POST /_emu/vault/approles or .../approles/<role>/secret-id")
        if head == "mounts" and method == "POST" and len(parts) == 1:
            with vs.lock:
                vs.mounts.setdefault((ns, mount), {"keys": {}})
            return reply(201, {"mount": mount, "namespace": ns})
        if head == "keys":
            with vs.lock:
                if method == "GET" and len(parts) == 1:
                    return reply(200, [dict(vs.key_data(n, k), mount=m, namespace=kns)
                                       for (kns, m), mt in vs.mounts.items()
                                       for n, k in mt["keys"].items()])
                if method == "POST" and len(parts) == 1:
                    name = req.get("name")
                    ktype = req.get("type", "aes256-gcm96")
                    if not isinstance(name, str) or not name or "/" in name:
                        return fail(400, "name (without '/') is required")
                    if ktype not in VAULT_KEY_TYPES:
                        return fail(400, "type must be one of %s" % (VAULT_KEY_TYPES,))
                    mt = vs.mounts.setdefault((ns, mount), {"keys": {}})
                    if name in mt["keys"]:
                        return fail(409, "key already exists")
                    mt["keys"][name] = vs.new_key(ktype, req.get("derived", False))
                    return reply(201, vs.key_data(name, mt["keys"][name]))
                mt = vs.mounts.get((ns, mount))
                k = mt["keys"].get(parts[1]) if mt and len(parts) >= 2 else None
                if k is None:
                    return fail(404, "no such key")
                if method == "GET" and len(parts) == 2:
                    return reply(200, vs.key_data(parts[1], k))
                if method == "DELETE" and len(parts) == 2:
                    del mt["keys"][parts[1]]
                    return reply(200, {"deleted": True})
                if method == "POST" and len(parts) == 3 and parts[2] == "rotate":
                    vs.rotate_key(k)
                    return reply(200, vs.key_data(parts[1], k))
                if method == "POST" and len(parts) == 3 and parts[2] == "config":
                    try:
                        self.vault_key_config(k, req)
                    except VaultError as e:
                        return fail(400, e.errors[0])
                    return reply(200, vs.key_data(parts[1], k))
            return fail(405, "unsupported /_emu/vault/keys request")
        return fail(404, "unknown /_emu/vault endpoint")


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


class Handler(VaultHandlerMixin, http.server.BaseHTTPRequestHandler):
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

        # AWS KMS (JSON 1.1) and Tencent Cloud API 3.0 both POST to "/": the protocol's own
        # header says which.
        if self.headers.get("X-Amz-Target") is not None:
            return self.dispatch_cloud("aws", body)
        if self.headers.get("X-TC-Action") is not None:
            return self.dispatch_cloud("tencent", body)
        iam = path == "/identity/token" or path.startswith("/identity/")
        vault = path == "/v1" or path.startswith("/v1/")
        kind = "iam" if iam else "vault" if vault else "kp"
        corr = self.headers.get("Correlation-Id") or str(uuid.uuid4())
        entry = {"t": time.time(), "method": self.command, "path": path,
                 "status": None, "fault": None,
                 "instance": self.headers.get("Bluemix-Instance"),
                 "auth": "none", "iam": iam, "vault": vault, "correlation_id": corr,
                 "content_type": self.headers.get("Content-Type")}
        self.auth_verdict = ("none", None)
        self.vault_verdict = ("none", None)
        if vault:
            self.vault_verdict = st.vault.classify(self.headers.get("X-Vault-Token"))
            entry["auth"] = self.vault_verdict[0]
            entry["instance"] = None
            entry["vault_request"] = self.headers.get("X-Vault-Request") == "true"
        elif not iam:
            self.auth_verdict = self.classify_auth()
            v = self.auth_verdict[0]
            entry["auth"] = "invalid" if v == "malformed" else v
        with st.lock:
            st.stats["requests"] += 1
            st.stats[kind + "_requests"] += 1
        fault = st.take_fault(path)
        try:
            if fault:
                entry["fault"] = fault["kind"]
                kind = fault["kind"]
                if kind == "drop":
                    self.drop()
                    return
                if kind == "status":
                    status, headers, out = self.fault_reply(fault, iam, vault)
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
            if not iam and not vault and self.kp_throttled_reply(path, entry):
                return
            if iam:
                status, headers, out = self.iam(path, body, entry)
            elif vault:
                status, headers, out = self.vault(path, query, body, entry)
            else:
                status, headers, out = self.kp(path, query, body, entry)
            if not vault:
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

    def dispatch_cloud(self, kind, body):
        """One AWS KMS or Tencent KMS request: faults, then the emulated service. Faults match
        path_prefix against "/_aws/<Operation>" or "/_tencent/<Action>"."""
        st = self.server.state
        aws = kind == "aws"
        op = (self.headers.get("X-Amz-Target") or "").replace("TrentService.", "") if aws \
            else self.headers.get("X-TC-Action") or ""
        entry = {"t": time.time(), "method": self.command, "path": self.path, "status": None,
                 "fault": None, "auth": "none", kind: True, "signature": "not checked",
                 "content_type": self.headers.get("Content-Type")}
        with st.lock:
            st.stats["requests"] += 1
            st.stats[kind + "_requests"] += 1
        fault = st.take_fault("/_%s/%s" % (kind, op))
        try:
            if fault:
                entry["fault"] = fault["kind"]
                if fault["kind"] == "drop":
                    self.drop()
                    return
                if fault["kind"] == "status":
                    status = int(fault.get("status") or 503)
                    headers = {"Content-Type": "application/json"}
                    if fault.get("retry_after") is not None:
                        headers["Retry-After"] = str(fault["retry_after"])
                    out = jdump({"__type": "ServiceUnavailableException" if status >= 500 else
                                 "KmsemuInjectedFault", "message": "kmsemu: injected fault "
                                 "(HTTP %d)" % status}) if aws else jdump({"Response": {
                                     "Error": {"Code": "InternalError", "Message":
                                               "kmsemu: injected fault (HTTP %d)" % status},
                                     "RequestId": str(uuid.uuid4())}})
                    entry["status"] = status
                    self.send(status, headers, out)
                    return
                if fault["kind"] == "garbage":
                    entry["status"] = 200
                    self.send(200, {"Content-Type": "application/json"},
                              b"<html><body>502 upstream garbage \x00\xff</body></html>")
                    return
                if fault["kind"] == "delay":
                    time.sleep(max(0.0, float(fault.get("seconds", 1.0))))
            mod = kmsemu_aws if aws else kmsemu_tencent
            status, headers, out = mod.handle(getattr(st, kind), self, body, entry)
            if fault and fault["kind"] == "truncated":
                out, status = out[:max(1, len(out) // 2)], 200
            entry["status"] = status
            entry["auth"] = "valid" if entry.get("signature") == "valid" else "invalid"
            self.send(status, headers, out)
        finally:
            with st.lock:
                st.stats["auth"][entry["auth"]] = st.stats["auth"].get(entry["auth"], 0) + 1
                st.log.append(entry)
            self.log_message('"%s %s %s" %s fault=%s error=%s', self.command, kind, op,
                             entry["status"], entry["fault"], entry.get("error_code"))

    def kp_throttled_reply(self, path, entry):
        """Beyond the instance's rate: 429 with Key Protect's text and a Retry-After in whole
        seconds (RFC 9110 delay-seconds, rounded up). -> True if it answered."""
        if not path.startswith("/api/v2/"):
            return False
        wait = self.server.state.kp_throttle_take(self.headers.get("Bluemix-Instance") or "")
        if wait is None:
            return False
        entry["status"] = 429
        entry["throttled"] = True
        self.send(429, {"Content-Type": "application/json",
                        "Retry-After": str(max(1, math.ceil(wait)))},
                  jdump(KPError(429, error_msg="Too Many Requests: Please wait a few minutes "
                                "and try again.").body()))
        return True

    def fault_reply(self, fault, iam, vault=False):
        status = int(fault.get("status") or 503)
        headers = {"Content-Type": "application/json"}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        if vault:
            return status, headers, jdump(
                {"errors": ["kmsemu: injected fault (HTTP %d)" % status]})
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

    def kp_event_ack(self, body, entry):
        """POST /api/v2/event_ack: an adopter's acknowledgement of a key event."""
        st = self.server.state
        entry["action"] = "event_ack"
        inst = self.authorize(entry)
        ctx = "Event could not be acknowledged"

        def bad(msg, code="BAD_BODY_ERR", target=None):
            return KPError(400, code, msg, ctx, target=target)
        if not body.strip():
            raise KPError(400, "NO_BODY_ERR", "Missing body in request", ctx)
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise bad("Invalid body data was passed: Please ensure the data passed had "
                      "valid formatting with no invalid characters")
        if not isinstance(req, dict):
            raise bad("Invalid body data was passed: not an object")
        for f in req:
            if f not in ("metadata", "resources"):
                raise bad("Invalid body data was passed: json: unknown field \"%s\"" % f)
        md, res = req.get("metadata"), req.get("resources")
        if not isinstance(md, dict) or md.get("collectionType") != EVENT_ACK_CT or \
                md.get("collectionTotal") != 1:
            raise bad("The field `metadata` must be: collectionType %s and "
                      "collectionTotal 1" % EVENT_ACK_CT, "INVALID_FIELD_ERR", "metadata")
        if not isinstance(res, list) or len(res) != 1 or not isinstance(res[0], dict):
            raise bad("The field `resources` must be: one event acknowledgement",
                      "INVALID_FIELD_ERR", "resources")
        ack = res[0]
        for f in ack:
            if f not in EVENT_ACK_FIELDS:
                raise bad("Invalid body data was passed: json: unknown field \"%s\"" % f)
        for f in ("eventId", "adopterKeyState", "timestamp"):
            if not isinstance(ack.get(f), str) or not ack[f]:
                raise bad("The field `%s` must be: a non-empty string" % f,
                          "INVALID_FIELD_ERR", f)
        try:
            datetime.datetime.fromisoformat(ack["timestamp"].replace("Z", "+00:00"))
        except ValueError:
            raise bad("The field `timestamp` must be: an RFC 3339 date",
                      "INVALID_FIELD_ERR", "timestamp")
        ksd = ack.get("keyStateData", {})
        if not isinstance(ksd, dict) or any(
                f not in ("rewrappedKeyVersion", "keyVersion") or not isinstance(v, str)
                for f, v in ksd.items()):
            raise bad("The field `keyStateData` must be: an object of key version ids",
                      "INVALID_FIELD_ERR", "keyStateData")
        if ack["adopterKeyState"] == "DEK_ENABLED" and not (
                ksd.get("rewrappedKeyVersion") or ksd.get("keyVersion")):
            raise bad("The field `keyStateData.rewrappedKeyVersion` must be: given for "
                      "DEK_ENABLED", "INVALID_FIELD_ERR", "keyStateData")
        with st.lock:
            st.event_acks.append(dict(ack, instance=inst, t=time.time()))
            st.stats["event_acks"] += 1
        return 204, {}, b""

    def kp_inner(self, path, query, body, entry):
        st = self.server.state
        if path == "/api/v2/event_ack":
            if self.command != "POST":
                raise KPError(405, error_msg="Method Not Allowed: %s %s is not "
                              "emulated by kmsemu" % (self.command, path))
            return self.kp_event_ack(body, entry)
        if path == "/api/v2/keys":
            if self.command != "POST":
                raise KPError(405, error_msg="Method Not Allowed: %s %s is not "
                              "emulated by kmsemu" % (self.command, path))
            return self.kp_create(body, entry)
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
            if action == "rotate":
                return self.kp_rotate(k, body)
            if action not in ("wrap", "unwrap", "rewrap"):
                raise KPError(400, "KMSEMU_UNSUPPORTED_ACTION",
                              "kmsemu emulates only wrap, unwrap, rewrap and rotate; "
                              "use the /_emu/ admin API for other lifecycle changes",
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

    def kp_rotate(self, k, body):
        """actions/rotate: a new version of a root key, 204 No Content. The body is empty,
        or {"payload": b64} for an imported key. The lock is held."""
        ctx = "Rotate with key could not be performed"
        payload = None
        if body.strip():
            try:
                req = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise KPError(400, "BAD_BODY_ERR", "Invalid body data was passed: Please "
                              "ensure the data passed had valid formatting with no invalid "
                              "characters", ctx)
            if not isinstance(req, dict) or any(f != "payload" for f in req):
                raise KPError(400, "BAD_BODY_ERR", "Invalid body data was passed: only "
                              "`payload` may be given", ctx)
            if "payload" in req:
                if not k["imported"]:
                    raise KPError(400, "INVALID_FIELD_ERR", "The field `payload` must be: "
                                  "given only for an imported key", ctx, target="payload")
                payload = key_payload(req["payload"], ctx)
        if k["imported"] and payload is None:
            raise KPError(400, "INVALID_FIELD_ERR", "The field `payload` must be: given for "
                          "an imported key", ctx, target="payload")
        if k["state"] == 5:
            raise KPError(410, "KEY_DELETED_ERR", "Key has already been deleted: Please "
                          "delete references to this key", ctx)
        if k["state"] != 1:  # [STATES]: a Deactivated key only unwraps and rewraps
            raise KPError(409, "KEY_ACTION_INVALID_STATE_ERR", "Key is not in a valid state",
                          "Key is not in active state: " + ctx)
        self.server.state.stats["actions"]["rotate"] += 1
        k["versions"].append(new_version(payload))
        k["rotated"] = k["updated"] = time.time()
        return 204, {}, b""

    def kp_create(self, body, entry):
        """POST /api/v2/keys: one key in the documented collection body; 201 with the key."""
        st = self.server.state
        entry["action"] = "create"
        inst = self.authorize(entry)
        ctx = "Key could not be created"
        try:
            req = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            req = None
        meta = req.get("metadata") if isinstance(req, dict) else None
        res = req.get("resources") if isinstance(req, dict) else None
        if (not isinstance(meta, dict) or meta.get("collectionType") != KEY_CT or
                meta.get("collectionTotal") != 1 or not isinstance(res, list) or
                len(res) != 1 or not isinstance(res[0], dict)):
            raise KPError(400, "BAD_BODY_ERR", "Invalid body data was passed: Please ensure "
                          "the data passed had valid formatting with no invalid characters: "
                          "metadata {collectionType %s, collectionTotal 1} and one resource"
                          % KEY_CT, ctx)
        r = res[0]
        name = r.get("name")
        if not isinstance(name, str) or not 2 <= len(name) <= 90:
            raise KPError(400, "INVALID_FIELD_ERR", "The field `name` must be: a string of 2 "
                          "to 90 characters", ctx, target="name")
        if r.get("type", KEY_CT) != KEY_CT:
            raise KPError(400, "INVALID_FIELD_ERR", "The field `type` must be: " + KEY_CT,
                          ctx, target="type")
        if r.get("extractable", True) is not False:
            raise KPError(400, "KMSEMU_UNSUPPORTED_KEY",
                          "kmsemu creates only root keys (extractable: false)", ctx)
        material = None
        if r.get("payload") is not None:
            material = key_payload(r["payload"], ctx)
        kid = str(uuid.uuid4())
        now = time.time()
        with st.lock:
            k = {"id": kid, "instance": inst, "name": name,
                 "description": r.get("description"), "state": 1, "created": now,
                 "updated": now, "rotated": None, "deleted_at": None,
                 "imported": material is not None, "versions": [new_version(material, kid)]}
            st.keys[kid] = k
            out = key_resource(k)
        entry["key_id"] = kid
        return 201, {"Content-Type": "application/json"}, jdump(
            {"metadata": {"collectionType": KEY_CT, "collectionTotal": 1},
             "resources": [out]})

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

        if head == "vault":
            return self.vault_admin(method, parts[1:], query, req, reply, fail)
        if head in ("aws", "tencent"):
            return reply(*getattr(st, head).admin(method, parts[1:], req))
        if head == "event_acks" and method in ("GET", "DELETE"):
            with st.lock:
                out = list(st.event_acks)
                if method == "DELETE":
                    st.event_acks = []
            return reply(200, out)
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
                unknown = set(req) - {"token_ttl", "kp_rate_limit", "kp_burst"}
                if unknown:
                    return fail(400, "unknown config keys: %s" % sorted(unknown))
                err = st.kp_throttle_config(req)
                if err:
                    return fail(400, err)
            if method in ("GET", "POST"):
                return reply(200, dict({"token_ttl": st.token_ttl}, **st.kp_throttle_view()))
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
        prog="kmsemu", description="IBM Key Protect + IAM token API and Vault "
        "Transit test emulator (HTTPS on 127.0.0.1).")
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
    ap.add_argument("--metadata-port-file", metavar="FILE",
                    help="also serve the AWS IMDSv2 and Tencent CVM metadata endpoints on "
                    "plain HTTP on an ephemeral 127.0.0.1 port; write that port here")
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
    if a.metadata_port_file:
        try:
            msrv = kmsemu_metadata.start(state, 0, a.quiet)
        except OSError as e:
            sys.stderr.write("kmsemu: cannot listen for the metadata service: %s\n" % e)
            return 2
        write_port_file(a.metadata_port_file, msrv.server_address[1])
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
