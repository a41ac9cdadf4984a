//! Cancelling another fiber: its blocking calls fail with a typed
//! `Cancelled` error, so it can wind down through its ordinary error paths.
//!
//! [`Fiber::cancel`] marks fiber `id` cancelled. From then on:
//!
//! * a wait it is blocked in ends at once and fails with the primitive's
//!   `Cancelled` error ([`WaitError::Cancelled`](crate::sync::WaitError::Cancelled),
//!   [`RecvError::Cancelled`](crate::sync::RecvError::Cancelled),
//!   [`SendError::Cancelled`](crate::sync::SendError::Cancelled) with the
//!   value handed back, [`JoinError::JoinCancelled`](crate::JoinError::JoinCancelled)
//!   with the handle, ...) — exactly like a timeout: nothing was handed to it,
//!   nothing is lost;
//! * every later blocking call fails the same way without blocking; a
//!   `sleep` returns at once; `yield_now` still yields;
//! * a fiber that was already woken (ready, not yet run) keeps what its wait
//!   gave it: only its *next* blocking call fails. A suspended fiber is
//!   resumed (keeping what its wait gave it) so it can wind down.
//!
//! The mark stays until the fiber calls [`Fiber::clear_cancel`] (to block
//! again, e.g. in clean-up code); [`Fiber::is_cancelled`] lets loops that
//! never block check it. Cancellation is cooperative: a fiber that never
//! blocks and never checks runs on.
//!
//! Under `std`, [`Fiber::cancel_unwind`] is the unwinding form: the target's
//! blocked or next blocking call unwinds (running its destructors), as the
//! runtime's deadlock cancellation does, and its join reports
//! [`JoinError::Cancelled`](crate::JoinError::Cancelled).
//!
//! ```
//! use filament::sync::{Channel, RecvError};
//! use filament::{Runtime, StaticStack};
//! static JOBS: Channel<u32, 4> = Channel::new();
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//!
//! let worker = RT
//!     .spawn(STACKS[0].claim().unwrap(), |fib| {
//!         let mut done = 0;
//!         loop {
//!             match JOBS.recv(fib) {
//!                 Ok(_job) => done += 1,
//!                 Err(RecvError::Cancelled) => return done, // told to stop
//!                 Err(e) => panic!("{e}"),
//!             }
//!         }
//!     })
//!     .unwrap();
//! let id = worker.id();
//! RT.spawn_detached(STACKS[1].claim().unwrap(), move |fib| {
//!     JOBS.send(fib, 1).unwrap();
//!     JOBS.send(fib, 2).unwrap();
//!     fib.yield_now(); // the worker takes both, then blocks in recv
//!     fib.cancel(id).unwrap();
//! })
//! .unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(worker).unwrap(), 2);
//! ```

use core::fmt;

use crate::fiber::{FiberId, Slot, State, WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};

/// Why [`Fiber::cancel`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelError {
    /// No live fiber has this id (it finished, or its slot was reused).
    NoSuchFiber(FiberId),
}

impl fmt::Display for CancelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelError::NoSuchFiber(id) => write!(f, "no live fiber {id} to cancel"),
        }
    }
}

impl core::error::Error for CancelError {}

/// The live, unfinished fiber `id` of `core`.
///
/// # Safety
/// Exclusive access to `core`.
unsafe fn live(core: *mut Core, id: FiberId) -> Result<*mut Slot, CancelError> {
    // SAFETY: bounds-checked index, then a read of the slot in place.
    unsafe {
        if id.index() < (*core).cap {
            let s = (*core).slots.add(id.index());
            if matches!((*s).state, State::Ready | State::Blocked) && (*s).generation == id.generation() {
                return Ok(s);
            }
        }
        Err(CancelError::NoSuchFiber(id))
    }
}

/// Marks `s` cancelled and ends the wait it is blocked in, if any.
///
/// # Safety
/// Exclusive access to `core` from one of its running fibers; `s` a Ready or
/// Blocked slot of `core`, not the caller's.
unsafe fn cancel_slot(core: *mut Core, s: *mut Slot, unwind: bool) {
    // SAFETY: a live slot's header lives; a Blocked slot with a queue kind is
    // in the live queue at `wait_obj` (I2, I5), and its deadline, if any, in
    // the heap (I3) — what `time::expire_now` relies on too.
    unsafe {
        let h = (*s).header;
        (*h).cancel = true;
        (*h).cancel_unwind |= unwind;
        if (*s).state != State::Blocked {
            // Ready (woken, not yet run): a pending suspension is withdrawn,
            // so it winds down instead of stopping at the end of its wait.
            (*h).suspend = false;
            return; // ready: its next blocking call fails
        }
        match (*s).wait_kind {
            WaitKind::Parked => {} // parked for good after a deadlock
            WaitKind::Suspended => {
                // Resumed to wind down, keeping what its last wait gave it.
                (*h).suspend = false;
                (*s).wait_kind = WaitKind::None;
                (*s).wait_obj = 0;
                crate::trace::trace_event!(core, wake(raw::id_of(core, s)));
                raw::make_ready(core, s);
            }
            kind => {
                // A pending suspension is withdrawn: a cancelled fiber winds down.
                (*h).suspend = false;
                crate::time::cancel_deadline(core, s);
                if kind.has_queue() {
                    (*((*s).wait_obj as *const crate::wait::WaitQueue)).leave(core, s);
                }
                raw::wake(core, s, if unwind { Wake::Cancelled } else { Wake::Aborted });
            }
        }
    }
}

impl<'s> Fiber<'s> {
    /// Cancels fiber `id` (which may be this fiber): its blocking calls fail
    /// with their `Cancelled` errors from now on, starting with the one it is
    /// blocked in (see the [module docs](crate::cancel)). Cancelling a
    /// cancelled fiber changes nothing.
    pub fn cancel(&self, id: FiberId) -> Result<(), CancelError> {
        self.cancel_with(id, false)
    }

    /// Cancels fiber `id` by unwinding (feature `std`): its blocked or next
    /// blocking call unwinds with the runtime's cancellation payload, running
    /// its destructors; its join reports
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled). A fiber that
    /// catches the unwind and blocks again unwinds again.
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn cancel_unwind(&self, id: FiberId) -> Result<(), CancelError> {
        self.cancel_with(id, true)
    }

    fn cancel_with(&self, id: FiberId, unwind: bool) -> Result<(), CancelError> {
        let core = self.core_ptr();
        // SAFETY: we are the running fiber of `core` (exclusive access, I1).
        unsafe {
            let s = live(core, id)?;
            if s == self.slot_ptr() {
                let h = (*s).header;
                (*h).cancel = true;
                (*h).cancel_unwind |= unwind;
                return Ok(());
            }
            cancel_slot(core, s, unwind);
            crate::sync::choice_point(core);
        }
        Ok(())
    }

    /// Whether this fiber was cancelled (and has not cleared it since).
    pub fn is_cancelled(&self) -> bool {
        // SAFETY: our own header, while we run.
        unsafe { (*(*self.slot_ptr()).header).cancel }
    }

    /// Clears this fiber's cancellation, so it may block again (for clean-up
    /// that must wait); returns whether it was cancelled.
    pub fn clear_cancel(&self) -> bool {
        // SAFETY: our own header, while we run.
        unsafe {
            let h = (*self.slot_ptr()).header;
            (*h).cancel_unwind = false;
            core::mem::replace(&mut (*h).cancel, false)
        }
    }
}
