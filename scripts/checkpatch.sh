#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the kernel's scripts/checkpatch.pl over every patch in series/ (not the
# cover letter).  Any error or warning fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)

shopt -s nullglob
patches=("$root"/series/[0-9][0-9][0-9][0-9]-*.patch)
patches=("${patches[@]/*\/0000-cover-letter.patch/}")
[ ${#patches[@]} -gt 0 ] || { echo "checkpatch: no patches in series/" >&2; exit 1; }
rc=0
for p in "${patches[@]}"; do
	[ -n "$p" ] || continue
	if out=$(cd "$tree" && ./scripts/checkpatch.pl --quiet --no-summary --showfile "$p" 2>&1); then
		echo "checkpatch: $(basename "$p"): clean"
	else
		echo "checkpatch: $(basename "$p"):"
		echo "$out"
		rc=1
	fi
done
exit $rc
