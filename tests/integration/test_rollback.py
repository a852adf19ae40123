#!/usr/bin/python3
"""The rollback floor (issue 16, W-4, W-5, W-11): a signed commit that is an
ancestor of what egressd applied is refused, by the daemon and by `egressd
verify-commit --since`, alike.

- W-4: the floor is not only state.json's commit in force: the ledger's last
  applied commit holds it too, so deleting state.json lets no older commit in;
- W-5: the refusal names both commits, is logged once per refused head, and
  shows in status.json and STATUS= until a good commit arrives;
- W-11: `verify-commit --since D A` refuses A when A does not descend from D.
"""
import json
import os
import re
import time
import unittest

import daemonlib
import gitlib

EXTRA = ("apiVersion: egressd.io/v1\nkind: EgressIntent\n"
         "metadata: {name: extra, namespace: smm-demo}\n"
         "spec: {gateway: egress-demo, hosts: [www.example.org], "
         "ports: [{number: 80, protocol: HTTP}]}\n")


class TestVerifyCommitSince(gitlib.GitTestCase):
    """W-11: the CLI judges a range as the daemon does (gitsrc_head_check)."""

    def setUp(self):
        super().setUp()
        self.alice = self.keygen("alice")
        self.signers = self.write("allowed_signers",
                                  'alice@example.com namespaces="git" %s\n' % self.pubkey(self.alice))
        self.repo = self.init_repo()
        self.a = self.commit(self.repo, "A", key=self.alice, files={"f": "a\n"})
        self.b = self.commit(self.repo, "B", key=self.alice, files={"f": "b\n"})
        self.c = self.commit(self.repo, "C", key=self.alice, files={"f": "c\n"})
        # X: signed, but on a branch that leaves the applied line at A
        self.git(self.repo, "checkout", "-q", "-b", "side", self.a)
        self.x = self.commit(self.repo, "X", key=self.alice, files={"g": "x\n"})
        self.git(self.repo, "checkout", "-q", "main")

    def verify(self, since, rev):
        return self.egressd("verify-commit", "--repo", self.repo, "--allowed-signers",
                            self.signers, "--since", since, rev)

    def test_since_refuses_an_ancestor_of_the_applied_commit(self):
        p = self.verify(self.c, self.a)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "Not verified: %s is not a descendant of applied %s but an "
                                   "ancestor of it: a rollback, refused (to undo a change, commit "
                                   "a revert on top of %s)\n" % (self.a, self.c, self.c[:12]))

    def test_since_refuses_a_commit_off_the_applied_line(self):
        p = self.verify(self.c, self.x)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertTrue(p.stdout.startswith("Not verified: "), p.stdout)
        self.assertIn("the new head %s" % self.x, p.stdout)
        self.assertIn("is not a descendant of the last applied commit %s" % self.c, p.stdout)

    def test_since_accepts_a_descendant_and_the_applied_commit_itself(self):
        for since, rev in ((self.a, self.c), (self.b, self.c), (self.c, self.c)):
            p = self.verify(since, rev)
            self.assertEqual(p.returncode, 0, "%s..%s: %s%s" % (since, rev, p.stdout, p.stderr))
            self.assertTrue(p.stdout.startswith('Good "git" signature for alice@example.com'),
                            p.stdout)


class DaemonRollbackTest(unittest.TestCase):
    def setUp(self):
        self.d = daemonlib.Daemon()
        self.addCleanup(self.d.close)

    def git(self, *args):
        return self.d.run(["git", "-C", self.d.repo] + list(args)).stdout.strip()

    def polls(self):
        """egressd_polls_total from the metrics textfile (0 before it exists)."""
        try:
            with open(self.d.metrics) as f:
                m = re.search(r"^egressd_polls_total (\d+)$", f.read(), re.M)
        except FileNotFoundError:
            return 0
        return int(m.group(1)) if m else 0

    def wait_polls(self, n, timeout=30):
        """Wait until the daemon has polled @n more times."""
        want = self.polls() + n
        deadline = time.monotonic() + timeout
        while self.polls() < want:
            self.assertLess(time.monotonic(), deadline, "fewer than %d polls in %ss" % (n, timeout))
            self.assertIsNone(self.d.proc.poll(), self.d.logs())
            time.sleep(0.1)

    def apply_two_commits(self):
        """C1 (the example) then C2 (one more intent), both in sync; returns them."""
        d = self.d
        c1 = self.git("rev-parse", "HEAD")
        d.start()
        d.wait_status(r"^in sync: 3/3 clusters at %s" % c1[:7])
        c2 = d.commit("allow example.org", files={"intents/extra.yaml": EXTRA})
        d.wait_status(r"^in sync: 3/3 clusters at %s" % c2[:7], timeout=90)
        self.assertIn(c2, {r.get("commit") for r in d.ledger() if r["type"] == "apply-intent"})
        return c1, c2

    def assert_refused(self, old, floor):
        """@old is refused as a rollback below @floor, in STATUS=, status.json
        and the log (once), and nothing of it reaches the ledger."""
        d = self.d
        msg = "%s is not a descendant of applied %s but an ancestor of it: a rollback" % (old, floor)
        d.wait_status(r"rejected %s \(history\): %s" % (old[:7], re.escape(msg)))
        st = d.status()
        self.assertEqual(st["rejected"]["commit"], old)
        self.assertEqual(st["rejected"]["stage"], "history")
        self.assertIn(msg, st["rejected"]["error"])
        text = d.run([daemonlib.kubelib.egressd_binary(), "status", "--runtime-dir",
                      d.runtime]).stdout
        self.assertIn("\nrejected    %s (history): %s" % (old[:7], msg), text)
        # a few more polls of the same head: logged once, with both ids
        self.wait_polls(3)
        self.assertEqual(d.logs().count(msg), 1, d.logs())
        self.assertIn("commit %s is not applied (history failed): %s" % (old[:12], msg), d.logs())
        return st

    def test_rollback_is_refused_once_and_shown_until_a_good_commit(self):
        """W-5, with state.json in place."""
        d = self.d
        c1, c2 = self.apply_two_commits()
        intents = len([r for r in d.ledger() if r["type"] == "apply-intent"])
        self.git("reset", "-q", "--hard", c1)   # the remote goes back to a signed C1
        st = self.assert_refused(c1, c2)
        self.assertEqual(st["target"]["commit"], c2)
        self.assertEqual(len([r for r in d.ledger() if r["type"] == "apply-intent"]), intents)
        # a good commit on top of what was applied clears the rejection
        self.git("reset", "-q", "--hard", c2)
        c3 = d.commit("an empty change")
        d.wait_status(r"^in sync: 3/3 clusters at %s[^;]*$" % c3[:7], timeout=90)
        self.assertNotIn("rejected", d.status())

    def test_the_ledger_holds_the_floor_when_state_json_is_gone(self):
        """W-4: without state.json the ledger's last applied commit is the floor."""
        d = self.d
        c1, c2 = self.apply_two_commits()
        self.assertEqual(d.stop(), 0, d.logs())
        os.remove(os.path.join(d.state, "state.json"))
        self.git("reset", "-q", "--hard", c1)
        intents = len([r for r in d.ledger() if r["type"] == "apply-intent"])
        d.start()
        st = self.assert_refused(c1, c2)
        self.assertIsNone(st["target"]["commit"])
        self.assertIn("state.json names no commit in force: the rollback floor is %s, the last "
                      "commit the ledger records as applied" % c2, d.logs())
        self.assertEqual(len([r for r in d.ledger() if r["type"] == "apply-intent"]), intents)
        # what descends from the ledger's commit is taken
        self.git("reset", "-q", "--hard", c2)
        c3 = d.commit("an empty change")
        d.wait_status(r"^in sync: 3/3 clusters at %s[^;]*$" % c3[:7], timeout=90)


if __name__ == "__main__":
    unittest.main()
