//! A lost wake-up in a hand-written one-shot notification, found by schedule
//! exploration; the fixed protocol survives 10 000 schedules.
//!
//! Run with `cargo run --example lost_wakeup --features explore`.
//!
//! The consumer parks on an [`IrqSignal`] (with a watchdog timeout, so a lost
//! notification shows up as a failure rather than a hang) unless the flag is
//! already set. The producer sets the flag and notifies only if the consumer
//! announced that it waits. The bug: the consumer checks the flag *before*
//! announcing, with a switch point in between; a producer that runs inside that
//! window sets the flag, sees nobody waiting and never notifies, and the
//! consumer then parks for good. Strict FIFO never runs the producer there.
//! The fix: announce first, then check — or use a latched
//! `filament::sync::Event`.
//!
//! Measured with this example (100 base seeds, schedules until the first
//! failure, including the failing one):
//!
//! | policy        | min | median | mean | max |
//! |---------------|-----|--------|------|-----|
//! | random        |   1 |      4 |  5.4 |  28 |
//! | pct, depth 2  |   2 |      5 |  7.5 |  35 |
//!
//! `tests/explore.rs` asserts the bounds 50 (random) and 100 (PCT, depth 2).

use std::sync::atomic::{AtomicBool, Ordering};

use filament::host::explore::{Explorer, Policy, Schedule};
use filament::sync::Event;
use filament::{IrqSignal, Runtime, Stack};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap").without_painting()
}

/// Which notification protocol to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Check the flag, (switch point), announce, park: the bug.
    CheckThenAnnounce,
    /// Announce, (switch point), check, park: the fix.
    AnnounceThenCheck,
    /// No hand-written protocol: a latched `filament::sync::Event` (a lost
    /// wake-up here would show as a deadlock report).
    Event,
}

fn handoff_program(s: &mut Schedule, protocol: Protocol) -> Result<(), String> {
    let ready = AtomicBool::new(false);
    let waiting = AtomicBool::new(false);
    let signal = IrqSignal::new();
    let event = Event::new();
    let (ready, waiting, signal, event) = (&ready, &waiting, &signal, &event);
    Runtime::<4>::scope(|rt| {
        s.install(rt);
        let consumer = rt
            .spawn_named("consumer", stack(), move |fib| {
                let must_park = match protocol {
                    Protocol::CheckThenAnnounce => {
                        let unset = !ready.load(Ordering::Acquire); // check ...
                        fib.yield_now(); // ... (registering the waiter may switch) ...
                        waiting.store(true, Ordering::Release); // ... announce
                        unset
                    }
                    Protocol::AnnounceThenCheck => {
                        waiting.store(true, Ordering::Release); // announce ...
                        fib.yield_now();
                        !ready.load(Ordering::Acquire) // ... then check
                    }
                    Protocol::Event => {
                        fib.yield_now();
                        event.wait(fib).expect("event");
                        false
                    }
                };
                if must_park {
                    assert!(signal.wait_timeout(fib, 1_000).is_ok(), "lost wake-up: flag set, consumer never notified");
                }
            })
            .expect("spawn");
        let producer = rt
            .spawn_named("producer", stack(), move |fib| {
                fib.yield_now(); // produce the value
                fib.yield_now();
                if protocol == Protocol::Event {
                    event.set(fib).expect("event");
                    return;
                }
                ready.store(true, Ordering::Release);
                if waiting.load(Ordering::Acquire) {
                    signal.notify_from_isr();
                }
            })
            .expect("spawn");
        rt.run().map_err(|e| e.to_string())?;
        // A fiber's panic is its outcome (the explorer also sees it on its own).
        rt.take(consumer).map_err(|e| format!("consumer: {e}"))?;
        rt.take(producer).map_err(|e| format!("producer: {e}"))
    })
}

fn main() {
    Explorer::replay_choices(&[]).run(|s| handoff_program(s, Protocol::CheckThenAnnounce));
    println!("strict FIFO: no lost wake-up visible\n");

    for policy in [Policy::Random, Policy::Pct { depth: 2 }] {
        let mut needed: Vec<usize> = (0..100)
            .map(|seed| {
                let result = Explorer::new()
                    .policy(policy)
                    .seed(seed)
                    .schedules(10_000)
                    .try_run(|s| handoff_program(s, Protocol::CheckThenAnnounce));
                result.expect_err("lost wake-up found").schedules_run
            })
            .collect();
        needed.sort_unstable();
        let mean = needed.iter().sum::<usize>() as f64 / needed.len() as f64;
        println!(
            "{:<14} min {:>3}  median {:>3}  mean {:>5.1}  max {:>3}   (schedules to find it, 100 seeds)",
            policy.to_string(),
            needed[0],
            needed[needed.len() / 2],
            mean,
            needed[needed.len() - 1]
        );
    }

    let failure = Explorer::new()
        .policy(Policy::Random)
        .try_run(|s| handoff_program(s, Protocol::CheckThenAnnounce))
        .expect_err("found");
    println!("\n{failure}");
    for _ in 0..100 {
        let again = Explorer::replay(&failure.token)
            .try_run(|s| handoff_program(s, Protocol::CheckThenAnnounce))
            .expect_err("fails again");
        assert_eq!(again.choices, failure.choices);
    }
    println!("replayed {:?} 100 times: failed identically every time\n", failure.token);

    for protocol in [Protocol::AnnounceThenCheck, Protocol::Event] {
        for policy in [Policy::Random, Policy::Pct { depth: 2 }, Policy::Pct { depth: 3 }] {
            let summary = Explorer::new().policy(policy).schedules(10_000).run(|s| handoff_program(s, protocol));
            println!("{protocol:?}, {policy}: {} schedules passed ({} distinct)", summary.schedules, summary.distinct);
        }
    }
}
