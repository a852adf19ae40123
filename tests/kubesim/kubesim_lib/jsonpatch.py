"""RFC 7386 merge patch, RFC 6902 JSON patch and a strategic-merge-patch
approximation (merge patch whose lists with list-map keys merge by key)."""
import copy

from .schema import node_kind, list_type, items_schema, child_schema


class PatchError(Exception):
    pass


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strategic_merge_patch(target, patch, s):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        cs, _ = child_schema(s, k) if s is not None else (None, False)
        if v is None:
            out.pop(k, None)
        elif (isinstance(v, list) and cs is not None and node_kind(cs, v) == "list"
              and list_type(cs) == "map" and isinstance(out.get(k), list)):
            keys = cs.get("x-kubernetes-list-map-keys", [])
            cur = list(out[k])
            isch = items_schema(cs)
            for item in v:
                if not isinstance(item, dict):
                    continue
                idx = next((i for i, x in enumerate(cur) if isinstance(x, dict)
                            and all(x.get(kk) == item.get(kk) for kk in keys[:1])), None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        cur.pop(idx)
                elif idx is None:
                    cur.append({a: b for a, b in item.items() if not a.startswith("$")})
                else:
                    cur[idx] = strategic_merge_patch(cur[idx], item, isch)
            out[k] = cur
        else:
            out[k] = strategic_merge_patch(out.get(k), v, cs)
    return out


def _unescape(tok):
    return tok.replace("~1", "/").replace("~0", "~")


def _parse_pointer(ptr):
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise PatchError("invalid JSON pointer %r" % ptr)
    return [_unescape(t) for t in ptr[1:].split("/")]


def _walk(doc, toks):
    cur = doc
    for t in toks:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError("missing path")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError):
                raise PatchError("missing path")
        else:
            raise PatchError("missing path")
    return cur


def _add(doc, toks, val, replace=False):
    if not toks:
        return val
    parent = _walk(doc, toks[:-1])
    last = toks[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError("replace operation does not apply: doc is missing key: /" + "/".join(toks))
        parent[last] = val
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(val)
            return doc
        try:
            i = int(last)
        except ValueError:
            raise PatchError("invalid index %r" % last)
        if replace:
            if not 0 <= i < len(parent):
                raise PatchError("replace operation does not apply: doc is missing key: /" + "/".join(toks))
            parent[i] = val
        else:
            if not 0 <= i <= len(parent):
                raise PatchError("add operation does not apply: doc is missing path: /" + "/".join(toks))
            parent.insert(i, val)
    else:
        raise PatchError("add operation does not apply: doc is missing path: /" + "/".join(toks))
    return doc


def _remove(doc, toks):
    if not toks:
        raise PatchError("cannot remove the root")
    parent = _walk(doc, toks[:-1])
    last = toks[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("remove operation does not apply: doc is missing path: /" + "/".join(toks))
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError):
            raise PatchError("remove operation does not apply: doc is missing path: /" + "/".join(toks))
    raise PatchError("remove operation does not apply: doc is missing path: /" + "/".join(toks))


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("invalid operation")
        kind = op["op"]
        path = _parse_pointer(op.get("path", ""))
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "remove":
            _remove(doc, path)
        elif kind in ("move", "copy"):
            frm = _parse_pointer(op.get("from", ""))
            val = _walk(doc, frm)
            if kind == "move":
                _remove(doc, frm)
            doc = _add(doc, path, copy.deepcopy(val))
        elif kind == "test":
            try:
                cur = _walk(doc, path)
            except PatchError:
                raise PatchError("testing value /%s failed: test failed" % "/".join(path))
            if cur != op.get("value"):
                raise PatchError("testing value /%s failed: test failed" % "/".join(path))
        else:
            raise PatchError("Unexpected kind: %s" % kind)
    return doc
