// SPDX-License-Identifier: GPL-2.0

//! Page tables.
//!
//! Types for walking and changing the page tables of a VMA's address space, one level at a time:
//!
//! - entry values: [`Pgd`], [`P4d`], [`Pud`], [`Pmd`] and [`Pte`], copies of one entry with the
//!   predicates and modifiers of `<linux/pgtable.h>`;
//! - entry slots: [`PgdSlot`], [`P4dSlot`], [`PudSlot`] and [`PmdSlot`], each a pointer to one
//!   entry of a live table together with the part of the address range that entry covers. A slot
//!   is only handed out by the iterator over the table one level up ([`PgdSlot::p4ds`],
//!   [`P4dSlot::puds`], [`PudSlot::pmds`]), so a PMD can never be used where a PUD is expected,
//!   and no slot points outside its table;
//! - [`PteTable`]: the PTEs of one PMD's range, mapped and locked by `pte_offset_map_lock()`, and
//!   unmapped and unlocked on drop;
//! - guards: [`InvalidateRange`], an MMU notifier invalidation started at most once and ended on
//!   drop; [`LazyMmu`], lazy MMU mode; and [`MmuGather`], a `struct mmu_gather` borrowed from the
//!   caller.
//!
//! Every slot borrows the [`VmaRef`] it was reached from: holding a `&VmaRef` means holding the
//! mmap lock (or the VMA lock), which keeps the page-table pages above the PTE level from being
//! freed. PTE tables can still be freed under RCU, which is why [`PmdSlot::map_lock`] can fail.
//!
//! C headers: [`include/linux/pgtable.h`](srctree/include/linux/pgtable.h),
//! [`include/linux/mmu_notifier.h`](srctree/include/linux/mmu_notifier.h),
//! [`include/asm-generic/tlb.h`](srctree/include/asm-generic/tlb.h).

use crate::{
    bindings,
    error::{to_result, Result},
    ffi::{c_uint, c_ulong},
    mm::virt::VmaRef,
    page::PAGE_SHIFT,
};
use core::{
    marker::{PhantomData, PhantomPinned},
    mem::MaybeUninit,
    pin::Pin,
    ptr::NonNull,
};

/// Protection bits for page-table entries (`pgprot_t`).
pub type PgProt = bindings::pgprot_t;

/// `PAGE_NONE`: the protection of an entry that traps on every access.
#[inline]
pub fn page_none() -> PgProt {
    // SAFETY: `page_none()` only returns a constant.
    unsafe { bindings::page_none() }
}

macro_rules! entry_type {
    ($(#[$meta:meta])* $name:ident, $raw:ty) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        #[repr(transparent)]
        pub struct $name($raw);

        impl $name {
            /// Wraps a raw entry value.
            #[inline]
            pub fn from_raw(raw: $raw) -> Self {
                Self(raw)
            }

            /// Returns the raw entry value.
            #[inline]
            pub fn into_raw(self) -> $raw {
                self.0
            }
        }
    };
}

/// Defines predicates on an entry value; each calls a C function that only looks at the value.
macro_rules! entry_predicates {
    ($name:ident { $($(#[$meta:meta])* $method:ident => $cfn:ident;)* }) => {
        impl $name {
            $(
                $(#[$meta])*
                #[inline]
                pub fn $method(self) -> bool {
                    // SAFETY: The C function only looks at the entry value passed to it.
                    unsafe { bindings::$cfn(self.0) }
                }
            )*
        }
    };
}

entry_type!(
    /// The value of a page global directory entry.
    Pgd,
    bindings::pgd_t
);
entry_type!(
    /// The value of a fourth-level directory entry.
    P4d,
    bindings::p4d_t
);
entry_type!(
    /// The value of a page upper directory entry.
    Pud,
    bindings::pud_t
);
entry_type!(
    /// The value of a page middle directory entry.
    Pmd,
    bindings::pmd_t
);
entry_type!(
    /// The value of a page table entry.
    Pte,
    bindings::pte_t
);
entry_type!(
    /// A software leaf entry (swap, migration, device-private, marker), `softleaf_t`.
    SoftLeaf,
    bindings::softleaf_t
);

entry_predicates!(Pgd {
    /// `pgd_none()`.
    none => pgd_none;
    /// `pgd_bad()`.
    bad => pgd_bad;
});

entry_predicates!(P4d {
    /// `p4d_none()`.
    none => p4d_none;
    /// `p4d_bad()`.
    bad => p4d_bad;
});

entry_predicates!(Pud {
    /// `pud_none()`.
    none => pud_none;
    /// `pud_leaf()`: the entry maps a huge page rather than a PMD table.
    leaf => pud_leaf;
    /// `pud_bad()`.
    bad => pud_bad;
    /// `pud_present()`.
    present => pud_present;
    /// `pud_write()`.
    write => pud_write;
});

entry_predicates!(Pmd {
    /// `pmd_none()`.
    none => pmd_none;
    /// `pmd_leaf()`.
    leaf => pmd_leaf;
    /// `pmd_is_huge()`: a huge (leaf) or non-present huge entry, not a PTE table.
    is_huge => pmd_is_huge;
    /// `pmd_write()`.
    write => pmd_write;
});

entry_predicates!(Pte {
    /// `pte_none()`.
    none => pte_none;
    /// `pte_present()`.
    present => pte_present;
    /// `pte_protnone()`: present, but inaccessible (NUMA hinting or `PROT_NONE`).
    protnone => pte_protnone;
    /// `pte_write()`.
    write => pte_write;
    /// `pte_dirty()`.
    dirty => pte_dirty;
    /// `pte_soft_dirty()`.
    soft_dirty => pte_soft_dirty;
    /// `pte_uffd()`: the userfaultfd bit of a present entry.
    uffd => pte_uffd;
    /// `pte_swp_uffd()`: the userfaultfd bit of a non-present entry.
    swp_uffd => pte_swp_uffd;
    /// `pte_swp_soft_dirty()`: the soft-dirty bit of a non-present entry.
    swp_soft_dirty => pte_swp_soft_dirty;
});

/// Defines modifiers on an entry value; each calls a C function that only looks at the value.
macro_rules! pte_modifiers {
    ($($(#[$meta:meta])* $method:ident => $cfn:ident;)*) => {
        impl Pte {
            $(
                $(#[$meta])*
                #[inline]
                #[must_use]
                pub fn $method(self) -> Self {
                    // SAFETY: The C function only computes a new entry value from the one
                    // passed to it.
                    Self(unsafe { bindings::$cfn(self.0) })
                }
            )*
        }
    };
}

pte_modifiers! {
    /// `pte_mkuffd()`.
    mkuffd => pte_mkuffd;
    /// `pte_clear_uffd()`.
    clear_uffd => pte_clear_uffd;
    /// `pte_swp_mkuffd()`.
    swp_mkuffd => pte_swp_mkuffd;
    /// `pte_swp_clear_uffd()`.
    swp_clear_uffd => pte_swp_clear_uffd;
    /// `pte_swp_mksoft_dirty()`.
    swp_mksoft_dirty => pte_swp_mksoft_dirty;
}

impl Pte {
    /// `pte_same()`.
    #[inline]
    pub fn same(self, other: Pte) -> bool {
        // SAFETY: `pte_same()` only compares the two values.
        unsafe { bindings::pte_same(self.0, other.0) }
    }

    /// `pte_pfn()`.
    #[inline]
    pub fn pfn(self) -> usize {
        // SAFETY: `pte_pfn()` only looks at the value.
        unsafe { bindings::pte_pfn(self.0) }
    }

    /// `is_zero_pfn(pte_pfn())`: whether the entry maps the shared zero page.
    #[inline]
    pub fn is_zero_pfn(self) -> bool {
        // SAFETY: `is_zero_pfn()` only compares the value.
        unsafe { bindings::is_zero_pfn(self.pfn() as c_ulong) }
    }

    /// `pte_modify()`: the entry with its protection bits replaced by `prot`.
    #[inline]
    #[must_use]
    pub fn modify(self, prot: PgProt) -> Self {
        // SAFETY: `pte_modify()` only computes a new value.
        Self(unsafe { bindings::pte_modify(self.0, prot) })
    }

    /// `pte_mkwrite()`: the entry made writable as `vma` requires.
    #[inline]
    #[must_use]
    pub fn mkwrite(self, vma: &VmaRef) -> Self {
        // SAFETY: `pte_mkwrite()` computes a new value; it only reads the flags of `vma`, which
        // is valid for the duration of the call.
        Self(unsafe { bindings::pte_mkwrite(self.0, vma.as_ptr()) })
    }

    /// `pte_advance_pfn()`: the entry for the page `nr` pages further on.
    #[inline]
    #[must_use]
    pub fn advance_pfn(self, nr: usize) -> Self {
        // SAFETY: `pte_advance_pfn()` only computes a new value.
        Self(unsafe { bindings::pte_advance_pfn(self.0, nr as c_ulong) })
    }

    /// `pte_needs_flush()`: whether replacing `old` by `new` needs a TLB flush.
    #[inline]
    pub fn needs_flush(old: Pte, new: Pte) -> bool {
        // SAFETY: `pte_needs_flush()` only compares the two values.
        unsafe { bindings::pte_needs_flush(old.0, new.0) }
    }

    /// `make_pte_marker(PTE_MARKER_UFFD_WP)`: a uffd-wp marker for a none entry.
    #[inline]
    pub fn uffd_wp_marker() -> Self {
        // SAFETY: Only computes a value.
        Self(unsafe { bindings::make_pte_marker_uffd_wp() })
    }

    /// `softleaf_from_pte()`: the software leaf entry of a non-present, non-none entry.
    #[inline]
    pub fn softleaf(self) -> SoftLeaf {
        // SAFETY: Only computes a value.
        SoftLeaf(unsafe { bindings::softleaf_from_pte(self.0) })
    }

    /// `swp_entry_to_pte()`.
    #[inline]
    pub fn from_softleaf(entry: SoftLeaf) -> Self {
        // SAFETY: Only computes a value.
        Self(unsafe { bindings::swp_entry_to_pte(entry.0) })
    }
}

entry_predicates!(SoftLeaf {
    /// `softleaf_is_migration_write()`.
    is_migration_write => softleaf_is_migration_write;
    /// `softleaf_is_device_private()`.
    is_device_private => softleaf_is_device_private;
    /// `softleaf_is_device_private_write()`.
    is_device_private_write => softleaf_is_device_private_write;
    /// `softleaf_is_marker()`.
    is_marker => softleaf_is_marker;
    /// `softleaf_is_poison_marker()`.
    is_poison_marker => softleaf_is_poison_marker;
    /// `softleaf_is_guard_marker()`.
    is_guard_marker => softleaf_is_guard_marker;
});

impl SoftLeaf {
    /// `swp_offset()`.
    #[inline]
    pub fn offset(self) -> c_ulong {
        // SAFETY: Only computes a value.
        unsafe { bindings::swp_offset(self.0) }
    }

    /// `make_readable_migration_entry(swp_offset(self))`.
    #[inline]
    #[must_use]
    pub fn readable_migration(self) -> Self {
        // SAFETY: Only computes a value.
        Self(unsafe { bindings::make_readable_migration_entry(self.offset()) })
    }

    /// `make_readable_exclusive_migration_entry(swp_offset(self))`.
    #[inline]
    #[must_use]
    pub fn readable_exclusive_migration(self) -> Self {
        // SAFETY: Only computes a value.
        Self(unsafe { bindings::make_readable_exclusive_migration_entry(self.offset()) })
    }

    /// `make_readable_device_private_entry(swp_offset(self))`.
    #[inline]
    #[must_use]
    pub fn readable_device_private(self) -> Self {
        // SAFETY: Only computes a value.
        Self(unsafe { bindings::make_readable_device_private_entry(self.offset()) })
    }

    /// Whether the folio of a migration entry is anonymous.
    ///
    /// The caller must have checked that the entry is a migration entry; then
    /// `softleaf_to_folio()` is the folio under migration, which is locked and so stays alive
    /// while the entry exists.
    #[inline]
    pub fn migration_folio_is_anon(self) -> bool {
        // SAFETY: See above: a migration entry pins its locked folio, which the page-table lock
        // the caller holds keeps in place.
        unsafe { bindings::folio_test_anon(bindings::softleaf_to_folio(self.0)) }
    }
}

/// A page mapped by a present PTE of a [`PteTable`], valid while the table is locked.
#[derive(Clone, Copy)]
pub struct MappedPage<'t> {
    page: NonNull<bindings::page>,
    _table: PhantomData<&'t ()>,
}

/// The folio of a [`MappedPage`], valid while the table is locked.
#[derive(Clone, Copy)]
pub struct MappedFolio<'t> {
    folio: NonNull<bindings::folio>,
    _table: PhantomData<&'t ()>,
}

impl<'t> MappedPage<'t> {
    /// The folio this page belongs to.
    #[inline]
    pub fn folio(self) -> MappedFolio<'t> {
        // SAFETY: By the type invariant the page is mapped and the table lock keeps the mapping,
        // and so a reference on the folio, in place.
        let folio = unsafe { bindings::page_folio(self.page.as_ptr()) };
        MappedFolio {
            // SAFETY: `page_folio()` of a valid page is never NULL.
            folio: unsafe { NonNull::new_unchecked(folio) },
            _table: PhantomData,
        }
    }

    /// `PageAnonExclusive()` of the page `idx` pages after this one.
    ///
    /// The caller must know that those pages belong to the same mapped folio as this one (they
    /// are mapped by a batch of PTEs, see `folio_pte_batch()`).
    #[inline]
    pub fn nth_anon_exclusive(self, idx: usize) -> bool {
        // SAFETY: The pages of a folio are contiguous `struct page`s, the caller keeps `idx`
        // within the folio, and the table lock keeps the folio mapped.
        unsafe { bindings::PageAnonExclusive(self.page.as_ptr().add(idx)) }
    }
}

impl MappedFolio<'_> {
    /// Returns the raw pointer.
    #[inline]
    pub fn as_ptr(self) -> *mut bindings::folio {
        self.folio.as_ptr()
    }

    /// `folio_test_large()`.
    #[inline]
    pub fn is_large(self) -> bool {
        // SAFETY: The folio is valid by the type invariant.
        unsafe { bindings::folio_test_large(self.folio.as_ptr()) }
    }

    /// `folio_test_anon()`.
    #[inline]
    pub fn is_anon(self) -> bool {
        // SAFETY: The folio is valid by the type invariant.
        unsafe { bindings::folio_test_anon(self.folio.as_ptr()) }
    }
}

/// Userfaultfd and anonymity tests on a VMA.
pub mod vma {
    use super::{bindings, Pte, VmaRef};

    /// `userfaultfd_rwp()`: the VMA is registered for read-write protection.
    #[inline]
    pub fn userfaultfd_rwp(vma: &VmaRef) -> bool {
        // SAFETY: `vma` is valid and its flags are stable while the caller holds its lock.
        unsafe { bindings::userfaultfd_rwp(vma.as_ptr()) }
    }

    /// `userfaultfd_pte_wp()`: the entry is write-protected by userfaultfd in this VMA.
    #[inline]
    pub fn userfaultfd_pte_wp(vma: &VmaRef, pte: Pte) -> bool {
        // SAFETY: As above.
        unsafe { bindings::userfaultfd_pte_wp(vma.as_ptr(), pte.into_raw()) }
    }

    /// `userfaultfd_wp_use_markers()`: uffd-wp in this VMA needs markers on none entries.
    #[inline]
    pub fn userfaultfd_wp_use_markers(vma: &VmaRef) -> bool {
        // SAFETY: As above.
        unsafe { bindings::userfaultfd_wp_use_markers(vma.as_ptr()) }
    }

    /// `vma_is_anonymous()`.
    #[inline]
    pub fn is_anonymous(vma: &VmaRef) -> bool {
        // SAFETY: As above.
        unsafe { bindings::vma_is_anonymous(vma.as_ptr()) }
    }

    /// `vm_normal_page()`: the page a present entry maps, if it is a "normal" page.
    #[inline]
    pub fn normal_page<'t>(
        vma: &VmaRef,
        _table: &'t super::PteTable<'_>,
        addr: usize,
        pte: Pte,
    ) -> Option<super::MappedPage<'t>> {
        // SAFETY: `vma` is valid; `pte` was read from `_table`, whose lock the borrow proves is
        // held, so the page it maps stays mapped for `'t`.
        let page = unsafe { bindings::vm_normal_page(vma.as_ptr(), addr, pte.into_raw()) };
        Some(super::MappedPage {
            page: core::ptr::NonNull::new(page)?,
            _table: core::marker::PhantomData,
        })
    }
}

/// Defines the iterator over the slots of one table level.
macro_rules! slot_range {
    (
        $(#[$meta:meta])* $range:ident, $slot:ident, $raw:ty, $addr_end:ident
    ) => {
        $(#[$meta])*
        ///
        /// Yields one slot per entry, in address order, each with the part of the range that
        /// its entry covers.
        pub struct $range<'a> {
            vma: &'a VmaRef,
            ptr: *mut $raw,
            addr: usize,
            end: usize,
        }

        impl<'a> Iterator for $range<'a> {
            type Item = $slot<'a>;

            #[inline]
            fn next(&mut self) -> Option<$slot<'a>> {
                if self.addr == self.end {
                    return None;
                }
                // SAFETY: Only computes an address.
                let next = unsafe { bindings::$addr_end(self.addr, self.end) };
                // INVARIANT: `[addr, end)` lies within the range that the table covers (it was
                // clamped to the entry one level up when this iterator was made), so `ptr`
                // points into the table; `next` never passes `end`, and is above `addr` since
                // `addr < end`.
                let slot = $slot {
                    vma: self.vma,
                    // SAFETY: `ptr` points into a live table, see above.
                    ptr: unsafe { NonNull::new_unchecked(self.ptr) },
                    addr: self.addr,
                    end: next,
                };
                self.ptr = self.ptr.wrapping_add(1);
                self.addr = next;
                Some(slot)
            }
        }
    };
}

/// Defines a slot type with the accessors every level has.
macro_rules! slot_type {
    ($(#[$meta:meta])* $slot:ident, $raw:ty, $value:ident, $get:ident) => {
        $(#[$meta])*
        ///
        /// # Invariants
        ///
        /// `addr < end`, and `ptr` points to the entry covering `[addr, end)` in a page-table
        /// page of the mm of `vma`; the page cannot be freed while `vma`'s lock is held, which
        /// it is for `'a`.
        #[derive(Clone, Copy)]
        pub struct $slot<'a> {
            vma: &'a VmaRef,
            ptr: NonNull<$raw>,
            addr: usize,
            end: usize,
        }

        impl<'a> $slot<'a> {
            /// The first address covered by this entry in the walked range.
            #[inline]
            pub fn addr(&self) -> usize {
                self.addr
            }

            /// The end of the walked range within this entry.
            #[inline]
            pub fn end(&self) -> usize {
                self.end
            }

            /// Returns the raw pointer to the entry.
            #[inline]
            pub fn as_ptr(&self) -> *mut $raw {
                self.ptr.as_ptr()
            }

            /// Tells the compiler that `addr < end` (the type invariant), so that the first
            /// step of a range made from this slot needs no test, as in the C walkers' do-while
            /// loops.
            #[inline(always)]
            fn assume_nonempty(&self) {
                // SAFETY: `addr < end` by the type invariant.
                unsafe { core::hint::assert_unchecked(self.addr < self.end) };
            }

            /// Reads the entry.
            #[inline]
            pub fn get(&self) -> $value {
                // SAFETY: By the type invariant `ptr` points to a live entry.
                $value(unsafe { bindings::$get(self.ptr.as_ptr()) })
            }
        }
    };
}

slot_type!(
    /// A PGD entry of the walked range.
    PgdSlot,
    bindings::pgd_t,
    Pgd,
    pgdp_get
);
slot_type!(
    /// A P4D entry of the walked range.
    P4dSlot,
    bindings::p4d_t,
    P4d,
    p4dp_get
);
slot_type!(
    /// A PUD entry of the walked range.
    PudSlot,
    bindings::pud_t,
    Pud,
    pudp_get
);
slot_type!(
    /// A PMD entry of the walked range.
    PmdSlot,
    bindings::pmd_t,
    Pmd,
    pmdp_get
);

slot_range!(
    /// The PGD entries covering a range of a VMA.
    PgdRange,
    PgdSlot,
    bindings::pgd_t,
    pgd_addr_end
);
slot_range!(
    /// The P4D entries under one PGD entry.
    P4dRange,
    P4dSlot,
    bindings::p4d_t,
    p4d_addr_end
);
slot_range!(
    /// The PUD entries under one P4D entry.
    PudRange,
    PudSlot,
    bindings::pud_t,
    pud_addr_end
);
slot_range!(
    /// The PMD entries under one PUD entry.
    PmdRange,
    PmdSlot,
    bindings::pmd_t,
    pmd_addr_end
);

/// The PGD entries covering `[addr, end)` of `vma`, which must lie within the VMA.
///
/// Returns `None` if the range is empty or not within the VMA.
#[inline]
pub fn pgd_range(vma: &VmaRef, addr: usize, end: usize) -> Option<PgdRange<'_>> {
    if addr >= end || addr < vma.start() || end > vma.end() {
        return None;
    }
    // SAFETY: Checked just above.
    Some(unsafe { pgd_range_unchecked(vma, addr, end) })
}

/// [`pgd_range`] without the checks, for a walker whose caller guarantees them, as the C
/// walkers' callers do.
///
/// # Safety
///
/// `addr < end`, and `[addr, end)` lies within `vma`.
#[inline]
pub unsafe fn pgd_range_unchecked(vma: &VmaRef, addr: usize, end: usize) -> PgdRange<'_> {
    // SAFETY: `addr < end` by the safety requirements; telling the compiler spares the first
    // step of the walk its test.
    unsafe { core::hint::assert_unchecked(addr < end) };
    let mm = vma.mm().as_raw();
    // INVARIANT: `[addr, end)` lies within `vma` by the safety requirements.
    PgdRange {
        vma,
        // SAFETY: `mm` is live while `vma`'s lock is held; `pgd_offset()` only computes the
        // address of the entry for `addr` in its pgd page.
        ptr: unsafe { bindings::pgd_offset(mm, addr) },
        addr,
        end,
    }
}

impl<'a> PgdSlot<'a> {
    /// `p4d_alloc()`: makes sure the entry points to a P4D table.
    #[inline]
    pub fn alloc_p4d(&self) -> Result {
        // SAFETY: The slot is live (type invariant) and the caller's lock allows allocating
        // lower tables, as it does for page faults.
        to_result(unsafe {
            bindings::p4d_alloc(self.vma.mm().as_raw(), self.ptr.as_ptr(), self.addr)
        })
    }

    /// `pgd_none_or_clear_bad()`, then the P4D entries under this one if it is a table.
    #[inline]
    pub fn p4ds(&self) -> Option<P4dRange<'a>> {
        // SAFETY: The slot is live; clearing a bad entry is what the C walkers do under the
        // same lock.
        if unsafe { bindings::pgd_none_or_clear_bad(self.ptr.as_ptr()) } {
            return None;
        }
        self.assume_nonempty();
        Some(P4dRange {
            vma: self.vma,
            // SAFETY: The entry is a table entry (checked above), so `p4d_offset()` is the entry
            // for `addr` in that table.
            ptr: unsafe { bindings::p4d_offset(self.ptr.as_ptr(), self.addr) },
            addr: self.addr,
            end: self.end,
        })
    }
}

impl<'a> P4dSlot<'a> {
    /// `pud_alloc()`: makes sure the entry points to a PUD table.
    #[inline]
    pub fn alloc_pud(&self) -> Result {
        // SAFETY: See `PgdSlot::alloc_p4d()`.
        to_result(unsafe {
            bindings::pud_alloc(self.vma.mm().as_raw(), self.ptr.as_ptr(), self.addr)
        })
    }

    /// `p4d_none_or_clear_bad()`, then the PUD entries under this one if it is a table.
    #[inline]
    pub fn puds(&self) -> Option<PudRange<'a>> {
        // SAFETY: See `PgdSlot::p4ds()`.
        if unsafe { bindings::p4d_none_or_clear_bad(self.ptr.as_ptr()) } {
            return None;
        }
        self.assume_nonempty();
        Some(PudRange {
            vma: self.vma,
            // SAFETY: The entry is a table entry (checked above).
            ptr: unsafe { bindings::pud_offset(self.ptr.as_ptr(), self.addr) },
            addr: self.addr,
            end: self.end,
        })
    }
}

impl<'a> PudSlot<'a> {
    /// `pmd_alloc()`: makes sure the entry points to a PMD table.
    #[inline]
    pub fn alloc_pmd(&self) -> Result {
        // SAFETY: See `PgdSlot::alloc_p4d()`.
        to_result(unsafe {
            bindings::pmd_alloc(self.vma.mm().as_raw(), self.ptr.as_ptr(), self.addr)
        })
    }

    /// The PMD entries under this one, given its value `pud` as read by the caller.
    ///
    /// Returns `None` unless `pud` is a table entry (neither none nor a leaf).
    #[inline]
    pub fn pmds(&self, pud: Pud) -> Option<PmdRange<'a>> {
        if pud.none() || pud.leaf() {
            return None;
        }
        self.assume_nonempty();
        Some(PmdRange {
            vma: self.vma,
            // SAFETY: The entry is a table entry (checked above); table entries above the PTE
            // level only change under the mmap write lock, which excludes this walk.
            ptr: unsafe { bindings::pmd_offset(self.ptr.as_ptr(), self.addr) },
            addr: self.addr,
            end: self.end,
        })
    }

    /// `__split_huge_pud()`: splits a huge PUD covering this slot.
    #[inline]
    pub fn split_huge(&self) {
        // SAFETY: The slot is live, and `vma` is the VMA it belongs to.
        unsafe { bindings::__split_huge_pud(self.vma.as_ptr(), self.ptr.as_ptr(), self.addr) }
    }

    /// `change_huge_pud()`: changes the protection of the huge PUD in this slot.
    ///
    /// Returns what `change_huge_pud()` returns: 0 when the entry is no longer huge, else
    /// the number of base pages changed (`HPAGE_PUD_NR`, or 1 if nothing changed).
    #[inline]
    pub fn change_huge(&self, tlb: &mut MmuGather<'_>, newprot: PgProt, cp_flags: c_ulong) -> i32 {
        // SAFETY: The slot is live, `vma` is its VMA and `tlb` gathers for its mm.
        unsafe {
            bindings::change_huge_pud(
                tlb.as_ptr(),
                self.vma.as_ptr(),
                self.ptr.as_ptr(),
                self.addr,
                newprot,
                cp_flags,
            )
        }
    }
}

impl<'a> PmdSlot<'a> {
    /// `pte_alloc()`: makes sure the entry points to a PTE table (or a huge page).
    #[inline]
    pub fn alloc_pte(&self) -> Result {
        // SAFETY: See `PgdSlot::alloc_p4d()`.
        to_result(unsafe { bindings::pte_alloc(self.vma.mm().as_raw(), self.ptr.as_ptr()) })
    }

    /// `pmdp_get_lockless()`.
    #[inline]
    pub fn get_lockless(&self) -> Pmd {
        // SAFETY: The slot is live.
        Pmd(unsafe { bindings::pmdp_get_lockless(self.ptr.as_ptr()) })
    }

    /// `__split_huge_pmd()`: splits a huge PMD covering this slot.
    #[inline]
    pub fn split_huge(&self) {
        // SAFETY: The slot is live, and `vma` is the VMA it belongs to.
        unsafe {
            bindings::__split_huge_pmd(self.vma.as_ptr(), self.ptr.as_ptr(), self.addr, false)
        }
    }

    /// `change_huge_pmd()`: changes the protection of the huge PMD in this slot.
    ///
    /// Returns what `change_huge_pmd()` returns: 0 when the entry is no longer huge, else the
    /// number of base pages changed (`HPAGE_PMD_NR`, or 1 if nothing changed).
    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    #[inline]
    pub fn change_huge(&self, tlb: &mut MmuGather<'_>, newprot: PgProt, cp_flags: c_ulong) -> i32 {
        // SAFETY: The slot is live, `vma` is its VMA and `tlb` gathers for its mm.
        unsafe {
            bindings::change_huge_pmd(
                tlb.as_ptr(),
                self.vma.as_ptr(),
                self.ptr.as_ptr(),
                self.addr,
                newprot,
                cp_flags,
            )
        }
    }

    /// `change_huge_pmd()` without `CONFIG_TRANSPARENT_HUGEPAGE`, where no PMD is huge and the C
    /// function is declared but not defined: 0, "no longer huge".
    #[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
    #[inline]
    pub fn change_huge(
        &self,
        _tlb: &mut MmuGather<'_>,
        _newprot: PgProt,
        _cp_flags: c_ulong,
    ) -> i32 {
        0
    }

    /// `pte_offset_map_lock()`: maps and locks the PTEs of this slot's range.
    ///
    /// Returns `None` if the entry does not (any longer) point to a PTE table.
    #[inline]
    pub fn map_lock(&self) -> Option<PteTable<'a>> {
        let mut ptl = core::ptr::null_mut();
        // SAFETY: The slot is live; `pte_offset_map_lock()` rechecks the entry itself and only
        // returns a PTE pointer, with `ptl` locked, when it maps a PTE table.
        let pte = unsafe {
            bindings::pte_offset_map_lock(
                self.vma.mm().as_raw(),
                self.ptr.as_ptr(),
                self.addr,
                &mut ptl,
            )
        };
        let first = NonNull::new(pte)?;
        self.assume_nonempty();
        // INVARIANT: the PTEs of `[addr, end)` are mapped and locked until drop; the range lies
        // within one PMD, so `len` entries from `first` are in the table.
        Some(PteTable {
            vma: self.vma,
            first,
            ptl,
            addr: self.addr,
            len: self.end.wrapping_sub(self.addr) >> PAGE_SHIFT,
        })
    }
}

/// The PTEs of one PMD's part of the walked range, mapped and locked.
///
/// The entries are changed through `&self`: they are not Rust memory but page-table entries,
/// read and written only by the C accessors while the table lock is held, and a `PteTable`
/// never leaves the task that locked it. That lets [`MappedPage`]s borrow the table, which keeps
/// the table locked, and so the pages mapped, for as long as they are used.
///
/// # Invariants
///
/// `first` points to the PTE of `addr`, followed by `len - 1` more PTEs of the same table; the
/// table is mapped and its lock `ptl` is held until drop.
pub struct PteTable<'a> {
    vma: &'a VmaRef,
    first: NonNull<bindings::pte_t>,
    ptl: *mut bindings::spinlock_t,
    addr: usize,
    len: usize,
}

impl PteTable<'_> {
    /// The number of PTEs.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no PTEs (never the case for a table from [`PmdSlot::map_lock`]).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address mapped by PTE `idx`.
    #[inline]
    pub fn addr(&self, idx: usize) -> usize {
        // Cannot overflow for an `idx` within the table, which lies within the address space.
        self.addr.wrapping_add(idx << PAGE_SHIFT)
    }

    /// A raw pointer to PTE `idx`, for C functions that take a run of `nr` PTEs.
    ///
    /// # Panics
    ///
    /// If `idx + nr` is beyond the table's range (a bug in the caller).
    #[inline]
    pub fn as_ptr(&self, idx: usize, nr: usize) -> *mut bindings::pte_t {
        assert!(nr >= 1 && idx + nr <= self.len);
        // SAFETY: In bounds, checked above.
        unsafe { self.first.as_ptr().add(idx) }
    }

    /// `ptep_get()` of PTE `idx`.
    #[inline]
    pub fn get(&self, idx: usize) -> Pte {
        // SAFETY: `as_ptr()` checks bounds; the table is mapped and locked.
        Pte(unsafe { bindings::ptep_get(self.as_ptr(idx, 1)) })
    }

    /// `set_pte_at()` of PTE `idx`.
    #[inline]
    pub fn set(&self, idx: usize, pte: Pte) {
        let ptep = self.as_ptr(idx, 1);
        // SAFETY: `ptep` is a PTE of the table, whose lock is held.
        unsafe { bindings::set_pte_at(self.vma.mm().as_raw(), self.addr(idx), ptep, pte.0) }
    }

    /// `pte_clear()` of PTE `idx`.
    #[inline]
    pub fn clear(&self, idx: usize) {
        let ptep = self.as_ptr(idx, 1);
        // SAFETY: `ptep` is a PTE of the table, whose lock is held.
        unsafe { bindings::pte_clear(self.vma.mm().as_raw(), self.addr(idx), ptep) }
    }

    /// `modify_prot_start_ptes()` of PTEs `idx..idx + nr`, which must map consecutive pages of
    /// one folio.
    #[inline]
    pub fn modify_prot_start(&self, idx: usize, nr: usize) -> Pte {
        let ptep = self.as_ptr(idx, nr);
        // SAFETY: `ptep..ptep + nr` are PTEs of the table, whose lock is held.
        Pte(unsafe {
            bindings::modify_prot_start_ptes(self.vma.as_ptr(), self.addr(idx), ptep, nr as c_uint)
        })
    }

    /// `modify_prot_commit_ptes()` of PTEs `idx..idx + nr`, after [`Self::modify_prot_start`].
    #[inline]
    pub fn modify_prot_commit(&self, idx: usize, nr: usize, old: Pte, new: Pte) {
        let ptep = self.as_ptr(idx, nr);
        // SAFETY: `ptep..ptep + nr` are PTEs of the table, whose lock is held.
        unsafe {
            bindings::modify_prot_commit_ptes(
                self.vma.as_ptr(),
                self.addr(idx),
                ptep,
                old.0,
                new.0,
                nr as c_uint,
            )
        }
    }
}

impl Drop for PteTable<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant the table is mapped through `first` and `ptl` is held;
        // both are released exactly once, here.
        unsafe { bindings::pte_unmap_unlock(self.first.as_ptr(), self.ptl) };
    }
}

/// Lazy MMU mode, enabled while this guard lives.
pub struct LazyMmu(PhantomData<*mut ()>);

impl LazyMmu {
    /// `lazy_mmu_mode_enable()`; the guard calls `lazy_mmu_mode_disable()` on drop.
    #[inline]
    pub fn enable() -> Self {
        // SAFETY: Always valid; paired with the disable in `drop()`.
        unsafe { bindings::lazy_mmu_mode_enable() };
        LazyMmu(PhantomData)
    }
}

impl Drop for LazyMmu {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: Paired with the enable in `LazyMmu::enable()`.
        unsafe { bindings::lazy_mmu_mode_disable() };
    }
}

/// A `struct mmu_gather` the caller set up with `tlb_gather_mmu()`, borrowed for `'a`.
///
/// # Invariants
///
/// `ptr` points to an initialised `mmu_gather` that nobody else uses during `'a`.
pub struct MmuGather<'a> {
    ptr: NonNull<bindings::mmu_gather>,
    _borrow: PhantomData<&'a mut bindings::mmu_gather>,
}

impl MmuGather<'_> {
    /// Borrows a raw `struct mmu_gather`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to an `mmu_gather` initialised by `tlb_gather_mmu()` for the mm being
    /// walked, used by nobody else for `'a`, and not finished before `'a` ends.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: NonNull<bindings::mmu_gather>) -> MmuGather<'a> {
        // INVARIANT: See the safety requirements.
        MmuGather {
            ptr,
            _borrow: PhantomData,
        }
    }

    /// Returns the raw pointer.
    #[inline]
    pub fn as_ptr(&mut self) -> *mut bindings::mmu_gather {
        self.ptr.as_ptr()
    }

    /// `tlb_start_vma()`.
    #[inline]
    pub fn start_vma(&mut self, vma: &VmaRef) {
        // SAFETY: The gather is valid and exclusively ours (type invariant), `vma` is valid.
        unsafe { bindings::tlb_start_vma(self.ptr.as_ptr(), vma.as_ptr()) }
    }

    /// `tlb_end_vma()`.
    #[inline]
    pub fn end_vma(&mut self, vma: &VmaRef) {
        // SAFETY: As for `start_vma()`.
        unsafe { bindings::tlb_end_vma(self.ptr.as_ptr(), vma.as_ptr()) }
    }

    /// `tlb_change_page_size()`.
    #[inline]
    pub fn change_page_size(&mut self, size: usize) {
        // SAFETY: The gather is valid and exclusively ours.
        unsafe { bindings::tlb_change_page_size(self.ptr.as_ptr(), size as c_uint) }
    }

    /// `tlb_flush_pte_range()`: records that PTEs of `[addr, addr + size)` need a flush.
    #[inline]
    pub fn flush_pte_range(&mut self, addr: usize, size: usize) {
        // SAFETY: The gather is valid and exclusively ours.
        unsafe { bindings::tlb_flush_pte_range(self.ptr.as_ptr(), addr, size) }
    }
}

/// An MMU notifier invalidation of a range, started at most once and ended on drop.
///
/// Pin it on the stack (`core::pin::pin!(InvalidateRange::new())`), call [`Self::start`] where
/// the invalidation must begin (later calls do nothing), and let it go out of scope: if it was
/// started, `mmu_notifier_invalidate_range_end()` runs exactly once, on every path out of the
/// scope. The range stays pinned in place between start and end, as notifiers see its address.
pub struct InvalidateRange {
    /// Initialised by [`Self::start`], as far as `mmu_notifier_range_init()` does.
    range: MaybeUninit<bindings::mmu_notifier_range>,
    started: bool,
    _pin: PhantomPinned,
}

impl Default for InvalidateRange {
    fn default() -> Self {
        Self::new()
    }
}

impl InvalidateRange {
    /// An invalidation that has not started.
    #[inline]
    pub fn new() -> Self {
        InvalidateRange {
            range: MaybeUninit::uninit(),
            started: false,
            _pin: PhantomPinned,
        }
    }

    /// Whether [`Self::start`] has started the invalidation.
    #[inline]
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// `mmu_notifier_range_init()` + `mmu_notifier_invalidate_range_start()` for
    /// `[start, end)` of `vma`'s mm with `event`, unless already started.
    #[inline]
    pub fn start(
        self: Pin<&mut Self>,
        vma: &VmaRef,
        event: bindings::mmu_notifier_event,
        start: usize,
        end: usize,
    ) {
        // SAFETY: Nothing is moved out of the pinned value.
        let this = unsafe { self.get_unchecked_mut() };
        if this.started {
            return;
        }
        let range = this.range.as_mut_ptr();
        // SAFETY: `range` is ours and valid for writes (`owner` is written through the raw
        // pointer, without a reference to the uninitialised struct); the C functions write the
        // rest before reading it. `vma`'s mm is live while its lock is held, which outlasts
        // this guard in every caller (the guard is dropped before the walk returns).
        unsafe {
            // `mmu_notifier_range_init()` leaves `owner` alone, as the C walker's stack range;
            // only `MMU_NOTIFY_MIGRATE` ranges are ever asked for it, but give it a value. The
            // field exists only with MMU notifiers.
            #[cfg(CONFIG_MMU_NOTIFIER)]
            core::ptr::addr_of_mut!((*range).owner).write(core::ptr::null_mut());
            bindings::mmu_notifier_range_init(range, event, 0, vma.mm().as_raw(), start, end);
            bindings::mmu_notifier_invalidate_range_start(range);
        }
        this.started = true;
    }
}

impl Drop for InvalidateRange {
    #[inline]
    fn drop(&mut self) {
        if self.started {
            // SAFETY: The range was started by `start()` and has not moved since (pinned); it
            // is ended exactly once, here.
            unsafe { bindings::mmu_notifier_invalidate_range_end(self.range.as_mut_ptr()) };
        }
    }
}

/// `cond_resched()`.
#[inline]
pub fn cond_resched() {
    // SAFETY: Always safe to call from a context that may sleep, which a page-table walk under
    // the mmap lock (and no spinlock) is.
    unsafe { bindings::cond_resched() };
}
