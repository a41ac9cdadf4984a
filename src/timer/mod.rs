//! Software timers (FreeRTOS's timers, Zephyr's `k_timer`): one-shot and
//! auto-reload timers whose callbacks run in a timer service fiber.
//!
//! A [`TimerService`] is a kernel object; its [`run`](TimerService::run) is
//! the body of a fiber you spawn (on a stack you give, like any fiber). It
//! keeps the active [`Timer`]s sorted by expiry and sleeps until the earliest
//! one, on the runtime's clock — the same clock [`Fiber::sleep`] uses — so a
//! callback's [`Fiber::now`] is the tick its timer expired at (later only if
//! the service was kept from running, e.g. by a long callback). Callbacks run
//! in that fiber, never in interrupt context: they may block briefly (every
//! other timer waits meanwhile).
//!
//! ```
//! use filament::timer::{Timer, TimerService};
//! use filament::{Fiber, Runtime, StaticStack};
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! static TIMERS: TimerService = TimerService::new().named("timers");
//! static TICKS: AtomicU64 = AtomicU64::new(0);
//! fn on_tick(fib: &Fiber<'_>, _timer: &Timer<'_>) {
//!     assert_eq!(fib.now() % 10, 0); // fires at 10, 20, 30
//!     TICKS.fetch_add(1, Ordering::Relaxed);
//! }
//! static TICK: Timer = Timer::auto_reload(&TIMERS, 10, on_tick).named("tick");
//!
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//! RT.spawn_detached(STACKS[0].claim().unwrap(), |fib| TIMERS.run(fib).unwrap()).unwrap();
//! RT.spawn_detached(STACKS[1].claim().unwrap(), |fib| {
//!     TICK.start(fib).unwrap();
//!     fib.sleep(35); // virtual time: no real waiting
//!     TICK.stop(fib).unwrap();
//!     TIMERS.shutdown(fib).unwrap(); // the service's `run` returns
//! })
//! .unwrap();
//! RT.run().unwrap();
//! assert_eq!(TICKS.load(Ordering::Relaxed), 3);
//! ```
//!
//! # Expiry and drift
//!
//! [`start`](Timer::start), [`reset`](Timer::reset) and
//! [`change_period`](Timer::change_period) (re)arm a timer to expire one
//! period after the command (FreeRTOS semantics: starting or resetting an
//! active timer restarts its period; changing the period of a dormant timer
//! starts it). An auto-reload timer's next expiry is its previous expiry plus
//! the period, never "now plus the period", so it does not drift; if the
//! service fell behind by several periods (a long callback, a clock that
//! jumped ahead), the callback runs once for each (each call sees the late
//! `now`), as FreeRTOS's timer task catches up (`prvReloadTimer`). Timers
//! expiring at the same tick run in the order they were armed.
//!
//! Between two callbacks with no wait in between (several timers due at
//! once, or catching up) the service yields ([`Fiber::yield_now`]): every
//! other ready fiber *of the service's priority level* runs once before the
//! next callback. FreeRTOS's timer task calls the callbacks back to back and
//! relies on preemption by higher-priority tasks; a cooperative service
//! yields instead, so catching up on many missed periods never starves the
//! fibers of its level or above. Like FreeRTOS's timer task, a service at a
//! higher level than other fibers runs its catch-up before them (review 12:
//! the docs said "the other fibers"). A single expiry costs no extra switch.
//!
//! Expiries saturate at `Ticks::MAX`, which means "never", as for deadlines
//! (see [`Ticks`]): a timer whose expiry reaches it stays
//! active but never fires ([`remaining`](Timer::remaining) answers
//! `Ticks::MAX`), even on a clock that reads `Ticks::MAX`. An auto-reload
//! timer's re-arming saturates there too, so it stops firing rather than
//! firing forever at the end of time.
//!
//! # From interrupt handlers
//!
//! [`Timer::start_from_isr`], [`Timer::stop_from_isr`] and
//! [`Timer::reset_from_isr`] leave a command in the timer and raise the service's
//! [`IrqSignal`](crate::IrqSignal): atomics only (see the methods for the
//! exact list). The service applies it when it next runs; a command counts
//! its period from then (an interrupt handler cannot read the runtime's
//! clock). Several commands to one timer before the service runs collapse
//! into the last one.
//!
//! [`Fiber::sleep`]: crate::Fiber::sleep
//! [`Fiber::now`]: crate::Fiber::now
//! [`Fiber::yield_now`]: crate::Fiber::yield_now

use core::cell::Cell;
use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8};

use crate::handle::Fiber;
use crate::sync::WrongRuntime;
use crate::time::Ticks;

mod service;

pub use service::{ServiceError, TimerService};

/// A timer callback: runs in the service fiber, with that fiber's handle
/// and the timer that expired.
pub type Callback = fn(&Fiber<'_>, &Timer<'_>);

/// One-shot or auto-reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Expires once per start, then is dormant.
    OneShot,
    /// Re-arms itself one period after each expiry.
    AutoReload,
}

/// An interrupt handler's command, waiting in the timer for the service.
pub(crate) const ISR_NONE: u8 = 0;
pub(crate) const ISR_START: u8 = 1;
pub(crate) const ISR_STOP: u8 = 2;

/// A software timer served by one [`TimerService`] (`'t`: how long both
/// live; `'static` for `static`s).
///
/// Fibers [`start`](Self::start), [`stop`](Self::stop),
/// [`reset`](Self::reset), [`change_period`](Self::change_period) and query it
/// ([`remaining`](Self::remaining), [`is_active`](Self::is_active)); interrupt
/// handlers start, stop and reset it (`_from_isr`). Its state belongs to the
/// service's runtime: every fiber-side call leases the service (see
/// [`sync`](crate::sync)) and fails with [`WrongRuntime`] while another
/// runtime uses it.
pub struct Timer<'t> {
    service: &'t TimerService<'t>,
    callback: Callback,
    mode: Mode,
    name: &'static str,
    id: usize,
    /// The rest: the service's runtime only (its binding gates them).
    period: Cell<Ticks>,
    expiry: Cell<Ticks>,
    active: Cell<bool>,
    /// Link in the service's list of active timers (sorted by expiry).
    pub(crate) next: Cell<*const Timer<'t>>,
    /// Interrupt side: the last command not yet applied ([`ISR_NONE`] if none).
    pub(crate) isr_cmd: AtomicU8,
    /// Whether the timer is on the service's list of pending ISR commands.
    pub(crate) isr_queued: AtomicBool,
    /// Link in that list.
    pub(crate) isr_next: AtomicPtr<Timer<'t>>,
}

// SAFETY: the `Cell`s are touched only by fibers of the runtime the service is
// bound or leased to, on the one thread running it (every fiber-side method
// goes through the service's `Binding`); interrupt handlers and other threads
// touch only the atomics. The rest is immutable.
unsafe impl Sync for Timer<'_> {}
// SAFETY: a timer that can be moved is borrowed by nobody: it is in no
// service list (linking it takes `&'t self`).
unsafe impl Send for Timer<'_> {}

impl<'t> Timer<'t> {
    /// A dormant timer of `service` that expires `period` ticks after each
    /// start and runs `callback`. `const`, for `static`s.
    ///
    /// # Panics
    /// If `period` is 0 (at compile time in a `static`).
    pub const fn new(service: &'t TimerService<'t>, mode: Mode, period: Ticks, callback: Callback) -> Self {
        assert!(period > 0, "a timer's period must be at least one tick");
        Timer {
            service,
            callback,
            mode,
            name: "",
            id: 0,
            period: Cell::new(period),
            expiry: Cell::new(0),
            active: Cell::new(false),
            next: Cell::new(ptr::null()),
            isr_cmd: AtomicU8::new(ISR_NONE),
            isr_queued: AtomicBool::new(false),
            isr_next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A one-shot timer ([`Mode::OneShot`]); see [`new`](Self::new).
    pub const fn one_shot(service: &'t TimerService<'t>, period: Ticks, callback: Callback) -> Self {
        Self::new(service, Mode::OneShot, period, callback)
    }

    /// An auto-reload timer ([`Mode::AutoReload`]); see [`new`](Self::new).
    pub const fn auto_reload(service: &'t TimerService<'t>, period: Ticks, callback: Callback) -> Self {
        Self::new(service, Mode::AutoReload, period, callback)
    }

    /// Names it (for its callback, `Debug` and traces of the service).
    pub const fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Gives it a number its callback can read ([`id`](Self::id)), so one
    /// callback can serve several timers (FreeRTOS's timer ID).
    pub const fn with_id(mut self, id: usize) -> Self {
        self.id = id;
        self
    }

    /// The name given by [`named`](Self::named) ("" if none).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The number given by [`with_id`](Self::with_id) (0 if none).
    pub fn id(&self) -> usize {
        self.id
    }

    /// One-shot or auto-reload.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Arms the timer to expire one period from now; an active timer
    /// restarts its period (as [`reset`](Self::reset)).
    pub fn start(&'t self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        self.service.command(fib, |s, now| s.arm(self, now.saturating_add(self.period.get())))
    }

    /// Same as [`start`](Self::start) (FreeRTOS's `xTimerReset`).
    pub fn reset(&'t self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        self.start(fib)
    }

    /// Makes the timer dormant; its callback does not run until it is
    /// started again. Stopping a dormant timer does nothing.
    pub fn stop(&'t self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        self.service.command(fib, |s, _| s.disarm(self))
    }

    /// Sets a new period and (re)arms the timer to expire one new period from
    /// now — a dormant timer starts (FreeRTOS's `xTimerChangePeriod`).
    /// [`TimerError::ZeroPeriod`] for 0, changing nothing.
    pub fn change_period(&'t self, fib: &Fiber<'_>, period: Ticks) -> Result<(), TimerError> {
        if period == 0 {
            return Err(TimerError::ZeroPeriod);
        }
        self.service.command(fib, |s, now| {
            self.period.set(period);
            s.arm(self, now.saturating_add(period));
        })?;
        Ok(())
    }

    /// The period.
    pub fn period(&self, fib: &Fiber<'_>) -> Result<Ticks, WrongRuntime> {
        self.service.query(fib, || self.period.get())
    }

    /// Whether the timer is active (armed).
    pub fn is_active(&self, fib: &Fiber<'_>) -> Result<bool, WrongRuntime> {
        self.service.query(fib, || self.active.get())
    }

    /// The tick it expires at next; `None` while dormant.
    pub fn expiry(&self, fib: &Fiber<'_>) -> Result<Option<Ticks>, WrongRuntime> {
        self.service.query(fib, || self.active.get().then(|| self.expiry.get()))
    }

    /// Ticks left until it expires (0 if it is due and the service has not run
    /// yet; `Ticks::MAX`, "never", for an expiry at `Ticks::MAX`); `None`
    /// while dormant (FreeRTOS's `xTimerGetExpiryTime` minus now).
    pub fn remaining(&self, fib: &Fiber<'_>) -> Result<Option<Ticks>, WrongRuntime> {
        let now = fib.now();
        self.service.query(fib, || {
            self.active.get().then(|| match self.expiry.get() {
                Ticks::MAX => Ticks::MAX,
                e => e.saturating_sub(now),
            })
        })
    }

    /// Starts (or restarts) the timer from an interrupt handler.
    /// **Interrupt-safe** (see below).
    ///
    /// # What it does
    /// One atomic store of the command into the timer; one atomic swap of
    /// the timer's "queued" flag and, if it was clear, a compare-exchange
    /// loop pushing the timer onto the service's lock-free list of pending
    /// commands; then [`IrqSignal::notify_from_isr`](crate::IrqSignal::notify_from_isr)
    /// on the service's signal. No lock, no allocation, never blocks. The
    /// service applies the command when it runs next: the period counts
    /// from then.
    pub fn start_from_isr(&'t self) {
        self.service.isr_command(self, ISR_START);
    }

    /// Same as [`start_from_isr`](Self::start_from_isr).
    pub fn reset_from_isr(&'t self) {
        self.service.isr_command(self, ISR_START);
    }

    /// Stops the timer from an interrupt handler. **Interrupt-safe**, exactly
    /// as [`start_from_isr`](Self::start_from_isr). A callback
    /// already running is not interrupted; a stop that reaches the service
    /// after the timer expired does not undo that expiry.
    pub fn stop_from_isr(&'t self) {
        self.service.isr_command(self, ISR_STOP);
    }

    pub(crate) fn expiry_cell(&self) -> &Cell<Ticks> {
        &self.expiry
    }

    pub(crate) fn active_cell(&self) -> &Cell<bool> {
        &self.active
    }

    pub(crate) fn period_ticks(&self) -> Ticks {
        self.period.get()
    }

    pub(crate) fn callback(&self) -> Callback {
        self.callback
    }
}

impl fmt::Debug for Timer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state is readable only from the service's runtime.
        f.debug_struct("Timer")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a timer command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerError {
    /// A period of 0 ticks.
    ZeroPeriod,
    /// The timer's service belongs to another runtime now.
    WrongRuntime,
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerError::ZeroPeriod => f.write_str("a timer's period must be at least one tick"),
            TimerError::WrongRuntime => fmt::Display::fmt(&WrongRuntime, f),
        }
    }
}

impl core::error::Error for TimerError {}

impl From<WrongRuntime> for TimerError {
    fn from(_: WrongRuntime) -> Self {
        TimerError::WrongRuntime
    }
}
