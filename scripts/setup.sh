#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent host set-up for mprotect-rs: Debian packages, the Linux 7.3
# source, rust-src matching rustc, bindgen-cli.  Every step checks first and
# does nothing when its piece is already present.  A registry that refuses
# makes the script stop with a message naming the missing piece.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BINDGEN_VERSION=0.72.1
LLVM_VER=22
KVER_SERIES=7.3

die() { echo "setup: ERROR: $*" >&2; exit 1; }
note() { echo "setup: $*"; }

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

stamp=$(mprs_cache)/setup.stamp
# The stamp records the inputs of this script; when they are unchanged and
# every tool is still there, set-up is a no-op.
want_stamp="$(sha256sum "$0" | cut -c1-16)"

# qemu_ok PROGRAM: PROGRAM is QEMU 8.1 or later.  Debian 12's own QEMU 7.2
# can run, under multi-threaded TCG, a stale translation of kernel code that
# text_poke_bp() is patching, and the guest oopses in an int3 that memory
# no longer holds (ClangBuiltLinux/boot-utils#111, fixed in 8.1): static
# keys flip at boot, under trinity and, it seems, when the selftests bring
# vCPUs online.  bookworm-backports has QEMU 10.0 for Debian 12.
qemu_ok() {
	local line
	line=$("$1" --version 2>/dev/null) || return 1
	[[ $line =~ ^QEMU\ emulator\ version\ ([0-9]+)\.([0-9]+) ]] || return 1
	((BASH_REMATCH[1] > 8 || (BASH_REMATCH[1] == 8 && BASH_REMATCH[2] >= 1)))
}

have_all() {
	command -v "clang-$LLVM_VER" >/dev/null &&
	command -v "ld.lld-$LLVM_VER" >/dev/null &&
	qemu_ok qemu-system-x86_64 &&
	command -v bindgen >/dev/null &&
	command -v trinity >/dev/null &&
	[ -n "$(mprs_kernel_tarball)" ] &&
	[ -d "$(mprs_rust_lib_src)" ] &&
	[ "$(cat "$stamp" 2>/dev/null)" = "$want_stamp" ] &&
	{ [ "$(mprs_arch)" != arm64 ] || {
		qemu_ok qemu-system-aarch64 &&
		command -v aarch64-linux-gnu-gcc >/dev/null &&
		[ -f "$(mprs_arm64_root)/.stamp" ]; }; }
}

if have_all; then
	note "everything present (stamp $want_stamp)"
	exit 0
fi

mkdir -p "$(mprs_cache)"

# --- apt sources ---------------------------------------------------------
# add_suite SUITE WHY: add Debian's SUITE as an apt source, unless it is
# there already (then it returns 1), and have apt-get update run again.
add_suite() {
	local src=/etc/apt/sources.list.d/mprotect-rs-$1.sources
	[ ! -f "$src" ] || return 1
	note "adding $1 ($2)"
	$SUDO tee "$src" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $1
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	rm -f "$(mprs_cache)/apt-updated"
}

if add_suite trixie-backports "only packages named with /trixie-backports come from it"; then
	# Never upgrade from backports implicitly.
	$SUDO tee /etc/apt/preferences.d/mprotect-rs-backports >/dev/null <<'PIN'
Package: *
Pin: release n=trixie-backports
Pin-Priority: 100
PIN
fi

# QEMU from bookworm-backports (see qemu_ok above), pinned like trixie's.
add_suite bookworm-backports "only QEMU comes from it" || :
# Never upgrade from it implicitly, and never take QEMU (or its BIOS) from
# trixie-backports, whose 11.x needs Debian 13's libraries.
$SUDO tee /etc/apt/preferences.d/mprotect-rs-bookworm-backports >/dev/null <<'PIN'
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: qemu-* seabios
Pin: release n=trixie-backports
Pin-Priority: -1
PIN

if [ ! -f "$(mprs_cache)/apt-updated" ]; then
	note "apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed: Debian's archive is unreachable"
	touch "$(mprs_cache)/apt-updated"
fi

rustver=$(rustc --version | awk '{print $2}') ||
	die "rustc not found: install a Rust toolchain (rustup) first"

# Packages from the default suites (trinity: the system call fuzzer the
# guest runs, scripts/initramfs.sh; libnuma-dev and libcap-dev: the static
# libraries of the kernel's mm selftests, scripts/selftests-build.sh;
# xfsprogs: the XFS file system they need, scripts/selftests.sh).
pkgs=(build-essential bc flex bison libelf-dev libssl-dev cpio xz-utils
      python3 python3-ply python3-git git rsync kmod dwarves
      busybox-static b4 trinity libnuma-dev libcap-dev
      xfsprogs
      "clang-$LLVM_VER" "lld-$LLVM_VER" "llvm-$LLVM_VER" "libclang-$LLVM_VER-dev")
# ARCH=arm64: the cross C compiler with a static libc for the guest
# programs (the kernel itself builds with LLVM alone).
[ "$(mprs_arch)" != arm64 ] || pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	note "installing: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null ||
		die "apt-get install failed for: ${missing[*]}"
fi

# QEMU, all its packages at bookworm-backports' one version (ARCH=arm64:
# qemu-system-arm too); it replaces Debian 12's 7.2 where that is installed.
# An installed qemu-system-arm is upgraded with the rest even without
# ARCH=arm64, so that it is never left behind at 7.2.
qemu_pkgs=(qemu-system-x86 qemu-system-common qemu-system-data qemu-utils)
if [ "$(mprs_arch)" = arm64 ] ||
	dpkg-query -W -f='${Status}' qemu-system-arm 2>/dev/null | grep -q "ok installed"; then
	qemu_pkgs+=(qemu-system-arm)
fi
qemu_all_ok() {
	qemu_ok qemu-system-x86_64 &&
		{ [ "$(mprs_arch)" != arm64 ] || qemu_ok qemu-system-aarch64; }
}
if ! qemu_all_ok; then
	note "installing from bookworm-backports: ${qemu_pkgs[*]}"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports "${qemu_pkgs[@]}" >/dev/null ||
		die "apt-get install failed for: ${qemu_pkgs[*]} (bookworm-backports)"
	qemu_all_ok || die "QEMU 8.1 or later needed, still not installed"
fi

# Backports: the 7.3 kernel source and rust-src matching rustc.
bp=()
dpkg-query -W -f='${Status}' "linux-source-$KVER_SERIES" 2>/dev/null | grep -q "ok installed" ||
	bp+=("linux-source-$KVER_SERIES/trixie-backports")
if [ ! -d "/usr/src/rustc-$rustver/library" ]; then
	v=$(apt-cache madison rust-src | awk -v r="$rustver" '$3 ~ "^"r"\\+" {print $3; exit}')
	[ -n "$v" ] || die "no Debian rust-src for rustc $rustver (needed to build core for the kernel)"
	bp+=("rust-src=$v")
fi
if [ ${#bp[@]} -gt 0 ]; then
	note "installing from trixie-backports: ${bp[*]}"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		-t trixie-backports "${bp[@]}" >/dev/null ||
		die "apt-get install failed for: ${bp[*]}"
fi

# bindgen-cli from crates.io.
if ! bindgen --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	note "cargo install bindgen-cli $BINDGEN_VERSION"
	LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VER/lib \
		cargo install -q bindgen-cli --version "$BINDGEN_VERSION" --locked ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed (crates.io refused?)"
fi

# ARCH=arm64: the guest's arm64 user space (busybox, trinity and the libc
# it loads) from Debian's arm64 packages, unpacked into the cache.  A
# private apt state (lists, status, archives in the cache) reads the arm64
# package lists without adding the architecture to the host's dpkg.
if [ "$(mprs_arch)" = arm64 ] && [ ! -f "$(mprs_arm64_root)/.stamp" ]; then
	a=$(mprs_cache)/arm64
	note "fetching the guest's arm64 user space into $(mprs_arm64_root)"
	mkdir -p "$a/apt/lists/partial" "$a/apt/cache/archives/partial" "$a/debs"
	touch "$a/apt/status"
	o=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
	   -o "Dir::State::Lists=$a/apt/lists" -o "Dir::State::status=$a/apt/status"
	   -o "Dir::Cache=$a/apt/cache" -o APT::Sandbox::User=root)
	$SUDO apt-get "${o[@]}" -qq update || die "apt-get update (arm64 lists) failed"
	rm -f "$a"/debs/*.deb
	(cd "$a/debs" && $SUDO apt-get "${o[@]}" -qq download busybox-static trinity libc6) ||
		die "apt-get download of the arm64 busybox-static, trinity, libc6 failed"
	rm -rf "$(mprs_arm64_root)"
	for d in "$a"/debs/*.deb; do
		dpkg-deb -x "$d" "$(mprs_arm64_root)" || die "dpkg-deb -x $d failed"
	done
	touch "$(mprs_arm64_root)/.stamp"
fi

[ -n "$(mprs_kernel_tarball)" ] || die "linux-source-$KVER_SERIES installed but no tarball in /usr/src"
[ -d "$(mprs_rust_lib_src)" ] || die "rust-src installed but $(mprs_rust_lib_src) missing"
echo "$want_stamp" >"$stamp"
note "done"
