//! A wait queue whose waiters carry a value slot: what [`Channel`](super::Channel)
//! hands a waiter (a value for a receiver) or takes from it (a blocked
//! sender's value) moves at wake time, so nothing can overtake it.
//!
//! The fibers themselves wait in an ordinary [`WaitQueue`] (so timeouts,
//! cancellation and deadlock reports work as for every primitive). Each
//! waiter keeps its value cell in its own waiting frame and publishes the
//! cell's address in its header (`Header::wait_value`) before it blocks; a
//! waker pops the fiber and moves the value through that pointer, in O(1),
//! with nothing to unlink afterwards (invariant I13):
//!
//! ```text
//!   WaitList.queue: head ──► slot A ──► slot B ──► null      (FIFO, Slot::next)
//!                              │          │
//!                       header.wait_value │
//!                              ▼          ▼
//!               A's frame: Cell<Option<T>>   B's frame: Cell<Option<T>>
//! ```
//!
//! A fiber leaves the queue before its wait returns, by every route (woken
//! by a waker, timed out, cancelled, aborted): the pointer is read only for a
//! fiber popped from this very queue, so it always names a live cell of this
//! list's `T`.
//!
//! Each list also keeps the selects watching it (`selectors`, see
//! [`select`](super::select)): they are not in the queue and are woken only
//! when nobody in the queue takes what appeared.

use core::cell::Cell;
use core::marker::PhantomData;

use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

#[repr(C)]
pub(crate) struct WaitList<T> {
    /// First field: its address is the list's address (deadlock reports).
    pub(crate) queue: WaitQueue,
    /// Selects watching this side of the channel (woken when a value or room
    /// appears with no plain waiter to hand it to; see `sync::select`).
    pub(crate) selectors: super::select::SelList,
    /// The type of the waiters' value cells.
    _values: PhantomData<Cell<Option<T>>>,
}

impl<T> WaitList<T> {
    pub(crate) const fn new() -> Self {
        WaitList { queue: WaitQueue::new(), selectors: super::select::SelList::new(), _values: PhantomData }
    }

    /// Blocks the running fiber with `value` in its cell until a waker pops it
    /// or the deadline passes. Returns how it woke and what is left in the cell.
    ///
    /// # Safety
    /// The list must outlive the wait and belong to `fib`'s runtime, and only
    /// that runtime's fibers may touch it.
    #[inline(always)]
    pub(crate) unsafe fn wait(
        &self,
        fib: &Fiber<'_>,
        kind: WaitKind,
        deadline: Option<Ticks>,
        value: Option<T>,
    ) -> (Wake, Option<T>) {
        let cell = Cell::new(value);
        // SAFETY: we are the running fiber, so our header is live. `cell`
        // stays in this frame until the wait is over, and the fiber is out of
        // the queue by then (every wake-up route unlinks it first), so no
        // waker can reach the cell afterwards (I13). Forwarded contract for
        // the queue (I5).
        let wake = unsafe { fib.wait_on_with_value(&self.queue, kind, deadline, (&raw const cell).cast()) };
        (wake, cell.into_inner())
    }

    /// Removes the longest-waiting fiber from the queue and lets `f` exchange
    /// a value with its cell, then wakes it (`Signaled`). Returns whether a
    /// fiber was there.
    ///
    /// # Safety
    /// Called by the running fiber of the bound runtime `core`; or with a
    /// null `core` when the list is unbound, so nobody waits in it.
    #[inline(always)]
    pub(crate) unsafe fn wake_one(&self, core: *mut Core, f: impl FnOnce(&Cell<Option<T>>)) -> bool {
        let Some(s) = self.queue.pop_front() else { return false };
        // SAFETY: `s` was linked in this list's queue, so it is a Blocked slot
        // of `core` inside `wait` above, whose header names its live value
        // cell of this list's `T` (I13).
        unsafe {
            f(&*(*(*s).header).wait_value.cast::<Cell<Option<T>>>());
            raw::wake_by_running(core, s, Wake::Signaled);
        }
        true
    }
}
