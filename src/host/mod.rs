//! The host layer (feature `std`): guard-paged `mmap` stacks, panic capture,
//! a wall-clock idle hook, and a child-process runner for tests that must
//! watch the process die (stack overflow, broken canary).

mod child;
mod clock;
#[cfg(feature = "explore")]
#[cfg_attr(docsrs, doc(cfg(feature = "explore")))]
pub mod explore;
pub(crate) mod guard;
#[cfg(feature = "trace")]
#[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
pub mod trace;

pub use child::{ChildOutput, run_in_child};
pub use clock::HostClock;

use std::any::Any;
use std::boxed::Box;
use std::string::String;

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{JoinError, PanicMessage};
use crate::stack::{MIN_STACK_SIZE, Owner, Stack, StackError};

/// Writes one line to file descriptor 2 directly (not through `std::io`'s
/// stderr, which `cargo test` captures): for reports printed right before the
/// process stops. Newlines inside the message become spaces, so a report is
/// always one line. No allocation: the text goes out in 256-byte pieces.
pub(crate) fn write_stderr_line(args: core::fmt::Arguments<'_>) {
    struct Fd2 {
        buf: [u8; 256],
        len: usize,
    }
    impl Fd2 {
        fn flush(&mut self) {
            let mut off = 0;
            while off < self.len {
                // SAFETY: write(2) on fd 2 with a valid buffer and length.
                let n = unsafe { libc::write(2, self.buf[off..].as_ptr().cast(), self.len - off) };
                if n <= 0 {
                    break; // nothing more we can do for a report
                }
                off += n as usize;
            }
            self.len = 0;
        }
    }
    impl core::fmt::Write for Fd2 {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if self.len == self.buf.len() {
                    self.flush();
                }
                self.buf[self.len] = if b == b'\n' || b == b'\r' { b' ' } else { b };
                self.len += 1;
            }
            Ok(())
        }
    }
    let mut out = Fd2 { buf: [0; 256], len: 0 };
    let _ = core::fmt::write(&mut out, args);
    let _ = core::fmt::Write::write_str(&mut out, "");
    if out.len == out.buf.len() {
        out.flush();
    }
    out.buf[out.len] = b'\n';
    out.len += 1;
    out.flush();
}

/// The unwind payload that cancels a deadlocked fiber.
pub(crate) struct Cancelled;

/// Turns a fiber's panic payload into its outcome. The payload is dropped
/// with [`drop_panic_payload`]: its own `Drop` may panic too.
pub(crate) fn outcome_of_panic(payload: Box<dyn Any + Send>) -> JoinError<()> {
    if payload.is::<Cancelled>() {
        return JoinError::Cancelled;
    }
    let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
        String::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic payload>")
    };
    drop_panic_payload(payload);
    JoinError::Panicked(PanicMessage { text })
}

/// How many nested panicking payload destructors are dropped before the rest
/// is leaked (a chain of payloads whose drops keep panicking is user code
/// that never ends; leaking ends it, and leaking is safe).
const PAYLOAD_DROP_ATTEMPTS: usize = 8;

/// Drops a panic payload inside `catch_unwind`: a payload whose `Drop` panics
/// (with a payload whose `Drop` panics, …) must not unwind into the fiber's
/// `extern "C"` entry, which would abort the process.
pub(crate) fn drop_panic_payload(mut payload: Box<dyn Any + Send>) {
    for _ in 0..PAYLOAD_DROP_ATTEMPTS {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    core::mem::forget(payload);
}

/// Bytes below the stack pointer the System V ABI lets leaf code use without
/// moving it (the red zone): the kernel leaves them alone when it pushes a
/// signal frame, and starts the frame below them.
const RED_ZONE: usize = 128;

/// Room for a signal handler's own frames below the kernel's signal frame: a
/// handler that only sets a flag or bumps a counter, and the libc frames of
/// `raise` if the fiber raised the signal itself. Handlers that need more
/// must run on an alternate stack (`SA_ONSTACK` + `sigaltstack`).
const SIGNAL_HANDLER_ALLOWANCE: usize = 1024;

/// Stack a signal delivered while a fiber runs takes below the fiber's
/// deepest frame, when its handler was installed without `SA_ONSTACK`: the
/// red zone, the kernel's signal frame (`AT_MINSIGSTKSZ`, which depends on the
/// CPU's extended register state; `MINSIGSTKSZ` if the kernel does not say)
/// and [`SIGNAL_HANDLER_ALLOWANCE`]. Computed once, then cached.
pub(crate) fn signal_reserve() -> usize {
    static RESERVE: AtomicUsize = AtomicUsize::new(0);
    let cached = RESERVE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: getauxval only reads the auxiliary vector; 0 means "not present".
    let frame = match unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize {
        0 => libc::MINSIGSTKSZ,
        n => n,
    };
    let reserve = frame.saturating_add(RED_ZONE + SIGNAL_HANDLER_ALLOWANCE).next_multiple_of(16);
    // Every thread computes the same value: a racing store is harmless.
    RESERVE.store(reserve, Ordering::Relaxed);
    reserve
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

pub(crate) fn unmap(base: *mut u8, len: usize) {
    // SAFETY: (base, len) is exactly a mapping made by `Stack::host`, unmapped once.
    let rc = unsafe { libc::munmap(base.cast(), len) };
    debug_assert_eq!(rc, 0);
}

#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl Stack<'static> {
    /// Maps a host stack of at least `size` bytes (rounded up to pages) with a
    /// `PROT_NONE` guard page below it: an overflow faults at once (SIGSEGV)
    /// instead of corrupting memory. Unmapped when released.
    ///
    /// Fails with [`StackError::TooSmall`] below [`MIN_STACK_SIZE`], with
    /// [`StackError::TooLarge`] if the rounded size plus the guard page exceeds
    /// `isize::MAX` bytes, and with [`StackError::MapFailed`] if the system
    /// refuses the mapping.
    pub fn host(size: usize) -> Result<Stack<'static>, StackError> {
        let page = page_size();
        if size < MIN_STACK_SIZE {
            return Err(StackError::TooSmall { min: MIN_STACK_SIZE, given: size, usable: size });
        }
        // Checked: a size near usize::MAX must not wrap to a tiny mapping.
        let Some((usable, len)) = size
            .checked_next_multiple_of(page)
            .and_then(|usable| Some((usable, usable.checked_add(page)?)))
            .filter(|&(_, len)| len <= isize::MAX as usize)
        else {
            return Err(StackError::TooLarge { size });
        };
        // SAFETY: an anonymous private mapping; arguments are valid.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(StackError::MapFailed { size, errno });
        }
        let base = base.cast::<u8>();
        // SAFETY: the first page is part of the mapping we own.
        if unsafe { libc::mprotect(base.cast(), page, libc::PROT_NONE) } != 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            unmap(base, len);
            return Err(StackError::MapFailed { size, errno });
        }
        // SAFETY: [base+page, base+len) is mapped read/write, page-aligned, owned
        // by the token until it unmaps it; usable >= MIN_STACK_SIZE.
        Ok(unsafe {
            Stack::from_raw_parts(
                NonNull::new(base.add(page)).expect("mmap never returns null on success"),
                usable,
                Owner::Mapped { guard: guard::register(base, usable), _fill: 0 },
            )
        })
    }
}
