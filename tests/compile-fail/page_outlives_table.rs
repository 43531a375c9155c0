// A page read through a PTE table cannot be used once the table is unlocked:
// nothing keeps it mapped then.
use kernel::mm::pgtable::{PmdSlot, PteEntry};

fn f(pmd: &mut PmdSlot<'_>) -> bool {
    let Some(ptes) = pmd.map_lock() else {
        return false;
    };
    let Some(PteEntry::Present(pte)) = ptes.entry(0) else {
        return false;
    };
    let Some(page) = pte.normal_page() else {
        return false;
    };
    drop(ptes); // ERROR: E0505
    page.folio().is_anon()
}
