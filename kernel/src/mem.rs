//! The C memory functions that `core` calls (`memcpy` from moves and formatting, `memset`
//! from zeroing, `memcmp`/`bcmp` from slice comparison). The precompiled
//! `compiler_builtins` of `x86_64-unknown-linux-gnu` does not export them, and with
//! `-nostdlib` there is no libc, so the image must define them.
//!
//! The bodies are `rep movsb` / `rep stosb` in inline assembly and volatile byte loops:
//! LLVM recognises plain copy/fill loops and would turn them back into calls to
//! `memcpy`/`memset` — i.e. into infinite recursion.
//!
//! This file is shared with `filament-freestanding` through `#[path]`.

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

/// `core` is precompiled with `panic = "unwind"` and so references the personality routine
/// from its unwind tables. With `panic = "abort"` nothing ever unwinds; the symbol only has
/// to exist.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
