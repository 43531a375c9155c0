// SPDX-License-Identifier: GPL-2.0

/*
 * Software leaf entries (swap, migration, device-private, markers) and the
 * uffd-wp and soft-dirty bits of page-table entries, for Rust.
 */

#include <linux/leafops.h>
#include <linux/mm.h>
#include <linux/swapops.h>
#include <linux/userfaultfd_k.h>

#ifdef CONFIG_MMU
__rust_helper softleaf_t rust_helper_softleaf_from_pte(pte_t pte)
{
	return softleaf_from_pte(pte);
}

__rust_helper bool rust_helper_softleaf_is_migration_write(softleaf_t entry)
{
	return softleaf_is_migration_write(entry);
}

__rust_helper bool rust_helper_softleaf_is_device_private(softleaf_t entry)
{
	return softleaf_is_device_private(entry);
}

__rust_helper bool rust_helper_softleaf_is_device_private_write(softleaf_t entry)
{
	return softleaf_is_device_private_write(entry);
}

__rust_helper bool rust_helper_softleaf_is_marker(softleaf_t entry)
{
	return softleaf_is_marker(entry);
}

__rust_helper bool rust_helper_softleaf_is_poison_marker(softleaf_t entry)
{
	return softleaf_is_poison_marker(entry);
}

__rust_helper bool rust_helper_softleaf_is_guard_marker(softleaf_t entry)
{
	return softleaf_is_guard_marker(entry);
}

__rust_helper struct folio *rust_helper_softleaf_to_folio(softleaf_t entry)
{
	return softleaf_to_folio(entry);
}

__rust_helper pgoff_t rust_helper_swp_offset(swp_entry_t entry)
{
	return swp_offset(entry);
}

__rust_helper pte_t rust_helper_swp_entry_to_pte(swp_entry_t entry)
{
	return swp_entry_to_pte(entry);
}

__rust_helper swp_entry_t
rust_helper_make_readable_migration_entry(pgoff_t offset)
{
	return make_readable_migration_entry(offset);
}

__rust_helper swp_entry_t
rust_helper_make_readable_exclusive_migration_entry(pgoff_t offset)
{
	return make_readable_exclusive_migration_entry(offset);
}

__rust_helper swp_entry_t
rust_helper_make_readable_device_private_entry(pgoff_t offset)
{
	return make_readable_device_private_entry(offset);
}

__rust_helper pte_t rust_helper_make_pte_marker_uffd_wp(void)
{
	return make_pte_marker(PTE_MARKER_UFFD_WP);
}

__rust_helper bool rust_helper_pte_swp_soft_dirty(pte_t pte)
{
	return pte_swp_soft_dirty(pte);
}

__rust_helper pte_t rust_helper_pte_swp_mksoft_dirty(pte_t pte)
{
	return pte_swp_mksoft_dirty(pte);
}

__rust_helper bool rust_helper_pte_swp_uffd(pte_t pte)
{
	return pte_swp_uffd(pte);
}

__rust_helper pte_t rust_helper_pte_swp_mkuffd(pte_t pte)
{
	return pte_swp_mkuffd(pte);
}

__rust_helper pte_t rust_helper_pte_swp_clear_uffd(pte_t pte)
{
	return pte_swp_clear_uffd(pte);
}

__rust_helper bool rust_helper_pte_uffd(pte_t pte)
{
	return pte_uffd(pte);
}

__rust_helper pte_t rust_helper_pte_mkuffd(pte_t pte)
{
	return pte_mkuffd(pte);
}

__rust_helper pte_t rust_helper_pte_clear_uffd(pte_t pte)
{
	return pte_clear_uffd(pte);
}

/* userfaultfd state of a VMA. */

__rust_helper bool rust_helper_userfaultfd_rwp(struct vm_area_struct *vma)
{
	return userfaultfd_rwp(vma);
}

__rust_helper bool rust_helper_userfaultfd_pte_wp(struct vm_area_struct *vma,
						  pte_t pte)
{
	return userfaultfd_pte_wp(vma, pte);
}

__rust_helper bool
rust_helper_userfaultfd_wp_use_markers(struct vm_area_struct *vma)
{
	return userfaultfd_wp_use_markers(vma);
}
#endif /* CONFIG_MMU */
