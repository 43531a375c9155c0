#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: the Rust walker against the C walker in the same boot.
#
# Boots the kernel `make run` built, twice, with the guest initramfs in
# benchmark mode (tests/guest/bench_user.c, BENCH_REPS rounds, C and Rust
# alternating): once under -icount shift=0,sleep=off, where a nanosecond of
# guest time is one guest instruction (exact and repeatable), and once for
# wall-clock time, under KVM where it works, else multi-threaded TCG
# (emulated time).  scripts/bench-report.py writes results/bench.md and
# results/bench.png; results/ also gets the raw output, the kernel config,
# the QEMU command lines and the host CPU model.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
build=$(mprs_build)
results="$root/results"
reps=${BENCH_REPS:-11}
timeout_s=${BENCH_TIMEOUT:-900}

die() { echo "bench: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/arch/x86/boot/bzImage"
[ -f "$kernel" ] || die "no kernel at $kernel: run make run first"
grep -q "^CONFIG_MPROTECT_RS_DEBUGFS_CHANGE=y" "$build/.config" ||
	die "the kernel lacks CONFIG_MPROTECT_RS_DEBUGFS_CHANGE (tests/mprotect-rs.kunitconfig)"
python3 -c "import matplotlib" 2>/dev/null ||
	python3 -m pip install -q matplotlib || die "cannot install matplotlib from PyPI"

step "build the guest programs and the initramfs"
initramfs=$("$here/initramfs.sh")
mapfile -t args < <(mprs_qemu_args)
mkdir -p "$results"

# run MODE ACCEL...: one boot, raw output in results/bench-MODE.txt.
run() {
	local mode=$1
	shift
	local cmd=(qemu-system-x86_64 -nodefaults -nographic -no-reboot -serial stdio
		-monitor none "${args[@]}" "$@" -kernel "$kernel" -initrd "$initramfs"
		-append "$MPRS_GUEST_CMDLINE mprs_bench=$reps")
	printf '%q ' "${cmd[@]}" >"$results/qemu-$mode.txt"
	echo >>"$results/qemu-$mode.txt"
	step "benchmarks, $mode ($reps rounds)"
	local t0=$SECONDS
	timeout -s KILL "$timeout_s" "${cmd[@]}" </dev/null >"$results/bench-$mode.txt" 2>&1 ||
		die "QEMU failed or timed out ($mode): results/bench-$mode.txt"
	grep -q "^# bench: done" "$results/bench-$mode.txt" ||
		die "the benchmarks did not finish ($mode): results/bench-$mode.txt"
	echo "    $((SECONDS - t0)) s"
}

run icount -accel tcg -icount shift=0,sleep=off
if [ "$("$here/kvm-probe.sh" "$kernel")" = kvm ]; then
	wall_mode=kvm
	run kvm -accel kvm
else
	wall_mode=tcg
	run tcg -accel tcg,thread=multi
fi

cp "$build/.config" "$results/kernel.config"
{
	grep -m1 "model name" /proc/cpuinfo | sed 's/.*: //'
	echo "$(nproc) CPUs; QEMU $(qemu-system-x86_64 --version | head -n1)"
} >"$results/host.txt"
python3 "$here/bench-report.py" "$results" "$wall_mode"
