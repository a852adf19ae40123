#!/usr/bin/python3
"""Generate a config repo of N intents for benchmarks.

    gen-repo.py DIR N

10 gateways in 10 namespaces, a Fleet of 3 clusters, and N intents spread
over 100 source namespaces in files of 100 intents each. Every intent has
two hosts and two ports (HTTP 80 and TLS 443); one in ten selects clusters by
label, one in twenty enforces, one in ten originates TLS (HTTP only). Hosts
are unique per intent, so no conflict rule fires: the benchmark measures the
full validate + render path.
"""
import os
import sys


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(os.path.join(out, "gateways"), exist_ok=True)
    os.makedirs(os.path.join(out, "intents"), exist_ok=True)
    with open(os.path.join(out, "fleet.yaml"), "w") as f:
        f.write("apiVersion: egressd.io/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n  clusters:\n"
                "    - {name: c1, labels: {env: staging, region: eu}}\n"
                "    - {name: c2, labels: {env: prod, region: eu}}\n"
                "    - {name: c3, labels: {env: prod, region: us}}\n"
                "  rollout:\n    waves:\n"
                "      - {name: staging, selector: {matchLabels: {env: staging}}}\n"
                "      - {name: prod, selector: {matchLabels: {env: prod}}}\n")
    for g in range(10):
        with open(os.path.join(out, "gateways", "gw%d.yaml" % g), "w") as f:
            f.write("apiVersion: egressd.io/v1\nkind: EgressGateway\n"
                    "metadata: {name: gw%d, namespace: egress-%d}\n"
                    "spec:\n  controlPlane: {name: cp-v117x, namespace: istio-system}\n"
                    "  service:\n    ports:\n"
                    "      - {name: http, port: 80, targetPort: 8080}\n"
                    "      - {name: tls, port: 443, targetPort: 8443}\n" % (g, g))
    per_file = 100
    for start in range(0, n, per_file):
        with open(os.path.join(out, "intents", "batch-%05d.yaml" % (start // per_file)), "w") as f:
            for i in range(start, min(n, start + per_file)):
                origination = i % 10 == 5
                ports = ("    - {number: 80, protocol: HTTP}\n" if origination else
                         "    - {number: 80, protocol: HTTP}\n    - {number: 443, protocol: TLS}\n")
                f.write("---\napiVersion: egressd.io/v1\nkind: EgressIntent\n"
                        "metadata: {name: svc-%d, namespace: team-%d}\n"
                        "spec:\n  gateway: egress-%d/gw%d\n"
                        "  hosts: [api-%d.example.com, cdn-%d.example.net]\n"
                        "  ports:\n%s" % (i, i % 100, i % 10, i % 10, i, i, ports))
                if origination:
                    f.write("  tlsOrigination: true\n")
                if i % 10 == 3:
                    f.write("  clusters: {matchLabels: {region: eu}}\n")
                if i % 20 == 7:
                    f.write("  enforce: true\n")


if __name__ == "__main__":
    main()
