"""Shared by the parity tests: one kubesim and one realk8s started with the
same options, the same request sent to both, and the answers compared after
normalising what legitimately differs (see README.md).

    class T(paritylib.ParityCase):
        OPTS = dict(clusters=["p"], namespaces=["demo"], istio="head")
        def test_x(self):
            sim, real = self.both("GET", "/apis")
            self.assertSame(sim, real)

Not a test module itself.
"""
import base64
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
import kubelib  # noqa: E402

os.environ.setdefault("REALK8S_BIN", os.path.join(kubelib.SOURCE_DIR, "build", "realk8s"))

AGG_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

# What kubesim emulates; the real server has more (normalised away, and the
# tests check that it does have these).
SIM_GROUPS = ["apps", "coordination.k8s.io", "networking.istio.io", "networking.k8s.io", "security.istio.io",
              "servicemesh.cisco.com"]
# the built-in groups among them, and their resources kubesim serves
SIM_BUILTIN_GROUPS = ["", "apps", "coordination.k8s.io", "networking.k8s.io"]
SIM_CORE_RESOURCES = ["configmaps", "namespaces", "namespaces/status", "services", "services/status"]
SIM_APPS_RESOURCES = ["deployments", "deployments/status"]
SIM_COORDINATION_RESOURCES = ["leases"]
SIM_NETWORKING_RESOURCES = ["networkpolicies"]
SIM_BUILTIN_RESOURCES = [r for r in SIM_CORE_RESOURCES + SIM_APPS_RESOURCES + SIM_COORDINATION_RESOURCES
                         + SIM_NETWORKING_RESOURCES if "/" not in r]

# Headers that carry no meaning for a client or differ by nature (per-request
# ids, the flow-schema uids of each server, lengths and framing).
VOLATILE_HEADERS = {"date", "audit-id", "x-kubernetes-pf-flowschema-uid", "x-kubernetes-pf-prioritylevel-uid",
                    "content-length", "transfer-encoding", "server", "connection", "keep-alive"}


class Resp(object):
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers          # lower-case name -> [values]
        self.raw = raw
        try:
            self.body = json.loads(raw) if raw else None
        except ValueError:
            self.body = raw.decode("utf-8", "replace")

    def header(self, name):
        v = self.headers.get(name.lower())
        return ", ".join(v) if v else None

    def stable_headers(self):
        return {k: ", ".join(v) for k, v in sorted(self.headers.items()) if k not in VOLATILE_HEADERS}

    def __repr__(self):
        return "<%d %s %s>" % (self.status, self.stable_headers(), json.dumps(self.body)[:300])


def request(sim, method, path, body=None, ctype="application/json", accept="application/json", headers=None,
            cluster=None, timeout=60):
    """One request as the cluster's admin; returns a Resp (all headers kept)."""
    cluster = cluster or sim.clusters[0]
    conn = http.client.HTTPSConnection("127.0.0.1", sim.ports[cluster], context=sim._ssl, timeout=timeout)
    h = {"Accept": accept, "Authorization": "Bearer " + sim.token(cluster)}
    if headers:
        h.update(headers)
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h["Content-Type"] = ctype
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
    finally:
        conn.close()
    hd = {}
    for k, v in r.getheaders():
        hd.setdefault(k.lower(), []).append(v)
    return Resp(r.status, hd, raw)


def watch(sim, path, timeout=90, cluster=None):
    """A watch read to its end: (Resp without body, [(seconds since start, event)])."""
    cluster = cluster or sim.clusters[0]
    conn = http.client.HTTPSConnection("127.0.0.1", sim.ports[cluster], context=sim._ssl, timeout=timeout)
    conn.request("GET", path, headers={"Accept": "application/json",
                                       "Authorization": "Bearer " + sim.token(cluster)})
    t0 = time.monotonic()
    r = conn.getresponse()
    hd = {}
    for k, v in r.getheaders():
        hd.setdefault(k.lower(), []).append(v)
    events = []
    if r.status != 200:
        resp = Resp(r.status, hd, r.read())
        conn.close()
        return resp, events
    while True:
        line = r.readline()
        if not line:
            break
        events.append((time.monotonic() - t0, json.loads(line)))
    conn.close()
    return Resp(r.status, hd, b""), events


# ---------------------------------------------------------------------------
# normalising and comparing

def norm(o, keep_rv=False):
    """A copy with the values that differ by nature replaced by placeholders
    (presence kept): uids, timestamps, resourceVersions, generated names."""
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            if k in ("uid", "creationTimestamp", "deletionTimestamp", "time") and isinstance(v, str):
                out[k] = "<%s>" % k
            elif k == "resourceVersion" and isinstance(v, str) and not keep_rv:
                out[k] = "<rv>"
            else:
                out[k] = norm(v, keep_rv)
        md = out.get("metadata")
        if isinstance(md, dict) and md.get("generateName") and isinstance(md.get("name"), str):
            md["name"] = md["generateName"] + "<generated>"
        return out
    if isinstance(o, list):
        return [norm(x, keep_rv) for x in o]
    return o


def diff(a, b, path=""):
    """Differences between two decoded JSON values, as 'path: sim=... real=...'."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = "%s.%s" % (path, k)
            if k not in a:
                out.append("%s: only real: %s" % (p, json.dumps(b[k], sort_keys=True)))
            elif k not in b:
                out.append("%s: only sim: %s" % (p, json.dumps(a[k], sort_keys=True)))
            else:
                out.extend(diff(a[k], b[k], p))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(diff(x, y, "%s[%d]" % (path, i)))
    elif a != b or type(a) != type(b):
        out.append("%s: sim=%s real=%s" % (path or ".", json.dumps(a, sort_keys=True), json.dumps(b, sort_keys=True)))
    return out


def decode_continue(tok):
    return json.loads(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))


def conflict_causes(status):
    """An apply conflict's causes grouped by manager: the real server lists the
    managers in Go map order (per manager, the paths are sorted)."""
    st = json.loads(json.dumps(status))
    st["details"]["causes"].sort(key=lambda c: c["message"])        # stable: keeps each manager's order
    return st


def sorted_causes(status):
    """A 422 Status with its causes sorted: the real server lists field errors
    in Go map order (it varies from one request to the next), the trailing
    '<nil>' CEL cause last. Checks that the message lists the causes."""
    st = json.loads(json.dumps(status))
    causes = st.get("details", {}).get("causes") or []
    lines = ["%s: %s" % (c["field"], c["message"]) for c in causes]
    msg = st.get("message", "")
    head, _, rest = msg.partition(" is invalid: ")
    if len(lines) > 1:
        assert rest == "[" + ", ".join(lines) + "]", "message does not list the causes in order: %s" % msg
    elif lines:
        assert rest == lines[0], "message is not its one cause: %s" % msg
    st["message"] = head + " is invalid: <causes>"
    st["details"]["causes"] = sorted(causes, key=lambda c: (c["field"] == "<nil>", c["field"], c["reason"]))
    return st


# ---------------------------------------------------------------------------
# the test case

def crds_published(real, timeout=120):
    """Wait until the real server publishes its CRDs' OpenAPI (some seconds
    after realk8s's "ready"). Until then its CRD handlers may still use a
    type converter without the schemas: an apply with an unknown field is
    accepted (201) instead of the 500 it gets afterwards."""
    st, out = real.request("GET", "/apis")
    gvs = ["apis/%s" % g["preferredVersion"]["groupVersion"] for g in out["groups"]
           if g["name"] in SIM_GROUPS and g["name"] not in SIM_BUILTIN_GROUPS]

    def have():
        paths = request(real, "GET", "/openapi/v3").body["paths"]
        return all(gv in paths for gv in gvs)
    wait_for(have, timeout, "the CRDs' OpenAPI v3 documents on the real server")


class Pair(object):
    """One kubesim and one realk8s, the same options."""

    def __init__(self, **opts):
        self.sim = self.real = None
        box = {}

        def start_real():
            try:
                box["real"] = kubelib.KubeSim(real=True, **opts)
            except Exception as e:      # reported below
                box["err"] = e
        t = threading.Thread(target=start_real)
        t.start()
        try:
            self.sim = kubelib.KubeSim(real=False, **opts)
        finally:
            t.join()
            self.real = box.get("real")
        if "err" in box:
            self.stop()
            raise box["err"]

    def stop(self):
        for s in (self.sim, self.real):
            if s is not None:
                s.stop()


class ParityCase(unittest.TestCase):
    OPTS = dict(clusters=["p"], namespaces=["demo"], istio="head")
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.pair = Pair(**cls.OPTS)
        cls.sim, cls.real = cls.pair.sim, cls.pair.real
        try:
            crds_published(cls.real)
        except BaseException:
            cls.pair.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pair.stop()

    def both(self, method, path, body=None, **kw):
        return request(self.sim, method, path, body, **kw), request(self.real, method, path, body, **kw)

    def each(self, fn):
        """fn(server) on both: (sim's result, real's result)."""
        return fn(self.sim), fn(self.real)

    def assertSame(self, sim, real, what="", headers=("content-type", "warning"), body=True, keep_rv=False,
                   fix=None):
        """Same status, the given headers and the normalised body (fix(body)
        normalises more)."""
        self.assertEqual(sim.status, real.status, "%s: status: sim %r, real %r" % (what, sim, real))
        for h in headers:
            self.assertEqual(sim.header(h), real.header(h), "%s: header %s" % (what, h))
        if body:
            a, b = norm(sim.body, keep_rv), norm(real.body, keep_rv)
            if fix:
                a, b = fix(a), fix(b)
            if isinstance(a, dict) and a.get("reason") == "Conflict" and a.get("details", {}).get("causes"):
                a, b = conflict_causes(a), conflict_causes(b)
            d = diff(a, b)
            self.assertEqual(d, [], "%s: bodies differ:\n  %s" % (what, "\n  ".join(d)))

    def assertKnown(self, name, got, expected):
        """A difference listed in tests/kubesim/README.md "Known limits": it must
        still be exactly this, so that a change (or a fix) shows."""
        self.assertEqual(got, expected, "the known difference %r changed: update the test and the README" % name)

    def kubectl(self, server, *args, timeout=120):
        return subprocess.run(["/usr/bin/kubectl", "--kubeconfig", server.kubeconfig(server.clusters[0])]
                              + list(args), capture_output=True, text=True, timeout=timeout)


def wait_for(fn, timeout=60, what="condition"):
    """Poll fn() until it returns a true value (no fixed sleeps as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.1)


def vs(name, hosts=("x.example.com",), ns=None, **spec):
    o = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": name},
         "spec": dict({"hosts": list(hosts)}, **spec)}
    if ns:
        o["metadata"]["namespace"] = ns
    return o


def se(name, hosts=("api.example.com",), **spec):
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": name},
            "spec": dict({"hosts": list(hosts)}, **spec)}


def imgw(name, ports=((443, "tls"),), **spec):
    s = {"istioControlPlane": {"name": "cp-v117x", "namespace": "istio-system"}, "type": "egress",
         "service": {"type": "ClusterIP",
                     "ports": [{"name": n, "port": p, "protocol": "TCP", "targetPort": p} for p, n in ports]}}
    s.update(spec)
    return {"apiVersion": "servicemesh.cisco.com/v1alpha1", "kind": "IstioMeshGateway", "metadata": {"name": name},
            "spec": s}


NS = "demo"
VSP = "/apis/networking.istio.io/v1/namespaces/%s/virtualservices" % NS
SEP = "/apis/networking.istio.io/v1/namespaces/%s/serviceentries" % NS
IMP = "/apis/servicemesh.cisco.com/v1alpha1/namespaces/%s/istiomeshgateways" % NS


def mf(obj):
    """managedFields without times, sorted by manager: what SSA owns."""
    out = []
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        e = dict(e)
        e.pop("time", None)
        out.append(e)
    return sorted(out, key=lambda e: (e["manager"], e["operation"]))


def rv_of(resp):
    return int(resp.body["metadata"]["resourceVersion"])


def strip_numbers(s):
    return re.sub(r"\d+", "N", s)
