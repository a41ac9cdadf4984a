//! Raw Linux x86_64 system calls: `write` (1) and `exit_group` (231).

use core::arch::asm;
use core::fmt;

const SYS_WRITE: usize = 1;
const SYS_EXIT_GROUP: usize = 231;
const STDOUT: usize = 1;

/// Writes all of `bytes` to stdout (retrying short writes); gives up on an error.
pub fn write_stdout(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let ret: isize;
        // SAFETY: write(2) only reads `bytes.len()` bytes from a live slice. The syscall
        // instruction clobbers rcx (return rip) and r11 (rflags), declared below; the kernel
        // does not use the user stack, so no red-zone concern.
        unsafe {
            asm!(
                "syscall", // enter the kernel: rax = number, rdi/rsi/rdx = arguments
                inlateout("rax") SYS_WRITE as isize => ret,
                in("rdi") STDOUT,
                in("rsi") bytes.as_ptr(),
                in("rdx") bytes.len(),
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack, readonly)
            );
        }
        if ret <= 0 {
            // -EINTR cannot happen without signal handlers; anything else is fatal for
            // output but not for the program.
            return;
        }
        bytes = &bytes[ret as usize..];
    }
}

/// Ends the process (all threads) with `status`.
pub fn exit_group(status: i32) -> ! {
    // SAFETY: exit_group never returns and touches no memory of ours.
    unsafe {
        asm!(
            "syscall", // exit_group(status): does not return
            in("rax") SYS_EXIT_GROUP,
            in("rdi") status as isize,
            options(noreturn, nostack)
        );
    }
}

/// A `fmt::Write` sink for stdout (unbuffered: one write(2) per piece).
pub struct Stdout;

impl fmt::Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_stdout(s.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let _ = fmt::Write::write_fmt(&mut Stdout, args);
}

/// `println!` on raw write(2).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::sys::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
