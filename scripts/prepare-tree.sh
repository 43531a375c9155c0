#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Turn this repository into commits on a kernel git tree.
#
# Default tree: $MPRS_CACHE/linux, made once from Debian's linux-source-7.3
# tarball; its first commit (tag mprs-base) is the pristine source.  With
# KERNEL_SRC=/path/to/a/git/tree the same commits go on top of that tree's
# HEAD (or of KERNEL_BASE when given); the base used is remembered in
# refs/mprs/base so that re-running rebuilds the branch on the same base.
#
# Each directory patches/NNNN-*/ is one commit: its `message` is the commit
# message, its `files` lists the files of this repository's overlay (rust/,
# mm/, ...) that the commit adds at the same path, and its optional
# `edits.diff` holds the changes to files that already exist in the kernel.
# The commits are built in a private index (nothing in the work tree moves
# while they are made), with a fixed author and date, so the same input gives
# the same commit ids.  The branch `mprotect-rs` is then checked out, which
# rewrites only the files that differ: kernel builds stay incremental.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
cache=$(mprs_cache)

die() { echo "prepare-tree: ERROR: $*" >&2; exit 1; }
note() { echo "prepare-tree: $*"; }

export GIT_AUTHOR_NAME="$MPRS_AUTHOR_NAME" GIT_AUTHOR_EMAIL="$MPRS_AUTHOR_EMAIL"
export GIT_COMMITTER_NAME="$MPRS_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$MPRS_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="$MPRS_DATE" GIT_COMMITTER_DATE="$MPRS_DATE"

tree=$(mprs_tree)
if [ -z "${KERNEL_SRC:-}" ] && [ ! -d "$tree/.git" ]; then
	tarball=$(mprs_kernel_tarball)
	[ -n "$tarball" ] || die "no /usr/src/linux-source-7.3.tar.*: run scripts/setup.sh"
	note "unpacking $tarball into $tree (once)"
	rm -rf "$tree.tmp"
	mkdir -p "$tree.tmp"
	tar -xf "$tarball" -C "$tree.tmp" --strip-components=1
	git -C "$tree.tmp" init -q -b mprs-base
	git -C "$tree.tmp" config core.autocrlf false
	git -C "$tree.tmp" config gc.auto 0
	git -C "$tree.tmp" add -A -f
	git -C "$tree.tmp" commit -q -m "Linux $(mprs_kernel_version "$tree.tmp") (Debian linux-source-7.3, pristine)"
	git -C "$tree.tmp" tag mprs-base
	mv "$tree.tmp" "$tree"
fi
[ -d "$tree/.git" ] || [ -f "$tree/.git" ] || die "$tree is not a git tree"
g() { git -C "$tree" "$@"; }

# The base commit.
if [ -n "${KERNEL_BASE:-}" ]; then
	base=$(g rev-parse --verify "$KERNEL_BASE^{commit}") || die "bad KERNEL_BASE"
elif base=$(g rev-parse -q --verify refs/mprs/base); then
	:
elif [ -z "${KERNEL_SRC:-}" ]; then
	base=$(g rev-parse --verify refs/tags/mprs-base^{commit})
else
	[ "$(g symbolic-ref -q --short HEAD || true)" != mprotect-rs ] ||
		die "HEAD is the mprotect-rs branch but refs/mprs/base is gone: set KERNEL_BASE"
	base=$(g rev-parse --verify HEAD)
fi
g update-ref refs/mprs/base "$base"

# Every overlay file must belong to exactly one patch.
listed=$(cat "$root"/patches/*/files | sed '/^#/d;/^$/d' | sort)
dups=$(printf '%s\n' "$listed" | uniq -d)
[ -z "$dups" ] || die "listed by more than one patch: $dups"
present=$(cd "$root" && git ls-files -co --exclude-standard -- $MPRS_OVERLAY_DIRS | sort)
orphans=$(comm -23 <(printf '%s\n' "$present") <(printf '%s\n' "$listed"))
[ -z "$orphans" ] || die "overlay files in no patch (add them to a patches/*/files): $orphans"

# The diffs apply exactly to Debian's 7.3 (the cache's tree): a three-way
# merge there would hide a diff gone stale, which only a fresh tree, one
# without the blobs the merge uses, would then find.  A tree of your own
# (KERNEL_SRC) gets the merge.
threeway=
[ -z "${KERNEL_SRC:-}" ] || threeway=--3way
index=$(g rev-parse --absolute-git-dir)/mprs-index
trap 'rm -f "$index"' EXIT
prev=$base
for p in "$root"/patches/[0-9]*/; do
	p=${p%/}
	GIT_INDEX_FILE=$index g read-tree "$prev"
	if [ -f "$p/edits.diff" ]; then
		if ! msg=$(cd "$tree" && GIT_INDEX_FILE=$index git apply --cached $threeway "$p/edits.diff" 2>&1); then
			echo "$msg" >&2
			die "$(basename "$p")/edits.diff does not apply to $tree"
		fi
	fi
	while read -r f; do
		case "$f" in ""|"#"*) continue ;; esac
		[ -f "$root/$f" ] || die "$(basename "$p")/files names $f, which does not exist"
		mode=100644
		[ ! -x "$root/$f" ] || mode=100755
		blob=$(g hash-object -w --path="$f" -- "$root/$f")
		GIT_INDEX_FILE=$index g update-index --add --cacheinfo "$mode,$blob,$f"
	done <"$p/files"
	t=$(GIT_INDEX_FILE=$index g write-tree)
	prev=$(sed "s|^Signed-off-by: $MPRS_PLACEHOLDER_IDENT\$|Signed-off-by: $MPRS_AUTHOR_NAME <$MPRS_AUTHOR_EMAIL>|" "$p/message" |
		g commit-tree "$t" -p "$prev" -F -)
done

old=$(g rev-parse -q --verify refs/heads/mprotect-rs || true)
cur=$(g symbolic-ref -q --short HEAD || true)
if [ "$old" = "$prev" ] && [ "$cur" = mprotect-rs ]; then
	note "$tree: mprotect-rs is up to date ($(g rev-list --count "$base..$prev") patches on $(g rev-parse --short "$base"))"
	exit 0
fi
# `checkout -B` from the current HEAD rewrites only the files that differ.
g checkout -q -B mprotect-rs "$prev" ||
	die "could not check out mprotect-rs in $tree (local changes in the files the series touches?)"
g update-ref refs/mprs/last "$prev"
note "$tree: mprotect-rs at $(g rev-parse --short "$prev"), $(g rev-list --count "$base..$prev") patches on $(g rev-parse --short "$base")"
g diff --stat "${old:-$base}" "$prev" | tail -n 1 | sed 's/^/prepare-tree: changed since last run:/'
