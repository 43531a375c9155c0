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
# With ARCH=arm64: into out/guest-arm64/, the programs built by
# aarch64-linux-gnu-gcc, and busybox, trinity and its libraries from the
# arm64 packages that scripts/setup.sh unpacked ($(mprs_arm64_root)).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
build=$(mprs_build)
work="$root/out/guest$(mprs_arch_suffix)"
name=${1:-initramfs}
extra=${2:-}

die() { echo "initramfs: ERROR: $*" >&2; exit 1; }

gen_init_cpio="$build/usr/gen_init_cpio"
[ -x "$gen_init_cpio" ] || die "no $gen_init_cpio (CONFIG_BLK_DEV_INITRD=y is needed)"
# sysroot: where this architecture's busybox, trinity and libraries are;
# every file goes into the initramfs at its path below it.
# The cross compiler's libc carries the UAPI headers of Linux 6.1, older
# than the programs need (UFFD_FEATURE_WP_UNPOPULATED): they get the
# tree's, installed once into the work directory by make headers_install
# with an output directory of its own there: never in the source tree,
# where generated files make every O= build refuse it ("the source tree
# is not clean"), nor in a kernel's build directory.
cflags=()
if [ "$(mprs_arch)" = x86_64 ]; then
	sysroot=
	cc=gcc
else
	sysroot=$(mprs_arm64_root)
	cc=aarch64-linux-gnu-gcc
	[ -f "$sysroot/.stamp" ] || die "no arm64 user space in $sysroot (make setup ARCH=arm64)"
	hdr="$work/uapi"
	if [ ! -f "$hdr/include/linux/userfaultfd.h" ]; then
		make -s -C "$(mprs_tree)" O="$work/uapi-build" ARCH=arm64 \
			INSTALL_HDR_PATH="$hdr" headers_install >&2 ||
			die "make headers_install failed"
	fi
	cflags=(-isystem "$hdr/include")
fi
command -v "$cc" >/dev/null || die "no $cc (make setup)"
busybox=/bin/busybox
[ -x "$sysroot$busybox" ] || die "no $sysroot$busybox (Debian package busybox-static)"
trinity=/usr/bin/trinity
[ -x "$sysroot$trinity" ] || die "no $sysroot$trinity (Debian package trinity: make setup)"

mkdir -p "$work"
printf '%s\n' 'root:x:0:0:root:/:/bin/sh' 'trinity:x:1000:1000:trinity:/tmp:/bin/sh' \
	'nobody:x:65534:65534:nobody:/tmp:/bin/sh' >"$work/passwd"
printf '%s\n' 'root:x:0:' 'trinity:x:1000:' 'nogroup:x:65534:' >"$work/group"
# Every library trinity loads, and the dynamic loader, each at the path
# the binary names (the files behind the symbolic links).  ldd runs the
# binary's loader, so for another architecture: its program interpreter
# and what it needs (readelf), each looked for where the loader would.
if [ -z "$sysroot" ]; then
	libs=$(ldd "$trinity" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
else
	libs=$(readelf -l "$sysroot$trinity" | sed -n 's/.*program interpreter: \([^]]*\)].*/\1/p')
	[ -n "$libs" ] && [ -e "$sysroot$libs" ] || die "trinity's loader '$libs' is not in $sysroot"
	for n in $(readelf -d "$sysroot$trinity" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		case " $libs " in *"/$n "*) continue ;; esac
		f=
		for d in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /lib /usr/lib; do
			if [ -e "$sysroot$d/$n" ]; then f=$d/$n; break; fi
		done
		[ -n "$f" ] || die "$n, which trinity needs, is not in $sysroot"
		libs="$libs $f"
	done
fi
[ -n "$libs" ] || die "no libraries found for $trinity"
{
	echo "dir /dev 0755 0 0"
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "nod /dev/null 0666 0 0 c 1 3"
	echo "dir /bin 0755 0 0"
	echo "dir /proc 0755 0 0"
	echo "dir /sys 0755 0 0"
	echo "file /bin/busybox $sysroot$busybox 0755 0 0"
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
	echo "file $trinity $sysroot$trinity 0755 0 0"
	for lib in $libs; do
		f=$(readlink -f "$sysroot$lib")
		# Another architecture's files must not resolve to the host's.
		[ -z "$sysroot" ] || [[ $f == "$sysroot"/* ]] ||
			die "$lib resolves to $f, outside $sysroot"
		echo "file $lib $f 0755 0 0"
	done
	for src in "$root"/tests/guest/*.c; do
		prog=$(basename "$src" .c)
		"$cc" ${cflags[@]+"${cflags[@]}"} -static -O2 -Wall -Wextra -Werror -pthread -o "$work/$prog" "$src"
		echo "file /$prog $work/$prog 0755 0 0"
	done
	[ -z "$extra" ] || cat "$extra"
} >"$work/$name.list"
"$gen_init_cpio" "$work/$name.list" >"$work/$name.cpio"
echo "$work/$name.cpio"
