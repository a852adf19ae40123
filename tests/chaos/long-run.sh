#!/bin/sh
# The long fault campaign (docs/reliability.md): at least 200 SIGKILLs of
# `egressd run` during rollouts, with the API-server, Git, disk and clock
# faults of tests/chaos/chaos.py. Prints the JSON summary, which is also
# written to $OUT (default ./chaos-long-run.json), and exits 1 on any
# invariant violation (2 when the campaign itself failed).
#
#   tests/chaos/long-run.sh [SEED] [KILLS]
#   EGRESSD=build/daemon/cli/egressd tests/chaos/long-run.sh 2026 200
#
# Takes 35-60 minutes on a 2-core machine; run it as root (the state
# directory goes on a tmpfs) with libfaketime installed (Debian: faketime).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
seed=${1:-2026}
kills=${2:-200}
: "${EGRESSD:=$src/build/daemon/cli/egressd}"
: "${OUT:=chaos-long-run.json}"
export EGRESSD EGRESSD_SOURCE_DIR="$src" PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$here/chaos.py" --seed "$seed" --kills "$kills" --kill-share 1.0 --summary "$OUT"
