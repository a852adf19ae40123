#!/bin/sh
# egressd's main job on the bundled example: build egressd, check the example
# config repo (repo-layout/example) and print what it renders for one cluster
# of its Fleet.
#   repo-layout/demo.sh [CLUSTER]     (default prod-eu; run tests/install-deps.sh first)
set -eu
cd "$(dirname "$0")/.."
cluster=${1:-prod-eu}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
egressd=build/daemon/cli/egressd
echo "== egressd validate repo-layout/example"
$egressd validate repo-layout/example
echo
echo "== egressd render repo-layout/example --cluster $cluster"
$egressd render repo-layout/example --cluster "$cluster"
