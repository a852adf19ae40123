#!/bin/sh
# egressd's main job on the bundled example, self-contained: build egressd,
# make a local config repo from repo-layout/example with signed commits (a
# throw-away key), start three emulated clusters (tests/kubesim) for the
# example's Fleet, and run `egressd run` in the foreground so you watch the
# first rollout, wave by wave. Ctrl-C stops everything it started.
#
#   sh repo-layout/demo.sh            (after: sh tests/install-deps.sh)
#
# Environment: DEMO_DIR (default /tmp/egressd-demo, recreated),
# DEMO_SECONDS (stop by itself after that many seconds: headless runs),
# EGRESSD (use this binary instead of building one), DEMO_APISERVER=real
# (real kube-apiservers from tests/realk8s instead of the emulator; the
# first run builds them with Go, which takes minutes).
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
dir=${DEMO_DIR:-/tmp/egressd-demo}
seconds=${DEMO_SECONDS:-0}

if [ -n "${EGRESSD:-}" ]; then
  egressd=$EGRESSD     # a binary built elsewhere (the test suite's)
else
  echo "== building egressd"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$(nproc)" >/dev/null
  egressd=$src/build/daemon/cli/egressd
fi

rm -rf "$dir"
mkdir -p "$dir"
sim_pid=
daemon_pid=
cleanup() {
  trap - INT TERM EXIT
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  echo "== stopped; everything is left in $dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== a config repo from repo-layout/example, signed with a throw-away key"
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME="Demo Admin" GIT_AUTHOR_EMAIL=admin@example.com \
  GIT_COMMITTER_NAME="Demo Admin" GIT_COMMITTER_EMAIL=admin@example.com
ssh-keygen -q -t ed25519 -N '' -C admin@example.com -f "$dir/signing-key"
echo "admin@example.com namespaces=\"git\" $(cut -d' ' -f1,2 "$dir/signing-key.pub")" \
  > "$dir/allowed_signers"
git init -q -b main "$dir/config-repo"
cp -r repo-layout/example/. "$dir/config-repo/"
# the example's bake times (60s, 300s) are for production; the demo is quicker
sed -i 's/bake: 60s/bake: 5s/; s/bake: 300s/bake: 5s/' "$dir/config-repo/fleet.yaml"
git -C "$dir/config-repo" config gpg.format ssh
git -C "$dir/config-repo" config user.signingkey "$dir/signing-key"
git -C "$dir/config-repo" config commit.gpgsign true
git -C "$dir/config-repo" add -A
git -C "$dir/config-repo" commit -q -m "Egress policy: the example config repo"

case ${DEMO_APISERVER:-kubesim} in
  kubesim) echo "== three emulated clusters: canary, prod-eu, prod-us"
           apiserver="/usr/bin/python3 tests/kubesim/kubesim" ;;
  real)    echo "== three real kube-apiservers (tests/realk8s): canary, prod-eu, prod-us"
           apiserver=tests/realk8s/realk8s ;;
  *)       echo "demo: DEMO_APISERVER must be kubesim or real" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
$apiserver --dir "$dir/clusters" --clusters canary,prod-eu,prod-us \
  --namespace smm-demo --namespace egress-system --namespace payments --namespace news \
  --namespace ci --namespace analytics >"$dir/clusters.log" 2>&1 &
sim_pid=$!
while [ ! -f "$dir/clusters/ready" ]; do
  kill -0 "$sim_pid" 2>/dev/null || { cat "$dir/clusters.log"; exit 1; }
  sleep 0.1
done

"$egressd" keygen -f "$dir/ledger_ed25519" >/dev/null
cat >"$dir/egressd.yaml" <<EOF
# The host config of the demo (see docs/host-config.md).
repository:
  url: file://$dir/config-repo
  interval: 2s
verify:
  policy: all
  allowedSigners: $dir/allowed_signers
clusters:
  - {name: canary, kubeconfig: $dir/clusters/canary.kubeconfig}
  - {name: prod-eu, kubeconfig: $dir/clusters/prod-eu.kubeconfig}
  - {name: prod-us, kubeconfig: $dir/clusters/prod-us.kubeconfig}
sync:
  driftInterval: 10s
  healthTimeout: 30s
state:
  dir: $dir/state
  runtimeDir: $dir/run
ledger:
  key: $dir/ledger_ed25519
metrics:
  textfile: $dir/metrics.prom
EOF

cat <<EOF

== egressd is starting; it logs below. In another terminal:

  see what it reports:     $egressd status --config $dir/egressd.yaml
                           $egressd rollout status --config $dir/egressd.yaml
  look with kubectl:       kubectl --kubeconfig $dir/clusters/prod-eu.kubeconfig \\
                             get virtualservices -A -l app.kubernetes.io/managed-by=egressd
  change an intent:        cd $dir/config-repo
                           sed -i 's/httpbin.org\]/httpbin.org, postman-echo.com]/' intents/httpbin.yaml
                           git commit -am "httpbin: also postman-echo"    # signed (commit.gpgsign)
                           (within 2 s egressd verifies it and rolls it out, canary first)
  correct drift:           kubectl --kubeconfig $dir/clusters/canary.kubeconfig -n smm-demo \\
                             delete virtualservice httpbin-httpbin.org    # back within 10 s
  verify the ledger:       $egressd ledger verify --dir $dir/state/ledger
                           ssh-keygen -Y verify -f $dir/ledger_ed25519.allowed_signers \\
                             -I $(cut -d' ' -f1 "$dir/ledger_ed25519.allowed_signers") -n egressd-ledger \\
                             -s $dir/state/ledger/checkpoint.sig < $dir/state/ledger/checkpoint

Ctrl-C stops egressd and the clusters.

EOF
if [ "$seconds" -gt 0 ]; then
  "$egressd" run --config "$dir/egressd.yaml" &
  daemon_pid=$!
  sleep "$seconds"
  "$egressd" status --config "$dir/egressd.yaml" || true
else
  "$egressd" run --config "$dir/egressd.yaml" &
  daemon_pid=$!
  wait "$daemon_pid"
fi
