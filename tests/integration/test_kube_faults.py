#!/usr/bin/python3
"""Retries of egressd's Kubernetes client against kubesim's fault injection:
429 as a Status and as API Priority and Fairness' plain text, 503 and 500
with Retry-After, connections reset mid-response, all recovered within the
retry cap; a persistent 429 given up after --attempts with the server's text
in the error. Retry-After is honoured (the waits are at least that long)."""
import time
import unittest
import urllib.parse

import kubelib
from kubelib import egressd

LIST_PATH = "/apis/networking.istio.io/v1/namespaces/default/virtualservices"


class RetryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = kubelib.KubeSim(["east"])
        cls.sim.put_objects([kubelib.virtual_service("vs-%d" % i) for i in range(3)], cluster="east")

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.clear_faults("east")
        self.sim.clear_requests("east")

    def list_names(self, *extra, check=0):
        t0 = time.monotonic()
        r = egressd("clusters", "get", "--kubeconfig", self.sim.kubeconfig("east"), "--name", "east",
                    "VirtualService", "-o", "name", *extra, check=check)
        return r, time.monotonic() - t0

    def attempts(self):
        return [(e["status"], e.get("content_type")) for e in self.sim.requests("east")
                if e["path"] == LIST_PATH]

    def assert_listed(self, r):
        self.assertEqual(r.stdout.split(), ["virtualservices.networking.istio.io/vs-%d" % i for i in range(3)])

    def test_429_status_with_retry_after_is_retried(self):
        self.sim.add_fault("east", verb="list", status=429, retry_after=1, count=2)
        r, took = self.list_names()
        self.assert_listed(r)
        self.assertEqual([s for s, _ in self.attempts()], [429, 429, 200])
        self.assertGreaterEqual(took, 2.0)  # Retry-After: 1, twice, honoured

    def test_apf_plain_text_429_is_retried(self):
        self.sim.add_fault("east", verb="list", status=429, body="apf", retry_after=1, count=1)
        r, took = self.list_names()
        self.assert_listed(r)
        self.assertEqual(self.attempts(), [(429, "text/plain; charset=utf-8"), (200, "application/json")])
        self.assertGreaterEqual(took, 1.0)

    def test_503_and_500_are_retried(self):
        self.sim.add_fault("east", verb="list", status=503, retry_after=1, count=1)
        self.sim.add_fault("east", verb="list", status=500, count=1)  # InternalError, no Retry-After
        r, _ = self.list_names()
        self.assert_listed(r)
        self.assertEqual([s for s, _ in self.attempts()], [503, 500, 200])

    def test_a_connection_reset_mid_response_is_retried(self):
        self.sim.add_fault("east", verb="list", reset=True, reset_after_bytes=20, count=2)
        r, _ = self.list_names()
        self.assert_listed(r)
        self.assertEqual([s for s, _ in self.attempts()], [200, 200, 200])
        self.assertEqual(self.sim.faults("east")["faults"][0]["fired"], 2)

    def test_discovery_is_retried_too(self):
        self.sim.add_fault("east", path="^/apis$", status=503, retry_after=0, count=1)
        r, _ = self.list_names()
        self.assert_listed(r)
        log = self.sim.requests("east")
        # /api and /apis go out together, so only each path's own order is fixed
        self.assertEqual([e["status"] for e in log if e["path"] == "/api"], [200])
        self.assertEqual([e["status"] for e in log if e["path"] == "/apis"], [503, 200])

    def test_persistent_429_gives_up_at_the_cap_with_the_servers_text(self):
        self.sim.add_fault("east", verb="list", status=429, body="apf", retry_after=0)
        r, _ = self.list_names("--attempts", "3", check=1)
        self.assertEqual(len(self.attempts()), 3)
        self.assertIn("egressd: cluster east: GET %s: HTTP 429 Too Many Requests: server said \"Too many "
                      "requests, please try again later.\" (after 3 attempts)" % LIST_PATH, r.stderr)
        self.assertNotIn(self.sim.token("east"), r.stderr)

    def test_retry_after_over_the_cap_is_capped(self):
        # Retry-After 30 s, but one wait is capped at 10 s: two attempts in ~10 s
        self.sim.add_fault("east", verb="list", status=503, retry_after=30, count=1)
        r, took = self.list_names()
        self.assert_listed(r)
        self.assertGreaterEqual(took, 9.5)
        self.assertLess(took, 25)


if __name__ == "__main__":
    unittest.main()
