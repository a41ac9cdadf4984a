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
//! * [`EventGroup`] — a word of event bits: wait for any or all of a mask,
//!   optionally clearing them; `sync` for rendezvous.
//! * [`StreamBuffer`] — single-producer single-consumer byte stream with a
//!   trigger level; [`MessageBuffer`] — the same keeping message boundaries.
//!   Both are lock-free rings writable (and readable) from interrupt handlers
//!   and other OS threads, with blocking fiber forms; they follow their own
//!   rules (see [`stream_buffer`]): the ring belongs to no runtime (a side's
//!   interrupt source registers with the runtime of a fiber blocking on it,
//!   for its run), one writer and one reader at a time is enforced with
//!   [`Busy`], and their waiters never count as deadlocked.
//! * [`select`] — wait on several channels, semaphores, events and interrupt
//!   signals at once; the first ready case fires.
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
//! let check = RT.spawn(STACKS[0].claim().unwrap(), |fib| *TOTAL.lock(fib).unwrap()).unwrap();
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
//!   Interrupt handlers have no handle either; they use the `_from_isr`
//!   calls: [`Semaphore::give_from_isr`], [`Event::set_from_isr`], the
//!   `*_from_isr` forms of [`StreamBuffer`] and [`MessageBuffer`], and the
//!   objects of the interrupt side ([`IrqSignal`](crate::IrqSignal),
//!   [`IrqNotify`](crate::IrqNotify), [`IrqQueue`](crate::IrqQueue)).
//! * **One runtime at a time**: a primitive belongs to one runtime while
//!   that runtime uses it. A blocking call binds it to the fiber's runtime
//!   until that runtime's `run` returns; a non-blocking call (`try_`, queries,
//!   `set`, `release`, `close`) on a free primitive leases it for the call
//!   only (`try_lock`: while the guard lives). Any use from another runtime
//!   meanwhile fails with a `WrongRuntime` error and changes nothing (values
//!   are handed back). Once the run is over the primitive is free again: a
//!   `static` channel, mutex or semaphore serves one test's runtime after
//!   another (or runtimes on several threads, each getting `WrongRuntime`
//!   while another holds it; never both at once). Because of this, all other
//!   state is touched only by the fibers of one runtime, i.e. by one thread
//!   at a time, which is what makes the primitives `Sync` (for `Send`
//!   contents). The identity is the runtime's serial, a number handed out
//!   once per runtime and never reused in the process: a runtime value that
//!   is moved between runs is still the same runtime, and a new runtime at a
//!   dead one's address is a different one. A runtime poisoned by a deadlock
//!   keeps the primitives it bound (a parked fiber may still be linked in
//!   one).
//! * **Deadlock**: if every fiber is blocked and nothing can wake them,
//!   [`Runtime::run`](crate::Runtime::run) returns
//!   [`RunError::Deadlock`](crate::RunError::Deadlock) naming each blocked
//!   fiber and the primitive's address ([`WaitReason`](crate::WaitReason));
//!   a fiber in a [`select`] is listed with every source it waits on.
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

use core::cell::Cell;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::handle::Fiber;
use crate::raw::Core;

pub mod barrier;
pub mod channel;
pub mod event;
pub mod event_group;
pub(crate) mod inherit;
pub mod message_buffer;
pub mod mutex;
pub mod recursive;
mod ring;
mod ring_wait;
pub mod select;
pub mod semaphore;
pub mod stream_buffer;
mod waitlist;

pub use barrier::{Barrier, BarrierWaitResult};
pub use channel::{Channel, RecvError, SendError, TryRecvError, TrySendError};
pub use event::Event;
pub use event_group::{EventGroup, Want};
pub use message_buffer::{MESSAGE_HEADER, MessageBuffer, MessageError};
pub use mutex::{Mutex, MutexGuard};
pub use recursive::{RecursiveMutex, RecursiveMutexGuard};
pub use ring::Busy;
pub use semaphore::{GiveError, Semaphore};
pub use stream_buffer::{StreamBuffer, StreamError, TriggerLevelError};

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
    /// This fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)): the
    /// wait ended early, or never began. Nothing was handed to it.
    Cancelled,
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::TimedOut => f.write_str("timed out"),
            WaitError::Unwinding => f.write_str("cannot block while the fiber unwinds"),
            WaitError::Cancelled => f.write_str("the waiting fiber was cancelled"),
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

/// The runtime a primitive belongs to, and for how long.
///
/// * **Bound for a run**: the first blocking call (`&'s self`) of a fiber
///   binds the primitive to that fiber's runtime until the runtime's `run`
///   returns (or the runtime is dropped). The runtime links the binding into
///   its list and releases every one when `run` returns with all fibers
///   finished — nobody waits in the primitive then, no guard of it is alive,
///   no wait node is linked. A poisoned runtime keeps its bindings for good
///   (a parked fiber may still be linked in a primitive).
/// * **Leased**: a non-blocking call (`&self`, which may be short-lived: a
///   primitive on a fiber's stack) on an unbound primitive leases it to its
///   runtime for the call (for `try_lock`, for the guard's life). The last
///   lease gives it back. A lease never links the primitive anywhere, so the
///   primitive may die right after.
///
/// Either way, only fibers of the one runtime that owns the primitive touch
/// its non-atomic state, on the one thread running that runtime: another
/// runtime's call fails with `WrongRuntime` and changes nothing. Serials are
/// never reused, so a new runtime at a dead one's address is another runtime.
pub(crate) struct Binding {
    /// 0: free; a runtime serial: bound for that runtime's run; a serial with
    /// [`LEASED`] set: leased to that runtime.
    owner: AtomicU64,
    /// Live leases while leased (owner's thread only).
    leases: Cell<u32>,
    /// Link in the owner runtime's list of bound primitives (owner's thread only).
    next: Cell<*const Binding>,
}

/// Marks a leased binding (serials never reach bit 63).
const LEASED: u64 = 1 << 63;

impl Binding {
    pub(crate) const fn new() -> Self {
        Binding { owner: AtomicU64::new(0), leases: Cell::new(0), next: Cell::new(core::ptr::null()) }
    }

    /// Binds the primitive to `fib`'s runtime for the rest of its `run` (a
    /// lease by the same runtime is upgraded); returns the runtime's core.
    ///
    /// `'s`: the primitive outlives the runtime's stacks, hence the runtime's
    /// `run`, so the runtime may keep it in its list until `run` returns.
    ///
    /// Inline: the common case, a primitive already bound to this runtime,
    /// is one load and one compare (a serial never equals `OUTSIDE`).
    #[inline(always)]
    pub(crate) fn bind<'s>(&'s self, fib: &Fiber<'s>) -> Result<*mut Core, WrongRuntime> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while the fiber runs.
        let me = unsafe { (*core).serial };
        if self.owner.load(Ordering::Acquire) == me {
            return Ok(core);
        }
        self.bind_slow(fib)
    }

    /// Whether the primitive is bound to `fib`'s runtime for its run: the
    /// fast path of [`bind`](Self::bind), for a primitive that does work of
    /// its own once per run in its slow path (a semaphore registering its
    /// interrupt source) and then calls `bind`.
    ///
    /// # Safety
    /// `core` is the core of a running fiber (live).
    #[inline(always)]
    pub(crate) unsafe fn is_bound(&self, core: *mut Core) -> bool {
        // SAFETY: per the contract.
        let me = unsafe { (*core).serial };
        self.owner.load(Ordering::Acquire) == me
    }

    /// [`bind`](Self::bind) for a primitive not bound to this runtime yet.
    #[inline(never)]
    fn bind_slow<'s>(&'s self, fib: &Fiber<'s>) -> Result<*mut Core, WrongRuntime> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while the fiber runs.
        let me = unsafe { (*core).serial };
        let owner = self.owner_past_outside();
        if owner == me {
            return Ok(core);
        }
        if owner != 0 && owner != me | LEASED {
            return Err(WrongRuntime);
        }
        if self.owner.compare_exchange(owner, me, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Another runtime took the free binding meanwhile (a lease by us
            // cannot change: we are running), or code outside any fiber leased
            // it for a moment: look again.
            return self.bind_slow(fib);
        }
        self.leases.set(0);
        // SAFETY: we own the binding now and run inside our runtime, the only
        // code touching its list; `self` outlives the run ('s).
        unsafe {
            self.next.set((*core).bound);
            (*core).bound = self;
        }
        Ok(core)
    }

    /// Leases the primitive to `fib`'s runtime for a non-blocking call (if it
    /// is not bound to it already); the lease ends when the returned value is
    /// dropped.
    ///
    /// Inline: a primitive bound to this runtime (every one a fiber of it
    /// blocked in this run) needs no lease, one load and one compare.
    #[inline(always)]
    pub(crate) fn lease(&self, fib: &Fiber<'_>) -> Result<(*mut Core, Lease<'_>), WrongRuntime> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while the fiber runs.
        let me = unsafe { (*core).serial };
        if self.owner.load(Ordering::Acquire) == me {
            return Ok((core, Lease { binding: self, me: 0 }));
        }
        self.lease_slow(fib)
    }

    /// [`lease`](Self::lease) for a primitive not bound to this runtime.
    #[inline(never)]
    fn lease_slow(&self, fib: &Fiber<'_>) -> Result<(*mut Core, Lease<'_>), WrongRuntime> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while the fiber runs.
        let me = unsafe { (*core).serial };
        loop {
            let owner = self.owner_past_outside();
            if owner == me {
                return Ok((core, Lease { binding: self, me: 0 }));
            }
            if owner == me | LEASED {
                self.leases.set(self.leases.get() + 1);
                return Ok((core, Lease { binding: self, me }));
            }
            if owner != 0 {
                return Err(WrongRuntime);
            }
            if self.owner.compare_exchange(0, me | LEASED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                self.leases.set(1);
                return Ok((core, Lease { binding: self, me }));
            }
            // Taken meanwhile (by another runtime, or for a moment by code
            // outside any fiber): look again.
        }
    }

    /// The owner, once no code outside any fiber holds the primitive: such a
    /// lease lasts one short non-blocking call (no user code, no switch), so
    /// a fiber waits it out rather than fail with `WrongRuntime` although no
    /// other runtime uses the primitive.
    #[inline]
    fn owner_past_outside(&self) -> u64 {
        loop {
            let owner = self.owner.load(Ordering::Acquire);
            if owner != OUTSIDE {
                return owner;
            }
            core::hint::spin_loop();
        }
    }
}

/// The owner value of a primitive leased by code outside any fiber (no
/// runtime serial is 0).
const OUTSIDE: u64 = LEASED;

/// The owner value while [`Binding::lock_out`] shuts every caller out: no
/// runtime's serial, neither free nor `OUTSIDE`, so every `bind`, `lease`
/// and `lease_outside` fails at once with `WrongRuntime` (none spins).
const LOCKED_OUT: u64 = u64::MAX;

impl Binding {
    /// Shuts every caller out — the calling fiber's nested calls included —
    /// until the returned guard is dropped (also on unwind): for the rare
    /// operation that runs user code (`T::clone`) while it holds a reference
    /// into the primitive's state. The caller holds a bind or lease of its
    /// own runtime, so no other thread changes `owner` meanwhile (every other
    /// transition starts from 0), and the guard restores it exactly.
    pub(crate) fn lock_out(&self) -> LockOut<'_> {
        let prev = self.owner.swap(LOCKED_OUT, Ordering::AcqRel);
        debug_assert!(prev != 0 && prev != OUTSIDE && prev != LOCKED_OUT);
        LockOut { binding: self, prev }
    }
}

/// Undoes [`Binding::lock_out`] when dropped.
pub(crate) struct LockOut<'a> {
    binding: &'a Binding,
    prev: u64,
}

impl Drop for LockOut<'_> {
    fn drop(&mut self) {
        self.binding.owner.store(self.prev, Ordering::Release);
    }
}

impl Binding {
    /// Leases a free primitive to the caller, outside any fiber (setup before
    /// `run`, queries between runs), for as long as the returned value lives.
    /// `None` while a runtime holds it. A free primitive has no waiters (only
    /// a run binding can have them, and it is released with none left).
    pub(crate) fn lease_outside(&self) -> Option<OutsideLease<'_>> {
        self.owner.compare_exchange(0, OUTSIDE, Ordering::AcqRel, Ordering::Acquire).ok().map(|_| OutsideLease(self))
    }
}

/// A primitive leased outside any fiber (see [`Binding::lease_outside`]).
pub(crate) struct OutsideLease<'a>(&'a Binding);

impl Drop for OutsideLease<'_> {
    fn drop(&mut self) {
        self.0.owner.store(0, Ordering::Release);
    }
}

/// A lease on a primitive (see [`Binding`]); the last one frees it.
pub(crate) struct Lease<'a> {
    binding: &'a Binding,
    /// The leasing runtime's serial; 0: no lease taken (already bound).
    me: u64,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let b = self.binding;
        // Still leased by us (not upgraded to a run binding meanwhile)?
        if self.me != 0 && b.owner.load(Ordering::Relaxed) == self.me | LEASED {
            let left = b.leases.get() - 1;
            b.leases.set(left);
            if left == 0 {
                b.owner.store(0, Ordering::Release);
            }
        }
    }
}

/// Releases every primitive bound to the runtime for its run (see
/// [`Binding`]). Called when `run` returns with every fiber finished, and
/// when the runtime is dropped; a poisoned runtime keeps its bindings.
///
/// # Safety
/// Exclusive access to `core`; no fiber of it is suspended (none can be in a
/// primitive's wait queue or hold a wait node or guard).
pub(crate) unsafe fn release_bindings(core: *mut Core) {
    // SAFETY: per the contract; every listed binding outlives the run ('s).
    unsafe {
        if (*core).poisoned {
            return;
        }
        let mut b = (*core).bound;
        (*core).bound = core::ptr::null();
        while !b.is_null() {
            let next = (*b).next.get();
            (*b).next.set(core::ptr::null());
            // Last: from here on another runtime may bind it.
            (*b).owner.store(0, Ordering::Release);
            b = next;
        }
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
