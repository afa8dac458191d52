#!/usr/bin/env python3
"""Instructions per function from tools/qemu-pchist.c output: pchist-symbols.py ELF HIST [TOP].
Uses arm-none-eabi-nm (NM overrides); prints the total and the TOP (default 30) functions."""
import sys, subprocess, bisect, collections, os
elf, hist = sys.argv[1], sys.argv[2]
nm = os.environ.get("NM", "arm-none-eabi-nm")
syms = []
for line in subprocess.run([nm, "-n", "-S", "--demangle", elf], capture_output=True, text=True).stdout.splitlines():
    parts = line.split(None, 3)
    if len(parts) == 4 and parts[2] in "tTwW":
        syms.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))
    elif len(parts) == 3 and parts[1] in "tTwW":
        syms.append((int(parts[0], 16) & ~1, 0, parts[2]))
syms.sort()
addrs = [s[0] for s in syms]
tot = collections.Counter(); total = 0
perpc = []
for line in open(hist):
    a, c = line.split(); a = int(a, 16); c = int(c)
    i = bisect.bisect_right(addrs, a) - 1
    name = syms[i][2] if i >= 0 else "?"
    tot[name] += c; total += c
    perpc.append((a, c))
print("total", total)
for name, c in tot.most_common(int(sys.argv[3]) if len(sys.argv) > 3 else 30):
    print(f"{c:>12} {100*c/total:6.2f}%  {name[:150]}")
