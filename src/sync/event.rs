//! A manual-reset event.
//!
//! ```
//! use filament::sync::Event;
//! use filament::{Runtime, StaticStack};
//!
//! static READY: Event = Event::new();
//! static STACKS: [StaticStack<16384>; 3] = [const { StaticStack::new() }; 3];
//! static RT: Runtime<'static, 3> = Runtime::new();
//!
//! for stack in &STACKS[..2] {
//!     RT.spawn_detached(stack.claim().unwrap(), |fib| READY.wait(fib).unwrap()).unwrap();
//! }
//! let setter = RT
//!     .spawn(STACKS[2].claim().unwrap(), |fib| {
//!         READY.set(fib).unwrap(); // wakes both waiters, stays set
//!         READY.is_set(fib).unwrap()
//!     })
//!     .ok()
//!     .unwrap();
//! RT.run().unwrap();
//! assert!(RT.take(setter).unwrap());
//! ```

use core::cell::Cell;
use core::fmt;

use super::{Binding, TryError, WaitError, WrongRuntime, choice_point};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw;
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// A manual-reset event for fibers of one runtime.
///
/// [`set`](Self::set) wakes every waiting fiber (in FIFO order) and leaves the
/// event set: later [`wait`](Self::wait)s return at once until
/// [`reset`](Self::reset) clears it. A fiber woken by `set` returns `Ok` even if
/// the event was reset again before it ran. Starts unset.
///
/// Belongs to one runtime at a time (see [`sync`](crate::sync)). In a
/// deadlock report a waiter shows as [`WaitReason::Event`](crate::WaitReason::Event)
/// with this event's address.
#[repr(C)]
pub struct Event {
    /// First field: its address is the event's address (deadlock reports).
    waiters: WaitQueue,
    owner: Binding,
    set: Cell<bool>,
    /// Selects watching the event (see [`select`](super::select)).
    selectors: super::select::SelList,
}

// SAFETY: everything but `owner` (atomic) is touched only by fibers of the
// bound runtime, on the one thread running it (`Binding::check` gates every
// access).
unsafe impl Sync for Event {}
// SAFETY: a movable event is borrowed by nobody, so nobody waits in it.
unsafe impl Send for Event {}

impl Event {
    /// Names it: the name appears in deadlock reports
    /// ([`BlockedFiber::object`](crate::BlockedFiber::object)), in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`:
    ///
    /// ```
    /// static READY: filament::sync::Event = filament::sync::Event::new().named("ready");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// An unset event. `const`, for `static`s.
    pub const fn new() -> Self {
        Event {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            set: Cell::new(false),
            selectors: super::select::SelList::new(),
        }
    }

    /// Sets or resets the event from outside any fiber (before `run`, or
    /// between runs; nobody waits then). `WrongRuntime` while a runtime uses
    /// the event.
    pub fn store_outside(&self, set: bool) -> Result<(), WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        self.set.set(set);
        Ok(())
    }

    /// Whether the event is set, from outside any fiber; `WrongRuntime`
    /// while a runtime uses the event.
    pub fn is_set_outside(&self) -> Result<bool, WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        Ok(self.set.get())
    }

    /// Sets the event and wakes every waiter. Setting a set event does nothing.
    pub fn set(&self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        if self.set.replace(true) {
            return Ok(());
        }
        // SAFETY: the queue holds only blocked fibers of `core`; we run in it.
        unsafe {
            raw::wake_all(core, &self.waiters);
            self.selectors.notify_all(core);
            choice_point(core);
        }
        Ok(())
    }

    /// Clears the event; later waits block until the next [`set`](Self::set).
    pub fn reset(&self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        if self.set.replace(false) {
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
        }
        Ok(())
    }

    /// Whether the event is set; never blocks.
    pub fn is_set(&self, fib: &Fiber<'_>) -> Result<bool, WrongRuntime> {
        let _lease = self.owner.lease(fib)?;
        Ok(self.set.get())
    }

    /// `Ok` if the event is set, [`TryError::WouldBlock`] if not; never blocks.
    pub fn try_wait(&self, fib: &Fiber<'_>) -> Result<(), TryError> {
        if self.is_set(fib)? { Ok(()) } else { Err(TryError::WouldBlock) }
    }

    /// Blocks the fiber until the event is set (returns at once if it is).
    /// Fails only with [`WaitError::WrongRuntime`].
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), WaitError> {
        self.wait_until(fib, None)
    }

    /// Like [`wait`](Self::wait), giving up with [`WaitError::TimedOut`] after
    /// `timeout` ticks — unless the event is set by the time the fiber resumes.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<(), WaitError> {
        self.wait_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    fn wait_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<(), WaitError> {
        self.owner.bind(fib)?;
        if self.set.get() {
            return Ok(());
        }
        // SAFETY: the queue lives in `self`, which outlives this call ('s) and
        // belongs to this runtime (checked above).
        match unsafe { fib.wait_on(&self.waiters, WaitKind::Event, deadline) } {
            Wake::Signaled => Ok(()),
            _ if self.set.get() => Ok(()),
            Wake::Unwinding => Err(WaitError::Unwinding),
            _ => Err(WaitError::TimedOut),
        }
    }
}

/// The hooks [`select`](super::select) uses.
impl Event {
    /// Binds the event to `fib`'s runtime for the run.
    pub(crate) fn select_bind<'s>(&'s self, fib: &Fiber<'s>) -> bool {
        self.owner.bind(fib).is_ok()
    }

    /// Whether it is set (call only from a fiber of the bound runtime).
    pub(crate) fn select_is_set(&self) -> bool {
        self.set.get()
    }

    pub(crate) fn select_list(&self) -> &super::select::SelList {
        &self.selectors
    }

    /// The address a plain waiter is reported with.
    pub(crate) fn select_addr(&self) -> usize {
        &raw const self.waiters as usize
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The flag is readable only from the bound runtime's fibers.
        f.debug_struct("Event").finish_non_exhaustive()
    }
}
