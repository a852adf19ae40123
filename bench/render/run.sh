#!/bin/sh
# Benchmark validate + render on generated config repos of growing size.
#   bench/render/run.sh [path/to/egressd] [sizes...]
# Prints one line per size and command: wall time, CPU time (user+sys) and
# peak RSS, measured by GNU time (Debian package "time").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
egressd=${1:-$here/../../build/daemon/cli/egressd}
shift $(( $# > 0 ? 1 : 0 ))
sizes=${*:-1000 2000 5000 10000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-8s %-22s %8s %8s %9s %10s\n' intents command wall_s cpu_s rss_mib objects
for n in $sizes; do
  repo=$tmp/repo-$n
  /usr/bin/python3 "$here/gen-repo.py" "$repo" "$n"
  objects=$("$egressd" render "$repo" | grep -c '^kind:')
  for cmd in "validate" "render" "render --cluster c2"; do
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e %U %S %M' -o "$tmp/t" "$egressd" $cmd "$repo" >/dev/null
    read -r wall user sys rss < "$tmp/t"
    cpu=$(echo "$user + $sys" | bc)
    printf '%-8s %-22s %8s %8s %9.1f %10s\n' "$n" "$cmd" "$wall" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$objects"
  done
done
