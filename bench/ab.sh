#!/usr/bin/env bash
# Interleaved A/B timing of `count` binaries (one per build variant).
#
# Each round runs every case once with every binary, alternating, so slow
# drift on a shared host hits all variants alike. Prints min / median ns per op
# over R rounds (one process per measurement: the per-process "mode" of a
# case, see bench/README.md, shows up as a min/median gap).
#
# usage: bench/ab.sh "case1 case2 ..." bin1 bin2 ...
#   cp target/release/count /tmp/count.base   # after `cargo build --profile bench -p filament-bench --bin count`
#   R=9 bench/ab.sh "fil-yield-2 fil-yield-64" /tmp/count.base /tmp/count.variant
set -euo pipefail
R="${R:-7}"
cases="$1"
shift
python3 - "$R" "$cases" "$@" <<'PY'
import re, statistics, subprocess, sys

rounds, cases, bins = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]

def ops(case):
    # multiples of every case's granularity, ~0.2-0.5 s per run
    if "10000" in case:
        return 20_000_000
    if "1024" in case:
        return 40_960_000
    return 100_000_000

UNIT = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}

def run(binary, case):
    n = ops(case)
    out = subprocess.run([binary, case, str(n)], capture_output=True, text=True, check=True).stdout
    m = re.match(r"([0-9.]+)(ns|µs|ms|s)$", out.split("\t")[2].strip())
    return float(m.group(1)) * UNIT[m.group(2)] / n * 1e9

res = {(b, c): [] for b in bins for c in cases}
for _ in range(rounds):
    for c in cases:
        for b in bins:
            res[(b, c)].append(run(b, c))
print(f"{'min / median ns per op':<24}" + "".join(f"{b.rsplit('/', 1)[-1]:>22}" for b in bins))
for c in cases:
    cells = "".join(f"{min(res[(b, c)]):>11.3f} /{statistics.median(res[(b, c)]):>8.3f}" for b in bins)
    print(f"{c:<24}{cells}")
PY
