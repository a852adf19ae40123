#!/usr/bin/python3
"""Generate daemon/render/crd-schemas.json: the CRD schemas egressd checks template overrides with.

Development-time tool. It reads the upstream CustomResourceDefinitions of
tests/realk8s/crds/ (Istio 1.17.8, Istio head, SMM's IstioMeshGateway) and
writes one minified JSON file that cmake/embed-crd-schemas.cmake compiles
into egressd (render-crd.c reads it, only when a config repo overrides a
template). Needs python3-yaml (Debian) at development time only:

    /usr/bin/python3 daemon/render/tools/gen-crd-schemas.py [--src DIR] [--out FILE] [--check]

--check compares instead of writing (exit 1 when the committed file is stale).

Output: {"generatedBy", "objects": [...], "defs": [...]}. One object per
apiVersion and kind egressd renders:

  {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
   "source": "Istio 1.17.8", "newer": "networking.istio.io/v1", "schema": S}

"newer" (optional) names the apiVersion of the same kind whose schema comes
from a newer Istio, for the hint "only newer Istio declares it". A schema S
keeps only what the checks need: type, properties, items, required, enum,
additionalProperties (a schema, or true), x-kubernetes-preserve-unknown-fields
and x-kubernetes-int-or-string. Descriptions, CEL rules, formats, bounds and
oneOf/anyOf/allOf/not are dropped. The root gets apiVersion, kind and an
ObjectMeta schema for metadata (the API server checks metadata as ObjectMeta;
a CRD never declares it). A subtree that occurs more than once (v1alpha3 and
v1beta1 share their schemas, trafficPolicy repeats inside a DestinationRule)
is written once in "defs" and referenced as {"$ref": N}.

When you change the kept keywords or the format, also touch render-crd.c,
which interprets them.
"""
import argparse
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))

# (file in --src, source label, [(plural.group, [versions], newer apiVersion or None)])
NET = ("gateways", "virtualservices", "serviceentries", "destinationrules", "sidecars")
JOBS = (
    ("istio-1.17.8.yaml", "Istio 1.17.8",
     [("%s.networking.istio.io" % p, ["v1alpha3", "v1beta1"], "networking.istio.io/v1") for p in NET]
     + [("authorizationpolicies.security.istio.io", ["v1beta1"], "security.istio.io/v1")]),
    ("istio-head.yaml", "Istio head",
     [("%s.networking.istio.io" % p, ["v1"], None) for p in NET]
     + [("authorizationpolicies.security.istio.io", ["v1"], None)]),
    ("smm-imgw.yaml", "SMM 1.17",
     [("istiomeshgateways.servicemesh.cisco.com", ["v1alpha1"], None)]),
)

KEEP_FLAGS = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")

# A built-in kind egressd renders, with no CRD to read: networking.k8s.io/v1
# NetworkPolicy as Kubernetes 1.32's OpenAPI has it (k8s.io/api/networking/v1),
# reduced to structure.
_INT = {"type": "integer"}
_LIST = lambda items: {"type": "array", "items": items}
_LABEL_SELECTOR = {"type": "object", "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": _LIST({"type": "object", "required": ["key", "operator"], "properties": {
        "key": {"type": "string"}, "operator": {"type": "string"},
        "values": _LIST({"type": "string"})}})}}
_PEER = {"type": "object", "properties": {
    "ipBlock": {"type": "object", "required": ["cidr"], "properties": {
        "cidr": {"type": "string"}, "except": _LIST({"type": "string"})}},
    "namespaceSelector": _LABEL_SELECTOR, "podSelector": _LABEL_SELECTOR}}
_NP_PORT = {"type": "object", "properties": {
    "protocol": {"type": "string", "enum": ["TCP", "UDP", "SCTP"]},
    "port": {"x-kubernetes-int-or-string": True}, "endPort": _INT}}
BUILTINS = [("networking.k8s.io/v1", "NetworkPolicy", "Kubernetes 1.32", {
    "type": "object", "properties": {"spec": {"type": "object", "properties": {
        "podSelector": _LABEL_SELECTOR,
        "policyTypes": _LIST({"type": "string", "enum": ["Ingress", "Egress"]}),
        "ingress": _LIST({"type": "object", "properties": {"from": _LIST(_PEER), "ports": _LIST(_NP_PORT)}}),
        "egress": _LIST({"type": "object", "properties": {"to": _LIST(_PEER), "ports": _LIST(_NP_PORT)}}),
    }}}})]

_S = {"type": "string"}
_STRMAP = {"type": "object", "additionalProperties": _S}
# k8s.io/apimachinery ObjectMeta as a structural schema (what a client may send)
OBJECT_META = {"type": "object", "properties": {
    "name": _S, "generateName": _S, "namespace": _S, "selfLink": _S, "uid": _S,
    "resourceVersion": _S, "generation": {"type": "integer"},
    "creationTimestamp": _S, "deletionTimestamp": _S,
    "deletionGracePeriodSeconds": {"type": "integer"},
    "labels": _STRMAP, "annotations": _STRMAP,
    "ownerReferences": {"type": "array", "items": {
        "type": "object", "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {"apiVersion": _S, "kind": _S, "name": _S, "uid": _S,
                       "controller": {"type": "boolean"},
                       "blockOwnerDeletion": {"type": "boolean"}}}},
    "finalizers": {"type": "array", "items": _S},
    "managedFields": {"type": "array", "items": {"type": "object",
                                                 "x-kubernetes-preserve-unknown-fields": True}},
}}

MIN_SHARED = 48   # bytes of canonical JSON below which a repeated subtree is left inline


def reduce_schema(node):
    out = {}
    if "type" in node:
        out["type"] = node["type"]
    for key in KEEP_FLAGS:
        if node.get(key):
            out[key] = True
    if "enum" in node:
        out["enum"] = list(node["enum"])
    if "properties" in node:
        out["properties"] = {k: reduce_schema(v) for k, v in sorted(node["properties"].items())}
    if node.get("required"):
        out["required"] = sorted(node["required"])
    if "items" in node:
        out["items"] = reduce_schema(node["items"])
    if "additionalProperties" in node:
        ap = node["additionalProperties"]
        if isinstance(ap, dict):
            out["additionalProperties"] = reduce_schema(ap)
        elif ap is True:
            out["additionalProperties"] = True
        # false is not allowed in a structural schema; nothing to keep
    return out


def root_schema(s):
    r = dict(s)
    props = dict(s.get("properties", {}))
    props["apiVersion"] = _S
    props["kind"] = _S
    props["metadata"] = OBJECT_META
    r["properties"] = dict(sorted(props.items()))
    r["type"] = "object"
    return r


def canon(x):
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


def count_repeats(node, counts):
    """Count subtrees; a subtree already seen is counted, not entered again."""
    if not isinstance(node, dict):
        return
    c = canon(node)
    counts[c] = counts.get(c, 0) + 1
    if counts[c] > 1:
        return
    for k, v in node.items():
        if k == "properties":
            for p in v.values():
                count_repeats(p, counts)
        elif k in ("items", "additionalProperties"):
            count_repeats(v, counts)


def share(node, shared, defs, index, root=False):
    """node with its repeated subtrees replaced by {"$ref": N}."""
    if not isinstance(node, dict):
        return node
    c = canon(node)
    if not root and c in shared:
        if c not in index:
            index[c] = len(defs)
            defs.append(None)
            defs[index[c]] = share(node, shared, defs, index, root=True)
        return {"$ref": index[c]}
    out = {}
    for k, v in node.items():
        if k == "properties":
            out[k] = {p: share(s, shared, defs, index) for p, s in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = share(v, shared, defs, index)
        else:
            out[k] = v
    return out


def load(src, name):
    with open(os.path.join(src, name)) as f:
        return {d["metadata"]["name"]: d for d in yaml.safe_load_all(f) if d}


def generate(src):
    objects = []
    for fname, label, kinds in JOBS:
        crds = load(src, fname)
        for crdname, versions, newer in kinds:
            if crdname not in crds:
                sys.exit("%s: %s not found" % (fname, crdname))
            spec = crds[crdname]["spec"]
            byver = {v["name"]: v for v in spec["versions"]}
            for v in versions:
                if v not in byver or not byver[v].get("served"):
                    sys.exit("%s: %s does not serve %s" % (fname, crdname, v))
                o = {"apiVersion": "%s/%s" % (spec["group"], v), "kind": spec["names"]["kind"],
                     "source": label}
                if newer:
                    o["newer"] = newer
                o["schema"] = root_schema(reduce_schema(byver[v]["schema"]["openAPIV3Schema"]))
                objects.append(o)
    for api, kind, label, schema in BUILTINS:
        objects.append({"apiVersion": api, "kind": kind, "source": label,
                        "schema": root_schema(reduce_schema(schema))})
    counts = {}
    for o in objects:
        count_repeats(o["schema"], counts)
    shared = {c for c, n in counts.items() if n > 1 and len(c) >= MIN_SHARED}
    defs, index = [], {}
    for o in objects:
        o["schema"] = share(o["schema"], shared, defs, index)
    out = {"generatedBy": "daemon/render/tools/gen-crd-schemas.py from tests/realk8s/crds",
           "objects": objects, "defs": defs}
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=True) + "\n"
    if '"description"' in text or "x-kubernetes-validations" in text:
        sys.exit("descriptions or CEL rules leaked into the output")
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(ROOT, "tests", "realk8s", "crds"))
    ap.add_argument("--out", default=os.path.join(ROOT, "daemon", "render", "crd-schemas.json"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = generate(args.src)
    if args.check:
        with open(args.out) as f:
            if f.read() != text:
                sys.exit("%s is stale; run %s" % (args.out, sys.argv[0]))
        return
    with open(args.out, "w") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (args.out, len(text)))


if __name__ == "__main__":
    main()
