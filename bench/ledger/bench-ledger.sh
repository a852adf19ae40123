#!/bin/sh
# Ledger benchmark (issue 7): appends per second with fdatasync, and the time
# and memory `egressd ledger verify` needs for 100,000 records.
#
#   bench/ledger/bench-ledger.sh [EGRESSD] [RECORDS]
#
# EGRESSD defaults to build/daemon/cli/egressd, RECORDS to 100000. Appends
# are measured on a real file system (BENCH_DISK_DIR, default /var/tmp), where
# every record costs an fdatasync, two fsyncs and a directory fsync; the big
# ledger for verify is built on tmpfs (BENCH_TMPFS_DIR, default /dev/shm) so
# that building it does not take minutes. Needs /usr/bin/time (Debian
# package "time"). Figures go to docs/benchmarks.md, never into a test.
set -eu

EGRESSD=${1:-build/daemon/cli/egressd}
RECORDS=${2:-100000}
DISK=${BENCH_DISK_DIR:-/var/tmp}
TMPFS=${BENCH_TMPFS_DIR:-/dev/shm}
APPENDS=${BENCH_APPENDS:-1000}

[ -x "$EGRESSD" ] || { echo "no egressd binary at $EGRESSD" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "install the 'time' package (/usr/bin/time)" >&2; exit 2; }

work_disk=$(mktemp -d "$DISK/egressd-bench-XXXXXX")
work_tmpfs=$(mktemp -d "$TMPFS/egressd-bench-XXXXXX")
trap 'rm -rf "$work_disk" "$work_tmpfs"' EXIT INT TERM

"$EGRESSD" keygen -f "$work_disk/key" >/dev/null

echo "== appends with fdatasync ($DISK, $APPENDS records)"
"$EGRESSD" ledger append-test --dir "$work_disk/ledger" --key "$work_disk/key" --create \
  --count 0 --origin egressd/bench/ledger >/dev/null
"$EGRESSD" ledger append-test --dir "$work_disk/ledger" --key "$work_disk/key" \
  --count $((APPENDS / 2)) | tail -n 1

echo "== building $RECORDS records on $TMPFS"
# append-test writes 19 records every 8 rounds (intent + result each round,
# a drift every 4th, a prune every 8th), after the genesis record
pairs=$(( ((RECORDS - 1) * 8 + 18) / 19 ))
"$EGRESSD" ledger append-test --dir "$work_tmpfs/ledger" --key "$work_disk/key" --create \
  --count "$pairs" --origin egressd/bench/ledger | tail -n 1
size=$(wc -c < "$work_tmpfs/ledger/ledger.jsonl")
lines=$(wc -l < "$work_tmpfs/ledger/ledger.jsonl")
echo "ledger.jsonl: $lines records, $size bytes ($((size / lines)) bytes per record)"

measure() {
  label=$1
  shift
  /usr/bin/time -f "$label: %e s wall, %U s user, %S s sys, peak RSS %M KiB" "$@" \
    >/dev/null 2>"$work_disk/time.txt" || { cat "$work_disk/time.txt"; exit 1; }
  tail -n 1 "$work_disk/time.txt"
}

echo "== verify (three runs)"
for i in 1 2 3; do
  measure "verify" "$EGRESSD" ledger verify --dir "$work_tmpfs/ledger" --pubkey "$work_disk/key.pub"
done
echo "== prove a record in the middle, show -o json"
measure "prove" "$EGRESSD" ledger prove --dir "$work_tmpfs/ledger" $((lines / 2))
measure "show -o json" "$EGRESSD" ledger show --dir "$work_tmpfs/ledger" -o json
