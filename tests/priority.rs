//! Fixed-priority scheduling: highest ready level first, FIFO within a level,
//! cooperative preemption at scheduling points, `set_priority`, and priority
//! inheritance on `Mutex`. Each test records the exact order of what the
//! fibers did.

#![allow(clippy::result_large_err)] // `run`'s result carries a deadlock report, returned by `scope` closures

use std::cell::Cell;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};

use filament::sync::{Mutex, Semaphore};
use filament::{Fiber, FiberId, Idle, IrqSignal, Priority, RunError, Runtime, SpawnOptions, Stack, Ticks, WaitReason};

fn stack() -> Stack<'static> {
    Stack::host(128 * 1024).expect("mmap stack")
}

fn p(level: u8) -> Priority {
    Priority::new(level).unwrap()
}

fn at(name: &'static str, level: u8) -> SpawnOptions {
    SpawnOptions::new().name(name).priority(p(level))
}

/// The steps the fibers logged, in order.
#[derive(Default)]
struct Log(StdMutex<Vec<String>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn take(&self) -> String {
        std::mem::take(&mut *self.0.lock().unwrap()).join(" ")
    }
}

#[test]
fn highest_level_runs_first_fifo_within_a_level() {
    let log = Log::default();
    Runtime::<8>::scope(|rt| {
        for (name, level) in [("l1", 0), ("h1", 2), ("m1", 1), ("h2", 2), ("l2", 0), ("m2", 1)] {
            let log = &log;
            rt.spawn_detached_with(stack(), at(name, level), move |fib| {
                for step in 0..2 {
                    log.push(format!("{name}.{step}"));
                    fib.yield_now();
                }
            })
            .unwrap();
        }
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "h1.0 h2.0 h1.1 h2.1 m1.0 m2.0 m1.1 m2.1 l1.0 l2.0 l1.1 l2.1");
}

#[test]
fn plain_spawn_is_the_default_level_and_keeps_fifo() {
    let log = Log::default();
    Runtime::<4>::scope(|rt| {
        let log = &log;
        for name in ["a", "b"] {
            rt.spawn_detached(stack(), move |fib| {
                assert_eq!(fib.priority(), Priority::DEFAULT);
                log.push(name);
                fib.yield_now();
                log.push(name);
            })
            .unwrap();
        }
        rt.spawn_detached_with(stack(), SpawnOptions::new().name("c"), move |fib| {
            log.push(fib.name());
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "a b c a b");
}

#[test]
fn yield_of_a_lone_top_fiber_returns_at_once() {
    let log = Log::default();
    Runtime::<4>::scope(|rt| {
        let log = &log;
        rt.spawn_detached_with(stack(), at("low", 0), move |_| log.push("low")).unwrap();
        rt.spawn_detached_with(stack(), at("top", 3), move |fib| {
            let before = fib.stats().switches;
            for i in 0..3 {
                fib.yield_now();
                log.push(format!("top{i}"));
            }
            // No fiber was switched in meanwhile: the yields never left.
            assert_eq!(fib.stats().switches, before);
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "top0 top1 top2 low");
}

#[test]
fn a_give_that_wakes_a_higher_fiber_switches_to_it_at_once() {
    let log = Log::default();
    let sem = Semaphore::new(0);
    Runtime::<4>::scope(|rt| {
        let (log, sem) = (&log, &sem);
        rt.spawn_detached_with(stack(), at("high", 2), move |fib| {
            log.push("high waits");
            sem.acquire(fib).unwrap();
            log.push("high got it");
        })
        .unwrap();
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            log.push("low gives");
            sem.give(fib).unwrap(); // a scheduling point: high runs now
            log.push("low after give");
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "high waits low gives high got it low after give");
}

#[test]
fn a_higher_fiber_spawned_by_a_fiber_runs_at_its_next_yield() {
    let log = Log::default();
    Runtime::<4>::scope(|rt| {
        let log = &log;
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            fib.spawn_detached_with(stack(), at("high", 1), move |_| log.push("high")).unwrap();
            log.push("low spawned"); // spawning is no scheduling point
            fib.yield_now();
            log.push("low again");
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "low spawned high low again");
}

/// A clock the test moves by hand; the runtime reads it at every yield while
/// a timer is armed.
struct HandClock<'a>(&'a AtomicU64);

impl Idle for HandClock<'_> {
    fn idle(&mut self, now: Ticks, next: Option<Ticks>) -> Ticks {
        let t = next.unwrap_or(now).max(self.0.load(Ordering::SeqCst));
        self.0.store(t, Ordering::SeqCst);
        t
    }
    fn now(&mut self) -> Option<Ticks> {
        Some(self.0.load(Ordering::SeqCst))
    }
}

#[test]
fn a_timer_wake_of_a_higher_fiber_takes_effect_at_the_next_yield() {
    let log = Log::default();
    let clock = AtomicU64::new(0);
    Runtime::<4>::scope(|rt| {
        let (log, clock) = (&log, &clock);
        rt.spawn_detached_with(stack(), at("high", 3), move |fib| {
            log.push("high sleeps");
            fib.sleep(10);
            log.push(format!("high woke at {}", fib.now()));
        })
        .unwrap();
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            log.push("low runs");
            clock.store(10, Ordering::SeqCst); // the deadline passes ...
            log.push("low still runs"); // ... but nothing switches before a scheduling point
            fib.yield_now();
            log.push("low again");
        })
        .unwrap();
        rt.run_with_idle(&mut HandClock(clock)).unwrap();
    });
    assert_eq!(log.take(), "high sleeps low runs low still runs high woke at 10 low again");
}

#[test]
fn an_irq_signal_wake_of_a_higher_fiber_takes_effect_at_the_next_yield() {
    let log = Log::default();
    let sig = IrqSignal::new();
    Runtime::<4>::scope(|rt| {
        let (log, sig) = (&log, &sig);
        rt.spawn_detached_with(stack(), at("handler", 5), move |fib| {
            log.push("handler waits");
            let n = sig.wait(fib).unwrap();
            log.push(format!("handler got {n}"));
        })
        .unwrap();
        rt.spawn_detached_with(stack(), at("busy", 1), move |fib| {
            log.push("busy");
            sig.notify_from_isr(); // as an interrupt handler would
            log.push("busy after notify");
            fib.yield_now();
            log.push("busy again");
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "handler waits busy busy after notify handler got 1 busy again");
}

#[test]
fn set_priority_up_and_down() {
    let log = Log::default();
    Runtime::<4>::scope(|rt| {
        let log = &log;
        let b = rt
            .spawn_detached_with(stack(), at("b", 1), move |fib| {
                log.push("b");
                fib.set_priority(p(0)); // to the head of level 0, before a
                log.push("b lowered");
                fib.yield_now();
                log.push(format!("b at {:?}", fib.priority()));
            })
            .unwrap();
        rt.spawn_detached_with(stack(), at("a", 2), move |fib| {
            log.push("a");
            // Lowering itself below a ready fiber: the switch waits for the
            // next scheduling point.
            fib.set_priority(p(0));
            assert_eq!((fib.priority(), fib.base_priority()), (p(0), p(0)));
            log.push("a lowered");
            fib.yield_now();
            log.push("a back");
            // Raise another (ready) fiber above itself: it runs at the next yield.
            assert!(fib.set_priority_of(b, p(4)));
            assert_eq!(fib.fiber_info(b).unwrap().priority, p(4));
            log.push("a raised b");
            fib.yield_now();
            log.push("a last");
            // Raising itself: keeps running.
            fib.set_priority(p(7));
            fib.yield_now();
            log.push("a at top");
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "a a lowered b b lowered a back a raised b b at P4 a last a at top");
}

#[test]
fn set_priority_of_a_finished_or_unknown_fiber_is_refused() {
    Runtime::<4>::scope(|rt| {
        let done = rt.spawn(stack(), |_| ()).unwrap();
        let id = done.id();
        rt.run().unwrap();
        rt.take(done).unwrap();
        rt.spawn_detached(stack(), move |fib| {
            assert!(!fib.set_priority_of(id, p(3)));
            assert!(fib.set_priority_of(fib.id(), p(3)));
            assert_eq!(fib.priority(), p(3));
        })
        .unwrap();
        rt.run().unwrap();
    });
}

/// The classic inversion: low holds the lock, high waits for it, medium
/// spins. With inheritance low runs at high's level until it unlocks, so
/// high finishes before medium does anything.
#[test]
fn priority_inversion_is_bounded_by_inheritance() {
    let log = Log::default();
    let lock = Mutex::new(0u32).named("shared");
    Runtime::<4>::scope(|rt| {
        let (log, lock) = (&log, &lock);
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            let mut g = lock.lock(fib).unwrap();
            log.push("low locked");
            fib.spawn_detached_with(stack(), at("high", 2), move |fib| {
                log.push("high waits");
                *lock.lock(fib).unwrap() += 1;
                log.push("high done");
            })
            .unwrap();
            fib.spawn_detached_with(stack(), at("medium", 1), move |fib| {
                for i in 0..3 {
                    log.push(format!("medium{i}"));
                    fib.yield_now();
                }
            })
            .unwrap();
            for i in 0..2 {
                fib.yield_now();
                log.push(format!("low works at {:?} base {:?}", fib.priority(), fib.base_priority()));
                let _ = i;
            }
            *g += 1;
            drop(g); // high gets the lock and runs at once
            log.push(format!("low unlocked at {:?}", fib.priority()));
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(
        log.take(),
        "low locked high waits low works at P2 base P0 low works at P2 base P0 high done \
         medium0 medium1 medium2 low unlocked at P0"
    );
    assert_eq!(lock.into_inner(), 2);
}

/// c (P3) waits for m2 held by b (P1), which waits for m1 held by a (P0):
/// both holders run at P3; each unlock gives back exactly what it lent.
#[test]
fn inheritance_follows_chains_and_is_undone_on_unlock() {
    let log = Log::default();
    let (m1, m2) = (Mutex::new(()), Mutex::new(()));
    Runtime::<4>::scope(|rt| {
        let (log, m1, m2) = (&log, &m1, &m2);
        let ids: &StdMutex<Vec<FiberId>> = Box::leak(Box::default());
        rt.spawn_detached_with(stack(), at("a", 0), move |fib| {
            let g1 = m1.lock(fib).unwrap();
            fib.spawn_detached_with(stack(), at("b", 1), move |fib| {
                let _g2 = m2.lock(fib).unwrap();
                fib.spawn_detached_with(stack(), at("c", 3), move |fib| {
                    log.push("c waits");
                    drop(m2.lock(fib).unwrap());
                    log.push("c done");
                })
                .unwrap();
                ids.lock().unwrap().push(fib.id());
                log.push("b waits");
                let _g1 = m1.lock(fib).unwrap();
                log.push(format!("b got m1 at {:?}", fib.priority()));
            }) // b unlocks m1 then m2: c runs at the second unlock
            .unwrap();
            fib.yield_now(); // b locks m2, spawns c, waits for m1; c waits for m2
            let b = ids.lock().unwrap()[0];
            let info = fib.fiber_info(b).unwrap();
            log.push(format!("a at {:?}, b at {:?} base {:?}", fib.priority(), info.priority, info.base_priority));
            drop(g1);
            log.push(format!("a unlocked at {:?}", fib.priority()));
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "b waits c waits a at P3, b at P3 base P1 b got m1 at P3 c done a unlocked at P0");
}

#[test]
fn inheritance_is_undone_when_the_waiter_times_out() {
    let log = Log::default();
    let lock = Mutex::new(());
    Runtime::<4>::scope(|rt| {
        let (log, lock) = (&log, &lock);
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            let _g = lock.lock(fib).unwrap();
            fib.spawn_detached_with(stack(), at("high", 4), move |fib| {
                let r = lock.lock_timeout(fib, 5).map(|_| ());
                log.push(format!("high {r:?}"));
            })
            .unwrap();
            fib.yield_now();
            log.push(format!("low at {:?}", fib.priority()));
            fib.sleep(10); // high times out at 5 meanwhile
            log.push(format!("low at {:?} after the timeout", fib.priority()));
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "low at P4 high Err(TimedOut) low at P0 after the timeout");
}

#[test]
fn inheritance_is_undone_by_abort_wait() {
    let log = Log::default();
    let lock = Mutex::new(());
    Runtime::<4>::scope(|rt| {
        let (log, lock) = (&log, &lock);
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            let _g = lock.lock(fib).unwrap();
            let high = fib
                .spawn_with(stack(), at("high", 4), move |fib| {
                    let r = lock.lock_timeout(fib, 1000).map(|_| ());
                    log.push(format!("high {r:?}"));
                })
                .unwrap();
            fib.yield_now();
            log.push(format!("low at {:?}", fib.priority()));
            assert!(fib.abort_wait(high.id()));
            // The boost is gone at once, before high even runs again.
            log.push(format!("low at {:?} after abort_wait", fib.priority()));
            fib.join(high).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "low at P4 low at P0 after abort_wait high Err(TimedOut)");
}

/// A deadlock cancels the waiter (std): the holder's boost goes with it, and
/// the report is what it was without priorities.
#[test]
fn deadlock_cancellation_undoes_inheritance_and_the_report_keeps_its_meaning() {
    let log = Log::default();
    let lock = Mutex::new(()).named("held");
    let never = Semaphore::new(0).named("never");
    let r = Runtime::<4>::scope(|rt| {
        let (log, lock, never) = (&log, &lock, &never);
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            struct Probe<'a, 'f>(&'a Fiber<'f>, &'a Log);
            impl Drop for Probe<'_, '_> {
                fn drop(&mut self) {
                    self.1.push(format!("{} unwinds at {:?}", self.0.name(), self.0.priority()));
                }
            }
            let _g = lock.lock(fib).unwrap();
            fib.spawn_detached_with(stack(), at("high", 3), move |fib| {
                let _probe = Probe(fib, log);
                let _ = lock.lock(fib);
            })
            .unwrap();
            let _probe = Probe(fib, log);
            fib.yield_now();
            log.push(format!("low at {:?}", fib.priority()));
            let _ = never.acquire(fib);
        })
        .unwrap();
        rt.run()
    });
    let Err(RunError::Deadlock(report)) = r else { panic!("expected a deadlock, got {r:?}") };
    let mut got: Vec<_> = report.fibers().iter().map(|b| (b.name, b.object, b.reason)).collect();
    got.sort_by_key(|x| x.0);
    assert!(matches!(got[0], ("high", "held", WaitReason::Mutex(_))), "{got:?}");
    assert!(matches!(got[1], ("low", "never", WaitReason::Semaphore(_))), "{got:?}");
    assert_eq!(got.len(), 2);
    assert_eq!(log.take(), "low at P3 high unwinds at P3 low unwinds at P0");
}

/// Two fibers that wait for each other's mutex: a cycle. A priority change
/// inside it goes around once and stops (each hop recomputes; at most
/// `INHERITANCE_DEPTH` hops), and the deadlock is reported.
#[test]
fn an_inheritance_cycle_stops_and_ends_in_a_deadlock_report() {
    let log = Log::default();
    let (m1, m2) = (Mutex::new(()), Mutex::new(()));
    let r = Runtime::<4>::scope(|rt| {
        let (log, m1, m2) = (&log, &m1, &m2);
        let a = rt
            .spawn_detached_with(stack(), at("a", 1), move |fib| {
                let _g = m1.lock(fib).unwrap();
                fib.yield_now();
                let _ = m2.lock(fib);
            })
            .unwrap();
        let b = rt
            .spawn_detached_with(stack(), at("b", 1), move |fib| {
                let _g = m2.lock(fib).unwrap();
                fib.yield_now();
                let _ = m1.lock(fib);
            })
            .unwrap();
        rt.spawn_detached_with(stack(), at("c", 0), move |fib| {
            assert!(fib.set_priority_of(a, p(7)));
            let prio = |id| fib.fiber_info(id).unwrap().priority;
            log.push(format!("a {:?} b {:?}", prio(a), prio(b)));
        })
        .unwrap();
        rt.run()
    });
    let Err(RunError::Deadlock(report)) = r else { panic!("expected a deadlock, got {r:?}") };
    assert_eq!(report.fibers().len(), 2);
    assert_eq!(log.take(), "a P7 b P7");
}

#[test]
fn changing_a_waiters_priority_moves_its_holders_boost() {
    let log = Log::default();
    let lock = Mutex::new(());
    Runtime::<4>::scope(|rt| {
        let (log, lock) = (&log, &lock);
        rt.spawn_detached_with(stack(), at("holder", 0), move |fib| {
            let g = lock.lock(fib).unwrap();
            let w = fib.spawn_with(stack(), at("waiter", 2), move |fib| drop(lock.lock(fib).unwrap())).unwrap();
            fib.yield_now();
            log.push(format!("{:?}", fib.priority()));
            assert!(fib.set_priority_of(w.id(), p(5)));
            log.push(format!("{:?}", fib.priority()));
            assert!(fib.set_priority_of(w.id(), p(1)));
            log.push(format!("{:?}", fib.priority()));
            // The holder's own base counts too.
            fib.set_priority(p(3));
            log.push(format!("{:?}", fib.priority()));
            drop(g);
            fib.join(w).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "P2 P5 P1 P3");
}

#[test]
fn try_lock_holders_inherit_too_and_a_leaked_guard_lends_nothing() {
    let log = Log::default();
    let lock = Mutex::new(());
    Runtime::<4>::scope(|rt| {
        let (log, lock) = (&log, &lock);
        rt.spawn_detached_with(stack(), at("holder", 0), move |fib| {
            let g = lock.try_lock(fib).unwrap();
            fib.spawn_detached_with(stack(), at("waiter", 2), move |fib| {
                let _ = lock.lock_timeout(fib, 3);
                log.push("waiter gave up");
                // The holder finished without unlocking (a leaked guard):
                // waiting again boosts nobody (the slot may hold another fiber).
                let _ = lock.lock_timeout(fib, 3);
                log.push("waiter gave up again");
            })
            .unwrap();
            fib.yield_now();
            log.push(format!("holder at {:?}", fib.priority()));
            std::mem::forget(g);
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(log.take(), "holder at P2 waiter gave up waiter gave up again");
}

#[test]
fn fiber_info_shows_base_and_effective_priority() {
    Runtime::<4>::scope(|rt| {
        let h = rt.spawn_with(stack(), at("x", 6), |fib| fib.id()).unwrap();
        let id = h.id();
        let info = rt.fiber_info(id).unwrap();
        assert_eq!((info.priority, info.base_priority), (p(6), p(6)));
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), id);
    });
}

#[test]
fn debug_table_and_invariants_hold_across_level_changes() {
    let seen = Cell::new(0);
    Runtime::<6>::scope(|rt| {
        for level in [0u8, 3, 1, 3, 7] {
            rt.spawn_detached_with(stack(), at("f", level), move |fib| {
                for i in 0..4u8 {
                    fib.debug_check_invariants().unwrap();
                    fib.set_priority(Priority::saturating((level + i * 3) % 8));
                    fib.debug_check_invariants().unwrap();
                    fib.yield_now();
                }
            })
            .unwrap();
        }
        rt.debug_check_invariants().unwrap();
        rt.run().unwrap();
        rt.debug_check_invariants().unwrap();
        seen.set(1);
    });
    assert_eq!(seen.get(), 1);
}

#[cfg(feature = "explore")]
#[test]
fn an_exploring_policy_only_chooses_among_the_highest_ready_level() {
    struct Last;
    impl filament::SchedulePolicy for Last {
        fn choose(&mut self, ready: &[FiberId]) -> usize {
            ready.len() - 1
        }
    }
    let log = Log::default();
    Runtime::<6>::scope(|rt| {
        assert!(rt.set_policy(Some(Box::new(Last))));
        for (name, level) in [("l1", 0), ("h1", 2), ("l2", 0), ("h2", 2)] {
            let log = &log;
            rt.spawn_detached_with(stack(), at(name, level), move |fib| {
                log.push(name);
                fib.yield_now();
                log.push(name);
            })
            .unwrap();
        }
        rt.run().unwrap();
    });
    let got = log.take();
    let order: Vec<&str> = got.split(' ').collect();
    // Whatever the policy picks, both high fibers finish before a low one starts.
    let last_high = order.iter().rposition(|n| n.starts_with('h')).unwrap();
    let first_low = order.iter().position(|n| n.starts_with('l')).unwrap();
    assert!(last_high < first_low, "{got}");
}

#[cfg(feature = "trace")]
#[test]
fn priority_changes_are_traced() {
    use filament::host::trace::{EventKind, TraceRecorder};
    let rec: &'static TraceRecorder = Box::leak(Box::new(TraceRecorder::with_capacity(1024)));
    let lock = Mutex::new(());
    Runtime::<4>::scope(|rt| {
        let lock = &lock;
        assert!(rt.set_tracer(rec));
        rt.spawn_detached_with(stack(), at("low", 0), move |fib| {
            let _g = lock.lock(fib).unwrap();
            fib.spawn_detached_with(stack(), at("high", 5), move |fib| drop(lock.lock(fib).unwrap())).unwrap();
            fib.yield_now();
        })
        .unwrap();
        rt.run().unwrap();
    });
    let prios: Vec<u8> = rec
        .events()
        .iter()
        .filter_map(|e| if let EventKind::Priority(_, p) = e.kind { Some(p.get()) } else { None })
        .collect();
    assert_eq!(prios, [5, 0]);
}

#[test]
fn the_debug_table_has_a_priority_column() {
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached_with(stack(), at("urgent", 6), |_| ()).unwrap();
        rt.spawn_detached(stack(), |_| ()).unwrap();
        let table = format!("{rt:?}");
        let lines: Vec<&str> = table.lines().collect();
        let at = lines[1].find("PRIO").unwrap_or_else(|| panic!("{table}"));
        assert_eq!(&lines[2][at..at + 1], "6", "{table}");
        assert_eq!(&lines[3][at..at + 1], "0", "{table}");
        rt.run().unwrap();
    });
}

/// The level rings hold pointers into the slot table: a runtime moved
/// between spawn and run rebases them with the rest.
#[test]
fn a_runtime_moved_with_fibers_at_several_levels_keeps_them() {
    static ORDER: StdMutex<Vec<&str>> = StdMutex::new(Vec::new());
    let rt: Runtime<'static, 6> = Runtime::new();
    let mut ids = Vec::new();
    for (name, level) in [("a", 0), ("b", 3), ("c", 1), ("d", 3), ("e", 0)] {
        ids.push(
            rt.spawn_with(stack(), at(name, level), move |fib| {
                ORDER.lock().unwrap().push(name);
                fib.yield_now();
            })
            .unwrap(),
        );
    }
    let moved = Box::new(rt);
    moved.debug_check_invariants().unwrap();
    moved.run().unwrap();
    for h in ids {
        moved.take(h).unwrap();
    }
    assert_eq!(*ORDER.lock().unwrap(), ["b", "d", "c", "a", "e"]);
}

/// A guard dropped while its fiber unwinds hands the lock to a higher
/// waiter, but the unwinding fiber does not switch (I6): the waiter runs once
/// the unwind is over.
#[test]
fn an_unwinding_holder_hands_off_without_switching() {
    let log = Log::default();
    let lock = Mutex::new(());
    Runtime::<4>::scope(|rt| {
        let (log, lock) = (&log, &lock);
        let low = rt
            .spawn_with(stack(), at("low", 0), move |fib| {
                struct Last<'a>(&'a Log);
                impl Drop for Last<'_> {
                    fn drop(&mut self) {
                        self.0.push("low unwound");
                    }
                }
                let _last = Last(log);
                let _g = lock.lock(fib).unwrap();
                fib.spawn_detached_with(stack(), at("high", 5), move |fib| {
                    drop(lock.lock(fib).unwrap());
                    log.push("high got it");
                })
                .unwrap();
                fib.yield_now(); // high waits and lends low its level
                assert_eq!(fib.priority(), p(5));
                panic!("low fails while holding the lock");
            })
            .unwrap();
        rt.run().unwrap();
        assert!(rt.take(low).is_err());
    });
    assert_eq!(log.take(), "low unwound high got it");
}

/// A wait that never begins (a deadline already past) lends the holder
/// nothing: the holder must not stay boosted after the waiter gave up.
#[test]
fn a_lock_attempt_that_never_blocks_leaves_no_loan_behind() {
    let m = Mutex::new(0u32);
    let m = &m;
    Runtime::<2>::scope(|rt| {
        let low = rt
            .spawn(stack(), move |fib| {
                let _g = m.lock(fib).unwrap();
                for _ in 0..3 {
                    fib.yield_now();
                }
                fib.priority()
            })
            .unwrap();
        let low_id = low.id();
        let high = rt
            .spawn_with(stack(), SpawnOptions::new().priority(p(3)), move |fib| {
                fib.set_priority(p(0)); // let low take the lock first
                fib.yield_now();
                fib.set_priority(p(3));
                let r = m.lock_timeout(fib, 0).map(|_| ());
                (r, fib.fiber_info(low_id).unwrap().priority)
            })
            .unwrap();
        rt.run().unwrap();
        let (r, low_prio_after) = rt.take(high).unwrap();
        assert_eq!(r, Err(filament::sync::WaitError::TimedOut));
        assert_eq!(low_prio_after, p(0), "the holder kept a loan from a wait that never began");
        assert_eq!(rt.take(low).unwrap(), p(0));
    });
}
