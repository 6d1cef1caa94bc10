#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Counts the distinct tags HEAD+TAIL+":"+six digits in the guest's physical memory, read
through /proc/kcore's direct-map segments (free pages included). The two halves come as
separate arguments and are never joined here, so this process's own memory holds no tag.
Usage: physmem-scan.py HEAD TAIL   (prints the count)"""
import struct
import sys

CHUNK = 16 << 20


def ram_segments(f):
    ehdr = f.read(64)
    if ehdr[:4] != b"\x7fELF" or ehdr[4] != 2:
        sys.exit("physmem-scan: /proc/kcore is not an ELF64 file")
    phoff, = struct.unpack_from("<Q", ehdr, 32)
    phentsize, phnum = struct.unpack_from("<HH", ehdr, 54)
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _, offset, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", table, i * phentsize)
        # PT_LOAD with a physical address: the kernel's direct map of RAM (and its text);
        # vmalloc, vmemmap and modules carry p_paddr = -1.
        if p_type == 1 and paddr != 0xFFFFFFFFFFFFFFFF and filesz:
            yield offset, filesz


def main():
    head, tail = (a.encode() for a in sys.argv[1:3])
    found = set()
    total = 0
    with open("/proc/kcore", "rb", buffering=0) as f:
        for offset, size in ram_segments(f):
            total += size
            pos, carry = 0, b""
            while pos < size:
                f.seek(offset + pos)
                n = min(CHUNK, size - pos)
                try:
                    buf = carry + f.read(n)
                except OSError:
                    buf = b""  # a hole in the map: skip it
                i = buf.find(head)
                while i >= 0:
                    j = i + len(head)
                    if buf[j:j + len(tail)] == tail and buf[j + len(tail):j + len(tail) + 1] == b":":
                        found.add(buf[j + len(tail) + 1:j + len(tail) + 7])
                    i = buf.find(head, i + 1)
                carry = buf[-(len(head) + len(tail) + 8):]
                pos += n
    print(len(found))
    print(f"physmem-scan: {total >> 20} MiB of RAM read", file=sys.stderr)


main()
