//! Fibers in a process without libc: three workers interleave, a fourth sleeps in virtual
//! time (the default idle policy jumps the clock to the next deadline), and the results
//! add up to the process's exit status.

use crate::println;
use filament::{JoinHandle, Runtime, StaticStack};

const STACK_SIZE: usize = 16 * 1024;
const FIBERS: usize = 4;

static STACKS: [StaticStack<STACK_SIZE>; FIBERS] = [const { StaticStack::new() }; FIBERS];
static RT: Runtime<'static, FIBERS> = Runtime::new();

/// Exit status when the demo itself finds something wrong.
pub const FAILURE_STATUS: i32 = 1;

/// Runs the demo and returns the exit status: the sum of the workers' results (42).
pub fn run() -> i32 {
    let mut workers: [Option<JoinHandle<u32>>; 3] = [None, None, None];
    for (k, (slot, name)) in workers.iter_mut().zip(["w0", "w1", "w2"]).enumerate() {
        let stack = STACKS[k].claim().expect("fresh static stack");
        let handle = RT.spawn_named(name, stack, move |fib| {
            let mut total = 0;
            for step in 0..4u32 {
                let add = k as u32 + step + 1;
                total += add;
                println!("[{}] step {step}: +{add} = {total}", fib.name());
                fib.yield_now();
            }
            total
        });
        *slot = Some(handle.expect("runtime has room"));
    }
    let sleeper = RT
        .spawn_named("sleeper", STACKS[3].claim().expect("fresh static stack"), |fib| {
            let start = fib.now();
            fib.sleep(100);
            println!("[sleeper] woke at virtual tick {} (slept {})", fib.now(), fib.now() - start);
            fib.now() - start
        })
        .expect("runtime has room");

    if RT.run().is_err() {
        println!("run failed");
        return FAILURE_STATUS;
    }
    let slept = RT.take(sleeper).ok();
    let mut sum = 0;
    for handle in workers.into_iter().flatten() {
        match RT.take(handle) {
            Ok(total) => sum += total,
            Err(_) => return FAILURE_STATUS,
        }
    }
    println!("results: workers sum to {sum}, sleeper slept {} ticks", slept.unwrap_or(0));
    if slept != Some(100) {
        return FAILURE_STATUS;
    }
    sum as i32
}
