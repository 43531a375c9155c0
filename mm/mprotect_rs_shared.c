// SPDX-License-Identifier: GPL-2.0
/*
 * What the Rust mprotect walker (mm/mprotect_rs.rs) shares with the C one
 * (mm/mprotect.c): the static inline helpers of mm/internal.h that both
 * use, as functions the Rust walker can call.
 *
 * They live in a file of their own so that the C walker's code does not
 * depend on them: beside the C walker in mm/mprotect.c, a second caller of
 * folio_pte_batch_flags() made clang keep one out-of-line copy for both
 * (seen on arm64), which changed the C walker's code and cost the Rust
 * walker a second call per batch.
 *
 * This file includes both mm/internal.h and <linux/mprotect_rs.h>, so the
 * compiler checks that the declarations the latter repeats for the Rust
 * bindings agree with the former's.
 */
#include <linux/mm.h>
#include <linux/mprotect_rs.h>

#include "internal.h"

unsigned int mprotect_rs_folio_pte_batch(struct folio *folio, pte_t *ptep,
					 pte_t *ptentp, unsigned int max_nr,
					 bool respect)
{
	const fpb_t flags = respect ?
		FPB_RESPECT_SOFT_DIRTY | FPB_RESPECT_WRITE : 0;

	return folio_pte_batch_flags(folio, NULL, ptep, ptentp, max_nr, flags);
}

bool mprotect_rs_vma_is_single_threaded_private(struct vm_area_struct *vma)
{
#ifndef CONFIG_NUMA_BALANCING
	/*
	 * <linux/mprotect_rs.h> declares folio_can_map_prot_numa() only with
	 * NUMA balancing, and the Rust walker otherwise takes it as false: so
	 * must the stub of mm/internal.h be (it fails to build if the stub
	 * goes, or returns anything else).
	 */
	BUILD_BUG_ON(folio_can_map_prot_numa(NULL, NULL, false));
#endif
	return vma_is_single_threaded_private(vma);
}
