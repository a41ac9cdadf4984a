//! Three fibers that print and yield, showing the round-robin interleaving.
//!
//! Run with `cargo run --example round_robin`.

use filament::{Runtime, StaticStack};

static STACKS: [StaticStack<32768>; 3] = [const { StaticStack::new() }; 3];
static RT: Runtime<'static, 4> = Runtime::new();

fn main() {
    let mut handles = Vec::new();
    for (stack, name) in STACKS.iter().zip(["alpha", "beta", "gamma"]) {
        let handle = RT
            .spawn_named(name, stack.claim().expect("stack free"), move |fib| {
                for step in 0..3 {
                    println!("{:<5} ({}) step {step}", fib.name(), fib.id());
                    fib.yield_now();
                }
                fib.stack_high_water()
            })
            .map_err(|e| e.kind())
            .expect("spawn");
        handles.push((name, handle));
    }
    RT.run().expect("run");
    for (name, handle) in handles {
        let used = RT.take(handle).expect("finished").unwrap_or(0);
        println!("{name:<5} finished, used {used} of 32768 stack bytes");
    }
}
