//! Blocking and waking: the running fiber leaves the ready ring for a wait
//! queue (or none) and switches away (`block_on`'s inline fast path,
//! `block_current`'s general one), stops as suspended when its wait ends
//! (`hold_suspended`), and a waker makes it ready again (`wake` and its
//! forms). The ring side is in `ring.rs`, the switch in `switch.rs`.

use core::ptr;

use super::*;

/// [`block_current`] without a deadline, with the common case
/// inline: nothing optional in use (`slow` is zero: no pollers, pending
/// preemption, own-FP fibers, tracer or policy), not unwinding, not
/// cancelled. Then it is the yield's work plus the queue link — the path a
/// channel or semaphore hand-off takes. Anything else goes the general way.
///
/// A non-null `wait_value` is stored in the fiber's header first
/// (`Header::wait_value`, for a `WaitList`'s waker: I13); a null one, a
/// constant at every other call site, costs nothing.
///
/// # Safety
/// As for [`block_current`] (`queue` null: a wait in no queue, `obj` what
/// the waker and reports find it by; else `obj` is the queue's address); a
/// non-null `wait_value` is what I13 requires of a waiter in `queue`.
#[inline(always)]
pub(crate) unsafe fn block_on(
    core: *mut Core,
    queue: *const WaitQueue,
    kind: WaitKind,
    obj: usize,
    wait_value: *const (),
) -> Wake {
    // SAFETY: the caller is `current`; ring pointers are valid (I1); the
    // queue outlives the wait (forwarded contract, I5).
    unsafe {
        let c = (*core).current;
        let h = (*c).header;
        if !wait_value.is_null() {
            (*h).wait_value = wait_value;
        }
        if (*core).slow != 0 || unwinding() || (*h).cancel {
            return block_current(core, queue, kind, obj, None);
        }
        // What `block_current` does when `slow` is zero and there is no
        // deadline: no clock poll (no pollers), no timer to arm, no FP
        // hand-over (no own-FP fibers), no trace event (no tracer).
        check_canary(core, c);
        (*c).state = State::Blocked;
        (*c).wait_kind = kind;
        (*c).wait_obj = obj;
        (*c).wake = Wake::Signaled;
        (*c).runs = (*c).runs.wrapping_add(1);
        // `unlink_current` knowing `preempt` is clear (it is part of `slow`)
        // and no policy or tracer is set: the successor at this level runs,
        // or the highest other level's head, or the host.
        let n = (*c).next;
        let to = if n != c {
            (*(*core).prev).next = n;
            (*core).current = n;
            (*n).sp
        } else {
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
            if (*core).ready_levels == 0 {
                (*core).host_sp
            } else {
                load_highest(core);
                (*(*core).current).sp
            }
        };
        if !queue.is_null() {
            (*queue).push_back(c);
        }
        arch::switch(&raw mut (*c).sp, to);
        if (*h).suspend | (*h).irq_uncounted {
            after_wait_slow(core, c);
        }
        (*c).wake
    }
}

/// Takes the running fiber off the ready ring, links it into `queue` (if
/// any), arms `deadline` (if any) and switches to the next ready fiber (or the
/// host). Returns how it was woken.
///
/// The deadline is armed *here*, after the fiber is marked Blocked and after
/// the clock was polled: the timer heap only ever holds Blocked fibers
/// (invariant I3), so no clock reading, however far it jumped, can make
/// `time::advance` act on the running fiber. A deadline that the freshly
/// polled clock has already reached returns `TimedOut` without blocking.
///
/// The ring and the wait queue share `Slot::next`, so the fiber is unlinked from
/// the ring before it is linked into the queue.
///
/// # Safety
/// Must be called by the running fiber of `core` on its own stack. `queue`, if
/// non-null, must stay valid until the fiber is woken and `kind` must name a
/// queue kind; if null, `kind` is `WaitKind::Sleep`. `obj` is the queue's
/// address, or the deadline for a plain sleep.
pub(crate) unsafe fn block_current(
    core: *mut Core,
    queue: *const WaitQueue,
    kind: WaitKind,
    obj: usize,
    deadline: Option<Ticks>,
) -> Wake {
    // SAFETY: the caller is `current`; ring pointers are valid (I1).
    unsafe {
        if unwinding() {
            return Wake::Unwinding; // never switch while unwinding
        }
        let c = (*core).current;
        if (*(*c).header).cancel {
            // A cancelled fiber never blocks (`Fiber::cancel`).
            return if (*(*c).header).cancel_unwind { Wake::Cancelled } else { Wake::Aborted };
        }
        if (*core).pollers != 0 {
            // The drains this poll may run must know what we are about to
            // wait on (`irq::source::blocking_here`): we looked at its state
            // and are not in its queue yet.
            (*core).irq.blocking_on = obj;
            crate::time::poll(core);
            (*core).irq.blocking_on = 0;
        }
        // `Ticks::MAX` is "never" (a clock never reaches it; virtual time must
        // not jump to it).
        let deadline = deadline.filter(|&d| d != Ticks::MAX);
        if let Some(d) = deadline
            && d <= (*core).now
        {
            return Wake::TimedOut;
        }
        check_canary(core, c);
        (*c).state = State::Blocked;
        (*c).wait_kind = kind;
        (*c).wait_obj = obj;
        (*c).wake = Wake::Signaled;
        if let Some(d) = deadline {
            // `c` is Blocked from here on: the heap holds only Blocked slots.
            crate::time::arm(core, c, d);
        }
        trace_event!(core, block_in(id_of(core, c), wait_reason(core, c), wait_object_name(c)));
        trace_event!(core, switch_out(id_of(core, c)));
        (*c).runs = (*c).runs.wrapping_add(1);
        let n = unlink_current(core);
        if !queue.is_null() {
            (*queue).push_back(c);
        }
        fp_handover(core, c, n);
        let to = if n.is_null() { (*core).host_sp } else { (*n).sp };
        arch::switch(&raw mut (*c).sp, to);
        // Suspended while it waited (`Fiber::suspend`): its wait is over, but
        // it stops here, keeping what the wait gave it, until resumed.
        let h = (*c).header;
        if (*h).suspend | (*h).irq_uncounted {
            after_wait_slow(core, c);
        }
        (*c).wake
    }
}

/// The running fiber `c` stops as suspended (`WaitKind::Suspended`, in no
/// queue, no deadline) until `Fiber::resume` makes it ready again; its
/// `wake` is kept across (what the wait that just ended gave it), unless the
/// runtime cancels it meanwhile (a deadlock under `std`: `Cancelled`).
///
/// A fiber held here inside an interrupt wait (`irq::as_irq_waiter`) no
/// longer counts as an interrupt waiter while it is held: no interrupt can
/// resume it, only a fiber, so a runtime whose fibers are all blocked is
/// deadlocked (I10 kept: the count and the mark move together, and come back
/// before the wait's guard undoes them).
///
/// # Safety
/// `c` is the running fiber of `core`, on its own stack, not unwinding.
#[cold]
#[inline(never)]
pub(crate) unsafe fn hold_suspended(core: *mut Core, c: *mut Slot) {
    // SAFETY: as in `block_current`, without a queue or a deadline.
    unsafe {
        let kept = (*c).wake;
        irq_uncount(core, c);
        check_canary(core, c);
        (*c).state = State::Blocked;
        (*c).wait_kind = WaitKind::Suspended;
        (*c).wait_obj = 0;
        trace_event!(core, block_in(id_of(core, c), wait_reason(core, c), ""));
        trace_event!(core, switch_out(id_of(core, c)));
        (*c).runs = (*c).runs.wrapping_add(1);
        let n = unlink_current(core);
        fp_handover(core, c, n);
        let to = if n.is_null() { (*core).host_sp } else { (*n).sp };
        (*c).wake = kept;
        arch::switch(&raw mut (*c).sp, to);
        // `resume` leaves `wake` alone; a deadlock cancellation sets it.
        irq_recount(core, c);
    }
}

/// Stops counting `s` as an interrupt waiter while it is suspended (or its
/// suspension is pending): no interrupt can make it run, only `resume`, so a
/// runtime whose fibers are all blocked is deadlocked however many such
/// fibers wait on interrupt-capable objects. No-op unless `s` is counted
/// (`Slot::irq_wait`). I9, I10 kept: the count, the pollers and the mark move
/// together and `slow` is refreshed; [`irq_recount`] undoes it before the
/// wait's own guard (`irq::as_irq_waiter`) does.
///
/// # Safety
/// Exclusive access to `core`; `s` a live slot of `core`.
pub(crate) unsafe fn irq_uncount(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract; a live slot's header is valid.
    unsafe {
        if (*s).irq_wait {
            (*s).irq_wait = false;
            (*(*s).header).irq_uncounted = true;
            (*core).irq.waiters -= 1;
            (*core).pollers -= 1;
            refresh_slow(core);
        }
    }
}

/// Undoes [`irq_uncount`] (resumed, or its suspension withdrawn or cancelled).
///
/// # Safety
/// As for [`irq_uncount`].
pub(crate) unsafe fn irq_recount(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract.
    unsafe {
        if (*(*s).header).irq_uncounted {
            (*(*s).header).irq_uncounted = false;
            (*s).irq_wait = true;
            (*core).irq.waiters += 1;
            (*core).pollers += 1;
            refresh_slow(core);
        }
    }
}

/// The end of a wait for a fiber with a suspension or an uncounted interrupt
/// wait: stops as suspended if asked to, then counts again as an interrupt
/// waiter if it was one (a deadlock cancellation clears the suspension).
///
/// # Safety
/// `c` is the running fiber of `core`, on its own stack, not unwinding.
#[cold]
#[inline(never)]
unsafe fn after_wait_slow(core: *mut Core, c: *mut Slot) {
    // SAFETY: forwarded contract.
    unsafe {
        if (*(*c).header).suspend {
            hold_suspended(core, c);
        }
        irq_recount(core, c);
    }
}

/// Makes a blocked fiber ready again, recording how it was woken. The caller
/// has already unlinked it from the queue it waited in.
///
/// # Safety
/// `s` must be a blocked slot of `core`, in no queue.
#[inline(always)]
pub(crate) unsafe fn wake(core: *mut Core, s: *mut Slot, how: Wake) {
    // SAFETY: forwarded contract.
    unsafe {
        record_wake(core, s, how);
        make_ready(core, s);
    }
}

/// [`wake`] called by the running fiber of `core` (a primitive's waker):
/// the ring it links into is known not to be empty.
///
/// # Safety
/// As for [`wake`], and a fiber of `core` is running.
#[inline(always)]
pub(crate) unsafe fn wake_by_running(core: *mut Core, s: *mut Slot, how: Wake) {
    // SAFETY: forwarded contract.
    unsafe {
        record_wake(core, s, how);
        make_ready_by_running(core, s);
    }
}

/// What both wakes record before linking `s` in: how it woke, no wait, no
/// deadline (I3).
///
/// # Safety
/// As for [`wake`].
#[inline(always)]
unsafe fn record_wake(core: *mut Core, s: *mut Slot, how: Wake) {
    // SAFETY: forwarded contract.
    unsafe {
        debug_assert!((*s).state == State::Blocked);
        (*s).wake = how;
        (*s).wait_kind = WaitKind::None;
        (*s).wait_obj = 0;
        crate::time::cancel_deadline(core, s);
        trace_event!(core, wake(id_of(core, s)));
    }
}

/// Wakes the first fiber of `q`, if any. Returns whether one was woken.
///
/// # Safety
/// `q` must hold only blocked slots of `core`.
pub(crate) unsafe fn wake_one(core: *mut Core, q: &WaitQueue) -> bool {
    // SAFETY: queue members are blocked slots of core.
    q.pop_front().map(|s| unsafe { wake(core, s, Wake::Signaled) }).is_some()
}

/// [`wake_one`] called by the running fiber of `core` (a primitive's
/// hand-off), inline.
///
/// # Safety
/// As for [`wake_one`], and a fiber of `core` is running.
#[inline(always)]
pub(crate) unsafe fn wake_one_by_running(core: *mut Core, q: &WaitQueue) -> bool {
    // SAFETY: queue members are blocked slots of core; forwarded contract.
    q.pop_front().map(|s| unsafe { wake_by_running(core, s, Wake::Signaled) }).is_some()
}

/// Wakes the first fiber of `q` that is not about to stop as suspended
/// (`Fiber::suspend` while it waits), for objects that only *wake* a waiter
/// and hand it nothing (it takes what is there when it runs): a waiter that
/// stops when woken would take nothing and the wake would be lost for the
/// others. Returns whether one was woken; `false` also when every waiter's
/// suspension is pending (they are woken once resumed, by a later wake).
///
/// # Safety
/// `q` must hold only blocked slots of `core`; exclusive access to `core`.
pub(crate) unsafe fn wake_one_awake(core: *mut Core, q: &WaitQueue) -> bool {
    // SAFETY: queue members are blocked slots of `core` with live headers
    // (I2); the one chosen is unlinked before it is woken.
    unsafe {
        let mut s = q.head();
        while !s.is_null() && (*(*s).header).suspend {
            s = (*s).next;
        }
        if s.is_null() {
            return false;
        }
        q.remove(s);
        wake(core, s, Wake::Signaled);
        true
    }
}

/// Wakes every fiber of `q` in FIFO order.
///
/// # Safety
/// `q` must hold only blocked slots of `core`.
pub(crate) unsafe fn wake_all(core: *mut Core, q: &WaitQueue) {
    // SAFETY: forwarded contract.
    while unsafe { wake_one(core, q) } {}
}
