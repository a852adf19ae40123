"""Structural schemas and the resource registry.

The schemas are the reduced CRDs in ../schemas/*.json (see tools/reduce-crds.py
and schemas/builtin.json).  This module interprets them the way the real
server does for a structural schema:

* prune()    drops fields the schema does not declare (create, update, merge
             and JSON patch), reporting `unknown field "spec.foo"` so that
             fieldValidation=Strict can refuse them;
* default()  fills `default` values;
* validate() answers the 422 field errors (required, type, enum, bounds);
* typed_errors() is the server-side-apply typed conversion that refuses
             unknown fields with `.spec.foo: field not declared in schema`;
* go_decode() is the decoding of a built-in kind into its Go struct, for the
             kinds whose schema names its Go types (x-kubesim-go-struct):
             the real 400 on a wrong JSON type, MicroTime and base64.

Node helpers (node_kind, child_schema, list_type...) are shared with
fieldset.py, which must agree with them on what is a struct, a map, a list.
"""
import base64
import copy
import json
import os

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")

DEDUCED = {"x-kubernetes-preserve-unknown-fields": True}
_S = {"type": "string"}
_STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META = {"type": "object", "properties": {
    "name": _S, "generateName": _S, "namespace": _S, "selfLink": _S, "uid": _S,
    "resourceVersion": _S, "generation": {"type": "integer", "format": "int64"},
    "creationTimestamp": {"type": "string", "format": "date-time", "nullable": True},
    "deletionTimestamp": {"type": "string", "format": "date-time", "nullable": True},
    "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
    "labels": _STRMAP, "annotations": _STRMAP,
    "ownerReferences": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
                        "items": {"type": "object", "required": ["apiVersion", "kind", "name", "uid"],
                                  "properties": {"apiVersion": _S, "kind": _S, "name": _S, "uid": _S,
                                                 "controller": {"type": "boolean"},
                                                 "blockOwnerDeletion": {"type": "boolean"}}}},
    "finalizers": {"type": "array", "items": _S, "x-kubernetes-list-type": "set"},
    "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
}}

# ---------------------------------------------------------------------------
# node helpers


def is_int_or_string(s):
    return bool(s.get("x-kubernetes-int-or-string"))


def node_kind(s, v):
    """'scalar', 'list' or 'map' for schema s holding value v (v decides for deduced parts)."""
    if s is None:
        s = DEDUCED
    t = s.get("type")
    if t == "array":
        return "list"
    if t == "object" or "properties" in s or "additionalProperties" in s:
        return "map"
    if t in ("string", "integer", "number", "boolean") or is_int_or_string(s):
        return "scalar"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "list"
    return "scalar"


def is_deduced(s):
    return s is None or ("type" not in s and "properties" not in s and not is_int_or_string(s))


def list_type(s):
    if is_deduced(s):
        return "atomic"
    return s.get("x-kubernetes-list-type", "atomic")


def map_atomic(s):
    return s is not None and s.get("x-kubernetes-map-type") == "atomic"


def items_schema(s):
    if is_deduced(s):
        return DEDUCED
    return s.get("items") or DEDUCED


def child_schema(s, key):
    """(schema, declared) for map key `key`, or (None, False) if the key is not allowed."""
    if is_deduced(s):
        return DEDUCED, False
    props = s.get("properties")
    if props and key in props:
        return props[key], True
    ap = s.get("additionalProperties")
    if isinstance(ap, dict):
        return ap, False
    if ap is True or s.get("x-kubernetes-preserve-unknown-fields"):
        return DEDUCED, False
    return None, False


def is_struct(s):
    return s is not None and bool(s.get("properties"))


def is_value_struct(s):
    """A struct of a built-in kind (a non-pointer Go struct): see ResourceType."""
    return s is not None and bool(s.get("x-kubesim-value-struct"))


def _mark_value_structs(s):
    if not isinstance(s, dict):
        return s
    out = dict(s)
    if s.get("properties"):
        out["properties"] = {k: _mark_value_structs(v) for k, v in s["properties"].items()}
        out["x-kubesim-value-struct"] = True
    if isinstance(s.get("items"), dict):
        out["items"] = _mark_value_structs(s["items"])
    if isinstance(s.get("additionalProperties"), dict):
        out["additionalProperties"] = _mark_value_structs(s["additionalProperties"])
    return out


def list_key(s, item):
    """The FieldsV1 path element of list item `item` in associative list s, or raise ValueError."""
    lt = list_type(s)
    if lt == "set":
        return "v:" + json.dumps(item, separators=(",", ":"), ensure_ascii=False)
    if lt == "map":
        if not isinstance(item, dict):
            raise ValueError("expected map, got %s" % json.dumps(item))
        keys = s.get("x-kubernetes-list-map-keys", [])
        isch = items_schema(s).get("properties", {})
        out = {}
        for k in sorted(keys):
            v = item.get(k)
            if v is None:
                d = isch.get(k, {}).get("default")
                if d is None:
                    raise ValueError("associative list with keys has an element that omits key field %s "
                                     "(and doesn't have default value)" % json.dumps(k))
                v = d
            out[k] = v
        return "k:" + json.dumps(out, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    raise ValueError("not an associative list")


def root_schema(s):
    """The CRD root schema plus the implicit apiVersion, kind and metadata."""
    r = dict(s)
    props = dict(s.get("properties", {}))
    props.setdefault("apiVersion", _S)
    props.setdefault("kind", _S)
    props["metadata"] = OBJECT_META
    r["properties"] = props
    r["type"] = "object"
    return r

# ---------------------------------------------------------------------------
# the registry


class ResourceType(object):
    """One served resource: a CRD or a built-in kind, with its schema per version."""

    def __init__(self, crd, versions):
        self.group = crd["group"]
        n = crd["names"]
        self.kind = n["kind"]
        self.list_kind = n.get("listKind", self.kind + "List")
        self.plural = n["plural"]
        self.singular = n.get("singular", self.kind.lower())
        self.short_names = n.get("shortNames") or []
        self.categories = n.get("categories") or []
        self.namespaced = crd["scope"] == "Namespaced"
        self.builtin = bool(crd.get("builtin"))
        self.versions = versions                      # preference order
        vmap = {v["name"]: v for v in crd["versions"]}
        self.schemas = {v: root_schema(vmap[v]["schema"]) for v in versions}
        self.columns = {v: vmap[v].get("additionalPrinterColumns") or [] for v in versions}
        self.status_sub = {v: "status" in (vmap[v].get("subresources") or {}) for v in versions}
        self.key = (self.group, self.plural)
        st = [v["name"] for v in crd["versions"] if v.get("storage")]
        self.storage_version = st[0] if st else versions[0]
        # whether the upstream CRD carries CEL rules (x-kubernetes-validations);
        # the reduced schemas drop them, build_registry() knows which have them
        self.cel = False
        if self.builtin:
            # a Go struct field that is not a pointer is never absent, so an
            # Update never adds it as a member of its own ('.'): mark them
            self.schemas = {v: _mark_value_structs(s) for v, s in self.schemas.items()}

    @property
    def qualified(self):
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    def api_version(self, version):
        return "%s/%s" % (self.group, version) if self.group else version

    def name_rule(self):
        if self.builtin and self.kind == "Namespace":
            return "label"
        if self.builtin and self.kind == "Service":
            return "dns1035"
        return "subdomain"

    def tracks_generation(self):
        return not (self.builtin and self.kind in ("Namespace", "Service", "ConfigMap", "Lease"))

    def allow_create_on_update(self):
        """The strategy's AllowCreateOnUpdate: a PUT of a missing object creates it."""
        return self.builtin and self.kind in ("Service", "Lease")

    def allow_unconditional_update(self):
        """The strategy's AllowUnconditionalUpdate: a PUT without
        metadata.resourceVersion overwrites (CRDs and Leases refuse it)."""
        return self.builtin and self.kind != "Lease"


_cache = {}


def load_file(name):
    if name not in _cache:
        with open(os.path.join(SCHEMA_DIR, name)) as f:
            _cache[name] = json.load(f)
    return _cache[name]


ISTIO_FILES = {"1.17": "istio-1.17.8.json", "head": "istio-head.json"}
_PRIO = {"v1": 0, "v1beta1": 1, "v1alpha3": 2, "v1alpha1": 3}


def version_sort(vs):
    return sorted(vs, key=lambda v: (_PRIO.get(v, 9), v))


def build_registry(istio_versions, istio_schema, smm):
    """The list of ResourceTypes a cluster serves.

    istio_versions: networking.istio.io versions served (subset of v1, v1beta1,
    v1alpha3); istio_schema: '1.17' or 'head'; smm: install the IstioMeshGateway CRD.
    security.istio.io serves the versions its CRD of that generation serves.
    """
    out = []
    for crd in load_file("builtin.json")["crds"]:
        out.append(ResourceType(crd, [v["name"] for v in crd["versions"]]))
    for crd in load_file(ISTIO_FILES[istio_schema])["crds"]:
        have = [v["name"] for v in crd["versions"] if v["served"]]
        if crd["group"] == "networking.istio.io":
            vs = [v for v in have if v in istio_versions]
        else:
            vs = have
        if vs:
            rt = ResourceType(crd, version_sort(vs))
            # every kind of the head generation has CEL rules, none of 1.17's
            rt.cel = istio_schema == "head"
            out.append(rt)
    if smm:
        for crd in load_file("smm-1.17.json")["crds"]:
            out.append(ResourceType(crd, [v["name"] for v in crd["versions"]]))
    return out


def schema_for(apiversion, kind, istio="head"):
    """Look up (ResourceType, version) for schemacheck; None if unknown."""
    if "/" in apiversion:
        group, version = apiversion.split("/", 1)
    else:
        group, version = "", apiversion
    vers = ["v1", "v1beta1", "v1alpha3"] if istio == "head" else ["v1beta1", "v1alpha3"]
    for rt in build_registry(vers, istio, True):
        if rt.group == group and rt.kind == kind and version in rt.schemas:
            return rt, version
    return None, None

# ---------------------------------------------------------------------------
# pruning, defaulting, validation


def _join(path, key):
    return key if not path else path + "." + key


def prune(v, s, path="", unknown=None, root=True):
    """Return v without undeclared fields and non-nullable nulls; collect their paths in `unknown`."""
    if unknown is None:
        unknown = []
    if isinstance(v, dict):
        if node_kind(s, v) != "map":
            return v
        out = {}
        for k in v:
            cs, declared = child_schema(s, k)
            if cs is None:
                unknown.append(_join(path, k))
                continue
            cv = v[k]
            if cv is None and declared and not cs.get("nullable") and not (root and k == "metadata") and \
                    cs.get("x-kubesim-go-type") != "MicroTime":
                # structural defaulting drops nulls of non-nullable fields; a
                # MicroTime's null is the zero time (go_decode dropped the others)
                continue
            out[k] = prune(cv, cs, _join(path, k), unknown, False)
        return out
    if isinstance(v, list):
        if node_kind(s, v) != "list":
            return v
        isch = items_schema(s)
        return [prune(x, isch, "%s[%d]" % (path, i), unknown, False) for i, x in enumerate(v)]
    return v


def default(v, s):
    """Fill schema defaults in place (objects only); returns v."""
    if isinstance(v, dict) and node_kind(s, v) == "map" and s is not None:
        for k, ps in (s.get("properties") or {}).items():
            if k not in v and "default" in ps:
                v[k] = copy.deepcopy(ps["default"])
        for k, cv in v.items():
            cs, _ = child_schema(s, k)
            if cs is not None:
                default(cv, cs)
    elif isinstance(v, list) and s is not None and node_kind(s, v) == "list":
        isch = items_schema(s)
        for x in v:
            default(x, isch)
    return v


_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
               float: "number", type(None): "null"}


def _jtype(v):
    return _TYPE_NAMES.get(type(v), "unknown")


def validate(v, s, path, errs, skip_meta=True):
    """Append FieldErrors (required, type, enum, bounds) for v against s."""
    from .util import fe_required, fe_invalid, fe_not_supported, fe_type_invalid
    if s is None or is_deduced(s):
        return
    if v is None:
        return
    if is_int_or_string(s):
        if not isinstance(v, (int, str)) or isinstance(v, bool):
            errs.append(fe_type_invalid(path, _jtype(v), "%s in body must be of type int-or-string: %s"
                                   % (path, json.dumps(_jtype(v)))))
        return
    t = s.get("type")
    ok = {"object": lambda x: isinstance(x, dict), "array": lambda x: isinstance(x, list),
          "string": lambda x: isinstance(x, str),
          "integer": lambda x: isinstance(x, int) and not isinstance(x, bool) or (
              isinstance(x, float) and x.is_integer()),
          "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
          "boolean": lambda x: isinstance(x, bool)}.get(t)
    if ok is not None and not ok(v):
        errs.append(fe_type_invalid(path, _jtype(v), "%s in body must be of type %s: %s"
                               % (path, t, json.dumps(_jtype(v)))))
        return
    if "enum" in s and v not in s["enum"]:
        errs.append(fe_not_supported(path, v, s["enum"]))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            errs.append(fe_invalid(path, v, "%s in body should be greater than or equal to %s"
                                   % (path, _num(s["minimum"]))))
        if "maximum" in s and v > s["maximum"]:
            errs.append(fe_invalid(path, v, "%s in body should be less than or equal to %s"
                                   % (path, _num(s["maximum"]))))
    if isinstance(v, str):
        if "maxLength" in s and len(v) > s["maxLength"]:
            from .util import fe_too_long
            errs.append(fe_too_long(path, s["maxLength"]))
        if "minLength" in s and len(v) < s["minLength"]:
            errs.append(fe_invalid(path, v, "%s in body should be at least %d chars long"
                                   % (path, s["minLength"])))
    if isinstance(v, list):
        if "minItems" in s and len(v) < s["minItems"]:
            errs.append(fe_invalid(path, len(v), "%s in body should have at least %d items"
                                   % (path, s["minItems"])))
        if "maxItems" in s and len(v) > s["maxItems"]:
            errs.append(fe_invalid(path, len(v), "%s in body should have at most %d items"
                                   % (path, s["maxItems"])))
        isch = items_schema(s)
        for i, x in enumerate(v):
            validate(x, isch, "%s[%d]" % (path, i), errs, False)
    if isinstance(v, dict):
        for r in s.get("required") or []:
            if v.get(r) is None:
                errs.append(fe_required(_join(path, r)))
        for k, cv in v.items():
            if skip_meta and not path and k in ("metadata", "apiVersion", "kind"):
                continue
            cs, _ = child_schema(s, k)
            if cs is not None:
                validate(cv, cs, _join(path, k), errs, False)


def _num(x):
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def go_v(v):
    """Go's %v of a decoded JSON value (map keys sorted, as fmt prints maps)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict):
        return "map[%s]" % " ".join("%s:%s" % (k, go_v(v[k])) for k in sorted(v))
    if isinstance(v, list):
        return "[%s]" % " ".join(go_v(x) for x in v)
    return str(v)


def _got(v):
    """SMD prints the offending value.Value with %v: a pointer to a struct
    holding the value, e.g. &{notalist}."""
    return "&{%s}" % go_v(v)


def _got_scalar(v):
    """SMD prints a mismatched scalar with %#v: &value.valueUnstructured{Value:true}."""
    from .util import go_quote
    if isinstance(v, bool):
        g = "true" if v else "false"
    elif isinstance(v, str):
        g = go_quote(v)
    elif isinstance(v, float) and v.is_integer():
        g = str(int(v))
    else:
        g = str(v)
    return "&value.valueUnstructured{Value:%s}" % g


def typed_errors(v, s, path="", unknown_ok=False):
    """SMD typed conversion errors for an apply patch: list of '<path>: <msg>' strings."""
    errs = []
    _typed(v, s, path, errs, unknown_ok)
    return errs


def _typed(v, s, path, errs, unknown_ok=False):
    if v is None:
        return
    kind = node_kind(s, v)
    if kind == "scalar":
        if isinstance(v, (dict, list)):
            errs.append("%s: expected scalar, got %s" % (path, "map" if isinstance(v, dict) else "list"))
            return
        t = (s or {}).get("type")
        if t == "string" and not isinstance(v, str):
            errs.append("%s: expected string, got %s" % (path, _got_scalar(v)))
        elif t == "boolean" and not isinstance(v, bool):
            errs.append("%s: expected boolean, got %s" % (path, _got_scalar(v)))
        elif t in ("integer", "number") and (isinstance(v, (bool, str))):
            # SMD prints this one with %T
            errs.append("%s: expected numeric (int or float), got %s" % (path, "bool" if isinstance(v, bool)
                                                                         else "string"))
        return
    if kind == "list":
        if not isinstance(v, list):
            errs.append("%s: expected list, got %s" % (path, _got(v)))
            return
        isch = items_schema(s)
        lt = list_type(s)
        seen = set()
        for i, x in enumerate(v):
            if lt in ("set", "map"):
                try:
                    pe = list_key(s, x)
                except ValueError as e:
                    errs.append("%s: element %d: %s" % (path, i, e))
                    return
                if pe in seen:
                    errs.append("%s: duplicate entries for key %s" % (path, pe_string(pe)))
                seen.add(pe)
                _typed(x, isch, path + pe_string(pe), errs, unknown_ok)
            else:
                _typed(x, isch, "%s[%d]" % (path, i), errs, unknown_ok)
        return
    if not isinstance(v, dict):
        errs.append("%s: expected map, got %s" % (path, _got(v)))
        return
    for k in sorted(v):
        cs, _ = child_schema(s, k)
        if cs is None:
            if unknown_ok:
                continue
            errs.append("%s.%s: field not declared in schema" % (path, k))
            return          # SMD stops at the first undeclared field of a map
        _typed(v[k], cs, "%s.%s" % (path, k), errs, unknown_ok)


def pe_string(pe):
    """fieldpath.PathElement.String(): .name, [k=v,...], [=v], [i]."""
    t, rest = pe[0], pe[2:]
    if t == "f":
        return "." + rest
    if t == "k":
        d = json.loads(rest)
        return "[" + ",".join("%s=%s" % (k, json.dumps(d[k], separators=(",", ":"), ensure_ascii=False))
                              for k in sorted(d)) + "]"
    if t == "v":
        return "[=" + rest + "]"
    return "[" + rest + "]"


def path_string(path):
    return "".join(pe_string(pe) for pe in path)


# ---------------------------------------------------------------------------
# Go decoding of built-in kinds
#
# A built-in kind is decoded into its Go struct before anything else looks at
# it: a wrong JSON type is an error of encoding/json (POST, PUT, JSON and merge
# patches) or of the unstructured converter (strategic merge patch, apply), not
# a 422 of the schema. The schema marks a struct with x-kubesim-go-struct and
# the values whose Go type is not the JSON one with x-kubesim-go-type
# (MicroTime, []uint8).

RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_DIGITS = "0123456789"
_B64 = {c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


class GoDecodeError(Exception):
    pass


def _go_atoi(s):
    """time's atoi: an optional sign, then digits only; None if it is not that."""
    neg = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    if any(c not in _DIGITS for c in s):
        return None
    x = int(s) if s else 0
    return -x if neg else x


def _getnum(s, fixed):
    if not s or s[0] not in _DIGITS:
        return None, s
    if len(s) < 2 or s[1] not in _DIGITS:
        if fixed:
            return None, s
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def parse_micro_time(value):
    """time.Parse(RFC3339Micro, value) with Go's error messages: the time as
    the real server stores it (UTC, six fractional digits; None for the zero
    time, which metav1.MicroTime writes as null), or GoDecodeError."""
    import datetime
    from .util import go_quote

    def cannot(layout_elem, value_elem):
        return GoDecodeError("parsing time %s as %s: cannot parse %s as %s" % (
            go_quote(value), go_quote(RFC3339_MICRO), go_quote(value_elem), go_quote(layout_elem)))

    def out_of_range(what):
        return GoDecodeError("parsing time %s: %s out of range" % (go_quote(value), what))

    v = value
    if len(v) < 4 or v[0] not in _DIGITS or _go_atoi(v[:4]) is None:
        raise cannot("2006", v)
    year, v = int(v[:4]), v[4:]
    fields = []
    # (separator before, layout element, fixed width, range name, bounds); the
    # day is checked against its month at the end
    for sep, elem, fixed, rng, lo, hi in (("-", "01", True, "month", 1, 12), ("-", "02", True, None, 0, 99),
                                           ("T", "15", False, "hour", 0, 23), (":", "04", True, "minute", 0, 59),
                                           (":", "05", True, "second", 0, 59)):
        if v[:1] != sep:
            raise cannot(sep, v)
        v = v[1:]
        n, rest = _getnum(v, fixed)
        if n is None:
            raise cannot(elem, v)
        if not lo <= n <= hi:
            raise out_of_range(rng)
        fields.append(n)
        v = rest
    if len(v) < 7 or v[0] not in ".,":
        raise cannot(".000000", v)
    micro = _go_atoi(v[1:7])
    if micro is None:
        raise cannot(".000000", v)
    if micro < 0:
        raise out_of_range("fractional second")
    v = v[7:]
    offset = 0
    if v[:1] == "Z":
        v = v[1:]
    else:
        hold = v
        if len(v) < 6 or v[3] != ":" or v[0] not in "+-":
            raise cannot("Z07:00", hold)
        hh, _ = _getnum(v[1:3], True)
        mm, _ = _getnum(v[4:6], True)
        if hh is None or mm is None:
            raise cannot("Z07:00", hold)
        offset = (hh * 60 + mm) * 60 * (-1 if v[0] == "-" else 1)
        v = v[6:]
    if v:
        raise GoDecodeError("parsing time %s: extra text: %s" % (go_quote(value), go_quote(v)))
    month, day, hour, minute, sec = fields
    if month == 2:
        days = 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    else:
        days = 30 if month in (4, 6, 9, 11) else 31
    if not 1 <= day <= days:
        raise GoDecodeError("parsing time %s: day out of range" % go_quote(value))
    try:
        t = datetime.datetime(year, month, day, hour, minute, sec, micro) - datetime.timedelta(seconds=offset)
    except (ValueError, OverflowError):
        return value            # year 0 or beyond 9999: Python's datetime has none; kept as given
    if t == datetime.datetime(1, 1, 1):
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%06dZ" % t.microsecond


def go_base64_decode(text):
    """encoding/base64 StdEncoding.Decode: the bytes, or GoDecodeError
    'illegal base64 data at input byte N' at the offset Go reports."""
    src = text.encode("utf-8")
    n, si, out = len(src), 0, bytearray()

    def bad(i):
        return GoDecodeError("illegal base64 data at input byte %d" % i)
    while si < n:
        dbuf, j, dlen, trailing = [0, 0, 0, 0], 0, 4, None
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise bad(si - j)
            c = src[si]
            si += 1
            if c in _B64:
                dbuf[j] = _B64[c]
                j += 1
                continue
            if c in (10, 13):
                continue
            if c != 61 or j < 2:           # not '=', or padding too early
                raise bad(si - 1)
            if j == 2:                      # "==" expected
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    raise bad(n)
                if src[si] != 61:
                    raise bad(si - 1)
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            if si < n:
                trailing = si
            dlen = j
            break
        val = dbuf[0] << 18 | dbuf[1] << 12 | dbuf[2] << 6 | dbuf[3]
        out += bytes([val >> 16 & 255, val >> 8 & 255, val & 255])[:dlen - 1]
        if trailing is not None:
            raise bad(trailing)
    return bytes(out)


def _go_type(s, version):
    t = s.get("x-kubesim-go-type")
    if t == "MicroTime":
        return "string"             # MicroTime.UnmarshalJSON decodes a string first
    if t:
        return t
    if s.get("x-kubesim-go-struct"):
        return "%s.%s" % (version, s["x-kubesim-go-struct"])
    if isinstance(s.get("additionalProperties"), dict):
        return "map[string]" + _go_type(s["additionalProperties"], version)
    typ = s.get("type")
    if typ == "integer":
        return s.get("format") or "int64"
    return {"string": "string", "boolean": "bool", "number": "float64"}.get(typ, "interface {}")


def _json_kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(v), "null")


def _reflect_kind(v):
    """The reflect.Kind of a decoded unstructured value."""
    if isinstance(v, bool):
        return "bool"
    return {int: "int64", float: "float64", str: "string", dict: "map", list: "slice"}.get(type(v), "invalid")


def go_decode(obj, s, version, unstructured=False):
    """Decode obj (a dict, not changed) the way the real server decodes a
    built-in kind whose schema s names its Go types. Returns the object as
    stored (MicroTimes in UTC, base64 re-encoded, null map values as "") or
    raises GoDecodeError with the message the real server quotes.

    unstructured=False is encoding/json (the first type error is kept and
    decoding goes on; a MicroTime's own error ends it at once);
    unstructured=True is runtime.DefaultUnstructuredConverter (the first
    error ends it, with the converter's wording)."""
    if not s.get("x-kubesim-go-struct") or not isinstance(obj, dict):
        return obj
    saved = []

    def type_error(value, gotype, struct, fields):
        return GoDecodeError("json: cannot unmarshal %s into Go struct field %s.%s of type %s"
                             % (value, struct, ".".join(fields), gotype))

    def fail(err):
        if unstructured:
            raise err
        if not saved:
            saved.append(err)

    def walk(v, cs, struct, fields):
        """The decoded value of v for schema cs (v is not None)."""
        gotype = _go_type(cs, version)
        if cs.get("x-kubesim-go-struct"):
            if not isinstance(v, dict):
                if unstructured:
                    raise GoDecodeError("cannot restore struct from: %s" % _reflect_kind(v))
                fail(type_error(_json_kind(v), gotype, struct, fields))
                return v
            out = {}
            for k, x in v.items():
                ps = (cs.get("properties") or {}).get(k)
                if ps is None or x is None and k == "metadata":
                    out[k] = x      # unknown fields are pruned later
                elif x is not None:
                    out[k] = walk(x, ps, cs["x-kubesim-go-struct"], fields + [k])
                # a null is a nil pointer (or a zero struct): absent. A null
                # left after this is a zero MicroTime, which prune() keeps
            return out
        ap = cs.get("additionalProperties")
        if isinstance(ap, dict):
            if not isinstance(v, dict):
                if unstructured:
                    raise GoDecodeError("cannot restore map from %s" % _reflect_kind(v))
                fail(type_error(_json_kind(v), gotype, struct, fields))
                return v
            # a map's null value is its element's zero value; map keys are not
            # part of the field path Go reports
            return {k: "" if x is None else walk(x, ap, struct, fields) for k, x in v.items()}
        special = cs.get("x-kubesim-go-type")
        if special == "MicroTime":
            if not isinstance(v, str):
                # its UnmarshalJSON returns json.Unmarshal's error: decoding stops
                if unstructured:
                    raise GoDecodeError("json: cannot unmarshal %s into Go value of type string" % _json_kind(v))
                raise type_error(_json_kind(v), "string", struct, fields)
            return parse_micro_time(v)
        if special == "[]uint8":
            if not isinstance(v, str):
                if unstructured:
                    raise GoDecodeError("cannot restore slice from %s" % _reflect_kind(v))
                fail(type_error(_json_kind(v), gotype, struct, fields))
                return v
            try:
                return base64.b64encode(go_base64_decode(v)).decode()
            except GoDecodeError as e:
                fail(GoDecodeError("error decoding from json: %s" % e) if unstructured else e)
                return v
        typ = cs.get("type")
        if typ == "string":
            if isinstance(v, str):
                return v
            if unstructured:
                fail(GoDecodeError("cannot convert int64 to string" if _reflect_kind(v) == "int64"
                                   else "unrecognized type: string"))
            else:
                fail(type_error(_json_kind(v), gotype, struct, fields))
            return v
        if typ == "boolean":
            if not isinstance(v, bool):
                fail(GoDecodeError("unrecognized type: bool") if unstructured
                     else type_error(_json_kind(v), gotype, struct, fields))
            return v
        if typ == "integer":
            bits = 32 if gotype == "int32" else 64
            if unstructured:
                if isinstance(v, float) and v.is_integer():
                    return int(v)
                if isinstance(v, float):
                    fail(GoDecodeError("cannot convert float64 to %s" % gotype))
                elif isinstance(v, bool) or not isinstance(v, int):
                    fail(GoDecodeError("unrecognized type: %s" % gotype))
                return v
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                fail(type_error(_json_kind(v), gotype, struct, fields))
            elif isinstance(v, float) or not -(1 << bits - 1) <= v < 1 << bits - 1:
                fail(type_error("number %s" % v, gotype, struct, fields))
            return v
        return v

    out = walk(obj, s, s["x-kubesim-go-struct"], [])
    if saved:
        raise saved[0]
    return out


def check_object(obj, istio="head"):
    """schemacheck: list of (path, problem) for a rendered object (no metadata server fields needed)."""
    av, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(av, str) or not isinstance(kind, str):
        return [("", "missing apiVersion or kind")]
    rt, version = schema_for(av, kind, istio)
    if rt is None:
        return [("", "unknown kind %s %s for istio %s" % (av, kind, istio))]
    s = rt.schemas[version]
    problems = []
    unknown = []
    prune(obj, s, "", unknown)
    for u in unknown:
        problems.append((u, "unknown field"))
    errs = []
    validate(obj, s, "", errs)
    for e in errs:
        if e.ctype == "FieldValueRequired":
            problems.append((e.field, "missing required field"))
        elif e.ctype == "FieldValueNotSupported":
            problems.append((e.field, "enum violation: " + e.body))
        elif "must be of type" in e.body:
            problems.append((e.field, "wrong type: " + e.body.split(": ", 2)[-1]))
        else:
            problems.append((e.field, e.body))
    md = obj.get("metadata")
    if not isinstance(md, dict) or not md.get("name"):
        problems.append(("metadata.name", "missing required field"))
    return problems
