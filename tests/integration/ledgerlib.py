"""Helpers for the ledger integration tests: running egressd and ssh-keygen,
and an independent RFC 6962 implementation (hashlib only) to check what
egressd computes without trusting its code."""

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile

EGRESSD = os.environ.get("EGRESSD", "egressd")


def run(*args, stdin=None, timeout=60):
    """Run egressd with args; returns CompletedProcess (text)."""
    return subprocess.run([EGRESSD, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def ssh_keygen(*args, stdin=None):
    return subprocess.run(["ssh-keygen", *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


class TempDir:
    """A temporary directory removed at the end, even on failure."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="egressd-ledger-")

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write(path, data, mode="w"):
    with open(path, mode) as f:
        f.write(data)


def ledger_lines(ledger_dir):
    """The exact leaf bytes: ledger.jsonl split at newlines (the last, torn,
    line, if any, is not a leaf)."""
    data = read(os.path.join(ledger_dir, "ledger.jsonl"), "rb")
    return data.split(b"\n")[:-1]


def parse_checkpoint(text):
    origin, size, root, rest = text.split("\n", 3)
    assert rest == "", "a checkpoint has exactly three lines"
    return origin, int(size), base64.b64decode(root, validate=True)


# ---- RFC 6962 / RFC 9162, written from the RFC text ----

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    """MTH of a list of leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
