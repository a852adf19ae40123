"""egressd sync --once and egressd diff against three emulated clusters:
create, no-op (request budget), drift in managed and unmanaged fields,
prune of exactly what was removed, look-alikes never touched, the prune
safety rules, a cluster without Service Mesh Manager, and an Istio 1.17-era
cluster that serves only v1alpha3. What kubectl sees is checked with the real
kubectl."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import kubelib

SRC = kubelib.SOURCE_DIR
EXAMPLE = os.path.join(SRC, "repo-layout", "example")
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
NAMESPACES = ["smm-demo", "egress-system", "payments", "news", "ci", "analytics"]
CLUSTERS = ["canary", "prod-eu", "prod-us"]
SELECTOR = "app.kubernetes.io/managed-by=egressd,egressd.io/instance=example"
KINDS = ["istiomeshgateways", "gateways", "serviceentries", "destinationrules", "virtualservices",
         "sidecars", "authorizationpolicies", "networkpolicies"]


def writes(reqs):
    return [(r["method"], r["path"]) for r in reqs if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]


class SyncTest(unittest.TestCase):
    """One emulator per test class: the tests below run in order on the same
    clusters, each starting from the state the previous left."""

    @classmethod
    def setUpClass(cls):
        cls.sim = kubelib.KubeSim(CLUSTERS, namespaces=NAMESPACES, no_smm=[],
                                  args=["--operator-delay", "0.2"])
        cls.state = tempfile.mkdtemp(prefix="egressd-state-")
        cls.repo = tempfile.mkdtemp(prefix="egressd-repo-")
        shutil.copytree(EXAMPLE, cls.repo, dirs_exist_ok=True)
        cls.config = cls.sim.write_hostconfig(extra="sync:\n  pruneBudget: 4\n  healthTimeout: 30s\n"
                                                    "state:\n  dir: %s\n" % cls.state)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        shutil.rmtree(cls.state, ignore_errors=True)
        shutil.rmtree(cls.repo, ignore_errors=True)

    def egressd(self, *args, **kw):
        return kubelib.egressd(*args, **kw)

    def sync(self, *extra, check=0):
        r = self.egressd("sync", "--once", "--config", self.config, "--repo", self.repo, *extra)
        if check is not None:
            self.assertEqual(r.returncode, check, r.stdout + r.stderr)
        return r

    def kubectl(self, cluster, *args):
        p = subprocess.run([KUBECTL, "--kubeconfig", self.sim.kubeconfig(cluster), "--cache-dir",
                            os.path.join(self.sim.dir, "kubectl-cache"), *args],
                           capture_output=True, text=True)
        return p

    def managed(self, cluster, kind, ns=None):
        args = ["get", kind, "-l", SELECTOR, "-o", "json"] + (["-n", ns] if ns else ["-A"])
        p = self.kubectl(cluster, *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)["items"]

    def test_1_first_sync_creates_everything_readable_by_kubectl(self):
        r = self.sync()
        expected = {"canary": 27, "prod-eu": 30, "prod-us": 27}
        for c in CLUSTERS:
            self.assertIn("%s: ok: %d created, 0 updated, 0 deleted, 0 unchanged, 0 failed; healthy"
                          % (c, expected[c]), r.stdout)
            total = sum(len(self.managed(c, k)) for k in KINDS)
            self.assertEqual(total, expected[c])
        vs = self.kubectl("prod-eu", "get", "virtualservice", "httpbin-httpbin.org", "-n", "smm-demo",
                          "-o", "json", "--show-managed-fields")
        self.assertEqual(vs.returncode, 0, vs.stderr)
        obj = json.loads(vs.stdout)
        self.assertEqual(obj["spec"]["hosts"], ["httpbin.org"])
        self.assertEqual([m["manager"] for m in obj["metadata"]["managedFields"]], ["egressd"])
        imgw = self.managed("canary", "istiomeshgateways", "smm-demo")[0]
        self.assertEqual(imgw["status"]["Status"], "Available")
        with open(os.path.join(self.state, "inventory", "prod-eu.json")) as f:
            self.assertEqual(len(json.load(f)["objects"]), 30)

    def test_2_second_sync_makes_no_writes_one_list_per_kind(self):
        marks = {c: self.sim.last_seq(c) for c in CLUSTERS}
        r = self.sync()
        for c in CLUSTERS:
            self.assertRegex(r.stdout, r"%s: ok: 0 created, 0 updated, 0 deleted, \d+ unchanged, 0 failed; "
                                       r"healthy" % c)
            reqs = self.sim.requests(c, since=marks[c])
            self.assertEqual(writes(reqs), [])
            lists = [q["path"] for q in reqs if q["verb"] == "list"]
            self.assertEqual(sorted(p.rsplit("/", 1)[1] for p in lists), sorted(KINDS))
            self.assertTrue(all(SELECTOR.replace("/", "%2F").replace("=", "%3D").replace(",", "%2C")
                                in q["query"] for q in reqs if q["verb"] == "list"))
            # discovery (once per process) and the LISTs, nothing else
            self.assertEqual(len(reqs), 2 + len(KINDS), [(q["method"], q["path"]) for q in reqs])

    def test_3_drift_in_a_managed_field_is_shown_and_reverted(self):
        p = self.kubectl("prod-eu", "-n", "payments", "patch", "virtualservice", "stripe-api.stripe.com",
                         "--type=merge", "-p", '{"spec":{"hosts":["api.evil.example"]},'
                                               '"metadata":{"labels":{"team":"payments"}}}')
        self.assertEqual(p.returncode, 0, p.stderr)
        # a field egressd does not set, owned by another manager
        p = self.kubectl("prod-eu", "-n", "news", "annotate", "serviceentry", "cnn", "note=keep-me")
        self.assertEqual(p.returncode, 0, p.stderr)
        d = self.egressd("diff", "--config", self.config, "--repo", self.repo, "--cluster", "prod-eu")
        self.assertEqual(d.returncode, 1, d.stderr)
        self.assertIn("--- a/prod-eu/VirtualService/payments/stripe-api.stripe.com", d.stdout)
        self.assertIn("-  - api.evil.example\n+  - api.stripe.com\n", d.stdout)
        self.assertNotIn("team", d.stdout)
        self.assertNotIn("keep-me", d.stdout)
        self.assertIn("cluster prod-eu (%s, Istio v1): 0 to create, 1 to update, 0 to delete, 29 unchanged"
                      % self.repo, d.stderr)
        mark = self.sim.last_seq("prod-eu")
        r = self.sync("--cluster", "prod-eu")
        self.assertIn("prod-eu: ok: 0 created, 1 updated, 0 deleted, 29 unchanged", r.stdout)
        self.assertEqual(writes(self.sim.requests("prod-eu", since=mark)),
                         [("PATCH", "/apis/networking.istio.io/v1/namespaces/payments/virtualservices/"
                                    "stripe-api.stripe.com")])
        vs = json.loads(self.kubectl("prod-eu", "-n", "payments", "get", "virtualservice",
                                     "stripe-api.stripe.com", "-o", "json").stdout)
        self.assertEqual(vs["spec"]["hosts"], ["api.stripe.com"])
        self.assertEqual(vs["metadata"]["labels"]["team"], "payments")
        se = json.loads(self.kubectl("prod-eu", "-n", "news", "get", "serviceentry", "cnn", "-o",
                                     "json").stdout)
        self.assertEqual(se["metadata"]["annotations"]["note"], "keep-me")
        d = self.egressd("diff", "--config", self.config, "--repo", self.repo)
        self.assertEqual(d.returncode, 0, d.stdout + d.stderr)
        self.assertEqual(d.stdout, "")

    def test_4_removing_an_intent_prunes_exactly_its_objects(self):
        # a look-alike without egressd's labels, and one with them that egressd never made
        lookalike = kubelib.virtual_service("github-github.com-copy", "ci", ["github.com"])
        st, _ = self.sim.apply(lookalike, cluster="canary", manager="someone-else")
        self.assertLess(st, 300)
        stray = kubelib.virtual_service("stray", "ci", ["stray.example.com"],
                                        labels={"app.kubernetes.io/managed-by": "egressd",
                                                "egressd.io/instance": "example"})
        st, _ = self.sim.apply(stray, cluster="canary", manager="someone-else")
        self.assertLess(st, 300)
        os.remove(os.path.join(self.repo, "intents", "ci.yaml"))
        marks = {c: self.sim.last_seq(c) for c in CLUSTERS}
        r = self.sync()
        for c in CLUSTERS:
            # github: ServiceEntry, DestinationRule, 2 VirtualServices; the shared
            # gateway's servers and AuthorizationPolicy change
            self.assertRegex(r.stdout, r"%s: ok: 0 created, 2 updated, 4 deleted" % c)
            deletes = sorted(p for m, p in writes(self.sim.requests(c, since=marks[c])) if m == "DELETE")
            self.assertEqual(deletes, [
                "/apis/networking.istio.io/v1/namespaces/ci/destinationrules/github-gateway",
                "/apis/networking.istio.io/v1/namespaces/ci/serviceentries/github",
                "/apis/networking.istio.io/v1/namespaces/ci/virtualservices/github-api.github.com",
                "/apis/networking.istio.io/v1/namespaces/ci/virtualservices/github-github.com"])
            for q in self.sim.requests(c, since=marks[c]):
                if q["method"] == "DELETE":
                    self.assertIn('"uid"', q["body"] or "")
        self.assertIn("canary: ok", r.stdout)
        self.assertIn("1 object(s) carry egressd's labels but are not in its inventory; left alone",
                      r.stdout)
        names = [o["metadata"]["name"] for o in json.loads(
            self.kubectl("canary", "-n", "ci", "get", "virtualservices", "-o", "json").stdout)["items"]]
        self.assertEqual(sorted(names), ["github-github.com-copy", "stray"])

    def test_5_an_object_of_the_same_name_is_not_taken_over(self):
        # someone else's VirtualService with the name egressd is about to create
        mine = kubelib.virtual_service("github-github.com", "ci", ["github.com"])
        st, _ = self.sim.apply(mine, cluster="prod-us", manager="platform-team")
        self.assertLess(st, 300)
        with open(os.path.join(EXAMPLE, "intents", "ci.yaml")) as src, \
                open(os.path.join(self.repo, "intents", "ci.yaml"), "w") as dst:
            dst.write(src.read())
        r = self.sync("--cluster", "prod-us", check=1)
        self.assertIn("prod-us: partial: 3 created, 2 updated, 0 deleted, 21 unchanged, 1 failed", r.stdout)
        self.assertIn("  VirtualService ci/github-github.com: exists and was not created by egressd; it is "
                      "left alone (set spec.adopt: true on the intent to take it over)\n", r.stdout)
        vs = json.loads(self.kubectl("prod-us", "-n", "ci", "get", "virtualservice", "github-github.com",
                                     "-o", "json", "--show-managed-fields").stdout)
        self.assertEqual([m["manager"] for m in vs["metadata"]["managedFields"]], ["platform-team"])
        self.assertNotIn("labels", vs["metadata"])
        self.assertEqual(vs["spec"]["gateways"], ["mesh"])

    def test_6_prune_safety_empty_render_and_budget(self):
        # an empty render: every intent and gateway removed
        shutil.rmtree(os.path.join(self.repo, "intents"))
        shutil.rmtree(os.path.join(self.repo, "gateways"))
        marks = {c: self.sim.last_seq(c) for c in CLUSTERS}
        r = self.sync(check=1)
        for c in CLUSTERS:
            self.assertEqual([w for w in writes(self.sim.requests(c, since=marks[c])) if w[0] == "DELETE"], [])
        self.assertIn("refusing to delete all", r.stdout)
        self.assertIn("the render keeps none of them (it is empty); if that is really meant, allow it "
                      "with the commit trailer 'Egressd-Allow-Prune:", r.stdout)
        # back to the example minus the payments intents: 9 deletions > budget 4 (stripe: 3,
        # adyen: 4, the payments Sidecar, the gateway's AuthorizationPolicy)
        shutil.copytree(os.path.join(EXAMPLE, "gateways"), os.path.join(self.repo, "gateways"))
        shutil.copytree(os.path.join(EXAMPLE, "intents"), os.path.join(self.repo, "intents"))
        os.remove(os.path.join(self.repo, "intents", "payments.yaml"))
        r = self.sync("--cluster", "canary", check=1)
        self.assertRegex(r.stdout, r"refusing to delete (\d+) objects: more than the prune budget of 4; to "
                                   r"allow it, add the trailer 'Egressd-Allow-Prune: \1'")
        self.assertEqual(len(self.managed("canary", "virtualservices", "payments")), 3)
        self.assertIn("refusing to delete 9 objects", r.stdout)
        r = self.sync("--cluster", "canary", "--allow-prune", "9")
        self.assertRegex(r.stdout, r"canary: ok: \d+ created, \d+ updated, 9 deleted")
        self.assertEqual(self.managed("canary", "virtualservices", "payments"), [])
        self.assertEqual(self.managed("canary", "sidecars", "payments"), [])


class ClusterDifferencesTest(unittest.TestCase):
    def test_many_creates_of_a_kind_are_checked_with_one_list(self):
        # 20 new VirtualServices: their look-alike check is one LIST of the
        # kind, not a GET each, and still finds someone else's object
        with kubelib.KubeSim(["canary"], namespaces=NAMESPACES, args=["--operator-delay", "0.1"]) as sim:
            state = tempfile.mkdtemp()
            repo = tempfile.mkdtemp()
            try:
                shutil.copytree(EXAMPLE, repo, dirs_exist_ok=True)
                with open(os.path.join(repo, "intents", "bulk.yaml"), "w") as f:
                    for i in range(20):
                        f.write("---\napiVersion: egressd.io/v1\nkind: EgressIntent\n"
                                "metadata: {name: bulk-%d, namespace: smm-demo}\n"
                                "spec: {gateway: egress-demo, hosts: [h%d.example.com], "
                                "ports: [{number: 80, protocol: HTTP}]}\n" % (i, i))
                theirs = kubelib.virtual_service("bulk-7-h7.example.com", "smm-demo", ["h7.example.com"])
                st, _ = sim.apply(theirs, cluster="canary", manager="platform-team")
                self.assertLess(st, 300)
                mark = sim.last_seq("canary")
                config = sim.write_hostconfig(extra="state:\n  dir: %s\n" % state)
                r = kubelib.egressd("sync", "--once", "--no-health", "--config", config, "--repo", repo)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"canary: partial: \d+ created, 0 updated, 0 deleted, 0 unchanged, "
                                           r"1 failed")
                self.assertIn("  VirtualService smm-demo/bulk-7-h7.example.com: exists and was not created by "
                              "egressd; it is left alone", r.stdout)
                reqs = sim.requests("canary", since=mark)
                vs = [q for q in reqs if q["path"].endswith("/virtualservices") and q["verb"] == "list"]
                # the selected read and the unselected check
                self.assertEqual(len(vs), 2, [(q["path"], q["query"]) for q in vs])
                self.assertEqual(len([q for q in vs if "labelSelector" not in q["query"]]), 1)
                self.assertFalse([q for q in reqs if q["verb"] == "get" and "/virtualservices/" in q["path"]])
                # kinds with few creates are still checked with a GET each
                self.assertTrue([q for q in reqs if q["verb"] == "get" and "/istiomeshgateways/" in q["path"]])
                st, obj = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/smm-demo/virtualservices/"
                                             "bulk-7-h7.example.com", cluster="canary")
                self.assertEqual([m["manager"] for m in obj["metadata"]["managedFields"]], ["platform-team"])
            finally:
                shutil.rmtree(state, ignore_errors=True)
                shutil.rmtree(repo, ignore_errors=True)

    def test_a_foreign_namespace_wide_sidecar_blocks_egressds(self):
        # payments already has a Sidecar without workloadSelector that
        # egressd did not create: Istio allows one per namespace, so egressd
        # does not add its own, says why, and applies everything else
        with kubelib.KubeSim(["canary"], namespaces=NAMESPACES, args=["--operator-delay", "0.1"]) as sim:
            state = tempfile.mkdtemp()
            try:
                theirs = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                          "metadata": {"name": "default", "namespace": "payments"},
                          "spec": {"egress": [{"hosts": ["./*", "istio-system/*"]}]}}
                st, _ = sim.apply(theirs, cluster="canary", manager="platform-team")
                self.assertLess(st, 300)
                config = sim.write_hostconfig(extra="state:\n  dir: %s\n" % state)
                r = kubelib.egressd("sync", "--once", "--no-health", "--config", config, "--repo", EXAMPLE)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"canary: partial: 26 created, 0 updated, 0 deleted, 0 unchanged, "
                                           r"1 failed")
                self.assertIn("  Sidecar payments/egressd-registry-only: namespace payments already has Sidecar "
                              "default without a workloadSelector, which egressd did not create; Istio allows "
                              "one such Sidecar per namespace (with two, which one applies is undefined): give "
                              "default a workloadSelector, or move its settings into templates/sidecar.yaml of "
                              "the config repo and delete it", r.stdout)
                st, _ = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/payments/sidecars/"
                                           "egressd-registry-only", cluster="canary")
                self.assertEqual(st, 404)
                # with a workloadSelector it is no longer namespace-wide: egressd's goes in
                theirs["spec"]["workloadSelector"] = {"labels": {"app": "batch"}}
                st, _ = sim.apply(theirs, cluster="canary", manager="platform-team")
                self.assertLess(st, 300)
                r = kubelib.egressd("sync", "--once", "--no-health", "--config", config, "--repo", EXAMPLE)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"canary: ok: 1 created, 0 updated, 0 deleted, 26 unchanged")
            finally:
                shutil.rmtree(state, ignore_errors=True)

    def test_routes_to_a_new_gateway_wait_for_it_and_are_held_when_it_fails(self):
        # the first sync creates egress-shared, which the operator fails: the
        # VirtualServices that send mesh traffic to it are held back, the
        # others (egress-demo's) go in once egress-demo is Available
        with kubelib.KubeSim(["canary"], namespaces=NAMESPACES, args=["--operator-delay", "0.5"]) as sim:
            state = tempfile.mkdtemp()
            try:
                sim.control("POST", "operator", {"namespace": "egress-system", "name": "egress-shared",
                                                 "fail": "pull of image cp-v115x/proxyv2 failed"},
                            cluster="canary")
                config = sim.write_hostconfig(extra="sync:\n  healthTimeout: 30s\nstate:\n  dir: %s\n" % state)
                mark = sim.last_seq("canary")
                r = kubelib.egressd("sync", "--once", "--config", config, "--repo", EXAMPLE)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                held = [line for line in r.stdout.splitlines() if "held back" in line]
                # canary: analytics (s3: region eu), ci (2 hosts), news, payments (3 hosts)
                # route through egress-shared
                self.assertEqual(len(held), 7, r.stdout)
                self.assertIn("  VirtualService payments/stripe-api.stripe.com: held back: it routes the mesh to "
                              "gateway egress-system/egress-shared, which is not healthy (IstioMeshGateway "
                              "egress-system/egress-shared: ReconcileFailed: pull of image cp-v115x/proxyv2 "
                              "failed); the next pass tries again", r.stdout)
                self.assertRegex(r.stdout, r"canary: partial: 20 created, 0 updated, 0 deleted, 0 unchanged, "
                                           r"7 failed; failed")
                self.assertIn("  health: IstioMeshGateway egress-system/egress-shared: ReconcileFailed: pull of "
                              "image cp-v115x/proxyv2 failed", r.stdout)
                reqs = sim.requests("canary", since=mark)
                patches = [q["path"] for q in reqs if q["method"] == "PATCH"]
                vs = [p for p in patches if "/virtualservices/" in p]
                self.assertEqual([p.rsplit("/", 1)[1] for p in vs], ["httpbin-httpbin.org"])
                # egress-demo's route went in only after a health read that found it
                first_vs = next(i for i, q in enumerate(reqs) if q["method"] == "PATCH" and "/virtualservices/" in q["path"])
                last_imgw = max(i for i, q in enumerate(reqs) if q["method"] == "PATCH" and "/istiomeshgateways/" in q["path"])
                self.assertTrue(any(q["verb"] == "list" and q["path"].endswith("/istiomeshgateways")
                                    for q in reqs[last_imgw:first_vs]), [(q["verb"], q["path"]) for q in reqs])
                # the operator recovers: the next pass writes the held routes
                sim.control("POST", "operator", {"namespace": "egress-system", "name": "egress-shared",
                                                 "fail": None}, cluster="canary")
                r = kubelib.egressd("sync", "--once", "--config", config, "--repo", EXAMPLE)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"canary: ok: 7 created, 0 updated, 0 deleted, 20 unchanged, 0 failed; "
                                           r"healthy")
            finally:
                shutil.rmtree(state, ignore_errors=True)

    def test_an_available_status_from_before_a_change_is_not_health(self):
        # IstioMeshGateway has no observedGeneration: after egressd changes a
        # gateway's spec, an Available written before the change must not
        # count (here the operator ignores the gateway, as the real one
        # ignores a gateway of another control-plane release)
        with kubelib.KubeSim(["canary"], namespaces=NAMESPACES, args=["--operator-delay", "0.1"]) as sim:
            state = tempfile.mkdtemp()
            repo = tempfile.mkdtemp()
            try:
                shutil.copytree(EXAMPLE, repo, dirs_exist_ok=True)
                config = sim.write_hostconfig(extra="sync:\n  healthTimeout: 3s\nstate:\n  dir: %s\n" % state)
                r = kubelib.egressd("sync", "--once", "--config", config, "--repo", repo)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                sim.control("POST", "operator", {"namespace": "egress-system", "name": "egress-shared",
                                                 "ignore": True}, cluster="canary")
                gw = os.path.join(repo, "gateways", "egress-shared.yaml")
                with open(gw) as f:
                    text = f.read()
                with open(gw, "w") as f:
                    f.write(text.replace("replicas: {min: 2, max: 4}", "replicas: {min: 3, max: 4}"))
                r = kubelib.egressd("sync", "--once", "--config", config, "--repo", repo)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"canary: ok: 0 created, 1 updated, 0 deleted, 26 unchanged, 0 failed; "
                                           r"timed out")
                self.assertIn("  health: not healthy after 3s: IstioMeshGateway egress-system/egress-shared is not "
                              "reconciled since egressd's change", r.stdout)
                st, imgw = sim.request("GET", "/apis/servicemesh.cisco.com/v1alpha1/namespaces/egress-system/"
                                              "istiomeshgateways/egress-shared", cluster="canary")
                self.assertEqual(imgw["status"]["Status"], "Available")   # stale, from before the change
                sim.control("POST", "operator", {"namespace": "egress-system", "name": "egress-shared",
                                                 "ignore": False}, cluster="canary")
                r = kubelib.egressd("sync", "--once", "--config", config, "--repo", repo)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"canary: ok: 0 created, 0 updated, 0 deleted, 27 unchanged, 0 failed; "
                                           r"healthy")
            finally:
                shutil.rmtree(state, ignore_errors=True)
                shutil.rmtree(repo, ignore_errors=True)

    def test_tcp_wildcard_netpol_golden_repos_are_accepted_by_the_server(self):
        # what the golden cases render (TCP: ServiceEntries of addresses with
        # STATIC endpoints, tcp routes; a wildcard: NONE, its upstream's
        # ServiceEntry) passes the server's checks (the real one's CEL rules too)
        cases = {"0002-tcp": (["egress-system", "orders", "billing"], 16),
                 "0003-wildcard": (["egress-system", "research", "shop"], 11),
                 "0004-networkpolicy": (["egress-system", "payments", "web"], 14)}
        for case, (namespaces, objects) in sorted(cases.items()):
            repo = os.path.join(SRC, "tests", "data", "render", case, "repo")
            with self.subTest(case=case), kubelib.KubeSim(["c1"], namespaces=namespaces,
                                                          args=["--operator-delay", "0.1"]) as sim:
                state = tempfile.mkdtemp()
                try:
                    config = sim.write_hostconfig(extra="state:\n  dir: %s\n" % state)
                    r = kubelib.egressd("sync", "--once", "--config", config, "--repo", repo)
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                    self.assertRegex(r.stdout, r"c1: ok: %d created, 0 updated, 0 deleted, 0 unchanged, 0 "
                                               r"failed; healthy" % objects)
                    if case == "0002-tcp":
                        st, se = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/billing/"
                                                    "serviceentries/ledger-db-10.20.30.40", cluster="c1")
                        self.assertEqual(st, 200, se)
                        self.assertEqual((se["spec"]["resolution"], se["spec"]["addresses"],
                                          se["spec"]["endpoints"]),
                                         ("STATIC", ["10.20.30.40"], [{"address": "10.20.30.40"}]))
                    # a second pass finds nothing to change
                    r = kubelib.egressd("sync", "--once", "--config", config, "--repo", repo)
                    self.assertRegex(r.stdout, r"c1: ok: 0 created, 0 updated, 0 deleted, %d unchanged" % objects)
                finally:
                    shutil.rmtree(state, ignore_errors=True)

    def test_missing_smm_fails_that_cluster_only_and_v1alpha3_is_rendered(self):
        with kubelib.KubeSim(["a", "b", "old"], namespaces=NAMESPACES, no_smm=["b"],
                             istio={"old": "v1alpha3"}, args=["--operator-delay", "0.1"]) as sim:
            state = tempfile.mkdtemp()
            try:
                config = sim.write_hostconfig(extra="state:\n  dir: %s\n" % state)
                # the example's Fleet names canary/prod-eu/prod-us: map them
                with open(config) as f:
                    text = f.read()
                text = text.replace("name: a\n", "name: canary\n").replace("name: b\n", "name: prod-eu\n") \
                           .replace("name: old\n", "name: prod-us\n")
                with open(config, "w") as f:
                    f.write(text)
                r = kubelib.egressd("sync", "--once", "--config", config, "--repo", EXAMPLE)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertRegex(r.stdout, r"canary: ok: 27 created, 0 updated, 0 deleted, 0 unchanged, 0 "
                                           r"failed; healthy \(%s, Istio v1," % EXAMPLE)
                self.assertRegex(r.stdout, r"prod-us: ok: 27 created, .*Istio v1alpha3,")
                self.assertRegex(r.stdout, r"prod-eu: partial: 28 created, 0 updated, 0 deleted, 0 unchanged, "
                                           r"2 failed")
                self.assertIn("  IstioMeshGateway egress-system/egress-shared: cluster prod-eu does not serve "
                              "servicemesh.cisco.com/v1alpha1 IstioMeshGateway; is Service Mesh Manager "
                              "installed?", r.stdout)
                vs = sim.requests("old")
                self.assertTrue(any("/apis/networking.istio.io/v1alpha3/namespaces/smm-demo/virtualservices/"
                                    in q["path"] and q["method"] == "PATCH" for q in vs))
                self.assertFalse(any("/networking.istio.io/v1/" in q["path"] for q in vs))
            finally:
                shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
