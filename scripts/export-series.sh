#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The reverse of prepare-tree.sh: turn commits of a kernel git tree back into
# patches/NNNN-*/ of this repository.  Use it to reshape the series with git
# (rebase, split, reword) in a work tree of the kernel, then export:
#
#   scripts/export-series.sh [<head> [<base>]]
#
# <head> defaults to the branch mprotect-rs, <base> to refs/mprs/base of
# the kernel tree (scripts/lib.sh's mprs_tree, or KERNEL_SRC).  For each
# commit of <base>..<head>, in order: its message goes to `message`, the files
# under the overlay directories that the commit adds are copied into the
# overlay as they are in that commit and listed in `files`, and every other
# change of the commit goes to `edits.diff`.  The old patches/[0-9]*/ and the
# overlay files that no commit adds any more are removed.  Run make prepare
# afterwards: it must rebuild the same commit ids' trees.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
g() { git -C "$tree" "$@"; }
die() { echo "export-series: ERROR: $*" >&2; exit 1; }

head=$(g rev-parse --verify "${1:-refs/heads/mprotect-rs}^{commit}") || die "bad head"
base=$(g rev-parse --verify "${2:-refs/mprs/base}^{commit}") || die "bad base"
mapfile -t commits < <(g rev-list --reverse --topo-order "$base..$head")
[ ${#commits[@]} -gt 0 ] || die "no commits in $base..$head"
[ -z "$(g rev-list --merges "$base..$head")" ] || die "merges in $base..$head"

# shellcheck disable=SC2086
mapfile -t old_overlay < <(cd "$root" && git ls-files -- $MPRS_OVERLAY_DIRS)
rm -rf "$root"/patches/[0-9][0-9][0-9][0-9]-*/
declare -A added=()
n=0
for c in "${commits[@]}"; do
	n=$((n + 1))
	subject=$(g log -1 --format=%s "$c")
	# The first seven words of the subject, as a directory name.
	slug=$(printf '%s' "$subject" | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9]+/-/g;s/^-+//;s/-+$//' | cut -d- -f1-7)
	dir="$root/patches/$(printf '%04d' "$n")-$slug"
	mkdir -p "$dir"
	# The author's sign-off goes back to the placeholder prepare-tree.sh replaces.
	g log -1 --format=%B "$c" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' |
		sed "s|^Signed-off-by: $MPRS_AUTHOR_NAME <$MPRS_AUTHOR_EMAIL>\$|Signed-off-by: $MPRS_PLACEHOLDER_IDENT|" \
		>"$dir/message"
	# shellcheck disable=SC2086
	mapfile -t new < <(g diff --name-only --diff-filter=A "$c^" "$c" -- $MPRS_OVERLAY_DIRS)
	: >"$dir/files"
	excludes=()
	for f in "${new[@]}"; do
		mkdir -p "$root/$(dirname "$f")"
		g show "$c:$f" >"$root/$f"
		if [ "$(g ls-tree "$c" -- "$f" | awk '{print $1}')" = 100755 ]; then
			chmod +x "$root/$f"
		else
			chmod -x "$root/$f"
		fi
		echo "$f" >>"$dir/files"
		excludes+=(":(exclude)$f")
		added[$f]=1
	done
	g diff --no-renames "$c^" "$c" -- . "${excludes[@]}" >"$dir/edits.diff"
	[ -s "$dir/edits.diff" ] || rm -f "$dir/edits.diff"
	echo "export-series: $(basename "$dir"): ${#new[@]} file(s), $( [ -f "$dir/edits.diff" ] && grep -c '^diff --git' "$dir/edits.diff" || echo 0) edited"
done
for f in "${old_overlay[@]}"; do
	[ -n "${added[$f]:-}" ] || { (cd "$root" && git rm -q -f -- "$f") && echo "export-series: removed $f"; }
done
echo "export-series: ${#commits[@]} patches written to patches/; now run make prepare"
