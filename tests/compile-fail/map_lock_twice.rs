// Nor locked a second time (the same spinlock) while its table is held.
use kernel::mm::pgtable::PmdSlot;

fn f(pmd: &mut PmdSlot<'_>) {
    let Some(first) = pmd.map_lock() else { return };
    let second = pmd.map_lock(); // ERROR: E0499
    drop(first);
}
