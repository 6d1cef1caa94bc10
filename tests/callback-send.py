#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Sends a signed lifecycle event to keyd's event endpoint, as a platform control plane would.

Standard library only (ssl, http.client, hmac). Prints one line per request: the HTTP status
and the reply body, or "error <what went wrong>" when no HTTP reply came (refused handshake,
reset connection). Exit status: 0 when every request got an HTTP reply, 1 otherwise.

Example:
  callback-send.py --url https://127.0.0.1:8443/v1/events --ca ca.pem \\
      --secret-file /etc/keyd/callback.secret --type rotate --key-id 8a1e... --key-version 2

Options for tests make requests that keyd must refuse: --forge, --unsigned, --skew, --pad.
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import ssl
import sys
import time
import urllib.parse
import uuid


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="https://HOST:PORT/v1/events")
    p.add_argument("--ca", help="CA file that signed keyd's certificate (default: system store)")
    p.add_argument("--cert", help="client certificate (PEM), when keyd asks for one")
    p.add_argument("--key", help="client certificate's private key (PEM)")
    p.add_argument("--secret-file", required=True,
                   help="the shared HMAC secret (trailing newlines are not part of it)")
    p.add_argument("--id", help="event id (default: a random UUID)")
    p.add_argument("--type", default="rotate",
                   help="rotate, disable, suspend, enable, delete, destroy, restore")
    p.add_argument("--key-id", default="test-key")
    p.add_argument("--kms", help="configured KMS name")
    p.add_argument("--key-version")
    p.add_argument("--time", help="RFC 3339 time of the event (default: now)")
    p.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                   help="add a member to the event (schema tests)")
    p.add_argument("--body", help="send this body verbatim instead of an event")
    p.add_argument("--pad", type=int, default=0,
                   help="append N spaces to the body (JSON allows them; size-cap tests)")
    p.add_argument("--method", default="POST")
    p.add_argument("--path", help="request path (default: the URL's)")
    p.add_argument("--skew", type=int, default=0,
                   help="seconds added to the signed timestamp (freshness tests)")
    p.add_argument("--unsigned", action="store_true", help="send no signature headers")
    p.add_argument("--forge", action="store_true", help="sign with a wrong secret")
    p.add_argument("--forge-first", type=int, default=0, metavar="N",
                   help="sign the first N of --count requests with a wrong secret, the rest "
                   "rightly (lockout tests: no process start between failures and the try)")
    p.add_argument("--count", type=int, default=1,
                   help="send the same event N times, each on a new connection")
    p.add_argument("--timeout", type=float, default=5.0)
    return p.parse_args()


def read_secret(path):
    with open(path, "rb") as f:
        return f.read().rstrip(b"\r\n")


def make_body(a):
    if a.body is not None:
        body = a.body.encode()
    else:
        ev = {
            "id": a.id or str(uuid.uuid4()),
            "type": a.type,
            "key_id": a.key_id,
            "time": a.time or datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if a.kms:
            ev["kms"] = a.kms
        if a.key_version:
            ev["key_version"] = a.key_version
        for kv in a.extra:
            k, _, v = kv.partition("=")
            ev[k] = v
        body = json.dumps(ev, separators=(",", ":")).encode()
    return body + b" " * a.pad


def sign(secret, timestamp, body):
    """X-Keyd-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def send(a, url, ctx, secret, body, forge):
    headers = {"Content-Type": "application/json"}
    if not a.unsigned:
        ts = str(int(time.time()) + a.skew)
        key = secret if not forge else hashlib.sha256(b"not the secret" + secret).digest()
        headers["X-Keyd-Timestamp"] = ts
        headers["X-Keyd-Signature"] = sign(key, ts, body)
    conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=ctx,
                                       timeout=a.timeout)
    try:
        conn.request(a.method, a.path or url.path or "/", body=body, headers=headers)
        r = conn.getresponse()
        return "%d %s" % (r.status, r.read().decode(errors="replace").strip())
    except (OSError, http.client.HTTPException) as e:
        return "error %s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


def main():
    a = parse_args()
    url = urllib.parse.urlsplit(a.url)
    if url.scheme != "https":
        sys.exit("--url must be https://")
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    secret = read_secret(a.secret_file)
    body = make_body(a)
    ok = True
    for i in range(a.count):
        line = send(a, url, ctx, secret, body, a.forge or i < a.forge_first)
        ok = ok and not line.startswith("error")
        print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
