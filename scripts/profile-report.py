#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make profile's report: where each walker's instructions go, per page.

    profile-report.py CONSOLE VMLINUX PERIOD SHIFT [--json OUT]

CONSOLE is the guest's output in profile mode (tests/guest/bench_user.c -p):
"S workload who reps pages ns" and "P workload who bin samples" lines, and
"# profile: step N".  VMLINUX is the profiled kernel with DWARF; PERIOD is the
number of guest instructions between two samples (TICK_NSEC >> SHIFT: the
kernel's tick samples the interrupted PC, and under -icount shift=SHIFT a
guest instruction takes 2^SHIFT ns).  Every sampled address is resolved with
llvm-symbolizer (inline frames included) and attributed

  - inside a walker's symbol (change_protection() and the C walker
    change_protection_range(), inlined into it without the Rust walker; the
    Rust walker's functions; the floor): to the innermost inlined
    function, classed as the walker's own code (mm/mprotect.c,
    mm/mprotect_rs.rs, rust/kernel/mm/pgtable.rs) or an inlined helper (any
    other file: include/, arch/, rust/helpers/, ...);
  - elsewhere: to the out-of-line symbol, as a called function.

Only CPU 0 runs (the boot has maxcpus=1); samples of the idle loop and of
resetting and reading /proc/profile back are left out and counted apart.
Writes markdown to stdout.  Symbols: scripts/mprs_symbols.py.
"""

import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mprs_symbols import CLASS_NAME, CLASSES, classify, symbol_address, symbolize  # noqa: E402

console, vmlinux, period, shift = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
json_out = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "--json" else None

runs = {}           # (workload, who) -> dict(reps, pages, ns)
samples = collections.defaultdict(collections.Counter)  # (workload, who) -> bin -> n
order = []
step = None
for line in open(console, errors="replace"):
    f = line.split()
    if line.startswith("# profile: step"):
        step = int(f[3].rstrip(","))
    elif len(f) >= 7 and f[0] == "S":
        # S workload who reps units unit... ns: the unit may be words.
        runs[(f[1], f[2])] = dict(reps=int(f[3]), pages=int(f[4]), unit=" ".join(f[5:-1]),
                                  ns=int(f[-1]))
        if f[1] not in order:
            order.append(f[1])
    elif len(f) == 5 and f[0] == "P":
        samples[(f[1], f[2])][int(f[3], 16)] += int(f[4])
if step is None or not runs:
    sys.exit("profile-report: no profile in " + console)

stext = symbol_address(vmlinux, "_stext")
bins = sorted({b for c in samples.values() for b in c})
by_addr = symbolize(vmlinux, (stext + b * step for b in bins))
frames = {b: by_addr[stext + b * step] for b in bins}

# Resetting /proc/profile (the memset, before the timed runs) and reading it
# back (the copy to user space, after them) run while the profile is on.  The
# workloads' own copies to and from user space are a few dozen bytes a call.
READING = {"rep_movs_alternative", "read_profile", "write_profile", "memset_orig"}


def classify_bin(b):
    """(row key, class) of the samples of bin b."""
    return classify(frames[b], {r: "reading" for r in READING})


out = []
p = out.append
p("# mprotect-rs: where the instructions go (`make profile`)")
p("")
p("Each benchmark workload of `make bench`, run %d times under the C walker, "
  "then the Rust walker, then the floor, on the test kernel with `CONFIG_PROFILING` "
  "and DWARF (`tests/configs/profile.config`), booted with `profile=0` under "
  "`-icount shift=%d`: the tick samples the kernel's PC once every %s guest "
  "instructions, so each sample stands for that many instructions (an estimate, "
  "with the spread of a count: the per-unit value of one sample is given per "
  "workload; the *measured* row and its Rust/C ratio are exact).  Addresses resolved with "
  "`llvm-symbolizer --inlines` (scripts/profile-report.py).  Figures are guest "
  "instructions per page changed (a toggle changes each page twice; the floor "
  "reads and writes each PTE twice), or per PMD, PUD or call where pages say "
  "little.  Only CPU 0 runs (`maxcpus=1`); the "
  "samples of reading `/proc/profile` back (the copy to user space, after "
  "the timed runs) are left out." % (next(iter(runs.values()))["reps"], shift, format(period, ",.1f")))
p("")
p("*measured*: the runs' guest time (`-icount`: %d ns per instruction), exact; "
  "*sampled*: samples x period, which matches it when every tick of the runs "
  "was recorded (the tick handlers' own instructions, about 1%%, are spread "
  "over the code they interrupt).  The rows below add up to *sampled*." % (1 << shift))

report = {}
for w in order:
    whos = [x for x in ("c", "rust", "floor") if (w, x) in runs]
    rows = collections.defaultdict(lambda: collections.Counter())
    cls_of = {}
    tot = collections.Counter()
    idle = collections.Counter()
    reading = collections.Counter()
    for who in whos:
        for b, n in samples[(w, who)].items():
            key, cls = classify_bin(b)
            if cls == "idle":
                idle[who] += n
                continue
            if cls == "reading":
                reading[who] += n
                continue
            rows[key][who] += n
            cls_of[key] = cls
            tot[who] += n

    def per_page(who, n):
        r = runs[(w, who)]
        return n * period / (r["reps"] * r["pages"])

    p("")
    p("## %s" % w)
    p("")
    r0 = runs[(w, whos[0])]
    unit = r0["unit"]
    p("%s %ss per run, %d runs per column%s; one sample: %s instructions per %s." % (
        format(r0["pages"], ","), unit, r0["reps"],
        "; the floor: per page" if unit != "page" and "floor" in whos else "",
        format(period / (r0["reps"] * r0["pages"]), ".3g"), unit))
    p("")
    p("| per %s | " % unit + " | ".join(whos) + (" | Rust/C |" if "rust" in whos else " |"))
    p("| --- | " + " | ".join("---:" for _ in whos) + (" | ---: |" if "rust" in whos else " |"))
    meas = {x: runs[(w, x)]["ns"] / (1 << shift) / (runs[(w, x)]["reps"] * runs[(w, x)]["pages"])
            for x in whos}
    samp = {x: per_page(x, tot[x]) for x in whos}
    def ratio(d):
        if "rust" not in whos:
            return " |"
        return " | %.3f |" % (d["rust"] / d["c"]) if d["c"] else " | - |"
    p("| measured | " + " | ".join("%.1f" % meas[x] for x in whos) + ratio(meas))
    p("| sampled | " + " | ".join("%.1f" % samp[x] for x in whos) + ratio(samp))
    p("| samples | " + " | ".join(format(tot[x], ",") for x in whos) + " |" +
      (" |" if "rust" in whos else ""))
    for cls in CLASSES:
        d = {x: per_page(x, sum(v[x] for k, v in rows.items() if cls_of[k] == cls)) for x in whos}
        p("| %s | " % CLASS_NAME[cls] + " | ".join("%.1f" % d[x] for x in whos) + ratio(d))
    p("")
    p("| function (inlined helpers: their file) | class | " + " | ".join(whos) + " |")
    p("| --- | --- | " + " | ".join("---:" for _ in whos) + " |")
    keyed = sorted(rows, key=lambda k: -max(per_page(x, rows[k][x]) for x in whos))
    shown, rest = keyed[:30], keyed[30:]
    for k in shown:
        p("| `%s` | %s | " % (k.replace("|", "\\|"), cls_of[k]) +
          " | ".join("%.2f" % per_page(x, rows[k][x]) for x in whos) + " |")
    if rest:
        p("| %d more | | " % len(rest) +
          " | ".join("%.2f" % per_page(x, sum(rows[k][x] for k in rest)) for x in whos) + " |")
    if sum(idle.values()):
        p("")
        p("Idle samples left out: " + ", ".join("%s %d" % (x, idle[x]) for x in whos) + ".")
    if sum(reading.values()):
        p("")
        p("Samples of reading /proc/profile back left out: " +
          ", ".join("%s %d" % (x, reading[x]) for x in whos) + ".")
    report[w] = {x: dict(measured=meas[x], sampled=samp[x],
                         rows={k: per_page(x, rows[k][x]) for k in rows if rows[k][x]},
                         cls={k: cls_of[k] for k in rows})
                 for x in whos}

print("\n".join(out))
if json_out:
    json.dump(report, open(json_out, "w"), indent=1)
