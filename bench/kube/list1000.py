#!/usr/bin/python3
"""LIST of 1,000 VirtualServices through egressd's client and through kubectl,
against the kubesim emulator: client CPU time, wall time, peak RSS
(/usr/bin/time -v, Debian package "time") and the requests each sent (from
kubesim's request log). Figures go to docs/benchmarks.md; they are never
asserted in tests.

    bench/kube/list1000.py [--egressd build/daemon/cli/egressd] [--runs 5] [--objects 1000]

kubectl is /usr/lib/google-cloud-sdk/bin/kubectl.1.32 called directly (the
dispatcher would add a /version request and a second process), with a fresh
discovery cache for every run, so both clients do discovery + the paged LIST.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import kubelib  # noqa: E402

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
TIME = "/usr/bin/time"


def measure(argv, env=None):
    r = subprocess.run([TIME, "-v"] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (argv[0], r.stderr.decode()[-2000:]))
    err = r.stderr.decode()

    def field(name):
        return re.search(r"^\s*%s: (.*)$" % re.escape(name), err, re.M).group(1)
    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(p) for p in wall.split(":")]
    wall_s = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    return {"user": float(field("User time (seconds)")), "sys": float(field("System time (seconds)")),
            "wall": wall_s, "rss_kb": int(field("Maximum resident set size (kbytes)")),
            "out_bytes": len(r.stdout), "items": r.stdout.count(b'"kind": "VirtualService"')
            + r.stdout.count(b'"kind":"VirtualService"')}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--egressd", default=os.path.join(SOURCE, "build", "daemon", "cli", "egressd"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--objects", type=int, default=1000)
    args = ap.parse_args()
    if not os.path.exists(TIME):
        sys.exit("needs /usr/bin/time (apt-get install time)")
    with kubelib.KubeSim(["bench"], namespaces=["bench"]) as sim:
        objs = []
        for i in range(args.objects):
            o = kubelib.virtual_service("vs-%04d" % i, "bench", ["h%d.example.com" % i],
                                        labels={"app": "bench", "n": str(i)})
            o["spec"]["http"] = [{"route": [{"destination": {"host": "h%d" % i, "subset": "v1"},
                                             "weight": 100}]}]
            objs.append(o)
        sim.put_objects(objs, cluster="bench")
        kc = sim.kubeconfig("bench")
        clients = {
            "egressd clusters get -o json": [args.egressd, "clusters", "get", "--kubeconfig", kc, "--name",
                                             "bench", "VirtualService", "-n", "bench", "-o", "json"],
            "egressd clusters get -o name": [args.egressd, "clusters", "get", "--kubeconfig", kc, "--name",
                                             "bench", "VirtualService", "-n", "bench", "-o", "name"],
            "kubectl get -o json": [KUBECTL, "--kubeconfig", kc, "get",
                                    "virtualservices.networking.istio.io", "-n", "bench", "-o", "json"],
        }
        print("LIST of %d VirtualServices from kubesim (median of %d runs)\n" % (args.objects, args.runs))
        print("%-30s %8s %8s %8s %10s %9s" % ("client", "user s", "sys s", "wall s", "peak RSS", "requests"))
        for name, argv in clients.items():
            runs = []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as cache:
                    env = dict(os.environ, KUBECACHEDIR=cache, HOME=cache)
                    sim.clear_requests("bench")
                    runs.append(measure(argv, env))
                    log = sim.requests("bench")
            reqs = "%d (%s)" % (len(log), ", ".join(sorted({e["verb"] or e["path"] for e in log})))
            print("%-30s %8.3f %8.3f %8.3f %7.1f MB %s" % (
                name, statistics.median(r["user"] for r in runs), statistics.median(r["sys"] for r in runs),
                statistics.median(r["wall"] for r in runs),
                statistics.median(r["rss_kb"] for r in runs) / 1024.0, reqs))
        st, body = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/bench/virtualservices")
        import json
        print("\nlist body: %d bytes of JSON for %d objects" % (len(json.dumps(body)), len(body["items"])))


if __name__ == "__main__":
    main()
