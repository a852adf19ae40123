"""LIST paging (limit/continue, remainingItemCount, 410 on an expired
continue) and WATCH (events, bookmarks, timeoutSeconds, 410 on a stale RV)."""
import base64
import http.client
import json
import time
import unittest

from simtest import SimTestCase, vs

VSC = "/apis/networking.istio.io/v1/namespaces/paging/virtualservices"


class ListWatchTest(SimTestCase):
    ARGS = ("--namespace", "paging", "--namespace", "w", "--bookmark-interval", "0.5")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for i in range(7):
            o = vs("vs-%d" % i, ns="paging")
            o["metadata"]["labels"] = {"even": "yes" if i % 2 == 0 else "no"}
            st, _, body = cls.sim.apply(o)
            assert st == 201, body

    def test_paging(self):
        names, cont, pages = [], "", 0
        while True:
            st, _, body = self.sim.request("GET", VSC + "?limit=3" + ("&continue=" + cont if cont else ""))
            self.assertEqual(st, 200)
            pages += 1
            names += [i["metadata"]["name"] for i in body["items"]]
            self.assertEqual(body["items"][0]["kind"], "VirtualService")   # CR list items carry kind
            if pages == 1:
                self.assertEqual(body["metadata"]["remainingItemCount"], 4)
                rv1 = body["metadata"]["resourceVersion"]
            else:
                self.assertEqual(body["metadata"]["resourceVersion"], rv1)  # one consistent snapshot
            cont = body["metadata"].get("continue", "")
            if not cont:
                break
        self.assertEqual(names, ["vs-%d" % i for i in range(7)])
        self.assertEqual(pages, 3)

    def test_paging_with_selector_has_no_remaining_count(self):
        st, _, body = self.sim.request("GET", VSC + "?limit=2&labelSelector=even%3Dyes")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], ["vs-0", "vs-2"])
        self.assertNotIn("remainingItemCount", body["metadata"])
        st, _, body2 = self.sim.request("GET", VSC + "?limit=2&labelSelector=even%3Dyes&continue="
                                        + body["metadata"]["continue"])
        self.assertEqual([i["metadata"]["name"] for i in body2["items"]], ["vs-4", "vs-6"])
        st, _, body = self.sim.request("GET", VSC + "?labelSelector=even+in+(no),!missing")
        self.assertEqual(len(body["items"]), 3)
        st, _, body = self.sim.request("GET", VSC + "?fieldSelector=metadata.name%3Dvs-3")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], ["vs-3"])
        st, _, body = self.sim.request("GET", VSC + "?fieldSelector=spec.hosts%3Dx")
        self.assertEqual((st, body["reason"]), (400, "BadRequest"))

    def test_expired_continue_410(self):
        st, _, body = self.sim.request("GET", VSC + "?limit=2")
        cont = body["metadata"]["continue"]
        self.assertEqual(self.sim.apply(vs("later", ns="w"))[0], 201)    # history moves past the list RV
        self.sim.ctl("POST", "compact")
        st, _, body = self.sim.request("GET", VSC + "?limit=2&continue=" + cont)
        self.assertEqual(st, 410)
        # as etcd3's handleCompactedErrorForPaging: a token (resourceVersion -1)
        # that goes on at the present, inconsistently
        token = body["metadata"].pop("continue")
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "The provided continue parameter is too old to display a consistent "
                                           "list result. You can start a new list without the continue parameter, "
                                           "or use the continue token in this response to retrieve the remainder "
                                           "of the results. Continuing with the provided token results in an "
                                           "inconsistent list - objects that were created, modified, or deleted "
                                           "between the time the first chunk was returned and now may show up in "
                                           "the list.",
                                "reason": "Expired", "code": 410})
        self.assertEqual(json.loads(base64.urlsafe_b64decode(token + "==")),
                         {"v": "meta.k8s.io/v1", "rv": -1, "start": "vs-1\u0000"})
        st, _, body = self.sim.request("GET", VSC + "?limit=2&continue=" + token)
        self.assertEqual((st, [i["metadata"]["name"] for i in body["items"]]), (200, ["vs-2", "vs-3"]))
        st, _, body = self.sim.request("GET", VSC + "?limit=2&continue=garbage!")
        self.assertEqual((st, body["reason"]), (400, "BadRequest"))

    def stream(self, path, timeout=10):
        conn = http.client.HTTPSConnection("127.0.0.1", self.sim.ports["c1"], context=self.sim.ssl, timeout=timeout)
        conn.request("GET", path, headers={"Authorization": "Bearer " + self.sim.token(), "Accept": "application/json"})
        r = conn.getresponse()
        return conn, r

    def test_watch_events_bookmarks_and_timeout(self):
        base = "/apis/networking.istio.io/v1/namespaces/w/virtualservices"
        st, _, lst = self.sim.request("GET", base)
        rv = lst["metadata"]["resourceVersion"]
        conn, r = self.stream(base + "?watch=true&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion=" + rv)
        self.assertEqual((r.status, r.getheader("Content-Type"), r.getheader("Transfer-Encoding")),
                         (200, "application/json", "chunked"))
        self.assertEqual(self.sim.apply(vs("w1", ns="w"))[0], 201)
        st, _, _ = self.sim.request("PATCH", base + "/w1", {"metadata": {"labels": {"a": "b"}}},
                                    ctype="application/merge-patch+json")
        self.assertEqual(self.sim.request("DELETE", base + "/w1")[0], 200)
        t0 = time.time()
        events = [json.loads(l) for l in r.read().splitlines()]   # ends at timeoutSeconds
        conn.close()
        self.assertLess(time.time() - t0, 6)
        types = [e["type"] for e in events]
        self.assertEqual([t for t in types if t != "BOOKMARK"], ["ADDED", "MODIFIED", "DELETED"])
        self.assertIn("BOOKMARK", types)
        bm = [e for e in events if e["type"] == "BOOKMARK"][-1]
        # a CRD's bookmark is unstructured: no zero creationTimestamp
        self.assertEqual(bm["object"], {"kind": "VirtualService", "apiVersion": "networking.istio.io/v1",
                                        "metadata": {"resourceVersion": bm["object"]["metadata"]["resourceVersion"]}})
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events if e["type"] != "BOOKMARK"]
        self.assertEqual(rvs, sorted(rvs))
        self.assertEqual(events[types.index("DELETED")]["object"]["metadata"]["labels"], {"a": "b"})

    def test_watch_without_rv_sends_initial_added(self):
        conn, r = self.stream(VSC + "?watch=1&timeoutSeconds=1&labelSelector=even%3Dno")
        events = [json.loads(l) for l in r.read().splitlines()]
        conn.close()
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in events],
                         [("ADDED", "vs-1"), ("ADDED", "vs-3"), ("ADDED", "vs-5")])

    def test_watch_stale_rv_410(self):
        self.sim.ctl("POST", "compact")
        conn, r = self.stream(VSC + "?watch=true&resourceVersion=1001")
        self.assertEqual(r.status, 200)
        events = [json.loads(l) for l in r.read().splitlines()]
        conn.close()
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["type"], "ERROR")
        st = events[0]["object"]
        self.assertEqual((st["kind"], st["reason"], st["code"]), ("Status", "Expired", 410))
        self.assertRegex(st["message"], r"^too old resource version: 1001 \(\d+\)$")


if __name__ == "__main__":
    unittest.main()
