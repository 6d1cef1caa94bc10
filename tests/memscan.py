#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Searches every readable mapping of a running process (/proc/PID/mem) for secrets, each
given as hex on the command line, in raw, hex (both cases) and base64 form. Prints one line
per hit ("HIT name form address mapping") and the count; exit 1 if any was found.

Usage: memscan.py PID NAME=HEX [NAME=HEX ...]

A mapping is read in 64 MiB pieces; one over 64 GiB is skipped and counted: no mapping of
keyd's is that large, but AddressSanitizer's shadow (make check-asan) is terabytes of
reserved, never-touched address space that holds only the shadow bytes.
"""
import base64
import re
import sys

CHUNK = 64 << 20
HUGE = 64 << 30


def forms(raw):
    yield "raw", raw
    yield "hex", raw.hex().encode()
    yield "HEX", raw.hex().upper().encode()
    b64 = base64.b64encode(raw)
    yield "base64", b64
    # A secret inside a longer base64 string starts at one of three alignments.
    for skip in (1, 2):
        yield f"base64+{skip}", base64.b64encode(b"\0" * skip + raw)[4:-4]


def main():
    pid = int(sys.argv[1])
    secrets = {}
    for arg in sys.argv[2:]:
        name, hexval = arg.split("=", 1)
        secrets[name] = bytes.fromhex(hexval)
    needles = [(n, f, v) for n, raw in secrets.items() for f, v in forms(raw)]
    hits = scanned = skipped = 0
    overlap = max(len(v) for _, _, v in needles) - 1
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
            start, end, perms, path = int(m[1], 16), int(m[2], 16), m[3], m[4]
            if perms[0] != "r" or path in ("[vvar]", "[vsyscall]"):
                continue
            if end - start > HUGE:
                skipped += end - start
                continue
            pos, carry = start, b""
            while pos < end:
                try:
                    mem.seek(pos)
                    data = carry + mem.read(min(CHUNK, end - pos))
                except OSError:
                    break
                base = pos - len(carry)
                scanned += len(data) - len(carry)
                for name, form, needle in needles:
                    # A hit wholly inside the carried tail was counted with the piece before.
                    i = data.find(needle, max(0, len(carry) - len(needle) + 1))
                    while i >= 0:
                        hits += 1
                        print(f"HIT {name} {form} {base + i:#x} {path or '[anon]'}")
                        i = data.find(needle, i + 1)
                carry = data[-overlap:] if overlap else b""
                pos += CHUNK
    print(f"scanned {scanned} bytes of pid {pid} for {len(secrets)} secrets: {hits} hits"
          + (f" ({skipped} bytes of mappings over 64 GiB skipped)" if skipped else ""))
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
