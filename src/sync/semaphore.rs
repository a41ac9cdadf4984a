//! A counting semaphore with FIFO hand-off of permits.
//!
//! ```
//! use filament::sync::Semaphore;
//! use filament::{Runtime, StaticStack};
//!
//! static SLOTS: Semaphore = Semaphore::new(1);
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//!
//! let a = RT
//!     .spawn(STACKS[0].claim().unwrap(), |fib| {
//!         SLOTS.acquire(fib).unwrap(); // the only permit
//!         fib.yield_now();
//!         SLOTS.release(fib, 1).unwrap(); // handed to `b`, which waits
//!     })
//!     .ok()
//!     .unwrap();
//! let b = RT
//!     .spawn(STACKS[1].claim().unwrap(), |fib| {
//!         assert!(SLOTS.try_acquire(fib).is_err()); // `a` has it
//!         SLOTS.acquire(fib).unwrap();
//!         SLOTS.available(fib).unwrap()
//!     })
//!     .ok()
//!     .unwrap();
//! RT.run().unwrap();
//! RT.take(a).unwrap();
//! assert_eq!(RT.take(b).unwrap(), 0);
//! ```

use core::cell::Cell;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Binding, TryError, WaitError, WrongRuntime, choice_point};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::irq::source::{Drain, Drained, IrqSource, as_irq_waiter};
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// A counting semaphore for fibers of one runtime.
///
/// Each [`acquire`](Self::acquire) takes one permit, blocking the fiber while
/// none is available; [`release`](Self::release) returns `n` permits.
///
/// * **FIFO hand-off**: a released permit goes directly to the fiber that has
///   waited longest; while fibers wait the count stays 0, so
///   [`try_acquire`](Self::try_acquire) cannot take a permit ahead of them.
/// * Any fiber may release (permits are not tied to who acquired them).
/// * Interrupt handlers, signal handlers and other threads give with
///   [`give_from_isr`](Self::give_from_isr); build it
///   [`isr_capable`](Self::isr_capable) so its waiters count as waiting for
///   an interrupt (not reported deadlocked).
/// * Belongs to one runtime at a time (see [`sync`](crate::sync)).
///
/// In a deadlock report a waiter shows as
/// [`WaitReason::Semaphore`](crate::WaitReason::Semaphore) with this
/// semaphore's address.
#[repr(C)]
pub struct Semaphore {
    /// First field: its address is the semaphore's address (deadlock reports).
    waiters: WaitQueue,
    owner: Binding,
    /// Available permits; 0 whenever a fiber waits.
    permits: Cell<usize>,
    /// The most permits it holds ([`Semaphore::bounded`]; `usize::MAX`: no bound).
    max: usize,
    /// Gives from interrupt context not yet moved into `permits`.
    isr_gives: AtomicUsize,
    /// Waiters count as interrupt waiters ([`Semaphore::isr_capable`], or a
    /// [`give_from_isr`](Semaphore::give_from_isr) happened).
    isr_capable: AtomicBool,
    /// Registration with the runtime's interrupt sources, the raised flag.
    src: IrqSource,
    /// Selects watching for a permit (see [`select`](super::select)).
    selectors: super::select::SelList,
}

// SAFETY: everything but `owner`, `isr_gives`, `isr_capable` and the source's
// raised flag (atomics: the interrupt side) is touched only by fibers of the
// bound runtime, on the one thread running it (`Binding` gates every access).
unsafe impl Sync for Semaphore {}
// SAFETY: a movable semaphore is borrowed by nobody, so nobody waits in it.
unsafe impl Send for Semaphore {}

impl Semaphore {
    /// A semaphore with `permits` permits available. `const`, for `static`s.
    pub const fn new(permits: usize) -> Self {
        Semaphore::with_max(permits, usize::MAX)
    }

    /// A semaphore that never holds more than `max` permits, starting with
    /// `permits` (clamped to `max`). `bounded(0, 1)` is a binary semaphore
    /// (FreeRTOS's `xSemaphoreCreateBinary`): a [`give`](Self::give) while it
    /// holds its permit fails with [`GiveError::Full`].
    pub const fn bounded(permits: usize, max: usize) -> Self {
        let permits = if permits > max { max } else { permits };
        Semaphore::with_max(permits, max)
    }

    const fn with_max(permits: usize, max: usize) -> Self {
        Semaphore {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            permits: Cell::new(permits),
            max,
            isr_gives: AtomicUsize::new(0),
            isr_capable: AtomicBool::new(false),
            src: IrqSource::new(),
            selectors: super::select::SelList::new(),
        }
    }

    /// Returns one permit (to the longest waiter, else to the count). Fails
    /// with [`GiveError::Full`] when the semaphore already holds its maximum
    /// ([`bounded`](Self::bounded)), changing nothing.
    #[inline]
    pub fn give(&self, fib: &Fiber<'_>) -> Result<(), GiveError> {
        let (core, _lease) = self.owner.lease(fib).map_err(|_| GiveError::WrongRuntime)?;
        self.absorb_isr(core);
        // SAFETY: the queue holds only blocked fibers of `core`; we run in it.
        if !unsafe { raw::wake_one_by_running(core, &self.waiters) } {
            let n = self.permits.get();
            if n >= self.max {
                return Err(GiveError::Full);
            }
            self.permits.set(n + 1);
            // SAFETY: we are the running fiber of `core`.
            unsafe { self.selectors.notify_one(core) };
        }
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(())
    }

    /// Names it: the name appears in deadlock reports
    /// ([`BlockedFiber::object`](crate::BlockedFiber::object)), in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`:
    ///
    /// ```
    /// static SLOTS: filament::sync::Semaphore = filament::sync::Semaphore::new(2).named("slots");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// Takes one permit, blocking the fiber until one is available.
    /// Fails with [`WaitError::WrongRuntime`], [`WaitError::Cancelled`] (the
    /// fiber was cancelled) or [`WaitError::Unwinding`] (it unwinds and would
    /// have blocked); never times out.
    #[inline]
    pub fn acquire<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), WaitError> {
        self.acquire_until(fib, None)
    }

    /// Like [`acquire`](Self::acquire), giving up with
    /// [`WaitError::TimedOut`] after `timeout` ticks.
    pub fn acquire_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<(), WaitError> {
        self.acquire_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    /// Takes one permit if one is available; never blocks.
    pub fn try_acquire(&self, fib: &Fiber<'_>) -> Result<(), TryError> {
        let (core, _lease) = self.owner.lease(fib)?;
        self.absorb_isr(core);
        let n = self.permits.get();
        if n == 0 {
            return Err(TryError::WouldBlock);
        }
        self.permits.set(n - 1);
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(())
    }

    // Inline, as `Channel::recv`: the hand-off runs in the caller's frame.
    #[inline(always)]
    fn acquire_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<(), WaitError> {
        let core = self.bind(fib)?;
        // Interrupt-capable (sticky): the interrupt-aware wait, out of line so
        // the ordinary hand-off keeps its cost. Not capable: we wait as an
        // ordinary (uncounted) waiter; the blocking call registers the source
        // (`bind`), so a drain may still run behind our back — at a counted
        // fiber's poll or when the ready ring empties — and hand us an
        // interrupt give (the documented rule, `isr_capable`).
        if self.isr_capable.load(Ordering::Relaxed) {
            return self.acquire_until_isr(fib, core, deadline);
        }
        self.absorb_isr(core);
        let n = self.permits.get();
        if n > 0 {
            self.permits.set(n - 1);
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
            return Ok(());
        }
        // SAFETY: the queue lives in `self`, which outlives this call ('s) and
        // belongs to this runtime (checked above).
        let wake = unsafe { fib.wait_on(&self.waiters, WaitKind::Semaphore, deadline) };
        // Only a deadline ends the wait in a way worth a second look: for
        // `acquire` (no deadline, inlined) the compiler drops the branch, so
        // nothing but the wake outlives the switch on the hand-off path.
        if deadline.is_some() {
            return self.woken(core, wake);
        }
        Self::woken_plain(wake)
    }

    /// What a wait's wake-up means for an `acquire` without a deadline.
    #[inline]
    fn woken_plain(wake: Wake) -> Result<(), WaitError> {
        match wake {
            // Woken only by `release` (or an interrupt give), which handed us a permit.
            Wake::Signaled => Ok(()),
            Wake::Unwinding => Err(WaitError::Unwinding),
            Wake::Aborted => Err(WaitError::Cancelled),
            // Taken off the queue by the runtime: no permit was handed to us.
            _ => Err(WaitError::TimedOut),
        }
    }

    /// Binds the semaphore to `fib`'s runtime for the run and registers its
    /// interrupt source, interrupt-capable or not (`irq::source::bind_registered`:
    /// a `give_from_isr` after a fiber blocked here must still reach it).
    #[inline(always)]
    fn bind<'s>(&'s self, fib: &Fiber<'s>) -> Result<*mut Core, WrongRuntime> {
        crate::irq::source::bind_registered(&self.owner, &self.src, self, fib)
    }

    /// What a wait's wake-up means for `acquire`.
    #[inline]
    fn woken(&self, core: *mut Core, wake: Wake) -> Result<(), WaitError> {
        match wake {
            // Woken only by `release` (or an interrupt give), which handed us a permit.
            Wake::Signaled => Ok(()),
            // Taken off the queue by the runtime or a canceller: no permit
            // was handed to us, but an interrupt's give may be there.
            _ => self.woken_late(core, wake),
        }
    }

    /// A wait that ended without a permit handed over: after a timeout,
    /// takes a permit an interrupt gave meanwhile that no drain has moved
    /// to the fiber side yet (the wait's deadline may come first), as the
    /// event group re-tests; else the error.
    #[cold]
    #[inline(never)]
    fn woken_late(&self, core: *mut Core, wake: Wake) -> Result<(), WaitError> {
        if wake == Wake::TimedOut {
            self.absorb_isr(core);
            let n = self.permits.get();
            if n > 0 {
                self.permits.set(n - 1);
                return Ok(());
            }
        }
        match wake {
            Wake::Unwinding => Err(WaitError::Unwinding),
            Wake::Aborted => Err(WaitError::Cancelled),
            _ => Err(WaitError::TimedOut),
        }
    }

    /// Returns `n` permits: each goes to the longest-waiting fiber, the rest
    /// become available.
    ///
    /// # Panics
    /// If the count of available permits would overflow `usize`.
    #[inline(always)]
    pub fn release(&self, fib: &Fiber<'_>, n: usize) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        // No absorb of interrupt gives here (the hand-off's cost): they are
        // permits like these, taken by the next acquire or the drain.
        let mut left = n;
        // SAFETY: the queue holds only blocked fibers of `core`; we run in it.
        unsafe {
            while left > 0 && raw::wake_one_by_running(core, &self.waiters) {
                left -= 1;
            }
        }
        let total = self.permits.get().checked_add(left).expect("semaphore permit count overflow");
        // A bounded semaphore keeps at most `max` (use `give` to learn whether
        // a permit was kept).
        self.permits.set(total.min(self.max));
        // Permits counted, nobody queued: one select per permit (each passes
        // any left over on when it returns).
        // SAFETY: we are the running fiber of `core`.
        while left > 0 && unsafe { self.selectors.notify_one(core) } {
            left -= 1;
        }
        if n > 0 {
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
        }
        Ok(())
    }

    /// Like [`release`](Self::release), from outside any fiber: gives
    /// permits before `run` (or between runs; nobody waits then).
    /// `WrongRuntime` while a runtime uses the semaphore.
    ///
    /// # Panics
    /// If the permit count would overflow `usize`.
    pub fn release_outside(&self, n: usize) -> Result<(), WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        self.absorb_isr_outside();
        let total = self.permits.get().checked_add(n).expect("semaphore permit count overflow");
        self.permits.set(total.min(self.max));
        Ok(())
    }

    /// Permits available now, from outside any fiber; `WrongRuntime` while a
    /// runtime uses the semaphore.
    pub fn available_outside(&self) -> Result<usize, WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        self.absorb_isr_outside();
        Ok(self.permits.get())
    }

    /// Permits available now (0 while fibers wait).
    pub fn available(&self, fib: &Fiber<'_>) -> Result<usize, WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        self.absorb_isr(core);
        Ok(self.permits.get())
    }
}

/// Interrupt side ([`give_from_isr`](Semaphore::give_from_isr)).
impl Semaphore {
    /// Marks the semaphore interrupt-capable: a fiber blocked in
    /// [`acquire`](Self::acquire) counts as waiting for an interrupt, so the
    /// runtime polls and idles (its idle hook; `hlt` on bare metal) instead
    /// of reporting a deadlock while only an interrupt can wake it. `const`:
    ///
    /// ```
    /// static RX_READY: filament::sync::Semaphore = filament::sync::Semaphore::new(0).isr_capable();
    /// ```
    ///
    /// The first [`give_from_isr`](Self::give_from_isr) marks it too, but
    /// only fibers that block after it count: mark it here when a fiber may
    /// block before the first interrupt give. A fiber that blocked before
    /// does not count (with nothing else to wait for, the runtime reports a
    /// deadlock instead of waiting for the interrupt), but a give that
    /// happens while it waits still reaches it: at the runtime's next poll
    /// while some fiber is counted, or when it runs out of ready fibers
    /// (before it idles, reports a deadlock or stops for
    /// [`run_for`](crate::Runtime::run_for)'s limit), or when its
    /// [`acquire_timeout`](Self::acquire_timeout) times out, which takes
    /// the permit instead. So while other fibers keep the runtime busy (the
    /// ready ring never empties) and no fiber is counted, such a waiter can
    /// wait for that give indefinitely (review 13): a semaphore given from
    /// interrupts should be marked here, in its `static`, or waited on with
    /// a timeout.
    pub const fn isr_capable(mut self) -> Self {
        self.isr_capable = AtomicBool::new(true);
        self
    }

    /// Returns one permit from interrupt context. **Interrupt-safe** and
    /// async-signal-safe, callable from any thread or core; no lock, never
    /// blocks, touches no runtime memory.
    ///
    /// Exactly: one atomic store marking the semaphore interrupt-capable, one
    /// atomic `fetch_add` on its count of interrupt gives, then the raise of
    /// its interrupt source (one atomic swap, one atomic add on the
    /// program-wide epoch that [`IrqWatch`](crate::IrqWatch) reads, under
    /// `std` at most one `futex` wake). The permit reaches the fiber side
    /// at the runtime's next poll (every switch and idle turn while a fiber
    /// waits on an interrupt-capable object; and whenever the runtime runs
    /// out of ready fibers) or the next `acquire`, `try_acquire`, `give` or
    /// `available` by a fiber, whichever comes first: it goes to the longest waiter, else to
    /// the count — capped at the maximum of a [`bounded`](Self::bounded)
    /// semaphore (the interrupt cannot learn that: an extra give is dropped,
    /// as [`release`](Self::release) drops it).
    pub fn give_from_isr(&self) {
        if !self.isr_capable.load(Ordering::Relaxed) {
            self.isr_capable.store(true, Ordering::Relaxed);
        }
        // Release: the drain's (or absorbing fiber's) acquire swap sees it;
        // before the raise, so a drain that sees the raise sees the give.
        self.isr_gives.fetch_add(1, Ordering::Release);
        self.src.raise();
    }

    /// [`acquire`](Self::acquire) on an interrupt-capable semaphore: the
    /// source is registered with this runtime (so its drain hands interrupt
    /// gives to waiters) and the fiber blocks as a counted, marked interrupt
    /// waiter (a give drained between our look at the permits and our
    /// enqueue would be lost: `irq::source::as_irq_waiter`).
    #[cold]
    #[inline(never)]
    fn acquire_until_isr<'s>(
        &'s self,
        fib: &Fiber<'s>,
        core: *mut Core,
        deadline: Option<Ticks>,
    ) -> Result<(), WaitError> {
        self.src.register(fib, self)?;
        self.absorb_isr(core);
        let n = self.permits.get();
        if n > 0 {
            self.permits.set(n - 1);
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
            return Ok(());
        }
        // SAFETY: we are the running fiber of `core`; the closure blocks once.
        // The queue lives in `self`, which outlives this call ('s) and belongs
        // to this runtime (bound by the caller).
        self.woken(core, unsafe { as_irq_waiter(core, || fib.wait_on(&self.waiters, WaitKind::Semaphore, deadline)) })
    }

    /// Moves the interrupt gives into the fiber side: to waiters first, the
    /// rest to the count (capped at `max`). A plain load when there are none.
    #[inline]
    fn absorb_isr(&self, core: *mut Core) {
        if self.isr_gives.load(Ordering::Relaxed) != 0 {
            self.absorb_isr_slow(core);
        }
    }

    #[cold]
    #[inline(never)]
    fn absorb_isr_slow(&self, core: *mut Core) {
        let mut n = self.isr_gives.swap(0, Ordering::Acquire);
        // SAFETY: callers run in `core`, which owns the semaphore (bound or
        // leased): the queue holds only its blocked fibers (I1, I2).
        unsafe {
            while n > 0 && raw::wake_one(core, &self.waiters) {
                n -= 1;
            }
        }
        self.permits.set(self.permits.get().saturating_add(n).min(self.max));
        // Permits counted, nobody queued: one select per permit, as `release`.
        // SAFETY: as above.
        while n > 0 && unsafe { self.selectors.notify_one(core) } {
            n -= 1;
        }
    }

    /// [`absorb_isr`](Self::absorb_isr) outside any run: nobody waits.
    fn absorb_isr_outside(&self) {
        if self.isr_gives.load(Ordering::Relaxed) != 0 {
            let n = self.isr_gives.swap(0, Ordering::Acquire);
            self.permits.set(self.permits.get().saturating_add(n).min(self.max));
        }
    }
}

impl Drain for Semaphore {
    /// Hands interrupt gives to the waiters. With none waiting the gives stay
    /// where they are (the next fiber to use the semaphore takes them).
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        if self.isr_gives.load(Ordering::Relaxed) == 0 {
            return Drained::Done; // taken by a fiber already
        }
        // SAFETY: per the contract we run in `core`, which owns the list.
        unsafe {
            if self.waiters.is_empty() && self.selectors.first_sleeping().is_none()
                || crate::irq::source::blocking_here(core, self.select_addr(), &self.selectors)
            {
                return Drained::Keep;
            }
        }
        self.absorb_isr(core);
        Drained::Done
    }
}

/// The hooks [`select`](super::select) uses.
impl Semaphore {
    /// Binds the semaphore to `fib`'s runtime for the run, registering its
    /// interrupt source (see `bind`), so the runtime drains interrupt gives
    /// for a blocked select.
    pub(crate) fn select_bind<'s>(&'s self, fib: &Fiber<'s>) -> bool {
        self.bind(fib).is_ok()
    }

    /// Whether a blocked select must be polled (counted as an interrupt
    /// waiter) for this semaphore: it is interrupt-capable.
    pub(crate) fn select_polled(&self) -> bool {
        self.isr_capable.load(Ordering::Relaxed)
    }

    /// Takes a permit if one is counted, after absorbing interrupt gives
    /// (call only from a fiber of the bound runtime `core`).
    pub(crate) fn select_take(&self, core: *mut Core) -> bool {
        self.absorb_isr(core);
        let n = self.permits.get();
        if n > 0 {
            self.permits.set(n - 1);
        }
        n > 0
    }

    /// Whether a permit is counted or an interrupt give waits (call only from
    /// a fiber of the bound runtime).
    pub(crate) fn select_ready(&self) -> bool {
        self.permits.get() > 0 || self.isr_gives.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn select_list(&self) -> &super::select::SelList {
        &self.selectors
    }

    /// The address a plain waiter is reported with.
    pub(crate) fn select_addr(&self) -> usize {
        &raw const self.waiters as usize
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The count is readable only from the bound runtime's fibers.
        f.debug_struct("Semaphore").finish_non_exhaustive()
    }
}

/// Why [`Semaphore::give`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveError {
    /// The semaphore already holds its maximum ([`Semaphore::bounded`]).
    Full,
    /// The semaphore belongs to another runtime now.
    WrongRuntime,
}

impl fmt::Display for GiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveError::Full => f.write_str("semaphore already holds its maximum"),
            GiveError::WrongRuntime => fmt::Display::fmt(&WrongRuntime, f),
        }
    }
}

impl core::error::Error for GiveError {}
