#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What an HSM operator does to a PKCS#11 token, for the pkcs11 tests, through PyKCS11 (Debian's
python3-pykcs11) and the token's own module: generate AES key objects, revoke or restore one
(CKA_DECRYPT / CKA_UNWRAP), destroy one, list them, and read a volume's DEK back the way the
provider documents it (for memory scans). Never keyd's code: a second, independent client.

Usage: p11tool.py --module SO --token LABEL --pin-file F COMMAND [options]
  keygen --label L --id HEX [--wrap-only] [--no-encrypt]
  set --label L [--id HEX] ATTR=true|false ...      (ATTR: decrypt, encrypt, wrap, unwrap)
  destroy --label L [--id HEX]
  list
  dek --label L --aad AAD --wdek WDEK                 (prints the DEK in hex)
"""
import argparse
import base64
import hashlib
import sys

import PyKCS11

ATTRS = {
    "decrypt": PyKCS11.CKA_DECRYPT,
    "encrypt": PyKCS11.CKA_ENCRYPT,
    "wrap": PyKCS11.CKA_WRAP,
    "unwrap": PyKCS11.CKA_UNWRAP,
}
MECHS = {"gcm": PyKCS11.CKM_AES_GCM, "kwp": 0x210B, "kwpad": 0x210A}


def session(args):
    lib = PyKCS11.PyKCS11Lib()
    lib.load(args.module)
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.rstrip() == args.token:
            s = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
            with open(args.pin_file) as f:
                s.login(f.read().rstrip("\n"))
            return lib, s
    sys.exit(f"p11tool: no token labelled {args.token!r}")


def find(s, label, hexid=None):
    tpl = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_LABEL, label)]
    if hexid is not None:
        tpl.append((PyKCS11.CKA_ID, bytes.fromhex(hexid)))
    objs = s.findObjects(tpl)
    if not objs:
        sys.exit(f"p11tool: no secret key labelled {label!r}" + (f" with id {hexid}" if hexid else ""))
    return objs


def keygen(s, a):
    enc = not a.wrap_only and not a.no_encrypt
    tpl = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
        (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
        (PyKCS11.CKA_VALUE_LEN, 32),
        (PyKCS11.CKA_LABEL, a.label),
        (PyKCS11.CKA_ID, bytes.fromhex(a.id)),
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_PRIVATE, True),
        (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_EXTRACTABLE, False),
        (PyKCS11.CKA_ENCRYPT, enc),
        (PyKCS11.CKA_DECRYPT, not a.wrap_only),
        (PyKCS11.CKA_WRAP, True),
        (PyKCS11.CKA_UNWRAP, True),
    ]
    s.generateKey(tpl, PyKCS11.Mechanism(PyKCS11.CKM_AES_KEY_GEN))


def setattr_(s, a):
    for obj in find(s, a.label, a.id):
        for kv in a.attrs:
            name, val = kv.split("=")
            s.setAttributeValue(obj, [(ATTRS[name], val == "true")])


def destroy(s, a):
    for obj in find(s, a.label, a.id):
        s.destroyObject(obj)


def list_(s, a):
    for obj in s.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY)]):
        label, oid, dec = s.getAttributeValue(obj, [PyKCS11.CKA_LABEL, PyKCS11.CKA_ID, PyKCS11.CKA_DECRYPT])
        print(f"{label} id={bytes(oid).hex()} decrypt={bool(dec)}")


def dek(s, a):
    # pkcs11:v1:<mech>:<hex CKA_ID>:<base64>, as docs/providers/pkcs11.md describes it.
    prefix, v, mech, hexid, b64 = a.wdek.split(":")
    assert prefix == "pkcs11" and v == "v1", a.wdek
    blob = base64.b64decode(b64)
    key = find(s, a.label, hexid)[0]
    if mech == "gcm":
        m = PyKCS11.AES_GCM_Mechanism(blob[:12], a.aad.encode(), 128)
        out = bytes(s.decrypt(key, blob[12:], m))
    else:
        tpl = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_GENERIC_SECRET),
            (PyKCS11.CKA_TOKEN, False),
            (PyKCS11.CKA_SENSITIVE, False),
            (PyKCS11.CKA_EXTRACTABLE, True),
        ]
        h = s.unwrapKey(key, blob, tpl, PyKCS11.Mechanism(MECHS[mech]))
        plain = bytes(s.getAttributeValue(h, [PyKCS11.CKA_VALUE])[0])
        s.destroyObject(h)
        assert plain[-32:] == hashlib.sha256(a.aad.encode()).digest(), "AAD hash mismatch"
        out = plain[:-32]
    print(out.hex())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--module", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--pin-file", required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("--label", required=True)
    k.add_argument("--id", required=True)
    k.add_argument("--wrap-only", action="store_true")
    k.add_argument("--no-encrypt", action="store_true")
    for name in ("set", "destroy"):
        c = sub.add_parser(name)
        c.add_argument("--label", required=True)
        c.add_argument("--id")
        if name == "set":
            c.add_argument("attrs", nargs="+")
    sub.add_parser("list")
    d = sub.add_parser("dek")
    d.add_argument("--label", required=True)
    d.add_argument("--aad", required=True)
    d.add_argument("--wdek", required=True)
    a = p.parse_args()
    lib, s = session(a)
    {"keygen": keygen, "set": setattr_, "destroy": destroy, "list": list_, "dek": dek}[a.cmd](s, a)
    s.logout()
    s.closeSession()


if __name__ == "__main__":
    main()
