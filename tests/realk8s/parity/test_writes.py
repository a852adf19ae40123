"""Parity of writes: server-side apply (create, no-op, conflicts, force,
removal, shared ownership, list-maps, sets, atomic lists), unknown fields
(pruning with a Warning, Strict, SSA's 500) and 422 validation causes."""
import copy
import json
import unittest

from paritylib import (ParityCase, APPLY, MERGE, NS, VSP, SEP, IMP, diff, norm, mf, rv_of, vs, se, imgw,
                       sorted_causes, wait_for, request)


def apply_path(base, name, manager, force=False, extra=""):
    return "%s/%s?fieldManager=%s%s%s" % (base, name, manager, "&force=true" if force else "", extra)


def mask_ip(o):
    """The ClusterIP of the gateway's Service is allocated at random."""
    if isinstance(o, dict) and isinstance(o.get("status"), dict) and "GatewayAddress" in o["status"]:
        o = json.loads(json.dumps(o))
        o["status"]["GatewayAddress"] = ["<ip>" for _ in o["status"]["GatewayAddress"]]
    return o


def mask_status(o):
    """The operator's status, written asynchronously."""
    if isinstance(o, dict) and o.get("kind") == "IstioMeshGateway" and "status" in o:
        o = dict(o, status="<async>")
    return o


class ServerSideApply(ParityCase):

    def apply_both(self, base, obj, manager, force=False, what="", fix=None):
        sim, real = self.both("PATCH", apply_path(base, obj["metadata"]["name"], manager, force), obj, ctype=APPLY)
        self.assertSame(sim, real, what or "apply %s as %s" % (obj["metadata"]["name"], manager), fix=fix)
        return sim, real

    def test_virtualservice_lifecycle(self):
        v1 = vs("ssa-vs", hosts=["a.example.com"], gateways=["mesh"],
                http=[{"route": [{"destination": {"host": "a.example.com"}}]}])
        sim, real = self.apply_both(VSP, v1, "m1", what="create")
        self.assertEqual(sim.status, 201)
        # a no-op apply keeps the resourceVersion (and the managedFields time)
        sim2, real2 = self.apply_both(VSP, v1, "m1", what="no-op")
        self.assertEqual(sim2.status, 200)
        for a, b in ((sim, sim2), (real, real2)):
            self.assertEqual(rv_of(a), rv_of(b))
            self.assertEqual(a.body["metadata"]["managedFields"], b.body["metadata"]["managedFields"])
        # another manager changes an owned field: 409 with causes
        v2 = vs("ssa-vs", hosts=["b.example.com"])
        sim3, real3 = self.apply_both(VSP, v2, "m2", what="conflict")
        self.assertEqual(sim3.status, 409)
        self.assertEqual(real3.body["details"]["causes"],
                         [{"reason": "FieldManagerConflict", "message": 'conflict with "m1"', "field": ".spec.hosts"}])
        # force takes it over; the resourceVersion moves on
        sim4, real4 = self.apply_both(VSP, v2, "m2", force=True, what="force")
        self.assertGreater(rv_of(sim4), rv_of(sim2))
        self.assertGreater(rv_of(real4), rv_of(real2))
        # m1 stops applying http: removed (nobody else owns it); gateways kept
        v3 = vs("ssa-vs", hosts=["b.example.com"], gateways=["mesh"])
        del v3["spec"]["hosts"]
        sim5, real5 = self.apply_both(VSP, v3, "m1", what="removal")
        self.assertNotIn("http", real5.body["spec"])
        self.assertEqual(real5.body["spec"]["hosts"], ["b.example.com"])
        # shared ownership: m3 applies the same gateways value, then m1 drops
        # gateways: it stays, owned by m3
        v4 = vs("ssa-vs", hosts=["b.example.com"], gateways=["mesh"])
        del v4["spec"]["hosts"]
        self.apply_both(VSP, v4, "m3", what="shared")
        v5 = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "ssa-vs"}}
        sim6, real6 = self.apply_both(VSP, v5, "m1", what="drop shared")
        self.assertEqual(real6.body["spec"], {"gateways": ["mesh"], "hosts": ["b.example.com"]})
        self.assertEqual([e["manager"] for e in mf(real6.body)], ["m2", "m3"])

    def test_conflict_with_several_managers(self):
        v = vs("ssa-multi", hosts=["a.example.com"], gateways=["mesh"], exportTo=["."])
        self.apply_both(VSP, v, "one")
        w = vs("ssa-multi", hosts=["a.example.com"], gateways=["mesh"])
        self.apply_both(VSP, w, "two")              # shares hosts and gateways
        x = vs("ssa-multi", hosts=["c.example.com"], gateways=["other"], exportTo=["*"])
        sim, real = self.apply_both(VSP, x, "three", what="3 conflicts")
        self.assertEqual(sim.status, 409)
        self.assertIn("Apply failed with 5 conflicts", real.body["message"])

    def test_serviceentry_list_map_and_update_managers(self):
        s = se("ssa-se", hosts=["api.example.com"], location="MESH_EXTERNAL", resolution="DNS",
               ports=[{"number": 443, "name": "https", "protocol": "TLS"}])
        sim, real = self.apply_both(SEP, s, "m1", what="create")
        # a merge patch by an Update manager (no User-Agent: "unknown")
        patch = {"spec": {"ports": [{"number": 443, "name": "https", "protocol": "TLS"},
                                    {"number": 8443, "name": "alt", "protocol": "TLS"}]}}
        sim2, real2 = self.both("PATCH", SEP + "/ssa-se", patch, ctype=MERGE)
        self.assertSame(sim2, real2, "merge patch")
        # the applier conflicts with the Update manager on the new port
        s2 = copy.deepcopy(s)
        s2["spec"]["ports"] = [{"number": 443, "name": "https", "protocol": "TLS"},
                               {"number": 8443, "name": "alt", "protocol": "HTTPS"}]
        self.apply_both(SEP, s2, "m1", what="conflict with an Update manager")
        self.apply_both(SEP, s2, "m1", force=True, what="force over an Update manager")
        # a PUT of the whole object, with the last resourceVersion
        cur = request(self.sim, "GET", SEP + "/ssa-se").body, request(self.real, "GET", SEP + "/ssa-se").body
        outs = []
        for srv, o in zip((self.sim, self.real), cur):
            o = copy.deepcopy(o)
            o["metadata"]["labels"] = {"team": "payments"}
            outs.append(request(srv, "PUT", SEP + "/ssa-se?fieldManager=editor", o))
        self.assertSame(outs[0], outs[1], "PUT")

    def test_created_by_post_update_manager(self):
        """A CRD object created by POST: the Update manager owns the new
        structs themselves ('.')."""
        body = se("post-se", hosts=["p.example.com"], ports=[{"number": 80, "name": "http", "protocol": "HTTP"}])
        sim, real = self.both("POST", SEP, body)
        self.assertSame(sim, real, "POST")
        self.assertEqual(mf(real.body)[0]["manager"], "unknown")
        self.assertIn(".", real.body["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"])
        sim, real = self.both("POST", SEP + "?fieldManager=creator", dict(body, metadata={"name": "post-se2",
                                                                                          "labels": {"a": "b"}}))
        self.assertSame(sim, real, "POST with fieldManager and labels")

    def test_sets(self):
        """metadata.finalizers is a set: two appliers own one value each."""
        a = vs("ssa-set", hosts=["s.example.com"])
        a["metadata"]["finalizers"] = ["example.com/a"]
        self.apply_both(VSP, a, "fa")
        b = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "ssa-set", "finalizers": ["example.com/b"]}}
        sim, real = self.apply_both(VSP, b, "fb", what="second set member")
        self.assertEqual(real.body["metadata"]["finalizers"], ["example.com/a", "example.com/b"])
        # fa gives its member up: only b stays
        c = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "ssa-set"},
             "spec": {"hosts": ["s.example.com"]}}
        sim, real = self.apply_both(VSP, c, "fa", what="give up a set member")
        self.assertEqual(real.body["metadata"]["finalizers"], ["example.com/b"])
        sim, real = self.both("PATCH", VSP + "/ssa-set", {"metadata": {"finalizers": None}}, ctype=MERGE)
        self.assertSame(sim, real, "clear finalizers")

    def test_istiomeshgateway_list_map(self):
        """spec.service.ports is a list-map keyed by port and protocol; the
        operator (realk8s's and kubesim's) adds a finalizer and a status,
        asynchronously: the status in an apply's answer is masked, and the
        objects are compared once the operator has settled."""
        def settled(ports):
            def fn(srv):
                def ok():
                    o = request(srv, "GET", IMP + "/ssa-gw").body
                    svc = request(srv, "GET", "/api/v1/namespaces/%s/services/ssa-gw" % NS).body
                    if (o.get("status") or {}).get("Status") != "Available" or svc.get("kind") != "Service":
                        return None
                    return o if sorted(p["port"] for p in svc["spec"]["ports"]) == ports else None
                return wait_for(ok, 60, "IMGW Available with Service ports %s" % ports)
            s, r = self.each(fn)
            d = diff(mask_ip(norm(s)), mask_ip(norm(r)))
            self.assertEqual(d, [], "after the operator:\n  " + "\n  ".join(d))
            return s, r

        g = imgw("ssa-gw", ports=((443, "tls"), (15443, "mtls")))
        self.apply_both(IMP, g, "egressd", what="create", fix=mask_status)
        s, r = settled([443, 15443])
        # no-op: unchanged
        sim, real = self.apply_both(IMP, g, "egressd", what="no-op", fix=mask_ip)
        self.assertEqual((rv_of(sim), rv_of(real)), (int(s["metadata"]["resourceVersion"]),
                                                     int(r["metadata"]["resourceVersion"])))
        # another manager adds a port and changes one it does not own
        other = {"apiVersion": "servicemesh.cisco.com/v1alpha1", "kind": "IstioMeshGateway",
                 "metadata": {"name": "ssa-gw"},
                 "spec": {"service": {"ports": [{"port": 443, "protocol": "TCP", "targetPort": 8443},
                                                {"port": 8080, "protocol": "TCP", "name": "http"}]}}}
        sim, real = self.apply_both(IMP, other, "second", what="list-map conflict")
        self.assertEqual(sim.status, 409)
        other["spec"]["service"]["ports"][0]["targetPort"] = 443
        sim, real = self.apply_both(IMP, other, "second", what="shared list-map item", fix=mask_status)
        self.assertEqual(sorted(p["port"] for p in real.body["spec"]["service"]["ports"]), [443, 8080, 15443])
        settled([443, 8080, 15443])
        # the first manager drops 15443: gone; 443 stays (shared)
        g2 = imgw("ssa-gw", ports=((443, "tls"),))
        sim, real = self.apply_both(IMP, g2, "egressd", what="drop an item", fix=mask_status)
        self.assertEqual(sorted(p["port"] for p in real.body["spec"]["service"]["ports"]), [443, 8080])
        settled([443, 8080])


class UnknownFields(ParityCase):

    def test_apply_unknown_field_500(self):
        # creating by apply refuses it as well (see paritylib.crds_published)
        sim, real = self.both("PATCH", apply_path(VSP, "uf-a", "m"), vs("uf-a", foo=1), ctype=APPLY)
        self.assertSame(sim, real, "create by apply")
        self.assertEqual(sim.status, 500)
        self.assertEqual(self.both("PATCH", apply_path(VSP, "uf-a", "m"), vs("uf-a"), ctype=APPLY)[1].status, 201)
        # on an existing object: SMD refuses the typed patch (500)
        bad_type = vs("uf-a")
        bad_type["spec"]["hosts"] = "notalist"
        for body, what in ((vs("uf-a", foo=1), "spec.foo"),
                           (dict(vs("uf-a"), metadata={"name": "uf-a", "namespace": NS}, extra=True),
                            "namespaced body"),
                           (bad_type, "wrong type")):
            sim, real = self.both("PATCH", apply_path(VSP, body["metadata"]["name"], "m"), body, ctype=APPLY)
            self.assertSame(sim, real, what)
            self.assertEqual(sim.status, 500)
        # a boolean where a string is declared
        self.assertEqual(self.both("POST", SEP, se("uf-d"))[1].status, 201)
        body = se("uf-d", hosts=["a.example.com"], resolution=True)
        sim, real = self.both("PATCH", apply_path(SEP, "uf-d", "m"), body, ctype=APPLY)
        self.assertSame(sim, real, "scalar type")

    def test_pruned_with_warning(self):
        body = vs("uf-create", foo=1, http=[{"bar": 2, "route": [{"destination": {"host": "x"}}]}])
        sim, real = self.both("POST", VSP, body)
        self.assertSame(sim, real, "create")
        self.assertEqual(real.header("warning"), '299 - "unknown field \\"spec.foo\\"", '
                                                 '299 - "unknown field \\"spec.http[0].bar\\""')
        body["metadata"]["resourceVersion"] = sim.body["metadata"]["resourceVersion"]
        o_sim = dict(body, metadata=dict(body["metadata"], resourceVersion=sim.body["metadata"]["resourceVersion"]))
        o_real = dict(body, metadata=dict(body["metadata"], resourceVersion=real.body["metadata"]["resourceVersion"]))
        s = request(self.sim, "PUT", VSP + "/uf-create", o_sim)
        r = request(self.real, "PUT", VSP + "/uf-create", o_real)
        self.assertSame(s, r, "update")
        sim, real = self.both("PATCH", VSP + "/uf-create", {"spec": {"baz": {"x": 1}}}, ctype=MERGE)
        self.assertSame(sim, real, "merge patch")
        sim, real = self.both("PATCH", VSP + "/uf-create", [{"op": "add", "path": "/spec/qux", "value": 1}],
                              ctype="application/json-patch+json")
        self.assertSame(sim, real, "json patch")
        sim, real = self.both("POST", VSP + "?fieldValidation=Ignore", vs("uf-ignore", foo=1))
        self.assertSame(sim, real, "Ignore")
        self.assertIsNone(real.header("warning"))

    def test_strict(self):
        sim, real = self.both("POST", VSP + "?fieldValidation=Strict", vs("uf-strict", foo=1, bar={"x": 1}))
        self.assertSame(sim, real, "Strict create")
        self.assertEqual(sim.status, 400)
        self.assertEqual(self.both("POST", VSP, vs("uf-strict2"))[0].status, 201)
        for p in ("uf-strict2",):
            sim, real = self.both("PATCH", VSP + "/%s?fieldValidation=Strict" % p, {"spec": {"foo": 1}}, ctype=MERGE)
            self.assertEqual((sim.status, real.status), (422, 422))
            # the cause quotes the whole patched object (times and uids differ): compare its shape
            for r in (sim, real):
                self.assertTrue(r.body["message"].endswith(': strict decoding error: unknown field "spec.foo"'),
                                r.body["message"])
                self.assertEqual(r.body["details"]["causes"][0]["field"], "patch")
            sim, real = self.both("PUT", VSP + "/%s?fieldValidation=Strict" % p, vs(p, foo=1))
            self.assertSame(sim, real, "Strict update")

    def test_malformed_bodies(self):
        for raw in (b"{not json", b'{"apiVersion": "networking.istio.io/v1", ', b"[1, 2]x", b""):
            sim, real = self.both("POST", VSP, raw)
            self.assertSame(sim, real, repr(raw))


class Validation(ParityCase):

    def check(self, method, path, body, what, ctype="application/json"):
        sim, real = self.both(method, path, body, ctype=ctype)
        self.assertEqual((sim.status, real.status), (422, 422), "%s: %r %r" % (what, sim, real))
        self.assertEqual(diff(sorted_causes(sim.body), sorted_causes(real.body)), [], what)
        return sim, real

    def test_istio_kinds(self):
        bad = vs("bad-type")
        bad["spec"]["hosts"] = "notalist"
        self.check("POST", VSP, bad, "wrong type")
        self.check("POST", SEP, {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                                 "metadata": {"name": "bad-req"}, "spec": {"location": "MESH_EXTERNAL"}},
                   "missing required")
        self.check("POST", SEP, se("bad-enum", resolution="BOGUS", location="NOWHERE", exportTo=5), "enum")
        self.check("POST", VSP, vs("Bad_Name"), "name")
        sim, real = self.check("PATCH", apply_path(SEP, "bad-apply", "m"), se("bad-apply", resolution="BOGUS"),
                               "apply", ctype=APPLY)
        self.assertIn("<nil>", [c["field"] for c in real.body["details"]["causes"]])

    def test_smm_kind(self):
        self.check("POST", IMP, {"apiVersion": "servicemesh.cisco.com/v1alpha1", "kind": "IstioMeshGateway",
                                 "metadata": {"name": "bad-all"}, "spec": {}}, "missing required")
        g = imgw("bad-mix")
        g["spec"]["type"] = "sideways"
        g["spec"]["service"]["ports"][0]["port"] = "x"
        g["spec"]["deployment"] = {"replicas": {"min": -1}}
        self.check("POST", IMP, g, "enum, type, minimum")
        g = imgw("bad-apply")
        del g["spec"]["istioControlPlane"]
        self.check("PATCH", apply_path(IMP, "bad-apply", "m"), g, "apply", ctype=APPLY)

    def test_kind_and_version_mismatch(self):
        body = se("km")
        body["kind"] = "VirtualService"
        sim, real = self.both("POST", SEP, body)
        self.assertSame(sim, real, "kind mismatch")
        body = se("vm")
        body["apiVersion"] = "networking.istio.io/v1beta1"
        sim, real = self.both("POST", SEP, body)
        self.assertSame(sim, real, "apiVersion mismatch")
        ns = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nsk"}}
        sim, real = self.both("POST", "/api/v1/namespaces", ns)
        self.assertSame(sim, real, "built-in kind mismatch")

    def test_cel_rules_not_evaluated(self):
        """Known limit: kubesim does not run the CRDs' CEL rules (here the
        ServiceEntry port range of the head CRDs)."""
        body = se("cel-port", ports=[{"number": 0, "name": "zero", "protocol": "TCP"}])
        sim, real = self.both("POST", SEP, body)
        self.assertKnown("CEL rules", (sim.status, real.status, real.body.get("details", {}).get("causes")),
                         (201, 422, [{"reason": "FieldValueInvalid", "field": "spec.ports[0].number",
                                      "message": 'Invalid value: "integer": port must be between 1-65535'}]))


if __name__ == "__main__":
    unittest.main()
