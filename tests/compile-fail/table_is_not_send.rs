// A PTE table (a spinlock held and an RCU read-side section entered by this
// task) cannot be sent to another task.
use kernel::mm::pgtable::{PmdSlot, PteTable};

fn send<T: Send>(_: T) {}

fn f(pmd: &mut PmdSlot<'_>) {
    let Some(ptes) = pmd.map_lock() else { return };
    send(ptes); // ERROR: E0277
}
