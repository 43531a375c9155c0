#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the kernel that scripts/kunit.sh built with a small initramfs
# (busybox, tests/guest/init and the static test programs of tests/guest/),
# run the user-space checks once under each mprotect walker, and check the
# KTAP they print with kunit.py parse.  MPRS_KERNEL=test (default) or debug
# picks the kernel (scripts/lib.sh).  Last come the stress runs and trinity
# under each walker (tests/guest/init), GUEST_STRESS seconds each (20 by
# default; 0: none, and none expected).  Output: out/guest.log (the
# console), out/guest.json (out/debug/ for the debug kernel).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
kernel_name=$(mprs_kernel)
build=$(mprs_build)
out=$(mprs_out)
if [ "$kernel_name" = debug ]; then timeout_s=1200; else timeout_s=300; fi
# TCG runs an arm64 guest about three times slower.
[ "$(mprs_arch)" = x86_64 ] || timeout_s=$((timeout_s * 3))
timeout_s=${GUEST_TIMEOUT:-$timeout_s}
mkdir -p "$out"

die() { echo "guest: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/$(mprs_image)"
[ -f "$kernel" ] || die "no kernel at $kernel: run scripts/kunit.sh first"
step "build the guest programs (static, for $(mprs_arch)) and the initramfs"
initramfs=$("$here/initramfs.sh")

# An arm64 guest on this x86_64 host runs under TCG.
accel=tcg
[ "$(mprs_arch)" != x86_64 ] || accel=$("$here/kvm-probe.sh" "$kernel")
step "boot the $kernel_name kernel under QEMU ($accel) and run the user-space checks under each walker"
t0=$(date +%s)
qrc=0
mprs_boot_guest "$accel" "$kernel" "$initramfs" "$timeout_s" "$out/guest.log" \
	"$MPRS_GUEST_CMDLINE${GUEST_STRESS:+ mprs_stress=$GUEST_STRESS}" || qrc=$?
echo "    booted and ran in $(( $(date +%s) - t0 ))s"
[ $qrc -eq 0 ] || echo "guest: QEMU exited with $qrc (137: killed after ${timeout_s}s)"
rm -f "$out/guest.json"
python3 "$tree/tools/testing/kunit/kunit.py" parse --json="$out/guest.json" \
	"$out/guest.log" | tee "$out/guest-parsed.log" || true
log=${out#$root/}/guest.log
rc=0
expected="$root/tests/guest/expected-suites.txt"
# No stress runs and no trinity in this boot (GUEST_STRESS=0): they are not
# expected; on arm64 (no PUD leaves, no device-DAX) dax_user's suites are
# not either (tests/guest/init does not run them there).
skip='^$'
[ "${GUEST_STRESS:-}" != 0 ] || skip="$skip\\|^stress_\\|^trinity_"
[ "$(mprs_arch)" = x86_64 ] || skip="$skip\\|^guest_dax_"
grep -v "$skip" "$expected" >"$out/guest-expected.txt"
expected="$out/guest-expected.txt"
python3 "$here/check-results.py" "$out/guest.json" "$expected" || rc=1
python3 "$here/splat-check.py" "$out/guest.log" "$root/tests/splat-allow.txt" || rc=1
[ $rc -eq 0 ] || die "user-space checks on the $kernel_name kernel failed ($log)"
[ $qrc -eq 0 ] || die "the guest did not shut down cleanly ($log)"
