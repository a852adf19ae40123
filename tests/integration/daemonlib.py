"""Helpers for tests of the daemon (`egressd run`): a config repo made from
repo-layout/example with signed commits, the API-server emulator with the
Fleet's clusters, a ledger key, a host config, and a notify socket bound by
the test (what systemd would be), with the daemon's notify messages and log.

    with daemonlib.Daemon(clusters=["canary", "prod-eu", "prod-us"]) as d:
        d.start()
        d.wait_notify("READY=1")
        d.wait_status("in sync")
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import kubelib

SRC = kubelib.SOURCE_DIR
EXAMPLE = os.path.join(SRC, "repo-layout", "example")
NAMESPACES = ["smm-demo", "egress-system", "payments", "news", "ci", "analytics"]


class Daemon(object):
    def __init__(self, clusters=("canary", "prod-eu", "prod-us"), fleet=None, sim_args=(),
                 policy="all", extra_config="", bake="1s", drift="3s", poll="1s", sync_extra=""):
        self.tmp = tempfile.mkdtemp(prefix="egressd-daemon-")
        self.clusters = list(clusters)
        self.env = dict(os.environ)
        self.env.update({"HOME": self.tmp, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
                         "GIT_AUTHOR_NAME": "Alice Admin", "GIT_AUTHOR_EMAIL": "alice@example.com",
                         "GIT_COMMITTER_NAME": "Alice Admin",
                         "GIT_COMMITTER_EMAIL": "alice@example.com"})
        self.proc = None
        self.notes = []            # (monotonic time, message)
        self.notes_lock = threading.Lock()
        self.sim = kubelib.KubeSim(self.clusters, namespaces=NAMESPACES,
                                   args=["--operator-delay", "0.2"] + list(sim_args))
        # signing: alice's key is allowed, mallory's is not
        self.alice = self.keygen("alice")
        self.mallory = self.keygen("mallory")
        with open(self.path("allowed_signers"), "w") as f:
            f.write('alice@example.com namespaces="git" %s\n' % self.pubkey(self.alice))
        # the config repo
        self.repo = self.path("config-repo")
        self.run(["git", "init", "-q", "-b", "main", self.repo])
        shutil.copytree(EXAMPLE, self.repo, dirs_exist_ok=True)
        with open(os.path.join(self.repo, "fleet.yaml"), "w") as f:
            f.write(fleet if fleet else self.example_fleet(bake))
        self.commit("the example config repo")
        # the ledger key
        self.ledger_key = self.path("ledger_ed25519")
        self.run([kubelib.egressd_binary(), "keygen", "-f", self.ledger_key])
        self.state = self.path("state")
        self.runtime = self.path("run")
        self.metrics = self.path("metrics.prom")
        self.config = self.path("egressd.yaml")
        self.write_config(policy=policy, extra=extra_config, drift=drift, poll=poll,
                          sync_extra=sync_extra)
        self._open_notify()

    def _open_notify(self):
        """The notify socket (what systemd would be), read by a thread."""
        self.notify_path = self.path("notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.notify_path)
        self.sock.settimeout(0.2)
        self._stop_reader = False
        self.reader = threading.Thread(target=self._read_notes, daemon=True)
        self.reader.start()

    def example_fleet(self, bake):
        with open(os.path.join(EXAMPLE, "fleet.yaml")) as f:
            text = f.read()
        return re.sub(r"bake: \d+s", "bake: %s" % bake, text)

    # -- files and commands ---------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def run(self, args, cwd=None, check=True):
        p = subprocess.run(args, env=self.env, cwd=cwd, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(args), p.returncode, p.stdout,
                                                         p.stderr))
        return p

    def keygen(self, name):
        key = self.path(name)
        self.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key])
        return key

    def pubkey(self, key):
        with open(key + ".pub") as f:
            return " ".join(f.read().split()[:2])

    def write_config(self, policy="all", extra="", drift="3s", poll="1s", sync_extra=""):
        """@sync_extra: more lines of the sync block ("  watch: false\\n")."""
        text = ("repository:\n  url: file://%s\n  interval: %s\n"
                "verify:\n  policy: %s\n  allowedSigners: %s\n"
                "clusters:\n" % (self.repo, poll, policy, self.path("allowed_signers")))
        for c in self.clusters:
            text += "  - name: %s\n    kubeconfig: %s\n" % (c, self.sim.kubeconfig(c))
        text += ("sync:\n  driftInterval: %s\n  healthTimeout: 15s\n  unreachableTimeout: 6s\n"
                 "  requestTimeout: 5s\n" % drift) + sync_extra
        text += ("state:\n  dir: %s\n  runtimeDir: %s\n"
                 "ledger:\n  key: %s\n"
                 "metrics:\n  textfile: %s\n" % (self.state, self.runtime, self.ledger_key,
                                                 self.metrics))
        with open(self.config, "w") as f:
            f.write(text + extra)

    def commit(self, message, files=None, remove=(), key="alice"):
        for rel, content in (files or {}).items():
            full = os.path.join(self.repo, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(content)
        for rel in remove:
            os.remove(os.path.join(self.repo, rel))
        self.run(["git", "-C", self.repo, "add", "-A"])
        args = ["git", "-C", self.repo]
        if key:
            args += ["-c", "gpg.format=ssh", "-c", "user.signingkey=" + getattr(self, key)]
        args += ["commit", "-q", "--allow-empty", "-m", message] + (["-S"] if key else [])
        self.run(args)
        return self.run(["git", "-C", self.repo, "rev-parse", "HEAD"]).stdout.strip()

    # -- the daemon -----------------------------------------------------------
    def start(self, watchdog_usec=None, extra_env=None):
        env = dict(self.env)
        env["NOTIFY_SOCKET"] = self.notify_path
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        env.update(extra_env or {})
        self.log_path = self.path("daemon.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([kubelib.egressd_binary(), "run", "--config", self.config],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        return self.proc

    def kill(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def _read_notes(self):
        while not self._stop_reader:
            try:
                data = self.sock.recv(8192)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.notes_lock:
                self.notes.append((time.monotonic(), data.decode("utf-8", "replace")))

    def notifications(self):
        with self.notes_lock:
            return list(self.notes)

    def wait_notify(self, needle, timeout=30, since=0):
        """Wait for a notify message containing `needle`; returns its index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            notes = self.notifications()
            for i in range(since, len(notes)):
                if needle in notes[i][1]:
                    return i
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("egressd exited (%s) waiting for %r:\n%s"
                                     % (self.proc.returncode, needle, self.logs()))
            time.sleep(0.05)
        raise AssertionError("no notify message with %r in %ss; got %r\nlog:\n%s"
                             % (needle, timeout, [n[1] for n in self.notifications()][-10:], self.logs()))

    def status_lines(self):
        return [n[1][len("STATUS="):] for n in self.notifications() if n[1].startswith("STATUS=")]

    def wait_status(self, pattern, timeout=60):
        """Wait for a STATUS= line matching the regex `pattern`; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in reversed(self.status_lines()):
                if re.search(pattern, line):
                    return line
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("egressd exited waiting for status %r:\n%s"
                                     % (pattern, self.logs()))
            time.sleep(0.1)
        raise AssertionError("no STATUS matching %r in %ss; last: %r\nlog:\n%s"
                             % (pattern, timeout, self.status_lines()[-3:], self.logs()))

    def status(self):
        p = self.run([kubelib.egressd_binary(), "status", "-o", "json", "--runtime-dir",
                      self.runtime])
        return json.loads(p.stdout)

    def ledger(self):
        """Every record of the ledger, parsed."""
        with open(os.path.join(self.state, "ledger", "ledger.jsonl")) as f:
            return [json.loads(l) for l in f.read().splitlines() if l]

    def ledger_if_any(self):
        """The ledger's records, or [] while it does not exist yet."""
        try:
            return self.ledger()
        except (FileNotFoundError, ValueError):
            return []

    def close(self):
        self.stop()
        self._stop_reader = True
        self.sock.close()
        self.reader.join(2)
        self.sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Member(Daemon):
    """One more egressd on the same repository and clusters as @parent (a
    Daemon), with its own state, ledger key, notify socket and log, and a
    `coordination:` section (docs/ha.md). Closing it leaves the emulator to
    the parent."""

    def __init__(self, parent, identity, coordination, drift="1h", poll="1s"):
        self.parent = parent
        self.identity = identity
        self.tmp = parent.path("member-" + identity)
        os.makedirs(self.tmp)
        self.clusters = parent.clusters
        self.env = parent.env
        self.sim = parent.sim
        self.repo = parent.repo
        self.proc = None
        self.notes = []
        self.notes_lock = threading.Lock()
        shutil.copy(parent.path("allowed_signers"), self.path("allowed_signers"))
        self.ledger_key = self.path("ledger_ed25519")
        self.run([kubelib.egressd_binary(), "keygen", "-f", self.ledger_key])
        self.state = self.path("state")
        self.runtime = self.path("run")
        self.metrics = self.path("metrics.prom")
        self.config = self.path("egressd.yaml")
        self.write_config(drift=drift, poll=poll, extra=coordination)
        self._open_notify()

    def close(self):
        self.stop()
        self._stop_reader = True
        self.sock.close()
        self.reader.join(2)
