#!/bin/sh
# Drift -> corrected from a watch event (issue 14 §1); see latency.py.
#   bench/watch/run.sh [path/to/egressd] [--samples N]
# On the real kube-apiserver: EGRESSD_TEST_APISERVER=real REALK8S_BIN=build/realk8s bench/watch/run.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
egressd=${1:-$here/../../build/daemon/cli/egressd}
shift $(( $# > 0 ? 1 : 0 ))
exec /usr/bin/python3 "$here/latency.py" --egressd "$egressd" "$@"
