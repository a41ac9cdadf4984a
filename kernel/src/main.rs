//! `filament-kernel`: a bootable x86_64 image that runs filament fibers on bare metal.
//!
//! Boot path (details in `boot.s` and `kernel/README.md`): QEMU's `-kernel` loader finds the
//! PVH note (XEN_ELFNOTE_PHYS32_ENTRY) in this ELF64, enters `pvh_start32` in 32-bit
//! protected mode, which builds identity page tables, enables long mode and SSE and calls
//! [`kernel_main`], which hands over to the library.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The image is built with `panic = "abort"` (profile `kernel`, see `cargo kernel`). A plain
// `cargo check/clippy --all-features` compiles it with the dev profile's `panic = "unwind"`,
// which a `no_std` binary cannot satisfy on stable (no `eh_personality`). For that case only,
// link `std` for its unwinding lang items so the code still type-checks and gets linted;
// such a build is not bootable and is never linked by the aliases or the tests.
#[cfg(panic = "unwind")]
extern crate std;

core::arch::global_asm!(include_str!("boot.s"), options(att_syntax));

/// Called by `boot.s` on the 64 KiB boot stack, interrupts off, SSE on.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(start_info: u64) -> ! {
    filament_kernel::kernel_main(start_info)
}

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    filament_kernel::panic(info)
}
