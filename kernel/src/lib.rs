//! The library half of `filament-kernel`: everything except the 32-bit boot code and the
//! panic handler, which live in the binary (`main.rs`, `boot.s`).
//!
//! See `kernel/README.md` for how the image boots and how to run it.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod arch;
pub mod demo;
pub mod exit;
pub mod gdt;
pub mod idt;
pub mod pic;
pub mod pit;
pub mod pvh;
pub mod serial;

use core::cell::UnsafeCell;
use core::panic::PanicInfo;
use exit::{ExitCode, exit_qemu};

/// Timer interrupt rate.
pub const TICK_HZ: u32 = 1000;

/// Memory shared with the CPU or initialised once during boot: a `static` that is mutable
/// through a raw pointer.
///
/// A plain `static` may be placed in read-only memory and is assumed never to change; the
/// `UnsafeCell` tells the compiler it can. Every user documents why its accesses cannot
/// race (on this single-CPU kernel: written only during boot with interrupts off, or
/// written only by the CPU itself).
pub(crate) struct StaticCell<T>(UnsafeCell<T>);

// SAFETY: the kernel runs on one CPU, and every access through `get` is confined to
// single-threaded boot code or to the hardware (see the users' SAFETY comments).
unsafe impl<T> Sync for StaticCell<T> {}

impl<T> StaticCell<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// Raw pointer to the contents.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// Called by the timer interrupt handler after it counted the tick (interrupts are off).
pub(crate) fn on_timer_tick() {
    demo::on_timer_tick();
}

/// Called by the software interrupt handler (vector [`idt::SOFT_VECTOR`], interrupts off).
pub(crate) fn on_soft_interrupt() {
    demo::on_soft_interrupt();
}

/// Called by the COM1 interrupt handler for each received byte (interrupts off).
pub(crate) fn on_serial_byte(byte: u8) {
    demo::on_serial_byte(byte);
}

/// Rust entry point, called by `boot.s` in 64-bit mode on the boot stack with interrupts
/// off; `start_info` is the physical address of the PVH start-info structure.
pub fn kernel_main(start_info: u64) -> ! {
    serial::init();
    kprintln!("filament-kernel: long mode, SSE enabled, serial up");
    if !pvh::check_start_info(start_info) {
        exit_qemu(ExitCode::CheckFailed);
    }
    gdt::init();
    idt::init();
    pic::init();
    pit::init(TICK_HZ);
    kprintln!("interrupts: GDT+TSS with 3 IST stacks, IDT, PIC remapped to 0x20, PIT at {TICK_HZ} Hz");
    arch::enable_interrupts();

    let code = if demo::run_all() {
        kprintln!("filament-kernel: all checks passed");
        ExitCode::Success
    } else {
        kprintln!("filament-kernel: CHECK FAILED");
        ExitCode::CheckFailed
    };
    exit_qemu(code)
}

/// Body of the image's `#[panic_handler]`: report over serial, exit QEMU with
/// [`ExitCode::Panic`].
pub fn panic(info: &PanicInfo<'_>) -> ! {
    arch::disable_interrupts();
    kprintln!("PANIC: {info}");
    exit_qemu(ExitCode::Panic)
}
