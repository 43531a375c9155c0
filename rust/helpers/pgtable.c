// SPDX-License-Identifier: GPL-2.0

/*
 * Page-table accessors for Rust.
 *
 * Each helper wraps one static inline function or macro of <linux/pgtable.h>,
 * <linux/mm.h> or the architecture's pgtable.h behind them, without changing
 * its semantics.  Predicates return bool.
 */

#include <linux/mm.h>
#include <linux/pgtable.h>

#ifdef CONFIG_MMU
/* Table pointers, one level at a time. */

__rust_helper pgd_t *rust_helper_pgd_offset(struct mm_struct *mm,
					    unsigned long addr)
{
	return pgd_offset(mm, addr);
}

__rust_helper p4d_t *rust_helper_p4d_offset(pgd_t *pgd, unsigned long addr)
{
	return p4d_offset(pgd, addr);
}

__rust_helper pud_t *rust_helper_pud_offset(p4d_t *p4d, unsigned long addr)
{
	return pud_offset(p4d, addr);
}

__rust_helper pmd_t *rust_helper_pmd_offset(pud_t *pud, unsigned long addr)
{
	return pmd_offset(pud, addr);
}

__rust_helper pte_t *rust_helper_pte_offset_map_lock(struct mm_struct *mm,
						     pmd_t *pmd,
						     unsigned long addr,
						     spinlock_t **ptlp)
{
	return pte_offset_map_lock(mm, pmd, addr, ptlp);
}

__rust_helper void rust_helper_pte_unmap_unlock(pte_t *pte, spinlock_t *ptl)
{
	pte_unmap_unlock(pte, ptl);
}

/* End of the range covered by one entry, clamped to @end. */

__rust_helper unsigned long rust_helper_pgd_addr_end(unsigned long addr,
						     unsigned long end)
{
	return pgd_addr_end(addr, end);
}

__rust_helper unsigned long rust_helper_p4d_addr_end(unsigned long addr,
						     unsigned long end)
{
	return p4d_addr_end(addr, end);
}

__rust_helper unsigned long rust_helper_pud_addr_end(unsigned long addr,
						     unsigned long end)
{
	return pud_addr_end(addr, end);
}

__rust_helper unsigned long rust_helper_pmd_addr_end(unsigned long addr,
						     unsigned long end)
{
	return pmd_addr_end(addr, end);
}

/* Lower-level table allocation; they return 0 or -ENOMEM. */

__rust_helper int rust_helper_p4d_alloc(struct mm_struct *mm, pgd_t *pgd,
					unsigned long addr)
{
	return p4d_alloc(mm, pgd, addr) ? 0 : -ENOMEM;
}

__rust_helper int rust_helper_pud_alloc(struct mm_struct *mm, p4d_t *p4d,
					unsigned long addr)
{
	return pud_alloc(mm, p4d, addr) ? 0 : -ENOMEM;
}

__rust_helper int rust_helper_pmd_alloc(struct mm_struct *mm, pud_t *pud,
					unsigned long addr)
{
	return pmd_alloc(mm, pud, addr) ? 0 : -ENOMEM;
}

__rust_helper int rust_helper_pte_alloc(struct mm_struct *mm, pmd_t *pmd)
{
	return pte_alloc(mm, pmd) ? -ENOMEM : 0;
}

/* Entry reads and writes. */

__rust_helper pgd_t rust_helper_pgdp_get(pgd_t *pgdp)
{
	return pgdp_get(pgdp);
}

__rust_helper p4d_t rust_helper_p4dp_get(p4d_t *p4dp)
{
	return p4dp_get(p4dp);
}

__rust_helper pud_t rust_helper_pudp_get(pud_t *pudp)
{
	return pudp_get(pudp);
}

__rust_helper pmd_t rust_helper_pmdp_get(pmd_t *pmdp)
{
	return pmdp_get(pmdp);
}

__rust_helper pmd_t rust_helper_pmdp_get_lockless(pmd_t *pmdp)
{
	return pmdp_get_lockless(pmdp);
}

__rust_helper pte_t rust_helper_ptep_get(pte_t *ptep)
{
	return ptep_get(ptep);
}

__rust_helper bool rust_helper_pgd_none_or_clear_bad(pgd_t *pgd)
{
	return pgd_none_or_clear_bad(pgd);
}

__rust_helper bool rust_helper_p4d_none_or_clear_bad(p4d_t *p4d)
{
	return p4d_none_or_clear_bad(p4d);
}

__rust_helper void rust_helper_set_pte_at(struct mm_struct *mm,
					  unsigned long addr, pte_t *ptep,
					  pte_t pte)
{
	set_pte_at(mm, addr, ptep, pte);
}

__rust_helper void rust_helper_pte_clear(struct mm_struct *mm,
					 unsigned long addr, pte_t *ptep)
{
	pte_clear(mm, addr, ptep);
}

__rust_helper pte_t rust_helper_modify_prot_start_ptes(struct vm_area_struct *vma,
						       unsigned long addr,
						       pte_t *ptep,
						       unsigned int nr)
{
	return modify_prot_start_ptes(vma, addr, ptep, nr);
}

__rust_helper void rust_helper_modify_prot_commit_ptes(struct vm_area_struct *vma,
						       unsigned long addr,
						       pte_t *ptep, pte_t old_pte,
						       pte_t pte, unsigned int nr)
{
	modify_prot_commit_ptes(vma, addr, ptep, old_pte, pte, nr);
}

__rust_helper void rust_helper_lazy_mmu_mode_enable(void)
{
	lazy_mmu_mode_enable();
}

__rust_helper void rust_helper_lazy_mmu_mode_disable(void)
{
	lazy_mmu_mode_disable();
}

/* Entry predicates. */

__rust_helper bool rust_helper_pgd_none(pgd_t pgd)
{
	return pgd_none(pgd);
}

__rust_helper bool rust_helper_pgd_bad(pgd_t pgd)
{
	return pgd_bad(pgd);
}

__rust_helper bool rust_helper_p4d_none(p4d_t p4d)
{
	return p4d_none(p4d);
}

__rust_helper bool rust_helper_p4d_bad(p4d_t p4d)
{
	return p4d_bad(p4d);
}

__rust_helper bool rust_helper_pud_none(pud_t pud)
{
	return pud_none(pud);
}

__rust_helper bool rust_helper_pud_bad(pud_t pud)
{
	return pud_bad(pud);
}

__rust_helper bool rust_helper_pud_leaf(pud_t pud)
{
	return pud_leaf(pud);
}

__rust_helper bool rust_helper_pud_present(pud_t pud)
{
	return pud_present(pud);
}

__rust_helper bool rust_helper_pud_write(pud_t pud)
{
	return pud_write(pud);
}

__rust_helper bool rust_helper_pmd_none(pmd_t pmd)
{
	return pmd_none(pmd);
}

__rust_helper bool rust_helper_pmd_bad(pmd_t pmd)
{
	return pmd_bad(pmd);
}

__rust_helper bool rust_helper_pmd_leaf(pmd_t pmd)
{
	return pmd_leaf(pmd);
}

__rust_helper bool rust_helper_pte_none(pte_t pte)
{
	return pte_none(pte);
}

__rust_helper bool rust_helper_pte_present(pte_t pte)
{
	return pte_present(pte);
}

__rust_helper bool rust_helper_pte_protnone(pte_t pte)
{
	return pte_protnone(pte);
}

__rust_helper bool rust_helper_pte_write(pte_t pte)
{
	return pte_write(pte);
}

__rust_helper bool rust_helper_pte_dirty(pte_t pte)
{
	return pte_dirty(pte);
}

__rust_helper bool rust_helper_pte_soft_dirty(pte_t pte)
{
	return pte_soft_dirty(pte);
}

__rust_helper bool rust_helper_pgtable_supports_soft_dirty(void)
{
	return pgtable_supports_soft_dirty();
}

__rust_helper bool rust_helper_pte_same(pte_t a, pte_t b)
{
	return pte_same(a, b);
}

__rust_helper unsigned long rust_helper_pte_pfn(pte_t pte)
{
	return pte_pfn(pte);
}

__rust_helper bool rust_helper_is_zero_pfn(unsigned long pfn)
{
	return is_zero_pfn(pfn);
}

__rust_helper struct page *rust_helper_pte_page(pte_t pte)
{
	return pte_page(pte);
}

/* Entry changes. */

__rust_helper pte_t rust_helper_pte_modify(pte_t pte, pgprot_t newprot)
{
	return pte_modify(pte, newprot);
}

__rust_helper pte_t rust_helper_pte_mkwrite(pte_t pte,
					    struct vm_area_struct *vma)
{
	return pte_mkwrite(pte, vma);
}

__rust_helper pte_t rust_helper_pte_advance_pfn(pte_t pte, unsigned long nr)
{
	return pte_advance_pfn(pte, nr);
}

__rust_helper pgprot_t rust_helper_page_none(void)
{
	return PAGE_NONE;
}

__rust_helper bool rust_helper_pmd_write(pmd_t pmd)
{
	return pmd_write(pmd);
}
#endif /* CONFIG_MMU */
