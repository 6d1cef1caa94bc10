#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Stands in for systemd's notification socket in tests: binds a datagram socket at argv[1]
and appends every message received (one per line, newlines inside shown as '|') to argv[2].
With --time as argv[3], each line starts with the wall clock at receipt in nanoseconds since
the epoch (as `date +%s%N` prints it), for benches that time a start up to READY=1."""
import os
import signal
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
stamp = len(sys.argv) > 3 and sys.argv[3] == "--time"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(out, "a", buffering=1) as f:
    print("listening", file=f)
    while True:
        msg = s.recv(4096).decode(errors="replace")
        prefix = f"{time.time_ns()} " if stamp else ""
        f.write(prefix + msg.replace("\n", "|") + "\n")
