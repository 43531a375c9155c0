#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make trace's debugger: single-steps every change_protection() call of the
guest program in trace mode (tests/guest/bench_user.c -t) and counts the
instructions it executes, by address.

    trace-step.py SYSTEM_MAP PORT OUT

SYSTEM_MAP is the booted kernel's System.map (booted with nokaslr); PORT is
QEMU's gdbstub on the loopback; OUT the JSON file to write.  It speaks GDB's
remote serial protocol itself, the few packets it needs (Z0, z0, c, s, p,
m, D), so that no debugger needs installing.

The guest marks what it runs by writing to /sys/kernel/debug/mprotect/walker:
"trace:<workload>:<units>:<unit>" (which the kernel refuses), then "c" or
"rust" before the runs of that walker, "trace:stop" after them, and at the
end "trace:end".  A breakpoint in mprotect_walker_write() reads each write
from the user buffer; a second one, on change_protection()'s first
instruction and inserted only between a mark and "trace:stop", starts the
single-stepping, which ends when the call returns.  Whatever the call runs
is counted: the walker, the C functions it calls, and the interrupts that
come in meanwhile (none: QEMU's gdbstub masks interrupts and timers while
it single-steps, by default).

A call that reaches a context switch (cond_resched() with a reschedule
pending) is let run to its return unstepped and counted in "switched"; the
report says so.  Every marked workload must have calls under both walkers.

Writes {"runs": {"<workload> <walker>": {"units": N, "unit": U, "calls": N,
"switched": N, "pcs": {"<address>": count}}}}.
"""

import collections
import json
import socket
import sys

# x86_64's registers in GDB's numbering.
RDX, RSI, RSP, RIP = 3, 4, 7, 16


class Remote:
    """A client of the GDB remote serial protocol."""

    # The architecture whose registers the client asks for.
    XML_REGISTERS = "i386"

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        # QEMU stops a running guest when a debugger connects, and says so.
        self.acks = True
        self.sock.settimeout(2)
        try:
            self.recv()
        except socket.timeout:
            pass
        self.sock.settimeout(None)
        self.call("?")
        # Without acknowledgements where the stub can (QEMU 7.2 cannot): a
        # packet not acknowledged is sent again.
        if self.call("QStartNoAckMode") == "OK":
            self.acks = False
        # QEMU answers p (one register) only to a debugger that has read the
        # target description.
        self.call("qSupported:xmlRegisters=%s" % self.XML_REGISTERS)
        self.call("qXfer:features:read:target.xml:0,ffb")

    def send(self, data):
        pkt = b"$%s#%02x" % (data.encode(), sum(data.encode()) & 0xFF)
        self.sock.sendall(pkt)

    def recv(self):
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                data = self.buf[start + 1:end]
                self.buf = self.buf[end + 3:]
                if self.acks:
                    self.sock.sendall(b"+")
                return data.decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("trace-step: the gdbstub closed the connection")
            self.buf += chunk

    def call(self, data):
        self.send(data)
        return self.recv()

    def hex_call(self, data):
        reply = self.call(data)
        if not reply or reply.startswith("E"):
            raise SystemExit("trace-step: %s: %r" % (data, reply))
        return bytes.fromhex(reply)

    def reg(self, n):
        return int.from_bytes(self.hex_call("p%x" % n), "little")

    def mem(self, addr, n):
        return self.hex_call("m%x,%x" % (addr, n))

    def expect_ok(self, data):
        reply = self.call(data)
        if reply != "OK":
            raise SystemExit("trace-step: %s: %r" % (data, reply))


def system_map(path):
    """The addresses of System.map's symbols, by name."""
    syms = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 3:
            syms[f[2]] = int(f[0], 16)
    return syms


def main():
    sysmap, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    syms = system_map(sysmap)
    write_pc = syms["mprotect_walker_write"]
    entry_pc = syms["change_protection"]
    # Where a context switch starts: a call that gets there (cond_resched()
    # with a reschedule pending) is not followed into other tasks.
    switch_pc = syms.get("__switch_to_asm")

    rsp = Remote(port)
    rsp.expect_ok("Z0,%x,1" % write_pc)
    armed = False
    runs = {}
    marked = []
    meta = run = None
    while True:
        reply = rsp.call("c")
        if not reply.startswith("T") and not reply.startswith("S"):
            raise SystemExit("trace-step: the guest stopped: %r" % reply)
        pc = rsp.reg(RIP)
        if pc == write_pc:
            # mprotect_walker_write(file, ubuf, count, ppos)
            count = min(rsp.reg(RDX), 256)
            text = rsp.mem(rsp.reg(RSI), count).decode(errors="replace").strip()
            if text == "trace:end":
                break
            want = None
            if text == "trace:stop":
                meta = run = None
                want = False
            elif text.startswith("trace:"):
                _, workload, units, unit = text.split(":", 3)
                meta = dict(workload=workload, units=int(units), unit=unit)
                marked.append(workload)
                run = None
                want = True
            elif meta and text in ("c", "rust"):
                run = runs.setdefault("%s %s" % (meta["workload"], text),
                                      dict(units=meta["units"], unit=meta["unit"], calls=0,
                                           switched=0, pcs=collections.Counter()))
            if want is not None and want != armed:
                rsp.expect_ok("%s0,%x,1" % ("Z" if want else "z", entry_pc))
                armed = want
            # Step off the breakpoint without it, as GDB does.
            rsp.expect_ok("z0,%x,1" % write_pc)
            rsp.call("s")
            rsp.expect_ok("Z0,%x,1" % write_pc)
            continue
        if pc != entry_pc:
            continue
        # The first instruction of change_protection(): step until it
        # returns, without the breakpoint (put back after).
        rsp.expect_ok("z0,%x,1" % entry_pc)
        if run is None:
            rsp.call("s")
            rsp.expect_ok("Z0,%x,1" % entry_pc)
            continue
        sp = rsp.reg(RSP)
        ret = int.from_bytes(rsp.mem(sp, 8), "little")
        pcs = run["pcs"]
        run["calls"] += 1
        steps = 0
        while not (pc == ret and rsp.reg(RSP) > sp):
            if pc == switch_pc:
                # Another task is about to run: let it, and this call finish,
                # and count the call as cut short.
                run["switched"] += 1
                rsp.expect_ok("Z0,%x,1" % ret)
                while True:
                    rsp.call("c")
                    if rsp.reg(RIP) == ret and rsp.reg(RSP) > sp:
                        break
                rsp.expect_ok("z0,%x,1" % ret)
                break
            pcs[pc] += 1
            steps += 1
            reply = rsp.call("s")
            if not reply.startswith("T") and not reply.startswith("S"):
                raise SystemExit("trace-step: a step ended with %r" % reply)
            pc = rsp.reg(RIP)
        rsp.expect_ok("Z0,%x,1" % entry_pc)
        print("%s %s: %d instructions" % (meta["workload"], text, steps), flush=True)

    missing = ["%s %s" % (w, x) for w in marked for x in ("c", "rust")
               if runs.get("%s %s" % (w, x), {}).get("calls", 0) == 0]
    if missing:
        raise SystemExit("trace-step: no change_protection() call stepped for: " + ", ".join(missing))
    for r in runs.values():
        r["pcs"] = {"0x%x" % a: n for a, n in r["pcs"].items()}
    json.dump({"runs": runs}, open(out, "w"), indent=0)
    rsp.send("D")


if __name__ == "__main__":
    main()
