// Writing a PTE value is an unsafe operation: a value is only a number, and
// safe code cannot map an arbitrary page with it.
use kernel::mm::pgtable::{PmdSlot, Pte};

fn f(pmd: &mut PmdSlot<'_>, raw: kernel::bindings::pte_t) {
    let Some(ptes) = pmd.map_lock() else { return };
    ptes.set(0, Pte::from_raw(raw)); // ERROR: E0133
}
