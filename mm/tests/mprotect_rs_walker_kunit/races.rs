// SPDX-License-Identifier: GPL-2.0

//! Races, made to happen where a test chooses.
//!
//! NUMA hinting and userfaultfd run the walkers under the mmap read lock, so faults, zaps
//! (`MADV_DONTNEED`, which frees the PTE tables it empties), splits and collapses change the
//! page tables while a walker is in them, and rmap walkers do even under mprotect()'s write
//! lock. The walkers meet such changes in three calls, and each has a retry path for them:
//! `pte_offset_map_lock()` finds no PTE table (`-EAGAIN`: the PMD is walked again, populated
//! first where uffd-wp needs markers), `change_huge_pmd()` finds no huge PMD (0: fall through
//! to the PTE level), `change_huge_pud()` finds no PUD leaf (0: the PUD is walked again).
//!
//! [`Races`] puts a KUnit static stub on each of the three (`MPROTECT_TEST_STUB()` in the C
//! functions, so nothing is added to either walker): at the chosen call it makes the change
//! (`mprotect_race_for_kunit()`, in the walker's own task, under the mmap lock the walker
//! holds), then calls the real function and counts what it found. The cases of
//! `mprotect_rs_races` compare the walkers as the other cases do, counts of the three calls
//! included, and check that each retry path ran.

use crate::harness::*;
use core::{
    ffi::c_void,
    ptr,
    sync::atomic::{AtomicPtr, AtomicUsize, Ordering},
};
#[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
use kernel::ffi::c_int;
use kernel::{
    bindings,
    ffi::{c_long, c_ulong},
    page::PAGE_SIZE,
    prelude::*,
};

/// The function whose stub makes a [`Race`] happen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Point {
    /// `pte_offset_map_lock()`, before it reads the PMD.
    MapLock,
    /// `change_huge_pmd()`, before it takes the PMD lock.
    HugePmd,
    /// `change_huge_pud()`, before it takes the PUD lock (where there are PUD leaves).
    #[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
    HugePud,
}

/// A change to the page tables of `[addr, addr + len)` (`MPROTECT_RACE_*`), made when the
/// function of `point` is called for the `nth` time (from 1) while a [`Races`] is armed: before
/// the real function runs, or after it returned if `after`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Race {
    pub(crate) point: Point,
    pub(crate) nth: usize,
    pub(crate) after: bool,
    pub(crate) action: u32,
    pub(crate) addr: usize,
    pub(crate) len: usize,
}

impl Race {
    /// `action` on `[addr, addr + len)` before the `nth` call of `point`.
    pub(crate) fn new(point: Point, nth: usize, action: u32, addr: usize, len: usize) -> Self {
        Race {
            point,
            nth,
            after: false,
            action,
            addr,
            len,
        }
    }

    /// The same race, made after the call returned instead (for now only the PUD cases
    /// need it).
    #[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
    pub(crate) fn after(self) -> Self {
        Race {
            after: true,
            ..self
        }
    }
}

/// What the three calls found while a [`Races`] was armed.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct Seen {
    /// Calls of `pte_offset_map_lock()`, and how many found no PTE table (`-EAGAIN`).
    pub(crate) map_lock: usize,
    pub(crate) map_lock_failed: usize,
    /// Calls of `change_huge_pmd()`, and how many found no huge PMD (returned 0).
    pub(crate) huge_pmd: usize,
    pub(crate) huge_pmd_zero: usize,
    /// Calls of `change_huge_pud()`, and how many found no PUD leaf (returned 0).
    pub(crate) huge_pud: usize,
    pub(crate) huge_pud_zero: usize,
    /// Races made, and how many of them failed.
    pub(crate) raced: usize,
    pub(crate) race_failed: usize,
}

impl Seen {
    /// Adds every count to `run`, so that the walkers' runs compare them.
    pub(crate) fn record(&self, run: &mut Run) -> Result {
        for n in [
            self.map_lock,
            self.map_lock_failed,
            self.huge_pmd,
            self.huge_pmd_zero,
            self.huge_pud,
            self.huge_pud_zero,
            self.raced,
            self.race_failed,
        ] {
            run.count(n as c_long)?;
        }
        Ok(())
    }
}

/// The races of the armed [`Races`], and its counters (the fields of [`Seen`], in order).
struct Plan {
    races: KVec<Race>,
    counts: [AtomicUsize; 8],
}

const MAP_LOCK: usize = 0;
const MAP_LOCK_FAILED: usize = 1;
const HUGE_PMD: usize = 2;
const HUGE_PMD_ZERO: usize = 3;
const HUGE_PUD: usize = 4;
const HUGE_PUD_ZERO: usize = 5;
const RACED: usize = 6;
const RACE_FAILED: usize = 7;

/// The plan of the armed [`Races`], or null.
static PLAN: AtomicPtr<Plan> = AtomicPtr::new(ptr::null_mut());

impl Plan {
    /// The armed plan.
    ///
    /// # Safety
    ///
    /// Called only by the stubs, which run only in the task of the test that armed them while
    /// they are active; that task also disarms them, before it frees the plan, so the plan
    /// outlives the reference.
    unsafe fn get<'a>() -> Option<&'a Plan> {
        // SAFETY: `PLAN` is null or points to the plan that the armed [`Races`] owns, alive
        // for as long as the function's safety requirements say.
        unsafe { PLAN.load(Ordering::Acquire).as_ref() }
    }

    /// Counts a call of the function of `point` (counter `calls`), and makes the races planned
    /// before it.
    fn call(&self, point: Point, calls: usize) {
        let nth = self.counts[calls].fetch_add(1, Ordering::Relaxed) + 1;
        self.race(point, nth, false);
    }

    /// Makes the races planned after the call of `point` counted in `calls` returned.
    #[cfg_attr(not(CONFIG_TRANSPARENT_HUGEPAGE), allow(dead_code))]
    fn returned(&self, point: Point, calls: usize) {
        self.race(point, self.counts[calls].load(Ordering::Relaxed), true);
    }

    fn race(&self, point: Point, nth: usize, after: bool) {
        for race in self.races.iter() {
            if race.point == point && race.nth == nth && race.after == after {
                self.counts[RACED].fetch_add(1, Ordering::Relaxed);
                // The race's own flushes are not the walker's, and not the same from run to
                // run (a zap that meets `need_resched()` in a PTE table where it zapped a dirty
                // shared page flushes what it has so far before it goes on): they are left out
                // of the recording.
                let ret = not_walking(|| {
                    unstubbed(|| {
                        // SAFETY: Called in the walker's task, in process context, which holds
                        // the mmap lock of the current mm and, where these stubs run, no
                        // page-table lock and no RCU read-side section.
                        unsafe {
                            bindings::mprotect_race_for_kunit(race.addr, race.len, race.action)
                        }
                    })
                });
                if ret != 0 {
                    self.counts[RACE_FAILED].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn found(&self, counter: usize, yes: bool) {
        if yes {
            self.counts[counter].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs `f` with the current task's KUnit test hidden from the static stubs, so that the
/// stubbed functions that `f` calls are the real ones: the stub calls the function it
/// replaces, and the races call them too (a zap maps PTE tables) without being counted.
///
/// While hidden, a KUnit failure raised from C for the current test (a KASAN report does
/// that) does not reach the test; the report is still a splat in the console, which fails the
/// run (`scripts/splat-check.py`).
fn unstubbed<T>(f: impl FnOnce() -> T) -> T {
    let task = kernel::current!().as_ptr();
    // SAFETY: `task` is the current task. Its `kunit_test` is written only in its own context
    // (by KUnit, the same way, when the test starts and ends), and read through
    // `kunit_get_current_test()` in its own context too; `f` runs in that context.
    let test = unsafe { ptr::replace(&raw mut (*task).kunit_test, ptr::null_mut()) };
    let ret = f();
    // SAFETY: As above; the test is the one that was running, and still is.
    unsafe { (*task).kunit_test = test };
    ret
}

/// The stub of `pte_offset_map_lock()`.
///
/// # Safety
///
/// Called by `pte_offset_map_lock()` with its own arguments.
unsafe extern "C" fn map_lock_stub(
    mm: *mut bindings::mm_struct,
    pmd: *mut bindings::pmd_t,
    addr: c_ulong,
    ptlp: *mut *mut bindings::spinlock_t,
) -> *mut bindings::pte_t {
    // SAFETY: A stub, in the task that armed it (KUnit redirects only that task).
    let plan = unsafe { Plan::get() };
    if let Some(plan) = plan {
        plan.call(Point::MapLock, MAP_LOCK);
    }
    // SAFETY: The arguments that `pte_offset_map_lock()` was called with.
    let pte = unstubbed(|| unsafe { bindings::pte_offset_map_lock(mm, pmd, addr, ptlp) });
    if let Some(plan) = plan {
        // No race after this call: it returns with the PTE table mapped and locked, in an
        // RCU read-side section ([`Races::arm`] refuses one).
        plan.found(MAP_LOCK_FAILED, pte.is_null());
    }
    pte
}

/// Defines `$stub`, the stub of `$real()` (`change_huge_pmd()` or `change_huge_pud()`, whose
/// entry is a `$entry`): it counts the call in counter `$calls` and a 0 result in `$zero`, and
/// makes the races planned at `$point` before and after the real call.
macro_rules! huge_stub {
    (
        $(#[$attr:meta])* $stub:ident, $real:ident, $entry:ty,
        $point:expr, $calls:expr, $zero:expr
    ) => {
        #[doc = concat!("The stub of `", stringify!($real), "()`.")]
        ///
        /// # Safety
        ///
        #[doc = concat!("Called by `", stringify!($real), "()` with its own arguments.")]
        $(#[$attr])*
        unsafe extern "C" fn $stub(
            tlb: *mut bindings::mmu_gather,
            vma: *mut bindings::vm_area_struct,
            entry: *mut $entry,
            addr: c_ulong,
            newprot: bindings::pgprot_t,
            cp_flags: c_ulong,
        ) -> c_int {
            // SAFETY: A stub, in the task that armed it (KUnit redirects only that task).
            let plan = unsafe { Plan::get() };
            if let Some(plan) = plan {
                plan.call($point, $calls);
            }
            // SAFETY: The arguments that the real function was called with.
            let ret = unstubbed(|| unsafe {
                bindings::$real(tlb, vma, entry, addr, newprot, cp_flags)
            });
            if let Some(plan) = plan {
                plan.found($zero, ret == 0);
                plan.returned($point, $calls);
            }
            ret
        }
    };
}

huge_stub!(
    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    huge_pmd_stub,
    change_huge_pmd,
    bindings::pmd_t,
    Point::HugePmd,
    HUGE_PMD,
    HUGE_PMD_ZERO
);
huge_stub!(
    #[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
    huge_pud_stub,
    change_huge_pud,
    bindings::pud_t,
    Point::HugePud,
    HUGE_PUD,
    HUGE_PUD_ZERO
);

/// The type of `pte_offset_map_lock()`.
type MapLock = unsafe extern "C" fn(
    *mut bindings::mm_struct,
    *mut bindings::pmd_t,
    c_ulong,
    *mut *mut bindings::spinlock_t,
) -> *mut bindings::pte_t;
/// The type of `change_huge_pmd()`.
#[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
type HugePmd = unsafe extern "C" fn(
    *mut bindings::mmu_gather,
    *mut bindings::vm_area_struct,
    *mut bindings::pmd_t,
    c_ulong,
    bindings::pgprot_t,
    c_ulong,
) -> c_int;
/// The type of `change_huge_pud()`.
#[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
type HugePud = unsafe extern "C" fn(
    *mut bindings::mmu_gather,
    *mut bindings::vm_area_struct,
    *mut bindings::pud_t,
    c_ulong,
    bindings::pgprot_t,
    c_ulong,
) -> c_int;

/// While alive, the stubs of `pte_offset_map_lock()`, `change_huge_pmd()` and
/// `change_huge_pud()` count the calls that the current test's task makes and make its races
/// happen. Arm it around the walk only: `mprotect_snapshot_for_kunit()` and faults map PTE
/// tables too.
pub(crate) struct Races {
    plan: KBox<Plan>,
    /// The functions whose stubs are active.
    stubs: KVec<*mut c_void>,
    /// Whether [`PLAN`] points to `plan`.
    armed: bool,
}

impl Races {
    /// Arms the stubs with `races`. Fails with `EINVAL` for a race after
    /// `pte_offset_map_lock()`, and `EBUSY` if armed already.
    pub(crate) fn arm(races: &[Race]) -> Result<Self> {
        if races.iter().any(|r| r.after && r.point == Point::MapLock) {
            return Err(EINVAL);
        }
        let mut list = KVec::with_capacity(races.len(), GFP_KERNEL)?;
        list.extend_from_slice(races, GFP_KERNEL)?;
        let plan = KBox::new(
            Plan {
                races: list,
                counts: [const { AtomicUsize::new(0) }; 8],
            },
            GFP_KERNEL,
        )?;
        let mut this = Races {
            plan,
            stubs: KVec::with_capacity(3, GFP_KERNEL)?,
            armed: false,
        };
        let new = (&raw const *this.plan).cast_mut();
        if PLAN
            .compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another plan is armed: leave it alone (`this.armed` is false).
            return Err(EBUSY);
        }
        this.armed = true;
        let (real, stub): (MapLock, MapLock) = (bindings::pte_offset_map_lock, map_lock_stub);
        this.activate(real as *mut c_void, stub as *mut c_void)?;
        // Without THP these functions do not exist (`change_huge_pud()` is an inline stub
        // then, and on architectures without PUD leaves): no huge entry to race on either.
        #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
        {
            let (real, stub): (HugePmd, HugePmd) = (bindings::change_huge_pmd, huge_pmd_stub);
            this.activate(real as *mut c_void, stub as *mut c_void)?;
        }
        #[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
        {
            let (real, stub): (HugePud, HugePud) = (bindings::change_huge_pud, huge_pud_stub);
            this.activate(real as *mut c_void, stub as *mut c_void)?;
        }
        Ok(this)
    }

    fn activate(&mut self, real: *mut c_void, stub: *mut c_void) -> Result {
        self.stubs.push(real, GFP_KERNEL)?;
        // SAFETY: Called from a KUnit test case, so the current test is valid; `real` and
        // `stub` are functions of the same type, as the callers' type annotations check.
        unsafe {
            bindings::__kunit_activate_static_stub(bindings::kunit_get_current_test(), real, stub)
        };
        Ok(())
    }

    /// Disarms the stubs and returns what they counted.
    pub(crate) fn finish(self) -> Seen {
        let c = |i: usize| self.plan.counts[i].load(Ordering::Relaxed);
        Seen {
            map_lock: c(MAP_LOCK),
            map_lock_failed: c(MAP_LOCK_FAILED),
            huge_pmd: c(HUGE_PMD),
            huge_pmd_zero: c(HUGE_PMD_ZERO),
            huge_pud: c(HUGE_PUD),
            huge_pud_zero: c(HUGE_PUD_ZERO),
            raced: c(RACED),
            race_failed: c(RACE_FAILED),
        }
    }
}

impl Drop for Races {
    fn drop(&mut self) {
        for real in self.stubs.iter() {
            // SAFETY: As in `activate()`; the test is still running.
            unsafe {
                bindings::kunit_deactivate_static_stub(bindings::kunit_get_current_test(), *real)
            };
        }
        // No stub runs any more: the plan can go.
        if self.armed {
            PLAN.store(ptr::null_mut(), Ordering::Release);
        }
    }
}

/// Changes `[addr, end)` with the races `races` made during the walk, adds the result and what
/// the three calls found to `run`, and returns the latter.
pub(crate) fn change_racing(
    run: &mut Run,
    addr: usize,
    end: usize,
    cp_flags: c_ulong,
    races: &[Race],
) -> Result<(c_long, Seen)> {
    let armed = Races::arm(races)?;
    let ret = change(addr, end, cp_flags);
    let seen = armed.finish();
    run.count(ret)?;
    seen.record(run)?;
    if seen.raced != races.len() || seen.race_failed != 0 {
        pr_err!("races planned {races:?}, made: {seen:?}\n");
        return Err(EINVAL);
    }
    Ok((ret, seen))
}

/// A zap of `[addr, addr + len)` at the `nth` call of `point`.
pub(crate) fn zap_at(point: Point, nth: usize, addr: usize, len: usize) -> Race {
    Race::new(point, nth, bindings::MPROTECT_RACE_ZAP, addr, len)
}

/// A write fault at `addr` at the `nth` call of `point`.
pub(crate) fn fault_at(point: Point, nth: usize, addr: usize) -> Race {
    Race::new(point, nth, bindings::MPROTECT_RACE_FAULT, addr, PAGE_SIZE)
}

#[kunit_tests(mprotect_rs_races)]
mod tests {
    use super::*;
    use kernel::uapi::{MADV_HUGEPAGE, MADV_NOHUGEPAGE, MAP_NORESERVE, MAP_PRIVATE, MAP_SHARED};

    const PTES: usize = PMD_SIZE / PAGE_SIZE;

    /// Maps `n` PMDs of private anonymous memory, PMD-aligned, and returns their start.
    fn map_pmds(rec: &Recording, n: usize, flags: u32) -> Result<usize> {
        let map = map((n + 1) * PMD_SIZE, flags | MAP_NORESERVE)?;
        let addr = (map + PMD_SIZE - 1) & !(PMD_SIZE - 1);
        rec.set_base(addr);
        Ok(addr)
    }

    /// Writes one page in every `step`, from `addr` for `len` bytes; returns how many.
    fn fill(addr: usize, len: usize, step: usize) -> Result<usize> {
        let mut n = 0;
        for i in (0..len / PAGE_SIZE).step_by(step) {
            touch(addr + i * PAGE_SIZE, i as u8 | 1)?;
            n += 1;
        }
        Ok(n)
    }

    /// `pte_offset_map_lock()` finds the PMD none (a zap freed the PTE table, as
    /// `MADV_DONTNEED` can during NUMA hinting, which holds only the mmap read lock): `-EAGAIN`,
    /// the PMD is walked again, found none and skipped; the next PMD is walked as usual.
    #[test]
    fn eagain_pmd_gone() -> Result {
        under_each_walker(|run, rec| {
            let addr = map_pmds(rec, 2, MAP_PRIVATE)?;
            let (mid, end) = (addr + PMD_SIZE, addr + 2 * PMD_SIZE);
            madvise(addr, 2 * PMD_SIZE, MADV_NOHUGEPAGE)?;
            fill(addr, PMD_SIZE, 4)?;
            let second = fill(mid, PMD_SIZE, 8)?;

            let race = zap_at(Point::MapLock, 1, addr, PMD_SIZE);
            let (ret, seen) = change_racing(run, addr, end, 0, &[race])?;
            assert_eq!(ret, second as c_long);
            assert_eq!(seen.map_lock, 2);
            assert_eq!(seen.map_lock_failed, 1);
            let snap = snapshot(addr, end)?;
            assert!(snap[..PTES].iter().all(|e| *e == Entry::None));
            assert_eq!(count_entry(&snap[PTES..], |e| *e != Entry::None), second);
            run.record(snap)
        })?;
        Ok(())
    }

    /// The same under `UFFDIO_WRITEPROTECT` on shmem, where none PTEs get markers: the C
    /// walker's `goto again` populates the PMD again (a new PTE table) before the PTE level,
    /// which then installs a marker in every PTE of it; leaving the PMD instead would leave
    /// 2 MiB of the file without write protection, and count 512 fewer.
    #[test]
    fn eagain_pmd_gone_populate() -> Result {
        under_each_walker(|run, rec| {
            let addr = map_pmds(rec, 2, MAP_SHARED)?;
            let (mid, end) = (addr + PMD_SIZE, addr + 2 * PMD_SIZE);
            fill(addr, 2 * PMD_SIZE, 16)?;
            vma_modes(addr, bindings::MPROTECT_KUNIT_UFFD_WP)?;

            let race = zap_at(Point::MapLock, 1, addr, PMD_SIZE);
            let (ret, seen) = change_racing(run, addr, end, UFFD_WP, &[race])?;
            // Every PTE of both PMDs: markers where none, the uffd bit where present.
            assert_eq!(ret, (2 * PTES) as c_long);
            assert_eq!(seen.map_lock, 3);
            assert_eq!(seen.map_lock_failed, 1);
            let snap = snapshot(addr, end)?;
            assert_eq!(count_entry(&snap[..PTES], is_marker), PTES);
            assert_eq!(
                count_entry(&snap[PTES..], |e| matches!(
                    e,
                    Entry::Pte { uffd: true, .. }
                )),
                PTES / 16
            );
            run.record(snap)?;

            run.count(change(addr, end, UFFD_WP_RESOLVE))?;
            vma_modes(addr, 0)?;
            // The zapped pages are still in the file.
            assert_eq!(peek(addr)?, 1);
            assert_eq!(peek(mid)?, 1);
            run.record(snapshot(addr, end)?)
        })?;
        Ok(())
    }

    /// The same, with the new PTE table failing to allocate: the PMD loop ends with `-ENOMEM`
    /// in place of its count, as from its first populate step.
    #[test]
    fn eagain_repopulate_enomem() -> Result {
        let enomem = ENOMEM.to_errno() as c_long;
        under_each_walker(|run, rec| {
            let addr = map_pmds(rec, 1, MAP_SHARED)?;
            let end = addr + PMD_SIZE;
            fill(addr, PMD_SIZE, 16)?;
            vma_modes(addr, bindings::MPROTECT_KUNIT_UFFD_WP)?;

            let race = zap_at(Point::MapLock, 1, addr, PMD_SIZE);
            let (ret, seen) = {
                let _fail = FailAlloc::pte();
                change_racing(run, addr, end, UFFD_WP, &[race])?
            };
            assert_eq!(ret, enomem);
            assert_eq!(seen.map_lock, 1);
            assert_eq!(seen.map_lock_failed, 1);
            let snap = snapshot(addr, end)?;
            assert!(snap.iter().all(|e| *e == Entry::None));
            run.record(snap)?;
            vma_modes(addr, 0)?;
            assert_eq!(peek(addr)?, 1);
            Ok(())
        })?;
        Ok(())
    }

    /// `pte_offset_map_lock()` finds a huge PMD where the walker saw a PTE table (the table
    /// was freed and a fault mapped a THP): `-EAGAIN`, and the PMD walked again is changed
    /// whole by `change_huge_pmd()`.
    #[test]
    fn eagain_pmd_now_huge() -> Result {
        under_each_walker(|run, rec| {
            let addr = map_pmds(rec, 1, MAP_PRIVATE)?;
            let end = addr + PMD_SIZE;
            madvise(addr, PMD_SIZE, MADV_NOHUGEPAGE)?;
            fill(addr, PMD_SIZE, 4)?;
            // khugepaged must not collapse the PTE table before the walk: it leaves PMDs
            // with a uffd-wp protected PTE alone (`SCAN_PTE_UFFD_WP`).
            vma_modes(addr, bindings::MPROTECT_KUNIT_UFFD_WP)?;
            run.count(change(addr, addr + PAGE_SIZE, UFFD_WP))?;
            // The fault of the race may map a THP.
            madvise(addr, PMD_SIZE, MADV_HUGEPAGE)?;

            let races = [
                zap_at(Point::MapLock, 1, addr, PMD_SIZE),
                fault_at(Point::MapLock, 1, addr),
            ];
            let (ret, seen) = change_racing(run, addr, end, 0, &races)?;
            madvise(addr, PMD_SIZE, MADV_NOHUGEPAGE)?;
            vma_modes(addr, 0)?;
            assert_eq!(seen.map_lock, 1);
            assert_eq!(seen.map_lock_failed, 1);
            assert_eq!(seen.huge_pmd, 1);
            assert_eq!(seen.huge_pmd_zero, 0);
            assert_eq!(ret, PTES as c_long);
            let snap = snapshot(addr, end)?;
            assert!(snap.iter().all(|e| matches!(e, Entry::Pmd { .. })));
            run.record(snap)
        })?;
        Ok(())
    }

    /// Maps one PMD-aligned THP, then keeps khugepaged away; fails unless it is a THP.
    fn map_thp(rec: &Recording) -> Result<usize> {
        let addr = map_pmds(rec, 1, MAP_PRIVATE)?;
        madvise(addr, PMD_SIZE, MADV_HUGEPAGE)?;
        touch(addr, 1)?;
        madvise(addr, PMD_SIZE, MADV_NOHUGEPAGE)?;
        let snap = snapshot(addr, addr + PAGE_SIZE)?;
        if !matches!(snap[0], Entry::Pmd { write: true }) {
            pr_err!("no THP: {:?}\n", snap[0]);
            return Err(ENOMEM);
        }
        Ok(addr)
    }

    /// `change_huge_pmd()` finds the huge PMD split (between the walker's lockless read and
    /// the PMD lock): it returns 0 and the walker falls through to the PTE level, which
    /// changes every PTE of the split THP.
    #[test]
    fn huge_pmd_split_falls_through() -> Result {
        under_each_walker(|run, rec| {
            let addr = map_thp(rec)?;
            let end = addr + PMD_SIZE;
            let split = bindings::MPROTECT_RACE_SPLIT_PMD;
            let race = Race::new(Point::HugePmd, 1, split, addr, PMD_SIZE);
            let (ret, seen) = change_racing(run, addr, end, 0, &[race])?;
            assert_eq!(seen.huge_pmd, 1);
            assert_eq!(seen.huge_pmd_zero, 1);
            assert_eq!(seen.map_lock, 1);
            assert_eq!(seen.map_lock_failed, 0);
            assert_eq!(ret, PTES as c_long);
            let snap = snapshot(addr, end)?;
            assert!(snap.iter().all(|e| matches!(e, Entry::Pte { .. })));
            run.record(snap)?;
            assert_eq!(peek(addr)?, 1);
            Ok(())
        })?;
        Ok(())
    }

    /// `change_huge_pmd()` finds the huge PMD zapped: 0, the fall-through finds no PTE
    /// table either (`-EAGAIN`), and the PMD walked again is none.
    #[test]
    fn huge_pmd_zapped_falls_through() -> Result {
        under_each_walker(|run, rec| {
            let addr = map_thp(rec)?;
            let end = addr + PMD_SIZE;
            let race = zap_at(Point::HugePmd, 1, addr, PMD_SIZE);
            let (ret, seen) = change_racing(run, addr, end, 0, &[race])?;
            assert_eq!(seen.huge_pmd, 1);
            assert_eq!(seen.huge_pmd_zero, 1);
            assert_eq!(seen.map_lock, 1);
            assert_eq!(seen.map_lock_failed, 1);
            assert_eq!(ret, 0);
            let snap = snapshot(addr, end)?;
            assert!(snap.iter().all(|e| *e == Entry::None));
            run.record(snap)
        })?;
        Ok(())
    }

    /// A fault fills a PMD that the walker passed as none (under `UFFDIO_WRITEPROTECT`, which
    /// holds only the mmap read lock): the walker does not go back, so the new page keeps the
    /// protection the fault gave it (no uffd bit), as under the C walker. No retry path: the
    /// case pins down that neither walker has one here.
    #[test]
    fn fault_behind_the_walker() -> Result {
        under_each_walker(|run, rec| {
            let addr = map_pmds(rec, 3, MAP_PRIVATE)?;
            let end = addr + 3 * PMD_SIZE;
            madvise(addr, 3 * PMD_SIZE, MADV_NOHUGEPAGE)?;
            let filled = fill(addr + PMD_SIZE, 2 * PMD_SIZE, 32)?;
            vma_modes(addr, bindings::MPROTECT_KUNIT_UFFD_WP)?;

            let race = fault_at(Point::MapLock, 1, addr + PAGE_SIZE);
            let (ret, seen) = change_racing(run, addr, end, UFFD_WP, &[race])?;
            assert_eq!(ret, filled as c_long);
            assert_eq!(seen.map_lock, 2);
            assert_eq!(seen.map_lock_failed, 0);
            let snap = snapshot(addr, end)?;
            assert!(matches!(
                snap[1],
                Entry::Pte {
                    write: true,
                    uffd: false,
                    ..
                }
            ));
            assert_eq!(
                count_entry(&snap, |e| matches!(e, Entry::Pte { uffd: true, .. })),
                filled
            );
            run.record(snap)?;
            run.count(change(addr, end, UFFD_WP_RESOLVE))?;
            vma_modes(addr, 0)
        })?;
        Ok(())
    }
}
