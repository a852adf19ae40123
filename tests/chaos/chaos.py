#!/usr/bin/python3
"""egressd's fault campaign: `egressd run` against the API-server emulator
(kubesim), a git daemon behind a proxy that can stall mid-pack, a state
directory on a small tmpfs, and a wall clock the campaign steps (libfaketime),
with the daemon SIGKILLed at random moments of its rollouts.

Each round pushes a new signed commit (intents created, changed and removed),
injects a random fault set, maybe SIGKILLs the daemon at a random moment
(while it applies, prunes or appends to the ledger) and restarts it, lifts
the faults, waits until the daemon's status.json says every cluster is in
sync at the head commit (a condition, polled), and then checks the
invariants (docs/reliability.md):

  converged      every cluster in sync at the head commit within the timeout
  live=render    the objects with egressd's labels on each cluster are exactly
                 what `egressd render --cluster C` gives for the head commit
                 (same identities; each rendered spec and label is live)
  deletions      no DELETE of an object rendered for the head commit, none of
                 an object not rendered for the previous head, and the foreign
                 objects (unlabelled, other instance, half-labelled) untouched
  ledger         `egressd ledger verify --pubkey` passes
  ledger=wire    every write the ledger records as done (apply-result object
                 ok, prune deleted, drift reapplied) has a 2xx request for that
                 object in kubesim's request log
  secrets        no cluster token and no part of the ledger private key in the
                 daemon's log, status.json, `egressd status`, state.json, the
                 metrics, the inventory or the ledger

Deterministic from --seed (the random choices; the machine's timing still
decides where exactly a kill lands). Prints a JSON summary with the figures
and exits 1 on any invariant violation.

    tests/chaos/chaos.py --seed 7 --kills 20
    tests/chaos/chaos.py --seed 7 --duration 600

Needs root for the tmpfs (disk faults are skipped otherwise, and the summary
says so), `git daemon`, and libfaketime (Debian package faketime) for the
clock steps (skipped without it).

When you change the daemon's status.json fields or the ledger's record
fields, also touch converged() and check_ledger_wire() here."""

import argparse
import base64
import collections
import errno
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import daemonlib  # noqa: E402
from gitlib import free_port  # noqa: E402
import kubelib  # noqa: E402
from netlib import Listener  # noqa: E402

CLUSTERS = ["canary", "prod-eu", "prod-us"]
FLEET = "example"
MANAGED = "app.kubernetes.io/managed-by=egressd,egressd.io/instance=" + FLEET
# what egressd renders, as (api prefix, plural) for a LIST of each kind
KINDS = {
    "IstioMeshGateway": ("/apis/servicemesh.cisco.com/v1alpha1", "istiomeshgateways"),
    "Gateway": ("/apis/networking.istio.io/v1", "gateways"),
    "ServiceEntry": ("/apis/networking.istio.io/v1", "serviceentries"),
    "DestinationRule": ("/apis/networking.istio.io/v1", "destinationrules"),
    "VirtualService": ("/apis/networking.istio.io/v1", "virtualservices"),
    "Sidecar": ("/apis/networking.istio.io/v1", "sidecars"),
    "AuthorizationPolicy": ("/apis/security.istio.io/v1", "authorizationpolicies"),
}
PLURAL = {k: v[1] for k, v in KINDS.items()}
INTENT_NAMESPACES = ["news", "ci", "analytics", "smm-demo"]
KUBE_VERBS = ["get", "list", "patch", "delete", "*"]
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
CONVERGE_TIMEOUT = 60.0


class Violation(Exception):
    pass


def wait_for(cond, timeout, step=0.05):
    """Poll cond() until it returns something true; returns it, or None at
    the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, math.ceil(p / 100.0 * len(s)) - 1))    # nearest rank
    return round(s[k], 2)


def subset(want, have):
    """want is contained in have: dicts key by key, lists element-wise."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(
            subset(a, b) for a, b in zip(want, have))
    return want == have


def ident(obj):
    m = obj["metadata"]
    return (obj["kind"], m.get("namespace", ""), m["name"])


def ident_str(i):
    return "%s %s/%s" % i


# -- the Git server: git daemon behind a proxy that stalls mid-pack ------------

class StallProxy(Listener):
    """Forwards TCP to the git daemon. While `stall` is set, a connection
    that has sent a "want" line (a fetch) is stalled once the server has sent
    `stall_after` bytes after it: the client sees a pack start and then
    nothing, and must time out. `stalled` counts the connections stalled."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.stall = False
        self.stall_after = 0
        self.stalled = 0
        self.stalled_closed = 0      # stalled connections the client gave up on
        self.lock = threading.Lock()
        super().__init__()

    def serve(self, c):
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream))
        except OSError:
            c.close()
            return
        state = {"want": False, "after": 0, "stalled": False}
        stall, stall_after = self.stall, self.stall_after
        done = threading.Event()

        def client_to_server():
            try:
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    if b"want " in d:
                        state["want"] = True
                    up.sendall(d)
            except OSError:
                pass
            if state["stalled"]:
                with self.lock:
                    self.stalled_closed += 1
            done.set()

        def server_to_client():
            try:
                while not done.is_set():
                    d = up.recv(65536)
                    if not d:
                        break
                    if stall and state["want"]:
                        room = stall_after - state["after"]
                        if len(d) >= room:
                            c.sendall(d[:max(room, 0)])
                            state["stalled"] = True
                            with self.lock:
                                self.stalled += 1
                            done.wait()   # hold the connection open, silent
                            break
                        state["after"] += len(d)
                    c.sendall(d)
            except OSError:
                pass
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=server_to_client, daemon=True)
        t.start()
        client_to_server()
        t.join(5)
        up.close()
        c.close()


# -- the campaign ---------------------------------------------------------------

class Campaign(object):
    def __init__(self, seed, kills=None, duration=None, rounds=None, kill_share=0.7,
                 log=sys.stderr, keep=False, force=()):
        self.seed = seed
        self.rng = random.Random(seed)
        self.want_kills = kills
        self.duration = duration
        self.max_rounds = rounds
        self.kill_share = kill_share
        self.out = log
        self.keep = keep
        self.force = list(force)
        self.round = 0
        self.violations = []
        self.fig = {
            "seed": seed, "rounds": 0, "commits": 0,
            "objects": {"created": 0, "changed": 0, "removed": 0},
            "faults_injected": collections.Counter(), "faults_fired": collections.Counter(),
            "kills": 0, "kills_by_moment": collections.Counter(), "recoveries": 0,
            "restarts_after_exit": 0, "daemon_exits": [], "operator_resumes": 0,
            "git_stalls": 0, "git_stalls_timed_out": 0,
            "disk_faults_reported": 0, "skipped": [],
        }
        self.resumes = []               # halt reasons resumed this round
        self.converge_times = []        # from lifting the faults to in sync
        self.round_times = []           # from the push to in sync
        self.intents = {}               # name -> dict (the chaos intents)
        self.serial = 0
        self.renders = {}               # commit -> {cluster: {ident: obj}}
        self.seq = {c: 0 for c in CLUSTERS}        # request-log position checked so far
        self.log_entries = {c: [] for c in CLUSTERS}
        self.ledger_checked = 0
        self.check_marks = []
        self.clock_offset = 0
        self.last_clock_step = None
        self.mounted = False
        self.d = None
        self.gitd = None
        self.proxy = None

    # -- output ---------------------------------------------------------------
    def say(self, msg):
        print("chaos: round %d: %s" % (self.round, msg), file=self.out, flush=True)

    def violation(self, what, detail):
        v = {"round": self.round, "seed": self.seed, "invariant": what, "detail": detail}
        self.violations.append(v)
        self.say("VIOLATION %s: %s" % (what, detail))

    # -- set-up ---------------------------------------------------------------
    def setup(self):
        # fleet bakes of 1s keep a round short; the rollout rules are the real ones
        self.d = d = daemonlib.Daemon(clusters=CLUSTERS, bake="1s", drift="3s", poll="1s")
        self.sim = d.sim
        # the Git server: git daemon, reached through the stalling proxy
        port = free_port()
        self.gitd_log = open(d.path("git-daemon.log"), "w")
        self.gitd = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + d.tmp,
             "--listen=127.0.0.1", "--port=%d" % port, d.tmp],
            stdout=self.gitd_log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_for(lambda: port_open(port), 10):
            raise RuntimeError("git daemon did not start on port %d" % port)
        self.proxy = StallProxy(port)
        with open(d.config) as f:
            text = f.read()
        text = text.replace("  url: file://%s\n" % d.repo,
                            "  url: git://127.0.0.1:%d/config-repo\n  timeout: 3s\n" % self.proxy.port)
        with open(d.config, "w") as f:
            f.write(text)
        # the state directory on a small tmpfs (ENOSPC, read-only)
        os.makedirs(d.state, mode=0o700)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", d.state],
                           capture_output=True, text=True)
        if p.returncode == 0:
            self.mounted = True
        else:
            self.fig["skipped"].append("disk faults: cannot mount a tmpfs on the state directory "
                                       "(%s); run as root" % p.stderr.strip())
        # the wall clock the daemon sees
        self.clock_file = d.path("clock")
        self.write_clock(0)
        self.faketime = os.path.exists(FAKETIME_LIB)
        if not self.faketime:
            self.fig["skipped"].append("clock steps: %s is missing (apt-get install faketime)"
                                       % FAKETIME_LIB)
        # foreign objects egressd must never touch
        self.foreign = {}
        for c in CLUSTERS:
            self.foreign[c] = self.make_foreign(c)
        # secrets to look for
        self.secrets = [("token of " + c, self.sim.token(c)) for c in CLUSTERS]
        self.secrets += [("readonly token of " + c, self.sim.token(c, readonly=True)) for c in CLUSTERS]
        self.secrets += ledger_key_secrets(d.ledger_key)
        self.head = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        self.renders[self.head] = self.render()
        self.start_daemon()
        t0 = time.monotonic()
        self.wait_converged(self.head)
        self.say("first rollout in sync at %s in %.1fs" % (self.head[:7], time.monotonic() - t0))
        self.check_invariants(None, self.head)

    def make_foreign(self, cluster):
        """Objects that look like egressd's but are not its own."""
        objs = [
            kubelib.virtual_service("chaos-foreign", "payments", hosts=["foreign.example.com"]),
            kubelib.virtual_service("chaos-foreign-other-instance", "ci", hosts=["other.example.com"],
                                    labels={"app.kubernetes.io/managed-by": "egressd",
                                            "egressd.io/instance": "another-fleet"}),
            kubelib.virtual_service("chaos-foreign-half-labelled", "news", hosts=["half.example.com"],
                                    labels={"app.kubernetes.io/managed-by": "egressd"}),
            kubelib.virtual_service("chaos-foreign-instance-only", "analytics",
                                    hosts=["inst.example.com"], labels={"egressd.io/instance": FLEET}),
        ]
        out = {}
        for o in objs:
            st, body = self.sim.request("POST", kubelib.resource_path(o, collection=True) +
                                        "?fieldManager=someone-else", o, cluster=cluster)
            if st != 201:
                raise RuntimeError("cannot create the foreign %s on %s: %s %s"
                                   % (o["metadata"]["name"], cluster, st, body))
            out[kubelib.resource_path(o)] = (body["metadata"]["uid"], body["metadata"]["resourceVersion"])
        return out

    def daemon_env(self):
        if not self.faketime:
            return {}
        return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": self.clock_file,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "DONT_FAKE_MONOTONIC": "1", "NO_FAKE_STAT": "1"}

    def write_clock(self, offset):
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+ds\n" % offset)
        os.rename(tmp, self.clock_file)
        self.clock_offset = offset

    def start_daemon(self):
        self.d.start(extra_env=self.daemon_env())

    def running(self):
        return self.d.proc is not None and self.d.proc.poll() is None

    def reap(self):
        """Forget an exited daemon; returns its exit status."""
        rc = self.d.proc.wait()
        self.d.proc = None
        self.d.log.close()
        return rc

    def sigkill(self):
        self.d.proc.send_signal(signal.SIGKILL)
        self.reap()

    # -- the config repo ------------------------------------------------------
    def intent_yaml(self, name, spec):
        ports = ", ".join("{number: %d, protocol: %s}" % p for p in spec["ports"])
        text = ("apiVersion: egressd.io/v1\nkind: EgressIntent\n"
                "metadata: {name: %s, namespace: %s}\n"
                "spec:\n  gateway: egress-system/egress-shared\n  hosts: [%s]\n  ports: [%s]\n"
                % (name, spec["namespace"], ", ".join(spec["hosts"]), ports))
        if spec.get("clusters"):
            text += "  clusters: {matchLabels: {%s}}\n" % spec["clusters"]
        return text

    def new_spec(self, name):
        rng = self.rng
        self.serial += 1
        hosts = ["h%d-%d.%s.chaos.example.com" % (self.serial, k, name) for k in range(rng.randint(1, 2))]
        ports = rng.choice([[(80, "HTTP")], [(443, "TLS")], [(443, "HTTPS")], [(80, "HTTP"), (443, "TLS")]])
        return {"namespace": rng.choice(INTENT_NAMESPACES), "hosts": hosts, "ports": ports,
                "clusters": rng.choice([None, None, "env: prod", "region: eu"])}

    def push_commit(self):
        """A new signed commit that creates, changes and/or removes intents."""
        rng = self.rng
        files, remove, what = {}, [], []
        names = sorted(self.intents)
        n_add = rng.randint(0, 2) if len(names) < 8 else 0
        n_change = rng.randint(0, 1) if names else 0
        n_remove = rng.randint(0, 1) if len(names) >= 2 else 0
        if n_add + n_change + n_remove == 0:
            n_add = 1
        for name in rng.sample(names, n_remove):
            remove.append("intents/chaos-%s.yaml" % name)
            del self.intents[name]
            what.append("-" + name)
            self.fig["objects"]["removed"] += 1
        names = sorted(self.intents)
        for name in rng.sample(names, min(n_change, len(names))):
            spec = self.intents[name]
            change = rng.choice(["hosts", "ports", "clusters"])
            fresh = self.new_spec(name)
            spec[change] = fresh[change]
            files["intents/chaos-%s.yaml" % name] = self.intent_yaml(name, spec)
            what.append("~%s.%s" % (name, change))
            self.fig["objects"]["changed"] += 1
        for _ in range(n_add):
            self.serial += 1
            name = "c%d" % self.serial
            self.intents[name] = self.new_spec(name)
            files["intents/chaos-%s.yaml" % name] = self.intent_yaml(name, self.intents[name])
            what.append("+" + name)
            self.fig["objects"]["created"] += 1
        head = self.d.commit("chaos round %d: %s" % (self.round, " ".join(what)), files=files, remove=remove)
        self.fig["commits"] += 1
        self.renders[head] = self.render()
        return head, what

    def render(self):
        """{cluster: {ident: object}} of the config repo's working tree."""
        out = {}
        for c in CLUSTERS:
            p = self.d.run([kubelib.egressd_binary(), "render", "--cluster", c, "--istio-api", "v1",
                            "-o", "json", self.d.repo], check=False)
            if p.returncode != 0:
                raise RuntimeError("the campaign made a commit that does not render for %s:\n%s"
                                   % (c, p.stderr))
            out[c] = {ident(o): o for o in json.loads(p.stdout)["items"]}
        return out

    # -- faults ---------------------------------------------------------------
    def pick_faults(self):
        """A random fault set: a list of (kind, how)."""
        rng = self.rng
        faults = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            kind = rng.choice(["429", "500", "503", "504", "reset", "latency", "unreachable"])
            cluster = rng.choice(CLUSTERS)
            down = {how["cluster"] for k, how in faults if k.startswith("unreachable")}
            if kind == "unreachable" and (cluster in down or len(down | {cluster}) == len(CLUSTERS)):
                # one outage per cluster (kubesim does not reopen a refusing
                # listener switched to "drop"), and one cluster stays
                # reachable, to restore the others through
                kind = "latency"
            if kind == "unreachable":
                faults.append(("unreachable-" + rng.choice(["refuse", "drop"]),
                               {"cluster": cluster, "seconds": rng.uniform(1.0, 8.0)}))
                continue
            rule = {"verb": rng.choice(KUBE_VERBS)}
            if kind == "429":
                rule.update(status=429, retry_after=rng.choice([0, 1, 2]))
                if rng.random() < 0.3:
                    rule["body"] = "apf"
            elif kind in ("500", "503", "504"):
                rule["status"] = int(kind)
                if kind == "503" and rng.random() < 0.5:
                    rule["retry_after"] = 1
            elif kind == "reset":
                rule.update(reset=True, reset_after_bytes=rng.randint(0, 300))
            else:
                rule["latency_ms"] = rng.randint(200, 3000)
            if rng.random() < 0.4:
                rule["share"] = 0.5
            if rng.random() < 0.7:
                rule["count"] = rng.randint(1, 6)    # else: until lifted
            faults.append(("%s-%s" % (kind, rule["verb"].replace("*", "any")), {"cluster": cluster, "rule": rule}))
        for kind in self.force:
            faults.append(self.forced(kind))
        r = rng.random()
        if self.force:
            r = 1.0
        if r < 0.10:
            faults.append(("git-stall", {"after": rng.randint(0, 64)}))
        elif r < 0.17 and self.mounted:
            faults.append(("disk-full", {"when": rng.choice(["before-fetch", "mid-rollout"])}))
        elif r < 0.22 and self.mounted:
            faults.append(("disk-readonly", {}))
        elif r < 0.30 and self.faketime:
            steps = [o for o in (0, 600, 3600, 86400) if o != self.clock_offset]
            faults.append(("clock-step", {"offset": rng.choice(steps)}))
        return faults

    def forced(self, kind):
        """A fault of --force-fault KIND (to reproduce a finding)."""
        rng = self.rng
        if kind == "clock-step":
            steps = [o for o in (0, 600, 3600, 86400) if o != self.clock_offset]
            return (kind, {"offset": rng.choice(steps)})
        if kind == "disk-full":
            return (kind, {"when": rng.choice(["before-fetch", "mid-rollout"])})
        if kind == "clock-step:back":
            # a day back while a cluster bakes (from +1d, stepped to first when at +0)
            return ("clock-step", {"offset": 0, "pre": 86400 if self.clock_offset == 0 else None})
        if kind in ("disk-full:before-fetch", "disk-full:mid-rollout"):
            return ("disk-full", {"when": kind.split(":")[1]})
        if kind == "git-stall":
            return (kind, {"after": rng.randint(0, 64)})
        if kind == "disk-readonly":
            return (kind, {})
        raise SystemExit("chaos: --force-fault: unknown kind %r (clock-step, disk-full, disk-readonly, "
                         "git-stall)" % kind)

    def inject(self, faults):
        state = {"rules": [], "unreachable": [], "disk": None}
        # outages last: a refusing cluster no longer answers /_sim/faults
        for kind, how in sorted(faults, key=lambda f: f[0].startswith("unreachable")):
            self.fig["faults_injected"][kind] += 1
            if "rule" in how:
                rid = self.sim.add_fault(how["cluster"], **how["rule"])
                state["rules"].append((how["cluster"], rid, kind))
            elif kind.startswith("unreachable"):
                mode = kind.split("-")[1]
                down = {h["cluster"] for k, h in faults if k.startswith("unreachable")}
                via = [c for c in CLUSTERS if c not in down][0]
                self.sim.unreachable(how["cluster"], mode, via=via)
                state["unreachable"].append((how["cluster"], via, how["seconds"]))
            elif kind == "git-stall":
                self.proxy.stall_after = how["after"]
                self.proxy.stall = True
                state["stalled_before"] = self.proxy.stalled
                state["stall_closed_before"] = self.proxy.stalled_closed
            elif kind == "disk-full":
                state["disk"] = how["when"]
            elif kind == "disk-readonly":
                state["disk"] = "readonly"
            elif kind == "clock-step":
                if how.get("pre") is not None:
                    self.write_clock(how["pre"])
                state["clock"] = how["offset"]
        return state

    def fill_disk(self):
        path = os.path.join(self.d.state, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                chunk = b"\0" * size
                while True:
                    try:
                        os.write(fd, chunk)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def free_disk(self):
        try:
            os.unlink(os.path.join(self.d.state, "filler"))
        except FileNotFoundError:
            pass

    def remount(self, mode):
        return subprocess.run(["mount", "-o", "remount," + mode, self.d.state], capture_output=True, text=True)

    def fault_window(self, state, head, prev):
        """Let the faults act: until every rule fired once, a cluster's outage
        lasted its time, the daemon reported the disk fault, a fetch stalled
        and timed out; each bounded."""
        t0 = time.monotonic()
        if "clock" in state:
            # step the wall clock while a cluster bakes (bake deadlines are
            # where wall-clock time matters most), or after 20s
            baking = wait_for(lambda: any(c.get("phase") == "baking" for c in
                                          (self.status_field("clusters") or [])), 20)
            self.last_clock_step = "the daemon's wall clock was stepped %+ds -> %+ds%s in round %d" % (
                self.clock_offset, state["clock"], " while a cluster baked" if baking else "", self.round)
            self.say("clock step %+ds -> %+ds%s" % (self.clock_offset, state["clock"],
                                                    " while baking" if baking else ""))
            self.write_clock(state["clock"])
        if state["disk"] == "mid-rollout":
            # fill the disk once the daemon has taken the commit in
            wait_for(lambda: self.status_field("target", "commit") == head or not self.running(), 20)
            self.fill_disk()
        elif state["disk"] == "before-fetch":
            self.fill_disk()
        elif state["disk"] == "readonly":
            p = self.remount("ro")
            if p.returncode != 0:
                # files open for writing (the ledger lock) keep a mount from
                # going read-only: make it so across a restart instead
                self.say("read-only while running refused (%s): at a restart" % p.stderr.strip())
                if self.running():
                    self.sigkill()
                if self.remount("ro").returncode != 0:
                    raise RuntimeError("cannot remount %s read-only" % self.d.state)
                self.start_daemon()
        if state["disk"]:
            needle = "No space left on device" if state["disk"] != "readonly" else "Read-only file system"
            reported = wait_for(lambda: needle in self.published() or None, 15, 0.2)
            if reported:
                self.fig["disk_faults_reported"] += 1
            else:
                self.violation("disk fault reported", "the state directory was %s for 15s and neither the "
                               "log, status.json nor `egressd status` said %r"
                               % ("full" if needle.startswith("No space") else "read-only", needle))
            # the last good state is kept: state.json is whole and names a commit we pushed
            try:
                with open(os.path.join(self.d.state, "state.json")) as f:
                    st = json.load(f)
                if st.get("target") not in (head, prev):
                    self.violation("last good state", "state.json names %r while the disk was %s"
                                   % (st.get("target"), state["disk"]))
            except (OSError, ValueError) as e:
                self.violation("last good state", "state.json unreadable while the disk was %s: %s"
                               % (state["disk"], e))
        for cluster, via, seconds in state["unreachable"]:
            left = seconds - (time.monotonic() - t0)
            if left > 0:
                time.sleep(left)    # the outage's length is the fault itself
        if state["rules"]:
            def all_fired():
                for cluster, rid, _ in state["rules"]:
                    fs = self.sim_control(cluster, "faults")["faults"]
                    if any(f["id"] == rid and f["fired"] == 0 for f in fs):
                        return False
                return True
            wait_for(all_fired, self.rng.uniform(2.0, 6.0), 0.2)
        if "stalled_before" in state:
            stalled = wait_for(lambda: self.proxy.stalled_closed > state["stall_closed_before"], 20, 0.1)
            if self.proxy.stalled > state["stalled_before"]:
                self.fig["git_stalls"] += 1
            if stalled:
                self.fig["git_stalls_timed_out"] += 1
            elif self.proxy.stalled > state["stalled_before"]:
                self.violation("git stall", "a fetch stalled mid-pack and was not given up in 20s "
                               "(repository.timeout is 3s)")

    def lift(self, state):
        for cluster, via, _ in state["unreachable"]:
            self.sim.clear_faults(cluster, via=via)
            self.fig["faults_fired"]["unreachable"] += 1
        for cluster, via, _ in state["unreachable"]:
            # kubesim opens a refusing cluster's listener again in the background
            if not wait_for(lambda: port_open(self.sim.ports[cluster]), 10):
                raise RuntimeError("cluster %s still refuses connections 10s after its fault was lifted"
                                   % cluster)
        for cluster, rid, kind in state["rules"]:
            for f in self.sim.faults(cluster)["faults"]:
                if f["id"] == rid:
                    self.fig["faults_fired"][kind] += f["fired"]
        for c in CLUSTERS:
            self.sim.clear_faults(c)
        self.proxy.stall = False
        if state["disk"] == "readonly":
            if self.remount("rw").returncode != 0:
                raise RuntimeError("cannot remount %s read-write" % self.d.state)
        elif state["disk"]:
            self.free_disk()

    # -- kills ----------------------------------------------------------------
    def kill_at_random_moment(self, head, removes):
        """SIGKILL the daemon while it applies, prunes or writes the ledger,
        or after a random delay; returns the moment's name."""
        rng = self.rng
        moment = rng.choice(["apply", "apply", "ledger", "ledger", "timer"] + (["prune"] * 2 if removes else []))
        ledger = os.path.join(self.d.state, "ledger", "ledger.jsonl")
        try:
            size0 = os.path.getsize(ledger)
        except OSError:
            size0 = 0
        marks = {c: self.sim_control(c, "requests?since=0")["last"] for c in CLUSTERS}

        def seen(method):
            def cond():
                for c in CLUSTERS:
                    items = self.sim_control(c, "requests?since=%d" % marks[c])["items"]
                    if any(e["method"] == method and (e.get("user_agent") or "").startswith("egressd")
                           for e in items):
                        return True
                return False
            return cond
        if moment == "apply":
            hit = wait_for(seen("PATCH"), 10, 0.02)
        elif moment == "prune":
            hit = wait_for(seen("DELETE"), 10, 0.02)
        elif moment == "ledger":
            hit = wait_for(lambda: os.path.exists(ledger) and os.path.getsize(ledger) > size0, 10, 0.005)
        else:
            hit = True
        if not self.running():
            return None
        time.sleep(rng.uniform(0, 0.05 if moment != "timer" else 3.0))  # where in it the kill lands
        if not self.running():
            return None
        self.sigkill()
        moment = moment if hit else moment + " (not seen in 10s)"
        self.fig["kills"] += 1
        self.fig["kills_by_moment"][moment] += 1
        return moment

    def sim_control(self, cluster, what):
        """GET kubesim's control API for a cluster, through another one when
        it refuses connections or drops them."""
        last = None
        for via in [cluster] + [c for c in CLUSTERS if c != cluster]:
            try:
                if via == cluster:
                    return self.sim.control("GET", what, cluster=cluster)
                sep = "&" if "?" in what else "?"
                return self.sim.control("GET", "%s%scluster=%s" % (what, sep, cluster), cluster=via)
            except (OSError, RuntimeError) as e:
                last = e
        raise RuntimeError("kubesim's control API answers on no cluster: %s" % last)

    # -- convergence ----------------------------------------------------------
    def status_json(self):
        try:
            with open(os.path.join(self.d.runtime, "status.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def status_field(self, *keys):
        st = self.status_json()
        for k in keys:
            if not isinstance(st, dict):
                return None
            st = st.get(k)
        return st

    def converged(self, head):
        st = self.status_json()
        if not st or st.get("state") != "running" or not self.running():
            return False
        if (st.get("target") or {}).get("commit") != head:
            return False
        ro = st.get("rollout") or {}
        if ro.get("target") != head or ro.get("state") != "complete":
            return False
        for c in st.get("clusters", []):
            if (c.get("phase") != "done" or c.get("applied") != head or c.get("lastOutcome") != "ok"
                    or c.get("health") != "healthy" or c.get("syncing")):
                return False
        return len(st.get("clusters", [])) == len(CLUSTERS) and st.get("status", "").startswith(
            "in sync: %d/%d clusters at %s" % (len(CLUSTERS), len(CLUSTERS), head[:7]))

    def wait_converged(self, head, timeout=CONVERGE_TIMEOUT):
        """Wait until in sync at head: restart a daemon that exited, resume a
        halted rollout (what an operator does once the cause is gone)."""
        deadline = time.monotonic() + timeout
        last_resume = 0.0
        while time.monotonic() < deadline:
            if self.converged(head):
                return True
            if not self.running():
                if self.d.proc is not None:
                    rc = self.reap()
                    tail = self.d.logs().splitlines()[-3:]
                    self.fig["daemon_exits"].append({"round": self.round, "status": rc, "log": tail})
                    self.say("the daemon exited (%s): %s" % (rc, tail))
                self.fig["restarts_after_exit"] += 1
                self.start_daemon()
            ro = self.status_field("rollout") or {}
            if (ro.get("state") == "halted" and ro.get("target") == head
                    and time.monotonic() - last_resume > 3):
                p = self.d.run([kubelib.egressd_binary(), "rollout", "resume", "--runtime-dir",
                                self.d.runtime], check=False)
                last_resume = time.monotonic()
                if p.returncode == 0:
                    self.fig["operator_resumes"] += 1
                    self.resumes.append(ro.get("haltReason") or "")
            time.sleep(0.1)
        return False

    # -- invariants -----------------------------------------------------------
    def fetch_log(self):
        for c in CLUSTERS:
            items = self.sim.requests(c, since=self.seq[c])
            if items:
                self.seq[c] = max(e["seq"] for e in items)
            self.log_entries[c].extend(e for e in items if (e.get("user_agent") or "").startswith("egressd"))

    def check_invariants(self, prev, head):
        # the request log as of the check before the last one: the writes of a
        # record that is new since the last check came after it (its intent
        # was, at the earliest, new at the last check)
        self.check_marks = (self.check_marks + [dict(self.seq)])[-2:]
        self.fetch_log()
        want = self.renders[head]
        for c in CLUSTERS:
            live = {}
            for kind, (api, plural) in KINDS.items():
                st, body = self.sim.request("GET", "%s/%s?labelSelector=%s" % (
                    api, plural, MANAGED.replace("/", "%2F").replace(",", "%2C").replace("=", "%3D")), cluster=c)
                if st != 200:
                    raise RuntimeError("LIST %s on %s: %s %s" % (plural, c, st, body))
                for o in body["items"]:
                    o.setdefault("kind", kind)
                    live[ident(o)] = o
            missing = sorted(set(want[c]) - set(live))
            extra = sorted(set(live) - set(want[c]))
            if missing:
                self.violation("live=render", "%s: %d rendered object(s) missing at %s: %s"
                               % (c, len(missing), head[:12], ", ".join(map(ident_str, missing[:5]))))
            if extra:
                self.violation("live=render", "%s: %d object(s) with egressd's labels not rendered for %s: %s"
                               % (c, len(extra), head[:12], ", ".join(map(ident_str, extra[:5]))))
            for i, o in want[c].items():
                lo = live.get(i)
                if lo is None:
                    continue
                if not subset(o.get("spec"), lo.get("spec")) or not subset(
                        o["metadata"].get("labels", {}), lo["metadata"].get("labels", {})):
                    self.violation("live=render", "%s: %s differs from the render of %s: spec %s, live %s"
                                   % (c, ident_str(i), head[:12], json.dumps(o.get("spec"))[:300],
                                      json.dumps(lo.get("spec"))[:300]))
            # foreign objects: there, unchanged, never written by egressd
            for path, (uid, rv) in self.foreign[c].items():
                st, body = self.sim.request("GET", path, cluster=c)
                if st != 200 or body["metadata"]["uid"] != uid or body["metadata"]["resourceVersion"] != rv:
                    self.violation("deletions", "%s: the foreign object %s was deleted or changed (%s)"
                                   % (c, path, st))
            # every DELETE this round: of an object the new head no longer renders
            # and the previous head did
            for e in self.log_entries[c]:
                if e["method"] != "DELETE" or not 200 <= e["status"] < 300 or e.get("_round_checked"):
                    continue
                e["_round_checked"] = True
                target = self.ident_of_path(e["path"])
                if e["path"] in self.foreign[c]:
                    self.violation("deletions", "%s: egressd deleted the foreign %s" % (c, e["path"]))
                elif target in want[c]:
                    self.violation("deletions", "%s: wrong deletion of %s (seq %d), which %s renders"
                                   % (c, ident_str(target), e["seq"], head[:12]))
                elif prev is not None and target not in self.renders[prev][c]:
                    self.violation("deletions", "%s: deletion of %s (seq %d), which the previous head %s "
                                   "did not render either" % (c, ident_str(target), e["seq"], prev[:12]))
            for e in self.log_entries[c]:
                if e["method"] in ("PATCH", "PUT", "DELETE") and e["path"] in self.foreign[c]:
                    self.violation("deletions", "%s: egressd wrote to the foreign %s: %s %s"
                                   % (c, e["path"], e["method"], e["status"]))
        self.check_ledger()
        self.check_secrets()

    def ident_of_path(self, path):
        m = re.search(r"/namespaces/([^/]+)/([^/]+)/([^/]+)$", path)
        if not m:
            return ("?", "", path)
        kind = {v: k for k, v in PLURAL.items()}.get(m.group(2), m.group(2))
        return (kind, m.group(1), m.group(3))

    def check_ledger(self):
        d = self.d
        p = d.run([kubelib.egressd_binary(), "ledger", "verify", "--dir", os.path.join(d.state, "ledger"),
                   "--pubkey", d.ledger_key + ".pub"], check=False)
        if p.returncode != 0:
            self.violation("ledger", "egressd ledger verify exit %d:\n%s%s" % (p.returncode, p.stdout, p.stderr))
        records = d.ledger_if_any()
        for r in records[self.ledger_checked:]:
            done = []
            if r["type"] == "apply-result":
                done = [o for o in r.get("objects", []) if o.get("outcome") == "ok"
                        and o.get("action") in ("create", "update", "delete")]
            elif r["type"] == "prune":
                done = [dict(o, action="delete") for o in r.get("objects", []) if o.get("outcome") == "deleted"]
            elif r["type"] == "drift":
                done = [dict(o, action="update") for o in r.get("objects", []) if o.get("action") == "reapplied"]
            for o in done:
                if not self.wire_has(r["cluster"], o):
                    self.violation("ledger=wire", "record #%d (%s, %s) says %s %s %s/%s was done, but kubesim "
                                   "logged no 2xx %s for it" % (
                                       r["index"], r["type"], r["cluster"], o["action"], o["kind"],
                                       o.get("namespace", ""), o["name"],
                                       "DELETE" if o["action"] == "delete" else "PATCH/POST"))
        self.ledger_checked = len(records)

    def wire_has(self, cluster, o):
        plural = PLURAL.get(o["kind"], o["kind"].lower() + "s")
        ns = o.get("namespace")
        suffix = ("/namespaces/%s/%s/%s" % (ns, plural, o["name"])) if ns else ("/%s/%s" % (plural, o["name"]))
        coll = ("/namespaces/%s/%s" % (ns, plural)) if ns else "/" + plural
        since = self.check_marks[0][cluster] if self.check_marks else 0
        for e in self.log_entries[cluster]:
            if e["seq"] <= since or not 200 <= e["status"] < 300:
                continue
            if o["action"] == "delete":
                if e["method"] == "DELETE" and e["path"].endswith(suffix):
                    return True
            elif (e["method"] in ("PATCH", "PUT") and e["path"].endswith(suffix)) or (
                    e["method"] == "POST" and e["path"].endswith(coll)):
                return True
        return False

    def published(self):
        """Everything the daemon publishes, as one text."""
        d = self.d
        texts = []
        for path in [d.path("daemon.log"), os.path.join(d.runtime, "status.json"), d.metrics,
                     os.path.join(d.state, "state.json"), os.path.join(d.state, "ledger", "ledger.jsonl")]:
            try:
                with open(path, errors="replace") as f:
                    texts.append(f.read())
            except OSError:
                pass
        inv = os.path.join(d.state, "inventory")
        if os.path.isdir(inv):
            for name in os.listdir(inv):
                try:
                    with open(os.path.join(inv, name), errors="replace") as f:
                        texts.append(f.read())
                except OSError:
                    pass
        for fmt in ("text", "json"):
            p = d.run([kubelib.egressd_binary(), "status", "-o", fmt, "--runtime-dir", d.runtime], check=False)
            texts.append(p.stdout + p.stderr)
        return "\n".join(texts)

    def check_secrets(self):
        text = self.published()
        for what, secret in self.secrets:
            if secret and secret in text:
                self.violation("secrets", "the %s appears in what the daemon published" % what)

    # -- rounds ---------------------------------------------------------------
    def one_round(self):
        self.round += 1
        self.resumes = []
        log_mark = len(self.d.logs())
        prev = self.head
        t_push = time.monotonic()
        head, what = self.push_commit()
        faults = self.pick_faults()
        self.say("commit %s (%s); faults %s" % (head[:7], " ".join(what), [k for k, _ in faults]))
        state = self.inject(faults)
        moment = None
        kill = self.rng.random() < self.kill_share
        removes = any(set(self.renders[prev][c]) - set(self.renders[head][c]) for c in CLUSTERS)
        # a stalled Git server or a full disk before the fetch keeps the commit
        # from the clusters until lifted: the kill then comes after the lift
        late = any(k == "git-stall" or how.get("when") == "before-fetch" for k, how in faults)
        if late:
            self.fault_window(state, head, prev)
            self.lift(state)
        if kill and self.running():
            moment = self.kill_at_random_moment(head, removes)
            if moment:
                self.say("SIGKILL while: %s" % moment)
                self.start_daemon()
        if not late:
            self.fault_window(state, head, prev)
            self.lift(state)
        t_lift = time.monotonic()
        ok = self.wait_converged(head)
        if not ok:
            st = self.status_json() or {}
            self.violation("converged", "not in sync at %s %.0fs after the faults were lifted; STATUS %r; "
                           "clusters %s%s" % (head[:12], CONVERGE_TIMEOUT, st.get("status"),
                                              [(c.get("name"), c.get("phase"), (c.get("applied") or "")[:7],
                                                c.get("lastError")) for c in st.get("clusters", [])],
                                              "; " + self.last_clock_step if self.last_clock_step else ""))
            # get the campaign going again, to find what else there is
            if self.clock_offset != 86400 and self.faketime:
                self.write_clock(86400)       # deadlines kept in wall-clock time pass
            ok = self.wait_converged(head, 30)
            if not ok and self.running():
                self.sigkill()
                self.start_daemon()
                ok = self.wait_converged(head, 60)
            if not ok:
                self.head = head
                raise Violation("round %d: not in sync at %s even after a restart; stopping" % (self.round, head))
        else:
            self.converge_times.append(time.monotonic() - t_lift)
            self.round_times.append(time.monotonic() - t_push)
            if moment:
                self.fig["recoveries"] += 1
        self.head = head
        if state["disk"] and self.resumes:
            # space came back, but the rollout stayed halted until an operator resumed it
            lines = [l for l in self.d.logs()[log_mark:].splitlines()
                     if "cannot record the plan in the ledger" in l or "halted" in l]
            if (any("the plan was not accepted" in r for r in self.resumes)
                    and any("cannot record the plan in the ledger" in l for l in lines)):
                self.violation("disk recovery", "the state directory was %s; the rollout of %s halted (%s) and "
                               "stayed halted after the disk was %s, until `egressd rollout resume`; the "
                               "daemon's log: %s" % (
                                   "full" if state["disk"] != "readonly" else "read-only", head[:12],
                                   "; ".join(self.resumes), "freed" if state["disk"] != "readonly"
                                   else "writable again", " | ".join(l[:200] for l in lines[:4])))
        self.check_invariants(prev, head)
        self.fig["rounds"] = self.round

    def run(self):
        t0 = time.monotonic()
        try:
            self.setup()
            while True:
                if self.want_kills is not None and self.fig["kills"] >= self.want_kills:
                    break
                if self.duration is not None and time.monotonic() - t0 >= self.duration:
                    break
                if self.max_rounds is not None and self.round >= self.max_rounds:
                    break
                self.one_round()
        except Violation as e:
            self.say(str(e))
        except Exception:
            # a problem of the campaign itself: the figures so far still count
            self.fig["harness_error"] = traceback.format_exc()
            self.say("campaign error:\n" + self.fig["harness_error"])
        finally:
            self.fig["seconds"] = round(time.monotonic() - t0, 1)
            self.teardown()
        return self.summary()

    def selftest(self):
        """Sabotage what the invariants guard, behind the daemon's back, and
        check that each check reports it (so that a campaign without
        violations means something). Returns the problems, [] when every
        sabotage was reported."""
        problems = []
        try:
            self.setup()
            self.d.stop()
            self.fetch_log()
            before = len(self.violations)
            c = CLUSTERS[0]
            want = self.renders[self.head][c]
            victim = sorted(i for i in want if i[0] == "VirtualService")[0]
            obj = want[victim]
            # a DELETE of a rendered object, sent as egressd would
            st = self.raw_request(c, "DELETE", kubelib.resource_path(obj), "egressd/selftest")
            if st != 200:
                problems.append("cannot delete %s: %s" % (ident_str(victim), st))
            # a DELETE of a foreign object
            foreign = sorted(self.foreign[c])[0]
            self.raw_request(c, "DELETE", foreign, "egressd/selftest")
            # an object with egressd's labels that nothing renders
            stray = kubelib.virtual_service("chaos-stray", "news", hosts=["stray.example.com"],
                                            labels={"app.kubernetes.io/managed-by": "egressd",
                                                    "egressd.io/instance": FLEET})
            self.sim.request("POST", kubelib.resource_path(stray, collection=True), stray, cluster=c)
            # a ledger record claiming a write that never happened
            path = os.path.join(self.d.state, "ledger", "ledger.jsonl")
            with open(path) as f:
                lines = f.read().splitlines(True)
            for k, line in enumerate(lines):
                r = json.loads(line)
                if r["type"] == "apply-result" and any(o.get("outcome") == "ok" for o in r["objects"]):
                    o = next(o for o in r["objects"] if o.get("outcome") == "ok")
                    o["action"], o["name"] = "create", "never-written"
                    lines[k] = json.dumps(r, separators=(",", ":")) + "\n"
                    break
            with open(path, "w") as f:
                f.writelines(lines)
            self.ledger_checked = 0
            # a secret in the log
            with open(self.d.path("daemon.log"), "a") as f:
                f.write("<7>debug: Authorization: Bearer %s\n" % self.sim.token(CLUSTERS[1]))
            self.round = 1
            self.check_invariants(self.head, self.head)
            got = self.violations[before:]
            expect = {
                "wrong deletion": lambda v: v["invariant"] == "deletions" and "wrong deletion of %s"
                % ident_str(victim) in v["detail"],
                "missing object": lambda v: v["invariant"] == "live=render" and "missing" in v["detail"]
                and ident_str(victim) in v["detail"],
                "foreign deleted": lambda v: v["invariant"] == "deletions" and foreign in v["detail"],
                "stray object": lambda v: v["invariant"] == "live=render" and "chaos-stray" in v["detail"],
                "ledger verify": lambda v: v["invariant"] == "ledger" and "verify" in v["detail"],
                "ledger=wire": lambda v: v["invariant"] == "ledger=wire" and "never-written" in v["detail"],
                "secret": lambda v: v["invariant"] == "secrets" and "token of %s" % CLUSTERS[1] in v["detail"],
            }
            for name, match in expect.items():
                if not any(match(v) for v in got):
                    problems.append("the %s sabotage was not reported" % name)
        finally:
            self.teardown()
        return problems

    def raw_request(self, cluster, method, path, agent):
        import http.client
        conn = http.client.HTTPSConnection("127.0.0.1", self.sim.ports[cluster], context=self.sim._ssl,
                                           timeout=30)
        try:
            conn.request(method, path, headers={"User-Agent": agent, "Accept": "application/json",
                                                "Authorization": "Bearer " + self.sim.token(cluster)})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def summary(self):
        f = dict(self.fig)
        f["faults_injected"] = dict(sorted((k, v) for k, v in f["faults_injected"].items() if v))
        f["faults_injected_total"] = sum(f["faults_injected"].values())
        classes = collections.Counter()
        for k, v in f["faults_injected"].items():
            classes["api-server" if k.split("-")[0] in ("429", "500", "503", "504", "reset", "latency",
                                                         "unreachable") else k.split("-")[0]] += v
        f["faults_by_class"] = dict(sorted(classes.items()))
        f["faults_fired"] = dict(sorted(f["faults_fired"].items()))
        f["kills_by_moment"] = dict(sorted(f["kills_by_moment"].items()))
        ct = self.converge_times
        f["time_to_converge_s"] = {"after_lift": {"p50": percentile(ct, 50), "p99": percentile(ct, 99),
                                                  "max": round(max(ct), 2) if ct else None},
                                   "after_push": {"p50": percentile(self.round_times, 50),
                                                  "p99": percentile(self.round_times, 99),
                                                  "max": round(max(self.round_times), 2)
                                                  if self.round_times else None}}
        f["ledger_records"] = self.ledger_checked
        f["invariant_violations"] = len(self.violations)
        f["violations"] = self.violations
        return f

    def teardown(self):
        d = self.d
        if d is None:
            return
        if self.running():
            d.stop()
        elif d.proc is not None:
            self.reap()
        if self.proxy:
            self.proxy.close()
        if self.gitd:
            os.killpg(self.gitd.pid, signal.SIGKILL)
            self.gitd.wait()
            self.gitd_log.close()
        if self.mounted:
            self.remount("rw")
            subprocess.run(["umount", "-l", d.state], capture_output=True)
        if self.keep:
            self.say("kept %s" % d.tmp)
            d.sim.stop(keep_dir=True)
            return
        d.close()


def markdown(d):
    """The summary's figures as the Markdown tables of docs/reliability.md."""
    api, hits, verbs = collections.Counter(), collections.Counter(), collections.defaultdict(set)
    for k, v in d["faults_injected"].items():
        kind, _, verb = k.partition("-")
        if kind == "unreachable":
            api[k] += v
        elif kind in ("429", "500", "503", "504", "reset", "latency"):
            api[kind] += v
            verbs[kind].add(verb)
    for k, v in d["faults_fired"].items():
        hits[k.partition("-")[0]] += v
    t = d["time_to_converge_s"]
    rows = [("rounds (signed commits pushed)", d["commits"]),
            ("intents created / changed / removed", "%(created)d / %(changed)d / %(removed)d" % d["objects"]),
            ("faults injected, all", d["faults_injected_total"])]
    rows += [("faults injected: " + c, v) for c, v in d["faults_by_class"].items()]
    rows += [("SIGKILLs", d["kills"])] + [("SIGKILLs " + m, v) for m, v in d["kills_by_moment"].items()]
    rows += [("recoveries (rounds with a kill that converged in time)", d["recoveries"]),
             ("daemon exits by itself (restarted, as systemd would)", d["restarts_after_exit"]),
             ("rollouts resumed by the campaign after a halt", d["operator_resumes"]),
             ("Git fetches stalled mid-pack / given up by the daemon",
              "%d / %d" % (d["git_stalls"], d["git_stalls_timed_out"])),
             ("disk faults reported by the daemon", d["disk_faults_reported"]),
             ("ledger records at the end", d["ledger_records"])]
    for k, what in (("after_lift", "after the faults are lifted"), ("after_push", "from the push to in sync")):
        rows.append(("time to converge %s, p50 / p99 / max" % what,
                     "%s s / %s s / %s s" % (t[k]["p50"], t[k]["p99"], t[k]["max"])))
    kinds = collections.Counter(v["invariant"] for v in d["violations"])
    rows.append(("invariant violations", "%d%s" % (d["invariant_violations"], " (%s)" % ", ".join(
        "%s: %d" % kv for kv in sorted(kinds.items())) if kinds else "")))
    out = ["Seed %d, %d rounds in %.0f s." % (d["seed"], d["rounds"], d["seconds"]), "",
           "| figure | value |", "|---|---:|"]
    out += ["| %s | %s |" % r for r in rows]
    out += ["", "API-server faults by kind (rules injected; requests they hit):", "",
            "| kind | injected | hit | verbs |", "|---|---:|---:|---|"]
    for k in sorted(api):
        if k.startswith("unreachable"):
            out.append("| %s | %d | | (whole cluster) |" % (k, api[k]))
        else:
            out.append("| %s | %d | %d | %s |" % (k, api[k], hits[k], ", ".join(sorted(verbs[k]))))
    other = sorted((k, v) for k, v in d["faults_injected"].items() if k.split("-")[0] in ("git", "disk", "clock"))
    out += ["", "Other faults: %s." % (", ".join("%s %d" % kv for kv in other) or "none")]
    return "\n".join(out)


def ledger_key_secrets(path):
    """What of the ledger's private key must never be published: the Ed25519
    seed (raw, hex, base64) and every 24-character piece of the key file's
    base64 body, except the pieces that are also in the public key file (an
    OpenSSH private key file carries its public key, which the ledger's
    genesis record publishes on purpose)."""
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path + ".pub") as f:
        public = f.read()
    body = "".join(l for l in lines if "PRIVATE KEY" not in l)
    out = [("ledger private key file, characters %d-%d" % (i, i + 24), body[i:i + 24])
           for i in range(0, len(body) - 24, 12) if body[i:i + 24] not in public]
    blob = base64.b64decode(body)
    # openssh-key-v1, unencrypted: ... ssh-ed25519, pub (32), priv (seed || pub, 64), comment
    i = blob.rfind(b"ssh-ed25519")
    if i > 0:
        j = i + len(b"ssh-ed25519")
        j += 4 + 32          # the public key again
        seed = blob[j + 4:j + 4 + 32]
        out += [("ledger private key seed (hex)", seed.hex()),
                ("ledger private key seed (base64)", base64.b64encode(seed).decode().rstrip("=")),
                ("ledger private key (base64)", base64.b64encode(blob[j + 4:j + 4 + 64]).decode()[:40])]
    return out


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: a random one, printed)")
    ap.add_argument("--kills", type=int, help="run until this many SIGKILLs")
    ap.add_argument("--duration", type=float, help="run for this many seconds")
    ap.add_argument("--rounds", type=int, help="run this many rounds")
    ap.add_argument("--kill-share", type=float, default=0.7, help="share of rounds with a SIGKILL (0.7)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--force-fault", action="append", default=[], metavar="KIND",
                    help="add this fault to every round (clock-step, clock-step:back, disk-full, "
                    "disk-full:before-fetch, disk-full:mid-rollout, disk-readonly, git-stall)")
    ap.add_argument("--summary", help="also write the JSON summary to this file")
    ap.add_argument("--selftest", action="store_true",
                    help="sabotage what each invariant guards and check that it is reported")
    ap.add_argument("--markdown", metavar="SUMMARY",
                    help="print the figures of a summary file as the tables of docs/reliability.md")
    args = ap.parse_args()
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return 0
    if args.selftest:
        problems = Campaign(args.seed or 1, rounds=0).selftest()
        for p in problems:
            print("chaos: selftest: %s" % p, file=sys.stderr)
        print("chaos: selftest: %s" % ("FAILED" if problems else "every sabotage was reported"),
              file=sys.stderr)
        return 1 if problems else 0
    if args.kills is None and args.duration is None and args.rounds is None:
        ap.error("give --kills N, --duration S or --rounds N")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    print("chaos: seed %d (--seed %d repeats it)" % (seed, seed), file=sys.stderr, flush=True)
    summary = Campaign(seed, kills=args.kills, duration=args.duration, rounds=args.rounds,
                       kill_share=args.kill_share, keep=args.keep,
                       force=args.force_fault).run()
    text = json.dumps(summary, indent=2, sort_keys=False)
    print(text, flush=True)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(text + "\n")
    if summary.get("harness_error"):
        return 2
    return 1 if summary["invariant_violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
