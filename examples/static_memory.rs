//! The README static-memory program: stacks, runtime and channel in `static`s.
//!
//! `cargo run --example static_memory`

use filament::sync::Channel;
use filament::{Runtime, StaticStack};

static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
static RT: Runtime<'static, 4> = Runtime::new(); // capacity in the type, no heap
static PIPE: Channel<u32, 4> = Channel::new(); // inline storage

fn main() {
    RT.spawn_detached(STACKS[0].claim().unwrap(), |fib| {
        for i in 0..10 {
            PIPE.send(fib, i).unwrap();
        }
        PIPE.close(fib).unwrap();
    })
    .unwrap();
    let sum = RT
        .spawn(STACKS[1].claim().unwrap(), |fib| {
            let mut sum = 0;
            while let Ok(v) = PIPE.recv(fib) {
                sum += v;
            }
            sum
        })
        .unwrap();
    RT.run().unwrap(); // returns when every fiber finished
    assert_eq!(RT.take(sum).unwrap(), 45);
    println!("sum of 0..10 sent through a static channel: 45");
}
