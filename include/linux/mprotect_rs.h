/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Rust page-table walker of mprotect (mm/mprotect_rs.rs) and the parts
 * of mm/ it shares with the C walker.
 *
 * The mprotect_rs_*() functions give the Rust walker the mm-internal
 * helpers of mm/internal.h that the C walker uses, without copying them.
 */
#ifndef _LINUX_MPROTECT_RS_H
#define _LINUX_MPROTECT_RS_H

#include <linux/types.h>
#include <linux/pgtable.h>

struct folio;
struct mm_struct;
struct mmu_gather;
struct vm_area_struct;

#ifdef CONFIG_MPROTECT_RS
/* mm/mprotect_rs.rs: the Rust change_protection_range(). */
long rust_change_protection_range(struct mmu_gather *tlb,
				  struct vm_area_struct *vma,
				  unsigned long addr, unsigned long end,
				  pgprot_t newprot, unsigned long cp_flags);

/*
 * mm/internal.h: the functions of it that the Rust walker calls directly,
 * declared again under the same conditions for the Rust bindings.
 * mm/mprotect_rs_shared.c includes both headers, so the compiler checks
 * that the declarations agree.  Where mm/internal.h has an inline stub
 * instead, the walker does what the stub does: nothing
 * (flush_tlb_batched_pending()), or false (folio_can_map_prot_numa()).
 */
#ifdef CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH
void flush_tlb_batched_pending(struct mm_struct *mm);
#endif
#ifdef CONFIG_NUMA_BALANCING
bool folio_can_map_prot_numa(struct folio *folio, struct vm_area_struct *vma,
			     bool is_private_single_threaded);
#endif

/*
 * mm/mprotect_rs_shared.c: wrappers of static inline helpers of
 * mm/internal.h, for the Rust walker only.
 */
unsigned int mprotect_rs_folio_pte_batch(struct folio *folio, pte_t *ptep,
					 pte_t *ptentp, unsigned int max_nr,
					 bool respect);
bool mprotect_rs_vma_is_single_threaded_private(struct vm_area_struct *vma);
#endif /* CONFIG_MPROTECT_RS */

#endif /* _LINUX_MPROTECT_RS_H */
