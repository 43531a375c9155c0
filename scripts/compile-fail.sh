#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# compile-fail.sh BUILD_DIR SNIPPET...
#
# Compile-fail proofs against the `kernel` crate of an already-built kernel tree.
#
# Each SNIPPET is a Rust file written like a built-in Rust object of the kernel (a crate root
# such as mm/mprotect_rs.rs: `use kernel::...; fn f(...) { ... }`, no module! needed). Exactly
# one line carries a trailing `// ERROR: E0XXX`. For every snippet:
#   1. type-check it as is (rustc --emit=metadata): it must fail with `error[E0XXX]`, and that
#      diagnostic must mention the marked line (primary or secondary span);
#   2. type-check it with the marked line blanked out: it must succeed.
#
# The rustc command line is taken from a Kbuild `.NAME.o.cmd` file of a Rust object of the
# build (default BUILD_DIR/mm/.mprotect_rs.o.cmd, else the first built-in Rust object found
# that uses `--extern kernel`): the `savedcmd_` line is split with Python's shlex (nothing of it
# is evaluated by the shell), its first command kept, the driver, output, crate identity and
# source options dropped, and `--emit=metadata` of the snippet added.  It runs in the build
# directory, as its paths are relative (-L ./rust/, @./include/generated/rustc_cfg).  A type
# check takes about 50 ms.
#
# Environment knobs:
#   CF_CMD_FILE=path      .cmd file to take the command from
#   CF_DRIVER=rustc|clippy|keep
#                         rustc (default): run `rustc` (clippy-driver of the .cmd replaced by
#                         the rustc next to it); clippy/keep: keep clippy-driver (clippy lints
#                         then show up as warnings)
#   CF_DENY_WARNINGS=1    step 2 must also be warning-free (-Dwarnings); unused/dead-code,
#                         missing_docs and unreachable_pub are always allowed
#   CF_LINE_CHECK=0       do not require the E0XXX diagnostic to mention the marked line
#   CF_KEEP=1             keep the temporary directory (printed at the end)
#   CF_VERBOSE=1          print the derived command and per-step timings
#
# Exit status: 0 all PASS, 1 some FAIL, 2 usage/setup error.

set -u -o pipefail

die() { echo "compile-fail: $*" >&2; exit 2; }

# Without arguments (make compile-fail, make test): the proofs of
# tests/compile-fail/ against the test kernel's build (MPRS_KERNEL=debug: the
# debug kernel's).
if [ $# -eq 0 ]; then
	here=$(cd "$(dirname "$0")" && pwd)
	. "$here/lib.sh"
mprs_x86_only compile-fail
	set -- "$(mprs_build)" "$(mprs_root)"/tests/compile-fail/*.rs
	echo "==> compile-fail proofs of kernel::mm::pgtable ($(mprs_build))"
fi
[ $# -ge 2 ] || die "usage: $0 [BUILD_DIR SNIPPET...]"
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || die "no such build dir: $1"
shift
command -v python3 >/dev/null || die "python3 is needed to parse the .cmd file"

# --- find the .cmd file --------------------------------------------------------------------
CMD_FILE=${CF_CMD_FILE:-}
if [ -z "$CMD_FILE" ]; then
	if [ -f "$BUILD_DIR/mm/.mprotect_rs.o.cmd" ]; then
		CMD_FILE=$BUILD_DIR/mm/.mprotect_rs.o.cmd
	else
		CMD_FILE=$(find "$BUILD_DIR" -path "$BUILD_DIR/rust" -prune -o -name '.*.o.cmd' \
			-type f -print 2>/dev/null |
			xargs -r grep -l -e '--extern kernel' 2>/dev/null | head -n1)
	fi
fi
[ -n "$CMD_FILE" ] && [ -f "$CMD_FILE" ] ||
	die "no .cmd file of a Rust object using --extern kernel under $BUILD_DIR (set CF_CMD_FILE)"

# --- derive the command ----------------------------------------------------------------------
# Output (NUL-separated): ENV <n> then n NAME=VALUE, DRIVER <path>, then the kept arguments.
parse_cmd() {
	python3 - "$1" "${CF_DRIVER:-rustc}" <<'PY'
import os, re, shlex, sys

path, driver_mode = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8", errors="surrogateescape").read()
m = re.search(r"^savedcmd_\S+\s*:=\s*(.*)$", text, re.M)
if not m:
    sys.exit(f"no savedcmd_ line in {path}")
cmd = m.group(1)
# Undo the make escaping of cmd files ($$ -> $, \# -> #).
cmd = cmd.replace("$$", "$").replace("\\#", "#")

lex = shlex.shlex(cmd, posix=True, punctuation_chars=";&|")
lex.whitespace_split = True
tokens = []
for t in lex:
    if t and set(t) <= set(";&|"):   # first command of a `;`, `&&`, `||`, `|` list only
        break
    tokens.append(t)

env = []
while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
    env.append(tokens.pop(0))
if not tokens:
    sys.exit("empty command")
driver = tokens.pop(0)
base = os.path.basename(driver)
if not re.search(r"(rustc|clippy-driver)", base):
    sys.exit(f"first command is `{driver}`, not rustc/clippy-driver")
if "clippy-driver" in base and driver_mode == "rustc":
    driver = driver[: len(driver) - len(base)] + base.replace("clippy-driver", "rustc")

# rustc options that take their value as the next argument.
takes_value = {
    "-L", "-l", "--cfg", "--check-cfg", "--crate-type", "--crate-name", "--edition", "--emit",
    "--print", "-o", "--out-dir", "--explain", "--target", "--cap-lints", "-C", "--codegen",
    "-W", "-A", "-D", "-F", "--warn", "--allow", "--deny", "--forbid", "--force-warn",
    "--extern", "--sysroot", "--error-format", "--json", "--color", "--remap-path-prefix",
    "--remap-path-scope", "--diagnostic-width", "-Z", "--env-set",
}
# Dropped (with their value): outputs, crate identity, diagnostics format, dep-info only flags.
drop = {"--emit", "-o", "--out-dir", "--crate-type", "--crate-name", "--error-format",
        "--json", "--color", "--print"}
drop_z = {"binary_dep_depinfo", "binary-dep-depinfo", "dep-info-omit-d-target"}

kept, sources = [], []
i = 0
while i < len(tokens):
    t = tokens[i]
    if t in takes_value and i + 1 < len(tokens):
        val = tokens[i + 1]
        i += 2
        if t in drop or (t == "-Z" and val.split("=")[0] in drop_z):
            continue
        kept += [t, val]
        continue
    i += 1
    if "=" in t and t.split("=", 1)[0] in drop:
        continue
    if t.startswith("-Z") and t[2:].split("=")[0] in drop_z:
        continue
    if not t.startswith(("-", "@")):
        sources.append(t)                      # the source file of the object
        continue
    kept.append(t)

if len(sources) != 1 or not sources[0].endswith(".rs"):
    sys.exit(f"expected exactly one .rs source argument, found {sources!r}")

out = ["ENV", str(len(env)), *env, "DRIVER", driver, "SRC", sources[0], *kept]
sys.stdout.write("\0".join(out) + "\0")
PY
}

mapfile -d '' PARSED < <(parse_cmd "$CMD_FILE") || true
[ "${#PARSED[@]}" -gt 4 ] && [ "${PARSED[0]}" = ENV ] || die "could not derive a rustc command from $CMD_FILE"
n_env=${PARSED[1]}
CMD_ENV=("${PARSED[@]:2:n_env}")
idx=$((2 + n_env))
[ "${PARSED[idx]}" = DRIVER ] || die "parse error"
DRIVER=${PARSED[idx + 1]}
ORIG_SRC=${PARSED[idx + 3]}
ARGS=("${PARSED[@]:idx+4}")

# Warn (only) if the kernel crate's sources are newer than the built metadata: the proofs are
# then made against a stale API.
SRC_TREE=$BUILD_DIR/source
[ -d "$SRC_TREE/rust/kernel" ] || SRC_TREE=$BUILD_DIR
if [ -f "$BUILD_DIR/rust/libkernel.rmeta" ] && [ -d "$SRC_TREE/rust/kernel" ]; then
	newer=$(find "$SRC_TREE/rust/kernel" -name '*.rs' -newer "$BUILD_DIR/rust/libkernel.rmeta" \
		-print -quit 2>/dev/null)
	[ -n "$newer" ] && echo "compile-fail: warning: $newer is newer than rust/libkernel.rmeta;" \
		"the kernel crate in $BUILD_DIR may be stale (rebuild it)" >&2
fi

# The flags Kbuild exports to every rustc (Makefile: `export RUSTC_BOOTSTRAP := 1`, needed for
# the -Z options on a stable toolchain).
CMD_ENV+=("RUSTC_BOOTSTRAP=1")

# Allowed in snippets: they are fragments, not documented, used code.
LINT_ARGS=(-Aunused -Adead_code -Amissing_docs -Aunreachable_pub)
[ "${CF_DENY_WARNINGS:-0}" = 1 ] && LINT_ARGS+=(-Dwarnings)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/compile-fail.XXXXXX") || die "mktemp failed"
if [ "${CF_KEEP:-0}" != 1 ]; then
	trap 'rm -rf "$TMP"' EXIT
fi

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# typecheck SRC CRATE_NAME OUTDIR -> sets TC_RC, TC_OUT
typecheck() {
	local src=$1 crate=$2 out=$3
	mkdir -p "$out"
	TC_OUT=$(cd "$BUILD_DIR" && env "${CMD_ENV[@]}" "$DRIVER" "${ARGS[@]}" "${LINT_ARGS[@]}" \
		--color=never --crate-type rlib --crate-name "$crate" \
		--emit=metadata --out-dir "$out" "$src" 2>&1)
	TC_RC=$?
}

if [ "${CF_VERBOSE:-0}" = 1 ]; then
	echo "cmd file: $CMD_FILE (object source: $ORIG_SRC)"
	printf 'command (cwd %s):\n ' "$BUILD_DIR"
	printf ' %q' env "${CMD_ENV[@]}" "$DRIVER" "${ARGS[@]}" "${LINT_ARGS[@]}" --color=never \
		--crate-type rlib --crate-name CRATE --emit=metadata --out-dir OUTDIR SNIPPET.rs
	echo
fi

# --- sanity check: an empty crate that uses `kernel` must type-check ----------------------------
printf 'use kernel::prelude::*;\n' > "$TMP/cf_sanity.rs"
t0=$(now_ms)
typecheck "$TMP/cf_sanity.rs" cf_sanity "$TMP/out.sanity"
t1=$(now_ms)
if [ "$TC_RC" -ne 0 ]; then
	echo "compile-fail: the derived command cannot type-check a trivial crate against the kernel crate:" >&2
	echo "$TC_OUT" >&2
	echo "(E0514/E0463 here mean: wrong rustc/toolchain or missing rust/*.rmeta in $BUILD_DIR)" >&2
	exit 2
fi
[ "${CF_VERBOSE:-0}" = 1 ] && echo "sanity check: ok ($((t1 - t0)) ms, $("$DRIVER" --version 2>/dev/null))"

# Does an `error[CODE]` diagnostic of OUTPUT mention line LINE of a file named BASE?
# (`--> path/BASE:LINE:COL` or a `LINE |` source line in the block of that error.)
mentions_line() {
	local out=$1 code=$2 base=$3 line=$4
	awk -v code="error[$code]" -v base="$base" -v line="$line" '
		/^(error|warning)(\[E[0-9]+\])?:/ { inblk = (index($0, code) == 1); file = ""; next }
		!inblk { next }
		match($0, /(-->|:::) .*:[0-9]+:[0-9]+$/) {
			loc = substr($0, RSTART + 4)
			n = split(loc, p, ":"); file = p[n - 2]; sub(/.*\//, "", file)
			if (file == base && p[n - 1] == line) found = 1
			next
		}
		file == base && $0 ~ "^ *" line " \\|" { found = 1 }
		END { exit !found }' <<<"$out"
}

fails=0
for snip in "$@"; do
	name=$(basename "$snip" .rs)
	if [ ! -f "$snip" ]; then
		echo "FAIL $name: no such file: $snip"; fails=$((fails + 1)); continue
	fi
	snip_abs=$(cd "$(dirname "$snip")" && pwd)/$(basename "$snip")
	crate=cf_$(printf '%s' "$name" | tr -c 'A-Za-z0-9_' '_')

	mapfile -t marks < <(grep -nE '//[[:space:]]*ERROR:[[:space:]]*E[0-9]{4}[[:space:]]*$' "$snip_abs")
	if [ "${#marks[@]}" -ne 1 ]; then
		echo "FAIL $name: expected exactly one line ending in '// ERROR: E0XXX', found ${#marks[@]}"
		fails=$((fails + 1)); continue
	fi
	line=${marks[0]%%:*}
	code=$(sed -nE "${line}s/.*ERROR:[[:space:]]*(E[0-9]{4})[[:space:]]*\$/\\1/p" "$snip_abs")

	# Step 1: as is.
	t0=$(now_ms)
	typecheck "$snip_abs" "$crate" "$TMP/out.$crate.1"
	t1=$(now_ms)
	out1=$TC_OUT
	if [ "$TC_RC" -eq 0 ]; then
		echo "FAIL $name: expected error[$code] at line $line, but it compiles"
		[ -n "$out1" ] && echo "$out1" | sed 's/^/    /'
		fails=$((fails + 1)); continue
	fi
	if ! grep -qF "error[$code]" <<<"$out1"; then
		echo "FAIL $name: expected error[$code] at line $line, got other errors:"
		echo "$out1" | sed 's/^/    /'
		fails=$((fails + 1)); continue
	fi
	if [ "${CF_LINE_CHECK:-1}" = 1 ] &&
		! mentions_line "$out1" "$code" "$(basename "$snip_abs")" "$line"; then
		echo "FAIL $name: error[$code] does not point at the marked line $line:"
		echo "$out1" | sed 's/^/    /'
		fails=$((fails + 1)); continue
	fi

	# Step 2: the marked line blanked (line numbers of the rest stay the same).
	mkdir -p "$TMP/src.$crate"
	fixed=$TMP/src.$crate/$(basename "$snip_abs")
	sed "${line}s/.*//" "$snip_abs" > "$fixed"
	typecheck "$fixed" "$crate" "$TMP/out.$crate.2"
	t2=$(now_ms)
	if [ "$TC_RC" -ne 0 ]; then
		echo "FAIL $name: error[$code] as expected, but it does not compile without line $line:"
		echo "$TC_OUT" | sed 's/^/    /'
		fails=$((fails + 1)); continue
	fi
	echo "PASS $name: $code as expected; compiles without the line"
	if [ "${CF_VERBOSE:-0}" = 1 ]; then
		echo "    (line $line; step 1 $((t1 - t0)) ms, step 2 $((t2 - t1)) ms)"
		[ -n "$TC_OUT" ] && echo "$TC_OUT" | sed 's/^/    step 2: /'
	fi
done

[ "${CF_KEEP:-0}" = 1 ] && echo "kept: $TMP"
[ "$fails" -eq 0 ] || exit 1
exit 0
