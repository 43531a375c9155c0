#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make trace ARCH=arm64's debugger: turns QEMU's instruction log on for
the traced runs of the guest program in trace mode (tests/guest/bench_user.c
-t) and off between them.

    trace-exec.py ARCH SYSTEM_MAP PORT OUT

ARCH is arm64 or x86_64; SYSTEM_MAP the booted kernel's System.map (booted
with nokaslr); PORT QEMU's gdbstub on the loopback; OUT the JSON file to
write.

Single-stepping through the gdbstub (scripts/trace-step.py, x86_64) runs
about 2,000 instructions a second.  Here QEMU itself logs every instruction
it runs ("-d exec,nochain" with one instruction per translation block), at
a few million a second, to the file of its -D option; the log is on only
from a workload's mark to its "trace:stop", so that the set-up of the
workloads (gigabytes of page faults) is not logged.  A breakpoint in
mprotect_walker_write() reads each write to the walker file, as in
trace-step.py; at a mark it sends the monitor commands "one-insn-per-tb on"
and "log exec,nochain" (GDB's "monitor", the qRcmd packet), at
"trace:stop" "log none" and "one-insn-per-tb off".

Writes {"writes": ["trace:<workload>:<units>:<unit>", "c", "rust", ...]}:
the writes made while the log was on, in order, each of which starts in the
log with mprotect_walker_write()'s first instruction, so that
scripts/trace-exec-report.py knows which walker ran what it reads.
"""

import binascii
import importlib.util
import json
import os
import sys

_spec = importlib.util.spec_from_file_location(
    "trace_step", os.path.join(os.path.dirname(os.path.abspath(__file__)), "trace-step.py"))
trace_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(trace_step)

# PSTATE.PAN: while it is set, the kernel (and the debugger, which reads
# memory as the kernel would) cannot read user memory.
PSTATE_PAN = 1 << 22

# Per architecture: the registers of the target description asked for, and
# in GDB's numbering those of mprotect_walker_write()'s buffer and count,
# the PC and (arm64) PSTATE; the breakpoint's length.
ARCHS = {
    "arm64": dict(xml="aarch64", buf=1, count=2, pc=32, cpsr=33, bp=4),
    "x86_64": dict(xml="i386", buf=4, count=3, pc=16, cpsr=None, bp=1),
}


class Remote(trace_step.Remote):
    """trace-step.py's client, for either architecture."""

    def __init__(self, port, arch):
        self.arch = ARCHS[arch]
        self.XML_REGISTERS = self.arch["xml"]
        super().__init__(port)

    def user_mem(self, addr, n):
        """Reads user memory; on arm64 with PSTATE.PAN cleared for the read."""
        cpsr = self.arch["cpsr"]
        if cpsr is None:
            return self.mem(addr, n)
        saved = self.reg(cpsr)
        self.expect_ok("P%x=%s" % (cpsr, (saved & ~PSTATE_PAN).to_bytes(4, "little").hex()))
        try:
            return self.mem(addr, n)
        finally:
            self.expect_ok("P%x=%s" % (cpsr, saved.to_bytes(4, "little").hex()))

    def monitor(self, command):
        """A monitor command through the gdbstub (GDB's "monitor", the qRcmd packet)."""
        reply = self.call("qRcmd," + binascii.hexlify(command.encode()).decode())
        # The commands sent print nothing when they work: any output is an error.
        if reply != "OK":
            out = bytes.fromhex(reply[1:]).decode(errors="replace") if reply.startswith("O") else reply
            raise SystemExit("trace-exec: monitor %r: %r" % (command, out))


def main():
    arch, sysmap, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    write_pc = trace_step.system_map(sysmap)["mprotect_walker_write"]

    rsp = Remote(port, arch)
    bp = rsp.arch["bp"]
    rsp.expect_ok("Z0,%x,%d" % (write_pc, bp))
    logging = False
    writes = []
    while True:
        reply = rsp.call("c")
        if not reply.startswith("T") and not reply.startswith("S"):
            raise SystemExit("trace-exec: the guest stopped: %r" % reply)
        if rsp.reg(rsp.arch["pc"]) != write_pc:
            continue
        # mprotect_walker_write(file, ubuf, count, ppos)
        count = min(rsp.reg(rsp.arch["count"]), 256)
        text = rsp.user_mem(rsp.reg(rsp.arch["buf"]), count).decode(errors="replace").strip()
        if text == "trace:end":
            if logging:
                raise SystemExit("trace-exec: trace:end before trace:stop")
            break
        if text == "trace:stop":
            if logging:
                rsp.monitor("log none")
                rsp.monitor("one-insn-per-tb off")
                logging = False
        elif text.startswith("trace:"):
            if not logging:
                rsp.monitor("one-insn-per-tb on")
                rsp.monitor("log exec,nochain")
                logging = True
            print(text, flush=True)
        if logging:
            writes.append(text)
        # Step off the breakpoint without it, as GDB does.
        rsp.expect_ok("z0,%x,%d" % (write_pc, bp))
        reply = rsp.call("s")
        if not reply.startswith("T") and not reply.startswith("S"):
            raise SystemExit("trace-exec: a step ended with %r" % reply)
        rsp.expect_ok("Z0,%x,%d" % (write_pc, bp))
    if not writes:
        raise SystemExit("trace-exec: the guest marked no workload")
    json.dump({"writes": writes}, open(out, "w"), indent=0)
    rsp.expect_ok("z0,%x,%d" % (write_pc, bp))
    rsp.send("D")


if __name__ == "__main__":
    main()
