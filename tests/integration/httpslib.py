#!/usr/bin/python3
"""HTTPS parts for the gitsrc fetch tests, on loopback: a test CA made with
openssl(1), a TLS front for the plain-HTTP lighttpd of gitlib (lighttpd here
has no TLS module), a redirecting server and a server that records what it is
sent (the Authorization header above all). Every server is stopped by the
test's cleanup."""
import http.server
import os
import socket
import ssl
import subprocess
import threading

from netlib import Listener

OPENSSL = "openssl"


def make_pki(d, hosts=("127.0.0.1", "127.0.0.2")):
    """A CA (ca.crt) and a server certificate and key for each of @hosts (IP
    addresses) under @d. Returns (ca, {host: (cert, key)}).

    The host is the certificate's CN and there is no subjectAltName: libgit2
    1.5 matches a CN against an IP address but not an IP subjectAltName."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(args):
        subprocess.run([OPENSSL] + args, cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    run(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
                                 "-subj", "/CN=egressd-test-ca",
                                 "-addext", "basicConstraints=critical,CA:TRUE",
                                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    certs = {}
    for h in hosts:
        run(["req", "-x509"] + ec + ["-keyout", h + ".key", "-out", h + ".crt", "-days", "30",
                                     "-subj", "/CN=" + h, "-CA", "ca.crt", "-CAkey", "ca.key",
                                     "-addext", "extendedKeyUsage=serverAuth",
                                     "-addext", "basicConstraints=critical,CA:FALSE"])
        certs[h] = (os.path.join(d, h + ".crt"), os.path.join(d, h + ".key"))
    return os.path.join(d, "ca.crt"), certs


def _server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class TlsFront(Listener):
    """TLS on @host:<port> in front of the plain HTTP server on 127.0.0.1:@backend.
    A request for /moved/<rest> is answered "301 Location: /basic/<rest>"
    (a redirect that stays on this origin); everything else is passed through."""

    def __init__(self, testcase, backend, cert, key, host="127.0.0.1"):
        self.backend = backend
        self.ctx = _server_context(cert, key)
        super().__init__(host)
        testcase.addCleanup(self.close)

    def serve(self, raw):
        try:
            c = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        up = None
        try:
            head = c.recv(65536)
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            if path.startswith(b"/moved/"):
                c.sendall(b"HTTP/1.1 301 Moved Permanently\r\nLocation: /basic/" + path[7:] +
                          b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            up = socket.create_connection(("127.0.0.1", self.backend))
            up.sendall(head)
            threading.Thread(target=self.pump, args=(up, c), daemon=True).start()
            self.pump(c, up)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()
            if up is not None:
                up.close()

    @staticmethod
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except (OSError, ssl.SSLError):
            pass


class _Server:
    """An http.server on @host (TLS when @cert is given) with @handler."""

    def __init__(self, testcase, handler, host, cert=None, key=None):
        self.srv = http.server.ThreadingHTTPServer((host, 0), handler)
        self.srv.daemon_threads = True
        self.srv.owner = self
        if cert:
            self.srv.socket = _server_context(cert, key).wrap_socket(self.srv.socket,
                                                                     server_side=True)
        self.host = host
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.stop)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(timeout=5)


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


class Recorder(_Server):
    """Records every request (method, path, headers) and answers 404."""

    def __init__(self, testcase, host, cert=None, key=None):
        self.requests = []

        class Handler(_Quiet):
            def do_GET(self):
                self.server.owner.requests.append((self.command, self.path, dict(self.headers)))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
            do_POST = do_GET
        super().__init__(testcase, Handler, host, cert, key)

    def authorizations(self):
        return [h.get("Authorization") for _, _, h in self.requests if "Authorization" in h]


class Redirector(_Server):
    """Answers every request with @status and Location @target + the request path."""

    def __init__(self, testcase, target, status=302, host="127.0.0.1", cert=None, key=None):
        self.requests = []

        class Handler(_Quiet):
            def do_GET(self):
                self.server.owner.requests.append((self.command, self.path, dict(self.headers)))
                self.send_response(status)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
            do_POST = do_GET
        super().__init__(testcase, Handler, host, cert, key)
