#!/usr/bin/python3
"""Credentials of egressd's Kubernetes client against kubesim: the exec
plugin re-run once after a 401 (and the request retried once), its
credential cached until expirationTimestamp, KUBERNETES_EXEC_INFO with
provideClusterInfo, and a rotated token file picked up without failing."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import kubelib
import netlib
from kubelib import egressd


def wait_for(pred, timeout=20, what="condition"):
    """netlib.wait_for in this module's argument order."""
    return netlib.wait_for(what, pred, timeout, interval=0.02)


class Watcher(object):
    """`egressd clusters watch` in the background, its JSON lines collected."""

    def __init__(self, test, kubeconfig, *args):
        self.proc = subprocess.Popen([kubelib.egressd_binary(), "clusters", "watch", "--kubeconfig", kubeconfig,
                                      "--name", "east", "VirtualService", "--timeout", "60s"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        test.addCleanup(self.stop)

    def _read(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def wait(self, timeout=30):
        """The process's exit, then the reader's last line."""
        self.proc.wait(timeout=timeout)
        self.thread.join(10)

    def added(self):
        return [e["object"]["metadata"]["name"] for e in self.events if e["type"] == "ADDED"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


class ExecTest(unittest.TestCase):
    def setUp(self):
        self.sim = kubelib.KubeSim(["east"])
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="egressd-auth-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def create(self, name):
        self.assertEqual(self.sim.apply(kubelib.virtual_service(name), manager="test")[0], 201)

    def test_exec_plugin_reruns_once_after_401_and_the_request_is_retried(self):
        sim = self.sim
        w = Watcher(self, sim.kubeconfig("east", "exec"), "--watch-timeout", "1", "--max-events", "2")
        wait_for(lambda: w.events, what="RELISTED")
        self.assertEqual(sim.exec_runs("east"), 1)
        # the server stops accepting the exec token; the next watch gets 401
        sim.expire_token("east", "exec")
        wait_for(lambda: sim.exec_runs("east") == 2, what="the plugin's second run")
        self.create("after-refresh")
        w.wait()
        self.assertEqual(w.proc.returncode, 0, w.proc.stderr.read())
        self.assertEqual(w.added(), ["after-refresh"])
        self.assertEqual(sim.exec_runs("east"), 2)  # once at start, once after the 401
        log = [e for e in sim.requests("east") if "watch=true" in e["query"]]
        statuses = [e["status"] for e in log]
        i = statuses.index(401)
        self.assertEqual(statuses[i + 1], 200)  # the same watch, retried once with the new token
        self.assertEqual(query_rv(log[i]), query_rv(log[i + 1]))
        self.assertEqual(statuses.count(401), 1)
        self.assertEqual(log[i + 1]["auth"], "exec")

    def plugin(self, expiration):
        """A plugin that prints kubesim's credential with our expiry and
        records each run and its KUBERNETES_EXEC_INFO."""
        path = os.path.join(self.tmp, "plugin.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n"
                    "printf '%%s\\n' \"$KUBERNETES_EXEC_INFO\" >> '%s/runs'\n"
                    "exec /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); "
                    "c[\"status\"][\"expirationTimestamp\"]=sys.argv[2]; print(json.dumps(c))' '%s' '%s'\n"
                    % (self.tmp, self.sim.path("east-exec-credential.json"), expiration))
        os.chmod(path, 0o755)
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
               "clusters": [{"name": "c", "cluster": {
                   "server": self.sim.servers["east"], "certificate-authority": self.sim.path("ca.crt"),
                   "extensions": [{"name": "client.authentication.k8s.io/exec",
                                   "extension": {"audience": "egress-test"}}]}}],
               "users": [{"name": "u", "user": {"exec": {
                   "apiVersion": "client.authentication.k8s.io/v1", "command": "./plugin.sh",
                   "interactiveMode": "Never", "provideClusterInfo": True,
                   "env": [{"name": "EXTRA", "value": "1"}]}}}],
               "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
        kc = os.path.join(self.tmp, "exec.kubeconfig")
        with open(kc, "w") as f:
            json.dump(cfg, f)
        return kc

    def runs(self):
        try:
            with open(os.path.join(self.tmp, "runs")) as f:
                return [json.loads(l) for l in f.read().splitlines()]
        except FileNotFoundError:
            return []

    def managed(self, kc):
        self.sim.clear_requests("east")
        egressd("clusters", "managed", "--kubeconfig", kc, "--name", "east", check=0)
        return len([e for e in self.sim.requests("east") if e["auth"] == "exec"])

    def test_exec_credential_is_cached_until_it_expires(self):
        # valid for a long time: one run serves every request of the process
        kc = self.plugin("2999-01-01T00:00:00Z")
        n = self.managed(kc)
        self.assertEqual(n, 2 + 8)  # discovery + one LIST per managed kind
        self.assertEqual(len(self.runs()), 1)
        # expired on arrival: the plugin runs again whenever a request needs
        # it; requests submitted together wait for one run: one for the two
        # discovery requests, one for the eight LISTs sent after discovery
        os.unlink(os.path.join(self.tmp, "runs"))
        kc = self.plugin("2001-01-01T00:00:00Z")
        n = self.managed(kc)
        self.assertEqual(n, 2 + 8)
        self.assertEqual(len(self.runs()), 2)
        # expired, with one request at a time: a run for each
        os.unlink(os.path.join(self.tmp, "runs"))
        self.sim.clear_requests("east")
        egressd("clusters", "get", "--kubeconfig", kc, "--name", "east", "Namespace", "default", check=0)
        egressd("clusters", "delete", "--kubeconfig", kc, "--name", "east", "VirtualService", "none",
                check=0)
        self.assertEqual(len(self.runs()), 4)  # (discovery, GET) and (discovery, DELETE)
        # KUBERNETES_EXEC_INFO with provideClusterInfo: server, CA, extension
        info = self.runs()[0]
        self.assertEqual(info["apiVersion"], "client.authentication.k8s.io/v1")
        self.assertEqual(info["kind"], "ExecCredential")
        self.assertFalse(info["spec"]["interactive"])
        cluster = info["spec"]["cluster"]
        self.assertEqual(cluster["server"], self.sim.servers["east"])
        self.assertEqual(cluster["config"], {"audience": "egress-test"})
        import base64
        with open(self.sim.path("ca.crt"), "rb") as f:
            self.assertEqual(base64.b64decode(cluster["certificate-authority-data"]), f.read())


def query_rv(entry):
    return dict(urllib.parse.parse_qsl(entry["query"])).get("resourceVersion")


class TokenFileTest(unittest.TestCase):
    def test_a_rotated_token_file_is_picked_up(self):
        sim = kubelib.KubeSim(["east"])
        self.addCleanup(sim.stop)
        kc = os.path.join(sim.dir, "tf.kubeconfig")
        with open(kc, "w") as f:
            f.write(kubelib.kubeconfig_text(sim.servers["east"], ca=sim.path("ca.crt"),
                                            user={"tokenFile": "east.token"}))  # relative to kc
        w = Watcher(self, kc, "--watch-timeout", "1", "--max-events", "2")
        wait_for(lambda: w.events, what="RELISTED")
        old = sim.token("east")
        sim.expire_token("east", "admin")  # rewrites east.token; the old one gets 401
        self.assertNotEqual(sim.token("east"), old)
        time.sleep(1.5)  # at least one reconnect with whatever the client holds
        self.assertEqual(sim.apply(kubelib.virtual_service("rotated"), manager="test")[0], 201)
        w.wait()
        self.assertEqual(w.proc.returncode, 0, w.proc.stderr.read())
        self.assertEqual(w.added(), ["rotated"])
        watches = [e for e in sim.requests("east") if e["verb"] == "watch"]
        self.assertTrue(any(e["status"] == 200 for e in watches[1:]))
        # a 401 (if the old token was still held) is followed by the new token at once
        for i, e in enumerate(watches):
            if e["status"] == 401:
                self.assertEqual(watches[i + 1]["status"], 200)


if __name__ == "__main__":
    unittest.main()
