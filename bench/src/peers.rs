//! Same-run peers: corosensei, OS threads, tokio.
//!
//! Every case takes the number of operations wanted, performs at least that
//! many (rounded up to the case's granularity) and returns the time of the hot
//! loop together with the number of operations actually performed. Setup
//! (stack allocation, coroutine creation, thread spawn) is outside the timed
//! region; the instruction-count harness cancels it by differencing U and 2U.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, ScopedCoroutine, Yielder};

use crate::Measured;

/// Stack size for corosensei coroutines (mmap'd by `DefaultStack`).
pub const CORO_STACK: usize = 16 * 1024;

/// Number of coroutines in the corosensei ring.
pub const CORO_RING: usize = 1024;

/// corosensei, one switch: a coroutine that suspends in a loop, resumed from
/// the caller. One op = one switch; a resume+suspend round trip is two.
pub fn coro_switch(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let stack = DefaultStack::new(CORO_STACK).expect("corosensei stack");
    let mut co = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
        for _ in 0..rounds {
            y.suspend(());
        }
    });
    let t = Instant::now();
    for _ in 0..rounds {
        black_box(co.resume(()));
    }
    let time = t.elapsed();
    assert!(matches!(co.resume(()), CoroutineResult::Return(())));
    Measured { time, ops: rounds * 2 }
}

/// corosensei, [`CORO_RING`] coroutines resumed in turn (round robin from the
/// caller). One op = one switch (each resume+suspend is two).
pub fn coro_ring(ops: u64) -> Measured {
    let n = CORO_RING as u64;
    let per = ops.div_ceil(2 * n).max(1);
    let mut ring: Vec<_> = (0..CORO_RING)
        .map(|_| {
            let stack = DefaultStack::new(CORO_STACK).expect("corosensei stack");
            Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
                for _ in 0..per {
                    y.suspend(());
                }
            })
        })
        .collect();
    let t = Instant::now();
    for _ in 0..per {
        for co in ring.iter_mut() {
            black_box(co.resume(()));
        }
    }
    let time = t.elapsed();
    for co in ring.iter_mut() {
        assert!(matches!(co.resume(()), CoroutineResult::Return(())));
    }
    Measured { time, ops: per * n * 2 }
}

/// corosensei create–resume–return–drop of an empty coroutine, reusing one
/// stack (`into_stack`). One op = one coroutine lifetime.
pub fn coro_create(ops: u64) -> Measured {
    let mut stack = Some(DefaultStack::new(CORO_STACK).expect("corosensei stack"));
    let t = Instant::now();
    for _ in 0..ops {
        let s = stack.take().expect("stack returned");
        let mut co = Coroutine::with_stack(s, |_: &Yielder<(), ()>, ()| black_box(7u32));
        let r = co.resume(());
        black_box(&r);
        stack = Some(co.into_stack());
    }
    Measured { time: t.elapsed(), ops }
}

/// corosensei's own `coroutine_call` benchmark, written as its
/// `benches/coroutine.rs` writes it: a `ScopedCoroutine` on `&mut stack` (one
/// stack, allocated once), one resume to completion, drop. One op = one
/// coroutine lifetime. The like-for-like peer of filament's spawn cases.
pub fn coro_call(ops: u64) -> Measured {
    // Don't count time spent allocating a stack.
    let mut stack = DefaultStack::default();
    let t = Instant::now();
    for _ in 0..ops {
        let coroutine = ScopedCoroutine::<usize, (), usize, _>::with_stack(&mut stack, |_yielder, input| input);
        black_box(coroutine.scope(|mut identity| identity.resume(black_box(0usize))));
    }
    Measured { time: t.elapsed(), ops }
}

/// OS threads handing a token back and forth over two `std::sync::mpsc`
/// channels. One op = one hand-off (a ping-pong round trip is two).
pub fn thread_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let (to_peer, peer_rx) = mpsc::channel::<u64>();
    let (peer_tx, from_peer) = mpsc::channel::<u64>();
    let peer = thread::spawn(move || {
        while let Ok(v) = peer_rx.recv() {
            if peer_tx.send(v + 1).is_err() {
                break;
            }
        }
    });
    // One warm-up round trip so the peer thread is running.
    to_peer.send(0).unwrap();
    from_peer.recv().unwrap();
    let t = Instant::now();
    let mut v = 0u64;
    for _ in 0..rounds {
        to_peer.send(v).unwrap();
        v = from_peer.recv().unwrap();
    }
    let time = t.elapsed();
    assert_eq!(black_box(v), rounds);
    drop(to_peer);
    peer.join().unwrap();
    Measured { time, ops: rounds * 2 }
}

/// tokio current_thread runtime, 2 tasks each doing
/// `tokio::task::yield_now().await` in a loop. One op = one yield.
pub fn tokio_yield(ops: u64) -> Measured {
    let per = ops.div_ceil(2);
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    let time = rt.block_on(async move {
        async fn worker(n: u64) {
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
        }
        let t = Instant::now();
        let a = tokio::spawn(worker(per));
        let b = tokio::spawn(worker(per));
        a.await.unwrap();
        b.await.unwrap();
        t.elapsed()
    });
    Measured { time, ops: per * 2 }
}
