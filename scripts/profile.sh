#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make profile: where each walker's instructions go, per page, on the
# workloads of make bench.
#
# Builds the test kernel with CONFIG_PROFILING and DWARF
# (tests/configs/profile.config, in $MPRS_CACHE/configs/profile: debug
# information does not change the code), boots it with profile=0 under
# QEMU's -icount shift=PROFILE_SHIFT (4), where the kernel's tick, which
# samples the interrupted PC into /proc/profile, comes every TICK_NSEC /
# 2^PROFILE_SHIFT guest instructions (208,333.3 at the config's HZ=300), and
# runs the guest program in profile mode (tests/guest/bench_user.c -p:
# PROFILE_REPS runs, 20, of each workload under each walker and of the
# floor, /proc/profile read after each).  Only CPU 0 is brought up
# (maxcpus=1; node 1 keeps its memory): with the idle second vCPU, whose
# timer then lags under this -icount, RCU reported stalls, and its idle
# loop would take samples.  scripts/profile-report.py resolves every
# sampled address with llvm-symbolizer, inline frames included, and writes
# results/profile.md; the raw console stays in out/profile/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only profile
root=$(mprs_root)
cache=$(mprs_cache)
reps=${PROFILE_REPS:-20}
shift_=${PROFILE_SHIFT:-4}
timeout_s=${PROFILE_TIMEOUT:-3600}
dir="$cache/configs/profile"
out="$root/out/profile"

die() { echo "profile: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

mkdir -p "$out"
step "build the profiling kernel ($dir, log in out/configs/profile.log)"
"$here/configs.sh" profile >"$out/configs.log" 2>&1 ||
	die "the profiling kernel did not build (out/configs/profile.log)"
grep -q '^CONFIG_PROFILING=y' "$dir/.config" || die "no CONFIG_PROFILING in $dir/.config"
hz=$(sed -n 's/^CONFIG_HZ=//p' "$dir/.config")
[ -n "$hz" ] || die "no CONFIG_HZ in $dir/.config"
# TICK_NSEC, as include/vdso/jiffies.h computes it, in instructions (not
# a whole number at HZ=300: tests/configs/profile.config).
period=$(awk -v hz="$hz" -v s="$shift_" 'BEGIN { printf "%.4f", int((1000000000 + int(hz / 2)) / hz) / 2 ^ s }')

step "build the guest programs and the initramfs"
initramfs=$(KBUILD_OUTPUT_DIR="$dir" "$here/initramfs.sh" profile)
mapfile -t args < <(mprs_qemu_args)
cmd=(qemu-system-x86_64 -nodefaults -nographic -no-reboot -serial stdio -monitor none
	"${args[@]}" -accel tcg -icount "shift=$shift_,sleep=off"
	-kernel "$dir/arch/x86/boot/bzImage" -initrd "$initramfs"
	-append "$MPRS_GUEST_CMDLINE tsc=reliable maxcpus=1 profile=0 mprs_profile=$reps")
printf '%q ' "${cmd[@]}" >"$out/qemu.txt"
step "boot under -icount shift=$shift_: $reps runs per walker and workload, a sample every $period instructions"
t0=$SECONDS
timeout -s KILL "$timeout_s" "${cmd[@]}" </dev/null >"$out/console.txt" 2>&1 ||
	die "QEMU failed or timed out (out/profile/console.txt)"
grep -q "^# bench: done" "$out/console.txt" || die "the guest did not finish (out/profile/console.txt)"
echo "    $((SECONDS - t0)) s"
python3 "$here/splat-check.py" "$out/console.txt" "$root/tests/splat-allow.txt" ||
	die "a kernel splat in the profiling boot"

step "resolve the samples"
mkdir -p "$root/results"
MPRS_TREE=$(mprs_tree) python3 "$here/profile-report.py" "$out/console.txt" "$dir/vmlinux" "$period" "$shift_" \
	--json "$out/profile.json" >"$root/results/profile.md"
echo "    results/profile.md"
