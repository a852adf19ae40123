"""kubesim command line: parse options, make the PKI, start one listener per
cluster, write the kubeconfigs and token files, then DIR/ready; stop on
SIGTERM/SIGINT.  See ../README.md for every option and file."""
import argparse
import os
import select
import signal
import sys
import time

from . import certs
from .schema import build_registry
from .server import Sim, ClusterCtx

ALL_ISTIO = ["v1", "v1beta1", "v1alpha3"]


def _per_cluster(values, names, what, parse=lambda v: v):
    """NAME=VALUE (or VALUE for every cluster) options -> {name: value}."""
    out = {}
    for item in values or []:
        if "=" in item and item.split("=", 1)[0] in names:
            n, v = item.split("=", 1)
            out[n] = parse(v)
        elif "=" in item and not item.split("=", 1)[0].startswith("v") and not item[0].isdigit() \
                and item.split("=", 1)[0] not in ("head",):
            sys.exit("kubesim: %s: unknown cluster in %r" % (what, item))
        else:
            for n in names:
                out[n] = parse(item)
    return out


def parse_istio(spec):
    """'1.17' | 'head' | 'v1alpha3,v1beta1' -> (versions, schema generation)."""
    if spec == "1.17":
        return ["v1beta1", "v1alpha3"], "1.17"
    if spec == "head":
        return list(ALL_ISTIO), "head"
    vs = [v.strip() for v in spec.split(",") if v.strip()]
    bad = [v for v in vs if v not in ALL_ISTIO]
    if bad or not vs:
        sys.exit("kubesim: --istio: unknown version(s) %s (use v1, v1beta1, v1alpha3, 1.17 or head)" % bad)
    return vs, ("head" if "v1" in vs else "1.17")


def kubeconfig(name, server, ca, user_block):
    return ("apiVersion: v1\nkind: Config\npreferences: {}\ncurrent-context: %(n)s\n"
            "clusters:\n- name: %(n)s\n  cluster:\n    server: %(s)s\n    certificate-authority: %(ca)s\n"
            "contexts:\n- name: %(n)s\n  context:\n    cluster: %(n)s\n    user: %(n)s\n    namespace: default\n"
            "users:\n- name: %(n)s\n  user:\n%(u)s" % {"n": name, "s": server, "ca": ca, "u": user_block})


def write(path, text, mode=0o600):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kubesim", description="Kubernetes 1.32 API-server emulator for tests.")
    ap.add_argument("--dir", required=True, help="output directory (kubeconfigs, tokens, CA, ready)")
    ap.add_argument("--clusters", required=True, help="comma-separated cluster names")
    ap.add_argument("--istio", action="append", metavar="[NAME=]SPEC",
                    help="networking.istio.io versions: 'head' (v1,v1beta1,v1alpha3; default), '1.17' "
                         "(v1beta1,v1alpha3 with the 1.17.8 schemas) or a list such as v1alpha3,v1beta1")
    ap.add_argument("--istio-schema", action="append", metavar="[NAME=]1.17|head",
                    help="schema generation (default: head when v1 is served, else 1.17)")
    ap.add_argument("--no-smm", action="append", metavar="NAME",
                    help="do not install the IstioMeshGateway CRD in NAME ('all' for every cluster)")
    ap.add_argument("--operator-delay", type=float, default=0.5, metavar="SECONDS",
                    help="Reconciling -> Available delay of the simulated IMGW operator (default 0.5)")
    ap.add_argument("--port", action="append", metavar="NAME=PORT", help="fixed loopback port for NAME")
    ap.add_argument("--namespace", action="append", metavar="NS",
                    help="namespace to create in every cluster at start (repeatable)")
    ap.add_argument("--server-version", action="append", metavar="[NAME=]X.Y.Z",
                    help="gitVersion reported by /version (default 1.32.4)")
    ap.add_argument("--bookmark-interval", type=float, default=5.0, metavar="SECONDS",
                    help="watch bookmark period when allowWatchBookmarks=true (default 5)")
    ap.add_argument("--history", type=int, default=10000, metavar="N",
                    help="watch events kept per cluster before compaction (default 10000)")
    ap.add_argument("--light", action="store_true",
                    help="one accept thread for every listener (epoll) instead of one polling thread "
                         "per listener: for hundreds of clusters in one process; same wire behaviour")
    args = ap.parse_args(argv)

    t0 = time.time()
    names = [n.strip() for n in args.clusters.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        sys.exit("kubesim: --clusters needs distinct names")
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    try:
        os.unlink(os.path.join(d, "ready"))
    except FileNotFoundError:
        pass
    istio = _per_cluster(args.istio, names, "--istio")
    schema_gen = _per_cluster(args.istio_schema, names, "--istio-schema")
    ports = _per_cluster(args.port, names, "--port", int)
    sversion = _per_cluster(args.server_version, names, "--server-version")
    no_smm = set()
    for n in args.no_smm or []:
        if n == "all":
            no_smm.update(names)
        elif n in names:
            no_smm.add(n)
        else:
            sys.exit("kubesim: --no-smm: unknown cluster %r" % n)

    pki = certs.make_pki(os.path.join(d, "pki"))
    ca = os.path.join(d, "ca.crt")
    with open(pki["ca"]) as f:
        write(ca, f.read(), 0o644)
    ccrt, ckey = pki["clients"]["cert-admin"]

    sim = Sim(d, light=args.light)
    sim.make_ssl(pki)
    for n in names:
        versions, gen = parse_istio(istio.get(n, "head"))
        gen = schema_gen.get(n, gen)
        if gen not in ("1.17", "head"):
            sys.exit("kubesim: --istio-schema must be 1.17 or head")
        reg = build_registry(versions, gen, n not in no_smm)
        ctx = ClusterCtx(sim, n, reg, {"operator_delay": args.operator_delay, "port": ports.get(n, 0),
                                      "server_version": sversion.get(n), "history": args.history,
                                      "bookmark_interval": args.bookmark_interval})
        ctx.istio = (versions, gen)
        sim.clusters[n] = ctx
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"]:
            ctx.cluster.ensure_namespace(ns, "kube-apiserver")
        for ns in args.namespace or []:
            ctx.cluster.ensure_namespace(ns)
        sim.start_listener(ctx)
        server = "https://127.0.0.1:%d" % ctx.port
        admin = ctx.rotate("admin")
        ro = ctx.rotate("readonly")
        ctx.rotate("exec")
        plugin = os.path.join(d, "%s-exec-plugin" % n)
        write(plugin, "#!/bin/sh\n# kubesim exec credential plugin for cluster %s: prints the current\n"
                      "# ExecCredential that kubesim keeps in %s-exec-credential.json.\n"
                      "echo \"$(date +%%s) $$\" >> '%s'\ncat '%s'\n"
              % (n, n, os.path.join(d, "%s-exec.log" % n), ctx.exec_file()), 0o755)
        write(os.path.join(d, "%s.kubeconfig" % n), kubeconfig(n, server, ca, "    token: %s\n" % admin))
        write(os.path.join(d, "%s-readonly.kubeconfig" % n), kubeconfig(n, server, ca, "    token: %s\n" % ro))
        write(os.path.join(d, "%s-cert.kubeconfig" % n),
              kubeconfig(n, server, ca, "    client-certificate: %s\n    client-key: %s\n" % (ccrt, ckey)))
        write(os.path.join(d, "%s-exec.kubeconfig" % n), kubeconfig(n, server, ca, (
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: %s\n"
            "      interactiveMode: Never\n      provideClusterInfo: false\n") % plugin))
        write(os.path.join(d, "%s.port" % n), "%d\n" % ctx.port, 0o644)

    # a plain flag: the handler runs on the main thread, and Event.set() there
    # deadlocks when the signal lands inside Event.wait() (the same lock).
    # The main thread sleeps in select() on the signal wakeup pipe, which
    # Python writes to on every signal: no polling, no lost wakeup.
    stop = []
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)

    def on_signal(signum, frame):
        stop.append(signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    write(os.path.join(d, "ready"), "".join("%s https://127.0.0.1:%d\n" % (n, sim.clusters[n].port)
                                            for n in names), 0o644)
    sys.stderr.write("kubesim: %d cluster(s) ready in %.0f ms: %s\n" % (
        len(names), (time.time() - t0) * 1000,
        ", ".join("%s=https://127.0.0.1:%d" % (n, sim.clusters[n].port) for n in names)))
    sys.stderr.flush()
    while not stop:
        select.select([wake_r], [], [])
        os.read(wake_r, 64)
    sim.stop()
    try:
        os.unlink(os.path.join(d, "ready"))
    except FileNotFoundError:
        pass
    return 0
