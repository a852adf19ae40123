"""Structural-schema behaviour: pruning, Strict refusal, the SSA 500, 422s,
body limits and malformed JSON, each with the exact Status body."""
import json
import unittest

from simtest import SimTestCase, vs, obj_path

VSC = "/apis/networking.istio.io/v1/namespaces/demo/virtualservices"
STATUS_KEYS = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


class SchemaTest(SimTestCase):

    def test_create_prunes_unknown_field_with_warning(self):
        o = vs("pruned")
        o["spec"]["foo"] = 1
        o["spec"]["http"] = [{"route": [{"destination": {"host": "x", "bogus": True}}]}]
        st, h, body = self.sim.request("POST", VSC, o)
        self.assertEqual(st, 201, body)
        self.assertNotIn("foo", body["spec"])
        self.assertEqual(body["spec"]["http"], [{"route": [{"destination": {"host": "x"}}]}])
        self.assertEqual(sorted(h["_warnings"]), ['299 - "unknown field \\"spec.foo\\""',
                                                  '299 - "unknown field \\"spec.http[0].route[0].destination.bogus\\""'])
        st, _, got = self.sim.request("GET", VSC + "/pruned")
        self.assertNotIn("foo", got["spec"])

    def test_create_strict_refuses_unknown_field(self):
        o = vs("strict")
        o["spec"]["foo"] = 1
        st, h, body = self.sim.request("POST", VSC + "?fieldValidation=Strict", o)
        self.assertEqual(st, 400)
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": 'VirtualService in version "v1" cannot be handled as a VirtualService: '
                                           'strict decoding error: unknown field "spec.foo"',
                                "reason": "BadRequest", "code": 400})
        self.assertEqual(self.sim.request("GET", VSC + "/strict")[0], 404)

    def test_apply_unknown_field_is_500_not_pruned(self):
        o = vs("ssa-unknown")
        o["spec"]["foo"] = "bar"
        for fv in ("Strict", "Ignore"):
            st, h, body = self.sim.apply(o, fieldValidation=fv)
            self.assertEqual(st, 500)
            self.assertEqual(list(body.keys()), ["kind", "apiVersion", "metadata", "status", "message", "code"])
            self.assertEqual(body["message"], "failed to create typed patch object (demo/ssa-unknown; "
                                              "networking.istio.io/v1, Kind=VirtualService): .spec.foo: field not "
                                              "declared in schema")
        self.assertEqual(self.sim.request("GET", VSC + "/ssa-unknown")[0], 404)

    def test_merge_patch_prunes_or_refuses(self):
        self.assertEqual(self.sim.apply(vs("mp"))[0], 201)
        p = {"spec": {"foo": 1, "gateways": ["mesh"]}}
        st, _, body = self.sim.request("PATCH", VSC + "/mp?fieldValidation=Strict", p,
                                       ctype="application/merge-patch+json")
        self.assertEqual(st, 422)
        self.assertEqual(body["reason"], "Invalid")
        self.assertTrue(body["message"].startswith(' "" is invalid: patch: Invalid value: "{'), body["message"])
        self.assertTrue(body["message"].endswith(': strict decoding error: unknown field "spec.foo"'))
        self.assertEqual(body["details"]["causes"][0]["field"], "patch")
        st, _, body = self.sim.request("PATCH", VSC + "/mp?fieldValidation=Ignore", p,
                                       ctype="application/merge-patch+json")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["spec"], {"hosts": ["reviews"], "gateways": ["mesh"]})
        mf = [e for e in body["metadata"]["managedFields"] if e["operation"] == "Update"]
        self.assertEqual([(e["manager"], e["fieldsV1"]) for e in mf],
                         [("kubesim-test", {"f:spec": {"f:gateways": {}}})])

    def test_missing_required_fields_422(self):
        imgw = {"apiVersion": "servicemesh.cisco.com/v1alpha1", "kind": "IstioMeshGateway",
                "metadata": {"name": "gw", "namespace": "demo"}, "spec": {"type": "sideways"}}
        st, _, body = self.sim.apply(imgw)
        self.assertEqual(st, 422)
        self.assertEqual(body["message"],
                         'IstioMeshGateway.servicemesh.cisco.com "gw" is invalid: [spec.istioControlPlane: Required '
                         'value, spec.service: Required value, spec.type: Unsupported value: "sideways": supported '
                         'values: "ingress", "egress"]')
        self.assertEqual(body["details"], {
            "name": "gw", "group": "servicemesh.cisco.com", "kind": "IstioMeshGateway",
            "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.istioControlPlane"},
                       {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.service"},
                       {"reason": "FieldValueNotSupported", "message": 'Unsupported value: "sideways": supported '
                                                                      'values: "ingress", "egress"', "field": "spec.type"}]})
        se = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
              "metadata": {"name": "se", "namespace": "demo"}, "spec": {"hosts": "not-a-list"}}
        st, _, body = self.sim.request("POST", obj_path(se, False), se)
        self.assertEqual(st, 422)
        # the head CRDs have CEL rules, which a blocking error keeps from running
        cel = ('<nil>: Invalid value: "null": some validation rules were not checked because the object was '
               'invalid; correct the existing errors to complete validation')
        self.assertEqual(body["message"], 'ServiceEntry.networking.istio.io "se" is invalid: [spec.hosts: Invalid '
                                          'value: "string": spec.hosts in body must be of type array: "string", '
                                          + cel + ']')
        self.assertEqual(body["details"]["causes"][0]["reason"], "FieldValueTypeInvalid")
        st, _, body = self.sim.request("POST", obj_path(se, False), dict(se, spec={}))
        self.assertEqual((st, body["message"]), (422, 'ServiceEntry.networking.istio.io "se" is invalid: '
                                                      '[spec.hosts: Required value, ' + cel + ']'))

    def test_create_in_missing_namespace_404(self):
        st, _, body = self.sim.apply(vs("x", ns="ghost"))
        self.assertEqual(st, 404)
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": 'namespaces "ghost" not found', "reason": "NotFound",
                                "details": {"name": "ghost", "kind": "namespaces"}, "code": 404})
        st, _, body = self.sim.request("GET", "/apis/networking.istio.io/v1/namespaces/ghost/virtualservices")
        self.assertEqual((st, body["items"], body["kind"]), (200, [], "VirtualServiceList"))

    def test_body_limits_and_malformed_json(self):
        st, _, body = self.sim.request("POST", VSC, b'{"apiVersion": ' + b" " * (3 * 1024 * 1024))
        self.assertEqual(st, 413)
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "Request entity too large: limit is 3145728",
                                "reason": "RequestEntityTooLarge", "code": 413})
        st, _, body = self.sim.request("POST", VSC, b'{"apiVersion": "networking.istio.io/v1", ')
        self.assertEqual((st, body["reason"], body["code"]), (400, "BadRequest", 400))
        self.assertEqual(list(body), ["kind", "apiVersion", "metadata", "status", "message", "reason", "code"])

    def test_unknown_path_and_patch_type(self):
        # a CRD group's missing path: the real server's mux says Go's plain 404
        st, _, body = self.sim.request("GET", "/apis/networking.istio.io/v1/namespaces/demo/nothings")
        self.assertEqual((st, body), (404, b"404 page not found\n"))
        # under a built-in group: go-restful's Status
        st, _, body = self.sim.request("GET", "/apis/apps/v1/namespaces/demo/nothings")
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "the server could not find the requested resource", "reason": "NotFound",
                                "details": {}, "code": 404})
        self.assertEqual(self.sim.apply(vs("smp"))[0], 201)
        st, _, body = self.sim.request("PATCH", VSC + "/smp", {"spec": {}},
                                       ctype="application/strategic-merge-patch+json")
        self.assertEqual((st, body["reason"]), (415, "UnsupportedMediaType"))
        st, _, body = self.sim.request("PATCH", VSC + "/smp?force=true", {"spec": {}},
                                       ctype="application/merge-patch+json")
        self.assertEqual((st, body["message"]), (422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: '
                                                      'may not be specified for non-apply patch'))
        st, _, body = self.sim.request("PATCH", VSC + "/smp", vs("smp"), ctype="application/apply-patch+yaml")
        self.assertEqual((st, body["message"]), (422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                                      'Required value: is required for apply patch'))

    def test_head_cluster_prefers_v1(self):
        st, _, body = self.sim.request("GET", "/apis/networking.istio.io", cluster="c1")
        self.assertEqual(body["preferredVersion"]["version"], "v1")


class Istio117Test(SimTestCase):
    ARGS = ("--namespace", "demo", "--istio", "v1alpha3", "--no-smm", "c1")

    def test_restricted_versions(self):
        st, _, body = self.sim.request("GET", "/apis/networking.istio.io")
        self.assertEqual([v["version"] for v in body["versions"]], ["v1alpha3"])
        self.assertEqual(self.sim.request("GET", "/apis/networking.istio.io/v1/namespaces/demo/virtualservices")[0], 404)
        self.assertEqual(self.sim.request("GET", "/apis/networking.istio.io/v1beta1")[0], 404)
        self.assertEqual(self.sim.request("GET", "/apis/servicemesh.cisco.com/v1alpha1")[0], 404)
        st, _, body = self.sim.apply(vs("old", version="v1alpha3"))
        self.assertEqual((st, body["apiVersion"]), (201, "networking.istio.io/v1alpha3"))
        # a field added to the head schema after 1.17 is unknown to the 1.17.8 schema
        o = vs("old2", version="v1alpha3")
        o["spec"]["http"] = [{"name": "r", "route": [{"destination": {"host": "x"}}], "mirrors": []}]
        st, _, body = self.sim.apply(o)
        self.assertEqual(st, 500, body)
        self.assertIn(".spec.http[0].mirrors: field not declared in schema", body["message"])


if __name__ == "__main__":
    unittest.main()
