// Lazy MMU mode is left before the table it was entered under is unlocked.
use kernel::mm::pgtable::PmdSlot;

fn f(pmd: &mut PmdSlot<'_>) {
    let Some(ptes) = pmd.map_lock() else { return };
    let lazy = ptes.lazy_mmu();
    drop(ptes); // ERROR: E0505
    drop(lazy);
}
