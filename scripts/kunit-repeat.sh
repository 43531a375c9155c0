#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the kernel that `make run` (or, with MPRS_KERNEL=debug, `make debug`)
# built RUNS times in a row (default 20) and run its KUnit suites, checked as
# scripts/kunit.sh checks them (KUNIT_BOOT_ONLY=1: no build, no doctests),
# stopping at the first failure, to show that a once-intermittent failure is
# gone.  Unless RANDOM_SEED is set, each boot draws its own seed for
# random_differential.  Each run's results, logs and console stay in
# out[/arm64][/debug]/kunit-repeat/N/ (the last `make run`'s are left alone);
# the summary goes to results/kunit-repeat-$MPRS_KERNEL.md (results/arm64/
# for ARCH=arm64).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
kernel=$(mprs_kernel)
arch=$(mprs_arch)
build=$(mprs_build)
out=$(mprs_out)
runs=${RUNS:-20}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "kunit-repeat: RUNS=$runs is not a count" >&2; exit 1; }
image="$build/$(mprs_image)"
[ -f "$image" ] || { echo "kunit-repeat: no kernel at $image: run make run (or make debug) first" >&2; exit 1; }
dir="$out/kunit-repeat"
results="$root/results"
[ "$arch" = x86_64 ] || results="$root/results/$arch"
rm -rf "$dir"
mkdir -p "$dir" "$results"

passed=0
again=0
failed=
t0=$(date +%s)
for i in $(seq "$runs"); do
	rc=0
	MPRS_OUT="$dir/$i" KUNIT_BOOT_ONLY=1 "$here/kunit.sh" >"$dir/$i.log" 2>&1 || rc=$?
	! grep -q "booted again" "$dir/$i.log" || again=$((again + 1))
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "kunit-repeat: run $i of $runs: $({ grep -E '^[0-9]+ passed' "$dir/$i.log" || true; } | tail -n 1)"
	else
		failed=$i
		echo "kunit-repeat: run $i of $runs FAILED (${dir#$root/}/$i.log, $i/console.log):"
		{ grep -E "FAIL|ERROR|ASSERTION|Expected|differ|splat" "$dir/$i.log" \
			"$dir/$i/console.log" 2>/dev/null || true; } | head -n 20 || true
		break
	fi
done
secs=$(( $(date +%s) - t0 ))
if [ -n "${RANDOM_SEED:-}" ]; then seeds="seed $RANDOM_SEED each time"; else seeds="a seed of its own"; fi
if [ -z "$failed" ]; then
	outcome="$passed of $runs runs passed"
	[ "$again" = 0 ] || outcome="$outcome ($again of them in a second boot, after QEMU's int3 oops)"
else
	outcome="run $failed of $runs FAILED, after $passed passed (it stopped there)"
fi
{
	echo "# $runs KUnit runs in a row on the $kernel kernel ($arch)"
	echo
	echo "\`RUNS=$runs MPRS_KERNEL=$kernel ARCH=$arch scripts/kunit-repeat.sh\` at" \
		"$(git -C "$root" rev-parse --short HEAD), $(date -u +%Y-%m-%d), on the kernel" \
		"built $(date -u -r "$image" '+%Y-%m-%d %H:%M UTC') from the tree at" \
		"$(git -C "$tree" describe --always --dirty 2>/dev/null || echo unknown):" \
		"$outcome, each a boot running every suite of" \
		"\`make kunit\`'s KUnit step (random_differential with $seeds)," \
		"checked for failed and skipped cases and for splats, in $secs s."
} >"$results/kunit-repeat-$kernel.md"
echo "kunit-repeat: $outcome on the $kernel kernel in ${secs}s"
[ -z "$failed" ]
