"""Discovery (aggregated v2/v2beta1 and legacy), OpenAPI v3 and Table output.

Documents are built once per cluster from its registry (they never change
while kubesim runs) and cached as bytes with their ETag.
"""
import base64
import hashlib
import json

from .util import dumpb, human_duration, parse_rfc3339

AGG_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGG_V2B1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
CRUD_VERBS_BUILTIN = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
CRUD_VERBS_CRD = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]


def _verbs(rt):
    if rt.builtin and rt.kind == "Namespace":
        return ["create", "delete", "get", "list", "patch", "update", "watch"]
    return CRUD_VERBS_BUILTIN if rt.builtin else CRUD_VERBS_CRD


def _groups(registry):
    """[(group, [versions in preference order], {version: [rt]})]."""
    order = []
    seen = {}
    for rt in registry:
        if rt.group not in seen:
            seen[rt.group] = {}
            order.append(rt.group)
        for v in rt.versions:
            seen[rt.group].setdefault(v, []).append(rt)
    from .schema import version_sort
    out = []
    for g in order:
        vs = version_sort(seen[g].keys())
        out.append((g, vs, seen[g]))
    return out


def storage_version_hash(rt):
    """discovery.StorageVersionHash: base64 of the first 8 bytes of
    sha256("group/storageVersion/Kind"), the same for every served version."""
    h = hashlib.sha256(("%s/%s/%s" % (rt.group, rt.storage_version, rt.kind)).encode()).digest()
    return base64.b64encode(h[:8]).decode()


def _agg_resource(rt, g, v):
    # a built-in kind's responseKind leaves group and version empty (they are
    # the resource's own); a CRD's names them
    rk = {"group": "", "version": "", "kind": rt.kind} if rt.builtin else {"group": g, "version": v, "kind": rt.kind}
    r = {"resource": rt.plural, "responseKind": rk,
         "scope": "Namespaced" if rt.namespaced else "Cluster",
         "singularResource": rt.singular, "verbs": _verbs(rt)}
    if rt.short_names:
        r["shortNames"] = rt.short_names
    if rt.categories:
        r["categories"] = rt.categories
    if rt.status_sub.get(v):
        r["subresources"] = [{"subresource": "status", "responseKind": rk, "verbs": ["get", "patch", "update"]}]
    return r


class Docs(object):
    def __init__(self, registry, server_hint="127.0.0.1:6443", version=None):
        self.registry = registry
        self.server_version = version or {"major": "1", "minor": "32"}
        groups = _groups(registry)
        self.groups = groups
        self.agg = {}
        for dv in ("v2", "v2beta1"):
            for core in (True, False):
                items = []
                for g, vs, per in groups:
                    if (g == "") != core:
                        continue
                    md = {"creationTimestamp": None} if core else {"name": g, "creationTimestamp": None}
                    versions = [{"version": v, "resources": [_agg_resource(rt, g, v) for rt in
                                                             sorted(per[v], key=lambda r: r.plural)],
                                 "freshness": "Current"} for v in vs]
                    items.append({"metadata": md, "versions": versions})
                doc = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/" + dv,
                       "metadata": {}, "items": items}
                self.agg[(dv, core)] = self._blob(doc)
        self.legacy_api = self._blob({"kind": "APIVersions", "versions": ["v1"],
                                      "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                      "serverAddress": server_hint}]})
        glist = []
        self.api_group = {}
        self.resource_lists = {}
        for g, vs, per in groups:
            if g == "":
                continue
            gd = {"name": g, "versions": [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in vs],
                  "preferredVersion": {"groupVersion": "%s/%s" % (g, vs[0]), "version": vs[0]}}
            glist.append(gd)
            self.api_group[g] = self._blob(dict({"kind": "APIGroup", "apiVersion": "v1"}, **gd))
        self.legacy_apis = self._blob({"kind": "APIGroupList", "apiVersion": "v1", "groups": glist})
        for g, vs, per in groups:
            for v in vs:
                res = []
                for rt in sorted(per[v], key=lambda r: r.plural):
                    r = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                         "kind": rt.kind, "verbs": _verbs(rt)}
                    if rt.short_names:
                        r["shortNames"] = rt.short_names
                    if rt.categories:
                        r["categories"] = rt.categories
                    r["storageVersionHash"] = storage_version_hash(rt)
                    res.append(r)
                    if rt.status_sub.get(v):
                        res.append({"name": rt.plural + "/status", "singularName": "", "namespaced": rt.namespaced,
                                    "kind": rt.kind, "verbs": ["get", "patch", "update"]})
                gv = "%s/%s" % (g, v) if g else v
                doc = {"kind": "APIResourceList", "groupVersion": gv, "resources": res}
                if g:
                    doc = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res}
                self.resource_lists[gv] = self._blob(doc)
        self._openapi()

    @staticmethod
    def _blob(doc):
        """(bytes, ETag): the aggregated discovery ETag is the upper-case hex
        SHA-512 of the document (discovery/aggregated/etag.go)."""
        b = dumpb_ordered(doc)
        return b, '"%s"' % hashlib.sha512(b).hexdigest().upper()

    def _openapi(self):
        paths = {}
        self.openapi_gv = {}
        for g, vs, per in self.groups:
            for v in vs:
                key = "api/%s" % v if g == "" else "apis/%s/%s" % (g, v)
                doc = self._gv_doc(g, v, per[v])
                b = dumpb_ordered(doc)
                h = hashlib.sha512(b).hexdigest()[:128].upper()
                self.openapi_gv[key] = (b, h)
                paths[key] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (key, h)}
        self.openapi_root = dumpb_ordered({"paths": paths})

    def _gv_doc(self, g, v, rts):
        """The OpenAPI v3 document of one group-version, with the paths and
        operations of the real one (builder3 for CRDs, the generated spec for
        built-ins) and the schemas reduced to structure."""
        builtin = any(rt.builtin for rt in rts)
        paths = {}
        schemas = {}
        meta = "io.k8s.apimachinery.pkg.apis.meta.v1."
        gname = ".".join(reversed(g.split("."))) if g else "io.k8s.api.core"
        if builtin:
            gname = "io.k8s.api.%s" % (g.split(".")[0] if g else "core")
        # a built-in group is named by its first label (coordination_v1,
        # patchCoordinationV1...), a CRD group by all of them
        tg = g.split(".")[0] if builtin else g
        tag = "%s_%s" % ("".join(p if i == 0 else p.capitalize()
                                 for i, p in enumerate(tg.replace("-", ".").split("."))) if g else "core", v)
        opgv = ("".join(p.capitalize() for p in tg.replace("-", ".").split(".")) if g else "Core") + v.capitalize()
        base = ("/api/%s" % v) if not g else "/apis/%s/%s" % (g, v)

        def q(name, typ):
            return {"name": name, "in": "query", "schema": {"type": typ, "uniqueItems": True}}

        def pathp(name):
            return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "uniqueItems": True}}
        list_params = [q("allowWatchBookmarks", "boolean"), q("continue", "string"), q("fieldSelector", "string"),
                       q("labelSelector", "string"), q("limit", "integer"), q("resourceVersion", "string"),
                       q("resourceVersionMatch", "string"), q("sendInitialEvents", "boolean"),
                       q("timeoutSeconds", "integer"), q("watch", "boolean")]
        write_params = [q("dryRun", "string"), q("fieldManager", "string"), q("fieldValidation", "string")]
        delete_params = [q("dryRun", "string"), q("gracePeriodSeconds", "integer"),
                         q("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean"),
                         q("orphanDependents", "boolean"), q("propagationPolicy", "string")]
        pretty = q("pretty", "string")
        patch_types = ["application/apply-patch+yaml", "application/json-patch+json",
                       "application/merge-patch+json"] + (["application/strategic-merge-patch+json"] if builtin else [])

        def ref(name):
            return {"$ref": "#/components/schemas/" + name}

        media = ("application/json", "application/yaml") + (
            ("application/vnd.kubernetes.protobuf",) if builtin else ())

        def content(name):
            return {t: {"schema": ref(name)} for t in media}

        def resp(codes, name):
            out = {}
            for c in codes:
                out[c] = {"description": {"200": "OK", "201": "Created", "202": "Accepted"}[c],
                          "content": content(name)}
            out["401"] = {"description": "Unauthorized"}
            return out

        for rt in rts:
            gvk = {"group": g, "version": v, "kind": rt.kind}
            sname = "%s.%s.%s" % (gname, v, rt.kind)
            lname = "%s.%s.%s" % (gname, v, rt.list_kind)
            ns_part = "Namespaced" if rt.namespaced else ""

            def op(verb, action, params, responses, body=None, suffix=""):
                o = {"tags": [tag], "operationId": "%s%s%s%s%s" % (verb, opgv, ns_part, rt.kind, suffix)}
                if params:
                    o["parameters"] = params
                if body is not None:
                    o["requestBody"] = body
                o["responses"] = responses
                o["x-kubernetes-action"] = action
                o["x-kubernetes-group-version-kind"] = gvk
                return o
            coll = "%s/namespaces/{namespace}/%s" % (base, rt.plural) if rt.namespaced else \
                "%s/%s" % (base, rt.plural)
            item = coll + "/{name}"
            coll_params = ([pathp("namespace")] if rt.namespaced else []) + [pretty]
            item_params = [pathp("name")] + ([pathp("namespace")] if rt.namespaced else []) + [pretty]
            body_obj = {"content": content(sname), "required": True}
            patch_body = {"content": {t: {"schema": ref(meta + "Patch")} for t in patch_types}, "required": True}
            patch_codes = ["200", "201"] if builtin else ["200"]
            coll_item = {"get": op("list", "list", list_params, resp(["200"], lname)),
                         "post": op("create", "post", write_params, resp(["200", "201", "202"], sname),
                                    body_obj),
                         "parameters": coll_params}
            if "deletecollection" in _verbs(rt):
                dc = op("delete", "deletecollection", list_params, resp(["200"], meta + "Status"))
                dc["operationId"] = "delete%sCollection%s%s" % (opgv, ns_part, rt.kind)
                coll_item["delete"] = dc
            paths[coll] = coll_item
            paths[item] = {
                "get": op("read", "get", [q("resourceVersion", "string")] if not builtin else [],
                          resp(["200"], sname)),
                "put": op("replace", "put", write_params, resp(["200", "201"], sname), body_obj),
                "patch": op("patch", "patch", write_params + [q("force", "boolean")],
                            resp(patch_codes, sname), patch_body),
                "delete": op("delete", "delete", delete_params, resp(["200", "202"], meta + "Status"),
                             {"content": content(meta + "DeleteOptions")}),
                "parameters": item_params}
            if rt.status_sub.get(v):
                paths[item + "/status"] = {
                    "get": op("read", "get", [q("resourceVersion", "string")] if not builtin else [],
                              resp(["200"], sname), suffix="Status"),
                    "put": op("replace", "put", write_params, resp(["200", "201"], sname), body_obj,
                              suffix="Status"),
                    "patch": op("patch", "patch", write_params + [q("force", "boolean")],
                                resp(patch_codes, sname), patch_body, suffix="Status"),
                    "parameters": item_params}
            if rt.namespaced:
                allns = {"get": op("list", "list", [], resp(["200"], lname), suffix="ForAllNamespaces"),
                         "parameters": list_params[:5] + [pretty] + list_params[5:]}
                allns["get"]["operationId"] = "list%s%sForAllNamespaces" % (opgv, rt.kind)
                paths["%s/%s" % (base, rt.plural)] = allns
            sch = _public(rt.schemas[v])
            props = dict(sch.get("properties", {}))
            props["metadata"] = {"allOf": [ref(meta + "ObjectMeta")]}
            s = {"type": "object", "properties": props, "x-kubernetes-group-version-kind": [gvk]}
            if sch.get("required"):
                s["required"] = sch["required"]
            if not builtin:
                s["x-kubernetes-selectable-fields"] = []
            schemas[sname] = s
            ls = {"type": "object", "required": ["items"],
                  "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                 "items": {"type": "array", "items": ref(sname)},
                                 "metadata": {"allOf": [ref(meta + "ListMeta")]}},
                  "x-kubernetes-group-version-kind": [dict(gvk, kind=rt.list_kind)]}
            if not builtin:
                ls["x-kubernetes-selectable-fields"] = []
            schemas[lname] = ls
        for m in ("DeleteOptions", "FieldsV1", "ListMeta", "ManagedFieldsEntry", "ObjectMeta", "OwnerReference",
                  "Patch", "Preconditions", "Status", "StatusCause", "StatusDetails", "Time"):
            schemas[meta + m] = {"type": "string"} if m == "Time" else {"type": "object"}
        info = {"title": "Kubernetes", "version": "%s.%s" % (self.server_version["major"],
                                                             self.server_version["minor"])} \
            if builtin else {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}
        return {"openapi": "3.0.0", "info": info, "paths": paths, "components": {"schemas": schemas}}


def _public(s):
    """A schema without kubesim's own markers."""
    if isinstance(s, dict):
        return {k: _public(v) for k, v in s.items() if not k.startswith("x-kubesim-")}
    if isinstance(s, list):
        return [_public(x) for x in s]
    return s


def dumpb_ordered(doc):
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

# ---------------------------------------------------------------------------
# Tables


NAME_COL = {"name": "Name", "type": "string", "format": "name",
            "description": "Name must be unique within a namespace.", "priority": 0}
AGE_DESC = "CreationTimestamp is a timestamp representing the server time when this object was created."


def _jsonpath(obj, path):
    cur = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        idx = None
        if "[" in part and part.endswith("]"):
            part, idx = part[:-1].split("[", 1)
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
        if idx is not None:
            try:
                cur = cur[int(idx)]
            except (ValueError, IndexError, TypeError, KeyError):
                return None
    return cur


def _cell(col, v, now):
    if v is None:
        return None
    t = col["type"]
    if t == "date":
        ts = parse_rfc3339(v) if isinstance(v, str) else None
        return human_duration(now - ts) if ts is not None else "<unknown>"
    if t in ("integer", "number", "boolean"):
        return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _builtin_columns(rt):
    d = lambda n, t="string", p=0, f="": {"name": n, "type": t, "format": f, "description": n, "priority": p}
    if rt.kind == "Namespace":
        return [NAME_COL, d("Status"), d("Age")]
    if rt.kind == "Service":
        return [NAME_COL, d("Type"), d("Cluster-IP"), d("External-IP"), d("Port(s)"), d("Age"),
                d("Selector", p=1)]
    if rt.kind == "Deployment":
        return [NAME_COL, d("Ready"), d("Up-to-date", "integer"), d("Available", "integer"), d("Age"),
                d("Containers", p=1), d("Images", p=1), d("Selector", p=1)]
    if rt.kind == "ConfigMap":
        return [NAME_COL, d("Data"), d("Age")]      # a "string" column of numbers, as the real one
    if rt.kind == "Lease":
        return [NAME_COL, d("Holder"), d("Age")]
    return [NAME_COL, d("Age")]


def _builtin_cells(rt, o, now):
    md = o.get("metadata", {})
    age = human_duration(now - (parse_rfc3339(md.get("creationTimestamp")) or now))
    spec, st = o.get("spec") or {}, o.get("status") or {}
    if rt.kind == "Namespace":
        return [md["name"], st.get("phase", ""), age]
    if rt.kind == "Service":
        ports = ",".join("%s%s/%s" % (p.get("port"), (":%s" % p["nodePort"]) if p.get("nodePort") else "",
                                      p.get("protocol", "TCP")) for p in spec.get("ports") or [])
        ing = ((st.get("loadBalancer") or {}).get("ingress")) or []
        ext = ",".join(i.get("ip") or i.get("hostname", "") for i in ing) or (
            "<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
        sel = ",".join("%s=%s" % kv for kv in sorted((spec.get("selector") or {}).items())) or "<none>"
        return [md["name"], spec.get("type", ""), spec.get("clusterIP", ""), ext, ports or "<none>", age, sel]
    if rt.kind == "ConfigMap":
        return [md["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}), age]
    if rt.kind == "Lease":
        return [md["name"], spec.get("holderIdentity") or "", age]
    if rt.kind == "Deployment":
        cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        sel = ",".join("%s=%s" % kv for kv in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
        return [md["name"], "%d/%d" % (st.get("readyReplicas", 0), spec.get("replicas", 1)),
                st.get("updatedReplicas", 0), st.get("availableReplicas", 0), age,
                ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs), sel]
    return [md["name"], age]


def table_columns(rt, version):
    if rt.builtin:
        return _builtin_columns(rt)
    cols = [NAME_COL]
    apc = rt.columns.get(version) or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    for c in apc:
        desc = AGE_DESC if c["name"] == "Age" else ""
        cols.append({"name": c["name"], "type": c["type"], "format": c.get("format", ""),
                     "description": desc, "priority": c.get("priority", 0)})
    return cols


def table_row(rt, version, obj, now):
    if rt.builtin:
        cells = _builtin_cells(rt, obj, now)
    else:
        cells = [obj["metadata"]["name"]]
        apc = rt.columns.get(version) or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        for c in apc:
            cells.append(_cell(c, _jsonpath(obj, c["jsonPath"]), now))
    return {"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                       "metadata": obj.get("metadata", {})}}


def table(rt, version, objs, now, rv=None, cont=None, remaining=None, headers=True):
    md = {}
    if rv is not None:
        md["resourceVersion"] = str(rv)
    if cont:
        md["continue"] = cont
    if remaining is not None:
        md["remainingItemCount"] = remaining
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md,
            "columnDefinitions": table_columns(rt, version) if headers else [],
            "rows": [table_row(rt, version, o, now) for o in objs]}
