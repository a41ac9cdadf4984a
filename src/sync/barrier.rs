//! A reusable barrier for `n` fibers.
//!
//! ```
//! use filament::sync::Barrier;
//! use filament::{Runtime, StaticStack};
//!
//! static MEET: Barrier = Barrier::new(3);
//! static STACKS: [StaticStack<16384>; 3] = [const { StaticStack::new() }; 3];
//! static RT: Runtime<'static, 3> = Runtime::new();
//!
//! let mut handles = heapless::Vec::<_, 3>::new();
//! for stack in &STACKS {
//!     let h = RT
//!         .spawn(stack.claim().unwrap(), |fib| {
//!             let mut leaders = 0;
//!             for _round in 0..2 {
//!                 leaders += MEET.wait(fib).unwrap().is_leader() as u32;
//!             }
//!             leaders
//!         })
//!         .ok()
//!         .unwrap();
//!     handles.push(h).unwrap();
//! }
//! RT.run().unwrap();
//! let leaders: u32 = handles.into_iter().map(|h| RT.take(h).unwrap()).sum();
//! assert_eq!(leaders, 2); // one per round
//! ```

use core::cell::Cell;
use core::fmt;

use super::{Binding, TryError, WaitError, choice_point};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// Makes `n` fibers wait for each other, again and again.
///
/// The first `n - 1` fibers to call [`wait`](Self::wait) block; the `n`-th
/// releases them all (FIFO) and is the *leader* of that generation — exactly one
/// per generation. The barrier is then ready for the next generation.
/// A fiber that gives up ([`wait_timeout`](Self::wait_timeout)) leaves: it no
/// longer counts towards the current generation. A fiber whose deadline passed
/// just as the generation completed (counting it) returns `Ok` as a follower.
///
/// Belongs to one runtime at a time (see [`sync`](crate::sync)). In a
/// deadlock report a waiter shows as
/// [`WaitReason::Barrier`](crate::WaitReason::Barrier) with this barrier's
/// address.
#[repr(C)]
pub struct Barrier {
    /// First field: its address is the barrier's address (deadlock reports).
    waiters: WaitQueue,
    owner: Binding,
    parties: usize,
    /// Fibers waiting in the current generation.
    arrived: Cell<usize>,
    generation: Cell<u64>,
}

// SAFETY: everything but `owner` (atomic) and the immutable `parties` is
// touched only by fibers of the bound runtime, on the one thread running it
// (`Binding::check` gates every access).
unsafe impl Sync for Barrier {}
// SAFETY: a movable barrier is borrowed by nobody, so nobody waits in it.
unsafe impl Send for Barrier {}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
    generation: u64,
}

impl BarrierWaitResult {
    /// Whether this fiber completed the generation (exactly one per generation).
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// The generation this fiber took part in, counting from 0.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// A fiber's arrival, withdrawn if it leaves without the generation completing
/// (timeout, or cancellation unwinding through it).
struct Arrival<'a> {
    barrier: &'a Barrier,
    generation: u64,
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if self.barrier.generation.get() == self.generation {
            self.barrier.arrived.set(self.barrier.arrived.get() - 1);
        }
    }
}

impl Barrier {
    /// Names it: the name appears in deadlock reports
    /// ([`BlockedFiber::object`](crate::BlockedFiber::object)), in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`:
    ///
    /// ```
    /// static MEET: filament::sync::Barrier = filament::sync::Barrier::new(3).named("meet");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// A barrier for `parties` fibers (0 behaves like 1). `const`, for `static`s.
    pub const fn new(parties: usize) -> Self {
        Barrier {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            parties: if parties == 0 { 1 } else { parties },
            arrived: Cell::new(0),
            generation: Cell::new(0),
        }
    }

    /// The number of parties.
    pub const fn parties(&self) -> usize {
        self.parties
    }

    /// Blocks until `parties` fibers have called `wait` in this generation.
    /// Fails with [`WaitError::WrongRuntime`], [`WaitError::Cancelled`] (the
    /// fiber was cancelled) or [`WaitError::Unwinding`] (it unwinds and would
    /// have blocked); never times out.
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<BarrierWaitResult, WaitError> {
        self.wait_until(fib, None)
    }

    /// Like [`wait`](Self::wait), leaving the barrier with
    /// [`WaitError::TimedOut`] if the generation does not complete within
    /// `timeout` ticks.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<BarrierWaitResult, WaitError> {
        self.wait_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    /// Completes the generation if this fiber is the last one missing (and
    /// returns the leader's result); otherwise [`TryError::WouldBlock`] without
    /// arriving. Never blocks.
    pub fn try_wait(&self, fib: &Fiber<'_>) -> Result<BarrierWaitResult, TryError> {
        let (core, _lease) = self.owner.lease(fib)?;
        if self.arrived.get() + 1 < self.parties {
            return Err(TryError::WouldBlock);
        }
        // SAFETY: we are the running fiber of `core`.
        Ok(unsafe { self.trip(core) })
    }

    fn wait_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<BarrierWaitResult, WaitError> {
        let core = self.owner.bind(fib)?;
        if self.arrived.get() + 1 >= self.parties {
            // SAFETY: we are the running fiber of `core`.
            return Ok(unsafe { self.trip(core) });
        }
        let generation = self.generation.get();
        self.arrived.set(self.arrived.get() + 1);
        let arrival = Arrival { barrier: self, generation };
        // SAFETY: the queue lives in `self`, which outlives this call ('s) and
        // belongs to this runtime (checked above). If the wait is cancelled the
        // unwind drops `arrival`, withdrawing us.
        let wake = unsafe { fib.wait_on(&self.waiters, WaitKind::Barrier, deadline) };
        // Withdraws the arrival unless the generation completed with us in it.
        drop(arrival);
        if wake == Wake::Signaled || self.generation.get() != generation {
            Ok(BarrierWaitResult { leader: false, generation })
        } else if wake == Wake::Unwinding {
            Err(WaitError::Unwinding)
        } else if wake == Wake::Aborted {
            Err(WaitError::Cancelled)
        } else {
            Err(WaitError::TimedOut)
        }
    }

    /// The last arrival: wakes the generation and starts the next.
    ///
    /// # Safety
    /// Called by the running fiber of the bound runtime `core`.
    unsafe fn trip(&self, core: *mut Core) -> BarrierWaitResult {
        let generation = self.generation.get();
        self.arrived.set(0);
        self.generation.set(generation.wrapping_add(1));
        // SAFETY: the queue holds only blocked fibers of `core`; we run in it.
        unsafe {
            raw::wake_all(core, &self.waiters);
            choice_point(core);
        }
        BarrierWaitResult { leader: true, generation }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("parties", &self.parties).finish_non_exhaustive()
    }
}
