// SPDX-License-Identifier: GPL-2.0

/*
 * Page-table accessors for Rust.
 *
 * Each helper wraps one static inline function or macro of <linux/pgtable.h>
 * (or of the architecture's pgtable.h behind it) without changing its
 * semantics.  Predicates return bool.
 */

#include <linux/mm.h>
#include <linux/pgtable.h>

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

/* Entry reads. */

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

__rust_helper pte_t rust_helper_ptep_get(pte_t *ptep)
{
	return ptep_get(ptep);
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

__rust_helper bool rust_helper_pte_write(pte_t pte)
{
	return pte_write(pte);
}

__rust_helper bool rust_helper_pte_dirty(pte_t pte)
{
	return pte_dirty(pte);
}

__rust_helper unsigned long rust_helper_pte_pfn(pte_t pte)
{
	return pte_pfn(pte);
}

__rust_helper struct page *rust_helper_pte_page(pte_t pte)
{
	return pte_page(pte);
}
