#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel's mm selftests (tools/testing/selftests/mm) in the guest, once
# under each walker, on the kernel that scripts/kunit.sh built
# (MPRS_KERNEL=test or debug): the programs of tests/selftests/plan.txt
# whose KERNELS column names that kernel.  Their KTAP goes through kunit.py
# parse, and scripts/selftests-check.py fails the run when the two walkers'
# results differ, or when a subtest fails or skips without an entry in
# tests/selftests/expected.txt.  Output: out/selftests.log (the console),
# out/selftests.json, out/selftests.md (the summary; out/debug/ for the
# debug kernel).
#
# SELFTESTS_ONLY=ERE runs only the programs whose NAME matches.
# SELFTESTS_MODE=survey (make selftests-survey): every program of the plan,
# under the C walker only, with its count of change_protection() calls;
# results/selftests-survey.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only selftests
root=$(mprs_root)
tree=$(mprs_tree)
kernel_name=$(mprs_kernel)
build=$(mprs_build)
out=$(mprs_out)
mode=${SELFTESTS_MODE:-$kernel_name}
# The guest's time limit: each program has its own (the plan's SECONDS),
# this one stops a guest that hangs as a whole.
case $mode in
survey) timeout_s=${SELFTESTS_TIMEOUT:-5400} name=selftests-survey ;;
*) timeout_s=${SELFTESTS_TIMEOUT:-3600} name=selftests ;;
esac
mkdir -p "$out"

die() { echo "selftests: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/arch/x86/boot/bzImage"
[ -f "$kernel" ] || die "no kernel at $kernel: run scripts/kunit.sh first"
step "build the mm selftests (static) and the initramfs"
# SELFTESTS_ONLY=ERE: only the programs whose NAME matches (for debugging).
plan="$out/selftests-plan.txt"
awk -v re="${SELFTESTS_ONLY:-.}" '/^#/ || NF < 5 || $1 ~ re' \
	"$root/tests/selftests/plan.txt" >"$plan"
list="$out/selftests.list"
"$here/selftests-build.sh" "$plan" "$list"
initramfs=$("$here/initramfs.sh" selftests "$list")

# The XFS file system that split_huge_page_test and khugepaged all:file
# need for large page-cache folios, as run_vmtests.sh makes one: 512 MiB,
# sparse, new on every run; the guest mounts it (tests/guest/selftests.sh).
xfs="$out/selftests-xfs.img"
make_xfs() {
	rm -f "$xfs"
	truncate -s 512M "$xfs"
	mkfs.xfs -q "$xfs" || die "mkfs.xfs failed (Debian package xfsprogs: make setup)"
}

accel=$("$here/kvm-probe.sh" "$kernel")
step "boot the $kernel_name kernel under QEMU ($accel) and run the mm selftests ($mode)"
t0=$(date +%s)
qrc=0
# Two vCPUs on each node: migration needs three CPUs or more.
# make_xfs before each boot: a second one, after QEMU's int3 oops
# (mprs_tcg_boot_oops), gets a new file system too.
MPRS_BEFORE_BOOT=make_xfs MPRS_VCPUS_PER_NODE=2 mprs_boot_guest "$accel" "$kernel" "$initramfs" "$timeout_s" \
	"$out/$name.log" "$MPRS_SELFTESTS_CMDLINE mprs_selftests=$mode" \
	-drive "file=$xfs,if=virtio,format=raw" || qrc=$?
rm -f "$xfs"
echo "    booted and ran in $(( $(date +%s) - t0 ))s"
[ $qrc -eq 0 ] || echo "selftests: QEMU exited with $qrc (137: killed after ${timeout_s}s)"
rm -f "$out/$name.json"
python3 "$tree/tools/testing/kunit/kunit.py" parse --json="$out/$name.json" \
	"$out/$name.log" >"$out/$name-parsed.log" || true
tail -n 3 "$out/$name-parsed.log" | sed 's/^/    /'
log=${out#$root/}/$name.log
rc=0
python3 "$here/selftests-check.py" --mode "$mode" --plan "$root/tests/selftests/plan.txt" \
	--only "${SELFTESTS_ONLY:-}" \
	--expected "$root/tests/selftests/expected.txt" --summary "$out/$name.md" \
	"$out/$name.log" "$out/$name.json" || rc=1
python3 "$here/splat-check.py" "$out/$name.log" "$root/tests/splat-allow.txt" || rc=1
[ "$mode" != survey ] || [ -n "${SELFTESTS_ONLY:-}" ] || [ $rc -ne 0 ] || [ $qrc -ne 0 ] ||
	cp "$out/$name.md" "$root/results/selftests-survey.md"
[ $rc -eq 0 ] || die "mm selftests on the $kernel_name kernel failed ($log)"
[ $qrc -eq 0 ] || die "the guest did not shut down cleanly ($log)"
