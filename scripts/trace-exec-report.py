#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make trace ARCH=arm64's report: every instruction of each walker's
change_protection() calls, from QEMU's instruction log.

    trace-exec-report.py ARCH EXEC_LOG WRITES_JSON VMLINUX > trace.md

EXEC_LOG is QEMU's "-d exec,nochain" log with one instruction per
translation block (a line per instruction run); WRITES_JSON what
scripts/trace-exec.py wrote: the writes to the walker file made while the
log was on, each of which starts in the log with mprotect_walker_write()'s
first instruction.  Only CPU 0, where the guest program runs, is read.

A call is change_protection() from its first instruction to the return
to its caller (the instruction after a call of it); everything run in
between is counted, by the function (symbol of VMLINUX) it belongs to.
A call during which the kernel's entry text ran (an interrupt or an
exception came in) is left out and counted as "interrupted": the counts
are of the walk alone, as with the gdbstub, which masks interrupts while
it single-steps (make trace on x86_64).
"""

import bisect
import collections
import json
import os
import re
import subprocess
import sys

LLVM = os.environ.get("MPRS_LLVM", "-22")
TOP = 20


def signed(x):
    """x with its sign, to two places; no "-0.00" from rounding."""
    x = round(x, 2)
    return "%+.2f" % (x if x else 0.0)


def symbols(vmlinux):
    syms = []
    out = subprocess.run(["llvm-nm" + LLVM, "-S", "-C", "--defined-only", vmlinux],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split(None, 3)
        if len(f) == 4 and f[2] in "tTwW":
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    syms.sort()
    return syms


def executed(log):
    """The PCs CPU 0 ran, in order, from QEMU's log.

    QEMU logs a translation block (here one instruction) before it runs it;
    when it then stops before the block ran (the -icount budget ran out, or
    the CPU was asked to exit), it logs "Stopped execution of TB chain
    before <block> [<pc>]" and runs the block again later, logged again.
    Such a line drops the one before it.
    """
    trace = re.compile(r"^Trace (\d+): \S+ \[[0-9a-f]+/([0-9a-f]+)/")
    stopped = re.compile(r"^Stopped execution of TB chain before \S+ \[([0-9a-f]+)\]")
    pending = None
    for line in open(log):
        m = trace.match(line)
        if m:
            if pending is not None:
                yield pending
            pending = int(m.group(2), 16) if m.group(1) == "0" else None
            continue
        m = stopped.match(line)
        if m and pending is not None and int(m.group(1), 16) == pending:
            pending = None
    if pending is not None:
        yield pending


def return_sites(vmlinux, name):
    """Where calls of the function return to: the instruction after each call of it."""
    out = subprocess.run(["llvm-objdump" + LLVM, "-d", "--no-show-raw-insn", "-j", ".text",
                          vmlinux], check=True, capture_output=True, text=True).stdout
    found = set()
    after_call = False
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(\S+)", line)
        if not m:
            continue
        if after_call:
            found.add(int(m.group(1), 16))
        op = m.group(2)
        target = line.endswith("<%s>" % name)
        after_call = target and op in ("bl", "call", "callq")
        if target and not after_call:
            raise SystemExit("trace-exec-report: a branch to %s() that is not a call, at 0x%s" %
                             (name, m.group(1)))
    if not found:
        raise SystemExit("trace-exec-report: no call of %s()" % name)
    return found


def main():
    arch, log, writes_json, vmlinux = sys.argv[1:5]
    syms = symbols(vmlinux)
    starts = [s[0] for s in syms]
    by_name = {s[2]: s for s in syms}

    def sym(pc):
        i = bisect.bisect_right(starts, pc) - 1
        if i >= 0 and pc < syms[i][0] + syms[i][1]:
            return syms[i][2]
        return "(user)" if pc < 1 << 63 else "(no symbol)"

    write_pc = by_name["mprotect_walker_write"][0]
    entry = by_name["change_protection"]
    ret_pcs = return_sites(vmlinux, "change_protection")
    # Interrupts and exceptions enter the kernel through its entry text (arm64's
    # vectors, x86_64's IDT entries), which a walk never runs otherwise.
    entry_text = (by_name["__entry_text_start"][0], by_name["__entry_text_end"][0])
    writes = json.load(open(writes_json))["writes"]

    runs = {}
    order = []
    meta = None
    run = None
    nwrite = 0
    call = None
    for pc in executed(log):
        if pc == write_pc:
            if call is not None:
                raise SystemExit("trace-exec-report: a change_protection() call did not return")
            if nwrite >= len(writes):
                raise SystemExit("trace-exec-report: more writes in the log than were made")
            text = writes[nwrite]
            nwrite += 1
            run = None
            if text.startswith("trace:"):
                _, workload, units, unit = text.split(":", 3)
                meta = dict(workload=workload, units=int(units), unit=unit)
                order.append(workload)
            elif meta and text in ("c", "rust"):
                run = runs.setdefault((meta["workload"], text), dict(
                    meta, calls=0, interrupted=0, fns=collections.Counter()))
            continue
        if run is None:
            continue
        if pc == entry[0]:
            if call is not None:
                raise SystemExit("trace-exec-report: change_protection() entered again in a call")
            call = dict(fns=collections.Counter(), irq=False)
        elif call is None:
            continue
        if pc in ret_pcs:
            if call["irq"]:
                run["interrupted"] += 1
            else:
                run["calls"] += 1
                run["fns"].update(call["fns"])
            call = None
            continue
        if entry_text[0] <= pc < entry_text[1]:
            call["irq"] = True
        call["fns"][sym(pc)] += 1
    if nwrite != len(writes):
        raise SystemExit("trace-exec-report: %d writes made, %d in the log" % (len(writes), nwrite))

    missing = ["%s %s" % (w, x) for w in order for x in ("c", "rust")
               if runs.get((w, x), {}).get("calls", 0) == 0]
    if missing:
        raise SystemExit("trace-exec-report: no whole change_protection() call for: " +
                         ", ".join(missing))

    def scale(run):
        """Per unit: the units are those of all the calls, of which the interrupted ones
        were not counted (the calls of a run are alike)."""
        return (run["calls"] + run["interrupted"]) / run["calls"] / run["units"]

    print("# mprotect-rs on %s: every instruction of each walker (`make trace%s`)" %
          (arch, " ARCH=arm64" if arch == "arm64" else ": scripts/trace-exec.sh"))
    print()
    print("Each workload of `make bench%s`, cut down as in `make trace` (one PTE table "
          "of the page workloads, two PMD leaves, 4 GiB of the sparse range, the DAX PUD leaf "
          "where there is one, one 4-page toggle for the small calls), run under the C walker "
          "and under the Rust walker on the kernel built in `%s` (in `$MPRS_CACHE`). QEMU logs every instruction "
          "the guest runs while a traced workload runs (`-d exec,nochain`, one instruction "
          "per translation block, switched on and off through the gdbstub: "
          "`scripts/trace-exec.py`), and `scripts/trace-exec-report.py` counts what each "
          "`change_protection()` call ran, by the function it belongs to (no lines: what "
          "is inlined counts in its caller). The counts are exact. A call an interrupt came "
          "into is left out and counted as interrupted. Figures are instructions per unit "
          "(a page changed, a PMD, a PUD or a call)." % (
              " ARCH=arm64" if arch == "arm64" else "", os.path.basename(os.path.dirname(
                  os.path.abspath(vmlinux)))))
    if arch == "arm64":
        print()
        print("The 4-page calls' counts move from boot to boot, for both walkers alike, "
              "with where the pages are: a TLB flush across a 64 KiB boundary, a PFN that "
              "ends a 16-page block (README, arm64).")
    print()
    print("| workload | unit | calls (c / rust) | c | rust | Rust/C |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    estimated = False
    for w in order:
        c, r = runs[(w, "c")], runs[(w, "rust")]
        pc_, pr = (sum(x["fns"].values()) * scale(x) for x in (c, r))
        mark = " *" if c["interrupted"] or r["interrupted"] else ""
        estimated = estimated or bool(mark)
        print("| %s%s | %s | %d / %d | %.2f | %.2f | %.3f |" % (
            w, mark, c["unit"], c["calls"], r["calls"], pc_, pr, pr / pc_))
    if estimated:
        print()
        print("\\* Estimated: an interrupt came into some calls, which are left out; the "
              "figures assume that they ran what the counted calls did on average, which for "
              "a toggle (two kinds of call) is not exact.")
    for w in order:
        c, r = runs[(w, "c")], runs[(w, "rust")]
        print()
        print("## %s" % w)
        print()
        print("%d %s, %d (c) and %d (rust) `change_protection()` calls counted; interrupted: "
              "%d (c), %d (rust)." % (c["units"], c["unit"] + ("s" if c["units"] != 1 else ""),
                                      c["calls"], r["calls"], c["interrupted"], r["interrupted"]))
        print()
        sc, sr = scale(c), scale(r)
        print("| function | c | rust | Rust - C |")
        print("| --- | ---: | ---: | ---: |")
        names = set(c["fns"]) | set(r["fns"])
        # Most instructions first; ties by name, so that runs compare line by line.
        rows = sorted(names, key=lambda n: (-max(c["fns"][n] * sc, r["fns"][n] * sr), n))
        for n in rows[:TOP]:
            a, b = c["fns"][n] * sc, r["fns"][n] * sr
            print("| `%s` | %.2f | %.2f | %s |" % (n, a, b, signed(b - a)))
        if len(rows) > TOP:
            a = sum(c["fns"][n] for n in rows[TOP:]) * sc
            b = sum(r["fns"][n] for n in rows[TOP:]) * sr
            print("| %d more | %.2f | %.2f | %s |" % (len(rows) - TOP, a, b, signed(b - a)))
        a = sum(c["fns"].values()) * sc
        b = sum(r["fns"].values()) * sr
        print("| all of `change_protection()` | %.2f | %.2f | %s |" % (a, b, signed(b - a)))


if __name__ == "__main__":
    main()
