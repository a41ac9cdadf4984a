//! A wait queue whose waiters carry a value slot: what [`Channel`](super::Channel)
//! hands a waiter (a value for a receiver) or takes from it (a blocked
//! sender's value) moves at wake time, so nothing can overtake it.
//!
//! The fibers themselves wait in an ordinary [`WaitQueue`] (so timeouts,
//! cancellation and deadlock reports work as for every primitive); each
//! waiter also links a [`Node`] living in its own stack frame into a
//! doubly-linked list here. Waking pops the queue and finds that fiber's node.
//! A node is unlinked by the waker, or by its own fiber when the wait returns
//! any other way (timeout, cancellation unwinding through the guard).
//!
//! Each list also keeps the selects watching it (`selectors`, see
//! [`select`](super::select)): they are not in the queue and are woken only
//! when nobody in the queue takes what appeared.

use core::cell::Cell;
use core::ptr;

use crate::fiber::{Slot, WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// One waiting fiber's record, in its stack frame.
pub(crate) struct Node<T> {
    slot: *mut Slot,
    prev: Cell<*const Node<T>>,
    next: Cell<*const Node<T>>,
    linked: Cell<bool>,
    /// The value being handed over (either direction).
    pub(crate) value: Cell<Option<T>>,
}

#[repr(C)]
pub(crate) struct WaitList<T> {
    /// First field: its address is the list's address (deadlock reports).
    pub(crate) queue: WaitQueue,
    head: Cell<*const Node<T>>,
    tail: Cell<*const Node<T>>,
    /// Selects watching this side of the channel (woken when a value or room
    /// appears with no plain waiter to hand it to; see `sync::select`).
    pub(crate) selectors: super::select::SelList,
}

/// Unlinks a node when its wait ends by any route (including an unwind).
struct Unlink<'a, T> {
    list: &'a WaitList<T>,
    node: &'a Node<T>,
}

impl<T> Drop for Unlink<'_, T> {
    fn drop(&mut self) {
        if self.node.linked.get() {
            // SAFETY: a linked node is in this list.
            unsafe { self.list.unlink(self.node) };
        }
    }
}

impl<T> WaitList<T> {
    pub(crate) const fn new() -> Self {
        WaitList {
            queue: WaitQueue::new(),
            head: Cell::new(ptr::null()),
            tail: Cell::new(ptr::null()),
            selectors: super::select::SelList::new(),
        }
    }

    /// Blocks the running fiber with `value` in its node until a waker pops it
    /// or the deadline passes. Returns how it woke and what is left in the node.
    ///
    /// # Safety
    /// The list must outlive the wait and belong to `fib`'s runtime, and only
    /// that runtime's fibers may touch it.
    pub(crate) unsafe fn wait(
        &self,
        fib: &Fiber<'_>,
        kind: WaitKind,
        deadline: Option<Ticks>,
        value: Option<T>,
    ) -> (Wake, Option<T>) {
        let node = Node {
            slot: fib.slot_ptr(),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
            value: Cell::new(value),
        };
        // `node` stays in this frame until after `guard` unlinks it (locals drop
        // in reverse order, on return and on unwind alike).
        self.link(&node);
        let guard = Unlink { list: self, node: &node };
        // SAFETY: forwarded contract; the fiber is linked in `queue` while it waits.
        let wake = unsafe { fib.wait_on(&self.queue, kind, deadline) };
        drop(guard);
        (wake, node.value.take())
    }

    fn link(&self, node: &Node<T>) {
        let p: *const Node<T> = node;
        node.prev.set(self.tail.get());
        node.next.set(ptr::null());
        let t = self.tail.get();
        if t.is_null() {
            self.head.set(p);
        } else {
            // SAFETY: linked nodes are alive (their fibers are suspended in `wait`).
            unsafe { (*t).next.set(p) };
        }
        self.tail.set(p);
        node.linked.set(true);
    }

    /// # Safety
    /// `node` must be linked in this list.
    unsafe fn unlink(&self, node: *const Node<T>) {
        // SAFETY: linked nodes and their neighbours are alive.
        unsafe {
            let (p, n) = ((*node).prev.get(), (*node).next.get());
            if p.is_null() {
                self.head.set(n);
            } else {
                (*p).next.set(n);
            }
            if n.is_null() {
                self.tail.set(p);
            } else {
                (*n).prev.set(p);
            }
            (*node).linked.set(false);
        }
    }

    /// Removes the longest-waiting fiber from the queue and lets `f` exchange
    /// a value with its node, then wakes it (`Signaled`). Returns whether a
    /// fiber was there.
    ///
    /// # Safety
    /// Called by the running fiber of the bound runtime `core`.
    pub(crate) unsafe fn wake_one(&self, core: *mut Core, f: impl FnOnce(&Cell<Option<T>>)) -> bool {
        let Some(s) = self.queue.pop_front() else { return false };
        // Nodes of fibers that timed out but have not resumed yet may still be
        // linked ahead; skip them (their fibers unlink them).
        let mut n = self.head.get();
        // SAFETY: linked nodes are alive; the popped fiber is blocked in
        // `wait`, so its node is linked; `s` is a blocked slot of `core`.
        unsafe {
            while !n.is_null() && (*n).slot != s {
                n = (*n).next.get();
            }
            if n.is_null() {
                raw::fatal(format_args!("filament::sync: a waiter has no wait record"));
            }
            self.unlink(n);
            f(&(*n).value);
            raw::wake(core, s, Wake::Signaled);
        }
        true
    }
}
