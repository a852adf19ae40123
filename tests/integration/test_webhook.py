"""The webhook doorbell (repository.webhook, issue 14 §2) of `egressd run`,
against three kubesim clusters and a config repo served by `git daemon`
(whose log shows every fetch): with `interval: 1h` nothing but the start and
a doorbell polls. A correctly signed push of each forge's format brings the
new commit to the clusters at once; a bad signature is a 401, counted in the
metrics and logged, and fetches nothing; a push to another ref is ignored;
bounds (413, 405, 411, 400, 429, the read deadline); a reload reads the
secret again; and the socket passed by systemd-socket-activate (socket
activation, LISTEN_FDS) is used instead of binding one."""
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import daemonlib
import gitlib
import kubelib
from netlib import wait_for

SECRET = "webhook-secret-for-the-tests-0123456789"
REF = "refs/heads/main"
ACTIVATE = shutil.which("systemd-socket-activate")


def sign(body, secret=SECRET):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_body(ref=REF, forge="github"):
    if forge == "bitbucket":
        return json.dumps({"eventKey": "repo:refs_changed",
                           "changes": [{"ref": {"id": ref, "type": "BRANCH"}, "refId": ref,
                                        "type": "UPDATE"}]}).encode()
    return json.dumps({"ref": ref, "before": "0" * 40, "after": "1" * 40,
                       "repository": {"full_name": "platform/egress"}}).encode()


def forge_headers(forge, body, secret=SECRET, event=None):
    if forge == "github":
        return {"X-GitHub-Event": event or "push", "X-GitHub-Delivery": "d-%d" % time.monotonic_ns(),
                "X-Hub-Signature-256": "sha256=" + sign(body, secret)}
    if forge == "gitlab":
        return {"X-Gitlab-Event": event or "Push Hook", "X-Gitlab-Token": secret}
    if forge == "gitea":
        return {"X-Gitea-Event": event or "push", "X-GitHub-Event": event or "push",
                "X-Gitea-Signature": sign(body, secret)}
    if forge == "forgejo":
        return {"X-Forgejo-Event": event or "push", "X-Forgejo-Signature": sign(body, secret)}
    if forge == "bitbucket":
        return {"X-Event-Key": event or "repo:refs_changed",
                "X-Hub-Signature": "sha256=" + sign(body, secret)}
    raise ValueError(forge)


def http(port, raw, timeout=30):
    """Send raw bytes, read the answer until the server closes; returns
    (status, headers, body text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was read: the answer is there
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    if not m:
        raise AssertionError("not an HTTP answer: %r" % data[:200])
    headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(m.group(1)), headers, body.decode()


def post(port, headers, body, path="/hooks/egressd"):
    raw = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n" % (path, port)
    for k, v in headers.items():
        raw += "%s: %s\r\n" % (k, v)
    raw += "Content-Length: %d\r\n\r\n" % len(body)
    return http(port, raw.encode() + body)


class WebhookDaemon(object):
    """A daemonlib.Daemon following its config repo through `git daemon`,
    with `interval: 1h` and repository.webhook."""

    def __init__(self, test, listen=True):
        self.d = daemonlib.Daemon(poll="1h")
        test.addCleanup(self.d.close)
        d = self.d
        self.port = gitlib.free_port()
        self.secret_file = d.path("webhook-secret")
        self.write_secret(SECRET)
        # git daemon: its log has a line for every connection (poll, fetch)
        self.git_port = gitlib.free_port()
        self.git_log = d.path("git-daemon.log")
        log = open(self.git_log, "w")
        git = subprocess.Popen(["git", "daemon", "--reuseaddr", "--verbose", "--export-all",
                                "--base-path=" + d.tmp, "--listen=127.0.0.1",
                                "--port=%d" % self.git_port, d.tmp],
                               env=d.env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)

        def stop_git():
            os.killpg(git.pid, signal.SIGKILL)
            git.wait(10)
            log.close()
        test.addCleanup(stop_git)
        gitlib.wait_port(self.git_port, git)
        with open(d.config) as f:
            text = f.read()
        webhook = "  webhook:\n%s    secretFile: %s\n" % (
            "    listen: 127.0.0.1:%d\n" % self.port if listen else "", self.secret_file)
        text = text.replace("  url: file://%s\n" % d.repo,
                            "  url: git://127.0.0.1:%d/config-repo\n" % self.git_port)
        text = text.replace("  interval: 1h\n", "  interval: 1h\n" + webhook)
        assert "webhook:" in text and "git://" in text, text
        with open(d.config, "w") as f:
            f.write(text)

    def write_secret(self, secret):
        with open(self.secret_file, "w") as f:
            f.write(secret + "\n")
        os.chmod(self.secret_file, 0o600)

    def fetches(self):
        """Connections git daemon served (polls and fetches)."""
        with open(self.git_log) as f:
            return len(re.findall(r"Connection from ", f.read()))

    def metrics(self):
        try:
            with open(self.d.metrics) as f:
                text = f.read()
        except FileNotFoundError:
            return {}
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r"^(\S+) (\S+)$", text, re.M)}

    def metric(self, name):
        return self.metrics().get(name, 0)

    def wait_metric(self, name, value, timeout=20):
        try:
            wait_for("%s = %s" % (name, value), lambda: self.metric(name) == value, timeout, 0.05)
        except AssertionError:
            raise AssertionError("%s is %s, not %s\n%s" % (name, self.metric(name), value,
                                                           self.d.logs())) from None

    def status(self):
        with open(os.path.join(self.d.runtime, "status.json")) as f:
            return json.load(f)

    def target(self):
        try:
            return self.status()["target"]["commit"]
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def wait_target(self, commit, timeout=30):
        try:
            wait_for("commit %s in force" % commit, lambda: self.target() == commit, timeout, 0.05)
            return
        except AssertionError:
            pass
        with open(self.git_log) as f:
            git_log = f.read()
        raise AssertionError("commit %s never in force\n%s\nmetrics: %s\nstatus: %s\n"
                             "git daemon:\n%s" % (commit, self.d.logs(), self.metrics(),
                                                   self.status(), git_log[-3000:]))

    def start_in_sync(self):
        first = self.d.run(["git", "-C", self.d.repo, "rev-parse", "HEAD"]).stdout.strip()
        self.d.start()
        self.d.wait_notify("READY=1")
        self.d.wait_status(r"^in sync: 3/3 clusters at %s" % first[:7])
        self.wait_metric("egressd_polls_total", 1)
        return first


def new_intent(name):
    return {"intents/%s.yaml" % name: (
        "apiVersion: egressd.io/v1\nkind: EgressIntent\n"
        "metadata: {name: %s, namespace: smm-demo}\n"
        "spec: {gateway: egress-demo, hosts: [%s.example.org], ports: [{number: 80, protocol: HTTP}]}\n"
        % (name, name))}


class WebhookTest(unittest.TestCase):
    def test_a_signed_github_push_fetches_at_once_a_bad_signature_nothing(self):
        w = WebhookDaemon(self)
        d = w.d
        first = w.start_in_sync()
        fetches = w.fetches()
        self.assertGreaterEqual(fetches, 1)
        self.assertIn("webhook: listening on 127.0.0.1:%d for pushes to %s" % (w.port, REF), d.logs())
        second = d.commit("allow second.example.org", files=new_intent("second"))

        # a bad signature: 401, logged and counted; no fetch
        body = push_body()
        bad = forge_headers("github", body, secret="not-the-secret-at-all-0123456789")
        status, headers, text = post(w.port, bad, body)
        self.assertEqual(status, 401, text)
        self.assertEqual(text, "X-Hub-Signature-256 does not match the secret\n")
        self.assertEqual(headers.get("connection"), "close")
        w.wait_metric('egressd_webhook_requests_total{result="unauthorized"}', 1)
        # a push to another ref, correctly signed: ignored, no fetch either
        body_dev = push_body("refs/heads/dev")
        status, _, text = post(w.port, forge_headers("github", body_dev), body_dev)
        self.assertEqual((status, text), (200, "ignored: not the followed ref\n"))
        w.wait_metric('egressd_webhook_requests_total{result="ignored"}', 1)
        # by now the main loop has taken both; a doorbell would have posted a poll
        self.assertEqual(w.metric("egressd_polls_total"), 1)
        self.assertEqual(w.fetches(), fetches)
        self.assertEqual(w.status()["target"]["commit"], first)
        logs = d.logs()
        line = [l for l in logs.splitlines() if "401" in l and "webhook:" in l]
        self.assertEqual(len(line), 1, logs)
        self.assertRegex(line[0], r"^egressd: warning: webhook: GitHub request \(delivery d-\d+\) from 127\.0\.0\.1: "
                                  r"401 X-Hub-Signature-256 does not match the secret$")

        # the real thing: the commit is fetched, verified and rolled out
        t0 = time.monotonic()
        status, _, text = post(w.port, forge_headers("github", body), body)
        self.assertEqual((status, text), (202, "accepted: polling the config repo\n"))
        w.wait_target(second)
        d.wait_status(r"^in sync: 3/3 clusters at %s" % second[:7], timeout=60)
        self.assertLess(time.monotonic() - t0, 60)
        self.assertEqual(w.metric("egressd_polls_total"), 2)
        self.assertGreater(w.fetches(), fetches)
        st, obj = d.sim.request("GET", "/apis/networking.istio.io/v1/namespaces/smm-demo/"
                                       "virtualservices/second-second.example.org", cluster="prod-us")
        self.assertEqual(st, 200, obj)
        w.wait_metric('egressd_webhook_requests_total{result="doorbell"}', 1)
        hook = w.status()["repository"]["webhook"]
        self.assertEqual((hook["listen"], hook["socketActivated"], hook["requests"],
                          hook["doorbells"], hook["refused"]),
                         ("127.0.0.1:%d" % w.port, False, 3, 1, 1))
        self.assertIsNotNone(hook["lastDoorbell"])
        out = d.run([kubelib.egressd_binary(), "status", "--runtime-dir", d.runtime]).stdout
        self.assertRegex(out, r"\nwebhook     127\.0\.0\.1:%d, 1 doorbell \(last .*\), 1 refused\n"
                         % w.port)
        # never the secret nor a signature, anywhere the daemon writes
        with open(d.metrics) as f:
            published = d.logs() + json.dumps(w.status()) + f.read()
        self.assertNotIn(SECRET, published)
        self.assertNotIn(sign(body), published)
        self.assertNotIn(bad["X-Hub-Signature-256"][7:], published)

    def test_gitlab_gitea_forgejo_and_bitbucket_ring_the_doorbell(self):
        w = WebhookDaemon(self)
        d = w.d
        w.start_in_sync()
        for n, forge in enumerate(["gitlab", "gitea", "forgejo", "bitbucket"]):
            commit = d.commit("via %s" % forge, files=new_intent("via%d" % n))
            body = push_body(forge=forge)
            # the wrong secret first: nothing happens
            status, _, text = post(w.port, forge_headers(forge, body, secret="x" * 40), body)
            self.assertEqual(status, 401, "%s: %s" % (forge, text))
            status, _, text = post(w.port, forge_headers(forge, body), body)
            self.assertEqual((status, text), (202, "accepted: polling the config repo\n"), forge)
            w.wait_target(commit)
            self.assertIn("webhook: %s push to refs/heads/main" % forge.capitalize()
                          .replace("Gitlab", "GitLab"), d.logs())
        # pings: answered, nothing fetched
        polls = w.metric("egressd_polls_total")
        status, _, text = post(w.port, forge_headers("github", b"{}", event="ping"), b"{}")
        self.assertEqual((status, text), (200, "pong: the secret matches\n"))
        status, _, _ = post(w.port, forge_headers("bitbucket", b"{}", event="diagnostics:ping"), b"{}")
        self.assertEqual(status, 200)
        w.wait_metric('egressd_webhook_requests_total{result="ping"}', 2)
        self.assertEqual(w.metric("egressd_polls_total"), polls)
        self.assertEqual(w.metric('egressd_webhook_requests_total{result="doorbell"}'), 4)
        self.assertEqual(w.metric('egressd_webhook_requests_total{result="unauthorized"}'), 4)

    def test_what_is_refused_and_the_bounds(self):
        w = WebhookDaemon(self)
        d = w.d
        w.start_in_sync()
        fetches = w.fetches()
        port = w.port
        # larger than 1 MiB: 413, from the head alone ...
        status, _, text = http(port, b"POST / HTTP/1.1\r\nX-GitHub-Event: push\r\n"
                                     b"Content-Length: 2097152\r\n\r\n")
        self.assertEqual((status, text), (413, "the body is larger than 1 MiB\n"))
        # ... and while the client sends it anyway (the lingering close lets the
        # answer through instead of a reset)
        big = b"{" + b" " * (1 << 20) + b"}"
        status, _, _ = post(port, forge_headers("github", big), big)
        self.assertEqual(status, 413)
        status, headers, _ = http(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((status, headers.get("allow")), (405, "POST"))
        status, _, _ = http(port, b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertEqual(status, 411)
        status, _, text = http(port, b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        self.assertEqual(status, 400, text)
        self.assertIn("no webhook event header", text)
        status, _, _ = http(port, b"POST / HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
        self.assertEqual(status, 431)
        body = b'{"ref": '
        status, _, text = post(port, forge_headers("github", body), body)
        self.assertEqual((status, text), (400, "the body is not a JSON object\n"))
        w.wait_metric('egressd_webhook_requests_total{result="too_large"}', 2)
        w.wait_metric('egressd_webhook_requests_total{result="bad_request"}', 4)
        w.wait_metric('egressd_webhook_requests_total{result="headers_too_large"}', 1)

        # 16 clients that send a byte a second hold every connection slot: each
        # is cut at the read deadline (408), and a 17th waits in the kernel's
        # queue until a slot is free
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        for c in slow:
            c.sendall(b"POST / HTTP/1.1\r\n")
        stop = threading.Event()

        def drip():
            while not stop.wait(1.0):
                for c in slow:
                    try:
                        c.sendall(b"X")
                    except OSError:
                        pass
        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        cut = [None] * len(slow)

        def read_cut(i):
            slow[i].settimeout(60)
            try:
                data = slow[i].recv(4096)
            except OSError as e:
                data = repr(e).encode()
            cut[i] = (time.monotonic(), data)
        readers = [threading.Thread(target=read_cut, args=(i,), daemon=True) for i in range(16)]
        t0 = time.monotonic()
        for r in readers:
            r.start()
        ping = forge_headers("github", b"{}", event="ping")
        status, _, text = post(port, ping, b"{}")
        answered = time.monotonic()
        for r in readers:
            r.join(60)
        stop.set()
        dripper.join()
        for c in slow:
            c.close()
        self.assertEqual((status, text), (200, "pong: the secret matches\n"))
        for t, data in cut:
            self.assertTrue(data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data)
            self.assertLess(t - t0, 20)  # the deadline is 10 s, whatever the client keeps sending
        self.assertGreaterEqual(answered, min(t for t, _ in cut))
        w.wait_metric('egressd_webhook_requests_total{result="timeout"}', 16)

        # Expect: 100-continue (curl sends it for bodies over 1 KiB) is answered
        if shutil.which("curl"):
            body = json.dumps({"ref": "refs/heads/other", "pad": "x" * 4096}).encode()
            args = ["curl", "-sS", "-v", "--max-time", "20", "--data-binary", "@-",
                    "-H", "Content-Type: application/json",
                    "-H", "Expect: 100-continue"]
            for k, v in forge_headers("github", body).items():
                args += ["-H", "%s: %s" % (k, v)]
            r = subprocess.run(args + ["http://127.0.0.1:%d/hooks/egressd" % port], input=body,
                               capture_output=True, timeout=30)
            self.assertEqual(r.stdout, b"ignored: not the followed ref\n", r.stderr)
            self.assertIn(b"HTTP/1.1 100 Continue", r.stderr)

        # a flood: 429 with Retry-After once the bucket is empty
        body = push_body()
        bad = forge_headers("github", body, secret="y" * 40)
        answers = [post(port, bad, body) for _ in range(40)]
        limited = [a for a in answers if a[0] == 429]
        self.assertTrue(limited, [a[0] for a in answers])
        self.assertEqual(limited[0][1].get("retry-after"), "1")
        self.assertTrue(all(a[0] in (401, 429) for a in answers))
        w.wait_metric('egressd_webhook_requests_total{result="rate_limited"}', len(limited))
        # nothing of this fetched anything
        self.assertEqual(w.metric("egressd_polls_total"), 1)
        self.assertEqual(w.fetches(), fetches)
        self.assertIsNone(d.proc.poll())

    def test_a_reload_reads_the_secret_again(self):
        w = WebhookDaemon(self)
        d = w.d
        w.start_in_sync()
        body = push_body("refs/heads/dev")
        self.assertEqual(post(w.port, forge_headers("github", body), body)[0], 200)
        new = "the-next-secret-after-rotation-9876543210"
        w.write_secret(new)
        mark = len(d.notifications())
        d.kill(signal.SIGHUP)
        i = d.wait_notify("RELOADING=1", since=mark)
        d.wait_notify("READY=1", since=i)
        self.assertEqual(post(w.port, forge_headers("github", body), body)[0], 401)
        self.assertEqual(post(w.port, forge_headers("github", body, secret=new), body)[0], 200)
        # moving the listen address takes a restart
        with open(d.config) as f:
            text = f.read()
        with open(d.config, "w") as f:
            f.write(text.replace("listen: 127.0.0.1:%d" % w.port, "listen: 127.0.0.1:1"))
        mark = len(d.notifications())
        d.kill(signal.SIGHUP)
        i = d.wait_notify("RELOADING=1", since=mark)
        d.wait_notify("READY=1", since=i)
        self.assertIn("reload refused: repository.webhook.listen changed in %s, which takes a "
                      "restart" % d.config, d.logs())
        self.assertEqual(post(w.port, forge_headers("github", body, secret=new), body)[0], 200)
        self.assertNotIn(new, d.logs())

    def test_an_unreadable_secret_file_stops_the_start(self):
        w = WebhookDaemon(self)
        d = w.d
        os.remove(w.secret_file)
        d.start()
        self.assertEqual(d.proc.wait(30), 1)
        self.assertRegex(d.logs(), r"egressd\.yaml:\d+:\d+: error: repository\.webhook\.secretFile: "
                                   r"cannot open the webhook secret file '%s': No such file or "
                                   r"directory" % re.escape(w.secret_file))

    @unittest.skipUnless(ACTIVATE, "needs systemd-socket-activate (Debian package systemd)")
    def test_socket_activation(self):
        w = WebhookDaemon(self, listen=False)
        d = w.d
        port = w.port
        env = dict(d.env)
        env["NOTIFY_SOCKET"] = d.notify_path
        setenv = []
        for k in ("HOME", "PATH", "LC_ALL", "GIT_CONFIG_NOSYSTEM", "NOTIFY_SOCKET"):
            if k in env:
                setenv += ["-E", "%s=%s" % (k, env[k])]
        d.log_path = d.path("daemon.log")
        d.log = open(d.log_path, "a")
        # systemd-socket-activate listens, and starts egressd (in its own
        # process, so LISTEN_PID matches) at the first connection
        d.proc = subprocess.Popen([ACTIVATE, "-l", "127.0.0.1:%d" % port, "--fdname=webhook"]
                                  + setenv + [kubelib.egressd_binary(), "run", "--config", d.config],
                                  env=env, stdout=d.log, stderr=subprocess.STDOUT)
        gitlib.wait_port(port, d.proc)  # this connection starts egressd
        d.wait_notify("READY=1")
        first = d.run(["git", "-C", d.repo, "rev-parse", "HEAD"]).stdout.strip()
        d.wait_status(r"^in sync: 3/3 clusters at %s" % first[:7])
        self.assertIn("webhook: listening on 127.0.0.1:%d (the socket systemd passed) for pushes"
                      % port, d.logs())
        second = d.commit("allow activated.example.org", files=new_intent("activated"))
        body = push_body()
        status, _, text = post(port, forge_headers("github", body), body)
        self.assertEqual((status, text), (202, "accepted: polling the config repo\n"))
        w.wait_target(second)
        self.assertTrue(w.status()["repository"]["webhook"]["socketActivated"])
        self.assertEqual(d.stop(), 0, d.logs())


if __name__ == "__main__":
    unittest.main()
