"""REST semantics of one cluster: get/list/create/update/patch/delete on the
store, with admission (namespace lifecycle), strategies (status reset,
generation, finalizers), schema pruning/validation and managedFields.

HTTP-agnostic: server.py parses requests and calls these methods; every
failure is an util.ApiError.  Writes hold the store lock from read to commit.
"""
import base64
import copy
import ipaddress
import json
import random
import re
import string
import threading
import time

from . import ssa
from . import schema as sch
from . import jsonpatch
from .store import Store, matches, parse_label_selector, parse_field_selector, encode_continue, decode_continue
from .util import (ApiError, bad_request, not_found, already_exists, rv_conflict, invalid, fe_required,
                   fe_invalid, fe_forbidden, validate_name, now_rfc3339, new_uid, plain_internal, gone,
                   CONTINUE_INCONSISTENT, forbidden_msg, unsupported_media_type, conflict_msg,
                   dumpb, FieldError, go_quote, go_json_error)

try:
    import yaml as _yaml     # optional: only for YAML (non-JSON) apply bodies
except ImportError:          # pragma: no cover
    _yaml = None

STATUS_IGNORED = [("f:status",)]
SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
               "generation", "resourceVersion", "selfLink")
APPLY_TYPES = ("application/apply-patch+yaml", "application/apply-patch+cbor")
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


# built-in kinds of kube-apiserver a body may name (for the conversion error)
BUILTIN_KINDS = {"v1": ("Namespace", "Service", "ConfigMap", "Secret", "Pod", "ServiceAccount", "Endpoints"),
                 "apps/v1": ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"),
                 "coordination.k8s.io/v1": ("Lease",)}
CEL_BLOCKING = ("FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany",
                "FieldValueTypeInvalid")


class Options(object):
    def __init__(self, manager="", dry_run=False, field_validation="", force=None):
        self.manager = manager
        self.dry_run = dry_run
        self.field_validation = field_validation
        self.force = force


def user_agent_manager(ua):
    m = (ua or "").split("/", 1)[0]
    m = "".join(c if c.isprintable() else "?" for c in m)[:128]
    return m or "unknown"      # a request without a User-Agent (the real server says "unknown")


def summarize_data(data, max_length=30):
    """handlers.summarizeData: the start of a body that could not be decoded."""
    if not data:
        return "<empty>"
    if data[:1] == b"{":
        return data[:max_length].decode("utf-8", "replace") + (" ..." if len(data) > max_length else "")
    return data[:max_length].hex() + (" ..." if len(data) > max_length else "")


def parse_body_json(raw, kind=None):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        msg = go_json_error(raw) or str(e)
        if kind:
            raise bad_request("the object provided is unrecognized (must be of type %s): couldn't get "
                              "version/kind; json parse error: %s (%s)" % (kind, msg, summarize_data(raw)))
        raise bad_request("the object provided is unrecognized: couldn't get version/kind; "
                          "json parse error: %s" % msg)


def parse_apply_body(raw):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        pass
    if _yaml is None:
        raise bad_request("error decoding YAML: non-JSON apply bodies need python3-yaml")
    try:
        return _yaml.safe_load(raw)
    except Exception as e:
        raise bad_request("error decoding YAML: %s" % e)


class Cluster(object):
    def __init__(self, name, registry, history=10000):
        self.name = name
        self.registry = registry
        self.store = Store(registry, history)
        self.by_gvr = {}
        for rt in registry:
            for v in rt.versions:
                self.by_gvr[(rt.group, v, rt.plural)] = rt
        self.ns_rt = self.rt("", "namespaces")
        self._ip = 10 << 24 | 96 << 16 | 0 << 8 | 10
        self.ns_lock = threading.Lock()

    def rt(self, group, plural):
        for r in self.registry:
            if r.group == group and r.plural == plural:
                return r
        return None

    def lookup(self, group, version, plural):
        return self.by_gvr.get((group, version, plural))

    # ------------------------------------------------------------------
    # reads

    def get(self, rt, ns, name):
        rec = self.store.get(rt, ns, name)
        if rec is None:
            raise not_found(rt.plural, rt.group, name)
        return rec

    def namespace_exists(self, ns):
        return self.store.get(self.ns_rt, "", ns) is not None

    def list(self, rt, version, ns, label_sel="", field_sel="", limit=0, cont=""):
        """(rv, [Rec], continue_token, remaining)."""
        lp = parse_label_selector(label_sel)
        fp = parse_field_selector(field_sel, rt)
        start = ""
        if cont:
            crv, start = decode_continue(cont)
            if crv == -1:
                # the token of an expired continue: go on at the present, inconsistently
                rv, recs = self.store.snapshot(rt, ns)
            else:
                if crv < self.store.compacted:
                    # etcd3 handleCompactedErrorForPaging: the Status carries a
                    # token (resourceVersion -1) that continues at the present
                    e = gone(CONTINUE_INCONSISTENT)
                    e.list_meta = {"continue": encode_continue(-1, start)}
                    raise e
                snap = self.store.recall_snapshot(rt, ns, crv)
                if snap is None:
                    _, snap = self.store.snapshot(rt, ns)
                rv, recs = crv, snap
        else:
            rv, recs = self.store.snapshot(rt, ns)
        if start:
            recs = [r for r in recs if self._keystr(rt, r, ns) > start]
        out = []
        token = ""
        remaining = None
        for i, r in enumerate(recs):
            if (lp or fp) and not matches(r.obj, lp, fp):
                continue
            if limit and len(out) >= limit:
                # the first page is cut from the watch cache, whose key is
                # relative to the resource prefix ("/name"); later pages from
                # etcd, relative to the collection ("name")
                token = encode_continue(rv, ("" if cont else "/") + self._keystr(rt, out[-1], ns))
                if not (lp or fp):
                    remaining = len(recs) - i
                break
            out.append(r)
        if token and not cont:
            self.store.remember_snapshot(rt, ns, rv, recs)
        return rv, out, token, remaining

    @staticmethod
    def _keystr(rt, rec, ns):
        md = rec.obj["metadata"]
        if rt.namespaced and not ns:
            return "%s/%s" % (md.get("namespace", ""), md["name"])
        return md["name"]

    # ------------------------------------------------------------------
    # helpers for writes

    def _admit_namespace(self, rt, ns, name):
        if not rt.namespaced:
            return
        rec = self.store.get(self.ns_rt, "", ns)
        if rec is None:
            raise not_found("namespaces", "", ns)
        if rec.obj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden",
                           "%s %s is forbidden: unable to create new content in namespace %s because it is "
                           "being terminated" % (rt.qualified, json.dumps(name), ns),
                           dict(({"name": name, "group": rt.group, "kind": rt.plural} if rt.group else
                                 {"name": name, "kind": rt.plural}),
                                causes=[{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                         "message": "namespace %s is being terminated" % ns}]))

    def _decode_for(self, rt, version, obj, opts, verb):
        """Pruning with fieldValidation.  Returns (obj, warnings)."""
        unknown = []
        obj = sch.prune(obj, rt.schemas[version], "", unknown)
        warnings = []
        if unknown:
            msgs = ['unknown field "%s"' % u for u in sorted(unknown)]
            fv = opts.field_validation or "Warn"
            if fv == "Strict":
                err = "strict decoding error: " + ", ".join(msgs)
                if verb == "patch":
                    raise invalid_patch(obj, err)
                raise bad_request('%s in version "%s" cannot be handled as a %s: %s'
                                  % (rt.kind, version, rt.kind, err))
            if fv == "Warn":
                warnings = msgs
        return obj, warnings

    @staticmethod
    def _check_kind(rt, obj):
        """A body of another kind: a built-in's decoder refuses it (400); a CRD's
        validation says the kind is invalid (422, named after the body's kind)."""
        kind = obj.get("kind")
        if not kind or kind == rt.kind:
            return
        if rt.builtin:
            av = obj.get("apiVersion") or ""
            version = av.split("/")[-1]
            if kind in BUILTIN_KINDS.get(av, ()):
                # the body decodes as its own kind, which does not convert
                raise bad_request('%s in version "%s" cannot be handled as a %s: converting (%s.%s) to (%s.%s): '
                                  'unknown conversion' % (kind, version, rt.kind, version, kind,
                                                          rt.group.split(".")[0] or "core", rt.kind))
            raise bad_request("the object provided is unrecognized (must be of type %s): kind %s" % (rt.kind, kind))
        md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        raise invalid(kind, rt.group, md.get("name", ""), [fe_invalid("kind", kind, "must be %s" % rt.kind)])

    def _validate(self, rt, version, obj, name, update_errs=()):
        errs = list(update_errs)
        if name is not None:
            errs.extend(validate_name(name, rt.name_rule()))
        md = obj.get("metadata") or {}
        if rt.namespaced and md.get("namespace"):
            pass
        sch.validate(obj, rt.schemas[version], "", errs)
        errs.extend(self._builtin_validate(rt, obj))
        if rt.cel and any(e.ctype in CEL_BLOCKING for e in errs):
            # strategy.go hasBlockingErr: the CRD's CEL rules are not run
            errs.append(FieldError("FieldValueInvalid", "<nil>", 'Invalid value: "null": some validation rules '
                                   'were not checked because the object was invalid; correct the existing '
                                   'errors to complete validation'))
        if errs:
            raise invalid(rt.kind, rt.group, name or md.get("name", ""), errs)

    def _builtin_validate(self, rt, obj):
        errs = []
        if not rt.builtin:
            return errs
        spec = obj.get("spec") or {}
        if rt.kind == "Service":
            if spec.get("type") != "ExternalName" and not spec.get("ports"):
                errs.append(fe_required("spec.ports"))
        if rt.kind == "Lease":
            # ValidateLeaseSpec (strategy and preferredHolder are dropped before it)
            d, t = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
            if d is not None and d <= 0:
                errs.append(fe_invalid("spec.leaseDurationSeconds", d, "must be greater than 0"))
            if t is not None and t < 0:
                errs.append(fe_invalid("spec.leaseTransitions", t, "must be greater than or equal to 0"))
        if rt.kind == "ConfigMap":
            errs.extend(configmap_errors(obj))
        if rt.kind == "Deployment":
            tmpl = spec.get("template") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            if sel and any(labels.get(k) != v for k, v in sel.items()):
                errs.append(fe_invalid("spec.template.metadata.labels", labels,
                                       "`selector` does not match template `labels`"))
            for i, c in enumerate(((tmpl.get("spec") or {}).get("containers")) or []):
                if isinstance(c, dict) and not c.get("image"):
                    errs.append(fe_required("spec.template.spec.containers[%d].image" % i))
        return errs

    @staticmethod
    def _builtin_validate_update(rt, old, new):
        """ValidateConfigMapUpdate: an immutable ConfigMap keeps its data. A
        map present but empty is not an absent one (reflect.DeepEqual), so
        this looks at the body before the empty maps are dropped."""
        if not (rt.builtin and rt.kind == "ConfigMap" and old.get("immutable") is True):
            return []
        errs = []
        for f in ("immutable", "data", "binaryData"):
            if new.get(f) != old.get(f):
                errs.append(fe_forbidden(f, "field is immutable when `immutable` is set"))
        return errs

    @staticmethod
    def _drop_disabled_fields(rt, obj):
        """Lease's dropDisabledFields: without the CoordinatedLeaderElection
        gate (off in 1.32) strategy and preferredHolder are dropped by the
        strategy, after the field manager recorded them."""
        if rt.builtin and rt.kind == "Lease" and isinstance(obj.get("spec"), dict):
            obj["spec"].pop("strategy", None)
            obj["spec"].pop("preferredHolder", None)

    @staticmethod
    def _decode_builtin(rt, version, obj):
        """A built-in kind's body decoded into its Go struct: a wrong JSON type,
        a bad MicroTime or base64 is the decoder's 400."""
        try:
            return sch.go_decode(obj, rt.schemas[version], version)
        except sch.GoDecodeError as e:
            raise bad_request('%s in version "%s" cannot be handled as a %s: %s' % (rt.kind, version, rt.kind, e))

    def _builtin_defaults(self, rt, obj, old):
        if not rt.builtin:
            return
        if rt.kind == "Service":
            spec = obj.setdefault("spec", {})
            oldspec = (old or {}).get("spec") or {}
            if spec.get("type") != "ExternalName":
                if not spec.get("clusterIP"):
                    spec["clusterIP"] = oldspec.get("clusterIP") or self._alloc_ip()
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
                spec.setdefault("internalTrafficPolicy", "Cluster")
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and "targetPort" not in p and "port" in p:
                    p["targetPort"] = p["port"]
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                spec.setdefault("externalTrafficPolicy", "Cluster")
                for p in spec.get("ports") or []:
                    if isinstance(p, dict) and "nodePort" not in p:
                        p["nodePort"] = 30000 + random.randint(0, 2767)
            obj.setdefault("status", {}).setdefault("loadBalancer", {})
        elif rt.kind == "ConfigMap":
            # omitempty: an empty map is not stored
            for f in ("data", "binaryData"):
                if obj.get(f) == {}:
                    del obj[f]
        elif rt.kind == "Namespace":
            md = obj.setdefault("metadata", {})
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            st = obj.setdefault("status", {})
            st["phase"] = "Terminating" if md.get("deletionTimestamp") else "Active"

    def _alloc_ip(self):
        self._ip += 1
        return str(ipaddress.IPv4Address(self._ip))

    def _finish(self, rt, version, obj, old, opts, manager, managers_before, subresource="",
                applied_managers=None):
        """Common tail of create/update: defaults, system metadata, generation, managedFields."""
        md = obj.setdefault("metadata", {})
        if old is not None:
            omd = old["metadata"]
            for k in SYSTEM_META:
                if k in omd:
                    md[k] = omd[k]
                else:
                    md.pop(k, None)
        sch.default(obj, rt.schemas[version])
        self._builtin_defaults(rt, obj, old)
        return obj

    def _gen_bump(self, rt, old, new):
        if not rt.tracks_generation():
            return
        strip = lambda o: {k: v for k, v in o.items()
                           if k not in ("metadata", "apiVersion", "kind")
                           and not (k == "status")}
        if strip(old) != strip(new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1

    def _ignored(self, rt, version, subresource):
        if subresource == "status":
            return [("f:" + k,) for k in ("spec", "metadata", "apiVersion", "kind")
                    if k != "metadata"] + [("f:metadata",)]
        return STATUS_IGNORED if rt.status_sub.get(version) else []

    # ------------------------------------------------------------------
    # create

    def create(self, rt, version, ns, obj, opts, user_agent):
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized (must be of type %s)" % rt.kind)
        av = obj.get("apiVersion")
        if av and av != rt.api_version(version):
            raise bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                              % (av, rt.api_version(version)))
        self._check_kind(rt, obj)
        obj = self._decode_builtin(rt, version, obj)
        obj, warnings = self._decode_for(rt, version, obj, opts, "create")
        obj["apiVersion"] = rt.api_version(version)
        obj["kind"] = rt.kind
        md = obj.setdefault("metadata", {}) if isinstance(obj.get("metadata"), dict) else obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent "
                                  "on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + "".join(
                    random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            else:
                raise invalid(rt.kind, rt.group, "", [fe_required("metadata.name",
                                                                  "name or generateName is required")])
        manager = opts.manager or user_agent_manager(user_agent)
        with self.store.lock:
            return self._create_locked(rt, version, ns, obj, opts, manager) + (warnings,)

    def _create_locked(self, rt, version, ns, obj, opts, manager):
        """The store side of a create (POST, or a PUT that creates): (code, object)."""
        md = obj["metadata"]
        name = md["name"]
        self._admit_namespace(rt, ns, name)
        if self.store.get(rt, ns, name) is not None:
            raise already_exists(rt.plural, rt.group, name)
        if rt.status_sub.get(version) or rt.builtin:
            if rt.kind != "Namespace":
                obj.pop("status", None)
        md.pop("managedFields", None)
        for k in SYSTEM_META:
            md.pop(k, None)
        self._finish(rt, version, obj, None, opts, manager, {})
        self._validate(rt, version, obj, name)
        md["uid"] = new_uid()
        md["creationTimestamp"] = now_rfc3339()
        if rt.tracks_generation():
            md["generation"] = 1
        ignored = self._ignored(rt, version, "")
        if rt.builtin and rt.kind == "Namespace":
            # set by the strategy's PrepareForCreate, after the field
            # manager has seen the request: nobody owns it
            ignored = ignored + [("f:spec", "f:finalizers")]
        # the field manager compares a create with the kind's zero object, in
        # which a built-in kind's value structs are there, empty: a Lease's
        # "spec": {} is nobody's
        zero = {k: {} for k, ps in rt.schemas[version]["properties"].items()
                if k != "metadata" and sch.is_value_struct(ps)} if rt.builtin else None
        managers = ssa.update(zero, ssa.strip_object(obj), rt.schemas[version], {}, manager,
                              rt.api_version(version), "", ignored)
        md["managedFields"] = ssa.encode_managed(managers)
        if not md["managedFields"]:
            del md["managedFields"]
        self._drop_disabled_fields(rt, obj)
        if opts.dry_run:
            return 201, obj
        rec = self.store.commit(rt, "ADDED", obj)
        return 201, rec.versioned(rt, version)

    # ------------------------------------------------------------------
    # update (PUT) and the shared write path

    def update(self, rt, version, ns, name, obj, opts, user_agent, subresource=""):
        if not isinstance(obj, dict):
            raise bad_request("the object provided is unrecognized (must be of type %s)" % rt.kind)
        av = obj.get("apiVersion")
        if av and av != rt.api_version(version):
            raise bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                              % (av, rt.api_version(version)))
        self._check_kind(rt, obj)
        obj = self._decode_builtin(rt, version, obj)
        obj, warnings = self._decode_for(rt, version, obj, opts, "update")
        md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        obj["metadata"] = md
        if md.get("name") and md["name"] != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (md["name"], name))
        if rt.namespaced and md.get("namespace") and md["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on "
                              "the request")
        manager = opts.manager or user_agent_manager(user_agent)
        with self.store.lock:
            rec = self.store.get(rt, ns, name)
            if rec is None:
                if subresource or not rt.allow_create_on_update():
                    raise not_found(rt.plural, rt.group, name)
                # created as by a POST: a resourceVersion in the body is ignored
                obj["apiVersion"], obj["kind"] = rt.api_version(version), rt.kind
                md["name"] = name
                if rt.namespaced:
                    md["namespace"] = ns
                return self._create_locked(rt, version, ns, obj, opts, manager) + (warnings,)
            if not md.get("resourceVersion") and not rt.allow_unconditional_update():
                # the store checks this before it runs the strategy: the
                # error names the resource, the value is a uint64 (%#v)
                raise invalid(rt.plural, rt.group, name, [FieldError(
                    "FieldValueInvalid", "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update")])
            if md.get("resourceVersion") and md["resourceVersion"] != rec.obj["metadata"]["resourceVersion"]:
                raise rv_conflict(rt.plural, rt.group, name)
            return self._write(rt, version, ns, name, rec, obj, opts, manager, subresource, None) + (warnings,)

    def _write(self, rt, version, ns, name, rec, new, opts, manager, subresource, apply_managers):
        """Persist `new` over rec (update semantics).  apply_managers: managers from an apply."""
        old = rec.obj
        new = dict(new)
        new["apiVersion"] = rt.api_version(version)
        new["kind"] = rt.kind
        md = dict(new.get("metadata") or {})
        new["metadata"] = md
        md["name"] = name
        if rt.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        body_mf = md.pop("managedFields", None)
        # strategies: the main resource keeps the old status, /status keeps everything else
        if subresource == "status":
            base = copy.deepcopy(old)
            if "status" in new:
                base["status"] = new["status"]
            else:
                base.pop("status", None)
            new = base
            md = new["metadata"]
            md.pop("managedFields", None)
        elif rt.status_sub.get(version) and rt.kind != "Namespace":
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        update_errs = self._builtin_validate_update(rt, old, new)
        self._finish(rt, version, new, old, opts, manager, None)
        if old["metadata"].get("deletionTimestamp"):
            fin_old = set(old["metadata"].get("finalizers") or [])
            fin_new = md.get("finalizers") or []
            added = [f for f in fin_new if f not in fin_old]
            if added:
                # ValidateObjectMetaUpdate runs twice (the registry's
                # BeforeUpdate and the strategy): two causes, one message
                err = fe_forbidden("metadata.finalizers", "no new finalizers can be added if the object is being "
                                   "deleted, found new finalizers []string{%s}"
                                   % ", ".join(go_quote(f) for f in added))
                raise invalid(rt.kind, rt.group, name, [err, err])
        self._validate(rt, version, new, None, update_errs)
        self._gen_bump(rt, old, new)
        old_stripped = ssa.strip_object(old)
        if apply_managers is not None:
            managers = apply_managers
        else:
            base_managers = ssa.decode_managed(old)
            if isinstance(body_mf, list) and body_mf != old["metadata"].get("managedFields"):
                base_managers = ssa.decode_managed({"metadata": {"managedFields": body_mf}})
            managers = ssa.update(old_stripped, ssa.strip_object(new), rt.schemas[version], base_managers,
                                  manager, rt.api_version(version), subresource,
                                  self._ignored(rt, version, subresource))
        md["managedFields"] = ssa.encode_managed(managers)
        if not md["managedFields"]:
            md.pop("managedFields")
        self._drop_disabled_fields(rt, new)
        if old.get("metadata", {}).get("managedFields") is None and not md.get("managedFields"):
            md.pop("managedFields", None)
        # no-op: nothing is written and the resourceVersion stays
        cmp_old = dict(old)
        cmp_old["apiVersion"], cmp_old["kind"] = new["apiVersion"], new["kind"]
        if cmp_old == new:
            return 200, rec.versioned(rt, version)
        if opts.dry_run:
            return 200, new
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            if rt.kind == "Namespace":
                pass
            else:
                r = self.store.commit(rt, "DELETED", new)
                return 200, r.versioned(rt, version)
        r = self.store.commit(rt, "MODIFIED", new)
        return 200, r.versioned(rt, version)

    # ------------------------------------------------------------------
    # patch

    def patch(self, rt, version, ns, name, ctype, raw, opts, user_agent, subresource=""):
        ctype = (ctype or "").split(";")[0].strip()
        if ctype in APPLY_TYPES:
            return self.apply(rt, version, ns, name, raw, opts, subresource)
        if ctype not in PATCH_TYPES or (ctype == "application/strategic-merge-patch+json" and not rt.builtin):
            accepted = PATCH_TYPES if rt.builtin else [t for t in PATCH_TYPES if "strategic" not in t]
            raise unsupported_media_type(ctype, accepted)
        if opts.force is not None:
            raise invalid("PatchOptions", "meta.k8s.io", "", [fe_forbidden(
                "force", "may not be specified for non-apply patch")])
        try:
            patch = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request("error decoding patch: %s" % e)
        manager = opts.manager or user_agent_manager(user_agent)
        with self.store.lock:
            rec = self.store.get(rt, ns, name)
            if rec is None:
                raise not_found(rt.plural, rt.group, name)
            cur = rec.versioned(rt, version)
            try:
                if ctype == "application/json-patch+json":
                    patched = jsonpatch.json_patch(cur, patch)
                elif ctype == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise bad_request("json: cannot unmarshal into Go value of type map[string]interface {}")
                    patched = jsonpatch.merge_patch(cur, patch)
                else:
                    if not isinstance(patch, dict):
                        raise bad_request("json: cannot unmarshal into Go value of type map[string]interface {}")
                    patched = jsonpatch.strategic_merge_patch(cur, patch, rt.schemas[version])
            except jsonpatch.PatchError as e:
                raise invalid_patch_raw(raw, str(e))
            if not isinstance(patched, dict):
                raise invalid_patch_raw(raw, "patched object is not an object")
            # a built-in kind: JSON and merge patches decode the patched JSON
            # (the error quotes it), a strategic merge patch converts the
            # patched map (the error quotes the patch, as %+v)
            smp = ctype == "application/strategic-merge-patch+json"
            try:
                patched = sch.go_decode(patched, rt.schemas[version], version, unstructured=smp)
            except sch.GoDecodeError as e:
                if smp:
                    raise invalid_patch_raw(sch.go_v(patch).encode(), str(e))
                raise invalid_patch(patched, str(e))
            patched, warnings = self._decode_for(rt, version, patched, opts, "patch")
            pmd = patched.get("metadata") if isinstance(patched.get("metadata"), dict) else {}
            patched["metadata"] = pmd
            if pmd.get("name", name) != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                  % (pmd.get("name"), name))
            if pmd.get("resourceVersion") and pmd["resourceVersion"] != rec.obj["metadata"]["resourceVersion"]:
                raise rv_conflict(rt.plural, rt.group, name)
            code, out = self._write(rt, version, ns, name, rec, patched, opts, manager, subresource, None)
            return code, out, warnings

    def apply(self, rt, version, ns, name, raw, opts, subresource=""):
        if not opts.manager:
            raise invalid("PatchOptions", "meta.k8s.io", "", [fe_required("fieldManager",
                                                                          "is required for apply patch")])
        if len(opts.manager) > 128:
            raise invalid("PatchOptions", "meta.k8s.io", "", [fe_invalid(
                "fieldManager", opts.manager, "must be less than 128 characters")])
        cfg = parse_apply_body(raw)
        if not isinstance(cfg, dict):
            raise bad_request("error decoding YAML: the object is not a map")
        gv = rt.api_version(version)
        if cfg.get("apiVersion") != gv:
            raise bad_request("Incorrect version specified in apply patch. Specified patch version: %s, "
                              "expected: %s" % (cfg.get("apiVersion", ""), gv))
        if cfg.get("kind") != rt.kind:
            raise bad_request("Incorrect kind specified in apply patch. Specified patch kind: %s, expected: %s"
                              % (cfg.get("kind", ""), rt.kind))
        md = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
        if md.get("name") is not None and md.get("name") != name:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (md.get("name"), name))
        if rt.namespaced and md.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on "
                              "the request")
        if md.get("managedFields"):
            raise bad_request("metadata.managedFields must be nil")
        s = rt.schemas[version]
        with self.store.lock:
            rec = self.store.get(rt, ns, name)
            if rec is not None and md.get("resourceVersion") and \
                    md["resourceVersion"] != rec.obj["metadata"]["resourceVersion"]:
                raise rv_conflict(rt.plural, rt.group, name)
            errs = sch.typed_errors(cfg, s)
            # named after the patch object itself: its namespace is empty
            # unless the body sets one
            what = "(%s/%s; %s, Kind=%s)" % (md.get("namespace") or "", name, gv if rt.group else "/" + gv, rt.kind)
            if errs:
                txt = errs[0] if len(errs) == 1 else "errors:\n" + "\n".join("  " + e for e in errs)
                raise plain_internal("failed to create typed patch object %s: %s" % (what, txt))

            def to_go(merged):
                # a built-in kind: the merged object converted to its Go struct
                try:
                    return sch.go_decode(merged, s, version, unstructured=True)
                except sch.GoDecodeError as e:
                    raise plain_internal("failed to convert new object %s to proper version: unable to convert "
                                         "unstructured object to %s, Kind=%s: %s"
                                         % (what, gv if rt.group else "/" + gv, rt.kind, e))
            live = ssa.strip_object(rec.obj) if rec is not None else None
            if live is not None:
                live = dict(live)
                live["apiVersion"], live["kind"] = gv, rt.kind
            managers = ssa.decode_managed(rec.obj) if rec is not None else {}
            ignored = self._ignored(rt, version, subresource)
            if rec is None:
                if subresource:
                    raise not_found(rt.plural, rt.group, name)
                self._admit_namespace(rt, ns, name)
                cfg_c = dict(cfg)
                cmd = dict(md)
                if rt.namespaced:
                    cmd["namespace"] = ns
                cmd["name"] = name
                cfg_c["metadata"] = cmd
                merged, managers, _ = ssa.apply(None, cfg_c, s, {}, opts.manager, gv, bool(opts.force),
                                                subresource, ignored)
                obj = copy.deepcopy(to_go(merged))
                omd = obj.setdefault("metadata", {})
                for k in SYSTEM_META:
                    omd.pop(k, None)
                if rt.status_sub.get(version) and rt.kind != "Namespace":
                    obj.pop("status", None)
                obj, _ = self._decode_for(rt, version, obj, Options(field_validation="Ignore"), "apply")
                self._finish(rt, version, obj, None, opts, opts.manager, None)
                self._validate(rt, version, obj, name)
                omd = obj["metadata"]
                omd["uid"] = new_uid()
                omd["creationTimestamp"] = now_rfc3339()
                if rt.tracks_generation():
                    omd["generation"] = 1
                omd["managedFields"] = ssa.encode_managed(managers)
                self._drop_disabled_fields(rt, obj)
                if opts.dry_run:
                    return 201, obj, []
                r = self.store.commit(rt, "ADDED", obj)
                return 201, r.versioned(rt, version), []
            merged, managers, changed = ssa.apply(live, cfg, s, managers, opts.manager, gv,
                                                  bool(opts.force), subresource, ignored)
            merged, _ = self._decode_for(rt, version, copy.deepcopy(to_go(merged)),
                                         Options(field_validation="Ignore"), "apply")
            code, out = self._write(rt, version, ns, name, rec, merged, opts, opts.manager, subresource,
                                    managers)
            return code, out, []

    # ------------------------------------------------------------------
    # delete

    def delete(self, rt, version, ns, name, opts, preconditions=None):
        with self.store.lock:
            rec = self.store.get(rt, ns, name)
            if rec is None:
                raise not_found(rt.plural, rt.group, name)
            md = rec.obj["metadata"]
            pre = preconditions or {}
            # the early check of rest.BeforeDelete: the resource is named by its Kind
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise conflict_msg(rt.kind, rt.group, name,
                                   "the UID in the precondition (%s) does not match the UID in record (%s). "
                                   "The object might have been deleted and then recreated"
                                   % (pre["uid"], md.get("uid")))
            if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
                raise conflict_msg(rt.kind, rt.group, name,
                                   "the ResourceVersion in the precondition (%s) does not match the "
                                   "ResourceVersion in record (%s). The object might have been modified"
                                   % (pre["resourceVersion"], md.get("resourceVersion")))
            if rt.kind == "Namespace" and rt.builtin:
                return self._delete_namespace(rt, version, rec, opts)
            if md.get("finalizers"):
                if md.get("deletionTimestamp"):
                    return 200, rec.versioned(rt, version)
                obj = copy.deepcopy(rec.obj)
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                if rt.tracks_generation():
                    obj["metadata"]["generation"] = int(md.get("generation", 1)) + 1
                if opts.dry_run:
                    return 200, obj
                r = self.store.commit(rt, "MODIFIED", obj)
                return 200, r.versioned(rt, version)
            if opts.dry_run:
                return 200, self._delete_status(rt, rec)
            r = self.store.commit(rt, "DELETED", rec.obj)
            if rt.builtin and rt.kind == "Service":
                return 200, r.versioned(rt, version)
            return 200, self._delete_status(rt, rec)

    @staticmethod
    def _delete_status(rt, rec):
        det = {"name": rec.obj["metadata"]["name"]}
        if rt.group:
            det["group"] = rt.group
        det["kind"] = rt.plural
        det["uid"] = rec.obj["metadata"].get("uid", "")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": det}

    def _delete_namespace(self, rt, version, rec, opts):
        obj = copy.deepcopy(rec.obj)
        md = obj["metadata"]
        if md.get("deletionTimestamp"):
            return 200, rec.versioned(rt, version)
        md["deletionTimestamp"] = now_rfc3339()       # no grace period: a namespace is not deleted gracefully
        obj.setdefault("status", {})["phase"] = "Terminating"
        if opts.dry_run:
            return 200, obj
        r = self.store.commit(rt, "MODIFIED", obj)
        threading.Timer(0.05, self.reap_namespace, args=(md["name"],)).start()
        return 200, r.versioned(rt, version)

    def reap_namespace(self, ns):
        """The namespace controller: delete the content, then the namespace once it is empty."""
        with self.store.lock:
            nrec = self.store.get(self.ns_rt, "", ns)
            if nrec is None or not nrec.obj["metadata"].get("deletionTimestamp"):
                return
            left = 0
            for rt in self.registry:
                if not rt.namespaced:
                    continue
                _, recs = self.store.snapshot(rt, ns)
                for r in recs:
                    left += 1
                    try:
                        self.delete(rt, rt.versions[0], ns, r.obj["metadata"]["name"], Options())
                    except ApiError:
                        pass
            remaining = {}
            finalizers = {}
            for rt in self.registry:
                if not rt.namespaced:
                    continue
                recs = self.store.snapshot(rt, ns)[1]
                if recs:
                    remaining[rt.qualified] = len(recs)
                for r in recs:
                    for f in r.obj["metadata"].get("finalizers") or []:
                        finalizers[f] = finalizers.get(f, 0) + 1
            if not remaining:
                self.store.commit(self.ns_rt, "DELETED", nrec.obj)
                return
            conds = namespace_conditions(remaining, finalizers)
            old = nrec.obj.get("status", {}).get("conditions") or []
            if [(c["type"], c["status"], c["message"]) for c in old] != \
                    [(c["type"], c["status"], c["message"]) for c in conds]:
                obj = copy.deepcopy(nrec.obj)
                obj.setdefault("status", {})["conditions"] = conds
                self.store.commit(self.ns_rt, "MODIFIED", obj)
        threading.Timer(0.2, self.reap_namespace, args=(ns,)).start()

    # ------------------------------------------------------------------
    # internal writers (operator, bootstrap, /_sim/objects)

    def ensure_namespace(self, name, manager="kubesim"):
        """Create a namespace at start: the system ones as kube-apiserver
        creates them, --namespace ones as manager "kubesim"."""
        if self.namespace_exists(name):
            return
        self.create(self.ns_rt, "v1", "", {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": name}}, Options(manager=manager), manager)

    def put_raw(self, rt, version, obj):
        """Store an object bypassing admission, validation and managedFields (tests)."""
        with self.store.lock:
            obj = copy.deepcopy(obj)
            obj["apiVersion"] = rt.api_version(version)
            obj["kind"] = rt.kind
            md = obj.setdefault("metadata", {})
            ns = md.get("namespace", "") if rt.namespaced else ""
            old = self.store.get(rt, ns, md["name"])
            md.setdefault("uid", old.obj["metadata"]["uid"] if old else new_uid())
            md.setdefault("creationTimestamp", old.obj["metadata"]["creationTimestamp"] if old else now_rfc3339())
            if rt.tracks_generation():
                md.setdefault("generation", 1)
            rec = self.store.commit(rt, "MODIFIED" if old else "ADDED", obj)
            return rec.versioned(rt, version)


CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
CONFIGMAP_MAX_BYTES = 1024 * 1024       # core.MaxSecretSize


def config_key_errors(key):
    """validation.IsConfigMapKey."""
    errs = []
    if len(key) > 253:
        errs.append("must be no more than 253 characters")
    if not CONFIG_KEY.match(key):
        errs.append(CONFIG_KEY_MSG)
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def configmap_errors(obj):
    """ValidateConfigMap: the keys of data and binaryData (a key in both is an
    error of data only, in 1.32), and their total size."""
    errs = []
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    size = 0
    for k, v in data.items():
        errs.extend(fe_invalid("data[%s]" % k, k, m) for m in config_key_errors(k))
        if k in binary:
            errs.append(fe_invalid("data[%s]" % k, k, "duplicate of key present in binaryData"))
        size += len(v.encode())
    for k, v in binary.items():
        errs.extend(fe_invalid("binaryData[%s]" % k, k, m) for m in config_key_errors(k))
        size += len(base64.b64decode(v))
    if size > CONFIGMAP_MAX_BYTES:
        # field.TooLong on the empty path, which prints as "[]"
        errs.append(FieldError("FieldValueTooLong", "[]", "Too long: may not be more than %d bytes"
                               % CONFIGMAP_MAX_BYTES))
    return errs


def namespace_conditions(remaining, finalizers):
    """The status conditions the namespace controller (namespaced_resources_deleter.go)
    sets on a terminating namespace whose content is not gone yet."""
    now = now_rfc3339()

    def cond(t, st, reason, msg):
        return {"type": t, "status": st, "lastTransitionTime": now, "reason": reason, "message": msg}
    out = [cond("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
                "All resources successfully discovered"),
           cond("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
                "All legacy kube types successfully parsed"),
           cond("NamespaceDeletionContentFailure", "False", "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization"),
           cond("NamespaceContentRemaining", "True", "SomeResourcesRemain",
                "Some resources are remaining: " + ", ".join(
                    "%s has %d resource instances" % (k, remaining[k]) for k in sorted(remaining)))]
    if finalizers:
        out.append(cond("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                        "Some content in the namespace has finalizers remaining: " + ", ".join(
                            "%s in %d resource instances" % (k, finalizers[k]) for k in sorted(finalizers))))
    else:
        out.append(cond("NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
                        "All content-preserving finalizers finished"))
    return out


def invalid_patch(obj, err):
    from .util import FieldError, go_value
    body = "Invalid value: %s: %s" % (go_value(dumpb(obj).decode()), err)
    return ApiError(422, "Invalid", ' "" is invalid: patch: %s' % body,
                    {"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]})


def invalid_patch_raw(raw, err):
    from .util import go_value
    try:
        txt = raw.decode()
    except Exception:
        txt = ""
    body = "Invalid value: %s: %s" % (go_value(txt), err)
    return ApiError(422, "Invalid", ' "" is invalid: patch: %s' % body,
                    {"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]})
