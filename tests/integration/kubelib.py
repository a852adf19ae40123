"""Helpers for integration tests that need Kubernetes API servers: start the
kubesim emulator (tests/kubesim, see its README.md) with given clusters and
options in a temporary directory, wait for DIR/ready, talk to its /_sim/
control API (request log, faults, tokens, objects), stop it, and run the
egressd binary under test.

With EGRESSD_TEST_APISERVER=real the same KubeSim starts real clusters
instead: tests/realk8s (etcd and kube-apiserver built from upstream modules,
same command line and files). Its control API (DIR/control.port) serves the
request log (from the audit log), the "refuse" fault (the server is stopped
and started again), operator failures, exec-token expiry and compaction;
a test that needs another emulator control is marked @emulator_only.

    with kubelib.KubeSim(["east", "west"], istio={"west": "v1alpha3"},
                         no_smm=["west"]) as sim:
        r = kubelib.egressd("clusters", "check", "--kubeconfig", sim.kubeconfig("east"))
        log = sim.requests("east")

Every KubeSim is stopped when its `with` block ends, when stop() is called,
or at interpreter exit (even after a failed assertion), and its directory is
removed. Everything listens on 127.0.0.1 only.
"""
import atexit
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from netlib import Listener, wait_for

SOURCE_DIR = os.environ.get("EGRESSD_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
KUBESIM = os.path.join(SOURCE_DIR, "tests", "kubesim", "kubesim")
REALK8S = os.path.join(SOURCE_DIR, "tests", "realk8s", "realk8s")
PYTHON = "/usr/bin/python3"

APISERVER = os.environ.get("EGRESSD_TEST_APISERVER", "kubesim")
if APISERVER not in ("kubesim", "real"):
    raise RuntimeError("EGRESSD_TEST_APISERVER must be kubesim or real, not %r" % APISERVER)
REAL = APISERVER == "real"


def emulator_only(reason):
    """Skip a test or class on the real API server: it needs a control that
    only the emulator has (injected responses, latency, resets...)."""
    return unittest.skipIf(REAL, "needs the emulator: " + reason)


# kinds whose plural is not kind.lower() + "s"
PLURALS = {"ServiceEntry": "serviceentries", "AuthorizationPolicy": "authorizationpolicies",
           "IstioMeshGateway": "istiomeshgateways"}


def resource_path(obj, name=None, collection=False):
    """The REST path of an object (or of its collection)."""
    api = obj["apiVersion"]
    group, version = api.split("/") if "/" in api else ("", api)
    plural = PLURALS.get(obj["kind"], obj["kind"].lower() + "s")
    base = "/apis/%s/%s" % (group, version) if group else "/api/%s" % version
    ns = obj["metadata"].get("namespace")
    path = "%s%s/%s" % (base, "/namespaces/" + ns if ns else "", plural)
    return path if collection else "%s/%s" % (path, name or obj["metadata"]["name"])

_live = set()
_live_lock = threading.Lock()


def _stop_all():
    with _live_lock:
        live = list(_live)
    for s in live:
        s.stop()


atexit.register(_stop_all)


def egressd_binary():
    path = os.environ.get("EGRESSD")
    if not path:
        raise RuntimeError("EGRESSD is not set (run the tests through ctest)")
    return path


def egressd(*args, timeout=120, env=None, check=None, input=None):
    """Run the egressd binary under test; returns subprocess.CompletedProcess
    with text stdout/stderr. `check` (an int) asserts the exit status."""
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run([egressd_binary()] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env=e, input=input)
    if check is not None and r.returncode != check:
        raise AssertionError("egressd %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, args)), r.returncode, check, r.stdout, r.stderr))
    return r


class KubeSim(object):
    """A running kubesim with one TLS listener per cluster.

    clusters: names; istio: a spec for every cluster ("head", "1.17",
    "v1alpha3,v1beta1") or {name: spec}; no_smm: names without the
    IstioMeshGateway CRD; namespaces: created at start in every cluster;
    args: more kubesim options; real: start tests/realk8s instead (default:
    EGRESSD_TEST_APISERVER=real)."""

    def __init__(self, clusters=("c1",), istio=None, no_smm=(), namespaces=(), args=(),
                 start=True, real=None):
        self.clusters = list(clusters)
        self.real = REAL if real is None else real
        self.dir = tempfile.mkdtemp(prefix="egressd-%s-" % ("realk8s" if self.real else "kubesim"))
        prog = [REALK8S] if self.real else [PYTHON, KUBESIM]
        self.argv = prog + ["--dir", self.dir, "--clusters", ",".join(self.clusters)]
        if isinstance(istio, dict):
            for name, spec in istio.items():
                self.argv += ["--istio", "%s=%s" % (name, spec)]
        elif istio:
            self.argv += ["--istio", istio]
        for name in no_smm:
            self.argv += ["--no-smm", name]
        for ns in namespaces:
            self.argv += ["--namespace", ns]
        self.argv += list(args)
        self.proc = None
        self.ports = {}
        self.servers = {}
        self._versions = {}
        self._ssl = None
        if start:
            self.start()

    # -- life ---------------------------------------------------------------
    def start(self, timeout=None):
        # a real server takes seconds per cluster (and minutes if realk8s
        # must be built first)
        timeout = timeout or (900 if self.real else 20)
        self.log = open(os.path.join(self.dir, "kubesim.log"), "w")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)
        with _live_lock:
            _live.add(self)
        ready = os.path.join(self.dir, "ready")
        deadline = time.time() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop(keep_dir=True)
                with open(os.path.join(self.dir, "kubesim.log")) as f:
                    raise RuntimeError("%s did not start:\n%s" % (self.argv[0], f.read()))
            time.sleep(0.02)
        with open(ready) as f:
            for line in f.read().splitlines():
                name, url = line.split()
                self.servers[name] = url
                self.ports[name] = int(url.rsplit(":", 1)[1])
        self._ssl = ssl.create_default_context(cafile=self.path("ca.crt"))
        self._ssl.check_hostname = False
        if self.real:
            with open(self.path("control.port")) as f:
                self.control_port = int(f.read())
        return self

    def stop(self, keep_dir=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None) is not None and not self.log.closed:
            self.log.close()
        with _live_lock:
            _live.discard(self)
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- files ---------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.dir, name)

    def kubeconfig(self, cluster, kind=""):
        """NAME.kubeconfig (token), or kind "cert", "exec", "readonly"."""
        return self.path("%s%s.kubeconfig" % (cluster, "-" + kind if kind else ""))

    def token(self, cluster, readonly=False):
        with open(self.path("%s%s.token" % (cluster, "-readonly" if readonly else ""))) as f:
            return f.read().strip()

    def exec_runs(self, cluster):
        """How many times the cluster's exec plugin has run."""
        try:
            with open(self.path("%s-exec.log" % cluster)) as f:
                return len(f.read().splitlines())
        except FileNotFoundError:
            return 0

    def write_hostconfig(self, name="egressd.yaml", clusters=None, extra=""):
        """A host config naming each cluster's kubeconfig. `clusters` maps a
        name to a kubeconfig path (default: every cluster's token one)."""
        clusters = clusters or {c: self.kubeconfig(c) for c in self.clusters}
        text = ("repository:\n  url: https://git.example.com/egress.git\n"
                "verify:\n  policy: none\nclusters:\n")
        for n, kc in clusters.items():
            text += "  - name: %s\n    kubeconfig: %s\n" % (n, kc)
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text + extra)
        return path

    # -- HTTP ---------------------------------------------------------------
    def request(self, method, path, body=None, cluster=None, token=None, ctype="application/json",
                timeout=30):
        """(status, decoded JSON or text) of one request as the admin."""
        cluster = cluster or self.clusters[0]
        conn = http.client.HTTPSConnection("127.0.0.1", self.ports[cluster], context=self._ssl,
                                           timeout=timeout)
        headers = {"Accept": "application/json",
                   "Authorization": "Bearer " + (token or self.token(cluster))}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = ctype
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode("utf-8", "replace")

    def server_version(self, cluster=None):
        """/version's gitVersion (kubesim: 1.32.4 unless told; realk8s: what
        it was built from). Asked once per cluster (the request is logged)."""
        cluster = cluster or self.clusters[0]
        if cluster not in self._versions:
            st, out = self.request("GET", "/version", cluster=cluster)
            if st != 200:
                raise RuntimeError("GET /version: %s %s" % (st, out))
            self._versions[cluster] = out["gitVersion"]
        return self._versions[cluster]

    @property
    def protocol(self):
        """The HTTP version a client negotiates: kubesim speaks HTTP/1.1 only,
        kube-apiserver offers HTTP/2 by ALPN."""
        return "HTTP/2" if self.real else "HTTP/1.1"

    def control(self, method, what, body=None, cluster=None):
        cluster = cluster or self.clusters[0]
        if self.real:
            st, out = self._real_control(method, what, body, cluster)
        else:
            st, out = self.request(method, "/_sim/" + what, body, cluster=cluster)
        if st >= 300:
            raise RuntimeError("kubesim %s /_sim/%s: %s %s" % (method, what, st, out))
        return out

    def _real_control(self, method, what, body, cluster):
        """realk8s's control API: one port for every cluster, ?cluster=NAME
        (a `what` that names a cluster itself, as kubesim's via=, keeps it)."""
        path, _, query = what.partition("?")
        if "cluster" not in urllib.parse.parse_qs(query):
            query = (query + "&" if query else "") + "cluster=" + urllib.parse.quote(cluster)
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=180)
        headers = {"Authorization": "Bearer " + self.token(self.clusters[0])}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, "/_sim/%s?%s" % (path, query), body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, json.loads(raw) if raw else None

    # -- request log ----------------------------------------------------------
    def requests(self, cluster=None, since=0, api_only=True):
        """Logged requests of a cluster (dicts: method, path, query, verb,
        status, user_agent, auth, ...), oldest first."""
        out = self.control("GET", "requests?since=%d" % since, cluster=cluster)
        items = out["items"]
        return [i for i in items if not api_only or not i["path"].startswith("/_sim")]

    def last_seq(self, cluster=None):
        return self.control("GET", "requests?since=0", cluster=cluster)["last"]

    def clear_requests(self, cluster=None):
        self.control("DELETE", "requests", cluster=cluster)

    # -- faults ---------------------------------------------------------------
    def add_fault(self, cluster=None, **rule):
        """POST a fault rule (verb, path, status, retry_after, body="apf",
        reset=True, latency_ms, share, count ...); returns its id."""
        out = self.control("POST", "faults", rule, cluster=cluster)
        if isinstance(out, dict) and "id" in out:
            return out["id"]
        if isinstance(out, dict) and out.get("faults"):
            return out["faults"][0].get("id")
        return out

    def faults(self, cluster=None):
        return self.control("GET", "faults", cluster=cluster)

    def clear_faults(self, cluster=None, via=None):
        """Remove every rule and restore reachability (for a refusing cluster
        send it through another one with via=)."""
        if via:
            self.control("DELETE", "faults?cluster=%s" % urllib.parse.quote(cluster), cluster=via)
        else:
            self.control("DELETE", "faults", cluster=cluster)

    def unreachable(self, cluster, mode="refuse", duration_ms=None, via=None):
        """Make a cluster refuse connections ("refuse") or accept and close
        them at once ("drop")."""
        body = {"unreachable": mode}
        if duration_ms is not None:
            body["duration_ms"] = duration_ms
        if via:
            self.control("POST", "faults?cluster=%s" % urllib.parse.quote(cluster), body, cluster=via)
        else:
            self.control("POST", "faults", body, cluster=cluster)
        if mode == "refuse":
            # the emulator closes its listener in the background: until it
            # has, a connection is accepted and reset, not refused
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.ports[cluster]), timeout=0.5).close()
                except ConnectionRefusedError:
                    return
                except OSError:
                    pass
                time.sleep(0.02)
            raise RuntimeError("cluster %s still accepts connections" % cluster)

    def wait_reachable(self, cluster, timeout=60):
        """Wait until the cluster answers GET /version again (after an
        unreachable fault with a duration; a real kube-apiserver takes
        seconds to start)."""
        def answers():
            try:
                return self.request("GET", "/version", cluster=cluster, timeout=5)[0] == 200
            except (OSError, http.client.HTTPException):
                return False
        wait_for("cluster %s to answer again" % cluster, answers, timeout)

    def expire_token(self, cluster, kind="exec", rotate=False):
        body = {"expire": kind}
        if rotate:
            body["rotate"] = True
        return self.control("POST", "tokens", body, cluster=cluster)

    def compact(self, cluster=None):
        return self.control("POST", "compact", {}, cluster=cluster)

    # -- objects --------------------------------------------------------------
    def put_objects(self, objs, cluster=None, workers=16):
        """Store objects, in parallel: through /_sim/objects (no admission)
        on kubesim, by creating them through the API on a real server."""
        cluster = cluster or self.clusters[0]
        if self.real:
            for ns in sorted({o["metadata"].get("namespace") for o in objs} - {None}):
                st, out = self.request("POST", "/api/v1/namespaces",
                                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                                       cluster=cluster)
                if st not in (201, 409):
                    raise RuntimeError("namespace %s: %s %s" % (ns, st, out))

        def one(o):
            if self.real:
                st, out = self.request("POST", resource_path(o, collection=True), o, cluster=cluster)
                ok = st == 201
            else:
                st, out = self.request("POST", "/_sim/objects", o, cluster=cluster)
                ok = st == 200
            if not ok:
                raise RuntimeError("put %s: %s %s" % (o["metadata"]["name"], st, out))
            return out
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, objs))

    def apply(self, obj, cluster=None, manager="kubelib", force=True):
        """Server-side apply one object as another field manager."""
        path = "%s?fieldManager=%s%s" % (resource_path(obj), manager, "&force=true" if force else "")
        return self.request("PATCH", path, obj, cluster=cluster, ctype="application/apply-patch+yaml")


def virtual_service(name, namespace="default", hosts=("example.com",), labels=None,
                    api_version="networking.istio.io/v1"):
    o = {"apiVersion": api_version, "kind": "VirtualService",
         "metadata": {"name": name, "namespace": namespace},
         "spec": {"hosts": list(hosts), "gateways": ["mesh"]}}
    if labels:
        o["metadata"]["labels"] = dict(labels)
    return o


class Blackhole(object):
    """A loopback TCP port that completes the TCP handshake (the kernel's
    backlog) but never answers TLS: a client waits for its connect timeout,
    as with a firewalled API server. Use as a context manager."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class ConnectProxy(Listener):
    """An HTTP CONNECT proxy on loopback that records what it was asked to
    reach (self.requests: "CONNECT host:port" lines and their headers) and
    relays bytes. Only 127.0.0.1 targets are allowed. cut() cuts its clients
    off: every relayed connection is dropped and new ones are closed at once.
    A context manager."""

    def __init__(self):
        self.requests = []
        self.cut_off = False
        self.conns = []
        self.conns_lock = threading.Lock()
        super().__init__()

    def cut(self):
        self.cut_off = True
        with self.conns_lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = c.recv(4096)
            if not chunk:
                c.close()
                return
            head += chunk
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        self.requests.append(lines)
        method, target = lines[0].split()[:2]
        host, port = target.rsplit(":", 1)
        if self.cut_off:
            c.close()
            return
        if method != "CONNECT" or host != "127.0.0.1":
            c.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            c.close()
            return
        up = socket.create_connection((host, int(port)))
        with self.conns_lock:
            self.conns += [c, up]
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        t = threading.Thread(target=pump, args=(up, c), daemon=True)
        t.start()
        pump(c, up)
        t.join(5)
        with self.conns_lock:
            self.conns = [s for s in self.conns if s not in (c, up)]
        up.close()
        c.close()


def kubeconfig_text(server, ca=None, user=None, context_ns=None, name="c", insecure=False):
    """A minimal kubeconfig. `user` is a dict of user fields (token, exec ...)."""
    cluster = {"server": server}
    if ca:
        cluster["certificate-authority"] = ca
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    ctx = {"cluster": name}
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": name,
           "clusters": [{"name": name, "cluster": cluster}], "contexts": [{"name": name, "context": ctx}]}
    if user is not None:
        ctx["user"] = name
        cfg["users"] = [{"name": name, "user": user}]
    if context_ns:
        ctx["namespace"] = context_ns
    return json.dumps(cfg, indent=1)
