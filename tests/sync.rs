//! The `sync` primitives: FIFO hand-off, timeouts, close semantics, deadlock
//! reports, runtime binding, long runs without lost wake-ups, ISR wake-ups.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use filament::host::HostClock;
use filament::sync::{
    Barrier, Channel, Event, Mutex, RecvError, Semaphore, SendError, TryError, TryRecvError, TrySendError, WaitError,
    WrongRuntime,
};
use filament::{Fiber, IrqSignal, JoinError, RunError, Runtime, Stack, WaitReason};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

fn addr<T>(x: &T) -> usize {
    x as *const T as usize
}

fn log(l: &StdMutex<Vec<String>>, s: impl Into<String>) {
    l.lock().unwrap().push(s.into());
}

fn joined(l: &StdMutex<Vec<String>>) -> String {
    l.lock().unwrap().join(" ")
}

#[test]
fn primitives_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Mutex<Vec<u8>>>();
    both::<Semaphore>();
    both::<Channel<String, 4>>();
    both::<Event>();
    both::<Barrier>();
}

// ---------------------------------------------------------------- Mutex

#[test]
fn mutex_hands_off_fifo_and_try_lock_cannot_barge() {
    let m = Mutex::new(Vec::new());
    let trylock_failures = AtomicUsize::new(0);
    Runtime::<8>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            let mut g = m.lock(fib).unwrap();
            g.push("holder".to_string());
            for _ in 0..3 {
                fib.yield_now(); // waiters queue up meanwhile
            }
        })
        .unwrap();
        for i in 1..=4 {
            let m = &m;
            rt.spawn_detached(stack(), move |fib| m.lock(fib).unwrap().push(format!("w{i}"))).ok().unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            fib.yield_now(); // every waiter is queued by now
            loop {
                match m.try_lock(fib) {
                    Ok(mut g) => {
                        g.push("barger".to_string());
                        break;
                    }
                    Err(TryError::WouldBlock) => {
                        trylock_failures.fetch_add(1, Ordering::Relaxed);
                        fib.yield_now();
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(m.into_inner().join(" "), "holder w1 w2 w3 w4 barger");
    assert!(trylock_failures.load(Ordering::Relaxed) >= 4);
}

#[test]
fn mutex_lock_timeout_times_out_and_leaves_the_queue() {
    let m = Mutex::new(0u32);
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            let _g = m.lock(fib).unwrap();
            fib.sleep(100);
            log(&l, format!("holder releases at {}", fib.now()));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            let t0 = fib.now();
            assert_eq!(m.lock_timeout(fib, 10).map(|_| ()), Err(WaitError::TimedOut));
            log(&l, format!("timed out after {}", fib.now() - t0));
            assert_eq!(m.lock_timeout(fib, 0).map(|_| ()), Err(WaitError::TimedOut));
            // A waiter that does get it in time.
            let g = m.lock_timeout(fib, 1000).unwrap();
            log(&l, format!("got it at {}", fib.now()));
            drop(g);
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "timed out after 10 holder releases at 100 got it at 100");
}

#[test]
fn mutex_guard_derefs_and_get_mut_works() {
    let mut m = Mutex::new(String::from("a"));
    Runtime::<2>::scope(|rt| {
        let m = &m;
        rt.spawn_detached(stack(), move |fib| {
            let mut g = m.lock(fib).unwrap();
            g.push('b');
            assert_eq!(&*g, "ab");
            assert_eq!(format!("{g}"), "ab");
        })
        .unwrap();
        rt.run().unwrap();
    });
    m.get_mut().push('c');
    assert_eq!(m.into_inner(), "abc");
}

#[test]
fn mutex_million_contended_increments_lose_nothing() {
    const FIBERS: usize = 8;
    const EACH: usize = 125_000;
    let m = Mutex::new(0usize);
    let inside = AtomicUsize::new(0);
    Runtime::<FIBERS>::scope(|rt| {
        for i in 0..FIBERS {
            let (m, inside) = (&m, &inside);
            rt.spawn_detached(stack(), move |fib| {
                for k in 0..EACH {
                    let mut g = m.lock(fib).unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two holders");
                    if (k + i) % 3 == 0 {
                        fib.yield_now(); // hold it across a switch: others queue up
                    }
                    *g += 1;
                    inside.fetch_sub(1, Ordering::Relaxed);
                }
            })
            .unwrap();
        }
        rt.run().unwrap();
    });
    assert_eq!(m.into_inner(), FIBERS * EACH);
}

// ---------------------------------------------------------------- Semaphore

#[test]
fn semaphore_fifo_hand_off_timeouts_and_release_many() {
    let s = Semaphore::new(2);
    let l = StdMutex::new(Vec::new());
    Runtime::<8>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            s.acquire(fib).unwrap();
            s.acquire(fib).unwrap();
            assert_eq!(s.try_acquire(fib), Err(TryError::WouldBlock));
            assert_eq!(s.acquire_timeout(fib, 5), Err(WaitError::TimedOut));
            assert_eq!(fib.now(), 5);
            log(&l, "main holds 2");
            fib.yield_now(); // waiters queue
            s.release(fib, 3).unwrap(); // w1, w2, w3 get one each, in order
            assert_eq!(s.available(fib).unwrap(), 0);
            fib.yield_now();
            s.release(fib, 2).unwrap(); // w4, then one spare
            assert_eq!(s.available(fib).unwrap(), 1);
        })
        .unwrap();
        for i in 1..=4 {
            let (s, l) = (&s, &l);
            rt.spawn_detached(stack(), move |fib| {
                s.acquire(fib).unwrap();
                log(l, format!("w{i}"));
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(5);
            fib.yield_now();
            // Waiters queued: a try cannot take a permit ahead of them.
            assert_eq!(s.try_acquire(fib), Err(TryError::WouldBlock));
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "main holds 2 w1 w2 w3 w4");
}

#[test]
fn semaphore_timed_out_waiter_does_not_swallow_a_permit() {
    let s = Semaphore::new(0);
    let got = AtomicUsize::new(0);
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            assert_eq!(s.acquire_timeout(fib, 10), Err(WaitError::TimedOut));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            s.acquire(fib).unwrap();
            got.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(10); // same tick as the deadline, armed after it
            s.release(fib, 1).unwrap();
            assert_eq!(s.available(fib).unwrap(), 0); // went to the second waiter
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(got.load(Ordering::Relaxed), 1);
}

// ---------------------------------------------------------------- Channel

#[test]
fn channel_fifo_for_blocked_receivers_and_senders() {
    let ch: Channel<String, 2> = Channel::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<8>::scope(|rt| {
        for i in 1..=3 {
            let (ch, l) = (&ch, &l);
            rt.spawn_detached(stack(), move |fib| {
                let v = ch.recv(fib).unwrap();
                log(l, format!("r{i}:{v}"));
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            // Receivers are blocked: each value goes straight to the next one.
            for v in ["a", "b", "c"] {
                ch.send(fib, v.to_string()).unwrap();
            }
            assert_eq!(ch.len(fib).unwrap(), 0);
            // Now fill, and let senders block in order.
            ch.send(fib, "d".into()).unwrap();
            ch.send(fib, "e".into()).unwrap();
            assert!(matches!(ch.try_send(fib, "x".into()), Err(TrySendError::Full(v)) if v == "x"));
        })
        .unwrap();
        for i in 1..=3 {
            let (ch, l) = (&ch, &l);
            rt.spawn_detached(stack(), move |fib| {
                ch.send(fib, format!("s{i}")).unwrap();
                log(l, format!("s{i} sent"));
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            fib.yield_now(); // senders are blocked now
            let mut got = Vec::new();
            for _ in 0..5 {
                got.push(ch.recv(fib).unwrap());
                // A try_send cannot overtake the blocked senders.
                match ch.try_send(fib, "x".into()) {
                    Err(TrySendError::Full(_)) => {}
                    Ok(()) => assert!(ch.len(fib).unwrap() <= 2),
                    Err(e) => panic!("{e:?}"),
                }
            }
            log(&l, got.join(","));
        })
        .unwrap();
        rt.run().unwrap();
    });
    let got = joined(&l);
    assert!(got.starts_with("r1:a r2:b r3:c"), "{got}");
    assert!(got.contains("d,e,s1,s2,s3"), "{got}");
    assert!(got.find("s1 sent").unwrap() < got.find("s2 sent").unwrap());
    assert!(got.find("s2 sent").unwrap() < got.find("s3 sent").unwrap());
}

#[test]
fn channel_timeouts_hand_back_the_value() {
    let ch: Channel<u32, 1> = Channel::new();
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            assert_eq!(ch.try_recv(fib), Err(TryRecvError::Empty));
            assert_eq!(ch.recv_timeout(fib, 7), Err(RecvError::TimedOut));
            assert_eq!(fib.now(), 7);
            assert_eq!(ch.recv_timeout(fib, 0), Err(RecvError::TimedOut));
            ch.send(fib, 1).unwrap();
            assert_eq!(ch.send_timeout(fib, 2, 5), Err(SendError::TimedOut(2)));
            assert_eq!(fib.now(), 12);
            assert_eq!(ch.send_timeout(fib, 3, 0).map_err(SendError::into_inner), Err(3));
            assert_eq!(ch.recv_timeout(fib, 5), Ok(1));
            assert_eq!(fib.now(), 12);
        })
        .unwrap();
        rt.run().unwrap();
    });
}

#[test]
fn channel_timeout_racing_a_send_loses_nothing() {
    // The receiver's deadline and the sender's wake-up fall on the same tick;
    // the receiver times out first, so the value must stay in the channel.
    let ch: Channel<u32, 2> = Channel::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            log(&l, format!("{:?}", ch.recv_timeout(fib, 10)));
            log(&l, format!("{:?}", ch.recv(fib)));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(10);
            ch.send(fib, 42).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "Err(TimedOut) Ok(42)");
}

/// Counts live values: created minus dropped.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, PartialEq, Eq)]
struct Tracked(u32);
impl Tracked {
    fn new(v: u32) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Tracked(v)
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

static TRACKED_LOCK: StdMutex<()> = StdMutex::new(());

#[test]
fn channel_close_with_values_in_flight_loses_and_duplicates_nothing() {
    let _serial = TRACKED_LOCK.lock().unwrap();
    LIVE.store(0, Ordering::Relaxed);
    let received = StdMutex::new(Vec::new());
    let returned = StdMutex::new(Vec::new());
    let ch: Channel<Tracked, 3> = Channel::new();
    Runtime::<16>::scope(|rt| {
        // 6 senders of 4 values each; the channel holds 3.
        for s in 0..6u32 {
            let (ch, returned) = (&ch, &returned);
            rt.spawn_detached(stack(), move |fib| {
                for k in 0..4 {
                    match ch.send(fib, Tracked::new(s * 10 + k)) {
                        Ok(()) => {}
                        Err(SendError::Closed(v)) => returned.lock().unwrap().push(v.0),
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
            .unwrap();
        }
        // 2 slow receivers.
        for _ in 0..2 {
            let (ch, received) = (&ch, &received);
            rt.spawn_detached(stack(), move |fib| {
                loop {
                    match ch.recv(fib) {
                        Ok(v) => received.lock().unwrap().push(v.0),
                        Err(RecvError::Closed) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                    fib.sleep(1);
                }
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(5); // senders blocked with values, buffer full
            ch.close(fib).unwrap();
            ch.close(fib).unwrap(); // idempotent
            assert!(ch.is_closed(fib).unwrap());
            assert!(matches!(ch.try_send(fib, Tracked::new(999)), Err(TrySendError::Closed(v)) if v.0 == 999));
        })
        .unwrap();
        rt.run().unwrap();
    });
    let mut all: Vec<u32> = received.lock().unwrap().iter().chain(returned.lock().unwrap().iter()).copied().collect();
    let (nrecv, nret) = (received.lock().unwrap().len(), returned.lock().unwrap().len());
    all.sort();
    let expected: Vec<u32> = (0..6).flat_map(|s| (0..4).map(move |k| s * 10 + k)).collect();
    assert_eq!(all, expected, "every value received or returned exactly once");
    assert!(nrecv >= 3 && nret > 0, "{nrecv} received, {nret} returned");
    assert_eq!(LIVE.load(Ordering::Relaxed), 0);
}

#[test]
fn channel_drop_drops_queued_values_once() {
    let _serial = TRACKED_LOCK.lock().unwrap();
    LIVE.store(0, Ordering::Relaxed);
    DROPS.store(0, Ordering::Relaxed);
    let mut ch: Channel<Tracked, 4> = Channel::new();
    Runtime::<2>::scope(|rt| {
        let ch = &ch;
        rt.spawn_detached(stack(), move |fib| {
            for v in 0..4 {
                ch.try_send(fib, Tracked::new(v)).unwrap();
            }
            assert_eq!(ch.try_recv(fib).unwrap().0, 0); // dropped here: 1
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(DROPS.load(Ordering::Relaxed), 1);
    assert_eq!(ch.drain_one().map(|t| t.0), Some(1)); // dropped: 2
    assert_eq!(LIVE.load(Ordering::Relaxed), 2);
    drop(ch);
    assert_eq!(DROPS.load(Ordering::Relaxed), 4);
    assert_eq!(LIVE.load(Ordering::Relaxed), 0);
}

#[test]
fn channel_ping_pong_million_round_trips() {
    const N: u32 = 1_000_000;
    let ping: Channel<u32, 1> = Channel::new();
    let pong: Channel<u32, 1> = Channel::new();
    let out = Runtime::<2>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            while let Ok(v) = ping.recv(fib) {
                pong.send(fib, v + 1).unwrap();
            }
            pong.close(fib).unwrap();
        })
        .unwrap();
        let h = rt
            .spawn(stack(), |fib| {
                let mut sum = 0u64;
                for i in 0..N {
                    ping.send(fib, i).unwrap();
                    let v = pong.recv(fib).unwrap();
                    assert_eq!(v, i + 1);
                    sum += v as u64;
                }
                ping.close(fib).unwrap();
                assert_eq!(pong.recv(fib), Err(RecvError::Closed));
                sum
            })
            .unwrap();
        rt.run().unwrap();
        rt.take(h).unwrap()
    });
    assert_eq!(out, (1..=N as u64).sum::<u64>());
}

#[test]
fn channel_mpmc_stress_conserves_values() {
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 50_000;
    let ch: Channel<u32, 8> = Channel::new();
    let done = Semaphore::new(0);
    let sums = StdMutex::new(Vec::new());
    Runtime::<16>::scope(|rt| {
        for p in 0..PRODUCERS {
            let (ch, done) = (&ch, &done);
            rt.spawn_detached(stack(), move |fib| {
                for k in 0..EACH {
                    ch.send(fib, p * EACH + k).unwrap();
                    if k % 7 == p {
                        fib.yield_now();
                    }
                }
                done.release(fib, 1).unwrap();
            })
            .unwrap();
        }
        for c in 0..3u32 {
            let (ch, sums) = (&ch, &sums);
            rt.spawn_detached(stack(), move |fib| {
                let (mut sum, mut n) = (0u64, 0u64);
                let mut last = [None::<u32>; PRODUCERS as usize];
                while let Ok(v) = ch.recv(fib) {
                    // Per producer, one receiver sees values in send order.
                    let p = (v / EACH) as usize;
                    assert!(last[p].is_none_or(|l| l < v));
                    last[p] = Some(v);
                    sum += v as u64;
                    n += 1;
                    if n % 5 == c as u64 {
                        fib.yield_now();
                    }
                }
                sums.lock().unwrap().push((sum, n));
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            for _ in 0..PRODUCERS {
                done.acquire(fib).unwrap();
            }
            ch.close(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    let total = PRODUCERS * EACH;
    let (sum, n) = sums.lock().unwrap().iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(n, total as u64);
    assert_eq!(sum, (0..total as u64).sum::<u64>());
}

#[test]
fn primitives_on_a_fiber_stack_are_usable_without_blocking() {
    // A primitive on a fiber's own stack lives shorter than the runtime's
    // stacks, so the blocking forms (which need `&'s self`) do not compile for
    // it (see the compile_fail doctest on `sync`); the non-blocking forms work.
    let rt = Box::new(Runtime::<2>::new());
    let h = rt
        .spawn(stack(), |fib: &Fiber<'static>| {
            let ch: Channel<u8, 2> = Channel::new();
            let m = Mutex::new(1u8);
            let e = Event::new();
            ch.try_send(fib, 5).unwrap();
            *m.try_lock(fib).unwrap() += ch.try_recv(fib).unwrap();
            assert_eq!(e.try_wait(fib), Err(TryError::WouldBlock));
            e.set(fib).unwrap();
            e.try_wait(fib).unwrap();
            m.into_inner()
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), 6);
}

// ---------------------------------------------------------------- Event

#[test]
fn event_is_manual_reset_and_wakes_all_fifo() {
    let e = Event::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<8>::scope(|rt| {
        for i in 1..=3 {
            let (e, l) = (&e, &l);
            rt.spawn_detached(stack(), move |fib| {
                e.wait(fib).unwrap();
                log(l, format!("w{i}"));
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            assert_eq!(e.try_wait(fib), Err(TryError::WouldBlock));
            assert_eq!(e.wait_timeout(fib, 4), Err(WaitError::TimedOut));
            assert_eq!(fib.now(), 4);
            log(&l, "set");
            e.set(fib).unwrap();
            e.set(fib).unwrap();
            assert!(e.is_set(fib).unwrap());
            e.wait(fib).unwrap(); // stays set
            e.wait_timeout(fib, 0).unwrap();
            e.reset(fib).unwrap(); // the woken waiters still return Ok
            assert_eq!(e.try_wait(fib), Err(TryError::WouldBlock));
            assert_eq!(e.wait_timeout(fib, 2), Err(WaitError::TimedOut));
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "set w1 w2 w3");
}

// ---------------------------------------------------------------- Barrier

#[test]
fn barrier_one_leader_per_generation_and_reusable() {
    const PARTIES: usize = 5;
    const ROUNDS: u64 = 200;
    let b = Barrier::new(PARTIES);
    let leaders = StdMutex::new(vec![0u32; ROUNDS as usize]);
    let phase = AtomicUsize::new(0);
    Runtime::<PARTIES>::scope(|rt| {
        for i in 0..PARTIES {
            let (b, leaders, phase) = (&b, &leaders, &phase);
            rt.spawn_detached(stack(), move |fib| {
                for round in 0..ROUNDS {
                    for _ in 0..(i + round as usize) % 3 {
                        fib.yield_now();
                    }
                    phase.fetch_add(1, Ordering::Relaxed);
                    let r = b.wait(fib).unwrap();
                    // Everyone arrived before anyone left.
                    assert!(phase.load(Ordering::Relaxed) >= PARTIES * (round as usize + 1));
                    assert_eq!(r.generation(), round);
                    if r.is_leader() {
                        leaders.lock().unwrap()[round as usize] += 1;
                    }
                }
            })
            .unwrap();
        }
        rt.run().unwrap();
    });
    assert!(leaders.lock().unwrap().iter().all(|&n| n == 1));
    assert_eq!(b.parties(), PARTIES);
}

#[test]
fn barrier_timeout_leaves_and_late_deadline_counts() {
    let b = Barrier::new(2);
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            assert_eq!(b.try_wait(fib), Err(TryError::WouldBlock));
            // Nobody comes: leave the barrier.
            assert_eq!(b.wait_timeout(fib, 5), Err(WaitError::TimedOut));
            log(&l, format!("a left at {}", fib.now()));
            // Our arrival was withdrawn: the next generation still needs 2.
            let r = b.wait(fib).unwrap();
            log(&l, format!("a leader={} gen={}", r.is_leader(), r.generation()));
            // Race: `c` sleeps until our deadline tick and was armed first, so
            // it completes the generation (counting us) before we resume.
            let r = b.wait_timeout(fib, 20);
            log(&l, format!("a {:?}", r.map(|r| r.is_leader())));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(10);
            let r = b.wait(fib).unwrap();
            log(&l, format!("b leader={} gen={}", r.is_leader(), r.generation()));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(9);
            fib.sleep_until(30); // armed before `a`'s deadline at 10 + 20
            let r = b.try_wait(fib).unwrap(); // the last one missing
            log(&l, format!("c leader={} gen={}", r.is_leader(), r.generation()));
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "a left at 5 b leader=true gen=0 a leader=false gen=0 c leader=true gen=1 a Ok(false)");
}

// ---------------------------------------------------------------- Deadlock

fn deadlock_of(r: Result<(), RunError>) -> Vec<(&'static str, WaitReason)> {
    let Err(RunError::Deadlock(report)) = r else { panic!("expected a deadlock, got {r:?}") };
    let mut v: Vec<_> = report.fibers().iter().map(|b| (b.name, b.reason)).collect();
    v.sort_by_key(|x| x.0);
    v
}

#[test]
fn deadlock_report_names_mutex_waiters_and_mutexes_stay_usable() {
    let (m1, m2) = (Mutex::new(0), Mutex::new(0));
    Runtime::<4>::scope(|rt| {
        let a = rt
            .spawn_named("a", stack(), |fib| {
                let _g = m1.lock(fib).unwrap();
                fib.yield_now();
                let _h = m2.lock(fib).unwrap();
            })
            .unwrap();
        let b = rt
            .spawn_named("b", stack(), |fib| {
                let _g = m2.lock(fib).unwrap();
                fib.yield_now();
                let _h = m1.lock(fib).unwrap();
            })
            .unwrap();
        let got = deadlock_of(rt.run());
        assert_eq!(got, vec![("a", WaitReason::Mutex(addr(&m2))), ("b", WaitReason::Mutex(addr(&m1)))]);
        assert!(matches!(rt.take(a), Err(JoinError::Cancelled)));
        assert!(matches!(rt.take(b), Err(JoinError::Cancelled)));
        // The cancelled fibers' guards unlocked both mutexes on the way out.
        let h = rt
            .spawn(stack(), |fib| {
                *m1.try_lock(fib).unwrap() += 1;
                *m2.lock(fib).unwrap() += 1;
            })
            .unwrap();
        rt.run().unwrap();
        rt.take(h).unwrap();
    });
}

#[test]
fn deadlock_report_names_semaphore_channel_event_barrier_waiters() {
    let s = Semaphore::new(0);
    let empty: Channel<u8, 1> = Channel::new();
    let full: Channel<u8, 1> = Channel::new();
    let e = Event::new();
    let b = Barrier::new(3);
    Runtime::<16>::scope(|rt| {
        let hs = vec![
            rt.spawn_named("1sem", stack(), |fib| s.acquire(fib).unwrap()).ok().unwrap(),
            rt.spawn_named("2recv", stack(), |fib| empty.recv(fib).map(drop).unwrap()).ok().unwrap(),
            rt.spawn_named("3send", stack(), |fib| {
                full.send(fib, 1).unwrap();
                full.send(fib, 2).unwrap();
            })
            .unwrap(),
            rt.spawn_named("4event", stack(), |fib| e.wait(fib).unwrap()).ok().unwrap(),
            rt.spawn_named("5barrier", stack(), |fib| b.wait(fib).map(drop).unwrap()).ok().unwrap(),
            rt.spawn_named("6barrier", stack(), |fib| b.wait(fib).map(drop).unwrap()).ok().unwrap(),
        ];
        let got = deadlock_of(rt.run());
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], ("1sem", WaitReason::Semaphore(addr(&s))));
        assert_eq!(got[1], ("2recv", WaitReason::Recv(addr(&empty))));
        let WaitReason::Send(a) = got[2].1 else { panic!("{got:?}") };
        assert!((addr(&full)..addr(&full) + std::mem::size_of_val(&full)).contains(&a));
        assert_eq!(got[3], ("4event", WaitReason::Event(addr(&e))));
        assert_eq!(got[4], ("5barrier", WaitReason::Barrier(addr(&b))));
        assert_eq!(got[5], ("6barrier", WaitReason::Barrier(addr(&b))));
        for h in hs {
            assert!(matches!(rt.take(h), Err(JoinError::Cancelled)));
        }

        // Cancellation left every primitive consistent: a fresh round works.
        for _ in 0..3 {
            rt.spawn_detached(stack(), |fib| b.wait(fib).map(drop).unwrap()).ok().unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            s.release(fib, 1).unwrap();
            s.acquire(fib).unwrap();
            assert_eq!(full.recv(fib), Ok(1));
            empty.send(fib, 9).unwrap();
            assert_eq!(empty.recv(fib), Ok(9));
            e.set(fib).unwrap();
            e.wait(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
}

// ---------------------------------------------------------------- Binding

struct Prims {
    m: Mutex<i32>,
    s: Semaphore,
    ch: Channel<String, 4>,
    e: Event,
    b: Barrier,
}

fn use_prims<'s>(rt: &Runtime<'s, 2>, p: &'s Prims, first: bool) {
    let h = rt
        .spawn(stack(), move |fib| {
            if first {
                // Blocking forms bind each primitive for the rest of this run
                // (a non-blocking one only leases it for the call).
                drop(p.m.lock(fib).unwrap());
                p.s.acquire(fib).unwrap();
                p.s.release(fib, 1).unwrap();
                p.ch.send(fib, "kept".into()).unwrap();
                assert_eq!(p.e.wait_timeout(fib, 0), Err(WaitError::TimedOut));
                p.b.wait(fib).unwrap();
                // While this run holds them, a second runtime (run right here,
                // inside this fiber) is refused and changes nothing.
                Runtime::<2>::scope(|other| use_prims(other, p, false));
            } else {
                assert_eq!(p.m.lock(fib).map(drop), Err(WaitError::WrongRuntime));
                assert_eq!(p.m.try_lock(fib).map(drop), Err(TryError::WrongRuntime));
                assert_eq!(p.s.acquire_timeout(fib, 5), Err(WaitError::WrongRuntime));
                assert_eq!(p.s.release(fib, 1), Err(WrongRuntime));
                match p.ch.send(fib, "mine".into()) {
                    Err(SendError::WrongRuntime(v)) => assert_eq!(v, "mine"),
                    other => panic!("{other:?}"),
                }
                assert!(matches!(p.ch.try_send(fib, "x".into()), Err(TrySendError::WrongRuntime(v)) if v == "x"));
                assert_eq!(p.ch.recv(fib), Err(RecvError::WrongRuntime));
                assert_eq!(p.ch.close(fib), Err(WrongRuntime));
                assert_eq!(p.e.set(fib), Err(WrongRuntime));
                assert_eq!(p.b.wait(fib), Err(WaitError::WrongRuntime));
            }
        })
        .unwrap();
    rt.run().unwrap();
    rt.take(h).unwrap();
}

/// A primitive belongs to one runtime while that runtime's `run` uses it;
/// once the run is over, another runtime may use it.
#[test]
fn a_primitive_belongs_to_one_runtime_at_a_time() {
    let mut p =
        Prims { m: Mutex::new(0), s: Semaphore::new(1), ch: Channel::new(), e: Event::new(), b: Barrier::new(1) };
    Runtime::<2>::scope(|a| {
        use_prims(a, &p, true);
        use_prims(a, &p, true); // fine again on its own runtime
        Runtime::<2>::scope(|b| use_prims(b, &p, true)); // and on the next one, after a's run
    });
    for _ in 0..3 {
        assert_eq!(p.ch.drain_one().as_deref(), Some("kept"));
    }
    assert_eq!(p.ch.drain_one(), None);
}

#[test]
fn binding_race_between_threads_never_shares_a_primitive() {
    static M: Mutex<u32> = Mutex::new(0);
    static HOLDERS: AtomicUsize = AtomicUsize::new(0);
    static MOST: AtomicUsize = AtomicUsize::new(0);
    let rts: Vec<Box<Runtime<'static, 1>>> = (0..4).map(|_| Box::new(Runtime::new())).collect();
    let wins = AtomicUsize::new(0);
    std::thread::scope(|t| {
        for rt in &rts {
            let wins = &wins;
            t.spawn(move || {
                for _ in 0..200 {
                    let h = rt
                        .spawn(stack(), |fib| match M.try_lock(fib) {
                            Ok(mut g) => {
                                let now = HOLDERS.fetch_add(1, Ordering::SeqCst) + 1;
                                MOST.fetch_max(now, Ordering::SeqCst);
                                *g += 1;
                                std::thread::yield_now();
                                HOLDERS.fetch_sub(1, Ordering::SeqCst);
                                true
                            }
                            Err(TryError::WrongRuntime | TryError::WouldBlock) => false,
                            Err(e) => panic!("{e}"),
                        })
                        .unwrap();
                    rt.run().unwrap();
                    if rt.take(h).unwrap() {
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(MOST.load(Ordering::SeqCst), 1, "two runtimes held the mutex at once");
    assert!(wins.load(Ordering::Relaxed) >= 1);
}

// ---------------------------------------------------------------- Interrupts

#[test]
fn isr_notifications_from_another_thread_are_all_counted() {
    const N: u64 = 100_000;
    static SIG: IrqSignal = IrqSignal::new();
    let ch: Channel<u64, 4> = Channel::new();
    let total = Runtime::<2>::scope(|rt| {
        // The "driver" fiber turns interrupts into channel messages.
        rt.spawn_detached(stack(), |fib| {
            let mut seen = 0u64;
            while seen < N {
                let n = SIG.wait(fib).unwrap();
                seen += n;
                ch.send(fib, n).unwrap();
            }
            ch.close(fib).unwrap();
        })
        .unwrap();
        let h = rt
            .spawn(stack(), |fib| {
                let mut sum = 0u64;
                while let Ok(n) = ch.recv(fib) {
                    sum += n;
                }
                sum
            })
            .unwrap();
        let isr = std::thread::spawn(|| {
            for i in 0..N {
                SIG.notify_from_isr();
                if i % 1000 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        isr.join().unwrap();
        rt.take(h).unwrap()
    });
    assert_eq!(total, N);
}
