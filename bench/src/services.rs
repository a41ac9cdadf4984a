//! The kernel-service cases: event-group hand-off and timer expiry.

use std::hint::black_box;

use filament::Fiber;
use filament::sync::{EventGroup, Want};
use filament::timer::{Timer, TimerService};

use crate::Measured;
use crate::fil::run_pair;

/// Event-group ping-pong: one group, two bits; A sets bit 0 and waits for bit
/// 1 (clearing it), B waits for bit 0 (clearing it) and sets bit 1. One op =
/// one one-way hand-off: a set that finds the waiter, wakes it, clears on exit.
pub fn event_group_pingpong(ops: u64) -> Measured {
    let rounds = ops.div_ceil(2);
    let group = EventGroup::new();
    let g = &group;
    let time = run_pair(
        move |fib| {
            for _ in 0..rounds {
                g.set(fib, 1).expect("set");
                black_box(g.wait(fib, Want::any(2).clear_on_exit()).expect("wait"));
            }
        },
        move |fib| {
            for _ in 0..rounds {
                black_box(g.wait(fib, Want::any(1).clear_on_exit()).expect("wait"));
                g.set(fib, 2).expect("set");
            }
        },
    );
    Measured { time, ops: rounds * 2 }
}

/// Timer expiries: one auto-reload timer of period 1 on virtual time, its
/// callback counting; the service fiber sleeps until each expiry (the
/// runtime idles, its clock jumps one tick). One op = one expiry: the
/// service's wake-up, re-arming the timer and the callback.
pub fn timer_expiry(ops: u64) -> Measured {
    use std::sync::atomic::{AtomicU64, Ordering};
    static FIRED: AtomicU64 = AtomicU64::new(0);
    fn count(_: &Fiber<'_>, _: &Timer<'_>) {
        FIRED.fetch_add(1, Ordering::Relaxed);
    }
    FIRED.store(0, Ordering::Relaxed);
    let service = TimerService::new();
    let timer = Timer::auto_reload(&service, 1, count);
    let (svc, t) = (&service, &timer);
    let time = run_pair(
        move |fib| svc.run(fib).expect("service"),
        move |fib| {
            t.start(fib).expect("start");
            // Expiries at 1..=ops; the driver wakes at `ops` too and yields
            // once, so the service runs the last expiry before the stop.
            fib.sleep(ops);
            fib.yield_now();
            t.stop(fib).expect("stop");
            svc.shutdown(fib).expect("shutdown");
        },
    );
    assert_eq!(FIRED.load(Ordering::Relaxed), ops);
    Measured { time, ops }
}
