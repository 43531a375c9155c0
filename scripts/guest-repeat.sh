#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the guest (scripts/guest.sh) RUNS times in a row (default 20) on the
# kernel MPRS_KERNEL names (test or debug), stopping at the first failure,
# to show that a once-intermittent failure is gone.  Each run's console
# stays in out[/debug]/guest-repeat/N.log; the summary goes to
# results/guest-repeat-$MPRS_KERNEL.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only guest-repeat
root=$(mprs_root)
kernel=$(mprs_kernel)
out=$(mprs_out)
runs=${RUNS:-20}
dir="$out/guest-repeat"
rm -rf "$dir"
mkdir -p "$dir"

passed=0
again=0
t0=$(date +%s)
for i in $(seq "$runs"); do
	rc=0
	rm -f "$out/guest.log"
	"$here/guest.sh" >"$dir/$i.log" 2>&1 || rc=$?
	cp "$out/guest.log" "$dir/$i.console.log" 2>/dev/null || : >"$dir/$i.console.log"
	if [ -f "$out/guest-boot-oops.log" ]; then
		again=$((again + 1))
		cp "$out/guest-boot-oops.log" "$dir/$i.boot-oops.log"
	fi
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "guest-repeat: run $i of $runs: $(grep -E '^[0-9]+ passed' "$dir/$i.log" | tail -n 1)"
	else
		echo "guest-repeat: run $i of $runs FAILED (${dir#$root/}/$i.log):"
		{ grep -E "FAIL|SPLAT|ERROR|ASSERTION|Expected|stopped under|failed under" "$dir/$i.log" \
			"$dir/$i.console.log" 2>/dev/null || true; } | head -n 20 || true
		break
	fi
done
secs=$(( $(date +%s) - t0 ))
{
	echo "# $runs guest runs in a row on the $kernel kernel"
	echo
	echo "\`RUNS=$runs MPRS_KERNEL=$kernel scripts/guest-repeat.sh\` at" \
		"$(git -C "$root" rev-parse --short HEAD), $(date -u +%Y-%m-%d):" \
		"$passed of $runs runs passed ($again in a second boot, after QEMU's int3 oops)," \
		"each the user-space checks under both walkers," \
		"\`mprotect_rs_guest\` and the splat check, in $secs s."
} >"$root/results/guest-repeat-$kernel.md"
echo "guest-repeat: $passed of $runs runs passed on the $kernel kernel in ${secs}s"
[ "$passed" -eq "$runs" ]
