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
use core::sync::atomic::{AtomicBool, Ordering};

use super::{Binding, TryError, WaitError, WrongRuntime, choice_point};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::irq::source::{Drain, Drained, IrqSource, as_irq_waiter};
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// A manual-reset event for fibers of one runtime.
///
/// [`set`](Self::set) wakes every waiting fiber (in FIFO order) and leaves the
/// event set: later [`wait`](Self::wait)s return at once until
/// [`reset`](Self::reset) clears it. A fiber woken by `set` returns `Ok` even if
/// the event was reset again before it ran. Starts unset.
///
/// Interrupt handlers, signal handlers and other threads set it with
/// [`set_from_isr`](Self::set_from_isr); build it
/// [`isr_capable`](Self::isr_capable) so its waiters count as waiting for an
/// interrupt (not reported deadlocked).
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
    /// Set from interrupt context, not yet moved into `set`.
    isr_set: AtomicBool,
    /// Waiters count as interrupt waiters ([`Event::isr_capable`], or a
    /// [`set_from_isr`](Event::set_from_isr) happened).
    isr_capable: AtomicBool,
    /// Registration with the runtime's interrupt sources, the raised flag.
    src: IrqSource,
    /// Selects watching the event (see [`select`](super::select)).
    selectors: super::select::SelList,
}

// SAFETY: everything but `owner`, `isr_set`, `isr_capable` and the source's
// raised flag (atomics: the interrupt side) is touched only by fibers of the
// bound runtime, on the one thread running it (`Binding` gates every access).
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
            isr_set: AtomicBool::new(false),
            isr_capable: AtomicBool::new(false),
            src: IrqSource::new(),
            selectors: super::select::SelList::new(),
        }
    }

    /// Sets or resets the event from outside any fiber (before `run`, or
    /// between runs; nobody waits then). `WrongRuntime` while a runtime uses
    /// the event.
    pub fn store_outside(&self, set: bool) -> Result<(), WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        self.absorb_isr_outside();
        self.set.set(set);
        Ok(())
    }

    /// Whether the event is set, from outside any fiber; `WrongRuntime`
    /// while a runtime uses the event.
    pub fn is_set_outside(&self) -> Result<bool, WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        self.absorb_isr_outside();
        Ok(self.set.get())
    }

    /// Sets the event and wakes every waiter. Setting a set event does nothing.
    pub fn set(&self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        self.absorb_isr(core);
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
        self.absorb_isr(core);
        if self.set.replace(false) {
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
        }
        Ok(())
    }

    /// Whether the event is set; never blocks.
    pub fn is_set(&self, fib: &Fiber<'_>) -> Result<bool, WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        self.absorb_isr(core);
        Ok(self.set.get())
    }

    /// `Ok` if the event is set, [`TryError::WouldBlock`] if not; never blocks.
    pub fn try_wait(&self, fib: &Fiber<'_>) -> Result<(), TryError> {
        if self.is_set(fib)? { Ok(()) } else { Err(TryError::WouldBlock) }
    }

    /// Blocks the fiber until the event is set (returns at once if it is).
    /// Fails with [`WaitError::WrongRuntime`], [`WaitError::Cancelled`] (the
    /// fiber was cancelled) or [`WaitError::Unwinding`] (it unwinds and would
    /// have blocked); never times out.
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), WaitError> {
        self.wait_until(fib, None)
    }

    /// Like [`wait`](Self::wait), giving up with [`WaitError::TimedOut`] after
    /// `timeout` ticks — unless the event is set by the time the fiber resumes.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<(), WaitError> {
        self.wait_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    fn wait_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<(), WaitError> {
        let core = self.bind(fib)?;
        // Interrupt-capable (sticky): the interrupt-aware wait, out of line.
        // Not capable: we wait as an ordinary (uncounted) waiter; the source
        // is registered (`bind`), so a drain may still run behind our back —
        // at a counted fiber's poll or when the ready ring empties — and set
        // the event for us (the documented rule, `isr_capable`).
        if self.isr_capable.load(Ordering::Relaxed) {
            return self.wait_until_isr(fib, core, deadline);
        }
        self.absorb_isr(core);
        if self.set.get() {
            return Ok(());
        }
        // SAFETY: the queue lives in `self`, which outlives this call ('s) and
        // belongs to this runtime (checked above).
        self.woken(core, unsafe { fib.wait_on(&self.waiters, WaitKind::Event, deadline) })
    }

    /// Binds the event to `fib`'s runtime for the run and registers its
    /// interrupt source, interrupt-capable or not (`irq::source::bind_registered`:
    /// a `set_from_isr` after a fiber blocked here must still reach it).
    #[inline(always)]
    fn bind<'s>(&'s self, fib: &Fiber<'s>) -> Result<*mut Core, WrongRuntime> {
        crate::irq::source::bind_registered(&self.owner, &self.src, self, fib)
    }

    /// What a wait's wake-up means for `wait`: a wait that ended otherwise
    /// than by a set looks at the event once more, interrupt sets included
    /// (one no drain has applied yet: the deadline may come first).
    #[inline]
    fn woken(&self, core: *mut Core, wake: Wake) -> Result<(), WaitError> {
        match wake {
            Wake::Signaled => Ok(()),
            _ if self.select_is_set(core) => Ok(()),
            Wake::Unwinding => Err(WaitError::Unwinding),
            Wake::Aborted => Err(WaitError::Cancelled),
            _ => Err(WaitError::TimedOut),
        }
    }
}

/// Interrupt side ([`set_from_isr`](Event::set_from_isr)).
impl Event {
    /// Marks the event interrupt-capable: a fiber blocked in
    /// [`wait`](Self::wait) counts as waiting for an interrupt, so the runtime
    /// polls and idles (its idle hook; `hlt` on bare metal) instead of
    /// reporting a deadlock while only an interrupt can set it. `const`:
    ///
    /// ```
    /// static LINK_UP: filament::sync::Event = filament::sync::Event::new().isr_capable();
    /// ```
    ///
    /// The first [`set_from_isr`](Self::set_from_isr) marks it too, but only
    /// fibers that block after it count: mark it here when a fiber may block
    /// before the first interrupt set. A fiber that blocked before does not
    /// count (with nothing else to wait for, the runtime reports a deadlock
    /// instead of waiting for the interrupt), but a set that happens while
    /// it waits still reaches it: at the runtime's next poll while some fiber
    /// is counted, or when it runs out of ready fibers (before it idles,
    /// reports a deadlock or stops for
    /// [`run_for`](crate::Runtime::run_for)'s limit), or when its
    /// [`wait_timeout`](Self::wait_timeout) times out, which then returns
    /// `Ok`. So while other fibers keep the runtime busy (the ready ring
    /// never empties) and no fiber is counted, such a waiter can wait for
    /// that set indefinitely (review 13): an event set from interrupts should
    /// be marked here, in its `static`, or waited on with a timeout.
    pub const fn isr_capable(mut self) -> Self {
        self.isr_capable = AtomicBool::new(true);
        self
    }

    /// Sets the event from interrupt context. **Interrupt-safe** and
    /// async-signal-safe, callable from any thread or core; no lock, never
    /// blocks, touches no runtime memory.
    ///
    /// Exactly: one atomic store marking the event interrupt-capable (skipped
    /// when it is), one atomic swap of its "set from interrupt" flag, then
    /// the raise of its interrupt source (one atomic swap, one atomic add on
    /// the program-wide epoch that [`IrqWatch`](crate::IrqWatch) reads, under
    /// `std` at most one `futex` wake). The runtime applies it as
    /// [`set`](Self::set) does — every waiter woken, the event stays set — at
    /// its next poll (every switch and idle turn while a fiber waits on an
    /// interrupt-capable object; and whenever the runtime runs out of ready
    /// fibers) or the event's next use by a fiber,
    /// whichever comes first. A [`reset`](Self::reset) by a fiber clears an
    /// interrupt set that came before it.
    pub fn set_from_isr(&self) {
        if !self.isr_capable.load(Ordering::Relaxed) {
            self.isr_capable.store(true, Ordering::Relaxed);
        }
        // Release, before the raise: whoever sees the raise sees the flag.
        self.isr_set.swap(true, Ordering::Release);
        self.src.raise();
    }

    /// [`wait`](Self::wait) on an interrupt-capable event: the source is
    /// registered with this runtime (so its drain applies interrupt sets for
    /// waiters) and the fiber blocks as a counted, marked interrupt waiter (a
    /// set drained between our look at the flag and our enqueue would be
    /// lost: `irq::source::as_irq_waiter`).
    #[cold]
    #[inline(never)]
    fn wait_until_isr<'s>(
        &'s self,
        fib: &Fiber<'s>,
        core: *mut Core,
        deadline: Option<Ticks>,
    ) -> Result<(), WaitError> {
        self.src.register(fib, self)?;
        self.absorb_isr(core);
        if self.set.get() {
            return Ok(());
        }
        // SAFETY: we are the running fiber of `core`; the closure blocks once.
        // The queue lives in `self`, which outlives this call ('s) and belongs
        // to this runtime (bound by the caller).
        self.woken(core, unsafe { as_irq_waiter(core, || fib.wait_on(&self.waiters, WaitKind::Event, deadline)) })
    }

    /// Applies an interrupt set, if any: sets the event, wakes every waiter.
    /// A plain load when there is none.
    #[inline]
    fn absorb_isr(&self, core: *mut Core) {
        if self.isr_set.load(Ordering::Relaxed) && self.isr_set.swap(false, Ordering::Acquire) {
            self.set.set(true);
            // SAFETY: callers run in `core`, which owns the event (bound or
            // leased): the queue holds only its blocked fibers (I1, I2), and
            // its selector list only selects of its fibers.
            unsafe {
                raw::wake_all(core, &self.waiters);
                self.selectors.notify_all(core);
            }
        }
    }

    /// [`absorb_isr`](Self::absorb_isr) outside any run: nobody waits.
    fn absorb_isr_outside(&self) {
        if self.isr_set.load(Ordering::Relaxed) && self.isr_set.swap(false, Ordering::Acquire) {
            self.set.set(true);
        }
    }
}

impl Drain for Event {
    /// Applies an interrupt set for the waiters. With none waiting it stays
    /// pending (the next fiber to use the event applies it).
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        if !self.isr_set.load(Ordering::Relaxed) {
            return Drained::Done; // applied by a fiber already
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

#[cfg(all(test, feature = "std"))]
mod isr_tests {
    use super::*;
    use crate::{Runtime, Stack};

    fn stack() -> Stack<'static> {
        Stack::host(64 * 1024).expect("mmap stack").without_painting()
    }

    /// An interrupt that sets the event after a fiber looked at the flag and
    /// before it is linked into the queue (the raise lands before the poll
    /// `raw::block_current` makes ahead of the enqueue) must wake that fiber
    /// too. Had that poll drained the set, it would have woken only the
    /// waiters queued so far, and the late fiber would sleep on a set event
    /// (here: until its deadline, `Wake::TimedOut`). The raise is injected at
    /// exactly that place, inside the `as_irq_waiter` closure.
    #[test]
    fn a_set_raised_between_the_check_and_the_enqueue_wakes_the_late_waiter() {
        static EV: Event = Event::new().isr_capable();
        let rt = Runtime::<'static, 2>::new();
        let early = rt.spawn(stack(), |fib| EV.wait(fib)).unwrap();
        let late = rt
            .spawn(stack(), |fib| {
                let core = EV.owner.bind(fib).unwrap();
                EV.src.register(fib, &EV).unwrap();
                assert!(!EV.set.get(), "looked: not set, so it blocks");
                let deadline = Some(fib.now() + 1_000);
                // SAFETY: the running fiber of `core`; EV is 'static.
                unsafe {
                    crate::irq::source::as_irq_waiter(core, || {
                        EV.set_from_isr(); // the interrupt, right here
                        fib.wait_on(&EV.waiters, WaitKind::Event, deadline)
                    })
                }
            })
            .unwrap();
        rt.run_with_idle(&mut crate::host::HostClock::new()).unwrap();
        assert_eq!(rt.take(early).unwrap(), Ok(()));
        assert_eq!(rt.take(late).unwrap(), Wake::Signaled);
    }

    /// The same for a plain waiter: the event was not interrupt-capable when
    /// the fiber looked (so it blocks uncounted, unmarked), the first
    /// `set_from_isr` lands before `raw::block_current`'s poll, and that poll
    /// drains (another fiber waits on an interrupt). The source is registered
    /// (every blocking call registers it), so without the drain's
    /// `blocking_here` check it would wake only the waiters queued so far and
    /// the late fiber would sleep on a set event until its deadline.
    #[test]
    fn a_first_interrupt_set_before_a_plain_waiters_poll_wakes_it_too() {
        static EV: Event = Event::new();
        static SIG: crate::IrqSignal = crate::IrqSignal::new();
        let rt = Runtime::<'static, 3>::new();
        rt.spawn_detached(stack(), |fib| SIG.wait(fib).map(|_| ()).unwrap()).unwrap(); // counted: the polls drain
        let early = rt.spawn(stack(), |fib| EV.wait(fib)).unwrap();
        let late = rt
            .spawn(stack(), |fib| {
                let core = EV.bind(fib).unwrap();
                assert!(!EV.isr_capable.load(Ordering::Relaxed), "a plain waiter");
                EV.absorb_isr(core);
                assert!(!EV.set.get(), "looked: not set, so it blocks");
                EV.set_from_isr(); // the interrupt, right here
                let deadline = Some(fib.now() + 1_000);
                // SAFETY: the running fiber of `core`; EV is 'static.
                let wake = unsafe { fib.wait_on(&EV.waiters, WaitKind::Event, deadline) };
                SIG.notify_from_isr();
                wake
            })
            .unwrap();
        rt.run_with_idle(&mut crate::host::HostClock::new()).unwrap();
        assert_eq!(rt.take(early).unwrap(), Ok(()));
        assert_eq!(rt.take(late).unwrap(), Wake::Signaled);
    }
}

/// The hooks [`select`](super::select) uses.
impl Event {
    /// Binds the event to `fib`'s runtime for the run, registering its
    /// interrupt source (see `bind`), so the runtime drains interrupt sets
    /// for a blocked select.
    pub(crate) fn select_bind<'s>(&'s self, fib: &Fiber<'s>) -> bool {
        self.bind(fib).is_ok()
    }

    /// Whether a blocked select must be polled (counted as an interrupt
    /// waiter) for this event: it is interrupt-capable.
    pub(crate) fn select_polled(&self) -> bool {
        self.isr_capable.load(Ordering::Relaxed)
    }

    /// Whether it is set, after absorbing an interrupt set (call only from a
    /// fiber of the bound runtime `core`).
    pub(crate) fn select_is_set(&self, core: *mut Core) -> bool {
        self.absorb_isr(core);
        self.set.get()
    }

    /// Whether it is set or an interrupt set waits (no absorb: no wakes).
    pub(crate) fn select_ready(&self) -> bool {
        self.set.get() || self.isr_set.load(Ordering::Relaxed)
    }

    pub(crate) fn select_list(&self) -> &super::select::SelList {
        &self.selectors
    }

    /// The address a plain waiter is reported with.
    pub(crate) fn select_addr(&self) -> usize {
        &raw const self.waiters as usize
    }
}
