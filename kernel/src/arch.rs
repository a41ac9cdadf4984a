//! Thin wrappers over the privileged x86 instructions the kernel needs.

use core::arch::asm;

/// Writes a byte to an I/O port.
///
/// # Safety
/// Port I/O can reprogram any device (and so corrupt memory through DMA or stop the
/// machine); the caller must know what the port does.
#[inline]
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: forwarded to the caller (see the function contract).
    unsafe {
        asm!(
            "out dx, al", // write al to port dx
            in("dx") port,
            in("al") value,
            options(nomem, nostack, preserves_flags)
        );
    }
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// As for [`outb`].
#[inline]
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: forwarded to the caller (see the function contract).
    unsafe {
        asm!(
            "out dx, eax", // write eax to port dx
            in("dx") port,
            in("eax") value,
            options(nomem, nostack, preserves_flags)
        );
    }
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// Reading some ports has side effects (acknowledging data, for example).
#[inline]
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: forwarded to the caller (see the function contract).
    unsafe {
        asm!(
            "in al, dx", // read port dx into al
            in("dx") port,
            out("al") value,
            options(nomem, nostack, preserves_flags)
        );
    }
    value
}

/// Enables maskable interrupts.
#[inline]
pub fn enable_interrupts() {
    // SAFETY: the IDT, the TSS (IST stacks) and the PIC are set up before the kernel calls
    // this; every vector the PIC can raise has a handler.
    unsafe {
        asm!("sti", options(nomem, nostack)); // set RFLAGS.IF
    }
}

/// Disables maskable interrupts.
#[inline]
pub fn disable_interrupts() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe {
        asm!("cli", options(nomem, nostack)); // clear RFLAGS.IF
    }
}

/// Atomically enables interrupts and halts until the next one.
///
/// `sti` takes effect only after the following instruction, so an interrupt that became
/// pending while interrupts were off is delivered *during* `hlt`, never in a window between
/// the caller's last check and `hlt`: call this with interrupts disabled after checking the
/// wake-up condition and no wake-up is lost.
#[inline]
pub fn enable_interrupts_and_halt() {
    // SAFETY: as for enable_interrupts; hlt only waits. The memory clobber (no `nomem`)
    // makes the compiler reload anything an interrupt handler may have changed.
    unsafe {
        asm!(
            "sti", // set RFLAGS.IF, effective after the next instruction
            "hlt", // sleep until an interrupt arrives (it is handled before we return)
            options(nostack)
        );
    }
}

/// Takes the software interrupt [`SOFT_VECTOR`](crate::idt::SOFT_VECTOR) right here: the
/// CPU switches to the gate's IST stack, runs the handler and returns, exactly as for a
/// hardware interrupt arriving at this instruction (but whether or not interrupts are
/// enabled).
#[inline]
pub fn raise_soft_interrupt() {
    // SAFETY: idt::init installed a gate for SOFT_VECTOR whose stub saves and restores every
    // register it touches; the handler only updates atomics. No `nomem`: the handler writes
    // memory the caller then reads.
    unsafe {
        asm!(
            "int {vector}", // software interrupt through the IDT gate
            vector = const crate::idt::SOFT_VECTOR,
        );
    }
}

/// Halts forever with interrupts off (the end of the road after a fatal error).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli/hlt only stop this CPU.
        unsafe {
            asm!(
                "cli", // no interrupt may wake us
                "hlt", // stop; only NMI/SMI would resume, then we loop
                options(nomem, nostack)
            );
        }
    }
}

/// Current stack pointer (for diagnostics).
#[inline(always)]
pub fn stack_pointer() -> u64 {
    let rsp: u64;
    // SAFETY: reads a register.
    unsafe {
        asm!(
            "mov {}, rsp", // copy the stack pointer
            out(reg) rsp,
            options(nomem, nostack, preserves_flags)
        );
    }
    rsp
}
