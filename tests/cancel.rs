//! Cancelling another fiber: every blocking call returns its typed
//! `Cancelled` error (values handed back, nothing lost), later calls fail
//! without blocking until `clear_cancel`, a woken or suspended fiber keeps
//! what its wait gave it, and `cancel_unwind` unwinds.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, Ordering};

use filament::sync::select::{self, RecvCase, SelectError};
use filament::sync::{
    Barrier, Channel, Event, EventGroup, MessageBuffer, MessageError, Mutex, RecvError, Semaphore, SendError,
    StreamBuffer, StreamError, WaitError, Want,
};
use filament::{
    CancelError, Fiber, FiberId, IrqError, IrqNotify, IrqQueue, IrqSignal, JoinError, NotifyWaitError, Runtime, Stack,
    SuspendError, Take,
};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

/// Runs `victim` and a canceller that yields `settle` times (so the victim
/// blocks), cancels it, and returns the victim's result.
fn cancelled_while_blocked<'s, T: Send + 's>(victim: impl FnOnce(&Fiber<'s>) -> T + Send + 's) -> T {
    Runtime::<'s, 2>::scope(|rt| {
        let v = rt.spawn(stack(), victim).ok().unwrap();
        let id = v.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now();
            fib.yield_now();
            fib.cancel(id).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        rt.take(v).ok().unwrap()
    })
}

#[test]
fn every_blocking_primitive_returns_its_cancelled_error() {
    let m = Mutex::new(());
    let sem = Semaphore::new(0);
    let ev = Event::new();
    let bar = Barrier::new(2);
    let ch: Channel<u32, 1> = Channel::new();
    let ch2: Channel<u32, 1> = Channel::new();
    let ch2 = &ch2;
    let eg = EventGroup::new();
    let sig = IrqSignal::new();
    let q: IrqQueue<u32, 4> = IrqQueue::new();
    let note = IrqNotify::new();
    let sb: StreamBuffer<16> = StreamBuffer::new();
    let mb: MessageBuffer<32> = MessageBuffer::new();
    let (m, sem, ev, bar, ch, eg, sig, q, note, sb, mb) = (&m, &sem, &ev, &bar, &ch, &eg, &sig, &q, &note, &sb, &mb);

    // The mutex: held by a fiber that outlives the cancel.
    let locked = Runtime::<3>::scope(|rt| {
        rt.spawn_detached(stack(), move |fib| {
            let _g = m.lock(fib).unwrap();
            for _ in 0..4 {
                fib.yield_now();
            }
        })
        .unwrap();
        let v = rt.spawn(stack(), move |fib| m.lock(fib).map(|_| ())).unwrap();
        let id = v.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now();
            fib.cancel(id).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        rt.take(v).unwrap()
    });
    assert_eq!(locked, Err(WaitError::Cancelled));

    assert_eq!(cancelled_while_blocked(move |fib| sem.acquire(fib)), Err(WaitError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| ev.wait(fib)), Err(WaitError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| bar.wait(fib).map(|_| ())), Err(WaitError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| ch.recv(fib)), Err(RecvError::Cancelled));
    let sent = cancelled_while_blocked(move |fib| {
        ch.send(fib, 1).unwrap(); // fills it
        ch.send(fib, 2)
    });
    assert!(matches!(sent, Err(SendError::Cancelled(2))), "{sent:?}: the value comes back");
    assert_eq!(cancelled_while_blocked(move |fib| eg.wait(fib, Want::all(1))), Err(WaitError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| sig.wait(fib)), Err(IrqError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| q.recv(fib)), Err(WaitError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| note.wait(fib)), Err(IrqError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| fib.notify_take(Take::All)), Err(NotifyWaitError::Cancelled));
    assert_eq!(cancelled_while_blocked(move |fib| fib.notify_wait(0, 0)), Err(NotifyWaitError::Cancelled));
    assert_eq!(
        cancelled_while_blocked(move |fib| {
            let mut buf = [0u8; 4];
            sb.receive(fib, &mut buf)
        }),
        Err(StreamError::Cancelled)
    );
    assert_eq!(
        cancelled_while_blocked(move |fib| {
            let mut buf = [0u8; 8];
            mb.receive(fib, &mut buf)
        }),
        Err(MessageError::Cancelled)
    );
    let chosen = cancelled_while_blocked(move |fib| {
        let mut case = RecvCase::new(ch2);
        select::select(fib, [&mut case])
    });
    assert_eq!(chosen, Err(SelectError::Cancelled));
    let slept = cancelled_while_blocked(move |fib| {
        fib.sleep(1_000);
        fib.now()
    });
    assert!(slept < 1_000, "a cancelled sleep returns early (woke at {slept})");
}

#[test]
fn a_cancelled_fiber_fails_at_once_until_it_clears_the_mark() {
    let l = StdMutex::new(Vec::<String>::new());
    let sem = Semaphore::new(0);
    let (l, sem) = (&l, &sem);
    Runtime::<2>::scope(|rt| {
        let v = rt
            .spawn(stack(), move |fib| {
                let first = sem.acquire(fib);
                let again = sem.acquire_timeout(fib, 50); // fails without blocking
                let t = fib.now();
                fib.sleep(10); // returns at once
                let slept = fib.now() - t;
                fib.yield_now(); // still yields
                l.lock().unwrap().push("v:yielded".into());
                let was = (fib.is_cancelled(), fib.clear_cancel(), fib.is_cancelled());
                let cleaned = sem.acquire(fib); // blocks normally again
                (first, again, slept, was, cleaned)
            })
            .unwrap();
        let id = v.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now();
            fib.cancel(id).unwrap();
            fib.cancel(id).unwrap(); // again: no change
            fib.yield_now();
            l.lock().unwrap().push("c:after".into());
            sem.release(fib, 1).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        let (first, again, slept, was, cleaned) = rt.take(v).unwrap();
        assert_eq!(first, Err(WaitError::Cancelled));
        assert_eq!(again, Err(WaitError::Cancelled));
        assert_eq!(slept, 0);
        assert_eq!(was, (true, true, false));
        assert_eq!(cleaned, Ok(()));
    });
    // The cancelled fiber's yield lets the canceller finish (releasing a
    // permit), then its cleared acquire takes that permit.
    assert_eq!(l.lock().unwrap().join(" "), "c:after v:yielded");
}

#[test]
fn a_woken_fiber_keeps_its_value_and_only_its_next_call_fails() {
    let ch: Channel<u32, 1> = Channel::new();
    let ch = &ch;
    Runtime::<2>::scope(|rt| {
        let v = rt.spawn(stack(), move |fib| (ch.recv(fib), ch.recv(fib))).unwrap();
        let id = v.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now(); // the receiver blocks
            ch.send(fib, 7).unwrap(); // handed over: the receiver is ready
            fib.cancel(id).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(v).unwrap(), (Ok(7), Err(RecvError::Cancelled)));
    });
}

#[test]
fn cancelling_a_suspended_fiber_resumes_it_with_what_its_wait_gave_it() {
    let sem = Semaphore::new(0);
    let sem = &sem;
    Runtime::<2>::scope(|rt| {
        let v = rt.spawn(stack(), move |fib| (sem.acquire(fib), sem.acquire(fib), fib.suspend(fib.id()))).unwrap();
        let id = v.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now();
            fib.suspend(id).unwrap();
            sem.release(fib, 1).unwrap(); // handed to the suspended waiter
            fib.yield_now();
            fib.cancel(id).unwrap(); // resumes it
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(v).unwrap(), (Ok(()), Err(WaitError::Cancelled), Err(SuspendError::Cancelled)));
    });
}

#[test]
fn a_joiner_cancelled_gets_its_handle_back_and_may_join_after_clearing() {
    Runtime::<3>::scope(|rt| {
        let target = rt
            .spawn(stack(), |fib| {
                for _ in 0..4 {
                    fib.yield_now();
                }
                42
            })
            .unwrap();
        let joiner = rt
            .spawn(stack(), move |fib| {
                let handle = match fib.join(target) {
                    Err(JoinError::JoinCancelled(h)) => h,
                    other => panic!("expected JoinCancelled, got {other:?}"),
                };
                fib.clear_cancel();
                fib.join(handle).unwrap()
            })
            .unwrap();
        let id = joiner.id();
        rt.spawn_detached(stack(), move |fib| fib.cancel(id).unwrap()).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(joiner).unwrap(), 42);
    });
}

#[test]
fn cancel_unwind_runs_destructors_and_the_join_says_cancelled() {
    static DROPPED: AtomicBool = AtomicBool::new(false);
    struct Flag;
    impl Drop for Flag {
        fn drop(&mut self) {
            DROPPED.store(true, Ordering::Relaxed);
        }
    }
    let sem = Semaphore::new(0);
    let sem = &sem;
    Runtime::<2>::scope(|rt| {
        let v = rt
            .spawn(stack(), move |fib| {
                let _f = Flag;
                let _ = sem.acquire(fib);
                "not reached"
            })
            .unwrap();
        let id = v.id();
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now();
            fib.cancel_unwind(id).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert!(matches!(rt.take(v), Err(JoinError::Cancelled)));
    });
    assert!(DROPPED.load(Ordering::Relaxed));
}

#[test]
fn cancelling_nobody_is_a_typed_error_and_self_cancel_takes_effect_at_the_next_wait() {
    Runtime::<2>::scope(|rt| {
        let gone = rt.spawn(stack(), |fib: &Fiber| fib.id()).unwrap();
        let gone_id: FiberId = gone.id();
        let h = rt
            .spawn(stack(), move |fib| {
                fib.yield_now();
                let nobody = fib.cancel(gone_id);
                fib.cancel(fib.id()).unwrap();
                let sem = Semaphore::new(0);
                let leaked: &'static Semaphore = Box::leak(Box::new(sem));
                (nobody, leaked.acquire(fib))
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), (Err(CancelError::NoSuchFiber(gone_id)), Err(WaitError::Cancelled)));
        rt.take(gone).unwrap();
    });
}

#[test]
fn checker_and_priority_loans_survive_a_cancelled_mutex_waiter() {
    use filament::{Priority, SpawnOptions};
    let m = Mutex::new(());
    let go = Semaphore::new(0);
    let (m, go) = (&m, &go);
    Runtime::<3>::scope(|rt| {
        let low = rt
            .spawn(stack(), move |fib| {
                let _g = m.lock(fib).unwrap();
                go.acquire(fib).unwrap(); // holds the lock, blocked
                fib.priority()
            })
            .unwrap();
        let low_id = low.id();
        let high = rt
            .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
                fib.set_priority(Priority::new(0).unwrap());
                fib.yield_now(); // low takes the lock
                fib.set_priority(Priority::new(3).unwrap());
                m.lock(fib).map(|_| ())
            })
            .unwrap();
        let high_id = high.id();
        let canceller = rt
            .spawn(stack(), move |fib| {
                fib.yield_now(); // high blocks on the mutex, lending low level 3
                let boosted = fib.fiber_info(low_id).unwrap().priority;
                fib.cancel(high_id).unwrap();
                let after = fib.fiber_info(low_id).unwrap().priority;
                let check = fib.debug_check_invariants();
                go.release(fib, 1).unwrap();
                (boosted, after, check)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(canceller).unwrap(), (Priority::new(3).unwrap(), Priority::new(0).unwrap(), Ok(())));
        assert_eq!(rt.take(high).unwrap(), Err(WaitError::Cancelled));
        assert_eq!(rt.take(low).unwrap(), Priority::new(0).unwrap());
    });
}
