//! Event groups and timers under schedule exploration (feature `explore`):
//! their operations are choice points, and what they promise holds in every
//! schedule the explorer tries (random, PCT and exhaustive within a bound).

use std::sync::Mutex as StdMutex;

use filament::host::explore::{Explorer, Policy, Schedule};
use filament::sync::{EventGroup, Want};
use filament::timer::{Timer, TimerService};
use filament::{Fiber, Runtime, Stack, Ticks};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap").without_painting()
}

/// Three parties meet twice with `sync`; a fourth fiber sets and clears an
/// unrelated bit meanwhile. Every round completes for all three with every
/// party's bit, and the rendezvous bits end cleared.
fn rendezvous(s: &mut Schedule) {
    const ALL: u32 = 0b111;
    const NOISE: u32 = 1 << 8;
    let g = EventGroup::new();
    let got = StdMutex::new(Vec::new());
    let (g, got) = (&g, &got);
    Runtime::<5>::scope(|rt| {
        s.install(rt);
        for i in 0..3 {
            rt.spawn_detached(stack(), move |fib| {
                for _round in 0..2 {
                    fib.yield_now();
                    let bits = g.sync(fib, 1 << i, ALL).expect("sync");
                    got.lock().unwrap().push(bits & ALL);
                    // A fast party may set its bit for round 2 before the
                    // others left round 1 (`sync` clears on exit, so that bit
                    // survives): rounds still complete with every bit.
                }
            })
            .expect("spawn");
        }
        rt.spawn_detached(stack(), move |fib| {
            for _ in 0..3 {
                g.set(fib, NOISE).expect("set");
                fib.yield_now();
                g.clear(fib, NOISE).expect("clear");
            }
        })
        .expect("spawn");
        rt.run().expect("run");
        let Ok(left) = rt.spawn(stack(), move |fib| g.get(fib).expect("get") & ALL) else { panic!("spawn") };
        rt.run().expect("run");
        assert_eq!(rt.take(left).expect("take"), 0, "rendezvous bits left set");
    });
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|&b| b == ALL), "a party left without every bit: {got:?}");
}

/// Waiters for overlapping masks, each clearing what it wants, and two
/// setters: every waiter is woken exactly once, with bits that satisfy it.
fn overlapping_waiters(s: &mut Schedule) {
    let g = EventGroup::new();
    let wants = [Want::any(0b01).clear_on_exit(), Want::all(0b11).clear_on_exit(), Want::any(0b10)];
    let got = StdMutex::new(Vec::new());
    let (g, got) = (&g, &got);
    Runtime::<6>::scope(|rt| {
        s.install(rt);
        for w in wants {
            rt.spawn_detached(stack(), move |fib| {
                let bits = g.wait(fib, w).expect("wait");
                assert!(w.holds(bits), "woken with {bits:#b} for {w:?}");
                got.lock().unwrap().push(w);
            })
            .expect("spawn");
        }
        for bits in [0b01, 0b10] {
            rt.spawn_detached(stack(), move |fib| {
                // Set until every waiter got through (a clear may eat a set).
                while got.lock().unwrap().len() < 3 {
                    g.set(fib, bits).expect("set");
                    fib.yield_now();
                }
            })
            .expect("spawn");
        }
        rt.run().expect("run");
    });
    assert_eq!(got.lock().unwrap().len(), 3);
}

thread_local! {
    static FIRED: std::cell::RefCell<Vec<(usize, Ticks)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn record(fib: &Fiber<'_>, t: &Timer<'_>) {
    FIRED.with(|f| f.borrow_mut().push((t.id(), fib.now())));
}

/// Two periodic timers and fibers that yield and sleep around them: the
/// callbacks fire at exactly k * period whatever the schedule.
fn periodic(s: &mut Schedule) {
    const HORIZON: Ticks = 60;
    let svc = TimerService::new();
    let a = Timer::auto_reload(&svc, 7, record).with_id(0);
    let b = Timer::auto_reload(&svc, 11, record).with_id(1);
    FIRED.with(|f| f.borrow_mut().clear());
    let (svc, a, b) = (&svc, &a, &b);
    Runtime::<4>::scope(|rt| {
        s.install(rt);
        rt.spawn_detached(stack(), move |fib| svc.run(fib).expect("service")).expect("spawn");
        rt.spawn_detached(stack(), move |fib| {
            for _ in 0..5 {
                fib.yield_now();
                fib.sleep(3);
            }
        })
        .expect("spawn");
        rt.spawn_detached(stack(), move |fib| {
            a.start(fib).expect("start");
            b.start(fib).expect("start");
            fib.sleep(HORIZON);
            a.stop(fib).expect("stop");
            b.stop(fib).expect("stop");
            svc.shutdown(fib).expect("shutdown");
        })
        .expect("spawn");
        rt.run().expect("run");
    });
    let fired = FIRED.with(|f| f.borrow().clone());
    for (id, p) in [(0, 7), (1, 11)] {
        let ticks: Vec<Ticks> = fired.iter().filter(|f| f.0 == id).map(|f| f.1).collect();
        let want: Vec<Ticks> = (1..=HORIZON / p).map(|k| k * p).collect();
        assert_eq!(ticks, want, "timer {id}");
    }
}

/// Runs `program` under `policy`; the schedules must have differed.
fn explore(policy: Policy, schedules: usize, program: fn(&mut Schedule)) {
    let summary = Explorer::new().policy(policy).schedules(schedules).run(program);
    eprintln!("{policy:?}: {summary:?}");
    assert!(summary.distinct > 10, "the explorer made real choices: {summary:?}");
}

#[test]
fn rendezvous_holds_in_explored_schedules() {
    explore(Policy::Random, 300, rendezvous);
    explore(Policy::Pct { depth: 3 }, 300, rendezvous);
}

#[test]
fn overlapping_waiters_hold_in_explored_schedules() {
    explore(Policy::Random, 300, overlapping_waiters);
    explore(Policy::Exhaustive { delays: 2 }, 2000, overlapping_waiters);
}

#[test]
fn timers_fire_on_time_in_explored_schedules() {
    explore(Policy::Random, 200, periodic);
    explore(Policy::Pct { depth: 2 }, 200, periodic);
}
