#!/usr/bin/python3
"""egressd's Kubernetes client against kubesim: LIST paging over 1,000
objects (and the restart on an expired continue token), one discovery per
cluster and one LIST per kind for a read of managed state, server-side apply
(query, conflicts, dry run, strict field validation), DELETE with a UID
precondition, and WATCH resumption (reconnect from the last resourceVersion,
re-list on 410). Request counts come from kubesim's request log."""
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

MANAGED = "app.kubernetes.io/managed-by=egressd"


def query(entry):
    return dict(urllib.parse.parse_qsl(entry["query"], keep_blank_values=True))


def wait_for(pred, timeout=15, what="condition"):
    """netlib.wait_for in this module's argument order."""
    return netlib.wait_for(what, pred, timeout, interval=0.02)


class ListTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = kubelib.KubeSim(["east", "west"], namespaces=["bench", "small", "apps"])
        objs = [kubelib.virtual_service("vs-%04d" % i, "bench", ["h%d.example.com" % i],
                                        labels={"n": str(i % 2)}) for i in range(1100)]
        cls.sim.put_objects(objs, cluster="east")

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        for c in self.sim.clusters:
            self.sim.clear_requests(c)
            self.sim.clear_faults(c)

    def get(self, *args, check=0):
        return egressd("clusters", "get", "--kubeconfig", self.sim.kubeconfig("east"), "--name", "east",
                       *args, check=check)

    def test_list_pages_over_1000_objects(self):
        r = self.get("virtualservices.networking.istio.io", "-n", "bench")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["kind"], "List")
        names = [i["metadata"]["name"] for i in doc["items"]]
        self.assertEqual(names, ["vs-%04d" % i for i in range(1100)])
        self.assertTrue(all(i["apiVersion"] == "networking.istio.io/v1" and i["kind"] == "VirtualService"
                            for i in doc["items"]))
        self.assertTrue(doc["metadata"]["resourceVersion"])
        log = self.sim.requests("east")
        self.assertEqual(sorted(e["path"] for e in log[:2]), ["/api", "/apis"])  # sent together
        pages = [e for e in log if e["verb"] == "list"]
        self.assertEqual(len(pages), 3)  # 500 + 500 + 100
        self.assertEqual([query(p).get("limit") for p in pages], ["500"] * 3)
        self.assertNotIn("continue", query(pages[0]))
        self.assertTrue(query(pages[1])["continue"] and query(pages[2])["continue"])
        self.assertNotEqual(query(pages[1])["continue"], query(pages[2])["continue"])
        self.assertEqual(len(log), 5)

    def test_list_with_selector_and_small_pages(self):
        r = self.get("VirtualService", "-n", "bench", "-l", "n=1", "--chunk-size", "200", "-o", "name")
        got = r.stdout.split()
        self.assertEqual(got, ["virtualservices.networking.istio.io/vs-%04d" % i for i in range(1, 1100, 2)])
        pages = [e for e in self.sim.requests("east") if e["verb"] == "list"]
        self.assertEqual({query(p)["labelSelector"] for p in pages}, {"n=1"})
        self.assertGreaterEqual(len(pages), 3)

    @kubelib.emulator_only("latency injected into one page of a list")
    def test_list_restarts_once_when_the_continue_token_expired(self):
        sim = self.sim
        sim.put_objects([kubelib.virtual_service("s-%02d" % i, "small") for i in range(30)], cluster="east")
        sim.clear_requests("east")
        # hold the second page long enough to compact the history under it
        sim.add_fault("east", verb="list", path="continue=", match_query=True, latency_ms=1500, count=1)
        proc = subprocess.Popen([kubelib.egressd_binary(), "clusters", "get", "--kubeconfig",
                                 sim.kubeconfig("east"), "--name", "east", "VirtualService", "-n", "small",
                                 "--chunk-size", "10", "-o", "name"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: [e for e in sim.requests("east") if e["verb"] == "list"], what="page 1")
            # a write after the list's snapshot, then compaction: the token is older
            sim.put_objects([kubelib.virtual_service("elsewhere", "bench")], cluster="east")
            sim.compact("east")
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out.split(), ["virtualservices.networking.istio.io/s-%02d" % i for i in range(30)])
        pages = [(e["status"], "continue" in query(e)) for e in sim.requests("east") if e["verb"] == "list"]
        # page 1, page 2 expired (410), then the whole list again: 3 pages
        self.assertEqual(pages, [(200, False), (410, True), (200, False), (200, True), (200, True)])

    def test_get_one_object_and_not_found(self):
        r = self.get("VirtualService", "vs-0007", "-n", "bench")
        self.assertEqual(json.loads(r.stdout)["spec"]["hosts"], ["h7.example.com"])
        r = self.get("VirtualService", "missing", "-n", "bench", check=1)
        self.assertIn("cluster east: GET /apis/networking.istio.io/v1/namespaces/bench/virtualservices/"
                      "missing: HTTP 404 NotFound: virtualservices.networking.istio.io \"missing\" not found",
                      r.stderr)
        r = self.get("Frobnicator", check=1)
        self.assertIn("cluster east serves no resource named 'Frobnicator'", r.stderr)

    def test_managed_state_is_one_discovery_and_one_list_per_kind(self):
        sim = self.sim
        objs = [
            kubelib.virtual_service("managed-vs", "apps", labels={"app.kubernetes.io/managed-by": "egressd"}),
            kubelib.virtual_service("other-vs", "apps", labels={"app.kubernetes.io/managed-by": "helm"}),
            {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
             "metadata": {"name": "gw", "namespace": "apps",
                          "labels": {"app.kubernetes.io/managed-by": "egressd"}},
             "spec": {"selector": {"gateway-name": "egress"}, "servers": []}},
        ]
        for c in ("east", "west"):
            sim.put_objects(objs, cluster=c)
            sim.clear_requests(c)
        hc = sim.write_hostconfig("managed.yaml")
        r = egressd("clusters", "managed", "--config", hc, check=0)
        rows = sorted(" ".join(l.split()[:3]) for l in r.stdout.splitlines())
        self.assertEqual(rows, ["east Gateway.networking.istio.io apps/gw",
                                "east VirtualService.networking.istio.io apps/managed-vs",
                                "west Gateway.networking.istio.io apps/gw",
                                "west VirtualService.networking.istio.io apps/managed-vs"])
        kinds = {"istiomeshgateways", "gateways", "serviceentries", "destinationrules", "virtualservices",
                 "sidecars", "authorizationpolicies", "networkpolicies"}
        for c in ("east", "west"):
            log = sim.requests(c)
            self.assertEqual(sorted(e["path"] for e in log if e["verb"] not in ("list",)), ["/api", "/apis"])
            lists = [e for e in log if e["verb"] == "list"]
            self.assertEqual(len(lists), len(kinds), [e["path"] for e in lists])
            self.assertEqual({e["path"].rsplit("/", 1)[1] for e in lists}, kinds)
            self.assertTrue(all(query(e)["labelSelector"] == MANAGED for e in lists))
            self.assertTrue(all("/namespaces/" not in e["path"] for e in lists))  # every namespace
            self.assertEqual(len(log), 2 + len(kinds))


class WriteTest(unittest.TestCase):
    def setUp(self):
        self.sim = kubelib.KubeSim(["east"], namespaces=["demo"])
        self.addCleanup(self.sim.stop)
        self.tmp = tempfile.mkdtemp(prefix="egressd-write-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def file(self, name, objs):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("\n---\n".join(json.dumps(o) for o in objs))
        return path

    def run_egressd(self, *args, check=None):
        return egressd("clusters", *args[:1], "--kubeconfig", self.sim.kubeconfig("east"), "--name", "east",
                       *args[1:], check=check)

    def test_server_side_apply_as_egressd_cli(self):
        sim = self.sim
        vs = kubelib.virtual_service("reviews", "demo", ["reviews.example.com"])
        f = self.file("vs.json", [vs])
        r = self.run_egressd("apply", "-f", f, "--dry-run", check=0)
        self.assertEqual(r.stdout, "virtualservices.networking.istio.io/reviews created (dry run)\n")
        self.assertEqual(sim.request("GET", "/apis/networking.istio.io/v1/namespaces/demo/virtualservices/"
                                     "reviews")[0], 404)
        r = self.run_egressd("apply", "-f", f, check=0)
        self.assertEqual(r.stdout, "virtualservices.networking.istio.io/reviews created\n")
        r = self.run_egressd("apply", "-f", f, check=0)
        self.assertEqual(r.stdout, "virtualservices.networking.istio.io/reviews applied\n")
        patches = [e for e in sim.requests() if e["method"] == "PATCH"]
        self.assertEqual(len(patches), 3)
        self.assertEqual(query(patches[0]), {"fieldManager": "egressd-cli", "force": "false",
                                             "fieldValidation": "Strict", "dryRun": "All"})
        self.assertEqual(query(patches[1]), {"fieldManager": "egressd-cli", "force": "false",
                                             "fieldValidation": "Strict"})
        self.assertEqual([p["status"] for p in patches], [201, 201, 200])
        if not sim.real:   # an audit log records no headers
            self.assertTrue(all(p["request_content_type"] == "application/apply-patch+yaml" for p in patches))
        self.assertEqual(json.loads(patches[1]["body"]), vs)
        st, live = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/demo/virtualservices/reviews")
        # by hand, not the daemon: its own field manager
        self.assertEqual([m["manager"] for m in live["metadata"]["managedFields"]], ["egressd-cli"])

        # another manager takes spec.hosts: a conflict, named, until --force
        other = kubelib.virtual_service("reviews", "demo", ["other.example.com"])
        self.assertEqual(sim.apply(other, manager="kubectl", force=True)[0], 200)
        r = self.run_egressd("apply", "-f", f)
        self.assertEqual(r.returncode, 1)
        self.assertIn("PATCH /apis/networking.istio.io/v1/namespaces/demo/virtualservices/reviews: HTTP 409 "
                      "Conflict: Apply failed with 1 conflict: conflict with \"kubectl\"", r.stderr)
        self.assertIn(".spec.hosts", r.stderr)
        self.run_egressd("apply", "-f", f, "--force", check=0)
        st, live = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/demo/virtualservices/reviews")
        self.assertEqual(live["spec"]["hosts"], ["reviews.example.com"])

    def test_unknown_fields_are_refused_and_not_retried(self):
        vs = kubelib.virtual_service("strict", "demo")
        vs["spec"]["hostz"] = ["typo.example.com"]
        r = self.run_egressd("apply", "-f", self.file("bad.json", [vs]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 500 Internal Server Error: failed to create typed patch object", r.stderr)
        self.assertIn(".spec.hostz: field not declared in schema", r.stderr)
        # a 500 without reason is the server's verdict, not a hiccup: one attempt
        self.assertEqual(len([e for e in self.sim.requests() if e["method"] == "PATCH"]), 1)

    def test_delete_with_uid_precondition(self):
        sim = self.sim
        f = self.file("vs.json", [kubelib.virtual_service("gone-soon", "demo")])
        self.run_egressd("apply", "-f", f, check=0)
        st, live = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/demo/virtualservices/gone-soon")
        uid = live["metadata"]["uid"]
        r = self.run_egressd("delete", "VirtualService", "gone-soon", "-n", "demo", "--uid", "0000-wrong")
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 409 Conflict: Operation cannot be fulfilled on VirtualService.networking.istio.io "
                      "\"gone-soon\": the UID in the precondition (0000-wrong) does not match the UID in "
                      "record (%s). The object might have been deleted and then recreated" % uid, r.stderr)
        r = self.run_egressd("delete", "VirtualService", "gone-soon", "-n", "demo", "--uid", uid, check=0)
        self.assertEqual(r.stdout, "virtualservices.networking.istio.io/gone-soon deleted\n")
        r = self.run_egressd("delete", "VirtualService", "gone-soon", "-n", "demo", "--uid", uid, check=0)
        self.assertEqual(r.stdout, "virtualservices.networking.istio.io/gone-soon already gone\n")
        deletes = [e for e in sim.requests() if e["method"] == "DELETE"]
        self.assertEqual([d["status"] for d in deletes], [409, 200, 404])
        body = json.loads(deletes[1]["body"])
        if sim.real:   # the audit log holds the decoded options, with the server's internal version
            self.assertEqual(body.pop("apiVersion"), "meta.k8s.io/__internal")
            body["apiVersion"] = "v1"
        self.assertEqual(body, {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                                "preconditions": {"uid": uid}})


class WatchTest(unittest.TestCase):
    def setUp(self):
        self.sim = kubelib.KubeSim(["east"], namespaces=["w", "other"])
        self.addCleanup(self.sim.stop)

    def start_watch(self, *args):
        proc = subprocess.Popen([kubelib.egressd_binary(), "clusters", "watch", "--kubeconfig",
                                 self.sim.kubeconfig("east"), "--name", "east", "VirtualService", "-n", "w",
                                 "--timeout", "60s"] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def stop():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        self.addCleanup(stop)
        lines = []

        def reader():
            for line in proc.stdout:
                lines.append(json.loads(line))
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        proc.reader = t
        return proc, lines

    @staticmethod
    def finish(proc):
        """Wait for the watch to exit, then for its reader to have taken every
        line (the process can be gone while its last line is still unread)."""
        proc.wait(timeout=30)
        proc.reader.join(10)

    def create(self, name, ns="w"):
        st, _ = self.sim.apply(kubelib.virtual_service(name, ns), manager="test")
        self.assertEqual(st, 201)

    def test_watch_reconnects_from_the_last_resource_version(self):
        sim = self.sim
        proc, events = self.start_watch("--watch-timeout", "1", "--max-events", "4")
        wait_for(lambda: events, what="RELISTED")
        self.assertEqual(events[0]["type"], "RELISTED")
        self.assertEqual(events[0]["items"], [])
        # one event per server-side watch: each ends after timeoutSeconds=1
        for i in range(3):
            self.create("vs-%d" % i)
            wait_for(lambda: len([e for e in events if e["type"] == "ADDED"]) > i, what="event %d" % i)
            time.sleep(1.3)
        self.finish(proc)
        self.assertEqual(proc.returncode, 0, proc.stderr.read())
        adds = [e for e in events if e["type"] == "ADDED"]
        self.assertEqual([e["object"]["metadata"]["name"] for e in adds], ["vs-0", "vs-1", "vs-2"])
        watches = [e for e in sim.requests("east") if e["verb"] == "watch"]
        self.assertGreaterEqual(len(watches), 3)
        for w in watches:
            q = query(w)
            self.assertEqual((q["watch"], q["allowWatchBookmarks"], q["timeoutSeconds"]), ("true", "true", "1"))
        # every watch starts at a resourceVersion the client had been given
        # (the list's, an event's or a bookmark's), never earlier than the last
        seen = [e["resourceVersion"] for e in events]
        starts = [query(w)["resourceVersion"] for w in watches]
        self.assertEqual(starts[0], events[0]["resourceVersion"])
        self.assertTrue(set(starts) <= set(seen), (starts, seen))
        self.assertEqual([int(s) for s in starts], sorted(int(s) for s in starts))
        self.assertEqual(len([e for e in sim.requests("east") if e["verb"] == "list"]), 1)  # no re-list

    @kubelib.emulator_only("a stream reset injected into a watch")
    def test_watch_resumes_after_a_reset_stream_without_losing_or_repeating(self):
        sim = self.sim
        # the first watch stream is cut (TCP RST) one byte into its first event
        sim.add_fault("east", verb="watch", reset=True, reset_after_bytes=1, count=1)
        proc, events = self.start_watch("--watch-timeout", "30", "--max-events", "3")
        wait_for(lambda: events, what="RELISTED")
        list_rv = events[0]["resourceVersion"]
        wait_for(lambda: [e for e in sim.requests("east") if e["verb"] == "watch"], what="watch")
        self.create("vs-a")
        wait_for(lambda: len([e for e in events if e["type"] == "ADDED"]) == 1, what="vs-a")
        self.create("vs-b")
        self.finish(proc)
        self.assertEqual(proc.returncode, 0, proc.stderr.read())
        self.assertEqual([(e["type"], (e.get("object") or {}).get("metadata", {}).get("name"))
                          for e in events if e["type"] != "BOOKMARK"],
                         [("RELISTED", None), ("ADDED", "vs-a"), ("ADDED", "vs-b")])
        self.assertEqual(sim.faults("east")["faults"][0]["fired"], 1)
        watches = [query(e)["resourceVersion"] for e in sim.requests("east") if e["verb"] == "watch"]
        # the reset watch and its replacement both start at the list's RV:
        # vs-a was never delivered before the reset, so it is not skipped
        self.assertEqual(watches[:2], [list_rv, list_rv])

    def test_watch_relists_on_410(self):
        sim = self.sim
        self.create("before")
        st, lst = sim.request("GET", "/apis/networking.istio.io/v1/namespaces/w/virtualservices")
        old_rv = lst["metadata"]["resourceVersion"]
        self.create("after", ns="other")
        self.create("after2", ns="other")
        sim.compact("east")
        sim.clear_requests("east")
        proc, events = self.start_watch("--resource-version", old_rv, "--max-events", "2")
        wait_for(lambda: events, what="RELISTED")
        self.assertEqual(events[0]["type"], "RELISTED")
        self.assertEqual([i["metadata"]["name"] for i in events[0]["items"]], ["before"])
        self.create("new")
        self.finish(proc)
        self.assertEqual([e["type"] for e in events], ["RELISTED", "ADDED"])
        self.assertEqual(events[1]["object"]["metadata"]["name"], "new")
        verbs = [(e["verb"], query(e).get("resourceVersion")) for e in sim.requests("east")
                 if e["verb"] in ("watch", "list")]
        self.assertEqual(verbs[0], ("watch", old_rv))
        self.assertEqual(verbs[1][0], "list")
        self.assertEqual(verbs[2], ("watch", events[0]["resourceVersion"]))


if __name__ == "__main__":
    unittest.main()
