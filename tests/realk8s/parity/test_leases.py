"""Parity of the built-in kinds egressd uses for leader election and
sharding: coordination.k8s.io/v1 Lease (what client-go's leaderelection
does: GET, POST, PUT with resourceVersion) and v1 ConfigMap. Their decoding
into Go structs (MicroTime, base64, JSON types: 400 on create and update, 422
on a patch, 500 on apply), their validation and update strategies, lists,
watches and tables."""
import copy
import threading
import unittest

from paritylib import (ParityCase, APPLY, MERGE, NS, diff, norm, request, rv_of, sorted_causes, vs, VSP,
                       watch, wait_for)

LP = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % NS
CP = "/api/v1/namespaces/%s/configmaps" % NS
SMP = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
T0 = "2026-12-07T23:00:00.123456Z"


def lease(name, **spec):
    o = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}}
    if spec:
        o["spec"] = spec
    return o


def cm(name, **fields):
    return dict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, **fields)


def apply_path(base, name, manager, force=False):
    return "%s/%s?fieldManager=%s%s" % (base, name, manager, "&force=true" if force else "")


def with_rv(obj, rv):
    o = copy.deepcopy(obj)
    o["metadata"]["resourceVersion"] = rv
    return o


def patch_message_tail(resp):
    """A 422 of a JSON or merge patch quotes the whole patched object, written
    by each server in its own key order (README, Known limits): its decoding
    error only."""
    return resp.body["message"].rpartition('}": ')[2]


class Leases(ParityCase):

    def put_each(self, path, obj, rv_from=None, **kw):
        """A PUT of obj with each server's own resourceVersion (of its Resp in rv_from)."""
        outs = []
        for srv, prev in zip((self.sim, self.real), rv_from or (None, None)):
            o = with_rv(obj, prev.body["metadata"]["resourceVersion"]) if prev is not None else obj
            outs.append(request(srv, "PUT", path, o, **kw))
        return outs

    def test_leader_election_cycle(self):
        """client-go's leaderelection against a Lease: get, create, renew
        with the resourceVersion, lose a race, take over, release."""
        s, r = self.both("GET", LP + "/le")
        self.assertSame(s, r, "get missing")
        self.assertEqual((s.status, s.body["message"]), (404, 'leases.coordination.k8s.io "le" not found'))
        rec = lease("le", holderIdentity="a", leaseDurationSeconds=15, acquireTime=T0, renewTime=T0,
                    leaseTransitions=0)
        created = self.both("POST", LP + "?fieldManager=a", rec)
        self.assertSame(*created, what="create")
        self.assertEqual(created[1].status, 201)
        self.assertNotIn("generation", created[1].body["metadata"])
        self.assertEqual(created[1].body["spec"], rec["spec"])
        s, r = self.both("POST", LP, rec)
        self.assertSame(s, r, "create again")
        self.assertEqual((s.status, s.body["reason"], s.body["message"]),
                         (409, "AlreadyExists", 'leases.coordination.k8s.io "le" already exists'))
        # renew: a PUT with the resourceVersion read
        renew = copy.deepcopy(rec)
        renew["spec"]["renewTime"] = "2026-12-07T23:00:02.000001Z"
        renewed = self.put_each(LP + "/le?fieldManager=a", renew, created)
        self.assertSame(*renewed, what="renew")
        self.assertEqual(renewed[1].status, 200)
        for new, old in zip(renewed, created):
            self.assertGreater(rv_of(new), rv_of(old))
        # the loser of a race: its resourceVersion is stale
        s, r = self.put_each(LP + "/le?fieldManager=b", renew, created)
        self.assertSame(s, r, "stale resourceVersion")
        self.assertEqual((s.status, s.body["reason"], s.body["message"]),
                         (409, "Conflict", 'Operation cannot be fulfilled on leases.coordination.k8s.io "le": the '
                                           'object has been modified; please apply your changes to the latest '
                                           'version and try again'))
        # a Lease is never updated unconditionally (AllowUnconditionalUpdate is false)
        s, r = self.both("PUT", LP + "/le", renew)
        self.assertSame(s, r, "no resourceVersion")
        self.assertEqual((s.status, s.body["reason"], s.body["message"]),
                         (422, "Invalid", 'leases.coordination.k8s.io "le" is invalid: metadata.resourceVersion: '
                                          'Invalid value: 0x0: must be specified for an update'))
        # take over: another holder, one more transition, another manager
        take = copy.deepcopy(renew)
        take["spec"].update(holderIdentity="b", acquireTime="2026-12-07T23:01:00.000000Z",
                            renewTime="2026-12-07T23:01:00.000000Z", leaseTransitions=1)
        taken = self.put_each(LP + "/le?fieldManager=b", take, renewed)
        self.assertSame(*taken, what="take over")
        # a still owns leaseDurationSeconds, which b did not change
        self.assertEqual([(e["manager"], e["fieldsV1"]) for e in taken[1].body["metadata"]["managedFields"]],
                         [("a", {"f:spec": {"f:leaseDurationSeconds": {}}}),
                          ("b", {"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseTransitions": {},
                                            "f:renewTime": {}}})])
        s, r = self.both("GET", LP + "/le")
        self.assertSame(s, r, "get")
        # release: the holder clears itself (merge patch), then the Lease goes
        s, r = self.both("PATCH", LP + "/le?fieldManager=b", {"spec": {"holderIdentity": None}}, ctype=MERGE)
        self.assertSame(s, r, "release")
        self.assertNotIn("holderIdentity", r.body["spec"])
        s, r = self.both("DELETE", LP + "/le")
        self.assertSame(s, r, "delete")
        self.assertEqual((s.body["kind"], s.body["status"]), ("Status", "Success"))
        s, r = self.both("GET", LP + "/le")
        self.assertEqual((s.status, r.status), (404, 404))

    def test_put_creates(self):
        """Lease allows create on update (201, a resourceVersion in the body
        is ignored). A ConfigMap, a Deployment and a CRD's object do not
        (404); a Service does."""
        s, r = self.both("PUT", LP + "/by-put", lease("by-put", holderIdentity="a"))
        self.assertSame(s, r, "create by PUT")
        self.assertEqual(s.status, 201)
        s, r = self.both("PUT", LP + "/by-put2", with_rv(lease("by-put2"), "12345"))
        self.assertSame(s, r, "create by PUT with a resourceVersion: ignored")
        self.assertEqual(s.status, 201)
        s, r = self.both("PUT", LP + "/by-put3", lease("other"))
        self.assertSame(s, r, "name mismatch")
        self.assertEqual(s.status, 400)
        s, r = self.both("PUT", CP + "/by-put", cm("by-put", data={"a": "b"}))
        self.assertSame(s, r, "ConfigMap")
        self.assertEqual(s.status, 404)
        s, r = self.both("PUT", "/apis/apps/v1/namespaces/%s/deployments/by-put" % NS,
                         {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "by-put"}})
        self.assertSame(s, r, "Deployment")
        self.assertEqual(s.status, 404)
        s, r = self.both("PUT", VSP + "/by-put", vs("by-put"))
        self.assertSame(s, r, "VirtualService")
        self.assertEqual(s.status, 404)
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "by-put"},
               "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
        s, r = self.both("PUT", "/api/v1/namespaces/%s/services/by-put" % NS, svc)
        self.assertEqual((s.status, r.status), (201, 201))
        self.assertEqual((s.body["spec"]["externalName"], s.body["metadata"]["managedFields"][0]["operation"]),
                         (r.body["spec"]["externalName"], r.body["metadata"]["managedFields"][0]["operation"]))
        s, r = self.both("PUT", "/api/v1/namespaces/ghost/leases/x", lease("x"))
        self.assertSame(s, r, "core path of a coordination kind")
        s, r = self.both("PUT", "/apis/coordination.k8s.io/v1/namespaces/ghost/leases/x", lease("x"))
        self.assertSame(s, r, "missing namespace")
        self.assertEqual((s.status, s.body["message"]), (404, 'namespaces "ghost" not found'))

    def test_crd_put_needs_resource_version(self):
        """A CRD's object is not updated unconditionally either."""
        self.assertEqual([x.status for x in self.both("POST", VSP, vs("uncond"))], [201, 201])
        s, r = self.both("PUT", VSP + "/uncond", vs("uncond", hosts=("y.example.com",)))
        self.assertSame(s, r, "PUT without resourceVersion")
        self.assertEqual(s.status, 422)

    def test_microtime(self):
        """acquireTime and renewTime are MicroTimes: RFC 3339 with exactly six
        fractional digits (comma or period), stored in UTC; the zero time is
        written as null. Anything else is the decoder's 400."""
        times = ["2026-12-07T23:00:00.123456+01:00", "2026-12-07T23:00:00,123456Z", "2026-12-07T3:00:00.123456Z",
                 "0001-01-01T00:00:00.000000Z", "2024-02-29T23:59:59.999999-00:30",
                 "2026-12-07T23:00:01Z", "bogus", "", "2026-12-07T23:00:00.123Z", "2026-12-07T23:00:00.1234567Z",
                 "2026-13-07T23:00:00.123456Z", "2026-00-07T23:00:00.123456Z", "2026-12-07T24:00:00.123456Z",
                 "2026-12-07T23:60:00.123456Z", "2026-12-07T23:00:60.123456Z", "2026-02-30T23:00:00.123456Z",
                 "2026-12-00T23:00:00.123456Z", "2026-12-07T23:00:00.123456Zjunk", "2026-12-07T23:00:00.123456",
                 "2026-12-07 23:00:00.123456Z", "2026-12-07T23:00:00.123456+0100", "2026-1-07T23:00:00.123456Z",
                 "2026-12-07T23:00:00.12345aZ", "2026-12-07T23:00:00.123456+01:0x", "20x6-12-07T23:00:00.123456Z",
                 "2026-12-07T23:00:00.-12345Z", 123, True, {"a": 1}, None]
        for i, t in enumerate(times):
            s, r = self.both("POST", LP, lease("mt%d" % i, holderIdentity="a", renewTime=t))
            self.assertSame(s, r, "renewTime %r" % (t,))
        self.assertEqual([self.both("GET", LP + "/mt%d" % i)[1].body["spec"].get("renewTime", "-")
                          for i in range(5)], ["2026-12-07T22:00:00.123456Z", "2026-12-07T23:00:00.123456Z",
                                               "2026-12-07T03:00:00.123456Z", None, "2024-03-01T00:29:59.999999Z"])
        s, r = self.both("POST", LP, lease("mt-bad", renewTime="2026-12-07T23:00:01Z"))
        self.assertEqual(r.body["message"], 'Lease in version "v1" cannot be handled as a Lease: parsing time '
                                            '"2026-12-07T23:00:01Z" as "2006-01-02T15:04:05.000000Z07:00": cannot '
                                            'parse "Z" as ".000000"')

    def test_type_errors(self):
        """encoding/json's errors: the first type error, unless a MicroTime
        fails (that one ends the decoding)."""
        specs = [{"holderIdentity": 5}, {"leaseDurationSeconds": "15"}, {"leaseDurationSeconds": 1.5},
                 {"leaseDurationSeconds": 15.0}, {"leaseDurationSeconds": 3000000000},
                 {"leaseDurationSeconds": -2147483649}, {"leaseTransitions": True}, {"holderIdentity": {"a": 1}},
                 {"holderIdentity": [1], "leaseDurationSeconds": "x"},
                 {"leaseDurationSeconds": "x", "renewTime": "bad"}, {"acquireTime": 5, "holderIdentity": 1},
                 "x", [1], 5]
        for i, spec in enumerate(specs):
            body = lease("te%d" % i)
            body["spec"] = spec
            s, r = self.both("POST", LP, body)
            self.assertSame(s, r, "spec %r" % (spec,))
            self.assertEqual(s.status, 400)
        self.assertEqual(r.body["message"], 'Lease in version "v1" cannot be handled as a Lease: json: cannot '
                                            'unmarshal number into Go struct field Lease.spec of type v1.LeaseSpec')
        # null is a nil pointer, and 2147483647 fits an int32
        s, r = self.both("POST", LP, lease("te-ok", holderIdentity=None, leaseDurationSeconds=2147483647,
                                           renewTime=None))
        self.assertSame(s, r, "nulls")
        self.assertEqual(r.body["spec"], {"leaseDurationSeconds": 2147483647})
        # the same on an update, before the resourceVersion is looked at
        s, r = self.both("PUT", LP + "/te-ok", lease("te-ok", leaseDurationSeconds="1"))
        self.assertSame(s, r, "update")
        self.assertEqual(s.status, 400)

    def test_validation(self):
        for i, spec in enumerate([{"leaseDurationSeconds": 0}, {"leaseTransitions": -1},
                                  {"leaseDurationSeconds": -1, "leaseTransitions": -1}]):
            s, r = self.both("POST", LP, lease("va%d" % i, **spec))
            self.assertEqual((s.status, r.status), (422, 422), spec)
            self.assertEqual(diff(sorted_causes(s.body), sorted_causes(r.body)), [], spec)
        self.assertEqual(r.body["details"]["causes"][0],
                         {"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than 0",
                          "field": "spec.leaseDurationSeconds"})
        for name in ("UPPER", "a_b", "x" * 254):
            s, r = self.both("POST", LP, lease(name))
            self.assertSame(s, r, "name %s" % name[:10])
        created = self.both("POST", LP, lease("va-upd", leaseDurationSeconds=5))
        s, r = self.put_each(LP + "/va-upd", lease("va-upd", leaseDurationSeconds=0), created)
        self.assertSame(s, r, "update")
        self.assertEqual(s.status, 422)

    def test_coordinated_leader_election_fields_dropped(self):
        """strategy and preferredHolder need the CoordinatedLeaderElection
        gate (off in 1.32): dropped by the strategy, after the field manager
        recorded them; never validated."""
        s, r = self.both("POST", LP, lease("cle", holderIdentity="a", strategy="OldestEmulationVersion",
                                           preferredHolder="b"))
        self.assertSame(s, r, "create")
        self.assertEqual(r.body["spec"], {"holderIdentity": "a"})
        self.assertEqual(r.body["metadata"]["managedFields"][0]["fieldsV1"],
                         {"f:spec": {"f:holderIdentity": {}, "f:preferredHolder": {}, "f:strategy": {}}})
        s, r = self.both("POST", LP, lease("cle2", preferredHolder="b", strategy="Bogus"))
        self.assertSame(s, r, "invalid, but dropped")
        s, r = self.both("PATCH", LP + "/cle", {"spec": {"strategy": "X"}}, ctype=MERGE)
        self.assertSame(s, r, "patch")
        s, r = self.both("PATCH", apply_path(LP, "cle", "ap"), lease("cle", strategy="X"), ctype=APPLY)
        self.assertSame(s, r, "apply")
        # without a spec: "spec": {} and no managedFields at all
        s, r = self.both("POST", LP, lease("nospec"))
        self.assertSame(s, r, "no spec")
        self.assertEqual((r.body["spec"], "managedFields" in r.body["metadata"]), ({}, False))

    def test_unknown_fields(self):
        body = lease("uf", holderIdentity="a", bogus=1)
        body["status"] = {"x": 1}
        s, r = self.both("POST", LP, body)
        self.assertSame(s, r, "pruned with a warning")
        self.assertEqual(r.header("warning"), '299 - "unknown field \\"spec.bogus\\"", '
                                              '299 - "unknown field \\"status\\""')
        s, r = self.both("POST", LP + "?fieldValidation=Strict", dict(lease("uf2", bogus=1)))
        self.assertSame(s, r, "Strict")
        self.assertEqual(s.status, 400)
        s, r = self.both("POST", LP + "?fieldValidation=Strict", lease("uf3", bogus=1, holderIdentity=1))
        self.assertSame(s, r, "a type error wins over Strict")

    def test_patches(self):
        created = self.both("POST", LP + "?fieldManager=a", lease("pa", holderIdentity="a", leaseDurationSeconds=10,
                                                                  renewTime=T0))
        self.assertEqual([x.status for x in created], [201, 201])
        for ctype, patch in ((MERGE, {"spec": {"renewTime": "2026-12-07T23:00:05.000000+02:00"}}),
                             (SMP, {"spec": {"leaseTransitions": 2}, "metadata": {"labels": {"l": "1"}}}),
                             (JSONPATCH, [{"op": "replace", "path": "/spec/holderIdentity", "value": "b"}])):
            s, r = self.both("PATCH", LP + "/pa?fieldManager=p", patch, ctype=ctype)
            self.assertSame(s, r, ctype)
            self.assertEqual(s.status, 200)
        # JSON and merge patches: the patched object's decoding error (422)
        for ctype, patch in ((MERGE, {"spec": {"leaseDurationSeconds": "x"}}),
                             (MERGE, {"spec": {"renewTime": "bad"}}),
                             (JSONPATCH, [{"op": "add", "path": "/spec/holderIdentity", "value": 5}])):
            s, r = self.both("PATCH", LP + "/pa", patch, ctype=ctype)
            self.assertEqual((s.status, r.status), (422, 422), patch)
            self.assertEqual(patch_message_tail(s), patch_message_tail(r))
            for x in (s, r):
                self.assertEqual(x.body["details"]["causes"][0]["field"], "patch")
                self.assertTrue(x.body["message"].startswith(' "" is invalid: patch: Invalid value: "{'), x.body)
        self.assertEqual(patch_message_tail(r), "json: cannot unmarshal number into Go struct field "
                                                "LeaseSpec.spec.holderIdentity of type string")
        # strategic merge: the unstructured converter's errors, quoting the patch
        for patch in ({"spec": {"leaseDurationSeconds": "x"}}, {"spec": {"leaseDurationSeconds": 1.5}},
                      {"spec": {"leaseDurationSeconds": 7.0}}, {"spec": {"holderIdentity": 5}},
                      {"spec": {"holderIdentity": True}}, {"spec": {"renewTime": "bad"}}, {"spec": "x"},
                      {"spec": {"renewTime": 5}}):
            s, r = self.both("PATCH", LP + "/pa", patch, ctype=SMP)
            self.assertSame(s, r, "strategic merge %r" % (patch,))
        s, r = self.both("PATCH", LP + "/missing", {"spec": {}}, ctype=MERGE)
        self.assertSame(s, r, "patch of a missing Lease")
        self.assertEqual(s.status, 404)

    def test_apply(self):
        body = lease("ap", holderIdentity="a", leaseDurationSeconds=10,
                     renewTime="2026-12-07T23:00:00.000001-01:00")
        s, r = self.both("PATCH", apply_path(LP, "ap", "m1"), body, ctype=APPLY)
        self.assertSame(s, r, "apply creates")
        self.assertEqual((r.status, r.body["spec"]["renewTime"]), (201, "2026-12-08T00:00:00.000001Z"))
        s, r = self.both("PATCH", apply_path(LP, "ap", "m1"), body, ctype=APPLY)
        self.assertSame(s, r, "no-op")
        self.assertEqual(rv_of(s), rv_of(self.both("GET", LP + "/ap")[0]))
        s, r = self.both("PATCH", apply_path(LP, "ap", "m2"), lease("ap", holderIdentity="b"), ctype=APPLY)
        self.assertSame(s, r, "conflict")
        self.assertEqual(s.status, 409)
        s, r = self.both("PATCH", apply_path(LP, "ap", "m2", force=True), lease("ap", holderIdentity="b"),
                         ctype=APPLY)
        self.assertSame(s, r, "force")
        for spec in ({"renewTime": "bad"}, {"leaseDurationSeconds": "x"}, {"leaseDurationSeconds": True},
                     {"holderIdentity": 5}):
            s, r = self.both("PATCH", apply_path(LP, "ap", "m1"), lease("ap", **spec), ctype=APPLY)
            self.assertSame(s, r, "apply %r" % (spec,))
            self.assertEqual(s.status, 500)
        s, r = self.both("PATCH", apply_path(LP, "ap-bad", "m1"), lease("ap-bad", renewTime="bad"), ctype=APPLY)
        self.assertSame(s, r, "apply creates, bad time")

    def test_list_watch_table(self):
        base = {srv.real: request(srv, "GET", LP) for srv in (self.sim, self.real)}
        path = LP + "?watch=true&timeoutSeconds=3&labelSelector=app%3Degressd&resourceVersion="
        out = {}

        def go(srv):
            out[srv.real] = watch(srv, path + base[srv.real].body["metadata"]["resourceVersion"])
        ts = [threading.Thread(target=go, args=(srv,)) for srv in (self.sim, self.real)]
        for t in ts:
            t.start()
        for srv in (self.sim, self.real):
            for i, app in enumerate(("egressd", "other", "egressd")):
                o = lease("lw%d" % i, holderIdentity="h%d" % i, renewTime=T0)
                o["metadata"]["labels"] = {"app": app}
                assert request(srv, "POST", LP, o).status == 201
            o = request(srv, "GET", LP + "/lw0").body
            o["spec"]["holderIdentity"] = "h9"
            assert request(srv, "PUT", LP + "/lw0", o).status == 200
            assert request(srv, "PATCH", LP + "/lw2", {"metadata": {"labels": {"app": "gone"}}},
                           ctype=MERGE).status == 200
            assert request(srv, "DELETE", LP + "/lw0").status == 200
        for t in ts:
            t.join(120)
        (sr, sev), (rr, rev) = out[False], out[True]
        self.assertSame(sr, rr, "watch", headers=("content-type", "transfer-encoding"), body=False)
        evs = [norm([e for _, e in x if e["type"] != "BOOKMARK"]) for x in (sev, rev)]
        self.assertEqual(diff(evs[0], evs[1]), [])
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs[1]],
                         [("ADDED", "lw0"), ("ADDED", "lw2"), ("MODIFIED", "lw0"), ("DELETED", "lw2"),
                          ("DELETED", "lw0")])
        s, r = self.both("GET", LP + "?labelSelector=app%3Dother")
        self.assertSame(s, r, "list", body=False)
        self.assertEqual(diff(norm(s.body), norm(r.body)), [])
        self.assertEqual([i["metadata"]["name"] for i in r.body["items"]], ["lw1"])
        # kubectl get leases: Holder
        s, r = self.both("GET", LP + "?labelSelector=app%3Dother", accept=TABLE)
        self.assertEqual((s.status, r.status), (200, 200))
        self.assertEqual(table_shape(s.body), table_shape(r.body))
        self.assertEqual(table_shape(r.body)[1], [["lw1", "h1"]])


def table_shape(t):
    """A Table's columns (descriptions aside: kubesim's are short) and cells
    (the age aside)."""
    cols = [(c["name"], c["type"], c["format"], c["priority"]) for c in t["columnDefinitions"]]
    return cols, [row["cells"][:-1] for row in t["rows"]]


class ConfigMaps(ParityCase):

    def test_crud(self):
        body = cm("cfg", data={"shard": "1", "b.c": "x"}, binaryData={"bin": "aGVsbG8="})
        body["metadata"]["labels"] = {"app": "egressd"}
        s, r = self.both("POST", CP, body)
        self.assertSame(s, r, "create")
        self.assertEqual(s.status, 201)
        self.assertNotIn("generation", r.body["metadata"])
        s, r = self.both("POST", CP, body)
        self.assertSame(s, r, "again")
        self.assertEqual((s.status, s.body["message"]), (409, 'configmaps "cfg" already exists'))
        # a ConfigMap may be updated unconditionally
        upd = copy.deepcopy(body)
        upd["data"]["shard"] = "2"
        s, r = self.both("PUT", CP + "/cfg", upd)
        self.assertSame(s, r, "update without resourceVersion")
        self.assertEqual(s.status, 200)
        s, r = self.both("PUT", CP + "/cfg", with_rv(upd, "1"))
        self.assertSame(s, r, "stale resourceVersion")
        self.assertEqual(s.status, 409)
        s, r = self.both("GET", CP + "?labelSelector=app%3Degressd")
        self.assertEqual(diff(norm(s.body), norm(r.body)), [])
        s, r = self.both("GET", CP + "/cfg", accept=TABLE)
        self.assertEqual(table_shape(s.body), table_shape(r.body))
        self.assertEqual(table_shape(r.body)[1], [["cfg", 3]])
        s, r = self.both("DELETE", CP + "/cfg")
        self.assertSame(s, r, "delete")
        s, r = self.both("DELETE", CP + "/cfg")
        self.assertSame(s, r, "delete again")
        self.assertEqual(s.status, 404)

    def test_values(self):
        """Empty maps are not stored, a null value is "", base64 is stored as
        the decoded bytes."""
        for i, fields in enumerate([{"data": {}, "binaryData": {}}, {"data": None, "immutable": None},
                                    {"data": {"a": None}, "binaryData": {"b": None}},
                                    {"binaryData": {"k": "aGVs\nbG8=", "j": "aGVsbG9=", "e": "", "f": "aGV="}},
                                    {"immutable": False}]):
            s, r = self.both("POST", CP, cm("val%d" % i, **fields))
            self.assertSame(s, r, "%r" % (fields,))
            self.assertEqual(s.status, 201)

    def test_decode_errors(self):
        for i, fields in enumerate([{"data": {"a": 1}}, {"data": ["x"]}, {"data": "x"}, {"data": {"a": {}}},
                                    {"binaryData": {"k": "!!"}}, {"binaryData": {"k": 5}},
                                    {"binaryData": {"k": "aGVsbG8"}}, {"binaryData": {"k": "aGVsbG8=x"}},
                                    {"binaryData": {"k": "a==="}}, {"binaryData": {"k": "aG=x"}},
                                    {"binaryData": {"k": "aGVsb==="}}, {"immutable": "yes"}, {"immutable": 1},
                                    {"data": {"a": "x"}, "immutable": "x", "binaryData": {"k": "!"}},
                                    {"binaryData": {"k": "!"}, "data": {"a": 1}}]):
            s, r = self.both("POST", CP, cm("de%d" % i, **fields))
            self.assertSame(s, r, "%r" % (fields,))
            self.assertEqual(s.status, 400)
        self.assertEqual(r.body["message"], 'ConfigMap in version "v1" cannot be handled as a ConfigMap: illegal '
                                            'base64 data at input byte 0')

    def test_validation(self):
        big = "x" * (1024 * 1024 + 1)
        for i, fields in enumerate([{"data": {"a b": "1"}}, {"data": {"..": "1", ".": "2", "..x": "3", "": "4"}},
                                    {"binaryData": {"a/b": "aGVsbG8="}}, {"data": {"k" * 254: "1"}},
                                    {"data": {"k": "1"}, "binaryData": {"k": "aGVsbG8="}},
                                    {"data": {"a": big}}, {"data": {"a": big[:600000]},
                                                           "binaryData": {"b": "eHh4" * 150000}}]):
            s, r = self.both("POST", CP, cm("va%d" % i, **fields))
            self.assertEqual((s.status, r.status), (422, 422), fields)
            self.assertEqual(diff(sorted_causes(s.body), sorted_causes(r.body)), [], fields)
        self.assertEqual(r.body["details"]["causes"], [{"reason": "FieldValueTooLong", "field": "[]",
                                                        "message": "Too long: may not be more than 1048576 bytes"}])

    def test_immutable(self):
        s, r = self.both("POST", CP, cm("im", data={"a": "1"}, immutable=True))
        self.assertSame(s, r, "create")
        for patch in ({"data": {"a": "2"}}, {"binaryData": {"b": "aGVsbG8="}}, {"immutable": False},
                      {"immutable": None}, {"data": {"a": "2"}, "immutable": False, "binaryData": {"c": ""}},
                      {"data": {"b c": "2"}}):
            s, r = self.both("PATCH", CP + "/im", patch, ctype=MERGE)
            self.assertEqual((s.status, r.status), (422, 422), patch)
            self.assertEqual(diff(sorted_causes(s.body), sorted_causes(r.body)), [], patch)
        # labels may change; an empty data map is not the absent one
        s, r = self.both("PATCH", CP + "/im", {"metadata": {"labels": {"x": "y"}}}, ctype=MERGE)
        self.assertSame(s, r, "labels")
        s, r = self.both("PUT", CP + "/im", cm("im", data={"a": "1"}, immutable=True, binaryData={}))
        self.assertSame(s, r, "empty binaryData")
        self.assertEqual(s.status, 422)
        s, r = self.both("PUT", CP + "/im", cm("im", data={"a": "1"}, immutable=True))
        self.assertSame(s, r, "same content")
        self.assertEqual(s.status, 200)
        # becoming immutable is allowed
        self.assertEqual(self.both("POST", CP, cm("mu", data={"a": "1"}))[1].status, 201)
        s, r = self.both("PATCH", CP + "/mu", {"data": {"a": "2"}, "immutable": True}, ctype=MERGE)
        self.assertSame(s, r, "make immutable")
        self.assertEqual(s.status, 200)

    def test_patch_errors(self):
        self.assertEqual([x.status for x in self.both("POST", CP, cm("pe", data={"a": "1"}))], [201, 201])
        for patch in ({"data": {"a": 5}}, {"binaryData": {"k": "!"}}, {"immutable": "x"}, {"data": "x"},
                      {"binaryData": {"k": 5}}, {"data": {"b": None}}):
            s, r = self.both("PATCH", CP + "/pe", patch, ctype=SMP)
            self.assertSame(s, r, "strategic merge %r" % (patch,))
        for patch in ({"data": {"a": 5}}, {"binaryData": {"k": "!"}}):
            s, r = self.both("PATCH", CP + "/pe", patch, ctype=MERGE)
            self.assertEqual((s.status, r.status), (422, 422), patch)
            self.assertEqual(patch_message_tail(s), patch_message_tail(r))
        for fields in ({"binaryData": {"k": "!"}}, {"data": {"a": 5}}, {"data": {"a b": "5"}},
                       {"data": {"a": "2"}}):
            s, r = self.both("PATCH", apply_path(CP, "pe", "m"), cm("pe", **fields), ctype=APPLY)
            self.assertSame(s, r, "apply %r" % (fields,))
        s, r = self.both("PATCH", apply_path(CP, "pe-new", "m"), cm("pe-new", binaryData={"k": "!"}), ctype=APPLY)
        self.assertSame(s, r, "apply creates, bad base64")


class NamespaceDeletion(ParityCase):
    OPTS = dict(clusters=["p"], namespaces=["demo", "gone"], istio="head")

    def test_content_deleted(self):
        """The namespace controller deletes a namespace's Leases and ConfigMaps."""
        for srv in (self.sim, self.real):
            assert request(srv, "POST", "/apis/coordination.k8s.io/v1/namespaces/gone/leases",
                           lease("l")).status == 201
            assert request(srv, "POST", "/api/v1/namespaces/gone/configmaps", cm("c")).status == 201
            assert request(srv, "DELETE", "/api/v1/namespaces/gone").status == 200
        for srv in (self.sim, self.real):
            wait_for(lambda: request(srv, "GET", "/api/v1/namespaces/gone").status == 404, 120,
                     "namespace gone on %s" % srv.argv[0])
        for path in ("/apis/coordination.k8s.io/v1/namespaces/gone/leases", "/api/v1/namespaces/gone/configmaps"):
            s, r = self.both("GET", path)
            self.assertSame(s, r, path, body=False)
            self.assertEqual((s.body["items"], r.body["items"]), ([], []))


if __name__ == "__main__":
    unittest.main()
