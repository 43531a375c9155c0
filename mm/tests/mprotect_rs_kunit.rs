// SPDX-License-Identifier: GPL-2.0

//! KUnit smoke test for the Rust page-table path of mprotect-rs.
//!
//! It proves the path the Rust walker takes, end to end: Rust code in `mm/`, calling C through
//! `bindings` and the page-table helpers of `rust/helpers/pgtable.c`, running in the booted
//! kernel on a KUnit-owned mm. Anonymous memory is mapped with `kunit_vm_mmap()`, every other
//! page is written through `copy_to_user()`, and a Rust walk of the page table must then find a
//! present, writable, dirty PTE for exactly the written pages, each mapping the page that holds
//! the byte written to it.

use kernel::prelude::*;

#[kunit_tests(mprotect_rs_smoke)]
mod tests {
    use core::ptr;
    use kernel::{
        bindings,
        mm::{MmWithUser, MmapReadGuard},
        page::PAGE_SIZE,
        prelude::*,
        uaccess::{UserPtr, UserSlice},
        uapi::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE},
    };

    const NR_PAGES: usize = 32;

    /// What a walk of the page table found for one address.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Found {
        /// A level above the PTE table is empty or is a leaf.
        NoPteTable,
        /// The PTE is none.
        None,
        /// A present PTE, with what it says and the first byte of the page it maps.
        Present {
            write: bool,
            dirty: bool,
            pfn: usize,
            byte: u8,
        },
        /// Anything else (a swap or migration entry, a marker).
        NotPresent,
    }

    /// Walks `mm`'s page table down to the PTE mapping `addr`.
    ///
    /// `_lock` proves that the caller holds the mmap lock of `mm`, which keeps the page-table
    /// pages from being freed under the walk.
    fn walk(mm: &MmWithUser, _lock: &MmapReadGuard<'_>, addr: usize) -> Found {
        let mm = mm.as_raw();

        // SAFETY: `mm` is a live mm whose mmap lock is held; `pgd_offset()` only computes the
        // address of the entry in its pgd page, and `pgdp_get()` reads that entry.
        let pgd = unsafe { bindings::pgd_offset(mm, addr) };
        // SAFETY: `pgd` points into the pgd page of `mm` (see above).
        let pgdv = unsafe { bindings::pgdp_get(pgd) };
        // SAFETY: The predicates only look at the value passed to them.
        if unsafe { bindings::pgd_none(pgdv) || bindings::pgd_bad(pgdv) } {
            return Found::NoPteTable;
        }
        // SAFETY: `*pgd` is neither none nor bad, so it points to a p4d table, which the mmap
        // lock keeps alive.
        let p4d = unsafe { bindings::p4d_offset(pgd, addr) };
        // SAFETY: `p4d` points into that table.
        let p4dv = unsafe { bindings::p4dp_get(p4d) };
        // SAFETY: The predicates only look at the value passed to them.
        if unsafe { bindings::p4d_none(p4dv) || bindings::p4d_bad(p4dv) } {
            return Found::NoPteTable;
        }
        // SAFETY: `*p4d` is neither none nor bad, so it points to a pud table.
        let pud = unsafe { bindings::pud_offset(p4d, addr) };
        // SAFETY: `pud` points into that table.
        let pudv = unsafe { bindings::pudp_get(pud) };
        // SAFETY: The predicates only look at the value passed to them.
        if unsafe {
            bindings::pud_none(pudv) || bindings::pud_leaf(pudv) || bindings::pud_bad(pudv)
        } {
            return Found::NoPteTable;
        }
        // SAFETY: `*pud` is a table entry, so it points to a pmd table.
        let pmd = unsafe { bindings::pmd_offset(pud, addr) };

        let mut ptl: *mut bindings::spinlock_t = ptr::null_mut();
        // SAFETY: `pmd` points into a live pmd table of `mm`. `pte_offset_map_lock()` rechecks
        // the pmd itself and returns NULL unless it maps a PTE table; on success it returns the
        // mapped entry with `ptl` held.
        let pte = unsafe { bindings::pte_offset_map_lock(mm, pmd, addr, &mut ptl) };
        if pte.is_null() {
            return Found::NoPteTable;
        }
        // SAFETY: `pte` is mapped and its table lock is held.
        let ptev = unsafe { bindings::ptep_get(pte) };
        // SAFETY: `pte` and `ptl` come from the successful `pte_offset_map_lock()` above and are
        // released exactly once, here.
        unsafe { bindings::pte_unmap_unlock(pte, ptl) };

        // SAFETY: The predicates only look at the value passed to them.
        if unsafe { bindings::pte_none(ptev) } {
            return Found::None;
        }
        // SAFETY: As above.
        if !unsafe { bindings::pte_present(ptev) } {
            return Found::NotPresent;
        }
        // SAFETY: `ptev` is present, so `pte_page()` is the page it maps. The mmap lock keeps the
        // mapping (and thus a reference to the page) alive while it is read through a local
        // kernel mapping, which is released right after.
        let byte = unsafe {
            let va = bindings::kmap_local_page(bindings::pte_page(ptev));
            let b = va.cast::<u8>().read_volatile();
            bindings::kunmap_local(va);
            b
        };
        Found::Present {
            // SAFETY: The predicates only look at the value passed to them.
            write: unsafe { bindings::pte_write(ptev) },
            // SAFETY: As above.
            dirty: unsafe { bindings::pte_dirty(ptev) },
            // SAFETY: As above.
            pfn: unsafe { bindings::pte_pfn(ptev) },
            byte,
        }
    }

    /// The byte written to page `i`: distinct for every page, never zero.
    fn pattern(i: usize) -> u8 {
        0x40 + i as u8
    }

    #[test]
    fn rust_walk_finds_faulted_ptes() -> Result {
        // SAFETY: Called from a KUnit test case, so the current test is valid.
        let test = unsafe { bindings::kunit_get_current_test() };
        let len = NR_PAGES * PAGE_SIZE;
        // SAFETY: `test` is the running test; the mapping lives as long as the test.
        let addr = unsafe {
            bindings::kunit_vm_mmap(
                test,
                ptr::null_mut(),
                0,
                len,
                (PROT_READ | PROT_WRITE) as usize,
                (MAP_ANONYMOUS | MAP_PRIVATE) as usize,
                0,
            )
        } as usize;
        assert!(addr != 0);

        // Fault in every other page by writing to it.
        for i in (0..NR_PAGES).step_by(2) {
            let at = UserPtr::from_addr(addr + i * PAGE_SIZE);
            UserSlice::new(at, 1).writer().write_slice(&[pattern(i)])?;
        }

        let current = kernel::current!();
        assert!(current.mm().is_some());
        let Some(mm) = current.mm() else {
            return Err(EINVAL);
        };
        let mut found = KVec::with_capacity(NR_PAGES, GFP_KERNEL)?;
        {
            let lock = mm.mmap_read_lock();
            assert!(lock.vma_lookup(addr).is_some());
            for i in 0..NR_PAGES {
                found.push(walk(mm, &lock, addr + i * PAGE_SIZE), GFP_KERNEL)?;
            }
        }

        for (i, f) in found.iter().enumerate() {
            if i % 2 == 1 {
                assert_eq!(*f, Found::None);
                continue;
            }
            assert!(matches!(*f, Found::Present { .. }));
            let Found::Present {
                write,
                dirty,
                pfn,
                byte,
            } = *f
            else {
                continue;
            };
            assert!(write);
            assert!(dirty);
            assert_eq!(byte, pattern(i));
            // Every written page is a page of its own.
            for g in &found[..i] {
                if let Found::Present { pfn: other, .. } = *g {
                    assert!(other != pfn);
                }
            }
        }
        Ok(())
    }
}
