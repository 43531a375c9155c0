#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# rustfmt --check over the Rust files of this repository, with the kernel's
# .rustfmt.toml and the edition the kernel uses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
tree=$(mprs_tree)

mapfile -t files < <(cd "$root" && git ls-files -co --exclude-standard -- '*.rs')
[ ${#files[@]} -gt 0 ] || { echo "rustfmtcheck: no Rust files"; exit 0; }
if (cd "$root" && rustfmt --check --edition 2021 --config-path "$tree/.rustfmt.toml" "${files[@]}"); then
	echo "rustfmtcheck: ${#files[@]} file(s) formatted"
else
	echo "rustfmtcheck: run rustfmt --edition 2021 --config-path $tree/.rustfmt.toml on the files above" >&2
	exit 1
fi
