#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Test-side KMIP client for tests/integration/t-kmip.sh and the VM scenario kmip-pkcs11,
built on PyKMIP's own client library (not on keyd's code): creates, activates, revokes and
destroys keys on the PyKMIP server, reads their state, and recomputes a keyd WDEK's DEK
independently (the key fetched with Get, the WDEK opened with python3-cryptography), which
also proves the AAD binding.

Usage: kmip-client.py --port P --pki DIR COMMAND [ARGS]
  create [--pre-active]       a new AES-256 key (Encrypt|Decrypt); prints its id
  activate|revoke|compromise|destroy ID
  state ID                    prints the State (ACTIVE, DEACTIVATED, ...)
  key ID                      prints the key material in hex
  dek WDEK AAD                prints the DEK in hex; fails if the WDEK is not bound to AAD
  session                     the commands above from stdin, one a line, each answered with
                              one line "ok [OUTPUT]" or "error MESSAGE": one Python start-up
                              for many calls (it costs 10-15 s in the VM test bed)
"""
import argparse
import base64
import hashlib
import hmac
import sys
import warnings

warnings.simplefilter("ignore")  # python3-cryptography's deprecations inside PyKMIP

from cryptography.hazmat.primitives import padding  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from kmip.core import enums  # noqa: E402
from kmip.pie import client  # noqa: E402

CBC_LABEL = b"keyd:kmip:cbc:v1"  # docs/providers/kmip.md, "AES-CBC fallback"


def connect(args):
    c = client.ProxyKmipClient(
        hostname="127.0.0.1", port=args.port, cert=f"{args.pki}/client.pem",
        key=f"{args.pki}/client.key", ca=f"{args.pki}/ca.pem", config_file="/dev/null",
        kmip_version=enums.KMIPVersion.KMIP_1_4)
    c.open()
    return c


def open_wdek(key, wdek, aad):
    prefix, version, scheme, uid_and_blob = wdek.split(":", 3)
    uid, blob = uid_and_blob.rsplit(":", 1)
    assert (prefix, version) == ("kmip", "v1"), wdek
    blob = base64.b64decode(blob, validate=True)
    if scheme in ("gcm", "get"):
        assert len(blob) == 12 + 32 + 16, len(blob)
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad.encode())
    assert scheme == "cbc" and len(blob) == 16 + 80, (scheme, len(blob))
    d = Cipher(algorithms.AES(key), modes.CBC(blob[:16])).decryptor()
    u = padding.PKCS7(128).unpadder()
    pt = u.update(d.update(blob[16:]) + d.finalize()) + u.finalize()
    dek, mac = pt[:32], pt[32:]
    want = hmac.new(dek, CBC_LABEL + b"\0" + aad.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, want):
        raise SystemExit("the CBC WDEK is not bound to this AAD")
    return dek


def run(c, cmd, a, pre_active=False):
    """One command on the open client c; returns what it prints (or None)."""
    if cmd == "create":
        uid = c.create(enums.CryptographicAlgorithm.AES, 256, cryptographic_usage_mask=[
            enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT])
        if not pre_active:
            c.activate(uid)
        return uid
    if cmd == "activate":
        c.activate(a[0])
    elif cmd == "revoke":
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, a[0])
    elif cmd == "compromise":
        c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, a[0])
    elif cmd == "destroy":
        c.destroy(a[0])
    elif cmd == "state":
        _, attrs = c.get_attributes(a[0], ["State"])
        return attrs[0].attribute_value.value.name
    elif cmd == "key":
        return c.get(a[0]).value.hex()
    elif cmd == "dek":
        uid = a[0].split(":", 3)[3].rsplit(":", 1)[0]
        return open_wdek(c.get(uid).value, a[0], a[1]).hex()
    else:
        raise SystemExit(f"unknown command {cmd}")
    return None


def session(args):
    """Commands from stdin, one a line; each answered on one line, "ok [OUTPUT]" or
    "error MESSAGE", over a connection of its own (the server may drop idle ones)."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        pre_active = "--pre-active" in words
        words = [w for w in words if w != "--pre-active"]
        try:
            c = connect(args)
            try:
                out = run(c, words[0], words[1:], pre_active)
            finally:
                c.close()
            reply = "ok" if out is None else f"ok {out}"
        except (Exception, SystemExit) as e:
            reply = "error " + " ".join(f"{type(e).__name__}: {e}".split())
        print(reply, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("command")
    ap.add_argument("args", nargs="*")
    ap.add_argument("--pre-active", action="store_true")
    args = ap.parse_args()
    if args.command == "session":
        session(args)
        return
    c = connect(args)
    out = run(c, args.command, args.args, args.pre_active)
    if out is not None:
        print(out)
    c.close()


if __name__ == "__main__":
    main()
