#!/bin/sh
# Install what building, running and testing egressd needs on Debian 12
# (bookworm), as root. Idempotent; used by the README's commands and by CI.
set -eu
export DEBIAN_FRONTEND=noninteractive
packages="
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libgit2-dev libyaml-dev libcurl4-openssl-dev libssl-dev libsodium-dev check
  python3 python3-yaml python3-jsonschema python3-cryptography openssl git openssh-client openssh-server lighttpd
  time bc diffutils procps iproute2 debootstrap systemd-container man-db nghttp2-server faketime
"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
# Go builds the test oracles (tests/realk8s: kube-apiserver and etcd from
# upstream modules). Debian 12's golang is too old for them; the project's
# machines carry Go in /usr/local/go.
if ! command -v go >/dev/null 2>&1 && ! [ -x /usr/local/go/bin/go ]; then
  echo "install-deps: warning: no Go toolchain (1.23 or newer); run the tests with REALK8S=0" >&2
fi
# kubectl is not packaged by Debian in a usable version; the machines this
# project runs on carry the Google Cloud SDK kubectl (a dispatcher that runs
# kubectl.1.32 for a 1.32 server). The kubesim fidelity suite needs it.
if ! [ -x /usr/lib/google-cloud-sdk/bin/kubectl.1.32 ] && ! command -v kubectl >/dev/null; then
  echo "install-deps: warning: no kubectl found; the kubesim suite will fail" >&2
fi
