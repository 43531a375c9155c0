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
    error::code::{EAGAIN, EINVAL, ENOMEM},
    ffi::{c_long, c_uint, c_ulong},
    mm::{
        pgtable::{
            self, pgd_range_unchecked, vma, CpFlags, InvalidateEvent, InvalidateRange, LeafPte,
            MappedFolio, MappedPage, P4dRange, PgProt, PmdRange, PmdSlot, PresentPte, ProtChange,
            Pte, PteBatch, PteEntry, PteTable, PudEntry, PudRange, WalkableVma,
        },
        virt::{flags, VmaRef},
    },
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
};

const MM_CP_TRY_CHANGE_WRITABLE: CpFlags = CpFlags::TRY_CHANGE_WRITABLE;
const MM_CP_PROT_NUMA: CpFlags = CpFlags::PROT_NUMA;
const MM_CP_UFFD_WP: CpFlags = CpFlags::UFFD_WP;
const MM_CP_UFFD_WP_RESOLVE: CpFlags = CpFlags::UFFD_WP_RESOLVE;
const MM_CP_UFFD_RWP: CpFlags = CpFlags::UFFD_RWP;
const MM_CP_UFFD_RWP_RESOLVE: CpFlags = CpFlags::UFFD_RWP_RESOLVE;

const HPAGE_PMD_SIZE: usize = 1 << bindings::PMD_SHIFT;
const HPAGE_PMD_NR: c_long = 1 << (bindings::PMD_SHIFT as usize - PAGE_SHIFT);
const PUD_SIZE: usize = 1 << bindings::PUD_SHIFT;
const HPAGE_PUD_NR: c_long = 1 << (bindings::PUD_SHIFT as usize - PAGE_SHIFT);

/// The walker's counts carry errors as negative errnos, as the C walker's do.
#[inline(always)]
fn errno(err: Error) -> c_long {
    err.to_errno() as c_long
}

/// The mm-internal parts of the C walker that this one shares (`include/linux/mprotect_rs.h`).
mod shared {
    use super::{
        bindings, c_uint, MappedFolio, MappedPage, PresentPte, PteBatch, PteTable, VmaRef,
    };

    /// `folio_pte_batch_flags()` over at most `max_nr` PTEs of `ptes` from `first`, which maps
    /// `page` of the large folio `folio`; with `respect`,
    /// `FPB_RESPECT_SOFT_DIRTY | FPB_RESPECT_WRITE`, else no flags.
    #[inline]
    pub(super) fn folio_pte_batch<'t>(
        folio: MappedFolio<'t>,
        ptes: &'t PteTable<'_>,
        first: PresentPte<'t>,
        page: Option<MappedPage<'t>>,
        max_nr: usize,
        respect: bool,
    ) -> PteBatch<'t> {
        let Some(ptep) = ptes.as_ptr(first.idx(), max_nr) else {
            return PteBatch::single(first, page);
        };
        // A copy of the first PTE, passed by address as `folio_pte_batch_flags()` takes it (by
        // value, it would live on the wrapper's stack, which then needs a stack-protector check).
        // Without `FPB_MERGE_*` flags it is only read.
        let mut ptent = first.pte().into_raw();
        // SAFETY: `ptep..ptep + max_nr` are PTEs of a locked table, `max_nr >= 1` (bounds
        // checked by `as_ptr()`); `ptent`, valid for the call, is a copy of the value of the
        // first, not the entry itself, and the first maps a page of `folio`, a large folio.
        let nr = unsafe {
            bindings::mprotect_rs_folio_pte_batch(
                folio.as_ptr(),
                ptep.as_ptr(),
                &mut ptent,
                max_nr as c_uint,
                respect,
            )
        };
        // SAFETY: `folio_pte_batch()` counted `nr` PTEs from `first` that map consecutive
        // pages of `folio` (at least the first, so `nr >= 1`), and `page` is the first's page.
        unsafe { PteBatch::new(first, nr as usize, page) }
    }

    /// `vma_is_single_threaded_private()`.
    #[inline]
    pub(super) fn vma_is_single_threaded_private(vma: &VmaRef) -> bool {
        // SAFETY: `vma` is valid while its lock is held.
        unsafe { bindings::mprotect_rs_vma_is_single_threaded_private(vma.as_ptr()) }
    }

    /// `folio_can_map_prot_numa()`, called directly; `false` without `CONFIG_NUMA_BALANCING`,
    /// as the inline stub of `mm/internal.h` returns.
    #[inline]
    pub(super) fn folio_can_map_prot_numa(
        folio: Option<MappedFolio<'_>>,
        vma: &VmaRef,
        is_private_single_threaded: bool,
    ) -> bool {
        #[cfg(CONFIG_NUMA_BALANCING)]
        {
            let folio = folio.map_or(core::ptr::null_mut(), |f| f.as_ptr());
            // SAFETY: `folio` is NULL or mapped in the locked table; `vma` is valid.
            unsafe {
                bindings::folio_can_map_prot_numa(folio, vma.as_ptr(), is_private_single_threaded)
            }
        }
        #[cfg(not(CONFIG_NUMA_BALANCING))]
        {
            let _ = (folio, vma, is_private_single_threaded);
            false
        }
    }

    /// `flush_tlb_batched_pending()`, called directly; nothing without
    /// `CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH`, as the inline stub of `mm/internal.h` does.
    #[inline]
    pub(super) fn flush_tlb_batched_pending(vma: &VmaRef) {
        #[cfg(CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH)]
        // SAFETY: The mm of `vma` is live while its lock is held.
        unsafe {
            bindings::flush_tlb_batched_pending(vma.mm().as_raw())
        };
        #[cfg(not(CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH))]
        let _ = vma;
    }
}

/// `count_vm_numa_events(NUMA_HUGE_PTE_UPDATES, nr)` of `<linux/vmstat.h>`: nothing without
/// `CONFIG_NUMA_BALANCING`, as the macro does. `count_vm_events()` is a helper, inlined like
/// the page-table ones, as the C walker inlines it.
#[inline]
fn count_numa_huge_pte_updates(nr: usize) {
    #[cfg(CONFIG_NUMA_BALANCING)]
    // SAFETY: Only adds `nr` to this CPU's count of an event that exists with NUMA balancing.
    unsafe {
        bindings::count_vm_events(bindings::vm_event_item_NUMA_HUGE_PTE_UPDATES, nr as c_long)
    };
    #[cfg(not(CONFIG_NUMA_BALANCING))]
    let _ = nr;
}

/// One call of the walker: what stays the same over the whole range.
struct Walk<'a> {
    /// The VMA, the gather, the new protection and the flags.
    change: ProtChange<'a>,
    /// `vma_soft_dirty_enabled()`: the VMA's flags do not change under its lock, so this is
    /// read once rather than per entry. Use [`Walk::soft_dirty`].
    ///
    /// Asked per call, even of calls that reach no PTE, as a test of the VMA flags: read from
    /// the VMA where the C walker asks (per PTE made writable), it cost 2 instructions more per
    /// PTE on 4K pages; asked per PTE table, 2.4.
    soft_dirty: bool,
}

impl<'a> Walk<'a> {
    /// The VMA being changed.
    #[inline(always)]
    fn vma(&self) -> &'a WalkableVma {
        self.change.vma()
    }

    #[inline(always)]
    fn has(&self, flags: CpFlags) -> bool {
        self.change.flags().any(flags)
    }

    /// `pgtable_populate_needed()`. Like the C walker, asked again where it is needed rather
    /// than kept: without uffd-wp that is one test of `cp_flags`.
    #[inline(always)]
    fn populate(&self) -> bool {
        self.has(MM_CP_UFFD_WP) && vma::userfaultfd_wp_use_markers(self.vma())
    }

    /// `pgtable_split_needed()`, asked only where a huge entry is found.
    #[inline(always)]
    fn split(&self) -> bool {
        self.has(MM_CP_UFFD_WP | MM_CP_UFFD_RWP) && !vma::is_anonymous(self.vma())
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
            return errno(ENOMEM);
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
            return errno(EINVAL);
        }
        // SAFETY: `addr < end`, and the range lies within the VMA by the safety requirements.
        let pgds = unsafe { pgd_range_unchecked(self.vma(), addr, end) };
        let mut pages: c_long = 0;
        self.change.start_vma();
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
        self.change.end_vma();
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
        let event = InvalidateEvent::ProtectionVma;
        let mut range = core::pin::pin!(InvalidateRange::new(event));
        let mut pages: c_long = 0;
        'puds: for pud in puds {
            loop {
                let ret = self.prepare(|| pud.alloc_pmd());
                if ret != 0 {
                    // `range` ends when it goes out of scope, as the C walker's break does.
                    pages = ret;
                    break 'puds;
                }
                // The range starts in both arms: started once after the match, the table's
                // PMD range went through an `Option`, LLVM lost that its VMA is the walk's, and
                // `PmdSlot::change_huge()` checked it at every huge PMD.
                match pud.entry() {
                    PudEntry::None => break,
                    PudEntry::Table(pmds) => {
                        range.as_mut().start(self.vma(), pud.addr(), end);
                        pages = pages.wrapping_add(self.change_pmd_range(pmds));
                        break;
                    }
                    PudEntry::Leaf(_) => range.as_mut().start(self.vma(), pud.addr(), end),
                }
                if pud.end().wrapping_sub(pud.addr()) != PUD_SIZE || self.split() {
                    pud.split_huge();
                    continue;
                }
                let Ok(ret) = pud.change_huge(&mut self.change) else {
                    // Not reached: the slot and the change are of the same VMA.
                    break;
                };
                if ret == 0 {
                    continue;
                }
                let ret = ret as c_long;
                // The huge PUD was handled.
                if ret == HPAGE_PUD_NR {
                    pages = pages.wrapping_add(HPAGE_PUD_NR);
                }
                break;
            }
        }
        pages
    }

    /// `change_pmd_range()`.
    fn change_pmd_range(&mut self, pmds: PmdRange<'a>) -> c_long {
        let mut pages: c_long = 0;
        let mut nr_huge_updates: usize = 0;
        let mut pmds = pmds;
        'pmds: loop {
            // Most PMDs of a sparse range are none: skip them in a loop of their own, which
            // keeps the set-up for populated ones out of it. The entry is read once for the
            // none test and the huge one, where the C walker reads it for each: the value
            // only chooses the path, and each path that acts on it checks the entry again
            // under its lock.
            let (mut pmd, mut entry) = loop {
                let Some(pmd) = pmds.next() else {
                    break 'pmds;
                };
                let entry = pmd.get_lockless();
                if !entry.none() || self.populate() {
                    break (pmd, entry);
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
                    entry = pmd.get_lockless();
                    if entry.none() {
                        break;
                    }
                }
                if entry.is_huge() {
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
                        let Ok(ret) = pmd.change_huge(&mut self.change) else {
                            // Not reached: the slot and the change are of the same VMA.
                            break;
                        };
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
                let ret = self.change_pte_range(pmd.reborrow());
                if ret < 0 {
                    // Again, as the C walker's `goto again`: a PMD that went none is
                    // populated again first where uffd-wp needs markers, else skipped.
                    entry = pmd.get_lockless();
                    if !self.populate() && entry.none() {
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
            count_numa_huge_pte_updates(nr_huge_updates);
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
    fn change_pte_range(&mut self, mut pmd: PmdSlot<'_>) -> c_long {
        self.change.change_page_size(PAGE_SIZE);
        let Some(ptes) = pmd.map_lock() else {
            return errno(EAGAIN);
        };
        let prot_numa = self.has(MM_CP_PROT_NUMA);
        let is_private_single_threaded =
            prot_numa && shared::vma_is_single_threaded_private(self.vma());

        shared::flush_tlb_batched_pending(self.vma());
        let lazy = ptes.lazy_mmu();
        let mut pages: c_long = 0;
        let mut idx = 0;
        while let Some(entry) = ptes.entry(idx) {
            let nr = match entry {
                PteEntry::Present(oldpte) => {
                    self.change_present(&ptes, oldpte, is_private_single_threaded, &mut pages)
                }
                PteEntry::None => {
                    // Nobody plays with any none PTEs besides userfaultfd when applying the
                    // protections.
                    if self.has(MM_CP_UFFD_WP) && vma::userfaultfd_wp_use_markers(self.vma()) {
                        // For file-backed memory the page or swap cache can exist behind a none
                        // PTE, so write-protect it with a marker.
                        // SAFETY: A marker maps nothing and is written over a none entry.
                        unsafe { ptes.set(idx, Pte::uffd_wp_marker()) };
                        pages = pages.wrapping_add(1);
                    }
                    1
                }
                PteEntry::Leaf(oldpte) => {
                    pages = pages.wrapping_add(self.change_softleaf_pte(&ptes, idx, oldpte));
                    1
                }
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
        ptes: &PteTable<'_>,
        first: PresentPte<'_>,
        is_private_single_threaded: bool,
        pages: &mut c_long,
    ) -> usize {
        let prot_numa = self.has(MM_CP_PROT_NUMA);
        let oldpte = first.pte();

        // Already in the desired state: `PROT_NONE` for NUMA hinting; for uffd-rwp, the uffd
        // bit on top of `PROT_NONE` (plain `PROT_NONE` from mprotect() still needs the bit).
        // One test of the flags first, so that the common case (neither) costs one branch.
        if self.has(MM_CP_PROT_NUMA | MM_CP_UFFD_RWP)
            && oldpte.protnone()
            && (prot_numa || oldpte.uffd())
        {
            return 1;
        }

        let page = first.normal_page();
        let folio = page.map(MappedPage::folio);

        // Avoid trapping faults against the zero or KSM pages.
        if prot_numa
            && !shared::folio_can_map_prot_numa(folio, self.vma(), is_private_single_threaded)
        {
            // Skip the whole batch.
            let max_nr = ptes.len() - first.idx();
            return folio_batch(folio, ptes, first, page, max_nr, false).len();
        }

        let max_nr = ptes.len() - first.idx();
        let batch = folio_batch(folio, ptes, first, page, max_nr, true);
        let nr = batch.len();
        // The small-folio common case gets its own copy of the inlined code, with `nr` a
        // constant, as in the C walker.
        if nr == 1 {
            self.change_present_ptes(ptes, &batch, 1, folio);
        } else {
            self.change_present_ptes(ptes, &batch, nr, folio);
        }
        // Counts wrap, as in the C walker: no overflow check in the PTE loop.
        *pages = pages.wrapping_add(nr as c_long);
        nr
    }

    /// `change_present_ptes()`.
    #[inline(always)]
    ///
    /// `nr` is `batch.len()`, passed so that the caller can make it a constant.
    fn change_present_ptes(
        &mut self,
        ptes: &PteTable<'_>,
        batch: &PteBatch<'_>,
        nr: usize,
        folio: Option<MappedFolio<'_>>,
    ) {
        // SAFETY: `batch` is of `ptes`, and every PTE of it is committed below, by
        // `prot_commit_flush_ptes()` (in parts by `commit_anon_folio_batch()`).
        let oldpte = unsafe { ptes.modify_prot_start(batch) };
        let mut ptent = oldpte.modify(self.change.prot());

        if self.has(MM_CP_UFFD_WP | MM_CP_UFFD_RWP) {
            ptent = ptent.mkuffd();
        } else if self.has(MM_CP_UFFD_WP_RESOLVE | MM_CP_UFFD_RWP_RESOLVE) {
            ptent = ptent.clear_uffd();
        }

        // The uffd bit on a VM_UFFD_RWP VMA carries PROT_NONE semantics: if mprotect() or NUMA
        // hinting changed the base protection, restore PAGE_NONE so the PTE still traps.
        if vma::userfaultfd_rwp(self.vma()) && ptent.uffd() {
            ptent = ptent.modify(PgProt::none());
        }

        // Writable shared mappings may want write faults (vma_wants_writenotify()), writable
        // private ones have to handle COW; either way the PTEs can sometimes be made writable
        // here and spare the write fault.
        if self.has(MM_CP_TRY_CHANGE_WRITABLE) && !ptent.write() {
            self.set_write_prot_commit_flush_ptes(ptes, batch, nr, oldpte, ptent, folio);
        } else {
            self.prot_commit_flush_ptes(ptes, batch, 0, nr, oldpte, ptent, false);
        }
    }

    /// `prot_commit_flush_ptes()`: commits PTEs `off..off + nr` of `batch`, started with
    /// `oldpte` and changed to `ptent`, made writable if `set_write`.
    ///
    /// Every caller passes a `ptent` computed from `oldpte` by `pte_modify()` with the
    /// change's protection and by the uffd bit, and `set_write` only where
    /// `can_change_pte_writable()`'s rules allow it: `can_change_shared_pte_writable()` for a
    /// shared VMA, `maybe_change_pte_writable()` and `PageAnonExclusive()` for an anonymous
    /// page of a private one.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn prot_commit_flush_ptes(
        &mut self,
        ptes: &PteTable<'_>,
        batch: &PteBatch<'_>,
        off: usize,
        nr: usize,
        oldpte: Pte,
        ptent: Pte,
        set_write: bool,
    ) {
        let oldpte = oldpte.advance_pfn(off);
        let mut ptent = ptent.advance_pfn(off);
        if set_write {
            ptent = ptent.mkwrite(self.vma());
        }
        // SAFETY: `batch` was started by `change_present_ptes()`, and this part of it, of at
        // least one PTE and within it (the whole batch, or a run of
        // `PteBatch::anon_exclusive_run()` from within it), is committed once; `oldpte` is the
        // start's value advanced by `off`; `ptent` differs from it in protection and software
        // bits only, and is writable only as the rules above allow (see the callers); the flush
        // is recorded just below, and the notifier range was started in the PUD loop.
        unsafe { ptes.modify_prot_commit(batch, off, nr, oldpte, ptent) };
        if Pte::needs_flush(oldpte, ptent) {
            let addr = ptes.addr(batch.idx() + off);
            // No overflow check needed: at most a table's worth of pages.
            let size = nr.wrapping_mul(PAGE_SIZE);
            self.change.flush_pte_range(addr, size);
        }
    }

    /// `set_write_prot_commit_flush_ptes()`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn set_write_prot_commit_flush_ptes(
        &mut self,
        ptes: &PteTable<'_>,
        batch: &PteBatch<'_>,
        nr: usize,
        oldpte: Pte,
        ptent: Pte,
        folio: Option<MappedFolio<'_>>,
    ) {
        if self.vma().flags() & flags::SHARED != 0 {
            let set_write = self.can_change_shared_pte_writable(ptent);
            self.prot_commit_flush_ptes(ptes, batch, 0, nr, oldpte, ptent, set_write);
            return;
        }
        let anon = folio.is_some_and(MappedFolio::is_anon);
        if !(self.maybe_change_pte_writable(ptent) && anon) {
            self.prot_commit_flush_ptes(ptes, batch, 0, nr, oldpte, ptent, false);
            return;
        }
        self.commit_anon_folio_batch(ptes, batch, oldpte, ptent);
    }

    /// `commit_anon_folio_batch()`: a batch of PTEs mapping consecutive pages of one anonymous
    /// folio can only be made writable in sub-batches of `PageAnonExclusive()` pages.
    #[inline(always)]
    fn commit_anon_folio_batch(
        &mut self,
        ptes: &PteTable<'_>,
        batch: &PteBatch<'_>,
        oldpte: Pte,
        ptent: Pte,
    ) {
        // Tested at the end, which is the C loop (tested first) because a batch has at least one
        // PTE; every run from within the batch is of at least one PTE and ends within it. With
        // one exit, what the loop body reads the same each time can move out of it (on arm64,
        // `pte_advance_pfn()`'s PFN masks, from `TCR_EL1`).
        let mut off: usize = 0;
        loop {
            // `page_anon_exclusive_batch()`: the run of pages from `off` that are, or are not,
            // exclusive (`PageAnonExclusive()`).
            let (exclusive, len) = batch.anon_exclusive_run(off);
            self.prot_commit_flush_ptes(ptes, batch, off, len, oldpte, ptent, exclusive);
            // Cannot overflow: the run ends within the batch.
            off = off.wrapping_add(len);
            if off >= batch.len() {
                break;
            }
        }
    }

    /// `maybe_change_pte_writable()`.
    fn maybe_change_pte_writable(&self, pte: Pte) -> bool {
        if kernel::warn_on_once!(self.vma().flags() & flags::WRITE == 0) {
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
        !vma::userfaultfd_pte_wp(self.vma(), pte)
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
    ///
    /// Out of line: software leaf entries are rare, and inlined this function's registers
    /// crowd the PTE loop's common paths (measured: one instruction more per none PTE).
    #[inline(never)]
    fn change_softleaf_pte(
        &mut self,
        ptes: &PteTable<'_>,
        idx: usize,
        leaf: LeafPte<'_>,
    ) -> c_long {
        let oldpte = leaf.pte();
        let entry = leaf.softleaf();
        let mut newpte = if let Some(migration) = leaf.migration_write() {
            // A protection check is difficult, so just be safe and disable write.
            let entry = if migration.folio_is_anon() {
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
                // SAFETY: The entry is a marker.
                unsafe { ptes.clear(idx) };
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
            // SAFETY: `newpte` is the non-present entry `oldpte` with fewer permissions (a
            // readable migration or device-private entry) or another uffd bit, written over it.
            unsafe { ptes.set(idx, newpte) };
            return 1;
        }
        0
    }
}

/// `mprotect_folio_pte_batch()`: the number of PTEs from `idx` that map consecutive pages of
/// `folio` and can be changed as one.
#[inline(always)]
fn folio_batch<'t>(
    folio: Option<MappedFolio<'t>>,
    ptes: &'t PteTable<'_>,
    first: PresentPte<'t>,
    page: Option<MappedPage<'t>>,
    max_nr: usize,
    respect: bool,
) -> PteBatch<'t> {
    match folio {
        // No underlying folio, or a small one: nothing to batch.
        Some(folio) if folio.is_large() => {
            shared::folio_pte_batch(folio, ptes, first, page, max_nr, respect)
        }
        _ => PteBatch::single(first, page),
    }
}

/// The Rust `change_protection_range()`; `change_protection()` calls it when the Rust walker is
/// selected.
///
/// # Safety
///
/// As for the C `change_protection_range()`: `vma` is a valid VMA, not a hugetlb one, whose
/// mmap lock (or VMA lock) the caller holds for the whole call; `tlb` was set up with
/// `tlb_gather_mmu()` for its mm and is not used by anyone else during the call; `newprot` is
/// the VMA's `vm_page_prot` or `PAGE_NONE`, as `change_protection()` computes it; `[addr, end)`
/// is a non-empty range within the VMA.
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
    // SAFETY: `change_protection()` sends hugetlb VMAs to `hugetlb_change_protection()`,
    // never here.
    let vma = unsafe { WalkableVma::new_unchecked(vma) };
    // SAFETY: The caller's gather is valid, so not null.
    let tlb = unsafe { core::ptr::NonNull::new_unchecked(tlb) };
    let cp_flags = CpFlags::from_bits(cp_flags);
    // SAFETY: The caller's gather was set up for the VMA's mm and is ours for the duration of
    // the call, and `newprot` is what `change_protection()` computes: the VMA's `vm_page_prot`,
    // or `PAGE_NONE` for NUMA hinting (see above).
    let change = unsafe { ProtChange::from_raw(tlb, vma, newprot, cp_flags) };

    let mut walk = Walk {
        change,
        soft_dirty: cfg!(CONFIG_MEM_SOFT_DIRTY) && vma::soft_dirty_enabled(vma),
    };
    // SAFETY: The caller passes a range within the VMA, see above.
    unsafe { walk.change_protection_range(addr, end) }
}
