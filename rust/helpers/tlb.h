/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of the helpers in tlb.c, for bindgen.
 *
 * bindgen always runs with -DMODULE, and under MODULE <asm/tlb.h> cannot be
 * included on x86, where flush_tlb_mm_range() and pte_needs_flush() are
 * declared for built-in code only.  tlb.c therefore defines its helpers for
 * built-in code only, and gives bindgen these prototypes instead.
 */
#ifndef _RUST_HELPERS_TLB_H
#define _RUST_HELPERS_TLB_H

#include <linux/mm_types.h>
#include <linux/pgtable.h>

struct mmu_gather;

void rust_helper_tlb_start_vma(struct mmu_gather *tlb,
			       struct vm_area_struct *vma);
void rust_helper_tlb_end_vma(struct mmu_gather *tlb,
			     struct vm_area_struct *vma);
void rust_helper_tlb_change_page_size(struct mmu_gather *tlb,
				      unsigned int page_size);
void rust_helper_tlb_flush_pte_range(struct mmu_gather *tlb,
				     unsigned long address,
				     unsigned long size);
bool rust_helper_pte_needs_flush(pte_t oldpte, pte_t newpte);

#endif /* _RUST_HELPERS_TLB_H */
