//! Leaving QEMU through the `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,
//! iosize=0x04`): writing `v` to port 0xf4 makes QEMU exit with status `(v << 1) | 1`.
//!
//! Exactly one value means success. A triple fault under `-no-reboot` exits with status 0
//! and a hang never exits, so a runner must accept only status 33 and use a timeout.

use crate::arch::{halt_forever, outl};

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// The values written to the debug-exit port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Every check passed: QEMU exits with status 33.
    Success = 0x10,
    /// A self-check of the demo failed: status 35.
    CheckFailed = 0x11,
    /// A Rust panic: status 37.
    Panic = 0x12,
    /// A CPU exception (fault) reached the IDT: status 39.
    Exception = 0x13,
}

impl ExitCode {
    /// The exit status QEMU reports for this code.
    pub const fn qemu_status(self) -> i32 {
        ((self as i32) << 1) | 1
    }
}

/// Ends the QEMU session with `code`; halts forever when the device is absent.
pub fn exit_qemu(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device (or nothing, on a machine without it).
    unsafe { outl(DEBUG_EXIT_PORT, code as u32) };
    halt_forever()
}
