#!/usr/bin/python3
"""`egressd fetch` over real transports on loopback: git daemon (git://),
git http-backend behind lighttpd (HTTP, basic auth and tokens), OpenSSH sshd
(ssh:// with a deploy key and known_hosts), and broken remotes (down, slow,
garbage). For each transport: a new commit is fetched, and "unchanged" costs
one request, counted in the server's own log."""
import os
import time
import unittest

from gitlib import GitTestCase, RogueServer, count_lines, free_port


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
        self.port, self.access, self.reqlog = self.lighttpd(
            self.srv, users={"deploy": "s3cret", "x-access-token": "tok-123"}, token="bearer-456")
        self.url = "http://127.0.0.1:%d" % self.port

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


if __name__ == "__main__":
    unittest.main()
