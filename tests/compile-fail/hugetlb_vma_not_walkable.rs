// Walks start from a WalkableVma (not hugetlb), never from a bare VmaRef.
use kernel::mm::{
    pgtable::{pgd_range, WalkableVma},
    virt::VmaRef,
};

fn f(vma: &VmaRef) {
    let _ = pgd_range(vma, vma.start(), vma.end()); // ERROR: E0308
    if let Some(vma) = WalkableVma::new(vma) {
        let _ = pgd_range(vma, vma.start(), vma.end());
    }
}
