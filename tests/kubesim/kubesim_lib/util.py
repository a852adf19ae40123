"""JSON, time and metav1.Status helpers shared by every kubesim module.

Every error the emulator returns is an ApiError carrying a Status body built
here, with the templates of kube-wire.md §8.  When you change a template,
check the tests that pin kubectl's rendering of it (test_kubectl.py).
"""
import datetime
import json
import re
import time
import uuid

_enc = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dumps(obj):
    """Compact JSON with sorted keys (what Go's unstructured encoder emits)."""
    return _enc.encode(obj)


def dumpb(obj):
    return _enc.encode(obj).encode("utf-8")


def now_rfc3339(t=None):
    if t is None:
        t = time.time()
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s):
    try:
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def new_uid():
    return str(uuid.uuid4())


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return "%dm" % minutes if sec == 0 else "%dm%ds" % (minutes, sec)
    if minutes < 180:
        return "%dm" % minutes
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return "%dh" % hours if m == 0 else "%dh%dm" % (hours, m)
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        h = hours % 24
        return "%dd" % (hours // 24) if h == 0 else "%dd%dh" % (hours // 24, h)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    if hours < 24 * 365 * 8:
        d = (hours // 24) % 365
        return "%dy" % (hours // 24 // 365) if d == 0 else "%dy%dd" % (hours // 24 // 365, d)
    return "%dy" % (hours // 24 // 365)


def go_quote(s):
    """Go's %q for the strings we print (ASCII-safe JSON quoting is equivalent)."""
    return json.dumps(s, ensure_ascii=False)


# ---------------------------------------------------------------------------
# metav1.Status

class ApiError(Exception):
    """An error answered as a metav1.Status (or, for APF, as text)."""

    def __init__(self, code, reason, message, details=None, headers=None):
        Exception.__init__(self, message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.list_meta = {}

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": dict(self.list_meta), "status": "Failure",
              "message": self.message}
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st

    def body(self):
        # Field order as the real server emits it (struct order, not sorted).
        return json.dumps(self.status(), separators=(",", ":"), ensure_ascii=False).encode()


def qualified(resource, group):
    return "%s.%s" % (resource, group) if group else resource


def _details(name, group, kind, uid=None):
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    if uid:
        d["uid"] = uid
    return d


def not_found(resource, group, name):
    return ApiError(404, "NotFound", "%s %s not found" % (qualified(resource, group), go_quote(name)),
                    _details(name, group, resource))


def path_not_found():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource, group, name):
    return ApiError(409, "AlreadyExists", "%s %s already exists" % (qualified(resource, group), go_quote(name)),
                    _details(name, group, resource))


def rv_conflict(resource, group, name):
    return ApiError(409, "Conflict",
                    "Operation cannot be fulfilled on %s %s: the object has been modified; please apply "
                    "your changes to the latest version and try again" % (qualified(resource, group), go_quote(name)),
                    _details(name, group, resource))


def conflict_msg(resource, group, name, msg):
    return ApiError(409, "Conflict", "Operation cannot be fulfilled on %s %s: %s"
                    % (qualified(resource, group), go_quote(name), msg), _details(name, group, resource))


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden_resource(user, verb, resource, group, name, namespace, subresource=""):
    res = resource + ("/" + subresource if subresource else "")
    if namespace:
        why = "User %s cannot %s resource %s in API group %s in the namespace %s" % (
            go_quote(user), verb, go_quote(res), go_quote(group), go_quote(namespace))
    else:
        why = "User %s cannot %s resource %s in API group %s at the cluster scope" % (
            go_quote(user), verb, go_quote(res), go_quote(group))
    q = qualified(resource, group)
    msg = "%s %s is forbidden: %s" % (q, go_quote(name), why) if name else "%s is forbidden: %s" % (q, why)
    return ApiError(403, "Forbidden", msg, _details(name, group, resource))


def forbidden_path(user, verb, path):
    return ApiError(403, "Forbidden", "forbidden: User %s cannot %s path %s" % (
        go_quote(user), verb, go_quote(path)), {})


def forbidden_msg(resource, group, name, msg):
    q = qualified(resource, group)
    return ApiError(403, "Forbidden", "%s %s is forbidden: %s" % (q, go_quote(name), msg),
                    _details(name, group, resource))


def method_not_supported(resource, group, verb):
    return ApiError(405, "MethodNotAllowed", "%s is not supported on resources of kind %s" % (
        verb, go_quote(qualified(resource, group))), _details("", group, resource))


def gone(msg):
    return ApiError(410, "Expired", msg)


CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.")
CONTINUE_INCONSISTENT = (CONTINUE_EXPIRED[:-1] + ", or use the continue token in this response to retrieve "
                         "the remainder of the results. Continuing with the provided token results in an "
                         "inconsistent list - objects that were created, modified, or deleted between the time "
                         "the first chunk was returned and now may show up in the list.")
LIST_EXPIRED = "The resourceVersion for the provided list is too old."


def unsupported_media_type(ctype, accepted):
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    + ", ".join(accepted))


def too_large(limit):
    return ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is %d" % limit)


def internal_error(msg):
    return ApiError(500, "InternalError", "Internal error occurred: %s" % msg, {"causes": [{"message": msg}]})


def plain_internal(msg):
    """A 500 with an empty reason, as the SSA typed-conversion failure (kube-wire.md §7.2)."""
    return ApiError(500, "", msg)


def too_many_requests(msg, retry_after):
    return ApiError(429, "TooManyRequests", msg, {"retryAfterSeconds": retry_after},
                    {"Retry-After": str(retry_after)})


def service_unavailable(msg, retry_after=None):
    det = {"retryAfterSeconds": retry_after} if retry_after is not None else None
    hdr = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ApiError(503, "ServiceUnavailable", msg, det, hdr)


def timeout_error(msg, retry_after):
    return ApiError(504, "Timeout", "Timeout: " + msg, {"retryAfterSeconds": retry_after})


class FieldError(object):
    """field.Error: type is the cause reason (FieldValueRequired, ...)."""

    def __init__(self, ctype, field, body):
        self.ctype = ctype
        self.field = field
        self.body = body

    def __str__(self):
        return "%s: %s" % (self.field, self.body)


def go_value(v):
    """How field.Error prints an invalid value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return go_quote(v)
    return dumps(v)


def fe_required(field, detail=""):
    return FieldError("FieldValueRequired", field, "Required value" + (": " + detail if detail else ""))


def fe_invalid(field, value, detail):
    return FieldError("FieldValueInvalid", field, "Invalid value: %s: %s" % (go_value(value), detail))


def fe_type_invalid(field, value, detail):
    return FieldError("FieldValueTypeInvalid", field, "Invalid value: %s: %s" % (go_value(value), detail))


def fe_not_supported(field, value, allowed):
    return FieldError("FieldValueNotSupported", field, "Unsupported value: %s: supported values: %s" % (
        go_value(value), ", ".join(go_quote(a) if isinstance(a, str) else go_value(a) for a in allowed)))


def fe_forbidden(field, detail):
    return FieldError("FieldValueForbidden", field, "Forbidden: " + detail)


def fe_too_long(field, n):
    return FieldError("FieldValueTooLong", field, "Too long: may not be more than %d bytes" % n)


def invalid(kind, group, name, errs):
    causes = [{"reason": e.ctype, "message": e.body, "field": e.field} for e in errs]
    q = "%s.%s" % (kind, group) if group else kind
    # field.ErrorList.ToAggregate: the message lists each distinct error once
    msgs = []
    for e in errs:
        if str(e) not in msgs:
            msgs.append(str(e))
    if len(msgs) == 1:
        agg = msgs[0]
    else:
        agg = "[" + ", ".join(msgs) + "]"
    details = _details(name, group, kind)
    details["causes"] = causes
    return ApiError(422, "Invalid", "%s %s is invalid: %s" % (q, go_quote(name), agg), details)


# ---------------------------------------------------------------------------
# names

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def validate_name(name, rule, field="metadata.name"):
    """Return the field errors for an object name under rule subdomain|label|dns1035."""
    errs = []
    if rule == "subdomain":
        if len(name) > 253:
            errs.append(fe_invalid(field, name, "must be no more than 253 characters"))
        if not DNS1123_SUBDOMAIN.match(name):
            errs.append(fe_invalid(field, name, SUBDOMAIN_MSG))
    elif rule == "label":
        if len(name) > 63:
            errs.append(fe_invalid(field, name, "must be no more than 63 characters"))
        if not DNS1123_LABEL.match(name):
            errs.append(fe_invalid(field, name, LABEL_MSG))
    else:
        if len(name) > 63:
            errs.append(fe_invalid(field, name, "must be no more than 63 characters"))
        if not DNS1035_LABEL.match(name):
            errs.append(fe_invalid(field, name, DNS1035_MSG))
    return errs


# ---------------------------------------------------------------------------
# Go's encoding/json syntax errors (scanner.go), for the messages the real
# server quotes when a body or a continue token is not JSON


def _go_quote_char(c):
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    q = json.dumps(c)[1:-1] if c.isprintable() and c != "\\" else None
    if q is None:
        o = ord(c)
        q = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b", "\f": "\\f",
             "\v": "\\v"}.get(c) or ("\\x%02x" % o if o < 0x80 else "\\u%04x" % o if o <= 0xffff else "\\U%08x" % o)
    return "'%s'" % q


def go_json_error(data):
    """The message json.Unmarshal gives for malformed data, or None if it is
    valid JSON. Bytes that are not UTF-8 are taken one by one, as Latin-1."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        text = data
    ws = " \t\r\n"
    n = len(text)
    i = 0

    class Err(Exception):
        pass

    def bad(c, context):
        raise Err("invalid character %s %s" % (_go_quote_char(c), context))

    def end():
        raise Err("unexpected end of JSON input")

    def skip(j):
        while j < n and text[j] in ws:
            j += 1
        return j

    def value(j, context):
        j = skip(j)
        if j >= n:
            end()
        c = text[j]
        if c == "{":
            j = skip(j + 1)
            if j >= n:
                end()
            if text[j] == "}":
                return j + 1
            while True:
                if j >= n:
                    end()
                if text[j] != '"':
                    bad(text[j], "looking for beginning of object key string")
                j = string(j)
                j = skip(j)
                if j >= n:
                    end()
                if text[j] != ":":
                    bad(text[j], "after object key")
                j = skip(value(j + 1, "looking for beginning of value"))
                if j >= n:
                    end()
                if text[j] == "}":
                    return j + 1
                if text[j] != ",":
                    bad(text[j], "after object key:value pair")
                j = skip(j + 1)
        if c == "[":
            j = skip(j + 1)
            if j >= n:
                end()
            if text[j] == "]":
                return j + 1
            while True:
                j = skip(value(j, "looking for beginning of value"))
                if j >= n:
                    end()
                if text[j] == "]":
                    return j + 1
                if text[j] != ",":
                    bad(text[j], "after array element")
                j += 1
        if c == '"':
            return string(j)
        if c == "-" or c.isdigit() and c.isascii():
            return number(j)
        for lit in ("true", "false", "null"):
            if c == lit[0]:
                for k in range(1, len(lit)):
                    if j + k >= n:
                        end()
                    if text[j + k] != lit[k]:
                        bad(text[j + k], "in literal %s (expecting %s)" % (lit, _go_quote_char(lit[k])))
                return j + len(lit)
        bad(c, context)

    def string(j):
        j += 1
        while j < n:
            c = text[j]
            if c == '"':
                return j + 1
            if c == "\\":
                j += 1
                if j >= n:
                    end()
                if text[j] == "u":
                    for k in range(1, 5):
                        if j + k >= n:
                            end()
                        if text[j + k] not in "0123456789abcdefABCDEF":
                            bad(text[j + k], "in \\u hexadecimal character escape")
                    j += 5
                    continue
                if text[j] not in '"\\/bfnrt':
                    bad(text[j], "in string escape code")
            elif ord(c) < 0x20:
                bad(c, "in string literal")
            j += 1
        end()

    def number(j):
        if text[j] == "-":
            j += 1
            if j >= n:
                end()
            if not (text[j].isascii() and text[j].isdigit()):
                bad(text[j], "in numeric literal")
        if text[j] == "0":
            j += 1
        else:
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
        if j < n and text[j] == ".":
            j += 1
            if j >= n:
                end()
            if not (text[j].isascii() and text[j].isdigit()):
                bad(text[j], "after decimal point in numeric literal")
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
        if j < n and text[j] in "eE":
            j += 1
            if j < n and text[j] in "+-":
                j += 1
            if j >= n:
                end()
            if not (text[j].isascii() and text[j].isdigit()):
                bad(text[j], "in exponent of numeric literal")
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
        return j

    try:
        i = skip(value(0, "looking for beginning of value"))
        if i < n:
            bad(text[i], "after top-level value")
    except Err as e:
        return str(e)
    return None
