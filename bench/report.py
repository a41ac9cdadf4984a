#!/usr/bin/env python3
"""Markdown table of one `cargo bench -p filament-bench` run.

Reads the criterion medians (target/criterion/<case>/new/estimates.json) of
every case listed by `count list`, prints per-op medians with their 95% CI and
ratios computed within this one run. Warns if the estimates were not all
written by the same run (a filtered `cargo bench` leaves older results behind).

usage: python3 bench/report.py [BASELINE]
  after `cargo bench -p filament-bench [-- --save-baseline BASELINE]`;
  BASELINE defaults to criterion's "new" (the latest run).
"""
import json
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
crit = os.path.join(root, "target", "criterion")
baseline = sys.argv[1] if len(sys.argv) > 1 else "new"

# Case names and descriptions, in report order, straight from the CASES table
# (no build needed).
with open(os.path.join(root, "bench", "src", "lib.rs")) as f:
    cases = re.findall(r'name: "([^"]+)",\s*what: "([^"]*)"', f.read())

med, lo, hi, mtime = {}, {}, {}, {}
for name, _ in cases:
    path = os.path.join(crit, name, baseline, "estimates.json")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        m = json.load(f)["median"]
    med[name] = m["point_estimate"]
    lo[name] = m["confidence_interval"]["lower_bound"]
    hi[name] = m["confidence_interval"]["upper_bound"]
    mtime[name] = os.path.getmtime(path)

if not med:
    sys.exit("no criterion results; run `cargo bench -p filament-bench` first")
if max(mtime.values()) - min(mtime.values()) > 1800:
    print("WARNING: estimates span more than 30 minutes: not one run", file=sys.stderr)


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.2f} ns"


base = "coro-switch"
print(f"| case | what | median / op | 95% CI of median | ÷ {base} |")
print("|---|---|---:|---:|---:|")
for name, what in cases:
    if name not in med:
        continue
    ratio = f"{med[name] / med[base]:.2f}×" if base in med else "–"
    print(f"| `{name}` | {what} | {fmt(med[name])} | {fmt(lo[name])} – {fmt(hi[name])} | {ratio} |")

pairs = [
    ("fil-yield-2", "coro-switch", "<= 1.5"),
    ("fil-yield-2-diff", "coro-switch", "<= 1.5"),
    ("fil-yield-2-diff", "fil-yield-2", ""),
    ("fil-yield-64", "fil-yield-2", ""),
    ("fil-yield-1024", "fil-yield-2", ""),
    ("fil-yield-10000", "fil-yield-2", ""),
    ("fil-yield-1024", "coro-ring-1024", ""),
    ("fil-sparse-2of1024", "fil-yield-2", "= 1"),
    ("fil-spawn", "coro-create", "<= 1.5"),
    ("fil-spawn-take", "coro-create", ""),
    ("fil-spawn-yield", "coro-create", ""),
    ("fil-spawn-join", "coro-create", ""),
    ("fil-yield-2", "tokio-yield", ""),
    ("fil-yield-2", "thread-mpsc", ""),
]
rows = [(a, b, bar) for a, b, bar in pairs if a in med and b in med]
if rows:
    print()
    print("| ratio (same run) | value | bar |")
    print("|---|---:|---|")
    for a, b, bar in rows:
        print(f"| `{a}` ÷ `{b}` | {med[a] / med[b]:.3f} | {bar} |")
