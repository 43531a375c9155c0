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

#[kunit_tests(mprotect_rs_walkers)]
mod tests {
    use core::{
        ffi::c_void,
        ops::Deref,
        ptr,
        sync::atomic::{AtomicUsize, Ordering},
    };
    use kernel::{
        bindings,
        ffi::{c_int, c_long, c_ulong},
        mm::{
            pgtable::{InvalidateEvent, InvalidateRange},
            virt::VmaRef,
        },
        page::{PAGE_SHIFT, PAGE_SIZE},
        prelude::*,
        str::CString,
        uaccess::{UserPtr, UserSlice},
        uapi::{
            MADV_GUARD_INSTALL, MADV_HUGEPAGE, MADV_MERGEABLE, MADV_NOHUGEPAGE, MADV_PAGEOUT,
            MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED, PROT_NONE,
            PROT_READ, PROT_WRITE,
        },
    };

    const PMD_SIZE: usize = 1 << bindings::PMD_SHIFT;
    const PUD_SIZE: usize = 1 << bindings::PUD_SHIFT;
    const P4D_SHIFT: u32 = 39;
    const WALKERS: [&CStr; 2] = [c"c", c"rust"];
    const TRY_CHANGE_WRITABLE: c_ulong = bindings::MM_CP_TRY_CHANGE_WRITABLE as c_ulong;
    const PROT_NUMA: c_ulong = bindings::MM_CP_PROT_NUMA as c_ulong;
    const UFFD_WP: c_ulong = bindings::MM_CP_UFFD_WP as c_ulong;
    const UFFD_WP_RESOLVE: c_ulong = bindings::MM_CP_UFFD_WP_RESOLVE as c_ulong;
    const UFFD_RWP: c_ulong = bindings::MM_CP_UFFD_RWP as c_ulong;
    const UFFD_RWP_RESOLVE: c_ulong = bindings::MM_CP_UFFD_RWP_RESOLVE as c_ulong;

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
            /// The userfaultfd bit (uffd-wp, or uffd-rwp on a `VM_UFFD_RWP` VMA).
            uffd: bool,
        },
        /// A non-present, non-none PTE: a marker (which kind) or a swap-type entry.
        Leaf {
            marker: bool,
            guard: bool,
            migration_write: bool,
            /// A device-private entry, and whether it is writable.
            device: bool,
            device_write: bool,
            uffd: bool,
        },
        /// Part of a huge PMD.
        Pmd { write: bool },
        /// Part of a huge PUD.
        Pud { write: bool, present: bool },
        /// Part of a hugetlb page.
        Hugetlb { write: bool, present: bool },
    }

    /// One MMU notifier invalidation of the mprotect kind (`MMU_NOTIFY_PROTECTION_VMA`).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Inval {
        Start { start: usize, end: usize },
        End { start: usize, end: usize },
    }

    /// What one run of a scenario saw.
    #[derive(Default)]
    struct Run {
        /// The mapping of every page, after each step that records one.
        trace: KVec<KVec<Entry>>,
        /// For the same steps and pages, every flag the snapshot read and what became of the
        /// page the entry maps ([`Snapshot::details`]).
        details: KVec<KVVec<u32>>,
        /// The last snapshot recorded, for the page verdicts of the next one.
        last: Option<Snapshot>,
        /// Results of `change_protection()` and `mprotect()` calls, and digests.
        counts: KVec<c_long>,
        /// The first invalidations seen during the run, relative to the base address that the
        /// scenario set with [`Recording::set_base`].
        invals: KVec<Inval>,
        /// The number of invalidations, and a digest of all of them.
        inval_total: usize,
        inval_digest: u64,
        /// Addresses the scenario notes for its own checks (not compared between walkers).
        marks: KVec<usize>,
    }

    impl Run {
        fn count(&mut self, value: c_long) -> Result {
            self.counts.push(value, GFP_KERNEL)?;
            Ok(())
        }

        /// Records a snapshot, with the page verdicts against the last one recorded.
        fn record(&mut self, mut snap: Snapshot) -> Result {
            let details = snap.details(self.last.as_ref())?;
            self.details.push(details, GFP_KERNEL)?;
            let entries = core::mem::take(&mut snap.entries);
            self.trace.push(entries, GFP_KERNEL)?;
            self.last = Some(snap);
            Ok(())
        }

        fn mark(&mut self, addr: usize) -> Result {
            self.marks.push(addr, GFP_KERNEL)?;
            Ok(())
        }
    }

    /// FNV-1a over a sequence of words.
    fn fnv(mut h: u64, words: &[u64]) -> u64 {
        for w in words {
            for b in w.to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        h
    }

    const FNV_SEED: u64 = 0xcbf2_9ce4_8422_2325;

    /// A digest of a snapshot (every flag of every page, not the PFNs), for runs too long to
    /// keep every snapshot.
    fn digest(snap: &Snapshot) -> c_long {
        let mut h = FNV_SEED;
        for raw in snap.raw.iter() {
            h = fnv(h, &[raw & SNAP_FLAGS]);
        }
        h as c_long
    }

    const MAX_INVALS: usize = 64;

    /// An `mmu_notifier` that records the mprotect invalidations of the test's mm.
    ///
    /// Callbacks can come from other tasks too (khugepaged, reclaim), so slots are claimed with
    /// an atomic counter and only read after `mmu_notifier_unregister()`, which waits for all
    /// callbacks to finish. Other kinds of invalidation are not recorded.
    ///
    /// Addresses are recorded relative to `base`, so that runs whose mappings landed at
    /// different addresses compare equal. Beyond [`MAX_INVALS`], only the count and the digest
    /// of the relative ranges are kept (the digest is order-sensitive and only updated from the
    /// test's own task, which is the one that walks).
    #[repr(C)]
    struct Recorder {
        mn: bindings::mmu_notifier,
        base: AtomicUsize,
        next: AtomicUsize,
        digest: AtomicUsize,
        slots: [[AtomicUsize; 3]; MAX_INVALS],
    }

    impl Recorder {
        fn push(&self, kind: usize, range: &bindings::mmu_notifier_range) {
            if range.event != bindings::mmu_notifier_event_MMU_NOTIFY_PROTECTION_VMA {
                return;
            }
            let base = self.base.load(Ordering::Relaxed);
            let (start, end) = (range.start.wrapping_sub(base), range.end.wrapping_sub(base));
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let d = self.digest.load(Ordering::Relaxed) as u64;
            let d = fnv(
                if i == 0 { FNV_SEED } else { d },
                &[kind as u64, start as u64, end as u64],
            );
            self.digest.store(d as usize, Ordering::Relaxed);
            if let Some(slot) = self.slots.get(i) {
                slot[0].store(kind, Ordering::Relaxed);
                slot[1].store(start, Ordering::Relaxed);
                slot[2].store(end, Ordering::Relaxed);
            }
        }
    }

    /// # Safety
    ///
    /// Called by the MMU notifier core with `mn` registered by [`Recording::start`] (the first
    /// field of a live [`Recorder`]) and a valid `range`.
    unsafe extern "C" fn rec_start(
        mn: *mut bindings::mmu_notifier,
        range: *const bindings::mmu_notifier_range,
    ) -> c_int {
        // SAFETY: See the function's safety requirements; `Recorder` is `repr(C)` with `mn`
        // first, and its other fields are atomics.
        let (rec, range) = unsafe { (&*mn.cast::<Recorder>(), &*range) };
        rec.push(0, range);
        0
    }

    /// # Safety
    ///
    /// As for [`rec_start`].
    unsafe extern "C" fn rec_end(
        mn: *mut bindings::mmu_notifier,
        range: *const bindings::mmu_notifier_range,
    ) {
        // SAFETY: As in `rec_start()`.
        let (rec, range) = unsafe { (&*mn.cast::<Recorder>(), &*range) };
        rec.push(1, range);
    }

    static RECORDER_OPS: bindings::mmu_notifier_ops = bindings::mmu_notifier_ops {
        invalidate_range_start: Some(rec_start),
        invalidate_range_end: Some(rec_end),
        // SAFETY: All-zero is a valid `mmu_notifier_ops`: every other callback is `None`.
        ..unsafe { core::mem::zeroed() }
    };

    /// A [`Recorder`] registered on the current mm until [`Recording::finish`].
    struct Recording {
        rec: KBox<Recorder>,
        mm: *mut bindings::mm_struct,
    }

    impl Recording {
        fn start() -> Result<Self> {
            // SAFETY: Called from a KUnit test: attaches a KUnit-owned mm to the current task
            // if it has none.
            kernel::error::to_result(unsafe { bindings::kunit_attach_mm() })?;
            let current = kernel::current!();
            let mm = current.mm().ok_or(EINVAL)?.as_raw();
            let mut rec = KBox::new(
                Recorder {
                    // SAFETY: All-zero is the initial state `mmu_notifier_register()` expects,
                    // apart from `ops`, set below.
                    mn: unsafe { core::mem::zeroed() },
                    base: AtomicUsize::new(0),
                    next: AtomicUsize::new(0),
                    digest: AtomicUsize::new(0),
                    slots: [const { [const { AtomicUsize::new(0) }; 3] }; MAX_INVALS],
                },
                GFP_KERNEL,
            )?;
            rec.mn.ops = &RECORDER_OPS;
            // SAFETY: `rec` is boxed, so `mn` stays in place until `finish()` unregisters it;
            // `mm` is the current task's live mm.
            kernel::error::to_result(unsafe { bindings::mmu_notifier_register(&mut rec.mn, mm) })?;
            Ok(Recording { rec, mm })
        }

        /// Records the following invalidations relative to `base`.
        fn set_base(&self, base: usize) {
            self.rec.base.store(base, Ordering::Relaxed);
        }

        /// Unregisters the notifier and stores what it recorded in `run`.
        fn finish(mut self, run: &mut Run) -> Result {
            // SAFETY: Registered on `mm` in `start()`; after this no callback runs any more.
            unsafe { bindings::mmu_notifier_unregister(&mut self.rec.mn, self.mm) };
            let total = self.rec.next.load(Ordering::Relaxed);
            run.inval_total = total;
            run.inval_digest = self.rec.digest.load(Ordering::Relaxed) as u64;
            let n = total.min(MAX_INVALS);
            let mut out = KVec::with_capacity(n, GFP_KERNEL)?;
            for slot in &self.rec.slots[..n] {
                let start = slot[1].load(Ordering::Relaxed);
                let end = slot[2].load(Ordering::Relaxed);
                let inval = if slot[0].load(Ordering::Relaxed) == 0 {
                    Inval::Start { start, end }
                } else {
                    Inval::End { start, end }
                };
                out.push(inval, GFP_KERNEL)?;
            }
            run.invals = out;
            Ok(())
        }
    }

    /// The flags of a `mprotect_snapshot_for_kunit()` entry, without its PFN.
    const SNAP_FLAGS: u64 = (1 << bindings::MPROTECT_SNAP_PFN_SHIFT) - 1;

    /// What became of the page an entry maps, against the snapshot before it: bits of
    /// [`Snapshot::details`] above the entry's flags.
    const PAGE_SAME: u32 = 1 << bindings::MPROTECT_SNAP_PFN_SHIFT;
    const PAGE_OTHER: u32 = PAGE_SAME << 1;
    const PAGE_NEW: u32 = PAGE_SAME << 2;

    /// How each page of a range was mapped, read by `mprotect_snapshot_for_kunit()` (the
    /// kernel's `walk_page_range()`, not the code under test).
    ///
    /// Dereferences to the [`Entry`] of each page, which the scenarios check; the raw entries
    /// hold every flag the snapshot reads (soft-dirty, the bits of huge entries) and the PFN.
    struct Snapshot {
        start: usize,
        entries: KVec<Entry>,
        raw: KVVec<u64>,
    }

    impl Deref for Snapshot {
        type Target = [Entry];

        fn deref(&self) -> &[Entry] {
            &self.entries
        }
    }

    impl Snapshot {
        /// The flags of each page, and what became of the page it maps since `before`, if
        /// that is a snapshot of the same range (else no verdicts): the same page, another
        /// one, or one where there was none. Each walker's run faults in pages of its own, so
        /// PFNs differ between the runs, but these verdicts must not.
        fn details(&self, before: Option<&Snapshot>) -> Result<KVVec<u32>> {
            let before = before.filter(|b| b.start == self.start && b.raw.len() == self.raw.len());
            let mut out = KVVec::with_capacity(self.raw.len(), GFP_KERNEL)?;
            for (i, &raw) in self.raw.iter().enumerate() {
                let pfn = raw >> bindings::MPROTECT_SNAP_PFN_SHIFT;
                let old = before.map_or(0, |b| b.raw[i] >> bindings::MPROTECT_SNAP_PFN_SHIFT);
                let verdict = match (before, pfn, old) {
                    (None, _, _) | (_, 0, _) => 0,
                    (Some(_), _, 0) => PAGE_NEW,
                    (Some(_), p, o) if p == o => PAGE_SAME,
                    _ => PAGE_OTHER,
                };
                out.push((raw & SNAP_FLAGS) as u32 | verdict, GFP_KERNEL)?;
            }
            Ok(out)
        }

        /// The PFN of page `i` (0 if none, or if `i` is outside the snapshot).
        fn pfn(&self, i: usize) -> u64 {
            self.raw
                .get(i)
                .map_or(0, |r| r >> bindings::MPROTECT_SNAP_PFN_SHIFT)
        }

        /// Whether page `i` has the soft-dirty bit (false outside the snapshot).
        fn soft_dirty(&self, i: usize) -> bool {
            self.raw
                .get(i)
                .is_some_and(|r| r & u64::from(bindings::MPROTECT_SNAP_SOFT_DIRTY) != 0)
        }
    }

    /// The [`Entry`] of a `mprotect_snapshot_for_kunit()` entry.
    fn entry(raw: u64) -> Entry {
        let has = |flag: u32| raw & u64::from(flag) != 0;
        let write = has(bindings::MPROTECT_SNAP_WRITE);
        let present = has(bindings::MPROTECT_SNAP_PRESENT);
        match (raw & u64::from(bindings::MPROTECT_SNAP_KIND)) as u32 {
            bindings::MPROTECT_SNAP_PTE => Entry::Pte {
                write,
                dirty: has(bindings::MPROTECT_SNAP_DIRTY),
                protnone: has(bindings::MPROTECT_SNAP_PROTNONE),
                uffd: has(bindings::MPROTECT_SNAP_UFFD),
            },
            bindings::MPROTECT_SNAP_LEAF => {
                let device = has(bindings::MPROTECT_SNAP_DEVICE);
                Entry::Leaf {
                    marker: has(bindings::MPROTECT_SNAP_MARKER),
                    guard: has(bindings::MPROTECT_SNAP_GUARD),
                    migration_write: has(bindings::MPROTECT_SNAP_MIGRATION) && write,
                    device,
                    device_write: device && write,
                    uffd: has(bindings::MPROTECT_SNAP_UFFD),
                }
            }
            bindings::MPROTECT_SNAP_PMD => Entry::Pmd { write },
            bindings::MPROTECT_SNAP_PUD => Entry::Pud { write, present },
            bindings::MPROTECT_SNAP_HUGETLB => Entry::Hugetlb { write, present },
            _ => Entry::None,
        }
    }

    /// Records how each page of `[addr, end)` of the current mm is mapped.
    fn snapshot(addr: usize, end: usize) -> Result<Snapshot> {
        let n = end.checked_sub(addr).ok_or(EINVAL)? >> PAGE_SHIFT;
        let mut raw = KVVec::with_capacity(n, GFP_KERNEL)?;
        raw.resize(n, 0, GFP_KERNEL)?;
        // SAFETY: `raw` has room for one entry per page of the range; the function takes the
        // current mm's mmap lock itself.
        kernel::error::to_result(unsafe {
            bindings::mprotect_snapshot_for_kunit(addr, end, raw.as_mut_ptr())
        })?;
        let mut entries = KVec::with_capacity(n, GFP_KERNEL)?;
        for &r in raw.iter() {
            entries.push(entry(r), GFP_KERNEL)?;
        }
        Ok(Snapshot {
            start: addr,
            entries,
            raw,
        })
    }

    /// The walker `change_protection()` uses now.
    fn walker_name() -> &'static CStr {
        // SAFETY: `mprotect_walker_name()` returns a static NUL-terminated string.
        unsafe { CStr::from_char_ptr(bindings::mprotect_walker_name()) }
    }

    fn select(walker: &CStr) -> Result {
        // SAFETY: `walker` is a NUL-terminated string.
        kernel::error::to_result(unsafe { bindings::mprotect_walker_select(walker.as_char_ptr()) })
    }

    /// Maps private anonymous memory in the current (KUnit-owned) mm; unmapped by [`unmap`] or
    /// when the test ends.
    fn mmap(len: usize, flags: u32) -> Result<usize> {
        map(len, MAP_PRIVATE | flags)
    }

    /// Maps shared anonymous memory (shmem: a file mapping, not `vma_is_anonymous()`).
    fn mmap_shared(len: usize, flags: u32) -> Result<usize> {
        map(len, MAP_SHARED | flags)
    }

    /// Maps private anonymous memory for 4K pages only (`MADV_NOHUGEPAGE`), the start of most
    /// scenarios, and records the run's invalidations relative to it.
    fn map_4k(rec: &Recording, len: usize, flags: u32) -> Result<usize> {
        let addr = mmap(len, flags)?;
        rec.set_base(addr);
        madvise(addr, len, MADV_NOHUGEPAGE)?;
        Ok(addr)
    }

    fn map(len: usize, flags: u32) -> Result<usize> {
        match kunit_mmap(0, len, flags)? {
            0 => Err(ENOMEM),
            addr => Ok(addr),
        }
    }

    /// Maps anonymous memory at `addr` exactly, where nothing is mapped
    /// (`MAP_FIXED_NOREPLACE`); `flags` has `MAP_PRIVATE` or `MAP_SHARED`. At address 0 success
    /// and failure look alike (see [`kunit_mmap`]), so the caller checks by touching the memory.
    fn map_at(addr: usize, len: usize, flags: u32) -> Result {
        if kunit_mmap(addr, len, MAP_FIXED_NOREPLACE | flags)? != addr {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// `kunit_vm_mmap()` of anonymous read-write memory: the address, or 0 if the mapping was
    /// refused or was made at address 0 (`kunit_vm_mmap()` takes a 0 from `vm_mmap()` for a
    /// failure), or the error `vm_mmap()` returned (which `kunit_vm_mmap()` passes on as an
    /// address).
    fn kunit_mmap(addr: usize, len: usize, flags: u32) -> Result<usize> {
        // SAFETY: Called from a KUnit test case, so the current test is valid.
        let test = unsafe { bindings::kunit_get_current_test() };
        // SAFETY: `test` is the running test; the mapping lives at most as long as the test.
        let ret = unsafe {
            bindings::kunit_vm_mmap(
                test,
                ptr::null_mut(),
                addr,
                len,
                (PROT_READ | PROT_WRITE) as usize,
                (MAP_ANONYMOUS | flags) as usize,
                0,
            )
        };
        if ret > usize::MAX - bindings::MAX_ERRNO as usize {
            return Err(Error::from_errno(ret as c_int));
        }
        Ok(ret)
    }

    /// Whether the KUnit mm has the 57-bit address space of 5-level paging.
    fn five_level_paging() -> Result<bool> {
        // SAFETY: Called from a KUnit test: attaches a KUnit-owned mm to the current task if it
        // has none (the scenarios' mm, which `Recording::start()` attaches too).
        kernel::error::to_result(unsafe { bindings::kunit_attach_mm() })?;
        let current = kernel::current!();
        let mm = current.mm().ok_or(EINVAL)?.as_raw();
        // SAFETY: `mm` is the current task's live mm; `task_size` is set when it is made.
        Ok(unsafe { (*mm).__bindgen_anon_1.task_size } > 1 << 47)
    }

    /// Sets `VM_UFFD_WP` / `VM_UFFD_RWP` on the VMA at `addr` (`MPROTECT_KUNIT_*` bits), as a
    /// userfaultfd registration would, or clears them (`0`). There is no userfaultfd context:
    /// the scenarios must not touch pages while they are protected.
    fn vma_modes(addr: usize, modes: u32) -> Result {
        // SAFETY: Operates on the current mm, under its own locking.
        kernel::error::to_result(unsafe { bindings::mprotect_vma_modes_for_kunit(addr, modes) })
    }

    /// While alive, the page-table allocation `real` fails in this test's task (a KUnit static
    /// stub, `KUNIT_STATIC_STUB_REDIRECT()` in `__pte_alloc()`, `__pmd_alloc()`, `__pud_alloc()`
    /// and `__p4d_alloc()`).
    struct FailAlloc(*mut c_void);

    /// The type of `__pte_alloc()`.
    type PteAlloc = unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::pmd_t) -> c_int;
    /// The type of `__pmd_alloc()`.
    type PmdAlloc =
        unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::pud_t, c_ulong) -> c_int;
    /// The type of `__pud_alloc()`.
    type PudAlloc =
        unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::p4d_t, c_ulong) -> c_int;
    /// The type of `__p4d_alloc()`.
    type P4dAlloc =
        unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::pgd_t, c_ulong) -> c_int;

    extern "C" fn no_pte_table(_: *mut bindings::mm_struct, _: *mut bindings::pmd_t) -> c_int {
        ENOMEM.to_errno()
    }

    extern "C" fn no_pmd_table(
        _: *mut bindings::mm_struct,
        _: *mut bindings::pud_t,
        _: c_ulong,
    ) -> c_int {
        ENOMEM.to_errno()
    }

    extern "C" fn no_pud_table(
        _: *mut bindings::mm_struct,
        _: *mut bindings::p4d_t,
        _: c_ulong,
    ) -> c_int {
        ENOMEM.to_errno()
    }

    extern "C" fn no_p4d_table(
        _: *mut bindings::mm_struct,
        _: *mut bindings::pgd_t,
        _: c_ulong,
    ) -> c_int {
        ENOMEM.to_errno()
    }

    impl FailAlloc {
        fn pte() -> Self {
            let (real, stub): (PteAlloc, PteAlloc) = (bindings::__pte_alloc, no_pte_table);
            Self::activate(real as *mut c_void, stub as *mut c_void)
        }

        fn pmd() -> Self {
            let (real, stub): (PmdAlloc, PmdAlloc) = (bindings::__pmd_alloc, no_pmd_table);
            Self::activate(real as *mut c_void, stub as *mut c_void)
        }

        fn pud() -> Self {
            let (real, stub): (PudAlloc, PudAlloc) = (bindings::__pud_alloc, no_pud_table);
            Self::activate(real as *mut c_void, stub as *mut c_void)
        }

        fn p4d() -> Self {
            let (real, stub): (P4dAlloc, P4dAlloc) = (bindings::__p4d_alloc, no_p4d_table);
            Self::activate(real as *mut c_void, stub as *mut c_void)
        }

        fn activate(real: *mut c_void, stub: *mut c_void) -> Self {
            // SAFETY: Called from a KUnit test case, so the current test is valid; `real` and
            // `stub` are functions of the same type, as the callers' type annotations check.
            unsafe {
                bindings::__kunit_activate_static_stub(
                    bindings::kunit_get_current_test(),
                    real,
                    stub,
                )
            };
            FailAlloc(real)
        }
    }

    impl Drop for FailAlloc {
        fn drop(&mut self) {
            // SAFETY: As in `activate()`; the test is still running.
            unsafe {
                bindings::kunit_deactivate_static_stub(bindings::kunit_get_current_test(), self.0)
            };
        }
    }

    fn unmap(addr: usize, len: usize) -> Result {
        // SAFETY: Unmaps part of the current mm, under its own locking.
        kernel::error::to_result(unsafe { bindings::vm_munmap(addr, len) })
    }

    fn madvise(addr: usize, len: usize, advice: u32) -> Result {
        let current = kernel::current!();
        let mm = current.mm().ok_or(EINVAL)?.as_raw();
        // SAFETY: `mm` is the current task's mm.
        kernel::error::to_result(unsafe { bindings::do_madvise(mm, addr, len, advice as c_int) })
    }

    fn touch(addr: usize, byte: u8) -> Result {
        UserSlice::new(UserPtr::from_addr(addr), 1)
            .writer()
            .write_slice(&[byte])
    }

    fn peek(addr: usize) -> Result<u8> {
        let mut b = [0u8];
        UserSlice::new(UserPtr::from_addr(addr), 1)
            .reader()
            .read_slice(&mut b)?;
        Ok(b[0])
    }

    fn mprotect(addr: usize, len: usize, prot: u32) -> c_long {
        // SAFETY: Operates on the current mm, under its own locking.
        (unsafe { bindings::mprotect_for_kunit(addr, len, prot as usize) }) as c_long
    }

    fn change(addr: usize, end: usize, cp_flags: c_ulong) -> c_long {
        // SAFETY: Operates on the current mm, under its own locking.
        unsafe { bindings::change_protection_for_kunit(addr, end, cp_flags) }
    }

    fn count_entry(v: &[Entry], f: impl Fn(&Entry) -> bool) -> usize {
        v.iter().filter(|e| f(e)).count()
    }

    /// The runs of [`under_each_walker`], the C walker's first; [`RUNNING`] names the walker
    /// while its run is under way.
    fn run_each_walker(scenario: &impl Fn(&mut Run, &Recording) -> Result) -> Result<KVec<Run>> {
        let mut runs: KVec<Run> = KVec::new();
        for (i, walker) in WALKERS.iter().enumerate() {
            select(walker)?;
            RUNNING.store(i + 1, Ordering::Relaxed);
            let recording = Recording::start()?;
            let mut run = Run::default();
            let ret = scenario(&mut run, &recording);
            recording.finish(&mut run)?;
            runs.push(run, GFP_KERNEL)?;
            if let Err(e) = ret {
                RUNNING.store(0, Ordering::Relaxed);
                diag(fmt!(
                    "    # the scenario failed under the {walker:?} walker: {e:?}\n"
                ));
                return Err(e);
            }
        }
        RUNNING.store(0, Ordering::Relaxed);
        Ok(runs)
    }

    /// Keeps the test on CPU 0 until dropped, so that both walkers see the same world (see
    /// [`under_each_walker`]).
    struct OnCpu0;

    impl OnCpu0 {
        fn pin() -> Result<Self> {
            // SAFETY: All-zero is an empty cpumask.
            let mut mask: bindings::cpumask = unsafe { core::mem::zeroed() };
            mask.bits[0] = 1;
            let current = kernel::current!();
            // SAFETY: `current` is a live task and `mask` a valid cpumask, which the call copies.
            kernel::error::to_result(unsafe {
                bindings::set_cpus_allowed_ptr(current.as_ptr(), &mask)
            })?;
            Ok(OnCpu0)
        }
    }

    impl Drop for OnCpu0 {
        fn drop(&mut self) {
            let current = kernel::current!();
            // SAFETY: As in `pin()`; `__cpu_possible_mask` is a valid, static cpumask. A failure
            // leaves the test on CPU 0, which is harmless.
            let _ = unsafe {
                bindings::set_cpus_allowed_ptr(
                    current.as_ptr(),
                    core::ptr::addr_of!(bindings::__cpu_possible_mask),
                )
            };
        }
    }

    /// The walker a scenario runs under while it runs (its index in [`WALKERS`], plus one), and
    /// the walker to select again afterwards (its index).
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static CHOSEN: AtomicUsize = AtomicUsize::new(0);

    /// A KUnit action of [`under_each_walker`]: released (run and removed) when the scenario
    /// returns, and run when the test ends if a failed assertion ended the test's thread in
    /// the middle of a scenario. Then it names the walker the scenario stopped under; either
    /// way it selects the boot choice of walker again.
    ///
    /// # Safety
    ///
    /// `test` is the test that added the action; KUnit runs or releases its actions while the
    /// test is alive.
    unsafe extern "C" fn end_of_scenarios(test: *mut c_void) {
        let running = RUNNING.swap(0, Ordering::Relaxed);
        if let Some(walker) = running.checked_sub(1).and_then(|i| WALKERS.get(i)) {
            let msg = fmt!("    # the scenario stopped under the {walker:?} walker\n");
            kernel::kunit::info(msg);
            if let Ok(line) = CString::try_from_fmt(msg) {
                // SAFETY: By the function's safety requirements `test` is alive; the format
                // takes one NUL-terminated string.
                unsafe {
                    let log = (*test.cast::<bindings::kunit>()).log;
                    bindings::kunit_log_append(log, c"%s".as_char_ptr(), line.as_char_ptr());
                }
            }
        }
        if let Some(walker) = WALKERS.get(CHOSEN.load(Ordering::Relaxed)) {
            // Else the next test would run under the walker this one stopped under.
            let _ = select(walker);
        }
    }

    fn walker_index(walker: &CStr) -> Option<usize> {
        WALKERS.iter().position(|w| *w == walker)
    }

    /// Runs `scenario` once per walker, then fails (with a message saying where) unless both
    /// runs recorded the same entries, counts, invalidations, flags and page verdicts. Returns
    /// the Rust walker's run.
    ///
    /// The scenario checks its own expectations with the test's `assert!`s; this function is
    /// outside the test functions, so it reports a difference as an error instead. A failure
    /// says which walker it happened under, also when an assertion ends the test, and the
    /// boot choice of walker is selected again however the scenario ends.
    ///
    /// Keeps the test on CPU 0 until it returns: NUMA hinting skips folios already on the node
    /// of the CPU that walks (`folio_can_map_prot_numa()`), and NUMA hinting faults migrate
    /// towards it, so a test that moved between the two nodes' CPUs would not be repeatable.
    fn under_each_walker(scenario: impl Fn(&mut Run, &Recording) -> Result) -> Result<Run> {
        let _cpu0 = OnCpu0::pin()?;
        // Selected again afterwards: the boot choice (Kconfig or `mprotect_walker=`).
        CHOSEN.store(
            walker_index(walker_name()).ok_or(EINVAL)?,
            Ordering::Relaxed,
        );
        // SAFETY: Called from a KUnit test case, so the current test is valid while it runs.
        let test = unsafe { bindings::kunit_get_current_test() };
        if test.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `test` is the running test, which outlives its actions; the action's
        // argument is that test, as `end_of_scenarios()` requires.
        kernel::error::to_result(unsafe {
            bindings::kunit_add_action(test, Some(end_of_scenarios), test.cast())
        })?;
        let runs = run_each_walker(&scenario);
        // SAFETY: Releases the action added above, with the same function and argument: it
        // runs now, with `test` still alive, and KUnit forgets it.
        unsafe { bindings::kunit_release_action(test, Some(end_of_scenarios), test.cast()) };
        let mut runs = runs?;

        let rust = runs.pop().ok_or(EINVAL)?;
        let c = runs.pop().ok_or(EINVAL)?;
        if c.counts[..] != rust.counts[..] {
            let i = c
                .counts
                .iter()
                .zip(rust.counts.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(c.counts.len().min(rust.counts.len()));
            pr_err!(
                "counts differ at {i} of {}/{}: C {:?}, Rust {:?}\n",
                c.counts.len(),
                rust.counts.len(),
                c.counts.get(i),
                rust.counts.get(i)
            );
            return Err(EINVAL);
        }
        if c.inval_total != rust.inval_total
            || c.inval_digest != rust.inval_digest
            || c.invals[..] != rust.invals[..]
        {
            pr_err!(
                "invalidations differ: C {} {:?}, Rust {} {:?}\n",
                c.inval_total,
                &c.invals[..],
                rust.inval_total,
                &rust.invals[..]
            );
            return Err(EINVAL);
        }
        if c.trace.len() != rust.trace.len() {
            pr_err!(
                "steps differ: C {}, Rust {}\n",
                c.trace.len(),
                rust.trace.len()
            );
            return Err(EINVAL);
        }
        for (step, (ct, rt)) in c.trace.iter().zip(rust.trace.iter()).enumerate() {
            if ct.len() != rt.len() {
                pr_err!("step {step}: C saw {} pages, Rust {}\n", ct.len(), rt.len());
                return Err(EINVAL);
            }
            for (page, (ce, re)) in ct.iter().zip(rt.iter()).enumerate() {
                if ce != re {
                    pr_err!("step {step}, page {page}: C {ce:?}, Rust {re:?}\n");
                    return Err(EINVAL);
                }
            }
            // Every flag, and what became of each mapped page (same, other, new).
            let (cd, rd) = (&c.details[step], &rust.details[step]);
            if let Some(page) = cd.iter().zip(rd.iter()).position(|(a, b)| a != b) {
                pr_err!(
                    "step {step}, page {page}: C flags and page {:#x}, Rust {:#x} ({:?})\n",
                    cd[page],
                    rd[page],
                    ct[page]
                );
                return Err(EINVAL);
            }
        }
        Ok(rust)
    }

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
        Ok(())
    }

    /// A PMD-mapped THP: fully covered (change_huge_pmd()), then a one-page change that makes
    /// the walker split it and continue at the PTE level, then the whole PTE-mapped large folio
    /// again (batched).
    #[test]
    fn thp_pmd_full_split_batch() -> Result {
        under_each_walker(|run, rec| {
            let len = 2 * PMD_SIZE;
            let map = mmap(len, 0)?;
            rec.set_base(map);
            madvise(map, len, MADV_HUGEPAGE)?;
            let addr = (map + PMD_SIZE - 1) & !(PMD_SIZE - 1);
            let end = addr + PMD_SIZE;
            touch(addr, 1)?;
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

    fn is_marker(e: &Entry) -> bool {
        matches!(
            e,
            Entry::Leaf {
                marker: true,
                guard: false,
                ..
            }
        )
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
            let map = mmap(2 * NR * PAGE_SIZE, 0)?;
            let addr = (map + NR * PAGE_SIZE - 1) & !(NR * PAGE_SIZE - 1);
            let end = addr + NR * PAGE_SIZE;
            rec.set_base(addr);
            madvise(addr, NR * PAGE_SIZE, MADV_HUGEPAGE)?;
            for i in 0..NR {
                touch(addr + i * PAGE_SIZE, i as u8)?;
            }
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
    /// once the child has released it again (`CLONE_VFORK`): the parent's private anonymous
    /// pages are then no longer exclusive and their PTEs are write-protected.
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

    /// A small xorshift generator, so a failing case can be replayed from its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The number of random cases and the seed: `mprotect_rs.random_cases=` and
    /// `mprotect_rs.seed=` on the kernel command line, else 2000 and a fixed seed.
    fn random_params() -> (usize, u64) {
        let mut cases = 2000;
        let mut seed = 0x6d70_726f_7465_6374;
        // SAFETY: `saved_command_line` is set up before initcalls and never freed.
        let cmdline = unsafe { CStr::from_char_ptr(bindings::saved_command_line) };
        for word in cmdline.to_bytes().split(|b| *b == b' ') {
            let parse = |prefix: &[u8]| -> Option<u64> {
                let digits = word.strip_prefix(prefix)?;
                let s = core::str::from_utf8(digits).ok()?;
                s.parse::<u64>().ok()
            };
            if let Some(v) = parse(b"mprotect_rs.random_cases=") {
                cases = v as usize;
            }
            if let Some(v) = parse(b"mprotect_rs.seed=") {
                seed = v.max(1);
            }
        }
        (cases, seed)
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

    /// Prints a diagnostic line as `kunit_info()` does: to the kernel log, and to the test's
    /// log, which `/sys/kernel/debug/kunit/<suite>/results` shows.
    fn diag(args: core::fmt::Arguments<'_>) {
        kernel::kunit::info(args);
        let Ok(line) = CString::try_from_fmt(args) else {
            return;
        };
        // SAFETY: Called from a KUnit test case, so the current test is valid; the format
        // takes one NUL-terminated string.
        unsafe {
            let test = bindings::kunit_get_current_test();
            bindings::kunit_log_append((*test).log, c"%s".as_char_ptr(), line.as_char_ptr());
        }
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
        pin_init::stack_pin_init!(let range = InvalidateRange::new(vma, event));
        range.as_mut().start(addr, addr + PAGE_SIZE);
        range.as_mut().start(addr + PAGE_SIZE, addr + 2 * PAGE_SIZE);
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
            pin_init::stack_pin_init!(let unstarted = InvalidateRange::new(vma, event));
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

    /// The KUnit suite `mprotect_rs_guest`: cases that need what only user space sets up, a
    /// 1 GiB device-DAX device with a 1 GiB alignment (its sysfs attribute) for PUD leaves, and
    /// swap; and the one that needs a device node, device-private memory from `lib/test_hmm`.
    ///
    /// So this suite runs after boot: `tests/guest/init` (`make run`) sets them up, then
    /// starts the suite through `/sys/kernel/debug/kunit/mprotect_rs_guest/run`. Run during
    /// boot, with the other suites, it skips.
    ///
    /// The suite is written out rather than made by `#[kunit_tests]`, for its `suite_init`: a
    /// case that skipped itself during boot would stay skipped on every later run (KUnit takes
    /// it for one that a filter left out), a suite that skipped as a whole does not.
    mod guest {
        use super::*;
        use core::{cell::Cell, sync::atomic::AtomicPtr};

        /// KUnit's `assert!` for this suite's cases, as `#[kunit_tests]` defines it.
        macro_rules! assert {
            ($cond:expr $(,)?) => {{
                kernel::kunit_assert!(
                    "mprotect_rs_guest",
                    c"mprotect_rs_walker_kunit.rs",
                    0,
                    $cond
                );
            }};
        }

        /// KUnit's `assert_eq!` for this suite's cases, as `#[kunit_tests]` defines it.
        macro_rules! assert_eq {
            ($left:expr, $right:expr $(,)?) => {{
                kernel::kunit_assert_eq!(
                    "mprotect_rs_guest",
                    c"mprotect_rs_walker_kunit.rs",
                    0,
                    $left,
                    $right
                );
            }};
        }

        const DEVICE: &CStr = c"/dev/dax0.0";
        const PAGES: usize = PUD_SIZE / PAGE_SIZE;
        /// The scenarios write, and read back, one byte every this many pages.
        const STRIDE: usize = 1024;

        /// Whether boot is over: during boot no user space has set the device up yet.
        fn booted() -> bool {
            // SAFETY: `system_state` is a plain enum that only moves forward; a racy read
            // sees an old or a new state, both valid.
            let state = unsafe { ptr::read_volatile(ptr::addr_of!(bindings::system_state)) };
            state == bindings::system_states_SYSTEM_RUNNING
        }

        /// The device, opened by [`suite_init`] and closed by [`suite_exit`].
        static DEVICE_FILE: AtomicPtr<bindings::file> = AtomicPtr::new(ptr::null_mut());

        /// A `lib/test_hmm` device, which moves pages to device-private memory.
        const DMIRROR: &CStr = c"/dev/hmm_dmirror0";

        /// [`DMIRROR`], opened by [`suite_init`] for its path (see [`Dmirror::open`]).
        static DMIRROR_FILE: AtomicPtr<bindings::file> = AtomicPtr::new(ptr::null_mut());

        /// The suite's `suite_init`: skips the suite during boot, else opens the device.
        ///
        /// It runs in the task that started the suite, whose root is that of user space: the
        /// cases run in kthreads, and those resolve paths from an empty root.
        ///
        /// # Safety
        ///
        /// Called by KUnit with the suite it is about to run.
        unsafe extern "C" fn suite_init(suite: *mut bindings::kunit_suite) -> c_int {
            if !booted() {
                const WHY: &[u8] = b"runs after boot, once tests/guest/init set up the device";
                // SAFETY: See the function's safety requirements; nothing else touches the
                // suite while it runs.
                let suite = unsafe { &mut *suite };
                for (d, s) in suite.status_comment.iter_mut().zip(WHY) {
                    *d = *s;
                }
                suite.status = bindings::kunit_status_KUNIT_SKIPPED;
                return 0;
            }
            let dax = match open(DEVICE) {
                Ok(file) => file,
                Err(e) => return e.to_errno(),
            };
            let dmirror = match open(DMIRROR) {
                Ok(file) => file,
                Err(e) => {
                    // SAFETY: Drops the reference that `open()` returned.
                    unsafe { bindings::fput(dax) };
                    return e.to_errno();
                }
            };
            DEVICE_FILE.store(dax, Ordering::Release);
            DMIRROR_FILE.store(dmirror, Ordering::Release);
            0
        }

        /// Opens `path` for reading and writing, in the current task.
        fn open(path: &CStr) -> Result<*mut bindings::file> {
            // SAFETY: `path` is NUL-terminated.
            let file =
                unsafe { bindings::filp_open(path.as_char_ptr(), bindings::O_RDWR as c_int, 0) };
            kernel::error::from_err_ptr(file)
                .inspect_err(|e| pr_err!("cannot open {path}: {e:?}\n"))
        }

        /// The suite's `suite_exit`: closes the devices.
        ///
        /// # Safety
        ///
        /// Called by KUnit once the suite's cases have run.
        unsafe extern "C" fn suite_exit(_: *mut bindings::kunit_suite) {
            for file in [&DEVICE_FILE, &DMIRROR_FILE] {
                let file = file.swap(ptr::null_mut(), Ordering::AcqRel);
                if !file.is_null() {
                    // SAFETY: Drops the reference that `open()` returned in `suite_init()`.
                    unsafe { bindings::fput(file) };
                }
            }
        }

        /// Defines `$run`, KUnit's entry point for the case `$case`, which fails when `$case`
        /// returns an error, as with `#[kunit_tests]`.
        macro_rules! case {
            ($run:ident, $case:ident) => {
                /// # Safety
                ///
                /// Called by KUnit, as a test case.
                unsafe extern "C" fn $run(_: *mut bindings::kunit) {
                    let ret = $case();
                    if let Err(e) = ret {
                        pr_err!("{}: {:?}\n", stringify!($case), e);
                    }
                    assert!(ret.is_ok());
                }
            };
        }

        case!(run_pud_full_partial, pud_full_partial);
        case!(run_pud_random, pud_random);
        case!(run_swap_entries, swap_entries);
        case!(run_device_private_entries, device_private_entries);
        case!(run_ksm_numa_hinting, ksm_numa_hinting);

        static mut TEST_CASES: [bindings::kunit_case; 6] = [
            kernel::kunit::kunit_case(c"pud_full_partial", run_pud_full_partial),
            kernel::kunit::kunit_case(c"pud_random", run_pud_random),
            kernel::kunit::kunit_case(c"swap_entries", run_swap_entries),
            kernel::kunit::kunit_case(c"device_private_entries", run_device_private_entries),
            kernel::kunit::kunit_case(c"ksm_numa_hinting", run_ksm_numa_hinting),
            // SAFETY: All-zero is the case that ends the array.
            unsafe { core::mem::zeroed() },
        ];

        static mut SUITE: bindings::kunit_suite = bindings::kunit_suite {
            name: {
                const NAME: &[u8] = b"mprotect_rs_guest";
                let mut name = [0; 256];
                let mut i = 0;
                while i < NAME.len() {
                    name[i] = NAME[i];
                    i += 1;
                }
                name
            },
            test_cases: ptr::addr_of_mut!(TEST_CASES).cast(),
            suite_init: Some(suite_init),
            suite_exit: Some(suite_exit),
            // SAFETY: All-zero is valid for the other fields: no callbacks, no attributes, no
            // log yet, and the status `KUNIT_SUCCESS` (0) that KUnit starts a suite with.
            ..unsafe { core::mem::zeroed() }
        };

        // KUnit runs the suites listed in this section, as `kunit_unsafe_test_suite!` does.
        #[used(compiler)]
        #[link_section = ".kunit_test_suites"]
        static mut SUITE_ENTRY: *const bindings::kunit_suite = ptr::addr_of!(SUITE);

        /// Maps the whole device (1 GiB, shared) into the current mm, 1 GiB-aligned.
        fn map_device() -> Result<usize> {
            let file = DEVICE_FILE.load(Ordering::Acquire);
            if file.is_null() {
                return Err(ENODEV);
            }
            // SAFETY: Called from a KUnit test case, so the current test is valid; `file` is
            // open until `suite_exit()`, and the mapping takes a reference of its own.
            let addr = unsafe {
                bindings::kunit_vm_mmap(
                    bindings::kunit_get_current_test(),
                    file,
                    0,
                    PUD_SIZE,
                    (PROT_READ | PROT_WRITE) as usize,
                    MAP_SHARED as usize,
                    0,
                )
            };
            if addr == 0 {
                return Err(ENOMEM);
            }
            // `vm_mmap()` returns an error as a negative errno.
            if addr > usize::MAX - bindings::MAX_ERRNO as usize {
                let e = Error::from_errno(addr as c_int);
                pr_err!("cannot map {DEVICE}: {e:?}\n");
                return Err(e);
            }
            if addr % PUD_SIZE != 0 {
                pr_err!("{DEVICE} mapped at {addr:#x}, not 1 GiB-aligned\n");
                unmap(addr, PUD_SIZE)?;
                return Err(EINVAL);
            }
            Ok(addr)
        }

        fn pattern(k: usize, salt: u8) -> u8 {
            (k as u8).wrapping_mul(13) ^ salt
        }

        /// Writes the pattern, one byte every [`STRIDE`] pages: the first write faults the
        /// PUD leaf in.
        fn fill(addr: usize, salt: u8) -> Result {
            for k in 0..PAGES / STRIDE {
                touch(addr + k * STRIDE * PAGE_SIZE, pattern(k, salt))?;
            }
            Ok(())
        }

        /// The number of pattern bytes that do not read back.
        fn bad_bytes(addr: usize, salt: u8) -> Result<usize> {
            let mut bad = 0;
            for k in 0..PAGES / STRIDE {
                bad += usize::from(peek(addr + k * STRIDE * PAGE_SIZE)? != pattern(k, salt));
            }
            Ok(bad)
        }

        fn is_pud(write: bool) -> impl Fn(&Entry) -> bool {
            move |e| {
                *e == Entry::Pud {
                    write,
                    present: true,
                }
            }
        }

        /// The whole PUD leaf read-only (change_huge_pud(); a write faults, the data stays),
        /// `PROT_NONE` (a read faults), read-write again; then a one-page change inside the
        /// leaf, which splits it (for device-DAX: unmaps it) and retries, so that the next
        /// access faults the leaf in again, data intact.
        fn pud_full_partial() -> Result {
            let salt = Cell::new(0u8);
            let rust = under_each_walker(|run, rec| {
                // Each walker writes its own pattern, so a stale one cannot pass.
                salt.set(salt.get().wrapping_add(0x5b));
                let s = salt.get();
                let addr = map_device()?;
                let end = addr + PUD_SIZE;
                rec.set_base(addr);
                fill(addr, s)?;
                let faulted = snapshot(addr, end)?;
                // The scenario needs a PUD leaf; without one it tests nothing.
                assert!(faulted.iter().all(is_pud(true)));

                assert_eq!(mprotect(addr, PUD_SIZE, PROT_READ), 0);
                let ro = snapshot(addr, end)?;
                assert!(ro.iter().all(is_pud(false)));
                assert!(touch(addr, 0).is_err());
                assert_eq!(bad_bytes(addr, s)?, 0);
                run.count(change(addr, end, 0))?;
                assert_eq!(run.counts[0], PAGES as c_long);

                assert_eq!(mprotect(addr, PUD_SIZE, PROT_NONE), 0);
                let none = snapshot(addr, end)?;
                // `PROT_NONE`: not present to `pud_present()`, and not writable.
                assert!(none.iter().all(|e| *e
                    == Entry::Pud {
                        write: false,
                        present: false
                    }));
                assert!(peek(addr).is_err());

                assert_eq!(mprotect(addr, PUD_SIZE, PROT_READ | PROT_WRITE), 0);
                let rw = snapshot(addr, end)?;
                assert!(rw.iter().all(is_pud(true)));

                run.count(change(addr + PAGE_SIZE, addr + 2 * PAGE_SIZE, 0))?;
                assert_eq!(run.counts[1], 0);
                let split = snapshot(addr, end)?;
                assert!(split.iter().all(|e| *e == Entry::None));
                assert_eq!(bad_bytes(addr, s)?, 0);
                let refaulted = snapshot(addr, end)?;
                assert!(refaulted
                    .iter()
                    .all(|e| matches!(e, Entry::Pud { present: true, .. })));

                for snap in [faulted, ro, none, rw, split, refaulted] {
                    run.count(digest(&snap))?;
                }
                unmap(addr, PUD_SIZE)
            })?;
            // Read-only, the direct change, PROT_NONE, read-write and the split: one start
            // and one end each.
            assert_eq!(rust.inval_total, 2 * 5);
            assert_eq!(
                rust.invals[8],
                Inval::Start {
                    start: PAGE_SIZE,
                    end: 2 * PAGE_SIZE
                }
            );
            Ok(())
        }

        /// Random sequences over the PUD leaf, replayed under both walkers from the printed
        /// seed: `mprotect()` of the whole device, `change_protection()` with random flags on
        /// the whole leaf, on PMD-aligned ranges or on single pages (both split it), and
        /// accesses, which fault it in again.
        fn pud_random() -> Result {
            const STEPS: usize = 64;
            let (_, seed) = random_params();
            diag(fmt!("    # pud_random: {STEPS} steps, seed {seed}\n"));
            let rust = under_each_walker(|run, rec| {
                let mut rng = Rng(seed | 1);
                let addr = map_device()?;
                let end = addr + PUD_SIZE;
                rec.set_base(addr);
                let mut prot = PROT_READ | PROT_WRITE;
                let mut leaves = 0;
                for _ in 0..STEPS {
                    match rng.below(3) {
                        0 => {
                            let p = [PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE][rng.below(3)];
                            run.count(mprotect(addr, PUD_SIZE, p))?;
                            prot = p;
                        }
                        1 => {
                            let unit = [PUD_SIZE, PMD_SIZE, PAGE_SIZE][rng.below(3)];
                            let first = rng.below(PUD_SIZE / unit);
                            let last = first + 1 + rng.below(PUD_SIZE / unit - first);
                            // NUMA hinting never scans device-DAX (not `vma_migratable()`),
                            // so only the write upgrade, as mprotect() asks for it.
                            let flags = match rng.below(2) {
                                0 if prot & PROT_WRITE != 0 => TRY_CHANGE_WRITABLE,
                                _ => 0,
                            };
                            run.count(change(addr + first * unit, addr + last * unit, flags))?;
                        }
                        _ => {
                            let at = addr + rng.below(PAGES) * PAGE_SIZE;
                            let ok = if prot & PROT_WRITE != 0 {
                                touch(at, 1).is_ok()
                            } else {
                                peek(at).is_ok()
                            };
                            assert_eq!(ok, prot != PROT_NONE);
                        }
                    }
                    let snap = snapshot(addr, end)?;
                    leaves += usize::from(matches!(snap[0], Entry::Pud { .. }));
                    run.count(digest(&snap))?;
                }
                run.mark(leaves)?;
                unmap(addr, PUD_SIZE)
            })?;
            // A sequence that never had a leaf would test nothing.
            assert!(rust.marks[0] > 0);
            Ok(())
        }

        /// Anonymous pages swapped out (`MADV_PAGEOUT`, to the swap that `tests/guest/init`
        /// set up): `mprotect()` leaves swap entries as they are and does not count them;
        /// uffd-wp sets their uffd bit and resolving clears it, each counted; swapped back in,
        /// the data is intact.
        fn swap_entries() -> Result {
            const NR: usize = 64;
            under_each_walker(|run, rec| {
                let len = NR * PAGE_SIZE;
                let addr = map_4k(rec, len, 0)?;
                let end = addr + len;
                for i in 0..NR {
                    touch(addr + i * PAGE_SIZE, 0x40 ^ i as u8)?;
                }
                madvise(addr, len, MADV_PAGEOUT)?;
                let swap = |uffd: bool| {
                    move |e: &Entry| {
                        *e == Entry::Leaf {
                            marker: false,
                            guard: false,
                            migration_write: false,
                            device: false,
                            device_write: false,
                            uffd,
                        }
                    }
                };
                let out = snapshot(addr, end)?;
                // Every page must be out, or the case tests less than it says.
                assert_eq!(count_entry(&out, swap(false)), NR);

                assert_eq!(mprotect(addr, len, PROT_READ), 0);
                let ro = snapshot(addr, end)?;
                assert_eq!(count_entry(&ro, swap(false)), NR);
                run.count(change(addr, end, 0))?;
                assert_eq!(run.counts[0], 0);

                vma_modes(addr, bindings::MPROTECT_KUNIT_UFFD_WP)?;
                run.count(change(addr, end, UFFD_WP))?;
                assert_eq!(run.counts[1], NR as c_long);
                let wp = snapshot(addr, end)?;
                assert_eq!(count_entry(&wp, swap(true)), NR);
                run.count(change(addr, end, UFFD_WP_RESOLVE))?;
                assert_eq!(run.counts[2], NR as c_long);
                let resolved = snapshot(addr, end)?;
                assert_eq!(count_entry(&resolved, swap(false)), NR);
                vma_modes(addr, 0)?;

                assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
                for i in 0..NR {
                    assert_eq!(peek(addr + i * PAGE_SIZE)?, 0x40 ^ i as u8);
                }
                let back = snapshot(addr, end)?;
                assert_eq!(count_entry(&back, |e| matches!(e, Entry::Pte { .. })), NR);

                run.record(out)?;
                run.record(ro)?;
                run.record(wp)?;
                run.record(resolved)?;
                run.record(back)?;
                unmap(addr, len)
            })?;
            Ok(())
        }

        /// A `lib/test_hmm` mirror of the current mm.
        struct Dmirror(*mut bindings::file);

        /// `HMM_DMIRROR_MIGRATE_TO_DEV` of `lib/test_hmm_uapi.h`: `_IOWR('H', 0x02, struct
        /// hmm_dmirror_cmd)`, a command of five `__u64`s.
        const HMM_DMIRROR_MIGRATE_TO_DEV: u32 = (3 << 30) | (40 << 16) | ((b'H' as u32) << 8) | 2;

        impl Dmirror {
            /// Opens the device again, from this task: the driver mirrors the mm of the task
            /// that opens it, and the cases run in kthreads that cannot look the path up.
            fn open() -> Result<Self> {
                let template = DMIRROR_FILE.load(Ordering::Acquire);
                if template.is_null() {
                    return Err(ENODEV);
                }
                // SAFETY: `template` is open until `suite_exit()`, so its path and credentials
                // are live.
                let file = unsafe {
                    bindings::dentry_open(
                        &(*template).__bindgen_anon_1.f_path,
                        bindings::O_RDWR as c_int,
                        (*template).f_cred,
                    )
                };
                Ok(Dmirror(kernel::error::from_err_ptr(file)?))
            }

            /// Moves the `npages` pages at `addr` to device-private memory and returns how many
            /// moved; `scratch` is user memory for the command and for the driver's copy of the
            /// data, `npages + 1` pages.
            fn migrate_to_device(&self, addr: usize, npages: usize, scratch: usize) -> Result<u64> {
                let cmd = [
                    addr as u64,
                    (scratch + PAGE_SIZE) as u64,
                    npages as u64,
                    0,
                    0,
                ];
                let mut bytes = [0u8; 40];
                for (chunk, word) in bytes.chunks_exact_mut(8).zip(cmd) {
                    chunk.copy_from_slice(&word.to_ne_bytes());
                }
                UserSlice::new(UserPtr::from_addr(scratch), 40)
                    .writer()
                    .write_slice(&bytes)?;
                // SAFETY: `self.0` is an open file of the test_hmm driver, which has an ioctl.
                let ioctl = unsafe { (*(*self.0).f_op).unlocked_ioctl }.ok_or(EINVAL)?;
                // SAFETY: The command reads and writes the user memory at `scratch` of the
                // current mm, which holds the command and room for the data.
                let ret = unsafe { ioctl(self.0, HMM_DMIRROR_MIGRATE_TO_DEV, scratch as c_ulong) };
                kernel::error::to_result(ret as c_int)?;
                UserSlice::new(UserPtr::from_addr(scratch), 40)
                    .reader()
                    .read_slice(&mut bytes)?;
                let mut cpages = [0u8; 8];
                cpages.copy_from_slice(&bytes[24..32]);
                Ok(u64::from_ne_bytes(cpages))
            }
        }

        impl Drop for Dmirror {
            /// Closes the mirror now. Its release evicts every device-private page of the
            /// device, also those of the next walker's run (`dmirror_fops_release()`); an
            /// `fput()` from a kthread would leave the release to a work item that could run
            /// in the middle of that run and move its pages back to system memory.
            fn drop(&mut self) {
                // SAFETY: Drops the reference that `dentry_open()` returned, which this value
                // owns. `__fput_sync()` is for kthreads, as the test cases are; the release
                // (`dmirror_fops_release()`) needs neither task work nor this task's locks,
                // and this task holds none.
                unsafe { bindings::__fput_sync(self.0) };
            }
        }

        /// Anonymous pages moved to device-private memory (`lib/test_hmm`): `mprotect()`
        /// read-only turns the writable device-private entries readable and does not count
        /// them; an access brings each page back to system memory, read-only and intact; then
        /// read-write.
        fn device_private_entries() -> Result {
            const NR: usize = 16;
            under_each_walker(|run, rec| {
                let len = NR * PAGE_SIZE;
                let addr = map_4k(rec, len, 0)?;
                let end = addr + len;
                let scratch = mmap((NR + 1) * PAGE_SIZE, 0)?;
                for i in 0..NR {
                    touch(addr + i * PAGE_SIZE, 0x20 ^ i as u8)?;
                }
                let mirror = Dmirror::open()?;
                assert_eq!(mirror.migrate_to_device(addr, NR, scratch)?, NR as u64);
                let device = |write: bool| {
                    move |e: &Entry| {
                        matches!(e, Entry::Leaf { device: true, device_write, .. }
                            if *device_write == write)
                    }
                };
                let moved = snapshot(addr, end)?;
                if count_entry(&moved, device(true)) != NR {
                    for (i, raw) in moved.raw.iter().enumerate() {
                        diag(fmt!("    # moved[{i}] = {raw:#x} ({:?})\n", moved[i]));
                    }
                }
                assert_eq!(count_entry(&moved, device(true)), NR);

                assert_eq!(mprotect(addr, len, PROT_READ), 0);
                let ro = snapshot(addr, end)?;
                assert_eq!(count_entry(&ro, device(false)), NR);
                run.count(change(addr, end, 0))?;
                assert_eq!(run.counts[0], 0);

                for i in 0..NR {
                    assert_eq!(peek(addr + i * PAGE_SIZE)?, 0x20 ^ i as u8);
                }
                let back = snapshot(addr, end)?;
                let ro_pte = |e: &Entry| matches!(e, Entry::Pte { write: false, .. });
                assert_eq!(count_entry(&back, ro_pte), NR);

                assert_eq!(mprotect(addr, len, PROT_READ | PROT_WRITE), 0);
                let rw = snapshot(addr, end)?;

                run.record(moved)?;
                run.record(ro)?;
                run.record(back)?;
                run.record(rw)?;
                drop(mirror);
                unmap(scratch, (NR + 1) * PAGE_SIZE)?;
                unmap(addr, len)
            })?;
            Ok(())
        }

        /// KSM pages and NUMA hinting: `folio_can_map_prot_numa()` never hints a KSM page.
        /// Half the pages are equal and merged by ksmd into one KSM page (`tests/guest/init`
        /// starts ksmd: `/sys/kernel/mm/ksm/run`), the other half differ; with a second user of
        /// the mm (so that node-local folios are not skipped), NUMA hinting makes only the
        /// latter `PROT_NONE`. Needs NUMA balancing on (`/proc/sys/kernel/numa_balancing`),
        /// else nothing is hinted at all.
        fn ksm_numa_hinting() -> Result {
            const NR: usize = 32;
            let equal = |i: usize| i < NR / 2;
            under_each_walker(|run, rec| {
                let len = NR * PAGE_SIZE;
                let addr = map_4k(rec, len, 0)?;
                let end = addr + len;
                for i in 0..NR {
                    touch(addr + i * PAGE_SIZE, if equal(i) { 0x77 } else { i as u8 })?;
                }
                madvise(addr, len, MADV_MERGEABLE)?;
                let mut merged = snapshot(addr, end)?;
                let mut waited = 0;
                while !(1..NR / 2).all(|i| merged.pfn(i) == merged.pfn(0)) {
                    if waited == 300 {
                        pr_err!("ksm_numa_hinting: no merge in 30 s (is ksmd running?)\n");
                        return Err(ETIMEDOUT);
                    }
                    kernel::time::delay::fsleep(kernel::time::Delta::from_millis(100));
                    waited += 1;
                    merged = snapshot(addr, end)?;
                }
                assert!((NR / 2..NR).all(|i| merged.pfn(i) != merged.pfn(0)));

                let current = kernel::current!();
                let mm = current.mm().ok_or(EINVAL)?;
                let second = mm.mmget_not_zero().ok_or(EINVAL)?;
                run.count(change(addr, end, PROT_NUMA))?;
                drop(second);
                let hinted = snapshot(addr, end)?;
                if run.counts[0] == 0 {
                    diag(fmt!(
                        "    # ksm_numa_hinting: nothing hinted (NUMA balancing off?)\n"
                    ));
                }
                assert_eq!(run.counts[0], (NR / 2) as c_long);
                for (i, e) in hinted.iter().enumerate() {
                    assert_eq!(matches!(e, Entry::Pte { protnone: true, .. }), !equal(i));
                }
                assert_eq!(peek(addr + 3 * PAGE_SIZE)?, 0x77);
                assert_eq!(peek(addr + (NR - 1) * PAGE_SIZE)?, (NR - 1) as u8);

                run.record(merged)?;
                run.record(hinted)?;
                unmap(addr, len)
            })?;
            Ok(())
        }
    }
}
