//! The scheduling-policy seam (feature `explore`).
//!
//! By default the ready ring is strict FIFO and this module is not compiled at
//! all. A policy picks among the fibers of the running (highest ready)
//! priority level only: the level switch happens first. With `explore`, a runtime may be given a [`SchedulePolicy`] that picks
//! which ready fiber runs at every switch and at every choice point (after
//! wakes and primitive operations), so tests can drive many reproducible
//! schedules (see [`host::explore`](crate::host::explore)).

use std::vec::Vec;

use crate::fiber::FiberId;
use crate::raw::{self, Core};

/// Picks the next fiber to run.
pub trait SchedulePolicy {
    /// `ready` lists the ready fibers *of the highest ready priority level*
    /// in FIFO order (`ready[0]` is what strict round-robin would run; at a
    /// yield or choice point the yielding fiber is last). Lower levels are
    /// never offered: a policy explores the orders priorities allow, never
    /// one they forbid. Returns an index into `ready` (taken modulo its
    /// length).
    fn choose(&mut self, ready: &[FiberId]) -> usize;
}

/// Lets the policy reorder the head of the ready ring.
///
/// # Safety
/// Exclusive access to `core`; the ring is consistent.
pub(crate) unsafe fn choose(core: *mut Core) {
    // SAFETY: ring pointers are valid slots of core.
    unsafe {
        if (*core).policy.is_none() {
            return;
        }
        let head = (*core).current;
        if head.is_null() || (*head).next == head {
            return;
        }
        let mut ids = Vec::new();
        let mut s = head;
        loop {
            ids.push(raw::id_of(core, s));
            s = (*s).next;
            if s == head {
                break;
            }
        }
        let Some(policy) = (*core).policy.as_mut() else { return };
        let k = raw::no_unwind("a SchedulePolicy", || policy.choose(&ids)) % ids.len();
        if k == 0 {
            return;
        }
        // Unlink the k-th fiber and put it at the head.
        let mut q = head;
        for _ in 1..k {
            q = (*q).next;
        }
        let p = (*q).next;
        (*q).next = (*p).next;
        if (*core).prev == p {
            (*core).prev = q;
        }
        (*p).next = head;
        (*(*core).prev).next = p;
        (*core).current = p;
    }
}
