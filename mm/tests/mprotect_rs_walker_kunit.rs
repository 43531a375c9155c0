// SPDX-License-Identifier: GPL-2.0

//! KUnit tests comparing the Rust and the C mprotect walkers.
//!
//! Each case builds the same memory layout twice in a KUnit-owned mm, once per walker, then,
//! with that walker selected, changes its protection through `mprotect()` and through
//! `change_protection()` directly. After each step it records every page's mapping as the
//! kernel's `walk_page_range()` reads it (`mprotect_snapshot_for_kunit()`, not the code under
//! test): none, a PTE, a non-present entry, a PMD, PUD or hugetlb leaf, with every bit the
//! protection change touches or keeps (soft-dirty included), and whether the entry maps the
//! same page as in the step before. It also records the count that `change_protection()`
//! returned, and the MMU notifier invalidations of the mprotect kind that an `mmu_notifier`
//! registered on the mm saw. The case checks what it expects of the result, then that both
//! walkers produced the same records.

use kernel::prelude::*;

/// The prefix of this crate's `pr_*!` messages (a crate without `module!` defines its own).
const __LOG_PREFIX: &[u8] = b"mprotect_rs_walkers\0";

// The crate root is a file among others in mm/tests/: its modules are in a directory of its name.
#[cfg(CONFIG_ARM64_CONTPTE)]
#[path = "mprotect_rs_walker_kunit/contpte.rs"]
mod contpte;
#[path = "mprotect_rs_walker_kunit/guest.rs"]
mod guest;
#[path = "mprotect_rs_walker_kunit/harness.rs"]
mod harness;
#[path = "mprotect_rs_walker_kunit/races.rs"]
mod races;

#[kunit_tests(mprotect_rs_walkers)]
mod tests {
    use crate::harness::*;
    use core::{ffi::c_void, ptr};
    use kernel::{
        bindings,
        ffi::{c_int, c_long},
        mm::{
            pgtable::{InvalidateEvent, InvalidateRange},
            virt::VmaRef,
        },
        page::PAGE_SIZE,
        prelude::*,
        uapi::{
            MADV_GUARD_INSTALL, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_NORESERVE, MAP_PRIVATE,
            MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE,
        },
    };

    /// 4K anonymous pages, every third one faulted in: read-only, read-write (the write upgrade
    /// makes exclusive pages writable again), `PROT_NONE`, and `change_protection()` counts.
    #[test]
    fn anon_4k_sparse() -> Result {
        const NR: usize = 96;
        let rust = under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = map_4k(rec, len, 0)?;
            for i in (0..NR).step_by(3) {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
            let faulted = NR.div_ceil(3);

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, addr + len)?;
            assert_eq!(
                count_entry(&ro, |e| matches!(e, Entry::Pte { write: false, .. })),
                faulted
            );
            assert_eq!(count_entry(&ro, |e| *e == Entry::None), NR - faulted);
            run.count(change(addr, addr + len, 0))?;
            assert_eq!(run.counts[0], faulted as c_long);

            assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, addr + len)?;
            let writable = |e: &Entry| {
                matches!(
                    e,
                    Entry::Pte {
                        write: true,
                        dirty: true,
                        ..
                    }
                )
            };
            assert_eq!(count_entry(&rw, writable), faulted);

            assert_eq!(mprotect(addr, len, PROT_NONE), 0);
            let none = snapshot(addr, addr + len)?;
            let protnone = |e: &Entry| matches!(e, Entry::Pte { protnone: true, .. });
            assert_eq!(count_entry(&none, protnone), faulted);
            run.count(change(addr, addr + len, 0))?;

            run.record(ro)?;
            run.record(rw)?;
            run.record(none)?;
            Ok(())
        })?;
        // Three mprotect() calls and two direct changes: one start and one end each.
        assert_eq!(rust.inval_total, 2 * 5);
        // Each walk leaves its flush in the gather: every change of `_PAGE_RW` or
        // `_PAGE_PRESENT` is flushed, from the first faulted page to the last, as PTEs; the
        // direct changes to the VMA's own protection change nothing, so flush nothing.
        // The gather is still there to read only where it outlives the VMA
        // (`MMU_GATHER_MERGE_VMAS`, x86); elsewhere (arm64) `tlb_end_vma()` has flushed and
        // reset it, so every gather reads empty, and the flushes below are what is compared.
        assert_eq!(rust.gather_total, 5);
        let span = ((NR - 3 + 1) * PAGE_SIZE) as u64;
        if cfg!(CONFIG_MMU_GATHER_MERGE_VMAS) {
            let gather: Gather = [0, span, GATHER_PTES, 0];
            assert_eq!(rust.gathers[0], gather);
            assert_eq!(rust.gathers[1], [0; GATHER_WORDS]);
            assert_eq!(rust.gathers[2], gather);
            assert_eq!(rust.gathers[3], gather);
            assert_eq!(rust.gathers[4], [0; GATHER_WORDS]);
        } else {
            assert!(rust.gathers[..5].iter().all(|g| *g == [0; GATHER_WORDS]));
        }
        // The flushes, on both architectures the same three: x86 flushes each gather that is
        // not empty in `tlb_finish_mmu()`, arm64 in `tlb_end_vma()`, and arm64's
        // `pte_needs_flush()` too leaves out the two direct changes, which change no bit.
        assert_eq!(rust.flushes[..], [[0, span]; 3]);
        Ok(())
    }

    /// A PMD-mapped THP: fully covered (change_huge_pmd()), then a one-page change that makes
    /// the walker split it and continue at the PTE level, then the whole PTE-mapped large folio
    /// again (batched).
    #[test]
    fn thp_pmd_full_split_batch() -> Result {
        under_each_walker(|run, rec| {
            let len = 2 * PMD_SIZE;
            let (map, addr) = map_touched_thp(rec)?;
            let end = addr + PMD_SIZE;
            // Keep khugepaged from collapsing the folio again once it is split.
            madvise(map, len, MADV_NOHUGEPAGE)?;
            let before = snapshot(addr, end)?;
            // The scenario needs a THP; without one it tests nothing.
            assert!(matches!(before[0], Entry::Pmd { write: true }));

            assert_eq!(mprotect(map, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert!(ro.iter().all(|e| *e == Entry::Pmd { write: false }));
            run.count(change(addr, end, 0))?;
            assert_eq!(run.counts[0], (PMD_SIZE / PAGE_SIZE) as c_long);

            // One page in the middle: the walker splits the PMD, then changes one PTE.
            run.count(change(addr + PAGE_SIZE, addr + 2 * PAGE_SIZE, 0))?;
            assert_eq!(run.counts[1], 1);
            let split = snapshot(addr, end)?;
            assert!(split
                .iter()
                .all(|e| matches!(e, Entry::Pte { write: false, .. })));

            // The PTE-mapped large folio: read-write with the write upgrade, in batches.
            assert_eq!(mprotect(map, len, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            assert!(rw
                .iter()
                .all(|e| matches!(e, Entry::Pte { write: true, .. })));
            run.count(change(addr, end, TRY_CHANGE_WRITABLE))?;
            assert_eq!(run.counts[2], (PMD_SIZE / PAGE_SIZE) as c_long);
            assert_eq!(peek(addr)?, 1);

            run.record(before)?;
            run.record(ro)?;
            run.record(split)?;
            run.record(rw)?;
            Ok(())
        })?;
        Ok(())
    }

    /// The notifier lives in the PUD loop: no invalidation where no PUD is populated, one per
    /// call (never one per PMD), from the first populated PUD to the end of the range within
    /// its P4D.
    #[test]
    fn sparse_notifier_ranges() -> Result {
        let rust = under_each_walker(|run, rec| {
            let len = 4 * PUD_SIZE;
            let addr = map_4k(rec, len, MAP_NORESERVE)?;
            let end = addr + len;

            // Nothing populated: no invalidation at all.
            run.count(change(addr, end, 0))?;
            assert_eq!(run.counts[0], 0);

            // Two pages in different PMDs of the third GiB, one in the fourth.
            let first = addr + 2 * PUD_SIZE + PUD_SIZE / 2;
            touch(first, 1)?;
            touch(first + 3 * PMD_SIZE, 2)?;
            touch(addr + 3 * PUD_SIZE + PUD_SIZE / 3, 3)?;
            run.count(change(addr, end, 0))?;
            assert_eq!(run.counts[1], 3);
            run.mark(addr)?;
            run.mark(first)?;
            run.mark(end)?;
            Ok(())
        })?;
        let (addr, first, end) = (rust.marks[0], rust.marks[1], rust.marks[2]);
        // The walker starts at the PUD of the first populated page and ends where the P4D of
        // that PUD ends, or at the end of the range.
        let start = first & !(PUD_SIZE - 1);
        let p4d_end = (start | ((1 << P4D_SHIFT) - 1)).wrapping_add(1);
        let stop = if p4d_end > start && p4d_end < end {
            p4d_end
        } else {
            end
        };
        assert_eq!(rust.inval_total, 2);
        assert_eq!(
            rust.invals[0],
            Inval::Start {
                start: start - addr,
                end: stop - addr
            }
        );
        assert_eq!(
            rust.invals[1],
            Inval::End {
                start: start - addr,
                end: stop - addr
            }
        );
        Ok(())
    }

    /// A PUD populated at address 0 and one above it: one invalidation from 0 to the end of the
    /// range, started once and ended once. Address 0 can be mapped with `mmap_min_addr=0`, or
    /// below `mmap_min_addr` with `CAP_SYS_RAWIO`, which the KUnit task has. The C walker used
    /// `range.start == 0` to mean "not started yet", so it started a second range at the next
    /// populated PUD and ended only that one.
    #[test]
    fn notifier_at_address_zero() -> Result {
        const LEN: usize = 2 * PUD_SIZE;
        let rust = under_each_walker(|run, rec| {
            map_at(0, LEN, MAP_PRIVATE | MAP_NORESERVE)?;
            rec.set_base(0);
            madvise(0, LEN, MADV_NOHUGEPAGE)?;
            // Fails unless the mapping at 0 was made.
            touch(0, 1)?;
            touch(PUD_SIZE + PMD_SIZE, 2)?;
            run.count(change(0, LEN, 0))?;
            assert_eq!(run.counts[0], 2);
            assert_eq!(mprotect(0, LEN, PROT_READ), 0);
            run.record(snapshot(0, 2 * PAGE_SIZE)?)?;
            assert_eq!(peek(PUD_SIZE + PMD_SIZE)?, 2);
            unmap(0, LEN)?;
            Ok(())
        })?;
        // One change_protection() and one mprotect() call: one start and one end each.
        assert!(two_invals(&rust, LEN));
        Ok(())
    }

    /// Shared (shmem) 4K pages, half of them written (dirty), half only read (clean), the rest
    /// never touched, in a VMA registered for uffd-wp, which gives it write-notify:
    /// - `mprotect()` read-only, then read-write, then the write upgrade: it makes only the
    ///   dirty pages writable again;
    /// - uffd-wp protect: present pages get the uffd bit, none PTEs get a marker (the walker
    ///   populates the page tables for them), and a read-write `mprotect()` keeps them all
    ///   read-only;
    /// - resolve, with the write upgrade as `UFFDIO_WRITEPROTECT` asks for it: the markers go
    ///   and the dirty pages become writable again.
    #[test]
    fn shmem_dirty_clean_uffd_wp() -> Result {
        const NR: usize = 2 * PMD_SIZE / PAGE_SIZE;
        const USED: usize = 64;
        let rust = under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = mmap_shared(len, 0)?;
            let end = addr + len;
            rec.set_base(addr);
            vma_modes(addr, bindings::MPROTECT_KUNIT_UFFD_WP)?;
            for i in 0..USED {
                if i % 2 == 0 {
                    touch(addr + i * PAGE_SIZE, i as u8)?;
                } else {
                    peek(addr + i * PAGE_SIZE)?;
                }
            }
            let dirty_rw = |e: &Entry| {
                matches!(
                    e,
                    Entry::Pte {
                        write: true,
                        dirty: true,
                        uffd: false,
                        ..
                    }
                )
            };
            let clean_ro = |e: &Entry| {
                matches!(
                    e,
                    Entry::Pte {
                        write: false,
                        dirty: false,
                        uffd: false,
                        ..
                    }
                )
            };

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(
                count_entry(&ro, |e| matches!(e, Entry::Pte { write: false, .. })),
                USED
            );
            assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
            // mprotect() asks for the write upgrade only if the VMA wanted write-notify with
            // its old protection, which a read-only one does not; ask for it directly.
            run.count(change(addr, end, TRY_CHANGE_WRITABLE))?;
            assert_eq!(run.counts[0], USED as c_long);
            let rw = snapshot(addr, end)?;
            assert_eq!(count_entry(&rw, dirty_rw), USED / 2);
            assert_eq!(count_entry(&rw, clean_ro), USED / 2);

            run.count(change(addr, end, UFFD_WP))?;
            assert_eq!(run.counts[1], NR as c_long);
            let wp = snapshot(addr, end)?;
            let protected = |e: &Entry| {
                matches!(
                    e,
                    Entry::Pte {
                        write: false,
                        uffd: true,
                        ..
                    }
                )
            };
            assert_eq!(count_entry(&wp, protected), USED);
            assert_eq!(count_entry(&wp, is_marker), NR - USED);

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
            let still = snapshot(addr, end)?;
            assert_eq!(count_entry(&still, protected), USED);
            assert_eq!(count_entry(&still, is_marker), NR - USED);

            run.count(change(addr, end, UFFD_WP_RESOLVE | TRY_CHANGE_WRITABLE))?;
            assert_eq!(run.counts[2], NR as c_long);
            let resolved = snapshot(addr, end)?;
            assert_eq!(count_entry(&resolved, dirty_rw), USED / 2);
            assert_eq!(count_entry(&resolved, clean_ro), USED / 2);
            assert_eq!(count_entry(&resolved, |e| *e == Entry::None), NR - USED);
            vma_modes(addr, 0)?;
            assert_eq!(peek(addr + 2 * PAGE_SIZE)?, 2);

            run.record(ro)?;
            run.record(rw)?;
            run.record(wp)?;
            run.record(still)?;
            run.record(resolved)?;
            unmap(addr, len)
        })?;
        // Four mprotect() calls and three direct changes: one start and one end each.
        assert_eq!(rust.inval_total, 2 * 7);
        Ok(())
    }

    /// The populate path of a uffd-wp change (shmem) when page tables cannot be allocated, on a
    /// range of 4 MiB around a PUD boundary whose lower PUD holds one page:
    /// - the PMD table of the upper PUD fails: `-ENOMEM` comes back from the PUD loop after the
    ///   invalidation started at the lower PUD, and that invalidation is still ended;
    /// - the PTE table of the first PMD above the boundary fails: the PMD loop's `-ENOMEM` is
    ///   added to the lower PUD's count, as the C walker does;
    /// - resolving afterwards drops every marker that was installed.
    #[test]
    fn populate_enomem() -> Result {
        const HALF: usize = 2 * PMD_SIZE / PAGE_SIZE;
        let enomem = ENOMEM.to_errno() as c_long;
        let rust = under_each_walker(|run, rec| {
            let len = 3 * PUD_SIZE;
            let map = mmap_shared(len, MAP_NORESERVE)?;
            // A PUD boundary with 4 MiB of the mapping below it, not also a P4D boundary.
            let mut mid = (map + 2 * PMD_SIZE + PUD_SIZE - 1) & !(PUD_SIZE - 1);
            if mid & ((1 << P4D_SHIFT) - 1) == 0 {
                mid += PUD_SIZE;
            }
            let (lo, hi) = (mid - 2 * PMD_SIZE, mid + 2 * PMD_SIZE);
            rec.set_base(lo);
            vma_modes(map, bindings::MPROTECT_KUNIT_UFFD_WP)?;
            touch(mid - PMD_SIZE, 1)?;
            // The touched page, in the snapshots below.
            let page = HALF / 2;

            {
                let _fail = FailAlloc::pmd();
                run.count(change(lo, hi, UFFD_WP))?;
            }
            assert_eq!(run.counts[0], enomem);
            let first = snapshot(lo, hi)?;
            assert!(matches!(
                first[page],
                Entry::Pte {
                    write: false,
                    uffd: true,
                    ..
                }
            ));
            assert_eq!(count_entry(&first[..HALF], is_marker), HALF - 1);
            assert!(first[HALF..].iter().all(|e| *e == Entry::None));

            {
                let _fail = FailAlloc::pte();
                run.count(change(mid - PMD_SIZE, mid + PMD_SIZE, UFFD_WP))?;
            }
            assert_eq!(run.counts[1], 1 + enomem);
            let second = snapshot(lo, hi)?;
            assert_eq!(count_entry(&second[..HALF], is_marker), HALF - 1);
            assert!(second[HALF..].iter().all(|e| *e == Entry::None));

            run.count(change(lo, hi, UFFD_WP_RESOLVE))?;
            assert_eq!(run.counts[2], HALF as c_long);
            let resolved = snapshot(lo, hi)?;
            assert_eq!(count_entry(&resolved, |e| *e == Entry::None), 2 * HALF - 1);
            vma_modes(map, 0)?;
            assert_eq!(peek(mid - PMD_SIZE)?, 1);

            run.record(first)?;
            run.record(second)?;
            run.record(resolved)?;
            unmap(map, len)
        })?;
        let (mb2, mb6, mb8) = (PMD_SIZE, 3 * PMD_SIZE, 4 * PMD_SIZE);
        let expect = [
            Inval::Start { start: 0, end: mb8 },
            Inval::End { start: 0, end: mb8 },
            Inval::Start {
                start: mb2,
                end: mb6,
            },
            Inval::End {
                start: mb2,
                end: mb6,
            },
            Inval::Start { start: 0, end: mb8 },
            Inval::End { start: 0, end: mb8 },
        ];
        assert_eq!(rust.inval_total, expect.len());
        assert_eq!(rust.invals[..], expect[..]);
        Ok(())
    }

    /// The length of the mappings of [`map_across`]: two PMDs on each side of a boundary.
    const ACROSS: usize = 4 * PMD_SIZE;

    /// Maps `ACROSS` bytes of shmem centred on `mid` and writes a page below `mid`.
    fn map_across(mid: usize) -> Result {
        map_at(mid - ACROSS / 2, ACROSS, MAP_SHARED | MAP_NORESERVE)?;
        touch(mid - PMD_SIZE, 1)
    }

    /// uffd-wp over the mapping of [`map_across`] at `mid` while `fail` makes a page-table
    /// allocation fail, then resolved, the data checked and the mapping removed. The counts go
    /// to `run`; returns the snapshot taken after the protection.
    fn protect_across(
        run: &mut Run,
        rec: &Recording,
        mid: usize,
        fail: fn() -> FailAlloc,
    ) -> Result<Snapshot> {
        let lo = mid - ACROSS / 2;
        rec.set_base(lo);
        vma_modes(lo, bindings::MPROTECT_KUNIT_UFFD_WP)?;
        {
            let _fail = fail();
            run.count(change(lo, lo + ACROSS, UFFD_WP))?;
        }
        let snap = snapshot(lo, lo + ACROSS)?;
        run.count(change(lo, lo + ACROSS, UFFD_WP_RESOLVE))?;
        vma_modes(lo, 0)?;
        if peek(mid - PMD_SIZE)? != 1 {
            pr_err!("protect_across: the page below {mid:#x} lost its data\n");
            return Err(EINVAL);
        }
        unmap(lo, ACROSS)?;
        Ok(snap)
    }

    /// Whether `run` saw two invalidations of `[0, len)` (relative to its base), each started
    /// and ended, and nothing else.
    fn two_invals(run: &Run, len: usize) -> bool {
        let one = [
            Inval::Start { start: 0, end: len },
            Inval::End { start: 0, end: len },
        ];
        run.inval_total == 4 && run.invals[..2] == one && run.invals[2..] == one
    }

    /// The populate path failing one level up, at the PUD table (`__pud_alloc()`): a shmem
    /// mapping across a P4D boundary (512 GiB) far from every other mapping, so the P4D entry
    /// above the boundary is none and uffd-wp's populate step needs a PUD table there. The
    /// lower half gets its markers and its invalidation, started and ended; the P4D loop
    /// returns `-ENOMEM`. What the PGD loop makes of it depends on the paging levels, as in the
    /// C walker: with 4 levels the two halves are in different PGD entries and the count of the
    /// lower one is added to `-ENOMEM`; with 5 they share one, and the P4D loop's `-ENOMEM`
    /// replaces its count. Resolving needs no tables: it counts the lower half only.
    #[test]
    fn populate_enomem_pud() -> Result {
        const HALF: usize = ACROSS / 2 / PAGE_SIZE;
        // 32 TiB: a P4D boundary, far below the mmap area of the KUnit mm.
        const MID: usize = 64 << P4D_SHIFT;
        let enomem = ENOMEM.to_errno() as c_long;
        let five_levels = five_level_paging()?;
        let rust = under_each_walker(|run, rec| {
            map_across(MID)?;
            let snap = protect_across(run, rec, MID, FailAlloc::pud)?;
            let expect = if five_levels {
                enomem
            } else {
                HALF as c_long + enomem
            };
            assert_eq!(run.counts[0], expect);
            assert_eq!(count_entry(&snap[..HALF], is_marker), HALF - 1);
            assert!(snap[HALF..].iter().all(|e| *e == Entry::None));
            assert_eq!(run.counts[1], HALF as c_long);
            run.record(snap)
        })?;
        // Each call: one invalidation of the lower half, to the P4D boundary.
        assert!(two_invals(&rust, ACROSS / 2));
        Ok(())
    }

    /// The populate path failing at the P4D table (`__p4d_alloc()`), the top level that
    /// allocates when paging has 5 levels: a shmem mapping across a PGD boundary (256 TiB), so
    /// the PGD entry above it is none. The lower half gets its markers and its invalidation;
    /// the PGD loop stops with `-ENOMEM` in place of its count. With 4 levels the mapping
    /// cannot be made (the address space ends at 128 TiB) and the P4D level is folded into the
    /// PGD: the same change across a 512 GiB boundary never asks for a P4D table, so the failing
    /// stub is never reached and every page gets its marker.
    #[test]
    fn populate_enomem_p4d() -> Result {
        const HALF: usize = ACROSS / 2 / PAGE_SIZE;
        let enomem = ENOMEM.to_errno() as c_long;
        let five_levels = five_level_paging()?;
        pr_info!("populate_enomem_p4d: 5-level paging: {five_levels}\n");
        let rust = under_each_walker(|run, rec| {
            let mid = if five_levels {
                1 << 48
            } else {
                64 << P4D_SHIFT
            };
            map_across(mid)?;
            let snap = protect_across(run, rec, mid, FailAlloc::p4d)?;
            if five_levels {
                assert_eq!(run.counts[0], enomem);
                assert_eq!(count_entry(&snap[..HALF], is_marker), HALF - 1);
                assert!(snap[HALF..].iter().all(|e| *e == Entry::None));
            } else {
                assert_eq!(run.counts[0], 2 * HALF as c_long);
                assert_eq!(count_entry(&snap, is_marker), 2 * HALF - 1);
            }
            run.record(snap)
        })?;
        // With 5 levels, each call: one invalidation of the lower half, to the PGD boundary.
        assert!(!five_levels || two_invals(&rust, ACROSS / 2));
        Ok(())
    }

    /// uffd-rwp on private anonymous 4K pages: protect (`PROT_NONE` plus the uffd bit), protect
    /// again (entries already protected are skipped and not counted), `mprotect()` read-only
    /// (the entries stay `PROT_NONE`), resolve (read-only, no uffd bit).
    #[test]
    fn anon_uffd_rwp() -> Result {
        const NR: usize = 64;
        under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = map_4k(rec, len, 0)?;
            let end = addr + len;
            for i in (0..NR).step_by(2) {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
            let rwp = |e: &Entry| {
                matches!(
                    e,
                    Entry::Pte {
                        protnone: true,
                        uffd: true,
                        ..
                    }
                )
            };
            vma_modes(addr, bindings::MPROTECT_KUNIT_UFFD_RWP)?;
            run.count(change(addr, end, UFFD_RWP))?;
            assert_eq!(run.counts[0], (NR / 2) as c_long);
            let protected = snapshot(addr, end)?;
            assert_eq!(count_entry(&protected, rwp), NR / 2);
            run.count(change(addr, end, UFFD_RWP))?;
            assert_eq!(run.counts[1], 0);

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(count_entry(&ro, rwp), NR / 2);

            run.count(change(addr, end, UFFD_RWP_RESOLVE))?;
            assert_eq!(run.counts[2], (NR / 2) as c_long);
            let resolved = snapshot(addr, end)?;
            let plain_ro = |e: &Entry| {
                matches!(
                    e,
                    Entry::Pte {
                        write: false,
                        protnone: false,
                        uffd: false,
                        ..
                    }
                )
            };
            assert_eq!(count_entry(&resolved, plain_ro), NR / 2);
            vma_modes(addr, 0)?;
            assert_eq!(peek(addr + 2 * PAGE_SIZE)?, 2);

            run.record(protected)?;
            run.record(ro)?;
            run.record(resolved)?;
            unmap(addr, len)
        })?;
        Ok(())
    }

    /// Guard markers (`MADV_GUARD_INSTALL`) among private anonymous pages: every protection
    /// change leaves them as they are and does not count them.
    #[test]
    fn anon_guard_markers() -> Result {
        const NR: usize = 64;
        const GUARDS: [(usize, usize); 2] = [(8, 8), (40, 3)];
        const PRESENT: usize = NR - 11;
        under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = map_4k(rec, len, 0)?;
            let end = addr + len;
            for i in 0..NR {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
            for (first, n) in GUARDS {
                madvise(addr + first * PAGE_SIZE, n * PAGE_SIZE, MADV_GUARD_INSTALL)?;
            }
            let guard = |e: &Entry| matches!(e, Entry::Leaf { guard: true, .. });
            let mut steps = KVec::new();
            let steps_prot = [
                (PROT_READ, 0),
                (PROT_NONE, 0),
                (PROT_READ | PROT_WRITE, TRY_CHANGE_WRITABLE),
            ];
            for (i, (prot, flags)) in steps_prot.into_iter().enumerate() {
                assert_eq!(mprotect(addr, len, prot), 0);
                run.count(change(addr, end, flags))?;
                assert_eq!(run.counts[i], PRESENT as c_long);
                let now = snapshot(addr, end)?;
                assert_eq!(count_entry(&now, guard), NR - PRESENT);
                steps.push(now, GFP_KERNEL)?;
            }
            let rw = |e: &Entry| matches!(e, Entry::Pte { write: true, .. });
            assert_eq!(count_entry(&steps[2], rw), PRESENT);
            assert_eq!(peek(addr + 7 * PAGE_SIZE)?, 7);
            for step in steps {
                run.record(step)?;
            }
            unmap(addr, len)
        })?;
        Ok(())
    }

    /// A small folio of the current mm held with its PTE replaced by a migration entry, as
    /// migration does while it copies; dropping it restores the PTE, as a failed migration
    /// does (`remove_migration_ptes()` with the folio as both source and destination).
    struct Migrating(*mut bindings::folio);

    impl Migrating {
        fn start(addr: usize) -> Result<Self> {
            let mut page: *mut bindings::page = ptr::null_mut();
            // SAFETY: `addr` is in the current mm; on success `page` holds a reference.
            if unsafe { bindings::get_user_pages_fast(addr, 1, 0, &mut page) } != 1 {
                return Err(EFAULT);
            }
            // SAFETY: `page` is a referenced page, so its folio is live.
            let folio = unsafe { bindings::page_folio(page) };
            // SAFETY: `folio` is referenced; `try_to_migrate()` wants it locked, and a small
            // anonymous folio that only this test maps has no other user of its lock.
            unsafe {
                bindings::folio_lock(folio);
                bindings::try_to_migrate(folio, 0);
            }
            Ok(Migrating(folio))
        }
    }

    impl Drop for Migrating {
        fn drop(&mut self) {
            // SAFETY: The folio is locked and referenced since `start()`; this restores its
            // mappings from the migration entries, then unlocks and drops the reference.
            unsafe {
                bindings::remove_migration_ptes(self.0, self.0, 0);
                bindings::folio_unlock(self.0);
                bindings::folio_put(self.0);
            }
        }
    }

    /// Migration entries among private anonymous pages: `mprotect()` read-only turns the
    /// writable migration entries readable (exclusive, for anonymous folios), so the restored
    /// PTEs are read-only; read-write again, the write upgrade makes them writable, since the
    /// pages stayed exclusive.
    #[test]
    fn anon_migration_entries() -> Result {
        const NR: usize = 16;
        const MIGRATING: core::ops::Range<usize> = 4..12;
        under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = map_4k(rec, len, 0)?;
            let end = addr + len;
            for i in 0..NR {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
            let migration = |write: bool| {
                move |e: &Entry| {
                    matches!(e, Entry::Leaf { migration_write, marker: false, .. }
                        if *migration_write == write)
                }
            };
            let mut held = KVec::new();
            for i in MIGRATING {
                held.push(Migrating::start(addr + i * PAGE_SIZE)?, GFP_KERNEL)?;
            }
            let migrating = snapshot(addr, end)?;
            assert_eq!(count_entry(&migrating, migration(true)), MIGRATING.len());

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(count_entry(&ro, migration(false)), MIGRATING.len());
            // Written pages are soft-dirty, and so their migration entries: the bit survives
            // the conversion to a readable entry.
            if cfg!(CONFIG_MEM_SOFT_DIRTY) {
                assert!(MIGRATING
                    .clone()
                    .all(|i| migrating.soft_dirty(i) && ro.soft_dirty(i)));
            }
            // Present PTEs count; migration entries already read-only do not.
            run.count(change(addr, end, 0))?;
            assert_eq!(run.counts[0], (NR - MIGRATING.len()) as c_long);

            drop(held);
            let restored = snapshot(addr, end)?;
            let ro_pte = |e: &Entry| matches!(e, Entry::Pte { write: false, .. });
            assert_eq!(count_entry(&restored, ro_pte), NR);

            assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            assert_eq!(
                count_entry(&rw, |e| matches!(e, Entry::Pte { write: true, .. })),
                NR
            );
            assert_eq!(peek(addr + 5 * PAGE_SIZE)?, 5);

            run.record(migrating)?;
            run.record(ro)?;
            run.record(restored)?;
            run.record(rw)?;
            unmap(addr, len)
        })?;
        Ok(())
    }

    /// `clear_refs` 4 on the current mm (`mprotect_clear_soft_dirty_for_kunit()`): every PTE
    /// write-protected and not soft-dirty, and soft-dirty tracking on for every VMA.
    #[cfg(CONFIG_MEM_SOFT_DIRTY)]
    fn clear_soft_dirty() -> Result {
        // SAFETY: Operates on the current mm, under its own locking.
        kernel::error::to_result(unsafe { bindings::mprotect_clear_soft_dirty_for_kunit() })
    }

    /// Soft-dirty tracking and the write upgrade: after `clear_refs` 4, `mprotect()` read-write
    /// may make writable only the pages written since (soft-dirty); a page not written since
    /// must stay read-only, so that its next write faults and sets the bit
    /// (`pte_needs_soft_dirty_wp()`).
    #[cfg(CONFIG_MEM_SOFT_DIRTY)]
    #[test]
    fn soft_dirty_write_upgrade() -> Result {
        const NR: usize = 32;
        let rewritten = |i: usize| i % 3 == 0;
        under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = map_4k(rec, len, 0)?;
            let end = addr + len;
            for i in 0..NR {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
            let written = snapshot(addr, end)?;
            assert!((0..NR).all(|i| written.soft_dirty(i)));
            clear_soft_dirty()?;
            let cleared = snapshot(addr, end)?;
            let ro_pte = |e: &Entry| matches!(e, Entry::Pte { write: false, .. });
            assert_eq!(count_entry(&cleared, ro_pte), NR);
            assert!((0..NR).all(|i| !cleared.soft_dirty(i)));
            for i in (0..NR).filter(|&i| rewritten(i)) {
                touch(addr + i * PAGE_SIZE, 0x80 | i as u8)?;
            }
            let again = snapshot(addr, end)?;
            assert!((0..NR).all(|i| again.soft_dirty(i) == rewritten(i)));

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(count_entry(&ro, ro_pte), NR);
            assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            for (i, e) in rw.iter().enumerate() {
                assert_eq!(matches!(e, Entry::Pte { write: true, .. }), rewritten(i));
                assert_eq!(rw.soft_dirty(i), rewritten(i));
            }
            // `change_protection()` with the write upgrade, as mprotect_fixup() asks it: every
            // present PTE counts, none becomes writable that was not.
            run.count(change(addr, end, TRY_CHANGE_WRITABLE))?;
            assert_eq!(run.counts[0], NR as c_long);
            let upgraded = snapshot(addr, end)?;
            let writable = |e: &Entry| matches!(e, Entry::Pte { write: true, .. });
            assert_eq!(count_entry(&upgraded, writable), NR.div_ceil(3));
            assert_eq!(peek(addr + PAGE_SIZE)?, 1);
            assert_eq!(peek(addr + 3 * PAGE_SIZE)?, 0x83);

            run.record(written)?;
            run.record(cleared)?;
            run.record(again)?;
            run.record(ro)?;
            run.record(rw)?;
            run.record(upgraded)?;
            unmap(addr, len)
        })?;
        Ok(())
    }

    /// The write upgrade of a 64K mTHP folio whose pages are exclusive only in part: after a
    /// fork, the pages written again are `PageAnonExclusive()` and the others not, so the walk
    /// commits the folio's batch in sub-batches, each with the PFN of its own first page
    /// (`commit_anon_folio_batch()`). The snapshots' page verdicts show that every PTE still
    /// maps its own page.
    #[test]
    fn anon_mthp_sub_batches() -> Result {
        const NR: usize = 16;
        let rewritten = |i: usize| (4..8).contains(&i) || i == 13;
        under_each_walker(|run, rec| {
            // 64K mTHP folios where MADV_HUGEPAGE asks (`thp_anon=64K:madvise`), in a range
            // too small for a PMD THP or khugepaged.
            let (map, addr) = map_touched_huge(NR, NR)?;
            let end = addr + NR * PAGE_SIZE;
            rec.set_base(addr);
            if !in_large_folio(addr)? {
                pr_err!("anon_mthp_sub_batches: no 64K mTHP folio (thp_anon=64K:madvise?)\n");
                return Err(ENOMEM);
            }
            let faulted = snapshot(addr, end)?;
            // One folio: consecutive PFNs.
            assert!((1..NR).all(|i| faulted.pfn(i) == faulted.pfn(0) + i as u64));
            fork_and_reap()?;
            for i in (0..NR).filter(|&i| rewritten(i)) {
                touch(addr + i * PAGE_SIZE, 0x80 | i as u8)?;
            }
            let written = snapshot(addr, end)?;
            // The written pages were reused in place (`wp_can_reuse_anon_folio()`), not copied:
            // else there would be no partly exclusive folio to test.
            assert!((0..NR).all(|i| written.pfn(i) == faulted.pfn(i)));

            assert_eq!(mprotect(addr, NR * PAGE_SIZE, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(mprotect(addr, NR * PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            for (i, e) in rw.iter().enumerate() {
                assert_eq!(matches!(e, Entry::Pte { write: true, .. }), rewritten(i));
                assert_eq!(rw.pfn(i), written.pfn(i));
            }
            assert_eq!(peek(addr + 5 * PAGE_SIZE)?, 0x85);
            assert_eq!(peek(addr + 9 * PAGE_SIZE)?, 9);

            run.record(faulted)?;
            run.record(written)?;
            run.record(ro)?;
            run.record(rw)?;
            unmap(map, 2 * NR * PAGE_SIZE)
        })?;
        Ok(())
    }

    /// hugetlb memory is changed by `hugetlb_change_protection()`, never by a page-table
    /// walker: `change_protection()` tests for hugetlb before it picks a walker. The hugetlb
    /// entries (read through `walk_page_range()`'s hugetlb callback) and the counts must be
    /// the same whichever walker is selected; a walker that saw these PMD leaves would treat
    /// them as THPs. Needs `hugepages=` on the command line (`scripts/kunit.sh`).
    #[cfg(CONFIG_HUGETLB_PAGE)]
    #[test]
    fn hugetlb_not_walked() -> Result {
        const HUGE: usize = 2 << 20;
        const NR: usize = 2;
        under_each_walker(|run, rec| {
            let len = NR * HUGE;
            // SAFETY: Maps memory in the current mm, under its own locking.
            let addr = unsafe { bindings::mprotect_mmap_hugetlb_for_kunit(len) };
            if addr > usize::MAX - bindings::MAX_ERRNO as usize {
                pr_err!("hugetlb_not_walked: no hugetlb pages (hugepages=?)\n");
                return Err(Error::from_errno(addr as c_int));
            }
            let end = addr + len;
            rec.set_base(addr);
            touch(addr, 1)?;
            let faulted = snapshot(addr, end)?;
            let huge = |write: bool| {
                move |e: &Entry| {
                    *e == Entry::Hugetlb {
                        write,
                        present: true,
                    }
                }
            };
            assert_eq!(count_entry(&faulted, huge(true)), HUGE / PAGE_SIZE);
            assert_eq!(
                count_entry(&faulted, |e| *e == Entry::None),
                HUGE / PAGE_SIZE
            );

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(count_entry(&ro, huge(false)), HUGE / PAGE_SIZE);
            // One hugetlb page changed: `hugetlb_change_protection()` counts base pages.
            run.count(change(addr, end, 0))?;
            assert_eq!(run.counts[0], (HUGE / PAGE_SIZE) as c_long);
            // Read-write: hugetlb has no write upgrade, so the page stays read-only until
            // written again.
            assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            assert_eq!(count_entry(&rw, huge(false)), HUGE / PAGE_SIZE);
            touch(addr, 3)?;
            touch(addr + HUGE, 2)?;
            let written = snapshot(addr, end)?;
            assert_eq!(count_entry(&written, huge(true)), 2 * HUGE / PAGE_SIZE);
            assert_eq!(peek(addr)?, 3);

            run.record(faulted)?;
            run.record(ro)?;
            run.record(rw)?;
            run.record(written)?;
            unmap(addr, len)
        })?;
        Ok(())
    }

    /// The child of [`fork_and_reap`]: leaves at once, which drops its copy of the mm.
    extern "C" fn fork_child(_: *mut c_void) -> c_int {
        // SAFETY: The child owns nothing that needs releasing before it exits.
        unsafe { bindings::do_exit(0) }
    }

    /// Forks the current task, as fork() does (the child gets a copy of the mm), and returns
    /// once the child has exited and its copy of the mm is gone: the parent's private
    /// anonymous pages are then no longer exclusive and their PTEs are write-protected, and
    /// no other mm maps them.
    fn fork_and_reap() -> Result {
        let mut args = bindings::kernel_clone_args {
            flags: u64::from(bindings::CLONE_VFORK | bindings::CLONE_UNTRACED),
            exit_signal: bindings::SIGCHLD as c_int,
            fn_: Some(fork_child),
            ..Default::default()
        };
        // SAFETY: `args` asks for a child that copies the current (KUnit-owned) mm, runs
        // `fork_child()`, which exits, and is reaped by the kernel: KUnit's kthreads ignore
        // SIGCHLD.
        let pid = unsafe { bindings::kernel_clone(&mut args) };
        if pid < 0 {
            return Err(Error::from_errno(pid));
        }
        // `CLONE_VFORK` lets the parent go on when the child releases the mm
        // (`exit_mm_release()`), before its `mmput()` unmaps the pages: until then a large
        // folio stays shared with the child's mm, and a write copies it instead of reusing
        // it (`__wp_can_reuse_large_anon_folio()`). So wait for the child to be gone: it
        // reaps itself after `exit_mm()`, and the wait then ends with -ECHILD.
        let mut status: c_int = 0;
        // SAFETY: Waits for the child created above; `status` outlives the call.
        let ret = unsafe { bindings::kernel_wait(pid, &mut status) };
        if ret < 0 && ret != -(bindings::ECHILD as c_int) {
            return Err(Error::from_errno(ret));
        }
        Ok(())
    }

    /// Private anonymous pages that a fork shared: no longer exclusive, so the write upgrade
    /// must leave them read-only, while the pages written since (copied, or reused once the
    /// child has gone) are exclusive again and become writable.
    #[test]
    fn anon_shared_after_fork() -> Result {
        const NR: usize = 32;
        under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = map_4k(rec, len, 0)?;
            let end = addr + len;
            for i in 0..NR {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
            fork_and_reap()?;
            let forked = snapshot(addr, end)?;
            let ro_pte = |e: &Entry| matches!(e, Entry::Pte { write: false, .. });
            assert_eq!(count_entry(&forked, ro_pte), NR);
            // Write the even pages again: each gets an exclusive page.
            for i in (0..NR).step_by(2) {
                touch(addr + i * PAGE_SIZE, 0x80 | i as u8)?;
            }

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(count_entry(&ro, ro_pte), NR);

            // Read-write with the write upgrade: only the exclusive (even) pages.
            assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            let writable = |e: &Entry| matches!(e, Entry::Pte { write: true, .. });
            assert_eq!(count_entry(&rw, writable), NR / 2);
            assert!(rw.iter().step_by(2).all(writable));
            run.count(change(addr, end, TRY_CHANGE_WRITABLE))?;
            assert_eq!(run.counts[0], NR as c_long);
            let upgraded = snapshot(addr, end)?;
            assert_eq!(count_entry(&upgraded, writable), NR / 2);
            assert_eq!(peek(addr)?, 0x80);
            assert_eq!(peek(addr + PAGE_SIZE)?, 1);

            run.record(forked)?;
            run.record(ro)?;
            run.record(rw)?;
            run.record(upgraded)?;
            unmap(addr, len)
        })?;
        Ok(())
    }

    /// NUMA hinting (`MM_CP_PROT_NUMA`, as `change_prot_numa()` asks) and its skip rules: in a
    /// single-threaded mm, folios already on the walking CPU's node are left alone; with a
    /// second user of the mm, written pages become `PROT_NONE` and count, while the zero page
    /// (read-only faults) and DMA-pinned folios are skipped, and entries already `PROT_NONE`
    /// are skipped the next time; an access then restores a hinted page, data intact.
    #[test]
    fn anon_numa_hinting() -> Result {
        const NR: usize = 32;
        // Pages 0..8 and 16..24 are written, 8..16 only read (the zero page), 24..28 written
        // and pinned, 28..32 never touched.
        let written = |i: usize| i < 8 || (16..28).contains(&i);
        let pinned = |i: usize| (24..28).contains(&i);
        under_each_walker(|run, rec| {
            let len = NR * PAGE_SIZE;
            let addr = map_4k(rec, len, 0)?;
            let end = addr + len;
            for i in 0..28 {
                if written(i) {
                    touch(addr + i * PAGE_SIZE, 0x60 ^ i as u8)?;
                } else {
                    assert_eq!(peek(addr + i * PAGE_SIZE)?, 0);
                }
            }
            let mut pages = [ptr::null_mut::<bindings::page>(); 4];
            // SAFETY: The range is mapped in the current mm; on success `pages` holds four
            // pinned pages, unpinned below.
            let n = unsafe {
                bindings::pin_user_pages_fast(
                    addr + 24 * PAGE_SIZE,
                    4,
                    bindings::FOLL_WRITE,
                    pages.as_mut_ptr(),
                )
            };
            assert_eq!(n, 4);

            // Single-threaded, and every folio on this CPU's node: nothing to hint.
            run.count(change(addr, end, PROT_NUMA))?;
            assert_eq!(run.counts[0], 0);
            let local = snapshot(addr, end)?;
            let protnone = |e: &Entry| matches!(e, Entry::Pte { protnone: true, .. });
            assert_eq!(count_entry(&local, protnone), 0);

            // A second user of the mm, as another thread would be.
            let current = kernel::current!();
            let mm = current.mm().ok_or(EINVAL)?;
            let second = mm.mmget_not_zero().ok_or(EINVAL)?;
            run.count(change(addr, end, PROT_NUMA))?;
            let hinted = snapshot(addr, end)?;
            run.count(change(addr, end, PROT_NUMA))?;
            drop(second);
            // SAFETY: The pages were pinned above.
            unsafe { bindings::unpin_user_pages(pages.as_mut_ptr(), 4) };
            let expected = (0..NR).filter(|&i| written(i) && !pinned(i)).count();
            assert_eq!(run.counts[1], expected as c_long);
            for (i, e) in hinted.iter().enumerate() {
                assert_eq!(protnone(e), written(i) && !pinned(i));
            }
            // Already PROT_NONE: skipped.
            assert_eq!(run.counts[2], 0);

            // A NUMA hinting fault restores the page.
            assert_eq!(peek(addr)?, 0x60);
            let restored = snapshot(addr, end)?;
            assert!(!protnone(&restored[0]));
            assert_eq!(count_entry(&restored, protnone), expected - 1);

            assert_eq!(mprotect(addr, len, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(count_entry(&ro, protnone), 0);

            run.record(local)?;
            run.record(hinted)?;
            run.record(restored)?;
            run.record(ro)?;
            unmap(addr, len)
        })?;
        Ok(())
    }

    /// NUMA hinting over a PMD-mapped THP (`change_huge_pmd()`): with a second user of the mm
    /// the whole PMD is hinted, and counts as one `numa_huge_pte_updates` event (the walkers'
    /// `count_vm_numa_events()` at the end of the PMD loop); hinted already, it is skipped and
    /// not counted. Without VM event counters there is no event to count.
    #[cfg(all(CONFIG_NUMA_BALANCING, CONFIG_VM_EVENT_COUNTERS))]
    #[test]
    fn thp_numa_hinting() -> Result {
        under_each_walker(|run, rec| {
            let (map, addr) = map_touched_thp(rec)?;
            let end = addr + PMD_SIZE;
            let before = snapshot(addr, end)?;
            // The scenario needs a THP; without one it tests nothing.
            assert!(matches!(before[0], Entry::Pmd { write: true }));

            // A second user of the mm, as another thread would be: the folio is on this CPU's
            // node, which a single-threaded mm would leave alone.
            let current = kernel::current!();
            let mm = current.mm().ok_or(EINVAL)?;
            let second = mm.mmget_not_zero().ok_or(EINVAL)?;
            let events = numa_huge_pte_updates()?;
            run.count(change(addr, end, PROT_NUMA))?;
            let hinted_events = numa_huge_pte_updates()?.wrapping_sub(events);
            let hinted = snapshot(addr, end)?;
            run.count(change(addr, end, PROT_NUMA))?;
            let again_events = numa_huge_pte_updates()?
                .wrapping_sub(events)
                .wrapping_sub(hinted_events);
            drop(second);
            assert_eq!(run.counts[0], (PMD_SIZE / PAGE_SIZE) as c_long);
            assert_eq!(hinted_events, 1);
            assert!(matches!(hinted[0], Entry::Pmd { .. }));
            assert!((0..hinted.len()).all(|i| hinted.protnone(i)));
            // Already `PROT_NONE`: handled, but neither changed nor counted.
            assert_eq!(run.counts[1], 0);
            assert_eq!(again_events, 0);

            // A NUMA hinting fault restores the PMD, data intact.
            assert_eq!(peek(addr)?, 1);
            let restored = snapshot(addr, end)?;
            assert!(matches!(restored[0], Entry::Pmd { .. }));
            assert!(!restored.protnone(0));

            run.record(before)?;
            run.record(hinted)?;
            run.record(restored)?;
            unmap(map, 2 * PMD_SIZE)
        })?;
        Ok(())
    }

    /// Whether the page mapped at `addr` in the current mm belongs to a large folio.
    fn in_large_folio(addr: usize) -> Result<bool> {
        let mut page: *mut bindings::page = ptr::null_mut();
        // SAFETY: `addr` is in the current mm; on success `page` holds a reference.
        if unsafe { bindings::get_user_pages_fast(addr, 1, 0, &mut page) } != 1 {
            return Err(EFAULT);
        }
        // SAFETY: `page` is referenced, so its folio is live until the reference is dropped.
        Ok(unsafe {
            let folio = bindings::page_folio(page);
            let large = bindings::folio_test_large(folio);
            bindings::folio_put(folio);
            large
        })
    }

    /// The end of the VMA holding `addr` in the current mm.
    fn vma_end(addr: usize) -> Result<usize> {
        let current = kernel::current!();
        let mm = current.mm().ok_or(EINVAL)?;
        let lock = mm.mmap_read_lock();
        Ok(lock.vma_lookup(addr).ok_or(EINVAL)?.end())
    }

    /// One random case: a layout of holes, 4K pages (with guard markers and migration entries
    /// among them), 64K mTHP folios (with `thp_anon=64K:madvise`) and PMD THPs, then one to
    /// four steps, each an `mprotect()`, a `change_protection()` with random flags, or a write;
    /// after each step, and once the migration entries are restored, the result and a digest of
    /// the page tables go into `run`. The addresses of mTHP folios found go into `run`'s marks.
    fn random_case(run: &mut Run, rec: &Recording, seed: u64) -> Result {
        const CHUNKS: usize = 4;
        const PAGES: usize = CHUNKS * PMD_SIZE / PAGE_SIZE;
        let mut rng = Rng(seed);
        let len = (CHUNKS + 1) * PMD_SIZE;
        let map = mmap(len, 0)?;
        let addr = (map + PMD_SIZE - 1) & !(PMD_SIZE - 1);
        let end = addr + CHUNKS * PMD_SIZE;
        rec.set_base(addr);
        // The protection of each page, so that the case only writes where it may.
        let mut prot = KVec::from_elem(PROT_READ | PROT_WRITE, PAGES, GFP_KERNEL)?;
        // Pages behind a guard marker or a migration entry, never to be touched (a fault on a
        // migration entry would wait for the folio lock the case holds).
        let mut untouchable = KVec::from_elem(false, PAGES, GFP_KERNEL)?;
        // Folios held under migration entries until the case ends.
        let mut migrating = KVec::new();

        for chunk in 0..CHUNKS {
            let base = addr + chunk * PMD_SIZE;
            match rng.below(5) {
                0 => {}
                3 => {
                    // MADV_HUGEPAGE on half a PMD: 64K mTHP faults, but neither a PMD fault
                    // nor anything khugepaged could collapse, behind the test's back, in one
                    // walker's run and not the other's: no PMD-aligned range lies within it.
                    madvise(base, PMD_SIZE / 2, MADV_HUGEPAGE)?;
                    let mut last = base;
                    for _ in 0..1 + rng.below(8) {
                        last = base + rng.below(PMD_SIZE / 2 / PAGE_SIZE) * PAGE_SIZE;
                        touch(last, 5)?;
                    }
                    if in_large_folio(last)? {
                        run.mark(last)?;
                    }
                }
                1 | 2 => {
                    madvise(base, PMD_SIZE, MADV_NOHUGEPAGE)?;
                    let mut last_touched = 0;
                    for _ in 0..1 + rng.below(64) {
                        last_touched =
                            chunk * (PMD_SIZE / PAGE_SIZE) + rng.below(PMD_SIZE / PAGE_SIZE);
                        touch(addr + last_touched * PAGE_SIZE, 1)?;
                    }
                    if rng.below(2) == 0 {
                        // Guard markers over a few pages, touched or not.
                        let first =
                            chunk * (PMD_SIZE / PAGE_SIZE) + rng.below(PMD_SIZE / PAGE_SIZE - 16);
                        let n = 1 + rng.below(16);
                        madvise(addr + first * PAGE_SIZE, n * PAGE_SIZE, MADV_GUARD_INSTALL)?;
                        untouchable[first..first + n].fill(true);
                    }
                    if rng.below(2) == 0 && !untouchable[last_touched] {
                        // A migration entry in place of a present PTE.
                        let held = Migrating::start(addr + last_touched * PAGE_SIZE)?;
                        migrating.push(held, GFP_KERNEL)?;
                        untouchable[last_touched] = true;
                    }
                }
                _ => {
                    madvise(base, PMD_SIZE, MADV_HUGEPAGE)?;
                    touch(base, 2)?;
                }
            }
        }
        // No THP from here on, and no khugepaged collapse behind the test's back.
        madvise(addr, end - addr, MADV_NOHUGEPAGE)?;

        for _ in 0..1 + rng.below(4) {
            let first = rng.below(PAGES);
            let last = first + 1 + rng.below(PAGES - first);
            let from = addr + first * PAGE_SIZE;
            let to = addr + last * PAGE_SIZE;
            match rng.below(3) {
                0 => {
                    let p = [PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE][rng.below(3)];
                    run.count(mprotect(from, to - from, p))?;
                    prot[first..last].fill(p);
                }
                1 => {
                    // change_protection() works within one VMA.
                    let to = to.min(vma_end(from)?);
                    let p = prot[first];
                    // As the kernel's callers do: the write upgrade only on writable VMAs,
                    // NUMA hinting only on accessible ones and never with the upgrade.
                    let flags = match rng.below(3) {
                        0 if p & PROT_WRITE != 0 => TRY_CHANGE_WRITABLE,
                        1 if p != PROT_NONE => PROT_NUMA,
                        _ => 0,
                    };
                    run.count(change(from, to, flags))?;
                }
                _ => {
                    let page = rng.below(PAGES);
                    if prot[page] & PROT_WRITE != 0 && !untouchable[page] {
                        touch(addr + page * PAGE_SIZE, 3)?;
                    }
                }
            }
            run.count(digest(&snapshot(addr, end)?))?;
        }
        // Restore the migrating PTEs, then check what that left.
        drop(migrating);
        run.count(digest(&snapshot(addr, end)?))?;
        unmap(map, len)
    }

    /// Random layouts and random sequences of `mprotect()` and `change_protection()` calls
    /// with random flags, each replayed under both walkers from the same seed: page tables,
    /// results and invalidations must agree case by case.
    #[test]
    fn random_differential() -> Result {
        let (cases, seed) = random_params();
        diag(fmt!(
            "    # random_differential: {cases} cases, seed {seed}\n"
        ));
        // Both walkers run every case, so a difference shows up in the digests; replaying one
        // case at a time then says which.
        let all = under_each_walker(|run, rec| {
            for case in 0..cases as u64 {
                // A marker, so that the index of a difference names its case.
                run.count(-1 - case as c_long)?;
                random_case(
                    run,
                    rec,
                    seed.wrapping_add(case).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
                )?;
            }
            Ok(())
        });
        if let Ok(rust) = &all {
            // The layouts must have had mTHP folios: scripts/kunit.sh enables them.
            diag(fmt!(
                "    # random_differential: {} chunks of mTHP folios\n",
                rust.marks.len()
            ));
            assert!(cases < 100 || !rust.marks.is_empty());
            return Ok(());
        }
        for case in 0..cases as u64 {
            let case_seed = seed.wrapping_add(case).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            if under_each_walker(|run, rec| random_case(run, rec, case_seed)).is_err() {
                pr_err!("random_differential: case {case} of seed {seed} differs\n");
                break;
            }
        }
        assert!(all.is_ok());
        Ok(())
    }

    /// Starts an invalidation twice (the second call must do nothing), then leaves through an
    /// error return, as the walker's populate path does on `-ENOMEM`.
    fn start_twice_then_fail(vma: &VmaRef, addr: usize) -> Result {
        let event = InvalidateEvent::ProtectionVma;
        let mut range = core::pin::pin!(InvalidateRange::new(event));
        range.as_mut().start(vma, addr, addr + PAGE_SIZE);
        range
            .as_mut()
            .start(vma, addr + PAGE_SIZE, addr + 2 * PAGE_SIZE);
        if range.is_started() {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// The guard the walker keeps its invalidation in: started at most once, ended exactly
    /// once on an error return, and never ended if never started.
    #[test]
    fn invalidate_range_guard() -> Result {
        let _cpu0 = OnCpu0::pin()?;
        let recording = Recording::start()?;
        let addr = mmap(2 * PAGE_SIZE, 0)?;
        recording.set_base(addr);
        {
            let current = kernel::current!();
            let mm = current.mm().ok_or(EINVAL)?;
            let lock = mm.mmap_read_lock();
            let vma = lock.vma_lookup(addr).ok_or(EINVAL)?;
            assert_eq!(start_twice_then_fail(vma, addr), Err(ENOMEM));
            // Never started: nothing to end.
            let event = InvalidateEvent::ProtectionVma;
            let unstarted = core::pin::pin!(InvalidateRange::new(event));
            assert!(!unstarted.is_started());
        }
        let mut run = Run::default();
        recording.finish(&mut run)?;
        assert_eq!(run.inval_total, 2);
        assert_eq!(
            run.invals[0],
            Inval::Start {
                start: 0,
                end: PAGE_SIZE
            }
        );
        assert_eq!(
            run.invals[1],
            Inval::End {
                start: 0,
                end: PAGE_SIZE
            }
        );
        Ok(())
    }

    /// The knob: a bad name is refused and leaves the choice as it was.
    #[test]
    fn walker_switch() -> Result {
        let chosen = walker_name();
        select(c"c")?;
        assert_eq!(walker_name().to_bytes(), b"c");
        assert!(select(c"cobol").is_err());
        assert_eq!(walker_name().to_bytes(), b"c");
        select(c"rust\n")?;
        assert_eq!(walker_name().to_bytes(), b"rust");
        select(chosen)
    }
}
