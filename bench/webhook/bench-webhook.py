#!/usr/bin/python3
"""Push -> wave 1 applied, with the webhook doorbell (issue 14 §2).

    bench/webhook/bench-webhook.py [--egressd PATH] [--pushes N]

Starts egressd run against three kubesim clusters (the example Fleet: wave 1
is the cluster canary) and a config repo served by `git daemon`, with
`repository.interval: 1h` and `repository.webhook`, so only the doorbell
makes it poll. Then N times: commit a signed change (one more intent), send
a GitHub-format push (X-Hub-Signature-256) and time

  fetch   webhook sent -> the commit is in force (polled, fetched, verified,
          validated, rendered: status.json target.commit)
  wave1   webhook sent -> canary has applied it (status.json
          clusters[canary].applied), the bake excluded

then waits for the whole rollout before the next push. status.json is read
every 2 ms; the daemon rewrites it at once after each change. Prints each
push and the p50/p90/p99/max of both. Figures go to docs/benchmarks.md; they
are never asserted in tests.
"""
import argparse
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True   # no __pycache__ in tests/integration
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import daemonlib  # noqa: E402
import gitlib  # noqa: E402

SECRET = "bench-webhook-secret-0123456789abcdef"


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))]


def post(port, body):
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    raw = ("POST /hooks/egressd HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n"
           % (sig, len(body))).encode() + body
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 202 "):
        raise RuntimeError("webhook answered %r" % data[:200])


def status(d):
    try:
        with open(os.path.join(d.runtime, "status.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def wait(what, fn, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return time.monotonic()
        time.sleep(0.002)
    raise RuntimeError("timed out waiting for " + what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", default=os.path.join(SOURCE, "build", "daemon", "cli", "egressd"))
    ap.add_argument("--pushes", type=int, default=20)
    args = ap.parse_args()
    os.environ["EGRESSD"] = os.path.abspath(args.egressd)

    d = daemonlib.Daemon(poll="1h")
    git = None
    try:
        port, git_port = gitlib.free_port(), gitlib.free_port()
        with open(d.path("webhook-secret"), "w") as f:
            f.write(SECRET + "\n")
        git = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                                "--base-path=" + d.tmp, "--listen=127.0.0.1",
                                "--port=%d" % git_port, d.tmp],
                               env=d.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        gitlib.wait_port(git_port, git)
        with open(d.config) as f:
            text = f.read()
        text = text.replace("  url: file://%s\n" % d.repo,
                            "  url: git://127.0.0.1:%d/config-repo\n" % git_port)
        text = text.replace("  interval: 1h\n", "  interval: 1h\n  webhook:\n    listen: 127.0.0.1:%d\n"
                            "    secretFile: %s\n" % (port, d.path("webhook-secret")))
        with open(d.config, "w") as f:
            f.write(text)
        d.start()
        d.wait_notify("READY=1")
        d.wait_status(r"^in sync: 3/3", timeout=120)
        fetch, wave1 = [], []
        body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "bench"}}).encode()
        for i in range(args.pushes):
            commit = d.commit("bench push %d" % i, files={"intents/bench-%d.yaml" % i: (
                "apiVersion: egressd.io/v1\nkind: EgressIntent\n"
                "metadata: {name: bench-%d, namespace: smm-demo}\n"
                "spec: {gateway: egress-demo, hosts: [b%d.example.org], "
                "ports: [{number: 80, protocol: HTTP}]}\n" % (i, i))})
            t0 = time.monotonic()
            post(port, body)
            t1 = wait("the commit in force",
                      lambda: status(d).get("target", {}).get("commit") == commit)
            t2 = wait("canary applied", lambda: any(
                c.get("name") == "canary" and c.get("applied") == commit
                for c in status(d).get("clusters", [])))
            fetch.append(t1 - t0)
            wave1.append(t2 - t0)
            print("push %2d  %.12s  fetch %6.0f ms  wave1 %6.0f ms" % (i + 1, commit, fetch[-1] * 1e3,
                                                                       wave1[-1] * 1e3), flush=True)
            d.wait_status(r"^in sync: 3/3 clusters at %s" % commit[:7], timeout=120)
        for name, xs in (("fetch", fetch), ("wave1", wave1)):
            print("%-6s n=%d  p50 %.0f ms  p90 %.0f ms  p99 %.0f ms  max %.0f ms"
                  % (name, len(xs), quantile(xs, 0.5) * 1e3, quantile(xs, 0.9) * 1e3,
                     quantile(xs, 0.99) * 1e3, max(xs) * 1e3))
    except Exception:
        sys.stderr.write(d.logs()[-4000:])
        raise
    finally:
        if git is not None:
            os.killpg(git.pid, signal.SIGKILL)
            git.wait()
        d.close()


if __name__ == "__main__":
    main()
