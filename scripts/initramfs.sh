#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# initramfs.sh [NAME EXTRA]
#
# Build the guest's initramfs into out/guest/NAME.cpio (initramfs.cpio):
# busybox, tests/guest/init and selftests.sh, the static test programs of
# tests/guest/*.c, the gen_init_cpio lines of the file EXTRA if given, and
# Debian's trinity with the shared libraries it needs, an unprivileged user
# to run it (uid 1000), nobody (for on-fault-limit) and /tmp, packed by the
# kernel's gen_init_cpio (so no root is needed for device nodes).  Used by
# scripts/guest.sh, scripts/stress.sh, scripts/bench.sh and, with the mm
# selftests in EXTRA, scripts/selftests.sh.  Prints the file's path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
build=$(mprs_build)
work="$root/out/guest"
name=${1:-initramfs}
extra=${2:-}

die() { echo "initramfs: ERROR: $*" >&2; exit 1; }

gen_init_cpio="$build/usr/gen_init_cpio"
[ -x "$gen_init_cpio" ] || die "no $gen_init_cpio (CONFIG_BLK_DEV_INITRD=y is needed)"
busybox=/bin/busybox
[ -x "$busybox" ] || die "no $busybox (Debian package busybox-static)"
trinity=/usr/bin/trinity
[ -x "$trinity" ] || die "no $trinity (Debian package trinity: make setup)"

mkdir -p "$work"
printf '%s\n' 'root:x:0:0:root:/:/bin/sh' 'trinity:x:1000:1000:trinity:/tmp:/bin/sh' \
	'nobody:x:65534:65534:nobody:/tmp:/bin/sh' >"$work/passwd"
printf '%s\n' 'root:x:0:' 'trinity:x:1000:' 'nogroup:x:65534:' >"$work/group"
# Every library trinity loads, and the dynamic loader, each at the path
# the binary names (the files behind the symbolic links).
libs=$(ldd "$trinity" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || die "ldd $trinity named no libraries"
{
	echo "dir /dev 0755 0 0"
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "nod /dev/null 0666 0 0 c 1 3"
	echo "dir /bin 0755 0 0"
	echo "dir /proc 0755 0 0"
	echo "dir /sys 0755 0 0"
	echo "file /bin/busybox $busybox 0755 0 0"
	echo "slink /bin/sh busybox 0777 0 0"
	echo "file /init $root/tests/guest/init 0755 0 0"
	echo "file /selftests.sh $root/tests/guest/selftests.sh 0644 0 0"
	echo "dir /tmp 01777 0 0"
	echo "dir /etc 0755 0 0"
	echo "file /etc/passwd $work/passwd 0644 0 0"
	echo "file /etc/group $work/group 0644 0 0"
	# The directories of trinity and its libraries, parents first.
	for f in $trinity $libs; do
		d=$(dirname "$f")
		while [ "$d" != / ]; do
			echo "$d"
			d=$(dirname "$d")
		done
	done | sort -u | sed 's/.*/dir & 0755 0 0/'
	echo "file $trinity $trinity 0755 0 0"
	for lib in $libs; do
		echo "file $lib $(readlink -f "$lib") 0755 0 0"
	done
	for src in "$root"/tests/guest/*.c; do
		prog=$(basename "$src" .c)
		gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$work/$prog" "$src"
		echo "file /$prog $work/$prog 0755 0 0"
	done
	[ -z "$extra" ] || cat "$extra"
} >"$work/$name.list"
"$gen_init_cpio" "$work/$name.list" >"$work/$name.cpio"
echo "$work/$name.cpio"
