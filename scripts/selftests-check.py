#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# selftests-check.py --mode MODE --plan PLAN --expected EXPECTED
#                    --summary SUMMARY_MD [--only ERE] CONSOLE_LOG KUNIT_JSON
#
# The gate of the kernel's mm selftests in the guest (scripts/selftests.sh).
# MODE is the kernel (test or debug) or "survey".  For every program that
# PLAN (tests/selftests/plan.txt) runs on MODE's kernel, the kunit.py JSON
# must hold the suites mm_NAME_c and mm_NAME_rust, the log one line of
# counts for each, and:
#
#  - the two walkers' results are identical: the same subtests, in the same
#    order, with the same status, and the same class of exit status (a
#    difference fails the run and prints both sides); numbers in subtest
#    names are masked, as a few names carry a measurement;
#  - no subtest fails, errs or skips, under either walker, unless EXPECTED
#    lists it for this kernel, by its exact name, with a reason;
#  - the program exits 0, or 4 (kselftest's skip) with all its subtests
#    skipped, or 1 with failed subtests: any other exit (a crash, a kill at
#    the time limit, a bail-out before the plan) must be listed as EXIT=N,
#    results that do not meet the plan as PLAN, and output that kunit.py
#    reads with errors as KTAP;
#  - it reaches change_protection() on memory a walker handles beyond the
#    baseline of a static program that does nothing if, and only if, PLAN's
#    REACHES column says "yes";
#  - under the Rust walker every such call went to the Rust walker, under
#    the C walker none did.
#
# EXPECTED: lines "KERNELS | PROGRAM | STATUS | SUBTEST", STATUS one of
# SKIP, FAIL, EXIT=N, PLAN or KTAP (SUBTEST then "-"), KERNELS "test",
# "debug" or "test+debug"; each block of entries follows a comment that
# starts with "# reason:".  An entry for a program the plan does not run on
# the kernel it names, or that this run did not need (stale), fails the run
# too: the list stays exact.
#
# In survey mode (C walker only, every program of the plan) the results
# are not gated, only that each program ran and was counted; the summary
# lists, per program, its results, its time and how often it reached
# change_protection().  SUMMARY_MD gets a Markdown summary.
import argparse
import json
import re
import sys

EXIT_LINE = re.compile(
    r"# selftests: mm_(\S+)_(c|rust) exit=(\d+) seconds=(\d+) "
    r"change_protection=(\d+) hugetlb=(\d+) rust_walker=(\d+)")
STATUSES = re.compile(r"SKIP|FAIL|PLAN|KTAP|EXIT=\d+")


def read_plan(path):
    plan, names = [], set()
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if line.startswith("#") or len(line.split()) < 5:
                continue
            name, kernels, reaches, secs, *cmd = line.split()
            if name in names:
                sys.exit(f"selftests-check: {path}:{i}: {name} is in the plan twice")
            if reaches not in ("yes", "no"):
                sys.exit(f"selftests-check: {path}:{i}: REACHES is yes or no")
            names.add(name)
            plan.append((name, kernels.split("+"), reaches, int(secs), " ".join(cmd)))
    return plan


def read_expected(path, kernel, programs):
    """{(program, status, subtest): line} for KERNEL, and the errors: lines
    that are not entries, entries without a reason, for no program of the
    plan or for no kernel."""
    entries, errors = {}, []
    reason = False
    try:
        f = open(path)
    except OSError as e:
        return entries, [f"{path}: {e}"]
    with f:
        for i, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                reason = False
                continue
            if line.startswith("#"):
                reason = reason or line.startswith("# reason:")
                continue
            parts = [p.strip() for p in line.split(" | ", 3)]
            if len(parts) != 4 or not STATUSES.fullmatch(parts[2]):
                errors.append(f"{path}:{i}: not KERNELS | PROGRAM | STATUS | SUBTEST")
                continue
            kernels, prog, status, sub = parts
            if not reason:
                errors.append(f"{path}:{i}: no '# reason:' comment above it")
            if not kernels or not set(kernels.split("+")) <= {"test", "debug"}:
                errors.append(f"{path}:{i}: KERNELS is test, debug or test+debug")
            if prog not in programs:
                errors.append(f"{path}:{i}: {prog} is no program of the plan")
            if (status in ("SKIP", "FAIL")) == (sub == "-"):
                errors.append(f"{path}:{i}: SUBTEST is '-' exactly for EXIT=N, PLAN and KTAP")
            if kernel in kernels.split("+"):
                entries[(prog, status, sub)] = i
    return entries, errors


def cases(group, path=()):
    """(name, status) of every test case of a kunit.py JSON group; a case
    without a name ("ok 5 # SKIP reason") is "#5", its place in its group."""
    for i, case in enumerate(group.get("test_cases", []), 1):
        name = case["name"].strip() or f"#{i}"
        yield " / ".join(path + (name,)), case["status"]
    for sub in group.get("sub_groups", []):
        yield from cases(sub, path + (sub["name"].strip(),))


def suites(results):
    """(program, walker) -> (its cases, its KTAP errors)."""
    found = {}
    for group in results.get("sub_groups", []):
        m = re.fullmatch(r"mm_(\S+)_(c|rust)", group["name"].strip())
        if m:
            found[(m.group(1), m.group(2))] = (list(cases(group)),
                                               group.get("misc", {}).get("errors", 0))
    # A program that ran no subtest ("1..0 # SKIP ...", or a crash before
    # its plan) is a case of the top level: its one case is itself.
    for case in results.get("test_cases", []):
        m = re.fullmatch(r"mm_(\S+)_(c|rust)", case["name"].strip())
        if m:
            found[(m.group(1), m.group(2))] = ([("(no subtests)", case["status"])], 0)
    return found


def masked(cs):
    """The cases with the numbers in their names masked: a few names carry
    a measurement (pagemap_ioctl: "transact_test Extra pages 73 (0.2%),
    extra thread faults 73."), which two runs never share.  The order and
    the statuses are compared as they are."""
    return [(re.sub(r"\d+", "N", n), st) for n, st in cs]


def exit_class(rc):
    return {0: "exit 0", 1: "exit 1", 4: "exit 4 (skip)"}.get(rc, f"exit {rc}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=("test", "debug", "survey"))
    ap.add_argument("--plan", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--only", default="",
                    help="only the programs whose NAME matches (SELFTESTS_ONLY)")
    ap.add_argument("log")
    ap.add_argument("json")
    a = ap.parse_args()

    plan = read_plan(a.plan)
    cmd_of = {p[0]: p[4] for p in plan}
    reaches_of = {p[0]: p[2] for p in plan}
    survey = a.mode == "survey"
    walkers = ("c",) if survey else ("c", "rust")
    progs = [p for p in plan if (survey or a.mode in p[1]) and re.search(a.only, p[0])]
    ok = True
    with open(a.log, errors="replace") as f:
        log = f.read()
    runs, rust_calls = {}, {}
    for m in EXIT_LINE.finditer(log):
        key = (m.group(1), m.group(2))
        if key in runs:
            print(f"selftests-check: mm_{key[0]}_{key[1]} ran twice")
            ok = False
        runs[key] = tuple(int(x) for x in m.group(3, 4, 5, 6))
        rust_calls[key] = int(m.group(7))
    base = {}
    for m in re.finditer(r"# selftests: baseline(@\w+)? exit=0 change_protection=(\d+) "
                         r"hugetlb=0", log):
        base[m.group(1) or ""] = int(m.group(2))
    if set(base) != {"", "@nobody"}:
        print("selftests-check: no baselines (of /nop, as root and as nobody) in the log")
        ok = False
    mismatch = {}
    for m in re.finditer(r"# selftests: mm_(\S+)_(c|rust) plan-mismatch: plan=(\d+) "
                         r"results=(\d+)", log):
        mismatch[m.group(1, 2)] = m.group(3, 4)
    for m in re.finditer(r"# selftests: could not .*", log):
        print(f"selftests-check: {m.group(0)[2:]}")
        ok = False
    try:
        with open(a.json) as f:
            results = suites(json.load(f))
    except (OSError, ValueError) as e:
        print(f"selftests-check: no usable kunit.py results: {e}")
        results = {}
    expected, errors = read_expected(a.expected, a.mode, {p[0] for p in plan})
    for e in errors:
        print(f"selftests-check: {e}")
        ok = False
    used = set()

    # name -> walker -> (cases, errors, (rc, secs, cp, hugetlb))
    table = {}
    for name, _, _, _, cmd in progs:
        table[name] = {}
        for w in walkers:
            if (name, w) not in results or (name, w) not in runs:
                print(f"selftests-check: mm_{name}_{w}: MISSING from the results")
                ok = False
                continue
            table[name][w] = results[(name, w)] + (runs[(name, w)],)

    totals = {w: dict(run=0, passed=0, skipped=0, xskip=0, failed=0, xfail=0)
              for w in walkers}
    def beyond(name, cmd, w):
        """Its calls to change_protection() for a walker, beyond the baseline."""
        _, _, (_, _, cp, h) = table[name][w]
        return cp - h - base.get("@nobody" if "@nobody" in cmd.split() else "", 0)

    for name, _, _, _, cmd in progs:
        sides = table[name]
        for w, (cs, errs, (rc, _, _, _)) in sides.items():
            # Every call a walker handled went to the walker selected: the
            # Rust walker's count is all of them under Rust, none under C.
            _, _, (_, _, cp, h) = sides[w]
            want = cp - h if w == "rust" else 0
            if rust_calls[(name, w)] != want:
                print(f"selftests-check: mm_{name}_{w}: {rust_calls[(name, w)]} calls of "
                      f"the Rust walker, not {want} ({cp} to change_protection(), "
                      f"{h} of them hugetlb)")
                ok = False
            # The plan's REACHES column must hold.
            if not survey and (beyond(name, cmd, w) > 0) != (reaches_of[name] == "yes"):
                print(f"selftests-check: mm_{name}_{w}: {beyond(name, cmd, w)} calls to "
                      f"change_protection() beyond the baseline, but the plan says "
                      f"REACHES {reaches_of[name]}")
                ok = False
            t = totals[w]
            bad = 0
            for sub, st in cs:
                t["run"] += 1
                key = (name, "SKIP" if st == "SKIP" else "FAIL", sub)
                if st == "PASS":
                    t["passed"] += 1
                    continue
                if key in expected:
                    used.add(key)
                    t["xskip" if st == "SKIP" else "xfail"] += 1
                    continue
                bad += 1
                t["skipped" if st == "SKIP" else "failed"] += 1
                if not survey:
                    print(f"selftests-check: mm_{name}_{w}: {st}: {sub!r} "
                          f"(not in {a.expected})")
                    ok = False
            fails = sum(1 for _, st in cs if st not in ("PASS", "SKIP"))
            normal = (rc == 0 or (rc == 4 and all(st == "SKIP" for _, st in cs))
                      or (rc == 1 and fails))
            if errs and not survey:
                key = (name, "KTAP", "-")
                if key in expected:
                    used.add(key)
                else:
                    print(f"selftests-check: mm_{name}_{w}: {errs} KTAP errors in kunit.py's "
                          f"reading of its output (not in {a.expected})")
                    ok = False
            if (name, w) in mismatch and not survey:
                key = (name, "PLAN", "-")
                if key in expected:
                    used.add(key)
                else:
                    p, r = mismatch[(name, w)]
                    print(f"selftests-check: mm_{name}_{w}: its plan is {p} subtests, "
                          f"its results {r} (not in {a.expected})")
                    ok = False
            if not normal and not survey:
                key = (name, f"EXIT={rc}", "-")
                if key in expected:
                    used.add(key)
                else:
                    print(f"selftests-check: mm_{name}_{w}: {exit_class(rc)}, "
                          f"{fails} failed subtests (not in {a.expected})")
                    ok = False
        if len(sides) == 2:
            c, r = sides["c"], sides["rust"]
            if (masked(c[0]) != masked(r[0])
                    or exit_class(c[2][0]) != exit_class(r[2][0])):
                ok = False
                print(f"selftests-check: {name}: the walkers' results DIFFER")
                print(f"    C:    {exit_class(c[2][0])}, {len(c[0])} subtests")
                print(f"    Rust: {exit_class(r[2][0])}, {len(r[0])} subtests")
                n = max(len(c[0]), len(r[0]))
                for i in range(n):
                    cc = c[0][i] if i < len(c[0]) else ("-", "-")
                    rr = r[0][i] if i < len(r[0]) else ("-", "-")
                    if cc != rr:
                        print(f"    {i + 1}: C {cc[1]} {cc[0]!r}")
                        print(f"    {' ' * len(str(i + 1))}  Rust {rr[1]} {rr[0]!r}")
    if not survey:
        for key, line in sorted(expected.items(), key=lambda kv: kv[1]):
            if not any(key[0] == p[0] and a.mode in p[1] for p in plan):
                print(f"selftests-check: {a.expected}:{line}: for the {a.mode} kernel, "
                      f"where the plan does not run {key[0]}")
                ok = False
            elif key not in used and any(key[0] == p[0] for p in progs):
                print(f"selftests-check: {a.expected}:{line}: stale on the "
                      f"{a.mode} kernel: {' | '.join(key)}")
                ok = False

    with open(a.summary, "w") as f:
        if survey:
            f.write(f"Baselines (a static program that does nothing): "
                    f"{base.get('', '?')} calls to change_protection() as root, "
                    f"{base.get('@nobody', '?')} as nobody.\n\n")
            f.write("| program | command | exit | s | change_protection() | of it hugetlb "
                    "| walker calls beyond the baseline "
                    "| subtests | passed | skipped | failed |\n")
            f.write("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
            for name, _, _, _, cmd in progs:
                if "c" not in table[name]:
                    f.write(f"| {name} | `{cmd}` | missing | | | | | | | | |\n")
                    continue
                cs, _, (rc, s, cp, h) = table[name]["c"]
                f.write(f"| {name} | `{cmd}` | {rc} | {s} | {cp} | {h} | "
                        f"{beyond(name, cmd, 'c')} | {len(cs)} | "
                        f"{sum(st == 'PASS' for _, st in cs)} | "
                        f"{sum(st == 'SKIP' for _, st in cs)} | "
                        f"{sum(st not in ('PASS', 'SKIP') for _, st in cs)} |\n")
        else:
            f.write(f"mm selftests on the {a.mode} kernel, per walker:\n\n")
            f.write("| walker | programs | subtests | passed | expected skips | "
                    "expected failures | unexpected skips | unexpected failures | "
                    "seconds |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
            for w in walkers:
                t = totals[w]
                secs = sum(table[n][w][2][1] for n in table if w in table[n])
                f.write(f"| {w} | {sum(1 for n in table if w in table[n])} | {t['run']} | "
                        f"{t['passed']} | {t['xskip']} | {t['xfail']} | {t['skipped']} | "
                        f"{t['failed']} | {secs} |\n")
            f.write("\n| program | subtests | passed | skipped | failed | exit | "
                    "s (C / Rust) | walker calls beyond the baseline (C / Rust) |\n"
                    "|---|---:|---:|---:|---:|---|---|---|\n")
            for name in table:
                if len(table[name]) != 2:
                    continue
                (cs, _, (rc, s0, cp0, h0)), (_, _, (_, s1, cp1, h1)) = (
                    table[name]["c"], table[name]["rust"])
                f.write(f"| {name} | {len(cs)} | {sum(st == 'PASS' for _, st in cs)} | "
                        f"{sum(st == 'SKIP' for _, st in cs)} | "
                        f"{sum(st not in ('PASS', 'SKIP') for _, st in cs)} | {rc} | "
                        f"{s0} / {s1} | {beyond(name, cmd_of[name], 'c')} / "
                        f"{beyond(name, cmd_of[name], 'rust')} |\n")
    with open(a.summary) as f:
        print(f.read().rstrip())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
