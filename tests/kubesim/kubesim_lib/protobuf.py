"""Just enough of Kubernetes' protobuf encoding to read what kubectl sends for
the built-in kinds it creates as protobuf (kubectl create namespace): the
runtime.Unknown envelope (magic "k8s\\0") around a Namespace.  Other kinds are
refused with the error the JSON decoder would give (README: Known limits).

Wire format: https://protobuf.dev/programming-guides/encoding/; the field
numbers are k8s.io/api/core/v1/generated.proto and
k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto.
"""
import base64

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class DecodeError(ValueError):
    pass


def _varint(b, i):
    out = shift = 0
    while True:
        if i >= len(b):
            raise DecodeError("unexpected EOF")
        c = b[i]
        i += 1
        out |= (c & 0x7f) << shift
        if not c & 0x80:
            return out, i
        shift += 7
        if shift > 63:
            raise DecodeError("varint overflow")


def fields(b):
    """[(field number, wire type, value)]: ints for varints, bytes otherwise."""
    out = []
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise DecodeError("unexpected EOF")
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise DecodeError("unsupported wire type %d" % wt)
        out.append((num, wt, v))
    return out


def _s(v):
    return v.decode("utf-8")


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _time(b):
    secs = nanos = 0
    for num, _, v in fields(b):
        if num == 1:
            secs = _signed(v)
        elif num == 2:
            nanos = v
    if secs == 0 and nanos == 0:
        return None          # the zero metav1.Time: null in JSON
    import datetime
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _map_entry(b):
    k = v = ""
    for num, _, x in fields(b):
        if num == 1:
            k = _s(x)
        elif num == 2:
            v = _s(x)
    return k, v


def object_meta(b):
    md = {}
    for num, _, v in fields(b):
        # gogo-protobuf writes empty strings and zero numbers too: JSON omits them
        if num in (1, 2, 3, 4, 5, 6):
            if v:
                md[("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion")[num - 1]] = _s(v)
        elif num == 7:
            if v:
                md["generation"] = _signed(v)
        elif num == 8:
            md["creationTimestamp"] = _time(v)
        elif num == 9:
            md["deletionTimestamp"] = _time(v)
        elif num == 10:
            md["deletionGracePeriodSeconds"] = _signed(v)
        elif num in (11, 12):
            k, x = _map_entry(v)
            md.setdefault("labels" if num == 11 else "annotations", {})[k] = x
        elif num == 14:
            md.setdefault("finalizers", []).append(_s(v))
        elif num == 13:
            ref = {}
            for n2, _, x in fields(v):
                if n2 in (1, 3, 4, 5):
                    ref[{1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}[n2]] = _s(x)
                elif n2 in (6, 7):
                    ref["controller" if n2 == 6 else "blockOwnerDeletion"] = bool(x)
            md.setdefault("ownerReferences", []).append(ref)
    md.setdefault("creationTimestamp", None)
    return md


def namespace(b):
    obj = {"metadata": {"creationTimestamp": None}, "spec": {}, "status": {}}
    for num, _, v in fields(b):
        if num == 1:
            obj["metadata"] = object_meta(v)
        elif num == 2:
            for n2, _, x in fields(v):
                if n2 == 1:
                    obj["spec"].setdefault("finalizers", []).append(_s(x))
        elif num == 3:
            for n2, _, x in fields(v):
                if n2 == 1 and x:
                    obj["status"]["phase"] = _s(x)
    return obj


DECODERS = {("v1", "Namespace"): namespace}


def decode(data):
    """(apiVersion, kind, object as JSON would give it). Raises DecodeError
    for what is not a runtime.Unknown, KeyError for a kind without decoder."""
    if not data.startswith(MAGIC):
        raise DecodeError("provided data does not appear to be a protobuf message, expected prefix %s"
                          % list(MAGIC))
    api_version = kind = ""
    raw = b""
    for num, _, v in fields(data[len(MAGIC):]):
        if num == 1:
            for n2, _, x in fields(v):
                if n2 == 1:
                    api_version = _s(x)
                elif n2 == 2:
                    kind = _s(x)
        elif num == 2:
            raw = v
    dec = DECODERS[(api_version, kind)]
    obj = dec(raw)
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return api_version, kind, obj


def summary(data):
    return base64.b64encode(data[:30]).decode()
