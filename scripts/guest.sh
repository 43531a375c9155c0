#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the kernel that scripts/kunit.sh built with a small initramfs
# (busybox, tests/guest/init and the static test programs of tests/guest/),
# run the user-space checks once under each mprotect walker, and check the
# KTAP they print with kunit.py parse.  Output: out/guest.log, out/guest.json.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
build=$(mprs_build)
out="$root/out"
timeout_s=${GUEST_TIMEOUT:-300}

die() { echo "guest: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/arch/x86/boot/bzImage"
[ -f "$kernel" ] || die "no kernel at $kernel: run scripts/kunit.sh first"
step "build the guest programs (gcc -static) and the initramfs"
initramfs=$("$here/initramfs.sh")

accel=$("$here/kvm-probe.sh" "$kernel")
mapfile -t args < <(mprs_qemu_args)
step "boot under QEMU ($accel) and run the user-space checks under each walker"
set +e
PATH="$here/qemu-bin:$PATH" MPRS_ACCEL=$accel timeout -s KILL "$timeout_s" \
	qemu-system-x86_64 -nodefaults -nographic -no-reboot -serial stdio \
	-monitor none "${args[@]}" -kernel "$kernel" -initrd "$initramfs" \
	-append "$MPRS_GUEST_CMDLINE" \
	</dev/null >"$out/guest.log" 2>&1
qrc=$?
set -e
[ $qrc -eq 0 ] || echo "guest: QEMU exited with $qrc (137: killed after ${timeout_s}s)"
rm -f "$out/guest.json"
python3 "$tree/tools/testing/kunit/kunit.py" parse --json="$out/guest.json" \
	"$out/guest.log" | tee "$out/guest-parsed.log" || true
python3 "$here/check-results.py" "$out/guest.json" "$root/tests/guest/expected-suites.txt" ||
	die "user-space checks failed (out/guest.log)"
[ $qrc -eq 0 ] || die "the guest did not shut down cleanly (out/guest.log)"
