//! The per-source list of selectors: nodes living in selecting fibers' case
//! objects, linked into the source they watch while their select blocks.
//!
//! A source (channel side, semaphore, event, interrupt signal) keeps one
//! [`SelList`]; its hot paths test [`SelList::is_empty`] (one load and a
//! not-taken branch) and only then walk it.

use core::cell::Cell;
use core::ptr;

use crate::fiber::{Slot, State, WaitKind, Wake};
use crate::raw::{self, Core};

/// One case's registration in its source, stored in the case object (which
/// the selecting fiber's frame borrows for the whole select).
pub struct SelNode {
    /// The selecting fiber.
    slot: Cell<*mut Slot>,
    prev: Cell<*const SelNode>,
    next: Cell<*const SelNode>,
    /// The list it is linked in; null while unlinked.
    list: Cell<*const SelList>,
    /// Its source woke the fiber through this node (an event's pulse: set and
    /// reset before the fiber ran still fires the case).
    signaled: Cell<bool>,
}

impl SelNode {
    pub(crate) const fn new() -> Self {
        SelNode {
            slot: Cell::new(ptr::null_mut()),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            list: Cell::new(ptr::null()),
            signaled: Cell::new(false),
        }
    }

    /// Whether its source woke the fiber through this node since it was
    /// linked (cleared by reading).
    pub(crate) fn take_signaled(&self) -> bool {
        self.signaled.replace(false)
    }

    /// Whether the node is linked in a list.
    pub(crate) fn is_linked(&self) -> bool {
        !self.list.get().is_null()
    }
}

impl core::fmt::Debug for SelNode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SelNode").field("linked", &self.is_linked()).finish()
    }
}

/// A source's selectors, in registration order (doubly linked, O(1) unlink).
pub struct SelList {
    head: Cell<*const SelNode>,
    tail: Cell<*const SelNode>,
}

impl SelList {
    pub(crate) const fn new() -> Self {
        SelList { head: Cell::new(ptr::null()), tail: Cell::new(ptr::null()) }
    }

    /// Whether no selector watches the source (the hot paths' one check).
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.get().is_null()
    }

    /// Appends `node` for the fiber `slot`.
    ///
    /// # Safety
    /// `node` is unlinked and stays at its address until [`unlink`](Self::unlink)ed
    /// (I12); the list outlives that (I5); only the owner runtime's fibers touch it.
    pub(crate) unsafe fn link(&self, node: &SelNode, slot: *mut Slot) {
        let p: *const SelNode = node;
        node.slot.set(slot);
        node.signaled.set(false);
        node.prev.set(self.tail.get());
        node.next.set(ptr::null());
        let t = self.tail.get();
        if t.is_null() {
            self.head.set(p);
        } else {
            // SAFETY: linked nodes are alive (I12).
            unsafe { (*t).next.set(p) };
        }
        self.tail.set(p);
        node.list.set(self);
    }

    /// Unlinks `node` from the list it is in (if any).
    ///
    /// # Safety
    /// As for [`link`](Self::link): its list and neighbours are alive.
    pub(crate) unsafe fn unlink(node: &SelNode) {
        let list = node.list.get();
        if list.is_null() {
            return;
        }
        // SAFETY: a linked node's list and neighbours are alive (I5, I12).
        unsafe {
            let (p, n) = (node.prev.get(), node.next.get());
            if p.is_null() {
                (*list).head.set(n);
            } else {
                (*p).next.set(n);
            }
            if n.is_null() {
                (*list).tail.set(p);
            } else {
                (*n).prev.set(p);
            }
        }
        node.list.set(ptr::null());
        node.prev.set(ptr::null());
        node.next.set(ptr::null());
    }

    /// The first selector whose fiber still sleeps in its select (skipping
    /// fibers already woken, by another source or their deadline, that have
    /// not resumed yet, and fibers parked after a deadlock).
    ///
    /// # Safety
    /// Only the owner runtime's code touches the list; linked nodes are alive.
    pub(crate) unsafe fn first_sleeping(&self) -> Option<&SelNode> {
        let mut n = self.head.get();
        // SAFETY: linked nodes and their fibers' slots are alive (I12).
        unsafe {
            while !n.is_null() {
                let s = (*n).slot.get();
                // A select about to stop as suspended would take nothing.
                if (*s).state == State::Blocked && (*s).wait_kind == WaitKind::Select && !(*(*s).header).suspend {
                    return Some(&*n);
                }
                n = (*n).next.get();
            }
        }
        None
    }

    /// Whether a node of fiber `slot` is linked here (its select watches
    /// this source).
    ///
    /// # Safety
    /// As for [`first_sleeping`](Self::first_sleeping).
    pub(crate) unsafe fn holds(&self, slot: *mut Slot) -> bool {
        let mut n = self.head.get();
        // SAFETY: linked nodes are alive (I12).
        unsafe {
            while !n.is_null() {
                if (*n).slot.get() == slot {
                    return true;
                }
                n = (*n).next.get();
            }
        }
        false
    }

    /// Wakes the first sleeping selector (it re-checks its cases). Returns
    /// whether one was woken.
    ///
    /// # Safety
    /// Called by the owner runtime's running fiber (or its host context
    /// inside `run`) with exclusive access to `core` (I1).
    #[inline]
    pub(crate) unsafe fn notify_one(&self, core: *mut Core) -> bool {
        if self.is_empty() {
            return false;
        }
        // SAFETY: forwarded contract.
        unsafe { self.notify_slow(core) }
    }

    #[cold]
    #[inline(never)]
    /// [`notify_one`](Self::notify_one) once the list is not empty.
    ///
    /// # Safety
    /// As for [`notify_one`](Self::notify_one).
    unsafe fn notify_slow(&self, core: *mut Core) -> bool {
        // SAFETY: a sleeping selector is a Blocked slot of `core` in no wait
        // queue (`WaitKind::Select` has none, I2): `wake` may make it ready.
        unsafe {
            match self.first_sleeping() {
                Some(n) => {
                    n.signaled.set(true);
                    let s = n.slot.get();
                    // Woken with nothing handed over: it takes what is there
                    // when it runs. Until then its `wait_obj` keeps naming its
                    // select's record (the wake clears it), so a suspension
                    // before it runs can pass the wake on
                    // (`super::pass_on`); the select clears it (I12).
                    let record = (*s).wait_obj;
                    raw::wake(core, s, Wake::Signaled);
                    (*s).wait_obj = record;
                    true
                }
                None => false,
            }
        }
    }

    /// Empties the list without touching its nodes: for a source released by
    /// a runtime that is gone, whose selectors (parked for good) never run
    /// again. Their nodes must not be reachable by the source's next user.
    pub(crate) fn forget_all(&self) {
        self.head.set(ptr::null());
        self.tail.set(ptr::null());
    }

    /// Wakes every sleeping selector (a channel closed, an event set).
    ///
    /// # Safety
    /// As for [`notify_one`](Self::notify_one).
    #[inline]
    pub(crate) unsafe fn notify_all(&self, core: *mut Core) {
        // SAFETY: forwarded contract.
        while unsafe { self.notify_one(core) } {}
    }
}
