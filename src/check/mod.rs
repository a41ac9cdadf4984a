//! A structural invariant checker for the scheduler's data (tests and
//! debugging): [`Runtime::debug_check_invariants`](crate::Runtime::debug_check_invariants)
//! from the host between runs, [`Fiber::debug_check_invariants`](crate::Fiber::debug_check_invariants)
//! from inside a running fiber.
//!
//! It reads the [`Core`] and its slot table and reports the first broken rule.
//! No heap: every walk is bounded by the table's capacity, so corrupted links
//! (cycles, pointers outside the table) are reported, not followed forever.
//! O(capacity²) in the worst case (each queue waiter's queue is walked).
//!
//! The rules checked:
//!
//! * **ready rings** (I11): `current` and `prev` are null together; otherwise
//!   both point at slots, `prev.next == current`, and the running ring holds
//!   Ready slots of priority `run_level`. Each other level's ring (by its tail
//!   in `levels`) holds Ready slots of its level, and its `ready_levels` bit is
//!   set exactly when it is not empty (never for the running level); with an
//!   empty running ring no level has any. Together the rings hold every `Ready`
//!   slot exactly once. `preempt` is set exactly when a level above
//!   `run_level` is ready. With a running fiber (the fiber-side check) it is
//!   `current`.
//! * **timer heap**: `ntimers <= cap`; entry `i` names a `Blocked` slot whose
//!   `timer_pos == i`; parent keys are `<=` child keys; every slot with a
//!   `timer_pos` is found at that position. A plain sleeper (not parked) has a
//!   deadline, equal to its `wait_obj`.
//! * **wait queues**: a `Blocked` slot waiting on a queue is found by walking
//!   the queue at its `wait_obj`; every member of a queue walked is `Blocked`,
//!   of the same wait kind, with `wait_obj` equal to that queue's address; the
//!   queue's tail is its last member. Every live fiber's joiner queue is walked
//!   the same way (and is empty once the fiber finished).
//! * **parked fibers** (a deadlock without `std`, or a cancelled fiber that
//!   blocked again: `Sleep` with `wait_obj == usize::MAX` and no deadline)
//!   exist only in a poisoned runtime.
//! * **free list**: only `Free` slots, all of them, `cap - used` many;
//!   **zombie list**: only `Finished` detached fibers.
//! * **counters**: `unfinished` = `Ready` + `Blocked` slots (spawn counts a
//!   fiber, its exit uncounts it; parked fibers stay counted); slots in use
//!   (`spawns - frees`) = non-`Free` slots; `pollers = ntimers + irq.waiters`;
//!   `irq.waiters` = slots marked `irq_wait` (blocked on an interrupt-capable
//!   object, or woken and not yet returned: only `Blocked` or `Ready` ones),
//!   and every fiber blocked on an `IrqSignal` is marked; `fp_fibers` =
//!   slots with their own FP state; `slow` is what `raw::refresh_slow`
//!   computes.
//!
//! The checker trusts what the scheduler itself trusts: queue addresses in
//! `Blocked` slots and headers of live slots point at readable memory.

mod counters;
mod lists;
mod queues;
mod rings;
mod slots;
mod table;
#[cfg(all(test, feature = "std"))]
mod tests;
mod timers;

use core::fmt;

use crate::fiber::{Slot, State};
use crate::raw::Core;
use table::Table;

/// A broken scheduler invariant found by `debug_check_invariants`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckError {
    /// Which rule is broken.
    pub what: &'static str,
    /// The slot index concerned, if one is.
    pub slot: Option<usize>,
}

impl CheckError {
    /// What `Runtime::debug_check_invariants` returns while the runtime is
    /// busy (running on some thread, or called from one of its fibers): it
    /// checked nothing.
    pub const BUSY: CheckError = CheckError { what: "runtime busy: nothing checked", slot: None };

    fn new(what: &'static str, slot: Option<usize>) -> Self {
        CheckError { what, slot }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)?;
        if let Some(i) = self.slot {
            write!(f, " (slot {i})")?;
        }
        Ok(())
    }
}

impl core::error::Error for CheckError {}

type Check<T = ()> = Result<T, CheckError>;

fn fail<T>(what: &'static str, slot: Option<usize>) -> Check<T> {
    Err(CheckError::new(what, slot))
}

/// Checks the scheduler's structural invariants (see the module docs).
/// `running`: the running fiber's slot when called from a fiber, `None` from
/// the host between runs.
///
/// # Safety
/// Exclusive access to `core` for the duration of the call (the runtime's
/// lock held, or called by its running fiber), and the scheduler's own trust
/// assumptions hold: every live slot's header and every `Blocked` slot's
/// queue address point at readable memory.
pub(crate) unsafe fn check(core: *const Core, running: Option<*mut Slot>) -> Check {
    // SAFETY: per the contract nobody writes the core while we read it.
    let c = unsafe { &*core };
    if c.slots.is_null() {
        // Never bound: an empty runtime.
        return if c.current.is_null() && c.free.is_null() && c.unfinished == 0 {
            Ok(())
        } else {
            fail("unbound runtime has fibers", None)
        };
    }
    let t = Table { core: c };
    let cap = c.cap;

    // --- how many slots are in each state
    let (mut ready, mut blocked, mut free) = (0usize, 0usize, 0usize);
    for i in 0..cap {
        match t.slot(i).state {
            State::Free => free += 1,
            State::Ready => ready += 1,
            State::Blocked => blocked += 1,
            State::Finished => {}
        }
    }

    // The parts in the order the module docs list them; the first broken
    // rule found is the one reported.
    rings::ready_rings(&t, ready, running)?;
    timers::timer_heap(&t)?;
    let (fp, irq_waiting) = slots::slots(&t)?;
    queues::joiner_queues(&t)?;
    lists::free_and_zombie_lists(&t, free)?;
    counters::counters(c, ready, blocked, fp, irq_waiting)
}
