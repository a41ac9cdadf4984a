//! A device driver fiber waiting on everything at once with `sync::select`.
//!
//! ```text
//!  interrupt thread ──IrqSignal──┐
//!  clients ──requests (Channel)──┼──► driver: select ──replies──► log (Channel, may be full)
//!  shutdown (Event) ─────────────┘
//! ```
//!
//! The driver loops over one select of three cases, in priority order:
//! interrupts first, then either its pending reply (a send
//! case that waits while the log channel is full and keeps its value until it
//! goes in) or, with no reply pending, the next request, and last the
//! shutdown event (so work that is ready is done first); a timeout doubles
//! as a heartbeat. The select itself allocates nothing; each fired case says
//! what happened and carries its value.
//!
//! Run with `cargo run --example select --features std`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use filament::host::HostClock;
use filament::sync::select::{self, EventCase, IrqCase, RecvCase, SelectError, SendCase};
use filament::sync::{Channel, Event};
use filament::{IrqSignal, Runtime, Stack};

static DEVICE: IrqSignal = IrqSignal::new().named("device");
/// Set by the interrupt thread after its last notification.
static HW_DONE: AtomicBool = AtomicBool::new(false);

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
        HW_DONE.store(true, Ordering::Release);
    });

    let (irqs, served, heartbeats) = Runtime::<4>::scope(|rt| {
        let driver = rt
            .spawn_named("driver", stack(), |fib| {
                let (mut irqs, mut served, mut heartbeats) = (0u64, 0u32, 0u32);
                let mut reply: Option<String> = None;
                loop {
                    let mut stop = EventCase::new(&shutdown);
                    let mut irq = IrqCase::new(&DEVICE);
                    // A pending reply is sent before the next request is taken.
                    let fired = match reply.take() {
                        Some(r) => {
                            let mut out = SendCase::new(&log, r);
                            let fired = select::select_timeout(fib, [&mut irq, &mut out, &mut stop], 50);
                            // Not sent (log full until the timeout, or another
                            // case fired): the reply stays ours.
                            reply = out.take_value();
                            fired
                        }
                        None => {
                            let mut req = RecvCase::new(&requests);
                            let fired = select::select_timeout(fib, [&mut irq, &mut req, &mut stop], 50);
                            if let Some(r) = req.take() {
                                let n = r.expect("requests is never closed");
                                reply = Some(format!("{n}² = {}", n * n));
                            }
                            fired
                        }
                    };
                    match fired {
                        Ok(0) => irqs += irq.count(),
                        Ok(1) if reply.is_none() => served += 1,
                        Ok(1) => {} // a request taken; its reply goes out next round
                        Ok(_) => break,
                        Err(SelectError::TimedOut) => heartbeats += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (irqs, served, heartbeats)
            })
            .ok()
            .unwrap();
        let client = rt
            .spawn_named("client", stack(), |fib| {
                for n in 1..=REQUESTS {
                    requests.send(fib, n).unwrap();
                }
            })
            .unwrap();
        let logger = rt
            .spawn_named("logger", stack(), |fib| {
                for _ in 0..REQUESTS {
                    let line = log.recv(fib).unwrap();
                    if line.starts_with("20²") {
                        println!("last reply: {line}");
                    }
                    fib.sleep(1); // a slow sink: the driver's replies back up
                }
                // Once every interrupt has arrived, stop the driver (which takes
                // what is pending first: the shutdown case comes last).
                while !HW_DONE.load(Ordering::Acquire) {
                    fib.sleep(1);
                }
                shutdown.set(fib).unwrap();
            })
            .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        rt.take(client).unwrap();
        rt.take(logger).unwrap();
        rt.take(driver).unwrap()
    });
    hw.join().unwrap();
    println!("served {served} requests, took {irqs} interrupts, {heartbeats} heartbeats");
    assert_eq!(served, REQUESTS);
    assert_eq!(irqs, 5);
}
