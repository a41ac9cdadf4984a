//! The library half of `filament-freestanding`: raw Linux syscalls, output, and the fiber
//! demo. The entry point (`_start`) and the panic handler are in `main.rs`.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The C memory functions `core` needs (`memcpy` & co.) and `rust_eh_personality` come from
// filament's `mem` feature, which the `metal` feature (the binary) turns on.
pub mod demo;
pub mod sys;

use core::panic::PanicInfo;

/// Exit status when a panic ends the program.
pub const PANIC_STATUS: i32 = 101;

/// Program entry (after `_start`): runs the demo and exits with its status.
///
/// # Safety
/// `initial_sp` must be the stack pointer the kernel started the process with (it points
/// at `argc`), as `_start` passes it.
pub unsafe fn main(initial_sp: *const usize) -> ! {
    // SAFETY: per the contract, the kernel placed argc at the initial stack pointer.
    let argc = unsafe { initial_sp.read() };
    println!("filament-freestanding: no libc, static, argc={argc}");
    let status = demo::run();
    println!("filament-freestanding: exit_group({status})");
    sys::exit_group(status)
}

/// Body of the binary's `#[panic_handler]`.
pub fn panic(info: &PanicInfo<'_>) -> ! {
    println!("PANIC: {info}");
    sys::exit_group(PANIC_STATUS)
}
