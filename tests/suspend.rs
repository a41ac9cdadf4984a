//! Suspend / resume of another fiber: exact traces of who runs when, what a
//! suspended waiter keeps, withdrawal, errors, deadlock reports and
//! cancellation, priorities.

use std::sync::Mutex as StdMutex;

use filament::sync::{Channel, Semaphore};
use filament::{JoinError, Priority, RunError, Runtime, SpawnOptions, Stack, SuspendError, WaitReason};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

fn log(l: &StdMutex<Vec<String>>, s: impl Into<String>) {
    l.lock().unwrap().push(s.into());
}

fn joined(l: &StdMutex<Vec<String>>) -> String {
    l.lock().unwrap().join(" ")
}

#[test]
fn a_ready_fiber_stops_at_once_and_carries_on_when_resumed() {
    let l = StdMutex::new(Vec::new());
    let l = &l;
    Runtime::<2>::scope(|rt| {
        let worker = rt
            .spawn(stack(), move |fib| {
                for i in 0..4 {
                    log(l, format!("w{i}"));
                    fib.yield_now();
                }
            })
            .unwrap();
        let id = worker.id();
        let boss = rt
            .spawn(stack(), move |fib| {
                fib.suspend(id).unwrap();
                log(l, "b:suspended");
                let info = fib.fiber_info(id).unwrap();
                for i in 0..2 {
                    fib.yield_now();
                    log(l, format!("b{i}"));
                }
                fib.resume(id).unwrap();
                log(l, "b:resumed");
                fib.yield_now();
                log(l, "b:end");
                (info.state, fib.is_suspended(id))
            })
            .unwrap();
        rt.run().unwrap();
        let (state, now) = rt.take(boss).unwrap();
        assert_eq!(state, filament::FiberState::Blocked(WaitReason::Suspended));
        assert_eq!(now, Ok(false));
        rt.take(worker).unwrap();
    });
    assert_eq!(joined(l), "w0 b:suspended b0 b1 b:resumed w1 b:end w2 w3");
}

#[test]
fn a_fiber_that_suspends_itself_waits_for_someone_to_resume_it() {
    let l = StdMutex::new(Vec::new());
    let l = &l;
    Runtime::<2>::scope(|rt| {
        let sleeper = rt
            .spawn(stack(), move |fib| {
                log(l, "s:suspend");
                let r = fib.suspend(fib.id());
                log(l, "s:back");
                r
            })
            .unwrap();
        let id = sleeper.id();
        rt.spawn_detached(stack(), move |fib| {
            log(l, "r:running");
            assert_eq!(fib.is_suspended(id), Ok(true));
            fib.resume(id).unwrap();
            log(l, "r:resumed");
            assert_eq!(fib.resume(id), Err(SuspendError::NotSuspended(id)));
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(sleeper).unwrap(), Ok(()));
    });
    assert_eq!(joined(l), "s:suspend r:running r:resumed s:back");
}

#[test]
fn a_suspended_waiter_keeps_what_its_wait_gave_it_and_runs_only_when_resumed() {
    let l = StdMutex::new(Vec::new());
    let l = &l;
    let sem = Semaphore::new(0);
    let ch: Channel<u32, 1> = Channel::new();
    let (sem, ch) = (&sem, &ch);
    Runtime::<3>::scope(|rt| {
        let waiter = rt
            .spawn(stack(), move |fib| {
                sem.acquire(fib).unwrap();
                log(l, "w:permit");
                let v = ch.recv(fib).unwrap();
                log(l, format!("w:got{v}"));
                v
            })
            .unwrap();
        let id = waiter.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now(); // the waiter blocks in acquire
            fib.suspend(id).unwrap();
            sem.release(fib, 1).unwrap(); // handed to the waiter, which stays stopped
            log(l, "c:gave");
            for _ in 0..3 {
                fib.yield_now();
            }
            log(l, format!("c:info {}", fib.fiber_info(id).unwrap().state_text()));
            fib.resume(id).unwrap();
            fib.yield_now(); // the waiter takes its permit, blocks in recv
            fib.suspend(id).unwrap();
            ch.send(fib, 7).unwrap(); // moved into the suspended receiver
            log(l, "c:sent");
            fib.yield_now();
            log(l, format!("c:len{}", ch.len(fib).unwrap()));
            fib.resume(id).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(waiter).unwrap(), 7);
    });
    assert_eq!(joined(l), "c:gave c:info suspended w:permit c:sent c:len0 w:got7");
}

trait StateText {
    fn state_text(&self) -> &'static str;
}

impl StateText for filament::FiberInfo {
    fn state_text(&self) -> &'static str {
        match self.state {
            filament::FiberState::Blocked(WaitReason::Suspended) => "suspended",
            filament::FiberState::Blocked(_) => "blocked",
            _ => "other",
        }
    }
}

#[test]
fn a_sleep_that_ends_while_suspended_resumes_late_and_a_withdrawn_suspension_changes_nothing() {
    Runtime::<3>::scope(|rt| {
        let late = rt
            .spawn(stack(), |fib| {
                fib.sleep(10);
                fib.now()
            })
            .unwrap();
        let on_time = rt
            .spawn(stack(), |fib| {
                fib.sleep(10);
                fib.now()
            })
            .unwrap();
        let (a, b) = (late.id(), on_time.id());
        rt.spawn_detached(stack(), move |fib| {
            fib.suspend(a).unwrap();
            fib.suspend(b).unwrap();
            fib.resume(b).unwrap(); // withdrawn before its sleep ends
            fib.sleep(50);
            fib.resume(a).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(on_time).unwrap(), 10);
        assert_eq!(rt.take(late).unwrap(), 50);
    });
}

#[test]
fn bad_ids_and_double_operations_are_typed_errors() {
    Runtime::<3>::scope(|rt| {
        let done = rt.spawn(stack(), |fib| fib.id()).unwrap();
        let done_id = done.id();
        let other = rt
            .spawn(stack(), |fib| {
                for _ in 0..3 {
                    fib.yield_now();
                }
            })
            .unwrap();
        let other_id = other.id();
        let h = rt
            .spawn(stack(), move |fib| {
                fib.yield_now();
                let gone = (fib.suspend(done_id), fib.resume(done_id), fib.is_suspended(done_id));
                let not = fib.resume(other_id);
                fib.suspend(other_id).unwrap();
                let twice = fib.suspend(other_id); // no nesting: one resume undoes both
                fib.resume(other_id).unwrap();
                (gone, not, twice, fib.is_suspended(other_id))
            })
            .unwrap();
        rt.run().unwrap();
        let (gone, not, twice, after) = rt.take(h).unwrap();
        let none = Err(SuspendError::NoSuchFiber(done_id));
        assert_eq!(gone, (none, none, Err(SuspendError::NoSuchFiber(done_id))));
        assert_eq!(not, Err(SuspendError::NotSuspended(other_id)));
        assert_eq!((twice, after), (Ok(()), Ok(false)));
        rt.take(done).unwrap();
        rt.take(other).unwrap();
    });
}

#[test]
fn a_runtime_left_with_only_suspended_fibers_is_deadlocked_and_they_unwind() {
    Runtime::<2>::scope(|rt| {
        let s = rt
            .spawn_named("frozen", stack(), |fib| {
                let _ = fib.suspend(fib.id());
                "resumed?"
            })
            .unwrap();
        let Err(RunError::Deadlock(report)) = rt.run() else { panic!("expected a deadlock") };
        let fibers: Vec<_> = report.fibers().iter().map(|b| (b.name, b.reason)).collect();
        assert_eq!(fibers, [("frozen", WaitReason::Suspended)]);
        assert!(report.to_string().contains("suspended"), "{report}");
        assert!(matches!(rt.take(s), Err(JoinError::Cancelled)));
    });
}

#[test]
fn a_resumed_high_priority_fiber_runs_at_the_next_scheduling_point() {
    let l = StdMutex::new(Vec::new());
    let l = &l;
    Runtime::<2>::scope(|rt| {
        let high = rt
            .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
                log(l, "h:suspend");
                fib.suspend(fib.id()).unwrap();
                log(l, "h:back");
            })
            .unwrap();
        let id = high.id();
        rt.spawn_detached(stack(), move |fib| {
            log(l, "l:resume");
            fib.resume(id).unwrap(); // a scheduling point: high runs now
            log(l, "l:after");
        })
        .unwrap();
        rt.run().unwrap();
        rt.take(high).unwrap();
    });
    assert_eq!(joined(l), "h:suspend l:resume h:back l:after");
}

#[test]
fn checker_sees_suspended_fibers_as_consistent() {
    Runtime::<3>::scope(|rt| {
        let a = rt.spawn(stack(), |fib| fib.yield_now()).unwrap();
        let id = a.id();
        let h = rt
            .spawn(stack(), move |fib| {
                fib.suspend(id).unwrap();
                let before = fib.debug_check_invariants();
                fib.resume(id).unwrap();
                (before, fib.debug_check_invariants())
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), (Ok(()), Ok(())));
        rt.take(a).unwrap();
    });
}
