// SPDX-License-Identifier: GPL-2.0

//! Page tables.
//!
//! Types for walking and changing the page tables of a VMA's address space, one level at a time:
//!
//! - entry values: [`Pgd`], [`P4d`], [`Pud`], [`Pmd`], [`Pte`] and [`SoftLeaf`], copies of one
//!   entry with the predicates and modifiers of `<linux/pgtable.h>` and `<linux/leafops.h>`. A
//!   value is only a number: any value can be made and computed with in safe code, and none can be
//!   written to a page table without an `unsafe` call whose contract says which values may be;
//! - [`WalkableVma`]: a VMA whose page tables this module may walk (not hugetlb);
//! - entry slots: [`PgdSlot`], [`P4dSlot`], [`PudSlot`] and [`PmdSlot`], each a pointer to one
//!   entry of a live table together with the part of the address range that entry covers. A slot
//!   is only handed out by the iterator over the table one level up ([`pgd_range`],
//!   [`PgdSlot::p4ds`], [`P4dSlot::puds`], [`PudSlot::pmds`]), so a PMD can never be used where a
//!   PUD is expected, and no slot points outside its table;
//! - [`PteTable`]: the PTEs of one PMD's range, mapped and locked by `pte_offset_map_lock()`, and
//!   unmapped and unlocked on drop. It mutably borrows its [`PmdSlot`], so the slot cannot be
//!   split, populated or locked again while the table is held. What is read through it
//!   ([`PresentPte`], [`LeafPte`], [`MappedPage`], [`MappedFolio`], [`MigrationEntry`],
//!   [`PteBatch`]) borrows it, and so cannot outlive the lock;
//! - [`ProtChange`]: a protection change of one VMA, with the `struct mmu_gather` that collects
//!   its TLB flushes, the new protection and the `MM_CP_*` flags ([`CpFlags`]);
//! - guards: [`InvalidateRange`], an MMU notifier invalidation started at most once and ended on
//!   drop, which borrows the VMA whose mm it notifies; [`LazyMmu`], lazy MMU mode for the life of a
//!   borrow of a [`PteTable`].
//!
//! Every slot borrows the [`VmaRef`] it was reached from: holding a `&VmaRef` means holding the
//! mmap lock (or the VMA lock), which keeps the page-table pages above the PTE level from being
//! freed. PTE tables can still be freed under RCU, which is why [`PmdSlot::map_lock`] can fail.
//!
//! # Context
//!
//! A [`PteTable`] holds a spinlock and an RCU read-side critical section. Nothing may sleep while
//! one is held. The types forbid what they can: the slot a table was locked through cannot be
//! populated, split or locked again, and lazy MMU mode cannot outlive the table. As elsewhere in
//! the `kernel` crate (see `kernel::task::might_sleep()`), sleeping in atomic context is not
//! excluded by the type system in general (a table held across [`cond_resched`] or an allocation
//! still compiles): the functions of this module that may sleep say so under `# Context`, the C
//! functions they call check it at run time with `CONFIG_DEBUG_ATOMIC_SLEEP`, and `klint` checks it
//! statically.
//!
//! C headers: [`include/linux/pgtable.h`](srctree/include/linux/pgtable.h),
//! [`include/linux/leafops.h`](srctree/include/linux/leafops.h),
//! [`include/linux/mmu_notifier.h`](srctree/include/linux/mmu_notifier.h),
//! [`include/asm-generic/tlb.h`](srctree/include/asm-generic/tlb.h).

use crate::{
    bindings,
    error::{code::EINVAL, to_result, Result},
    ffi::{c_uint, c_ulong},
    mm::virt::{flags, VmaRef},
    page::PAGE_SHIFT,
    prelude::*,
    types::{NotThreadSafe, Opaque},
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};

/// Protection bits for page-table entries (`pgprot_t`), as a value.
///
/// Computing entries with any protection is safe; writing them is not (see
/// [`PteTable::modify_prot_commit`]). The protection a [`ProtChange`] applies is its own.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct PgProt(bindings::pgprot_t);

impl PgProt {
    /// `PAGE_NONE`: the protection of an entry that traps on every access.
    #[inline]
    pub fn none() -> Self {
        // SAFETY: `page_none()` only returns a constant.
        Self(unsafe { bindings::page_none() })
    }
}
macro_rules! entry_type {
    ($(#[$meta:meta])* $name:ident, $raw:ty) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        #[repr(transparent)]
        pub struct $name($raw);

        impl $name {
            /// Wraps a raw entry value.
            ///
            /// Any value is allowed: a value is only a number until an `unsafe` function of
            /// this module writes it to a page table.
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
        Self(unsafe { bindings::pte_modify(self.0, prot.0) })
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
}

/// The `MM_CP_*` flags of a protection change (`include/linux/mm.h`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct CpFlags(c_ulong);

impl CpFlags {
    /// No flags: a plain mprotect() change.
    pub const NONE: Self = Self(0);
    /// `MM_CP_TRY_CHANGE_WRITABLE`: make entries writable where that spares a write fault.
    pub const TRY_CHANGE_WRITABLE: Self = Self(bindings::MM_CP_TRY_CHANGE_WRITABLE as c_ulong);
    /// `MM_CP_PROT_NUMA`: NUMA hinting, entries become `PROT_NONE`.
    pub const PROT_NUMA: Self = Self(bindings::MM_CP_PROT_NUMA as c_ulong);
    /// `MM_CP_UFFD_WP`: userfaultfd write-protect.
    pub const UFFD_WP: Self = Self(bindings::MM_CP_UFFD_WP as c_ulong);
    /// `MM_CP_UFFD_WP_RESOLVE`: resolve userfaultfd write protection.
    pub const UFFD_WP_RESOLVE: Self = Self(bindings::MM_CP_UFFD_WP_RESOLVE as c_ulong);
    /// `MM_CP_UFFD_RWP`: userfaultfd read-write protect.
    pub const UFFD_RWP: Self = Self(bindings::MM_CP_UFFD_RWP as c_ulong);
    /// `MM_CP_UFFD_RWP_RESOLVE`: resolve userfaultfd read-write protection.
    pub const UFFD_RWP_RESOLVE: Self = Self(bindings::MM_CP_UFFD_RWP_RESOLVE as c_ulong);

    /// The flags of a C `cp_flags` value. Any combination is accepted: the C functions that
    /// take the flags check them themselves.
    #[inline]
    pub const fn from_bits(bits: c_ulong) -> Self {
        Self(bits)
    }

    /// The C `cp_flags` value.
    #[inline]
    pub const fn bits(self) -> c_ulong {
        self.0
    }

    /// Whether any flag of `mask` is set.
    #[inline]
    pub const fn any(self, mask: Self) -> bool {
        self.0 & mask.0 != 0
    }
}

impl core::ops::BitOr for CpFlags {
    type Output = Self;

    #[inline]
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A VMA whose page tables this module may walk: any VMA but a hugetlb one.
///
/// The page tables of a hugetlb VMA can be shared between processes and unshared without the
/// mmap lock (`hugetlb_unshare_pmds()`), so holding the VMA's lock does not keep its tables in
/// place, which every slot of this module relies on; hugetlb VMAs have walkers of their own.
///
/// # Invariants
///
/// The caller holds the mmap read lock or the VMA read lock (as for [`VmaRef`]), and
/// `VM_HUGETLB` is not set.
#[repr(transparent)]
pub struct WalkableVma {
    vma: VmaRef,
}

impl Deref for WalkableVma {
    type Target = VmaRef;

    #[inline]
    fn deref(&self) -> &VmaRef {
        &self.vma
    }
}

impl WalkableVma {
    /// `vma` as a walkable VMA, without the check of [`Self::new`].
    ///
    /// # Safety
    ///
    /// `vma` is not a hugetlb VMA (`VM_HUGETLB` is not set).
    #[inline]
    pub unsafe fn new_unchecked(vma: &VmaRef) -> &WalkableVma {
        // SAFETY: `WalkableVma` is a transparent wrapper of `VmaRef`.
        // INVARIANT: `VM_HUGETLB` is not set (safety requirements), and the lock is held for as
        // long as `vma` is borrowed.
        unsafe { &*core::ptr::from_ref(vma).cast::<WalkableVma>() }
    }

    /// `vma` as a walkable VMA, or `None` if it is a hugetlb VMA.
    #[inline]
    pub fn new(vma: &VmaRef) -> Option<&WalkableVma> {
        if vma.flags() & flags::HUGETLB != 0 {
            return None;
        }
        // SAFETY: `VM_HUGETLB` is not set (checked above).
        Some(unsafe { Self::new_unchecked(vma) })
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
        ///
        /// # Invariants
        ///
        /// `addr <= end`; if `addr < end`, `ptr` points to the entry covering `addr` in a live
        /// page-table page of the mm of `vma`, and the entries up to the one covering `end - 1`
        /// are in the same page.
        pub struct $range<'a> {
            vma: &'a VmaRef,
            ptr: *mut $raw,
            addr: usize,
            end: usize,
            _not_send: NotThreadSafe,
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
                // INVARIANT: `addr < end`, so `ptr` points to the live entry covering `addr`
                // (type invariant); `next` never passes `end` and is above `addr`.
                let slot = $slot {
                    vma: self.vma,
                    // SAFETY: `ptr` points into a live table, see above, so it is not null.
                    ptr: unsafe { NonNull::new_unchecked(self.ptr) },
                    addr: self.addr,
                    end: next,
                    _not_send: NotThreadSafe,
                };
                // INVARIANT: the entry after `ptr` covers `next`, if `next < end`.
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
        /// A slot is neither `Copy` nor `Clone`: what it is borrowed for (a [`PteTable`] of a
        /// [`PmdSlot`]) cannot be done twice at once.
        ///
        /// # Invariants
        ///
        /// `addr < end`, and `ptr` points to the entry covering `[addr, end)` in a page-table
        /// page of the mm of `vma`; the page cannot be freed while `vma`'s lock is held, which
        /// it is for `'a`, and `vma` is not a hugetlb VMA.
        pub struct $slot<'a> {
            vma: &'a VmaRef,
            ptr: NonNull<$raw>,
            addr: usize,
            end: usize,
            _not_send: NotThreadSafe,
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

/// The PGD entries covering `[addr, end)` of `vma`, the first level of a walk.
///
/// Returns `None` if the range is empty or not within the VMA.
///
/// # Examples
///
/// Count the PTE tables under a range of the current process, and the PTEs that map a page:
///
/// ```
/// use kernel::mm::pgtable::{pgd_range, PteEntry, WalkableVma};
///
/// # kernel::mm::pgtable::doctest::with_mapping(|addr, len| {
/// let current = kernel::current!();
/// let mm = current.mm().ok_or(EINVAL)?;
/// let (tables, present, refused) = {
///     let lock = mm.mmap_read_lock();
///     let vma = WalkableVma::new(lock.vma_lookup(addr).ok_or(EINVAL)?).ok_or(EINVAL)?;
///     let (mut tables, mut present) = (0, 0);
///     for pgd in pgd_range(vma, addr, addr + len).ok_or(EINVAL)? {
///         for p4d in pgd.p4ds().into_iter().flatten() {
///             for pud in p4d.puds().into_iter().flatten() {
///                 for mut pmd in pud.pmds().into_iter().flatten() {
///                     // `None` where the PMD maps no PTE table.
///                     let Some(ptes) = pmd.map_lock() else { continue };
///                     tables += 1;
///                     let mut idx = 0;
///                     while let Some(entry) = ptes.entry(idx) {
///                         present += usize::from(matches!(entry, PteEntry::Present(_)));
///                         idx += 1;
///                     }
///                 }
///             }
///         }
///     }
///     // A range beyond the VMA is refused.
///     let refused = pgd_range(vma, addr, vma.end() + 4096).is_none();
///     (tables, present, refused)
///     // The mmap lock is released here: assert only after that, as a failed assertion ends
///     // the test without running destructors.
/// };
/// // `with_mapping()` wrote the first page only.
/// assert_eq!((tables, present), (1, 1));
/// assert!(refused);
/// # Ok(())
/// # })?;
/// # Ok::<(), Error>(())
/// ```
#[inline]
pub fn pgd_range(vma: &WalkableVma, addr: usize, end: usize) -> Option<PgdRange<'_>> {
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
pub unsafe fn pgd_range_unchecked(vma: &WalkableVma, addr: usize, end: usize) -> PgdRange<'_> {
    // SAFETY: `addr < end` by the safety requirements; telling the compiler spares the first
    // step of the walk its test.
    unsafe { core::hint::assert_unchecked(addr < end) };
    let mm = vma.mm().as_raw();
    // SAFETY: `mm` is live while `vma`'s lock is held; `pgd_offset()` only computes the
    // address of the entry for `addr` in its pgd page, which lives as long as the mm.
    let ptr = unsafe { bindings::pgd_offset(mm, addr) };
    // INVARIANT: `[addr, end)` lies within `vma` (safety requirements), which lies within the
    // address space, whose PGD entries are all in the one pgd page; `vma` is not hugetlb.
    PgdRange {
        vma,
        ptr,
        addr,
        end,
        _not_send: NotThreadSafe,
    }
}

impl<'a> PgdSlot<'a> {
    /// `p4d_alloc()`: makes sure the entry points to a P4D table.
    ///
    /// # Context
    ///
    /// May sleep (`GFP_KERNEL` allocation).
    #[inline]
    pub fn alloc_p4d(&self) -> Result {
        // SAFETY: The slot is live (type invariant) and the VMA's lock allows populating lower
        // tables, as page faults do under it.
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
        // SAFETY: The entry is a table entry (checked above), which only the mmap write lock
        // could change, so `p4d_offset()` is the entry for `addr` in that table.
        let ptr = unsafe { bindings::p4d_offset(self.ptr.as_ptr(), self.addr) };
        // INVARIANT: `[addr, end)` lies within this entry, so within the table it points to.
        Some(P4dRange {
            vma: self.vma,
            ptr,
            addr: self.addr,
            end: self.end,
            _not_send: NotThreadSafe,
        })
    }
}

impl<'a> P4dSlot<'a> {
    /// `pud_alloc()`: makes sure the entry points to a PUD table.
    ///
    /// # Context
    ///
    /// May sleep (`GFP_KERNEL` allocation).
    #[inline]
    pub fn alloc_pud(&self) -> Result {
        // SAFETY: As for `PgdSlot::alloc_p4d()`.
        to_result(unsafe {
            bindings::pud_alloc(self.vma.mm().as_raw(), self.ptr.as_ptr(), self.addr)
        })
    }

    /// `p4d_none_or_clear_bad()`, then the PUD entries under this one if it is a table.
    #[inline]
    pub fn puds(&self) -> Option<PudRange<'a>> {
        // SAFETY: As for `PgdSlot::p4ds()`.
        if unsafe { bindings::p4d_none_or_clear_bad(self.ptr.as_ptr()) } {
            return None;
        }
        self.assume_nonempty();
        // SAFETY: The entry is a table entry (checked above), which only the mmap write lock
        // could change.
        let ptr = unsafe { bindings::pud_offset(self.ptr.as_ptr(), self.addr) };
        // INVARIANT: `[addr, end)` lies within this entry, so within the table it points to.
        Some(PudRange {
            vma: self.vma,
            ptr,
            addr: self.addr,
            end: self.end,
            _not_send: NotThreadSafe,
        })
    }
}

impl<'a> PudSlot<'a> {
    /// `pmd_alloc()`: makes sure the entry points to a PMD table.
    ///
    /// # Context
    ///
    /// May sleep (`GFP_KERNEL` allocation).
    #[inline]
    pub fn alloc_pmd(&self) -> Result {
        // SAFETY: As for `PgdSlot::alloc_p4d()`.
        to_result(unsafe {
            bindings::pmd_alloc(self.vma.mm().as_raw(), self.ptr.as_ptr(), self.addr)
        })
    }

    /// The PMD entries under this one, if it is a table entry (neither none nor a leaf).
    ///
    /// Reads the entry itself: a table entry above the PTE level only changes under the mmap
    /// write lock, so once read as a table, it stays that table for `'a`.
    #[inline]
    pub fn pmds(&self) -> Option<PmdRange<'a>> {
        match self.entry() {
            PudEntry::Table(pmds) => Some(pmds),
            _ => None,
        }
    }

    /// Reads the entry once: none, a leaf (a huge PUD), or a table and the PMD entries under it.
    #[inline]
    pub fn entry(&self) -> PudEntry<'a> {
        let pud = self.get();
        if pud.none() {
            return PudEntry::None;
        }
        if pud.leaf() {
            return PudEntry::Leaf(pud);
        }
        PudEntry::Table(self.pmds_of_table())
    }

    /// The PMD entries under this entry, which was just read as a table entry.
    #[inline(always)]
    fn pmds_of_table(&self) -> PmdRange<'a> {
        self.assume_nonempty();
        // SAFETY: The entry was read as a table entry by the caller, and stays one: a table
        // entry above the PTE level only changes under the mmap write lock.
        let ptr = unsafe { bindings::pmd_offset(self.ptr.as_ptr(), self.addr) };
        // INVARIANT: `[addr, end)` lies within this entry, so within the table it points to.
        PmdRange {
            vma: self.vma,
            ptr,
            addr: self.addr,
            end: self.end,
            _not_send: NotThreadSafe,
        }
    }

    /// `__split_huge_pud()`: splits a huge PUD covering this slot.
    ///
    /// # Context
    ///
    /// May sleep (MMU notifiers).
    #[inline]
    pub fn split_huge(&self) {
        // SAFETY: The slot is live, and `vma` is the VMA it belongs to; the C function takes
        // the entry's lock and rechecks it.
        unsafe { bindings::__split_huge_pud(self.vma.as_ptr(), self.ptr.as_ptr(), self.addr) }
    }

    /// `change_huge_pud()`: changes the huge PUD in this slot as `change` says.
    ///
    /// Returns what `change_huge_pud()` returns: 0 when the entry is no longer huge, else
    /// the number of base pages changed (`HPAGE_PUD_NR`, or 1 if nothing changed). Fails with
    /// `EINVAL` if `change` is not a change of this slot's VMA.
    #[inline]
    pub fn change_huge(&self, change: &mut ProtChange<'a>) -> Result<i32> {
        if !core::ptr::eq(self.vma, &**change.vma) {
            return Err(EINVAL);
        }
        // SAFETY: The slot is live and `vma` is its VMA; by the type invariants of
        // `ProtChange`, its gather is for `vma`'s mm and its protection one `vma` allows. The C
        // function takes the entry's lock, rechecks it, and records its flush in the gather.
        Ok(unsafe {
            bindings::change_huge_pud(
                change.tlb.as_ptr(),
                self.vma.as_ptr(),
                self.ptr.as_ptr(),
                self.addr,
                change.prot.0,
                change.flags.0,
            )
        })
    }
}

/// What a PUD entry holds, read once by [`PudSlot::entry`].
pub enum PudEntry<'a> {
    /// `pud_none()`.
    None,
    /// `pud_leaf()`: a huge PUD, with its value.
    Leaf(Pud),
    /// A PMD table, and the entries of it that the walked range covers.
    Table(PmdRange<'a>),
}

impl<'a> PmdSlot<'a> {
    /// `pte_alloc()`: makes sure the entry points to a PTE table (or a huge page).
    ///
    /// # Context
    ///
    /// May sleep (`GFP_KERNEL` allocation).
    #[inline]
    pub fn alloc_pte(&self) -> Result {
        // SAFETY: As for `PgdSlot::alloc_p4d()`.
        to_result(unsafe { bindings::pte_alloc(self.vma.mm().as_raw(), self.ptr.as_ptr()) })
    }

    /// `pmdp_get_lockless()`.
    #[inline]
    pub fn get_lockless(&self) -> Pmd {
        // SAFETY: The slot is live.
        Pmd(unsafe { bindings::pmdp_get_lockless(self.ptr.as_ptr()) })
    }

    /// `__split_huge_pmd()`: splits a huge PMD covering this slot.
    ///
    /// # Context
    ///
    /// May sleep (MMU notifiers).
    #[inline]
    pub fn split_huge(&self) {
        // SAFETY: The slot is live, and `vma` is the VMA it belongs to; the C function takes
        // the entry's lock and rechecks it.
        unsafe {
            bindings::__split_huge_pmd(self.vma.as_ptr(), self.ptr.as_ptr(), self.addr, false)
        }
    }

    /// `change_huge_pmd()`: changes the huge PMD in this slot as `change` says.
    ///
    /// Returns what `change_huge_pmd()` returns: 0 when the entry is no longer huge, else the
    /// number of base pages changed (`HPAGE_PMD_NR`, or 1 if nothing changed). Fails with
    /// `EINVAL` if `change` is not a change of this slot's VMA.
    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    #[inline]
    pub fn change_huge(&self, change: &mut ProtChange<'a>) -> Result<i32> {
        if !core::ptr::eq(self.vma, &**change.vma) {
            return Err(EINVAL);
        }
        // SAFETY: As for `PudSlot::change_huge()`.
        Ok(unsafe {
            bindings::change_huge_pmd(
                change.tlb.as_ptr(),
                self.vma.as_ptr(),
                self.ptr.as_ptr(),
                self.addr,
                change.prot.0,
                change.flags.0,
            )
        })
    }

    /// `change_huge_pmd()` without `CONFIG_TRANSPARENT_HUGEPAGE`, where no PMD is huge and the C
    /// function is declared but not defined: 0, "no longer huge".
    #[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
    #[inline]
    pub fn change_huge(&self, change: &mut ProtChange<'a>) -> Result<i32> {
        if !core::ptr::eq(self.vma, &**change.vma) {
            return Err(EINVAL);
        }
        Ok(0)
    }

    /// The slot again, for as long as this one is borrowed mutably: to pass by value (in
    /// registers, and only where it is used) what a caller cannot give away.
    #[inline(always)]
    pub fn reborrow(&mut self) -> PmdSlot<'_> {
        // INVARIANT: the same entry and range; `self` cannot be used while the copy lives.
        PmdSlot {
            vma: self.vma,
            ptr: self.ptr,
            addr: self.addr,
            end: self.end,
            _not_send: NotThreadSafe,
        }
    }

    /// `pte_offset_map_lock()`: maps and locks the PTEs of this slot's range.
    ///
    /// Returns `None` if the entry does not (any longer) point to a PTE table. The table
    /// borrows the slot mutably, so the slot cannot be populated, split or locked again while
    /// the table is held.
    ///
    /// # Context
    ///
    /// Takes a spinlock: the caller must not hold the lock of another PTE table of the same mm
    /// (which may be the same lock).
    #[inline]
    pub fn map_lock(&mut self) -> Option<PteTable<'_>> {
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
            _not_send: NotThreadSafe,
        })
    }
}

/// The PTEs of one PMD's part of the walked range, mapped and locked.
///
/// The entries are changed through `&self`: they are not Rust memory but page-table entries,
/// read and written only by the C accessors while the table lock is held, and a `PteTable`
/// never leaves the task that locked it. That lets what is read through the table
/// ([`PresentPte`], [`MappedPage`], ...) borrow it, which keeps the table locked, and so the
/// pages mapped, for as long as they are used.
///
/// # Examples
///
/// Read the first PTE of a mapping, the page it maps, and its folio:
///
/// ```
/// use kernel::mm::pgtable::{pgd_range, PteEntry, WalkableVma};
///
/// # kernel::mm::pgtable::doctest::with_mapping(|addr, _len| {
/// let current = kernel::current!();
/// let mm = current.mm().ok_or(EINVAL)?;
/// let (present, small) = {
///     let lock = mm.mmap_read_lock();
///     let vma = WalkableVma::new(lock.vma_lookup(addr).ok_or(EINVAL)?).ok_or(EINVAL)?;
///     let pgd = pgd_range(vma, addr, addr + 4096).ok_or(EINVAL)?.next().ok_or(EINVAL)?;
///     let p4d = pgd.p4ds().ok_or(EINVAL)?.next().ok_or(EINVAL)?;
///     let pud = p4d.puds().ok_or(EINVAL)?.next().ok_or(EINVAL)?;
///     let mut pmd = pud.pmds().ok_or(EINVAL)?.next().ok_or(EINVAL)?;
///     let ptes = pmd.map_lock().ok_or(EINVAL)?;
///     match ptes.entry(0).ok_or(EINVAL)? {
///         PteEntry::Present(pte) => {
///             let page = pte.normal_page().ok_or(EINVAL)?;
///             (pte.pte().write(), !page.folio().is_large())
///         }
///         _ => (false, false),
///     }
///     // The table is unlocked here, then the mmap lock is released: assert only after that,
///     // as a failed assertion ends the test without running destructors.
/// };
/// // The written page is mapped writable, by a small folio.
/// assert!(present);
/// assert!(small);
/// # Ok(())
/// # })?;
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `first` points to the PTE of `addr`, followed by `len - 1` more PTEs of the same table; the
/// table is mapped and its lock `ptl` is held until drop, by this task; `vma` is the (not
/// hugetlb) VMA whose range the PTEs map.
pub struct PteTable<'a> {
    vma: &'a VmaRef,
    first: NonNull<bindings::pte_t>,
    ptl: *mut bindings::spinlock_t,
    addr: usize,
    len: usize,
    _not_send: NotThreadSafe,
}

/// What one PTE of a [`PteTable`] holds, read under its lock.
#[derive(Clone, Copy)]
pub enum PteEntry<'t> {
    /// `pte_present()`.
    Present(PresentPte<'t>),
    /// `pte_none()`.
    None,
    /// Neither: a software leaf entry (swap, migration, device-private, marker).
    Leaf(LeafPte<'t>),
}

/// A present PTE, read from a locked [`PteTable`].
///
/// # Invariants
///
/// `pte` is present, and is the value of PTE `idx` of a table locked for `'t`, whose first PTE
/// maps `base` in `vma`, read under that lock.
#[derive(Clone, Copy)]
pub struct PresentPte<'t> {
    vma: &'t VmaRef,
    base: usize,
    idx: usize,
    pte: Pte,
}

/// A software leaf PTE (neither none nor present), read from a locked [`PteTable`].
///
/// # Invariants
///
/// `pte` is neither none nor present, and is the value of a PTE of a table locked for `'t`, read
/// under that lock.
#[derive(Clone, Copy)]
pub struct LeafPte<'t> {
    pte: Pte,
    _table: PhantomData<&'t ()>,
}

/// A writable migration entry, read from a locked [`PteTable`].
///
/// # Invariants
///
/// `leaf` is a writable migration entry of a PTE of a table locked for `'t`: its folio is locked
/// by the migration, which cannot remove the entry (and unlock the folio) without that lock.
#[derive(Clone, Copy)]
pub struct MigrationEntry<'t> {
    leaf: SoftLeaf,
    _table: PhantomData<&'t ()>,
}

/// A page mapped by a present PTE of a [`PteTable`], valid while the table is locked.
///
/// # Invariants
///
/// `page` is mapped by a present PTE of a table locked for `'t`: the mapping, and so a reference
/// on its folio, cannot go away without that lock.
#[derive(Clone, Copy)]
pub struct MappedPage<'t> {
    page: NonNull<bindings::page>,
    _table: PhantomData<&'t ()>,
}

/// The folio of a [`MappedPage`], valid while the table is locked.
///
/// # Invariants
///
/// `folio` is the folio of a page mapped by a present PTE of a table locked for `'t`.
#[derive(Clone, Copy)]
pub struct MappedFolio<'t> {
    folio: NonNull<bindings::folio>,
    _table: PhantomData<&'t ()>,
}

/// A run of present PTEs of a [`PteTable`] that map consecutive pages of one folio, changed as
/// one (`folio_pte_batch()`).
///
/// # Invariants
///
/// `nr >= 1`; PTEs `idx..idx + nr` of a table locked for `'t` are present and map consecutive
/// pages of one folio, of which `page`, if any, is the first.
pub struct PteBatch<'t> {
    idx: usize,
    nr: usize,
    page: Option<MappedPage<'t>>,
}

impl<'a> PteTable<'a> {
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

    /// A raw pointer to PTE `idx`, for C functions that take a run of `nr` PTEs; `None` unless
    /// `nr >= 1` and the run lies within the table.
    #[inline]
    pub fn as_ptr(&self, idx: usize, nr: usize) -> Option<NonNull<bindings::pte_t>> {
        if nr == 0 || idx >= self.len || nr > self.len - idx {
            return None;
        }
        // SAFETY: `idx < len`, so the result is within the table (type invariant).
        Some(unsafe { self.first.add(idx) })
    }

    /// Reads PTE `idx` (`ptep_get()`); `None` if `idx` is beyond the table.
    #[inline]
    pub fn entry(&self, idx: usize) -> Option<PteEntry<'_>> {
        if idx >= self.len {
            return None;
        }
        // SAFETY: `idx < len`, so the result is within the table (type invariant).
        let ptep = unsafe { self.first.as_ptr().add(idx) };
        // SAFETY: `ptep` is a PTE of the table, which is mapped and locked.
        let pte = Pte(unsafe { bindings::ptep_get(ptep) });
        Some(if pte.present() {
            // INVARIANT: `pte` is present and was read from PTE `idx` under the lock.
            PteEntry::Present(PresentPte {
                vma: self.vma,
                base: self.addr,
                idx,
                pte,
            })
        } else if pte.none() {
            PteEntry::None
        } else {
            // INVARIANT: `pte` is neither none nor present, read under the lock.
            PteEntry::Leaf(LeafPte {
                pte,
                _table: PhantomData,
            })
        })
    }

    /// Lazy MMU mode until the returned guard is dropped, which must be before the table is.
    #[inline]
    pub fn lazy_mmu(&self) -> LazyMmu<'_> {
        // SAFETY: Paired with the disable in `LazyMmu::drop()`; nesting is allowed.
        unsafe { bindings::lazy_mmu_mode_enable() };
        // INVARIANT: enabled just above.
        LazyMmu {
            _table: PhantomData,
            _not_send: NotThreadSafe,
        }
    }

    /// `set_pte_at()` of PTE `idx`; does nothing if `idx` is beyond the table.
    ///
    /// # Safety
    ///
    /// Writing `pte` over the current value of PTE `idx` must keep the mm consistent, as in the
    /// C walkers: either `pte` is a non-present entry (a marker, or a software leaf entry derived
    /// from the current one with fewer permissions or changed software bits) written over a none
    /// entry or over the software leaf entry it was derived from; or the caller follows the rules
    /// of `set_pte_at()` in `mm/memory.c` for the page it maps (mapcount, reference, rmap, TLB
    /// flush). The caller must have started an MMU notifier invalidation that covers the PTE
    /// when the change removes access.
    #[inline]
    pub unsafe fn set(&self, idx: usize, pte: Pte) {
        let Some(ptep) = self.as_ptr(idx, 1) else {
            return;
        };
        // SAFETY: `ptep` is a PTE of the table, whose lock is held; the value is one the caller
        // may write (safety requirements).
        unsafe {
            bindings::set_pte_at(self.vma.mm().as_raw(), self.addr(idx), ptep.as_ptr(), pte.0)
        }
    }

    /// `pte_clear()` of PTE `idx`; does nothing if `idx` is beyond the table.
    ///
    /// # Safety
    ///
    /// PTE `idx` must be none or a marker (`softleaf_is_marker()`): it maps no page and holds
    /// no swap or migration reference, so nothing is lost when it is cleared.
    #[inline]
    pub unsafe fn clear(&self, idx: usize) {
        let Some(ptep) = self.as_ptr(idx, 1) else {
            return;
        };
        // SAFETY: `ptep` is a PTE of the table, whose lock is held; it holds no reference
        // (safety requirements).
        unsafe { bindings::pte_clear(self.vma.mm().as_raw(), self.addr(idx), ptep.as_ptr()) }
    }

    /// `modify_prot_start_ptes()` of the PTEs of `batch`: reads and clears them (gathering
    /// their access and dirty bits into the returned value, that of the first).
    ///
    /// # Safety
    ///
    /// `batch` must be a batch of this table (so its PTEs lie within it), and the caller must
    /// call [`Self::modify_prot_commit`] for every PTE of the batch before the table is
    /// unlocked.
    #[inline]
    pub unsafe fn modify_prot_start(&self, batch: &PteBatch<'_>) -> Pte {
        // SAFETY: The batch's PTEs lie within this table (safety requirements and type
        // invariant of `PteBatch`).
        let ptep = unsafe { self.first.as_ptr().add(batch.idx) };
        // SAFETY: `ptep..ptep + nr` are PTEs of the table, whose lock is held, and map
        // consecutive pages of one folio (type invariant of `PteBatch`).
        Pte(unsafe {
            bindings::modify_prot_start_ptes(
                self.vma.as_ptr(),
                self.addr(batch.idx),
                ptep,
                batch.nr as c_uint,
            )
        })
    }

    /// `modify_prot_commit_ptes()` of PTEs `off..off + nr` of `batch` (so that a batch can be
    /// committed in parts), after [`Self::modify_prot_start`] of the batch: writes `new`, and
    /// `new` advanced one page for each following PTE.
    ///
    /// # Safety
    ///
    /// - `batch` is a batch of this table, started with [`Self::modify_prot_start`] and not yet
    ///   committed over this part; `nr >= 1` and `off + nr <= batch.len()`;
    /// - `old` is the value returned by the start, advanced by `off` pages (`Pte::advance_pfn`);
    /// - `new` is `old` with changed protection and software bits only, mapping the same page;
    ///   its permissions are ones the VMA allows for that page: writable only if the VMA is
    ///   writable and the page may be written without a fault (a shared mapping whose page is
    ///   dirty, or an anonymous page that is `PageAnonExclusive()`), as
    ///   `can_change_pte_writable()` decides;
    /// - if `pte_needs_flush(old, new)`, the caller records the range in the [`ProtChange`] of
    ///   the VMA (`ProtChange::flush_pte_range`), and an MMU notifier invalidation covering it was
    ///   started when the change removes access.
    #[inline]
    pub unsafe fn modify_prot_commit(
        &self,
        batch: &PteBatch<'_>,
        off: usize,
        nr: usize,
        old: Pte,
        new: Pte,
    ) {
        let idx = batch.idx + off;
        // SAFETY: The part lies within the batch, whose PTEs lie within this table (safety
        // requirements and type invariant of `PteBatch`).
        let ptep = unsafe { self.first.as_ptr().add(idx) };
        // SAFETY: `ptep..ptep + nr` are PTEs of the table, whose lock is held, started and
        // not yet committed; `old` and `new` are values the caller may write (safety
        // requirements).
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

impl<'t> PresentPte<'t> {
    /// The entry's value.
    #[inline]
    pub fn pte(self) -> Pte {
        self.pte
    }

    /// The entry's index in its table.
    #[inline]
    pub fn idx(self) -> usize {
        self.idx
    }

    /// `vm_normal_page()`: the page the entry maps, if it is a "normal" page.
    #[inline]
    pub fn normal_page(self) -> Option<MappedPage<'t>> {
        // The address of PTE `idx`; cannot overflow for a PTE of the table.
        let addr = self.base.wrapping_add(self.idx << PAGE_SHIFT);
        // SAFETY: `vma` is valid; `pte` is a present entry read from `addr` of a table of `vma`
        // under its lock (type invariant), so the page it maps, if any, stays mapped for `'t`.
        let page = unsafe { bindings::vm_normal_page(self.vma.as_ptr(), addr, self.pte.0) };
        // INVARIANT: the page is mapped by a present PTE of a table locked for `'t`.
        Some(MappedPage {
            page: NonNull::new(page)?,
            _table: PhantomData,
        })
    }
}

impl<'t> LeafPte<'t> {
    /// The entry's value.
    #[inline]
    pub fn pte(self) -> Pte {
        self.pte
    }

    /// `softleaf_from_pte()`: the software leaf entry.
    #[inline]
    pub fn softleaf(self) -> SoftLeaf {
        // SAFETY: Only computes a value.
        SoftLeaf(unsafe { bindings::softleaf_from_pte(self.pte.0) })
    }

    /// The entry as a writable migration entry, if it is one (`softleaf_is_migration_write()`).
    #[inline]
    pub fn migration_write(self) -> Option<MigrationEntry<'t>> {
        let leaf = self.softleaf();
        if !leaf.is_migration_write() {
            return None;
        }
        // INVARIANT: a writable migration entry of a PTE of a table locked for `'t`.
        Some(MigrationEntry {
            leaf,
            _table: PhantomData,
        })
    }
}

impl MigrationEntry<'_> {
    /// The software leaf entry.
    #[inline]
    pub fn softleaf(self) -> SoftLeaf {
        self.leaf
    }

    /// `folio_test_anon(softleaf_to_folio())`: whether the folio under migration is anonymous.
    #[inline]
    pub fn folio_is_anon(self) -> bool {
        // SAFETY: A migration entry encodes the PFN of a page of its folio.
        let folio = unsafe { bindings::softleaf_to_folio(self.leaf.0) };
        // SAFETY: The folio is locked by the migration and cannot be freed while its entry is
        // in a table whose lock is held (type invariant).
        unsafe { bindings::folio_test_anon(folio) }
    }
}

impl<'t> MappedPage<'t> {
    /// The folio this page belongs to.
    #[inline]
    pub fn folio(self) -> MappedFolio<'t> {
        // SAFETY: The page is mapped and the table lock keeps the mapping, and so a reference
        // on the folio, in place (type invariant).
        let folio = unsafe { bindings::page_folio(self.page.as_ptr()) };
        // INVARIANT: the folio of a mapped page, see above.
        MappedFolio {
            // SAFETY: `page_folio()` of a valid page is never NULL.
            folio: unsafe { NonNull::new_unchecked(folio) },
            _table: PhantomData,
        }
    }

    /// Returns the raw pointer.
    #[inline]
    pub fn as_ptr(self) -> *mut bindings::page {
        self.page.as_ptr()
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

impl<'t> PteBatch<'t> {
    /// The batch of the single PTE `pte`, whose page (from [`PresentPte::normal_page`]) is
    /// `page`.
    #[inline]
    pub fn single(pte: PresentPte<'t>, page: Option<MappedPage<'t>>) -> Self {
        // INVARIANT: one present PTE of a locked table, and the page it maps.
        Self {
            idx: pte.idx,
            nr: 1,
            page,
        }
    }

    /// The batch of `nr` PTEs from `first`, as counted by `folio_pte_batch()`.
    ///
    /// # Safety
    ///
    /// `nr >= 1`, and PTEs `first.idx()..first.idx() + nr` of `first`'s table map consecutive
    /// pages of one folio, of which `page` (from [`PresentPte::normal_page`] of `first`) is the
    /// first: `folio_pte_batch()` of `first` returned at least `nr`.
    #[inline]
    pub unsafe fn new(first: PresentPte<'t>, nr: usize, page: Option<MappedPage<'t>>) -> Self {
        // INVARIANT: see the safety requirements.
        Self {
            idx: first.idx,
            nr,
            page,
        }
    }

    /// The index of the batch's first PTE in its table.
    #[inline]
    pub fn idx(&self) -> usize {
        self.idx
    }

    /// The number of PTEs in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.nr
    }

    /// Whether the batch is empty (never).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// `PageAnonExclusive()` of the page mapped by PTE `off` of the batch, and the number of
    /// PTEs from `off` whose pages share it (`page_anon_exclusive_batch()`): at least 1 if `off`
    /// is within the batch, 0 if not. A batch without a page is one run, not exclusive.
    #[inline]
    pub fn anon_exclusive_run(&self, off: usize) -> (bool, usize) {
        if off >= self.nr {
            return (false, 0);
        }
        let Some(page) = self.page else {
            return (false, self.nr - off);
        };
        let first = page.page.as_ptr();
        // SAFETY: The batch maps consecutive pages of one folio, of which `first` is the first
        // (type invariant), and `off < nr`.
        let expected = unsafe { bindings::PageAnonExclusive(first.add(off)) };
        let mut idx = off + 1;
        while idx < self.nr {
            // SAFETY: As above, `idx < nr`.
            if unsafe { bindings::PageAnonExclusive(first.add(idx)) } != expected {
                break;
            }
            idx += 1;
        }
        // Cannot overflow: `idx > off`.
        (expected, idx.wrapping_sub(off))
    }
}

/// Lazy MMU mode, enabled while this guard lives; made by [`PteTable::lazy_mmu`], whose table it
/// borrows, so that the mode is left before the table is unlocked.
///
/// # Invariants
///
/// `lazy_mmu_mode_enable()` was called by this task, and is paired with the disable on drop.
pub struct LazyMmu<'t> {
    _table: PhantomData<&'t ()>,
    _not_send: NotThreadSafe,
}

impl Drop for LazyMmu<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: Paired with the enable in `PteTable::lazy_mmu()` (type invariant).
        unsafe { bindings::lazy_mmu_mode_disable() };
    }
}

/// A protection change of one VMA: the `struct mmu_gather` that collects its TLB flushes, the
/// new protection and the `MM_CP_*` flags, as `change_protection()` passes them on.
///
/// # Invariants
///
/// - `tlb` points to an `mmu_gather` initialised by `tlb_gather_mmu()` for the mm of `vma`, used
///   by nobody else and not finished during `'a`;
/// - mapping any page of `vma` with `prot` grants no access that the VMA's `vm_page_prot` does
///   not (it is `vm_page_prot` or `PAGE_NONE`).
pub struct ProtChange<'a> {
    tlb: NonNull<bindings::mmu_gather>,
    vma: &'a WalkableVma,
    prot: PgProt,
    flags: CpFlags,
    _not_send: NotThreadSafe,
}

impl<'a> ProtChange<'a> {
    /// A change of `vma` gathered in `tlb`, as `change_protection()` passes it to
    /// `change_protection_range()`.
    ///
    /// # Safety
    ///
    /// - `tlb` points to an `mmu_gather` initialised by `tlb_gather_mmu()` for the mm of `vma`,
    ///   used by nobody else and not finished during `'a`;
    /// - `prot` is the VMA's `vm_page_prot` or `PAGE_NONE` (or grants no more access than
    ///   `vm_page_prot`).
    #[inline]
    pub unsafe fn from_raw(
        tlb: NonNull<bindings::mmu_gather>,
        vma: &'a WalkableVma,
        prot: bindings::pgprot_t,
        flags: CpFlags,
    ) -> Self {
        // INVARIANT: see the safety requirements.
        Self {
            tlb,
            vma,
            prot: PgProt(prot),
            flags,
            _not_send: NotThreadSafe,
        }
    }

    /// The VMA being changed.
    #[inline]
    pub fn vma(&self) -> &'a WalkableVma {
        self.vma
    }

    /// The new protection.
    #[inline]
    pub fn prot(&self) -> PgProt {
        self.prot
    }

    /// The `MM_CP_*` flags.
    #[inline]
    pub fn flags(&self) -> CpFlags {
        self.flags
    }

    /// `tlb_start_vma()`.
    #[inline]
    pub fn start_vma(&mut self) {
        // SAFETY: The gather is valid, ours, and for the mm of `vma` (type invariant).
        unsafe { bindings::tlb_start_vma(self.tlb.as_ptr(), self.vma.as_ptr()) }
    }

    /// `tlb_end_vma()`.
    #[inline]
    pub fn end_vma(&mut self) {
        // SAFETY: As for `start_vma()`.
        unsafe { bindings::tlb_end_vma(self.tlb.as_ptr(), self.vma.as_ptr()) }
    }

    /// `tlb_change_page_size()`.
    #[inline]
    pub fn change_page_size(&mut self, size: usize) {
        // SAFETY: The gather is valid and ours (type invariant).
        unsafe { bindings::tlb_change_page_size(self.tlb.as_ptr(), size as c_uint) }
    }

    /// `tlb_flush_pte_range()`: records that PTEs of `[addr, addr + size)` need a flush.
    #[inline]
    pub fn flush_pte_range(&mut self, addr: usize, size: usize) {
        // SAFETY: The gather is valid and ours (type invariant); any range may be recorded.
        unsafe { bindings::tlb_flush_pte_range(self.tlb.as_ptr(), addr, size) }
    }
}

/// The event an [`InvalidateRange`] reports to MMU notifiers.
#[derive(Clone, Copy)]
pub enum InvalidateEvent {
    /// `MMU_NOTIFY_PROTECTION_VMA`: the protection of a range of a VMA changes.
    ProtectionVma,
}

/// An MMU notifier invalidation of a range of a VMA's mm, started at most once and ended on
/// drop.
///
/// Pin it on the stack (`core::pin::pin!`), call [`Self::start`] with the VMA where the
/// invalidation must begin (later calls do nothing, whatever VMA they pass), and let it go out
/// of scope: if it was started, `mmu_notifier_invalidate_range_end()` runs exactly once, on
/// every path out of the scope. The borrow of the VMA passed to [`Self::start`] must last until
/// the range is dropped, so it cannot outlive the lock that keeps the mm alive; and it stays
/// pinned between start and end, as notifiers see its address.
///
/// A range that is started and then leaked (`mem::forget` of a `Pin<KBox<_>>`) is never ended,
/// which is not memory-unsafe but leaves the mm's notifiers waiting: do not.
///
/// # Examples
///
/// ```
/// use core::pin::pin;
/// use kernel::mm::pgtable::{InvalidateEvent, InvalidateRange};
///
/// # kernel::mm::pgtable::doctest::with_mapping(|addr, len| {
/// let current = kernel::current!();
/// let mm = current.mm().ok_or(EINVAL)?;
/// let started = {
///     let lock = mm.mmap_read_lock();
///     let vma = lock.vma_lookup(addr).ok_or(EINVAL)?;
///     let event = InvalidateEvent::ProtectionVma;
///     let mut range = pin!(InvalidateRange::new(event));
///     let before = range.is_started();
///     range.as_mut().start(vma, addr, addr + len);
///     // A second start does nothing.
///     range.as_mut().start(vma, addr, addr + 4096);
///     (before, range.is_started())
///     // `range` ends here, before the mmap lock is released.
/// };
/// assert_eq!(started, (false, true));
/// # Ok(())
/// # })?;
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// Once started, `range` is for the mm of a VMA borrowed for `'a` (see `NotifierRange`).
#[pin_data]
pub struct InvalidateRange<'a> {
    #[pin]
    range: NotifierRange<'a>,
    event: InvalidateEvent,
    _not_send: NotThreadSafe,
}

/// The pinned `struct mmu_notifier_range` of an [`InvalidateRange`], ended on drop if started.
///
/// A field of its own, with its own `Drop`, rather than `#[pin_data(PinnedDrop)]` on
/// [`InvalidateRange`]: the `Drop` that `#[pin_data]` generates for a `PinnedDrop` type is not
/// `#[inline]`, and cost the walker an out-of-line call for every range. Dropping a pinned field
/// in place is what pinning guarantees, so the range is still where notifiers saw it.
///
/// # Invariants
///
/// If `started`, `range` was initialised by `mmu_notifier_range_init()` for the mm of a VMA
/// borrowed for `'a` and `mmu_notifier_invalidate_range_start()` was called on it, and the end
/// has not; once started, `range` does not move until it is dropped: it is started only
/// through a pinned [`InvalidateRange`], of which it is a structurally pinned field, and is
/// `!Unpin` (`Opaque` is).
struct NotifierRange<'a> {
    range: Opaque<bindings::mmu_notifier_range>,
    started: bool,
    /// The end reads the mm: with the lifetime on this `Drop` type, the borrow of the VMA (and
    /// so its lock) must still be live where the range is dropped.
    _vma: PhantomData<&'a VmaRef>,
}

impl Drop for NotifierRange<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.started {
            // SAFETY: The range was started and not ended, and has not moved since (type
            // invariant); its mm is still live, since the VMA it is for is borrowed for `'a`,
            // which drop check requires to be live here (`Self` has a `Drop` impl naming it);
            // it is ended exactly once, here.
            unsafe { bindings::mmu_notifier_invalidate_range_end(self.range.get()) };
        }
    }
}

impl<'a> InvalidateRange<'a> {
    /// An invalidation for `event`, not started.
    ///
    /// Returned by value, to be pinned where it is kept (`core::pin::pin!`): it can be moved
    /// until then, as nothing has seen its address; [`Self::start`] takes it pinned.
    #[inline]
    pub fn new(event: InvalidateEvent) -> Self {
        // By value rather than a `PinInit`: `stack_pin_init!` added a drop flag, set and
        // tested on every call of the walker.
        // INVARIANT: not started.
        Self {
            range: NotifierRange {
                range: Opaque::uninit(),
                started: false,
                _vma: PhantomData,
            },
            event,
            _not_send: NotThreadSafe,
        }
    }

    /// Whether [`Self::start`] has started the invalidation.
    #[inline]
    pub fn is_started(&self) -> bool {
        self.range.started
    }

    /// `mmu_notifier_range_init()` + `mmu_notifier_invalidate_range_start()` for
    /// `[start, end)` of `vma`'s mm, unless already started (then `vma` is not used).
    ///
    /// # Context
    ///
    /// May sleep (blockable notifiers).
    #[inline]
    pub fn start(self: Pin<&mut Self>, vma: &'a VmaRef, start: usize, end: usize) {
        // The VMA comes here rather than being kept from `new()`: kept, it was a store and a
        // load on every call of the walker, whether or not a range was started.
        let this = self.project();
        // SAFETY: Nothing is moved out of the pinned field: only `started` is written and the
        // range initialised in place.
        let notifier = unsafe { this.range.get_unchecked_mut() };
        if notifier.started {
            return;
        }
        let range = notifier.range.get();
        let event = match this.event {
            InvalidateEvent::ProtectionVma => {
                bindings::mmu_notifier_event_MMU_NOTIFY_PROTECTION_VMA
            }
        };
        // `mmu_notifier_range_init()` leaves `owner` alone, as the C walker's stack range; only
        // `MMU_NOTIFY_MIGRATE` ranges are ever asked for it, but give it a value. The field
        // exists only with MMU notifiers.
        #[cfg(CONFIG_MMU_NOTIFIER)]
        // SAFETY: `range` is ours and valid for writes; `owner` is written through the raw
        // pointer, without a reference to the uninitialised struct.
        unsafe {
            (&raw mut (*range).owner).write(core::ptr::null_mut())
        };
        // SAFETY: `range` is ours and valid for writes; the mm of `vma` is live while `vma` is
        // borrowed (its lock is held).
        unsafe {
            bindings::mmu_notifier_range_init(range, event, 0, vma.mm().as_raw(), start, end)
        };
        // SAFETY: `range` was initialised just above, and is pinned until it is ended.
        unsafe { bindings::mmu_notifier_invalidate_range_start(range) };
        // INVARIANT: started just above, for the mm of `vma`, borrowed for `'a`.
        notifier.started = true;
    }
}

/// `cond_resched()`.
///
/// # Context
///
/// May sleep: not with a [`PteTable`] held (see the module's `# Context`).
#[inline]
pub fn cond_resched() {
    // SAFETY: Always safe to call; the C function checks the context it is called in.
    unsafe { bindings::cond_resched() };
}

/// Userfaultfd, soft-dirty and anonymity tests on a VMA.
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
        // SAFETY: As above; the entry is only a value.
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

    /// `vma_soft_dirty_enabled()` of `mm/internal.h`: soft-dirty tracking is on in this VMA,
    /// so an entry that is not soft-dirty needs a write fault.
    ///
    /// The same two tests, in the same order: `VM_SOFTDIRTY` is 0 where soft-dirty is not
    /// built in, so the page tables' support is asked first, and without
    /// `CONFIG_MEM_SOFT_DIRTY` (which `pgtable_supports_soft_dirty()` requires) the answer is
    /// `false`.
    #[inline]
    pub fn soft_dirty_enabled(vma: &VmaRef) -> bool {
        #[cfg(CONFIG_MEM_SOFT_DIRTY)]
        {
            // SAFETY: Only reads the configuration and, where the architecture says, CPU
            // features.
            let supported = unsafe { bindings::pgtable_supports_soft_dirty() };
            supported && vma.flags() & super::flags::SOFTDIRTY == 0
        }
        #[cfg(not(CONFIG_MEM_SOFT_DIRTY))]
        {
            let _ = vma;
            false
        }
    }
}

/// Set-up for the examples of this module, run as KUnit tests (`CONFIG_RUST_KERNEL_DOCTESTS`).
#[cfg(CONFIG_RUST_KERNEL_DOCTESTS)]
#[doc(hidden)]
pub mod doctest {
    use crate::{
        bindings,
        error::{code::*, Result},
        ffi::c_ulong,
        uaccess::{UserPtr, UserSlice},
        uapi::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE},
    };

    /// Maps four pages of private anonymous memory into the test's own mm (made for it by
    /// `kunit_vm_mmap()`), writes the first page, and calls `f` with the address and length.
    pub fn with_mapping(f: impl FnOnce(usize, usize) -> Result) -> Result {
        let len = 4 * crate::page::PAGE_SIZE;
        // SAFETY: Only reads the current task's KUnit test pointer.
        let test = unsafe { bindings::kunit_get_current_test() };
        if test.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `test` is the running test; the mapping is torn down with the mm that
        // `kunit_vm_mmap()` attaches to the test's kthread.
        let addr = unsafe {
            bindings::kunit_vm_mmap(
                test,
                core::ptr::null_mut(),
                0,
                len as c_ulong,
                (PROT_READ | PROT_WRITE) as c_ulong,
                (MAP_PRIVATE | MAP_ANONYMOUS) as c_ulong,
                0,
            )
        };
        // Zero, or an errno encoded as an address.
        if addr == 0 || addr > c_ulong::MAX - bindings::MAX_ERRNO as c_ulong {
            return Err(ENOMEM);
        }
        let addr = addr as usize;
        UserSlice::new(UserPtr::from_addr(addr), 1)
            .writer()
            .write_slice(&[1])?;
        f(addr, len)
    }
}
