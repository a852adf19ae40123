#!/usr/bin/python3
"""Fleet benchmark (issue 14 §4): `egressd run` with N emulated clusters and M
intents, from the first rollout to a quiet window, drift corrections and
pushes.

    bench/fleet/bench-fleet.py --clusters N --intents M [options]   (see --help)

Prerequisites (Debian 12): /usr/bin/python3 (3.11, standard library only),
git (git daemon serves the config repo), openssh-client (ssh-keygen signs the
commits), openssl (kubesim makes its certificates), an egressd binary
(cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build). The
emulator, tests/kubesim/kubesim, and the helpers of tests/integration are
used from this source tree. Everything listens on 127.0.0.1 only.

What it does:

  repo      bench/render/gen-repo.py makes M intents (10 gateways, 100
            namespaces), or --repo example copies repo-layout/example; fleet.yaml is replaced by N clusters c1..cN, labelled
            env=staging for the canary wave (--canary clusters, default N/100,
            at least 1), env=prod for the rest, region eu/us alternating; two
            waves: canary (maxParallel = its size) and prod (--max-parallel),
            both with --bake. The commit is signed with an SSH key
            (verify.policy all), and the repo is served by `git daemon` on
            127.0.0.1, so every poll is a real fetch (bench/idle's GitDaemon).
  clusters  P kubesim processes (--emulators, default one per ~125 clusters,
            one for 20 or fewer), each with its share of the clusters and the
            110 namespaces the repo uses (bench/sync's list), started with
            --light (one accept thread for all its listeners; --no-light for
            kubesim's default of one polling thread per listener).
  daemon    `egressd run` with a host config listing the N clusters (repository,
            verify, clusters, state, ledger, metrics; repository.interval and
            sync.driftInterval only when --interval / --drift-interval are given,
            else egressd's defaults; --set KEY=VALUE and --append-yaml FILE for
            anything else), started with a notify socket as systemd would
            (tests/integration/daemonlib.py).

What it measures (CPU is utime+stime from /proc/PID/stat; children that a
process reaped are counted with it: git for egressd's fetches, upload-pack for
git daemon):

  rollout   from the start of egressd to status.json's rollout of the first
            commit `complete` with every cluster `done`: wall time, CPU of
            egressd, of the emulator processes and of git daemon, the requests
            the API servers logged (all clusters, from their request logs), split
            into discovery/get/list/watch/patch/other on a sample of clusters,
            egressd's peak RSS, fds and threads (sampled every 0.5 s), and the
            TCP connections egressd opened (connect() calls, counted with
            `perf stat -e syscalls:sys_enter_connect` when perf is installed)
  quiet     a window of --quiet seconds with nothing changing: egressd's CPU as
            a share of one core, VmRSS and VmHWM at the end, the highest VmRSS,
            fd count and thread count sampled every second, the emulators' CPU,
            API requests per second, drift checks (egressd_syncs_total), new
            connections (as above), open fds by kind
  drift     --drift-samples times: on a random cluster, a managed
            VirtualService (chosen at random) is deleted through the API server
            directly; the time from the DELETE's answer to the ADDED event of a
            watch on that object is one sample (no polling). Samples run on
            distinct clusters, --drift-parallel at a time, each after a random
            pause of up to one drift interval (clusters that synced together
            check together: samples must not start in step with them)
  push      --push-samples times: a signed commit adds one intent (ServiceEntry
            push-K in team-0, or payments with --repo example); the time from the commit (the ref moved on the Git
            server) to the ADDED event on every wave-1 cluster (watches opened
            before the commit) is "push -> wave 1"; "status" is when status.json
            shows every wave-1 cluster at the new commit (synced and healthy);
            then the rollout of the commit must complete ("push -> complete")
            before the next sample, which waits a random pause of up to one
            poll interval first (else each push would meet the poll cycle at
            the same phase). With --webhook-url the commit is followed by a
            GitHub-format push event signed with HMAC-SHA256
            (X-Hub-Signature-256, secret from --webhook-secret-file). By default
            (--push-via auto) the bench asks the binary whether it knows
            repository.webhook (`egressd clusters check` on a probe config); if
            it does, the host config gets a webhook block on a loopback port
            and each commit is announced there; if not, egressd learns of the
            commit by polling (repository.interval). The output says which.

Each phase also records the CPU of this driver and of the rest of the
machine (/proc/stat's busy time less the processes above): other work that
competed for the cores.

The result is printed as a Markdown table row (the columns of
docs/benchmarks.md's fleet section) and a JSON line with every figure.
Figures go to docs/benchmarks.md; they are never asserted in tests.
"""
import argparse
import concurrent.futures
import hashlib
import hmac
import http.client
import importlib.util
import json
import math
import os
import random
import re
import resource
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True   # no __pycache__ in tests/integration or bench/
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import daemonlib  # noqa: E402
import kubelib  # noqa: E402


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# the other benches' helpers: proc_stat, proc_status, classify, metrics and
# GitDaemon from bench/idle; the repo's namespaces from bench/sync
idle = _load("bench_idle", os.path.join(SOURCE, "bench", "idle", "bench-idle.py"))
bsync = _load("bench_sync", os.path.join(SOURCE, "bench", "sync", "bench-sync.py"))
GEN_REPO = bsync.GEN_REPO
NAMESPACES = bsync.NAMESPACES
COLUMNS = idle.COLUMNS
VS_API = "/apis/networking.istio.io/v1"
MANAGED = "app.kubernetes.io/managed-by=egressd"
UA = "bench-fleet"


def parse_duration(text):
    """'30s', '1m30s', '250ms' -> seconds (egressd's duration syntax)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError("not a duration: %r" % text)
    return sum(int(n) * units[u] for n, u in parts)


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(math.ceil(p / 100.0 * len(v))) - 1))]


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def thread_count(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return 0


def kib(status, key):
    return int(status[key].split()[0])


def tree_cpu(pid):
    """CPU of a process plus the children it reaped, in seconds."""
    own, children = idle.proc_stat(pid)
    return own + children


def machine_busy():
    """CPU seconds the whole machine was busy (all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / float(idle.CLK_TCK)


def self_cpu():
    t = os.times()
    return t.user + t.system


class Meter(object):
    """CPU of egressd, the emulators, git daemon, this driver and the rest of
    the machine (other work that competed for the two cores) over a phase."""

    def __init__(self, b):
        self.b = b
        self.t = time.monotonic()
        self.a = self.read()

    def read(self):
        b = self.b
        return {"egressd": b.cpu() if b.proc is not None else 0.0, "emulators": b.sim_cpu(),
                "git": tree_cpu(b.git.proc.pid), "driver": self_cpu(), "machine": machine_busy()}

    def done(self):
        z = self.read()
        d = dict((k, z[k] - self.a[k]) for k in z)
        d["other"] = max(0.0, d["machine"] - d["egressd"] - d["emulators"] - d["git"] - d["driver"])
        d["wall"] = time.monotonic() - self.t
        return dict((k, round(v, 2)) for k, v in d.items())


class Connects(object):
    """connect() calls of a process over a phase, counted by the kernel's
    syscalls:sys_enter_connect tracepoint (`perf stat`, package linux-perf;
    root). None when perf is missing or cannot count."""
    PERF = "/usr/bin/perf"

    def __init__(self, pid):
        self.proc = None
        if not os.access(self.PERF, os.X_OK):
            return
        self.out = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([self.PERF, "stat", "-x,", "-e", "syscalls:sys_enter_connect",
                                      "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=self.out)

    def done(self):
        if self.proc is None:
            return None
        self.proc.send_signal(2)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.seek(0)
        m = re.search(r"^(\d+),.*sys_enter_connect", self.out.read(), re.M)
        self.out.close()
        return int(m.group(1)) if m else None


def fd_kinds(pid):
    """Open fds by kind: socket, pipe, anon_inode, file."""
    kinds = {}
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return kinds
    for n in names:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            continue
        k = t.split(":", 1)[0] if t.startswith(("socket:", "pipe:", "anon_inode:")) else "file"
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


# -- host config ---------------------------------------------------------------
def yaml_emit(node, indent=0):
    """A small YAML writer for the host config: dicts, lists of dicts, and
    scalars written as given (strings the caller made valid YAML)."""
    pad = "  " * indent
    out = ""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                out += "%s%s:\n%s" % (pad, k, yaml_emit(v, indent + 1))
            else:
                out += "%s%s: %s\n" % (pad, k, v)
    elif isinstance(node, list):
        for item in node:
            text = yaml_emit(item, indent + 1)
            out += pad + "- " + text[len(pad) + 2:]
    return out


def set_path(tree, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        nxt = tree.get(k)
        if not isinstance(nxt, dict):
            nxt = tree[k] = {}
        tree = nxt
    tree[keys[-1]] = value


def get_path(tree, dotted):
    for k in dotted.split("."):
        if not isinstance(tree, dict) or k not in tree:
            return None
        tree = tree[k]
    return tree


# -- the fleet ----------------------------------------------------------------
def fleet_yaml(names, canary, max_parallel, bake):
    lines = ["apiVersion: egressd.io/v1", "kind: Fleet", "metadata: {name: bench}", "spec:",
             "  clusters:"]
    for i, n in enumerate(names):
        lines.append("    - {name: %s, labels: {env: %s, region: %s}}"
                     % (n, "staging" if i < canary else "prod", "eu" if i % 2 == 0 else "us"))
    lines += ["  rollout:", "    waves:",
              "      - {name: canary, selector: {matchLabels: {env: staging}}, maxParallel: %d, bake: %s}"
              % (min(canary, 1000), bake)]
    if len(names) > canary:
        lines.append("      - {name: prod, selector: {matchLabels: {env: prod}}, maxParallel: %d, bake: %s}"
                     % (min(max_parallel, len(names) - canary, 1000), bake))
    return "\n".join(lines) + "\n"


class Bench(daemonlib.Daemon):
    """The config repo, the emulators, git daemon and egressd. The daemon
    side (keys, signed commits, start/stop with a notify socket, STATUS=
    lines) is tests/integration/daemonlib.py's Daemon; only the set-up
    differs (many emulator processes, a generated repo, git daemon)."""

    def __init__(self, args, work):   # pylint: disable=super-init-not-called
        self.args = args
        self.tmp = work
        self.names = ["c%d" % i for i in range(1, args.clusters + 1)]
        self.canary = self.names[:args.canary]
        self.env = dict(os.environ)
        self.env.update({"HOME": work, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
                         "GIT_AUTHOR_NAME": "Alice Admin", "GIT_AUTHOR_EMAIL": "alice@example.com",
                         "GIT_COMMITTER_NAME": "Alice Admin",
                         "GIT_COMMITTER_EMAIL": "alice@example.com"})
        self.proc = None
        self.notes = []
        self.notes_lock = threading.Lock()
        self.sims = []
        self.sim_of = {}
        self.git = None
        self.sock = None

    # -- setup ---------------------------------------------------------------
    def setup(self):
        a = self.args
        self.alice = self.keygen("alice")
        with open(self.path("allowed_signers"), "w") as f:
            f.write('alice@example.com namespaces="git" %s\n' % self.pubkey(self.alice))
        self.repo = self.path("config-repo")
        if a.repo == "example":
            shutil.copytree(daemonlib.EXAMPLE, self.repo)
        else:
            subprocess.run(["/usr/bin/python3", GEN_REPO, self.repo, str(a.intents)], check=True)
        with open(os.path.join(self.repo, "fleet.yaml"), "w") as f:
            f.write(fleet_yaml(self.names, a.canary, a.max_parallel, a.bake))
        self.run(["git", "init", "-q", "-b", "main", self.repo])
        self.head = self.commit("bench: %s intents, %d clusters" % (a.intents, a.clusters))
        self.ledger_key = self.path("ledger_ed25519")
        self.run([a.egressd, "keygen", "-f", self.ledger_key])
        self.state = self.path("state")
        self.runtime = self.path("run")
        self.metrics = self.path("metrics.prom")
        self.status_path = os.path.join(self.runtime, "status.json")
        self.git = idle.GitDaemon(self.tmp, self.path("git-daemon.log"))
        self.url = "git://127.0.0.1:%d/config-repo" % self.git.port
        self.start_emulators()
        self.webhook = self.setup_webhook()
        self.config = self.path("egressd.yaml")
        self.config_text = self.host_config()
        with open(self.config, "w") as f:
            f.write(self.config_text)
        self.notify_path = self.path("notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.notify_path)
        self.sock.settimeout(0.2)
        self._stop_reader = False
        self.reader = threading.Thread(target=self._read_notes, daemon=True)
        self.reader.start()

    def start_emulators(self):
        a = self.args
        per = int(math.ceil(len(self.names) / float(a.emulators)))
        chunks = [self.names[i:i + per] for i in range(0, len(self.names), per)]
        extra = ["--operator-delay", str(a.operator_delay)] + ([] if a.no_light else ["--light"]) + \
            a.emulator_arg
        nss = daemonlib.NAMESPACES if a.repo == "example" else NAMESPACES
        self.sims = [kubelib.KubeSim(c, namespaces=nss, args=extra, start=False)
                     for c in chunks]
        t = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(self.sims)) as pool:
            list(pool.map(lambda s: s.start(timeout=60 + 0.2 * len(s.clusters)), self.sims))
        self.emulator_start_s = time.monotonic() - t
        for s in self.sims:
            for c in s.clusters:
                self.sim_of[c] = s

    def setup_webhook(self):
        """With --push-via auto (if the binary knows repository.webhook) or
        webhook: a secret, a loopback port, the block for the host config, and
        the URL the pushes are announced to. None otherwise."""
        a = self.args
        if a.webhook_url or a.push_via == "poll":
            return None
        secret = self.path("webhook-secret")
        with open(secret, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.chmod(secret, 0o600)
        port = idle.free_port()
        block = {"listen": "127.0.0.1:%d" % port, "secretFile": secret}
        probe = self.path("webhook-probe.yaml")
        with open(probe, "w") as f:
            f.write(yaml_emit({"repository": {"url": "file:///nonexistent", "webhook": block},
                               "verify": {"policy": "none"},
                               "clusters": [{"name": "probe", "kubeconfig": "/dev/null"}]}))
        r = subprocess.run([a.egressd, "clusters", "check", "--config", probe, "--cluster", "nosuch"],
                           capture_output=True, text=True, env=self.env)
        known = "is not in" in r.stdout + r.stderr
        if not known:
            if a.push_via == "webhook":
                raise RuntimeError("--push-via webhook: %s does not accept repository.webhook:\n%s"
                                   % (a.egressd, (r.stdout + r.stderr)[-1000:]))
            return None
        a.webhook_url = "http://127.0.0.1:%d/" % port
        a.webhook_secret_file = secret
        return block

    def host_config(self):
        a = self.args
        cfg = {"repository": {"url": self.url},
               "verify": {"policy": "all", "allowedSigners": self.path("allowed_signers")},
               "clusters": [{"name": c, "kubeconfig": self.sim_of[c].kubeconfig(c)} for c in self.names],
               "sync": {},
               "state": {"dir": self.state, "runtimeDir": self.runtime},
               "ledger": {"key": self.ledger_key},
               "metrics": {"textfile": self.metrics}}
        if a.interval:
            cfg["repository"]["interval"] = a.interval
        if self.webhook:
            cfg["repository"]["webhook"] = self.webhook
        if a.drift_interval:
            cfg["sync"]["driftInterval"] = a.drift_interval
        for kv in a.set:
            k, _, v = kv.partition("=")
            set_path(cfg, k, v)
        if not cfg["sync"]:
            del cfg["sync"]
        self.cfg = cfg
        text = yaml_emit(cfg)
        for path in a.append_yaml:
            with open(path) as f:
                text += f.read().rstrip("\n") + "\n"
        return text

    def effective(self, dotted, default):
        v = get_path(self.cfg, dotted)
        if v is None:
            m = re.search(r"(?m)^%s:\s*(\S+)" % re.escape(dotted.split(".")[-1]),
                          "".join(open(p).read() for p in self.args.append_yaml))
            v = m.group(1) if m else default
        return v

    # -- kube ------------------------------------------------------------------
    def kreq(self, cluster, method, path, body=None):
        sim = self.sim_of[cluster]
        conn = http.client.HTTPSConnection("127.0.0.1", sim.ports[cluster], context=sim._ssl,
                                           timeout=30)
        headers = {"Accept": "application/json", "User-Agent": UA,
                   "Authorization": "Bearer " + sim.token(cluster)}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return resp.status, (json.loads(raw) if raw else None)

    def watch(self, cluster, collection, name, rv, timeout):
        """Open a watch of one object (by name) from resourceVersion rv; returns
        a Watch whose next_event(type) waits for an event of that type."""
        return Watch(self, cluster, collection, name, rv, timeout)

    def log_seqs(self, clusters=None):
        """{cluster: last request-log sequence number} (the /_sim/ calls are
        not logged, so they do not count themselves)."""
        clusters = clusters or self.names

        def one(c):
            return c, self.sim_of[c].control("GET", "requests?since=%d" % (1 << 62), cluster=c)["last"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return dict(pool.map(one, clusters))

    def log_classes(self, clusters, since, until):
        """Requests of these clusters with since < seq <= until, by class."""
        counts = dict((k, 0) for k in COLUMNS)
        for c in clusters:
            items = self.sim_of[c].control("GET", "requests?since=%d" % since[c], cluster=c)["items"]
            for e in items:
                if e["seq"] <= until[c] and e.get("user_agent") != UA:
                    counts[idle.classify(e)] += 1
        return counts

    def sim_cpu(self):
        return sum(tree_cpu(s.proc.pid) for s in self.sims)

    # -- egressd -----------------------------------------------------------------
    def status_json(self):
        """status.json, parsed again only when it was replaced."""
        try:
            m = os.stat(self.status_path).st_mtime_ns
            if m != getattr(self, "_status_mtime", None):
                with open(self.status_path) as f:
                    self._status = json.load(f)
                self._status_mtime = m
            return self._status
        except (OSError, ValueError):
            return None

    def cpu(self):
        return tree_cpu(self.proc.pid)

    def check_alive(self, what):
        if self.proc.poll() is not None:
            raise RuntimeError("egressd exited (%s) %s:\n%s" % (self.proc.returncode, what,
                                                                 self.logs()[-4000:]))

    def close(self):
        if self.proc is not None:
            try:
                self.stop()
            except Exception:   # noqa: BLE001 -- cleanup goes on
                pass
        if self.sock is not None:
            self._stop_reader = True
            self.sock.close()
        if self.git is not None:
            self.git.stop()
        for s in self.sims:
            s.stop()


class Watch(object):
    """A watch of one object by name through the cluster's API server; events
    are read in a thread and time-stamped as they arrive."""

    def __init__(self, bench, cluster, collection, name, rv, timeout):
        sim = bench.sim_of[cluster]
        self.events = []
        self.cv = threading.Condition()
        self.conn = http.client.HTTPSConnection("127.0.0.1", sim.ports[cluster], context=sim._ssl,
                                                timeout=timeout + 30)
        q = urllib.parse.urlencode({"watch": "true", "fieldSelector": "metadata.name=" + name,
                                    "resourceVersion": rv, "timeoutSeconds": int(timeout)})
        self.conn.request("GET", collection + "?" + q, headers={
            "Accept": "application/json", "User-Agent": UA,
            "Authorization": "Bearer " + sim.token(cluster)})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError("watch %s on %s: %s %s" % (collection, cluster, self.resp.status,
                                                           self.resp.read()[:300]))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        try:
            while True:
                data = self.resp.read1(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        ev = json.loads(line)
                        with self.cv:
                            self.events.append((time.monotonic(), ev.get("type")))
                            self.cv.notify_all()
        except Exception:   # noqa: BLE001 -- closed under the reader, or a broken stream
            pass
        with self.cv:
            self.events.append((time.monotonic(), None))
            self.cv.notify_all()

    def next_event(self, etype, deadline):
        """Arrival time of the first event of etype, or None by the deadline."""
        with self.cv:
            while True:
                for t, e in self.events:
                    if e == etype:
                        return t
                if any(e is None for _, e in self.events) or time.monotonic() >= deadline:
                    return None
                self.cv.wait(min(1.0, max(0.01, deadline - time.monotonic())))

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()


# -- phases -------------------------------------------------------------------
def rollout_done(st, commit, n):
    if not st:
        return False
    r = st.get("rollout") or {}
    return (r.get("state") == "complete" and r.get("target") == commit and
            sum(1 for c in st.get("clusters", []) if c.get("phase") == "done" and c.get("applied") == commit) == n)


def first_rollout(b, res):
    a = b.args
    meter = Meter(b)
    saved = None
    if a.nofile:
        saved = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (a.nofile, saved[1]))
    t0 = time.monotonic()
    try:
        b.start()
    finally:
        if saved:
            resource.setrlimit(resource.RLIMIT_NOFILE, saved)
    pid = b.proc.pid
    connects = Connects(pid)
    peak = {"rss_kib": 0, "fds": 0, "threads": 0}
    deadline = t0 + a.rollout_timeout
    st = None
    while True:
        b.check_alive("during the first rollout")
        try:
            s = idle.proc_status(pid)
            peak["rss_kib"] = max(peak["rss_kib"], kib(s, "VmRSS"))
        except (OSError, KeyError):
            pass
        peak["fds"] = max(peak["fds"], fd_count(pid))
        peak["threads"] = max(peak["threads"], thread_count(pid))
        st = b.status_json()
        if rollout_done(st, b.head, a.clusters):
            break
        if time.monotonic() > deadline:
            phases = {}
            for c in (st or {}).get("clusters", []):
                phases[c.get("phase")] = phases.get(c.get("phase"), 0) + 1
            raise RuntimeError("first rollout not complete after %ds: %s; phases %s"
                               % (a.rollout_timeout, (st or {}).get("status"), phases))
        time.sleep(0.5)
    wall = time.monotonic() - t0
    cpu_split = meter.done()
    n_connects = connects.done()
    cpu, sim, git = cpu_split["egressd"], cpu_split["emulators"], cpu_split["git"]
    ready = [t for t, m in b.notifications() if "READY=1" in m]
    seqs = b.log_seqs()
    sample = sorted(set([b.names[0], b.names[len(b.names) // 2], b.names[-1]]))
    classes = b.log_classes(sample, dict.fromkeys(sample, 0), seqs)
    objects = [c.get("objects") or 0 for c in st.get("clusters", [])]
    res["rollout"] = {
        "wall_s": round(wall, 2), "ready_s": round(ready[0] - t0, 2) if ready else None,
        "egressd_cpu_s": round(cpu, 2), "emulator_cpu_s": round(sim, 2), "git_cpu_s": round(git, 2),
        "requests": sum(seqs.values()), "requests_per_cluster_sample": {
            k: round(v / float(len(sample)), 1) for k, v in classes.items()},
        "sample_clusters": sample, "peak_rss_mib": round(peak["rss_kib"] / 1024.0, 1),
        "peak_fds": peak["fds"], "peak_threads": peak["threads"],
        "objects_total": sum(objects), "objects_per_cluster": round(sum(objects) / float(len(objects)), 1),
        "cpu": cpu_split, "egressd_cpu_ms_per_cluster": round(1000.0 * cpu / a.clusters, 1),
        "connects": n_connects,
        "emulator_cpu_ms_per_cluster": round(1000.0 * sim / a.clusters, 1),
    }
    res["objects_per_cluster"] = res["rollout"]["objects_per_cluster"]


def quiet_window(b, res):
    a = b.args
    pid = b.proc.pid
    polls0, syncs0 = idle.metrics(b.metrics)
    seqs_a = b.log_seqs()
    t0 = time.monotonic()
    meter = Meter(b)
    connects = Connects(pid)
    gitreq0 = b.git.requests()
    peak = {"rss_kib": 0, "fds": 0, "threads": 0}
    end = t0 + a.quiet
    while True:
        b.check_alive("during the quiet window")
        s = idle.proc_status(pid)
        peak["rss_kib"] = max(peak["rss_kib"], kib(s, "VmRSS"))
        peak["fds"] = max(peak["fds"], fd_count(pid))
        peak["threads"] = max(peak["threads"], thread_count(pid))
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(1.0, left))
    window = time.monotonic() - t0
    cpu_split = meter.done()
    n_connects = connects.done()
    cpu, sim, git = cpu_split["egressd"], cpu_split["emulators"], cpu_split["git"]
    s = idle.proc_status(pid)
    fds = fd_count(pid)
    kinds = fd_kinds(pid)
    threads = thread_count(pid)
    polls1, syncs1 = idle.metrics(b.metrics)
    gitreq = b.git.requests() - gitreq0
    seqs_b = b.log_seqs()
    sample = res["rollout"]["sample_clusters"]
    classes = b.log_classes(sample, seqs_a, seqs_b)
    reqs = sum(seqs_b[c] - seqs_a[c] for c in b.names)
    res["quiet"] = {
        "window_s": round(window, 1), "egressd_cpu_s": round(cpu, 2),
        "egressd_core_pct": round(100.0 * cpu / window, 3),
        "vmrss_mib": round(kib(s, "VmRSS") / 1024.0, 1), "vmhwm_mib": round(kib(s, "VmHWM") / 1024.0, 1),
        "max_rss_mib": round(peak["rss_kib"] / 1024.0, 1), "fds": fds, "max_fds": peak["fds"],
        "threads": threads, "max_threads": peak["threads"],
        "emulator_cpu_s": round(sim, 2), "emulator_core_pct": round(100.0 * sim / window, 2),
        "git_cpu_s": round(git, 2), "git_requests": gitreq, "polls": polls1 - polls0,
        "drift_checks": syncs1 - syncs0, "api_requests": reqs,
        "api_requests_per_s": round(reqs / window, 1),
        "egressd_ms_per_check": round(1000.0 * cpu / max(1, syncs1 - syncs0), 2),
        "emulator_ms_per_check": round(1000.0 * sim / max(1, syncs1 - syncs0), 2),
        "requests_per_cluster_sample": {k: round(v / float(len(sample)), 1) for k, v in classes.items()},
        "fd_kinds": kinds, "cpu": cpu_split, "connects": n_connects,
        "rss_kib_per_cluster": round(kib(s, "VmRSS") / float(a.clusters), 1),
    }


def drift_samples(b, res):
    a = b.args
    drift_s = parse_duration(str(b.effective("sync.driftInterval", "30s")))
    timeout = 3 * drift_s + 60
    rng = random.Random(a.seed)
    free = list(b.names)
    lock = threading.Lock()
    samples, errors = [], []

    def one(i):
        # a random pause of up to one drift interval: clusters that synced
        # together check together, and samples must not start in step with them
        time.sleep(rng.uniform(0, drift_s))
        with lock:
            c = free.pop(rng.randrange(len(free)))
        try:
            st, lst = b.kreq(c, "GET", "%s/virtualservices?labelSelector=%s" % (VS_API, urllib.parse.quote(MANAGED)))
            if st != 200 or not lst["items"]:
                raise RuntimeError("no managed VirtualService on %s (%s)" % (c, st))
            obj = rng.choice(lst["items"])
            ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
            coll = "%s/namespaces/%s/virtualservices" % (VS_API, ns)
            w = b.watch(c, coll, name, lst["metadata"]["resourceVersion"], timeout)
            try:
                st, _ = b.kreq(c, "DELETE", "%s/%s" % (coll, urllib.parse.quote(name)))
                t0 = time.monotonic()
                if st not in (200, 202):
                    raise RuntimeError("DELETE %s/%s on %s: %s" % (ns, name, c, st))
                t1 = w.next_event("ADDED", t0 + timeout)
            finally:
                w.close()
            if t1 is None:
                raise RuntimeError("%s: VirtualService %s/%s not re-created in %ds" % (c, ns, name, timeout))
            samples.append(round(t1 - t0, 3))
        except Exception as e:   # noqa: BLE001 -- a failed sample is reported, the others go on
            errors.append(str(e))
        finally:
            with lock:
                free.append(c)

    par = max(1, min(a.drift_parallel, a.drift_samples, len(b.names)))
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(par) as pool:
        list(pool.map(one, range(a.drift_samples)))
    res["drift"] = summary(samples, errors, {"drift_interval_s": drift_s, "parallel": par,
                                             "phase_s": round(time.monotonic() - t, 1)})


def summary(samples, errors, extra):
    out = dict(extra)
    out.update({"n": len(samples), "p50_s": pct(samples, 50), "p99_s": pct(samples, 99),
                "max_s": max(samples) if samples else None, "samples_s": sorted(samples),
                "errors": errors[:5], "failed": len(errors)})
    return out


def send_webhook(b, before, after):
    """A GitHub push event for the commit, signed as GitHub signs it."""
    a = b.args
    with open(a.webhook_secret_file, "rb") as f:
        secret = f.read().strip()
    body = json.dumps({
        "ref": "refs/heads/main", "before": before, "after": after, "created": False,
        "deleted": False, "forced": False,
        "repository": {"name": "config-repo", "full_name": "bench/config-repo",
                       "clone_url": b.url, "default_branch": "main"},
        "pusher": {"name": "alice", "email": "alice@example.com"},
        "sender": {"login": "alice"},
        "head_commit": {"id": after, "message": "bench push", "timestamp": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "commits": [{"id": after}]}).encode()
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    u = urllib.parse.urlsplit(a.webhook_url)
    if u.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    try:
        conn.request("POST", (u.path or "/") + ("?" + u.query if u.query else ""), body=body, headers={
            "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench-fleet",
            "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1", "X-Hub-Signature-256": sig})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def push_samples(b, res):
    a = b.args
    interval = str(b.effective("repository.interval", "15s"))
    samples, status_s, complete_s, errors, hooks = [], [], [], [], []
    wave1 = b.canary
    timeout = parse_duration(interval) * 3 + 120
    ns, gw = ("payments", "egress-system/egress-shared") if a.repo == "example" else ("team-0", "egress-0/gw0")
    rng = random.Random(a.seed + 1)
    poll_s = parse_duration(interval)
    for i in range(1, a.push_samples + 1):
        # a random pause of up to one poll interval: the previous rollout ended
        # at a fixed offset from the poll that started it, and a push right
        # after it would always meet the poll cycle at the same phase
        if not a.webhook_url:
            time.sleep(rng.uniform(0, poll_s))
        name = "push-%d" % i
        coll = "/apis/networking.istio.io/v1/namespaces/%s/serviceentries" % ns
        watches = {}
        try:
            for c in wave1:
                st, lst = b.kreq(c, "GET", coll + "?fieldSelector=metadata.name%3D" + name)
                if st != 200:
                    raise RuntimeError("LIST serviceentries on %s: %s" % (c, st))
                watches[c] = b.watch(c, coll, name, lst["metadata"]["resourceVersion"], timeout)
            before = b.head
            b.head = b.commit("bench push %d" % i, files={
                "intents/bench-push-%d.yaml" % i:
                    "apiVersion: egressd.io/v1\nkind: EgressIntent\n"
                    "metadata: {name: %s, namespace: %s}\n"
                    "spec:\n  gateway: %s\n  hosts: [%s.example.com]\n"
                    "  ports:\n    - {number: 443, protocol: TLS}\n" % (name, ns, gw, name)})
            t0 = time.monotonic()
            if a.webhook_url:
                hooks.append(send_webhook(b, before, b.head))
            deadline = t0 + timeout
            got = [w.next_event("ADDED", deadline) for w in watches.values()]
            if any(t is None for t in got):
                raise RuntimeError("push %d: ServiceEntry %s not on every wave-1 cluster in %ds"
                                   % (i, name, timeout))
            samples.append(round(max(got) - t0, 3))
            t_status = None
            while time.monotonic() < deadline + 600:
                b.check_alive("during the push samples")
                st = b.status_json() or {}
                cl = dict((c["name"], c) for c in st.get("clusters", []))
                if t_status is None and all(cl.get(c, {}).get("applied") == b.head for c in wave1):
                    t_status = time.monotonic()
                if rollout_done(st, b.head, a.clusters):
                    complete_s.append(round(time.monotonic() - t0, 2))
                    break
                time.sleep(0.1 if t_status is None else 0.5)
            else:
                raise RuntimeError("push %d: rollout of %s not complete" % (i, b.head[:12]))
            status_s.append(round(t_status - t0, 3))
        except Exception as e:   # noqa: BLE001
            errors.append(str(e))
            break
        finally:
            for w in watches.values():
                w.close()
    res["push"] = summary(samples, errors, {
        "detected_by": ("webhook, GitHub push event (HTTP %s)" % ",".join(sorted(set(map(str, hooks)))))
        if a.webhook_url else "poll, repository.interval %s" % interval,
        "wave1_clusters": len(wave1)})
    res["push"]["status_p50_s"] = pct(status_s, 50)
    res["push"]["status_max_s"] = max(status_s) if status_s else None
    res["push"]["complete_s"] = complete_s


# -- output ---------------------------------------------------------------------
TABLE = ("| clusters | intents | objects/cluster | emulators | first rollout s | egressd CPU s "
         "| API servers CPU s | requests | idle CPU % core | VmRSS / VmHWM MiB | fds | threads "
         "| drift→corrected p50 / p99 / max s | push→wave 1 p50 / p99 / max s |\n"
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def is_str(v):
    return isinstance(v, str)


def fmt(v, spec="%.2f"):
    return "–" if v is None else spec % v


def markdown_row(res):
    r, q = res.get("rollout", {}), res.get("quiet", {})
    d, p = res.get("drift", {}), res.get("push", {})
    return "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s / %s / %s | %s / %s / %s |" % (
        "{:,}".format(res["clusters"]), res["intents"] if is_str(res["intents"]) else "{:,}".format(res["intents"]),
        fmt(res.get("objects_per_cluster"), "%.0f"), res["emulators"], fmt(r.get("wall_s"), "%.1f"),
        fmt(r.get("egressd_cpu_s"), "%.1f"), fmt(r.get("emulator_cpu_s"), "%.1f"),
        "{:,}".format(r["requests"]) if "requests" in r else "–",
        fmt(q.get("egressd_core_pct"), "%.2f"), fmt(q.get("vmrss_mib"), "%.0f"),
        fmt(q.get("vmhwm_mib"), "%.0f"), q.get("max_fds", "–"), q.get("max_threads", "–"),
        fmt(d.get("p50_s")), fmt(d.get("p99_s")), fmt(d.get("max_s")),
        fmt(p.get("p50_s")), fmt(p.get("p99_s")), fmt(p.get("max_s")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--egressd", default=os.path.join(SOURCE, "build", "daemon", "cli", "egressd"))
    ap.add_argument("-n", "--clusters", type=int, default=10, help="emulated clusters (default 10)")
    ap.add_argument("-m", "--intents", type=int, default=100,
                    help="intents in the generated config repo (default 100)")
    ap.add_argument("--repo", choices=("gen", "example"), default="gen",
                    help="gen: bench/render/gen-repo.py with --intents (default); example: "
                         "repo-layout/example (7 intents, 27-30 objects per cluster)")
    ap.add_argument("-p", "--emulators", type=int, default=0,
                    help="kubesim processes (default: 1 up to 20 clusters, else one per 125, at least 2)")
    ap.add_argument("--quiet", type=float, default=60, help="quiet window, seconds (default 60)")
    ap.add_argument("--drift-samples", type=int, default=10, help="drift samples (default 10; 0: skip)")
    ap.add_argument("--drift-parallel", type=int, default=5,
                    help="drift samples at a time, on distinct clusters (default 5)")
    ap.add_argument("--push-samples", type=int, default=5, help="push samples (default 5; 0: skip)")
    ap.add_argument("--interval", help="repository.interval (default: egressd's, 15s)")
    ap.add_argument("--drift-interval", help="sync.driftInterval (default: egressd's, 30s)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="host config field by dotted path, value as YAML (repeatable), "
                         "e.g. sync.requestTimeout=10s or repository.webhook.listen=127.0.0.1:9000")
    ap.add_argument("--append-yaml", action="append", default=[], metavar="FILE",
                    help="YAML appended to the host config as is (new top-level blocks)")
    ap.add_argument("--push-via", choices=("auto", "webhook", "poll"), default="auto",
                    help="how egressd learns of a push: webhook (a repository.webhook block on a loopback "
                         "port, a signed GitHub push event after each commit), poll (repository.interval), "
                         "auto (default): webhook if the egressd binary accepts repository.webhook")
    ap.add_argument("--webhook-url", help="send the signed GitHub push event here instead (a doorbell "
                                          "configured by --set/--append-yaml)")
    ap.add_argument("--webhook-secret-file", help="the webhook's HMAC secret (with --webhook-url)")
    ap.add_argument("--canary", type=int, default=0, help="clusters in wave 1 (default N/100, at least 1)")
    ap.add_argument("--max-parallel", type=int, default=50, help="maxParallel of the prod wave (default 50)")
    ap.add_argument("--bake", default="2s", help="bake of both waves (default 2s)")
    ap.add_argument("--operator-delay", type=float, default=0.5,
                    help="kubesim's IstioMeshGateway Reconciling -> Available delay (default 0.5)")
    ap.add_argument("--emulator-arg", action="append", default=[], help="more kubesim options")
    ap.add_argument("--no-light", action="store_true",
                    help="run kubesim without --light (one polling accept thread per cluster)")
    ap.add_argument("--nofile", type=int, default=0,
                    help="soft RLIMIT_NOFILE for egressd (default: inherited; systemd's default is 1024)")
    ap.add_argument("--rollout-timeout", type=int, default=1200, help="seconds (default 1200)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--workdir", help="keep everything here (default: a temporary directory, removed)")
    ap.add_argument("--label", default="", help="free text recorded in the JSON line")
    a = ap.parse_args()
    if a.clusters < 1 or (a.intents < 1 and a.repo == "gen"):
        sys.exit("bench-fleet: --clusters and --intents must be at least 1")
    if a.webhook_url and not a.webhook_secret_file:
        sys.exit("bench-fleet: --webhook-url needs --webhook-secret-file")
    if a.repo == "example":
        a.intents = "example"
    a.canary = a.canary or max(1, a.clusters // 100)
    a.canary = min(a.canary, a.clusters)
    a.emulators = a.emulators or (1 if a.clusters <= 20 else max(2, int(math.ceil(a.clusters / 125.0))))
    a.emulators = min(a.emulators, a.clusters)
    for path, what in ((a.egressd, "egressd binary"), (idle.GIT_DAEMON, "git daemon (package git)"),
                       ("/usr/bin/ssh-keygen", "ssh-keygen (package openssh-client)"),
                       ("/usr/bin/openssl", "openssl (package openssl)")):
        if not os.access(path, os.X_OK):
            sys.exit("bench-fleet: no %s at %s" % (what, path))
    a.egressd = os.path.abspath(a.egressd)
    os.environ["EGRESSD"] = a.egressd
    work = a.workdir or tempfile.mkdtemp(prefix="egressd-bench-fleet-")
    os.makedirs(work, exist_ok=True)
    res = {"clusters": a.clusters, "intents": a.intents, "emulators": a.emulators, "label": a.label,
           "canary": a.canary, "max_parallel": a.max_parallel, "bake": a.bake,
           "cpus": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().split()[:3],
           "egressd": a.egressd}
    print("# bench-fleet: %d clusters, %s intents, %d kubesim process(es); %d CPUs; load average %s"
          % (a.clusters, a.intents, a.emulators, os.cpu_count(), " ".join(res["loadavg_start"])),
          flush=True)
    b = Bench(a, work)
    t_all = time.monotonic()
    try:
        b.setup()
        res["emulator_start_s"] = round(b.emulator_start_s, 1)
        res["host_config"] = re.sub(r"(?m)^  - name: c\d+\n    kubeconfig: .*\n", "", b.config_text).replace(
            "clusters:\n", "clusters:  # c1..c%d, kubeconfig: <emulator dir>/cN.kubeconfig\n" % a.clusters, 1)
        print("# host config (cluster list elided):\n# " + res["host_config"].rstrip().replace("\n", "\n# "),
              flush=True)
        first_rollout(b, res)
        r = res["rollout"]
        print("# first rollout: %.1f s wall; CPU egressd %.1f s, emulators %.1f s, git %.1f s, driver %.1f s, "
              "other work on the machine %.1f s; %d requests, %s new connections; %.0f objects/cluster; "
              "peak RSS %.0f MiB, fds %d, threads %d"
              % (r["wall_s"], r["egressd_cpu_s"], r["emulator_cpu_s"], r["git_cpu_s"], r["cpu"]["driver"],
                 r["cpu"]["other"], r["requests"], r["connects"], r["objects_per_cluster"], r["peak_rss_mib"],
                 r["peak_fds"], r["peak_threads"]), flush=True)
        if a.quiet > 0:
            quiet_window(b, res)
            q = res["quiet"]
            print("# quiet %.0f s: egressd %.3f %% of a core (%.2f ms per drift check, %d checks), "
                  "VmRSS %.1f MiB, VmHWM %.1f MiB, fds %d, threads %d; emulators %.1f %% of a core, "
                  "%.1f API requests/s, %s new connections; other work on the machine %.1f %% of a core; fds %s"
                  % (q["window_s"], q["egressd_core_pct"], q["egressd_ms_per_check"], q["drift_checks"],
                     q["vmrss_mib"], q["vmhwm_mib"], q["max_fds"], q["max_threads"],
                     q["emulator_core_pct"], q["api_requests_per_s"], q["connects"],
                     100.0 * q["cpu"]["other"] / q["window_s"], q["fd_kinds"]), flush=True)
        if a.drift_samples > 0:
            drift_samples(b, res)
            d = res["drift"]
            print("# drift -> corrected (%d samples, driftInterval %ss): p50 %s s, p99 %s s, max %s s%s"
                  % (d["n"], d["drift_interval_s"], d["p50_s"], d["p99_s"], d["max_s"],
                     "; %d failed: %s" % (d["failed"], d["errors"]) if d["failed"] else ""), flush=True)
        if a.push_samples > 0:
            push_samples(b, res)
            p = res["push"]
            print("# push -> wave 1 (%d samples, %s, %d wave-1 clusters): p50 %s s, p99 %s s, max %s s; "
                  "status.json p50 %s s; push -> rollout complete %s s%s"
                  % (p["n"], p["detected_by"], p["wave1_clusters"], p["p50_s"], p["p99_s"], p["max_s"],
                     p["status_p50_s"], p["complete_s"],
                     "; failed: %s" % p["errors"] if p["failed"] else ""), flush=True)
        st = idle.proc_status(b.proc.pid)
        res["end"] = {"vmrss_mib": round(kib(st, "VmRSS") / 1024.0, 1),
                      "vmhwm_mib": round(kib(st, "VmHWM") / 1024.0, 1), "fds": fd_count(b.proc.pid)}
        res["emulator_rss_mib"] = [round(kib(idle.proc_status(s.proc.pid), "VmRSS") / 1024.0) for s in b.sims]
        log = b.logs()
        res["log_errors"] = len(re.findall(r"(?m)^<[0-3]>", log))
        res["log_error_examples"] = re.findall(r"(?m)^<[0-3]>.*$", log)[:3]
    except Exception as e:   # noqa: BLE001 -- report what was measured
        res["error"] = str(e)[:3000]
        print("# bench-fleet: FAILED: %s" % str(e)[:3000], flush=True)
    finally:
        b.close()
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    res["total_s"] = round(time.monotonic() - t_all, 1)
    print(TABLE)
    print(markdown_row(res))
    print("JSON " + json.dumps(res, sort_keys=True), flush=True)
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
