#!/usr/bin/python3
"""kubesim figures (not a test): start time and the time to LIST 1,000 objects.

    /usr/bin/python3 tests/kubesim/bench.py

Budgets from the issue: start < 2 s, LIST of 1,000 objects < 200 ms.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simtest import Sim, vs  # noqa: E402


def main():
    t0 = time.time()
    sim = Sim(("c1",), ("--namespace", "bench"))
    start = time.time() - t0
    try:
        for i in range(1000):
            o = vs("vs-%04d" % i, ns="bench", hosts=["h%d.example.com" % i], gateways=["mesh"],
                   http=[{"route": [{"destination": {"host": "h%d" % i, "subset": "v1"}, "weight": 100}]}])
            o["metadata"]["labels"] = {"app": "bench", "n": str(i)}
            st, _, _ = sim.apply(o, manager="bench")
            assert st == 201
        path = "/apis/networking.istio.io/v1/namespaces/bench/virtualservices"
        times = []
        size = 0
        for _ in range(10):
            t = time.time()
            st, _, body = sim.request("GET", path, raw=True)
            times.append((time.time() - t) * 1000)
            size = len(body)
            assert st == 200
        tt = []
        for _ in range(5):
            t = time.time()
            st, _, body = sim.request("GET", path + "?limit=500", headers={
                "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}, raw=True)
            tt.append((time.time() - t) * 1000)
        print("start (spawn to DIR/ready, incl. certificates): %.0f ms (budget 2000)" % (start * 1000))
        print("LIST 1,000 VirtualServices (%d bytes): median %.1f ms, max %.1f ms (budget 200)"
              % (size, statistics.median(times), max(times)))
        print("Table LIST of 500 (kubectl get page): median %.1f ms" % statistics.median(tt))
        return 0 if start < 2 and statistics.median(times) < 200 else 1
    finally:
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
