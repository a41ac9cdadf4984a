//! Data from other threads to a fiber through an [`IrqQueue`], the way a
//! driver's interrupt handler would hand bytes or readings to a fiber.
//!
//! Three "device" threads (stand-ins for interrupt handlers, or other cores)
//! push numbered readings with `try_send_from_isr`, which never blocks: when
//! the queue is full the reading comes back and the device counts it as an
//! overrun and retries later (an interrupt handler would drop it). One fiber
//! receives everything with `recv_timeout` and checks that every device's
//! readings arrive in order; a second fiber is woken by `IrqNotify` bits the
//! devices set when they finish. Meanwhile the runtime's thread sleeps in
//! `HostClock` (a futex) whenever no fiber is ready; every push wakes it.
//!
//! Run with `cargo run --example irq_channel --features std`.

use std::thread;
use std::time::Instant;

use filament::host::HostClock;
use filament::{IrqNotify, IrqQueue, QueueFull, Runtime, Stack};

const DEVICES: u64 = 3;
const READINGS: u64 = 100_000;

/// Readings: `device << 32 | sequence number`.
static READINGS_Q: IrqQueue<u64, 128> = IrqQueue::new().named("readings");
/// Bit `d` set: device `d` is done.
static DONE: IrqNotify = IrqNotify::new().named("devices-done");

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack")
}

fn main() {
    let rt = Runtime::<'static, 2>::new();
    let start = Instant::now();

    let receiver = rt
        .spawn_named("receiver", stack(), |fib| {
            let mut next = [0u64; DEVICES as usize];
            let mut received = 0u64;
            while received < DEVICES * READINGS {
                // Ticks are milliseconds (HostClock): a second of silence is a fault.
                let reading = READINGS_Q.recv_timeout(fib, 1_000).expect("a device stalled");
                let (device, seq) = ((reading >> 32) as usize, reading & 0xffff_ffff);
                assert_eq!(seq, next[device], "device {device}: reading lost, repeated or reordered");
                next[device] += 1;
                received += 1;
            }
            received
        })
        .unwrap();
    let watcher = rt
        .spawn_named("watcher", stack(), |fib| {
            let mut done = 0u32;
            while done != (1 << DEVICES) - 1 {
                done |= DONE.wait(fib).unwrap();
            }
            done
        })
        .unwrap();

    let devices: Vec<_> = (0..DEVICES)
        .map(|d| {
            thread::spawn(move || {
                let mut overruns = 0u64;
                for seq in 0..READINGS {
                    let mut reading = d << 32 | seq;
                    while let Err(QueueFull(back)) = READINGS_Q.try_send_from_isr(reading) {
                        reading = back;
                        overruns += 1;
                        thread::yield_now();
                    }
                }
                DONE.notify_from_isr(1 << d);
                overruns
            })
        })
        .collect();

    rt.run_with_idle(&mut HostClock::new()).unwrap();
    let overruns: Vec<u64> = devices.into_iter().map(|t| t.join().unwrap()).collect();
    let received = rt.take(receiver).unwrap();
    let done = rt.take(watcher).unwrap();
    println!(
        "received {received} readings from {DEVICES} devices in order in {:?}; done bits {done:#b}; \
         queue-full retries per device {overruns:?}",
        start.elapsed()
    );
}
