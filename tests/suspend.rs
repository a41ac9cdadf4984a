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

/// Review finding: a fiber suspended when its interrupt wait ended stopped
/// counting as "may be woken by an interrupt" only when resumed, so a
/// runtime whose fibers were all blocked idled forever instead of reporting
/// the deadlock the suspend docs promise.
#[test]
fn a_suspended_interrupt_waiter_is_a_deadlock_not_an_endless_idle() {
    use filament::IrqSignal;
    static SIG: IrqSignal = IrqSignal::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = Runtime::<2>::new();
        let w = rt.spawn_named("waiter", stack(), |fib| SIG.wait(fib)).unwrap();
        let id = w.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now(); // waiter blocks in SIG.wait
            fib.suspend(id).unwrap();
            SIG.notify_from_isr();
            fib.yield_now(); // the drain ends the wait: the waiter stops, suspended
        })
        .unwrap();
        let r = rt.run();
        let _ = tx.send(matches!(r, Err(RunError::Deadlock(_))));
    });
    let deadlock = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("run idled forever: the suspended fiber still counted as an interrupt waiter");
    assert!(deadlock);
}

/// Review finding: wake-only interrupt objects (an `IrqQueue` hands no value
/// to the fiber it wakes) woke a receiver whose suspension was pending; it
/// stopped without taking the value and another receiver waited on while
/// the value sat in the queue.
#[test]
fn an_interrupt_wake_skips_a_receiver_whose_suspension_is_pending() {
    use filament::IrqQueue;
    static Q: IrqQueue<u32, 4> = IrqQueue::new();
    let rt = Runtime::<3>::new();
    let a = rt.spawn_named("a", stack(), |fib| Q.recv(fib)).unwrap();
    let b = rt.spawn_named("b", stack(), |fib| (Q.recv(fib), fib.now())).unwrap();
    let aid = a.id();
    let boss = rt
        .spawn_named("boss", stack(), move |fib| {
            fib.yield_now(); // a and b block in recv
            fib.suspend(aid).unwrap();
            Q.try_send_from_isr(7).unwrap();
            fib.sleep(100);
            let left = Q.len();
            fib.resume(aid).unwrap();
            Q.try_send_from_isr(8).unwrap();
            left
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(boss).unwrap(), 0, "the value waited in the queue while b slept");
    assert_eq!(rt.take(b).unwrap(), (Ok(7), 0));
    assert_eq!(rt.take(a).unwrap(), Ok(8));
}

/// Review finding: a deadlock cancelled suspended fibers by overwriting what
/// their finished waits had given them: a mutex handed to one stayed locked
/// for good, a value sent to another was lost.
#[test]
fn a_deadlock_keeps_what_suspended_fibers_were_given() {
    use filament::sync::Mutex;
    let m = Mutex::new(7u32);
    let ch: Channel<String, 1> = Channel::new();
    let (m, ch) = (&m, &ch);
    let ids = std::sync::OnceLock::new();
    let ids = &ids;
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), move |fib| {
            let g = m.lock(fib).unwrap(); // first: w will wait for it
            fib.yield_now(); // w and r block
            let (wid, rid) = *ids.get().unwrap();
            fib.suspend(wid).unwrap();
            fib.suspend(rid).unwrap();
            drop(g); // handed to the suspended w
            ch.send(fib, "precious".to_string()).unwrap(); // moved to the suspended r
        })
        .unwrap();
        let w = rt.spawn(stack(), move |fib| m.lock(fib).map(|g| *g)).unwrap();
        let r = rt.spawn(stack(), move |fib| ch.recv(fib)).unwrap();
        ids.set((w.id(), r.id())).unwrap();
        // w and r stay suspended: a deadlock. Cancelling them must not lose
        // what they hold: the calls return it, the next blocking call unwinds.
        assert!(matches!(rt.run(), Err(RunError::Deadlock(_))));
        assert_eq!(rt.take(w).unwrap(), Ok(7));
        assert_eq!(rt.take(r).unwrap(), Ok("precious".to_string()));
        let later = rt.spawn(stack(), move |fib| m.try_lock(fib).map(|g| *g)).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(later).unwrap(), Ok(7), "the mutex was unlocked by its holder");
    });
}

/// Review finding: a fiber suspended while ready ignored the deadlock
/// cancellation (nothing read its wake), blocked again, was parked for good,
/// and the scoped runtime aborted the process when dropped.
#[test]
fn a_fiber_suspended_while_ready_unwinds_when_a_deadlock_cancels_it() {
    let sem = Semaphore::new(0);
    let sem = &sem;
    Runtime::<2>::scope(|rt| {
        let a = rt
            .spawn(stack(), move |fib| {
                fib.yield_now(); // suspended here, while ready
                sem.acquire(fib) // its next blocking call unwinds
            })
            .unwrap();
        let aid = a.id();
        rt.spawn_detached(stack(), move |fib| fib.suspend(aid).unwrap()).unwrap();
        assert!(matches!(rt.run(), Err(RunError::Deadlock(_))));
        assert!(matches!(rt.take(a), Err(JoinError::Cancelled)));
    });
}

/// Review finding: a never-started fiber that was suspended ran its closure
/// after the deadlock cancelled it, and its result came back `Ok`.
#[test]
fn a_never_started_suspended_fiber_cancelled_by_a_deadlock_never_runs() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static RAN: AtomicBool = AtomicBool::new(false);
    let rt = Runtime::<2>::new();
    let victim = rt
        .spawn(stack(), |_| {
            RAN.store(true, Ordering::SeqCst);
            42
        })
        .unwrap();
    let vid = victim.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(1).unwrap()), move |fib| {
            fib.suspend(vid).unwrap();
        })
        .unwrap();
    assert!(matches!(rt.run(), Err(RunError::Deadlock(_))));
    assert!(matches!(rt.take(victim), Err(JoinError::Cancelled)));
    assert!(!RAN.load(Ordering::SeqCst), "the cancelled closure ran");
    rt.take(boss).unwrap();
}

/// Review finding: `cancel`/`cancel_unwind` of a fiber suspended in
/// `suspend(self)` let that call return `Ok`.
#[test]
fn cancelling_a_self_suspended_fiber_fails_its_suspend_call() {
    for unwind in [false, true] {
        let rt = Runtime::<2>::new();
        let a = rt.spawn(stack(), |fib| fib.suspend(fib.id())).unwrap();
        let aid = a.id();
        rt.spawn_detached(
            stack(),
            move |fib| {
                if unwind { fib.cancel_unwind(aid).unwrap() } else { fib.cancel(aid).unwrap() }
            },
        )
        .unwrap();
        rt.run().unwrap();
        let got = rt.take(a);
        if unwind {
            assert!(matches!(got, Err(JoinError::Cancelled)), "{got:?}");
        } else {
            assert_eq!(got.unwrap(), Err(SuspendError::Cancelled));
        }
    }
}

/// Review finding: `cancel` of a fiber whose suspension was still pending
/// (it waited) let it stop again when its wait ended, though a cancelled
/// fiber is resumed so it can wind down.
#[test]
fn cancelling_a_waiter_with_a_pending_suspension_lets_it_wind_down() {
    let sem = Semaphore::new(0);
    let sem = &sem;
    Runtime::<2>::scope(|rt| {
        let v = rt.spawn(stack(), move |fib| sem.acquire(fib)).unwrap();
        let id = v.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now(); // v blocks
            fib.suspend(id).unwrap(); // pending: v still waits
            fib.cancel(id).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(v).unwrap(), Err(filament::sync::WaitError::Cancelled));
    });
}

/// Review C: `IrqQueue::recv` passed the wake on to a receiver whose
/// suspension was pending; a receiver that could take the value slept on.
#[test]
fn an_irq_queue_pass_on_skips_a_receiver_whose_suspension_is_pending() {
    use filament::IrqQueue;
    static Q: IrqQueue<u32, 4> = IrqQueue::new();
    let rt = Runtime::<4>::new();
    let a = rt.spawn_named("a", stack(), |fib| Q.recv(fib)).unwrap();
    let b = rt.spawn_named("b", stack(), |fib| Q.recv(fib)).unwrap();
    let c = rt.spawn_named("c", stack(), |fib| Q.recv(fib)).unwrap();
    let bid = b.id();
    let boss = rt
        .spawn_named("boss", stack(), move |fib| {
            fib.yield_now(); // a, b, c block in recv, in that order
            fib.suspend(bid).unwrap(); // pending: b still waits
            Q.try_send_from_isr(1).unwrap();
            Q.try_send_from_isr(2).unwrap();
            fib.sleep(100);
            let left = Q.len();
            fib.resume(bid).unwrap();
            Q.try_send_from_isr(3).unwrap();
            left
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(boss).unwrap(), 0, "a value waited while c slept");
    assert_eq!((rt.take(a).unwrap(), rt.take(c).unwrap(), rt.take(b).unwrap()), (Ok(1), Ok(2), Ok(3)));
}

/// Review C: a channel value or signal woke a select whose suspension was
/// pending; another select that could take it slept on.
#[test]
fn a_select_wake_skips_a_select_whose_suspension_is_pending() {
    use filament::IrqSignal;
    use filament::sync::select::{IrqCase, RecvCase, select};
    static SIG: IrqSignal = IrqSignal::new();
    let ch: Channel<u32, 4> = Channel::new();
    let ch = &ch;
    Runtime::<5>::scope(|rt| {
        let s1 = rt
            .spawn(stack(), move |fib| {
                let mut c = RecvCase::new(ch);
                select(fib, [&mut c]).map(|_| c.take())
            })
            .unwrap();
        let s2 = rt
            .spawn(stack(), move |fib| {
                let mut c = RecvCase::new(ch);
                select(fib, [&mut c]).map(|_| c.take())
            })
            .unwrap();
        let plain = rt.spawn(stack(), |fib| SIG.wait(fib)).unwrap();
        let sel = rt
            .spawn(stack(), |fib| {
                let mut c = IrqCase::new(&SIG);
                select(fib, [&mut c]).map(|_| c.count())
            })
            .unwrap();
        let (id1, pid) = (s1.id(), plain.id());
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now(); // all four block
            fib.suspend(id1).unwrap();
            fib.suspend(pid).unwrap();
            ch.try_send(fib, 42).unwrap(); // must wake s2, not the suspended s1
            SIG.notify_from_isr(); // must reach the select, not the suspended plain waiter
            fib.sleep(100);
            fib.resume(id1).unwrap();
            fib.resume(pid).unwrap();
            ch.try_send(fib, 43).unwrap();
            SIG.notify_from_isr();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(s2).unwrap(), Ok(Some(Ok(42))));
        assert_eq!(rt.take(sel).unwrap(), Ok(1));
        assert_eq!(rt.take(s1).unwrap(), Ok(Some(Ok(43))));
        assert_eq!(rt.take(plain).unwrap(), Ok(1));
    });
}

/// Review C: `cancel` of a fiber woken with a pending suspension (ready, not
/// yet run) let it stop as suspended, and its joiner deadlocked.
#[test]
fn cancel_withdraws_the_suspension_of_a_woken_fiber() {
    let ch: Channel<u32, 1> = Channel::new();
    let ch = &ch;
    Runtime::<2>::scope(|rt| {
        let w = rt.spawn(stack(), move |fib| (ch.recv(fib), ch.recv(fib))).unwrap();
        let wid = w.id();
        let boss = rt
            .spawn(stack(), move |fib| {
                fib.yield_now(); // w blocks in recv
                fib.suspend(wid).unwrap();
                ch.send(fib, 7).unwrap(); // w woken, not yet run
                fib.cancel(wid).unwrap();
                (fib.is_suspended(wid), fib.join(w).map_err(|e| e.to_string()))
            })
            .unwrap();
        rt.run().unwrap();
        let (suspended, joined) = rt.take(boss).unwrap();
        assert_eq!(suspended, Ok(false));
        assert_eq!(joined, Ok((Ok(7), Err(filament::sync::RecvError::Cancelled))));
    });
}

/// Review 9: a fiber blocked in `select` whose suspension was withdrawn
/// (`resume` while it still waited) missed what became ready meanwhile: the
/// sources skip a selector whose suspension is pending (it would take
/// nothing), and nothing looked at its cases again after the withdrawal.
/// `run` then reported a deadlock and cancelled it with the permit, the
/// event and the value still in the sources. Now the withdrawal wakes the
/// select, which looks again.
#[test]
fn a_select_whose_suspension_is_withdrawn_sees_what_became_ready() {
    use filament::sync::Event;
    use filament::sync::select::{self, AcquireCase, EventCase, RecvCase};

    static SEM: Semaphore = Semaphore::new(0);
    static EV: Event = Event::new();
    static CH: Channel<u32, 1> = Channel::new();
    let rt = Runtime::<'static, 4>::new();
    let on_sem = rt
        .spawn(stack(), |fib| {
            let mut a = AcquireCase::new(&SEM);
            let r = select::select(fib, [&mut a]);
            (r, a.is_acquired())
        })
        .ok()
        .unwrap();
    let on_event = rt
        .spawn(stack(), |fib| {
            let mut e = EventCase::new(&EV);
            select::select(fib, [&mut e])
        })
        .ok()
        .unwrap();
    let on_channel = rt
        .spawn(stack(), |fib| {
            let mut r = RecvCase::new(&CH);
            let fired = select::select(fib, [&mut r]);
            (fired, r.take())
        })
        .ok()
        .unwrap();
    let ids = [on_sem.id(), on_event.id(), on_channel.id()];
    rt.spawn_detached(stack(), move |fib| {
        for id in ids {
            fib.suspend(id).unwrap();
        }
        SEM.give(fib).unwrap();
        EV.set(fib).unwrap();
        CH.try_send(fib, 7).unwrap();
        for id in ids {
            fib.resume(id).unwrap();
        }
    })
    .ok()
    .unwrap();
    assert_eq!(rt.run(), Ok(()), "the selects must see what became ready while their suspension was pending");
    assert_eq!(rt.take(on_sem).ok().unwrap(), (Ok(0), true));
    assert_eq!(rt.take(on_event).ok().unwrap(), Ok(0));
    assert_eq!(rt.take(on_channel).ok().unwrap(), (Ok(0), Some(Ok(7))));
}
