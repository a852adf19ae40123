"""Helpers for the kubesim test suite: start/stop kubesim, talk HTTPS to it,
run the real kubectl, read the request log.  Not a test module itself."""
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
KUBESIM = os.path.join(HERE, "kubesim")
# EGRESSD_TEST_APISERVER=real runs the same tests against tests/realk8s (real
# kube-apiservers with kubesim's command line and files; its control API is
# a subset of kubesim's, on DIR/control.port): to see where kubesim and the
# real server part (tests/realk8s/parity compares them systematically)
REAL = os.environ.get("EGRESSD_TEST_APISERVER", "kubesim") == "real"
# more kubesim options for every test (ctest runs the suite again with --light)
EXTRA_ARGS = os.environ.get("KUBESIM_TEST_ARGS", "").split()
REALK8S = os.path.join(HERE, "..", "realk8s", "realk8s")


class _NotLogged(str):
    """A request-log field the real server's audit log does not record
    (Accept, Content-Type): equal to anything, so a test compares what the
    log has (method, path, status, body) and cannot fail on what it lacks."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = str.__hash__


NOT_LOGGED = _NotLogged("<not in realk8s's request log>")
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
DISPATCHER = "/usr/bin/kubectl"
UA_132 = "kubectl.1.32/v1.32.5 (linux/amd64) kubernetes/9894294"
AGG_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                "g=meta.k8s.io,application/json")


class Sim(object):
    """A running kubesim process in a temporary directory."""

    def __init__(self, clusters=("c1",), args=()):
        self.dir = tempfile.mkdtemp(prefix="kubesim-test-")
        self.clusters = list(clusters)
        self.log = open(os.path.join(self.dir, "kubesim.log"), "w")
        prog = [REALK8S] if REAL else ["/usr/bin/python3", KUBESIM] + EXTRA_ARGS
        self.proc = subprocess.Popen(
            prog + ["--dir", self.dir, "--clusters", ",".join(clusters)] + list(args),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + (300 if REAL else 15)
        while not os.path.exists(os.path.join(self.dir, "ready")):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("kubesim did not start: %s" % open(self.log.name).read())
            time.sleep(0.02)
        self.ports = {}
        with open(os.path.join(self.dir, "ready")) as f:
            lines = f.read().splitlines()
        for line in lines:
            n, url = line.split()
            self.ports[n] = int(url.rsplit(":", 1)[1])
        self.ssl = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt"))
        self.ssl.check_hostname = False
        self.control_port = None
        if REAL:
            with open(os.path.join(self.dir, "control.port")) as f:
                self.control_port = int(f.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- files ----------------------------------------------------------
    def path(self, name):
        return os.path.join(self.dir, name)

    def kubeconfig(self, cluster="c1", kind=""):
        return self.path("%s%s.kubeconfig" % (cluster, "-" + kind if kind else ""))

    def token(self, cluster="c1", readonly=False):
        with open(self.path("%s%s.token" % (cluster, "-readonly" if readonly else ""))) as f:
            return f.read().strip()

    # -- HTTP -----------------------------------------------------------
    def request(self, method, path, body=None, cluster="c1", token=None, headers=None, ctype=None,
                timeout=30, raw=False):
        """(status, headers dict (lower-case keys), decoded JSON or bytes)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.ports[cluster], context=self.ssl, timeout=timeout)
        h = {"User-Agent": "kubesim-test/1.0", "Accept": "application/json"}
        tok = token if token is not None else self.token(cluster)
        if tok:
            h["Authorization"] = "Bearer " + tok
        if headers:
            h.update(headers)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = ctype or "application/json"
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            hdrs["_warnings"] = r.headers.get_all("Warning") or []
        finally:
            conn.close()
        if raw:
            return r.status, hdrs, payload
        try:
            return r.status, hdrs, json.loads(payload) if payload else None
        except ValueError:
            return r.status, hdrs, payload

    def ctl(self, method, path, body=None, cluster="c1"):
        if self.control_port:
            st, out = self._real_ctl(method, path, body, cluster)
        else:
            st, _, out = self.request(method, "/_sim/" + path, body, cluster=cluster)
        if st != 200:
            raise AssertionError("control %s %s: %s %s" % (method, path, st, out))
        return out

    def _real_ctl(self, method, path, body, cluster):
        p, _, q = path.partition("?")
        q = (q + "&" if q else "") + "cluster=" + cluster
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=180)
        h = {"Authorization": "Bearer " + self.token(self.clusters[0])}
        data = None
        if body is not None:
            data = json.dumps(body)
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, "/_sim/%s?%s" % (p, q), body=data, headers=h)
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        return r.status, json.loads(raw) if raw else None

    def apply(self, obj, manager="test", cluster="c1", force=False, **q):
        av = obj["apiVersion"]
        md = obj["metadata"]
        return self.request("PATCH", obj_path(obj) + "?fieldManager=%s%s%s" % (
            manager, "&force=true" if force else "", "".join("&%s=%s" % kv for kv in q.items())),
            obj, cluster=cluster, ctype="application/apply-patch+yaml")

    def requests(self, cluster="c1", since=0):
        items = self.ctl("GET", "requests?since=%d" % since, cluster=cluster)["items"]
        if self.control_port:
            # realk8s's log comes from the audit log, which records no headers
            for i in items:
                for k in ("accept", "content_type", "request_content_type", "kubectl_command"):
                    i.setdefault(k, NOT_LOGGED)
        return items

    def mark(self, cluster="c1"):
        return self.ctl("GET", "requests?since=999999999", cluster=cluster)["last"]

    # -- kubectl --------------------------------------------------------
    def kubectl(self, *args, kind="", cluster="c1", binary=KUBECTL, timeout=60, stdin=None, env=None):
        cache = tempfile.mkdtemp(prefix="kcache-", dir=self.dir)
        e = dict(os.environ)
        e["HOME"] = cache
        e.pop("KUBECONFIG", None)
        if env:
            e.update(env)
        p = subprocess.run([binary, "--kubeconfig", self.kubeconfig(cluster, kind), "--cache-dir",
                            os.path.join(cache, "cache")] + list(args), capture_output=True, text=True,
                           timeout=timeout, input=stdin, env=e, cwd=self.dir)
        return p.returncode, p.stdout, p.stderr

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p


def obj_path(obj, name=True):
    av = obj["apiVersion"]
    md = obj["metadata"]
    base = "/api/" + av if "/" not in av else "/apis/" + av
    plural = PLURALS[obj["kind"]]
    ns = md.get("namespace")
    p = base + ("/namespaces/%s" % ns if ns else "") + "/" + plural
    return p + ("/" + md["name"] if name else "")


PLURALS = {"VirtualService": "virtualservices", "Gateway": "gateways", "ServiceEntry": "serviceentries",
           "DestinationRule": "destinationrules", "Sidecar": "sidecars",
           "AuthorizationPolicy": "authorizationpolicies", "IstioMeshGateway": "istiomeshgateways",
           "Namespace": "namespaces", "Service": "services", "Deployment": "deployments"}


def vs(name="reviews", ns="demo", hosts=("reviews",), version="v1", **spec):
    s = {"hosts": list(hosts)}
    s.update(spec)
    return {"apiVersion": "networking.istio.io/" + version, "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns}, "spec": s}


def wait_for(fn, timeout=10, interval=0.05):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            return v
        time.sleep(interval)


class SimTestCase(unittest.TestCase):
    """One kubesim per test class."""
    CLUSTERS = ("c1",)
    ARGS = ("--namespace", "demo")

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(cls.CLUSTERS, cls.ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def status_of(self, body):
        """The Status body fields in the real server's order."""
        return list(body.keys())
