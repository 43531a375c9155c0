// SPDX-License-Identifier: GPL-2.0

/*
 * Huge PMD and PUD operations of <linux/huge_mm.h> for Rust.  Without
 * CONFIG_TRANSPARENT_HUGEPAGE (or its PUD variant) these are static inline
 * stubs; with it they are real functions, which bindgen binds directly and
 * these helpers go unused.
 *
 * change_huge_pmd() has no stub: it is declared in every configuration but
 * defined only with CONFIG_TRANSPARENT_HUGEPAGE, so Rust calls it only then
 * (kernel::mm::pgtable), and there is no helper for it.
 */

#include <linux/huge_mm.h>
#include <linux/mm.h>

#ifdef CONFIG_MMU
__rust_helper bool rust_helper_pmd_is_huge(pmd_t pmd)
{
	return pmd_is_huge(pmd);
}

__rust_helper int rust_helper_change_huge_pud(struct mmu_gather *tlb,
					      struct vm_area_struct *vma,
					      pud_t *pud, unsigned long addr,
					      pgprot_t newprot,
					      unsigned long cp_flags)
{
	return change_huge_pud(tlb, vma, pud, addr, newprot, cp_flags);
}

__rust_helper void rust_helper___split_huge_pmd(struct vm_area_struct *vma,
						pmd_t *pmd, unsigned long addr,
						bool freeze)
{
	__split_huge_pmd(vma, pmd, addr, freeze);
}

__rust_helper void rust_helper___split_huge_pud(struct vm_area_struct *vma,
						pud_t *pud, unsigned long addr)
{
	__split_huge_pud(vma, pud, addr);
}
#endif /* CONFIG_MMU */
