"""managedFields and server-side apply (kube-wire.md §7), after the real
fieldmanager (k8s.io/apimachinery/pkg/util/managedfields/internal) and
structured-merge-diff's Updater.Apply/Update.

Managers are kept as a dict id -> Entry, where id is the manager identity:
(manager, 'Apply', '', subresource) for appliers (apiVersion excluded) and
(manager, 'Update', apiVersion, subresource) for updaters.

apply() and update() take objects without managedFields and return the new
object (or the live one on a no-op) plus the new managers.  Conflicts raise
an ApiError with the exact 409 body of §7.5.
"""
import json

from . import fieldset as fs
from .util import ApiError, go_quote, now_rfc3339
from .schema import path_string

STRIP = {("f:apiVersion",), ("f:kind",), ("f:metadata",), ("f:metadata", "f:name"),
         ("f:metadata", "f:namespace"), ("f:metadata", "f:creationTimestamp"),
         ("f:metadata", "f:selfLink"), ("f:metadata", "f:uid"), ("f:metadata", "f:clusterName"),
         ("f:metadata", "f:generation"), ("f:metadata", "f:managedFields"),
         ("f:metadata", "f:resourceVersion")}
MAX_UPDATE_MANAGERS = 10


class Entry(object):
    __slots__ = ("manager", "operation", "api_version", "time", "subresource", "paths")

    def __init__(self, manager, operation, api_version, time, subresource, paths):
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.time = time
        self.subresource = subresource
        self.paths = paths

    def ident(self):
        if self.operation == "Apply":
            return (self.manager, "Apply", "", self.subresource)
        return (self.manager, "Update", self.api_version, self.subresource)

    def printed(self):
        s = go_quote(self.manager)
        if self.subresource:
            s += " with subresource %s" % go_quote(self.subresource)
        if self.operation == "Update":
            s += " using %s" % self.api_version
        return s

    def to_api(self):
        d = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            d["time"] = self.time
        d["fieldsType"] = "FieldsV1"
        d["fieldsV1"] = fs.encode(self.paths)
        if self.subresource:
            d["subresource"] = self.subresource
        return d


def decode_managed(obj):
    out = {}
    for d in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(d, dict):
            continue
        e = Entry(d.get("manager", ""), d.get("operation", "Update"), d.get("apiVersion", ""),
                  d.get("time"), d.get("subresource", ""), fs.decode(d.get("fieldsV1")))
        out[e.ident()] = e
    return out


def encode_managed(managers):
    entries = [e for e in managers.values() if e.paths]
    entries.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    return [e.to_api() for e in entries]


def strip_object(obj):
    """A copy without managedFields (the field manager never sees them)."""
    if obj is None:
        return None
    md = obj.get("metadata")
    if isinstance(md, dict) and "managedFields" in md:
        obj = dict(obj)
        md = dict(md)
        del md["managedFields"]
        obj["metadata"] = md
    return obj


def _ignored(paths, ignored_prefixes):
    if not ignored_prefixes:
        return paths
    return {p for p in paths if not any(p[:len(ig)] == ig for ig in ignored_prefixes)}


def _strip(managers):
    for k in list(managers):
        e = managers[k]
        e.paths = e.paths - STRIP
        if not e.paths:
            del managers[k]


def _cap(managers):
    upd = sorted((e for e in managers.values() if e.operation == "Update"),
                 key=lambda e: (e.time or "", e.manager))
    if len(upd) <= MAX_UPDATE_MANAGERS:
        return
    extra = upd[:len(upd) - MAX_UPDATE_MANAGERS + 1]
    merged = set()
    for e in extra:
        merged |= e.paths
        del managers[e.ident()]
    anc = Entry("ancient-changes", "Update", extra[-1].api_version, extra[-1].time, "", merged)
    managers[anc.ident()] = anc


def _update_managers(live, new, schema, managers, skip_ident, force, ignored):
    """structuredmerge.Updater.update: conflicts / ownership moves for a change live -> new."""
    c = fs.compare(live if live is not None else {}, new, schema)
    changed = _ignored(c.modified | c.added, ignored)
    conflicts = {}
    for ident, e in managers.items():
        if ident == skip_ident:
            continue
        cs = e.paths & changed
        if cs:
            conflicts[ident] = cs
    if conflicts and not force:
        raise conflict_error(managers, conflicts)
    for ident, cs in conflicts.items():
        managers[ident].paths = managers[ident].paths - cs
    if c.removed:
        for ident, e in managers.items():
            if ident != skip_ident:
                e.paths = e.paths - c.removed
    for ident in list(managers):
        if ident != skip_ident and not managers[ident].paths:
            del managers[ident]
    return c


def conflict_error(managers, conflicts):
    items = []
    for ident in sorted(conflicts, key=lambda i: json.dumps(i)):
        e = managers[ident]
        for p in fs.sort_paths(conflicts[ident]):
            items.append((e.printed(), path_string(p)))
    causes = [{"reason": "FieldManagerConflict", "message": "conflict with %s" % m, "field": p}
              for m, p in items]
    if len(items) == 1:
        msg = "Apply failed with 1 conflict: conflict with %s: %s" % items[0]
    else:
        lines = []
        last = None
        for m, p in items:
            if m != last:
                lines.append("conflicts with %s:" % m)
                last = m
            lines.append("- %s" % p)
        msg = "Apply failed with %d conflicts: %s" % (len(items), "\n".join(lines))
    return ApiError(409, "Conflict", msg, {"causes": causes})


def apply(live, config, schema, managers, manager, api_version, force, subresource="", ignored=()):
    """Server-side apply.  live/config without managedFields; returns (new_obj, managers, changed)."""
    now = now_rfc3339()
    managers = {k: Entry(e.manager, e.operation, e.api_version, e.time, e.subresource, set(e.paths))
                for k, e in managers.items()}
    if live is not None and not managers:
        # skipnonapplied: attribute everything already there to before-first-apply.
        paths = _ignored(fs.to_fieldset(live, schema), ignored) - STRIP
        if paths:
            e = Entry("before-first-apply", "Update", api_version, now, subresource, paths)
            managers[e.ident()] = e
    base = live if live is not None else {}
    merged = fs.merge(base, config, schema)
    ident = (manager, "Apply", "", subresource)
    last = managers.get(ident)
    new_paths = _ignored(fs.to_fieldset(config, schema), ignored)
    managers[ident] = Entry(manager, "Apply", api_version, last.time if last else None, subresource, new_paths)
    if last is not None and last.paths:
        merged = _prune(merged, schema, managers, last.paths)
    _update_managers(live, merged, schema, managers, ident, force, ignored)
    changed = (live is None) or merged != live
    e = managers[ident]
    # managedFieldsUpdater.Apply: the applier's time moves only when the
    # object changes; a manager that joins without changing anything has no
    # time (and sorts first)
    if changed:
        e.time = now
    _strip(managers)
    _cap(managers)
    return (merged if changed else live), managers, changed


def _prune(merged, schema, managers, last_paths):
    en = lambda p: fs.ensure_named(p, schema)
    last = en(last_paths)
    pruned = fs.remove_items(merged, last, schema)
    managed = set()
    for e in managers.values():
        managed |= e.paths
    merged_set = en(fs.to_fieldset(merged, schema))
    pruned_set = en(fs.to_fieldset(pruned, schema))
    pruned = fs.remove_items(merged, merged_set - (pruned_set | en(managed)), schema)
    pruned_set = en(fs.to_fieldset(pruned, schema))
    return fs.remove_items(merged, (merged_set - pruned_set) & last, schema)


def update(live, new, schema, managers, manager, api_version, subresource="", ignored=()):
    """A non-apply write (POST/PUT/PATCH): returns the new managers."""
    managers = {k: Entry(e.manager, e.operation, e.api_version, e.time, e.subresource, set(e.paths))
                for k, e in managers.items()}
    c = _update_managers(live, new, schema, managers, None, True, ignored)
    cur = _ignored(c.modified | c.added, ignored) - STRIP
    if cur:
        ident = (manager, "Update", api_version, subresource)
        prev = managers.get(ident)
        paths = cur | (prev.paths if prev else set())
        managers[ident] = Entry(manager, "Update", api_version, now_rfc3339(), subresource, paths)
    _strip(managers)
    _cap(managers)
    return managers
