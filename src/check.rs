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
//! * **ready ring**: `current` and `prev` are null together; otherwise both
//!   point at slots, `prev.next == current`, and following `next` from
//!   `current` visits every `Ready` slot exactly once and comes back. With a
//!   running fiber (the fiber-side check) it is `current`.
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
//!   `irq.waiters` lies between the fibers blocked on signals and those plus
//!   the `Ready` ones (a woken waiter leaves the count only when it resumes,
//!   and its `wait_kind` may no longer say `Irq` by then); `fp_fibers` =
//!   slots with their own FP state; `slow` is what `raw::refresh_slow`
//!   computes.
//!
//! The checker trusts what the scheduler itself trusts: queue addresses in
//! `Blocked` slots and headers of live slots point at readable memory.

use core::fmt;
use core::mem::size_of;

use crate::fiber::{Slot, State, WaitKind};
use crate::raw::Core;
use crate::wait::WaitQueue;

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

/// Whether a blocked fiber of this kind sits in the wait queue at its
/// `wait_obj`. Kinds not listed (a plain sleep, or any kind added later that
/// means "in no queue") are not looked up.
fn waits_in_queue(kind: WaitKind) -> bool {
    matches!(
        kind,
        WaitKind::Join
            | WaitKind::Mutex
            | WaitKind::Semaphore
            | WaitKind::Send
            | WaitKind::Recv
            | WaitKind::Event
            | WaitKind::Barrier
            | WaitKind::Irq
    )
}

/// Whether `s` is a fiber parked for good after a deadlock (see
/// `runtime::deadlock`): `WaitKind::Parked`, with no deadline armed.
fn is_parked(s: &Slot) -> bool {
    s.state == State::Blocked && s.wait_kind == WaitKind::Parked && s.timer_pos == u32::MAX
}

/// The slot table, read through the core's raw pointers.
struct Table<'a> {
    core: &'a Core,
}

impl Table<'_> {
    /// Index of `p` if it points exactly at one of the table's slots (pure
    /// address arithmetic: a wild pointer is never dereferenced).
    fn index(&self, p: *const Slot) -> Option<usize> {
        let (base, a) = (self.core.slots as usize, p as usize);
        let off = a.checked_sub(base)?;
        let i = off / size_of::<Slot>();
        (off % size_of::<Slot>() == 0 && i < self.core.cap).then_some(i)
    }

    fn slot(&self, i: usize) -> &Slot {
        debug_assert!(i < self.core.cap);
        // SAFETY: i < cap and the table has cap initialised slots (the
        // caller of `check` guarantees a bound core and exclusive access).
        unsafe { &*self.core.slots.add(i) }
    }

    /// The index of `p`, or an error naming the rule `what` if it is not a slot.
    fn index_or(&self, p: *const Slot, what: &'static str) -> Check<usize> {
        self.index(p).map_or_else(|| fail(what, None), Ok)
    }

    /// Walks the wait queue `q` (kind `kind`) and checks its members.
    /// Returns whether slot `want` is among them.
    ///
    /// # Safety
    /// `q` must point at a readable `WaitQueue`.
    unsafe fn walk_queue(&self, q: *const WaitQueue, kind: WaitKind, want: Option<usize>) -> Check<bool> {
        // SAFETY: per the contract.
        let q = unsafe { &*q };
        let mut found = false;
        let mut last: *mut Slot = core::ptr::null_mut();
        let mut n = 0usize;
        let mut p = q.head();
        while !p.is_null() {
            let i = self.index_or(p, "wait queue link points outside the slot table")?;
            let s = self.slot(i);
            n += 1;
            if n > self.core.cap {
                return fail("wait queue is longer than the table (a cycle)", Some(i));
            }
            if s.state != State::Blocked {
                return fail("wait queue member is not Blocked", Some(i));
            }
            if s.wait_obj != q as *const WaitQueue as usize {
                return fail("wait queue member names another queue in wait_obj", Some(i));
            }
            if s.wait_kind != kind {
                return fail("wait queue member has another wait kind", Some(i));
            }
            found |= want == Some(i);
            last = p;
            p = s.next;
        }
        if q.tail() != last {
            return fail("wait queue tail is not its last member", None);
        }
        Ok(found)
    }
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

    // --- ready ring
    if c.current.is_null() != c.prev.is_null() {
        return fail("exactly one of current/prev is null", None);
    }
    if c.current.is_null() {
        if ready != 0 {
            return fail("ring is empty but Ready slots exist", None);
        }
    } else {
        let pi = t.index_or(c.prev, "prev points outside the slot table")?;
        if t.slot(pi).next != c.current {
            return fail("prev.next is not current", Some(pi));
        }
        let mut p = c.current;
        let mut n = 0usize;
        loop {
            let i = t.index_or(p, "ready ring link points outside the slot table")?;
            let s = t.slot(i);
            if s.state != State::Ready {
                return fail("ready ring holds a slot that is not Ready", Some(i));
            }
            n += 1;
            if n > ready {
                return fail("ready ring does not return to current after every Ready slot", Some(i));
            }
            if s.next == c.current {
                if p != c.prev {
                    return fail("the ring's last slot before current is not prev", Some(i));
                }
                break;
            }
            p = s.next;
        }
        if n != ready {
            return fail("Ready slots missing from the ready ring", None);
        }
    }
    if let Some(r) = running {
        if c.current != r {
            return fail("the running fiber is not current", t.index(r));
        }
        if !c.in_run {
            return fail("a fiber runs but in_run is false", t.index(r));
        }
    }

    // --- timer heap
    if c.ntimers > cap {
        return fail("more timers than slots", None);
    }
    for i in 0..c.ntimers {
        // SAFETY: i < ntimers <= cap entries.
        let e = unsafe { *c.timers.add(i) };
        let si = t.index_or(e.slot, "timer heap entry points outside the slot table")?;
        let s = t.slot(si);
        if s.state != State::Blocked {
            return fail("timer heap entry of a slot that is not Blocked", Some(si));
        }
        if s.timer_pos as usize != i {
            return fail("timer heap entry at a position other than the slot's timer_pos", Some(si));
        }
        if e.seq > c.timer_seq {
            return fail("timer heap entry has a sequence number from the future", Some(si));
        }
        if i > 0 {
            // SAFETY: the parent index is below i.
            let parent = unsafe { *c.timers.add((i - 1) / 2) };
            if parent.key() > e.key() {
                return fail("timer heap order broken", Some(si));
            }
        }
    }

    // --- per slot: headers, deadlines, queue membership
    let mut fp = 0usize;
    let mut irq_blocked = 0usize;
    let mut select_blocked = 0usize;
    for i in 0..cap {
        let s = t.slot(i);
        fp += usize::from(s.fp);
        if s.state == State::Free {
            if s.fp {
                return fail("free slot keeps its own FP state", Some(i));
            }
        } else if s.header.is_null() {
            return fail("live slot has no header", Some(i));
        }
        irq_blocked += usize::from(s.state == State::Blocked && s.wait_kind == WaitKind::Irq);
        // A select with an interrupt case counts as a signal waiter too.
        select_blocked += usize::from(s.state == State::Blocked && s.wait_kind == WaitKind::Select);
        if s.timer_pos != u32::MAX {
            let pos = s.timer_pos as usize;
            // SAFETY: pos < ntimers <= cap entries of the timer array.
            if pos >= c.ntimers || !core::ptr::eq(unsafe { (*c.timers.add(pos)).slot }, s) {
                return fail("timer_pos does not lead back to the slot's heap entry", Some(i));
            }
        }
        if s.state != State::Blocked {
            if s.wait_kind != WaitKind::None || s.wait_obj != 0 {
                return fail("a fiber that is not blocked keeps a wait kind or object", Some(i));
            }
            continue;
        }
        if s.wait_kind == WaitKind::None {
            return fail("blocked fiber has no wait kind", Some(i));
        }
        if s.wait_kind == WaitKind::Parked && !is_parked(s) {
            return fail("parked fiber has a deadline armed", Some(i));
        }
        if is_parked(s) {
            if !c.poisoned {
                return fail("fiber parked after a deadlock in a runtime that is not poisoned", Some(i));
            }
        } else if waits_in_queue(s.wait_kind) {
            // SAFETY: a blocked fiber's wait_obj is the address of the live
            // queue it waits in (the scheduler's own assumption).
            if !unsafe { t.walk_queue(s.wait_obj as *const WaitQueue, s.wait_kind, Some(i))? } {
                return fail("blocked fiber is not in the wait queue named by its wait_obj", Some(i));
            }
        } else if s.wait_kind == WaitKind::Sleep {
            if s.timer_pos == u32::MAX {
                return fail("sleeping fiber has no deadline armed", Some(i));
            }
            // SAFETY: timer_pos was checked to index a heap entry above.
            if unsafe { (*c.timers.add(s.timer_pos as usize)).deadline } as usize != s.wait_obj {
                return fail("sleeping fiber's deadline differs from its wait_obj", Some(i));
            }
        }
    }

    // --- joiner queues of live fibers
    for i in 0..cap {
        let s = t.slot(i);
        if s.state == State::Free {
            continue;
        }
        // SAFETY: a live slot's header is valid (checked non-null above).
        let q = unsafe { &raw const (*s.header).joiners };
        // SAFETY: the header is readable, so is the queue inside it.
        unsafe { t.walk_queue(q, WaitKind::Join, None)? };
        // SAFETY: as above.
        if s.state == State::Finished && !unsafe { (*q).head() }.is_null() {
            return fail("finished fiber still has joiners", Some(i));
        }
    }

    // --- free and zombie lists
    let mut n = 0usize;
    let mut p = c.free;
    while !p.is_null() {
        let i = t.index_or(p, "free list link points outside the slot table")?;
        let s = t.slot(i);
        if s.state != State::Free {
            return fail("free list holds a slot that is not Free", Some(i));
        }
        n += 1;
        if n > free {
            return fail("free list is longer than the Free slots (a cycle)", Some(i));
        }
        p = s.next;
    }
    if n != free {
        return fail("Free slots missing from the free list", None);
    }
    if cap - free != c.used() {
        return fail("slots in use (spawns - frees) differ from the non-Free slots", None);
    }
    let mut n = 0usize;
    let mut p = c.zombies;
    while !p.is_null() {
        let i = t.index_or(p, "zombie list link points outside the slot table")?;
        let s = t.slot(i);
        if s.state != State::Finished {
            return fail("zombie list holds a slot that is not Finished", Some(i));
        }
        // SAFETY: a finished slot's header is valid until its slot is freed.
        if !unsafe { (*s.header).detached } {
            return fail("zombie list holds a fiber that is not detached", Some(i));
        }
        n += 1;
        if n > cap {
            return fail("zombie list is longer than the table (a cycle)", Some(i));
        }
        p = s.next;
    }

    // --- counters
    if c.unfinished != ready + blocked {
        return fail("unfinished differs from the number of Ready and Blocked slots", None);
    }
    if c.pollers != c.ntimers + c.irq.waiters {
        return fail("pollers differs from ntimers + irq.waiters", None);
    }
    if c.irq.waiters < irq_blocked || c.irq.waiters > irq_blocked + select_blocked + ready {
        return fail("irq.waiters disagrees with the fibers waiting on signals", None);
    }
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    if c.fp_fibers != fp {
        return fail("fp_fibers differs from the slots with their own FP state", None);
    }
    let _ = fp;
    if c.slow != expected_slow(c) {
        return fail("slow differs from what refresh_slow computes", None);
    }
    Ok(())
}

/// What `raw::refresh_slow` stores in `Core::slow` (keep the two in step).
fn expected_slow(c: &Core) -> usize {
    #[allow(unused_mut)]
    let mut slow = c.pollers;
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    {
        slow |= c.fp_fibers;
    }
    #[cfg(feature = "trace")]
    {
        slow |= c.tracer.is_some() as usize;
    }
    #[cfg(feature = "explore")]
    {
        slow |= c.policy.is_some() as usize;
    }
    slow
}

#[cfg(all(test, feature = "std"))]
mod tests {
    //! The checker must be able to fail: each test corrupts one piece of a
    //! live runtime's state, sees an error, restores the piece and sees `Ok`
    //! again (so the runtime can finish normally).

    extern crate std;

    use std::boxed::Box;
    use std::vec::Vec;

    use super::CheckError;
    use crate::fiber::{Slot, State};
    use crate::raw::Core;
    use crate::sync::Mutex;
    use crate::wait::WaitQueue;
    use crate::{Fiber, Runtime, Stack};

    fn stack() -> Stack<'static> {
        Stack::host(64 * 1024).expect("mmap stack").without_painting()
    }

    /// A change made to the core and its slot table through plain references.
    type Poke<'a> = Box<dyn FnOnce(&mut Core, &mut [Slot]) + 'a>;

    /// Applies `corrupt`, expects the checker to fail, applies `restore`,
    /// expects it to pass again. Returns the error seen.
    fn expect_detected(fib: &Fiber<'_>, corrupt: Poke<'_>, restore: Poke<'_>) -> CheckError {
        let poke = |f: Poke<'_>| {
            let core = fib.core_ptr();
            // SAFETY: `fib` is the running fiber, so nothing else touches the
            // core or the slots while `f` runs, and no other reference to them
            // lives meanwhile; the core and the slot array are distinct
            // allocations (separate fields of the runtime).
            unsafe { f(&mut *core, core::slice::from_raw_parts_mut((*core).slots, (*core).cap)) }
        };
        assert_eq!(fib.debug_check_invariants(), Ok(()), "consistent before the corruption");
        poke(corrupt);
        let err = fib.debug_check_invariants().expect_err("the checker missed a corruption");
        poke(restore);
        assert_eq!(fib.debug_check_invariants(), Ok(()), "consistent after the restore");
        err
    }

    /// Runs `probe` in slot 0 while two more fibers (slots 1 and 2) are ready
    /// and yield, with checks from the host before and after.
    fn with_ready_ring(probe: impl FnOnce(&Fiber<'_>) -> Vec<CheckError> + Send + 'static) -> Vec<CheckError> {
        let rt: Box<Runtime<'static, 6>> = Box::default();
        let h = rt.spawn(stack(), probe).unwrap();
        for _ in 0..2 {
            rt.spawn_detached(stack(), |fib| fib.yield_now()).unwrap();
        }
        assert_eq!(rt.debug_check_invariants(), Ok(()));
        rt.run().unwrap();
        assert_eq!(rt.debug_check_invariants(), Ok(()));
        rt.take(h).unwrap()
    }

    #[test]
    fn detects_ring_list_and_counter_corruption() {
        let errs = with_ready_ring(|fib| {
            let mut errs = Vec::new();
            let mut check = |corrupt: Poke<'_>, restore: Poke<'_>| errs.push(expect_detected(fib, corrupt, restore));
            // Slot 0 (running) skips slot 1: slot 1 drops out of the ring.
            check(Box::new(|_, s| s[0].next = s[1].next), Box::new(|_, s| s[0].next = &raw mut s[1]));
            // A ring member that is not Ready.
            check(Box::new(|_, s| s[2].state = State::Blocked), Box::new(|_, s| s[2].state = State::Ready));
            // `prev` that is not the ring's tail.
            check(Box::new(|c, s| c.prev = &raw mut s[1]), Box::new(|c, s| c.prev = &raw mut s[2]));
            // Counters.
            check(Box::new(|c, _| c.unfinished += 1), Box::new(|c, _| c.unfinished -= 1));
            check(Box::new(|c, _| c.pollers += 1), Box::new(|c, _| c.pollers -= 1));
            check(Box::new(|c, _| c.slow ^= 2), Box::new(|c, _| c.slow ^= 2));
            // A slot on the free list that is not Free (given a header, so
            // only the free-list rule sees it).
            let stale = core::cell::Cell::new(core::ptr::null_mut());
            check(
                Box::new(|_, s| {
                    s[4].state = State::Finished;
                    let h = s[0].header;
                    stale.set(core::mem::replace(&mut s[4].header, h));
                }),
                Box::new(|_, s| {
                    s[4].state = State::Free;
                    s[4].header = stale.get();
                }),
            );
            // A cycle in the free list.
            let old = core::cell::Cell::new(core::ptr::null_mut());
            check(
                Box::new(|_, s| {
                    let four = &raw mut s[4];
                    old.set(core::mem::replace(&mut s[5].next, four));
                }),
                Box::new(|_, s| s[5].next = old.get()),
            );
            // The shape of the sleep/timeout defect: a deadline armed for the
            // fiber that is still running (not Blocked).
            check(
                // (`time::arm` refuses that now, so the entry is written by hand.)
                Box::new(|c, s| {
                    let me = &raw mut s[0];
                    let n = c.ntimers;
                    // SAFETY: exclusive access (running fiber); the heap has
                    // room (one entry per slot, this one has none).
                    unsafe {
                        *c.timers.add(n) =
                            crate::time::TimerEntry { deadline: c.now + 5, seq: c.timer_seq + 1, slot: me };
                        (*me).timer_pos = n as u32;
                    }
                    c.timer_seq += 1;
                    c.ntimers += 1;
                    c.pollers += 1;
                    // SAFETY: exclusive access.
                    unsafe { crate::raw::refresh_slow(c) };
                }),
                Box::new(|c, s| {
                    // SAFETY: as above; `me` has the entry written just now.
                    unsafe { crate::time::cancel_deadline(c, &raw mut s[0]) }
                }),
            );
            errs
        });
        let whats: Vec<&str> = errs.iter().map(|e| e.what).collect();
        assert_eq!(
            whats,
            [
                "Ready slots missing from the ready ring",
                "ready ring holds a slot that is not Ready",
                "prev.next is not current",
                "unfinished differs from the number of Ready and Blocked slots",
                "pollers differs from ntimers + irq.waiters",
                "slow differs from what refresh_slow computes",
                "free list holds a slot that is not Free",
                "free list is longer than the Free slots (a cycle)",
                "timer heap entry of a slot that is not Blocked",
            ]
        );
    }

    #[test]
    fn detects_queue_and_timer_corruption() {
        let m: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
        let other: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
        // A mutex's queue is its first field: its address is the queue's.
        let elsewhere = other as *const Mutex<u32> as usize;
        let rt: Box<Runtime<'static, 6>> = Box::default();
        // Slot 0 holds the mutex across yields; slot 1 blocks on it; slot 2
        // sleeps; slot 3 probes while they wait.
        rt.spawn_detached(stack(), move |fib| {
            let _g = m.lock(fib).unwrap();
            for _ in 0..4 {
                fib.yield_now();
            }
        })
        .unwrap();
        rt.spawn_detached(stack(), move |fib| drop(m.lock(fib).unwrap())).unwrap();
        rt.spawn_detached(stack(), |fib| fib.sleep(50)).unwrap();
        let probe = rt
            .spawn(stack(), move |fib| {
                let mut errs = Vec::new();
                let mut check =
                    |corrupt: Poke<'_>, restore: Poke<'_>| errs.push(expect_detected(fib, corrupt, restore));
                // The waiter names another (empty) queue.
                let q = core::cell::Cell::new(0);
                check(
                    Box::new(|_, s| {
                        assert_eq!((s[1].state, s[2].state), (State::Blocked, State::Blocked));
                        q.set(core::mem::replace(&mut s[1].wait_obj, elsewhere));
                    }),
                    Box::new(|_, s| s[1].wait_obj = q.get()),
                );
                // A cycle inside the queue (the waiter is its only member).
                check(Box::new(|_, s| s[1].next = &raw mut s[1]), Box::new(|_, s| s[1].next = core::ptr::null_mut()));
                // The waiter unlinked from its queue.
                let queue = || {
                    // SAFETY: slot 1 waits in the mutex's queue, which is
                    // leaked ('static).
                    unsafe { &*(q.get() as *const WaitQueue) }
                };
                check(
                    Box::new(|_, s| assert!(queue().remove(&raw mut s[1]))),
                    Box::new(|_, s| {
                        // SAFETY: slot 1 is blocked and in no queue now.
                        unsafe { queue().push_back(&raw mut s[1]) }
                    }),
                );
                // The sleeper's timer_pos and the heap disagree.
                check(Box::new(|_, s| s[2].timer_pos += 1), Box::new(|_, s| s[2].timer_pos -= 1));
                // A sleeper with no deadline.
                check(
                    Box::new(|c, s| {
                        // SAFETY: exclusive access (running fiber); slot 2 is
                        // a live slot of this core.
                        unsafe { crate::time::cancel_deadline(c, &raw mut s[2]) }
                    }),
                    Box::new(|c, s| {
                        let deadline = s[2].wait_obj as u64;
                        // SAFETY: as above; slot 2 has no deadline now.
                        unsafe { crate::time::arm(c, &raw mut s[2], deadline) }
                    }),
                );
                errs
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.debug_check_invariants(), Ok(()));
        let whats: Vec<&str> = rt.take(probe).unwrap().iter().map(|e| e.what).collect();
        assert_eq!(
            whats,
            [
                "blocked fiber is not in the wait queue named by its wait_obj",
                "wait queue is longer than the table (a cycle)",
                "blocked fiber is not in the wait queue named by its wait_obj",
                "timer heap entry at a position other than the slot's timer_pos",
                "sleeping fiber has no deadline armed",
            ]
        );
    }

    #[test]
    fn busy_runtime_checks_nothing() {
        let rt: &'static Runtime<'static, 2> = Box::leak(Box::new(Runtime::new()));
        assert_eq!(rt.debug_check_invariants(), Ok(()), "an unbound runtime is consistent");
        let h = rt.spawn(stack(), move |_| rt.debug_check_invariants()).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Err(CheckError::BUSY));
    }
}
