"""kmsemu_tencent - Tencent Cloud KMS (API 3.0, version 2019-01-18) for kmsemu, with
TC3-HMAC-SHA256 signature verification.

Follows Tencent Cloud's API 3.0 documentation: the common request headers (X-TC-Action,
X-TC-Version, X-TC-Region, X-TC-Timestamp, X-TC-Token, Authorization), "Signature v3"
(TC3-HMAC-SHA256), the response envelope {"Response": {..., "RequestId"}} with errors as
Response.Error.{Code, Message}, the common error codes, and KMS's Encrypt, Decrypt,
ReEncrypt, DescribeKey, CreateKey, DisableKey, EnableKey, ScheduleKeyDeletion,
CancelKeyDeletion, ArchiveKey, CancelKeyArchive and RotateKey with their error codes. A test
double: key material lives in process memory only.
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "2019-01-18"
SERVICE = "kms"
DEFAULT_REGION = "ap-guangzhou"
UIN = 100000000001
APPID = 1250000000
# "If the difference between Timestamp and your current system time is larger than five
# minutes, the request fails."
MAX_SKEW = 300
MAX_PLAINTEXT = 4096
MAX_CONTEXT = 1024
MAGIC = b"\x01kmsemu-tc"
KEY_STATES = ("Enabled", "Disabled", "PendingDelete", "PendingImport", "Archived")
OPERATIONS = {
    # action: (required, optional) parameters
    "Encrypt": (("KeyId", "Plaintext"), ("EncryptionContext",)),
    "Decrypt": (("CiphertextBlob",), ("EncryptionContext", "EncryptionPublicKey",
                                      "EncryptionAlgorithm")),
    "ReEncrypt": (("CiphertextBlob",), ("DestinationKeyId", "SourceEncryptionContext",
                                        "DestinationEncryptionContext")),
    "DescribeKey": (("KeyId",), ("MemberAccount",)),
    "CreateKey": (("Alias",), ("Description", "KeyUsage", "Type", "Tags", "HsmClusterId")),
    "DisableKey": (("KeyId",), ("MemberAccount",)),
    "EnableKey": (("KeyId",), ("MemberAccount",)),
    "ScheduleKeyDeletion": (("KeyId", "PendingWindowInDays"), ("MemberAccount",)),
    "CancelKeyDeletion": (("KeyId",), ("MemberAccount",)),
    "ArchiveKey": (("KeyId",), ("MemberAccount",)),
    "CancelKeyArchive": (("KeyId",), ("MemberAccount",)),
    "RotateKey": (("KeyId",), ()),
}
CRYPTO_OPS = ("Encrypt", "Decrypt", "ReEncrypt")
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,59}$")


class TcError(Exception):
    def __init__(self, code, message):
        super().__init__(code)
        self.code, self.message = code, message


def b64e(b):
    return base64.b64encode(b).decode("ascii")


def _hmac(k, m):
    return hmac.new(k, m.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(secret_key, date, service, string_to_sign):
    k = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k = _hmac(k, service)
    k = _hmac(k, "tc3_request")
    return hmac.new(k, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sig_failure():
    return TcError("AuthFailure.SignatureFailure", "The provided credentials could not be "
                   "validated. Please check your signature is correct.")


class TencentKms:
    """One Tencent Cloud account in one region: SecretIds, CMKs, rate limit, CAM role."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.region = DEFAULT_REGION
            self.secrets = {}     # SecretId -> {"key", "token", "expires", "allow"}
            self.keys = {}
            self.rate = None      # requests per second per action, None = unlimited
            self.window = {}      # action -> [second, count]
            self.throttled = 0
            self.stats = {op: 0 for op in OPERATIONS}
            self.role = None

    # --- keys
    @staticmethod
    def new_material():
        return {"id": secrets.token_bytes(16), "material": os.urandom(32), "t": time.time()}

    def create_key(self, alias, description="", usage="ENCRYPT_DECRYPT", ktype=1):
        now = int(time.time())
        kid = str(uuid.uuid1())
        k = {"id": kid, "alias": alias, "description": description, "usage": usage,
             "created": now, "state": "PendingImport" if ktype == 2 else "Enabled",
             "origin": "EXTERNAL" if ktype == 2 else "TENCENT_KMS",
             "materials": [] if ktype == 2 else [self.new_material()],
             "deletion": 0, "rotated": 0}
        self.keys[kid] = k
        return k

    def metadata(self, k):
        return {"KeyId": k["id"], "Alias": k["alias"], "CreateTime": k["created"],
                "Description": k["description"], "KeyState": k["state"],
                "KeyUsage": k["usage"], "Type": 2, "CreatorUin": UIN,
                "KeyRotationEnabled": False, "Owner": "user", "NextRotateTime": 0,
                "DeletionDate": k["deletion"], "Origin": k["origin"], "ValidTo": 0,
                "ResourceId": "creatorUin/%d/%s" % (UIN, k["id"]), "HsmClusterId": "",
                "RotateDays": 0, "LastRotateTime": k["rotated"], "IsSyncReplica": 0,
                "SourceRegion": "", "SyncStatus": 0, "SyncMessages": "",
                "SyncStartTime": 0, "SyncEndTime": 0, "SourceHsmClusterId": "",
                "CreatorUinString": str(UIN)}

    def find(self, kid):
        if not isinstance(kid, str) or not kid:
            raise TcError("InvalidParameterValue.InvalidKeyId", "The KeyId is invalid.")
        k = self.keys.get(kid)
        if k is None:
            raise TcError("ResourceUnavailable.CmkNotFound", "The CMK `%s` does not exist."
                          % kid)
        return k

    @staticmethod
    def usable(k, op):
        s = k["state"]
        if s == "Enabled" or (s == "Archived" and op == "Decrypt"):
            return
        if s == "Disabled":
            raise TcError("ResourceUnavailable.CmkDisabled", "The CMK `%s` has been disabled."
                          % k["id"])
        if s == "Archived":
            raise TcError("ResourceUnavailable.CmkArchived", "The CMK `%s` has been archived."
                          % k["id"])
        raise TcError("ResourceUnavailable.CmkStateNotSupport", "The CMK `%s` is %s; this "
                      "operation cannot be performed in this state." % (k["id"], s))

    @staticmethod
    def context(req, name):
        c = req.get(name)
        if c is None or c == "":
            return ""
        if not isinstance(c, str):
            raise TcError("InvalidParameter", "The parameter `%s` must be a string." % name)
        if len(c) > MAX_CONTEXT:
            raise TcError("InvalidParameterValue", "The parameter `%s` is longer than %d "
                          "characters." % (name, MAX_CONTEXT))
        try:
            obj = json.loads(c)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise TcError("InvalidParameterValue", "The parameter `%s` must be the JSON string "
                          "of key/value pairs." % name)
        return c

    @staticmethod
    def ad(k, ctx):
        # The exact string given at Encrypt: "the same parameter" is needed at Decrypt.
        return json.dumps({"key": k["id"], "ctx": ctx}).encode()

    def seal(self, k, pt, ctx):
        m = k["materials"][-1]
        iv = os.urandom(12)
        ct = AESGCM(m["material"]).encrypt(iv, pt, self.ad(k, ctx))
        return b64e(MAGIC + uuid.UUID(k["id"]).bytes + m["id"] + iv + ct)

    def open(self, blob, ctx, op):
        try:
            raw = base64.b64decode(blob.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeError, AttributeError):
            raw = b""
        n = len(MAGIC)
        if len(raw) < n + 16 + 16 + 12 + 16 or raw[:n] != MAGIC:
            raise TcError("InvalidParameterValue.InvalidCiphertext", "The ciphertext format "
                          "is incorrect.")
        kid = str(uuid.UUID(bytes=raw[n:n + 16]))
        k = self.keys.get(kid)
        if k is None:
            raise TcError("ResourceUnavailable.CmkNotFound", "The CMK `%s` does not exist."
                          % kid)
        self.usable(k, "Decrypt" if op != "Encrypt" else op)
        m = next((x for x in k["materials"] if x["id"] == raw[n + 16:n + 32]), None)
        if m is None:
            raise TcError("InvalidParameterValue.InvalidCiphertext", "The ciphertext format "
                          "is incorrect.")
        try:
            pt = AESGCM(m["material"]).decrypt(raw[n + 32:n + 44], raw[n + 44:],
                                               self.ad(k, ctx))
        except InvalidTag:
            raise TcError("FailedOperation.DecryptError", "Decryption failed.")
        return k, m, pt

    # --- operations
    def call(self, op, req):
        required, optional = OPERATIONS[op]
        for p in req:
            if p not in required and p not in optional:
                raise TcError("UnknownParameter", "The parameter `%s` is not recognized." % p)
        for p in required:
            if p not in req:
                raise TcError("MissingParameter", "The request is missing a required parameter "
                              "`%s`." % p)
        with self.lock:
            self.stats[op] += 1
            return getattr(self, "op_" + op)(req)

    def op_Encrypt(self, req):
        k = self.find(req["KeyId"])
        p = req["Plaintext"]
        try:
            pt = base64.b64decode(p.encode("ascii"), validate=True) if isinstance(p, str) else b""
        except (binascii.Error, ValueError, UnicodeError):
            pt = b""
        if not pt or len(pt) > MAX_PLAINTEXT:
            raise TcError("InvalidParameterValue.InvalidPlaintext", "The Plaintext must be "
                          "base64 of 1 to %d bytes." % MAX_PLAINTEXT)
        ctx = self.context(req, "EncryptionContext")
        self.usable(k, "Encrypt")
        if k["usage"] != "ENCRYPT_DECRYPT":
            raise TcError("InvalidParameterValue.InvalidKeyUsage", "The KeyUsage of the CMK "
                          "does not allow Encrypt.")
        return {"CiphertextBlob": self.seal(k, pt, ctx), "KeyId": k["id"]}

    def op_Decrypt(self, req):
        if req.get("EncryptionPublicKey"):
            raise TcError("UnsupportedOperation", "kmsemu does not emulate "
                          "EncryptionPublicKey.")
        ctx = self.context(req, "EncryptionContext")
        k, _, pt = self.open(req["CiphertextBlob"], ctx, "Decrypt")
        return {"KeyId": k["id"], "Plaintext": b64e(pt)}

    def op_ReEncrypt(self, req):
        sctx = self.context(req, "SourceEncryptionContext")
        dctx = self.context(req, "DestinationEncryptionContext")
        k, m, pt = self.open(req["CiphertextBlob"], sctx, "ReEncrypt")
        dest = self.find(req["DestinationKeyId"]) if req.get("DestinationKeyId") else k
        self.usable(dest, "Encrypt")
        # Documented: the same CMK, not rotated since, gives back the original ciphertext.
        if dest is k and m is k["materials"][-1] and sctx == dctx:
            return {"CiphertextBlob": req["CiphertextBlob"], "KeyId": k["id"],
                    "SourceKeyId": k["id"], "ReEncrypted": False}
        return {"CiphertextBlob": self.seal(dest, pt, dctx), "KeyId": dest["id"],
                "SourceKeyId": k["id"], "ReEncrypted": True}

    def op_DescribeKey(self, req):
        return {"KeyMetadata": self.metadata(self.find(req["KeyId"]))}

    def op_CreateKey(self, req):
        alias = req["Alias"]
        if not isinstance(alias, str) or not ALIAS_RE.match(alias):
            raise TcError("InvalidParameterValue.InvalidAlias", "The Alias must be 1-60 "
                          "letters, digits, '-' and '_', starting with a letter or digit.")
        if any(k["alias"] == alias for k in self.keys.values()):
            raise TcError("InvalidParameterValue.AliasAlreadyExists", "The alias already "
                          "exists.")
        ktype = req.get("Type", 1)
        if ktype not in (1, 2):
            raise TcError("InvalidParameterValue.InvalidType", "Type must be 1 or 2.")
        usage = req.get("KeyUsage", "ENCRYPT_DECRYPT")
        if usage != "ENCRYPT_DECRYPT":
            raise TcError("InvalidParameterValue.InvalidKeyUsage", "kmsemu emulates "
                          "ENCRYPT_DECRYPT keys only.")
        k = self.create_key(alias, req.get("Description", ""), usage, ktype)
        return {"KeyId": k["id"], "Alias": alias, "CreateTime": k["created"],
                "Description": k["description"], "KeyState": k["state"], "KeyUsage": usage,
                "TagCode": 0, "TagMsg": "", "HsmClusterId": ""}

    def state_change(self, req, frm, to):
        k = self.find(req["KeyId"])
        if k["state"] not in frm:
            raise TcError("ResourceUnavailable.CmkStateNotSupport", "The CMK `%s` is %s; this "
                          "operation cannot be performed in this state." % (k["id"], k["state"]))
        k["state"] = to
        return k

    def op_DisableKey(self, req):
        self.state_change(req, ("Enabled", "Disabled"), "Disabled")
        return {}

    def op_EnableKey(self, req):
        self.state_change(req, ("Enabled", "Disabled"), "Enabled")
        return {}

    def op_ArchiveKey(self, req):
        self.state_change(req, ("Enabled", "Archived"), "Archived")
        return {}

    def op_CancelKeyArchive(self, req):
        self.state_change(req, ("Archived",), "Enabled")
        return {}

    def op_ScheduleKeyDeletion(self, req):
        k = self.find(req["KeyId"])
        days = req["PendingWindowInDays"]
        if isinstance(days, bool) or not isinstance(days, int) or not 7 <= days <= 30:
            raise TcError("InvalidParameter.InvalidPendingWindowInDays", "The schedule deletion "
                          "time parameter is invalid.")
        if k["state"] == "Enabled":
            raise TcError("ResourceUnavailable.CmkShouldBeDisabled", "An enabled CMK cannot be "
                          "scheduled for deletion.")
        if k["state"] not in ("Disabled", "PendingImport"):
            raise TcError("ResourceUnavailable.CmkStateNotSupport", "The CMK `%s` is %s; this "
                          "operation cannot be performed in this state." % (k["id"], k["state"]))
        k["state"] = "PendingDelete"
        k["deletion"] = int(time.time()) + days * 86400
        return {"DeletionDate": k["deletion"], "KeyId": k["id"]}

    def op_CancelKeyDeletion(self, req):
        k = self.find(req["KeyId"])
        if k["state"] != "PendingDelete":
            raise TcError("ResourceUnavailable.CmkNotPendingDelete", "As the CMK is not "
                          "scheduled for deletion, you cannot cancel the schedule deletion.")
        k["state"], k["deletion"] = "Disabled", 0
        return {"KeyId": k["id"]}

    def op_RotateKey(self, req):
        k = self.find(req["KeyId"])
        if k["origin"] == "EXTERNAL":
            raise TcError("UnsupportedOperation.ExternalCmkCanNotRotate", "External CMKs cannot "
                          "be rotated.")
        self.usable(k, "RotateKey")
        k["materials"].append(self.new_material())
        # Whole seconds, as DescribeKey reports them; never twice the same.
        k["rotated"] = max(int(time.time()), k["rotated"] + 1)
        return {}

    # --- rate limit: per action, per second, as Tencent documents its limits
    def admit(self, op):
        with self.lock:
            if self.rate is None:
                return None
            sec = int(time.time())
            w = self.window.setdefault(op, [sec, 0])
            if w[0] != sec:
                w[0], w[1] = sec, 0
            w[1] += 1
            if w[1] > self.rate:
                self.throttled += 1
                return w[1]
            return None

    # --- TC3-HMAC-SHA256
    def verify(self, handler, body, op):
        h = handler.headers
        auth = h.get("Authorization")
        if not auth:
            raise TcError("AuthFailure.InvalidAuthorization", "The request header "
                          "`Authorization` is missing.")
        algo, _, rest = auth.strip().partition(" ")
        fields = {}
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if eq:
                fields[name] = value
        if algo != "TC3-HMAC-SHA256" or not all(
                f in fields for f in ("Credential", "SignedHeaders", "Signature")):
            raise TcError("AuthFailure.InvalidAuthorization", "The request header "
                          "`Authorization` does not follow the TC3-HMAC-SHA256 format.")
        ts = h.get("X-TC-Timestamp")
        if not ts or not ts.isdigit():
            raise TcError("MissingParameter", "The request is missing a required parameter "
                          "`Timestamp`.")
        now = time.time()
        if abs(now - int(ts)) > MAX_SKEW:
            raise TcError("AuthFailure.SignatureExpire", "Signature expired. Timestamp and "
                          "server time cannot differ by more than five minutes.")
        cred = fields["Credential"].split("/")
        if len(cred) != 4:
            raise sig_failure()
        sid, date, service, term = cred
        with self.lock:
            rec = self.secrets.get(sid)
        if rec is None:
            raise TcError("AuthFailure.SecretIdNotFound", "The SecretId is not found, please "
                          "ensure that your SecretId is correct.")
        if rec.get("token") is not None:
            tok = h.get("X-TC-Token")
            if tok is None or not hmac.compare_digest(tok.encode(), rec["token"].encode()) or \
                    (rec.get("expires") and now >= rec["expires"]):
                raise TcError("AuthFailure.TokenFailure", "Token error: the token is missing, "
                              "invalid or expired.")
        utc_date = datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime(
            "%Y-%m-%d")
        signed = fields["SignedHeaders"].split(";")
        if date != utc_date or service != SERVICE or term != "tc3_request" or \
                "content-type" not in signed or "host" not in signed or \
                signed != sorted(signed):
            raise sig_failure()
        canon = "".join("%s:%s\n" % (n, (h.get(n) or "").strip().lower()) for n in signed)
        creq = "\n".join([handler.command, "/", "", canon, ";".join(signed),
                          hashlib.sha256(body).hexdigest()])
        sts = "\n".join(["TC3-HMAC-SHA256", ts, "/".join(cred[1:]),
                         hashlib.sha256(creq.encode("utf-8")).hexdigest()])
        want = tc3_signature(rec["key"], date, SERVICE, sts)
        if not hmac.compare_digest(want, fields["Signature"]):
            raise sig_failure()
        allow = rec.get("allow")
        if allow is not None and op not in allow:
            raise TcError("UnauthorizedOperation", "You are not authorized to perform operation "
                          "(kms:%s)." % op)
        return sid

    # --- credentials
    def add_secret(self, sid=None, key=None, token=None, expires=None, allow=None):
        sid = sid or "AKID" + "".join(secrets.choice(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))
        key = key or "".join(secrets.choice(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))
        with self.lock:
            self.secrets[sid] = {"key": key, "token": token, "expires": expires,
                                 "allow": set(allow) if allow is not None else None}
        return sid, key

    def role_credentials(self):
        with self.lock:
            r = self.role
            cur = self.secrets.get(r.get("current")) if r.get("current") else None
            now = time.time()
            if cur is None or now >= cur["expires"] - r["ttl"] / 2:
                token = secrets.token_urlsafe(48)
                sid, _ = self.add_secret(token=token, expires=now + r["ttl"],
                                         allow=r.get("allow"))
                r["current"] = sid
                r["issued"] = r.get("issued", 0) + 1
                cur = self.secrets[sid]
            exp = int(cur["expires"])
            return {"TmpSecretId": r["current"], "TmpSecretKey": cur["key"],
                    "ExpiredTime": exp,
                    "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)),
                    "Token": cur["token"], "Code": "Success"}

    # --- admin: /_emu/tencent/...
    def admin(self, method, parts, req):
        head = parts[0] if parts else ""
        with self.lock:
            if head == "config" and method in ("GET", "POST"):
                if "region" in req:
                    self.region = str(req["region"])
                if "rate_limit" in req:
                    rl = req["rate_limit"]
                    if rl is not None and (isinstance(rl, bool) or not isinstance(rl, int)
                                           or rl <= 0):
                        return 400, {"error": "rate_limit must be a positive integer or null"}
                    self.rate = rl
                    self.window = {}
                return 200, {"region": self.region, "rate_limit": self.rate,
                             "throttled": self.throttled}
            if head == "secrets" and method == "POST":
                allow = req.get("allow")
                if allow is not None and not (isinstance(allow, list) and all(
                        a in OPERATIONS for a in allow)):
                    return 400, {"error": "allow must list actions of %s" % (list(OPERATIONS),)}
                exp = req.get("expires_in")
                sid, key = self.add_secret(req.get("secret_id"), req.get("secret_key"),
                                           req.get("token"),
                                           time.time() + exp if exp else None, allow)
                return 201, {"secret_id": sid, "secret_key": key, "token": req.get("token")}
            if head == "secrets" and method == "DELETE" and len(parts) == 2:
                return 200, {"deleted": self.secrets.pop(parts[1], None) is not None}
            if head == "role" and method == "POST":
                name, ttl = req.get("name", "keyd-role"), req.get("ttl", 7200)
                if not isinstance(name, str) or not name or "/" in name or isinstance(
                        ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
                    return 400, {"error": "name (no '/') and ttl (seconds > 0) expected"}
                self.role = {"name": name, "ttl": float(ttl), "allow": req.get("allow")}
                return 201, {"name": name, "ttl": ttl}
            if head == "role" and method == "GET":
                r = self.role or {}
                return 200, {"name": r.get("name"), "issued": r.get("issued", 0),
                             "current": r.get("current")}
            if head == "call" and method == "POST":
                op = req.get("Action")
                if op not in OPERATIONS:
                    return 400, {"error": "Action must be one of %s" % (list(OPERATIONS),)}
                try:
                    return 200, {"Response": dict(self.call(op, req.get("Params") or {}),
                                                  RequestId=str(uuid.uuid4()))}
                except TcError as e:
                    return 200, {"Response": {"Error": {"Code": e.code, "Message": e.message},
                                              "RequestId": str(uuid.uuid4())}}
            if head == "keys" and method == "GET" and len(parts) == 1:
                return 200, [dict(self.metadata(k), Materials=len(k["materials"]))
                             for k in self.keys.values()]
            if head == "keys" and method == "POST" and len(parts) == 3 and parts[2] == "state":
                k = self.keys.get(parts[1])
                if k is None:
                    return 404, {"error": "no such key"}
                if req.get("state") not in KEY_STATES:
                    return 400, {"error": "state must be one of %s" % (KEY_STATES,)}
                k["state"] = req["state"]
                return 200, self.metadata(k)
            if head == "stats" and method == "GET":
                return 200, {"actions": dict(self.stats), "throttled": self.throttled,
                             "role_credentials_issued": (self.role or {}).get("issued", 0)}
        return 404, {"error": "unknown /_emu/tencent endpoint"}


def envelope(rid, out=None, err=None):
    resp = dict(out or {})
    if err is not None:
        resp = {"Error": {"Code": err.code, "Message": err.message}}
    resp["RequestId"] = rid
    # API 3.0 answers HTTP 200 with the Error in the body for failed calls too.
    return 200, {"Content-Type": "application/json"}, json.dumps({"Response": resp}).encode()


def handle(tc, handler, body, entry):
    """Serves one API 3.0 request to KMS: -> (status, headers, body)."""
    rid = str(uuid.uuid4())
    h = handler.headers
    op = h.get("X-TC-Action") or ""
    entry["action"] = op
    entry["request_id"] = rid
    try:
        if handler.command != "POST":
            raise TcError("UnsupportedProtocol", "kmsemu emulates POST with application/json "
                          "only.")
        ctype = (h.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise TcError("UnsupportedProtocol", "The Content-Type `%s` is not supported with "
                          "TC3-HMAC-SHA256; use application/json." % ctype)
        if op not in OPERATIONS:
            raise TcError("InvalidAction", "The requested action `%s` does not exist." % op)
        if h.get("X-TC-Version") != VERSION:
            raise TcError("NoSuchVersion", "The requested version `%s` of API `%s` does not "
                          "exist." % (h.get("X-TC-Version"), op))
        region = h.get("X-TC-Region")
        if not region:
            raise TcError("MissingParameter", "The request is missing a required parameter "
                          "`Region`.")
        entry["secret_id"] = tc.verify(handler, body, op)
        entry["signature"] = "valid"
        if region != tc.region:
            raise TcError("UnsupportedRegion", "The region `%s` is not supported." % region)
        n = tc.admit(op) if op in CRYPTO_OPS else None
        if n is not None:
            raise TcError("RequestLimitExceeded", "Your current request times equals to `%d` "
                          "in a second, which exceeds the frequency limit `%d` for a second. "
                          "Please reduce the frequency of calls." % (n, tc.rate))
        try:
            req = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise TcError("InvalidParameter", "The request body is not valid JSON.")
        if not isinstance(req, dict):
            raise TcError("InvalidParameter", "The request body must be a JSON object.")
        entry["key_id"] = req.get("KeyId") or req.get("DestinationKeyId")
        if "EncryptionContext" in req or "SourceEncryptionContext" in req:
            entry["encryption_context"] = req.get("EncryptionContext",
                                                  req.get("SourceEncryptionContext"))
        out = tc.call(op, req)
        entry["error_code"] = None
        return envelope(rid, out)
    except TcError as e:
        entry["error_code"] = e.code
        if e.code.startswith("AuthFailure"):
            entry["signature"] = e.code
        return envelope(rid, err=e)
