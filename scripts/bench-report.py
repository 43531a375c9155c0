#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# bench-report.py RESULTS_DIR WALL_MODE
#
# Reads RESULTS_DIR/bench-icount.txt and RESULTS_DIR/bench-WALL_MODE.txt
# ("B <workload> <c|rust|floor> <ns>" lines from tests/guest/bench_user.c)
# and writes RESULTS_DIR/bench.md (a table per figure) and bench.png.  With
# RESULTS_DIR/bench-baseline.txt ("B <workload> base <ns>", the baseline
# kernel without the Rust walker, under -icount), bench.md also compares the
# C walker of the series with the C walker of the baseline; with
# RESULTS_DIR/bench-inline-off.txt (the test kernel with
# CONFIG_RUST_INLINE_HELPERS=n, under -icount), it adds that kernel's table:
# what inlining the C helpers into Rust is worth.
#
# Per workload and figure: the median of the C and of the Rust runs, their
# ratio, the spread of the per-round Rust/C ratios (min-max over rounds;
# each round runs both walkers back to back on the same memory), the floor's
# median where there is one, and each walker against the floor.
import os
import statistics
import sys

FIGURES = {
    "icount": "guest instructions (-icount shift=0: exact, repeatable)",
    "tcg": "wall-clock ns under multi-threaded TCG (emulated, not real time)",
    "kvm": "wall-clock ns under KVM (real time)",
}


def parse(path):
    runs = {}
    order = []
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 4 or parts[0] != "B":
                continue
            _, workload, walker, ns = parts
            if workload not in runs:
                runs[workload] = {"c": [], "rust": [], "floor": [], "base": []}
                order.append(workload)
            runs[workload].setdefault(walker, []).append(int(ns))
    return order, runs


def rows(order, runs):
    out = []
    for w in order:
        r = runs[w]
        c, rust, floor = r["c"], r["rust"], r["floor"]
        if not c or not rust:
            continue
        mc, mr = statistics.median(c), statistics.median(rust)
        pairs = [b / a for a, b in zip(c, rust) if a]
        mf = statistics.median(floor) if floor else None
        out.append({
            "workload": w, "rounds": min(len(c), len(rust)),
            "c": mc, "rust": mr, "ratio": mr / mc,
            "lo": min(pairs), "hi": max(pairs),
            "floor": mf,
            "c_floor": mc / mf if mf else None,
            "rust_floor": mr / mf if mf else None,
        })
    return out


def fmt(x):
    return "-" if x is None else f"{x:,.0f}"


def table(title, data):
    lines = [f"### {title}", "",
             "| workload | rounds | C | Rust | Rust/C | Rust/C per round (min-max) | floor | C/floor | Rust/floor |",
             "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for d in data:
        cf = "-" if d["c_floor"] is None else f"{d['c_floor']:.2f}"
        rf = "-" if d["rust_floor"] is None else f"{d['rust_floor']:.2f}"
        lines.append(
            f"| {d['workload']} | {d['rounds']} | {fmt(d['c'])} | {fmt(d['rust'])} | "
            f"**{d['ratio']:.3f}** | {d['lo']:.3f}-{d['hi']:.3f} | {fmt(d['floor'])} | {cf} | {rf} |")
    return "\n".join(lines) + "\n"


def baseline_table(order, runs, base):
    lines = ["### The C walker with the series against the baseline (guest instructions)", "",
             "The baseline is the base kernel with only the C patches before the series' first "
             "Rust one (test hooks, debugfs files), same configuration, where change_protection() "
             "has no walker switch. Medians; ratio = C with the series / C in the baseline.", "",
             "| workload | rounds | C, series | C, baseline | ratio | difference |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    worst = None
    for w in order:
        c = runs[w]["c"]
        b = base.get(w, {}).get("base", [])
        if not c or not b:
            continue
        mc, mb = statistics.median(c), statistics.median(b)
        ratio = mc / mb
        worst = abs(ratio - 1) if worst is None else max(worst, abs(ratio - 1))
        lines.append(f"| {w} | {min(len(c), len(b))} | {fmt(mc)} | {fmt(mb)} | "
                     f"**{ratio:.4f}** | {mc - mb:+,.0f} |")
    return "\n".join(lines) + "\n", worst


def text_size(path):
    """The text of each walker (text-size.txt: `llvm-nm -S -C` lines)."""
    c, rust = [], []
    with open(path) as f:
        for line in f:
            addr, size, _, name = line.rstrip("\n").split(" ", 3)
            (c if name in ("change_protection", "change_protection_range",
                          "mprotect_folio_pte_batch") else rust).append(
                (name, int(size, 16)))
    lines = ["### Text size (bytes, from the symbol table of the kernel measured)", "",
             "The C walker is `change_protection_range()` and what is inlined into it; "
             "`change_protection()`, counted with it, holds the switch and the hugetlb branch "
             "(without the Rust walker, the C walker is inlined into it).  The Rust walker's "
             "functions come with the C functions of `mm/mprotect_rs_shared.c` that only it calls "
             "(`mprotect_rs_*`).", "",
             "| walker | function | bytes |", "| --- | --- | ---: |"]
    for label, syms in (("C", c), ("Rust", rust)):
        for name, size in syms:
            lines.append(f"| {label} | `{name}` | {size:,} |")
        lines.append(f"| {label} | **total** | **{sum(s for _, s in syms):,}** |")
    return "\n".join(lines) + "\n"


def chart(path, figures):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [d["workload"] for d in figures[0][1]]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(names) + 1.8))
    height = 0.8 / len(figures)
    for i, (label, data) in enumerate(figures):
        by = {d["workload"]: d for d in data}
        ys = [j + i * height for j in range(len(names))]
        vals = [by[n]["ratio"] if n in by else 0 for n in names]
        errs = [[by[n]["ratio"] - by[n]["lo"] if n in by else 0 for n in names],
                [by[n]["hi"] - by[n]["ratio"] if n in by else 0 for n in names]]
        ax.barh(ys, vals, height, xerr=errs, label=label, capsize=2)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks([j + height * (len(figures) - 1) / 2 for j in range(len(names))])
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("Rust walker / C walker (median; bars: min-max per round)")
    ax.set_title("mprotect page-table walk: Rust vs C, same boot")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    results, wall = sys.argv[1], sys.argv[2]
    figures = []
    for mode in ("icount", wall):
        order, runs = parse(os.path.join(results, f"bench-{mode}.txt"))
        figures.append((FIGURES[mode], rows(order, runs)))
    with open(os.path.join(results, "host.txt")) as f:
        host = f.read().strip().replace("\n", "; ")
    arch = "x86_64"
    config = os.path.join(results, "kernel.config")
    if os.path.exists(config) and "CONFIG_ARM64=y\n" in open(config).read():
        arch = "arm64"
    md = [f"# mprotect-rs benchmarks, {arch}", "",
          "Rust walker against C walker, alternating in the same boot (`make bench"
          + ("`)." if arch == "x86_64" else " ARCH=arm64`). Guest time is the generic "
             "timer's (62.5 MHz in QEMU's virt machine), so -icount figures come in steps "
             "of 16 instructions."),
          f"Host: {host}. Kernel configs: `kernel.config`, `kernel-baseline.config`; QEMU command lines: "
          "`qemu-*.txt`; raw output: `bench-*.txt`.", ""]
    for title, data in figures:
        md.append(table(title, data))
    basefile = os.path.join(results, "bench-baseline.txt")
    worst_base = None
    if os.path.exists(basefile):
        order, runs = parse(os.path.join(results, "bench-icount.txt"))
        _, base = parse(basefile)
        text, worst_base = baseline_table(order, runs, base)
        if worst_base is None:
            sys.exit("bench: no workload of bench-baseline.txt matches bench-icount.txt")
        md.append(text)
    inlinefile = os.path.join(results, "bench-inline-off.txt")
    if os.path.exists(inlinefile):
        order, runs = parse(inlinefile)
        md.append(table("guest instructions with CONFIG_RUST_INLINE_HELPERS=n (every C helper "
                        "an out-of-line call from Rust; the C walker is unaffected)",
                        rows(order, runs)))
    sizefile = os.path.join(results, "text-size.txt")
    if os.path.exists(sizefile):
        md.append(text_size(sizefile))
    with open(os.path.join(results, "bench.md"), "w") as f:
        f.write("\n".join(md))
    chart(os.path.join(results, "bench.png"), figures)
    print("\n".join(md))
    worst = max(d["ratio"] for d in figures[0][1])
    print(f"bench: worst Rust/C (instructions): {worst:.3f}")
    if worst_base is not None:
        print(f"bench: C walker with the series vs baseline: worst |ratio - 1| = {worst_base:.4f}")


if __name__ == "__main__":
    main()
