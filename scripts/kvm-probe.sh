#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/kvm-probe.sh BZIMAGE
#
# Print "kvm" when the kernel BZIMAGE boots under KVM here, else "tcg".
#
# /dev/kvm opening is not enough: under broken nested virtualisation a boot
# sector runs fine, but the kernel hangs at 100% system time without printing
# anything.  So boot the real kernel, with KUnit disabled and no root file
# system: it must reach its "VFS: Unable to mount root" panic, and exit
# through panic=-1 and -no-reboot, within a short time-out.  The answer is
# cached per host boot.  MPRS_ACCEL=kvm|tcg skips the probe.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

kernel=${1:?usage: kvm-probe.sh BZIMAGE}
if [ -n "${MPRS_ACCEL:-}" ]; then
	echo "$MPRS_ACCEL"
	exit 0
fi
cache=$(mprs_cache)
boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
memo="$cache/kvm-probe.$boot_id"
if [ -f "$memo" ]; then
	cat "$memo"
	exit 0
fi
mkdir -p "$cache"
rm -f "$cache"/kvm-probe.*

result=tcg
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	out=$(timeout -s KILL 30 qemu-system-x86_64 -accel kvm -cpu max -m 512 \
		-nodefaults -nographic -no-reboot -serial stdio -monitor none \
		-kernel "$kernel" -append "console=ttyS0 panic=-1 kunit.enable=0" \
		2>/dev/null)
	case "$out" in *"Kernel panic"*) result=kvm ;; esac
fi
echo "$result" | tee "$memo"
