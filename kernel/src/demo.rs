//! Placeholder demo (boot infrastructure test) until fibers are wired in.

use crate::idt::TICKS;
use crate::kprintln;
use core::sync::atomic::Ordering;

pub(crate) fn on_timer_tick() {}

/// Runs the demo; `true` when every check passed.
pub fn run() -> bool {
    let x = core::hint::black_box(1.0f64) / core::hint::black_box(3.0f64);
    kprintln!("sse: 1/3 = {x:.6}");
    let start = TICKS.load(Ordering::Acquire);
    let mut halts = 0;
    while TICKS.load(Ordering::Acquire) < start + 10 {
        crate::arch::disable_interrupts();
        if TICKS.load(Ordering::Acquire) < start + 10 {
            crate::arch::enable_interrupts_and_halt();
            halts += 1;
        } else {
            crate::arch::enable_interrupts();
        }
    }
    kprintln!("ticks: {} halts {halts}", TICKS.load(Ordering::Acquire));
    true
}
