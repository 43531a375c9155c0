// SPDX-License-Identifier: GPL-2.0

//! KUnit tests comparing the Rust and the C mprotect walkers.
//!
//! Each case builds the same memory layout twice in a KUnit-owned mm, once per walker, then,
//! with that walker selected, changes its protection through `mprotect()` and through
//! `change_protection()` directly. After each step it records every page's mapping (none, a PTE,
//! a PMD or PUD leaf, with the bits that the protection change touches) and the count that
//! `change_protection()` returned. The case checks what it expects of the result, then that
//! both walkers produced the same records.

use kernel::prelude::*;

/// The prefix of this crate's `pr_*!` messages (a crate without `module!` defines its own).
const __LOG_PREFIX: &[u8] = b"mprotect_rs_walkers\0";

#[kunit_tests(mprotect_rs_walkers)]
mod tests {
    use core::ptr;
    use kernel::{
        bindings,
        ffi::{c_long, c_ulong},
        mm::pgtable::{self, Pte},
        page::{PAGE_SHIFT, PAGE_SIZE},
        prelude::*,
        uaccess::{UserPtr, UserSlice},
        uapi::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE},
    };

    const PMD_SIZE: usize = 1 << bindings::PMD_SHIFT;
    const WALKERS: [&CStr; 2] = [c"c", c"rust"];

    /// How one page is mapped.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Entry {
        /// Not mapped (none entry at some level).
        None,
        /// A present PTE.
        Pte {
            write: bool,
            dirty: bool,
            protnone: bool,
        },
        /// A non-present, non-none PTE.
        Leaf,
        /// Part of a huge PMD.
        Pmd { write: bool },
        /// Part of a huge PUD.
        Pud,
    }

    /// What one run of a scenario saw: the records of each step, and the counts.
    type Trace = KVec<KVec<Entry>>;

    fn pte_entry(pte: Pte) -> Entry {
        if pte.none() {
            Entry::None
        } else if pte.present() {
            Entry::Pte {
                write: pte.write(),
                dirty: pte.dirty(),
                protnone: pte.protnone(),
            }
        } else {
            Entry::Leaf
        }
    }

    fn push_n(out: &mut KVec<Entry>, entry: Entry, from: usize, to: usize) -> Result {
        for _ in 0..(to - from) >> PAGE_SHIFT {
            out.push(entry, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Records how each page of `[addr, end)` of the current mm is mapped.
    fn snapshot(addr: usize, end: usize) -> Result<KVec<Entry>> {
        let current = kernel::current!();
        let mm = current.mm().ok_or(EINVAL)?;
        let lock = mm.mmap_read_lock();
        let vma = lock.vma_lookup(addr).ok_or(EINVAL)?;
        let mut out = KVec::new();
        for pgd in pgtable::pgd_range(vma, addr, end).ok_or(EINVAL)? {
            let Some(p4ds) = pgd.p4ds() else {
                push_n(&mut out, Entry::None, pgd.addr(), pgd.end())?;
                continue;
            };
            for p4d in p4ds {
                let Some(puds) = p4d.puds() else {
                    push_n(&mut out, Entry::None, p4d.addr(), p4d.end())?;
                    continue;
                };
                for pud in puds {
                    let val = pud.get();
                    let Some(pmds) = pud.pmds(val) else {
                        let e = if val.none() { Entry::None } else { Entry::Pud };
                        push_n(&mut out, e, pud.addr(), pud.end())?;
                        continue;
                    };
                    for pmd in pmds {
                        let val = pmd.get();
                        if val.none() {
                            push_n(&mut out, Entry::None, pmd.addr(), pmd.end())?;
                        } else if val.is_huge() {
                            let e = Entry::Pmd { write: val.write() };
                            push_n(&mut out, e, pmd.addr(), pmd.end())?;
                        } else if let Some(ptes) = pmd.map_lock() {
                            for i in 0..ptes.len() {
                                out.push(pte_entry(ptes.get(i)), GFP_KERNEL)?;
                            }
                        } else {
                            push_n(&mut out, Entry::None, pmd.addr(), pmd.end())?;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn select(walker: &CStr) -> Result {
        // SAFETY: `walker` is a NUL-terminated string.
        kernel::error::to_result(unsafe { bindings::mprotect_walker_select(walker.as_char_ptr()) })
    }

    fn mmap(len: usize) -> Result<usize> {
        // SAFETY: Called from a KUnit test case, so the current test is valid.
        let test = unsafe { bindings::kunit_get_current_test() };
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
        };
        if addr == 0 {
            return Err(ENOMEM);
        }
        Ok(addr)
    }

    fn touch(addr: usize, byte: u8) -> Result {
        UserSlice::new(UserPtr::from_addr(addr), 1)
            .writer()
            .write_slice(&[byte])
    }

    fn mprotect(addr: usize, len: usize, prot: u32) -> Result {
        // SAFETY: Operates on the current mm, under its own locking.
        kernel::error::to_result(unsafe { bindings::mprotect_for_kunit(addr, len, prot as usize) })
    }

    fn change(addr: usize, end: usize, cp_flags: c_ulong) -> c_long {
        // SAFETY: Operates on the current mm, under its own locking.
        unsafe { bindings::change_protection_for_kunit(addr, end, cp_flags) }
    }

    fn count_entry(v: &[Entry], f: impl Fn(&Entry) -> bool) -> usize {
        v.iter().filter(|e| f(e)).count()
    }

    /// Runs `scenario` once per walker, then fails (with a message saying where) unless both
    /// runs recorded the same entries and counts.
    ///
    /// The scenario checks its own expectations with the test's `assert!`s; this function is
    /// outside the test functions, so it reports a difference as an error instead.
    fn under_each_walker(scenario: impl Fn(&mut Trace, &mut KVec<c_long>) -> Result) -> Result {
        let mut runs: KVec<(Trace, KVec<c_long>)> = KVec::new();
        for walker in WALKERS {
            select(walker)?;
            let mut trace = KVec::new();
            let mut counts = KVec::new();
            let ret = scenario(&mut trace, &mut counts);
            runs.push((trace, counts), GFP_KERNEL)?;
            if ret.is_err() {
                // Leave the default walker selected.
                select(c"rust")?;
                return ret;
            }
        }
        select(c"rust")?;

        let (c_trace, c_counts) = &runs[0];
        let (rust_trace, rust_counts) = &runs[1];
        if c_counts[..] != rust_counts[..] {
            pr_err!(
                "counts differ: C {:?}, Rust {:?}\n",
                &c_counts[..],
                &rust_counts[..]
            );
            return Err(EINVAL);
        }
        if c_trace.len() != rust_trace.len() {
            pr_err!(
                "steps differ: C {}, Rust {}\n",
                c_trace.len(),
                rust_trace.len()
            );
            return Err(EINVAL);
        }
        for (step, (c, r)) in c_trace.iter().zip(rust_trace.iter()).enumerate() {
            if c.len() != r.len() {
                pr_err!("step {step}: C saw {} pages, Rust {}\n", c.len(), r.len());
                return Err(EINVAL);
            }
            for (page, (ce, re)) in c.iter().zip(r.iter()).enumerate() {
                if ce != re {
                    pr_err!("step {step}, page {page}: C {ce:?}, Rust {re:?}\n");
                    return Err(EINVAL);
                }
            }
        }
        Ok(())
    }

    /// 4K anonymous pages, every third one faulted in: read-only, read-write (the write upgrade
    /// makes exclusive pages writable again), `PROT_NONE`, and `change_protection()` counts.
    #[test]
    fn anon_4k_sparse() -> Result {
        const NR: usize = 96;
        under_each_walker(|trace, counts| {
            let len = NR * PAGE_SIZE;
            let addr = mmap(len)?;
            for i in (0..NR).step_by(3) {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
            let faulted = NR.div_ceil(3);

            mprotect(addr, len, PROT_READ)?;
            let ro = snapshot(addr, addr + len)?;
            assert_eq!(
                count_entry(&ro, |e| matches!(e, Entry::Pte { write: false, .. })),
                faulted
            );
            assert_eq!(count_entry(&ro, |e| *e == Entry::None), NR - faulted);
            counts.push(change(addr, addr + len, 0), GFP_KERNEL)?;
            assert_eq!(counts[0], faulted as c_long);

            mprotect(addr, len, PROT_READ | PROT_WRITE)?;
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

            mprotect(addr, len, PROT_NONE)?;
            let none = snapshot(addr, addr + len)?;
            let protnone = |e: &Entry| matches!(e, Entry::Pte { protnone: true, .. });
            assert_eq!(count_entry(&none, protnone), faulted);
            counts.push(change(addr, addr + len, 0), GFP_KERNEL)?;

            trace.push(ro, GFP_KERNEL)?;
            trace.push(rw, GFP_KERNEL)?;
            trace.push(none, GFP_KERNEL)?;
            Ok(())
        })
    }

    /// A PMD-mapped THP: fully covered (change_huge_pmd()), then a one-page change that makes
    /// the walker split it and continue at the PTE level.
    #[test]
    fn thp_pmd_full_and_split() -> Result {
        under_each_walker(|trace, counts| {
            let len = 2 * PMD_SIZE;
            let map = mmap(len)?;
            let addr = (map + PMD_SIZE - 1) & !(PMD_SIZE - 1);
            let end = addr + PMD_SIZE;
            touch(addr, 1)?;
            let before = snapshot(addr, end)?;
            // The scenario needs a THP; without one it tests nothing.
            assert!(matches!(before[0], Entry::Pmd { write: true }));

            mprotect(map, len, PROT_READ)?;
            let ro = snapshot(addr, end)?;
            assert!(ro.iter().all(|e| *e == Entry::Pmd { write: false }));
            counts.push(change(addr, end, 0), GFP_KERNEL)?;
            assert_eq!(counts[0], (PMD_SIZE / PAGE_SIZE) as c_long);

            // One page in the middle: the walker splits the PMD, then changes one PTE.
            counts.push(
                change(addr + PAGE_SIZE, addr + 2 * PAGE_SIZE, 0),
                GFP_KERNEL,
            )?;
            assert_eq!(counts[1], 1);
            let split = snapshot(addr, end)?;
            assert!(split
                .iter()
                .all(|e| matches!(e, Entry::Pte { write: false, .. })));

            trace.push(before, GFP_KERNEL)?;
            trace.push(ro, GFP_KERNEL)?;
            trace.push(split, GFP_KERNEL)?;
            Ok(())
        })
    }

    /// The knob: a bad name is refused and leaves the choice as it was.
    #[test]
    fn walker_switch() -> Result {
        select(c"c")?;
        // SAFETY: Returns a static string.
        let name = unsafe { CStr::from_char_ptr(bindings::mprotect_walker_name()) };
        assert_eq!(name.to_bytes(), b"c");
        assert!(select(c"cobol").is_err());
        // SAFETY: As above.
        let name = unsafe { CStr::from_char_ptr(bindings::mprotect_walker_name()) };
        assert_eq!(name.to_bytes(), b"c");
        select(c"rust\n")?;
        // SAFETY: As above.
        let name = unsafe { CStr::from_char_ptr(bindings::mprotect_walker_name()) };
        assert_eq!(name.to_bytes(), b"rust");
        Ok(())
    }
}
