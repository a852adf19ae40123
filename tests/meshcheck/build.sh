#!/bin/sh
# Build the meshcheck binary (the Istio oracle) into OUT_DIR.
#
#   tests/meshcheck/build.sh OUT_DIR
#
# meshcheck is this package's test binary (`go test -c`): Istio's fake
# discovery server and traffic simulation need a *testing.T. The build uses the
# normal Go caches; go.mod and go.sum are read-only (-mod=readonly), so the
# pinned versions are the ones built. The first build downloads the modules
# from the Go module proxy and takes many minutes (see README.md).
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: tests/meshcheck/build.sh OUT_DIR" >&2
	exit 2
fi
if ! command -v go >/dev/null 2>&1; then
	echo "meshcheck build: go not found in PATH (Go 1.26 or newer is needed)" >&2
	exit 1
fi
here=$(cd "$(dirname "$0")" && pwd -P)
out=$(realpath -m -- "$1")
case "$out/" in
"$here"/*)
	echo "meshcheck build: OUT_DIR must be outside tests/meshcheck ($out)" >&2
	exit 2
	;;
esac
mkdir -p "$out"
log="$out/meshcheck-build.log"
cd "$here"
if ! GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" go test -c -o "$out/meshcheck" . >"$log" 2>&1; then
	first=$(grep -v '^#' "$log" | head -n 1)
	echo "meshcheck build: go test -c failed: ${first:-see log} (full log: $log)" >&2
	exit 1
fi
rm -f "$log"
echo "$out/meshcheck"
