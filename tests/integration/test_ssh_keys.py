#!/usr/bin/python3
"""Parity of `egressd verify-commit` with `git verify-commit` (which runs
`ssh-keygen -Y find-principals` and `-Y verify`) for every key type
ssh-keygen makes, over the matrix of issue 16: good, wrong key, wrong
namespace, expired (valid-before past, valid-after future), revoked (by a
list of keys and by a KRL from `ssh-keygen -k`), tampered.

Signatures ssh-keygen cannot or will not make (FIDO keys without a device,
RSA with SHA-1, a non-empty reserved field) are made by sshsiglib.py and
given to both tools. Where egressd deliberately refuses more than OpenSSH
(RSA under 2048 bits, FIDO signatures without user presence) or knows
options ssh-keygen does not (no-touch-required, verify-required), the test
pins both verdicts, as docs/signing.md lists them.
"""
import re
import unittest

import sshsiglib
from gitlib import GitTestCase

# (name, ssh-keygen -t, -b)
KEY_TYPES = [
    ("ed25519", "ed25519", None),
    ("rsa2048", "rsa", 2048),
    ("rsa3072", "rsa", 3072),
    ("rsa4096", "rsa", 4096),
    ("ecdsa256", "ecdsa", 256),
    ("ecdsa384", "ecdsa", 384),
    ("ecdsa521", "ecdsa", 521),
]
DISPLAY = {"ed25519": "ED25519", "rsa": "RSA", "ecdsa": "ECDSA"}


class SshKeyParity(GitTestCase):
    def setUp(self):
        super().setUp()
        self.repo = self.init_repo()
        self.mallory = self.make_key("mallory", "ed25519", None)

    def make_key(self, name, kind, bits):
        key = self.path(name)
        args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", key]
        if bits:
            args[4:4] = ["-b", str(bits)]
        self.run_cmd(args)
        return key

    def verdicts(self, rev, signers_text, revoked=None):
        """(git verified?, egressd verified?, git's output, egressd's output)."""
        signers = self.write("allowed_signers", signers_text)
        git_args = ["-c", "gpg.ssh.allowedSignersFile=" + signers]
        egressd_args = ["--allowed-signers", signers]
        if revoked:
            git_args += ["-c", "gpg.ssh.revocationFile=" + revoked]
            egressd_args += ["--revoked-keys", revoked]
        g = self.git(self.repo, *git_args, "verify-commit", rev, check=False)
        e = self.egressd("verify-commit", "--repo", self.repo, rev, *egressd_args)
        self.assertIn(e.returncode, (0, 1), e.stderr)
        return g.returncode == 0, e.returncode == 0, g.stderr, e.stdout

    def assert_agree(self, rev, signers_text, good, revoked=None):
        git_ok, ours_ok, git_out, ours_out = self.verdicts(rev, signers_text, revoked)
        self.assertEqual(git_ok, good, "git: " + git_out)
        self.assertEqual(ours_ok, good, "egressd: " + ours_out)
        if good:
            line = re.search(r'^Good "git" signature for .*$', git_out, re.M).group(0)
            self.assertEqual(ours_out.strip(), line)
        return ours_out

    def assert_deviation(self, rev, signers_text, git_good, ours_good, why, revoked=None):
        """A documented difference: pin both verdicts and egressd's reason."""
        git_ok, ours_ok, git_out, ours_out = self.verdicts(rev, signers_text, revoked)
        self.assertEqual(git_ok, git_good, "git: " + git_out)
        self.assertEqual(ours_ok, ours_good, "egressd: " + ours_out)
        if why:
            self.assertIn(why, ours_out)

    def payload(self):
        """The payload of a new unsigned commit (to sign in Python)."""
        rev = self.commit(self.repo, "to be signed")
        return self.git(self.repo, "cat-file", "commit", rev).stdout

    def craft(self, text):
        return self.git(self.repo, "hash-object", "-t", "commit", "-w", "--literally", "--stdin",
                        input=text).stdout.strip()

    def crafted_commit(self, key, **kwargs):
        payload = self.payload()
        sig = sshsiglib.sshsig(key, payload, kwargs.pop("namespace", "git"), **kwargs)
        return self.craft(sshsiglib.commit_with_signature(payload, sig))

    # --- the matrix: every key type ssh-keygen makes ----------------------------

    def test_matrix_every_key_type(self):
        for name, kind, bits in KEY_TYPES:
            with self.subTest(key=name):
                self.check_key_type(name, kind, bits)

    def check_key_type(self, name, kind, bits):
        key = self.make_key(name, kind, bits)
        pub = self.pubkey(key)
        allowed = "alice@example.com %s\n" % pub
        signed = self.commit(self.repo, "signed by " + name, key=key)

        # good, with the same line as git (key type and fingerprint)
        out = self.assert_agree(signed, allowed, True)
        self.assertIn("with %s key SHA256:" % DISPLAY[kind], out)
        # wrong key
        self.assert_agree(signed, "alice@example.com %s\n" % self.pubkey(self.mallory), False)
        # expired, not yet valid
        self.assert_agree(signed, 'alice@example.com valid-before="20200101Z" %s\n' % pub, False)
        self.assert_agree(signed, 'alice@example.com valid-after="20990101Z" %s\n' % pub, False)
        # revoked by a list of keys; another key's revocation changes nothing
        self.assert_agree(signed, allowed, False, revoked=key + ".pub")
        self.assert_agree(signed, allowed, True, revoked=self.mallory + ".pub")
        # revoked by a KRL that ssh-keygen -k wrote
        krl = self.path(name + ".krl")
        self.run_cmd(["ssh-keygen", "-q", "-k", "-f", krl, key + ".pub"])
        self.assert_agree(signed, allowed, False, revoked=krl)
        other_krl = self.path(name + "-other.krl")
        self.run_cmd(["ssh-keygen", "-q", "-k", "-f", other_krl, self.mallory + ".pub"])
        self.assert_agree(signed, allowed, True, revoked=other_krl)
        # tampered: the commit message changed after signing
        raw = self.git(self.repo, "cat-file", "commit", signed).stdout
        self.assert_agree(self.craft(raw.replace("signed by", "signed  by")), allowed, False)
        # wrong namespace: the payload signed by ssh-keygen for "file"
        payload = self.payload()
        msg = self.write(name + ".payload", payload)
        self.run_cmd(["ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f", key, msg])
        with open(msg + ".sig") as f:
            wrong_ns = self.craft(sshsiglib.commit_with_signature(payload, f.read()))
        self.assert_agree(wrong_ns, allowed, False)
        # the same key allowed for namespace "file" only
        self.assert_agree(signed, 'alice@example.com namespaces="file" %s\n' % pub, False)

    def test_krl_by_sha256_fingerprint(self):
        key = self.make_key("carol", "ecdsa", 384)
        allowed = "carol@example.com %s\n" % self.pubkey(key)
        signed = self.commit(self.repo, "signed", key=key)
        fp = self.run_cmd(["ssh-keygen", "-l", "-E", "sha256", "-f", key + ".pub"]).stdout.split()[1]
        spec = self.write("krl.spec", "hash: %s\n" % fp)
        krl = self.path("fp.krl")
        self.run_cmd(["ssh-keygen", "-q", "-k", "-f", krl, spec])
        self.assert_agree(signed, allowed, False, revoked=krl)

    # --- what ssh-keygen does not make ------------------------------------------

    def test_rsa_sha1_signature_refused_by_both(self):
        key = sshsiglib.Key.load(self.make_key("old", "rsa", 2048))
        allowed = "alice@example.com %s\n" % key.public_line()
        self.assert_agree(self.crafted_commit(key, rsa_alg="ssh-rsa"), allowed, False)
        self.assert_agree(self.crafted_commit(key, rsa_alg="rsa-sha2-256"), allowed, True)
        self.assert_agree(self.crafted_commit(key, hash_alg="sha256"), allowed, True)

    def test_rsa_1024_refused_though_ssh_keygen_accepts(self):
        key = self.make_key("small", "rsa", 1024)
        signed = self.commit(self.repo, "rsa 1024", key=key)
        self.assert_deviation(signed, "alice@example.com %s\n" % self.pubkey(key), True, False,
                              "RSA keys under 2048 bits are refused")

    def test_reserved_field_follows_openssh(self):
        """W-7: OpenSSH ignores the blob's reserved field and signs an empty one."""
        key = sshsiglib.Key.load(self.make_key("alice", "ed25519", None))
        allowed = "alice@example.com %s\n" % key.public_line()
        self.assert_agree(self.crafted_commit(key, reserved_blob=b"ignored"), allowed, True)
        self.assert_agree(self.crafted_commit(key, reserved_blob=b"x", reserved_signed=b"x"),
                          allowed, False)
        self.assert_agree(self.crafted_commit(key, reserved_signed=b"x"), allowed, False)

    def test_fido_keys(self):
        for kind in ("sk-ed25519", "sk-ecdsa"):
            with self.subTest(kind=kind):
                self.check_fido(kind)

    def check_fido(self, kind):
        UP, UV = sshsiglib.SK_USER_PRESENCE, sshsiglib.SK_USER_VERIFIED
        key = sshsiglib.Key.generate(kind)
        pub = key.public_line()
        allowed = "alice@example.com %s\n" % pub
        touched = self.crafted_commit(key, sk_flags=UP, counter=7)
        out = self.assert_agree(touched, allowed, True)
        self.assertIn("-SK key SHA256:", out)
        # the matrix for FIDO keys
        self.assert_agree(touched, "alice@example.com %s\n" % self.pubkey(self.mallory), False)
        self.assert_agree(touched, 'alice@example.com valid-before="20200101Z" %s\n' % pub, False)
        revoked = self.write(kind + ".revoked", pub + "\n")
        self.assert_agree(touched, allowed, False, revoked=revoked)
        self.assert_agree(self.crafted_commit(key, namespace="file"), allowed, False)
        raw = self.git(self.repo, "cat-file", "commit", touched).stdout
        self.assert_agree(self.craft(raw.replace("to be signed", "to be  signed")), allowed, False)
        # another application than the key's: the signature does not match
        other_app = sshsiglib.Key(kind, key.private, b"ssh:other")
        self.assert_agree(self.crafted_commit(other_app), allowed, False)
        # no user presence: ssh-keygen -Y verify does not look at the flags
        untouched = self.crafted_commit(key, sk_flags=0)
        self.assert_deviation(untouched, allowed, True, False, "user presence")
        # no-touch-required and verify-required are egressd's (from
        # authorized_keys); ssh-keygen refuses a line that has them
        self.assert_deviation(untouched, "alice@example.com no-touch-required %s\n" % pub,
                              False, True, None)
        self.assert_agree(touched, "alice@example.com verify-required %s\n" % pub, False)
        verified = self.crafted_commit(key, sk_flags=UP | UV)
        self.assert_deviation(verified, "alice@example.com verify-required %s\n" % pub,
                              False, True, None)
        _, ours_ok, _, out = self.verdicts(touched, "alice@example.com verify-required %s\n" % pub)
        self.assertFalse(ours_ok)
        self.assertIn("user verification", out)


if __name__ == "__main__":
    unittest.main()
