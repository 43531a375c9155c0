#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure, build and boot the patched kernel under QEMU, run KUnit, and
# check the results.  Used by `make run` and `make test`.
#
# Output goes to out/ in this repository: build.log, kunit.log (the raw
# console and kunit.py's parsed summary) and kunit.json.  The build tree is
# $MPRS_CACHE/build; the kernel source tree is scripts/prepare-tree.sh's.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
build=$(mprs_build)
# MPRS_OUT and MPRS_KUNITCONFIG let make configs boot another configuration.
out=${MPRS_OUT:-$root/out}
kunitconfig=${MPRS_KUNITCONFIG:-$root/tests/mprotect-rs.kunitconfig}
qemu_config="$root/tests/qemu/x86_64.py"
jobs=${JOBS:-$(nproc)}
timeout_s=${KUNIT_TIMEOUT:-300}

die() { echo "kunit: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

mkdir -p "$out" "$build"
kunit_py=("python3" "$tree/tools/testing/kunit/kunit.py")
common=(--arch=x86_64 --build_dir="$build" --kunitconfig="$kunitconfig"
	--qemu_config="$qemu_config" --make_options "LLVM=$MPRS_LLVM")

step "configure ($build)"
"${kunit_py[@]}" config "${common[@]}" >"$out/config.log" 2>&1 || {
	cat "$out/config.log"; die "kernel configuration failed (see above)"; }

step "build (make LLVM=$MPRS_LLVM CLIPPY=1 -j$jobs, log in out/build.log)"
t0=$(date +%s)
if ! make -C "$tree" O="$build" ARCH=x86_64 LLVM="$MPRS_LLVM" CLIPPY=1 -j"$jobs" all \
	>"$out/build.log" 2>&1; then
	grep -E "error|Error" "$out/build.log" | head -n 40
	tail -n 20 "$out/build.log"
	die "kernel build failed (full log: out/build.log)"
fi
echo "    built in $(( $(date +%s) - t0 ))s"
# The build must be free of compiler and rustc warnings.
if grep -nE '(^|[: ])warning(\[[A-Za-z0-9_-]+\])?: ' "$out/build.log" >"$out/warnings.log"; then
	cat "$out/warnings.log"
	die "the build printed $(wc -l <"$out/warnings.log") warning line(s) (out/build.log)"
fi

# 64K mTHP folios where MADV_HUGEPAGE asks for them (the random layouts use
# them); naming any size in thp_anon= turns the others off, so PMD THPs too.
# RANDOM_CASES and RANDOM_SEED size and seed the randomized differential test.
extra=(--kernel_args "thp_anon=64K:madvise" --kernel_args "thp_anon=2M:inherit")
[ -z "${RANDOM_CASES:-}" ] || extra+=(--kernel_args "mprotect_rs.random_cases=$RANDOM_CASES")
[ -z "${RANDOM_SEED:-}" ] || extra+=(--kernel_args "mprotect_rs.seed=$RANDOM_SEED")

# Every suite but mprotect_rs_guest, which needs a device that user space sets
# up: tests/guest/init (scripts/guest.sh) runs it after boot.
suites='mprotect_rs_[!g]*'

accel=$("$here/kvm-probe.sh" "$build/arch/x86/boot/bzImage")
step "boot under QEMU ($accel) and run KUnit"
# A run that dies before writing its results must not be judged by old ones.
rm -f "$out/kunit.json"
set +e
PATH="$here/qemu-bin:$PATH" MPRS_ACCEL=$accel \
	"${kunit_py[@]}" exec "${common[@]}" --timeout="$timeout_s" \
	--json="$out/kunit.json" "${extra[@]}" "$@" "$suites" 2>&1 | tee "$out/kunit.log"
rc=${PIPESTATUS[0]}
set -e
python3 "$here/check-results.py" "$out/kunit.json" "$root/tests/expected-suites.txt" ||
	rc=1
[ "$rc" -eq 0 ] || die "KUnit run failed (out/kunit.log)"
