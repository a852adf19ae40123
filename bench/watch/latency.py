#!/usr/bin/python3
"""Drift -> corrected, from a watch event: the example Fleet (3 clusters) under
`egressd run` with driftInterval 1h (so only an event can explain a
correction), then SAMPLES out-of-band changes, alternating a merge patch of a
VirtualService's hosts and a DELETE of it, on the clusters in turn. Each
sample is timed from the API server's answer to the change to the first GET
(every 5 ms) that shows the object as egressd renders it again. Prints p50,
p99 and max per kind of change, and the passes (syncs) and events the daemon
counted. Runs on kubesim, or on the real kube-apiserver of tests/realk8s with
EGRESSD_TEST_APISERVER=real (and REALK8S_BIN).

    bench/watch/run.sh [path/to/egressd] [--samples N]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

import daemonlib  # noqa: E402
from netlib import wait_for  # noqa: E402

VS = "/apis/networking.istio.io/v1/namespaces/payments/virtualservices/stripe-api.stripe.com"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd")
    ap.add_argument("--samples", type=int, default=40)
    a = ap.parse_args()
    if a.egressd:
        os.environ["EGRESSD"] = os.path.abspath(a.egressd)
    with daemonlib.Daemon(drift="1h") as d:
        d.start()
        d.wait_status(r"^in sync: 3/3", timeout=120)
        wait_for("every cluster watching",
                 lambda: all(c["watch"]["state"] == "watching" for c in d.status()["clusters"]), 60)
        lat = {"patch": [], "delete": []}
        for i in range(a.samples):
            cluster = d.clusters[i % len(d.clusters)]
            kind = "patch" if i % 2 == 0 else "delete"
            if kind == "patch":
                st, _ = d.sim.request("PATCH", VS + "?fieldManager=kubectl-edit",
                                      {"spec": {"hosts": ["api.evil.example"]}}, cluster=cluster,
                                      ctype="application/merge-patch+json")
                assert st == 200, st
            else:
                st, _ = d.sim.request("DELETE", VS, cluster=cluster)
                assert st == 200, st
            t0 = time.monotonic()
            while True:
                st, vs = d.sim.request("GET", VS, cluster=cluster)
                if st == 200 and vs["spec"]["hosts"] == ["api.stripe.com"]:
                    break
                if time.monotonic() - t0 > 30:
                    raise SystemExit("sample %d (%s on %s) not corrected in 30 s" % (i, kind, cluster))
                time.sleep(0.005)
            lat[kind].append(time.monotonic() - t0)
            # the next change only once the pass that corrected this one ended
            wait_for("the pass to end", lambda: not any(c["syncing"] for c in d.status()["clusters"]), 30)
        st = d.status()["clusters"]
        print("apiserver: %s, samples: %d" % (os.environ.get("EGRESSD_TEST_APISERVER", "kubesim"),
                                              a.samples))
        for kind, xs in lat.items():
            print("%-7s n=%d p50=%.3fs p99=%.3fs max=%.3fs" % (kind, len(xs), pct(xs, 50), pct(xs, 99),
                                                               max(xs)))
        print("syncs per cluster: %s; watch events: %s" % (
            {c["name"]: c["syncs"] for c in st}, {c["name"]: c["watch"]["events"] for c in st}))


if __name__ == "__main__":
    main()
