//! A device driver fiber waiting on everything at once with `sync::select`.
//!
//! ```text
//!  interrupt thread ──IrqSignal──┐
//!  clients ──requests (Channel)──┼──► driver: select ──replies──► log (Channel, may be full)
//!  shutdown (Event) ─────────────┘
//! ```
//!
//! The driver loops over one select of five cases, in priority order:
//! shutdown first, then interrupts, then a pending reply (a send case that
//! waits while the log channel is full and keeps its value until it goes in),
//! then new requests; a timeout doubles as a heartbeat. Nothing is allocated;
//! each fired case says what happened and carries its value.
//!
//! Run with `cargo run --example select --features std`.

use std::time::Duration;

use filament::host::HostClock;
use filament::sync::select::{self, EventCase, IrqCase, RecvCase, SelectError, SendCase};
use filament::sync::{Channel, Event};
use filament::{IrqSignal, Runtime, Stack};

static DEVICE: IrqSignal = IrqSignal::new().named("device");

const REQUESTS: u32 = 20;

fn main() {
    let requests: Channel<u32, 4> = Channel::new().named("requests");
    let log: Channel<String, 2> = Channel::new().named("log");
    let shutdown = Event::new().named("shutdown");
    let stack = || Stack::host(64 * 1024).expect("stack");

    // Interrupts from "hardware": another OS thread.
    let hw = std::thread::spawn(|| {
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(2));
            DEVICE.notify_from_isr();
        }
    });

    let (irqs, served, heartbeats) = Runtime::<4>::scope(|rt| {
        let driver = rt
            .spawn_named("driver", stack(), |fib| {
                let (mut irqs, mut served, mut heartbeats) = (0u64, 0u32, 0u32);
                let mut reply: Option<String> = None;
                loop {
                    let mut stop = EventCase::new(&shutdown);
                    let mut irq = IrqCase::new(&DEVICE);
                    // With no reply pending the send case has no value and never fires.
                    let mut out = SendCase::new(&log, String::new());
                    match reply.take() {
                        Some(r) => drop(out.set_value(r)),
                        None => drop(out.take_value()),
                    }
                    let mut req = RecvCase::new(&requests);
                    let fired = select::select_timeout(fib, [&mut stop, &mut irq, &mut out, &mut req], 50);
                    // An unsent reply stays ours for the next round.
                    reply = out.take_value();
                    match fired {
                        Ok(0) => break,
                        Ok(1) => irqs += irq.count(),
                        Ok(2) => served += 1,
                        Ok(_) => match req.take() {
                            Some(Ok(n)) => reply = Some(format!("{n}² = {}", n * n)),
                            _ => unreachable!("requests is never closed"),
                        },
                        Err(SelectError::TimedOut) => heartbeats += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (irqs, served, heartbeats)
            })
            .ok()
            .unwrap();
        rt.spawn_named("client", stack(), |fib| {
            for n in 1..=REQUESTS {
                requests.send(fib, n).unwrap();
            }
        })
        .unwrap();
        rt.spawn_named("logger", stack(), |fib| {
            for _ in 0..REQUESTS {
                let line = log.recv(fib).unwrap();
                if line.starts_with("20²") {
                    println!("last reply: {line}");
                }
                fib.sleep(1); // a slow sink: the driver's replies back up
            }
            // Let the interrupts arrive, then stop the driver.
            fib.sleep(20);
            shutdown.set(fib).unwrap();
        })
        .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        rt.take(driver).unwrap()
    });
    hw.join().unwrap();
    println!("served {served} requests, took {irqs} interrupts, {heartbeats} heartbeats");
    assert_eq!(served, REQUESTS);
    assert_eq!(irqs, 5);
}
