//! How a fiber blocked on one side of a [`StreamBuffer`](super::StreamBuffer)
//! or [`MessageBuffer`](super::MessageBuffer) is woken by its peer, wherever
//! the peer runs: [`WaitSide`].

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::irq::source::{Drain, Drained, IrqSource, as_irq_waiter};
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// One side's wake-up: a waiter (the fiber reader waiting for bytes, or the
/// fiber writer waiting for room) announces how many it needs in `want`; the
/// peer, after publishing, wakes it once that many are there.
///
/// The peer may be in an interrupt handler, on another OS thread or in
/// another runtime, so the side embeds an interrupt source
/// ([`crate::irq::source`]): the waiter blocks as an interrupt waiter (the
/// runtime polls its sources while it waits and idles instead of reporting a
/// deadlock) and the peer raises the source; the runtime's drain wakes the
/// waiter. A peer that is a fiber of the waiter's own runtime wakes it
/// directly instead (it runs on that runtime's thread; no raise, no poll).
///
/// # No lost wake-up
///
/// Waiter: `want = n`; SeqCst fence; look at the ring; block only if still
/// short. Peer: publish (`tail` or `head` store); SeqCst fence; read `want`.
/// The two fences are ordered one way or the other: either the waiter's look
/// sees the publication (and does not block), or the peer's read sees `want`
/// and wakes or raises. A peer that does so first swaps `want` back to 0
/// (compare-exchange), so one announcement gets one wake-up. A raise that
/// finds no waiter queued yet (the drain in `block_current` runs before the
/// blocker is linked) is kept (`Drained::Keep`) until one is; a raise whose
/// waiter looked again and left is kept until that side next blocks, and then
/// wakes it once for nothing (it looks and blocks again).
pub(crate) struct WaitSide {
    /// 0: nobody waits; else how many bytes (of data or room) the waiter needs.
    want: AtomicUsize,
    /// Serial of the runtime whose fiber waits (or is about to) on this side;
    /// 0: none. Lets a peer fiber of that runtime wake it directly.
    waiter_rt: AtomicU64,
    src: IrqSource,
    /// The blocked fiber (one at most: the side's claim admits one). Touched
    /// only by the runtime `src` is registered with, on its thread.
    waiters: WaitQueue,
}

// SAFETY: `want` and `waiter_rt` are atomics, and `IrqSource::raise` (the
// only source call a peer on another thread or in an interrupt makes) touches
// only its atomic flag. The source's cells and `waiters` are touched only by
// the runtime the source is registered with, on the thread running it: by
// its fibers after `register` succeeded (`wait_for`, the direct wake in
// `publish`, which checks `waiter_rt` first) and by its drain (I1).
unsafe impl Sync for WaitSide {}
// SAFETY: moving a side needs ownership of its buffer: nobody borrows it, so
// no fiber waits in it and no runtime lists its source (registration borrows
// it for the run, 's).
unsafe impl Send for WaitSide {}

/// Why a fiber's wait for bytes or room ended without them.
pub(crate) enum WaitFailed {
    TimedOut,
    WrongRuntime,
    Unwinding,
    Cancelled,
}

impl WaitSide {
    pub(crate) const fn new() -> Self {
        WaitSide {
            want: AtomicUsize::new(0),
            waiter_rt: AtomicU64::new(0),
            src: IrqSource::new(),
            waiters: WaitQueue::new(),
        }
    }

    pub(crate) const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// The peer's half, right after it published: wakes a waiter that needs
    /// at most `have()` bytes. `fib`: the publishing fiber, if the peer is
    /// one (`None` in interrupt context or on another thread).
    ///
    /// Interrupt-safe: a fence, a load, and if someone waits for no more than
    /// what is there, a compare-exchange and [`IrqSource::raise`] (its docs
    /// say exactly what it does).
    #[inline]
    pub(crate) fn publish(&self, fib: Option<&Fiber<'_>>, have: impl FnOnce() -> usize) {
        fence(Ordering::SeqCst);
        let w = self.want.load(Ordering::Relaxed);
        if w == 0 || have() < w || self.want.compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        if let Some(fib) = fib {
            let core = fib.core_ptr();
            // SAFETY: the fiber's core is live while it runs.
            let me = unsafe { (*core).serial };
            if self.waiter_rt.load(Ordering::Relaxed) == me {
                // SAFETY: a fiber of our runtime set `waiter_rt` after
                // registering `src` with it, so the queue belongs to our
                // runtime (only fibers of the registered runtime block in it,
                // I1), and we run on its thread as its running fiber. The
                // waiter cannot be between its announcement and its block:
                // nothing switches there. If it was woken already, the
                // queue is empty and this does nothing.
                unsafe { raw::wake_one(core, &self.waiters) };
                return;
            }
        }
        self.src.raise();
    }

    /// Blocks the running fiber until `have()` reaches `need` (`need >= 1`)
    /// or the deadline passes (`None`: never).
    pub(crate) fn wait_for<'s>(
        &'s self,
        fib: &Fiber<'s>,
        need: usize,
        have: impl Fn() -> usize,
        deadline: Option<Ticks>,
    ) -> Result<(), WaitFailed> {
        if have() >= need {
            return Ok(());
        }
        let core = self.src.register(fib, self).map_err(|_| WaitFailed::WrongRuntime)?;
        /// Clears the announcement and the waiter's runtime on every exit,
        /// including an unwind out of the wait.
        struct Leave<'a>(&'a WaitSide);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.want.store(0, Ordering::Relaxed);
                self.0.waiter_rt.store(0, Ordering::Relaxed);
            }
        }
        // SAFETY: the fiber's core is live while it runs.
        self.waiter_rt.store(unsafe { (*core).serial }, Ordering::Relaxed);
        let _leave = Leave(self);
        loop {
            self.want.store(need, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if have() >= need {
                return Ok(());
            }
            if deadline.is_some_and(|d| fib.now() >= d) {
                return Err(WaitFailed::TimedOut);
            }
            // SAFETY: we are the running fiber of `core`, with which `src` is
            // registered (so the queue belongs to it); the side lives for 's,
            // longer than any of the runtime's fibers (I5).
            let wake = unsafe { as_irq_waiter(core, || fib.wait_on(&self.waiters, WaitKind::Irq, deadline)) };
            match wake {
                Wake::TimedOut | Wake::Unwinding | Wake::Aborted if have() >= need => return Ok(()),
                Wake::TimedOut => return Err(WaitFailed::TimedOut),
                Wake::Unwinding => return Err(WaitFailed::Unwinding),
                Wake::Aborted => return Err(WaitFailed::Cancelled),
                // Woken (perhaps for an older announcement): look again.
                _ => {}
            }
        }
    }
}

impl Drain for WaitSide {
    /// Wakes the blocked fiber; with none queued yet the raise is kept (one
    /// may be about to block).
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        if self.waiters.is_empty() {
            return Drained::Keep;
        }
        // SAFETY: per the contract we run in `core`, the runtime the source is
        // registered with; the queue holds its blocked fibers only.
        unsafe { raw::wake_one(core, &self.waiters) };
        Drained::Done
    }
}
