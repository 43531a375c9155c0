#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the kernel that `make run` (or, with MPRS_KERNEL=debug, `make debug`)
# built RUNS times in a row (default 20) and run its KUnit suites, checked as
# scripts/kunit.sh checks them (KUNIT_BOOT_ONLY=1: no build, no doctests),
# stopping at the first failure, to show that a once-intermittent failure is
# gone.  Each boot draws its own seed for random_differential.  Each run's
# output stays in out[/debug][/arm64]/kunit-repeat/N.log and its console in
# N.console.log; the summary goes to results/kunit-repeat-$MPRS_KERNEL.md
# (results/arm64/ for ARCH=arm64).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
kernel=$(mprs_kernel)
arch=$(mprs_arch)
out=$(mprs_out)
runs=${RUNS:-20}
dir="$out/kunit-repeat"
results="$root/results"
[ "$arch" = x86_64 ] || results="$root/results/$arch"
rm -rf "$dir"
mkdir -p "$dir" "$results"

passed=0
t0=$(date +%s)
for i in $(seq "$runs"); do
	rc=0
	KUNIT_BOOT_ONLY=1 "$here/kunit.sh" >"$dir/$i.log" 2>&1 || rc=$?
	cp "$out/console.log" "$dir/$i.console.log"
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "kunit-repeat: run $i of $runs: $(grep -E '^[0-9]+ passed' "$dir/$i.log" | tail -n 1)"
	else
		echo "kunit-repeat: run $i of $runs FAILED (${dir#$root/}/$i.log):"
		grep -E "FAIL|ERROR|ASSERTION|Expected|differ|splat" "$dir/$i.log" \
			"$dir/$i.console.log" | head -n 20
		break
	fi
done
secs=$(( $(date +%s) - t0 ))
{
	echo "# $runs KUnit runs in a row on the $kernel kernel ($arch)"
	echo
	echo "\`RUNS=$runs MPRS_KERNEL=$kernel ARCH=$arch scripts/kunit-repeat.sh\` at" \
		"$(git -C "$root" rev-parse --short HEAD), $(date -u +%Y-%m-%d):" \
		"$passed of $runs runs passed, each a boot running every suite of" \
		"\`make run\`'s KUnit step (random_differential with a seed of its own)," \
		"checked for failed and skipped cases and for splats, in $secs s."
} >"$results/kunit-repeat-$kernel.md"
echo "kunit-repeat: $passed of $runs runs passed on the $kernel kernel in ${secs}s"
[ "$passed" -eq "$runs" ]
