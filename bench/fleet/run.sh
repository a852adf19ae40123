#!/bin/bash
# Fleet benchmark (issue 14 §4): N emulated clusters (kubesim, several
# processes for large N), a config repo of M intents, `egressd run` to a
# complete first rollout, then a quiet window, drift -> corrected samples and
# push -> wave 1 samples. Prints a Markdown table row (docs/benchmarks.md,
# "Fleet") and a JSON line with every figure. See bench-fleet.py for what is
# measured and how.
#
#   bench/fleet/run.sh [--egressd PATH] [-n CLUSTERS] [-m INTENTS] [-p EMULATORS]
#                      [--quiet SECONDS] [--drift-samples K] [--push-samples K]
#                      [--interval 15s] [--drift-interval 30s] [--set KEY=VALUE]...
#                      [--append-yaml FILE]... [--webhook-url URL --webhook-secret-file F]
#                      [--max-parallel N] [--canary N] [--bake 2s] [--nofile N] ...
#   bench/fleet/run.sh --help                    every option
#
# Examples:
#   bench/fleet/run.sh --egressd build/daemon/cli/egressd -n 10 -m 100
#   bench/fleet/run.sh --egressd build/daemon/cli/egressd -n 100 -m 100
#   bench/fleet/run.sh --egressd build/daemon/cli/egressd -n 1000 -m 100 --quiet 120
#
# Prerequisites (Debian 12): /usr/bin/python3 (standard library only), git
# (git daemon), openssh-client (ssh-keygen), openssl (kubesim's certificates),
# optionally linux-perf (counts egressd's new connections), and an egressd
# binary (default build/daemon/cli/egressd:
# cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2).
# sh tests/install-deps.sh installs the packages. Memory: the emulators hold
# about 9.5 MiB per cluster with 100 intents (1,000 clusters: ~10 GiB), egressd
# up to ~1 GiB. Time: 10 clusters ~5 min, 100 ~8 min, 300 ~18 min on 2 cores.
# Runs on loopback only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/bench-fleet.py" "$@"
