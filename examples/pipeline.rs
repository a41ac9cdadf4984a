//! A three-stage pipeline over channels, with a watchdog.
//!
//! producer ──raw──► transformer ──cooked──► consumer
//!
//! * The producer emits readings in bursts and sleeps between bursts.
//! * The transformer squares each reading; the channels are small, so the
//!   stages block on each other (back-pressure) and hand values over FIFO.
//! * The consumer sums results and counts them under a `Mutex`.
//! * A watchdog fiber wakes every 5 ms and reports progress; it stops when the
//!   consumer sets the `done` event (`wait_timeout` doubles as its timer).
//!
//! Time is real: `run_with_idle(HostClock)` parks the thread until the next
//! deadline, so one tick is one wall-clock millisecond.
//!
//! Run with `cargo run --example pipeline --features std`.

use std::time::Instant;

use filament::host::HostClock;
use filament::sync::{Channel, Event, Mutex, RecvError, WaitError};
use filament::{Runtime, Stack};

const READINGS: u64 = 2_000;
const BURST: u64 = 100;

#[derive(Default)]
struct Progress {
    produced: u64,
    transformed: u64,
    consumed: u64,
    sum: u64,
}

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack")
}

fn main() {
    let raw: Channel<u64, 8> = Channel::new();
    let cooked: Channel<u64, 4> = Channel::new();
    let progress = Mutex::new(Progress::default());
    let done = Event::new();
    let started = Instant::now();

    let (reports, stats) = Runtime::<4>::scope(|rt| {
        let producer = rt
            .spawn_named("producer", stack(), |fib| {
                for i in 1..=READINGS {
                    raw.send(fib, i).expect("transformer went away");
                    progress.lock(fib).unwrap().produced += 1;
                    if i % BURST == 0 {
                        fib.sleep(2); // between bursts
                    }
                }
                raw.close(fib).unwrap(); // the transformer drains, then stops
            })
            .unwrap();
        let transformer = rt
            .spawn_named("transformer", stack(), |fib| {
                while let Ok(x) = raw.recv(fib) {
                    cooked.send(fib, x * x).expect("consumer went away");
                    progress.lock(fib).unwrap().transformed += 1;
                }
                cooked.close(fib).unwrap();
            })
            .unwrap();
        let consumer = rt
            .spawn_named("consumer", stack(), |fib| {
                loop {
                    match cooked.recv(fib) {
                        Ok(y) => {
                            let mut p = progress.lock(fib).unwrap();
                            p.consumed += 1;
                            p.sum += y;
                        }
                        Err(RecvError::Closed) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                done.set(fib).unwrap();
            })
            .unwrap();
        let watchdog = rt
            .spawn_named("watchdog", stack(), |fib| {
                let mut reports = Vec::new();
                loop {
                    match done.wait_timeout(fib, 5) {
                        Ok(()) => break,
                        Err(WaitError::TimedOut) => {
                            let p = progress.lock(fib).unwrap();
                            reports.push(format!(
                                "  t={:>3} ms  produced {:>4}  transformed {:>4}  consumed {:>4}",
                                fib.now(),
                                p.produced,
                                p.transformed,
                                p.consumed
                            ));
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                reports
            })
            .unwrap();

        rt.run_with_idle(&mut HostClock::new()).expect("pipeline deadlocked");
        rt.take(producer).unwrap();
        rt.take(transformer).unwrap();
        rt.take(consumer).unwrap();
        (rt.take(watchdog).unwrap(), rt.stats().unwrap())
    });

    let p = progress.into_inner();
    let expected: u64 = (1..=READINGS).map(|i| i * i).sum();
    println!("pipeline: producer -> transformer -> consumer ({READINGS} readings, bursts of {BURST})");
    println!("watchdog reports (every 5 ms):");
    for r in &reports {
        println!("{r}");
    }
    println!(
        "done in {:.1} ms: consumed {} values, sum of squares {} ({}), {} idle waits",
        started.elapsed().as_secs_f64() * 1e3,
        p.consumed,
        p.sum,
        if p.sum == expected { "correct" } else { "WRONG" },
        stats.idles
    );
    assert_eq!((p.produced, p.transformed, p.consumed), (READINGS, READINGS, READINGS));
    assert_eq!(p.sum, expected);
}
