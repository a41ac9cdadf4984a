//! `filament-freestanding`: filament fibers in a static Linux executable with no libc.
//!
//! The kernel starts `_start` with `rsp` pointing at `argc`, followed by the `argv` and
//! `envp` arrays; nothing else is set up (no TLS, no constructors — none are needed).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::panic::PanicInfo;

core::arch::global_asm!(
    r#"
    .text
    .globl _start
_start:
    xor %ebp, %ebp                  # outermost frame: end frame-pointer chains
    mov %rsp, %rdi                  # arg 0: initial stack pointer (&argc)
    and $-16, %rsp                  # 16-byte alignment before the call (SysV ABI)
    call freestanding_main          # Rust; exits through exit_group, never returns
    ud2                             # unreachable
"#,
    options(att_syntax)
);

/// Called by `_start`; `initial_sp` points at `argc`.
#[unsafe(no_mangle)]
extern "C" fn freestanding_main(initial_sp: *const usize) -> ! {
    filament_freestanding::main(initial_sp)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    filament_freestanding::panic(info)
}
