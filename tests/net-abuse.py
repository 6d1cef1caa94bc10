#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What an attacker who can reach keyd's event endpoint does, for tests (127.0.0.0/8 only).

Standard library only. Each subcommand prints one JSON object with what it measured.
  hold      --src A --count N --wait S: open N idle TCP connections from source address A,
            report how many the server left open a second after the last connected, and
            how many it has closed after S seconds
  unix-hold --path P --count N --wait S: the same against a Unix socket
  trickle   --count N --every S --max S: N TLS connections that send an HTTP request one
            byte every S seconds; report, per connection, after how many seconds the server
            closed it (null if still open at --max)
  noise     --kind K --count N: N connections of one kind of transport noise: empty (a TLS
            session that sends nothing), cipher (a TLS 1.2 ClientHello with only a cipher
            keyd does not offer), garbage (bytes that are not TLS), http (TLS, then no HTTP)
  refused   --src A --count N: N connections from A one after the other, each waiting (2 s
            at most, --max in all) until the server closes it; report how many connected
            and how many were closed
"""
import argparse
import json
import resource
import select
import socket
import ssl
import sys
import time


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n + 64)
    if hard != resource.RLIM_INFINITY and hard < want:
        hard = want
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def connect(port, src, timeout=2.0, family=socket.AF_INET, path=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if path:
            # A full backlog fails a Unix connect at once (EAGAIN): retry until the timeout,
            # as a blocking client would wait.
            end = time.monotonic() + timeout
            while True:
                try:
                    s.connect(path)
                    break
                except BlockingIOError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.01)
        else:
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s


def closed_by_peer(s):
    """True if the server closed (EOF or reset); never blocks."""
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
    if not p.poll(0):
        return False
    try:
        s.setblocking(False)
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def hold(a):
    raise_nofile(a.count)
    socks = []
    for _ in range(a.count):
        s = connect(a.port, a.src, path=a.path,
                    family=socket.AF_UNIX if a.path else socket.AF_INET)
        if s:
            socks.append(s)
    settle = min(1.0, a.wait)
    time.sleep(settle)
    open_now = sum(1 for s in socks if not closed_by_peer(s))
    time.sleep(a.wait - settle)
    closed = sum(1 for s in socks if closed_by_peer(s))
    for s in socks:
        s.close()
    return {"connected": len(socks), "open_after_connect": open_now, "closed": closed,
            "open": len(socks) - closed}


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def trickle(a):
    req = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 1000\r\n\r\n" + b" " * 1000)
    conns = []
    for _ in range(a.count):
        s = connect(a.port, "127.0.0.1")
        if not s:
            continue
        t = tls_context().wrap_socket(s)
        conns.append({"s": t, "start": time.monotonic(), "closed": None, "sent": 0})
    end = time.monotonic() + a.max
    while time.monotonic() < end and any(c["closed"] is None for c in conns):
        for c in conns:
            if c["closed"] is not None:
                continue
            try:
                c["s"].send(req[c["sent"]:c["sent"] + 1])
                c["sent"] += 1
                c["s"].settimeout(a.every / len(conns))
                if c["s"].recv(1) == b"":
                    raise ConnectionError
            except socket.timeout:
                pass
            except (OSError, ssl.SSLError, ConnectionError):
                c["closed"] = round(time.monotonic() - c["start"], 2)
        # recv's timeouts pace the loop: one byte per connection per --every seconds
    for c in conns:
        c["s"].close()
    return {"connected": len(conns), "closed_after": [c["closed"] for c in conns],
            "bytes_sent": [c["sent"] for c in conns]}


def noise_one(a):
    s = connect(a.port, "127.0.0.1")
    if not s:
        return False
    try:
        if a.kind == "garbage":
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        elif a.kind == "empty":
            tls_context().wrap_socket(s).close()
            return True
        elif a.kind == "http":
            t = tls_context().wrap_socket(s)
            t.sendall(b"NOT-HTTP\r\n\r\n")
            t.settimeout(5)
            try:
                t.recv(100)
            except (OSError, ssl.SSLError):
                pass
            t.close()
            return True
        elif a.kind == "cipher":
            ctx = tls_context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("AES128-SHA")
            try:
                ctx.wrap_socket(s).close()
            except (OSError, ssl.SSLError):
                pass
            return True
        s.settimeout(5)
        try:
            s.recv(100)
        except OSError:
            pass
        return True
    finally:
        s.close()


def noise(a):
    return {"sent": sum(1 for _ in range(a.count) if noise_one(a))}


def refused(a):
    connected = closed = 0
    end = time.monotonic() + a.max
    for _ in range(a.count):
        if time.monotonic() > end:
            break
        s = connect(a.port, a.src)
        if not s:
            continue
        connected += 1
        s.settimeout(2)
        try:
            if s.recv(100) == b"":
                closed += 1
        except OSError:
            closed += 1
        s.close()
    return {"connected": connected, "closed": closed}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["hold", "unix-hold", "trickle", "noise", "refused"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path")
    p.add_argument("--src", default="127.0.0.1")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--wait", type=float, default=1.0)
    p.add_argument("--every", type=float, default=1.0)
    p.add_argument("--max", type=float, default=30.0)
    p.add_argument("--kind", choices=["empty", "cipher", "garbage", "http"], default="empty")
    a = p.parse_args()
    if not a.src.startswith("127.") or (a.what == "unix-hold") != bool(a.path):
        sys.exit("127.0.0.0/8 sources only; --path with unix-hold only")
    fn = {"hold": hold, "unix-hold": hold, "trickle": trickle, "noise": noise,
          "refused": refused}[a.what]
    print(json.dumps(fn(a)), flush=True)


if __name__ == "__main__":
    main()
