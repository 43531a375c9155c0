#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the kernel's scripts/checkpatch.pl over every patch in series/ (not the
# cover letter) with --strict.  Any error, warning or check fails.
#
# checkpatch.pl's SPDX check runs scripts/spdxcheck.py with `python3`, which
# needs the ply and git modules; Debian's python3-ply and python3-git provide
# them for /usr/bin/python3, so that one comes first in PATH here.
#
# UNKNOWN_COMMIT_ID is ignored: checkpatch looks the commit of a Fixes: tag
# up in the tree, and the Debian source tree has no history (the tag was
# checked against the mainline history when it was written).
#
# One warning is replaced by a stronger check: FILE_PATH_CHANGES ("added,
# moved or deleted file(s), does MAINTAINERS need updating?") fires on every
# patch that adds a file without touching MAINTAINERS, even where an existing
# entry's pattern covers the file (rust/kernel/mm/ does).  Instead, every file
# the series adds must have a MAINTAINERS entry in the resulting tree, as
# scripts/get_maintainer.pl sees it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)

shopt -s nullglob
patches=()
for p in "$root"/series/[0-9][0-9][0-9][0-9]-*.patch; do
	case "$p" in */0000-cover-letter.patch) continue ;; esac
	patches+=("$p")
done
[ ${#patches[@]} -gt 0 ] || { echo "checkpatch: no patches in series/" >&2; exit 1; }
rc=0
for p in "${patches[@]}"; do
	if out=$(cd "$tree" && PATH="/usr/bin:$PATH" ./scripts/checkpatch.pl --strict --quiet --no-summary --showfile \
			--ignore FILE_PATH_CHANGES,UNKNOWN_COMMIT_ID "$p" 2>&1); then
		echo "checkpatch: $(basename "$p"): clean"
	else
		echo "checkpatch: $(basename "$p"):"
		echo "$out"
		rc=1
	fi
done

base=$(git -C "$tree" rev-parse refs/mprs/base)
head=$(git -C "$tree" rev-parse refs/heads/mprotect-rs)
[ "$(git -C "$tree" rev-parse HEAD)" = "$head" ] ||
	{ echo "checkpatch: $tree is not at mprotect-rs: run make prepare" >&2; exit 1; }
while read -r f; do
	if ! (cd "$tree" && ./scripts/get_maintainer.pl --nogit --nogit-fallback -f "$f") |
			grep -qE "MEMORY MANAGEMENT|MEMORY MAPPING"; then
		echo "checkpatch: $f: added by the series but in no MEMORY MANAGEMENT or MEMORY MAPPING entry of MAINTAINERS"
		rc=1
	fi
done < <(git -C "$tree" diff --name-only --diff-filter=A "$base" "$head")
[ $rc -ne 0 ] || echo "checkpatch: every added file has a MAINTAINERS entry"
exit $rc
