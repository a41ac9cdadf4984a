//! Registration of interrupt-capable objects with a runtime, waiter accounting and the drain at poll points.

use core::ptr;
use core::sync::atomic::Ordering;

use super::IrqSignal;
use crate::raw::{self, Core};

/// Per-runtime list of registered signals.
pub(crate) struct IrqList {
    pub(super) head: *const IrqSignal,
    /// Fibers currently blocked on registered signals.
    pub waiters: usize,
}

impl IrqList {
    pub(crate) const fn new() -> Self {
        IrqList { head: ptr::null(), waiters: 0 }
    }
}

/// Runs `block` (the running fiber's wait on a signal) with that fiber counted
/// as an interrupt waiter: meanwhile the runtime polls its signals at every
/// yield, block and idle, and idles instead of reporting a deadlock.
///
/// The count is undone by a drop guard, so also when `block` unwinds (a wait
/// cancelled by the runtime, which unwinds with the `Cancelled` payload under
/// std, or a panic): a leaked count would make the runtime poll at every
/// switch and idle forever instead of reporting the next deadlock.
///
/// # Safety
/// Called by the running fiber of `core`, on its own stack.
pub(super) unsafe fn as_irq_waiter<R>(core: *mut Core, block: impl FnOnce() -> R) -> R {
    /// Undoes the count when dropped: on return or during an unwind.
    struct Counted(*mut Core);
    impl Drop for Counted {
        fn drop(&mut self) {
            // SAFETY: dropped by the fiber that made the count, while it runs
            // (after its wait returned, or while it unwinds on its own stack),
            // so the core is exclusively ours, as when it was counted.
            unsafe {
                (*self.0).irq.waiters -= 1;
                (*self.0).pollers -= 1;
                raw::refresh_slow(self.0);
            }
        }
    }
    // SAFETY: per the contract the core is ours while we run.
    let _counted = unsafe {
        (*core).irq.waiters += 1;
        (*core).pollers += 1;
        raw::refresh_slow(core);
        Counted(core)
    };
    block()
}

/// Wakes the first waiter of every registered signal that was raised.
///
/// # Safety
/// Exclusive access to `core` (inside `run`).
#[inline]
pub(crate) unsafe fn drain(core: *mut Core) {
    // SAFETY: plain read of the runtime's own counter.
    if unsafe { (*core).irq.waiters } == 0 {
        return;
    }
    // SAFETY: forwarded.
    unsafe { drain_slow(core) }
}

/// [`drain`]'s work once some fiber waits on a signal.
///
/// # Safety
/// As for [`drain`].
#[cold]
unsafe fn drain_slow(core: *mut Core) {
    // SAFETY: registered signals outlive the runtime ('s); their Cell fields
    // are ours (owner == core).
    unsafe {
        let mut sig = (*core).irq.head;
        while !sig.is_null() {
            let s = &*sig;
            if !s.waiters.is_empty() {
                let n = s.pending.swap(0, Ordering::Acquire);
                if n > 0 {
                    s.banked.fetch_add(n, Ordering::Relaxed);
                    raw::wake_one(core, &s.waiters);
                }
            }
            sig = s.next.get();
        }
    }
}

/// Whether some fiber waits on an interrupt source (so idling makes sense).
///
/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn armed(core: *mut Core) -> bool {
    // SAFETY: plain read.
    unsafe { (*core).irq.waiters > 0 }
}

/// Unregisters every signal (runtime drop), so none points at a dead runtime.
///
/// Each signal's `owner` is cleared last, with a release store: a runtime on
/// another thread may win the signal's compare-exchange the moment it is 0
/// and then writes `next`, so everything this runtime does to the signal must
/// come before. Nothing thread-specific is stored in the signal (the host's
/// wake-up goes through the process-wide epoch), so there is nothing for a
/// concurrent bind to lose.
///
/// # Safety
/// Exclusive access to `core`; no fiber waits on any signal.
pub(crate) unsafe fn unregister_all(core: *mut Core) {
    // SAFETY: as in drain_slow.
    unsafe {
        let mut sig = (*core).irq.head;
        while !sig.is_null() {
            let s = &*sig;
            sig = s.next.get();
            s.next.set(ptr::null());
            s.owner.store(0, Ordering::Release);
        }
        (*core).irq.head = ptr::null();
    }
}
