//! A check-then-act race that strict FIFO never shows, found by schedule
//! exploration, replayed from its seed, and the same program with a
//! `filament::sync::Mutex` surviving 10 000 schedules.
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
use filament::sync::Mutex;
use filament::{Runtime, Stack};

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

/// The program under test. `racy`: a switch point between read and write.
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

fn find(policy: Policy, seed: u64) -> Box<Failure> {
    match Explorer::new().policy(policy).seed(seed).schedules(10_000).try_run(|s| counter_program(s, Version::Racy)) {
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
    Explorer::replay_choices(&[]).run(|s| counter_program(s, Version::Racy));
    println!("strict FIFO: counter is 3, no bug visible\n");

    // 2. How many schedules each policy needs.
    stats(Policy::Random);
    stats(Policy::Pct { depth: 2 });
    stats(Policy::Pct { depth: 3 });
    let dfs = Explorer::new().policy(Policy::Exhaustive { delays: 2 }).try_run(|s| counter_program(s, Version::Racy));
    println!("{:<24} found at schedule {}", "exhaustive(delays=2)", dfs.expect_err("found").schedules_run);

    // 3. What a failure report looks like.
    let failure = find(Policy::Pct { depth: 2 }, 0);
    println!("\n{failure}");

    // 4. Replaying the reported schedule fails again, with the same choices, every time.
    for _ in 0..100 {
        let again =
            Explorer::replay(&failure.token).try_run(|s| counter_program(s, Version::Racy)).expect_err("fails again");
        assert_eq!(again.choices, failure.choices);
    }
    println!("replayed {:?} 100 times: failed identically every time", failure.token);

    // 5. The same program holding a `filament::sync::Mutex` across the
    //    read-modify-write passes 10 000 schedules under each policy, and every
    //    schedule within 3 delays of FIFO.
    for policy in [Policy::Random, Policy::Pct { depth: 2 }, Policy::Pct { depth: 3 }] {
        let summary = Explorer::new().policy(policy).schedules(10_000).run(|s| counter_program(s, Version::Locked));
        println!("with Mutex, {policy}: {} schedules passed ({} distinct)", summary.schedules, summary.distinct);
    }
    let summary = Explorer::new().policy(Policy::Exhaustive { delays: 3 }).run(|s| counter_program(s, Version::Locked));
    println!(
        "with Mutex, exhaustive(delays=3): all {} schedules passed (space exhausted: {})",
        summary.schedules, summary.exhausted
    );
    // So does the version without a switch point between read and write.
    let summary =
        Explorer::new().policy(Policy::Random).schedules(10_000).run(|s| counter_program(s, Version::SwitchFree));
    println!("switch-free version, random: {} schedules passed", summary.schedules);
}
