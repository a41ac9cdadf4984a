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
        // Priority levels: a bitmap bit without a ring, a stale
        // preemption flag, a ready fiber in the ring of another level.
        check(Box::new(|c, _| c.ready_levels |= 1 << 5), Box::new(|c, _| c.ready_levels &= !(1 << 5)));
        check(Box::new(|c, _| c.preempt = true), Box::new(|c, _| c.preempt = false));
        check(Box::new(|_, s| s[2].priority = 3), Box::new(|_, s| s[2].priority = 0));
        // Counters.
        check(Box::new(|c, _| c.unfinished += 1), Box::new(|c, _| c.unfinished -= 1));
        check(Box::new(|c, _| c.pollers += 1), Box::new(|c, _| c.pollers -= 1));
        check(Box::new(|c, _| c.slow ^= 2), Box::new(|c, _| c.slow ^= 2));
        // A Ready fiber's select record (I12) that is not in its own stack
        // (review 14: any non-zero `wait_obj` on a Ready slot passed).
        check(Box::new(|_, s| s[2].wait_obj = 0x1000), Box::new(|_, s| s[2].wait_obj = 0));
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
                    *c.timers.add(n) = crate::time::TimerEntry { deadline: c.now + 5, seq: c.timer_seq + 1, slot: me };
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
            "Ready slots missing from the ready rings",
            "ready ring holds a slot that is not Ready",
            "prev.next is not current",
            "ready_levels bit disagrees with its level's ring",
            "preempt disagrees with the levels above the running one",
            "ready slot in the ring of another priority level",
            "unfinished differs from the number of Ready and Blocked slots",
            "pollers differs from ntimers + irq.waiters",
            "slow differs from what refresh_slow computes",
            "a ready fiber's select record is not in its own stack",
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
            let mut check = |corrupt: Poke<'_>, restore: Poke<'_>| errs.push(expect_detected(fib, corrupt, restore));
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
