#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# check-results.py KUNIT_JSON EXPECTED_SUITES [EXPECTED_SKIPS]
#
# Fail unless every suite listed in EXPECTED_SUITES appears in the kunit.py
# JSON results with at least one test case (or at least N, for a line
# "SUITE N"), and no test case anywhere in the run failed, crashed or
# errored.  A skipped case is never counted as passed, and fails the run
# unless EXPECTED_SKIPS names it ("suite.case reason" lines: a case that
# cannot run on this architecture, such as soft-dirty tracking on arm64).
# Prints one line per expected suite and a closing "N passed, N failed"
# line.
import json
import sys


def walk(group, path=()):
    """Yield (suite path, case name, status) for every test case."""
    for case in group.get("test_cases", []):
        yield path, case["name"], case["status"]
    for sub in group.get("sub_groups", []):
        yield from walk(sub, path + (sub["name"],))


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    allowed = set()
    if len(sys.argv) == 4:
        with open(sys.argv[3]) as f:
            allowed = {l.split()[0] for l in f if l.strip() and not l.startswith("#")}
    try:
        with open(sys.argv[1]) as f:
            results = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check-results: no usable KUnit results: {e}")
        return 1
    with open(sys.argv[2]) as f:
        expected = [l.split() for l in f if l.strip() and not l.startswith("#")]

    cases = list(walk(results))
    passed = sum(1 for _, _, s in cases if s == "PASS")
    skipped = sum(1 for _, _, s in cases if s == "SKIP")
    bad = [(p, n, s) for p, n, s in cases if s not in ("PASS", "SKIP")]
    ok = True
    for line in expected:
        suite, least = line[0], int(line[1]) if len(line) > 1 else 1
        mine = [(n, s) for p, n, s in cases if p and p[0] == suite]
        if not mine:
            print(f"check-results: suite {suite}: MISSING from the results")
            ok = False
            continue
        if len(mine) < least:
            print(f"check-results: suite {suite}: {len(mine)} cases, FEWER than {least}")
            ok = False
        counts = {st: sum(1 for _, s in mine if s == st) for st in ("PASS", "SKIP")}
        other = len(mine) - counts["PASS"] - counts["SKIP"]
        print(f"check-results: suite {suite}: {counts['PASS']} passed, "
              f"{other} failed, {counts['SKIP']} skipped")
        for n, s in mine:
            if s != "SKIP":
                continue
            if f"{suite}.{n}" in allowed:
                print(f"check-results: {suite}.{n}: skipped, as expected here")
            else:
                # Our own suites must run: a skip means a dependency is missing.
                print(f"check-results: {suite}.{n}: SKIPPED")
                ok = False
    for p, n, s in bad:
        print(f"check-results: {'.'.join(p + (n,))}: {s}")
        ok = False
    # An expected skip that ran is a list out of date.
    for p, n, s in cases:
        if p and f"{p[0]}.{n}" in allowed and s != "SKIP":
            print(f"check-results: {p[0]}.{n}: listed as skipping here, but {s}")
            ok = False
    print(f"{passed} passed, {len(bad)} failed, {skipped} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
