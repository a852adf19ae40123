#!/usr/bin/python3
"""SSH signatures (openssh-portable PROTOCOL.sshsig) made in Python, for the
cases ssh-keygen cannot or will not make: FIDO keys (PROTOCOL.u2f) without a
device, RSA signatures with SHA-1 ("ssh-rsa"), and blobs whose reserved field
is not empty. Used by test_ssh_keys.py and tests/data/ssh/make-vectors.sh;
every signature made here is also given to `ssh-keygen -Y verify` by the
tests, so this file is checked against OpenSSH, not trusted.

Needs python3-cryptography (tests/install-deps.sh).
"""
import base64
import hashlib
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SK_USER_PRESENCE = 0x01
SK_USER_VERIFIED = 0x04


def string(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def mpint(n):
    if n == 0:
        return string(b"")
    b = n.to_bytes((n.bit_length() + 8) // 8, "big")  # room for the sign bit
    return string(b)


def armor(blob):
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i:i + 70] for i in range(0, len(b64), 70)]
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines) + "\n-----END SSH SIGNATURE-----\n"


def load_private(path):
    with open(path, "rb") as f:
        return serialization.load_ssh_private_key(f.read(), password=None)


class Key:
    """A private key and how OpenSSH names and encodes it. kind: ed25519,
    rsa, ecdsa (curve from the key), sk-ed25519, sk-ecdsa (FIDO, made here:
    the 'authenticator' is the private key itself)."""

    def __init__(self, kind, private, application=b"ssh:"):
        self.kind, self.private, self.application = kind, private, application

    @classmethod
    def generate(cls, kind, application=b"ssh:"):
        if kind in ("ed25519", "sk-ed25519"):
            return cls(kind, ed25519.Ed25519PrivateKey.generate(), application)
        if kind in ("ecdsa", "sk-ecdsa"):
            return cls(kind, ec.generate_private_key(ec.SECP256R1()), application)
        raise ValueError(kind)

    @classmethod
    def load(cls, path):
        k = load_private(path)
        if isinstance(k, ed25519.Ed25519PrivateKey):
            return cls("ed25519", k)
        if isinstance(k, rsa.RSAPrivateKey):
            return cls("rsa", k)
        return cls("ecdsa", k)

    def curve(self):
        return {256: "nistp256", 384: "nistp384", 521: "nistp521"}[self.private.curve.key_size]

    def type_name(self):
        if self.kind == "ed25519":
            return "ssh-ed25519"
        if self.kind == "rsa":
            return "ssh-rsa"
        if self.kind == "ecdsa":
            return "ecdsa-sha2-" + self.curve()
        if self.kind == "sk-ed25519":
            return "sk-ssh-ed25519@openssh.com"
        return "sk-ecdsa-sha2-nistp256@openssh.com"

    def blob(self):
        pub = self.private.public_key()
        t = string(self.type_name())
        if self.kind in ("ed25519", "sk-ed25519"):
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            b = t + string(raw)
        elif self.kind == "rsa":
            n = pub.public_numbers()
            b = t + mpint(n.e) + mpint(n.n)
        else:
            point = pub.public_bytes(serialization.Encoding.X962,
                                     serialization.PublicFormat.UncompressedPoint)
            b = t + string(self.curve()) + string(point)
        if self.kind.startswith("sk-"):
            b += string(self.application)
        return b

    def public_line(self, comment=""):
        line = "%s %s" % (self.type_name(), base64.b64encode(self.blob()).decode())
        return line + (" " + comment if comment else "")

    def _ecdsa(self, data, h):
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(h)))
        return mpint(r) + mpint(s)

    def raw_signature(self, data, rsa_alg="rsa-sha2-512", sk_flags=SK_USER_PRESENCE, counter=1):
        """The SSH signature encoding of @data, as sshkey_sign() makes it."""
        if self.kind == "ed25519":
            return string("ssh-ed25519") + string(self.private.sign(data))
        if self.kind == "rsa":
            h = {"rsa-sha2-512": hashes.SHA512(), "rsa-sha2-256": hashes.SHA256(),
                 "ssh-rsa": hashes.SHA1()}[rsa_alg]
            return string(rsa_alg) + string(self.private.sign(data, padding.PKCS1v15(), h))
        if self.kind == "ecdsa":
            h = {"nistp256": hashes.SHA256(), "nistp384": hashes.SHA384(),
                 "nistp521": hashes.SHA512()}[self.curve()]
            return string(self.type_name()) + string(self._ecdsa(data, h))
        # FIDO: the authenticator signs SHA256(app) || flags || counter || SHA256(data)
        signed = (hashlib.sha256(self.application).digest() + bytes([sk_flags]) +
                  struct.pack(">I", counter) + hashlib.sha256(data).digest())
        if self.kind == "sk-ed25519":
            inner = self.private.sign(signed)
        else:
            inner = self._ecdsa(signed, hashes.SHA256())
        return string(self.type_name()) + string(inner) + bytes([sk_flags]) + struct.pack(">I", counter)


def sshsig(key, message, namespace, hash_alg="sha512", reserved_blob=b"", reserved_signed=b"",
           **kwargs):
    """The armored SSHSIG of @message. reserved_blob goes into the blob,
    reserved_signed into the signed data (OpenSSH: both empty)."""
    if isinstance(message, str):
        message = message.encode()
    digest = hashlib.new(hash_alg, message).digest()
    signed = (b"SSHSIG" + string(namespace) + string(reserved_signed) + string(hash_alg) +
              string(digest))
    blob = (b"SSHSIG" + struct.pack(">I", 1) + string(key.blob()) + string(namespace) +
            string(reserved_blob) + string(hash_alg) +
            string(key.raw_signature(signed, **kwargs)))
    return armor(blob)


def commit_with_signature(payload, armored):
    """Insert a gpgsig header into a commit payload, as git writes it."""
    head, sep, body = payload.partition("\n\n")
    sig = "gpgsig " + armored.rstrip("\n").replace("\n", "\n ")
    return head + "\n" + sig + "\n" + sep[1:] + body if sep else head + "\n" + sig + "\n"
