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

use super::{Binding, TryError, WaitError, WrongRuntime, choice_point};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw;
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
    /// Selects watching for a permit (see [`select`](super::select)).
    selectors: super::select::SelList,
}

// SAFETY: everything but `owner` (atomic) is touched only by fibers of the
// bound runtime, on the one thread running it (`Binding::check` gates every
// access).
unsafe impl Sync for Semaphore {}
// SAFETY: a movable semaphore is borrowed by nobody, so nobody waits in it.
unsafe impl Send for Semaphore {}

impl Semaphore {
    /// A semaphore with `permits` permits available. `const`, for `static`s.
    pub const fn new(permits: usize) -> Self {
        Semaphore {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            permits: Cell::new(permits),
            max: usize::MAX,
            selectors: super::select::SelList::new(),
        }
    }

    /// A semaphore that never holds more than `max` permits, starting with
    /// `permits` (clamped to `max`). `bounded(0, 1)` is a binary semaphore
    /// (FreeRTOS's `xSemaphoreCreateBinary`): a [`give`](Self::give) while it
    /// holds its permit fails with [`GiveError::Full`].
    pub const fn bounded(permits: usize, max: usize) -> Self {
        let permits = if permits > max { max } else { permits };
        Semaphore {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            permits: Cell::new(permits),
            max,
            selectors: super::select::SelList::new(),
        }
    }

    /// Returns one permit (to the longest waiter, else to the count). Fails
    /// with [`GiveError::Full`] when the semaphore already holds its maximum
    /// ([`bounded`](Self::bounded)), changing nothing.
    pub fn give(&self, fib: &Fiber<'_>) -> Result<(), GiveError> {
        let (core, _lease) = self.owner.lease(fib).map_err(|_| GiveError::WrongRuntime)?;
        // SAFETY: the queue holds only blocked fibers of `core`; we run in it.
        if !unsafe { raw::wake_one(core, &self.waiters) } {
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

    /// Takes one permit, blocking the fiber until one is available. Fails only
    /// with [`WaitError::WrongRuntime`].
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
        let n = self.permits.get();
        if n == 0 {
            return Err(TryError::WouldBlock);
        }
        self.permits.set(n - 1);
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(())
    }

    fn acquire_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<(), WaitError> {
        let core = self.owner.bind(fib)?;
        let n = self.permits.get();
        if n > 0 {
            self.permits.set(n - 1);
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
            return Ok(());
        }
        // SAFETY: the queue lives in `self`, which outlives this call ('s) and
        // belongs to this runtime (checked above).
        match unsafe { fib.wait_on(&self.waiters, WaitKind::Semaphore, deadline) } {
            // Woken only by `release`, which handed us a permit.
            Wake::Signaled => Ok(()),
            Wake::Unwinding => Err(WaitError::Unwinding),
            // Taken off the queue by the runtime: no permit was handed to us.
            _ => Err(WaitError::TimedOut),
        }
    }

    /// Returns `n` permits: each goes to the longest-waiting fiber, the rest
    /// become available.
    ///
    /// # Panics
    /// If the count of available permits would overflow `usize`.
    pub fn release(&self, fib: &Fiber<'_>, n: usize) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        let mut left = n;
        // SAFETY: the queue holds only blocked fibers of `core`; we run in it.
        unsafe {
            while left > 0 && raw::wake_one(core, &self.waiters) {
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
        let total = self.permits.get().checked_add(n).expect("semaphore permit count overflow");
        self.permits.set(total.min(self.max));
        Ok(())
    }

    /// Permits available now, from outside any fiber; `WrongRuntime` while a
    /// runtime uses the semaphore.
    pub fn available_outside(&self) -> Result<usize, WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        Ok(self.permits.get())
    }

    /// Permits available now (0 while fibers wait).
    pub fn available(&self, fib: &Fiber<'_>) -> Result<usize, WrongRuntime> {
        let _lease = self.owner.lease(fib)?;
        Ok(self.permits.get())
    }
}

/// The hooks [`select`](super::select) uses.
impl Semaphore {
    /// Binds the semaphore to `fib`'s runtime for the run.
    pub(crate) fn select_bind<'s>(&'s self, fib: &Fiber<'s>) -> bool {
        self.owner.bind(fib).is_ok()
    }

    /// Takes a permit if one is counted (call only from a fiber of the bound runtime).
    pub(crate) fn select_take(&self) -> bool {
        let n = self.permits.get();
        if n > 0 {
            self.permits.set(n - 1);
        }
        n > 0
    }

    /// Whether a permit is counted (call only from a fiber of the bound runtime).
    pub(crate) fn select_ready(&self) -> bool {
        self.permits.get() > 0
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
