//! The filament cases: yield at N live fibers, a sparse table, spawn + finish.
//!
//! Stacks come from one `static` array of [`StaticStack`]s (in `.bss`, touched
//! only where fibers run), claimed again for every case run: a detached fiber's
//! stack is released as soon as it finishes. Spawned stacks skip painting
//! (`without_painting`) unless the case says otherwise, so spawn is O(1).
//! Runtimes are built on the heap (`Box::new_uninit`): a 10000-slot table is
//! too big to want on the caller's stack.

use std::hint::black_box;
use std::time::Instant;

use filament::sync::{Channel, Mutex, Semaphore};
use filament::{Fiber, Runtime, Stack, StaticStack};

use crate::Measured;

/// Bytes per fiber stack.
pub const STACK_SIZE: usize = 8192;

/// Most live fibers any case uses.
pub const MAX_FIBERS: usize = 10_000;

/// Stacks for every case (80 MiB of `.bss`, mapped lazily).
static STACKS: [StaticStack<STACK_SIZE>; MAX_FIBERS] = [const { StaticStack::new() }; MAX_FIBERS];

/// Where the yield loop of a fiber sits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sites {
    /// Every fiber runs the same closure: all suspend at one call site.
    Same,
    /// Even and odd fibers run different closures: two call sites, alternating.
    Different,
}

/// A runtime of capacity `N`, built in place on the heap.
fn boxed_runtime<const N: usize>() -> Box<Runtime<'static, N>> {
    let mut b = Box::<Runtime<'static, N>>::new_uninit();
    b.write(Runtime::new());
    // SAFETY: the `write` above initialised the box's contents.
    unsafe { b.assume_init() }
}

fn claim(i: usize, paint: bool) -> Stack<'static> {
    let s = STACKS[i].claim().expect("bench stack still claimed: a previous case leaked a fiber");
    if paint { s } else { s.without_painting() }
}

fn spawn<const N: usize, F>(rt: &Runtime<'static, N>, stack: Stack<'static>, f: F)
where
    F: FnOnce(&Fiber<'static>) + Send + 'static,
{
    if let Err(e) = rt.spawn_detached(stack, f) {
        panic!("spawn failed: {:?}", e.kind());
    }
}

/// `live` fibers in a runtime of capacity `N`, each yielding `ops / live`
/// times (rounded up). One op = one `yield_now` (one fiber-to-fiber switch).
/// The timed region is `run()`: it includes starting and finishing each fiber
/// once, amortised over the yields (and cancelled by the U/2U difference).
pub fn yields<const N: usize>(live: usize, sites: Sites, ops: u64) -> Measured {
    assert!(live <= N && live <= MAX_FIBERS);
    let per = ops.div_ceil(live as u64);
    let rt = boxed_runtime::<N>();
    for i in 0..live {
        let stack = claim(i, false);
        if sites == Sites::Different && i % 2 == 1 {
            // A different closure type: a second copy of the loop, so this
            // fiber suspends at a different return address. The trailing
            // black_box keeps the two bodies from being merged.
            spawn(&*rt, stack, move |fib| {
                for _ in 0..per {
                    fib.yield_now();
                }
                black_box(i);
            });
        } else {
            spawn(&*rt, stack, move |fib| {
                for _ in 0..per {
                    fib.yield_now();
                }
            });
        }
    }
    let t = Instant::now();
    rt.run().expect("run");
    Measured { time: t.elapsed(), ops: per * live as u64 }
}

/// Spawn (detached) + `run` to completion of an empty fiber, on the same
/// static stack every time, in a 1-slot runtime. One op = one fiber lifetime.
pub fn spawn_run(ops: u64) -> Measured {
    spawn_run_with(ops, false)
}

/// Like [`spawn_run`] but the stack is painted at every spawn (high-water
/// measurement on): shows what painting an 8 KiB stack costs.
pub fn spawn_run_painted(ops: u64) -> Measured {
    spawn_run_with(ops, true)
}

fn spawn_run_with(ops: u64, paint: bool) -> Measured {
    let rt = boxed_runtime::<1>();
    let t = Instant::now();
    for _ in 0..ops {
        spawn(&*rt, claim(0, paint), |_fib| {
            black_box(7u32);
        });
        rt.run().expect("run");
    }
    Measured { time: t.elapsed(), ops }
}

/// Spawn with a `JoinHandle`, `run`, then `take` the value: the non-detached
/// path, closest to corosensei's create–resume–return–drop.
pub fn spawn_run_take(ops: u64) -> Measured {
    let rt = boxed_runtime::<1>();
    let t = Instant::now();
    for _ in 0..ops {
        let h = match rt.spawn(claim(0, false), |_fib| black_box(7u32)) {
            Ok(h) => h,
            Err(e) => panic!("spawn failed: {:?}", e.kind()),
        };
        rt.run().expect("run");
        black_box(rt.take(h).expect("finished"));
    }
    Measured { time: t.elapsed(), ops }
}

/// [`spawn_run`] under one [`Runtime::lock`] for the whole loop: spawn and
/// run take no lock each; the stack is still claimed (an atomic swap) at
/// every spawn and released by the fiber's final switch.
pub fn spawn_run_locked(ops: u64) -> Measured {
    let rt = boxed_runtime::<1>();
    let locked = rt.lock().expect("runtime idle");
    let t = Instant::now();
    for _ in 0..ops {
        if let Err(e) = locked.spawn_detached(claim(0, false), |_fib| {
            black_box(7u32);
        }) {
            panic!("spawn failed: {:?}", e.kind());
        }
        locked.run().expect("run");
    }
    Measured { time: t.elapsed(), ops }
}

/// [`spawn_run_take`] under one [`Runtime::lock`], the stack handed back by
/// `take_with_stack` and spawned on again: no atomic read-modify-write per
/// op (corosensei's `coro-call` reuses its stack the same way).
pub fn spawn_run_take_locked(ops: u64) -> Measured {
    let rt = boxed_runtime::<1>();
    let locked = rt.lock().expect("runtime idle");
    let mut stack = claim(0, false);
    let t = Instant::now();
    for _ in 0..ops {
        let h = match locked.spawn(stack, |_fib| black_box(7u32)) {
            Ok(h) => h,
            Err(e) => panic!("spawn failed: {:?}", e.kind()),
        };
        locked.run().expect("run");
        let (v, back) = locked.take_with_stack(h).expect("finished");
        black_box(v);
        stack = back;
    }
    Measured { time: t.elapsed(), ops }
}

/// Spawn from inside a fiber: a parent fiber spawns an empty detached child
/// and yields to it; the child runs, finishes and switches straight back.
/// The child's stack alternates between two static stacks (a detached child's
/// slot and stack are reclaimed at the parent's next spawn). No `run()` per op.
/// One op = spawn + switch in + entry + exit + switch out + reclaim.
pub fn spawn_yield_in_fiber(ops: u64) -> Measured {
    let rt = boxed_runtime::<2>();
    let parent = claim(0, false);
    let time = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = time.clone();
    spawn(&*rt, parent, move |fib| {
        let t = Instant::now();
        for i in 0..ops {
            let stack = claim(1 + (i % 2) as usize, false);
            if let Err(e) = fib.spawn_detached(stack, |_child| {
                black_box(7u32);
            }) {
                panic!("spawn failed: {:?}", e.kind());
            }
            fib.yield_now();
        }
        *out.lock().unwrap() = Some(t.elapsed());
    });
    rt.run().expect("run");
    let time = time.lock().unwrap().take().expect("parent ran");
    Measured { time, ops }
}

/// Spawn + join from inside a fiber: the parent spawns an empty child with a
/// handle and joins it (blocks; the child runs and its exit wakes the parent);
/// join takes the value and frees the slot and stack at once.
/// One op = spawn + block + switch in + entry + exit/wake + switch out + take.
pub fn spawn_join_in_fiber(ops: u64) -> Measured {
    let rt = boxed_runtime::<2>();
    let parent = claim(0, false);
    let time = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = time.clone();
    spawn(&*rt, parent, move |fib| {
        let t = Instant::now();
        for _ in 0..ops {
            let h = match fib.spawn(claim(1, false), |_child| black_box(7u32)) {
                Ok(h) => h,
                Err(e) => panic!("spawn failed: {:?}", e.kind()),
            };
            black_box(fib.join(h).expect("child finished"));
        }
        *out.lock().unwrap() = Some(t.elapsed());
    });
    rt.run().expect("run");
    let time = time.lock().unwrap().take().expect("parent ran");
    Measured { time, ops }
}

/// Runs `a` and `b` as the two fibers of a scoped 2-slot runtime and returns
/// the time `run` took. Primitives borrowed by the closures live in the
/// caller's frame (a fresh set per case run, so each binds to this runtime).
fn run_pair<'s, A, B>(a: A, b: B) -> std::time::Duration
where
    A: FnOnce(&Fiber<'s>) + Send + 's,
    B: FnOnce(&Fiber<'s>) + Send + 's,
{
    Runtime::<'s, 2>::scope(|rt| {
        if let Err(e) = rt.spawn_detached(claim(0, false), a) {
            panic!("spawn failed: {:?}", e.kind());
        }
        if let Err(e) = rt.spawn_detached(claim(1, false), b) {
            panic!("spawn failed: {:?}", e.kind());
        }
        let t = Instant::now();
        rt.run().expect("run");
        t.elapsed()
    })
}

/// Channel ping-pong: two `Channel<u64, 1>`s; fiber A sends on one and
/// receives on the other, fiber B echoes. One op = one one-way message
/// (a round trip is two): send, the receiver's wake-up and a switch.
pub fn channel_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let ping: Channel<u64, 1> = Channel::new();
    let pong: Channel<u64, 1> = Channel::new();
    let (ping, pong) = (&ping, &pong);
    let time = run_pair(
        move |fib| {
            for i in 0..rounds {
                ping.send(fib, i).expect("send");
                black_box(pong.recv(fib).expect("recv"));
            }
        },
        move |fib| {
            for _ in 0..rounds {
                let v = ping.recv(fib).expect("recv");
                pong.send(fib, v).expect("send");
            }
        },
    );
    Measured { time, ops: rounds * 2 }
}

/// Semaphore ping-pong: two semaphores with no permits; A releases one and
/// acquires the other, B the reverse. One op = one one-way hand-off.
pub fn semaphore_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let ping = Semaphore::new(0);
    let pong = Semaphore::new(0);
    let (ping, pong) = (&ping, &pong);
    let time = run_pair(
        move |fib| {
            for _ in 0..rounds {
                ping.release(fib, 1).expect("release");
                pong.acquire(fib).expect("acquire");
            }
        },
        move |fib| {
            for _ in 0..rounds {
                ping.acquire(fib).expect("acquire");
                pong.release(fib, 1).expect("release");
            }
        },
    );
    Measured { time, ops: rounds * 2 }
}

/// Mutex hand-off: two fibers each lock, yield while holding the lock (so the
/// other one blocks on it), and unlock (which hands the lock to the waiter).
/// One op = one lock acquisition that had to wait for a hand-off.
pub fn mutex_handoff(ops: u64) -> Measured {
    let per = ops.div_ceil(2);
    let mutex = Mutex::new(0u64);
    let m = &mutex;
    // Written out twice: a shared `|fib: &Fiber<'_>|` closure would be generic
    // over the fiber lifetime, which the (invariant) runtime lifetime forbids.
    let time = run_pair(
        move |fib| {
            for _ in 0..per {
                let mut g = m.lock(fib).expect("lock");
                *g += 1;
                fib.yield_now();
                drop(g);
            }
        },
        move |fib| {
            for _ in 0..per {
                let mut g = m.lock(fib).expect("lock");
                *g += 1;
                fib.yield_now();
                drop(g);
            }
        },
    );
    assert_eq!(mutex.into_inner(), per * 2);
    Measured { time, ops: per * 2 }
}
