//! The interrupt source: the internal mechanism every interrupt-capable
//! kernel object embeds ([`IrqSignal`](super::IrqSignal) and the others).
//!
//! # The problem it solves
//!
//! An interrupt handler (or a signal handler, another OS thread, another
//! core) may only touch atomics: it cannot take the runtime's lock, link a
//! fiber into the ready ring, or even know which runtime uses the object.
//! Fibers, on the other hand, keep their state in plain cells touched only by
//! their runtime's thread. Something has to move what the handler left in the
//! object's atomics into that fiber-side state and wake the fibers that wait
//! for it, and the runtime must know, while fibers wait on such an object,
//! that an interrupt may still wake them: it polls and idles instead of
//! reporting a deadlock.
//!
//! # The interface (for kernel objects)
//!
//! An object embeds one [`IrqSource`] and implements [`Drain`]:
//!
//! * **ISR side** — write the object's own atomic state (a counter, a ring
//!   cell, a flag bit) with at least `Release` ordering, *then* call
//!   [`IrqSource::raise`]. `raise` is interrupt-safe (see its docs for exactly
//!   what it does). Raising after publishing is what makes the runtime see
//!   the published state when it sees the raise, and what keeps an idle
//!   runtime from sleeping through it (the epoch argument in `host_wake` and
//!   [`IrqWatch`](super::IrqWatch) starts from "the object's state was
//!   published before the epoch bump").
//! * **Registration** — the object's *blocking* fiber-side calls (those taking
//!   `&'s self` with `&Fiber<'s>`) call [`IrqSource::register`] before they
//!   may block. The first call of a run links the source into the runtime's
//!   list ([`IrqList`]) until the run returns (or the runtime is dropped);
//!   another runtime's call gets `WrongRuntime` meanwhile. Non-blocking calls
//!   need no registration (the object may even be short-lived).
//! * **Drain** — at every poll point while some fiber waits on any source
//!   (every yield, every block, every idle turn: `time::poll`), the runtime
//!   walks its registered sources and, for each one raised since its last
//!   drain, clears the raise (an `Acquire` swap, so the drain sees everything
//!   the raisers published before raising) and calls [`Drain::drain`]. The
//!   drain moves ISR-side state into fiber-side state and wakes waiters with
//!   `raw::wake_one` / `raw::wake_all` (or the object's own hand-off). It runs
//!   on the runtime's thread, in the host context or on the stack of the
//!   fiber that reached the poll point; it must not block, switch or run
//!   user code. With nobody waiting for the state yet it returns
//!   [`Drained::Keep`]: the source stays raised and is drained again at the
//!   next poll (a fiber may be about to block: see below).
//! * **Fiber-side catch-up** — the drain runs only while some fiber of the
//!   runtime waits on a source. So every fiber-side operation must itself
//!   absorb the ISR-side state before looking at the fiber-side state (call
//!   the object's drain logic directly, or read the atomics). A drain that
//!   finds nothing to move (the fiber already took it) is harmless.
//! * **Waiter accounting** — a fiber that blocks on an interrupt-capable
//!   object blocks inside [`as_irq_waiter`]: it is counted in
//!   `IrqList::waiters` and `Core::pollers` (invariants I9, I10) and marked
//!   (`Slot::irq_wait`) for the invariant checker, undone by a drop guard on
//!   return and unwind. The mark also keeps the drain away from the blocking
//!   fiber's own poll in `raw::block_current`, which comes before the fiber
//!   is in its queue (see [`as_irq_waiter`]): during that poll no source is
//!   drained. While the count is non-zero the runtime polls at every switch
//!   and, with nothing ready, calls its idle hook instead of reporting a
//!   deadlock. A wait that can only be ended by another fiber should *not*
//!   be counted (the deadlock report is worth keeping): an object that may
//!   be used either way (a semaphore, an event, an event group) counts only
//!   when it is interrupt-capable, but registers at its first blocking call
//!   of the run either way: a fiber may block before the first interrupt
//!   call makes it capable, and that call must still reach it. Such a plain
//!   waiter is unmarked, so the object's drain itself leaves the raise for
//!   later while the running fiber is in `raw::block_current`'s poll about
//!   to wait on it ([`blocking_here`]); and since polls drain only while
//!   some fiber is counted, the runtime also drains every registered source
//!   from the host context before it idles, reports a deadlock or stops for
//!   `run_for`'s limit ([`drain_all`]). A drain that finds the ISR-side
//!   state gone (a fiber took it) returns [`Drained::Done`], so a spurious
//!   raise ([`rouse_all`]) costs one look.
//!
//! A minimal object (a flag an ISR sets and one fiber waits for):
//!
//! ```ignore
//! struct Flag {
//!     set: AtomicBool,        // ISR side
//!     src: IrqSource,
//!     waiters: WaitQueue,     // fiber side
//! }
//! impl Flag {
//!     fn set_from_isr(&self) {
//!         self.set.store(true, Ordering::Release);
//!         self.src.raise();
//!     }
//!     fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), WrongRuntime> {
//!         let core = self.src.register(fib, self)?;
//!         while !self.set.swap(false, Ordering::Acquire) {
//!             // SAFETY: running fiber of `core`; the queue lives for 's.
//!             unsafe { as_irq_waiter(core, || fib.wait_on(&self.waiters, WaitKind::Irq, None)) };
//!         }
//!         Ok(())
//!     }
//! }
//! impl Drain for Flag {
//!     unsafe fn drain(&self, core: *mut Core) -> Drained {
//!         if !self.set.load(Ordering::Acquire) {
//!             return Drained::Done;
//!         }
//!         // No waiter yet (maybe it is about to block): keep the raise.
//!         if unsafe { raw::wake_one(core, &self.waiters) } { Drained::Done } else { Drained::Keep }
//!     }
//! }
//! ```

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::EPOCH;
#[cfg(feature = "std")]
use super::host_wake;
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::sync::WrongRuntime;

/// What a kernel object does when the runtime finds its source raised (see
/// [the module docs](self)).
pub(crate) trait Drain {
    /// Moves the ISR-side state into the fiber-side state and wakes the
    /// waiters it satisfies. Called after the source's raise was cleared with
    /// `Acquire` ordering: everything published before the raises it clears is
    /// visible. Must not block, switch, or run user code.
    ///
    /// Return [`Drained::Keep`] when ISR-side state was left for later because
    /// nobody waits for it yet: the source stays raised and is drained again
    /// at the next poll. This matters: the poll in `raw::block_current` runs
    /// *before* the blocking fiber is linked into its queue, so a drain that
    /// consumed the state there would bank it for a waiter it cannot wake.
    ///
    /// # Safety
    /// Called only by the runtime `core` the source is registered with, with
    /// exclusive access to it (on its thread, inside `run`).
    unsafe fn drain(&self, core: *mut Core) -> Drained;

    /// Called when the runtime unregisters the source (its run ended, or it
    /// is dropped), before another runtime may register it: drop any
    /// runtime-side record that must not outlive the registration (a select
    /// parked for good in a poisoned runtime leaves its nodes linked).
    ///
    /// # Safety
    /// As for [`drain`](Self::drain); no fiber of `core` waits on the object.
    unsafe fn unregistered(&self, core: *mut Core) {
        let _ = core;
    }
}

/// What a [`Drain::drain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    /// Everything raised so far was handled (or there was nothing).
    Done,
    /// ISR-side state is left (no waiter yet): keep the source raised, call
    /// again at the next poll. Costs a drain call per poll until then, only
    /// while some fiber of the runtime waits on a source.
    Keep,
}

/// The unregistration callback, type-erased: `ctx` is the registering object.
///
/// # Safety
/// Call with the `ctx` it was registered with, as for [`Drain::unregistered`].
type UnregisteredFn = unsafe fn(ctx: *const (), core: *mut Core);

/// The drain callback, type-erased: `ctx` is the registering object.
///
/// # Safety
/// Call with the `ctx` it was registered with, as for [`Drain::drain`].
type DrainFn = unsafe fn(ctx: *const (), core: *mut Core) -> Drained;

/// Calls `T`'s `unregistered` on `ctx`.
///
/// # Safety
/// `ctx` points to a live `T`; the rest as for [`Drain::unregistered`].
unsafe fn unregistered_thunk<T: Drain>(ctx: *const (), core: *mut Core) {
    // SAFETY: per the contract.
    unsafe { (*ctx.cast::<T>()).unregistered(core) }
}

/// Calls `T`'s drain on `ctx`.
///
/// # Safety
/// `ctx` points to a live `T`; the rest as for [`Drain::drain`].
unsafe fn drain_thunk<T: Drain>(ctx: *const (), core: *mut Core) -> Drained {
    // SAFETY: per the contract.
    unsafe { (*ctx.cast::<T>()).drain(core) }
}

/// The interrupt side of a kernel object: an atomic "raised" indication,
/// registration with one runtime at a time, and the link in that runtime's
/// list of sources. See [the module docs](self).
pub(crate) struct IrqSource {
    /// Set by [`raise`](Self::raise) (interrupt context, any thread), cleared
    /// by the owner runtime's drain. The only field raisers touch.
    raised: AtomicBool,
    /// Serial of the runtime the source is registered with (0: none). Only
    /// the compare-exchange winner links the source into its runtime's list.
    owner: AtomicU64,
    /// Link in the owner's list (owner runtime's thread only).
    next: Cell<*const IrqSource>,
    /// The registering object and its drain (owner runtime's thread only;
    /// set while registered).
    ctx: Cell<*const ()>,
    drain: Cell<Option<DrainFn>>,
    unregistered: Cell<Option<UnregisteredFn>>,
}

impl IrqSource {
    /// An unregistered, unraised source. `const`, for objects in `static`s.
    pub(crate) const fn new() -> Self {
        IrqSource {
            raised: AtomicBool::new(false),
            owner: AtomicU64::new(0),
            next: Cell::new(ptr::null()),
            ctx: Cell::new(ptr::null()),
            drain: Cell::new(None),
            unregistered: Cell::new(None),
        }
    }

    /// Tells whichever runtime uses the object that interrupt-side state
    /// changed. **Interrupt-safe** and async-signal-safe: call it *after*
    /// publishing the state (with `Release` or stronger).
    ///
    /// Exactly: one atomic swap of this source's flag (`Release`; an
    /// read-modify-write, so the runtime's `Acquire` swap synchronizes with
    /// every raiser since its previous drain, not only the last one); one
    /// `SeqCst` `fetch_add` on the program-wide epoch; under `std` one atomic
    /// load and, only if some host idle hook sleeps, one `futex(FUTEX_WAKE)`
    /// system call. No lock, no runtime memory, never blocks.
    #[inline]
    pub(crate) fn raise(&self) {
        self.raised.swap(true, Ordering::Release);
        raise_epoch();
    }

    /// Registers the source with `fib`'s runtime for the rest of its run (no-op
    /// if already registered with it); `object` is the object whose drain the
    /// runtime calls. Returns the runtime's core. Call it from every blocking
    /// fiber-side operation before it may block.
    ///
    /// `'s`: the object outlives the runtime's stacks, hence its run, so the
    /// runtime may keep it listed until the run returns.
    pub(crate) fn register<'s, T: Drain>(&'s self, fib: &Fiber<'s>, object: &'s T) -> Result<*mut Core, WrongRuntime> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while it runs.
        let me = unsafe { (*core).serial };
        // Registered already (the usual case): a plain load, no locked
        // instruction. Only this runtime's thread can store `me` here.
        if self.owner.load(Ordering::Relaxed) == me {
            return Ok(core);
        }
        match self.owner.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Err(owner) if owner == me => return Ok(core),
            Err(_) => return Err(WrongRuntime),
            Ok(_) => {}
        }
        self.ctx.set(ptr::from_ref(object).cast());
        self.drain.set(Some(drain_thunk::<T>));
        self.unregistered.set(Some(unregistered_thunk::<T>));
        // SAFETY: we won the registration and run inside the runtime, the only
        // code touching its list (I1).
        unsafe {
            self.next.set((*core).irq.head);
            (*core).irq.head = self;
        }
        Ok(core)
    }
}

/// Bumps the program-wide epoch and wakes sleeping host idle hooks: the
/// second half of [`IrqSource::raise`]. Interrupt-safe.
#[inline]
pub(crate) fn raise_epoch() {
    // SeqCst (a `lock xadd`, as any RMW on x86): see `IrqWatch` and
    // `host_wake` for the arguments that rely on it.
    EPOCH.fetch_add(1, Ordering::SeqCst);
    #[cfg(feature = "std")]
    host_wake::wake_sleepers();
}

/// Per-runtime list of registered sources.
pub(crate) struct IrqList {
    head: *const IrqSource,
    /// Fibers currently blocked (or woken and not yet returned) inside
    /// [`as_irq_waiter`].
    pub waiters: usize,
    /// While `raw::block_current` polls ahead of linking the running fiber
    /// into its wait: the object it is about to wait on (its wait queue's
    /// address, or its select record's), else 0. A drain must not act on
    /// state the blocking fiber has already looked at without it in the
    /// queue ([`blocking_here`]).
    pub blocking_on: usize,
}

impl IrqList {
    pub(crate) const fn new() -> Self {
        IrqList { head: ptr::null(), waiters: 0, blocking_on: 0 }
    }

    /// No interrupt source is registered (nothing for `unregister_all`).
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }
}

/// Runs `block` (the running fiber's wait on an interrupt-capable object) with
/// that fiber counted as an interrupt waiter and marked in its slot
/// (`Slot::irq_wait`). Every blocking wait on an interrupt-capable object
/// must run inside it:
///
/// * the count (`IrqList::waiters` and `Core::pollers`, I9, I10): meanwhile
///   the runtime polls its sources at every yield, block and idle, and idles
///   instead of reporting a deadlock;
/// * the mark makes the drain skip the poll that `raw::block_current` makes
///   *before* it links the fiber into its wait queue. A drain there would
///   act on a state the blocking fiber has already looked at (a permit or a
///   set flag handed to the waiters queued so far, or kept) and then the
///   fiber would block anyway: a lost wake-up. Skipped, the raise stays and
///   the next poll (the next fiber's switch, or the runtime's poll before it
///   idles) drains with the fiber in the queue;
/// * both are undone by a drop guard, so also when `block` unwinds (a wait
///   cancelled by the runtime, which unwinds with the `Cancelled` payload
///   under std, or a panic): a leaked count would make the runtime poll at
///   every switch and idle forever instead of reporting the next deadlock.
///
/// # Safety
/// Called by the running fiber of `core`, on its own stack; `block` blocks
/// the fiber at most once (one `Fiber::wait_on`) and reaches no other poll
/// point.
pub(crate) unsafe fn as_irq_waiter<R>(core: *mut Core, block: impl FnOnce() -> R) -> R {
    /// Undoes the count and the mark when dropped: on return or during an
    /// unwind.
    struct Counted(*mut Core, *mut crate::fiber::Slot);
    impl Drop for Counted {
        fn drop(&mut self) {
            // SAFETY: dropped by the fiber that made the count, while it runs
            // (after its wait returned, or while it unwinds on its own stack),
            // so the core and its slot are exclusively ours, as when it was
            // counted (I1). I9, I10: both counts move together, `slow` refreshed.
            unsafe {
                (*self.1).irq_wait = false;
                (*self.0).irq.waiters -= 1;
                (*self.0).pollers -= 1;
                raw::refresh_slow(self.0);
            }
        }
    }
    // SAFETY: per the contract the core is ours while we run, and `current`
    // is our own slot (I2). I10 and I9 kept: both counts move together and
    // `slow` is refreshed.
    let _counted = unsafe {
        let me = (*core).current;
        (*me).irq_wait = true;
        (*core).irq.waiters += 1;
        (*core).pollers += 1;
        raw::refresh_slow(core);
        Counted(core, me)
    };
    block()
}

/// Drains every registered source that was raised.
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

/// [`drain`]'s work once some fiber waits on a source.
///
/// # Safety
/// As for [`drain`].
#[cold]
unsafe fn drain_slow(core: *mut Core) {
    // SAFETY: registered sources (and their objects) outlive the run ('s, see
    // `register`); their Cell fields are ours (owner == core, I1).
    unsafe {
        // The running fiber is in `raw::block_current`'s poll, not yet in its
        // wait queue: leave the raises for the next poll (`as_irq_waiter`).
        // (From the host context `current` may be a woken waiter that has
        // not run yet: the skip then lasts until it runs, and the host never
        // idles with a fiber ready.)
        let cur = (*core).current;
        if !cur.is_null() && (*cur).irq_wait {
            return;
        }
        drain_walk(core);
    }
}

/// Drains every raised source of `core`'s list.
///
/// # Safety
/// As for [`drain`].
unsafe fn drain_walk(core: *mut Core) {
    // SAFETY: as in `drain_slow`.
    unsafe {
        let mut src = (*core).irq.head;
        while !src.is_null() {
            let s = &*src;
            // A plain load first: no locked instruction for quiet sources.
            if s.raised.load(Ordering::Relaxed)
                && s.raised.swap(false, Ordering::Acquire)
                && let Some(f) = s.drain.get()
                && f(s.ctx.get(), core) == Drained::Keep
            {
                // Relaxed: this thread already acquired what the raisers
                // published; an RMW keeps later raisers' release sequences
                // intact.
                s.raised.swap(true, Ordering::Relaxed);
            }
            src = s.next.get();
        }
    }
}

/// Drains every registered source that was raised although no fiber is
/// counted as an interrupt waiter (so no poll drained), from the host
/// context: a fiber that blocked on a semaphore, event or event group before
/// it became interrupt-capable is not counted, but its object's source is
/// registered (its blocking calls register it), so the runtime looks here
/// before it idles, reports a deadlock or stops for `run_for`'s limit.
/// Returns whether a fiber became ready. (With a counted waiter the host's
/// `time::poll` has just walked the list: the caller skips the call.)
///
/// # Safety
/// Exclusive access to `core`, from the host context with the ready ring
/// empty (no fiber is in `raw::block_current`'s poll).
#[cold]
#[inline(never)]
pub(crate) unsafe fn drain_all(core: *mut Core) -> bool {
    // SAFETY: per the contract; the walk as in `drain_slow`, whose skip for a
    // blocking fiber cannot apply (no fiber runs).
    unsafe {
        debug_assert!((*core).current.is_null());
        drain_walk(core);
        !(*core).current.is_null()
    }
}

/// Marks every registered source raised, so the next drain looks at each:
/// for a fiber woken from an interrupt wait and suspended before it ran
/// (`Fiber::suspend`), whose wake must go on to another waiter. The objects
/// that only wake (and hand nothing to) the fiber they wake see what is still
/// there and wake the next waiter; the others find nothing to do. Only the
/// flags are touched (no epoch bump: this runtime polls them itself).
///
/// # Safety
/// Exclusive access to `core` (inside `run`).
#[cold]
pub(crate) unsafe fn rouse_all(core: *mut Core) {
    // SAFETY: registered sources outlive the run (see `drain_slow`).
    unsafe {
        let mut src = (*core).irq.head;
        while !src.is_null() {
            let s = &*src;
            // Relaxed RMW: this thread already saw what the raisers published.
            s.raised.swap(true, Ordering::Relaxed);
            src = s.next.get();
        }
    }
}

/// Whether the running fiber of `core` is in `raw::block_current`'s poll
/// about to wait on `queue` (a wait queue's address) or in a select linked
/// in `selectors`: a drain must then leave the raise for the next poll
/// (return [`Drained::Keep`]), as it does for a counted interrupt waiter
/// (`as_irq_waiter`): acting now would skip that fiber, which has looked at
/// the state already, and it would sleep with its condition true. Matters
/// for a plain (uncounted) waiter of an object that became interrupt-capable
/// just after it looked.
///
/// # Safety
/// Exclusive access to `core`; `selectors` belongs to its registered object.
pub(crate) unsafe fn blocking_here(core: *mut Core, queue: usize, selectors: &crate::sync::select::SelList) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let on = (*core).irq.blocking_on;
        on != 0 && (on == queue || selectors.holds((*core).current))
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

/// Unregisters every source (end of a run, runtime drop), so none points at a
/// dead runtime.
///
/// Each source's `owner` is cleared last, with a release store: a runtime on
/// another thread may win the source's compare-exchange the moment it is 0
/// and then writes `next`, so everything this runtime does to the source must
/// come before. Nothing thread-specific is stored in the source (the host's
/// wake-up goes through the process-wide epoch), so there is nothing for a
/// concurrent registration to lose; the `raised` flag stays as it is, and
/// objects keep their ISR-side state, so nothing raised in between is lost.
///
/// # Safety
/// Exclusive access to `core`; no fiber waits on any source.
pub(crate) unsafe fn unregister_all(core: *mut Core) {
    // SAFETY: as in drain_slow.
    unsafe {
        let mut src = (*core).irq.head;
        while !src.is_null() {
            let s = &*src;
            src = s.next.get();
            s.next.set(ptr::null());
            if let Some(f) = s.unregistered.take() {
                f(s.ctx.get(), core);
            }
            s.drain.set(None);
            s.ctx.set(ptr::null());
            s.owner.store(0, Ordering::Release);
        }
        (*core).irq.head = ptr::null();
    }
}

/// Binds `owner` to `fib`'s runtime for the run and, the first time in the
/// run, registers `src` for `object`, interrupt-capable or not: a fiber may
/// block on the object before the first interrupt call makes it capable,
/// and that call must still reach it (the runtime drains registered sources
/// before it idles or reports a deadlock). Costs what `Binding::bind` costs
/// once bound. `Semaphore`'s and `Event`'s blocking calls bind through it.
#[inline(always)]
pub(crate) fn bind_registered<'s, T: Drain>(
    owner: &'s crate::sync::Binding,
    src: &'s IrqSource,
    object: &'s T,
    fib: &Fiber<'s>,
) -> Result<*mut Core, WrongRuntime> {
    let core = fib.core_ptr();
    // SAFETY: a running fiber's core is live.
    if !unsafe { owner.is_bound(core) } {
        bind_registered_slow(owner, src, object, fib)?;
    }
    Ok(core)
}

/// [`bind_registered`]'s first call in a run: out of line.
#[inline(never)]
fn bind_registered_slow<'s, T: Drain>(
    owner: &'s crate::sync::Binding,
    src: &'s IrqSource,
    object: &'s T,
    fib: &Fiber<'s>,
) -> Result<(), WrongRuntime> {
    owner.bind(fib)?;
    src.register(fib, object).map(drop)
}
