"""Server-side apply semantics beyond what kubectl shows: list-map merge,
shared ownership, removal rules, Update managers, dry run, preconditions."""
import unittest

from simtest import SimTestCase, vs

VSC = "/apis/networking.istio.io/v1/namespaces/demo/virtualservices"
IMGW = "/apis/servicemesh.cisco.com/v1alpha1/namespaces/demo/istiomeshgateways"


def gw(name, ports, **extra):
    spec = {"type": "egress", "istioControlPlane": {"name": "cp", "namespace": "istio-system"},
            "service": {"type": "ClusterIP", "ports": ports}}
    spec.update(extra)
    return {"apiVersion": "servicemesh.cisco.com/v1alpha1", "kind": "IstioMeshGateway",
            "metadata": {"name": name, "namespace": "demo"}, "spec": spec}


def entry(obj, manager, op="Apply"):
    return [e for e in obj["metadata"]["managedFields"] if e["manager"] == manager and e["operation"] == op][0]


class SSATest(SimTestCase):
    ARGS = ("--namespace", "demo", "--operator-delay", "30")

    def test_list_map_merge_and_per_item_removal(self):
        s = self.sim
        st, _, o = s.apply(gw("lm", [{"name": "http", "port": 80}]), manager="a")
        self.assertEqual(st, 201, o)
        st, _, o = s.apply(gw("lm", [{"name": "https", "port": 443}]), manager="b")
        self.assertEqual(st, 200, o)
        ports = o["spec"]["service"]["ports"]
        self.assertEqual([(p["port"], p["name"], p["protocol"]) for p in ports],
                         [(80, "http", "TCP"), (443, "https", "TCP")])
        fb = entry(o, "b")["fieldsV1"]["f:spec"]["f:service"]["f:ports"]
        self.assertEqual(fb, {'k:{"port":443,"protocol":"TCP"}': {".": {}, "f:name": {}, "f:port": {}}})
        # b stops applying its port: only b's item goes
        st, _, o = s.apply(gw("lm", [{"name": "http", "port": 80}]), manager="b")
        self.assertEqual([p["port"] for p in o["spec"]["service"]["ports"]], [80])
        # conflict on a list-map item field, with the exact path syntax
        st, _, body = s.apply(gw("lm", [{"name": "web", "port": 80}]), manager="c")
        self.assertEqual(st, 409)
        self.assertEqual(body["details"]["causes"], [
            {"reason": "FieldManagerConflict", "message": 'conflict with "a"',
             "field": '.spec.service.ports[port=80,protocol="TCP"].name'},
            {"reason": "FieldManagerConflict", "message": 'conflict with "b"',
             "field": '.spec.service.ports[port=80,protocol="TCP"].name'}])
        self.assertEqual(body["message"], 'Apply failed with 2 conflicts: conflicts with "a":\n'
                                          '- .spec.service.ports[port=80,protocol="TCP"].name\n'
                                          'conflicts with "b":\n'
                                          '- .spec.service.ports[port=80,protocol="TCP"].name')

    def test_shared_ownership_keeps_field_until_last_owner_leaves(self):
        s = self.sim
        base = vs("shared", hosts=["h"], gateways=["mesh"])
        self.assertEqual(s.apply(base, manager="a")[0], 201)
        st, _, o = s.apply(vs("shared", hosts=["h"], gateways=["mesh"]), manager="b")   # same value: no conflict
        self.assertEqual(st, 200)
        rv = o["metadata"]["resourceVersion"]
        self.assertIn("f:gateways", entry(o, "a")["fieldsV1"]["f:spec"])
        self.assertIn("f:gateways", entry(o, "b")["fieldsV1"]["f:spec"])
        st, _, o = s.apply(vs("shared", hosts=["h"]), manager="a")        # a leaves gateways; b still owns it
        self.assertEqual(o["spec"]["gateways"], ["mesh"])
        self.assertNotIn("f:gateways", entry(o, "a")["fieldsV1"]["f:spec"])
        st, _, o = s.apply(vs("shared", hosts=["h"]), manager="b")        # last owner leaves: removed
        self.assertNotIn("gateways", o["spec"])
        self.assertNotEqual(o["metadata"]["resourceVersion"], rv)

    def test_update_manager_conflict_and_generation(self):
        s = self.sim
        st, _, o = s.apply(vs("upd", hosts=["h"]), manager="a")
        self.assertEqual(o["metadata"]["generation"], 1)
        st, _, o = s.request("PATCH", VSC + "/upd?fieldManager=editor", {"spec": {"hosts": ["x"]}},
                             ctype="application/merge-patch+json")
        self.assertEqual((st, o["metadata"]["generation"]), (200, 2))
        self.assertEqual(entry(o, "editor", "Update")["fieldsV1"], {"f:spec": {"f:hosts": {}}})
        # a owned only spec.hosts: the entry that became empty is dropped
        self.assertEqual([e["manager"] for e in o["metadata"]["managedFields"]], ["editor"])
        st, _, o = s.request("PATCH", VSC + "/upd?fieldManager=labeler", {"metadata": {"labels": {"k": "v"}}},
                             ctype="application/merge-patch+json")
        self.assertEqual(o["metadata"]["generation"], 2)                   # metadata changes do not bump it
        self.assertEqual(entry(o, "labeler", "Update")["fieldsV1"], {"f:metadata": {"f:labels": {".": {}, "f:k": {}}}})
        st, _, body = s.apply(vs("upd", hosts=["h"]), manager="a")
        self.assertEqual((st, body["message"]), (409, 'Apply failed with 1 conflict: conflict with "editor" using '
                                                      'networking.istio.io/v1: .spec.hosts'))

    def test_dry_run_create_and_rv_precondition(self):
        s = self.sim
        st, _, o = s.apply(vs("dry"), dryRun="All")
        self.assertEqual(st, 201)
        self.assertNotIn("resourceVersion", o["metadata"])
        self.assertRegex(o["metadata"]["uid"], r"^[0-9a-f-]{36}$")
        self.assertEqual(s.request("GET", VSC + "/dry")[0], 404)
        st, _, o = s.request("POST", VSC, vs("put"))
        self.assertEqual(st, 201)
        stale = dict(o)
        stale["metadata"] = dict(o["metadata"], resourceVersion="1")
        st, _, body = s.request("PUT", VSC + "/put", stale)
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": 'Operation cannot be fulfilled on virtualservices.networking.istio.io "put": '
                                           "the object has been modified; please apply your changes to the latest "
                                           "version and try again", "reason": "Conflict",
                                "details": {"name": "put", "group": "networking.istio.io", "kind": "virtualservices"},
                                "code": 409})
        o["spec"]["hosts"] = ["new"]
        st, _, o2 = s.request("PUT", VSC + "/put", o)
        self.assertEqual((st, o2["spec"]["hosts"], o2["metadata"]["generation"]), (200, ["new"], 2))
        self.assertGreater(int(o2["metadata"]["resourceVersion"]), int(o["metadata"]["resourceVersion"]))
        st, _, body = s.request("POST", VSC, vs("put"))
        self.assertEqual((st, body["reason"], body["message"]),
                         (409, "AlreadyExists", 'virtualservices.networking.istio.io "put" already exists'))

    def test_json_patch_and_status_subresource(self):
        s = self.sim
        st, _, o = s.request("POST", VSC, vs("jp"))
        st, _, o = s.request("PATCH", VSC + "/jp", [{"op": "add", "path": "/spec/gateways", "value": ["mesh"]}],
                             ctype="application/json-patch+json")
        self.assertEqual((st, o["spec"]["gateways"]), (200, ["mesh"]))
        st, _, body = s.request("PATCH", VSC + "/jp", [{"op": "test", "path": "/spec/hosts", "value": ["no"]}],
                                ctype="application/json-patch+json")
        self.assertEqual((st, body["reason"]), (422, "Invalid"))
        st, _, o = s.request("PATCH", VSC + "/jp/status?fieldManager=ctl", {"status": {"observedGeneration": 2}},
                             ctype="application/merge-patch+json")
        self.assertEqual((st, o["status"]), (200, {"observedGeneration": 2}))
        self.assertEqual(entry(o, "ctl", "Update")["subresource"], "status")
        st, _, o = s.request("PATCH", VSC + "/jp", {"status": {"observedGeneration": 9}},
                             ctype="application/merge-patch+json")
        self.assertEqual(o["status"], {"observedGeneration": 2})        # the main resource ignores status

    def test_delete_status_body(self):
        s = self.sim
        st, _, o = s.request("POST", VSC, vs("gone"))
        st, h, body = s.request("DELETE", VSC + "/gone", {"propagationPolicy": "Background"})
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                "details": {"name": "gone", "group": "networking.istio.io", "kind": "virtualservices",
                                            "uid": o["metadata"]["uid"]}})


if __name__ == "__main__":
    unittest.main()
