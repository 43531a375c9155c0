// An MMU notifier invalidation borrows the VMA, so it ends before the mmap
// lock that keeps the mm alive is released.
use kernel::mm::{
    pgtable::{InvalidateEvent, InvalidateRange},
    MmWithUser,
};

fn f(mm: &MmWithUser, addr: usize) {
    let lock = mm.mmap_read_lock();
    let Some(vma) = lock.vma_lookup(addr) else {
        return;
    };
    let mut range = core::pin::pin!(InvalidateRange::new(InvalidateEvent::ProtectionVma));
    range.as_mut().start(vma, addr, addr + 4096);
    drop(lock); // ERROR: E0505
}
