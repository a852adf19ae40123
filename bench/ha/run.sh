#!/bin/sh
# Failover of coordinated members (docs/ha.md); see failover.py.
#   bench/ha/run.sh [path/to/egressd] [--samples N] [--lease 15,10,2] [--signal KILL|TERM]
# On the real kube-apiserver: EGRESSD_TEST_APISERVER=real REALK8S_BIN=build/realk8s bench/ha/run.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
egressd=${1:-$here/../../build/daemon/cli/egressd}
shift $(( $# > 0 ? 1 : 0 ))
exec /usr/bin/python3 -W ignore "$here/failover.py" --egressd "$egressd" "$@"
