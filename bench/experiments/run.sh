#!/usr/bin/env bash
# Builds `count` once unpatched and once per patch in this directory (each
# applied alone to a clean tree), then times them interleaved with ab.sh.
#
# usage: bench/experiments/run.sh ["case ..."] [patch ...]
#   R=7 bench/experiments/run.sh "fil-yield-2 fil-yield-2-diff coro-switch"
# The patches are measurement probes, not candidates: several are unsound
# (they drop the canary check or assume one runtime of exactly 2 fibers).
# They apply to the tree they measured, the commit in ./BASE (the scheduler
# has changed since); check one out to rerun them.
set -euo pipefail
cd "$(dirname "$0")/../.."
# N = 2 cases only by default: xor-successor and static-core assume 2 fibers, 1 runtime
cases="${1:-fil-yield-2 fil-yield-2-diff coro-switch}"
shift || true
patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then patches=(bench/experiments/*.patch); fi
if ! git diff --quiet; then
    echo "run.sh: the work tree has changes; commit or stash them first" >&2
    exit 1
fi
out=/tmp/filament-experiments
mkdir -p "$out"
build() {
    cargo build --quiet --profile bench -p filament-bench --bin count
    cp target/release/count "$out/$1"
}
build base
bins=("$out/base")
for p in "${patches[@]}"; do
    name=$(basename "$p" .patch)
    git apply "$p"
    ok=0
    build "$name" || ok=$?
    git checkout -- src bench/src # restore the tree whatever the build did
    [ "$ok" -eq 0 ] || exit "$ok"
    bins+=("$out/$name")
done
bench/ab.sh "$cases" "${bins[@]}"
