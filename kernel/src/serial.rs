//! COM1 (16550 UART at I/O port 0x3f8): polled output; input through the receive
//! interrupt (IRQ 4) once [`enable_rx_interrupt`] ran (phase 6 of the demo).
//!
//! There is no lock: the kernel runs on one CPU, fibers are cooperative (a fiber is never
//! preempted in the middle of a `kprintln!`), and interrupt handlers never print (the fatal
//! exception handler does, but it never returns to the interrupted writer).

use crate::arch::{inb, outb};
use core::fmt;

const COM1: u16 = 0x3f8;

/// Programs COM1 for 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on.
pub fn init() {
    // SAFETY: these ports belong to the COM1 UART, which nothing else in the kernel uses.
    unsafe {
        outb(COM1 + 1, 0x00); // IER: no UART interrupts (we poll)
        outb(COM1 + 3, 0x80); // LCR: DLAB = 1 to reach the divisor latch
        outb(COM1, 0x01); // DLL: divisor 1 => 115200 baud
        outb(COM1 + 1, 0x00); // DLM: divisor high byte
        outb(COM1 + 3, 0x03); // LCR: 8N1, DLAB = 0
        outb(COM1 + 2, 0xc7); // FCR: enable and clear FIFOs, 14-byte threshold
        outb(COM1 + 4, 0x03); // MCR: DTR | RTS (no OUT2: the UART raises no IRQ)
    }
}

/// Lets the UART raise IRQ 4 when received data is available: FIFO trigger level 1 byte
/// (without clearing what the FIFO already holds), OUT2 (gates the UART's interrupt line
/// to the PIC on PC hardware), IER bit 0 (received data available). Interrupts off.
pub fn enable_rx_interrupt() {
    // SAFETY: COM1's own registers; only the receive-interrupt enables change.
    unsafe {
        outb(COM1 + 2, 0x01); // FCR: FIFO on, trigger at 1 byte, no FIFO reset
        outb(COM1 + 4, 0x0b); // MCR: DTR | RTS | OUT2
        outb(COM1 + 1, 0x01); // IER: received data available
    }
}

/// Stops the receive interrupt again (IER 0, OUT2 off).
pub fn disable_rx_interrupt() {
    // SAFETY: COM1's own registers; back to the state `init` left.
    unsafe {
        outb(COM1 + 1, 0x00); // IER: no UART interrupts
        outb(COM1 + 4, 0x03); // MCR: DTR | RTS
    }
}

/// The next received byte, if the receive buffer holds one (LSR.DR). Called by the IRQ 4
/// handler until it returns `None`, which also clears the UART's interrupt condition.
pub fn try_read_byte() -> Option<u8> {
    // SAFETY: reading LSR, then RBR when LSR.DR says it holds a byte, only consumes that
    // byte; only the IRQ 4 handler reads COM1's input.
    unsafe { (inb(COM1 + 5) & 0x01 != 0).then(|| inb(COM1)) }
}

fn write_byte(byte: u8) {
    // SAFETY: reading LSR and writing THR of COM1 has no effect besides sending the byte.
    unsafe {
        while inb(COM1 + 5) & 0x20 == 0 {
            // LSR.THRE clear: transmit holding register still full.
            core::hint::spin_loop();
        }
        outb(COM1, byte);
    }
}

/// A `fmt::Write` sink for COM1; `\n` is sent as `\r\n` (terminals in raw mode).
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                write_byte(b'\r');
            }
            write_byte(byte);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    // Serial output cannot fail.
    let _ = fmt::Write::write_fmt(&mut Serial, args);
}

/// `println!` over COM1.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::serial::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::serial::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
