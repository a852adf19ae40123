#!/bin/sh
# Build egressd and run every test: unit tests (also under AddressSanitizer
# and UBSan), the fuzz corpora, the API-server emulator's fidelity suite
# against the real kubectl, and the integration tests; then the same
# integration suites on real kube-apiservers (tests/realk8s, built with Go
# from upstream modules), the parity suite of the emulator against the real
# server; then a short libFuzzer run of every fuzz target. Exit status 0 only
# if all of it passed.
#
#   tests/run-all.sh            (from the source tree; run tests/install-deps.sh first)
#
# Environment: BUILD_DIR (default build), JOBS (default: number of CPUs),
# FUZZ_SECONDS per fuzz target (default 20; 0 skips the libFuzzer runs),
# REALK8S=0 skips the real-server pass (and its Go build), MESHCHECK=0 the
# Istio oracle (tests/meshcheck, built with Go from istio.io/istio).
set -eu
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-20}
realk8s=${REALK8S:-1}
meshcheck=${MESHCHECK:-1}
# Go is for the test oracles; Debian's machines here keep it in /usr/local/go
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
if { [ "$realk8s" = 1 ] || [ "$meshcheck" = 1 ]; } && ! command -v go >/dev/null 2>&1; then
  echo "run-all: no Go toolchain for tests/realk8s and tests/meshcheck (set REALK8S=0 MESHCHECK=0 to skip them)" >&2
  exit 1
fi
real_opt=-DEGRESSD_REALK8S=OFF
[ "$realk8s" = 1 ] && real_opt=-DEGRESSD_REALK8S=ON
mesh_opt=-DEGRESSD_MESHCHECK=OFF
[ "$meshcheck" = 1 ] && mesh_opt=-DEGRESSD_MESHCHECK=ON

step() { printf '\n==== %s\n' "$*"; }

step "build ($build, -Werror; the Go oracles: $real_opt $mesh_opt)"
cmake -S . -B "$build" -DENABLE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo "$real_opt" "$mesh_opt" >/dev/null
cmake --build "$build" -j "$jobs"

step "unit, fuzz corpora, kubesim, Istio oracle and integration tests"
ctest --test-dir "$build" -j "$jobs" -LE real --output-on-failure

if [ "$realk8s" = 1 ]; then
  # one at a time: each test starts several kube-apiservers
  step "on real kube-apiservers: integration suites, parity with kubesim, kubectl fidelity"
  ctest --test-dir "$build" -L real --output-on-failure
fi

step "unit tests under AddressSanitizer + UBSan"
cmake -S . -B "$build-asan" -DENABLE_WERROR=ON -DSANITIZE=address,undefined \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build-asan" -j "$jobs"
CK_FORK=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build-asan" -L 'unit|fuzz' -j "$jobs" --output-on-failure

if [ "$fuzz_seconds" -gt 0 ] && command -v clang >/dev/null; then
  step "libFuzzer, ${fuzz_seconds}s per target"
  CC=clang cmake -S . -B "$build-fuzz" -DENABLE_FUZZ=ON -DSANITIZE=address,undefined \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$build-fuzz" -j "$jobs"
  for fuzzer in "$build-fuzz"/tests/fuzz/fuzz-*; do
    [ -x "$fuzzer" ] || continue
    name=$(basename "$fuzzer")
    corpus=tests/fuzz/corpus/${name#fuzz-}
    work=$(mktemp -d)
    echo "-- $name"
    "$fuzzer" "$work" "$corpus" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
      -print_final_stats=1 2>"$work.log" || { tail -50 "$work.log"; exit 1; }
    grep -E '^stat::number_of_executed_units' "$work.log" || true
    rm -rf "$work" "$work.log"
  done
fi

step "all tests passed"
