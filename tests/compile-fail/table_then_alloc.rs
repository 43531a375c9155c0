// A PmdSlot's PTE table borrows the slot mutably: the slot cannot be populated
// (pte_alloc(), which sleeps) while its table, a spinlock, is held.
use kernel::mm::pgtable::PmdSlot;

fn f(pmd: &mut PmdSlot<'_>) {
    let Some(ptes) = pmd.map_lock() else { return };
    let _ = pmd.alloc_pte(); // ERROR: E0502
    drop(ptes);
}
