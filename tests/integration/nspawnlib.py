#!/usr/bin/python3
"""Helpers for the real-systemd test (test_systemd_nspawn.py): a Debian 12
tree made by debootstrap and cached between runs, a throw-away copy of it per
run (an overlayfs upper layer, or a full copy where overlayfs is not
available), egressd installed into it with `cmake --install`, and the tree
booted with `systemd-nspawn --boot` so that systemd 252 is PID 1 of the
container. Commands run inside with nsenter.

    base = nspawnlib.base_tree(nspawnlib.packages_for(binary))
    with nspawnlib.Container(base) as ct:
        ct.install(build_dir)
        ct.boot()
        ct.run("systemctl", "start", "egressd")

The container shares the host's network (no --private-network), so servers
the test starts on 127.0.0.1 are reachable from inside. Everything the
Container started is stopped when its `with` block ends, when stop() is
called, or at interpreter exit (even after a failed assertion): the container
is powered off (killed when it does not stop in time), the overlay unmounted
and the copy removed. The cache itself is never written to after it is
complete.

Environment: EGRESSD_NSPAWN_CACHE overrides the cache directory
(default /var/cache/egressd-tests).
"""
import atexit
import fcntl
import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from netlib import wait_for  # noqa: F401 (nspawnlib.wait_for)

SUITE = "bookworm"
# What the tree needs besides egressd's own libraries (packages_for() adds
# those, found with ldd): systemd as PID 1, D-Bus for systemctl, git for an
# operator's checks, CA certificates as on a real host, and procps for the
# unit's ExecReload=/bin/kill (procps is Priority: important, so on every
# standard Debian system, but not in a minbase tree).
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "libgit2-1.5", "libyaml-0-2", "libcurl4",
                 "libssl3", "libsodium23", "ca-certificates", "git", "procps")
CACHE_ROOT = os.environ.get("EGRESSD_NSPAWN_CACHE", "/var/cache/egressd-tests")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "mount", "umount", "cmake", "ldd", "dpkg")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_live = set()
_live_lock = threading.Lock()


def _stop_all():
    with _live_lock:
        live = list(_live)
    for c in live:
        c.stop()


atexit.register(_stop_all)


def missing_tools():
    """The programs this library runs that are not installed."""
    return [t for t in TOOLS if shutil.which(t) is None]


def packages_for(binary):
    """BASE_PACKAGES plus the Debian packages of every shared library
    `binary` loads (ldd, then dpkg -S): a sanitizer build needs libasan8 and
    libubsan1 in the tree too. Sorted, so it can key the cache."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = sorted(set(re.findall(r"=> (/\S+)", out)))
    pkgs = set(BASE_PACKAGES)
    for lib in libs:
        owners = None
        for path in (os.path.realpath(lib), lib):
            r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if r.returncode == 0:
                owners = r.stdout
                break
        if owners is None:
            raise RuntimeError("%s needs %s, which no Debian package provides; the container "
                               "cannot run it" % (binary, lib))
        for line in owners.splitlines():
            # "libfoo1:amd64: /usr/lib/x86_64-linux-gnu/libfoo.so.1"
            pkgs.add(line.split(":", 1)[0].strip())
    return sorted(pkgs)


def debian_mirror():
    """The Debian archive the host's apt uses (deb822 .sources or one-line
    .list), else deb.debian.org."""
    files = glob.glob("/etc/apt/sources.list.d/*.sources")
    for path in files:
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith((" ", "#")):
                        k, v = line.split(":", 1)
                        fields[k.strip().lower()] = v.split()
                suites = fields.get("suites", [])
                if SUITE in suites and "main" in fields.get("components", []):
                    for uri in fields.get("uris", []):
                        if uri.rstrip("/").endswith("/debian"):
                            return uri.rstrip("/")
    for path in ["/etc/apt/sources.list"] + glob.glob("/etc/apt/sources.list.d/*.list"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 4 and parts[0] == "deb" and parts[2] == SUITE and "main" in parts[3:] \
                    and parts[1].rstrip("/").endswith("/debian"):
                return parts[1].rstrip("/")
    return DEFAULT_MIRROR


def base_tree(packages, timeout=900):
    """The cached Debian tree with `packages`, made by debootstrap on first
    use. The cache directory is keyed by the package list, built under a
    lock in a temporary directory and renamed into place only when complete,
    so an interrupted build is never used and concurrent runs wait for one
    another. debootstrap's output goes to <tree>.log. Returns the path."""
    key = hashlib.sha256(("%s\n%s\n" % (SUITE, "\n".join(sorted(packages)))).encode()).hexdigest()
    tree = os.path.join(CACHE_ROOT, "%s-nspawn-%s" % (SUITE, key[:16]))
    if os.path.exists(os.path.join(tree, ".egressd-complete")):
        return tree
    os.makedirs(CACHE_ROOT, exist_ok=True)
    with open(os.path.join(CACHE_ROOT, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(tree, ".egressd-complete")):
            return tree
        tmp = tempfile.mkdtemp(prefix=".build-", dir=CACHE_ROOT)
        mirror = debian_mirror()
        try:
            with open(tree + ".log", "w") as log:
                r = subprocess.run(["debootstrap", "--variant=minbase",
                                    "--include=" + ",".join(packages), SUITE, tmp, mirror],
                                   stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            if r.returncode != 0:
                with open(tree + ".log", errors="replace") as f:
                    raise RuntimeError("debootstrap of %s from %s failed (%d); the end of %s.log:\n%s"
                                       % (SUITE, mirror, r.returncode, tree, f.read()[-4000:]))
            # /etc/machine-id stays as debootstrap wrote it: an empty one
            # would make every boot a "first boot" that applies unit presets
            # (and would start egressd before the test configured it)
            with open(os.path.join(tmp, ".egressd-complete"), "w") as f:
                f.write("\n".join(packages) + "\n")
            if os.path.exists(tree):
                shutil.rmtree(tree)  # an incomplete leftover without the marker
            os.rename(tmp, tree)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return tree


def _container_init(nspawn_pid):
    """The PID (on the host) of the container's PID 1: a descendant of the
    nspawn process whose PID in its own namespace is 1."""
    children = {}
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            with open(status) as f:
                text = f.read()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s*(\d+)", text, re.M)
        nspid = re.search(r"^NSpid:\s*(.*)$", text, re.M)
        pid = int(status.split("/")[2])
        if ppid:
            children.setdefault(int(ppid.group(1)), []).append(
                (pid, nspid.group(1).split() if nspid else []))
    pending = [nspawn_pid]
    while pending:
        for pid, nspid in children.get(pending.pop(), []):
            if len(nspid) >= 2 and nspid[-1] == "1":
                return pid
            pending.append(pid)
    return None


class Container(object):
    """A throw-away copy of a cached tree, booted with systemd-nspawn."""

    def __init__(self, base, workdir=None):
        self.base = base
        self.dir = workdir or tempfile.mkdtemp(prefix="egressd-nspawn-")
        self.root = os.path.join(self.dir, "root")
        self.log_path = os.path.join(self.dir, "nspawn.log")
        self.overlay = False
        self.proc = None
        self.pid = None
        self._log = None
        self.name = "egressd-test-%d" % os.getpid()
        with _live_lock:
            _live.add(self)
        os.makedirs(self.root)
        self._prepare()

    def _prepare(self):
        """An overlayfs over the cached tree: instant and leaves the cache
        untouched. Where overlayfs cannot be mounted, a full copy."""
        upper, work = os.path.join(self.dir, "upper"), os.path.join(self.dir, "work")
        os.makedirs(upper)
        os.makedirs(work)
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            "lowerdir=%s,upperdir=%s,workdir=%s" % (self.base, upper, work),
                            self.root], capture_output=True, text=True)
        if r.returncode == 0:
            self.overlay = True
            return
        subprocess.run(["cp", "-a", "--reflink=auto", self.base + "/.", self.root], check=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def path(self, path):
        """The host path of `path` inside the container."""
        return os.path.join(self.root, path.lstrip("/"))

    def write(self, path, content, mode=0o644, uid=None, gid=None):
        full = self.path(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)
        os.chmod(full, mode)
        if uid is not None or gid is not None:
            os.chown(full, -1 if uid is None else uid, -1 if gid is None else gid)
        return full

    def install(self, build_dir, prefix="/usr"):
        """`cmake --install build_dir --prefix prefix` into the tree, as a
        package build would (DESTDIR)."""
        env = dict(os.environ, DESTDIR=self.root)
        r = subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix], env=env,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("cmake --install failed:\n%s%s" % (r.stdout, r.stderr))
        return r.stdout

    # -- life ---------------------------------------------------------------
    def boot(self, timeout=60):
        """Boot the tree; returns when systemd reports the system running (or
        degraded)."""
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--quiet",
             "--machine=" + self.name, "--console=read-only", "-D", self.root],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.pid is None:
            if self.proc.poll() is not None:
                raise RuntimeError("systemd-nspawn exited with %d:\n%s"
                                   % (self.proc.returncode, self.console()))
            if time.monotonic() > deadline:
                raise RuntimeError("the container's systemd did not appear:\n" + self.console())
            self.pid = _container_init(self.proc.pid)
            time.sleep(0.05)
        state = ""
        while time.monotonic() < deadline:
            r = self.run("systemctl", "is-system-running", check=False)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.2)
        raise RuntimeError("the container did not finish booting (state '%s'):\n%s"
                           % (state, self.console()))

    def console(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-8000:]
        except FileNotFoundError:
            return ""

    def run(self, *args, check=True, timeout=60, input=None, env=None):
        """Run a command inside the container (all its namespaces), with a
        clean environment. Returns subprocess.CompletedProcess (text)."""
        if self.pid is None:
            raise RuntimeError("the container is not running")
        e = ["PATH=" + CONTAINER_PATH, "LANG=C.UTF-8", "TERM=dumb", "SYSTEMD_PAGER=",
             "SYSTEMD_COLORS=0"]
        e += ["%s=%s" % kv for kv in (env or {}).items()]
        r = subprocess.run(["nsenter", "-t", str(self.pid), "-a", "env", "-i"] + e + list(args),
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("in the container: %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def stop(self, timeout=30):
        """Power off (kill on timeout), unmount, remove. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            if self.pid is not None:
                try:
                    self.run("systemctl", "poweroff", "--no-block", check=False, timeout=10)
                except (subprocess.TimeoutExpired, OSError):
                    pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # killing the container's PID 1 ends everything in its PID
                # namespace; nspawn then exits
                if self.pid is not None:
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.pid = None
        if self._log is not None and not self._log.closed:
            self._log.close()
        if self.overlay:
            r = subprocess.run(["umount", self.root], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.root], capture_output=True)
            self.overlay = False
        with _live_lock:
            _live.discard(self)
        if os.path.isdir(self.dir) and not os.path.ismount(self.root):
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc):
    """Kill a server started with start_new_session=True and its children."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
