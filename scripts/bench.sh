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
# (emulated time).  Then it builds and boots, under -icount, a baseline: the
# base kernel with only the series' C patches before the first Rust one (the
# C fix, the test hooks and the debugfs files), in the same configuration,
# where only the C walker exists; every workload runs there too, so the
# report shows what the series costs the C walker.  The baseline is built
# from a work tree of its own ($MPRS_CACHE/baseline-src) into a build
# directory of its own ($MPRS_CACHE/configs/baseline).
# scripts/bench-report.py writes results/bench.md and results/bench.png;
# results/ also gets the raw output, the kernel configs, the QEMU command
# lines and the host CPU model.
#
# ARCH=arm64 (make bench ARCH=arm64, after make kunit ARCH=arm64): the same
# on the arm64 kernels under qemu-system-aarch64, wall-clock always under
# multi-threaded TCG, results in results/arm64/ and the baseline and
# RUST_INLINE_HELPERS=n kernels in $MPRS_CACHE/configs/*-arm64.  The DAX
# workload does not run there (no device-DAX, no PUD leaves).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
build=$(mprs_build)
arch=$(mprs_arch)
suffix=$(mprs_arch_suffix)
qemu=$(mprs_qemu)
if [ "$arch" = x86_64 ]; then results="$root/results"; else results="$root/results/$arch"; fi
reps=${BENCH_REPS:-11}
# aarch64 under TCG on an x86_64 host is about three times slower.
if [ "$arch" = x86_64 ]; then timeout_s=${BENCH_TIMEOUT:-900}; else timeout_s=${BENCH_TIMEOUT:-2700}; fi

die() { echo "bench: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/$(mprs_image)"
[ -f "$kernel" ] || die "no kernel at $kernel: run make run first (ARCH=arm64: make kunit ARCH=arm64)"
grep -q "^CONFIG_MPROTECT_DEBUGFS_CHANGE=y" "$build/.config" ||
	die "the kernel lacks CONFIG_MPROTECT_DEBUGFS_CHANGE (tests/mprotect-rs.kunitconfig)"
python3 -c "import matplotlib" 2>/dev/null ||
	python3 -m pip install -q matplotlib || die "cannot install matplotlib from PyPI"

mkdir -p "$root/out"
step "build the guest programs and the initramfs"
initramfs=$("$here/initramfs.sh")
mapfile -t args < <(mprs_qemu_args)
mkdir -p "$results"

# run MODE ACCEL...: one boot of $kernel, raw output in results/bench-MODE.txt.
# tsc=reliable: with each NUMA node its own socket (tests/qemu/args) the
# kernel takes the TCG vCPUs' TSCs for unsynchronized and times with the
# HPET, whose 10 ns steps would round the exact -icount instruction counts
# (1 ns = 1 instruction).  Only here: the test boots keep the kernel's
# default clocksource choice.  arm64 times with the generic timer, whose
# 62.5 MHz counter (QEMU's virt machine) rounds to 16 instructions.
tsc=
[ "$arch" != x86_64 ] || tsc=" tsc=reliable"
run() {
	local mode=$1
	shift
	local cmd=("$qemu" -nodefaults -nographic -no-reboot -serial stdio
		-monitor none "${args[@]}" "$@" -kernel "$kernel" -initrd "$initramfs"
		-append "$MPRS_GUEST_CMDLINE$tsc mprs_bench=$reps")
	printf '%q ' "${cmd[@]}" >"$results/qemu-$mode.txt"
	echo >>"$results/qemu-$mode.txt"
	step "benchmarks, $mode ($reps rounds)"
	local t0=$SECONDS try rc
	for try in 1 2; do
		rc=0
		timeout -s KILL "$timeout_s" "${cmd[@]}" </dev/null >"$results/bench-$mode.txt" 2>&1 ||
			rc=$?
		# QEMU 7.2's multi-threaded TCG (the wall-clock boot without KVM;
		# -icount runs one thread) can die of its int3 oops
		# (mprs_tcg_boot_oops in lib.sh): booted again, once, the first
		# log kept.
		mprs_boot_again "$mode" "$try" "$results/bench-$mode.txt" \
			"$results/bench-$mode-boot-oops.txt" 2>&1 || break
	done
	[ $rc = 0 ] || die "QEMU failed or timed out ($mode): results/bench-$mode.txt"
	grep -q "^# bench: done" "$results/bench-$mode.txt" ||
		die "the benchmarks did not finish ($mode): results/bench-$mode.txt"
	echo "    $((SECONDS - t0)) s"
}

run icount -accel tcg -icount shift=0,sleep=off
if [ "$arch" = x86_64 ] && [ "$("$here/kvm-probe.sh" "$kernel")" = kvm ]; then
	wall_mode=kvm
	run kvm -accel kvm
else
	wall_mode=tcg
	run tcg -accel tcg,thread=multi
fi

# The report of the two boots first, so that a failing baseline loses nothing.
rm -f "$results/bench-baseline.txt" "$results/qemu-baseline.txt" "$results/kernel-baseline.config"
cp "$build/.config" "$results/kernel.config"
{
	grep -m1 "model name" /proc/cpuinfo | sed 's/.*: //'
	echo "$(nproc) CPUs; QEMU $("$qemu" --version | head -n1)"
} >"$results/host.txt"
# The text of each walker, from the symbol table of the kernel measured:
# the C walker change_protection_range() (a function of its own with the
# Rust walker built in), change_protection() (the switch) and the
# out-of-line mprotect_folio_pte_batch(); the Rust walker's functions and
# the C functions of mm/mprotect_rs_shared.c that only it calls (mprotect_rs_*).
"llvm-nm$MPRS_LLVM" -S -C "$build/vmlinux" | grep -E ' [tT] (change_protection|change_protection_range|mprotect_folio_pte_batch|rust_change_protection_range|mprotect_rs_[a-z_]+|<mprotect_rs::Walk>::[a-z_]+)$' \
	>"$results/text-size.txt" || die "no walker symbols in $build/vmlinux"
grep -q ' change_protection$' "$results/text-size.txt" &&
	grep -q ' change_protection_range$' "$results/text-size.txt" &&
	grep -q ' rust_change_protection_range$' \
	"$results/text-size.txt" || die "the walkers' symbols are not in $build/vmlinux"
python3 "$here/bench-report.py" "$results" "$wall_mode" >/dev/null

# The baseline: the parent of the series' first commit that touches rust/.
tree=$(mprs_tree)
cache=$(mprs_cache)
g() { git -C "$tree" "$@"; }
first_rust=$(g rev-list --reverse refs/mprs/base..refs/heads/mprotect-rs -- rust | sed -n 1p)
[ -n "$first_rust" ] || die "no commit of the series touches rust/"
baseline=$(g rev-parse "$first_rust^")
g grep -q '^config MPROTECT_DEBUGFS_CHANGE$' "$baseline" -- mm/Kconfig ||
	die "the baseline $(g log -1 --format='%h %s' "$baseline") lacks the debugfs files"
bsrc="$cache/baseline-src"
bbuild="$cache/configs/baseline$suffix"
mprs_worktree "$tree" "$bsrc" "$baseline" || die "no work tree for the baseline at $bsrc"
step "build the baseline: $(g log -1 --format='%h %s' "$baseline") ($bbuild)"
mkdir -p "$bbuild"
mprs_test_config >"$bbuild/.config"
make -C "$bsrc" O="$bbuild" ARCH="$arch" LLVM="$MPRS_LLVM" olddefconfig >"$root/out/baseline-build$suffix.log" 2>&1 ||
	die "baseline configuration failed"
grep -q '^CONFIG_MPROTECT_DEBUGFS_CHANGE=y' "$bbuild/.config" ||
	die "the baseline's config lacks CONFIG_MPROTECT_DEBUGFS_CHANGE"
! grep -q '^CONFIG_MPROTECT_RS=y' "$bbuild/.config" || die "the baseline has the Rust walker"
make -C "$bsrc" O="$bbuild" ARCH="$arch" LLVM="$MPRS_LLVM" -j"${JOBS:-$(nproc)}" all \
	>>"$root/out/baseline-build$suffix.log" 2>&1 || die "baseline build failed (out/baseline-build$suffix.log)"
kernel="$bbuild/$(mprs_image)"
run baseline -accel tcg -icount shift=0,sleep=off
grep -q '^B [^ ]* base [0-9]' "$results/bench-baseline.txt" ||
	die "the baseline printed no 'B <workload> base' lines (a walker switch in it?)"
cp "$bbuild/.config" "$results/kernel-baseline.config"

# What inlining the C helpers into Rust is worth: the test kernel with
# CONFIG_RUST_INLINE_HELPERS=n (tests/configs/inline-off.config, built and
# checked by make configs' script), under -icount.
rm -f "$results/bench-inline-off.txt" "$results/qemu-inline-off.txt"
step "build the test kernel with CONFIG_RUST_INLINE_HELPERS=n"
"$here/configs.sh" inline-off >"$root/out/inline-off-build$suffix.log" 2>&1 ||
	die "the RUST_INLINE_HELPERS=n kernel did not build or pass (out/inline-off-build$suffix.log)"
kernel="$(mprs_cache)/configs/inline-off$suffix/$(mprs_image)"
run inline-off -accel tcg -icount shift=0,sleep=off
python3 "$here/bench-report.py" "$results" "$wall_mode"
