//! `filament-freestanding`: filament fibers in a static Linux executable with no libc.
//!
//! The kernel starts `_start` with `rsp` pointing at `argc`, followed by the `argv` and
//! `envp` arrays; nothing else is set up (no TLS, no constructors — none are needed).

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The image is built with `panic = "abort"` (profile `kernel`, see `cargo freestanding`). A plain
// `cargo check/clippy --all-features` compiles it with the dev profile's `panic = "unwind"`,
// which a `no_std` binary cannot satisfy on stable (no `eh_personality`). For that case only,
// link `std` for its unwinding lang items so the code still type-checks and gets linted;
// such a build is not bootable and is never linked by the aliases or the tests.
#[cfg(panic = "unwind")]
extern crate std;

core::arch::global_asm!(
    r#"
    .text                           # code
    .globl _start                   # the ELF entry point (ld's default ENTRY)
_start:                             # the kernel starts us here, rsp = &argc
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
    // SAFETY: `_start` passes its untouched entry rsp, which points at argc.
    unsafe { filament_freestanding::main(initial_sp) }
}

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    filament_freestanding::panic(info)
}
