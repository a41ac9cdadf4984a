//! `IrqSignal` wake-ups on hosts: notifications raised from other OS threads
//! and from POSIX signal handlers are counted, never lost, however many threads
//! notify and whichever threads drive the runtime, one after another.
//!
//! A lost wake-up leaves the runtime parked for good with notifications
//! pending, so every scenario runs under a watchdog that fails the test after
//! 5 s without progress instead of hanging it. Nothing here asserts timing.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use filament::host::HostClock;
use filament::{Idle, IrqError, IrqSignal, Runtime, Stack, Ticks};

/// How long one scenario (one round of a stress test) may take before the
/// test calls it hung.
const WATCHDOG: Duration = Duration::from_secs(5);

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

/// Runs `f` on a thread of its own and returns its result; fails the test if
/// `f` has not returned after [`WATCHDOG`] (its thread is left behind, parked).
fn watchdog<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(Ok(v)) => v,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: hung for {WATCHDOG:?}: a wake-up was lost (runtime parked, notifications pending)"),
    }
}

/// A [`HostClock`] that raises a flag each time the runtime is about to idle,
/// so a test can notify at the worst moment: after the runtime's last look at
/// its signals, before or while it sleeps.
struct Announcing {
    clock: HostClock,
    idling: &'static AtomicBool,
}

impl Idle for Announcing {
    fn idle(&mut self, now: Ticks, next_deadline: Option<Ticks>) -> Ticks {
        self.idling.store(true, Ordering::SeqCst);
        Idle::idle(&mut self.clock, now, next_deadline)
    }

    fn now(&mut self) -> Option<Ticks> {
        Idle::now(&mut self.clock)
    }
}

fn wait_until_idling(idling: &AtomicBool) {
    while !idling.load(Ordering::SeqCst) {
        thread::yield_now();
    }
}

/// `notifiers` threads raise `per_thread` notifications each while `drive`
/// runs the runtime: its one fiber waits until it has received all of them.
/// Returns what the fiber received.
fn notify_from_threads(
    sig: &'static IrqSignal,
    notifiers: usize,
    per_thread: u64,
    drive: impl FnOnce(u64) -> u64,
) -> u64 {
    let notifier_threads: Vec<_> = (0..notifiers)
        .map(|_| {
            thread::spawn(move || {
                for i in 0..per_thread {
                    sig.notify_from_isr();
                    if i % 16 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let got = drive(notifiers as u64 * per_thread);
    for t in notifier_threads {
        t.join().unwrap();
    }
    got
}

/// The waiting fiber: takes notifications until `total` arrived.
fn take_until<'s>(sig: &'s IrqSignal, total: u64) -> impl FnOnce(&filament::Fiber<'s>) -> u64 + Send + 's {
    move |fib| {
        let mut got = 0u64;
        while got < total {
            got += sig.wait(fib).expect("the signal belongs to this runtime");
        }
        got
    }
}

const ROUNDS: usize = 100;
const NOTIFIERS: usize = 4;
const PER_THREAD: u64 = 250;

#[test]
fn many_notifier_threads_one_runtime_thread_nothing_lost() {
    static SIG: IrqSignal = IrqSignal::new();
    for round in 0..ROUNDS {
        let got = watchdog(format!("round {round}"), || {
            notify_from_threads(&SIG, NOTIFIERS, PER_THREAD, |total| {
                Runtime::<2>::scope(|rt| {
                    let h = rt.spawn(stack(), take_until(&SIG, total)).ok().unwrap();
                    rt.run_with_idle(&mut HostClock::new()).unwrap();
                    rt.take(h).unwrap()
                })
            })
        });
        assert_eq!(got, NOTIFIERS as u64 * PER_THREAD, "round {round}");
        assert_eq!(SIG.pending(), 0, "round {round}: notifications left over");
    }
}

/// One `static` runtime driven by a new thread every round, with several
/// notifier threads.
#[test]
fn many_notifier_threads_runtime_driven_from_a_new_thread_each_round() {
    static SIG: IrqSignal = IrqSignal::new();
    static RT: Runtime<'static, 2> = Runtime::new();
    for round in 0..ROUNDS {
        let got = watchdog(format!("round {round}"), || {
            notify_from_threads(&SIG, NOTIFIERS, PER_THREAD, |total| {
                thread::spawn(move || {
                    let h = RT.spawn(stack(), take_until(&SIG, total)).ok().unwrap();
                    RT.run_with_idle(&mut HostClock::new()).unwrap();
                    RT.take(h).unwrap()
                })
                .join()
                .unwrap()
            })
        });
        assert_eq!(got, NOTIFIERS as u64 * PER_THREAD, "round {round}");
        assert_eq!(SIG.pending(), 0, "round {round}: notifications left over");
    }
}

/// Deterministic: the runtime first ran on one thread, now runs on another,
/// and the notification comes once it idles.
#[test]
fn runtime_driven_from_another_thread_is_woken() {
    static SIG: IrqSignal = IrqSignal::new();
    static RT: Runtime<'static, 2> = Runtime::new();
    static IDLING: AtomicBool = AtomicBool::new(false);
    for round in 0..3 {
        let got = watchdog(format!("round {round}"), || {
            IDLING.store(false, Ordering::SeqCst);
            let driver = thread::spawn(|| {
                let h = RT.spawn(stack(), |fib| SIG.wait(fib).unwrap()).ok().unwrap();
                RT.run_with_idle(&mut Announcing { clock: HostClock::new(), idling: &IDLING }).unwrap();
                RT.take(h).unwrap()
            });
            wait_until_idling(&IDLING);
            SIG.notify_from_isr();
            driver.join().unwrap()
        });
        assert_eq!(got, 1, "round {round}");
    }
}

/// Deterministic: the notification lands after the runtime's last poll of
/// its signals and before the idle hook sleeps (the hook itself raises it
/// first thing), the window a sleep-until-notified design must close.
#[test]
fn notification_between_the_poll_and_the_sleep_is_not_lost() {
    static SIG: IrqSignal = IrqSignal::new();
    /// Notifies at the start of every idle call, then sleeps as a HostClock.
    struct NotifyThenSleep(HostClock);
    impl Idle for NotifyThenSleep {
        fn idle(&mut self, now: Ticks, next_deadline: Option<Ticks>) -> Ticks {
            SIG.notify_from_isr();
            Idle::idle(&mut self.0, now, next_deadline)
        }
    }
    for round in 0..3 {
        let got = watchdog(format!("round {round}"), || {
            Runtime::<2>::scope(|rt| {
                let h = rt.spawn(stack(), |fib| SIG.wait(fib).unwrap()).ok().unwrap();
                rt.run_with_idle(&mut NotifyThenSleep(HostClock::new())).unwrap();
                rt.take(h).unwrap()
            })
        });
        assert_eq!(got, 1, "round {round}");
    }
}

/// A runtime binds the signal while the runtime that had it is being dropped
/// on another thread; the new runtime must still be woken.
#[test]
fn rebinding_while_the_previous_runtime_drops() {
    static SIG: IrqSignal = IrqSignal::new();
    static IDLING: AtomicBool = AtomicBool::new(false);
    for round in 0..ROUNDS {
        let got = watchdog(format!("round {round}"), || {
            IDLING.store(false, Ordering::SeqCst);
            let start = Arc::new(Barrier::new(2));
            let old = Runtime::<2>::new();
            let h = old.spawn(stack(), |fib| SIG.try_take(fib).unwrap()).ok().unwrap();
            old.run().unwrap();
            let _ = old.take(h).unwrap();
            let start2 = Arc::clone(&start);
            let new = thread::spawn(move || {
                Runtime::<2>::scope(|rt| {
                    let h = rt
                        .spawn(stack(), move |fib| {
                            start2.wait();
                            while SIG.try_take(fib) == Err(IrqError::WrongRuntime) {
                                std::hint::spin_loop();
                            }
                            SIG.wait(fib).unwrap()
                        })
                        .unwrap();
                    rt.run_with_idle(&mut Announcing { clock: HostClock::new(), idling: &IDLING }).unwrap();
                    rt.take(h).unwrap()
                })
            });
            start.wait();
            drop(old); // unregisters the signal while `new` spins to bind it
            wait_until_idling(&IDLING);
            SIG.notify_from_isr();
            new.join().unwrap()
        });
        assert_eq!(got, 1, "round {round}");
    }
}

/// `notify_from_isr` from a real POSIX signal handler, delivered to the very
/// thread that runs the runtime, while it runs fibers or sleeps in its idle
/// hook: every handler invocation is counted.
#[test]
fn notifications_from_a_signal_handler_on_the_runtime_thread() {
    static SIG: IrqSignal = IrqSignal::new();
    static RAISED: AtomicU64 = AtomicU64::new(0);
    extern "C" fn on_sigusr1(_: libc::c_int) {
        RAISED.fetch_add(1, Ordering::SeqCst);
        SIG.notify_from_isr();
    }
    // SAFETY: installs a handler that only touches atomics (what
    // `notify_from_isr` documents as signal-safe); no other test uses SIGUSR1.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    const WANT: u64 = 200;
    let (got, raised, left) = watchdog("signal handler".into(), || {
        // SAFETY: plain query of the calling thread.
        let me = unsafe { libc::pthread_self() };
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let sender = thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // SAFETY: `me` is alive: it joins this thread before it exits.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                thread::sleep(Duration::from_micros(50));
            }
        });
        let got = Runtime::<2>::scope(|rt| {
            let h = rt.spawn(stack(), take_until(&SIG, WANT)).ok().unwrap();
            rt.run_with_idle(&mut HostClock::new()).unwrap();
            rt.take(h).unwrap()
        });
        done.store(true, Ordering::SeqCst);
        sender.join().unwrap();
        // SAFETY: blocks SIGUSR1 for this thread only, so no handler runs
        // between the two reads below.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        (got, RAISED.load(Ordering::SeqCst), SIG.pending())
    });
    assert!(got >= WANT);
    assert_eq!(raised, got + left, "every handler invocation is taken or still pending");
}
