//! Suspending and resuming another fiber (FreeRTOS `vTaskSuspend` /
//! `vTaskResume`).
//!
//! [`Fiber::suspend`] stops a fiber until some fiber calls
//! [`Fiber::resume`] for it; it never runs in between, whatever wakes it.
//! What happens depends on what the target is doing:
//!
//! * **itself**: the call blocks until resumed (a yield that lasts until
//!   someone says so);
//! * **ready** (queued to run, or woken and not yet run): it leaves the ready
//!   queue at once. A fiber woken from an [`IrqQueue`](crate::IrqQueue),
//!   [`IrqSignal`](crate::IrqSignal) or [`IrqNotify`](crate::IrqNotify) wait,
//!   or from a [`select`](crate::sync::select), was handed nothing (it takes
//!   what is there when it runs), so its wake goes on to the next waiter of
//!   that object — for a select, as when it returns: every source of its
//!   cases that is ready wakes its next sleeping selector — and it looks
//!   again when resumed (a select keeps its place in every source and
//!   blocks again if no case is ready then);
//! * **blocked** in a wait (a primitive, a join, a sleep, a notification): the
//!   wait goes on undisturbed, and the fiber stops the moment it ends —
//!   *what the wait gave it is kept* (a received value, a mutex handed over,
//!   a timeout) and delivered when it is resumed. Nothing is lost and no wait
//!   is cut short (unlike FreeRTOS, where a suspended task leaves its event
//!   list): a resource handed to a suspended fiber stays with it, so suspend
//!   holders of shared resources with care.
//!
//! Suspensions do not nest: one `resume` undoes any number of `suspend`s.
//! `resume` of a fiber whose suspension has not taken effect yet (still in its
//! wait) withdraws it. A suspended fiber is blocked for every other purpose:
//! a runtime whose fibers are all blocked, some of them suspended, is
//! deadlocked (the report says `resume (suspended)`), and under `std` the
//! deadlock cancellation unwinds suspended fibers too.
//!
//! ```
//! use filament::{Runtime, StaticStack};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//! static TICKS: AtomicU32 = AtomicU32::new(0);
//!
//! let ticker = RT
//!     .spawn(STACKS[0].claim().unwrap(), |fib| {
//!         for _ in 0..10 {
//!             TICKS.fetch_add(1, Ordering::Relaxed);
//!             fib.yield_now();
//!         }
//!     })
//!     .unwrap();
//! let id = ticker.id();
//! let boss = RT
//!     .spawn(STACKS[1].claim().unwrap(), move |fib| {
//!         fib.suspend(id).unwrap(); // ticker stops after its first tick
//!         for _ in 0..5 {
//!             fib.yield_now();
//!         }
//!         let frozen = TICKS.load(Ordering::Relaxed);
//!         fib.resume(id).unwrap();
//!         frozen
//!     })
//!     .unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(boss).unwrap(), 1);
//! assert_eq!(TICKS.load(Ordering::Relaxed), 10);
//! # RT.take(ticker).unwrap();
//! ```

use core::fmt;

use crate::fiber::{FiberId, Slot, State, WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};

/// Why [`Fiber::suspend`] or [`Fiber::resume`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SuspendError {
    /// No live fiber has this id (it finished, or its slot was reused).
    NoSuchFiber(FiberId),
    /// [`resume`](Fiber::resume) of a fiber that is not suspended.
    NotSuspended(FiberId),
    /// A fiber that unwinds cannot suspend itself: a fiber never switches
    /// while it unwinds (std only). Nothing changed.
    Unwinding,
    /// This fiber is cancelled ([`Fiber::cancel`]): it does not suspend
    /// itself. Nothing changed.
    Cancelled,
}

impl fmt::Display for SuspendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuspendError::NoSuchFiber(id) => write!(f, "no live fiber {id}"),
            SuspendError::NotSuspended(id) => write!(f, "fiber {id} is not suspended"),
            SuspendError::Unwinding => f.write_str("cannot suspend itself while unwinding"),
            SuspendError::Cancelled => f.write_str("a cancelled fiber cannot suspend itself"),
        }
    }
}

impl core::error::Error for SuspendError {}

/// The live, unfinished fiber `id` of `core`.
///
/// # Safety
/// Exclusive access to `core`.
unsafe fn live(core: *mut Core, id: FiberId) -> Result<*mut Slot, SuspendError> {
    // SAFETY: bounds-checked index, then a read of the slot in place.
    unsafe {
        if id.index() < (*core).cap {
            let s = (*core).slots.add(id.index());
            if matches!((*s).state, State::Ready | State::Blocked) && (*s).generation == id.generation() {
                return Ok(s);
            }
        }
        Err(SuspendError::NoSuchFiber(id))
    }
}

impl<'s> Fiber<'s> {
    /// Suspends fiber `id` (which may be this fiber) until
    /// [`resume`](Self::resume) is called for it; see the
    /// [module docs](crate::suspend) for what happens to a fiber that is
    /// waiting. Suspending this fiber blocks until it is resumed; suspending a
    /// suspended fiber again changes nothing.
    pub fn suspend(&self, id: FiberId) -> Result<(), SuspendError> {
        let core = self.core_ptr();
        // SAFETY: we are the running fiber of `core` (exclusive access, I1);
        // `live` returns a Ready or Blocked slot, whose header lives.
        unsafe {
            let s = live(core, id)?;
            if s == self.slot_ptr() {
                if raw::unwinding() {
                    return Err(SuspendError::Unwinding);
                }
                if (*(*s).header).cancel {
                    return Err(SuspendError::Cancelled);
                }
                (*(*s).header).suspend = true;
                (*s).wake = Wake::Signaled; // not a stale value of an old wait
                raw::hold_suspended(core, s);
                // Resumed, or cancelled (by `cancel`, `cancel_unwind` or a
                // deadlock): a cancelled fiber's call fails or unwinds.
                let h = (*s).header;
                if (*s).wake == Wake::Cancelled || (*h).cancel_unwind {
                    crate::handle::cancel_unwind(h);
                }
                if (*h).cancel {
                    return Err(SuspendError::Cancelled);
                }
                return Ok(());
            }
            (*(*s).header).suspend = true;
            let mut passed_on = false;
            if (*s).state == State::Ready {
                // Off the ready queue now; its `wake` (if it was woken and
                // has not run yet) is kept for when it resumes.
                raw::unlink_ready(core, s);
                // Woken from an interrupt wait and not yet run: it counts
                // again when it resumes (`block_current`'s tail). Such a wake
                // handed it nothing (an `IrqQueue`, `IrqSignal` or
                // `IrqNotify` wakes one waiter, which takes what is there
                // when it runs): passed on, or the other waiters would
                // sleep with the value there. Every registered source is
                // looked at again at the next poll; the woken object wakes
                // its next waiter (this one, suspended, is skipped), the
                // others find nothing (review 10).
                if (*s).irq_wait {
                    crate::irq::source::rouse_all(core);
                }
                raw::irq_uncount(core, s);
                // Woken through a select's node (its `wait_obj` still names
                // the select's record): also handed nothing, passed on below.
                let select = (*s).wait_obj;
                (*s).state = State::Blocked;
                (*s).wait_kind = WaitKind::Suspended;
                (*s).wait_obj = 0;
                crate::trace::trace_event!(core, block_in(raw::id_of(core, s), crate::WaitReason::Suspended, ""));
                if select != 0 {
                    // As its select's return would: each ready source wakes
                    // its next sleeping selector (this one is skipped now);
                    // it looks at its cases again when resumed (review 13).
                    crate::sync::select::pass_on(core, select);
                    passed_on = true;
                }
            }
            // Blocked: it stops when its wait ends (`block_current`), and
            // meanwhile no interrupt can make it run: not an interrupt waiter.
            raw::irq_uncount(core, s);
            if passed_on {
                // The wake passed on may have made a higher level ready: it
                // runs now, as after `resume` (review 14); the policy of an
                // exploring run may switch here too.
                crate::sync::choice_point(core);
            }
            Ok(())
        }
    }

    /// Resumes fiber `id`, suspended by [`suspend`](Self::suspend): it is
    /// ready again (behind the fibers already ready at its level) and its
    /// interrupted call carries on with whatever its wait gave it. A
    /// suspension that has not taken effect yet (the fiber still waits) is
    /// withdrawn. Fails, changing nothing, if the fiber is not suspended.
    pub fn resume(&self, id: FiberId) -> Result<(), SuspendError> {
        let core = self.core_ptr();
        // SAFETY: as in `suspend`; a Suspended slot is in no queue and has no
        // deadline, so making it ready relinks nothing else.
        unsafe {
            let s = live(core, id)?;
            if !(*(*s).header).suspend {
                return Err(SuspendError::NotSuspended(id));
            }
            (*(*s).header).suspend = false;
            if (*s).state == State::Blocked && (*s).wait_kind != WaitKind::Suspended {
                // Withdrawn while it still waits: an interrupt may end the wait again.
                raw::irq_recount(core, s);
                if (*s).wait_kind == WaitKind::Select {
                    // Its sources skipped it while the suspension was
                    // pending (it would have taken nothing), so what became
                    // ready meanwhile woke nobody: wake it to look again (a
                    // select re-checks its cases on every wake-up and blocks
                    // again, keeping its place, if none fires; review 9).
                    raw::wake(core, s, crate::fiber::Wake::Signaled);
                    crate::sync::choice_point(core);
                    return Ok(());
                }
            }
            if (*s).state == State::Blocked && (*s).wait_kind == WaitKind::Suspended {
                (*s).wait_kind = WaitKind::None;
                (*s).wait_obj = 0;
                crate::trace::trace_event!(core, wake(raw::id_of(core, s)));
                raw::make_ready(core, s);
                crate::sync::choice_point(core);
            }
            Ok(())
        }
    }

    /// Whether fiber `id` is suspended, or will be when its wait ends.
    pub fn is_suspended(&self, id: FiberId) -> Result<bool, SuspendError> {
        // SAFETY: as in `suspend`.
        unsafe { Ok((*(*live(self.core_ptr(), id)?).header).suspend) }
    }
}
