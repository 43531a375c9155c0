// SPDX-License-Identifier: GPL-2.0

//! The KUnit suite `mprotect_rs_guest`: cases that need what only user space sets up, a
//! 1 GiB device-DAX device with a 1 GiB alignment (its sysfs attribute) for PUD leaves, and
//! swap; and the one that needs a device node, device-private memory from `lib/test_hmm`.
//! Without PUD leaves (no THP, or no `CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD` as on arm64)
//! the PUD cases are not built and the device is not opened.
//!
//! So this suite runs after boot: `tests/guest/init` (`make run`) sets them up, then
//! starts the suite through `/sys/kernel/debug/kunit/mprotect_rs_guest/run`. Run during
//! boot, with the other suites, it skips.
//!
//! The suite is written out rather than made by `#[kunit_tests]`, for its `suite_init`: a
//! case that skipped itself during boot would stay skipped on every later run (KUnit takes
//! it for one that a filter left out), a suite that skipped as a whole does not.

use crate::harness::*;
use core::{ptr, sync::atomic::AtomicPtr, sync::atomic::Ordering};
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_ulong},
    page::PAGE_SIZE,
    prelude::*,
    uaccess::{UserPtr, UserSlice},
    uapi::{MADV_MERGEABLE, MADV_PAGEOUT, PROT_READ, PROT_WRITE},
};

/// KUnit's `assert!` for this suite's cases, as `#[kunit_tests]` defines it.
macro_rules! assert {
    ($cond:expr $(,)?) => {{
        kernel::kunit_assert!(
            "mprotect_rs_guest",
            c"mprotect_rs_walker_kunit/guest.rs",
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
            c"mprotect_rs_walker_kunit/guest.rs",
            0,
            $left,
            $right
        );
    }};
}

/// Whether boot is over: during boot no user space has set the device up yet.
fn booted() -> bool {
    // SAFETY: `system_state` is a plain enum that only moves forward; a racy read
    // sees an old or a new state, both valid.
    let state = unsafe { ptr::read_volatile(ptr::addr_of!(bindings::system_state)) };
    state == bindings::system_states_SYSTEM_RUNNING
}

/// A `lib/test_hmm` device, which moves pages to device-private memory.
const DMIRROR: &CStr = c"/dev/hmm_dmirror0";

/// [`DMIRROR`], opened by [`suite_init`] for its path (see [`Dmirror::open`]).
static DMIRROR_FILE: AtomicPtr<bindings::file> = AtomicPtr::new(ptr::null_mut());

/// The suite's `suite_init`: skips the suite during boot, else opens the devices.
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
    let dmirror = match open(DMIRROR) {
        Ok(file) => file,
        Err(e) => return e.to_errno(),
    };
    #[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
    {
        let dax = match open(pud::DEVICE) {
            Ok(file) => file,
            Err(e) => {
                // SAFETY: Drops the reference that `open()` returned.
                unsafe { bindings::fput(dmirror) };
                return e.to_errno();
            }
        };
        pud::DEVICE_FILE.store(dax, Ordering::Release);
    }
    DMIRROR_FILE.store(dmirror, Ordering::Release);
    0
}

/// Opens `path` for reading and writing, in the current task.
fn open(path: &CStr) -> Result<*mut bindings::file> {
    // SAFETY: `path` is NUL-terminated.
    let file = unsafe { bindings::filp_open(path.as_char_ptr(), bindings::O_RDWR as c_int, 0) };
    kernel::error::from_err_ptr(file).inspect_err(|e| pr_err!("cannot open {path}: {e:?}\n"))
}

/// The suite's `suite_exit`: closes the devices.
///
/// # Safety
///
/// Called by KUnit once the suite's cases have run.
unsafe extern "C" fn suite_exit(_: *mut bindings::kunit_suite) {
    #[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
    let files = [&pud::DEVICE_FILE, &DMIRROR_FILE];
    #[cfg(not(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD)))]
    let files = [&DMIRROR_FILE];
    for file in files {
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
    ($run:ident, $case:path) => {
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

#[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
case!(run_pud_full_partial, pud::pud_full_partial);
#[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
case!(run_pud_random, pud::pud_random);
case!(run_swap_entries, swap_entries);
case!(run_device_private_entries, device_private_entries);
case!(run_ksm_numa_hinting, ksm_numa_hinting);
#[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
case!(run_pud_zapped_retries, pud::pud_zapped_retries);

#[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
static mut TEST_CASES: [bindings::kunit_case; 7] = [
    kernel::kunit::kunit_case(c"pud_full_partial", run_pud_full_partial),
    kernel::kunit::kunit_case(c"pud_random", run_pud_random),
    kernel::kunit::kunit_case(c"swap_entries", run_swap_entries),
    kernel::kunit::kunit_case(c"device_private_entries", run_device_private_entries),
    kernel::kunit::kunit_case(c"ksm_numa_hinting", run_ksm_numa_hinting),
    kernel::kunit::kunit_case(c"pud_zapped_retries", run_pud_zapped_retries),
    // SAFETY: All-zero is the case that ends the array.
    unsafe { core::mem::zeroed() },
];

/// Without PUD leaves, the cases that need no device-DAX device.
#[cfg(not(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD)))]
static mut TEST_CASES: [bindings::kunit_case; 4] = [
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

/// The cases on the 1 GiB PUD leaf of the device-DAX device: only where PUD leaves exist
/// (`CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD` with THP: x86_64); elsewhere the suite neither
/// has them nor opens the device.
#[cfg(all(CONFIG_TRANSPARENT_HUGEPAGE, CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD))]
mod pud {
    use super::*;
    use crate::races::{change_racing, fault_at, zap_at, Point};
    use core::cell::Cell;
    use kernel::{
        error::Error,
        uapi::{MAP_SHARED, PROT_NONE},
    };

    pub(super) const DEVICE: &CStr = c"/dev/dax0.0";
    const PAGES: usize = PUD_SIZE / PAGE_SIZE;
    /// The scenarios write, and read back, one byte every this many pages.
    const STRIDE: usize = 1024;

    /// The device, opened by [`suite_init`] and closed by [`suite_exit`].
    pub(super) static DEVICE_FILE: AtomicPtr<bindings::file> = AtomicPtr::new(ptr::null_mut());

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

    /// `change_huge_pud()` finds the PUD leaf zapped (between the walker's read of the PUD and
    /// the PUD lock): it returns 0 and the walker reads the PUD again. Zapped only, the PUD is
    /// none and skipped; zapped and faulted in again, the new leaf is changed. The data stays on
    /// the device throughout.
    pub(super) fn pud_zapped_retries() -> Result {
        let salt = Cell::new(0u8);
        under_each_walker(|run, rec| {
            salt.set(salt.get().wrapping_add(0x3d));
            let s = salt.get();
            let addr = map_device()?;
            let end = addr + PUD_SIZE;
            rec.set_base(addr);
            fill(addr, s)?;
            assert!(snapshot(addr, end)?.iter().all(is_pud(true)));

            let race = zap_at(Point::HugePud, 1, addr, PUD_SIZE);
            let (ret, seen) = change_racing(run, addr, end, 0, &[race])?;
            assert_eq!(ret, 0);
            assert_eq!(seen.huge_pud, 1);
            assert_eq!(seen.huge_pud_zero, 1);
            assert_eq!(seen.map_lock, 0);
            let zapped = snapshot(addr, end)?;
            assert!(zapped.iter().all(|e| *e == Entry::None));
            assert_eq!(bad_bytes(addr, s)?, 0);
            assert!(snapshot(addr, end)?.iter().all(is_pud(true)));

            // The leaf is back when the walker reads the PUD again.
            let refault = fault_at(Point::HugePud, 1, addr).after();
            let (ret, seen) = change_racing(run, addr, end, 0, &[race, refault])?;
            assert_eq!(ret, PAGES as c_long);
            assert_eq!(seen.huge_pud, 2);
            assert_eq!(seen.huge_pud_zero, 1);
            let changed = snapshot(addr, end)?;
            assert!(changed.iter().all(is_pud(true)));
            assert_eq!(bad_bytes(addr, s)?, 0);
            run.count(digest(&zapped))?;
            run.count(digest(&changed))?;
            unmap(addr, PUD_SIZE)
        })?;
        Ok(())
    }

    /// The whole PUD leaf read-only (change_huge_pud(); a write faults, the data stays),
    /// `PROT_NONE` (a read faults), read-write again; then a one-page change inside the
    /// leaf, which splits it (for device-DAX: unmaps it) and retries, so that the next
    /// access faults the leaf in again, data intact.
    pub(super) fn pud_full_partial() -> Result {
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
    pub(super) fn pud_random() -> Result {
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
