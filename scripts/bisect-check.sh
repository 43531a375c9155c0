#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bisect-check: every prefix of the series builds warning-free with
# the test configuration, and from the commit that adds a KUnit suite on,
# that suite passes.  The prefixes are checked out one after the other in a
# work tree of their own ($MPRS_CACHE/bisect-src) and built into one build
# directory ($MPRS_CACHE/configs/bisect), so each step rebuilds only what the
# commit changed.  Logs in out/bisect/; the summary in out/bisect/summary.md
# (make bisect-check copies it to results/bisect.md).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mprs_x86_only bisect-check
root=$(mprs_root)
tree=$(mprs_tree)
cache=$(mprs_cache)
out="$root/out/bisect"
src="$cache/bisect-src"
build="$cache/configs/bisect"
jobs=${JOBS:-$(nproc)}
mkdir -p "$out" "$build"
mapfile -t kargs < <(mprs_kunit_kernel_args)
g() { git -C "$tree" "$@"; }

base=$(g rev-parse --verify refs/mprs/base) || exit 1
mapfile -t commits < <(g rev-list --reverse "$base..refs/heads/mprotect-rs")
[ ${#commits[@]} -gt 0 ] || { echo "bisect-check: no commits in refs/mprs/base..mprotect-rs" >&2; exit 1; }

summary="$out/summary.md"
{
	echo "# make bisect-check"
	echo
	echo "Every prefix of the series, test configuration, LLVM$MPRS_LLVM, CLIPPY=1, $(date -u +%Y-%m-%d)."
	echo
	echo "| # | commit | build | KUnit |"
	echo "| ---: | --- | --- | --- |"
} >"$summary"

failed=0
n=0
for c in "${commits[@]}"; do
	n=$((n + 1))
	subject=$(g log -1 --format=%s "$c")
	log="$out/$n.log"
	echo "==> bisect-check: $n/${#commits[@]} $subject"
	mprs_worktree "$tree" "$src" "$c" || { echo "bisect-check: no work tree at $src" >&2; exit 1; }
	build_result=ok
	kunit_result=-
	# The test configuration; options of later commits do not exist yet and
	# olddefconfig drops them.
	mprs_test_config >"$build/.config"
	if ! make -C "$src" O="$build" ARCH=x86_64 LLVM="$MPRS_LLVM" olddefconfig >"$log" 2>&1; then
		build_result="**FAILED** (olddefconfig)"
	elif ! make -C "$src" O="$build" ARCH=x86_64 LLVM="$MPRS_LLVM" CLIPPY=1 -j"$jobs" all \
			>>"$log" 2>&1; then
		build_result="**FAILED**"
	elif grep -nE '(^|[: ])warning(\[[A-Za-z0-9_-]+\])?: ' "$log" >"$out/$n.warnings"; then
		build_result="**$(wc -l <"$out/$n.warnings") warning(s)**"
	fi
	# The suites this prefix has.
	suites=()
	grep -q '^config MPROTECT_RS_KUNIT_TEST$' "$src/mm/Kconfig" && suites+=(mprotect_rs_smoke)
	grep -q '^config MPROTECT_RS_WALKER_KUNIT_TEST$' "$src/mm/Kconfig" && suites+=(mprotect_rs_walkers)
	if [ "$build_result" = ok ] && [ ${#suites[@]} -gt 0 ]; then
		printf '%s\n' "${suites[@]}" >"$out/$n.expected"
		accel=$("$here/kvm-probe.sh" "$build/arch/x86/boot/bzImage")
		rm -f "$out/$n.json"
		PATH="$here/qemu-bin:$PATH" MPRS_ACCEL=$accel \
			python3 "$src/tools/testing/kunit/kunit.py" exec --arch=x86_64 --build_dir="$build" \
			--kunitconfig="$root/tests/mprotect-rs.kunitconfig" \
			--kunitconfig="$root/tests/arch/x86_64.kunitconfig" \
			--qemu_config="$root/tests/qemu/x86_64.py" --timeout="${KUNIT_TIMEOUT:-300}" \
			"${kargs[@]}" --json="$out/$n.json" 'mprotect_rs_[!g]*' >>"$log" 2>&1
		if python3 "$here/check-results.py" "$out/$n.json" "$out/$n.expected" >>"$log" 2>&1; then
			kunit_result="$(tail -n 1 "$log")"
		else
			kunit_result="**FAILED** ($(tail -n 1 "$log"))"
		fi
	fi
	case "$build_result$kunit_result" in *FAILED*|*warning*) failed=1 ;; esac
	echo "    build: $build_result; KUnit: $kunit_result"
	printf '| %d | %s %s | %s | %s |\n' "$n" "$(g rev-parse --short "$c")" "$subject" \
		"$build_result" "$kunit_result" >>"$summary"
done
echo
cat "$summary"
exit $failed
