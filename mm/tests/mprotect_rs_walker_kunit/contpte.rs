// SPDX-License-Identifier: GPL-2.0

//! Contiguous PTEs (arm64's contpte): 64K mTHP folios mapped with the contiguous bit, changed
//! whole and in part, under each walker.
//!
//! With `ARM64_CONTPTE`, the 16 PTEs that map a 64K-aligned, 64K folio with the same
//! attributes carry the contiguous bit. A walk that changes a whole block keeps it: it batches
//! the folio's 16 PTEs (`folio_pte_batch()`), `modify_prot_start_ptes()` clears them without
//! unfolding and `modify_prot_commit_ptes()` (`set_ptes()`) writes the whole block with the
//! bit again. A walk that changes part of a block unfolds the whole block first, and a
//! one-PTE commit of a block's last PTE folds the block again where it can. The snapshots
//! carry the bit (`MPROTECT_SNAP_CONT`, from `pte_leaf_size()` of what `ptep_get()` returns,
//! which lets the bit through), so the walkers are compared on it as on every other bit of
//! every page; the cases assert that it is set before a change and cleared where a change
//! splits a block, else they would pass without testing contpte at all.

use crate::harness::*;
use kernel::{
    ffi::c_long,
    page::PAGE_SIZE,
    prelude::*,
    uapi::{PROT_NONE, PROT_READ, PROT_WRITE},
};

/// Pages in a contpte block: 64K of 4K pages.
const BLOCK: usize = 16;
/// Blocks in a case's mapping.
const BLOCKS: usize = 4;
/// Pages in a case's mapping.
const NR: usize = BLOCKS * BLOCK;

/// The mapping of a case: `BLOCKS` 64K mTHP folios, written, at a 64K-aligned address in a
/// range too small for a PMD THP (`thp_anon=64K:madvise`, `scripts/lib.sh`), every page of
/// them contiguous.
struct Blocks {
    /// The mapping, twice the blocks' size, for the alignment.
    map: usize,
    /// The first page of the blocks, and the end of the last.
    addr: usize,
    end: usize,
    /// The snapshot after the faults.
    faulted: Snapshot,
}

impl Blocks {
    /// Maps and writes the blocks for the case `name`; fails unless every PTE is contiguous.
    fn new(rec: &Recording, name: &str) -> Result<Self> {
        let (map, addr) = map_touched_huge(NR, BLOCK)?;
        let end = addr + NR * PAGE_SIZE;
        rec.set_base(addr);
        let faulted = snapshot(addr, end)?;
        if !all_cont(&faulted, 0..NR, true) {
            pr_err!("{name}: no contpte blocks (64K mTHP, ARM64_CONTPTE?)\n");
            return Err(ENOMEM);
        }
        Ok(Self {
            map,
            addr,
            end,
            faulted,
        })
    }
}

/// Whether the pages `pages` of `snap` all have the contiguous bit (`cont`) or all lack it.
fn all_cont(snap: &Snapshot, mut pages: core::ops::Range<usize>, cont: bool) -> bool {
    pages.all(|i| snap.cont(i) == cont)
}

/// The pages of `snap` that are present PTEs whose write bit is `write`.
fn ptes(snap: &Snapshot, write: bool) -> usize {
    count_entry(
        snap,
        |e| matches!(e, Entry::Pte { write: w, .. } if *w == write),
    )
}

#[kunit_tests(mprotect_rs_contpte)]
mod tests {
    use super::*;

    /// Whole blocks: read-only, then read-write (the write upgrade of exclusive, dirty pages),
    /// then `PROT_NONE`, whose entries are not valid and so never contiguous, and read-write
    /// again. Every whole-block change keeps or restores the bit on every page.
    #[test]
    fn whole_blocks() -> Result {
        under_each_walker(|run, rec| {
            let Blocks {
                map,
                addr,
                end,
                faulted,
            } = Blocks::new(rec, "whole_blocks")?;
            assert_eq!(mprotect(addr, NR * PAGE_SIZE, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(ptes(&ro, false), NR);
            assert!(all_cont(&ro, 0..NR, true));
            assert_eq!(mprotect(addr, NR * PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            assert_eq!(ptes(&rw, true), NR);
            assert!(all_cont(&rw, 0..NR, true));
            assert_eq!(mprotect(addr, NR * PAGE_SIZE, PROT_NONE), 0);
            let none = snapshot(addr, end)?;
            assert_eq!(
                count_entry(&none, |e| matches!(e, Entry::Pte { protnone: true, .. })),
                NR
            );
            assert!(all_cont(&none, 0..NR, false));
            assert_eq!(mprotect(addr, NR * PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
            let again = snapshot(addr, end)?;
            assert!(all_cont(&again, 0..NR, true));
            assert_eq!(peek(addr + 21 * PAGE_SIZE)?, 21);

            run.record(faulted)?;
            run.record(ro)?;
            run.record(rw)?;
            run.record(none)?;
            run.record(again)?;
            unmap(map, 2 * NR * PAGE_SIZE)
        })?;
        Ok(())
    }

    /// Part of a block: `mprotect()` of pages 4 to 7 of block 1 (which splits the VMA, so the
    /// walk's batch is those four PTEs) unfolds the whole of block 1 and leaves the other
    /// blocks contiguous; then read-write again over the same pages.
    #[test]
    fn partial_mprotect_unfolds() -> Result {
        under_each_walker(|run, rec| {
            let Blocks {
                map,
                addr,
                end,
                faulted,
            } = Blocks::new(rec, "partial_mprotect_unfolds")?;
            let part = addr + (BLOCK + 4) * PAGE_SIZE;
            assert_eq!(mprotect(part, 4 * PAGE_SIZE, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(ptes(&ro, false), 4);
            assert!(all_cont(&ro, 0..BLOCK, true));
            assert!(all_cont(&ro, BLOCK..2 * BLOCK, false));
            assert!(all_cont(&ro, 2 * BLOCK..NR, true));
            assert_eq!(mprotect(part, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            assert_eq!(ptes(&rw, true), NR);
            assert!(all_cont(&rw, 0..BLOCK, true));
            // A commit of four PTEs writes them without the bit and folds nothing.
            assert!(all_cont(&rw, BLOCK..2 * BLOCK, false));
            assert!(all_cont(&rw, 2 * BLOCK..NR, true));
            assert_eq!(peek(part)?, (BLOCK + 4) as u8);

            run.record(faulted)?;
            run.record(ro)?;
            run.record(rw)?;
            unmap(map, 2 * NR * PAGE_SIZE)
        })?;
        Ok(())
    }

    /// Part of a block without a VMA split: `change_protection()` over pages 2 to 9 of block
    /// 2, to the VMA's own protection with the write upgrade (as `mprotect()` read-write asks
    /// it), changes no permission but still starts and commits a batch that covers part of
    /// the block, which unfolds it; a change of whole blocks 0 and 1 keeps theirs. Both
    /// count every PTE they commit.
    #[test]
    fn partial_change_unfolds() -> Result {
        under_each_walker(|run, rec| {
            let Blocks {
                map,
                addr,
                end,
                faulted,
            } = Blocks::new(rec, "partial_change_unfolds")?;
            let part = addr + (2 * BLOCK + 2) * PAGE_SIZE;
            let changed = change(part, part + 8 * PAGE_SIZE, TRY_CHANGE_WRITABLE);
            assert_eq!(changed, 8);
            run.count(changed)?;
            let partial = snapshot(addr, end)?;
            assert_eq!(ptes(&partial, true), NR);
            assert!(all_cont(&partial, 0..2 * BLOCK, true));
            assert!(all_cont(&partial, 2 * BLOCK..3 * BLOCK, false));
            assert!(all_cont(&partial, 3 * BLOCK..NR, true));
            let changed = change(addr, addr + 2 * BLOCK * PAGE_SIZE, TRY_CHANGE_WRITABLE);
            assert_eq!(changed, 2 * BLOCK as c_long);
            run.count(changed)?;
            let whole = snapshot(addr, end)?;
            assert_eq!(ptes(&whole, true), NR);
            assert!(all_cont(&whole, 0..2 * BLOCK, true));

            run.record(faulted)?;
            run.record(partial)?;
            run.record(whole)?;
            unmap(map, 2 * NR * PAGE_SIZE)
        })?;
        Ok(())
    }

    /// The last page of a block alone, a batch of one: read-only unfolds the block (its PTEs
    /// differ now), read-write again commits the block's last PTE alone, which folds the
    /// block again (`contpte_try_fold()`: the 16 PTEs map the folio's 16 pages with one
    /// protection).
    #[test]
    fn last_page_refolds() -> Result {
        under_each_walker(|run, rec| {
            let Blocks {
                map,
                addr,
                end,
                faulted,
            } = Blocks::new(rec, "last_page_refolds")?;
            let last = addr + (2 * BLOCK - 1) * PAGE_SIZE;
            assert_eq!(mprotect(last, PAGE_SIZE, PROT_READ), 0);
            let ro = snapshot(addr, end)?;
            assert_eq!(ptes(&ro, false), 1);
            assert!(all_cont(&ro, 0..BLOCK, true));
            assert!(all_cont(&ro, BLOCK..2 * BLOCK, false));
            assert!(all_cont(&ro, 2 * BLOCK..NR, true));
            assert_eq!(mprotect(last, PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
            let rw = snapshot(addr, end)?;
            assert_eq!(ptes(&rw, true), NR);
            assert!(all_cont(&rw, 0..NR, true));

            run.record(faulted)?;
            run.record(ro)?;
            run.record(rw)?;
            unmap(map, 2 * NR * PAGE_SIZE)
        })?;
        Ok(())
    }
}
