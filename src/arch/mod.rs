//! Architecture back ends behind one small internal interface:
//!
//! * `init_stack(top, entry, arg) -> sp` — lay out a fresh fiber frame;
//! * `switch(save, to, passed)` — save the running context, resume another;
//! * an entry trampoline that calls `entry(arg, passed)` and never returns;
//! * `INIT_FRAME_BYTES`, `STACK_ALIGN` — what the portable layers must reserve.
//!
//! Everything above this module is portable Rust.

#[cfg(target_arch = "x86_64")]
mod x86_64;
pub use x86_64::FpControl;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("filament currently supports only x86_64 (System V ABI)");
