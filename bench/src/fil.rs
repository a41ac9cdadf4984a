//! The filament cases: yield at N live fibers, a sparse table, spawn + finish.
//!
//! Stacks come from one `static` array of [`StaticStack`]s (in `.bss`, touched
//! only where fibers run), claimed again for every case run: a detached fiber's
//! stack is released as soon as it finishes. Spawned stacks skip painting
//! (`without_painting`) unless the case says otherwise, so spawn is O(1).
//! Runtimes are built on the heap (`Box::new_uninit`): a 10000-slot table is
//! too big to want on the caller's stack.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

use filament::sync::select::{self, AcquireCase, EventCase, RecvCase};
use filament::sync::{Channel, Event, MessageBuffer, Mutex, Semaphore, StreamBuffer};
use filament::{Fiber, FiberId, Notify, Priority, Runtime, SpawnOptions, Stack, StaticStack, Take};

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
pub(crate) fn run_pair<'s, A, B>(a: A, b: B) -> std::time::Duration
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

/// Buffered channel stream: one `Channel<u64, 16>`, fiber A sends, fiber B
/// receives. A fills the buffer and blocks on the 17th send; B's first
/// receive refills the room from A's blocked send and wakes A; B then drains
/// the buffer and blocks, and A runs again: per 16 messages two switches, the
/// rest are plain buffer pushes and pops. One op = one message.
pub fn channel_stream(ops: u64) -> Measured {
    let ch: Channel<u64, 16> = Channel::new();
    let ch = &ch;
    let time = run_pair(
        move |fib| {
            for i in 0..ops {
                ch.send(fib, i).expect("send");
            }
        },
        move |fib| {
            for _ in 0..ops {
                black_box(ch.recv(fib).expect("recv"));
            }
        },
    );
    Measured { time, ops }
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

/// Notification ping-pong: each fiber notifies the other (`Notify::Increment`)
/// and takes its own notification (`notify_take(Take::One)`), the FreeRTOS
/// "task notification as a lightweight semaphore" pattern. One op = one
/// one-way hand-off; compare with [`semaphore_pingpong`].
pub fn notify_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let ids: [OnceLock<FiberId>; 2] = [OnceLock::new(), OnceLock::new()];
    let ids = &ids;
    // Each fiber publishes its id, then yields once so the other has too.
    let peer = move |fib: &Fiber<'_>, me: usize| {
        ids[me].set(fib.id()).expect("id set once");
        fib.yield_now();
        *ids[1 - me].get().expect("peer id")
    };
    let time = run_pair(
        move |fib| {
            let b = peer(fib, 0);
            for _ in 0..rounds {
                fib.notify(b, Notify::Increment).expect("notify");
                black_box(fib.notify_take(Take::One).expect("take"));
            }
        },
        move |fib| {
            let a = peer(fib, 1);
            for _ in 0..rounds {
                black_box(fib.notify_take(Take::One).expect("take"));
                fib.notify(a, Notify::Increment).expect("notify");
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

/// Yield with priorities in use: two fibers at level 1 yield to each other
/// while a fiber at level 0 is ready (another level's ring is not empty). One
/// op = one `yield_now`. The yield path is the plain one: nothing above the
/// running level is ready.
pub fn prio_yield(ops: u64) -> Measured {
    let per = ops.div_ceil(2);
    let rt = boxed_runtime::<3>();
    let high = SpawnOptions::new().priority(Priority::new(1).expect("level"));
    for i in 0..2 {
        let r = rt.spawn_detached_with(claim(i, false), high, move |fib| {
            for _ in 0..per {
                fib.yield_now();
            }
        });
        if let Err(e) = r {
            panic!("spawn failed: {:?}", e.kind());
        }
    }
    spawn(&*rt, claim(2, false), |_| {});
    let t = Instant::now();
    rt.run().expect("run");
    Measured { time: t.elapsed(), ops: per * 2 }
}

/// A priority wake: a high fiber (level 1) waits on a semaphore; a low one
/// (level 0) gives it a permit, which wakes the high fiber, and the give's
/// scheduling point switches to it at once; it takes the permit, waits again
/// and the low fiber resumes. One op = one give + both switches.
pub fn prio_wake(ops: u64) -> Measured {
    let go = Semaphore::new(0);
    let go = &go;
    let time = Runtime::<'_, 2>::scope(|rt| {
        let high = SpawnOptions::new().priority(Priority::new(1).expect("level"));
        let r = rt.spawn_detached_with(claim(0, false), high, move |fib| {
            for _ in 0..ops {
                go.acquire(fib).expect("acquire");
            }
        });
        if let Err(e) = r {
            panic!("spawn failed: {:?}", e.kind());
        }
        if let Err(e) = rt.spawn_detached(claim(1, false), move |fib| {
            for _ in 0..ops {
                go.release(fib, 1).expect("release");
            }
        }) {
            panic!("spawn failed: {:?}", e.kind());
        }
        let t = Instant::now();
        rt.run().expect("run");
        t.elapsed()
    });
    Measured { time, ops }
}

/// Stream buffer, no runtime: `send_from_isr` of 16 bytes then
/// `receive_from_isr` of them, on one thread (what an interrupt handler and
/// a polling reader pay, with no fiber waiting). One op = one write + one read.
pub fn stream_isr(ops: u64) -> Measured {
    let buf: StreamBuffer<64> = StreamBuffer::new();
    let data = [7u8; 16];
    let mut out = [0u8; 16];
    let t = Instant::now();
    for _ in 0..ops {
        black_box(buf.send_from_isr(black_box(&data)).expect("send"));
        black_box(buf.receive_from_isr(&mut out).expect("receive"));
    }
    Measured { time: t.elapsed(), ops }
}

/// Stream buffer ping-pong: two `StreamBuffer<16>`s; fiber A sends 8 bytes
/// on one and blocks receiving 8 on the other, fiber B echoes. One op = one
/// one-way message (a round trip is two): the send, the blocked reader's
/// wake-up through the buffer's interrupt signal, and the switches.
pub fn stream_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let ping: StreamBuffer<16> = StreamBuffer::new().with_trigger_level(8);
    let pong: StreamBuffer<16> = StreamBuffer::new().with_trigger_level(8);
    let (ping, pong) = (&ping, &pong);
    let time = run_pair(
        move |fib| {
            let mut out = [0u8; 8];
            for i in 0..rounds {
                ping.send(fib, &i.to_le_bytes()).expect("send");
                black_box(pong.receive(fib, &mut out).expect("receive"));
            }
        },
        move |fib| {
            let mut out = [0u8; 8];
            for _ in 0..rounds {
                let n = ping.receive(fib, &mut out).expect("receive");
                pong.send(fib, &out[..n]).expect("send");
            }
        },
    );
    Measured { time, ops: rounds * 2 }
}

/// Message buffer ping-pong: as [`stream_pingpong`] with two
/// `MessageBuffer<32>`s and 8-byte messages.
pub fn message_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let ping: MessageBuffer<32> = MessageBuffer::new();
    let pong: MessageBuffer<32> = MessageBuffer::new();
    let (ping, pong) = (&ping, &pong);
    let time = run_pair(
        move |fib| {
            let mut out = [0u8; 8];
            for i in 0..rounds {
                ping.send(fib, &i.to_le_bytes()).expect("send");
                black_box(pong.receive(fib, &mut out).expect("receive"));
            }
        },
        move |fib| {
            let mut out = [0u8; 8];
            for _ in 0..rounds {
                let n = ping.receive(fib, &mut out).expect("receive");
                pong.send(fib, &out[..n]).expect("send");
            }
        },
    );
    Measured { time, ops: rounds * 2 }
}

/// Interrupt-to-fiber message: a fiber waits in `IrqQueue::recv`; with no
/// fiber ready the runtime calls its idle hook, which stands in for an
/// interrupt taken while the CPU halts: it pushes one value with
/// `try_send_from_isr` and returns; the runtime's poll drains the raised
/// queue, wakes the fiber, which receives the value and waits again.
/// One op = one message: push, raise, poll + drain, wake, switch in, pop,
/// block, switch out, idle call.
pub fn irq_message_idle(ops: u64) -> Measured {
    use filament::{Idle, IrqQueue, Ticks};
    /// The "interrupt": one push per idle call.
    struct PushOnIdle<'q> {
        q: &'q IrqQueue<u64, 8>,
        next: u64,
    }
    impl Idle for PushOnIdle<'_> {
        fn idle(&mut self, now: Ticks, _next_deadline: Option<Ticks>) -> Ticks {
            self.q.try_send_from_isr(self.next).expect("queue has room: the fiber took the last one");
            self.next += 1;
            now
        }
    }
    let q: IrqQueue<u64, 8> = IrqQueue::new();
    let q = &q;
    let time = Runtime::<'_, 1>::scope(|rt| {
        if let Err(e) = rt.spawn_detached(claim(0, false), move |fib| {
            for i in 0..ops {
                assert_eq!(q.recv(fib).expect("recv"), i);
            }
        }) {
            panic!("spawn failed: {:?}", e.kind());
        }
        let mut hook = PushOnIdle { q, next: 0 };
        let t = Instant::now();
        rt.run_with_idle(&mut hook).expect("run");
        t.elapsed()
    });
    Measured { time, ops }
}

/// Interrupt-to-fiber message while another fiber runs: fiber A pushes one
/// value with `try_send_from_isr` (as an interrupt handler that interrupted
/// it would) and yields; the yield's poll drains the queue and wakes fiber B,
/// blocked in `recv`, which receives and waits again. One op = one message
/// plus A's yield (A and B alternate: two switches per message).
pub fn irq_message_yield(ops: u64) -> Measured {
    use filament::IrqQueue;
    let q: IrqQueue<u64, 8> = IrqQueue::new();
    let q = &q;
    let time = run_pair(
        move |fib| {
            for i in 0..ops {
                q.try_send_from_isr(i).expect("queue has room");
                fib.yield_now();
            }
        },
        move |fib| {
            for i in 0..ops {
                assert_eq!(q.recv(fib).expect("recv"), i);
            }
        },
    );
    Measured { time, ops }
}

/// Select ping-pong: like [`channel_pingpong`], but every receive is a
/// blocking select over 4 sources (the channel, an idle channel, an idle
/// semaphore, an unset event). One op = one one-way message; the difference
/// to `fil-channel-pingpong` is the select's cost over a plain `recv`.
pub fn select4_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let ping: Channel<u64, 1> = Channel::new();
    let pong: Channel<u64, 1> = Channel::new();
    let idle: Channel<u64, 1> = Channel::new();
    let sem = Semaphore::new(0);
    let ev = Event::new();
    let (ping, pong, idle, sem, ev) = (&ping, &pong, &idle, &sem, &ev);
    fn recv4<'s>(
        fib: &Fiber<'s>,
        ch: &'s Channel<u64, 1>,
        idle: &'s Channel<u64, 1>,
        sem: &'s Semaphore,
        ev: &'s Event,
    ) -> u64 {
        let mut r = RecvCase::new(ch);
        let mut i = RecvCase::new(idle);
        let mut s = AcquireCase::new(sem);
        let mut e = EventCase::new(ev);
        let fired = select::select(fib, [&mut r, &mut i, &mut s, &mut e]).expect("select");
        assert_eq!(fired, 0);
        r.take().expect("fired").expect("value")
    }
    let time = run_pair(
        move |fib| {
            for i in 0..rounds {
                ping.send(fib, i).expect("send");
                black_box(recv4(fib, pong, idle, sem, ev));
            }
        },
        move |fib| {
            for _ in 0..rounds {
                let v = recv4(fib, ping, idle, sem, ev);
                pong.send(fib, v).expect("send");
            }
        },
    );
    Measured { time, ops: rounds * 2 }
}

/// A select over 4 sources whose last case is ready (a permit), so it scans
/// three idle ones first; no switch. One op = one select (plus the `give`
/// that refills the permit).
pub fn select4_ready(ops: u64) -> Measured {
    let idle: Channel<u64, 1> = Channel::new();
    let idle2: Channel<u64, 1> = Channel::new();
    let ev = Event::new();
    let sem = Semaphore::new(0);
    let (idle, idle2, ev, sem) = (&idle, &idle2, &ev, &sem);
    let time = run_pair(
        move |fib| {
            for _ in 0..ops {
                sem.give(fib).expect("give");
                let mut a = RecvCase::new(idle);
                let mut b = RecvCase::new(idle2);
                let mut e = EventCase::new(ev);
                let mut s = AcquireCase::new(sem);
                let fired = select::select(fib, [&mut a, &mut b, &mut e, &mut s]).expect("select");
                black_box(fired);
            }
        },
        |_| {},
    );
    Measured { time, ops }
}
