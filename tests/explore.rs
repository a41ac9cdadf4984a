//! Schedule exploration (feature `explore`): determinism, finding a
//! check-then-act race and a lost wake-up under the random and PCT policies,
//! exact replay, and correct controls surviving 10 000 schedules.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use filament::host::explore::{Choice, Explorer, Failure, Policy, Schedule};
use filament::sync::Mutex;
use filament::{IrqSignal, JoinHandle, Runtime, Stack};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap").without_painting()
}

/// Which version of the counter program to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// Check-then-act with a switch point between read and write: the bug.
    Racy,
    /// The same, holding a `filament::sync::Mutex` across read and write.
    Locked,
    /// No switch point between read and write (the switch comes after).
    SwitchFree,
}

/// Three workers add 1 to a shared counter. Worker `w` first does `2w` steps
/// of other work, so under strict FIFO their read-modify-write windows never
/// overlap and the counter is always right. `Racy`: each worker yields
/// between reading and writing the counter (check-then-act): a schedule that
/// lets another worker update the counter inside that window loses an update.
fn counter_program(s: &mut Schedule, version: Version) {
    let counter = AtomicU32::new(0);
    let lock = Mutex::new(());
    let (counter, lock) = (&counter, &lock);
    Runtime::<4>::scope(|rt| {
        s.install(rt); // let the explorer decide every switch
        for w in 0..3 {
            rt.spawn_detached(stack(), move |fib| {
                for _ in 0..2 * w {
                    fib.yield_now(); // other work
                }
                let guard = (version == Version::Locked).then(|| lock.lock(fib).expect("lock"));
                let v = counter.load(Ordering::Relaxed); // check ...
                if version != Version::SwitchFree {
                    fib.yield_now(); // ... a switch point (e.g. a log write) ...
                }
                counter.store(v + 1, Ordering::Relaxed); // ... act
                drop(guard);
                if version == Version::SwitchFree {
                    fib.yield_now(); // the same switch, after the update
                }
            })
            .expect("spawn");
        }
        rt.run().expect("run");
    });
    assert_eq!(counter.load(Ordering::Relaxed), 3, "lost update");
}

/// A hand-written one-shot notification. The consumer parks on an
/// `IrqSignal` (with a watchdog timeout) unless the flag is already set; the
/// producer sets the flag and notifies only if the consumer announced that it
/// waits. `buggy`: the consumer checks the flag *before* announcing, with a
/// switch point in between, so the producer can set the flag and see nobody
/// waiting inside that window: the notification is never sent (lost wake-up).
/// Correct: announce first, then check (the signal counts, so a notification
/// before the park is not lost either).
fn handoff_program(s: &mut Schedule, buggy: bool) -> Result<(), String> {
    let ready = AtomicBool::new(false);
    let waiting = AtomicBool::new(false);
    let signal = IrqSignal::new();
    let (ready, waiting, signal) = (&ready, &waiting, &signal);
    Runtime::<4>::scope(|rt| {
        s.install(rt);
        rt.spawn_detached(stack(), move |fib| {
            let must_park = if buggy {
                let unset = !ready.load(Ordering::Acquire);
                fib.yield_now(); // e.g. registering the waiter may switch
                waiting.store(true, Ordering::Release);
                unset
            } else {
                waiting.store(true, Ordering::Release);
                fib.yield_now();
                !ready.load(Ordering::Acquire)
            };
            if must_park {
                assert!(signal.wait_timeout(fib, 1_000).is_ok(), "lost wake-up: flag set, consumer never notified");
            }
            assert!(ready.load(Ordering::Acquire));
        })
        .expect("spawn");
        rt.spawn_detached(stack(), move |fib| {
            fib.yield_now(); // produce the value
            fib.yield_now();
            ready.store(true, Ordering::Release);
            if waiting.load(Ordering::Acquire) {
                signal.notify_from_isr();
            }
        })
        .expect("spawn");
        rt.run().map_err(|e| e.to_string())
    })
}

/// Two fibers each join the other: both block forever, a deadlock.
fn deadlock_program(s: &mut Schedule) -> Result<(), String> {
    let slots: [std::sync::Mutex<Option<JoinHandle<()>>>; 2] = Default::default();
    let slots = &slots;
    Runtime::<4>::scope(|rt| {
        s.install(rt);
        for me in 0..2 {
            let h = rt
                .spawn(stack(), move |fib| {
                    fib.yield_now();
                    let other = slots[1 - me].lock().unwrap().take().expect("handle");
                    let _ = fib.join(other);
                })
                .expect("spawn");
            *slots[me].lock().unwrap() = Some(h);
        }
        rt.run().map_err(|e| e.to_string())
    })
}

fn found(result: Result<filament::host::explore::Summary, Box<Failure>>) -> Box<Failure> {
    match result {
        Ok(summary) => panic!("bug not found: {summary:?}"),
        Err(failure) => failure,
    }
}

#[test]
fn fifo_alone_never_sees_the_race() {
    // One schedule with only FIFO choices (index 0 everywhere).
    Explorer::replay_choices(&[]).run(|s| counter_program(s, Version::Racy));
    Explorer::replay_choices(&[]).run(|s| handoff_program(s, true));
}

#[test]
fn same_seed_same_schedule_100_times() {
    for policy in [Policy::Random, Policy::Pct { depth: 3 }] {
        let trace = |s: &mut Schedule| {
            counter_program(s, Version::SwitchFree);
            s.choices()
        };
        let mut first: Option<Vec<Choice>> = None;
        let token = match policy {
            Policy::Random => "random:seed=0x5eed",
            _ => "pct:depth=3:steps=12:seed=0x5eed",
        };
        for _ in 0..100 {
            let mut got = Vec::new();
            Explorer::replay(token).run(|s| got = trace(s));
            assert!(!got.is_empty());
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(f, &got, "{policy}: the same seed made different choices"),
            }
        }
    }
}

#[test]
fn an_exploration_is_reproducible_from_its_base_seed() {
    let explore = |seed| {
        Explorer::new()
            .policy(Policy::Pct { depth: 2 })
            .seed(seed)
            .schedules(RACE_BOUND_PCT)
            .try_run(|s| counter_program(s, Version::Racy))
            .expect_err("found")
    };
    let (a, b) = (explore(7), explore(7));
    assert_eq!((&a.token, &a.choices, a.schedule), (&b.token, &b.choices, b.schedule));
    assert_ne!(a.token, explore(8).token);
}

/// Upper bounds documented in examples/race.rs (measured over 100 base seeds:
/// the worst case needed well under these).
const RACE_BOUND_RANDOM: usize = 20;
const RACE_BOUND_PCT: usize = 200;
const HANDOFF_BOUND_RANDOM: usize = 50;
const HANDOFF_BOUND_PCT: usize = 100;

#[test]
fn random_finds_the_race_and_replay_fails_every_time() {
    let failure = found(
        Explorer::new()
            .policy(Policy::Random)
            .schedules(RACE_BOUND_RANDOM)
            .try_run(|s| counter_program(s, Version::Racy)),
    );
    assert!(failure.reason.contains("lost update"), "{failure}");
    assert!(failure.token.starts_with("random:seed=0x"));
    let report = failure.to_string();
    assert!(report.contains("Explorer::replay(") && report.contains("seed"), "{report}");
    for _ in 0..100 {
        let again = found(Explorer::replay(&failure.token).try_run(|s| counter_program(s, Version::Racy)));
        assert_eq!(again.choices, failure.choices);
        assert!(again.reason.contains("lost update"));
    }
    // The bare choice list replays it too.
    let again = found(Explorer::replay_choices(&failure.indices()).try_run(|s| counter_program(s, Version::Racy)));
    assert_eq!(again.choices, failure.choices);
}

#[test]
fn pct_finds_the_race_and_replay_fails_every_time() {
    let failure = found(
        Explorer::new()
            .policy(Policy::Pct { depth: 2 })
            .schedules(RACE_BOUND_PCT)
            .try_run(|s| counter_program(s, Version::Racy)),
    );
    assert!(failure.reason.contains("lost update"), "{failure}");
    assert!(failure.token.starts_with("pct:depth=2:steps="));
    for _ in 0..100 {
        let again = found(Explorer::replay(&failure.token).try_run(|s| counter_program(s, Version::Racy)));
        assert_eq!(again.choices, failure.choices);
    }
}

#[test]
fn race_found_for_every_base_seed_within_the_bound() {
    for seed in 0..20 {
        for (policy, bound) in [(Policy::Random, RACE_BOUND_RANDOM), (Policy::Pct { depth: 2 }, RACE_BOUND_PCT)] {
            let f = found(
                Explorer::new()
                    .policy(policy)
                    .seed(seed)
                    .schedules(bound)
                    .try_run(|s| counter_program(s, Version::Racy)),
            );
            assert!(f.schedules_run <= bound);
        }
    }
}

#[test]
fn exhaustive_finds_the_race_with_two_delays() {
    let failure =
        found(Explorer::new().policy(Policy::Exhaustive { delays: 2 }).try_run(|s| counter_program(s, Version::Racy)));
    assert!(failure.token.starts_with("choices:"));
    let again = found(Explorer::replay(&failure.token).try_run(|s| counter_program(s, Version::Racy)));
    assert_eq!(again.choices, failure.choices);
}

#[test]
fn exhaustive_covers_the_correct_version() {
    let summary =
        Explorer::new().policy(Policy::Exhaustive { delays: 2 }).run(|s| counter_program(s, Version::SwitchFree));
    assert!(summary.exhausted, "{summary:?}");
    assert_eq!(summary.distinct, summary.schedules);
}

#[test]
fn mutex_version_passes_10_000_schedules() {
    // Same program, same switch point inside the read-modify-write, but under
    // a `filament::sync::Mutex` (whose operations are choice points too).
    let random = Explorer::new().policy(Policy::Random).schedules(5_000).run(|s| counter_program(s, Version::Locked));
    let pct =
        Explorer::new().policy(Policy::Pct { depth: 2 }).schedules(5_000).run(|s| counter_program(s, Version::Locked));
    assert_eq!(random.schedules + pct.schedules, 10_000);
    assert!(random.distinct > 100, "{random:?}");
    assert_eq!(random.capped + pct.capped, 0);
    let all = Explorer::new().policy(Policy::Exhaustive { delays: 2 }).run(|s| counter_program(s, Version::Locked));
    assert!(all.exhausted, "{all:?}");
}

#[test]
fn switch_free_version_passes_10_000_schedules() {
    let summary =
        Explorer::new().policy(Policy::Random).schedules(10_000).run(|s| counter_program(s, Version::SwitchFree));
    assert_eq!(summary.schedules, 10_000);
}

#[test]
fn lost_wakeup_found_under_both_policies() {
    for (policy, bound) in [(Policy::Random, HANDOFF_BOUND_RANDOM), (Policy::Pct { depth: 2 }, HANDOFF_BOUND_PCT)] {
        let failure = found(Explorer::new().policy(policy).schedules(bound).try_run(|s| handoff_program(s, true)));
        assert!(failure.reason.contains("lost wake-up"), "{failure}");
        for _ in 0..20 {
            let again = found(Explorer::replay(&failure.token).try_run(|s| handoff_program(s, true)));
            assert_eq!(again.choices, failure.choices);
        }
    }
}

#[test]
fn correct_handoff_passes_10_000_schedules() {
    Explorer::new().policy(Policy::Random).schedules(5_000).run(|s| handoff_program(s, false));
    Explorer::new().policy(Policy::Pct { depth: 3 }).schedules(5_000).run(|s| handoff_program(s, false));
}

#[test]
fn deadlock_is_a_failure() {
    let failure = found(Explorer::new().schedules(10).try_run(deadlock_program));
    assert_eq!(failure.schedule, 0);
    assert!(failure.reason.contains("deadlock"), "{failure}");
}

#[test]
fn fiber_panic_counts_even_if_nobody_takes_the_result() {
    let program = |s: &mut Schedule| {
        Runtime::<2>::scope(|rt| {
            s.install(rt);
            rt.spawn_detached(stack(), |_| panic!("boom in a fiber")).expect("spawn");
            rt.run().expect("run");
        });
    };
    let failure = found(Explorer::new().schedules(3).try_run(program));
    assert!(failure.reason.contains("boom in a fiber"), "{failure}");
    assert!(failure.reason.contains("tests/explore.rs"), "location missing: {failure}");
    // Opt out: only panics that escape the test closure count.
    let summary = Explorer::new().schedules(3).any_panic_fails(false).run(program);
    assert_eq!(summary.schedules, 3);
}

#[test]
fn run_panics_with_the_report() {
    let result = std::panic::catch_unwind(|| {
        Explorer::new().schedules(RACE_BOUND_RANDOM).run(|s| counter_program(s, Version::Racy));
    });
    let payload = result.expect_err("the race must be found");
    let text = payload.downcast_ref::<String>().expect("a formatted report");
    assert!(text.contains("lost update") && text.contains("Explorer::replay(\"random:seed=0x"), "{text}");
}

#[test]
#[should_panic(expected = "never installed")]
fn forgetting_to_install_is_reported() {
    Explorer::new().schedules(2).run(|_s| {
        Runtime::<2>::scope(|rt| {
            rt.spawn_detached(stack(), |fib| fib.yield_now()).expect("spawn");
            rt.run().expect("run");
        });
    });
}

/// Two fibers that yield 30 times each, failing when the last 20 runs
/// alternated strictly: what FIFO does once a step cap stops the policy's
/// choices, and what random choices (almost) never do.
fn alternation_program(s: &mut Schedule) {
    let order = std::sync::Mutex::new(Vec::new());
    let order = &order;
    Runtime::<4>::scope(|rt| {
        s.install(rt);
        for w in 0..2u8 {
            rt.spawn_detached(stack(), move |fib| {
                for _ in 0..30 {
                    order.lock().unwrap().push(w);
                    fib.yield_now();
                }
            })
            .expect("spawn");
        }
        rt.run().expect("run");
    });
    let order = order.lock().unwrap();
    let tail = &order[order.len() - 20..];
    assert!(tail.windows(2).any(|w| w[0] == w[1]), "the last 20 runs alternated");
}

/// The replay token used to omit `max_steps`: a failure found under a step
/// cap replayed without it (random choices all along) and passed.
#[test]
fn a_failure_found_under_a_step_cap_replays_as_a_failure() {
    let failure = found(Explorer::new().policy(Policy::Random).max_steps(4).schedules(5).try_run(alternation_program));
    assert!(failure.reason.contains("alternated"), "{failure}");
    for _ in 0..10 {
        let again = found(Explorer::replay(&failure.token).try_run(alternation_program));
        assert_eq!(again.choices, failure.choices, "token {}", failure.token);
        assert_eq!(again.token, failure.token);
    }
    let pct =
        found(Explorer::new().policy(Policy::Pct { depth: 2 }).max_steps(4).schedules(5).try_run(alternation_program));
    let again = found(Explorer::replay(&pct.token).try_run(alternation_program));
    assert_eq!(again.choices, pct.choices, "token {}", pct.token);
}

/// A hostile or mistyped token used to be accepted: `pct:depth=4294967295`
/// then made the run reserve 4 billion change points (32 GiB) and abort.
/// Run in a child process (with its address space capped at 4 GiB) so that
/// the old abort could not take this test binary down. Every token below must
/// be rejected by `Explorer::replay` with a panic, before anything runs.
#[test]
fn hostile_tokens_are_rejected_before_anything_runs() {
    const TOKENS: &[&str] = &[
        "pct:depth=4294967295:steps=1:seed=0x1",
        "pct:depth=2:steps=1:seed=0x1:seed=0x2",
        "random:seed=+1",
        "random:seed=0x1:depth=2",
        "pct:depth=2:steps=0:seed=0x1",
        "pct:depth=2:steps=10:seed=0x1:max_steps=5",
        "choices:0,1,2:max_steps=2",
        "random:seed=0x1:max_steps=",
        "random:seed=0x1:bogus=1",
    ];
    let out = filament::host::run_in_child("hostile_tokens_are_rejected_before_anything_runs", || {
        let limit = libc::rlimit { rlim_cur: 4 << 30, rlim_max: 4 << 30 };
        // SAFETY: setrlimit reads the struct we pass; it only lowers this (child) process's limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
        std::panic::set_hook(Box::new(|_| {}));
        for token in TOKENS {
            let ran = std::sync::atomic::AtomicBool::new(false);
            let result = std::panic::catch_unwind(|| {
                Explorer::replay(token).try_run(|s| {
                    ran.store(true, Ordering::Relaxed);
                    counter_program(s, Version::SwitchFree)
                })
            });
            match result {
                Err(_) if !ran.load(Ordering::Relaxed) => println!("REJECTED {token}"),
                _ => println!("ACCEPTED {token}"),
            }
        }
    });
    assert!(out.success(), "{out:?}");
    for token in TOKENS {
        assert!(out.stdout.contains(&format!("REJECTED {token}\n")), "{token} was not rejected: {out:?}");
    }
}

/// The builder path to the same allocation: a PCT depth above the limit is a
/// clear panic before the first schedule, not a 32 GiB reservation.
#[test]
fn an_oversized_pct_depth_is_refused() {
    use filament::host::explore::MAX_PCT_DEPTH;
    let ran = std::sync::atomic::AtomicBool::new(false);
    let result = std::panic::catch_unwind(|| {
        Explorer::new().policy(Policy::Pct { depth: u32::MAX }).schedules(1).try_run(|s| {
            ran.store(true, Ordering::Relaxed);
            counter_program(s, Version::SwitchFree)
        })
    });
    let payload = result.expect_err("refused");
    let text = payload.downcast_ref::<String>().expect("a formatted message");
    assert!(text.contains("MAX_PCT_DEPTH"), "{text}");
    assert!(!ran.load(Ordering::Relaxed));
    // The limit itself is accepted, and its token replays.
    let token = format!("pct:depth={MAX_PCT_DEPTH}:steps=5:seed=0x1:max_steps=100");
    Explorer::replay(&token).run(|s| counter_program(s, Version::SwitchFree));
}

/// Typed errors from `try_replay`, and a report whose token names the cap.
#[test]
fn try_replay_names_the_bad_field() {
    use filament::host::explore::TokenError;
    let err = Explorer::try_replay("pct:depth=4294967295:steps=1:seed=0x1").unwrap_err();
    assert!(matches!(err, TokenError::OutOfRange { key: "depth", value: 4294967295, .. }), "{err:?}");
    let failure = found(
        Explorer::new().max_steps(1234).schedules(RACE_BOUND_RANDOM).try_run(|s| counter_program(s, Version::Racy)),
    );
    assert!(failure.token.ends_with(":max_steps=1234"), "{}", failure.token);
    assert_eq!(failure.max_steps, 1234);
    assert!(failure.to_string().contains(":max_steps=1234\")"), "{failure}");
}

/// The README's exploration example, verbatim: the replay token the README
/// shows is the one this program produces (and replays as a failure).
mod readme_example {
    use filament::host::explore::{Explorer, Policy, Schedule};
    use filament::{Runtime, Stack};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn program(s: &mut Schedule) {
        let counter = AtomicU32::new(0);
        let counter = &counter;
        Runtime::<4>::scope(|rt| {
            s.install(rt);
            for _ in 0..3 {
                let stack = Stack::host(64 * 1024).unwrap().without_painting();
                rt.spawn_detached(stack, move |fib| {
                    let v = counter.load(Ordering::Relaxed);
                    fib.yield_now();
                    counter.store(v + 1, Ordering::Relaxed);
                })
                .expect("spawn");
            }
            rt.run().expect("run");
        });
        assert_eq!(counter.load(Ordering::Relaxed), 3, "lost update");
    }

    /// README.md, which prints the token in its "A failing schedule panics
    /// with a report like" block.
    const README_TOKEN: &str = include_str!("../README.md");

    #[test]
    fn the_readme_token_is_what_the_readme_program_produces() {
        let failure = Explorer::new()
            .policy(Policy::Pct { depth: 2 })
            .schedules(1_000)
            .try_run(program)
            .expect_err("PCT finds the lost update");
        let shown = README_TOKEN
            .lines()
            .find_map(|l| l.trim().strip_prefix("replay:   Explorer::replay(\"").and_then(|t| t.split('"').next()))
            .expect("README shows a replay token");
        assert_eq!(shown, failure.token, "README token is stale: the program produces {}", failure.token);
        assert!(Explorer::replay(shown).try_run(program).is_err(), "the token replays the failure");
    }
}

/// A producer hands three events to a consumer through the consumer's
/// notification value. Correct: `Increment` counts every event. Buggy:
/// `Overwrite(1)` (a mailbox used as a counter) loses events whenever two
/// land before the consumer takes them, which strict FIFO never shows.
fn notify_program(s: &mut Schedule, buggy: bool) -> Result<(), String> {
    Runtime::<3>::scope(|rt| {
        s.install(rt);
        let consumer = rt
            .spawn(stack(), |fib| {
                let mut got = 0;
                while got < 3 {
                    match fib.notify_take_timeout(filament::Take::All, 1_000) {
                        Ok(n) => got += n,
                        Err(_) => return Err(format!("lost events: {got} of 3 arrived")),
                    }
                }
                Ok(())
            })
            .expect("spawn");
        let id = consumer.id();
        rt.spawn_detached(stack(), move |fib| {
            for _ in 0..3 {
                let action = if buggy { filament::Notify::Overwrite(1) } else { filament::Notify::Increment };
                fib.notify(id, action).expect("consumer alive");
                fib.yield_now();
            }
        })
        .expect("spawn");
        rt.run().map_err(|e| e.to_string())?;
        rt.take(consumer).map_err(|e| e.to_string())?
    })
}

#[test]
fn notifications_are_explored_counting_survives_every_schedule_and_a_mailbox_counter_is_caught() {
    Explorer::replay_choices(&[]).run(|s| notify_program(s, true).expect("FIFO hides the bug"));
    let all =
        Explorer::new().policy(Policy::Exhaustive { delays: 2 }).run(|s| notify_program(s, false).expect("correct"));
    assert!(all.schedules > 1, "{all:?}");
    let failure = found(Explorer::new().policy(Policy::Exhaustive { delays: 2 }).try_run(|s| {
        if let Err(e) = notify_program(s, true) {
            panic!("{e}");
        }
    }));
    assert!(failure.reason.contains("lost events"), "{failure}");
}

/// `IrqQueue` and the interrupt-safe wakes under schedule exploration: two
/// producer fibers push into an `IrqQueue` (as interrupt handlers would) and
/// give an interrupt-capable semaphore from "interrupt context"; two
/// receivers take values and permits. Whatever the interleaving, every value
/// arrives exactly once, each receiver sees each producer's values in order
/// (values leave the queue in push order), and every permit is taken.
#[test]
fn irq_queue_and_isr_gives_survive_explored_schedules() {
    use filament::IrqQueue;
    use filament::sync::Semaphore;
    const PER: u64 = 6;
    let program = |s: &mut Schedule| {
        let q: IrqQueue<u64, 4> = IrqQueue::new();
        let sem = Semaphore::new(0).isr_capable();
        let (q, sem) = (&q, &sem);
        let lists = Runtime::<4>::scope(|rt| {
            s.install(rt);
            for p in 0..2u64 {
                rt.spawn_detached(stack(), move |fib| {
                    for i in 0..PER {
                        let mut v = p << 8 | i;
                        while let Err(filament::QueueFull(back)) = q.try_send_from_isr(v) {
                            v = back;
                            fib.yield_now();
                        }
                        sem.give_from_isr();
                        fib.yield_now();
                    }
                })
                .expect("spawn");
            }
            let receivers: Vec<JoinHandle<Vec<u64>>> = (0..2)
                .map(|_| {
                    rt.spawn(stack(), move |fib| {
                        (0..PER)
                            .map(|_| {
                                let v = q.recv(fib).expect("recv");
                                sem.acquire(fib).expect("acquire");
                                v
                            })
                            .collect()
                    })
                    .expect("spawn")
                })
                .collect();
            rt.run().expect("run");
            receivers.into_iter().map(|h| rt.take(h).expect("receiver")).collect::<Vec<_>>()
        });
        for list in &lists {
            for p in 0..2u64 {
                let mine: Vec<u64> = list.iter().filter(|&&v| v >> 8 == p).map(|&v| v & 0xff).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {p} reordered: {list:?}");
            }
        }
        let mut all: Vec<u64> = lists.concat();
        all.sort_unstable();
        let expected: Vec<u64> = (0..2u64).flat_map(|p| (0..PER).map(move |i| p << 8 | i)).collect();
        assert_eq!(all, expected, "lost or duplicated");
    };
    Explorer::new().policy(Policy::Random).schedules(400).run(program);
    Explorer::new().policy(Policy::Pct { depth: 3 }).schedules(400).run(program);
}
