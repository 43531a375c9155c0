#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Write the series as `git format-patch --rfc --cover-letter` output into
# series/ of this repository, ready for `git send-email` or `b4 send`:
#
#  - the cover letter is patches/cover-letter: its first paragraph is the
#    subject, the rest the body (git reads it from the branch description,
#    which it finds only when the range names the branch);
#  - the messages are one thread (Message-Id and In-Reply-To), each patch
#    a reply to the cover letter, and carry the base commit;
#  - To: and Cc: come from the tree's scripts/get_maintainer.pl over the
#    whole series: maintainers To, reviewers and lists Cc;
#  - a file that still holds one of git's placeholders fails the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)
g() { git -C "$tree" "$@"; }
die() { echo "series: ERROR: $*" >&2; exit 1; }

base=$(g rev-parse --verify refs/mprs/base)
g rev-parse --verify -q refs/heads/mprotect-rs >/dev/null || die "no branch mprotect-rs: run make prepare"
g config branch.mprotect-rs.description "$(cat "$root/patches/cover-letter")"
rm -rf "$root/series"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g format-patch -q --base="$base" --no-signature -o "$tmp" "$base..mprotect-rs"

# Recipients, as get_maintainer.pl sees the series.
to=() cc=()
while IFS= read -r line; do
	addr=${line%% (*}
	case "$line" in
	*"(maintainer:"*) to+=(--to="$addr") ;;
	*) cc+=(--cc="$addr") ;;
	esac
done < <(cd "$tree" && ./scripts/get_maintainer.pl --nogit --nogit-fallback \
	"$tmp"/*.patch 2>/dev/null | sed '/^$/d')
[ ${#to[@]} -gt 0 ] || die "get_maintainer.pl named no maintainer"

g format-patch -q --rfc --cover-letter --cover-from-description=subject --thread=shallow \
	--base="$base" --no-signature "${to[@]}" "${cc[@]}" -o "$root/series" "$base..mprotect-rs"

if grep -l -e '\*\*\* SUBJECT HERE \*\*\*' -e '\*\*\* BLURB HERE \*\*\*' "$root"/series/*.patch; then
	die "the files above still hold git's placeholders"
fi
cover="$root/series/0000-cover-letter.patch"
subject=$(sed -n '1{p;q}' "$root/patches/cover-letter" | cut -c1-40)
grep -qF "$subject" "$cover" || die "the cover letter does not carry patches/cover-letter"
# b4 takes the series as it would from lore: one thread of a cover letter
# and every patch, in order.  Headers are unfolded first: b4 0.12 (Debian
# 12) fails on a folded From: (ValueError), which git writes for a long
# name and address.
if command -v b4 >/dev/null; then
	msgid=$(sed -n 's/^Message-ID: <\(.*\)>$/\1/Ip' "$cover" | head -n 1)
	python3 - "$tmp/series.mbox" "$root"/series/*.patch <<'PY'
import re, sys
with open(sys.argv[1], "w") as out:
    for path in sys.argv[2:]:
        head, sep, body = open(path).read().partition("\n\n")
        out.write(re.sub(r"\n[ \t]+", " ", head) + sep + body)
PY
	mkdir -p "$tmp/b4"
	if ! (cd "$tmp" && b4 -q am -C -m "$tmp/series.mbox" -o "$tmp/b4" "$msgid") >"$tmp/b4.log" 2>&1; then
		cat "$tmp/b4.log"
		die "b4 am does not take the series"
	fi
	n=$(g rev-list --count "$base..mprotect-rs")
	got=$(grep -c '^Subject: \[' "$tmp"/b4/*.mbx)
	[ "$got" -eq "$n" ] || { cat "$tmp/b4.log"; die "b4 am found $got of $n patches"; }
	echo "series: b4 am takes all $n patches of the thread"
fi
echo "series: $(ls "$root/series" | wc -l) files in series/ ($(g rev-list --count "$base..mprotect-rs") patches and a cover letter), To: ${#to[@]}, Cc: ${#cc[@]}"
