"""Fail fast and say why (issue 16, §3), as a new user meets it: the example
config repo against clusters where its namespaces do not exist (kubesim
without --namespace). `egressd sync --once` returns at once instead of
waiting for the health of gateways it could not write, and names the missing
namespaces in one line per cluster; the daemon stopped during a sync, or
while it waits for gateways to become healthy, exits within a couple of
seconds; `sync --once` shows each cluster's progress when its standard error
is a terminal, and prints exactly what it printed before when it is not.

The health timeout is set to 10 minutes: the bounds asserted below (seconds)
are far below it and below the daemon's 20 s stop grace, so a wait for
health or for the grace fails the test, not a slow machine."""
import errno
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import daemonlib
import kubelib

SRC = kubelib.SOURCE_DIR
EXAMPLE = os.path.join(SRC, "repo-layout", "example")
# what the example renders into, per cluster of its Fleet
EXAMPLE_NAMESPACES = ["analytics", "ci", "egress-system", "news", "payments", "smm-demo"]
HEALTH_TIMEOUT = "10m"
FAST = 30      # seconds: an upper bound of a sync that does not wait for health
STOP = 5       # seconds: an upper bound of a stop with nothing being written


def create_namespace(sim, cluster, name):
    st, out = sim.request("POST", "/api/v1/namespaces",
                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                          cluster=cluster)
    if st != 201:
        raise RuntimeError("create namespace %s: %s %s" % (name, st, out))


def missing_line(cluster, names):
    if len(names) == 1:
        return ("  cluster %s: namespace %s does not exist; create it (kubectl create namespace %s) "
                "or remove from the config repo the intents and gateways that target it"
                % (cluster, names[0], names[0]))
    return ("  cluster %s: namespaces %s do not exist; create them (kubectl create namespace NAME, "
            "for each) or remove from the config repo the intents and gateways that target them"
            % (cluster, ", ".join(names)))


class SyncFailFast(unittest.TestCase):
    """canary has none of the example's namespaces; prod-eu lacks two."""

    @classmethod
    def setUpClass(cls):
        cls.sim = kubelib.KubeSim(["canary", "prod-eu"], args=["--operator-delay", "0.1"])
        for ns in ["egress-system", "smm-demo", "news", "ci"]:
            create_namespace(cls.sim, "prod-eu", ns)
        cls.state = tempfile.mkdtemp(prefix="egressd-state-")
        cls.config = cls.sim.write_hostconfig(extra="sync:\n  healthTimeout: %s\nstate:\n  dir: %s\n"
                                                    % (HEALTH_TIMEOUT, cls.state))

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        shutil.rmtree(cls.state, ignore_errors=True)

    def sync_args(self, *extra):
        return [kubelib.egressd_binary(), "sync", "--once", "--config", self.config, "--repo",
                EXAMPLE] + list(extra)

    def test_missing_namespaces_fail_fast_and_are_named_once_per_cluster(self):
        start = time.monotonic()
        # the bound: far below the 10 minute health wait of the code before
        r = kubelib.egressd(*self.sync_args()[1:], timeout=FAST)
        took = time.monotonic() - start
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertLess(took, FAST)
        out = r.stdout
        # nothing could be written on canary: no wait for its gateways' health
        self.assertRegex(out, r"(?m)^canary: partial: 0 created, 0 updated, 0 deleted, 0 unchanged, "
                              r"27 failed; not checked \(")
        self.assertIn(missing_line("canary", EXAMPLE_NAMESPACES) + "\n", out)
        # prod-eu: what could be written was; the two missing ones are named
        self.assertRegex(out, r"(?m)^prod-eu: partial: \d+ created, 0 updated, 0 deleted, 0 unchanged, "
                              r"\d+ failed; not checked \(")
        self.assertIn(missing_line("prod-eu", ["analytics", "payments"]) + "\n", out)
        # one line per cluster, not one per object
        self.assertEqual(len(re.findall(r"do(es)? not exist", out)), 2, out)
        self.assertNotIn('namespaces "', out)
        self.assertIn("  health: not checked: ", out)
        # the objects of the namespaces that exist went in
        st, _ = self.sim.request("GET", "/apis/servicemesh.cisco.com/v1alpha1/namespaces/egress-system/"
                                        "istiomeshgateways/egress-shared", cluster="prod-eu")
        self.assertEqual(st, 200)

    def read_pty(self, fd, proc, timeout):
        """Everything written to the pty until the child exits and the pty
        hangs up (EIO), within `timeout`."""
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError as e:
                if e.errno == errno.EIO:
                    break
                raise
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace").replace("\r\n", "\n")

    def test_progress_on_a_terminal_and_not_without_one(self):
        master, slave = pty.openpty()
        p = None
        try:
            p = subprocess.Popen(self.sync_args("--cluster", "canary"), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            slave = -1
            progress = self.read_pty(master, p, FAST)
            stdout = p.communicate(timeout=FAST)[0].decode()
        finally:
            if slave >= 0:
                os.close(slave)
            os.close(master)
            if p is not None and p.poll() is None:  # it outlived the bound: do not leave it
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 1, stdout + progress)
        # each phase as it goes, on the terminal (standard error)
        self.assertRegex(progress, r"(?m)^canary: reading the live objects$")
        self.assertRegex(progress, r"(?m)^canary: applying \d+/27$")
        self.assertRegex(progress, r"(?m)^canary: applying 27/27, 27 failed$")
        self.assertRegex(progress, r"(?m)^canary: done: partial, 27 failed; health not checked$")
        # the report on standard output is the same as without a terminal
        self.assertRegex(stdout, r"(?m)^canary: partial: 0 created, 0 updated, 0 deleted, 0 unchanged, "
                                 r"27 failed; not checked \(")
        self.assertNotIn("applying", stdout)

        r = kubelib.egressd(*self.sync_args("--cluster", "canary")[1:], timeout=FAST)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("applying", r.stderr)
        self.assertNotIn("canary: done", r.stderr)
        self.assertNotIn("reading the live objects", r.stderr)
        self.assertEqual(r.stdout.splitlines()[0].split(";")[0], stdout.splitlines()[0].split(";")[0])


class DaemonStop(unittest.TestCase):
    """egressd run, one cluster (canary, the example's first wave)."""

    def daemon(self, namespaces=True, operator_delay="0.2"):
        d = daemonlib.Daemon(clusters=["canary"], sim_args=["--operator-delay", operator_delay])
        self.addCleanup(d.close)
        if not namespaces:
            d.sim.stop()
            d.sim = kubelib.KubeSim(["canary"], args=["--operator-delay", operator_delay])
            d.write_config()
        with open(d.config) as f:
            text = f.read()
        with open(d.config, "w") as f:
            f.write(text.replace("healthTimeout: 15s", "healthTimeout: %s" % HEALTH_TIMEOUT))
        return d

    def wait_for(self, d, what, cond, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reqs = d.sim.requests("canary")
            if cond(reqs):
                return reqs
            if d.proc.poll() is not None:
                self.fail("egressd exited waiting for %s:\n%s" % (what, d.logs()))
            time.sleep(0.05)
        self.fail("no %s in %ss:\n%s" % (what, timeout, d.logs()))

    def timed_stop(self, d):
        start = time.monotonic()
        rc = d.stop(signal.SIGTERM, timeout=60)
        return rc, time.monotonic() - start

    def test_stop_during_the_health_wait_exits_at_once(self):
        # the operator never reconciles: the new gateways never become
        # healthy, and the routes to them wait (the gate) for 10 minutes
        d = self.daemon(operator_delay="3600")
        d.start()

        def waiting(reqs):
            patched = [i for i, q in enumerate(reqs)
                       if q["method"] == "PATCH" and "/istiomeshgateways/" in q["path"]]
            return patched and any(q["method"] == "GET" and q["path"].endswith("/istiomeshgateways")
                                   for q in reqs[patched[-1]:])
        self.wait_for(d, "health poll after the gateways were written", waiting)
        rc, took = self.timed_stop(d)
        self.assertEqual(rc, 0, d.logs())
        self.assertLess(took, STOP, d.logs())
        logs = d.logs()
        self.assertIn("stopping (signal 15)", logs)
        # recorded as cut short, with what it did
        results = [r for r in d.ledger() if r["type"] == "apply-result"]
        self.assertEqual([r["outcome"] for r in results], ["interrupted"], results)
        objects = results[0]["objects"]
        gateways = [o for o in objects if o["kind"] == "IstioMeshGateway"]
        routes = [o for o in objects if o["kind"] == "VirtualService"]
        self.assertTrue(gateways and all(o["outcome"] == "ok" for o in gateways), gateways)
        self.assertTrue(routes and all(o["outcome"] == "skipped" and
                                       o["error"] == "not written: egressd stopped first"
                                       for o in routes), routes)
        # the routes were held back, not written
        self.assertFalse(any(q["method"] == "PATCH" and "/virtualservices/" in q["path"]
                             for q in d.sim.requests("canary")))

    def test_missing_namespaces_do_not_hold_the_daemon_or_its_stop(self):
        d = self.daemon(namespaces=False)
        d.start()
        self.wait_for(d, "a write refused for a missing namespace",
                      lambda reqs: any(q["method"] == "PATCH" and q["status"] == 404 for q in reqs))
        # the sync ends without a health wait, and says why once
        deadline = time.monotonic() + FAST
        line = ("cluster canary: sync of %s partial: namespaces %s do not exist; create them"
                % (d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()[:12],
                   ", ".join(EXAMPLE_NAMESPACES)))
        while line not in d.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        logs = d.logs()
        self.assertIn(line, logs)
        self.assertNotIn('namespaces "', logs)
        rc, took = self.timed_stop(d)
        self.assertEqual(rc, 0, d.logs())
        self.assertLess(took, STOP, d.logs())


if __name__ == "__main__":
    unittest.main()
