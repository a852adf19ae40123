"""Per-cluster object store: resourceVersion counter, objects, watch history.

Invariants:
* one RLock per store guards everything; stored objects (Rec.obj) are never
  mutated after commit, so readers may serialise them outside the lock;
* resourceVersion is a per-cluster counter, bumped on every persisted write
  (never on no-ops); the event history keeps the last `history` events, and
  `compacted` is the oldest resourceVersion a watch or continue may start from;
* watchers get (type, Rec) tuples on their queue in commit order.
"""
import base64
import posixpath
import collections
import json
import queue
import re
import threading

from .util import dumpb, bad_request, ApiError, go_json_error


class Rec(object):
    __slots__ = ("obj", "rv", "ser")

    def __init__(self, obj, rv):
        self.obj = obj
        self.rv = rv
        self.ser = {}

    def json(self, rt, version, as_item=False):
        k = (version, as_item)
        b = self.ser.get(k)
        if b is None:
            o = dict(self.obj)
            if as_item and rt.builtin:
                o.pop("apiVersion", None)
                o.pop("kind", None)
            else:
                o["apiVersion"] = rt.api_version(version)
                o["kind"] = rt.kind
            b = dumpb(o)
            self.ser[k] = b
        return b

    def versioned(self, rt, version):
        o = dict(self.obj)
        o["apiVersion"] = rt.api_version(version)
        o["kind"] = rt.kind
        return o


class Watcher(object):
    def __init__(self, rt_key):
        self.rt_key = rt_key
        self.q = queue.Queue()
        self.closed = False


class Store(object):
    def __init__(self, registry, history=10000):
        self.lock = threading.RLock()
        self.rv = 1000
        self.types = {rt.key: rt for rt in registry}
        self.data = {rt.key: {} for rt in registry}
        self._sorted = {}
        self.events = collections.deque()
        self.history = history
        self.compacted = 1000
        self.watchers = set()
        self.listeners = []
        self.snapshots = collections.OrderedDict()

    # -- reads ------------------------------------------------------------
    def get(self, rt, ns, name):
        with self.lock:
            return self.data[rt.key].get((ns or "", name))

    def keys_sorted(self, rt):
        with self.lock:
            ks = self._sorted.get(rt.key)
            if ks is None:
                ks = sorted(self.data[rt.key])
                self._sorted[rt.key] = ks
            return ks

    def snapshot(self, rt, ns):
        """(rv, [Rec]) of a collection, sorted by (namespace, name)."""
        with self.lock:
            d = self.data[rt.key]
            ks = self.keys_sorted(rt)
            if ns:
                recs = [d[k] for k in ks if k[0] == ns]
            else:
                recs = [d[k] for k in ks]
            return self.rv, recs

    def remember_snapshot(self, rt, ns, rv, recs):
        with self.lock:
            self.snapshots[(rt.key, ns, rv)] = recs
            while len(self.snapshots) > 64:
                self.snapshots.popitem(last=False)

    def recall_snapshot(self, rt, ns, rv):
        with self.lock:
            return self.snapshots.get((rt.key, ns, rv))

    # -- writes -----------------------------------------------------------
    def commit(self, rt, etype, obj):
        """Persist obj (ADDED/MODIFIED) or remove it (DELETED); returns the Rec."""
        with self.lock:
            self.rv += 1
            md = dict(obj["metadata"])
            md["resourceVersion"] = str(self.rv)
            obj = dict(obj)
            obj["metadata"] = md
            rec = Rec(obj, self.rv)
            key = (md.get("namespace", "") if rt.namespaced else "", md["name"])
            d = self.data[rt.key]
            if etype == "DELETED":
                d.pop(key, None)
                self._sorted.pop(rt.key, None)
            else:
                if key not in d:
                    self._sorted.pop(rt.key, None)
                d[key] = rec
            self.events.append((self.rv, rt.key, etype, rec))
            while len(self.events) > self.history:
                old = self.events.popleft()
                self.compacted = old[0]
            for w in list(self.watchers):
                if w.rt_key == rt.key:
                    w.q.put((etype, rec))
            for cb in self.listeners:
                cb(rt, etype, rec)
            return rec

    def compact(self):
        with self.lock:
            self.events.clear()
            self.compacted = self.rv
            self.snapshots.clear()
            return self.rv

    # -- watch ------------------------------------------------------------
    def open_watch(self, rt, ns, since):
        """Register a watcher.  since=None: initial ADDED for all; since=N: events after N.

        Returns (watcher, initial events) or raises ApiError 410 via the caller's check."""
        with self.lock:
            w = Watcher(rt.key)
            if since is None:
                _, recs = self.snapshot(rt, ns)
                initial = [("ADDED", r) for r in recs]
            else:
                if since < self.compacted:
                    return None, self.compacted
                initial = [(e[2], e[3]) for e in self.events if e[0] > since and e[1] == rt.key]
            self.watchers.add(w)
            return w, initial

    def close_watch(self, w):
        with self.lock:
            self.watchers.discard(w)
            w.closed = True

    def close_all_watches(self):
        with self.lock:
            for w in list(self.watchers):
                w.closed = True
                w.q.put(None)
            self.watchers.clear()

# ---------------------------------------------------------------------------
# continue tokens (apiserver/pkg/storage/continue.go format)


def encode_continue(rv, start):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(tok):
    try:
        pad = "=" * (-len(tok) % 4)
        raw = base64.urlsafe_b64decode(tok + pad)
        err = go_json_error(raw)
        if err:
            raise ValueError("continue key is not valid: %s" % err)
        d = json.loads(raw)
        if not isinstance(d, dict):
            raise ValueError("continue key is not valid: json: cannot unmarshal %s into Go value of type "
                             "storage.continueToken" % {list: "array", str: "string", bool: "bool"}.get(
                                 type(d), "number"))
        # storage.DecodeContinue, in its order and words
        if d.get("v") != "meta.k8s.io/v1":
            raise ValueError("continue key is not valid: server does not recognize this encoded version %s"
                             % d.get("v", ""))
        rv = int(d.get("rv") or 0)
        if rv == 0:
            raise ValueError("continue key is not valid: incorrect encoded start resourceVersion "
                             "(version meta.k8s.io/v1)")
        start = d.get("start") or ""
        if not start:
            raise ValueError("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")
        key = start if start.startswith("/") else "/" + start
        if posixpath.normpath(key) != key:
            raise ValueError("continue key is not valid: %s" % start)
        # the key is relative, a leading "/" optional; it ends in NUL (the
        # next key after the last one returned)
        return rv, start.lstrip("/").rstrip("\x00") if start.endswith("\x00") else start.lstrip("/")
    except ApiError:
        raise
    except Exception as e:
        msg = str(e) if str(e).startswith("continue key") else "continue key is not valid: %s" % e
        raise bad_request("invalid continue token: " + msg)

# ---------------------------------------------------------------------------
# selectors

_REQ = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=|\s+in\s+|\s+notin\s+)\s*(.*?))?\s*$")


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def parse_label_selector(sel):
    """List of predicates over a labels dict; raises ApiError 400 on bad syntax."""
    preds = []
    if not sel:
        return preds
    for part in _split_top(sel):
        m = _REQ.match(part)
        if not m:
            raise bad_request("unable to parse requirement: %s" % part.strip())
        neg, key, op, val = m.groups()
        op = (op or "").strip()
        if neg:
            if op:
                raise bad_request("unable to parse requirement: %s" % part.strip())
            preds.append(lambda l, k=key: k not in l)
        elif not op:
            preds.append(lambda l, k=key: k in l)
        elif op in ("=", "=="):
            preds.append(lambda l, k=key, v=val: l.get(k) == v)
        elif op == "!=":
            preds.append(lambda l, k=key, v=val: l.get(k) != v)
        else:
            vals = val.strip()
            if not (vals.startswith("(") and vals.endswith(")")):
                raise bad_request("unable to parse requirement: %s" % part.strip())
            vs = {x.strip() for x in vals[1:-1].split(",") if x.strip()}
            if op == "in":
                preds.append(lambda l, k=key, vs=vs: l.get(k) in vs)
            else:
                preds.append(lambda l, k=key, vs=vs: l.get(k) not in vs)
    return preds


def parse_field_selector(sel, rt):
    preds = []
    if not sel:
        return preds
    for part in sel.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (sel, part))
        field, op, val = m.groups()
        if field not in ("metadata.name", "metadata.namespace"):
            if rt.builtin and rt.kind == "Namespace" and field == "status.phase":
                getter = lambda o: (o.get("status") or {}).get("phase", "")
            else:
                raise bad_request('"%s" is not a known field selector: only "metadata.name", '
                                  '"metadata.namespace"' % field)
        else:
            sub = field.split(".", 1)[1]
            getter = lambda o, sub=sub: (o.get("metadata") or {}).get(sub, "")
        if op == "!=":
            preds.append(lambda o, g=getter, v=val: g(o) != v)
        else:
            preds.append(lambda o, g=getter, v=val: g(o) == v)
    return preds


def matches(obj, lpreds, fpreds):
    if lpreds:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for p in lpreds:
            if not p(labels):
                return False
    for p in fpreds:
        if not p(obj):
            return False
    return True
