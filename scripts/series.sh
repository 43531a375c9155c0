#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Write the series as `git format-patch --rfc --cover-letter` output into
# series/ of this repository.  The cover letter is patches/cover-letter: its
# first paragraph is the subject, the rest the body.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
g() { git -C "$tree" "$@"; }

base=$(g rev-parse --verify refs/mprs/base)
head=$(g rev-parse --verify refs/heads/mprotect-rs)
g config branch.mprotect-rs.description "$(cat "$root/patches/cover-letter")"
rm -rf "$root/series"
g format-patch -q --rfc --cover-letter --cover-from-description=subject \
	--base="$base" --no-signature -o "$root/series" "$base..$head"
echo "series: $(ls "$root/series" | wc -l) files in series/ ($(g rev-list --count "$base..$head") patches and a cover letter)"
