/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry points into mm/mprotect.c for the tests of the mprotect page-table
 * walkers (CONFIG_MPROTECT_TEST_HOOKS): the KUnit suites of mm/tests/ and
 * the debugfs files of CONFIG_MPROTECT_DEBUGFS_CHANGE.
 */
#ifndef _LINUX_MPROTECT_TEST_H
#define _LINUX_MPROTECT_TEST_H

#include <linux/types.h>

struct mmu_gather;

#if defined(CONFIG_MPROTECT_TEST_HOOKS) && IS_ENABLED(CONFIG_KUNIT)
#include <kunit/static_stub.h>
/*
 * A KUnit static stub at the top of @fn, for the tests of the mprotect
 * walkers: the page-table allocations, so that a test can make them fail,
 * and the calls through which the walkers meet concurrent changes
 * (pte_offset_map_lock(), change_huge_pmd(), change_huge_pud()), so that a
 * test can make such a change at that point and count what the call found.
 * Only a KUnit test's own task is redirected, and not while it exits: the
 * test's thread tears its mm down (exit_mmap() calls pte_offset_map_lock())
 * after the test has ended, with current->kunit_test still pointing at the
 * test, which KUnit may be cleaning up by then.  Otherwise it costs a static
 * branch, and nothing without this option or without KUnit (the debugfs
 * files of CONFIG_MPROTECT_DEBUGFS_CHANGE need the hooks, not KUnit).
 */
#define MPROTECT_TEST_STUB(fn, args...)					\
do {									\
	if (kunit_get_current_test() && !(current->flags & PF_EXITING))	\
		KUNIT_STATIC_STUB_REDIRECT(fn, args);			\
} while (0)
#else
#define MPROTECT_TEST_STUB(fn, args...)	((void)(fn))
#endif

#ifdef CONFIG_MPROTECT_TEST_HOOKS
int mprotect_for_kunit(unsigned long start, size_t len, unsigned long prot);
long change_protection_for_kunit(unsigned long start, unsigned long end,
				 unsigned long cp_flags);

/* The modes of mprotect_vma_modes_for_kunit(). */
enum {
	MPROTECT_KUNIT_UFFD_WP = 1 << 0,
	MPROTECT_KUNIT_UFFD_RWP = 1 << 1,
};

int mprotect_vma_modes_for_kunit(unsigned long addr, unsigned int modes);

/* One page of mprotect_snapshot_for_kunit(): a kind, flags and a PFN. */
enum {
	MPROTECT_SNAP_NONE = 0,
	MPROTECT_SNAP_PTE = 1,		/* a present PTE */
	MPROTECT_SNAP_LEAF = 2,		/* a non-present, non-none PTE */
	MPROTECT_SNAP_PMD = 3,		/* part of a huge PMD */
	MPROTECT_SNAP_PUD = 4,		/* part of a huge PUD */
	MPROTECT_SNAP_HUGETLB = 5,	/* part of a hugetlb page */
	MPROTECT_SNAP_KIND = 7,
	MPROTECT_SNAP_PRESENT = 1 << 3,	/* PUD and hugetlb only */
	MPROTECT_SNAP_WRITE = 1 << 4,	/* also of leaf entries */
	MPROTECT_SNAP_DIRTY = 1 << 5,
	MPROTECT_SNAP_SOFT_DIRTY = 1 << 6,
	MPROTECT_SNAP_PROTNONE = 1 << 7,
	MPROTECT_SNAP_UFFD = 1 << 8,
	MPROTECT_SNAP_MARKER = 1 << 9,
	MPROTECT_SNAP_GUARD = 1 << 10,
	MPROTECT_SNAP_MIGRATION = 1 << 11,
	MPROTECT_SNAP_DEVICE = 1 << 12,
	MPROTECT_SNAP_CONT = 1 << 13,	/* arm64's contiguous bit (contpte) */
	MPROTECT_SNAP_PFN_SHIFT = 16,
};

/* The actions of mprotect_race_for_kunit(). */
enum {
	MPROTECT_RACE_ZAP = 1,		/* MADV_DONTNEED, freeing empty tables */
	MPROTECT_RACE_FAULT = 2,	/* a write fault */
	MPROTECT_RACE_SPLIT_PMD = 3,	/* split a huge PMD */
};

int mprotect_race_for_kunit(unsigned long addr, unsigned long len,
			    unsigned int action);

int mprotect_snapshot_for_kunit(unsigned long start, unsigned long end,
				u64 *out);

/* The words of mprotect_gather_for_kunit(). */
enum {
	MPROTECT_GATHER_START = 0,	/* the range to flush, 0 and 0 if none */
	MPROTECT_GATHER_END = 1,
	MPROTECT_GATHER_FLAGS = 2,	/* MPROTECT_GATHER_* bits below */
	MPROTECT_GATHER_PAGE_SIZE = 3,	/* 0 unless MMU_GATHER_PAGE_SIZE */
	MPROTECT_GATHER_WORDS = 4,
};

/* The bits of the MPROTECT_GATHER_FLAGS word. */
enum {
	MPROTECT_GATHER_PTES = 1 << 0,		/* cleared_ptes */
	MPROTECT_GATHER_PMDS = 1 << 1,		/* cleared_pmds */
	MPROTECT_GATHER_PUDS = 1 << 2,		/* cleared_puds */
	MPROTECT_GATHER_P4DS = 1 << 3,		/* cleared_p4ds */
	MPROTECT_GATHER_FREED_TABLES = 1 << 4,
	MPROTECT_GATHER_FLUSH_ALL = 1 << 5,	/* need_flush_all */
	MPROTECT_GATHER_VMA_EXEC = 1 << 6,
	MPROTECT_GATHER_VMA_HUGE = 1 << 7,
	MPROTECT_GATHER_VMA_PFN = 1 << 8,
};

void mprotect_gather_for_kunit(const struct mmu_gather *tlb, u64 *out);
#ifdef CONFIG_HUGETLB_PAGE
unsigned long mprotect_mmap_hugetlb_for_kunit(unsigned long len);
#endif
#endif /* CONFIG_MPROTECT_TEST_HOOKS */

#if defined(CONFIG_MPROTECT_TEST_HOOKS) && IS_ENABLED(CONFIG_KUNIT)
void mprotect_walked_for_kunit(struct mmu_gather *tlb);
#else
static inline void mprotect_walked_for_kunit(struct mmu_gather *tlb)
{
}
#endif

#endif /* _LINUX_MPROTECT_TEST_H */
