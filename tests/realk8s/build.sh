#!/bin/sh
# Build realk8s and the servers it starts into OUT_DIR (default: ../../build/realk8s):
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver at the version pinned in go.mod
#   etcd            go.etcd.io/etcd/server/v3 at the version pinned in go.mod
#   realk8s         this directory (launcher, controllers, control API)
# Go's module and build caches (GOMODCACHE, GOCACHE) make a second build quick;
# go.sum pins every module (-mod=readonly: nothing is resolved anew).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../build/realk8s}
if ! command -v go >/dev/null 2>&1; then
  [ -x /usr/local/go/bin/go ] && PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null 2>&1; then
  echo "realk8s: no Go toolchain: install Go 1.24 or newer (go in PATH) to build kube-apiserver and etcd" >&2
  exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"
export GOFLAGS="-mod=readonly ${GOFLAGS:-}"
version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)      # v1.32.13
minor=$(echo "$version" | cut -d. -f2)
pkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in $pkgs; do
  ldflags="$ldflags -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
fail() { echo "realk8s: building $1 failed (see the Go output above)" >&2; exit 1; }
go build -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver || fail kube-apiserver
go build -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 || fail etcd
go build -o "$out/realk8s" . || fail realk8s
