//! x86_64 (System V) context switch: the only file that knows registers and frames.
//!
//! # Register contract
//!
//! A switch is a *jump* into `__filament_switch` (written in `global_asm!`)
//! from an inline-assembly block that declares every caller-saved register
//! (`clobber_abi("sysv64")`) **and r12–r15** clobbered. The compiler therefore
//! spills r12–r15 around the switch only when they hold live values — the
//! technique corosensei uses — and the routine saves by hand only what inline
//! assembly cannot declare clobbered: `rbx` and `rbp`. `rsp` is the context.
//!
//! The block pushes its own resume address and *jumps* to the routine, which
//! leaves by `pop`+`jmp` into the resumed context's resume address. No
//! `call`/`ret` pair is involved, so the CPU's return-stack predictor is never
//! desynchronised by a `ret` that lands in another fiber (which costs a
//! mispredict per switch whenever fibers suspend at different call sites).
//!
//! # Floating-point control state
//!
//! The System V ABI makes the MXCSR control bits and the x87 control word
//! callee-saved. Reading MXCSR (`stmxcsr`) costs ~3 ns on current x86 cores —
//! more than the rest of a switch — so the default build keeps FP control *per
//! fiber that declares one* ([`Fiber::set_fp_control`](crate::Fiber::set_fp_control)):
//! the scheduler saves and restores the control words only when the outgoing
//! or incoming fiber has one (two instructions otherwise). Feature
//! `fp-control-always` saves both words in this routine at *every* switch and
//! loads them when they differ (Boost.Context's behaviour: any `ldmxcsr` by
//! any fiber stays private to it). Feature `no-fp-control` does neither.
//!
//! # A suspended fiber's stack (addresses grow upwards)
//!
//! ```text
//!            ┌───────────────────────────────┐  higher addresses
//!            │ the fiber's frames             │
//!            │ resume address (inline block)  │  ← pushed before the jump
//!            │ saved rbp                      │
//!            │ saved rbx                      │
//!  saved sp ►│ MXCSR (4 B) │ x87 CW (2 B) │ ? │  ← only with `fp-control-always`
//!            └───────────────────────────────┘
//! ```
//!
//! # A fresh fiber's stack, as built by [`init_stack`]
//!
//! ```text
//!   top (16-aligned, just below the fiber header and closure)
//!   top-8   (not written)          padding
//!   top-16  core pointer           read by the trampoline (2nd entry argument)
//!   top-24  __filament_fiber_start "resume address": jumped to
//!   top-32  arg                    popped into rbp
//!   top-40  entry                  popped into rbx
//!   top-48  MXCSR 0x1F80 │ CW 0x037F  (only with `fp-control-always`)
//!   ^ initial saved sp
//! ```
//!
//! The first switch into the fiber pops this frame exactly like a suspended
//! one and jumps into the trampoline with `rsp == top-16` (16-aligned). The
//! trampoline pushes a return address and *jumps* to `entry(arg, core)`, so the
//! entry function starts with `rsp ≡ 8 (mod 16)` like any called function,
//! without a `call` that would never be matched by a `ret` (see
//! [`jump_noreturn`]). The entry function never returns; if it did, `ud2` traps.
//!
//! # Backtraces
//!
//! The trampoline marks `rip` undefined in its CFI (`.cfi_undefined rip`), so a
//! debugger's unwinder stops there instead of walking into the words above.
//! `tests/gdb.rs` checks it: `bt` inside a fiber ends at
//! `__filament_fiber_start` with no garbage frames, in debug and release.

use core::arch::{asm, global_asm};

/// Bytes the switch routine keeps below the resume address.
#[cfg(feature = "fp-control-always")]
const SAVED_BYTES: usize = 24;
#[cfg(not(feature = "fp-control-always"))]
const SAVED_BYTES: usize = 16;

/// Bytes of a fresh fiber's initial frame below `top`.
pub(crate) const INIT_FRAME_BYTES: usize = 24 + SAVED_BYTES;

/// Offset of the core-pointer word from a fresh fiber's initial sp.
pub(crate) const INIT_CORE_WORD: usize = INIT_FRAME_BYTES - 16;

/// Stack alignment the ABI requires at every call.
pub(crate) const STACK_ALIGN: usize = 16;

#[cfg(feature = "fp-control-always")]
global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_switch",
    ".hidden __filament_switch",
    ".type __filament_switch,@function",
    // Entered by jmp with [rsp] = resume address of the outgoing context;
    // rdi = where to store the outgoing sp, rsi = incoming sp.
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
    "    stmxcsr [rsp]",                 // outgoing MXCSR -> slot bytes 0..4
    "    fnstcw [rsp + 4]",              // outgoing x87 CW -> slot bytes 4..6
    "    mov eax, [rsp]",                // reload at the stores' own widths
    "    movzx ecx, word ptr [rsp + 4]", // (store-forwarding friendly)
    "    mov [rdi], rsp",                // publish the outgoing context
    "    mov rsp, rsi",                  // === now on the incoming stack (same layout) ===
    "    xor eax, [rsp]",                // MXCSR bits that differ
    "    xor cx, [rsp + 4]",             // x87 CW bits that differ
    "    and eax, 0xFFC0",               // ignore MXCSR status flags (not preserved)
    "    or eax, ecx",                   // any control bit different?
    "    jz 2f",                         // no: skip the slow loads (the common case)
    "    ldmxcsr [rsp]",                 // yes: load the incoming MXCSR
    "    fldcw [rsp + 4]",               // and the incoming x87 control word
    "2:",
    "    add rsp, 8", // drop the FP-control slot
    ".cfi_adjust_cfa_offset -8",
    "    pop rbx", // incoming rbx
    ".cfi_adjust_cfa_offset -8",
    ".cfi_restore rbx",
    "    pop rbp", // incoming rbp
    ".cfi_adjust_cfa_offset -8",
    ".cfi_restore rbp",
    "    pop rax", // incoming resume address
    ".cfi_adjust_cfa_offset -8",
    "    jmp rax", // into the incoming context (or the trampoline)
    ".cfi_endproc",
    ".size __filament_switch, . - __filament_switch",
);

#[cfg(not(feature = "fp-control-always"))]
global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_switch",
    ".hidden __filament_switch",
    ".type __filament_switch,@function",
    // Entered by jmp with [rsp] = resume address of the outgoing context;
    // rdi = where to store the outgoing sp, rsi = incoming sp.
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
    "    pop rax", // incoming resume address
    ".cfi_adjust_cfa_offset -8",
    "    jmp rax", // into the incoming context (or the trampoline)
    ".cfi_endproc",
    ".size __filament_switch, . - __filament_switch",
);

#[cfg(feature = "fp-control-always")]
global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_switch_final",
    ".hidden __filament_switch_final",
    ".type __filament_switch_final,@function",
    // Entered by jmp from a context that is discarded (a finished fiber):
    // rdi = byte to clear once off the old stack, rsi = incoming sp.
    "__filament_switch_final:",
    ".cfi_startproc",
    ".cfi_undefined rip",        // the discarded context has no caller to unwind to
    "    mov rsp, rsi",          // === now on the incoming stack; the old one is dead ===
    "    mov byte ptr [rdi], 0", // release the old stack (a release store on x86)
    "    ldmxcsr [rsp]",         // the incoming MXCSR (the discarded one is not kept)
    "    fldcw [rsp + 4]",       // and the incoming x87 control word
    "    add rsp, 8",            // drop the FP-control slot
    "    pop rbx",               // incoming rbx
    "    pop rbp",               // incoming rbp
    "    pop rax",               // incoming resume address
    "    jmp rax",               // into the incoming context
    ".cfi_endproc",
    ".size __filament_switch_final, . - __filament_switch_final",
);

#[cfg(not(feature = "fp-control-always"))]
global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_switch_final",
    ".hidden __filament_switch_final",
    ".type __filament_switch_final,@function",
    // Entered by jmp from a context that is discarded (a finished fiber):
    // rdi = byte to clear once off the old stack, rsi = incoming sp.
    "__filament_switch_final:",
    ".cfi_startproc",
    ".cfi_undefined rip",        // the discarded context has no caller to unwind to
    "    mov rsp, rsi",          // === now on the incoming stack; the old one is dead ===
    "    mov byte ptr [rdi], 0", // release the old stack (a release store on x86)
    "    pop rbx",               // incoming rbx
    "    pop rbp",               // incoming rbp
    "    pop rax",               // incoming resume address
    "    jmp rax",               // into the incoming context
    ".cfi_endproc",
    ".size __filament_switch_final, . - __filament_switch_final",
);

global_asm!(
    ".text",
    ".p2align 4",
    ".globl __filament_fiber_start",
    ".hidden __filament_fiber_start",
    ".type __filament_fiber_start,@function",
    // Reached by the switch's final jmp on a fresh stack:
    // rbx = entry fn, rbp = its first argument, rsp = top-16 (16-aligned),
    // [rsp] = the runtime's core pointer (written by spawn).
    "__filament_fiber_start:",
    ".cfi_startproc",
    ".cfi_undefined rip", // no caller: debuggers stop unwinding here
    "    mov rdi, rbp",   // arg 1: the fiber's payload pointer
    "    mov rsi, [rsp]", // arg 2: the core
    "    xor ebp, ebp",   // terminate frame-pointer chains
    // A jump with a pushed return address instead of `call`: entry never
    // returns, and a call that never returns would leave a stale entry on the
    // return-stack predictor (the host's next `ret` would mispredict). To the
    // unwinder the frame looks called from label 1, inside this function.
    "    lea rax, [rip + 1f]", // the return address a call would have pushed
    "    push rax",            // rsp ≡ 8 (mod 16) at entry, as after a call
    "    jmp rbx",             // entry(arg, core) -> !
    "1:",
    ".globl __filament_fiber_exit_ra",
    ".hidden __filament_fiber_exit_ra",
    "__filament_fiber_exit_ra:", // also the return address `jump_noreturn` pushes
    "    ud2",                   // entry never returns; trap if it ever does
    ".cfi_endproc",
    ".size __filament_fiber_start, . - __filament_fiber_start",
);

// SAFETY: these symbols are defined by the `global_asm!` above, with the
// calling conventions `switch`, `switch_final` and `init_stack` document.
unsafe extern "C" {
    fn __filament_switch();
    fn __filament_switch_final();
    fn __filament_fiber_start();
    fn __filament_fiber_exit_ra();
}

/// The signature of a fiber entry function called by the trampoline.
///
/// # Safety
/// The trampoline calls it once, on the fiber's fresh stack, with the
/// arguments `init_stack` stored; it never returns.
pub(crate) type Entry = unsafe extern "C" fn(arg: *mut u8, core: *mut u8) -> !;

/// Writes a fresh frame below `top` and returns the initial saved stack pointer.
///
/// # Safety
/// `top` must be 16-aligned and the `INIT_FRAME_BYTES` below it writable and
/// owned by the caller.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: Entry, arg: *mut u8, core: *mut u8) -> *mut u8 {
    debug_assert!((top as usize).is_multiple_of(STACK_ALIGN));
    let top = top.cast::<usize>();
    // SAFETY: the caller guarantees the frame below `top` is ours to write.
    unsafe {
        // top-8 is padding: never read (the trampoline's CFI ends unwinding).
        top.sub(2).write(core as usize);
        top.sub(3).write(__filament_fiber_start as *const () as usize);
        top.sub(4).write(arg as usize);
        top.sub(5).write(entry as usize);
        #[cfg(feature = "fp-control-always")]
        top.sub(6).write(0x037F_0000_1F80);
        top.cast::<u8>().sub(INIT_FRAME_BYTES)
    }
}

/// Saves the current context into `*save` and resumes the context whose saved
/// stack pointer is `to`. Returns when some other context switches back.
///
/// # Safety
/// `to` must be a stack pointer produced by [`init_stack`] or saved by a previous
/// switch and not resumed since; `save` must be valid for a write. Whoever later
/// resumes `*save` must do so on the same OS thread.
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut *mut u8, to: *mut u8) {
    // SAFETY: the routine saves rbx/rbp itself; every other register it or the
    // resumed context may change is declared clobbered here, so the compiler
    // keeps nothing live in them across the block. The block is not `nostack`,
    // so the compiler keeps the red zone free for the push, and rsp is back to
    // its value at entry when execution continues at `2:`.
    unsafe {
        asm!(
            "lea rax, [rip + 2f]", // this context's resume address
            "push rax",            // ... is the top word of its saved frame
            "jmp {f}",             // save / restore in __filament_switch
            "2:",                  // resumed here by a later switch
            f = sym __filament_switch,
            in("rdi") save,
            in("rsi") to,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
}

/// Jumps into `f(arg)`, which never returns, abandoning the running frames
/// (they stay on the stack untouched). A jump, not a call, so no return-stack
/// predictor entry is left behind. Only for code running on a fiber stack
/// (the pushed return address points into the fiber trampoline).
///
/// # Safety
/// Calling `f(arg)` must be sound at this point, and nothing of the running
/// function may be needed afterwards (its locals stay in place but are never
/// returned to).
#[inline(always)]
pub(crate) unsafe fn jump_noreturn<T>(f: unsafe extern "C" fn(*mut T) -> !, arg: *mut T) -> ! {
    // SAFETY: the stack is realigned downwards (the abandoned frames above
    // stay intact) and a return address is pushed, so `f` starts with
    // rsp ≡ 8 (mod 16) as after a call. The address is the trampoline's
    // `ud2`, never returned to: to an unwinder `f` looks called from the
    // trampoline, whose CFI (rip undefined) ends the backtrace there cleanly.
    unsafe {
        asm!(
            "and rsp, -16", // 16-align (never moves rsp up)
            "push {ra}",    // the return address a call from the trampoline would leave
            "jmp {f}",      // f(arg) -> !
            ra = in(reg) __filament_fiber_exit_ra as *const () as usize,
            f = in(reg) f,
            in("rdi") arg,
            options(noreturn),
        );
    }
}

/// Bytes left untouched below the host context's saved stack pointer by
/// [`call_on_stack`] (the 128-byte red zone, plus slack).
const HOST_STACK_GAP: usize = 256;

/// Leaves the running stack for good and calls `f(a, b)` on the stack of a
/// *suspended* context whose saved stack pointer is `sp`, below everything
/// that context keeps there. Used to report a broken canary: the report must
/// not run on the stack that just overflowed.
///
/// Nothing is written to the running stack (no call, no push), and the
/// suspended context is never resumed afterwards (`f` never returns), so
/// clobbering nothing of it is all that is needed.
///
/// # Safety
/// `sp` is the saved stack pointer of a suspended context of this thread
/// with room for `f` below it; nothing of the running context is used again.
pub(crate) unsafe fn call_on_stack<A, B>(
    sp: *mut u8,
    // SAFETY (of calling `f`): it is entered on `sp` with `a`, `b` and never returns.
    f: unsafe extern "C" fn(*mut A, *mut B) -> !,
    a: *mut A,
    b: *mut B,
) -> ! {
    // SAFETY: per the contract; the new rsp is 16-aligned minus 8 after the
    // pushed return address, as after a call.
    unsafe {
        asm!(
            "mov rsp, {sp}", // onto the suspended context's stack, below its frames
            "and rsp, -16",  // 16-align (downwards)
            "push {ra}",     // a return address into the trampoline's `ud2`: never used
            "jmp {f}",       // f(a, b) -> !
            sp = in(reg) sp.wrapping_sub(HOST_STACK_GAP),
            ra = in(reg) __filament_fiber_exit_ra as *const () as usize,
            f = in(reg) f,
            in("rdi") a,
            in("rsi") b,
            options(noreturn),
        );
    }
}

/// Abandons the running context for good and resumes the context whose saved
/// stack pointer is `to`; once on that stack (and only then) stores `0` to the
/// byte at `release`, which frees the abandoned stack for reuse (a
/// [`StaticStack`](crate::StaticStack) claim flag, or a scratch byte).
///
/// Nothing of the running context is saved: it must never be resumed. The
/// store is a plain byte store, a release store on x86 (TSO): every earlier
/// write of this context is visible to whoever sees the flag clear.
///
/// # Safety
/// `to` as for [`switch`]; `release` valid for a one-byte write from this
/// thread and, if it is a claim flag, the running stack must be the memory it
/// guards (so it is released only after no frame of ours runs on it).
#[inline(always)]
pub(crate) unsafe fn switch_final(to: *mut u8, release: *const u8) -> ! {
    // SAFETY: the routine never returns here; the incoming context restores
    // its own registers (rbx/rbp and, under `fp-control-always`, FP control)
    // and expects every other register clobbered, as after `switch`.
    unsafe {
        asm!(
            "jmp {f}", // never comes back
            f = sym __filament_switch_final,
            in("rdi") release,
            in("rsi") to,
            options(noreturn),
        );
    }
}

/// Hints the CPU to bring the cache line at `p` into L1. Never faults, any
/// address is allowed (a prefetch is not a memory access).
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    // SAFETY: `prefetcht0` only loads a cache line speculatively; it cannot
    // fault or change memory, whatever `p` is (SSE: baseline on x86_64).
    unsafe { asm!("prefetcht0 [{}]", in(reg) p, options(nostack, preserves_flags, readonly)) };
}

/// The floating-point control state a fiber runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpControl {
    /// MXCSR control bits (rounding, flush-to-zero, exception masks); the
    /// status flags (bits 0–5) are not part of a fiber's state.
    pub mxcsr: u32,
    /// The x87 FPU control word (precision, rounding, exception masks).
    pub x87: u16,
}

impl FpControl {
    /// The System V ABI's initial state: MXCSR 0x1F80, x87 CW 0x037F.
    pub const DEFAULT: FpControl = FpControl { mxcsr: 0x1F80, x87: 0x037F };

    /// Reads the running context's control state.
    #[inline]
    pub fn current() -> FpControl {
        let mut m: u32 = 0;
        let mut c: u16 = 0;
        // SAFETY: stmxcsr/fnstcw write 4 and 2 bytes to the given addresses.
        unsafe {
            asm!("stmxcsr [{}]", in(reg) &mut m, options(nostack, preserves_flags));
            asm!("fnstcw [{}]", in(reg) &mut c, options(nostack, preserves_flags));
        }
        FpControl { mxcsr: m & !0x3F, x87: c }
    }

    /// Loads this state into the running context.
    ///
    /// # Safety
    /// Rust assumes the default floating-point environment: the compiler may
    /// fold float operations at compile time with default rounding, so code
    /// running under another rounding mode, flush-to-zero or unmasked FP
    /// exceptions can observe results that differ from a run-time evaluation,
    /// or trap. The caller takes responsibility for the code that runs under
    /// the loaded state (typically: only code written for it, e.g. interval
    /// arithmetic, until the default state is loaded again). The MXCSR value
    /// must have no reserved bit set (bits 16 and up are masked off here).
    #[inline]
    pub unsafe fn load(self) {
        // SAFETY: loading control words has no memory effects; the caller
        // accepts the FP-environment contract above; bits 16+ are masked off.
        unsafe {
            asm!("ldmxcsr [{}]", in(reg) &(self.mxcsr & 0xFFFF), options(nostack, preserves_flags));
            asm!("fldcw [{}]", in(reg) &self.x87, options(nostack, preserves_flags));
        }
    }
}
