#!/bin/sh
# Push -> wave 1 applied with the webhook doorbell (issue 14 §2): N signed
# pushes, each announced by a GitHub-format webhook, against three kubesim
# clusters and a git daemon. See bench-webhook.py for what is measured.
#   bench/webhook/run.sh [path/to/egressd] [pushes]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
egressd=${1:-$here/../../build/daemon/cli/egressd}
exec /usr/bin/python3 "$here/bench-webhook.py" --egressd "$egressd" --pushes "${2:-20}"
