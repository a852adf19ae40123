"""Fault injection rules of one cluster (POST /_sim/faults).

A rule matches a request by Kubernetes verb (get, list, watch, create,
update, patch, delete, deletecollection, or '*') and/or a regular expression
searched in the path (with the query when `match_query` is true).  Its action
is one of: latency only, an error status (500, 503, 429 as a JSON Status, or
the plain-text APF 429), or a connection reset in the middle of the response.
`share` (0..1] picks a deterministic fraction of the matching requests (an
accumulator, so 0.5 is every second one); `count` limits the rule to the
first N requests it fires on.  Rules are evaluated in order; the first one
that fires decides.  The unreachable state is kept separately (Faults.unreachable).
"""
import itertools
import re
import threading
import time

from .util import bad_request

_ids = itertools.count(1)

ACTIONS = ("latency", "error", "reset")


class Rule(object):
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise bad_request("a fault must be a JSON object")
        allowed = {"verb", "path", "match_query", "latency_ms", "status", "share", "count", "retry_after",
                   "body", "message", "reset", "reset_after_bytes", "id"}
        extra = set(spec) - allowed
        if extra:
            raise bad_request("unknown fault field(s): %s" % ", ".join(sorted(extra)))
        self.id = next(_ids)
        self.verb = spec.get("verb", "*")
        verbs = self.verb if isinstance(self.verb, list) else [self.verb]
        self.verbs = {v.lower() for v in verbs}
        try:
            self.path = re.compile(spec.get("path", ""))
        except re.error as e:
            raise bad_request("bad path regex: %s" % e)
        self.match_query = bool(spec.get("match_query", False))
        self.latency_ms = int(spec.get("latency_ms", 0))
        self.status = spec.get("status")
        if self.status is not None and int(self.status) not in (429, 500, 502, 503, 504):
            raise bad_request("status must be one of 429, 500, 502, 503, 504")
        self.share = float(spec.get("share", 1.0))
        if not 0 < self.share <= 1:
            raise bad_request("share must be in (0, 1]")
        self.count = spec.get("count")
        self.retry_after = spec.get("retry_after")
        self.body = spec.get("body", "status")
        if self.body not in ("status", "apf"):
            raise bad_request('body must be "status" or "apf"')
        self.message = spec.get("message")
        self.reset = bool(spec.get("reset", False))
        self.reset_after_bytes = int(spec.get("reset_after_bytes", 64))
        if not (self.latency_ms or self.status or self.reset):
            raise bad_request("a fault needs latency_ms, status or reset")
        self.acc = 0.0
        self.fired = 0
        self.seen = 0

    def describe(self):
        d = {"id": self.id, "verb": self.verb, "path": self.path.pattern, "latency_ms": self.latency_ms,
             "status": self.status, "share": self.share, "count": self.count, "retry_after": self.retry_after,
             "body": self.body, "reset": self.reset, "fired": self.fired, "seen": self.seen}
        if self.message:
            d["message"] = self.message
        return d


class Faults(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.unreachable = None          # None, "refuse" or "drop"
        self.unreachable_until = None

    def add(self, specs):
        rules = [Rule(s) for s in specs]
        with self.lock:
            self.rules.extend(rules)
        return rules

    def clear(self):
        with self.lock:
            self.rules = []

    def remove(self, rid):
        with self.lock:
            n = len(self.rules)
            self.rules = [r for r in self.rules if r.id != rid]
            return len(self.rules) != n

    def describe(self):
        with self.lock:
            return [r.describe() for r in self.rules]

    def pick(self, verb, path, query):
        """The rule that fires for this request, or None."""
        target = path + ("?" + query if query else "")
        with self.lock:
            for r in self.rules:
                if "*" not in r.verbs and verb not in r.verbs:
                    continue
                if not r.path.search(target if r.match_query else path):
                    continue
                if r.count is not None and r.fired >= int(r.count):
                    continue
                r.seen += 1
                r.acc += r.share
                if r.acc + 1e-9 < 1.0:
                    continue
                r.acc -= 1.0
                r.fired += 1
                return r
        return None
