//! The C memory functions and the personality stub a `-nostdlib` binary must provide
//! (feature `mem`, bare metal only).
//!
//! Everything below is exported under its C name (`#[unsafe(no_mangle)]`): enabling the
//! feature is all a program does; it never calls these functions itself.
//!
//! # Who needs this
//!
//! A `#![no_std]` program built for **`x86_64-unknown-linux-gnu`** and linked with
//! `-nostdlib` (no libc) — the route `kernel/` and `freestanding/` take on stable Rust
//! without extra targets, see [`guide`](crate::guide). There:
//!
//! * the precompiled `core` calls `memcpy` (moves, formatting), `memset` (zeroing),
//!   `memcmp` (slice ordering) and `bcmp` (slice equality), and LLVM may emit `memmove`
//!   for any overlapping copy. In the shipped sysroot of 1.95.0, `readelf -s` on
//!   `libcore-*.rlib` lists all of them (and `rust_eh_personality`) as undefined;
//! * the precompiled `compiler_builtins` of that target does **not** export them (it is
//!   built without its `mem` feature, because libc provides them on Linux: its object
//!   files define no `memcpy` at all and even reference libc's as undefined);
//! * that feature cannot be switched on from a stable toolchain: the sysroot is
//!   precompiled, rebuilding it needs nightly `-Zbuild-std
//!   -Zbuild-std-features=compiler-builtins-mem`, and the `compiler_builtins` crate
//!   cannot be used as an ordinary dependency on stable (it is a `#![feature]` crate);
//! * `core` is precompiled with `panic = "unwind"`, so its unwind tables name
//!   `rust_eh_personality`. A `panic = "abort"` program never unwinds, but the symbol must
//!   exist: this module defines it as an empty function.
//!
//! # Who must not enable it
//!
//! * Anything with `std` or libc: libc already defines these symbols (duplicate or
//!   interposed definitions) and `std` defines `rust_eh_personality`. The crate refuses
//!   to compile with both `mem` and `std`. In a workspace whose host tests use `std`,
//!   enable `mem` only through a feature of the bare-metal crate that host builds never
//!   turn on (as `kernel/` and `freestanding/` do with their `metal` feature), or Cargo's
//!   feature unification enables it for the host build too.
//! * `x86_64-unknown-none` (and other `*-none` targets): their shipped `compiler_builtins`
//!   *is* built with its `mem` feature (Rust's build system enables it for every `no_std`
//!   target), and their `core` is built with `panic = "abort"` (no personality needed).
//!
//! # Implementation
//!
//! `memcpy`/`memset`/`memmove` are `rep movsb` / `rep stosb` in inline assembly (fast on
//! every x86_64 with ERMSB, and LLVM cannot see a loop to turn back into a call to the
//! function itself, i.e. into infinite recursion); `memcmp` is a loop of volatile byte
//! reads for the same reason. DF is clear at every function boundary (SysV ABI); `memmove`
//! sets it for a backward copy and clears it again. Nothing here touches SSE registers,
//! so the functions also work before SSE is enabled.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dest`.
///
/// # Safety
/// `src` must be valid for reads and `dest` for writes of `n` bytes; the regions must not
/// overlap (the C contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and disjoint; DF is clear at every
    // function boundary (SysV ABI), so `rep movsb` copies forwards.
    unsafe {
        asm!(
            "rep movsb", // copy rcx bytes from [rsi] to [rdi], forwards
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// Copies `n` bytes from `src` to `dest`; the regions may overlap.
///
/// # Safety
/// `src` must be valid for reads and `dest` for writes of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is below src or past its end: a forward copy never reads a byte it already
        // overwrote.
        // SAFETY: same contract as memcpy; the forward direction is safe for this overlap.
        unsafe { memcpy(dest, src, n) }
    } else {
        // dest overlaps the tail of src: copy backwards, starting at the last byte.
        // SAFETY: the caller guarantees both ranges are valid; n > 0 here (otherwise the
        // branch above is taken), so `n - 1` is in bounds. DF is restored to clear (ABI).
        unsafe {
            asm!(
                "std",       // string ops count downwards
                "rep movsb", // copy rcx bytes from [rsi] to [rdi], backwards
                "cld",       // restore DF = 0 as the ABI requires
                inout("rcx") n => _,
                inout("rdi") dest.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack)
            );
        }
        dest
    }
}

/// Fills `n` bytes at `dest` with the low byte of `c`.
///
/// # Safety
/// `dest` must be valid for writes of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid for writes; DF is clear (ABI).
    unsafe {
        asm!(
            "rep stosb", // store al into rcx bytes starting at [rdi]
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// Compares `n` bytes; returns the difference of the first unequal pair (as unsigned bytes).
///
/// # Safety
/// Both pointers must be valid for reads of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and the caller guarantees n readable bytes behind both pointers.
        // Volatile reads keep LLVM from turning this loop into a call to memcmp/bcmp.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// Like `memcmp`, but only zero / non-zero is meaningful.
///
/// # Safety
/// Both pointers must be valid for reads of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded with the caller's guarantee.
    unsafe { memcmp(a, b, n) }
}

/// The personality routine `core`'s unwind tables name (`core` is precompiled with
/// `panic = "unwind"`). With `panic = "abort"` nothing ever unwinds, so it is never called;
/// the symbol only has to exist for the link.
// SAFETY: the only definition of this symbol in a `mem` build (which excludes
// `std`, whose runtime would define it); it does nothing and is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
