"""HTTP(S) front end: one TLS listener per cluster, authentication, faults,
the request log, the /_sim/ control API, and the REST routes of api.Cluster.

Threading: one thread per connection (HTTP/1.1 keep-alive); watches stream
chunked JSON from the watcher queue.  Connections are accepted by one
serve_forever thread per listener (polling every 0.1 s), or with --light by
one Acceptor thread for every listener (epoll, no polling).  Everything a
handler shares lives in ClusterCtx, guarded by the store lock (objects) or
small locks (log, faults, tokens).  Sim.stop() closes listeners and ends
watches (SIGTERM/SIGINT).
"""
import base64
import email.utils
import http.server
import json
import os
import secrets
import selectors
import socket
import socketserver
import ssl
import struct
import threading
import time
import urllib.parse

from . import discovery
from . import protobuf
from .api import Cluster, Options, parse_body_json
from .faults import Faults
from .operator import Operator
from .util import (ApiError, dumpb, unauthorized, forbidden_resource, forbidden_path, path_not_found,
                   too_large, internal_error, too_many_requests, service_unavailable, bad_request,
                   method_not_supported, now_rfc3339, gone, LIST_EXPIRED)

MAX_BODY = 3 * 1024 * 1024
APF_BODY = b"Too many requests, please try again later.\n"
READ_VERBS = ("get", "list", "watch")
# version.Info of 1.32 (k8s.io/apimachinery v0.32): emulationMajor/Minor and
# minCompatibilityMajor/Minor only appear in 1.33
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4",
           "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335", "gitTreeState": "clean",
           "buildDate": "2025-04-22T16:02:27Z", "goVersion": "go1.23.6", "compiler": "gc",
           "platform": "linux/amd64"}


# the groups of kube-apiserver 1.32 itself (not CRDs): a missing path under
# them is a Status, elsewhere Go's plain "404 page not found"
BUILTIN_GROUPS = {"admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
                  "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
                  "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
                  "networking.k8s.io", "node.k8s.io", "policy", "rbac.authorization.k8s.io", "scheduling.k8s.io",
                  "storage.k8s.io"}


class User(object):
    def __init__(self, name, groups, method):
        self.name = name
        self.groups = groups
        self.method = method

    @property
    def admin(self):
        return "system:masters" in self.groups


class RequestLog(object):
    def __init__(self, keep=100000):
        self.lock = threading.Lock()
        self.items = []
        self.seq = 0
        self.keep = keep

    def add(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.items.append(entry)
            if len(self.items) > self.keep:
                del self.items[:len(self.items) - self.keep]

    def since(self, n):
        with self.lock:
            return [e for e in self.items if e["seq"] > n], self.seq

    def clear(self):
        with self.lock:
            self.items = []
            return self.seq


class ClusterCtx(object):
    """Everything that belongs to one simulated cluster."""

    def __init__(self, sim, name, registry, opts):
        self.sim = sim
        self.name = name
        self.cluster = Cluster(name, registry, opts.get("history", 10000))
        self.version = dict(VERSION)
        if opts.get("server_version"):
            v = opts["server_version"].lstrip("v")
            parts = v.split(".")
            self.version.update({"major": parts[0], "minor": parts[1], "gitVersion": "v" + v})
        self.docs = discovery.Docs(registry, version=self.version)
        self.started = time.time()
        self.faults = Faults()
        self.log = RequestLog()
        self.operator = Operator(self.cluster, opts.get("operator_delay", 0.5))
        self.bookmark_interval = opts.get("bookmark_interval", 5.0)
        self.token_lock = threading.Lock()
        self.tokens = {}
        self.expired = set()
        self.port = opts.get("port", 0)
        self.listener = None
        self.timer = None

    # -- tokens -----------------------------------------------------------
    def new_token(self, user, groups, kind):
        t = "%s-%s" % (kind, secrets.token_hex(16))
        with self.token_lock:
            self.tokens[t] = (user, groups, kind)
        return t

    def exec_file(self):
        return os.path.join(self.sim.dir, "%s-exec-credential.json" % self.name)

    def write_exec_credential(self, token, lifetime=3600):
        cred = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                "status": {"token": token, "expirationTimestamp": now_rfc3339(time.time() + lifetime)}}
        tmp = self.exec_file() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cred, f)
            f.write("\n")
        os.replace(tmp, self.exec_file())

    def rotate(self, kind):
        """Issue a new token of `kind` (admin|readonly|exec) and write it where clients read it."""
        user, groups = {"admin": ("kubesim-admin", ["system:masters", "system:authenticated"]),
                        "readonly": ("viewer", ["system:authenticated"]),
                        "exec": ("exec-admin", ["system:masters", "system:authenticated"])}[kind]
        t = self.new_token(user, groups, kind)
        if kind == "exec":
            self.write_exec_credential(t)
        else:
            path = os.path.join(self.sim.dir, "%s%s.token" % (self.name, "" if kind == "admin" else "-readonly"))
            with open(path, "w") as f:
                f.write(t + "\n")
        return t

    def expire(self, kind, rotate):
        with self.token_lock:
            old = [t for t, v in self.tokens.items() if v[2] == kind]
            for t in old:
                self.expired.add(t)
                del self.tokens[t]
        if rotate:
            return self.rotate(kind)
        return None

    def authenticate(self, handler):
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            with self.token_lock:
                v = self.tokens.get(tok)
                was_exec = tok in self.expired and tok.startswith("exec-")
            if v is None:
                if was_exec:
                    # The plugin's credential expired: a re-run of the plugin gets a fresh one.
                    with self.token_lock:
                        self.expired.discard(tok)
                        fresh = not any(x[2] == "exec" for x in self.tokens.values())
                    if fresh:
                        self.rotate("exec")
                return None
            return User(v[0], v[1], "exec" if v[2] == "exec" else "token")
        # Any other scheme (Basic among them: Kubernetes dropped basic auth in
        # 1.19) is handled by no authenticator: the request goes on with the
        # client certificate, else as system:anonymous, as kube-apiserver does.
        cert = handler.peer_cert
        if cert:
            cn, orgs = "", []
            for rdn in cert.get("subject", ()):
                for k, val in rdn:
                    if k == "commonName":
                        cn = val
                    elif k == "organizationName":
                        orgs.append(val)
            return User(cn, orgs + ["system:authenticated"], "cert")
        return User("system:anonymous", ["system:unauthenticated"], "anonymous")


class Acceptor(object):
    """--light: one thread accepts the connections of every listener (epoll,
    woken by a pipe when a listener is added or removed), where by default each
    listener has its own serve_forever thread that polls every 0.1 s. What is
    done with a connection is the same: TLSServer's verify_request, then a
    thread per connection (ThreadingMixIn)."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        self.sel.register(self.rfd, selectors.EVENT_READ, None)
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="acceptor", daemon=True)
        self.thread.start()

    def _wake(self):
        try:
            os.write(self.wfd, b"x")
        except OSError:
            pass

    def add(self, srv):
        with self.lock:
            self.sel.register(srv.socket, selectors.EVENT_READ, srv)
        self._wake()

    def remove(self, srv):
        with self.lock:
            try:
                self.sel.unregister(srv.socket)
            except (KeyError, ValueError):
                pass
        self._wake()

    def _run(self):
        while not self.stopped:
            try:
                events = self.sel.select()
            except OSError:
                continue
            for key, _ in events:
                if key.data is None:
                    try:
                        os.read(self.rfd, 4096)
                    except OSError:
                        pass
                    continue
                with self.lock:
                    live = self.sel.get_map().get(key.fd) is key
                if live:
                    # accept, verify_request, a thread for the connection; an
                    # accept on a listener closed meanwhile fails quietly
                    key.data._handle_request_noblock()

    def stop(self):
        self.stopped = True
        self._wake()
        self.thread.join(2)


class Sim(object):
    def __init__(self, directory, light=False):
        self.dir = directory
        self.clusters = {}
        self.ssl_ctx = None
        self.stopping = threading.Event()
        self.acceptor = Acceptor() if light else None

    def make_ssl(self, pki):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["server_crt"], pki["server_key"])
        ctx.load_verify_locations(pki["ca"])
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        self.ssl_ctx = ctx

    def start_listener(self, ctx):
        srv = TLSServer(("127.0.0.1", ctx.port), Handler, self.ssl_ctx, ctx)
        ctx.port = srv.server_address[1]
        ctx.listener = srv
        if self.acceptor is not None:
            self.acceptor.add(srv)
            return
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                             name="listener-" + ctx.name, daemon=True)
        t.start()

    def close_listener(self, srv):
        if self.acceptor is not None:
            self.acceptor.remove(srv)
        else:
            srv.shutdown()
        srv.server_close()

    def stop_listener(self, ctx):
        srv = ctx.listener
        ctx.listener = None
        if srv is not None:
            self.close_listener(srv)

    def set_unreachable(self, ctx, mode, duration_ms=None):
        if ctx.timer is not None:
            ctx.timer.cancel()
            ctx.timer = None
        ctx.faults.unreachable = mode
        if mode == "refuse":
            threading.Thread(target=self.stop_listener, args=(ctx,), daemon=True).start()
            ctx.cluster.store.close_all_watches()
        elif mode == "drop":
            ctx.cluster.store.close_all_watches()
            self.reopen_listener(ctx)   # a "refuse" before closed it; "drop" accepts
        if mode and duration_ms:
            ctx.timer = threading.Timer(duration_ms / 1000.0, self.restore, args=(ctx,))
            ctx.timer.daemon = True
            ctx.timer.start()

    def restore(self, ctx):
        ctx.faults.unreachable = None
        self.reopen_listener(ctx)

    def reopen_listener(self, ctx):
        """Listen again if a "refuse" closed the listener (whatever the
        mode was switched to since)."""
        if ctx.listener is None and not self.stopping.is_set():
            for _ in range(50):
                try:
                    self.start_listener(ctx)
                    break
                except OSError:
                    time.sleep(0.05)  # the port is released asynchronously

    def stop(self):
        self.stopping.set()
        for ctx in self.clusters.values():
            ctx.operator.stop()
            ctx.cluster.store.close_all_watches()
        for ctx in self.clusters.values():
            srv = ctx.listener
            ctx.listener = None
            if srv is not None:
                self.close_listener(srv)
        if self.acceptor is not None:
            self.acceptor.stop()


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, ssl_ctx, ctx):
        self.ssl_ctx = ssl_ctx
        self.ctx = ctx
        http.server.HTTPServer.__init__(self, addr, handler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def verify_request(self, request, client_address):
        if self.ctx.faults.unreachable == "refuse":
            return False
        return True

    def finish_request(self, request, client_address):
        try:
            request.settimeout(30)
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            try:
                request.close()
            except OSError:
                pass
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, OSError, ConnectionError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def shutdown_request(self, request):
        try:
            request.close()
        except OSError:
            pass

    def handle_error(self, request, client_address):
        import traceback
        traceback.print_exc()


def _accepts(accept, g, as_):
    """Which version (v=...) of media type g/as the Accept header asks for first, or None."""
    for part in (accept or "").split(","):
        params = {}
        for p in part.split(";")[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip()] = v.strip()
        if params.get("g") == g and params.get("as") == as_:
            return params.get("v")
        mt = part.split(";")[0].strip()
        if not params and mt in ("application/json", "*/*", "application/*"):
            return None
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubesim"
    sys_version = ""
    timeout = 120
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle
    # holds the body until the client's delayed ACK (~40 ms per response)
    disable_nagle_algorithm = True

    def setup(self):
        http.server.BaseHTTPRequestHandler.setup(self)
        try:
            self.peer_cert = self.connection.getpeercert()
        except (ValueError, AttributeError):
            self.peer_cert = None

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing ---------------------------------------------------------
    @property
    def ctx(self):
        return self.server.ctx

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = b""
            while True:
                line = self.rfile.readline()
                n = int(line.strip().split(b";")[0] or b"0", 16)
                if n == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(n)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    self.close_connection = True
                    raise too_large(MAX_BODY)
            return data
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            left = n if n <= 64 * MAX_BODY else 0       # drain, so the client reads our 413
            while left > 0:
                got = self.rfile.read(min(left, 1 << 20))
                if not got:
                    break
                left -= len(got)
            raise too_large(MAX_BODY)
        return self.rfile.read(n) if n else b""

    def respond(self, code, body, ctype="application/json", headers=None):
        self.resp_code = code
        self.resp_ctype = ctype
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Audit-Id", self.audit_id)
        if not any(k.lower() == "cache-control" for k in (headers or {})):
            self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            if isinstance(v, list):
                for x in v:
                    self.send_header(k, x)
            else:
                self.send_header(k, v)
        self.send_header("X-Kubernetes-Pf-Flowschema-Uid", "c1c9a6f7-0000-4000-8000-00000000f10e")
        self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", "c1c9a6f7-0000-4000-8000-00000000a11e")
        self.send_header("Date", self.date_time_string())
        if self.reset_rule is not None and body and self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = max(1, min(self.reset_rule.reset_after_bytes, len(body) - 1))
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.reset_connection()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset_connection(self):
        """Abort the TCP connection with a RST (SO_LINGER 0), as a crashed peer or proxy would."""
        self.close_connection = True
        self.resp_reset = True
        try:
            self.wfile.flush()
        except (OSError, ValueError):
            pass
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile, self.connection):
            try:
                f.close()
            except (OSError, ValueError):
                pass

    def respond_json(self, code, obj, headers=None):
        self.respond(code, dumpb(obj) if not isinstance(obj, bytes) else obj, "application/json", headers)

    def respond_error(self, err):
        h = dict(err.headers)
        if err.code == 404 and err.reason == "NotFound" and err.details == {} and not self._restful_path():
            # outside the built-in groups (CRD groups, served or not, unknown
            # groups, other paths) the real server's mux answers Go's http.NotFound
            h["X-Content-Type-Options"] = "nosniff"
            return self.respond(404, b"404 page not found\n", "text/plain; charset=utf-8", h)
        self.respond(err.code, err.body(), "application/json", h)

    def _restful_path(self):
        """Whether the real server answers a missing path here with a Status:
        /api/... and the built-in groups are go-restful's."""
        segs = [s for s in self.upath.split("/") if s]
        if not segs:
            return False
        if segs[0] == "api":
            return True
        return segs[0] == "apis" and len(segs) > 1 and segs[1] in BUILTIN_GROUPS

    # -- main entry -------------------------------------------------------
    def dispatch(self):
        self.audit_id = secrets.token_hex(16)
        self.resp_code = 0
        self.resp_ctype = ""
        self.reset_rule = None
        self.resp_reset = False
        self.is_watch = False
        self.user = None
        self.verb = ""
        ctx = self.ctx
        u = urllib.parse.urlsplit(self.path)
        self.upath = urllib.parse.unquote(u.path)
        self.rawquery = u.query
        self.q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        control = self.upath.startswith("/_sim/") or self.upath == "/_sim"
        if ctx.faults.unreachable and not control:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        body = b""
        started = time.time()
        try:
            try:
                body = self.read_body()
            finally:
                self.req_body = body
            self.user = ctx.authenticate(self)
            if self.user is None:
                raise unauthorized()
            if control:
                return self.control()
            self.route()
        except ApiError as e:
            if e.code == 401 and control:
                pass
            self.respond_error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:          # a bug in kubesim: answer like a server panic, and say so
            import traceback
            traceback.print_exc()
            try:
                self.respond_error(internal_error("kubesim: %s" % e))
            except OSError:
                pass
        finally:
            if not control and not self.is_watch:
                self.log_request_entry(started)

    def log_request_entry(self, started):
        h = self.headers
        body_txt = None
        if self.req_body:
            try:
                body_txt = self.req_body[:65536].decode()
            except UnicodeDecodeError:
                body_txt = None
        self.ctx.log.add({
            "time": started, "method": self.command, "path": self.upath, "query": self.rawquery,
            "verb": self.verb, "status": self.resp_code, "content_type": self.resp_ctype,
            "request_content_type": h.get("Content-Type", ""), "accept": h.get("Accept", ""),
            "user_agent": h.get("User-Agent", ""), "user": self.user.name if self.user else "",
            "auth": self.user.method if self.user else "invalid",
            "kubectl_command": h.get("Kubectl-Command", ""), "body": body_txt, "watch": self.is_watch,
            "reset": self.resp_reset, "duration_ms": int((time.time() - started) * 1000)})

    # -- faults -------------------------------------------------------------
    def apply_faults(self):
        r = self.ctx.faults.pick(self.verb, self.upath, self.rawquery)
        if r is None:
            return
        if r.latency_ms:
            time.sleep(r.latency_ms / 1000.0)
        if r.status:
            code = int(r.status)
            ra = r.retry_after
            if code == 429 and r.body == "apf":
                self.respond(429, APF_BODY, "text/plain; charset=utf-8",
                             {"Retry-After": str(ra if ra is not None else 1), "X-Content-Type-Options": "nosniff"})
                raise _Answered()
            if code == 429:
                raise too_many_requests(r.message or "Too many requests, please try again later.",
                                        ra if ra is not None else 1)
            if code == 503:
                raise service_unavailable(r.message or "the server is currently unable to handle the request", ra)
            if code == 504:
                from .util import timeout_error
                raise timeout_error(r.message or "request did not complete within the allowed duration",
                                    ra if ra is not None else 1)
            e = internal_error(r.message or "injected fault") if code == 500 else ApiError(
                code, "InternalError", r.message or "injected fault")
            if ra is not None:
                e.headers["Retry-After"] = str(ra)
            raise e
        if r.reset:
            self.reset_rule = r

    # -- routing ------------------------------------------------------------
    def route(self):
        p = self.upath.rstrip("/") or "/"
        m = self.command
        ctx = self.ctx
        segs = [s for s in p.split("/") if s]
        # verb for faults and authorization
        self.verb = self.k8s_verb(segs)
        try:
            self.apply_faults()
        except _Answered:
            return
        if p in ("/healthz", "/livez", "/readyz"):
            return self.respond(200, b"ok", "text/plain; charset=utf-8")
        if p == "/version":
            return self.respond_json(200, json.dumps(ctx.version, separators=(",", ":")).encode())
        if self.user.method == "anonymous":
            raise forbidden_path(self.user.name, m.lower() if m != "GET" else "get", self.upath)
        if p == "/api" or p == "/apis":
            return self.discovery_root(p == "/api")
        if segs and segs[0] == "openapi":
            return self.openapi(segs)
        if len(segs) == 2 and segs[0] == "api" or len(segs) == 3 and segs[0] == "apis":
            gv = "/".join(segs[1:])
            blob = ctx.docs.resource_lists.get(gv)
            if blob is None or m != "GET":
                raise path_not_found()
            return self.respond_json(200, blob[0])
        if len(segs) == 2 and segs[0] == "apis":
            blob = ctx.docs.api_group.get(segs[1])
            if blob is None or m != "GET":
                raise path_not_found()
            return self.respond_json(200, blob[0])
        return self.resource(segs)

    def k8s_verb(self, segs):
        m = self.command
        parsed = self.parse_resource(segs, quiet=True)
        if parsed is None:
            return m.lower()
        rt, version, ns, name, sub = parsed
        if m == "GET":
            if name:
                return "get"
            return "watch" if self.q.get("watch") in ("true", "1") else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(m, m.lower())

    def discovery_root(self, core):
        """/api and /apis. The aggregated documents carry ETag, Vary and
        Cache-Control: public and answer 304 to a matching If-None-Match; the
        legacy ones (plain application/json) have no ETag, as the real server's."""
        ctx = self.ctx
        accept = self.headers.get("Accept", "")
        v = _accepts(accept, "apidiscovery.k8s.io", "APIGroupDiscoveryList")
        if v not in ("v2", "v2beta1"):
            body, _ = ctx.docs.legacy_api if core else ctx.docs.legacy_apis
            return self.respond(200, body, "application/json")
        body, etag = ctx.docs.agg[(v, core)]
        ctype = discovery.AGG_V2 if v == "v2" else discovery.AGG_V2B1
        hdr = {"Cache-Control": "public", "Etag": etag, "Vary": "Accept"}
        if self.headers.get("If-None-Match") == etag:
            return self.respond(304, b"", None, hdr)
        self.respond(200, body, ctype, hdr)

    def openapi(self, segs):
        """/openapi/v3 (JSON served as text/plain, as the real handler's) and
        one document per group-version: with the current ?hash= immutable
        for a year, with another hash a 301 to the current one, without a
        hash no-cache with its ETag."""
        ctx = self.ctx
        if segs == ["openapi", "v3"]:
            return self.respond(200, ctx.docs.openapi_root, "text/plain; charset=utf-8")
        if len(segs) >= 3 and segs[1] == "v3":
            key = "/".join(segs[2:])
            doc = ctx.docs.openapi_gv.get(key)
            if doc is not None:
                body, h = doc
                if "hash" in self.q and self.q["hash"] != h:
                    return self.respond(301, b"", "application/json",
                                        {"Location": "/openapi/v3/%s?hash=%s" % (key, h)})
                if self.headers.get("If-None-Match") == '"%s"' % h:
                    return self.respond(304, b"", None, {"Etag": '"%s"' % h})
                if "hash" not in self.q:
                    return self.respond(200, body, "application/json", {"Etag": '"%s"' % h})
                now = time.time()
                return self.respond(200, body, "application/json",
                                    {"Cache-Control": "public, immutable", "Etag": '"%s"' % h,
                                     "Expires": email.utils.formatdate(now + 365 * 86400, usegmt=True
                                                                       ).replace("GMT", "UTC"),
                                     "Last-Modified": email.utils.formatdate(ctx.started, usegmt=True),
                                     "Vary": "Accept"})
        raise path_not_found()

    # -- resources ------------------------------------------------------------
    def parse_resource(self, segs, quiet=False):
        """(rt, version, namespace, name, subresource) or None."""
        ctx = self.ctx
        if len(segs) >= 3 and segs[0] == "api" and segs[1] == "v1":
            group, version, rest = "", "v1", segs[2:]
        elif len(segs) >= 4 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            rt = ctx.cluster.lookup(group, version, rest[2])
            if rt is not None and rt.namespaced:
                ns = rest[1]
                rest = rest[2:]
        rt = ctx.cluster.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            return None
        name = rest[1] if len(rest) >= 2 else ""
        sub = rest[2] if len(rest) == 3 else ""
        if sub and not (sub == "status" and rt.status_sub.get(version)):
            return None
        return rt, version, ns, name, sub

    def options(self):
        q = self.q
        dry = q.get("dryRun", "")
        if dry and dry != "All":
            raise bad_request('dryRun: Unsupported value: "%s": supported values: "All"' % dry)
        force = q.get("force")
        fv = q.get("fieldValidation", "")
        if fv and fv not in ("Strict", "Warn", "Ignore"):
            raise bad_request('fieldValidation: Unsupported value: "%s": supported values: "Ignore", "Strict", '
                              '"Warn"' % fv)
        return Options(manager=q.get("fieldManager", ""), dry_run=dry == "All", field_validation=fv,
                       force=None if force is None else force in ("true", "1"))

    def authorize(self, rt, ns, name, sub):
        if self.user.admin:
            return
        if self.verb in READ_VERBS:
            return
        raise forbidden_resource(self.user.name, self.verb, rt.plural, rt.group, name, ns, sub)

    def resource(self, segs):
        ctx = self.ctx
        parsed = self.parse_resource(segs)
        if parsed is None:
            raise path_not_found()
        rt, version, ns, name, sub = parsed
        self.authorize(rt, ns, name, sub)
        c = ctx.cluster
        m = self.command
        if rt.namespaced and not ns and name:
            raise path_not_found()
        if m == "GET":
            if not name:
                if self.verb == "watch":
                    return self.watch(rt, version, ns)
                return self.list(rt, version, ns)
            rec = c.get(rt, ns, name)
            return self.send_objects(rt, version, [rec.versioned(rt, version)], single=True)
        if m == "POST":
            if name:
                raise method_not_supported(rt.plural, rt.group, "create")
            obj = self.decode_body(rt)
            code, out, warns = c.create(rt, version, ns, obj, self.options(), self.headers.get("User-Agent", ""))
            return self.send_objects(rt, version, [out], single=True, code=code, warnings=warns)
        if m == "PUT":
            if not name:
                raise method_not_supported(rt.plural, rt.group, "update")
            obj = self.decode_body(rt)
            code, out, warns = c.update(rt, version, ns, name, obj, self.options(),
                                        self.headers.get("User-Agent", ""), sub)
            return self.send_objects(rt, version, [out], single=True, code=code, warnings=warns)
        if m == "PATCH":
            if not name:
                raise method_not_supported(rt.plural, rt.group, "patch")
            code, out, warns = c.patch(rt, version, ns, name, self.headers.get("Content-Type", ""),
                                       self.req_body, self.options(), self.headers.get("User-Agent", ""), sub)
            return self.send_objects(rt, version, [out], single=True, code=code, warnings=warns)
        if m == "DELETE":
            opts = self.options()
            pre = None
            if self.req_body:
                do = parse_body_json(self.req_body)
                if isinstance(do, dict):
                    pre = do.get("preconditions")
                    if do.get("dryRun") == ["All"]:
                        opts.dry_run = True
            if not name:
                return self.delete_collection(rt, version, ns, opts)
            code, out = c.delete(rt, version, ns, name, opts, pre)
            if out.get("kind") == "Status":
                return self.respond_json(code, json.dumps(out, separators=(",", ":")).encode())
            return self.send_objects(rt, version, [out], single=True, code=code)
        raise method_not_supported(rt.plural, rt.group, m.lower())

    def decode_body(self, rt):
        """The object of a POST or PUT: JSON, or the protobuf kubectl sends for
        the built-in kinds (only Namespace is decoded: protobuf.py)."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == protobuf.CONTENT_TYPE:
            try:
                return protobuf.decode(self.req_body)[2]
            except (protobuf.DecodeError, KeyError, UnicodeDecodeError):
                pass
        return parse_body_json(self.req_body, rt.kind)

    def delete_collection(self, rt, version, ns, opts):
        c = self.ctx.cluster
        _, recs, _, _ = c.list(rt, version, ns, self.q.get("labelSelector", ""), self.q.get("fieldSelector", ""))
        items = []
        for r in recs:
            try:
                code, out = c.delete(rt, version, ns or r.obj["metadata"].get("namespace", ""),
                                     r.obj["metadata"]["name"], opts)
                items.append(r.versioned(rt, version))
            except ApiError:
                pass
        lst = {"apiVersion": rt.api_version(version), "kind": rt.list_kind,
               "metadata": {"resourceVersion": str(c.store.rv)}, "items": items}
        return self.respond_json(200, lst)

    def table_version(self):
        return _accepts(self.headers.get("Accept", ""), "meta.k8s.io", "Table")

    def send_objects(self, rt, version, objs, single=False, code=200, warnings=None):
        hdr = {}
        if warnings:
            hdr["Warning"] = ['299 - %s' % json.dumps(w) for w in warnings]
        tv = self.table_version()
        if tv in ("v1", "v1beta1") and single and code == 200 and self.command == "GET":
            t = discovery.table(rt, version, objs, time.time(),
                                rv=objs[0]["metadata"].get("resourceVersion"))
            t["apiVersion"] = "meta.k8s.io/" + tv
            return self.respond_json(200, t, hdr)
        return self.respond_json(code, objs[0], hdr)

    def list(self, rt, version, ns):
        c = self.ctx.cluster
        q = self.q
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise bad_request("limit: invalid value")
        if q.get("resourceVersionMatch") == "Exact" and (q.get("resourceVersion") or "").isdigit() and \
                0 < int(q["resourceVersion"]) < c.store.compacted:
            raise gone(LIST_EXPIRED)
        rv, recs, token, remaining = c.list(rt, version, ns, q.get("labelSelector", ""),
                                            q.get("fieldSelector", ""), limit, q.get("continue", ""))
        tv = self.table_version()
        if tv in ("v1", "v1beta1"):
            t = discovery.table(rt, version, [r.versioned(rt, version) for r in recs], time.time(), rv=rv,
                                cont=token, remaining=remaining)
            t["apiVersion"] = "meta.k8s.io/" + tv
            return self.respond_json(200, t)
        md = {"resourceVersion": str(rv)}
        if token or not rt.builtin:
            # a CRD's list is unstructured: its metadata.continue is always
            # there (empty on the last page), its keys sorted
            md["continue"] = token
        if remaining is not None:
            md["remainingItemCount"] = remaining
        if not rt.builtin:
            md = dict(sorted(md.items()))
        head = json.dumps({"apiVersion": rt.api_version(version), "items": None, "kind": rt.list_kind,
                           "metadata": md}, separators=(",", ":")).encode()
        items = b"[" + b",".join(r.json(rt, version, as_item=True) for r in recs) + b"]"
        body = head.replace(b'"items":null', b'"items":' + items, 1)
        return self.respond(200, body, "application/json")

    # -- watch ----------------------------------------------------------------
    def watch(self, rt, version, ns):
        from .store import parse_label_selector, parse_field_selector, matches, Rec
        c = self.ctx.cluster
        q = self.q
        lp = parse_label_selector(q.get("labelSelector", ""))
        fp = parse_field_selector(q.get("fieldSelector", ""), rt)
        rvs = q.get("resourceVersion", "")
        since = None
        initial_events = q.get("sendInitialEvents") in ("true", "1")
        if rvs and rvs != "0" and not initial_events:
            try:
                since = int(rvs)
            except ValueError:
                raise bad_request("invalid resource version: %s" % rvs)
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            raise bad_request("timeoutSeconds: invalid value")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        tv = self.table_version()
        table = tv in ("v1", "v1beta1")
        w, initial = c.store.open_watch(rt, ns, since)
        self.is_watch = True
        self.resp_code = 200
        self.resp_ctype = "application/json"
        started = time.time()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Audit-Id", self.audit_id)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        self.log_request_entry(started)
        self.close_connection = True
        first = [True]
        sent_bytes = [0]

        def chunk(data):
            if self.reset_rule is not None and sent_bytes[0] + len(data) > self.reset_rule.reset_after_bytes:
                cut = max(1, self.reset_rule.reset_after_bytes - sent_bytes[0])
                self.wfile.write(b"%x\r\n%s" % (len(data), data[:cut]))
                self.wfile.flush()
                self.reset_connection()
                raise _Answered()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            sent_bytes[0] += len(data)

        def event(etype, rec):
            if table:
                obj = rec.versioned(rt, version)
                t = discovery.table(rt, version, [obj], time.time(), rv=rec.rv, headers=first[0])
                t["apiVersion"] = "meta.k8s.io/" + tv
                first[0] = False
                data = b'{"type":"' + etype.encode() + b'","object":' + dumpb(t) + b"}\n"
            else:
                data = b'{"type":"' + etype.encode() + b'","object":' + rec.json(rt, version) + b"}\n"
            chunk(data)

        def bookmark(rv, annotations=None):
            o = {"kind": rt.kind, "apiVersion": rt.api_version(version),
                 "metadata": {"resourceVersion": str(rv), "creationTimestamp": None}}
            if not rt.builtin:
                # a CRD's bookmark is unstructured: no zero creationTimestamp
                o = {"apiVersion": rt.api_version(version), "kind": rt.kind,
                     "metadata": {"resourceVersion": str(rv)}}
            if annotations:
                o["metadata"]["annotations"] = annotations
            chunk(b'{"type":"BOOKMARK","object":' + json.dumps(o, separators=(",", ":")).encode() + b"}\n")

        try:
            if w is None:
                st = gone("too old resource version: %d (%d)" % (since, initial)).status()
                chunk(b'{"type":"ERROR","object":' + json.dumps(st, separators=(",", ":")).encode() + b"}\n")
                return self._end_chunks()
            last_rv = since if since is not None else c.store.rv
            # the watch cache sends a bookmark only once its resource moved past
            # the watch's start (an event of that resource, in any namespace),
            # with the resourceVersion of the resource's last event
            start_rv = type_rv = last_rv

            def key_of(obj):
                return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            # each object as the watch last saw it: one that stops matching the
            # selectors is DELETED with that content (and the event's
            # resourceVersion), as the watch cache sends it
            seen = {}
            unknown = set()
            with c.store.lock:
                _, cur = c.store.snapshot(rt, ns)
                for r in cur:
                    seen[key_of(r.obj)] = r.obj
                if since is not None:
                    # a replay starts from the objects as of since (the history
                    # has them unless they are older than it)
                    at = {}
                    for erv, rkey, etype, rec in c.store.events:
                        if rkey == rt.key and erv <= since:
                            at[key_of(rec.obj)] = None if etype == "DELETED" else rec.obj
                    firsts = set()
                    for etype, rec in initial:
                        k = key_of(rec.obj)
                        if k in firsts:
                            continue
                        firsts.add(k)
                        if k in at:
                            if at[k] is None:
                                seen.pop(k, None)
                            else:
                                seen[k] = at[k]
                        elif etype == "ADDED":
                            seen.pop(k, None)       # created after since
                        else:
                            unknown.add(k)
            matched = {k: matches(o, lp, fp) for k, o in seen.items()}

            def deliver(etype, rec):
                md = rec.obj["metadata"]
                if ns and md.get("namespace") != ns:
                    return
                key = key_of(rec.obj)
                now_m = matches(rec.obj, lp, fp)
                was = matched.get(key, False)
                before = seen.get(key)
                if etype == "DELETED":
                    matched.pop(key, None)
                    seen.pop(key, None)
                    if was or now_m:
                        event("DELETED", rec)
                    return
                matched[key] = now_m
                seen[key] = rec.obj
                if now_m and not was and etype == "MODIFIED":
                    event("ADDED", rec)
                elif now_m:
                    event(etype, rec)
                elif was:
                    if before is not None:
                        o = dict(before)
                        o["metadata"] = dict(before["metadata"], resourceVersion=str(rec.rv))
                        rec = Rec(o, rec.rv)
                    event("DELETED", rec)

            for etype, rec in initial:
                if since is None:
                    if (not ns or rec.obj["metadata"].get("namespace") == ns) and matches(rec.obj, lp, fp):
                        event("ADDED", rec)
                else:
                    if key_of(rec.obj) in unknown:
                        # last changed before the history began: assume it matched
                        unknown.discard(key_of(rec.obj))
                        matched[key_of(rec.obj)] = True
                        seen.pop(key_of(rec.obj), None)
                    deliver(etype, rec)
                    type_rv = max(type_rv, rec.rv)
                last_rv = max(last_rv, rec.rv)
            if (initial_events or since is None) and bookmarks:
                # after the initial events of a watch from "" or "0" (or with
                # sendInitialEvents): the initial-events-end bookmark
                # the end of the initial events (WatchList): a bookmark with
                # the k8s.io/initial-events-end annotation and the list's blueprint
                blueprint = {"apiVersion": rt.api_version(version), "items": [], "kind": rt.list_kind}
                bookmark(max(last_rv, c.store.rv), {
                    "k8s.io/initial-events-end": "true",
                    "kubernetes.io/initial-events-list-blueprint": base64.b64encode(
                        json.dumps(blueprint, separators=(",", ":")).encode() + b"\n").decode()})
            deadline = started + timeout
            next_bm = time.time() + self.ctx.bookmark_interval
            final_bm = deadline - 2 if timeout > 2 else None
            import queue as _q
            while not self.ctx.sim.stopping.is_set():
                nowt = time.time()
                if nowt >= deadline:
                    break
                wait = min(deadline, next_bm if bookmarks else deadline) - nowt
                if bookmarks and final_bm is not None and nowt < final_bm:
                    wait = min(wait, final_bm - nowt)
                try:
                    item = w.q.get(timeout=max(0.01, min(wait, 0.5)))
                except _q.Empty:
                    item = False
                if item is None:
                    break
                if item:
                    etype, rec = item
                    last_rv = max(last_rv, rec.rv)
                    type_rv = max(type_rv, rec.rv)
                    deliver(etype, rec)
                    continue
                nowt = time.time()
                if bookmarks and (nowt >= next_bm or (final_bm is not None and nowt >= final_bm)):
                    if type_rv > start_rv:
                        bookmark(type_rv)
                    next_bm = nowt + self.ctx.bookmark_interval
                    if final_bm is not None and nowt >= final_bm:
                        final_bm = None
                if self.ctx.faults.unreachable:
                    break
            self._end_chunks()
        except _Answered:
            pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        finally:
            c.store.close_watch(w) if w is not None else None

    def _end_chunks(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass

    # -- control API ------------------------------------------------------------
    def control(self):
        if not self.user.admin:
            raise forbidden_path(self.user.name, self.command.lower(), self.upath)
        sim = self.ctx.sim
        ctx = self.ctx
        target = self.q.get("cluster")
        if target:
            ctx = sim.clusters.get(target)
            if ctx is None:
                raise bad_request("no cluster %s" % target)
        segs = [s for s in self.upath.split("/") if s][1:]
        m = self.command
        body = None
        if self.req_body:
            try:
                body = json.loads(self.req_body)
            except ValueError as e:
                raise bad_request("control API body is not JSON: %s" % e)
        key = segs[0] if segs else ""
        if key == "requests":
            if m == "GET":
                since = int(self.q.get("since") or 0)
                items, last = ctx.log.since(since)
                return self.respond_json(200, {"items": items, "last": last})
            if m == "DELETE":
                return self.respond_json(200, {"last": ctx.log.clear()})
        elif key == "faults":
            if m == "GET":
                return self.respond_json(200, {"faults": ctx.faults.describe(),
                                               "unreachable": ctx.faults.unreachable})
            if m == "POST":
                if not isinstance(body, dict):
                    raise bad_request("expected a JSON object")
                if "unreachable" in body:
                    mode = body["unreachable"]
                    if mode not in ("refuse", "drop", None, False):
                        raise bad_request('unreachable must be "refuse" or "drop"')
                    self.respond_json(200, {"unreachable": mode or None})
                    self.wfile.flush()
                    if mode:
                        sim.set_unreachable(ctx, mode, body.get("duration_ms"))
                    else:
                        sim.restore(ctx)
                    return
                specs = body.get("faults") if "faults" in body else [body]
                rules = ctx.faults.add(specs)
                return self.respond_json(200, {"faults": [r.describe() for r in rules]})
            if m == "DELETE":
                if len(segs) == 2:
                    ok = ctx.faults.remove(int(segs[1]))
                    return self.respond_json(200 if ok else 404, {"removed": ok})
                ctx.faults.clear()
                if ctx.faults.unreachable:
                    sim.restore(ctx)
                return self.respond_json(200, {"faults": []})
        elif key == "operator" and m == "POST":
            if not isinstance(body, dict):
                raise bad_request("expected a JSON object")
            if "delay" in body:
                ctx.operator.delay = float(body["delay"])
            if "name" in body and "ignore" in body:
                ctx.operator.set_ignored(body.get("namespace", ""), body["name"], bool(body["ignore"]))
            elif "name" in body:
                ctx.operator.set_failure(body.get("namespace", ""), body["name"], body.get("fail"))
            return self.respond_json(200, {"delay": ctx.operator.delay,
                                           "failures": ["%s/%s" % k for k in ctx.operator.failures]})
        elif key == "tokens" and m == "POST":
            if not isinstance(body, dict) or body.get("expire") not in ("admin", "readonly", "exec"):
                raise bad_request('expected {"expire": "admin"|"readonly"|"exec", "rotate": bool}')
            kind = body["expire"]
            tok = ctx.expire(kind, bool(body.get("rotate", kind != "exec")))
            return self.respond_json(200, {"expired": kind, "token": tok})
        elif key == "objects" and m == "POST":
            if not isinstance(body, dict):
                raise bad_request("expected an object")
            av = body.get("apiVersion", "")
            g, v = av.split("/", 1) if "/" in av else ("", av)
            rt = next((r for r in ctx.cluster.registry if r.group == g and r.kind == body.get("kind")
                       and v in r.versions), None)
            if rt is None:
                raise bad_request("kind %s %s is not served" % (av, body.get("kind")))
            return self.respond_json(200, ctx.cluster.put_raw(rt, v, body))
        elif key == "compact" and m == "POST":
            return self.respond_json(200, {"compacted": ctx.cluster.store.compact()})
        elif key == "info" and m == "GET":
            return self.respond_json(200, {
                "cluster": ctx.name, "port": ctx.port, "resourceVersion": ctx.cluster.store.rv,
                "version": ctx.version["gitVersion"],
                "resources": ["%s/%s" % (rt.qualified, ",".join(rt.versions)) for rt in ctx.cluster.registry]})
        raise path_not_found()


class _Answered(Exception):
    """The response was already written (APF text, reset)."""
