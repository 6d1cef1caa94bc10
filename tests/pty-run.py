#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs a command on a pseudo-terminal, as an operator at a terminal would: types ANSWER once
# PROMPT has appeared, prints everything the command wrote (escapes included) and exits with
# its status. Usage: pty-run.py [--prompt TEXT --answer LINE] -- COMMAND...
import argparse
import os
import pty
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompt")
    ap.add_argument("--answer")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    seen, answered = b"", a.prompt is None
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        if not answered and a.prompt.encode() in seen:
            os.write(fd, a.answer.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8)


if __name__ == "__main__":
    main()
