// Nor split (__split_huge_pmd(), which sleeps) while its table is held.
use kernel::mm::pgtable::PmdSlot;

fn f(pmd: &mut PmdSlot<'_>) {
    let Some(ptes) = pmd.map_lock() else { return };
    pmd.split_huge(); // ERROR: E0502
    drop(ptes);
}
