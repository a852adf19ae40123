#!/usr/bin/python3
"""Shared helpers for the gitsrc integration tests (test_gitsrc_*.py).

Real parts only, on loopback: repositories and signed commits made by git and
ssh-keygen, `git daemon` for git://, `git http-backend` behind lighttpd for
HTTP (basic auth by mod_auth, bearer tokens by a small CGI wrapper), OpenSSH
sshd for ssh://. Every server is started by a test and stopped by the test's
cleanup, even when the test fails.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

EGRESSD = os.environ.get("EGRESSD", "egressd")
GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited early with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


class GitTestCase(unittest.TestCase):
    """A temporary directory, an isolated git environment and helpers."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="egressd-gitsrc-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.env = dict(os.environ)
        self.env.update({
            "HOME": self.tmp, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
            "GIT_AUTHOR_NAME": "Alice Admin", "GIT_AUTHOR_EMAIL": "alice@example.com",
            "GIT_COMMITTER_NAME": "Alice Admin", "GIT_COMMITTER_EMAIL": "alice@example.com",
        })

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def run_cmd(self, args, check=True, input=None, cwd=None):
        p = subprocess.run(args, env=self.env, cwd=cwd, input=input, capture_output=True,
                           text=True, timeout=120)
        if check and p.returncode != 0:
            self.fail("%s failed (%d):\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def git(self, repo, *args, check=True, input=None):
        return self.run_cmd(["git", "-C", repo] + list(args), check=check, input=input)

    def rev(self, repo, rev="HEAD"):
        return self.git(repo, "rev-parse", rev).stdout.strip()

    def egressd(self, *args, check=None):
        p = self.run_cmd([EGRESSD] + list(args), check=False)
        if check is not None:
            self.assertEqual(p.returncode, check, "egressd %s:\n%s%s" % (" ".join(args), p.stdout, p.stderr))
        return p

    def keygen(self, name, kind="ed25519"):
        key = self.path(name)
        args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", key]
        if kind == "rsa":
            args[4:4] = ["-b", "2048"]
        self.run_cmd(args)
        return key

    def pubkey(self, key):
        with open(key + ".pub") as f:
            return " ".join(f.read().split()[:2])

    def init_repo(self, name="up", bare=False):
        repo = self.path(name)
        self.run_cmd(["git", "init", "-q", "-b", "main"] + (["--bare"] if bare else []) + [repo])
        return repo

    def commit(self, repo, message, key=None, files=None, when=None):
        for rel, content in (files or {}).items():
            full = os.path.join(repo, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(content)
            self.git(repo, "add", rel)
        args = []
        if key:
            args = ["-c", "gpg.format=ssh", "-c", "user.signingkey=" + key]
        args += ["commit", "-q", "--allow-empty", "-m", message]
        if key:
            args.append("-S")
        env_backup = dict(self.env)
        if when is not None:
            self.env["GIT_AUTHOR_DATE"] = self.env["GIT_COMMITTER_DATE"] = "%d +0000" % when
        try:
            self.git(repo, *args)
        finally:
            self.env = env_backup
        return self.rev(repo)

    def write(self, rel, content, mode=0o600):
        full = self.path(rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)
        os.chmod(full, mode)
        return full

    # --- servers ----------------------------------------------------------------

    def start(self, args, port, log=None, cwd=None):
        """Start a server; its process group is killed at cleanup."""
        out = open(log, "w") if log else subprocess.DEVNULL
        proc = subprocess.Popen(args, env=self.env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)

        def stop():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
            if log:
                out.close()
        self.addCleanup(stop)
        wait_port(port, proc)
        return proc

    def git_daemon(self, base):
        port = free_port()
        log = self.path("git-daemon.log")
        self.start(["git", "daemon", "--reuseaddr", "--verbose", "--export-all",
                    "--base-path=" + base, "--listen=127.0.0.1", "--port=%d" % port, base],
                   port, log=log)
        return port, log

    def lighttpd(self, base, users=None, token=None):
        """git http-backend for every repo under @base:
        /git/...     anonymous
        /basic/...   HTTP basic auth against @users {name: password}
        /bearer/...  "Authorization: Bearer <token>" checked by a CGI wrapper
        Returns (port, access log path, request log path); the access log
        is flushed by lighttpd every few seconds, the request log at once."""
        port = free_port()
        d = self.path("lighttpd")
        os.makedirs(d, exist_ok=True)
        userfile = os.path.join(d, "users")
        with open(userfile, "w") as f:
            for name, password in (users or {}).items():
                f.write("%s:%s\n" % (name, password))
        # every request that reaches git is logged by the CGI (lighttpd
        # buffers its access log for seconds; this log is written at once)
        requests = os.path.join(d, "requests.log")
        backend = os.path.join(d, "backend.cgi")
        with open(backend, "w") as f:
            f.write("#!/bin/sh\n"
                    "echo \"$REQUEST_METHOD $REQUEST_URI\" >> %s\n"
                    "exec %s\n" % (requests, GIT_HTTP_BACKEND))
        wrapper = os.path.join(d, "bearer.cgi")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    "if [ \"$HTTP_AUTHORIZATION\" != \"Bearer %s\" ]; then\n"
                    "  printf 'Status: 401 Unauthorized\\r\\nContent-Type: text/plain\\r\\n\\r\\nbad token\\n'\n"
                    "  exit 0\n"
                    "fi\n"
                    "exec %s\n" % (token or "-", backend))
        for cgi in (backend, wrapper):
            os.chmod(cgi, 0o755)
        access = os.path.join(d, "access.log")
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write("""
server.modules = ("mod_alias", "mod_setenv", "mod_cgi", "mod_auth", "mod_authn_file", "mod_accesslog")
server.document-root = "%(d)s"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(d)s/error.log"
accesslog.filename = "%(access)s"
accesslog.format = "%%r %%s"
setenv.set-environment = ("GIT_PROJECT_ROOT" => "%(base)s", "GIT_HTTP_EXPORT_ALL" => "1")
alias.url = ("/git/" => "%(backend)s/", "/basic/" => "%(backend)s/", "/bearer/" => "%(wrapper)s/")
cgi.assign = ("" => "")
auth.backend = "plain"
auth.backend.plain.userfile = "%(userfile)s"
auth.require = ("/basic/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
""" % {"d": d, "port": port, "access": access, "base": base, "backend": backend,
       "wrapper": wrapper, "userfile": userfile})
        self.start(["/usr/sbin/lighttpd", "-D", "-f", conf], port)
        return port, access, requests

    def sshd(self, authorized_pubkey):
        """sshd on loopback serving the filesystem to root with one authorized
        key. Returns (port, host public key path, log path)."""
        os.makedirs("/run/sshd", exist_ok=True)
        port = free_port()
        d = self.path("sshd")
        os.makedirs(d, mode=0o700, exist_ok=True)
        hostkey = os.path.join(d, "host_ed25519")
        self.run_cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey])
        auth = os.path.join(d, "authorized_keys")
        with open(auth, "w") as f:
            f.write(authorized_pubkey + "\n")
        os.chmod(auth, 0o600)
        conf = os.path.join(d, "sshd_config")
        with open(conf, "w") as f:
            f.write("""Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
""" % (port, hostkey, auth))
        log = os.path.join(d, "sshd.log")
        self.start(["/usr/sbin/sshd", "-D", "-e", "-f", conf], port, log=log)
        return port, hostkey + ".pub", log


class RogueServer:
    """A TCP server on loopback that either never answers (slow) or answers
    every connection with @reply and closes (garbage). Stopped at cleanup."""

    def __init__(self, testcase, reply=None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns = []
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.stop)

    def loop(self):
        deadline = time.monotonic() + 120  # bounded even if a test forgets to stop it
        while not self.stopping and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            if self.reply is None:
                self.conns.append(c)
            else:
                try:
                    c.settimeout(1)
                    try:
                        c.recv(65536)
                    except OSError:
                        pass
                    c.sendall(self.reply)
                finally:
                    c.close()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def count_lines(path, needle):
    try:
        with open(path, errors="replace") as f:
            return sum(1 for line in f if needle in line)
    except FileNotFoundError:
        return 0
