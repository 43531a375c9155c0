# SPDX-License-Identifier: GPL-2.0
"""Kernel addresses to functions, for make profile and make trace.

symbolize() resolves addresses with llvm-symbolizer$MPRS_LLVM (inline frames
included; MPRS_LLVM=-22 by default, as scripts/lib.sh); classify() puts the
frames of one address in a row and a class:

  - inside a walker's symbol (change_protection() and the C walker
    change_protection_range(), inlined into it without the Rust walker; the
    Rust walker's functions; the floor): the innermost inlined
    function, classed as the walker's own code (mm/mprotect.c,
    mm/mprotect_rs.rs), the abstractions (rust/kernel/mm/pgtable.rs), an
    inlined helper (any other file: include/, arch/, ...) or code without a
    line;
  - elsewhere: the out-of-line symbol, as a called function (or idle).
"""

import json
import os
import re
import subprocess

LLVM = os.environ.get("MPRS_LLVM", "-22")

OWN = ("mm/mprotect.c", "mm/mprotect_rs.rs")
ABSTRACTIONS = ("rust/kernel/mm/pgtable.rs",)
IDLE = re.compile(r"idle|safe_halt|^halt$|poll_idle")

CLASSES = ("own", "abstraction", "helper", "noline", "called")
CLASS_NAME = {
    "own": "the walker's own lines (`mm/mprotect.c`, `mm/mprotect_rs.rs`)",
    "abstraction": "`kernel::mm::pgtable` lines (Rust only)",
    "helper": "inlined C helpers with their own lines (`include/`, `arch/`)",
    "noline": "inlined code without a line: compiler-made, and in Rust the C helpers "
              "inlined from `rust/helpers/`, whose bitcode carries no line information",
    "called": "out-of-line functions the walk calls, and the rest of the system call",
}


def symbol_address(vmlinux, name):
    """The address of symbol name in vmlinux."""
    nm = subprocess.run(["llvm-nm" + LLVM, vmlinux], capture_output=True, text=True,
                        check=True).stdout
    return next(int(l.split()[0], 16) for l in nm.splitlines() if l.endswith(" " + name))


def symbolize(vmlinux, addrs):
    """{address: [(function, file, line), ...]}, innermost inline frame first."""
    addrs = list(addrs)
    out = subprocess.run(
        ["llvm-symbolizer" + LLVM, "--obj=" + vmlinux, "--inlines", "--demangle",
         "--output-style=JSON"],
        input="".join("0x%x\n" % a for a in addrs), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    if len(out) != len(addrs):
        raise SystemExit("llvm-symbolizer answered %d of %d addresses" % (len(out), len(addrs)))
    return {a: [(s.get("FunctionName", "??"), s.get("FileName", ""), s.get("Line", 0))
                for s in json.loads(line).get("Symbol", [])] or [("??", "", 0)]
            for a, line in zip(addrs, out)}


def short(fn):
    """A demangled Rust path without crate hashes and generic arguments."""
    fn = re.sub(r"\[[0-9a-f]{16}\]", "", fn)
    fn = re.sub(r"::\{closure#\d+\}", "::{closure}", fn)
    prev = None
    while prev != fn:
        prev = fn
        fn = re.sub(r"<([^<>]*?) as [^<>]*?>", r"\1", fn)
    fn = fn.replace("mprotect_rs::", "").replace("kernel::mm::pgtable::", "pgtable::")
    return fn


TREE = os.environ.get("MPRS_TREE", "").rstrip("/")


def rel(path):
    """A source path from the top of the kernel tree (MPRS_TREE, where given)."""
    if TREE and path.startswith(TREE + "/"):
        return path[len(TREE) + 1:]
    m = re.search(r"/(mm|include|arch|rust|kernel|lib|fs)/(.*)$", path)
    return m.group(1) + "/" + m.group(2) if m else path


def walker_symbol(raw):
    """Whether the out-of-line symbol raw is (part of) a walker or the floor."""
    return (raw in ("change_protection", "change_protection_range", "mprotect_floor_write")
            or raw.startswith("rust_change_protection_range") or "mprotect_rs::" in raw)


def classify(frames, extra=None):
    """(row, class) of an address with these frames; extra: {symbol: class}
    for out-of-line symbols classed apart."""
    raw = frames[-1][0]
    outer = short(raw)
    if IDLE.search(outer):
        return outer, "idle"
    if extra and outer in extra:
        return outer, extra[outer]
    if walker_symbol(raw):
        inner, file, line = frames[0]
        file = rel(file)
        if line == 0:
            return short(inner) + "  (no line)", "noline"
        cls = "own" if file in OWN else "abstraction" if file in ABSTRACTIONS else "helper"
        return short(inner) + ("" if cls != "helper" else "  (%s)" % file), cls
    return outer, "called"


def line_of(frames):
    """file:line of an address's innermost frame, or None without a line."""
    inner, file, line = frames[0]
    return "%s:%d" % (rel(file), line) if line else None
