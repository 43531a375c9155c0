#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make trace: every instruction each walker runs, counted (up to about 2 per
# call counted twice: see scripts/trace-report.py), on the
# workloads of make bench cut down to what single-stepping can cover.
#
# Builds the profiling kernel of make profile (tests/configs/profile.config:
# the test kernel with DWARF, in $MPRS_CACHE/configs/profile), boots it
# under TCG with QEMU's gdbstub on a loopback port and the guest program in
# trace mode (tests/guest/bench_user.c -t: TRACE_REPS runs, 1, under each
# walker, of the workloads TRACE_ONLY names, comma-separated, or of all),
# and single-steps every change_protection() call of those runs through
# the gdbstub (scripts/trace-step.py, which speaks GDB's remote protocol,
# about 2,000 steps a second).  nokaslr, so that System.map's addresses
# hold; maxcpus=1, so that only the traced CPU runs.  scripts/trace-report.py
# resolves the addresses and writes out/trace/trace.md, copied to
# results/trace.md when every workload ran; the console, the debugger's log
# and the counts stay in out/trace/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only trace
root=$(mprs_root)
cache=$(mprs_cache)
reps=${TRACE_REPS:-1}
only=${TRACE_ONLY:-}
timeout_s=${TRACE_TIMEOUT:-3600}
dir="$cache/configs/profile"
out="$root/out/trace"

die() { echo "trace: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

mkdir -p "$out"
step "build the profiling kernel ($dir, log in out/configs/profile.log)"
"$here/configs.sh" profile >"$out/configs.log" 2>&1 ||
	die "the profiling kernel did not build (out/configs/profile.log)"

step "build the guest programs and the initramfs"
initramfs=$(KBUILD_OUTPUT_DIR="$dir" "$here/initramfs.sh" profile)
mapfile -t args < <(mprs_qemu_args)
# A free loopback port for the gdbstub.
port=$(mprs_free_port)
cmd=(qemu-system-x86_64 -nodefaults -nographic -no-reboot -serial stdio -monitor none
	"${args[@]}" -accel tcg -gdb "tcp:127.0.0.1:$port"
	-kernel "$dir/arch/x86/boot/bzImage" -initrd "$initramfs"
	-append "$MPRS_GUEST_CMDLINE kunit.enable=0 nokaslr maxcpus=1 mprs_trace=$reps${only:+ mprs_trace_only=$only}")
printf '%q ' "${cmd[@]}" >"$out/qemu.txt"
step "boot with the gdbstub on port $port; every change_protection() call of the traced runs single-stepped"
t0=$SECONDS
rm -f "$out/trace.json"
timeout "$timeout_s" "${cmd[@]}" </dev/null >"$out/console.txt" 2>&1 &
qemu=$!
# timeout passes TERM on to QEMU, which a debugger stopped and left.
trap 'kill -TERM $qemu 2>/dev/null' EXIT
# The debugger connects once QEMU listens (if it never does, the debugger
# fails to connect and says so).
mprs_wait_port "$port" || true
timeout -s KILL "$timeout_s" python3 "$here/trace-step.py" "$dir/System.map" "$port" \
	"$out/trace.json" >"$out/step.log" 2>&1 ||
	die "the debugger failed (out/trace/step.log)"
wait $qemu || die "QEMU failed or timed out (out/trace/console.txt)"
trap - EXIT
grep -q "^# bench: done" "$out/console.txt" || die "the guest did not finish (out/trace/console.txt)"
[ -s "$out/trace.json" ] || die "GDB wrote no counts (out/trace/step.log)"
echo "    $((SECONDS - t0)) s"
python3 "$here/splat-check.py" "$out/console.txt" "$root/tests/splat-allow.txt" ||
	die "a kernel splat in the traced boot"

step "resolve the addresses"
MPRS_TREE=$(mprs_tree) python3 "$here/trace-report.py" "$out/trace.json" "$dir/vmlinux" \
	>"$out/trace.md" || die "the report failed"
# Only a run of every workload replaces the committed report.
if [ -z "$only" ]; then
	mkdir -p "$root/results"
	cp "$out/trace.md" "$root/results/trace.md"
	echo "    results/trace.md"
else
	echo "    out/trace/trace.md (TRACE_ONLY: results/trace.md left as it is)"
fi
