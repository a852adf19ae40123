#!/usr/bin/python3
"""`egressd clusters check` against the kubesim emulator: every credential
type, a cluster without Service Mesh Manager, a cluster serving only
v1alpha3 Istio, rejected credentials, TLS failures (wrong CA,
tls-server-name), kubeconfig errors, HTTP/2 negotiation, and unreachable
clusters failing fast without delaying the others. Request counts come from
kubesim's request log."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import kubelib
from kubelib import egressd

SMM_MISSING = ("cluster old does not serve servicemesh.cisco.com/v1alpha1 IstioMeshGateway; "
               "is Service Mesh Manager installed?")


def lines(out):
    return [l for l in out.splitlines() if l.strip()]


class CheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = kubelib.KubeSim(["east", "old", "alpha"],
                                  istio={"old": "v1alpha3", "alpha": "v1alpha3"}, no_smm=["old"])
        for c in cls.sim.clusters:
            cls.sim.server_version(c)   # asked now: the tests count requests
        cls.tmp = tempfile.mkdtemp(prefix="egressd-check-")

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        for c in self.sim.clusters:
            self.sim.clear_requests(c)
            self.sim.clear_faults(c)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_every_credential_type_is_usable_and_checked_once(self):
        sim = self.sim
        hc = sim.write_hostconfig("creds.yaml", {
            "with-token": sim.kubeconfig("east"),
            "with-cert": sim.kubeconfig("east", "cert"),
            "with-exec": sim.kubeconfig("east", "exec"),
        })
        runs_before = sim.exec_runs("east")
        r = egressd("clusters", "check", "--config", hc, check=0)
        out = lines(r.stdout)
        self.assertEqual(len(out), 3, r.stdout)
        server = sim.servers["east"]
        for line, name, auth in zip(out, ["with-token", "with-cert", "with-exec"],
                                    ["bearer token", "client certificate", "exec plugin"]):
            self.assertTrue(line.startswith("%s: usable (%s): reachable, TLS verified, credentials "
                                            "accepted (%s), Kubernetes %s over %s, Istio v1 "
                                            "(served: v1, v1beta1, v1alpha3), Service Mesh Manager CRD "
                                            "present, rtt " % (name, server, auth, sim.server_version("east"),
                                                               sim.protocol)), line)
        # the exec plugin ran once for its client (cached for its requests)
        self.assertEqual(sim.exec_runs("east") - runs_before, 1)
        log = sim.requests("east")
        for auth in ("token", "cert", "exec"):
            mine = [(e["method"], e["path"]) for e in log if e["auth"] == auth]
            self.assertEqual(sorted(mine), [("GET", "/api"), ("GET", "/apis"), ("GET", "/version")],
                             "auth %s: %s" % (auth, mine))
            self.assertTrue(all(e["status"] == 200 for e in log if e["auth"] == auth))
        self.assertTrue(all(e["user_agent"] == "egressd/0.1.0" for e in log))

    def test_missing_smm_and_v1alpha3_only(self):
        sim = self.sim
        hc = sim.write_hostconfig("smm.yaml", {c: sim.kubeconfig(c) for c in ("east", "old", "alpha")})
        r = egressd("clusters", "check", "--config", hc)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        out = {l.split(":", 1)[0]: l for l in lines(r.stdout)}
        self.assertIn("east: usable", out["east"])
        self.assertTrue(out["old"].startswith("old: UNUSABLE (%s): " % sim.servers["old"]), out["old"])
        self.assertIn("Istio v1alpha3 (served: v1alpha3), Service Mesh Manager CRD missing", out["old"])
        self.assertTrue(out["old"].endswith(": " + SMM_MISSING), out["old"])
        self.assertIn("alpha: usable", out["alpha"])
        self.assertIn("Istio v1alpha3 (served: v1alpha3), Service Mesh Manager CRD present", out["alpha"])

        r = egressd("clusters", "check", "--config", hc, "-o", "json", "--cluster", "old",
                    "--cluster", "alpha")
        self.assertEqual(r.returncode, 1)
        got = {c["name"]: c for c in json.loads(r.stdout)["clusters"]}
        self.assertEqual(sorted(got), ["alpha", "old"])
        old = got["old"]
        self.assertEqual((old["usable"], old["reachable"], old["tls"], old["tlsVerified"],
                          old["credentialsAccepted"], old["smm"]), (False, True, True, True, True, False))
        self.assertEqual(old["istioVersion"], "v1alpha3")
        self.assertEqual(old["istioVersions"], ["v1alpha3"])
        self.assertEqual(old["problem"], "Service Mesh Manager missing")
        self.assertEqual(old["error"], SMM_MISSING)
        self.assertEqual(old["kubernetesVersion"], sim.server_version("old"))
        self.assertEqual(old["requests"], 3)
        self.assertTrue(got["alpha"]["usable"])
        # one discovery per cluster: /api and /apis exactly once per run
        for c in ("old", "alpha"):
            paths = [e["path"] for e in sim.requests(c)]
            self.assertEqual(sorted(paths), ["/api", "/api", "/apis", "/apis", "/version", "/version"])

    def test_rejected_token_is_reported_without_the_token(self):
        bad_token = "not-the-token-0123456789abcdef"
        kc = self.write("bad.kubeconfig", kubelib.kubeconfig_text(
            self.sim.servers["east"], ca=self.sim.path("ca.crt"), user={"token": bad_token}))
        r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "prod-eu")
        self.assertEqual(r.returncode, 1)
        line = r.stdout.strip()
        self.assertTrue(line.startswith("prod-eu: UNUSABLE (%s): reachable, TLS verified, "
                                        "credentials rejected (bearer token)" % self.sim.servers["east"]),
                        line)
        self.assertIn("cluster prod-eu: GET /version: HTTP 401 Unauthorized: Unauthorized (the "
                      "credentials of user 'c' in %s were not accepted)" % kc, line)
        self.assertNotIn(bad_token, r.stdout + r.stderr)
        # a 401 on a static token is final: one request, no retry
        self.assertEqual([(e["path"], e["status"]) for e in self.sim.requests("east")],
                         [("/version", 401)])

    def test_basic_auth_is_sent_and_reported_as_ignored(self):
        # kube-apiserver has no basic auth since 1.19: the header is ignored,
        # the request is anonymous, /version answers and discovery is refused
        kc = self.write("basic.kubeconfig", kubelib.kubeconfig_text(
            self.sim.servers["east"], ca=self.sim.path("ca.crt"),
            user={"username": "admin", "password": "pw-secret-123"}))
        r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "b")
        self.assertEqual(r.returncode, 1)
        self.assertIn("credentials ignored (basic auth)", r.stdout)
        self.assertIn("(the server ignored the basic auth of user 'c' in %s and treated the request "
                      "as anonymous; Kubernetes has not accepted basic auth since 1.19: use a token "
                      "or a client certificate)" % kc, r.stdout)
        self.assertNotIn("pw-secret-123", r.stdout + r.stderr)
        self.assertEqual(sorted((e["path"], e["auth"], e["status"]) for e in self.sim.requests("east")),
                         [("/api", "anonymous", 403), ("/apis", "anonymous", 403),
                          ("/version", "anonymous", 200)])

    def test_wrong_ca_and_wrong_tls_server_name_fail_tls(self):
        sim = self.sim
        port = sim.ports["east"]
        wrong_ca = os.path.join(kubelib.SOURCE_DIR, "tests", "data", "kube", "0001-pki", "ca.crt")
        kc = self.write("wrongca.kubeconfig", kubelib.kubeconfig_text(
            sim.servers["east"], ca=wrong_ca, user={"token": sim.token("east")}))
        r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "w")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("w: UNUSABLE (%s): reachable, TLS failed: cluster w: GET "
                                            "/version: " % sim.servers["east"]), r.stdout)
        self.assertIn("(check certificate-authority of cluster 'c' in %s)" % kc, r.stdout)
        self.assertEqual(sim.requests("east"), [])  # nothing reached HTTP

        # tls-server-name: the certificate's DNS name, reached at 127.0.0.1
        cfg = json.loads(kubelib.kubeconfig_text(sim.servers["east"], ca=sim.path("ca.crt"),
                                                 user={"token": sim.token("east")}))
        cfg["clusters"][0]["cluster"]["tls-server-name"] = "kubesim.test"
        kc = self.write("tsn.kubeconfig", json.dumps(cfg))
        r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "tsn", check=0)
        self.assertIn("tsn: usable (https://127.0.0.1:%d): reachable, TLS verified" % port, r.stdout)
        cfg["clusters"][0]["cluster"]["tls-server-name"] = "wrong.example.com"
        kc = self.write("tsn-bad.kubeconfig", json.dumps(cfg))
        r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "tsn")
        self.assertEqual(r.returncode, 1)
        self.assertIn("reachable, TLS failed", r.stdout)
        self.assertIn("check certificate-authority and tls-server-name of cluster 'c'", r.stdout)

    def test_proxy_url_is_used_with_its_credentials(self):
        sim = self.sim
        with kubelib.ConnectProxy() as proxy:
            cfg = json.loads(kubelib.kubeconfig_text(sim.servers["east"], ca=sim.path("ca.crt"),
                                                     user={"token": sim.token("east")}))
            cfg["clusters"][0]["cluster"]["proxy-url"] = "http://user:pw@127.0.0.1:%d" % proxy.port
            kc = self.write("proxy.kubeconfig", json.dumps(cfg))
            r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "p", check=0)
            self.assertIn("p: usable", r.stdout)
            self.assertGreaterEqual(len(proxy.requests), 1)
            first = proxy.requests[0]
            self.assertEqual(first[0], "CONNECT 127.0.0.1:%d HTTP/1.1" % sim.ports["east"])
            # proxy credentials from the URL, as Proxy-Authorization (trace 2.5)
            self.assertIn("Proxy-Authorization: Basic dXNlcjpwdw==", first)

    def test_kubeconfig_problems_are_reported_per_cluster_with_position(self):
        sim = self.sim
        bad = self.write("bad-user.kubeconfig", (
            "current-context: c\n"
            "clusters: [{name: c, cluster: {server: '%s'}}]\n"
            "users: [{name: u, user: {token: abcdefghij, username: admin, password: x}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\n") % sim.servers["east"])
        hc = sim.write_hostconfig("badkc.yaml", {"good": sim.kubeconfig("east"), "broken": bad})
        r = egressd("clusters", "check", "--config", hc)
        self.assertEqual(r.returncode, 1)
        out = {l.split(":", 1)[0]: l for l in lines(r.stdout)}
        self.assertIn("good: usable", out["good"])
        self.assertEqual(out["broken"], "broken: UNUSABLE: %s:3:55: cluster broken: user 'u': more than "
                         "one authentication method found: token and basic auth (username/password); "
                         "only one is allowed" % bad)
        self.assertNotIn("abcdefghij", r.stdout + r.stderr)

    def test_credentials_are_never_sent_over_plain_http(self):
        import http.server
        import threading
        hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            kc = self.write("http.kubeconfig", kubelib.kubeconfig_text(
                "http://127.0.0.1:%d" % srv.server_address[1], user={"token": "plain-secret-token"}))
            r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "plain")
            self.assertEqual(r.returncode, 1)
            self.assertIn("plain: UNUSABLE: cluster plain: refusing to send the credentials of user 'c' "
                          "over plain http://", r.stdout)
            self.assertNotIn("plain-secret-token", r.stdout + r.stderr)
            self.assertEqual(hits, [])  # not even a connection attempt with a request
        finally:
            srv.shutdown()
            srv.server_close()

    def test_usage_errors_exit_2(self):
        hc = self.sim.write_hostconfig("usage.yaml")
        r = egressd("clusters", "check", "--config", hc, "--cluster", "nope")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cluster 'nope' is not in", r.stderr)
        self.assertEqual(egressd("clusters", "check", "--config", hc, "-o", "xml").returncode, 2)
        self.assertEqual(egressd("clusters", "check", "--config", "/nonexistent.yaml").returncode, 2)
        self.assertEqual(egressd("clusters", "frobnicate").returncode, 2)
        r = egressd("clusters", "check", "--help", check=0)
        self.assertIn("usage: egressd clusters check", r.stdout)


class UnreachableTest(unittest.TestCase):
    """An unreachable cluster fails fast (no retries, within the connect
    timeout) and never delays the others, which run concurrently."""

    CONNECT_TIMEOUT = 3.0

    def setUp(self):
        self.sim = kubelib.KubeSim(["east", "west", "gone", "dropped"])
        self.addCleanup(self.sim.stop)
        self.hole = kubelib.Blackhole()
        self.addCleanup(self.hole.close)

    def test_unreachable_clusters_fail_fast_and_do_not_delay_the_others(self):
        sim = self.sim
        sim.unreachable("gone", "refuse")
        sim.unreachable("dropped", "drop")
        hole_kc = os.path.join(sim.dir, "hole.kubeconfig")
        with open(hole_kc, "w") as f:
            f.write(kubelib.kubeconfig_text("https://127.0.0.1:%d" % self.hole.port,
                                            ca=sim.path("ca.crt"), user={"token": sim.token("east")}))
        hc = sim.write_hostconfig("unreach.yaml", {
            "hole": hole_kc, "gone": sim.kubeconfig("gone"), "east": sim.kubeconfig("east"),
            "dropped": sim.kubeconfig("dropped"), "west": sim.kubeconfig("west")})
        t0 = time.monotonic()
        r = egressd("clusters", "check", "--config", hc, "-o", "json", "--connect-timeout", "3s")
        wall = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stderr)
        got = {c["name"]: c for c in json.loads(r.stdout)["clusters"]}
        for name in ("east", "west"):
            self.assertTrue(got[name]["usable"], got[name])
            # answered long before the black hole's connect timeout: not queued behind it
            self.assertLess(got[name]["elapsedMicroseconds"], self.CONNECT_TIMEOUT * 1e6 * 0.8, got[name])
        for name in ("gone", "dropped", "hole"):
            c = got[name]
            self.assertEqual((c["usable"], c["reachable"], c["problem"]), (False, False, "unreachable"), c)
            self.assertEqual(c["requests"], 1, c)  # failed fast: no retries of a connect failure
        self.assertIn("GET /version: Failed to connect to 127.0.0.1 port %d" % sim.ports["gone"],
                      got["gone"]["error"])
        self.assertIn("the server closed the connection without answering", got["dropped"]["error"])
        self.assertLess(got["gone"]["elapsedMicroseconds"], self.CONNECT_TIMEOUT * 1e6 * 0.8)
        self.assertLess(got["dropped"]["elapsedMicroseconds"], self.CONNECT_TIMEOUT * 1e6 * 0.8)
        # the black hole: given up at the connect timeout, not later
        self.assertIn("no connection within the connect timeout of 3s", got["hole"]["error"])
        self.assertGreaterEqual(got["hole"]["elapsedMicroseconds"], 2.5e6)
        self.assertLess(wall, self.CONNECT_TIMEOUT + 5)
        for name in ("east", "west"):
            self.assertEqual(sorted(e["path"] for e in sim.requests(name)), ["/api", "/apis", "/version"])
        # restore "gone" through another cluster's control API
        sim.clear_faults("gone", via="east")
        egressd("clusters", "check", "--kubeconfig", sim.kubeconfig("gone"), "--name", "gone", check=0)


class Http2Test(unittest.TestCase):
    """HTTP/2 is used when the server offers it by ALPN (kubesim speaks
    HTTP/1.1 only, so nghttpd from nghttp2-server serves /version here)."""

    NGHTTPD = "/usr/sbin/nghttpd"

    @unittest.skipUnless(os.path.exists("/usr/sbin/nghttpd"), "needs nghttpd (nghttp2-server)")
    def test_http2_is_negotiated_when_offered(self):
        sim = kubelib.KubeSim(["east"])
        self.addCleanup(sim.stop)
        root = tempfile.mkdtemp(prefix="egressd-h2-")
        self.addCleanup(shutil.rmtree, root, True)
        with open(os.path.join(root, "version"), "w") as f:
            f.write('{"major":"1","minor":"32","gitVersion":"v1.32.9-h2"}')
        with open(os.path.join(root, "api"), "w") as f:
            f.write('{"kind":"APIVersions","versions":[]}')
        with kubelib.Blackhole() as probe:
            port = probe.port  # a free port, released for nghttpd
        proc = subprocess.Popen([self.NGHTTPD, "-d", root, "-a", "127.0.0.1", str(port),
                                 sim.path("pki/server.key"), sim.path("pki/server.crt")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (proc.send_signal(signal.SIGTERM), proc.wait(10)))
        deadline = time.time() + 10
        kc = os.path.join(root, "h2.kubeconfig")
        with open(kc, "w") as f:
            f.write(kubelib.kubeconfig_text("https://127.0.0.1:%d" % port, ca=sim.path("ca.crt"),
                                            user={"token": "t0ken-for-h2"}))
        while True:
            r = egressd("clusters", "check", "--kubeconfig", kc, "--name", "h2", "-o", "json")
            c = json.loads(r.stdout)["clusters"][0]
            if c["reachable"] or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(c["protocol"], "HTTP/2", c)
        self.assertEqual(c["kubernetesVersion"], "v1.32.9-h2")
        # nghttpd has no /apis: discovery fails, the cluster is not usable
        self.assertFalse(c["usable"])
        self.assertEqual(c["problem"], "discovery failed")


if __name__ == "__main__":
    unittest.main()
