#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure, build and boot the patched kernel under QEMU, run KUnit, and
# check the results.  Used by `make run` and `make test`.
#
# MPRS_KERNEL=test (default) or debug picks the kernel, ARCH=x86_64
# (default) or arm64 the architecture (scripts/lib.sh).
# KUNIT_BOOT_ONLY=1 (scripts/kunit-repeat.sh) boots the kernel built before
# and runs the KUnit suites, with the same checks, and nothing else: no
# configuration, no build, no doctests.
# Output goes to out/ (out/debug/ for the debug kernel, out/arm64/ for
# arm64): config.log,
# build.log, kunit.log (kunit.py's parsed summary), console.log (the raw
# console) and kunit.json.  The build tree is $MPRS_CACHE/build (or
# build-debug); the kernel source tree is scripts/prepare-tree.sh's.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
kernel=$(mprs_kernel)
arch=$(mprs_arch)
build=$(mprs_build)
# MPRS_OUT and MPRS_KUNITCONFIG let make configs boot another configuration.
out=$(mprs_out)
mapfile -t kunitconfigs < <(mprs_kunitconfigs)
qemu_config="$root/tests/qemu/$arch.py"
jobs=${JOBS:-$(nproc)}
# KASAN and lockdep under TCG make the debug kernel several times slower.
if [ "$kernel" = debug ]; then timeout_s=${KUNIT_TIMEOUT:-1500}; else timeout_s=${KUNIT_TIMEOUT:-300}; fi
# aarch64 under TCG on an x86_64 host is slower again.
[ "$arch" = x86_64 ] || [ -n "${KUNIT_TIMEOUT:-}" ] || timeout_s=$((timeout_s * 3))

die() { echo "kunit: ERROR: $*" >&2; exit 1; }
step() { echo "==> $*"; }

boot_only=
if [ "${KUNIT_BOOT_ONLY:-0}" = 1 ]; then
	boot_only=1
	[ -f "$build/$(mprs_image)" ] ||
		die "no kernel at $build/$(mprs_image) to boot (KUNIT_BOOT_ONLY=1): build it first"
fi
mkdir -p "$out" "$build"
kunit_py=("python3" "$tree/tools/testing/kunit/kunit.py")
common=(--arch="$arch" --build_dir="$build" --qemu_config="$qemu_config"
	--make_options "LLVM=$MPRS_LLVM")
for k in "${kunitconfigs[@]}"; do common+=(--kunitconfig="$k"); done

if [ -z "$boot_only" ]; then
	step "configure the $kernel kernel for $arch ($build)"
	"${kunit_py[@]}" config "${common[@]}" >"$out/config.log" 2>&1 || {
		cat "$out/config.log"; die "kernel configuration failed (see above)"; }
	# A dependency can silently drop an option in olddefconfig: check, and log
	# at the top of the build log, that every option of the fragments holds in
	# the .config that is built.
	for k in "${kunitconfigs[@]}"; do
		while IFS= read -r want; do
			opt=${want#\# }
			opt=${opt%%[= ]*}
			have=$(grep -E "^$opt=|^# $opt is not set" "$build/.config" || echo "$opt absent")
			if [ "$have" = "$want" ]; then
				echo "config: $(basename "$k"): $want: holds"
			else
				echo "config: $(basename "$k"): $want: DOES NOT HOLD ($have)"
			fi
		done < <(grep -E '^CONFIG_|^# CONFIG_.* is not set' "$k")
	done >"$out/build.log"
	# On the terminal: what does not hold, and a count per fragment.
	{ grep -v ": holds\$" "$out/build.log" || true; } | sed "s/^/    /"
	for k in "${kunitconfigs[@]}"; do
		echo "    $(grep -c "^config: $(basename "$k"): .*: holds\$" "$out/build.log") options of" \
			"$(basename "$k") hold (${out#$root/}/build.log)"
	done
	! grep -q "DOES NOT HOLD" "$out/build.log" ||
		die "options of the configuration do not hold after olddefconfig (see above)"

	step "build (make LLVM=$MPRS_LLVM CLIPPY=1 -j$jobs, log in ${out#$root/}/build.log)"
	t0=$(date +%s)
	if ! make -C "$tree" O="$build" ARCH="$arch" LLVM="$MPRS_LLVM" CLIPPY=1 -j"$jobs" all \
		>>"$out/build.log" 2>&1; then
		grep -E "error|Error" "$out/build.log" | head -n 40
		tail -n 20 "$out/build.log"
		die "kernel build failed (full log: ${out#$root/}/build.log)"
	fi
	echo "    built in $(( $(date +%s) - t0 ))s"
	# The build must be free of compiler and rustc warnings.
	if grep -nE '(^|[: ])warning(\[[A-Za-z0-9_-]+\])?: ' "$out/build.log" >"$out/warnings.log"; then
		cat "$out/warnings.log"
		die "the build printed $(wc -l <"$out/warnings.log") warning line(s) (${out#$root/}/build.log)"
	fi
fi

# The command line of scripts/lib.sh (mTHP sizes, hugetlb pages).
# RANDOM_CASES and RANDOM_SEED size and seed the randomized differential test.
mapfile -t extra < <(mprs_kunit_kernel_args)
[ -z "${RANDOM_CASES:-}" ] || extra+=(--kernel_args "mprotect_rs.random_cases=$RANDOM_CASES")
[ -z "${RANDOM_SEED:-}" ] || extra+=(--kernel_args "mprotect_rs.seed=$RANDOM_SEED")

# Every suite but mprotect_rs_guest, which needs a device that user space sets
# up: tests/guest/init (scripts/guest.sh) runs it after boot.
suites='mprotect_rs_[!g]*'

# No KVM for arm64 guests on an x86_64 host.
if [ "$arch" = x86_64 ]; then
	accel=$("$here/kvm-probe.sh" "$build/$(mprs_image)")
else
	accel=tcg
fi

# boot NAME CONSOLE EXPECTED GLOB [ARG...]: boot the kernel once and run the
# KUnit cases that GLOB selects (kunit.py's ARGs before it); results in
# $out/NAME.json, the parsed log in $out/NAME.log, the raw console in
# $out/CONSOLE.  Fails unless every suite of tests/EXPECTED (and of
# tests/arch/ARCH.EXPECTED) ran and passed, no case skipped but those of
# tests/arch/ARCH.expected-skips, and the console has no splat.
boot() {
	local name=$1 console=$2 expected=$3 glob=$4 rc t0
	shift 4
	local try
	rm -f "$out/${console%.log}-boot-oops.log"
	for try in 1 2; do
		# A run that dies before writing its results must not be judged by old ones.
		rm -f "$out/$name.json" "$build/test.log"
		t0=$(date +%s)
		set +e
		PATH="$here/qemu-bin:$PATH" MPRS_ACCEL=$accel \
			"${kunit_py[@]}" exec "${common[@]}" --timeout="$timeout_s" \
			--json="$out/$name.json" "${extra[@]}" "$@" "$glob" 2>&1 | tee "$out/$name.log"
		rc=${PIPESTATUS[0]}
		set -e
		echo "    booted and ran in $(( $(date +%s) - t0 ))s"
		# kunit.py keeps the raw console in the build directory.
		cp "$build/test.log" "$out/$console" 2>/dev/null || : >"$out/$console"
		# QEMU's TCG breaking the boot (mprs_tcg_boot_oops in lib.sh): once.
		mprs_boot_again "$accel" "$try" "$out/$console" \
			"$out/${console%.log}-boot-oops.log" 2>&1 || break
	done
	# The suites of every architecture, those of this one (tests/arch/), and
	# the cases that skip on it.
	local skips=()
	cat "$root/tests/$expected" >"$out/$expected"
	[ ! -f "$root/tests/arch/$arch.$expected" ] || cat "$root/tests/arch/$arch.$expected" >>"$out/$expected"
	[ ! -f "$root/tests/arch/$arch.expected-skips" ] || skips=("$root/tests/arch/$arch.expected-skips")
	python3 "$here/check-results.py" "$out/$name.json" "$out/$expected" "${skips[@]}" || rc=1
	python3 "$here/splat-check.py" "$out/$console" "$root/tests/splat-allow.txt" || rc=1
	return "$rc"
}

step "boot the $kernel kernel under QEMU ($accel) and run KUnit"
boot kunit console.log expected-suites.txt "$suites" "$@" ||
	die "KUnit run on the $kernel kernel failed (${out#$root/}/kunit.log, console.log)"
[ -z "$boot_only" ] || exit 0

# The examples of kernel::mm::pgtable (its `# Examples`, compiled as KUnit
# cases of the kernel crate's doctest suite) in a boot of their own: a filter
# glob names one suite pattern, and ours must not pick up the other doctests.
step "boot the $kernel kernel again and run the doctests of kernel::mm::pgtable"
boot doctests console-doctests.log expected-doctests.txt \
	'rust_doctests_kernel.rust_doctest_kernel_mm_pgtable_rs_*' ||
	die "the doctests failed on the $kernel kernel (${out#$root/}/doctests.log)"
