//! Benchmark cases for `filament` and its same-run peers.
//!
//! The same functions back the criterion benches (`benches/switch.rs`) and the
//! instruction-count binary (`src/bin/count.rs`, driven by `callgrind.sh`), so
//! the code that is timed is the code that is counted.

use std::time::Duration;

pub mod fil;
pub mod peers;
pub mod services;

use fil::Sites;

/// Result of one case run: wall time of the hot loop and how many operations
/// it performed (at least the number asked for).
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub time: Duration,
    pub ops: u64,
}

impl Measured {
    /// Time scaled to exactly `iters` operations (criterion's `iter_custom`).
    pub fn scaled_to(self, iters: u64) -> Duration {
        Duration::from_secs_f64(self.time.as_secs_f64() * iters as f64 / self.ops as f64)
    }
}

/// A named benchmark case: `run(ops)` performs at least `ops` operations.
pub struct Case {
    pub name: &'static str,
    pub what: &'static str,
    pub run: fn(u64) -> Measured,
}

/// Every case, in report order.
pub const CASES: &[Case] = &[
    Case {
        name: "fil-yield-2",
        what: "filament yield, 2 live fibers, same call site",
        run: |ops| fil::yields::<2>(2, Sites::Same, ops),
    },
    Case {
        name: "fil-yield-2-diff",
        what: "filament yield, 2 live fibers, different call sites",
        run: |ops| fil::yields::<2>(2, Sites::Different, ops),
    },
    Case {
        name: "fil-yield-64",
        what: "filament yield, 64 live fibers",
        run: |ops| fil::yields::<64>(64, Sites::Same, ops),
    },
    Case {
        name: "fil-yield-1024",
        what: "filament yield, 1024 live fibers",
        run: |ops| fil::yields::<1024>(1024, Sites::Same, ops),
    },
    Case {
        name: "fil-yield-1024-diff",
        what: "filament yield, 1024 live fibers, 2 alternating call sites",
        run: |ops| fil::yields::<1024>(1024, Sites::Different, ops),
    },
    Case {
        name: "fil-yield-10000",
        what: "filament yield, 10000 live fibers",
        run: |ops| fil::yields::<10000>(10_000, Sites::Same, ops),
    },
    Case {
        name: "fil-sparse-2of1024",
        what: "filament yield, 2 live fibers in a capacity-1024 runtime",
        run: |ops| fil::yields::<1024>(2, Sites::Same, ops),
    },
    Case {
        name: "fil-spawn",
        what: "filament spawn_detached + run to completion, empty fiber, reused stack",
        run: fil::spawn_run,
    },
    Case {
        name: "fil-spawn-take",
        what: "filament spawn + run + take(handle), empty fiber, reused stack",
        run: fil::spawn_run_take,
    },
    Case {
        name: "fil-spawn-locked",
        what: "filament spawn_detached + run under one Runtime::lock, empty fiber, stack claimed each time",
        run: fil::spawn_run_locked,
    },
    Case {
        name: "fil-spawn-take-locked",
        what: "filament spawn + run + take_with_stack under one Runtime::lock, stack handed back (no atomics)",
        run: fil::spawn_run_take_locked,
    },
    Case {
        name: "fil-spawn-yield",
        what: "filament, inside a fiber: spawn_detached + yield to it, child runs to completion",
        run: fil::spawn_yield_in_fiber,
    },
    Case {
        name: "fil-spawn-join",
        what: "filament, inside a fiber: spawn + join (value taken), child runs to completion",
        run: fil::spawn_join_in_fiber,
    },
    Case {
        name: "fil-spawn-painted",
        what: "filament spawn_detached + run, 8 KiB stack painted at spawn",
        run: fil::spawn_run_painted,
    },
    Case {
        name: "fil-channel-pingpong",
        what: "filament Channel<u64, 1> ping-pong between 2 fibers, per one-way message",
        run: fil::channel_pingpong,
    },
    Case {
        name: "fil-channel-stream",
        what: "filament Channel<u64, 16>: one fiber sends, one receives (buffered), per message",
        run: fil::channel_stream,
    },
    Case {
        name: "fil-semaphore-pingpong",
        what: "filament Semaphore ping-pong between 2 fibers, per one-way hand-off",
        run: fil::semaphore_pingpong,
    },
    Case {
        name: "fil-notify-pingpong",
        what: "filament fiber notifications (Increment + take One) ping-pong, per one-way hand-off",
        run: fil::notify_pingpong,
    },
    Case {
        name: "fil-select4-pingpong",
        what: "filament ping-pong where each receive is a select over 4 sources, per one-way message",
        run: fil::select4_pingpong,
    },
    Case {
        name: "fil-select4-ready",
        what: "filament select over 4 sources, the 4th ready (give + select, no switch)",
        run: fil::select4_ready,
    },
    Case {
        name: "fil-mutex-handoff",
        what: "filament Mutex hand-off between 2 fibers (lock, yield, unlock), per acquisition",
        run: fil::mutex_handoff,
    },
    Case {
        name: "fil-event-group",
        what: "filament EventGroup ping-pong (set wakes a waiter that clears on exit), per hand-off",
        run: services::event_group_pingpong,
    },
    Case {
        name: "fil-timer-expiry",
        what: "filament auto-reload timer, period 1, virtual time: service wake + re-arm + callback, per expiry",
        run: services::timer_expiry,
    },
    Case {
        name: "fil-prio-yield-2",
        what: "filament yield between 2 fibers at level 1 while a level-0 fiber is ready",
        run: fil::prio_yield,
    },
    Case {
        name: "fil-prio-wake",
        what: "filament priority wake: low gives a semaphore, high (waiting) runs at once, waits again",
        run: fil::prio_wake,
    },
    Case {
        name: "fil-stream-isr",
        what: "filament StreamBuffer<64> send_from_isr + receive_from_isr of 16 bytes, no runtime",
        run: fil::stream_isr,
    },
    Case {
        name: "fil-stream-pingpong",
        what: "filament StreamBuffer<16> ping-pong of 8 bytes between 2 fibers, per one-way message",
        run: fil::stream_pingpong,
    },
    Case {
        name: "fil-message-pingpong",
        what: "filament MessageBuffer<32> ping-pong of 8-byte messages between 2 fibers, per one-way message",
        run: fil::message_pingpong,
    },
    Case {
        name: "fil-irq-message",
        what: "filament IrqQueue: idle hook (an interrupt during hlt) pushes, fiber blocked in recv wakes, per message",
        run: fil::irq_message_idle,
    },
    Case {
        name: "fil-irq-message-yield",
        what: "filament IrqQueue: fiber A pushes (as an ISR would) and yields, fiber B wakes in recv, per message",
        run: fil::irq_message_yield,
    },
    Case {
        name: "coro-switch",
        what: "corosensei one switch (resume+suspend round trip / 2)",
        run: peers::coro_switch,
    },
    Case {
        name: "coro-ring-1024",
        what: "corosensei 1024 coroutines resumed in turn, per switch",
        run: peers::coro_ring,
    },
    Case { name: "coro-create", what: "corosensei create-resume-return-drop, reused stack", run: peers::coro_create },
    Case {
        name: "coro-call",
        what: "corosensei's coroutine_call bench: ScopedCoroutine on &mut stack, resume to completion, drop",
        run: peers::coro_call,
    },
    Case { name: "thread-mpsc", what: "OS threads, std::sync::mpsc ping-pong / 2", run: peers::thread_pingpong },
    Case { name: "tokio-yield", what: "tokio current_thread, yield_now between 2 tasks", run: peers::tokio_yield },
];

/// Look a case up by name.
pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}
