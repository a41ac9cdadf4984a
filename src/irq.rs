//! The interrupt-safe side: a signal an interrupt handler (or, on a host, a
//! signal handler or another OS thread) raises with atomics only, and fibers
//! wait on.
//!
//! # What is safe in interrupt context
//!
//! Exactly one call: [`IrqSignal::notify_from_isr`]. It performs one atomic
//! `fetch_add` on the signal's own counter (and, under `std`, unparks the
//! thread that runs the runtime). It takes no lock the interrupted fiber might
//! hold, touches no runtime memory, never allocates and never blocks, so it may
//! interrupt anything, including the scheduler in the middle of a switch.
//! Every other filament call — spawning, any `sync` primitive, `IrqSignal::wait`
//! — is fiber-side only: an interrupt handler has no [`Fiber`] handle, so the
//! type system already keeps those calls out of it.
//!
//! # How the scheduler learns about it
//!
//! The first time a fiber waits on a signal, the signal is registered with that
//! runtime. While any fiber waits on a registered signal, the runtime polls the
//! registered signals' counters at every yield, block and idle, and wakes the
//! first waiter of a signal whose counter is non-zero. A runtime with such
//! waiters is never reported as deadlocked (an interrupt may still come); its
//! idle hook is called instead (`hlt` on bare metal).
//!
//! # Counting, not losing
//!
//! Notifications are counted, never dropped: [`IrqSignal::wait`] returns how
//! many notifications arrived since the previous wait or take returned (at least
//! one). Over any run, the sum of the returned counts equals the number of
//! `notify_from_isr` calls that happened before the last take.

use core::cell::Cell;
use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::fiber::{WaitKind, Wake};
use crate::raw::{self, Core};
use crate::runtime::Fiber;
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// Per-runtime list of registered signals.
pub(crate) struct IrqList {
    head: *const IrqSignal,
    /// Fibers currently blocked on registered signals.
    pub waiters: usize,
}

impl IrqList {
    pub(crate) const fn new() -> Self {
        IrqList { head: ptr::null(), waiters: 0 }
    }
}

/// Why a wait on an [`IrqSignal`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqError {
    /// No notification arrived before the deadline.
    TimedOut,
    /// The signal is registered with another runtime.
    WrongRuntime,
    /// This fiber is unwinding and no notification was pending: a fiber
    /// never blocks while it unwinds (std only).
    Unwinding,
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrqError::TimedOut => f.write_str("timed out waiting for an interrupt signal"),
            IrqError::WrongRuntime => f.write_str("signal registered with another runtime"),
            IrqError::Unwinding => f.write_str("cannot wait for an interrupt signal while unwinding"),
        }
    }
}

impl core::error::Error for IrqError {}

/// A counting signal raised from interrupt context, awaited by fibers.
///
/// ```
/// use filament::{IrqSignal, Runtime, StaticStack};
/// static TIMER: IrqSignal = IrqSignal::new();
/// static STACK: StaticStack<16384> = StaticStack::new();
/// static RT: Runtime<'static, 2> = Runtime::new();
///
/// TIMER.notify_from_isr(); // e.g. from the timer interrupt handler
/// let h = RT.spawn(STACK.claim().unwrap(), |fib| TIMER.wait(fib).unwrap()).ok().unwrap();
/// RT.run().unwrap();
/// assert_eq!(RT.take(h).unwrap(), 1);
/// ```
pub struct IrqSignal {
    /// Raised by interrupt handlers: the only field they touch.
    pending: AtomicU32,
    /// Counts moved out of `pending` by the scheduler, not yet taken. Written
    /// only by the owner runtime's thread; atomic so `pending()` may read it
    /// from anywhere.
    banked: AtomicU32,
    /// Fiber side (owner runtime's thread only).
    waiters: WaitQueue,
    /// Serial of the runtime the signal is registered with (0: none). Only the
    /// compare-exchange winner links the signal into its runtime's list.
    owner: AtomicU64,
    /// Link in the owner's list (owner runtime's thread only).
    next: Cell<*const IrqSignal>,
    #[cfg(feature = "std")]
    host: spin::Mutex<Option<std::thread::Thread>>,
}

// SAFETY: `pending`, `banked` and `owner` are atomics; `pending` is the only
// field written from interrupt context or other threads (plus the `host` spin
// lock under std). `waiters` and `next` are touched only by the one runtime
// whose serial won the `owner` compare-exchange, on the thread running it.
unsafe impl Sync for IrqSignal {}

impl IrqSignal {
    /// A signal with no pending notification. `const`, for `static`s.
    pub const fn new() -> Self {
        IrqSignal {
            pending: AtomicU32::new(0),
            banked: AtomicU32::new(0),
            waiters: WaitQueue::new(),
            owner: AtomicU64::new(0),
            next: Cell::new(ptr::null()),
            #[cfg(feature = "std")]
            host: spin::Mutex::new(None),
        }
    }

    /// Raises the signal. **Interrupt-safe**: one atomic add on this signal;
    /// no lock, no allocation, no runtime memory touched. Under `std` it also
    /// unparks the thread running the registered runtime (it may be idle).
    pub fn notify_from_isr(&self) {
        self.pending.fetch_add(1, Ordering::Release);
        #[cfg(feature = "std")]
        if let Some(guard) = self.host.try_lock()
            && let Some(t) = guard.as_ref()
        {
            t.unpark();
        }
    }

    /// Notifications raised and not yet taken by a fiber (approximate while
    /// interrupts keep arriving).
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Relaxed) + self.banked.load(Ordering::Relaxed)
    }

    /// Takes every notification so far without blocking (0 if none).
    pub fn try_take<'s>(&'s self, fib: &Fiber<'s>) -> Result<u32, IrqError> {
        self.bind(fib)?;
        Ok(self.take_all())
    }

    /// Blocks until at least one notification is pending, then takes them all
    /// and returns how many there were.
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<u32, IrqError> {
        self.wait_until(fib, None)
    }

    /// Like [`wait`](Self::wait) but gives up after `timeout` ticks.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<u32, IrqError> {
        self.wait_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    fn wait_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<u32, IrqError> {
        self.bind(fib)?;
        loop {
            let n = self.take_all();
            if n > 0 {
                return Ok(n);
            }
            let core = fib.core_ptr();
            // SAFETY: the signal lives for 's, longer than any of the runtime's
            // fibers; we are the running fiber of the owning runtime.
            let wake = unsafe {
                (*core).irq.waiters += 1;
                (*core).pollers += 1;
                crate::raw::refresh_slow(core);
                let w = fib.wait_on(&self.waiters, WaitKind::Irq, deadline);
                (*core).irq.waiters -= 1;
                (*core).pollers -= 1;
                crate::raw::refresh_slow(core);
                w
            };
            if wake == Wake::TimedOut || wake == Wake::Unwinding {
                let n = self.take_all();
                return match n {
                    0 if wake == Wake::Unwinding => Err(IrqError::Unwinding),
                    0 => Err(IrqError::TimedOut),
                    n => Ok(n),
                };
            }
        }
    }

    fn take_all(&self) -> u32 {
        self.banked.swap(0, Ordering::Relaxed) + self.pending.swap(0, Ordering::Acquire)
    }

    /// Registers the signal with the fiber's runtime on first use. `'s`: the
    /// signal outlives the runtime's stacks, hence every use of the list entry.
    fn bind<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), IrqError> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while it runs.
        let me = unsafe { (*core).serial };
        match self.owner.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Err(owner) if owner == me => return Ok(()),
            Err(_) => return Err(IrqError::WrongRuntime),
            Ok(_) => {}
        }
        // SAFETY: we won the registration and run inside the runtime, the only
        // code touching its list.
        unsafe {
            self.next.set((*core).irq.head);
            (*core).irq.head = self;
        }
        #[cfg(feature = "std")]
        {
            *self.host.lock() = Some(std::thread::current());
        }
        Ok(())
    }
}

impl Default for IrqSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for IrqSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqSignal").field("pending", &self.pending.load(Ordering::Relaxed)).finish()
    }
}

/// Wakes the first waiter of every registered signal that was raised.
///
/// # Safety
/// Exclusive access to `core` (inside `run`).
#[inline]
pub(crate) unsafe fn drain(core: *mut Core) {
    // SAFETY: plain read of the runtime's own counter.
    if unsafe { (*core).irq.waiters } == 0 {
        return;
    }
    // SAFETY: forwarded.
    unsafe { drain_slow(core) }
}

#[cold]
unsafe fn drain_slow(core: *mut Core) {
    // SAFETY: registered signals outlive the runtime ('s); their Cell fields
    // are ours (owner == core).
    unsafe {
        let mut sig = (*core).irq.head;
        while !sig.is_null() {
            let s = &*sig;
            if !s.waiters.is_empty() {
                let n = s.pending.swap(0, Ordering::Acquire);
                if n > 0 {
                    s.banked.fetch_add(n, Ordering::Relaxed);
                    raw::wake_one(core, &s.waiters);
                }
            }
            sig = s.next.get();
        }
    }
}

/// Whether some fiber waits on an interrupt source (so idling makes sense).
///
/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn armed(core: *mut Core) -> bool {
    // SAFETY: plain read.
    unsafe { (*core).irq.waiters > 0 }
}

/// Unregisters every signal (runtime drop), so none points at a dead runtime.
///
/// # Safety
/// Exclusive access to `core`; no fiber waits on any signal.
pub(crate) unsafe fn unregister_all(core: *mut Core) {
    // SAFETY: as in drain_slow.
    unsafe {
        let mut sig = (*core).irq.head;
        while !sig.is_null() {
            let s = &*sig;
            sig = s.next.get();
            s.next.set(ptr::null());
            s.owner.store(0, Ordering::Release);
            #[cfg(feature = "std")]
            {
                *s.host.lock() = None;
            }
        }
        (*core).irq.head = ptr::null();
    }
}
