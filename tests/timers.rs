//! Software timers: exact expiry ticks on the runtime's (virtual) clock, no
//! drift, one-shot vs auto-reload, the commands and queries, interrupt-side
//! commands, the service's life cycle, and a model-based property test.

use std::cell::RefCell;

use filament::host::HostClock;
use filament::timer::{Mode, ServiceError, Timer, TimerError, TimerService};
use filament::{Fiber, Runtime, Stack, Ticks, WaitReason};
use proptest::prelude::*;

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

thread_local! {
    /// (timer id, tick) of every callback run on this thread.
    static FIRED: RefCell<Vec<(usize, Ticks)>> = const { RefCell::new(Vec::new()) };
}

fn record(fib: &Fiber<'_>, t: &Timer<'_>) {
    FIRED.with(|f| f.borrow_mut().push((t.id(), fib.now())));
}

fn fired() -> Vec<(usize, Ticks)> {
    FIRED.with(|f| std::mem::take(&mut *f.borrow_mut()))
}

#[test]
fn coprime_periodic_timers_fire_exactly_on_time_over_100k_ticks() {
    const PERIODS: [Ticks; 5] = [3, 7, 11, 13, 1009];
    const HORIZON: Ticks = 100_000; // no period divides it
    let svc = TimerService::new().named("timers");
    let timers: Vec<Timer<'_>> =
        PERIODS.iter().enumerate().map(|(i, &p)| Timer::auto_reload(&svc, p, record).with_id(i)).collect();
    fired();
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| svc.run(fib).unwrap()).unwrap();
        rt.spawn_detached(stack(), |fib| {
            for t in &timers {
                t.start(fib).unwrap();
            }
            fib.sleep(HORIZON);
            for t in &timers {
                t.stop(fib).unwrap();
            }
            svc.shutdown(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    let got = fired();
    for (i, &p) in PERIODS.iter().enumerate() {
        let ticks: Vec<Ticks> = got.iter().filter(|f| f.0 == i).map(|f| f.1).collect();
        let want: Vec<Ticks> = (1..=HORIZON / p).map(|k| k * p).collect();
        assert_eq!(ticks.len() as u64, HORIZON / p, "period {p}");
        assert!(ticks == want, "period {p}: fired at other ticks than k*{p}");
    }
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "callbacks run in expiry order");
    assert_eq!(got.len(), PERIODS.iter().map(|p| (HORIZON / p) as usize).sum::<usize>());
}

#[test]
fn one_shot_fires_once_and_auto_reload_does_not_drift_behind_a_slow_callback() {
    fn slow(fib: &Fiber<'_>, t: &Timer<'_>) {
        record(fib, t);
        if t.id() == 1 {
            // Blocks the service, at 10 for longer than a period: the expiry
            // at 20 runs late (at 25), and the next one is still at 30.
            fib.sleep(if fib.now() == 10 { 15 } else { 4 });
        }
    }
    let svc = TimerService::new();
    let once = Timer::one_shot(&svc, 5, record).with_id(0);
    let every = Timer::auto_reload(&svc, 10, slow).with_id(1);
    fired();
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| svc.run(fib).unwrap()).unwrap();
        let h = rt
            .spawn(stack(), |fib| {
                once.start(fib).unwrap();
                every.start(fib).unwrap();
                assert_eq!(once.mode(), Mode::OneShot);
                fib.sleep(6);
                let after_once = (once.is_active(fib).unwrap(), once.remaining(fib).unwrap());
                fib.sleep(39); // now 45
                let r = (every.remaining(fib).unwrap(), every.expiry(fib).unwrap(), svc.active(fib).unwrap());
                every.stop(fib).unwrap();
                svc.shutdown(fib).unwrap();
                (after_once, r)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), ((false, None), (Some(5), Some(50), 1)));
    });
    assert_eq!(fired(), [(0, 5), (1, 10), (1, 25), (1, 30), (1, 40)]);
}

#[test]
fn stop_reset_change_period_and_queries() {
    let svc = TimerService::new();
    let t = Timer::one_shot(&svc, 10, record).with_id(7).named("t");
    fired();
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| svc.run(fib).unwrap()).unwrap();
        let h = rt
            .spawn(stack(), |fib| {
                let mut seen = Vec::new();
                seen.push(t.remaining(fib).unwrap()); // dormant: None
                t.start(fib).unwrap(); // expires at 10
                fib.sleep(8);
                t.reset(fib).unwrap(); // now 18
                seen.push(t.remaining(fib).unwrap());
                fib.sleep(5);
                t.stop(fib).unwrap(); // 23: never fires for that start
                t.stop(fib).unwrap(); // stopping a dormant timer does nothing
                fib.sleep(20);
                assert_eq!(t.change_period(fib, 0), Err(TimerError::ZeroPeriod));
                t.change_period(fib, 4).unwrap(); // 33: a dormant timer starts -> 37
                seen.push(t.expiry(fib).unwrap());
                fib.sleep(10);
                seen.push(Some(t.period(fib).unwrap()));
                svc.shutdown(fib).unwrap();
                seen
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), [None, Some(10), Some(37), Some(4)]);
    });
    assert_eq!(fired(), [(7, 37)]);
    assert_eq!(t.name(), "t");
    assert!(format!("{t:?}").contains("\"t\""));
}

#[test]
fn a_callback_may_command_its_own_timer() {
    fn twice_then_stop(fib: &Fiber<'_>, t: &Timer<'_>) {
        record(fib, t);
        let n = FIRED.with(|f| f.borrow().len());
        if n == 2 {
            // A `&Timer<'_>` of a `static` service: find it again by id.
            STOPPER.stop(fib).unwrap();
            STOPPER_SVC.shutdown(fib).unwrap();
        }
    }
    static STOPPER_SVC: TimerService = TimerService::new();
    static STOPPER: Timer = Timer::auto_reload(&STOPPER_SVC, 3, twice_then_stop);
    fired();
    Runtime::<2>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            STOPPER.start(fib).unwrap();
            STOPPER_SVC.run(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(fired(), [(0, 3), (0, 6)]);
}

#[test]
fn service_life_cycle() {
    static SVC: TimerService = TimerService::new().named("daemon");
    Runtime::<4>::scope(|rt| {
        // Shut down before any fiber runs it: `run` returns at once.
        let h = rt
            .spawn(stack(), |fib| {
                SVC.shutdown(fib).unwrap();
                SVC.run(fib)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Ok(()));
        // Two fibers cannot run one service; the service fiber shows in
        // `fiber_info` as waiting in the service's signal, by name.
        let first = rt.spawn_named("svc", stack(), |fib| SVC.run(fib)).unwrap();
        let first_id = first.id();
        let second = rt
            .spawn(stack(), move |fib| {
                let r = SVC.run(fib);
                let info = fib.fiber_info(first_id).unwrap();
                SVC.shutdown(fib).unwrap();
                (r, info.waiting_in)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(first).unwrap(), Ok(()));
        let (r, waiting_in) = rt.take(second).unwrap();
        assert_eq!(r, Err(ServiceError::AlreadyRunning));
        assert_eq!(waiting_in, "daemon");
    });
}

#[test]
fn a_panicking_callback_leaves_the_service_usable() {
    fn boom(_: &Fiber<'_>, _: &Timer<'_>) {
        panic!("callback failed");
    }
    let svc = TimerService::new();
    let bad = Timer::one_shot(&svc, 2, boom);
    let good = Timer::one_shot(&svc, 5, record).with_id(3);
    fired();
    Runtime::<4>::scope(|rt| {
        let s = rt.spawn(stack(), |fib| svc.run(fib)).unwrap();
        rt.spawn_detached(stack(), |fib| {
            bad.start(fib).unwrap();
            good.start(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert!(rt.take(s).is_err(), "the panic is the service fiber's outcome");
        // A new service fiber serves the timer still active.
        rt.spawn_detached(stack(), |fib| svc.run(fib).unwrap()).unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(10);
            svc.shutdown(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(fired(), [(3, 5)]);
}

#[test]
fn commands_from_an_interrupt_handler() {
    static SVC: TimerService = TimerService::new();
    static T: Timer = Timer::auto_reload(&SVC, 2, record).with_id(9);
    fired();
    // Before the run: applied when the service first runs (at tick 0).
    T.start_from_isr();
    T.stop_from_isr();
    T.start_from_isr(); // the last command wins
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| SVC.run(fib).unwrap()).unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(5); // fires at 2, 4
            T.stop_from_isr(); // from "interrupt context" (only atomics)
            fib.sleep(10);
            assert!(!T.is_active(fib).unwrap());
            T.reset_from_isr(); // at 15 -> 17
            fib.sleep(3);
            T.stop(fib).unwrap();
            SVC.shutdown(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(fired(), [(9, 2), (9, 4), (9, 17)]);
}

#[test]
fn interrupt_commands_from_another_thread_wake_an_idle_service() {
    static SVC: TimerService = TimerService::new();
    static T: Timer = Timer::one_shot(&SVC, 1, stop_service);
    fn stop_service(fib: &Fiber<'_>, _: &Timer<'_>) {
        SVC.shutdown(fib).unwrap();
    }
    Runtime::<2>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| SVC.run(fib).unwrap()).unwrap();
        let isr = std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            T.start_from_isr();
        });
        // Only the service waits (on its signal): the runtime idles, not
        // deadlocks, until the "interrupt" starts the timer.
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        isr.join().unwrap();
    });
}

#[test]
fn the_service_fiber_is_reported_as_waiting_on_its_signal() {
    static SVC: TimerService = TimerService::new().named("tmr");
    Runtime::<2>::scope(|rt| {
        let s = rt.spawn_named("svc", stack(), |fib| SVC.run(fib)).unwrap();
        let sid = s.id();
        let h = rt
            .spawn(stack(), move |fib| {
                fib.yield_now();
                let info = fib.fiber_info(sid).unwrap();
                SVC.shutdown(fib).unwrap();
                info.state
            })
            .unwrap();
        rt.run().unwrap();
        let state = rt.take(h).unwrap();
        assert!(matches!(state, filament::FiberState::Blocked(WaitReason::Irq(_))), "{state:?}");
        rt.take(s).unwrap().unwrap();
    });
}

/// The interrupt-side calls from a real POSIX signal handler, delivered to
/// the thread that runs the runtime (so it interrupts fibers, the scheduler
/// and the idle hook anywhere): a timer start and an event-group set per
/// signal. The logger sees the bits again and again; the timer's callback runs.
#[test]
fn interrupt_calls_from_a_signal_handler_on_the_runtime_thread() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use filament::sync::{EventGroup, Want};

    static SVC: TimerService = TimerService::new();
    static G: EventGroup = EventGroup::new();
    static T: Timer = Timer::one_shot(&SVC, 1, count);
    static CALLBACKS: AtomicU64 = AtomicU64::new(0);
    fn count(_: &Fiber<'_>, _: &Timer<'_>) {
        CALLBACKS.fetch_add(1, Ordering::Relaxed);
    }
    extern "C" fn on_sigusr2(_: libc::c_int) {
        T.start_from_isr();
        SVC.set_bits_from_isr(&G, 1);
    }
    // SAFETY: installs a handler that makes only the calls documented as
    // interrupt-safe (atomics); no other test of this binary uses SIGUSR2.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr2 as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
    }
    const WANT: u32 = 50;
    // SAFETY: plain query of the calling thread.
    let me = unsafe { libc::pthread_self() };
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let sender = std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            // SAFETY: `me` is alive: it joins this thread before it returns.
            unsafe { libc::pthread_kill(me, libc::SIGUSR2) };
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    });
    Runtime::<2>::scope(|rt| {
        let svc = rt.spawn(stack(), |fib| SVC.run(fib)).unwrap();
        let logger = rt
            .spawn(stack(), |fib| {
                for _ in 0..WANT {
                    G.wait(fib, Want::any(1).clear_on_exit()).unwrap();
                }
                // Let at least one timer expiry through, then stop.
                while CALLBACKS.load(Ordering::Relaxed) == 0 {
                    fib.sleep(1);
                }
                SVC.shutdown(fib).unwrap();
            })
            .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        rt.take(logger).unwrap();
        rt.take(svc).unwrap().unwrap();
    });
    done.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    // SAFETY: blocks SIGUSR2 for this thread only: no handler runs after the
    // test (the sender has stopped; a signal still in flight stays pending).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    assert!(CALLBACKS.load(Ordering::Relaxed) >= 1);
}

// ================================================================ model

const NT: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Op {
    Start(usize),
    Stop(usize),
    ChangePeriod(usize, Ticks),
    Remaining(usize),
    Sleep(Ticks),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..NT).prop_map(Op::Start),
        2 => (0..NT).prop_map(Op::Stop),
        2 => (0..NT, 1u64..12).prop_map(|(t, p)| Op::ChangePeriod(t, p)),
        2 => (0..NT).prop_map(Op::Remaining),
        4 => (1u64..30).prop_map(Op::Sleep),
    ]
}

/// The reference: the active timers in firing order, fired as time passes.
struct Model {
    now: Ticks,
    modes: [Mode; NT],
    periods: [Ticks; NT],
    /// (expiry, timer), sorted by expiry, FIFO among equal expiries.
    active: Vec<(Ticks, usize)>,
    fired: Vec<(usize, Ticks)>,
    answers: Vec<Option<Ticks>>,
}

impl Model {
    fn disarm(&mut self, t: usize) {
        self.active.retain(|a| a.1 != t);
    }

    fn arm(&mut self, t: usize, expiry: Ticks) {
        self.disarm(t);
        let at = self.active.iter().position(|a| a.0 > expiry).unwrap_or(self.active.len());
        self.active.insert(at, (expiry, t));
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Start(t) => self.arm(t, self.now + self.periods[t]),
            Op::Stop(t) => self.disarm(t),
            Op::ChangePeriod(t, p) => {
                self.periods[t] = p;
                self.arm(t, self.now + p);
            }
            Op::Remaining(t) => {
                let r = self.active.iter().find(|a| a.1 == t).map(|a| a.0 - self.now);
                self.answers.push(r);
            }
            Op::Sleep(d) => {
                let until = self.now + d;
                while let Some(&(e, t)) = self.active.first()
                    && e <= until
                {
                    self.active.remove(0);
                    self.fired.push((t, e));
                    if self.modes[t] == Mode::AutoReload {
                        self.arm(t, e + self.periods[t]);
                    }
                }
                self.now = until;
            }
        }
    }
}

fn run_timers(modes: [Mode; NT], periods: [Ticks; NT], ops: &[Op]) -> Result<(), TestCaseError> {
    let svc = TimerService::new();
    let timers: Vec<Timer<'_>> = (0..NT).map(|i| Timer::new(&svc, modes[i], periods[i], record).with_id(i)).collect();
    fired();
    let answers = std::sync::Mutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| svc.run(fib).unwrap()).unwrap();
        rt.spawn_detached(stack(), |fib| {
            for &op in ops {
                match op {
                    Op::Start(t) => timers[t].start(fib).unwrap(),
                    Op::Stop(t) => timers[t].stop(fib).unwrap(),
                    Op::ChangePeriod(t, p) => timers[t].change_period(fib, p).unwrap(),
                    Op::Remaining(t) => answers.lock().unwrap().push(timers[t].remaining(fib).unwrap()),
                    Op::Sleep(d) => {
                        fib.sleep(d);
                        // Let the service run what expired at this very tick
                        // before the next command (the model's convention);
                        // it yields between two callbacks, so one yield is
                        // not always enough.
                        while timers.iter().any(|t| t.expiry(fib).unwrap().is_some_and(|e| e <= fib.now())) {
                            fib.yield_now();
                        }
                    }
                }
                fib.debug_check_invariants().unwrap();
            }
            for t in &timers {
                t.stop(fib).unwrap();
            }
            svc.shutdown(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    let mut model = Model { now: 0, modes, periods, active: Vec::new(), fired: Vec::new(), answers: Vec::new() };
    for &op in ops {
        model.apply(op);
    }
    prop_assert_eq!(fired(), model.fired);
    prop_assert_eq!(answers.into_inner().unwrap(), model.answers);
    Ok(())
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::OneShot), Just(Mode::AutoReload)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn timers_match_model(
        modes in [mode(), mode(), mode()],
        periods in [1u64..12, 1u64..12, 1u64..12],
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run_timers(modes, periods, &ops)?;
    }
}

// ================================================================ the end of time

/// An expiry of `Ticks::MAX` is "never", as a deadline is: on a clock at
/// `Ticks::MAX` a started timer (its expiry saturates there) stays armed and
/// never fires. The service used to compare `expiry <= now`, fire the one-shot
/// at once and the auto-reload timer forever (its next expiry saturated to
/// `Ticks::MAX` too) without ever yielding.
#[test]
fn a_clock_at_ticks_max_never_fires_a_timer() {
    static SVC: TimerService = TimerService::new();
    fn stop_after_100(fib: &Fiber<'_>, t: &Timer<'_>) {
        record(fib, t);
        // Bounds the old endless loop so this test fails instead of hanging.
        if FIRED.with(|f| f.borrow().len()) >= 100 {
            let _ = if t.id() == 1 { AUTO.stop(fib) } else { Ok(()) };
        }
    }
    static ONCE: Timer = Timer::one_shot(&SVC, 10, stop_after_100).with_id(0);
    static AUTO: Timer = Timer::auto_reload(&SVC, 10, stop_after_100).with_id(1);
    fired();
    let rt = Box::new(Runtime::<'static, 2>::new());
    assert!(rt.set_now(Ticks::MAX));
    let svc = rt.spawn(stack(), |fib| SVC.run(fib)).unwrap();
    let h = rt
        .spawn(stack(), |fib| {
            ONCE.start(fib).unwrap();
            AUTO.start(fib).unwrap();
            for _ in 0..3 {
                fib.yield_now();
            }
            let seen = [&ONCE, &AUTO].map(|t| (t.is_active(fib), t.expiry(fib), t.remaining(fib)));
            ONCE.stop(fib).unwrap();
            AUTO.stop(fib).unwrap();
            SVC.shutdown(fib).unwrap();
            (seen, fib.now())
        })
        .unwrap();
    rt.run().unwrap();
    rt.take(svc).unwrap().unwrap();
    let never = (Ok(true), Ok(Some(Ticks::MAX)), Ok(Some(Ticks::MAX)));
    assert_eq!(rt.take(h).unwrap(), ([never, never], Ticks::MAX));
    assert_eq!(fired(), []);
}

/// A service that fell behind (a clock that jumped, a callback that blocked)
/// catches up one callback per missed period, as FreeRTOS's timer task does,
/// but lets the other ready fibers run between two callbacks. It used to run
/// them all back to back: here 1000 callbacks while the other fiber never
/// ran (and with a clock far ahead, indefinitely long).
#[test]
fn catching_up_on_missed_periods_lets_other_fibers_run_between_callbacks() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static SVC: TimerService = TimerService::new();
    static CALLS: AtomicU64 = AtomicU64::new(0);
    static TURNS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SEEN: RefCell<Vec<(Ticks, u64)>> = const { RefCell::new(Vec::new()) };
    }
    fn late(fib: &Fiber<'_>, _: &Timer<'_>) {
        SEEN.with(|s| s.borrow_mut().push((fib.now(), TURNS.load(Relaxed))));
        if CALLS.fetch_add(1, Relaxed) == 0 {
            fib.sleep(1000); // at tick 1: the service misses 1000 periods
        }
    }
    static EVERY: Timer = Timer::auto_reload(&SVC, 1, late);
    let rt = Box::new(Runtime::<'static, 2>::new());
    rt.spawn_detached(stack(), |fib| SVC.run(fib).unwrap()).unwrap();
    rt.spawn_detached(stack(), |fib| {
        EVERY.start(fib).unwrap();
        fib.sleep(1001);
        while CALLS.load(Relaxed) < 300 {
            TURNS.fetch_add(1, Relaxed);
            fib.yield_now();
        }
        EVERY.stop(fib).unwrap();
        SVC.shutdown(fib).unwrap();
    })
    .unwrap();
    rt.run().unwrap();
    let seen = SEEN.with(|s| s.take());
    assert_eq!(seen[0], (1, 0));
    let late: Vec<u64> = seen[1..].iter().map(|&(now, turns)| if now == 1001 { turns } else { u64::MAX }).collect();
    assert!(late.len() >= 299, "{} late callbacks", late.len());
    assert!(late.windows(2).all(|w| w[0] < w[1]), "the other fiber did not run between two late callbacks: {late:?}");
}

/// A free-running clock: every reading is `STEP` ticks later than the last.
struct FreeRunning {
    t: Ticks,
    idles: u32,
    /// The deadlines the runtime idled for.
    nexts: Vec<Option<Ticks>>,
}

const STEP: Ticks = 1 << 32;

impl filament::Idle for FreeRunning {
    fn idle(&mut self, now: Ticks, next: Option<Ticks>) -> Ticks {
        self.idles += 1;
        self.nexts.push(next);
        assert!(self.idles < 10_000, "idled {} times at now {now:#x}, next deadline {next:?}", self.idles);
        self.t = self.t.max(now).max(next.unwrap_or(0)).saturating_add(STEP);
        self.t
    }
    fn now(&mut self) -> Option<Ticks> {
        self.t = self.t.saturating_add(STEP);
        Some(self.t)
    }
}

/// The service waits for the earliest expiry itself, not for "expiry − now"
/// measured from one clock reading and added to another: with a clock that
/// advances between readings that fired every timer late by the advance, and
/// within one advance of `Ticks::MAX` it saturated to "never" and the timer
/// never fired (review 12: the run idled forever at `Ticks::MAX`). Before the
/// fix the runtime idled for `expiry + STEP` here, and for no deadline at all
/// near the end of time.
#[test]
fn a_timer_fires_at_its_expiry_with_a_clock_that_advances_at_every_reading() {
    use filament::sync::Event;
    static FIRED_AT: std::sync::Mutex<Vec<Ticks>> = std::sync::Mutex::new(Vec::new());
    for start in [1000, Ticks::MAX - 13 * STEP - STEP / 2] {
        static SVC: TimerService = TimerService::new();
        static DONE: Event = Event::new();
        fn on_fire(fib: &Fiber<'_>, _t: &Timer<'_>) {
            FIRED_AT.lock().unwrap().push(fib.now());
            DONE.set(fib).unwrap();
        }
        static T: Timer = Timer::one_shot(&SVC, 10 * STEP, on_fire);
        FIRED_AT.lock().unwrap().clear();
        let rt = Runtime::<'static, 2>::new();
        let expiry = std::sync::Arc::new(std::sync::Mutex::new(0));
        let e2 = expiry.clone();
        rt.spawn_detached(stack(), |fib| SVC.run(fib).unwrap()).ok().unwrap();
        rt.spawn_detached(stack(), move |fib| {
            T.start(fib).unwrap();
            *e2.lock().unwrap() = T.expiry(fib).unwrap().unwrap();
            DONE.wait(fib).unwrap();
            DONE.reset(fib).unwrap();
            SVC.shutdown(fib).unwrap();
        })
        .ok()
        .unwrap();
        let mut clock = FreeRunning { t: start, idles: 0, nexts: Vec::new() };
        rt.run_with_idle(&mut clock).unwrap();
        let expiry = *expiry.lock().unwrap();
        let fired = FIRED_AT.lock().unwrap().clone();
        assert_eq!(fired.len(), 1, "start {start:#x}: fired {fired:x?}");
        assert!(expiry < Ticks::MAX, "start {start:#x}: the timer's expiry is a real time");
        assert!(fired[0] >= expiry, "start {start:#x}: expiry {expiry:#x}, fired early at {:#x}", fired[0]);
        // The runtime idled for exactly the expiry (the test clock then
        // overshoots it by a step of its own, and each reading adds one).
        assert_eq!(clock.nexts, [Some(expiry)], "start {start:#x}: idled for these deadlines");
    }
}
