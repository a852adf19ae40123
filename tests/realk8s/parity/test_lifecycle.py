"""Parity of deletion (UID and resourceVersion preconditions, finalizers),
namespaces that are missing or terminating, and kubectl's protobuf create."""
import json
import re
import unittest

from paritylib import ParityCase, MERGE, NS, VSP, APPLY, diff, norm, request, vs, wait_for


def own_uid(resp, uid):
    """A Status message with the server's own uid replaced."""
    b = json.loads(json.dumps(resp.body))
    b["message"] = b["message"].replace(uid, "<uid>")
    return b


class Delete(ParityCase):

    def create_both(self, obj):
        sim, real = self.both("POST", VSP, obj)
        self.assertSame(sim, real, "create %s" % obj["metadata"]["name"])
        return sim, real

    def test_preconditions(self):
        sim, real = self.create_both(vs("pre"))
        # a wrong UID: 409 naming both
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "0000-wrong"}}
        s, r = self.both("DELETE", VSP + "/pre", body)
        self.assertSame(s, r, "wrong uid", body=False)
        self.assertEqual(s.status, 409)
        self.assertEqual(own_uid(s, sim.body["metadata"]["uid"]), own_uid(r, real.body["metadata"]["uid"]))
        # a wrong resourceVersion
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": "1"}}
        s, r = self.both("DELETE", VSP + "/pre", body)
        self.assertSame(s, r, "wrong resourceVersion", body=False)
        self.assertEqual(s.status, 409)
        for resp, obj in ((s, sim), (r, real)):
            resp.body["message"] = resp.body["message"].replace(obj.body["metadata"]["resourceVersion"], "<rv>")
        self.assertEqual(s.body, r.body)
        # dry run: nothing happens
        s, r = self.both("DELETE", VSP + "/pre?dryRun=All")
        self.assertSame(s, r, "dry run")
        self.assertEqual(self.both("GET", VSP + "/pre")[1].status, 200)
        # the right UID: deleted (a Status with the object's details)
        outs = [request(srv, "DELETE", VSP + "/pre", {"preconditions": {"uid": o.body["metadata"]["uid"]}})
                for srv, o in ((self.sim, sim), (self.real, real))]
        self.assertSame(outs[0], outs[1], "right uid")
        s, r = self.both("GET", VSP + "/pre")
        self.assertSame(s, r, "gone")
        self.assertEqual(s.status, 404)
        s, r = self.both("DELETE", VSP + "/pre")
        self.assertSame(s, r, "delete missing")

    def test_finalizers(self):
        o = vs("fin")
        o["metadata"]["finalizers"] = ["example.com/keep"]
        self.create_both(o)
        s, r = self.both("DELETE", VSP + "/fin")
        self.assertSame(s, r, "delete with a finalizer")
        self.assertEqual(s.status, 200)
        md = r.body["metadata"]
        self.assertTrue(md["deletionTimestamp"])
        self.assertEqual((md["deletionGracePeriodSeconds"], md["generation"]), (0, 2))
        s, r = self.both("GET", VSP + "/fin")
        self.assertSame(s, r, "still there")
        # deleting again changes nothing
        s2, r2 = self.both("DELETE", VSP + "/fin")
        self.assertSame(s2, r2, "delete again")
        self.assertEqual((s2.body["metadata"]["resourceVersion"], r2.body["metadata"]["resourceVersion"]),
                         (s.body["metadata"]["resourceVersion"], r.body["metadata"]["resourceVersion"]))
        # no new finalizer on an object being deleted
        s, r = self.both("PATCH", VSP + "/fin", {"metadata": {"finalizers": ["example.com/keep", "example.com/new"]}},
                         ctype=MERGE)
        self.assertSame(s, r, "new finalizer while deleting")
        self.assertEqual(s.status, 422)
        # the last finalizer goes: so does the object
        s, r = self.both("PATCH", VSP + "/fin", {"metadata": {"finalizers": None}}, ctype=MERGE)
        self.assertSame(s, r, "remove the finalizer")
        s, r = self.both("GET", VSP + "/fin")
        self.assertEqual((s.status, r.status), (404, 404))


class Namespaces(ParityCase):

    def test_missing_namespace(self):
        p = "/apis/networking.istio.io/v1/namespaces/ghost/virtualservices"
        s, r = self.both("POST", p, vs("x"))
        self.assertSame(s, r, "create in a missing namespace")
        self.assertEqual(s.status, 404)
        s, r = self.both("PATCH", p + "/x?fieldManager=m", vs("x"), ctype=APPLY)
        self.assertSame(s, r, "apply in a missing namespace")
        s, r = self.both("GET", p)
        self.assertSame(s, r, "list in a missing namespace")
        self.assertEqual(s.body["items"], [])
        s, r = self.both("GET", p + "/x")
        self.assertSame(s, r, "get in a missing namespace")
        s, r = self.both("POST", "/api/v1/namespaces/ghost/services",
                         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                          "spec": {"ports": [{"port": 80}]}})
        self.assertSame(s, r, "built-in kind in a missing namespace")

    def test_terminating_namespace(self):
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "term"}}
        s, r = self.both("POST", "/api/v1/namespaces", ns)
        self.assertSame(s, r, "create namespace")
        held = vs("held")
        held["metadata"]["finalizers"] = ["example.com/hold"]
        p = "/apis/networking.istio.io/v1/namespaces/term/virtualservices"
        s, r = self.both("POST", p, held)
        self.assertSame(s, r, "create in it")
        s, r = self.both("POST", p, vs("plain"))
        s, r = self.both("DELETE", "/api/v1/namespaces/term")
        self.assertSame(s, r, "delete namespace")
        self.assertEqual(r.body["status"]["phase"], "Terminating")
        # creating content: 403 in the real words
        s, r = self.both("POST", p, vs("late"))
        self.assertSame(s, r, "create in a terminating namespace")
        self.assertEqual(s.status, 403)
        s, r = self.both("PATCH", p + "/late2?fieldManager=m", vs("late2"), ctype=APPLY)
        self.assertSame(s, r, "apply in a terminating namespace")

        # the namespace controller deletes the content; the finalized object waits
        def plain_gone(srv):
            return wait_for(lambda: request(srv, "GET", p + "/plain").status == 404, 60, "plain deleted")
        self.each(plain_gone)

        def terminating_with_conditions(srv):
            def ok():
                o = request(srv, "GET", "/api/v1/namespaces/term").body
                return o if o.get("status", {}).get("conditions") else None
            return wait_for(ok, 60, "namespace conditions")
        s_ns, r_ns = self.each(terminating_with_conditions)
        self.assertEqual(diff(norm(conditions(s_ns)), norm(conditions(r_ns))), [])
        s, r = self.both("GET", p + "/held")
        self.assertSame(s, r, "held object")
        self.assertTrue(r.body["metadata"]["deletionTimestamp"])
        # its finalizer goes: the namespace goes
        s, r = self.both("PATCH", p + "/held", {"metadata": {"finalizers": None}}, ctype=MERGE)
        self.assertSame(s, r, "release")

        def ns_gone(srv):
            return wait_for(lambda: request(srv, "GET", "/api/v1/namespaces/term").status == 404, 90,
                            "namespace term gone")
        self.each(ns_gone)
        s, r = self.both("GET", "/api/v1/namespaces/term")
        self.assertSame(s, r, "namespace gone")


def conditions(ns):
    """A terminating namespace's status, conditions sorted by type (their
    times masked by norm)."""
    st = json.loads(json.dumps(ns["status"]))
    st["conditions"] = sorted(st.get("conditions") or [], key=lambda c: c["type"])
    for c in st["conditions"]:
        c["lastTransitionTime"] = "<time>"
    return st


class KubectlProtobuf(ParityCase):

    def test_create_namespace(self):
        """kubectl 1.32 sends built-in kinds as protobuf."""
        outs = [self.kubectl(srv, "create", "namespace", "payments") for srv in (self.sim, self.real)]
        self.assertEqual([(o.returncode, o.stdout, o.stderr) for o in outs],
                         [(0, "namespace/payments created\n", "")] * 2)
        s, r = self.both("GET", "/api/v1/namespaces/payments")
        self.assertSame(s, r, "the namespace")
        self.assertEqual(r.body["metadata"]["managedFields"][0]["manager"], "kubectl-create")
        outs = [self.kubectl(srv, "create", "namespace", "payments") for srv in (self.sim, self.real)]
        self.assertEqual(outs[0].returncode, outs[1].returncode)
        self.assertEqual(outs[0].stderr, outs[1].stderr)
        outs = [self.kubectl(srv, "create", "namespace", "labelled", "--dry-run=server", "-o", "json")
                for srv in (self.sim, self.real)]
        self.assertEqual([o.returncode for o in outs], [0, 0], [o.stderr for o in outs])
        self.assertEqual(diff(norm(json.loads(outs[0].stdout)), norm(json.loads(outs[1].stdout))), [])

    def test_create_service_protobuf_known_limit(self):
        """Known limit: kubesim decodes only a Namespace from protobuf; kubectl
        create service (also protobuf) fails there."""
        outs = [self.kubectl(srv, "create", "service", "clusterip", "web", "--tcp=80:8080", "-n", NS)
                for srv in (self.sim, self.real)]
        self.assertEqual((outs[1].returncode, outs[1].stdout), (0, "service/web created\n"))
        err = outs[0].stderr.strip()
        self.assertIn("(6b387300", err)          # the protobuf magic "k8s\\0", as the summary of the body
        self.assertKnown("protobuf other than Namespace",
                         (outs[0].returncode, re.sub(r"\(6b387300[0-9a-f]* \.\.\.\)", "(<hex> ...)", err)),
                         (1, "error: failed to create ClusterIP service: the object provided is unrecognized "
                             "(must be of type Service): couldn't get version/kind; json parse error: invalid "
                             "character 'k' looking for beginning of value (<hex> ...)"))


if __name__ == "__main__":
    unittest.main()
