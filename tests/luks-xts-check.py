#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""luks-xts-check.py VOLUME_KEY DEVICE DATA_OFFSET PLAINTEXT: decrypts a LUKS2 data area of
aes-xts-plain64 with 4096-byte sectors (IV = the 512-byte sector number, as LUKS2 does) with
python3-cryptography (OpenSSL's AES-XTS, no libcryptsetup code) and compares it with
PLAINTEXT, byte for byte. Exit 0 and "identical: N bytes", or the first byte that differs."""
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
vk = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'rb') as d, open(sys.argv[4], 'rb') as p:
    d.seek(int(sys.argv[3]))
    pos = 0
    while True:
        want = p.read(1 << 20)
        if not want:
            break
        got, out = d.read(len(want)), bytearray()
        for i in range(0, len(got), 4096):
            iv = ((pos + i) // 512).to_bytes(16, 'little')
            out += Cipher(algorithms.AES(vk), modes.XTS(iv)).decryptor().update(got[i:i + 4096])
        if bytes(out) != want:
            k = next(j for j in range(len(want)) if out[j] != want[j])
            sys.exit("differs from the plaintext at byte %d of the data" % (pos + k))
        pos += len(want)
print("identical: %d bytes" % pos)
