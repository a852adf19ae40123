"""egressd run as systemd runs it (NOTIFY_SOCKET bound by the test): READY,
STATUS before and after a new commit, watchdog pings, reload with a good and
a bad host config, a commit that fails verification or validation leaving
the previous one in force, drift corrected, a clean stop on SIGTERM with a
ledger that verifies, and nothing secret in what the daemon publishes."""
import json
import os
import re
import signal
import subprocess
import time
import unittest

import daemonlib
import kubelib
from netlib import wait_for


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.d = daemonlib.Daemon()
        self.addCleanup(self.d.close)

    def test_ready_status_new_commit_and_clean_stop(self):
        d = self.d
        first = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.start()
        ready = d.wait_notify("READY=1")
        # READY comes once the loop runs, before any cluster is touched
        self.assertFalse(any("STATUS=in sync" in n[1] for n in d.notifications()[:ready]))
        line = d.wait_status(r"^in sync: 3/3 clusters at %s \(verified: alice@example.com\), 0 drift "
                             r"corrected, checked \d+\w* ago$" % first[:7])
        self.assertIn(first[:7], line)
        st = d.status()
        self.assertEqual(st["target"]["commit"], first)
        self.assertEqual(st["target"]["signer"], "alice@example.com")
        self.assertEqual(sorted(c["phase"] for c in st["clusters"]), ["done"] * 3)
        self.assertEqual(sorted(c["health"] for c in st["clusters"]), ["healthy"] * 3)

        # a new commit: one more intent
        second = d.commit("allow example.org", files={"intents/extra.yaml": (
            "apiVersion: egressd.io/v1\nkind: EgressIntent\n"
            "metadata: {name: extra, namespace: smm-demo}\n"
            "spec: {gateway: egress-demo, hosts: [www.example.org], ports: [{number: 80, protocol: HTTP}]}\n")})
        d.wait_status(r"^rolling out %s" % second[:7], timeout=20)
        d.wait_status(r"^in sync: 3/3 clusters at %s" % second[:7], timeout=60)
        st, body = d.sim.request("GET", "/apis/networking.istio.io/v1/namespaces/smm-demo/virtualservices/"
                                        "extra-www.example.org", cluster="prod-us")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["metadata"]["annotations"]["egressd.io/source"], "intents/extra.yaml")

        # stop: STOPPING, exit 0, the ledger verifies and holds what was done
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.logs())
        self.assertTrue(any(n[1] == "STOPPING=1" for n in d.notifications()))
        p = subprocess.run([kubelib.egressd_binary(), "ledger", "verify", "--dir",
                            os.path.join(d.state, "ledger"), "--pubkey", d.ledger_key + ".pub"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        records = d.ledger()
        intents = [r for r in records if r["type"] == "apply-intent"]
        results = [r for r in records if r["type"] == "apply-result"]
        self.assertEqual({r["commit"] for r in intents}, {first, second})
        self.assertEqual(len(intents), len(results))
        self.assertTrue(all(r["outcome"] == "ok" for r in results))
        for r in intents:
            self.assertEqual(r["signer"]["principal"], "alice@example.com")
            self.assertRegex(r["manifests_digest"], r"^sha256:[0-9a-f]{64}$")
        with open(d.metrics) as f:
            metrics = f.read()
        self.assertIn('egressd_target_info{commit="%s"} 1' % second, metrics)
        self.assertRegex(metrics, r'egressd_syncs_total\{cluster="prod-eu"\} [1-9]')
        self.assertIn("egressd_ledger_records %d" % len(records), metrics)

    def test_watchdog_pings_at_half_the_interval(self):
        d = self.d
        d.start(watchdog_usec=1000000)
        d.wait_notify("READY=1")
        time.sleep(3.2)
        pings = [t for t, m in d.notifications() if m == "WATCHDOG=1"]
        self.assertGreaterEqual(len(pings), 4, pings)
        # at half the interval (0.5 s), not at the interval: the median gap tells,
        # whatever a loaded machine does to a single one
        gaps = sorted(b - a for a, b in zip(pings, pings[1:]))
        self.assertLess(gaps[len(gaps) // 2], 0.75, gaps)

    def test_reload_good_and_bad_config(self):
        d = self.d
        d.start()
        d.wait_notify("READY=1")
        d.wait_status(r"^in sync: 3/3")
        # a good config: the poll interval changes
        with open(d.config) as f:
            good = f.read()
        with open(d.config, "w") as f:
            f.write(good.replace("interval: 1s", "interval: 2s"))
        mark = len(d.notifications())
        d.kill(signal.SIGHUP)
        i = d.wait_notify("RELOADING=1", since=mark)
        self.assertRegex(d.notifications()[i][1], r"^RELOADING=1\nMONOTONIC_USEC=\d+$")
        d.wait_notify("READY=1", since=i)
        self.assertRegex(d.logs(), r"reloaded %s: 3 clusters" % re.escape(d.config))
        # a bad one: refused, the running configuration stays
        with open(d.config, "w") as f:
            f.write(good.replace("interval: 1s", "intervall: 2s"))
        mark = len(d.notifications())
        d.kill(signal.SIGHUP)
        i = d.wait_notify("RELOADING=1", since=mark)
        d.wait_notify("READY=1", since=i)
        self.assertIn("unknown field 'intervall' in repository; did you mean 'interval'?", d.logs())
        self.assertIn("reload refused: %s is invalid; the running configuration stays" % d.config, d.logs())
        self.assertIsNone(d.proc.poll())
        # still following the repo with the old settings
        third = d.commit("an empty change")
        d.wait_status(r"at %s" % third[:7], timeout=30)

    def test_restart_keeps_signer_and_rejection(self):
        d = self.d
        good = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.start()
        d.wait_status(r"^in sync: 3/3 clusters at %s \(verified: alice@example.com\)" % good[:7])
        bad = d.commit("mallory was here", key="mallory")
        d.wait_status(r"rejected %s \(verify\)" % bad[:7])
        self.assertEqual(d.stop(), 0, d.logs())
        # the status file says so, and the commands say it is not running
        with open(os.path.join(d.runtime, "status.json")) as f:
            self.assertEqual(json.load(f)["state"], "stopped")
        p = subprocess.run([kubelib.egressd_binary(), "rollout", "pause", "--runtime-dir", d.runtime],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("the daemon is not running", p.stderr)

        # after a restart: the signer of the commit in force and the refused
        # commit are still known, without a new fetch
        mark = len(d.notifications())
        d.start()
        d.wait_notify("READY=1", since=mark)
        want = re.compile(r"^in sync: 3/3 clusters at %s \(verified: alice@example.com\).*; "
                          r"rejected %s \(verify\): " % (good[:7], bad[:7]))
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            lines = [n[1][7:] for n in d.notifications()[mark:] if n[1].startswith("STATUS=")]
            if any(want.search(l) for l in lines):
                break
            time.sleep(0.1)
        self.assertTrue(any(want.search(l) for l in lines), lines[-5:])
        self.assertFalse(any("unsigned" in l for l in lines), lines)
        st = d.status()
        self.assertEqual(st["target"]["signer"], "alice@example.com")
        self.assertEqual(st["rejected"]["commit"], bad)

    def test_a_commit_missing_from_the_cache_is_retried_later(self):
        d = self.d
        d.start()
        d.wait_status(r"^in sync: 3/3")
        self.assertEqual(d.stop(), 0, d.logs())
        # a halted rollout whose first cluster is still at a commit that is
        # gone from the local copy (a damaged cache)
        with open(os.path.join(d.state, "state.json")) as f:
            state = json.load(f)
        missing = "0123456789abcdef0123456789abcdef01234567"
        state["rollout"]["state"] = "halted"
        state["rollout"]["haltReason"] = "a test"
        state["rollout"]["clusters"][0]["phase"] = "pending"
        state["rollout"]["clusters"][0]["applied"] = missing
        with open(os.path.join(d.state, "state.json"), "w") as f:
            json.dump(state, f)
        mark = len(d.notifications())
        d.start()
        d.wait_notify("READY=1", since=mark)
        d.wait_notify("STATUS=halted", since=mark)
        # tried once, not on every turn of the loop, and the repo is still polled
        time.sleep(3)
        self.assertEqual(d.logs().count("cannot load commit %s" % missing[:12]), 1, d.logs())
        third = d.commit("an empty change")
        d.wait_status(r"at %s" % third[:7], timeout=30)

    def test_reload_refuses_what_takes_a_restart(self):
        d = self.d
        d.start()
        d.wait_status(r"^in sync: 3/3")
        with open(d.config) as f:
            good = f.read()
        with open(d.config, "w") as f:
            f.write(good.replace("  dir: %s\n" % d.state, "  dir: %s-elsewhere\n" % d.state))
        mark = len(d.notifications())
        d.kill(signal.SIGHUP)
        i = d.wait_notify("RELOADING=1", since=mark)
        d.wait_notify("READY=1", since=i)
        self.assertIn("reload refused: state.dir changed in %s, which takes a restart" % d.config,
                      d.logs())
        self.assertFalse(os.path.exists(d.state + "-elsewhere"))
        # the counters of a cluster survive a reload that keeps it
        with open(d.config, "w") as f:
            f.write(good.replace("interval: 1s", "interval: 2s"))
        syncs = {c["name"]: c["syncs"] for c in d.status()["clusters"]}
        mark = len(d.notifications())
        status_file = os.path.join(d.runtime, "status.json")
        written = os.stat(status_file).st_ino  # each write replaces the file
        d.kill(signal.SIGHUP)
        i = d.wait_notify("RELOADING=1", since=mark)
        d.wait_notify("READY=1", since=i)
        wait_for("a status write after the reload",
                 lambda: os.stat(status_file).st_ino != written, 20)
        after = {c["name"]: c["syncs"] for c in d.status()["clusters"]}
        for name, n in syncs.items():
            self.assertGreaterEqual(after[name], n, (syncs, after))

    @kubelib.emulator_only("latency injected into the PATCHes, to stop the daemon mid-sync")
    def test_a_stop_during_a_sync_records_what_was_done(self):
        d = self.d
        # every write to canary takes 8 s: its first sync (a kind at a time)
        # outlasts the 20 s the daemon gives syncs at a stop
        with open(d.config) as f:
            text = f.read()
        with open(d.config, "w") as f:
            f.write(text.replace("requestTimeout: 5s", "requestTimeout: 60s"))
        d.sim.add_fault(cluster="canary", verb="patch", latency_ms=8000)
        d.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                r["type"] == "apply-intent" for r in d.ledger_if_any()):
            time.sleep(0.1)
        # the first kind is written (its slow PATCHes answered), the rest not
        wait_for("a PATCH to canary answered", lambda: any(
            r["method"] == "PATCH" and r["status"] in (200, 201) for r in d.sim.requests("canary")), 30)
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0, d.logs())
        self.assertLess(time.monotonic() - t0, 28)  # the grace is 20 s
        results = [r for r in d.ledger() if r["type"] == "apply-result"]
        self.assertEqual(len(results), 1, results)
        res = results[0]
        self.assertEqual(res["outcome"], "interrupted")
        outcomes = {o["outcome"] for o in res["objects"]}
        # some objects were written before the stop, the rest were not
        self.assertIn("ok", outcomes, res)
        self.assertIn("skipped", outcomes, res)
        ok = [o for o in res["objects"] if o["outcome"] == "ok"]
        self.assertTrue(all(o.get("uid") for o in ok), ok)
        p = subprocess.run([kubelib.egressd_binary(), "ledger", "verify", "--dir",
                            os.path.join(d.state, "ledger"), "--pubkey", d.ledger_key + ".pub"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_bad_commits_leave_the_last_good_one_in_force(self):
        d = self.d
        good = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.start()
        d.wait_status(r"^in sync: 3/3 clusters at %s" % good[:7])
        # signed by someone who is not allowed
        bad = d.commit("mallory was here", key="mallory")
        line = d.wait_status(r"rejected %s \(verify\)" % bad[:7])
        self.assertIn("in sync: 3/3 clusters at %s" % good[:7], line)
        self.assertIn("commit %.12s is not applied (verify failed)" % bad, d.logs())
        # a valid signature but an invalid repo: the problems with their positions
        d.run(["git", "-C", d.repo, "reset", "-q", "--hard", good])
        broken = d.commit("a typo", files={"intents/typo.yaml": (
            "apiVersion: egressd.io/v1\nkind: EgressIntent\n"
            "metadata: {name: typo, namespace: smm-demo}\n"
            "spec:\n  gateway: egress-demo\n  hosts: [typo.example.com]\n"
            "  ports: [{number: 80, protocol: HTTP, sni_hosts: [x]}]\n")})
        d.wait_status(r"rejected %s \(validate\)" % broken[:7])
        self.assertIn("intents/typo.yaml:7:40: error: unknown field 'sni_hosts' in spec.ports[0]", d.logs())
        st = d.status()
        self.assertEqual(st["target"]["commit"], good)
        self.assertEqual(st["rejected"]["commit"], broken)
        # nothing of the rejected commits reached a cluster
        for c in d.clusters:
            st, _ = d.sim.request("GET", "/apis/networking.istio.io/v1/namespaces/smm-demo/serviceentries/typo",
                                  cluster=c)
            self.assertEqual(st, 404)
        self.assertFalse(any(r.get("commit") in (bad, broken) for r in d.ledger()))

    def test_drift_is_corrected_and_recorded(self):
        d = self.d
        d.start()
        d.wait_status(r"^in sync: 3/3")
        path = "/apis/networking.istio.io/v1/namespaces/payments/virtualservices/stripe-api.stripe.com"
        st, vs = d.sim.request("GET", path, cluster="canary")
        self.assertEqual(st, 200)
        st, _ = d.sim.request("PATCH", path + "?fieldManager=kubectl-edit",
                              {"spec": {"hosts": ["api.evil.example"]}}, cluster="canary",
                              ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        deadline = time.time() + 20
        while time.time() < deadline:
            st, vs = d.sim.request("GET", path, cluster="canary")
            if vs["spec"]["hosts"] == ["api.stripe.com"]:
                break
            time.sleep(0.3)
        self.assertEqual(vs["spec"]["hosts"], ["api.stripe.com"])
        d.wait_status(r"1 drift corrected")
        self.assertRegex(d.logs(), r"cluster canary: VirtualService payments/stripe-api.stripe.com: drift "
                                   r"corrected: spec.hosts\[0\] changed out of band")
        drift = [r for r in d.ledger() if r["type"] == "drift"]
        self.assertEqual(len(drift), 1)
        self.assertEqual(drift[0]["cluster"], "canary")
        self.assertEqual(drift[0]["objects"][0]["fields"], ["spec.hosts[0]"])
        self.assertEqual(drift[0]["objects"][0]["action"], "reapplied")

    def test_nothing_secret_is_published(self):
        d = self.d
        d.start()
        d.wait_status(r"^in sync: 3/3")
        d.stop()
        secrets = [d.sim.token(c) for c in d.clusters]
        with open(d.ledger_key) as f:
            key_body = "".join(l for l in f.read().splitlines() if "PRIVATE KEY" not in l)
        with open(d.ledger_key + ".pub") as f:
            public = f.read().split()[1]
        # the first base64 characters are the openssh-key-v1 header every key
        # shares; the second half holds the private part (and the public key,
        # which is published: those windows are left out)
        windows = [key_body[i:i + 32] for i in range(len(key_body) // 2, len(key_body) - 40, 8)]
        windows = [w for w in windows if w not in public]
        self.assertGreater(len(windows), 3)
        published = [os.path.join(d.runtime, "status.json"), d.metrics,
                     os.path.join(d.state, "ledger", "ledger.jsonl"), os.path.join(d.state, "state.json"),
                     d.log_path]
        for p in published:
            with open(p) as f:
                text = f.read()
            for s in secrets:
                self.assertNotIn(s, text, p)
            for part in windows:
                self.assertNotIn(part, text, p)

    def test_bad_host_config_refuses_to_start(self):
        d = self.d
        with open(d.config, "a") as f:
            f.write("sync:\n  pruneBudget: lots\n")
        d.start()
        self.assertEqual(d.proc.wait(20), 1)
        self.assertIn("not starting: the host config %s is invalid" % d.config, d.logs())
        self.assertRegex(d.logs(), r"egressd.yaml:\d+:\d+: error: duplicate key 'sync'")
        self.assertFalse(any("READY=1" in n[1] for n in d.notifications()))


if __name__ == "__main__":
    unittest.main()
