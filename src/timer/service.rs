//! The timer service: the kernel object whose `run` is the timer fiber's body.

use core::cell::Cell;
use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use super::{ISR_NONE, ISR_START, ISR_STOP, Mode, Timer};
use crate::handle::Fiber;
use crate::irq::{IrqError, IrqSignal};
use crate::sync::{Binding, EventGroup, WrongRuntime, choice_point};
use crate::time::Ticks;

/// Runs the callbacks of its [`Timer`]s in one fiber (FreeRTOS's timer
/// daemon task): spawn a fiber whose body calls [`run`](Self::run).
///
/// The service keeps its active timers in a list sorted by expiry (in the
/// timers themselves: no capacity, no heap) and waits on an
/// [`IrqSignal`](crate::IrqSignal) of its own until the earliest expiry, so
/// fiber commands and interrupt handlers wake it the same way. While it
/// waits the runtime is never reported as deadlocked (an interrupt could
/// still start a timer): end it with [`shutdown`](Self::shutdown) when the
/// program is done with timers. In a deadlock report or `info fibers` the
/// service fiber shows as waiting on an interrupt signal with the service's
/// name.
///
/// Cost: while the service fiber waits, the runtime polls interrupt sources
/// at every switch (its general yield path, as with any fiber waiting on an
/// `IrqSignal` or sleeping): that is what lets an interrupt handler's command
/// reach it. A timer expiry costs about 680 instructions (`bench/`,
/// `fil-timer-expiry`: the wake-up on virtual time, re-arming, the callback).
///
/// Belongs to one runtime at a time, with its timers (see
/// [`sync`](crate::sync)). Timers stay active across runs: their expiries
/// are ticks of the runtime's clock, which a later run continues.
pub struct TimerService<'t> {
    /// The service fiber waits here; commands raise it.
    signal: IrqSignal,
    owner: Binding,
    /// Active timers, earliest expiry first (FIFO among equal expiries).
    head: Cell<*const Timer<'t>>,
    /// A fiber is inside `run`.
    running: Cell<bool>,
    /// `shutdown` was called and `run` has not returned for it yet.
    stop: Cell<bool>,
    /// Timers with a command from an interrupt handler (lock-free stack).
    isr_timers: AtomicPtr<Timer<'t>>,
}

// SAFETY: the `Cell`s (here and in the timers) are touched only by fibers of
// the runtime the service is bound or leased to, on the one thread running it
// (`owner` gates every fiber-side call); interrupt handlers and other threads
// touch only the atomics and the signal's interrupt-safe side.
unsafe impl Sync for TimerService<'_> {}
// SAFETY: a service that can be moved is borrowed by nobody: no timer refers
// to it, no fiber runs it.
unsafe impl Send for TimerService<'_> {}

/// Why [`TimerService::run`] returned with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceError {
    /// Another fiber is running this service already.
    AlreadyRunning,
    /// The service belongs to another runtime now.
    WrongRuntime,
    /// The fiber is unwinding (it never blocks then).
    Unwinding,
    /// The service fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)).
    Cancelled,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::AlreadyRunning => f.write_str("another fiber runs this timer service"),
            ServiceError::WrongRuntime => fmt::Display::fmt(&WrongRuntime, f),
            ServiceError::Unwinding => f.write_str("cannot wait for timers while the fiber unwinds"),
            ServiceError::Cancelled => f.write_str("the timer service fiber was cancelled"),
        }
    }
}

impl core::error::Error for ServiceError {}

impl From<WrongRuntime> for ServiceError {
    fn from(_: WrongRuntime) -> Self {
        ServiceError::WrongRuntime
    }
}

/// Clears `running` when `run` returns or unwinds (a panicking callback).
struct Running<'a, 't>(&'a TimerService<'t>);

impl Drop for Running<'_, '_> {
    fn drop(&mut self) {
        self.0.running.set(false);
    }
}

impl<'t> TimerService<'t> {
    /// A service with no active timer. `const`, for `static`s.
    pub const fn new() -> Self {
        TimerService {
            signal: IrqSignal::new(),
            owner: Binding::new(),
            head: Cell::new(ptr::null()),
            running: Cell::new(false),
            stop: Cell::new(false),
            isr_timers: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Names it: the service fiber's wait shows this name in deadlock
    /// reports, [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in),
    /// trace events and gdb's `info fibers`.
    pub const fn named(mut self, name: &'static str) -> Self {
        self.signal = self.signal.named(name);
        self
    }

    /// The service loop: the body of the fiber that serves the timers. Runs
    /// every expired timer's callback in expiry order, then waits until the
    /// next expiry or the next command. Returns `Ok` after
    /// [`shutdown`](Self::shutdown) (active timers stay active for the next
    /// `run`).
    ///
    /// A panicking callback ends `run` by unwinding (the fiber's outcome is
    /// the panic, under `std`); the service stays consistent and may be run
    /// again.
    pub fn run<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), ServiceError> {
        self.owner.bind(fib)?;
        if self.running.replace(true) {
            return Err(ServiceError::AlreadyRunning);
        }
        let _running = Running(self);
        // A callback ran and the service has not waited since.
        let mut after_callback = false;
        loop {
            self.take_isr_commands(fib);
            if self.stop.replace(false) {
                return Ok(());
            }
            let now = fib.now();
            let head = self.head.get();
            // SAFETY: listed timers live for 't, longer than the service's use.
            // An expiry of `Ticks::MAX` is "never" (as a deadline is): such a
            // timer stays armed and unfired, whatever the clock reads.
            let next = (!head.is_null()).then(|| unsafe { (*head).expiry_cell().get() }).filter(|&e| e != Ticks::MAX);
            match next {
                Some(expiry) if expiry <= now && after_callback => {
                    // Two callbacks in a row (timers expiring at one tick, or
                    // catching up on missed periods): every other ready fiber
                    // runs once first, then the list is read again.
                    after_callback = false;
                    fib.yield_now();
                }
                Some(expiry) if expiry <= now => {
                    // SAFETY: as above; `head` is the earliest active timer.
                    let t = unsafe { &*head };
                    self.head.set(t.next.get());
                    t.next.set(ptr::null());
                    match t.mode() {
                        Mode::AutoReload => {
                            // No drift: from the expiry, not from now.
                            t.expiry_cell().set(expiry.saturating_add(t.period_ticks()));
                            self.insert(t);
                        }
                        Mode::OneShot => t.active_cell().set(false),
                    }
                    (t.callback())(fib, t);
                    after_callback = true;
                }
                _ => {
                    after_callback = false;
                    // Until the expiry itself: a timeout (`expiry - now`)
                    // turned back into a deadline from a second clock
                    // reading fired late by the clock's advance between the
                    // two, and within one advance of `Ticks::MAX` became
                    // "never" (review 12: the timer never fired).
                    let waited = self.signal.wait_until(fib, next);
                    match waited {
                        Ok(_) | Err(IrqError::TimedOut) => {}
                        Err(IrqError::WrongRuntime) => return Err(ServiceError::WrongRuntime),
                        Err(IrqError::Unwinding) => return Err(ServiceError::Unwinding),
                        Err(IrqError::Cancelled) => return Err(ServiceError::Cancelled),
                    }
                }
            }
        }
    }

    /// Makes the service's [`run`](Self::run) return (at once if it is
    /// waiting; after the running callback if called from one). If no fiber
    /// runs the service, the next `run` returns at once.
    pub fn shutdown(&self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        self.stop.set(true);
        self.signal.notify_from_isr();
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(())
    }

    /// How many timers are active.
    pub fn active(&self, fib: &Fiber<'_>) -> Result<usize, WrongRuntime> {
        self.query(fib, || {
            let mut n = 0;
            let mut t = self.head.get();
            while !t.is_null() {
                n += 1;
                // SAFETY: listed timers live for 't.
                t = unsafe { (*t).next.get() };
            }
            n
        })
    }

    /// Sets `bits` in `group` from an interrupt handler: the same as
    /// [`EventGroup::set_bits_from_isr`], which it calls (kept for code
    /// written against FreeRTOS's `xEventGroupSetBitsFromISR`, which defers
    /// to the timer daemon). The group applies the bits itself at the
    /// runtime's next poll, whichever service (or none) runs: a group no
    /// longer depends on a service fiber. **Interrupt-safe**.
    pub fn set_bits_from_isr(&'t self, group: &'t EventGroup, bits: u32) {
        group.set_bits_from_isr(bits);
    }

    /// Leaves `cmd` in `timer` for the service (interrupt-safe; see
    /// [`Timer::start_from_isr`]).
    pub(super) fn isr_command(&'t self, timer: &'t Timer<'t>, cmd: u8) {
        timer.isr_cmd.store(cmd, Ordering::Release);
        if !timer.isr_queued.swap(true, Ordering::AcqRel) {
            let t = ptr::from_ref(timer).cast_mut();
            let mut head = self.isr_timers.load(Ordering::Relaxed);
            loop {
                timer.isr_next.store(head, Ordering::Relaxed);
                match self.isr_timers.compare_exchange_weak(head, t, Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(h) => head = h,
                }
            }
        }
        self.signal.notify_from_isr();
    }

    /// Applies the commands interrupt handlers left (service fiber only).
    fn take_isr_commands(&self, fib: &Fiber<'_>) {
        let mut t = self.isr_timers.swap(ptr::null_mut(), Ordering::Acquire);
        if t.is_null() {
            return;
        }
        let now = fib.now();
        while !t.is_null() {
            // SAFETY: a listed timer lives for 't (`isr_command` takes `&'t`).
            let timer = unsafe { &*t };
            t = timer.isr_next.load(Ordering::Relaxed);
            timer.isr_queued.store(false, Ordering::Release);
            match timer.isr_cmd.swap(ISR_NONE, Ordering::Acquire) {
                ISR_START => self.arm(timer, now.saturating_add(timer.period_ticks())),
                ISR_STOP => self.disarm(timer),
                _ => {}
            }
        }
    }

    /// Runs a fiber-side command `f(service, now)` on the service's runtime
    /// and wakes the service if its earliest expiry changed.
    pub(super) fn command(&self, fib: &Fiber<'_>, f: impl FnOnce(&Self, Ticks)) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        let now = fib.now();
        let before = self.earliest();
        f(self, now);
        // A service fiber waiting for the old earliest expiry must look
        // again; with none running, the next `run` starts from the list.
        if self.running.get() && self.earliest() != before {
            self.signal.notify_from_isr();
        }
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(())
    }

    /// Reads timer state on the service's runtime.
    pub(super) fn query<R>(&self, fib: &Fiber<'_>, f: impl FnOnce() -> R) -> Result<R, WrongRuntime> {
        let _lease = self.owner.lease(fib)?;
        Ok(f())
    }

    /// The earliest active timer and its expiry.
    fn earliest(&self) -> (*const Timer<'t>, Ticks) {
        let h = self.head.get();
        // SAFETY: listed timers live for 't.
        (h, if h.is_null() { 0 } else { unsafe { (*h).expiry_cell().get() } })
    }

    /// (Re)arms `t` to expire at `expiry`, after every timer expiring at or
    /// before it.
    pub(super) fn arm(&self, t: &'t Timer<'t>, expiry: Ticks) {
        self.disarm(t);
        t.expiry_cell().set(expiry);
        t.active_cell().set(true);
        self.insert(t);
    }

    /// Makes `t` dormant (unlisted).
    pub(super) fn disarm(&self, t: &Timer<'t>) {
        if !t.active_cell().replace(false) {
            return;
        }
        let me: *const Timer<'t> = t;
        let mut prev: *const Timer<'t> = ptr::null();
        let mut cur = self.head.get();
        while !cur.is_null() {
            // SAFETY: listed timers live for 't.
            let next = unsafe { (*cur).next.get() };
            if cur == me {
                if prev.is_null() {
                    self.head.set(next);
                } else {
                    // SAFETY: as above.
                    unsafe { (*prev).next.set(next) };
                }
                t.next.set(ptr::null());
                return;
            }
            prev = cur;
            cur = next;
        }
        // An active timer that is not listed is the one whose callback runs
        // right now (one-shot: already marked dormant; auto-reload: re-listed
        // before its callback), so this is not reached.
    }

    /// Links the active `t` in expiry order (after equal expiries).
    fn insert(&self, t: &Timer<'t>) {
        let e = t.expiry_cell().get();
        let me: *const Timer<'t> = t;
        let mut prev: *const Timer<'t> = ptr::null();
        let mut cur = self.head.get();
        // SAFETY: listed timers live for 't.
        while !cur.is_null() && unsafe { (*cur).expiry_cell().get() } <= e {
            prev = cur;
            // SAFETY: as above.
            cur = unsafe { (*cur).next.get() };
        }
        t.next.set(cur);
        if prev.is_null() {
            self.head.set(me);
        } else {
            // SAFETY: as above.
            unsafe { (*prev).next.set(me) };
        }
    }
}

impl Default for TimerService<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TimerService<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The timer list is readable only from the bound runtime's fibers.
        f.debug_struct("TimerService").finish_non_exhaustive()
    }
}
