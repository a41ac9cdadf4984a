//! A debuggee for `gdb/filament.py` and `tests/gdb.rs`: fibers staged in every
//! state, then a stop at [`marker`] inside the fiber "worker".
//!
//! When it reaches `marker`, the runtime holds:
//!
//! | index | name     | state                                   | suspended in            |
//! |-------|----------|-----------------------------------------|-------------------------|
//! | 0     | done     | Finished                                | —                       |
//! | 1     | sleeper  | Blocked (sleep until tick 1000000)      | `nap`                   |
//! | 2     | joiner   | Blocked (join of #5 "worker")           | `wait_for_worker`       |
//! | 3     | spinner  | Ready                                   | `spin_yield`            |
//! | 4     | reader   | Blocked (recv on `INBOX`)               | `read_one`              |
//! | 5     | worker   | Running                                 | (at `marker`)           |
//! | 6     | late     | Ready, never run (spawned by "worker")  | `__filament_fiber_start`|
//!
//! Run it under gdb:
//!
//! ```text
//! cargo build --example gdb_target
//! gdb -q -x gdb/filament.py -ex 'break gdb_target::marker' -ex run -ex 'info fibers' target/debug/examples/gdb_target
//! ```
//!
//! Without a debugger it simply runs to completion (the sleep passes in virtual time).

use std::hint::black_box;

use filament::sync::Channel;
use filament::{Fiber, Priority, Runtime, SpawnOptions, Stack};

static RT: Runtime<'static, 8> = Runtime::new();
static INBOX: Channel<u64, 1> = Channel::new().named("inbox");

/// The breakpoint target: called by "worker" once every other fiber is staged.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn filament_gdb_marker(step: u64) -> u64 {
    black_box(step) + 1
}

/// The Rust-named breakpoint target (calls the unmangled one).
#[inline(never)]
fn marker(step: u64) -> u64 {
    filament_gdb_marker(black_box(step))
}

#[inline(never)]
fn nap(fib: &Fiber<'_>) {
    fib.sleep(1_000_000);
}

#[inline(never)]
fn wait_for_worker(fib: &Fiber<'_>, worker: filament::JoinHandle<u64>) -> u64 {
    fib.join(worker).map_err(|_| "join failed").expect("worker finishes")
}

#[inline(never)]
fn spin_yield(fib: &Fiber<'_>, rounds: u32) -> u32 {
    let mut n = 0;
    for _ in 0..rounds {
        fib.yield_now();
        n += 1;
    }
    black_box(n)
}

#[inline(never)]
fn read_one(fib: &Fiber<'_>) -> u64 {
    INBOX.recv(fib).expect("worker sends")
}

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack")
}

fn main() {
    let done = RT.spawn_named("done", stack(), |_| 1u64).expect("spawn done");
    let sleeper = RT.spawn_named("sleeper", stack(), |fib| nap(fib)).expect("spawn sleeper");
    // The worker is spawned after the joiner, so hand its handle over through a cell.
    let slot: &'static std::sync::Mutex<Option<filament::JoinHandle<u64>>> =
        Box::leak(Box::new(std::sync::Mutex::new(None)));
    let joiner = RT
        .spawn_named("joiner", stack(), move |fib| {
            let worker = slot.lock().unwrap().take().expect("worker handle");
            wait_for_worker(fib, worker)
        })
        .expect("spawn joiner");
    let spinner = RT.spawn_named("spinner", stack(), |fib| spin_yield(fib, 3)).expect("spawn spinner");
    let reader = RT.spawn_named("reader", stack(), |fib| read_one(fib)).expect("spawn reader");
    let worker = RT
        .spawn_named("worker", stack(), |fib| {
            // By now: done finished, sleeper, joiner and reader blocked, spinner yielded once.
            // At a higher level: it runs at the worker's next scheduling point
            // (the send below), before the reader.
            let late = fib
                .spawn_with(stack(), SpawnOptions::new().name("late").priority(Priority::new(3).unwrap()), |_| 5u64)
                .expect("spawn late");
            let v = marker(41);
            fib.detach(late).expect("detach late");
            INBOX.send(fib, 2).expect("reader waits");
            v
        })
        .expect("spawn worker");
    *slot.lock().unwrap() = Some(worker);
    RT.run().expect("run");
    let total = RT.take(done).unwrap() + RT.take(joiner).unwrap() + RT.take(reader).unwrap();
    RT.take(sleeper).unwrap();
    RT.take(spinner).unwrap();
    println!("gdb_target: total {total}");
}
