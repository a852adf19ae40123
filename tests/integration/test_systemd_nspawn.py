#!/usr/bin/python3
"""egressd under a real systemd: Debian 12 booted with systemd-nspawn,
egressd installed with `cmake --install` and started from the shipped unit
(systemd/egressd.service: Type=notify, watchdog, the egressd user, the
hardened sandbox), following a signed config repo served by `git daemon` on
the host's loopback and rolling it out to three kubesim clusters there.

What is asserted is what an operator sees: `systemctl status` (Active: and
the Status: line with the commit), the journal's structured fields, `egressd
status`, a new commit rolled out, `systemctl reload` with a good and a bad
host config, no watchdog kill, a clean `systemctl stop`, and a ledger that
verifies afterwards.

Needs root, debootstrap, systemd-nspawn (Debian systemd-container) and
network access to a Debian mirror the first time (the tree is cached in
/var/cache/egressd-tests, see nspawnlib.py). Without root, or with a
prerequisite missing, the test is skipped, unless CI is set: then it fails.
The tests run in order on one container, each from the state the previous
one left.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import gitlib
import kubelib
import nspawnlib

SRC = kubelib.SOURCE_DIR
EXAMPLE = os.path.join(SRC, "repo-layout", "example")
CLUSTERS = ["canary", "prod-eu", "prod-us"]
NAMESPACES = ["smm-demo", "egress-system", "payments", "news", "ci", "analytics"]
CONFIG = "/etc/egressd/egressd.yaml"
SIGNER = "alice@example.com"

GOOD_CONFIG = """\
repository:
  url: git://localhost:%(port)d/config.git
  interval: 1s
  timeout: 20s
verify:
  policy: all
  allowedSigners: allowed_signers
clusters:
%(clusters)s
sync:
  driftInterval: %(drift)s
  healthTimeout: 60s
ledger:
  key: ledger_ed25519
  origin: egressd/nspawn-test
metrics:
  textfile: %(textfile)s
"""

# The node-exporter textfile directory of Debian's prometheus-node-exporter:
# outside the sandbox's writable paths, so it needs the drop-in of
# docs/systemd.md ("Metrics").
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
METRICS_DROPIN = """\
[Service]
ReadWritePaths=%s
""" % TEXTFILE_DIR

# prod-us gets its token from an exec credential plugin (docs/systemd.md)
EXEC_CLUSTER = "prod-us"
EXEC_PLUGIN = "/usr/local/libexec/egressd-test-credential"
EXEC_PLUGIN_SCRIPT = """\
#!/bin/sh
set -eu
mkdir -p "$HOME/.cache/egressd-test-credential"
echo "$(id -un) $KUBERNETES_EXEC_INFO" >> "$HOME/.cache/egressd-test-credential/runs"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
printf '"status":{"token":"%%s"}}\\n' "$(cat /etc/egressd/kube/%(cluster)s.token)"
"""

EXTRA_INTENT = """\
apiVersion: egressd.io/v1
kind: EgressIntent
metadata:
  name: example-org
  namespace: news
spec:
  gateway: egress-system/egress-shared
  hosts: [www.example.org]
  ports:
    - {number: 443, protocol: TLS}
"""


def prerequisite_problem():
    if os.geteuid() != 0:
        return "needs root (debootstrap, mount, systemd-nspawn, nsenter)"
    missing = nspawnlib.missing_tools()
    if missing:
        return ("missing %s (apt-get install debootstrap systemd-container)"
                % ", ".join(missing))
    for var in ("EGRESSD", "EGRESSD_BUILD_DIR"):
        if not os.environ.get(var):
            return "%s is not set (run the test through ctest)" % var
    if shutil.which("ssh-keygen") is None or shutil.which("git") is None:
        return "missing ssh-keygen or git on the host"
    return None


class SystemdNspawnTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        problem = prerequisite_problem()
        if problem:
            if os.environ.get("CI"):
                raise AssertionError("CI is set, so this test must run, but it " + problem)
            raise unittest.SkipTest(problem)
        cls.tmp = tempfile.mkdtemp(prefix="egressd-systemd-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.env = dict(os.environ, HOME=cls.tmp, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C",
                       GIT_AUTHOR_NAME="Alice Admin", GIT_AUTHOR_EMAIL=SIGNER,
                       GIT_COMMITTER_NAME="Alice Admin", GIT_COMMITTER_EMAIL=SIGNER)

        # the tree (cached), its throw-away copy, egressd installed into it
        packages = nspawnlib.packages_for(os.environ["EGRESSD"])
        base = nspawnlib.base_tree(packages)
        cls.sanitized = any(p.startswith("libasan") for p in packages)
        cls.ct = nspawnlib.Container(base)
        cls.addClassCleanup(cls.ct.stop)
        cls.ct.install(os.environ["EGRESSD_BUILD_DIR"])

        # the clusters and the config repo, on the host's loopback
        cls.sim = kubelib.KubeSim(CLUSTERS, namespaces=NAMESPACES,
                                  args=["--operator-delay", "0.2"])
        cls.addClassCleanup(cls.sim.stop)
        cls.make_repo()
        cls.git_port = nspawnlib.free_port()
        cls.git_daemon = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--base-path=" + cls.path("srv"),
             "--listen=127.0.0.1", "--port=%d" % cls.git_port, cls.path("srv")],
            env=cls.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        cls.addClassCleanup(nspawnlib.stop_process_group, cls.git_daemon)
        gitlib.wait_port(cls.git_port, cls.git_daemon)

        # boot, create the egressd user as a package's postinst would, and
        # configure the host as docs/systemd.md says
        cls.ct.boot()
        cls.ct.run("systemd-sysusers")
        cls.uid, cls.gid = cls.ids("egressd")
        cls.configure()
        cls.start_service()

    # -- setup helpers --------------------------------------------------------
    @classmethod
    def path(cls, *parts):
        return os.path.join(cls.tmp, *parts)

    @classmethod
    def host(cls, *args, cwd=None):
        r = subprocess.run(list(args), env=cls.env, cwd=cwd, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("%s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                         r.stderr))
        return r.stdout

    @classmethod
    def make_repo(cls):
        """A bare repo served by git daemon, the example config repo with
        short bake times committed to it, signed by alice."""
        cls.key = cls.path("alice")
        cls.host("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", SIGNER, "-f", cls.key)
        os.makedirs(cls.path("srv"))
        cls.host("git", "init", "-q", "--bare", "-b", "main", cls.path("srv", "config.git"))
        cls.work = cls.path("work")
        shutil.copytree(EXAMPLE, cls.work)
        fleet = os.path.join(cls.work, "fleet.yaml")
        with open(fleet) as f:
            text = f.read()
        text, n = re.subn(r"bake: \d+s", "bake: 1s", text)
        assert n == 2, "the example Fleet changed: %d bake lines" % n
        with open(fleet, "w") as f:
            f.write(text)
        cls.host("git", "init", "-q", "-b", "main", cls.work)
        cls.host("git", "-C", cls.work, "remote", "add", "origin", cls.path("srv", "config.git"))
        cls.commit1 = cls.commit("The example fleet, baking 1s")

    @classmethod
    def commit(cls, message):
        cls.host("git", "-C", cls.work, "add", "-A")
        cls.host("git", "-C", cls.work, "-c", "gpg.format=ssh", "-c", "user.signingkey=" + cls.key,
                 "commit", "-q", "-S", "-m", message)
        cls.host("git", "-C", cls.work, "push", "-q", "origin", "main")
        return cls.host("git", "-C", cls.work, "rev-parse", "HEAD").strip()

    @classmethod
    def ids(cls, name):
        with open(cls.ct.path("/etc/passwd")) as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == name:
                    return int(fields[2]), int(fields[3])
        raise AssertionError("systemd-sysusers did not create the user %s" % name)

    @classmethod
    def host_config(cls, drift="5s"):
        clusters = "".join("  - name: %s\n    kubeconfig: kube/%s.kubeconfig\n" % (c, c)
                           for c in CLUSTERS)
        return GOOD_CONFIG % {"port": cls.git_port, "clusters": clusters.rstrip("\n"),
                              "drift": drift, "textfile": TEXTFILE_DIR + "/egressd.prom"}

    @classmethod
    def write_secret(cls, path, text):
        """root:egressd 0640, as docs/systemd.md asks for secret files."""
        cls.ct.write(path, text, mode=0o640, uid=0, gid=cls.gid)

    @classmethod
    def configure(cls):
        ct = cls.ct
        # a Debian installer writes /etc/hosts; the repo URL names localhost
        # so that name resolution runs inside the sandbox
        ct.write("/etc/hosts", "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
        os.makedirs(ct.path("/etc/egressd/kube"), exist_ok=True)
        shutil.copy(cls.sim.path("ca.crt"), ct.path("/etc/egressd/kube/ca.crt"))
        os.chmod(ct.path("/etc/egressd/kube/ca.crt"), 0o644)
        for c in CLUSTERS:
            user = {"token": cls.sim.token(c)}
            if c == EXEC_CLUSTER:
                # an exec credential plugin, run by the daemon inside its
                # sandbox; it caches under $HOME as real plugins do
                cls.write_secret("/etc/egressd/kube/%s.token" % c, cls.sim.token(c) + "\n")
                ct.write(EXEC_PLUGIN, EXEC_PLUGIN_SCRIPT % {"cluster": c}, mode=0o755)
                user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                 "command": EXEC_PLUGIN, "interactiveMode": "Never"}}
            cls.write_secret("/etc/egressd/kube/%s.kubeconfig" % c, kubelib.kubeconfig_text(
                cls.sim.servers[c], ca="/etc/egressd/kube/ca.crt", user=user, name=c))
        with open(cls.key + ".pub") as f:
            pub = " ".join(f.read().split()[:2])
        ct.write("/etc/egressd/allowed_signers", '%s namespaces="git" %s\n' % (SIGNER, pub))
        cls.write_secret(CONFIG, cls.host_config())
        # the metrics textfile: a directory the egressd group may write to,
        # and the drop-in that opens it in the sandbox
        ct.run("install", "-d", "-o", "root", "-g", "egressd", "-m", "0775", TEXTFILE_DIR)
        ct.write("/etc/systemd/system/egressd.service.d/metrics.conf", METRICS_DROPIN)
        if cls.sanitized:
            # LeakSanitizer stops the world with ptrace at exit, which the
            # sandbox forbids (and should): it would turn every clean stop
            # into exit 1. Leaks are the unit tests' job under ASan; memory
            # errors still abort the daemon here.
            ct.write("/etc/systemd/system/egressd.service.d/sanitizer.conf",
                     "[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n")
        ct.run("egressd", "keygen", "-f", "/etc/egressd/ledger_ed25519", "-C", "ledger@nspawn-test")
        ct.run("chgrp", "egressd", "/etc/egressd/ledger_ed25519")
        ct.run("chmod", "0640", "/etc/egressd/ledger_ed25519")

    @classmethod
    def start_service(cls):
        # as an operator does; enabled, the unit also stays loaded after a
        # stop, so its Result= and exit status can be read then
        r = cls.ct.run("systemctl", "enable", "--now", "egressd", check=False, timeout=120)
        if r.returncode != 0:
            raise AssertionError("systemctl enable --now egressd failed:\n%s%s\n%s\n%s" % (
                r.stdout, r.stderr,
                cls.ct.run("systemctl", "status", "egressd", "--no-pager", check=False).stdout,
                cls.ct.run("journalctl", "-u", "egressd", "--no-pager", check=False).stdout))
        cls.main_pid = int(cls.show("MainPID"))
        cls.watchdog_at_start = int(cls.show("WatchdogTimestampMonotonic"))

    # -- what the operator runs ----------------------------------------------
    @classmethod
    def show(cls, prop):
        return cls.ct.run("systemctl", "show", "-p", prop, "--value", "egressd").stdout.strip()

    def status_text(self):
        return self.show("StatusText")

    def journal(self, unit=True):
        """The unit's journal entries (dicts, as journalctl -o json)."""
        args = ["journalctl", "-o", "json", "--no-pager"] + (["-u", "egressd"] if unit else ["-b"])
        out = self.ct.run(*args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def messages(self, needle):
        return [e for e in self.journal() if needle in str(e.get("MESSAGE", ""))]

    def wait_in_sync(self, commit, timeout=90, signer=True):
        want = "in sync: 3/3 clusters at %s" % commit[:7]
        if signer:
            want += " (verified: %s)" % SIGNER
        try:
            nspawnlib.wait_for("Status: %s" % want, lambda: self.status_text().startswith(want),
                               timeout)
        except AssertionError as e:
            self.fail("%s\n%s" % (e, self.diagnostics()))

    def diagnostics(self):
        return "%s\n%s" % (
            self.ct.run("systemctl", "status", "egressd", "--no-pager", "-n", "40",
                        check=False).stdout,
            self.ct.run("egressd", "status", check=False).stdout)

    # -- the tests ------------------------------------------------------------
    def test_1_systemctl_status_shows_running_and_the_commit(self):
        self.wait_in_sync(self.commit1)
        st = self.ct.run("systemctl", "status", "egressd", "--no-pager", check=False)
        self.assertEqual(st.returncode, 0, st.stdout)
        self.assertRegex(st.stdout, r"\n\s+Active: active \(running\) since ")
        self.assertRegex(st.stdout, r'\n\s+Status: "in sync: 3/3 clusters at %s \(verified: %s\), '
                                    r'0 drift corrected, checked \d+s ago"'
                         % (self.commit1[:7], re.escape(SIGNER)))
        self.assertIn("Main PID: %d (egressd)" % self.main_pid, st.stdout)
        # it runs as the egressd user, with no capabilities (MainPID is a PID
        # of the container's namespace)
        proc = self.ct.run("cat", "/proc/%d/status" % self.main_pid).stdout
        self.assertRegex(proc, r"\nUid:\t%d\t%d\t%d\t%d\n" % ((self.uid,) * 4))
        self.assertRegex(proc, r"\nCapEff:\t0+\n")
        self.assertRegex(proc, r"\nNoNewPrivs:\t1\n")
        self.assertRegex(proc, r"\nSeccomp:\t2\n")
        # systemd made the directories the daemon owns (StateDirectory=,
        # RuntimeDirectory= with their modes); the daemon made the ledger's
        for d, mode in (("/var/lib/egressd", "750"), ("/run/egressd", "750"),
                        ("/var/lib/egressd/ledger", "700")):
            self.assertEqual(self.ct.run("stat", "-c", "%U:%G %a", d).stdout,
                             "egressd:egressd %s\n" % mode, d)
        # the exec plugin ran as egressd, with a writable $HOME (the state
        # directory, from sysusers.d)
        runs = self.ct.run("cat", "/var/lib/egressd/.cache/egressd-test-credential/runs").stdout
        self.assertRegex(runs, r"^egressd \{.*\"kind\":\"ExecCredential\"")
        # the metrics textfile, through the drop-in's ReadWritePaths=
        prom = nspawnlib.wait_for("the metrics textfile", lambda: self.ct.run(
            "cat", TEXTFILE_DIR + "/egressd.prom", check=False).stdout, 15)
        self.assertRegex(prom, r'\negressd_target_info\{commit="%s"\} 1\n' % self.commit1)
        # what the loaded unit scores under the real manager
        sec = self.ct.run("systemd-analyze", "security", "egressd", "--no-pager", check=False)
        m = re.search(r"Overall exposure level for egressd.service: (\d+\.\d)", sec.stdout)
        self.assertIsNotNone(m, sec.stdout + sec.stderr)
        self.assertLessEqual(float(m.group(1)), 1.5, sec.stdout)

    def test_2_journal_carries_cluster_and_commit_fields(self):
        entries = self.journal()
        applied = [e for e in entries
                   if str(e.get("MESSAGE", "")).startswith("applied %s: " % self.commit1[:12])]
        self.assertEqual(sorted(e.get("CLUSTER") for e in applied), CLUSTERS,
                         [e.get("MESSAGE") for e in entries])
        for e in applied:
            self.assertEqual(e["COMMIT"], self.commit1)
            self.assertEqual(e["SYSLOG_IDENTIFIER"], "egressd")
            self.assertEqual(e["PRIORITY"], "6")
            self.assertEqual(e["_UID"], str(self.uid))
            self.assertEqual(e["_SYSTEMD_UNIT"], "egressd.service")
            self.assertRegex(e["MESSAGE"], r"^applied [0-9a-f]{12}: \d+ created, 0 updated, "
                                           r"0 deleted, 0 unchanged; healthy")
        rolling = [e for e in entries if str(e.get("MESSAGE", "")).startswith("rolling out %s"
                                                                             % self.commit1[:12])]
        self.assertEqual(len(rolling), 1)
        self.assertEqual(rolling[0]["COMMIT"], self.commit1)
        self.assertNotIn("CLUSTER", rolling[0])
        self.assertIn("(signed by %s)" % SIGNER, rolling[0]["MESSAGE"])

    def status_rows(self):
        st = self.ct.run("egressd", "status")
        rows = {}
        lines = st.stdout.splitlines()
        header = [i for i, line in enumerate(lines) if line.startswith("CLUSTER ")]
        self.assertEqual(len(header), 1, st.stdout)
        for line in lines[header[0] + 1:]:
            f = line.split()
            rows[f[0]] = f
        return st.stdout, rows

    def test_3_egressd_status_shows_every_cluster_done(self):
        out, rows = self.status_rows()
        self.assertRegex(out, r"^egressd \S+ \(pid %d\), running\n" % self.main_pid)
        self.assertRegex(out, r"\ntarget\s+%s \"The example fleet, baking 1s\", verified: %s "
                              r"SHA256:[A-Za-z0-9+/]{43}\n" % (self.commit1[:7], re.escape(SIGNER)))
        self.assertEqual(sorted(rows), CLUSTERS, out)
        for c in CLUSTERS:
            # CLUSTER WAVE PHASE APPLIED HEALTH ...
            self.assertEqual(rows[c][2:5], ["done", self.commit1[:7], "healthy"], out)
        self.assertEqual(rows["canary"][1], "canary")
        self.assertEqual(rows["prod-eu"][1], "prod")

    def test_4_a_new_commit_is_rolled_out(self):
        with open(os.path.join(self.work, "intents", "example-org.yaml"), "w") as f:
            f.write(EXTRA_INTENT)
        commit2 = self.commit("news may reach www.example.org")
        type(self).commit2 = commit2
        self.wait_in_sync(commit2)
        _, rows = self.status_rows()
        for c in CLUSTERS:
            self.assertEqual(rows[c][2:4], ["done", commit2[:7]])
            st, out = self.sim.request("GET", "/apis/networking.istio.io/v1/namespaces/news/"
                                              "serviceentries", cluster=c)
            self.assertEqual(st, 200, out)
            hosts = [h for item in out["items"] for h in item["spec"].get("hosts", [])]
            self.assertIn("www.example.org", hosts, c)
        rolled = self.messages("rolling out %s" % commit2[:12])
        self.assertEqual(len(rolled), 1)
        self.assertEqual(int(self.show("MainPID")), self.main_pid)

    def reload(self):
        r = self.ct.run("systemctl", "reload", "egressd", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_5_reload_with_a_good_config_keeps_running(self):
        before = len(self.messages("reloaded %s: 3 clusters" % CONFIG))
        self.write_secret(CONFIG, self.host_config(drift="7s"))
        self.reload()
        # ExecReload= only sends SIGHUP: the reload itself is asynchronous
        nspawnlib.wait_for("the journal to say reloaded",
                           lambda: len(self.messages("reloaded %s: 3 clusters" % CONFIG)) > before,
                           30)
        self.assertEqual(self.show("ActiveState"), "active")
        self.assertEqual(self.show("SubState"), "running")
        self.assertEqual(int(self.show("MainPID")), self.main_pid)
        self.assertEqual(self.messages("reload refused"), [])

    def test_6_reload_with_a_bad_config_is_refused_and_keeps_running(self):
        self.write_secret(CONFIG, self.host_config().replace("policy: all", "policy: sometimes"))
        try:
            self.reload()
            refused = nspawnlib.wait_for("the journal to say reload refused",
                                         lambda: self.messages("reload refused"), 30)
            self.assertEqual(refused[0]["MESSAGE"], "reload refused: %s is invalid; the running "
                                                    "configuration stays" % CONFIG)
            self.assertEqual(refused[0]["PRIORITY"], "3")
            problem = self.messages("verify.policy: 'sometimes'")
            self.assertEqual([p["MESSAGE"] for p in problem],
                             ["%s:6:11: error: verify.policy: 'sometimes' is not one of none, head, "
                              "all" % CONFIG])
            self.assertEqual(self.show("ActiveState"), "active")
            self.assertEqual(self.show("SubState"), "running")
            self.assertEqual(int(self.show("MainPID")), self.main_pid)
            self.assertTrue(self.status_text().startswith(
                "in sync: 3/3 clusters at %s" % self.commit2[:7]), self.status_text())
        finally:
            self.write_secret(CONFIG, self.host_config(drift="7s"))

    def test_7_the_watchdog_is_fed_and_never_fires(self):
        self.assertEqual(self.show("WatchdogUSec"), "30s")
        # systemd records when each WATCHDOG=1 arrives: two consecutive pings
        # are half the interval apart (they come from the main loop, which
        # this shows is turning)
        first = int(self.show("WatchdogTimestampMonotonic"))
        self.assertGreaterEqual(first, self.watchdog_at_start)
        second = nspawnlib.wait_for("the next watchdog ping",
                                    lambda: max(int(self.show("WatchdogTimestampMonotonic")) - first, 0),
                                    20, interval=0.2) + first
        self.assertGreaterEqual(second - first, 14_500_000)
        self.assertLessEqual(second - first, 16_500_000)
        boot = [str(e.get("MESSAGE", "")) for e in self.journal(unit=False)]
        self.assertEqual([m for m in boot if "Watchdog timeout" in m or "egressd.service: Watchdog" in m],
                         [])
        self.assertEqual(self.show("NRestarts"), "0")
        self.assertEqual(int(self.show("MainPID")), self.main_pid)

    def test_8_stop_is_clean_and_the_ledger_verifies(self):
        r = self.ct.run("systemctl", "stop", "egressd", check=False, timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.show("ActiveState"), "inactive")
        self.assertEqual(self.show("Result"), "success")
        self.assertEqual(self.show("ExecMainCode"), "1")  # CLD_EXITED
        self.assertEqual(self.show("ExecMainStatus"), "0")
        self.assertEqual(self.show("UnitFileState"), "enabled")
        manager = [str(e.get("MESSAGE", "")) for e in self.journal() if e.get("_PID") == "1"]
        self.assertIn("egressd.service: Deactivated successfully.", manager)
        self.assertEqual([m for m in manager if "Failed" in m or "failed" in m], [])
        last = [str(e.get("MESSAGE", "")) for e in self.journal()
                if e.get("_PID") == str(self.main_pid)]
        self.assertEqual(last[-1], "stopped", last[-5:])
        self.assertTrue(any(m.startswith("stopping (signal 15)") for m in last), last[-5:])
        # RuntimeDirectory= is removed on stop; the state stays
        self.assertFalse(os.path.exists(self.ct.path("/run/egressd")))
        v = self.ct.run("egressd", "ledger", "verify", "--dir", "/var/lib/egressd/ledger",
                        "--pubkey", "/etc/egressd/ledger_ed25519.pub", check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertRegex(v.stdout, r"\nverified: \d+ records, signed checkpoint of size \d+ by "
                                   r"SHA256:")
        # every cluster's apply of each commit: an intent and its "ok" result
        show = self.ct.run("egressd", "ledger", "show", "--dir", "/var/lib/egressd/ledger", "-o",
                           "json")
        records = json.loads(show.stdout)
        results = {r["intent"]: r for r in records if r["type"] == "apply-result"}
        for commit in (self.commit1, self.commit2):
            intents = [r for r in records if r["type"] == "apply-intent" and r["commit"] == commit]
            self.assertEqual(sorted(r["cluster"] for r in intents), CLUSTERS, commit)
            for r in intents:
                self.assertEqual(r["repo"], "git://localhost:%d/config.git" % self.git_port)
                self.assertEqual(r["signer"]["principal"], SIGNER)
                self.assertEqual(results[r["index"]]["outcome"], "ok", r)


    def test_9_ledger_key_as_a_credential(self):
        # docs/systemd.md: the key root-only on disk, handed over with
        # LoadCredential=; the ledger and the rollout state carry over
        self.ct.run("chown", "root:root", "/etc/egressd/ledger_ed25519")
        self.ct.run("chmod", "0600", "/etc/egressd/ledger_ed25519")
        self.ct.write("/etc/systemd/system/egressd.service.d/credential.conf",
                      "[Service]\nLoadCredential=ledger-key:/etc/egressd/ledger_ed25519\n")
        self.write_secret(CONFIG, self.host_config().replace(
            "  key: ledger_ed25519\n", "  key: /run/credentials/egressd.service/ledger-key\n"))
        self.ct.run("systemctl", "daemon-reload")
        r = self.ct.run("systemctl", "start", "egressd", check=False, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.diagnostics())
        pid = int(self.show("MainPID"))
        self.assertNotEqual(pid, self.main_pid)
        # the signer of the commit in force survives the restart (state.json)
        self.wait_in_sync(self.commit2)
        cred = self.ct.run("stat", "-c", "%U %a", "/run/credentials/egressd.service/ledger-key")
        self.assertEqual(cred.stdout, "egressd 400\n")
        opened = [str(e.get("MESSAGE", "")) for e in self.journal() if e.get("_PID") == str(pid)]
        self.assertEqual(len([m for m in opened if re.match(r"^ledger /var/lib/egressd/ledger: "
                                                            r"\d+ records$", m)]), 1, opened[:5])
        self.assertEqual([m for m in opened if "rolling out" in m], [], opened)
        r = self.ct.run("systemctl", "stop", "egressd", check=False, timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.show("Result"), "success")
        v = self.ct.run("egressd", "ledger", "verify", "--dir", "/var/lib/egressd/ledger",
                        "--pubkey", "/etc/egressd/ledger_ed25519.pub", check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


if __name__ == "__main__":
    unittest.main()
