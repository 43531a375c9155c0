// SPDX-License-Identifier: GPL-2.0

/*
 * struct mmu_gather operations of <asm/tlb.h>, for Rust.
 *
 * <asm/tlb.h> and the TLB flush interface behind it are for built-in code
 * only (x86 declares flush_tlb_mm_range() and pte_needs_flush() only without
 * MODULE), so these helpers are defined for built-in Rust code only.  bindgen
 * always runs with -DMODULE and is given their prototypes alone (tlb.h).
 * Like the other page-table helpers, they exist only with CONFIG_MMU.
 */

#include <linux/mm.h>

#ifdef __BINDGEN__
#include "tlb.h"
#elif !defined(MODULE) && defined(CONFIG_MMU)
#include <asm/tlbflush.h>
#include <asm/tlb.h>

__rust_helper void rust_helper_tlb_start_vma(struct mmu_gather *tlb,
					     struct vm_area_struct *vma)
{
	tlb_start_vma(tlb, vma);
}

__rust_helper void rust_helper_tlb_end_vma(struct mmu_gather *tlb,
					   struct vm_area_struct *vma)
{
	tlb_end_vma(tlb, vma);
}

__rust_helper void rust_helper_tlb_change_page_size(struct mmu_gather *tlb,
						    unsigned int page_size)
{
	tlb_change_page_size(tlb, page_size);
}

__rust_helper void rust_helper_tlb_flush_pte_range(struct mmu_gather *tlb,
						   unsigned long address,
						   unsigned long size)
{
	tlb_flush_pte_range(tlb, address, size);
}

__rust_helper bool rust_helper_pte_needs_flush(pte_t oldpte, pte_t newpte)
{
	return pte_needs_flush(oldpte, newpte);
}
#endif /* __BINDGEN__ */
