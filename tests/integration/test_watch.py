#!/usr/bin/python3
"""The daemon corrects drift from watch events (issue 14 §1).

driftInterval is one hour here, so a correction within the test's bound can
only come from an event (with `watch: false` nothing is watched:
WithoutWatches). Each cluster's
watches are label-selected, resumed from the last resourceVersion, and
re-listed after 410 Gone; egressd's own writes and the operator's status
updates are not drift and start no pass."""
import unittest

import daemonlib
import kubelib
from netlib import wait_for

VS = "/apis/networking.istio.io/v1/namespaces/payments/virtualservices/stripe-api.stripe.com"


class WatchCase(unittest.TestCase):
    sync_extra = ""

    def setUp(self):
        self.d = daemonlib.Daemon(drift="1h", sync_extra=self.sync_extra)
        self.addCleanup(self.d.close)

    def cluster_status(self, name):
        for c in self.d.status()["clusters"]:
            if c["name"] == name:
                return c
        raise AssertionError("no cluster %s in status" % name)

    def start_and_watch(self):
        d = self.d
        d.start()
        d.wait_status(r"^in sync: 3/3")
        wait_for("every cluster watching",
                 lambda: all(c["watch"]["state"] == "watching" for c in d.status()["clusters"]), 30)

    def hosts(self, cluster="canary"):
        st, vs = self.d.sim.request("GET", VS, cluster=cluster)
        return vs["spec"]["hosts"] if st == 200 else None

    def tamper(self, cluster="canary"):
        st, _ = self.d.sim.request("PATCH", VS + "?fieldManager=kubectl-edit",
                                   {"spec": {"hosts": ["api.evil.example"]}}, cluster=cluster,
                                   ctype="application/merge-patch+json")
        self.assertEqual(st, 200)

    def syncs(self):
        return {c["name"]: c["syncs"] for c in self.d.status()["clusters"]}


class Watch(WatchCase):
    def test_drift_is_corrected_from_the_event(self):
        d = self.d
        self.start_and_watch()
        before = self.syncs()
        self.tamper()
        wait_for("the VirtualService corrected", lambda: self.hosts() == ["api.stripe.com"], 20)
        d.wait_status(r"1 drift corrected")
        self.assertRegex(d.logs(), r"cluster canary: VirtualService payments/stripe-api.stripe.com: "
                                   r"drift corrected: spec.hosts\[0\] changed out of band")
        drift = [r for r in d.ledger() if r["type"] == "drift"]
        self.assertEqual([(r["cluster"], r["objects"][0]["fields"]) for r in drift],
                         [("canary", ["spec.hosts[0]"])])
        # one pass on canary, and none elsewhere: neither egressd's own
        # writes nor the operator's status updates of the gateways are drift
        wait_for("the pass on canary to end", lambda: self.syncs()["canary"] == before["canary"] + 1, 20)
        after = self.syncs()
        self.assertEqual({k: v for k, v in after.items() if k != "canary"},
                         {k: v for k, v in before.items() if k != "canary"})
        with open(d.metrics) as f:
            prom = f.read()
        self.assertIn('egressd_watch_up{cluster="canary"} 1', prom)

    def test_deleted_object_is_recreated_from_the_event(self):
        d = self.d
        self.start_and_watch()
        st, _ = d.sim.request("DELETE", VS, cluster="prod-eu")
        self.assertEqual(st, 200)
        wait_for("the VirtualService re-created", lambda: self.hosts("prod-eu") == ["api.stripe.com"], 20)
        wait_for("the log line", lambda: "re-created after it was deleted out of band" in d.logs(), 10)
        out = d.run([kubelib.egressd_binary(), "status", "--runtime-dir", d.runtime]).stdout
        rows = {l.split()[0]: l for l in out.splitlines() if l.startswith("prod-eu ")}
        self.assertIn(" watching ", rows["prod-eu"])

    def test_a_storm_of_status_updates_starts_no_pass(self):
        """100 status updates of a VirtualService (a controller writing its
        status) are not drift; a spec change after them is, and it is the
        one pass: canary's syncs grow by exactly one."""
        d = self.d
        self.start_and_watch()
        before = self.syncs()["canary"]
        for i in range(100):
            st, _ = d.sim.request("PATCH", VS + "/status?fieldManager=some-controller",
                                  {"status": {"observedGeneration": i}}, cluster="canary",
                                  ctype="application/merge-patch+json")
            self.assertEqual(st, 200)
        self.tamper()
        wait_for("the VirtualService corrected", lambda: self.hosts() == ["api.stripe.com"], 20)
        # syncs and driftCorrected are published together when a pass ends
        # (status.json is not rewritten when a drift check starts)
        def corrected():
            c = self.cluster_status("canary")
            return c if c["driftCorrected"] >= 1 else None
        self.assertEqual(wait_for("the correcting pass to end", corrected, 20)["syncs"], before + 1)
        self.assertGreaterEqual(self.cluster_status("canary")["watch"]["events"], 101)

    def test_watch_resumes_after_410_gone(self):
        """Something egressd does not watch changes, the history is compacted
        and the streams cut: each watch comes back from a resourceVersion
        the server no longer has, is told 410 Gone, re-lists, and streams
        again; a later deletion is corrected from its event."""
        d = self.d
        self.start_and_watch()
        seq = d.sim.last_seq("prod-us")
        st, _ = d.sim.request("POST", "/apis/networking.istio.io/v1/namespaces/news/virtualservices",
                              kubelib.virtual_service("not-egressds", "news"), cluster="prod-us")
        self.assertEqual(st, 201)
        d.sim.compact("prod-us")
        d.sim.unreachable("prod-us", mode="drop", duration_ms=500)
        # on a real server, compact() restarted the kube-apiserver already
        # and the watches may have re-listed before the drop: the deletion
        # below must wait until the server is back
        d.sim.wait_reachable("prod-us")

        def relisted():
            reqs = d.sim.requests("prod-us", since=seq)
            lists = [r for r in reqs if r["method"] == "GET" and "virtualservices" in r["path"]
                     and "watch=true" not in (r.get("query") or "")]
            return lists and any(r.get("watch") and "virtualservices" in r["path"] and r["seq"] > lists[-1]["seq"]
                                 for r in reqs)
        wait_for("a re-list and a new watch of VirtualServices on prod-us", relisted, 30)
        wait_for("watching again", lambda: self.cluster_status("prod-us")["watch"]["state"] == "watching", 30)
        st, _ = d.sim.request("DELETE", VS, cluster="prod-us")
        self.assertEqual(st, 200)
        wait_for("the VirtualService re-created", lambda: self.hosts("prod-us") == ["api.stripe.com"], 20)


class WithoutWatches(WatchCase):
    sync_extra = "  watch: false\n"

    def test_without_watches_nothing_is_watched(self):
        """The control: with `watch: false` no WATCH is sent and the check is an
        hour away, so the corrections of the Watch tests come from events."""
        d = self.d
        d.start()
        d.wait_status(r"^in sync: 3/3")
        self.assertEqual(self.cluster_status("canary")["watch"]["state"], "off")
        for c in d.clusters:
            self.assertEqual([r["path"] for r in d.sim.requests(c) if r.get("watch")], [])


if __name__ == "__main__":
    unittest.main()
