#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# selftests-build.sh PLAN OUT_LIST
#
# Build the programs of tools/testing/selftests/mm that PLAN (lines of
# tests/selftests/plan.txt) runs, from the prepared tree, linked static (the
# initramfs has no libc), against the tree's UAPI headers (make
# headers_install into the cache), into $MPRS_CACHE/selftests/bin;
# incremental, as make is.  Writes to OUT_LIST the gen_init_cpio lines that
# put them and PLAN into /mm of the guest's initramfs (scripts/initramfs.sh).
# migration and rmap link Debian's libnuma (libnuma-dev), memfd_secret and
# mlock-random-test its libcap (libcap-dev): scripts/setup.sh installs both.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only selftests-build
tree=$(mprs_tree)
dir="$(mprs_cache)/selftests"

die() { echo "selftests-build: ERROR: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 PLAN OUT_LIST"
plan=$1
[ -d "$tree/tools/testing/selftests/mm" ] || die "no mm selftests in $tree"
mkdir -p "$dir/bin"

# The UAPI headers; make's own dependencies keep this step short when they
# have not changed.
make -s -C "$tree" O="$dir/hdr-build" ARCH=x86_64 \
	INSTALL_HDR_PATH="$dir/headers" headers_install >"$dir/build.log" 2>&1 ||
	die "make headers_install failed ($dir/build.log)"

# The programs: the first word of each plan line's COMMAND that is not a
# "cpus=N" or an "@user".
progs=$(awk '!/^#/ && NF >= 5 {
	for (i = 5; $i ~ /^(@|cpus=)/; i++)
		;
	print $i }' "$plan" | sort -u)
[ -n "$progs" ] || die "no programs in $plan"
targets=()
for p in $progs; do targets+=("$dir/bin/$p"); done
make -C "$tree/tools/testing/selftests/mm" -j"${JOBS:-2}" OUTPUT="$dir/bin" \
	KHDR_INCLUDES="-isystem $dir/headers/include" EXTRA_CFLAGS=-static LDFLAGS=-static \
	"${targets[@]}" >>"$dir/build.log" 2>&1 ||
	die "building the mm selftests failed ($dir/build.log)"

{
	echo "dir /mm 0755 0 0"
	echo "file /mm/plan.txt $plan 0644 0 0"
	for p in $progs; do
		# A program linked static has no program interpreter.
		hdrs=$(readelf -l "$dir/bin/$p") || die "no program $dir/bin/$p"
		! grep -q INTERP <<<"$hdrs" || die "$dir/bin/$p is not linked static"
		echo "file /mm/$p $dir/bin/$p 0755 0 0"
	done
} >"$2"
