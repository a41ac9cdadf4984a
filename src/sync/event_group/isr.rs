//! The interrupt side of an [`EventGroup`]: bits ORed in from interrupt
//! handlers, threads or other cores (atomics only), applied by the runtime's
//! drain at its next poll or by the group's next use by a fiber.

use core::sync::atomic::{AtomicBool, Ordering};

use super::EventGroup;
use crate::irq::source::{Drain, Drained};
use crate::raw::Core;

/// Interrupt side ([`set_bits_from_isr`](EventGroup::set_bits_from_isr)).
impl EventGroup {
    /// Moves bits set by interrupt handlers into the word (waking whoever
    /// they satisfy).
    ///
    /// # Safety
    /// As for [`apply`](Self::apply).
    #[inline]
    pub(crate) unsafe fn fold_isr_bits(&self, core: *mut Core) {
        if self.isr_bits.load(Ordering::Relaxed) != 0 {
            let bits = self.isr_bits.swap(0, Ordering::Acquire);
            // SAFETY: forwarded contract.
            unsafe { self.apply(core, bits) };
        }
    }

    /// Marks the group interrupt-capable: a fiber blocked in
    /// [`wait`](Self::wait) or [`sync`](Self::sync) counts as waiting for an
    /// interrupt, so the runtime polls and idles instead of reporting a
    /// deadlock while only an interrupt can set its bits. `const`:
    ///
    /// ```
    /// static LINK: filament::sync::EventGroup = filament::sync::EventGroup::new().isr_capable();
    /// ```
    ///
    /// The first [`set_bits_from_isr`](Self::set_bits_from_isr) marks it too,
    /// but only fibers that block after it count: mark it here when a fiber
    /// may block before the first interrupt set. A fiber that blocked before
    /// does not count (with nothing else to wait for, the runtime reports a
    /// deadlock instead of waiting for the interrupt), but bits set while it
    /// waits still reach it: at the runtime's next poll while some fiber is
    /// counted, or when it runs out of ready fibers (before it idles, reports
    /// a deadlock or stops for [`run_for`](crate::Runtime::run_for)'s
    /// limit), or when its deadline passes (the wait re-tests). So while
    /// other fibers keep the runtime busy (the ready ring never empties) and
    /// no fiber is counted, such a waiter can wait for those bits
    /// indefinitely (review 13): a group set from interrupts should be
    /// marked here, in its `static`, or waited on with a timeout.
    pub const fn isr_capable(mut self) -> Self {
        self.isr_capable = AtomicBool::new(true);
        self
    }

    /// ORs `bits` into the group from interrupt context. **Interrupt-safe** and
    /// async-signal-safe, callable from any thread or core; no lock, never
    /// blocks, touches no runtime memory.
    ///
    /// Exactly: one atomic store marking the group interrupt-capable (skipped
    /// when it is), one atomic `fetch_or` on its pending interrupt bits, then
    /// the raise of its interrupt source (one atomic swap, one atomic add on
    /// the program-wide epoch that [`IrqWatch`](crate::IrqWatch) reads, under
    /// `std` at most one `futex` wake). The runtime applies the bits as
    /// [`set`](Self::set) does — waking, in FIFO order, the waiters they
    /// satisfy — at its next poll (every switch and idle turn while a fiber
    /// waits on an interrupt-capable object; and whenever the runtime runs
    /// out of ready fibers) or the group's next use by a fiber, whichever
    /// comes first.
    pub fn set_bits_from_isr(&self, bits: u32) {
        if !self.isr_capable.load(Ordering::Relaxed) {
            self.isr_capable.store(true, Ordering::Relaxed);
        }
        // Release, before the raise: whoever sees the raise sees the bits.
        self.isr_bits.fetch_or(bits, Ordering::Release);
        self.src.raise();
    }
}

impl Drain for EventGroup {
    /// Applies interrupt bits for the waiters (waking those they satisfy).
    /// With none waiting they stay pending (the next fiber call applies them).
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        if self.isr_bits.load(Ordering::Relaxed) == 0 {
            return Drained::Done; // applied by a fiber already
        }
        if self.waiters.is_empty() {
            return Drained::Keep;
        }
        // The running fiber linked its record (the tail) and is in
        // `block_current`'s poll, not yet in the queue: bits applied now
        // would skip it and it would sleep with its condition true. Leave the
        // raise for the next poll (the fiber is queued by then).
        // SAFETY: per the contract we run in `core`; linked records are alive
        // (their fibers are suspended in `block` or about to be).
        unsafe {
            let cur = (*core).current;
            let tail = self.tail.get();
            if !cur.is_null() && !tail.is_null() && (*tail).slot == cur && (*cur).state != crate::fiber::State::Blocked
            {
                return Drained::Keep;
            }
        }
        // SAFETY: per the contract we run in `core`, the group's runtime.
        unsafe { self.fold_isr_bits(core) };
        Drained::Done
    }
}
