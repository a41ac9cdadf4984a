//! Small RTOS services (issue 14, "also in reach"): channel peek, send to
//! front, overwrite, clear and free places; bounded (binary) semaphores;
//! periodic sleep without drift; statistics from inside a fiber.

use filament::sync::{Channel, GiveError, Semaphore, TryRecvError, TrySendError};
use filament::{Runtime, Stack};

fn stack() -> Stack<'static> {
    Stack::host(128 * 1024).expect("mmap stack")
}

fn in_fiber<T: Send + 'static>(f: impl FnOnce(&filament::Fiber<'static>) -> T + Send + 'static) -> T {
    let rt = Box::new(Runtime::<'static, 4>::new());
    let h = rt.spawn(stack(), f).unwrap();
    rt.run().unwrap();
    rt.take(h).unwrap()
}

#[test]
fn channel_peek_front_overwrite_clear_and_spaces() {
    static Q: Channel<u32, 3> = Channel::new();
    let got = in_fiber(|fib| {
        assert_eq!(Q.try_peek(fib), Err(TryRecvError::Empty));
        Q.try_send(fib, 1).unwrap();
        Q.try_send(fib, 2).unwrap();
        assert_eq!(Q.try_peek(fib), Ok(1), "peek leaves the value queued");
        assert_eq!(Q.spaces(fib), Ok(1));
        Q.try_send_front(fib, 0).unwrap(); // urgent: received first
        assert_eq!(Q.spaces(fib), Ok(0));
        assert!(matches!(Q.try_send_front(fib, 9), Err(TrySendError::Full(9))));
        // Full: overwrite replaces the newest value and hands it back.
        assert_eq!(Q.overwrite(fib, 7), Ok(Some(2)));
        let order: Vec<u32> = (0..3).map(|_| Q.try_recv(fib).unwrap()).collect();
        // Not full: overwrite is a plain send.
        assert_eq!(Q.overwrite(fib, 5), Ok(None));
        Q.try_send(fib, 6).unwrap();
        assert_eq!(Q.clear(fib), Ok(2));
        assert_eq!(Q.len(fib), Ok(0));
        order
    });
    assert_eq!(got, [0, 1, 7]);
}

#[test]
fn clearing_a_full_channel_lets_blocked_senders_in_fifo() {
    static Q: Channel<u32, 1> = Channel::new();
    let rt = Box::new(Runtime::<'static, 4>::new());
    Q.try_send_outside(100).unwrap();
    let senders: Vec<_> = (1..=2)
        .map(|v| rt.spawn(stack(), move |fib| Q.send(fib, v).map_err(|e| e.into_inner())))
        .collect::<Result<_, _>>()
        .unwrap();
    let clearer = rt
        .spawn(stack(), |fib| {
            fib.yield_now(); // both senders block on the full channel first
            let dropped = Q.clear(fib).unwrap();
            let first = Q.recv(fib).unwrap();
            let second = Q.recv(fib).unwrap();
            (dropped, first, second)
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(clearer).unwrap(), (1, 1, 2));
    for s in senders {
        assert_eq!(rt.take(s).unwrap(), Ok(()));
    }
}

#[test]
fn a_binary_semaphore_refuses_a_second_give() {
    static BIN: Semaphore = Semaphore::bounded(0, 1);
    let rt = Box::new(Runtime::<'static, 2>::new());
    let taker = rt.spawn(stack(), |fib| BIN.acquire(fib)).unwrap();
    let giver = rt
        .spawn(stack(), |fib| {
            let first = BIN.give(fib); // to the waiting taker
            let second = BIN.give(fib); // into the count
            let third = BIN.give(fib); // at the maximum
            (first, second, third, BIN.available(fib).unwrap())
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(taker).unwrap(), Ok(()));
    assert_eq!(rt.take(giver).unwrap(), (Ok(()), Ok(()), Err(GiveError::Full), 1));
}

#[test]
fn periodic_sleep_does_not_drift_and_reports_overruns() {
    let rounds = in_fiber(|fib| {
        let mut t = fib.now();
        let mut out = Vec::new();
        for round in 0..4u64 {
            // Round 2 overruns: it sleeps 25 ticks inside a 10-tick period.
            if round == 2 {
                fib.sleep(25);
            }
            let waited = fib.sleep_periodic(&mut t, 10);
            out.push((fib.now(), waited));
        }
        out
    });
    // 10, 20, then round 2 ends at 45 > 30: no wait; round 3's deadline (40)
    // is past too; the schedule keeps its own grid (t advances by 10).
    assert_eq!(rounds, [(10, true), (20, true), (45, false), (45, false)]);
}

#[test]
fn stats_are_readable_from_inside_a_fiber() {
    let (live, spawns) = in_fiber(|fib| {
        let _child = fib.spawn(stack(), |_| ()).unwrap();
        let s = fib.stats();
        (s.live, s.spawns)
    });
    assert_eq!((live, spawns), (2, 2));
}

static MAILBOX: Channel<u32, 1> = Channel::new();

/// `abort_wait` ends another fiber's sleep or timed wait at once, exactly as
/// its deadline would (a `_timeout` call fails with `TimedOut`, nothing is
/// lost); a wait without a deadline is not touched.
#[test]
fn abort_wait_ends_a_sleep_or_timed_wait_early() {
    let rt = Box::new(Runtime::<'static, 4>::new());
    let sleeper = rt
        .spawn(stack(), |fib| {
            fib.sleep(1_000_000);
            fib.now()
        })
        .unwrap();
    let timed = rt.spawn(stack(), |fib| MAILBOX.recv_timeout(fib, 1_000_000)).unwrap();
    let untimed = rt.spawn(stack(), |fib| MAILBOX.recv(fib)).unwrap();
    let (sid, tid, uid) = (sleeper.id(), timed.id(), untimed.id());
    let aborter = rt
        .spawn(stack(), move |fib| {
            fib.yield_now(); // the three block first
            let r = (fib.abort_wait(sid), fib.abort_wait(tid), fib.abort_wait(uid), fib.abort_wait(fib.id()));
            MAILBOX.send(fib, 7).unwrap(); // the untimed receiver gets it
            r
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(aborter).unwrap(), (true, true, false, false));
    assert!(rt.take(sleeper).unwrap() < 1_000_000, "the sleep ended early");
    assert_eq!(rt.take(timed).unwrap(), Err(filament::sync::RecvError::TimedOut));
    assert_eq!(rt.take(untimed).unwrap(), Ok(7));
}

/// The holder may lock a recursive mutex again; others wait until its last
/// guard is gone and then get it in FIFO order.
#[test]
fn a_recursive_mutex_is_reentrant_for_its_holder_only() {
    use std::sync::{Arc, Mutex as StdMutex};
    static R: filament::sync::RecursiveMutex<StdMutex<Vec<&'static str>>> =
        filament::sync::RecursiveMutex::new(StdMutex::new(Vec::new()));
    let rt = Box::new(Runtime::<'static, 4>::new());
    let order = Arc::new(StdMutex::new(Vec::new()));
    let o = order.clone();
    let holder = rt
        .spawn(stack(), move |fib| {
            let outer = R.lock(fib).unwrap();
            let inner = R.lock(fib).unwrap(); // no deadlock: same fiber
            assert!(R.try_lock(fib).is_ok());
            outer.lock().unwrap().push("holder");
            fib.yield_now(); // the others queue up meanwhile
            drop(inner);
            fib.yield_now(); // still held (one level left): nobody gets in
            o.lock().unwrap().push("holder releases");
            drop(outer);
        })
        .unwrap();
    let mut others = Vec::new();
    for name in ["a", "b"] {
        let o = order.clone();
        others.push(
            rt.spawn(stack(), move |fib| {
                assert!(matches!(R.try_lock(fib), Err(filament::sync::TryError::WouldBlock)));
                let g = R.lock(fib).unwrap();
                g.lock().unwrap().push(name);
                o.lock().unwrap().push(name);
            })
            .unwrap(),
        );
    }
    rt.run().unwrap();
    rt.take(holder).unwrap();
    for h in others {
        rt.take(h).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["holder releases", "a", "b"]);
}
