//! Snapshots the runtime reports: one fiber's [`FiberInfo`] and the
//! runtime's [`Stats`], read from inside a fiber or from the host.

use crate::fiber::{FiberId, FiberState, Slot, State};
use crate::priority::Priority;
use crate::raw::{self, Core};
use crate::stack;

/// A snapshot of one fiber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FiberInfo {
    /// Its id.
    pub id: FiberId,
    /// The name given at spawn ("" if none).
    pub name: &'static str,
    /// What it is doing.
    pub state: FiberState,
    /// Its stack's usable size in bytes.
    pub stack_size: usize,
    /// Bytes of stack used so far (`None` for unpainted stacks).
    pub stack_high_water: Option<usize>,
    /// Times it was switched in.
    pub runs: u64,
    /// While blocked in a named primitive: its name; "" otherwise.
    pub waiting_in: &'static str,
    /// Its effective priority: `base_priority`, raised while it holds a
    /// [`Mutex`](crate::sync::Mutex) a higher-priority fiber waits for.
    pub priority: Priority,
    /// The priority given at spawn or by `set_priority`.
    pub base_priority: Priority,
}

/// Runtime totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Fibers spawned.
    pub spawns: u64,
    /// Times `run` found nothing ready and waited (idle hook calls).
    pub idles: u64,
    /// Deadlocks detected.
    pub deadlocks: u64,
    /// Fibers alive now (spawned, slot not yet free).
    pub live: usize,
    /// Switches into fibers (from another fiber or from `run`), all fibers
    /// ever spawned included.
    pub switches: u64,
}

/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn info(core: *mut Core, id: FiberId) -> Option<FiberInfo> {
    // SAFETY: per the contract.
    unsafe {
        if id.index as usize >= (*core).cap {
            return None;
        }
        let s = (*core).slots.add(id.index as usize);
        if (*s).state == State::Free || (*s).generation != id.generation {
            return None;
        }
        Some(info_of(core, s))
    }
}

/// # Safety
/// Exclusive access to `core`; `s` a non-free slot.
pub(crate) unsafe fn info_of(core: *mut Core, s: *mut Slot) -> FiberInfo {
    // SAFETY: per the contract.
    unsafe {
        let h = (*s).header;
        let state = match (*s).state {
            State::Ready if (*core).in_run && (*core).current == s => FiberState::Running,
            State::Ready => FiberState::Ready,
            State::Blocked => FiberState::Blocked(raw::wait_reason(core, s)),
            State::Finished => FiberState::Finished,
            State::Free => unreachable!(),
        };
        let hw = (*h).stack.is_painted().then(|| stack::high_water((*s).lo, (*h).stack.top()));
        FiberInfo {
            id: raw::id_of(core, s),
            name: (*h).name,
            state,
            stack_size: (*h).stack.size(),
            stack_high_water: hw,
            // Counted at switch-out; the running fiber's current run too.
            waiting_in: if (*s).state == State::Blocked { raw::wait_object_name(s) } else { "" },
            runs: (*s).runs + u64::from((*core).in_run && (*core).current == s && (*s).state == State::Ready),
            priority: Priority::saturating((*s).priority),
            base_priority: Priority::saturating((*h).base_priority),
        }
    }
}

/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn stats(core: *mut Core) -> Stats {
    // SAFETY: per the contract.
    unsafe {
        let live_runs: u64 = (0..(*core).cap)
            .map(|i| (*core).slots.add(i))
            .filter(|&s| (*s).state != State::Free)
            .map(|s| (*s).runs)
            .sum();
        Stats {
            spawns: (*core).spawns,
            idles: (*core).idles,
            deadlocks: (*core).deadlocks,
            live: (*core).used(),
            switches: (*core).retired_runs + live_runs + u64::from((*core).in_run && !(*core).current.is_null()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::Runtime;

    /// Defect 12: per-fiber switch-in counts were `u32` and wrapped after 2^32
    /// switches (~72 min at 1 M switches/s), so `runs` and `Stats::switches`
    /// dropped by 2^32. Starts a fiber's count just below 2^32 and yields.
    #[test]
    fn run_counts_do_not_wrap_at_2_pow_32() {
        extern crate std;
        static STACKS: [crate::StaticStack<65536>; 2] = [const { crate::StaticStack::new() }; 2];
        let rt = std::boxed::Box::new(Runtime::<'static, 2>::new());
        let h = rt
            .spawn(STACKS[0].claim().unwrap(), |fib| {
                // SAFETY: our own slot, while we run; no reader is active.
                unsafe { (*fib.slot_ptr()).runs = (u32::MAX - 1) as _ };
                for _ in 0..4 {
                    fib.yield_now();
                }
                fib.id()
            })
            .unwrap();
        let other = rt.spawn(STACKS[1].claim().unwrap(), |fib| (0..4).for_each(|_| fib.yield_now())).unwrap();
        rt.run().unwrap();
        let id = h.id();
        let runs: u64 = rt.fiber_info(id).unwrap().runs;
        assert!(runs > u32::MAX as u64, "runs wrapped: {runs}");
        assert!(rt.stats().unwrap().switches > u32::MAX as u64);
        rt.take(h).unwrap();
        rt.take(other).unwrap();
    }
}
