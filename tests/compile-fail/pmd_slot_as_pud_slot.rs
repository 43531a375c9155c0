// Slots of one level cannot be used as slots of another.
use kernel::mm::pgtable::{PmdSlot, PudSlot};

fn split_pud(pud: &PudSlot<'_>) {
    pud.split_huge();
}

fn f(pud: &PudSlot<'_>, pmd: &PmdSlot<'_>) {
    split_pud(pmd); // ERROR: E0308
    split_pud(pud);
}
