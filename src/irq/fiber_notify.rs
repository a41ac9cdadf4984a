//! [`IrqFiberNotifier`]: fiber notifications (`Fiber::notify`) from
//! interrupt handlers, other threads and other cores (FreeRTOS's
//! `xTaskNotifyFromISR` / `vTaskNotifyGiveFromISR`).

use core::cell::Cell;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::source::{Drain, Drained, IrqSource};
use crate::fiber::FiberId;
use crate::handle::Fiber;
use crate::notify::{Notify, NotifyError, deliver, deliver_with};
use crate::raw::Core;
use crate::sync::WrongRuntime;

/// `Overwrite` from an interrupt handler is pending: bit 32 of `value`.
const OVERWRITE: u64 = 1 << 32;

/// Delivers [`Notify`] actions from interrupt context to one fiber's
/// notification value, the one [`Fiber::notify_wait`] and
/// [`Fiber::notify_take`] read: the interrupt-safe half of fiber
/// notifications.
///
/// The fiber that handles a device [`attach`](Self::attach)es itself (once
/// per run); the device's interrupt handler then calls
/// [`increment_from_isr`](Self::increment_from_isr) (a counting "give"),
/// [`set_bits_from_isr`](Self::set_bits_from_isr) (event bits),
/// [`overwrite_from_isr`](Self::overwrite_from_isr) (a latest-value mailbox)
/// or [`signal_from_isr`](Self::signal_from_isr). Each is a few atomics on
/// this object; the runtime applies them to the fiber's value at its next
/// poll, exactly as [`Fiber::notify`] would, and wakes the fiber if it
/// waits. While attached, the fiber's notification waits count as waiting
/// for an interrupt: the runtime polls and idles instead of reporting a
/// deadlock.
///
/// ```
/// use filament::{IrqFiberNotifier, Runtime, StaticStack, Take};
/// static RX_DONE: IrqFiberNotifier = IrqFiberNotifier::new();
/// static STACK: StaticStack<16384> = StaticStack::new();
/// static RT: Runtime<'static, 1> = Runtime::new();
///
/// let h = RT
///     .spawn(STACK.claim().unwrap(), |fib| {
///         RX_DONE.attach(fib).unwrap();
///         let mut got = 0;
///         while got < 3 {
///             got += fib.notify_take(Take::All).unwrap(); // counts the interrupts' gives
///         }
///         got
///     })
///     .unwrap();
/// std::thread::spawn(|| {
///     for _ in 0..3 {
///         RX_DONE.increment_from_isr(); // e.g. from a DMA-complete interrupt
///     }
/// });
/// RT.run().unwrap(); // idles (does not report a deadlock) until the gives arrive
/// assert_eq!(RT.take(h).unwrap(), 3);
/// ```
///
/// # Order and timing
///
/// Actions raised between two polls of the runtime are applied together, in
/// this order: an overwrite (the latest value wins), then the bits, then the
/// increments, and every one marks a notification pending. Until the runtime
/// polls, the fiber's value does not show them: the runtime polls at every
/// yield and block while some fiber waits on an interrupt-capable object, and
/// before it idles. A fiber that never blocks reads them late; one blocked in
/// a notification wait is woken at the next poll. `SetIfEmpty` has no
/// interrupt form (the handler could not learn whether it was refused).
///
/// Attached to one fiber of one runtime at a time: the attachment ends when
/// the run returns (attach again in the next run) or when another fiber
/// attaches; actions raised while no fiber is attached wait for the next
/// attachment. Actions for a fiber that has finished are dropped.
pub struct IrqFiberNotifier {
    /// Interrupt side: bits to OR in.
    bits: AtomicU32,
    /// Interrupt side: increments to add.
    increments: AtomicU32,
    /// Interrupt side: `OVERWRITE | value` when an overwrite is pending.
    value: AtomicU64,
    /// Interrupt side: a bare `Signal` is pending.
    signal: AtomicBool,
    /// The attached fiber (owner runtime's thread only).
    target: Cell<Option<FiberId>>,
    /// Registration with a runtime, the raised flag and the list link.
    src: IrqSource,
}

// SAFETY: the interrupt-side fields and the source's raised flag are atomics;
// `target` and the source's cells are touched only by the runtime whose serial
// won the source's registration, on the thread running it (I1).
unsafe impl Sync for IrqFiberNotifier {}
// SAFETY: moving it needs ownership: nobody borrows it, so no runtime lists it.
unsafe impl Send for IrqFiberNotifier {}

impl IrqFiberNotifier {
    /// Nothing pending, attached to no fiber. `const`, for `static`s.
    pub const fn new() -> Self {
        IrqFiberNotifier {
            bits: AtomicU32::new(0),
            increments: AtomicU32::new(0),
            value: AtomicU64::new(0),
            signal: AtomicBool::new(false),
            target: Cell::new(None),
            src: IrqSource::new(),
        }
    }

    /// Makes `fib` the fiber this notifier delivers to, for the rest of the
    /// run, and applies what interrupt handlers left meanwhile. `WrongRuntime`
    /// while another runtime uses it.
    pub fn attach<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), WrongRuntime> {
        let core = self.src.register(fib, self)?;
        if self.target.get() != Some(fib.id()) {
            // SAFETY: we run in `core`, the registered runtime (I1); our own
            // header lives while we run.
            unsafe {
                self.detach(core, true);
                (*(*fib.slot_ptr()).header).isr_notifiers += 1;
            }
            self.target.set(Some(fib.id()));
        }
        // SAFETY: we run in `core`, the runtime the source is registered with.
        unsafe { self.apply(core) };
        Ok(())
    }

    /// Adds one to the attached fiber's value (FreeRTOS's
    /// `vTaskNotifyGiveFromISR`). **Interrupt-safe**: one atomic `fetch_add`,
    /// then the raise of the interrupt source (one atomic swap, one atomic add
    /// on the program-wide epoch, under `std` at most one `futex` wake).
    pub fn increment_from_isr(&self) {
        self.increments.fetch_add(1, Ordering::Release);
        self.src.raise();
    }

    /// ORs `bits` into the attached fiber's value. **Interrupt-safe**: one
    /// atomic `fetch_or`, then the raise (as for
    /// [`increment_from_isr`](Self::increment_from_isr)).
    pub fn set_bits_from_isr(&self, bits: u32) {
        self.bits.fetch_or(bits, Ordering::Release);
        self.src.raise();
    }

    /// Replaces the attached fiber's value (the latest of several wins).
    /// **Interrupt-safe**: one atomic store, then the raise.
    pub fn overwrite_from_isr(&self, value: u32) {
        self.value.store(OVERWRITE | u64::from(value), Ordering::Release);
        self.src.raise();
    }

    /// Marks a notification pending without changing the value.
    /// **Interrupt-safe**: one atomic store, then the raise.
    pub fn signal_from_isr(&self) {
        self.signal.store(true, Ordering::Release);
        self.src.raise();
    }

    /// Ends the attachment: the fiber, if still live, no longer counts this
    /// notifier (its notification waits stop counting as interrupt waits
    /// once no notifier serves it). With `rewait`, a fiber left with no
    /// notifier that is blocked in a notification wait as an interrupt waiter
    /// is woken (a spurious wake: it waits again, as a plain waiter now, so a
    /// deadlock is reported instead of an endless idle).
    ///
    /// # Safety
    /// Exclusive access to `core`, the runtime the source is registered with,
    /// from a context that may make fibers ready (`rewait`: a running fiber).
    unsafe fn detach(&self, core: *mut Core, rewait: bool) {
        let Some(id) = self.target.take() else { return };
        // SAFETY: `target` finds only a live slot of `core`, whose header
        // lives; a Blocked slot with `WaitKind::Notify` is in no queue.
        unsafe {
            let Some(s) = crate::notify::target(core, id) else { return };
            let h = (*s).header;
            (*h).isr_notifiers -= 1;
            if rewait
                && (*h).isr_notifiers == 0
                && (*s).state == crate::fiber::State::Blocked
                && (*s).wait_kind == crate::fiber::WaitKind::Notify
                && (*s).irq_wait
            {
                crate::raw::wake(core, s, crate::fiber::Wake::Signaled);
            }
        }
    }

    /// Moves what interrupt handlers left into the attached fiber's value.
    ///
    /// # Safety
    /// Exclusive access to `core`, the runtime the source is registered with.
    unsafe fn apply(&self, core: *mut Core) -> Drained {
        let Some(id) = self.target.get() else { return Drained::Keep };
        let value = self.value.swap(0, Ordering::Acquire);
        let bits = self.bits.swap(0, Ordering::Acquire);
        let increments = self.increments.swap(0, Ordering::Acquire);
        let signal = self.signal.swap(false, Ordering::Acquire);
        let mut actions = [None; 4];
        if value & OVERWRITE != 0 {
            actions[0] = Some(Notify::Overwrite(value as u32));
        }
        if bits != 0 {
            actions[1] = Some(Notify::SetBits(bits));
        }
        if signal {
            actions[2] = Some(Notify::Signal);
        }
        for action in actions.into_iter().flatten() {
            // SAFETY: forwarded contract.
            if let Err(NotifyError::NoSuchFiber(_)) = unsafe { deliver(core, id, action) } {
                self.target.set(None); // finished: later actions are dropped
                return Drained::Done;
            }
        }
        if increments != 0 {
            // SAFETY: forwarded contract.
            let applied = unsafe { deliver_with::<false>(core, id, |note| note.add(increments)) };
            if let Err(NotifyError::NoSuchFiber(_)) = applied {
                self.target.set(None);
            }
        }
        Drained::Done
    }
}

impl Drain for IrqFiberNotifier {
    /// Applies the interrupt side's actions to the attached fiber (waking it
    /// if it waits for a notification). With no fiber attached they stay.
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        // SAFETY: forwarded contract.
        unsafe { self.apply(core) }
    }

    /// The attachment ends with the registration (the run).
    ///
    /// # Safety
    /// As for `Drain::unregistered`: called by the runtime ending the registration, with exclusive access to it.
    unsafe fn unregistered(&self, core: *mut Core) {
        // SAFETY: forwarded contract (the run is over: no wake).
        unsafe { self.detach(core, false) };
    }
}

impl Default for IrqFiberNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for IrqFiberNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqFiberNotifier")
            .field("bits", &self.bits.load(Ordering::Relaxed))
            .field("increments", &self.increments.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
