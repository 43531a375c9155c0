#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make rustdoc: the kernel's `make rustdoc` (the documentation of the kernel
# crate, kernel::mm::pgtable's included) in the test kernel's build directory
# (MPRS_KERNEL=debug: the debug kernel's), after `make run`.  Fails on any
# warning, as the Rust-for-Linux tree's CI does.  Log: out[/debug]/rustdoc.log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only rustdoc
root=$(mprs_root)
tree=$(mprs_tree)
build=$(mprs_build)
out=$(mprs_out)
mkdir -p "$out"
[ -f "$build/.config" ] || { echo "rustdoc: ERROR: no kernel configured in $build: run make run first" >&2; exit 1; }

echo "==> make rustdoc ($build, log in ${out#$root/}/rustdoc.log)"
if ! make -C "$tree" O="$build" ARCH=x86_64 LLVM="$MPRS_LLVM" -j"${JOBS:-$(nproc)}" rustdoc \
	>"$out/rustdoc.log" 2>&1; then
	tail -n 30 "$out/rustdoc.log"
	echo "rustdoc: ERROR: make rustdoc failed (${out#$root/}/rustdoc.log)" >&2
	exit 1
fi
if grep -nE '(^|[: ])warning(\[[A-Za-z0-9_:-]+\])?: ' "$out/rustdoc.log" >"$out/rustdoc-warnings.log"; then
	cat "$out/rustdoc-warnings.log"
	echo "rustdoc: ERROR: $(wc -l <"$out/rustdoc-warnings.log") warning line(s)" >&2
	exit 1
fi
doc="$build/Documentation/output/rust/rustdoc/kernel/mm/pgtable/index.html"
[ -f "$doc" ] || { echo "rustdoc: ERROR: no $doc" >&2; exit 1; }
echo "    no warnings; kernel::mm::pgtable: ${doc#$build/}"
