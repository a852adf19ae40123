#!/usr/bin/python3
"""The ledger's crash safety: a child appending in a loop is killed with
SIGKILL at random moments, 220 times. After each kill, start-up recovery
(`egressd ledger recover`) succeeds, `egressd ledger verify` passes, and no
record covered by a checkpoint signed before the kill is lost (checked with
an independent RFC 6962 implementation and with `verify --since` against the
last checkpoint pair seen at rest).

The seed is printed; EGRESSD_CRASH_SEED=<n> repeats a run."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import unittest

import ledgerlib as L

KILLS = 220


class TestLedgerCrash(unittest.TestCase):
    def setUp(self):
        self.tmp = L.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.join("ledger")
        self.key = self.tmp.join("key")
        self.children = []
        self.addCleanup(self.kill_children)

    def kill_children(self):
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()

    def checkpoint(self):
        return L.parse_checkpoint(L.read(os.path.join(self.dir, "checkpoint")))

    def test_sigkill_at_random_moments_loses_no_signed_record(self):
        seed = int(os.environ.get("EGRESSD_CRASH_SEED", random.randrange(1 << 32)))
        print("\ncrash test seed %d (EGRESSD_CRASH_SEED=%d repeats it)" % (seed, seed),
              file=sys.stderr)
        rng = random.Random(seed)
        r = L.run("keygen", "-f", self.key)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = L.run("ledger", "append-test", "--dir", self.dir, "--key", self.key, "--count", "1",
                  "--create", "--origin", "egressd/crash.example/ledger")
        self.assertEqual(r.returncode, 0, r.stderr)
        since = self.tmp.join("since-checkpoint")
        have_since = False
        stats = {"trimmed": 0, "resigned": 0, "completed": 0, "dropped": 0, "interrupted": 0}
        started = time.monotonic()

        for kill in range(KILLS):
            child = subprocess.Popen([L.EGRESSD, "ledger", "append-test", "--dir", self.dir,
                                      "--key", self.key],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.children.append(child)
            time.sleep(rng.uniform(0.0, 0.03))
            # what was signed before the kill (the checkpoint file is always
            # whole: it is only ever renamed into place)
            _, seen_size, seen_root = self.checkpoint()
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            self.children.remove(child)
            at_rest = not os.path.exists(os.path.join(self.dir, "checkpoint.tmp"))
            if at_rest and kill % 10 == 0:
                # a checkpoint pair to hold the ledger to with --since
                shutil.copy(os.path.join(self.dir, "checkpoint"), since)
                shutil.copy(os.path.join(self.dir, "checkpoint.sig"), since + ".sig")
                have_since = True

            r = L.run("ledger", "recover", "--dir", self.dir, "--key", self.key)
            self.assertEqual(r.returncode, 0, "kill %d: recovery failed: %s" % (kill, r.stderr))
            stats["trimmed"] += "trimmed a torn tail" in r.stdout
            stats["resigned"] += "durable but not yet in the checkpoint" in r.stdout
            stats["completed"] += "finished an interrupted checkpoint" in r.stdout
            stats["dropped"] += "dropped an unfinished checkpoint" in r.stdout
            stats["interrupted"] += r.stdout.count("recorded as interrupted")

            args = ["ledger", "verify", "--dir", self.dir, "--pubkey", self.key + ".pub"]
            if have_since:
                args += ["--since", since]
            r = L.run(*args)
            self.assertEqual(r.returncode, 0, "kill %d: verify failed:\n%s" % (kill, r.stdout))
            self.assertNotIn("warn", r.stdout)

            # nothing signed before the kill is lost, by an independent check
            lines = L.ledger_lines(self.dir)
            _, size, root = self.checkpoint()
            self.assertGreaterEqual(size, seen_size, "kill %d: signed records were lost" % kill)
            self.assertEqual(size, len(lines))
            self.assertEqual(L.mth([L.leaf_hash(x) for x in lines[:seen_size]]), seen_root,
                             "kill %d: the records signed before the kill changed" % kill)
            self.assertEqual(L.mth([L.leaf_hash(x) for x in lines]), root)

        elapsed = time.monotonic() - started
        print("%d kills in %.1f s, %d records; recovery: %s" % (KILLS, elapsed, size, stats),
              file=sys.stderr)
        # the kills landed inside appends, not only between them
        self.assertGreater(stats["interrupted"], 0, stats)
        self.assertGreater(stats["resigned"] + stats["completed"] + stats["dropped"], 0, stats)


if __name__ == "__main__":
    unittest.main()
