//! The 8254 Programmable Interval Timer, channel 0, driving IRQ 0.

use crate::arch::outb;

/// Input clock of the PIT in Hz.
pub const PIT_INPUT_HZ: u32 = 1_193_182;

/// Programs channel 0 as a rate generator firing `hz` times per second (rounded divisor).
pub fn init(hz: u32) {
    let divisor = (PIT_INPUT_HZ + hz / 2) / hz;
    assert!((1..=0xffff).contains(&divisor), "PIT divisor out of range");
    // SAFETY: ports 0x43/0x40 are the PIT mode/command register and channel 0 data port.
    unsafe {
        outb(0x43, 0x34); // channel 0, lobyte/hibyte access, mode 2 (rate generator), binary
        outb(0x40, divisor as u8); // reload value, low byte
        outb(0x40, (divisor >> 8) as u8); // reload value, high byte
    }
}
