#!/bin/sh
# Benchmark a sync of N intents' objects to an API server (the kubesim
# emulator, or with BENCH_SYNC_OPTS=--apiserver=real the real kube-apiserver of
# tests/realk8s): egressd
# sync --once against kubectl apply --server-side on the same manifests, a
# create pass and a no-op pass each (issue 6). See bench-sync.py for what is
# measured and how.
#   bench/sync/run.sh [path/to/egressd] [sizes...]
# Prints one line per size, tool and pass: wall time, CPU time (user+sys) and
# peak RSS of the client (GNU time, Debian package "time"), the emulator's CPU,
# and the requests it received by kind. Options for bench-sync.py (e.g.
# --no-kubectl) can be given in BENCH_SYNC_OPTS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
egressd=${1:-$here/../../build/daemon/cli/egressd}
shift $(( $# > 0 ? 1 : 0 ))
# shellcheck disable=SC2086
exec /usr/bin/python3 "$here/bench-sync.py" --egressd "$egressd" ${BENCH_SYNC_OPTS:-} "$@"
