#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Power-cut states from a device-mapper log-writes log (the kernel's
Documentation/admin-guide/device-mapper/log-writes.rst): every write with its flush and FUA
marks, in the order the writes completed, each flush after the writes it made durable.

  logreplay.py states LOG SAMPLES SEED   one state per line: "LABEL IDX..." (entries to apply,
                                         in that order, onto the image taken before logging)
  logreplay.py apply LOG IMAGE IDX...    applies those entries to IMAGE (a file)

A power cut leaves what the last completed flush covered, plus any subset of the writes
after it, in any order. So the states are: the image at every flush (all writes up to it, in
log order); for each epoch between two flushes, SAMPLES random subsets of its writes applied
in random order on top of the flush before it; and the end of the log."""
import random
import struct
import sys

MAGIC = 0x6A736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8


def entries(path):
    """[(flags, sector, nr_sectors, data_offset_in_log)], sector size, from the log."""
    with open(path, "rb") as f:
        magic, version, n, ssize = struct.unpack("<QQQI", f.read(28))
        if magic != MAGIC or version != 1:
            sys.exit(f"logreplay: {path} is not a log-writes log (magic {magic:#x}, version {version})")
        out = []
        pos = ssize  # entries start after the super block, in units of the sector size
        for _ in range(n):
            f.seek(pos)
            sector, nr, flags, _datalen = struct.unpack("<QQQQ", f.read(32))
            data = pos + ssize
            out.append((flags, sector, nr, data))
            pos = data + (0 if flags & (DISCARD | MARK) else nr * ssize)
    return out, ssize


def states(log, samples, seed):
    ents, _ = entries(log)
    rng = random.Random(seed)
    writes = lambda idxs: [i for i in idxs if ents[i][2] and not ents[i][0] & MARK]
    epochs, cur = [], []
    for i, (flags, _s, _n, _d) in enumerate(ents):
        if flags & FLUSH:
            # The flush makes what came before it durable; a write it carries (PREFLUSH) is
            # the first of the next epoch.
            epochs.append(writes(cur))
            cur = []
        cur.append(i)
    epochs.append(writes(cur))
    done = []
    print("before-logging")
    for k, ep in enumerate(epochs):
        if len(ep) > 1:
            for s in range(samples):
                sub = rng.sample(ep, rng.randint(1, len(ep) - 1))
                print(f"epoch{k}-subset{s}-of{len(ep)}", *(done + sub))
        done += ep
        print(f"flush{k}" if k < len(epochs) - 1 else "end-of-log", *done)


def apply(log, image, idxs):
    ents, ssize = entries(log)
    with open(log, "rb") as lf, open(image, "r+b") as img:
        for i in idxs:
            flags, sector, nr, data = ents[i]
            if flags & MARK or not nr:
                continue
            img.seek(sector * ssize)
            if flags & DISCARD:
                img.write(bytes(nr * ssize))  # the devices here read discarded blocks as zeros
                continue
            lf.seek(data)
            img.write(lf.read(nr * ssize))


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "states":
        states(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "apply":
        apply(sys.argv[2], sys.argv[3], [int(a) for a in sys.argv[4:]])
    else:
        sys.exit(__doc__)


main()
