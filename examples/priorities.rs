//! Fixed priorities, cooperative preemption and priority inheritance.
//!
//! A low-priority logger holds a mutex-protected log while a high-priority
//! control loop needs it and a medium-priority number cruncher wants the CPU.
//! Without inheritance the cruncher would run while the control loop waits on
//! the logger (priority inversion); with it the logger runs at the control
//! loop's level until it unlocks, and the control loop goes next.
//!
//! ```sh
//! cargo run --features std --example priorities
//! ```

use std::sync::Mutex as StdMutex;

use filament::sync::{Mutex, Semaphore};
use filament::{Priority, Runtime, SpawnOptions, StaticStack};

static STACKS: [StaticStack<65536>; 4] = [const { StaticStack::new() }; 4];
static RT: Runtime<'static, 4> = Runtime::new();
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new()).named("log");
static TICK: Semaphore = Semaphore::new(0).named("tick");
static ORDER: StdMutex<Vec<String>> = StdMutex::new(Vec::new());

const LOW: Priority = Priority::LOWEST;
const MEDIUM: Priority = Priority::new(3).unwrap();
const HIGH: Priority = Priority::HIGHEST;

fn say(what: String) {
    println!("{what}");
    ORDER.lock().unwrap().push(what);
}

fn main() {
    // The logger starts first, takes the log and starts the other two.
    RT.spawn_detached_with(STACKS[0].claim().unwrap(), SpawnOptions::new().name("logger").priority(LOW), |fib| {
        let mut log = LOG.lock(fib).unwrap();
        say(format!("logger  ({:?}) holds the log", fib.priority()));
        fib.spawn_detached_with(
            STACKS[1].claim().unwrap(),
            SpawnOptions::new().name("control").priority(HIGH),
            |fib| {
                TICK.acquire(fib).unwrap(); // wait for the "timer"
                say(format!("control ({:?}) needs the log", fib.priority()));
                LOG.lock(fib).unwrap().push("control step".into());
                say("control done".into());
            },
        )
        .unwrap();
        fib.spawn_detached_with(
            STACKS[2].claim().unwrap(),
            SpawnOptions::new().name("cruncher").priority(MEDIUM),
            |fib| {
                for round in 0..3 {
                    say(format!("cruncher ({:?}) round {round}", fib.priority()));
                    fib.yield_now();
                }
            },
        )
        .unwrap();
        // A scheduling point: the control loop (spawned above us, not run yet)
        // runs now and takes the tick.
        TICK.give(fib).unwrap();
        for _ in 0..2 {
            say(format!("logger  runs at {:?} (base {:?}): control waits for it", fib.priority(), fib.base_priority()));
            log.push("logger line".into());
            fib.yield_now(); // the cruncher (MEDIUM) does not get in
        }
        drop(log); // the control loop takes the log and runs now
        say(format!("logger  back at {:?}", fib.priority()));
    })
    .unwrap();
    RT.run().unwrap();

    let order = ORDER.lock().unwrap();
    let pos = |what: &str| order.iter().position(|l| l.starts_with(what)).unwrap();
    assert!(pos("control done") < pos("cruncher"), "inheritance keeps the cruncher out");
    assert!(pos("cruncher") < pos("logger  back"), "the cruncher outranks the logger once it unlocked");
}
