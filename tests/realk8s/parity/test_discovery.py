"""Parity of discovery (legacy and aggregated, ETag/304), /version and the
OpenAPI v3 documents kubectl fetches."""
import json
import unittest

from paritylib import (ParityCase, AGG_ACCEPT, SIM_GROUPS, SIM_BUILTIN_GROUPS, SIM_CORE_RESOURCES,
                       SIM_APPS_RESOURCES, SIM_COORDINATION_RESOURCES, SIM_NETWORKING_RESOURCES,
                       SIM_BUILTIN_RESOURCES, diff, request, sorted_causes, wait_for)

# subresources the real server has and kubesim does not serve
REAL_ONLY_SUBRESOURCES = {"namespaces": ["finalize"], "services": ["proxy"], "deployments": ["scale"]}


def agg_groups(resp, names):
    """The aggregated groups kubesim serves, in the server's order, with the
    resources and subresources kubesim serves."""
    out = []
    for g in resp.body["items"]:
        if g["metadata"].get("name", "") not in names:
            continue
        g = dict(g)
        vs = []
        for v in g["versions"]:
            v = dict(v)
            rs = []
            for r in v["resources"]:
                if r["resource"] not in SIM_BUILTIN_RESOURCES and g["metadata"].get("name", "") in SIM_BUILTIN_GROUPS:
                    continue
                r = dict(r)
                if r.get("subresources"):
                    r["subresources"] = [s for s in r["subresources"] if s["subresource"] == "status"]
                rs.append(r)
            v["resources"] = rs
            vs.append(v)
        g["versions"] = vs
        out.append(g)
    return out


def by_name(doc):
    """Discovery with groups and resources sorted by name: the real server
    lists CRD groups and resources in the order their CRDs became established,
    which varies from one start to the next."""
    doc = json.loads(json.dumps(doc))
    if "groups" in doc:
        doc["groups"].sort(key=lambda g: g["name"])
    if "resources" in doc:
        doc["resources"].sort(key=lambda r: r["name"])
    for g in doc.get("items", []):
        for v in g["versions"]:
            v["resources"].sort(key=lambda r: r["resource"])
    if "items" in doc:
        doc["items"].sort(key=lambda g: g["metadata"].get("name", ""))
    return doc


def cmp(sim_doc, real_doc):
    return diff(by_name(sim_doc), by_name(real_doc))


def real_only_subresources(resp):
    out = {}
    for g in resp.body["items"]:
        for v in g["versions"]:
            for r in v["resources"]:
                if r["resource"] in REAL_ONLY_SUBRESOURCES:
                    out[r["resource"]] = sorted(s["subresource"] for s in r.get("subresources") or []
                                                if s["subresource"] != "status")
    return out


class DiscoveryHead(ParityCase):
    OPTS = dict(clusters=["p"], namespaces=["demo"], istio="head")

    def test_version(self):
        sim, real = self.both("GET", "/version")
        self.assertSame(sim, real, "/version", body=False)
        # the same fields (1.32's version.Info), values of each build
        self.assertEqual(sorted(sim.body), sorted(real.body))
        self.assertEqual((sim.body["major"], sim.body["minor"]), (real.body["major"], real.body["minor"]))
        self.assertRegex(real.body["gitVersion"], r"^v1\.32\.\d+$")
        self.assertRegex(sim.body["gitVersion"], r"^v1\.32\.\d+$")

    def test_legacy_api(self):
        sim, real = self.both("GET", "/api")
        self.assertSame(sim, real, "/api", headers=("content-type", "etag", "vary", "cache-control"), body=False)
        self.assertIsNone(real.header("etag"))      # legacy discovery has no ETag
        s, r = dict(sim.body), dict(real.body)
        # the advertised address is each server's own
        self.assertEqual(r["serverAddressByClientCIDRs"][0]["serverAddress"],
                         "127.0.0.1:%d" % self.real.ports["p"])
        for x in (s, r):
            x["serverAddressByClientCIDRs"] = [dict(a, serverAddress="<addr>") for a in x["serverAddressByClientCIDRs"]]
        self.assertEqual(diff(s, r), [])
        self.assertKnown("serverAddress", sim.body["serverAddressByClientCIDRs"][0]["serverAddress"],
                         "127.0.0.1:6443")

    def test_json_formatting_known_limit(self):
        """Known limit: the same JSON, written differently (key order of
        built-in objects, trailing newline); clients depend on neither."""
        sim, real = self.both("GET", "/api/v1/namespaces/default")
        self.assertEqual(diff(sim.body["metadata"]["name"], real.body["metadata"]["name"]), [])
        self.assertKnown("JSON formatting", (sim.raw[:14], sim.raw[-1:], real.raw[:14], real.raw[-1:]),
                         (b'{"apiVersion":', b"}", b'{"kind":"Names', b"\n"))

    def test_legacy_apis(self):
        sim, real = self.both("GET", "/apis")
        self.assertSame(sim, real, "/apis", headers=("content-type", "etag", "vary", "cache-control"), body=False)
        names = [g["name"] for g in real.body["groups"]]
        for g in SIM_GROUPS:
            self.assertIn(g, names)
        # kubesim's groups, in the real server's order, with the same versions
        rg = [g for g in real.body["groups"] if g["name"] in SIM_GROUPS]
        self.assertEqual(cmp(sim.body, dict(real.body, groups=rg)), [])

    def test_legacy_group_and_versions(self):
        for path in ("/apis/networking.istio.io", "/apis/servicemesh.cisco.com", "/apis/security.istio.io",
                     "/apis/networking.istio.io/v1", "/apis/networking.istio.io/v1beta1",
                     "/apis/networking.istio.io/v1alpha3", "/apis/security.istio.io/v1",
                     "/apis/servicemesh.cisco.com/v1alpha1", "/apis/coordination.k8s.io"):
            sim, real = self.both("GET", path)
            self.assertSame(sim, real, path, headers=("content-type", "etag"), body=False)
            self.assertEqual(cmp(sim.body, real.body), [], path)
        for path, keep in (("/api/v1", SIM_CORE_RESOURCES), ("/apis/apps/v1", SIM_APPS_RESOURCES),
                           ("/apis/networking.k8s.io/v1", SIM_NETWORKING_RESOURCES),
                           ("/apis/coordination.k8s.io/v1", SIM_COORDINATION_RESOURCES)):
            sim, real = self.both("GET", path)
            self.assertSame(sim, real, path, headers=("content-type", "etag"), body=False)
            names = [r["name"] for r in real.body["resources"]]
            for n in keep:
                self.assertIn(n, names)
            rr = [r for r in real.body["resources"] if r["name"] in keep]
            self.assertEqual(cmp(sim.body, dict(real.body, resources=rr)), [], path)
            extra = sorted(r["name"] for r in real.body["resources"]
                           if r["name"].split("/")[0] in ("namespaces", "services", "deployments")
                           and r["name"] not in keep)
            self.assertKnown("unserved subresources", extra,
                             {"/api/v1": ["namespaces/finalize", "services/proxy"],
                              "/apis/apps/v1": ["deployments/scale"]}.get(path, []))

    def test_aggregated(self):
        for path, names in (("/api", [""]), ("/apis", SIM_GROUPS)):
            sim, real = self.both("GET", path, accept=AGG_ACCEPT)
            self.assertSame(sim, real, path, headers=("content-type", "vary", "cache-control"), body=False)
            self.assertEqual(real.header("cache-control"), "public")
            self.assertTrue(sim.header("etag") and real.header("etag"))
            self.assertEqual(len(sim.header("etag")), len(real.header("etag")))    # quoted SHA-512 hex
            self.assertEqual(cmp(sim.body, dict(real.body, items=agg_groups(real, names))), [], path)
            self.assertKnown("unserved subresources", real_only_subresources(real),
                             {"namespaces": ["finalize"], "services": ["proxy"]} if path == "/api"
                             else {"deployments": ["scale"]})
            # 304 with the ETag, 200 with another
            for srv, resp in ((self.sim, sim), (self.real, real)):
                again = request(srv, "GET", path, accept=AGG_ACCEPT, headers={"If-None-Match": resp.header("etag")})
                self.assertEqual((again.status, again.raw), (304, b""), srv.argv[0])
                self.assertEqual(again.header("etag"), resp.header("etag"))
                self.assertEqual(again.header("cache-control"), "public")
                other = request(srv, "GET", path, accept=AGG_ACCEPT, headers={"If-None-Match": '"0123"'})
                self.assertEqual(other.status, 200)
            # plain JSON: legacy, and If-None-Match does nothing
            sim2, real2 = self.both("GET", path, headers={"If-None-Match": sim.header("etag")})
            self.assertEqual((sim2.status, real2.status), (200, 200))

    def test_aggregated_v2beta1(self):
        accept = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
        sim, real = self.both("GET", "/apis", accept=accept)
        self.assertSame(sim, real, "v2beta1", headers=("content-type", "vary", "cache-control"), body=False)
        self.assertEqual(sim.body["apiVersion"], "apidiscovery.k8s.io/v2beta1")
        self.assertEqual(cmp(sim.body, dict(real.body, items=agg_groups(real, SIM_GROUPS))), [])

    # -- OpenAPI v3 ----------------------------------------------------------
    @classmethod
    def openapi_published(cls):
        """The real server publishes a CRD's OpenAPI some time after the CRD
        is established (and after realk8s wrote "ready"): wait for it."""
        def have():
            paths = request(cls.real, "GET", "/openapi/v3").body["paths"]
            return all(gv in paths for gv in ("apis/networking.istio.io/v1", "apis/servicemesh.cisco.com/v1alpha1",
                                              "apis/security.istio.io/v1"))
        wait_for(have, 120, "the CRDs' OpenAPI v3 documents on the real server")

    def test_openapi_root(self):
        self.openapi_published()
        sim, real = self.both("GET", "/openapi/v3")
        self.assertSame(sim, real, "/openapi/v3", headers=("content-type", "cache-control"), body=False)
        self.assertEqual(real.header("content-type"), "text/plain; charset=utf-8")
        gvs = sorted(sim.body["paths"])
        self.assertEqual(gvs, ["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1",
                               "apis/networking.istio.io/v1", "apis/networking.istio.io/v1alpha3",
                               "apis/networking.istio.io/v1beta1",
                               "apis/networking.k8s.io/v1", "apis/security.istio.io/v1", "apis/security.istio.io/v1beta1",
                               "apis/servicemesh.cisco.com/v1alpha1"])
        for gv in gvs:
            self.assertIn(gv, real.body["paths"])
            for resp in (sim, real):
                self.assertRegex(resp.body["paths"][gv]["serverRelativeURL"], r"^/openapi/v3/%s\?hash=[0-9A-F]{128}$"
                                 % gv.replace(".", r"\."))

    def fetch(self, srv, gv):
        self.openapi_published()
        root = request(srv, "GET", "/openapi/v3").body
        url = root["paths"][gv]["serverRelativeURL"]
        return request(srv, "GET", url), url

    def test_openapi_document_headers(self):
        for gv in ("apis/networking.istio.io/v1", "apis/servicemesh.cisco.com/v1alpha1"):
            (sim, surl), (real, rurl) = self.fetch(self.sim, gv), self.fetch(self.real, gv)
            self.assertSame(sim, real, gv, headers=("content-type", "cache-control", "vary"), body=False)
            self.assertEqual(real.header("cache-control"), "public, immutable")
            for r in (sim, real):
                self.assertTrue(r.header("expires") and r.header("last-modified") and r.header("etag"), r)
            self.assertEqual(sim.header("etag"), '"%s"' % surl.split("hash=")[1])
            # a stale hash redirects to the current one; no hash: no-cache
            for srv, url in ((self.sim, surl), (self.real, rurl)):
                r = request(srv, "GET", "/openapi/v3/%s?hash=00" % gv)
                self.assertEqual((r.status, r.header("location")), (301, url))
                r = request(srv, "GET", "/openapi/v3/%s" % gv)
                self.assertEqual((r.status, r.header("cache-control")), (200, "no-cache, private"))
                self.assertTrue(r.header("etag"))

    def test_openapi_crd_documents(self):
        """The structure of the CRD documents: paths, operations, parameters,
        request and response content types, GVK extensions, schema names and
        each kind's top-level properties (descriptions aside: kubesim's
        schemas are reduced)."""
        for gv in ("apis/networking.istio.io/v1", "apis/servicemesh.cisco.com/v1alpha1"):
            sim, real = self.fetch(self.sim, gv)[0].body, self.fetch(self.real, gv)[0].body
            self.assertEqual(sim["info"], real["info"])
            self.assertEqual(sim["openapi"], real["openapi"])
            self.assertEqual(sorted(sim["paths"]), sorted(real["paths"]), gv)
            for p in sim["paths"]:
                self.assertEqual(diff(shape(sim["paths"][p]), shape(real["paths"][p])), [], p)
            self.assertEqual(sorted(sim["components"]["schemas"]), sorted(real["components"]["schemas"]))
            for name, rs in real["components"]["schemas"].items():
                if name.startswith("io.k8s.apimachinery."):
                    continue        # kubesim's are a bare type (README, Known limits); names match above
                ss = sim["components"]["schemas"][name]
                for key in ("x-kubernetes-group-version-kind", "required", "type", "x-kubernetes-selectable-fields"):
                    self.assertEqual(ss.get(key), rs.get(key), "%s %s" % (name, key))
                if "x-kubernetes-group-version-kind" in rs:
                    self.assertEqual(sorted(ss.get("properties", {})), sorted(rs.get("properties", {})), name)
                    self.assertEqual(ss["properties"]["metadata"], nodesc(rs["properties"]["metadata"]), name)
                    if "spec" in rs["properties"]:
                        self.assertEqual(sorted(ss["properties"]["spec"].get("properties", {})),
                                         sorted(rs["properties"]["spec"].get("properties", {})), name)
            # what kubectl reads: the PATCH of each item path
            vsp = [p for p in real["paths"] if p.endswith("/virtualservices/{name}")
                   or p.endswith("/istiomeshgateways/{name}")]
            self.assertEqual(len(vsp), 1)
            patch = sim["paths"][vsp[0]]["patch"]
            self.assertEqual(sorted(patch["requestBody"]["content"]),
                             ["application/apply-patch+yaml", "application/json-patch+json",
                              "application/merge-patch+json"])
            self.assertIn("fieldValidation", [x["name"] for x in patch["parameters"]])

    def test_openapi_builtin_patch(self):
        """Built-in documents: kubesim's are reduced to its kinds; their PATCH
        operations (what kubectl apply --server-side reads) match."""
        for gv, item in (("api/v1", "/api/v1/namespaces/{name}"),
                         ("api/v1", "/api/v1/namespaces/{namespace}/services/{name}"),
                         ("api/v1", "/api/v1/namespaces/{namespace}/configmaps/{name}"),
                         ("apis/apps/v1", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
                         ("apis/coordination.k8s.io/v1",
                          "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"),
                         ("apis/networking.k8s.io/v1",
                          "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}")):
            sim, real = self.fetch(self.sim, gv)[0].body, self.fetch(self.real, gv)[0].body
            self.assertEqual(sim["info"]["title"], real["info"]["title"])
            s, r = shape(sim["paths"][item]), shape(real["paths"][item])
            self.assertEqual(diff(s["patch"], r["patch"]), [], item)
            self.assertEqual(sorted(s), sorted(r), item)


def nodesc(s):
    return {k: v for k, v in s.items() if k != "description"}


def shape(path_item):
    """A path item without descriptions: operation ids, actions, GVKs,
    parameter names and places, content types, response codes and $refs."""
    out = {}
    for op, o in path_item.items():
        if op == "parameters":
            out[op] = [(p["name"], p["in"], p.get("required", False), p["schema"]) for p in o]
            continue
        out[op] = {
            "operationId": o.get("operationId"), "tags": o.get("tags"),
            "action": o.get("x-kubernetes-action"), "gvk": o.get("x-kubernetes-group-version-kind"),
            "parameters": [(p["name"], p["in"], p["schema"]) for p in o.get("parameters", [])],
            "requestBody": {t: c["schema"] for t, c in (o.get("requestBody") or {}).get("content", {}).items()},
            "requestBodyRequired": (o.get("requestBody") or {}).get("required"),
            "responses": {c: (r.get("description"), {t: x["schema"] for t, x in r.get("content", {}).items()})
                          for c, r in o["responses"].items()},
        }
    return out


class Discovery117NoSMM(ParityCase):
    """--istio 1.17 and --no-smm: fewer versions, no servicemesh.cisco.com."""
    OPTS = dict(clusters=["p"], namespaces=["demo"], istio="1.17", no_smm=["p"])

    def test_groups_and_versions(self):
        sim, real = self.both("GET", "/apis")
        rg = [g for g in real.body["groups"] if g["name"] in SIM_GROUPS]
        self.assertNotIn("servicemesh.cisco.com", [g["name"] for g in rg])
        self.assertEqual(cmp(sim.body, dict(real.body, groups=rg)), [])
        for path in ("/apis/networking.istio.io/v1beta1", "/apis/networking.istio.io/v1alpha3",
                     "/apis/security.istio.io/v1beta1"):
            sim, real = self.both("GET", path)
            self.assertSame(sim, real, path, body=False)
            self.assertEqual(cmp(sim.body, real.body), [], path)
        for path in ("/apis/networking.istio.io/v1", "/apis/servicemesh.cisco.com/v1alpha1",
                     "/apis/networking.istio.io/v1/namespaces/demo/virtualservices"):
            sim, real = self.both("GET", path)
            self.assertSame(sim, real, path, headers=())
            self.assertEqual(sim.status, 404)
        sim, real = self.both("GET", "/apis", accept=AGG_ACCEPT)
        self.assertEqual(cmp(sim.body, dict(real.body, items=agg_groups(real, SIM_GROUPS))), [])

    def test_422_without_cel(self):
        """The 1.17 CRDs have no CEL rules: no '<nil>' cause."""
        body = {"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry", "metadata": {"name": "bad"},
                "spec": {"hosts": "notalist", "resolution": "BOGUS"}}
        sim, real = self.both("POST", "/apis/networking.istio.io/v1beta1/namespaces/demo/serviceentries", body)
        self.assertEqual((sim.status, real.status), (422, 422))
        self.assertEqual(diff(sorted_causes(sim.body), sorted_causes(real.body)), [])
        self.assertNotIn("<nil>", real.body["message"])


if __name__ == "__main__":
    unittest.main()
