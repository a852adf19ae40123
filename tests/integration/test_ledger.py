#!/usr/bin/python3
"""The ledger from the outside: egressd keygen / ledger verify, show, prove,
recover, rotate-key, checked against stock ssh-keygen and an independent
RFC 6962 implementation (ledgerlib)."""

import json
import os
import shutil
import signal
import stat
import subprocess
import time
import unittest

import ledgerlib as L


class LedgerCase(unittest.TestCase):
    def setUp(self):
        self.tmp = L.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.join("ledger")

    def ssh_keygen_key(self, name="id_ed25519", passphrase=""):
        path = self.tmp.join(name)
        r = L.ssh_keygen("-q", "-t", "ed25519", "-N", passphrase, "-C", name + "@test", "-f", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return path

    def append(self, key, count, create=False, check=True):
        args = ["ledger", "append-test", "--dir", self.dir, "--key", key, "--count", str(count)]
        if create:
            args += ["--create", "--origin", "egressd/test.example/ledger"]
        r = L.run(*args)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def allowed_signers(self, pub, principal="ops@example.com", name="allowed_signers"):
        path = self.tmp.join(name)
        keytype, b64 = L.read(pub).split()[:2]
        L.write(path, '%s namespaces="egressd-ledger" %s %s\n' % (principal, keytype, b64))
        return path

    def ssh_verify(self, allowed, principal="ops@example.com", checkpoint=None, sig=None):
        checkpoint = checkpoint or os.path.join(self.dir, "checkpoint")
        sig = sig or os.path.join(self.dir, "checkpoint.sig")
        return L.ssh_keygen("-Y", "verify", "-f", allowed, "-I", principal, "-n", "egressd-ledger",
                            "-s", sig, stdin=L.read(checkpoint))


class TestKeygen(LedgerCase):
    def test_keygen_writes_a_key_ssh_keygen_reads(self):
        key = self.tmp.join("ledger_ed25519")
        r = L.run("keygen", "-f", key, "--principal", "ops@example.com", "-C", "ledger@host")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        pub = L.read(key + ".pub")
        self.assertTrue(pub.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"))
        self.assertTrue(pub.endswith(" ledger@host\n"))
        # ssh-keygen derives the same public key from our private key file
        derived = L.ssh_keygen("-y", "-f", key)
        self.assertEqual(derived.returncode, 0, derived.stderr)
        self.assertEqual(derived.stdout.split()[:2], pub.split()[:2])
        allowed = L.read(key + ".allowed_signers")
        self.assertEqual(allowed, 'ops@example.com namespaces="egressd-ledger" ' + pub)
        # the fingerprint printed is ssh-keygen's
        fp = L.ssh_keygen("-l", "-f", key + ".pub").stdout.split()[1]
        self.assertIn("Key fingerprint: " + fp + "\n", r.stdout)

    def test_keygen_refuses_to_overwrite(self):
        key = self.tmp.join("k")
        self.assertEqual(L.run("keygen", "-f", key).returncode, 0)
        before = L.read(key)
        r = L.run("keygen", "-f", key)
        self.assertEqual(r.returncode, 2)
        self.assertIn("exists; use --force to replace it", r.stderr)
        self.assertEqual(L.read(key), before)
        self.assertEqual(L.run("keygen", "-f", key, "--force").returncode, 0)
        self.assertNotEqual(L.read(key), before)


class TestSshKeygenInterop(LedgerCase):
    def test_ssh_keygen_accepts_every_checkpoint_and_rejects_a_modified_one(self):
        key = self.tmp.join("ledger_ed25519")
        self.assertEqual(L.run("keygen", "-f", key, "--principal", "ops@example.com").returncode, 0)
        allowed = key + ".allowed_signers"
        self.append(key, 0, create=True)
        for size in range(1, 6):
            r = self.ssh_verify(allowed)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('Good "egressd-ledger" signature for ops@example.com', r.stdout)
            _, got_size, root = L.parse_checkpoint(L.read(os.path.join(self.dir, "checkpoint")))
            self.assertEqual(got_size, 2 * size - 1)
            # the signed root is the RFC 6962 root of the exact lines
            lines = L.ledger_lines(self.dir)
            self.assertEqual(root, L.mth([L.leaf_hash(x) for x in lines]))
            self.append(key, 1)
        # a modified checkpoint: one more record claimed
        text = L.read(os.path.join(self.dir, "checkpoint"))
        origin, size, _ = L.parse_checkpoint(text)
        forged = self.tmp.join("forged")
        L.write(forged, text.replace("\n%d\n" % size, "\n%d\n" % (size + 1)))
        r = self.ssh_verify(allowed, checkpoint=forged)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("Good", r.stdout)
        # and a wrong namespace
        r = L.ssh_keygen("-Y", "verify", "-f", allowed, "-I", "ops@example.com", "-n", "git",
                         "-s", os.path.join(self.dir, "checkpoint.sig"),
                         stdin=L.read(os.path.join(self.dir, "checkpoint")))
        self.assertNotEqual(r.returncode, 0)

    def test_egressd_accepts_a_key_made_by_ssh_keygen(self):
        key = self.ssh_keygen_key()
        self.append(key, 2, create=True)
        allowed = self.allowed_signers(key + ".pub")
        r = self.ssh_verify(allowed)
        self.assertEqual(r.returncode, 0, r.stderr)
        for trust in (key + ".pub", allowed):
            r = L.run("ledger", "verify", "--dir", self.dir, "--pubkey", trust)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("trusted by --pubkey", r.stdout)
            self.assertTrue(r.stdout.endswith(
                "verified: 5 records, signed checkpoint of size 5 by %s\n"
                % L.ssh_keygen("-l", "-f", key + ".pub").stdout.split()[1]))

    def test_passphrase_protected_key_gets_a_clear_error(self):
        key = self.ssh_keygen_key("protected", passphrase="correct horse")
        r = self.append(key, 1, create=True, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("passphrase-protected keys are not supported; create one with "
                      "`ssh-keygen -t ed25519 -N ''` or `egressd keygen`", r.stderr)
        self.assertFalse(os.path.exists(self.dir))

    def test_verify_rejects_an_untrusted_pubkey(self):
        key = self.ssh_keygen_key()
        other = self.ssh_keygen_key("other")
        self.append(key, 1, create=True)
        r = L.run("ledger", "verify", "--dir", self.dir, "--pubkey", other + ".pub")
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL  checkpoint", r.stdout)
        self.assertIn("which the --pubkey file does not trust", r.stdout)


class TestVerifyShowProve(LedgerCase):
    def setUp(self):
        super().setUp()
        self.key = self.ssh_keygen_key()
        self.append(self.key, 4, create=True)   # records 0-9 (9: a drift record)

    def test_verify_names_the_first_bad_record(self):
        lines = L.ledger_lines(self.dir)
        del lines[4]
        L.write(os.path.join(self.dir, "ledger.jsonl"), b"".join(x + b"\n" for x in lines), "wb")
        r = L.run("ledger", "verify", "--dir", self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ok    checkpoint  size 10, signed by ", r.stdout)
        self.assertIn("FAIL  records     record 4 (line 5): line 5 holds record 5 where record 4 "
                      "belongs", r.stdout)
        self.assertTrue(r.stdout.endswith("NOT verified: the first bad record is 4\n"), r.stdout)
        # start-up refuses too, and changes nothing
        before = L.read(os.path.join(self.dir, "ledger.jsonl"), "rb")
        r = L.run("ledger", "recover", "--dir", self.dir, "--key", self.key)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is damaged inside its signed history: record 4 (line 5): line 5 holds "
                      "record 5 where record 4 belongs", r.stderr)
        self.assertEqual(L.read(os.path.join(self.dir, "ledger.jsonl"), "rb"), before)

    def test_prove_output_verifies_independently(self):
        lines = L.ledger_lines(self.dir)
        _, size, root = L.parse_checkpoint(L.read(os.path.join(self.dir, "checkpoint")))
        self.assertEqual(size, 10)
        for index in range(size):
            r = L.run("ledger", "prove", "--dir", self.dir, "-o", "json", str(index))
            self.assertEqual(r.returncode, 0, r.stderr)
            proof = json.loads(r.stdout)
            leaf = L.base64.b64decode(proof["leaf_hash"])
            path = [L.base64.b64decode(h) for h in proof["audit_path"]]
            self.assertEqual(proof["tree_size"], 10)
            self.assertEqual(leaf, L.leaf_hash(lines[index]))
            self.assertEqual(L.base64.b64decode(proof["root"]), root)
            self.assertTrue(L.verify_inclusion(index, size, leaf, path, root))
            self.assertFalse(L.verify_inclusion(index ^ 1, size, leaf, path, root))
        # text form, smaller tree
        r = L.run("ledger", "prove", "--dir", self.dir, "--size", "5", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        fields = [line.split(" ", 1) for line in r.stdout.splitlines()]
        self.assertEqual(fields[0], ["index", "2"])
        self.assertEqual(fields[1], ["tree_size", "5"])
        root5 = L.base64.b64decode(fields[3][1])
        self.assertEqual(root5, L.mth([L.leaf_hash(x) for x in lines[:5]]))
        path = [L.base64.b64decode(v) for k, v in fields[4:] if k == "path"]
        self.assertTrue(L.verify_inclusion(2, 5, L.leaf_hash(lines[2]), path, root5))
        r = L.run("ledger", "prove", "--dir", self.dir, "10")
        self.assertEqual(r.returncode, 1)
        self.assertIn("record 10 is not in a tree of 10 records", r.stderr)

    def test_show_prints_columns_and_exact_json(self):
        r = L.run("ledger", "show", "--dir", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()
        self.assertEqual(rows[0].split(), ["INDEX", "TIME", "TYPE", "CLUSTER", "COMMIT", "SIGNER",
                                           "SUMMARY"])
        self.assertEqual(len(rows), 11)
        self.assertEqual(rows[1].split()[2], "genesis")
        self.assertIn("ledger egressd/test.example/ledger on ", rows[1])
        cols = rows[4].split()
        self.assertEqual(cols[0], "3")
        self.assertEqual(cols[2:5], ["apply-intent", "crash-test", "0000000"])
        self.assertIn("plan 1 object: 1 update", rows[4])
        self.assertIn("ok (intent 3): 1 ok", rows[5])
        self.assertEqual(rows[5].split()[4], "0000000")   # the intent's commit
        self.assertEqual(rows[10].split()[2:5], ["drift", "crash-test", "0000000"])
        self.assertIn("1 object drifted: 1 reapplied", rows[10])
        r = L.run("ledger", "show", "--dir", self.dir, "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        records = json.loads(r.stdout)
        lines = L.ledger_lines(self.dir)
        self.assertEqual([json.loads(x) for x in lines], records)
        # each element is printed as the exact leaf bytes
        for line in lines:
            self.assertIn(line.decode(), r.stdout)
        r = L.run("ledger", "show", "--dir", self.dir, "--cluster", "prod-eu")
        self.assertEqual(r.stdout.splitlines()[1:], [])
        r = L.run("ledger", "show", "--dir", self.dir, "--since", "2999-01-01T00:00:00Z", "-o",
                  "json")
        self.assertEqual(json.loads(r.stdout), [])
        r = L.run("ledger", "show", "--dir", self.dir, "--since", "yesterday")
        self.assertEqual(r.returncode, 2)

    def test_verify_since_accepts_a_prefix_and_rejects_a_rewrite(self):
        old = self.tmp.join("old-checkpoint")
        shutil.copy(os.path.join(self.dir, "checkpoint"), old)
        shutil.copy(os.path.join(self.dir, "checkpoint.sig"), old + ".sig")
        self.append(self.key, 3)
        r = L.run("ledger", "verify", "--dir", self.dir, "--since", old)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("ok    since       the checkpoint of size 10 is a prefix of size 16 "
                      "(consistency proof of", r.stdout)
        # the same key re-signs a rewritten history (a genesis record with
        # another time): the old checkpoint exposes it
        shutil.rmtree(self.dir)
        time.sleep(1.1)
        self.append(self.key, 7, create=True)
        r = L.run("ledger", "verify", "--dir", self.dir)
        self.assertEqual(r.returncode, 0, r.stdout)
        r = L.run("ledger", "verify", "--dir", self.dir, "--since", old)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("FAIL  since       the older checkpoint (size 10", r.stdout)


class TestSchema(LedgerCase):
    def test_every_record_type_matches_the_documented_schema(self):
        import jsonschema   # Debian: python3-jsonschema
        schema = json.loads(L.read(os.path.join(os.environ["EGRESSD_SOURCE_DIR"], "docs",
                                                "ledger-record.schema.json")))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        key, new = self.ssh_keygen_key(), self.ssh_keygen_key("next")
        self.append(key, 8, create=True)
        r = L.run("ledger", "rotate-key", "--dir", self.dir, "--key", key, "--new-key", new)
        self.assertEqual(r.returncode, 0, r.stderr)
        # an intent left open by a kill gets an "interrupted" result at start-up
        children = []

        def stop_children():
            for child in children:
                if child.poll() is None:
                    child.kill()
                child.wait()
        self.addCleanup(stop_children)
        seen = set()
        deadline = time.monotonic() + 20
        while "interrupted" not in seen and time.monotonic() < deadline:
            child = subprocess.Popen([L.EGRESSD, "ledger", "append-test", "--dir", self.dir,
                                      "--key", new], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            children.append(child)
            time.sleep(0.05)
            child.kill()
            child.wait()
            r = L.run("ledger", "recover", "--dir", self.dir, "--key", new)
            self.assertEqual(r.returncode, 0, r.stderr)
            for line in L.ledger_lines(self.dir):
                record = json.loads(line)
                seen.add(record["type"])
                if record.get("outcome") == "interrupted":
                    seen.add("interrupted")
        self.assertEqual(seen, {"genesis", "apply-intent", "apply-result", "drift", "prune",
                                "key-rotation", "interrupted"})
        golden = os.path.join(os.environ["EGRESSD_SOURCE_DIR"], "tests", "data", "ledger",
                              "0004-golden-ledger")
        lines = L.ledger_lines(self.dir) + L.ledger_lines(golden)
        for line in lines:
            errors = list(validator.iter_errors(json.loads(line)))
            self.assertEqual(errors, [], line)
        # the schema is not vacuous: what egressd refuses, it refuses too
        record = json.loads(lines[1])
        for bad in ({"zebra": 1}, {"commit": "HEAD"}, {"cluster": ""}, {"index": -1}):
            self.assertFalse(validator.is_valid({**record, **bad}), bad)
        del record["actions"]
        self.assertFalse(validator.is_valid(record))


class TestWriter(LedgerCase):
    def test_second_writer_is_refused_naming_the_holder(self):
        key = self.ssh_keygen_key()
        self.append(key, 1, create=True)
        child = subprocess.Popen([L.EGRESSD, "ledger", "append-test", "--dir", self.dir, "--key",
                                  key], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            if child.poll() is None:
                child.kill()
            child.wait()
        self.addCleanup(stop)
        # the child holds the lock once it has appended
        checkpoint = os.path.join(self.dir, "checkpoint")
        deadline = time.monotonic() + 20
        while L.parse_checkpoint(L.read(checkpoint))[1] <= 3:
            self.assertIsNone(child.poll(), "the appending child exited")
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        r = L.run("ledger", "recover", "--dir", self.dir, "--key", key)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("is in use by another writer (pid %d); only one egressd may write a ledger"
                      % child.pid, r.stderr)
        child.send_signal(signal.SIGTERM)
        child.wait()
        r = L.run("ledger", "recover", "--dir", self.dir, "--key", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(L.run("ledger", "verify", "--dir", self.dir).returncode, 0)

    def test_recover_trims_a_torn_tail_and_reports_it(self):
        key = self.ssh_keygen_key()
        self.append(key, 1, create=True)
        path = os.path.join(self.dir, "ledger.jsonl")
        good = L.read(path, "rb")
        L.write(path, good + b'{"index":3,"time":"2026-', "wb")
        r = L.run("ledger", "verify", "--dir", self.dir)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("warn  tail        an incomplete last line", r.stdout)
        r = L.run("ledger", "recover", "--dir", self.dir, "--key", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "trimmed a torn tail of 24 bytes at offset %d (past the signed "
                                   "size)\nledger egressd/test.example/ledger: 3 records, signed\n"
                                   % len(good))
        self.assertEqual(L.read(path, "rb"), good)

    def forge_record(self):
        """Append what anyone who can write ledger.jsonl can: a well-formed
        drift record chained to the records before it (index, prev_root),
        made without the signing key. Returns its line."""
        lines = L.ledger_lines(self.dir)
        head = json.dumps({"index": len(lines), "time": "2026-11-27T00:00:09Z", "type": "drift",
                           "prev_root": L.base64.b64encode(
                               L.mth([L.leaf_hash(x) for x in lines])).decode()},
                          separators=(",", ":"))
        fields = json.dumps({"cluster": "prod-eu", "commit": "f" * 40,
                             "objects": [{"action": "reported", "change": "deleted",
                                          "kind": "ServiceEntry", "name": "forged",
                                          "namespace": "payments"}]},
                            separators=(",", ":"), sort_keys=True)
        line = (head[:-1] + "," + fields[1:]).encode()
        with open(os.path.join(self.dir, "ledger.jsonl"), "ab") as f:
            f.write(line + b"\n")
        return line

    def test_a_forged_appended_record_fails_verify_and_is_never_signed(self):
        key = self.ssh_keygen_key()
        self.append(key, 1, create=True)
        path = os.path.join(self.dir, "ledger.jsonl")
        good = L.read(path, "rb")
        checkpoint = L.read(os.path.join(self.dir, "checkpoint"))
        forged = self.forge_record()
        # the chain is right: only the missing signature gives it away
        r = L.run("ledger", "verify", "--dir", self.dir, "--pubkey", key + ".pub")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("ok    records     3 records", r.stdout)
        self.assertIn("FAIL  tail        record 3 is past the signed checkpoint and no signature "
                      "of the ledger's key covers it", r.stdout)
        self.assertTrue(r.stdout.endswith("NOT verified: the first bad record is 3\n"), r.stdout)
        r = L.run("ledger", "verify", "--dir", self.dir, "--allow-unsigned-tail")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("warn  tail        record 3 is past the signed checkpoint and nothing signs "
                      "it; accepted by --allow-unsigned-tail", r.stdout)
        # show marks it
        r = L.run("ledger", "show", "--dir", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()
        self.assertEqual(rows[4].split()[:3], ["3", "2026-11-27T00:00:09Z", "drift"])
        self.assertIn("UNSIGNED (past the signed checkpoint): 1 object drifted", rows[4])
        self.assertFalse(any("UNSIGNED" in row for row in rows[:4]), rows)
        self.assertIn("warning: record 3 is past the signed checkpoint (size 3): not signed",
                      r.stderr)
        r = L.run("ledger", "show", "--dir", self.dir, "-o", "json")
        self.assertEqual(len(json.loads(r.stdout)), 4)
        self.assertIn("record 3 is past the signed checkpoint", r.stderr)
        # recovery (what the daemon runs at start) moves it aside, unsigned
        r = L.run("ledger", "recover", "--dir", self.dir, "--key", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        moved = os.path.join(self.dir, "unsigned-record-3.jsonl")
        self.assertEqual(r.stdout, "moved record 3 (%d bytes) to %s: it was past the signed "
                         "checkpoint and no signature of the ledger's key covers it, so egressd "
                         "did not write it; it was not signed. Find out who wrote it\n"
                         "ledger egressd/test.example/ledger: 3 records, signed\n"
                         % (len(forged) + 1, moved))
        self.assertEqual(L.read(moved, "rb"), forged + b"\n")
        self.assertEqual(L.read(path, "rb"), good)
        self.assertEqual(L.read(os.path.join(self.dir, "checkpoint")), checkpoint)
        r = L.run("ledger", "verify", "--dir", self.dir, "--pubkey", key + ".pub")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("warn", r.stdout)

    def test_rotate_key_hands_over_to_the_new_key(self):
        key = self.ssh_keygen_key()
        new = self.ssh_keygen_key("next")
        self.append(key, 1, create=True)
        r = L.run("ledger", "rotate-key", "--dir", self.dir, "--key", key, "--new-key", new)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("record 3 hands the ledger to", r.stdout)
        r = self.ssh_verify(self.allowed_signers(new + ".pub", name="next_signers"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = L.run("ledger", "verify", "--dir", self.dir, "--pubkey", new + ".pub")
        self.assertEqual(r.returncode, 0, r.stdout)
        r = self.append(key, 1, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is not the key of ledger", r.stderr)
        self.append(new, 1)
        r = L.run("ledger", "show", "--dir", self.dir)
        self.assertIn("key-rotation", r.stdout)
        self.assertIn("checkpoints are signed by", r.stdout)


if __name__ == "__main__":
    unittest.main()
