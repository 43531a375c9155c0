# SPDX-License-Identifier: GPL-2.0
#
# mprotect-rs: a Rust implementation of mprotect's page-table walk, carried
# as an RFC patch series for Linux 7.3.  See README.md.
#
#   make run      set up, prepare the tree, build the test kernel, boot it
#                 under QEMU, run KUnit, then boot the guest: the user-space
#                 checks under each walker and the KUnit suite that needs
#                 its devices, then the kernel's mm selftests under each
#                 walker (the fast kernel, for iterating)
#   make kunit    the first step of make run alone: build the test kernel
#                 and run its KUnit suites
#   ARCH=arm64    with run, kunit, guest, debug, test, bench, trace, mutation
#                 and kunit-repeat:
#                 the arm64 kernels, cross-built with the same LLVM, under
#                 qemu-system-aarch64 (make test ARCH=arm64: make run and
#                 make debug there, without the mm selftests; see README)
#   make debug    the same on the debug kernel (KASAN, lockdep, DEBUG_VM,
#                 page-table check: tests/debug.kunitconfig)
#   make selftests  the kernel's mm selftests of tests/selftests/plan.txt
#                 under each walker, alone, on the kernel `make run` built
#                 (MPRS_KERNEL=debug: `make debug`'s); part of run and debug
#   make selftests-survey  every program of the plan under the C walker,
#                 counting its change_protection() calls
#                 (results/selftests-survey.md; not part of make test)
#   make guest-repeat  the guest RUNS=20 times in a row (MPRS_KERNEL=debug
#                 for the debug kernel; not part of make test)
#   make kunit-repeat  the KUnit boot of make kunit RUNS=20 times in a row
#                 (MPRS_KERNEL=debug for the debug kernel; not part of make
#                 test)
#   make test     the full gate: `make run`, `make debug`, the configuration
#                 that once broke the build (tests/configs/regress.config),
#                 the compile-fail proofs of kernel::mm::pgtable, `make
#                 rustdoc` without warnings, then the series through
#                 checkpatch.pl --strict and rustfmt over the Rust code
#   make compile-fail  snippets that misuse kernel::mm::pgtable must fail to
#                 compile, with the named error, and compile without the
#                 offending line (tests/compile-fail/, against the test kernel)
#   make rustdoc  the kernel's `make rustdoc` in the test kernel's build;
#                 fails on any warning
#   make series   write the series (git format-patch --rfc --cover-letter)
#                 to series/
#   make configs  build the series in every configuration of tests/configs/
#                 (results/configs.md; not part of make test)
#   make bisect-check  build every prefix of the series, run its KUnit
#                 suites (results/bisect.md; not part of make test)
#   make mutation inject faults into the Rust walker, one at a time, and
#                 check that the tests catch each (not part of make test)
#   make bench    Rust walker against C walker in the same boot, written
#                 to results/ (not part of make test)
#   make profile  the workloads of make bench sampled with /proc/profile
#                 under -icount, each sample resolved to the (inlined)
#                 function it hit: results/profile.md (not part of make test)
#   make trace    the workloads of make bench, cut down, every
#                 change_protection() call single-stepped through QEMU's
#                 gdbstub: each walker's instructions counted, by
#                 function and line (results/trace.md; TRACE_ONLY=names;
#                 not part of make test); ARCH=arm64: from QEMU's
#                 instruction log, by function (results/arm64/trace.md)
#   make stress   the stress program (tests/guest/stress.c) and trinity
#                 under each walker, STRESS_MINUTES (30) in all, on the
#                 debug kernel if `make debug` built it, else the test
#                 kernel; results/stress.md (not part of make test, whose
#                 guest boot runs both for 20 s each)
#
# Variables: KERNEL_SRC=/path/to/git/tree (apply to your own tree),
# KERNEL_BASE=<commit> (its base, default its HEAD), MPRS_CACHE (cache
# directory, default ~/.cache/mprotect-rs), JOBS, MPRS_ACCEL=kvm|tcg,
# STRESS_MINUTES and STRESS_SEED (make stress).

SHELL := /bin/bash
S := scripts

# ARCH=arm64: `make run`, `make kunit`, `make guest`, `make debug`, `make
# test`, `make bench` and `make mutation` (its arm64 faults) know it.  On
# arm64, run and debug are KUnit and the guest, without the mm selftests
# (not cross-built yet), and `make test ARCH=arm64` is those two only: the
# rest of the gate (configurations, compile-fail, rustdoc, checkpatch,
# rustfmt) does not depend on the architecture and runs in `make test`.
MPRS_ARM64 := $(filter-out x86_64 x86,$(or $(ARCH),x86_64))
ifneq ($(MPRS_ARM64),)
ifneq ($(filter-out run kunit guest debug test mutation bench trace kunit-repeat setup prepare clean,$(or $(MAKECMDGOALS),all)),)
$(error ARCH=$(ARCH): only `make run`, `kunit`, `guest`, `debug`, `test`, `bench`, `trace`, `mutation` and `kunit-repeat` run on $(ARCH))
endif
endif
# The mm selftests step of run and debug, on x86_64 only.
MPRS_SELFTESTS := $(if $(MPRS_ARM64),,$(S)/selftests.sh)

.PHONY: all run kunit debug selftests selftests-survey guest-repeat kunit-repeat test setup prepare guest series checkpatch rustfmtcheck regress configs \
	compile-fail rustdoc \
	bisect-check mutation bench profile trace stress clean

all: run

setup:
	@$(S)/setup.sh

prepare: setup
	@$(S)/prepare-tree.sh

run: prepare
	@$(S)/kunit.sh
	@$(S)/guest.sh
	$(if $(MPRS_SELFTESTS),@$(MPRS_SELFTESTS))

# The first step of `make run` alone: configure, build and boot the test
# kernel, and run its KUnit suites; with ARCH=arm64, the arm64 kernel under
# qemu-system-aarch64.
kunit: prepare
	@$(S)/kunit.sh

# What `make run` does, on the debug kernel (tests/debug.kunitconfig).
debug: prepare
	@MPRS_KERNEL=debug $(S)/kunit.sh
	@MPRS_KERNEL=debug $(S)/guest.sh
	$(if $(MPRS_SELFTESTS),@MPRS_KERNEL=debug $(MPRS_SELFTESTS))

# The guest alone, on the kernel that `make run` built (MPRS_KERNEL=debug:
# on the one `make debug` built).
guest:
	@$(S)/guest.sh

# The mm selftests alone, on the kernel that `make run` built
# (MPRS_KERNEL=debug: on the one `make debug` built).
selftests: setup
	@$(S)/selftests.sh

# Not part of `make test`: which programs of tools/testing/selftests/mm reach
# change_protection(), on the kernel that `make run` built.
selftests-survey: setup
	@SELFTESTS_MODE=survey $(S)/selftests.sh

# The guest RUNS times in a row (20), on MPRS_KERNEL's kernel (test or debug),
# after `make run` or `make debug`; results/guest-repeat-KERNEL.md.
guest-repeat:
	@$(S)/guest-repeat.sh

# The KUnit suites of `make kunit` RUNS times in a row (20), each in a boot of
# its own, on MPRS_KERNEL's kernel (test or debug), after `make run` or
# `make debug` (ARCH=arm64 too); results/[arm64/]kunit-repeat-KERNEL.md.
kunit-repeat:
	@$(S)/kunit-repeat.sh

series: prepare
	@$(S)/series.sh

checkpatch: series
	@$(S)/checkpatch.sh

rustfmtcheck: prepare
	@$(S)/rustfmtcheck.sh

# The configuration that broke the build once, built on every make test.
regress: prepare
	@$(S)/configs.sh regress

# After `make run`, whose build they use.
compile-fail:
	@$(S)/compile-fail.sh

rustdoc:
	@$(S)/rustdoc.sh

ifeq ($(MPRS_ARM64),)
test: run debug regress compile-fail rustdoc checkpatch rustfmtcheck
	@echo "make test: all checks passed"
else
test: run debug
	@echo "make test ARCH=$(ARCH): all checks passed"
endif

# Not part of `make test`: every configuration of tests/configs/.
configs: prepare
	@$(S)/configs.sh; rc=$$?; cp out/configs/summary.md results/configs.md; exit $$rc

# Not part of `make test`: every prefix of the series.
bisect-check: prepare
	@$(S)/bisect-check.sh; rc=$$?; cp out/bisect/summary.md results/bisect.md; exit $$rc

# Not part of `make test`: injects faults into the Rust walker one at a time
# and checks that the tests catch each.
mutation: setup
	@$(S)/mutation.sh

# Not part of `make test`: the Rust walker against the C walker in one boot
# (guest instructions and wall-clock), written to results/.
bench: run
	@$(S)/bench.sh

# Not part of `make test`: where each walker's instructions go, per page, on
# the workloads of make bench (results/profile.md).
profile: prepare
	@$(S)/profile.sh

# Every instruction of each walker on the workloads of make bench, cut down,
# counted by single-stepping (results/trace.md); with ARCH=arm64, on the
# test kernel (built and its KUnit suites run first), from QEMU's own
# instruction log (results/arm64/trace.md).
trace: prepare
	$(if $(MPRS_ARM64),@$(S)/kunit.sh && $(S)/trace-exec.sh,@$(S)/trace.sh)

# Not part of `make test`: the stress program and trinity, STRESS_MINUTES
# (30) in all, STRESS_SEED; on the kernel `make debug` built, else on the
# one `make run` built (MPRS_KERNEL=test|debug chooses); results/stress.md.
stress: setup
	@$(S)/stress.sh

clean:
	rm -rf out series
