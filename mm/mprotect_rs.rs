// SPDX-License-Identifier: GPL-2.0

//! The page-table walk of mprotect(2), in Rust.
//!
//! This is `change_protection_range()` of `mm/mprotect.c` and everything below it, the p4d,
//! pud, pmd and pte loops, with the same behaviour and the same return value, written against
//! the page-table types of `kernel::mm::pgtable`. `change_protection()` calls it instead of the C
//! walker when the Rust walker is selected (`CONFIG_MPROTECT_RS_DEFAULT_RUST`, `mprotect_walker=`
//! on the command line, or `/sys/kernel/debug/mprotect/walker`).
//!
//! As in the C walker, the MMU notifier invalidation is started in the PUD loop, at the first
//! PUD that is not none, and covers from there to the end of the P4D's part of the range. Here
//! it is an [`InvalidateRange`] guard: it ends exactly once when `change_pud_range()` returns,
//! whichever way it returns, including the `-ENOMEM` of the populate path.
//!
//! Return values follow the C walker exactly, including its arithmetic: a level adds what the
//! level below returns to its count, negative or not, and a level stops at an allocation
//! failure of its own populate step, returning the error in place of its count.

use kernel::{
    bindings,
    ffi::{c_long, c_uint, c_ulong},
    mm::{
        pgtable::{
            self, page_none, pgd_range_unchecked, vma, InvalidateRange, LazyMmu, MappedFolio,
            MappedPage, MmuGather, P4dRange, PgProt, PmdSlot, Pte, PteTable, PudRange, PudSlot,
        },
        virt::{flags, VmaRef},
    },
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
};

const MM_CP_TRY_CHANGE_WRITABLE: c_ulong = bindings::MM_CP_TRY_CHANGE_WRITABLE as c_ulong;
const MM_CP_PROT_NUMA: c_ulong = bindings::MM_CP_PROT_NUMA as c_ulong;
const MM_CP_UFFD_WP: c_ulong = bindings::MM_CP_UFFD_WP as c_ulong;
const MM_CP_UFFD_WP_RESOLVE: c_ulong = bindings::MM_CP_UFFD_WP_RESOLVE as c_ulong;
const MM_CP_UFFD_RWP: c_ulong = bindings::MM_CP_UFFD_RWP as c_ulong;
const MM_CP_UFFD_RWP_RESOLVE: c_ulong = bindings::MM_CP_UFFD_RWP_RESOLVE as c_ulong;

const HPAGE_PMD_SIZE: usize = 1 << bindings::PMD_SHIFT;
const HPAGE_PMD_NR: c_long = 1 << (bindings::PMD_SHIFT as usize - PAGE_SHIFT);
const PUD_SIZE: usize = 1 << bindings::PUD_SHIFT;
const HPAGE_PUD_NR: c_long = 1 << (bindings::PUD_SHIFT as usize - PAGE_SHIFT);

const ENOMEM: c_long = -(bindings::ENOMEM as c_long);
const EAGAIN: c_long = -(bindings::EAGAIN as c_long);

/// The mm-internal parts of the C walker that this one shares (`include/linux/mprotect_rs.h`).
mod shared {
    use super::{bindings, c_uint, MappedFolio, Pte, PteTable, VmaRef};

    /// `folio_pte_batch_flags()` over PTEs `idx..idx + max_nr` of `ptes`, whose first entry is
    /// `pte` and maps a page of the large folio `folio`; with `respect`,
    /// `FPB_RESPECT_SOFT_DIRTY | FPB_RESPECT_WRITE`, else no flags.
    #[inline]
    pub(super) fn folio_pte_batch(
        folio: MappedFolio<'_>,
        ptes: &PteTable<'_>,
        idx: usize,
        pte: Pte,
        max_nr: usize,
        respect: bool,
    ) -> usize {
        let ptep = ptes.as_ptr(idx, max_nr);
        // SAFETY: `ptep..ptep + max_nr` are PTEs of a locked table (bounds checked by
        // `as_ptr()`), `pte` is the value of the first and maps a page of `folio`.
        unsafe {
            bindings::mprotect_rs_folio_pte_batch(
                folio.as_ptr(),
                ptep,
                pte.into_raw(),
                max_nr as c_uint,
                respect,
            ) as usize
        }
    }

    /// `vma_is_single_threaded_private()`.
    #[inline]
    pub(super) fn vma_is_single_threaded_private(vma: &VmaRef) -> bool {
        // SAFETY: `vma` is valid while its lock is held.
        unsafe { bindings::mprotect_rs_vma_is_single_threaded_private(vma.as_ptr()) }
    }

    /// `folio_can_map_prot_numa()`.
    #[inline]
    pub(super) fn folio_can_map_prot_numa(
        folio: Option<MappedFolio<'_>>,
        vma: &VmaRef,
        is_private_single_threaded: bool,
    ) -> bool {
        let folio = folio.map_or(core::ptr::null_mut(), |f| f.as_ptr());
        // SAFETY: `folio` is NULL or mapped in the locked table; `vma` is valid.
        unsafe {
            bindings::mprotect_rs_folio_can_map_prot_numa(
                folio,
                vma.as_ptr(),
                is_private_single_threaded,
            )
        }
    }

    /// `flush_tlb_batched_pending()`.
    #[inline]
    pub(super) fn flush_tlb_batched_pending(vma: &VmaRef) {
        // SAFETY: The mm of `vma` is live while its lock is held.
        unsafe { bindings::mprotect_rs_flush_tlb_batched_pending(vma.mm().as_raw()) }
    }

    /// `vma_soft_dirty_enabled()`.
    #[inline]
    pub(super) fn vma_soft_dirty_enabled(vma: &VmaRef) -> bool {
        // SAFETY: `vma` is valid while its lock is held.
        unsafe { bindings::mprotect_rs_vma_soft_dirty_enabled(vma.as_ptr()) }
    }

    /// `count_vm_numa_events(NUMA_HUGE_PTE_UPDATES, nr)`.
    #[inline]
    pub(super) fn count_numa_huge_pte_updates(nr: usize) {
        // SAFETY: Only updates a VM event counter.
        unsafe { bindings::mprotect_rs_count_numa_huge_pte_updates(nr) }
    }
}

/// One call of the walker: what stays the same over the whole range.
struct Walk<'a> {
    tlb: MmuGather<'a>,
    vma: &'a VmaRef,
    newprot: PgProt,
    cp_flags: c_ulong,
    /// `vma_soft_dirty_enabled()`: the VMA's flags do not change under its lock, so this is
    /// read once rather than per entry. Use [`Walk::soft_dirty`].
    soft_dirty: bool,
}

impl<'a> Walk<'a> {
    #[inline(always)]
    fn has(&self, flags: c_ulong) -> bool {
        self.cp_flags & flags != 0
    }

    /// `pgtable_populate_needed()`. Like the C walker, asked again where it is needed rather
    /// than kept: without uffd-wp that is one test of `cp_flags`.
    #[inline(always)]
    fn populate(&self) -> bool {
        self.has(MM_CP_UFFD_WP) && vma::userfaultfd_wp_use_markers(self.vma)
    }

    /// `pgtable_split_needed()`, asked only where a huge entry is found.
    #[inline(always)]
    fn split(&self) -> bool {
        self.has(MM_CP_UFFD_WP | MM_CP_UFFD_RWP) && !vma::is_anonymous(self.vma)
    }

    /// Whether soft-dirty tracking may need write faults: a constant `false` without
    /// `CONFIG_MEM_SOFT_DIRTY`.
    #[inline(always)]
    fn soft_dirty(&self) -> bool {
        cfg!(CONFIG_MEM_SOFT_DIRTY) && self.soft_dirty
    }

    /// `change_prepare()`: 0, or `-ENOMEM` if a lower table was needed and could not be made.
    fn prepare(&self, alloc: impl FnOnce() -> Result) -> c_long {
        if self.populate() && alloc().is_err() {
            return ENOMEM;
        }
        0
    }

    /// `change_protection_range()`.
    ///
    /// # Safety
    ///
    /// `[addr, end)` lies within the VMA.
    unsafe fn change_protection_range(&mut self, addr: usize, end: usize) -> c_long {
        if addr >= end {
            // The C walker BUG()s on an empty range; no caller passes one.
            kernel::warn_on!(true);
            return -(bindings::EINVAL as c_long);
        }
        // SAFETY: `addr < end`, and the range lies within the VMA by the safety requirements.
        let pgds = unsafe { pgd_range_unchecked(self.vma, addr, end) };
        let mut pages: c_long = 0;
        self.tlb.start_vma(self.vma);
        for pgd in pgds {
            let ret = self.prepare(|| pgd.alloc_p4d());
            if ret != 0 {
                pages = ret;
                break;
            }
            let Some(p4ds) = pgd.p4ds() else {
                continue;
            };
            pages = pages.wrapping_add(self.change_p4d_range(p4ds));
        }
        self.tlb.end_vma(self.vma);
        pages
    }

    /// `change_p4d_range()`.
    fn change_p4d_range(&mut self, p4ds: P4dRange<'a>) -> c_long {
        let mut pages: c_long = 0;
        for p4d in p4ds {
            let ret = self.prepare(|| p4d.alloc_pud());
            if ret != 0 {
                return ret;
            }
            let Some(puds) = p4d.puds() else {
                continue;
            };
            pages = pages.wrapping_add(self.change_pud_range(puds, p4d.end()));
        }
        pages
    }

    /// `change_pud_range()`, where the MMU notifier invalidation lives: it covers from the
    /// first PUD that is not none to `end`.
    fn change_pud_range(&mut self, puds: PudRange<'a>, end: usize) -> c_long {
        let mut range = core::pin::pin!(InvalidateRange::new());
        let mut pages: c_long = 0;
        'puds: for pud in puds {
            loop {
                let ret = self.prepare(|| pud.alloc_pmd());
                if ret != 0 {
                    // `range` ends when it goes out of scope, as the C walker's break does.
                    pages = ret;
                    break 'puds;
                }
                let val = pud.get();
                if val.none() {
                    break;
                }
                range.as_mut().start(
                    self.vma,
                    bindings::mmu_notifier_event_MMU_NOTIFY_PROTECTION_VMA,
                    pud.addr(),
                    end,
                );
                if val.leaf() {
                    if pud.end().wrapping_sub(pud.addr()) != PUD_SIZE || self.split() {
                        pud.split_huge();
                        continue;
                    }
                    let ret = pud.change_huge(&mut self.tlb, self.newprot, self.cp_flags) as c_long;
                    if ret == 0 {
                        continue;
                    }
                    // The huge PUD was handled.
                    if ret == HPAGE_PUD_NR {
                        pages = pages.wrapping_add(HPAGE_PUD_NR);
                    }
                    break;
                }
                pages = pages.wrapping_add(self.change_pmd_range(&pud, val));
                break;
            }
        }
        pages
    }

    /// `change_pmd_range()`.
    fn change_pmd_range(&mut self, pud: &PudSlot<'a>, val: pgtable::Pud) -> c_long {
        let Some(pmds) = pud.pmds(val) else {
            return 0;
        };
        let mut pages: c_long = 0;
        let mut nr_huge_updates: usize = 0;
        let mut pmds = pmds;
        'pmds: loop {
            // Most PMDs of a sparse range are none: skip them in a loop of their own, which
            // keeps the set-up for populated ones out of it.
            let pmd = loop {
                let Some(pmd) = pmds.next() else {
                    break 'pmds;
                };
                if !pmd.get().none() || self.populate() {
                    break pmd;
                }
                pgtable::cond_resched();
            };
            loop {
                // The entry is not none here, unless the PTE table is yet to be made.
                if self.populate() {
                    let ret = self.prepare(|| pmd.alloc_pte());
                    if ret != 0 {
                        pages = ret;
                        break 'pmds;
                    }
                    if pmd.get().none() {
                        break;
                    }
                }
                if pmd.get_lockless().is_huge() {
                    if pmd.end().wrapping_sub(pmd.addr()) != HPAGE_PMD_SIZE || self.split() {
                        pmd.split_huge();
                        // For file-backed, the pmd could have been cleared; make sure it is
                        // populated if necessary, then fall through to the PTE level.
                        let ret = self.prepare(|| pmd.alloc_pte());
                        if ret != 0 {
                            pages = ret;
                            break 'pmds;
                        }
                    } else {
                        let ret = pmd.change_huge(&mut self.tlb, self.newprot, self.cp_flags);
                        if ret != 0 {
                            // The huge PMD was handled.
                            if ret as c_long == HPAGE_PMD_NR {
                                pages = pages.wrapping_add(HPAGE_PMD_NR);
                                nr_huge_updates = nr_huge_updates.wrapping_add(1);
                            }
                            break;
                        }
                    }
                    // Fall through: the huge PMD was just split.
                }
                let ret = self.change_pte_range(pmd);
                if ret < 0 {
                    // Again, as the C walker's `goto again`.
                    if pmd.get().none() {
                        break;
                    }
                    continue;
                }
                pages = pages.wrapping_add(ret);
                break;
            }
            pgtable::cond_resched();
        }
        if nr_huge_updates != 0 {
            shared::count_numa_huge_pte_updates(nr_huge_updates);
        }
        pages
    }

    /// `change_pte_range()`: `-EAGAIN` if the PMD no longer maps a PTE table.
    ///
    /// Kept out of line: inlined (as in the C walker), the PMD loop runs out of registers and
    /// spills around `change_huge_pmd()` and the none-PMD skip (measured: 8 instructions more
    /// per huge PMD, 15% more on sparse ranges), while out of line costs about 30 instructions
    /// per PTE table (call, frame, `Walk` fields reloaded).
    #[inline(never)]
    fn change_pte_range(&mut self, pmd: PmdSlot<'a>) -> c_long {
        self.tlb.change_page_size(PAGE_SIZE);
        let Some(ptes) = pmd.map_lock() else {
            return EAGAIN;
        };
        let prot_numa = self.has(MM_CP_PROT_NUMA);
        let is_private_single_threaded =
            prot_numa && shared::vma_is_single_threaded_private(self.vma);

        shared::flush_tlb_batched_pending(self.vma);
        let lazy = LazyMmu::enable();
        let mut pages: c_long = 0;
        let mut idx = 0;
        while idx < ptes.len() {
            let oldpte = ptes.get(idx);
            let nr = if oldpte.present() {
                self.change_present(&ptes, idx, oldpte, is_private_single_threaded, &mut pages)
            } else if oldpte.none() {
                // Nobody plays with any none PTEs besides userfaultfd when applying the
                // protections.
                if self.has(MM_CP_UFFD_WP) && vma::userfaultfd_wp_use_markers(self.vma) {
                    // For file-backed memory the page or swap cache can exist behind a none
                    // PTE, so write-protect it with a marker.
                    ptes.set(idx, Pte::uffd_wp_marker());
                    pages = pages.wrapping_add(1);
                }
                1
            } else {
                pages = pages.wrapping_add(self.change_softleaf_pte(&ptes, idx, oldpte));
                1
            };
            idx += nr;
        }
        // Leave lazy MMU mode before the table is unlocked, as the C walker does.
        drop(lazy);
        drop(ptes);
        pages
    }

    /// The present-PTE part of `change_pte_range()`: returns the number of PTEs handled (the
    /// batch), adding those changed to `pages`.
    #[inline(always)]
    fn change_present(
        &mut self,
        ptes: &PteTable<'a>,
        idx: usize,
        oldpte: Pte,
        is_private_single_threaded: bool,
        pages: &mut c_long,
    ) -> usize {
        let prot_numa = self.has(MM_CP_PROT_NUMA);
        let max_nr = ptes.len() - idx;

        // Already in the desired state: `PROT_NONE` for NUMA hinting; for uffd-rwp, the uffd
        // bit on top of `PROT_NONE` (plain `PROT_NONE` from mprotect() still needs the bit).
        // One test of the flags first, so that the common case (neither) costs one branch.
        if self.has(MM_CP_PROT_NUMA | MM_CP_UFFD_RWP)
            && oldpte.protnone()
            && (prot_numa || oldpte.uffd())
        {
            return 1;
        }

        let page = vma::normal_page(self.vma, ptes, ptes.addr(idx), oldpte);
        let folio = page.map(MappedPage::folio);

        // Avoid trapping faults against the zero or KSM pages.
        if prot_numa
            && !shared::folio_can_map_prot_numa(folio, self.vma, is_private_single_threaded)
        {
            // Skip the whole batch.
            return folio_batch(folio, ptes, idx, oldpte, max_nr, false);
        }

        let nr = folio_batch(folio, ptes, idx, oldpte, max_nr, true);
        // The small-folio common case gets its own copy of the inlined code, with `nr` a
        // constant, as in the C walker.
        if nr == 1 {
            self.change_present_ptes(ptes, idx, 1, folio, page);
        } else {
            self.change_present_ptes(ptes, idx, nr, folio, page);
        }
        // Counts wrap, as in the C walker: no overflow check in the PTE loop.
        *pages = pages.wrapping_add(nr as c_long);
        nr
    }

    /// `change_present_ptes()`.
    #[inline(always)]
    fn change_present_ptes(
        &mut self,
        ptes: &PteTable<'a>,
        idx: usize,
        nr: usize,
        folio: Option<MappedFolio<'_>>,
        page: Option<MappedPage<'_>>,
    ) {
        let oldpte = ptes.modify_prot_start(idx, nr);
        let mut ptent = oldpte.modify(self.newprot);

        if self.has(MM_CP_UFFD_WP | MM_CP_UFFD_RWP) {
            ptent = ptent.mkuffd();
        } else if self.has(MM_CP_UFFD_WP_RESOLVE | MM_CP_UFFD_RWP_RESOLVE) {
            ptent = ptent.clear_uffd();
        }

        // The uffd bit on a VM_UFFD_RWP VMA carries PROT_NONE semantics: if mprotect() or NUMA
        // hinting changed the base protection, restore PAGE_NONE so the PTE still traps.
        if vma::userfaultfd_rwp(self.vma) && ptent.uffd() {
            ptent = ptent.modify(page_none());
        }

        // Writable shared mappings may want write faults (vma_wants_writenotify()), writable
        // private ones have to handle COW; either way the PTEs can sometimes be made writable
        // here and spare the write fault.
        if self.has(MM_CP_TRY_CHANGE_WRITABLE) && !ptent.write() {
            self.set_write_prot_commit_flush_ptes(ptes, idx, nr, oldpte, ptent, folio, page);
        } else {
            self.prot_commit_flush_ptes(ptes, idx, nr, oldpte, ptent, 0, false);
        }
    }

    /// `prot_commit_flush_ptes()`: commits PTEs `idx + off..idx + off + nr` of a batch started
    /// at `idx` with `oldpte`, `ptent`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn prot_commit_flush_ptes(
        &mut self,
        ptes: &PteTable<'a>,
        idx: usize,
        nr: usize,
        oldpte: Pte,
        ptent: Pte,
        off: usize,
        set_write: bool,
    ) {
        let idx = idx + off;
        let oldpte = oldpte.advance_pfn(off);
        let mut ptent = ptent.advance_pfn(off);
        if set_write {
            ptent = ptent.mkwrite(self.vma);
        }
        ptes.modify_prot_commit(idx, nr, oldpte, ptent);
        if Pte::needs_flush(oldpte, ptent) {
            self.tlb.flush_pte_range(ptes.addr(idx), nr * PAGE_SIZE);
        }
    }

    /// `set_write_prot_commit_flush_ptes()`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn set_write_prot_commit_flush_ptes(
        &mut self,
        ptes: &PteTable<'a>,
        idx: usize,
        nr: usize,
        oldpte: Pte,
        ptent: Pte,
        folio: Option<MappedFolio<'_>>,
        page: Option<MappedPage<'_>>,
    ) {
        if self.vma.flags() & flags::SHARED != 0 {
            let set_write = self.can_change_shared_pte_writable(ptent);
            self.prot_commit_flush_ptes(ptes, idx, nr, oldpte, ptent, 0, set_write);
            return;
        }
        let anon = folio.is_some_and(MappedFolio::is_anon);
        let (true, Some(page)) = (self.maybe_change_pte_writable(ptent) && anon, page) else {
            self.prot_commit_flush_ptes(ptes, idx, nr, oldpte, ptent, 0, false);
            return;
        };
        self.commit_anon_folio_batch(ptes, idx, nr, oldpte, ptent, page);
    }

    /// `commit_anon_folio_batch()`: a batch of PTEs mapping consecutive pages of one anonymous
    /// folio can only be made writable in sub-batches of `PageAnonExclusive()` pages.
    #[inline(always)]
    fn commit_anon_folio_batch(
        &mut self,
        ptes: &PteTable<'a>,
        idx: usize,
        nr: usize,
        oldpte: Pte,
        ptent: Pte,
        first: MappedPage<'_>,
    ) {
        let mut off = 0;
        while off < nr {
            let exclusive = first.nth_anon_exclusive(off);
            let len = page_anon_exclusive_batch(off, nr - off, first, exclusive);
            self.prot_commit_flush_ptes(ptes, idx, len, oldpte, ptent, off, exclusive);
            off += len;
        }
    }

    /// `maybe_change_pte_writable()`.
    fn maybe_change_pte_writable(&self, pte: Pte) -> bool {
        if kernel::warn_on_once!(self.vma.flags() & flags::WRITE == 0) {
            return false;
        }
        // Don't touch entries that are not even readable.
        if pte.protnone() {
            return false;
        }
        // Do we need write faults for softdirty tracking? (`pte_needs_soft_dirty_wp()`)
        if self.soft_dirty() && !pte.soft_dirty() {
            return false;
        }
        // Do we need write faults for uffd-wp tracking?
        !vma::userfaultfd_pte_wp(self.vma, pte)
    }

    /// `can_change_shared_pte_writable()`.
    fn can_change_shared_pte_writable(&self, pte: Pte) -> bool {
        if !self.maybe_change_pte_writable(pte) {
            return false;
        }
        // `VM_WARN_ON_ONCE()`: the zero page is never mapped dirty.
        if cfg!(CONFIG_DEBUG_VM) {
            kernel::warn_on_once!(pte.is_zero_pfn() && pte.dirty());
        }
        // A dirty PTE in a writable shared mapping means the file system was already notified,
        // so the PTE can be made writable just like the write-fault handler would.
        pte.dirty()
    }

    /// `change_softleaf_pte()`.
    fn change_softleaf_pte(&mut self, ptes: &PteTable<'a>, idx: usize, oldpte: Pte) -> c_long {
        let entry = oldpte.softleaf();
        let mut newpte = if entry.is_migration_write() {
            // A protection check is difficult, so just be safe and disable write.
            let entry = if entry.migration_folio_is_anon() {
                entry.readable_exclusive_migration()
            } else {
                entry.readable_migration()
            };
            let newpte = Pte::from_softleaf(entry);
            if oldpte.swp_soft_dirty() {
                newpte.swp_mksoft_dirty()
            } else {
                newpte
            }
        } else if entry.is_device_private_write() {
            // Soft-dirtiness is not preserved, see copy_nonpresent_pte().
            let newpte = Pte::from_softleaf(entry.readable_device_private());
            if oldpte.swp_uffd() {
                newpte.swp_mkuffd()
            } else {
                newpte
            }
        } else if entry.is_marker() {
            // Error entries are ignored: any access raises SIGBUS or SIGSEGV anyway.
            if entry.is_poison_marker() || entry.is_guard_marker() {
                return 0;
            }
            // Resolving a uffd-wp marker drops it: the next fault will not trap.
            if self.has(MM_CP_UFFD_WP_RESOLVE | MM_CP_UFFD_RWP_RESOLVE) {
                ptes.clear(idx);
                return 1;
            }
            return 0;
        } else {
            oldpte
        };

        if self.has(MM_CP_UFFD_WP | MM_CP_UFFD_RWP) {
            newpte = newpte.swp_mkuffd();
        } else if self.has(MM_CP_UFFD_WP_RESOLVE | MM_CP_UFFD_RWP_RESOLVE) {
            newpte = newpte.swp_clear_uffd();
        }

        if !oldpte.same(newpte) {
            ptes.set(idx, newpte);
            return 1;
        }
        0
    }
}

/// `mprotect_folio_pte_batch()`: the number of PTEs from `idx` that map consecutive pages of
/// `folio` and can be changed as one.
#[inline(always)]
fn folio_batch(
    folio: Option<MappedFolio<'_>>,
    ptes: &PteTable<'_>,
    idx: usize,
    pte: Pte,
    max_nr: usize,
    respect: bool,
) -> usize {
    match folio {
        // No underlying folio, or a small one: nothing to batch.
        Some(folio) if folio.is_large() => {
            shared::folio_pte_batch(folio, ptes, idx, pte, max_nr, respect)
        }
        _ => 1,
    }
}

/// `page_anon_exclusive_batch()`: the length of the run of pages from `start` (at most
/// `max_len`) whose `PageAnonExclusive()` equals `expected`.
#[inline(always)]
fn page_anon_exclusive_batch(
    start: usize,
    max_len: usize,
    first: MappedPage<'_>,
    expected: bool,
) -> usize {
    let mut idx = start + 1;
    while idx < start + max_len {
        if first.nth_anon_exclusive(idx) != expected {
            break;
        }
        idx += 1;
    }
    idx - start
}

/// The Rust `change_protection_range()`; `change_protection()` calls it when the Rust walker is
/// selected.
///
/// # Safety
///
/// As for the C `change_protection_range()`: `vma` is a valid VMA whose mmap lock (or VMA
/// lock) the caller holds for the whole call; `tlb` was set up with `tlb_gather_mmu()` for its
/// mm and is not used by anyone else during the call; `[addr, end)` is a non-empty range within
/// the VMA.
#[export]
pub unsafe extern "C" fn rust_change_protection_range(
    tlb: *mut bindings::mmu_gather,
    vma: *mut bindings::vm_area_struct,
    addr: c_ulong,
    end: c_ulong,
    newprot: bindings::pgprot_t,
    cp_flags: c_ulong,
) -> c_long {
    // SAFETY: The caller holds the VMA's lock for the whole call, see above.
    let vma = unsafe { VmaRef::from_raw(vma) };
    // SAFETY: The caller's gather is valid (so not null) and ours for the duration of the
    // call, see above.
    let tlb = unsafe { MmuGather::from_raw(core::ptr::NonNull::new_unchecked(tlb)) };

    let mut walk = Walk {
        tlb,
        vma,
        newprot,
        cp_flags,
        soft_dirty: cfg!(CONFIG_MEM_SOFT_DIRTY) && shared::vma_soft_dirty_enabled(vma),
    };
    // SAFETY: The caller passes a range within the VMA, see above.
    unsafe { walk.change_protection_range(addr, end) }
}
