#!/usr/bin/env bash
# Ablation of issue 16's contract: how many callgrind instructions per op each
# guard the contract requires costs, by building `count` with that guard
# compiled out (`--cfg abl_*`, added by contract.patch) and counting.
#
# usage: bench/experiments/ablation/run.sh [variant ...]
#   CASES="fil-spawn-yield fil-channel-pingpong" U=128000 bench/experiments/ablation/run.sh
# Variants (each a set of cfgs; default: all of them, one build each):
#   none      the tree as it is (the patch compiles to nothing without cfgs)
#   stats     no statistics: per-fiber `runs`, spawns/frees/retired-runs counters
#   canary    no canary: not written at spawn, not checked at yield, block or exit
#   unwind    no unwind boundary: no catch_unwind around the closure, no
#             `thread::panicking()` test before a switch
#   bind      no runtime-binding check in primitives (`Binding::bind`/`lease`)
#   guards    no cancel check before blocking, no suspend/interrupt check after
#   all       every one of the above at once
# The patch is a measurement probe, not a candidate: each cfg removes a
# guarantee (memory safety included). It applies to the commit in ./BASE; the
# script checks that commit out into a temporary worktree and builds there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
base=$(cat "$here/BASE")
tree=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tree"' EXIT
git -C "$root" worktree add --detach "$tree" "$base" >/dev/null
(cd "$tree" && git apply "$here/contract.patch")

declare -A cfgs=(
    [none]=""
    [stats]="abl_stats"
    [canary]="abl_canary"
    [unwind]="abl_unwind"
    [bind]="abl_bind"
    [guards]="abl_guards"
    [all]="abl_stats abl_canary abl_unwind abl_bind abl_guards"
)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(none stats canary unwind bind guards all)
cases=${CASES:-coro-call fil-yield-2 fil-spawn fil-spawn-take-locked fil-spawn-yield fil-spawn-join fil-channel-pingpong fil-semaphore-pingpong fil-notify-pingpong}
U=${U:-128000}
out=/tmp/filament-ablation
mkdir -p "$out"
printf '%-8s %-26s %10s\n' variant case "Ir/op"
for v in "${variants[@]}"; do
    flags=""
    for c in ${cfgs[$v]}; do flags="$flags --cfg $c"; done
    # One target directory per variant: RUSTFLAGS changes rebuild everything.
    (cd "$tree" && CARGO_TARGET_DIR="$root/target/ablation-$v" RUSTFLAGS="$flags" \
        cargo build --quiet --profile bench -p filament-bench --bin count)
    bin="$root/target/ablation-$v/release/count"
    for c in $cases; do
        ir() {
            valgrind --tool=callgrind --callgrind-out-file="$out/$v.$c.$1.out" "$bin" "$c" "$1" 2>&1 >/dev/null |
                sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p'
        }
        a=$(ir "$U")
        b=$(ir $((2 * U)))
        awk -v a="$a" -v b="$b" -v u="$U" -v c="$c" -v v="$v" 'BEGIN { printf "%-8s %-26s %10.2f\n", v, c, (b - a) / u }'
    done
done
