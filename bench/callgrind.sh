#!/usr/bin/env bash
# Instructions per operation for the filament cases and the corosensei/tokio
# peers, under `valgrind --tool=callgrind`.
#
# For each case the `count` binary (bench profile: fat LTO, codegen-units=1,
# debug=1) runs U and 2U operations; we report (Ir(2U) - Ir(U)) / U, so process
# start-up, case setup and teardown cancel exactly.
#
# usage: bench/callgrind.sh [case...]        (default: every case but thread-mpsc)
#   U=1280000 bench/callgrind.sh            ops per run (multiple of 2048 and 10000)
#   ANNOTATE=1 bench/callgrind.sh case      also print callgrind_annotate of the 2U run
#   FEATURES=no-fp-control bench/callgrind.sh   build filament-bench with these features
# Raw callgrind files are kept in target/callgrind/<case>.<ops>.out.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
U="${U:-1280000}"

cargo build --quiet --profile bench -p filament-bench --bin count --features "${FEATURES:-}"
bin="$root/target/release/count"
out="$root/target/callgrind"
mkdir -p "$out"

if [ "$#" -gt 0 ]; then
    cases=("$@")
else
    # thread-mpsc is left out: valgrind serialises threads and the hand-off
    # cost is kernel time, which callgrind does not count.
    mapfile -t cases < <("$bin" list | cut -f1 | grep -v '^thread-mpsc$')
fi

ir() { # case ops -> total Ir of one run
    local f="$out/$1.$2.out"
    valgrind --tool=callgrind --callgrind-out-file="$f" "$bin" "$1" "$2" 2>&1 >/dev/null |
        sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p'
}

printf '%-28s %14s %14s %10s\n' case "Ir(U)" "Ir(2U)" "Ir/op"
for c in "${cases[@]}"; do
    a=$(ir "$c" "$U")
    b=$(ir "$c" $((2 * U)))
    per=$(awk -v a="$a" -v b="$b" -v u="$U" 'BEGIN { printf "%.2f", (b - a) / u }')
    printf '%-28s %14s %14s %10s\n' "$c" "$a" "$b" "$per"
    if [ -n "${ANNOTATE:-}" ]; then
        callgrind_annotate --auto=yes --threshold=99 "$out/$c.$((2 * U)).out" | head -150
    fi
done
