#!/usr/bin/python3
"""Judge the rendering with the Istio oracle (ctest mesh.goldens).

For every golden of tests/data/render (what `egressd render` prints, checked
byte for byte by the unit tests), run meshcheck --table and compare each row's
verdict with the expected table next to it (<golden>.mesh: one line per
request, "FROM → HOST:PORT/PROTO | VERDICT (reason)"), and run Istio's
analyzers (no error or warning). Then render the example for each cluster
with every Istio API version (v1beta1 and v1alpha3 are what Istio 1.17
serves, v1 Istio head) and check the verdicts are the golden's.

    judge.py MESHCHECK EGRESSD            (EGRESSD_UPDATE_GOLDEN=1 rewrites the .mesh files)
"""
import glob
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
GOLDENS = os.path.join(SOURCE, "tests", "data", "render")
EXAMPLE = os.path.join(SOURCE, "repo-layout", "example")


def verdicts(meshcheck, manifests):
    r = subprocess.run([meshcheck, "--manifests", manifests, "--table"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("meshcheck --table %s: exit %d\n%s%s" % (manifests, r.returncode, r.stdout, r.stderr))
    rows = []
    for line in r.stdout.splitlines():
        parts = [p.strip() for p in line.split(" | ")]
        rows.append("%s | %s" % (parts[0], parts[-1]))
    return rows, r.stdout


def allowed_codes(case_dir):
    """Analyzer codes a golden case expects (its analyze-allow file: one code
    per line, then why), printed but not failing."""
    try:
        with open(os.path.join(case_dir, "analyze-allow")) as f:
            return [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []


def analyze(meshcheck, manifests, allow=()):
    argv = [meshcheck, "--analyze", manifests]
    if allow:
        argv.append("--allow=" + ",".join(allow))
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("meshcheck --analyze %s: exit %d\n%s%s" % (manifests, r.returncode, r.stdout, r.stderr))


def main():
    meshcheck, egressd = sys.argv[1], sys.argv[2]
    update = os.environ.get("EGRESSD_UPDATE_GOLDEN") == "1"
    failures = []
    goldens = sorted(glob.glob(os.path.join(GOLDENS, "*", "*.yaml")))
    if not goldens:
        raise SystemExit("no goldens under %s" % GOLDENS)
    by_cluster = {}
    for g in goldens:
        rows, full = verdicts(meshcheck, g)
        analyze(meshcheck, g, allowed_codes(os.path.dirname(g)))
        expected_file = g[:-len(".yaml")] + ".mesh"
        rel = os.path.relpath(g, SOURCE)
        if update:
            with open(expected_file, "w") as f:
                f.write("\n".join(rows) + "\n")
        try:
            with open(expected_file) as f:
                want = f.read().splitlines()
        except FileNotFoundError:
            failures.append("%s: no expected table %s (EGRESSD_UPDATE_GOLDEN=1 writes it)" % (rel, expected_file))
            continue
        if rows != want:
            failures.append("%s: the oracle's table differs from %s:\n  got:\n    %s\n  want:\n    %s\n  full:\n%s"
                            % (rel, os.path.relpath(expected_file, SOURCE), "\n    ".join(rows),
                               "\n    ".join(want), full))
        print("%s: %d rows as expected" % (rel, len(rows)) if rows == want else "%s: DIFFERS" % rel)
        by_cluster[os.path.basename(g)[:-len(".yaml")]] = want
    with tempfile.TemporaryDirectory() as tmp:
        for cluster in ("canary", "prod-eu", "prod-us"):
            want = by_cluster.get(cluster)
            for api in ("v1beta1", "v1alpha3", "v1"):
                out = os.path.join(tmp, "%s-%s.yaml" % (cluster, api))
                with open(out, "w") as f:
                    subprocess.run([egressd, "render", EXAMPLE, "--cluster", cluster, "--istio-api", api],
                                   stdout=f, check=True)
                rows, full = verdicts(meshcheck, out)
                analyze(meshcheck, out)
                if want is not None and rows != want:
                    failures.append("example %s with networking.istio.io/%s: the verdicts differ from the golden's:\n%s"
                                    % (cluster, api, full))
                else:
                    print("example %s, networking.istio.io/%s: %d rows, as the golden" % (cluster, api, len(rows)))
    if failures:
        print("\n".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
