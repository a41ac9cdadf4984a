//! Priority inheritance for [`Mutex`](super::Mutex).
//!
//! A mutex's holder runs at least at the priority of the highest-priority
//! fiber waiting for it, so a low fiber holding a lock a high one needs is not
//! starved by the fibers in between (the classic priority inversion):
//!
//! * **boost**: a fiber about to wait for a held mutex raises the holder's
//!   effective priority to its own if that is higher; if the holder itself
//!   waits for another mutex, that mutex's holder is raised too, and so on
//!   for at most [`INHERITANCE_DEPTH`] fibers (a cycle, i.e. a deadlock,
//!   ends there as well);
//! * **restore**: when the holder unlocks, when a waiter leaves without the
//!   lock (timeout, [`abort_wait`](crate::Fiber::abort_wait), deadlock
//!   cancellation), or when a fiber's base priority changes, the effective
//!   priority is recomputed: the base priority, raised to the highest waiter
//!   of every mutex the fiber still holds (and the change is passed along the
//!   chain the same way).
//!
//! Each fiber's header lists the mutexes it holds that have had waiters
//! (linked through the mutexes: no memory of its own). Only a mutex a fiber
//! can *block* on is ever linked, and blocking needs `&'s Mutex` (the mutex
//! outlives the runtime's stacks), so a linked mutex outlives the list.
//!
//! The holder is remembered by runtime serial, slot index and generation, and
//! checked against the runtime before use: a mutex whose holder finished
//! without unlocking (a leaked guard), or one last held in another runtime,
//! lends nothing to anybody.
//!
//! Costs: nothing on an uncontended lock but recording the holder; a waiter
//! walks the holder's held mutexes' waiters (O(waiters)) per hop.

use core::cell::Cell;
use core::ptr;

use crate::INHERITANCE_DEPTH;
use crate::fiber::{Slot, State, WaitKind};
use crate::raw::{self, Core};
use crate::wait::WaitQueue;

/// Who holds a mutex: runtime serial (0: nobody), slot index, generation.
#[derive(Clone, Copy)]
struct Holder {
    serial: u64,
    index: u32,
    generation: u32,
}

const NOBODY: Holder = Holder { serial: 0, index: 0, generation: 0 };

/// The part of a [`Mutex`](super::Mutex) that priority inheritance uses. Its
/// first field is the wait queue, so the queue's address (a waiter's
/// `wait_obj`) is this one's.
#[repr(C)]
pub(crate) struct PiQueue {
    pub(crate) waiters: WaitQueue,
    holder: Cell<Holder>,
    /// Next mutex in the holder's `Header::held` list.
    next_held: Cell<*const PiQueue>,
    /// In the holder's `held` list.
    linked: Cell<bool>,
}

impl PiQueue {
    pub(crate) const fn new() -> Self {
        let mut waiters = WaitQueue::new();
        waiters.pi = true;
        PiQueue { waiters, holder: Cell::new(NOBODY), next_held: Cell::new(ptr::null()), linked: Cell::new(false) }
    }

    /// Records `s` (the running fiber, which just took the lock) as holder.
    ///
    /// # Safety
    /// `s` a live slot of `core`.
    #[inline(always)]
    pub(crate) unsafe fn set_holder(&self, core: *mut Core, s: *mut Slot) {
        // SAFETY: per the contract.
        unsafe {
            self.holder.set(Holder {
                serial: (*core).serial,
                index: raw::index_of(core, s),
                generation: (*s).generation,
            })
        }
    }

    /// The holder's slot, if it is a fiber of `core` that has not finished.
    ///
    /// # Safety
    /// Exclusive access to `core`.
    #[inline(always)]
    unsafe fn holder_slot(&self, core: *mut Core) -> Option<*mut Slot> {
        let h = self.holder.get();
        // SAFETY: the index is checked against the table's length first.
        unsafe {
            if h.serial != (*core).serial || h.index as usize >= (*core).cap {
                return None;
            }
            let s = (*core).slots.add(h.index as usize);
            let live = matches!((*s).state, State::Ready | State::Blocked);
            (live && (*s).generation == h.generation).then_some(s)
        }
    }

    /// Links this mutex into `s`'s held list (if not yet there).
    ///
    /// # Safety
    /// `s` a live slot of `core` holding this mutex; the mutex outlives the
    /// list (it can be blocked on: `'s`).
    unsafe fn link(&self, s: *mut Slot) {
        if !self.linked.get() {
            // SAFETY: a live slot's header is valid.
            unsafe {
                let h = (*s).header;
                self.next_held.set((*h).held);
                (*h).held = self;
            }
            self.linked.set(true);
        }
    }

    /// Unlinks this mutex from `s`'s held list (if there).
    ///
    /// # Safety
    /// `s` a live slot of `core`, the holder this mutex was linked for.
    unsafe fn unlink(&self, s: *mut Slot) {
        if !self.linked.replace(false) {
            return;
        }
        // SAFETY: the held list holds live mutexes (see the module docs).
        unsafe {
            let h = (*s).header;
            let me: *const PiQueue = self;
            if (*h).held == me {
                (*h).held = self.next_held.get();
            } else {
                let mut p = (*h).held;
                while !p.is_null() {
                    if (*p).next_held.get() == me {
                        (*p).next_held.set(self.next_held.get());
                        break;
                    }
                    p = (*p).next_held.get();
                }
            }
        }
        self.next_held.set(ptr::null());
    }

    /// The running fiber `me` is about to wait for this (held) mutex: the
    /// holder inherits its priority, if that is higher than the holder's.
    ///
    /// The mutex joins the holder's held list the first time one of its
    /// waiters lends the holder anything (here, or when a waiter's priority is
    /// raised later: [`refresh`] links it on its way to the holder). A mutex
    /// not in the list never raised its holder, so its waiters leaving cannot
    /// lower it either.
    ///
    /// # Safety
    /// Called by the running fiber `me` of `core` (the mutex's bound runtime)
    /// right before it blocks on `waiters`; the mutex outlives the run.
    #[inline(always)]
    pub(crate) unsafe fn before_wait(&self, core: *mut Core, me: *mut Slot) {
        // SAFETY: forwarded contract. Nobody is below the lowest level: a
        // fiber there lends nothing (the common case costs one compare).
        unsafe {
            if (*me).priority != 0 {
                self.lend(core, me);
            }
        }
    }

    /// [`before_wait`](Self::before_wait) of a fiber above the lowest level.
    ///
    /// # Safety
    /// As for [`before_wait`](Self::before_wait).
    #[inline(never)]
    unsafe fn lend(&self, core: *mut Core, me: *mut Slot) {
        // SAFETY: forwarded contract.
        unsafe {
            if let Some(h) = self.holder_slot(core)
                && (*me).priority > (*h).priority
            {
                self.link(h);
                refresh(core, h, (*me).priority);
            }
        }
    }

    /// The holder `me` unlocks, handing the lock to the first waiter (if
    /// any, woken); `me` loses what it inherited through this mutex. Returns
    /// whether a waiter got the lock. (The holder record is left stale when
    /// nobody waits: it is read only while the mutex is locked.)
    ///
    /// # Safety
    /// Called by the running fiber `me` of `core`, which holds the lock.
    #[inline(always)]
    pub(crate) unsafe fn unlock(&self, core: *mut Core, me: *mut Slot) -> bool {
        // SAFETY: queue members are Blocked slots of core; `me` is live.
        unsafe {
            if self.linked.get() {
                return self.unlock_lent(core, me);
            }
            self.hand_off(core)
        }
    }

    /// Hands the lock to the first waiter, if any.
    ///
    /// # Safety
    /// As for [`unlock`](Self::unlock).
    #[inline(always)]
    unsafe fn hand_off(&self, core: *mut Core) -> bool {
        // SAFETY: as for `unlock`.
        unsafe {
            let Some(w) = self.waiters.pop_front() else { return false };
            self.set_holder(core, w);
            if !self.waiters.is_empty() {
                self.lend_rest(core, w);
            }
            raw::wake_by_running(core, w, crate::fiber::Wake::Signaled);
            true
        }
    }

    /// The waiters left behind lend the new holder `w` their priority (before
    /// it is made ready, so it lands at that level).
    ///
    /// # Safety
    /// `w` a Blocked slot of `core`, the new holder.
    #[inline(never)]
    unsafe fn lend_rest(&self, core: *mut Core, w: *mut Slot) {
        // SAFETY: forwarded contract.
        unsafe {
            if max_waiter(&self.waiters) > (*w).priority {
                self.link(w);
                refresh(core, w, 0);
            }
        }
    }

    /// [`unlock`](Self::unlock) of a mutex whose waiters lent `me` their
    /// priority: `me`'s is recomputed after the hand-off.
    ///
    /// # Safety
    /// As for [`unlock`](Self::unlock).
    #[inline(never)]
    unsafe fn unlock_lent(&self, core: *mut Core, me: *mut Slot) -> bool {
        // SAFETY: as for `unlock`.
        unsafe {
            self.unlink(me);
            let handed = self.hand_off(core);
            if (*me).priority != (*(*me).header).base_priority {
                refresh(core, me, 0);
            }
            handed
        }
    }
}

/// A waiter left the mutex's queue without the lock: the holder's boost is
/// recomputed.
///
/// # Safety
/// `m` is a live `PiQueue` bound to `core`; exclusive access to `core`.
pub(crate) unsafe fn waiter_left(core: *mut Core, m: *const PiQueue) {
    // SAFETY: forwarded contract.
    unsafe {
        if let Some(h) = (*m).holder_slot(core) {
            refresh(core, h, 0);
        }
    }
}

/// Recomputes `s`'s effective priority: its base, `extra` (a fiber about to
/// wait for a mutex `s` holds), and the highest waiter of each mutex `s`
/// holds; then, if it changed and `s` waits for a mutex, that mutex's holder
/// likewise, for at most [`INHERITANCE_DEPTH`] fibers.
///
/// # Safety
/// Exclusive access to `core`; `s` a live slot of `core`.
#[inline(never)]
pub(crate) unsafe fn refresh(core: *mut Core, s: *mut Slot, extra: u8) {
    // SAFETY: live slots' headers are valid; held lists hold live mutexes
    // whose queues hold Blocked slots of core; a Blocked fiber's `pi` queue
    // is the first field of a live PiQueue.
    unsafe {
        let mut s = s;
        let mut extra = extra;
        for _ in 0..INHERITANCE_DEPTH {
            let mut p = (*(*s).header).base_priority.max(extra);
            let mut m = (*(*s).header).held;
            while !m.is_null() {
                p = p.max(max_waiter(&(*m).waiters));
                m = (*m).next_held.get();
            }
            if p == (*s).priority {
                return;
            }
            raw::set_effective(core, s, p);
            if (*s).state != State::Blocked || (*s).wait_kind != WaitKind::Mutex {
                return;
            }
            let q = (*s).wait_obj as *const WaitQueue;
            if !(*q).pi {
                return; // a RecursiveMutex: no inheritance
            }
            let m = q.cast::<PiQueue>();
            match (*m).holder_slot(core) {
                Some(h) => {
                    (*m).link(h);
                    s = h;
                }
                None => return,
            }
            extra = 0;
        }
    }
}

/// The highest effective priority among the fibers waiting in `q` (0 if none).
fn max_waiter(q: &WaitQueue) -> u8 {
    let mut p = 0;
    let mut w = q.head();
    while !w.is_null() {
        // SAFETY: queue members are Blocked slots of the queue's runtime.
        unsafe {
            p = p.max((*w).priority);
            w = (*w).next;
        }
    }
    p
}
