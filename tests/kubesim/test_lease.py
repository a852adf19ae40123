"""The built-in kinds egressd uses for leader election and sharding:
coordination.k8s.io/v1 Lease and v1 ConfigMap. The answers are the real
kube-apiserver 1.32's (tests/realk8s/parity/test_leases.py compares them
request by request; EGRESSD_TEST_APISERVER=real runs this module there)."""
import copy
import http.client
import json
import unittest

from simtest import SimTestCase, AGG_ACCEPT, TABLE_ACCEPT

LP = "/apis/coordination.k8s.io/v1/namespaces/demo/leases"
CP = "/api/v1/namespaces/demo/configmaps"
MERGE = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
T0 = "2026-12-07T23:00:00.123456Z"
LAYOUT = "2006-01-02T15:04:05.000000Z07:00"


def lease(name, **spec):
    o = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}}
    if spec:
        o["spec"] = spec
    return o


def cm(name, **fields):
    return dict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, **fields)


def status(code, reason, message, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
          "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


def lease_400(msg):
    return status(400, "BadRequest", 'Lease in version "v1" cannot be handled as a Lease: ' + msg)


def cm_400(msg):
    return status(400, "BadRequest", 'ConfigMap in version "v1" cannot be handled as a ConfigMap: ' + msg)


class LeaseTest(SimTestCase):

    def post(self, obj, query=""):
        return self.sim.request("POST", LP + query, obj)

    def test_leader_election(self):
        """What client-go's leaderelection does: GET, POST, PUT with the
        resourceVersion read."""
        s = self.sim
        st, _, body = s.request("GET", LP + "/le")
        self.assertEqual((st, body), (404, status(404, "NotFound", 'leases.coordination.k8s.io "le" not found',
                                                  {"name": "le", "group": "coordination.k8s.io",
                                                   "kind": "leases"})))
        rec = lease("le", holderIdentity="a", leaseDurationSeconds=15, acquireTime=T0, renewTime=T0,
                    leaseTransitions=0)
        st, _, o = s.request("POST", LP + "?fieldManager=a", rec)
        self.assertEqual(st, 201, o)
        self.assertEqual(o["spec"], rec["spec"])
        self.assertNotIn("generation", o["metadata"])
        self.assertEqual([(e["manager"], e["operation"], e["fieldsV1"]) for e in o["metadata"]["managedFields"]],
                         [("a", "Update", {"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {},
                                                      "f:leaseDurationSeconds": {}, "f:leaseTransitions": {},
                                                      "f:renewTime": {}}})])
        st, _, body = s.request("POST", LP, rec)
        self.assertEqual((st, body), (409, status(409, "AlreadyExists",
                                                  'leases.coordination.k8s.io "le" already exists',
                                                  {"name": "le", "group": "coordination.k8s.io",
                                                   "kind": "leases"})))
        renew = copy.deepcopy(o)
        renew["spec"]["renewTime"] = "2026-12-07T23:00:02.000000Z"
        st, _, o2 = s.request("PUT", LP + "/le?fieldManager=a", renew)
        self.assertEqual((st, o2["spec"]["renewTime"]), (200, "2026-12-07T23:00:02.000000Z"))
        self.assertGreater(int(o2["metadata"]["resourceVersion"]), int(o["metadata"]["resourceVersion"]))
        self.assertNotIn("generation", o2["metadata"])
        # the loser of the race still holds the old resourceVersion
        st, _, body = s.request("PUT", LP + "/le?fieldManager=b", renew)
        self.assertEqual((st, body), (409, status(
            409, "Conflict", 'Operation cannot be fulfilled on leases.coordination.k8s.io "le": the object has '
                             'been modified; please apply your changes to the latest version and try again',
            {"name": "le", "group": "coordination.k8s.io", "kind": "leases"})))
        # never unconditionally: Lease's strategy does not AllowUnconditionalUpdate
        del renew["metadata"]["resourceVersion"]
        st, _, body = s.request("PUT", LP + "/le", renew)
        self.assertEqual((st, body), (422, status(
            422, "Invalid", 'leases.coordination.k8s.io "le" is invalid: metadata.resourceVersion: Invalid value: '
                            '0x0: must be specified for an update',
            {"name": "le", "group": "coordination.k8s.io", "kind": "leases",
             "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an "
                                                                   "update", "field": "metadata.resourceVersion"}]})))
        st, _, o3 = s.request("GET", LP + "/le")
        self.assertEqual((st, o3), (200, o2))
        st, _, body = s.request("DELETE", LP + "/le")
        self.assertEqual((st, body), (200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                            "status": "Success",
                                            "details": {"name": "le", "group": "coordination.k8s.io",
                                                        "kind": "leases", "uid": o["metadata"]["uid"]}}))
        self.assertEqual(s.request("GET", LP + "/le")[0], 404)

    def test_put_creates(self):
        """Lease's strategy allows create on update (a resourceVersion in the
        body is ignored); ConfigMap's does not."""
        s = self.sim
        st, _, o = s.request("PUT", LP + "/by-put?fieldManager=p", dict(lease("by-put", holderIdentity="x"),
                                                                       metadata={"name": "by-put",
                                                                                 "resourceVersion": "12345"}))
        self.assertEqual((st, o["spec"], o["metadata"]["managedFields"][0]["operation"]),
                         (201, {"holderIdentity": "x"}, "Update"))
        self.assertNotEqual(o["metadata"]["resourceVersion"], "12345")
        st, _, body = s.request("PUT", CP + "/by-put", cm("by-put"))
        self.assertEqual((st, body["message"]), (404, 'configmaps "by-put" not found'))
        st, _, body = s.request("PUT", "/apis/coordination.k8s.io/v1/namespaces/ghost/leases/x", lease("x"))
        self.assertEqual((st, body["message"]), (404, 'namespaces "ghost" not found'))

    def test_microtime(self):
        cases = [("2026-12-07T23:00:00.123456+01:00", "2026-12-07T22:00:00.123456Z"),
                 ("2026-12-07T23:00:00,123456Z", "2026-12-07T23:00:00.123456Z"),
                 ("2026-12-07T3:00:00.123456Z", "2026-12-07T03:00:00.123456Z"),
                 ("0001-01-01T00:00:00.000000Z", None)]
        for i, (t, want) in enumerate(cases):
            st, _, o = self.post(lease("mt%d" % i, renewTime=t))
            self.assertEqual((st, o["spec"]), (201, {"renewTime": want}), t)
        bad = [("2026-12-07T23:00:01Z", 'cannot parse "Z" as ".000000"'),
               ("bogus", 'cannot parse "bogus" as "2006"'),
               ("2026-12-07T23:00:00.123Z", 'cannot parse ".123Z" as ".000000"'),
               ("2026-12-07T23:00:00.1234567Z", 'cannot parse "7Z" as "Z07:00"'),
               ("2026-12-07T23:00:00.123456", 'cannot parse "" as "Z07:00"'),
               ("2026-12-07 23:00:00.123456Z", 'cannot parse " 23:00:00.123456Z" as "T"'),
               ("2026-12-07T23:00:00.123456+0100", 'cannot parse "+0100" as "Z07:00"')]
        for t, why in bad:
            st, _, body = self.post(lease("mt-bad", renewTime=t))
            self.assertEqual((st, body), (400, lease_400('parsing time "%s" as "%s": %s' % (t, LAYOUT, why))), t)
        for t, why in (("2026-13-07T23:00:00.123456Z", "month out of range"),
                       ("2026-12-07T24:00:00.123456Z", "hour out of range"),
                       ("2026-02-30T23:00:00.123456Z", "day out of range"),
                       ("2026-12-07T23:00:00.123456Zjunk", 'extra text: "junk"')):
            st, _, body = self.post(lease("mt-bad", acquireTime=t))
            self.assertEqual((st, body), (400, lease_400('parsing time "%s": %s' % (t, why))), t)
        st, _, body = self.post(lease("mt-bad", renewTime=123))
        self.assertEqual((st, body), (400, lease_400("json: cannot unmarshal number into Go struct field "
                                                     "LeaseSpec.spec.renewTime of type string")))

    def test_type_errors(self):
        cases = [({"holderIdentity": 5}, "number into Go struct field LeaseSpec.spec.holderIdentity of type string"),
                 ({"leaseDurationSeconds": "15"},
                  "string into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32"),
                 ({"leaseDurationSeconds": 1.5},
                  "number 1.5 into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32"),
                 ({"leaseDurationSeconds": 3000000000},
                  "number 3000000000 into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32"),
                 ({"leaseTransitions": True},
                  "bool into Go struct field LeaseSpec.spec.leaseTransitions of type int32"),
                 # the first type error is the one reported
                 ({"holderIdentity": {"a": 1}, "leaseDurationSeconds": "x"},
                  "object into Go struct field LeaseSpec.spec.holderIdentity of type string"),
                 ("x", "string into Go struct field Lease.spec of type v1.LeaseSpec")]
        for spec, msg in cases:
            body = lease("te")
            body["spec"] = spec
            st, _, out = self.post(body)
            self.assertEqual((st, out), (400, lease_400("json: cannot unmarshal " + msg)), spec)
        # ... unless a MicroTime fails: that ends the decoding
        st, _, out = self.post(lease("te", leaseDurationSeconds="x", renewTime="bad"))
        self.assertEqual(out["message"], lease_400('parsing time "bad" as "%s": cannot parse "bad" as "2006"'
                                                   % LAYOUT)["message"])
        st, _, o = self.post(lease("te-null", holderIdentity=None, leaseDurationSeconds=2147483647))
        self.assertEqual((st, o["spec"]), (201, {"leaseDurationSeconds": 2147483647}))

    def test_validation_and_dropped_fields(self):
        st, _, body = self.post(lease("va", leaseDurationSeconds=-1, leaseTransitions=-1))
        self.assertEqual((st, body), (422, status(
            422, "Invalid", 'Lease.coordination.k8s.io "va" is invalid: [spec.leaseDurationSeconds: Invalid value: '
                            '-1: must be greater than 0, spec.leaseTransitions: Invalid value: -1: must be greater '
                            'than or equal to 0]',
            {"name": "va", "group": "coordination.k8s.io", "kind": "Lease",
             "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than 0",
                         "field": "spec.leaseDurationSeconds"},
                        {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or "
                                                                   "equal to 0", "field": "spec.leaseTransitions"}]})))
        # CoordinatedLeaderElection is off in 1.32: strategy and preferredHolder
        # are dropped after the field manager saw them
        st, _, o = self.post(lease("cle", holderIdentity="a", strategy="Bogus", preferredHolder="b"))
        self.assertEqual((st, o["spec"]), (201, {"holderIdentity": "a"}))
        self.assertEqual(o["metadata"]["managedFields"][0]["fieldsV1"],
                         {"f:spec": {"f:holderIdentity": {}, "f:preferredHolder": {}, "f:strategy": {}}})
        # no spec: an empty one, and nothing to manage
        st, _, o = self.post(lease("nospec"))
        self.assertEqual((st, o["spec"]), (201, {}))
        self.assertNotIn("managedFields", o["metadata"])
        # unknown fields: pruned with a warning, 400 under Strict
        st, h, o = self.post(lease("uf", holderIdentity="a", bogus=1))
        self.assertEqual((st, o["spec"], h["_warnings"]), (201, {"holderIdentity": "a"},
                                                           ['299 - "unknown field \\"spec.bogus\\""']))
        st, _, body = self.post(lease("uf2", bogus=1), "?fieldValidation=Strict")
        self.assertEqual((st, body), (400, lease_400('strict decoding error: unknown field "spec.bogus"')))

    def test_patch_and_apply_errors(self):
        s = self.sim
        self.assertEqual(self.post(lease("pa", holderIdentity="a"))[0], 201)
        st, _, o = s.request("PATCH", LP + "/pa", {"spec": {"renewTime": "2026-12-07T23:00:05.000000+02:00"}},
                             ctype=MERGE)
        self.assertEqual((st, o["spec"]["renewTime"]), (200, "2026-12-07T21:00:05.000000Z"))
        st, _, body = s.request("PATCH", LP + "/pa", {"spec": {"leaseDurationSeconds": "x"}}, ctype=MERGE)
        self.assertEqual((st, body["details"]["causes"][0]["field"]), (422, "patch"))
        self.assertTrue(body["message"].endswith('}": json: cannot unmarshal string into Go struct field '
                                                 'LeaseSpec.spec.leaseDurationSeconds of type int32'), body)
        # a strategic merge patch: the unstructured converter's words
        for patch, msg in (({"spec": {"leaseDurationSeconds": "x"}}, "unrecognized type: int32"),
                           ({"spec": {"leaseDurationSeconds": 1.5}}, "cannot convert float64 to int32"),
                           ({"spec": {"holderIdentity": 5}}, "cannot convert int64 to string"),
                           ({"spec": "x"}, "cannot restore struct from: string")):
            st, _, body = s.request("PATCH", LP + "/pa", patch, ctype=SMP)
            value = "map[spec:%s]" % ("x" if patch["spec"] == "x" else "map[%s:%s]" % list(patch["spec"].items())[0])
            self.assertEqual((st, body), (422, status(
                422, "Invalid", ' "" is invalid: patch: Invalid value: "%s": %s' % (value, msg),
                {"causes": [{"reason": "FieldValueInvalid", "message": 'Invalid value: "%s": %s' % (value, msg),
                             "field": "patch"}]})), patch)
        st, _, body = s.request("PATCH", LP + "/pa?fieldManager=m", lease("pa", acquireTime="bad"), ctype=APPLY)
        self.assertEqual((st, body), (500, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'failed to convert new object (/pa; coordination.k8s.io/v1, Kind=Lease) to proper version: '
                       'unable to convert unstructured object to coordination.k8s.io/v1, Kind=Lease: parsing time '
                       '"bad" as "%s": cannot parse "bad" as "2006"' % LAYOUT, "code": 500}))
        st, _, body = s.request("PATCH", LP + "/pa?fieldManager=m", lease("pa", leaseDurationSeconds="x"),
                                ctype=APPLY)
        self.assertEqual((st, body["message"]), (500, "failed to create typed patch object (/pa; "
                                                      "coordination.k8s.io/v1, Kind=Lease): .spec.leaseDurationSeconds:"
                                                      " expected numeric (int or float), got string"))
        st, _, o = s.request("PATCH", LP + "/pa?fieldManager=m", lease("pa", leaseDurationSeconds=10), ctype=APPLY)
        self.assertEqual((st, o["spec"]["leaseDurationSeconds"]), (200, 10))

    def test_watch_selector(self):
        """A Lease that stops matching the selector is DELETED with the
        content it had (and the resourceVersion of the change)."""
        s = self.sim
        st, _, lst = s.request("GET", LP)
        conn = http.client.HTTPSConnection("127.0.0.1", s.ports["c1"], context=s.ssl, timeout=30)
        conn.request("GET", LP + "?watch=true&timeoutSeconds=2&labelSelector=app%3Degressd&resourceVersion="
                     + lst["metadata"]["resourceVersion"],
                     headers={"Authorization": "Bearer " + s.token(), "Accept": "application/json"})
        r = conn.getresponse()
        o = lease("w1", holderIdentity="a")
        o["metadata"]["labels"] = {"app": "egressd"}
        self.assertEqual(self.post(o)[0], 201)
        st, _, moved = s.request("PATCH", LP + "/w1", {"metadata": {"labels": {"app": "other"}}}, ctype=MERGE)
        self.assertEqual(st, 200)
        events = [json.loads(line) for line in r.read().splitlines()]
        conn.close()
        self.assertEqual([(e["type"], e["object"]["metadata"]["labels"], e["object"]["metadata"]["resourceVersion"])
                          for e in events],
                         [("ADDED", {"app": "egressd"}, events[0]["object"]["metadata"]["resourceVersion"]),
                          ("DELETED", {"app": "egressd"}, moved["metadata"]["resourceVersion"])])

    def test_discovery_and_table(self):
        s = self.sim
        st, _, body = s.request("GET", "/apis/coordination.k8s.io/v1")
        self.assertEqual(body, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "coordination.k8s.io/v1",
                                "resources": [{"name": "leases", "singularName": "lease", "namespaced": True,
                                               "kind": "Lease", "verbs": ["create", "delete", "deletecollection",
                                                                          "get", "list", "patch", "update", "watch"],
                                               "storageVersionHash": "gqkMMb/YqFM="}]})
        st, _, body = s.request("GET", "/api/v1")
        self.assertIn({"name": "configmaps", "singularName": "configmap", "namespaced": True, "kind": "ConfigMap",
                       "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                       "shortNames": ["cm"], "storageVersionHash": "qFsyl6wFWjQ="}, body["resources"])
        st, _, body = s.request("GET", "/apis", headers={"Accept": AGG_ACCEPT})
        group = [g for g in body["items"] if g["metadata"]["name"] == "coordination.k8s.io"]
        self.assertEqual([[(r["resource"], r["responseKind"]) for r in v["resources"]] for v in group[0]["versions"]],
                         [[("leases", {"group": "", "version": "", "kind": "Lease"})]])
        self.assertEqual(self.post(lease("tbl", holderIdentity="me"))[0], 201)
        st, _, t = s.request("GET", LP + "/tbl", headers={"Accept": TABLE_ACCEPT})
        self.assertEqual(([c["name"] for c in t["columnDefinitions"]], t["rows"][0]["cells"][:2]),
                         (["Name", "Holder", "Age"], ["tbl", "me"]))
        rc, out, err = s.kubectl("get", "leases", "tbl", "-n", "demo")
        self.assertEqual((rc, out.split()[:5]), (0, ["NAME", "HOLDER", "AGE", "tbl", "me"]), err)


class ConfigMapTest(SimTestCase):

    def test_crud_and_unconditional_update(self):
        s = self.sim
        body = cm("cfg", data={"shard": "1"}, binaryData={"bin": "aGVs\nbG8="})
        st, _, o = s.request("POST", CP, body)
        self.assertEqual((st, o["data"], o["binaryData"]), (201, {"shard": "1"}, {"bin": "aGVsbG8="}))
        self.assertNotIn("generation", o["metadata"])
        st, _, body2 = s.request("POST", CP, body)
        self.assertEqual((st, body2["message"]), (409, 'configmaps "cfg" already exists'))
        # ConfigMap's strategy allows an update without resourceVersion
        st, _, o2 = s.request("PUT", CP + "/cfg", cm("cfg", data={"shard": "2"}))
        self.assertEqual((st, o2["data"], "binaryData" in o2), (200, {"shard": "2"}, False))
        st, _, out = s.request("PUT", CP + "/cfg", dict(cm("cfg"), metadata={"name": "cfg",
                                                                             "resourceVersion": "1"}))
        self.assertEqual((st, out["reason"]), (409, "Conflict"))
        st, _, t = s.request("GET", CP + "/cfg", headers={"Accept": TABLE_ACCEPT})
        self.assertEqual(([c["name"] for c in t["columnDefinitions"]], t["rows"][0]["cells"][:2]),
                         (["Name", "Data", "Age"], ["cfg", 1]))
        # empty maps are not stored, a null value is ""
        st, _, o = s.request("POST", CP, cm("empty", data={}, binaryData={"b": None}))
        self.assertEqual((st, "data" in o, o["binaryData"]), (201, False, {"b": ""}))
        st, _, out = s.request("DELETE", CP + "/cfg")
        self.assertEqual((st, out["details"]), (200, {"name": "cfg", "kind": "configmaps",
                                                      "uid": o2["metadata"]["uid"]}))

    def test_decode_errors(self):
        for fields, msg in (({"data": {"a": 1}}, "json: cannot unmarshal number into Go struct field ConfigMap.data "
                                                 "of type string"),
                            ({"data": ["x"]}, "json: cannot unmarshal array into Go struct field ConfigMap.data of "
                                              "type map[string]string"),
                            ({"binaryData": {"k": 5}}, "json: cannot unmarshal number into Go struct field "
                                                       "ConfigMap.binaryData of type []uint8"),
                            ({"immutable": "yes"}, "json: cannot unmarshal string into Go struct field "
                                                   "ConfigMap.immutable of type bool"),
                            ({"binaryData": {"k": "!!"}}, "illegal base64 data at input byte 0"),
                            ({"binaryData": {"k": "aGVsbG8"}}, "illegal base64 data at input byte 4"),
                            ({"binaryData": {"k": "aGVsbG8=x"}}, "illegal base64 data at input byte 8"),
                            ({"binaryData": {"k": "a==="}}, "illegal base64 data at input byte 1")):
            st, _, body = self.sim.request("POST", CP, cm("de", **fields))
            self.assertEqual((st, body), (400, cm_400(msg)), fields)

    def test_validation(self):
        key_msg = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                   "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
        for fields, causes in (({"data": {"a b": "1"}}, [("data[a b]", 'Invalid value: "a b": ' + key_msg)]),
                               ({"data": {"..x": "1"}}, [("data[..x]", 'Invalid value: "..x": must not start with '
                                                                       "'..'")]),
                               ({"binaryData": {".": ""}}, [("binaryData[.]", 'Invalid value: ".": must not be '
                                                                              "'.'")]),
                               ({"data": {"k": "1"}, "binaryData": {"k": ""}},
                                [("data[k]", 'Invalid value: "k": duplicate of key present in binaryData')])):
            st, _, body = self.sim.request("POST", CP, cm("va", **fields))
            self.assertEqual((st, [(c["field"], c["message"]) for c in body["details"]["causes"]]), (422, causes))
            self.assertTrue(body["message"].startswith('ConfigMap "va" is invalid: '), body)
        st, _, body = self.sim.request("POST", CP, cm("big", data={"a": "x" * (1024 * 1024 + 1)}))
        self.assertEqual((st, body["message"]), (422, 'ConfigMap "big" is invalid: []: Too long: may not be more '
                                                      'than 1048576 bytes'))

    def test_immutable(self):
        s = self.sim
        st, _, o = s.request("POST", CP, cm("im", data={"a": "1"}, immutable=True))
        self.assertEqual(st, 201)
        forbidden = "Forbidden: field is immutable when `immutable` is set"
        st, _, body = s.request("PATCH", CP + "/im", {"data": {"a": "2"}, "immutable": False}, ctype=MERGE)
        self.assertEqual((st, body["message"], [c["field"] for c in body["details"]["causes"]]),
                         (422, 'ConfigMap "im" is invalid: [immutable: %s, data: %s]' % (forbidden, forbidden),
                          ["immutable", "data"]))
        # an empty map is not an absent one
        st, _, body = s.request("PUT", CP + "/im", cm("im", data={"a": "1"}, immutable=True, binaryData={}))
        self.assertEqual((st, body["message"]), (422, 'ConfigMap "im" is invalid: binaryData: ' + forbidden))
        st, _, o2 = s.request("PATCH", CP + "/im", {"metadata": {"labels": {"x": "y"}}}, ctype=MERGE)
        self.assertEqual((st, o2["metadata"]["labels"]), (200, {"x": "y"}))


if __name__ == "__main__":
    unittest.main()
