//! The one wait-queue mechanism: an intrusive FIFO of fiber control blocks.
//!
//! A blocked fiber is off the ready ring, so its `next` link is free to chain it
//! into exactly one wait queue. Push and pop are O(1) and need no memory beyond
//! two pointers in the queue. `join` and every primitive in [`crate::sync`] wait
//! on these queues; wake order is always FIFO.

use core::cell::Cell;
use core::ptr;

use crate::fiber::Slot;

/// An intrusive FIFO of blocked fibers (head, tail), linked through `Slot::next`.
pub(crate) struct WaitQueue {
    head: Cell<*mut Slot>,
    tail: Cell<*mut Slot>,
    /// The owning primitive's name (reports), "" if none.
    pub(crate) name: &'static str,
    /// The queue is the first field of a `sync::inherit::PiQueue` (a
    /// `Mutex`'s): its waiters lend their priority to the holder.
    pub(crate) pi: bool,
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        WaitQueue { head: Cell::new(ptr::null_mut()), tail: Cell::new(ptr::null_mut()), name: "", pi: false }
    }

    /// Removes `s`, a fiber leaving the queue without being handed anything
    /// (timeout, `abort_wait`, deadlock cancellation); a mutex's holder no
    /// longer inherits its priority.
    ///
    /// # Safety
    /// `s` is a Blocked slot of `core` that waited in this queue; exclusive
    /// access to `core`.
    pub(crate) unsafe fn leave(&self, core: *mut crate::raw::Core, s: *mut Slot) {
        self.remove(s);
        if self.pi {
            // SAFETY: a `pi` queue is the first field of a live PiQueue
            // (repr(C)); forwarded contract.
            unsafe { crate::sync::inherit::waiter_left(core, (self as *const WaitQueue).cast()) }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.get().is_null()
    }

    /// The first fiber (null if empty). Read-only, for the invariant checker.
    pub(crate) fn head(&self) -> *mut Slot {
        self.head.get()
    }

    /// The last fiber (null if empty). Read-only, for the invariant checker.
    pub(crate) fn tail(&self) -> *mut Slot {
        self.tail.get()
    }

    /// Appends `s`.
    ///
    /// # Safety
    /// `s` must be a valid slot that is in no queue and off the ready ring.
    pub(crate) unsafe fn push_back(&self, s: *mut Slot) {
        // SAFETY: s and the tail (if any) are valid slots owned by this queue.
        unsafe {
            (*s).next = ptr::null_mut();
            let t = self.tail.get();
            if t.is_null() {
                self.head.set(s);
            } else {
                (*t).next = s;
            }
        }
        self.tail.set(s);
    }

    /// Removes and returns the first fiber.
    pub(crate) fn pop_front(&self) -> Option<*mut Slot> {
        let h = self.head.get();
        if h.is_null() {
            return None;
        }
        // SAFETY: h is a valid slot linked into this queue.
        let n = unsafe { (*h).next };
        self.head.set(n);
        if n.is_null() {
            self.tail.set(ptr::null_mut());
        }
        Some(h)
    }

    /// Unlinks `s` if present (timeouts, cancellation): O(length).
    pub(crate) fn remove(&self, s: *mut Slot) -> bool {
        let mut prev: *mut Slot = ptr::null_mut();
        let mut cur = self.head.get();
        while !cur.is_null() {
            // SAFETY: every linked node is a valid slot.
            let next = unsafe { (*cur).next };
            if cur == s {
                if prev.is_null() {
                    self.head.set(next);
                } else {
                    // SAFETY: prev is a valid linked slot.
                    unsafe { (*prev).next = next };
                }
                if self.tail.get() == s {
                    self.tail.set(prev);
                }
                return true;
            }
            prev = cur;
            cur = next;
        }
        false
    }
}
