#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# splat-check.py CONSOLE_LOG ALLOW_LIST
#
# Fail when the kernel console log of a boot holds a splat: a warning, BUG,
# oops, KASAN or UBSAN report, lockdep report, sleep in atomic context,
# page-table-check failure, Rust panic, RCU stall, soft or hard lockup, hung
# task, or any other stack dump.  Each splat is printed whole.
#
# A splat that is not ours and that the C walker's runs show too may be
# listed in ALLOW_LIST, with the reason: its first line, normalised (CPU
# numbers, PIDs, task names and addresses replaced by "?"), must equal a
# "splat:" line of the list, which the next line, "reason: ...", explains.
# Optional "within: TEXT" lines after the reason narrow the entry: each TEXT
# must appear in the splat's lines (a function of its stack, say).  Nothing
# is matched by pattern.
import re
import sys

# Lines that start a splat.  Everything that dumps a stack prints
# "Call Trace:", so a stack dump whose header is not below is caught too.
TRIGGERS = re.compile(
    r"\bWARNING:|\bBUG:|\bOops\b|kernel BUG at|general protection fault|"
    r"\bUBSAN:|\bKASAN:|Kernel panic|panicked at|"
    r"possible recursive locking|possible circular locking|"
    r"inconsistent lock state|suspicious RCU usage|DEBUG_LOCKS_WARN_ON|"
    r"sleeping function called from invalid context|"
    r"detected stall|self-detected stall|soft lockup|hard LOCKUP|"
    r"blocked for more than|Bad page (state|map)|page_table_check|"
    r"list_(add|del) corruption|refcount_t: |Call Trace:")
END = re.compile(r"---\[ end (trace|Kernel panic)")
MAX_LINES = 120
# kunit.py's and QEMU's own lines never start a splat.
TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def normalise(line):
    line = TIMESTAMP.sub("", line.strip())
    line = re.sub(r"CPU#\d+: \S+", "CPU#?: ?", line)
    line = re.sub(r"\b(CPU|PID|UID): \d+", r"\1: ?", line)
    line = re.sub(r"\bComm: \S+", "Comm: ?", line)
    line = re.sub(r"\b(pid|PID)[ =:]+\d+", r"\1 ?", line)
    line = re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "+?/?", line)
    line = re.sub(r"\b0x[0-9a-fA-F]+\b", "?", line)
    line = re.sub(r"\b[0-9a-f]{8,16}\b", "?", line)
    return line


def splats(lines):
    """Yield (index, block) for each splat of the log."""
    i = 0
    while i < len(lines):
        if not TRIGGERS.search(lines[i]):
            i += 1
            continue
        start = i
        # A WARN's "cut here" line and message come before its header.
        while start > 0 and i - start < 3 and "[ cut here ]" not in lines[start]:
            start -= 1
        if "[ cut here ]" not in lines[start]:
            start = i
        j = i + 1
        while j < len(lines) and j - i < MAX_LINES and not END.search(lines[j - 1]):
            # Two splats in a row: the next one starts its own block, unless
            # it is this one's stack (its "Call Trace:").
            if TRIGGERS.search(lines[j]) and "Call Trace:" not in lines[j] \
                    and not lines[j].lstrip().startswith(("<", "?")):
                break
            j += 1
        yield i, lines[start:j]
        i = j


def load_allow(path):
    """{normalised first line: [(reason, [within, ...]), ...]}"""
    allowed = {}
    splat = last = None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith("splat: "):
                splat = line[len("splat: "):]
            elif line.startswith("reason: ") and splat is not None:
                last = (line[len("reason: "):], [])
                allowed.setdefault(splat, []).append(last)
                splat = None
            elif line.startswith("within: ") and splat is None and last is not None:
                last[1].append(line[len("within: "):])
            else:
                sys.exit(f"splat-check: {path}:{n}: expected 'splat: ...', 'reason: ...', "
                         "then optional 'within: ...' lines")
    if splat is not None:
        sys.exit(f"splat-check: {path}: '{splat}' has no reason")
    return allowed


def allowed_reason(allowed, key, block):
    text = "\n".join(block)
    for reason, within in allowed.get(key, []):
        if all(w in text for w in within):
            return reason
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], errors="replace") as f:
        lines = f.read().splitlines()
    allowed = load_allow(sys.argv[2])
    bad = 0
    for i, block in splats(lines):
        key = normalise(lines[i])
        reason = allowed_reason(allowed, key, block)
        if reason is not None:
            print(f"splat-check: allowed ({reason}): {key}")
            continue
        bad += 1
        print(f"splat-check: SPLAT at line {i + 1} of {sys.argv[1]}:")
        for line in block:
            print(f"    {line}")
        print(f"splat-check: (normalised: {key})")
    print(f"splat-check: {sys.argv[1]}: {bad} splat(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
