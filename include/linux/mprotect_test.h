/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry points into mm/mprotect.c for the tests of the mprotect page-table
 * walkers (CONFIG_MPROTECT_TEST_HOOKS): the KUnit suites of mm/tests/ and
 * the debugfs files of CONFIG_MPROTECT_DEBUGFS_CHANGE.
 */
#ifndef _LINUX_MPROTECT_TEST_H
#define _LINUX_MPROTECT_TEST_H

#include <linux/types.h>

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
#endif /* CONFIG_MPROTECT_TEST_HOOKS */

#endif /* _LINUX_MPROTECT_TEST_H */
