#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make mutation: inject known faults into the Rust walker (and, for the C
# fix at the start of the series, into the C walker), one at a time, and
# check that the test gate (KUnit + the guest checks) fails for each.
# The mutated file is restored after every mutation, and the tree and build
# are brought back to the unmutated state at the end.  Not part of CI.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(mprs_root)
out="$root/out/mutation"
mkdir -p "$out"
walker="$root/mm/mprotect_rs.rs"
# The C walker's lines of the series: patch 1 (the notifier range fix).
cfix=$(ls "$root"/patches/0001-*/edits.diff)
# The abstractions the walker is written against.
pgtable="$root/rust/kernel/mm/pgtable.rs"
# The guest boots without its stress runs and trinity (80 s of the 100 s a
# boot takes): a fault must be caught by the suites that compare the
# walkers; make test and make stress run the stress.
export GUEST_STRESS=0
saved=$(mktemp -d)
cp "$walker" "$saved/walker"
cp "$cfix" "$saved/cfix"
cp "$pgtable" "$saved/pgtable"
restore() { cp "$saved/walker" "$walker"; cp "$saved/cfix" "$cfix"; cp "$saved/pgtable" "$pgtable"; }
trap 'restore; rm -rf "$saved"' EXIT

# name|python expression that turns the walker source `s` into the mutant;
# sub(s, old, new) replaces the first `old` and fails if there is none.  A
# name starting with "C walker:" mutates patch 1's edits.diff instead, one
# starting with "pgtable:" rust/kernel/mm/pgtable.rs (caught by its doctests
# or its compile-fail proofs).
mutations=(
"notifier started per PMD instead of per PUD|sub(sub(s, '''                        range.as_mut().start(''', '''                        let _ = (&mut range, '''), '''
                if entry.is_huge() {''', '''
                let event = InvalidateEvent::ProtectionVma;
                let mut range = core::pin::pin!(InvalidateRange::new(event));
                range.as_mut().start(self.vma(), pmd.addr(), pmd.end());
                if entry.is_huge() {''')"
"notifier end skipped on the populate error path|sub(s, '''                    pages = ret;
                    break 'puds;''', '''                    pages = ret;
                    // SAFETY: Mutant: zeroes the started range (and its started flag) so that
                    // it is never ended; its drop reads nothing else.
                    unsafe { core::ptr::write_bytes(range.as_mut().get_unchecked_mut(), 0, 1) };
                    break 'puds;''')"
"partial PUD not split|sub(s, '''if pud.end().wrapping_sub(pud.addr()) != PUD_SIZE || self.split() {''', '''if pud.end().wrapping_sub(pud.addr()) > PUD_SIZE || self.split() {''')"
"write upgrade ignoring PageAnonExclusive|sub(s, '''let (exclusive, len) = batch.anon_exclusive_run(off);''', '''let (_, len) = batch.anon_exclusive_run(off);
            let exclusive = true;''')"
"uffd-wp marker not installed in none PTEs|sub(s, '''                        // SAFETY: A marker maps nothing and is written over a none entry.
                        unsafe { ptes.set(idx, Pte::uffd_wp_marker()) };''', '''                        let _ = Pte::uffd_wp_marker();''')"
"page count off by one|sub(s, '''*pages = pages.wrapping_add(nr as c_long);''', '''*pages = pages.wrapping_add(nr as c_long + 1);''')"
"device-private entries left writable|sub(s, '''Pte::from_softleaf(entry.readable_device_private())''', '''Pte::from_softleaf(entry)''')"
"NUMA hinting does not skip PROT_NONE entries|sub(s, '''&& (prot_numa || oldpte.uffd())''', '''&& oldpte.uffd()''')"
"populate failure of the P4D loop ignored|sub(s, '''            let ret = self.prepare(|| p4d.alloc_pud());
            if ret != 0 {
                return ret;
            }''', '''            let ret = self.prepare(|| p4d.alloc_pud());
            if ret != 0 {
                continue;
            }''')"
"C walker: notifier range restarted after a PUD at address 0 (the bug patch 1 fixes)|sub(s, '''+		if (!range_started) {''', '''+		if (!range_started || !range.start) {''')"
"soft-dirty rule of the write upgrade ignored|sub(s, '''if self.soft_dirty() && !pte.soft_dirty() {''', '''if self.soft_dirty() && !pte.soft_dirty() && pte.none() {''')"
"soft-dirty bit of a writable migration entry dropped|sub(s, '''if oldpte.swp_soft_dirty() {''', '''if oldpte.swp_soft_dirty() && oldpte.none() {''')"
"pgtable: pgd_range() accepts a range beyond the VMA|sub(s, '''if addr >= end || addr < vma.start() || end > vma.end() {''', '''if addr >= end || addr < vma.start() {''')"
"pgtable: slots are Copy again|sub(s, '''        pub struct \$slot<'a> {''', '''        #[derive(Clone, Copy)]
        pub struct \$slot<'a> {''')"
"pgtable: a run of PageAnonExclusive() pages one page too long|sub(s, '''        (expected, idx.wrapping_sub(off))''', '''        (expected, (idx + 1).min(self.nr).wrapping_sub(off))''')"
"-EAGAIN retry skips the populate step (the divergence of issue 13)|sub(s, '''if !self.populate() && entry.none() {''', '''if entry.none() {''')"
"-EAGAIN retried only where the PMD is to be populated|sub(s, '''                    if !self.populate() && entry.none() {
                        break;
                    }
                    continue;''', '''                    if !self.populate() && entry.none() {
                        break;
                    }
                    if self.populate() {
                        continue;
                    }
                    break;''')"
"huge PMD that change_huge_pmd() did not handle does not fall through|sub(s, '''                        if ret != 0 {
                            // The huge PMD was handled.''', '''                        if ret >= 0 {
                            // The huge PMD was handled.''')"
"PUD leaf gone at change_huge_pud() not walked again|sub(s, '''                if ret == 0 {
                    continue;
                }''', '''                if ret == 0 {
                    break;
                }''')"
"PFN of a write-upgraded sub-batch off by one page|sub(s, '''let mut ptent = ptent.advance_pfn(off);''', '''let mut ptent = ptent.advance_pfn(off + usize::from(off > 0));''')"
"TLB flush (tlb_flush_pte_range()) dropped where the write upgrade applies|sub(s, '''if Pte::needs_flush(oldpte, ptent) {''', '''if Pte::needs_flush(oldpte, ptent) && !set_write {''')"
"arm64: a folio's batch cut at 8 PTEs (a contpte block committed in two halves)|sub(s, '''        let max_nr = ptes.len() - first.idx();
        let batch = folio_batch(folio, ptes, first, page, max_nr, true);''', '''        let max_nr = (ptes.len() - first.idx()).min(8);
        let batch = folio_batch(folio, ptes, first, page, max_nr, true);''')"
"pgtable: the notifier range's end not drop-checked against the VMA's borrow (the lifetime off the Drop type)|sub(sub(s, '''    range: NotifierRange<'a>,
    event: InvalidateEvent,''', '''    range: NotifierRange<'static>,
    _vma: PhantomData<&'a VmaRef>,
    event: InvalidateEvent,'''), '''            event,
            _not_send: NotThreadSafe,
        }''', '''            _vma: PhantomData,
            event,
            _not_send: NotThreadSafe,
        }''')"
"NUMA_HUGE_PTE_UPDATES not counted|sub(s, '''            count_numa_huge_pte_updates(nr_huge_updates);''', '''            count_numa_huge_pte_updates(0);''')"
)

# MUTATIONS="1 3" runs only those (numbered from 1).  A fault named
# "arm64: ..." is caught only by arm64's cases (contpte): it runs with
# ARCH=arm64, where by default only those run and the gate is the arm64
# kernel's KUnit suites (make kunit ARCH=arm64; the arm64 guest has no
# case such a fault reaches that KUnit lacks); the others run on x86_64.
# ARM64_ALSO: faults of x86_64 that arm64 runs by default too, because what
# catches them is compared differently there: 21's flushes (on x86 in the
# gathers, on arm64, where tlb_end_vma() has flushed the gather, in the
# flushes themselves).
ARM64_ALSO=" 21 "
arch=$(mprs_arch)
only=" ${MUTATIONS:-} "
caught=0
tried=0
i=0
for m in "${mutations[@]}"; do
	i=$((i + 1))
	name=${m%%|*}
	if [ "$only" = "  " ]; then
		case "$arch:$name" in
		x86_64:arm64:*) echo "mutation $i ($name): arm64 only"; continue ;;
		arm64:arm64:*) ;;
		arm64:*) [[ "$ARM64_ALSO" == *" $i "* ]] || continue ;;
		esac
	else
		[[ "$only" == *" $i "* ]] || continue
	fi
	tried=$((tried + 1))
	expr=${m#*|}
	restore
	target=$walker
	case "$name" in "C walker:"*) target=$cfix ;; "pgtable:"*) target=$pgtable ;; esac
	python3 - "$target" "$expr" <<'PY' || { echo "mutation $i ($name): does not apply"; continue; }
import sys
p, expr = sys.argv[1], sys.argv[2]
s = open(p).read()


def sub(text, old, new):
    if old not in text:
        sys.exit(1)
    return text.replace(old, new, 1)


t = eval(expr)
if t == s:
    sys.exit(1)
open(p, "w").write(t)
PY
	log="$out/$i.log"
	echo "==> mutation $i: $name"
	if "$here/prepare-tree.sh" >"$log" 2>&1 && "$here/kunit.sh" >>"$log" 2>&1 &&
			{ [ "$arch" != x86_64 ] || { "$here/guest.sh" >>"$log" 2>&1 &&
				"$here/compile-fail.sh" >>"$log" 2>&1; }; }; then
		echo "    NOT CAUGHT: the tests passed with this fault (log: out/mutation/$i.log)"
	elif grep -q "kernel build failed\|printed .* warning line" "$log"; then
		echo "    NOT CAUGHT: the mutant did not build (log: out/mutation/$i.log)"
	elif evidence=$(grep -E '^(check-results: .*(FAIL|ERROR|MISSING|SKIPPED)|.*not ok|FAIL |splat-check: .*: [1-9][0-9]* splat|compile-fail: .*FAIL)' "$log"); then
		echo "    caught: $(echo "$evidence" | head -n 3 | tr '\n' ' ')"
		caught=$((caught + 1))
	else
		# The run failed without a test saying so (a time-out, QEMU): no verdict.
		echo "    INCONCLUSIVE: the run failed, but no test failed (log: out/mutation/$i.log)"
	fi
done
restore
echo "==> restoring the unmutated tree"
"$here/prepare-tree.sh" >/dev/null && "$here/kunit.sh" >"$out/restore.log" 2>&1 ||
	echo "mutation: WARNING: the restored tree did not pass (out/mutation/restore.log)"
echo "mutation: $caught of $tried injected faults caught"
[ "$caught" -eq "$tried" ]
