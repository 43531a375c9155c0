# SPDX-License-Identifier: GPL-2.0
# Shared paths and settings for the mprotect-rs scripts.  Sourced, not run.

mprs_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }
mprs_cache() { echo "${MPRS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mprotect-rs}"; }
# The kernel tree the series is applied to.
mprs_tree() { echo "${KERNEL_SRC:-$(mprs_cache)/linux}"; }
# The kernels `make test` builds and boots: MPRS_KERNEL=test (the default),
# tests/mprotect-rs.kunitconfig, or MPRS_KERNEL=debug, the same plus
# tests/debug.kunitconfig (KASAN, lockdep, DEBUG_VM, page-table check).
mprs_kernel() {
	case ${MPRS_KERNEL:-test} in
	test|debug) echo "${MPRS_KERNEL:-test}" ;;
	*) echo "MPRS_KERNEL must be test or debug, not '$MPRS_KERNEL'" >&2; return 1 ;;
	esac
}
# The architecture: ARCH=x86_64 (the default) or ARCH=arm64 (cross-built
# with the same LLVM, booted under qemu-system-aarch64).
mprs_arch() {
	case ${ARCH:-x86_64} in
	x86_64|x86) echo x86_64 ;;
	arm64) echo arm64 ;;
	*) echo "ARCH must be x86_64 or arm64, not '$ARCH'" >&2; return 1 ;;
	esac
}
# What is not x86_64 gets its name added to build and output directories.
mprs_arch_suffix() {
	local a
	a=$(mprs_arch) || return 1
	[ "$a" = x86_64 ] || echo "-$a"
}
# The kernel image QEMU boots, relative to the build directory.
mprs_image() {
	case $(mprs_arch) in
	x86_64) echo arch/x86/boot/bzImage ;;
	arm64) echo arch/arm64/boot/Image ;;
	esac
}
# The guest's arm64 user space (busybox, trinity, libc), unpacked from
# Debian's arm64 packages by scripts/setup.sh.
mprs_arm64_root() { echo "$(mprs_cache)/arm64/root"; }
# mprs_x86_only WHAT: what only runs on x86_64 so far refuses ARCH=arm64.
mprs_x86_only() {
	[ "$(mprs_arch)" = x86_64 ] || {
		echo "$1: ARCH=$(mprs_arch) is not supported yet (make run, kunit, guest, debug, test, bench and mutation are)" >&2
		exit 1
	}
}
# The kernel's build directory (O=), outside every source tree.
mprs_build() {
	local k a
	k=$(mprs_kernel) || return 1
	a=$(mprs_arch_suffix) || return 1
	if [ -n "${KBUILD_OUTPUT_DIR:-}" ]; then
		echo "$KBUILD_OUTPUT_DIR"
	elif [ "$k" = test ]; then
		echo "$(mprs_cache)/build$a"
	else
		echo "$(mprs_cache)/build-$k$a"
	fi
}
# Where the runs of that kernel write their logs and results.
mprs_out() {
	local k a
	k=$(mprs_kernel) || return 1
	a=$(mprs_arch) || return 1
	if [ -n "${MPRS_OUT:-}" ]; then
		echo "$MPRS_OUT"
	elif [ "$a" != x86_64 ]; then
		if [ "$k" = test ]; then echo "$(mprs_root)/out/$a"; else echo "$(mprs_root)/out/$a/$k"; fi
	elif [ "$k" = test ]; then
		echo "$(mprs_root)/out"
	else
		echo "$(mprs_root)/out/$k"
	fi
}
# Its configuration fragments, in the order kunit.py merges them: the common
# one, the architecture's, the debug kernel's.
mprs_kunitconfigs() {
	local k a
	k=$(mprs_kernel) || return 1
	a=$(mprs_arch) || return 1
	echo "${MPRS_KUNITCONFIG:-$(mprs_root)/tests/mprotect-rs.kunitconfig}"
	echo "$(mprs_root)/tests/arch/$a.kunitconfig"
	[ "$k" = test ] || echo "$(mprs_root)/tests/$k.kunitconfig"
}
mprs_kernel_tarball() { ls /usr/src/linux-source-7.3.tar.* 2>/dev/null | head -n1; }
mprs_rust_lib_src() { echo "/usr/src/rustc-$(rustc --version | awk '{print $2}')/library"; }
mprs_kernel_version() {
	make -s -C "$1" kernelversion 2>/dev/null
}

# The test kernel's configuration as a .config fragment: the kunitconfigs and
# the options kunit.py adds for x86_64 (tests/qemu/x86_64.py), for builds
# that do not go through kunit.py (make configs, bisect-check, the bench
# baseline).
mprs_test_config() {
	cat "$(mprs_root)/tests/mprotect-rs.kunitconfig"
	cat "$(mprs_root)/tests/arch/$(mprs_arch).kunitconfig"
	if [ "$(mprs_arch)" = x86_64 ]; then
		echo CONFIG_SERIAL_8250=y
		echo CONFIG_SERIAL_8250_CONSOLE=y
	fi
}

# mprs_worktree TREE DIR COMMIT: DIR, a detached work tree of the git tree
# TREE, checked out at COMMIT.  An existing work tree of TREE is reused (its
# files keep their times, so builds from it stay incremental); anything else
# at DIR is replaced.
mprs_worktree() {
	local common
	common=$(git -C "$1" rev-parse --path-format=absolute --git-common-dir) || return 1
	if [ ! -f "$2/.git" ] ||
	   [ "$(git -C "$2" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)" != "$common" ]; then
		rm -rf "$2"
		git -C "$1" worktree prune
		git -C "$1" worktree add -q -f --detach "$2" "$3" || return 1
	fi
	git -C "$2" checkout -q -f --detach "$3"
}

# Directories of this repository that mirror kernel paths.
MPRS_OVERLAY_DIRS="include rust mm"

# Identity and date of the generated commits: MPRS_AUTHOR_NAME and
# MPRS_AUTHOR_EMAIL, else git config's user.name and user.email, else a
# placeholder; the date is fixed, so that the same repository state and
# identity always give the same commit ids.  The messages in patches/ are
# signed off by the placeholder, which prepare-tree.sh replaces by this
# identity.
MPRS_PLACEHOLDER_IDENT="mprotect-rs developers <mprotect-rs@example.org>"
MPRS_AUTHOR_NAME=${MPRS_AUTHOR_NAME:-$(git config user.name || echo "mprotect-rs developers")}
MPRS_AUTHOR_EMAIL=${MPRS_AUTHOR_EMAIL:-$(git config user.email || echo "mprotect-rs@example.org")}
MPRS_DATE=${MPRS_DATE:-"2026-11-23T00:00:00Z"}

# Toolchain: clang/LLVM 22 (the same LLVM major as rustc, which makes
# CONFIG_RUST_INLINE_HELPERS available).
MPRS_LLVM=-22
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-22/lib}
export RUST_LIB_SRC=${RUST_LIB_SRC:-$(mprs_rust_lib_src)}

# The kernel command line of the KUnit boots (scripts/kunit.sh, bisect-check):
# 64K mTHP folios where MADV_HUGEPAGE asks for them (the random layouts and
# anon_mthp_sub_batches use them; naming any size in thp_anon= turns the
# others off, so PMD THPs too), and four 2 MiB hugetlb pages for
# hugetlb_not_walked.
# panic=-1: a boot that panics ends at once (kunit.py passes -no-reboot)
# rather than at kunit.py's time-out.
MPRS_KUNIT_CMDLINE="thp_anon=64K:madvise thp_anon=2M:inherit hugepages=4 panic=-1"
mprs_kunit_kernel_args() {
	local a
	for a in $MPRS_KUNIT_CMDLINE; do printf -- '--kernel_args\n%s\n' "$a"; done
}

# The initramfs guests (scripts/guest.sh, scripts/bench.sh): the QEMU machine
# of tests/qemu/args and the kernel command line.  memmap= turns the 1 GiB of
# RAM at 4 GiB (above the PCI hole of a 4 GiB pc machine) into soft-reserved
# memory, which dax_hmem makes a device-DAX device; brd makes a 64 MiB RAM
# disk, /dev/ram0, which tests/guest/init turns into swap.  loglevel=5
# prints warnings and worse (scripts/splat-check.py reads them), not the
# boot's informational messages.
# arm64 (ARCH=arm64): the PL011 console, and no device-DAX (memmap= is
# x86-only, and arm64 has no PUD leaves for it to serve).
mprs_console=ttyS0
mprs_memmap=" memmap=1G%4G+0xefffffff"
if [ "$(mprs_arch 2>/dev/null)" = arm64 ]; then
	mprs_console=ttyAMA0
	mprs_memmap=
fi
MPRS_GUEST_CMDLINE="console=$mprs_console rdinit=/init loglevel=5 kunit.filter_glob=mprotect_rs_guest panic=-1$mprs_memmap brd.rd_nr=1 brd.rd_size=65536"
# The mm selftests' guest (scripts/selftests.sh): no KUnit suite at boot,
# no device-DAX.
MPRS_SELFTESTS_CMDLINE="console=$mprs_console rdinit=/init loglevel=5 kunit.enable=0 panic=-1 brd.rd_nr=1 brd.rd_size=65536"
# mprs_qemu_args [VCPUS_PER_NODE]: those arguments, one per line; with
# VCPUS_PER_NODE (1 in the file), as many vCPUs (a core each) on each node.
mprs_qemu_args() {
	local v=${1:-1}
	grep -v '^#' "$(mprs_root)/tests/qemu/args$(mprs_arch_suffix)" | sed '/^$/d' |
		awk -v v="$v" '
		v > 1 && /^2,sockets=2,cores=1,threads=1$/ {
			print 2 * v ",sockets=2,cores=" v ",threads=1"; next }
		v > 1 && /^node,nodeid=[01],cpus=[01],/ {
			n = substr($0, 13, 1)
			sub(/cpus=[01]/, "cpus=" n * v "-" n * v + v - 1) }
		{ print }'
}

# The QEMU system emulator of the architecture.
mprs_qemu() {
	case $(mprs_arch) in
	x86_64) echo qemu-system-x86_64 ;;
	arm64) echo qemu-system-aarch64 ;;
	esac
}

# mprs_boot_guest ACCEL KERNEL INITRAMFS TIMEOUT_S LOG APPEND [QEMU_ARG...]:
# boot KERNEL with INITRAMFS and the command line APPEND on the machine of
# tests/qemu/args (args-arm64 for ARCH=arm64; MPRS_VCPUS_PER_NODE vCPUs on each node, 1 by default),
# plus QEMU_ARGs, under ACCEL (scripts/kvm-probe.sh's answer), the console
# into LOG, killed after TIMEOUT_S seconds; returns QEMU's exit status
# (scripts/guest.sh, scripts/stress.sh, scripts/selftests.sh).
mprs_boot_guest() {
	local accel=$1 kernel=$2 initramfs=$3 timeout_s=$4 log=$5 append=$6
	local args try rc
	shift 6
	mapfile -t args < <(mprs_qemu_args "${MPRS_VCPUS_PER_NODE:-1}")
	args+=("$@")
	rm -f "${log%.log}-boot-oops.log"
	for try in 1 2; do
		rc=0
		# What the boot needs new each time (selftests.sh: its XFS image).
		${MPRS_BEFORE_BOOT:-:}
		PATH="$(mprs_root)/scripts/qemu-bin:$PATH" MPRS_ACCEL=$accel timeout -s KILL "$timeout_s" \
			"$(mprs_qemu)" -nodefaults -nographic -no-reboot -serial stdio \
			-monitor none "${args[@]}" -kernel "$kernel" -initrd "$initramfs" \
			-append "$append" </dev/null >"$log" 2>&1 || rc=$?
		mprs_boot_again "$accel" "$try" "$log" "${log%.log}-boot-oops.log" || break
	done
	return "$rc"
}

# mprs_boot_again ACCEL TRY LOG KEEP: after boot TRY (1 or 2) under ACCEL,
# whose console is LOG, whether to boot again: only after the first, only
# under TCG, and only when LOG failed of QEMU's int3 oops
# (mprs_tcg_boot_oops).  If so, LOG moves to KEEP and the reason goes to
# stderr.  The one place every boot loop asks (mprs_boot_guest(), kunit.sh's
# boot(), bench.sh's run()).
mprs_boot_again() {
	local accel=$1 try=$2 log=$3 keep=$4
	[ "$try" = 1 ] && [ "$accel" = tcg ] && mprs_tcg_boot_oops "$log" || return 1
	mv "$log" "$keep"
	echo "    the boot died of QEMU's int3 oops (TCG, see ${keep#"$(mprs_root)"/}):" \
		"booted again" >&2
}

# mprs_tcg_boot_oops LOG: whether the console LOG failed first and only of
# QEMU's int3 oops: a fallback, since scripts/setup.sh installs QEMU 10.0,
# which has the fix.  QEMU 7.2's multi-threaded TCG (Debian 12's) can run a
# stale translation of code that the kernel is patching (text_poke_bp() puts
# an int3 there first, then the new bytes): the vCPU traps to an int3 that
# memory no longer holds, the kernel finds no patch in progress, oopses and
# panics (ClangBuiltLinux/boot-utils#111, fixed in QEMU 8.1).  Static keys
# flip at boot (NUMA balancing) and under trinity, so it hits at boot or in
# the middle of a run (results/selftests-tcg-boot-oops.txt,
# guest-tcg-oops.txt, bench-tcg-boot-oops.txt).  The signature, all of it:
# an "Oops: int3" whose "Code:" line shows, just before the byte at RIP (the
# one after the int3, in <>), not cc but the patched instruction; no
# walker (change_protection, mprotect, rust_) in its report, which ends
# ("end trace"); and no failed case, warning, BUG, KASAN or UBSAN report,
# other oops, panic or stack dump before it.  A real int3 left in memory (a
# kprobe, the cc fill between functions, after a return thunk) reads cc.
# Every boot loop boots again, once, after such a log (mprs_boot_again),
# keeps it beside the second (*-boot-oops.log, bench's *-boot-oops.txt),
# and judges the second as any other: a second such oops fails the run.
mprs_tcg_boot_oops() {
	awk '!oops && /Oops: int3/ { oops = 1; next }
	     !oops && /not ok [0-9]|WARNING:|BUG:|Oops|KASAN:|UBSAN:|Kernel panic|panicked at|Call Trace:/ { exit 1 }
	     oops && !code && /Code: .*</ { code = $0; sub(/ <.*/, "", code); sub(/.* /, "", code) }
	     oops && /change_protection|mprotect|rust_/ { exit 1 }
	     oops && /---\[ end trace/ { done = 1; exit (code == "" || code == "cc") }
	     END { if (!done) exit 1 }' "$1"
}
# mprs_free_port: a free TCP port on the loopback, for QEMU's gdbstub.
mprs_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# mprs_wait_port PORT: wait (up to 10 s) until something listens on PORT of
# the loopback, as QEMU's gdbstub does once QEMU has started.
mprs_wait_port() {
	local _
	for _ in $(seq 50); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null &&
			return 0
		sleep 0.2
	done
	return 1
}
