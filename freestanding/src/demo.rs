//! Fibers in a process without libc: three workers interleave, a fourth sleeps in virtual
//! time (the default idle policy jumps the clock to the next deadline), and the results
//! add up to the process's exit status. First, a self-check of the C memory functions the
//! binary gets from filament's `mem` feature.

use crate::println;
use core::cmp::Ordering;
use core::hint::black_box;
use filament::{JoinHandle, Runtime, StaticStack};

const STACK_SIZE: usize = 16 * 1024;
const FIBERS: usize = 4;

static STACKS: [StaticStack<STACK_SIZE>; FIBERS] = [const { StaticStack::new() }; FIBERS];
static RT: Runtime<'static, FIBERS> = Runtime::new();

/// Exit status when the demo itself finds something wrong.
pub const FAILURE_STATUS: i32 = 1;

/// Exercises `memmove` (both overlap directions), `memset`, `memcpy`, `bcmp` and `memcmp`
/// through `core` (lengths hidden behind `black_box`, so these are real calls of the
/// exported symbols, not inlined loops). There is no libc: they are filament's (`mem`).
pub fn check_memory_functions() -> bool {
    let n = black_box(200usize);
    let pattern = |buf: &mut [u8; 256]| buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let mut buf = [0u8; 256];

    pattern(&mut buf);
    buf.copy_within(1..1 + n, 0); // memmove, destination below the source
    let forward = (0..n).all(|i| buf[i] == (i + 1) as u8);

    pattern(&mut buf);
    buf.copy_within(0..n, 1); // memmove, destination inside the source: copies backwards
    let backward = buf[0] == 0 && (0..n).all(|i| buf[i + 1] == i as u8) && buf[n + 1] == (n + 1) as u8;

    let past_end = buf[n];
    buf[..n].fill(black_box(0xab)); // memset
    let filled = buf[..n].iter().all(|&b| b == 0xab) && buf[n] == past_end;

    let mut copy = [0u8; 256];
    copy[..n].copy_from_slice(&buf[..n]); // memcpy
    let equal = black_box(&copy[..n]) == black_box(&buf[..n]); // bcmp
    copy[n - 1] = 0xac;
    let unequal = black_box(&copy[..n]) != black_box(&buf[..n]); // bcmp
    let ordered = black_box(&buf[..n]).cmp(black_box(&copy[..n])) == Ordering::Less // memcmp
        && black_box(&copy[..n]).cmp(black_box(&buf[..n])) == Ordering::Greater;

    let ok = forward && backward && filled && equal && unequal && ordered;
    println!("mem: memmove (both overlaps), memset, memcpy, bcmp, memcmp: {}", if ok { "ok" } else { "FAILED" });
    ok
}

/// Runs the demo and returns the exit status: the sum of the workers' results (42).
pub fn run() -> i32 {
    if !check_memory_functions() {
        return FAILURE_STATUS;
    }
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
