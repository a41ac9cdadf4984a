//! x86_64 (System V) context switch: the only file that knows registers and frames.
//!
//! # Register contract
//!
//! A switch is a *call* into `__filament_switch` made from inline assembly that
//! declares every caller-saved register (`clobber_abi("sysv64")`) **and r12–r15**
//! clobbered. The compiler therefore spills r12–r15 around the call only when they
//! hold live values — the technique corosensei uses — and the routine itself saves
//! by hand only what inline assembly cannot declare clobbered: `rbx`, `rbp`, plus
//! the two pieces of floating-point *control* state the ABI makes callee-saved:
//! the MXCSR control bits and the x87 control word. `rsp` is the context.
//!
//! The FP control words are stored on every switch but loaded only when the
//! incoming context's values differ from the outgoing one's (status flags in
//! MXCSR bits 0–5 are ignored by the comparison: the ABI does not preserve them).
//! Two stores and a compare are much cheaper than `ldmxcsr`/`fldcw`, which
//! serialise parts of the pipeline. With the `no-fp-control` feature the FP
//! words are neither saved nor restored (for kernels built without SSE/x87).
//!
//! # A suspended fiber's stack (addresses grow upwards)
//!
//! ```text
//!            ┌──────────────────────────────┐  higher addresses
//!            │ caller frames of the fiber    │
//!            │ return address into the caller│  ← pushed by `call __filament_switch`
//!            │ saved rbp                     │
//!            │ saved rbx                     │
//!  saved sp ►│ MXCSR (4 B) │ x87 CW (2 B) │ ?│  ← 8-byte FP-control slot
//!            └──────────────────────────────┘  (absent with `no-fp-control`)
//! ```
//!
//! # A fresh fiber's stack, as built by [`init_stack`]
//!
//! ```text
//!   top (16-aligned, just below the fiber header and closure)
//!   top-8   0                      padding, keeps the frame below 16-aligned
//!   top-16  0                      fake return address: ends frame-pointer walks
//!   top-24  __filament_fiber_start popped by `ret`
//!   top-32  arg                    popped into rbp
//!   top-40  entry                  popped into rbx
//!   top-48  MXCSR 0x1F80 │ CW 0x037F  the ABI's default FP control
//!   ^ initial saved sp
//! ```
//!
//! The first switch into the fiber pops this frame exactly like a suspended one and
//! `ret`s into the trampoline with `rsp == top-16` (16-aligned). The trampoline
//! calls `entry(arg, rdx)`, so the entry function starts with `rsp ≡ 8 (mod 16)`
//! like any function. `rdx` is the value the switching side passed (the runtime's
//! core pointer). The entry function never returns; if it did, `ud2` traps.
//!
//! # Backtraces
//!
//! The trampoline marks `rip` undefined in its CFI (`.cfi_undefined rip`), so a
//! debugger's unwinder stops there instead of walking into the zero words above.
//! Checked with `gdb -batch -ex 'break marker' -ex run -ex bt` on a test binary:
//! the backtrace ends with `__filament_fiber_start` (asserted in `tests/gdb.rs`).

use core::arch::{asm, global_asm};

/// Bytes pushed by the switch routine below the return address.
#[cfg(not(feature = "no-fp-control"))]
const SAVED_BYTES: usize = 24;
#[cfg(feature = "no-fp-control")]
const SAVED_BYTES: usize = 16;

/// Bytes of a fresh fiber's initial frame below `top`.
pub(crate) const INIT_FRAME_BYTES: usize = 24 + SAVED_BYTES;

/// Stack alignment the ABI requires at every call.
pub(crate) const STACK_ALIGN: usize = 16;

#[cfg(not(feature = "no-fp-control"))]
global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_switch",
    ".hidden __filament_switch",
    ".type __filament_switch,@function",
    // rdi = where to store the outgoing sp, rsi = incoming sp, rdx = passed through.
    "__filament_switch:",
    ".cfi_startproc",
    "    push rbp", // callee-saved; cannot be declared clobbered
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset rbp, 0",
    "    push rbx", // callee-saved; reserved by LLVM
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset rbx, 0",
    "    sub rsp, 8", // room for MXCSR + x87 control word
    ".cfi_adjust_cfa_offset 8",
    "    stmxcsr [rsp]",               // outgoing MXCSR -> slot bytes 0..4
    "    fnstcw [rsp + 4]",            // outgoing x87 CW -> slot bytes 4..6
    "    mov rax, [rsp]",              // keep both in rax for the compare below
    "    mov [rdi], rsp",              // publish the outgoing context
    "    mov rsp, rsi",                // === now on the incoming stack (same layout) ===
    "    xor rax, [rsp]",              // bits that differ between the two contexts
    "    mov rcx, 0x0000FFFF0000FFC0", // mask: MXCSR control bits, the x87 CW
    "    test rax, rcx",               // any control bit different?
    "    jz 2f",                       // no: skip the slow loads (the common case)
    "    ldmxcsr [rsp]",               // yes: load the incoming MXCSR
    "    fldcw [rsp + 4]",             // and the incoming x87 control word
    "2:",
    "    add rsp, 8", // drop the FP-control slot
    ".cfi_adjust_cfa_offset -8",
    "    pop rbx", // incoming rbx
    ".cfi_adjust_cfa_offset -8",
    ".cfi_restore rbx",
    "    pop rbp", // incoming rbp
    ".cfi_adjust_cfa_offset -8",
    ".cfi_restore rbp",
    "    ret", // into the incoming context (or the trampoline)
    ".cfi_endproc",
    ".size __filament_switch, . - __filament_switch",
);

#[cfg(feature = "no-fp-control")]
global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_switch",
    ".hidden __filament_switch",
    ".type __filament_switch,@function",
    // rdi = where to store the outgoing sp, rsi = incoming sp, rdx = passed through.
    "__filament_switch:",
    ".cfi_startproc",
    "    push rbp", // callee-saved; cannot be declared clobbered
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset rbp, 0",
    "    push rbx", // callee-saved; reserved by LLVM
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset rbx, 0",
    "    mov [rdi], rsp", // publish the outgoing context
    "    mov rsp, rsi",   // === now on the incoming stack (same layout) ===
    "    pop rbx",        // incoming rbx
    ".cfi_adjust_cfa_offset -8",
    ".cfi_restore rbx",
    "    pop rbp", // incoming rbp
    ".cfi_adjust_cfa_offset -8",
    ".cfi_restore rbp",
    "    ret", // into the incoming context (or the trampoline)
    ".cfi_endproc",
    ".size __filament_switch, . - __filament_switch",
);

global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_fiber_start",
    ".hidden __filament_fiber_start",
    ".type __filament_fiber_start,@function",
    // Reached by `ret` from __filament_switch on a fresh stack:
    // rbx = entry fn, rbp = its first argument, rdx = value passed by the switcher,
    // rsp = top-16 (16-aligned).
    "__filament_fiber_start:",
    ".cfi_startproc",
    ".cfi_undefined rip", // no caller: debuggers stop unwinding here
    "    mov rdi, rbp",   // arg 1: the fiber's payload pointer
    "    mov rsi, rdx",   // arg 2: what the switcher passed (the core)
    "    xor ebp, ebp",   // terminate frame-pointer chains
    "    call rbx",       // entry(arg, core) -> !, rsp ≡ 8 (mod 16) inside
    "    ud2",            // entry never returns; trap if it ever does
    ".cfi_endproc",
    ".size __filament_fiber_start, . - __filament_fiber_start",
);

unsafe extern "C" {
    fn __filament_switch();
    fn __filament_fiber_start();
}

/// The signature of a fiber entry function called by the trampoline.
pub(crate) type Entry = unsafe extern "C" fn(arg: *mut u8, passed: *mut u8) -> !;

/// Writes a fresh frame below `top` and returns the initial saved stack pointer.
///
/// # Safety
/// `top` must be 16-aligned and the `INIT_FRAME_BYTES` below it writable and
/// owned by the caller.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: Entry, arg: *mut u8) -> *mut u8 {
    debug_assert!((top as usize).is_multiple_of(STACK_ALIGN));
    let top = top.cast::<usize>();
    // SAFETY: the caller guarantees the frame below `top` is ours to write.
    unsafe {
        top.sub(1).write(0);
        top.sub(2).write(0);
        top.sub(3).write(__filament_fiber_start as *const () as usize);
        top.sub(4).write(arg as usize);
        top.sub(5).write(entry as usize);
        #[cfg(not(feature = "no-fp-control"))]
        top.sub(6).write(0x037F_0000_1F80);
        top.cast::<u8>().sub(INIT_FRAME_BYTES)
    }
}

/// Saves the current context into `*save` and resumes the context whose saved
/// stack pointer is `to`, passing `passed` (seen by a fresh fiber's entry).
///
/// Returns when some other context switches back to the one saved here.
///
/// # Safety
/// `to` must be a stack pointer produced by [`init_stack`] or saved by a previous
/// switch and not resumed since; `save` must be valid for a write. Whoever later
/// resumes `*save` must do so on the same OS thread.
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut *mut u8, to: *mut u8, passed: *mut u8) {
    // SAFETY: the routine saves rbx/rbp/FP control itself; every other register it
    // or the resumed context may change is declared clobbered here, so the compiler
    // keeps nothing live in them across the call. The stack is not `nostack`, so
    // the compiler keeps rsp aligned and the red zone free for the `call`.
    unsafe {
        asm!(
            "call {f}",
            f = sym __filament_switch,
            in("rdi") save,
            in("rsi") to,
            in("rdx") passed,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
}
