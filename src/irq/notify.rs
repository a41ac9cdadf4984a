//! [`IrqNotify`]: notification bits an interrupt handler sets and a fiber
//! takes.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use super::IrqError;
use super::source::{Drain, Drained, IrqSource, as_irq_waiter};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::sync::choice_point;
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// Notifies a fiber from interrupt context with a 32-bit value of bits: an
/// interrupt handler ORs bits in with [`notify_from_isr`](Self::notify_from_isr),
/// the fiber that handles that device waits with [`wait`](Self::wait), which
/// returns every bit set since its previous wait and clears them (FreeRTOS's
/// `xTaskNotifyFromISR(.., eSetBits)` / `xTaskNotifyWait(0, ~0, ..)`, as an
/// object the handler and the fiber share instead of a per-task slot).
///
/// Where [`IrqSignal`](crate::IrqSignal) counts how many times something
/// happened, `IrqNotify` says *which* things happened (one bit per cause:
/// "rx", "tx done", "error"), for one handler fiber.
///
/// ```
/// use filament::{IrqNotify, Runtime, StaticStack};
///
/// const RX: u32 = 1 << 0;
/// const TX_DONE: u32 = 1 << 1;
/// static UART: IrqNotify = IrqNotify::new().named("uart");
/// static STACK: StaticStack<16384> = StaticStack::new();
/// static RT: Runtime<'static, 1> = Runtime::new();
///
/// // In the UART interrupt handler:
/// UART.notify_from_isr(RX);
/// UART.notify_from_isr(TX_DONE);
/// let h = RT.spawn(STACK.claim().unwrap(), |fib| UART.wait(fib).unwrap()).unwrap();
/// RT.run().unwrap();
/// assert_eq!(RT.take(h).unwrap(), RX | TX_DONE);
/// ```
///
/// Belongs to one runtime per run (registration as for `IrqSignal`; another
/// runtime meanwhile gets [`IrqError::WrongRuntime`]). Several fibers may
/// wait: the longest waiter is woken and takes all bits. A fiber blocked in
/// `wait` counts as waiting for an interrupt: the runtime idles instead of
/// reporting a deadlock. In reports it shows as
/// [`WaitReason::Irq`](crate::WaitReason::Irq) with the object's name.
#[repr(C)]
pub struct IrqNotify {
    /// Fiber side (owner runtime's thread only). First field: its address is
    /// the object's address (reports, gdb's `info fibers`).
    waiters: WaitQueue,
    /// Bits set by interrupt handlers, not yet taken: the interrupt side.
    bits: AtomicU32,
    /// Registration with a runtime, the raised flag and the list link.
    src: IrqSource,
}

// SAFETY: `bits` and the source's raised flag are the only state written from
// interrupt context or other threads (atomics). `waiters` and the source's
// cells are touched only by the one runtime whose serial won the source's
// registration, on the thread running it (I1).
unsafe impl Sync for IrqNotify {}
// SAFETY: moving it needs ownership: nobody borrows it, so no runtime lists
// it and no fiber waits in its queue.
unsafe impl Send for IrqNotify {}

impl IrqNotify {
    /// No bits set. `const`, for `static`s.
    pub const fn new() -> Self {
        IrqNotify { bits: AtomicU32::new(0), waiters: WaitQueue::new(), src: IrqSource::new() }
    }

    /// Names it: the name appears in deadlock reports, in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new`.
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// ORs `bits` into the notification value. **Interrupt-safe** and
    /// async-signal-safe, callable from any thread or core; no lock, never
    /// blocks, touches no runtime memory.
    ///
    /// Exactly: one atomic `fetch_or` on this object's bits (`Release`), then
    /// the raise of its interrupt source (one atomic swap, one atomic add on
    /// the program-wide epoch that [`IrqWatch`](crate::IrqWatch) reads, under
    /// `std` at most one `futex` wake). `bits == 0` wakes nobody.
    pub fn notify_from_isr(&self, bits: u32) {
        // Release, before the raise: whoever sees the raise sees the bits.
        self.bits.fetch_or(bits, Ordering::Release);
        self.src.raise();
    }

    /// The bits set and not yet taken; callable anywhere (approximate while
    /// interrupts keep arriving).
    pub fn pending(&self) -> u32 {
        self.bits.load(Ordering::Relaxed)
    }

    /// Takes (and clears) every bit set so far without blocking; 0 if none.
    pub fn try_take<'s>(&'s self, fib: &Fiber<'s>) -> Result<u32, IrqError> {
        let core = self.src.register(fib, self).map_err(|_| IrqError::WrongRuntime)?;
        let bits = self.bits.swap(0, Ordering::Acquire);
        if bits != 0 {
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
        }
        Ok(bits)
    }

    /// Blocks until at least one bit is set, then takes and clears them all.
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<u32, IrqError> {
        self.wait_until(fib, None)
    }

    /// Like [`wait`](Self::wait), giving up with [`IrqError::TimedOut`] after
    /// `timeout` ticks.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<u32, IrqError> {
        self.wait_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    fn wait_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<u32, IrqError> {
        let core = self.src.register(fib, self).map_err(|_| IrqError::WrongRuntime)?;
        loop {
            let bits = self.bits.swap(0, Ordering::Acquire);
            if bits != 0 {
                // SAFETY: we are the running fiber of `core`.
                unsafe { choice_point(core) };
                return Ok(bits);
            }
            // SAFETY: we are the running fiber of the owning runtime; the
            // queue lives for 's, longer than any of the runtime's fibers (I5).
            let wake = unsafe { as_irq_waiter(core, || fib.wait_on(&self.waiters, WaitKind::Irq, deadline)) };
            if matches!(wake, Wake::TimedOut | Wake::Unwinding | Wake::Aborted) {
                return match self.bits.swap(0, Ordering::Acquire) {
                    0 if wake == Wake::Unwinding => Err(IrqError::Unwinding),
                    0 if wake == Wake::Aborted => Err(IrqError::Cancelled),
                    0 => Err(IrqError::TimedOut),
                    bits => Ok(bits),
                };
            }
        }
    }
}

impl Drain for IrqNotify {
    /// Wakes the longest waiter when bits are set; it takes them itself. With
    /// no waiter the raise is kept (a fiber may be about to block).
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        if self.bits.load(Ordering::Relaxed) == 0 {
            return Drained::Done; // taken by a fiber already
        }
        if self.waiters.is_empty() {
            return Drained::Keep;
        }
        // SAFETY: per the contract we run in `core`; the queue holds its
        // blocked fibers only (I1, I2). A waiter about to stop as suspended is
        // skipped; with only such waiters the raise is kept.
        if self.bits.load(Ordering::Relaxed) != 0 && !unsafe { raw::wake_one_awake(core, &self.waiters) } {
            return Drained::Keep;
        }
        Drained::Done
    }
}

impl Default for IrqNotify {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for IrqNotify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqNotify").field("name", &self.waiters.name).field("pending", &self.pending()).finish()
    }
}
