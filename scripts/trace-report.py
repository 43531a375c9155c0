#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make trace's report: every instruction of each walker, counted.

    trace-report.py TRACE_JSON VMLINUX

TRACE_JSON is what scripts/trace-step.py wrote: per workload and walker, the
number of times each address ran while change_protection() was single-stepped.
VMLINUX is the traced kernel, with DWARF.  The counts are not sampled, but
single-stepping counts a step twice now and then (up to about 2 instructions
per call; scripts/trace-exec.sh, which counts from QEMU's own log, showed
it); they are divided by the workload's units (pages changed, PMDs, PUDs or calls) and
attributed as make profile's are (scripts/mprs_symbols.py).  Per workload:
the totals by class, the functions, and the source lines of the walkers
whose counts differ most.  Writes markdown to stdout.
"""

import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mprs_symbols import CLASS_NAME, CLASSES, classify, line_of, symbolize  # noqa: E402

# Only change_protection() is stepped: what it calls, and nothing else.
CLASS_NAME = dict(CLASS_NAME, called="out-of-line functions the walk calls")

runs = json.load(open(sys.argv[1]))["runs"]
vmlinux = sys.argv[2]
if not runs:
    sys.exit("trace-report: no runs in " + sys.argv[1])

counts = {k: {int(a, 16): n for a, n in r["pcs"].items()} for k, r in runs.items()}
frames = symbolize(vmlinux, sorted({a for c in counts.values() for a in c}))
order = []
for k in runs:
    w = k.rsplit(" ", 1)[0]
    if w not in order:
        order.append(w)

out = []
p = out.append
p("# mprotect-rs: every instruction of each walker (`make trace`)")
p("")
p("Each workload of `make bench`, cut down to what single-stepping can cover "
  "(one PTE table of the page workloads, two PMD leaves, 4 GiB of the sparse "
  "range, the DAX PUD leaf, one 4-page toggle for the small calls), run under the C "
  "walker and under the Rust walker on the profiling kernel (`make profile`'s, "
  "with DWARF), single-stepping every `change_protection()` call through "
  "QEMU's gdbstub (`scripts/trace-step.py`) and counting each instruction it runs. "
  "The counts are not sampled, but single-stepping counts a step twice now and then "
  "(up to about 2 instructions per call, checked against QEMU's own instruction log: "
  "README); figures are instructions per unit (a page "
  "changed, a PMD, a PUD or a call), attributed as in `make profile` "
  "(`scripts/trace-report.py`).  The walk is all of `change_protection()`: the "
  "walker and what it calls.")


def fmt(x):
    return "%.2f" % x


for w in order:
    whos = [x for x in ("c", "rust") if "%s %s" % (w, x) in runs]
    meta = runs["%s %s" % (w, whos[0])]
    units, unit = meta["units"], meta["unit"]
    rows = collections.defaultdict(collections.Counter)
    cls_of = {}
    lines = collections.defaultdict(collections.Counter)
    tot = collections.Counter()
    calls = {}
    for who in whos:
        r = runs["%s %s" % (w, who)]
        calls[who] = r["calls"]
        for a, n in counts["%s %s" % (w, who)].items():
            key, cls = classify(frames[a])
            rows[key][who] += n / units
            cls_of[key] = cls
            tot[who] += n / units
            if cls != "called":
                lines[line_of(frames[a]) or key][who] += n / units

    def ratio(d):
        if len(whos) < 2:
            return " |"
        return " | %.3f |" % (d["rust"] / d["c"]) if d["c"] else " | - |"

    p("")
    p("## %s" % w)
    p("")
    p("%s %ss, %s `change_protection()` calls per walker." % (
        format(units, ","), unit, " and ".join("%d (%s)" % (calls[x], x) for x in whos)))
    switched = {x: runs["%s %s" % (w, x)].get("switched", 0) for x in whos}
    if any(switched.values()):
        p("")
        p("**Not all counted**: calls that reached a context switch, and were let run from "
          "there unstepped: " + ", ".join("%s %d" % (x, switched[x]) for x in whos) + ".")
    p("")
    p("| per %s | " % unit + " | ".join(whos) + " | Rust/C |")
    p("| --- | " + " | ".join("---:" for _ in whos) + " | ---: |")
    p("| all of `change_protection()` | " + " | ".join(fmt(tot[x]) for x in whos) + ratio(tot))
    for cls in CLASSES:
        d = {x: sum(v[x] for k, v in rows.items() if cls_of[k] == cls) for x in whos}
        p("| %s | " % CLASS_NAME[cls] + " | ".join(fmt(d[x]) for x in whos) + ratio(d))
    p("")
    p("| function (inlined helpers: their file) | class | " + " | ".join(whos) + " |")
    p("| --- | --- | " + " | ".join("---:" for _ in whos) + " |")
    keyed = sorted(rows, key=lambda k: (-max(rows[k][x] for x in whos), k))
    shown, rest = keyed[:25], keyed[25:]
    for k in shown:
        p("| `%s` | %s | " % (k.replace("|", "\\|"), cls_of[k]) +
          " | ".join(fmt(rows[k][x]) for x in whos) + " |")
    if rest:
        p("| %d more | | " % len(rest) +
          " | ".join(fmt(sum(rows[k][x] for k in rest)) for x in whos) + " |")
    p("")
    p("The walkers' source lines (inlined code included), most instructions first:")
    p("")
    p("| line | " + " | ".join(whos) + " |")
    p("| --- | " + " | ".join("---:" for _ in whos) + " |")
    keyed = sorted(lines, key=lambda k: (-max(lines[k][x] for x in whos), k))
    for k in keyed[:25]:
        p("| `%s` | " % k.replace("|", "\\|") + " | ".join(fmt(lines[k][x]) for x in whos) + " |")
    if keyed[25:]:
        p("| %d more | " % len(keyed[25:]) +
          " | ".join(fmt(sum(lines[k][x] for k in keyed[25:])) for x in whos) + " |")

print("\n".join(out))
