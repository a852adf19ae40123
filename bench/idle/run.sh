#!/bin/sh
# Idle cost of the daemon (issue 8): egressd run following an unchanged,
# signed config repo (served by git daemon) with 10 emulated clusters, once
# with repository.interval 15s / sync.driftInterval 30s and once with 5s/10s.
# After the first rollout completes it measures a window of WINDOW seconds
# (default 150 per profile, so the default run stays under 6 minutes): CPU per
# hour, RSS, requests per hour to the API servers and the Git server, ledger
# growth. See bench-idle.py for every figure.
#   bench/idle/run.sh [path/to/egressd] [window-seconds]
# Needs git (git daemon), openssh-client (ssh-keygen, to sign the commits).
# More options for bench-idle.py (--profile) in BENCH_IDLE_OPTS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
egressd=${1:-$here/../../build/daemon/cli/egressd}
window=${2:-150}
# shellcheck disable=SC2086
exec /usr/bin/python3 "$here/bench-idle.py" --egressd "$egressd" --window "$window" ${BENCH_IDLE_OPTS:-}
