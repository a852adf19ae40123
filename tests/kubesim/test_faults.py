"""Fault injection, seen through kubectl and raw HTTPS."""
import http.client
import socket
import ssl
import time
import unittest

from simtest import SimTestCase, vs, KUBECTL, wait_for

VSC = "/apis/networking.istio.io/v1/namespaces/demo/virtualservices"


class FaultTest(SimTestCase):
    CLUSTERS = ("c1", "c2")

    def tearDown(self):
        self.sim.ctl("DELETE", "faults")
        self.sim.ctl("DELETE", "faults", cluster="c2")

    def test_429_json_retried_then_success(self):
        self.sim.ctl("POST", "faults", {"verb": "list", "path": "/virtualservices$", "status": 429,
                                        "retry_after": 0, "count": 2})
        m = self.sim.mark()
        rc, out, err = self.sim.kubectl("get", "vs", "-n", "demo")
        self.assertEqual((rc, err), (0, "No resources found in demo namespace.\n"))
        lst = [(r["status"], r["content_type"]) for r in self.sim.requests(since=m) if r["verb"] == "list"]
        self.assertEqual(lst, [(429, "application/json"), (429, "application/json"), (200, "application/json")])

    def test_apf_429_text_persistent(self):
        self.sim.ctl("POST", "faults", {"verb": "list", "status": 429, "body": "apf", "retry_after": 0})
        m = self.sim.mark()
        rc, out, err = self.sim.kubectl("get", "vs", "-n", "demo")
        self.assertEqual(rc, 1)
        self.assertEqual(err, "Error from server (TooManyRequests): the server has received too many requests and "
                              "has asked us to try again later (get virtualservices.networking.istio.io)\n")
        lst = [(r["status"], r["content_type"]) for r in self.sim.requests(since=m) if r["verb"] == "list"]
        self.assertEqual(lst, [(429, "text/plain; charset=utf-8")] * 11)    # 1 + 10 client-go retries
        st, h, body = self.sim.request("GET", VSC, raw=True)
        self.assertEqual((st, h["retry-after"], body), (429, "0", b"Too many requests, please try again later.\n"))

    def test_500_share_and_503_retry_after(self):
        self.sim.ctl("POST", "faults", {"verb": "get", "path": "/virtualservices/", "status": 500, "share": 0.5})
        codes = [self.sim.request("GET", VSC + "/nope")[0] for _ in range(6)]
        self.assertEqual(codes, [404, 500, 404, 500, 404, 500])
        st, h, body = self.sim.request("GET", VSC + "/nope")
        self.assertEqual(st, 404)
        st, h, body = self.sim.request("GET", VSC + "/nope")
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "Internal error occurred: injected fault", "reason": "InternalError",
                                "details": {"causes": [{"message": "injected fault"}]}, "code": 500})
        self.sim.ctl("DELETE", "faults")
        self.sim.ctl("POST", "faults", {"verb": "patch", "status": 503, "retry_after": 2, "count": 1})
        st, h, body = self.sim.apply(vs("x"))
        self.assertEqual((st, h["retry-after"], body["reason"], body["details"]),
                         (503, "2", "ServiceUnavailable", {"retryAfterSeconds": 2}))

    def test_latency(self):
        self.sim.ctl("POST", "faults", {"path": "^/version$", "latency_ms": 300})
        t = time.time()
        st, _, body = self.sim.request("GET", "/version")
        self.assertEqual((st, body["minor"]), (200, "32"))
        self.assertGreaterEqual(time.time() - t, 0.3)
        st, _, body = self.sim.request("GET", "/version", cluster="c2")   # faults are per cluster
        self.assertEqual(self.sim.ctl("GET", "faults", cluster="c2")["faults"], [])

    def test_reset_mid_response(self):
        self.sim.ctl("POST", "faults", {"verb": "list", "reset": True, "reset_after_bytes": 10, "count": 1})
        m = self.sim.mark()
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            self.sim.request("GET", VSC)
        st, _, body = self.sim.request("GET", VSC)
        self.assertEqual(st, 200)
        reqs = self.sim.requests(since=m)
        self.assertEqual([(r["status"], r["reset"]) for r in reqs], [(200, True), (200, False)])

    def refused(self, port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            return True
        return False

    def answers(self, cluster="c1"):
        try:
            return self.sim.request("GET", "/version", cluster=cluster)[0] == 200
        except (http.client.HTTPException, OSError, ssl.SSLError):
            return False

    def test_unreachable_refuse_and_restore(self):
        port = self.sim.ports["c1"]
        self.sim.ctl("POST", "faults", {"unreachable": "refuse"})
        # the listener closes on a thread
        self.assertTrue(wait_for(lambda: self.refused(port)), "c1 still listens after refuse")
        rc, out, err = self.sim.kubectl("get", "vs", "-n", "demo", "--request-timeout=5s")
        self.assertEqual(rc, 1)
        self.assertIn("connect: connection refused", err)
        # restored through another cluster's control API
        st, _, _ = self.sim.request("DELETE", "/_sim/faults?cluster=c1", cluster="c2", token=self.sim.token("c2"))
        self.assertEqual(st, 200)
        self.assertTrue(wait_for(self.answers), "c1 does not answer after the restore")

    def test_refuse_then_drop_then_restore_listens_again(self):
        port = self.sim.ports["c1"]
        self.sim.ctl("POST", "faults", {"unreachable": "refuse"})
        self.assertTrue(wait_for(lambda: self.refused(port)), "c1 still listens after refuse")
        st, _, _ = self.sim.request("POST", "/_sim/faults?cluster=c1", {"unreachable": "drop"},
                                    cluster="c2", token=self.sim.token("c2"))
        self.assertEqual(st, 200)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
            self.sim.request("GET", "/version")      # accepted and closed: drop
        st, _, _ = self.sim.request("DELETE", "/_sim/faults?cluster=c1", cluster="c2",
                                    token=self.sim.token("c2"))
        self.assertEqual(st, 200)
        self.assertEqual(self.sim.request("GET", "/version")[0], 200)

    def test_unreachable_drop_with_duration(self):
        self.sim.ctl("POST", "faults", {"unreachable": "drop", "duration_ms": 800}, cluster="c2")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
            self.sim.request("GET", "/version", cluster="c2")
        # back after the duration (a thread restores it)
        self.assertTrue(wait_for(lambda: self.answers("c2")), "c2 does not answer after 800 ms")


if __name__ == "__main__":
    unittest.main()
