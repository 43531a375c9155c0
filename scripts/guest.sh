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
work="$out/guest"
timeout_s=${GUEST_TIMEOUT:-300}

die() { echo "guest: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

kernel="$build/arch/x86/boot/bzImage"
gen_init_cpio="$build/usr/gen_init_cpio"
[ -f "$kernel" ] || die "no kernel at $kernel: run scripts/kunit.sh first"
[ -x "$gen_init_cpio" ] || die "no $gen_init_cpio (CONFIG_BLK_DEV_INITRD=y is needed)"
busybox=/bin/busybox
[ -x "$busybox" ] || die "no $busybox (Debian package busybox-static)"

mkdir -p "$work"
step "build the guest programs (gcc -static)"
for prog in mprotect_user dax_user; do
	gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$work/$prog" \
		"$root/tests/guest/$prog.c"
done

cat >"$work/initramfs.list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /bin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
file /bin/busybox $busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $root/tests/guest/init 0755 0 0
file /mprotect_user $work/mprotect_user 0755 0 0
file /dax_user $work/dax_user 0755 0 0
LIST
"$gen_init_cpio" "$work/initramfs.list" >"$work/initramfs.cpio"

# 1 GiB of the guest's RAM, at 4 GiB (the RAM above the PCI hole of a 4 GiB
# pc machine), becomes soft-reserved memory, which dax_hmem turns into a
# device-DAX device.
dax_memmap="memmap=1G%4G+0xefffffff"

accel=$("$here/kvm-probe.sh" "$kernel")
mapfile -t args < <(grep -v '^#' "$root/tests/qemu/args" | sed '/^$/d')
step "boot under QEMU ($accel) and run the user-space checks under each walker"
set +e
PATH="$here/qemu-bin:$PATH" MPRS_ACCEL=$accel timeout -s KILL "$timeout_s" \
	qemu-system-x86_64 -nodefaults -nographic -no-reboot -serial stdio \
	-monitor none "${args[@]}" -kernel "$kernel" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 rdinit=/init quiet kunit.enable=0 panic=-1 $dax_memmap" \
	</dev/null >"$out/guest.log" 2>&1
qrc=$?
set -e
[ $qrc -eq 0 ] || echo "guest: QEMU exited with $qrc (137: killed after ${timeout_s}s)"
python3 "$tree/tools/testing/kunit/kunit.py" parse --json="$out/guest.json" \
	"$out/guest.log" | tee "$out/guest-parsed.log" || true
python3 "$here/check-results.py" "$out/guest.json" "$root/tests/guest/expected-suites.txt" ||
	die "user-space checks failed (out/guest.log)"
[ $qrc -eq 0 ] || die "the guest did not shut down cleanly (out/guest.log)"
