//! Event groups and software timers: a small data logger.
//!
//! ```text
//!  "ADC interrupt" (a thread) ──set_bits_from_isr(SAMPLE)──► timer service ──► STATUS bits
//!  SAMPLE_TIMER (auto-reload, 10 ms) ──callback──► asks the ADC for a sample
//!  LED_TIMER (auto-reload, 25 ms) ──callback──► toggles the LED
//!  WATCHDOG (one-shot, 60 ms, reset by the logger) ──callback──► would report a stall
//!  logger: waits for SAMPLE (clear on exit), logs, resets the watchdog
//!  3 workers + logger: `sync` on a rendezvous group before shutting down
//! ```
//!
//! * The timer service is a fiber like any other: its `run` sleeps until the
//!   earliest expiry and runs the callbacks there (never in interrupt context).
//! * The "ADC" is an OS thread standing in for an interrupt handler: it may
//!   only make interrupt-safe calls (`set_bits_from_isr`), which the service
//!   applies for it.
//! * Time is real: `run_with_idle(HostClock)` parks the thread until the next
//!   deadline or interrupt, one tick per millisecond.
//!
//! Run with `cargo run --example services --features std`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;

use filament::host::HostClock;
use filament::sync::{EventGroup, Want};
use filament::timer::{Timer, TimerService};
use filament::{Fiber, Runtime, Stack};

const SAMPLE: u32 = 1 << 0;
const SAMPLES: u32 = 12;
/// Rendezvous bits: one per participant.
const ALL_DONE: u32 = 0b1111;

static TIMERS: TimerService = TimerService::new().named("timer-service");
static STATUS: EventGroup = EventGroup::new().named("status");
static DONE: EventGroup = EventGroup::new().named("done");

static SAMPLE_TIMER: Timer = Timer::auto_reload(&TIMERS, 10, request_sample).named("sample");
static LED_TIMER: Timer = Timer::auto_reload(&TIMERS, 25, toggle_led).named("led");
static WATCHDOG: Timer = Timer::one_shot(&TIMERS, 60, stalled).named("watchdog");

static LED: AtomicBool = AtomicBool::new(false);
static TOGGLES: AtomicU32 = AtomicU32::new(0);
/// The "ADC": the sample timer's callback asks it for a conversion.
static ADC: std::sync::Mutex<Option<mpsc::Sender<()>>> = std::sync::Mutex::new(None);

fn request_sample(fib: &Fiber<'_>, t: &Timer<'_>) {
    println!("[{:>4} ms] {} timer: start a conversion", fib.now(), t.name());
    if let Some(adc) = ADC.lock().unwrap().as_ref() {
        let _ = adc.send(());
    }
}

fn toggle_led(fib: &Fiber<'_>, _: &Timer<'_>) {
    let on = !LED.fetch_xor(true, Ordering::Relaxed);
    TOGGLES.fetch_add(1, Ordering::Relaxed);
    println!("[{:>4} ms] led {}", fib.now(), if on { "on" } else { "off" });
}

fn stalled(fib: &Fiber<'_>, _: &Timer<'_>) {
    println!("[{:>4} ms] watchdog: no sample for 60 ms!", fib.now());
}

fn main() {
    // The ADC "interrupt": converts on request, then raises SAMPLE from
    // interrupt context (only the interrupt-safe call).
    let (tx, rx) = mpsc::channel::<()>();
    *ADC.lock().unwrap() = Some(tx);
    let adc = std::thread::spawn(move || {
        while rx.recv().is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(1)); // conversion time
            TIMERS.set_bits_from_isr(&STATUS, SAMPLE);
        }
    });

    let stack = || Stack::host(64 * 1024).expect("mmap stack");
    Runtime::<8>::scope(|rt| {
        let mut fibers = Vec::new();
        fibers.push(rt.spawn_named("timers", stack(), |fib| TIMERS.run(fib).unwrap()).unwrap());
        fibers.push(
            rt.spawn_named("logger", stack(), |fib| {
                SAMPLE_TIMER.start(fib).unwrap();
                LED_TIMER.start(fib).unwrap();
                WATCHDOG.start(fib).unwrap();
                for n in 1..=SAMPLES {
                    let bits = STATUS.wait(fib, Want::any(SAMPLE).clear_on_exit()).unwrap();
                    WATCHDOG.reset(fib).unwrap(); // still alive
                    println!(
                        "[{:>4} ms] logger: sample {n} (bits {bits:#b}), watchdog due in {} ms",
                        fib.now(),
                        WATCHDOG.remaining(fib).unwrap().unwrap()
                    );
                }
                SAMPLE_TIMER.stop(fib).unwrap();
                LED_TIMER.stop(fib).unwrap();
                WATCHDOG.stop(fib).unwrap();
                DONE.sync(fib, 1 << 3, ALL_DONE).unwrap();
                println!("[{:>4} ms] logger: everyone is done", fib.now());
                TIMERS.shutdown(fib).unwrap();
            })
            .unwrap(),
        );
        for i in 0..3u32 {
            fibers.push(
                rt.spawn_named("worker", stack(), move |fib| {
                    fib.sleep(40 * (u64::from(i) + 1)); // some work
                    println!("[{:>4} ms] worker {i}: done, waiting for the others", fib.now());
                    DONE.sync(fib, 1 << i, ALL_DONE).unwrap();
                })
                .unwrap(),
            );
        }
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        for f in fibers {
            rt.take(f).unwrap(); // a panic in any fiber surfaces here
        }
    });
    ADC.lock().unwrap().take(); // ends the ADC thread
    adc.join().unwrap();
    assert!(TOGGLES.load(Ordering::Relaxed) >= 4, "the LED timer ran");
    println!("{SAMPLES} samples logged, LED toggled {} times", TOGGLES.load(Ordering::Relaxed));
}
