//! Fiber notifications, the lightest wake filament has: a "sensor" fiber
//! signals a "logger" fiber with event bits and a counter, no kernel object
//! declared. The logger waits on its own notification value.
//!
//! Run with `cargo run --example notifications`.

use filament::{Notify, Runtime, StaticStack, Take};

static STACKS: [StaticStack<32768>; 3] = [const { StaticStack::new() }; 3];
static RT: Runtime<'static, 3> = Runtime::new();

const SAMPLE_READY: u32 = 1 << 0;
const OVERHEAT: u32 = 1 << 1;
const SHUTDOWN: u32 = 1 << 31;

fn main() {
    // The logger: waits for event bits, clearing them on exit.
    let logger = RT
        .spawn_named("logger", STACKS[0].claim().expect("stack free"), |fib| {
            let mut samples = 0;
            loop {
                let bits = fib.notify_wait(0, u32::MAX).expect("notification");
                if bits & SAMPLE_READY != 0 {
                    samples += 1;
                    println!("t={:>3} logger: sample ready (events {bits:#x})", fib.now());
                }
                if bits & OVERHEAT != 0 {
                    println!("t={:>3} logger: OVERHEAT", fib.now());
                }
                if bits & SHUTDOWN != 0 {
                    return samples;
                }
            }
        })
        .expect("spawn logger");
    let logger_id = logger.id();

    // A counter used as a semaphore: the ticker's increments are taken one at a time.
    let counter = RT
        .spawn_named("counter", STACKS[1].claim().expect("stack free"), |fib| {
            let mut total = 0;
            while total < 5 {
                match fib.notify_take_timeout(Take::All, 100) {
                    Ok(n) => {
                        total += n;
                        println!("t={:>3} counter: took {n} tick(s), {total} in all", fib.now());
                    }
                    Err(e) => println!("t={:>3} counter: {e}", fib.now()),
                }
            }
            total
        })
        .expect("spawn counter");
    let counter_id = counter.id();

    // The sensor: every 10 ticks a sample; at 30 an over-temperature alarm.
    let sensor = RT
        .spawn_named("sensor", STACKS[2].claim().expect("stack free"), move |fib| {
            let mut t = fib.now();
            for i in 1..=5u32 {
                fib.sleep_periodic(&mut t, 10);
                let events = if i == 3 { SAMPLE_READY | OVERHEAT } else { SAMPLE_READY };
                fib.notify(logger_id, Notify::SetBits(events)).expect("logger alive");
                fib.notify(counter_id, Notify::Increment).expect("counter alive");
            }
            fib.sleep(5);
            fib.notify(logger_id, Notify::SetBits(SHUTDOWN)).expect("logger alive");
        })
        .expect("spawn sensor");

    RT.run().expect("run");
    let samples = RT.take(logger).expect("logger finished");
    let ticks = RT.take(counter).expect("counter finished");
    RT.take(sensor).expect("sensor finished");
    println!("logger saw {samples} samples; counter took {ticks} ticks");
    assert_eq!((samples, ticks), (5, 5));
}
