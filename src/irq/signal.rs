//! [`IrqSignal`]: a counting signal raised from interrupt context, awaited by fibers.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

#[cfg(doc)]
use super::IrqWatch;
use super::source::{Drain, Drained, IrqSource, as_irq_waiter};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// Why a wait on an [`IrqSignal`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IrqError {
    /// No notification arrived before the deadline.
    TimedOut,
    /// The signal is registered with another runtime.
    WrongRuntime,
    /// This fiber is unwinding and no notification was pending: a fiber
    /// never blocks while it unwinds (std only).
    Unwinding,
    /// This fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)): the
    /// wait ended early, or never began. Nothing was handed to it.
    Cancelled,
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrqError::TimedOut => f.write_str("timed out waiting for an interrupt signal"),
            IrqError::WrongRuntime => f.write_str("signal registered with another runtime"),
            IrqError::Unwinding => f.write_str("cannot wait for an interrupt signal while unwinding"),
            IrqError::Cancelled => f.write_str("the waiting fiber was cancelled"),
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
/// let h = RT.spawn(STACK.claim().unwrap(), |fib| TIMER.wait(fib).unwrap()).unwrap();
/// RT.run().unwrap();
/// assert_eq!(RT.take(h).unwrap(), 1);
/// ```
pub struct IrqSignal {
    /// Raised by interrupt handlers: the only field they touch. 64 bits: it
    /// never wraps (2^64 notifications take centuries at one per nanosecond).
    pub(super) pending: AtomicU64,
    /// Counts moved out of `pending` by the scheduler, not yet taken. Written
    /// only by the owner runtime's thread; atomic so `pending()` may read it
    /// from anywhere.
    pub(super) banked: AtomicU64,
    /// Fiber side (owner runtime's thread only).
    pub(super) waiters: WaitQueue,
    /// Registration with a runtime, the raised flag and the list link.
    src: IrqSource,
    /// Selects watching the signal (owner runtime's thread only; see
    /// [`select`](crate::sync::select)).
    selectors: crate::sync::select::SelList,
}

// SAFETY: `pending` and `banked` are atomics; `pending` and the source's
// raised flag are the only state written from interrupt context or other
// threads. `waiters` and the source's cells are touched only by the one
// runtime whose serial won the source's registration, on the thread running
// it (I1).
unsafe impl Sync for IrqSignal {}
// SAFETY: moving a signal needs ownership. While registered with a runtime it
// is borrowed for `'s` (registration takes `&'s self` from a fiber of that
// runtime, whose `'s` outlives it), and the runtime unregisters it when its run
// returns or it is dropped; so a signal that can be moved is linked in no runtime's list and
// no fiber waits in its queue. Its raw pointers are then inert.
unsafe impl Send for IrqSignal {}

impl IrqSignal {
    /// A signal with no pending notification. `const`, for `static`s.
    pub const fn new() -> Self {
        IrqSignal {
            pending: AtomicU64::new(0),
            banked: AtomicU64::new(0),
            waiters: WaitQueue::new(),
            src: IrqSource::new(),
            selectors: crate::sync::select::SelList::new(),
        }
    }

    /// Names it: the name appears in deadlock reports, in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`:
    ///
    /// ```
    /// static UART_RX: filament::IrqSignal = filament::IrqSignal::new().named("uart-rx");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// Raises the signal. **Interrupt-safe** and async-signal-safe: no lock,
    /// no allocation, no runtime memory touched, never blocks.
    ///
    /// Exactly: one atomic add on this signal's counter, then one atomic add
    /// on the program-wide epoch counter that [`IrqWatch`] reads. Under `std`
    /// also one atomic load of how many
    /// [`HostClock`](crate::host::HostClock)s sleep and, if any does, one
    /// `futex(FUTEX_WAKE)` system call that wakes them (whichever threads run
    /// their runtimes).
    pub fn notify_from_isr(&self) {
        // Release: pairs with the Acquire swap of whoever takes the count.
        // Program order puts it before the raise (and its epoch bump), so a
        // drain or idle hook that sees the raise sees this count too.
        self.pending.fetch_add(1, Ordering::Release);
        self.src.raise();
    }

    /// Notifications raised and not yet taken by a fiber (approximate while
    /// interrupts keep arriving).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed) + self.banked.load(Ordering::Relaxed)
    }

    /// Takes every notification so far without blocking (0 if none).
    pub fn try_take<'s>(&'s self, fib: &Fiber<'s>) -> Result<u64, IrqError> {
        self.bind(fib)?;
        Ok(self.take_all())
    }

    /// Blocks until at least one notification is pending, then takes them all
    /// and returns how many there were.
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<u64, IrqError> {
        self.wait_until(fib, None)
    }

    /// Like [`wait`](Self::wait) but gives up after `timeout` ticks.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<u64, IrqError> {
        self.wait_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    /// [`wait`](Self::wait) until `deadline` (`None`: none), for the timer
    /// service, which waits for an absolute expiry.
    pub(crate) fn wait_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<u64, IrqError> {
        self.bind(fib)?;
        loop {
            let n = self.take_all();
            if n > 0 {
                return Ok(n);
            }
            // SAFETY: we are the running fiber of the owning runtime; the
            // signal (hence its queue) lives for 's, longer than any of the
            // runtime's fibers.
            let wake = unsafe { as_irq_waiter(fib.core_ptr(), || fib.wait_on(&self.waiters, WaitKind::Irq, deadline)) };
            if matches!(wake, Wake::TimedOut | Wake::Unwinding | Wake::Aborted) {
                let n = self.take_all();
                return match n {
                    0 if wake == Wake::Unwinding => Err(IrqError::Unwinding),
                    0 if wake == Wake::Aborted => Err(IrqError::Cancelled),
                    0 => Err(IrqError::TimedOut),
                    n => Ok(n),
                };
            }
        }
    }

    fn take_all(&self) -> u64 {
        self.banked.swap(0, Ordering::Relaxed) + self.pending.swap(0, Ordering::Acquire)
    }

    /// Registers the signal with the fiber's runtime on first use. `'s`: the
    /// signal outlives the runtime's stacks, hence every use of the list entry.
    fn bind<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), IrqError> {
        self.src.register(fib, self).map(|_| ()).map_err(|_| IrqError::WrongRuntime)
    }
}

impl Drain for IrqSignal {
    /// Banks the raised count for the waiter it wakes (the first one). With
    /// no waiter the count stays raised: a fiber about to block takes it
    /// itself, or the drain at a later poll wakes it.
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        if self.pending.load(Ordering::Relaxed) == 0 && self.banked.load(Ordering::Relaxed) == 0 {
            // Nothing raised since the last take (or the raise was seen):
            // nothing to keep the source raised for.
            return Drained::Done;
        }
        // Only a banked count: the waiter it was banked for was suspended
        // before it ran (`irq::source::rouse_all`), or is about to take it.
        // Waking the next waiter too costs at most a spurious wake-up.
        // The first plain waiter not about to stop as suspended (it would not
        // take the count), else the first select sleeping on it (it takes the
        // count when it runs); with neither, the count stays raised.
        // SAFETY: per the contract we run in `core`, whose blocked fibers are
        // the only ones in the queue and the selector list (I1, I2).
        let woke = unsafe {
            raw::wake_one_awake(core, &self.waiters) || (!self.selectors.is_empty() && self.selectors.notify_one(core))
        };
        if !woke {
            return Drained::Keep;
        }
        let n = self.pending.swap(0, Ordering::Acquire);
        self.banked.fetch_add(n, Ordering::Relaxed);
        Drained::Done
    }

    /// Only selects parked for good (a poisoned runtime being dropped) can
    /// still be linked: their nodes must not outlive the registration.
    ///
    /// # Safety
    /// As for `Drain::unregistered`: called by the runtime ending the registration, with exclusive access to it.
    unsafe fn unregistered(&self, _core: *mut Core) {
        self.selectors.forget_all();
    }
}

/// The hooks [`select`](crate::sync::select) uses.
impl IrqSignal {
    pub(crate) fn select_bind<'s>(&'s self, fib: &Fiber<'s>) -> bool {
        self.bind(fib).is_ok()
    }

    /// Takes every notification (0 if none).
    pub(crate) fn select_take(&self) -> u64 {
        self.take_all()
    }

    pub(crate) fn select_list(&self) -> &crate::sync::select::SelList {
        &self.selectors
    }

    /// The address a plain waiter is reported with.
    pub(crate) fn select_addr(&self) -> usize {
        &raw const self.waiters as usize
    }
}

impl Default for IrqSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for IrqSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqSignal").field("pending", &self.pending()).finish()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::{RunError, Runtime, Stack};
    use std::boxed::Box;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::mpsc;
    use std::time::Duration;

    fn stack() -> Stack<'static> {
        Stack::host(64 * 1024).expect("mmap stack").without_painting()
    }

    /// A wait on a signal that unwinds (the runtime cancelling the fiber, as
    /// `Fiber::wait_on` does with the `Cancelled` payload under std; or a
    /// panic) must leave the waiter counts as they were, or the runtime
    /// polls forever and never reports a deadlock again.
    ///
    /// Today's runtime never cancels a fiber blocked on a signal (deadlock
    /// detection does not run while one waits), so the unwind is produced by
    /// the `block` closure, at the very place `wait_on` sits in
    /// `IrqSignal::wait`.
    #[test]
    fn unwinding_out_of_a_signal_wait_restores_the_waiter_counts() {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            static RT: Runtime<'static, 2> = Runtime::new();
            let h = RT
                .spawn(stack(), |fib| {
                    let core = fib.core_ptr();
                    let unwound = panic::catch_unwind(AssertUnwindSafe(|| {
                        // SAFETY: we are the running fiber of `core`.
                        unsafe {
                            as_irq_waiter(core, || -> () { panic::resume_unwind(Box::new(crate::host::Cancelled)) })
                        }
                    }));
                    assert!(unwound.is_err());
                    // SAFETY: plain reads by the running fiber.
                    unsafe { ((*core).irq.waiters, (*core).pollers, (*core).slow) }
                })
                .unwrap();
            // A fiber that can never be woken: the run must end in a deadlock
            // report, not idle forever waiting for an interrupt.
            let ch: &'static crate::sync::Channel<u8, 1> = Box::leak(Box::new(crate::sync::Channel::new()));
            RT.spawn_detached(stack(), move |fib| ch.recv(fib)).unwrap();
            let run = RT.run_with_idle(&mut crate::host::HostClock::new());
            let _ = tx.send((RT.take(h).unwrap(), matches!(run, Err(RunError::Deadlock(_)))));
        });
        let (counts, deadlock_reported) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("hung for 5 s: the runtime idles as if a fiber still waited on a signal");
        assert_eq!(counts, (0, 0, 0), "irq waiters, pollers, slow after the unwind");
        assert!(deadlock_reported);
    }

    /// "Counted, never lost" past 2^32 untaken notifications: the pending
    /// count must not wrap (nor overflow-panic in debug builds) when taken.
    /// 2^32 real notifications take too long, so the counter is poked.
    #[test]
    fn pending_counts_past_u32_max() {
        static SIG: IrqSignal = IrqSignal::new();
        let rt = Runtime::<1>::new();
        SIG.pending.store(u32::MAX.into(), Ordering::Relaxed); // as if 2^32 - 1 arrived
        SIG.notify_from_isr();
        assert_eq!(SIG.pending(), 1 << 32);
        let h = rt.spawn(stack(), |fib| SIG.try_take(fib)).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Ok(1 << 32));
    }

    /// Banked and raised counts together past 2^32 (the sum overflowed, a
    /// panic in debug builds).
    #[test]
    fn taking_banked_and_pending_past_u32_max() {
        static SIG: IrqSignal = IrqSignal::new();
        let rt = Runtime::<1>::new();
        let h = rt
            .spawn(stack(), |fib| {
                SIG.try_take(fib).unwrap(); // binds the signal to this runtime
                SIG.banked.store(u32::MAX.into(), Ordering::Relaxed); // as if banked for a waiter
                SIG.notify_from_isr();
                SIG.try_take(fib)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Ok(1 << 32));
    }

    /// The same through the scheduler: the runtime moves the raised count
    /// into the banked one that the woken waiter takes.
    #[test]
    fn banked_counts_past_u32_max() {
        static SIG: IrqSignal = IrqSignal::new();
        let rt = Runtime::<2>::new();
        let waiter = rt.spawn(stack(), |fib| SIG.wait_timeout(fib, 10)).unwrap();
        rt.spawn_detached(stack(), |fib| {
            // The waiter is blocked: as if 2^32 - 1 notifications had been
            // banked for it, then one more arrives and this yield's poll
            // banks it too and wakes the waiter.
            SIG.banked.store(u32::MAX.into(), Ordering::Relaxed);
            SIG.notify_from_isr();
            fib.yield_now();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(waiter).unwrap(), Ok(1 << 32));
    }
}
