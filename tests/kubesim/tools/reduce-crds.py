#!/usr/bin/python3
"""Reduce upstream CRD YAML to the structural schemas kubesim and schemacheck use.

Development-time tool: it reads the upstream CRDs (by default from
/work/shared/reference/crds) and writes tests/kubesim/schemas/*.json.  The
output keeps only structure (types, properties, required, items,
additionalProperties, list/map types, int-or-string, preserve-unknown-fields,
enum, default, nullable, format and the numeric/size bounds) and drops every
`description` and value-level validation (oneOf/anyOf/allOf/not, CEL rules,
patterns).  The tests never read the upstream files; they read only the
committed JSON.

Needs python3-yaml (Debian) at development time only.

    /usr/bin/python3 tools/reduce-crds.py [--src DIR] [--out DIR]

When you change the kept keywords, also touch kubesim_lib/schema.py, which
interprets them.
"""
import argparse
import json
import os
import sys

import yaml

KEEP_SCALAR = ("type", "format", "nullable", "enum", "default", "minItems", "maxItems",
               "minimum", "maximum", "minLength", "maxLength",
               "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
               "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
               "x-kubernetes-map-type", "x-kubernetes-embedded-resource")

# (input file, output file, {plural.group: set of versions or None for all})
ISTIO_KINDS = ("gateways.networking.istio.io", "virtualservices.networking.istio.io",
               "serviceentries.networking.istio.io", "destinationrules.networking.istio.io",
               "sidecars.networking.istio.io", "authorizationpolicies.security.istio.io")
JOBS = (
    ("istio-1.17.8-crd-all.gen.yaml", "istio-1.17.8.json", ISTIO_KINDS,
     "istio 1.17.8 manifests/charts/base/crds/crd-all.gen.yaml"),
    ("istio-head-crd-all.gen.yaml", "istio-head.json", ISTIO_KINDS,
     "istio head manifests/charts/base/files/crd-all.gen.yaml"),
    ("istio-operator-1.17-crds.gen.yaml", "smm-1.17.json",
     ("istiomeshgateways.servicemesh.cisco.com",),
     "banzaicloud/istio-operator release-1.17 config/crd/bases/istio-operator-crds.gen.yaml"),
)


def reduce_schema(node):
    if not isinstance(node, dict):
        return node
    out = {}
    for key in KEEP_SCALAR:
        if key in node:
            out[key] = node[key]
    if "properties" in node:
        out["properties"] = {k: reduce_schema(v) for k, v in sorted(node["properties"].items())}
    if "required" in node:
        out["required"] = list(node["required"])
    if "items" in node:
        out["items"] = reduce_schema(node["items"])
    if "additionalProperties" in node:
        ap = node["additionalProperties"]
        out["additionalProperties"] = reduce_schema(ap) if isinstance(ap, dict) else ap
    return out


def reduce_crd(crd):
    spec = crd["spec"]
    names = spec["names"]
    versions = []
    for v in spec["versions"]:
        cols = []
        for c in v.get("additionalPrinterColumns", []):
            col = {"name": c["name"], "type": c["type"], "jsonPath": c["jsonPath"]}
            for k in ("format", "priority"):
                if k in c:
                    col[k] = c[k]
            cols.append(col)
        versions.append({
            "name": v["name"],
            "served": bool(v.get("served")),
            "storage": bool(v.get("storage")),
            "deprecated": bool(v.get("deprecated", False)),
            "subresources": v.get("subresources", {}),
            "additionalPrinterColumns": cols,
            "schema": reduce_schema(v["schema"]["openAPIV3Schema"]),
        })
    return {
        "group": spec["group"],
        "scope": spec["scope"],
        "names": {k: names[k] for k in ("kind", "listKind", "plural", "singular",
                                        "shortNames", "categories") if k in names},
        "versions": versions,
    }


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="/work/shared/reference/crds")
    ap.add_argument("--out", default=os.path.join(here, "schemas"))
    args = ap.parse_args()
    for src, dst, wanted, origin in JOBS:
        with open(os.path.join(args.src, src)) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        byname = {d["metadata"]["name"]: d for d in docs}
        crds = []
        for name in wanted:
            if name not in byname:
                sys.exit("%s: %s not found" % (src, name))
            crds.append(reduce_crd(byname[name]))
        out = {"origin": origin,
               "generatedBy": "tests/kubesim/tools/reduce-crds.py",
               "crds": crds}
        text = json.dumps(out, indent=1, sort_keys=True) + "\n"
        if '"description"' in text:
            sys.exit("description text leaked into %s" % dst)
        with open(os.path.join(args.out, dst), "w") as f:
            f.write(text)
        print("wrote %s (%d bytes, %d CRDs)" % (dst, len(text), len(crds)))


if __name__ == "__main__":
    main()
