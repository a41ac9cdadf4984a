//! Fiber-blocking primitives, all built on the one wait-queue mechanism.
//!
//! * [`Mutex`] — mutual exclusion with a guard; ownership is handed to the
//!   first waiter on unlock.
//! * [`Semaphore`] — counting semaphore; a released permit goes to the first
//!   waiter.
//! * [`Channel`] — bounded MPMC queue with inline storage; values are handed
//!   straight to a waiting receiver, room straight to a waiting sender;
//!   [`close`](Channel::close) lets receivers drain and gives blocked senders
//!   their values back.
//! * [`Event`] — manual-reset event: `set` wakes every waiter and stays set
//!   until `reset`.
//! * [`Barrier`] — `n` parties meet; exactly one is the leader; reusable.
//!
//! ```
//! use filament::sync::{Channel, Mutex};
//! use filament::{Runtime, StaticStack};
//!
//! static JOBS: Channel<u32, 4> = Channel::new();
//! static TOTAL: Mutex<u32> = Mutex::new(0);
//! static STACKS: [StaticStack<16384>; 3] = [const { StaticStack::new() }; 3];
//! static RT: Runtime<'static, 3> = Runtime::new();
//!
//! // Two workers sum what the producer sends.
//! for stack in &STACKS[..2] {
//!     RT.spawn_detached(stack.claim().unwrap(), |fib| {
//!         while let Ok(job) = JOBS.recv(fib) {
//!             *TOTAL.lock(fib).unwrap() += job;
//!         }
//!     })
//!     .ok()
//!     .unwrap();
//! }
//! let producer = RT
//!     .spawn(STACKS[2].claim().unwrap(), |fib| {
//!         for job in 1..=10 {
//!             JOBS.send(fib, job).unwrap();
//!         }
//!         JOBS.close(fib).unwrap(); // workers drain what is left, then stop
//!     })
//!     .ok()
//!     .unwrap();
//! RT.run().unwrap();
//! RT.take(producer).unwrap();
//! let check = RT.spawn(STACKS[0].claim().unwrap(), |fib| *TOTAL.lock(fib).unwrap()).ok().unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(check).unwrap(), 55);
//! ```
//!
//! # Rules common to every primitive
//!
//! * **`const fn new`**: a primitive can be a `static`, or live on a fiber's
//!   stack (or any memory that outlives the fibers that use it).
//! * **FIFO**: waiters are woken in the order they started waiting. What a
//!   waiter waits for is *handed* to it when it is woken (mutex ownership, a
//!   permit, a value, room in a channel), so a fiber arriving later — even one
//!   using a `try_` method — cannot take it first (no barging).
//! * **Three forms**: a blocking method, a `try_` method that never blocks,
//!   and a `_timeout` method that gives up after a number of ticks with a
//!   typed `TimedOut` error (a timed-out waiter loses and duplicates nothing:
//!   a hand-off and a timeout exclude each other). Timeouts use the runtime's
//!   clock ([`Fiber::now`](crate::Fiber::now)); a timeout of `0` tries once;
//!   a timeout of `Ticks::MAX` (or one whose deadline would overflow) waits
//!   forever, like the blocking form.
//! * **Fibers only**: every method that touches the primitive's state takes
//!   the running fiber's [`Fiber`] handle. Blocking outside a
//!   fiber is therefore rejected at compile time: there is no handle to pass.
//!   Interrupt handlers have no handle either; they use
//!   [`IrqSignal::notify_from_isr`](crate::IrqSignal::notify_from_isr) and a
//!   fiber forwards the event to these primitives.
//! * **One runtime**: a primitive binds permanently to the first runtime that
//!   uses it (an atomic compare-exchange of the runtime's serial). Any use
//!   from another runtime fails with a `WrongRuntime` error and changes
//!   nothing (values are handed back). Because of that binding, all other
//!   state is touched only by the fibers of one runtime, i.e. by one thread at
//!   a time, which is what makes the primitives `Sync` (for `Send` contents).
//!   The identity is the runtime's serial, a number handed out once per
//!   runtime and never reused in the process: a runtime value that is moved
//!   between runs is still the same runtime (its primitives keep working), and
//!   a new runtime at a dead one's address is a different one.
//! * **Deadlock**: if every fiber is blocked and nothing can wake them,
//!   [`Runtime::run`](crate::Runtime::run) returns
//!   [`RunError::Deadlock`](crate::RunError::Deadlock) naming each blocked
//!   fiber and the primitive's address ([`WaitReason`](crate::WaitReason)).
//!   A waiter cancelled that way (under `std`) leaves the primitive consistent.
//!
//! # Lifetimes
//!
//! Blocking methods take `&'s self` with the fiber's `&Fiber<'s>`: a primitive
//! fibers can block on must outlive the runtime's stacks, so no fiber can still
//! be queued in it when it is gone. A primitive on a fiber's own stack can only
//! be used through the non-blocking `try_` forms:
//!
//! ```compile_fail
//! use filament::sync::Mutex;
//! use filament::{Runtime, StaticStack};
//! static STACK: StaticStack<16384> = StaticStack::new();
//! static RT: Runtime<'static, 2> = Runtime::new();
//! RT.spawn_detached(STACK.claim().unwrap(), |fib| {
//!     let local = Mutex::new(0);
//!     *local.lock(fib).unwrap() += 1; // error: `local` does not live long enough
//! });
//! ```

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::raw::Core;
use crate::runtime::Fiber;

pub mod barrier;
pub mod channel;
pub mod event;
pub mod mutex;
pub mod semaphore;
mod waitlist;

pub use barrier::{Barrier, BarrierWaitResult};
pub use channel::{Channel, RecvError, SendError, TryRecvError, TrySendError};
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use semaphore::Semaphore;

/// The primitive is bound to another runtime (see [the module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongRuntime;

impl fmt::Display for WrongRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("primitive is bound to another runtime")
    }
}

impl core::error::Error for WrongRuntime {}

/// Why a blocking wait failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The deadline passed first (`_timeout` methods only).
    TimedOut,
    /// The primitive is bound to another runtime.
    WrongRuntime,
    /// This fiber is unwinding (a panic or a cancellation is running its destructors) and the wait would have blocked. A fiber never switches while it unwinds: std's "this thread is panicking" state belongs to the OS thread, so every other fiber would observe it.
    Unwinding,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::TimedOut => f.write_str("timed out"),
            WaitError::Unwinding => f.write_str("cannot block while the fiber unwinds"),
            WaitError::WrongRuntime => fmt::Display::fmt(&WrongRuntime, f),
        }
    }
}

impl core::error::Error for WaitError {}

impl From<WrongRuntime> for WaitError {
    fn from(_: WrongRuntime) -> Self {
        WaitError::WrongRuntime
    }
}

/// Why a `try_` method did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryError {
    /// It would have had to block.
    WouldBlock,
    /// The primitive is bound to another runtime.
    WrongRuntime,
}

impl fmt::Display for TryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryError::WouldBlock => f.write_str("operation would block"),
            TryError::WrongRuntime => fmt::Display::fmt(&WrongRuntime, f),
        }
    }
}

impl core::error::Error for TryError {}

impl From<WrongRuntime> for TryError {
    fn from(_: WrongRuntime) -> Self {
        TryError::WrongRuntime
    }
}

/// The runtime a primitive is bound to: 0 until first use, then that
/// runtime's serial for good (serials are never reused, so a new runtime at a
/// dead one's address is a different runtime).
pub(crate) struct Binding(AtomicU64);

impl Binding {
    pub(crate) const fn new() -> Self {
        Binding(AtomicU64::new(0))
    }

    /// Binds to `fib`'s runtime on first use; returns its core if the
    /// primitive belongs to it.
    ///
    /// Only a caller that got `Ok` may touch the primitive's non-atomic state:
    /// it is then a fiber of the bound runtime, running on the one thread that
    /// runs that runtime now (runs on different threads are ordered by the
    /// runtime's own lock).
    #[inline]
    pub(crate) fn check(&self, fib: &Fiber<'_>) -> Result<*mut Core, WrongRuntime> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while the fiber runs.
        let me = unsafe { (*core).serial };
        let owner = self.0.load(Ordering::Acquire);
        if owner == me {
            return Ok(core);
        }
        if owner == 0 {
            return match self.0.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => Ok(core),
                Err(now) if now == me => Ok(core),
                Err(_) => Err(WrongRuntime),
            };
        }
        Err(WrongRuntime)
    }
}

/// Offers an exploring scheduler a switch after a primitive changed state.
/// Skipped while the fiber unwinds (a guard dropped during cancellation).
///
/// # Safety
/// Must be called by the running fiber of `core`.
#[inline(always)]
pub(crate) unsafe fn choice_point(core: *mut Core) {
    #[cfg(feature = "explore")]
    if std::thread::panicking() {
        return;
    }
    // SAFETY: forwarded contract.
    unsafe { crate::raw::choice_point(core) }
}
