"""Fleet rollout by the daemon: 5 clusters in 3 waves. Waves in order with
bake times respected (read from the ledger), a ReconcileFailed gateway in
wave 2 halting the rollout with wave 3 on the old commit (checked with
kubectl), a fix commit completing it, a restart resuming from the persisted
state without re-applying finished waves, an unreachable cluster retried and
then counted as failed, and pause/resume through the control socket, each
recorded in the ledger."""
import json
import os
import signal
import subprocess
import time
import unittest
from datetime import datetime

import daemonlib
import kubelib

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
CLUSTERS = ["c1", "c2", "c3", "c4", "c5"]


def fleet(canary_bake="2s", eu_bake="2s", us_bake="1s"):
    return ("apiVersion: egressd.io/v1\nkind: Fleet\nmetadata: {name: example}\nspec:\n  clusters:\n"
            "    - {name: c1, labels: {env: staging, region: eu}}\n"
            "    - {name: c2, labels: {env: prod, region: eu}}\n"
            "    - {name: c3, labels: {env: prod, region: eu}}\n"
            "    - {name: c4, labels: {env: prod, region: us}}\n"
            "    - {name: c5, labels: {env: prod, region: us}}\n"
            "  rollout:\n    waves:\n"
            "      - {name: canary, selector: {matchLabels: {env: staging}}, bake: %s}\n"
            "      - {name: eu, selector: {matchLabels: {env: prod, region: eu}}, maxParallel: 1, bake: %s}\n"
            "      - {name: us, selector: {matchLabels: {region: us}}, maxParallel: 2, maxFailures: 0, "
            "bake: %s}\n" % (canary_bake, eu_bake, us_bake))


EXTRA_INTENT = ("apiVersion: egressd.io/v1\nkind: EgressIntent\n"
                "metadata: {name: extra, namespace: smm-demo}\n"
                "spec: {gateway: egress-demo, hosts: [www.example.org], ports: [{number: 80, protocol: HTTP}]}\n")


def t(rec):
    return datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%SZ").timestamp()


class RolloutTest(unittest.TestCase):
    def setUp(self):
        self.d = daemonlib.Daemon(clusters=CLUSTERS, fleet=fleet(), drift="30s")
        self.addCleanup(self.d.close)

    def kubectl(self, cluster, *args):
        return subprocess.run([KUBECTL, "--kubeconfig", self.d.sim.kubeconfig(cluster), "--cache-dir",
                               self.d.path("kubectl-cache"), *args], capture_output=True, text=True)

    def phases(self):
        return {c["name"]: c["phase"] for c in self.d.status()["clusters"]}

    def wait_phase(self, cluster, phase, timeout=40):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.phases().get(cluster) == phase:
                return
            time.sleep(0.2)
        self.fail("%s never reached %s: %s\n%s" % (cluster, phase, self.phases(), self.d.logs()))

    def test_waves_in_order_and_bake_times_respected(self):
        d = self.d
        d.start()
        first = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.wait_status(r"^in sync: 5/5 clusters at %s" % first[:7], timeout=90)
        recs = d.ledger()
        intent = {r["cluster"]: r for r in recs if r["type"] == "apply-intent"}
        result = {}
        for r in recs:
            if r["type"] == "apply-result":
                result[r["cluster"]] = r
        self.assertEqual(sorted(intent), CLUSTERS)
        # wave 1 (canary, bake 2s) fully before wave 2; wave 2 one at a time (maxParallel 1)
        self.assertLessEqual(result["c1"]["index"], intent["c2"]["index"])
        self.assertGreaterEqual(t(intent["c2"]) - t(result["c1"]), 1)   # 2s bake, 1s time resolution
        self.assertLess(result["c2"]["index"], intent["c3"]["index"])
        # wave 3 only after wave 2 baked
        last_eu = max(result["c2"]["index"], result["c3"]["index"])
        self.assertLess(last_eu, min(intent["c4"]["index"], intent["c5"]["index"]))
        self.assertGreaterEqual(min(t(intent["c4"]), t(intent["c5"])) - t(result["c3"]), 1)
        st = d.status()
        self.assertEqual(st["rollout"]["state"], "complete")
        self.assertEqual([w["name"] for w in st["rollout"]["waves"]], ["canary", "eu", "us"])
        p = subprocess.run([kubelib.egressd_binary(), "rollout", "status", "--runtime-dir", d.runtime],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("rollout of %s: complete" % first[:7], p.stdout)
        self.assertRegex(p.stdout, r"  wave 2 eu \(maxParallel 1, maxFailures 0, bake 2s\)\n"
                                   r"    c2 +done +%s\n    c3 +done +%s\n" % (first[:7], first[:7]))

    def test_reconcile_failed_in_wave_2_halts_and_a_fix_completes(self):
        d = self.d
        d.start()
        first = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.wait_status(r"^in sync: 5/5 clusters at %s" % first[:7], timeout=90)
        # the operator on c2 will fail the next reconcile of egress-shared
        d.sim.control("POST", "operator", {"namespace": "egress-system", "name": "egress-shared",
                                           "fail": "no LoadBalancer address for egress-shared"}, cluster="c2")
        with open(os.path.join(d.repo, "gateways", "egress-shared.yaml")) as f:
            gw = f.read()
        second = d.commit("3 replicas for the shared gateway", files={
            "gateways/egress-shared.yaml": gw.replace("replicas: {min: 2, max: 4}", "replicas: {min: 3, max: 4}"),
            "intents/extra.yaml": EXTRA_INTENT})
        line = d.wait_status(r"^halted at %s" % second[:7], timeout=90)
        self.assertIn("wave eu: 1 cluster failed (budget 0): c2: IstioMeshGateway egress-system/egress-shared: "
                      "ReconcileFailed: no LoadBalancer address for egress-shared", line)
        ph = self.phases()
        self.assertEqual(ph, {"c1": "done", "c2": "failed", "c3": "pending", "c4": "pending", "c5": "pending"})
        # wave 3 is still on the first commit: kubectl sees no trace of the second
        p = self.kubectl("c4", "get", "virtualservice", "extra-www.example.org", "-n", "smm-demo")
        self.assertEqual(p.returncode, 1)
        self.assertIn('virtualservices.networking.istio.io "extra-www.example.org" not found', p.stderr)
        p = self.kubectl("c4", "get", "istiomeshgateway", "egress-shared", "-n", "egress-system", "-o",
                         "jsonpath={.spec.deployment.replicas.min}")
        self.assertEqual(p.stdout, "2")
        p = self.kubectl("c1", "get", "virtualservice", "extra-www.example.org", "-n", "smm-demo")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(d.logs(), r"rollout of %s halted: wave eu" % second[:12])
        # fix forward: the cause is gone and a new commit goes out from wave 1
        d.sim.control("POST", "operator", {"namespace": "egress-system", "name": "egress-shared", "fail": None},
                      cluster="c2")
        third = d.commit("back to 2 replicas", files={"gateways/egress-shared.yaml": gw})
        d.wait_status(r"^in sync: 5/5 clusters at %s" % third[:7], timeout=120)
        p = self.kubectl("c5", "get", "virtualservice", "extra-www.example.org", "-n", "smm-demo")
        self.assertEqual(p.returncode, 0, p.stderr)
        intents = [r for r in d.ledger() if r["type"] == "apply-intent" and r["commit"] == third]
        self.assertEqual(intents[0]["cluster"], "c1")

    def test_restart_resumes_without_reapplying_finished_waves(self):
        d = self.d
        d.close()
        self.d = d = daemonlib.Daemon(clusters=CLUSTERS, fleet=fleet(canary_bake="1s", eu_bake="8s"), drift="60s")
        self.addCleanup(d.close)
        d.start()
        first = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.wait_status(r"^in sync: 5/5 clusters at %s" % first[:7], timeout=120)
        second = d.commit("one more intent", files={"intents/extra.yaml": EXTRA_INTENT})
        self.wait_phase("c2", "baking")
        self.assertEqual(d.stop(signal.SIGKILL), -signal.SIGKILL)
        before = len(d.ledger())
        d.start()
        d.wait_status(r"^in sync: 5/5 clusters at %s" % second[:7], timeout=120)
        after = [r for r in d.ledger()[before:] if r["type"] == "apply-intent"]
        # c1 and c2 applied the second commit before the kill: not again
        self.assertEqual(sorted(r["cluster"] for r in after), ["c3", "c4", "c5"], after)
        p = subprocess.run([kubelib.egressd_binary(), "ledger", "verify", "--dir",
                            os.path.join(d.state, "ledger")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_unreachable_cluster_then_pause_and_resume(self):
        d = self.d
        d.start()
        first = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.wait_status(r"^in sync: 5/5 clusters at %s" % first[:7], timeout=90)
        d.sim.unreachable("c5", via="c1")
        second = d.commit("one more intent", files={"intents/extra.yaml": EXTRA_INTENT})
        # retried with backoff, then (unreachableTimeout 6s) a failure of wave us: halt
        line = d.wait_status(r"^halted at %s" % second[:7], timeout=90)
        self.assertRegex(line, r"wave us: 1 cluster failed \(budget 0\): c5: unreachable for 6s: ")
        self.assertEqual(self.phases()["c4"], "done")   # c5 never held c4 up
        self.assertGreaterEqual(d.logs().count("cluster c5: sync of %s failed" % second[:12]), 2, d.logs())
        # back online: resume retries it
        d.sim.clear_faults("c5", via="c1")
        p = subprocess.run([kubelib.egressd_binary(), "rollout", "resume", "--runtime-dir", d.runtime],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "ok: rollout of %s resumed (its failed clusters are retried)\n" % second[:12])
        d.wait_status(r"^in sync: 5/5 clusters at %s" % second[:7], timeout=60)
        # pause and resume a rollout of a third commit
        third = d.commit("an empty change")
        d.wait_status(r"^rolling out %s" % third[:7], timeout=30)
        p = subprocess.run([kubelib.egressd_binary(), "rollout", "pause", "--runtime-dir", d.runtime],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        d.wait_status(r"^paused rolling out %s" % third[:7], timeout=10)
        p = subprocess.run([kubelib.egressd_binary(), "rollout", "pause", "--runtime-dir", d.runtime],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("the rollout is paused, not running", p.stderr)
        subprocess.run([kubelib.egressd_binary(), "rollout", "resume", "--runtime-dir", d.runtime], check=True,
                       capture_output=True)
        d.wait_status(r"^in sync: 5/5 clusters at %s" % third[:7], timeout=60)
        acts = [(r["action"], r["state"], r["target"]) for r in d.ledger() if r["type"] == "rollout"]
        self.assertEqual(acts, [("resume", "halted", second), ("pause", "running", third),
                                ("resume", "paused", third)])
        self.assertTrue(all(r["actor"].startswith("uid ") for r in d.ledger() if r["type"] == "rollout"))


if __name__ == "__main__":
    unittest.main()
