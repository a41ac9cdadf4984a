#!/usr/bin/env python3
"""Per-instruction counts per operation of one `count` case, under callgrind.

Runs `count <case> U` and `count <case> 2U` with `--dump-instr=yes` and prints,
for every instruction executed at least 0.5 times per op, (n(2U) - n(U)) / U
next to its disassembly, grouped by function: the listing behind the
instruction totals of `callgrind.sh`.

usage: python3 bench/instr.py <case> [U]        (U defaults to 20000)
       FEATURES=no-fp-control python3 bench/instr.py fil-yield-2
Builds `count` first (bench profile, with $FEATURES), like callgrind.sh.
"""
import collections
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "count")
case = sys.argv[1]
u = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
subprocess.run(["cargo", "build", "--quiet", "--profile", "bench", "-p", "filament-bench", "--bin", "count",
                "--features", os.environ.get("FEATURES", "")], cwd=root, check=True)


def counts(n):
    out = f"/tmp/filament-instr.{case}.{n}.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
         "--compress-strings=no", f"--callgrind-out-file={out}", binary, case, str(n)],
        capture_output=True, check=True)
    c = collections.Counter()
    skip = False
    for line in open(out):
        if line.startswith("calls="):
            skip = True  # the next cost line is the call's inclusive cost
            continue
        m = re.match(r"^(0x[0-9a-f]+)\s+\d+\s+(\d+)", line)
        if m:
            if not skip:
                c[int(m.group(1), 16)] += int(m.group(2))
            skip = False
    return c


a, b = counts(u), counts(2 * u)
dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-M", "intel", binary],
                     capture_output=True, text=True, check=True).stdout
text, func, cur = {}, {}, "?"
for line in dis.splitlines():
    m = re.match(r"^([0-9a-f]+) <(.*)>:", line)
    if m:
        cur = m.group(2)
        continue
    m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
    if m:
        addr = int(m.group(1), 16)
        text[addr], func[addr] = m.group(2), cur
total, last = 0.0, None
for addr in sorted(set(a) | set(b)):
    per = (b[addr] - a[addr]) / u
    if per < 0.5:
        continue
    total += per
    if func.get(addr) != last:
        last = func.get(addr)
        print(f"== {last}")
    print(f"{per:6.2f}  {text.get(addr, '?')}")
print(f"total {total:.2f} instructions per op")
