#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make trace ARCH=arm64: every instruction each walker runs, counted exactly,
# on the workloads of make bench cut down as in make trace, from QEMU's own
# instruction log rather than by single-stepping.
#
# Boots the test kernel of make kunit ARCH=arm64 (no rebuild, no DWARF:
# counts by function, not by line; KBUILD_OUTPUT_DIR for another build)
# under TCG with -icount, QEMU's gdbstub on a loopback port and the guest
# program in trace mode (tests/guest/bench_user.c -t: TRACE_REPS runs, 5,
# under each walker, of the workloads TRACE_ONLY names, comma-separated,
# or of all; TRACE_KEEP_LOG=1 keeps QEMU's log, out/trace-arm64/exec.log).
# scripts/trace-exec.py turns QEMU's "-d exec,nochain" log on (with one
# instruction per translation block) at each workload's mark and off at
# its end; scripts/trace-exec-report.py counts what each change_protection()
# call ran and writes out/trace-arm64/trace.md, copied to
# results/arm64/trace.md when every workload of the test kernel ran.
# nokaslr, so that System.map's addresses hold.
#
# Run on x86_64 (ARCH unset) it writes out/trace-exec/trace.md only, with
# maxcpus=1 as make trace boots: KBUILD_OUTPUT_DIR=$MPRS_CACHE/configs/profile
# traces make trace's kernel, whose counts the two methods must agree on.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
build=$(mprs_build)
arch=$(mprs_arch)
reps=${TRACE_REPS:-5}
only=${TRACE_ONLY:-}
timeout_s=${TRACE_TIMEOUT:-3600}
if [ "$arch" = arm64 ]; then out="$root/out/trace-arm64"; cpus=; else out="$root/out/trace-exec"; cpus=" maxcpus=1"; fi

die() { echo "trace-exec: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/$(mprs_image)"
[ -f "$kernel" ] || die "no kernel at $kernel: run make kunit (ARCH=$arch) first"
grep -q "^CONFIG_MPROTECT_DEBUGFS_CHANGE=y" "$build/.config" ||
	die "the kernel lacks CONFIG_MPROTECT_DEBUGFS_CHANGE (tests/mprotect-rs.kunitconfig)"
mkdir -p "$out"
rm -f "$out/exec.log" "$out/writes.json"
step "build the guest programs and the initramfs"
if [ -n "${KBUILD_OUTPUT_DIR:-}" ]; then
	initramfs=$("$here/initramfs.sh" trace)
else
	initramfs=$("$here/initramfs.sh")
fi
mapfile -t args < <(mprs_qemu_args)
port=$(mprs_free_port)
cmd=("$(mprs_qemu)" -nodefaults -nographic -no-reboot -serial stdio -monitor none
	"${args[@]}" -accel tcg -icount shift=0,sleep=off -gdb "tcp:127.0.0.1:$port"
	-kernel "$kernel" -initrd "$initramfs" -D "$out/exec.log"
	-append "$MPRS_GUEST_CMDLINE kunit.enable=0 nokaslr$cpus mprs_trace=$reps${only:+ mprs_trace_only=$only}")
printf '%q ' "${cmd[@]}" >"$out/qemu.txt"
step "boot with the gdbstub on port $port; QEMU logs every instruction of the traced runs"
t0=$SECONDS
timeout "$timeout_s" "${cmd[@]}" </dev/null >"$out/console.txt" 2>&1 &
qemu=$!
trap 'kill -TERM $qemu 2>/dev/null' EXIT
# The debugger connects once QEMU listens (if it never does, the debugger
# fails to connect and says so).
mprs_wait_port "$port" || true
timeout -s KILL "$timeout_s" python3 "$here/trace-exec.py" "$arch" "$build/System.map" "$port" \
	"$out/writes.json" >"$out/debugger.log" 2>&1 ||
	die "the debugger failed (${out#"$root/"}/debugger.log)"
wait $qemu || die "QEMU failed or timed out (${out#"$root/"}/console.txt)"
trap - EXIT
grep -q "^# bench: done" "$out/console.txt" || die "the guest did not finish (${out#"$root/"}/console.txt)"
echo "    $((SECONDS - t0)) s, $(wc -l <"$out/exec.log") lines in QEMU's log"
python3 "$here/splat-check.py" "$out/console.txt" "$root/tests/splat-allow.txt" ||
	die "a kernel splat in the traced boot"

step "count the calls"
MPRS_LLVM=$MPRS_LLVM python3 "$here/trace-exec-report.py" "$arch" "$out/exec.log" "$out/writes.json" \
	"$build/vmlinux" >"$out/trace.md" || die "the report failed"
# The log is large (TRACE_KEEP_LOG=1 keeps it).
[ "${TRACE_KEEP_LOG:-0}" = 1 ] || rm -f "$out/exec.log"
# Only a run of every workload, 5 times, on arm64's test kernel replaces the
# committed report.
if [ -z "$only" ] && [ "$reps" = 5 ] && [ "$arch" = arm64 ] && [ -z "${KBUILD_OUTPUT_DIR:-}" ] &&
	[ "$(mprs_kernel)" = test ]; then
	mkdir -p "$root/results/arm64"
	cp "$out/trace.md" "$root/results/arm64/trace.md"
	echo "    results/arm64/trace.md"
else
	echo "    ${out#"$root/"}/trace.md (results/ left as they are)"
fi
