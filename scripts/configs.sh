#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make configs: build the series in the configurations of tests/configs/,
# each into a build directory of its own ($MPRS_CACHE/configs/NAME), so that
# the test kernel's build stays incremental and a second run rebuilds only
# what changed.  See tests/configs/README for the fragments.
#
#   scripts/configs.sh [NAME...]     default: every tests/configs/*.config
#
# For each: .config from its base and fragment, olddefconfig, a check that
# every line of the fragment holds in the result (printed into the log, so
# the log shows each option really set), then `make LLVM=-22 CLIPPY=1`;
# any compiler, rustc or clippy warning fails it, as in make test.  Those
# marked "# boot: kunit" are then booted and must pass the KUnit suites of
# tests/expected-suites.txt.  Logs go to out/configs/NAME.log, the summary to
# out/configs/summary.md (make configs copies it to results/configs.md).
#
# ARCH=arm64: only what make bench ARCH=arm64 asks for (inline-off), into
# $MPRS_CACHE/configs/NAME-arm64, logs in out/configs-arm64/; the fragments
# of tests/configs/ are written for x86_64, so make configs stays x86_64.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
cache=$(mprs_cache)
arch=$(mprs_arch) || exit 1
suffix=$(mprs_arch_suffix)
[ "$arch" = x86_64 ] || [ "$*" = inline-off ] || {
	echo "configs: ARCH=$arch builds only inline-off (make bench ARCH=$arch)" >&2
	exit 1
}
out="$root/out/configs$suffix"
jobs=${JOBS:-$(nproc)}
mkdir -p "$out"

if [ $# -gt 0 ]; then
	names=("$@")
else
	# Fragments marked "# only: TARGET" are built by that target alone.
	names=()
	for f in "$root"/tests/configs/*.config; do
		grep -q '^# only: ' "$f" || names+=("$(basename "$f" .config)")
	done
fi

# merge BASE FRAGMENT: BASE's lines, with those of FRAGMENT replacing the
# ones for the same option, and FRAGMENT's new ones appended.
merge() {
	python3 - "$1" "$2" <<'PY'
import re, sys
def opts(path):
    d = {}
    for line in open(path):
        line = line.strip()
        m = re.match(r'^(CONFIG_\w+)=', line) or re.match(r'^# (CONFIG_\w+) is not set$', line)
        if m:
            d[m.group(1)] = line
    return d
base, frag = opts(sys.argv[1]), opts(sys.argv[2])
base.update(frag)
print("\n".join(base.values()))
PY
}

# check CONFIG FRAGMENT: every option line of FRAGMENT holds in CONFIG.
check() {
	local bad=0 line opt
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			opt=${line%%=*}
			if grep -qx "$line" "$1"; then
				echo "configs: $line: set"
			else
				echo "configs: $line: NOT SET ($(grep -E "^$opt=|^# $opt is not set" "$1" || echo absent))"
				bad=1
			fi
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			if grep -qE "^$opt=" "$1"; then
				echo "configs: $opt: NOT OFF ($(grep -E "^$opt=" "$1"))"
				bad=1
			else
				echo "configs: $opt: off"
			fi
			;;
		esac
	done <"$2"
	return $bad
}

summary="$out/summary.md"
{
	echo "# make configs"
	echo
	echo "Series at $(git -C "$tree" rev-parse --short refs/heads/mprotect-rs 2>/dev/null)" \
		"($(git -C "$tree" rev-list --count refs/mprs/base..refs/heads/mprotect-rs 2>/dev/null) patches)," \
		"$(date -u +%Y-%m-%d), LLVM$MPRS_LLVM, $(rustc --version | awk '{print $1, $2}'), CLIPPY=1."
	echo
	echo "| configuration | what it is | walker | result | time |"
	echo "| --- | --- | --- | --- | ---: |"
} >"$summary"

failed=0
for name in "${names[@]}"; do
	frag="$root/tests/configs/$name.config"
	[ -f "$frag" ] || { echo "configs: no $frag"; failed=1; continue; }
	log="$out/$name.log"
	dir="$cache/configs/$name$suffix"
	[ "$name" != test ] || dir=$(mprs_build)
	mkdir -p "$dir"
	what=$(sed -n '2{s/^# //;p;q}' "$frag")
	base=$(sed -n '1{s/^# base: //;p;q}' "$frag")
	t0=$(date +%s)
	echo "==> configs: $name ($dir)"
	result=failed
	(
		set -e
		mk() { make -C "$tree" O="$dir" ARCH="$arch" LLVM="$MPRS_LLVM" "$@"; }
		case "$base" in
		test)
			mprs_test_config >"$out/$name.base"
			merge "$out/$name.base" "$frag" >"$dir/.config"
			mk olddefconfig
			;;
		allnoconfig)
			KCONFIG_ALLCONFIG="$frag" mk allnoconfig
			;;
		*) echo "configs: unknown base '$base'"; exit 1 ;;
		esac
		check "$dir/.config" "$frag"
		echo "configs: MPROTECT_RS: $(grep -E '^CONFIG_MPROTECT_RS=|^# CONFIG_MPROTECT_RS is not set' "$dir/.config")"
		mk CLIPPY=1 -j"$jobs" all
	) >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && grep -nE '(^|[: ])warning(\[[A-Za-z0-9_-]+\])?: ' "$log" >"$out/$name.warnings"; then
		echo "configs: $name: the build printed $(wc -l <"$out/$name.warnings") warning line(s)" | tee -a "$log"
		cat "$out/$name.warnings"
		rc=1
	fi
	if [ $rc -eq 0 ] && grep -q '^# boot: kunit' "$frag"; then
		echo "==> configs: $name: boot and run KUnit"
		merge "$root/tests/mprotect-rs.kunitconfig" "$frag" >"$out/$name.kunitconfig"
		if KBUILD_OUTPUT_DIR="$dir" MPRS_KUNITCONFIG="$out/$name.kunitconfig" \
				MPRS_OUT="$out/$name-kunit" "$here/kunit.sh" >>"$log" 2>&1; then
			# kunit.sh's two boots: the KUnit suites, then the doctests.
			sums=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 2)
			kunit=", KUnit: $(sed -n 1p <<<"$sums"); doctests: $(sed -n 2p <<<"$sums")"
		else
			rc=1
			kunit=", KUnit FAILED"
		fi
	else
		kunit=""
	fi
	secs=$(( $(date +%s) - t0 ))
	walker=$(grep -qx 'CONFIG_MPROTECT_RS=y' "$dir/.config" && echo built || echo "not built")
	if [ $rc -eq 0 ]; then
		result="built, no warnings$kunit"
	else
		result="**FAILED**$kunit (out/configs$suffix/$name.log)"
		failed=1
		grep -E 'error(\[E[0-9]+\])?:|NOT SET|NOT OFF|undefined symbol' "$log" | head -n 10
		tail -n 5 "$log"
	fi
	echo "configs: $name: $result, ${secs}s"
	printf '| %s | %s | %s | %s | %d min %02d s |\n' "$name" "$what" "$walker" "$result" \
		$((secs / 60)) $((secs % 60)) >>"$summary"
done
echo
cat "$summary"
exit $failed
