//! Switching: the fast and general yield, choice points, blocking on a
//! queue, waking, and the FP control hand-over at every switch.

use super::*;

/// Recomputes [`Core::slow`] after a change to anything it summarises.
///
/// # Safety
/// Exclusive access to `core`.
#[inline]
pub(crate) unsafe fn refresh_slow(core: *mut Core) {
    // SAFETY: plain reads and one write of the runtime's own fields.
    unsafe {
        #[allow(unused_mut)]
        let mut slow = (*core).pollers | (*core).preempt as usize;
        #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
        {
            slow |= (*core).fp_fibers;
        }
        #[cfg(feature = "trace")]
        {
            slow |= (*core).tracer.is_some() as usize;
        }
        #[cfg(feature = "explore")]
        {
            slow |= (*core).policy.is_some() as usize;
        }
        (*core).slow = slow;
    }
}

/// The yield the fiber handle calls: the general path ([`yield_now`]) when
/// [`Core::slow`] says something needs it, otherwise only the ring step, the
/// canary check and the switch (one compare for every optional feature).
///
/// `c` is re-read from `core.current` rather than taken from the handle's
/// slot pointer: that variant shortens the load chain on paper but measured
/// slower at 64 and 1 024 fibers (4.1 vs 2.4 ns, 7.5 vs 5.0 ns per yield,
/// interleaved A/B, bench/README.md).
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
pub(crate) unsafe fn yield_fast(core: *mut Core) {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        // `unwinding` is a constant `false` without std; with std, one load
        // and a not-taken branch (std's global panic count is zero).
        if (*core).slow != 0 || unwinding() {
            return yield_general(core);
        }
        let Some((c, n)) = step_ring(core) else { return };
        // Runs are counted at switch-out, on the outgoing slot whose line is
        // hot anyway: a counter on the incoming slot was a read-modify-write
        // the next yield's loads waited on (measured ~1 ns per yield).
        (*c).runs = (*c).runs.wrapping_add(1);
        // Warm the stack line the *next* yield will pop from: with thousands
        // of fibers it is a cache miss on the critical path (rsp is loaded,
        // then popped from). Interleaved A/B (bench/README.md): N = 10 000
        // 19.3 -> 8.2 ns, N = 1 024 4.15 -> 3.72 ns, N = 2 2.63 -> 2.06 ns,
        // N = 64 2.03 -> 2.46 ns (all in L1 there, so the extra loads cost).
        // `n.next` is always a live ring slot; its `sp` may be stale (at N = 2
        // it is `c.sp`, rewritten by this very switch), which a prefetch
        // tolerates: it never faults.
        arch::prefetch((*(*n).next).sp);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}

/// [`yield_now`] out of line, for the fast path's rare case.
///
/// # Safety
/// As for [`yield_now`].
#[inline(never)]
pub(crate) unsafe fn yield_general(core: *mut Core) {
    // SAFETY: forwarded contract.
    unsafe { yield_now(core) }
}

/// Gives the CPU to the next ready fiber, if any; returns when this fiber is
/// scheduled again.
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
pub(crate) unsafe fn yield_now(core: *mut Core) {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        if unwinding() {
            return; // never switch while unwinding (see `unwinding`)
        }
        crate::time::poll(core);
        if (*core).preempt {
            return preempt(core, true);
        }
        let Some((c, n)) = step_ring(core) else { return };
        #[cfg(feature = "explore")]
        let n = {
            let _ = n; // the policy may pick another fiber
            crate::policy::choose(core);
            let n = (*core).current;
            if n == c {
                return; // the policy keeps this fiber running
            }
            n
        };
        trace_event!(core, switch_out(id_of(core, c)));
        trace_event!(core, switch_in(id_of(core, n)));
        // Runs are counted at switch-out, on the outgoing slot whose line is
        // hot anyway: a counter on the incoming slot was a read-modify-write
        // the next yield's loads waited on (measured ~1 ns per yield).
        (*c).runs = (*c).runs.wrapping_add(1);
        fp_handover(core, c, n);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}

/// Hands FP control state over from `from` to `to` (null: the host) when a
/// fiber with its own state is involved. Two instructions otherwise.
///
/// # Safety
/// Exclusive access; `from`/`to` are live slots of `core` or null.
#[inline(always)]
pub(crate) unsafe fn fp_handover(core: *mut Core, from: *mut Slot, to: *mut Slot) {
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    // SAFETY: forwarded contract.
    unsafe {
        if (*core).fp_fibers != 0 {
            fp_handover_slow(core, from, to);
        }
    }
    let _ = (core, from, to);
}

/// [`fp_handover`] while some live fiber has its own FP control state.
///
/// # Safety
/// As for [`fp_handover`].
#[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
#[cold]
#[inline(never)]
pub(crate) unsafe fn fp_handover_slow(core: *mut Core, from: *mut Slot, to: *mut Slot) {
    use crate::arch::FpControl;
    // SAFETY: non-null slots are live and their headers valid.
    unsafe {
        let from_own = !from.is_null() && (*from).fp;
        let to_own = !to.is_null() && (*to).fp;
        if !from_own && !to_own {
            return;
        }
        let now = FpControl::current();
        if from_own {
            (*(*from).header).fp.write(now);
        } else {
            (*core).ambient_fp = now;
        }
        // A fiber with its own state has its header's `fp` written (by
        // `set_fp_control`, then at every switch-out).
        let want = if to_own { (*(*to).header).fp.assume_init() } else { (*core).ambient_fp };
        if want != now {
            // SAFETY: restoring a state some context had loaded itself (under
            // its own `FpControl::load` contract) or the shared state.
            want.load();
        }
    }
}

/// A scheduling point inside a primitive's operation (after wakes, around
/// primitive operations): a fiber of a higher level made ready meanwhile
/// runs now (cooperative preemption), and an exploring scheduling policy may
/// switch fibers. One load and a not-taken branch without `explore`.
///
/// # Safety
/// Must be called by the running fiber of `core`.
#[inline(always)]
pub(crate) unsafe fn choice_point(core: *mut Core) {
    // SAFETY: forwarded contract.
    unsafe {
        if (*core).preempt {
            preempt_at_choice_point(core);
        }
        #[cfg(feature = "explore")]
        if (*core).policy.is_some() {
            yield_now(core);
        }
    }
}

/// [`choice_point`]'s preemption, out of line (keeps the primitives' fast
/// paths small enough to inline): not while unwinding (I6).
///
/// # Safety
/// As for [`preempt`], `preempt` set.
#[cold]
#[inline(never)]
unsafe fn preempt_at_choice_point(core: *mut Core) {
    if !unwinding() {
        // SAFETY: forwarded contract.
        unsafe { preempt(core, false) }
    }
}

/// Switches from the running fiber to the highest ready level, which is above
/// the running one (`preempt` is set). A yielding fiber (`step`) goes to the
/// tail of its level's ring; a preempted one stays at its head, so it is the
/// first of its level to run again.
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack, with
/// `preempt` set and not unwinding.
#[inline(never)]
pub(crate) unsafe fn preempt(core: *mut Core, step: bool) {
    // SAFETY: the caller is `current`; a higher level is ready (I11), so the
    // fiber loaded is another one.
    unsafe {
        let c = (*core).current;
        if step && (*c).next != c {
            (*core).prev = c;
            (*core).current = (*c).next;
        }
        check_canary(core, c);
        switch_level(core);
        #[cfg(feature = "explore")]
        crate::policy::choose(core);
        let n = (*core).current;
        trace_event!(core, switch_out(id_of(core, c)));
        trace_event!(core, switch_in(id_of(core, n)));
        (*c).runs = (*c).runs.wrapping_add(1);
        fp_handover(core, c, n);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}

/// [`block_current`] on `queue` without a deadline, with the common case
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
/// As for [`block_current`] with a non-null `queue`; a non-null
/// `wait_value` is what I13 requires of a waiter in `queue`.
#[inline(always)]
pub(crate) unsafe fn block_on(core: *mut Core, queue: &WaitQueue, kind: WaitKind, wait_value: *const ()) -> Wake {
    // SAFETY: the caller is `current`; ring pointers are valid (I1); the
    // queue outlives the wait (forwarded contract, I5).
    unsafe {
        let c = (*core).current;
        let h = (*c).header;
        if !wait_value.is_null() {
            (*h).wait_value = wait_value;
        }
        if (*core).slow != 0 || unwinding() || (*h).cancel {
            return block_current(core, queue, kind, queue as *const WaitQueue as usize, None);
        }
        // What `block_current` does when `slow` is zero and there is no
        // deadline: no clock poll (no pollers), no timer to arm, no FP
        // hand-over (no own-FP fibers), no trace event (no tracer).
        check_canary(core, c);
        (*c).state = State::Blocked;
        (*c).wait_kind = kind;
        (*c).wait_obj = queue as *const WaitQueue as usize;
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
        queue.push_back(c);
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
        crate::time::poll(core);
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
