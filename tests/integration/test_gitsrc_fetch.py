#!/usr/bin/python3
"""`egressd fetch` over real transports on loopback: git daemon (git://),
git http-backend behind lighttpd (HTTPS through a TLS front with a test CA:
basic auth and tokens; anonymous HTTP), OpenSSH sshd (ssh:// with a deploy key
and known_hosts), and broken remotes (down, slow, garbage). For each
transport: a new commit is fetched, and "unchanged" costs one request, counted
in the server's own log. Credentials never travel in clear (plain http:// is
refused) nor to another origin after a redirect; a secret in the URL never
reaches a message, status.json or the ledger."""
import json
import os
import time
import unittest

import daemonlib
from gitlib import GitTestCase, RogueServer, count_lines, free_port
from httpslib import Recorder, Redirector, TlsFront, make_pki


class FetchCase(GitTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.path("srv")
        os.makedirs(self.srv)
        self.work = self.init_repo("work")
        self.first = self.commit(self.work, "first", files={"intents/a.yaml": "kind: EgressIntent\n"})
        self.bare = self.path("srv", "egress.git")
        self.run_cmd(["git", "clone", "-q", "--bare", self.work, self.bare])
        self.cache = self.path("cache")

    def push_new_commit(self, msg="second"):
        oid = self.commit(self.work, msg, files={"intents/b.yaml": "kind: EgressIntent # %s\n" % msg})
        self.git(self.work, "push", "-q", "-f", self.bare, "main")
        return oid

    def fetch(self, url, *args, check=0):
        return self.egressd("fetch", "--url", url, "--cache", self.cache, *args, check=check)

    def cached_head(self):
        return self.git(self.cache, "rev-parse", "refs/egressd/remote").stdout.strip()

    def assert_fetch_cycle(self, url, args, count_requests):
        """updated -> unchanged (exactly one request) -> new commit updated."""
        p = self.fetch(url, *args)
        self.assertEqual(p.stdout, "%s updated\n" % self.first)
        self.assertEqual(self.cached_head(), self.first)
        before = count_requests()
        p = self.fetch(url, *args)
        self.assertEqual(p.stdout, "%s unchanged\n" % self.first)
        self.assertEqual(count_requests() - before, 1, "unchanged must cost one request")
        second = self.push_new_commit()
        p = self.fetch(url, *args, "--list")
        self.assertEqual(p.stdout.splitlines(), [
            "%s updated" % second, "19 intents/a.yaml", "28 intents/b.yaml"])
        self.assertEqual(self.cached_head(), second)
        return second


class GitDaemon(FetchCase):
    def test_git_protocol_fetch_and_cheap_unchanged(self):
        port, log = self.git_daemon(self.srv)
        url = "git://127.0.0.1:%d/egress.git" % port

        def connections():
            time.sleep(0.2)  # git daemon logs the child's request asynchronously
            return count_lines(log, "Request upload-pack")
        self.assert_fetch_cycle(url, [], connections)

    def test_history_rewrite_refused_unless_allowed(self):
        port, _ = self.git_daemon(self.srv)
        url = "git://127.0.0.1:%d/egress.git" % port
        self.fetch(url)
        applied = self.push_new_commit("applied")
        self.fetch(url)
        self.git(self.work, "reset", "-q", "--hard", self.first)
        rewritten = self.push_new_commit("rewritten")
        p = self.fetch(url, "--last-applied", applied, check=1)
        self.assertIn("history was rewritten upstream: the new head %s" % rewritten, p.stderr)
        self.assertIn("last applied commit %s" % applied, p.stderr)
        p = self.fetch(url, "--last-applied", applied, "--allow-rewrite", check=0)
        self.assertIn("rewrite allowed", p.stdout)
        self.fetch(url, "--last-applied", self.first, check=0)


class Http(FetchCase):
    def setUp(self):
        super().setUp()
        self.plain_port, self.access, self.reqlog = self.lighttpd(
            self.srv, users={"deploy": "s3cret", "x-access-token": "tok-123"}, token="bearer-456")
        self.ca, certs = make_pki(self.path("pki"))
        self.front = TlsFront(self, self.plain_port, *certs["127.0.0.1"])
        self.url = "https://127.0.0.1:%d" % self.front.port

    def fetch(self, url, *args, check=0):
        if url.startswith("https://"):
            args = ("--ca-file", self.ca) + args
        return super().fetch(url, *args, check=check)

    def requests(self):
        return count_lines(self.reqlog, "GET ") + count_lines(self.reqlog, "POST ")

    def test_basic_auth_username_password_file(self):
        pw = self.write("pw", "s3cret\n")
        self.assert_fetch_cycle(self.url + "/basic/egress.git",
                                ["--username", "deploy", "--password-file", pw], self.requests)
        # lighttpd's own access log (flushed within seconds) has the same
        # requests, every one answered 200: the credentials were sent
        # preemptively, never after a 401 challenge
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and count_lines(self.access, "HTTP/1.1") < self.requests():
            time.sleep(0.5)
        with open(self.access) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), self.requests(), lines)
        self.assertEqual([l for l in lines if not l.endswith(" 200")], [])
        # updated = poll (GET) + fetch (GET, POST); unchanged = poll (GET)
        self.assertEqual([l.split()[0] for l in lines],
                         ["GET", "GET", "POST", "GET", "GET", "GET", "POST"])
        self.assertEqual(len([l for l in lines if "info/refs?service=git-upload-pack" in l]), 5)

    def test_token_file_as_basic_password(self):
        tok = self.write("token", "tok-123\n")
        self.assert_fetch_cycle(self.url + "/basic/egress.git", ["--token-file", tok], self.requests)

    def test_token_file_as_bearer(self):
        tok = self.write("token", "bearer-456")
        self.assert_fetch_cycle(self.url + "/bearer/egress.git", ["--token-file", tok, "--bearer"],
                                self.requests)

    def test_wrong_credentials_clear_error_without_secret(self):
        pw = self.write("pw", "wrong-password\n")
        p = self.fetch(self.url + "/basic/egress.git", "--username", "deploy", "--password-file",
                       pw, check=2)
        self.assertIn("rejected the credentials from password_file '%s' (HTTP 401)" % pw, p.stderr)
        self.assertNotIn("wrong-password", p.stderr + p.stdout)
        tok = self.write("token", "not-the-token")
        p = self.fetch(self.url + "/bearer/egress.git", "--token-file", tok, "--bearer", check=2)
        self.assertIn("rejected the credentials from token_file", p.stderr)
        self.assertNotIn("not-the-token", p.stderr)
        p = self.fetch(self.url + "/basic/egress.git", check=2)
        self.assertIn("requires authentication (HTTP 401)", p.stderr)

    def test_anonymous_http(self):
        self.assert_fetch_cycle(self.url + "/git/egress.git", [], self.requests)
        self.assert_fetch_cycle_again("http://127.0.0.1:%d/git/egress.git" % self.plain_port)

    def assert_fetch_cycle_again(self, url):
        p = self.fetch(url)
        self.assertRegex(p.stdout, r"^[0-9a-f]{40} (updated|unchanged)\n$")
        self.assertEqual(self.cached_head(), self.rev(self.bare, "main"))

    def test_credentials_refused_over_plain_http(self):
        """W-2: a token or password is never sent in clear, loopback included."""
        plain = "http://127.0.0.1:%d/basic/egress.git" % self.plain_port
        tok = self.write("token", "tok-123\n")
        pw = self.write("pw", "s3cret\n")
        before = self.requests()
        for args in (["--token-file", tok], ["--username", "deploy", "--password-file", pw]):
            p = self.fetch(plain, *args, check=2)
            self.assertIn("refusing to send the %s over plain http:// to '%s'"
                          % ("token of token_file" if args[0] == "--token-file"
                             else "password of password_file", plain), p.stderr)
            self.assertIn("use the server's https:// URL", p.stderr)
            self.assertNotIn("tok-123", p.stderr)
            self.assertNotIn("s3cret", p.stderr)
        self.assertEqual(self.requests(), before, "nothing may be sent")

    def test_same_origin_redirect_keeps_working(self):
        """/moved/ answers 301 -> /basic/ on the same origin: followed with the credentials."""
        pw = self.write("pw", "s3cret\n")
        p = self.fetch(self.url + "/moved/egress.git", "--username", "deploy", "--password-file", pw)
        self.assertEqual(p.stdout, "%s updated\n" % self.first)


class HttpsRedirects(FetchCase):
    """W-1: credentials never follow a redirect to another origin."""

    def setUp(self):
        super().setUp()
        self.ca, self.certs = make_pki(self.path("pki"))
        self.tok = self.write("token", "tok-SECRET-123456\n")

    def fetch_redirected(self, target_host, status):
        rec = Recorder(self, target_host, *self.certs[target_host])
        target = "https://%s:%d" % (target_host, rec.port)
        red = Redirector(self, target, status, "127.0.0.1", *self.certs["127.0.0.1"])
        url = "https://127.0.0.1:%d/egress.git" % red.port
        for _ in range(2):  # every poll, not only the first
            p = self.fetch(url, "--ca-file", self.ca, "--token-file", self.tok, check=2)
            self.assertNotIn("tok-SECRET", p.stderr + p.stdout)
        self.assertEqual(len(red.requests), 2, "the redirector is asked once per poll")
        self.assertTrue(red.requests[0][2].get("Authorization", "").startswith("Basic "))
        self.assertEqual(rec.requests, [], "nothing may reach the other origin")
        return url, p.stderr

    def test_redirect_to_another_host_is_refused(self):
        url, err = self.fetch_redirected("127.0.0.2", 301)
        self.assertIn("%s redirected to '127.0.0.2', another origin" % url, err)
        self.assertIn("egressd sends credentials only to the origin of the configured URL", err)
        self.assertIn("if the repository moved, configure its new URL", err)

    def test_redirect_to_another_port_is_refused(self):
        url, err = self.fetch_redirected("127.0.0.1", 302)
        self.assertRegex(err, r"%s redirected to 127\.0\.0\.1:\d+, another origin" % url)
        self.assertIn("if the repository moved, configure its new URL", err)


class Ssh(FetchCase):
    def setUp(self):
        super().setUp()
        self.deploy = self.keygen("deploy_key")
        self.port, self.hostpub, self.log = self.sshd(self.pubkey(self.deploy))
        self.url = "ssh://root@127.0.0.1:%d%s" % (self.port, self.bare)
        with open(self.hostpub) as f:
            self.hostkey = " ".join(f.read().split()[:2])

    def logins(self):
        time.sleep(0.1)
        return count_lines(self.log, "Accepted publickey for root")

    def test_deploy_key_with_known_hosts(self):
        kh = self.write("known_hosts", "[127.0.0.1]:%d %s\n" % (self.port, self.hostkey))
        self.assert_fetch_cycle(self.url, ["--ssh-key", self.deploy, "--known-hosts", kh],
                                self.logins)

    def test_hashed_known_hosts(self):
        kh = self.write("known_hosts", "[127.0.0.1]:%d %s\n" % (self.port, self.hostkey))
        self.run_cmd(["ssh-keygen", "-q", "-H", "-f", kh])
        with open(kh) as f:
            self.assertTrue(f.read().startswith("|1|"))
        p = self.fetch(self.url, "--ssh-key", self.deploy, "--known-hosts", kh)
        self.assertEqual(p.stdout, "%s updated\n" % self.first)

    def test_wrong_host_key_refused_unless_skipped(self):
        other = self.keygen("other_host")
        kh = self.write("known_hosts", "[127.0.0.1]:%d %s\n" % (self.port, self.pubkey(other)))
        p = self.fetch(self.url, "--ssh-key", self.deploy, "--known-hosts", kh, check=2)
        self.assertIn("SSH host key check failed: the host key of [127.0.0.1]:%d does not match %s:1"
                      % (self.port, kh), p.stderr)
        fp = self.run_cmd(["ssh-keygen", "-lf", self.hostpub]).stdout.split()[1]
        self.assertIn("offered ssh-ed25519 key %s" % fp, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.cache, "refs/egressd/remote")))
        unknown = self.write("known_hosts2", "otherhost %s\n" % self.hostkey)
        p = self.fetch(self.url, "--ssh-key", self.deploy, "--known-hosts", unknown, check=2)
        self.assertIn("no host key for [127.0.0.1]:%d in %s" % (self.port, unknown), p.stderr)
        p = self.fetch(self.url, "--ssh-key", self.deploy, "--insecure-skip-host-key-check")
        self.assertEqual(p.stdout, "%s updated\n" % self.first)

    def test_key_not_authorized(self):
        stranger = self.keygen("stranger")
        kh = self.write("known_hosts", "[127.0.0.1]:%d %s\n" % (self.port, self.hostkey))
        p = self.fetch(self.url, "--ssh-key", stranger, "--known-hosts", kh, check=2)
        self.assertIn("rejected the key ssh_key '%s' for user 'root'" % stranger, p.stderr)


class BrokenRemotes(FetchCase):
    """The last fetched commit stays in place and the error says what happened."""

    def setUp(self):
        super().setUp()
        port, _ = self.git_daemon(self.srv)
        self.fetch("git://127.0.0.1:%d/egress.git" % port)
        self.assertEqual(self.cached_head(), self.first)

    def test_down_remote(self):
        port = free_port()
        p = self.fetch("git://127.0.0.1:%d/egress.git" % port, check=2)
        self.assertIn("cannot connect to git://127.0.0.1:%d/egress.git" % port, p.stderr)
        self.assertIn("Connection refused", p.stderr)
        self.assertEqual(self.cached_head(), self.first)

    def test_slow_remote_times_out(self):
        rogue = RogueServer(self)
        for scheme in ("git", "http"):
            start = time.monotonic()
            p = self.fetch("%s://127.0.0.1:%d/egress.git" % (scheme, rogue.port), "--timeout", "2",
                           check=2)
            self.assertLess(time.monotonic() - start, 10)
            self.assertIn("did not complete within 2 seconds (timeout); the last fetched commit "
                          "is unchanged", p.stderr)
            self.assertEqual(self.cached_head(), self.first)

    def test_garbage_answers(self):
        http = RogueServer(self, reply=b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                      b"Content-Length: 11\r\n\r\n<html>hi</html>")
        p = self.fetch("http://127.0.0.1:%d/egress.git" % http.port, check=2)
        self.assertIn("cannot connect to http://127.0.0.1:%d/egress.git" % http.port, p.stderr)
        git = RogueServer(self, reply=b"\x00\xffthis is not pkt-line\n" * 10)
        p = self.fetch("git://127.0.0.1:%d/egress.git" % git.port, check=2)
        self.assertIn("git://127.0.0.1:%d/egress.git" % git.port, p.stderr)
        self.assertEqual(self.cached_head(), self.first)

    def test_pack_bound(self):
        port, _ = self.git_daemon(self.srv)
        with open(self.path("work", "blob.bin"), "wb") as f:
            f.write(os.urandom(300000))
        self.git(self.work, "add", "blob.bin")
        self.git(self.work, "commit", "-q", "-m", "big")
        self.git(self.work, "push", "-q", self.bare, "main")
        p = self.fetch("git://127.0.0.1:%d/egress.git" % port, "--max-pack-bytes", "100000", check=2)
        self.assertIn("exceeded max_pack_bytes", p.stderr)
        self.assertEqual(self.cached_head(), self.first)


class SecretsInTheUrl(GitTestCase):
    """W-8: a token in the URL's query is used to fetch, and shown nowhere."""
    SECRET = "ghp_QueryTokenSECRET0123456789"

    def test_cli_errors_hide_query_values_and_userinfo(self):
        port = free_port()
        url = "https://127.0.0.1:%d/egress.git?access_token=%s" % (port, self.SECRET)
        p = self.egressd("fetch", "--url", url, "--cache", self.path("cache"), check=2)
        self.assertIn("https://127.0.0.1:%d/egress.git?access_token=[redacted]" % port, p.stderr)
        self.assertNotIn(self.SECRET, p.stderr + p.stdout)
        url = "https://%s@127.0.0.1:%d/egress.git" % (self.SECRET, port)
        p = self.egressd("fetch", "--url", url, "--cache", self.path("cache2"), check=2)
        self.assertIn("https://[redacted]@127.0.0.1:%d/egress.git" % port, p.stderr)
        self.assertNotIn(self.SECRET, p.stderr + p.stdout)

    def test_daemon_status_ledger_and_log_hide_the_query_token(self):
        d = daemonlib.Daemon()
        self.addCleanup(d.close)
        port, _, reqlog = self.lighttpd(os.path.dirname(d.repo))
        url = "http://127.0.0.1:%d/git/%s?access_token=%s" % (port, os.path.basename(d.repo),
                                                              self.SECRET)
        shown = url.replace(self.SECRET, "[redacted]")
        with open(d.config) as f:
            text = f.read()
        self.assertIn("url: file://%s\n" % d.repo, text)
        with open(d.config, "w") as f:
            f.write(text.replace("url: file://%s\n" % d.repo, "url: %s\n" % url))
        d.start()
        d.wait_status(r"^in sync: 3/3")
        # the real URL was used to fetch (libgit2 1.5 leaves the query out of
        # its requests)...
        self.assertGreater(count_lines(reqlog, "GET /git/%s/info/refs"
                                       % os.path.basename(d.repo)), 0)
        # ...and is shown nowhere
        st = d.status()
        self.assertEqual(st["repository"]["url"], shown)
        self.assertNotIn(self.SECRET, json.dumps(st))
        with open(os.path.join(d.runtime, "status.json")) as f:
            self.assertNotIn(self.SECRET, f.read())
        records = [r for r in d.ledger() if "repo" in r]
        self.assertTrue(records, "the ledger has apply records")
        self.assertEqual({r["repo"] for r in records}, {shown})
        with open(os.path.join(d.state, "ledger", "ledger.jsonl")) as f:
            self.assertNotIn(self.SECRET, f.read())
        self.assertIn(shown, d.logs())
        self.assertNotIn(self.SECRET, d.logs())


if __name__ == "__main__":
    unittest.main()
