// An MMU notifier invalidation borrows the VMA, so it ends before the mmap
// lock that keeps the mm alive is released.
use kernel::mm::{
    pgtable::{InvalidateEvent, InvalidateRange},
    MmWithUser,
};
use pin_init::stack_pin_init;

fn f(mm: &MmWithUser, addr: usize) {
    let lock = mm.mmap_read_lock();
    let Some(vma) = lock.vma_lookup(addr) else {
        return;
    };
    stack_pin_init!(let range = InvalidateRange::new(vma, InvalidateEvent::ProtectionVma));
    range.as_mut().start(addr, addr + 4096);
    drop(lock); // ERROR: E0505
}
