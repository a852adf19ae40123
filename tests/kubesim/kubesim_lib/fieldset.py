"""Field sets as structured-merge-diff computes them, over our reduced schemas.

A field set is a Python set of paths; a path is a tuple of FieldsV1 path
elements: 'f:name' (struct or map key), 'k:{"name":"x"}' (list-map item),
'v:"a"' (set item), 'i:3' (index).  The functions mirror SMD's walkers:

* to_fieldset  (typed/tofieldset.go)   the fields an applied config owns
* compare      (typed/compare.go)      added / modified / removed paths
* merge        (typed/merge.go)        live + applied config
* remove_items (typed/remove.go)       drop members (and their subtrees)
* ensure_named (fieldpath EnsureNamedFieldsAreMembers)
* encode/decode FieldsV1 JSON.

They agree with schema.node_kind() on what is a list, map or scalar: change
both together.
"""
import json

from .schema import (node_kind, list_type, map_atomic, items_schema, child_schema, is_struct,
                     is_value_struct, list_key)

MISSING = object()


def _item_pe(s, item, i):
    if list_type(s) in ("set", "map"):
        try:
            return list_key(s, item)
        except ValueError:
            return "i:%d" % i
    return "i:%d" % i


def to_fieldset(v, s, path=(), out=None):
    if out is None:
        out = set()
    kind = node_kind(s, v)
    if v is None:
        out.add(path)
        return out
    if kind == "list" and isinstance(v, list):
        if list_type(s) == "atomic":
            out.add(path)
            return out
        isch = items_schema(s)
        for i, item in enumerate(v):
            p = path + (_item_pe(s, item, i),)
            to_fieldset(item, isch, p, out)
            out.add(p)
        return out
    if kind == "map" and isinstance(v, dict):
        if map_atomic(s):
            out.add(path)
            return out
        for k, cv in v.items():
            cs, declared = child_schema(s, k)
            p = path + ("f:" + k,)
            to_fieldset(cv, cs, p, out)
            if cv is None or (isinstance(cv, dict) and not cv) or not declared:
                out.add(p)
        return out
    out.add(path)
    return out

# ---------------------------------------------------------------------------
# FieldsV1


def _pe_sort_key(pe):
    t = pe[0]
    rank = {"f": 0, "k": 1, "v": 2, "i": 3}.get(t, 4)
    rest = pe[2:]
    if t == "i":
        return (rank, int(rest), "")
    if t in ("k", "v"):
        try:
            val = json.loads(rest)
        except ValueError:
            val = rest
        if isinstance(val, dict):
            return (rank, 0, json.dumps([[k, _val_key(val[k])] for k in sorted(val)]))
        return (rank, 0, json.dumps(_val_key(val)))
    return (rank, 0, rest)


def _val_key(v):
    if isinstance(v, bool):
        return [1, int(v)]
    if isinstance(v, (int, float)):
        return [2, v]
    if isinstance(v, str):
        return [3, v]
    return [4, json.dumps(v, sort_keys=True)]


def encode(paths):
    """FieldsV1 dict for a set of paths (members first as '.', children sorted)."""
    root = {}
    for p in paths:
        if not p:
            continue
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        node["\x00member"] = True

    def emit(node):
        out = {}
        member = node.pop("\x00member", False)
        kids = sorted(node.keys(), key=_pe_sort_key)
        if member and kids:
            out["."] = {}
        for k in kids:
            out[k] = emit(node[k])
        if member:
            node["\x00member"] = True
        return out
    return emit(root)


def decode(fields, prefix=(), out=None):
    if out is None:
        out = set()
    for k, v in (fields or {}).items():
        if k == ".":
            out.add(prefix)
            continue
        p = prefix + (k,)
        if not v:
            out.add(p)
        else:
            decode(v, p, out)
    return out


def sort_paths(paths):
    def key(p):
        return [(1,) + _pe_sort_key(pe) for pe in p[:-1]] + [(0,) + _pe_sort_key(p[-1])] if p else []
    return sorted(paths, key=key)

# ---------------------------------------------------------------------------
# schema walking along a path


def _step(s, pe):
    if pe[0] == "f":
        cs, declared = child_schema(s, pe[2:])
        return cs, declared
    return items_schema(s), False


def ensure_named(paths, root):
    out = set(paths)
    for p in paths:
        s = root
        for i, pe in enumerate(p[:-1]):
            cs, declared = _step(s, pe)
            if pe[0] == "f" and declared and is_struct(s):
                out.add(p[:i + 1])
            s = cs
            if s is None:
                break
        if p:
            pe = p[-1]
            # the last element is a member already
    return out


def remove_items(v, paths, s):
    """typed.RemoveItems: drop each member path (and its subtree) from v."""
    if not paths:
        return v
    return _remove(v, _nested(paths), s)


def _nested(paths):
    root = {}
    for p in paths:
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        node["\x00m"] = True
    return root


def _remove(v, trie, s):
    kind = node_kind(s, v)
    if isinstance(v, dict) and kind == "map":
        if map_atomic(s):
            return v
        out = {}
        for k, cv in v.items():
            sub = trie.get("f:" + k)
            if sub is None:
                out[k] = cv
                continue
            if sub.get("\x00m"):
                continue
            cs, _ = child_schema(s, k)
            out[k] = _remove(cv, sub, cs)
        return out
    if isinstance(v, list) and kind == "list":
        if not v or list_type(s) == "atomic":
            return v
        isch = items_schema(s)
        out = []
        for i, item in enumerate(v):
            pe = _item_pe(s, item, i)
            sub = trie.get(pe)
            if sub is None:
                out.append(item)
                continue
            if sub.get("\x00m"):
                continue
            out.append(_remove(item, sub, isch))
        return out
    return v

# ---------------------------------------------------------------------------
# compare


class Comparison(object):
    def __init__(self):
        self.added = set()
        self.modified = set()
        self.removed = set()


def compare(lhs, rhs, s):
    c = Comparison()
    _cmp(lhs, rhs, s, (), c)
    return c


def _empty(x):
    return x is MISSING or x is None or (isinstance(x, (dict, list)) and not x)


def _leaf(lhs, rhs, path, c):
    if lhs is MISSING and rhs is MISSING:
        return
    if lhs is MISSING:
        c.added.add(path)
    elif rhs is MISSING:
        c.removed.add(path)
    elif lhs != rhs or type(lhs) != type(rhs):
        c.modified.add(path)


def _cmp(lhs, rhs, s, path, c):
    probe = rhs if rhs is not MISSING else lhs
    kind = node_kind(s, probe)
    if kind == "list":
        lok = lhs is MISSING or lhs is None or isinstance(lhs, list)
        rok = rhs is MISSING or rhs is None or isinstance(rhs, list)
        if not (lok and rok) or list_type(s) == "atomic" or (_empty(lhs) and _empty(rhs)):
            _leaf(lhs, rhs, path, c)
            return
        isch = items_schema(s)
        lv = {}
        order = []
        for i, x in enumerate(lhs if isinstance(lhs, list) else []):
            pe = _item_pe(s, x, i)
            if pe not in lv:
                order.append(pe)
            lv[pe] = x
        rv = {}
        for i, x in enumerate(rhs if isinstance(rhs, list) else []):
            pe = _item_pe(s, x, i)
            if pe not in lv and pe not in rv:
                order.append(pe)
            rv[pe] = x
        for pe in order:
            lc, rc = lv.get(pe, MISSING), rv.get(pe, MISSING)
            p = path + (pe,)
            if lc is MISSING:
                c.added.add(p)
            elif rc is MISSING:
                c.removed.add(p)
            _cmp(lc, rc, isch, p, c)
        return
    if kind == "map":
        lok = lhs is MISSING or lhs is None or isinstance(lhs, dict)
        rok = rhs is MISSING or rhs is None or isinstance(rhs, dict)
        if not (lok and rok) or map_atomic(s) or (_empty(lhs) and _empty(rhs)):
            _leaf(lhs, rhs, path, c)
            return
        ld = lhs if isinstance(lhs, dict) else {}
        rd = rhs if isinstance(rhs, dict) else {}
        for k in list(ld.keys()) + [k for k in rd if k not in ld]:
            cs, declared = child_schema(s, k)
            lc, rc = ld.get(k, MISSING), rd.get(k, MISSING)
            p = path + ("f:" + k,)
            ck = node_kind(cs, rc if rc is not MISSING else lc)
            if ck != "scalar" and not _empty(lc if lc is not MISSING else rc):
                # A map created or dropped whole is itself a member ('.'); so is
                # a struct of a CRD (absent in unstructured content), not a
                # built-in kind's value struct (always there, maybe empty).
                if lc is MISSING and (not is_value_struct(cs) or not declared):
                    c.added.add(p)
                elif rc is MISSING:
                    c.removed.add(p)
            _cmp(lc, rc, cs, p, c)
        return
    _leaf(lhs, rhs, path, c)

# ---------------------------------------------------------------------------
# merge


def merge(lhs, rhs, s):
    """typed.Merge: live (lhs) + applied config (rhs)."""
    if rhs is MISSING:
        return lhs
    if lhs is MISSING or lhs is None or rhs is None:
        return rhs
    kind = node_kind(s, rhs)
    if kind == "map" and isinstance(lhs, dict) and isinstance(rhs, dict):
        if map_atomic(s):
            return rhs
        out = dict(lhs)
        for k, rc in rhs.items():
            cs, _ = child_schema(s, k)
            out[k] = merge(lhs.get(k, MISSING), rc, cs)
        return out
    if kind == "list" and isinstance(lhs, list) and isinstance(rhs, list):
        if list_type(s) == "atomic":
            return rhs
        return _merge_list(lhs, rhs, s)
    return rhs


def _merge_list(lhs, rhs, s):
    isch = items_schema(s)
    lpes = [_item_pe(s, x, i) for i, x in enumerate(lhs)]
    rpes = [_item_pe(s, x, i) for i, x in enumerate(rhs)]
    lmap = {}
    for pe, x in zip(lpes, lhs):
        lmap.setdefault(pe, x)
    rmap = {}
    for pe, x in zip(rpes, rhs):
        rmap.setdefault(pe, x)
    shared = [pe for pe in rpes if pe in lmap]
    nxt = shared.pop(0) if shared else None
    merged_r = set()
    out = []
    li = ri = 0
    while li < len(lpes) or ri < len(rpes):
        if li < len(lpes) and ri < len(rpes):
            pe = lpes[li]
            if pe == rpes[ri]:
                merged_r.add(pe)
                out.append(merge(lmap.get(pe, MISSING), rmap.get(pe), isch))
                li += 1
                ri += 1
                nxt = shared.pop(0) if shared else None
                continue
            if pe in rmap and nxt is not None and nxt != pe:
                li += 1
                continue
        if li < len(lpes):
            pe = lpes[li]
            if pe not in rmap:
                out.append(lhs[li])
                li += 1
                continue
            if pe in merged_r:
                li += 1
                continue
        if ri < len(rpes):
            pe = rpes[ri]
            merged_r.add(pe)
            out.append(merge(lmap.get(pe, MISSING), rmap.get(pe), isch))
            ri += 1
            if nxt is not None and nxt == pe:
                nxt = shared.pop(0) if shared else None
            continue
    return out
