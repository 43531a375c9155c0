// SPDX-License-Identifier: GPL-2.0

/*
 * Huge PMD and PUD operations of <linux/huge_mm.h> for Rust.  pmd_is_huge()
 * is always static inline.  __split_huge_pmd() without
 * CONFIG_TRANSPARENT_HUGEPAGE, and __split_huge_pud() and change_huge_pud()
 * without CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD, are static inline stubs;
 * otherwise they are real functions, which bindgen binds directly, and these
 * helpers go unused.
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
