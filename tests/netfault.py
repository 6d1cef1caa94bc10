#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""netfault: a fault proxy between keyd and a KMS, for tests (no Debian package does this).

    /usr/bin/python3 tests/netfault.py --upstream HOST:PORT --upstream-ca CA.pem \\
        --cert server.pem --key server.key --wrong-cert other.pem --wrong-key other.key \\
        --mode-file FILE --port-file FILE --log FILE \\
        [--protocol kmip --upstream-cert client.pem --upstream-key client.key]

Listens on 127.0.0.1 (an ephemeral port, written to --port-file). Each new connection reads
the mode from --mode-file (a word, a missing file is "pass"; for the modes that terminate TLS
a path may follow, see below) and behaves so:

  pass             bytes forwarded both ways, untouched (TLS end to end with the upstream)
  reset-handshake  reads the ClientHello, then resets the connection (RST)
  tls-alert        answers the ClientHello with a fatal handshake_failure alert, closes
  wrong-name       completes TLS with --wrong-cert (same CA, another name), then closes
  reset-response   TLS here, the request forwarded; the reply's head and half its body, RST
                   (a reply without a body: half its head)
  stall-headers    TLS here, the request forwarded; the reply's head, then nothing (held
                   open until the client gives up, at most --hold seconds; a reply without
                   a body: its head but the blank line that would end it)
  trickle          TLS here, the request forwarded; the whole reply, one byte a second
  truncate-record  TLS here, the request forwarded; the reply's TLS record cut short, FIN
  http10           TLS here, the request forwarded; the reply as HTTP/1.0 without a
                   Content-Length, ended by closing the connection (valid HTTP: must work)

"MODE PATH" (HTTP, a mode that terminates TLS): only a request whose path begins with PATH
meets the fault; any other is answered whole (Content-Length, then the connection closed), so
that a test can aim at one call (Key Protect's /api/v2/event_ack) among those before it.

--protocol kmip: the request and the reply are KMIP messages (TTLV: an 8-byte header whose
last four bytes are the length of what follows), one of each per connection; "the reply's
head" is that header, and the upstream is reached with --upstream-cert as the client
certificate (a KMIP server asks for one). http10 and PATH are HTTP's only.

When the mode changes from pass to a fault, every connection forwarded so far is reset, as a
network change drops what was open: a client that keeps connections alive (libcurl's pool)
meets the fault on the connection it opens next, not only when it happens to open one.

One line per connection goes to --log: "<mode> <outcome>". Stops on SIGTERM. Only
127.0.0.1; every wait is bounded.
"""
import argparse
import http.client
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time

TLS_MODES = {"reset-response", "stall-headers", "trickle", "truncate-record", "http10"}
HEAD_MAX = 64 * 1024
BODY_MAX = 1024 * 1024

opts = None
log_lock = threading.Lock()


def note(mode, what):
    with log_lock, open(opts.log, "a") as f:
        f.write("%s %s\n" % (mode, what))


def mode_now():
    try:
        with open(opts.mode_file) as f:
            return f.read().strip() or "pass"
    except FileNotFoundError:
        return "pass"


def rst(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def splice(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


forwarded = set()  # the client sockets of pass connections still open
forwarded_lock = threading.Lock()


def forward_raw(client):
    up = socket.create_connection(opts.upstream, timeout=10)
    up.settimeout(None)
    with forwarded_lock:
        forwarded.add(client)
    t = threading.Thread(target=splice, args=(up, client), daemon=True)
    t.start()
    splice(client, up)
    t.join(opts.hold)
    with forwarded_lock:
        forwarded.discard(client)
    up.close()
    client.close()


def watch_mode():
    """Resets the forwarded connections when the mode turns from pass to a fault."""
    last = mode_now()
    while True:
        time.sleep(0.1)
        now = mode_now()
        if last == "pass" and now != "pass":
            with forwarded_lock:
                drop = list(forwarded)
            for c in drop:
                try:
                    rst(c)
                except OSError:
                    pass
            if drop:
                note("pass", "%d open connection(s) reset: the mode turned to %s" % (len(drop), now))
        last = now


class Tls:
    """TLS over a blocking socket through memory BIOs, so that the raw records are ours."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()
        self.flush()

    def flush(self):
        d = self.out.read()
        if d:
            self.sock.sendall(d)

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("client closed")
        self.inc.write(d)

    def read(self):
        while True:
            try:
                return self.obj.read(65536)
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()

    def records(self, data):
        """The TLS records that carry @data, not sent."""
        self.obj.write(data)
        return self.out.read()


def read_request(tls):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = tls.read()
        if not d:
            raise EOFError("no request")
        buf += d
        if len(buf) > HEAD_MAX:
            raise ValueError("request head too large")
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:] if ":" in ln]
    n = 0
    for k, v in headers:
        if k.lower() == "content-length":
            n = int(v)
    if n < 0 or n > BODY_MAX:
        raise ValueError("bad request Content-Length %d" % n)
    while len(body) < n:
        d = tls.read()
        if not d:
            raise EOFError("request body cut short")
        body += d
    return method, path, headers, body[:n]


def read_ttlv(read):
    """One KMIP message from @read (a function returning the next bytes, b"" at the end)."""
    buf = b""
    while len(buf) < 8 or len(buf) < 8 + struct.unpack(">I", buf[4:8])[0]:
        if len(buf) >= 8 and struct.unpack(">I", buf[4:8])[0] > BODY_MAX:
            raise ValueError("a KMIP message of more than %d bytes" % BODY_MAX)
        d = read()
        if not d:
            raise EOFError("KMIP message cut short")
        buf += d
    n = 8 + struct.unpack(">I", buf[4:8])[0]
    if len(buf) > n:
        raise ValueError("more than one KMIP message in a row")
    return buf


def kmip_exchange(tls):
    """Forwards one KMIP request; returns the reply as (head, body)."""
    req = read_ttlv(tls.read)
    with socket.create_connection(opts.upstream, timeout=10) as raw:
        with opts.up_ctx.wrap_socket(raw) as up:
            up.sendall(req)
            reply = read_ttlv(lambda: up.recv(65536))
    return reply[:8], reply[8:], "KMIP reply"


def http_exchange(tls, path_prefix):
    """Forwards one HTTP request; returns the reply as (status, reason, headers, body), or
    None once a request outside @path_prefix has been answered whole."""
    method, path, headers, body = read_request(tls)
    status, reason, hdrs, data = ask_upstream(method, path, headers, body)
    if path_prefix and not path.startswith(path_prefix):
        tls.sock.sendall(tls.records(reply_head("HTTP/1.1", status, reason, hdrs, len(data)) + data))
        return None
    return status, reason, hdrs, data


def ask_upstream(method, path, headers, body):
    c = http.client.HTTPSConnection(opts.upstream[0], opts.upstream[1], context=opts.up_ctx,
                                    timeout=10)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers:
        if k.lower() not in ("connection", "content-length"):
            c.putheader(k, v)
    c.putheader("Content-Length", str(len(body)))
    c.putheader("Connection", "close")
    c.endheaders(body)
    r = c.getresponse()
    data = r.read()
    hdrs = [(k, v) for k, v in r.getheaders()
            if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    c.close()
    return r.status, r.reason, hdrs, data


def reply_head(version, status, reason, hdrs, length):
    lines = ["%s %d %s" % (version, status, reason)] + ["%s: %s" % kv for kv in hdrs]
    if length is not None:
        lines.append("Content-Length: %d" % length)
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def hold(sock):
    """Holds the connection open, sending nothing, until the client closes it."""
    sock.settimeout(opts.hold)
    try:
        while sock.recv(65536):
            pass
        return "client closed"
    except (socket.timeout, OSError):
        return "held %ds" % opts.hold


def tls_fault(client, mode, path_prefix):
    tls = Tls(client, opts.ctx)
    if opts.protocol == "kmip":
        head, data, what = kmip_exchange(tls)
    else:
        got = http_exchange(tls, path_prefix)
        if got is None:
            client.close()
            return "outside %s: answered whole" % path_prefix
        status, reason, hdrs, data = got
        if mode == "http10":
            client.sendall(tls.records(reply_head("HTTP/1.0", status, reason, hdrs, None) + data))
            try:
                tls.obj.unwrap()
            except ssl.SSLError:
                pass
            tls.flush()
            client.close()
            return "sent %d without length, closed" % status
        head, what = reply_head("HTTP/1.1", status, reason, hdrs, len(data)), "%d" % status
    # A reply without a body (Key Protect's 204) is whole once its head is: the faults cut the
    # head instead.
    if mode == "reset-response":
        if data:
            client.sendall(tls.records(head + data[: len(data) // 2]))
            cut = "%d of %d body bytes" % (len(data) // 2, len(data))
        else:
            client.sendall(tls.records(head[: len(head) // 2]))
            cut = "%d of %d bytes of a head without body" % (len(head) // 2, len(head))
        time.sleep(0.2)
        rst(client)
        return "%s: reset after %s" % (what, cut)
    if mode == "stall-headers":
        client.sendall(tls.records(head if data else head[:-2]))
        return "%s: head sent%s; %s" % (what, "" if data else " but its last CRLF", hold(client))
    if mode == "truncate-record":
        raw = tls.records(head + data)
        client.sendall(raw[:-16])
        client.shutdown(socket.SHUT_WR)
        return "%s: record cut by 16 of %d bytes; %s" % (what, len(raw), hold(client))
    # trickle
    client.settimeout(opts.hold)
    sent = 0
    try:
        for b in head + data:
            client.sendall(tls.records(bytes([b])))
            sent += 1
            time.sleep(1)
    except OSError:
        pass
    return "%s: trickled %d bytes" % (what, sent)


def serve(client):
    mode, _, path_prefix = mode_now().partition(" ")
    path_prefix = path_prefix.strip()
    try:
        if path_prefix and (mode not in TLS_MODES or mode == "http10" or opts.protocol != "http"):
            raise ValueError("a path is only for HTTP's faults after the handshake")
        if opts.protocol == "kmip" and mode == "http10":
            raise ValueError("http10 is HTTP's")
        client.settimeout(opts.hold)
        if mode == "pass":
            forward_raw(client)
            what = "forwarded"
        elif mode == "reset-handshake":
            client.recv(4096)
            rst(client)
            what = "reset after the ClientHello"
        elif mode == "tls-alert":
            client.recv(4096)
            client.sendall(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))
            client.close()
            what = "alert handshake_failure sent"
        elif mode == "wrong-name":
            # libcurl checks the name after the handshake, then closes: the handshake itself
            # may well complete here.
            try:
                Tls(client, opts.wrong_ctx)
                what = "handshake done with the wrong name"
            except (ssl.SSLError, EOFError, OSError) as e:
                what = "the client broke off the handshake: %s" % e.__class__.__name__
            client.close()
        elif mode in TLS_MODES:
            # Still under --hold: a client that connects and says nothing is let go.
            what = tls_fault(client, mode, path_prefix)
        else:
            what = "unknown mode, closed"
            client.close()
    except (OSError, EOFError, ValueError, ssl.SSLError, http.client.HTTPException) as e:
        what = "ended: %s" % e
        try:
            client.close()
        except OSError:
            pass
    note(mode, what)


def main():
    global opts
    ap = argparse.ArgumentParser(description="fault proxy for keyd's tests")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--upstream-ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--wrong-cert", required=True)
    ap.add_argument("--wrong-key", required=True)
    ap.add_argument("--mode-file", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--hold", type=int, default=60)
    ap.add_argument("--protocol", choices=("http", "kmip"), default="http")
    ap.add_argument("--upstream-cert")
    ap.add_argument("--upstream-key")
    opts = ap.parse_args()
    if opts.protocol == "kmip" and not (opts.upstream_cert and opts.upstream_key):
        ap.error("--protocol kmip needs --upstream-cert and --upstream-key")
    host, port = opts.upstream.rsplit(":", 1)
    if host != "127.0.0.1":
        ap.error("--upstream must be on 127.0.0.1")
    opts.upstream = (host, int(port))
    opts.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    opts.ctx.load_cert_chain(opts.cert, opts.key)
    opts.wrong_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    opts.wrong_ctx.load_cert_chain(opts.wrong_cert, opts.wrong_key)
    # To the upstream: its certificate is for 127.0.0.1, checked against its CA; KMIP's asks
    # for a client certificate.
    opts.up_ctx = ssl.create_default_context(cafile=opts.upstream_ca)
    opts.up_ctx.check_hostname = False
    if opts.protocol == "kmip":
        opts.up_ctx.load_cert_chain(opts.upstream_cert, opts.upstream_key)

    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(lsock.getsockname()[1]))
    os.rename(tmp, opts.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Thread(target=watch_mode, daemon=True).start()
    while True:
        c, _ = lsock.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
