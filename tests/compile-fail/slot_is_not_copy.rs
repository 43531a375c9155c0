// A slot is not Copy: a copy of it could be locked while the original's table
// is held.
use kernel::mm::pgtable::PmdSlot;

fn f(pmd: PmdSlot<'_>) {
    let mut copy = pmd;
    let _ = copy.map_lock();
    let _ = pmd.addr(); // ERROR: E0382
}
