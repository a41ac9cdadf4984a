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

/// Review 10 (e): the drain woke one receiver for one interrupt value (it
/// hands the value to nobody: the receiver takes it when it runs), then a
/// higher-priority fiber suspended that receiver before it ran: the only
/// wake-up stopped with it, the other receiver slept on with the value in
/// the queue (with `run`, the runtime idled forever: `run_for` bounds it).
/// The same for `IrqSignal` (its count banked for the woken waiter) and
/// `IrqNotify`.
fn a_suspended_woken_receiver_passes_the_wake_on(
    recv: fn(&filament::Fiber<'static>) -> u64,
    send: fn(u64),
    pending: fn() -> u64,
) {
    use filament::FiberState;
    use filament::host::HostClock;
    let rt = Runtime::<'static, 3>::new();
    let r1 = rt.spawn_named("r1", stack(), recv).unwrap();
    let r2 = rt.spawn_named("r2", stack(), recv).unwrap();
    let id1 = r1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1); // both receivers block (r1 first)
            send(7);
            fib.yield_now(); // the drain (this yield's poll) wakes r1
            assert_eq!(fib.fiber_info(id1).unwrap().state, FiberState::Ready, "r1 woken, not run");
            fib.suspend(id1).unwrap();
            fib.sleep(10);
            let left = pending();
            fib.resume(id1).unwrap();
            send(8);
            left
        })
        .unwrap();
    let run = rt.run_for(&mut HostClock::new(), 3_000);
    assert!(run.is_ok(), "the wake stopped with the suspended receiver: {run:?}");
    assert_eq!(rt.take(boss).unwrap(), 0, "the first value waited while r2 slept");
    assert_eq!((rt.take(r2).unwrap(), rt.take(r1).unwrap()), (7, 8));
}

#[test]
fn a_suspended_woken_irq_queue_receiver_passes_the_wake_on() {
    use filament::IrqQueue;
    static Q: IrqQueue<u64, 4> = IrqQueue::new().named("q");
    a_suspended_woken_receiver_passes_the_wake_on(
        |fib| Q.recv(fib).unwrap(),
        |v| Q.try_send_from_isr(v).unwrap(),
        || Q.len() as u64,
    );
}

#[test]
fn a_suspended_woken_irq_signal_waiter_passes_the_wake_on() {
    use filament::IrqSignal;
    static S: IrqSignal = IrqSignal::new().named("s");
    a_suspended_woken_receiver_passes_the_wake_on(
        // The count stands for the value: 7 notifications, then 8.
        |fib| S.wait(fib).unwrap(),
        |v| (0..v).for_each(|_| S.notify_from_isr()),
        || S.pending(),
    );
}

#[test]
fn a_suspended_woken_irq_notify_waiter_passes_the_wake_on() {
    use filament::IrqNotify;
    static N: IrqNotify = IrqNotify::new().named("n");
    a_suspended_woken_receiver_passes_the_wake_on(
        |fib| u64::from(N.wait(fib).unwrap()),
        |v| N.notify_from_isr(v as u32),
        || u64::from(N.pending()),
    );
}

/// Review 13: one permit (or value) woke the first of two selects on one
/// source (F1) — a select is handed nothing: it takes what is there when it
/// runs — then a higher-priority fiber suspended F1 before it ran. The wake
/// stopped with it: F2 slept on with the permit counted / the value in the
/// channel (with nobody resuming F1, `run` reported F2 deadlocked "on select
/// on semaphore"). Now the suspension passes the wake on, as the select's
/// own return does: F2 takes the first one at once, F1 looks again when
/// resumed and takes the second.
fn a_suspended_woken_select_passes_the_wake_on(
    select: fn(&filament::Fiber<'static>) -> u64,
    give: fn(&filament::Fiber<'static>, u64),
    left: fn(&filament::Fiber<'static>) -> u64,
) {
    use filament::FiberState;
    use filament::host::HostClock;
    let rt = Runtime::<'static, 3>::new();
    let f1 = rt.spawn_named("f1", stack(), select).unwrap();
    let f2 = rt.spawn_named("f2", stack(), select).unwrap();
    let id1 = f1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1); // both selects block (f1 first)
            give(fib, 7);
            fib.yield_now(); // an interrupt give: the drain (this yield's poll) wakes f1
            assert_eq!(fib.fiber_info(id1).unwrap().state, FiberState::Ready, "f1 woken, not run");
            fib.suspend(id1).unwrap();
            fib.sleep(10);
            let left = left(fib);
            fib.resume(id1).unwrap();
            give(fib, 8);
            left
        })
        .unwrap();
    let run = rt.run_for(&mut HostClock::new(), 3_000);
    assert!(run.is_ok(), "the wake stopped with the suspended select: {run:?}");
    assert_eq!(rt.take(boss).unwrap(), 0, "the first one waited while f2 slept");
    assert_eq!((rt.take(f2).unwrap(), rt.take(f1).unwrap()), (7, 8));
}

/// A select on one semaphore: 7 for a permit taken (8 for the second), the
/// same for both, so the permit count stands for the value.
fn select_permit(
    fib: &filament::Fiber<'static>,
    sem: &'static Semaphore,
    second: &'static std::sync::atomic::AtomicBool,
) -> u64 {
    use filament::sync::select::{AcquireCase, select};
    let mut c = AcquireCase::new(sem);
    select(fib, [&mut c]).unwrap();
    assert!(c.is_acquired());
    if second.swap(true, std::sync::atomic::Ordering::Relaxed) { 8 } else { 7 }
}

#[test]
fn a_suspended_woken_select_on_a_released_semaphore_passes_the_wake_on() {
    use std::sync::atomic::AtomicBool;
    static S: Semaphore = Semaphore::new(0).named("s");
    static SECOND: AtomicBool = AtomicBool::new(false);
    a_suspended_woken_select_passes_the_wake_on(
        |fib| select_permit(fib, &S, &SECOND),
        |fib, _| S.release(fib, 1).unwrap(),
        |fib| S.available(fib).unwrap() as u64,
    );
}

#[test]
fn a_suspended_woken_select_on_an_interrupt_given_semaphore_passes_the_wake_on() {
    use std::sync::atomic::AtomicBool;
    static S: Semaphore = Semaphore::new(0).isr_capable().named("s");
    static SECOND: AtomicBool = AtomicBool::new(false);
    a_suspended_woken_select_passes_the_wake_on(
        |fib| select_permit(fib, &S, &SECOND),
        |_, _| S.give_from_isr(),
        |fib| S.available(fib).unwrap() as u64,
    );
}

#[test]
fn a_suspended_woken_select_on_a_channel_passes_the_wake_on() {
    use filament::sync::select::{RecvCase, select};
    static CH: Channel<u64, 4> = Channel::new().named("ch");
    a_suspended_woken_select_passes_the_wake_on(
        |fib| {
            let mut c = RecvCase::new(&CH);
            select(fib, [&mut c]).unwrap();
            c.take().unwrap().unwrap()
        },
        |fib, v| CH.send(fib, v).unwrap(),
        |fib| CH.len(fib).unwrap() as u64,
    );
}

/// The same with a timeout (longer than the suspension: a timeout that
/// ended f2's wait first would hide the lost wake) and a second case: the
/// source that is ready is passed on, whichever case it is.
#[test]
fn a_suspended_woken_timed_select_of_two_cases_passes_the_wake_on() {
    use filament::sync::select::{AcquireCase, RecvCase, select_timeout};
    static S: Semaphore = Semaphore::new(0).named("s");
    static CH: Channel<u64, 4> = Channel::new().named("ch");
    a_suspended_woken_select_passes_the_wake_on(
        |fib| {
            let mut a = AcquireCase::new(&S);
            let mut r = RecvCase::new(&CH);
            match select_timeout(fib, [&mut a, &mut r], 1_000) {
                Ok(0) => 100,
                Ok(_) => r.take().unwrap().unwrap(),
                Err(e) => panic!("{e}"),
            }
        },
        |fib, v| CH.send(fib, v).unwrap(),
        |fib| CH.len(fib).unwrap() as u64 + S.available(fib).unwrap() as u64,
    );
}

/// Review 13, the neighbours of suspend: `cancel` of a select woken and not
/// yet run leaves it ready (it runs and takes what woke it, as a plain waiter
/// keeps what it was handed), and `abort_wait` does nothing to it (it has no
/// deadline any more): neither strands the wake.
#[test]
fn a_woken_select_cancelled_before_it_ran_still_takes_what_woke_it() {
    use filament::FiberState;
    use filament::sync::select::{AcquireCase, select};
    static S: Semaphore = Semaphore::new(0).named("s");
    let rt = Runtime::<'static, 3>::new();
    let sel = |fib: &filament::Fiber<'static>| {
        let mut c = AcquireCase::new(&S);
        let r = select(fib, [&mut c]);
        (r, c.is_acquired(), fib.is_cancelled())
    };
    let f1 = rt.spawn_named("f1", stack(), sel).unwrap();
    let f2 = rt.spawn_named("f2", stack(), sel).unwrap();
    let id1 = f1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1); // both selects block (f1 first)
            S.release(fib, 1).unwrap();
            assert_eq!(fib.fiber_info(id1).unwrap().state, FiberState::Ready, "f1 woken, not run");
            assert!(!fib.abort_wait(id1), "a woken fiber has no wait to abort");
            fib.cancel(id1).unwrap();
            fib.sleep(5);
            let left = S.available(fib).unwrap();
            S.release(fib, 1).unwrap();
            left
        })
        .unwrap();
    assert_eq!(rt.run(), Ok(()));
    assert_eq!(rt.take(boss).unwrap(), 0);
    assert_eq!(rt.take(f1).unwrap(), (Ok(0), true, true));
    assert_eq!(rt.take(f2).unwrap(), (Ok(0), true, false));
}

/// The reviewer's form of review 13: nobody resumes the suspended select.
/// The runtime was reported deadlocked with f2 "on select on semaphore"
/// although a permit was counted; now f2 takes it and only the suspended f1
/// is left (reported, and cancelled: its select unwinds cleanly).
#[test]
fn a_never_resumed_woken_select_leaves_only_itself_deadlocked() {
    use filament::sync::select::{AcquireCase, select};
    static S: Semaphore = Semaphore::new(0).named("s");
    let rt = Runtime::<'static, 3>::new();
    let sel = |fib: &filament::Fiber<'static>| {
        let mut c = AcquireCase::new(&S);
        select(fib, [&mut c]).map(|i| (i, c.is_acquired()))
    };
    let f1 = rt.spawn_named("f1", stack(), sel).unwrap();
    let f2 = rt.spawn_named("f2", stack(), sel).unwrap();
    let id1 = f1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1);
            S.release(fib, 1).unwrap();
            fib.suspend(id1).unwrap();
            fib.sleep(300);
            S.available(fib).unwrap()
        })
        .unwrap();
    let Err(RunError::Deadlock(report)) = rt.run() else { panic!("expected f1 left suspended") };
    let fibers: Vec<_> = report.fibers().iter().map(|b| (b.name, b.reason)).collect();
    assert_eq!(fibers, [("f1", WaitReason::Suspended)], "{report}");
    assert_eq!(rt.take(boss).unwrap(), 0);
    assert_eq!(rt.take(f2).unwrap(), Ok((0, true)));
    assert!(matches!(rt.take(f1), Err(JoinError::Cancelled)));
}

/// Review 14: a suspension that passes a select's wake on to a fiber of a
/// higher level lets it run at once (as `resume` does), not at the
/// suspender's next scheduling point.
#[test]
fn a_suspension_that_wakes_a_higher_selector_switches_to_it() {
    use filament::sync::Semaphore;
    use filament::sync::select::{AcquireCase, select};
    use std::sync::Mutex;
    static S: Semaphore = Semaphore::new(0);
    static LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let rt = Box::new(Runtime::<'static, 3>::new());
    let f1 = rt
        .spawn_detached(Stack::host(64 * 1024).unwrap(), |fib| {
            let mut a = AcquireCase::new(&S);
            if select(fib, [&mut a]).is_ok() {
                LOG.lock().unwrap().push("f1 took");
            }
        })
        .unwrap();
    let f2 = rt
        .spawn_detached(Stack::host(64 * 1024).unwrap(), |fib| {
            let mut a = AcquireCase::new(&S);
            select(fib, [&mut a]).unwrap();
            LOG.lock().unwrap().push("f2 (higher) took");
        })
        .unwrap();
    rt.spawn_detached(Stack::host(64 * 1024).unwrap(), move |fib| {
        fib.yield_now(); // f1, then f2, block in their selects
        assert!(fib.set_priority_of(f2, filament::Priority::new(1).unwrap()));
        S.release(fib, 1).unwrap(); // wakes f1 (first, level 0)
        fib.suspend(f1).unwrap(); // passes the wake on to f2 (level 1)
        LOG.lock().unwrap().push("suspender after suspend");
        fib.resume(f1).unwrap();
        S.release(fib, 1).unwrap();
    })
    .unwrap();
    rt.run().unwrap();
    assert_eq!(*LOG.lock().unwrap(), ["f2 (higher) took", "suspender after suspend", "f1 took"]);
}
