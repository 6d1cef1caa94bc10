"""kmsemu_aws - AWS KMS (JSON 1.1, TrentService) for kmsemu, with SigV4 verification.

Follows the AWS KMS API Reference (Encrypt, Decrypt, ReEncrypt, DescribeKey, CreateKey,
DisableKey, EnableKey, ScheduleKeyDeletion, CancelKeyDeletion, RotateKeyOnDemand, the key
state table, the per-operation and common errors) and the Signature Version 4 signing process
(IAM User Guide, "Create a signed AWS API request"). Every request must carry a valid SigV4
signature from a registered access key; a client that signs wrongly fails here as it would at
AWS. A test double: key material lives in process memory only.
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import urllib.parse
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

JSON_CT = "application/x-amz-json-1.1"
TARGET_PREFIX = "TrentService."
ACCOUNT = "111122223333"
DEFAULT_REGION = "us-east-1"
SERVICE = "kms"
# SigV4: a request dated more than 15 minutes from the server's clock is refused.
MAX_SKEW = 15 * 60
MAX_PLAINTEXT = 4096
MAX_CIPHERTEXT = 6144
MAX_CONTEXT_BYTES = 8192  # kmsemu's own cap on the context's size
MAGIC = b"\x01kmsemu-aws"
KEY_STATES = ("Creating", "Enabled", "Disabled", "PendingDeletion", "PendingImport",
              "PendingReplicaDeletion", "Unavailable", "Updating")
CRYPTO_OPS = ("Encrypt", "Decrypt", "ReEncrypt")
OPERATIONS = ("Encrypt", "Decrypt", "ReEncrypt", "DescribeKey", "CreateKey", "DisableKey",
              "EnableKey", "ScheduleKeyDeletion", "CancelKeyDeletion", "RotateKeyOnDemand")
# The HTTP status of each error __type (API Reference: per-operation and common errors).
STATUS = {
    "AccessDeniedException": 400, "DependencyTimeoutException": 500,
    "DisabledException": 400, "ExpiredTokenException": 400,
    "IncompleteSignatureException": 400, "IncorrectKeyException": 400,
    "InvalidArnException": 400, "InvalidCiphertextException": 400,
    "InvalidKeyUsageException": 400, "InvalidSignatureException": 400,
    "KeyUnavailableException": 500, "KMSInternalException": 500,
    "KMSInvalidStateException": 400, "MissingAuthenticationTokenException": 400,
    "NotFoundException": 400, "SerializationException": 400,
    "ThrottlingException": 400, "UnknownOperationException": 400,
    "UnrecognizedClientException": 400, "UnsupportedOperationException": 400,
    "ValidationException": 400,
}


class AwsError(Exception):
    def __init__(self, kind, message=None):
        super().__init__(kind)
        self.kind, self.message = kind, message

    def reply(self, request_id):
        body = {"__type": self.kind}
        if self.message is not None:
            body["message"] = self.message
        return STATUS.get(self.kind, 400), {
            "Content-Type": JSON_CT, "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": self.kind}, json.dumps(body).encode()


def b64e(b):
    return base64.b64encode(b).decode("ascii")


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def _hmac(k, m):
    return hmac.new(k, m.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def uri_encode(s, safe):
    return urllib.parse.quote(s, safe=safe)


def canonical_uri(raw_path):
    # Non-S3 services: normalise the path, then encode each segment (again: the wire path
    # is already encoded once).
    segs = []
    for seg in raw_path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segs:
                segs.pop()
            continue
        segs.append(seg)
    path = "/" + "/".join(segs)
    if raw_path.endswith("/") and segs:
        path += "/"
    return uri_encode(path, "/-_.~")


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote(name), "-_.~"),
                      uri_encode(urllib.parse.unquote(value), "-_.~")))
    return "&".join("%s=%s" % p for p in sorted(pairs))


def canonical_header_value(values):
    return ",".join(" ".join(v.split()) for v in values)


class AwsKms:
    """One AWS account in one region: its access keys, KMS keys, throttling and IMDS role."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.region = DEFAULT_REGION
            self.access = {}      # access key id -> {"secret", "token", "expires", "allow"}
            self.keys = {}        # key id -> key record
            self.aliases = {}     # "alias/x" -> key id
            self.rate = None      # cryptographic requests per second, None = unlimited
            self.burst = 0.0
            self.tokens = 0.0
            self.last_fill = time.monotonic()
            self.throttled = 0
            self.stats = {op: 0 for op in OPERATIONS}
            self.role = None      # IMDS: {"name", "ttl", "current": access key id}
            self.imds_tokens = {}  # IMDSv2 session token -> expiry (monotonic)
            self.imdsv2_required = True

    # --- helpers
    def arn(self, kid):
        return "arn:aws:kms:%s:%s:key/%s" % (self.region, ACCOUNT, kid)

    def resolve(self, key_ref, param="KeyId"):
        """A key id, key ARN, alias name or alias ARN -> the key record."""
        if not isinstance(key_ref, str) or not key_ref:
            raise AwsError("ValidationException", "1 validation error detected: Value "
                           "null at '%s' failed to satisfy constraint: Member must not be "
                           "null" % (param[0].lower() + param[1:]))
        if len(key_ref) > 2048:
            raise AwsError("ValidationException", "1 validation error detected: Value at "
                           "'%s' failed to satisfy constraint: Member must have length "
                           "less than or equal to 2048" % (param[0].lower() + param[1:]))
        ref = key_ref
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if len(parts) != 6 or parts[2] != "kms" or not parts[5]:
                raise AwsError("InvalidArnException", "ARN does not have the correct form: "
                               "%s" % ref)
            if parts[3] != self.region or parts[4] != ACCOUNT:
                raise AwsError("NotFoundException", "Invalid arn %s" % self.region)
            ref = parts[5]
            if ref.startswith("key/"):
                ref = ref[4:]
        if ref.startswith("alias/"):
            kid = self.aliases.get(ref)
            if kid is None:
                raise AwsError("NotFoundException", "Alias %s is not found."
                               % ("arn:aws:kms:%s:%s:%s" % (self.region, ACCOUNT, ref)))
            ref = kid
        k = self.keys.get(ref)
        if k is None:
            raise AwsError("NotFoundException", "Key '%s' does not exist" % self.arn(ref))
        return k

    @staticmethod
    def new_material():
        return {"id": secrets.token_hex(32), "material": os.urandom(32), "t": time.time()}

    def create_key(self, origin="AWS_KMS", description="", key_usage="ENCRYPT_DECRYPT",
                   key_spec="SYMMETRIC_DEFAULT", kid=None):
        now = time.time()
        k = {"id": kid or str(uuid.uuid4()), "created": now, "description": description,
             "usage": key_usage, "spec": key_spec, "origin": origin,
             "state": "PendingImport" if origin == "EXTERNAL" else "Enabled",
             "deletion": None, "window": None, "materials": [], "rotations": []}
        if origin != "EXTERNAL":
            k["materials"].append(self.new_material())
        self.keys[k["id"]] = k
        return k

    def metadata(self, k):
        md = {"AWSAccountId": ACCOUNT, "KeyId": k["id"], "Arn": self.arn(k["id"]),
              "CreationDate": k["created"], "Enabled": k["state"] == "Enabled",
              "Description": k["description"], "KeyUsage": k["usage"],
              "KeyState": k["state"], "Origin": k["origin"], "KeyManager": "CUSTOMER",
              "CustomerMasterKeySpec": k["spec"], "KeySpec": k["spec"],
              "MultiRegion": False}
        if k["usage"] == "ENCRYPT_DECRYPT" and k["spec"] == "SYMMETRIC_DEFAULT":
            md["EncryptionAlgorithms"] = ["SYMMETRIC_DEFAULT"]
        if k["origin"] == "EXTERNAL":
            md["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        if k["materials"]:
            md["CurrentKeyMaterialId"] = k["materials"][-1]["id"]
        if k["state"] == "PendingDeletion":
            md["DeletionDate"] = k["deletion"]
            md["PendingDeletionWindowInDays"] = k["window"]
        return md

    # --- throttling (a token bucket shared by the cryptographic operations)
    def take_token(self):
        with self.lock:
            if self.rate is None:
                return True
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last_fill) * self.rate)
            self.last_fill = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            self.throttled += 1
            return False

    # --- SigV4
    def verify(self, method, raw_path, raw_query, headers, body, op):
        """Checks the request's Signature Version 4 signature; returns the access key id."""
        auth = headers.get("Authorization")
        if not auth:
            raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")
        algo, _, rest = auth.strip().partition(" ")
        if algo != "AWS4-HMAC-SHA256":
            raise AwsError("IncompleteSignatureException", "Unsupported AWS 'algorithm': "
                           "'%s'" % algo)
        fields = {}
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if eq:
                fields[name] = value
        missing = [f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields]
        if missing:
            raise AwsError("IncompleteSignatureException", "Authorization header requires "
                           "'%s' parameter. Authorization=%s" % (missing[0], auth))
        cred = fields["Credential"].split("/")
        if len(cred) != 5:
            raise AwsError("IncompleteSignatureException", "Credential must have exactly 5 "
                           "slash-delimited elements, e.g. keyid/date/region/service/term, "
                           "got '%s'" % fields["Credential"])
        akid, cdate, cregion, cservice, term = cred
        amz_date = headers.get("X-Amz-Date")
        if not amz_date:
            raise AwsError("IncompleteSignatureException", "Authorization header requires "
                           "existence of either a 'X-Amz-Date' or a 'Date' header.")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            raise AwsError("IncompleteSignatureException", "Date must be in ISO-8601 "
                           "'basic format'. Got '%s'." % amz_date)
        signed = fields["SignedHeaders"].split(";")
        if signed != sorted(signed) or any(h != h.lower() or not h for h in signed):
            raise AwsError("InvalidSignatureException", "The request signature we calculated "
                           "does not match the signature you provided. Check your AWS Secret "
                           "Access Key and signing method. Consult the service documentation "
                           "for details.")
        if "host" not in signed or "x-amz-date" not in signed:
            raise AwsError("IncompleteSignatureException", "'Host' and 'X-Amz-Date' must be "
                           "named as signed headers in the 'SignedHeaders' parameter.")
        now = time.time()
        if abs(now - t) > MAX_SKEW:
            fmt = "%Y%m%dT%H%M%SZ"
            raise AwsError("InvalidSignatureException", "Signature expired: %s is now earlier "
                           "than %s (%s - 15 min.)" % (
                               amz_date, time.strftime(fmt, time.gmtime(now - MAX_SKEW)),
                               time.strftime(fmt, time.gmtime(now))))
        with self.lock:
            rec = self.access.get(akid)
            region = self.region
        if rec is None:
            raise AwsError("UnrecognizedClientException", "The security token included in the "
                           "request is invalid.")
        if rec.get("token") is not None:
            tok = headers.get("X-Amz-Security-Token")
            if tok is None or not hmac.compare_digest(tok.encode(), rec["token"].encode()):
                raise AwsError("UnrecognizedClientException", "The security token included in "
                               "the request is invalid.")
            if rec.get("expires") is not None and now >= rec["expires"]:
                raise AwsError("ExpiredTokenException", "The security token included in the "
                               "request is expired")
        if cdate != amz_date[:8]:
            raise AwsError("InvalidSignatureException", "Date in Credential scope does not "
                           "match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != "
                           "'%s', from '%s'." % (cdate, amz_date[:8], amz_date))
        if cregion != region:
            raise AwsError("InvalidSignatureException", "Credential should be scoped to a valid "
                           "region. ")
        if cservice != SERVICE:
            raise AwsError("InvalidSignatureException", "Credential should be scoped to correct "
                           "service: '%s'. " % SERVICE)
        if term != "aws4_request":
            raise AwsError("InvalidSignatureException", "Credential should be scoped with a "
                           "valid terminator: 'aws4_request', not '%s'. " % term)
        lines = []
        for h in signed:
            values = headers.get_all(h) or []
            lines.append("%s:%s\n" % (h, canonical_header_value(values)))
        creq = "\n".join([method, canonical_uri(raw_path), canonical_query(raw_query),
                          "".join(lines), ";".join(signed), sha256_hex(body)])
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(cred[1:]),
                         sha256_hex(creq.encode("utf-8"))])
        want = hmac.new(signing_key(rec["secret"], cdate, region, SERVICE),
                        sts.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, fields["Signature"]):
            raise AwsError("InvalidSignatureException", "The request signature we calculated "
                           "does not match the signature you provided. Check your AWS Secret "
                           "Access Key and signing method. Consult the service documentation "
                           "for details.")
        allow = rec.get("allow")
        if allow is not None and op not in allow:
            raise AwsError("AccessDeniedException", "User: arn:aws:iam::%s:user/%s is not "
                           "authorized to perform: kms:%s because no identity-based policy "
                           "allows the kms:%s action" % (ACCOUNT, rec.get("user", "kmsemu"),
                                                          op, op))
        return akid

    # --- the operations
    @staticmethod
    def context_of(req, name):
        ctx = req.get(name)
        if ctx is None:
            return {}
        if not isinstance(ctx, dict) or not all(
                isinstance(a, str) and isinstance(b, str) for a, b in ctx.items()):
            raise AwsError("SerializationException", "Start of structure or map found where "
                           "not expected.")
        if len(json.dumps(ctx)) > MAX_CONTEXT_BYTES:
            raise AwsError("ValidationException", "Encryption context is too large")
        return ctx

    @staticmethod
    def ad(k, ctx):
        # The context is a map: the order of its pairs does not matter, the pairs do.
        return json.dumps({"key": k["id"], "ctx": sorted(ctx.items())}).encode()

    def usable(self, k, op):
        s = k["state"]
        if s == "Enabled":
            if k["usage"] != "ENCRYPT_DECRYPT" or k["spec"] != "SYMMETRIC_DEFAULT":
                raise AwsError("InvalidKeyUsageException", "%s key usage is %s which is not "
                               "valid for %s." % (self.arn(k["id"]), k["usage"], op))
            return
        if s == "Disabled":
            raise AwsError("DisabledException", "%s is disabled." % self.arn(k["id"]))
        what = {"PendingDeletion": "pending deletion", "PendingImport": "pending import",
                "Unavailable": "unavailable", "Creating": "being created",
                "Updating": "being updated",
                "PendingReplicaDeletion": "pending replica deletion"}[s]
        raise AwsError("KMSInvalidStateException", "%s is %s." % (self.arn(k["id"]), what))

    def seal(self, k, plaintext, ctx):
        m = k["materials"][-1]
        iv = os.urandom(12)
        ct = AESGCM(m["material"]).encrypt(iv, plaintext, self.ad(k, ctx))
        return MAGIC + uuid.UUID(k["id"]).bytes + bytes.fromhex(m["id"]) + iv + ct, m

    def open(self, blob, ctx, key_ref, param="KeyId"):
        """-> (key, material, plaintext) for a ciphertext blob of ours."""
        n = len(MAGIC)
        if len(blob) < n + 16 + 32 + 12 + 16 or blob[:n] != MAGIC:
            raise AwsError("InvalidCiphertextException")
        kid = str(uuid.UUID(bytes=blob[n:n + 16]))
        mid = blob[n + 16:n + 48].hex()
        k = self.keys.get(kid)
        if key_ref is not None:
            want = self.resolve(key_ref, param)
            if k is None or want["id"] != kid:
                raise AwsError("IncorrectKeyException", "The key ID in the request does not "
                               "identify a KMS key that can perform this operation.")
        if k is None:
            raise AwsError("InvalidCiphertextException")
        self.usable(k, "Decrypt")
        m = next((x for x in k["materials"] if x["id"] == mid), None)
        if m is None:
            raise AwsError("InvalidCiphertextException")
        try:
            pt = AESGCM(m["material"]).decrypt(blob[n + 48:n + 60], blob[n + 60:],
                                               self.ad(k, ctx))
        except InvalidTag:
            # Encryption context not an exact match, or a damaged blob: AWS says no more.
            raise AwsError("InvalidCiphertextException")
        return k, m, pt

    @staticmethod
    def blob(req, name, limit):
        v = req.get(name)
        if v is None:
            raise AwsError("ValidationException", "1 validation error detected: Value null at "
                           "'%s' failed to satisfy constraint: Member must not be null"
                           % (name[0].lower() + name[1:]))
        try:
            raw = base64.b64decode(v.encode("ascii"), validate=True) \
                if isinstance(v, str) else None
        except (binascii.Error, ValueError, UnicodeError):
            raw = None
        if raw is None:
            raise AwsError("SerializationException", "Base64 encoded blob expected for %s"
                           % name)
        if not 1 <= len(raw) <= limit:
            raise AwsError("ValidationException", "1 validation error detected: Value at '%s' "
                           "failed to satisfy constraint: Member must have length less than "
                           "or equal to %d" % (name[0].lower() + name[1:], limit))
        return raw

    @staticmethod
    def algorithm(req, name):
        a = req.get(name, "SYMMETRIC_DEFAULT")
        if a != "SYMMETRIC_DEFAULT":
            raise AwsError("InvalidKeyUsageException" if a in (
                "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE") else "ValidationException",
                "The encryption algorithm %s is not valid for this key." % a)

    def call(self, op, req):
        """Runs operation @op with the request object @req; returns the reply object."""
        with self.lock:
            self.stats[op] = self.stats.get(op, 0) + 1
            return getattr(self, "op_" + op)(req)

    def op_Encrypt(self, req):
        k = self.resolve(req.get("KeyId"))
        pt = self.blob(req, "Plaintext", MAX_PLAINTEXT)
        ctx = self.context_of(req, "EncryptionContext")
        self.algorithm(req, "EncryptionAlgorithm")
        self.usable(k, "Encrypt")
        blob, _ = self.seal(k, pt, ctx)
        return {"CiphertextBlob": b64e(blob), "KeyId": self.arn(k["id"]),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def op_Decrypt(self, req):
        blob = self.blob(req, "CiphertextBlob", MAX_CIPHERTEXT)
        ctx = self.context_of(req, "EncryptionContext")
        self.algorithm(req, "EncryptionAlgorithm")
        k, m, pt = self.open(blob, ctx, req.get("KeyId"))
        return {"KeyId": self.arn(k["id"]), "Plaintext": b64e(pt),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT", "KeyMaterialId": m["id"]}

    def op_ReEncrypt(self, req):
        blob = self.blob(req, "CiphertextBlob", MAX_CIPHERTEXT)
        sctx = self.context_of(req, "SourceEncryptionContext")
        dctx = self.context_of(req, "DestinationEncryptionContext")
        self.algorithm(req, "SourceEncryptionAlgorithm")
        self.algorithm(req, "DestinationEncryptionAlgorithm")
        dest = self.resolve(req.get("DestinationKeyId"), "DestinationKeyId")
        k, m, pt = self.open(blob, sctx, req.get("SourceKeyId"), "SourceKeyId")
        self.usable(dest, "ReEncrypt")
        out, dm = self.seal(dest, pt, dctx)
        return {"CiphertextBlob": b64e(out), "SourceKeyId": self.arn(k["id"]),
                "KeyId": self.arn(dest["id"]), "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "SourceKeyMaterialId": m["id"], "DestinationKeyMaterialId": dm["id"]}

    def op_DescribeKey(self, req):
        return {"KeyMetadata": self.metadata(self.resolve(req.get("KeyId")))}

    def op_CreateKey(self, req):
        origin = req.get("Origin", "AWS_KMS")
        usage = req.get("KeyUsage", "ENCRYPT_DECRYPT")
        spec = req.get("KeySpec", req.get("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"))
        if origin not in ("AWS_KMS", "EXTERNAL"):
            raise AwsError("UnsupportedOperationException", "kmsemu emulates the origins "
                           "AWS_KMS and EXTERNAL only")
        if usage not in ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC",
                         "KEY_AGREEMENT"):
            raise AwsError("ValidationException", "1 validation error detected: Value '%s' at "
                           "'keyUsage' failed to satisfy constraint" % usage)
        k = self.create_key(origin, req.get("Description", ""), usage, spec)
        return {"KeyMetadata": self.metadata(k)}

    def op_DisableKey(self, req):
        k = self.resolve(req.get("KeyId"))
        if k["state"] not in ("Enabled", "Disabled"):
            self.usable(k, "DisableKey")
        k["state"] = "Disabled"
        return {}

    def op_EnableKey(self, req):
        k = self.resolve(req.get("KeyId"))
        if k["state"] not in ("Enabled", "Disabled"):
            self.usable(k, "EnableKey")
        k["state"] = "Enabled"
        return {}

    def op_ScheduleKeyDeletion(self, req):
        k = self.resolve(req.get("KeyId"))
        days = req.get("PendingWindowInDays", 30)
        if isinstance(days, bool) or not isinstance(days, int) or not 7 <= days <= 30:
            raise AwsError("ValidationException", "1 validation error detected: Value '%s' at "
                           "'pendingWindowInDays' failed to satisfy constraint: Member must "
                           "have value between 7 and 30" % days)
        if k["state"] == "PendingDeletion":
            raise AwsError("KMSInvalidStateException", "%s is pending deletion."
                           % self.arn(k["id"]))
        k["state"] = "PendingDeletion"
        k["window"] = days
        k["deletion"] = time.time() + days * 86400
        return {"KeyId": self.arn(k["id"]), "DeletionDate": k["deletion"],
                "KeyState": "PendingDeletion", "PendingWindowInDays": days}

    def op_CancelKeyDeletion(self, req):
        k = self.resolve(req.get("KeyId"))
        if k["state"] != "PendingDeletion":
            raise AwsError("KMSInvalidStateException", "%s is not pending deletion."
                           % self.arn(k["id"]))
        # Documented: a key whose deletion is cancelled is Disabled.
        k["state"], k["deletion"], k["window"] = "Disabled", None, None
        return {"KeyId": self.arn(k["id"])}

    def op_RotateKeyOnDemand(self, req):
        k = self.resolve(req.get("KeyId"))
        if k["origin"] != "AWS_KMS" or k["spec"] != "SYMMETRIC_DEFAULT":
            raise AwsError("UnsupportedOperationException", "%s origin is %s which is not "
                           "valid for this operation." % (self.arn(k["id"]), k["origin"]))
        if k["state"] != "Enabled":
            self.usable(k, "RotateKeyOnDemand")
        k["materials"].append(self.new_material())
        k["rotations"].append(time.time())
        return {"KeyId": k["id"]}

    # --- credentials
    def add_access_key(self, akid=None, secret=None, token=None, expires=None, allow=None,
                       user="kmsemu"):
        akid = akid or ("ASIA" if token else "AKIA") + "".join(
            secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        secret = secret or base64.b64encode(os.urandom(30)).decode()
        with self.lock:
            self.access[akid] = {"secret": secret, "token": token, "expires": expires,
                                 "allow": set(allow) if allow is not None else None,
                                 "user": user}
        return akid, secret

    def role_credentials(self):
        """The instance role's credentials as IMDS serves them, new ones past half their life."""
        with self.lock:
            r = self.role
            cur = self.access.get(r.get("current")) if r.get("current") else None
            now = time.time()
            if cur is None or now >= cur["expires"] - r["ttl"] / 2:
                token = base64.b64encode(os.urandom(48)).decode()
                akid, _ = self.add_access_key(token=token, expires=now + r["ttl"],
                                              allow=r.get("allow"), user=r["name"])
                r["current"] = akid
                r["issued"] = r.get("issued", 0) + 1
                r["updated"] = now
                cur = self.access[akid]
            return {"Code": "Success",
                    "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["updated"])),
                    "Type": "AWS-HMAC", "AccessKeyId": r["current"],
                    "SecretAccessKey": cur["secret"], "Token": cur["token"],
                    "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                time.gmtime(cur["expires"]))}

    # --- admin: /_emu/aws/...
    def admin(self, method, parts, req):
        """-> (status, object)."""
        head = parts[0] if parts else ""
        with self.lock:
            if head == "config" and method in ("GET", "POST"):
                if "region" in req:
                    if not isinstance(req["region"], str) or not req["region"]:
                        return 400, {"error": "region must be a non-empty string"}
                    self.region = req["region"]
                if "rate_limit" in req:
                    rl = req["rate_limit"]
                    if rl is not None and (isinstance(rl, bool) or not isinstance(
                            rl, (int, float)) or rl <= 0):
                        return 400, {"error": "rate_limit must be a positive number or null"}
                    self.rate = float(rl) if rl is not None else None
                    self.burst = float(req.get("burst", rl or 0))
                    self.tokens = self.burst
                    self.last_fill = time.monotonic()
                if "imdsv2_required" in req:
                    self.imdsv2_required = bool(req["imdsv2_required"])
                return 200, {"region": self.region, "rate_limit": self.rate,
                             "burst": self.burst, "throttled": self.throttled,
                             "imdsv2_required": self.imdsv2_required}
            if head == "access-keys" and method == "POST":
                allow = req.get("allow")
                if allow is not None and not (isinstance(allow, list) and all(
                        a in OPERATIONS for a in allow)):
                    return 400, {"error": "allow must list operations of %s" % (OPERATIONS,)}
                exp = req.get("expires_in")
                akid, secret = self.add_access_key(
                    req.get("access_key_id"), req.get("secret_access_key"),
                    req.get("session_token"), time.time() + exp if exp else None, allow,
                    req.get("user", "kmsemu"))
                return 201, {"access_key_id": akid, "secret_access_key": secret,
                             "session_token": req.get("session_token")}
            if head == "access-keys" and method == "DELETE" and len(parts) == 2:
                return 200, {"deleted": self.access.pop(parts[1], None) is not None}
            if head == "role" and method == "POST":
                name, ttl = req.get("name", "keyd-role"), req.get("ttl", 21600)
                if not isinstance(name, str) or not name or "/" in name or isinstance(
                        ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
                    return 400, {"error": "name (no '/') and ttl (seconds > 0) expected"}
                self.role = {"name": name, "ttl": float(ttl), "allow": req.get("allow")}
                return 201, {"name": name, "ttl": ttl}
            if head == "role" and method == "GET":
                r = self.role or {}
                return 200, {"name": r.get("name"), "issued": r.get("issued", 0),
                             "current": r.get("current")}
            if head == "role" and method == "DELETE":
                self.role = None
                return 200, {"deleted": True}
            if head == "call" and method == "POST":
                # An operation run as the account's root user, unsigned: for test setup.
                op = req.get("Operation")
                if op not in OPERATIONS:
                    return 400, {"error": "Operation must be one of %s" % (OPERATIONS,)}
                try:
                    return 200, self.call(op, req.get("Input") or {})
                except AwsError as e:
                    return STATUS.get(e.kind, 400), {"__type": e.kind, "message": e.message}
            if head == "keys" and method == "GET" and len(parts) == 1:
                return 200, [dict(self.metadata(k), materials=len(k["materials"]))
                             for k in self.keys.values()]
            if head == "keys" and method == "POST" and len(parts) == 3:
                k = self.keys.get(parts[1])
                if k is None:
                    return 404, {"error": "no such key"}
                if parts[2] == "state":
                    s = req.get("state")
                    if s not in KEY_STATES:
                        return 400, {"error": "state must be one of %s" % (KEY_STATES,)}
                    k["state"] = s
                    if s == "PendingDeletion" and not k["deletion"]:
                        k["window"], k["deletion"] = 7, time.time() + 7 * 86400
                    return 200, self.metadata(k)
            if head == "aliases" and method == "POST":
                name, kid = req.get("alias"), req.get("key_id")
                if not isinstance(name, str) or not name.startswith("alias/") or \
                        kid not in self.keys:
                    return 400, {"error": "alias (alias/...) and an existing key_id expected"}
                self.aliases[name] = kid
                return 201, {"alias": name, "key_id": kid}
            if head == "stats" and method == "GET":
                return 200, {"operations": dict(self.stats), "throttled": self.throttled,
                             "role_credentials_issued": (self.role or {}).get("issued", 0)}
        return 404, {"error": "unknown /_emu/aws endpoint"}


def handle(aws, handler, body, entry):
    """Serves one TrentService request: -> (status, headers, body)."""
    rid = str(uuid.uuid4())
    target = handler.headers.get("X-Amz-Target") or ""
    op = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
    entry["action"] = op or target
    entry["request_id"] = rid
    url = urllib.parse.urlsplit(handler.path)
    try:
        if handler.command != "POST" or url.path != "/":
            raise AwsError("UnknownOperationException")
        ctype = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != JSON_CT:
            raise AwsError("UnknownOperationException")
        if op not in OPERATIONS:
            raise AwsError("UnknownOperationException")
        entry["access_key_id"] = None
        akid = aws.verify(handler.command, url.path, url.query, handler.headers, body, op)
        entry["access_key_id"] = akid
        entry["signature"] = "valid"
        if op in CRYPTO_OPS and not aws.take_token():
            raise AwsError("ThrottlingException", "You have exceeded the rate at which you may "
                           "call KMS. Reduce the frequency of your calls.")
        try:
            req = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise AwsError("SerializationException", "Start of structure or map found where "
                           "not expected.")
        if not isinstance(req, dict):
            raise AwsError("SerializationException", "Start of structure or map found where "
                           "not expected.")
        entry["key_id"] = req.get("KeyId") or req.get("DestinationKeyId")
        if "EncryptionContext" in req or "SourceEncryptionContext" in req:
            entry["encryption_context"] = req.get("EncryptionContext",
                                                  req.get("SourceEncryptionContext"))
        out = aws.call(op, req)
        entry["error_code"] = None
        return 200, {"Content-Type": JSON_CT, "x-amzn-RequestId": rid}, \
            json.dumps(out).encode()
    except AwsError as e:
        entry["error_code"] = e.kind
        if e.kind in ("InvalidSignatureException", "UnrecognizedClientException",
                      "IncompleteSignatureException", "MissingAuthenticationTokenException",
                      "ExpiredTokenException"):
            entry["signature"] = e.kind
        return e.reply(rid)
