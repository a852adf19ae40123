#!/usr/bin/python3
"""Idle cost of `egressd run` following an unchanged config repo with 10
clusters (issue 8): CPU per hour, RSS, requests per hour to the API servers
and to the Git server, ledger growth.

    bench/idle/bench-idle.py [--egressd PATH] [--window SECONDS]
                             [--profile NAME=INTERVAL/DRIFT ...]

For each profile (default "default=15s/30s" and "aggressive=5s/10s":
repository.interval / sync.driftInterval) it builds, with
tests/integration/daemonlib.py, a config repo from repo-layout/example whose
fleet.yaml lists c1..c10 (one canary, nine prod clusters in two waves with a
short bake), signed commits (verify.policy: all), a ledger key, a host config
and the kubesim emulator with the 10 clusters. The repo is served by
`git daemon` on 127.0.0.1 (repository.url git://...), so every poll is a real
network fetch the Git server logs. egressd run starts; once the first rollout
is complete (STATUS "in sync: 10/10 ...") the window opens, and at its end:

  cpu         utime+stime of egressd (/proc/PID/stat) in the window, plus the
              children it waited for (cutime+cstime: gitsrc forks one per
              fetch), extrapolated to CPU seconds per hour
  rss         VmRSS and VmHWM (/proc/PID/status) at the end of the window
  api         requests the 10 emulated API servers logged in the window, per
              hour, split into discovery, get, list, watch, patch and other
  git         upload-pack requests the git daemon logged, and the daemon's own
              egressd_polls_total, per hour
  ledger      growth of ledger.jsonl in bytes and records (0 when idle)
  io          bytes written (write_bytes of /proc/PID/io) and write calls
  wakeups     voluntary context switches of all egressd threads, per hour
  syncs       drift checks (egressd_syncs_total over all clusters), per hour

Figures go to docs/benchmarks.md; they are never asserted in tests.
"""
import argparse
import collections
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True   # no __pycache__ in tests/integration
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import kubelib  # noqa: E402

CLUSTERS = ["c%d" % i for i in range(1, 11)]
CLK_TCK = os.sysconf("SC_CLK_TCK")
GIT_DAEMON = "/usr/lib/git-core/git-daemon"
COLUMNS = ("disc", "get", "list", "watch", "patch", "other")

FLEET = """apiVersion: egressd.io/v1
kind: Fleet
metadata:
  name: example
spec:
  clusters:
    - {name: c1, labels: {env: staging, region: eu}}
%s  rollout:
    waves:
      - {name: canary, selector: {matchLabels: {env: staging}}, bake: 2s}
      - {name: prod, selector: {matchLabels: {env: prod}}, maxParallel: 9, bake: 2s}
""" % "".join("    - {name: c%d, labels: {env: prod, region: %s}}\n" % (i, "eu" if i <= 5 else "us")
              for i in range(2, 11))


def proc_stat(pid):
    """(own CPU s, reaped children's CPU s) of a process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return ((int(fields[11]) + int(fields[12])) / CLK_TCK,
            (int(fields[13]) + int(fields[14])) / CLK_TCK)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_io(pid):
    out = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = int(v)
    return out


def ctxt_switches(pid):
    """Voluntary context switches summed over the process's threads."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                m = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", f.read(), re.M)
                n += int(m.group(1)) if m else 0
        except FileNotFoundError:
            pass   # a thread that just ended
    return n


def metrics(path):
    """(egressd_polls_total, sum of egressd_syncs_total) from the textfile."""
    with open(path) as f:
        text = f.read()
    polls = int(re.search(r"^egressd_polls_total (\d+)", text, re.M).group(1))
    syncs = sum(int(v) for v in re.findall(r"^egressd_syncs_total\{[^}]*\} (\d+)", text, re.M))
    return polls, syncs


def classify(entry):
    path = entry["path"]
    segs = [s for s in path.split("/") if s]
    if path == "/version" or path.startswith("/openapi") or \
            (segs[:1] == ["api"] and len(segs) <= 2) or (segs[:1] == ["apis"] and len(segs) <= 3):
        return "disc"
    if entry.get("watch"):
        return "watch"
    verb = entry.get("verb") or ""
    return verb if verb in ("get", "list", "patch") else "other"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class GitDaemon(object):
    """git daemon serving BASE on a loopback port, logging every request."""

    def __init__(self, base, log_path):
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [GIT_DAEMON, "--verbose", "--export-all", "--reuseaddr", "--log-destination=stderr",
             "--listen=127.0.0.1", "--port=%d" % self.port, "--base-path=" + base, base],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("git daemon did not start:\n" + open(log_path).read())
                time.sleep(0.05)

    def requests(self):
        with open(self.log_path) as f:
            return len(re.findall(r"Request upload-pack for", f.read()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def sample(d, git, pid):
    own, children = proc_stat(pid)
    polls, syncs = metrics(d.metrics)
    ledger = os.path.join(d.state, "ledger", "ledger.jsonl")
    with open(ledger, "rb") as f:
        data = f.read()
    seqs = {c: d.sim.control("GET", "requests?since=%d" % (1 << 62), cluster=c)["last"]
            for c in CLUSTERS}
    return {"t": time.monotonic(), "own": own, "children": children, "polls": polls,
            "syncs": syncs, "git": git.requests(), "ledger_bytes": len(data),
            "ledger_records": data.count(b"\n"), "seqs": seqs, "io": proc_io(pid),
            "csw": ctxt_switches(pid)}


def run_profile(args, name, interval, drift):
    import daemonlib   # after kubelib.KUBESIM is set
    d = daemonlib.Daemon(clusters=CLUSTERS, fleet=FLEET, poll=interval, drift=drift, policy="all")
    git = None
    try:
        git = GitDaemon(d.tmp, d.path("git-daemon.log"))
        with open(d.config) as f:
            text = f.read()
        url = "git://127.0.0.1:%d/config-repo" % git.port
        text, n = re.subn(r"(?m)^  url: file://.*$", "  url: " + url, text)
        if n != 1:
            raise RuntimeError("no repository.url in the host config:\n" + text)
        with open(d.config, "w") as f:
            f.write(text)
        started = time.monotonic()
        d.start()
        pid = d.proc.pid
        d.wait_status(r"^in sync: 10/10 clusters", timeout=args.rollout_timeout)
        rollout_s = time.monotonic() - started
        time.sleep(1)   # let the last publish land
        a = sample(d, git, pid)
        rss_max = 0
        deadline = a["t"] + args.window
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            if d.proc.poll() is not None:
                raise RuntimeError("egressd exited during the window:\n" + d.logs()[-3000:])
            rss_max = max(rss_max, int(proc_status(pid)["VmRSS"].split()[0]))
        b = sample(d, git, pid)
        st = proc_status(pid)
        log = []
        for c in CLUSTERS:
            items = d.sim.control("GET", "requests?since=%d" % a["seqs"][c], cluster=c)["items"]
            log += [e for e in items if e["seq"] <= b["seqs"][c]]
        last_line = d.status_lines()[-1] if d.status_lines() else ""
        with open(d.log_path) as f:
            log_lines = len(f.read().splitlines())
    finally:
        if git is not None:
            git.stop()
        d.close()
    return {"name": name, "interval": interval, "drift": drift, "rollout_s": rollout_s,
            "a": a, "b": b, "status": st, "api": log, "rss_max": rss_max, "last": last_line,
            "log_lines": log_lines}


def report(r):
    a, b = r["a"], r["b"]
    window = b["t"] - a["t"]
    per_h = 3600.0 / window
    own = b["own"] - a["own"]
    children = b["children"] - a["children"]
    api = collections.Counter(classify(e) for e in r["api"])
    n_api = sum(api.values())
    git = b["git"] - a["git"]
    polls = b["polls"] - a["polls"]
    syncs = b["syncs"] - a["syncs"]
    wbytes = b["io"].get("write_bytes", 0) - a["io"].get("write_bytes", 0)
    syscw = b["io"].get("syscw", 0) - a["io"].get("syscw", 0)
    print("== %s: repository.interval %s, sync.driftInterval %s, 10 clusters" % (
        r["name"], r["interval"], r["drift"]))
    print("first rollout complete after %.1f s; window %.0f s; status: %s"
          % (r["rollout_s"], window, r["last"]))
    print("%-34s %12s %12s" % ("", "in window", "per hour"))
    print("%-34s %12.2f %12.1f" % ("CPU s (egressd)", own, own * per_h))
    print("%-34s %12.2f %12.1f" % ("CPU s (reaped children: git)", children, children * per_h))
    print("%-34s %12.2f %12.1f" % ("CPU s (total)", own + children, (own + children) * per_h))
    print("%-34s %12s %11.3f%%" % ("  as share of one core", "", 100.0 * (own + children) / window))
    print("%-34s %12d %12.0f" % ("API requests (10 clusters)", n_api, n_api * per_h))
    for k in COLUMNS:
        if api.get(k):
            print("%-34s %12d %12.0f" % ("  " + k, api[k], api[k] * per_h))
    print("%-34s %12d %12.0f" % ("drift checks (syncs, 10 clusters)", syncs, syncs * per_h))
    print("%-34s %12d %12.0f" % ("Git upload-pack requests", git, git * per_h))
    print("%-34s %12d %12.0f" % ("Git polls (egressd_polls_total)", polls, polls * per_h))
    print("%-34s %12d %12.0f" % ("ledger growth, bytes", b["ledger_bytes"] - a["ledger_bytes"],
                                  (b["ledger_bytes"] - a["ledger_bytes"]) * per_h))
    print("%-34s %12d %12.0f" % ("ledger growth, records",
                                  b["ledger_records"] - a["ledger_records"],
                                  (b["ledger_records"] - a["ledger_records"]) * per_h))
    print("%-34s %12d %12.0f" % ("bytes written to disk (write_bytes)", wbytes, wbytes * per_h))
    print("%-34s %12d %12.0f" % ("write calls (syscw)", syscw, syscw * per_h))
    print("%-34s %12d %12.0f" % ("voluntary context switches", b["csw"] - a["csw"],
                                  (b["csw"] - a["csw"]) * per_h))
    print("%-34s %12d" % ("daemon log lines (whole run)", r["log_lines"]))
    print("RSS at the end: VmRSS %s, VmHWM %s (highest VmRSS sampled in the window: %d kB)"
          % (r["status"]["VmRSS"], r["status"]["VmHWM"], r["rss_max"]))
    print(flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--egressd", default=os.path.join(SOURCE, "build", "daemon", "cli", "egressd"))
    ap.add_argument("--window", type=float, default=150, help="seconds measured per profile")
    ap.add_argument("--profile", action="append",
                    help="NAME=INTERVAL/DRIFT (default: default=15s/30s aggressive=5s/10s)")
    ap.add_argument("--rollout-timeout", type=float, default=180)
    args = ap.parse_args()
    if args.window <= 0:
        sys.exit("bench-idle: --window must be a positive number of seconds")
    profiles = []
    for p in args.profile or ["default=15s/30s", "aggressive=5s/10s"]:
        m = re.fullmatch(r"([\w-]+)=(\d+[smh])/(\d+[smh])", p)
        if not m:
            sys.exit("bench-idle: --profile '%s' is not NAME=INTERVAL/DRIFT such as slow=60s/5m" % p)
        profiles.append(m.groups())
    for path, what in ((args.egressd, "egressd binary"), (GIT_DAEMON, "git daemon (package git)")):
        if not os.access(path, os.X_OK):
            sys.exit("bench-idle: no %s at %s" % (what, path))
    os.environ["EGRESSD"] = os.path.abspath(args.egressd)
    print("# egressd %s; emulator tests/kubesim/kubesim; %d CPUs; load average %s\n" % (
        os.environ["EGRESSD"], os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
    for name, interval, drift in profiles:
        report(run_profile(args, name, interval, drift))


if __name__ == "__main__":
    main()
