#!/usr/bin/python3
"""Failover of coordinated members (docs/ha.md), with the default Lease terms
(leaseDuration 15s, renewDeadline 10s, retryPeriod 2s) unless told: three
members share six clusters (the harness of tests/integration/test_ha.py),
one member is killed (SIGKILL) or stopped (SIGTERM), and the time is taken
from the signal to (a) every one of its clusters owned by another member and
(b) each of them synced by its new owner. Prints each sample and the worst.
Runs on kubesim, or on the real kube-apiserver of tests/realk8s with
EGRESSD_TEST_APISERVER=real (and REALK8S_BIN).

    bench/ha/run.sh [path/to/egressd] [--samples N] [--lease 15,10,2] [--signal KILL|TERM]
"""
import argparse
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

import test_ha  # noqa: E402
from netlib import wait_for  # noqa: E402


def sample(victim_index, sig):
    t = test_ha.HA("test_spread_waves_failover_and_rejoin")
    t.setUp()
    try:
        expected = t.start_all()
        victim = t.ids[victim_index % 3]
        lost = [c for c, o in expected.items() if o == victim]
        rest = {i: m for i, m in t.members.items() if i != victim}
        after = test_ha.assignment([i for i in t.ids if i != victim])
        t0 = time.monotonic()
        t.members[victim].kill(sig)
        t.members[victim].proc.wait()
        wait_for("owned", lambda: t.owners(rest) == after, 120, interval=0.05)
        owned = time.monotonic() - t0

        def synced():
            for m in rest.values():
                for c in m.status()["clusters"]:
                    if c["name"] in lost and c["lease"]["ownedHere"] and c["syncs"] == 0:
                        return False
            return True
        wait_for("synced", synced, 120, interval=0.05)
        return owned, time.monotonic() - t0
    finally:
        t.doCleanups()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--lease", default="15,10,2", help="leaseDuration,renewDeadline,retryPeriod in s")
    ap.add_argument("--signal", default="KILL", choices=["KILL", "TERM"])
    a = ap.parse_args()
    if a.egressd:
        os.environ["EGRESSD"] = os.path.abspath(a.egressd)
    ld, rd, rp = (float(x) for x in a.lease.split(","))
    test_ha.LEASE.update({"leaseDuration": int(ld), "renewDeadline": int(rd), "retryPeriod": rp})
    sig = signal.SIGKILL if a.signal == "KILL" else signal.SIGTERM
    print("server: %s; lease %ss, renewDeadline %ss, retryPeriod %ss; SIG%s"
          % (os.environ.get("EGRESSD_TEST_APISERVER", "kubesim"), int(ld), int(rd), rp, a.signal))
    worst = (0, 0)
    for i in range(a.samples):
        owned, synced = sample(i, sig)
        worst = (max(worst[0], owned), max(worst[1], synced))
        print("sample %d: owned by others after %.1fs, synced after %.1fs" % (i + 1, owned, synced))
        sys.stdout.flush()
    print("worst: owned %.1fs, synced %.1fs" % worst)


if __name__ == "__main__":
    main()
