// SPDX-License-Identifier: GPL-2.0

//! The harness of the walker tests: what the scenarios record (page tables through
//! `walk_page_range()`, counts, notifier ranges, TLB gathers and flushes), how they set memory
//! up, and the comparison of the two walkers' runs ([`under_each_walker`]).

use core::{
    ffi::c_void,
    ops::Deref,
    ptr,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering},
};
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_ulong},
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    str::CString,
    types::Opaque,
    uaccess::{UserPtr, UserSlice},
    uapi::{
        MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE,
        MAP_SHARED, PROT_READ, PROT_WRITE,
    },
};

pub(crate) const PMD_SIZE: usize = 1 << bindings::PMD_SHIFT;
pub(crate) const PUD_SIZE: usize = 1 << bindings::PUD_SHIFT;
pub(crate) const P4D_SHIFT: u32 = 39;
pub(crate) const WALKERS: [&CStr; 2] = [c"c", c"rust"];
pub(crate) const TRY_CHANGE_WRITABLE: c_ulong = bindings::MM_CP_TRY_CHANGE_WRITABLE as c_ulong;
pub(crate) const PROT_NUMA: c_ulong = bindings::MM_CP_PROT_NUMA as c_ulong;
pub(crate) const UFFD_WP: c_ulong = bindings::MM_CP_UFFD_WP as c_ulong;
pub(crate) const UFFD_WP_RESOLVE: c_ulong = bindings::MM_CP_UFFD_WP_RESOLVE as c_ulong;
pub(crate) const UFFD_RWP: c_ulong = bindings::MM_CP_UFFD_RWP as c_ulong;
pub(crate) const UFFD_RWP_RESOLVE: c_ulong = bindings::MM_CP_UFFD_RWP_RESOLVE as c_ulong;

/// How one page is mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Entry {
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
pub(crate) enum Inval {
    Start { start: usize, end: usize },
    End { start: usize, end: usize },
}

/// What one run of a scenario saw.
#[derive(Default)]
pub(crate) struct Run {
    /// The mapping of every page, after each step that records one.
    pub(crate) trace: KVec<KVec<Entry>>,
    /// For the same steps and pages, every flag the snapshot read and what became of the
    /// page the entry maps ([`Snapshot::details`]).
    pub(crate) details: KVec<KVVec<u32>>,
    /// The last snapshot recorded, for the page verdicts of the next one.
    pub(crate) last: Option<Snapshot>,
    /// Results of `change_protection()` and `mprotect()` calls, and digests.
    pub(crate) counts: KVec<c_long>,
    /// The first invalidations seen during the run, relative to the base address that the
    /// scenario set with [`Recording::set_base`].
    pub(crate) invals: KVec<Inval>,
    /// The number of invalidations, and a digest of all of them.
    pub(crate) inval_total: usize,
    pub(crate) inval_digest: u64,
    /// What the first walks of the run left in their TLB gather ([`Gather`]).
    pub(crate) gathers: KVec<Gather>,
    /// The number of walks, and a digest of all their gathers.
    pub(crate) gather_total: usize,
    pub(crate) gather_digest: u64,
    /// The first TLB flushes of the run ([`Flush`]).
    pub(crate) flushes: KVec<Flush>,
    /// The number of flushes, and a digest of all of them.
    pub(crate) flush_total: usize,
    pub(crate) flush_digest: u64,
    /// How many huge PMDs the walks changed during the run, as the walkers count them
    /// ([`numa_huge_pte_updates`]).
    pub(crate) numa_huge_pte_updates: c_ulong,
    /// Addresses the scenario notes for its own checks (not compared between walkers).
    pub(crate) marks: KVec<usize>,
}

impl Run {
    pub(crate) fn count(&mut self, value: c_long) -> Result {
        self.counts.push(value, GFP_KERNEL)?;
        Ok(())
    }

    /// Records a snapshot, with the page verdicts against the last one recorded.
    pub(crate) fn record(&mut self, mut snap: Snapshot) -> Result {
        let details = snap.details(self.last.as_ref())?;
        self.details.push(details, GFP_KERNEL)?;
        let entries = core::mem::take(&mut snap.entries);
        self.trace.push(entries, GFP_KERNEL)?;
        self.last = Some(snap);
        Ok(())
    }

    pub(crate) fn mark(&mut self, addr: usize) -> Result {
        self.marks.push(addr, GFP_KERNEL)?;
        Ok(())
    }
}

/// FNV-1a over a sequence of words.
pub(crate) fn fnv(mut h: u64, words: &[u64]) -> u64 {
    for w in words {
        for b in w.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

pub(crate) const FNV_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// A digest of a snapshot (every flag of every page, not the PFNs), for runs too long to
/// keep every snapshot.
pub(crate) fn digest(snap: &Snapshot) -> c_long {
    let mut h = FNV_SEED;
    for raw in snap.raw.iter() {
        h = fnv(h, &[raw & SNAP_FLAGS]);
    }
    h as c_long
}

pub(crate) const MAX_INVALS: usize = 64;

/// The words of a [`Gather`].
pub(crate) const GATHER_WORDS: usize = bindings::MPROTECT_GATHER_WORDS as usize;
pub(crate) const GATHER_START: usize = bindings::MPROTECT_GATHER_START as usize;
pub(crate) const GATHER_END: usize = bindings::MPROTECT_GATHER_END as usize;
/// The flag of a gather with PTEs cleared (`cleared_ptes`).
pub(crate) const GATHER_PTES: u64 = bindings::MPROTECT_GATHER_PTES as u64;

/// What one `change_protection()` left in its TLB gather before the flush, read by
/// `mprotect_gather_for_kunit()`: the range to flush (relative to the recording's base, and
/// `0..0` if empty), the levels cleared and the VMA kinds, and the page size. A flush that a
/// walker misses or widens shows here, and in no page table.
pub(crate) type Gather = [u64; GATHER_WORDS];

/// The gathers a [`Recorder`] keeps; of more, only the count and the digest.
pub(crate) const MAX_GATHERS: usize = 64;

/// One TLB flush of a range of the test's mm by the test's own task, as the architecture
/// reports it to MMU notifiers (`arch_invalidate_secondary_tlbs()`, which x86 calls from
/// every `flush_tlb_mm_range()` and arm64 from every range flush but those marked
/// `TLBF_NONOTIFY`): the range, relative to the recording's base.
///
/// This is what the gather comparison cannot see where `tlb_end_vma()` flushes and resets
/// the gather inside the walk (arm64, without `MMU_GATHER_MERGE_VMAS`): there the flushes
/// themselves are compared. On x86 they follow from the gathers, and are compared too.
///
/// Flushes of the whole mm (`0..-1`) are not recorded: `flush_tlb_batched_pending()`, which
/// both walkers call for every PTE table, issues one whenever reclaim has batched an unmap
/// of the mm since, at a time no test chooses (and x86 reports such batches as `0..-1`).
/// The walkers' own flushes are ranges: arm64 turns one into a flush of the mm only beyond
/// its range limit, which `-cpu max`'s range invalidation puts out of the tests' reach.
/// What the notifier does not carry is not compared on arm64: the level hint and stride.
pub(crate) type Flush = [u64; FLUSH_WORDS];

/// The words of a [`Flush`]: start and end.
pub(crate) const FLUSH_WORDS: usize = 2;

/// The flushes a [`Recorder`] keeps; of more, only the count and the digest.
pub(crate) const MAX_FLUSHES: usize = 64;

/// The [`Recorder`] of the running [`Recording`], for [`walked_stub`]; null when none.
static GATHER_REC: AtomicPtr<Recorder> = AtomicPtr::new(ptr::null_mut());

/// Set while the test's task runs [`unmap`], [`madvise`] or a race of `races.rs` (a zap, a
/// fault or a split made from inside a walk), whose flushes are not the walkers' and are not
/// recorded. They are not even the same from run to run: `zap_pte_range()` stops at
/// `need_resched()` and, where it zapped a dirty shared page, flushes what it has so far
/// before it goes on (met once on arm64, at the end of `shmem_dirty_clean_uffd_wp`: 64 shmem
/// pages flushed as two ranges under one walker, as one under the other; and on the x86_64
/// debug kernel, in `eagain_repopulate_enomem`: the zap of the race flushed 32 shmem pages as
/// one range under one walker, as two under the other).
static NOT_WALKING: AtomicBool = AtomicBool::new(false);

/// The type of `mprotect_walked_for_kunit()`.
type Walked = unsafe extern "C" fn(*mut bindings::mmu_gather);

/// The stub of `mprotect_walked_for_kunit()`, which `change_protection()` calls after each
/// walk, in the test's own task only (a KUnit static stub): records what the walk left in
/// the gather in the [`Recorder`] of [`GATHER_REC`].
///
/// # Safety
///
/// Called by `change_protection()` with its gather, valid and not yet flushed.
unsafe extern "C" fn walked_stub(tlb: *mut bindings::mmu_gather) {
    let rec = GATHER_REC.load(Ordering::Acquire);
    if rec.is_null() {
        return;
    }
    let mut gather: Gather = [0; GATHER_WORDS];
    // SAFETY: `tlb` is valid (see above), and `gather` has the words the function writes.
    unsafe { bindings::mprotect_gather_for_kunit(tlb, gather.as_mut_ptr()) };
    // SAFETY: `GATHER_REC` points to the boxed recorder of a live `Recording`, which
    // deactivates this stub and clears the pointer before the recorder is freed, or to one
    // leaked by a test whose thread died (see `Recording::finish()`).
    let rec = unsafe { &*rec };
    if gather[GATHER_END] != 0 {
        let base = rec.base.load(Ordering::Relaxed) as u64;
        gather[GATHER_START] = gather[GATHER_START].wrapping_sub(base);
        gather[GATHER_END] = gather[GATHER_END].wrapping_sub(base);
    }
    rec.push_gather(&gather);
}

/// What a [`Recorder`] records of one kind: the first `N` entries of `W` words, and the count
/// and an order-sensitive digest of all of them.
///
/// Slots are claimed with an atomic counter, since callbacks can come from any task, and
/// read only once no callback can add to them. The digest has one writer: each kind is
/// added to only in the test's own task (the walker's invalidations and gathers, the
/// flushes of [`rec_flush`]).
pub(crate) struct Log<const W: usize, const N: usize> {
    total: AtomicUsize,
    digest: AtomicUsize,
    slots: [[AtomicUsize; W]; N],
}

impl<const W: usize, const N: usize> Log<W, N> {
    const fn new() -> Self {
        Self {
            total: AtomicUsize::new(0),
            digest: AtomicUsize::new(0),
            slots: [const { [const { AtomicUsize::new(0) }; W] }; N],
        }
    }

    fn push(&self, words: [u64; W]) {
        let i = self.total.fetch_add(1, Ordering::Relaxed);
        let d = self.digest.load(Ordering::Relaxed) as u64;
        let d = fnv(if i == 0 { FNV_SEED } else { d }, &words);
        self.digest.store(d as usize, Ordering::Relaxed);
        if let Some(slot) = self.slots.get(i) {
            for (word, value) in slot.iter().zip(words) {
                word.store(value as usize, Ordering::Relaxed);
            }
        }
    }

    /// The count, the digest and the entries kept.
    fn read(&self) -> Result<(usize, u64, KVec<[u64; W]>)> {
        let total = self.total.load(Ordering::Relaxed);
        let mut entries = KVec::with_capacity(total.min(N), GFP_KERNEL)?;
        for slot in &self.slots[..total.min(N)] {
            let mut words = [0; W];
            for (value, word) in words.iter_mut().zip(slot) {
                *value = word.load(Ordering::Relaxed) as u64;
            }
            entries.push(words, GFP_KERNEL)?;
        }
        Ok((total, self.digest.load(Ordering::Relaxed) as u64, entries))
    }
}

/// An `mmu_notifier` that records the mprotect invalidations of the test's mm, and a second
/// one that records its TLB flushes; with them, the gathers [`walked_stub`] reads.
///
/// Callbacks can come from other tasks too (khugepaged, reclaim): what they add is only read
/// after `mmu_notifier_unregister()`, which waits for all callbacks to finish. Other kinds of
/// invalidation are not recorded.
///
/// Addresses are recorded relative to `base`, so that runs whose mappings landed at
/// different addresses compare equal.
#[repr(C)]
pub(crate) struct Recorder {
    /// Written by the MMU notifier core while registered, so only reached by pointer.
    pub(crate) mn: Opaque<bindings::mmu_notifier>,
    pub(crate) base: AtomicUsize,
    /// The invalidations: kind (0 start, 1 end), start, end.
    pub(crate) invals: Log<3, MAX_INVALS>,
    /// The gathers (only [`walked_stub`] adds to them).
    pub(crate) gathers: Log<GATHER_WORDS, MAX_GATHERS>,
    /// The subscription of [`rec_flush`]: the MMU notifier core refuses one that has both
    /// `arch_invalidate_secondary_tlbs()` and `invalidate_range_start()`. As `mn`.
    pub(crate) flush_mn: Opaque<bindings::mmu_notifier>,
    /// The test's task: flushes of the mm by others (khugepaged, kswapd) are not recorded.
    /// Only compared, never dereferenced.
    pub(crate) owner: *const bindings::task_struct,
    /// The flushes (only [`rec_flush`] adds to them).
    pub(crate) flushes: Log<FLUSH_WORDS, MAX_FLUSHES>,
}

impl Recorder {
    pub(crate) fn push(&self, kind: usize, range: &bindings::mmu_notifier_range) {
        if range.event != bindings::mmu_notifier_event_MMU_NOTIFY_PROTECTION_VMA {
            return;
        }
        let base = self.base.load(Ordering::Relaxed);
        let (start, end) = (range.start.wrapping_sub(base), range.end.wrapping_sub(base));
        self.invals.push([kind as u64, start as u64, end as u64]);
    }

    fn push_flush(&self, start: usize, end: usize) {
        let base = self.base.load(Ordering::Relaxed);
        self.flushes.push([
            start.wrapping_sub(base) as u64,
            end.wrapping_sub(base) as u64,
        ]);
    }

    fn push_gather(&self, gather: &Gather) {
        self.gathers.push(*gather);
    }
}

/// # Safety
///
/// Called by the MMU notifier core with `mn` registered by [`Recording::start`] (the first
/// field of a live [`Recorder`]) and a valid `range`.
pub(crate) unsafe extern "C" fn rec_start(
    mn: *mut bindings::mmu_notifier,
    range: *const bindings::mmu_notifier_range,
) -> c_int {
    // SAFETY: See the function's safety requirements; `Recorder` is `repr(C)` with `mn`
    // (a transparent `Opaque`) first, and is only ever shared.
    let (rec, range) = unsafe { (&*mn.cast::<Recorder>(), &*range) };
    rec.push(0, range);
    0
}

/// # Safety
///
/// As for [`rec_start`].
pub(crate) unsafe extern "C" fn rec_end(
    mn: *mut bindings::mmu_notifier,
    range: *const bindings::mmu_notifier_range,
) {
    // SAFETY: As in `rec_start()`.
    let (rec, range) = unsafe { (&*mn.cast::<Recorder>(), &*range) };
    rec.push(1, range);
}

/// Records a flush of a range ([`Flush`]) by the recording's own task. Called with the
/// page-table lock held or interrupts off, so it only reads `current` and writes atomics.
///
/// # Safety
///
/// Called by the MMU notifier core with `mn` the `flush_mn` of a live [`Recorder`],
/// registered by [`Recording::start`].
unsafe extern "C" fn rec_flush(
    mn: *mut bindings::mmu_notifier,
    _mm: *mut bindings::mm_struct,
    start: c_ulong,
    end: c_ulong,
) {
    let field = mn.cast::<Opaque<bindings::mmu_notifier>>();
    // SAFETY: By the function's safety requirements `field` is the `flush_mn` field of a
    // live `Recorder`, which is only ever shared: its notifiers are `Opaque`, the rest
    // atomics.
    let rec = unsafe { &*kernel::container_of!(field, Recorder, flush_mn) };
    if (start, end) != (0, usize::MAX)
        && ptr::eq(kernel::task::Task::current_raw(), rec.owner)
        && !NOT_WALKING.load(Ordering::Relaxed)
    {
        rec.push_flush(start, end);
    }
}

pub(crate) static RECORDER_OPS: bindings::mmu_notifier_ops = bindings::mmu_notifier_ops {
    invalidate_range_start: Some(rec_start),
    invalidate_range_end: Some(rec_end),
    // SAFETY: All-zero is a valid `mmu_notifier_ops`: every other callback is `None`.
    ..unsafe { core::mem::zeroed() }
};

static FLUSH_OPS: bindings::mmu_notifier_ops = bindings::mmu_notifier_ops {
    arch_invalidate_secondary_tlbs: Some(rec_flush),
    // SAFETY: As for `RECORDER_OPS`.
    ..unsafe { core::mem::zeroed() }
};

/// A [`Recorder`] registered on the current mm until [`Recording::finish`].
pub(crate) struct Recording {
    pub(crate) rec: KBox<Recorder>,
    pub(crate) mm: *mut bindings::mm_struct,
    /// [`numa_huge_pte_updates`] at the start.
    numa_huge_pte_updates: c_ulong,
}

impl Recording {
    pub(crate) fn start() -> Result<Self> {
        let numa_huge_pte_updates = numa_huge_pte_updates()?;
        // SAFETY: Called from a KUnit test: attaches a KUnit-owned mm to the current task
        // if it has none.
        kernel::error::to_result(unsafe { bindings::kunit_attach_mm() })?;
        let current = kernel::current!();
        let mm = current.mm().ok_or(EINVAL)?.as_raw();
        let rec = KBox::new(
            Recorder {
                mn: Opaque::new(bindings::mmu_notifier {
                    ops: &RECORDER_OPS,
                    // SAFETY: All-zero is the initial state `mmu_notifier_register()`
                    // expects, apart from `ops`.
                    ..unsafe { core::mem::zeroed() }
                }),
                base: AtomicUsize::new(0),
                invals: Log::new(),
                gathers: Log::new(),
                flush_mn: Opaque::new(bindings::mmu_notifier {
                    ops: &FLUSH_OPS,
                    // SAFETY: As for `mn`.
                    ..unsafe { core::mem::zeroed() }
                }),
                owner: kernel::task::Task::current_raw(),
                flushes: Log::new(),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `rec` is boxed, so `mn` stays in place until `finish()` unregisters it;
        // `mm` is the current task's live mm.
        kernel::error::to_result(unsafe { bindings::mmu_notifier_register(rec.mn.get(), mm) })?;
        // SAFETY: As above, for `flush_mn`.
        let ret = unsafe { bindings::mmu_notifier_register(rec.flush_mn.get(), mm) };
        if let Err(e) = kernel::error::to_result(ret) {
            // SAFETY: Registered on `mm` above; after this no callback reaches `rec`.
            unsafe { bindings::mmu_notifier_unregister(rec.mn.get(), mm) };
            return Err(e);
        }
        GATHER_REC.store(
            ptr::from_ref::<Recorder>(&rec).cast_mut(),
            Ordering::Release,
        );
        let (real, stub): (Walked, Walked) = (bindings::mprotect_walked_for_kunit, walked_stub);
        // SAFETY: Called from a KUnit test case, so the current test is valid; `real` and
        // `stub` are functions of the same type.
        unsafe {
            bindings::__kunit_activate_static_stub(
                bindings::kunit_get_current_test(),
                real as *mut c_void,
                stub as *mut c_void,
            )
        };
        Ok(Recording {
            rec,
            mm,
            numa_huge_pte_updates,
        })
    }

    /// Records the following invalidations relative to `base`.
    pub(crate) fn set_base(&self, base: usize) {
        self.rec.base.store(base, Ordering::Relaxed);
    }

    /// Unregisters the notifiers and stores what they recorded in `run`.
    ///
    /// Nothing fallible runs before the stub and the notifiers are gone, so that the recorder
    /// is never freed while any can reach it. If the test's thread dies before this (a
    /// failed assertion), the recorder is leaked, not freed: KUnit deactivates the stub when
    /// the test ends, the exiting thread is not redirected in the meantime
    /// (`MPROTECT_TEST_STUB()`), and [`end_of_scenarios`] clears [`GATHER_REC`]; both
    /// notifiers stay registered until `exit_mmap()` releases them, and the reference they
    /// hold keeps the `mm_struct` (leaked too).
    pub(crate) fn finish(self, run: &mut Run) -> Result {
        let real: Walked = bindings::mprotect_walked_for_kunit;
        // SAFETY: As in `start()`; the test is still running.
        unsafe {
            bindings::kunit_deactivate_static_stub(
                bindings::kunit_get_current_test(),
                real as *mut c_void,
            )
        };
        GATHER_REC.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: Both registered on `mm` in `start()`; after this no callback runs any more.
        unsafe {
            bindings::mmu_notifier_unregister(self.rec.flush_mn.get(), self.mm);
            bindings::mmu_notifier_unregister(self.rec.mn.get(), self.mm);
        }
        (run.flush_total, run.flush_digest, run.flushes) = self.rec.flushes.read()?;
        run.numa_huge_pte_updates =
            numa_huge_pte_updates()?.wrapping_sub(self.numa_huge_pte_updates);
        (run.gather_total, run.gather_digest, run.gathers) = self.rec.gathers.read()?;
        let invals;
        (run.inval_total, run.inval_digest, invals) = self.rec.invals.read()?;
        let mut out = KVec::with_capacity(invals.len(), GFP_KERNEL)?;
        for [kind, start, end] in invals {
            let (start, end) = (start as usize, end as usize);
            let inval = if kind == 0 {
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
pub(crate) const SNAP_FLAGS: u64 = (1 << bindings::MPROTECT_SNAP_PFN_SHIFT) - 1;

/// What became of the page an entry maps, against the snapshot before it: bits of
/// [`Snapshot::details`] above the entry's flags.
pub(crate) const PAGE_SAME: u32 = 1 << bindings::MPROTECT_SNAP_PFN_SHIFT;
pub(crate) const PAGE_OTHER: u32 = PAGE_SAME << 1;
pub(crate) const PAGE_NEW: u32 = PAGE_SAME << 2;

/// How each page of a range was mapped, read by `mprotect_snapshot_for_kunit()` (the
/// kernel's `walk_page_range()`, not the code under test).
///
/// Dereferences to the [`Entry`] of each page, which the scenarios check; the raw entries
/// hold every flag the snapshot reads (soft-dirty, the bits of huge entries) and the PFN.
pub(crate) struct Snapshot {
    pub(crate) start: usize,
    pub(crate) entries: KVec<Entry>,
    pub(crate) raw: KVVec<u64>,
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
    pub(crate) fn details(&self, before: Option<&Snapshot>) -> Result<KVVec<u32>> {
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
    pub(crate) fn pfn(&self, i: usize) -> u64 {
        self.raw
            .get(i)
            .map_or(0, |r| r >> bindings::MPROTECT_SNAP_PFN_SHIFT)
    }

    /// Whether page `i` has the soft-dirty bit (false outside the snapshot).
    pub(crate) fn soft_dirty(&self, i: usize) -> bool {
        self.flag(i, bindings::MPROTECT_SNAP_SOFT_DIRTY)
    }

    /// Whether page `i` is mapped `PROT_NONE` for NUMA hinting or uffd-rwp (`pte_protnone()`,
    /// `pmd_protnone()`; false outside the snapshot). Only `thp_numa_hinting` asks, with the
    /// options it needs.
    #[cfg(all(CONFIG_NUMA_BALANCING, CONFIG_VM_EVENT_COUNTERS))]
    pub(crate) fn protnone(&self, i: usize) -> bool {
        self.flag(i, bindings::MPROTECT_SNAP_PROTNONE)
    }

    /// Whether page `i` is mapped with arm64's contiguous bit, as part of a contpte block
    /// (false outside the snapshot).
    #[cfg(CONFIG_ARM64_CONTPTE)]
    pub(crate) fn cont(&self, i: usize) -> bool {
        self.flag(i, bindings::MPROTECT_SNAP_CONT)
    }

    fn flag(&self, i: usize, flag: u32) -> bool {
        self.raw.get(i).is_some_and(|r| r & u64::from(flag) != 0)
    }
}

/// The [`Entry`] of a `mprotect_snapshot_for_kunit()` entry.
pub(crate) fn entry(raw: u64) -> Entry {
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
pub(crate) fn snapshot(addr: usize, end: usize) -> Result<Snapshot> {
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
pub(crate) fn walker_name() -> &'static CStr {
    // SAFETY: `mprotect_walker_name()` returns a static NUL-terminated string.
    unsafe { CStr::from_char_ptr(bindings::mprotect_walker_name()) }
}

pub(crate) fn select(walker: &CStr) -> Result {
    // SAFETY: `walker` is a NUL-terminated string.
    kernel::error::to_result(unsafe { bindings::mprotect_walker_select(walker.as_char_ptr()) })
}

/// Maps private anonymous memory in the current (KUnit-owned) mm; unmapped by [`unmap`] or
/// when the test ends.
pub(crate) fn mmap(len: usize, flags: u32) -> Result<usize> {
    map(len, MAP_PRIVATE | flags)
}

/// Maps shared anonymous memory (shmem: a file mapping, not `vma_is_anonymous()`).
pub(crate) fn mmap_shared(len: usize, flags: u32) -> Result<usize> {
    map(len, MAP_SHARED | flags)
}

/// Maps private anonymous memory for 4K pages only (`MADV_NOHUGEPAGE`), the start of most
/// scenarios, and records the run's invalidations relative to it.
pub(crate) fn map_4k(rec: &Recording, len: usize, flags: u32) -> Result<usize> {
    let addr = mmap(len, flags)?;
    rec.set_base(addr);
    madvise(addr, len, MADV_NOHUGEPAGE)?;
    Ok(addr)
}

pub(crate) fn map(len: usize, flags: u32) -> Result<usize> {
    match kunit_mmap(0, len, flags)? {
        0 => Err(ENOMEM),
        addr => Ok(addr),
    }
}

/// Maps anonymous memory at `addr` exactly, where nothing is mapped
/// (`MAP_FIXED_NOREPLACE`); `flags` has `MAP_PRIVATE` or `MAP_SHARED`. At address 0 success
/// and failure look alike (see [`kunit_mmap`]), so the caller checks by touching the memory.
pub(crate) fn map_at(addr: usize, len: usize, flags: u32) -> Result {
    if kunit_mmap(addr, len, MAP_FIXED_NOREPLACE | flags)? != addr {
        return Err(ENOMEM);
    }
    Ok(())
}

/// `kunit_vm_mmap()` of anonymous read-write memory: the address, or 0 if the mapping was
/// refused or was made at address 0 (`kunit_vm_mmap()` takes a 0 from `vm_mmap()` for a
/// failure), or the error `vm_mmap()` returned (which `kunit_vm_mmap()` passes on as an
/// address).
pub(crate) fn kunit_mmap(addr: usize, len: usize, flags: u32) -> Result<usize> {
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

/// Whether the KUnit mm has the address space of 5-level paging: above 2^48 bytes (x86_64:
/// 2^56 with 5 levels, 2^47 with 4; arm64 with 4K pages: 2^52 with 5 levels, by LPA2, and
/// 2^48 with 4, also for a 52-bit kernel on a CPU without LPA2).
pub(crate) fn five_level_paging() -> Result<bool> {
    // SAFETY: Called from a KUnit test: attaches a KUnit-owned mm to the current task if it
    // has none (the scenarios' mm, which `Recording::start()` attaches too).
    kernel::error::to_result(unsafe { bindings::kunit_attach_mm() })?;
    let current = kernel::current!();
    let mm = current.mm().ok_or(EINVAL)?.as_raw();
    // SAFETY: `mm` is the current task's live mm; `task_size` is set when it is made.
    Ok(unsafe { (*mm).__bindgen_anon_1.task_size } > 1 << 48)
}

/// Sets `VM_UFFD_WP` / `VM_UFFD_RWP` on the VMA at `addr` (`MPROTECT_KUNIT_*` bits), as a
/// userfaultfd registration would, or clears them (`0`). There is no userfaultfd context:
/// the scenarios must not touch pages while they are protected.
pub(crate) fn vma_modes(addr: usize, modes: u32) -> Result {
    // SAFETY: Operates on the current mm, under its own locking.
    kernel::error::to_result(unsafe { bindings::mprotect_vma_modes_for_kunit(addr, modes) })
}

/// While alive, the page-table allocation `real` fails in this test's task (a KUnit static
/// stub, `KUNIT_STATIC_STUB_REDIRECT()` in `__pte_alloc()`, `__pmd_alloc()`, `__pud_alloc()`
/// and `__p4d_alloc()`).
pub(crate) struct FailAlloc(*mut c_void);

/// The type of `__pte_alloc()`.
pub(crate) type PteAlloc =
    unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::pmd_t) -> c_int;
/// The type of `__pmd_alloc()`.
pub(crate) type PmdAlloc =
    unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::pud_t, c_ulong) -> c_int;
/// The type of `__pud_alloc()`.
pub(crate) type PudAlloc =
    unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::p4d_t, c_ulong) -> c_int;
/// The type of `__p4d_alloc()`.
pub(crate) type P4dAlloc =
    unsafe extern "C" fn(*mut bindings::mm_struct, *mut bindings::pgd_t, c_ulong) -> c_int;

pub(crate) extern "C" fn no_pte_table(
    _: *mut bindings::mm_struct,
    _: *mut bindings::pmd_t,
) -> c_int {
    ENOMEM.to_errno()
}

pub(crate) extern "C" fn no_pmd_table(
    _: *mut bindings::mm_struct,
    _: *mut bindings::pud_t,
    _: c_ulong,
) -> c_int {
    ENOMEM.to_errno()
}

pub(crate) extern "C" fn no_pud_table(
    _: *mut bindings::mm_struct,
    _: *mut bindings::p4d_t,
    _: c_ulong,
) -> c_int {
    ENOMEM.to_errno()
}

pub(crate) extern "C" fn no_p4d_table(
    _: *mut bindings::mm_struct,
    _: *mut bindings::pgd_t,
    _: c_ulong,
) -> c_int {
    ENOMEM.to_errno()
}

impl FailAlloc {
    pub(crate) fn pte() -> Self {
        let (real, stub): (PteAlloc, PteAlloc) = (bindings::__pte_alloc, no_pte_table);
        Self::activate(real as *mut c_void, stub as *mut c_void)
    }

    pub(crate) fn pmd() -> Self {
        let (real, stub): (PmdAlloc, PmdAlloc) = (bindings::__pmd_alloc, no_pmd_table);
        Self::activate(real as *mut c_void, stub as *mut c_void)
    }

    pub(crate) fn pud() -> Self {
        let (real, stub): (PudAlloc, PudAlloc) = (bindings::__pud_alloc, no_pud_table);
        Self::activate(real as *mut c_void, stub as *mut c_void)
    }

    pub(crate) fn p4d() -> Self {
        let (real, stub): (P4dAlloc, P4dAlloc) = (bindings::__p4d_alloc, no_p4d_table);
        Self::activate(real as *mut c_void, stub as *mut c_void)
    }

    pub(crate) fn activate(real: *mut c_void, stub: *mut c_void) -> Self {
        // SAFETY: Called from a KUnit test case, so the current test is valid; `real` and
        // `stub` are functions of the same type, as the callers' type annotations check.
        unsafe {
            bindings::__kunit_activate_static_stub(bindings::kunit_get_current_test(), real, stub)
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

/// Runs `f` with the recording of flushes paused (see [`NOT_WALKING`]); nests.
pub(crate) fn not_walking<T>(f: impl FnOnce() -> T) -> T {
    let was = NOT_WALKING.swap(true, Ordering::Relaxed);
    let ret = f();
    NOT_WALKING.store(was, Ordering::Relaxed);
    ret
}

pub(crate) fn unmap(addr: usize, len: usize) -> Result {
    not_walking(|| {
        // SAFETY: Unmaps part of the current mm, under its own locking.
        kernel::error::to_result(unsafe { bindings::vm_munmap(addr, len) })
    })
}

pub(crate) fn madvise(addr: usize, len: usize, advice: u32) -> Result {
    let current = kernel::current!();
    let mm = current.mm().ok_or(EINVAL)?.as_raw();
    not_walking(|| {
        // SAFETY: `mm` is the current task's mm.
        kernel::error::to_result(unsafe { bindings::do_madvise(mm, addr, len, advice as c_int) })
    })
}

/// The `numa_huge_pte_updates` event of `/proc/vmstat`, summed over the CPUs: both walkers
/// count one per huge PMD that a walk changed (`change_huge_pmd()` returned `HPAGE_PMD_NR`),
/// for NUMA hinting or not, as the C walker always has. 0 without NUMA balancing or without
/// `CONFIG_VM_EVENT_COUNTERS`.
///
/// Only `mprotect()`, userfaultfd and the NUMA hinting of tasks returning to user space walk
/// with `change_protection()`, and the suites run at boot, before user space, or
/// (`mprotect_rs_guest`) from the guest's init while it waits: no user task runs, so no other
/// task's walk counts between two reads.
pub(crate) fn numa_huge_pte_updates() -> Result<c_ulong> {
    #[cfg(all(CONFIG_NUMA_BALANCING, CONFIG_VM_EVENT_COUNTERS))]
    {
        let nr = bindings::vm_event_item_NR_VM_EVENT_ITEMS as usize;
        let mut events = KVec::<c_ulong>::from_elem(0, nr, GFP_KERNEL)?;
        // SAFETY: `events` has room for the `NR_VM_EVENT_ITEMS` counts the function writes.
        unsafe { bindings::all_vm_events(events.as_mut_ptr()) };
        Ok(events[bindings::vm_event_item_NUMA_HUGE_PTE_UPDATES as usize])
    }
    #[cfg(not(all(CONFIG_NUMA_BALANCING, CONFIG_VM_EVENT_COUNTERS)))]
    Ok(0)
}

/// Maps `2 * PMD_SIZE` of anonymous memory, the recording's base, asks for huge pages
/// (`MADV_HUGEPAGE`) and writes 1 at its first PMD boundary, which faults in a PMD-mapped THP
/// there if one can be had. Returns the mapping (to unmap) and the THP's address.
pub(crate) fn map_touched_thp(rec: &Recording) -> Result<(usize, usize)> {
    let len = 2 * PMD_SIZE;
    let map = mmap(len, 0)?;
    rec.set_base(map);
    madvise(map, len, MADV_HUGEPAGE)?;
    let addr = (map + PMD_SIZE - 1) & !(PMD_SIZE - 1);
    touch(addr, 1)?;
    Ok((map, addr))
}

/// Maps `2 * nr` anonymous pages; in them, from the first multiple of `align` pages, asks for
/// huge pages over `nr` pages (`MADV_HUGEPAGE`: the 64K mTHP of `thp_anon=64K:madvise` in a
/// range too small for a PMD) and writes each with its index. Returns the mapping (`2 * nr`
/// pages, to unmap) and the first of the `nr` pages.
pub(crate) fn map_touched_huge(nr: usize, align: usize) -> Result<(usize, usize)> {
    let map = mmap(2 * nr * PAGE_SIZE, 0)?;
    let addr = (map + align * PAGE_SIZE - 1) & !(align * PAGE_SIZE - 1);
    madvise(addr, nr * PAGE_SIZE, MADV_HUGEPAGE)?;
    for i in 0..nr {
        touch(addr + i * PAGE_SIZE, i as u8)?;
    }
    Ok((map, addr))
}

pub(crate) fn touch(addr: usize, byte: u8) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), 1)
        .writer()
        .write_slice(&[byte])
}

pub(crate) fn peek(addr: usize) -> Result<u8> {
    let mut b = [0u8];
    UserSlice::new(UserPtr::from_addr(addr), 1)
        .reader()
        .read_slice(&mut b)?;
    Ok(b[0])
}

pub(crate) fn mprotect(addr: usize, len: usize, prot: u32) -> c_long {
    // SAFETY: Operates on the current mm, under its own locking.
    (unsafe { bindings::mprotect_for_kunit(addr, len, prot as usize) }) as c_long
}

pub(crate) fn change(addr: usize, end: usize, cp_flags: c_ulong) -> c_long {
    // SAFETY: Operates on the current mm, under its own locking.
    unsafe { bindings::change_protection_for_kunit(addr, end, cp_flags) }
}

pub(crate) fn count_entry(v: &[Entry], f: impl Fn(&Entry) -> bool) -> usize {
    v.iter().filter(|e| f(e)).count()
}

/// The runs of [`under_each_walker`], the C walker's first; [`RUNNING`] names the walker
/// while its run is under way.
pub(crate) fn run_each_walker(
    scenario: &impl Fn(&mut Run, &Recording) -> Result,
) -> Result<KVec<Run>> {
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
pub(crate) struct OnCpu0;

impl OnCpu0 {
    pub(crate) fn pin() -> Result<Self> {
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
pub(crate) static RUNNING: AtomicUsize = AtomicUsize::new(0);
pub(crate) static CHOSEN: AtomicUsize = AtomicUsize::new(0);

/// A KUnit action of [`under_each_walker`]: released (run and removed) when the scenario
/// returns, and run when the test ends if a failed assertion ended the test's thread in
/// the middle of a scenario. Then it names the walker the scenario stopped under; either
/// way it selects the boot choice of walker again.
///
/// # Safety
///
/// `test` is the test that added the action; KUnit runs or releases its actions while the
/// test is alive.
pub(crate) unsafe extern "C" fn end_of_scenarios(test: *mut c_void) {
    // A recording that a failed assertion cut short keeps no stub pointing at it, and the
    // next test's flushes are recorded even if this one was cut short in `not_walking()`.
    GATHER_REC.store(ptr::null_mut(), Ordering::Release);
    NOT_WALKING.store(false, Ordering::Relaxed);
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

pub(crate) fn walker_index(walker: &CStr) -> Option<usize> {
    WALKERS.iter().position(|w| *w == walker)
}

/// The index of the first element where `a` and `b` differ, or the length of the shorter.
fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Fails, saying where, unless the two walkers' runs logged the same of one kind ([`Log`]):
/// the count, the digest and the entries kept (both `None` past those, where only the count
/// and the digest can differ).
fn same_log<const W: usize>(
    what: &str,
    c: (usize, u64, &[[u64; W]]),
    rust: (usize, u64, &[[u64; W]]),
) -> Result {
    if c == rust {
        return Ok(());
    }
    let (c_total, c_digest, c) = c;
    let (rust_total, rust_digest, rust) = rust;
    let i = first_difference(c, rust);
    pr_err!(
        "{what} differ at {i} of {c_total}/{rust_total} (the first {} kept): C {:#x?}, \
         Rust {:#x?} (digests {c_digest:#x}, {rust_digest:#x})\n",
        c.len().max(rust.len()),
        c.get(i),
        rust.get(i)
    );
    Err(EINVAL)
}

/// Runs `scenario` once per walker, then fails (with a message saying where) unless both
/// runs recorded the same entries, counts, invalidations, TLB gathers and flushes,
/// `numa_huge_pte_updates` events, flags and page verdicts. Returns the Rust walker's run.
///
/// The scenario checks its own expectations with the test's `assert!`s; this function is
/// outside the test functions, so it reports a difference as an error instead. A failure
/// says which walker it happened under, also when an assertion ends the test, and the
/// boot choice of walker is selected again however the scenario ends.
///
/// Keeps the test on CPU 0 until it returns: NUMA hinting skips folios already on the node
/// of the CPU that walks (`folio_can_map_prot_numa()`), and NUMA hinting faults migrate
/// towards it, so a test that moved between the two nodes' CPUs would not be repeatable.
pub(crate) fn under_each_walker(scenario: impl Fn(&mut Run, &Recording) -> Result) -> Result<Run> {
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
        let i = first_difference(&c.counts, &rust.counts);
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
    same_log(
        "TLB gathers (one per walk: range, flags, page size)",
        (c.gather_total, c.gather_digest, &c.gathers),
        (rust.gather_total, rust.gather_digest, &rust.gathers),
    )?;
    same_log(
        "TLB flushes (range)",
        (c.flush_total, c.flush_digest, &c.flushes),
        (rust.flush_total, rust.flush_digest, &rust.flushes),
    )?;
    if c.numa_huge_pte_updates != rust.numa_huge_pte_updates {
        pr_err!(
            "numa_huge_pte_updates differ: C {}, Rust {}\n",
            c.numa_huge_pte_updates,
            rust.numa_huge_pte_updates
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

/// Prints a diagnostic line as `kunit_info()` does: to the kernel log, and to the test's
/// log, which `/sys/kernel/debug/kunit/<suite>/results` shows.
pub(crate) fn diag(args: core::fmt::Arguments<'_>) {
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

pub(crate) fn is_marker(e: &Entry) -> bool {
    matches!(
        e,
        Entry::Leaf {
            marker: true,
            guard: false,
            ..
        }
    )
}

/// A small xorshift generator, so a failing case can be replayed from its seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The number of random cases and the seed: `mprotect_rs.random_cases=` and
/// `mprotect_rs.seed=` on the kernel command line, else 2000 and a fixed seed.
pub(crate) fn random_params() -> (usize, u64) {
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
