#!/usr/bin/python3
"""`egressd verify-commit` against `git verify-commit` with the same
allowed_signers file, on commits signed by git with ssh-keygen-made keys and
on commits crafted with `git hash-object --literally`."""
import re
import unittest

from gitlib import GitTestCase

JAN_2026 = 1767225600  # 2026-01-01T00:00:00Z


class VerifyCommit(GitTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.keygen("alice")
        self.bob = self.keygen("bob")
        self.repo = self.init_repo()
        self.signers = self.write("allowed_signers",
                                  "alice@example.com %s\n" % self.pubkey(self.alice))

    def set_signers(self, text):
        self.write("allowed_signers", text)

    def git_verdict(self, rev):
        p = self.git(self.repo, "-c", "gpg.ssh.allowedSignersFile=" + self.signers,
                     "verify-commit", rev, check=False)
        return p.returncode, p.stderr

    def egressd_verdict(self, rev, *extra):
        p = self.egressd("verify-commit", "--repo", self.repo, rev, "--allowed-signers",
                         self.signers, *extra)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return p.returncode, p.stdout

    def assert_same(self, rev, good, reason=None):
        """Both tools give the same verdict; for good ones the same line."""
        git_rc, git_out = self.git_verdict(rev)
        rc, out = self.egressd_verdict(rev)
        self.assertEqual(git_rc == 0, good, "git: " + git_out)
        self.assertEqual(rc == 0, good, "egressd: " + out)
        if good:
            line = re.search(r'^Good "git" signature for .*$', git_out, re.M).group(0)
            self.assertEqual(out.strip(), line)
        else:
            self.assertTrue(out.startswith("Not verified: commit %s: " % self.rev(self.repo, rev)),
                            out)
            if reason:
                self.assertIn(reason, out)
        return out

    def craft(self, text):
        """Write a commit object as is (no checks) and return its id."""
        return self.git(self.repo, "hash-object", "-t", "commit", "-w", "--literally", "--stdin",
                        input=text).stdout.strip()

    # --- the cases of the issue -------------------------------------------------

    def test_good_signature_same_line_as_git(self):
        self.commit(self.repo, "signed", key=self.alice)
        out = self.assert_same("HEAD", True)
        fp = self.run_cmd(["ssh-keygen", "-lf", self.alice + ".pub"]).stdout.split()[1]
        self.assertEqual(out.strip(),
                         'Good "git" signature for alice@example.com with ED25519 key ' + fp)

    def test_unsigned_commit(self):
        self.commit(self.repo, "not signed")
        self.assert_same("HEAD", False, "unsigned: the commit has no gpgsig header")

    def test_signer_not_allowed(self):
        self.commit(self.repo, "signed by bob", key=self.bob)
        self.assert_same("HEAD", False, "key not allowed: ED25519 key SHA256:")

    def test_outside_validity_window(self):
        self.commit(self.repo, "old", key=self.alice, when=JAN_2026)
        self.set_signers('alice@example.com valid-before="20251231Z" %s\n' % self.pubkey(self.alice))
        self.assert_same("HEAD", False, "outside the validity window")
        self.set_signers('alice@example.com valid-after="20260102" %s\n' % self.pubkey(self.alice))
        self.assert_same("HEAD", False, "not valid before")
        self.set_signers('alice@example.com valid-after="20251231",valid-before="20260102Z" %s\n'
                         % self.pubkey(self.alice))
        self.assert_same("HEAD", True)

    def test_wrong_namespace_in_allowed_signers(self):
        self.commit(self.repo, "signed", key=self.alice)
        self.set_signers('alice@example.com namespaces="file" %s\n' % self.pubkey(self.alice))
        self.assert_same("HEAD", False, "wrong namespace")

    def test_signature_made_for_another_namespace(self):
        self.commit(self.repo, "signed", key=self.alice)
        raw = self.git(self.repo, "cat-file", "commit", "HEAD").stdout
        payload = re.sub(r"gpgsig -----BEGIN.*?-----END SSH SIGNATURE-----\n", "", raw, flags=re.S)
        self.write("payload", payload)
        self.run_cmd(["ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f", self.alice,
                      self.path("payload")])
        with open(self.path("payload.sig")) as f:
            sig = f.read().rstrip("\n").split("\n")
        header, _, body = payload.partition("\n\n")
        forged = header + "\ngpgsig " + "\n ".join(sig) + "\n\n" + body
        oid = self.craft(forged)
        self.assert_same(oid, False, 'namespace "file", not "git"')

    def test_tampered_commit(self):
        self.commit(self.repo, "scale to 3", key=self.alice)
        raw = self.git(self.repo, "cat-file", "commit", "HEAD").stdout
        oid = self.craft(raw.replace("scale to 3", "scale to 4"))
        self.assert_same(oid, False, "bad signature")

    def test_signature_header_hidden_in_message_body(self):
        self.commit(self.repo, "body", key=self.alice)
        raw = self.git(self.repo, "cat-file", "commit", "HEAD").stdout
        sig = re.search(r"gpgsig -----BEGIN.*?-----END SSH SIGNATURE-----\n", raw, re.S).group(0)
        oid = self.craft(raw.replace(sig, "") + "\n" + sig)
        self.assertIn("\ngpgsig -----BEGIN", self.git(self.repo, "cat-file", "commit", oid).stdout)
        self.assert_same(oid, False, "unsigned")

    def test_extra_gpgsig_sha256_header_still_good(self):
        self.commit(self.repo, "extra", key=self.alice)
        raw = self.git(self.repo, "cat-file", "commit", "HEAD").stdout
        oid = self.craft(raw.replace("gpgsig -----BEGIN",
                                     "gpgsig-sha256 junk\n more junk\ngpgsig -----BEGIN", 1))
        self.assertNotEqual(oid, self.rev(self.repo))
        self.assert_same(oid, True)

    def test_wildcard_principal_reported_like_git(self):
        self.commit(self.repo, "signed", key=self.alice)
        self.set_signers('# team\n*@example.com,!mallory@example.com %s\n' % self.pubkey(self.alice))
        out = self.assert_same("HEAD", True)
        self.assertIn("for *@example.com with", out)

    def test_unsigned_commit_in_middle_of_signed_range_under_all(self):
        base = self.commit(self.repo, "s1", key=self.alice)
        self.commit(self.repo, "s2", key=self.alice)
        middle = self.commit(self.repo, "unsigned middle")
        head = self.commit(self.repo, "s3", key=self.alice)
        # git agrees commit by commit
        self.assertEqual(self.git_verdict(head)[0], 0)
        self.assertNotEqual(self.git_verdict(middle)[0], 0)
        rc, out = self.egressd_verdict(head, "--since", base)
        self.assertEqual(rc, 1)
        self.assertIn('policy "all": commit 2 of 3 since %s: commit %s: unsigned' % (base[:12], middle), out)
        rc, out = self.egressd_verdict(head, "--since", middle)
        self.assertEqual(rc, 0, out)

    def test_unsigned_side_branch_of_signed_merge_under_all(self):
        base = self.commit(self.repo, "base", key=self.alice)
        self.git(self.repo, "checkout", "-q", "-b", "side")
        side = self.commit(self.repo, "unsigned side")
        self.git(self.repo, "checkout", "-q", "main")
        self.commit(self.repo, "main work", key=self.alice)
        self.git(self.repo, "-c", "gpg.format=ssh", "-c", "user.signingkey=" + self.alice,
                 "merge", "-q", "-S", "--no-ff", "-m", "merge side", "side")
        self.assert_same("HEAD", True)
        rc, out = self.egressd_verdict("HEAD", "--since", base)
        self.assertEqual(rc, 1)
        self.assertIn("commit %s: unsigned" % side, out)

    def test_rsa_key_verifies_like_git(self):
        # every key type and the deliberate differences: test_ssh_keys.py
        carol = self.keygen("carol", "rsa")
        self.commit(self.repo, "rsa", key=carol)
        self.set_signers("carol@example.com %s\n" % self.pubkey(carol))
        self.assertIn("with RSA key SHA256:", self.assert_same("HEAD", True))

    # --- deliberate differences -------------------------------------------------

    def test_cert_authority_line_is_an_explicit_error(self):
        self.commit(self.repo, "signed", key=self.alice)
        self.set_signers("alice@example.com %s\n*@example.com cert-authority %s\n"
                         % (self.pubkey(self.alice), self.pubkey(self.bob)))
        p = self.egressd("verify-commit", "--repo", self.repo, "HEAD", "--allowed-signers",
                         self.signers, check=2)
        self.assertIn("allowed_signers:2:15: cert-authority is not supported", p.stderr)

    def test_usage_errors_exit_2(self):
        self.egressd("verify-commit", "--repo", self.repo, "HEAD", check=2)
        self.egressd("verify-commit", "--help", check=0)
        p = self.egressd("verify-commit", "--repo", self.path("nope"), "HEAD",
                         "--allowed-signers", self.signers, check=2)
        self.assertIn("cannot open repository", p.stderr)


if __name__ == "__main__":
    unittest.main()
