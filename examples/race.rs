//! A check-then-act race that strict FIFO never shows, found by schedule
//! exploration, replayed from its seed, and a correct version that survives
//! 10 000 schedules.
//!
//! Run with `cargo run --example race --features explore` (add `--release` for
//! speed; the numbers do not change: every schedule is seeded).
//!
//! The program: three workers add 1 to a shared counter. Worker `w` first does
//! `2w` steps of other work (yields), so under FIFO their read–modify–write
//! windows never overlap and the total is always 3. The racy worker yields
//! between reading and writing the counter (think: a log write that may switch
//! fibers). A schedule that runs another worker's update inside that window
//! loses an update.
//!
//! Measured with this example (100 base seeds, schedules until the first
//! failure, including the failing one):
//!
//! | policy                   | min | median | mean | max |
//! |--------------------------|-----|--------|------|-----|
//! | random                   |   1 |      1 |  2.1 |   8 |
//! | pct, depth 2             |   2 |      5 |  6.3 |  22 |
//! | pct, depth 3             |   2 |      3 |  4.5 |  15 |
//! | exhaustive, ≤ 2 delays   |   3 (deterministic)         |
//!
//! (A run makes about 11 choices among 3 fibers, so PCT's guarantee for this
//! depth-2 bug is at least 1/(n·k) = 1/33 per schedule.)
//!
//! `tests/explore.rs` asserts the bounds 20 (random) and 200 (PCT, depth 2).

use std::sync::atomic::{AtomicU32, Ordering};

use filament::host::explore::{Explorer, Failure, Policy, Schedule};
use filament::{Runtime, Stack};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap").without_painting()
}

/// The program under test. `racy`: a switch point between read and write.
fn counter_program(s: &mut Schedule, racy: bool) {
    let counter = AtomicU32::new(0);
    let counter = &counter;
    Runtime::<4>::scope(|rt| {
        s.install(rt); // let the explorer decide every switch
        for w in 0..3 {
            rt.spawn_detached(stack(), move |fib| {
                for _ in 0..2 * w {
                    fib.yield_now(); // other work
                }
                let v = counter.load(Ordering::Relaxed); // check ...
                if racy {
                    fib.yield_now(); // ... a switch point ...
                }
                counter.store(v + 1, Ordering::Relaxed); // ... act
                if !racy {
                    fib.yield_now(); // the same switch, after the update
                }
            })
            .ok()
            .expect("spawn");
        }
        rt.run().expect("run");
    });
    assert_eq!(counter.load(Ordering::Relaxed), 3, "lost update");
}

fn find(policy: Policy, seed: u64) -> Box<Failure> {
    match Explorer::new().policy(policy).seed(seed).schedules(10_000).try_run(|s| counter_program(s, true)) {
        Ok(summary) => panic!("{policy}: race not found from seed {seed}: {summary:?}"),
        Err(failure) => failure,
    }
}

fn stats(policy: Policy) {
    let mut needed: Vec<usize> = (0..100).map(|seed| find(policy, seed).schedules_run).collect();
    needed.sort_unstable();
    let mean = needed.iter().sum::<usize>() as f64 / needed.len() as f64;
    println!(
        "{:<24} min {:>3}  median {:>3}  mean {:>5.1}  max {:>3}   (schedules to find the race, 100 seeds)",
        policy.to_string(),
        needed[0],
        needed[needed.len() / 2],
        mean,
        needed[needed.len() - 1]
    );
}

fn main() {
    // 1. FIFO alone (no choice deviates from index 0) never shows the bug.
    Explorer::replay_choices(&[]).run(|s| counter_program(s, true));
    println!("strict FIFO: counter is 3, no bug visible\n");

    // 2. How many schedules each policy needs.
    stats(Policy::Random);
    stats(Policy::Pct { depth: 2 });
    stats(Policy::Pct { depth: 3 });
    let dfs = Explorer::new().policy(Policy::Exhaustive { delays: 2 }).try_run(|s| counter_program(s, true));
    println!("{:<24} found at schedule {}", "exhaustive(delays=2)", dfs.expect_err("found").schedules_run);

    // 3. What a failure report looks like.
    let failure = find(Policy::Pct { depth: 2 }, 0);
    println!("\n{failure}");

    // 4. Replaying the reported schedule fails again, with the same choices, every time.
    for _ in 0..100 {
        let again = Explorer::replay(&failure.token).try_run(|s| counter_program(s, true)).expect_err("fails again");
        assert_eq!(again.choices, failure.choices);
    }
    println!("replayed {:?} 100 times: failed identically every time", failure.token);

    // 5. The correct version (no switch point inside read-modify-write)
    //    passes 10 000 schedules under each policy.
    for policy in [Policy::Random, Policy::Pct { depth: 2 }, Policy::Pct { depth: 3 }] {
        let summary = Explorer::new().policy(policy).schedules(10_000).run(|s| counter_program(s, false));
        println!(
            "correct version, {policy}: {} schedules passed ({} distinct)",
            summary.schedules, summary.distinct
        );
    }
    let summary = Explorer::new().policy(Policy::Exhaustive { delays: 3 }).run(|s| counter_program(s, false));
    println!(
        "correct version, exhaustive(delays=3): all {} schedules passed (space exhausted: {})",
        summary.schedules, summary.exhausted
    );
}
