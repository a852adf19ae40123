#!/usr/bin/python3
"""Sync N objects to an API server with egressd and with
`kubectl apply --server-side` on the same rendered manifests (issue 6; the
real server: issue 12).

    bench/sync/bench-sync.py [--egressd PATH] [--apiserver kubesim|real]
                             [--no-kubectl] [--kubectl-max-objects N] [SIZE...]

For each SIZE (intents; default 100 1000 2500) it generates a config repo
with bench/render/gen-repo.py, renders it for cluster c1 (networking.istio.io
v1, what egressd picks from the emulator's discovery), starts one kubesim with
two clusters (c1 for egressd, k1 for kubectl, both fresh) and the 110
namespaces the repo uses, and measures two passes of each tool:

  egressd  `egressd sync --once --no-health --config HC --repo DIR --cluster c1`
           pass "create" (empty cluster) and pass "no-op" (nothing changed)
  kubectl  `kubectl.1.32 apply --server-side --force-conflicts
           --field-manager=kubectl-bench -f m.yaml` on the manifests
           `egressd render DIR --cluster c1 --istio-api v1 -o yaml` printed;
           the create pass starts with an empty --cache-dir (so it also fetches
           discovery and the OpenAPI v3 documents), the no-op pass reuses it
           (warm)

When the create pass leaves objects failed (egressd exits 1, "partial"),
the benchmark records it and runs "retry" passes (at most 6) until every
object exists, then the no-op pass; the failed column counts them.

Client wall time, CPU (user+sys) and peak RSS come from GNU time
(/usr/bin/time, Debian package "time"); srv_cpu is the server's CPU
(user+sys from /proc/PID/stat) during the run; the requests are counted from
the server's request log, split into discovery (/api, /apis, /version,
/openapi), GET of one object, LIST, PATCH and anything else. Every run is
checked: egressd must report every object created, then unchanged; kubectl
must print one "serverside-applied" line per object. Figures go to
docs/benchmarks.md; they are never asserted in tests.

--apiserver kubesim (default): tests/kubesim/kubesim, the emulator (with
TCP_NODELAY, as a Go API server); srv_cpu is its whole process.
--apiserver real: tests/realk8s, kube-apiserver and etcd built from upstream
modules (one kube-apiserver per cluster, one shared etcd); srv_cpu is the
cluster's kube-apiserver plus etcd. The real server writes an audit log of
every request with its body (the request log), which costs it some CPU.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True   # no __pycache__ in tests/integration
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import kubelib  # noqa: E402

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
TIME = "/usr/bin/time"
GEN_REPO = os.path.join(SOURCE, "bench", "render", "gen-repo.py")
NAMESPACES = ["egress-%d" % i for i in range(10)] + ["team-%d" % i for i in range(100)]
CLK_TCK = os.sysconf("SC_CLK_TCK")
COLUMNS = ("disc", "get", "list", "patch", "other")
MAX_RETRIES = 6


def proc_cpu(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def measure(argv, env):
    """Run argv under GNU time; returns (exit status, stdout, wall, cpu, rss_kib)."""
    with tempfile.NamedTemporaryFile("r", prefix="bench-time-") as t:
        r = subprocess.run([TIME, "-f", "%e %U %S %M", "-o", t.name] + argv, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fields = t.read().split()
    if len(fields) < 4 or r.returncode > 1:
        raise RuntimeError("%s exited %d:\n%s%s" % (" ".join(argv), r.returncode, r.stdout[-3000:],
                                                    r.stderr[-3000:]))
    wall, user, sys_, rss = fields[-4:]
    return r.returncode, r.stdout, float(wall), float(user) + float(sys_), int(rss)


def classify(entry):
    """discovery, get, list, patch or other, for one request log entry."""
    path = entry["path"]
    segs = [s for s in path.split("/") if s]
    if path == "/version" or path.startswith("/openapi") or \
            (segs[:1] == ["api"] and len(segs) <= 2) or (segs[:1] == ["apis"] and len(segs) <= 3):
        return "disc"
    verb = entry.get("verb") or ""
    return verb if verb in ("get", "list", "patch") else "other"


def counts(log):
    c = collections.Counter(classify(e) for e in log)
    return {k: c.get(k, 0) for k in COLUMNS}


def server_pids(sim, cluster):
    """The processes that serve a cluster: kubesim's one process, or the
    cluster's kube-apiserver and the etcd that realk8s started."""
    if not sim.real:
        return [sim.proc.pid]
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ppid != sim.proc.pid:
            continue
        if os.path.basename(argv[0]) == b"etcd" or \
                ("--etcd-prefix=/registry/%s" % cluster).encode() in argv:
            pids.append(int(d))
    if len(pids) != 2:
        raise RuntimeError("realk8s: want the kube-apiserver of %s and etcd, found %s" % (cluster, pids))
    return pids


def server_cpu(sim, cluster):
    return sum(proc_cpu(p) for p in server_pids(sim, cluster))


def sim_log(sim, cluster, since):
    out = sim.control("GET", "requests?since=%d" % since, cluster=cluster)
    return out["items"]


def sim_mark(sim, cluster):
    """Clear the cluster's request log; returns the last sequence number."""
    return sim.control("DELETE", "requests", cluster=cluster)["last"]


def run_size(args, n, work, rows):
    repo = os.path.join(work, "repo")
    subprocess.run(["/usr/bin/python3", GEN_REPO, repo, str(n)], check=True)
    manifests = os.path.join(work, "m.yaml")
    with open(manifests, "w") as f:
        subprocess.run([args.egressd, "render", repo, "--cluster", "c1", "--istio-api", "v1",
                        "-o", "yaml"], stdout=f, check=True)
    with open(manifests) as f:
        objects = sum(1 for line in f if line.startswith("kind:"))
    env = dict(os.environ, HOME=work, LC_ALL="C")

    with kubelib.KubeSim(["c1", "k1"], namespaces=NAMESPACES, real=args.apiserver == "real") as sim:
        hc = sim.write_hostconfig(
            clusters={"c1": sim.kubeconfig("c1")},
            extra="state:\n  dir: %s\n  runtimeDir: %s\n" % (os.path.join(work, "state"),
                                                             os.path.join(work, "run")))

        def one(tool, pass_, cluster, argv, check):
            since = sim_mark(sim, cluster)
            cpu0 = server_cpu(sim, cluster)
            rc, out, wall, cpu, rss = measure(argv, env)
            server = server_cpu(sim, cluster) - cpu0
            log = sim_log(sim, cluster, since)
            failed = check(rc, out)
            row = {"size": n, "objects": objects, "tool": tool, "pass": pass_, "wall": wall,
                   "cpu": cpu, "rss": rss / 1024.0, "server": server, "requests": len(log),
                   "failed": failed}
            row.update(counts(log))
            rows.append(row)
            print_row(row)
            return failed

        def egressd_check(want):
            """The sync must have written (or found unchanged) every object;
            objects that failed are counted (a partial pass exits 1)."""
            def check(rc, out):
                m = re.search(r"^c1: (ok|partial): (\d+) created, (\d+) updated, (\d+) deleted, "
                              r"(\d+) unchanged, (\d+) failed", out, re.M)
                if not m or rc not in (0, 1):
                    raise RuntimeError("egressd sync exited %d:\n%s" % (rc, out[-3000:]))
                got = dict(zip(("created", "updated", "deleted", "unchanged", "failed"),
                               map(int, m.groups()[1:])))
                if got["deleted"] or got["created"] + got["updated"] + got["unchanged"] + \
                        got["failed"] != objects or \
                        (want == "unchanged" and got["unchanged"] != objects):
                    raise RuntimeError("egressd sync: want %d objects %s, got %s"
                                       % (objects, want, got))
                if got["failed"]:
                    first = [line for line in out.splitlines() if line.startswith("  ")][:1]
                    print("# egressd: %d of %d objects failed, e.g.%s" % (
                        got["failed"], objects, first[0][:300] if first else " (no message)"),
                        flush=True)
                return got["failed"]
            return check

        def kubectl_check(rc, out):
            applied = sum(1 for line in out.splitlines() if line.endswith(" serverside-applied"))
            if rc != 0 or applied != objects:
                raise RuntimeError("kubectl exited %d, applied %d of %d objects:\n%s"
                                   % (rc, applied, objects, out[-2000:]))
            return 0

        sync = [args.egressd, "sync", "--once", "--no-health", "--config", hc, "--repo", repo,
                "--cluster", "c1"]
        failed = one("egressd", "create", "c1", sync, egressd_check("created"))
        for _ in range(MAX_RETRIES):
            if not failed:
                break
            failed = one("egressd", "retry", "c1", sync, egressd_check("created"))
        if failed:
            raise RuntimeError("egressd did not converge in %d retries" % MAX_RETRIES)
        one("egressd", "no-op", "c1", sync, egressd_check("unchanged"))
        if args.no_kubectl:
            return
        if objects > args.kubectl_max_objects:
            print("# kubectl skipped at %d intents: %d objects > --kubectl-max-objects %d"
                  % (n, objects, args.kubectl_max_objects), flush=True)
            return
        cache = os.path.join(work, "kube-cache")
        kubectl = [args.kubectl, "--kubeconfig", sim.kubeconfig("k1"), "--cache-dir", cache,
                   "apply", "--server-side", "--force-conflicts",
                   "--field-manager=kubectl-bench", "-f", manifests]
        one("kubectl", "create", "k1", kubectl, kubectl_check)
        one("kubectl", "no-op", "k1", kubectl, kubectl_check)


HEADER = ("%-7s %7s %-8s %-6s %7s %6s %7s %8s %8s %5s %6s %5s %6s %5s %6s"
          % ("intents", "objects", "tool", "pass", "wall_s", "cpu_s", "rss_mib", "srv_cpu",
             "requests", "disc", "get", "list", "patch", "other", "failed"))


def print_row(r):
    print("%-7d %7d %-8s %-6s %7.2f %6.2f %7.1f %8.2f %8d %5d %6d %5d %6d %5d %6d"
          % (r["size"], r["objects"], r["tool"], r["pass"], r["wall"], r["cpu"], r["rss"],
             r["server"], r["requests"], r["disc"], r["get"], r["list"], r["patch"], r["other"],
             r["failed"]),
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--egressd", default=os.path.join(SOURCE, "build", "daemon", "cli", "egressd"))
    ap.add_argument("--kubectl", default=KUBECTL)
    ap.add_argument("--apiserver", choices=("kubesim", "real"), default=kubelib.APISERVER,
                    help="the emulator (default) or real kube-apiservers from tests/realk8s")
    ap.add_argument("--no-kubectl", action="store_true", help="measure egressd only")
    ap.add_argument("--kubectl-max-objects", type=int, default=1000000,
                    help="skip kubectl above this many objects (it applies one at a time)")
    ap.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 2500])
    args = ap.parse_args()
    if any(n < 1 for n in args.sizes):
        sys.exit("bench-sync: sizes are numbers of intents, at least 1")
    for path, what in ((TIME, "GNU time (apt-get install time)"), (args.egressd, "egressd"),
                       (args.kubectl, "kubectl")):
        if not os.access(path, os.X_OK) and not (path == args.kubectl and args.no_kubectl):
            sys.exit("bench-sync: no %s at %s" % (what, path))
    args.egressd = os.path.abspath(args.egressd)
    print("# server: %s; %d CPUs; load average %s" % (
        "tests/realk8s (kube-apiserver, etcd)" if args.apiserver == "real" else "tests/kubesim/kubesim",
        os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3])), flush=True)
    print(HEADER, flush=True)
    rows = []
    started = time.monotonic()
    for n in args.sizes:
        work = tempfile.mkdtemp(prefix="egressd-bench-sync-")
        try:
            run_size(args, n, work, rows)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print("# %d runs in %.0f s" % (len(rows), time.monotonic() - started))


if __name__ == "__main__":
    main()
