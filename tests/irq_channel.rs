//! Data from interrupt context: [`IrqQueue`] fed by several OS threads and by
//! a POSIX signal handler interrupting the runtime's own thread, plus the
//! interrupt-safe wakes (`Semaphore::give_from_isr`, `Event::set_from_isr`,
//! `IrqNotify::notify_from_isr`) called from other threads.
//!
//! A lost wake-up leaves the runtime parked for good, so every scenario runs
//! under a watchdog that fails the test instead of hanging it. Nothing here
//! asserts timing.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use filament::host::HostClock;
use filament::sync::{TryError, WaitError};
use filament::{IrqQueue, QueueFull, Runtime, Stack};

/// How long one scenario may take before the test calls it hung (generous:
/// debug builds on a loaded 2-core machine).
const WATCHDOG: Duration = Duration::from_secs(120);

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

/// Runs `f` on a thread of its own and returns its result; fails the test if
/// `f` has not returned after [`WATCHDOG`].
fn watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(Ok(v)) => v,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: hung for {WATCHDOG:?}: a wake-up was lost"),
    }
}

/// Pushes `value`, retrying while the queue is full (the producer's choice:
/// `try_send_from_isr` itself never waits).
fn push<const N: usize>(q: &IrqQueue<u64, N>, mut value: u64) {
    loop {
        match q.try_send_from_isr(value) {
            Ok(()) => return,
            Err(QueueFull(v)) => {
                value = v;
                thread::yield_now();
            }
        }
    }
}

/// Checks a stream of `producer << 32 | seq` values: per producer, `seq` runs
/// 0, 1, 2, ... without gap or repeat. Returns how many each sent.
struct PerProducer(Vec<u64>);

impl PerProducer {
    fn new(producers: usize) -> Self {
        PerProducer(vec![0; producers])
    }

    fn take(&mut self, v: u64) {
        let (p, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
        assert!(p < self.0.len(), "value {v:#x} from no producer");
        assert_eq!(
            seq, self.0[p],
            "producer {p}: got seq {seq}, expected {} (lost, duplicated or reordered)",
            self.0[p]
        );
        self.0[p] += 1;
    }
}

/// The proof: several OS threads push 10^6 values in total into one
/// runtime's queue; the receiving fiber gets every value exactly once, each
/// producer's values in order.
#[test]
fn a_million_values_from_several_threads_none_lost_none_duplicated_order_kept() {
    const PRODUCERS: u64 = 4;
    const TOTAL: u64 = 1_000_000;
    const PER: u64 = TOTAL / PRODUCERS;
    static Q: IrqQueue<u64, 256> = IrqQueue::new().named("million");
    let counts = watchdog("a million values", || {
        let rt = Runtime::<'static, 2>::new();
        let rx = rt
            .spawn(stack(), |fib| {
                let mut seen = PerProducer::new(PRODUCERS as usize);
                for _ in 0..TOTAL {
                    seen.take(Q.recv(fib).unwrap());
                }
                // Nothing more: every producer is done and all was received.
                assert_eq!(Q.try_recv(fib), Err(TryError::WouldBlock));
                seen.0
            })
            .unwrap();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                thread::spawn(move || {
                    for seq in 0..PER {
                        push(&Q, p << 32 | seq);
                    }
                })
            })
            .collect();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        for t in producers {
            t.join().unwrap();
        }
        rt.take(rx).unwrap()
    });
    assert_eq!(counts, vec![PER; PRODUCERS as usize]);
    assert!(Q.is_empty());
}

/// The same with a capacity that is not a power of two and so small that the
/// producers keep finding the ring full and lapping it: every cell is reused
/// tens of thousands of times under contention.
#[test]
fn odd_tiny_capacity_under_contention_keeps_every_value_in_order() {
    const PRODUCERS: u64 = 3;
    const PER: u64 = 50_000;
    static Q: IrqQueue<u64, 3> = IrqQueue::new();
    let counts = watchdog("capacity 3", || {
        let rt = Runtime::<'static, 1>::new();
        let rx = rt
            .spawn(stack(), |fib| {
                let mut seen = PerProducer::new(PRODUCERS as usize);
                for _ in 0..PRODUCERS * PER {
                    seen.take(Q.recv(fib).unwrap());
                }
                seen.0
            })
            .unwrap();
        let producers: Vec<_> =
            (0..PRODUCERS).map(|p| thread::spawn(move || (0..PER).for_each(|seq| push(&Q, p << 32 | seq)))).collect();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        for t in producers {
            t.join().unwrap();
        }
        rt.take(rx).unwrap()
    });
    assert_eq!(counts, vec![PER; PRODUCERS as usize]);
}

/// A full queue refuses without blocking and gives the value back; nothing
/// already queued changes; after a receive there is room again.
#[test]
fn full_queue_gives_the_value_back() {
    static Q: IrqQueue<String, 4> = IrqQueue::new();
    for i in 0..4 {
        Q.try_send_from_isr(i.to_string()).unwrap();
    }
    assert_eq!((Q.len(), Q.space(), Q.capacity()), (4, 0, 4));
    let err = Q.try_send_from_isr("five".to_string()).unwrap_err();
    assert_eq!(err.into_inner(), "five");
    assert_eq!(format!("{}", QueueFull(())), "interrupt queue full");
    let rt = Runtime::<'static, 1>::new();
    let h = rt
        .spawn(stack(), |fib| {
            let first = Q.try_recv(fib).unwrap();
            Q.try_send_from_isr("five".to_string()).unwrap();
            let rest: Vec<String> = std::iter::from_fn(|| Q.try_recv(fib).ok()).collect();
            (first, rest)
        })
        .unwrap();
    rt.run().unwrap();
    let (first, rest) = rt.take(h).unwrap();
    assert_eq!(first, "0");
    assert_eq!(rest, ["1", "2", "3", "five"]);
}

/// `recv_timeout` gives up with `TimedOut` when nothing arrives, and returns
/// a value that arrives in time; a receiver is never reported deadlocked
/// while it waits (an interrupt may still come).
#[test]
fn recv_timeout_and_waiting_is_no_deadlock() {
    static Q: IrqQueue<u32, 8> = IrqQueue::new().named("late");
    let (timed_out, late) = watchdog("timeouts", || {
        let rt = Runtime::<'static, 1>::new();
        let h = rt
            .spawn(stack(), |fib| {
                let timed_out = Q.recv_timeout(fib, 5);
                // Nobody sends until this fiber asks (through the flag below);
                // meanwhile the runtime idles instead of reporting a deadlock.
                READY.store(1, Ordering::SeqCst);
                let late = Q.recv(fib);
                (timed_out, late)
            })
            .unwrap();
        static READY: AtomicUsize = AtomicUsize::new(0);
        let sender = thread::spawn(|| {
            while READY.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            thread::sleep(Duration::from_millis(20)); // let it block and idle
            Q.try_send_from_isr(42).unwrap();
        });
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        sender.join().unwrap();
        rt.take(h).unwrap()
    });
    assert_eq!(timed_out, Err(WaitError::TimedOut));
    assert_eq!(late, Ok(42));
}

/// The queue's receive side belongs to one runtime at a time; its name shows
/// in the fiber snapshot while a fiber waits in it.
#[test]
fn named_in_reports_and_one_runtime_at_a_time() {
    static Q: IrqQueue<u8, 2> = IrqQueue::new().named("uart-rx");
    let rt = Box::new(Runtime::<'static, 2>::new());
    let rx = rt.spawn(stack(), |fib| Q.recv(fib).unwrap()).unwrap();
    let rx_id = rx.id();
    let peek = rt
        .spawn(stack(), move |fib| {
            let waiting_in = fib.fiber_info(rx_id).unwrap().waiting_in;
            // Another runtime, on another thread, meanwhile: refused.
            let other = thread::spawn(|| {
                let rt2 = Runtime::<'static, 1>::new();
                let h = rt2.spawn(stack(), |fib| Q.try_recv(fib).map(drop)).unwrap();
                rt2.run().unwrap();
                rt2.take(h).unwrap()
            })
            .join()
            .unwrap();
            Q.try_send_from_isr(9).unwrap();
            (waiting_in, other)
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(peek).unwrap(), ("uart-rx", Err(TryError::WrongRuntime)));
    assert_eq!(rt.take(rx).unwrap(), 9);
}

/// Values still queued when the queue is dropped are dropped with it.
#[test]
fn dropping_the_queue_drops_queued_values() {
    let token = Arc::new(());
    let q: IrqQueue<Arc<()>, 4> = IrqQueue::new();
    q.try_send_from_isr(token.clone()).unwrap();
    q.try_send_from_isr(token.clone()).unwrap();
    assert_eq!(Arc::strong_count(&token), 3);
    drop(q);
    assert_eq!(Arc::strong_count(&token), 1);
}

/// A POSIX signal handler is a real interrupt-context producer on the
/// runtime's own thread: it may interrupt the runtime anywhere — a fiber in
/// the middle of its own push into the same queue, the scheduler, the idle
/// hook's futex sleep. Another thread sends the runtime's thread `SIGUSR1`
/// one at a time (each acknowledged, so none coalesce); the handler pushes a
/// numbered value. A fiber pushes its own numbered values meanwhile; the
/// receiver checks both streams.
#[test]
fn signal_handler_on_the_runtime_thread_is_a_producer() {
    const FROM_HANDLER: u64 = 20_000;
    const FROM_FIBER: u64 = 20_000;
    static Q: IrqQueue<u64, 64> = IrqQueue::new();
    static HANDLED: AtomicU64 = AtomicU64::new(0);
    static DROPPED: AtomicU64 = AtomicU64::new(0);

    extern "C" fn on_usr1(_: libc::c_int) {
        let n = HANDLED.load(Ordering::Relaxed);
        // Full: an interrupt handler cannot wait; count it as dropped and
        // let the sender send this number again.
        if Q.try_send_from_isr(n).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        } else {
            HANDLED.store(n + 1, Ordering::Release);
        }
    }

    let seen = watchdog("signal handler producer", || {
        // SAFETY: installing a handler that only touches atomics and the
        // queue's interrupt-safe push (async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_usr1 as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
        }
        // SAFETY: pthread_self is always safe.
        let me = unsafe { libc::pthread_self() } as usize;
        let sender = thread::spawn(move || {
            while HANDLED.load(Ordering::Acquire) < FROM_HANDLER {
                let before = (HANDLED.load(Ordering::Acquire), DROPPED.load(Ordering::Relaxed));
                // SAFETY: `me` is the runtime's thread, alive until we are joined.
                assert_eq!(unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR1) }, 0);
                // Wait for this signal's handler to have run (no coalescing).
                while (HANDLED.load(Ordering::Acquire), DROPPED.load(Ordering::Relaxed)) == before {
                    thread::yield_now();
                }
            }
        });
        let rt = Runtime::<'static, 2>::new();
        rt.spawn_detached(stack(), |fib| {
            for seq in 0..FROM_FIBER {
                let mut v = 1 << 32 | seq;
                while let Err(QueueFull(back)) = Q.try_send_from_isr(v) {
                    v = back;
                    fib.yield_now();
                }
            }
        })
        .unwrap();
        let rx = rt
            .spawn(stack(), |fib| {
                let mut seen = PerProducer::new(2);
                for _ in 0..FROM_HANDLER + FROM_FIBER {
                    seen.take(Q.recv(fib).unwrap());
                }
                seen.0
            })
            .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        sender.join().unwrap();
        rt.take(rx).unwrap()
    });
    assert_eq!(seen, [FROM_HANDLER, FROM_FIBER]);
}

/// `Semaphore::give_from_isr` from several threads: three fibers of an
/// interrupt-capable semaphore acquire exactly the permits given; none is
/// lost (a permit drained into the count while a fiber blocks anyway would
/// hang the run: the watchdog fails it), none is invented (the count ends at 0).
#[test]
fn semaphore_given_from_threads() {
    use filament::sync::Semaphore;
    const GIVERS: usize = 2;
    const PER_GIVER: usize = 30_000;
    const TAKERS: usize = 3;
    static SEM: Semaphore = Semaphore::new(0).isr_capable().named("isr-sem");
    let left = watchdog("semaphore gives", || {
        let rt = Runtime::<'static, 4>::new();
        for _ in 0..TAKERS {
            rt.spawn_detached(stack(), |fib| {
                for _ in 0..GIVERS * PER_GIVER / TAKERS {
                    SEM.acquire(fib).unwrap();
                }
            })
            .unwrap();
        }
        let givers: Vec<_> = (0..GIVERS)
            .map(|_| {
                thread::spawn(|| {
                    for i in 0..PER_GIVER {
                        SEM.give_from_isr();
                        if i % 64 == 0 {
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        for g in givers {
            g.join().unwrap();
        }
        SEM.available_outside().unwrap()
    });
    assert_eq!(left, 0);
}

/// A bounded semaphore keeps at most its maximum of interrupt gives (the
/// interrupt cannot learn it is full: extra gives are dropped, as `release`
/// drops them); a semaphore nobody declared interrupt-capable still receives
/// gives made before its waiters block.
#[test]
fn semaphore_gives_from_isr_are_capped_and_reach_late_waiters() {
    use filament::sync::Semaphore;
    static BINARY: Semaphore = Semaphore::bounded(0, 1);
    for _ in 0..3 {
        BINARY.give_from_isr();
    }
    assert_eq!(BINARY.available_outside(), Ok(1));
    static PLAIN: Semaphore = Semaphore::new(0);
    PLAIN.give_from_isr();
    PLAIN.give_from_isr();
    let rt = Runtime::<'static, 1>::new();
    let h = rt
        .spawn(stack(), |fib| {
            PLAIN.acquire(fib).unwrap();
            PLAIN.acquire(fib).unwrap();
            PLAIN.try_acquire(fib)
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), Err(TryError::WouldBlock));
}

/// The rule for waiters of ordinary primitives: a fiber blocked on a
/// semaphore that is not interrupt-capable is reported deadlocked (nothing in
/// the runtime can wake it); one blocked on an interrupt-capable semaphore is
/// not (an interrupt may give), and is woken by the give.
#[test]
fn only_interrupt_capable_waiters_escape_the_deadlock_report() {
    use filament::sync::Semaphore;
    use filament::{RunError, WaitReason};
    static PLAIN: Semaphore = Semaphore::new(0).named("plain");
    let rt = Runtime::<'static, 1>::new();
    rt.spawn_detached(stack(), |fib| PLAIN.acquire(fib).map(drop)).unwrap();
    match rt.run_with_idle(&mut HostClock::new()) {
        Err(RunError::Deadlock(report)) => {
            assert!(matches!(report.fibers()[0].reason, WaitReason::Semaphore(_)));
        }
        other => panic!("expected a deadlock report, got {other:?}"),
    }

    static CAPABLE: Semaphore = Semaphore::new(0).isr_capable();
    static ASKED: AtomicUsize = AtomicUsize::new(0);
    let got = watchdog("interrupt-capable semaphore", || {
        let rt = Runtime::<'static, 1>::new();
        let h = rt
            .spawn(stack(), |fib| {
                ASKED.store(1, Ordering::SeqCst);
                CAPABLE.acquire(fib)
            })
            .unwrap();
        let giver = thread::spawn(|| {
            while ASKED.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
            thread::sleep(Duration::from_millis(20)); // let it block and idle
            CAPABLE.give_from_isr();
        });
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        giver.join().unwrap();
        rt.take(h).unwrap()
    });
    assert_eq!(got, Ok(()));
}

/// `Event::set_from_isr` from another thread wakes every waiter of an
/// interrupt-capable event, and leaves it set; a fiber's `reset` after it
/// clears it.
#[test]
fn event_set_from_a_thread_wakes_every_waiter() {
    use filament::sync::Event;
    static EV: Event = Event::new().isr_capable().named("link-up");
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    let (woken, still_set, after_reset) = watchdog("event set", || {
        let rt = Runtime::<'static, 4>::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                rt.spawn(stack(), |fib| {
                    WAITING.fetch_add(1, Ordering::SeqCst);
                    EV.wait(fib)
                })
                .unwrap()
            })
            .collect();
        let setter = thread::spawn(|| {
            while WAITING.load(Ordering::SeqCst) < 3 {
                thread::yield_now();
            }
            thread::sleep(Duration::from_millis(20));
            EV.set_from_isr();
        });
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        setter.join().unwrap();
        let woken = waiters.into_iter().map(|h| rt.take(h).unwrap()).filter(Result::is_ok).count();
        let check = rt
            .spawn(stack(), |fib| {
                let set = EV.is_set(fib).unwrap();
                EV.reset(fib).unwrap();
                (set, EV.is_set(fib).unwrap())
            })
            .unwrap();
        rt.run().unwrap();
        let (set, after) = rt.take(check).unwrap();
        (woken, set, after)
    });
    assert_eq!((woken, still_set, after_reset), (3, true, false));
}

/// `IrqNotify` from several threads: each thread sets its own bit many
/// times; the waiting fiber sees every bit, and each wait returns a
/// non-empty set of bits it had not taken yet (taken bits are cleared).
#[test]
fn notify_bits_from_threads() {
    use filament::IrqNotify;
    const THREADS: u32 = 8;
    const ROUNDS: usize = 2_000;
    static N: IrqNotify = IrqNotify::new().named("bits");
    let (seen, waits) = watchdog("notify bits", || {
        let rt = Runtime::<'static, 1>::new();
        let h = rt
            .spawn(stack(), |fib| {
                let mut seen = 0u32;
                let mut waits = 0usize;
                // Every bit, then a final all-done bit.
                while seen & (1 << THREADS) == 0 {
                    let bits = N.wait(fib).unwrap();
                    assert_ne!(bits, 0, "a wait returns some bit");
                    seen |= bits;
                    waits += 1;
                }
                (seen, waits)
            })
            .unwrap();
        // The notifiers run while the runtime does; the final bit follows them.
        let coordinator = thread::spawn(|| {
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    thread::spawn(move || {
                        for _ in 0..ROUNDS {
                            N.notify_from_isr(1 << t);
                            thread::yield_now();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            N.notify_from_isr(1 << THREADS);
        });
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        coordinator.join().unwrap();
        rt.take(h).unwrap()
    });
    assert_eq!(seen, (1 << (THREADS + 1)) - 1);
    assert!(waits >= 1);
}

/// Review 10 (a_sem): a fiber blocked on a semaphore before it became
/// interrupt-capable was never handed a later `give_from_isr`: the source was
/// not registered, nothing drained it, and `run` reported the waiter
/// deadlocked with the permit there. The "interrupt" here is a fiber's call
/// (deterministic); the runtime must see the raise before it reports a
/// deadlock.
#[test]
fn a_give_from_isr_reaches_a_waiter_that_blocked_before_the_semaphore_was_capable() {
    use filament::sync::Semaphore;
    static SEM: Semaphore = Semaphore::new(0).named("late-capable");
    let rt = Runtime::<'static, 2>::new();
    let w = rt.spawn(stack(), |fib| SEM.acquire(fib)).unwrap();
    rt.spawn_detached(stack(), |fib| {
        fib.yield_now(); // `w` blocks as a plain waiter
        SEM.give_from_isr();
    })
    .unwrap();
    let run = rt.run();
    assert!(run.is_ok(), "the waiter was reported deadlocked with the permit there: {run:?}");
    assert_eq!(rt.take(w).unwrap(), Ok(()));
    assert_eq!(SEM.available_outside(), Ok(0));
}

/// Review 10 (a3): the same waiter in a runtime that idles anyway (another
/// fiber waits on an interrupt, as a timer service does), the give from
/// another OS thread while it idles: the waiter stayed blocked for good and
/// the run never ended (bounded here by `run_for`).
#[test]
fn a_give_from_another_thread_reaches_a_plain_waiter_while_the_runtime_idles() {
    use filament::IrqSignal;
    use filament::sync::Semaphore;
    static SEM: Semaphore = Semaphore::new(0).named("rx-ready");
    static SIG: IrqSignal = IrqSignal::new().named("keeps-idling");
    static ASKED: AtomicUsize = AtomicUsize::new(0);
    let rt = Runtime::<'static, 2>::new();
    let w = rt
        .spawn(stack(), |fib| {
            ASKED.store(1, Ordering::SeqCst);
            let r = SEM.acquire(fib);
            SIG.notify_from_isr(); // lets the other fiber finish
            r
        })
        .unwrap();
    let other = rt.spawn(stack(), |fib| SIG.wait(fib)).unwrap();
    let giver = thread::spawn(|| {
        while ASKED.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        thread::sleep(Duration::from_millis(20)); // let it block and idle
        SEM.give_from_isr();
    });
    let run = rt.run_for(&mut HostClock::new(), 3_000);
    giver.join().unwrap();
    assert!(run.is_ok(), "the waiter never got the interrupt's permit: {run:?}");
    assert_eq!(rt.take(w).unwrap(), Ok(()));
    assert_eq!(rt.take(other).unwrap().map(|n| n > 0), Ok(true));
}

/// Review 10 (a2): a wait that ends by its deadline looked only at the
/// fiber-side state: a semaphore waiter timed out with an interrupt's permit
/// there, and `Event::wait_timeout` returned `TimedOut` while the event was
/// set, contradicting its docs ("unless the event is set by the time the
/// fiber resumes"). The higher-priority fiber whose sleep ends at the same
/// tick runs first and gives / sets from "interrupt context" before the
/// timed-out waiters resume.
#[test]
fn a_timed_out_wait_sees_an_interrupt_give_or_set_made_before_it_resumed() {
    use filament::sync::{Event, Semaphore};
    use filament::{Priority, SpawnOptions};
    static SEM: Semaphore = Semaphore::new(0);
    static EV: Event = Event::new();
    let rt = Runtime::<'static, 3>::new();
    let s = rt.spawn(stack(), |fib| (SEM.acquire_timeout(fib, 10), SEM.available(fib).unwrap())).unwrap();
    let e = rt.spawn(stack(), |fib| EV.wait_timeout(fib, 10)).unwrap();
    rt.spawn_detached_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), |fib| {
        fib.sleep(10);
        SEM.give_from_isr();
        EV.set_from_isr();
    })
    .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(s).unwrap(), (Ok(()), 0), "timed out with the permit there");
    assert_eq!(rt.take(e).unwrap(), Ok(()), "timed out with the event set");
}

/// Review 10 (a2): an interrupt's bits for an event group (or permit for a
/// semaphore) whose waiter blocked before it was interrupt-capable reached it
/// only when its deadline passed (980 ms late in the review's run): the drain
/// runs only while some fiber is counted as an interrupt waiter. Virtual
/// time: the waiters must resume at the give's tick, not at their deadlines.
#[test]
fn interrupt_bits_and_gives_reach_plain_timed_waiters_without_waiting_for_the_deadline() {
    use filament::sync::{EventGroup, Semaphore, Want};
    static EG: EventGroup = EventGroup::new();
    static SEM: Semaphore = Semaphore::new(0);
    let rt = Runtime::<'static, 3>::new();
    let g = rt.spawn(stack(), |fib| (EG.wait_timeout(fib, Want::any(1), 1_000).map_err(drop), fib.now())).unwrap();
    let s = rt.spawn(stack(), |fib| (SEM.acquire_timeout(fib, 1_000), fib.now())).unwrap();
    rt.spawn_detached(stack(), |fib| {
        fib.sleep(5);
        EG.set_bits_from_isr(1);
        SEM.give_from_isr();
    })
    .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(g).unwrap(), (Ok(1), 5));
    assert_eq!(rt.take(s).unwrap(), (Ok(()), 5));
}
